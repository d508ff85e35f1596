// `model import --from mindspore`: reading MindSpore's `.ckpt` protobuf (checkpoint.proto) and mapping
// its parameter names (cell paths, `gamma`/`beta`/`moving_mean`/`moving_variance`) onto the PyTorch
// names of this model; every unmatched name is reported by name.

import Checkpoints
import GhostNet
import TensorEngine

/// A MindSpore checkpoint: `message Checkpoint { repeated Value value = 1; }` with
/// `Value { required string tag = 1; TensorProto tensor = 2; }` and `TensorProto { repeated int64
/// dims = 1; string tensor_type = 2; bytes tensor_content = 3; }` (little-endian contents).
package struct MindSporeCheckpoint {
    /// One named tensor of the file.
    package struct Value {
        /// The MindSpore parameter name, e.g. `layer1.base.bn1.gamma`.
        package let tag: String
        package let dims: [Int]
        /// MindSpore's type name, e.g. `Float32`.
        package let tensorType: String
        /// The raw little-endian contents.
        let content: Range<Int>
    }

    package let path: String
    package let values: [Value]
    private let bytes: [UInt8]

    /// The only element type read: MindSpore's name of IEEE float32.
    package static let float32 = "Float32"

    /// Reads and parses `path`.
    ///
    /// - Throws: ``SafeTensorsError`` for a missing or unreadable file, ``InteropError``
    ///   `.truncated` / `.malformed` for bytes that are not a complete `Checkpoint` message.
    package init(contentsOf path: String) throws {
        let bytes = try POSIXFile.withOpenFile(path) { descriptor, size in
            var bytes = [UInt8](repeating: 0, count: size)
            try bytes.withUnsafeMutableBytes { try POSIXFile.readExactly($0, from: descriptor, path: path) }
            return bytes
        }
        try self.init(bytes: bytes, path: path)
    }

    init(bytes: [UInt8], path: String) throws(InteropError) {
        self.path = path
        self.bytes = bytes
        var checkpoint = ProtobufReader(bytes, file: path)
        var values: [Value] = []
        while let field = try checkpoint.next() {
            guard field.number == 1, case .lengthDelimited(let range) = field.value else { continue }
            values.append(try Self.value(bytes, range: range, path: path, index: values.count))
        }
        guard !values.isEmpty else {
            throw InteropError(.malformed, file: path, "holds no Checkpoint.value records; expected a MindSpore .ckpt")
        }
        self.values = values
    }

    private static func value(_ bytes: [UInt8], range: Range<Int>, path: String, index: Int) throws(InteropError)
        -> Value
    {
        var reader = ProtobufReader(bytes, range: range, file: path, location: "value \(index)")
        var tag: String?
        var tensor: Range<Int>?
        while let field = try reader.next() {
            switch field.number {
            case 1: tag = try reader.string(field.value, field: "tag")
            case 2: if case .lengthDelimited(let inner) = field.value { tensor = inner }
            default: continue
            }
        }
        guard let tag else { throw reader.error(.malformed, "has no tag (field 1)") }
        let location = "value \(index) '\(tag)'"
        guard let tensor else {
            throw InteropError(.malformed, file: path, location: location, "has no tensor (field 2)")
        }
        var tensorReader = ProtobufReader(bytes, range: tensor, file: path, location: location)
        var dims: [Int64] = []
        var type = ""
        var content = tensor.upperBound..<tensor.upperBound
        while let field = try tensorReader.next() {
            switch field.number {
            case 1: dims += try tensorReader.integers(field.value)
            case 2: type = try tensorReader.string(field.value, field: "tensor_type")
            case 3: if case .lengthDelimited(let inner) = field.value { content = inner }
            default: continue
            }
        }
        guard dims.allSatisfy({ (0...(1 << 32)).contains($0) }) else {
            throw tensorReader.error(.malformed, "dims \(dims) are not sizes")
        }
        return Value(tag: tag, dims: dims.map { Int($0) }, tensorType: type, content: content)
    }

    /// The float32 tensor of `value`.
    ///
    /// - Throws: ``InteropError`` `.unsupportedDType` for another type, `.truncated` when the
    ///   contents are shorter than the dims need, `.malformed` when longer.
    func tensor(_ value: Value) throws(InteropError) -> Tensor {
        let location = "tensor '\(value.tag)'"
        guard value.tensorType == Self.float32 else {
            throw InteropError(
                .unsupportedDType, file: path, location: location,
                "tensor_type '\(value.tensorType)' is not supported; expected \(Self.float32)")
        }
        let count = value.dims.reduce(1, *)
        guard value.content.count == count * 4 else {
            throw InteropError(
                value.content.count < count * 4 ? .truncated : .malformed, file: path, location: location,
                "tensor_content has \(value.content.count) bytes; dims \(value.dims) need \(count * 4)")
        }
        return Tensor(shape: value.dims) { values in
            bytes.withUnsafeBytes { raw in
                for index in values.indices {
                    let offset = value.content.lowerBound + 4 * index
                    values[index] = Float(
                        bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: UInt32.self)))
                }
            }
        }
    }
}
