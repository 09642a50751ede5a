/* test_qr.c - QR rendering: the PNG decodes (zbarimg) back to the same string; bad input
 * fails cleanly; PNG header says 1-bit grayscale of the expected size. */
#include "test.h"
#include "qr/qr.h"
#include "util/codec.h"
#include "util/err.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A realistic pairing string (§5.3 of wa-protocol-core.md): URL form, 6-char-ish ref,
 * three base64 32-byte keys and the platform id. */
static const char *wg_test_qr_text =
    "https://wa.me/settings/linked_devices#2@Xk1RbUp3Q0pWZ1dTdkVmR2hZTnFhbWpuV0p6Yk5PQ0tH"
    "cVpJSDhBeUJGZz09,"
    "pZ4m0Gx3u6yXq9s1Vd2rLwK8cJfTnH5bYeA7oQiMUlE=,"
    "3tJ7kR2pNfXw9yC1bV6mQzL0sH4dG8aE5uOiKjTnWcY=,"
    "Qm9vRmFrZUFkdlNlY3JldEZvclRlc3RzMDEyMzQ1Njc=,1";

/* Writes the PNG to a temp file and returns what zbarimg decoded (malloc'd), or NULL. */
static char *wg_test_qr_decode(const uint8_t *png, size_t len)
{
    char path[] = "/tmp/wg_test_qr_XXXXXX";
    char cmd[128];
    char *out = NULL;
    size_t cap = 8192, n = 0;
    FILE *p;
    int fd = mkstemp(path);

    if (fd < 0)
        return NULL;
    if (write(fd, png, len) != (ssize_t)len) {
        close(fd);
        unlink(path);
        return NULL;
    }
    close(fd);
    snprintf(cmd, sizeof(cmd), "zbarimg --raw -q %s 2>/dev/null", path);
    p = popen(cmd, "r");
    if (p != NULL) {
        out = calloc(1, cap);
        if (out != NULL)
            n = fread(out, 1, cap - 1, p);
        pclose(p);
        /* zbarimg ends each symbol with a newline. */
        while (out != NULL && n > 0 && (out[n - 1] == '\n' || out[n - 1] == '\r'))
            out[--n] = '\0';
    }
    unlink(path);
    return out;
}

static uint32_t wg_test_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

WG_TEST(qr_png_decodes_to_same_string)
{
    uint8_t *png = NULL;
    size_t len = 0;
    char *got;

    WG_CHECK_EQ_INT(wg_qr_png(wg_test_qr_text, 0, -1, &png, &len), 0);
    WG_CHECK(png != NULL && len > 33);
    /* Signature, then IHDR: width, height, bit depth 1, colour type 0 (grayscale). */
    WG_CHECK_MEM(png, "\x89PNG\r\n\x1a\n", 8);
    WG_CHECK_MEM(png + 12, "IHDR", 4);
    uint32_t w = wg_test_be32(png + 16), h = wg_test_be32(png + 20);
    WG_CHECK_EQ_INT(w, h);
    WG_CHECK_EQ_INT(w % WG_QR_DEFAULT_SCALE, 0);
    /* 223 bytes at level L: version 10 = 57 modules, + 2*4 quiet zone. */
    WG_CHECK_EQ_INT(w, (57 + 2 * WG_QR_DEFAULT_MARGIN) * WG_QR_DEFAULT_SCALE);
    WG_CHECK_EQ_INT(png[24], 1);
    WG_CHECK_EQ_INT(png[25], 0);
    /* Small enough to push over a WebSocket/webhook every 20 s. */
    WG_CHECK(len < 4096);
    got = wg_test_qr_decode(png, len);
    free(png);
    WG_CHECK(got != NULL);
    WG_CHECK_STR(got, wg_test_qr_text);
    free(got);
}

WG_TEST(qr_png_legacy_four_part_string_and_small_scale)
{
    const char *legacy = "2@Xk1RbUp3Q0pWZ1dTdkVmR2hZTnFhbWpuV0p6Yk5PQ0tHcVpJSDhBeUJGZz09,"
                         "pZ4m0Gx3u6yXq9s1Vd2rLwK8cJfTnH5bYeA7oQiMUlE=,"
                         "3tJ7kR2pNfXw9yC1bV6mQzL0sH4dG8aE5uOiKjTnWcY=,"
                         "Qm9vRmFrZUFkdlNlY3JldEZvclRlc3RzMDEyMzQ1Njc=";
    uint8_t *png = NULL;
    size_t len = 0;
    char *got;

    WG_CHECK_EQ_INT(wg_qr_png(legacy, 3, 4, &png, &len), 0);
    WG_CHECK_EQ_INT(wg_test_be32(png + 16) % 3, 0);
    got = wg_test_qr_decode(png, len);
    free(png);
    WG_CHECK(got != NULL);
    WG_CHECK_STR(got, legacy);
    free(got);
}

WG_TEST(qr_base64_has_no_prefix_and_decodes)
{
    int err = -99;
    char *b64 = wg_qr_png_base64(wg_test_qr_text, 0, -1, &err);
    uint8_t *png;
    ssize_t n;
    char *got;

    WG_CHECK_EQ_INT(err, 0);
    WG_CHECK(b64 != NULL);
    WG_CHECK(strncmp(b64, "iVBORw0KGgo", 11) == 0); /* base64 of the PNG signature */
    WG_CHECK(strchr(b64, ',') == NULL && strchr(b64, ':') == NULL);
    png = malloc(strlen(b64));
    WG_CHECK(png != NULL);
    n = wg_base64_decode(b64, strlen(b64), png, strlen(b64));
    free(b64);
    WG_CHECK(n > 0);
    got = wg_test_qr_decode(png, (size_t)n);
    free(png);
    WG_CHECK(got != NULL);
    WG_CHECK_STR(got, wg_test_qr_text);
    free(got);
}

WG_TEST(qr_rejects_bad_input)
{
    uint8_t sentinel = 0;
    uint8_t *png = &sentinel;
    size_t len = 7;
    int err = 0;
    char *big;

    WG_CHECK_EQ_INT(wg_qr_png("", 0, -1, &png, &len), WG_EINVAL);
    WG_CHECK_EQ_INT(wg_qr_png(NULL, 0, -1, &png, &len), WG_EINVAL);
    WG_CHECK_EQ_INT(wg_qr_png("x", WG_QR_MAX_SCALE + 1, -1, &png, &len), WG_EINVAL);
    WG_CHECK_EQ_INT(wg_qr_png("x", 0, WG_QR_MAX_MARGIN + 1, &png, &len), WG_EINVAL);
    WG_CHECK(wg_qr_png_base64("", 0, -1, &err) == NULL);
    WG_CHECK_EQ_INT(err, WG_EINVAL);
    WG_CHECK(wg_qr_png_base64(NULL, 0, -1, NULL) == NULL);

    big = malloc(WG_QR_MAX_TEXT + 2);
    WG_CHECK(big != NULL);
    memset(big, 'a', WG_QR_MAX_TEXT + 1);
    big[WG_QR_MAX_TEXT + 1] = '\0';
    err = wg_qr_png(big, 0, -1, &png, &len);
    free(big);
    WG_CHECK_EQ_INT(err, WG_ETOOBIG);
    /* Outputs are untouched on every failure above. */
    WG_CHECK(png == &sentinel);
    WG_CHECK_EQ_INT(len, 7);
}

WG_TEST(qr_max_capacity_fits)
{
    /* Exactly the version-40-L byte capacity: the largest symbol, 177 modules. */
    char *big = malloc(WG_QR_MAX_TEXT + 1);
    uint8_t *png = NULL;
    size_t len = 0;

    WG_CHECK(big != NULL);
    memset(big, 'a', WG_QR_MAX_TEXT);
    big[WG_QR_MAX_TEXT] = '\0';
    int rv = wg_qr_png(big, 1, 0, &png, &len);
    free(big);
    WG_CHECK_EQ_INT(rv, 0);
    WG_CHECK_EQ_INT(wg_test_be32(png + 16), 177);
    free(png);
}
