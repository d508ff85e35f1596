// Reading a rank table: finding the file (option, environment), reading it safely with a size bound,
// and parsing it with StrictJSON before RankTableValidator.swift applies the numbered rules.

import Foundation
internal import StrictJSON

#if canImport(Glibc)
import Glibc
#endif

// MARK: - Finding and reading the file

extension RankTable {
    /// The environment variables that name the rank table, in the order they are consulted.
    package static let pathVariables = ["MINDSPORE_HCCL_CONFIG_PATH", "RANK_TABLE_FILE"]

    /// The rank table path: `explicitPath` (from `--rank-table`) when given, else
    /// `MINDSPORE_HCCL_CONFIG_PATH`, else `RANK_TABLE_FILE`.
    ///
    /// - Returns: the path and warnings (both variables set to different files).
    /// - Throws: ``RankTableError/Code/notConfigured`` when nothing names a table.
    package static func resolvePath(
        explicitPath: String?, environment: [String: String]
    ) throws(RankTableError) -> (path: String, warnings: [String]) {
        let fromEnvironment = pathVariables.compactMap { name in
            environment[name].flatMap { $0.isEmpty ? nil : (name: name, path: $0) }
        }
        var warnings: [String] = []
        if fromEnvironment.count == 2, fromEnvironment[0].path != fromEnvironment[1].path {
            warnings.append(
                "\(fromEnvironment[0].name)=\(fromEnvironment[0].path) and \(fromEnvironment[1].name)="
                    + "\(fromEnvironment[1].path) differ; using \(explicitPath ?? fromEnvironment[0].path)")
        }
        if let explicitPath { return (explicitPath, warnings) }
        guard let first = fromEnvironment.first else {
            throw RankTableError(
                .notConfigured, file: "RANK_TABLE_FILE",
                message: "no rank table: pass --rank-table FILE or set RANK_TABLE_FILE (or MINDSPORE_HCCL_CONFIG_PATH)")
        }
        return (first.path, warnings)
    }

    /// Reads and validates the rank table at `path`.
    ///
    /// While the file's `status` is `"initializing"` (a writer such as a Kubernetes controller is
    /// still filling it) the file is re-read every `pollInterval` until `readinessTimeout` has
    /// passed, as HCCL does; a zero timeout fails at once.
    ///
    /// - Throws: ``RankTableError`` naming the file, the JSON path and what was expected.
    package static func load(
        path: String, readinessTimeout: Duration = .zero, pollInterval: Duration = .seconds(1)
    ) throws(RankTableError) -> RankTable {
        let deadline = ContinuousClock.now.advanced(by: readinessTimeout)
        while true {
            do {
                return try parse(readFile(path), file: path)
            } catch  where error.code == .notReady && ContinuousClock.now < deadline {
                let remaining = ContinuousClock.now.duration(to: deadline)
                Thread.sleep(forTimeInterval: min(pollInterval, remaining).inSeconds)
            }
        }
    }

    /// Parses and validates rank-table JSON; `file` only names the source in errors.
    package static func parse(_ bytes: [UInt8], file: String) throws(RankTableError) -> RankTable {
        guard bytes.contains(where: { ![0x20, 0x09, 0x0A, 0x0D].contains($0) }) else {
            throw RankTableError(.syntax, file: file, message: "the file is empty (expected a JSON object)")
        }
        let document: JSONValue
        do {
            document = try JSONValue(parsing: bytes)
        } catch {
            throw RankTableError(
                .syntax, file: file, message: "is not valid JSON: \(error.reason) at line \(error.line):\(error.column)"
            )
        }
        var validator = RankTableValidator(file: file)
        return try validator.validate(document)
    }

    /// The largest table read, far above any real one (4,096 servers of 8 ranks take about 3 MB).
    package static let maximumFileBytes = 64 << 20

    /// Reads the whole file, refusing before any read what is not a regular file: opening a FIFO
    /// for reading would block until a writer came, and a device may never end.
    private static func readFile(_ path: String) throws(RankTableError) -> [UInt8] {
        // O_NONBLOCK makes opening a FIFO return at once; it does not change reads of a regular file.
        let descriptor = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard descriptor >= 0 else {
            throw RankTableError(.unreadable, file: path, message: "does not exist or is not a readable file")
        }
        defer { close(descriptor) }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else {
            throw RankTableError(.unreadable, file: path, message: "cannot stat: \(String(cString: strerror(errno)))")
        }
        guard status.st_mode & S_IFMT == S_IFREG else {
            throw RankTableError(.unreadable, file: path, message: "is not a regular file (expected a JSON file)")
        }
        guard status.st_size <= maximumFileBytes else {
            throw RankTableError(
                .unreadable, file: path,
                message: "is \(status.st_size) bytes; a rank table is at most \(maximumFileBytes)")
        }
        var bytes = [UInt8](repeating: 0, count: Int(status.st_size))
        var total = 0
        while total < bytes.count {
            let count = bytes.withUnsafeMutableBytes { read(descriptor, $0.baseAddress! + total, $0.count - total) }
            if count < 0 && errno == EINTR { continue }
            guard count >= 0 else {
                let reason = String(cString: strerror(errno))
                throw RankTableError(.unreadable, file: path, message: "cannot read: \(reason)")
            }
            if count == 0 { break }
            total += count
        }
        return Array(bytes[..<total])
    }
}
