// `runtime.init_from` in the Trainer: a PyTorch state_dict of another class count trains from its
// weights with the classifier re-initialised (bit-identical to starting from the same tensors written as
// a complete checkpoint), and a missing file, another network, `resume` or a folder holding a run stop
// the run with an error that says why.

import Checkpoints
import Foundation
import GhostNet
import Testing
import Training
import _TestSupport

@Suite(.serialized) struct InitialWeightsTrainerTests {
    /// The tiny job's network (see ``TinyJob``) with `classes` classes.
    func structure(classes: Int, blocks: [Int] = [2, 2, 2, 2]) throws -> GhostNetStructure {
        GhostNetStructure(
            configuration: try GhostNetConfiguration(
                blocksPerStage: blocks, width: 4, classes: classes, imageSize: 16))
    }

    /// Writes `parameters` as a plain state_dict (no ghostnet-d metadata) into the job's folder.
    func writeStateDict(_ parameters: ModelParameters, in job: TinyJob, _ name: String) throws -> String {
        var file = SafeTensorsFile()
        parameters.append(to: &file)
        let path = job.folder.appendingPathComponent(name).path
        try file.write(to: path)
        return path
    }

    @Test func stateDictOfAnotherClassCountTrainsWithTheClassifierReinitialised() throws {
        let job = try TinyJob()
        let pretrained = ModelParameters.initialized(for: try structure(classes: 10), seed: 41)
        let path = try writeStateDict(pretrained, in: job, "pretrained.safetensors")
        let fineTuned = try job.trainer(["fully_train.trainer.epochs=1", "runtime.init_from=\(path)"])
        try fineTuned.run()
        let log = job.log()
        let tensors = pretrained.structure.tensors.count
        #expect(
            log.contains(
                "init-from \(path) (PyTorch state_dict in safetensors): \(tensors - 2) matched, 2 re-initialised, "
                    + "0 missing, 0 unexpected, 0 with wrong shape"), "\(log)")
        let classifierLine = log.split(separator: "\n").first { $0.contains("classifier re-initialised") } ?? ""
        #expect(classifierLine.contains("(10 → 4 classes): "), "\(log)")
        #expect(classifierLine.contains("fc.weight") && classifierLine.contains("fc.bias"), "\(log)")
        #expect(fineTuned.state.epoch == 1)

        // The start it should have had: the pretrained tensors and the seed's (3) classifier, as a
        // complete checkpoint. Training from it ends bit for bit where the fine-tuned run ended.
        var start = ModelParameters.initialized(for: try structure(classes: 4), seed: 3)
        for spec in start.structure.tensors where !spec.name.hasPrefix("fc.") { start[spec] = pretrained[spec] }
        let reference = try TinyJob()
        let startPath = reference.folder.appendingPathComponent("start.safetensors").path
        try Checkpoint(parameters: start, seed: 3).write(to: startPath)
        let referenceRun = try reference.trainer(["fully_train.trainer.epochs=1", "runtime.init_from=\(startPath)"])
        try referenceRun.run()
        #expect(reference.log().contains("\(tensors) matched, 0 re-initialised"), "\(reference.log())")
        expectBitIdentical(modelBits(fineTuned.model), modelBits(referenceRun.model))

        // …and not where a run from the seed ends.
        let fresh = try TinyJob().trainer(["fully_train.trainer.epochs=1"])
        try fresh.run()
        #expect(modelBits(fresh.model) != modelBits(fineTuned.model))

        // The reference's folder now holds a run: starting another one there from a file is refused.
        let again = try reference.trainer(["fully_train.trainer.epochs=2", "runtime.init_from=\(startPath)"])
        let error = #expect(throws: TrainingError.self) { try again.run() }
        #expect(error?.kind == .configuration)
        let message = error?.message ?? ""
        #expect(message.contains("already holds checkpoint ckpt-e0001-s"), "\(message)")
        #expect(error?.message.contains("to continue it, or give the new run another --checkpoint-dir") == true)
    }

    @Test func unusableFilesStopTheRunNamingTheFile() throws {
        let job = try TinyJob()
        let missing = job.folder.appendingPathComponent("absent.safetensors").path
        let deeper = ModelParameters.initialized(for: try structure(classes: 4, blocks: [2, 2, 4, 2]), seed: 8)
        let other = try writeStateDict(deeper, in: job, "deeper.safetensors")
        let cases = [(missing, "No such file"), (other, "does not match the network")]
        for (path, text) in cases {
            let trainer = try job.trainer(["fully_train.trainer.epochs=1", "runtime.init_from=\(path)"])
            let error = #expect(throws: TrainingError.self) { try trainer.run() }
            #expect(error?.kind == .configuration)
            #expect(error?.isCollective == true)
            let message = error?.message ?? ""
            #expect(message.hasPrefix("runtime.init_from (--init-from): "), "\(message)")
            #expect(message.contains(path) && message.contains(text), "\(message)")
        }
        #expect(!FileManager.default.fileExists(atPath: job.checkpointFolder.path))
    }

    @Test func initFromWithResumeIsAConfigurationErrorThatExplainsBoth() throws {
        let error = #expect(throws: ConfigurationError.self) {
            try TinyJob().configuration(["runtime.init_from=/tmp/weights.safetensors", "runtime.resume=True"])
        }
        let text = error.map { "\($0)" } ?? ""
        #expect(text.contains("runtime.init_from"), "\(text)")
        #expect(text.contains("fresh optimizer, epoch 0") && text.contains("resume continues the run"), "\(text)")
    }
}
