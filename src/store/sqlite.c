/* sqlite.c - the SQLite backend of store.h.
 *
 * One connection per wg_store_t (one per thread; SQLITE_OPEN_NOMUTEX). WAL journal,
 * synchronous=FULL (a commit is on disk before we answer: NORMAL would survive a process crash
 * but not a power loss, and our promise is that nothing acknowledged is lost), foreign keys
 * on, busy timeout 5 s. Write transactions use BEGIN IMMEDIATE so two threads never deadlock
 * upgrading a read lock. SQLite's busy handler polls (it sleeps and retries, no queue), so a
 * writer can lose the lock to busier threads for longer than the timeout: callers that must
 * not give up (the dispatcher's outcomes) retry from their own loop.
 * Migrations are numbered SQL scripts in `migrations[]`, applied in order at open, each in its
 * own transaction, recorded in schema_migrations; an open that finds the schema current takes
 * no write lock. Never edit a shipped migration: append one.
 *
 * Statements: every query is a fixed text in `sql[]`, prepared the first time the connection
 * uses it (SQLITE_PREPARE_PERSISTENT) and kept until close; compiling SQL is most of the cost of
 * a point lookup. The cache belongs to the connection, and the connection to one thread, so no
 * lock guards it. A statement must be released (reset + bindings cleared) before the operation
 * returns: a statement left mid-step keeps its read snapshot open, so this connection would not
 * see other threads' commits and the WAL could not be checkpointed. The helpers below (one,
 * many, each, run) release what they step; callers never step statements themselves. */
#include "store/store.h"
#include "util/err.h"
#include "util/log.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
#define ACC_SELECT                                                                                 \
    "SELECT a.id, a.name, a.plan, a.created_at, a.updated_at, "                                   \
    "(SELECT COUNT(*) FROM instances i WHERE i.owner_id = a.id), a.key_hash FROM accounts a "
#define OUTBOX_COLS                                                                                \
    "id, instance_id, seq, event, payload, created_at, state, attempts, "                          \
    "COALESCE(next_attempt_at, 0), COALESCE(delivered_at, 0), last_error"
/* instance filters: ?5 ?6 are the list's LIMIT and OFFSET (bound, unused, in the count) */
#define FILTER_WHERE                                                                               \
    " WHERE (?1 IS NULL OR owner_id = ?1) AND (?2 IS NULL OR id = ?2)"                             \
    " AND (?3 IS NULL OR status = ?3) AND (?4 IS NULL OR instr(lower(name), lower(?4)) > 0)"       \
    " AND (?7 IS NULL OR api_name = ?7)"
/* the next per-instance seq of the outbox (instance id in ?2) */
#define NEXT_SEQ "(SELECT COALESCE(MAX(seq), 0) + 1 FROM outbox WHERE instance_id = ?2)"

typedef enum {
    Q_BEGIN, Q_COMMIT, Q_ROLLBACK, Q_SAVEPOINT, Q_RELEASE, Q_ROLLBACK_TO, Q_VERSION, Q_MIGRATED,
    Q_META_GET, Q_META_INSERT,
    Q_ACC_INSERT, Q_ACC_BY_ID, Q_ACC_BY_KEY, Q_ACC_LIST, Q_ACC_UPDATE,
    Q_INST_OWNED, Q_INST_NAME_TAKEN, Q_INST_API_NAME_TAKEN, Q_INST_TOKEN_TAKEN, Q_INST_INSERT,
    Q_INST_BY_ID, Q_INST_BY_TOKEN, Q_INST_COUNT, Q_INST_LIST, Q_INST_PATCH, Q_INST_STATUS,
    Q_INST_SET_STATUS, Q_INST_DELETE, Q_INST_COUNTS, Q_INST_SET_IDENTITY,
    Q_EVENT_APPEND, Q_OUTBOX_LIST, Q_OUTBOX_QUERY, Q_OUTBOX_GET, Q_OUTBOX_BY_KEY,
    Q_OUTBOX_OF_INSTANCE, Q_OUTBOX_PENDING, Q_OUTBOX_MARK, Q_OUTBOX_REPLAY, Q_OUTBOX_COUNTS,
    Q_OUTBOX_LAST_SEQ,
    Q_CREDS_GET, Q_CREDS_PUT, Q_CREDS_DELETE, Q_PREKEYS_DELETE, Q_PREKEY_PUT, Q_PREKEYS_NEXT,
    Q_PREKEY_GET, Q_PREKEY_DELETE,
    Q_SIGNAL_GET, Q_SIGNAL_PUT, Q_SIGNAL_DELETE, Q_SIGNAL_DELETE_ALL, Q_SIGNAL_KEYS,
    Q_COUNT
} sq_query_t;

static const char *const sql[Q_COUNT] = {
    [Q_BEGIN] = "BEGIN IMMEDIATE",
    [Q_COMMIT] = "COMMIT",
    [Q_ROLLBACK] = "ROLLBACK",
    [Q_SAVEPOINT] = "SAVEPOINT op",
    [Q_RELEASE] = "RELEASE op",
    [Q_ROLLBACK_TO] = "ROLLBACK TO op",
    [Q_VERSION] = "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
    [Q_MIGRATED] = "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)",
    [Q_META_GET] = "SELECT value FROM meta WHERE key = ?",
    [Q_META_INSERT] = "INSERT INTO meta (key, value) VALUES (?, ?)",
    [Q_ACC_INSERT] = "INSERT INTO accounts (id, name, plan, key_hash, created_at, updated_at) "
                     "VALUES (?, ?, ?, ?, ?, ?)",
    [Q_ACC_BY_ID] = ACC_SELECT "WHERE a.id = ?",
    [Q_ACC_BY_KEY] = ACC_SELECT "WHERE a.key_hash = ?",
    [Q_ACC_LIST] = ACC_SELECT "ORDER BY a.created_at, a.id",
    [Q_ACC_UPDATE] = "UPDATE accounts SET name = COALESCE(?, name), plan = COALESCE(?, plan), "
                     "key_hash = COALESCE(?, key_hash), updated_at = ? WHERE id = ?",
    [Q_INST_OWNED] = "SELECT COUNT(*) FROM instances WHERE owner_id = ?",
    [Q_INST_NAME_TAKEN] = "SELECT 1 FROM instances WHERE owner_id = ? AND name = ?",
    [Q_INST_API_NAME_TAKEN] = "SELECT 1 FROM instances WHERE api_name = ?",
    [Q_INST_TOKEN_TAKEN] = "SELECT 1 FROM instances WHERE token_hash = ?",
    [Q_INST_INSERT] = "INSERT INTO instances (id, owner_id, name, api_name, phone, integration, "
                      "status, status_reason, dialect, token_hash, webhook, settings, proxy, "
                      "sinks, chatwoot, created_at, updated_at) "
                      "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
    [Q_INST_BY_ID] = "SELECT " INST_COLS " FROM instances WHERE id = ?",
    [Q_INST_BY_TOKEN] = "SELECT " INST_COLS " FROM instances WHERE token_hash = ?",
    [Q_INST_COUNT] = "SELECT COUNT(*) FROM instances" FILTER_WHERE,
    [Q_INST_LIST] = "SELECT " INST_COLS " FROM instances" FILTER_WHERE
                    " ORDER BY created_at, id LIMIT ?5 OFFSET ?6",
    [Q_INST_PATCH] = "UPDATE instances SET webhook = COALESCE(?1, webhook), "
                     "settings = COALESCE(?2, settings), "
                     "proxy = CASE WHEN ?3 THEN ?4 ELSE proxy END, updated_at = ?5 WHERE id = ?6",
    [Q_INST_STATUS] = "SELECT status FROM instances WHERE id = ?",
    [Q_INST_SET_STATUS] = "UPDATE instances SET status = ?, status_reason = ?, updated_at = ? "
                          "WHERE id = ?",
    [Q_INST_DELETE] = "DELETE FROM instances WHERE id = ?",
    [Q_INST_COUNTS] = "SELECT status, COUNT(*) FROM instances GROUP BY status ORDER BY status",
    [Q_INST_SET_IDENTITY] = "UPDATE instances SET jid = ?, phone = COALESCE(?, phone), "
                            "push_name = ?, updated_at = ? WHERE id = ?",
    [Q_EVENT_APPEND] = "INSERT INTO outbox (id, instance_id, seq, event, payload, created_at, "
                       "dedupe_key) VALUES (?1, ?2, " NEXT_SEQ ", ?3, ?4, ?5, ?6)",
    [Q_OUTBOX_LIST] = "SELECT " OUTBOX_COLS " FROM outbox "
                      "WHERE ?1 IS NULL OR instance_id = ?1 ORDER BY id",
    [Q_OUTBOX_QUERY] = "SELECT " OUTBOX_COLS " FROM outbox WHERE instance_id = ?1 AND "
                       "(?2 IS NULL OR state = ?2) AND seq > ?3 ORDER BY seq LIMIT ?4",
    [Q_OUTBOX_GET] = "SELECT " OUTBOX_COLS " FROM outbox WHERE id = ?1",
    [Q_OUTBOX_BY_KEY] = "SELECT id FROM outbox WHERE instance_id = ?1 AND dedupe_key = ?2",
    [Q_OUTBOX_OF_INSTANCE] = "SELECT 1 FROM outbox WHERE id = ?1 AND instance_id = ?2",
    /* a skip-scan over the (state, instance_id, seq) index: one probe per instance instead of
     * one step per pending row (DISTINCT would walk all of them) */
    [Q_OUTBOX_PENDING] = "WITH RECURSIVE t(i) AS (SELECT (SELECT MIN(instance_id) FROM outbox "
                         "WHERE state = 'pending') UNION ALL SELECT (SELECT MIN(instance_id) "
                         "FROM outbox WHERE state = 'pending' AND instance_id > t.i) FROM t "
                         "WHERE t.i IS NOT NULL) SELECT i FROM t WHERE i IS NOT NULL",
    [Q_OUTBOX_MARK] = "UPDATE outbox SET state = ?2, attempts = ?3, "
                      "next_attempt_at = NULLIF(?4, 0), "
                      "delivered_at = CASE WHEN ?2 = 'delivered' THEN ?5 ELSE delivered_at END, "
                      "last_error = ?6 WHERE id = ?1",
    [Q_OUTBOX_REPLAY] = "UPDATE outbox SET state = 'pending', attempts = 0, "
                        "next_attempt_at = NULL "
                        "WHERE id = ?1 AND instance_id = ?2 AND state = 'failed'",
    [Q_OUTBOX_COUNTS] = "SELECT state, COUNT(*) FROM outbox GROUP BY state",
    [Q_OUTBOX_LAST_SEQ] = "SELECT COALESCE(MAX(seq), 0) FROM outbox WHERE instance_id = ?1",
    [Q_CREDS_GET] = "SELECT blob FROM wa_creds WHERE instance_id = ?",
    [Q_CREDS_PUT] = "INSERT INTO wa_creds (instance_id, blob, updated_at) "
                    "SELECT ?1, ?2, ?3 WHERE EXISTS (SELECT 1 FROM instances WHERE id = ?1) "
                    "ON CONFLICT (instance_id) DO UPDATE SET blob = excluded.blob, "
                    "updated_at = excluded.updated_at",
    [Q_CREDS_DELETE] = "DELETE FROM wa_creds WHERE instance_id = ?",
    [Q_PREKEYS_DELETE] = "DELETE FROM wa_prekeys WHERE instance_id = ?",
    [Q_PREKEY_PUT] = "INSERT OR REPLACE INTO wa_prekeys (instance_id, key_id, blob, created_at) "
                     "VALUES (?, ?, ?, ?)",
    [Q_PREKEYS_NEXT] = "SELECT COALESCE(MAX(key_id), 0) + 1 FROM wa_prekeys WHERE instance_id = ?",
    [Q_PREKEY_GET] = "SELECT blob FROM wa_prekeys WHERE instance_id = ? AND key_id = ?",
    [Q_PREKEY_DELETE] = "DELETE FROM wa_prekeys WHERE instance_id = ? AND key_id = ?",
    [Q_SIGNAL_GET] = "SELECT blob FROM wa_signal WHERE instance_id = ? AND kind = ? AND key = ?",
    [Q_SIGNAL_PUT] = "INSERT INTO wa_signal (instance_id, kind, key, blob, updated_at) "
                     "SELECT ?1, ?2, ?3, ?4, ?5 WHERE EXISTS (SELECT 1 FROM instances WHERE id = "
                     "?1) ON CONFLICT (instance_id, kind, key) DO UPDATE SET blob = "
                     "excluded.blob, updated_at = excluded.updated_at",
    [Q_SIGNAL_DELETE] = "DELETE FROM wa_signal WHERE instance_id = ? AND kind = ? AND key = ?",
    [Q_SIGNAL_DELETE_ALL] = "DELETE FROM wa_signal WHERE instance_id = ?",
    /* substr() instead of LIKE: keys may contain '_' and '%' */
    [Q_SIGNAL_KEYS] = "SELECT key FROM wa_signal WHERE instance_id = ? AND kind = ? AND "
                      "substr(key, 1, ?) = ? ORDER BY key",
};

typedef struct {
    wg_store_t base;
    sqlite3 *db;
    sqlite3_stmt *stmt[Q_COUNT]; /* sql[q] once prepared; finalized at close */
    int txn;                     /* inside wg_store_txn_begin/_end */
} sq_store_t;

static int fail(sq_store_t *s, const char *what)
{
    wg_log(WG_LOG_ERROR, "store", "op=%s err=\"%s\"", what, sqlite3_errmsg(s->db));
    return WG_ESTORE;
}

/* Runs SQL text once (pragmas, migrations): not worth a cached statement. */
static int exec(sq_store_t *s, const char *text)
{
    char *msg = NULL;
    if (sqlite3_exec(s->db, text, NULL, NULL, &msg) != SQLITE_OK) {
        wg_log(WG_LOG_ERROR, "store", "op=exec err=\"%s\"", msg ? msg : "?");
        sqlite3_free(msg);
        return WG_ESTORE;
    }
    return 0;
}

/* The statement of query q, prepared on the connection's first use of it, with its parameters
 * bound in order from the arguments as `types` says: 't' const char * (NULL binds NULL),
 * 'i' int, 'I' int64_t, 'b' blob (const void *, size_t). Nothing is copied (SQLITE_STATIC):
 * the helpers that step it clear the bindings before the caller's buffers can go away.
 * NULL when preparing fails (logged); the stepping helpers take NULL as WG_ESTORE. */
static sqlite3_stmt *use(sq_store_t *s, sq_query_t q, const char *types, ...)
{
    sqlite3_stmt *st = s->stmt[q];
    va_list ap;
    if (!st) {
        if (sqlite3_prepare_v3(s->db, sql[q], -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) !=
            SQLITE_OK) {
            wg_log(WG_LOG_ERROR, "store", "op=prepare query=%d err=\"%s\"", (int)q,
                   sqlite3_errmsg(s->db));
            return NULL;
        }
        s->stmt[q] = st;
    }
    sqlite3_reset(st); /* a no-op unless a caller broke the release rule */
    va_start(ap, types);
    for (int i = 1; *types; types++, i++) {
        if (*types == 't') {
            const char *v = va_arg(ap, const char *);
            if (v)
                sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
            else
                sqlite3_bind_null(st, i);
        } else if (*types == 'i') {
            sqlite3_bind_int(st, i, va_arg(ap, int));
        } else if (*types == 'I') {
            sqlite3_bind_int64(st, i, va_arg(ap, int64_t));
        } else {
            const void *p = va_arg(ap, const void *);
            sqlite3_bind_blob(st, i, p, (int)va_arg(ap, size_t), SQLITE_STATIC);
        }
    }
    va_end(ap);
    return st;
}

/* Ends a use of st: reset (drops its read snapshot) and bindings cleared (no dangling
 * pointers into the caller's buffers). */
static void release(sqlite3_stmt *st)
{
    if (st) {
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
    }
}

/* Steps a statement that returns no rows and releases it: 0; WG_EEXIST on a constraint
 * violation (a unique key taken; an instance's unknown owner); WG_ENOTFOUND if must_change and
 * no row changed; WG_ESTORE (logged). */
static int run(sq_store_t *s, sqlite3_stmt *st, const char *what, int must_change)
{
    int rv = 0;
    if (!st)
        return WG_ESTORE;
    if (sqlite3_step(st) != SQLITE_DONE) {
        rv = (sqlite3_extended_errcode(s->db) & 0xff) == SQLITE_CONSTRAINT ? WG_EEXIST
                                                                             : fail(s, what);
    } else if (must_change && !sqlite3_changes(s->db)) {
        rv = WG_ENOTFOUND;
    }
    release(st);
    return rv;
}

/* Reads the current row of st into out; 0 or WG_ENOMEM (then nothing is left allocated). */
typedef int (*sq_read_fn)(sqlite3_stmt *st, void *out);

/* Steps st once and releases it: its first row read with rd (NULL: only "is there a row"),
 * WG_ENOTFOUND without a row, WG_ESTORE. */
static int one(sq_store_t *s, sqlite3_stmt *st, const char *what, sq_read_fn rd, void *out)
{
    int rc, rv;
    if (!st)
        return WG_ESTORE;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        rv = rd ? rd(st, out) : 0;
    else
        rv = rc == SQLITE_DONE ? WG_ENOTFOUND : fail(s, what);
    release(st);
    return rv;
}

/* Steps st through all its rows and releases it, reading each with rd into a growing array of
 * `size`-byte records: *v (sized to what it holds: the dispatcher keeps every instance's last
 * batch, issue 8; NULL when empty) and *n. On failure *v and *n are the records read so far,
 * for the caller's list free. */
static int many(sq_store_t *s, sqlite3_stmt *st, const char *what, sq_read_fn rd, size_t size,
                void **v, size_t *n)
{
    size_t cap = 0;
    int rc = SQLITE_DONE, rv = 0;
    *v = NULL;
    *n = 0;
    if (!st)
        return WG_ESTORE;
    while (!rv && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) {
            size_t nc = cap ? cap * 2 : 16;
            void *nv = realloc(*v, nc * size);
            if (!nv) {
                rv = WG_ENOMEM;
                break;
            }
            *v = nv;
            cap = nc;
        }
        if ((rv = rd(st, (char *)*v + *n * size)) == 0)
            (*n)++;
    }
    if (!rv && rc != SQLITE_DONE)
        rv = fail(s, what);
    release(st);
    if (!rv && *n == 0) {
        free(*v);
        *v = NULL;
    } else if (!rv && *n < cap) {
        void *sh = realloc(*v, *n * size);
        if (sh)
            *v = sh;
    }
    return rv;
}

/* Steps st through its rows and releases it, calling fn(st, arg) on each; a non-zero return
 * from fn stops and is returned. */
static int each(sq_store_t *s, sqlite3_stmt *st, const char *what,
                int (*fn)(sqlite3_stmt *st, void *arg), void *arg)
{
    int rc, rv = 0;
    if (!st)
        return WG_ESTORE;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        if ((rv = fn(st, arg)) != 0)
            break;
    if (!rv && rc != SQLITE_DONE)
        rv = fail(s, what);
    release(st);
    return rv;
}

/* Steps a statement whose failure changes nothing for the caller (a rollback that fails because
 * SQLite already rolled back) and releases it. */
static void step_quiet(sq_store_t *s, sq_query_t q)
{
    sqlite3_stmt *st = use(s, q, "");
    if (st)
        sqlite3_step(st);
    release(st);
}

/* Write transactions: begin() takes the write lock at once (BEGIN IMMEDIATE); finish(s, rv)
 * commits when rv is 0 and rolls back otherwise (or when the commit fails), returning the
 * outcome, so every write operation ends in `return finish(s, rv)`. Inside a caller's
 * transaction (wg_store_txn_begin) the operation is a savepoint instead: released on success
 * (the caller's end commits it), rolled back to on failure (the rest of the caller's
 * transaction stays). */
static int begin(sq_store_t *s)
{
    return run(s, use(s, s->txn ? Q_SAVEPOINT : Q_BEGIN, ""), "begin", 0);
}

static int finish(sq_store_t *s, int rv)
{
    if (s->txn) {
        if (!rv)
            rv = run(s, use(s, Q_RELEASE, ""), "release", 0);
        if (rv) {
            step_quiet(s, Q_ROLLBACK_TO);
            step_quiet(s, Q_RELEASE);
        }
        return rv;
    }
    if (!rv)
        rv = run(s, use(s, Q_COMMIT, ""), "commit", 0);
    if (rv)
        step_quiet(s, Q_ROLLBACK); /* fails harmlessly when SQLite already rolled back */
    return rv;
}

static int sq_txn_begin(wg_store_t *base)
{
    sq_store_t *s = (sq_store_t *)base;
    int rv;
    if (s->txn)
        return WG_EINVAL;
    if ((rv = begin(s)) == 0)
        s->txn = 1;
    return rv;
}

static void sq_busy_timeout(wg_store_t *base, int ms)
{
    sqlite3_busy_timeout(((sq_store_t *)base)->db, ms);
}

static int sq_txn_end(wg_store_t *base, int rv)
{
    sq_store_t *s = (sq_store_t *)base;
    if (!s->txn)
        return WG_EINVAL;
    s->txn = 0;
    return finish(s, rv);
}

/* ---- row readers (sq_read_fn) ---- */

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

static int read_text(sqlite3_stmt *st, void *out)
{
    int oom = 0;
    *(char **)out = col(st, 0, &oom);
    return oom ? WG_ENOMEM : 0;
}

static int read_int64(sqlite3_stmt *st, void *out)
{
    *(int64_t *)out = sqlite3_column_int64(st, 0);
    return 0;
}

typedef struct {
    uint8_t **blob;
    size_t *len;
} sq_blob_t;

/* column 0 into a malloc'd copy (1 byte allocated for an empty blob) */
static int read_blob(sqlite3_stmt *st, void *out)
{
    sq_blob_t *b = out;
    int n = sqlite3_column_bytes(st, 0);
    const void *p = sqlite3_column_blob(st, 0);
    if (!(*b->blob = malloc(n > 0 ? (size_t)n : 1)))
        return WG_ENOMEM;
    if (n > 0)
        memcpy(*b->blob, p, (size_t)n);
    *b->len = (size_t)n;
    return 0;
}

static int read_account(sqlite3_stmt *st, void *out)
{
    wg_account_t *a = out;
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

static int read_instance(sqlite3_stmt *st, void *out)
{
    wg_instance_t *in = out;
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

static int read_outbox(sqlite3_stmt *st, void *out)
{
    wg_outbox_row_t *r = out;
    const unsigned char *le;
    int oom = 0;
    memset(r, 0, sizeof(*r));
    snprintf(r->id, sizeof(r->id), "%s", (const char *)sqlite3_column_text(st, 0));
    snprintf(r->instance_id, sizeof(r->instance_id), "%s",
             (const char *)sqlite3_column_text(st, 1));
    r->seq = sqlite3_column_int64(st, 2);
    snprintf(r->event, sizeof(r->event), "%s", (const char *)sqlite3_column_text(st, 3));
    r->payload = col(st, 4, &oom);
    r->created_at = sqlite3_column_int64(st, 5);
    snprintf(r->state, sizeof(r->state), "%s", (const char *)sqlite3_column_text(st, 6));
    r->attempts = sqlite3_column_int(st, 7);
    r->next_attempt_at = sqlite3_column_int64(st, 8);
    r->delivered_at = sqlite3_column_int64(st, 9);
    if ((le = sqlite3_column_text(st, 10)))
        snprintf(r->last_error, sizeof(r->last_error), "%s", (const char *)le);
    return oom ? WG_ENOMEM : 0;
}

typedef struct {
    wg_store_count_cb count;
    wg_store_key_cb key;
    void *arg;
} sq_cb_t;

static int count_row(sqlite3_stmt *st, void *arg)
{
    sq_cb_t *c = arg;
    c->count((const char *)sqlite3_column_text(st, 0), sqlite3_column_int64(st, 1), c->arg);
    return 0;
}

static int key_row(sqlite3_stmt *st, void *arg)
{
    sq_cb_t *c = arg;
    const char *k = (const char *)sqlite3_column_text(st, 0);
    return k ? c->key(k, c->arg) : 0;
}

/* ---- migrations ---- */

static int current_version(sq_store_t *s)
{
    int64_t v = -1;
    return one(s, use(s, Q_VERSION, ""), "schema_version", read_int64, &v) ? -1 : (int)v;
}

static int migrate(sq_store_t *s)
{
    int rv = 0;
    if ((rv = exec(s, "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY "
                      "KEY, applied_at INTEGER NOT NULL)")) != 0)
        return rv;
    /* Up to date (every open but the first of a new schema): no write lock. Each thread opens
     * its own connection at start, while the engine threads may hold the lock for seconds
     * (thousands of instances logging in): a failed BEGIN here stopped the whole gateway. */
    if (current_version(s) == NMIGRATIONS)
        return 0;
    for (;;) {
        if ((rv = begin(s)) != 0)
            return rv;
        int v = current_version(s);
        if (v < 0 || v > NMIGRATIONS) {
            wg_log(WG_LOG_ERROR, "store", "op=migrate version=%d known=%d", v, NMIGRATIONS);
            return finish(s, WG_ESTORE);
        }
        if (v == NMIGRATIONS)
            return finish(s, 0);
        if ((rv = exec(s, migrations[v])) == 0)
            rv = run(s, use(s, Q_MIGRATED, "iI", v + 1, wg_store_now_ms()), "migrate", 0);
        if ((rv = finish(s, rv)) != 0)
            return rv;
        wg_log(WG_LOG_INFO, "store", "op=migrate version=%d", v + 1);
    }
}

static int sq_schema_version(wg_store_t *base)
{
    return current_version((sq_store_t *)base);
}

/* ---- meta ---- */

static int sq_meta_get(wg_store_t *base, const char *key, char **val)
{
    sq_store_t *s = (sq_store_t *)base;
    *val = NULL;
    return one(s, use(s, Q_META_GET, "t", key), "meta_get", read_text, val);
}

static int sq_meta_insert(wg_store_t *base, const char *key, const char *val)
{
    sq_store_t *s = (sq_store_t *)base;
    return run(s, use(s, Q_META_INSERT, "tt", key, val), "meta_insert", 0);
}

/* ---- accounts ---- */

static int sq_account_insert(wg_store_t *base, const wg_account_t *a, const char *key_hash)
{
    sq_store_t *s = (sq_store_t *)base;
    return run(s,
               use(s, Q_ACC_INSERT, "ttttII", a->id, a->name, a->plan, key_hash, a->created_at,
                   a->updated_at),
               "account_insert", 0);
}

static int sq_account_get(wg_store_t *base, const char *id, const char *key_hash,
                          wg_account_t *out)
{
    sq_store_t *s = (sq_store_t *)base;
    memset(out, 0, sizeof(*out));
    return one(s, use(s, id ? Q_ACC_BY_ID : Q_ACC_BY_KEY, "t", id ? id : key_hash),
               "account_get", read_account, out);
}

static int sq_account_list(wg_store_t *base, wg_account_t **out, size_t *n)
{
    sq_store_t *s = (sq_store_t *)base;
    void *v;
    int rv = many(s, use(s, Q_ACC_LIST, ""), "account_list", read_account, sizeof(**out), &v, n);
    if (rv) {
        wg_account_list_free(v, *n);
        *n = 0;
        v = NULL;
    }
    *out = v;
    return rv;
}

static int sq_account_update(wg_store_t *base, const char *id, const char *name,
                             const char *plan, const char *key_hash)
{
    sq_store_t *s = (sq_store_t *)base;
    return run(s,
               use(s, Q_ACC_UPDATE, "tttIt", name, plan, key_hash, wg_store_now_ms(), id),
               "account_update", 1);
}

/* ---- instances ---- */

/* Appends ev (with dedupe key `key`, or NULL) for instance_id inside the caller's transaction;
 * its new id into id_out (>= 40 bytes) when not NULL. */
static int append_event(sq_store_t *s, const char *instance_id, const wg_store_event_t *ev,
                        const char *key, char *id_out)
{
    char id[40];
    int64_t now = wg_store_now_ms();
    int rv;
    if ((rv = wg_store_event_id(id, sizeof(id), now)) != 0)
        return rv;
    rv = run(s,
             use(s, Q_EVENT_APPEND, "ttttIt", id, instance_id, ev->name, ev->payload, now, key),
             "append_event", 0);
    if (!rv && id_out)
        memcpy(id_out, id, sizeof(id));
    return rv;
}

/* 0 when st finds no row; WG_EEXIST with *conflict = field when it does; WG_ESTORE. */
static int vacant(sq_store_t *s, sqlite3_stmt *st, const char *field, const char **conflict)
{
    int rv = one(s, st, "instance_unique", NULL, NULL);
    if (rv == WG_ENOTFOUND)
        return 0;
    if (rv == 0) {
        *conflict = field;
        return WG_EEXIST;
    }
    return rv;
}

static int sq_instance_insert(wg_store_t *base, const wg_instance_t *in, const char *token_hash,
                              int64_t limit, const wg_store_event_t *ev, const char **conflict)
{
    sq_store_t *s = (sq_store_t *)base;
    int64_t have = 0;
    int rv;
    *conflict = NULL;
    if ((rv = begin(s)) != 0)
        return rv;
    /* the count and the insert under one write lock: two threads cannot both take the last slot */
    if (limit > 0 &&
        (rv = one(s, use(s, Q_INST_OWNED, "t", in->owner_id), "instance_count", read_int64,
                  &have)) == 0 &&
        have >= limit)
        rv = WG_ELIMIT;
    if (!rv)
        rv = vacant(s, use(s, Q_INST_NAME_TAKEN, "tt", in->owner_id, in->name), "name", conflict);
    if (!rv && in->api_name)
        rv = vacant(s, use(s, Q_INST_API_NAME_TAKEN, "t", in->api_name), "api_name", conflict);
    if (!rv)
        rv = vacant(s, use(s, Q_INST_TOKEN_TAKEN, "t", token_hash), "token", conflict);
    if (!rv)
        rv = run(s,
                 use(s, Q_INST_INSERT, "tttttttttttttttII", in->id, in->owner_id, in->name,
                     in->api_name, in->phone,
                     in->integration ? in->integration : "WHATSAPP-BAILEYS", in->status,
                     in->status_reason, in->dialect ? in->dialect : "native", token_hash,
                     in->webhook ? in->webhook : "{}", in->settings ? in->settings : "{}",
                     in->proxy, in->sinks ? in->sinks : "{}",
                     in->chatwoot ? in->chatwoot : "{}", in->created_at, in->updated_at),
                 "instance_insert", 0);
    if (!rv && ev)
        rv = append_event(s, in->id, ev, NULL, NULL);
    return finish(s, rv);
}

static int sq_instance_get(wg_store_t *base, const char *id, const char *token_hash,
                           wg_instance_t *out)
{
    sq_store_t *s = (sq_store_t *)base;
    memset(out, 0, sizeof(*out));
    return one(s, use(s, id ? Q_INST_BY_ID : Q_INST_BY_TOKEN, "t", id ? id : token_hash),
               "instance_get", read_instance, out);
}

static int sq_instance_list(wg_store_t *base, const wg_instance_filter_t *f, wg_instance_t **out,
                            size_t *n, int64_t *total)
{
    sq_store_t *s = (sq_store_t *)base;
    int64_t lim = f->limit > 0 ? f->limit : -1, off = f->offset > 0 ? f->offset : 0;
    void *v = NULL;
    *out = NULL;
    *n = 0;
    *total = 0;
#define FILTER_ARGS "ttttIIt", f->owner_id, f->instance_id, f->status, f->name_like, lim, off, \
                    f->api_name
    int rv = one(s, use(s, Q_INST_COUNT, FILTER_ARGS), "instance_count", read_int64, total);
    if (!rv)
        rv = many(s, use(s, Q_INST_LIST, FILTER_ARGS), "instance_list", read_instance,
                  sizeof(**out), &v, n);
#undef FILTER_ARGS
    if (rv) {
        wg_instance_list_free(v, *n);
        *n = 0;
        return rv;
    }
    *out = v;
    return 0;
}

static int sq_instance_patch(wg_store_t *base, const char *id, wg_store_merge_cb merge, void *arg,
                             wg_instance_t *out)
{
    sq_store_t *s = (sq_store_t *)base;
    wg_instance_t cur;
    wg_instance_change_t chg = {0};
    int rv;
    if (out)
        memset(out, 0, sizeof(*out));
    if ((rv = begin(s)) != 0)
        return rv;
    /* read under the write lock: no other patch can commit between this read and our write */
    if ((rv = one(s, use(s, Q_INST_BY_ID, "t", id), "instance_get", read_instance, &cur)) == 0) {
        rv = merge(&cur, &chg, arg);
        wg_instance_dispose(&cur);
    }
    if (!rv)
        rv = run(s,
                 use(s, Q_INST_PATCH, "ttitIt", chg.webhook, chg.settings, chg.set_proxy ? 1 : 0,
                     chg.proxy, wg_store_now_ms(), id),
                 "instance_patch", 1);
    if (!rv && out)
        rv = one(s, use(s, Q_INST_BY_ID, "t", id), "instance_get", read_instance, out);
    if ((rv = finish(s, rv)) != 0 && out)
        wg_instance_dispose(out);
    return rv;
}

static int sq_instance_set_status(wg_store_t *base, const char *id, const char *status,
                                  const char *reason, wg_store_status_ev_cb make_ev, void *arg,
                                  char **prev)
{
    sq_store_t *s = (sq_store_t *)base;
    char *old = NULL;
    wg_store_event_t ev = {0};
    int rv;
    if (prev)
        *prev = NULL;
    if ((rv = begin(s)) != 0)
        return rv;
    if ((rv = one(s, use(s, Q_INST_STATUS, "t", id), "status_get", read_text, &old)) == 0)
        rv = run(s, use(s, Q_INST_SET_STATUS, "ttIt", status, reason, wg_store_now_ms(), id),
                 "status_set", 0);
    if (!rv && make_ev && (rv = make_ev(old, &ev, arg)) == 0 && ev.name)
        rv = append_event(s, id, &ev, NULL, NULL);
    if ((rv = finish(s, rv)) == 0 && prev)
        *prev = old;
    else
        free(old);
    return rv;
}

static int sq_instance_delete(wg_store_t *base, const char *id, const wg_store_event_t *ev)
{
    sq_store_t *s = (sq_store_t *)base;
    int rv;
    if ((rv = begin(s)) != 0)
        return rv;
    rv = run(s, use(s, Q_INST_DELETE, "t", id), "instance_delete", 1);
    if (!rv && ev)
        rv = append_event(s, id, ev, NULL, NULL);
    return finish(s, rv);
}

static int sq_instance_counts(wg_store_t *base, wg_store_count_cb cb, void *arg)
{
    sq_store_t *s = (sq_store_t *)base;
    sq_cb_t c = {.count = cb, .arg = arg};
    return each(s, use(s, Q_INST_COUNTS, ""), "instance_counts", count_row, &c);
}

static int sq_instance_set_identity(wg_store_t *base, const char *id, const char *jid,
                                    const char *phone, const char *push_name)
{
    sq_store_t *s = (sq_store_t *)base;
    return run(s,
               use(s, Q_INST_SET_IDENTITY, "tttIt", jid, phone, push_name, wg_store_now_ms(), id),
               "instance_set_identity", 1);
}

/* ---- outbox ---- */

/* many() over outbox rows into *out / *n; wg_outbox_list_free on failure. */
static int outbox_rows(sq_store_t *s, sqlite3_stmt *st, const char *what, wg_outbox_row_t **out,
                       size_t *n)
{
    void *v;
    int rv = many(s, st, what, read_outbox, sizeof(**out), &v, n);
    if (rv) {
        wg_outbox_list_free(v, *n);
        *n = 0;
        v = NULL;
    }
    *out = v;
    return rv;
}

static int sq_outbox_list(wg_store_t *base, const char *instance_id, wg_outbox_row_t **out,
                          size_t *n)
{
    sq_store_t *s = (sq_store_t *)base;
    return outbox_rows(s, use(s, Q_OUTBOX_LIST, "t", instance_id), "outbox_list", out, n);
}

static int sq_outbox_query(wg_store_t *base, const wg_outbox_query_t *q, wg_outbox_row_t **out,
                           size_t *n)
{
    sq_store_t *s = (sq_store_t *)base;
    return outbox_rows(s,
                       use(s, Q_OUTBOX_QUERY, "ttII", q->instance_id, q->state, q->after_seq,
                           q->limit > 0 ? q->limit : (int64_t)100),
                       "outbox_query", out, n);
}

static int sq_outbox_get(wg_store_t *base, const char *id, wg_outbox_row_t *out)
{
    sq_store_t *s = (sq_store_t *)base;
    memset(out, 0, sizeof(*out));
    return one(s, use(s, Q_OUTBOX_GET, "t", id), "outbox_get", read_outbox, out);
}

static int sq_outbox_pending_instances(wg_store_t *base, wg_store_key_cb cb, void *arg)
{
    sq_store_t *s = (sq_store_t *)base;
    sq_cb_t c = {.key = cb, .arg = arg};
    return each(s, use(s, Q_OUTBOX_PENDING, ""), "outbox_pending_instances", key_row, &c);
}

static int sq_outbox_mark(wg_store_t *base, const wg_outbox_mark_t *m, size_t n)
{
    sq_store_t *s = (sq_store_t *)base;
    int64_t now = wg_store_now_ms();
    int rv;
    if ((rv = begin(s)) != 0)
        return rv;
    for (size_t i = 0; i < n && !rv; i++)
        rv = run(s,
                 use(s, Q_OUTBOX_MARK, "ttiIIt", m[i].id, m[i].state, m[i].attempts,
                     m[i].next_attempt_at, now, m[i].last_error),
                 "outbox_mark", 0);
    return finish(s, rv);
}

static int sq_outbox_replay(wg_store_t *base, const char *instance_id, const char *id)
{
    sq_store_t *s = (sq_store_t *)base;
    int rv = run(s, use(s, Q_OUTBOX_REPLAY, "tt", id, instance_id), "outbox_replay", 1);
    /* nothing replayed: the event exists but is not failed, or there is no such event */
    if (rv == WG_ENOTFOUND &&
        one(s, use(s, Q_OUTBOX_OF_INSTANCE, "tt", id, instance_id), "outbox_replay", NULL,
            NULL) == 0)
        rv = WG_EEXIST;
    return rv;
}

static int sq_outbox_counts(wg_store_t *base, wg_store_count_cb cb, void *arg)
{
    sq_store_t *s = (sq_store_t *)base;
    sq_cb_t c = {.count = cb, .arg = arg};
    return each(s, use(s, Q_OUTBOX_COUNTS, ""), "outbox_counts", count_row, &c);
}

static int sq_outbox_last_seq(wg_store_t *base, const char *instance_id, int64_t *seq)
{
    sq_store_t *s = (sq_store_t *)base;
    *seq = 0;
    return one(s, use(s, Q_OUTBOX_LAST_SEQ, "t", instance_id), "outbox_last_seq", read_int64,
               seq);
}

static int sq_event_append(wg_store_t *base, const char *id, const wg_store_event_t *ev)
{
    sq_store_t *s = (sq_store_t *)base;
    int rv = begin(s);
    return rv ? rv : finish(s, append_event(s, id, ev, NULL, NULL));
}

static int sq_event_append_once(wg_store_t *base, const char *instance_id,
                                const wg_store_event_t *ev, const char *key, char *id_out,
                                size_t cap, int *dup)
{
    sq_store_t *s = (sq_store_t *)base;
    char id[40] = "", *old = NULL;
    int rv;
    *dup = 0;
    if ((rv = begin(s)) != 0)
        return rv;
    rv = one(s, use(s, Q_OUTBOX_BY_KEY, "tt", instance_id, key), "event_append_once", read_text,
             &old);
    if (rv == 0) {
        snprintf(id, sizeof(id), "%s", old ? old : "");
        *dup = 1;
    } else if (rv == WG_ENOTFOUND) {
        rv = append_event(s, instance_id, ev, key, id);
    }
    free(old);
    if ((rv = finish(s, rv)) == 0)
        snprintf(id_out, cap, "%s", id);
    return rv;
}

/* ---- WhatsApp credentials and prekeys ---- */

static int sq_creds_get(wg_store_t *base, const char *id, uint8_t **blob, size_t *len)
{
    sq_store_t *s = (sq_store_t *)base;
    sq_blob_t b = {blob, len};
    *blob = NULL;
    *len = 0;
    return one(s, use(s, Q_CREDS_GET, "t", id), "creds_get", read_blob, &b);
}

static int sq_creds_put(wg_store_t *base, const char *id, const uint8_t *blob, size_t len)
{
    sq_store_t *s = (sq_store_t *)base;
    return run(s, use(s, Q_CREDS_PUT, "tbI", id, (const void *)blob, len, wg_store_now_ms()),
               "creds_put", 1);
}

static int sq_creds_delete(wg_store_t *base, const char *id)
{
    static const sq_query_t q[] = {Q_CREDS_DELETE, Q_PREKEYS_DELETE, Q_SIGNAL_DELETE_ALL};
    sq_store_t *s = (sq_store_t *)base;
    int rv;
    if ((rv = begin(s)) != 0)
        return rv;
    for (size_t i = 0; i < sizeof(q) / sizeof(q[0]) && !rv; i++)
        rv = run(s, use(s, q[i], "t", id), "creds_delete", 0);
    return finish(s, rv);
}

static int sq_prekeys_put(wg_store_t *base, const char *id, const wg_store_prekey_t *k, size_t n)
{
    sq_store_t *s = (sq_store_t *)base;
    int64_t now = wg_store_now_ms();
    int rv;
    if ((rv = begin(s)) != 0)
        return rv;
    for (size_t i = 0; i < n && !rv; i++)
        rv = run(s,
                 use(s, Q_PREKEY_PUT, "tIbI", id, (int64_t)k[i].id, (const void *)k[i].blob,
                     k[i].len, now),
                 "prekeys_put", 0);
    return finish(s, rv);
}

static int sq_prekeys_next_id(wg_store_t *base, const char *id, uint32_t *next)
{
    sq_store_t *s = (sq_store_t *)base;
    int64_t v = 1;
    int rv = one(s, use(s, Q_PREKEYS_NEXT, "t", id), "prekeys_next_id", read_int64, &v);
    *next = rv ? 1 : (uint32_t)v;
    return rv;
}

static int sq_prekey_get(wg_store_t *base, const char *id, uint32_t key_id, uint8_t **blob,
                         size_t *len)
{
    sq_store_t *s = (sq_store_t *)base;
    sq_blob_t b = {blob, len};
    *blob = NULL;
    *len = 0;
    return one(s, use(s, Q_PREKEY_GET, "tI", id, (int64_t)key_id), "prekey_get", read_blob, &b);
}

static int sq_prekey_delete(wg_store_t *base, const char *id, uint32_t key_id)
{
    sq_store_t *s = (sq_store_t *)base;
    return run(s, use(s, Q_PREKEY_DELETE, "tI", id, (int64_t)key_id), "prekey_delete", 0);
}

/* ---- Signal state (wa/signal_db.c seals every blob first) ---- */

static int sq_signal_get(wg_store_t *base, const char *id, int kind, const char *key,
                         uint8_t **blob, size_t *len)
{
    sq_store_t *s = (sq_store_t *)base;
    sq_blob_t b = {blob, len};
    *blob = NULL;
    *len = 0;
    return one(s, use(s, Q_SIGNAL_GET, "tit", id, kind, key), "signal_get", read_blob, &b);
}

static int sq_signal_put(wg_store_t *base, const char *id, int kind, const char *key,
                         const uint8_t *blob, size_t len)
{
    sq_store_t *s = (sq_store_t *)base;
    return run(s,
               use(s, Q_SIGNAL_PUT, "titbI", id, kind, key, (const void *)blob, len,
                   wg_store_now_ms()),
               "signal_put", 1);
}

static int sq_signal_delete(wg_store_t *base, const char *id, int kind, const char *key)
{
    sq_store_t *s = (sq_store_t *)base;
    return run(s, use(s, Q_SIGNAL_DELETE, "tit", id, kind, key), "signal_delete", 0);
}

static int sq_signal_keys(wg_store_t *base, const char *id, int kind, const char *prefix,
                          wg_store_key_cb cb, void *arg)
{
    sq_store_t *s = (sq_store_t *)base;
    sq_cb_t c = {.key = cb, .arg = arg};
    return each(s, use(s, Q_SIGNAL_KEYS, "tiIt", id, kind, (int64_t)strlen(prefix), prefix),
                "signal_keys", key_row, &c);
}

static void sq_close(wg_store_t *base)
{
    sq_store_t *s = (sq_store_t *)base;
    for (int q = 0; q < Q_COUNT; q++)
        sqlite3_finalize(s->stmt[q]);
    if (sqlite3_close(s->db) != SQLITE_OK)
        wg_log(WG_LOG_ERROR, "store", "op=close err=\"%s\"", sqlite3_errmsg(s->db));
    free(s);
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
    .instance_patch = sq_instance_patch,
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
    .txn_begin = sq_txn_begin,
    .txn_end = sq_txn_end,
    .busy_timeout = sq_busy_timeout,
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
    sq_close(&s->base);
    return rv;
}
