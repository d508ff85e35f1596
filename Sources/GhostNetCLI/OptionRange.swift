// The range checks of numeric options, run in `validate()`. Every numeric option has a documented
// range, so no value (negative, absurd or near the type's limit) reaches code that could trap on it.

import ArgumentParser
import Training

/// Range checks for `validate()`.
enum OptionRange {
    /// Throws unless `value` (when given) lies in `range`: `--threads must be in 1...1024, got 1000000`.
    static func check<T: Comparable>(_ flag: String, _ value: T?, _ range: ClosedRange<T>) throws(ValidationError) {
        guard let value, !range.contains(value) else { return }
        throw ValidationError("\(flag) must be in \(text(range.lowerBound))...\(text(range.upperBound)), got \(value)")
    }

    /// A range as `--help` shows it: `2-1024`.
    static func help(_ range: ClosedRange<Int>) -> String { "\(range.lowerBound)-\(range.upperBound)" }

    /// A bound as the user would write it: `86400`, not `86400.0`.
    private static func text(_ bound: some Comparable) -> String {
        if let real = bound as? Double, real == real.rounded(), abs(real) < 1e15 { return "\(Int(real))" }
        return "\(bound)"
    }

    /// Throws unless `value` (when given) suits the configuration key the flag overrides, with the
    /// key's own range, so that a flag and the file accept the same values.
    static func check<Value>(_ flag: String, _ value: Value?, _ key: ConfigurationKey<Value>) throws(ValidationError) {
        guard let value, let problem = key.problem(with: value) else { return }
        throw ValidationError("\(flag): \(problem)")
    }

    /// Throws unless a batch of `batch` images of `imageSize`² pixels fits the trainer's input limit.
    static func checkInputBatch(batch: Int, imageSize: Int) throws(ValidationError) {
        let elements = batch * 3 * imageSize * imageSize
        guard elements > ConfigurationKeys.maximumInputElements else { return }
        throw ValidationError(
            "a batch of \(batch) × 3 × \(imageSize)² floats exceeds the limit of "
                + "\(ConfigurationKeys.maximumInputElements) "
                + "(8 GiB); lower the batch size or image size")
    }
}
