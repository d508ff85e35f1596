//===----------------------------------------------------------------------===//
// ghostnet-d — command-line interface
//===----------------------------------------------------------------------===//

// Before anything touches OpenBLAS: make sure it loaded the kernels that fit this CPU.
import ArgumentParser

KernelSelection.reexecWithPreferredKernelsIfNeeded()
await GhostNetCommand.main()
