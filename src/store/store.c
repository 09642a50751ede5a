/* store.c - backend selection and the thin dispatch layer over wg_store_ops_t, plus the record
 * destructors. Backends live in their own files (sqlite.c; postgres.c later). */
#include "store/store.h"
#include "util/codec.h"
#include "util/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int wg_store_open(const char *url, wg_store_t **out)
{
    *out = NULL;
    if (!url || !*url)
        return WG_EINVAL;
    if (!strncmp(url, "postgresql://", 13) || !strncmp(url, "postgres://", 11))
        return WG_EINVAL; /* no PostgreSQL backend yet */
    return wg_store_sqlite_open(url, out);
}

void wg_store_close(wg_store_t *st)
{
    if (st)
        st->ops->close(st);
}

int wg_store_schema_version(wg_store_t *st)
{
    return st->ops->schema_version(st);
}

int wg_store_meta_get(wg_store_t *st, const char *key, char **val)
{
    return st->ops->meta_get(st, key, val);
}

int wg_store_meta_insert(wg_store_t *st, const char *key, const char *val)
{
    return st->ops->meta_insert(st, key, val);
}

int wg_store_account_insert(wg_store_t *st, const wg_account_t *a, const char *key_hash)
{
    return st->ops->account_insert(st, a, key_hash);
}

int wg_store_account_get(wg_store_t *st, const char *id, wg_account_t *out)
{
    return st->ops->account_get(st, id, NULL, out);
}

int wg_store_account_by_key(wg_store_t *st, const char *key_hash, wg_account_t *out)
{
    return st->ops->account_get(st, NULL, key_hash, out);
}

int wg_store_account_list(wg_store_t *st, wg_account_t **out, size_t *n)
{
    return st->ops->account_list(st, out, n);
}

int wg_store_account_update(wg_store_t *st, const char *id, const char *name, const char *plan)
{
    return st->ops->account_update(st, id, name, plan, NULL);
}

int wg_store_account_set_key(wg_store_t *st, const char *id, const char *key_hash)
{
    return st->ops->account_update(st, id, NULL, NULL, key_hash);
}

int wg_store_instance_insert(wg_store_t *st, const wg_instance_t *in, const char *token_hash,
                             int64_t limit, const wg_store_event_t *ev, const char **conflict)
{
    return st->ops->instance_insert(st, in, token_hash, limit, ev, conflict);
}

int wg_store_instance_get(wg_store_t *st, const char *id, wg_instance_t *out)
{
    return st->ops->instance_get(st, id, NULL, out);
}

int wg_store_instance_by_token(wg_store_t *st, const char *token_hash, wg_instance_t *out)
{
    return st->ops->instance_get(st, NULL, token_hash, out);
}

int wg_store_instance_list(wg_store_t *st, const wg_instance_filter_t *f, wg_instance_t **out,
                           size_t *n, int64_t *total)
{
    return st->ops->instance_list(st, f, out, n, total);
}

int wg_store_instance_patch(wg_store_t *st, const char *id, wg_store_merge_cb merge, void *arg,
                            wg_instance_t *out)
{
    return st->ops->instance_patch(st, id, merge, arg, out);
}

int wg_store_instance_set_status(wg_store_t *st, const char *id, const char *status,
                                 const char *reason, wg_store_status_ev_cb make_ev, void *arg,
                                 char **prev)
{
    return st->ops->instance_set_status(st, id, status, reason, make_ev, arg, prev);
}

int wg_store_instance_delete(wg_store_t *st, const char *id, const wg_store_event_t *ev)
{
    return st->ops->instance_delete(st, id, ev);
}

int wg_store_instance_counts(wg_store_t *st, wg_store_count_cb cb, void *arg)
{
    return st->ops->instance_counts(st, cb, arg);
}

int wg_store_outbox_list(wg_store_t *st, const char *instance_id, wg_outbox_row_t **out,
                         size_t *n)
{
    return st->ops->outbox_list(st, instance_id, out, n);
}

int wg_store_creds_get(wg_store_t *st, const char *instance_id, uint8_t **blob, size_t *len)
{
    return st->ops->creds_get(st, instance_id, blob, len);
}

int wg_store_creds_put(wg_store_t *st, const char *instance_id, const uint8_t *blob, size_t len)
{
    return st->ops->creds_put(st, instance_id, blob, len);
}

int wg_store_creds_delete(wg_store_t *st, const char *instance_id)
{
    return st->ops->creds_delete(st, instance_id);
}

int wg_store_prekeys_put(wg_store_t *st, const char *instance_id, const wg_store_prekey_t *k,
                         size_t n)
{
    return st->ops->prekeys_put(st, instance_id, k, n);
}

int wg_store_prekeys_next_id(wg_store_t *st, const char *instance_id, uint32_t *next)
{
    return st->ops->prekeys_next_id(st, instance_id, next);
}

int wg_store_prekey_get(wg_store_t *st, const char *instance_id, uint32_t key_id, uint8_t **blob,
                        size_t *len)
{
    return st->ops->prekey_get(st, instance_id, key_id, blob, len);
}

int wg_store_prekey_delete(wg_store_t *st, const char *instance_id, uint32_t key_id)
{
    return st->ops->prekey_delete(st, instance_id, key_id);
}

int wg_store_signal_get(wg_store_t *st, const char *instance_id, int kind, const char *key,
                        uint8_t **blob, size_t *len)
{
    return st->ops->signal_get(st, instance_id, kind, key, blob, len);
}

int wg_store_signal_put(wg_store_t *st, const char *instance_id, int kind, const char *key,
                        const uint8_t *blob, size_t len)
{
    return st->ops->signal_put(st, instance_id, kind, key, blob, len);
}

int wg_store_signal_delete(wg_store_t *st, const char *instance_id, int kind, const char *key)
{
    return st->ops->signal_delete(st, instance_id, kind, key);
}

int wg_store_signal_keys(wg_store_t *st, const char *instance_id, int kind, const char *prefix,
                         wg_store_key_cb cb, void *arg)
{
    return st->ops->signal_keys(st, instance_id, kind, prefix, cb, arg);
}

int wg_store_event_append(wg_store_t *st, const char *instance_id, const wg_store_event_t *ev)
{
    return st->ops->event_append(st, instance_id, ev);
}

int wg_store_instance_set_identity(wg_store_t *st, const char *id, const char *jid,
                                   const char *phone, const char *push_name)
{
    return st->ops->instance_set_identity(st, id, jid, phone, push_name);
}

int wg_store_outbox_query(wg_store_t *st, const wg_outbox_query_t *q, wg_outbox_row_t **out,
                          size_t *n)
{
    return st->ops->outbox_query(st, q, out, n);
}

int wg_store_outbox_get(wg_store_t *st, const char *id, wg_outbox_row_t *out)
{
    return st->ops->outbox_get(st, id, out);
}

int wg_store_outbox_pending_instances(wg_store_t *st, wg_store_key_cb cb, void *arg)
{
    return st->ops->outbox_pending_instances(st, cb, arg);
}

int wg_store_outbox_mark(wg_store_t *st, const wg_outbox_mark_t *m, size_t n)
{
    return st->ops->outbox_mark(st, m, n);
}

int wg_store_outbox_replay(wg_store_t *st, const char *instance_id, const char *id)
{
    return st->ops->outbox_replay(st, instance_id, id);
}

int wg_store_outbox_counts(wg_store_t *st, wg_store_count_cb cb, void *arg)
{
    return st->ops->outbox_counts(st, cb, arg);
}

int wg_store_outbox_last_seq(wg_store_t *st, const char *instance_id, int64_t *seq)
{
    return st->ops->outbox_last_seq(st, instance_id, seq);
}

int wg_store_event_append_once(wg_store_t *st, const char *instance_id, const wg_store_event_t *ev,
                               const char *key, char *id_out, size_t cap, int *dup)
{
    return st->ops->event_append_once(st, instance_id, ev, key, id_out, cap, dup);
}

int wg_store_txn_begin(wg_store_t *st)
{
    return st->ops->txn_begin(st);
}

int wg_store_txn_end(wg_store_t *st, int rv)
{
    return st->ops->txn_end(st, rv);
}

void wg_store_busy_timeout(wg_store_t *st, int ms)
{
    st->ops->busy_timeout(st, ms);
}

void wg_account_dispose(wg_account_t *a)
{
    if (!a)
        return;
    free(a->id);
    free(a->name);
    free(a->plan);
    free(a->key_hash);
    memset(a, 0, sizeof(*a));
}

void wg_account_list_free(wg_account_t *a, size_t n)
{
    for (size_t i = 0; i < n; i++)
        wg_account_dispose(&a[i]);
    free(a);
}

void wg_instance_dispose(wg_instance_t *in)
{
    if (!in)
        return;
    char **s[] = {&in->id,       &in->owner_id,      &in->name,    &in->api_name, &in->phone,
                  &in->integration, &in->status,     &in->status_reason, &in->dialect,
                  &in->webhook,  &in->settings,      &in->proxy,   &in->sinks,    &in->chatwoot,
                  &in->jid,      &in->push_name,     &in->profile_pic_url, &in->token_hash};
    for (size_t i = 0; i < sizeof(s) / sizeof(s[0]); i++)
        free(*s[i]);
    memset(in, 0, sizeof(*in));
}

void wg_instance_list_free(wg_instance_t *in, size_t n)
{
    for (size_t i = 0; i < n; i++)
        wg_instance_dispose(&in[i]);
    free(in);
}

void wg_outbox_list_free(wg_outbox_row_t *r, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(r[i].payload);
    free(r);
}

int64_t wg_store_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int wg_store_event_id(char *out, size_t cap, int64_t now_ms)
{
    uint8_t r[8];
    if (cap < 33)
        return WG_EINVAL;
    if (wg_random_bytes(r, sizeof(r)) != 0)
        return WG_EIO;
    /* 12 hex digits of milliseconds sort correctly until the year 10889. */
    snprintf(out, cap, "evt_%012llx%02x%02x%02x%02x%02x%02x%02x%02x",
             (unsigned long long)now_ms & 0xffffffffffffULL, r[0], r[1], r[2], r[3], r[4], r[5],
             r[6], r[7]);
    return 0;
}
