// The worker's side of reporting: records go to a spool file at once and a background sender
// delivers them to the coordinator, so a slow, silent or absent coordinator never holds up the
// training loop and no record is lost while it is away. Progress reports and a supervisor's job
// state changes are state, not history: only the newest of each waits while the coordinator is away.

import Foundation
import PerformanceRecords
import StrictJSON

/// What delivery achieved: one round's outcome, or the totals since the client started.
package struct DeliveryReport: Sendable, Equatable {
    /// Records the coordinator confirmed (2xx), removed from the spool.
    package var delivered = 0
    /// Records refused for good (4xx other than 408/429), moved to `<spool>.rejected`.
    package var rejected = 0
    /// Records still waiting in the spool after the (latest) round.
    package var pending = 0
    /// Rounds that ended with the coordinator unreachable.
    package var unavailableRounds = 0
    /// Why the (latest) round stopped early or set a record aside, when it did.
    package var lastError: String?
    /// Whether a progress report or job state change still waits after the (latest) round.
    package var progressPending = false

    package init() {}

    /// Adds `round` to these totals; `pending` and `lastError` become the round's.
    mutating func add(_ round: DeliveryReport) {
        delivered += round.delivered
        rejected += round.rejected
        unavailableRounds += round.unavailableRounds
        pending = round.pending
        lastError = round.lastError
        progressPending = round.progressPending
    }
}

/// The CPU time of a client's sender thread, by what it was doing.
package struct SenderCPUSeconds: Sendable, Equatable {
    /// Reading the spool and posting its records.
    package var records = 0.0
    /// Everything else: progress reports, job state changes, waking and bookkeeping.
    package var other = 0.0

    package init() {}
}

/// Sends performance records to the coordinator without ever losing one or blocking the caller.
///
/// ``submit(_:)`` appends the record to the spool file (a local append and `fsync`) and wakes the
/// client's one sender thread; it never waits for the network. The sender delivers the spool in
/// order: each entry is posted with bounded retries and exponential backoff (every exchange bounded
/// by ``CoordinatorClientConfiguration/requestTimeout``) and leaves the spool only after a 2xx. If
/// the coordinator stays unreachable, the entries wait and the sender tries again after
/// ``CoordinatorClientConfiguration/retryInterval`` or at the next record. The coordinator treats a
/// repeated (job, worker, epoch, step) as the same record, so a retry after a lost response never
/// doubles a record. The spool lock is held only to read or rewrite the file, never across an
/// exchange, so a submit never waits for a delivery.
package final class CoordinatorClient: Sendable {
    package let configuration: CoordinatorClientConfiguration
    private let sender: RecordSender

    /// Starts the sender thread; it first delivers what an earlier run left in the spool.
    ///
    /// - Parameter onRound: called on the sender thread after every delivery round that delivered,
    ///   set aside or left waiting a record (e.g. to log a warning).
    package init(
        configuration: CoordinatorClientConfiguration, onRound: @escaping @Sendable (DeliveryReport) -> Void = { _ in }
    ) {
        self.configuration = configuration
        sender = RecordSender(configuration: configuration, onRound: onRound)
        let sender = sender
        let thread = Thread { sender.run() }
        thread.name = "coordinator-sender"
        thread.start()
    }

    deinit {
        sender.stop()
    }

    package var spool: RecordSpool { RecordSpool(path: configuration.spoolPath) }

    /// Spools `record` and wakes the sender; returns without waiting for the coordinator.
    ///
    /// - Throws: ``SpoolError`` when the record cannot be written to the spool.
    package func submit(_ record: PerformanceRecord) throws {
        try spool.withLock { try spool.appendLocked(SpooledRecord(job: configuration.job, record: record)) }
        sender.wake()
    }

    /// Hands `report` to the sender, replacing a report still waiting; returns at once. The sender
    /// posts it after the spooled records, with the records' retries; a refused report is dropped.
    package func submit(_ report: ProgressUpdate) {
        sender.offer(report)
    }

    /// Hands a job state change (the supervisor's: restarting, preempted, ...) to the sender,
    /// replacing one still waiting; returns at once. It is posted to `/v1/jobs/JOB/state` after the
    /// spooled records and before a waiting progress report; a refused change is dropped.
    package func submit(_ change: JobStateReport) {
        sender.offer(change)
    }

    /// CPU seconds the client's sender thread has used so far, split into delivering records (the
    /// spool and its posts) and everything else (progress reports, state changes, waking up): what
    /// delivery costs this process beside the submitting threads' own calls.
    package var senderCPUSeconds: SenderCPUSeconds { sender.cpuSeconds }

    /// Everything delivered since the client started, and the records waiting in the spool now.
    package var report: DeliveryReport {
        var report = sender.totals
        if let waiting = try? spool.withLock({ try spool.entriesLocked().count }) { report.pending = waiting }
        return report
    }

    /// Delivers until the spool is empty or `timeout` seconds pass, then returns ``report`` (the
    /// end of a run: what stays pending is delivered by the next run with the same spool).
    @discardableResult
    package func flush(timeout: Double) -> DeliveryReport {
        sender.flush(until: RecordSender.date(after: timeout))
        return report
    }
}

/// The client's sender: one thread, woken by submits, flushes and its retry timer.
final class RecordSender: @unchecked Sendable {
    private let configuration: CoordinatorClientConfiguration
    private let onRound: @Sendable (DeliveryReport) -> Void
    /// The connection to the coordinator, used by the sender thread alone.
    private let session: HTTPSession
    /// Guards every variable below.
    private let condition = NSCondition()
    private var wakeRequested = true
    private var stopRequested = false
    private var startedRounds = 0
    private var completedRounds = 0
    private var totalsSoFar = DeliveryReport()
    /// Whether the spool may hold records: set by a submit, a flush and a round that left records
    /// waiting, so a round for a progress report alone does not read the spool file.
    private var spoolMayHoldRecords = true
    /// The sender thread's CPU time over its rounds so far.
    private var cpuSecondsSoFar = SenderCPUSeconds()
    /// The newest progress report and job state change not yet delivered.
    private var pendingProgress: ProgressUpdate?
    private var pendingState: JobStateReport?

    init(configuration: CoordinatorClientConfiguration, onRound: @escaping @Sendable (DeliveryReport) -> Void) {
        self.configuration = configuration
        self.onRound = onRound
        session = HTTPSession(endpoint: configuration.endpoint)
    }

    var totals: DeliveryReport { locked { totalsSoFar } }

    /// CPU seconds the sender thread has used (encoding, HTTP, the spool), up to its latest round.
    var cpuSeconds: SenderCPUSeconds { locked { cpuSecondsSoFar } }

    // The submitting calls signal after unlocking: a sender woken while the caller still holds the
    // lock would only block on it again, costing the caller (the training thread) two switches.

    func wake() {
        locked {
            wakeRequested = true
            spoolMayHoldRecords = true
        }
        condition.broadcast()
    }

    func offer(_ report: ProgressUpdate) {
        locked {
            pendingProgress = report
            wakeRequested = true
        }
        condition.broadcast()
    }

    func offer(_ change: JobStateReport) {
        locked {
            pendingState = change
            wakeRequested = true
        }
        condition.broadcast()
    }

    func stop() {
        locked {
            stopRequested = true
            condition.broadcast()
        }
    }

    /// Requests rounds until one ends with nothing pending or `deadline` passes.
    func flush(until deadline: Date) {
        locked {
            while !stopRequested {
                let target = startedRounds + 1
                wakeRequested = true
                spoolMayHoldRecords = true
                condition.broadcast()
                while completedRounds < target, !stopRequested, condition.wait(until: deadline) {}
                guard completedRounds >= target, totalsSoFar.pending > 0 || totalsSoFar.progressPending else { break }
                // Pause as the retries do before asking again, unless the deadline comes first.
                _ = condition.wait(until: min(deadline, Self.date(after: configuration.maximumBackoff)))
                if Date() >= deadline { break }
            }
        }
    }

    /// The thread's body: a round whenever woken, or `retryInterval` after a round left records waiting.
    func run() {
        var retryAt: Date?
        while true {
            let readsSpool: Bool? = locked {
                while !wakeRequested, !stopRequested {
                    // No retry due: wait for a submit, a flush or the stop.
                    guard let retryAt else {
                        condition.wait()
                        continue
                    }
                    if !condition.wait(until: retryAt) { break }
                }
                if stopRequested { return nil }
                wakeRequested = false
                startedRounds += 1
                defer { spoolMayHoldRecords = false }
                return spoolMayHoldRecords
            }
            guard let readsSpool else { return }
            let started = ThreadCPUTime.seconds()
            var recordSeconds = 0.0
            let round = deliverRound(readingSpool: readsSpool, recordCPUSeconds: &recordSeconds)
            let roundSeconds = ThreadCPUTime.seconds() - started
            locked {
                totalsSoFar.add(round)
                completedRounds += 1
                if round.pending > 0 || round.lastError != nil { spoolMayHoldRecords = true }
                cpuSecondsSoFar.records += recordSeconds
                cpuSecondsSoFar.other += roundSeconds - recordSeconds
                condition.broadcast()
            }
            if round.delivered + round.rejected + round.pending > 0 || round.lastError != nil { onRound(round) }
            let waiting = round.pending > 0 || round.progressPending
            retryAt = waiting ? Self.date(after: configuration.retryInterval) : nil
        }
    }

    /// Posts the waiting records oldest first, until one cannot be delivered, then the newest job
    /// state change and progress report; the spool is read only when `readingSpool`. Adds the CPU
    /// time of the records' part to `recordCPUSeconds`.
    private func deliverRound(readingSpool: Bool, recordCPUSeconds: inout Double) -> DeliveryReport {
        let spool = RecordSpool(path: configuration.spoolPath)
        var report = DeliveryReport()
        if readingSpool {
            let started = ThreadCPUTime.seconds()
            defer { recordCPUSeconds += ThreadCPUTime.seconds() - started }
            do {
                guard try deliverRecords(from: spool, into: &report) else { return report }
            } catch {
                report.lastError = "\(error)"
                return report
            }
        }
        let stateWaits = deliverNewest(
            \.pendingState, path: "/v1/jobs/\(configuration.job)/state", what: "job state change", into: &report
        ) { $0.json.serialized }
        let progressWaits = deliverNewest(
            \.pendingProgress, path: "/v1/jobs/\(configuration.job)/progress", what: "progress report",
            into: &report
        ) { $0.json.serialized }
        report.progressPending = stateWaits || progressWaits
        guard readingSpool else { return report }
        // Records submitted during the round wait for the round their submit requested.
        do {
            report.pending = try spool.withLock { try spool.entriesLocked().count }
        } catch {
            report.lastError = "\(error)"
        }
        return report
    }

    /// Posts the spool's records oldest first into `report`; false when the coordinator became
    /// unavailable (the round ends there, with what still waits counted).
    private func deliverRecords(from spool: RecordSpool, into report: inout DeliveryReport) throws -> Bool {
        let waiting = try spool.withLock { try spool.entriesLocked() }
        for (index, entry) in waiting.enumerated() {
            switch post(path: "/v1/jobs/\(entry.job)/records", body: entry.record.json.serialized, what: "record") {
            case .accepted:
                try spool.withLock { try spool.removeLocked(entry) }
                report.delivered += 1
            case .refused(let reason):
                try spool.withLock {
                    try spool.rejectLocked(entry)
                    try spool.removeLocked(entry)
                }
                report.rejected += 1
                report.lastError = reason
            case .unavailable(let reason):
                report.lastError = reason
                report.pending = waiting.count - index
                report.unavailableRounds = 1
                report.progressPending = locked { pendingProgress != nil || pendingState != nil }
                return false
            }
        }
        return true
    }

    enum PostOutcome {
        case accepted
        case refused(String)
        case unavailable(String)
    }

    /// Posts the newest waiting value at `pending` (a progress report or state change), if one
    /// waits; it stays waiting (unless a newer one replaced it meanwhile) only when the coordinator
    /// is unavailable.
    ///
    /// - Returns: whether a value of this kind still waits.
    private func deliverNewest<Value: Equatable>(
        _ pending: ReferenceWritableKeyPath<RecordSender, Value?>, path: String, what: String,
        into report: inout DeliveryReport, body: (Value) -> String
    ) -> Bool {
        guard let value = locked({ self[keyPath: pending] }) else { return false }
        let outcome = post(path: path, body: body(value), what: what)
        switch outcome {
        case .accepted: break
        case .refused(let reason): report.lastError = reason
        case .unavailable(let reason):
            report.lastError = reason
            report.unavailableRounds = 1
        }
        let delivered = if case .unavailable = outcome { false } else { true }
        return locked {
            if delivered, self[keyPath: pending] == value { self[keyPath: pending] = nil }
            return self[keyPath: pending] != nil
        }
    }

    /// Posts one body, retrying connection failures, timeouts, 5xx, 408 and 429 with backoff.
    private func post(path: String, body text: String, what: String) -> PostOutcome {
        var headers: [(name: String, value: String)] = [("Content-Type", "application/json")]
        if let token = configuration.token { headers.append(("Authorization", "Bearer \(token)")) }
        let body = Array(text.utf8)
        var backoff = configuration.initialBackoff
        var reason = "no attempt made"
        for attempt in 1...max(1, configuration.maximumAttempts) {
            if attempt > 1 {
                if pause(seconds: backoff) { break }
                backoff = min(backoff * 2, configuration.maximumBackoff)
            }
            do {
                let response = try session.send(
                    "POST", path, headers: headers, body: body, timeout: configuration.requestTimeout,
                    connectTimeout: configuration.connectTimeout)
                let answer = "\(response.status): \(LogText.escaped(response.bodyText.prefix(200)))"
                switch response.status {
                case 200..<300: return .accepted
                case 408, 429, 500...: reason = "coordinator \(configuration.endpoint) answered \(answer)"
                default: return .refused("coordinator \(configuration.endpoint) refused the \(what) with \(answer)")
                }
            } catch {
                reason = error.description
            }
        }
        return .unavailable(reason)
    }

    /// Sleeps `seconds` unless the client stops first; returns whether it stopped.
    private func pause(seconds: Double) -> Bool {
        let until = Self.date(after: seconds)
        return locked {
            while !stopRequested, condition.wait(until: until) {}
            return stopRequested
        }
    }

    /// `seconds` from now, bounded to [0, one day]: `NSCondition` traps on dates it cannot
    /// express (`Date.distantFuture` included), and a timeout may come from a command-line flag.
    static func date(after seconds: Double) -> Date {
        Date(timeIntervalSinceNow: seconds.isNaN ? 0 : min(max(seconds, 0), 86_400))
    }

    private func locked<Result>(_ body: () throws -> Result) rethrows -> Result {
        condition.lock()
        defer { condition.unlock() }
        return try body()
    }
}
