/* signal.c - see signal.h. The libsignal-protocol-c glue: the OpenSSL crypto provider, the store
 * callbacks over wg_signal_storage_t, and the session / group cipher calls. Each call makes its
 * short-lived libsignal objects and frees them before returning; nothing libsignal allocates
 * outlives a call except the context and the store context of the wg_signal_t. */
#include "wa/signal.h"
#include "util/err.h"
#include "wa/jid.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <group_cipher.h>
#include <group_session_builder.h>
#include <key_helper.h>
#include <protocol.h>
#include <session_builder.h>
#include <session_cipher.h>
#include <session_pre_key.h>
#include <signal_protocol.h>

struct wg_signal {
    signal_context *ctx;
    signal_protocol_store_context *store;
    wg_signal_storage_t *storage;
    wg_signal_keys_t keys;
    EVP_MAC *hmac; /* fetched once: EVP_MAC_fetch is a provider lookup */
    int store_err; /* the last storage failure seen inside a libsignal callback */
};

/* ---- addresses ----------------------------------------------------------------------------- */

int wg_signal_addr_from_jid(const char *jid, wg_signal_addr_t *out)
{
    wg_jid_t j;
    unsigned domain;
    int n;
    if (!jid || !out || wg_jid_parse(jid, strlen(jid), &j) != 0 || j.user_len == 0)
        return WG_EINVAL;
    if (wg_jid_server_is(&j, "s.whatsapp.net") || wg_jid_server_is(&j, "c.us"))
        domain = 0; /* a raw agent on s.whatsapp.net does not change the address */
    else if (wg_jid_server_is(&j, "lid"))
        domain = 1;
    else if (wg_jid_server_is(&j, "hosted"))
        domain = 128;
    else if (wg_jid_server_is(&j, "hosted.lid"))
        domain = 129;
    else
        return WG_EINVAL;
    if (j.type != WG_JID_PAIR && j.type != WG_JID_AD)
        return WG_EINVAL;
    uint32_t device = j.type == WG_JID_AD ? j.device : 0;
    if (device == 99 && domain < 128) /* Baileys: 99 is the hosted device only */
        return WG_EINVAL;
    /* the user part must not contain the separators of our storage keys */
    for (size_t i = 0; i < j.user_len; i++)
        if (j.user[i] == '.' || j.user[i] == WG_SIGNAL_KEY_SEP)
            return WG_EINVAL;
    if (domain)
        n = snprintf(out->name, sizeof(out->name), "%.*s_%u", (int)j.user_len, j.user, domain);
    else
        n = snprintf(out->name, sizeof(out->name), "%.*s", (int)j.user_len, j.user);
    if (n < 0 || (size_t)n >= sizeof(out->name))
        return WG_EINVAL;
    out->device = device;
    return 0;
}

int wg_signal_addr_format(const wg_signal_addr_t *a, char *buf, size_t cap)
{
    int n = snprintf(buf, cap, "%s.%u", a->name, a->device);
    return n < 0 || (size_t)n >= cap ? WG_ETOOBIG : 0;
}

const char *wg_signal_type_name(wg_signal_type_t t)
{
    switch (t) {
    case WG_SIGNAL_MSG:
        return "msg";
    case WG_SIGNAL_PKMSG:
        return "pkmsg";
    case WG_SIGNAL_SKMSG:
        return "skmsg";
    }
    return NULL;
}

int wg_signal_type_parse(const char *name)
{
    if (!name)
        return -1;
    if (strcmp(name, "msg") == 0)
        return WG_SIGNAL_MSG;
    if (strcmp(name, "pkmsg") == 0)
        return WG_SIGNAL_PKMSG;
    if (strcmp(name, "skmsg") == 0)
        return WG_SIGNAL_SKMSG;
    return -1;
}

void wg_signal_storage_free(wg_signal_storage_t *s)
{
    if (s)
        s->ops->free(s);
}

/* libsignal's error codes to ours. A storage failure inside a callback wins (its WG_E* code
 * travels through libsignal as a plain negative and could collide with SG_ERR_NOMEM). */
static int map_err_s(wg_signal_t *s, int sg)
{
    if (s && s->store_err) {
        int e = s->store_err;
        s->store_err = 0;
        if (sg < 0)
            return e;
    }
    if (sg >= 0)
        return 0;
    switch (sg) {
    case SG_ERR_NOMEM:
        return WG_ENOMEM;
    case SG_ERR_INVAL:
        return WG_EINVAL;
    case SG_ERR_DUPLICATE_MESSAGE:
        return WG_EEXIST;
    case SG_ERR_NO_SESSION:
    case SG_ERR_INVALID_KEY_ID:
        return WG_ENOTFOUND;
    case SG_ERR_INVALID_MAC:
    case SG_ERR_INVALID_KEY:
    case SG_ERR_UNTRUSTED_IDENTITY:
    case SG_ERR_VRF_SIG_VERIF_FAILED:
        return WG_ECRYPTO;
    case SG_ERR_INVALID_MESSAGE:
    case SG_ERR_INVALID_VERSION:
    case SG_ERR_LEGACY_MESSAGE:
    case SG_ERR_INVALID_PROTO_BUF:
    case SG_ERR_STALE_KEY_EXCHANGE:
        return WG_EPROTO;
    default:
        break;
    }
    if (sg > -100) /* a WG_E* code of ours */
        return sg;
    return WG_ECRYPTO;
}
#define map_err(rv) map_err_s(s, (rv))

/* Notes a storage failure for map_err_s and passes it on to libsignal. */
static int serr(wg_signal_t *s, int rv)
{
    if (rv < 0 && rv != WG_ENOTFOUND)
        s->store_err = rv;
    return rv;
}
#define SOPS(s, op, ...) serr((s), (s)->storage->ops->op((s)->storage, __VA_ARGS__))

/* ---- crypto provider (OpenSSL) ------------------------------------------------------------- */

static int cp_random(uint8_t *data, size_t len, void *ud)
{
    (void)ud;
    return RAND_bytes(data, (int)len) == 1 ? 0 : SG_ERR_UNKNOWN;
}

static int cp_hmac_init(void **hctx, const uint8_t *key, size_t key_len, void *ud)
{
    wg_signal_t *s = ud;
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                           OSSL_PARAM_construct_end()};
    static const uint8_t zero = 0;
    EVP_MAC_CTX *c = EVP_MAC_CTX_new(s->hmac);
    if (!c)
        return SG_ERR_NOMEM;
    /* an empty key is a valid HMAC key (RFC 2104); OpenSSL wants a non-NULL pointer */
    if (EVP_MAC_init(c, key_len ? key : &zero, key_len, params) != 1) {
        EVP_MAC_CTX_free(c);
        return SG_ERR_UNKNOWN;
    }
    *hctx = c;
    return 0;
}

static int cp_hmac_update(void *hctx, const uint8_t *data, size_t len, void *ud)
{
    (void)ud;
    return EVP_MAC_update(hctx, data, len) == 1 ? 0 : SG_ERR_UNKNOWN;
}

static int cp_hmac_final(void *hctx, signal_buffer **output, void *ud)
{
    uint8_t md[EVP_MAX_MD_SIZE];
    size_t n = 0;
    (void)ud;
    if (EVP_MAC_final(hctx, md, &n, sizeof(md)) != 1)
        return SG_ERR_UNKNOWN;
    if (!(*output = signal_buffer_create(md, n)))
        return SG_ERR_NOMEM;
    return 0;
}

static void cp_hmac_cleanup(void *hctx, void *ud)
{
    (void)ud;
    EVP_MAC_CTX_free(hctx);
}

static int cp_sha512_init(void **dctx, void *ud)
{
    (void)ud;
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    if (!c)
        return SG_ERR_NOMEM;
    if (EVP_DigestInit_ex(c, EVP_sha512(), NULL) != 1) {
        EVP_MD_CTX_free(c);
        return SG_ERR_UNKNOWN;
    }
    *dctx = c;
    return 0;
}

static int cp_sha512_update(void *dctx, const uint8_t *data, size_t len, void *ud)
{
    (void)ud;
    return EVP_DigestUpdate(dctx, data, len) == 1 ? 0 : SG_ERR_UNKNOWN;
}

static int cp_sha512_final(void *dctx, signal_buffer **output, void *ud)
{
    uint8_t md[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    (void)ud;
    /* final then re-init: libsignal reuses the context for the next round (fingerprints) */
    if (EVP_DigestFinal_ex(dctx, md, &n) != 1 || EVP_DigestInit_ex(dctx, EVP_sha512(), NULL) != 1)
        return SG_ERR_UNKNOWN;
    if (!(*output = signal_buffer_create(md, n)))
        return SG_ERR_NOMEM;
    return 0;
}

static void cp_sha512_cleanup(void *dctx, void *ud)
{
    (void)ud;
    EVP_MD_CTX_free(dctx);
}

static const EVP_CIPHER *pick_cipher(int cipher, size_t key_len)
{
    int cbc = cipher == SG_CIPHER_AES_CBC_PKCS5;
    if (cipher != SG_CIPHER_AES_CBC_PKCS5 && cipher != SG_CIPHER_AES_CTR_NOPADDING)
        return NULL;
    switch (key_len) {
    case 16:
        return cbc ? EVP_aes_128_cbc() : EVP_aes_128_ctr();
    case 24:
        return cbc ? EVP_aes_192_cbc() : EVP_aes_192_ctr();
    case 32:
        return cbc ? EVP_aes_256_cbc() : EVP_aes_256_ctr();
    default:
        return NULL;
    }
}

static int cp_cipher(signal_buffer **output, int enc, int cipher, const uint8_t *key,
                     size_t key_len, const uint8_t *iv, size_t iv_len, const uint8_t *in,
                     size_t len)
{
    const EVP_CIPHER *evp = pick_cipher(cipher, key_len);
    EVP_CIPHER_CTX *c = NULL;
    uint8_t *buf = NULL;
    int n1 = 0, n2 = 0, rv = SG_ERR_UNKNOWN;
    if (!evp || iv_len != 16 || len > (size_t)INT32_MAX - 32)
        return SG_ERR_INVAL;
    if (!(c = EVP_CIPHER_CTX_new()) || !(buf = malloc(len + 32))) {
        rv = SG_ERR_NOMEM;
        goto out;
    }
    if (EVP_CipherInit_ex(c, evp, NULL, key, iv, enc) != 1 ||
        EVP_CipherUpdate(c, buf, &n1, in, (int)len) != 1 ||
        EVP_CipherFinal_ex(c, buf + n1, &n2) != 1)
        goto out; /* bad padding on decrypt lands here */
    rv = (*output = signal_buffer_create(buf, (size_t)n1 + (size_t)n2)) ? 0 : SG_ERR_NOMEM;
out:
    if (buf) {
        OPENSSL_cleanse(buf, len + 32);
        free(buf);
    }
    EVP_CIPHER_CTX_free(c);
    return rv;
}

static int cp_encrypt(signal_buffer **output, int cipher, const uint8_t *key, size_t key_len,
                      const uint8_t *iv, size_t iv_len, const uint8_t *pt, size_t len, void *ud)
{
    (void)ud;
    return cp_cipher(output, 1, cipher, key, key_len, iv, iv_len, pt, len);
}

static int cp_decrypt(signal_buffer **output, int cipher, const uint8_t *key, size_t key_len,
                      const uint8_t *iv, size_t iv_len, const uint8_t *ct, size_t len, void *ud)
{
    (void)ud;
    return cp_cipher(output, 0, cipher, key, key_len, iv, iv_len, ct, len);
}

/* ---- store callbacks ----------------------------------------------------------------------- */

static int addr_key(const signal_protocol_address *a, char *buf, size_t cap)
{
    int n = snprintf(buf, cap, "%.*s.%d", (int)a->name_len, a->name, (int)a->device_id);
    return n < 0 || (size_t)n >= cap ? SG_ERR_INVAL : 0;
}

static int skn_key(const signal_protocol_sender_key_name *k, char *buf, size_t cap)
{
    int n =
        snprintf(buf, cap, "%.*s%c%.*s.%d", (int)k->group_id_len, k->group_id, WG_SIGNAL_KEY_SEP,
                 (int)k->sender.name_len, k->sender.name, (int)k->sender.device_id);
    return n < 0 || (size_t)n >= cap ? SG_ERR_INVAL : 0;
}

#define KEY_MAX 512

/* get into a signal_buffer: 1 found, 0 not found, negative on error. */
static int sget(wg_signal_t *s, int kind, const char *key, signal_buffer **out)
{
    uint8_t *v = NULL;
    size_t n = 0;
    int rv = SOPS(s, get, kind, key, &v, &n);
    if (rv == WG_ENOTFOUND)
        return 0;
    if (rv)
        return rv;
    *out = signal_buffer_create(v, n);
    OPENSSL_cleanse(v, n);
    free(v);
    return *out ? 1 : SG_ERR_NOMEM;
}

static int st_load_session(signal_buffer **record, signal_buffer **user_record,
                           const signal_protocol_address *a, void *ud)
{
    char key[KEY_MAX];
    (void)user_record;
    if (addr_key(a, key, sizeof(key)))
        return SG_ERR_INVAL;
    return sget(ud, WG_SIGNAL_K_SESSION, key, record);
}

typedef struct {
    signal_int_list *list;
    size_t plen;
    int n;
} subdev_t;

static int subdev_cb(const char *key, void *arg)
{
    subdev_t *d = arg;
    char *end;
    long dev = strtol(key + d->plen, &end, 10);
    if (*end || end == key + d->plen)
        return 0; /* not a number: not a key this module wrote */
    if (signal_int_list_push_back(d->list, (int)dev) < 0)
        return SG_ERR_NOMEM;
    d->n++;
    return 0;
}

static int st_sub_device_sessions(signal_int_list **sessions, const char *name, size_t name_len,
                                  void *ud)
{
    wg_signal_t *s = ud;
    char prefix[KEY_MAX];
    int n = snprintf(prefix, sizeof(prefix), "%.*s.", (int)name_len, name);
    if (n < 0 || (size_t)n >= sizeof(prefix))
        return SG_ERR_INVAL;
    subdev_t d = {.list = signal_int_list_alloc(), .plen = (size_t)n};
    if (!d.list)
        return SG_ERR_NOMEM;
    int rv = SOPS(s, keys, WG_SIGNAL_K_SESSION, prefix, subdev_cb, &d);
    if (rv) {
        signal_int_list_free(d.list);
        return rv;
    }
    *sessions = d.list;
    return d.n;
}

static int st_store_session(const signal_protocol_address *a, uint8_t *record, size_t len,
                            uint8_t *user_record, size_t user_len, void *ud)
{
    wg_signal_t *s = ud;
    char key[KEY_MAX];
    (void)user_record;
    (void)user_len;
    if (addr_key(a, key, sizeof(key)))
        return SG_ERR_INVAL;
    return SOPS(s, put, WG_SIGNAL_K_SESSION, key, record, len);
}

static int contains(wg_signal_t *s, int kind, const char *key)
{
    uint8_t *v = NULL;
    size_t n = 0;
    int rv = SOPS(s, get, kind, key, &v, &n);
    if (v) {
        OPENSSL_cleanse(v, n);
        free(v);
    }
    return rv == 0 ? 1 : rv == WG_ENOTFOUND ? 0 : rv;
}

static int st_contains_session(const signal_protocol_address *a, void *ud)
{
    char key[KEY_MAX];
    if (addr_key(a, key, sizeof(key)))
        return SG_ERR_INVAL;
    return contains(ud, WG_SIGNAL_K_SESSION, key);
}

static int st_delete_session(const signal_protocol_address *a, void *ud)
{
    wg_signal_t *s = ud;
    char key[KEY_MAX];
    if (addr_key(a, key, sizeof(key)))
        return SG_ERR_INVAL;
    return SOPS(s, remove, WG_SIGNAL_K_SESSION, key);
}

/* Collects keys (then removes them: no modification while listing). */
typedef struct {
    char **keys;
    size_t n, cap;
} keylist_t;

static int keylist_cb(const char *key, void *arg)
{
    keylist_t *l = arg;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        char **k = realloc(l->keys, cap * sizeof(*k));
        if (!k)
            return WG_ENOMEM;
        l->keys = k;
        l->cap = cap;
    }
    if (!(l->keys[l->n] = strdup(key)))
        return WG_ENOMEM;
    l->n++;
    return 0;
}

static int remove_prefix(wg_signal_t *s, int kind, const char *prefix, int *count)
{
    keylist_t l = {0};
    int rv = SOPS(s, keys, kind, prefix, keylist_cb, &l);
    for (size_t i = 0; i < l.n; i++) {
        if (rv == 0)
            rv = SOPS(s, remove, kind, l.keys[i]);
        free(l.keys[i]);
    }
    free(l.keys);
    if (count)
        *count = (int)l.n;
    return rv;
}

static int st_delete_all_sessions(const char *name, size_t name_len, void *ud)
{
    char prefix[KEY_MAX];
    int n = snprintf(prefix, sizeof(prefix), "%.*s.", (int)name_len, name), count = 0, rv;
    if (n < 0 || (size_t)n >= sizeof(prefix))
        return SG_ERR_INVAL;
    rv = remove_prefix(ud, WG_SIGNAL_K_SESSION, prefix, &count);
    return rv ? rv : count;
}

/* One-time prekeys: our priv || pub into libsignal's record. */
static int st_load_pre_key(signal_buffer **record, uint32_t id, void *ud)
{
    wg_signal_t *s = ud;
    char key[16];
    uint8_t *v = NULL, djb[WG_KEYS_DJB_LEN];
    size_t n = 0;
    ec_public_key *pub = NULL;
    ec_private_key *priv = NULL;
    ec_key_pair *pair = NULL;
    session_pre_key *pk = NULL;
    int rv;
    snprintf(key, sizeof(key), "%u", id);
    if ((rv = SOPS(s, get, WG_SIGNAL_K_PREKEY, key, &v, &n)) != 0) {
        rv = rv == WG_ENOTFOUND ? SG_ERR_INVALID_KEY_ID : rv;
        goto out;
    }
    if (n != WG_SIGNAL_PREKEY_LEN) {
        rv = WG_ESTORE;
        goto out;
    }
    wg_keys_djb_encode(djb, v + 32);
    if ((rv = curve_decode_point(&pub, djb, sizeof(djb), s->ctx)) < 0 ||
        (rv = curve_decode_private_point(&priv, v, 32, s->ctx)) < 0 ||
        (rv = ec_key_pair_create(&pair, pub, priv)) < 0 ||
        (rv = session_pre_key_create(&pk, id, pair)) < 0 ||
        (rv = session_pre_key_serialize(record, pk)) < 0)
        goto out;
    rv = 0;
out:
    if (v) {
        OPENSSL_cleanse(v, n);
        free(v);
    }
    SIGNAL_UNREF(pk);
    SIGNAL_UNREF(pair);
    SIGNAL_UNREF(pub);
    SIGNAL_UNREF(priv);
    return rv;
}

static int st_store_pre_key(uint32_t id, uint8_t *record, size_t len, void *ud)
{
    wg_signal_t *s = ud;
    session_pre_key *pk = NULL;
    signal_buffer *b = NULL;
    uint8_t v[WG_SIGNAL_PREKEY_LEN];
    char key[16];
    int rv;
    if ((rv = session_pre_key_deserialize(&pk, record, len, s->ctx)) < 0)
        return rv;
    ec_key_pair *pair = session_pre_key_get_key_pair(pk);
    if ((rv = ec_private_key_serialize(&b, ec_key_pair_get_private(pair))) < 0)
        goto out;
    memcpy(v, signal_buffer_data(b), 32);
    signal_buffer_bzero_free(b);
    b = NULL;
    if ((rv = ec_public_key_serialize(&b, ec_key_pair_get_public(pair))) < 0)
        goto out;
    memcpy(v + 32, signal_buffer_data(b) + 1, 32);
    snprintf(key, sizeof(key), "%u", id);
    rv = SOPS(s, put, WG_SIGNAL_K_PREKEY, key, v, sizeof(v));
out:
    OPENSSL_cleanse(v, sizeof(v));
    signal_buffer_bzero_free(b);
    SIGNAL_UNREF(pk);
    return rv;
}

static int st_contains_pre_key(uint32_t id, void *ud)
{
    char key[16];
    snprintf(key, sizeof(key), "%u", id);
    return contains(ud, WG_SIGNAL_K_PREKEY, key);
}

static int st_remove_pre_key(uint32_t id, void *ud)
{
    wg_signal_t *s = ud;
    char key[16];
    snprintf(key, sizeof(key), "%u", id);
    return SOPS(s, remove, WG_SIGNAL_K_PREKEY, key);
}

/* A key pair object from raw priv/pub; *pair to be unref'd. */
static int make_pair(wg_signal_t *s, const uint8_t priv32[32], const uint8_t pub32[32],
                     ec_key_pair **pair)
{
    uint8_t djb[WG_KEYS_DJB_LEN];
    ec_public_key *pub = NULL;
    ec_private_key *priv = NULL;
    int rv;
    wg_keys_djb_encode(djb, pub32);
    if ((rv = curve_decode_point(&pub, djb, sizeof(djb), s->ctx)) >= 0 &&
        (rv = curve_decode_private_point(&priv, priv32, 32, s->ctx)) >= 0)
        rv = ec_key_pair_create(pair, pub, priv);
    SIGNAL_UNREF(pub);
    SIGNAL_UNREF(priv);
    return rv < 0 ? rv : 0;
}

static int st_load_signed_pre_key(signal_buffer **record, uint32_t id, void *ud)
{
    wg_signal_t *s = ud;
    uint8_t *v = NULL;
    size_t n = 0;
    const uint8_t *priv, *pub, *sig;
    ec_key_pair *pair = NULL;
    session_signed_pre_key *spk = NULL;
    int rv;
    if (id == s->keys.signed_prekey_id) {
        priv = s->keys.signed_prekey.priv;
        pub = s->keys.signed_prekey.pub;
        sig = s->keys.signed_prekey_sig;
    } else {
        char key[16];
        snprintf(key, sizeof(key), "%u", id);
        if ((rv = SOPS(s, get, WG_SIGNAL_K_SIGNED_PREKEY, key, &v, &n))) {
            rv = rv == WG_ENOTFOUND ? SG_ERR_INVALID_KEY_ID : rv;
            goto out;
        }
        if (n != WG_SIGNAL_SIGNED_PREKEY_LEN) {
            rv = WG_ESTORE;
            goto out;
        }
        priv = v;
        pub = v + 32;
        sig = v + 64;
    }
    if ((rv = make_pair(s, priv, pub, &pair)) < 0 ||
        (rv = session_signed_pre_key_create(&spk, id, 0, pair, sig, WG_KEYS_SIG_LEN)) < 0 ||
        (rv = session_signed_pre_key_serialize(record, spk)) < 0)
        goto out;
    rv = 0;
out:
    if (v) {
        OPENSSL_cleanse(v, n);
        free(v);
    }
    SIGNAL_UNREF(spk);
    SIGNAL_UNREF(pair);
    return rv;
}

static int st_store_signed_pre_key(uint32_t id, uint8_t *record, size_t len, void *ud)
{
    wg_signal_t *s = ud;
    session_signed_pre_key *spk = NULL;
    signal_buffer *b = NULL;
    uint8_t v[WG_SIGNAL_SIGNED_PREKEY_LEN];
    char key[16];
    int rv;
    if ((rv = session_signed_pre_key_deserialize(&spk, record, len, s->ctx)) < 0)
        return rv;
    ec_key_pair *pair = session_signed_pre_key_get_key_pair(spk);
    if (session_signed_pre_key_get_signature_len(spk) != WG_KEYS_SIG_LEN) {
        rv = SG_ERR_INVAL;
        goto out;
    }
    if ((rv = ec_private_key_serialize(&b, ec_key_pair_get_private(pair))) < 0)
        goto out;
    memcpy(v, signal_buffer_data(b), 32);
    signal_buffer_bzero_free(b);
    b = NULL;
    if ((rv = ec_public_key_serialize(&b, ec_key_pair_get_public(pair))) < 0)
        goto out;
    memcpy(v + 32, signal_buffer_data(b) + 1, 32);
    memcpy(v + 64, session_signed_pre_key_get_signature(spk), WG_KEYS_SIG_LEN);
    snprintf(key, sizeof(key), "%u", id);
    rv = SOPS(s, put, WG_SIGNAL_K_SIGNED_PREKEY, key, v, sizeof(v));
out:
    OPENSSL_cleanse(v, sizeof(v));
    signal_buffer_bzero_free(b);
    SIGNAL_UNREF(spk);
    return rv;
}

static int st_contains_signed_pre_key(uint32_t id, void *ud)
{
    wg_signal_t *s = ud;
    char key[16];
    if (id == s->keys.signed_prekey_id)
        return 1;
    snprintf(key, sizeof(key), "%u", id);
    return contains(s, WG_SIGNAL_K_SIGNED_PREKEY, key);
}

static int st_remove_signed_pre_key(uint32_t id, void *ud)
{
    wg_signal_t *s = ud;
    char key[16];
    snprintf(key, sizeof(key), "%u", id);
    return SOPS(s, remove, WG_SIGNAL_K_SIGNED_PREKEY, key);
}

static int st_identity_pair(signal_buffer **public_data, signal_buffer **private_data, void *ud)
{
    wg_signal_t *s = ud;
    uint8_t djb[WG_KEYS_DJB_LEN];
    wg_keys_djb_encode(djb, s->keys.identity.pub);
    *public_data = signal_buffer_create(djb, sizeof(djb));
    *private_data = signal_buffer_create(s->keys.identity.priv, WG_KEYS_KEY_LEN);
    if (!*public_data || !*private_data) {
        signal_buffer_free(*public_data);
        signal_buffer_bzero_free(*private_data);
        *public_data = *private_data = NULL;
        return SG_ERR_NOMEM;
    }
    return 0;
}

static int st_registration_id(void *ud, uint32_t *id)
{
    wg_signal_t *s = ud;
    *id = s->keys.registration_id;
    return 0;
}

static int st_save_identity(const signal_protocol_address *a, uint8_t *key_data, size_t len,
                            void *ud)
{
    wg_signal_t *s = ud;
    char key[KEY_MAX];
    if (addr_key(a, key, sizeof(key)))
        return SG_ERR_INVAL;
    if (!key_data) /* libsignal's "forget this identity" */
        return SOPS(s, remove, WG_SIGNAL_K_IDENTITY, key);
    return SOPS(s, put, WG_SIGNAL_K_IDENTITY, key, key_data, len);
}

/* §9.4.4: trust on first use and accept changes (the new identity is then saved). */
static int st_is_trusted(const signal_protocol_address *a, uint8_t *key_data, size_t len, void *ud)
{
    (void)a;
    (void)key_data;
    (void)len;
    (void)ud;
    return 1;
}

static int st_store_sender_key(const signal_protocol_sender_key_name *k, uint8_t *record,
                               size_t len, uint8_t *user_record, size_t user_len, void *ud)
{
    wg_signal_t *s = ud;
    char key[KEY_MAX];
    (void)user_record;
    (void)user_len;
    if (skn_key(k, key, sizeof(key)))
        return SG_ERR_INVAL;
    return SOPS(s, put, WG_SIGNAL_K_SENDER_KEY, key, record, len);
}

static int st_load_sender_key(signal_buffer **record, signal_buffer **user_record,
                              const signal_protocol_sender_key_name *k, void *ud)
{
    char key[KEY_MAX];
    (void)user_record;
    if (skn_key(k, key, sizeof(key)))
        return SG_ERR_INVAL;
    return sget(ud, WG_SIGNAL_K_SENDER_KEY, key, record);
}

/* ---- lifecycle ----------------------------------------------------------------------------- */

int wg_signal_new(const wg_signal_keys_t *keys, wg_signal_storage_t *storage, wg_signal_t **out)
{
    wg_signal_t *s = NULL;
    int rv = WG_ENOMEM;
    *out = NULL;
    if (!keys || !storage) {
        wg_signal_storage_free(storage);
        return WG_EINVAL;
    }
    if (!(s = calloc(1, sizeof(*s)))) {
        wg_signal_storage_free(storage);
        return WG_ENOMEM;
    }
    s->storage = storage;
    s->keys = *keys;
    if (!(s->hmac = EVP_MAC_fetch(NULL, "HMAC", NULL))) {
        rv = WG_EIO;
        goto out;
    }
    if (signal_context_create(&s->ctx, s) < 0)
        goto out;
    signal_crypto_provider cp = {
        .random_func = cp_random,
        .hmac_sha256_init_func = cp_hmac_init,
        .hmac_sha256_update_func = cp_hmac_update,
        .hmac_sha256_final_func = cp_hmac_final,
        .hmac_sha256_cleanup_func = cp_hmac_cleanup,
        .sha512_digest_init_func = cp_sha512_init,
        .sha512_digest_update_func = cp_sha512_update,
        .sha512_digest_final_func = cp_sha512_final,
        .sha512_digest_cleanup_func = cp_sha512_cleanup,
        .encrypt_func = cp_encrypt,
        .decrypt_func = cp_decrypt,
        .user_data = s,
    };
    if (signal_context_set_crypto_provider(s->ctx, &cp) < 0 ||
        signal_protocol_store_context_create(&s->store, s->ctx) < 0)
        goto out;
    signal_protocol_session_store ss = {
        .load_session_func = st_load_session,
        .get_sub_device_sessions_func = st_sub_device_sessions,
        .store_session_func = st_store_session,
        .contains_session_func = st_contains_session,
        .delete_session_func = st_delete_session,
        .delete_all_sessions_func = st_delete_all_sessions,
        .user_data = s,
    };
    signal_protocol_pre_key_store pks = {
        .load_pre_key = st_load_pre_key,
        .store_pre_key = st_store_pre_key,
        .contains_pre_key = st_contains_pre_key,
        .remove_pre_key = st_remove_pre_key,
        .user_data = s,
    };
    signal_protocol_signed_pre_key_store spks = {
        .load_signed_pre_key = st_load_signed_pre_key,
        .store_signed_pre_key = st_store_signed_pre_key,
        .contains_signed_pre_key = st_contains_signed_pre_key,
        .remove_signed_pre_key = st_remove_signed_pre_key,
        .user_data = s,
    };
    signal_protocol_identity_key_store iks = {
        .get_identity_key_pair = st_identity_pair,
        .get_local_registration_id = st_registration_id,
        .save_identity = st_save_identity,
        .is_trusted_identity = st_is_trusted,
        .user_data = s,
    };
    signal_protocol_sender_key_store sks = {
        .store_sender_key = st_store_sender_key,
        .load_sender_key = st_load_sender_key,
        .user_data = s,
    };
    if (signal_protocol_store_context_set_session_store(s->store, &ss) < 0 ||
        signal_protocol_store_context_set_pre_key_store(s->store, &pks) < 0 ||
        signal_protocol_store_context_set_signed_pre_key_store(s->store, &spks) < 0 ||
        signal_protocol_store_context_set_identity_key_store(s->store, &iks) < 0 ||
        signal_protocol_store_context_set_sender_key_store(s->store, &sks) < 0)
        goto out;
    *out = s;
    return 0;
out:
    wg_signal_free(s);
    return rv;
}

void wg_signal_free(wg_signal_t *s)
{
    if (!s)
        return;
    if (s->store)
        signal_protocol_store_context_destroy(s->store);
    if (s->ctx)
        signal_context_destroy(s->ctx);
    EVP_MAC_free(s->hmac);
    wg_signal_storage_free(s->storage);
    wg_keys_wipe(&s->keys, sizeof(s->keys));
    free(s);
}

wg_signal_storage_t *wg_signal_storage(wg_signal_t *s)
{
    return s->storage;
}

/* ---- prekeys and bundles ------------------------------------------------------------------- */

int wg_signal_prekeys_generate(wg_signal_t *s, uint32_t first, size_t n, wg_keys_pair_t *pairs)
{
    uint8_t v[WG_SIGNAL_PREKEY_LEN];
    wg_keys_pair_t kp;
    char key[16];
    int rv = 0;
    uint32_t id = first ? first : 1;
    for (size_t i = 0; i < n && rv == 0; i++) {
        if (id > 0xFFFFFF) /* §1.6: 3-byte ids */
            id = 1;
        if ((rv = wg_keys_generate(&kp)) != 0)
            break;
        memcpy(v, kp.priv, 32);
        memcpy(v + 32, kp.pub, 32);
        snprintf(key, sizeof(key), "%u", id);
        rv = s->storage->ops->put(s->storage, WG_SIGNAL_K_PREKEY, key, v, sizeof(v));
        if (pairs)
            pairs[i] = kp;
        id++;
    }
    wg_keys_wipe(&kp, sizeof(kp));
    wg_keys_wipe(v, sizeof(v));
    return rv;
}

int wg_signal_own_bundle(wg_signal_t *s, uint32_t prekey_id, wg_signal_bundle_t *out)
{
    memset(out, 0, sizeof(*out));
    out->registration_id = s->keys.registration_id;
    memcpy(out->identity, s->keys.identity.pub, 32);
    out->signed_prekey_id = s->keys.signed_prekey_id;
    memcpy(out->signed_prekey, s->keys.signed_prekey.pub, 32);
    memcpy(out->signed_prekey_sig, s->keys.signed_prekey_sig, WG_KEYS_SIG_LEN);
    if (prekey_id) {
        char key[16];
        uint8_t *v = NULL;
        size_t n = 0;
        int rv;
        snprintf(key, sizeof(key), "%u", prekey_id);
        if ((rv = s->storage->ops->get(s->storage, WG_SIGNAL_K_PREKEY, key, &v, &n)) != 0)
            return rv;
        if (n == WG_SIGNAL_PREKEY_LEN)
            memcpy(out->prekey, v + 32, 32);
        OPENSSL_cleanse(v, n);
        free(v);
        if (n != WG_SIGNAL_PREKEY_LEN)
            return WG_ESTORE;
        out->has_prekey = 1;
        out->prekey_id = prekey_id;
    }
    return 0;
}

static signal_protocol_address sig_addr(const wg_signal_addr_t *a)
{
    signal_protocol_address r = {
        .name = a->name, .name_len = strlen(a->name), .device_id = (int32_t)a->device};
    return r;
}

int wg_signal_has_session(wg_signal_t *s, const wg_signal_addr_t *addr)
{
    signal_protocol_address a = sig_addr(addr);
    int rv = signal_protocol_session_contains_session(s->store, &a);
    return rv < 0 ? map_err(rv) : rv ? 1 : 0;
}

static int pub_key(wg_signal_t *s, const uint8_t raw[32], ec_public_key **out)
{
    uint8_t djb[WG_KEYS_DJB_LEN];
    wg_keys_djb_encode(djb, raw);
    return curve_decode_point(out, djb, sizeof(djb), s->ctx);
}

int wg_signal_process_bundle(wg_signal_t *s, const wg_signal_addr_t *addr,
                             const wg_signal_bundle_t *b)
{
    signal_protocol_address a = sig_addr(addr);
    ec_public_key *ik = NULL, *spk = NULL, *pk = NULL;
    session_pre_key_bundle *bundle = NULL;
    session_builder *builder = NULL;
    int rv;
    if ((rv = pub_key(s, b->identity, &ik)) < 0 || (rv = pub_key(s, b->signed_prekey, &spk)) < 0 ||
        (b->has_prekey && (rv = pub_key(s, b->prekey, &pk)) < 0))
        goto out;
    if ((rv = session_pre_key_bundle_create(
             &bundle, b->registration_id, (int)addr->device, b->has_prekey ? b->prekey_id : 0, pk,
             b->signed_prekey_id, spk, b->signed_prekey_sig, WG_KEYS_SIG_LEN, ik)) < 0 ||
        (rv = session_builder_create(&builder, s->store, &a, s->ctx)) < 0)
        goto out;
    rv = session_builder_process_pre_key_bundle(builder, bundle);
out:
    session_builder_free(builder);
    SIGNAL_UNREF(bundle);
    SIGNAL_UNREF(ik);
    SIGNAL_UNREF(spk);
    SIGNAL_UNREF(pk);
    return map_err(rv);
}

/* signal_buffer -> malloc'd copy. */
static int take_buf(const signal_buffer *b, uint8_t **out, size_t *len)
{
    size_t n = signal_buffer_len((signal_buffer *)b);
    if (!(*out = malloc(n ? n : 1)))
        return WG_ENOMEM;
    memcpy(*out, signal_buffer_const_data(b), n);
    *len = n;
    return 0;
}

int wg_signal_encrypt(wg_signal_t *s, const wg_signal_addr_t *to, const uint8_t *pt, size_t len,
                      wg_signal_type_t *type, uint8_t **ct, size_t *ct_len)
{
    signal_protocol_address a = sig_addr(to);
    session_cipher *c = NULL;
    ciphertext_message *m = NULL;
    int rv;
    *ct = NULL;
    *ct_len = 0;
    /* session_cipher_encrypt on a missing session makes an empty one and fails obscurely */
    if ((rv = wg_signal_has_session(s, to)) <= 0)
        return rv == 0 ? WG_ENOTFOUND : rv;
    if ((rv = session_cipher_create(&c, s->store, &a, s->ctx)) < 0 ||
        (rv = session_cipher_encrypt(c, pt, len, &m)) < 0) {
        rv = map_err(rv);
        goto out;
    }
    int t = ciphertext_message_get_type(m);
    if (t != CIPHERTEXT_PREKEY_TYPE && t != CIPHERTEXT_SIGNAL_TYPE) {
        rv = WG_EPROTO;
        goto out;
    }
    *type = t == CIPHERTEXT_PREKEY_TYPE ? WG_SIGNAL_PKMSG : WG_SIGNAL_MSG;
    rv = take_buf(ciphertext_message_get_serialized(m), ct, ct_len);
out:
    SIGNAL_UNREF(m);
    session_cipher_free(c);
    return rv;
}

int wg_signal_decrypt(wg_signal_t *s, const wg_signal_addr_t *from, wg_signal_type_t type,
                      const uint8_t *ct, size_t len, uint8_t **pt, size_t *pt_len)
{
    signal_protocol_address a = sig_addr(from);
    session_cipher *c = NULL;
    pre_key_signal_message *pkm = NULL;
    signal_message *sm = NULL;
    signal_buffer *out = NULL;
    int rv;
    *pt = NULL;
    *pt_len = 0;
    if (!ct || len == 0)
        return WG_EPROTO;
    if (type == WG_SIGNAL_PKMSG)
        rv = pre_key_signal_message_deserialize(&pkm, ct, len, s->ctx);
    else if (type == WG_SIGNAL_MSG)
        rv = signal_message_deserialize(&sm, ct, len, s->ctx);
    else
        return WG_EINVAL;
    if (rv < 0) {
        rv = map_err(rv) == WG_ENOMEM ? WG_ENOMEM : WG_EPROTO;
        goto out;
    }
    if (type == WG_SIGNAL_MSG && (rv = wg_signal_has_session(s, from)) <= 0) {
        rv = rv == 0 ? WG_ENOTFOUND : rv;
        goto out;
    }
    if ((rv = session_cipher_create(&c, s->store, &a, s->ctx)) < 0)
        goto mapped;
    if (pkm)
        rv = session_cipher_decrypt_pre_key_signal_message(c, pkm, NULL, &out);
    else
        rv = session_cipher_decrypt_signal_message(c, sm, NULL, &out);
    if (rv < 0)
        goto mapped;
    rv = take_buf(out, pt, pt_len);
    goto out;
mapped:
    rv = map_err(rv);
out:
    signal_buffer_bzero_free(out);
    session_cipher_free(c);
    SIGNAL_UNREF(pkm);
    SIGNAL_UNREF(sm);
    return rv;
}

int wg_signal_identity(wg_signal_t *s, const wg_signal_addr_t *addr, uint8_t key[WG_KEYS_KEY_LEN])
{
    char k[KEY_MAX];
    uint8_t *v = NULL;
    size_t n = 0;
    int rv;
    if ((rv = wg_signal_addr_format(addr, k, sizeof(k))) != 0)
        return rv;
    if ((rv = s->storage->ops->get(s->storage, WG_SIGNAL_K_IDENTITY, k, &v, &n)) != 0)
        return rv;
    rv = wg_keys_djb_decode(key, v, n) == 0 ? 0 : WG_ESTORE;
    free(v);
    return rv;
}

int wg_signal_migrate(wg_signal_t *s, const wg_signal_addr_t *from, const wg_signal_addr_t *to)
{
    static const int kinds[] = {WG_SIGNAL_K_SESSION, WG_SIGNAL_K_IDENTITY};
    char kf[KEY_MAX], kt[KEY_MAX];
    int rv, moved = 0;
    if ((rv = wg_signal_addr_format(from, kf, sizeof(kf))) != 0 ||
        (rv = wg_signal_addr_format(to, kt, sizeof(kt))) != 0)
        return rv;
    if (strcmp(kf, kt) == 0)
        return 0;
    if ((rv = contains(s, WG_SIGNAL_K_SESSION, kt)) != 0) {
        s->store_err = 0;
        return rv < 0 ? rv : 0;
    }
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]) && rv == 0; i++) {
        uint8_t *v = NULL;
        size_t n = 0;
        rv = s->storage->ops->get(s->storage, kinds[i], kf, &v, &n);
        if (rv == WG_ENOTFOUND) {
            rv = 0;
            continue;
        }
        if (rv == 0 && (rv = s->storage->ops->put(s->storage, kinds[i], kt, v, n)) == 0 &&
            (rv = s->storage->ops->remove(s->storage, kinds[i], kf)) == 0)
            moved += kinds[i] == WG_SIGNAL_K_SESSION;
        if (v) {
            OPENSSL_cleanse(v, n);
            free(v);
        }
    }
    s->store_err = 0;
    return rv ? rv : moved ? 1 : 0;
}

int wg_signal_delete_user(wg_signal_t *s, const char *name)
{
    char prefix[KEY_MAX];
    int n = snprintf(prefix, sizeof(prefix), "%s.", name), rv;
    if (n < 0 || (size_t)n >= sizeof(prefix) || strchr(name, '.'))
        return WG_EINVAL;
    if ((rv = remove_prefix(s, WG_SIGNAL_K_SESSION, prefix, NULL)) == 0)
        rv = remove_prefix(s, WG_SIGNAL_K_IDENTITY, prefix, NULL);
    s->store_err = 0; /* reported here, not by a later call */
    return rv;
}

/* ---- groups -------------------------------------------------------------------------------- */

static int sk_name(const char *group, const wg_signal_addr_t *a, signal_protocol_sender_key_name *k)
{
    if (!group || !*group || strchr(group, WG_SIGNAL_KEY_SEP))
        return WG_EINVAL;
    k->group_id = group;
    k->group_id_len = strlen(group);
    k->sender = sig_addr(a);
    return 0;
}

int wg_signal_group_skdm(wg_signal_t *s, const char *group, const wg_signal_addr_t *self,
                         uint8_t **skdm, size_t *len)
{
    signal_protocol_sender_key_name k;
    group_session_builder *b = NULL;
    sender_key_distribution_message *m = NULL;
    int rv;
    *skdm = NULL;
    *len = 0;
    if ((rv = sk_name(group, self, &k)) != 0)
        return rv;
    if ((rv = group_session_builder_create(&b, s->store, s->ctx)) < 0 ||
        (rv = group_session_builder_create_session(b, &m, &k)) < 0) {
        rv = map_err(rv);
        goto out;
    }
    rv = take_buf(ciphertext_message_get_serialized((ciphertext_message *)m), skdm, len);
out:
    SIGNAL_UNREF(m);
    group_session_builder_free(b);
    return rv;
}

/* 1 when a sender-key record exists for k. */
static int have_sender_key(wg_signal_t *s, const signal_protocol_sender_key_name *k)
{
    char key[KEY_MAX];
    if (skn_key(k, key, sizeof(key)))
        return WG_EINVAL;
    return contains(s, WG_SIGNAL_K_SENDER_KEY, key);
}

int wg_signal_group_encrypt(wg_signal_t *s, const char *group, const wg_signal_addr_t *self,
                            const uint8_t *pt, size_t len, uint8_t **ct, size_t *ct_len)
{
    signal_protocol_sender_key_name k;
    group_cipher *c = NULL;
    ciphertext_message *m = NULL;
    int rv;
    *ct = NULL;
    *ct_len = 0;
    if ((rv = sk_name(group, self, &k)) != 0)
        return rv;
    /* without a record libsignal would make an empty one and fail with INVALID_KEY_ID */
    if ((rv = have_sender_key(s, &k)) <= 0)
        return rv == 0 ? WG_ENOTFOUND : rv;
    if ((rv = group_cipher_create(&c, s->store, &k, s->ctx)) < 0 ||
        (rv = group_cipher_encrypt(c, pt, len, &m)) < 0) {
        rv = map_err(rv);
        goto out;
    }
    rv = take_buf(ciphertext_message_get_serialized(m), ct, ct_len);
out:
    SIGNAL_UNREF(m);
    group_cipher_free(c);
    return rv;
}

int wg_signal_group_process(wg_signal_t *s, const char *group, const wg_signal_addr_t *sender,
                            const uint8_t *skdm, size_t len)
{
    signal_protocol_sender_key_name k;
    group_session_builder *b = NULL;
    sender_key_distribution_message *m = NULL;
    int rv;
    if ((rv = sk_name(group, sender, &k)) != 0)
        return rv;
    if (!skdm || len == 0)
        return WG_EPROTO;
    if ((rv = sender_key_distribution_message_deserialize(&m, skdm, len, s->ctx)) < 0) {
        rv = rv == SG_ERR_NOMEM ? WG_ENOMEM : WG_EPROTO;
        goto out;
    }
    if ((rv = group_session_builder_create(&b, s->store, s->ctx)) < 0 ||
        (rv = group_session_builder_process_session(b, &k, m)) < 0)
        rv = map_err(rv);
    else
        rv = 0;
out:
    SIGNAL_UNREF(m);
    group_session_builder_free(b);
    return rv;
}

int wg_signal_group_decrypt(wg_signal_t *s, const char *group, const wg_signal_addr_t *sender,
                            const uint8_t *ct, size_t len, uint8_t **pt, size_t *pt_len)
{
    signal_protocol_sender_key_name k;
    group_cipher *c = NULL;
    sender_key_message *m = NULL;
    signal_buffer *out = NULL;
    int rv;
    *pt = NULL;
    *pt_len = 0;
    if ((rv = sk_name(group, sender, &k)) != 0)
        return rv;
    if (!ct || len == 0)
        return WG_EPROTO;
    if ((rv = sender_key_message_deserialize(&m, ct, len, s->ctx)) < 0) {
        rv = rv == SG_ERR_NOMEM ? WG_ENOMEM : WG_EPROTO;
        goto out;
    }
    if ((rv = have_sender_key(s, &k)) <= 0) {
        rv = rv == 0 ? WG_ENOTFOUND : rv;
        goto out;
    }
    if ((rv = group_cipher_create(&c, s->store, &k, s->ctx)) < 0 ||
        (rv = group_cipher_decrypt(c, m, NULL, &out)) < 0) {
        rv = map_err(rv);
        goto out;
    }
    rv = take_buf(out, pt, pt_len);
out:
    signal_buffer_bzero_free(out);
    SIGNAL_UNREF(m);
    group_cipher_free(c);
    return rv;
}
