// The memory model of one training rank (issue 14): the engine's own allocations as a fixed part
// plus bytes per image of a micro-batch, derived from the network's layer shapes and calibrated
// against measured peak RSS. The planner uses it instead of a trial run.

import GhostNet

/// Predicted peak resident memory of one rank: ``fixedBytes`` + ``bytesPerImage`` × micro-batch.
///
/// Per image: every convolution's output is kept for backward with the results derived from it
/// (``activationCopies`` floats per output element at the peak of backward), plus the largest
/// convolution's im2col workspace and the micro-batch's input. Fixed: ``parameterCopies`` floats
/// per parameter (weights, gradient, exchange buffer, momentum, packed weights), the images the
/// data pipeline holds, and ``runtimeBytes``.
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
package struct MemoryModel: Sendable {
    /// Floats alive per convolution output element of a micro-batch at the peak of backward.
    static let activationCopies = 2.32
    /// Floats per parameter: weights, gradient, exchange buffer, momentum, packed weights.
    static let parameterCopies = 3.08
    /// The process without the model: binary, runtime, OpenBLAS buffers, thread stacks.
    static let runtimeBytes = 243_000_000
    /// Batches a training rank's data pipeline holds at once (being decoded, ready, in use).
    package static let batchesInFlight = 3

    /// Bytes that do not grow with the micro-batch.
    package let fixedBytes: Int
    /// Bytes per image of the micro-batch.
    package let bytesPerImage: Int

    /// - Parameters:
    ///   - structure: The network.
    ///   - imageSize: The side of the input images.
    ///   - pipelineImages: Images the data pipeline holds besides the micro-batch: for training
    ///     ``batchesInFlight`` × the batch, for `bench train` (which feeds one fixed batch) 0.
    package init(structure: GhostNetStructure, imageSize: Int, pipelineImages: Int) {
        let floatBytes = Double(MemoryLayout<Float>.size)
        let inputFloats = GhostNetStructure.imageChannels * imageSize * imageSize
        let walk = Self.convolutionFloats(structure, imageSize: imageSize)
        bytesPerImage = Int(
            floatBytes * (Self.activationCopies * Double(walk.outputs) + Double(walk.workspace + inputFloats)))
        let parameters = Double(structure.parameterCount) * Self.parameterCopies * floatBytes
        let pipeline = Double(pipelineImages * inputFloats) * floatBytes
        fixedBytes = Self.runtimeBytes + Int(parameters + pipeline)
    }

    /// A model with given parts (for planning with measured figures).
    package init(fixedBytes: Int, bytesPerImage: Int) {
        self.fixedBytes = fixedBytes
        self.bytesPerImage = bytesPerImage
    }

    /// Predicted peak resident bytes with micro-batches of `microBatch` images.
    package func peakBytes(microBatch: Int) -> Int { fixedBytes + bytesPerImage * microBatch }

    /// Output floats of all convolutions for one image, and the largest im2col workspace
    /// (input channels × k² × output pixels of the widest spatial convolution).
    static func convolutionFloats(_ structure: GhostNetStructure, imageSize: Int) -> (outputs: Int, workspace: Int) {
        var outputs = 0
        var workspace = 0
        func add(_ convolution: ConvolutionSpec, inputSize: Int) {
            let side = convolution.outputSize(inputSize: inputSize)
            outputs += convolution.outputChannels * side * side
            if convolution.kernelSize > 1 {
                let columns = convolution.inputChannels * convolution.kernelSize * convolution.kernelSize * side * side
                workspace = max(workspace, columns)
            }
        }
        func add(_ block: BottleneckSpec, inputSize: Int) {
            add(block.conv1, inputSize: inputSize)
            add(block.conv2, inputSize: inputSize)
            add(block.conv3, inputSize: block.outputSize(inputSize: inputSize))
            if let downsample = block.downsample { add(downsample.convolution, inputSize: inputSize) }
        }
        add(structure.stem.conv1, inputSize: imageSize)
        var size = structure.stem.outputSize(inputSize: imageSize)
        outputs += structure.stem.conv1.outputChannels * size * size  // the max-pool's output
        for stage in structure.stages {
            add(stage.base, inputSize: size)
            size = stage.outputSize(inputSize: size)
            if let ghost = stage.ghost {
                add(ghost.projection, inputSize: size)
                for block in ghost.bottlenecks { add(block, inputSize: size) }
                add(ghost.cheap.convolution, inputSize: size)
            }
            add(stage.end, inputSize: size)
        }
        return (outputs, workspace)
    }
}
