// `ghostnet-d eval --weights ema|model` through the built binary: which weights of a checkpoint are
// evaluated, told apart by a loss that depends only on the classifier's bias, and the error for a
// checkpoint that carries no weight average.

import Checkpoints
import Foundation
import GhostNet
import TensorEngine
import Testing
import _TestSupport

@Suite struct EvalWeightsCLITests {
    private typealias Job = MPIJobs.TrainerCLITests

    /// A tiny network for the shared 4-class dataset (2 validation images per class).
    private static func structure() throws -> GhostNetStructure {
        GhostNetStructure(
            configuration: try GhostNetConfiguration(blocksPerStage: [1, 1, 1, 1], width: 4, classes: 4, imageSize: 16))
    }

    /// Random weights whose classifier has zero weights and the bias `bias`: the logits are `bias`
    /// for every image, so the loss is known without running the network.
    private static func parameters(_ structure: GhostNetStructure, bias: [Float]) -> ModelParameters {
        let random = ModelParameters.initialized(for: structure, seed: 5)
        return ModelParameters(
            structure: structure,
            orderedTensors: structure.tensors.map { spec in
                switch spec.name {
                case "fc.weight": Tensor(shape: spec.shape)
                case "fc.bias": Tensor(shape: spec.shape, scalars: bias)
                default: random[spec]
                }
            })
    }

    /// Writes a run's checkpoint (model file and optimizer file) into `folder`: trained weights
    /// with an all-zero classifier, and, when `averageBias` is given, a weight average whose
    /// classifier bias it is. Returns the model file's path.
    private static func writeCheckpoint(in folder: URL, averageBias: [Float]?) throws -> String {
        let structure = try structure()
        let model = GhostNetModel(parameters(structure, bias: [0, 0, 0, 0]))
        let entry = CheckpointDirectory(url: folder, keep: 3).entry(epoch: 1, globalStep: 2)
        try TrainingCheckpoint(
            parameters: model.exportedParameters, momentum: model.parameterSlots.map { Tensor(shape: $0.shape) },
            state: TrainingState(epoch: 1, globalStep: 2, seed: 5, learningRate: 0.1, worldSize: 1),
            average: averageBias.map { parameters(structure, bias: $0) }
        ).write(to: entry, slots: model.parameterSlots, seed: 5)
        return entry.modelURL.path
    }

    /// The loss printed on the line `<file>: epoch 1 step 2<weights>: top-1 … loss L (8 images)`.
    private static func loss(in output: String, line prefix: String) -> Double? {
        guard let line = output.split(separator: "\n").first(where: { $0.contains(prefix) }),
            let range = line.range(of: " loss ")
        else { return nil }
        return Double(line[range.upperBound...].prefix { $0 != " " })
    }

    private func eval(_ checkpoint: String, in folder: URL, _ extra: [String]) throws -> ProcessResult {
        let config = try Job.writeConfiguration(in: folder, pipeline: "eval")
        return try BuiltProducts.runGhostnet(
            ["eval", "--config", config, "--checkpoint", checkpoint] + extra, environment: Job.noCoordinator,
            timeout: 60)
    }

    /// The loss is printed with 6 significant digits (half a unit: 5e-6 at these magnitudes); the fp32
    /// softmax of four logits adds a few 1e-7 at most.
    private static let lossTolerance = 1e-5

    @Test func emaWeightsAreEvaluatedOnlyWhenAskedAndNamedInTheOutput() throws {
        let folder = try TemporaryDirectory.make(prefix: "ghostnet-cli-eval-ema")
        // Average: logits (ln 3, 0, 0, 0), so p = 1/2 for class 0 and 1/6 for the others; with two
        // images per class the mean loss is (ln 2 + 3 ln 6) / 4. Trained weights: equal logits, ln 4.
        let checkpoint = try Self.writeCheckpoint(in: folder, averageBias: [Float(log(3.0)), 0, 0, 0])
        let averaged = (log(2.0) + 3 * log(6.0)) / 4

        let model = try eval(checkpoint, in: folder, [])
        #expect(model.status == 0, "\(model.combined)")
        #expect(model.standardOutput.contains("evaluating the trained weights (model file) of 1 checkpoint(s)"))
        let modelLoss = try #require(Self.loss(in: model.standardOutput, line: "\(checkpoint): epoch 1 step 2: top-1"))
        #expect(abs(modelLoss - log(4.0)) <= Self.lossTolerance, "\(model.standardOutput)")
        #expect(model.standardOutput.contains("best: \(checkpoint) (model weights)"))

        let ema = try eval(checkpoint, in: folder, ["--weights", "ema"])
        #expect(ema.status == 0, "\(ema.combined)")
        #expect(ema.standardOutput.contains("evaluating the weight average (ema.* tensors"), "\(ema.standardOutput)")
        let emaLoss = try #require(
            Self.loss(in: ema.standardOutput, line: "\(checkpoint): epoch 1 step 2 (ema weights): top-1"))
        #expect(abs(emaLoss - averaged) <= Self.lossTolerance, "\(ema.standardOutput)")
        #expect(ema.standardOutput.contains("(8 images)"))
        #expect(ema.standardOutput.contains("best: \(checkpoint) (ema weights)"))
        #expect(ema.standardOutput.contains(" INFO Best values: [{'worker_id': '0', 'performance': {'accuracy_top1': "))
    }

    @Test func aCheckpointWithoutAnAverageIsRefusedByName() throws {
        let folder = try TemporaryDirectory.make(prefix: "ghostnet-cli-eval-no-ema")
        let checkpoint = try Self.writeCheckpoint(in: folder, averageBias: nil)
        let result = try eval(checkpoint, in: folder, ["--weights", "ema"])
        #expect(result.status != 0)
        #expect(
            result.combined.contains("skipping \(checkpoint): \(checkpoint): no weight average (ema.*) to evaluate"),
            "\(result.combined)")
        #expect(result.combined.contains("trainer.ema_decay"))
        #expect(result.combined.contains("no checkpoint could be evaluated"))
        // The trained weights of the same checkpoint still evaluate.
        #expect(try eval(checkpoint, in: folder, ["--weights", "model"]).status == 0)
    }

    @Test func anUnknownWeightsChoiceIsRefused() throws {
        let folder = try TemporaryDirectory.make(prefix: "ghostnet-cli-eval-bad-weights")
        let result = try eval(folder.appendingPathComponent("none.safetensors").path, in: folder, ["--weights", "avg"])
        #expect(result.status != 0)
        #expect(result.combined.contains("--weights") && result.combined.contains("ema"), "\(result.combined)")
    }
}
