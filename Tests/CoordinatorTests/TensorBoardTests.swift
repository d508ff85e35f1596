// TensorBoard event files: the hand-written protobuf bytes of an event against event.proto's field
// numbers, the TFRecord framing's masked CRCs read back record by record, and the files of a live
// coordinator read by an independent reader (the Python `tensorboard` package's EventAccumulator).

import Coordinator
import CoordinatorClient
import Foundation
import PerformanceRecords
import StrictJSON
import Testing
import _TestSupport

/// The records of a TFRecord file, each checked against its length and masked CRCs.
func readTFRecords(_ bytes: [UInt8], file: String) throws -> [[UInt8]] {
    func uint<T: FixedWidthInteger>(_ type: T.Type, at offset: Int) throws -> T {
        guard offset + MemoryLayout<T>.size <= bytes.count else {
            throw CoordinatorError("\(file): truncated at byte \(offset)")
        }
        return bytes[offset..<offset + MemoryLayout<T>.size].reversed().reduce(0) { $0 << 8 | T($1) }
    }
    var records: [[UInt8]] = []
    var offset = 0
    while offset < bytes.count {
        let length = Int(try uint(UInt64.self, at: offset))
        guard try uint(UInt32.self, at: offset + 8) == TFRecord.maskedCRC(bytes[offset..<offset + 8]) else {
            throw CoordinatorError("\(file): length CRC of the record at byte \(offset) does not match")
        }
        let data = Array(bytes[(offset + 12)..<min(offset + 12 + length, bytes.count)])
        guard data.count == length, try uint(UInt32.self, at: offset + 12 + length) == TFRecord.maskedCRC(data)
        else { throw CoordinatorError("\(file): data CRC of the record at byte \(offset) does not match") }
        records.append(data)
        offset += 16 + length
    }
    return records
}

@Suite("TensorBoard event files")
struct TensorBoardTests {
    @Test("a scalar event's bytes follow event.proto and summary.proto field by field")
    func scalarEventBytes() {
        let event = TensorBoardEvent.scalarsEvent([("a", 1.0)], step: 3, wallTime: 2.0)
        let expected: [UInt8] =
            [0x09, 0, 0, 0, 0, 0, 0, 0, 0x40]  // field 1 wall_time, fixed64: 2.0
            + [0x10, 0x03]  // field 2 step, varint: 3
            + [0x2A, 10]  // field 5 summary, 10 bytes
            + [0x0A, 8]  // Summary field 1 value, 8 bytes
            + [0x0A, 1, 0x61]  // Value field 1 tag "a"
            + [0x15, 0, 0, 0x80, 0x3F]  // Value field 2 simple_value, fixed32: 1.0
        #expect(event == expected)
        // wall_time 0, then field 3 file_version "brain.Event:2" (13 bytes).
        #expect(
            TensorBoardEvent.fileVersionEvent(wallTime: 0)
                == [0x09, 0, 0, 0, 0, 0, 0, 0, 0, 0x1A, 13] + Array("brain.Event:2".utf8))
        // A negative step is a 10-byte varint (two's complement); a step past 2^7 takes two bytes.
        #expect(
            Array(TensorBoardEvent.scalarsEvent([], step: -1, wallTime: 0)[9...])
                == [0x10] + [UInt8](repeating: 0xFF, count: 9) + [0x01, 0x2A, 0])
        #expect(Array(TensorBoardEvent.scalarsEvent([], step: 300, wallTime: 0)[9...]) == [0x10, 0xAC, 0x02, 0x2A, 0])
    }

    @Test("masked CRC-32C: rotated right 15 bits plus 0xa282ead8, from the standard check value")
    func maskedCRC() {
        // CRC-32C("123456789") = 0xE3069283; rotr15 = 0x25070C0D (low 15 bits 0x1283 move up, the rest
        // shifts down); + 0xA282EAD8 = 0xC78AB0E5 (mod 2^32), as tensorboard's masked_crc32c gives.
        #expect(TFRecord.maskedCRC(Array("123456789".utf8)) == 0xC78A_B0E5)
    }

    @Test("a job's run folder holds one file: the version event, then one event per report and record")
    func framingRoundTrip() throws {
        let directory = try TemporaryDirectory.make()
        defer { try? FileManager.default.removeItem(at: directory) }
        let writer = try TensorBoardWriter(directory: directory.path + "/runs", startedAt: 1_700_000_000)
        try writer.write(makeReport(step: 1200), job: "ghostnet101-imagenet", wallTime: 1_700_000_010)
        try writer.write(
            makeRecord(epoch: 2, step: 21_218, [("accuracy_top1", 0.75)]), job: "ghostnet101-imagenet",
            wallTime: 1_700_000_020)
        try writer.write(makeReport(step: 1300), job: "ghostnet101-imagenet", wallTime: 1_700_000_030)
        let file = writer.eventFile(job: "ghostnet101-imagenet")
        #expect(file.hasPrefix(directory.path + "/runs/ghostnet101-imagenet/events.out.tfevents.1700000000."))
        let records = try readTFRecords(Array(try Data(contentsOf: URL(fileURLWithPath: file))), file: file)
        try #require(records.count == 4)
        #expect(records[0] == TensorBoardEvent.fileVersionEvent(wallTime: 1_700_000_010))
        // Report steps are global: epoch 2 of 10,009 steps, step 1200.
        #expect(TensorBoardWriter.globalStep(makeReport(step: 1200)) == 2 * 10009 + 1200)
        #expect(
            records[1]
                == TensorBoardEvent.scalarsEvent(
                    [("train/loss", 2.5), ("train/lr", 0.1), ("train/images_per_second", 400)], step: 21_218,
                    wallTime: 1_700_000_010))
        #expect(
            records[2]
                == TensorBoardEvent.scalarsEvent([("val/accuracy_top1", 0.75)], step: 21_218, wallTime: 1_700_000_020))
        // One flipped byte fails the data CRC.
        var damaged = Array(try Data(contentsOf: URL(fileURLWithPath: file)))
        damaged[40] ^= 0x01
        #expect(throws: CoordinatorError.self) { try readTFRecords(damaged, file: file) }
    }

    @Test(
        "tensorboard's EventAccumulator reads a live coordinator's scalars while the job runs",
        .enabled(if: Python.canImport("tensorboard"), "needs python3 with the tensorboard package"))
    func readByTensorBoard() async throws {
        let directory = try TemporaryDirectory.make()
        defer { try? FileManager.default.removeItem(at: directory) }
        let runs = directory.appendingPathComponent("runs").path
        let coordinator = try await RunningCoordinator.start(dataDirectory: directory, tensorBoardDirectory: runs)
        let losses = [57.7, 3.25, 0.125]
        for (index, loss) in losses.enumerated() {
            let answer = try await coordinator.send(
                "POST", "/v1/jobs/job-a/progress",
                body: makeReport(step: 100 * (index + 1), loss: loss, imagesPerSecond: 400 + Double(index)).json
                    .serialized)
            #expect(answer.status == 200, "\(answer.bodyText)")
        }
        #expect(
            try await coordinator.post(
                makeRecord(epoch: 2, step: 20_318, [("accuracy_top1", 0.7), ("accuracy_top5", 0.9)]), job: "job-a"
            ).status == 201)
        // Read while the coordinator still runs: every event must already be in the file.
        let result = try Python.run(
            """
            import json, sys
            from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
            accumulator = EventAccumulator(sys.argv[1], size_guidance={"scalars": 0})
            accumulator.Reload()
            print(json.dumps({tag: [[e.step, e.value] for e in accumulator.Scalars(tag)]
                              for tag in accumulator.Tags()["scalars"]}))
            """, [runs + "/job-a"])
        await coordinator.stop()
        try #require(result.status == 0, "\(result.standardError)")
        guard case .object(let tags) = try JSONValue(parsing: Array(result.standardOutput.utf8)) else {
            Issue.record("not a JSON object: \(result.standardOutput)")
            return
        }
        let series = Dictionary(uniqueKeysWithValues: tags.map { ($0.key, $0.value) })
        #expect(
            Set(series.keys)
                == ["train/loss", "train/lr", "train/images_per_second", "val/accuracy_top1", "val/accuracy_top5"])
        /// The points of `tag` as (step, value); values went through `Float`, whose rounding moves a
        /// normal number by at most 2^-24 of itself.
        func expectSeries(_ tag: String, _ expected: [(Int, Double)]) {
            guard case .array(let points)? = series[tag], points.count == expected.count else {
                Issue.record("\(tag): \(String(describing: series[tag])), expected \(expected)")
                return
            }
            for (point, (step, value)) in zip(points, expected) {
                guard case .array(let pair) = point, pair.count == 2, case .number(let readStep) = pair[0],
                    case .number(let readValue) = pair[1], readStep.integerValue == step
                else {
                    Issue.record("\(tag): point \(point), expected step \(step)")
                    continue
                }
                let read = readValue.doubleValue
                #expect(abs(read - value) <= abs(value) * 0x1p-24, "\(tag) at step \(step): \(read) vs \(value)")
            }
        }
        let steps = (1...3).map { 2 * 10009 + 100 * $0 }
        expectSeries("train/loss", Array(zip(steps, losses)))
        expectSeries("train/images_per_second", Array(zip(steps, [400.0, 401, 402])))
        expectSeries("train/lr", steps.map { ($0, 0.1) })
        expectSeries("val/accuracy_top1", [(20_318, 0.7)])
        expectSeries("val/accuracy_top5", [(20_318, 0.9)])
    }
}
