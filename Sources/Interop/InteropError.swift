// `InteropError`, why a weights file could not be exported, imported or averaged: a code, the file,
// where in it the problem is and what was expected.

/// Why `model export`, `model import`, `model average` or `train --init-from` could not use or write a file.
///
/// The description names the file, the place inside it when there is one (a protobuf record, a
/// tensor name) and what was expected, e.g. `'net.ckpt': value 12 'fc.weight': tensor_type
/// 'Float16' is not supported; expected Float32`.
package struct InteropError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The broad reason.
    package enum Code: Sendable, Equatable {
        /// The output path names a directory (or its folder does not exist).
        case badOutputPath
        /// The file ends inside a record.
        case truncated
        /// The bytes are not the protobuf message expected.
        case malformed
        /// A tensor's element type cannot be read.
        case unsupportedDType
        /// Tensor names or shapes do not match the network.
        case mismatch
        /// The file is none of the weights formats read (`train --init-from`).
        case unknownFormat
    }

    package var code: Code
    /// The file read or written.
    package var file: String
    /// Where in the file, e.g. `value 3 'conv1.weight'`; `nil` for the file as a whole.
    package var location: String?
    /// What is wrong and what was expected.
    package var message: String

    package init(_ code: Code, file: String, location: String? = nil, _ message: String) {
        self.code = code
        self.file = file
        self.location = location
        self.message = message
    }

    package var description: String {
        if let location { return "'\(file)': \(location): \(message)" }
        return "'\(file)': \(message)"
    }
}
