// CJPEGShims: libjpeg-turbo calls that report errors instead of exiting, the C interface ImageData's
// JPEG decoder and the synthetic-dataset writer call.
//
// Why this C target exists: libjpeg reports a fatal error by calling `err->error_exit`, whose
// default prints and calls exit(). The only way to recover is a custom error manager that
// longjmp()s back to a setjmp() in the caller, and Swift can neither call setjmp nor survive a
// longjmp through its frames. So every libjpeg call that can fail runs inside these functions,
// which return a status code and put the message text in the decoder or in a caller buffer.
// All symbols carry the `CJPEGShims_` prefix.
#ifndef CJPEGSHIMS_H
#define CJPEGSHIMS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Status codes of the functions below.
typedef enum {
    CJPEGShims_ok = 0,
    /// libjpeg raised a fatal error (not a JPEG, corrupt header, unsupported feature, …).
    CJPEGShims_failed = 1,
    /// libjpeg decoded the file but warned that the data is damaged (premature end of file,
    /// corrupt entropy-coded data); the pixels it produced are padded or garbled.
    CJPEGShims_damaged = 2,
    /// The image exceeds a bound the caller gave: its side or pixel count (refused from the
    /// header, before any image buffer exists), libjpeg's memory or the number of scans.
    CJPEGShims_tooLarge = 3,
    /// The call came in the wrong order (e.g. read rows without a started decode).
    CJPEGShims_misuse = 4,
} CJPEGShims_Status;

/// The colour model of the pixels in a JPEG file.
typedef enum {
    CJPEGShims_gray = 0,
    CJPEGShims_rgb = 1,   // YCbCr or RGB in the file; decoded as RGB
    CJPEGShims_cmyk = 2,
    CJPEGShims_ycck = 3,
    CJPEGShims_otherColor = 4,
} CJPEGShims_ColorModel;

/// What the header says, and the size the decode will produce.
typedef struct {
    int imageWidth;
    int imageHeight;
    int outputWidth;          // after DCT-domain scaling
    int outputHeight;
    int scaleNumerator;       // output = image · scaleNumerator / 8 (rounded up)
    int colorModel;           // a CJPEGShims_ColorModel
    int progressive;          // 1 for progressive (SOF2) files
    int adobeInverted;        // 1 when an Adobe APP14 marker was seen (CMYK stored inverted)
} CJPEGShims_ImageInfo;

/// Bounds on what one decode may cost, whatever the file declares.
typedef struct {
    int maximumSide;          // pixels per side
    long long maximumPixels;  // width · height
    long maximumMemory;       // bytes libjpeg may allocate (its max_memory_to_use)
    int maximumScans;         // scans of a progressive or multi-scan file
} CJPEGShims_Limits;

/// A reusable decompressor (one per thread; not thread-safe).
typedef struct CJPEGShims_Decoder CJPEGShims_Decoder;

/// A new decoder, or NULL when out of memory.
CJPEGShims_Decoder *CJPEGShims_decoderCreate(void);
void CJPEGShims_decoderDestroy(CJPEGShims_Decoder *decoder);

/// The message of the last failure or damage warning ("" if none).
const char *CJPEGShims_decoderMessage(const CJPEGShims_Decoder *decoder);

/// Reads the header of the JPEG in `data` into `info` (output size = image size for now).
///
/// Refuses, before allocating any image buffer, images with a side or pixel count above
/// `limits`, and holds the rest of the decode to its memory and scan bounds (`tooLarge`). `data`
/// must stay valid until `CJPEGShims_decoderReadRGB` returns or the decode is aborted.
int CJPEGShims_decoderReadHeader(
    CJPEGShims_Decoder *decoder, const uint8_t *data, size_t size, const CJPEGShims_Limits *limits,
    CJPEGShims_ImageInfo *info);

/// Starts decompressing the image whose header was read, scaled in the DCT domain by the
/// smallest n/8 (n = 1…8) that still gives at least `minimumWidth` × `minimumHeight` pixels
/// (pass 0, 0 for the smallest scale, the image size for none); updates `info`'s output fields.
int CJPEGShims_decoderStart(
    CJPEGShims_Decoder *decoder, int minimumWidth, int minimumHeight, CJPEGShims_ImageInfo *info);

/// Decodes the started image into `rgb` (outputHeight rows of `rowStride` bytes, 3 per pixel,
/// interleaved R, G, B), converting grayscale, CMYK and YCCK to RGB, and finishes the decode.
int CJPEGShims_decoderReadRGB(CJPEGShims_Decoder *decoder, uint8_t *rgb, size_t rowStride);

/// Stops a started decode (after a caller-side failure) so the decoder can be reused.
void CJPEGShims_decoderAbort(CJPEGShims_Decoder *decoder);

/// Compression settings for `CJPEGShims_encode`.
typedef struct {
    int width;
    int height;
    /// Interleaved input: CJPEGShims_gray (1 byte per pixel), CJPEGShims_rgb (3) or
    /// CJPEGShims_cmyk (4, written as given, with an Adobe marker).
    int inputModel;
    /// The colour space stored in the file: the input model, or CJPEGShims_ycck for CMYK input.
    int fileModel;
    int quality;              // 1…100
    int progressive;          // 1 to write a progressive (SOF2) file
} CJPEGShims_EncodeSettings;

/// Compresses `pixels` (rows packed, no padding) into a malloc'ed buffer `*output` of
/// `*outputSize` bytes, which the caller releases with `CJPEGShims_free`. On failure writes
/// the message into `message` (capacity `messageCapacity`).
int CJPEGShims_encode(
    const uint8_t *pixels, const CJPEGShims_EncodeSettings *settings,
    uint8_t **output, unsigned long *outputSize, char *message, size_t messageCapacity);

/// Releases a buffer returned by `CJPEGShims_encode`.
void CJPEGShims_free(void *pointer);

#ifdef __cplusplus
}
#endif

#endif
