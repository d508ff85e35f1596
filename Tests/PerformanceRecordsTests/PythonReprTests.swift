// Python-compatible text: `repr` of floats and strings exactly as CPython prints them, the Best values
// message, and a local log line.

import PerformanceRecords
import Testing

@Suite("Python repr of the Best values line")
struct PythonReprTests {
    /// Each value with the exact text CPython 3 prints for `repr(float(value))`.
    static let floatCases: [(Double, String)] = [
        (0.1, "0.1"),
        (1e-05, "1e-05"),
        (38216.872, "38216.872"),
        (1.0, "1.0"),
        (123456789.0, "123456789.0"),
        (1e+16, "1e+16"),
        (0.7735977564102564, "0.7735977564102564"),
        (4.539, "4.539"),
        (0.0, "0.0"),
        (-0.0, "-0.0"),
        (-0.5, "-0.5"),
        (1e-4, "0.0001"),
        (1.5e+300, "1.5e+300"),
        (12345678901234567.0, "1.2345678901234568e+16"),
        (9999999999999998.0, "9999999999999998.0"),
        (1234.5e-10, "1.2345e-07"),
        (Double.leastNonzeroMagnitude, "5e-324"),  // the literal 5e-324 rounds to it, with a warning
        (1.7976931348623157e308, "1.7976931348623157e+308"),
        (100.0, "100.0"),
        (0.00012, "0.00012"),
        (-2.5e-7, "-2.5e-07"),
        (1e15, "1000000000000000.0"),
        (38216.0, "38216.0"),
    ]

    @Test("floats print like Python's repr", arguments: floatCases)
    func floatRepr(value: Double, expected: String) {
        #expect(PythonRepr.float(value) == expected)
    }

    @Test("strings print like Python's repr")
    func stringRepr() {
        #expect(PythonRepr.string("0") == "'0'")
        #expect(PythonRepr.string("accuracy_top1") == "'accuracy_top1'")
        #expect(PythonRepr.string("it's") == "\"it's\"")
        #expect(PythonRepr.string("a'b\"c") == "'a\\'b\"c'")
        #expect(PythonRepr.string("tab\there\n") == "'tab\\there\\n'")
        #expect(PythonRepr.string("back\\slash") == "'back\\\\slash'")
        #expect(PythonRepr.string("bell\u{07}") == "'bell\\x07'")
        #expect(PythonRepr.string("grün") == "'grün'")
    }

    @Test("the Best values message matches the documented form exactly")
    func bestValuesMessage() throws {
        let record = PerformanceRecord(
            workerID: "0", rank: 0, epoch: 1, step: 10,
            performance: PerformanceMetrics([
                ("accuracy_top1", 0.7735977564102564), ("flops", 4.539), ("params", 38216.872),
            ]),
            timestamp: 1_700_000_000)
        #expect(
            BestValuesLine.message(for: [record])
                == "Best values: [{'worker_id': '0', 'performance': {'accuracy_top1': 0.7735977564102564, 'flops': 4.539, "
                + "'params': 38216.872}}]")
        #expect(BestValuesLine.message(for: []) == "Best values: []")
    }

    @Test("the local log line has the timestamp form and INFO level")
    func localLogLine() throws {
        let record = PerformanceRecord(
            workerID: "1", rank: 1, epoch: 0, step: 0,
            performance: PerformanceMetrics([("accuracy_top1", 0.5), ("params", 12.0)]), timestamp: 0)
        let line = BestValuesLine.logLine(for: [record], at: 1_700_000_000.25)
        let regex = try Regex(
            #"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.250 INFO Best values: \[\{'worker_id': '1', 'performance': \{'accuracy_top1': 0\.5, 'params': 12\.0\}\}\]$"#
        )
        #expect(line.wholeMatch(of: regex) != nil, "\(line)")
    }
}
