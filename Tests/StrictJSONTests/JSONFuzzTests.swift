// Fuzzing the StrictJSON parser: 2,000 deterministic mutants of real inputs each end in a value
// that round-trips or a JSONSyntaxError with a position inside the input, never a trap.

import StrictJSON
import Testing
import _TestSupport

@Suite("Fuzzing: every mutant of a JSON text parses to a value that round-trips, or throws")
struct JSONFuzzTests {
    /// What the project reads as JSON: a rank table, a performance record, a coordinator reply.
    static let seeds: [String] = [
        #"""
        {"version": "1.0", "server_count": "1", "server_list": [{"server_id": "10.0.0.1",
         "device": [{"device_id": "0", "device_ip": "10.0.0.1", "rank_id": "0"}]}], "status": "completed"}
        """#,
        #"{"worker_id":"0","rank":0,"epoch":3,"step":120,"performance":{"accuracy":0.5,"loss":-1e-3},"#
            + #""timestamp":1.7e9}"#,
        #"[{"ok":true,"duplicate":false,"n":null},"\u00e9\ud83d\ude00\n",[[[]]],-0.0e+0,12345678901234567890]"#,
    ]

    static let tokens: [[UInt8]] = [
        "{", "}", "[", "]", ":", ",", "\"", "\\", "\\u", "\\ud800", "\"a\":1,", "1e999", "-", "0.", "true", "null",
        String(repeating: "[", count: 40), "\u{FEFF}",
    ].map { Array($0.utf8) }

    @Test("2,000 mutants end in a round-tripping value or a positioned JSONSyntaxError")
    func mutantsNeverTrap() {
        var mutator = ByteMutator(seed: 19, tokens: Self.tokens)
        let inputs = mutator.mutants(of: Self.seeds.map { Array($0.utf8) }, count: 2_000)
        var accepted = 0
        for input in inputs {
            do {
                let value = try JSONValue(parsing: input)
                accepted += 1
                // What was accepted is one JSON value: writing it back and reading that gives it again.
                #expect(try JSONValue(parsing: value.serialized) == value, "\(String(decoding: input, as: UTF8.self))")
            } catch {
                #expect(error.offset >= 0 && error.offset <= input.count, "\(error)")
                #expect(error.line >= 1 && error.column >= 1, "\(error)")
                #expect(!error.reason.isEmpty)
            }
        }
        // Some mutants (a changed digit or letter) stay valid; the set must exercise both outcomes.
        #expect(accepted > 0 && accepted < inputs.count, "\(accepted) of \(inputs.count) accepted")
    }

    @Test("nesting beyond the depth limit is refused, however deep the input")
    func deepNestingIsRefused() {
        for depth in [JSONValue.defaultMaximumDepth + 1, 100_000] {
            let text = String(repeating: "[", count: depth) + String(repeating: "]", count: depth)
            #expect(throws: JSONSyntaxError.self) { try JSONValue(parsing: text) }
        }
    }
}
