// Rank 0's performance records: logging each one, delivering it to the coordinator when one is configured,
// and the reference's `Best values` line when none is.

import CoordinatorClient
import Foundation
import GhostNet
import Logging
import PerformanceRecords

/// Rank 0's performance records: logged, sent to the coordinator when one is configured, and
/// summarised as the reference's `Best values` line when there is none.
package final class PerformanceReporter {
    /// The objective that picks the best record for the local `Best values` line: the highest
    /// top-1 accuracy, as `make demo` asks of its coordinator.
    package static let bestObjectives = [Objective(key: "accuracy_top1", direction: .max)]

    package let client: CoordinatorClient?
    package private(set) var records: [PerformanceRecord] = []
    /// The newest progress update handed to the client, the base of the run's last one.
    package private(set) var lastProgress: ProgressUpdate?
    private let logger: Logger

    /// - Parameters:
    ///   - coordinator: The coordinator to send records to, or nil to keep them local.
    ///   - logger: Receives one line per record and delivery problems.
    package init(coordinator: CoordinatorClientConfiguration?, logger: Logger) {
        client = coordinator.map { configuration in
            CoordinatorClient(configuration: configuration) { round in
                Self.warnAboutUndelivered(round, spool: configuration.spoolPath, logger: logger)
            }
        }
        self.logger = logger
    }

    /// The record's `flops` (G multiply-accumulates per image, 3 decimals) and `params` (thousands)
    /// fields for a network.
    package static func modelFigures(of structure: GhostNetStructure) -> (flops: Double, params: Double) {
        (Double(structure.multiplyAccumulatesInBillions) ?? 0, Double(structure.parametersInThousands) ?? 0)
    }

    /// Logs `record` and, with a coordinator, spools it for the client's sender, without waiting
    /// for the coordinator. A coordinator that cannot be reached is a warning (from the sender):
    /// the record waits in the spool and goes out when it answers again.
    package func report(_ record: PerformanceRecord) {
        records.append(record)
        let fields = record.performance.entries.map { "\($0.key)=\(Self.formatted($0.value))" }.joined(separator: " ")
        logger.info("record: epoch \(record.epoch) step \(record.step) \(fields)")
        guard let client else { return }
        do {
            try client.submit(record)
        } catch {
            logger.warning("cannot spool the record for the coordinator: \(error)")
        }
    }

    /// Hands `update` to the coordinator client, which keeps only the newest while the coordinator
    /// is away; returns at once. Without a coordinator there is no one to tell.
    package func report(progress update: ProgressUpdate) {
        lastProgress = update
        client?.submit(update)
    }

    /// Posts the run's end: the newest update with `state` (finished, failed, preempted) and the
    /// time now. Nothing when no update was made (the run ended before it announced itself).
    package func reportEnd(_ state: JobState) {
        guard var update = lastProgress else { return }
        update.state = state
        update.timestamp = min(Date().timeIntervalSince1970, PerformanceRecord.maximumTimestamp)
        report(progress: update)
    }

    /// Ends reporting: with a coordinator, delivery of the spooled records for at most the client's
    /// request timeout (what stays waits in the spool for the next run); without
    /// one, logs the `Best values: [...]` line of the best records (ties included) unless
    /// `logBestValues` is false (the caller prints its own).
    package func finish(logBestValues: Bool = true) {
        if let client {
            let totals = client.flush(timeout: client.configuration.requestTimeout)
            if totals.pending > 0 {
                logger.warning(
                    "\(totals.pending) record(s) not yet delivered wait in \(client.configuration.spoolPath)")
            }
        } else if logBestValues, !records.isEmpty {
            logger.info(
                "\(BestValuesLine.message(for: ParetoFront.best(of: records, objectives: Self.bestObjectives)))")
        }
    }

    private static func warnAboutUndelivered(_ delivery: DeliveryReport, spool: String, logger: Logger) {
        if delivery.rejected > 0 {
            logger.warning(
                """
                the coordinator refused \(delivery.rejected) record(s) (kept in \(spool).rejected): \
                \(delivery.lastError ?? "")
                """)
        }
        if delivery.pending > 0 {
            logger.warning(
                """
                coordinator unreachable (\(delivery.lastError ?? "no answer")); \
                \(delivery.pending) record(s) wait in \(spool)
                """)
        }
    }

    /// Six significant decimals, enough for accuracies and losses in a log line.
    static func formatted(_ value: Double) -> String {
        String(format: "%.6g", value)
    }
}
