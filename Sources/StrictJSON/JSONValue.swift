// The JSON value model of StrictJSON: ordered members and numbers kept as their source text.

/// A JSON value exactly as the text gave it.
///
/// Foundation's `JSONSerialization` and `JSONDecoder` lose what strict readers need: objects come
/// back as dictionaries (key order gone, a repeated key silently resolved), numbers as `NSNumber`/`Double` (a
/// rank table's `0` and `"0"` blur, `1e999` silently becomes infinity), and syntax errors carry no
/// position. `JSONValue` keeps all of it:
///
/// - objects are member lists in text order; the parser refuses a key repeated in one object;
/// - numbers keep their source text (``JSONNumber``), to be read as `Int` or `Double`, or quoted;
/// - ``init(parsing:maximumDepth:)`` is strict RFC 8259 and throws a
///   ``JSONSyntaxError`` with the byte offset and `line:column` where reading stopped;
/// - ``serialized`` writes compact JSON back, members in their stored order.
package enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    case number(JSONNumber)
    case string(String)
    case array([JSONValue])
    /// Members in text order. Parsed objects never repeat a key; a value built in code may, and is
    /// then written as it is.
    case object([(key: String, value: JSONValue)])

    /// A number holding `value` in decimal, e.g. `.integer(3)` is written `3`.
    package static func integer(_ value: Int) -> JSONValue { .number(JSONNumber(value)) }

    /// A number holding `value` in its shortest round-trip form, e.g. `.double(0.5)` is written `0.5`.
    ///
    /// - Precondition: `value` is finite (JSON cannot carry NaN or infinity).
    package static func double(_ value: Double) -> JSONValue { .number(JSONNumber(value)) }

    /// The kind of value as error messages name it: `object`, `array`, `string`, `number`,
    /// `boolean` or `null`.
    package var kindName: String {
        switch self {
        case .null: "null"
        case .bool: "boolean"
        case .number: "number"
        case .string: "string"
        case .array: "array"
        case .object: "object"
        }
    }

    /// Structural equality: objects compare member by member in order (so key order matters), and
    /// numbers by their text (so `1` and `1.0` differ; compare ``JSONNumber/doubleValue`` for
    /// numeric equality).
    package static func == (lhs: JSONValue, rhs: JSONValue) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null): true
        case (.bool(let a), .bool(let b)): a == b
        case (.number(let a), .number(let b)): a == b
        case (.string(let a), .string(let b)): a == b
        case (.array(let a), .array(let b)): a == b
        case (.object(let a), .object(let b)):
            a.count == b.count && zip(a, b).allSatisfy { $0.key == $1.key && $0.value == $1.value }
        default: false
        }
    }
}

/// A JSON number kept as the text that wrote it, e.g. `7`, `-0`, `2.50` or `1e999`.
///
/// Keeping the text lets each caller decide how to read it: as an exact `Int` (``integerValue``),
/// as the nearest `Double` (``doubleValue``), or verbatim in a message (``text``).
package struct JSONNumber: Sendable, Hashable, CustomStringConvertible {
    /// The number as written; always valid RFC 8259 number syntax.
    package let text: String

    /// Wraps text the parser has already checked against the number grammar.
    init(validatedText text: String) { self.text = text }

    /// The number `value`, written in decimal.
    package init(_ value: Int) { text = String(value) }

    /// The number `value`, written in its shortest round-trip form (`0.1`, `1e-05`, `1e+20`).
    ///
    /// - Precondition: `value` is finite (JSON cannot carry NaN or infinity).
    package init(_ value: Double) {
        precondition(value.isFinite, "JSON cannot carry \(value)")
        text = value.description
    }

    /// The value as an `Int` when the text is an integer (no fraction, no exponent) that fits;
    /// `nil` for `1.0`, `1e2` or `99999999999999999999`.
    package var integerValue: Int? {
        text.utf8.contains { $0 == UInt8(ascii: ".") || $0 | 0x20 == UInt8(ascii: "e") } ? nil : Int(text)
    }

    /// The nearest `Double`; text beyond `Double`'s range reads as ±infinity (`1e999`), so callers
    /// that need a finite value must check.
    package var doubleValue: Double {
        // The text always has number syntax, which `Double` always reads.
        Double(text)!
    }

    package var description: String { text }
}
