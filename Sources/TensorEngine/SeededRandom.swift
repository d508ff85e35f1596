// Reproducible randomness: a xoshiro256** generator keyed by a seed and stream identifiers, so every random
// decision in training is independent of thread timing and work split.

/// A fast, reproducible random number generator (xoshiro256**), keyed by a seed and any number of
/// stream identifiers.
///
/// Every random decision in training is drawn from a generator keyed by *what* it is for, e.g.
/// `SeededRandom(seed: seed, streams: epoch, sampleIndex)` for one image's augmentation, so results do
/// not depend on thread timing or on how work is split across threads and ranks.
package struct SeededRandom: RandomNumberGenerator, Sendable {
    private var state: (UInt64, UInt64, UInt64, UInt64)

    /// Creates the generator for `seed` and the stream path `streams` (order matters).
    package init(seed: UInt64, streams: UInt64...) {
        self.init(seed: seed, streamPath: streams)
    }

    /// Creates the generator for `seed` and the stream path `streamPath` (order matters).
    package init(seed: UInt64, streamPath: [UInt64]) {
        var key = SeededRandom.splitMix(seed ^ 0x6A09_E667_F3BC_C908)
        for stream in streamPath {
            key = SeededRandom.splitMix(key ^ SeededRandom.splitMix(stream &+ 0x9E37_79B9_7F4A_7C15))
        }
        var mixer = key
        func nextMixed() -> UInt64 {
            mixer &+= 0x9E37_79B9_7F4A_7C15
            return SeededRandom.splitMix(mixer)
        }
        state = (nextMixed(), nextMixed(), nextMixed(), nextMixed())
    }

    /// SplitMix64's finaliser: a bijective 64-bit mix.
    private static func splitMix(_ value: UInt64) -> UInt64 {
        var z = value
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    package mutating func next() -> UInt64 {
        let result = rotateLeft(state.1 &* 5, 7) &* 9
        let shifted = state.1 << 17
        state.2 ^= state.0
        state.3 ^= state.1
        state.1 ^= state.2
        state.0 ^= state.3
        state.2 ^= shifted
        state.3 = rotateLeft(state.3, 45)
        return result
    }

    private func rotateLeft(_ value: UInt64, _ count: UInt64) -> UInt64 {
        (value << count) | (value >> (64 - count))
    }

    /// A uniform `Double` in [0, 1) with 53 random bits.
    package mutating func nextUnitDouble() -> Double {
        Double(next() >> 11) * 0x1.0p-53
    }

    /// A standard normal sample (Box–Muller).
    package mutating func nextGaussian() -> Double {
        let u1 = max(nextUnitDouble(), .leastNonzeroMagnitude)
        let u2 = nextUnitDouble()
        return (-2 * _log(u1)).squareRoot() * _cos(2 * .pi * u2)
    }
}

#if canImport(Glibc)
import Glibc
private func _log(_ x: Double) -> Double { Glibc.log(x) }
private func _cos(_ x: Double) -> Double { Glibc.cos(x) }
#endif
