/* test_util.c - buf, hex, base64, random tokens. */
#include "test.h"
#include "util/buf.h"
#include "util/codec.h"
#include "util/err.h"

#include <stdlib.h>

WG_TEST(util_buf_append_and_limit)
{
    wg_buf_t b;
    wg_buf_init(&b, 8);
    WG_CHECK_EQ_INT(wg_buf_append_str(&b, "abcd"), 0);
    WG_CHECK_EQ_INT(wg_buf_printf(&b, "%d", 123), 0);
    WG_CHECK_STR((char *)b.data, "abcd123");
    WG_CHECK_EQ_INT(wg_buf_append_str(&b, "xy"), WG_ETOOBIG);
    WG_CHECK_EQ_INT(b.len, 7);
    wg_buf_consume(&b, 2);
    WG_CHECK_STR((char *)b.data, "cd123");
    wg_buf_dispose(&b);
}

WG_TEST(util_hex_roundtrip)
{
    uint8_t in[] = {0x00, 0x01, 0xab, 0xff}, out[4];
    char *h = wg_hex_encode(in, 4);
    WG_CHECK_STR(h, "0001abff");
    WG_CHECK_EQ_INT(wg_hex_decode(h, 8, out, 4), 4);
    WG_CHECK_MEM(in, out, 4);
    WG_CHECK_EQ_INT(wg_hex_decode("0g", 2, out, 4), WG_EINVAL);
    WG_CHECK_EQ_INT(wg_hex_decode("000102", 6, out, 2), WG_ETOOBIG);
    free(h);
}

WG_TEST(util_base64_rfc4648)
{
    /* RFC 4648 section 10 test vectors. */
    const char *plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    const char *enc[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    for (int i = 0; i < 7; i++) {
        uint8_t out[16];
        char *e = wg_base64_encode((const uint8_t *)plain[i], strlen(plain[i]));
        WG_CHECK_STR(e, enc[i]);
        free(e);
        ssize_t n = wg_base64_decode(enc[i], strlen(enc[i]), out, sizeof(out));
        WG_CHECK_EQ_INT(n, strlen(plain[i]));
        WG_CHECK_MEM(out, plain[i], (size_t)n);
    }
    uint8_t o[4];
    WG_CHECK_EQ_INT(wg_base64_decode("Zm9*", 4, o, 4), WG_EINVAL);
}

WG_TEST(util_random_token_unique)
{
    char *a = wg_random_token("inst_", 16), *b = wg_random_token("inst_", 16);
    WG_CHECK(a && b);
    WG_CHECK_EQ_INT(strlen(a), 5 + 32);
    WG_CHECK(strcmp(a, b) != 0);
    free(a);
    free(b);
}
