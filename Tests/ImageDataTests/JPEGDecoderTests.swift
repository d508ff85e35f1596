// The JPEG decoder: RGB baseline and progressive, grayscale, Adobe CMYK and YCCK, DCT scaling, and truncated,
// non-JPEG and oversized files refused without spoiling the decoder for the next file.

import Foundation
import ImageData
import Testing
import _TestSupport

@Suite struct JPEGDecoderTests {
    /// Decoded quadrant centres must match the encoded colours within JPEG tolerance.
    private func expectQuadrants(
        _ image: RGBImage, tolerance: Double, sourceLocation: SourceLocation = #_sourceLocation
    ) {
        let expected = Fixtures.quadrantColors.map { $0.map(Double.init) }
        for (actual, wanted) in zip(Fixtures.quadrantCenters(of: image), expected) {
            for c in 0..<3 {
                expectClose(actual[c], wanted[c], relative: 0, absolute: tolerance, sourceLocation: sourceLocation)
            }
        }
    }

    @Test(arguments: [false, true])
    func rgbBaselineAndProgressive(progressive: Bool) throws {
        let source = Fixtures.quadrants()
        let file = try JPEGEncoder.encode(
            source.pixels, width: 64, height: 64, format: .rgb, quality: 95, progressive: progressive)
        let decoder = JPEGDecoder()
        let header = try decoder.readHeader(file, path: "quadrants.jpg")
        #expect(header.isProgressive == progressive)
        #expect(header.colorModel == .rgb)
        let image = try decoder.decode(file, path: "quadrants.jpg")
        #expect(image.width == 64 && image.height == 64)
        expectQuadrants(image, tolerance: 6)
    }

    @Test func grayscaleBecomesRGB() throws {
        let source = Fixtures.quadrants()
        let luma = source.luma()
        let file = try JPEGEncoder.encode(luma, width: 64, height: 64, format: .grayscale, quality: 95)
        let decoder = JPEGDecoder()
        #expect(try decoder.readHeader(file, path: "gray.jpg").colorModel == .grayscale)
        let image = try decoder.decode(file, path: "gray.jpg")
        for (quadrant, center) in Fixtures.quadrantCenters(of: image).enumerated() {
            let color = Fixtures.quadrantColors[quadrant].map(Double.init)
            let expectedLuma = 0.299 * color[0] + 0.587 * color[1] + 0.114 * color[2]
            for c in 0..<3 { expectClose(center[c], expectedLuma, relative: 0, absolute: 4) }
        }
    }

    /// Adobe (Photoshop-style, inverted) CMYK and YCCK files decode to the RGB they were made from.
    @Test(arguments: [false, true])
    func adobeCMYKAndYCCK(storeAsYCCK: Bool) throws {
        let source = Fixtures.quadrants()
        let cmyk = JPEGEncoder.adobeCMYK(fromRGB: source.pixels)
        let file = try JPEGEncoder.encode(
            cmyk, width: 64, height: 64, format: .cmyk(storeAsYCCK: storeAsYCCK), quality: 95)
        let decoder = JPEGDecoder()
        let header = try decoder.readHeader(file, path: "cmyk.jpg")
        #expect(header.colorModel == (storeAsYCCK ? .ycck : .cmyk))
        #expect(header.hasAdobeMarker)
        expectQuadrants(try decoder.decode(file, path: "cmyk.jpg"), tolerance: 8)
    }

    /// DCT-domain scaling picks the largest n/8 reduction that keeps the requested size.
    @Test(arguments: [
        (100, 75, 100, 75),  // exactly 1/4
        (101, 75, 150, 113),  // 3/8 (libjpeg rounds up)
        (1, 1, 50, 38),  // 1/8
        (400, 300, 400, 300),  // full size
    ])
    func dctScaledSize(minimumWidth: Int, minimumHeight: Int, width: Int, height: Int) throws {
        let file = try Fixtures.flatJPEG(width: 400, height: 300)
        let image = try JPEGDecoder().decode(file, path: "flat.jpg", minimumSize: (minimumWidth, minimumHeight))
        #expect(image.width == width && image.height == height)
        let middle = ((height / 2) * width + width / 2) * 3
        for (c, value) in [120.0, 130, 140].enumerated() {
            expectClose(Double(image.pixels[middle + c]), value, relative: 0, absolute: 4)
        }
    }

    @Test func truncatedDataIsAnError() throws {
        let file = try JPEGEncoder.encode(Fixtures.quadrants(side: 128).pixels, width: 128, height: 128, format: .rgb)
        let truncated = Array(file.prefix(file.count * 2 / 3))
        let error = #expect(throws: DataError.self) { try JPEGDecoder().decode(truncated, path: "cut.JPEG") }
        #expect(error?.kind == .corruptJPEG)
        #expect(error?.path == "cut.JPEG")
        // Cut inside the header: libjpeg's fatal error comes back as an error, not an exit().
        let headerOnly = Array(file.prefix(40))
        #expect(throws: DataError.self) { try JPEGDecoder().decode(headerOnly, path: "head.JPEG") }
    }

    @Test(
        arguments: [
            ([], "empty file"),
            ([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13], "PNG data"),
            (Array("hello, this is text\n".utf8), "not JPEG data"),
        ] as [([UInt8], String)])
    func nonJPEGDataIsNamed(bytes: [UInt8], reason: String) {
        let error = #expect(throws: DataError.self) { try JPEGDecoder().decode(bytes, path: "x.JPEG") }
        #expect(error?.kind == .notJPEG)
        #expect(error?.description.contains(reason) == true, "\(String(describing: error))")
    }

    /// A header claiming 40000 px is refused before any pixel buffer is allocated.
    @Test func oversizedDimensionsAreRefused() throws {
        var file = try Fixtures.flatJPEG(width: 16, height: 16)
        let sof = try #require((0..<(file.count - 1)).first { file[$0] == 0xFF && file[$0 + 1] == 0xC0 })
        file[sof + 7] = 0x9C  // width = 0x9C40 = 40000
        file[sof + 8] = 0x40
        let error = #expect(throws: DataError.self) { try JPEGDecoder().decode(file, path: "huge.JPEG") }
        #expect(error?.kind == .tooLarge)
        #expect(error?.description.contains("40000 x 16") == true, "\(String(describing: error))")
        #expect(error?.description.contains("30000") == true)
        #expect(try JPEGDecoder(maximumSide: 50_000).readHeader(file, path: "huge.JPEG").width == 40_000)
    }

    /// One decoder keeps working after failures (its libjpeg state is reset).
    @Test func decoderIsReusableAfterErrors() throws {
        let decoder = JPEGDecoder()
        let good = try Fixtures.flatJPEG(width: 32, height: 24)
        #expect(throws: DataError.self) { try decoder.decode(Array(good.prefix(good.count / 2)), path: "bad") }
        #expect(throws: DataError.self) { try decoder.decode(Array("text".utf8), path: "text") }
        let image = try decoder.decode(good, path: "good")
        #expect(image.width == 32 && image.height == 24)
    }
}
