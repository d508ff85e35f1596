// `runtime.gradient_dtype: bf16` over thread ranks: every rank ends with the same gradients, each within the
// bound of one bf16 rounding per rank's contribution plus an fp32 sum of the ranks.

import Distributed
import TensorEngine
import Testing
import _TestSupport

@Suite struct BFloat16GradientSumTests {
    @Test(arguments: [2, 3])
    func bf16WireAveragesWithinOneRoundingPerRank(size: Int) throws {
        let sizes = [1, 7, 1000, 4099]
        let contributions = (0..<size).map { rank in
            sizes.indices.map { FiniteDifferences.randomTensor([sizes[$0]], seed: UInt64(100 * rank + $0)).scalars }
        }
        let results = runRanks(size) { communicator -> [Float] in
            let exchange = GradientExchange(
                parameterShapes: sizes.map { [$0] }, communicator: communicator,
                configuration: .init(bucketCapacityBytes: 4096, wireFormat: .bf16))
            for parameter in sizes.indices.reversed() {
                try exchange.store(
                    Tensor(shape: [sizes[parameter]], scalars: contributions[communicator.rank][parameter]),
                    forParameter: parameter)
            }
            try exchange.finish()
            return (0..<sizes.count).flatMap { exchange.gradient(ofParameter: $0).scalars }
        }
        let gathered = try results.map { try $0.get() }
        // Summed in rank order from the same bf16 values: identical bits on every rank.
        for rank in 1..<size { #expect(gathered[rank].map(\.bitPattern) == gathered[0].map(\.bitPattern)) }
        // Each contribution is divided by the ranks in fp32 (one rounding, 2⁻²⁴), rounded to bf16 (u = 2⁻⁸), and
        // the ranks are summed in fp32 (γ_P of the magnitudes).
        let u = BFloat16.unitRoundoff
        let gamma = Double(size) * 0x1p-24 / (1 - Double(size) * 0x1p-24)
        let perTerm = (1 + 0x1p-24) * (1 + u) - 1 + gamma * (1 + 0x1p-24) * (1 + u)
        var roundedSomewhere = false
        let flat = (0..<size).map { rank in contributions[rank].flatMap { $0 } }
        for index in gathered[0].indices {
            let terms = (0..<size).map { Double(flat[$0][index]) / Double(size) }
            let exact = terms.reduce(0, +)
            let magnitude = terms.reduce(0) { $0 + abs($1) }
            let error = abs(Double(gathered[0][index]) - exact)
            #expect(error <= perTerm * magnitude, "element \(index): \(gathered[0][index]) vs \(exact)")
            if error > 4 * gamma * magnitude { roundedSomewhere = true }
        }
        #expect(roundedSomewhere, "no error beyond an fp32 sum's: were the gradients sent as bf16?")
    }
}
