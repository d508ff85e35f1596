// CJPEG: libjpeg-turbo's jpeglib API. jpeglib.h needs <stdio.h> (FILE, size_t) included first.
#ifndef CJPEG_SHIM_H
#define CJPEG_SHIM_H
#include <stdio.h>
#include <stddef.h>
#include <jpeglib.h>
#endif
