// The shape of a configuration file: what kinds of value a key can hold, how a value is bounded, and
// the key tree that ``ConfigurationKeys``' flat table is arranged into for validation.

/// Bounds on a numeric configuration value, each end open, closed or absent.
struct NumericBounds: Sendable, CustomStringConvertible {
    var lower: Double?
    var lowerInclusive = true
    var upper: Double?
    var upperInclusive = true

    /// [lower, upper], or (lower, upper] without `lowerInclusive`.
    static func between(_ lower: Double, _ upper: Double, lowerInclusive: Bool = true) -> NumericBounds {
        NumericBounds(lower: lower, lowerInclusive: lowerInclusive, upper: upper)
    }
    /// The integers of `range`.
    static func integers(_ range: ClosedRange<Int>) -> NumericBounds {
        NumericBounds(lower: Double(range.lowerBound), upper: Double(range.upperBound))
    }
    /// [0, 1)
    static let unitHalfOpen = NumericBounds(lower: 0, upper: 1, upperInclusive: false)

    func contains(_ value: Double) -> Bool {
        if let lower, lowerInclusive ? value < lower : value <= lower { return false }
        if let upper, upperInclusive ? value > upper : value >= upper { return false }
        return value.isFinite
    }

    var description: String {
        switch (lower, upper) {
        case (let lower?, let upper?):
            "in \(lowerInclusive ? "[" : "(")\(Self.format(lower)), \(Self.format(upper))\(upperInclusive ? "]" : ")")"
        case (let lower?, nil): "\(lowerInclusive ? ">=" : ">") \(Self.format(lower))"
        case (nil, let upper?): "\(upperInclusive ? "<=" : "<") \(Self.format(upper))"
        case (nil, nil): "finite"
        }
    }

    private static func format(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? "\(Int(value))" : "\(value)"
    }
}

/// How a text value is checked and normalised.
enum TextForm: Sendable {
    /// Any non-empty text.
    case plain
    /// One of `choices`. With `lastPathComponent`, a path-qualified spelling such as the seed's
    /// `./src/ghostnet_d.ghostnet101` is reduced to its last component first.
    case choice([String], lastPathComponent: Bool = false)
    /// A file-system path; relative paths are made absolute against the current directory.
    case path
    /// An `http://` or `https://host:port[/path]` URL.
    case httpURL
    /// `auto` or a byte size with its unit (see ``MemoryLimit``).
    case memorySize
}

/// What a key holds.
indirect enum SchemaKind: Sendable {
    case section([SchemaKey])
    case boolean
    case integer(NumericBounds)
    case real(NumericBounds)
    case text(TextForm)
    /// A flow or block list of integers, each within the bounds, optionally of a fixed length.
    case integerList(NumericBounds, count: Int?)
    /// A list of texts, each one of `choices` when given.
    case textList(choices: [String]?)

    var isSection: Bool {
        if case .section = self { return true }
        return false
    }

    /// What a value of this kind looks like, for "expected …" messages.
    var expectation: String {
        switch self {
        case .section: "a mapping of keys"
        case .boolean: "True or False"
        case .integer(let bounds): "an integer \(bounds)"
        case .real(let bounds): "a number \(bounds)"
        case .text(.plain): "a non-empty text"
        case .text(.choice(let choices, _)): "one of \(choices.joined(separator: ", "))"
        case .text(.path): "a file-system path"
        case .text(.httpURL): "an http:// or https://host:port URL"
        case .text(.memorySize): MemoryLimit.expectation
        case .integerList(let bounds, let count):
            "a list of \(count.map { "\($0) " } ?? "")integers \(bounds), e.g. [3, 4, 6, 3]"
        case .textList(let choices?): "a list of: \(choices.joined(separator: ", "))"
        case .textList(nil): "a list of texts"
        }
    }
}

/// The value a key takes when the file does not give it.
enum DefaultValue: Sendable {
    case value(ConfigurationValue)
    /// The file must give the key.
    case required
    /// The key stays `null` (for a section: it is left out) unless given.
    case absent
    /// Computed from other keys after validation; the text says from what.
    case derived(String)

    /// True when a missing key gets a value (a default or a derived one).
    var suppliesValue: Bool {
        switch self {
        case .value, .derived: true
        case .required, .absent: false
        }
    }
}

/// One key of the configuration schema.
struct SchemaKey: Sendable {
    let name: String
    let kind: SchemaKind
    let defaultValue: DefaultValue
}

/// The keys of a configuration file as a tree of sections, built from ``ConfigurationKeys``.
enum ConfigurationSchema {
    /// The whole file.
    static let root: [SchemaKey] = tree(ConfigurationKeys.rootTable)

    /// The entries arranged as sections, in the order each section first appears. A section that
    /// only groups keys is always present (filled with its keys' defaults).
    static func tree(_ entries: [SchemaEntry]) -> [SchemaKey] {
        var names: [String] = []
        var members: [String: [SchemaEntry]] = [:]
        var leaves: [String: SchemaEntry] = [:]
        for entry in entries {
            let parts = entry.path.split(separator: ".", maxSplits: 1)
            let name = String(parts[0])
            if !names.contains(name) { names.append(name) }
            if parts.count == 1 {
                leaves[name] = entry
            } else {
                members[name, default: []].append(
                    SchemaEntry(path: String(parts[1]), kind: entry.kind, defaultValue: entry.defaultValue))
            }
        }
        return names.map { name in
            if let leaf = leaves[name] {
                return SchemaKey(name: name, kind: leaf.kind, defaultValue: leaf.defaultValue)
            }
            return SchemaKey(name: name, kind: .section(tree(members[name] ?? [])), defaultValue: .value(.absent))
        }
    }

    /// Every full key path whose last component is `name`, for suggesting a misplaced key.
    static func paths(endingWith name: String) -> [String] {
        func walk(_ keys: [SchemaKey], _ prefix: String) -> [String] {
            keys.flatMap { key -> [String] in
                let path = prefix.isEmpty ? key.name : "\(prefix).\(key.name)"
                var found = key.name == name ? [path] : []
                if case .section(let children) = key.kind { found += walk(children, path) }
                return found
            }
        }
        return walk(root, "")
    }
}
