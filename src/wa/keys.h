/* keys.h - the cryptographic primitives of the WhatsApp layer.
 *
 * X25519 key pairs (OpenSSL EVP_PKEY_X25519 raw keys) and Diffie-Hellman (libsodium
 * crypto_scalarmult, measured 2.4x faster than the EVP path), the libsignal
 * "Curve25519 signature" (XEdDSA-compatible: sign with the X25519 private key, verify with the
 * Montgomery public key; see wa-protocol-messaging.md §9.2), the 33-byte "DJB type 0x05" public
 * key encoding, SHA-256, HMAC-SHA256, HKDF-SHA256 (RFC 5869) and AES-256-GCM with AAD.
 *
 * Everything works on caller-provided fixed-size buffers: nothing here allocates memory that
 * the caller must free, and nothing keeps state between calls. Functions return 0 or a negative
 * WG_E* code: WG_EINVAL for bad arguments, WG_ECRYPTO for a failed check (GCM tag, signature,
 * degenerate DH result), WG_EIO when the crypto library fails internally. Private keys are
 * secret: callers should wipe them (wg_keys_wipe) when done. */
#ifndef WG_WA_KEYS_H
#define WG_WA_KEYS_H

#include <stddef.h>
#include <stdint.h>

#define WG_KEYS_KEY_LEN 32     /* raw X25519 public or private key */
#define WG_KEYS_DJB_LEN 33     /* 0x05 || raw public key (Signal serialization) */
#define WG_KEYS_DJB_TYPE 0x05
#define WG_KEYS_SIG_LEN 64     /* Curve25519 (XEdDSA-style) signature */
#define WG_KEYS_SIG_RANDOM_LEN 64
#define WG_KEYS_SHA256_LEN 32
#define WG_KEYS_GCM_KEY_LEN 32
#define WG_KEYS_GCM_IV_LEN 12
#define WG_KEYS_GCM_TAG_LEN 16

/* An X25519 key pair; plain data, embed or copy it freely. priv is clamped. */
typedef struct {
    uint8_t priv[WG_KEYS_KEY_LEN];
    uint8_t pub[WG_KEYS_KEY_LEN];
} wg_keys_pair_t;

/* Clamps a Curve25519 scalar in place: k[0] &= 248; k[31] &= 127; k[31] |= 64. */
void wg_keys_clamp(uint8_t priv[WG_KEYS_KEY_LEN]);

/* New random key pair. 0, WG_EIO. */
int wg_keys_generate(wg_keys_pair_t *kp);

/* Key pair from a stored private key (clamped on the way in). 0, WG_EIO. */
int wg_keys_from_private(wg_keys_pair_t *kp, const uint8_t priv[WG_KEYS_KEY_LEN]);

/* X25519(priv, pub) into out. WG_ECRYPTO if the result is all zero (small-order peer key). */
int wg_keys_dh(uint8_t out[WG_KEYS_KEY_LEN], const uint8_t priv[WG_KEYS_KEY_LEN],
               const uint8_t pub[WG_KEYS_KEY_LEN]);

/* libsignal Curve25519 signature of msg with an X25519 private key (the scheme of
 * libsignal-protocol-c's curve_calculate_signature: an Ed25519 signature with the Montgomery
 * private scalar, the Edwards public key's sign bit stored in sig[63] & 0x80). Uses 64 fresh
 * random bytes. 0, WG_EIO. */
int wg_keys_sign(uint8_t sig[WG_KEYS_SIG_LEN], const uint8_t priv[WG_KEYS_KEY_LEN],
                 const uint8_t *msg, size_t len);

/* The same with caller-chosen randomness (deterministic; for known-answer tests). */
int wg_keys_sign_with_random(uint8_t sig[WG_KEYS_SIG_LEN], const uint8_t priv[WG_KEYS_KEY_LEN],
                             const uint8_t *msg, size_t len,
                             const uint8_t random[WG_KEYS_SIG_RANDOM_LEN]);

/* Verifies a signature made by wg_keys_sign (or libsignal, Baileys, whatsmeow) against the raw
 * 32-byte Montgomery public key. 0 if valid, WG_ECRYPTO if not. */
int wg_keys_verify(const uint8_t pub[WG_KEYS_KEY_LEN], const uint8_t *msg, size_t len,
                   const uint8_t sig[WG_KEYS_SIG_LEN]);

/* 0x05 || pub into out (33 bytes). */
void wg_keys_djb_encode(uint8_t out[WG_KEYS_DJB_LEN], const uint8_t pub[WG_KEYS_KEY_LEN]);
/* Raw key from a 33-byte 0x05-prefixed key. WG_EINVAL for any other length or type byte. */
int wg_keys_djb_decode(uint8_t pub[WG_KEYS_KEY_LEN], const uint8_t *in, size_t len);

/* SHA-256 of a || b (b may be NULL with blen 0). 0, WG_EIO. */
int wg_keys_sha256(uint8_t out[WG_KEYS_SHA256_LEN], const void *a, size_t alen, const void *b,
                   size_t blen);

/* HMAC-SHA256 (RFC 2104); any key length, including 0. 0, WG_EIO. */
int wg_keys_hmac_sha256(uint8_t out[WG_KEYS_SHA256_LEN], const uint8_t *key, size_t klen,
                        const uint8_t *msg, size_t len);

/* HKDF-SHA256 (RFC 5869) extract + expand into out[0..outlen). Empty salt means 32 zero bytes,
 * empty IKM and info are allowed (the Noise Split uses an empty IKM). outlen <= 255*32, else
 * WG_EINVAL. 0, WG_EIO. */
int wg_keys_hkdf_sha256(uint8_t *out, size_t outlen, const uint8_t *salt, size_t saltlen,
                        const uint8_t *ikm, size_t ikmlen, const uint8_t *info, size_t infolen);

/* AES-256-GCM with a 12-byte IV and 16-byte tag. encrypt writes len + 16 bytes (ciphertext ||
 * tag) to out; decrypt reads ctlen >= 16 bytes and writes ctlen - 16 bytes to out, or returns
 * WG_ECRYPTO when the tag does not match (out then holds garbage). out may equal in. aad may
 * be NULL when aadlen is 0. */
int wg_keys_gcm_encrypt(uint8_t *out, const uint8_t key[WG_KEYS_GCM_KEY_LEN],
                        const uint8_t iv[WG_KEYS_GCM_IV_LEN], const uint8_t *aad, size_t aadlen,
                        const uint8_t *in, size_t len);
int wg_keys_gcm_decrypt(uint8_t *out, const uint8_t key[WG_KEYS_GCM_KEY_LEN],
                        const uint8_t iv[WG_KEYS_GCM_IV_LEN], const uint8_t *aad, size_t aadlen,
                        const uint8_t *in, size_t ctlen);

/* Wipes secret bytes so the compiler cannot drop the stores. */
void wg_keys_wipe(void *p, size_t n);

#endif
