/* keys.c - X25519, libsignal Curve25519 signatures, SHA-256, HMAC, HKDF and AES-256-GCM.
 *
 * X25519 key generation, SHA-256 and AES-GCM go through OpenSSL EVP; X25519 DH through libsodium
 * (half the cost, see wg_keys_dh); HMAC is built on the EVP SHA-256 digest
 * (so an empty key, which HKDF's Noise Split needs, is just a zero block); the signature uses
 * libsodium's Ed25519 group and scalar primitives and OpenSSL BIGNUM for one field inversion.
 * No function keeps state or allocates memory the caller sees; see keys.h. */
#include "wa/keys.h"

#include <string.h>

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <sodium.h>

#include "util/codec.h"
#include "util/err.h"

void wg_keys_wipe(void *p, size_t n)
{
    OPENSSL_cleanse(p, n);
}

void wg_keys_clamp(uint8_t k[WG_KEYS_KEY_LEN])
{
    k[0] &= 248;
    k[31] &= 127;
    k[31] |= 64;
}

/* ---- X25519 ---------------------------------------------------------------------------- */

int wg_keys_from_private(wg_keys_pair_t *kp, const uint8_t priv[WG_KEYS_KEY_LEN])
{
    int rv = WG_EIO;
    uint8_t k[WG_KEYS_KEY_LEN];
    size_t publen = WG_KEYS_KEY_LEN;
    EVP_PKEY *pk = NULL;

    memcpy(k, priv, sizeof(k));
    wg_keys_clamp(k);
    pk = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, k, sizeof(k));
    if (!pk)
        goto out;
    if (EVP_PKEY_get_raw_public_key(pk, kp->pub, &publen) != 1 || publen != WG_KEYS_KEY_LEN)
        goto out;
    memcpy(kp->priv, k, sizeof(k));
    rv = 0;
out:
    EVP_PKEY_free(pk);
    wg_keys_wipe(k, sizeof(k));
    return rv;
}

int wg_keys_generate(wg_keys_pair_t *kp)
{
    uint8_t k[WG_KEYS_KEY_LEN];
    int rv = wg_random_bytes(k, sizeof(k));
    if (rv == 0)
        rv = wg_keys_from_private(kp, k);
    wg_keys_wipe(k, sizeof(k));
    return rv;
}

int wg_keys_dh(uint8_t out[WG_KEYS_KEY_LEN], const uint8_t priv[WG_KEYS_KEY_LEN],
               const uint8_t pub[WG_KEYS_KEY_LEN])
{
    /* libsodium rather than EVP_PKEY_derive: importing a raw private key into an EVP_PKEY
     * computes its public key too, so the EVP path costs two scalar multiplications. Measured
     * on this machine: 100 us (EVP) vs 41 us (crypto_scalarmult) per DH; a handshake does
     * three per side. The result is the same function (RFC 7748 vectors in test_keys.c, and a
     * cross-check against EVP_PKEY_derive). crypto_scalarmult clamps the scalar and fails on an
     * all-zero result (a small-order peer point, RFC 7748 §6.1): that is the peer's fault. */
    if (!out || !priv || !pub)
        return WG_EINVAL;
    if (sodium_init() < 0)
        return WG_EIO;
    if (crypto_scalarmult(out, priv, pub) != 0) {
        sodium_memzero(out, WG_KEYS_KEY_LEN);
        return WG_ECRYPTO;
    }
    return 0;
}

void wg_keys_djb_encode(uint8_t out[WG_KEYS_DJB_LEN], const uint8_t pub[WG_KEYS_KEY_LEN])
{
    out[0] = WG_KEYS_DJB_TYPE;
    memcpy(out + 1, pub, WG_KEYS_KEY_LEN);
}

int wg_keys_djb_decode(uint8_t pub[WG_KEYS_KEY_LEN], const uint8_t *in, size_t len)
{
    if (!in || len != WG_KEYS_DJB_LEN || in[0] != WG_KEYS_DJB_TYPE)
        return WG_EINVAL;
    memcpy(pub, in + 1, WG_KEYS_KEY_LEN);
    return 0;
}

/* ---- libsignal Curve25519 signatures --------------------------------------------------------
 *
 * Scheme (libsignal-protocol-c src/curve25519/ed25519/additions/curve_sigs.c, the same one
 * libsignal-node's curve25519-js and go.mau.fi/libsignal implement):
 *   a = clamped X25519 private scalar, A = a*B on Ed25519 (its encoding may have the sign bit set)
 *   r = SHA-512(FE FF*31 || a || M || Z) mod L, Z = 64 random bytes
 *   R = r*B, h = SHA-512(R || A || M) mod L, S = r + h*a mod L
 *   signature = R || S, with sig[63] |= sign bit of A (S < 2^253 leaves the top bit free).
 * Verification maps the Montgomery u to the Edwards y = (u - 1) / (u + 1), takes the sign bit
 * from sig[63], clears it, and checks a standard Ed25519 signature. */

static void scalar_reduce32(uint8_t out[32], const uint8_t in[32])
{
    uint8_t wide[64] = {0};
    memcpy(wide, in, 32);
    crypto_core_ed25519_scalar_reduce(out, wide);
    sodium_memzero(wide, sizeof(wide));
}

int wg_keys_sign_with_random(uint8_t sig[WG_KEYS_SIG_LEN], const uint8_t priv[WG_KEYS_KEY_LEN],
                             const uint8_t *msg, size_t len,
                             const uint8_t random[WG_KEYS_SIG_RANDOM_LEN])
{
    int rv = WG_EIO;
    uint8_t a[32], ared[32], A[32], R[32], r[32], h[32], t[32], S[32];
    uint8_t wide[64], prefix[32];
    crypto_hash_sha512_state st;

    if (!sig || !priv || (!msg && len) || !random)
        return WG_EINVAL;
    if (sodium_init() < 0)
        return WG_EIO;
    memcpy(a, priv, 32);
    wg_keys_clamp(a);
    /* A = a*B: a is clamped, so its top bit is clear and it is nonzero, as noclamp requires. */
    if (crypto_scalarmult_ed25519_base_noclamp(A, a) != 0)
        goto out;

    prefix[0] = 0xFE;
    memset(prefix + 1, 0xFF, 31);
    crypto_hash_sha512_init(&st);
    crypto_hash_sha512_update(&st, prefix, 32);
    crypto_hash_sha512_update(&st, a, 32);
    if (len)
        crypto_hash_sha512_update(&st, msg, len);
    crypto_hash_sha512_update(&st, random, WG_KEYS_SIG_RANDOM_LEN);
    crypto_hash_sha512_final(&st, wide);
    crypto_core_ed25519_scalar_reduce(r, wide);
    if (crypto_scalarmult_ed25519_base_noclamp(R, r) != 0) /* r == 0: probability 2^-252 */
        goto out;

    crypto_hash_sha512_init(&st);
    crypto_hash_sha512_update(&st, R, 32);
    crypto_hash_sha512_update(&st, A, 32);
    if (len)
        crypto_hash_sha512_update(&st, msg, len);
    crypto_hash_sha512_final(&st, wide);
    crypto_core_ed25519_scalar_reduce(h, wide);

    scalar_reduce32(ared, a);
    crypto_core_ed25519_scalar_mul(t, h, ared);
    crypto_core_ed25519_scalar_add(S, t, r);

    memcpy(sig, R, 32);
    memcpy(sig + 32, S, 32);
    sig[63] = (uint8_t)((sig[63] & 0x7F) | (A[31] & 0x80));
    rv = 0;
out:
    sodium_memzero(a, sizeof(a));
    sodium_memzero(ared, sizeof(ared));
    sodium_memzero(r, sizeof(r));
    sodium_memzero(t, sizeof(t));
    sodium_memzero(wide, sizeof(wide));
    sodium_memzero(&st, sizeof(st));
    return rv;
}

int wg_keys_sign(uint8_t sig[WG_KEYS_SIG_LEN], const uint8_t priv[WG_KEYS_KEY_LEN],
                 const uint8_t *msg, size_t len)
{
    uint8_t z[WG_KEYS_SIG_RANDOM_LEN];
    int rv = wg_random_bytes(z, sizeof(z));
    if (rv == 0)
        rv = wg_keys_sign_with_random(sig, priv, msg, len, z);
    wg_keys_wipe(z, sizeof(z));
    return rv;
}

/* Edwards y = (u - 1) / (u + 1) mod p for the 255-bit little-endian u; out little-endian.
 * WG_ECRYPTO for a non-canonical u (>= p) or u = -1 (no Edwards point). */
static int mont_to_edwards_y(uint8_t out[32], const uint8_t pub[32])
{
    int rv = WG_EIO;
    uint8_t le[32];
    BN_CTX *bc = BN_CTX_new();
    BIGNUM *p, *u, *num, *den;

    if (!bc)
        return WG_EIO;
    BN_CTX_start(bc);
    p = BN_CTX_get(bc);
    u = BN_CTX_get(bc);
    num = BN_CTX_get(bc);
    den = BN_CTX_get(bc);
    if (!den)
        goto out;
    memcpy(le, pub, 32);
    le[31] &= 0x7F; /* the top bit is not part of u (RFC 7748 §5) */
    if (!BN_lebin2bn(le, 32, u))
        goto out;
    if (!BN_set_word(p, 1) || !BN_lshift(p, p, 255) || !BN_sub_word(p, 19))
        goto out;
    if (BN_cmp(u, p) >= 0) {
        rv = WG_ECRYPTO;
        goto out;
    }
    if (!BN_copy(num, u) || !BN_copy(den, u) || !BN_add_word(den, 1))
        goto out;
    if (BN_cmp(den, p) == 0) { /* u = p - 1 */
        rv = WG_ECRYPTO;
        goto out;
    }
    /* num = u - 1 mod p (u = 0 gives p - 1) */
    if (BN_is_zero(num)) {
        if (!BN_copy(num, p) || !BN_sub_word(num, 1))
            goto out;
    } else if (!BN_sub_word(num, 1)) {
        goto out;
    }
    if (!BN_mod_inverse(den, den, p, bc) || !BN_mod_mul(num, num, den, p, bc))
        goto out;
    if (BN_bn2lebinpad(num, out, 32) != 32)
        goto out;
    rv = 0;
out:
    BN_CTX_end(bc);
    BN_CTX_free(bc);
    return rv;
}

int wg_keys_verify(const uint8_t pub[WG_KEYS_KEY_LEN], const uint8_t *msg, size_t len,
                   const uint8_t sig[WG_KEYS_SIG_LEN])
{
    uint8_t edpk[32], s[64];
    int rv;

    if (!pub || !sig || (!msg && len))
        return WG_EINVAL;
    if (sodium_init() < 0)
        return WG_EIO;
    if ((rv = mont_to_edwards_y(edpk, pub)) != 0)
        return rv;
    edpk[31] = (uint8_t)((edpk[31] & 0x7F) | (sig[63] & 0x80));
    memcpy(s, sig, 64);
    s[63] &= 0x7F;
    /* libsodium's verifier is strict (canonical S, no small-order A or R): every honest
     * libsignal signature passes it, malleated ones do not. */
    return crypto_sign_ed25519_verify_detached(s, msg ? msg : (const uint8_t *)"", len, edpk) == 0
               ? 0
               : WG_ECRYPTO;
}

/* ---- SHA-256, HMAC, HKDF ------------------------------------------------------------------- */

typedef struct {
    const uint8_t *p;
    size_t n;
} part_t;

static int sha256_parts(uint8_t out[32], const part_t *parts, size_t nparts)
{
    int rv = WG_EIO;
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    unsigned int olen = 0;

    if (!c || EVP_DigestInit_ex(c, EVP_sha256(), NULL) != 1)
        goto out;
    for (size_t i = 0; i < nparts; i++)
        if (parts[i].n && EVP_DigestUpdate(c, parts[i].p, parts[i].n) != 1)
            goto out;
    if (EVP_DigestFinal_ex(c, out, &olen) != 1 || olen != 32)
        goto out;
    rv = 0;
out:
    EVP_MD_CTX_free(c);
    return rv;
}

int wg_keys_sha256(uint8_t out[WG_KEYS_SHA256_LEN], const void *a, size_t alen, const void *b,
                   size_t blen)
{
    part_t parts[2] = {{a, alen}, {b, blen}};
    if ((!a && alen) || (!b && blen))
        return WG_EINVAL;
    return sha256_parts(out, parts, 2);
}

/* HMAC-SHA256 over the concatenation of up to 6 parts (RFC 2104: H(K^opad || H(K^ipad || m))). */
static int hmac_parts(uint8_t out[32], const uint8_t *key, size_t klen, const part_t *parts,
                      size_t nparts)
{
    uint8_t k0[64] = {0}, pad[64], inner[32];
    part_t ip[7], op[2];
    int rv;

    if (nparts > 6)
        return WG_EINVAL;
    if (klen > 64) {
        part_t kp = {key, klen};
        if ((rv = sha256_parts(k0, &kp, 1)) != 0)
            goto out;
    } else if (klen) {
        memcpy(k0, key, klen);
    }
    for (int i = 0; i < 64; i++)
        pad[i] = k0[i] ^ 0x36;
    ip[0] = (part_t){pad, 64};
    for (size_t i = 0; i < nparts; i++)
        ip[i + 1] = parts[i];
    if ((rv = sha256_parts(inner, ip, nparts + 1)) != 0)
        goto out;
    for (int i = 0; i < 64; i++)
        pad[i] = k0[i] ^ 0x5c;
    op[0] = (part_t){pad, 64};
    op[1] = (part_t){inner, 32};
    rv = sha256_parts(out, op, 2);
out:
    wg_keys_wipe(k0, sizeof(k0));
    wg_keys_wipe(pad, sizeof(pad));
    wg_keys_wipe(inner, sizeof(inner));
    return rv;
}

int wg_keys_hmac_sha256(uint8_t out[WG_KEYS_SHA256_LEN], const uint8_t *key, size_t klen,
                        const uint8_t *msg, size_t len)
{
    part_t m = {msg, len};
    if ((!key && klen) || (!msg && len))
        return WG_EINVAL;
    return hmac_parts(out, key, klen, &m, 1);
}

int wg_keys_hkdf_sha256(uint8_t *out, size_t outlen, const uint8_t *salt, size_t saltlen,
                        const uint8_t *ikm, size_t ikmlen, const uint8_t *info, size_t infolen)
{
    uint8_t prk[32], t[32];
    size_t tlen = 0, done = 0;
    uint8_t ctr = 0;
    part_t m = {ikm, ikmlen};
    int rv;

    if ((!out && outlen) || outlen > 255 * 32 || (!salt && saltlen) || (!ikm && ikmlen) ||
        (!info && infolen))
        return WG_EINVAL;
    /* Extract: PRK = HMAC(salt, IKM); an absent salt is HashLen zeros, which as an HMAC key is
     * the same as the empty key. */
    if ((rv = hmac_parts(prk, salt, saltlen, &m, 1)) != 0)
        goto out;
    /* Expand: T(i) = HMAC(PRK, T(i-1) || info || i) */
    while (done < outlen) {
        ctr++;
        part_t parts[3] = {{t, tlen}, {info, infolen}, {&ctr, 1}};
        if ((rv = hmac_parts(t, prk, 32, parts, 3)) != 0)
            goto out;
        tlen = 32;
        size_t n = outlen - done < 32 ? outlen - done : 32;
        memcpy(out + done, t, n);
        done += n;
    }
    rv = 0;
out:
    wg_keys_wipe(prk, sizeof(prk));
    wg_keys_wipe(t, sizeof(t));
    return rv;
}

/* ---- AES-256-GCM --------------------------------------------------------------------------- */

static int gcm(int enc, uint8_t *out, const uint8_t *key, const uint8_t *iv, const uint8_t *aad,
               size_t aadlen, const uint8_t *in, size_t len, const uint8_t *tag_in, uint8_t *tag_out)
{
    int rv = WG_EIO, n = 0;
    uint8_t fin[32]; /* GCM's final step outputs nothing; never index a possibly-NULL out */
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();

    if (!c)
        return WG_EIO;
    if (len > (size_t)0x7fffffff - 64 || aadlen > (size_t)0x7fffffff) {
        rv = WG_EINVAL;
        goto out;
    }
    if (EVP_CipherInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL, enc) != 1 ||
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, WG_KEYS_GCM_IV_LEN, NULL) != 1 ||
        EVP_CipherInit_ex(c, NULL, NULL, key, iv, enc) != 1)
        goto out;
    if (aadlen && EVP_CipherUpdate(c, NULL, &n, aad, (int)aadlen) != 1)
        goto out;
    if (len && EVP_CipherUpdate(c, out, &n, in, (int)len) != 1)
        goto out;
    if (!enc && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, WG_KEYS_GCM_TAG_LEN,
                                    (void *)tag_in) != 1)
        goto out;
    if (EVP_CipherFinal_ex(c, fin, &n) != 1) {
        rv = enc ? WG_EIO : WG_ECRYPTO;
        goto out;
    }
    if (enc && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, WG_KEYS_GCM_TAG_LEN, tag_out) != 1)
        goto out;
    rv = 0;
out:
    EVP_CIPHER_CTX_free(c);
    return rv;
}

int wg_keys_gcm_encrypt(uint8_t *out, const uint8_t key[WG_KEYS_GCM_KEY_LEN],
                        const uint8_t iv[WG_KEYS_GCM_IV_LEN], const uint8_t *aad, size_t aadlen,
                        const uint8_t *in, size_t len)
{
    if (!out || !key || !iv || (!aad && aadlen) || (!in && len))
        return WG_EINVAL;
    return gcm(1, out, key, iv, aad, aadlen, in, len, NULL, out + len);
}

int wg_keys_gcm_decrypt(uint8_t *out, const uint8_t key[WG_KEYS_GCM_KEY_LEN],
                        const uint8_t iv[WG_KEYS_GCM_IV_LEN], const uint8_t *aad, size_t aadlen,
                        const uint8_t *in, size_t ctlen)
{
    uint8_t tag[WG_KEYS_GCM_TAG_LEN];
    if (!key || !iv || (!aad && aadlen) || !in)
        return WG_EINVAL;
    if (ctlen < WG_KEYS_GCM_TAG_LEN)
        return WG_ECRYPTO;
    if (!out && ctlen > WG_KEYS_GCM_TAG_LEN)
        return WG_EINVAL;
    /* Copy the tag first: with out == in the plaintext never reaches the tag bytes anyway, but
     * this keeps the two buffers independent. */
    memcpy(tag, in + ctlen - WG_KEYS_GCM_TAG_LEN, WG_KEYS_GCM_TAG_LEN);
    return gcm(0, out, key, iv, aad, aadlen, in, ctlen - WG_KEYS_GCM_TAG_LEN, tag, NULL);
}
