/* qr.c - QR string -> 1-bit grayscale PNG in memory (libqrencode + libpng), and its base64.
 *
 * Does: encode the text with libqrencode, scale each module to scale x scale pixels, add the
 * quiet zone, and write the PNG through png_set_write_fn() into a wg_buf_t.
 * Does not: touch files or sockets, or add a data-URI prefix (the API layer decides that).
 * Ownership: the PNG bytes and the base64 string are malloc'd for the caller. */
#include "qr/qr.h"

#include "util/buf.h"
#include "util/codec.h"
#include "util/err.h"

#include <errno.h>
#include <png.h>
#include <qrencode.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

/* Hard limit for the PNG: the biggest symbol (177 modules + 2*16 margin) at scale 32 is
 * 6688 px square, 1 bit per pixel: ~5.6 MB raw. zlib never grows it much past that. */
#define WG_QR_PNG_LIMIT (8u * 1024 * 1024)

typedef struct {
    wg_buf_t out;
    int err; /* set by the write callback before it calls png_error() */
} wg_qr_writer_t;

static void wg_qr_write_cb(png_structp png, png_bytep data, png_size_t n)
{
    wg_qr_writer_t *w = png_get_io_ptr(png);
    int rv = wg_buf_append(&w->out, data, n);
    if (rv != 0) {
        w->err = rv;
        png_error(png, "wagate: png output buffer");
    }
}

static void wg_qr_flush_cb(png_structp png)
{
    (void)png;
}

/* libpng prints warnings and errors to stderr by default; we report through return codes. */
static void wg_qr_error_cb(png_structp png, png_const_charp msg)
{
    (void)msg;
    png_longjmp(png, 1);
}

static void wg_qr_warn_cb(png_structp png, png_const_charp msg)
{
    (void)png;
    (void)msg;
}

/* Fills `rows` (height rows of `stride` bytes, all pixels preset to white = 1) with the
 * scaled modules. Bit 7 of byte 0 is the leftmost pixel (PNG packs MSB first). */
static void wg_qr_paint(const QRcode *q, int scale, int margin, uint8_t *pix, size_t stride)
{
    for (int my = 0; my < q->width; my++) {
        uint8_t *row0 = pix + (size_t)(margin + my) * (size_t)scale * stride;
        for (int mx = 0; mx < q->width; mx++) {
            if (!(q->data[my * q->width + mx] & 1)) /* bit 0: dark module */
                continue;
            size_t x0 = (size_t)(margin + mx) * (size_t)scale;
            for (size_t x = x0; x < x0 + (size_t)scale; x++)
                row0[x >> 3] &= (uint8_t) ~(0x80u >> (x & 7));
        }
        /* The remaining scale-1 pixel rows of this module row are copies of the first. */
        for (int k = 1; k < scale; k++)
            memcpy(row0 + (size_t)k * stride, row0, stride);
    }
}

/* Writes the pixel rows as a PNG into w->out. Returns 0 or a WG_E* code. Everything this
 * function allocates is freed before it returns, on both paths. */
static int wg_qr_encode_png(wg_qr_writer_t *w, png_bytep *rows, uint32_t side)
{
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, wg_qr_error_cb,
                                              wg_qr_warn_cb);
    png_infop info = NULL;
    int rv = WG_ENOMEM;

    if (png == NULL)
        return WG_ENOMEM;
    info = png_create_info_struct(png);
    if (info == NULL)
        goto out;
    if (setjmp(png_jmpbuf(png))) {
        /* Only a failed append or an internal libpng failure land here. */
        rv = w->err ? w->err : WG_ENOMEM;
        goto out;
    }
    png_set_write_fn(png, w, wg_qr_write_cb, wg_qr_flush_cb);
    png_set_IHDR(png, info, side, side, 1, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    /* Flat two-colour image: no filtering compresses best and is fastest. */
    png_set_filter(png, PNG_FILTER_TYPE_BASE, PNG_FILTER_NONE);
    png_set_compression_level(png, 9);
    png_set_rows(png, info, rows);
    png_write_png(png, info, PNG_TRANSFORM_IDENTITY, NULL);
    rv = 0;
out:
    png_destroy_write_struct(&png, info ? &info : NULL);
    return rv;
}

int wg_qr_png(const char *text, int scale, int margin, uint8_t **png, size_t *len)
{
    QRcode *q = NULL;
    uint8_t *pix = NULL;
    png_bytep *rows = NULL;
    wg_qr_writer_t w;
    size_t tlen, stride;
    uint32_t side;
    int rv;

    wg_buf_init(&w.out, WG_QR_PNG_LIMIT);
    w.err = 0;
    if (text == NULL || png == NULL || len == NULL)
        return WG_EINVAL;
    if (scale <= 0)
        scale = WG_QR_DEFAULT_SCALE;
    if (margin < 0)
        margin = WG_QR_DEFAULT_MARGIN;
    if (scale > WG_QR_MAX_SCALE || margin > WG_QR_MAX_MARGIN)
        return WG_EINVAL;
    tlen = strlen(text);
    if (tlen == 0)
        return WG_EINVAL;
    if (tlen > WG_QR_MAX_TEXT)
        return WG_ETOOBIG;

    /* Byte mode with case kept: libqrencode still picks numeric/alphanumeric segments where
     * they are shorter. Version 0 = smallest symbol that fits. */
    errno = 0;
    q = QRcode_encodeString(text, 0, QR_ECLEVEL_L, QR_MODE_8, 1);
    if (q == NULL) {
        rv = (errno == ERANGE) ? WG_ETOOBIG : (errno == EINVAL ? WG_EINVAL : WG_ENOMEM);
        goto out;
    }

    side = (uint32_t)(q->width + 2 * margin) * (uint32_t)scale;
    stride = (side + 7) / 8;
    pix = malloc(stride * side);
    rows = malloc(sizeof(*rows) * side);
    if (pix == NULL || rows == NULL) {
        rv = WG_ENOMEM;
        goto out;
    }
    memset(pix, 0xff, stride * side); /* white, including the quiet zone */
    wg_qr_paint(q, scale, margin, pix, stride);
    for (uint32_t y = 0; y < side; y++)
        rows[y] = pix + (size_t)y * stride;

    if ((rv = wg_qr_encode_png(&w, rows, side)) != 0)
        goto out;
    *png = wg_buf_steal(&w.out, len);
    rv = 0;
out:
    wg_buf_dispose(&w.out);
    free(rows);
    free(pix);
    if (q != NULL)
        QRcode_free(q);
    return rv;
}

char *wg_qr_png_base64(const char *text, int scale, int margin, int *err)
{
    uint8_t *png = NULL;
    size_t len = 0;
    char *b64 = NULL;
    int rv = wg_qr_png(text, scale, margin, &png, &len);

    if (rv == 0) {
        b64 = wg_base64_encode(png, len);
        if (b64 == NULL)
            rv = WG_ENOMEM;
    }
    free(png);
    if (err != NULL)
        *err = rv;
    return b64;
}
