// Reading configuration YAML into a raw tree, refusing what a configuration never needs and an
// attacker could use: texts over 1 MiB, anchors and aliases (refused before Yams expands them, so an
// alias bomb costs a scan, not gigabytes), YAML 1.1 scalars (base-60 `1:30`, octal `010`, `yes`/`no`)
// and tags beyond the core ones (`!!python/object`).

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
        case .scalar(let text, .null, _): text.isEmpty ? "nothing" : text
        case .scalar(let text, _, _): "`\(text)`"
        case .list: "a list"
        case .map: "a mapping"
        }
    }

    /// Parses `yaml`, naming `origin` in every error; an empty document is an empty mapping.
    /// With `marksPositions`, origins get the node's `:line:column` (files, not one-line overrides).
    static func parse(yaml: String, origin: String, marksPositions: Bool = true) throws(ConfigurationIssue) -> RawNode {
        guard yaml.utf8.count <= ConfigurationYAML.maximumBytes else {
            throw ConfigurationIssue(
                kind: .malformedYAML, origin: origin,
                message: "the text is \(yaml.utf8.count) bytes; a configuration is at most 1 MiB")
        }
        if let found = ConfigurationYAML.firstAnchorOrAlias(in: yaml) {
            throw ConfigurationIssue(
                kind: .malformedYAML, origin: marksPositions ? "\(origin):\(found.line):\(found.column)" : origin,
                message: "`\(found.token)`: YAML anchors and aliases are not accepted in configuration files "
                    + "(an alias can expand exponentially); write the value out, or quote text starting with & or *")
        }
        let composed: Node?
        do {
            composed = try Yams.compose(yaml: yaml, ConfigurationYAML.resolver)
        } catch {
            throw ConfigurationIssue(kind: .malformedYAML, origin: origin, message: "not valid YAML: \(error)")
        }
        guard let composed else { return .map([], origin: origin) }
        return try RawNode(composed, origin: origin, path: "", marksPositions: marksPositions)
    }

    /// Converts a composed Yams node whose key path is `path` (empty for the document).
    private init(_ node: Node, origin: String, path: String, marksPositions: Bool) throws(ConfigurationIssue) {
        let here = marksPositions ? node.mark.map { "\(origin):\($0)" } ?? origin : origin
        func issue(_ message: String) -> ConfigurationIssue {
            ConfigurationIssue(kind: .malformedYAML, keyPath: path.isEmpty ? nil : path, origin: here, message: message)
        }
        switch node {
        case .scalar(let scalar):
            do {
                self = .scalar(
                    text: scalar.string, type: try ConfigurationYAML.scalarType(scalar.string, tag: node.tag),
                    origin: here)
            } catch {
                throw issue(error.reason)
            }
        case .sequence(let sequence):
            guard node.tag.description == Tag.Name.seq.rawValue else {
                throw issue(ConfigurationYAML.unsupported(node.tag))
            }
            var items: [RawNode] = []
            for item in sequence {
                items.append(try RawNode(item, origin: origin, path: path, marksPositions: marksPositions))
            }
            self = .list(items, origin: here)
        case .mapping(let mapping):
            guard node.tag.description == Tag.Name.map.rawValue else {
                throw issue(ConfigurationYAML.unsupported(node.tag))
            }
            var pairs: [(key: String, node: RawNode)] = []
            for (key, value) in mapping {
                guard case .scalar(let keyScalar) = key, key.tag.description == Tag.Name.str.rawValue else {
                    throw issue("mapping keys must be plain names, got `\(key.scalar?.string ?? "a collection")`")
                }
                let name = keyScalar.string
                let keyPath = path.isEmpty ? name : "\(path).\(name)"
                if pairs.contains(where: { $0.key == name }) {
                    throw ConfigurationIssue(
                        kind: .malformedYAML, keyPath: keyPath,
                        origin: marksPositions ? key.mark.map { "\(origin):\($0)" } ?? here : here,
                        message: "the key is given twice in one mapping")
                }
                pairs.append((name, try RawNode(value, origin: origin, path: keyPath, marksPositions: marksPositions)))
            }
            self = .map(pairs, origin: here)
        case .alias:
            throw issue("YAML aliases are not accepted in configuration files")
        }
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

/// The YAML dialect of configuration files: YAML 1.2's core schema.
enum ConfigurationYAML {
    /// The largest configuration text (the shipped files are about 3 KB).
    static let maximumBytes = 1 << 20

    /// Why a scalar cannot be read.
    struct ScalarProblem: Error {
        let reason: String
    }

    /// The core schema's implicit types; anything else (base-60, octal, `yes`, timestamps) is text.
    static let resolver: Resolver = {
        do {
            return try Resolver.basic
                .appending(.null, "^(?:~|null|Null|NULL|)$")
                .appending(.bool, "^(?:true|True|TRUE|false|False|FALSE)$")
                .appending(.int, "^[-+]?[0-9]+$")
                .appending(
                    .float,
                    "^(?:[-+]?(?:[0-9]+(?:\\.[0-9]*)?|\\.[0-9]+)(?:[eE][-+]?[0-9]+)?"
                        + "|[-+]?\\.(?:inf|Inf|INF)|\\.(?:nan|NaN|NAN))$"
                )
        } catch {
            preconditionFailure("invalid configuration resolver pattern: \(error)")
        }
    }()

    /// The message for a tag other than the core ones, spelt as the user wrote it (`!!python/object`).
    static func unsupported(_ tag: Tag) -> String {
        let name = tag.description.replacingOccurrences(of: "tag:yaml.org,2002:", with: "!!")
        return "unsupported YAML tag `\(name)`; configuration values take no tags beyond !!str, !!int, !!float, "
            + "!!bool, !!null, !!seq and !!map"
    }

    /// The type of a scalar whose resolved (or explicit) tag is `tag`.
    static func scalarType(_ text: String, tag: Tag) throws(ScalarProblem) -> RawNode.Scalar {
        switch tag.description {
        case Tag.Name.null.rawValue:
            return .null
        case Tag.Name.str.rawValue:
            return .text
        case Tag.Name.bool.rawValue:
            switch text.lowercased() {
            case "true": return .boolean(true)
            case "false": return .boolean(false)
            default: throw ScalarProblem(reason: "`\(text)` is tagged !!bool but is not True or False")
            }
        case Tag.Name.int.rawValue:
            // Too large for Int: kept as a number so the key's range check reports it.
            if let integer = Int(text) { return .integer(integer) }
            if let real = Double(text) { return .real(real) }
            throw ScalarProblem(reason: "`\(text)` is tagged !!int but is not a decimal integer")
        case Tag.Name.float.rawValue:
            switch text.lowercased() {
            case ".inf", "+.inf": return .real(.infinity)
            case "-.inf": return .real(-.infinity)
            case ".nan": return .real(.nan)
            default:
                guard let real = Double(text) else {
                    throw ScalarProblem(reason: "`\(text)` is tagged !!float but is not a number")
                }
                return .real(real)
            }
        default:
            throw ScalarProblem(reason: unsupported(tag))
        }
    }

    /// The first `&name` or `*name` that could be an anchor or alias, with its 1-based line and column.
    ///
    /// Scanned on the text, before any YAML parsing. An anchor or alias always starts a node, so it
    /// follows a space, a line start or an indicator; a `*` or `&` inside a word, a path or a quoted
    /// text (after a letter, digit, `_`, `.`, `/` or a quote) is left alone. Erring the other way,
    /// such a token in a comment or after a space inside quotes is refused too.
    static func firstAnchorOrAlias(in yaml: String) -> (line: Int, column: Int, token: String)? {
        let bytes = Array(yaml.utf8)
        func isNameByte(_ byte: UInt8) -> Bool {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"), UInt8(ascii: "-"):
                true
            default: false
            }
        }
        let inWord: Set<UInt8> = Set("_./\"'".utf8)
        var line = 1
        var lineStart = 0
        for (index, byte) in bytes.enumerated() {
            if byte == UInt8(ascii: "\n") {
                line += 1
                lineStart = index + 1
                continue
            }
            guard byte == UInt8(ascii: "*") || byte == UInt8(ascii: "&"),
                index + 1 < bytes.count, isNameByte(bytes[index + 1])
            else { continue }
            if index > 0 {
                let before = bytes[index - 1]
                let isAlphanumeric = isNameByte(before) && before != UInt8(ascii: "-")
                if isAlphanumeric || inWord.contains(before) { continue }
            }
            let name = bytes[(index + 1)...].prefix(while: isNameByte).prefix(40)
            let token = String(decoding: [byte] + name, as: UTF8.self)
            return (line, index - lineStart + 1, token)
        }
        return nil
    }
}
