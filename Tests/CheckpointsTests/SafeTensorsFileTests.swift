// The safetensors file: round trips, and the reader's refusal of truncated, corrupted and
// malformed files with the problem named.

import Checkpoints
import Foundation
import TensorEngine
import Testing
import _TestSupport

@Suite struct SafeTensorsFileTests {
    @Test func roundTripKeepsEveryBitNameShapeAndMetadata() throws {
        let directory = try TemporaryDirectory.make()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("round.safetensors").path

        let specials: [Float] = [
            0, -0, .nan, .infinity, -.infinity, .leastNonzeroMagnitude, .greatestFiniteMagnitude, 1.5e-3,
        ]
        var file = SafeTensorsFile(metadata: ["epoch": "3", "note": "quotes \" and \\ and / and ü"])
        file.append(Tensor(shape: [2, 4], scalars: specials), named: "weights")
        file.append(int64: [Int64.min, -1, 0, Int64.max], shape: [4], named: "labels")
        file.append(int32: [Int32.min, 7], shape: [2, 1], named: "labels32")
        file.append(Tensor(shape: [], scalars: [42.5]), named: "scalar")
        file.append(Tensor(shape: [0, 3]), named: "empty")
        try file.write(to: path)

        let read = try SafeTensorsFile(contentsOf: path)
        #expect(read.names == ["weights", "labels", "labels32", "scalar", "empty"])
        #expect(read.metadata["epoch"] == "3")
        #expect(read.metadata["note"] == "quotes \" and \\ and / and ü")
        #expect(read.metadata[SafeTensorsFile.checksumKey] == String(format: "%08x", file.dataChecksum))
        let weights = try read.tensor(named: "weights")
        #expect(weights.shape == [2, 4])
        #expect(weights.scalars.map(\.bitPattern) == specials.map(\.bitPattern))
        #expect(try read.integers(named: "labels") == [Int64.min, -1, 0, Int64.max])
        #expect(try read.integers(named: "labels32") == [Int64(Int32.min), 7])
        #expect(read.entry(named: "labels32")?.shape == [2, 1])
        #expect(try read.tensor(named: "scalar").shape == [])
        #expect(try read.tensor(named: "scalar").scalars == [42.5])
        #expect(try read.tensor(named: "empty").shape == [0, 3])

        let headerLength = try Data(contentsOf: URL(fileURLWithPath: path)).prefix(8)
            .reversed().reduce(0) { $0 << 8 | Int($1) }
        #expect(headerLength % 8 == 0, "the data section starts 8-byte aligned")
    }

    @Test func askingForAMissingTensorOrTheWrongDTypeNamesBoth() throws {
        var file = SafeTensorsFile()
        file.append(int64: [1, 2], shape: [2], named: "labels")
        expectSafeTensorsError(.missingTensor, "'logits'") { _ = try file.tensor(named: "logits") }
        expectSafeTensorsError(.wrongDType, "'labels' has dtype I64, expected F32") {
            _ = try file.tensor(named: "labels")
        }
    }

    // MARK: - Refusing bad files

    @Test func aTruncatedFileIsRefused() throws {
        let bytes = try writtenExample()
        let cuts = [
            (bytes.count - 1, "file truncated?"), (bytes.count - 40, "file truncated?"),
            (20, "header length says"), (5, "fewer than the 8-byte header length"),
        ]
        for (cut, message) in cuts {
            expectSafeTensorsError(.truncated, message) { try Self.read(Array(bytes.prefix(cut))) }
        }
    }

    @Test func aFlippedDataByteFailsTheChecksum() throws {
        var bytes = try writtenExample()
        bytes[bytes.count - 3] ^= 0x10
        expectSafeTensorsError(.checksumMismatch, "checksum mismatch") { try Self.read(bytes) }
    }

    @Test func headerProblemsAreNamed() throws {
        let data = [UInt8](repeating: 0, count: 8)
        let cases: [(header: String, kind: SafeTensorsError.Kind, message: String)] = [
            ("{\"a\": {\"dtype\": \"F32\", \"shape\": [2], ", .malformedHeader, "not valid JSON"),
            ("[1, 2]", .malformedHeader, "does not start with '{'"),
            (
                "{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}, \"__metadata__\": {\"n\": 1}}",
                .malformedHeader, "strings to strings"
            ),
            ("{\"a\": {\"dtype\": \"F32\", \"shape\": [-2], \"data_offsets\": [0, 8]}}", .malformedHeader, "'shape'"),
            (
                "{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [8, 0]}}", .malformedHeader,
                "'data_offsets'"
            ),
            ("{\"a\": {\"dtype\": \"BF16\", \"shape\": [4], \"data_offsets\": [0, 8]}}", .unsupportedDType, "'BF16'"),
            (
                "{\"a\": {\"dtype\": \"F32\", \"shape\": [3], \"data_offsets\": [0, 8]}}", .invalidLayout,
                "needs 12 bytes"
            ),
            (
                "{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}, "
                    + "\"b\": {\"dtype\": \"I32\", \"shape\": [1], \"data_offsets\": [4, 8]}}",
                .invalidLayout, "overlap"
            ),
            (
                "{\"a\": {\"dtype\": \"I32\", \"shape\": [1], \"data_offsets\": [4, 8]}}", .invalidLayout,
                "gap of 4 bytes"
            ),
            (
                "{\"a\": {\"dtype\": \"I32\", \"shape\": [1], \"data_offsets\": [0, 4]}}", .invalidLayout,
                "4 bytes of trailing data"
            ),
            ("{\"a\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [0, 16]}}", .truncated, "only 8 bytes"),
            (
                "{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}, \"a\": {}}", .malformedHeader,
                "duplicate key \"a\""
            ),
            (
                "{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8], \"x\": 1}}", .malformedHeader,
                "tensor 'a': unknown field 'x' (expected dtype, shape, data_offsets)"
            ),
            (
                "{\"a\": {\"dtype\": \"F32\", \"shape\": [2]}}", .malformedHeader,
                "tensor 'a': field 'data_offsets' is missing"
            ),
            ("{\"a\": {\"dtype\": \"F32\", \"shape\": [2.0], \"data_offsets\": [0, 8]}}", .malformedHeader, "'shape'"),
            (
                "{\"a\": {\"dtype\": \"F32\", \"shape\": [99999999999999999999], \"data_offsets\": [0, 8]}}",
                .malformedHeader, "'shape'"
            ),
            (
                "{\"a\": {\"dtype\": \"F32\", \"shape\": [4611686018427387904, 4], \"data_offsets\": [0, 8]}}",
                .invalidLayout, "needs more than Int.max bytes"
            ),
            ("{\"a\": {\"dtype\": \"F32\", \"shape\": [true], \"data_offsets\": [0, 8]}}", .malformedHeader, "'shape'"),
            (
                "{\"a\": {\"dtype\": \"F32\", \"shape\": [[2]], \"data_offsets\": [0, 8]}}", .malformedHeader,
                "nesting deeper than 3 levels"
            ),
            ("{\"a\": 5}", .malformedHeader, "tensor 'a': must be an object, got a number"),
        ]
        for example in cases {
            expectSafeTensorsError(example.kind, example.message) {
                try Self.read(Self.rawFile(header: example.header, data: data))
            }
        }
    }

    @Test func anAbsurdOrOverlongHeaderLengthIsRefused() throws {
        let header = "{}"
        expectSafeTensorsError(.malformedHeader, "absurd") {
            try Self.read(Self.rawFile(header: header, data: [], headerLength: 1 << 40))
        }
        expectSafeTensorsError(.truncated, "header length says 100 bytes") {
            try Self.read(Self.rawFile(header: header, data: [], headerLength: 100))
        }
    }

    // MARK: - Atomic writes

    @Test func writesLeaveOnlyTheTargetAndReplaceItWhole() throws {
        let directory = try TemporaryDirectory.make()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("model.safetensors").path
        var first = SafeTensorsFile()
        first.append(Tensor(shape: [1000], repeating: 1), named: "x")
        try first.write(to: path)
        var second = SafeTensorsFile()
        second.append(Tensor(shape: [3], repeating: 2), named: "y")
        try second.write(to: path)

        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path) == ["model.safetensors"])
        #expect(try SafeTensorsFile(contentsOf: path).names == ["y"])
    }

    @Test func aWriteThatCannotHappenThrowsAndLeavesNothing() throws {
        let directory = try TemporaryDirectory.make()
        defer { try? FileManager.default.removeItem(at: directory) }
        let missing = directory.appendingPathComponent("no/such/dir/model.safetensors").path
        expectSafeTensorsError(.fileSystem, "cannot create") { try SafeTensorsFile().write(to: missing) }
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path).isEmpty)
    }

    // MARK: - Helpers

    /// The bytes of a small file written by ``SafeTensorsFile/write(to:)``.
    private func writtenExample() throws -> [UInt8] {
        let directory = try TemporaryDirectory.make()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("example.safetensors").path
        var file = SafeTensorsFile(metadata: ["step": "1"])
        file.append(Tensor(shape: [4, 4], scalars: (0..<16).map(Float.init)), named: "w")
        file.append(int64: [5, 6], shape: [2], named: "n")
        try file.write(to: path)
        return [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
    }

    /// A safetensors byte stream with the given header text, data and (by default true) header length.
    static func rawFile(header: String, data: [UInt8], headerLength: UInt64? = nil) -> [UInt8] {
        let headerBytes = Array(header.utf8)
        let length = headerLength ?? UInt64(headerBytes.count)
        return withUnsafeBytes(of: length.littleEndian) { Array($0) } + headerBytes + data
    }

    /// Writes `bytes` to a temporary file and reads it as safetensors.
    static func read(_ bytes: [UInt8]) throws {
        let directory = try TemporaryDirectory.make()
        defer { try? FileManager.default.removeItem(at: directory) }
        let url = directory.appendingPathComponent("input.safetensors")
        try Data(bytes).write(to: url)
        _ = try SafeTensorsFile(contentsOf: url.path)
    }
}

/// Expects `body` to throw a ``SafeTensorsError`` of `kind` whose message contains `fragment`.
func expectSafeTensorsError(
    _ kind: SafeTensorsError.Kind, _ fragment: String,
    sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void
) {
    do {
        try body()
        Issue.record(
            "expected a \(kind) error containing '\(fragment)', but nothing was thrown", sourceLocation: sourceLocation)
    } catch let error as SafeTensorsError {
        #expect(error.kind == kind, "\(error)", sourceLocation: sourceLocation)
        #expect(error.message.contains(fragment), "\(error)", sourceLocation: sourceLocation)
    } catch {
        Issue.record("expected a SafeTensorsError, got \(error)", sourceLocation: sourceLocation)
    }
}
