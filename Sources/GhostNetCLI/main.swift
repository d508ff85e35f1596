//===----------------------------------------------------------------------===//
// ghostnet-d — command-line interface
//===----------------------------------------------------------------------===//

import ArgumentParser

// Before anything touches OpenBLAS: make sure it loaded the kernels that fit this CPU.
KernelSelection.reexecWithPreferredKernelsIfNeeded()
await GhostNetCommand.main()
