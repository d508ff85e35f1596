// Deterministic input mutation for the parser fuzz tests (JSON, rank tables, JPEG): the same seed
// always gives the same inputs, so a failure names an input that can be rebuilt and debugged.

import TensorEngine

/// Derives malformed variants of valid inputs by stacking 1-4 random edits: bit flips, byte
/// overwrites with boundary values, inserted or deleted runs, duplicated ranges, truncation,
/// format tokens spliced in, and 16-bit big-endian fields set to extremes (JPEG sizes and lengths).
package struct ByteMutator {
    /// Byte sequences of the format under test, spliced in whole (`"\u"`, `{`, a JPEG marker…).
    package var tokens: [[UInt8]]
    private var random: SeededRandom

    static let boundaryBytes: [UInt8] = [0x00, 0x01, 0x0A, 0x20, 0x7F, 0x80, 0xC0, 0xFF]
    static let boundaryWords: [UInt16] = [0, 1, 0x7FFF, 0x8000, 0xFFFE, 0xFFFF, 29_999]

    package init(seed: UInt64, tokens: [[UInt8]] = []) {
        self.tokens = tokens
        random = SeededRandom(seed: seed)
    }

    /// `count` mutants of `seeds`, taken in turn.
    package mutating func mutants(of seeds: [[UInt8]], count: Int) -> [[UInt8]] {
        (0..<count).map { mutate(seeds[$0 % seeds.count]) }
    }

    /// One mutant of `input`.
    package mutating func mutate(_ input: [UInt8]) -> [UInt8] {
        var bytes = input
        for _ in 0..<Int.random(in: 1...4, using: &random) { edit(&bytes) }
        return bytes
    }

    private mutating func edit(_ bytes: inout [UInt8]) {
        guard !bytes.isEmpty else {
            bytes = tokens.randomElement(using: &random) ?? [0]
            return
        }
        let position = Int.random(in: 0..<bytes.count, using: &random)
        switch Int.random(in: 0..<8, using: &random) {
        case 0: bytes[position] ^= 1 << UInt8.random(in: 0..<8, using: &random)
        case 1: bytes[position] = Self.boundaryBytes.randomElement(using: &random)!
        case 2:
            let run = (0..<Int.random(in: 1...8, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
            bytes.insert(contentsOf: run, at: position)
        case 3: bytes.removeSubrange(position..<min(bytes.count, position + Int.random(in: 1...16, using: &random)))
        case 4:
            let end = min(bytes.count, position + Int.random(in: 1...64, using: &random))
            let copy = bytes[position..<end]
            bytes.insert(contentsOf: copy, at: Int.random(in: 0...bytes.count, using: &random))
        case 5: bytes.removeSubrange(position...)
        case 6: bytes.insert(contentsOf: tokens.randomElement(using: &random) ?? [0xFF], at: position)
        default:
            guard position + 1 < bytes.count else { return }
            let word = Self.boundaryWords.randomElement(using: &random)!
            bytes[position] = UInt8(word >> 8)
            bytes[position + 1] = UInt8(word & 0xFF)
        }
    }
}
