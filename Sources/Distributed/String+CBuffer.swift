// Reading the NUL-terminated text a C function wrote into a buffer (MPI error strings, host names and
// addresses): the one conversion the C-calling files of this module share.

extension String {
    /// The text a C function wrote into `buffer`, up to its terminating NUL.
    init(filledCBuffer buffer: [CChar]) {
        self = buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }
}
