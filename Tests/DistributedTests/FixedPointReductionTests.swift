// The reproducible reduction: the fixed-point scale and its overflow bound, exact order- and
// world-size-independent sums (all-zero buckets, values at the scale's limit, non-finite buckets), the
// max and int64 collectives, and the exchange over virtual shards giving the same bits on 1, 2 and 4 ranks.

import Distributed
import Foundation
import TensorEngine
import Testing
import _TestSupport

@Suite struct FixedPointReductionTests {
    /// Runs `body` on one thread per rank of a new local group; every rank must succeed.
    func onRanks<Output: Sendable>(
        _ size: Int, _ body: @escaping @Sendable (LocalCommunicator) throws -> Output
    ) throws -> [Output] {
        let communicators = LocalCommunicator.group(size: size, collectiveTimeout: .seconds(60))
        return try runOnThreads(size) { try body(communicators[$0]) }.map { try $0.get() }
    }

    @Test func headroomKeepsTheSumOfAllTermsWithin2To62() {
        // ⌈log₂ terms⌉ bits are reserved for the carries of the sum.
        #expect(FixedPointReduction.headroomBits(terms: 1) == 62)
        #expect(FixedPointReduction.headroomBits(terms: 2) == 61)
        #expect(FixedPointReduction.headroomBits(terms: 3) == 60)
        #expect(FixedPointReduction.headroomBits(terms: 4) == 60)
        #expect(FixedPointReduction.headroomBits(terms: 5) == 59)
        for largest: Float in [1, 1.5, 3, 0.1, .leastNonzeroMagnitude, .greatestFiniteMagnitude, Float(2).nextDown] {
            for terms in [1, 3, 4, 1024] {
                let exponent = FixedPointReduction.exponent(largest: largest, terms: terms)
                let scaled = Double(largest) * FixedPointReduction.scale(exponent: exponent)
                let limit = FixedPointReduction.scale(exponent: FixedPointReduction.headroomBits(terms: terms))
                // The largest exponent that keeps the bucket's largest value below the limit.
                #expect(scaled < limit && scaled * 2 >= limit, "largest \(largest), terms \(terms)")
            }
        }
        #expect(FixedPointReduction.exponent(largest: 0, terms: 4) == 0)
    }

    @Test func maxAndInt64SumAllreduceOverThreadRanks() throws {
        for size in [1, 3] {
            let results = try onRanks(size) { communicator in
                let rank = Int64(communicator.rank)
                var maxima: [Int64] = [rank, -rank, .min, 7 - rank * 100]
                var sums: [Int64] = [rank, 1 << 61, -(1 << 40) * rank]
                try maxima.withUnsafeMutableBufferPointer { try communicator.allreduceMax($0) }
                try sums.withUnsafeMutableBufferPointer { try communicator.allreduceSum($0) }
                return maxima + sums
            }
            let ranks = Int64(size)
            let expected: [Int64] = [
                ranks - 1, 0, .min, 7, ranks * (ranks - 1) / 2, ranks << 61, -(1 << 40) * ranks * (ranks - 1) / 2,
            ]
            for result in results { #expect(result == expected, "size \(size)") }
        }
    }

    /// Four shards' gradients of one bucket spread over `ranks` ranks (contiguous, in `order` on
    /// each rank), summed by ``FixedPointGradientSum``: each rank's result.
    func reduce(_ shards: [[Float]], ranks: Int, buckets: [Range<Int>], reversed: Bool = false) throws -> [[UInt32]] {
        let count = shards[0].count
        return try onRanks(ranks) { communicator in
            let mine = (communicator.rank * shards.count / ranks)..<((communicator.rank + 1) * shards.count / ranks)
            let sum = FixedPointGradientSum(virtualShards: shards.count)
            let order = reversed ? Array(mine.reversed()) : Array(mine)
            for (position, shard) in order.enumerated() {
                shards[shard].withUnsafeBufferPointer { sum.keep($0, shard: position, offset: 0, elementCount: count) }
            }
            var result = [Float](repeating: 0, count: count)
            try result.withUnsafeMutableBufferPointer { buffer in
                try sum.reduce(localShards: mine.count, into: buffer, buckets: buckets, communicator: communicator)
            }
            return result.map(\.bitPattern)
        }
    }

    @Test func sumsAreExactAndTheSameForAnyOrderAndRankCount() throws {
        var random = SeededRandom(seed: 15, streams: 4)
        // Magnitudes over 12 binary orders in one bucket, a second bucket of tiny values, a third all zeros.
        let shards = (0..<4).map { _ in
            (0..<200).map { index -> Float in
                let magnitude = Float(sign: .plus, exponent: index % 12 - 6, significand: 1)
                let value = Float(random.nextUnitDouble() * 2 - 1) * magnitude
                return index < 100 ? value : (index < 150 ? value * 1e-30 : 0)
            }
        }
        let buckets = [0..<100, 100..<150, 150..<200]
        let reference = try reduce(shards, ranks: 1, buckets: buckets)[0]
        for ranks in [1, 2, 4] {
            for reversed in [false, true] {
                for result in try reduce(shards, ranks: ranks, buckets: buckets, reversed: reversed) {
                    #expect(result == reference, "\(ranks) rank(s), reversed \(reversed)")
                }
            }
        }
        // The all-zero bucket is exactly zero.
        #expect(reference[150...].allSatisfy { $0 == 0 })
        // Against the exact mean: each term rounds by at most 2^(−e−1), so the mean by at most that,
        // plus the final rounding to float of half an ulp.
        for bucket in buckets[..<2] {
            let largest = bucket.flatMap { element in shards.map { $0[element].magnitude } }.max()!
            let exponent = FixedPointReduction.exponent(largest: largest, terms: 4)
            let quantum = FixedPointReduction.scale(exponent: -exponent - 1)
            for element in bucket {
                let exact = shards.reduce(0.0) { $0 + Double($1[element]) } / 4
                let result = Double(Float(bitPattern: reference[element]))
                #expect(abs(result - exact) <= quantum + Double(Float(exact).ulp) / 2, "element \(element)")
            }
        }
    }

    @Test func valuesAtTheScaleLimitDoNotOverflow() throws {
        // Every term rounds to 2^headroom − 2^36 or its negative: the sum of 4 reaches 2^62 − 2^38.
        let top = Float(2).nextDown
        let same = try reduce([[top, -top], [top, -top], [top, -top], [top, -top]], ranks: 2, buckets: [0..<2])
        for result in same { #expect(result == [top.bitPattern, (-top).bitPattern]) }
        let huge = Float.greatestFiniteMagnitude
        let extreme = try reduce([[huge], [huge], [huge], [huge]], ranks: 4, buckets: [0..<1])
        for result in extreme { #expect(result == [huge.bitPattern]) }
        // Exact cancellation in fixed point: 1 − 1 + 2^-20 − 2^-20 is zero, not float's rounding residue.
        let cancel = try reduce([[1], [-1], [0x1p-20], [-0x1p-20]], ranks: 2, buckets: [0..<1])
        for result in cancel { #expect(result == [0]) }
    }

    @Test func aNonFiniteBucketBecomesNaNAndLeavesTheOthers() throws {
        let results = try reduce([[1, .infinity], [2, 1], [3, 1], [4, 1]], ranks: 2, buckets: [0..<1, 1..<2])
        for result in results {
            #expect(result[0] == Float(2.5).bitPattern)
            #expect(Float(bitPattern: result[1]).isNaN)
        }
    }

    /// Parameters [3] and [2]: each rank runs its shards through the exchange as 2 micro-batches
    /// of weight ½, gradient = (shard + 1)·(pass + 1)·base.
    func exchangeGradients(ranks: Int, reduction: GradientExchange.Reduction) throws -> [[UInt32]] {
        let base: [Float] = [0.1, -0.3, 7e-3, 1e5, -2.5e-6]
        return try onRanks(ranks) { communicator in
            let exchange = GradientExchange(
                parameterShapes: [[3], [2]], communicator: communicator,
                configuration: .init(bucketCapacityBytes: 12, virtualShards: 4, reduction: reduction))
            let mine = (communicator.rank * 4 / ranks)..<((communicator.rank + 1) * 4 / ranks)
            for (position, shard) in mine.enumerated() {
                exchange.beginShard(position, of: mine.count)
                for pass in 0..<2 {
                    let factor = Float((shard + 1) * (pass + 1))
                    for parameter in [1, 0] {
                        let values = parameter == 0 ? base[0..<3] : base[3..<5]
                        let gradient = Tensor(shape: [values.count], scalars: values.map { $0 * factor })
                        try exchange.accumulate(
                            gradient, forParameter: parameter, weight: 0.5, isFirst: pass == 0, isLast: pass == 1)
                    }
                }
            }
            try exchange.finish()
            return exchange.withGradients { $0.map(\.bitPattern) }
        }
    }

    @Test func fixedPointExchangeIsBitIdenticalOn1And2And4Ranks() throws {
        let reference = try exchangeGradients(ranks: 1, reduction: .fixedPoint)[0]
        for ranks in [2, 4] {
            for result in try exchangeGradients(ranks: ranks, reduction: .fixedPoint) { #expect(result == reference) }
        }
        // The mean over 4 shards of the passes' ½-weighted sum of (shard + 1)(pass + 1)·base is
        // 2.5 · 1.5 = 3.75 times the base. 8 products and 8 sums each round by at most 2⁻²⁴ relative:
        // 16 · 6e-8 ≈ 1e-6.
        let expected = [Float(0.1), -0.3, 7e-3, 1e5, -2.5e-6].map { $0 * 3.75 }
        expectClose(reference.map(Float.init(bitPattern:)), expected, relative: 2e-6, absolute: 0)
        // The float reduction averages over the 4 virtual shards too, on any number of ranks.
        for ranks in [1, 2] {
            for result in try exchangeGradients(ranks: ranks, reduction: .float) {
                expectClose(result.map(Float.init(bitPattern:)), expected, relative: 2e-6, absolute: 0)
            }
        }
    }
}
