// The memory behind tensors: 64-byte-aligned heap blocks, the size-class cache that lets a repeated
// training step reuse its large blocks, and the allocation counters benchmarks read.

import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The heap block behind a ``Tensor``: `count` float32 values, 64-byte aligned so AVX-512 loads
/// never split a cache line, given back in `deinit`.
///
/// This is the only type in the engine that owns raw memory; everything else reaches it through
/// ``Tensor/withUnsafeBufferPointer(_:)`` and ``Tensor/withUnsafeMutableBufferPointer(_:)``. Large
/// blocks come from and return to ``LargeBlockCache``, so a training step that repeats the previous
/// one's shapes reuses its memory instead of mapping fresh pages.
@usableFromInline
final class TensorStorage: @unchecked Sendable {
    @usableFromInline let base: UnsafeMutablePointer<Float>
    @usableFromInline let count: Int
    /// The block's size in bytes (its size class when it is large).
    let capacity: Int
    /// Bumped when each write through ``Tensor/withUnsafeMutableBufferPointer(_:)`` ends: with the storage's
    /// identity, what keeps a weight's bf16 conversions (``ConvertedWeights``) from outliving its values.
    @usableFromInline var version = 0

    @usableFromInline
    init(uninitializedCount count: Int) {
        ensure(count >= 0, "tensor element count must be non-negative, got \(count)")
        let bytes = max(count, 1) * MemoryLayout<Float>.stride
        let (raw, capacity) = LargeBlockCache.allocate(bytes: bytes)
        self.base = raw.bindMemory(to: Float.self, capacity: max(count, 1))
        self.count = count
        self.capacity = capacity
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
        LargeBlockCache.release(UnsafeMutableRawPointer(base), capacity: capacity)
    }
}

/// A cache of large (≥ ``TensorAllocations/largeThreshold``) 64-byte-aligned blocks, by size class.
///
/// Sizes are rounded up to classes an eighth of a power of two apart (at most 12.5 % slack), and a
/// request takes a cached block of exactly its class. A step that makes the same requests as the
/// previous one therefore finds every block it needs: after the first training step no large
/// block is obtained from the system (large fresh blocks are `mmap`ed by malloc, and touching their
/// pages costs as much as a fast kernel). Small blocks go straight to malloc, which caches them
/// itself. ``TensorAllocations/releaseCachedBlocks()`` returns the cache to the system.
enum LargeBlockCache {
    /// Cached block addresses by size class (addresses, as raw pointers are not `Sendable`).
    private static let free = Mutex<[Int: [UInt]]>([:])

    /// The size class of a large request of `bytes`: `bytes` rounded up to a multiple of an eighth
    /// of the largest power of two not above it.
    static func sizeClass(_ bytes: Int) -> Int {
        let power = 1 << (Int.bitWidth - 1 - bytes.leadingZeroBitCount)
        let step = max(power / 8, 64)
        return (bytes + step - 1) / step * step
    }

    /// A block of at least `bytes` and its capacity; counts the allocation.
    static func allocate(bytes: Int) -> (UnsafeMutableRawPointer, capacity: Int) {
        guard bytes >= TensorAllocations.largeThreshold else {
            TensorAllocations.record(bytes: bytes, fresh: true)
            return (systemAllocate(bytes), bytes)
        }
        let capacity = sizeClass(bytes)
        let cached = free.withLock { $0[capacity]?.popLast() }.flatMap { UnsafeMutableRawPointer(bitPattern: $0) }
        TensorAllocations.record(bytes: bytes, fresh: cached == nil)
        return (cached ?? systemAllocate(capacity), capacity)
    }

    /// Takes back a block `allocate` returned.
    static func release(_ block: UnsafeMutableRawPointer, capacity: Int) {
        guard capacity >= TensorAllocations.largeThreshold else { return Glibc.free(block) }
        let address = UInt(bitPattern: block)
        free.withLock { $0[capacity, default: []].append(address) }
    }

    /// Frees every cached block; returns how many bytes went back to the system.
    static func drain() -> Int {
        let blocks = free.withLock { cache in
            defer { cache = [:] }
            return cache
        }
        var bytes = 0
        for (capacity, pointers) in blocks {
            for address in pointers { Glibc.free(UnsafeMutableRawPointer(bitPattern: address)) }
            bytes += capacity * pointers.count
        }
        return bytes
    }

    private static func systemAllocate(_ bytes: Int) -> UnsafeMutableRawPointer {
        var raw: UnsafeMutableRawPointer?
        let status = posix_memalign(&raw, 64, bytes)
        guard status == 0, let raw else {
            fatalError("out of memory allocating a tensor of \(bytes) bytes")
        }
        return raw
    }
}

/// Process-wide counters of tensor allocations, so benchmarks can report allocations per training
/// step and check that steady-state steps make no large allocations. Relaxed atomics: the counts
/// are statistics, read between steps.
package enum TensorAllocations {
    /// An allocation of at least this many bytes counts as large (128 KiB) and comes from the block
    /// cache. Below 1 MiB, blocks that two concurrent micro-batches took from malloc fragmented its heap:
    /// with 1 MiB here, two lanes of 8 ghostnet101 images at 224² peaked at 4.0 GB, with 128 KiB at 3.3 GB.
    package static let largeThreshold = 1 << 17

    static let total = Atomic<Int>(0)
    static let large = Atomic<Int>(0)
    static let largeReused = Atomic<Int>(0)
    static let live = Atomic<Int>(0)

    /// Counts one tensor buffer of `bytes`; `fresh` when its memory came from the system rather
    /// than the large-block cache.
    static func record(bytes: Int, fresh: Bool) {
        total.add(1, ordering: .relaxed)
        live.add(1, ordering: .relaxed)
        guard bytes >= largeThreshold else { return }
        if fresh { large.add(1, ordering: .relaxed) } else { largeReused.add(1, ordering: .relaxed) }
    }

    /// Returns every cached large block to the system (e.g. after training, before a phase with
    /// other tensor sizes) and returns the number of bytes released. Blocks in use stay.
    @discardableResult
    package static func releaseCachedBlocks() -> Int { LargeBlockCache.drain() }

    /// A snapshot of the counters.
    package struct Snapshot: Sendable, Equatable {
        /// Tensor buffers allocated since the process started.
        package var allocations: Int
        /// Buffers of at least ``TensorAllocations/largeThreshold`` bytes whose memory came fresh
        /// from the system.
        package var largeAllocations: Int
        /// Buffers of at least ``TensorAllocations/largeThreshold`` bytes served from the cache of
        /// blocks earlier tensors released.
        package var largeReuses: Int
        /// Tensor buffers alive now.
        package var live: Int

        /// The allocations made between `earlier` and this snapshot.
        package func since(_ earlier: Snapshot) -> Snapshot {
            Snapshot(
                allocations: allocations - earlier.allocations,
                largeAllocations: largeAllocations - earlier.largeAllocations,
                largeReuses: largeReuses - earlier.largeReuses, live: live)
        }
    }

    /// The counters now.
    package static var current: Snapshot {
        Snapshot(
            allocations: total.load(ordering: .relaxed), largeAllocations: large.load(ordering: .relaxed),
            largeReuses: largeReused.load(ordering: .relaxed), live: live.load(ordering: .relaxed))
    }
}
