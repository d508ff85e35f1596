// The only file that calls libjpeg-turbo (through CJPEGShims, which turns its fatal errors into
// status codes), and the bounded reader of image files. Everything else sees `JPEGDecoder`,
// `JPEGEncoder` and `DataError`.

internal import CJPEGShims

#if canImport(Glibc)
import Glibc
#endif

/// The colour model stored in a JPEG file.
package enum JPEGColorModel: Sendable, Equatable {
    case grayscale, rgb, cmyk, ycck, other

    init(shimValue: Int32) {
        switch UInt32(bitPattern: shimValue) {
        case CJPEGShims_gray.rawValue: self = .grayscale
        case CJPEGShims_rgb.rawValue: self = .rgb
        case CJPEGShims_cmyk.rawValue: self = .cmyk
        case CJPEGShims_ycck.rawValue: self = .ycck
        default: self = .other
        }
    }
}

/// What a JPEG header says about the image.
package struct JPEGHeader: Sendable, Equatable {
    package var width: Int
    package var height: Int
    package var colorModel: JPEGColorModel
    package var isProgressive: Bool
    /// An Adobe APP14 marker was present, so CMYK/YCCK inks are stored inverted (Photoshop).
    package var hasAdobeMarker: Bool
}

/// An 8-bit RGB image with packed rows: the sample of channel `c` at (`x`, `y`) is
/// `pixels[(y * width + x) * 3 + c]`.
package struct RGBImage: Sendable, Equatable {
    package var width: Int
    package var height: Int
    package var pixels: [UInt8]

    package init(width: Int, height: Int, pixels: [UInt8]) {
        precondition(
            pixels.count == width * height * 3,
            "an RGB image of \(width) x \(height) needs \(width * height * 3) bytes, got \(pixels.count)")
        self.width = width
        self.height = height
        self.pixels = pixels
    }
}

extension RGBImage {
    /// ITU-R 601 luma of every pixel, one byte each (what a grayscale JPEG of this image holds).
    package func luma() -> [UInt8] {
        (0..<(width * height)).map { pixel in
            let weighted =
                299 * Int(pixels[3 * pixel]) + 587 * Int(pixels[3 * pixel + 1]) + 114 * Int(pixels[3 * pixel + 2])
            return UInt8((weighted + 500) / 1000)
        }
    }
}

/// A reusable libjpeg-turbo decompressor that turns every JPEG it supports (baseline, progressive,
/// grayscale, RGB, CMYK, YCCK) into RGB, optionally downscaled in the DCT domain.
///
/// Whatever a file declares, one decode is bounded: the side and pixel count are checked from the
/// header before any image buffer exists, and libjpeg's own memory (the whole-image coefficient
/// buffers of progressive and multi-scan files) and scan count are capped while it reads. A file
/// over a bound is a `.tooLarge` bad image. So a 1 KB progressive file that declares 29999 × 29999
/// costs microseconds, not gigabytes.
///
/// Not thread-safe: use one decoder per thread.
package final class JPEGDecoder {
    private let handle: OpaquePointer
    /// Images with a side above this are refused before any pixel buffer is allocated.
    package let maximumSide: Int
    /// Images with more pixels than this are refused before any pixel buffer is allocated.
    package let maximumPixels: Int
    /// The most bytes libjpeg may allocate for one image.
    package let maximumMemory: Int

    /// The default limit on an image side, far above any photo (ImageNet's largest is 4288 px).
    package static let defaultMaximumSide = 30_000
    /// The default limit on width × height: 50 megapixels, 2.5 times ImageNet's largest image.
    package static let defaultMaximumPixels = 50_000_000
    /// The default bound on libjpeg's memory per image, 256 MiB: a progressive 4:2:0 file of
    /// ``defaultMaximumPixels`` needs 150 MB of coefficients; four decode threads stay under 1 GiB.
    package static let defaultMaximumMemory = 256 << 20
    /// The most scans a file may have; encoders write at most a dozen (libjpeg's progressive
    /// script has 10), and each scan makes libjpeg revisit every coefficient.
    package static let maximumScans = 100

    /// Creates a decoder that refuses images over the given side, pixel and memory bounds.
    package init(
        maximumSide: Int = JPEGDecoder.defaultMaximumSide, maximumPixels: Int = JPEGDecoder.defaultMaximumPixels,
        maximumMemory: Int = JPEGDecoder.defaultMaximumMemory
    ) {
        guard let handle = CJPEGShims_decoderCreate() else {
            fatalError("out of memory creating a libjpeg decompressor")
        }
        self.handle = handle
        self.maximumSide = maximumSide
        self.maximumPixels = maximumPixels
        self.maximumMemory = maximumMemory
    }

    deinit { CJPEGShims_decoderDestroy(handle) }

    /// Reads only the header of the JPEG in `data`.
    ///
    /// - Parameter path: names the file in errors.
    /// - Throws: `DataError` of kind `.notJPEG`, `.corruptJPEG` or `.tooLarge`.
    package func readHeader(_ data: [UInt8], path: String) throws(DataError) -> JPEGHeader {
        let result: Result<JPEGHeader, DataError> = data.withUnsafeBufferPointer { bytes in
            do throws(DataError) {
                var info = CJPEGShims_ImageInfo()
                try startHeader(bytes, path: path, info: &info)
                CJPEGShims_decoderAbort(handle)
                return .success(JPEGDecoder.header(of: info))
            } catch { return .failure(error) }
        }
        return try result.get()
    }

    /// Decodes the JPEG in `data` to RGB.
    ///
    /// - Parameters:
    ///   - data: the file's bytes.
    ///   - path: names the file in errors.
    ///   - minimumSize: when given, the image is downscaled in the DCT domain by the largest n/8
    ///     reduction that keeps it at least this large; `nil` decodes at full size.
    /// - Returns: the image, at the (possibly reduced) size libjpeg produced.
    /// - Throws: `DataError` of kind `.notJPEG`, `.corruptJPEG` (including truncated data, which
    ///   libjpeg only warns about) or `.tooLarge` (over a side, pixel, memory or scan bound).
    package func decode(
        _ data: [UInt8], path: String, minimumSize: (width: Int, height: Int)? = nil
    ) throws(DataError) -> RGBImage {
        var pixels: [UInt8] = []
        let (width, height) = try data.withUnsafeBufferPointer { bytes throws(DataError) in
            try decode(bytes, path: path, into: &pixels) { header in
                minimumSize ?? (header.width, header.height)
            }
        }
        pixels.removeSubrange((width * height * 3)...)
        return RGBImage(width: width, height: height, pixels: pixels)
    }

    /// Decodes `bytes` into `pixels` (grown when too small, never shrunk: reused across images),
    /// choosing the DCT scale from the header with `minimumSize`.
    ///
    /// - Returns: the decoded width and height; `pixels` holds `width · height · 3` valid bytes.
    func decode(
        _ bytes: UnsafeBufferPointer<UInt8>, path: String, into pixels: inout [UInt8],
        minimumSize: (JPEGHeader) -> (width: Int, height: Int)
    ) throws(DataError) -> (width: Int, height: Int) {
        var info = CJPEGShims_ImageInfo()
        try startHeader(bytes, path: path, info: &info)
        let minimum = minimumSize(JPEGDecoder.header(of: info))
        try check(CJPEGShims_decoderStart(handle, Int32(minimum.width), Int32(minimum.height), &info), path: path)
        let width = Int(info.outputWidth)
        let height = Int(info.outputHeight)
        let needed = width * height * 3
        if pixels.count < needed { pixels = [UInt8](repeating: 0, count: needed) }
        let status = pixels.withUnsafeMutableBufferPointer { buffer in
            CJPEGShims_decoderReadRGB(handle, buffer.baseAddress!, width * 3)
        }
        try check(status, path: path)
        return (width, height)
    }

    /// Checks the signature, then reads the header (the decoder is left mid-decode on success).
    private func startHeader(
        _ bytes: UnsafeBufferPointer<UInt8>, path: String, info: inout CJPEGShims_ImageInfo
    ) throws(DataError) {
        try JPEGDecoder.checkSignature(bytes, path: path)
        var limits = CJPEGShims_Limits(
            maximumSide: Int32(clamping: maximumSide), maximumPixels: Int64(maximumPixels),
            maximumMemory: maximumMemory, maximumScans: Int32(JPEGDecoder.maximumScans))
        try check(CJPEGShims_decoderReadHeader(handle, bytes.baseAddress!, bytes.count, &limits, &info), path: path)
    }

    private func check(_ status: Int32, path: String) throws(DataError) {
        let message = String(cString: CJPEGShims_decoderMessage(handle))
        switch UInt32(bitPattern: status) {
        case CJPEGShims_ok.rawValue:
            return
        case CJPEGShims_tooLarge.rawValue:
            throw DataError(.tooLarge, path: path, "\(message); refusing to decode it")
        case CJPEGShims_damaged.rawValue:
            throw DataError(.corruptJPEG, path: path, "damaged JPEG data: \(message)")
        default:
            throw DataError(.corruptJPEG, path: path, "cannot decode JPEG: \(message)")
        }
    }

    private static func header(of info: CJPEGShims_ImageInfo) -> JPEGHeader {
        JPEGHeader(
            width: Int(info.imageWidth), height: Int(info.imageHeight),
            colorModel: JPEGColorModel(shimValue: info.colorModel),
            isProgressive: info.progressive != 0, hasAdobeMarker: info.adobeInverted != 0)
    }

    /// Rejects empty files and other formats by their first bytes, before libjpeg sees them, so the
    /// message says what the file really is.
    static func checkSignature(_ bytes: UnsafeBufferPointer<UInt8>, path: String) throws(DataError) {
        guard !bytes.isEmpty else { throw DataError(.notJPEG, path: path, "empty file, expected JPEG data") }
        if bytes.starts(with: [0x89, 0x50, 0x4E, 0x47]) {
            throw DataError(.notJPEG, path: path, "PNG data with a JPEG name; expected JPEG data (FF D8)")
        }
        guard bytes.count >= 3, bytes[0] == 0xFF, bytes[1] == 0xD8, bytes[2] == 0xFF else {
            let head = bytes.prefix(4).map { String($0, radix: 16, uppercase: true) }.joined(separator: " ")
            throw DataError(.notJPEG, path: path, "not JPEG data: starts with \(head), expected FF D8 FF")
        }
    }
}

/// Writes JPEG files with libjpeg-turbo (for the synthetic dataset and for tests).
package enum JPEGEncoder {
    /// The layout of the pixels handed to the encoder: interleaved, rows packed.
    package enum PixelFormat: Sendable {
        /// 1 byte per pixel.
        case grayscale
        /// 3 bytes per pixel: R, G, B.
        case rgb
        /// 4 bytes per pixel: C, M, Y, K as stored in the file (Photoshop stores inverted inks).
        /// Written with an Adobe marker; as CMYK, or as YCCK when `storeAsYCCK` is set.
        case cmyk(storeAsYCCK: Bool)

        var bytesPerPixel: Int {
            switch self {
            case .grayscale: 1
            case .rgb: 3
            case .cmyk: 4
            }
        }
    }

    /// Photoshop-style (Adobe, inverted) CMYK for packed RGB pixels: K′ = max(R, G, B) and
    /// C′ = 255·R / K′ (likewise M′, Y′), so that R = C′·K′ / 255 on decoding.
    package static func adobeCMYK(fromRGB rgb: [UInt8]) -> [UInt8] {
        var cmyk = [UInt8](repeating: 0, count: rgb.count / 3 * 4)
        for pixel in 0..<(rgb.count / 3) {
            let red = Int(rgb[3 * pixel])
            let green = Int(rgb[3 * pixel + 1])
            let blue = Int(rgb[3 * pixel + 2])
            let key = max(red, green, blue)
            guard key > 0 else { continue }
            cmyk[4 * pixel] = UInt8((red * 255 + key / 2) / key)
            cmyk[4 * pixel + 1] = UInt8((green * 255 + key / 2) / key)
            cmyk[4 * pixel + 2] = UInt8((blue * 255 + key / 2) / key)
            cmyk[4 * pixel + 3] = UInt8(key)
        }
        return cmyk
    }

    /// Compresses `pixels` to a JPEG file's bytes.
    ///
    /// - Parameters:
    ///   - pixels: `height` rows of `width` pixels in `format`, packed.
    ///   - quality: libjpeg quality, 1…100.
    ///   - progressive: writes a progressive (SOF2) file instead of a baseline one.
    /// - Throws: `DataError` of kind `.write` when libjpeg fails.
    package static func encode(
        _ pixels: [UInt8], width: Int, height: Int, format: PixelFormat,
        quality: Int = 90, progressive: Bool = false
    ) throws(DataError) -> [UInt8] {
        precondition(width > 0 && height > 0, "JPEG size must be positive, got \(width) x \(height)")
        precondition(
            pixels.count == width * height * format.bytesPerPixel,
            "\(width) x \(height) pixels need \(width * height * format.bytesPerPixel) bytes, got "
                + "\(pixels.count)")
        var settings = CJPEGShims_EncodeSettings()
        settings.width = Int32(width)
        settings.height = Int32(height)
        settings.quality = Int32(min(max(quality, 1), 100))
        settings.progressive = progressive ? 1 : 0
        switch format {
        case .grayscale:
            settings.inputModel = Int32(CJPEGShims_gray.rawValue)
            settings.fileModel = settings.inputModel
        case .rgb:
            settings.inputModel = Int32(CJPEGShims_rgb.rawValue)
            settings.fileModel = settings.inputModel
        case .cmyk(let storeAsYCCK):
            settings.inputModel = Int32(CJPEGShims_cmyk.rawValue)
            settings.fileModel = Int32(storeAsYCCK ? CJPEGShims_ycck.rawValue : CJPEGShims_cmyk.rawValue)
        }
        var output: UnsafeMutablePointer<UInt8>?
        var outputSize: UInt = 0
        var message = [CChar](repeating: 0, count: 256)
        let status = pixels.withUnsafeBufferPointer { source in
            CJPEGShims_encode(source.baseAddress!, &settings, &output, &outputSize, &message, message.count)
        }
        defer { CJPEGShims_free(output) }
        guard status == Int32(CJPEGShims_ok.rawValue), let output else {
            let text = message.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            throw DataError(.write, "libjpeg could not compress a \(width) x \(height) image: \(text)")
        }
        return Array(UnsafeBufferPointer(start: output, count: Int(outputSize)))
    }
}

/// Whole-file reads into a reused buffer, with errors that name the file.
package enum ImageFile {
    /// The largest image file read, 64 MiB (ImageNet's largest is under 16 MB); a bigger one
    /// would cost its size in memory before the header is even looked at.
    static let maximumBytes = 64 << 20

    /// Reads the file at `path` into `buffer` (grown as needed) and returns its length.
    ///
    /// Only regular files are read: a FIFO, device or directory with an image name is refused
    /// before any read (opening a FIFO for reading would wait for a writer; a device may never end).
    package static func read(_ path: String, into buffer: inout [UInt8]) throws(DataError) -> Int {
        var status = stat()
        guard stat(path, &status) == 0 else { throw systemError(path, "cannot stat") }
        try requireRegularFile(status, path: path)
        // O_NONBLOCK: should the path become a FIFO after the check, the open still returns at once.
        let descriptor = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard descriptor >= 0 else { throw systemError(path, "cannot open") }
        defer { close(descriptor) }
        guard fstat(descriptor, &status) == 0 else { throw systemError(path, "cannot stat") }
        try requireRegularFile(status, path: path)
        guard status.st_size <= maximumBytes else {
            throw DataError(
                .tooLarge, path: path, "file is \(status.st_size) bytes; the limit is \(maximumBytes >> 20) MiB")
        }
        let size = Int(status.st_size)
        if buffer.count < size { buffer = [UInt8](repeating: 0, count: size) }
        var total = 0
        while total < size {
            let count = buffer.withUnsafeMutableBytes { bytes in
                Glibc.read(descriptor, bytes.baseAddress! + total, size - total)
            }
            if count < 0 && errno == EINTR { continue }
            guard count >= 0 else { throw systemError(path, "cannot read") }
            if count == 0 { break }
            total += count
        }
        return total
    }

    private static func requireRegularFile(_ status: stat, path: String) throws(DataError) {
        let type = status.st_mode & S_IFMT
        guard type != S_IFREG else { return }
        let kind =
            switch type {
            case S_IFDIR: "a directory"
            case S_IFIFO: "a FIFO"
            case S_IFCHR, S_IFBLK: "a device"
            case S_IFSOCK: "a socket"
            default: "not a regular file"
            }
        throw DataError(.unreadable, path: path, "is \(kind), not a regular file; expected JPEG data")
    }

    private static func systemError(_ path: String, _ action: String) -> DataError {
        DataError(.unreadable, path: path, "\(action) the file: \(String(cString: strerror(errno)))")
    }
}
