/* sqlite.c - the SQLite backend of store.h.
 *
 * One connection per wg_store_t (one per thread; SQLITE_OPEN_NOMUTEX). WAL journal,
 * synchronous=FULL (a commit is on disk before we answer), foreign keys on, busy timeout 5 s.
 * Write transactions use BEGIN IMMEDIATE so two threads never deadlock upgrading a read lock.
 * Migrations are numbered SQL scripts in `migrations[]`, applied in order at open, each in its
 * own transaction, recorded in schema_migrations. Never edit a shipped migration: append one. */
#include "store/store.h"
#include "util/err.h"
#include "util/log.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    wg_store_t base;
    sqlite3 *db;
} sq_store_t;

static const char *const migrations[] = {
    /* 1: accounts, instances, meta, outbox */
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE accounts ("
    "  id TEXT PRIMARY KEY, name TEXT NOT NULL, plan TEXT NOT NULL,"
    "  key_hash TEXT UNIQUE,"
    "  created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);"
    "CREATE TABLE instances ("
    "  id TEXT PRIMARY KEY,"
    "  owner_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE RESTRICT,"
    "  name TEXT NOT NULL, api_name TEXT UNIQUE, phone TEXT,"
    "  integration TEXT NOT NULL DEFAULT 'WHATSAPP-BAILEYS',"
    "  status TEXT NOT NULL, status_reason TEXT,"
    "  dialect TEXT NOT NULL DEFAULT 'native',"
    "  token_hash TEXT NOT NULL UNIQUE,"
    "  webhook TEXT NOT NULL DEFAULT '{}', settings TEXT NOT NULL DEFAULT '{}',"
    "  proxy TEXT, sinks TEXT NOT NULL DEFAULT '{}', chatwoot TEXT NOT NULL DEFAULT '{}',"
    "  jid TEXT, push_name TEXT, profile_pic_url TEXT,"
    "  created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,"
    "  UNIQUE (owner_id, name));"
    "CREATE INDEX instances_owner ON instances (owner_id, created_at);"
    /* instance_id has no foreign key: instance.deleted outlives the instance. */
    "CREATE TABLE outbox ("
    "  id TEXT PRIMARY KEY, instance_id TEXT NOT NULL, seq INTEGER NOT NULL,"
    "  event TEXT NOT NULL, payload TEXT NOT NULL, created_at INTEGER NOT NULL,"
    "  state TEXT NOT NULL DEFAULT 'pending', attempts INTEGER NOT NULL DEFAULT 0,"
    "  next_attempt_at INTEGER, delivered_at INTEGER, last_error TEXT,"
    "  UNIQUE (instance_id, seq));"
    "CREATE INDEX outbox_pending ON outbox (state, next_attempt_at);",
    /* 2: WhatsApp credentials and one-time prekeys (blobs sealed by wa/creds with the master
     * key; the store never sees plaintext keys) */
    "CREATE TABLE wa_creds ("
    "  instance_id TEXT PRIMARY KEY REFERENCES instances(id) ON DELETE CASCADE,"
    "  blob BLOB NOT NULL, updated_at INTEGER NOT NULL);"
    "CREATE TABLE wa_prekeys ("
    "  instance_id TEXT NOT NULL REFERENCES instances(id) ON DELETE CASCADE,"
    "  key_id INTEGER NOT NULL, blob BLOB NOT NULL, created_at INTEGER NOT NULL,"
    "  PRIMARY KEY (instance_id, key_id));",
    /* 3: Signal state (wa/signal_db.c): sessions, identities, signed prekeys, sender keys as
     * sealed blobs by (kind, key); one-time prekeys stay in wa_prekeys */
    "CREATE TABLE wa_signal ("
    "  instance_id TEXT NOT NULL REFERENCES instances(id) ON DELETE CASCADE,"
    "  kind INTEGER NOT NULL, key TEXT NOT NULL, blob BLOB NOT NULL,"
    "  updated_at INTEGER NOT NULL,"
    "  PRIMARY KEY (instance_id, kind, key));",
    /* 4: event delivery (events/): the dispatcher finds instances with pending rows and their
     * oldest pending rows through this index; the dead-letter table is the view of failed rows
     * (kept in place so a replay keeps the event's id and seq) */
    "CREATE INDEX outbox_state_instance ON outbox (state, instance_id, seq);"
    "CREATE VIEW outbox_dead AS SELECT id, instance_id, seq, event, payload, created_at, "
    "  attempts, last_error FROM outbox WHERE state = 'failed';",
    /* 5: idempotency key of an event (inbound WhatsApp message id): one event per key and
     * instance, so a re-delivered message keeps its event id */
    "ALTER TABLE outbox ADD COLUMN dedupe_key TEXT;"
    "CREATE UNIQUE INDEX outbox_dedupe ON outbox (instance_id, dedupe_key) "
    "  WHERE dedupe_key IS NOT NULL;",
};
#define NMIGRATIONS ((int)(sizeof(migrations) / sizeof(migrations[0])))

#define INST_COLS                                                                                  \
    "id, owner_id, name, api_name, phone, integration, status, status_reason, dialect, webhook, " \
    "settings, proxy, sinks, chatwoot, jid, push_name, profile_pic_url, token_hash, created_at, "   \
    "updated_at"

static int fail(sq_store_t *s, const char *what)
{
    wg_log(WG_LOG_ERROR, "store", "op=%s err=\"%s\"", what, sqlite3_errmsg(s->db));
    return WG_ESTORE;
}

static int exec(sq_store_t *s, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        wg_log(WG_LOG_ERROR, "store", "op=exec err=\"%s\"", msg ? msg : "?");
        sqlite3_free(msg);
        return WG_ESTORE;
    }
    return 0;
}

static int prep(sq_store_t *s, const char *sql, sqlite3_stmt **st)
{
    if (sqlite3_prepare_v2(s->db, sql, -1, st, NULL) != SQLITE_OK)
        return fail(s, "prepare");
    return 0;
}

static void bind_text(sqlite3_stmt *st, int i, const char *v)
{
    if (v)
        sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(st, i);
}

/* strdup of a column; NULL for SQL NULL. *oom set on allocation failure. */
static char *col(sqlite3_stmt *st, int i, int *oom)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    if (!t)
        return NULL;
    char *s = strdup((const char *)t);
    if (!s)
        *oom = 1;
    return s;
}

static void rollback(sq_store_t *s)
{
    sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
}

/* ---- migrations ---- */

static int current_version(sq_store_t *s)
{
    sqlite3_stmt *st = NULL;
    int v = 0;
    if (prep(s, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations", &st) != 0)
        return -1;
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return v;
}

static int migrate(sq_store_t *s)
{
    int rv = 0;
    if ((rv = exec(s, "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY "
                      "KEY, applied_at INTEGER NOT NULL)")) != 0)
        return rv;
    for (;;) {
        if ((rv = exec(s, "BEGIN IMMEDIATE")) != 0)
            return rv;
        int v = current_version(s);
        if (v < 0 || v > NMIGRATIONS) {
            wg_log(WG_LOG_ERROR, "store", "op=migrate version=%d known=%d", v, NMIGRATIONS);
            rollback(s);
            return WG_ESTORE;
        }
        if (v == NMIGRATIONS) {
            exec(s, "COMMIT");
            return 0;
        }
        char rec[128];
        snprintf(rec, sizeof(rec), "INSERT INTO schema_migrations VALUES (%d, %lld)", v + 1,
                 (long long)wg_store_now_ms());
        if ((rv = exec(s, migrations[v])) != 0 || (rv = exec(s, rec)) != 0 ||
            (rv = exec(s, "COMMIT")) != 0) {
            rollback(s);
            return rv;
        }
        wg_log(WG_LOG_INFO, "store", "op=migrate version=%d", v + 1);
    }
}

/* ---- meta ---- */

static int sq_meta_get(wg_store_t *base, const char *key, char **val)
{
    sq_store_t *s = (sq_store_t *)base;
    sqlite3_stmt *st = NULL;
    int rv, oom = 0;
    *val = NULL;
    if ((rv = prep(s, "SELECT value FROM meta WHERE key = ?", &st)) != 0)
        return rv;
    bind_text(st, 1, key);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *val = col(st, 0, &oom);
        rv = oom ? WG_ENOMEM : 0;
    } else
        rv = rc == SQLITE_DONE ? WG_ENOTFOUND : fail(s, "meta_get");
    sqlite3_finalize(st);
    return rv;
}

static int sq_meta_insert(wg_store_t *base, const char *key, const char *val)
{
    sq_store_t *s = (sq_store_t *)base;
    sqlite3_stmt *st = NULL;
    int rv;
    if ((rv = prep(s, "INSERT INTO meta (key, value) VALUES (?, ?)", &st)) != 0)
        return rv;
    bind_text(st, 1, key);
    bind_text(st, 2, val);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE)
        rv = 0;
    else if (sqlite3_extended_errcode(s->db) == SQLITE_CONSTRAINT_PRIMARYKEY)
        rv = WG_EEXIST;
    else
        rv = fail(s, "meta_insert");
    sqlite3_finalize(st);
    return rv;
}

/* ---- accounts ---- */

static int sq_account_insert(wg_store_t *base, const wg_account_t *a, const char *key_hash)
{
    sq_store_t *s = (sq_store_t *)base;
    sqlite3_stmt *st = NULL;
    int rv;
    if ((rv = prep(s,
                   "INSERT INTO accounts (id, name, plan, key_hash, created_at, updated_at) "
                   "VALUES (?, ?, ?, ?, ?, ?)",
                   &st)) != 0)
        return rv;
    bind_text(st, 1, a->id);
    bind_text(st, 2, a->name);
    bind_text(st, 3, a->plan);
    bind_text(st, 4, key_hash);
    sqlite3_bind_int64(st, 5, a->created_at);
    sqlite3_bind_int64(st, 6, a->updated_at);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE)
        rv = 0;
    else if ((sqlite3_extended_errcode(s->db) & 0xff) == SQLITE_CONSTRAINT)
        rv = WG_EEXIST;
    else
        rv = fail(s, "account_insert");
    sqlite3_finalize(st);
    return rv;
}

#define ACC_SELECT                                                                                 \
    "SELECT a.id, a.name, a.plan, a.created_at, a.updated_at, "                                   \
    "(SELECT COUNT(*) FROM instances i WHERE i.owner_id = a.id), a.key_hash FROM accounts a "

static int read_account(sqlite3_stmt *st, wg_account_t *a)
{
    int oom = 0;
    memset(a, 0, sizeof(*a));
    a->id = col(st, 0, &oom);
    a->name = col(st, 1, &oom);
    a->plan = col(st, 2, &oom);
    a->created_at = sqlite3_column_int64(st, 3);
    a->updated_at = sqlite3_column_int64(st, 4);
    a->instances = sqlite3_column_int64(st, 5);
    a->key_hash = col(st, 6, &oom);
    if (oom) {
        wg_account_dispose(a);
        return WG_ENOMEM;
    }
    return 0;
}

static int sq_account_get(wg_store_t *base, const char *id, const char *key_hash,
                          wg_account_t *out)
{
    sq_store_t *s = (sq_store_t *)base;
    sqlite3_stmt *st = NULL;
    int rv;
    memset(out, 0, sizeof(*out));
    if ((rv = prep(s, id ? ACC_SELECT "WHERE a.id = ?" : ACC_SELECT "WHERE a.key_hash = ?",
                   &st)) != 0)
        return rv;
    bind_text(st, 1, id ? id : key_hash);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        rv = read_account(st, out);
    else
        rv = rc == SQLITE_DONE ? WG_ENOTFOUND : fail(s, "account_get");
    sqlite3_finalize(st);
    return rv;
}

static int sq_account_list(wg_store_t *base, wg_account_t **out, size_t *n)
{
    sq_store_t *s = (sq_store_t *)base;
    sqlite3_stmt *st = NULL;
    wg_account_t *v = NULL;
    size_t cnt = 0, cap = 0;
    int rv, rc;
    *out = NULL;
    *n = 0;
    if ((rv = prep(s, ACC_SELECT "ORDER BY a.created_at, a.id", &st)) != 0)
        return rv;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (cnt == cap) {
            size_t nc = cap ? cap * 2 : 16;
            wg_account_t *nv = realloc(v, nc * sizeof(*v));
            if (!nv) {
                rv = WG_ENOMEM;
                goto out;
            }
            v = nv;
            cap = nc;
        }
        if ((rv = read_account(st, &v[cnt])) != 0)
            goto out;
        cnt++;
    }
    if (rc != SQLITE_DONE)
        rv = fail(s, "account_list");
out:
    sqlite3_finalize(st);
    if (rv) {
        wg_account_list_free(v, cnt);
        return rv;
    }
    *out = v;
    *n = cnt;
    return 0;
}

static int sq_account_update(wg_store_t *base, const char *id, const char *name,
                             const char *plan, const char *key_hash)
{
    sq_store_t *s = (sq_store_t *)base;
    sqlite3_stmt *st = NULL;
    int rv;
    if ((rv = prep(s,
                   "UPDATE accounts SET name = COALESCE(?, name), plan = COALESCE(?, plan), "
                   "key_hash = COALESCE(?, key_hash), updated_at = ? WHERE id = ?",
                   &st)) != 0)
        return rv;
    bind_text(st, 1, name);
    bind_text(st, 2, plan);
    bind_text(st, 3, key_hash);
    sqlite3_bind_int64(st, 4, wg_store_now_ms());
    bind_text(st, 5, id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE)
        rv = sqlite3_changes(s->db) ? 0 : WG_ENOTFOUND;
    else if ((sqlite3_extended_errcode(s->db) & 0xff) == SQLITE_CONSTRAINT)
        rv = WG_EEXIST;
    else
        rv = fail(s, "account_update");
    sqlite3_finalize(st);
    return rv;
}

/* ---- instances ---- */

/* Appends ev for instance_id inside the caller's transaction. */
static int append_event(sq_store_t *s, const char *instance_id, const wg_store_event_t *ev)
{
    sqlite3_stmt *st = NULL;
    char id[40];
    int64_t now = wg_store_now_ms();
    int rv;
    if ((rv = wg_store_event_id(id, sizeof(id), now)) != 0)
        return rv;
    if ((rv = prep(s,
                   "INSERT INTO outbox (id, instance_id, seq, event, payload, created_at) "
                   "VALUES (?1, ?2, (SELECT COALESCE(MAX(seq), 0) + 1 FROM outbox WHERE "
                   "instance_id = ?2), ?3, ?4, ?5)",
                   &st)) != 0)
        return rv;
    bind_text(st, 1, id);
    bind_text(st, 2, instance_id);
    bind_text(st, 3, ev->name);
    bind_text(st, 4, ev->payload);
    sqlite3_bind_int64(st, 5, now);
    rv = sqlite3_step(st) == SQLITE_DONE ? 0 : fail(s, "append_event");
    sqlite3_finalize(st);
    return rv;
}

/* 1 when `sql` (one ?1 parameter [+ ?2]) returns a row, 0 when not, <0 on error. */
static int exists(sq_store_t *s, const char *sql, const char *a, const char *b)
{
    sqlite3_stmt *st = NULL;
    int rv;
    if ((rv = prep(s, sql, &st)) != 0)
        return rv;
    bind_text(st, 1, a);
    if (b)
        bind_text(st, 2, b);
    int rc = sqlite3_step(st);
    rv = rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : fail(s, "exists");
    sqlite3_finalize(st);
    return rv;
}

static int sq_instance_insert(wg_store_t *base, const wg_instance_t *in, const char *token_hash,
                              int64_t limit, const wg_store_event_t *ev, const char **conflict)
{
    sq_store_t *s = (sq_store_t *)base;
    sqlite3_stmt *st = NULL;
    int rv, e;
    *conflict = NULL;
    if ((rv = exec(s, "BEGIN IMMEDIATE")) != 0)
        return rv;
    if (limit > 0) {
        if ((rv = prep(s, "SELECT COUNT(*) FROM instances WHERE owner_id = ?", &st)) != 0)
            goto out;
        bind_text(st, 1, in->owner_id);
        if (sqlite3_step(st) != SQLITE_ROW) {
            rv = fail(s, "instance_count");
            goto out;
        }
        int64_t have = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        st = NULL;
        if (have >= limit) {
            rv = WG_ELIMIT;
            goto out;
        }
    }
    if ((e = exists(s, "SELECT 1 FROM instances WHERE owner_id = ?1 AND name = ?2", in->owner_id,
                    in->name)) != 0) {
        rv = e < 0 ? e : WG_EEXIST;
        *conflict = "name";
        goto out;
    }
    if (in->api_name &&
        (e = exists(s, "SELECT 1 FROM instances WHERE api_name = ?1", in->api_name, NULL)) != 0) {
        rv = e < 0 ? e : WG_EEXIST;
        *conflict = "api_name";
        goto out;
    }
    if ((e = exists(s, "SELECT 1 FROM instances WHERE token_hash = ?1", token_hash, NULL)) != 0) {
        rv = e < 0 ? e : WG_EEXIST;
        *conflict = "token";
        goto out;
    }
    if ((rv = prep(s,
                   "INSERT INTO instances (id, owner_id, name, api_name, phone, integration, "
                   "status, status_reason, dialect, token_hash, webhook, settings, proxy, sinks, "
                   "chatwoot, created_at, updated_at) "
                   "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                   &st)) != 0)
        goto out;
    bind_text(st, 1, in->id);
    bind_text(st, 2, in->owner_id);
    bind_text(st, 3, in->name);
    bind_text(st, 4, in->api_name);
    bind_text(st, 5, in->phone);
    bind_text(st, 6, in->integration ? in->integration : "WHATSAPP-BAILEYS");
    bind_text(st, 7, in->status);
    bind_text(st, 8, in->status_reason);
    bind_text(st, 9, in->dialect ? in->dialect : "native");
    bind_text(st, 10, token_hash);
    bind_text(st, 11, in->webhook ? in->webhook : "{}");
    bind_text(st, 12, in->settings ? in->settings : "{}");
    bind_text(st, 13, in->proxy);
    bind_text(st, 14, in->sinks ? in->sinks : "{}");
    bind_text(st, 15, in->chatwoot ? in->chatwoot : "{}");
    sqlite3_bind_int64(st, 16, in->created_at);
    sqlite3_bind_int64(st, 17, in->updated_at);
    if (sqlite3_step(st) != SQLITE_DONE) {
        rv = (sqlite3_extended_errcode(s->db) & 0xff) == SQLITE_CONSTRAINT
                 ? WG_EEXIST
                 : fail(s, "instance_insert");
        goto out;
    }
    if (ev && (rv = append_event(s, in->id, ev)) != 0)
        goto out;
    rv = exec(s, "COMMIT");
out:
    sqlite3_finalize(st);
    if (rv)
        rollback(s);
    return rv;
}

static int read_instance(sqlite3_stmt *st, wg_instance_t *in)
{
    int oom = 0;
    memset(in, 0, sizeof(*in));
    char **f[] = {&in->id,       &in->owner_id,   &in->name,      &in->api_name,
                  &in->phone,    &in->integration, &in->status,   &in->status_reason,
                  &in->dialect,  &in->webhook,    &in->settings,  &in->proxy,
                  &in->sinks,    &in->chatwoot,   &in->jid,       &in->push_name,
                  &in->profile_pic_url, &in->token_hash};
    int nf = (int)(sizeof(f) / sizeof(f[0]));
    for (int i = 0; i < nf; i++)
        *f[i] = col(st, i, &oom);
    in->created_at = sqlite3_column_int64(st, nf);
    in->updated_at = sqlite3_column_int64(st, nf + 1);
    if (oom) {
        wg_instance_dispose(in);
        return WG_ENOMEM;
    }
    return 0;
}

static int sq_instance_get(wg_store_t *base, const char *id, const char *token_hash,
                           wg_instance_t *out)
{
    sq_store_t *s = (sq_store_t *)base;
    sqlite3_stmt *st = NULL;
    int rv;
    memset(out, 0, sizeof(*out));
    if ((rv = prep(s,
                   id ? "SELECT " INST_COLS " FROM instances WHERE id = ?"
                      : "SELECT " INST_COLS " FROM instances WHERE token_hash = ?",
                   &st)) != 0)
        return rv;
    bind_text(st, 1, id ? id : token_hash);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        rv = read_instance(st, out);
    else
        rv = rc == SQLITE_DONE ? WG_ENOTFOUND : fail(s, "instance_get");
    sqlite3_finalize(st);
    return rv;
}

static const char filter_where[] = " WHERE (?1 IS NULL OR owner_id = ?1)"
                                   " AND (?2 IS NULL OR id = ?2)"
                                   " AND (?3 IS NULL OR status = ?3)"
                                   " AND (?4 IS NULL OR instr(lower(name), lower(?4)) > 0)"
                                   " AND (?7 IS NULL OR api_name = ?7)";

static void bind_filter(sqlite3_stmt *st, const wg_instance_filter_t *f)
{
    bind_text(st, 1, f->owner_id);
    bind_text(st, 2, f->instance_id);
    bind_text(st, 3, f->status);
    bind_text(st, 4, f->name_like);
    bind_text(st, 7, f->api_name); /* ?5 ?6 are the list's LIMIT and OFFSET */
}

static int sq_instance_list(wg_store_t *base, const wg_instance_filter_t *f, wg_instance_t **out,
                            size_t *n, int64_t *total)
{
    sq_store_t *s = (sq_store_t *)base;
    sqlite3_stmt *st = NULL;
    wg_instance_t *v = NULL;
    size_t cnt = 0, cap = 0;
    int rv, rc;
    char sql[1024];
    *out = NULL;
    *n = 0;
    *total = 0;
    snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM instances%s", filter_where);
    if ((rv = prep(s, sql, &st)) != 0)
        return rv;
    bind_filter(st, f);
    if (sqlite3_step(st) != SQLITE_ROW) {
        rv = fail(s, "instance_count");
        goto out;
    }
    *total = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    st = NULL;
    snprintf(sql, sizeof(sql),
             "SELECT " INST_COLS " FROM instances%s ORDER BY created_at, id LIMIT ?5 OFFSET ?6",
             filter_where);
    if ((rv = prep(s, sql, &st)) != 0)
        goto out;
    bind_filter(st, f);
    sqlite3_bind_int64(st, 5, f->limit > 0 ? f->limit : -1);
    sqlite3_bind_int64(st, 6, f->offset > 0 ? f->offset : 0);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (cnt == cap) {
            size_t nc = cap ? cap * 2 : 16;
            wg_instance_t *nv = realloc(v, nc * sizeof(*v));
            if (!nv) {
                rv = WG_ENOMEM;
                goto out;
            }
            v = nv;
            cap = nc;
        }
        if ((rv = read_instance(st, &v[cnt])) != 0)
            goto out;
        cnt++;
    }
    if (rc != SQLITE_DONE)
        rv = fail(s, "instance_list");
out:
    sqlite3_finalize(st);
    if (rv) {
        wg_instance_list_free(v, cnt);
        return rv;
    }
    *out = v;
    *n = cnt;
    return 0;
}

static int sq_instance_update(wg_store_t *base, const char *id, const char *webhook,
                              const char *settings, int set_proxy, const char *proxy)
{
    sq_store_t *s = (sq_store_t *)base;
    sqlite3_stmt *st = NULL;
    int rv;
    if ((rv = prep(s,
                   "UPDATE instances SET webhook = COALESCE(?1, webhook), "
                   "settings = COALESCE(?2, settings), "
                   "proxy = CASE WHEN ?3 THEN ?4 ELSE proxy END, updated_at = ?5 WHERE id = ?6",
                   &st)) != 0)
        return rv;
    bind_text(st, 1, webhook);
    bind_text(st, 2, settings);
    sqlite3_bind_int(st, 3, set_proxy ? 1 : 0);
    bind_text(st, 4, proxy);
    sqlite3_bind_int64(st, 5, wg_store_now_ms());
    bind_text(st, 6, id);
    if (sqlite3_step(st) == SQLITE_DONE)
        rv = sqlite3_changes(s->db) ? 0 : WG_ENOTFOUND;
    else
        rv = fail(s, "instance_update");
    sqlite3_finalize(st);
    return rv;
}

static int sq_instance_set_status(wg_store_t *base, const char *id, const char *status,
                                  const char *reason, wg_store_status_ev_cb make_ev, void *arg,
                                  char **prev)
{
    sq_store_t *s = (sq_store_t *)base;
    sqlite3_stmt *st = NULL;
    char *old = NULL;
    int rv, oom = 0;
    wg_store_event_t ev = {0};
    if (prev)
        *prev = NULL;
    if ((rv = exec(s, "BEGIN IMMEDIATE")) != 0)
        return rv;
    if ((rv = prep(s, "SELECT status FROM instances WHERE id = ?", &st)) != 0)
        goto out;
    bind_text(st, 1, id);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        rv = rc == SQLITE_DONE ? WG_ENOTFOUND : fail(s, "status_get");
        goto out;
    }
    old = col(st, 0, &oom);
    if (oom) {
        rv = WG_ENOMEM;
        goto out;
    }
    sqlite3_finalize(st);
    st = NULL;
    if ((rv = prep(s,
                   "UPDATE instances SET status = ?, status_reason = ?, updated_at = ? "
                   "WHERE id = ?",
                   &st)) != 0)
        goto out;
    bind_text(st, 1, status);
    bind_text(st, 2, reason);
    sqlite3_bind_int64(st, 3, wg_store_now_ms());
    bind_text(st, 4, id);
    if (sqlite3_step(st) != SQLITE_DONE) {
        rv = fail(s, "status_set");
        goto out;
    }
    if (make_ev) {
        if ((rv = make_ev(old, &ev, arg)) != 0)
            goto out;
        if (ev.name && (rv = append_event(s, id, &ev)) != 0)
            goto out;
    }
    rv = exec(s, "COMMIT");
out:
    sqlite3_finalize(st);
    if (rv)
        rollback(s);
    if (!rv && prev)
        *prev = old;
    else
        free(old);
    return rv;
}

static int sq_instance_delete(wg_store_t *base, const char *id, const wg_store_event_t *ev)
{
    sq_store_t *s = (sq_store_t *)base;
    sqlite3_stmt *st = NULL;
    int rv;
    if ((rv = exec(s, "BEGIN IMMEDIATE")) != 0)
        return rv;
    if ((rv = prep(s, "DELETE FROM instances WHERE id = ?", &st)) != 0)
        goto out;
    bind_text(st, 1, id);
    if (sqlite3_step(st) != SQLITE_DONE) {
        rv = fail(s, "instance_delete");
        goto out;
    }
    if (!sqlite3_changes(s->db)) {
        rv = WG_ENOTFOUND;
        goto out;
    }
    if (ev && (rv = append_event(s, id, ev)) != 0)
        goto out;
    rv = exec(s, "COMMIT");
out:
    sqlite3_finalize(st);
    if (rv)
        rollback(s);
    return rv;
}

static int sq_instance_counts(wg_store_t *base, wg_store_count_cb cb, void *arg)
{
    sq_store_t *s = (sq_store_t *)base;
    sqlite3_stmt *st = NULL;
    int rv, rc;
    if ((rv = prep(s, "SELECT status, COUNT(*) FROM instances GROUP BY status ORDER BY status",
                   &st)) != 0)
        return rv;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        cb((const char *)sqlite3_column_text(st, 0), sqlite3_column_int64(st, 1), arg);
    rv = rc == SQLITE_DONE ? 0 : fail(s, "instance_counts");
    sqlite3_finalize(st);
    return rv;
}

#define OUTBOX_COLS                                                                                \
    "id, instance_id, seq, event, payload, created_at, state, attempts, "                          \
    "COALESCE(next_attempt_at, 0), COALESCE(delivered_at, 0), last_error"

static void read_outbox_row(sqlite3_stmt *st, wg_outbox_row_t *r, int *oom)
{
    const unsigned char *le;
    memset(r, 0, sizeof(*r));
    snprintf(r->id, sizeof(r->id), "%s", (const char *)sqlite3_column_text(st, 0));
    snprintf(r->instance_id, sizeof(r->instance_id), "%s",
             (const char *)sqlite3_column_text(st, 1));
    r->seq = sqlite3_column_int64(st, 2);
    snprintf(r->event, sizeof(r->event), "%s", (const char *)sqlite3_column_text(st, 3));
    r->payload = col(st, 4, oom);
    r->created_at = sqlite3_column_int64(st, 5);
    snprintf(r->state, sizeof(r->state), "%s", (const char *)sqlite3_column_text(st, 6));
    r->attempts = sqlite3_column_int(st, 7);
    r->next_attempt_at = sqlite3_column_int64(st, 8);
    r->delivered_at = sqlite3_column_int64(st, 9);
    if ((le = sqlite3_column_text(st, 10)))
        snprintf(r->last_error, sizeof(r->last_error), "%s", (const char *)le);
}

static int sq_outbox_list(wg_store_t *base, const char *instance_id, wg_outbox_row_t **out,
                          size_t *n)
{
    sq_store_t *s = (sq_store_t *)base;
    sqlite3_stmt *st = NULL;
    wg_outbox_row_t *v = NULL;
    size_t cnt = 0, cap = 0;
    int rv, rc, oom = 0;
    *out = NULL;
    *n = 0;
    if ((rv = prep(s,
                   "SELECT " OUTBOX_COLS " FROM outbox "
                   "WHERE ?1 IS NULL OR instance_id = ?1 ORDER BY id",
                   &st)) != 0)
        return rv;
    bind_text(st, 1, instance_id);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (cnt == cap) {
            size_t nc = cap ? cap * 2 : 16;
            wg_outbox_row_t *nv = realloc(v, nc * sizeof(*v));
            if (!nv) {
                rv = WG_ENOMEM;
                goto out;
            }
            v = nv;
            cap = nc;
        }
        wg_outbox_row_t *r = &v[cnt++];
        read_outbox_row(st, r, &oom);
        if (oom) {
            rv = WG_ENOMEM;
            goto out;
        }
    }
    if (rc != SQLITE_DONE)
        rv = fail(s, "outbox_list");
out:
    sqlite3_finalize(st);
    if (rv) {
        wg_outbox_list_free(v, cnt);
        return rv;
    }
    *out = v;
    *n = cnt;
    return 0;
}

/* ---- WhatsApp credentials, prekeys, identity, plain events ---- */

static int sq_creds_get(wg_store_t *base, const char *id, uint8_t **blob, size_t *len)
{
    sq_store_t *s = (sq_store_t *)base;
    sqlite3_stmt *st = NULL;
    int rv, rc;
    *blob = NULL;
    *len = 0;
    if ((rv = prep(s, "SELECT blob FROM wa_creds WHERE instance_id = ?", &st)) != 0)
        return rv;
    bind_text(st, 1, id);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        int n = sqlite3_column_bytes(st, 0);
        const void *p = sqlite3_column_blob(st, 0);
        if (!(*blob = malloc(n > 0 ? (size_t)n : 1)))
            rv = WG_ENOMEM;
        else {
            if (n > 0)
                memcpy(*blob, p, (size_t)n);
            *len = (size_t)n;
        }
    } else
        rv = rc == SQLITE_DONE ? WG_ENOTFOUND : fail(s, "creds_get");
    sqlite3_finalize(st);
    return rv;
}

static int sq_creds_put(wg_store_t *base, const char *id, const uint8_t *blob, size_t len)
{
    sq_store_t *s = (sq_store_t *)base;
    sqlite3_stmt *st = NULL;
    int rv;
    if ((rv = prep(s,
                   "INSERT INTO wa_creds (instance_id, blob, updated_at) "
                   "SELECT ?1, ?2, ?3 WHERE EXISTS (SELECT 1 FROM instances WHERE id = ?1) "
                   "ON CONFLICT (instance_id) DO UPDATE SET blob = excluded.blob, "
                   "updated_at = excluded.updated_at",
                   &st)) != 0)
        return rv;
    bind_text(st, 1, id);
    sqlite3_bind_blob(st, 2, blob, (int)len, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 3, wg_store_now_ms());
    if (sqlite3_step(st) == SQLITE_DONE)
        rv = sqlite3_changes(s->db) ? 0 : WG_ENOTFOUND;
    else
        rv = fail(s, "creds_put");
    sqlite3_finalize(st);
    return rv;
}

static int sq_creds_delete(wg_store_t *base, const char *id)
{
    sq_store_t *s = (sq_store_t *)base;
    sqlite3_stmt *st = NULL;
    int rv;
    if ((rv = exec(s, "BEGIN IMMEDIATE")) != 0)
        return rv;
    static const char *const sql[] = {"DELETE FROM wa_creds WHERE instance_id = ?",
                                      "DELETE FROM wa_prekeys WHERE instance_id = ?",
                                      "DELETE FROM wa_signal WHERE instance_id = ?"};
    for (int i = 0; i < 3; i++) {
        if ((rv = prep(s, sql[i], &st)) != 0)
            goto out;
        bind_text(st, 1, id);
        if (sqlite3_step(st) != SQLITE_DONE) {
            rv = fail(s, "creds_delete");
            goto out;
        }
        sqlite3_finalize(st);
        st = NULL;
    }
    rv = exec(s, "COMMIT");
out:
    sqlite3_finalize(st);
    if (rv)
        rollback(s);
    return rv;
}

static int sq_prekeys_put(wg_store_t *base, const char *id, const wg_store_prekey_t *k, size_t n)
{
    sq_store_t *s = (sq_store_t *)base;
    sqlite3_stmt *st = NULL;
    int64_t now = wg_store_now_ms();
    int rv;
    if ((rv = exec(s, "BEGIN IMMEDIATE")) != 0)
        return rv;
    if ((rv = prep(s,
                   "INSERT OR REPLACE INTO wa_prekeys (instance_id, key_id, blob, created_at) "
                   "VALUES (?, ?, ?, ?)",
                   &st)) != 0)
        goto out;
    for (size_t i = 0; i < n; i++) {
        sqlite3_reset(st);
        bind_text(st, 1, id);
        sqlite3_bind_int64(st, 2, k[i].id);
        sqlite3_bind_blob(st, 3, k[i].blob, (int)k[i].len, SQLITE_STATIC);
        sqlite3_bind_int64(st, 4, now);
        if (sqlite3_step(st) != SQLITE_DONE) {
            rv = fail(s, "prekeys_put");
            goto out;
        }
    }
    rv = exec(s, "COMMIT");
out:
    sqlite3_finalize(st);
    if (rv)
        rollback(s);
    return rv;
}

static int sq_prekeys_next_id(wg_store_t *base, const char *id, uint32_t *next)
{
    sq_store_t *s = (sq_store_t *)base;
    sqlite3_stmt *st = NULL;
    int rv;
    *next = 1;
    if ((rv = prep(s, "SELECT COALESCE(MAX(key_id), 0) + 1 FROM wa_prekeys WHERE instance_id = ?",
                   &st)) != 0)
        return rv;
    bind_text(st, 1, id);
    if (sqlite3_step(st) == SQLITE_ROW)
        *next = (uint32_t)sqlite3_column_int64(st, 0);
    else
        rv = fail(s, "prekeys_next_id");
    sqlite3_finalize(st);
    return rv;
}

static int sq_event_append(wg_store_t *base, const char *id, const wg_store_event_t *ev)
{
    sq_store_t *s = (sq_store_t *)base;
    int rv;
    if ((rv = exec(s, "BEGIN IMMEDIATE")) != 0)
        return rv;
    if ((rv = append_event(s, id, ev)) == 0)
        rv = exec(s, "COMMIT");
    if (rv)
        rollback(s);
    return rv;
}

static int sq_instance_set_identity(wg_store_t *base, const char *id, const char *jid,
                                    const char *phone, const char *push_name)
{
    sq_store_t *s = (sq_store_t *)base;
    sqlite3_stmt *st = NULL;
    int rv;
    if ((rv = prep(s,
                   "UPDATE instances SET jid = ?, phone = COALESCE(?, phone), push_name = ?, "
                   "updated_at = ? WHERE id = ?",
                   &st)) != 0)
        return rv;
    bind_text(st, 1, jid);
    bind_text(st, 2, phone);
    bind_text(st, 3, push_name);
    sqlite3_bind_int64(st, 4, wg_store_now_ms());
    bind_text(st, 5, id);
    if (sqlite3_step(st) == SQLITE_DONE)
        rv = sqlite3_changes(s->db) ? 0 : WG_ENOTFOUND;
    else
        rv = fail(s, "instance_set_identity");
    sqlite3_finalize(st);
    return rv;
}

static int sq_schema_version(wg_store_t *base)
{
    return current_version((sq_store_t *)base);
}

static void sq_close(wg_store_t *base)
{
    sq_store_t *s = (sq_store_t *)base;
    if (sqlite3_close(s->db) != SQLITE_OK)
        wg_log(WG_LOG_ERROR, "store", "op=close err=\"%s\"", sqlite3_errmsg(s->db));
    free(s);
}

/* ---- Signal state (wa/signal_db.c seals every blob first) ---- */

/* One row's blob (first column of a prepared one-row query) into a malloc'd copy. */
static int row_blob(sq_store_t *s, sqlite3_stmt *st, const char *what, uint8_t **blob,
                    size_t *len)
{
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW)
        return rc == SQLITE_DONE ? WG_ENOTFOUND : fail(s, what);
    int n = sqlite3_column_bytes(st, 0);
    const void *p = sqlite3_column_blob(st, 0);
    if (!(*blob = malloc(n > 0 ? (size_t)n : 1)))
        return WG_ENOMEM;
    if (n > 0)
        memcpy(*blob, p, (size_t)n);
    *len = (size_t)n;
    return 0;
}

/* Runs a prepared statement that returns no rows, then finalizes it. */
static int step_done(sq_store_t *s, sqlite3_stmt *st, const char *what)
{
    int rv = sqlite3_step(st) == SQLITE_DONE ? 0 : fail(s, what);
    sqlite3_finalize(st);
    return rv;
}

static int sq_prekey_get(wg_store_t *base, const char *id, uint32_t key_id, uint8_t **blob,
                         size_t *len)
{
    sq_store_t *s = (sq_store_t *)base;
    sqlite3_stmt *st = NULL;
    int rv;
    *blob = NULL;
    *len = 0;
    if ((rv = prep(s, "SELECT blob FROM wa_prekeys WHERE instance_id = ? AND key_id = ?", &st)))
        return rv;
    bind_text(st, 1, id);
    sqlite3_bind_int64(st, 2, key_id);
    rv = row_blob(s, st, "prekey_get", blob, len);
    sqlite3_finalize(st);
    return rv;
}

static int sq_prekey_delete(wg_store_t *base, const char *id, uint32_t key_id)
{
    sq_store_t *s = (sq_store_t *)base;
    sqlite3_stmt *st = NULL;
    int rv;
    if ((rv = prep(s, "DELETE FROM wa_prekeys WHERE instance_id = ? AND key_id = ?", &st)))
        return rv;
    bind_text(st, 1, id);
    sqlite3_bind_int64(st, 2, key_id);
    return step_done(s, st, "prekey_delete");
}

static int sq_signal_get(wg_store_t *base, const char *id, int kind, const char *key,
                         uint8_t **blob, size_t *len)
{
    sq_store_t *s = (sq_store_t *)base;
    sqlite3_stmt *st = NULL;
    int rv;
    *blob = NULL;
    *len = 0;
    if ((rv = prep(s, "SELECT blob FROM wa_signal WHERE instance_id = ? AND kind = ? AND key = ?",
                   &st)))
        return rv;
    bind_text(st, 1, id);
    sqlite3_bind_int(st, 2, kind);
    bind_text(st, 3, key);
    rv = row_blob(s, st, "signal_get", blob, len);
    sqlite3_finalize(st);
    return rv;
}

static int sq_signal_put(wg_store_t *base, const char *id, int kind, const char *key,
                         const uint8_t *blob, size_t len)
{
    sq_store_t *s = (sq_store_t *)base;
    sqlite3_stmt *st = NULL;
    int rv;
    if ((rv = prep(s,
                   "INSERT INTO wa_signal (instance_id, kind, key, blob, updated_at) "
                   "SELECT ?1, ?2, ?3, ?4, ?5 WHERE EXISTS (SELECT 1 FROM instances WHERE id = ?1) "
                   "ON CONFLICT (instance_id, kind, key) DO UPDATE SET blob = excluded.blob, "
                   "updated_at = excluded.updated_at",
                   &st)))
        return rv;
    bind_text(st, 1, id);
    sqlite3_bind_int(st, 2, kind);
    bind_text(st, 3, key);
    sqlite3_bind_blob(st, 4, blob, (int)len, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, wg_store_now_ms());
    if (sqlite3_step(st) == SQLITE_DONE)
        rv = sqlite3_changes(s->db) ? 0 : WG_ENOTFOUND;
    else
        rv = fail(s, "signal_put");
    sqlite3_finalize(st);
    return rv;
}

static int sq_signal_delete(wg_store_t *base, const char *id, int kind, const char *key)
{
    sq_store_t *s = (sq_store_t *)base;
    sqlite3_stmt *st = NULL;
    int rv;
    if ((rv = prep(s, "DELETE FROM wa_signal WHERE instance_id = ? AND kind = ? AND key = ?", &st)))
        return rv;
    bind_text(st, 1, id);
    sqlite3_bind_int(st, 2, kind);
    bind_text(st, 3, key);
    return step_done(s, st, "signal_delete");
}

static int sq_signal_keys(wg_store_t *base, const char *id, int kind, const char *prefix,
                          wg_store_key_cb cb, void *arg)
{
    sq_store_t *s = (sq_store_t *)base;
    sqlite3_stmt *st = NULL;
    int rv, rc;
    size_t plen = strlen(prefix);
    /* substr() instead of LIKE: keys may contain '_' and '%' */
    if ((rv = prep(s,
                   "SELECT key FROM wa_signal WHERE instance_id = ? AND kind = ? AND "
                   "substr(key, 1, ?) = ? ORDER BY key",
                   &st)))
        return rv;
    bind_text(st, 1, id);
    sqlite3_bind_int(st, 2, kind);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)plen);
    bind_text(st, 4, prefix);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *k = (const char *)sqlite3_column_text(st, 0);
        if (k && (rv = cb(k, arg)) != 0)
            break;
    }
    if (rv == 0 && rc != SQLITE_DONE)
        rv = fail(s, "signal_keys");
    sqlite3_finalize(st);
    return rv;
}

/* ---- event delivery (events/) ---- */

static int sq_outbox_query(wg_store_t *base, const wg_outbox_query_t *q, wg_outbox_row_t **out,
                           size_t *n)
{
    sq_store_t *s = (sq_store_t *)base;
    sqlite3_stmt *st = NULL;
    wg_outbox_row_t *v = NULL;
    size_t cnt = 0;
    int64_t lim = q->limit > 0 ? q->limit : 100;
    int rv, rc, oom = 0;
    *out = NULL;
    *n = 0;
    if ((rv = prep(s,
                   "SELECT " OUTBOX_COLS " FROM outbox WHERE instance_id = ?1 AND "
                   "(?2 IS NULL OR state = ?2) AND seq > ?3 ORDER BY seq LIMIT ?4",
                   &st)) != 0)
        return rv;
    bind_text(st, 1, q->instance_id);
    bind_text(st, 2, q->state);
    sqlite3_bind_int64(st, 3, q->after_seq);
    sqlite3_bind_int64(st, 4, lim);
    if (!(v = calloc((size_t)lim, sizeof(*v)))) {
        rv = WG_ENOMEM;
        goto out;
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && cnt < (size_t)lim) {
        read_outbox_row(st, &v[cnt++], &oom);
        if (oom) {
            rv = WG_ENOMEM;
            goto out;
        }
    }
    if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        rv = fail(s, "outbox_query");
out:
    sqlite3_finalize(st);
    if (rv) {
        wg_outbox_list_free(v, cnt);
        return rv;
    }
    /* sized to what it holds: the dispatcher keeps every instance's last batch, and an idle
     * instance's is empty (64 rows x 400 bytes each otherwise, issue 8) */
    if (cnt == 0) {
        free(v);
        v = NULL;
    } else if (cnt < (size_t)lim) {
        wg_outbox_row_t *sh = realloc(v, cnt * sizeof(*v));
        if (sh)
            v = sh;
    }
    *out = v;
    *n = cnt;
    return 0;
}

static int sq_outbox_get(wg_store_t *base, const char *id, wg_outbox_row_t *out)
{
    sq_store_t *s = (sq_store_t *)base;
    sqlite3_stmt *st = NULL;
    int rv, rc, oom = 0;
    memset(out, 0, sizeof(*out));
    if ((rv = prep(s, "SELECT " OUTBOX_COLS " FROM outbox WHERE id = ?1", &st)) != 0)
        return rv;
    bind_text(st, 1, id);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        read_outbox_row(st, out, &oom);
        rv = oom ? WG_ENOMEM : 0;
    } else {
        rv = rc == SQLITE_DONE ? WG_ENOTFOUND : fail(s, "outbox_get");
    }
    sqlite3_finalize(st);
    return rv;
}

static int sq_outbox_pending_instances(wg_store_t *base, wg_store_key_cb cb, void *arg)
{
    sq_store_t *s = (sq_store_t *)base;
    sqlite3_stmt *st = NULL;
    int rv, rc;
    /* a skip-scan over the (state, instance_id, seq) index: one probe per instance instead of
     * one step per pending row (DISTINCT would walk all of them) */
    if ((rv = prep(s,
                   "WITH RECURSIVE t(i) AS (SELECT (SELECT MIN(instance_id) FROM outbox WHERE "
                   "state = 'pending') UNION ALL SELECT (SELECT MIN(instance_id) FROM outbox "
                   "WHERE state = 'pending' AND instance_id > t.i) FROM t WHERE t.i IS NOT NULL) "
                   "SELECT i FROM t WHERE i IS NOT NULL",
                   &st)))
        return rv;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        if ((rv = cb((const char *)sqlite3_column_text(st, 0), arg)) != 0)
            break;
    if (!rv && rc != SQLITE_DONE)
        rv = fail(s, "outbox_pending_instances");
    sqlite3_finalize(st);
    return rv;
}

static int sq_outbox_mark(wg_store_t *base, const wg_outbox_mark_t *m, size_t n)
{
    sq_store_t *s = (sq_store_t *)base;
    sqlite3_stmt *st = NULL;
    int64_t now = wg_store_now_ms();
    int rv;
    if ((rv = exec(s, "BEGIN IMMEDIATE")) != 0)
        return rv;
    if ((rv = prep(s,
                   "UPDATE outbox SET state = ?2, attempts = ?3, next_attempt_at = ?4, "
                   "delivered_at = CASE WHEN ?2 = 'delivered' THEN ?5 ELSE delivered_at END, "
                   "last_error = ?6 WHERE id = ?1",
                   &st)) != 0)
        goto out;
    for (size_t i = 0; i < n; i++) {
        sqlite3_reset(st);
        bind_text(st, 1, m[i].id);
        bind_text(st, 2, m[i].state);
        sqlite3_bind_int(st, 3, m[i].attempts);
        if (m[i].next_attempt_at)
            sqlite3_bind_int64(st, 4, m[i].next_attempt_at);
        else
            sqlite3_bind_null(st, 4);
        sqlite3_bind_int64(st, 5, now);
        bind_text(st, 6, m[i].last_error);
        if (sqlite3_step(st) != SQLITE_DONE) {
            rv = fail(s, "outbox_mark");
            goto out;
        }
    }
    rv = exec(s, "COMMIT");
out:
    sqlite3_finalize(st);
    if (rv)
        rollback(s);
    return rv;
}

static int sq_outbox_replay(wg_store_t *base, const char *instance_id, const char *id)
{
    sq_store_t *s = (sq_store_t *)base;
    sqlite3_stmt *st = NULL;
    int rv;
    if ((rv = prep(s,
                   "UPDATE outbox SET state = 'pending', attempts = 0, next_attempt_at = NULL "
                   "WHERE id = ?1 AND instance_id = ?2 AND state = 'failed'",
                   &st)) != 0)
        return rv;
    bind_text(st, 1, id);
    bind_text(st, 2, instance_id);
    if (sqlite3_step(st) != SQLITE_DONE)
        rv = fail(s, "outbox_replay");
    else if (sqlite3_changes(s->db) == 0)
        rv = exists(s, "SELECT 1 FROM outbox WHERE id = ?1 AND instance_id = ?2", id,
                    instance_id) > 0
                 ? WG_EEXIST
                 : WG_ENOTFOUND;
    sqlite3_finalize(st);
    return rv;
}

static int sq_outbox_counts(wg_store_t *base, wg_store_count_cb cb, void *arg)
{
    sq_store_t *s = (sq_store_t *)base;
    sqlite3_stmt *st = NULL;
    int rv, rc;
    if ((rv = prep(s, "SELECT state, COUNT(*) FROM outbox GROUP BY state", &st)) != 0)
        return rv;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        cb((const char *)sqlite3_column_text(st, 0), sqlite3_column_int64(st, 1), arg);
    rv = rc == SQLITE_DONE ? 0 : fail(s, "outbox_counts");
    sqlite3_finalize(st);
    return rv;
}

static int sq_outbox_last_seq(wg_store_t *base, const char *instance_id, int64_t *seq)
{
    sq_store_t *s = (sq_store_t *)base;
    sqlite3_stmt *st = NULL;
    int rv;
    *seq = 0;
    if ((rv = prep(s, "SELECT COALESCE(MAX(seq), 0) FROM outbox WHERE instance_id = ?1", &st)))
        return rv;
    bind_text(st, 1, instance_id);
    if (sqlite3_step(st) == SQLITE_ROW)
        *seq = sqlite3_column_int64(st, 0);
    else
        rv = fail(s, "outbox_last_seq");
    sqlite3_finalize(st);
    return rv;
}

static int sq_event_append_once(wg_store_t *base, const char *instance_id,
                                const wg_store_event_t *ev, const char *key, char *id_out,
                                size_t cap, int *dup)
{
    sq_store_t *s = (sq_store_t *)base;
    sqlite3_stmt *st = NULL;
    char id[40];
    int64_t now = wg_store_now_ms();
    int rv, rc;
    *dup = 0;
    if ((rv = wg_store_event_id(id, sizeof(id), now)) != 0)
        return rv;
    if ((rv = exec(s, "BEGIN IMMEDIATE")) != 0)
        return rv;
    if ((rv = prep(s, "SELECT id FROM outbox WHERE instance_id = ?1 AND dedupe_key = ?2", &st)))
        goto out;
    bind_text(st, 1, instance_id);
    bind_text(st, 2, key);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        snprintf(id, sizeof(id), "%s", (const char *)sqlite3_column_text(st, 0));
        *dup = 1;
    } else if (rc != SQLITE_DONE) {
        rv = fail(s, "event_append_once");
        goto out;
    }
    sqlite3_finalize(st);
    st = NULL;
    if (!*dup) {
        if ((rv = prep(s,
                       "INSERT INTO outbox (id, instance_id, seq, event, payload, created_at, "
                       "dedupe_key) VALUES (?1, ?2, (SELECT COALESCE(MAX(seq), 0) + 1 FROM outbox "
                       "WHERE instance_id = ?2), ?3, ?4, ?5, ?6)",
                       &st)) != 0)
            goto out;
        bind_text(st, 1, id);
        bind_text(st, 2, instance_id);
        bind_text(st, 3, ev->name);
        bind_text(st, 4, ev->payload);
        sqlite3_bind_int64(st, 5, now);
        bind_text(st, 6, key);
        if (sqlite3_step(st) != SQLITE_DONE) {
            rv = fail(s, "event_append_once");
            goto out;
        }
    }
    rv = exec(s, "COMMIT");
out:
    sqlite3_finalize(st);
    if (rv)
        rollback(s);
    else
        snprintf(id_out, cap, "%s", id);
    return rv;
}

static const wg_store_ops_t sqlite_ops = {
    .name = "sqlite",
    .close = sq_close,
    .schema_version = sq_schema_version,
    .meta_get = sq_meta_get,
    .meta_insert = sq_meta_insert,
    .account_insert = sq_account_insert,
    .account_get = sq_account_get,
    .account_list = sq_account_list,
    .account_update = sq_account_update,
    .instance_insert = sq_instance_insert,
    .instance_get = sq_instance_get,
    .instance_list = sq_instance_list,
    .instance_update = sq_instance_update,
    .instance_set_status = sq_instance_set_status,
    .instance_delete = sq_instance_delete,
    .instance_counts = sq_instance_counts,
    .outbox_list = sq_outbox_list,
    .creds_get = sq_creds_get,
    .creds_put = sq_creds_put,
    .creds_delete = sq_creds_delete,
    .prekeys_put = sq_prekeys_put,
    .prekeys_next_id = sq_prekeys_next_id,
    .event_append = sq_event_append,
    .instance_set_identity = sq_instance_set_identity,
    .prekey_get = sq_prekey_get,
    .prekey_delete = sq_prekey_delete,
    .signal_get = sq_signal_get,
    .signal_put = sq_signal_put,
    .signal_delete = sq_signal_delete,
    .signal_keys = sq_signal_keys,
    .outbox_query = sq_outbox_query,
    .outbox_get = sq_outbox_get,
    .outbox_pending_instances = sq_outbox_pending_instances,
    .outbox_mark = sq_outbox_mark,
    .outbox_replay = sq_outbox_replay,
    .outbox_counts = sq_outbox_counts,
    .outbox_last_seq = sq_outbox_last_seq,
    .event_append_once = sq_event_append_once,
};

/* Once per process, before the first connection: SQLite's memory statistics take one global
 * mutex around every allocation, which all our threads (HTTP and engine, one connection each)
 * would contend on. We never read those statistics. */
static pthread_once_t sqlite_once = PTHREAD_ONCE_INIT;
static void sqlite_global_init(void)
{
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

int wg_store_sqlite_open(const char *path, wg_store_t **out)
{
    pthread_once(&sqlite_once, sqlite_global_init);
    sq_store_t *s = calloc(1, sizeof(*s));
    int rv = 0;
    *out = NULL;
    if (!s)
        return WG_ENOMEM;
    s->base.ops = &sqlite_ops;
    if (sqlite3_open_v2(path, &s->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK) {
        wg_log(WG_LOG_ERROR, "store", "op=open path=%s err=\"%s\"", path,
               s->db ? sqlite3_errmsg(s->db) : "out of memory");
        rv = WG_ESTORE;
        goto out;
    }
    sqlite3_busy_timeout(s->db, 5000);
    if ((rv = exec(s, "PRAGMA journal_mode=WAL")) != 0 ||
        (rv = exec(s, "PRAGMA synchronous=FULL")) != 0 ||
        (rv = exec(s, "PRAGMA foreign_keys=ON")) != 0 || (rv = migrate(s)) != 0)
        goto out;
    *out = &s->base;
    return 0;
out:
    sqlite3_close(s->db);
    free(s);
    return rv;
}
