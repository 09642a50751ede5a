/* creds.c - see creds.h. Byte form: "WGC" 0x01, then (tag(1) || len(2, BE) || value) for each
 * field; the decoder requires every mandatory tag once, exact sizes, NUL-free strings. */
#include "wa/creds.h"
#include "util/codec.h"
#include "util/err.h"

#include <stdlib.h>
#include <string.h>

enum {
    T_NOISE = 1,  /* priv(32) */
    T_IDENTITY,   /* priv(32) */
    T_SPK,        /* priv(32) */
    T_SPK_ID,     /* BE32 */
    T_SPK_SIG,    /* 64 */
    T_REG_ID,     /* BE32 */
    T_ADV,        /* 32 */
    T_PAIRED,     /* 1 byte */
    T_JID,        /* string */
    T_LID,
    T_PLATFORM,
    T_BIZ,
    T_PUSH,
    T_PRIMARY_ID, /* 32 */
    T_ACCOUNT,    /* bytes */
    T_MAX
};
#define MANDATORY ((1u << T_NOISE) | (1u << T_IDENTITY) | (1u << T_SPK) | (1u << T_SPK_ID) | \
                   (1u << T_SPK_SIG) | (1u << T_REG_ID) | (1u << T_ADV) | (1u << T_PAIRED))

int wg_creds_generate(wg_creds_t *c)
{
    uint8_t msg[WG_KEYS_DJB_LEN], r[2];
    int rv;
    memset(c, 0, sizeof(*c));
    if ((rv = wg_keys_generate(&c->noise)) != 0 || (rv = wg_keys_generate(&c->identity)) != 0 ||
        (rv = wg_keys_generate(&c->signed_prekey)) != 0)
        goto out;
    c->signed_prekey_id = 1; /* §8.3 */
    wg_keys_djb_encode(msg, c->signed_prekey.pub);
    if ((rv = wg_keys_sign(c->signed_prekey_sig, c->identity.priv, msg, sizeof(msg))) != 0)
        goto out;
    /* §8.4: libsignal's generate_registration_id range 1..16380. */
    if ((rv = wg_random_bytes(r, sizeof(r))) != 0)
        goto out;
    c->registration_id = (((uint32_t)r[0] << 8 | r[1]) % 16380u) + 1;
    rv = wg_random_bytes(c->adv_secret, sizeof(c->adv_secret));
out:
    if (rv)
        wg_creds_wipe(c);
    return rv;
}

int wg_creds_phone(const wg_creds_t *c, char *phone, size_t cap, uint32_t *device)
{
    const char *at = strchr(c->jid, '@'), *colon = strchr(c->jid, ':');
    size_t n;
    if (!c->paired || !at)
        return WG_EINVAL;
    n = (size_t)((colon && colon < at ? colon : at) - c->jid);
    if (n == 0 || n >= cap)
        return WG_EINVAL;
    for (size_t i = 0; i < n; i++)
        if (c->jid[i] < '0' || c->jid[i] > '9')
            return WG_EINVAL;
    memcpy(phone, c->jid, n);
    phone[n] = 0;
    *device = 0;
    if (colon && colon < at) {
        char *end;
        unsigned long d = strtoul(colon + 1, &end, 10);
        if (end != at || d > 255)
            return WG_EINVAL;
        *device = (uint32_t)d;
    }
    return 0;
}

static uint8_t *put(uint8_t *w, int tag, const void *v, size_t len)
{
    *w++ = (uint8_t)tag;
    *w++ = (uint8_t)(len >> 8);
    *w++ = (uint8_t)len;
    memcpy(w, v, len);
    return w + len;
}

static uint8_t *put32(uint8_t *w, int tag, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    return put(w, tag, b, 4);
}

int wg_creds_encode(const wg_creds_t *c, uint8_t **out, size_t *len)
{
    size_t cap = 4 + 15 * 3 + 3 * 32 + 4 + 64 + 4 + 32 + 1 + 5 * WG_CREDS_STR_MAX + 32 +
                 WG_CREDS_ACCOUNT_MAX;
    uint8_t *b = malloc(cap), *w = b;
    uint8_t paired = c->paired ? 1 : 0;
    if (!b)
        return WG_ENOMEM;
    memcpy(w, "WGC\x01", 4);
    w += 4;
    w = put(w, T_NOISE, c->noise.priv, 32);
    w = put(w, T_IDENTITY, c->identity.priv, 32);
    w = put(w, T_SPK, c->signed_prekey.priv, 32);
    w = put32(w, T_SPK_ID, c->signed_prekey_id);
    w = put(w, T_SPK_SIG, c->signed_prekey_sig, 64);
    w = put32(w, T_REG_ID, c->registration_id);
    w = put(w, T_ADV, c->adv_secret, 32);
    w = put(w, T_PAIRED, &paired, 1);
    if (paired) {
        w = put(w, T_JID, c->jid, strnlen(c->jid, WG_CREDS_STR_MAX - 1));
        w = put(w, T_LID, c->lid, strnlen(c->lid, WG_CREDS_STR_MAX - 1));
        w = put(w, T_PLATFORM, c->platform, strnlen(c->platform, WG_CREDS_STR_MAX - 1));
        w = put(w, T_BIZ, c->business_name, strnlen(c->business_name, WG_CREDS_STR_MAX - 1));
        w = put(w, T_PUSH, c->push_name, strnlen(c->push_name, WG_CREDS_STR_MAX - 1));
        w = put(w, T_PRIMARY_ID, c->primary_identity, 32);
        w = put(w, T_ACCOUNT, c->account,
                c->account_len < WG_CREDS_ACCOUNT_MAX ? c->account_len : WG_CREDS_ACCOUNT_MAX);
    }
    *out = b;
    *len = (size_t)(w - b);
    return 0;
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int get_str(char *dst, const uint8_t *v, size_t n)
{
    if (n >= WG_CREDS_STR_MAX || memchr(v, 0, n))
        return WG_EPROTO;
    memcpy(dst, v, n);
    dst[n] = 0;
    return 0;
}

int wg_creds_decode(wg_creds_t *c, const uint8_t *p, size_t len)
{
    static const uint16_t fixed[T_MAX] = {
        [T_NOISE] = 32, [T_IDENTITY] = 32, [T_SPK] = 32, [T_SPK_ID] = 4, [T_SPK_SIG] = 64,
        [T_REG_ID] = 4, [T_ADV] = 32,      [T_PAIRED] = 1, [T_PRIMARY_ID] = 32};
    uint32_t seen = 0;
    size_t i = 4;
    int rv = WG_EPROTO;
    memset(c, 0, sizeof(*c));
    if (len < 4 || memcmp(p, "WGC\x01", 4) != 0)
        return WG_EPROTO;
    while (i < len) {
        if (len - i < 3)
            goto out;
        int tag = p[i];
        size_t n = (size_t)p[i + 1] << 8 | p[i + 2];
        const uint8_t *v = p + i + 3;
        if (n > len - i - 3 || tag <= 0 || tag >= T_MAX || (seen & (1u << tag)) ||
            (fixed[tag] && n != fixed[tag]))
            goto out;
        seen |= 1u << tag;
        i += 3 + n;
        switch (tag) {
        case T_NOISE:
            if (wg_keys_from_private(&c->noise, v) != 0)
                goto out;
            break;
        case T_IDENTITY:
            if (wg_keys_from_private(&c->identity, v) != 0)
                goto out;
            break;
        case T_SPK:
            if (wg_keys_from_private(&c->signed_prekey, v) != 0)
                goto out;
            break;
        case T_SPK_ID: c->signed_prekey_id = be32(v); break;
        case T_SPK_SIG: memcpy(c->signed_prekey_sig, v, 64); break;
        case T_REG_ID: c->registration_id = be32(v); break;
        case T_ADV: memcpy(c->adv_secret, v, 32); break;
        case T_PAIRED:
            if (v[0] > 1)
                goto out;
            c->paired = v[0];
            break;
        case T_JID:
            if (get_str(c->jid, v, n))
                goto out;
            break;
        case T_LID:
            if (get_str(c->lid, v, n))
                goto out;
            break;
        case T_PLATFORM:
            if (get_str(c->platform, v, n))
                goto out;
            break;
        case T_BIZ:
            if (get_str(c->business_name, v, n))
                goto out;
            break;
        case T_PUSH:
            if (get_str(c->push_name, v, n))
                goto out;
            break;
        case T_PRIMARY_ID: memcpy(c->primary_identity, v, 32); break;
        case T_ACCOUNT:
            if (n > WG_CREDS_ACCOUNT_MAX)
                goto out;
            memcpy(c->account, v, n);
            c->account_len = n;
            break;
        }
    }
    if ((seen & MANDATORY) != MANDATORY || (c->paired && (!(seen & (1u << T_JID)) || !c->jid[0] ||
                                                          !(seen & (1u << T_ACCOUNT)))))
        goto out;
    rv = 0;
out:
    if (rv)
        wg_creds_wipe(c);
    return rv;
}

/* AAD = "wagate:" || label */
static uint8_t *aad_of(const char *label, size_t *n)
{
    size_t l = strlen(label);
    uint8_t *a = malloc(7 + l + 1);
    if (a) {
        memcpy(a, "wagate:", 7);
        memcpy(a + 7, label, l);
        *n = 7 + l;
    }
    return a;
}

int wg_creds_seal(const uint8_t key[WG_CREDS_MASTER_KEY_LEN], const char *label,
                  const uint8_t *p, size_t len, uint8_t **out, size_t *out_len)
{
    size_t alen = 0;
    uint8_t *aad = NULL, *b = NULL;
    int rv;
    if (!key || !label || (!p && len))
        return WG_EINVAL;
    if (!(aad = aad_of(label, &alen)) || !(b = malloc(WG_CREDS_SEAL_OVERHEAD + len))) {
        rv = WG_ENOMEM;
        goto out;
    }
    memcpy(b, WG_CREDS_SEAL_MAGIC, 4);
    if ((rv = wg_random_bytes(b + 4, WG_KEYS_GCM_IV_LEN)) != 0 ||
        (rv = wg_keys_gcm_encrypt(b + 16, key, b + 4, aad, alen, p, len)) != 0)
        goto out;
    *out = b;
    *out_len = WG_CREDS_SEAL_OVERHEAD + len;
    b = NULL;
out:
    free(aad);
    free(b);
    return rv;
}

int wg_creds_open(const uint8_t key[WG_CREDS_MASTER_KEY_LEN], const char *label,
                  const uint8_t *p, size_t len, uint8_t **out, size_t *out_len)
{
    size_t alen = 0, n;
    uint8_t *aad = NULL, *b = NULL;
    int rv;
    if (!key || !label || !p)
        return WG_EINVAL;
    if (len < WG_CREDS_SEAL_OVERHEAD || memcmp(p, WG_CREDS_SEAL_MAGIC, 4) != 0)
        return WG_EPROTO;
    n = len - WG_CREDS_SEAL_OVERHEAD;
    if (!(aad = aad_of(label, &alen)) || !(b = malloc(n ? n : 1))) {
        rv = WG_ENOMEM;
        goto out;
    }
    if ((rv = wg_keys_gcm_decrypt(b, key, p + 4, aad, alen, p + 16, len - 16)) != 0) {
        wg_keys_wipe(b, n);
        goto out;
    }
    *out = b;
    *out_len = n;
    b = NULL;
out:
    free(aad);
    free(b);
    return rv;
}

int wg_creds_seal_record(const uint8_t key[WG_CREDS_MASTER_KEY_LEN], const char *label,
                         const wg_creds_t *c, uint8_t **out, size_t *out_len)
{
    uint8_t *plain = NULL;
    size_t n = 0;
    int rv = wg_creds_encode(c, &plain, &n);
    if (rv)
        return rv;
    rv = wg_creds_seal(key, label, plain, n, out, out_len);
    wg_keys_wipe(plain, n);
    free(plain);
    return rv;
}

int wg_creds_open_record(const uint8_t key[WG_CREDS_MASTER_KEY_LEN], const char *label,
                         const uint8_t *p, size_t len, wg_creds_t *c)
{
    uint8_t *plain = NULL;
    size_t n = 0;
    int rv = wg_creds_open(key, label, p, len, &plain, &n);
    if (rv)
        return rv;
    rv = wg_creds_decode(c, plain, n);
    wg_keys_wipe(plain, n);
    free(plain);
    return rv;
}

void wg_creds_wipe(wg_creds_t *c)
{
    wg_keys_wipe(c, sizeof(*c));
}
