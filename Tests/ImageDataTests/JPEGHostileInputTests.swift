// Hostile image files (issue 19 classes 4 and 7): decompression bombs refused from the header or
// by libjpeg's memory and scan bounds, non-regular files refused before they are opened for
// reading, and a fuzz run over the header and decoder path.

import Foundation
import Glibc
import ImageData
import Testing
import _TestSupport

/// `jpeg` with the size in its start-of-frame segment (SOF0 baseline or SOF2 progressive) set to
/// `width × height`; the entropy-coded data stays that of the small image.
private func declaringSize(_ jpeg: [UInt8], width: Int, height: Int) throws -> [UInt8] {
    let sof = try #require((0..<(jpeg.count - 1)).first { jpeg[$0] == 0xFF && [0xC0, 0xC2].contains(jpeg[$0 + 1]) })
    var patched = jpeg
    // FF Cn, length (2), precision (1), height (2), width (2).
    patched[sof + 5] = UInt8(height >> 8)
    patched[sof + 6] = UInt8(height & 0xFF)
    patched[sof + 7] = UInt8(width >> 8)
    patched[sof + 8] = UInt8(width & 0xFF)
    return patched
}

/// The 1 KB progressive file of issue 19: a real 32 × 32 progressive JPEG that declares 29999 × 29999.
private func progressiveBomb() throws -> [UInt8] {
    let small = try Fixtures.flatJPEG(width: 32, height: 32, progressive: true)
    return try declaringSize(small, width: 29_999, height: 29_999)
}

@Suite struct JPEGHostileInputTests {
    @Test func progressiveBombIsRefusedFromItsHeader() throws {
        let bomb = try progressiveBomb()
        #expect(bomb.count < 2_048)
        let decoder = JPEGDecoder()
        let start = ContinuousClock.now
        let error = #expect(throws: DataError.self) { try decoder.decode(bomb, path: "bomb.JPEG") }
        // Refused before any buffer exists: microseconds; the bound leaves room for a loaded machine.
        #expect(ContinuousClock.now - start < .milliseconds(500))
        #expect(error?.kind == .tooLarge)
        #expect(error?.isBadImage == true)
        #expect(
            error?.description
                == "bomb.JPEG: image is 29999 x 29999 = 899940001 pixels; the limit is 50000000; refusing to decode it")
    }

    /// Under the pixel bound, libjpeg's memory bound stops a progressive file whose coefficient
    /// buffers would exceed it (1024² at 4:2:0 needs 3 MiB), while a baseline file of the same size
    /// (decoded a row band at a time) is unaffected.
    @Test func libjpegMemoryIsBounded() throws {
        let progressive = try Fixtures.flatJPEG(width: 1024, height: 1024, progressive: true)
        let baseline = try Fixtures.flatJPEG(width: 1024, height: 1024)
        let bounded = JPEGDecoder(maximumMemory: 1 << 20)
        let error = #expect(throws: DataError.self) { try bounded.decode(progressive, path: "p.JPEG") }
        #expect(error?.kind == .tooLarge)
        #expect(
            error?.description
                == "p.JPEG: decoding needs more than the 1 MiB of memory allowed per image; refusing to decode it")
        #expect(try bounded.decode(baseline, path: "b.JPEG").width == 1024)
        #expect(try JPEGDecoder().decode(progressive, path: "p.JPEG").width == 1024)
    }

    /// A file whose first scan is repeated 150 times (libjpeg only warns about the repeats) stops
    /// at the scan bound.
    @Test func scanCountIsBounded() throws {
        let jpeg = try Fixtures.flatJPEG(width: 64, height: 64, progressive: true)
        let sos = try #require((0..<(jpeg.count - 1)).first { jpeg[$0] == 0xFF && jpeg[$0 + 1] == 0xDA })
        // The scan runs to the next marker that is not a stuffed byte (FF 00) or a restart (FF D0-D7).
        let end = try #require(
            ((sos + 2)..<(jpeg.count - 1)).first {
                jpeg[$0] == 0xFF && jpeg[$0 + 1] != 0 && !(0xD0...0xD7).contains(jpeg[$0 + 1])
            })
        let scan = jpeg[sos..<end]
        let file = Array(jpeg[..<end]) + Array(repeatElement(scan, count: 150).joined()) + Array(jpeg[end...])
        let error = #expect(throws: DataError.self) { try JPEGDecoder().decode(file, path: "scans.JPEG") }
        #expect(error?.kind == .tooLarge)
        let description = error?.description ?? ""
        #expect(description.contains("more than \(JPEGDecoder.maximumScans) scans"), "\(description)")
    }

    /// A FIFO, a directory and a device named `*.JPEG` in a class folder, and the bomb, are bad
    /// images named with their reason; the check returns instead of waiting on the FIFO.
    @Test func nonRegularFilesAndBombsAreBadImages() throws {
        let root = try Fixtures.synthetic(classes: 1, train: 2, val: 1)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let classFolder = root + "/train/" + (try DatasetIndex.scan(dataPath: root)).classNames[0]
        #expect(mkfifo(classFolder + "/fifo.JPEG", 0o600) == 0)
        try FileManager.default.createDirectory(atPath: classFolder + "/folder.JPEG", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: classFolder + "/zero.JPEG", withDestinationPath: "/dev/zero")
        try Fixtures.write(try progressiveBomb(), to: classFolder + "/bomb.JPEG")

        let report = DatasetCheck.decodeAll(try DatasetIndex.scan(dataPath: root))
        var reasons: [String: String] = [:]
        for error in report.badImages {
            reasons[URL(fileURLWithPath: error.path ?? "").lastPathComponent] = error.message
        }
        #expect(reasons.count == 4, "\(report.badImages)")
        #expect(reasons["fifo.JPEG"] == "is a FIFO, not a regular file; expected JPEG data")
        #expect(reasons["folder.JPEG"] == "is a directory, not a regular file; expected JPEG data")
        #expect(reasons["zero.JPEG"] == "is a device, not a regular file; expected JPEG data")
        #expect(reasons["bomb.JPEG"]?.hasPrefix("image is 29999 x 29999") == true)
        #expect(report.badImages.allSatisfy { $0.isBadImage })
    }

    /// 2,000 mutants of four kinds of JPEG (baseline, progressive, grayscale, YCCK) each decode
    /// within the bounds or throw a bad-image error; none traps or exceeds the pixel bound.
    @Test func mutatedJPEGsDecodeWithinBoundsOrThrow() throws {
        let pixels = Fixtures.quadrants(side: 40).pixels
        let seeds = [
            try JPEGEncoder.encode(pixels, width: 40, height: 40, format: .rgb, quality: 80),
            try JPEGEncoder.encode(pixels, width: 40, height: 40, format: .rgb, quality: 80, progressive: true),
            try JPEGEncoder.encode(
                RGBImage(width: 40, height: 40, pixels: pixels).luma(), width: 40, height: 40, format: .grayscale),
            try JPEGEncoder.encode(
                JPEGEncoder.adobeCMYK(fromRGB: pixels), width: 40, height: 40, format: .cmyk(storeAsYCCK: true),
                progressive: true),
        ]
        let markers: [[UInt8]] = [
            [0xFF, 0xD8], [0xFF, 0xC0], [0xFF, 0xC2], [0xFF, 0xC4], [0xFF, 0xDA], [0xFF, 0xDB],
            [0xFF, 0xDD, 0x00, 0x04, 0x00, 0x01], [0xFF, 0xD9], [0xFF, 0x00],
        ]
        var mutator = ByteMutator(seed: 7, tokens: markers)
        let maximumPixels = 1 << 22
        let decoder = JPEGDecoder(maximumPixels: maximumPixels, maximumMemory: 64 << 20)
        var decoded = 0
        for (index, input) in mutator.mutants(of: seeds, count: 2_000).enumerated() {
            let path = "mutant-\(index).JPEG"
            do {
                let header = try decoder.readHeader(input, path: path)
                #expect(header.width * header.height <= maximumPixels)
                // The loader's way (smallest DCT scale), then in full when that stays small.
                let minimumSize = header.width * header.height <= 256 * 256 ? nil : (width: 1, height: 1)
                let image = try decoder.decode(input, path: path, minimumSize: minimumSize)
                #expect(image.pixels.count == image.width * image.height * 3)
                decoded += 1
            } catch {
                #expect(error.isBadImage, "\(error)")
                #expect(error.path == path)
            }
        }
        #expect(decoded > 0 && decoded < 2_000, "\(decoded) of 2000 decoded")
    }
}
