/* test_keys.c - known-answer tests for src/wa/keys.c, and a cross-check of the signature
 * scheme against the installed libsignal-protocol-c. Vector sources are cited per test. */
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <signal/curve.h>
#include <signal/signal_protocol.h>

#include "test.h"
#include "util/codec.h"
#include "util/err.h"
#include "wa/keys.h"

/* libsignal-protocol-c exports these from src/curve25519/ed25519/additions/curve_sigs.h but
 * does not install that header. */
int curve25519_sign(unsigned char *signature_out, const unsigned char *curve25519_privkey,
                    const unsigned char *msg, const unsigned long msg_len,
                    const unsigned char *random);
int curve25519_verify(const unsigned char *signature, const unsigned char *curve25519_pubkey,
                      const unsigned char *msg, const unsigned long msg_len);

static size_t hex(uint8_t *out, size_t cap, const char *s)
{
    ssize_t n = wg_hex_decode(s, strlen(s), out, cap);
    return n < 0 ? 0 : (size_t)n;
}

/* ---- X25519: RFC 7748 §5.2 (first vector) and §6.1 (Alice and Bob) ------------------------ */

WG_TEST(keys_x25519_rfc7748)
{
    uint8_t k[32], u[32], want[32], out[32];
    hex(k, 32, "a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4");
    hex(u, 32, "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c");
    hex(want, 32, "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552");
    WG_CHECK_EQ_INT(wg_keys_dh(out, k, u), 0);
    WG_CHECK_MEM(out, want, 32);

    uint8_t apriv[32], apub[32], bpriv[32], bpub[32], shared[32];
    wg_keys_pair_t a, b;
    hex(apriv, 32, "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
    hex(apub, 32, "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
    hex(bpriv, 32, "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb");
    hex(bpub, 32, "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
    hex(shared, 32, "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742");
    WG_CHECK_EQ_INT(wg_keys_from_private(&a, apriv), 0);
    WG_CHECK_EQ_INT(wg_keys_from_private(&b, bpriv), 0);
    WG_CHECK_MEM(a.pub, apub, 32);
    WG_CHECK_MEM(b.pub, bpub, 32);
    WG_CHECK_EQ_INT(wg_keys_dh(out, a.priv, b.pub), 0);
    WG_CHECK_MEM(out, shared, 32);
    WG_CHECK_EQ_INT(wg_keys_dh(out, b.priv, a.pub), 0);
    WG_CHECK_MEM(out, shared, 32);

    /* A small-order point (u = 0, or u = 1) gives an all-zero secret: refused. */
    uint8_t zero[32] = {0}, one[32] = {1};
    WG_CHECK_EQ_INT(wg_keys_dh(out, a.priv, zero), WG_ECRYPTO);
    WG_CHECK_EQ_INT(wg_keys_dh(out, a.priv, one), WG_ECRYPTO);
}

/* wg_keys_dh (libsodium) must agree with OpenSSL's EVP_PKEY_derive for random keys. */
WG_TEST(keys_dh_matches_openssl)
{
    for (int i = 0; i < 16; i++) {
        wg_keys_pair_t a, b;
        uint8_t ours[32], ref[32];
        size_t rlen = sizeof(ref);
        WG_CHECK_EQ_INT(wg_keys_generate(&a), 0);
        WG_CHECK_EQ_INT(wg_keys_generate(&b), 0);
        WG_CHECK_EQ_INT(wg_keys_dh(ours, a.priv, b.pub), 0);
        EVP_PKEY *mine = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, a.priv, 32);
        EVP_PKEY *peer = EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, NULL, b.pub, 32);
        EVP_PKEY_CTX *ctx = mine ? EVP_PKEY_CTX_new(mine, NULL) : NULL;
        int ok = ctx && EVP_PKEY_derive_init(ctx) == 1 && EVP_PKEY_derive_set_peer(ctx, peer) == 1 &&
                 EVP_PKEY_derive(ctx, ref, &rlen) == 1 && rlen == 32;
        EVP_PKEY_CTX_free(ctx);
        EVP_PKEY_free(mine);
        EVP_PKEY_free(peer);
        WG_CHECK(ok);
        WG_CHECK_MEM(ours, ref, 32);
    }
}

WG_TEST(keys_generate_and_clamp)
{
    wg_keys_pair_t a, b;
    uint8_t s1[32], s2[32];
    WG_CHECK_EQ_INT(wg_keys_generate(&a), 0);
    WG_CHECK_EQ_INT(wg_keys_generate(&b), 0);
    WG_CHECK((a.priv[0] & 7) == 0 && (a.priv[31] & 0x80) == 0 && (a.priv[31] & 0x40) != 0);
    WG_CHECK(memcmp(a.pub, b.pub, 32) != 0);
    WG_CHECK_EQ_INT(wg_keys_dh(s1, a.priv, b.pub), 0);
    WG_CHECK_EQ_INT(wg_keys_dh(s2, b.priv, a.pub), 0);
    WG_CHECK_MEM(s1, s2, 32);
}

WG_TEST(keys_djb)
{
    uint8_t pub[32], enc[33], back[32];
    for (int i = 0; i < 32; i++)
        pub[i] = (uint8_t)i;
    wg_keys_djb_encode(enc, pub);
    WG_CHECK_EQ_INT(enc[0], 0x05);
    WG_CHECK_EQ_INT(wg_keys_djb_decode(back, enc, 33), 0);
    WG_CHECK_MEM(back, pub, 32);
    WG_CHECK_EQ_INT(wg_keys_djb_decode(back, enc, 32), WG_EINVAL);
    enc[0] = 0x06;
    WG_CHECK_EQ_INT(wg_keys_djb_decode(back, enc, 33), WG_EINVAL);
}

/* ---- SHA-256 (FIPS 180-2 appendix B.1), HMAC-SHA256 (RFC 4231 cases 2 and 6) -------------- */

WG_TEST(keys_sha256_hmac_kat)
{
    uint8_t out[32], want[32];
    hex(want, 32, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    WG_CHECK_EQ_INT(wg_keys_sha256(out, "abc", 3, NULL, 0), 0);
    WG_CHECK_MEM(out, want, 32);
    WG_CHECK_EQ_INT(wg_keys_sha256(out, "a", 1, "bc", 2), 0);
    WG_CHECK_MEM(out, want, 32);

    const char *d2 = "what do ya want for nothing?";
    hex(want, 32, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    WG_CHECK_EQ_INT(wg_keys_hmac_sha256(out, (const uint8_t *)"Jefe", 4, (const uint8_t *)d2,
                                        strlen(d2)),
                    0);
    WG_CHECK_MEM(out, want, 32);

    uint8_t key[131];
    memset(key, 0xaa, sizeof(key));
    const char *d6 = "Test Using Larger Than Block-Size Key - Hash Key First";
    hex(want, 32, "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
    WG_CHECK_EQ_INT(wg_keys_hmac_sha256(out, key, sizeof(key), (const uint8_t *)d6, strlen(d6)), 0);
    WG_CHECK_MEM(out, want, 32);
}

/* ---- HKDF-SHA256: RFC 5869 appendix A, test cases 1, 2 and 3 ------------------------------ */

WG_TEST(keys_hkdf_rfc5869)
{
    uint8_t ikm[80], salt[80], info[80], okm[82], want[82];
    size_t n;

    memset(ikm, 0x0b, 22);
    hex(salt, 13, "000102030405060708090a0b0c");
    hex(info, 10, "f0f1f2f3f4f5f6f7f8f9");
    n = hex(want, 42,
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865");
    WG_CHECK_EQ_INT(n, 42);
    WG_CHECK_EQ_INT(wg_keys_hkdf_sha256(okm, 42, salt, 13, ikm, 22, info, 10), 0);
    WG_CHECK_MEM(okm, want, 42);

    for (int i = 0; i < 80; i++) {
        ikm[i] = (uint8_t)i;
        salt[i] = (uint8_t)(0x60 + i);
        info[i] = (uint8_t)(0xb0 + i);
    }
    n = hex(want, 82,
            "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c59045a99cac7827271cb41"
            "c65e590e09da3275600c2f09b8367793a9aca3db71cc30c58179ec3e87c14c01d5c1f3434f1d87");
    WG_CHECK_EQ_INT(n, 82);
    WG_CHECK_EQ_INT(wg_keys_hkdf_sha256(okm, 82, salt, 80, ikm, 80, info, 80), 0);
    WG_CHECK_MEM(okm, want, 82);

    memset(ikm, 0x0b, 22);
    hex(want, 42,
        "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8");
    WG_CHECK_EQ_INT(wg_keys_hkdf_sha256(okm, 42, NULL, 0, ikm, 22, NULL, 0), 0);
    WG_CHECK_MEM(okm, want, 42);

    /* Empty IKM (the Noise Split) must work; and an absent salt equals 32 zero bytes. */
    uint8_t zsalt[32] = {0}, o1[64], o2[64];
    WG_CHECK_EQ_INT(wg_keys_hkdf_sha256(o1, 64, NULL, 0, NULL, 0, NULL, 0), 0);
    WG_CHECK_EQ_INT(wg_keys_hkdf_sha256(o2, 64, zsalt, 32, NULL, 0, NULL, 0), 0);
    WG_CHECK_MEM(o1, o2, 64);
    WG_CHECK_EQ_INT(wg_keys_hkdf_sha256(okm, 255 * 32 + 1, NULL, 0, ikm, 1, NULL, 0), WG_EINVAL);
}

/* ---- AES-256-GCM: McGrew & Viega, "The Galois/Counter Mode of Operation", test cases 13-16
 * (also NIST gcmEncryptExtIV256 style) --------------------------------------------------------- */

WG_TEST(keys_gcm_mcgrew_viega)
{
    uint8_t key[32] = {0}, iv[12] = {0}, pt[64], ct[80], want[80], back[64], aad[20];
    size_t n;

    /* Test case 13: empty plaintext. */
    hex(want, 16, "530f8afbc74536b9a963b4f1c4cb738b");
    WG_CHECK_EQ_INT(wg_keys_gcm_encrypt(ct, key, iv, NULL, 0, NULL, 0), 0);
    WG_CHECK_MEM(ct, want, 16);
    WG_CHECK_EQ_INT(wg_keys_gcm_decrypt(NULL, key, iv, NULL, 0, ct, 16), 0);

    /* Test case 14: one zero block. */
    memset(pt, 0, 16);
    hex(want, 32, "cea7403d4d606b6e074ec5d3baf39d18d0d1c8a799996bf0265b98b5d48ab919");
    WG_CHECK_EQ_INT(wg_keys_gcm_encrypt(ct, key, iv, NULL, 0, pt, 16), 0);
    WG_CHECK_MEM(ct, want, 32);

    /* Test case 15. */
    hex(key, 32, "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308");
    hex(iv, 12, "cafebabefacedbaddecaf888");
    n = hex(pt, 64,
            "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e"
            "2449a6b525b16aedf5aa0de657ba637b391aafd255");
    WG_CHECK_EQ_INT(n, 64);
    n = hex(want, 80,
            "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b"
            "1056828838c5f61e6393ba7a0abcc9f662898015adb094dac5d93471bdec1a502270e3cc6c");
    WG_CHECK_EQ_INT(n, 80);
    WG_CHECK_EQ_INT(wg_keys_gcm_encrypt(ct, key, iv, NULL, 0, pt, 64), 0);
    WG_CHECK_MEM(ct, want, 80);
    WG_CHECK_EQ_INT(wg_keys_gcm_decrypt(back, key, iv, NULL, 0, ct, 80), 0);
    WG_CHECK_MEM(back, pt, 64);

    /* Test case 16: 60-byte plaintext with AAD. */
    hex(aad, 20, "feedfacedeadbeeffeedfacedeadbeefabaddad2");
    n = hex(want, 76,
            "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b"
            "1056828838c5f61e6393ba7a0abcc9f66276fc6ece0f4e1768cddf8853bb2d551b");
    WG_CHECK_EQ_INT(n, 76);
    WG_CHECK_EQ_INT(wg_keys_gcm_encrypt(ct, key, iv, aad, 20, pt, 60), 0);
    WG_CHECK_MEM(ct, want, 76);
    WG_CHECK_EQ_INT(wg_keys_gcm_decrypt(back, key, iv, aad, 20, ct, 76), 0);
    WG_CHECK_MEM(back, pt, 60);

    /* In place. */
    memcpy(back, pt, 60);
    WG_CHECK_EQ_INT(wg_keys_gcm_encrypt(ct, key, iv, aad, 20, pt, 60), 0);
    memcpy(want, ct, 76);
    WG_CHECK_EQ_INT(wg_keys_gcm_decrypt(ct, key, iv, aad, 20, ct, 76), 0);
    WG_CHECK_MEM(ct, pt, 60);

    /* Any flipped bit in ciphertext, tag or AAD fails; so does a short input. */
    for (size_t i = 0; i < 76; i++) {
        memcpy(ct, want, 76);
        ct[i] ^= 0x01;
        WG_CHECK_EQ_INT(wg_keys_gcm_decrypt(back, key, iv, aad, 20, ct, 76), WG_ECRYPTO);
    }
    aad[0] ^= 0x80;
    WG_CHECK_EQ_INT(wg_keys_gcm_decrypt(back, key, iv, aad, 20, want, 76), WG_ECRYPTO);
    WG_CHECK_EQ_INT(wg_keys_gcm_decrypt(back, key, iv, NULL, 0, want, 15), WG_ECRYPTO);
}

/* ---- Curve25519 signatures ------------------------------------------------------------------ */

/* libsignal-protocol-c src/curve25519/ed25519/tests/internal_fast_tests.c, curvesigs_fast_test:
 * private key all zero except byte 8 = 189, clamped; message 200 zero bytes; random all zero. */
WG_TEST(keys_sign_kat_libsignal_curvesigs)
{
    uint8_t priv[32] = {0}, msg[200] = {0}, rnd[64] = {0}, sig[64], want[64];
    wg_keys_pair_t kp;
    priv[8] = 189;
    wg_keys_clamp(priv);
    hex(want, 64, "cf873d0379ac20e8893e5567ee0f8951f8db840d26b243b463526689d01ca718"
                  "ac189fb1678574ebdde569330659448b0bd6c1973f7d780ab39518626803d782");
    WG_CHECK_EQ_INT(wg_keys_sign_with_random(sig, priv, msg, sizeof(msg), rnd), 0);
    WG_CHECK_MEM(sig, want, 64);
    WG_CHECK_EQ_INT(wg_keys_from_private(&kp, priv), 0);
    WG_CHECK_EQ_INT(wg_keys_verify(kp.pub, msg, sizeof(msg), sig), 0);
}

/* libsignal-protocol-c tests/test_curve25519.c test_curve25519_signature (the vector shared by
 * all libsignal ports): Alice's identity key signs her serialized (0x05-prefixed) ephemeral. */
WG_TEST(keys_verify_kat_libsignal_alice)
{
    uint8_t priv[32], pub33[33], eph33[33], sig[64], pub[32], bad[64];
    wg_keys_pair_t kp;
    hex(priv, 32, "c097248412e58bf05df487968205132794178e367637f5818f81e0e6ce73e865");
    hex(pub33, 33, "05ab7e717d4a163b7d9a1d8071dfe9dcf8cdcd1cea3339b6356be84d887e322c64");
    hex(eph33, 33, "05edce9d9c415ca78cb7252e72c2c4a554d3eb29485a0e1d503118d1a82d99fb4a");
    hex(sig, 64,
        "5de88ca9a89b4a115da79109c67c9c7464a3e4180274f1cb8c63c2984e286dfbede82deb9dcd9fae0bfbb82156"
        "9b3d9001bd8130cd11d486cef047bd60b86e88");
    WG_CHECK_EQ_INT(wg_keys_djb_decode(pub, pub33, 33), 0);
    WG_CHECK_EQ_INT(wg_keys_from_private(&kp, priv), 0);
    WG_CHECK_MEM(kp.pub, pub, 32);
    WG_CHECK_EQ_INT(wg_keys_verify(pub, eph33, 33, sig), 0);
    for (int i = 0; i < 64; i++) {
        memcpy(bad, sig, 64);
        bad[i] ^= 0x01;
        WG_CHECK_EQ_INT(wg_keys_verify(pub, eph33, 33, bad), WG_ECRYPTO);
    }
    eph33[5] ^= 1;
    WG_CHECK_EQ_INT(wg_keys_verify(pub, eph33, 33, sig), WG_ECRYPTO);
}

/* A minimal libsignal crypto provider for the cross-check: only random is used by
 * curve_calculate_signature; the HMAC callbacks exist because signal_context_set_crypto_provider
 * refuses a provider without them, and fail if ever called. */
static int t_random(uint8_t *data, size_t len, void *ud)
{
    (void)ud;
    return RAND_bytes(data, (int)len) == 1 ? 0 : SG_ERR_UNKNOWN;
}
static int t_hmac_init(void **ctx, const uint8_t *k, size_t kl, void *ud)
{
    (void)ctx, (void)k, (void)kl, (void)ud;
    return SG_ERR_UNKNOWN;
}
static int t_hmac_update(void *ctx, const uint8_t *d, size_t l, void *ud)
{
    (void)ctx, (void)d, (void)l, (void)ud;
    return SG_ERR_UNKNOWN;
}
static int t_hmac_final(void *ctx, signal_buffer **out, void *ud)
{
    (void)ctx, (void)out, (void)ud;
    return SG_ERR_UNKNOWN;
}
static void t_hmac_cleanup(void *ctx, void *ud)
{
    (void)ctx, (void)ud;
}

WG_TEST(keys_sign_cross_libsignal)
{
    signal_context *ctx = NULL;
    signal_crypto_provider prov = {0};
    prov.random_func = t_random;
    prov.hmac_sha256_init_func = t_hmac_init;
    prov.hmac_sha256_update_func = t_hmac_update;
    prov.hmac_sha256_final_func = t_hmac_final;
    prov.hmac_sha256_cleanup_func = t_hmac_cleanup;
    WG_CHECK_EQ_INT(signal_context_create(&ctx, NULL), 0);
    int rv = signal_context_set_crypto_provider(ctx, &prov);
    if (rv != 0)
        signal_context_destroy(ctx);
    WG_CHECK_EQ_INT(rv, 0);

    int sign_bits = 0, failures = 0;
    for (int i = 0; i < 32 && !failures; i++) {
        wg_keys_pair_t kp;
        uint8_t msg[100], sig[64], ref[64], rnd[64], djb[33];
        size_t mlen = (size_t)i * 3;
        ec_public_key *pk = NULL;
        ec_private_key *sk = NULL;
        signal_buffer *lsig = NULL;

        if (wg_keys_generate(&kp) != 0 || wg_random_bytes(msg, sizeof(msg)) != 0 ||
            wg_random_bytes(rnd, sizeof(rnd)) != 0) {
            failures++;
            break;
        }
        wg_keys_djb_encode(djb, kp.pub);
        /* same randomness: byte-identical to libsignal's own signer */
        if (wg_keys_sign_with_random(sig, kp.priv, msg, mlen, rnd) != 0 ||
            curve25519_sign(ref, kp.priv, msg, mlen, rnd) != 0 || memcmp(sig, ref, 64) != 0)
            failures++;
        sign_bits += (sig[63] & 0x80) != 0;
        /* ours -> libsignal's verifier (public API, 0x05-prefixed key) */
        if (curve_decode_point(&pk, djb, 33, ctx) != 0 ||
            curve_decode_private_point(&sk, kp.priv, 32, ctx) != 0)
            failures++;
        else if (wg_keys_sign(sig, kp.priv, msg, mlen) != 0 ||
                 curve_verify_signature(pk, msg, mlen, sig, 64) != 1)
            failures++;
        /* libsignal's signer -> ours */
        else if (curve_calculate_signature(ctx, &lsig, sk, msg, mlen) != 0 ||
                 signal_buffer_len(lsig) != 64 ||
                 wg_keys_verify(kp.pub, msg, mlen, signal_buffer_data(lsig)) != 0)
            failures++;
        else {
            /* both verifiers reject a tampered message */
            msg[0] ^= 0x40;
            if (curve_verify_signature(pk, msg, mlen ? mlen : 1, sig, 64) == 1 ||
                wg_keys_verify(kp.pub, msg, mlen ? mlen : 1, signal_buffer_data(lsig)) == 0)
                failures++;
        }
        if (lsig)
            signal_buffer_free(lsig);
        SIGNAL_UNREF(pk);
        SIGNAL_UNREF(sk);
    }
    signal_context_destroy(ctx);
    WG_CHECK_EQ_INT(failures, 0);
    /* the Edwards sign bit is set for about half of all keys: both branches were exercised */
    WG_CHECK(sign_bits > 0 && sign_bits < 32);
}

/* The signed prekey use (wa-protocol-core.md §8.3): signature over 0x05 || spk.pub. */
WG_TEST(keys_sign_signed_prekey)
{
    wg_keys_pair_t ident, spk, other;
    uint8_t djb[33], sig[64];
    WG_CHECK_EQ_INT(wg_keys_generate(&ident), 0);
    WG_CHECK_EQ_INT(wg_keys_generate(&spk), 0);
    WG_CHECK_EQ_INT(wg_keys_generate(&other), 0);
    wg_keys_djb_encode(djb, spk.pub);
    WG_CHECK_EQ_INT(wg_keys_sign(sig, ident.priv, djb, sizeof(djb)), 0);
    WG_CHECK_EQ_INT(wg_keys_verify(ident.pub, djb, sizeof(djb), sig), 0);
    WG_CHECK_EQ_INT(wg_keys_verify(other.pub, djb, sizeof(djb), sig), WG_ECRYPTO);
    /* u = p - 1 has no Edwards point; u >= p is non-canonical: both rejected, no crash */
    uint8_t pm1[32], big[32];
    memset(pm1, 0xff, 32);
    pm1[0] = 0xec;
    pm1[31] = 0x7f;
    WG_CHECK_EQ_INT(wg_keys_verify(pm1, djb, sizeof(djb), sig), WG_ECRYPTO);
    memset(big, 0xff, 32);
    big[31] = 0x7f;
    WG_CHECK_EQ_INT(wg_keys_verify(big, djb, sizeof(djb), sig), WG_ECRYPTO);
}
