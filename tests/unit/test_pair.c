/* test_pair.c - tests of src/wa/pair.c: QR strings, QR pairing phone -> companion -> phone,
 * each failure's distinct error, the HOSTED variant, and the pairing-code exchange.
 * Known answers for the pairing code (PBKDF2 at the real 2<<16 iterations, AES-256-CTR,
 * X25519, HKDF, AES-GCM, the base32 alphabet) were computed independently with Python's
 * hashlib and `cryptography` package from wa-protocol-core.md §6; the ADV wire layout is
 * checked against hand-encoded protobuf bytes and hand-built signed messages. */
#include <stdlib.h>
#include <string.h>

#include "test.h"
#include "util/codec.h"
#include "util/err.h"
#include "wa/keys.h"
#include "wa/pair.h"
#include "wa/proto/adv.pb-c.h"

#define FAST_ITER 16 /* PBKDF2 rounds for round trips; the KATs use the real count */

static size_t hex(uint8_t *out, size_t cap, const char *s)
{
    ssize_t n = wg_hex_decode(s, strlen(s), out, cap);
    return n < 0 ? 0 : (size_t)n;
}

static void fill(uint8_t *p, size_t n, uint8_t v)
{
    memset(p, v, n);
}

static void seq(uint8_t *p, size_t n, uint8_t start)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(start + i);
}

static int kp_from_byte(wg_keys_pair_t *kp, uint8_t b)
{
    uint8_t priv[32];
    fill(priv, 32, b);
    return wg_keys_from_private(kp, priv);
}

/* ---- QR string --------------------------------------------------------------------------- */

WG_TEST(pair_qr_string_exact)
{
    uint8_t noise[32], ident[32], adv[32];
    const char *ref = "2@AbC+/x=";
    char *s = NULL;
    static const char want_url[] = "https://wa.me/settings/linked_devices#2@AbC+/x=,"
                                   "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=,"
                                   "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=,"
                                   "//////////////////////////////////////////8=,1";
    static const char want_legacy[] = "2@AbC+/x=,"
                                      "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=,"
                                      "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=,"
                                      "//////////////////////////////////////////8=";
    fill(noise, 32, 0x01);
    seq(ident, 32, 0);
    fill(adv, 32, 0xff);

    WG_CHECK_EQ_INT(wg_pair_qr_string(&s, (const uint8_t *)ref, strlen(ref), noise, ident, adv,
                                      '1', WG_PAIR_QR_URL),
                    0);
    WG_CHECK_STR(s, want_url);
    free(s);
    s = NULL;
    WG_CHECK_EQ_INT(wg_pair_qr_string(&s, (const uint8_t *)ref, strlen(ref), noise, ident, adv,
                                      0, WG_PAIR_QR_LEGACY),
                    0);
    WG_CHECK_STR(s, want_legacy);
    free(s);
    s = NULL;
    /* the [W]-only platforms c and e */
    WG_CHECK_EQ_INT(wg_pair_qr_string(&s, (const uint8_t *)"r", 1, noise, ident, adv, 'c',
                                      WG_PAIR_QR_URL),
                    0);
    WG_CHECK(strlen(s) > 2 && strcmp(s + strlen(s) - 2, ",c") == 0);
    free(s);
}

WG_TEST(pair_qr_string_rejects)
{
    uint8_t k[32] = {0};
    char *s = NULL;
    WG_CHECK_EQ_INT(wg_pair_qr_string(&s, (const uint8_t *)"a,b", 3, k, k, k, '1', WG_PAIR_QR_URL),
                    WG_EINVAL);
    WG_CHECK_EQ_INT(wg_pair_qr_string(&s, (const uint8_t *)"", 0, k, k, k, '1', WG_PAIR_QR_URL),
                    WG_EINVAL);
    WG_CHECK_EQ_INT(wg_pair_qr_string(&s, (const uint8_t *)"a b", 3, k, k, k, '1',
                                      WG_PAIR_QR_URL),
                    WG_EINVAL);
    WG_CHECK_EQ_INT(wg_pair_qr_string(&s, (const uint8_t *)"ab", 2, k, k, k, 'A', WG_PAIR_QR_URL),
                    WG_EINVAL);
    WG_CHECK_EQ_INT(wg_pair_qr_string(&s, (const uint8_t *)"ab", 2, k, k, k, 0, WG_PAIR_QR_URL),
                    WG_EINVAL);
    uint8_t big[WG_PAIR_REF_MAX + 1];
    fill(big, sizeof(big), 'x');
    WG_CHECK_EQ_INT(wg_pair_qr_string(&s, big, sizeof(big), k, k, k, '1', WG_PAIR_QR_URL),
                    WG_EINVAL);
    WG_CHECK(s == NULL);
}

WG_TEST(pair_qr_parse_both_forms)
{
    uint8_t noise[32], ident[32], adv[32];
    char *s = NULL;
    wg_pair_qr_t qr;
    seq(noise, 32, 10);
    seq(ident, 32, 50);
    seq(adv, 32, 90);
    for (int form = WG_PAIR_QR_URL; form <= WG_PAIR_QR_LEGACY; form++) {
        WG_CHECK_EQ_INT(wg_pair_qr_string(&s, (const uint8_t *)"2@ref==", 7, noise, ident, adv,
                                          '7', (wg_pair_qr_form_t)form),
                        0);
        WG_CHECK_EQ_INT(wg_pair_qr_parse(&qr, s, strlen(s)), 0);
        free(s);
        s = NULL;
        WG_CHECK_EQ_INT(qr.form, form);
        WG_CHECK_STR(qr.ref, "2@ref==");
        WG_CHECK_EQ_INT(qr.ref_len, 7);
        WG_CHECK_MEM(qr.noise_pub, noise, 32);
        WG_CHECK_MEM(qr.identity_pub, ident, 32);
        WG_CHECK_MEM(qr.adv_secret, adv, 32);
        WG_CHECK_EQ_INT(qr.platform, form == WG_PAIR_QR_URL ? '7' : 0);
        wg_pair_qr_dispose(&qr);
    }
}

WG_TEST(pair_qr_parse_rejects)
{
    const char *k = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";
    const char *k31 = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQ==";
    char s[512];
    wg_pair_qr_t qr;
    const char *bad[] = {
        "", "ref", "ref,%s,%s", "ref,%s,%s,%s,%s", /* legacy: 1, 3, 5 parts */
        WG_PAIR_QR_URL_PREFIX "ref,%s,%s,%s",       /* url without platform */
        WG_PAIR_QR_URL_PREFIX "ref,%s,%s,%s,",      /* empty platform */
        WG_PAIR_QR_URL_PREFIX "ref,%s,%s,%s,12",    /* two-char platform */
        WG_PAIR_QR_URL_PREFIX "ref,%s,%s,%s,1,1",   /* six parts */
        ",%s,%s,%s",                                /* empty ref */
        "ref,%s,%s,!!!",                            /* bad base64 */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(s, sizeof(s), bad[i], k, k, k, k);
        WG_CHECK_EQ_INT(wg_pair_qr_parse(&qr, s, strlen(s)), WG_EINVAL);
        WG_CHECK(qr.ref == NULL);
    }
    snprintf(s, sizeof(s), "ref,%s,%s,%s", k, k31, k);
    WG_CHECK_EQ_INT(wg_pair_qr_parse(&qr, s, strlen(s)), WG_EINVAL);
    snprintf(s, sizeof(s), "ref,%s,%s,%s", k, k, k);
    WG_CHECK_EQ_INT(wg_pair_qr_parse(&qr, s, strlen(s)), 0);
    wg_pair_qr_dispose(&qr);
}

/* ---- QR pairing: phone -> companion -> phone --------------------------------------------- */

typedef struct {
    wg_keys_pair_t phone, companion;
    uint8_t adv[32];
    uint8_t *container, *details;
    size_t container_len, details_len;
} pairing_t;

static int pairing_make(pairing_t *p, int hosted)
{
    wg_pair_device_t dev = {.raw_id = 0x1234abcd, .timestamp = 1764000000, .key_index = 7,
                            .hosted = hosted};
    memset(p, 0, sizeof(*p));
    if (wg_keys_generate(&p->phone) != 0 || wg_keys_generate(&p->companion) != 0 ||
        wg_random_bytes(p->adv, 32) != 0)
        return -1;
    return wg_pair_phone_make_identity(&p->container, &p->container_len, &p->details,
                                       &p->details_len, &p->phone, p->companion.pub, p->adv, &dev);
}

static void pairing_free(pairing_t *p)
{
    free(p->container);
    free(p->details);
}

/* Concatenation helper for hand-built signed messages. */
static size_t cat(uint8_t *out, uint8_t a, uint8_t b, const uint8_t *d, size_t dl,
                  const uint8_t *k1, const uint8_t *k2)
{
    size_t n = 0;
    out[n++] = a;
    out[n++] = b;
    memcpy(out + n, d, dl);
    n += dl;
    memcpy(out + n, k1, 32);
    n += 32;
    if (k2) {
        memcpy(out + n, k2, 32);
        n += 32;
    }
    return n;
}

WG_TEST(pair_qr_round_trip)
{
    pairing_t p;
    wg_pair_success_t ok;
    wg_pair_fail_t fail = WG_PAIR_FAIL_INTERNAL;
    uint8_t m[512], mac[32];
    size_t n;

    WG_CHECK_EQ_INT(pairing_make(&p, 0), 0);
    /* details are ADVDeviceIdentity{rawId=0x1234abcd, timestamp=1764000000, keyIndex=7} */
    const uint8_t want_details[] = {0x08, 0xcd, 0xd7, 0xd2, 0x91, 0x01, 0x10, 0x80, 0x82,
                                    0x92, 0xc9, 0x06, 0x18, 0x07};
    WG_CHECK_EQ_INT(p.details_len, sizeof(want_details));
    WG_CHECK_MEM(p.details, want_details, sizeof(want_details));

    /* what the phone made: HMAC over details without prefix, account signature with 06 00 */
    Wa__ADVSignedDeviceIdentityHMAC *c =
        wa__advsigned_device_identity_hmac__unpack(NULL, p.container_len, p.container);
    WG_CHECK(c && c->has_details && c->has_hmac && !c->has_account_type);
    WG_CHECK_EQ_INT(wg_keys_hmac_sha256(mac, p.adv, 32, c->details.data, c->details.len), 0);
    WG_CHECK_EQ_INT(c->hmac.len, 32);
    WG_CHECK_MEM(c->hmac.data, mac, 32);
    Wa__ADVSignedDeviceIdentity *sdi =
        wa__advsigned_device_identity__unpack(NULL, c->details.len, c->details.data);
    wa__advsigned_device_identity_hmac__free_unpacked(c, NULL);
    WG_CHECK(sdi && sdi->has_account_signature_key && !sdi->has_device_signature);
    WG_CHECK_MEM(sdi->account_signature_key.data, p.phone.pub, 32);
    n = cat(m, 0x06, 0x00, p.details, p.details_len, p.companion.pub, NULL);
    WG_CHECK_EQ_INT(wg_keys_verify(p.phone.pub, m, n, sdi->account_signature.data), 0);
    wa__advsigned_device_identity__free_unpacked(sdi, NULL);

    /* the companion verifies and signs */
    WG_CHECK_EQ_INT(wg_pair_verify_success(&ok, &fail, p.adv, &p.companion, p.container,
                                           p.container_len),
                    0);
    WG_CHECK_EQ_INT(fail, WG_PAIR_FAIL_NONE);
    WG_CHECK_EQ_INT(ok.device.key_index, 7);
    WG_CHECK_EQ_INT(ok.device.raw_id, 0x1234abcd);
    WG_CHECK_EQ_INT(ok.device.timestamp, 1764000000);
    WG_CHECK_EQ_INT(ok.device.hosted, 0);
    WG_CHECK_EQ_INT(ok.container_hosted, 0);
    WG_CHECK_MEM(ok.account_signature_key, p.phone.pub, 32);

    /* account: all four fields; device signature 06 01 || details || ident || account key */
    sdi = wa__advsigned_device_identity__unpack(NULL, ok.account_len, ok.account);
    WG_CHECK(sdi && sdi->has_details && sdi->has_account_signature_key &&
             sdi->has_account_signature && sdi->has_device_signature);
    WG_CHECK_EQ_INT(sdi->device_signature.len, 64);
    n = cat(m, 0x06, 0x01, p.details, p.details_len, p.companion.pub, p.phone.pub);
    WG_CHECK_EQ_INT(wg_keys_verify(p.companion.pub, m, n, sdi->device_signature.data), 0);
    wa__advsigned_device_identity__free_unpacked(sdi, NULL);

    /* reply: the same without field 2 (no 0x12 tag at top level; 2 + 4 bytes shorter) */
    sdi = wa__advsigned_device_identity__unpack(NULL, ok.reply_len, ok.reply);
    WG_CHECK(sdi && sdi->has_details && !sdi->has_account_signature_key &&
             sdi->has_account_signature && sdi->has_device_signature);
    wa__advsigned_device_identity__free_unpacked(sdi, NULL);
    WG_CHECK_EQ_INT(ok.account_len, ok.reply_len + 2 + 32);
    WG_CHECK(ok.reply[0] == 0x0a && ok.reply[2 + p.details_len] == 0x1a);

    /* the phone checks the reply */
    WG_CHECK_EQ_INT(wg_pair_phone_verify_sign(p.phone.pub, p.companion.pub, ok.reply,
                                              ok.reply_len, p.details, p.details_len),
                    0);
    wg_pair_success_dispose(&ok);
    pairing_free(&p);
}

WG_TEST(pair_verify_success_hand_encoded)
{
    /* A pair-success built byte by byte (no protobuf-c), as a real server would send it. */
    wg_keys_pair_t phone, comp;
    uint8_t adv[32], asig[64], m[256], sd[256], cont[512], mac[32];
    const uint8_t details[] = {0x08, 0x01, 0x10, 0x02, 0x18, 0x03}; /* raw 1, ts 2, index 3 */
    size_t n, sdl = 0, cl = 0;
    wg_pair_success_t ok;
    wg_pair_fail_t fail;

    WG_CHECK_EQ_INT(kp_from_byte(&phone, 0x44), 0);
    WG_CHECK_EQ_INT(kp_from_byte(&comp, 0x22), 0);
    fill(adv, 32, 0x99);
    n = cat(m, 0x06, 0x00, details, sizeof(details), comp.pub, NULL);
    WG_CHECK_EQ_INT(wg_keys_sign(asig, phone.priv, m, n), 0);
    sd[sdl++] = 0x0a; /* field 1, bytes */
    sd[sdl++] = sizeof(details);
    memcpy(sd + sdl, details, sizeof(details));
    sdl += sizeof(details);
    sd[sdl++] = 0x12; /* field 2 */
    sd[sdl++] = 32;
    memcpy(sd + sdl, phone.pub, 32);
    sdl += 32;
    sd[sdl++] = 0x1a; /* field 3 */
    sd[sdl++] = 64;
    memcpy(sd + sdl, asig, 64);
    sdl += 64;
    WG_CHECK_EQ_INT(wg_keys_hmac_sha256(mac, adv, 32, sd, sdl), 0);
    cont[cl++] = 0x0a;
    cont[cl++] = (uint8_t)sdl;
    memcpy(cont + cl, sd, sdl);
    cl += sdl;
    cont[cl++] = 0x12;
    cont[cl++] = 32;
    memcpy(cont + cl, mac, 32);
    cl += 32;

    WG_CHECK_EQ_INT(wg_pair_verify_success(&ok, &fail, adv, &comp, cont, cl), 0);
    WG_CHECK_EQ_INT(ok.device.raw_id, 1);
    WG_CHECK_EQ_INT(ok.device.timestamp, 2);
    WG_CHECK_EQ_INT(ok.device.key_index, 3);
    /* account = sd || 22 40 <device signature>; reply = sd without the 34 bytes of field 2 */
    WG_CHECK_EQ_INT(ok.account_len, sdl + 2 + 64);
    WG_CHECK_MEM(ok.account, sd, sdl);
    WG_CHECK(ok.account[sdl] == 0x22 && ok.account[sdl + 1] == 64);
    WG_CHECK_EQ_INT(ok.reply_len, sdl - 34 + 66);
    WG_CHECK_MEM(ok.reply, sd, 2 + sizeof(details));
    WG_CHECK_MEM(ok.reply + 2 + sizeof(details), sd + 2 + sizeof(details) + 34, 66);
    WG_CHECK_MEM(ok.reply + sdl - 34, ok.account + sdl, 66);
    wg_pair_success_dispose(&ok);
}

/* Re-packs the container with a new inner identity and a correct HMAC. */
static int repack(uint8_t **out, size_t *out_len, const Wa__ADVSignedDeviceIdentity *sdi,
                  const uint8_t adv[32])
{
    Wa__ADVSignedDeviceIdentityHMAC h = WA__ADVSIGNED_DEVICE_IDENTITY_HMAC__INIT;
    uint8_t sd[1024], mac[32];
    size_t sdl = wa__advsigned_device_identity__pack(sdi, sd);
    if (wg_keys_hmac_sha256(mac, adv, 32, sd, sdl) != 0)
        return -1;
    h.has_details = h.has_hmac = 1;
    h.details.data = sd;
    h.details.len = sdl;
    h.hmac.data = mac;
    h.hmac.len = 32;
    *out = malloc(wa__advsigned_device_identity_hmac__get_packed_size(&h));
    *out_len = wa__advsigned_device_identity_hmac__pack(&h, *out);
    return 0;
}

WG_TEST(pair_verify_success_distinct_errors)
{
    pairing_t p;
    wg_pair_success_t ok;
    wg_pair_fail_t fail;
    uint8_t *bad = NULL, wrong[32];
    size_t bad_len;
    wg_keys_pair_t other;

    WG_CHECK_EQ_INT(pairing_make(&p, 0), 0);

    /* tampered HMAC (last byte of the container is the last byte of the hmac) */
    bad = malloc(p.container_len);
    memcpy(bad, p.container, p.container_len);
    bad[p.container_len - 1] ^= 0x01;
    WG_CHECK_EQ_INT(wg_pair_verify_success(&ok, &fail, p.adv, &p.companion, bad, p.container_len),
                    WG_ECRYPTO);
    WG_CHECK_EQ_INT(fail, WG_PAIR_FAIL_HMAC);
    WG_CHECK(ok.account == NULL && ok.reply == NULL);
    free(bad);
    bad = NULL;

    /* wrong adv secret */
    memcpy(wrong, p.adv, 32);
    wrong[0] ^= 0x80;
    WG_CHECK_EQ_INT(wg_pair_verify_success(&ok, &fail, wrong, &p.companion, p.container,
                                           p.container_len),
                    WG_ECRYPTO);
    WG_CHECK_EQ_INT(fail, WG_PAIR_FAIL_HMAC);

    /* truncated protobuf: every shorter prefix is malformed or (cut exactly before the hmac
     * field) an HMAC mismatch, never accepted */
    for (size_t cut = 1; cut < p.container_len; cut++) {
        int rv = wg_pair_verify_success(&ok, &fail, p.adv, &p.companion, p.container, cut);
        WG_CHECK(rv != 0);
        WG_CHECK(fail == WG_PAIR_FAIL_MALFORMED || fail == WG_PAIR_FAIL_HMAC);
    }
    WG_CHECK_EQ_INT(wg_pair_verify_success(&ok, &fail, p.adv, &p.companion, p.container,
                                           p.container_len - 5),
                    WG_EPROTO);
    WG_CHECK_EQ_INT(fail, WG_PAIR_FAIL_MALFORMED);
    WG_CHECK_EQ_INT(wg_pair_verify_success(&ok, &fail, p.adv, &p.companion, p.container, 0),
                    WG_EPROTO);
    WG_CHECK_EQ_INT(fail, WG_PAIR_FAIL_MALFORMED);

    /* tampered account signature under a correct HMAC */
    Wa__ADVSignedDeviceIdentityHMAC *c =
        wa__advsigned_device_identity_hmac__unpack(NULL, p.container_len, p.container);
    WG_CHECK(c != NULL);
    Wa__ADVSignedDeviceIdentity *sdi =
        wa__advsigned_device_identity__unpack(NULL, c->details.len, c->details.data);
    wa__advsigned_device_identity_hmac__free_unpacked(c, NULL);
    WG_CHECK(sdi != NULL);
    sdi->account_signature.data[10] ^= 0x04;
    WG_CHECK_EQ_INT(repack(&bad, &bad_len, sdi, p.adv), 0);
    WG_CHECK_EQ_INT(wg_pair_verify_success(&ok, &fail, p.adv, &p.companion, bad, bad_len),
                    WG_ECRYPTO);
    WG_CHECK_EQ_INT(fail, WG_PAIR_FAIL_SIGNATURE);
    free(bad);
    sdi->account_signature.data[10] ^= 0x04;

    /* account signature key of the wrong length: signature mismatch, as in [W] */
    sdi->account_signature_key.len = 31;
    WG_CHECK_EQ_INT(repack(&bad, &bad_len, sdi, p.adv), 0);
    WG_CHECK_EQ_INT(wg_pair_verify_success(&ok, &fail, p.adv, &p.companion, bad, bad_len),
                    WG_ECRYPTO);
    WG_CHECK_EQ_INT(fail, WG_PAIR_FAIL_SIGNATURE);
    free(bad);
    sdi->account_signature_key.len = 32;

    /* undecodable ADVDeviceIdentity under a correct HMAC: malformed */
    uint8_t *saved = sdi->details.data;
    size_t saved_len = sdi->details.len;
    uint8_t junk[] = {0x0a, 0x05, 0x01};
    sdi->details.data = junk;
    sdi->details.len = sizeof(junk);
    WG_CHECK_EQ_INT(repack(&bad, &bad_len, sdi, p.adv), 0);
    WG_CHECK_EQ_INT(wg_pair_verify_success(&ok, &fail, p.adv, &p.companion, bad, bad_len),
                    WG_EPROTO);
    WG_CHECK_EQ_INT(fail, WG_PAIR_FAIL_MALFORMED);
    free(bad);
    sdi->details.data = saved;
    sdi->details.len = saved_len;
    wa__advsigned_device_identity__free_unpacked(sdi, NULL);

    /* signed for another companion: our identity is not the one the phone signed */
    WG_CHECK_EQ_INT(wg_keys_generate(&other), 0);
    WG_CHECK_EQ_INT(wg_pair_verify_success(&ok, &fail, p.adv, &other, p.container,
                                           p.container_len),
                    WG_ECRYPTO);
    WG_CHECK_EQ_INT(fail, WG_PAIR_FAIL_SIGNATURE);

    /* over the hard limit */
    uint8_t *huge = calloc(1, WG_PAIR_MAX_INPUT + 1);
    WG_CHECK_EQ_INT(wg_pair_verify_success(&ok, &fail, p.adv, &p.companion, huge,
                                           WG_PAIR_MAX_INPUT + 1),
                    WG_ETOOBIG);
    free(huge);
    WG_CHECK_EQ_INT(fail, WG_PAIR_FAIL_MALFORMED);
    pairing_free(&p);
}

WG_TEST(pair_fail_codes)
{
    WG_CHECK_EQ_INT(wg_pair_fail_code(WG_PAIR_FAIL_HMAC), 401);
    WG_CHECK_STR(wg_pair_fail_text(WG_PAIR_FAIL_HMAC), "hmac-mismatch");
    WG_CHECK_EQ_INT(wg_pair_fail_code(WG_PAIR_FAIL_SIGNATURE), 401);
    WG_CHECK_STR(wg_pair_fail_text(WG_PAIR_FAIL_SIGNATURE), "signature-mismatch");
    WG_CHECK_EQ_INT(wg_pair_fail_code(WG_PAIR_FAIL_MALFORMED), 500);
    WG_CHECK_STR(wg_pair_fail_text(WG_PAIR_FAIL_MALFORMED), "internal-error");
    WG_CHECK_EQ_INT(wg_pair_fail_code(WG_PAIR_FAIL_INTERNAL), 500);
    WG_CHECK_STR(wg_pair_fail_text(WG_PAIR_FAIL_INTERNAL), "internal-error");
}

WG_TEST(pair_hosted)
{
    pairing_t p;
    wg_pair_success_t ok;
    wg_pair_fail_t fail;
    uint8_t mac[32], m[512];
    size_t n;

    WG_CHECK_EQ_INT(pairing_make(&p, 1), 0);
    /* container: accountType HOSTED, HMAC over 06 05 || details */
    Wa__ADVSignedDeviceIdentityHMAC *c =
        wa__advsigned_device_identity_hmac__unpack(NULL, p.container_len, p.container);
    WG_CHECK(c && c->has_account_type && c->account_type == WA__ADVENCRYPTION_TYPE__HOSTED);
    m[0] = 0x06;
    m[1] = 0x05;
    memcpy(m + 2, c->details.data, c->details.len);
    WG_CHECK_EQ_INT(wg_keys_hmac_sha256(mac, p.adv, 32, m, 2 + c->details.len), 0);
    WG_CHECK_MEM(c->hmac.data, mac, 32);
    Wa__ADVSignedDeviceIdentity *sdi =
        wa__advsigned_device_identity__unpack(NULL, c->details.len, c->details.data);
    WG_CHECK(sdi != NULL);
    /* account signature over 06 05 || details || companion pub */
    n = cat(m, 0x06, 0x05, p.details, p.details_len, p.companion.pub, NULL);
    WG_CHECK_EQ_INT(wg_keys_verify(p.phone.pub, m, n, sdi->account_signature.data), 0);
    wa__advsigned_device_identity__free_unpacked(sdi, NULL);

    WG_CHECK_EQ_INT(wg_pair_verify_success(&ok, &fail, p.adv, &p.companion, p.container,
                                           p.container_len),
                    0);
    WG_CHECK_EQ_INT(ok.container_hosted, 1);
    WG_CHECK_EQ_INT(ok.device.hosted, 1);
    /* the device signature stays 06 01 for hosted accounts */
    sdi = wa__advsigned_device_identity__unpack(NULL, ok.reply_len, ok.reply);
    WG_CHECK(sdi != NULL);
    n = cat(m, 0x06, 0x01, p.details, p.details_len, p.companion.pub, p.phone.pub);
    WG_CHECK_EQ_INT(wg_keys_verify(p.companion.pub, m, n, sdi->device_signature.data), 0);
    wa__advsigned_device_identity__free_unpacked(sdi, NULL);
    WG_CHECK_EQ_INT(wg_pair_phone_verify_sign(p.phone.pub, p.companion.pub, ok.reply,
                                              ok.reply_len, p.details, p.details_len),
                    0);
    wg_pair_success_dispose(&ok);

    /* the same container with accountType dropped: the HMAC no longer matches */
    c->has_account_type = 0;
    uint8_t buf[1024];
    size_t bl = wa__advsigned_device_identity_hmac__pack(c, buf);
    wa__advsigned_device_identity_hmac__free_unpacked(c, NULL);
    WG_CHECK_EQ_INT(wg_pair_verify_success(&ok, &fail, p.adv, &p.companion, buf, bl),
                    WG_ECRYPTO);
    WG_CHECK_EQ_INT(fail, WG_PAIR_FAIL_HMAC);
    pairing_free(&p);
}

WG_TEST(pair_phone_verify_sign_rejects)
{
    pairing_t p;
    wg_pair_success_t ok;
    wg_keys_pair_t other;

    WG_CHECK_EQ_INT(pairing_make(&p, 0), 0);
    WG_CHECK_EQ_INT(wg_pair_verify_success(&ok, NULL, p.adv, &p.companion, p.container,
                                           p.container_len),
                    0);
    /* field 2 present: the account bytes instead of the reply */
    WG_CHECK_EQ_INT(wg_pair_phone_verify_sign(p.phone.pub, p.companion.pub, ok.account,
                                              ok.account_len, p.details, p.details_len),
                    WG_EPROTO);
    /* a tampered device signature (the reply ends with it) */
    ok.reply[ok.reply_len - 3] ^= 0x10;
    WG_CHECK_EQ_INT(wg_pair_phone_verify_sign(p.phone.pub, p.companion.pub, ok.reply,
                                              ok.reply_len, p.details, p.details_len),
                    WG_ECRYPTO);
    ok.reply[ok.reply_len - 3] ^= 0x10;
    /* details other than the ones the phone made */
    uint8_t d2[64];
    memcpy(d2, p.details, p.details_len);
    d2[p.details_len - 1] ^= 0x01;
    WG_CHECK_EQ_INT(wg_pair_phone_verify_sign(p.phone.pub, p.companion.pub, ok.reply,
                                              ok.reply_len, d2, p.details_len),
                    WG_EPROTO);
    /* another companion key */
    WG_CHECK_EQ_INT(wg_keys_generate(&other), 0);
    WG_CHECK_EQ_INT(wg_pair_phone_verify_sign(p.phone.pub, other.pub, ok.reply, ok.reply_len,
                                              p.details, p.details_len),
                    WG_ECRYPTO);
    /* truncated */
    WG_CHECK_EQ_INT(wg_pair_phone_verify_sign(p.phone.pub, p.companion.pub, ok.reply,
                                              ok.reply_len - 1, p.details, p.details_len),
                    WG_EPROTO);
    WG_CHECK_EQ_INT(wg_pair_phone_verify_sign(p.phone.pub, p.companion.pub, ok.reply,
                                              ok.reply_len, p.details, p.details_len),
                    0);
    wg_pair_success_dispose(&ok);
    pairing_free(&p);
}

/* ---- pairing code ------------------------------------------------------------------------ */

WG_TEST(pair_code_alphabet_and_format)
{
    char code[9], disp[10], norm[9];
    const uint8_t b1[5] = {0x01, 0x23, 0x45, 0x67, 0x89};
    const uint8_t b0[5] = {0, 0, 0, 0, 0};
    const uint8_t bf[5] = {0xff, 0xff, 0xff, 0xff, 0xff};

    WG_CHECK_EQ_INT(strlen(WG_PAIR_CODE_ALPHABET), 32);
    wg_pair_code_from_bytes(code, b1);
    WG_CHECK_STR(code, "15JMBSWA");
    wg_pair_code_from_bytes(code, b0);
    WG_CHECK_STR(code, "11111111");
    wg_pair_code_from_bytes(code, bf);
    WG_CHECK_STR(code, "ZZZZZZZZ");

    for (int i = 0; i < 200; i++) {
        WG_CHECK_EQ_INT(wg_pair_code_new(code), 0);
        WG_CHECK_EQ_INT(strlen(code), 8);
        WG_CHECK(strspn(code, WG_PAIR_CODE_ALPHABET) == 8);
        WG_CHECK(strpbrk(code, "0IOU") == NULL);
    }
    WG_CHECK_EQ_INT(wg_pair_code_display(disp, "15JMBSWA"), 0);
    WG_CHECK_STR(disp, "15JM-BSWA");
    WG_CHECK_EQ_INT(wg_pair_code_display(disp, "15JMBSW"), WG_EINVAL);
    WG_CHECK_EQ_INT(wg_pair_code_display(disp, "15JMBSWO"), WG_EINVAL);

    WG_CHECK_EQ_INT(wg_pair_code_normalize(norm, " 15jm-bswa "), 0);
    WG_CHECK_STR(norm, "15JMBSWA");
    WG_CHECK_EQ_INT(wg_pair_code_normalize(norm, "15JMBSWA"), 0);
    WG_CHECK_STR(norm, "15JMBSWA");
    const char *bad[] = {"15JMBSW0", "15JMBSWAX", "15JMBSW", "15J-MBSWA", "15JM--BSWA",
                         "15JM-BSWU", "", "-15JMBSWA"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        WG_CHECK_EQ_INT(wg_pair_code_normalize(norm, bad[i]), WG_EINVAL);
}

/* Fixed keys of the KAT: X25519 private keys of repeated bytes. */
#define KAT_CODE "15JMBSWA"

WG_TEST(pair_code_wrap_kat_real_iterations)
{
    wg_keys_pair_t ceph, peph;
    uint8_t r[48], out[80], want[80], pub[32];

    WG_CHECK_EQ_INT(WG_PAIR_PBKDF2_ITERATIONS, 131072);
    WG_CHECK_EQ_INT(kp_from_byte(&ceph, 0x11), 0);
    WG_CHECK_EQ_INT(kp_from_byte(&peph, 0x33), 0);
    hex(want, 32, "7b4e909bbe7ffe44c465a220037d608ee35897d31ef972f07f74892cb0f73f13");
    WG_CHECK_MEM(ceph.pub, want, 32);

    /* iterations 0 = the documented default 2<<16 */
    seq(r, 32, 0xa0);
    seq(r + 32, 16, 0xc0);
    WG_CHECK_EQ_INT(wg_pair_code_wrap_ephemeral_with_random(out, KAT_CODE, ceph.pub, 0, r), 0);
    hex(want, 80,
        "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacb"
        "cccdcecf7affbe152276e23412097d43dfa1ceae28959cd9026be9b9873d2f268c2376f4");
    WG_CHECK_MEM(out, want, 80);
    WG_CHECK_EQ_INT(wg_pair_code_unwrap_ephemeral(pub, KAT_CODE, out, 80, 131072), 0);
    WG_CHECK_MEM(pub, ceph.pub, 32);

    seq(r, 32, 0x10);
    seq(r + 32, 16, 0x30);
    WG_CHECK_EQ_INT(wg_pair_code_wrap_ephemeral_with_random(out, KAT_CODE, peph.pub, 131072, r),
                    0);
    hex(want, 80,
        "101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b"
        "3c3d3e3f18e051db41ec99fc55a3f9e4d004aa87d7e00a102386d827c76b500af887c667");
    WG_CHECK_MEM(out, want, 80);

    /* the 128-bit big-endian counter wraps (iv all ff), at 1000 iterations */
    fill(r, 32, 0x5a);
    fill(r + 32, 16, 0xff);
    WG_CHECK_EQ_INT(wg_pair_code_wrap_ephemeral_with_random(out, KAT_CODE, ceph.pub, 1000, r), 0);
    hex(want, 80,
        "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5affffffffffffffffffffffff"
        "fffffffff534b57ded78ace8b882104d0cf6647f86ed93ace0de28f86fbea5a36fe7052c");
    WG_CHECK_MEM(out, want, 80);

    /* bad code, short input */
    WG_CHECK_EQ_INT(wg_pair_code_wrap_ephemeral(out, "15JM-BSWA", ceph.pub, FAST_ITER), WG_EINVAL);
    WG_CHECK_EQ_INT(wg_pair_code_wrap_ephemeral(out, "15jmbswa", ceph.pub, FAST_ITER), WG_EINVAL);
    WG_CHECK_EQ_INT(wg_pair_code_unwrap_ephemeral(pub, KAT_CODE, out, 79, FAST_ITER), WG_EPROTO);
}

WG_TEST(pair_code_finish_kat)
{
    wg_keys_pair_t ceph, ident, peph, pid;
    uint8_t r[76], wrapped_p[80], bundle[156], adv[32], adv2[32], want[156];

    WG_CHECK_EQ_INT(kp_from_byte(&ceph, 0x11), 0);
    WG_CHECK_EQ_INT(kp_from_byte(&ident, 0x22), 0);
    WG_CHECK_EQ_INT(kp_from_byte(&peph, 0x33), 0);
    WG_CHECK_EQ_INT(kp_from_byte(&pid, 0x44), 0);
    hex(wrapped_p, 80,
        "101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b"
        "3c3d3e3f18e051db41ec99fc55a3f9e4d004aa87d7e00a102386d827c76b500af887c667");
    fill(r, 32, 0x55);
    fill(r + 32, 12, 0x66);
    fill(r + 44, 32, 0x77);
    WG_CHECK_EQ_INT(wg_pair_code_finish_with_random(bundle, adv, KAT_CODE, &ceph, &ident, pid.pub,
                                                    wrapped_p, 80, 0, r),
                    0);
    size_t wn = hex(want, 156,
                    "55555555555555555555555555555555555555555555555555555555555555556666666666"
                    "66666666666666dae27d24e3c1bcfb379e1211372f151eb438efe178eee89755ff03337989"
                    "5657ae36c490f1530b7d31fd1fab726818d8989ac47e6519c38aaed2fb425c94dc3877448a"
                    "8a7771f5a2a98c64764869d26d2211c4a9276cde113d19f242ae27fe3c58d546877ccfcd76"
                    "0f6d817eb57e4d5d");
    WG_CHECK_EQ_INT(wn, 156);
    WG_CHECK_MEM(bundle, want, 156);
    hex(want, 32, "0adcc4235007b4025dc4bba205e482ad7d012eca340d7f2c1135fb8fafa36d32");
    WG_CHECK_MEM(adv, want, 32);

    /* the phone derives the same secret from the bundle */
    WG_CHECK_EQ_INT(wg_pair_phone_code_finish(adv2, &peph, &pid, ceph.pub, ident.pub, bundle, 156),
                    0);
    WG_CHECK_MEM(adv2, adv, 32);
}

WG_TEST(pair_code_round_trip)
{
    wg_keys_pair_t noise, ident, ceph, phone, peph;
    char code[9], typed[10], norm[9];
    uint8_t w_c[80], w_p[80], got_ceph[32], bundle[156], adv_c[32], adv_p[32];
    wg_pair_success_t ok;
    wg_pair_fail_t fail;
    uint8_t *cont = NULL, *det = NULL;
    size_t cont_len, det_len;
    wg_pair_device_t dev = {.raw_id = 9, .timestamp = 1764000001, .key_index = 1};

    WG_CHECK_EQ_INT(wg_keys_generate(&noise), 0);
    WG_CHECK_EQ_INT(wg_keys_generate(&ident), 0);
    WG_CHECK_EQ_INT(wg_keys_generate(&ceph), 0);
    WG_CHECK_EQ_INT(wg_keys_generate(&phone), 0);
    WG_CHECK_EQ_INT(wg_keys_generate(&peph), 0);

    /* companion: code and companion_hello */
    WG_CHECK_EQ_INT(wg_pair_code_new(code), 0);
    WG_CHECK_EQ_INT(wg_pair_code_wrap_ephemeral(w_c, code, ceph.pub, FAST_ITER), 0);
    /* phone: the user types the displayed form in lower case */
    WG_CHECK_EQ_INT(wg_pair_code_display(typed, code), 0);
    for (char *q = typed; *q; q++)
        *q = (char)((*q >= 'A' && *q <= 'Z') ? *q + 32 : *q);
    WG_CHECK_EQ_INT(wg_pair_code_normalize(norm, typed), 0);
    WG_CHECK_STR(norm, code);
    WG_CHECK_EQ_INT(wg_pair_code_unwrap_ephemeral(got_ceph, norm, w_c, 80, FAST_ITER), 0);
    WG_CHECK_MEM(got_ceph, ceph.pub, 32);
    WG_CHECK_EQ_INT(wg_pair_code_wrap_ephemeral(w_p, norm, peph.pub, FAST_ITER), 0);
    /* companion: finish */
    WG_CHECK_EQ_INT(wg_pair_code_finish(bundle, adv_c, code, &ceph, &ident, phone.pub, w_p, 80,
                                        FAST_ITER),
                    0);
    /* phone: bundle -> same adv secret */
    WG_CHECK_EQ_INT(wg_pair_phone_code_finish(adv_p, &peph, &phone, got_ceph, ident.pub, bundle,
                                              sizeof(bundle)),
                    0);
    WG_CHECK_MEM(adv_p, adv_c, 32);

    /* and the derived secret carries the pair-success through */
    WG_CHECK_EQ_INT(wg_pair_phone_make_identity(&cont, &cont_len, &det, &det_len, &phone,
                                                ident.pub, adv_p, &dev),
                    0);
    WG_CHECK_EQ_INT(wg_pair_verify_success(&ok, &fail, adv_c, &ident, cont, cont_len), 0);
    WG_CHECK_EQ_INT(wg_pair_phone_verify_sign(phone.pub, ident.pub, ok.reply, ok.reply_len, det,
                                              det_len),
                    0);
    wg_pair_success_dispose(&ok);
    free(cont);
    free(det);

    /* bundle of the wrong size; bundle naming another primary; wrong companion identity */
    WG_CHECK_EQ_INT(wg_pair_phone_code_finish(adv_p, &peph, &phone, got_ceph, ident.pub, bundle,
                                              155),
                    WG_EPROTO);
    WG_CHECK_EQ_INT(wg_pair_phone_code_finish(adv_p, &peph, &phone, got_ceph, noise.pub, bundle,
                                              156),
                    WG_EPROTO);
    WG_CHECK_EQ_INT(wg_pair_code_finish(bundle, adv_c, code, &ceph, &ident, noise.pub, w_p, 80,
                                        FAST_ITER),
                    0);
    WG_CHECK_EQ_INT(wg_pair_phone_code_finish(adv_p, &peph, &phone, got_ceph, ident.pub, bundle,
                                              156),
                    WG_EPROTO);
    /* tampered bundle: GCM tag */
    WG_CHECK_EQ_INT(wg_pair_code_finish(bundle, adv_c, code, &ceph, &ident, phone.pub, w_p, 80,
                                        FAST_ITER),
                    0);
    bundle[100] ^= 1;
    WG_CHECK_EQ_INT(wg_pair_phone_code_finish(adv_p, &peph, &phone, got_ceph, ident.pub, bundle,
                                              156),
                    WG_ECRYPTO);
}

WG_TEST(pair_code_wrong_code_fails)
{
    wg_keys_pair_t ident, ceph, phone, peph;
    char code[9], wrong[9];
    uint8_t w_c[80], w_p[80], got_ceph[32], bundle[156], adv_c[32], adv_p[32];

    WG_CHECK_EQ_INT(wg_keys_generate(&ident), 0);
    WG_CHECK_EQ_INT(wg_keys_generate(&ceph), 0);
    WG_CHECK_EQ_INT(wg_keys_generate(&phone), 0);
    WG_CHECK_EQ_INT(wg_keys_generate(&peph), 0);
    WG_CHECK_EQ_INT(wg_pair_code_new(code), 0);
    memcpy(wrong, code, sizeof(code));
    wrong[3] = wrong[3] == 'A' ? 'B' : 'A';

    WG_CHECK_EQ_INT(wg_pair_code_wrap_ephemeral(w_c, code, ceph.pub, FAST_ITER), 0);
    /* the phone types the wrong code: it unwraps another key (CTR has no MAC) */
    WG_CHECK_EQ_INT(wg_pair_code_unwrap_ephemeral(got_ceph, wrong, w_c, 80, FAST_ITER), 0);
    WG_CHECK(memcmp(got_ceph, ceph.pub, 32) != 0);
    WG_CHECK_EQ_INT(wg_pair_code_wrap_ephemeral(w_p, wrong, peph.pub, FAST_ITER), 0);
    /* the companion unwraps with the right code, so gets a wrong primary ephemeral too */
    int rv = wg_pair_code_finish(bundle, adv_c, code, &ceph, &ident, phone.pub, w_p, 80,
                                 FAST_ITER);
    WG_CHECK(rv == 0 || rv == WG_ECRYPTO); /* ECRYPTO only for a small-order garbage key */
    if (rv == 0)
        WG_CHECK_EQ_INT(wg_pair_phone_code_finish(adv_p, &peph, &phone, got_ceph, ident.pub,
                                                  bundle, 156),
                        WG_ECRYPTO);
}
