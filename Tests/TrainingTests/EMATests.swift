// `trainer.ema_decay`: the weight average follows timm's formula within fp32 rounding, round-trips
// through a checkpoint's `ema.` tensors, and a resumed run with an average and frozen prefixes ends
// bit-identical to an uninterrupted one.

import Checkpoints
import Foundation
import GhostNet
import TensorEngine
import Testing
import Training
import _TestSupport

@Suite(.serialized) struct EMATests {
    /// After k updates the fp32 average equals ema_k = d·ema_{k−1} + (1−d)·w_k computed in double.
    ///
    /// Each fp32 update rounds three times (two products, one sum), each by at most u = 2⁻²⁴ of a
    /// value no larger than M = max |w|, and earlier errors shrink by d < 1, so after k steps the
    /// error is at most 3·k·u·M.
    @Test(arguments: [0.5, 0.9, 0.9998])
    func averageAfterKStepsMatchesTheHandFormula(decay: Double) throws {
        var model = try tinyModel()
        var average = WeightEMA(decay: decay, startingAt: model)
        let d = Double(Float(decay))
        let complement = Double(1 - Float(decay))
        var expected = (model.parameters + model.runningStatistics).map { $0.scalars.map(Double.init) }
        var largest = expected.joined().map(abs).max() ?? 0
        let steps = 6
        for step in 0..<steps {
            // New weights: the old ones plus noise, except the first tensor, which stays put.
            func perturb(_ slot: TensorSlot, _ tensor: inout Tensor, offset: Int) {
                guard slot.index + offset > 0 else { return }
                let noise = FiniteDifferences.randomTensor(slot.shape, seed: UInt64(1000 * step + slot.index + offset))
                tensor = Tensor(shape: slot.shape, scalars: zip(tensor.scalars, noise.scalars).map { $0 + $1 })
            }
            model.updateParameters { slot, tensor in perturb(slot, &tensor, offset: 0) }
            model.updateRunningStatistics { slot, tensor in perturb(slot, &tensor, offset: 10_000) }
            average.update(from: model)
            let current = (model.parameters + model.runningStatistics).map { $0.scalars.map(Double.init) }
            largest = max(largest, current.joined().map(abs).max() ?? 0)
            for index in expected.indices {
                expected[index] = zip(expected[index], current[index]).map { d * $0 + complement * $1 }
            }
        }
        let actual = (average.model.parameters + average.model.runningStatistics).map(\.scalars)
        let tolerance = 3 * Double(steps) * 0x1p-24 * largest
        for (index, (found, wanted)) in zip(actual, expected).enumerated() {
            let worst = zip(found, wanted).map { abs(Double($0) - $1) }.max() ?? 0
            #expect(worst <= tolerance, "tensor \(index): error \(worst) > \(tolerance)")
        }
        // A tensor that never changed keeps its exact bits in the average.
        #expect(bitPatterns([actual[0]]) == bitPatterns([model.parameters[0].scalars]))
    }

    @Test func checkpointRoundTripsTheAverage() throws {
        let folder = try TemporaryDirectory.make(prefix: "ghostnet-ema-checkpoint")
        let directory = CheckpointDirectory(url: folder, keep: 3)
        let model = try tinyModel(seed: 3)
        let averaged = try tinyModel(seed: 4).exportedParameters
        let slots = model.parameterSlots
        let momentum = slots.map { FiniteDifferences.randomTensor($0.shape, seed: UInt64($0.index)) }
        let state = TrainingState(seed: 3, learningRate: 0.1, worldSize: 1)
        let entry = directory.entry(epoch: 1, globalStep: 5)
        try TrainingCheckpoint(
            parameters: model.exportedParameters, momentum: momentum, state: state, average: averaged
        )
        .write(to: entry, slots: slots, seed: 3)
        let loaded = try #require(try TrainingCheckpoint(contentsOf: entry, slots: slots).average)
        #expect(bitPatterns(loaded.tensors.map(\.scalars)) == bitPatterns(averaged.tensors.map(\.scalars)))

        // Without an average there are no `ema.` tensors, and none is read back.
        let plain = directory.entry(epoch: 2, globalStep: 10)
        try TrainingCheckpoint(parameters: model.exportedParameters, momentum: momentum, state: state)
            .write(to: plain, slots: slots, seed: 3)
        #expect(try TrainingCheckpoint(contentsOf: plain, slots: slots).average == nil)
        let plainNames = try SafeTensorsFile(contentsOf: plain.optimizerURL.path).names
        #expect(!plainNames.contains { $0.hasPrefix(TrainingCheckpoint.averagePrefix) })

        // An average with a tensor missing is refused, naming it.
        let full = try SafeTensorsFile(contentsOf: entry.optimizerURL.path)
        let dropped = TrainingCheckpoint.averagePrefix + "fc.bias"
        var partial = SafeTensorsFile(metadata: full.metadata)
        for name in full.names where name != dropped { partial.append(try full.tensor(named: name), named: name) }
        try partial.write(to: entry.optimizerURL.path)
        let error = #expect(throws: (any Error).self) { _ = try TrainingCheckpoint(contentsOf: entry, slots: slots) }
        #expect("\(error.map { "\($0)" } ?? "")".contains(dropped))
    }

    /// A run with a weight average and frozen prefixes, interrupted after 2 of 4 epochs and resumed,
    /// ends with the model and the average bit-identical to the uninterrupted run's; the frozen
    /// parameters are still the seed's initial ones.
    @Test func resumedRunWithAverageAndFreezeEndsBitIdentical() throws {
        let settings = ["fully_train.trainer.ema_decay=0.9", "fully_train.trainer.freeze=[conv1, bn1, layer1]"]
        let uninterrupted = try TinyJob().trainer(settings)
        let initial = uninterrupted.model.parameters
        try uninterrupted.run()

        let job = try TinyJob()
        try job.trainer(settings + ["fully_train.trainer.epochs=2"]).run()
        let resumed = try job.trainer(settings + ["runtime.resume=True"])
        try resumed.run()
        #expect(job.log().contains("resume: continuing at epoch 3, step 1"), "\(job.log())")
        expectBitIdentical(modelBits(resumed.model), modelBits(uninterrupted.model))
        let average = try #require(resumed.average).model
        let reference = try #require(uninterrupted.average).model
        expectBitIdentical(modelBits(average), modelBits(reference))
        #expect(modelBits(average) != modelBits(resumed.model))
        #expect(job.log().contains("validation of the weight average (EMA) after epoch 4: top-1"))

        let slots = resumed.model.parameterSlots
        let frozen = FrozenParameters.indices(["conv1", "bn1", "layer1"], names: slots.map(\.name))
        #expect(!frozen.isEmpty)
        let trained = resumed.model.parameters
        for index in frozen {
            #expect(
                bitPatterns([trained[index].scalars]) == bitPatterns([initial[index].scalars]), "\(slots[index].name)")
            #expect(
                bitPatterns([average.parameters[index].scalars]) == bitPatterns([initial[index].scalars]),
                "average of \(slots[index].name)")
        }
    }
}
