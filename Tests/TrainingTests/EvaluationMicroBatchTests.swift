// Evaluation under the memory plan (a validation batch run as micro-batches gives the metrics of
// one pass, since inference-mode batch norm makes every image's logits its own), `eval`'s plan, and
// the plan on the run's first progress line.

import Distributed
import GhostNet
import ImageData
import TensorEngine
import Testing
import Training
import _TestSupport

@Suite struct EvaluationMicroBatchTests {
    /// The tiny job's 8 validation images (4 classes × 2) in one batch of 8.
    static func evaluation(microBatch: Int?) throws -> ShardedEvaluation {
        let (index, _) = try DatasetIndex.load(dataPath: TinyJob.dataset, cache: .disabled)
        return ShardedEvaluation(
            dataset: index, batchSize: 8, imageSize: 16, threads: 1, seed: 3, strictData: true,
            communicator: LocalCommunicator.group(size: 1)[0],
            microBatches: MicroBatchPlan(microBatchSize: microBatch, minimumSize: 1))
    }

    /// Splitting changes only each GEMM's shape (images × pixels), which may change the order of its
    /// float32 sums over input channels × taps, K of them at most; along the D weighted layers of
    /// the network the differences add up to at most D·K·ε relative to the logits' scale.
    static func logitBound(_ model: GhostNetModel, largestLogit: Float) -> Float {
        let weights = model.parameterSlots.filter { $0.shape.count == 4 || $0.shape.count == 2 }
        let longest = weights.map { $0.shape.dropFirst().reduce(1, *) }.max() ?? 1
        return Float(weights.count * longest) * Float.ulpOfOne * largestLogit
    }

    @Test func microBatchesGiveTheMetricsOfOnePass() throws {
        var model = try MicroBatchTests.model()
        let whole = try Self.evaluation(microBatch: nil)
        let split = try Self.evaluation(microBatch: 3)
        // The images both evaluations read, and the logits of one pass of all 8.
        let batch = try #require(try whole.loader.makeEpoch(epoch: 0).next())
        #expect(batch.labels.count == 8)
        #expect(split.microBatches.sizes(of: 8) == [3, 3, 2])
        let logits = try model.evaluate(images: batch.images).scalars
        let largest = logits.map(abs).max() ?? 0
        let bound = Self.logitBound(model, largestLogit: largest)
        // Each label's logit must be clear of the others by more than the bound, or its count could
        // flip legitimately (top-5 of 4 classes counts every image).
        for (row, label) in batch.labels.map(Int.init).enumerated() {
            let own = logits[row * 4 + label]
            let gap = (0..<4).filter { $0 != label }.map { abs(logits[row * 4 + $0] - own) }.min()!
            #expect(gap > 2 * bound, "image \(row): its label's logit is within \(gap) of another")
        }

        let reference = try whole.evaluate(&model)
        let accumulated = try split.evaluate(&model)
        #expect(accumulated.imageCount == 8 && reference.imageCount == 8)
        // Correct counts are integers over 8 images: equal when each differs by less than half an image.
        #expect(abs(accumulated.top1 - reference.top1) * 8 < 0.5)
        #expect(abs(accumulated.top5 - reference.top5) * 8 < 0.5)
        // Cross-entropy moves by at most 2·max|Δlogit| (its gradient, softmax − one-hot, has an ℓ1
        // norm of at most 2); summing 8 losses in double adds at most 8·ε relative.
        let tolerance = 2 * Double(bound) + 8 * Double.ulpOfOne * abs(reference.loss)
        #expect(abs(accumulated.loss - reference.loss) <= tolerance, "loss \(accumulated.loss) vs \(reference.loss)")
    }

    /// `eval` plans ghostnet101's batch of 128 under 2.5 GB: smaller passes than the fastest 16.
    @Test func evaluationPlansTheValidationBatchUnderTheLimit() throws {
        let network = try GhostNetConfiguration(architecture: .ghostnet101, imageSize: 224)
        let configuration = try TinyJob().configuration(["runtime.memory_limit=2.5GB"])
        let plan = try configuration.evaluationPlan(
            batchSize: 128, structure: GhostNetStructure(configuration: network), ranksOnServer: 1)
        #expect(plan.microBatchSize < 16 && plan.passes > 8)
        #expect(plan.predictedPeakBytes <= 2_500_000_000)
    }

    /// The first progress line shows the plan beside the throughput it gives; later ones do not.
    @Test func theFirstProgressLineShowsTheMemoryPlan() throws {
        let job = try TinyJob()
        // 24 training images, batch 4: 6 steps, a progress line every 3.
        try job.trainer(["fully_train.trainer.epochs=1", "runtime.micro_batch_size=2"]).run()
        let progress = job.log().split(separator: "\n").filter { $0.contains(" img/s ") }
        #expect(progress.count == 2)
        #expect(progress.first?.contains("; memory plan: micro-batch 2 × 2 pass(es) per step") == true, "\(progress)")
        #expect(progress.dropFirst().allSatisfy { !$0.contains("memory plan") }, "\(progress)")
    }
}
