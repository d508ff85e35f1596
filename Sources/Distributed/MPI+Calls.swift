// The one wrapper over the MPI C calls (via CMPI): each call's return code checked in one place and turned
// into `MPIError` with the library's own explanation.

internal import CMPI

/// An error an MPI call returned, with the library's own explanation.
package struct MPIError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The MPI error code (an error class such as `MPI_ERR_TRUNCATE` or an implementation code).
    package struct Code: RawRepresentable, Sendable, Hashable {
        package var rawValue: Int32
        package init(rawValue: Int32) { self.rawValue = rawValue }
    }

    package var code: Code
    /// The MPI function that failed, e.g. `MPI_Iallreduce`.
    package var function: String
    /// `MPI_Error_string` for the code.
    package var message: String

    package var description: String { "\(function) failed (MPI error \(code.rawValue)): \(message)" }
}

/// Thin wrappers over the MPI functions this module uses: the one place that turns MPI return
/// codes into ``MPIError``. Handles come from the `CMPI_*` getters (see `CMPI/shim.h` for why).
enum MPICalls {
    static func check(_ returnCode: Int32, _ function: String) throws(CommunicatorError) {
        guard returnCode != CMPI_success() else { return }
        throw .mpi(MPIError(code: .init(rawValue: returnCode), function: function, message: errorString(returnCode)))
    }

    static func errorString(_ code: Int32) -> String {
        var text = [CChar](repeating: 0, count: Int(CMPI_max_error_string()) + 1)
        var length: Int32 = 0
        guard MPI_Error_string(code, &text, &length) == CMPI_success() else { return "unknown error" }
        return String(filledCBuffer: text)
    }

    static func isInitialized() -> Bool {
        var flag: Int32 = 0
        MPI_Initialized(&flag)
        return flag != 0
    }

    static func isFinalized() -> Bool {
        var flag: Int32 = 0
        MPI_Finalized(&flag)
        return flag != 0
    }

    /// `MPI_Init_thread` asking for `MPI_THREAD_SERIALIZED` (any thread may call MPI, one at a
    /// time), then switches `MPI_COMM_WORLD` to returning errors instead of aborting.
    static func initializeSerialized() throws(CommunicatorError) {
        var provided: Int32 = 0
        try check(MPI_Init_thread(nil, nil, CMPI_thread_serialized(), &provided), "MPI_Init_thread")
        guard provided >= CMPI_thread_serialized() else {
            throw .mpi(
                MPIError(
                    code: .init(rawValue: provided), function: "MPI_Init_thread",
                    message: "the MPI library provides thread level \(provided), below MPI_THREAD_SERIALIZED"))
        }
        try check(MPI_Comm_set_errhandler(CMPI_comm_world(), CMPI_errors_return()), "MPI_Comm_set_errhandler")
    }

    static func finalize() throws(CommunicatorError) {
        try check(MPI_Finalize(), "MPI_Finalize")
    }

    static func worldRank() throws(CommunicatorError) -> Int {
        var rank: Int32 = 0
        try check(MPI_Comm_rank(CMPI_comm_world(), &rank), "MPI_Comm_rank")
        return Int(rank)
    }

    static func worldSize() throws(CommunicatorError) -> Int {
        var size: Int32 = 0
        try check(MPI_Comm_size(CMPI_comm_world(), &size), "MPI_Comm_size")
        return Int(size)
    }

    static func abortWorld(exitCode: Int32) {
        MPI_Abort(CMPI_comm_world(), exitCode)
    }

    /// `MPI_Ibarrier` on the world communicator.
    static func startBarrier(into request: inout MPI_Request?) throws(CommunicatorError) {
        try check(MPI_Ibarrier(CMPI_comm_world(), &request), "MPI_Ibarrier")
    }

    /// `MPI_Ibcast` of `count` floats.
    static func startBroadcast(
        _ base: UnsafeMutableRawPointer?, count: Int32, root: Int32, into request: inout MPI_Request?
    ) throws(CommunicatorError) {
        try check(MPI_Ibcast(base, count, CMPI_float(), root, CMPI_comm_world(), &request), "MPI_Ibcast")
    }

    /// In-place `MPI_Iallreduce` with `MPI_SUM`.
    static func startAllreduceSum(
        _ base: UnsafeMutableRawPointer?, count: Int32, kind: ReductionScalarKind, into request: inout MPI_Request?
    ) throws(CommunicatorError) {
        let datatype =
            switch kind {
            case .float32: CMPI_float()
            case .float64: CMPI_double()
            case .int64: CMPI_int64()
            }
        try check(
            MPI_Iallreduce(CMPI_in_place(), base, count, datatype, CMPI_op_sum(), CMPI_comm_world(), &request),
            "MPI_Iallreduce")
    }

    /// In-place `MPI_Iallreduce` of 64-bit integers with `MPI_MAX`.
    static func startAllreduceMax(
        _ base: UnsafeMutableRawPointer?, count: Int32, into request: inout MPI_Request?
    ) throws(CommunicatorError) {
        try check(
            MPI_Iallreduce(CMPI_in_place(), base, count, CMPI_int64(), CMPI_op_max(), CMPI_comm_world(), &request),
            "MPI_Iallreduce")
    }

    /// `MPI_Iallgather` of `count` bytes from every rank into `destination`, in rank order.
    static func startAllGather(
        _ base: UnsafeRawPointer?, count: Int32, into destination: UnsafeMutableRawPointer?, request: inout MPI_Request?
    ) throws(CommunicatorError) {
        try check(
            MPI_Iallgather(base, count, CMPI_byte(), destination, count, CMPI_byte(), CMPI_comm_world(), &request),
            "MPI_Iallgather")
    }

    /// `MPI_Allreduce` (blocking, in place) of `count` floats: the baseline of the benchmark.
    static func blockingAllreduceSum(_ base: UnsafeMutableRawPointer?, count: Int32) throws(CommunicatorError) {
        try check(
            MPI_Allreduce(CMPI_in_place(), base, count, CMPI_float(), CMPI_op_sum(), CMPI_comm_world()),
            "MPI_Allreduce")
    }

    /// `MPI_Test`; true once the request has completed.
    static func test(_ request: inout MPI_Request?) throws(CommunicatorError) -> Bool {
        var flag: Int32 = 0
        try check(MPI_Test(&request, &flag, CMPI_status_ignore()), "MPI_Test")
        return flag != 0
    }

    static func nullRequest() -> MPI_Request? { CMPI_request_null() }
}
