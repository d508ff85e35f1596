// The executable model: slots against the structure, export round trips, running statistics, batched
// against per-image inference, the batch-of-one refusal, and the order gradients are announced in.

import Foundation
import GhostNet
import Layers
import TensorEngine
import Testing
import _TestSupport

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
        for (spec, (original, roundTripped)) in zip(
            parameters.structure.tensors, zip(parameters.tensors, exported.tensors))
        {
            #expect(roundTripped.shape == spec.shape)
            #expect(original.scalars.map(\.bitPattern) == roundTripped.scalars.map(\.bitPattern), "\(spec.name)")
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
            images, weight: model.parameters[conv1.index],
            geometry: Convolution2DGeometry(kernelSize: 7, stride: 2, padding: 3))
        let channels = 8
        let values = convolved.scalars
        let count = values.count / channels
        let exported = model.exportedParameters
        let runningMean = exported["bn1.running_mean"].scalars
        let runningVariance = exported["bn1.running_var"].scalars
        for c in 0..<channels {
            let column = stride(from: c, to: values.count, by: channels).map { Double(values[$0]) }
            let mean = column.reduce(0, +) / Double(count)
            let unbiased = column.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(count - 1)
            expectClose(Double(runningMean[c]), 0.1 * mean, relative: 1e-4, absolute: 1e-6, "running mean \(c)")
            expectClose(
                Double(runningVariance[c]), 0.9 + 0.1 * unbiased, relative: 1e-4, absolute: 1e-6, "running var \(c)")
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
            let single = Tensor(
                shape: [1, 32, 32, 3], scalars: Array(images.scalars[(n * pixels)..<((n + 1) * pixels)]))
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
        var first = try tinyModel()
        var second = try tinyModel()
        let images = tinyImages(batch: 3)
        let byLabels = try first.trainingStep(images: images, labels: labels)
        let byTargets = try second.trainingStep(images: images, targets: targets)
        expectClose(byTargets.loss, byLabels.loss, relative: 1e-12, absolute: 0)
        for (a, b) in zip(byTargets.gradients.tensors, byLabels.gradients.tensors) {
            expectClose(a.scalars, b.scalars, relative: 1e-6, absolute: 1e-9)
        }
    }
}
