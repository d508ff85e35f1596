// Python's repr of floats and strings, and the reference's `Best values: [...]` line built from
// them, with the stated cap that keeps one line bounded however large the best set grows.

/// Python's `repr` of the few value kinds the Best values line holds, so the line reads exactly like
/// the reference's (`[{'worker_id': '0', 'performance': {'accuracy_top1': 0.77, 'flops': 4.539}}]`).
package enum PythonRepr {
    /// Python's `repr(float)`: the shortest digits that round-trip, in fixed notation when the
    /// decimal exponent `e` (value = d.ddd × 10^e) satisfies `-4 <= e < 16`, else in scientific
    /// notation with a signed exponent of at least two digits.
    ///
    /// Examples: `0.1`, `1.0`, `0.0001`, `1e-05`, `123456789.0`, `1e+16`, `1.2345678901234568e+16`.
    ///
    /// - Precondition: `value` is finite (the record format admits no NaN or infinity).
    package static func float(_ value: Double) -> String {
        precondition(value.isFinite, "repr of \(value) is not needed by the record format")
        let sign = value.sign == .minus ? "-" : ""
        if value == 0 { return sign + "0.0" }
        let (digits, exponent) = shortestDigits(of: value.magnitude)
        if exponent < -4 || exponent >= 16 {
            let mantissa = digits.count == 1 ? digits : digits.prefix(1) + "." + digits.dropFirst()
            let exponentDigits = String(abs(exponent))
            let paddedExponent = exponentDigits.count < 2 ? "0" + exponentDigits : exponentDigits
            return sign + mantissa + "e" + (exponent < 0 ? "-" : "+") + paddedExponent
        }
        if exponent < 0 {
            return sign + "0." + String(repeating: "0", count: -exponent - 1) + digits
        }
        let integerCount = exponent + 1
        if digits.count <= integerCount {
            return sign + digits + String(repeating: "0", count: integerCount - digits.count) + ".0"
        }
        return sign + digits.prefix(integerCount) + "." + digits.dropFirst(integerCount)
    }

    /// The shortest round-trip significant digits of a positive finite `value` (no leading or
    /// trailing zeros) and the decimal exponent of the first digit.
    ///
    /// Swift's `description` already produces the shortest round-trip digits (Errol/Ryu-style); only
    /// its choice between fixed and exponent notation differs from Python's, so the digits are read
    /// back out of it.
    static func shortestDigits(of value: Double) -> (digits: String, exponent: Int) {
        let text = value.description
        let parts = text.split(separator: "e", maxSplits: 1)
        let mantissa = parts[0]
        var exponent = parts.count == 2 ? Int(parts[1])! : 0
        let pieces = mantissa.split(separator: ".", omittingEmptySubsequences: false)
        let integerPart = pieces[0]
        let fractionPart = pieces.count == 2 ? pieces[1] : ""
        var digits = Substring(integerPart + fractionPart)
        exponent += integerPart.count - 1
        while digits.first == "0" {
            digits = digits.dropFirst()
            exponent -= 1
        }
        while digits.last == "0" { digits = digits.dropLast() }
        return (String(digits), exponent)
    }

    /// Python's `repr(str)`: single quotes unless the text holds a single quote and no double quote;
    /// backslash, the chosen quote, `\n`, `\r`, `\t` escaped, other control characters as `\xNN`.
    package static func string(_ text: String) -> String {
        let quote: Character = text.contains("'") && !text.contains("\"") ? "\"" : "'"
        var output = String(quote)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\\": output += "\\\\"
            case "\n": output += "\\n"
            case "\r": output += "\\r"
            case "\t": output += "\\t"
            case _ where Character(scalar) == quote: output += "\\" + String(quote)
            case _ where scalar.value < 0x20 || scalar.value == 0x7F:
                let hex = String(scalar.value, radix: 16)
                output += "\\x" + (hex.count < 2 ? "0" : "") + hex
            default: output.unicodeScalars.append(scalar)
            }
        }
        output.append(quote)
        return output
    }
}

/// The reference's summary line of a job's best records.
package enum BestValuesLine {
    /// The records of a line take at most this many bytes; see `message(for:)`.
    package static let maximumListedBytes = 4096

    /// The message part: `Best values: [{'worker_id': '0', 'performance': {'accuracy_top1': 0.77, 'flops': 4.539}}]`.
    ///
    /// The cap: records are listed in order while their text stays within `maximumListedBytes`
    /// (the first one always); when some are left out the line ends `] and N more not listed`.
    /// A record is at most about 2.5 KB (16 keys of 64 bytes), so a line stays under 7 KB, and
    /// building it stops at the cap, however many records the set holds.
    ///
    /// - Parameter records: the best set, in the order the records were made; may be empty (`[]`).
    package static func message(for records: [PerformanceRecord]) -> String {
        var items: [String] = []
        var listedBytes = 0
        for record in records {
            let metrics = record.performance.entries
                .map { PythonRepr.string($0.key) + ": " + PythonRepr.float($0.value) }
                .joined(separator: ", ")
            let item = "{'worker_id': \(PythonRepr.string(record.workerID)), 'performance': {\(metrics)}}"
            listedBytes += item.utf8.count + 2
            if !items.isEmpty && listedBytes > maximumListedBytes { break }
            items.append(item)
        }
        let left = records.count - items.count
        return "Best values: [" + items.joined(separator: ", ") + "]" + (left > 0 ? " and \(left) more not listed" : "")
    }

    /// The full log line: `<YYYY-MM-DD HH:MM:SS.mmm> INFO Best values: [...]`, the same line the
    /// coordinator logs, for workers that run without one.
    ///
    /// - Parameters:
    ///   - records: all records of the run; the best set is chosen with `objectives`.
    ///   - objectives: the objectives, or nil for the defaults of `ParetoFront`.
    ///   - time: when the line is written, in seconds since 1970 (printed in local time).
    package static func logLine(
        for records: [PerformanceRecord], objectives: [Objective]? = nil, at time: Double = LogTimestamp.now()
    ) -> String {
        let best = ParetoFront.best(of: records, objectives: objectives)
        return LogTimestamp.format(time) + " INFO " + message(for: best)
    }
}
