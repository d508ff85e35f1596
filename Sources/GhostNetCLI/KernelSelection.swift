// Re-executes the program once with OPENBLAS_CORETYPE set, so OpenBLAS loads the kernels that fit
// this CPU (it reads the variable before `main`).

import Foundation
import TensorEngine

#if canImport(Glibc)
import Glibc
#endif

/// Makes OpenBLAS load the kernels that fit this CPU, by re-executing the program once with
/// `OPENBLAS_CORETYPE` set.
///
/// OpenBLAS reads the variable in its load-time constructor, before `main`, so setting it later has
/// no effect. `execv` keeps the process id, so under `mpirun` the launcher still sees the same rank
/// process (MPI is not initialised yet at this point). A value the user set is never overridden.
enum KernelSelection {
    /// Set in the re-executed process so a failed selection can never loop.
    static let reexecMarker = "GHOSTNET_OPENBLAS_REEXEC"

    static func reexecWithPreferredKernelsIfNeeded() {
        let environment = ProcessInfo.processInfo.environment
        guard environment[OpenBLASRuntime.coreTypeVariable] == nil,
            environment[reexecMarker] == nil,
            let coreType = OpenBLASRuntime.preferredCoreType(for: .current)
        else { return }
        setenv(OpenBLASRuntime.coreTypeVariable, coreType, 1)
        setenv(reexecMarker, coreType, 1)

        var arguments = CommandLine.arguments.map { strdup($0) }
        arguments.append(nil)
        execv("/proc/self/exe", &arguments)
        // Only reached when exec failed: carry on with OpenBLAS's own choice.
        let reason = String(cString: strerror(errno))
        StandardError.print(
            "warning: could not re-execute with \(OpenBLASRuntime.coreTypeVariable)=\(coreType): \(reason)")
    }
}
