// `trainer.freeze`: frozen parameters and their batch-norm statistics stay bit-identical over SGD steps,
// skipping their gradients leaves the trainable ones as they were, and bad prefixes are configuration errors.

import GhostNet
import TensorEngine
import Testing
import Training
import _TestSupport

@Suite struct FreezeTests {
    /// One step as the trainer takes it: gradients flattened in slot order, then SGD on the model.
    static func step(
        _ model: inout GhostNetModel, optimizer: SGDOptimizer, momentum: inout [Tensor], first: Bool, seed: UInt64
    ) throws -> ParameterGradients {
        let images = tinyImages(batch: 4, seed: seed)
        let result = try model.trainingStep(images: images, labels: [0, 3, 7, 9])
        let flat = result.gradients.tensors.flatMap(\.scalars)
        flat.withUnsafeBufferPointer { gradients in
            optimizer.update(&model, gradients: gradients, momentum: &momentum, buffersAreInitialized: !first)
        }
        return result.gradients
    }

    @Test func frozenPrefixesStayBitIdenticalAcrossSteps() throws {
        var model = try tinyModel()
        let names = model.parameterSlots.map(\.name)
        let frozen = FrozenParameters.indices(["conv1", "bn1", "layer1", "layer3.end.bn2"], names: names)
        #expect(frozen.contains(0) && !frozen.contains(names.count - 1))
        model.freeze(frozen)
        let before = model
        let optimizer = SGDOptimizer(learningRate: 0.1, momentum: 0.9, weightDecay: 0.01)
        var momentum = model.parameterSlots.map { Tensor(shape: $0.shape) }
        for step in 0..<3 {
            let gradients = try Self.step(
                &model, optimizer: optimizer, momentum: &momentum, first: step == 0, seed: 50 + UInt64(step))
            for index in frozen {
                #expect(gradients.tensors[index].scalars.allSatisfy { $0.bitPattern == 0 }, "\(names[index])")
            }
        }
        let (initial, trained) = (before.parameters, model.parameters)
        for slot in model.parameterSlots {
            let same = bitPatterns([trained[slot.index].scalars]) == bitPatterns([initial[slot.index].scalars])
            #expect(same == frozen.contains(slot.index), "\(slot.name) changed: \(!same)")
            if frozen.contains(slot.index) {
                #expect(momentum[slot.index].scalars.allSatisfy { $0.bitPattern == 0 }, "\(slot.name) momentum")
            }
        }
        // Batch norms whose γ and β are frozen run in inference mode: their running statistics stay put.
        let (initialStatistics, trainedStatistics) = (before.runningStatistics, model.runningStatistics)
        for slot in model.bufferSlots {
            let module = String(slot.name.prefix(upTo: slot.name.lastIndex(of: ".")!))
            let isFrozen = ["conv1", "bn1", "layer1", "layer3.end.bn2"].contains {
                FrozenParameters.covers($0, module + ".weight")
            }
            let same =
                bitPatterns([trainedStatistics[slot.index].scalars])
                == bitPatterns([initialStatistics[slot.index].scalars])
            #expect(same == isFrozen, "\(slot.name): unchanged \(same), frozen \(isFrozen)")
        }
    }

    /// Skipping the frozen convolutions' weight gradients and the backward below the lowest trainable
    /// stage must not change any trainable gradient. The reference freezes the same batch norms (so
    /// the forward is the same) but differentiates every convolution fully.
    @Test func skippedGradientsLeaveTrainableGradientsAsTheyWere() throws {
        let slots = try tinyModel().parameterSlots
        let names = slots.map(\.name)
        let frozen = FrozenParameters.indices(["conv1", "bn1", "layer1", "layer2.base"], names: names)
        // Below the classifier, the one-dimensional parameters are the batch norms' γ and β.
        let frozenNormalizations = frozen.filter { slots[$0].shape.count == 1 }
        var skipping = try tinyModel()
        skipping.freeze(frozen)
        var reference = try tinyModel()
        reference.freeze(frozenNormalizations)
        let images = tinyImages(batch: 3, seed: 61)
        let skipped = try skipping.trainingStep(images: images, labels: [1, 2, 5]).gradients
        let full = try reference.trainingStep(images: images, labels: [1, 2, 5]).gradients
        for index in names.indices where !frozen.contains(index) {
            // The same GEMMs in the same order: only a reordered sum could differ, by a few ulps of
            // the largest element.
            let expected = full.tensors[index].scalars
            let scale = Double(expected.map(abs).max() ?? 0)
            expectClose(
                skipped.tensors[index].scalars, expected, relative: 0, absolute: 4 * scale * 0x1p-24, "\(names[index])")
        }
        #expect(frozen.allSatisfy { skipped.tensors[$0].scalars.allSatisfy { $0.bitPattern == 0 } })
    }

    @Test func prefixesCoverWholeNameComponents() {
        #expect(FrozenParameters.covers("layer1", "layer1.base.conv1.weight"))
        #expect(!FrozenParameters.covers("layer1", "layer10.base.conv1.weight"))
        #expect(!FrozenParameters.covers("conv1", "layer1.base.conv1.weight"))
        #expect(FrozenParameters.covers("fc.bias", "fc.bias"))
        #expect(!FrozenParameters.covers("lay", "layer1.base.conv1.weight"))
    }

    @Test(arguments: [
        ("fully_train.trainer.freeze=[conv1, layer9]", "fully_train.trainer.freeze", "'layer9'"),
        ("fully_train.trainer.freeze=[lay]", "fully_train.trainer.freeze", "'lay'"),
        ("fully_train.trainer.freeze=conv1", "fully_train.trainer.freeze", "list"),
        ("fully_train.trainer.ema_decay=1.0", "fully_train.trainer.ema_decay", "[0, 1)"),
        ("fully_train.trainer.ema_decay=-0.5", "fully_train.trainer.ema_decay", "[0, 1)"),
        ("fully_train.trainer.ema_decay=often", "fully_train.trainer.ema_decay", "number"),
    ])
    func badValuesAreConfigurationErrorsNamingTheKey(setting: String, key: String, fragment: String) throws {
        let error = #expect(throws: ConfigurationError.self) {
            _ = try TinyJob().configuration([setting])
        }
        let text = "\(error.map { "\($0)" } ?? "")"
        #expect(text.contains(key) && text.contains(fragment), "\(text)")
    }

    @Test func validValuesReachTheTrainerSection() throws {
        let step = try TinyJob().configuration([
            "fully_train.trainer.freeze=[conv1, bn1, layer1]", "fully_train.trainer.ema_decay=0.999",
        ]).step(.fullyTrain)
        #expect(step.trainer.freeze == ["conv1", "bn1", "layer1"])
        expectClose(step.trainer.emaDecay, 0.999, relative: 0, absolute: 0)
        let defaults = try TinyJob().configuration().step(.fullyTrain).trainer
        #expect(defaults.freeze.isEmpty && defaults.emaDecay.bitPattern == 0)
    }
}
