// `ghostnet-d system`: the CPU features, OpenBLAS and packed kernels, the bf16 kernel and thread count in use.

import ArgumentParser
import Foundation
import TensorEngine

/// `ghostnet-d system`: what this machine offers the trainer.
struct SystemCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "system",
        abstract: "Show the CPU features, the OpenBLAS, packed sgemm and bf16 kernels in use and the thread count.")

    func run() throws {
        let features = CPUFeatures.current
        let environment = ProcessInfo.processInfo.environment
        let userCoreType =
            environment[KernelSelection.reexecMarker] == nil
            ? environment[OpenBLASRuntime.coreTypeVariable] : nil
        print(
            "cpu avx2+fma: \(features.hasUsableAVX2), avx512: \(features.hasUsableAVX512), avx512-bf16: "
                + "\(features.hasUsableAVX512BFloat16)")
        print(
            "preferred OpenBLAS core type: "
                + "\(OpenBLASRuntime.preferredCoreType(for: features) ?? "(OpenBLAS default)")")
        if let userCoreType {
            print("\(OpenBLASRuntime.coreTypeVariable) set by the user: \(userCoreType)")
        }
        print("OpenBLAS kernel: \(OpenBLASRuntime.kernelName)")
        print("packed sgemm kernels for thin products: \(GEMM.packedKernel.packedLabel)")
        print("bf16 products: \(BFloat16Kernel.preferred.label)")
        print("trainer.precision auto resolves to: \(PrecisionChoice.auto.resolved)")
        print("OpenBLAS threads: \(OpenBLASRuntime.threadCount)")
        print("OpenBLAS config: \(OpenBLASRuntime.configuration)")
    }
}
