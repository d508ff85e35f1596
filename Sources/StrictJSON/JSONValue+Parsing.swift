// The strict RFC 8259 reader behind every JSON input of the project (rank tables, records,
// the coordinator's API): one pass over the bytes, a depth cap, no repeated keys, and errors that
// say where reading stopped.

/// Why a text is not valid JSON: what was expected, and where reading stopped.
package struct JSONSyntaxError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What is wrong, e.g. `unexpected end of input, expected a value`.
    package var reason: String
    /// The 0-based byte offset where reading stopped.
    package var offset: Int
    /// The 1-based line of ``offset`` (lines end at `\n`).
    package var line: Int
    /// The 1-based column of ``offset``, counted in bytes from the start of its line.
    package var column: Int

    package init(reason: String, offset: Int, line: Int, column: Int) {
        self.reason = reason
        self.offset = offset
        self.line = line
        self.column = column
    }

    package var description: String { "malformed JSON at byte \(offset) (line \(line):\(column)): \(reason)" }
}

extension JSONValue {
    /// The deepest nesting of arrays and objects accepted unless a caller asks otherwise, so hostile
    /// input cannot exhaust the stack.
    package static let defaultMaximumDepth = 32

    /// Parses one JSON text strictly by RFC 8259: whitespace may surround the value, nothing else
    /// may follow it, strings must be valid UTF-8 with paired `\u` surrogates, and `NaN`,
    /// `Infinity`, comments and trailing commas are refused. A key repeated in one object is
    /// refused too: readers disagree on which copy wins (Python's last, others the first), so a
    /// table or record with both would mean different things to different tools.
    ///
    /// - Parameters:
    ///   - bytes: UTF-8 text.
    ///   - maximumDepth: the most arrays and objects that may be open at once.
    /// - Throws: ``JSONSyntaxError`` naming the position and what was expected.
    package init(
        parsing bytes: some Collection<UInt8>, maximumDepth: Int = JSONValue.defaultMaximumDepth
    ) throws(JSONSyntaxError) {
        var scanner = Scanner(bytes: Array(bytes), maximumDepth: maximumDepth)
        scanner.skipWhitespace()
        let value = try scanner.parseValue(depth: 0)
        scanner.skipWhitespace()
        guard scanner.isAtEnd else { throw scanner.error("unexpected text after the JSON value") }
        self = value
    }

    /// Parses one JSON text given as a string; see ``init(parsing:maximumDepth:)``.
    package init(parsing text: String, maximumDepth: Int = JSONValue.defaultMaximumDepth) throws(JSONSyntaxError) {
        try self.init(parsing: Array(text.utf8), maximumDepth: maximumDepth)
    }
}

/// A cursor over the UTF-8 bytes of one JSON text.
private struct Scanner {
    let bytes: [UInt8]
    let maximumDepth: Int
    var position = 0

    init(bytes: [UInt8], maximumDepth: Int) {
        self.bytes = bytes
        self.maximumDepth = maximumDepth
    }

    var isAtEnd: Bool { position == bytes.count }

    /// An error at `offset` (by default the current position), with its line and column.
    func error(_ reason: String, at offset: Int? = nil) -> JSONSyntaxError {
        let offset = offset ?? position
        var line = 1
        var lineStart = 0
        for index in 0..<min(offset, bytes.count) where bytes[index] == UInt8(ascii: "\n") {
            line += 1
            lineStart = index + 1
        }
        return JSONSyntaxError(reason: reason, offset: offset, line: line, column: offset - lineStart + 1)
    }

    mutating func skipWhitespace() {
        while position < bytes.count {
            switch bytes[position] {
            case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\n"), UInt8(ascii: "\r"): position += 1
            default: return
            }
        }
    }

    /// Steps over `byte` when it is next.
    mutating func consume(_ byte: UInt8) -> Bool {
        guard position < bytes.count, bytes[position] == byte else { return false }
        position += 1
        return true
    }

    /// `depth` is the number of arrays and objects already open around the value.
    mutating func parseValue(depth: Int) throws(JSONSyntaxError) -> JSONValue {
        guard position < bytes.count else { throw error("unexpected end of input, expected a value") }
        switch bytes[position] {
        case UInt8(ascii: "{"):
            guard depth < maximumDepth else { throw error("nesting deeper than \(maximumDepth) levels") }
            return try parseObject(depth: depth + 1)
        case UInt8(ascii: "["):
            guard depth < maximumDepth else { throw error("nesting deeper than \(maximumDepth) levels") }
            return try parseArray(depth: depth + 1)
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): return try parseLiteral("true", .bool(true))
        case UInt8(ascii: "f"): return try parseLiteral("false", .bool(false))
        case UInt8(ascii: "n"): return try parseLiteral("null", .null)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try parseNumber())
        case let byte: throw error("unexpected character \(Self.describe(byte)), expected a value")
        }
    }

    /// The longest key, in characters, that an error message quotes in full.
    static let quotedKeyLimit = 64

    /// `key` as a JSON string literal, control characters escaped (a message stays one line) and
    /// shortened to ``quotedKeyLimit`` characters.
    static func quoted(_ key: String) -> String {
        key.count <= quotedKeyLimit
            ? JSONValue.string(key).serialized
            : JSONValue.string(String(key.prefix(quotedKeyLimit))).serialized + "…"
    }

    /// `'x'` for printable ASCII, else the byte in hex, so messages stay readable.
    static func describe(_ byte: UInt8) -> String {
        (0x20..<0x7F).contains(byte)
            ? "'\(Character(Unicode.Scalar(byte)))'" : "byte 0x\(String(byte, radix: 16, uppercase: true))"
    }

    mutating func parseObject(depth: Int) throws(JSONSyntaxError) -> JSONValue {
        position += 1
        var members: [(key: String, value: JSONValue)] = []
        // Each key with the offset of its opening quote, to name the first copy of a repeated key.
        var keyOffsets: [String: Int] = [:]
        skipWhitespace()
        if consume(UInt8(ascii: "}")) { return .object(members) }
        while true {
            skipWhitespace()
            guard position < bytes.count, bytes[position] == UInt8(ascii: "\"") else {
                throw error(isAtEnd ? "unexpected end of input in object" : "expected a quoted key")
            }
            let keyOffset = position
            let key = try parseString()
            if let first = keyOffsets.updateValue(keyOffset, forKey: key) {
                let firstError = error("", at: first)
                throw error(
                    "duplicate key \(Self.quoted(key)): it appears twice in one object "
                        + "(first at line \(firstError.line):\(firstError.column))",
                    at: keyOffset)
            }
            skipWhitespace()
            guard consume(UInt8(ascii: ":")) else { throw error("expected ':' after key \(Self.quoted(key))") }
            skipWhitespace()
            members.append((key, try parseValue(depth: depth)))
            skipWhitespace()
            if consume(UInt8(ascii: ",")) { continue }
            if consume(UInt8(ascii: "}")) { return .object(members) }
            throw error(isAtEnd ? "unexpected end of input in object" : "expected ',' or '}' in object")
        }
    }

    mutating func parseArray(depth: Int) throws(JSONSyntaxError) -> JSONValue {
        position += 1
        var elements: [JSONValue] = []
        skipWhitespace()
        if consume(UInt8(ascii: "]")) { return .array(elements) }
        while true {
            skipWhitespace()
            elements.append(try parseValue(depth: depth))
            skipWhitespace()
            if consume(UInt8(ascii: ",")) { continue }
            if consume(UInt8(ascii: "]")) { return .array(elements) }
            throw error(isAtEnd ? "unexpected end of input in array" : "expected ',' or ']' in array")
        }
    }

    mutating func parseLiteral(_ literal: String, _ value: JSONValue) throws(JSONSyntaxError) -> JSONValue {
        guard bytes[position...].starts(with: literal.utf8) else {
            throw error("invalid literal, expected '\(literal)'")
        }
        position += literal.utf8.count
        return value
    }

    /// Reads a string starting at its opening quote. The bytes between escapes are copied as they
    /// are and checked as UTF-8 once the string is complete.
    mutating func parseString() throws(JSONSyntaxError) -> String {
        let start = position
        position += 1
        var utf8: [UInt8] = []
        while position < bytes.count {
            let byte = bytes[position]
            switch byte {
            case UInt8(ascii: "\""):
                position += 1
                guard let text = String(validating: utf8, as: UTF8.self) else {
                    throw error("string is not valid UTF-8", at: start)
                }
                return text
            case UInt8(ascii: "\\"):
                position += 1
                utf8.append(contentsOf: String(Character(try parseEscape())).utf8)
            case 0x00..<0x20:
                throw error("control character in string")
            default:
                utf8.append(byte)
                position += 1
            }
        }
        throw error("unterminated string")
    }

    /// Reads what follows a backslash; a `\u` high surrogate must be followed by a `\u` low one.
    mutating func parseEscape() throws(JSONSyntaxError) -> Unicode.Scalar {
        guard position < bytes.count else { throw error("unterminated escape") }
        let byte = bytes[position]
        switch byte {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"):
            position += 1
            return Unicode.Scalar(byte)
        case UInt8(ascii: "b"):
            position += 1
            return "\u{08}"
        case UInt8(ascii: "f"):
            position += 1
            return "\u{0C}"
        case UInt8(ascii: "n"):
            position += 1
            return "\n"
        case UInt8(ascii: "r"):
            position += 1
            return "\r"
        case UInt8(ascii: "t"):
            position += 1
            return "\t"
        case UInt8(ascii: "u"):
            position += 1
            let escapeStart = position - 2
            let unit = try parseHexQuad()
            if (0xD800..<0xDC00).contains(unit) {
                guard consume(UInt8(ascii: "\\")), consume(UInt8(ascii: "u")) else {
                    throw error("unpaired UTF-16 surrogate", at: escapeStart)
                }
                let low = try parseHexQuad()
                guard (0xDC00..<0xE000).contains(low) else { throw error("unpaired UTF-16 surrogate", at: escapeStart) }
                return Unicode.Scalar(0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00))!
            }
            // Only a lone low surrogate (U+DC00...U+DFFF) is not a scalar here.
            guard let scalar = Unicode.Scalar(unit) else { throw error("unpaired UTF-16 surrogate", at: escapeStart) }
            return scalar
        default:
            let escape =
                (0x20..<0x7F).contains(byte)
                ? "'\\\(Character(Unicode.Scalar(byte)))'" : "before \(Self.describe(byte))"
            throw error("invalid escape \(escape)")
        }
    }

    mutating func parseHexQuad() throws(JSONSyntaxError) -> UInt32 {
        var value: UInt32 = 0
        for _ in 0..<4 {
            let digit: UInt8
            switch position < bytes.count ? bytes[position] : 0 {
            case let byte where (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte): digit = byte - UInt8(ascii: "0")
            case let byte where (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(byte | 0x20):
                digit = (byte | 0x20) - UInt8(ascii: "a") + 10
            default: throw error("expected four hex digits after \\u")
            }
            value = value << 4 | UInt32(digit)
            position += 1
        }
        return value
    }

    /// Reads a number by the RFC 8259 grammar: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
    mutating func parseNumber() throws(JSONSyntaxError) -> JSONNumber {
        let start = position
        _ = consume(UInt8(ascii: "-"))
        // A leading zero may not be followed by more digits, so only one is consumed.
        if !consume(UInt8(ascii: "0")), !consumeDigits() { throw error("expected digits in number") }
        if consume(UInt8(ascii: ".")), !consumeDigits() { throw error("expected digits after '.'") }
        if position < bytes.count, bytes[position] | 0x20 == UInt8(ascii: "e") {
            position += 1
            if !consume(UInt8(ascii: "+")) { _ = consume(UInt8(ascii: "-")) }
            guard consumeDigits() else { throw error("expected digits in exponent") }
        }
        return JSONNumber(validatedText: String(decoding: bytes[start..<position], as: UTF8.self))
    }

    /// Steps over a run of decimal digits; whether there was at least one.
    mutating func consumeDigits() -> Bool {
        let start = position
        while position < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[position]) {
            position += 1
        }
        return position > start
    }
}
