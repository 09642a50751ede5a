/* qr.h - render a text (the WhatsApp pairing string) as a QR code PNG.
 *
 * Pure function of its input: no I/O, no globals. The QR symbol is made by libqrencode
 * (byte mode, error-correction level L: a screen needs little redundancy and L keeps a
 * ~220-character pairing string at version 10, 57x57 modules); the image is a 1-bit
 * grayscale PNG written to memory by libpng, black modules on white.
 *
 * The caller frees *png (free()) and the base64 string. On failure nothing is allocated and
 * the outputs *png and *len are left untouched. */
#ifndef WG_QR_H
#define WG_QR_H

#include <stddef.h>
#include <stdint.h>

#define WG_QR_DEFAULT_SCALE 6  /* pixels per module: 57 modules * 6 = 342 px + quiet zone */
#define WG_QR_DEFAULT_MARGIN 4 /* quiet zone in modules, as ISO/IEC 18004 requires */
#define WG_QR_MAX_SCALE 32
#define WG_QR_MAX_MARGIN 16
/* Byte-mode capacity of the largest QR symbol (version 40, level L). Longer input is
 * refused with WG_ETOOBIG before libqrencode sees it. */
#define WG_QR_MAX_TEXT 2953

/* Renders `text` (NUL-terminated, 1..WG_QR_MAX_TEXT bytes) into a PNG.
 * scale <= 0 means WG_QR_DEFAULT_SCALE, margin < 0 means WG_QR_DEFAULT_MARGIN.
 * Returns 0 and sets *png (malloc'd) / *len; WG_EINVAL for NULL/empty text or a scale/margin
 * above the maximum, WG_ETOOBIG when the text does not fit in a QR symbol, WG_ENOMEM. */
int wg_qr_png(const char *text, int scale, int margin, uint8_t **png, size_t *len);

/* Same, but returns the PNG as a malloc'd, NUL-terminated standard base64 string with no
 * "data:image/png;base64," prefix, or NULL on any error (the caller frees it). When `err` is
 * not NULL it receives the error code (0 on success). */
char *wg_qr_png_base64(const char *text, int scale, int margin, int *err);

#endif
