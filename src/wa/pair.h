/* pair.h - the pairing cryptography of both sides of a WhatsApp multi-device link, on bytes.
 *
 * Companion side (our gateway, wa-protocol-core.md §5, §6, §8): the QR string, verification of
 * the <pair-success> device identity and the <pair-device-sign> reply, and the pairing-code
 * ("link with phone number") key wrapping, key bundle and new adv secret.
 * Phone side (the sandbox's simulated primary phone): the inverse operations - making the
 * signed <device-identity> of pair-success, checking the companion's reply, and the primary's
 * half of the pairing-code exchange.
 *
 * This module does no I/O and keeps no state: it takes bytes (stanza contents) and keys and
 * gives back bytes. The engine and the sandbox wrap these bytes into binary-XML stanzas. The
 * only outside input it touches is randomness (wg_random_bytes) for salts, IVs, nonces and
 * signatures; every function that draws randomness has a *_with_random twin for known-answer
 * tests.
 *
 * Memory: buffers returned through uint8_t ** / char ** are malloc'd and the caller free()s
 * them; result structs have a _dispose function. Everything else is written to caller-sized
 * fixed buffers. On error nothing is returned that needs freeing.
 *
 * Errors: 0, or a negative WG_E* (util/err.h): WG_EINVAL bad arguments or a malformed text
 * input (QR string, pairing code), WG_EPROTO malformed peer bytes, WG_ECRYPTO a MAC, tag or
 * signature that does not verify, WG_ETOOBIG peer bytes over WG_PAIR_MAX_INPUT, WG_ENOMEM,
 * WG_EIO (crypto library failure). wg_pair_verify_success also says WHICH check failed
 * (wg_pair_fail_t), because the engine answers each with a different error stanza. */
#ifndef WG_WA_PAIR_H
#define WG_WA_PAIR_H

#include <stddef.h>
#include <stdint.h>

#include "wa/keys.h"

#define WG_PAIR_ADV_SECRET_LEN 32
#define WG_PAIR_REF_MAX 512            /* longest QR ref we accept (real refs are ~80 chars) */
#define WG_PAIR_MAX_INPUT 8192         /* hard limit on peer-provided protobuf bytes */
#define WG_PAIR_CODE_LEN 8             /* pairing code without the dash */
#define WG_PAIR_CODE_BYTES 5           /* random bytes behind a code (8 x 5 bits) */
#define WG_PAIR_CODE_DISPLAY_LEN 9     /* "XXXX-XXXX" */
#define WG_PAIR_WRAPPED_EPH_LEN 80     /* salt(32) || iv(16) || AES-256-CTR(pub)(32) */
#define WG_PAIR_KEY_BUNDLE_LEN 156     /* salt(32) || nonce(12) || GCM(3 x 32)(96) || tag(16) */
#define WG_PAIR_PBKDF2_ITERATIONS (2 << 16) /* 131072, §6.4 */
#define WG_PAIR_WRAP_RANDOM_LEN 48     /* salt(32) || iv(16) */
#define WG_PAIR_FINISH_RANDOM_LEN 76   /* bundle salt(32) || nonce(12) || adv random(32) */

/* The code alphabet of §6.2: base32 without 0, I, O, U. */
#define WG_PAIR_CODE_ALPHABET "123456789ABCDEFGHJKLMNPQRSTVWXYZ"

/* ---- QR string (§5.3) -------------------------------------------------------------------- */

typedef enum {
    WG_PAIR_QR_URL = 0, /* https://wa.me/settings/linked_devices#ref,noise,identity,adv,platform */
    WG_PAIR_QR_LEGACY,  /* ref,noise,identity,adv (before May 2026) */
} wg_pair_qr_form_t;

#define WG_PAIR_QR_URL_PREFIX "https://wa.me/settings/linked_devices#"

/* Builds the QR text. ref: the bytes of one <ref> (1..WG_PAIR_REF_MAX printable ASCII bytes,
 * no ','); keys and secret raw 32 bytes, standard padded base64 in the string; platform: the
 * companion web-client type ('0'-'9' or 'a'-'z', e.g. '1' Chrome; ignored for the legacy form).
 * *out is malloc'd and NUL-terminated; the caller frees it. 0, WG_EINVAL, WG_ENOMEM. */
int wg_pair_qr_string(char **out, const uint8_t *ref, size_t ref_len,
                      const uint8_t noise_pub[WG_KEYS_KEY_LEN],
                      const uint8_t identity_pub[WG_KEYS_KEY_LEN],
                      const uint8_t adv_secret[WG_PAIR_ADV_SECRET_LEN], char platform,
                      wg_pair_qr_form_t form);

/* A parsed QR string (what the phone learns by scanning). Embedded; wg_pair_qr_dispose frees
 * ref. */
typedef struct {
    wg_pair_qr_form_t form;
    char *ref; /* malloc'd, NUL-terminated */
    size_t ref_len;
    uint8_t noise_pub[WG_KEYS_KEY_LEN];
    uint8_t identity_pub[WG_KEYS_KEY_LEN];
    uint8_t adv_secret[WG_PAIR_ADV_SECRET_LEN];
    char platform; /* 0 for the legacy form */
} wg_pair_qr_t;

/* Parses either form. 0, WG_EINVAL (not a pairing QR: wrong part count, bad base64, key not 32
 * bytes, bad platform), WG_ENOMEM. On error *qr holds nothing to dispose. */
int wg_pair_qr_parse(wg_pair_qr_t *qr, const char *s, size_t len);
void wg_pair_qr_dispose(wg_pair_qr_t *qr);

/* ---- ADV device identity (§5.5-§5.7) ----------------------------------------------------- */

/* The fields of an ADVDeviceIdentity. hosted: the account is a hosted (business API) one,
 * encoded as accountType = deviceType = HOSTED; decides the 06 05 prefixes. */
typedef struct {
    uint32_t raw_id;
    uint64_t timestamp; /* unix seconds */
    uint32_t key_index;
    int hosted;
} wg_pair_device_t;

/* Which check of wg_pair_verify_success failed, and so which error the engine sends back. */
typedef enum {
    WG_PAIR_FAIL_NONE = 0,
    WG_PAIR_FAIL_MALFORMED, /* 500 internal-error: undecodable protobuf, missing details */
    WG_PAIR_FAIL_HMAC,      /* 401 hmac-mismatch: wrong adv secret or tampered container */
    WG_PAIR_FAIL_SIGNATURE, /* 401 signature-mismatch: account signature does not verify */
    WG_PAIR_FAIL_INTERNAL,  /* 500 internal-error: out of memory, crypto library failure */
} wg_pair_fail_t;

/* The error code and text of the <error> the companion sends for f (static strings). */
int wg_pair_fail_code(wg_pair_fail_t f);
const char *wg_pair_fail_text(wg_pair_fail_t f);

/* What a verified pair-success gives the companion. Embedded; wg_pair_success_dispose frees
 * account and reply. */
typedef struct {
    /* The full ADVSignedDeviceIdentity (details, accountSignatureKey, accountSignature, our
     * deviceSignature): persist it as the account; messaging needs it. */
    uint8_t *account;
    size_t account_len;
    /* The same re-encoded WITHOUT field 2 (accountSignatureKey): the content of
     * <pair-device-sign><device-identity key-index="N">. */
    uint8_t *reply;
    size_t reply_len;
    /* The primary phone's identity key (raw 32): trust it as a Signal identity. */
    uint8_t account_signature_key[WG_KEYS_KEY_LEN];
    wg_pair_device_t device;   /* decoded details; device.key_index is the key-index attr */
    int container_hosted;      /* the HMAC container said HOSTED (06 05 HMAC prefix used) */
} wg_pair_success_t;

/* Companion: verifies the content of <pair-success><device-identity> (an
 * ADVSignedDeviceIdentityHMAC) with our adv secret and identity key pair, and signs it.
 * Steps (§5.7): HMAC-SHA256(adv secret, [06 05 if container HOSTED] || details), compared in
 * constant time; decode ADVSignedDeviceIdentity and its ADVDeviceIdentity; account signature
 * (32-byte key, 64-byte signature) over (06 00 | 06 05 if deviceType HOSTED) || details ||
 * identity pub; device signature over 06 01 || details || identity pub || account key.
 * Returns 0 and fills *out; or a negative code with *fail (may be NULL) set:
 * WG_ECRYPTO + FAIL_HMAC, WG_ECRYPTO + FAIL_SIGNATURE, WG_EPROTO / WG_ETOOBIG +
 * FAIL_MALFORMED, WG_ENOMEM / WG_EIO + FAIL_INTERNAL. On error *out holds nothing. */
int wg_pair_verify_success(wg_pair_success_t *out, wg_pair_fail_t *fail,
                           const uint8_t adv_secret[WG_PAIR_ADV_SECRET_LEN],
                           const wg_keys_pair_t *identity, const uint8_t *device_identity,
                           size_t len);
void wg_pair_success_dispose(wg_pair_success_t *s);

/* Decodes ADVDeviceIdentity bytes (the details). 0, WG_EPROTO, WG_ETOOBIG. */
int wg_pair_device_decode(wg_pair_device_t *dev, const uint8_t *details, size_t len);

/* Phone: makes what the server puts in <pair-success><device-identity>: ADVDeviceIdentity
 * details from *dev, the account signature with the phone's identity ("account") key over
 * (06 00 | 06 05 if hosted) || details || companion identity pub, the ADVSignedDeviceIdentity
 * (details, accountSignatureKey, accountSignature), and the HMAC container keyed with the adv
 * secret from the QR (or the pairing-code derived one), accountType HOSTED when hosted.
 * *out (the container) and, if details is not NULL, *details (the ADVDeviceIdentity bytes to
 * keep for wg_pair_phone_verify_sign) are malloc'd; the caller frees both. 0, WG_ENOMEM, WG_EIO. */
int wg_pair_phone_make_identity(uint8_t **out, size_t *out_len, uint8_t **details,
                                size_t *details_len, const wg_keys_pair_t *account,
                                const uint8_t companion_identity_pub[WG_KEYS_KEY_LEN],
                                const uint8_t adv_secret[WG_PAIR_ADV_SECRET_LEN],
                                const wg_pair_device_t *dev);

/* Phone: checks the companion's <pair-device-sign><device-identity> bytes: an
 * ADVSignedDeviceIdentity WITHOUT field 2, whose details equal the ones the phone made, whose
 * account signature is still the phone's, and whose device signature verifies with the
 * companion identity key over 06 01 || details || companion identity pub || account pub.
 * 0; WG_EPROTO (undecodable, field 2 present, details changed, signature lengths);
 * WG_ECRYPTO (a signature does not verify); WG_ETOOBIG. */
int wg_pair_phone_verify_sign(const uint8_t account_pub[WG_KEYS_KEY_LEN],
                              const uint8_t companion_identity_pub[WG_KEYS_KEY_LEN],
                              const uint8_t *reply, size_t reply_len, const uint8_t *details,
                              size_t details_len);

/* ---- Pairing code (§6) ------------------------------------------------------------------- */

/* A new random code: 8 characters of WG_PAIR_CODE_ALPHABET + NUL. 0, WG_EIO. */
int wg_pair_code_new(char code[WG_PAIR_CODE_LEN + 1]);
/* The code of 5 given bytes, 5 bits per character, most significant first. */
void wg_pair_code_from_bytes(char code[WG_PAIR_CODE_LEN + 1],
                             const uint8_t bytes[WG_PAIR_CODE_BYTES]);
/* "XXXX-XXXX" + NUL from an 8-character code. 0, WG_EINVAL. */
int wg_pair_code_display(char out[WG_PAIR_CODE_DISPLAY_LEN + 1], const char *code);
/* What a user typed ("abcd-efgh", "ABCDEFGH", surrounding spaces) to the 8-character code
 * used for key derivation: dash and spaces dropped, upper-cased, every character in the
 * alphabet. 0, WG_EINVAL. */
int wg_pair_code_normalize(char code[WG_PAIR_CODE_LEN + 1], const char *in);

/* iterations: PBKDF2-HMAC-SHA256 rounds; 0 means WG_PAIR_PBKDF2_ITERATIONS (what the real
 * service uses; other values exist only so unit tests can run fast). code: the 8 characters
 * without the dash (WG_EINVAL otherwise). */

/* Wraps an ephemeral public key with the code: salt(32) || iv(16) || AES-256-CTR(K, iv, pub)
 * with K = PBKDF2(code, salt, iterations, 32). The companion wraps its ephemeral for
 * companion_hello; the phone wraps the primary ephemeral for its reply. 0, WG_EINVAL, WG_EIO. */
int wg_pair_code_wrap_ephemeral(uint8_t out[WG_PAIR_WRAPPED_EPH_LEN], const char *code,
                                const uint8_t eph_pub[WG_KEYS_KEY_LEN], uint32_t iterations);
int wg_pair_code_wrap_ephemeral_with_random(uint8_t out[WG_PAIR_WRAPPED_EPH_LEN],
                                            const char *code,
                                            const uint8_t eph_pub[WG_KEYS_KEY_LEN],
                                            uint32_t iterations,
                                            const uint8_t random[WG_PAIR_WRAP_RANDOM_LEN]);
/* The inverse; reads the first 80 bytes of wrapped (len >= 80, else WG_EPROTO). CTR has no
 * MAC: a wrong code gives a wrong key here, and the failure shows later (the key bundle's GCM
 * tag on the phone). 0, WG_EINVAL, WG_EPROTO, WG_EIO. */
int wg_pair_code_unwrap_ephemeral(uint8_t eph_pub[WG_KEYS_KEY_LEN], const char *code,
                                  const uint8_t *wrapped, size_t len, uint32_t iterations);

/* Companion, after the primary's notification (§6.6): unwraps the primary ephemeral,
 * ephShared = X25519(companion eph priv, primary eph pub), encrypts the key bundle
 * (identity pub || primary identity pub || advRandom) under HKDF(ephShared, bundleSalt,
 * "link_code_pairing_key_bundle_encryption_key"), and derives the new adv secret
 * HKDF(ephShared || X25519(identity priv, primary identity pub) || advRandom, no salt,
 * "adv_secret") that replaces the stored one. bundle: bundleSalt || nonce || ciphertext+tag
 * (156 bytes) for companion_finish. 0, WG_EINVAL, WG_EPROTO, WG_ECRYPTO (degenerate DH), WG_EIO. */
int wg_pair_code_finish(uint8_t bundle[WG_PAIR_KEY_BUNDLE_LEN],
                        uint8_t adv_secret[WG_PAIR_ADV_SECRET_LEN], const char *code,
                        const wg_keys_pair_t *companion_eph, const wg_keys_pair_t *identity,
                        const uint8_t primary_identity_pub[WG_KEYS_KEY_LEN],
                        const uint8_t *wrapped_primary_eph, size_t wrapped_len,
                        uint32_t iterations);
int wg_pair_code_finish_with_random(uint8_t bundle[WG_PAIR_KEY_BUNDLE_LEN],
                                    uint8_t adv_secret[WG_PAIR_ADV_SECRET_LEN], const char *code,
                                    const wg_keys_pair_t *companion_eph,
                                    const wg_keys_pair_t *identity,
                                    const uint8_t primary_identity_pub[WG_KEYS_KEY_LEN],
                                    const uint8_t *wrapped_primary_eph, size_t wrapped_len,
                                    uint32_t iterations,
                                    const uint8_t random[WG_PAIR_FINISH_RANDOM_LEN]);

/* Phone, on companion_finish: decrypts the key bundle with ephShared = X25519(primary eph
 * priv, companion eph pub) (the companion eph pub comes from wg_pair_code_unwrap_ephemeral on
 * companion_hello), checks that it names the phone's identity as primary and the companion
 * identity of <companion_identity_public>, and derives the same adv secret with
 * identShared = X25519(primary identity priv, companion identity pub).
 * 0; WG_EPROTO (bundle not 156 bytes, or names other identities); WG_ECRYPTO (GCM tag: wrong
 * code or wrong keys; degenerate DH); WG_EIO. */
int wg_pair_phone_code_finish(uint8_t adv_secret[WG_PAIR_ADV_SECRET_LEN],
                              const wg_keys_pair_t *primary_eph,
                              const wg_keys_pair_t *primary_identity,
                              const uint8_t companion_eph_pub[WG_KEYS_KEY_LEN],
                              const uint8_t companion_identity_pub[WG_KEYS_KEY_LEN],
                              const uint8_t *bundle, size_t bundle_len);

#endif
