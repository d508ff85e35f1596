// The memory model of one training rank (issue 14): the engine's own allocations as a fixed part
// plus bytes per image of a micro-batch, derived from the network's layer shapes and the run's
// fine-tuning options (weight average, frozen prefixes) and calibrated against measured peak RSS.
// The planner uses it instead of a trial run.

import GhostNet
import TensorEngine

/// Predicted peak resident memory of one rank: ``fixedBytes`` + ``bytesPerImage`` × micro-batch ×
/// lanes + ``laneBytes`` × (lanes − 1).
///
/// Per image: every convolution's output is kept for backward with the results derived from it
/// (``activationCopies`` floats per output element at the peak of backward), plus the largest
/// convolution's im2col workspace and the micro-batch's input. Fixed: ``parameterCopies`` floats
/// per parameter (weights, gradient, exchange buffer, momentum, packed weights), the images the
/// data pipeline holds, and ``runtimeBytes``.
///
/// Passes that run at the same time (``MicroBatchPlan/lanes``) each keep their activations, and
/// every lane after the first its own gradient sums, one float per parameter, plus
/// ``laneOverheadBytes`` measured (``laneBytes``).
///
/// Calibration: peak RSS (/proc VmHWM) of `bench train --steps 1 --warmup 0 --threads 2`, release
/// build, 2-core AVX2 server, 2026-12-06. The three constants below are the least-squares fit of
/// these 14 runs (decimal MB, measured → predicted); the largest error is 3.7 %:
///
///     ghostnet50   64²  micro 2:  612 →  618   micro 8:  673 →  672
///     ghostnet50  112²  micro 2:  654 →  656   micro 8:  793 →  822
///     ghostnet101  64²  micro 2:  761 →  735   micro 8:  819 →  801
///     ghostnet101 112²  micro 2:  794 →  781   micro 8:  962 →  983
///     ghostnet50  224²  micro 4: 1023 → 1038   micro 16: 2375 → 2354   micro 32: 4137 → 4108
///     ghostnet101 224²  micro 4: 1235 → 1247   micro 16: 2855 → 2848   micro 32: 4951 → 4982
///
/// The runtime part includes the bench's 48 MB of sgemm-peak matrices, which training does not
/// allocate, so training is predicted slightly high.
///
/// What a run's options change (``Options``), each from what the engine allocates:
/// - a weight average (`trainer.ema_decay`, ``WeightEMA``) adds exactly its fp32 copy of every
///   parameter and running statistic to the fixed part (``weightAverageBytes(of:)``);
/// - bf16 training adds the cache of converted weights (``convertedWeightBytes(of:frozenSlots:)``,
///   and ``convertedWeightBytes(ofAverage:)`` for the average it evaluates);
/// - frozen prefixes (`trainer.freeze`) save no fixed bytes: a frozen slot keeps its weights, its
///   momentum buffer and its place in the exchange, and backward hands the exchange zeros of its
///   size, so every copy of ``parameterCopies`` stays resident. Per image they save backward's
///   share of the units it skips (the stem and stages that are wholly frozen at the start): forward
///   still records their tape (``tapeCopies`` floats per output element), but no gradient of their
///   activations is made, so their outputs count ``tapeCopies`` instead of ``activationCopies``.
///   Measured (`bench train --arch ghostnet50 --batch 32 --image-size 128 --warmup 1`, micro-batch
///   8): freezing conv1, bn1, layer1 saved 19 MB, and with layer2 50 MB.
package struct MemoryModel: Sendable {
    /// What a run's settings change in the engine's allocations.
    package struct Options: Sendable, Equatable {
        /// `trainer.ema_decay` > 0: the rank keeps a ``WeightEMA``.
        package var keepsWeightAverage: Bool
        /// The parameter slots `trainer.freeze` leaves untrained (``FrozenParameters/indices(_:names:)``).
        package var frozenSlots: Set<Int>
        /// The matrix products' precision (`trainer.precision`, resolved on this CPU).
        package var precision: Precision

        package init(keepsWeightAverage: Bool = false, frozenSlots: Set<Int> = [], precision: Precision = .fp32) {
            self.keepsWeightAverage = keepsWeightAverage
            self.frozenSlots = frozenSlots
            self.precision = precision
        }
    }

    /// Floats alive per convolution output element of a micro-batch at the peak of backward.
    static let activationCopies = 2.32
    /// Of those, the tape's: each convolution's output and its batch norm's output (the next
    /// convolution's input), recorded by forward whether or not backward reaches the unit.
    static let tapeCopies = 2.0
    /// Floats per parameter: weights, gradient, exchange buffer, momentum, packed weights.
    static let parameterCopies = 3.08
    /// The process without the model: binary, runtime, OpenBLAS buffers, thread stacks.
    static let runtimeBytes = 243_000_000
    /// What a lane after the first adds beyond its images and gradient sums, measured: the lanes run
    /// out of phase, so the tensor block cache, which keeps blocks by size class, holds some of both
    /// lanes' classes at once. `bench train --lanes 2` of ghostnet101 at 224² peaked 0.29, 0.26, 0.21
    /// and 0.06 GB above the rest of the model at micro-batches 4, 8, 16 and 32 (measured 2.30, 3.34,
    /// 5.41, 9.53 GB); 250 MB keeps all four within 2 %.
    static let laneOverheadBytes = 250_000_000
    /// Batches a training rank's data pipeline holds at once (being decoded, ready, in use).
    package static let batchesInFlight = 3

    /// Bytes that do not grow with the micro-batch.
    package let fixedBytes: Int
    /// Bytes per image of the micro-batch.
    package let bytesPerImage: Int
    /// The weight average's share of ``fixedBytes`` (0 without one).
    package let weightAverageBytes: Int
    /// The bf16 converted-weight cache's share of ``fixedBytes`` (0 in fp32).
    package let convertedWeightBytes: Int
    /// Bytes each lane after the first adds besides its images: its gradient sums and ``laneOverheadBytes``.
    package let laneBytes: Int

    /// - Parameters:
    ///   - structure: The network.
    ///   - imageSize: The side of the input images.
    ///   - pipelineImages: Images the data pipeline holds besides the micro-batch: for training
    ///     ``batchesInFlight`` × the batch, for `bench train` (which feeds one fixed batch) 0.
    ///   - options: The run's weight average, frozen prefixes and precision.
    package init(structure: GhostNetStructure, imageSize: Int, pipelineImages: Int, options: Options = Options()) {
        let floatBytes = Double(MemoryLayout<Float>.size)
        let inputFloats = GhostNetStructure.imageChannels * imageSize * imageSize
        let walk = Self.convolutionFloats(structure, imageSize: imageSize)
        let skipped = Self.frozenLeadingUnits(of: structure, frozenSlots: options.frozenSlots)
        let outputs = Double(walk.outputs.reduce(0, +))
        let skippedOutputs = Double(walk.outputs.prefix(skipped).reduce(0, +))
        let activations = Self.activationCopies * outputs - (Self.activationCopies - Self.tapeCopies) * skippedOutputs
        bytesPerImage = Int(floatBytes * (activations + Double(walk.workspace + inputFloats)))
        let parameters = Double(structure.parameterCount) * Self.parameterCopies * floatBytes
        let pipeline = Double(pipelineImages * inputFloats) * floatBytes
        weightAverageBytes = options.keepsWeightAverage ? Self.weightAverageBytes(of: structure) : 0
        if options.precision == .bf16 {
            convertedWeightBytes =
                Self.convertedWeightBytes(of: structure, frozenSlots: options.frozenSlots)
                + (options.keepsWeightAverage ? Self.convertedWeightBytes(ofAverage: structure) : 0)
        } else {
            convertedWeightBytes = 0
        }
        fixedBytes = Self.runtimeBytes + Int(parameters + pipeline) + weightAverageBytes + convertedWeightBytes
        laneBytes = structure.parameterCount * MemoryLayout<Float>.size + Self.laneOverheadBytes
    }

    /// A model with given parts (for planning with measured figures).
    package init(fixedBytes: Int, bytesPerImage: Int, laneBytes: Int = 0) {
        self.fixedBytes = fixedBytes
        self.bytesPerImage = bytesPerImage
        self.laneBytes = laneBytes
        weightAverageBytes = 0
        convertedWeightBytes = 0
    }

    /// Predicted peak resident bytes with micro-batches of `microBatch` images, `lanes` of them at once.
    package func peakBytes(microBatch: Int, lanes: Int = 1) -> Int {
        fixedBytes + bytesPerImage * microBatch * lanes + laneBytes * (lanes - 1)
    }

    /// The bytes of a ``WeightEMA`` of `structure`: one fp32 copy of every tensor of the
    /// `state_dict` (parameters and batch-norm running statistics), written on the first update.
    package static func weightAverageBytes(of structure: GhostNetStructure) -> Int {
        MemoryLayout<Float>.size * structure.tensors.reduce(0) { $0 + $1.elementCount }
    }

    /// The bytes bf16 training keeps in the converted-weight cache (``ConvertedWeights``) for the
    /// trained model: every convolution's forward form, and its input-gradient form where backward
    /// computes one (not the stem's, whose input is the image, and not in the wholly frozen units
    /// backward skips), plus `fc`'s forms.
    package static func convertedWeightBytes(of structure: GhostNetStructure, frozenSlots: Set<Int>) -> Int {
        let skipped = frozenLeadingUnits(of: structure, frozenSlots: frozenSlots)
        return ConvertedWeights.trainingBytes(
            linearInputs: structure.classifier.inputFeatures, outputs: structure.classifier.outputFeatures)
            + formBytes(of: structure) { unit in unit > 0 && unit >= skipped }
    }

    /// The cache's bytes for a weight average that bf16 training evaluates: the forward forms of
    /// every convolution and of `fc` (a 1×1 product), which stay until its next evaluation.
    package static func convertedWeightBytes(ofAverage structure: GhostNetStructure) -> Int {
        let classifier = structure.classifier
        return formBytes(of: structure) { _ in false }
            + ConvertedWeights.trainingBytes(
                geometry: Convolution2DGeometry(kernelSize: 1), inputChannels: classifier.inputFeatures,
                outputChannels: classifier.outputFeatures, inputGradient: false)
    }

    /// The converted forms of every convolution's weight, with the input-gradient form in the units
    /// `differentiates` accepts.
    private static func formBytes(of structure: GhostNetStructure, differentiates: (Int) -> Bool) -> Int {
        var bytes = 0
        forEachConvolution(of: structure, imageSize: structure.configuration.imageSize) { convolution, _, unit in
            bytes += ConvertedWeights.trainingBytes(
                geometry: Convolution2DGeometry(
                    kernelSize: convolution.kernelSize, stride: convolution.stride, padding: convolution.padding),
                inputChannels: convolution.inputChannels, outputChannels: convolution.outputChannels,
                inputGradient: differentiates(unit))
        }
        return bytes
    }

    /// How many units at the start of the network (the stem, then the stages) have every parameter
    /// in `frozenSlots`: the units backward skips (``GhostNetModel/freeze(_:)``).
    static func frozenLeadingUnits(of structure: GhostNetStructure, frozenSlots: Set<Int>) -> Int {
        let slots = Dictionary(
            uniqueKeysWithValues: FrozenParameters.parameterNames(of: structure).enumerated().map { ($1, $0) })
        let units = [structure.stem.tensors] + structure.stages.map(\.tensors)
        return units.prefix { unit in
            unit.filter(\.isTrainable).allSatisfy { slots[$0.name].map(frozenSlots.contains) ?? false }
        }.count
    }

    /// Calls `body` with every convolution of `structure`, the side of its input for images of
    /// `imageSize`², and its unit: 0 for the stem, 1 + the stage's index for a stage.
    static func forEachConvolution(
        of structure: GhostNetStructure, imageSize: Int,
        _ body: (ConvolutionSpec, _ inputSize: Int, _ unit: Int) -> Void
    ) {
        func visit(_ block: BottleneckSpec, inputSize: Int, unit: Int) {
            body(block.conv1, inputSize, unit)
            body(block.conv2, inputSize, unit)
            body(block.conv3, block.outputSize(inputSize: inputSize), unit)
            if let downsample = block.downsample { body(downsample.convolution, inputSize, unit) }
        }
        body(structure.stem.conv1, imageSize, 0)
        var size = structure.stem.outputSize(inputSize: imageSize)
        for (index, stage) in structure.stages.enumerated() {
            let unit = index + 1
            visit(stage.base, inputSize: size, unit: unit)
            size = stage.outputSize(inputSize: size)
            if let ghost = stage.ghost {
                body(ghost.projection, size, unit)
                for block in ghost.bottlenecks { visit(block, inputSize: size, unit: unit) }
                body(ghost.merge.convolution, 1, unit)
                body(ghost.cheap.convolution, size, unit)
            }
            visit(stage.end, inputSize: size, unit: unit)
        }
    }

    /// Output floats of the convolutions (and the stem's max-pool) of each unit for one image (stem,
    /// then stages), and the largest im2col workspace (input channels × k² × output pixels of the
    /// widest spatial convolution).
    static func convolutionFloats(_ structure: GhostNetStructure, imageSize: Int) -> (outputs: [Int], workspace: Int) {
        let pooled = structure.stem.outputSize(inputSize: imageSize)
        var outputs = [structure.stem.conv1.outputChannels * pooled * pooled] + structure.stages.map { _ in 0 }
        var workspace = 0
        forEachConvolution(of: structure, imageSize: imageSize) { convolution, inputSize, unit in
            let side = convolution.outputSize(inputSize: inputSize)
            outputs[unit] += convolution.outputChannels * side * side
            if convolution.kernelSize > 1 {
                let columns = convolution.inputChannels * convolution.kernelSize * convolution.kernelSize * side * side
                workspace = max(workspace, columns)
            }
        }
        return (outputs, workspace)
    }
}
