// The protobuf wire format's writing side, hand-written so no protobuf library is needed: ONNX export
// (Interop) and the coordinator's TensorBoard events both encode their messages with it.

/// Appends protobuf fields to a byte buffer (proto2/proto3 wire format, fields in the order written).
package struct ProtobufWriter {
    package private(set) var bytes: [UInt8] = []

    package init() {}

    private enum WireType: UInt64 {
        case varint = 0
        case fixed64 = 1
        case lengthDelimited = 2
        case fixed32 = 5
    }

    private mutating func varint(_ value: UInt64) {
        var rest = value
        while rest >= 0x80 {
            bytes.append(UInt8(rest & 0x7F) | 0x80)
            rest >>= 7
        }
        bytes.append(UInt8(rest))
    }

    private mutating func key(_ field: Int, _ type: WireType) { varint(UInt64(field) << 3 | type.rawValue) }

    /// An `int64`/`int32`/enum field (negative values take ten bytes, as protobuf encodes them).
    package mutating func integer(_ field: Int, _ value: Int) {
        key(field, .varint)
        varint(UInt64(bitPattern: Int64(value)))
    }

    /// A `double` field.
    package mutating func double(_ field: Int, _ value: Double) {
        key(field, .fixed64)
        withUnsafeBytes(of: value.bitPattern.littleEndian) { bytes.append(contentsOf: $0) }
    }

    /// A `float` field.
    package mutating func float(_ field: Int, _ value: Float) {
        key(field, .fixed32)
        withUnsafeBytes(of: value.bitPattern.littleEndian) { bytes.append(contentsOf: $0) }
    }

    /// A `bytes` field.
    package mutating func bytes(_ field: Int, _ data: UnsafeRawBufferPointer) {
        key(field, .lengthDelimited)
        varint(UInt64(data.count))
        bytes.append(contentsOf: data)
    }

    /// A `string` field.
    package mutating func string(_ field: Int, _ text: String) {
        var text = text
        text.withUTF8 { bytes(field, UnsafeRawBufferPointer($0)) }
    }

    /// A packed `repeated int64` field.
    package mutating func packedIntegers(_ field: Int, _ values: [Int]) {
        var packed = ProtobufWriter()
        for value in values { packed.varint(UInt64(bitPattern: Int64(value))) }
        packed.bytes.withUnsafeBytes { bytes(field, $0) }
    }

    /// An embedded message field whose contents `body` writes.
    package mutating func message(_ field: Int, _ body: (inout ProtobufWriter) -> Void) {
        var nested = ProtobufWriter()
        body(&nested)
        nested.bytes.withUnsafeBytes { bytes(field, $0) }
    }
}
