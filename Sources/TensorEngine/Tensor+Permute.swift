// Axis permutation of a tensor, for layout conversions at checkpoint boundaries (OIHW ↔ OHWI); kept apart
// from Tensor.swift because no hot path uses it.

extension Tensor {
    /// The tensor with its axes reordered: result axis `i` is this tensor's axis `axes[i]`.
    ///
    /// Used for layout conversions at checkpoint boundaries (e.g. OIHW ↔ OHWI), not in hot paths.
    /// - Precondition: `axes` is a permutation of `0..<shape.count`.
    package func permuted(_ axes: [Int]) -> Tensor {
        ensure(
            axes.sorted() == Array(shape.indices),
            "permuted: \(axes) is not a permutation of the axes of \(shape)")
        let newShape = axes.map { shape[$0] }
        var sourceStrides = [Int](repeating: 1, count: shape.count)
        for axis in shape.indices.dropLast().reversed() {
            sourceStrides[axis] = sourceStrides[axis + 1] * shape[axis + 1]
        }
        let strides = axes.map { sourceStrides[$0] }
        return Tensor(shape: newShape) { destination in
            withUnsafeBufferPointer { source in
                var index = [Int](repeating: 0, count: newShape.count)
                var sourceOffset = 0
                for position in 0..<destination.count {
                    destination[position] = source[sourceOffset]
                    // Advance the multi-index like an odometer, last axis fastest.
                    var axis = newShape.count - 1
                    while axis >= 0 {
                        index[axis] += 1
                        sourceOffset += strides[axis]
                        if index[axis] < newShape[axis] { break }
                        sourceOffset -= strides[axis] * newShape[axis]
                        index[axis] = 0
                        axis -= 1
                    }
                }
            }
        }
    }
}
