// The tiny GhostNet-D network of the model, checkpoint and interoperability tests, and image
// batches for it.

import GhostNet
import TensorEngine

/// The tiny variant of the issue: width 8, blocks 3, 4, 3, 3, 10 classes, 32×32 input.
package func tinyStructure(classes: Int = 10) throws -> GhostNetStructure {
    GhostNetStructure(
        configuration: try GhostNetConfiguration(
            blocksPerStage: [3, 4, 3, 3], width: 8, classes: classes, imageSize: 32))
}

/// A tiny model (see ``tinyStructure(classes:)``) initialised from `seed`.
package func tinyModel(seed: UInt64 = 3) throws -> GhostNetModel {
    GhostNetModel(ModelParameters.initialized(for: try tinyStructure(), seed: seed))
}

/// Random NHWC images whose colour offsets and contrast differ from image to image, as real
/// photographs do. (Noise images with equal statistics pool to nearly equal features, and the
/// merge batch norm, which normalises over the batch alone, would divide by an almost zero spread.)
package func tinyImages(batch: Int, size: Int = 32, seed: UInt64 = 99) -> Tensor {
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
