// A safetensors file in memory (named tensors, string metadata, the data section) and its crash-safe
// write and defensive read: the reader checks the header before it reads any data, reads exactly the
// bytes the header describes, and verifies the data's CRC-32C.

import Foundation
import StrictJSON
import TensorEngine

// Float data is copied byte for byte, which is the little-endian layout the format requires.
#if _endian(big)
#error("safetensors data is little-endian; add byte swapping for big-endian hosts")
#endif

/// The element types this program reads and writes in safetensors files.
package enum SafeTensorsDType: String, Sendable, CaseIterable {
    /// IEEE-754 binary32, little-endian: weights, activations, gradients.
    case float32 = "F32"
    /// Two's-complement 64-bit integers, little-endian: labels (PyTorch's `long`), counters.
    case int64 = "I64"
    /// Two's-complement 32-bit integers, little-endian: labels.
    case int32 = "I32"

    /// Bytes per element.
    package var byteWidth: Int {
        switch self {
        case .float32, .int32: 4
        case .int64: 8
        }
    }
}

/// A safetensors file in memory: named tensors with shapes and dtypes, a string→string metadata
/// map, and the raw data section.
///
/// The format (<https://github.com/huggingface/safetensors>): an unsigned 64-bit little-endian
/// header length `n`; `n` bytes of UTF-8 JSON,
/// `{"<name>": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, …, "__metadata__": {..}}`;
/// then the data section, where each tensor's row-major little-endian bytes occupy
/// `[begin, end)` and the tensors tile the section exactly (no gaps, no overlap, nothing after).
///
/// Every file written here carries the CRC-32C of its data section in the metadata under
/// ``checksumKey``; reading verifies it when present, so a flipped byte is refused. Writes are
/// atomic (temporary file, `fsync`, `rename`, directory `fsync`).
package struct SafeTensorsFile: Sendable {
    /// One tensor's header entry.
    package struct Entry: Sendable, Hashable {
        package let name: String
        package let dtype: SafeTensorsDType
        /// The shape, outermost first; `[]` for a scalar.
        package let shape: [Int]
        /// The tensor's bytes within the data section.
        package let byteRange: Range<Int>

        /// The number of elements, the product of `shape`.
        package var elementCount: Int { byteRange.count / dtype.byteWidth }

        /// The bytes a tensor of `dtype` and `shape` occupies, or `nil` beyond `Int.max`.
        static func byteCount(dtype: SafeTensorsDType, shape: [Int]) -> Int? {
            var bytes = dtype.byteWidth
            for extent in shape {
                let (product, overflow) = bytes.multipliedReportingOverflow(by: extent)
                guard !overflow else { return nil }
                bytes = product
            }
            return bytes
        }
    }

    /// The metadata key of the data section's CRC-32C, 8 lowercase hexadecimal digits.
    package static let checksumKey = "data_crc32c"
    /// The largest header accepted, as in the reference implementation (100 MB).
    static let maximumHeaderLength = 100_000_000

    /// Free-form string metadata (`__metadata__`). ``checksumKey`` is (re)computed on write.
    package var metadata: [String: String]
    /// The tensors, in data-section order.
    package private(set) var entries: [Entry] = []
    /// Where the file came from, used in error messages: its path, or `(unsaved)`.
    package private(set) var path: String

    private var entryIndices: [String: Int] = [:]
    private var data: [UInt8] = []

    /// An empty file to fill with ``append(_:named:)``.
    package init(metadata: [String: String] = [:]) {
        self.metadata = metadata
        self.path = "(unsaved)"
    }

    /// The tensor names, in data-section order.
    package var names: [String] { entries.map(\.name) }

    /// The header entry of `name`, or `nil`.
    package func entry(named name: String) -> Entry? {
        entryIndices[name].map { entries[$0] }
    }

    // MARK: - Adding tensors

    /// Appends a float32 tensor.
    ///
    /// - Precondition: no tensor named `name` exists and `name` is not `__metadata__`.
    package mutating func append(_ tensor: Tensor, named name: String) {
        tensor.withUnsafeBufferPointer {
            appendBytes(UnsafeRawBufferPointer($0), dtype: .float32, shape: tensor.shape, named: name)
        }
    }

    /// Appends a tensor of 64-bit integers (dtype `I64`) with `shape`.
    ///
    /// - Precondition: `values.count` is the product of `shape`; the name is new.
    package mutating func append(int64 values: [Int64], shape: [Int], named name: String) {
        appendIntegers(values, dtype: .int64, shape: shape, named: name)
    }

    /// Appends a tensor of 32-bit integers (dtype `I32`) with `shape`.
    ///
    /// - Precondition: `values.count` is the product of `shape`; the name is new.
    package mutating func append(int32 values: [Int32], shape: [Int], named name: String) {
        appendIntegers(values, dtype: .int32, shape: shape, named: name)
    }

    private mutating func appendIntegers<Integer: FixedWidthInteger>(
        _ values: [Integer], dtype: SafeTensorsDType, shape: [Int], named name: String
    ) {
        precondition(
            values.count == Tensor.elementCount(of: shape), "\(values.count) values do not fill shape \(shape)")
        let littleEndian = values.map(\.littleEndian)
        littleEndian.withUnsafeBytes { appendBytes($0, dtype: dtype, shape: shape, named: name) }
    }

    private mutating func appendBytes(
        _ bytes: UnsafeRawBufferPointer, dtype: SafeTensorsDType, shape: [Int], named name: String
    ) {
        precondition(entryIndices[name] == nil, "tensor '\(name)' appended twice")
        precondition(!name.isEmpty && name != SafeTensorsHeader.metadataKey, "invalid tensor name '\(name)'")
        let begin = data.count
        data.append(contentsOf: bytes)
        entryIndices[name] = entries.count
        entries.append(Entry(name: name, dtype: dtype, shape: shape, byteRange: begin..<data.count))
    }

    // MARK: - Reading values

    /// The float32 tensor `name`, with its stored shape.
    ///
    /// - Throws: ``SafeTensorsError`` `.missingTensor` or `.wrongDType`.
    package func tensor(named name: String) throws -> Tensor {
        let entry = try requireEntry(name, dtypes: [.float32])
        return data.withUnsafeBytes { source in
            Tensor(shape: entry.shape) { destination in
                UnsafeMutableRawBufferPointer(destination).copyMemory(
                    from: UnsafeRawBufferPointer(rebasing: source[entry.byteRange]))
            }
        }
    }

    /// The integer tensor `name` (dtype `I64` or `I32`), widened to `Int64`, in row-major order.
    ///
    /// - Throws: ``SafeTensorsError`` `.missingTensor` or `.wrongDType`.
    package func integers(named name: String) throws -> [Int64] {
        let entry = try requireEntry(name, dtypes: [.int64, .int32])
        return data.withUnsafeBytes { source in
            let bytes = UnsafeRawBufferPointer(rebasing: source[entry.byteRange])
            return (0..<entry.elementCount).map { index in
                entry.dtype == .int64
                    ? Int64(littleEndian: bytes.loadUnaligned(fromByteOffset: index * 8, as: Int64.self))
                    : Int64(Int32(littleEndian: bytes.loadUnaligned(fromByteOffset: index * 4, as: Int32.self)))
            }
        }
    }

    private func requireEntry(_ name: String, dtypes: [SafeTensorsDType]) throws -> Entry {
        guard let entry = entry(named: name) else {
            throw SafeTensorsError(.missingTensor, path: path, "no tensor named '\(name)'")
        }
        guard dtypes.contains(entry.dtype) else {
            let expected = dtypes.map(\.rawValue).joined(separator: " or ")
            throw SafeTensorsError(
                .wrongDType, path: path, "tensor '\(name)' has dtype \(entry.dtype.rawValue), expected \(expected)")
        }
        return entry
    }

    // MARK: - Checksum

    /// The CRC-32C of the data section.
    package var dataChecksum: UInt32 {
        var crc = CRC32C()
        data.withUnsafeBytes { crc.update($0) }
        return crc.value
    }

    // MARK: - Writing

    /// Writes the file atomically to `path`, recording the data section's CRC-32C in the metadata.
    ///
    /// - Throws: ``SafeTensorsError`` `.fileSystem` when the file cannot be created, written,
    ///   synced or renamed into place; `path` is then unchanged and no temporary file remains.
    package func write(to path: String) throws {
        var storedMetadata = metadata
        storedMetadata[Self.checksumKey] = CRC32C.hexadecimal(dataChecksum)
        var json = SafeTensorsHeader(entries: entries, metadata: storedMetadata).encoded()
        // Pad with spaces (valid JSON whitespace) so the data section starts 8-byte aligned, as the
        // reference writer does.
        json.append(contentsOf: repeatElement(UInt8(ascii: " "), count: (8 - json.count % 8) % 8))
        let headerLength = withUnsafeBytes(of: UInt64(json.count).littleEndian) { Array($0) }
        try headerLength.withUnsafeBytes { lengthBytes in
            try json.withUnsafeBytes { jsonBytes in
                try data.withUnsafeBytes { dataBytes in
                    try POSIXFile.write([lengthBytes, jsonBytes, dataBytes], to: path)
                }
            }
        }
    }

    // MARK: - Reading

    /// Reads and validates the safetensors file at `path`.
    ///
    /// The header is read and validated first; `checkHeader` may refuse it (e.g. metadata out of
    /// bounds) before any data is read. Then exactly the data bytes the header describes are read.
    ///
    /// - Throws: ``SafeTensorsError`` naming `path` and the problem: `.notRegularFile` (a FIFO,
    ///   device or directory, refused before it is opened), `.fileSystem`, `.truncated` (shorter
    ///   than the header length or the data offsets say), `.malformedHeader` (absurd length, not
    ///   JSON, wrong field types), `.unsupportedDType`, `.invalidLayout` (overlapping or gapped
    ///   offsets, size ≠ dtype × shape, bytes after the last tensor), `.tooLarge` (more data than
    ///   this machine's memory), `.checksumMismatch`; or whatever `checkHeader` throws.
    package init(contentsOf path: String, checkingHeader checkHeader: (SafeTensorsHeader) throws -> Void = { _ in })
        throws
    {
        self.path = path
        let (header, dataSection) = try POSIXFile.withOpenFile(path) { descriptor, fileSize in
            let header = try Self.readHeader(from: descriptor, fileSize: fileSize, path: path)
            try checkHeader(header)
            return (header, try Self.readBytes(header.dataLength, from: descriptor, path: path))
        }
        metadata = header.metadata
        entries = header.entries
        entryIndices = Dictionary(uniqueKeysWithValues: header.entries.enumerated().map { ($1.name, $0) })
        data = dataSection
        try verifyChecksum()
    }

    /// Reads the length field and the header, and checks that the file holds exactly the data the
    /// header describes (no more, so a huge sparse file is refused unread).
    private static func readHeader(from descriptor: Int32, fileSize: Int, path: String) throws -> SafeTensorsHeader {
        guard fileSize >= 8 else {
            throw SafeTensorsError(
                .truncated, path: path, "file has \(fileSize) bytes, fewer than the 8-byte header length")
        }
        var lengthField: UInt64 = 0
        try withUnsafeMutableBytes(of: &lengthField) { bytes in
            try POSIXFile.readExactly(bytes, from: descriptor, path: path)
        }
        let headerLength = UInt64(littleEndian: lengthField)
        guard headerLength <= UInt64(maximumHeaderLength) else {
            throw SafeTensorsError(
                .malformedHeader, path: path,
                "header length \(headerLength) is absurd (limit \(maximumHeaderLength) bytes); not a safetensors file?")
        }
        let available = fileSize - 8
        guard headerLength <= UInt64(available) else {
            throw SafeTensorsError(
                .truncated, path: path,
                "header length says \(headerLength) bytes but only \(available) follow the length field")
        }
        let header = try SafeTensorsHeader(
            parsing: try readBytes(Int(headerLength), from: descriptor, path: path), path: path)
        let dataBytes = available - Int(headerLength)
        guard header.dataLength <= dataBytes else {
            throw SafeTensorsError(
                .truncated, path: path,
                "the tensors end at data offset \(header.dataLength) but only \(dataBytes) bytes of data "
                    + "follow the header (file truncated?)"
            )
        }
        guard header.dataLength == dataBytes else {
            throw SafeTensorsError(
                .invalidLayout, path: path,
                "\(dataBytes - header.dataLength) bytes of trailing data after the last tensor (the header describes "
                    + "\(header.dataLength) data bytes, the file holds \(dataBytes)); the file is not read")
        }
        let memory = Int(clamping: ProcessInfo.processInfo.physicalMemory)
        guard header.dataLength <= memory else {
            throw SafeTensorsError(
                .tooLarge, path: path,
                "the tensors need \(header.dataLength) bytes, more than this machine's \(memory) bytes of memory")
        }
        return header
    }

    private static func readBytes(_ count: Int, from descriptor: Int32, path: String) throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        try bytes.withUnsafeMutableBytes { buffer in
            try POSIXFile.readExactly(buffer, from: descriptor, path: path)
        }
        return bytes
    }

    private func verifyChecksum() throws {
        guard let recorded = metadata[Self.checksumKey] else { return }
        let actual = CRC32C.hexadecimal(dataChecksum)
        guard recorded.lowercased() == actual else {
            throw SafeTensorsError(
                .checksumMismatch, path: path,
                "data checksum mismatch: the header records CRC-32C \(recorded) "
                    + "but the data has \(actual); the file is corrupted"
            )
        }
    }
}
