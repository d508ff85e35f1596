// When `ghostnet-d launch` starts a failed job again: at most `--max-restarts` restarts within a
// sliding `--restart-window`, each after an exponential backoff; and the duration syntax (`90s`,
// `30m`, `1h`) of those options.

/// The restart budget and backoff of a launch.
///
/// A restart is allowed while fewer than ``maxRestarts`` restarts happened in the last ``window``
/// seconds; the k-th restart within the window (k = 0, 1, …) waits ``initialBackoff`` × 2^k seconds,
/// at most ``maximumBackoff``. A job that runs longer than the window between failures therefore
/// always gets its restart, and one that fails at every start stops after ``maxRestarts``.
package struct RestartPolicy: Sendable, Equatable {
    package var maxRestarts: Int
    /// Seconds over which restarts are counted.
    package var window: Double
    /// Seconds before the first restart in a window.
    package var initialBackoff: Double
    /// The longest wait, in seconds.
    package var maximumBackoff: Double

    package init(maxRestarts: Int = 3, window: Double = 3600, initialBackoff: Double = 10, maximumBackoff: Double = 300)
    {
        self.maxRestarts = maxRestarts
        self.window = window
        self.initialBackoff = initialBackoff
        self.maximumBackoff = maximumBackoff
    }

    package enum Decision: Sendable, Equatable {
        /// Start again after waiting `seconds`.
        case restart(afterSeconds: Double)
        /// The budget is spent: `maxRestarts` restarts already happened within the window.
        case giveUp
    }

    /// Whether to restart now, given the times (seconds on a monotonic clock) of the restarts so far.
    package func decision(restartTimes: [Double], now: Double) -> Decision {
        let recent = restartTimes.filter { now - $0 < window }.count
        guard recent < maxRestarts else { return .giveUp }
        let doubled = initialBackoff * Double(1 << min(recent, 30))
        return .restart(afterSeconds: min(doubled, maximumBackoff))
    }

    /// Seconds in `text`: a number with an optional unit `s`, `m` or `h` (`90`, `90s`, `30m`, `1h`,
    /// `1.5h`), in 0…`limit`; nil when it is anything else.
    package static func seconds(_ text: String, limit: Double = 30 * 86_400) -> Double? {
        let units: [Character: Double] = ["s": 1, "m": 60, "h": 3600]
        var number = Substring(text)
        var scale = 1.0
        if let last = text.last, let unit = units[last] {
            scale = unit
            number = number.dropLast()
        }
        guard !number.isEmpty, number.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == ".") }),
            let value = Double(number), value.isFinite
        else { return nil }
        let seconds = value * scale
        return (0...limit).contains(seconds) ? seconds : nil
    }
}
