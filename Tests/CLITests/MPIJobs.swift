// The one serialized parent suite of every test that starts an `mpirun` job.

import Testing

/// The suites that start `mpirun` jobs (nested in extensions of this type) run one test at a time:
/// on a 2-core CI machine two concurrent 2-rank jobs oversubscribe the cores fourfold, and a job's
/// outcome should not depend on what another test launches at the same moment.
@Suite(.serialized) enum MPIJobs {}
