// The pure half of the world agreement: given every rank's digest (and, for the fields that differ,
// every rank's details), decide and word the verdict — no communication here.

import Checkpoints
import Distributed
import Foundation
import StrictJSON

/// Where a rank runs, as messages name it: its server's index and name in the rank table.
package struct WorldPlacement: Sendable, Equatable {
    package var rank: Int
    /// The server's 0-based index in the rank table (0 without a table).
    package var serverIndex: Int
    /// The table's `server_id` / `node_addr` (the host name without a table).
    package var serverName: String

    package init(rank: Int, serverIndex: Int, serverName: String) {
        self.rank = rank
        self.serverIndex = serverIndex
        self.serverName = serverName
    }

    /// Where the rank with `identity` runs.
    package init(_ identity: RankIdentity) {
        self.init(rank: identity.rank, serverIndex: identity.serverIndex, serverName: identity.serverName)
    }
}

/// What every rank concluded about the world: the same on every rank, because it is computed
/// from the same gathered values.
package struct WorldVerdict: Sendable, Equatable {
    /// One line per difference that stops the job, e.g. `dataset differs: server 1 (10.0.0.2,
    /// ranks 8-15) and server 0 (10.0.0.1, ranks 0-7) list different train classes; …`.
    package var errors: [String] = []
    /// Differences `runtime.allow_mixed_kernels` accepted, worded the same way.
    package var warnings: [String] = []
    /// The fields that differ between some ranks.
    package var differingFields: [WorldFingerprint.Field] = []

    /// Whether the job may start.
    package var isAgreed: Bool { errors.isEmpty }

    /// The fields whose checksum is not the same on every rank (all of them when the ranks do not
    /// even share a digest format).
    package static func differingFields(_ digests: [WorldDigest]) -> [WorldFingerprint.Field] {
        guard Set(digests.map(\.format)).count == 1, let first = digests.first else { return [.build] }
        return WorldFingerprint.Field.allCases.filter { field in
            digests.contains { $0.checksums[field.rawValue] != first.checksums[field.rawValue] }
        }
    }

    /// Compares the ranks' `digests` and explains each difference from their `reports` (both
    /// indexed by rank; a report is nil when a rank's could not be read).
    package static func judge(digests: [WorldDigest], reports: [WorldReport?], allowMixedKernels: Bool) -> WorldVerdict
    {
        var verdict = WorldVerdict()
        verdict.differingFields = differingFields(digests)
        let sides = WorldSides(reports: reports)
        if Set(digests.map(\.format)).count > 1 {
            let groups = sides.groups(of: digests.map(\.format))
            for group in groups.dropFirst() {
                verdict.errors.append(
                    "build differs: \(sides.describe(group.ranks)) and \(sides.describe(groups[0].ranks)) use "
                        + "fingerprint formats \(group.key) and \(groups[0].key); run the same build on every server")
            }
            return verdict
        }
        for field in verdict.differingFields {
            let groups = sides.groups(of: digests.map { $0.checksums[field.rawValue] })
            let reference = groups[0]
            for group in groups.dropFirst() {
                let referenceLabel = sides.label(reference.ranks)
                let label = sides.label(group.ranks)
                let explanation = explain(
                    field, reference: reports[reference.ranks[0]]?.details[field],
                    other: reports[group.ranks[0]]?.details[field], referenceLabel: referenceLabel, label: label)
                let line =
                    "\(field.differsPhrase): \(sides.describe(group.ranks)) and \(sides.describe(reference.ranks))"
                    + explanation
                if field.isWaivable && allowMixedKernels {
                    verdict.warnings.append(line + " (accepted: runtime.allow_mixed_kernels is true)")
                } else if field.isWaivable {
                    verdict.errors.append(
                        line + "; set runtime.allow_mixed_kernels: true to accept this on a mixed cluster")
                } else {
                    verdict.errors.append(line)
                }
            }
        }
        return verdict
    }

    /// The end of the sentence that names both sides: what differs, with both values.
    private static func explain(
        _ field: WorldFingerprint.Field, reference: JSONValue?, other: JSONValue?, referenceLabel: String, label: String
    ) -> String {
        guard let reference, let other else { return ": the details of one side could not be read" }
        func values(_ render: (JSONValue) -> String) -> String {
            "\(render(reference)) on \(referenceLabel), \(render(other)) on \(label)"
        }
        switch field {
        case .dataset:
            guard let ours = DatasetFingerprint(json: reference), let theirs = DatasetFingerprint(json: other) else {
                return ": the details of one side could not be read"
            }
            return theirs.difference(from: ours, referenceLabel: referenceLabel, label: label)
        case .configuration:
            return configurationDifference(
                reference: reference.strings ?? [], other: other.strings ?? [], referenceLabel: referenceLabel,
                label: label)
        case .build:
            return " run different builds: "
                + values { build in
                    let checksum = build.member("executable_crc32c")?.integer.map {
                        "CRC-32C " + CRC32C.hexadecimal(UInt32(truncatingIfNeeded: $0))
                    }
                    return "version \(build.member("version")?.string ?? "?") (executable \(checksum ?? "unreadable"))"
                }
        case .kernels:
            return " load different kernels: "
                + values { kernels in
                    let openBLAS = kernels.member("openblas")?.string ?? "?"
                    return "OpenBLAS \(openBLAS) with packed \(kernels.member("packed")?.string ?? "?")"
                }
        case .threads:
            return " use different thread counts: "
                + values { "\($0.integer.map(String.init) ?? "?") OpenBLAS threads per rank" }
        case .precision:
            return " train in different precisions: " + values { $0.string ?? "?" }
        }
    }

    /// ` resolve different values: fully_train.trainer.epochs is 2 on rank 0, 3 on rank 1`, plus
    /// how many other keys differ.
    static func configurationDifference(reference: [String], other: [String], referenceLabel: String, label: String)
        -> String
    {
        func pairs(_ lines: [String]) -> [(key: String, value: String)] {
            lines.map { line in
                guard let colon = line.firstRange(of: ": ") else { return (line, "") }
                return (String(line[..<colon.lowerBound]), String(line[colon.upperBound...]))
            }
        }
        let ours = pairs(reference)
        let theirs = pairs(other)
        let ourValues = Dictionary(ours, uniquingKeysWith: { first, _ in first })
        let theirValues = Dictionary(theirs, uniquingKeysWith: { first, _ in first })
        let differing =
            ours.map(\.key).filter { ourValues[$0] != theirValues[$0] }
            + theirs.map(\.key).filter { ourValues[$0] == nil }
        guard let first = differing.first else { return ": the keys are the same but in a different order" }
        var text =
            " resolve different values: \(first) is \(ourValues[first] ?? "absent") on \(referenceLabel), "
            + "\(theirValues[first] ?? "absent") on \(label)"
        if differing.count > 1 {
            let more = differing.dropFirst()
            text += "; \(more.count) more key(s) differ: \(more.prefix(3).joined(separator: ", "))"
            if more.count > 3 { text += ", …" }
        }
        return text
    }
}

extension WorldFingerprint.Field {
    /// The start of a message, e.g. `dataset differs`.
    var differsPhrase: String {
        switch self {
        case .dataset: "dataset differs"
        case .configuration: "config differs"
        case .build: "build differs"
        case .kernels: "kernels differ"
        case .threads: "thread counts differ"
        case .precision: "precision differs"
        }
    }
}

/// Names groups of ranks by their servers: `server 1 (10.0.0.2, ranks 8-15)`, or by rank when a
/// group holds only part of a server.
struct WorldSides {
    /// Every rank's placement, indexed by rank.
    let placements: [WorldPlacement]

    /// The placements the gathered `reports` give, a placeholder for one that could not be read.
    init(reports: [WorldReport?]) {
        placements = reports.enumerated().map { rank, report in
            report?.placement ?? WorldPlacement(rank: rank, serverIndex: -1, serverName: "unknown server")
        }
    }

    /// A `diagnose world` summary line within its server, to group ranks by.
    struct Line: Hashable {
        let serverIndex: Int
        let serverName: String
        let text: String
    }

    /// A group of ranks sharing one value.
    struct Group<Key: Hashable> {
        let key: Key
        /// Ascending.
        var ranks: [Int]
    }

    /// The ranks grouped by `values[rank]`, the group holding rank 0 first, then by lowest rank.
    func groups<Key: Hashable>(of values: [Key]) -> [Group<Key>] {
        var groups: [Group<Key>] = []
        for (rank, value) in values.enumerated() {
            if let index = groups.firstIndex(where: { $0.key == value }) {
                groups[index].ranks.append(rank)
            } else {
                groups.append(Group(key: value, ranks: [rank]))
            }
        }
        return groups
    }

    private struct ServerKey: Hashable, Comparable {
        let index: Int
        let name: String
        static func < (a: ServerKey, b: ServerKey) -> Bool { (a.index, a.name) < (b.index, b.name) }
    }

    private func server(of rank: Int) -> ServerKey {
        ServerKey(index: placements[rank].serverIndex, name: placements[rank].serverName)
    }

    /// `ranks` split by server, in server order.
    private func byServer(_ ranks: [Int]) -> [(server: ServerKey, ranks: [Int])] {
        Dictionary(grouping: ranks, by: server(of:)).sorted { $0.key < $1.key }.map { ($0.key, $0.value.sorted()) }
    }

    /// Whether `ranks` are every rank of each server they touch.
    private func coversWholeServers(_ ranks: [Int]) -> Bool {
        byServer(ranks).allSatisfy { server, ranks in
            placements.indices.filter { self.server(of: $0) == server }.count == ranks.count
        }
    }

    /// `server 1 (10.0.0.2, ranks 8-15)`; several servers are listed (at most three, then a count).
    func describe(_ ranks: [Int]) -> String {
        let servers = byServer(ranks)
        var parts = servers.prefix(3).map {
            "server \($0.server.index) (\($0.server.name), \(Self.rankList($0.ranks)))"
        }
        if servers.count > 3 { parts.append("\(servers.count - 3) more servers") }
        return parts.joined(separator: ", ")
    }

    /// How values are attributed to the group: `server 1` when it holds whole servers, else
    /// `rank 1` / `ranks 2-3`.
    func label(_ ranks: [Int]) -> String {
        guard coversWholeServers(ranks) else { return Self.rankList(ranks) }
        let servers = byServer(ranks).map { "\($0.server.index)" }
        return servers.count == 1 ? "server \(servers[0])" : "servers \(servers.joined(separator: ", "))"
    }

    /// `rank 3`, `ranks 8-15`, `ranks 0, 2-3`.
    static func rankList(_ ranks: [Int]) -> String {
        var ranges: [String] = []
        var index = 0
        let sorted = ranks.sorted()
        while index < sorted.count {
            var end = index
            while end + 1 < sorted.count && sorted[end + 1] == sorted[end] + 1 { end += 1 }
            ranges.append(end == index ? "\(sorted[index])" : "\(sorted[index])-\(sorted[end])")
            index = end + 1
        }
        return (sorted.count == 1 ? "rank " : "ranks ") + ranges.joined(separator: ", ")
    }
}
