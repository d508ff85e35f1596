// The collective half of the world agreement: one gather of 64-byte digests at start-up; only when
// they differ, a second exchange of the details that word the message (see WorldVerdict).

import Checkpoints
import Distributed
import Foundation
import Logging
import StrictJSON

/// Every rank's fingerprint compared before the first step and before any training data is read.
///
/// In the common case this costs one all-gather of ``WorldDigest/byteCount`` bytes per rank. When
/// a field differs, each rank also sends that field's canonical JSON (about 45 KB for an
/// ImageNet dataset) so every rank can name the field, the servers and ranks on each side and the
/// values — every rank reaches the same verdict from the same gathered bytes, so all of them stop
/// (or all start) together.
package struct WorldAgreement: Sendable {
    /// The conclusion, identical on every rank.
    package let verdict: WorldVerdict
    /// Every rank's digest, indexed by rank.
    package let digests: [WorldDigest]

    /// Gathers and compares every rank's fingerprint over `communicator`.
    ///
    /// - Parameters:
    ///   - fingerprint: This rank's fingerprint.
    ///   - placement: This rank's server, for messages.
    ///   - allowMixedKernels: `runtime.allow_mixed_kernels`: kernel and thread differences warn.
    /// - Throws: ``CommunicatorError`` when a collective fails (the watchdog applies).
    package static func reach(
        _ fingerprint: WorldFingerprint, placement: WorldPlacement, communicator: any Communicator,
        allowMixedKernels: Bool
    ) throws(CommunicatorError) -> WorldAgreement {
        let digests = try communicator.allGather(fingerprint.digest.bytes).map(WorldDigest.init(bytes:))
        let differing = WorldVerdict.differingFields(digests)
        guard !differing.isEmpty else { return WorldAgreement(verdict: WorldVerdict(), digests: digests) }
        let report = WorldReport(
            placement: placement,
            details: Dictionary(uniqueKeysWithValues: differing.map { ($0, fingerprint.detail($0)) }))
        let reports = try communicator.allGatherVariable(Array(report.json.serialized.utf8)).map(
            WorldReport.init(bytes:))
        let verdict = WorldVerdict.judge(digests: digests, reports: reports, allowMixedKernels: allowMixedKernels)
        return WorldAgreement(verdict: verdict, digests: digests)
    }

    /// One line per server (per group of its ranks when they differ), e.g. `server 0 (127.0.0.1,
    /// ranks 0-1): dataset 4 classes, train 32 files, val 8 files [1a2b3c4d]; config …`, for
    /// `diagnose world`: a second exchange that the training start-up does not make.
    package static func describeServers(
        _ fingerprint: WorldFingerprint, placement: WorldPlacement, communicator: any Communicator
    ) throws(CommunicatorError) -> [String] {
        let checksums = fingerprint.digest.checksums
        let summary = WorldFingerprint.Field.allCases.map { field in
            "\(field) \(fingerprint.summary(field)) [\(CRC32C.hexadecimal(checksums[field.rawValue]))]"
        }.joined(separator: "; ")
        let report = WorldReport(placement: placement, details: [:], summary: summary)
        let reports = try communicator.allGatherVariable(Array(report.json.serialized.utf8)).map(
            WorldReport.init(bytes:))
        let sides = WorldSides(reports: reports)
        let groups = sides.groups(
            of: reports.enumerated().map { rank, report in
                let placement = sides.placements[rank]
                return WorldSides.Line(
                    serverIndex: placement.serverIndex, serverName: placement.serverName,
                    text: report?.summary ?? "(unreadable)")
            })
        return groups.map { "\(sides.describe($0.ranks)): \($0.key.text)" }
    }
}

extension WorldAgreement {
    /// The start-up check of `train` and `eval`, once the worker is up and the dataset index loaded:
    /// fingerprint this rank, reach the agreement, and log it (accepted differences as warnings).
    ///
    /// - Throws: ``TrainingError`` of kind `.configuration` naming every difference, on every rank
    ///   at once (collective: MPI has been finalized and the log holds the message).
    package static func check(_ launch: RunLaunch, configuration: TrainingConfiguration) throws(TrainingError) {
        guard launch.communicator.size > 1 else { return }  // alone, there is nothing to compare
        let clock = ContinuousClock()
        let start = clock.now
        let fingerprint = WorldFingerprint.current(index: launch.dataset, configuration: configuration)
        let verdict: WorldVerdict
        do {
            verdict = try reach(
                fingerprint, placement: WorldPlacement(launch.worker.identity), communicator: launch.communicator,
                allowMixedKernels: configuration.runtime.allowMixedKernels
            ).verdict
        } catch {
            throw TrainingError(.communication, "the world agreement before step 1 failed: \(error)")
        }
        guard verdict.isAgreed else {
            let error = TrainingError(.configuration, verdict.errors.joined(separator: "\n"), isCollective: true)
            launch.stop(after: error)
            throw error
        }
        for warning in verdict.warnings { launch.logger.warning("\(warning)") }
        let milliseconds = (clock.now - start).inSeconds * 1000
        let summary =
            "world: \(launch.communicator.size) rank(s) agree on dataset (\(fingerprint.summary(.dataset))), "
            + "config (\(fingerprint.summary(.configuration))), build \(fingerprint.build.version), kernels "
            + "(\(fingerprint.summary(.kernels))), \(fingerprint.threads) thread(s) per rank, "
            + "\(fingerprint.precision); checked in \(String(format: "%.1f", milliseconds)) ms"
        launch.logger.info("\(summary)")
    }
}

/// What a rank sends when digests differ: where it runs and the details of the differing fields
/// (or, for `diagnose world`, its summary line).
package struct WorldReport {
    package var placement: WorldPlacement
    package var details: [WorldFingerprint.Field: JSONValue]
    package var summary: String?

    package init(placement: WorldPlacement, details: [WorldFingerprint.Field: JSONValue], summary: String? = nil) {
        self.placement = placement
        self.details = details
        self.summary = summary
    }

    var json: JSONValue {
        var members: [(key: String, value: JSONValue)] = [
            ("rank", .integer(placement.rank)), ("server", .integer(placement.serverIndex)),
            ("host", .string(placement.serverName)),
        ]
        if let summary { members.append(("summary", .string(summary))) }
        members += WorldFingerprint.Field.allCases.compactMap { field in details[field].map { ("\(field)", $0) } }
        return .object(members)
    }

    /// Reads a report another rank sent; nil when the bytes are not one.
    init?(bytes: [UInt8]) {
        guard let json = try? JSONValue(parsing: String(decoding: bytes, as: UTF8.self)) else { return nil }
        self.init(json: json)
    }

    init?(json: JSONValue) {
        guard let rank = json.member("rank")?.integer, let server = json.member("server")?.integer,
            let host = json.member("host")?.string
        else { return nil }
        placement = WorldPlacement(rank: rank, serverIndex: server, serverName: host)
        summary = json.member("summary")?.string
        details = [:]
        for field in WorldFingerprint.Field.allCases {
            if let detail = json.member("\(field)") { details[field] = detail }
        }
    }
}

extension Communicator {
    /// Every rank's `bytes`, of any length, in rank order: the lengths first, then the bytes
    /// padded to the longest.
    func allGatherVariable(_ bytes: [UInt8]) throws(CommunicatorError) -> [[UInt8]] {
        let lengths = try allGather(withUnsafeBytes(of: UInt64(bytes.count).littleEndian, Array.init)).map { bytes in
            Int(bytes.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) })
        }
        let longest = lengths.max() ?? 0
        let gathered = try allGather(bytes + [UInt8](repeating: 0, count: longest - bytes.count))
        return zip(gathered, lengths).map { Array($0.prefix($1)) }
    }
}

// Reading the exchanged JSON (shapes this file and DatasetFingerprint write).
extension JSONValue {
    func member(_ key: String) -> JSONValue? {
        guard case .object(let members) = self else { return nil }
        return members.first { $0.key == key }?.value
    }

    var string: String? {
        guard case .string(let value) = self else { return nil }
        return value
    }

    var integer: Int? {
        guard case .number(let number) = self else { return nil }
        return number.integerValue
    }

    var strings: [String]? {
        guard case .array(let items) = self else { return nil }
        let values = items.compactMap(\.string)
        return values.count == items.count ? values : nil
    }

    var integers: [Int]? {
        guard case .array(let items) = self else { return nil }
        let values = items.compactMap(\.integer)
        return values.count == items.count ? values : nil
    }
}
