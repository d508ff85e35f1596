// Performance records: key order, JSON round trips, invalid records refused, and job-name rules.

import PerformanceRecords
import StrictJSON
import Testing
import _TestSupport

@Suite("Record parsing keeps key order and rejects bad input")
struct PerformanceRecordTests {
    static let valid =
        #"{"worker_id":"0","rank":0,"epoch":2,"step":300,"performance":{"params":38216.872,"accuracy_top1":0.7735977564102564,"flops":4},"timestamp":1700000000.5}"#

    @Test("performance keys keep the order the worker sent")
    func keyOrder() throws {
        let record = try PerformanceRecord(jsonText: Array(Self.valid.utf8))
        #expect(record.performance.keys == ["params", "accuracy_top1", "flops"])
        #expect(record.workerID == "0" && record.epoch == 2 && record.step == 300)
        expectClose(record.performance["flops"] ?? .nan, 4.0)
        #expect(
            BestValuesLine.message(for: [record])
                == "Best values: [{'worker_id': '0', 'performance': {'params': 38216.872, 'accuracy_top1': "
                + "0.7735977564102564, 'flops': 4.0}}]")
    }

    @Test("serializing and parsing again gives the same record")
    func roundTrip() throws {
        let record = try PerformanceRecord(jsonText: Array(Self.valid.utf8))
        let again = try PerformanceRecord(jsonText: Array(record.json.serialized.utf8))
        #expect(again == record)
        #expect(again.performance.keys == record.performance.keys)
    }

    /// Bodies that must be refused, with a word the message must contain.
    static let invalidBodies: [(String, String)] = [
        (#"[]"#, "object"),
        (#"{"rank":0,"epoch":0,"step":0,"performance":{"a":1},"timestamp":1}"#, "missing field 'worker_id'"),
        (
            #"{"worker_id":0,"rank":0,"epoch":0,"step":0,"performance":{"a":1},"timestamp":1}"#,
            "'worker_id' must be a string"
        ),
        (#"{"worker_id":"","rank":0,"epoch":0,"step":0,"performance":{"a":1},"timestamp":1}"#, "1 to 128"),
        (
            #"{"worker_id":"0","rank":-1,"epoch":0,"step":0,"performance":{"a":1},"timestamp":1}"#,
            "'rank' must be an integer"
        ),
        (
            #"{"worker_id":"0","rank":0,"epoch":1.5,"step":0,"performance":{"a":1},"timestamp":1}"#,
            "'epoch' must be an integer"
        ),
        (
            #"{"worker_id":"0","rank":0,"epoch":0,"step":"1","performance":{"a":1},"timestamp":1}"#,
            "'step' must be an integer"
        ),
        (
            #"{"worker_id":"0","rank":0,"epoch":0,"step":0,"performance":{"a":"NaN"},"timestamp":1}"#,
            "performance['a'] must be a finite number"
        ),
        (#"{"worker_id":"0","rank":0,"epoch":0,"step":0,"performance":{"a":1e999},"timestamp":1}"#, "finite"),
        (#"{"worker_id":"0","rank":0,"epoch":0,"step":0,"performance":{"a":-1e999},"timestamp":1}"#, "finite"),
        (#"{"worker_id":"0","rank":0,"epoch":0,"step":0,"performance":{"a":1,"a":2},"timestamp":1}"#, "twice"),
        (#"{"worker_id":"0","rank":0,"epoch":0,"step":0,"performance":{},"timestamp":1}"#, "empty"),
        (#"{"worker_id":"0","rank":0,"epoch":0,"step":0,"performance":[1],"timestamp":1}"#, "object of numbers"),
        (
            #"{"worker_id":"0","rank":0,"epoch":0,"step":0,"performance":{"a":1},"timestamp":"now"}"#,
            "'timestamp' must be a finite number"
        ),
        (
            #"{"worker_id":"0","rank":0,"epoch":0,"step":0,"performance":{"a":1},"timestamp":1,"extra":1}"#,
            "unknown field 'extra'"
        ),
        (
            #"{"worker_id":"0","worker_id":"1","rank":0,"epoch":0,"step":0,"performance":{"a":1},"timestamp":1}"#,
            "twice"
        ),
        (
            #"{"worker_id":"0","rank":99999999999999999999,"epoch":0,"step":0,"performance":{"a":1},"timestamp":1}"#,
            "'rank' must be an integer"
        ),
    ]

    @Test("invalid records are refused with a message naming the field", arguments: invalidBodies)
    func invalidRecords(body: String, expectedText: String) {
        do {
            _ = try PerformanceRecord(jsonText: Array(body.utf8))
            Issue.record("accepted \(body)")
        } catch {
            #expect("\(error)".contains(expectedText), "\(error)")
        }
    }

    @Test("job names allow [A-Za-z0-9._-]{1,128} only")
    func jobNames() {
        for good in ["a", "job-1", "ghostnet_101.v2", String(repeating: "x", count: 128)] {
            #expect(JobName.isValid(good), "\(good)")
        }
        for bad in ["", ".", "..", "../etc", "a/b", "a b", "ä", "a%2F", String(repeating: "x", count: 129)] {
            #expect(!JobName.isValid(bad), "\(bad)")
        }
    }

}
