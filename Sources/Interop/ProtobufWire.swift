// The protobuf wire format, as far as ONNX export and MindSpore import need it: a writer for varint,
// 32-bit and length-delimited fields, and a reader that walks the fields of a message and refuses
// truncated or malformed input.

/// Appends protobuf fields to a byte buffer (proto2/proto3 wire format, fields in the order written).
struct ProtobufWriter {
    private(set) var bytes: [UInt8] = []

    private enum WireType: UInt64 {
        case varint = 0
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
    mutating func integer(_ field: Int, _ value: Int) {
        key(field, .varint)
        varint(UInt64(bitPattern: Int64(value)))
    }

    /// A `float` field.
    mutating func float(_ field: Int, _ value: Float) {
        key(field, .fixed32)
        withUnsafeBytes(of: value.bitPattern.littleEndian) { bytes.append(contentsOf: $0) }
    }

    /// A `bytes` field.
    mutating func bytes(_ field: Int, _ data: UnsafeRawBufferPointer) {
        key(field, .lengthDelimited)
        varint(UInt64(data.count))
        bytes.append(contentsOf: data)
    }

    /// A `string` field.
    mutating func string(_ field: Int, _ text: String) {
        var text = text
        text.withUTF8 { bytes(field, UnsafeRawBufferPointer($0)) }
    }

    /// A packed `repeated int64` field.
    mutating func packedIntegers(_ field: Int, _ values: [Int]) {
        var packed = ProtobufWriter()
        for value in values { packed.varint(UInt64(bitPattern: Int64(value))) }
        packed.bytes.withUnsafeBytes { bytes(field, $0) }
    }

    /// An embedded message field whose contents `body` writes.
    mutating func message(_ field: Int, _ body: (inout ProtobufWriter) -> Void) {
        var nested = ProtobufWriter()
        body(&nested)
        nested.bytes.withUnsafeBytes { bytes(field, $0) }
    }
}

/// One field read from a message.
struct ProtobufField {
    enum Value {
        case varint(UInt64)
        case fixed64(UInt64)
        case fixed32(UInt32)
        /// The byte range of a length-delimited field's contents in the reader's buffer.
        case lengthDelimited(Range<Int>)
    }

    let number: Int
    let value: Value
}

/// Walks the fields of one protobuf message held in `bytes[range]`.
struct ProtobufReader {
    let bytes: [UInt8]
    private var position: Int
    private let end: Int
    /// The file, and the place in it, for errors.
    let file: String
    let location: String?

    init(_ bytes: [UInt8], range: Range<Int>? = nil, file: String, location: String? = nil) {
        self.bytes = bytes
        position = range?.lowerBound ?? 0
        end = range?.upperBound ?? bytes.count
        self.file = file
        self.location = location
    }

    /// The next field, or `nil` at the end of the message.
    ///
    /// - Throws: ``InteropError`` `.truncated` when a field runs past the end, `.malformed` for
    ///   an invalid key, wire type or varint.
    mutating func next() throws(InteropError) -> ProtobufField? {
        guard position < end else { return nil }
        let key = try varint()
        let number = Int(key >> 3)
        guard number > 0 else { throw error(.malformed, "field number 0 at byte \(position): not a protobuf message") }
        switch key & 7 {
        case 0:
            return ProtobufField(number: number, value: .varint(try varint()))
        case 1:
            return ProtobufField(number: number, value: .fixed64(try fixed(8)))
        case 5:
            return ProtobufField(number: number, value: .fixed32(UInt32(try fixed(4))))
        case 2:
            let length = try varint()
            guard length <= UInt64(end - position) else {
                throw error(.truncated, "field \(number) needs \(length) bytes but \(end - position) remain")
            }
            let start = position
            position += Int(length)
            return ProtobufField(number: number, value: .lengthDelimited(start..<position))
        default:
            throw error(.malformed, "field \(number) has the unsupported wire type \(key & 7)")
        }
    }

    /// Reads the integers of a `repeated int64` field, packed or not.
    func integers(_ value: ProtobufField.Value) throws(InteropError) -> [Int64] {
        switch value {
        case .varint(let raw): return [Int64(bitPattern: raw)]
        case .lengthDelimited(let range):
            var packed = ProtobufReader(bytes, range: range, file: file, location: location)
            var values: [Int64] = []
            while packed.position < packed.end { values.append(Int64(bitPattern: try packed.varint())) }
            return values
        default: throw error(.malformed, "an integer field has a fixed-width wire type")
        }
    }

    /// The UTF-8 text of a length-delimited field.
    func string(_ value: ProtobufField.Value, field: String) throws(InteropError) -> String {
        guard case .lengthDelimited(let range) = value else { throw error(.malformed, "\(field) is not a string") }
        guard let text = String(validating: bytes[range], as: UTF8.self) else {
            throw error(.malformed, "\(field) is not valid UTF-8")
        }
        return text
    }

    func error(_ code: InteropError.Code, _ message: String) -> InteropError {
        InteropError(code, file: file, location: location, message)
    }

    private mutating func varint() throws(InteropError) -> UInt64 {
        var value: UInt64 = 0
        for shift in stride(from: 0, to: 64, by: 7) {
            guard position < end else { throw error(.truncated, "the data ends inside a varint") }
            let byte = bytes[position]
            position += 1
            value |= UInt64(byte & 0x7F) << UInt64(shift)
            if byte < 0x80 { return value }
        }
        throw error(.malformed, "a varint is longer than 10 bytes")
    }

    private mutating func fixed(_ width: Int) throws(InteropError) -> UInt64 {
        guard end - position >= width else { throw error(.truncated, "the data ends inside a \(width)-byte field") }
        defer { position += width }
        return (0..<width).reduce(0) { $0 | UInt64(bytes[position + $1]) << UInt64(8 * $1) }
    }
}
