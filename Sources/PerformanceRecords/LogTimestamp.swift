// The timestamp that starts every log line, `YYYY-MM-DD HH:MM:SS.mmm` in local time as Python's logging
// prints it, so the coordinator's and trainer's logs read like the reference's.

import Glibc

/// The timestamp at the start of every log line, `YYYY-MM-DD HH:MM:SS.mmm` in local time (the form
/// Python's logging prints, with a dot before the milliseconds).
package enum LogTimestamp {
    /// The current time in seconds since 1970.
    package static func now() -> Double {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Double(spec.tv_sec) + Double(spec.tv_nsec) / 1e9
    }

    /// Formats `time` (seconds since 1970) as `YYYY-MM-DD HH:MM:SS.mmm` in the local time zone;
    /// milliseconds are truncated, as Python's logging does.
    package static func format(_ time: Double) -> String {
        var seconds = time_t(time.rounded(.down))
        let milliseconds = min(999, Int(((time - time.rounded(.down)) * 1000).rounded(.down)))
        var parts = tm()
        localtime_r(&seconds, &parts)
        func padded(_ value: Int32, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        return "\(padded(parts.tm_year + 1900, 4))-\(padded(parts.tm_mon + 1, 2))-\(padded(parts.tm_mday, 2)) "
            + "\(padded(parts.tm_hour, 2)):\(padded(parts.tm_min, 2)):"
            + "\(padded(parts.tm_sec, 2)).\(padded(Int32(milliseconds), 3))"
    }
}
