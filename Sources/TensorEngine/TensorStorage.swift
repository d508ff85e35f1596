//===----------------------------------------------------------------------===//
// ghostnet-d — TensorEngine
//===----------------------------------------------------------------------===//

#if canImport(Glibc)
import Glibc
#endif

/// The heap block behind a ``Tensor``: `count` float32 values, 64-byte aligned so AVX-512 loads
/// never split a cache line, freed in `deinit`.
///
/// This is the only type in the engine that owns raw memory; everything else reaches it through
/// ``Tensor/withUnsafeBufferPointer(_:)`` and ``Tensor/withUnsafeMutableBufferPointer(_:)``.
@usableFromInline
final class TensorStorage: @unchecked Sendable {
    @usableFromInline let base: UnsafeMutablePointer<Float>
    @usableFromInline let count: Int

    /// Live storage blocks, for leak checks in tests.
    nonisolated(unsafe) static var liveCount = 0

    @usableFromInline
    init(uninitializedCount count: Int) {
        ensure(count >= 0, "tensor element count must be non-negative, got \(count)")
        var raw: UnsafeMutableRawPointer?
        let bytes = max(count, 1) * MemoryLayout<Float>.stride
        let status = posix_memalign(&raw, 64, bytes)
        guard status == 0, let raw else {
            fatalError("out of memory allocating a tensor of \(count) floats (\(bytes) bytes)")
        }
        self.base = raw.bindMemory(to: Float.self, capacity: max(count, 1))
        self.count = count
        TensorStorage.liveCount += 1
    }

    @usableFromInline
    convenience init(repeating value: Float, count: Int) {
        self.init(uninitializedCount: count)
        base.initialize(repeating: value, count: count)
    }

    @usableFromInline
    func copy() -> TensorStorage {
        let clone = TensorStorage(uninitializedCount: count)
        clone.base.update(from: base, count: count)
        return clone
    }

    deinit {
        TensorStorage.liveCount -= 1
        free(base)
    }
}
