//===----------------------------------------------------------------------===//
// ghostnet-d — Distributed
//===----------------------------------------------------------------------===//

extension String {
    /// The text a C function wrote into `buffer`, up to its terminating NUL.
    init(filledCBuffer buffer: [CChar]) {
        self = buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }
}
