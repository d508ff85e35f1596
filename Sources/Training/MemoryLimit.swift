// `runtime.memory_limit`: the memory ceiling of one rank, parsed from its spelling (`6GB`, `6 GiB`,
// `auto`) and, for `auto`, resolved from the cgroup limit and the physical memory of this server.

import Foundation

/// The memory one rank may use: a fixed number of bytes, or `auto`.
///
/// Units: `B`, the decimal `KB` `MB` `GB` `TB` (powers of 1000) and the binary `KiB` `MiB` `GiB`
/// `TiB` (powers of 1024), case-insensitive, with or without a space after the number, which may
/// have a fraction (`2.5GB`). A bare number is refused: its unit would be a guess.
package enum MemoryLimit: Sendable, Equatable {
    /// min(cgroup limit, physical memory) × ``automaticShare`` ÷ the ranks on this server.
    case automatic
    case bytes(Int)

    /// The share of the server's memory `auto` hands to training; the rest stays with the system
    /// and other processes.
    package static let automaticShare = 0.8
    /// The accepted range, in bytes: 1 MB to 1 PB.
    package static let range = 1_000_000...1_000_000_000_000_000

    private static let units: [(suffix: String, scale: Double)] = [
        ("kib", 1024), ("mib", 1_048_576), ("gib", 1_073_741_824), ("tib", 1_099_511_627_776),
        ("kb", 1e3), ("mb", 1e6), ("gb", 1e9), ("tb", 1e12), ("b", 1),
    ]

    /// The limit `text` spells, or nil when it spells none (`six`, `6`, `6 parsecs`) or lies
    /// outside ``range``.
    package init?(_ text: String) {
        let spelled = text.trimmingCharacters(in: .whitespaces).lowercased()
        if spelled == "auto" {
            self = .automatic
            return
        }
        guard let unit = Self.units.first(where: { spelled.hasSuffix($0.suffix) }) else { return nil }
        let number = spelled.dropLast(unit.suffix.count).trimmingCharacters(in: .whitespaces)
        guard number.first?.isNumber == true, let value = Double(number), value.isFinite else { return nil }
        let bytes = value * unit.scale
        guard bytes >= Double(Self.range.lowerBound), bytes <= Double(Self.range.upperBound) else { return nil }
        self = .bytes(Int(bytes))
    }

    /// What the key accepts, for error messages.
    package static let expectation =
        "auto or a size from 1MB to 1PB such as 6GB, 6 GB, 6GiB or 6000MB (GB = 10⁹ bytes, GiB = 2³⁰ bytes)"

    /// The bytes one rank may use when `ranksOnServer` ranks share this server.
    package func bytes(ranksOnServer: Int) -> Int {
        switch self {
        case .bytes(let bytes): bytes
        case .automatic:
            Int(Double(Self.serverMemory()) * Self.automaticShare) / max(1, ranksOnServer)
        }
    }

    /// The smaller of this process's cgroup memory limit (v2, else v1) and the physical memory.
    package static func serverMemory() -> Int {
        let physical = Int(clamping: ProcessInfo.processInfo.physicalMemory)
        let files = ["/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"]
        for file in files {
            // `max` (v2) or a huge number (v1) means no limit; either way the physical memory bounds it.
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else { continue }
            if let limit = Int(text.trimmingCharacters(in: .whitespacesAndNewlines)) { return min(limit, physical) }
            return physical
        }
        return physical
    }

    /// `6 GB` style: decimal gigabytes with two decimals (or megabytes below 1 GB).
    package static func describe(_ bytes: Int) -> String {
        bytes >= 1_000_000_000
            ? String(format: "%.2f GB", Double(bytes) / 1e9) : String(format: "%.0f MB", Double(bytes) / 1e6)
    }
}

extension MemoryLimit: CustomStringConvertible {
    package var description: String {
        switch self {
        case .automatic: "auto"
        case .bytes(let bytes): Self.describe(bytes)
        }
    }
}
