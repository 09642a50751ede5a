/* pair.c - pairing cryptography of the companion and of the (simulated) primary phone.
 *
 * QR string build/parse, ADV device-identity verification and signing (HMAC, account and
 * device signatures, the pair-device-sign reply) and the pairing-code wrapping / key bundle /
 * adv secret derivation. Facts: docs wa-protocol-core.md §5.3, §5.5-§5.7, §6.2-§6.7, §8.5.
 * Works on bytes only: no sockets, no clocks, no stanzas (see pair.h). Buffers handed out are
 * malloc'd for the caller to free; all secrets held in locals are wiped before returning.
 * PBKDF2 and AES-256-CTR come straight from OpenSSL (keys.h has neither). The ADV messages
 * are flat (bytes and scalars, no sub-messages), so peer bytes go straight to protobuf-c's
 * unpack after a size check: there is no nesting depth to bound (compare wa/pb.h). */
#include "wa/pair.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "util/buf.h"
#include "util/codec.h"
#include "util/err.h"
#include "wa/proto/adv.pb-c.h"

/* Signature and HMAC prefixes (§5.7). 06 06 (hosted device) is used by neither reference
 * implementation: the device signature is 06 01 for hosted accounts too. */
static const uint8_t PREFIX_ACCOUNT[2] = {0x06, 0x00};
static const uint8_t PREFIX_DEVICE[2] = {0x06, 0x01};
static const uint8_t PREFIX_HOSTED_ACCOUNT[2] = {0x06, 0x05};

static const char INFO_BUNDLE[] = "link_code_pairing_key_bundle_encryption_key";
static const char INFO_ADV[] = "adv_secret";

#define BUNDLE_PLAIN_LEN (3 * WG_KEYS_KEY_LEN)
#define BUNDLE_SALT_LEN 32
#define WRAP_SALT_LEN 32
#define WRAP_IV_LEN 16

/* ---- small helpers ----------------------------------------------------------------------- */

/* prefix(2) || a || b || c (c may be NULL) into b->data; 0 or WG_ENOMEM. */
static int signed_msg(wg_buf_t *out, const uint8_t prefix[2], const uint8_t *a, size_t alen,
                      const uint8_t *k1, const uint8_t *k2)
{
    int rv;
    if ((rv = wg_buf_append(out, prefix, 2)) != 0 || (rv = wg_buf_append(out, a, alen)) != 0 ||
        (rv = wg_buf_append(out, k1, WG_KEYS_KEY_LEN)) != 0)
        return rv;
    if (k2)
        rv = wg_buf_append(out, k2, WG_KEYS_KEY_LEN);
    return rv;
}

/* Serializes a protobuf-c message into a malloc'd buffer. 0 or WG_ENOMEM. */
static int pack_msg(const ProtobufCMessage *m, uint8_t **out, size_t *len)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *p = malloc(n ? n : 1);
    if (!p)
        return WG_ENOMEM;
    *len = protobuf_c_message_pack(m, p);
    *out = p;
    return 0;
}

static const uint8_t *account_prefix(int hosted)
{
    return hosted ? PREFIX_HOSTED_ACCOUNT : PREFIX_ACCOUNT;
}

/* HMAC-SHA256(adv secret, [06 05 if hosted] || details). */
static int container_hmac(uint8_t mac[WG_KEYS_SHA256_LEN], const uint8_t *adv_secret, int hosted,
                          const uint8_t *details, size_t len)
{
    wg_buf_t m;
    int rv;
    wg_buf_init(&m, 0);
    if (hosted && (rv = wg_buf_append(&m, PREFIX_HOSTED_ACCOUNT, 2)) != 0)
        goto out;
    if ((rv = wg_buf_append(&m, details, len)) != 0)
        goto out;
    rv = wg_keys_hmac_sha256(mac, adv_secret, WG_PAIR_ADV_SECRET_LEN, m.data, m.len);
out:
    wg_buf_dispose(&m);
    return rv;
}

/* ---- QR string --------------------------------------------------------------------------- */

static int ref_ok(const uint8_t *ref, size_t len)
{
    if (len == 0 || len > WG_PAIR_REF_MAX)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (ref[i] < 0x21 || ref[i] > 0x7e || ref[i] == ',')
            return 0;
    return 1;
}

static int platform_ok(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z');
}

int wg_pair_qr_string(char **out, const uint8_t *ref, size_t ref_len,
                      const uint8_t noise_pub[WG_KEYS_KEY_LEN],
                      const uint8_t identity_pub[WG_KEYS_KEY_LEN],
                      const uint8_t adv_secret[WG_PAIR_ADV_SECRET_LEN], char platform,
                      wg_pair_qr_form_t form)
{
    wg_buf_t b;
    char *k[3] = {NULL, NULL, NULL};
    int rv = WG_EINVAL;

    wg_buf_init(&b, 0);
    if (!out || !ref || !noise_pub || !identity_pub || !adv_secret || !ref_ok(ref, ref_len))
        goto out;
    if (form != WG_PAIR_QR_LEGACY && (form != WG_PAIR_QR_URL || !platform_ok(platform)))
        goto out;
    rv = WG_ENOMEM;
    if (!(k[0] = wg_base64_encode(noise_pub, WG_KEYS_KEY_LEN)) ||
        !(k[1] = wg_base64_encode(identity_pub, WG_KEYS_KEY_LEN)) ||
        !(k[2] = wg_base64_encode(adv_secret, WG_PAIR_ADV_SECRET_LEN)))
        goto out;
    if (form == WG_PAIR_QR_URL && (rv = wg_buf_append_str(&b, WG_PAIR_QR_URL_PREFIX)) != 0)
        goto out;
    if ((rv = wg_buf_append(&b, ref, ref_len)) != 0 ||
        (rv = wg_buf_printf(&b, ",%s,%s,%s", k[0], k[1], k[2])) != 0)
        goto out;
    if (form == WG_PAIR_QR_URL && (rv = wg_buf_printf(&b, ",%c", platform)) != 0)
        goto out;
    *out = (char *)wg_buf_steal(&b, NULL);
    rv = *out ? 0 : WG_ENOMEM;
out:
    for (int i = 0; i < 3; i++)
        free(k[i]);
    wg_buf_dispose(&b);
    return rv;
}

static int decode_key32(uint8_t out[32], const char *s, size_t len)
{
    ssize_t n = wg_base64_decode(s, len, out, 32);
    return n == 32 ? 0 : WG_EINVAL;
}

int wg_pair_qr_parse(wg_pair_qr_t *qr, const char *s, size_t len)
{
    const size_t plen = strlen(WG_PAIR_QR_URL_PREFIX);
    const char *part[5];
    size_t plens[5];
    size_t want, n = 0;
    int rv = WG_EINVAL;

    if (!qr)
        return WG_EINVAL;
    memset(qr, 0, sizeof(*qr));
    if (!s)
        return WG_EINVAL;
    qr->form = WG_PAIR_QR_LEGACY;
    if (len >= plen && memcmp(s, WG_PAIR_QR_URL_PREFIX, plen) == 0) {
        qr->form = WG_PAIR_QR_URL;
        s += plen;
        len -= plen;
    }
    want = qr->form == WG_PAIR_QR_URL ? 5 : 4;
    /* Split on ','; one part more than wanted is an error. */
    part[0] = s;
    for (size_t i = 0; i < len; i++) {
        if (s[i] != ',')
            continue;
        plens[n] = (size_t)(s + i - part[n]);
        if (++n >= want)
            goto out;
        part[n] = s + i + 1;
    }
    plens[n] = (size_t)(s + len - part[n]);
    if (++n != want)
        goto out;
    if (!ref_ok((const uint8_t *)part[0], plens[0]) ||
        decode_key32(qr->noise_pub, part[1], plens[1]) != 0 ||
        decode_key32(qr->identity_pub, part[2], plens[2]) != 0 ||
        decode_key32(qr->adv_secret, part[3], plens[3]) != 0)
        goto out;
    if (want == 5) {
        if (plens[4] != 1 || !platform_ok(part[4][0]))
            goto out;
        qr->platform = part[4][0];
    }
    rv = WG_ENOMEM;
    if (!(qr->ref = strndup(part[0], plens[0])))
        goto out;
    qr->ref_len = plens[0];
    rv = 0;
out:
    if (rv != 0) {
        wg_keys_wipe(qr, sizeof(*qr));
        memset(qr, 0, sizeof(*qr));
    }
    return rv;
}

void wg_pair_qr_dispose(wg_pair_qr_t *qr)
{
    if (!qr)
        return;
    free(qr->ref);
    wg_keys_wipe(qr, sizeof(*qr));
    memset(qr, 0, sizeof(*qr));
}

/* ---- ADV device identity ----------------------------------------------------------------- */

int wg_pair_fail_code(wg_pair_fail_t f)
{
    switch (f) {
    case WG_PAIR_FAIL_NONE:
        return 0;
    case WG_PAIR_FAIL_HMAC:
    case WG_PAIR_FAIL_SIGNATURE:
        return 401;
    default:
        return 500;
    }
}

const char *wg_pair_fail_text(wg_pair_fail_t f)
{
    switch (f) {
    case WG_PAIR_FAIL_NONE:
        return "";
    case WG_PAIR_FAIL_HMAC:
        return "hmac-mismatch";
    case WG_PAIR_FAIL_SIGNATURE:
        return "signature-mismatch";
    default:
        return "internal-error";
    }
}

int wg_pair_device_decode(wg_pair_device_t *dev, const uint8_t *details, size_t len)
{
    Wa__ADVDeviceIdentity *d;

    if (!dev || (!details && len))
        return WG_EINVAL;
    memset(dev, 0, sizeof(*dev));
    if (len > WG_PAIR_MAX_INPUT)
        return WG_ETOOBIG;
    if (!(d = wa__advdevice_identity__unpack(NULL, len, details)))
        return WG_EPROTO;
    dev->raw_id = d->raw_id;
    dev->timestamp = d->timestamp;
    dev->key_index = d->key_index;
    /* The account signature prefix follows deviceType (§5.7 step 4). */
    dev->hosted = d->has_device_type && d->device_type == WA__ADVENCRYPTION_TYPE__HOSTED;
    wa__advdevice_identity__free_unpacked(d, NULL);
    return 0;
}

void wg_pair_success_dispose(wg_pair_success_t *s)
{
    if (!s)
        return;
    free(s->account);
    free(s->reply);
    memset(s, 0, sizeof(*s));
}

int wg_pair_verify_success(wg_pair_success_t *out, wg_pair_fail_t *fail,
                           const uint8_t adv_secret[WG_PAIR_ADV_SECRET_LEN],
                           const wg_keys_pair_t *identity, const uint8_t *device_identity,
                           size_t len)
{
    Wa__ADVSignedDeviceIdentityHMAC *c = NULL;
    Wa__ADVSignedDeviceIdentity *sdi = NULL;
    Wa__ADVSignedDeviceIdentity resp = WA__ADVSIGNED_DEVICE_IDENTITY__INIT;
    wg_pair_fail_t why = WG_PAIR_FAIL_INTERNAL;
    uint8_t mac[WG_KEYS_SHA256_LEN], dsig[WG_KEYS_SIG_LEN];
    wg_buf_t msg;
    int rv = WG_EINVAL;

    wg_buf_init(&msg, 0);
    if (out)
        memset(out, 0, sizeof(*out));
    if (!out || !adv_secret || !identity || (!device_identity && len))
        goto out;

    why = WG_PAIR_FAIL_MALFORMED;
    rv = WG_ETOOBIG;
    if (len > WG_PAIR_MAX_INPUT)
        goto out;
    /* 1. the HMAC container */
    rv = WG_EPROTO;
    if (!(c = wa__advsigned_device_identity_hmac__unpack(NULL, len, device_identity)) ||
        !c->has_details)
        goto out;
    out->container_hosted = c->has_account_type && c->account_type == WA__ADVENCRYPTION_TYPE__HOSTED;

    /* 2. HMAC, constant time. A missing or short hmac is a mismatch, as in [W]. */
    why = WG_PAIR_FAIL_INTERNAL;
    if ((rv = container_hmac(mac, adv_secret, out->container_hosted, c->details.data,
                             c->details.len)) != 0)
        goto out;
    why = WG_PAIR_FAIL_HMAC;
    rv = WG_ECRYPTO;
    if (!c->has_hmac || c->hmac.len != sizeof(mac) ||
        CRYPTO_memcmp(mac, c->hmac.data, sizeof(mac)) != 0)
        goto out;

    /* 3. ADVSignedDeviceIdentity and its ADVDeviceIdentity */
    why = WG_PAIR_FAIL_MALFORMED;
    rv = WG_EPROTO;
    if (!(sdi = wa__advsigned_device_identity__unpack(NULL, c->details.len, c->details.data)) ||
        !sdi->has_details)
        goto out;
    if ((rv = wg_pair_device_decode(&out->device, sdi->details.data, sdi->details.len)) != 0)
        goto out;

    /* 4. account signature: (06 00 | 06 05) || details || our identity pub */
    why = WG_PAIR_FAIL_SIGNATURE;
    rv = WG_ECRYPTO;
    if (!sdi->has_account_signature_key || sdi->account_signature_key.len != WG_KEYS_KEY_LEN ||
        !sdi->has_account_signature || sdi->account_signature.len != WG_KEYS_SIG_LEN)
        goto out;
    why = WG_PAIR_FAIL_INTERNAL;
    if ((rv = signed_msg(&msg, account_prefix(out->device.hosted), sdi->details.data,
                         sdi->details.len, identity->pub, NULL)) != 0)
        goto out;
    why = WG_PAIR_FAIL_SIGNATURE;
    if ((rv = wg_keys_verify(sdi->account_signature_key.data, msg.data, msg.len,
                             sdi->account_signature.data)) != 0) {
        rv = WG_ECRYPTO;
        goto out;
    }
    memcpy(out->account_signature_key, sdi->account_signature_key.data, WG_KEYS_KEY_LEN);

    /* 5. our device signature: 06 01 || details || identity pub || account signature key */
    why = WG_PAIR_FAIL_INTERNAL;
    wg_buf_reset(&msg);
    if ((rv = signed_msg(&msg, PREFIX_DEVICE, sdi->details.data, sdi->details.len, identity->pub,
                         out->account_signature_key)) != 0 ||
        (rv = wg_keys_sign(dsig, identity->priv, msg.data, msg.len)) != 0)
        goto out;

    /* 6./7. the account to persist (all four fields), the reply without field 2 */
    resp.has_details = 1;
    resp.details = sdi->details;
    resp.has_account_signature_key = 1;
    resp.account_signature_key = sdi->account_signature_key;
    resp.has_account_signature = 1;
    resp.account_signature = sdi->account_signature;
    resp.has_device_signature = 1;
    resp.device_signature.data = dsig;
    resp.device_signature.len = sizeof(dsig);
    if ((rv = pack_msg(&resp.base, &out->account, &out->account_len)) != 0)
        goto out;
    resp.has_account_signature_key = 0;
    resp.account_signature_key.data = NULL;
    resp.account_signature_key.len = 0;
    if ((rv = pack_msg(&resp.base, &out->reply, &out->reply_len)) != 0)
        goto out;
    why = WG_PAIR_FAIL_NONE;
    rv = 0;
out:
    if (rv != 0 && out)
        wg_pair_success_dispose(out);
    if (fail)
        *fail = rv == 0 ? WG_PAIR_FAIL_NONE : why;
    if (sdi)
        wa__advsigned_device_identity__free_unpacked(sdi, NULL);
    if (c)
        wa__advsigned_device_identity_hmac__free_unpacked(c, NULL);
    wg_buf_dispose(&msg);
    wg_keys_wipe(mac, sizeof(mac));
    return rv;
}

int wg_pair_phone_make_identity(uint8_t **out, size_t *out_len, uint8_t **details,
                                size_t *details_len, const wg_keys_pair_t *account,
                                const uint8_t companion_identity_pub[WG_KEYS_KEY_LEN],
                                const uint8_t adv_secret[WG_PAIR_ADV_SECRET_LEN],
                                const wg_pair_device_t *dev)
{
    Wa__ADVDeviceIdentity d = WA__ADVDEVICE_IDENTITY__INIT;
    Wa__ADVSignedDeviceIdentity s = WA__ADVSIGNED_DEVICE_IDENTITY__INIT;
    Wa__ADVSignedDeviceIdentityHMAC h = WA__ADVSIGNED_DEVICE_IDENTITY_HMAC__INIT;
    uint8_t *det = NULL, *sd = NULL;
    size_t det_len = 0, sd_len = 0;
    uint8_t asig[WG_KEYS_SIG_LEN], mac[WG_KEYS_SHA256_LEN];
    wg_buf_t msg;
    int rv = WG_EINVAL;

    wg_buf_init(&msg, 0);
    if (!out || !out_len || !account || !companion_identity_pub || !adv_secret || !dev ||
        (details && !details_len))
        goto out;
    d.has_raw_id = 1;
    d.raw_id = dev->raw_id;
    d.has_timestamp = 1;
    d.timestamp = dev->timestamp;
    d.has_key_index = 1;
    d.key_index = dev->key_index;
    if (dev->hosted) {
        d.has_account_type = d.has_device_type = 1;
        d.account_type = d.device_type = WA__ADVENCRYPTION_TYPE__HOSTED;
    }
    if ((rv = pack_msg(&d.base, &det, &det_len)) != 0)
        goto out;

    if ((rv = signed_msg(&msg, account_prefix(dev->hosted), det, det_len,
                         companion_identity_pub, NULL)) != 0 ||
        (rv = wg_keys_sign(asig, account->priv, msg.data, msg.len)) != 0)
        goto out;
    s.has_details = 1;
    s.details.data = det;
    s.details.len = det_len;
    s.has_account_signature_key = 1;
    s.account_signature_key.data = (uint8_t *)account->pub;
    s.account_signature_key.len = WG_KEYS_KEY_LEN;
    s.has_account_signature = 1;
    s.account_signature.data = asig;
    s.account_signature.len = sizeof(asig);
    if ((rv = pack_msg(&s.base, &sd, &sd_len)) != 0)
        goto out;

    if ((rv = container_hmac(mac, adv_secret, dev->hosted, sd, sd_len)) != 0)
        goto out;
    h.has_details = 1;
    h.details.data = sd;
    h.details.len = sd_len;
    h.has_hmac = 1;
    h.hmac.data = mac;
    h.hmac.len = sizeof(mac);
    if (dev->hosted) {
        h.has_account_type = 1;
        h.account_type = WA__ADVENCRYPTION_TYPE__HOSTED;
    }
    if ((rv = pack_msg(&h.base, out, out_len)) != 0)
        goto out;
    if (details) {
        *details = det;
        *details_len = det_len;
        det = NULL;
    }
out:
    free(det);
    free(sd);
    wg_buf_dispose(&msg);
    return rv;
}

int wg_pair_phone_verify_sign(const uint8_t account_pub[WG_KEYS_KEY_LEN],
                              const uint8_t companion_identity_pub[WG_KEYS_KEY_LEN],
                              const uint8_t *reply, size_t reply_len, const uint8_t *details,
                              size_t details_len)
{
    Wa__ADVSignedDeviceIdentity *s = NULL;
    wg_pair_device_t dev;
    wg_buf_t msg;
    int rv = WG_EINVAL;

    wg_buf_init(&msg, 0);
    if (!account_pub || !companion_identity_pub || (!reply && reply_len) ||
        (!details && details_len))
        goto out;
    rv = WG_ETOOBIG;
    if (reply_len > WG_PAIR_MAX_INPUT)
        goto out;
    rv = WG_EPROTO;
    if (!(s = wa__advsigned_device_identity__unpack(NULL, reply_len, reply)))
        goto out;
    /* §5.7 step 7: the reply must not carry accountSignatureKey. */
    if (s->has_account_signature_key || !s->has_details || s->details.len != details_len ||
        (details_len && memcmp(s->details.data, details, details_len) != 0))
        goto out;
    if (!s->has_account_signature || s->account_signature.len != WG_KEYS_SIG_LEN ||
        !s->has_device_signature || s->device_signature.len != WG_KEYS_SIG_LEN)
        goto out;
    if ((rv = wg_pair_device_decode(&dev, details, details_len)) != 0)
        goto out;

    if ((rv = signed_msg(&msg, account_prefix(dev.hosted), details, details_len,
                         companion_identity_pub, NULL)) != 0)
        goto out;
    if (wg_keys_verify(account_pub, msg.data, msg.len, s->account_signature.data) != 0) {
        rv = WG_ECRYPTO;
        goto out;
    }
    wg_buf_reset(&msg);
    if ((rv = signed_msg(&msg, PREFIX_DEVICE, details, details_len, companion_identity_pub,
                         account_pub)) != 0)
        goto out;
    if (wg_keys_verify(companion_identity_pub, msg.data, msg.len, s->device_signature.data) != 0)
        rv = WG_ECRYPTO;
out:
    if (s)
        wa__advsigned_device_identity__free_unpacked(s, NULL);
    wg_buf_dispose(&msg);
    return rv;
}

/* ---- pairing code ------------------------------------------------------------------------ */

void wg_pair_code_from_bytes(char code[WG_PAIR_CODE_LEN + 1],
                             const uint8_t bytes[WG_PAIR_CODE_BYTES])
{
    uint64_t v = 0;
    for (int i = 0; i < WG_PAIR_CODE_BYTES; i++)
        v = (v << 8) | bytes[i];
    for (int i = 0; i < WG_PAIR_CODE_LEN; i++)
        code[i] = WG_PAIR_CODE_ALPHABET[(v >> (5 * (WG_PAIR_CODE_LEN - 1 - i))) & 31];
    code[WG_PAIR_CODE_LEN] = '\0';
}

int wg_pair_code_new(char code[WG_PAIR_CODE_LEN + 1])
{
    uint8_t b[WG_PAIR_CODE_BYTES];
    int rv;
    if (!code)
        return WG_EINVAL;
    if ((rv = wg_random_bytes(b, sizeof(b))) != 0)
        return rv;
    wg_pair_code_from_bytes(code, b);
    wg_keys_wipe(b, sizeof(b));
    return 0;
}

static int code_char_ok(char c)
{
    return c != '\0' && strchr(WG_PAIR_CODE_ALPHABET, c) != NULL;
}

/* An 8-character code of the alphabet, NUL right after. */
static int code_ok(const char *code)
{
    if (!code)
        return 0;
    for (int i = 0; i < WG_PAIR_CODE_LEN; i++)
        if (!code_char_ok(code[i]))
            return 0;
    return code[WG_PAIR_CODE_LEN] == '\0';
}

int wg_pair_code_display(char out[WG_PAIR_CODE_DISPLAY_LEN + 1], const char *code)
{
    if (!out || !code_ok(code))
        return WG_EINVAL;
    memcpy(out, code, 4);
    out[4] = '-';
    memcpy(out + 5, code + 4, 4);
    out[9] = '\0';
    return 0;
}

int wg_pair_code_normalize(char code[WG_PAIR_CODE_LEN + 1], const char *in)
{
    size_t n = 0;
    int dashes = 0;
    if (!code || !in)
        return WG_EINVAL;
    for (; *in; in++) {
        char c = *in;
        if (c == ' ' || c == '\t')
            continue;
        if (c == '-') {
            /* one dash, between the two halves only */
            if (dashes++ || n != 4)
                return WG_EINVAL;
            continue;
        }
        c = (char)toupper((unsigned char)c);
        if (n >= WG_PAIR_CODE_LEN || !code_char_ok(c))
            return WG_EINVAL;
        code[n++] = c;
    }
    if (n != WG_PAIR_CODE_LEN)
        return WG_EINVAL;
    code[n] = '\0';
    return 0;
}

/* AES-256-CTR of 32 bytes with K = PBKDF2-HMAC-SHA256(code, salt, iterations, 32); CTR is its
 * own inverse, so this both wraps and unwraps. */
static int code_ctr(uint8_t out[WG_KEYS_KEY_LEN], const char *code, const uint8_t *salt,
                    const uint8_t *iv, const uint8_t in[WG_KEYS_KEY_LEN], uint32_t iterations)
{
    uint8_t k[32];
    EVP_CIPHER_CTX *ctx = NULL;
    int n1 = 0, n2 = 0, rv = WG_EINVAL;

    if (!code_ok(code))
        goto out;
    if (iterations == 0)
        iterations = WG_PAIR_PBKDF2_ITERATIONS;
    if (iterations > 0x7fffffffu)
        goto out;
    rv = WG_EIO;
    if (PKCS5_PBKDF2_HMAC(code, WG_PAIR_CODE_LEN, salt, WRAP_SALT_LEN, (int)iterations,
                          EVP_sha256(), sizeof(k), k) != 1)
        goto out;
    if (!(ctx = EVP_CIPHER_CTX_new()) ||
        EVP_EncryptInit_ex(ctx, EVP_aes_256_ctr(), NULL, k, iv) != 1 ||
        EVP_EncryptUpdate(ctx, out, &n1, in, WG_KEYS_KEY_LEN) != 1 ||
        EVP_EncryptFinal_ex(ctx, out + n1, &n2) != 1 || n1 + n2 != WG_KEYS_KEY_LEN)
        goto out;
    rv = 0;
out:
    EVP_CIPHER_CTX_free(ctx);
    wg_keys_wipe(k, sizeof(k));
    return rv;
}

int wg_pair_code_wrap_ephemeral_with_random(uint8_t out[WG_PAIR_WRAPPED_EPH_LEN],
                                            const char *code,
                                            const uint8_t eph_pub[WG_KEYS_KEY_LEN],
                                            uint32_t iterations,
                                            const uint8_t random[WG_PAIR_WRAP_RANDOM_LEN])
{
    if (!out || !eph_pub || !random)
        return WG_EINVAL;
    memcpy(out, random, WRAP_SALT_LEN + WRAP_IV_LEN); /* salt || iv */
    return code_ctr(out + WRAP_SALT_LEN + WRAP_IV_LEN, code, out, out + WRAP_SALT_LEN, eph_pub,
                    iterations);
}

int wg_pair_code_wrap_ephemeral(uint8_t out[WG_PAIR_WRAPPED_EPH_LEN], const char *code,
                                const uint8_t eph_pub[WG_KEYS_KEY_LEN], uint32_t iterations)
{
    uint8_t r[WG_PAIR_WRAP_RANDOM_LEN];
    int rv;
    if ((rv = wg_random_bytes(r, sizeof(r))) != 0)
        return rv;
    return wg_pair_code_wrap_ephemeral_with_random(out, code, eph_pub, iterations, r);
}

int wg_pair_code_unwrap_ephemeral(uint8_t eph_pub[WG_KEYS_KEY_LEN], const char *code,
                                  const uint8_t *wrapped, size_t len, uint32_t iterations)
{
    if (!eph_pub || (!wrapped && len))
        return WG_EINVAL;
    if (len < WG_PAIR_WRAPPED_EPH_LEN)
        return WG_EPROTO;
    return code_ctr(eph_pub, code, wrapped, wrapped + WRAP_SALT_LEN,
                    wrapped + WRAP_SALT_LEN + WRAP_IV_LEN, iterations);
}

/* The shared adv secret: HKDF(ephShared || identShared || advRandom, no salt, "adv_secret"). */
static int derive_adv(uint8_t adv[WG_PAIR_ADV_SECRET_LEN], const uint8_t *eph_shared,
                      const uint8_t *ident_shared, const uint8_t *adv_random)
{
    uint8_t ikm[3 * 32];
    int rv;
    memcpy(ikm, eph_shared, 32);
    memcpy(ikm + 32, ident_shared, 32);
    memcpy(ikm + 64, adv_random, 32);
    rv = wg_keys_hkdf_sha256(adv, WG_PAIR_ADV_SECRET_LEN, NULL, 0, ikm, sizeof(ikm),
                             (const uint8_t *)INFO_ADV, strlen(INFO_ADV));
    wg_keys_wipe(ikm, sizeof(ikm));
    return rv;
}

static int bundle_key(uint8_t key[WG_KEYS_GCM_KEY_LEN], const uint8_t *eph_shared,
                      const uint8_t *salt)
{
    return wg_keys_hkdf_sha256(key, WG_KEYS_GCM_KEY_LEN, salt, BUNDLE_SALT_LEN, eph_shared, 32,
                               (const uint8_t *)INFO_BUNDLE, strlen(INFO_BUNDLE));
}

int wg_pair_code_finish_with_random(uint8_t bundle[WG_PAIR_KEY_BUNDLE_LEN],
                                    uint8_t adv_secret[WG_PAIR_ADV_SECRET_LEN], const char *code,
                                    const wg_keys_pair_t *companion_eph,
                                    const wg_keys_pair_t *identity,
                                    const uint8_t primary_identity_pub[WG_KEYS_KEY_LEN],
                                    const uint8_t *wrapped_primary_eph, size_t wrapped_len,
                                    uint32_t iterations,
                                    const uint8_t random[WG_PAIR_FINISH_RANDOM_LEN])
{
    uint8_t primary_eph[32], eph_shared[32], ident_shared[32], key[32];
    uint8_t plain[BUNDLE_PLAIN_LEN];
    const uint8_t *salt = random, *nonce = random + BUNDLE_SALT_LEN,
                  *adv_random = random + BUNDLE_SALT_LEN + WG_KEYS_GCM_IV_LEN;
    int rv = WG_EINVAL;

    if (!bundle || !adv_secret || !companion_eph || !identity || !primary_identity_pub ||
        !random)
        goto out;
    if ((rv = wg_pair_code_unwrap_ephemeral(primary_eph, code, wrapped_primary_eph, wrapped_len,
                                            iterations)) != 0 ||
        (rv = wg_keys_dh(eph_shared, companion_eph->priv, primary_eph)) != 0 ||
        (rv = bundle_key(key, eph_shared, salt)) != 0)
        goto out;
    memcpy(plain, identity->pub, 32);
    memcpy(plain + 32, primary_identity_pub, 32);
    memcpy(plain + 64, adv_random, 32);
    memcpy(bundle, salt, BUNDLE_SALT_LEN);
    memcpy(bundle + BUNDLE_SALT_LEN, nonce, WG_KEYS_GCM_IV_LEN);
    if ((rv = wg_keys_gcm_encrypt(bundle + BUNDLE_SALT_LEN + WG_KEYS_GCM_IV_LEN, key, nonce, NULL,
                                  0, plain, sizeof(plain))) != 0 ||
        (rv = wg_keys_dh(ident_shared, identity->priv, primary_identity_pub)) != 0 ||
        (rv = derive_adv(adv_secret, eph_shared, ident_shared, adv_random)) != 0)
        goto out;
out:
    wg_keys_wipe(eph_shared, sizeof(eph_shared));
    wg_keys_wipe(ident_shared, sizeof(ident_shared));
    wg_keys_wipe(key, sizeof(key));
    wg_keys_wipe(plain, sizeof(plain));
    return rv;
}

int wg_pair_code_finish(uint8_t bundle[WG_PAIR_KEY_BUNDLE_LEN],
                        uint8_t adv_secret[WG_PAIR_ADV_SECRET_LEN], const char *code,
                        const wg_keys_pair_t *companion_eph, const wg_keys_pair_t *identity,
                        const uint8_t primary_identity_pub[WG_KEYS_KEY_LEN],
                        const uint8_t *wrapped_primary_eph, size_t wrapped_len,
                        uint32_t iterations)
{
    uint8_t r[WG_PAIR_FINISH_RANDOM_LEN];
    int rv;
    if ((rv = wg_random_bytes(r, sizeof(r))) != 0)
        return rv;
    rv = wg_pair_code_finish_with_random(bundle, adv_secret, code, companion_eph, identity,
                                         primary_identity_pub, wrapped_primary_eph, wrapped_len,
                                         iterations, r);
    wg_keys_wipe(r, sizeof(r));
    return rv;
}

int wg_pair_phone_code_finish(uint8_t adv_secret[WG_PAIR_ADV_SECRET_LEN],
                              const wg_keys_pair_t *primary_eph,
                              const wg_keys_pair_t *primary_identity,
                              const uint8_t companion_eph_pub[WG_KEYS_KEY_LEN],
                              const uint8_t companion_identity_pub[WG_KEYS_KEY_LEN],
                              const uint8_t *bundle, size_t bundle_len)
{
    uint8_t eph_shared[32], ident_shared[32], key[32];
    uint8_t plain[BUNDLE_PLAIN_LEN];
    int rv = WG_EINVAL;

    if (!adv_secret || !primary_eph || !primary_identity || !companion_eph_pub ||
        !companion_identity_pub || (!bundle && bundle_len))
        goto out;
    rv = WG_EPROTO;
    if (bundle_len != WG_PAIR_KEY_BUNDLE_LEN)
        goto out;
    if ((rv = wg_keys_dh(eph_shared, primary_eph->priv, companion_eph_pub)) != 0 ||
        (rv = bundle_key(key, eph_shared, bundle)) != 0 ||
        (rv = wg_keys_gcm_decrypt(plain, key, bundle + BUNDLE_SALT_LEN, NULL, 0,
                                  bundle + BUNDLE_SALT_LEN + WG_KEYS_GCM_IV_LEN,
                                  WG_PAIR_KEY_BUNDLE_LEN - BUNDLE_SALT_LEN -
                                      WG_KEYS_GCM_IV_LEN)) != 0)
        goto out;
    /* The bundle is authenticated, so a mismatch here is a confused or lying companion. */
    rv = WG_EPROTO;
    if (memcmp(plain, companion_identity_pub, 32) != 0 ||
        memcmp(plain + 32, primary_identity->pub, 32) != 0)
        goto out;
    if ((rv = wg_keys_dh(ident_shared, primary_identity->priv, companion_identity_pub)) != 0 ||
        (rv = derive_adv(adv_secret, eph_shared, ident_shared, plain + 64)) != 0)
        goto out;
out:
    wg_keys_wipe(eph_shared, sizeof(eph_shared));
    wg_keys_wipe(ident_shared, sizeof(ident_shared));
    wg_keys_wipe(key, sizeof(key));
    wg_keys_wipe(plain, sizeof(plain));
    return rv;
}
