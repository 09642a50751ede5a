/* store.h - the storage interface: accounts, instances, settings (meta) and the event outbox.
 *
 * One opaque wg_store_t per thread, never shared (a SQLite connection today, with its own cache
 * of prepared statements; a PostgreSQL backend plugs in behind the same vtable, chosen by the
 * URL given to wg_store_open). Every function that changes
 * state commits before it returns, so a caller may acknowledge the change to a client at once
 * (except inside wg_store_txn_begin/_end: then the end commits).
 * State changes that produce an event (status change, deletion) write the event into the outbox
 * in the same transaction.
 *
 * Ownership: records filled by the store (wg_account_t, wg_instance_t) hold malloc'd strings;
 * release them with wg_account_dispose / wg_instance_dispose. Inputs are never retained.
 * Errors: WG_ENOTFOUND, WG_EEXIST (unique constraint: names, token hashes), WG_ELIMIT (plan
 * limit), WG_ESTORE (backend failure, logged), WG_ENOMEM, WG_EINVAL (bad URL). */
#ifndef WG_STORE_STORE_H
#define WG_STORE_STORE_H

#include <stddef.h>
#include <stdint.h>

typedef struct wg_store wg_store_t;

typedef struct {
    char *id;
    char *name;
    char *plan;
    int64_t created_at; /* ms since the epoch, UTC */
    int64_t updated_at;
    int64_t instances; /* filled by list/get: how many instances it owns */
    char *key_hash;    /* SHA-256 hex of the current key, or NULL */
} wg_account_t;

/* JSON columns hold canonical JSON text written by core/ (never NULL once read). */
typedef struct {
    char *id;
    char *owner_id;
    char *name;
    char *api_name; /* NULL unless a dialect sets one; globally unique */
    char *phone;    /* E.164 "+digits" or NULL */
    char *integration;
    char *status;
    char *status_reason; /* NULL or a short reason ("engine_unavailable") */
    char *dialect;
    char *webhook;  /* JSON {url, events[], byEvents, base64, secret} */
    char *settings; /* JSON object */
    char *proxy;    /* JSON object or NULL */
    char *sinks;    /* JSON object */
    char *chatwoot; /* JSON object */
    char *jid, *push_name, *profile_pic_url;
    char *token_hash; /* SHA-256 hex of the access token (read only; set on insert) */
    int64_t created_at, updated_at;
} wg_instance_t;

/* An event to append to the outbox in the same transaction as a state change. The store
 * assigns id (evt_ + time-ordered id), per-instance seq and created_at. payload is JSON. */
typedef struct {
    const char *name;
    const char *payload;
} wg_store_event_t;

typedef struct {
    char id[64];
    char instance_id[64];
    int64_t seq;
    char event[48];
    char *payload; /* malloc'd */
    int64_t created_at;
    char state[16]; /* pending, delivered, failed (dead letter), skipped (no sink/filtered) */
    int attempts;
    int64_t next_attempt_at; /* 0 = now */
    int64_t delivered_at;    /* 0 = not delivered */
    char last_error[160];
} wg_outbox_row_t;

/* Outbox queries for the event sinks and the events API (events/). */
typedef struct {
    const char *instance_id; /* required */
    const char *state;       /* NULL: any state */
    int64_t after_seq;       /* only rows with seq > after_seq */
    int64_t limit;           /* <= 0: 100 */
} wg_outbox_query_t;

/* A delivery outcome to record: state "delivered" (sets delivered_at = now), "pending" (retry
 * at next_attempt_at), "failed" (dead letter) or "skipped". */
typedef struct {
    const char *id;
    const char *state;
    int attempts;
    int64_t next_attempt_at;
    const char *last_error; /* NULL keeps none */
} wg_outbox_mark_t;

typedef struct {
    const char *owner_id;    /* NULL: every owner (admin) */
    const char *instance_id; /* NULL: any; else only this one (instance tokens) */
    const char *status;      /* NULL or exact status */
    const char *name_like;   /* NULL or substring of name (case-insensitive ASCII) */
    const char *api_name;    /* NULL or exact api_name */
    int64_t offset, limit;
} wg_instance_filter_t;

/* Row callbacks run while the store steps its query: they must not call the same store (the
 * SQLite backend reuses one prepared statement per query); collect, then act. */
typedef void (*wg_store_count_cb)(const char *status, int64_t n, void *arg);
typedef int (*wg_store_key_cb)(const char *key, void *arg);

/* Opens the store named by url (a file path; "postgresql://" is rejected with WG_EINVAL until
 * that backend exists) and applies pending migrations. *out is freed with wg_store_close. */
int wg_store_open(const char *url, wg_store_t **out);
void wg_store_close(wg_store_t *st);
/* Schema version after migrations. */
int wg_store_schema_version(wg_store_t *st);

/* meta: small key/value settings (admin key hash). *val malloc'd. */
int wg_store_meta_get(wg_store_t *st, const char *key, char **val);
/* Inserts only if the key is absent (WG_EEXIST otherwise): first writer wins. */
int wg_store_meta_insert(wg_store_t *st, const char *key, const char *val);

int wg_store_account_insert(wg_store_t *st, const wg_account_t *a, const char *key_hash);
int wg_store_account_get(wg_store_t *st, const char *id, wg_account_t *out);
int wg_store_account_by_key(wg_store_t *st, const char *key_hash, wg_account_t *out);
/* *out is a malloc'd array of *n accounts (oldest first); wg_account_list_free. */
int wg_store_account_list(wg_store_t *st, wg_account_t **out, size_t *n);
/* name/plan NULL = unchanged. */
int wg_store_account_update(wg_store_t *st, const char *id, const char *name, const char *plan);
int wg_store_account_set_key(wg_store_t *st, const char *id, const char *key_hash);

/* Inserts the instance (status as given) if the owner has fewer than `limit` instances
 * (limit <= 0: unlimited), plus ev, in one transaction. WG_ELIMIT, WG_EEXIST (name for owner,
 * api_name or token hash taken: *conflict set to "name", "api_name" or "token"). */
int wg_store_instance_insert(wg_store_t *st, const wg_instance_t *in, const char *token_hash,
                             int64_t limit, const wg_store_event_t *ev, const char **conflict);
int wg_store_instance_get(wg_store_t *st, const char *id, wg_instance_t *out);
int wg_store_instance_by_token(wg_store_t *st, const char *token_hash, wg_instance_t *out);
/* *out malloc'd array of *n; *total = matches ignoring offset/limit. */
int wg_store_instance_list(wg_store_t *st, const wg_instance_filter_t *f, wg_instance_t **out,
                           size_t *n, int64_t *total);
/* The columns a patch writes: each non-NULL one replaces the stored JSON; set_proxy 1 with proxy
 * NULL clears the proxy. Strings are borrowed (they must outlive wg_store_instance_patch). */
typedef struct {
    const char *webhook;
    const char *settings;
    int set_proxy;
    const char *proxy;
} wg_instance_change_t;
/* Read-merge-write in one write transaction: reads the instance, calls merge(cur, &chg, arg) on
 * the row as stored, writes chg (updated_at = now), reads the result into *out (optional;
 * wg_instance_dispose) and commits. A non-zero return from merge rolls back and is returned.
 * Because the read happens under the write lock, two concurrent patches of different fields
 * (even keys of the same JSON column) both survive. WG_ENOTFOUND when there is no such id. */
typedef int (*wg_store_merge_cb)(const wg_instance_t *cur, wg_instance_change_t *chg, void *arg);
int wg_store_instance_patch(wg_store_t *st, const char *id, wg_store_merge_cb merge, void *arg,
                            wg_instance_t *out);
/* Sets status + reason and appends the event built by make_ev from the previous status, in one
 * transaction. *prev (optional, malloc'd) receives the previous status. */
typedef int (*wg_store_status_ev_cb)(const char *prev, wg_store_event_t *ev, void *arg);
int wg_store_instance_set_status(wg_store_t *st, const char *id, const char *status,
                                 const char *reason, wg_store_status_ev_cb make_ev, void *arg,
                                 char **prev);
int wg_store_instance_delete(wg_store_t *st, const char *id, const wg_store_event_t *ev);
int wg_store_instance_counts(wg_store_t *st, wg_store_count_cb cb, void *arg);

/* Oldest first; for tests and the later delivery sinks. wg_outbox_list_free. */
int wg_store_outbox_list(wg_store_t *st, const char *instance_id, wg_outbox_row_t **out,
                         size_t *n);

/* Rows of one instance matching q, by seq ascending; wg_outbox_list_free. */
int wg_store_outbox_query(wg_store_t *st, const wg_outbox_query_t *q, wg_outbox_row_t **out,
                          size_t *n);
/* One row by event id (out->payload malloc'd: free it); WG_ENOTFOUND. */
int wg_store_outbox_get(wg_store_t *st, const char *id, wg_outbox_row_t *out);
/* Calls cb for each instance id that has pending rows (cb's non-zero return stops). */
int wg_store_outbox_pending_instances(wg_store_t *st, wg_store_key_cb cb, void *arg);
/* Records n outcomes in one transaction. */
int wg_store_outbox_mark(wg_store_t *st, const wg_outbox_mark_t *m, size_t n);
/* Dead letter back to pending (attempts 0, due now). WG_ENOTFOUND (no such event of that
 * instance), WG_EEXIST (the event is not failed). */
int wg_store_outbox_replay(wg_store_t *st, const char *instance_id, const char *id);
/* The highest seq of the instance's rows (0 when none). */
int wg_store_outbox_last_seq(wg_store_t *st, const char *instance_id, int64_t *seq);
/* cb(state, count) for each outbox state. */
int wg_store_outbox_counts(wg_store_t *st, wg_store_count_cb cb, void *arg);

/* ---- WhatsApp engine state (wa/ seals every blob with the master key first) ---- */
typedef struct {
    uint32_t id;        /* 24-bit one-time prekey id */
    const uint8_t *blob; /* sealed key pair */
    size_t len;
} wg_store_prekey_t;

/* The sealed credentials of an instance; *blob malloc'd. WG_ENOTFOUND when there are none. */
int wg_store_creds_get(wg_store_t *st, const char *instance_id, uint8_t **blob, size_t *len);
/* Inserts or replaces them. WG_ENOTFOUND when the instance does not exist (deleted). */
int wg_store_creds_put(wg_store_t *st, const char *instance_id, const uint8_t *blob, size_t len);
/* Wipes credentials and prekeys in one transaction (logged out); 0 also when there were none.
 * Deleting the instance deletes both too (foreign keys). */
int wg_store_creds_delete(wg_store_t *st, const char *instance_id);
/* Stores n prekeys in one transaction (an id stored again replaces the old key). */
int wg_store_prekeys_put(wg_store_t *st, const char *instance_id, const wg_store_prekey_t *k,
                         size_t n);
/* Highest stored prekey id + 1, or 1 when none. */
int wg_store_prekeys_next_id(wg_store_t *st, const char *instance_id, uint32_t *next);
/* Appends an event keyed by `key` (e.g. "msg:<WhatsApp message id>") unless the instance
 * already has an event with that key: then nothing is written and *dup = 1. Either way
 * id_out (>= 40 bytes) receives the event's id, which therefore stays the same when the
 * WhatsApp server re-delivers a message the engine had not acknowledged before a crash. The
 * engine acknowledges an inbound message only after this returns 0 (committed). */
int wg_store_event_append_once(wg_store_t *st, const char *instance_id, const wg_store_event_t *ev,
                               const char *key, char *id_out, size_t cap, int *dup);
/* One write transaction around several calls on this store (the engine: an inbound message's
 * outbox row and the Signal state it advanced, one commit, one fdatasync). Between
 * wg_store_txn_begin (takes the write lock, waiting up to the busy timeout) and
 * wg_store_txn_end, the writes of this store join the transaction instead of committing (each
 * operation is a savepoint: one that fails undoes only itself); nothing is durable, and nothing
 * may be acknowledged to anyone, before wg_store_txn_end(st, 0) returned 0. wg_store_txn_end
 * commits when rv is 0, else rolls back; it returns the outcome (rv, or the commit's error).
 * Keep it short: other threads wait for the write lock meanwhile. WG_EINVAL if one is already
 * open (begin) or none is (end). */
int wg_store_txn_begin(wg_store_t *st);
int wg_store_txn_end(wg_store_t *st, int rv);
/* How long a write waits for another connection's write lock before failing (WG_ESTORE);
 * 5000 ms after open. A thread that retries from its own loop sets it lower, so a wait does not
 * stall its other work (the dispatcher). */
void wg_store_busy_timeout(wg_store_t *st, int ms);
/* Appends an event that reports no state change of its own (qr.updated). */
int wg_store_event_append(wg_store_t *st, const char *instance_id, const wg_store_event_t *ev);
/* The linked WhatsApp identity: jid and push_name as given (NULL clears), phone only when
 * non-NULL. WG_ENOTFOUND. */
int wg_store_instance_set_identity(wg_store_t *st, const char *id, const char *jid,
                                   const char *phone, const char *push_name);

/* One sealed one-time prekey (*blob malloc'd); WG_ENOTFOUND. Deleting an absent one is 0. */
int wg_store_prekey_get(wg_store_t *st, const char *instance_id, uint32_t key_id, uint8_t **blob,
                        size_t *len);
int wg_store_prekey_delete(wg_store_t *st, const char *instance_id, uint32_t key_id);

/* Signal state blobs by (kind, key), as wa/signal_db.c uses them (kinds: wg_signal_kind_t).
 * get: *blob malloc'd, WG_ENOTFOUND. put inserts or replaces: WG_ENOTFOUND when the instance
 * does not exist. delete: 0 also when absent. keys calls cb for every key starting with prefix
 * ("" = all), in key order; a non-zero return from cb stops and is returned. Wiped with the
 * credentials (wg_store_creds_delete) and with the instance. */
int wg_store_signal_get(wg_store_t *st, const char *instance_id, int kind, const char *key,
                        uint8_t **blob, size_t *len);
int wg_store_signal_put(wg_store_t *st, const char *instance_id, int kind, const char *key,
                        const uint8_t *blob, size_t len);
int wg_store_signal_delete(wg_store_t *st, const char *instance_id, int kind, const char *key);
int wg_store_signal_keys(wg_store_t *st, const char *instance_id, int kind, const char *prefix,
                         wg_store_key_cb cb, void *arg);

void wg_account_dispose(wg_account_t *a);
void wg_account_list_free(wg_account_t *a, size_t n);
void wg_instance_dispose(wg_instance_t *in);
void wg_instance_list_free(wg_instance_t *in, size_t n);
void wg_outbox_list_free(wg_outbox_row_t *r, size_t n);

/* Backend vtable (store_impl.h style, kept here so a backend is one file). */
typedef struct wg_store_ops {
    const char *name;
    void (*close)(wg_store_t *st);
    int (*schema_version)(wg_store_t *st);
    int (*meta_get)(wg_store_t *st, const char *key, char **val);
    int (*meta_insert)(wg_store_t *st, const char *key, const char *val);
    int (*account_insert)(wg_store_t *st, const wg_account_t *a, const char *key_hash);
    int (*account_get)(wg_store_t *st, const char *id, const char *key_hash, wg_account_t *out);
    int (*account_list)(wg_store_t *st, wg_account_t **out, size_t *n);
    int (*account_update)(wg_store_t *st, const char *id, const char *name, const char *plan,
                          const char *key_hash);
    int (*instance_insert)(wg_store_t *st, const wg_instance_t *in, const char *token_hash,
                           int64_t limit, const wg_store_event_t *ev, const char **conflict);
    int (*instance_get)(wg_store_t *st, const char *id, const char *token_hash,
                        wg_instance_t *out);
    int (*instance_list)(wg_store_t *st, const wg_instance_filter_t *f, wg_instance_t **out,
                         size_t *n, int64_t *total);
    int (*instance_patch)(wg_store_t *st, const char *id, wg_store_merge_cb merge, void *arg,
                          wg_instance_t *out);
    int (*instance_set_status)(wg_store_t *st, const char *id, const char *status,
                               const char *reason, wg_store_status_ev_cb make_ev, void *arg,
                               char **prev);
    int (*instance_delete)(wg_store_t *st, const char *id, const wg_store_event_t *ev);
    int (*instance_counts)(wg_store_t *st, wg_store_count_cb cb, void *arg);
    int (*outbox_list)(wg_store_t *st, const char *instance_id, wg_outbox_row_t **out,
                       size_t *n);
    int (*creds_get)(wg_store_t *st, const char *instance_id, uint8_t **blob, size_t *len);
    int (*creds_put)(wg_store_t *st, const char *instance_id, const uint8_t *blob, size_t len);
    int (*creds_delete)(wg_store_t *st, const char *instance_id);
    int (*prekeys_put)(wg_store_t *st, const char *instance_id, const wg_store_prekey_t *k,
                       size_t n);
    int (*prekeys_next_id)(wg_store_t *st, const char *instance_id, uint32_t *next);
    int (*event_append)(wg_store_t *st, const char *instance_id, const wg_store_event_t *ev);
    int (*instance_set_identity)(wg_store_t *st, const char *id, const char *jid,
                                 const char *phone, const char *push_name);
    int (*prekey_get)(wg_store_t *st, const char *instance_id, uint32_t key_id, uint8_t **blob,
                      size_t *len);
    int (*prekey_delete)(wg_store_t *st, const char *instance_id, uint32_t key_id);
    int (*signal_get)(wg_store_t *st, const char *instance_id, int kind, const char *key,
                      uint8_t **blob, size_t *len);
    int (*signal_put)(wg_store_t *st, const char *instance_id, int kind, const char *key,
                      const uint8_t *blob, size_t len);
    int (*signal_delete)(wg_store_t *st, const char *instance_id, int kind, const char *key);
    int (*signal_keys)(wg_store_t *st, const char *instance_id, int kind, const char *prefix,
                       wg_store_key_cb cb, void *arg);
    int (*outbox_query)(wg_store_t *st, const wg_outbox_query_t *q, wg_outbox_row_t **out,
                        size_t *n);
    int (*outbox_get)(wg_store_t *st, const char *id, wg_outbox_row_t *out);
    int (*outbox_pending_instances)(wg_store_t *st, wg_store_key_cb cb, void *arg);
    int (*outbox_mark)(wg_store_t *st, const wg_outbox_mark_t *m, size_t n);
    int (*outbox_replay)(wg_store_t *st, const char *instance_id, const char *id);
    int (*outbox_counts)(wg_store_t *st, wg_store_count_cb cb, void *arg);
    int (*outbox_last_seq)(wg_store_t *st, const char *instance_id, int64_t *seq);
    int (*event_append_once)(wg_store_t *st, const char *instance_id,
                             const wg_store_event_t *ev, const char *key, char *id_out,
                             size_t cap, int *dup);
    int (*txn_begin)(wg_store_t *st);
    int (*txn_end)(wg_store_t *st, int rv);
    void (*busy_timeout)(wg_store_t *st, int ms);
} wg_store_ops_t;

/* Every backend struct starts with this header. */
struct wg_store {
    const wg_store_ops_t *ops;
};

/* Backends. */
int wg_store_sqlite_open(const char *path, wg_store_t **out);

/* Helpers shared by backends: "evt_" + 12 hex digits of ms time + 16 random hex digits into
 * out (>= 33 bytes); ms since the epoch. */
int wg_store_event_id(char *out, size_t cap, int64_t now_ms);
int64_t wg_store_now_ms(void);

#endif
