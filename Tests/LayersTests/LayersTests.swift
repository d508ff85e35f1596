// The layers over the kernels: Conv2D's initialisation, PyTorch layout and gradients, BatchNorm2D's
// running statistics, Linear's initialisation and parameter order, and the stateless layers' gradients.

import Layers
import TensorEngine
import Testing
import _TestSupport

@Suite struct Conv2DTests {
    @Test func kaimingInitialisationHasTheFanOutVariance() {
        var random = SeededRandom(seed: 1)
        let conv = Conv2D(inputChannels: 64, outputChannels: 32, kernelSize: 3, padding: 1, random: &random)
        let weights = conv.parameters.weight.scalars.map(Double.init)
        let mean = weights.reduce(0, +) / Double(weights.count)
        let variance = weights.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(weights.count)
        expectClose(mean, 0, relative: 0, absolute: 0.005)
        expectClose(variance, 2.0 / (32 * 9), relative: 0.05, absolute: 0)
    }

    @Test func seededInitialisationIsReproducible() {
        var first = SeededRandom(seed: 9, streams: 4)
        var second = SeededRandom(seed: 9, streams: 4)
        let a = Conv2D(inputChannels: 3, outputChannels: 4, kernelSize: 7, stride: 2, padding: 3, random: &first)
        let b = Conv2D(inputChannels: 3, outputChannels: 4, kernelSize: 7, stride: 2, padding: 3, random: &second)
        expectClose(a.parameters.weight.scalars, b.parameters.weight.scalars, relative: 0, absolute: 0)
    }

    @Test func pytorchWeightRoundTrips() {
        let pytorchWeight = FiniteDifferences.randomTensor([4, 3, 3, 3], seed: 2)
        let conv = Conv2D(inputChannels: 3, outputChannels: 4, kernelSize: 3, padding: 1, pytorchWeight: pytorchWeight)
        #expect(conv.parameters.weight.shape == [4, 3, 3, 3])
        expectClose(conv.pytorchWeight.scalars, pytorchWeight.scalars, relative: 0, absolute: 0)
    }

    @Test func backwardMatchesFiniteDifferences() {
        var random = SeededRandom(seed: 3)
        let conv = Conv2D(inputChannels: 3, outputChannels: 4, kernelSize: 3, stride: 2, padding: 1, random: &random)
        let input = FiniteDifferences.randomTensor([2, 5, 7, 3], seed: 4)
        let (output, cache) = conv.forward(input, mode: .training)
        #expect(output.shape == [2, 3, 4, 4])
        let weights = FiniteDifferences.randomTensor(output.shape, seed: 5)
        let gradients = conv.backward(weights, cache: cache)
        FiniteDifferences.check(
            { conv.forward($0, mode: .training).output }, at: input, weights: weights, analytic: gradients.input)
        FiniteDifferences.check(
            {
                Conv2D(inputChannels: 3, outputChannels: 4, kernelSize: 3, stride: 2, padding: 1, weight: $0)
                    .forward(input, mode: .training).output
            },
            at: conv.parameters.weight, weights: weights, analytic: gradients.parameters.weight)
        expectClose(
            conv.parameterGradients(weights, cache: cache).weight.scalars, gradients.parameters.weight.scalars,
            relative: 0, absolute: 0)
    }

    @Test func wrongWeightShapeNamesIt() async {
        await #expect(processExitsWith: .failure) {
            _ = Conv2D(inputChannels: 3, outputChannels: 4, kernelSize: 3, weight: Tensor(shape: [4, 3, 3, 3, 1]))
        }
    }
}

@Suite struct BatchNorm2DTests {
    @Test func startsLikePyTorch() {
        let norm = BatchNorm2D(channels: 3)
        #expect(norm.momentum == 0.1 && norm.epsilon == 1e-5)
        expectClose(norm.parameters.weight.scalars, [1, 1, 1], relative: 0, absolute: 0)
        expectClose(norm.parameters.bias.scalars, [0, 0, 0], relative: 0, absolute: 0)
        expectClose(norm.runningMean.scalars, [0, 0, 0], relative: 0, absolute: 0)
        expectClose(norm.runningVariance.scalars, [1, 1, 1], relative: 0, absolute: 0)
        #expect(norm.parameters.namedParameters.map(\.name) == ["weight", "bias"])
    }

    @Test func trainingUpdatesRunningStatisticsAndInferenceUsesThem() {
        var norm = BatchNorm2D(channels: 1)
        // Values 1…4: mean 2.5, unbiased variance 5/3.
        let input = Tensor(shape: [1, 2, 2, 1], scalars: [1, 2, 3, 4])
        _ = norm.forward(input, mode: .training)
        _ = norm.forward(input, mode: .training)
        #expect(norm.batchesTracked == 2)
        // Two updates: m = 0.19·2.5, v = 0.81 + 0.19·5/3.
        expectClose(norm.runningMean.scalars, [0.19 * 2.5])
        expectClose(norm.runningVariance.scalars, [Float(0.81 + 0.19 * 5.0 / 3.0)])

        let before = (norm.runningMean.scalars, norm.runningVariance.scalars)
        let output = norm.forward(Tensor(shape: [1, 1, 1, 1], scalars: [2]), mode: .inference).output
        #expect(norm.batchesTracked == 2)
        expectClose(norm.runningMean.scalars, before.0, relative: 0, absolute: 0)
        let expected = (2 - 0.19 * 2.5) / (0.81 + 0.19 * 5.0 / 3.0 + 1e-5).squareRoot()
        expectClose(Double(output.scalars[0]), expected, relative: 1e-5, absolute: 1e-6)
    }

    @Test(arguments: [Mode.training, .inference], [false, true])
    func backwardMatchesFiniteDifferences(mode: Mode, fusingReLU: Bool) {
        var norm = BatchNorm2D(
            channels: 3,
            parameters: .init(
                weight: Tensor(shape: [3], scalars: [1.5, -0.5, 1]), bias: Tensor(shape: [3], scalars: [0.2, 0, -0.1])),
            runningMean: Tensor(shape: [3], scalars: [0.1, -0.2, 0]),
            runningVariance: Tensor(shape: [3], scalars: [0.8, 1.2, 2]))
        let frozen = norm
        let input = FiniteDifferences.randomTensor([2, 3, 3, 3], seed: 6)
        let (output, cache) = norm.forward(input, mode: mode, fusingReLU: fusingReLU)
        let weights = FiniteDifferences.randomTensor(output.shape, seed: 7)
        let gradients = norm.backward(weights, cache: cache)
        func forward(_ x: Tensor, _ parameters: BatchNorm2D.Parameters) -> Tensor {
            var copy = frozen
            copy.parameters = parameters
            return copy.forward(x, mode: mode, fusingReLU: fusingReLU).output
        }
        let tolerance = (epsilon: Float(1e-3), relative: 1e-2, absolute: 5e-3)
        FiniteDifferences.check(
            { forward($0, frozen.parameters) }, at: input, weights: weights, analytic: gradients.input,
            epsilon: tolerance.epsilon, relative: tolerance.relative, absolute: tolerance.absolute, "input")
        FiniteDifferences.check(
            { forward(input, .init(weight: $0, bias: frozen.parameters.bias)) }, at: frozen.parameters.weight,
            weights: weights, analytic: gradients.parameters.weight,
            epsilon: tolerance.epsilon, relative: tolerance.relative, absolute: tolerance.absolute, "weight")
        FiniteDifferences.check(
            { forward(input, .init(weight: frozen.parameters.weight, bias: $0)) }, at: frozen.parameters.bias,
            weights: weights, analytic: gradients.parameters.bias,
            epsilon: tolerance.epsilon, relative: tolerance.relative, absolute: tolerance.absolute, "bias")
    }

    @Test func trainingOnOneValuePerChannelFails() async {
        await #expect(processExitsWith: .failure) {
            var norm = BatchNorm2D(channels: 4)
            _ = norm.forward(Tensor(shape: [1, 1, 1, 4]), mode: .training)
        }
    }
}

@Suite struct LinearLayerTests {
    @Test func defaultInitialisationIsBoundedByTheFanIn() {
        var random = SeededRandom(seed: 8)
        let layer = Linear(inputFeatures: 16, outputFeatures: 10, random: &random)
        let bound: Float = 0.25
        #expect(layer.parameters.weight.scalars.allSatisfy { abs($0) <= bound })
        #expect(layer.parameters.bias.scalars.allSatisfy { abs($0) <= bound })
        #expect(layer.parameters.weight.scalars.contains { abs($0) > bound / 2 })
        #expect(layer.parameters.scalarCount == 170)
    }

    @Test func backwardMatchesFiniteDifferences() {
        var random = SeededRandom(seed: 9)
        let layer = Linear(inputFeatures: 6, outputFeatures: 4, random: &random)
        let input = FiniteDifferences.randomTensor([3, 1, 1, 6], seed: 10)
        let (output, cache) = layer.forward(input, mode: .training)
        let weights = FiniteDifferences.randomTensor(output.shape, seed: 11)
        let gradients = layer.backward(weights, cache: cache)
        FiniteDifferences.check(
            { layer.forward($0, mode: .training).output }, at: input, weights: weights, analytic: gradients.input)
        FiniteDifferences.check(
            {
                Linear(inputFeatures: 6, outputFeatures: 4, weight: $0, bias: layer.parameters.bias).forward(
                    input, mode: .training
                ).output
            },
            at: layer.parameters.weight, weights: weights, analytic: gradients.parameters.weight)
    }

    @Test func parametersEnumerateAndUpdateInOrder() {
        var random = SeededRandom(seed: 12)
        var layer = Linear(inputFeatures: 2, outputFeatures: 3, random: &random)
        let gradients = Linear.Parameters(
            weight: Tensor(shape: [3, 2], repeating: 1), bias: Tensor(shape: [3], repeating: 2))
        let before = layer.parameters.namedParameters
        // A plain SGD step: the gradient list is walked in the same order as the parameters.
        let gradientList = gradients.namedParameters
        var position = 0
        layer.parameters.updateEachParameter { name, value in
            #expect(name == gradientList[position].name)
            let gradient = gradientList[position].value.scalars
            value.withUnsafeMutableBufferPointer { values in
                for index in values.indices { values[index] -= 0.5 * gradient[index] }
            }
            position += 1
        }
        #expect(before.map(\.name) == ["weight", "bias"])
        expectClose(layer.parameters.weight.scalars, before[0].value.scalars.map { $0 - 0.5 })
        expectClose(layer.parameters.bias.scalars, before[1].value.scalars.map { $0 - 1 })
    }
}

@Suite struct StatelessLayerTests {
    @Test func poolingAndReLULayersMatchFiniteDifferences() {
        let input = FiniteDifferences.wellSeparatedTensor([2, 5, 7, 3], seed: 13)
        let pool = MaxPool2D()
        let (pooled, poolCache) = pool.forward(input, mode: .training)
        #expect(pooled.shape == [2, 3, 4, 3])
        let poolWeights = FiniteDifferences.randomTensor(pooled.shape, seed: 14)
        FiniteDifferences.check(
            { pool.forward($0, mode: .training).output }, at: input, weights: poolWeights,
            analytic: pool.backward(poolWeights, cache: poolCache), "max pool")

        let activation = ReLU()
        let (activated, reluCache) = activation.forward(input, mode: .training)
        let reluWeights = FiniteDifferences.randomTensor(activated.shape, seed: 15)
        FiniteDifferences.check(
            { activation.forward($0, mode: .training).output }, at: input, weights: reluWeights,
            analytic: activation.backward(reluWeights, cache: reluCache), "relu")

        let average = GlobalAveragePool2D()
        let (averaged, averageCache) = average.forward(input, mode: .inference)
        #expect(averaged.shape == [2, 1, 1, 3])
        let averageWeights = FiniteDifferences.randomTensor(averaged.shape, seed: 16)
        FiniteDifferences.check(
            { average.forward($0, mode: .inference).output }, at: input, weights: averageWeights,
            analytic: average.backward(averageWeights, cache: averageCache), "global average pool")
    }
}
