// Tolerance comparisons for the numerical tests: floats are never compared with `==`.

import Testing

/// Whether `a` and `b` agree within `absolute + relative·max(|a|, |b|)`.
///
/// Symmetric but not transitive, so it must never back an `Equatable` conformance.
package func isClose(_ a: Double, _ b: Double, relative: Double, absolute: Double) -> Bool {
    guard a.isFinite, b.isFinite else { return false }
    return abs(a - b) <= absolute + relative * max(abs(a), abs(b))
}

/// Records an issue for every element where `actual` and `expected` differ by more than
/// `absolute + relative·max(|actual|, |expected|)`; reports at most the first five.
package func expectClose(
    _ actual: [Float], _ expected: [Float],
    relative: Double = 1e-5, absolute: Double = 1e-6,
    _ comment: Comment? = nil,
    sourceLocation: SourceLocation = #_sourceLocation
) {
    guard actual.count == expected.count else {
        Issue.record(
            "count \(actual.count) ≠ expected \(expected.count). \(comment?.description ?? "")",
            sourceLocation: sourceLocation)
        return
    }
    var reported = 0
    for index in actual.indices
    where !isClose(Double(actual[index]), Double(expected[index]), relative: relative, absolute: absolute) {
        if reported < 5 {
            Issue.record(
                "element \(index): \(actual[index]) vs expected \(expected[index]) (rel \(relative), abs \(absolute)). \(comment?.description ?? "")",
                sourceLocation: sourceLocation)
        }
        reported += 1
    }
}

/// Records an issue unless `actual` and `expected` agree within the tolerances.
package func expectClose(
    _ actual: Double, _ expected: Double,
    relative: Double = 1e-5, absolute: Double = 1e-6,
    _ comment: Comment? = nil,
    sourceLocation: SourceLocation = #_sourceLocation
) {
    if !isClose(actual, expected, relative: relative, absolute: absolute) {
        Issue.record(
            "\(actual) vs expected \(expected) (rel \(relative), abs \(absolute)). \(comment?.description ?? "")",
            sourceLocation: sourceLocation)
    }
}
