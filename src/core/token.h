/* token.h - credentials: generation, SHA-256 hashing, constant-time comparison.
 *
 * Tokens are never stored: only their SHA-256 as 64 lowercase hex digits. Generated tokens are
 * prefix + 32 random bytes (256 bits) in hex. */
#ifndef WG_CORE_TOKEN_H
#define WG_CORE_TOKEN_H

#include <stddef.h>

#define WG_TOKEN_HASH_LEN 64

/* out receives 64 hex digits + NUL. */
void wg_token_hash(const char *token, size_t len, char out[WG_TOKEN_HASH_LEN + 1]);
/* 1 when both are equal 64-hex-digit hashes, compared in constant time (CRYPTO_memcmp). */
int wg_token_hash_equal(const char *a, const char *b);
/* New random token "prefix" + 64 hex digits; caller frees; NULL on failure. */
char *wg_token_new(const char *prefix);
/* New random id: prefix + 2*nbytes hex digits; caller frees. */
char *wg_id_new(const char *prefix, size_t nbytes);
/* New random RFC 4122 version-4 UUID in lowercase (36 characters); caller frees; NULL on
 * failure. Instance ids are UUIDs because every product we replace documents them so. */
char *wg_uuid_new(void);

#endif
