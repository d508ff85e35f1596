// The one translation of Foundation's file errors into words. On Linux their descriptions are often
// only "The operation could not be completed. (NSCocoaErrorDomain error 512.)"; users get the cause
// ("permission denied") and the path instead.

import Foundation

/// Human-readable reasons for failed file operations.
package enum FileErrorText {
    /// Why the operation on `path` (when known; else the path the error names) failed, e.g.
    /// `permission denied`, `is a directory` or `no space left on device`.
    package static func reason(_ original: any Error, path: String? = nil) -> String {
        let error = original as NSError
        if error.domain == NSPOSIXErrorDomain { return posixReason(error.code) }
        // Foundation keeps the errno it got as the underlying error.
        if let underlying = error.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
            return posixReason(underlying.code)
        }
        guard error.domain == NSCocoaErrorDomain else { return "\(original)" }
        switch CocoaError.Code(rawValue: error.code) {
        case .fileNoSuchFile, .fileReadNoSuchFile: return posixReason(Int(ENOENT))
        case .fileReadNoPermission, .fileWriteNoPermission: return posixReason(Int(EACCES))
        case .fileWriteOutOfSpace: return posixReason(Int(ENOSPC))
        case .fileWriteVolumeReadOnly: return posixReason(Int(EROFS))
        case .fileWriteFileExists: return posixReason(Int(EEXIST))
        case .fileReadTooLarge: return "the file is too large"
        case .fileReadCorruptFile: return "the file is damaged or not in the expected format"
        case .fileReadInapplicableStringEncoding, .fileWriteInapplicableStringEncoding:
            return "the text is not valid UTF-8"
        case .fileReadInvalidFileName, .fileWriteInvalidFileName: return "the file name is not valid"
        case .fileReadUnknown, .fileWriteUnknown:
            // Foundation gives no cause for these; the commonest one is a folder where a file belongs.
            var isDirectory: ObjCBool = false
            if let path = path ?? error.userInfo[NSFilePathErrorKey] as? String,
                FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue
            {
                return posixReason(Int(EISDIR))
            }
            return error.code == CocoaError.Code.fileReadUnknown.rawValue
                ? "the file cannot be read" : "the file cannot be written"
        default: return "the file operation failed (Foundation error \(error.code))"
        }
    }

    /// `PATH: reason` for a Foundation file error, taking the path from the error when it names one.
    /// Other errors are described as they describe themselves.
    package static func message(_ error: any Error, path: String? = nil) -> String {
        let bridged = error as NSError
        guard bridged.domain == NSCocoaErrorDomain || bridged.domain == NSPOSIXErrorDomain else { return "\(error)" }
        let named =
            path ?? bridged.userInfo[NSFilePathErrorKey] as? String
            ?? (bridged.userInfo[NSURLErrorKey] as? URL)?.path
        return named.map { "\($0): \(reason(error, path: $0))" } ?? reason(error)
    }

    private static func posixReason(_ code: Int) -> String {
        String(cString: strerror(Int32(code))).lowercased()
    }
}
