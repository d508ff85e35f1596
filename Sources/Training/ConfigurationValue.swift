// The validated configuration as a tree of typed values (every key present in schema order, defaults
// filled), with key-path lookup and the YAML that `config check` prints.

import Foundation

/// A validated configuration value: every key of a section present, in schema order, defaults filled.
package enum ConfigurationValue: Sendable, Equatable {
    case boolean(Bool)
    case integer(Int)
    case real(Double)
    case text(String)
    case list([ConfigurationValue])
    case section([ConfigurationEntry])
    /// An optional key that was not given (for example no coordinator URL).
    case absent

    /// The value at the dotted `keyPath` below this one, or nil when a component is missing.
    package subscript(keyPath: String) -> ConfigurationValue? {
        var current = self
        for component in keyPath.split(separator: ".") {
            guard case .section(let entries) = current,
                let entry = entries.first(where: { $0.key == component })
            else { return nil }
            current = entry.value
        }
        return current
    }

    /// Replaces the value at the dotted `keyPath`, which must exist.
    mutating func replace(at keyPath: ArraySlice<Substring>, with newValue: ConfigurationValue) {
        guard let head = keyPath.first else {
            self = newValue
            return
        }
        guard case .section(var entries) = self, let index = entries.firstIndex(where: { $0.key == head }) else {
            preconditionFailure("configuration key \(keyPath.joined(separator: ".")) is not in the tree")
        }
        entries[index].value.replace(at: keyPath.dropFirst(), with: newValue)
        self = .section(entries)
    }

    /// The YAML spelling of a scalar or flow list (`True`, `0.001`, `[3, 4, 6, 3]`, `null`).
    var yamlScalar: String {
        switch self {
        case .boolean(let value): value ? "True" : "False"
        case .integer(let value): "\(value)"
        case .real(let value): "\(value)"
        case .text(let value): ConfigurationValue.quotedIfNeeded(value)
        case .list(let items): "[" + items.map(\.yamlScalar).joined(separator: ", ") + "]"
        case .section: "{…}"
        case .absent: "null"
        }
    }

    private static func quotedIfNeeded(_ text: String) -> String {
        let plain =
            !text.isEmpty && text.allSatisfy { $0.isLetter || $0.isNumber || "._/-+".contains($0) }
            && Double(text) == nil
            && !["true", "false", "null", "yes", "no", "on", "off", "~"].contains(text.lowercased())
        if plain { return text }
        return "\"" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            + "\""
    }

    /// Block-style YAML of a section tree, two spaces per level, every key on its own line.
    func yamlLines(indent: Int = 0) -> [String] {
        guard case .section(let entries) = self else { return [yamlScalar] }
        let padding = String(repeating: " ", count: indent)
        return entries.flatMap { entry -> [String] in
            if case .section = entry.value {
                return ["\(padding)\(entry.key):"] + entry.value.yamlLines(indent: indent + 2)
            }
            return ["\(padding)\(entry.key): \(entry.value.yamlScalar)"]
        }
    }
}

/// One key of a configuration section and its value.
package struct ConfigurationEntry: Sendable, Equatable {
    package var key: String
    package var value: ConfigurationValue
}
