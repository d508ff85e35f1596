// `RankTableError`, why a rank table could not be used: a code, the file, the JSON path of the offending
// value and what was expected.

/// Why a rank table could not be used.
///
/// The description names the file, the JSON path of the offending value (when there is one) and
/// what was expected, e.g. `rank table 'hccl.json': server_list[1].device[0].rank_id: must be a
/// string like "2", got number 2`.
package struct RankTableError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The broad reason, for callers that react differently (wait for `notReady`, exit otherwise).
    package enum Code: Sendable, Equatable {
        /// No path given and neither environment variable set.
        case notConfigured
        /// The path does not name a readable regular file.
        case unreadable
        /// The file is not valid JSON.
        case syntax
        /// `status` is `"initializing"`: the writer has not finished.
        case notReady
        /// The JSON breaks a format or consistency rule.
        case invalid
    }

    package var code: Code
    /// The table's path, or the environment variable that should have named it.
    package var file: String
    /// The JSON path of the offending value, e.g. `server_list[1].device[0].rank_id`.
    package var jsonPath: String?
    /// What is wrong and what was expected.
    package var message: String

    package init(_ code: Code, file: String, jsonPath: String? = nil, message: String) {
        self.code = code
        self.file = file
        self.jsonPath = jsonPath
        self.message = message
    }

    package var description: String {
        if code == .notConfigured { return message }
        if let jsonPath { return "rank table '\(file)': \(jsonPath): \(message)" }
        return "rank table '\(file)': \(message)"
    }
}
