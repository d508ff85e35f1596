// A Foundation error that reaches the top of a command, told as `PATH: reason` (see FileErrorText).

import Foundation
import TensorEngine

/// A Foundation error (Cocoa or POSIX domain) as the user sees it: the file and the cause, never a
/// bare `NSCocoaErrorDomain error 512`.
struct FoundationFileError: Error, CustomStringConvertible {
    let description: String

    /// Nil for errors that are not Foundation's, which describe themselves.
    init?(_ error: any Error) {
        let domain = (error as NSError).domain
        guard domain == NSCocoaErrorDomain || domain == NSPOSIXErrorDomain else { return nil }
        description = FileErrorText.message(error)
    }
}
