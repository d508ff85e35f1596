// What is wrong with a configuration file: one issue per problem (where, which key, what was expected),
// gathered into one error, with "did you mean" suggestions for misspelt names.

/// One thing wrong with a configuration: where, which key, and what was expected.
package struct ConfigurationIssue: Error, Sendable, CustomStringConvertible {
    /// The class of problem, so callers and tests can tell them apart.
    package enum Kind: Sendable, Equatable {
        case unreadableFile
        case malformedYAML
        case unknownKey
        case missingKey
        case wrongType
        case outOfRange
        case unknownChoice
        case inconsistent
        case malformedOverride
        case environment
    }

    package var kind: Kind
    /// The dotted key path (`fully_train.trainer.epochs`), or nil for file-level problems.
    package var keyPath: String?
    /// Where the value came from: `conf/demo.yml:12:7`, or `--set fully_train.trainer.epochs=0`.
    package var origin: String
    /// What is wrong and what was expected.
    package var message: String
    /// A likely intended spelling, for misspelt keys and choices.
    package var suggestion: String?

    package init(kind: Kind, keyPath: String? = nil, origin: String, message: String, suggestion: String? = nil) {
        self.kind = kind
        self.keyPath = keyPath
        self.origin = origin
        self.message = message
        self.suggestion = suggestion
    }

    package var description: String {
        var text = origin + ": "
        if let keyPath { text += keyPath + ": " }
        text += message
        if let suggestion { text += "; did you mean `\(suggestion)`?" }
        return text
    }
}

/// A configuration file that cannot be used, with every problem found in it.
package struct ConfigurationError: Error, Sendable, CustomStringConvertible {
    /// The configuration file (as given on the command line).
    package var file: String
    package var issues: [ConfigurationIssue]

    package init(file: String, issues: [ConfigurationIssue]) {
        self.file = file
        self.issues = issues
    }

    package var description: String {
        let heading =
            issues.count == 1
            ? "invalid configuration \(file):" : "invalid configuration \(file) (\(issues.count) problems):"
        return ([heading] + issues.map { "  " + $0.description }).joined(separator: "\n")
    }
}

/// Suggestions for misspelt names.
enum Spelling {
    /// The Levenshtein distance between `a` and `b` (insertions, deletions, substitutions), case-insensitive.
    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a.lowercased())
        let b = Array(b.lowercased())
        guard !a.isEmpty else { return b.count }
        guard !b.isEmpty else { return a.count }
        var previous = Array(0...b.count)
        var current = [Int](repeating: 0, count: b.count + 1)
        for i in 1...a.count {
            current[0] = i
            for j in 1...b.count {
                let substitution = previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)
                current[j] = min(previous[j] + 1, current[j - 1] + 1, substitution)
            }
            swap(&previous, &current)
        }
        return previous[b.count]
    }

    /// The candidate closest to `name`, if it is within a third of the name's length (at least 2 edits).
    static func closest(to name: String, among candidates: [String]) -> String? {
        let limit = max(2, name.count / 3)
        return
            candidates
            .map { (candidate: $0, distance: editDistance(name, $0)) }
            .filter { $0.distance <= limit }
            .min { $0.distance < $1.distance }?
            .candidate
    }
}
