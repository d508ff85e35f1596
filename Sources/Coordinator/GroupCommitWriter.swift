// Group commit for the coordinator's SQLite writes: writes that arrive while a transaction is
// committing wait in a bounded queue and are then committed together in one transaction (one
// fsync for the batch). Each caller returns only after the transaction holding its write has
// committed, so an acknowledged write is exactly as durable as one committed alone.

import GRDB
import Synchronization

/// The queue of writes waiting for the next transaction was full; the caller should answer 503
/// with `Retry-After` rather than hold more requests in memory.
package struct WriteQueueFull: Error, CustomStringConvertible {
    package var capacity: Int
    package var description: String {
        "the coordinator's write queue holds \(capacity) waiting writes; retry later"
    }
}

/// Writes one database's queued work in batches, one transaction per batch, in arrival order.
package final class GroupCommitWriter: Sendable {
    /// One queued write: `write` runs inside the batch's transaction (in its own savepoint) and
    /// returns what to do once the batch committed; `fail` answers the caller when it did not.
    private struct Entry: Sendable {
        var write: @Sendable (Database) throws -> @Sendable () -> Void
        var fail: @Sendable (any Error) -> Void
    }

    private struct Queue {
        var pending: [Entry] = []
        var draining = false
        var transactions = 0
        var writes = 0
        var largestBatch = 0
    }

    /// How many writes may wait for the next transaction before `submit` refuses more.
    package let capacity: Int
    private let pool: DatabasePool
    private let queue = Mutex(Queue())

    package init(pool: DatabasePool, capacity: Int) {
        self.pool = pool
        self.capacity = capacity
    }

    /// Transactions committed (or attempted), writes submitted to them, the largest batch, and
    /// the writes waiting for the next transaction.
    package var statistics: (transactions: Int, writes: Int, largestBatch: Int, pending: Int) {
        queue.withLock { ($0.transactions, $0.writes, $0.largestBatch, $0.pending.count) }
    }

    /// Queues `write` for the next transaction and returns its result once that transaction has
    /// committed. A write that throws rolls back only its own savepoint; the batch still commits.
    ///
    /// - Throws: `WriteQueueFull` when `capacity` writes are already waiting; the error `write`
    ///   threw; or the commit's error, which every write of that batch receives.
    package func submit<Value: Sendable>(
        _ write: @escaping @Sendable (Database) throws -> Value
    ) async throws -> Value {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Value, any Error>) in
            let entry = Entry(
                write: { db in
                    let value = try write(db)
                    return { continuation.resume(returning: value) }
                },
                fail: { continuation.resume(throwing: $0) })
            let startsDrain: Bool? = queue.withLock { queue in
                guard queue.pending.count < capacity else { return nil }
                queue.pending.append(entry)
                defer { queue.draining = true }
                return !queue.draining
            }
            switch startsDrain {
            case nil: continuation.resume(throwing: WriteQueueFull(capacity: capacity))
            case true?: Task { await self.drain() }
            case false?: break
            }
        }
    }

    /// Commits batches until the queue is empty: everything that queued during one commit goes
    /// into the next.
    private func drain() async {
        while true {
            let batch: [Entry] = queue.withLock { queue in
                let batch = queue.pending
                queue.pending = []
                if batch.isEmpty {
                    queue.draining = false
                } else {
                    queue.transactions += 1
                    queue.writes += batch.count
                    queue.largestBatch = max(queue.largestBatch, batch.count)
                }
                return batch
            }
            if batch.isEmpty { return }
            do {
                let answers = try await pool.write { db in
                    batch.map { entry -> @Sendable () -> Void in
                        do {
                            var answer: @Sendable () -> Void = {}
                            try db.inSavepoint {
                                answer = try entry.write(db)
                                return .commit
                            }
                            return answer
                        } catch {
                            return { entry.fail(error) }
                        }
                    }
                }
                for answer in answers { answer() }
            } catch {
                for entry in batch { entry.fail(error) }
            }
        }
    }
}
