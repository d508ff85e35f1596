// The libjpeg-turbo calls that report errors instead of exiting: the error manager that longjmps back,
// decoding (headers, scaled RGB rows, CMYK conversion, resource bounds) and encoding to memory.
//
// See include/CJPEGShims.h for why these functions are in C: libjpeg's fatal errors must be caught
// with setjmp/longjmp, which Swift cannot do.
#include "CJPEGShims.h"

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jpeglib.h>
#include <jerror.h>

// MARK: - Error manager

/// libjpeg's error manager extended with the jump target and the first message that matters.
typedef struct {
    struct jpeg_error_mgr pub;
    jmp_buf jump;
    /// Set when a warning says the pixel data is damaged (libjpeg-turbo only warns on a truncated
    /// file and pads the rest with grey, so the warning level must be inspected).
    int damaged;
    /// Set when the decode stopped at a resource bound (memory, scans) rather than bad data.
    int overLimit;
    /// The caller's bound on libjpeg's memory, for the message when it is reached.
    long memoryLimit;
    char message[JMSG_LENGTH_MAX + 64];
} ErrorManager;

/// Fatal errors: keep the text and jump back to the setjmp in the calling shim. libjpeg reports
/// the memory bound as "Backing store not supported" (it would spill to a temporary file had it
/// one), which would read as a library fault, so that case gets its own message.
static void errorExit(j_common_ptr common) {
    ErrorManager *manager = (ErrorManager *)common->err;
    if (common->err->msg_code == JERR_NO_BACKING_STORE || common->err->msg_code == JERR_OUT_OF_MEMORY) {
        snprintf(manager->message, sizeof(manager->message),
                 "decoding needs more than the %ld MiB of memory allowed per image", manager->memoryLimit >> 20);
        manager->overLimit = 1;
    } else {
        common->err->format_message(common, manager->message);
    }
    longjmp(manager->jump, 1);
}

/// Warnings and trace messages: never printed. Warnings that mean "these pixels are wrong"
/// mark the image as damaged; harmless ones (extraneous bytes between markers, odd JFIF
/// versions) are counted and ignored, as every other decoder does.
static void emitMessage(j_common_ptr common, int level) {
    ErrorManager *manager = (ErrorManager *)common->err;
    if (level >= 0) return;
    common->err->num_warnings++;
    switch (common->err->msg_code) {
    case JWRN_JPEG_EOF:
    case JWRN_HIT_MARKER:
    case JWRN_MUST_RESYNC:
    case JWRN_HUFF_BAD_CODE:
    case JWRN_ARITH_BAD_CODE:
    case JWRN_NOT_SEQUENTIAL:
        if (!manager->damaged) {
            common->err->format_message(common, manager->message);
            manager->damaged = 1;
        }
        break;
    default:
        break;
    }
}

static void installErrorManager(ErrorManager *manager, struct jpeg_error_mgr **slot) {
    *slot = jpeg_std_error(&manager->pub);
    manager->pub.error_exit = errorExit;
    manager->pub.emit_message = emitMessage;
    manager->damaged = 0;
    manager->overLimit = 0;
    manager->memoryLimit = 0;
    manager->message[0] = '\0';
}

// MARK: - Decoding

struct CJPEGShims_Decoder {
    struct jpeg_decompress_struct info;
    ErrorManager error;
    /// Counts scans while a file is absorbed, to stop a progressive file with endless scans.
    struct jpeg_progress_mgr progress;
    int maximumScans;
    /// 0 idle, 1 header read, 2 decompressing.
    int phase;
    int outputIsCMYK;
    int adobeInverted;
    /// One CMYK row, reused across images.
    JSAMPLE *cmykRow;
    size_t cmykRowCapacity;
};

/// Called by libjpeg as it reads; stops at the caller's scan bound. Each progressive scan makes
/// libjpeg revisit every coefficient, so a small file of many tiny scans costs time without bound.
static void progressMonitor(j_common_ptr common) {
    CJPEGShims_Decoder *decoder = (CJPEGShims_Decoder *)common;  // `info` is the first member
    if (decoder->info.input_scan_number > decoder->maximumScans) {
        snprintf(decoder->error.message, sizeof(decoder->error.message),
                 "more than %d scans (the limit for one file)", decoder->maximumScans);
        decoder->error.overLimit = 1;
        longjmp(decoder->error.jump, 1);
    }
}

CJPEGShims_Decoder *CJPEGShims_decoderCreate(void) {
    CJPEGShims_Decoder *decoder = calloc(1, sizeof(CJPEGShims_Decoder));
    if (decoder == NULL) return NULL;
    installErrorManager(&decoder->error, &decoder->info.err);
    if (setjmp(decoder->error.jump)) {
        // jpeg_create_decompress fails only when out of memory.
        free(decoder);
        return NULL;
    }
    jpeg_create_decompress(&decoder->info);
    decoder->progress.progress_monitor = progressMonitor;
    decoder->info.progress = &decoder->progress;
    return decoder;
}

void CJPEGShims_decoderDestroy(CJPEGShims_Decoder *decoder) {
    if (decoder == NULL) return;
    jpeg_destroy_decompress(&decoder->info);
    free(decoder->cmykRow);
    free(decoder);
}

const char *CJPEGShims_decoderMessage(const CJPEGShims_Decoder *decoder) {
    return decoder->error.message;
}

void CJPEGShims_decoderAbort(CJPEGShims_Decoder *decoder) {
    jpeg_abort_decompress(&decoder->info);
    decoder->phase = 0;
}

static int colorModelOf(J_COLOR_SPACE space) {
    switch (space) {
    case JCS_GRAYSCALE: return CJPEGShims_gray;
    case JCS_RGB:
    case JCS_YCbCr: return CJPEGShims_rgb;
    case JCS_CMYK: return CJPEGShims_cmyk;
    case JCS_YCCK: return CJPEGShims_ycck;
    default: return CJPEGShims_otherColor;
    }
}

/// The output size libjpeg produces for `side` at scale numerator/8 (it rounds up).
static int scaledSide(int side, int numerator) {
    return (int)(((long)side * numerator + 7) / 8);
}

/// What a shim returns after libjpeg jumped back: a bound was reached, or libjpeg failed.
static int statusAfterJump(CJPEGShims_Decoder *decoder) {
    CJPEGShims_decoderAbort(decoder);
    return decoder->error.overLimit ? CJPEGShims_tooLarge : CJPEGShims_failed;
}

int CJPEGShims_decoderReadHeader(
    CJPEGShims_Decoder *decoder, const uint8_t *data, size_t size, const CJPEGShims_Limits *limits,
    CJPEGShims_ImageInfo *result
) {
    struct jpeg_decompress_struct *info = &decoder->info;
    if (decoder->phase != 0) CJPEGShims_decoderAbort(decoder);
    decoder->error.damaged = 0;
    decoder->error.overLimit = 0;
    decoder->error.message[0] = '\0';
    decoder->error.pub.num_warnings = 0;
    decoder->error.memoryLimit = limits->maximumMemory;
    decoder->maximumScans = limits->maximumScans;
    // libjpeg keeps this across images; it bounds the whole-image buffers of progressive and
    // multi-scan files, which it would otherwise allocate at whatever size the header declares.
    info->mem->max_memory_to_use = limits->maximumMemory;
    if (setjmp(decoder->error.jump)) return statusAfterJump(decoder);
    jpeg_mem_src(info, data, (unsigned long)size);
    decoder->phase = 1;
    jpeg_read_header(info, TRUE);

    memset(result, 0, sizeof(*result));
    result->imageWidth = (int)info->image_width;
    result->imageHeight = (int)info->image_height;
    result->outputWidth = result->imageWidth;
    result->outputHeight = result->imageHeight;
    result->scaleNumerator = 8;
    result->colorModel = colorModelOf(info->jpeg_color_space);
    result->progressive = info->progressive_mode ? 1 : 0;
    result->adobeInverted = info->saw_Adobe_marker ? 1 : 0;
    if (result->imageWidth > limits->maximumSide || result->imageHeight > limits->maximumSide) {
        snprintf(decoder->error.message, sizeof(decoder->error.message),
                 "image is %d x %d pixels; the limit is %d per side",
                 result->imageWidth, result->imageHeight, limits->maximumSide);
        CJPEGShims_decoderAbort(decoder);
        return CJPEGShims_tooLarge;
    }
    long long pixels = (long long)result->imageWidth * result->imageHeight;
    if (pixels > limits->maximumPixels) {
        snprintf(decoder->error.message, sizeof(decoder->error.message),
                 "image is %d x %d = %lld pixels; the limit is %lld",
                 result->imageWidth, result->imageHeight, pixels, limits->maximumPixels);
        CJPEGShims_decoderAbort(decoder);
        return CJPEGShims_tooLarge;
    }
    switch (result->colorModel) {
    case CJPEGShims_gray:
    case CJPEGShims_rgb:
        info->out_color_space = JCS_RGB;
        decoder->outputIsCMYK = 0;
        break;
    case CJPEGShims_cmyk:
    case CJPEGShims_ycck:
        // libjpeg converts YCCK to CMYK; the CMYK-to-RGB step is ours (it has none).
        info->out_color_space = JCS_CMYK;
        decoder->outputIsCMYK = 1;
        break;
    default:
        snprintf(decoder->error.message, sizeof(decoder->error.message),
                 "unsupported JPEG colour space %d with %d components",
                 (int)info->jpeg_color_space, info->num_components);
        CJPEGShims_decoderAbort(decoder);
        return CJPEGShims_failed;
    }
    decoder->adobeInverted = result->adobeInverted;
    return CJPEGShims_ok;
}

int CJPEGShims_decoderStart(
    CJPEGShims_Decoder *decoder, int minimumWidth, int minimumHeight, CJPEGShims_ImageInfo *result
) {
    struct jpeg_decompress_struct *info = &decoder->info;
    if (decoder->phase != 1) return CJPEGShims_misuse;
    if (setjmp(decoder->error.jump)) return statusAfterJump(decoder);
    // The largest DCT-domain reduction that keeps the output at least the requested size.
    int numerator = 8;
    while (numerator > 1
           && scaledSide(result->imageWidth, numerator - 1) >= minimumWidth
           && scaledSide(result->imageHeight, numerator - 1) >= minimumHeight) {
        numerator--;
    }
    info->scale_num = (unsigned int)numerator;
    info->scale_denom = 8;
    jpeg_start_decompress(info);
    result->outputWidth = (int)info->output_width;
    result->outputHeight = (int)info->output_height;
    result->scaleNumerator = numerator;
    decoder->phase = 2;

    if (decoder->outputIsCMYK) {
        size_t needed = (size_t)info->output_width * 4;
        if (needed > decoder->cmykRowCapacity) {
            JSAMPLE *row = realloc(decoder->cmykRow, needed);
            if (row == NULL) {
                snprintf(decoder->error.message, sizeof(decoder->error.message),
                         "out of memory for a %zu-byte CMYK row", needed);
                CJPEGShims_decoderAbort(decoder);
                return CJPEGShims_failed;
            }
            decoder->cmykRow = row;
            decoder->cmykRowCapacity = needed;
        }
    }
    return CJPEGShims_ok;
}

/// CMYK (as libjpeg returns it) to RGB. Adobe files (Photoshop) store the inks inverted, so
/// there R = C·K/255; plain files store ink amounts, so R = (255−C)(255−K)/255.
static void convertCMYKRow(const JSAMPLE *cmyk, uint8_t *rgb, int width, int inverted) {
    for (int x = 0; x < width; x++) {
        int c = cmyk[4 * x], m = cmyk[4 * x + 1], y = cmyk[4 * x + 2], k = cmyk[4 * x + 3];
        if (!inverted) { c = 255 - c; m = 255 - m; y = 255 - y; k = 255 - k; }
        rgb[3 * x] = (uint8_t)((c * k + 127) / 255);
        rgb[3 * x + 1] = (uint8_t)((m * k + 127) / 255);
        rgb[3 * x + 2] = (uint8_t)((y * k + 127) / 255);
    }
}

int CJPEGShims_decoderReadRGB(CJPEGShims_Decoder *decoder, uint8_t *rgb, size_t rowStride) {
    struct jpeg_decompress_struct *info = &decoder->info;
    if (decoder->phase != 2) return CJPEGShims_misuse;
    if (setjmp(decoder->error.jump)) return statusAfterJump(decoder);
    enum { rowsPerCall = 8 };
    while (info->output_scanline < info->output_height) {
        if (decoder->outputIsCMYK) {
            JSAMPROW row = decoder->cmykRow;
            JDIMENSION y = info->output_scanline;
            if (jpeg_read_scanlines(info, &row, 1) == 1) {
                convertCMYKRow(row, rgb + (size_t)y * rowStride, (int)info->output_width,
                               decoder->adobeInverted);
            }
        } else {
            JSAMPROW rows[rowsPerCall];
            JDIMENSION first = info->output_scanline;
            JDIMENSION count = info->output_height - first;
            if (count > rowsPerCall) count = rowsPerCall;
            for (JDIMENSION i = 0; i < count; i++) rows[i] = rgb + (size_t)(first + i) * rowStride;
            jpeg_read_scanlines(info, rows, count);
        }
    }
    jpeg_finish_decompress(info);
    decoder->phase = 0;
    return decoder->error.damaged ? CJPEGShims_damaged : CJPEGShims_ok;
}

// MARK: - Encoding

/// A destination that grows one malloc'ed buffer, so a failed compression can free it
/// (jpeg_mem_dest keeps its buffer in a private struct).
typedef struct {
    struct jpeg_destination_mgr pub;
    JOCTET *buffer;
    size_t capacity;
} GrowingDestination;

static void growingInit(j_compress_ptr info) {
    GrowingDestination *destination = (GrowingDestination *)info->dest;
    destination->capacity = 1 << 16;
    destination->buffer = malloc(destination->capacity);
    if (destination->buffer == NULL) ERREXIT1(info, JERR_OUT_OF_MEMORY, 0);
    destination->pub.next_output_byte = destination->buffer;
    destination->pub.free_in_buffer = destination->capacity;
}

static boolean growingEmpty(j_compress_ptr info) {
    GrowingDestination *destination = (GrowingDestination *)info->dest;
    size_t used = destination->capacity;
    JOCTET *grown = realloc(destination->buffer, used * 2);
    if (grown == NULL) ERREXIT1(info, JERR_OUT_OF_MEMORY, 1);
    destination->buffer = grown;
    destination->capacity = used * 2;
    destination->pub.next_output_byte = grown + used;
    destination->pub.free_in_buffer = destination->capacity - used;
    return TRUE;
}

static void growingTerm(j_compress_ptr info) { (void)info; }

/// Everything one compression needs, on the heap so its fields are reliable after longjmp.
typedef struct {
    struct jpeg_compress_struct info;
    ErrorManager error;
    GrowingDestination destination;
} Encoder;

int CJPEGShims_encode(
    const uint8_t *pixels, const CJPEGShims_EncodeSettings *settings,
    uint8_t **output, unsigned long *outputSize, char *message, size_t messageCapacity
) {
    *output = NULL;
    *outputSize = 0;
    J_COLOR_SPACE inputSpace;
    int components;
    switch (settings->inputModel) {
    case CJPEGShims_gray: inputSpace = JCS_GRAYSCALE; components = 1; break;
    case CJPEGShims_rgb: inputSpace = JCS_RGB; components = 3; break;
    case CJPEGShims_cmyk: inputSpace = JCS_CMYK; components = 4; break;
    default:
        snprintf(message, messageCapacity, "unsupported input colour model %d", settings->inputModel);
        return CJPEGShims_misuse;
    }
    Encoder *encoder = calloc(1, sizeof(Encoder));
    if (encoder == NULL) {
        snprintf(message, messageCapacity, "out of memory");
        return CJPEGShims_failed;
    }
    installErrorManager(&encoder->error, &encoder->info.err);
    if (setjmp(encoder->error.jump)) {
        snprintf(message, messageCapacity, "%s", encoder->error.message);
        jpeg_destroy_compress(&encoder->info);
        free(encoder->destination.buffer);
        free(encoder);
        return CJPEGShims_failed;
    }
    jpeg_create_compress(&encoder->info);
    encoder->destination.pub.init_destination = growingInit;
    encoder->destination.pub.empty_output_buffer = growingEmpty;
    encoder->destination.pub.term_destination = growingTerm;
    encoder->info.dest = &encoder->destination.pub;

    encoder->info.image_width = (JDIMENSION)settings->width;
    encoder->info.image_height = (JDIMENSION)settings->height;
    encoder->info.input_components = components;
    encoder->info.in_color_space = inputSpace;
    jpeg_set_defaults(&encoder->info);
    if (settings->fileModel == CJPEGShims_ycck && inputSpace == JCS_CMYK) {
        jpeg_set_colorspace(&encoder->info, JCS_YCCK);
    }
    jpeg_set_quality(&encoder->info, settings->quality, TRUE);
    if (settings->progressive) jpeg_simple_progression(&encoder->info);
    jpeg_start_compress(&encoder->info, TRUE);
    size_t stride = (size_t)settings->width * (size_t)components;
    while (encoder->info.next_scanline < encoder->info.image_height) {
        JSAMPROW row = (JSAMPROW)(pixels + (size_t)encoder->info.next_scanline * stride);
        jpeg_write_scanlines(&encoder->info, &row, 1);
    }
    jpeg_finish_compress(&encoder->info);
    *output = encoder->destination.buffer;
    *outputSize = (unsigned long)(encoder->destination.capacity - encoder->destination.pub.free_in_buffer);
    jpeg_destroy_compress(&encoder->info);
    free(encoder);
    return CJPEGShims_ok;
}

void CJPEGShims_free(void *pointer) { free(pointer); }
