// `Tensor`, the engine's dense row-major float32 value type (NHWC activations, copy-on-write storage):
// creation, reshaping and scoped pointer access to its elements.

/// A dense, row-major float32 array with value semantics.
///
/// Activations use the **NHWC** layout, `[N, H, W, C]`, so that a 1×1 convolution is one GEMM of
/// `[N·H·W, C_in] × [C_in, C_out]` and per-channel work (batch norm, bias) runs along contiguous
/// rows (see docs/ARCHITECTURE.md for the measurements behind the choice). Copies are cheap: the
/// storage is shared until one side mutates it (copy-on-write).
package struct Tensor: Sendable {
    /// The extent of each dimension, outermost first.
    package private(set) var shape: [Int]
    @usableFromInline var storage: TensorStorage

    /// The number of elements, the product of `shape`.
    @inlinable package var count: Int { storage.count }

    /// Creates a tensor of `shape` filled with `value`.
    package init(shape: [Int], repeating value: Float = 0) {
        let count = Tensor.elementCount(of: shape)
        self.shape = shape
        self.storage = TensorStorage(repeating: value, count: count)
    }

    /// Creates a tensor of `shape` from `scalars` in row-major order.
    ///
    /// - Precondition: `scalars.count` equals the product of `shape`.
    package init(shape: [Int], scalars: [Float]) {
        let count = Tensor.elementCount(of: shape)
        ensure(
            scalars.count == count,
            "shape \(shape) holds \(count) elements but \(scalars.count) scalars were given")
        self.shape = shape
        self.storage = TensorStorage(uninitializedCount: count)
        scalars.withUnsafeBufferPointer { source in
            storage.base.initialize(from: source.baseAddress!, count: count)
        }
    }

    /// Creates a tensor of `shape` whose elements are written by `initializer`, which receives the
    /// whole (uninitialised) buffer and must write every element.
    package init(
        shape: [Int], initializingWith initializer: (UnsafeMutableBufferPointer<Float>) throws -> Void
    ) rethrows {
        let count = Tensor.elementCount(of: shape)
        self.shape = shape
        self.storage = TensorStorage(uninitializedCount: count)
        try initializer(UnsafeMutableBufferPointer(start: storage.base, count: count))
    }

    /// The elements in row-major order.
    package var scalars: [Float] {
        withUnsafeBufferPointer { Array($0) }
    }

    /// Calls `body` with the elements. The pointer must not escape `body`.
    @inlinable
    package func withUnsafeBufferPointer<R, E: Error>(
        _ body: (UnsafeBufferPointer<Float>) throws(E) -> R
    ) throws(E) -> R {
        try body(UnsafeBufferPointer(start: storage.base, count: storage.count))
    }

    /// Calls `body` with the elements for writing, first copying them if the storage is shared.
    /// The pointer must not escape `body`. Every write to a tensor's elements goes through here, and
    /// ends by bumping the storage's version (which invalidates its ``ConvertedWeights``).
    @inlinable
    package mutating func withUnsafeMutableBufferPointer<R, E: Error>(
        _ body: (UnsafeMutableBufferPointer<Float>) throws(E) -> R
    ) throws(E) -> R {
        if !isKnownUniquelyReferenced(&storage) {
            storage = storage.copy()
        }
        defer { storage.version &+= 1 }
        return try body(UnsafeMutableBufferPointer(start: storage.base, count: storage.count))
    }

    /// The same elements viewed with another shape of equal element count.
    ///
    /// - Precondition: `newShape` has the same element count as `shape`.
    package func reshaped(to newShape: [Int]) -> Tensor {
        ensure(
            Tensor.elementCount(of: newShape) == count,
            "cannot reshape \(shape) (\(count) elements) to \(newShape)")
        var view = self
        view.shape = newShape
        return view
    }

    /// Product of the dimensions; traps on a negative extent.
    package static func elementCount(of shape: [Int]) -> Int {
        shape.reduce(1) { product, extent in
            ensure(extent >= 0, "tensor shape \(shape) has a negative dimension")
            return product * extent
        }
    }
}

extension Tensor: CustomStringConvertible {
    package var description: String {
        let preview = withUnsafeBufferPointer { $0.prefix(8).map { "\($0)" }.joined(separator: ", ") }
        return "Tensor(shape: \(shape), [\(preview)\(count > 8 ? ", …" : "")])"
    }
}

extension Tensor? {
    /// Calls `body` with the tensor's first element, or with nil when there is no tensor (an
    /// optional operand, such as a residual). The pointer must not escape `body`.
    func withUnsafeBaseAddress<R>(_ body: (UnsafePointer<Float>?) -> R) -> R {
        guard let tensor = self else { return body(nil) }
        return tensor.withUnsafeBufferPointer { body($0.baseAddress) }
    }
}
