// StrictJSON writing: compact output in member order, number text that round-trips, string escaping, and
// whole-document round trips.

import StrictJSON
import Testing

@Suite("Serialization writes compact JSON that parses back to the same value")
struct JSONSerializationTests {
    @Test("members keep their order; numbers keep their text")
    func compactOrderedOutput() throws {
        let value = JSONValue.object([
            ("z", .integer(-3)), ("a", .double(0.25)), ("b", .array([.null, .bool(true), .bool(false)])),
            ("nested", .object([("k", .string("v"))])), ("empty", .array([])),
        ])
        #expect(value.serialized == #"{"z":-3,"a":0.25,"b":[null,true,false],"nested":{"k":"v"},"empty":[]}"#)
        #expect(try JSONValue(parsing: value.serialized) == value)
    }

    @Test("parsed numbers are written exactly as they were read")
    func numberTextRoundTrip() throws {
        let text = #"[2.50,-0,1E+2,1e999,99999999999999999999,7]"#
        #expect(try JSONValue(parsing: text).serialized == text)
    }

    @Test("doubles are written in shortest round-trip form")
    func doubleText() {
        #expect(JSONValue.double(38216.0).serialized == "38216.0")
        #expect(JSONValue.double(0.7735977564102564).serialized == "0.7735977564102564")
        #expect(JSONValue.double(1e-5).serialized == "1e-05")
        #expect(JSONValue.double(1.7e20).serialized == "1.7e+20")
    }

    @Test("strings escape quotes, backslashes and control characters, and keep other text")
    func stringEscaping() throws {
        let text = "q\"b\\s/n\nr\rt\t\u{0}\u{1F}é😀\u{7F}"
        let written = JSONValue.string(text).serialized
        #expect(written == #""q\"b\\s/n\nr\rt\t\u0000\u001fé😀"# + "\u{7F}\"")
        #expect(try JSONValue(parsing: written) == .string(text))
    }

    @Test("a parsed document with escapes and nesting round-trips")
    func documentRoundTrip() throws {
        let text = #" {"z":[1,2.5,-0,true,false,null],"a":"\u00e9\ud83d\ude00\n\"","m":{},"b":{"a":[{}]}} "#
        let value = try JSONValue(parsing: text)
        #expect(try JSONValue(parsing: value.serialized) == value)
        #expect(value.serialized == #"{"z":[1,2.5,-0,true,false,null],"a":"é😀\n\"","m":{},"b":{"a":[{}]}}"#)
    }
}
