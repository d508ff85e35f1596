//===----------------------------------------------------------------------===//
// ghostnet-d — GhostNet tests
//===----------------------------------------------------------------------===//

import Foundation
import GhostNet
import Layers
import TensorEngine
import Testing
import _TestSupport

/// A tiny model (see ``tinyStructure(classes:)``) and an NHWC image batch for it.
func tinyModel(seed: UInt64 = 3) throws -> GhostNetModel {
    GhostNetModel(ModelParameters.initialized(for: try tinyStructure(), seed: seed))
}

/// Random NHWC images whose colour offsets and contrast differ from image to image, as real
/// photographs do. (Noise images with equal statistics pool to nearly equal features, and the
/// merge batch norm, which normalises over the batch alone, would divide by an almost zero spread.)
func tinyImages(batch: Int, size: Int = 32, seed: UInt64 = 99) -> Tensor {
    let noise = FiniteDifferences.randomTensor([batch, size, size, 3], seed: seed).scalars
    let offsets = FiniteDifferences.randomTensor([batch, 3], seed: seed + 1).scalars
    let contrasts = FiniteDifferences.randomTensor([batch], seed: seed + 2, scale: 0.3).scalars
    let pixelsPerImage = size * size * 3
    return Tensor(shape: [batch, size, size, 3]) { values in
        for index in values.indices {
            let image = index / pixelsPerImage
            values[index] = noise[index] * (1 + contrasts[image]) + offsets[image * 3 + index % 3]
        }
    }
}

@Suite struct GhostNetModelTests {
    @Test func slotsFollowTheStructureAndCountEveryParameter() throws {
        let model = try tinyModel()
        let structure = model.structure
        #expect(model.parameterSlots.map(\.name) == structure.trainableTensors.map(\.name))
        #expect(model.bufferSlots.map(\.name) == structure.tensors.filter { !$0.isTrainable }.map(\.name))
        #expect(model.numberOfParameters == structure.parameterCount)
        #expect(model.parameterSlots.map(\.index) == Array(model.parameterSlots.indices))
        var offset = 0
        for slot in model.parameterSlots {
            #expect(slot.offset == offset)
            offset += slot.scalarCount
        }
        let conv2 = try #require(model.parameterSlots.first { $0.name == "layer1.base.conv2.weight" })
        #expect(conv2.pytorchShape == [8, 8, 3, 3] && conv2.shape == [8, 3, 3, 8])
        #expect(model.parameters.map(\.shape) == model.parameterSlots.map(\.shape))
        #expect(model.runningStatistics.map(\.shape) == model.bufferSlots.map(\.shape))
    }

    @Test func ghostnet101HasTheReferenceParameterCount() throws {
        let model = GhostNetModel(configuration: try GhostNetConfiguration(architecture: .ghostnet101), seed: 0)
        #expect(model.numberOfParameters == 38_216_872)
        #expect(model.parameters.reduce(0) { $0 + $1.count } == 38_216_872)
        #expect(model.parameterSlots.count + model.bufferSlots.count == model.structure.tensors.count)
    }

    /// Building a model converts conv weights to OHWI; exporting converts them back bit for bit.
    @Test func exportReturnsTheLoadedTensors() throws {
        let parameters = ModelParameters.initialized(for: try tinyStructure(), seed: 8)
        let exported = GhostNetModel(parameters).exportedParameters
        for (spec, (original, roundTripped)) in zip(parameters.structure.tensors, zip(parameters.tensors, exported.tensors)) {
            #expect(roundTripped.shape == spec.shape)
            #expect(original.scalars.map(\.bitPattern) == roundTripped.scalars.map(\.bitPattern), "\(spec.name)")
        }
    }

    /// init → save → load → forward gives the same logits; a corrupted byte is refused.
    @Test func checkpointRoundTripGivesIdenticalLogits() throws {
        let directory = try TemporaryDirectory.make()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("model.safetensors").path
        var model = try tinyModel(seed: 21)
        let images = tinyImages(batch: 3)
        _ = try model.forward(images, mode: .training)  // move the running statistics off their initial values
        try Checkpoint(parameters: model.exportedParameters, seed: 21).write(to: path)

        var loaded = GhostNetModel(try Checkpoint(contentsOf: path).parameters)
        for (original, reloaded) in zip(model.runningStatistics, loaded.runningStatistics) {
            expectClose(reloaded.scalars, original.scalars, relative: 0, absolute: 0)
        }
        expectClose(try loaded.evaluate(images: images).scalars, try model.evaluate(images: images).scalars, relative: 0, absolute: 0)
        expectClose(
            try loaded.forward(images, mode: .training).scalars, try model.forward(images, mode: .training).scalars,
            relative: 0, absolute: 0)

        var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        bytes[bytes.count - 100] ^= 0x10
        try bytes.write(to: URL(fileURLWithPath: path))
        #expect {
            _ = try Checkpoint(contentsOf: path)
        } throws: { error in
            (error as? SafeTensorsError)?.kind == .checksumMismatch && "\(error)".contains(path)
        }
    }

    /// Training mode moves each running statistic 10 % towards the batch's (unbiased variance);
    /// inference normalises with them and leaves them alone.
    @Test func trainingUpdatesRunningStatisticsAndInferenceUsesThem() throws {
        var model = try tinyModel()
        let images = tinyImages(batch: 2)
        let trainingLogits = try model.forward(images, mode: .training)

        // bn1 sees conv1's output: check against the statistics computed here.
        let conv1 = try #require(model.parameterSlots.first { $0.name == "conv1.weight" })
        let convolved = conv2d(
            images, weight: model.parameters[conv1.index], geometry: Convolution2DGeometry(kernelSize: 7, stride: 2, padding: 3))
        let channels = 8, values = convolved.scalars
        let count = values.count / channels
        let exported = model.exportedParameters
        let runningMean = exported["bn1.running_mean"].scalars, runningVariance = exported["bn1.running_var"].scalars
        for c in 0..<channels {
            let column = stride(from: c, to: values.count, by: channels).map { Double(values[$0]) }
            let mean = column.reduce(0, +) / Double(count)
            let unbiased = column.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(count - 1)
            expectClose(Double(runningMean[c]), 0.1 * mean, relative: 1e-4, absolute: 1e-6, "running mean \(c)")
            expectClose(Double(runningVariance[c]), 0.9 + 0.1 * unbiased, relative: 1e-4, absolute: 1e-6, "running var \(c)")
        }

        let statistics = model.runningStatistics.map(\.scalars)
        let inferenceLogits = try model.evaluate(images: images)
        #expect(model.runningStatistics.map(\.scalars) == statistics, "inference leaves the running statistics")
        #expect(inferenceLogits.scalars != trainingLogits.scalars)

        // Shifting the last batch norm's running mean changes inference but not training output.
        var shifted = model
        shifted.updateRunningStatistics { slot, tensor in
            if slot.name == "layer4.end.bn3.running_mean" { tensor = Tensor(shape: tensor.shape, repeating: 0.5) }
        }
        var trainingCopy = shifted
        #expect(try shifted.evaluate(images: images).scalars != inferenceLogits.scalars)
        var referenceCopy = model
        expectClose(
            try trainingCopy.forward(images, mode: .training).scalars,
            try referenceCopy.forward(images, mode: .training).scalars, relative: 0, absolute: 0)
    }

    /// In inference each image is independent of the others in its batch.
    @Test func inferenceOfABatchMatchesImageByImage() throws {
        var model = try tinyModel()
        let images = tinyImages(batch: 3)
        let batched = try model.evaluate(images: images).scalars
        let pixels = 32 * 32 * 3
        for n in 0..<3 {
            let single = Tensor(shape: [1, 32, 32, 3], scalars: Array(images.scalars[(n * pixels)..<((n + 1) * pixels)]))
            let logits = try model.evaluate(images: single)
            #expect(logits.shape == [1, 10])
            expectClose(logits.scalars, Array(batched[(n * 10)..<((n + 1) * 10)]), relative: 1e-5, absolute: 1e-6)
        }
    }

    /// A batch of one cannot train: the merge batch norm would normalise one value per channel.
    @Test func batchOfOneInTrainingIsRefusedWithTheReason() throws {
        var model = try tinyModel()
        let statistics = model.runningStatistics.map(\.scalars)
        #expect {
            _ = try model.trainingStep(images: tinyImages(batch: 1), labels: [3])
        } throws: { error in
            let message = "\(error)"
            return message.contains("more than 1 value per channel when training") && message.contains("batch size 1")
                && message.contains("layer1.merge.2")
        }
        #expect(model.runningStatistics.map(\.scalars) == statistics, "a refused step changes nothing")
        // Inference normalises with the running statistics, so one image is fine.
        let logits = try model.evaluate(images: tinyImages(batch: 1))
        #expect(logits.scalars.allSatisfy { $0.isFinite })
    }

    @Test(arguments: [
        ([2, 32, 32, 1], [0, 1], "[N, H, W, 3]"),
        ([2, 3, 32, 32, 1], [0, 1], "[N, H, W, 3]"),
        ([2, 32, 32, 3], [0], "1 labels for a batch of 2"),
        ([2, 32, 32, 3], [0, 10], "label 10 of image 1 is outside 0..<10"),
    ])
    func badInputsAreRefusedWithTheReason(shape: [Int], labels: [Int], message: String) throws {
        var model = try tinyModel()
        #expect {
            _ = try model.trainingStep(images: Tensor(shape: shape), labels: labels)
        } throws: { error in
            "\(error)".contains(message)
        }
    }

    /// Every parameter gradient is announced once, as soon as final: strictly from the last slot to
    /// the first, with the tensor that ends up in the result.
    @Test func backwardAnnouncesEachGradientOnceInReverseOrder() throws {
        var model = try tinyModel()
        var announced: [(index: Int, tensor: Tensor)] = []
        let result = try model.trainingStep(images: tinyImages(batch: 2), labels: [1, 7]) { slot, gradient in
            announced.append((slot.index, gradient))
            #expect(gradient.shape == slot.shape, "\(slot.name)")
        }
        #expect(announced.map(\.index) == Array(model.parameterSlots.indices.reversed()))
        for (index, tensor) in announced {
            #expect(result.gradients.tensors[index].scalars == tensor.scalars)
        }
        #expect(result.gradients.tensors.allSatisfy { $0.scalars.allSatisfy(\.isFinite) })
        #expect(result.loss.isFinite && result.loss > 0)
    }

    /// One-hot soft targets give the same loss and gradients as the labels.
    @Test func oneHotTargetsMatchLabels() throws {
        let labels = [4, 0, 9]
        let targets = Tensor(shape: [3, 10]) { values in
            values.initialize(repeating: 0)
            for (row, label) in labels.enumerated() { values[row * 10 + label] = 1 }
        }
        var first = try tinyModel(), second = try tinyModel()
        let images = tinyImages(batch: 3)
        let byLabels = try first.trainingStep(images: images, labels: labels)
        let byTargets = try second.trainingStep(images: images, targets: targets)
        expectClose(byTargets.loss, byLabels.loss, relative: 1e-12, absolute: 0)
        for (a, b) in zip(byTargets.gradients.tensors, byLabels.gradients.tensors) {
            expectClose(a.scalars, b.scalars, relative: 1e-6, absolute: 1e-9)
        }
    }
}
