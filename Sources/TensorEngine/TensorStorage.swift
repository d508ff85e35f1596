//===----------------------------------------------------------------------===//
// ghostnet-d — TensorEngine
//===----------------------------------------------------------------------===//

import Synchronization

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
        TensorAllocations.record(bytes: bytes)
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
        TensorAllocations.live.subtract(1, ordering: .relaxed)
        free(base)
    }
}

/// Process-wide counters of tensor allocations, so benchmarks can report allocations per training
/// step and check that steady-state steps make no large allocations. Relaxed atomics: the counts
/// are statistics, read between steps.
public enum TensorAllocations {
    /// An allocation of at least this many bytes counts as large (1 MiB).
    public static let largeThreshold = 1 << 20

    static let total = Atomic<Int>(0)
    static let large = Atomic<Int>(0)
    static let live = Atomic<Int>(0)

    static func record(bytes: Int) {
        total.add(1, ordering: .relaxed)
        live.add(1, ordering: .relaxed)
        if bytes >= largeThreshold { large.add(1, ordering: .relaxed) }
    }

    /// A snapshot of the counters.
    public struct Snapshot: Sendable, Equatable {
        /// Tensor buffers allocated since the process started.
        public var allocations: Int
        /// Of those, buffers of at least ``TensorAllocations/largeThreshold`` bytes.
        public var largeAllocations: Int
        /// Tensor buffers alive now.
        public var live: Int

        /// The allocations made between `earlier` and this snapshot.
        public func since(_ earlier: Snapshot) -> Snapshot {
            Snapshot(allocations: allocations - earlier.allocations,
                     largeAllocations: largeAllocations - earlier.largeAllocations, live: live)
        }
    }

    /// The counters now.
    public static var current: Snapshot {
        Snapshot(allocations: total.load(ordering: .relaxed), largeAllocations: large.load(ordering: .relaxed),
                 live: live.load(ordering: .relaxed))
    }
}
