// CRC-32C, the one checksum of the formats written here: safetensors checkpoints record it for their
// data section, TensorBoard's TFRecord framing masks it over each record's length and data. It lives
// in this bottom layer so the checkpoints and the coordinator share one implementation.

/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of iSCSI, ext4 and
/// Google's CRC32C library, computed with slicing-by-8 tables (eight bytes per step).
///
/// Checkpoints record the CRC-32C of their data section so any flipped or lost byte is detected
/// on load; TFRecord files (TensorBoard) frame every record with it. The standard check value holds: `CRC32C.checksum("123456789")` is `0xE3069283`.
package struct CRC32C: Sendable {
    /// The checksum of the bytes seen so far.
    package var value: UInt32 { ~state }

    /// `value` as the 8 lowercase hexadecimal digits that files and messages show.
    package static func hexadecimal(_ value: UInt32) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 8 - digits.count) + digits
    }

    private var state: UInt32 = 0xFFFF_FFFF

    package init() {}

    /// Adds `bytes` to the checksum.
    package mutating func update(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress else { return }
        let tables = CRC32C.tables
        var crc = state
        var offset = 0
        let count = bytes.count
        tables.withUnsafeBufferPointer { table in
            while offset + 8 <= count {
                let word =
                    UInt64(littleEndian: base.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
                    ^ UInt64(crc)
                crc =
                    table[7 &* 256 &+ Int(word & 0xFF)] ^ table[6 &* 256 &+ Int((word >> 8) & 0xFF)]
                    ^ table[5 &* 256 &+ Int((word >> 16) & 0xFF)] ^ table[4 &* 256 &+ Int((word >> 24) & 0xFF)]
                    ^ table[3 &* 256 &+ Int((word >> 32) & 0xFF)] ^ table[2 &* 256 &+ Int((word >> 40) & 0xFF)]
                    ^ table[1 &* 256 &+ Int((word >> 48) & 0xFF)] ^ table[Int(word >> 56)]
                offset &+= 8
            }
            while offset < count {
                let byte = base.load(fromByteOffset: offset, as: UInt8.self)
                crc = table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8)
                offset &+= 1
            }
        }
        state = crc
    }

    /// The CRC-32C of `bytes`.
    package static func checksum(_ bytes: some Sequence<UInt8>) -> UInt32 {
        var crc = CRC32C()
        let contiguous = Array(bytes)
        contiguous.withUnsafeBytes { crc.update($0) }
        return crc.value
    }

    /// `tables[k·256 + b]` is the CRC of byte `b` followed by `k` zero bytes.
    private static let tables: [UInt32] = {
        var tables = [UInt32](repeating: 0, count: 8 * 256)
        for byte in 0..<256 {
            var crc = UInt32(byte)
            for _ in 0..<8 { crc = crc & 1 != 0 ? (crc >> 1) ^ 0x82F6_3B78 : crc >> 1 }
            tables[byte] = crc
        }
        for slice in 1..<8 {
            for byte in 0..<256 {
                let previous = tables[(slice - 1) * 256 + byte]
                tables[slice * 256 + byte] = tables[Int(previous & 0xFF)] ^ (previous >> 8)
            }
        }
        return tables
    }()
}
