//===----------------------------------------------------------------------===//
// ghostnet-d — Training
//===----------------------------------------------------------------------===//

import Foundation
import GhostNet
import Logging
import PerformanceRecords

/// Rank 0's performance records: logged, sent to the coordinator when one is configured, and
/// summarised as the reference's `Best values` line when there is none.
public final class PerformanceReporter {
    /// The objective that picks the best record for the local `Best values` line: the highest
    /// top-1 accuracy, as `make demo` asks of its coordinator.
    public static let bestObjectives = [Objective(key: "accuracy_top1", direction: .max)]

    public let client: CoordinatorClient?
    public private(set) var records: [PerformanceRecord] = []
    private let logger: Logger

    /// - Parameters:
    ///   - coordinator: The coordinator to send records to, or nil to keep them local.
    ///   - logger: Receives one line per record and delivery problems.
    public init(coordinator: CoordinatorClientConfiguration?, logger: Logger) {
        client = coordinator.map(CoordinatorClient.init(configuration:))
        self.logger = logger
    }

    /// The record's `flops` (G multiply-accumulates per image, 3 decimals) and `params` (thousands)
    /// fields for a network.
    public static func modelFigures(of structure: GhostNetStructure) -> (flops: Double, params: Double) {
        (Double(structure.multiplyAccumulatesInBillions) ?? 0, Double(structure.parametersInThousands) ?? 0)
    }

    /// Logs `record` and, with a coordinator, spools and delivers it. A coordinator that cannot be
    /// reached is a warning: the record waits in the spool and goes out with the next one.
    public func report(_ record: PerformanceRecord) {
        records.append(record)
        let fields = record.performance.entries.map { "\($0.key)=\(Self.formatted($0.value))" }.joined(separator: " ")
        logger.info("record: epoch \(record.epoch) step \(record.step) \(fields)")
        guard let client else { return }
        do {
            let delivery = try client.submit(record)
            warnAboutUndelivered(delivery, spool: client.configuration.spoolPath)
        } catch {
            logger.warning("cannot spool the record for the coordinator: \(error)")
        }
    }

    /// Ends reporting: with a coordinator, one more delivery attempt for spooled records; without
    /// one, logs the `Best values: [...]` line of the best records (ties included) unless
    /// `logBestValues` is false (the caller prints its own).
    public func finish(logBestValues: Bool = true) {
        if let client {
            do {
                warnAboutUndelivered(try client.deliverPending(), spool: client.configuration.spoolPath)
            } catch {
                logger.warning("cannot read the record spool: \(error)")
            }
        } else if logBestValues, !records.isEmpty {
            logger.info("\(BestValuesLine.message(for: ParetoFront.best(of: records, objectives: Self.bestObjectives)))")
        }
    }

    private func warnAboutUndelivered(_ delivery: DeliveryReport, spool: String) {
        if delivery.rejected > 0 {
            logger.warning("the coordinator refused \(delivery.rejected) record(s) (kept in \(spool).rejected): \(delivery.lastError ?? "")")
        }
        if delivery.pending > 0 {
            logger.warning("coordinator unreachable (\(delivery.lastError ?? "no answer")); \(delivery.pending) record(s) wait in \(spool)")
        }
    }

    /// Six significant decimals, enough for accuracies and losses in a log line.
    static func formatted(_ value: Double) -> String {
        String(format: "%.6g", value)
    }
}
