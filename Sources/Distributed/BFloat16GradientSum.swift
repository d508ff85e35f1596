// `runtime.gradient_dtype: bf16`: a gradient bucket sent as bfloat16 (half the bytes of fp32 per rank on two
// ranks) and summed in fp32 on every rank — an all-gather of each rank's bf16 bucket, then a sum in rank order.

import TensorEngine

/// The wire format of the gradient all-reduce.
package enum GradientWireFormat: String, Sendable, Equatable, CaseIterable {
    /// fp32 sums in the MPI library's order (the default).
    case fp32
    /// Each rank's bucket rounded to bf16 (round to nearest even) and all-gathered; every rank sums the
    /// gathered buckets in fp32 in rank order, so every rank ends with the same sum, as fp32.
    case bf16
}

/// One bucket's bf16 exchange in flight: completes, on the first ``test()`` that finds the all-gather done,
/// by writing the fp32 sum of every rank's bf16 values over the bucket.
///
/// Bytes per rank: it sends `2N` and receives `2N(P − 1)` for a bucket of `N` floats on `P` ranks, where a ring
/// all-reduce of fp32 moves `8N(P − 1)/P` each way: half on two ranks, the same on four, more beyond — a
/// format for few ranks on slow links. Each gradient is rounded once (relative error at most 2⁻⁸); the sum
/// itself is fp32.
final class BFloat16GradientSum: CollectiveRequest {
    private let bucket: UnsafeMutableBufferPointer<Float>
    private let ranks: Int
    private let sent: UnsafeMutableBufferPointer<UInt16>
    private let gathered: UnsafeMutableBufferPointer<UInt16>
    private var inner: (any CollectiveRequest)?
    private var isSummed = false

    /// Starts the exchange of `bucket`, which must stay untouched until the request completes.
    init(bucket: UnsafeMutableBufferPointer<Float>, communicator: any Communicator) throws(CommunicatorError) {
        self.bucket = bucket
        ranks = communicator.size
        sent = .allocate(capacity: max(bucket.count, 1))
        gathered = .allocate(capacity: max(bucket.count * ranks, 1))
        BFloat16.encode(UnsafeBufferPointer(bucket), into: sent.baseAddress!)
        let bytes = MemoryLayout<UInt16>.stride * bucket.count
        inner = try communicator.startAllGather(
            UnsafeRawBufferPointer(start: sent.baseAddress!, count: bytes),
            into: UnsafeMutableRawBufferPointer(start: gathered.baseAddress!, count: bytes * ranks))
    }

    deinit {
        sent.deallocate()
        gathered.deallocate()
    }

    func test() throws(CommunicatorError) -> Bool {
        guard !isSummed else { return true }
        guard try inner!.test() else { return false }
        inner = nil
        let count = bucket.count
        Workspace.withScratch(count: max(count, 1)) { decoded in
            bucket.update(repeating: 0)
            for rank in 0..<ranks {
                BFloat16.decode(
                    UnsafeBufferPointer(rebasing: gathered[(rank * count)..<((rank + 1) * count)]),
                    into: decoded.baseAddress!)
                for index in 0..<count { bucket[index] += decoded[index] }
            }
        }
        isSummed = true
        return true
    }
}
