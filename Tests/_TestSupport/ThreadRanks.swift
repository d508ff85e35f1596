// Runs in-process "ranks" on dedicated threads, for collectives tested over LocalCommunicator.

import Foundation
import Synchronization

/// Runs `count` bodies at once, each on its own `Thread` (not the cooperative pool, whose few
/// threads a blocking collective would starve), and waits for all of them.
///
/// - Parameter body: Called with the index `0..<count`, e.g. to pick a rank's communicator.
/// - Returns: Each body's result, in index order.
package func runOnThreads<Output: Sendable>(
    _ count: Int, _ body: @escaping @Sendable (Int) throws -> Output
) -> [Result<Output, any Error>] {
    let results = Mutex([Result<Output, any Error>?](repeating: nil, count: count))
    let group = DispatchGroup()
    for index in 0..<count {
        group.enter()
        let thread = Thread {
            let result = Result { try body(index) }
            results.withLock { $0[index] = result }
            group.leave()
        }
        thread.stackSize = 16 << 20
        thread.start()
    }
    group.wait()
    return results.withLock { $0.map { $0! } }
}

/// The bit patterns of float tensors' elements, for exact (bit-identical) comparisons.
package func bitPatterns(_ values: [[Float]]) -> [[UInt32]] {
    values.map { $0.map(\.bitPattern) }
}
