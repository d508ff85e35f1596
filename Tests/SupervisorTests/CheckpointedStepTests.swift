// The step a restart is logged as resuming from: the newest checkpoint whose files verify, skipping
// a newer one that is corrupt or lacks its optimizer file, as `train --resume` does.

import Checkpoints
import Foundation
import Supervisor
import Testing
import _TestSupport

@Suite struct CheckpointedStepTests {
    /// Writes a checkpoint pair whose metadata holds `state` (one small integer tensor per file).
    func write(_ state: TrainingState, in folder: URL) throws -> CheckpointDirectory.Entry {
        let entry = CheckpointDirectory(url: folder, keep: 1).entry(epoch: state.epoch, globalStep: state.globalStep)
        for url in [entry.optimizerURL, entry.modelURL] {
            var file = SafeTensorsFile(metadata: state.metadata)
            file.append(int64: [1, 2, 3], shape: [3], named: "values")
            try file.write(to: url.path)
        }
        return entry
    }

    @Test func theNewestVerifiedCheckpointIsChosen() throws {
        let folder = try TemporaryDirectory.make(prefix: "checkpointed-step")
        defer { try? FileManager.default.removeItem(at: folder) }
        #expect(try CheckpointedStep.newest(in: folder.path) { _ in } == nil)

        let older = TrainingState(epoch: 1, globalStep: 24, seed: 7, learningRate: 0.05, worldSize: 2)
        _ = try write(older, in: folder)
        let corrupt = try write(
            TrainingState(epoch: 2, globalStep: 48, seed: 7, learningRate: 0.04, worldSize: 2), in: folder)
        var bytes = try Data(contentsOf: corrupt.modelURL)
        bytes[bytes.count - 1] ^= 0x01
        try bytes.write(to: corrupt.modelURL)
        let missing = try write(
            TrainingState(epoch: 3, globalStep: 72, seed: 7, learningRate: 0.03, worldSize: 2), in: folder)
        try FileManager.default.removeItem(at: missing.optimizerURL)

        var warnings: [String] = []
        let chosen = try #require(try CheckpointedStep.newest(in: folder.path) { warnings.append($0) })
        #expect(chosen.name == "ckpt-e0001-s000024.safetensors")
        #expect(chosen.state == older)
        #expect(chosen.description == "global step 24 (epoch 2, step 1 of it) in ckpt-e0001-s000024.safetensors")
        #expect(warnings.count == 2)
        #expect(warnings.contains { $0.contains("ckpt-e0002-s000048") })
        #expect(warnings.contains { $0.contains("ckpt-e0003-s000072") && $0.contains("missing") })
    }
}
