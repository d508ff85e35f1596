// The checkpoint policy of a run: training state as metadata, and the checkpoint folder's names,
// listing, pruning and choice of the checkpoint to resume from.

import Checkpoints
import Foundation
import Testing
import _TestSupport

@Suite struct TrainingStateTests {
    @Test func roundTripsThroughMetadata() throws {
        let state = TrainingState(
            epoch: 3, globalStep: 120, stepInEpoch: 7, seed: UInt64.max - 5, samplerPosition: 448,
            learningRate: 0.000_987_654_321_012_345, bestAccuracy: 0.773_597_756_410_256_4,
            bestCheckpoint: "ckpt-e0002-s000080.safetensors", worldSize: 2)
        var metadata = state.metadata
        metadata["arch"] = "ghostnet_d.ghostnet101"
        #expect(try TrainingState(metadata: metadata) == state)

        let fresh = TrainingState(seed: 1, learningRate: 0.1, worldSize: 1)
        let restored = try TrainingState(metadata: fresh.metadata)
        #expect(restored == fresh && restored.bestAccuracy == nil)
    }

    @Test func malformedMetadataNamesTheKey() {
        var metadata = TrainingState(seed: 1, learningRate: 0.1, worldSize: 2).metadata
        metadata["training.global_step"] = "-4"
        #expect {
            try TrainingState(metadata: metadata)
        } throws: { error in
            (error as? TrainingStateError)?.key == "training.global_step"
                && "\(error)".contains("expected an integer in 0…281474976710656")
        }
        metadata.removeValue(forKey: "training.global_step")
        #expect {
            try TrainingState(metadata: metadata)
        } throws: { error in
            "\(error)" == "checkpoint metadata has no training.global_step"
        }
    }
}

@Suite struct CheckpointDirectoryTests {
    /// Writes a complete checkpoint (model and optimizer files).
    private func write(_ entry: CheckpointDirectory.Entry, contents: String = "valid") throws {
        try contents.write(to: entry.modelURL, atomically: false, encoding: .utf8)
        try "optimizer".write(to: entry.optimizerURL, atomically: false, encoding: .utf8)
    }

    @Test func namesEncodeEpochAndStep() {
        let directory = CheckpointDirectory(url: URL(fileURLWithPath: "/run/ckpt"), keep: 3)
        let entry = directory.entry(epoch: 3, globalStep: 120)
        #expect(entry.name == "ckpt-e0003-s000120.safetensors")
        #expect(entry.optimizerURL.path == "/run/ckpt/ckpt-e0003-s000120.optimizer.safetensors")
        #expect(directory.entry(epoch: 12345, globalStep: 9_876_543).name == "ckpt-e12345-s9876543.safetensors")
    }

    @Test func listsNewestFirstIgnoringOtherFiles() throws {
        let folder = try TemporaryDirectory.make()
        defer { try? FileManager.default.removeItem(at: folder) }
        let directory = CheckpointDirectory(url: folder, keep: 2)
        for (epoch, step) in [(1, 40), (3, 120), (2, 80)] { try write(directory.entry(epoch: epoch, globalStep: step)) }
        for stray in ["ckpt-e0004-s000160.safetensors.tmp", "notes.txt", "ckpt-eXXXX-s000001.safetensors"] {
            try "x".write(to: folder.appendingPathComponent(stray), atomically: false, encoding: .utf8)
        }
        #expect(try directory.list().map(\.globalStep) == [120, 80, 40])
        #expect(try CheckpointDirectory(url: folder.appendingPathComponent("absent"), keep: 1).list().isEmpty)
    }

    @Test func pruneKeepsTheNewestAndTheBest() throws {
        let folder = try TemporaryDirectory.make()
        defer { try? FileManager.default.removeItem(at: folder) }
        let directory = CheckpointDirectory(url: folder, keep: 3)
        for epoch in 1...6 { try write(directory.entry(epoch: epoch, globalStep: epoch * 40)) }
        let best = directory.entry(epoch: 2, globalStep: 80)
        let removed = try directory.prune(keepingAlso: best.name)
        #expect(removed.map(\.epoch) == [3, 1])
        #expect(try directory.list().map(\.epoch) == [6, 5, 4, 2])
        for entry in removed {
            #expect(!FileManager.default.fileExists(atPath: entry.modelURL.path))
            #expect(!FileManager.default.fileExists(atPath: entry.optimizerURL.path))
        }
        #expect(try directory.prune(keepingAlso: nil).map(\.epoch) == [2])
    }

    @Test func resumeSkipsCorruptAndPartialCheckpoints() throws {
        let folder = try TemporaryDirectory.make()
        defer { try? FileManager.default.removeItem(at: folder) }
        let directory = CheckpointDirectory(url: folder, keep: 3)
        try write(directory.entry(epoch: 1, globalStep: 40))
        try write(directory.entry(epoch: 2, globalStep: 80), contents: "truncat")
        // The newest has no optimizer file: the run stopped between the two writes.
        try "valid".write(to: directory.entry(epoch: 3, globalStep: 120).modelURL, atomically: false, encoding: .utf8)

        struct Truncated: Error, CustomStringConvertible { var description: String { "header is truncated" } }
        var warnings: [String] = []
        let chosen = try directory.newestValid(
            validate: { entry in
                if try String(contentsOf: entry.modelURL, encoding: .utf8) != "valid" { throw Truncated() }
            },
            warn: { warnings.append($0) })
        #expect(chosen == directory.entry(epoch: 1, globalStep: 40))
        #expect(warnings.count == 2)
        #expect(warnings[0].contains("ckpt-e0003-s000120.safetensors") && warnings[0].contains("optimizer state"))
        #expect(warnings[1].contains("ckpt-e0002-s000080.safetensors") && warnings[1].contains("header is truncated"))

        let none = try directory.newestValid(validate: { _ in throw Truncated() }, warn: { _ in })
        #expect(none == nil)
    }
}
