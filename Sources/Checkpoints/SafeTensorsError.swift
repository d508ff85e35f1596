// The error of reading or writing a safetensors file: a code, the file, and what is wrong.

/// A safetensors file that cannot be read or written, with the file and the problem.
package struct SafeTensorsError: Error, CustomStringConvertible, Sendable {
    /// What went wrong, for callers that react to the kind of failure.
    package enum Kind: Sendable, Hashable {
        /// Opening, reading, writing, syncing or renaming failed (the message carries `errno`'s text).
        case fileSystem
        /// The path names a FIFO, device, socket or directory; it is refused before being opened.
        case notRegularFile
        /// The tensors need more bytes than this machine has memory.
        case tooLarge
        /// The file ends before the header or data it announces.
        case truncated
        /// The header length is absurd, or the header is not a JSON object of the safetensors form.
        case malformedHeader
        /// Tensor byte ranges overlap, leave gaps, run past the data, or disagree with dtype × shape;
        /// or bytes follow the last tensor.
        case invalidLayout
        /// A tensor's dtype is not one this program reads (F32, I64, I32).
        case unsupportedDType
        /// The data section's CRC-32C differs from the one recorded in the header.
        case checksumMismatch
        /// A requested tensor is not in the file.
        case missingTensor
        /// A requested tensor has another dtype than the caller needs.
        case wrongDType
    }

    package let kind: Kind
    /// The file concerned.
    package let path: String
    /// What is wrong, in words.
    package let message: String

    package init(_ kind: Kind, path: String, _ message: String) {
        self.kind = kind
        self.path = path
        self.message = message
    }

    package var description: String { "\(path): \(message)" }
}
