// The calling thread's CPU time, for costs that must not count the time a thread waited for a core
// (what reporting costs a rank: its training thread's share and its sender thread's).

import Glibc

/// CPU time used by the calling thread (`CLOCK_THREAD_CPUTIME_ID`).
package enum ThreadCPUTime {
    /// Seconds of CPU the calling thread has used since it started; 0 if the clock cannot be read.
    package static func seconds() -> Double {
        var time = timespec()
        guard clock_gettime(CLOCK_THREAD_CPUTIME_ID, &time) == 0 else { return 0 }
        return Double(time.tv_sec) + Double(time.tv_nsec) * 1e-9
    }
}
