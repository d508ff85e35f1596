// The process's peak resident memory, read from /proc/self/status for the benchmark reports.

import Glibc

/// Reads of `/proc/self/status`.
package enum ProcessStatus {
    /// The peak resident set size (`VmHWM`) in bytes, or nil when it cannot be read.
    package static func peakResidentBytes() -> Int? {
        let descriptor = open("/proc/self/status", O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress!, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { break }
            bytes += chunk[..<count]
        }
        return peakResidentBytes(statusText: String(decoding: bytes, as: UTF8.self))
    }

    /// The `VmHWM` line of a status text (`VmHWM:    123456 kB`) in bytes.
    package static func peakResidentBytes(statusText: String) -> Int? {
        for line in statusText.split(separator: "\n") where line.hasPrefix("VmHWM:") {
            let fields = line.dropFirst("VmHWM:".count).split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard let value = fields.first.flatMap({ Int($0) }) else { return nil }
            return fields.count > 1 && fields[1] == "kB" ? value * 1024 : value
        }
        return nil
    }
}
