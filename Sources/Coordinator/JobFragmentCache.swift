// Per-job renderings of the three reads that grow with the number of jobs, `/metrics`, `/v1/jobs`
// and the dashboard, kept until the job changes: a read concatenates them and re-renders only the
// jobs that changed since the last read, so a scrape of 1,000 idle jobs costs a copy, not 1,000
// renderings.

import StrictJSON
import Synchronization

/// The `/metrics` page, `/v1/jobs` body and dashboard of a state, built from per-job fragments reused
/// while the job's revision (`CoordinatorState.revisions`) is unchanged.
///
/// A fragment is keyed by the job's revision, which counts the job's changes along one history of
/// states, so the cache serves the states of one `CoordinatorService`. A read sees every change its
/// snapshot holds: a revision that differs from the cached one (newer or, for an older snapshot
/// read concurrently, older) is rendered again, so a POST answered before a GET is in the GET.
package final class JobFragmentCache: Sendable {
    private let metricSamples = FragmentTable<[String]> { MetricsText.jobSamples($0, in: $1) }
    private let jobObjects = FragmentTable<String> { JSONResponse.job($0, in: $1, detailed: false).serialized }
    private let dashboardSections = FragmentTable<String> { DashboardPage.jobSection($0, in: $1) }

    package init() {}

    /// The `/metrics` page of `state`, equal to `MetricsText.render(state)`.
    package func metricsText(_ state: CoordinatorState) -> String {
        MetricsText.assemble(state, jobSamples: metricSamples.fragments(state))
    }

    /// The `/v1/jobs` body of `state` (without the final newline), equal to
    /// `JSONResponse.jobList(state).serialized`.
    package func jobsJSON(_ state: CoordinatorState) -> String {
        "{\"jobs\":[" + jobObjects.fragments(state).joined(separator: ",") + "]}"
    }

    /// The dashboard of `state` with ages measured to `now`, equal to `DashboardPage.render(state, now:)`.
    package func dashboardHTML(_ state: CoordinatorState, now: Double) -> String {
        DashboardPage.assemble(state, now: now, jobSections: dashboardSections.fragments(state))
    }
}

/// One kind of fragment per job with the revision it was rendered at.
private final class FragmentTable<Fragment: Sendable>: Sendable {
    private let render: @Sendable (String, CoordinatorState) -> Fragment
    private let entries = Mutex<[String: (revision: Int, fragment: Fragment)]>([:])

    init(render: @escaping @Sendable (String, CoordinatorState) -> Fragment) {
        self.render = render
    }

    /// The fragment of every job of `state`, in `allJobNames` order, rendering those whose revision changed.
    func fragments(_ state: CoordinatorState) -> [Fragment] {
        // Held while rendering: readers are few (scrapes, dashboards); writers never take this lock.
        entries.withLock { entries in
            state.allJobNames.map { name in
                let revision = state.revisions[name] ?? 0
                if let entry = entries[name], entry.revision == revision { return entry.fragment }
                let fragment = render(name, state)
                entries[name] = (revision, fragment)
                return fragment
            }
        }
    }
}
