/* signal_db.c - the wg_signal_storage_t of an instance on our store (signal.h): every value is
 * sealed with the master key (wg_creds_seal: AES-256-GCM, AAD bound to a label naming the
 * instance, kind and key, so a blob cannot be replayed under another key or instance) before it
 * reaches the store, and opened on the way back. One-time prekeys live in wa_prekeys with the
 * label wa/conn.c uses at upload ("<instance>/prekey/<id>", value priv || pub); everything else
 * lives in wa_signal with the label "<instance>/signal/<kind>/<key>".
 *
 * The store and the master key are borrowed; the instance id is copied. Blocking: each call is
 * one SQLite statement on the caller's thread (the instance's worker owns its own store). */
#include "store/store.h"
#include "util/err.h"
#include "wa/creds.h"
#include "wa/signal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    wg_signal_storage_t base;
    wg_store_t *st;
    const uint8_t *mk;
    char *id;
} db_t;

#define LABEL_MAX 700

/* One-time prekey ids are decimal keys; anything else there is not ours. */
static int prekey_id(const char *key, uint32_t *id)
{
    char *end;
    unsigned long v = strtoul(key, &end, 10);
    if (!*key || *end || v == 0 || v > 0xFFFFFF)
        return WG_EINVAL;
    *id = (uint32_t)v;
    return 0;
}

static int make_label(const db_t *d, int kind, const char *key, char *buf, size_t cap)
{
    int n;
    if (kind == WG_SIGNAL_K_PREKEY)
        n = snprintf(buf, cap, "%s/prekey/%s", d->id, key);
    else
        n = snprintf(buf, cap, "%s/signal/%d/%s", d->id, kind, key);
    return n < 0 || (size_t)n >= cap ? WG_EINVAL : 0;
}

static int db_get(wg_signal_storage_t *base, int kind, const char *key, uint8_t **val, size_t *len)
{
    db_t *d = (db_t *)base;
    uint8_t *blob = NULL;
    size_t n = 0;
    uint32_t id;
    char label[LABEL_MAX];
    int rv;
    *val = NULL;
    *len = 0;
    if ((rv = make_label(d, kind, key, label, sizeof(label))) != 0)
        return rv;
    if (kind == WG_SIGNAL_K_PREKEY)
        rv = prekey_id(key, &id) ? WG_ENOTFOUND : wg_store_prekey_get(d->st, d->id, id, &blob, &n);
    else
        rv = wg_store_signal_get(d->st, d->id, kind, key, &blob, &n);
    if (rv)
        return rv;
    rv = wg_creds_open(d->mk, label, blob, n, val, len);
    free(blob);
    /* a blob that does not open is damaged storage, not a protocol error of the peer */
    return rv == 0 ? 0 : rv == WG_ENOMEM ? WG_ENOMEM : WG_ESTORE;
}

static int db_put(wg_signal_storage_t *base, int kind, const char *key, const uint8_t *val,
                  size_t len)
{
    db_t *d = (db_t *)base;
    uint8_t *blob = NULL;
    size_t n = 0;
    uint32_t id;
    char label[LABEL_MAX];
    int rv;
    if ((rv = make_label(d, kind, key, label, sizeof(label))) != 0)
        return rv;
    if (kind == WG_SIGNAL_K_PREKEY && (rv = prekey_id(key, &id)) != 0)
        return rv;
    if ((rv = wg_creds_seal(d->mk, label, val, len, &blob, &n)) != 0)
        return rv == WG_ENOMEM ? WG_ENOMEM : WG_ESTORE;
    if (kind == WG_SIGNAL_K_PREKEY) {
        wg_store_prekey_t pk = {.id = id, .blob = blob, .len = n};
        rv = wg_store_prekeys_put(d->st, d->id, &pk, 1);
    } else
        rv = wg_store_signal_put(d->st, d->id, kind, key, blob, n);
    free(blob);
    return rv == WG_ENOTFOUND ? WG_ESTORE : rv; /* instance gone */
}

static int db_remove(wg_signal_storage_t *base, int kind, const char *key)
{
    db_t *d = (db_t *)base;
    uint32_t id;
    if (kind == WG_SIGNAL_K_PREKEY)
        return prekey_id(key, &id) ? 0 : wg_store_prekey_delete(d->st, d->id, id);
    return wg_store_signal_delete(d->st, d->id, kind, key);
}

static int db_keys(wg_signal_storage_t *base, int kind, const char *prefix, wg_signal_key_cb cb,
                   void *arg)
{
    db_t *d = (db_t *)base;
    if (kind == WG_SIGNAL_K_PREKEY) /* never listed by signal.c */
        return WG_EINVAL;
    return wg_store_signal_keys(d->st, d->id, kind, prefix, cb, arg);
}

static void db_free(wg_signal_storage_t *base)
{
    db_t *d = (db_t *)base;
    free(d->id);
    free(d);
}

static const wg_signal_storage_ops_t db_ops = {
    .get = db_get, .put = db_put, .remove = db_remove, .keys = db_keys, .free = db_free};

int wg_signal_storage_db_new(struct wg_store *st, const char *instance_id,
                             const uint8_t master_key[32], wg_signal_storage_t **out)
{
    db_t *d;
    *out = NULL;
    if (!st || !instance_id || !*instance_id || !master_key)
        return WG_EINVAL;
    if (!(d = calloc(1, sizeof(*d))) || !(d->id = strdup(instance_id))) {
        free(d);
        return WG_ENOMEM;
    }
    d->base.ops = &db_ops;
    d->st = st;
    d->mk = master_key;
    *out = &d->base;
    return 0;
}
