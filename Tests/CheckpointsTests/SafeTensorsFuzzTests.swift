// A deterministic fuzz test of the safetensors reader (issue 19): thousands of mutations of a valid
// file and of a checkpoint's metadata, each of which must end in a successful read or a
// SafeTensorsError/ModelFileError naming the file, quickly, and never in a trap.

import Checkpoints
import Foundation
import GhostNet
import TensorEngine
import Testing
import _TestSupport

@Suite struct SafeTensorsFuzzTests {
    /// How many mutated files each test reads.
    static let mutations = 2_000
    /// The most one read may take. A valid read of these files takes well under a millisecond; a
    /// reader that loops or reads a huge file would exceed this by orders of magnitude.
    static let timeLimit = Duration.seconds(1)

    @Test func mutatedFilesReadOrFailWithAnError() throws {
        let directory = try TemporaryDirectory.make()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("fuzz.safetensors").path
        var original = SafeTensorsFile(metadata: ["step": "1", "note": "a \"quoted\" ü"])
        original.append(Tensor(shape: [4, 4], scalars: (0..<16).map(Float.init)), named: "w")
        original.append(int64: [5, -6], shape: [2], named: "n")
        original.append(Tensor(shape: [], scalars: [2.5]), named: "s")
        try original.write(to: path)
        let valid = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))

        var random = SeededRandom(seed: 19, streams: 4)
        var outcomes: [String: Int] = [:]
        for _ in 0..<Self.mutations {
            try Data(Self.mutate(valid, &random)).write(to: URL(fileURLWithPath: path))
            let outcome = try Self.timedRead(path) { _ = try SafeTensorsFile(contentsOf: path) }
            outcomes[outcome, default: 0] += 1
        }
        // The mutations reach every stage of the reader, not only the first check.
        for stage in [
            "success", "truncated", "malformedHeader", "invalidLayout", "unsupportedDType", "checksumMismatch",
        ] {
            #expect(outcomes[stage, default: 0] > 0, "no mutation ended in \(stage): \(outcomes)")
        }
    }

    /// Mutated metadata values of a model checkpoint are read as checkpoints: each is refused with
    /// the key named, or loads.
    @Test func mutatedCheckpointMetadataLoadsOrFailsWithAnError() throws {
        let directory = try TemporaryDirectory.make()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("fuzz.safetensors").path
        let checkpoint = Checkpoint(parameters: .initialized(for: try tinyStructure(), seed: 2), seed: 2).file
        let keys = checkpoint.metadata.keys.sorted()
        let values = [
            "", "-1", "0", "1", "2", "3,4,3,3", "3,4,3", "64", "65", "4096", "4097", "1e300", "nan", "-0",
            "9223372036854775807", "9223372036854775808", "18446744073709551616", "ghostnet50", "custom", " 8",
        ]
        var random = SeededRandom(seed: 19, streams: 5)
        var outcomes: [String: Int] = [:]
        // Each read of a valid checkpoint reads the whole tiny model, so fewer rounds than above.
        for _ in 0..<(Self.mutations / 10) {
            var file = checkpoint
            for _ in 0...Int(random.next() % 2) {
                let key = keys[Int(random.next() % UInt64(keys.count))]
                file.metadata[key] = random.next() % 8 == 0 ? nil : values[Int(random.next() % UInt64(values.count))]
            }
            try file.write(to: path)
            let outcome = try Self.timedRead(path) { _ = try Checkpoint(contentsOf: path) }
            outcomes[outcome, default: 0] += 1
        }
        #expect(outcomes["success", default: 0] > 0 && outcomes["metadata", default: 0] > 0, "\(outcomes)")
    }

    // MARK: - Helpers

    /// Runs `read` and names its outcome: `success`, or the error's kind or code. Any other error,
    /// an error without the path, or a read slower than ``timeLimit`` is a failure.
    private static func timedRead(_ path: String, _ read: () throws -> Void) throws -> String {
        let clock = ContinuousClock()
        let start = clock.now
        var outcome = "success"
        do {
            try read()
        } catch let error as SafeTensorsError {
            #expect(error.path == path && !error.message.isEmpty, "\(error)")
            outcome = "\(error.kind)"
        } catch let error as ModelFileError {
            #expect(error.path == path && !error.message.isEmpty, "\(error)")
            outcome = "\(error.code)"
        } catch let error as ModelParametersError {
            #expect(error.path == path, "\(error)")
            outcome = "parameters"
        }
        let elapsed = clock.now - start
        #expect(elapsed < timeLimit, "reading a mutated file took \(elapsed)")
        return outcome
    }

    /// Tokens that break or stretch a JSON header.
    private static let tokens = [
        "{", "}", "[", "]", ",", ":", "\"", "\\", "-1", "1e999", "99999999999999999999", "9223372036854775807", "2.5",
        "null", "true", "\"__metadata__\"", "\"dtype\"", "\"BF16\"", "\"data_offsets\"", "[0,0]", "{\"a\":1}", "\u{0}",
    ].map { Array($0.utf8) }

    /// One random mutation of `bytes` (a valid file); header edits usually keep the length field
    /// consistent so that the JSON parser and the layout checks are reached.
    static func mutate(_ bytes: [UInt8], _ random: inout SeededRandom) -> [UInt8] {
        func below(_ bound: Int) -> Int { Int(random.next() % UInt64(max(bound, 1))) }
        let headerLength = Int(bytes[0..<8].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) })
        var header = Array(bytes[8..<(8 + headerLength)])
        var data = Array(bytes[(8 + headerLength)...])
        var length: UInt64?
        switch below(8) {
        case 0:
            let index = below(bytes.count)
            var copy = bytes
            copy[index] ^= UInt8(1) << UInt8(below(8))
            return copy
        case 1:
            header[below(header.count)] = tokens[below(tokens.count)].first ?? 0
        case 2:
            header.insert(contentsOf: tokens[below(tokens.count)], at: below(header.count + 1))
        case 3:
            let start = below(header.count)
            header.removeSubrange(start..<min(header.count, start + 1 + below(16)))
        case 4:
            let start = below(header.count)
            header.insert(contentsOf: header[start..<min(header.count, start + 1 + below(40))], at: below(header.count))
        case 5:
            length = [0, 1, UInt64(headerLength - 1), UInt64(headerLength + 1), UInt64.max, 1 << 40][below(6)]
        case 6:
            data =
                below(2) == 0
                ? Array(data.prefix(below(data.count))) : data + (0..<(1 + below(64))).map { _ in UInt8(below(256)) }
        default:
            return Array(bytes.prefix(below(bytes.count)))
        }
        let written = length ?? (below(4) == 0 ? UInt64(headerLength) : UInt64(header.count))
        return withUnsafeBytes(of: written.littleEndian) { Array($0) } + header + data
    }
}
