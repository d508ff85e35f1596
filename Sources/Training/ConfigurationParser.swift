// Command-line overrides of configuration keys, and the validator that checks a YAML tree against
// the schema and builds the value tree, collecting every problem with its file, line and key.

import Foundation
import Yams

/// A `key.path=value` assignment that replaces a value from the file (`--set`, or a named flag).
package struct ConfigurationOverride: Sendable, Equatable {
    /// The dotted key path, e.g. `fully_train.trainer.epochs`.
    package var keyPath: String
    /// The value in YAML spelling (`3`, `True`, `/data`, `[3, 4, 6, 3]`), typed by the key's schema.
    package var value: String
    /// How the user wrote it, for messages: `--set fully_train.trainer.epochs=3` or `--epochs 3`.
    package var origin: String

    package init(keyPath: String, value: String, origin: String) {
        self.keyPath = keyPath
        self.value = value
        self.origin = origin
    }

    /// The override a named flag makes (`--epochs 3`), or nil when the user did not give the flag, so
    /// that the file's value stands whatever it is.
    package init?<Value>(
        flag: String, key: ConfigurationKey<Value>, step: TrainingConfiguration.PipelineStep? = nil, value: Value?
    ) {
        guard let value else { return nil }
        let text = value.configurationValue.yamlScalar
        self.init(keyPath: key.path(in: step), value: text, origin: "\(flag) \(text)")
    }

    /// Parses `--set`'s `key.path=value`.
    ///
    /// - Throws: ``ConfigurationIssue`` of kind `.malformedOverride` when there is no `=` or no key.
    package init(assignment: String) throws(ConfigurationIssue) {
        let origin = "--set \(assignment)"
        guard let equals = assignment.firstIndex(of: "="), equals != assignment.startIndex else {
            throw ConfigurationIssue(
                kind: .malformedOverride, origin: origin,
                message: "expected key.path=value, e.g. fully_train.trainer.epochs=3")
        }
        self.init(
            keyPath: String(assignment[..<equals]).trimmingCharacters(in: .whitespaces),
            value: String(assignment[assignment.index(after: equals)...]),
            origin: origin)
    }

    /// Parses `--set` assignments (`key.path=value`).
    ///
    /// - Throws: ``ConfigurationError`` for `file` naming the malformed assignment.
    package static func parsing(_ assignments: [String], file: String) throws(ConfigurationError)
        -> [ConfigurationOverride]
    {
        do {
            return try assignments.map { assignment throws(ConfigurationIssue) in
                try ConfigurationOverride(assignment: assignment)
            }
        } catch {
            throw ConfigurationError(file: file, issues: [error])
        }
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
            issues.append(
                ConfigurationIssue(
                    kind: .wrongType, keyPath: path, origin: raw.origin,
                    message: "expected a mapping of keys, got \(raw.shortText)"))
        default: break
        }
        for (name, node) in given where !keys.contains(where: { $0.name == name }) {
            let fullPath = path.isEmpty ? name : "\(path).\(name)"
            let sibling = Spelling.closest(to: name, among: keys.map(\.name)).map {
                path.isEmpty ? $0 : "\(path).\($0)"
            }
            let elsewhere =
                ConfigurationSchema.paths(endingWith: name).first { path.isEmpty || $0.hasPrefix(path) }
                ?? ConfigurationSchema.paths(endingWith: name).first
            issues.append(
                ConfigurationIssue(
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
            // An empty `epochs:` is a mistake, not a request for the default; only optional keys and
            // sections may be given empty.
            if let node, node.isNull, !key.kind.isSection, key.defaultValue.suppliesValue {
                issues.append(
                    ConfigurationIssue(
                        kind: .wrongType, keyPath: keyPath, origin: node.origin,
                        message: "expected \(key.kind.expectation), got nothing; remove the key to use the default"))
                entries.append(ConfigurationEntry(key: key.name, value: .absent))
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
                issues.append(
                    ConfigurationIssue(
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
            guard let components = URLComponents(string: text),
                components.scheme == "http" || components.scheme == "https",
                let host = components.host, !host.isEmpty, components.port != nil
            else { throw fail(.wrongType, nil) }
            return .text(text)
        case .memorySize:
            guard MemoryLimit(text) != nil else { throw fail(.outOfRange, nil) }
            return .text(text)
        }
    }
}
