// Gradient accumulation over micro-batches: the split of a batch into passes, and that the
// accumulated gradient (and update) is the one of the whole batch.

import Distributed
import GhostNet
import Layers
import TensorEngine
import Testing
import Training
import _TestSupport

@Suite struct MicroBatchTests {
    /// The network of the tiny training jobs: ghostnet50-shaped, width 4, 4 classes, 16×16.
    static func model() throws -> GhostNetModel {
        GhostNetModel(
            configuration: try GhostNetConfiguration(
                blocksPerStage: [2, 2, 2, 2], width: 4, classes: 4, imageSize: 16),
            seed: 5)
    }

    static let images = tinyImages(batch: 7, size: 16)
    static let labels = [0, 3, 1, 2, 2, 0, 1]

    /// Runs `plan`'s passes of the batch through `model`, accumulating into a one-rank exchange.
    static func accumulated(
        _ model: inout GhostNetModel, plan: MicroBatchPlan, mode: Mode
    ) throws -> (gradients: [Float], loss: Double) {
        let exchange = GradientExchange(
            parameterShapes: model.parameterSlots.map(\.shape), communicator: LocalCommunicator.group(size: 1)[0])
        let outcome = try plan.accumulate(images: images, labels: labels, model: &model, into: exchange) {
            model, pass, _, gradientReady throws(GhostNetModelError) in
            try model.trainingStep(
                images: pass.images, labels: pass.labels, batchNormMode: mode, gradientReady: gradientReady
            ).loss
        }
        #expect(outcome.exchangeError == nil && outcome.gradientIsFinite)
        try exchange.finish()
        return (exchange.withGradients { Array($0) }, outcome.loss)
    }

    @Test func batchesSplitIntoBalancedPassesOfAtMostTheMicroBatch() {
        let plan = MicroBatchPlan(microBatchSize: 4, minimumSize: 2)
        #expect(plan.sizes(of: 10) == [4, 3, 3])
        #expect(plan.sizes(of: 8) == [4, 4])
        #expect(plan.sizes(of: 4) == [4])
        #expect(plan.sizes(of: 3) == [3])
        #expect(MicroBatchPlan(microBatchSize: nil, minimumSize: 1).sizes(of: 128) == [128])
        // Batch statistics need two images per pass: 5 images at micro-batch 1 run as 3 + 2.
        #expect(MicroBatchPlan(microBatchSize: 1, minimumSize: 2).sizes(of: 5) == [3, 2])
        #expect(MicroBatchPlan(microBatchSize: 1, minimumSize: 1).sizes(of: 3) == [1, 1, 1])
        let passes = plan.passes(images: Self.images, labels: Self.labels)
        #expect(passes.map(\.labels) == [[0, 3, 1, 2], [2, 0, 1]])
        #expect(passes.map(\.images.shape) == [[4, 16, 16, 3], [3, 16, 16, 3]])
        #expect(passes[1].images.scalars == Array(Self.images.scalars[(4 * 16 * 16 * 3)...]))
        expectClose(passes.map { Double($0.weight) }.reduce(0, +), 1, relative: 2e-7)
    }

    /// With frozen batch norm every image's loss is independent of the rest of its batch, so three
    /// passes of 3, 2 and 2 images give the gradient and the SGD update of one pass of 7, one pass
    /// after another or two at a time.
    @Test(arguments: [1, 2]) func frozenBatchNormPassesGiveTheGradientAndUpdateOfTheWholeBatch(lanes: Int) throws {
        var whole = try Self.model()
        var split = whole
        let reference = try Self.accumulated(
            &whole, plan: MicroBatchPlan(microBatchSize: nil, minimumSize: 1), mode: .inference)
        let plan = MicroBatchPlan(microBatchSize: 3, minimumSize: 1, lanes: lanes)
        #expect(plan.sizes(of: 7) == [3, 2, 2])
        let accumulated = try Self.accumulated(&split, plan: plan, mode: .inference)
        // The passes change the order of float32 sums whose longest reduction runs over the batch
        // and the 8×8 pixels of the stem's output, L = 7·64 terms: |error| ≤ L·ε·Σ|terms|, and
        // Σ|terms| is of the order of the tensor's largest gradient, so L·ε·max|g| per tensor.
        let reduction = Double(7 * 64)
        let epsilon = Double(Float.ulpOfOne)
        for slot in whole.parameterSlots {
            let range = slot.offset..<slot.offset + slot.scalarCount
            let largest = Double(reference.gradients[range].map(abs).max() ?? 0)
            expectClose(
                Array(accumulated.gradients[range]), Array(reference.gradients[range]),
                relative: reduction * epsilon, absolute: reduction * epsilon * largest, "gradient of \(slot.name)")
        }
        expectClose(accumulated.loss, reference.loss, relative: reduction * epsilon)

        // One SGD step from the same weights: w − lr·(g + wd·w) differs by lr times the gradient's error.
        let optimizer = SGDOptimizer(learningRate: 0.1, momentum: 0.9, weightDecay: 1e-4)
        var momentum = whole.parameters.map { Tensor(shape: $0.shape) }
        var splitMomentum = momentum
        reference.gradients.withUnsafeBufferPointer {
            optimizer.update(&whole, gradients: $0, momentum: &momentum, buffersAreInitialized: false)
        }
        accumulated.gradients.withUnsafeBufferPointer {
            optimizer.update(&split, gradients: $0, momentum: &splitMomentum, buffersAreInitialized: false)
        }
        for (index, (updated, expected)) in zip(split.parameters, whole.parameters).enumerated() {
            let largest = Double(expected.scalars.map(abs).max() ?? 0)
            expectClose(
                updated.scalars, expected.scalars, relative: reduction * epsilon,
                absolute: reduction * epsilon * largest, "parameter \(index) after the update")
        }
    }

    /// With batch statistics each pass normalises itself: the accumulated gradient is the mean of
    /// the gradients of the passes run separately, and the running statistics take one momentum
    /// update per pass, in pass order, also when two lanes run passes 0 and 2 beside pass 1.
    /// Everything runs on one thread per pass, as a lane does, so each pass's arithmetic is the same.
    @Test(arguments: [1, 2]) func trainingBatchNormAccumulatesTheMeanOfThePassGradients(lanes: Int) throws {
        try GEMM.withThreadCount(1) { try Self.expectTheMeanOfThePassGradients(lanes: lanes) }
    }

    private static func expectTheMeanOfThePassGradients(lanes: Int) throws {
        let plan = MicroBatchPlan(microBatchSize: 2, minimumSize: 2, lanes: lanes)
        var model = try Self.model()
        let passes = plan.passes(images: Self.images, labels: Self.labels)
        #expect(passes.map(\.labels.count) == [3, 2, 2])
        #expect(plan.laneCount(of: 7) == lanes)
        var separate = model
        var perPass: [[Float]] = []
        for pass in passes {
            let result = try separate.trainingStep(images: pass.images, labels: pass.labels)
            perPass.append(result.gradients.tensors.flatMap(\.scalars))
        }
        let accumulated = try Self.accumulated(&model, plan: plan, mode: .training)
        // Each element is Σⱼ wⱼ·gⱼ in float32: three products and two sums (in another order in two
        // lanes), each rounding by at most ε/2 of a partial sum, so |error| ≤ 2ε·Σⱼ|wⱼ·gⱼ| (computed
        // here in Double).
        let weights = passes.map { Double($0.labels.count) / 7 }
        var expected: [Float] = []
        var bound: [Double] = []
        for element in accumulated.gradients.indices {
            let terms = perPass.indices.map { weights[$0] * Double(perPass[$0][element]) }
            expected.append(Float(terms.reduce(0, +)))
            bound.append(2 * Double(Float.ulpOfOne) * terms.map(abs).reduce(0, +))
        }
        for element in expected.indices
        where abs(Double(accumulated.gradients[element]) - Double(expected[element]))
            > bound[element] + Double(Float.leastNormalMagnitude)
        {
            Issue.record(
                """
                element \(element): \(accumulated.gradients[element]) vs \(expected[element]), \
                bound \(bound[element])
                """)
            break
        }
        #expect(
            bitPatterns(model.runningStatistics.map(\.scalars))
                == bitPatterns(separate.runningStatistics.map(\.scalars)))
    }

    @Test func aMicroBatchLargerThanTheBatchIsRefusedNamingTheKey() throws {
        let job = try TinyJob()
        #expect(try job.configuration(["runtime.micro_batch_size=4"]).runtime.microBatchSize == 4)
        #expect(try job.configuration([]).runtime.microBatchSize == nil)
        let error = #expect(throws: ConfigurationError.self) {
            try job.configuration(["runtime.micro_batch_size=5"])
        }
        let message = "\(error.map { "\($0)" } ?? "")"
        #expect(message.contains("runtime.micro_batch_size"), "\(message)")
        let expected = "is 5 but fully_train.dataset.common.batch_size is 4; a micro-batch must not exceed the batch"
        #expect(message.contains(expected), "\(message)")
    }

    /// `runtime.concurrent_micro_batches` asks for lanes; the threads and the passes cap them, and a
    /// reproducible reduction runs one (its sums must not depend on the threads).
    @Test func concurrentMicroBatchesAreCappedByTheThreadsAndThePasses() throws {
        let job = try TinyJob()
        let refused = #expect(throws: ConfigurationError.self) {
            try job.configuration(["runtime.concurrent_micro_batches=0"])
        }
        #expect("\(refused.map { "\($0)" } ?? "")".contains("runtime.concurrent_micro_batches"))
        func lanes(_ settings: [String], threads: Int) throws -> Int {
            let configuration = try job.configuration(["runtime.micro_batch_size=2"] + settings)
            let step = try #require(configuration.fullyTrain)
            let network = try GhostNetConfiguration(
                blocksPerStage: step.model.blocks, width: step.model.width, classes: step.model.classCount,
                imageSize: step.model.imageSize)
            return try configuration.memoryPlan(
                for: step, structure: GhostNetStructure(configuration: network), ranksOnServer: 1, threads: threads
            ).lanes
        }
        // Batches of 4 in micro-batches of 2: two passes.
        #expect(try lanes([], threads: 2) == 1)
        #expect(try lanes(["runtime.concurrent_micro_batches=4"], threads: 8) == 2)
        #expect(try lanes(["runtime.concurrent_micro_batches=4"], threads: 1) == 1)
        #expect(
            try lanes(["runtime.concurrent_micro_batches=2", "runtime.reproducible_reduction=True"], threads: 2) == 1)
    }

    @Test func eachPassMixesWithItsOwnDraw() {
        let mixup = Mixup(alpha: 0.2, seed: 7)
        let unaccumulated = mixup.draw(epoch: 1, step: 2, rank: 1, batchSize: 4)
        let first = mixup.draw(epoch: 1, step: 2, rank: 1, microBatch: 0, batchSize: 4)
        let second = mixup.draw(epoch: 1, step: 2, rank: 1, microBatch: 1, batchSize: 4)
        #expect(first.lambda.bitPattern == unaccumulated.lambda.bitPattern)
        #expect(first.permutation == unaccumulated.permutation)
        #expect(second.lambda.bitPattern != first.lambda.bitPattern)
    }
}
