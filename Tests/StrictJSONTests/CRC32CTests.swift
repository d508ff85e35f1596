// CRC-32C (shared by safetensors checkpoints and TensorBoard's TFRecord framing): the standard check
// values and the same result when fed in pieces.

import StrictJSON
import Testing

@Suite struct CRC32CTests {
    @Test func crc32cMatchesTheStandardCheckValue() {
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
        #expect(CRC32C.checksum([]) == 0)
        // 32 zero bytes, RFC 3720 B.4.
        #expect(CRC32C.checksum([UInt8](repeating: 0, count: 32)) == 0x8A91_36AA)
    }

    @Test func crc32cIsTheSameWhenFedInPieces() {
        let bytes = (0..<1000).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 >> 3) }
        var pieces = CRC32C()
        bytes.withUnsafeBytes { all in
            for range in [0..<3, 3..<11, 11..<500, 500..<1000] {
                pieces.update(UnsafeRawBufferPointer(rebasing: all[range]))
            }
        }
        #expect(pieces.value == CRC32C.checksum(bytes))
    }
}
