// StrictJSON's refusals: malformed text with the reason and byte offset, invalid UTF-8, line and column in
// messages, and duplicate keys.

import StrictJSON
import Testing

/// One malformed text on a single line, the reason the parser must give and the byte offset where
/// it stopped.
struct MalformedCase: Sendable, CustomTestStringConvertible {
    var text: String
    var reason: String
    var offset: Int

    var testDescription: String { text.debugDescription }
}

@Suite("Malformed JSON is refused with a reason, a byte offset and line:column")
struct JSONSyntaxErrorTests {
    static let malformed: [MalformedCase] = [
        MalformedCase(text: "", reason: "unexpected end of input, expected a value", offset: 0),
        MalformedCase(text: "   ", reason: "unexpected end of input, expected a value", offset: 3),
        MalformedCase(text: "{", reason: "unexpected end of input in object", offset: 1),
        MalformedCase(text: #"{"a":}"#, reason: "unexpected character '}', expected a value", offset: 5),
        MalformedCase(text: #"{"a" 1}"#, reason: #"expected ':' after key "a""#, offset: 5),
        MalformedCase(text: "{1:2}", reason: "expected a quoted key", offset: 1),
        MalformedCase(text: #"{"a":1,}"#, reason: "expected a quoted key", offset: 7),
        MalformedCase(text: #"{"a":1 "b":2}"#, reason: "expected ',' or '}' in object", offset: 7),
        MalformedCase(text: "[1", reason: "unexpected end of input in array", offset: 2),
        MalformedCase(text: "[1,]", reason: "unexpected character ']', expected a value", offset: 3),
        MalformedCase(text: "[1 2]", reason: "expected ',' or ']' in array", offset: 3),
        MalformedCase(text: "[1]]", reason: "unexpected text after the JSON value", offset: 3),
        MalformedCase(text: #"{"a":1}x"#, reason: "unexpected text after the JSON value", offset: 7),
        MalformedCase(text: "01", reason: "unexpected text after the JSON value", offset: 1),
        MalformedCase(text: "-01", reason: "unexpected text after the JSON value", offset: 2),
        MalformedCase(text: "-", reason: "expected digits in number", offset: 1),
        MalformedCase(text: "-a", reason: "expected digits in number", offset: 1),
        MalformedCase(text: "1.", reason: "expected digits after '.'", offset: 2),
        MalformedCase(text: "1.e5", reason: "expected digits after '.'", offset: 2),
        MalformedCase(text: "1e", reason: "expected digits in exponent", offset: 2),
        MalformedCase(text: "1e+", reason: "expected digits in exponent", offset: 3),
        MalformedCase(text: ".5", reason: "unexpected character '.', expected a value", offset: 0),
        MalformedCase(text: "+1", reason: "unexpected character '+', expected a value", offset: 0),
        MalformedCase(text: "NaN", reason: "unexpected character 'N', expected a value", offset: 0),
        MalformedCase(text: "Infinity", reason: "unexpected character 'I', expected a value", offset: 0),
        MalformedCase(text: "[-Infinity]", reason: "expected digits in number", offset: 2),
        MalformedCase(text: "// comment\n1", reason: "unexpected character '/', expected a value", offset: 0),
        MalformedCase(text: "'a'", reason: "unexpected character ''', expected a value", offset: 0),
        MalformedCase(text: "\u{FEFF}1", reason: "unexpected character byte 0xEF, expected a value", offset: 0),
        MalformedCase(text: "nul", reason: "invalid literal, expected 'null'", offset: 0),
        MalformedCase(text: "tRue", reason: "invalid literal, expected 'true'", offset: 0),
        MalformedCase(text: "[fals]", reason: "invalid literal, expected 'false'", offset: 1),
        MalformedCase(text: "\"a", reason: "unterminated string", offset: 2),
        MalformedCase(text: "\"\u{01}\"", reason: "control character in string", offset: 1),
        MalformedCase(text: "\"a\nb\"", reason: "control character in string", offset: 2),
        MalformedCase(text: #""\x""#, reason: #"invalid escape '\x'"#, offset: 2),
        MalformedCase(text: "\"\\", reason: "unterminated escape", offset: 2),
        MalformedCase(text: #""\u12G4""#, reason: #"expected four hex digits after \u"#, offset: 5),
        MalformedCase(text: #""\u00""#, reason: #"expected four hex digits after \u"#, offset: 5),
        MalformedCase(text: #""\u+0041""#, reason: #"expected four hex digits after \u"#, offset: 3),
        MalformedCase(text: #""\ud800""#, reason: "unpaired UTF-16 surrogate", offset: 1),
        MalformedCase(text: #""x\ud800x""#, reason: "unpaired UTF-16 surrogate", offset: 2),
        MalformedCase(text: #""\udc00""#, reason: "unpaired UTF-16 surrogate", offset: 1),
        MalformedCase(text: #""\ud800\u0041""#, reason: "unpaired UTF-16 surrogate", offset: 1),
        MalformedCase(text: #""\ud800\ud800""#, reason: "unpaired UTF-16 surrogate", offset: 1),
    ]

    @Test("each malformed text gets its reason and position", arguments: malformed)
    func malformedText(_ malformed: MalformedCase) {
        let expected = JSONSyntaxError(
            reason: malformed.reason, offset: malformed.offset, line: 1, column: malformed.offset + 1)
        #expect(throws: expected) { try JSONValue(parsing: malformed.text) }
    }

    @Test("strings must be valid UTF-8; the error points at the string")
    func invalidUTF8() {
        for bytes: [UInt8] in [
            [0x22, 0xC3, 0x28, 0x22], [0x5B, 0x22, 0x80, 0x22, 0x5D], [0x22, 0xED, 0xA0, 0x80, 0x22],
        ] {
            let start = bytes.firstIndex(of: 0x22)!
            #expect(
                throws: JSONSyntaxError(reason: "string is not valid UTF-8", offset: start, line: 1, column: start + 1),
                "\(bytes)"
            ) {
                try JSONValue(parsing: bytes)
            }
        }
    }

    @Test("line and column count lines by \\n and columns in bytes")
    func lineAndColumn() {
        // A rank table cut off after a key: the end of input is on line 2, column 12.
        #expect(
            throws: JSONSyntaxError(
                reason: "unexpected end of input, expected a value", offset: 30, line: 2, column: 12)
        ) {
            try JSONValue(parsing: "{\"version\": \"1.0\",\n \"status\": ")
        }
        #expect(throws: JSONSyntaxError(reason: "invalid literal, expected 'true'", offset: 9, line: 2, column: 8)) {
            try JSONValue(parsing: "{\n  \"a\": tru\n}")
        }
        // `\r` is an ordinary byte of the line; non-ASCII characters count their UTF-8 bytes.
        #expect(
            throws: JSONSyntaxError(reason: "unexpected character 'x', expected a value", offset: 8, line: 2, column: 6)
        ) {
            try JSONValue(parsing: "{\r\n\"a\": x}")
        }
        #expect(throws: JSONSyntaxError(reason: "expected ',' or ']' in array", offset: 7, line: 2, column: 6)) {
            try JSONValue(parsing: "[\n\"é\" 1]")
        }
    }

    @Test("a key repeated in one object is refused at its second copy, naming the first")
    func duplicateKeys() {
        #expect(
            throws: JSONSyntaxError(
                reason: #"duplicate key "version": it appears twice in one object (first at line 1:2)"#,
                offset: 17, line: 1, column: 18)
        ) {
            try JSONValue(parsing: #"{"version":"1.0","version":"1.2"}"#)
        }
        // Nested objects are checked too; equal text after escapes is the same key.
        #expect(
            throws: JSONSyntaxError(
                reason: #"duplicate key "a": it appears twice in one object (first at line 2:3)"#,
                offset: 23, line: 3, column: 3)
        ) {
            try JSONValue(parsing: "[{\"k\": 1},\n {\"a\": 1,\n  \"\\u0061\": 2}]")
        }
        // A key with a newline is quoted with the newline escaped, so a message stays one line.
        do {
            _ = try JSONValue(parsing: #"{"x\nINFO forged": 1, "x\nINFO forged": 2}"#)
            Issue.record("accepted a repeated key")
        } catch {
            #expect(error.reason.hasPrefix(#"duplicate key "x\nINFO forged""#))
            #expect(!error.description.contains("\n"))
        }
    }

    @Test("the description names the byte and line:column")
    func description() {
        do {
            _ = try JSONValue(parsing: "[1,\n  x]")
            Issue.record("accepted malformed JSON")
        } catch {
            #expect(
                error.description == "malformed JSON at byte 6 (line 2:3): unexpected character 'x', expected a value")
        }
    }
}
