// Reproducible gradient reduction (`runtime.reproducible_reduction`): virtual shards' float
// gradients summed exactly as 64-bit fixed-point integers, so the sum depends neither on the order
// of the additions nor on how the shards are spread over ranks.

/// The fixed-point arithmetic of a reproducible sum of `terms` float vectors.
///
/// A bucket's values are scaled by a power of two 2^e chosen from the bucket's largest magnitude
/// over every term (agreed by a max all-reduce), rounded to the nearest `Int64`, summed as integers
/// (exact and associative, so any order and any split over ranks gives the same bits), and
/// converted back. The exponent keeps every rounded value at most 2^(62 − ⌈log₂ terms⌉), so the
/// sum of `terms` of them stays within 2^62 and cannot overflow; values down to 2^−(62 − ⌈log₂
/// terms⌉) of the bucket's largest one keep every bit of their float.
package enum FixedPointReduction {
    /// The magnitude a key stands for: keys are the bit patterns of magnitudes, which order like the
    /// magnitudes (NaN above infinity), so a max all-reduce of keys is the max of the magnitudes.
    package static func magnitude(ofKey key: Int64) -> Float { Float(bitPattern: UInt32(truncatingIfNeeded: key)) }

    /// The bits a rounded value may use so that `terms` of them sum within 2^62.
    package static func headroomBits(terms: Int) -> Int {
        precondition(terms >= 1, "a fixed-point sum needs at least one term, got \(terms)")
        return 62 - (Int.bitWidth - (terms - 1).leadingZeroBitCount)
    }

    /// The exponent e of the scale 2^e for a bucket whose largest magnitude is `largest`: the
    /// largest e with `largest` · 2^e < 2^headroom; 0 for an all-zero bucket.
    ///
    /// - Precondition: `largest` is finite and non-negative.
    package static func exponent(largest: Float, terms: Int) -> Int {
        precondition(largest.isFinite && largest >= 0, "the largest magnitude must be finite, got \(largest)")
        guard largest > 0 else { return 0 }
        // largest < 2^(exponent + 1), so scaling by 2^(headroom − exponent − 1) keeps it below 2^headroom.
        return headroomBits(terms: terms) - Int(largest.exponent) - 1
    }

    /// 2^e as a double (exact for every exponent a float bucket needs: |e| < 1000).
    package static func scale(exponent: Int) -> Double { Double(sign: .plus, exponent: exponent, significand: 1) }

    /// `value` · 2^e rounded to the nearest integer (ties to even, one `cvtsd2si`-friendly rounding).
    /// The product is exact in double precision, so the only rounding is the last one.
    @inline(__always)
    package static func encode(_ value: Float, scale: Double) -> Int64 {
        Int64((Double(value) * scale).rounded(.toNearestOrEven))
    }

    /// A fixed-point sum of `terms` values back as a float mean: sum · 2^−e / terms, with one
    /// rounding to double for sums beyond 2^53 and one correctly rounded division and narrowing.
    package static func decodeMean(_ sum: Int64, inverseScale: Double, terms: Int) -> Float {
        Float(Double(sum) * inverseScale / Double(terms))
    }
}

/// The virtual shards' gradients one rank holds during a step, and their reproducible sum.
///
/// A rank keeps each of its virtual shards' float gradients (each accumulated over the shard's
/// micro-batches in a fixed order) until the step ends, because the fixed-point scale needs the
/// largest magnitude over every shard of every rank. ``reduce(into:buckets:communicator:)`` then
/// runs one max all-reduce (a 64-bit key per bucket) and one 64-bit integer sum all-reduce per
/// bucket, and writes the mean over all `virtualShards` into the flat gradient buffer. A rank that
/// holds every shard (a one-rank job) computes the identical bits without communicating.
package final class FixedPointGradientSum {
    /// Shards in the whole job: the terms of the sum and its divisor.
    package let virtualShards: Int
    /// Flat gradient buffers, one per shard this rank holds, in shard order.
    private var shards: [[Float]] = []
    /// The integer sums, reused between steps.
    private var sums: [Int64] = []

    package init(virtualShards: Int) {
        precondition(virtualShards >= 1, "a job needs at least one virtual shard, got \(virtualShards)")
        self.virtualShards = virtualShards
    }

    /// Copies `gradient` (one parameter's accumulated gradient of local shard `shard`) to `offset`
    /// of that shard's flat buffer.
    package func keep(_ gradient: UnsafeBufferPointer<Float>, shard: Int, offset: Int, elementCount: Int) {
        while shards.count <= shard { shards.append([Float](repeating: 0, count: elementCount)) }
        shards[shard].withUnsafeMutableBufferPointer { destination in
            _ = UnsafeMutableBufferPointer(rebasing: destination[offset..<offset + gradient.count])
                .update(fromContentsOf: gradient)
        }
    }

    /// Sums the first `localShards` kept shards over every rank in fixed point and writes the mean
    /// over all virtual shards into `gradients`. A bucket holding NaN or infinity anywhere becomes
    /// NaN everywhere (the step's finiteness check then stops the job).
    ///
    /// - Precondition: every rank passes the same buckets; `localShards` shards were kept this step.
    package func reduce(
        localShards: Int, into gradients: UnsafeMutableBufferPointer<Float>, buckets: [Range<Int>],
        communicator: any Communicator
    ) throws(CommunicatorError) {
        precondition(localShards >= 1 && localShards <= shards.count, "\(localShards) shard(s) kept: too few")
        if sums.count != gradients.count { sums = [Int64](repeating: 0, count: gradients.count) }
        var keys = buckets.map { bucket in
            var largest: UInt32 = 0
            for shard in shards.prefix(localShards) {
                shard.withUnsafeBufferPointer { values in
                    // The magnitude's bit pattern: the sign bit cleared.
                    for element in bucket { largest = max(largest, values[element].bitPattern & 0x7FFF_FFFF) }
                }
            }
            return Int64(largest)
        }
        try keys.withUnsafeMutableBufferPointer { buffer throws(CommunicatorError) in
            try communicator.allreduceMax(buffer)
        }
        let exponents = keys.map { key -> Int? in
            let largest = FixedPointReduction.magnitude(ofKey: key)
            return largest.isFinite ? FixedPointReduction.exponent(largest: largest, terms: virtualShards) : nil
        }
        try sums.withUnsafeMutableBufferPointer { sums throws(CommunicatorError) in
            var requests: [any CollectiveRequest] = []
            for (bucket, exponent) in zip(buckets, exponents) {
                guard let exponent else { continue }
                let scale = FixedPointReduction.scale(exponent: exponent)
                for element in bucket { sums[element] = 0 }
                for shard in shards.prefix(localShards) {
                    shard.withUnsafeBufferPointer { values in
                        for element in bucket {
                            sums[element] += FixedPointReduction.encode(values[element], scale: scale)
                        }
                    }
                }
                requests.append(try communicator.startAllreduceSum(UnsafeMutableBufferPointer(rebasing: sums[bucket])))
            }
            for request in requests {
                try communicator.complete(request, operation: "fixed-point gradient sum")
            }
            for (bucket, exponent) in zip(buckets, exponents) {
                guard let exponent else {
                    for element in bucket { gradients[element] = .nan }
                    continue
                }
                let inverse = FixedPointReduction.scale(exponent: -exponent)
                for element in bucket {
                    gradients[element] = FixedPointReduction.decodeMean(
                        sums[element], inverseScale: inverse, terms: virtualShards)
                }
            }
        }
    }
}
