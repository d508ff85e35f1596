// Parsing of the raw bytes of an HTTP/1.x response into status, header fields and body
// (Content-Length or chunked framing). The bytes come from a peer that may be broken or hostile:
// every size is read with checked arithmetic and checked against the bytes actually there, so
// any input ends in a response or an HTTPClientError, never a trap.

import PerformanceRecords

package enum HTTPResponseParser {
    /// The most hexadecimal digits a chunk size may have (16 would already be 2⁶⁴ − 1).
    static let maximumChunkSizeDigits = 15

    /// Parses a complete response (everything the server sent before closing).
    ///
    /// - Throws: ``HTTPClientError`` `.malformedResponse` naming `endpoint` and the first defect.
    package static func parse(_ raw: [UInt8], from endpoint: HTTPEndpoint) throws(HTTPClientError)
        -> HTTPExchangeResponse
    {
        func malformed(_ message: String) -> HTTPClientError { HTTPClientError(.malformedResponse, endpoint, message) }

        guard let headEnd = firstCRLF(in: raw, from: 0, double: true) else {
            throw malformed("no complete header (expected a blank line after the header fields)")
        }
        var response = try head(of: raw, endingAt: headEnd, malformed: malformed)
        response.body = Array(raw[(headEnd + 4)...])
        if let encoding = response.header("Transfer-Encoding") {
            guard encoding.lowercased() == "chunked" else {
                throw malformed("Transfer-Encoding \(excerpt(encoding.utf8)) is not supported (expected chunked)")
            }
            response.body = try decodeChunked(response.body, malformed: malformed)
        } else if let lengthText = response.header("Content-Length") {
            guard let length = decimal(lengthText.utf8) else {
                throw malformed("Content-Length \(excerpt(lengthText.utf8)) is not a decimal byte count")
            }
            guard length <= response.body.count else {
                throw malformed("the body has \(response.body.count) bytes, fewer than its Content-Length \(length)")
            }
            response.body.removeLast(response.body.count - length)
        }
        return response
    }

    /// The byte length of the response at the start of `raw` once its framing shows all of it has
    /// arrived: the head and Content-Length bytes, the head and every chunk through the trailer's
    /// blank line, or the head alone for a status without a body (1xx, 204, 304). Nil while more
    /// is due, and for a response that only the server's close ends. A head or framing that cannot
    /// be read counts as complete, so that ``parse(_:from:)`` reports it without waiting.
    package static func responseLength(_ raw: [UInt8]) -> Int? {
        guard let headEnd = firstCRLF(in: raw, from: 0, double: true) else { return nil }
        let bodyStart = headEnd + 4
        let unreadable = { (message: String) in HTTPClientError(.malformedResponse, location: "response", message) }
        guard let response = try? head(of: raw, endingAt: headEnd, malformed: unreadable) else { return raw.count }
        if (100..<200).contains(response.status) || response.status == 204 || response.status == 304 {
            return bodyStart
        }
        if let encoding = response.header("Transfer-Encoding") {
            return encoding.lowercased() == "chunked" ? chunkedEnd(of: raw, from: bodyStart) : raw.count
        }
        guard let lengthText = response.header("Content-Length") else { return nil }
        guard let length = decimal(lengthText.utf8) else { return raw.count }
        return raw.count - bodyStart >= length ? bodyStart + length : nil
    }

    /// Where a chunked body that starts at `start` ends (after the last chunk's trailer fields and
    /// blank line); nil while incomplete, `raw.count` when a chunk size cannot be read.
    private static func chunkedEnd(of raw: [UInt8], from start: Int) -> Int? {
        var position = start
        while true {
            guard let lineEnd = firstCRLF(in: raw, from: position, double: false) else { return nil }
            guard let size = chunkSize(raw[position..<lineEnd]) else { return raw.count }
            let dataStart = lineEnd + 2
            guard size > 0 else {
                var trailer = dataStart
                while let end = firstCRLF(in: raw, from: trailer, double: false) {
                    if end == trailer { return end + 2 }
                    trailer = end + 2
                }
                return nil
            }
            // At most 15 hexadecimal digits: the sum cannot overflow.
            guard raw.count - dataStart >= size + 2 else { return nil }
            position = dataStart + size + 2
        }
    }

    /// The status and header fields of the head that ends at `headEnd` (a CRLFCRLF), with no body.
    private static func head(
        of raw: [UInt8], endingAt headEnd: Int, malformed: (String) -> HTTPClientError
    ) throws(HTTPClientError) -> HTTPExchangeResponse {
        var lines: [ArraySlice<UInt8>] = []
        var lineStart = 0
        while let lineEnd = firstCRLF(in: raw[..<headEnd], from: lineStart, double: false) {
            lines.append(raw[lineStart..<lineEnd])
            lineStart = lineEnd + 2
        }
        lines.append(raw[lineStart..<headEnd])

        let statusLine = lines[0]
        guard let status = statusCode(of: statusLine) else {
            throw malformed("status line \(excerpt(statusLine)) is not 'HTTP/1.x NNN reason'")
        }
        var headers: [(name: String, value: String)] = []
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: UInt8(ascii: ":")), colon > line.startIndex else {
                throw malformed("header line \(excerpt(line)) has no 'name:' before its value")
            }
            headers.append(
                (
                    String(decoding: line[..<colon], as: UTF8.self),
                    String(decoding: line[(colon + 1)...], as: UTF8.self).trimmingWhitespace()
                ))
        }
        return HTTPExchangeResponse(status: status, headers: headers, body: [])
    }

    /// The body of a chunked response: `SIZE[;ext] CRLF DATA CRLF` until a size of 0 (trailer
    /// fields after it are ignored).
    static func decodeChunked(
        _ bytes: [UInt8], malformed: (String) -> HTTPClientError
    ) throws(HTTPClientError) -> [UInt8] {
        var body: [UInt8] = []
        var position = 0
        while true {
            guard let lineEnd = firstCRLF(in: bytes, from: position, double: false) else {
                throw malformed("chunk size line at byte \(position) of the body has no CRLF")
            }
            let sizeField = bytes[position..<lineEnd]
            guard let size = chunkSize(sizeField) else {
                throw malformed(
                    "chunk size \(excerpt(sizeField)) is not a hexadecimal byte count of at most "
                        + "\(maximumChunkSizeDigits) digits")
            }
            let dataStart = lineEnd + 2
            let available = bytes.count - dataStart
            guard size <= available else {
                throw malformed("a chunk declares \(size) bytes but only \(available) follow")
            }
            if size == 0 { return body }
            body.append(contentsOf: bytes[dataStart..<(dataStart + size)])
            position = dataStart + size
            guard bytes.count - position >= 2, bytes[position] == 13, bytes[position + 1] == 10 else {
                throw malformed("chunk data ending at byte \(position) of the body is not followed by CRLF")
            }
            position += 2
        }
    }

    /// The size on a chunk's size line (`SIZE[;extensions]`, spaces around SIZE allowed), or nil.
    private static func chunkSize(_ line: ArraySlice<UInt8>) -> Int? {
        let field = line.firstIndex(of: UInt8(ascii: ";")).map { line[..<$0] } ?? line
        return hexadecimal(String(decoding: field, as: UTF8.self).trimmingWhitespace().utf8)
    }

    /// The index of the first CRLF (CRLFCRLF when `double`) at or after `start`.
    private static func firstCRLF(in bytes: ArraySlice<UInt8>, from start: Int, double: Bool) -> Int? {
        let length = double ? 4 : 2
        guard start >= bytes.startIndex, bytes.endIndex - start >= length else { return nil }
        for index in start...(bytes.endIndex - length)
        where bytes[index] == 13 && bytes[index + 1] == 10
            && (!double || (bytes[index + 2] == 13 && bytes[index + 3] == 10))
        {
            return index
        }
        return nil
    }

    private static func firstCRLF(in bytes: [UInt8], from start: Int, double: Bool) -> Int? {
        firstCRLF(in: bytes[...], from: start, double: double)
    }

    /// `HTTP/1.x NNN[ reason]` → NNN, for NNN in 100...599.
    private static func statusCode(of line: ArraySlice<UInt8>) -> Int? {
        let text = Array(line)
        let prefix = Array("HTTP/1.".utf8)
        guard text.count >= 12, Array(text[0..<7]) == prefix, isDigit(text[7]), text[8] == UInt8(ascii: " "),
            text.count == 12 || text[12] == UInt8(ascii: " "),
            let code = decimal(text[9..<12]), (100...599).contains(code)
        else { return nil }
        return code
    }

    /// A non-negative decimal of 1-18 digits (no sign, no spaces), or nil.
    private static func decimal(_ digits: some Collection<UInt8>) -> Int? {
        guard (1...18).contains(digits.count), digits.allSatisfy(isDigit) else { return nil }
        return digits.reduce(0) { $0 * 10 + Int($1 - UInt8(ascii: "0")) }
    }

    /// A non-negative hexadecimal of 1...``maximumChunkSizeDigits`` digits, or nil.
    private static func hexadecimal(_ digits: some Collection<UInt8>) -> Int? {
        guard (1...maximumChunkSizeDigits).contains(digits.count) else { return nil }
        var value = 0
        for digit in digits {
            let nibble: UInt8
            switch digit {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): nibble = digit - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): nibble = digit - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): nibble = digit - UInt8(ascii: "A") + 10
            default: return nil
            }
            value = value << 4 | Int(nibble)
        }
        return value
    }

    private static func isDigit(_ byte: UInt8) -> Bool { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) }

    /// Up to 40 bytes of peer text, quoted, control characters escaped (it may reach a log line).
    private static func excerpt(_ bytes: some Collection<UInt8>) -> String {
        let shown = String(decoding: bytes.prefix(40), as: UTF8.self)
        return "'" + LogText.escaped(shown) + (bytes.count > 40 ? "…" : "") + "'"
    }
}
