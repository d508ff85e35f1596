// The memory model's fine-tuning terms: a weight average adds exactly the bytes a WeightEMA holds to
// the fixed part, and frozen prefixes change the prediction only by what the engine really skips.

import GhostNet
import TensorEngine
import Testing
import Training
import _TestSupport

@Suite struct MemoryModelOptionsTests {
    /// The bytes of every tensor a weight average holds.
    private func heldBytes(_ average: WeightEMA) -> Int {
        let tensors = average.model.parameters + average.model.runningStatistics
        return MemoryLayout<Float>.size * tensors.reduce(0) { $0 + $1.count }
    }

    @Test func theWeightAverageAddsExactlyItsCopyToTheFixedPart() throws {
        let live = try tinyModel()
        var average = WeightEMA(decay: 0.9, startingAt: live)
        average.update(from: live)
        let plain = MemoryModel(structure: live.structure, imageSize: 32, pipelineImages: 96)
        let averaged = MemoryModel(
            structure: live.structure, imageSize: 32, pipelineImages: 96,
            options: MemoryModel.Options(keepsWeightAverage: true))
        #expect(averaged.fixedBytes - plain.fixedBytes == heldBytes(average))
        #expect(averaged.weightAverageBytes == heldBytes(average))
        #expect(averaged.bytesPerImage == plain.bytesPerImage)
        #expect(plain.weightAverageBytes == 0)
    }

    @Test func ghostnet101sAverageIsItsParametersAndStatisticsInFP32() throws {
        let structure = GhostNetStructure(configuration: try GhostNetConfiguration(architecture: .ghostnet101))
        let statistics = structure.tensors.filter { !$0.isTrainable }.reduce(0) { $0 + $1.elementCount }
        // 38,216,872 parameters (GhostNetStructure.parameterCount) plus the running means and variances.
        #expect(structure.parameterCount == 38_216_872)
        #expect(MemoryModel.weightAverageBytes(of: structure) == 4 * (38_216_872 + statistics))
    }

    /// `config check`'s plan: the same micro-batch, a peak higher by exactly the average, named.
    @Test func theConfigurationsPlanCountsTheAverage() throws {
        let limit = "\nruntime:\n    memory_limit: 6GB\n"
        let plain = try TrainingConfiguration.parse(yaml: minimalTraining + limit, file: "plain.yml")
        let averaged = try TrainingConfiguration.parse(
            yaml: minimalTraining + "\n    trainer:\n        ema_decay: 0.999" + limit, file: "ema.yml")
        let step = try #require(plain.fullyTrain)
        let structure = GhostNetStructure(
            configuration: try GhostNetConfiguration(
                blocksPerStage: step.model.blocks, width: step.model.width, classes: step.model.classCount,
                imageSize: step.model.imageSize))
        let without = try plain.memoryPlan(for: step, structure: structure, ranksOnServer: 1, threads: 2)
        let with = try averaged.memoryPlan(
            for: try #require(averaged.fullyTrain), structure: structure, ranksOnServer: 1, threads: 2)
        #expect(with.microBatchSize == without.microBatchSize)
        #expect(with.predictedPeakBytes - without.predictedPeakBytes == MemoryModel.weightAverageBytes(of: structure))
        #expect(with.description.contains(", of which the weight average (trainer.ema_decay) "), "\(with.description)")
        #expect(!without.description.contains("weight average"))
    }

    /// A bf16 training step converts exactly what the model counts: forward forms everywhere,
    /// input-gradient forms only where backward computes one (so a frozen start saves its share);
    /// evaluating the weight average adds its forward forms.
    @Test(arguments: [[String](), ["conv1", "bn1", "layer1"]])
    func theBF16CacheHoldsWhatTheModelCounts(_ prefixes: [String]) throws {
        var model = try tinyModel()
        let frozen = FrozenParameters.indices(prefixes, names: model.parameterSlots.map(\.name))
        model.freeze(frozen)
        var average = WeightEMA(decay: 0.9, startingAt: model)
        average.update(from: model)
        let images = tinyImages(batch: 2)
        try withPrecision(.bf16) { () throws(GhostNetModelError) in
            _ = try model.trainingStep(images: images, labels: [1, 7])
            _ = try average.model.evaluate(images: images)
        }
        func cached(_ network: GhostNetModel) -> Int {
            network.parameters.reduce(0) { $0 + ConvertedWeights.bytes(of: $1) }
        }
        let structure = model.structure
        #expect(cached(model) == MemoryModel.convertedWeightBytes(of: structure, frozenSlots: frozen))
        #expect(cached(average.model) == MemoryModel.convertedWeightBytes(ofAverage: structure))
        if !frozen.isEmpty {
            #expect(
                MemoryModel.convertedWeightBytes(of: structure, frozenSlots: frozen)
                    < MemoryModel.convertedWeightBytes(of: structure, frozenSlots: []))
        }
        let options = MemoryModel.Options(keepsWeightAverage: true, frozenSlots: frozen, precision: .bf16)
        let bf16 = MemoryModel(structure: structure, imageSize: 32, pipelineImages: 0, options: options)
        #expect(bf16.convertedWeightBytes == cached(model) + cached(average.model))
    }

    /// Freezing keeps every fixed byte (weights, momentum, exchange and zero gradients of every slot)
    /// and saves, per image, only backward's share of the units at the start that it skips.
    @Test func frozenPrefixesSaveBackwardsShareOfTheSkippedUnitsOnly() throws {
        let structure = try tinyStructure()
        let names = FrozenParameters.parameterNames(of: structure)
        func model(_ prefixes: [String]) -> MemoryModel {
            MemoryModel(
                structure: structure, imageSize: 32, pipelineImages: 96,
                options: MemoryModel.Options(frozenSlots: FrozenParameters.indices(prefixes, names: names)))
        }
        let plain = model([])
        for prefixes in [["conv1"], ["layer3"], ["conv1", "bn1"], ["conv1", "bn1", "layer1", "layer2"]] {
            #expect(model(prefixes).fixedBytes == plain.fixedBytes, "\(prefixes)")
        }
        // Backward still runs through a stem whose bn1 trains, and through a frozen middle stage.
        #expect(model(["conv1"]).bytesPerImage == plain.bytesPerImage)
        #expect(model(["layer3"]).bytesPerImage == plain.bytesPerImage)
        // A frozen stem is skipped: width 8 at 32²: conv1 (stride 2) 8 × 16² and the max-pool 8 × 8²
        // = 2,560 floats, each 2.32 − 2 floats × 4 bytes lighter (±1 for the byte count's rounding).
        let stemSaving = plain.bytesPerImage - model(["conv1", "bn1"]).bytesPerImage
        #expect(abs(Double(stemSaving) - 2_560 * 0.32 * 4) <= 1)
        #expect(plain.bytesPerImage - model(["conv1", "bn1", "layer1"]).bytesPerImage > stemSaving)
    }
}
