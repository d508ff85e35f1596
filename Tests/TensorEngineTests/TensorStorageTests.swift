// Tensor storage and the runtime around it: copy-on-write, 64-byte alignment, reshaping, the OpenBLAS
// kernel choice for AVX-512 CPUs, and the allocation counters.

import TensorEngine
import Testing
import _TestSupport

@Suite struct TensorStorageTests {
    @Test func copyOnWriteKeepsTheOriginal() {
        let original = Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 5, 6])
        var copy = original
        copy.withUnsafeMutableBufferPointer { $0[0] = 42 }
        #expect(original.scalars == [1, 2, 3, 4, 5, 6])
        #expect(copy.scalars == [42, 2, 3, 4, 5, 6])
    }

    @Test func storageIsSixtyFourByteAligned() {
        for count in [1, 3, 17, 1000] {
            let tensor = Tensor(shape: [count])
            let address = tensor.withUnsafeBufferPointer { Int(bitPattern: $0.baseAddress) }
            #expect(address % 64 == 0)
        }
    }

    @Test func reshapeKeepsElements() {
        let tensor = Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 5, 6]).reshaped(to: [3, 2])
        #expect(tensor.shape == [3, 2])
        #expect(tensor.scalars == [1, 2, 3, 4, 5, 6])
    }

    @Test func reshapeToTheWrongCountNamesBothShapes() async {
        await #expect(processExitsWith: .failure) {
            _ = Tensor(shape: [2, 3]).reshaped(to: [4, 2])
        }
    }
}

@Suite struct KernelSelectionTests {
    @Test func avx512MachinesGetAVX512Kernels() {
        var features = CPUFeatures()
        features.avx2 = true
        features.fma = true
        features.osSavesAVXState = true
        #expect(OpenBLASRuntime.preferredCoreType(for: features) == "Haswell")
        features.avx512Foundation = true
        features.avx512ByteWord = true
        features.avx512VectorLength = true
        features.avx512DoubleQuad = true
        features.avx512ConflictDetection = true
        #expect(OpenBLASRuntime.preferredCoreType(for: features) == "Haswell", "OS does not save ZMM state")
        features.osSavesAVX512State = true
        #expect(OpenBLASRuntime.preferredCoreType(for: features) == "SkylakeX")
        features.avx512BFloat16 = true
        #expect(OpenBLASRuntime.preferredCoreType(for: features) == "Cooperlake")
        #expect(OpenBLASRuntime.preferredCoreType(for: CPUFeatures()) == nil)
    }
}

@Suite struct TensorAllocationsTests {
    @Test func countsLargeAllocationsAndReleases() {
        let before = TensorAllocations.current
        do {
            let small = Tensor(shape: [16])
            let large = Tensor(shape: [TensorAllocations.largeThreshold / 4])
            let made = TensorAllocations.current.since(before)
            // Other tests run in parallel and allocate too, so these are lower bounds.
            #expect(made.allocations >= 2)
            #expect(made.largeAllocations + made.largeReuses >= 1)
            #expect(small.count + large.count > 0)
        }
    }
}
