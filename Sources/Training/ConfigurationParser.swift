//===----------------------------------------------------------------------===//
// ghostnet-d — Training
//===----------------------------------------------------------------------===//

import Foundation
import Yams

/// A YAML node as read, before it is checked against the schema, with where it came from.
indirect enum RawNode {
    enum Scalar {
        case null
        case boolean(Bool)
        case integer(Int)
        case real(Double)
        case text
    }

    case scalar(text: String, type: Scalar, origin: String)
    case list([RawNode], origin: String)
    case map([(key: String, node: RawNode)], origin: String)

    var origin: String {
        switch self {
        case .scalar(_, _, let origin), .list(_, let origin), .map(_, let origin): origin
        }
    }

    var isNull: Bool {
        if case .scalar(_, .null, _) = self { return true }
        return false
    }

    /// A short rendering of the value for "got …" messages.
    var shortText: String {
        switch self {
        case .scalar(let text, .null, _): text.isEmpty ? "null" : text
        case .scalar(let text, _, _): "`\(text)`"
        case .list: "a list"
        case .map: "a mapping"
        }
    }

    /// Converts a composed Yams node; `origin` names the file or override it came from.
    /// With `marksPositions`, origins get the node's `:line:column` (for files, not for one-line overrides).
    init(_ node: Node, origin: String, marksPositions: Bool) throws(ConfigurationIssue) {
        let here = marksPositions ? node.mark.map { "\(origin):\($0)" } ?? origin : origin
        switch node {
        case .scalar(let scalar):
            let type: Scalar
            if node.null != nil {
                type = .null
            } else if let value = node.bool {
                type = .boolean(value)
            } else if let value = node.int {
                type = .integer(value)
            } else if node.tag.rawValue == Tag.Name.float.rawValue, let value = node.float {
                type = .real(value)
            } else {
                type = .text
            }
            self = .scalar(text: scalar.string, type: type, origin: here)
        case .sequence(let sequence):
            var items: [RawNode] = []
            for item in sequence { items.append(try RawNode(item, origin: origin, marksPositions: marksPositions)) }
            self = .list(items, origin: here)
        case .mapping(let mapping):
            var pairs: [(key: String, node: RawNode)] = []
            for (key, value) in mapping {
                guard case .scalar(let keyScalar) = key else {
                    throw ConfigurationIssue(kind: .malformedYAML, origin: here, message: "mapping keys must be plain names")
                }
                if pairs.contains(where: { $0.key == keyScalar.string }) {
                    throw ConfigurationIssue(
                        kind: .malformedYAML, keyPath: keyScalar.string, origin: marksPositions ? key.mark.map { "\(origin):\($0)" } ?? here : here,
                        message: "the key is given twice in one mapping")
                }
                pairs.append((keyScalar.string, try RawNode(value, origin: origin, marksPositions: marksPositions)))
            }
            self = .map(pairs, origin: here)
        case .alias:
            throw ConfigurationIssue(kind: .malformedYAML, origin: here, message: "YAML aliases are not supported in configuration files")
        }
    }

    /// Parses `yaml`, naming `origin` in every error; an empty document is an empty mapping.
    static func parse(yaml: String, origin: String, marksPositions: Bool = true) throws(ConfigurationIssue) -> RawNode {
        let composed: Node?
        do {
            composed = try Yams.compose(yaml: yaml)
        } catch {
            throw ConfigurationIssue(kind: .malformedYAML, origin: origin, message: "not valid YAML: \(error)")
        }
        guard let composed else { return .map([], origin: origin) }
        return try RawNode(composed, origin: origin, marksPositions: marksPositions)
    }

    /// This tree with the value at `keyPath` replaced by `node`, creating mappings on the way.
    func replacing(_ keyPath: ArraySlice<String>, with node: RawNode) -> RawNode {
        guard let head = keyPath.first else { return node }
        var pairs: [(key: String, node: RawNode)] = []
        if case .map(let existing, _) = self { pairs = existing }
        if let index = pairs.firstIndex(where: { $0.key == head }) {
            pairs[index].node = pairs[index].node.replacing(keyPath.dropFirst(), with: node)
        } else {
            pairs.append((head, RawNode.map([], origin: node.origin).replacing(keyPath.dropFirst(), with: node)))
        }
        return .map(pairs, origin: origin)
    }
}

/// A `key.path=value` assignment that replaces a value from the file (`--set`, or a named flag).
public struct ConfigurationOverride: Sendable, Equatable {
    /// The dotted key path, e.g. `fully_train.trainer.epochs`.
    public var keyPath: String
    /// The value in YAML spelling (`3`, `True`, `/data`, `[3, 4, 6, 3]`), typed by the key's schema.
    public var value: String
    /// How the user wrote it, for messages: `--set fully_train.trainer.epochs=3` or `--epochs 3`.
    public var origin: String

    public init(keyPath: String, value: String, origin: String) {
        self.keyPath = keyPath
        self.value = value
        self.origin = origin
    }

    /// Parses `--set`'s `key.path=value`.
    ///
    /// - Throws: ``ConfigurationIssue`` of kind `.malformedOverride` when there is no `=` or no key.
    public init(assignment: String) throws(ConfigurationIssue) {
        let origin = "--set \(assignment)"
        guard let equals = assignment.firstIndex(of: "="), equals != assignment.startIndex else {
            throw ConfigurationIssue(
                kind: .malformedOverride, origin: origin, message: "expected key.path=value, e.g. fully_train.trainer.epochs=3")
        }
        self.init(
            keyPath: String(assignment[..<equals]).trimmingCharacters(in: .whitespaces),
            value: String(assignment[assignment.index(after: equals)...]),
            origin: origin)
    }

    /// Checks the key path against the schema and parses the value.
    func rawNode() throws(ConfigurationIssue) -> (path: [String], node: RawNode) {
        let components = keyPath.split(separator: ".", omittingEmptySubsequences: false)
        var siblings = ConfigurationSchema.root
        for (index, component) in components.enumerated() {
            guard let key = siblings.first(where: { $0.name == component }) else {
                let pathSoFar = components[...index].joined(separator: ".")
                throw ConfigurationIssue(
                    kind: .unknownKey, keyPath: pathSoFar, origin: origin, message: "no such key",
                    suggestion: Spelling.closest(to: String(component), among: siblings.map(\.name))
                        .map { (components[..<index] + [Substring($0)]).joined(separator: ".") })
            }
            if case .section(let children) = key.kind {
                siblings = children
            } else if index < components.count - 1 {
                throw ConfigurationIssue(
                    kind: .unknownKey, keyPath: keyPath, origin: origin,
                    message: "`\(components[...index].joined(separator: "."))` is a value, not a section")
            } else {
                siblings = []
            }
        }
        return (components.map(String.init), try RawNode.parse(yaml: value, origin: origin, marksPositions: false))
    }
}

/// Checks a raw tree against ``ConfigurationSchema`` and builds the value tree, collecting every issue.
struct ConfigurationValidator {
    var issues: [ConfigurationIssue] = []
    /// Where each given key path came from, for later consistency messages.
    var origins: [String: String] = [:]
    /// The file name, the origin of keys the file does not contain.
    let file: String
    let currentDirectory: URL

    mutating func section(_ keys: [SchemaKey], _ raw: RawNode?, path: String) -> ConfigurationValue {
        var given: [(key: String, node: RawNode)] = []
        switch raw {
        case .map(let pairs, _)?: given = pairs
        case let raw? where !raw.isNull:
            issues.append(ConfigurationIssue(
                kind: .wrongType, keyPath: path, origin: raw.origin, message: "expected a mapping of keys, got \(raw.shortText)"))
        default: break
        }
        for (name, node) in given where !keys.contains(where: { $0.name == name }) {
            let fullPath = path.isEmpty ? name : "\(path).\(name)"
            let sibling = Spelling.closest(to: name, among: keys.map(\.name)).map { path.isEmpty ? $0 : "\(path).\($0)" }
            let elsewhere = ConfigurationSchema.paths(endingWith: name).first { path.isEmpty || $0.hasPrefix(path) }
                ?? ConfigurationSchema.paths(endingWith: name).first
            issues.append(ConfigurationIssue(
                kind: .unknownKey, keyPath: fullPath, origin: node.origin, message: "unknown key",
                suggestion: sibling ?? elsewhere))
        }
        var entries: [ConfigurationEntry] = []
        for key in keys {
            let keyPath = path.isEmpty ? key.name : "\(path).\(key.name)"
            let node = given.first(where: { $0.key == key.name })?.node
            if let node, !node.isNull {
                origins[keyPath] = node.origin
                entries.append(ConfigurationEntry(key: key.name, value: value(of: key, node, path: keyPath)))
                continue
            }
            switch (key.defaultValue, key.kind) {
            case (.absent, .section):
                continue
            case (_, .section(let children)):
                entries.append(ConfigurationEntry(key: key.name, value: section(children, nil, path: keyPath)))
            case (.value(let value), _):
                entries.append(ConfigurationEntry(key: key.name, value: value))
            case (.required, _):
                issues.append(ConfigurationIssue(
                    kind: .missingKey, keyPath: keyPath, origin: raw?.origin ?? file,
                    message: "required key is missing; expected \(key.kind.expectation)"))
                entries.append(ConfigurationEntry(key: key.name, value: .absent))
            case (.absent, _), (.derived, _):
                entries.append(ConfigurationEntry(key: key.name, value: .absent))
            }
        }
        return .section(entries)
    }

    private mutating func value(of key: SchemaKey, _ node: RawNode, path: String) -> ConfigurationValue {
        if case .section(let children) = key.kind { return section(children, node, path: path) }
        do {
            return try scalarValue(key.kind, node)
        } catch {
            var issue = error
            issue.keyPath = path
            issues.append(issue)
            return .absent
        }
    }

    private func scalarValue(_ kind: SchemaKind, _ node: RawNode) throws(ConfigurationIssue) -> ConfigurationValue {
        func fail(_ issueKind: ConfigurationIssue.Kind, _ suggestion: String? = nil) -> ConfigurationIssue {
            ConfigurationIssue(
                kind: issueKind, origin: node.origin, message: "expected \(kind.expectation), got \(node.shortText)",
                suggestion: suggestion)
        }
        switch (kind, node) {
        case (.boolean, .scalar(_, .boolean(let value), _)):
            return .boolean(value)
        case (.integer(let bounds), .scalar(_, .integer(let value), _)):
            guard bounds.contains(Double(value)) else { throw fail(.outOfRange) }
            return .integer(value)
        case (.real(let bounds), .scalar(_, .integer(let value), _)):
            guard bounds.contains(Double(value)) else { throw fail(.outOfRange) }
            return .real(Double(value))
        case (.real(let bounds), .scalar(_, .real(let value), _)):
            guard bounds.contains(value) else { throw fail(.outOfRange) }
            return .real(value)
        case (.text(let form), .scalar(let text, _, _)):
            return try textValue(form, text, fail)
        case (.integerList(let bounds, let count), .list(let items, _)):
            var values: [ConfigurationValue] = []
            for item in items {
                guard case .scalar(_, .integer(let value), _) = item else { throw fail(.wrongType) }
                guard bounds.contains(Double(value)) else { throw fail(.outOfRange) }
                values.append(.integer(value))
            }
            if let count, values.count != count { throw fail(.outOfRange) }
            return .list(values)
        case (.textList(let choices), .list(let items, _)):
            var values: [ConfigurationValue] = []
            for item in items {
                guard case .scalar(let text, let type, _) = item, !isNullOrNumber(type) else { throw fail(.wrongType) }
                if let choices, !choices.contains(text) {
                    throw fail(.unknownChoice, Spelling.closest(to: text, among: choices))
                }
                values.append(.text(text))
            }
            return .list(values)
        default:
            throw fail(.wrongType)
        }
    }

    private func isNullOrNumber(_ type: RawNode.Scalar) -> Bool {
        switch type {
        case .null, .integer, .real: true
        case .boolean, .text: false
        }
    }

    /// `path` itself when absolute, else `path` below `directory`, with `.` and `..` removed.
    static func absolutePath(_ path: String, relativeTo directory: URL) -> String {
        let url = path.hasPrefix("/") ? URL(fileURLWithPath: path) : directory.appendingPathComponent(path)
        return url.standardizedFileURL.path
    }

    private func textValue(
        _ form: TextForm, _ text: String, _ fail: (ConfigurationIssue.Kind, String?) -> ConfigurationIssue
    ) throws(ConfigurationIssue) -> ConfigurationValue {
        guard !text.isEmpty else { throw fail(.wrongType, nil) }
        switch form {
        case .plain:
            return .text(text)
        case .choice(let choices, let lastPathComponent):
            let name = lastPathComponent ? String(text.split(separator: "/").last ?? Substring(text)) : text
            guard choices.contains(name) else { throw fail(.unknownChoice, Spelling.closest(to: name, among: choices)) }
            return .text(name)
        case .path:
            return .text(Self.absolutePath(text, relativeTo: currentDirectory))
        case .httpURL:
            guard let components = URLComponents(string: text), components.scheme == "http",
                let host = components.host, !host.isEmpty, components.port != nil
            else { throw fail(.wrongType, nil) }
            return .text(text)
        }
    }
}
