// The protobuf wire format's reading side, as far as MindSpore import needs it: a reader that walks
// the fields of a message and refuses truncated or malformed input (the writer, shared with the
// coordinator's TensorBoard events, is StrictJSON's ProtobufWriter).

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
