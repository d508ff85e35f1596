// Typed access to a rank table's JSON fields for the validator (rules 5-7: every scalar a string, numbers
// plain decimals, IP addresses parsed), and how values from the file are shown in messages.

internal import StrictJSON

extension RankTableValidator {
    func object(_ node: Node) throws(RankTableError) -> [String: JSONValue] {
        guard let fields = node.value.fields else {
            throw failure(node.path, "must be an object, got \(node.value.kindName)")
        }
        return fields
    }

    func requiredArray(
        _ key: String, in fields: [String: JSONValue], of parent: Node, nonEmptyMessage: String
    ) throws(RankTableError) -> [Node] {
        guard let value = fields[key] else { throw missing(key, in: parent) }
        guard case .array(let elements) = value else {
            throw failure(parent.child(key), "must be an array, got \(value.kindName)")
        }
        guard !elements.isEmpty else { throw failure(parent.child(key), nonEmptyMessage) }
        return elements.enumerated().map { Node(value: $1, path: "\(parent.child(key))[\($0)]") }
    }

    func missing(_ key: String, in parent: Node) -> RankTableError {
        failure(parent.path, "missing required field '\(key)'")
    }

    func requiredString(
        _ key: String, in fields: [String: JSONValue], of parent: Node
    ) throws(RankTableError) -> String {
        guard let text = try optionalString(key, in: fields, of: parent) else { throw missing(key, in: parent) }
        return text
    }

    /// Rule 5: every scalar is a JSON string.
    func optionalString(
        _ key: String, in fields: [String: JSONValue], of parent: Node
    ) throws(RankTableError) -> String? {
        guard let value = fields[key] else { return nil }
        guard case .string(let text) = value else {
            throw failure(
                parent.child(key),
                "must be a string like \"\(Self.example(for: key))\", got \(value.kindName) \(value.snippet)")
        }
        return text
    }

    func requiredDecimal(
        _ key: String, in fields: [String: JSONValue], of parent: Node
    ) throws(RankTableError) -> Int {
        guard let value = try optionalDecimal(key, in: fields, of: parent) else { throw missing(key, in: parent) }
        return value
    }

    /// Rule 6: numeric strings are plain decimal digits without sign, space or leading zero, and
    /// fit in 32 bits.
    func optionalDecimal(
        _ key: String, in fields: [String: JSONValue], of parent: Node
    ) throws(RankTableError) -> Int? {
        guard let text = try optionalString(key, in: fields, of: parent) else { return nil }
        let isPlainDecimal =
            !text.isEmpty && text.utf8.allSatisfy { (0x30...0x39).contains($0) }
            && (text == "0" || !text.hasPrefix("0"))
        guard isPlainDecimal else {
            throw failure(
                parent.child(key),
                "\(key) '\(shown(text))' is not a decimal integer (expected digits like \"\(Self.example(for: key))\")")
        }
        guard let value = UInt32(text) else {
            throw failure(parent.child(key), "\(key) '\(text)' is too large (at most \(UInt32.max))")
        }
        return Int(value)
    }

    /// Rule 12: an IPv4 or IPv6 address; returns its family (`AF_INET` or `AF_INET6`).
    func ipAddressFamily(_ text: String, path: String, field: String) throws(RankTableError) -> Int32 {
        guard let family = IPAddress.family(of: text) else {
            throw failure(path, "\(field) '\(shown(text))' is not an IP address")
        }
        return family
    }

    /// `text` for a message: control characters, quotes and backslashes escaped as in JSON, so a
    /// value from the file cannot start a line of its own in a log.
    func shown(_ text: String) -> String {
        String(JSONValue.string(text).serialized.dropFirst().dropLast())
    }

    static func example(for key: String) -> String {
        switch key {
        case "version": "1.0"
        case "status": "completed"
        case "server_count", "rank_id": "2"
        case "device_id": "0"
        case "server_id", "device_ip", "host_ip", "node_addr", "rank_ip", "backup_device_ip": "10.0.0.1"
        case let port where port.hasSuffix("port"): "60000"
        default: "text"
        }
    }
}

extension JSONValue {
    /// An object's members by key, or `nil` when the value is not an object (the parser refuses a
    /// repeated key, rule 22).
    var fields: [String: JSONValue]? {
        guard case .object(let members) = self else { return nil }
        return Dictionary(members.lazy.map { ($0.key, $0.value) }, uniquingKeysWith: { _, last in last })
    }

    /// A short rendering of the value for error messages: `"text"`, `7`, `an object`, ...
    var snippet: String {
        switch self {
        case .object: "an object"
        case .array: "an array"
        case .string: serialized
        case .number(let number): number.text
        case .bool(let value): "\(value)"
        case .null: "null"
        }
    }
}
