// StrictJSON parsing: ordered members, arrays and literals, byte and string input, number text and
// range, escape decoding, and the depth cap.

import StrictJSON
import Testing
import _TestSupport

/// The members of `value`, or an issue when it is not an object.
private func members(
    _ value: JSONValue, sourceLocation: SourceLocation = #_sourceLocation
) -> [(key: String, value: JSONValue)] {
    guard case .object(let members) = value else {
        Issue.record("expected an object, got \(value.kindName)", sourceLocation: sourceLocation)
        return []
    }
    return members
}

/// The number held by `value`, or an issue when it is not a number.
private func number(_ value: JSONValue, sourceLocation: SourceLocation = #_sourceLocation) -> JSONNumber? {
    guard case .number(let number) = value else {
        Issue.record("expected a number, got \(value.kindName)", sourceLocation: sourceLocation)
        return nil
    }
    return number
}

@Suite("Parsing keeps order, number text and every escape")
struct JSONParsingTests {
    @Test("objects keep their members in text order; the same key may recur in different objects")
    func orderedMembers() throws {
        let value = try JSONValue(parsing: #" {"z": 1, "a": {"k": true, "z": false}, "m": {}, "k": null} "#)
        let top = members(value)
        #expect(top.map(\.key) == ["z", "a", "m", "k"])
        #expect(top[1].value == .object([("k", .bool(true)), ("z", .bool(false))]))
        #expect(top[2].value == .object([]))
        #expect(top[3].value == .null)
        // Order is part of equality, so a reordered object is a different value.
        #expect(try JSONValue(parsing: #"{"a":1,"b":2}"#) != (try JSONValue(parsing: #"{"b":2,"a":1}"#)))
    }

    @Test("arrays, literals and whitespace")
    func arraysAndLiterals() throws {
        let value = try JSONValue(parsing: " \t\r\n[true ,false,null, [ ], \"\" ]\n")
        #expect(value == .array([.bool(true), .bool(false), .null, .array([]), .string("")]))
        #expect(value.kindName == "array")
        #expect(JSONValue.null.kindName == "null" && JSONValue.bool(true).kindName == "boolean")
    }

    @Test("bytes and string input parse the same")
    func byteAndStringInput() throws {
        let text = #"{"name":"é","n":[1,2]}"#
        #expect(try JSONValue(parsing: Array(text.utf8)) == (try JSONValue(parsing: text)))
        #expect(try JSONValue(parsing: text.utf8[...]) == (try JSONValue(parsing: text)))
    }

    /// (text, integerValue, doubleValue)
    static let numbers: [(String, Int?, Double)] = [
        ("0", 0, 0), ("-0", 0, 0), ("7", 7, 7), ("-12", -12, -12), ("2.50", nil, 2.5), ("1e2", nil, 100),
        ("1E+2", nil, 100), ("-1.5e-3", nil, -0.0015), ("9223372036854775807", Int.max, 9.223372036854775807e18),
        ("99999999999999999999", nil, 1e20), ("1.0", nil, 1),
    ]

    @Test("numbers keep their source text and read as Int or Double", arguments: numbers)
    func numberText(text: String, integer: Int?, double: Double) throws {
        guard let parsed = number(try JSONValue(parsing: "[\(text)]").arrayElements.first ?? .null) else { return }
        #expect(parsed.text == text)
        #expect(parsed.description == text)
        #expect(parsed.integerValue == integer)
        expectClose(parsed.doubleValue, double, relative: 1e-15, absolute: 0)
    }

    @Test("numbers beyond Double's range read as infinity; the caller decides")
    func outOfRangeNumbers() throws {
        let positive = number(try JSONValue(parsing: "1e999"))
        let negative = number(try JSONValue(parsing: "-1e999"))
        #expect(
            positive?.text == "1e999" && positive?.doubleValue.isInfinite == true && positive?.doubleValue.sign == .plus
        )
        #expect(negative?.doubleValue.isInfinite == true && negative?.doubleValue.sign == .minus)
        #expect(positive?.integerValue == nil)
    }

    @Test("numbers compare by text, so 1 and 1.0 differ")
    func numberEquality() throws {
        #expect(try JSONValue(parsing: "1") == .integer(1))
        #expect(try JSONValue(parsing: "1.0") != .integer(1))
        #expect(try JSONValue(parsing: "0.5") == .double(0.5))
        #expect(JSONNumber(-3).text == "-3")
        #expect(JSONNumber(0.1).text == "0.1")
        #expect(JSONNumber(38216.0).text == "38216.0")
    }

    /// (escaped JSON string, decoded text)
    static let escapes: [(String, String)] = [
        (#""\"\\\/\b\f\n\r\t""#, "\"\\/\u{08}\u{0C}\n\r\t"),
        (#""\u00e9\u00E9""#, "éé"),
        (#""\ud83d\ude00""#, "😀"),
        (#""\uD834\uDD1E""#, "𝄞"),
        (#""a\u0000b""#, "a\u{0}b"),
        (#""\uffff""#, "\u{FFFF}"),
        ("\"é😀 raw UTF-8\"", "é😀 raw UTF-8"),
    ]

    @Test("escapes and surrogate pairs decode", arguments: escapes)
    func escapeDecoding(json: String, expected: String) throws {
        #expect(try JSONValue(parsing: json) == .string(expected))
    }

    @Test("nesting is capped at maximumDepth arrays and objects")
    func depthCap() throws {
        func nested(_ depth: Int) -> String {
            String(repeating: "[", count: depth) + "1" + String(repeating: "]", count: depth)
        }
        #expect(JSONValue.defaultMaximumDepth == 32)
        _ = try JSONValue(parsing: nested(32))
        #expect(throws: JSONSyntaxError(reason: "nesting deeper than 32 levels", offset: 32, line: 1, column: 33)) {
            try JSONValue(parsing: nested(33))
        }
        _ = try JSONValue(parsing: #"{"a":[1]}"#, maximumDepth: 2)
        #expect(throws: JSONSyntaxError(reason: "nesting deeper than 2 levels", offset: 6, line: 1, column: 7)) {
            try JSONValue(parsing: #"{"a":[{"b":1}]}"#, maximumDepth: 2)
        }
        // Hostile depth is refused before it can exhaust the stack.
        #expect(throws: JSONSyntaxError.self) { try JSONValue(parsing: String(repeating: "[", count: 100_000)) }
        #expect(throws: JSONSyntaxError.self) { try JSONValue(parsing: nested(100), maximumDepth: 99) }
        _ = try JSONValue(parsing: nested(100), maximumDepth: 100)
    }
}

extension JSONValue {
    /// The elements of an array, or none.
    fileprivate var arrayElements: [JSONValue] {
        if case .array(let elements) = self { elements } else { [] }
    }
}
