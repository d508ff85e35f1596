// The distributed runtime's two defaults, spelled once: the configuration schema, the command-line
// flags and the library initialisers all read them from here.

/// Defaults of the collective watchdog and the gradient buckets.
package enum DistributedDefaults {
    /// How long one collective may take before the job is aborted.
    package static let collectiveTimeout: Duration = .seconds(600)
    /// The largest gradient bucket, 25 MiB (PyTorch DDP's default).
    package static let bucketCapacityBytes = 25 << 20
}
