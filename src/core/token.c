/* token.c - see token.h. */
#include "core/token.h"
#include "util/codec.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <openssl/sha.h>
#include <string.h>

void wg_token_hash(const char *token, size_t len, char out[WG_TOKEN_HASH_LEN + 1])
{
    static const char hx[] = "0123456789abcdef";
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)token, len, md);
    for (int i = 0; i < SHA256_DIGEST_LENGTH; i++) {
        out[2 * i] = hx[md[i] >> 4];
        out[2 * i + 1] = hx[md[i] & 15];
    }
    out[WG_TOKEN_HASH_LEN] = 0;
}

int wg_token_hash_equal(const char *a, const char *b)
{
    if (!a || !b || strlen(a) != WG_TOKEN_HASH_LEN || strlen(b) != WG_TOKEN_HASH_LEN)
        return 0;
    return CRYPTO_memcmp(a, b, WG_TOKEN_HASH_LEN) == 0;
}

char *wg_token_new(const char *prefix)
{
    return wg_random_token(prefix, 32);
}

char *wg_id_new(const char *prefix, size_t nbytes)
{
    return wg_random_token(prefix, nbytes);
}

char *wg_uuid_new(void)
{
    unsigned char b[16];
    if (RAND_bytes(b, sizeof(b)) != 1)
        return NULL;
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    char *out = malloc(37);
    if (!out)
        return NULL;
    snprintf(out, 37,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
             b[13], b[14], b[15]);
    return out;
}
