// The pool of scratch buffers kernels borrow for one call (im2col columns, subsampled inputs), so steady
// training steps allocate no scratch memory.

import Synchronization

/// Scratch memory for kernels (im2col columns, subsampled inputs), reused across calls.
///
/// A kernel borrows a buffer for the duration of one call and returns it; buffers are kept in a
/// small pool, so a training step allocates no scratch memory after the first step, and kernels
/// running on different threads each get their own buffer.
package enum Workspace {
    /// The most im2col scratch one thread of a convolution holds, in floats (8 MiB). Measured on
    /// ghostnet101 training: 8 MiB chunks made the 3×3 convolutions ~8 % faster than 64 MiB ones
    /// (the GEMM reads a chunk while it is still in cache); since each thread gathers its own
    /// chunks, 1–8 MiB per thread measured within the machine's noise (±5 %).
    package static let maximumFloats = 2 * 1024 * 1024

    private static let pool = Mutex<[TensorStorage]>([])

    /// Calls `body` with a scratch buffer of at least `count` floats (uninitialised contents).
    /// The pointer must not escape `body`.
    package static func withScratch<R>(
        count: Int, _ body: (UnsafeMutableBufferPointer<Float>) throws -> R
    ) rethrows -> R {
        let storage = borrow(count: count)
        defer { giveBack(storage) }
        return try body(UnsafeMutableBufferPointer(start: storage.base, count: count))
    }

    private static func borrow(count: Int) -> TensorStorage {
        let reused: TensorStorage? = pool.withLock { free in
            // The smallest free buffer that is large enough; otherwise drop the largest too-small
            // one so the pool does not grow without bound.
            if let index = free.indices.filter({ free[$0].count >= count })
                .min(by: { free[$0].count < free[$1].count })
            {
                return free.remove(at: index)
            }
            if !free.isEmpty, let largest = free.indices.max(by: { free[$0].count < free[$1].count }) {
                free.remove(at: largest)
            }
            return nil
        }
        return reused ?? TensorStorage(uninitializedCount: count)
    }

    private static func giveBack(_ storage: TensorStorage) {
        pool.withLock { $0.append(storage) }
    }
}
