// What one rank believes the world is — dataset, resolved config, build, kernels, threads,
// precision — and the fixed-size digest every rank gathers before the first step (issue 20).

import Checkpoints
import Foundation
import ImageData
import StrictJSON
import TensorEngine

/// One rank's view of everything that must be the same on every rank for data-parallel training to
/// mean anything: the same labels, the same files, the same hyperparameters, the same binary and
/// the same arithmetic.
///
/// Each field has a canonical JSON form (``detail(_:)``); the ``digest`` holds a CRC-32C of each,
/// so ranks compare 64 bytes in the common case and exchange the JSON only to explain a difference.
package struct WorldFingerprint: Sendable, Equatable {
    /// The parts of the fingerprint, in the order they are compared and reported.
    package enum Field: Int, Sendable, CaseIterable, CustomStringConvertible {
        case dataset, configuration, build, kernels, threads, precision

        /// The field's name in messages and in the exchanged JSON.
        package var description: String {
            switch self {
            case .dataset: "dataset"
            case .configuration: "config"
            case .build: "build"
            case .kernels: "kernels"
            case .threads: "threads"
            case .precision: "precision"
            }
        }

        /// Whether `runtime.allow_mixed_kernels` may turn a difference into a warning: kernel
        /// families and thread counts only change rounding. A different dataset, config, build or
        /// precision changes what is computed, so it always stops the job.
        package var isWaivable: Bool { self == .kernels || self == .threads }
    }

    /// The OpenBLAS kernel family and the project's packed micro-kernels in use.
    package struct Kernels: Sendable, Equatable {
        /// `openblas_get_corename()`, e.g. `Haswell`.
        package var openBLAS: String
        /// The packed thin-product kernels, e.g. `AVX2 6×16`, or `none`.
        package var packed: String

        package init(openBLAS: String, packed: String) {
            self.openBLAS = openBLAS
            self.packed = packed
        }

        /// The kernels this process loaded.
        package static var current: Kernels {
            Kernels(openBLAS: OpenBLASRuntime.kernelName, packed: GEMM.packedKernel.packedLabel)
        }
    }

    /// The program: its version and a checksum of the executable file.
    package struct Build: Sendable, Equatable {
        package var version: String
        /// CRC-32C of `/proc/self/exe`; nil when the file cannot be read.
        package var executableChecksum: UInt32?

        package init(version: String, executableChecksum: UInt32?) {
            self.version = version
            self.executableChecksum = executableChecksum
        }

        /// The program's version, as `ghostnet-d --version` prints it.
        package static let programVersion = "0.1.0"

        /// This process's build. The executable (tens of MB) is read once per process.
        package static var current: Build {
            Build(version: programVersion, executableChecksum: runningExecutableChecksum)
        }

        private static let runningExecutableChecksum: UInt32? = {
            guard let bytes = try? Data(contentsOf: URL(fileURLWithPath: "/proc/self/exe"), options: .alwaysMapped)
            else { return nil }
            var checksum = CRC32C()
            bytes.withUnsafeBytes { checksum.update($0) }
            return checksum.value
        }()
    }

    /// The arithmetic of a run without a training step: every tensor is `Float`, products fp32.
    package static let enginePrecision = "fp32"

    package var dataset: DatasetFingerprint
    /// The resolved configuration as `key.path: value` lines (see ``configurationLines(_:)``).
    package var configuration: [String]
    package var build: Build
    package var kernels: Kernels
    /// OpenBLAS threads per rank (the bands ``GEMM`` splits a product into).
    package var threads: Int
    package var precision: String

    package init(
        dataset: DatasetFingerprint, configuration: [String], build: Build, kernels: Kernels, threads: Int,
        precision: String = WorldFingerprint.enginePrecision
    ) {
        self.dataset = dataset
        self.configuration = configuration
        self.build = build
        self.kernels = kernels
        self.threads = threads
        self.precision = precision
    }

    /// This process's fingerprint: `index` and `configuration` as loaded, the running build,
    /// kernels, thread count and the precision `trainer.precision` resolves to on this CPU (`auto`
    /// may resolve differently on different CPUs).
    package static func current(index: DatasetIndex, configuration: TrainingConfiguration) -> WorldFingerprint {
        WorldFingerprint(
            dataset: DatasetFingerprint(index: index), configuration: configurationLines(configuration),
            build: .current, kernels: .current, threads: OpenBLASRuntime.threadCount,
            precision: configuration.fullyTrain?.trainer.precision.resolved.rawValue ?? enginePrecision)
    }

    // MARK: - The configuration's canonical form

    /// Keys left out of the config field because another field covers what they mean: the data
    /// path's contents are the dataset field (a copy may live elsewhere on a server), and the
    /// `threads` request (0 = automatic) resolves to the threads field.
    static let configurationKeysCoveredElsewhere = [ConfigurationKeys.dataPath.path, ConfigurationKeys.threads.path]

    /// Every resolved key (defaults, derived values and overrides applied) as `key.path: value`, in
    /// schema order.
    package static func configurationLines(_ configuration: TrainingConfiguration) -> [String] {
        func lines(_ value: ConfigurationValue, _ prefix: String) -> [String] {
            guard case .section(let entries) = value else {
                let covered = configurationKeysCoveredElsewhere.contains { prefix == $0 || prefix.hasSuffix("." + $0) }
                return covered ? [] : ["\(prefix): \(value.yamlScalar)"]
            }
            return entries.flatMap { lines($0.value, prefix.isEmpty ? $0.key : "\(prefix).\($0.key)") }
        }
        return lines(configuration.resolved, "")
    }

    // MARK: - Canonical JSON and the digest

    /// The canonical JSON of `field`: what its digest covers and what a mismatch exchanges.
    package func detail(_ field: Field) -> JSONValue {
        switch field {
        case .dataset: dataset.json
        case .configuration: .array(configuration.map(JSONValue.string))
        case .build:
            .object([
                ("version", .string(build.version)),
                ("executable_crc32c", build.executableChecksum.map { .integer(Int($0)) } ?? .null),
            ])
        case .kernels: .object([("openblas", .string(kernels.openBLAS)), ("packed", .string(kernels.packed))])
        case .threads: .integer(threads)
        case .precision: .string(precision)
        }
    }

    /// ``WorldDigest`` of every field.
    package var digest: WorldDigest {
        WorldDigest(checksums: Field.allCases.map { field in CRC32C.checksum(detail(field).serialized.utf8) })
    }
}

extension WorldFingerprint {
    /// One short line for `field`, e.g. `1000 classes, train 1281167 files, val 50000 files`.
    package func summary(_ field: Field) -> String {
        switch field {
        case .dataset: dataset.summary
        case .configuration: "\(configuration.count) keys"
        case .build:
            "version \(build.version), executable "
                + (build.executableChecksum.map { "CRC-32C " + CRC32C.hexadecimal($0) } ?? "unreadable")
        case .kernels: "OpenBLAS \(kernels.openBLAS), packed \(kernels.packed)"
        case .threads: "\(threads) per rank"
        case .precision: precision
        }
    }
}

/// The fixed-size form of a fingerprint that every rank gathers: a format number, then one
/// CRC-32C per field, zero-padded to ``byteCount``.
///
/// The size never changes between builds, so even ranks running different versions complete the
/// gather (and then learn that their formats, hence builds, differ) instead of failing inside MPI.
package struct WorldDigest: Sendable, Equatable {
    /// Bytes on the wire, fixed for every build.
    package static let byteCount = 64
    /// The layout below; raise it when fields change.
    package static let currentFormat: UInt32 = 1

    package var format: UInt32
    /// One checksum per ``WorldFingerprint/Field``, in its order.
    package var checksums: [UInt32]

    package init(format: UInt32 = WorldDigest.currentFormat, checksums: [UInt32]) {
        precondition(8 + 4 * checksums.count <= Self.byteCount, "\(checksums.count) fields do not fit a digest")
        self.format = format
        self.checksums = checksums
    }

    /// Little-endian: format, field count, the checksums, zeros.
    package var bytes: [UInt8] {
        var words = [format, UInt32(checksums.count)] + checksums
        words += [UInt32](repeating: 0, count: Self.byteCount / 4 - words.count)
        return words.flatMap { word in (0..<4).map { UInt8(truncatingIfNeeded: word >> (8 * $0)) } }
    }

    /// Reads `bytes` as written by ``bytes``; a digest of another format keeps only its format.
    package init(bytes: [UInt8]) {
        precondition(bytes.count == Self.byteCount, "a world digest is \(Self.byteCount) bytes, got \(bytes.count)")
        let words = stride(from: 0, to: bytes.count, by: 4).map { offset in
            (0..<4).reduce(UInt32(0)) { $0 | UInt32(bytes[offset + $1]) << (8 * $1) }
        }
        format = words[0]
        let count = Int(words[1])
        checksums = format == Self.currentFormat && count <= words.count - 2 ? Array(words[2..<2 + count]) : []
    }
}
