// `DataError`, the one error of the data layer: a kind to count and filter by, and a message naming the
// file or folder and what was expected.

/// A failure of the data layer: a broken dataset layout, an unreadable or undecodable image, or a
/// request the loader cannot serve. The message names the file or folder and what was expected.
package struct DataError: Error, CustomStringConvertible, Sendable, Equatable {
    /// What went wrong, coarsely, so callers can count and filter.
    package enum Kind: String, Sendable, Equatable {
        /// The folder layout is not the ImageNet layout (missing `train/`, unknown val class, …).
        case layout
        /// The file could not be opened or read, or is not a regular file (FIFO, device, directory).
        case unreadable
        /// The file is empty or not JPEG data (e.g. a PNG or text file with a .JPEG name).
        case notJPEG
        /// libjpeg failed, or warned that the data is truncated or corrupt.
        case corruptJPEG
        /// The file or image exceeds a bound (file size, side, pixel count, decoder memory or
        /// scans): refused before the cost is paid.
        case tooLarge
        /// Too many bad files in a row to find a replacement sample.
        case tooManyBadFiles
        /// Writing a file (index cache, synthetic dataset) failed.
        case write
    }

    package var kind: Kind
    /// The file or folder concerned, if any.
    package var path: String?
    package var message: String

    package init(_ kind: Kind, path: String? = nil, _ message: String) {
        self.kind = kind
        self.path = path
        self.message = message
    }

    /// Whether this failure concerns one image file (so the loader may skip it), rather than the
    /// dataset as a whole.
    package var isBadImage: Bool {
        switch kind {
        case .unreadable, .notJPEG, .corruptJPEG, .tooLarge: true
        case .layout, .tooManyBadFiles, .write: false
        }
    }

    package var description: String {
        if let path { "\(path): \(message)" } else { message }
    }
}
