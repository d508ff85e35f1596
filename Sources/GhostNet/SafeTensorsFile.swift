//===----------------------------------------------------------------------===//
// ghostnet-d — GhostNet
//===----------------------------------------------------------------------===//

import Foundation
import TensorEngine

// Float data is copied byte for byte, which is the little-endian layout the format requires.
#if _endian(big)
#error("safetensors data is little-endian; add byte swapping for big-endian hosts")
#endif

/// The element types this program reads and writes in safetensors files.
public enum SafeTensorsDType: String, Sendable, CaseIterable {
    /// IEEE-754 binary32, little-endian: weights, activations, gradients.
    case float32 = "F32"
    /// Two's-complement 64-bit integers, little-endian: labels (PyTorch's `long`), counters.
    case int64 = "I64"
    /// Two's-complement 32-bit integers, little-endian: labels.
    case int32 = "I32"

    /// Bytes per element.
    public var byteWidth: Int {
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
public struct SafeTensorsFile: Sendable {
    /// One tensor's header entry.
    public struct Entry: Sendable, Hashable {
        public let name: String
        public let dtype: SafeTensorsDType
        /// The shape, outermost first; `[]` for a scalar.
        public let shape: [Int]
        /// The tensor's bytes within the data section.
        public let byteRange: Range<Int>

        /// The number of elements, the product of `shape`.
        public var elementCount: Int { shape.reduce(1, *) }
    }

    /// The metadata key of the data section's CRC-32C, 8 lowercase hexadecimal digits.
    public static let checksumKey = "data_crc32c"
    /// The largest header accepted, as in the reference implementation (100 MB).
    static let maximumHeaderLength = 100_000_000

    /// Free-form string metadata (`__metadata__`). ``checksumKey`` is (re)computed on write.
    public var metadata: [String: String]
    /// The tensors, in data-section order.
    public private(set) var entries: [Entry] = []
    /// Where the file came from, used in error messages: its path, or `(unsaved)`.
    public private(set) var path: String

    private var entryIndices: [String: Int] = [:]
    private var data: [UInt8] = []

    /// An empty file to fill with ``append(_:named:)``.
    public init(metadata: [String: String] = [:]) {
        self.metadata = metadata
        self.path = "(unsaved)"
    }

    /// The tensor names, in data-section order.
    public var names: [String] { entries.map(\.name) }

    /// The header entry of `name`, or `nil`.
    public func entry(named name: String) -> Entry? {
        entryIndices[name].map { entries[$0] }
    }

    // MARK: - Adding tensors

    /// Appends a float32 tensor.
    ///
    /// - Precondition: no tensor named `name` exists and `name` is not `__metadata__`.
    public mutating func append(_ tensor: Tensor, named name: String) {
        tensor.withUnsafeBufferPointer { appendBytes(UnsafeRawBufferPointer($0), dtype: .float32, shape: tensor.shape, named: name) }
    }

    /// Appends a tensor of 64-bit integers (dtype `I64`) with `shape`.
    ///
    /// - Precondition: `values.count` is the product of `shape`; the name is new.
    public mutating func append(int64 values: [Int64], shape: [Int], named name: String) {
        appendIntegers(values, dtype: .int64, shape: shape, named: name)
    }

    /// Appends a tensor of 32-bit integers (dtype `I32`) with `shape`.
    ///
    /// - Precondition: `values.count` is the product of `shape`; the name is new.
    public mutating func append(int32 values: [Int32], shape: [Int], named name: String) {
        appendIntegers(values, dtype: .int32, shape: shape, named: name)
    }

    private mutating func appendIntegers<Integer: FixedWidthInteger>(
        _ values: [Integer], dtype: SafeTensorsDType, shape: [Int], named name: String
    ) {
        precondition(values.count == Tensor.elementCount(of: shape), "\(values.count) values do not fill shape \(shape)")
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
    public func tensor(named name: String) throws -> Tensor {
        let entry = try requireEntry(name, dtypes: [.float32])
        return data.withUnsafeBytes { source in
            Tensor(shape: entry.shape) { destination in
                UnsafeMutableRawBufferPointer(destination).copyMemory(from: UnsafeRawBufferPointer(rebasing: source[entry.byteRange]))
            }
        }
    }

    /// The integer tensor `name` (dtype `I64` or `I32`), widened to `Int64`, in row-major order.
    ///
    /// - Throws: ``SafeTensorsError`` `.missingTensor` or `.wrongDType`.
    public func integers(named name: String) throws -> [Int64] {
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
            throw SafeTensorsError(.wrongDType, path: path, "tensor '\(name)' has dtype \(entry.dtype.rawValue), expected \(expected)")
        }
        return entry
    }

    // MARK: - Checksum

    /// The CRC-32C of the data section.
    public var dataChecksum: UInt32 {
        var crc = CRC32C()
        data.withUnsafeBytes { crc.update($0) }
        return crc.value
    }

    static func hexadecimal(_ value: UInt32) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 8 - digits.count) + digits
    }

    // MARK: - Writing

    /// Writes the file atomically to `path`, recording the data section's CRC-32C in the metadata.
    ///
    /// - Throws: ``SafeTensorsError`` `.fileSystem` when the file cannot be created, written,
    ///   synced or renamed into place; `path` is then unchanged and no temporary file remains.
    public func write(to path: String) throws {
        var storedMetadata = metadata
        storedMetadata[Self.checksumKey] = Self.hexadecimal(dataChecksum)
        var tensors: [String: SafeTensorsHeader.TensorInfo] = [:]
        for entry in entries {
            tensors[entry.name] = .init(
                dtype: entry.dtype.rawValue, shape: entry.shape,
                dataOffsets: [entry.byteRange.lowerBound, entry.byteRange.upperBound])
        }
        var json: [UInt8]
        do {
            json = try SafeTensorsHeader(tensors: tensors, metadata: storedMetadata).encoded()
        } catch {
            throw SafeTensorsError(.malformedHeader, path: path, "cannot encode the header as JSON: \(error)")
        }
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
    /// - Throws: ``SafeTensorsError`` naming `path` and the problem: `.fileSystem`, `.truncated`
    ///   (shorter than the header length or the data offsets say), `.malformedHeader` (absurd
    ///   length, not JSON, wrong field types), `.unsupportedDType`, `.invalidLayout` (overlapping,
    ///   out-of-range or gapped offsets, size ≠ dtype × shape, trailing bytes), `.checksumMismatch`.
    public init(contentsOf path: String) throws {
        self.path = path
        self.metadata = [:]
        let (headerBytes, dataSection) = try POSIXFile.withOpenFile(path) { descriptor, fileSize in
            guard fileSize >= 8 else {
                throw SafeTensorsError(.truncated, path: path, "file has \(fileSize) bytes, fewer than the 8-byte header length")
            }
            var lengthField: UInt64 = 0
            try withUnsafeMutableBytes(of: &lengthField) { bytes in
                try POSIXFile.readExactly(bytes, from: descriptor, path: path)
            }
            let headerLength = UInt64(littleEndian: lengthField)
            guard headerLength <= UInt64(Self.maximumHeaderLength) else {
                throw SafeTensorsError(.malformedHeader, path: path, "header length \(headerLength) is absurd (limit \(Self.maximumHeaderLength) bytes); not a safetensors file?")
            }
            guard headerLength <= UInt64(fileSize - 8) else {
                throw SafeTensorsError(.truncated, path: path, "header length says \(headerLength) bytes but only \(fileSize - 8) follow the length field")
            }
            let header = try Self.readBytes(Int(headerLength), from: descriptor, path: path)
            let dataSection = try Self.readBytes(fileSize - 8 - Int(headerLength), from: descriptor, path: path)
            return (header, dataSection)
        }
        data = dataSection
        try parseHeader(headerBytes)
        try verifyChecksum()
    }

    private static func readBytes(_ count: Int, from descriptor: Int32, path: String) throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        try bytes.withUnsafeMutableBytes { buffer in
            try POSIXFile.readExactly(buffer, from: descriptor, path: path)
        }
        return bytes
    }

    private mutating func parseHeader(_ headerBytes: [UInt8]) throws {
        func malformed(_ message: String) -> SafeTensorsError { SafeTensorsError(.malformedHeader, path: path, message) }
        guard headerBytes.first == UInt8(ascii: "{") else {
            throw malformed("header does not start with '{'; not a safetensors file?")
        }
        let header: SafeTensorsHeader
        switch SafeTensorsHeader.decode(headerBytes) {
        case .success(let decoded): header = decoded
        case .failure(let problem): throw malformed(problem.description)
        }
        var parsed: [Entry] = []
        for (name, info) in header.tensors {
            parsed.append(try parseEntry(name: name, info: info))
        }
        metadata = header.metadata ?? [:]
        parsed.sort { ($0.byteRange.lowerBound, $0.byteRange.upperBound) < ($1.byteRange.lowerBound, $1.byteRange.upperBound) }
        try validateLayout(parsed)
        entries = parsed
        entryIndices = Dictionary(uniqueKeysWithValues: parsed.enumerated().map { ($1.name, $0) })
    }

    private func parseEntry(name: String, info: SafeTensorsHeader.TensorInfo) throws -> Entry {
        func malformed(_ message: String) -> SafeTensorsError {
            SafeTensorsError(.malformedHeader, path: path, "tensor '\(name)': \(message)")
        }
        let dtypeName = info.dtype
        guard let dtype = SafeTensorsDType(rawValue: dtypeName) else {
            let supported = SafeTensorsDType.allCases.map(\.rawValue).joined(separator: ", ")
            throw SafeTensorsError(.unsupportedDType, path: path, "tensor '\(name)': dtype '\(dtypeName)' is not supported (supported: \(supported))")
        }
        let shape = info.shape
        guard shape.allSatisfy({ $0 >= 0 }) else {
            throw malformed("'shape' must be an array of non-negative integers")
        }
        let offsets = info.dataOffsets
        guard offsets.count == 2, offsets[0] >= 0, offsets[0] <= offsets[1] else {
            throw malformed("'data_offsets' must be [begin, end] with 0 ≤ begin ≤ end")
        }
        let (elements, elementsOverflow) = shape.reduce((1, false)) { partial, extent in
            let product = partial.0.multipliedReportingOverflow(by: extent)
            return (product.partialValue, partial.1 || product.overflow)
        }
        let (expectedBytes, bytesOverflow) = elements.multipliedReportingOverflow(by: dtype.byteWidth)
        let storedBytes = offsets[1] - offsets[0]
        guard !elementsOverflow, !bytesOverflow, expectedBytes == storedBytes else {
            throw SafeTensorsError(.invalidLayout, path: path, "tensor '\(name)': \(dtype.rawValue) shape \(shape) needs \(elementsOverflow || bytesOverflow ? "more than Int.max" : "\(expectedBytes)") bytes but data_offsets span \(storedBytes)")
        }
        return Entry(name: name, dtype: dtype, shape: shape, byteRange: offsets[0]..<offsets[1])
    }

    /// Checks that the sorted entries tile the data section exactly.
    private func validateLayout(_ sorted: [Entry]) throws {
        var position = 0
        var previousName: String?
        for entry in sorted {
            let range = entry.byteRange
            guard range.lowerBound >= position else {
                throw SafeTensorsError(.invalidLayout, path: path, "tensor '\(entry.name)' bytes \(range) overlap tensor '\(previousName ?? "")'")
            }
            guard range.lowerBound == position else {
                throw SafeTensorsError(.invalidLayout, path: path, "gap of \(range.lowerBound - position) bytes before tensor '\(entry.name)' at offset \(position)")
            }
            guard range.upperBound <= data.count else {
                throw SafeTensorsError(.truncated, path: path, "tensor '\(entry.name)' ends at data offset \(range.upperBound) but the data section has only \(data.count) bytes (file truncated?)")
            }
            position = range.upperBound
            previousName = entry.name
        }
        guard position == data.count else {
            throw SafeTensorsError(.invalidLayout, path: path, "\(data.count - position) bytes of trailing data after the last tensor")
        }
    }

    private func verifyChecksum() throws {
        guard let recorded = metadata[Self.checksumKey] else { return }
        let actual = Self.hexadecimal(dataChecksum)
        guard recorded.lowercased() == actual else {
            throw SafeTensorsError(.checksumMismatch, path: path, "data checksum mismatch: the header records CRC-32C \(recorded) but the data has \(actual); the file is corrupted")
        }
    }
}
