/* state.c - the sandbox's persistent state: its root key, simulated phones (with their account
 * key pairs), linked companion devices (noise and identity keys) and uploaded prekeys, in one
 * SQLite file (--state, default ./wagate-sandbox.db).
 *
 * Write-through: every change is written before the call returns; phones and devices are also
 * kept in memory (arrays of records, loaded at open) because logins look them up on the loop.
 * Prekeys live only in the file. This is a test server: its SQLite calls run on the loop thread
 * (a few ms at most, WAL with synchronous=NORMAL), unlike the gateway's store.
 *
 * Ownership: wg_sandbox_state_close() frees every record; device records die earlier through
 * wg_sandbox_state_device_remove(). Private keys are wiped when records are freed. */
#include "sandbox/sb_int.h"

#include "util/codec.h"
#include "util/err.h"
#include "util/log.h"
#include "wa/signal.h"

#include <jansson.h>

#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct wg_sandbox_state_s {
    sqlite3 *db;
    wg_sandbox_phone_t **phones;
    size_t nphones, cphones;
    wg_sandbox_device_t **devices;
    size_t ndevices, cdevices;
};

static const char *SCHEMA =
    "PRAGMA journal_mode=WAL;"
    "PRAGMA synchronous=NORMAL;"
    "CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v BLOB NOT NULL);"
    "CREATE TABLE IF NOT EXISTS phones (number TEXT PRIMARY KEY, push_name TEXT NOT NULL,"
    " lid TEXT NOT NULL, account_priv BLOB NOT NULL, next_device INTEGER NOT NULL,"
    " created INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS devices (number TEXT NOT NULL, device INTEGER NOT NULL,"
    " noise_pub BLOB NOT NULL, identity_pub BLOB NOT NULL, registration_id INTEGER NOT NULL,"
    " platform TEXT NOT NULL, linked_at INTEGER NOT NULL, skey_id INTEGER, skey_pub BLOB,"
    " skey_sig BLOB, PRIMARY KEY (number, device));"
    "CREATE TABLE IF NOT EXISTS prekeys (number TEXT NOT NULL, device INTEGER NOT NULL,"
    " key_id INTEGER NOT NULL, pub BLOB NOT NULL, PRIMARY KEY (number, device, key_id));"
    /* issue 5: the phones' Signal state, the offline queue, what phones received, groups */
    "CREATE TABLE IF NOT EXISTS phone_keys (number TEXT PRIMARY KEY, registration_id INTEGER"
    " NOT NULL, spk_priv BLOB NOT NULL, spk_sig BLOB NOT NULL, next_prekey INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS phone_signal (number TEXT NOT NULL, kind INTEGER NOT NULL,"
    " k TEXT NOT NULL, v BLOB NOT NULL, PRIMARY KEY (number, kind, k));"
    "CREATE TABLE IF NOT EXISTS offline (seq INTEGER PRIMARY KEY AUTOINCREMENT, number TEXT"
    " NOT NULL, device INTEGER NOT NULL, node BLOB NOT NULL);"
    "CREATE TABLE IF NOT EXISTS phone_inbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, number TEXT"
    " NOT NULL, kind TEXT NOT NULL, id TEXT NOT NULL, chat TEXT NOT NULL, author TEXT NOT NULL,"
    " text TEXT, t INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS phone_sent (number TEXT NOT NULL, id TEXT NOT NULL, chat TEXT"
    " NOT NULL, text TEXT NOT NULL, t INTEGER NOT NULL, PRIMARY KEY (number, id));"
    "CREATE TABLE IF NOT EXISTS groups (jid TEXT PRIMARY KEY, subject TEXT NOT NULL, creator"
    " TEXT NOT NULL, participants TEXT NOT NULL, created INTEGER NOT NULL);";

static int db_fail(wg_sandbox_state_t *st, const char *what)
{
    wg_log(WG_LOG_ERROR, "sandbox", "state: %s: %s", what, sqlite3_errmsg(st->db));
    return WG_ESTORE;
}

/* Prepares, binds text/int/blob by a small format ("t" text, "i" int64, "b" blob+len) and
 * steps once: for INSERT/UPDATE/DELETE. 0 or WG_ESTORE (WG_EEXIST on a constraint). */
static int exec_bind(wg_sandbox_state_t *st, const char *sql, const char *fmt, ...)
{
    sqlite3_stmt *s = NULL;
    va_list ap;
    int rv = 0, i = 1, rc;
    if (sqlite3_prepare_v2(st->db, sql, -1, &s, NULL) != SQLITE_OK)
        return db_fail(st, "prepare");
    va_start(ap, fmt);
    for (const char *f = fmt; *f; f++, i++) {
        if (*f == 't') {
            sqlite3_bind_text(s, i, va_arg(ap, const char *), -1, SQLITE_TRANSIENT);
        } else if (*f == 'i') {
            sqlite3_bind_int64(s, i, va_arg(ap, int64_t));
        } else {
            const void *p = va_arg(ap, const void *);
            int n = va_arg(ap, int);
            sqlite3_bind_blob(s, i, p, n, SQLITE_TRANSIENT);
        }
    }
    va_end(ap);
    rc = sqlite3_step(s);
    if (rc == SQLITE_CONSTRAINT)
        rv = WG_EEXIST;
    else if (rc != SQLITE_DONE)
        rv = db_fail(st, "step");
    sqlite3_finalize(s);
    return rv;
}

static int grow(void *arr, size_t *cap, size_t n)
{
    void **a = arr;
    if (n < *cap)
        return 0;
    size_t nc = *cap ? *cap * 2 : 64;
    void *p = realloc(*a, nc * sizeof(void *));
    if (!p)
        return WG_ENOMEM;
    *a = p;
    *cap = nc;
    return 0;
}

static void blob32(sqlite3_stmt *s, int col, uint8_t out[WG_KEYS_KEY_LEN])
{
    const void *p = sqlite3_column_blob(s, col);
    memset(out, 0, WG_KEYS_KEY_LEN);
    if (p && sqlite3_column_bytes(s, col) == WG_KEYS_KEY_LEN)
        memcpy(out, p, WG_KEYS_KEY_LEN);
}

static void text_copy(sqlite3_stmt *s, int col, char *out, size_t cap)
{
    const unsigned char *t = sqlite3_column_text(s, col);
    snprintf(out, cap, "%s", t ? (const char *)t : "");
}

static int load(wg_sandbox_state_t *st)
{
    sqlite3_stmt *s = NULL;
    int rv = 0;
    if (sqlite3_prepare_v2(st->db,
                           "SELECT number, push_name, lid, account_priv, next_device, created "
                           "FROM phones ORDER BY created, number",
                           -1, &s, NULL) != SQLITE_OK)
        return db_fail(st, "load phones");
    while (sqlite3_step(s) == SQLITE_ROW) {
        wg_sandbox_phone_t *p = calloc(1, sizeof(*p));
        uint8_t priv[WG_KEYS_KEY_LEN];
        if (!p || (rv = grow(&st->phones, &st->cphones, st->nphones)) != 0) {
            free(p);
            rv = WG_ENOMEM;
            goto out;
        }
        text_copy(s, 0, p->number, sizeof(p->number));
        text_copy(s, 1, p->push_name, sizeof(p->push_name));
        text_copy(s, 2, p->lid, sizeof(p->lid));
        blob32(s, 3, priv);
        p->next_device = (uint32_t)sqlite3_column_int64(s, 4);
        p->created = sqlite3_column_int64(s, 5);
        if ((rv = wg_keys_from_private(&p->account, priv)) != 0) {
            free(p);
            goto out;
        }
        wg_keys_wipe(priv, sizeof(priv));
        st->phones[st->nphones++] = p;
    }
    sqlite3_finalize(s);
    s = NULL;
    if (sqlite3_prepare_v2(st->db,
                           "SELECT number, device, noise_pub, identity_pub, registration_id, "
                           "platform, linked_at FROM devices ORDER BY linked_at, number, device",
                           -1, &s, NULL) != SQLITE_OK)
        return db_fail(st, "load devices");
    while (sqlite3_step(s) == SQLITE_ROW) {
        wg_sandbox_device_t *d = calloc(1, sizeof(*d));
        if (!d || (rv = grow(&st->devices, &st->cdevices, st->ndevices)) != 0) {
            free(d);
            rv = WG_ENOMEM;
            goto out;
        }
        text_copy(s, 0, d->number, sizeof(d->number));
        d->id = (uint32_t)sqlite3_column_int64(s, 1);
        blob32(s, 2, d->noise_pub);
        blob32(s, 3, d->identity_pub);
        d->registration_id = (uint32_t)sqlite3_column_int64(s, 4);
        text_copy(s, 5, d->platform, sizeof(d->platform));
        d->linked_at = sqlite3_column_int64(s, 6);
        st->devices[st->ndevices++] = d;
    }
out:
    sqlite3_finalize(s);
    return rv;
}

int wg_sandbox_state_open(wg_sandbox_state_t **out, const char *path)
{
    wg_sandbox_state_t *st = calloc(1, sizeof(*st));
    char *err = NULL;
    int rv;
    *out = NULL;
    if (!st)
        return WG_ENOMEM;
    if (sqlite3_open_v2(path, &st->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
        SQLITE_OK) {
        wg_log(WG_LOG_ERROR, "sandbox", "state: cannot open %s: %s", path,
               st->db ? sqlite3_errmsg(st->db) : "out of memory");
        rv = WG_ESTORE;
        goto out;
    }
    sqlite3_busy_timeout(st->db, 2000);
    if (sqlite3_exec(st->db, SCHEMA, NULL, NULL, &err) != SQLITE_OK) {
        wg_log(WG_LOG_ERROR, "sandbox", "state: schema on %s: %s", path, err ? err : "?");
        sqlite3_free(err);
        rv = WG_ESTORE;
        goto out;
    }
    if ((rv = load(st)) != 0)
        goto out;
    *out = st;
    st = NULL;
out:
    wg_sandbox_state_close(st);
    return rv;
}

void wg_sandbox_state_close(wg_sandbox_state_t *st)
{
    if (!st)
        return;
    for (size_t i = 0; i < st->nphones; i++) {
        wg_signal_free(st->phones[i]->signal);
        wg_keys_wipe(&st->phones[i]->account, sizeof(st->phones[i]->account));
        free(st->phones[i]);
    }
    for (size_t i = 0; i < st->ndevices; i++)
        free(st->devices[i]);
    free(st->phones);
    free(st->devices);
    sqlite3_close(st->db);
    free(st);
}

int wg_sandbox_state_root_key(wg_sandbox_state_t *st, wg_keys_pair_t *root)
{
    sqlite3_stmt *s = NULL;
    int rv = 0;
    if (sqlite3_prepare_v2(st->db, "SELECT v FROM meta WHERE k = 'root_priv'", -1, &s, NULL) !=
        SQLITE_OK)
        return db_fail(st, "root key");
    if (sqlite3_step(s) == SQLITE_ROW && sqlite3_column_bytes(s, 0) == WG_KEYS_KEY_LEN) {
        rv = wg_keys_from_private(root, sqlite3_column_blob(s, 0));
        goto out;
    }
    if ((rv = wg_keys_generate(root)) != 0)
        goto out;
    rv = exec_bind(st, "INSERT OR REPLACE INTO meta (k, v) VALUES ('root_priv', ?)", "b",
                   root->priv, WG_KEYS_KEY_LEN);
out:
    sqlite3_finalize(s);
    return rv;
}

int wg_sandbox_number_valid(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n < 1 || n > WG_SB_NUMBER_MAX || s[0] == '0')
        return 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return 1;
}

wg_sandbox_phone_t *wg_sandbox_state_phone_find(wg_sandbox_state_t *st, const char *number)
{
    for (size_t i = 0; i < st->nphones; i++)
        if (strcmp(st->phones[i]->number, number) == 0)
            return st->phones[i];
    return NULL;
}

size_t wg_sandbox_state_phone_count(const wg_sandbox_state_t *st)
{
    return st->nphones;
}

wg_sandbox_phone_t *wg_sandbox_state_phone_at(wg_sandbox_state_t *st, size_t i)
{
    return i < st->nphones ? st->phones[i] : NULL;
}

int wg_sandbox_state_phone_add(wg_sandbox_state_t *st, const char *number, const char *push_name,
                               wg_sandbox_phone_t **out)
{
    wg_sandbox_phone_t *p = NULL;
    uint8_t r[8];
    int rv;
    if (out)
        *out = NULL;
    if (!wg_sandbox_number_valid(number) || (push_name && strlen(push_name) >= 64))
        return WG_EINVAL;
    if (wg_sandbox_state_phone_find(st, number))
        return WG_EEXIST;
    if ((rv = grow(&st->phones, &st->cphones, st->nphones)) != 0)
        return rv;
    if (!(p = calloc(1, sizeof(*p))))
        return WG_ENOMEM;
    snprintf(p->number, sizeof(p->number), "%s", number);
    snprintf(p->push_name, sizeof(p->push_name), "%s", push_name ? push_name : "");
    /* A LID is an opaque 15-digit number unrelated to the phone number. */
    if ((rv = wg_random_bytes(r, sizeof(r))) != 0 || (rv = wg_keys_generate(&p->account)) != 0)
        goto out;
    {
        uint64_t v = 0;
        for (size_t i = 0; i < sizeof(r); i++)
            v = (v << 8) | r[i];
        snprintf(p->lid, sizeof(p->lid), "%llu",
                 (unsigned long long)(100000000000000ull + v % 900000000000000ull));
    }
    p->next_device = 1;
    p->created = (int64_t)time(NULL);
    rv = exec_bind(st,
                   "INSERT INTO phones (number, push_name, lid, account_priv, next_device, "
                   "created) VALUES (?, ?, ?, ?, ?, ?)",
                   "tttbii", p->number, p->push_name, p->lid, p->account.priv, WG_KEYS_KEY_LEN,
                   (int64_t)p->next_device, p->created);
    if (rv != 0)
        goto out;
    st->phones[st->nphones++] = p;
    if (out)
        *out = p;
    p = NULL;
out:
    if (p)
        wg_keys_wipe(p, sizeof(*p));
    free(p);
    return rv;
}

int wg_sandbox_state_phone_take_device(wg_sandbox_state_t *st, wg_sandbox_phone_t *p, uint32_t *id)
{
    int rv = exec_bind(st, "UPDATE phones SET next_device = ? WHERE number = ?", "it",
                       (int64_t)p->next_device + 1, p->number);
    if (rv != 0)
        return rv;
    *id = p->next_device++;
    return 0;
}

int wg_sandbox_state_device_add(wg_sandbox_state_t *st, const wg_sandbox_device_t *d,
                                wg_sandbox_device_t **out)
{
    wg_sandbox_device_t *n;
    int rv;
    if (out)
        *out = NULL;
    if (wg_sandbox_state_device_find(st, d->number, d->id))
        return WG_EEXIST;
    if ((rv = grow(&st->devices, &st->cdevices, st->ndevices)) != 0)
        return rv;
    if (!(n = malloc(sizeof(*n))))
        return WG_ENOMEM;
    *n = *d;
    n->conn = NULL;
    rv = exec_bind(st,
                   "INSERT INTO devices (number, device, noise_pub, identity_pub, "
                   "registration_id, platform, linked_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                   "tibbiti", n->number, (int64_t)n->id, n->noise_pub, WG_KEYS_KEY_LEN,
                   n->identity_pub, WG_KEYS_KEY_LEN, (int64_t)n->registration_id, n->platform,
                   n->linked_at);
    if (rv != 0) {
        free(n);
        return rv;
    }
    st->devices[st->ndevices++] = n;
    if (out)
        *out = n;
    return 0;
}

wg_sandbox_device_t *wg_sandbox_state_device_find(wg_sandbox_state_t *st, const char *number,
                                                  uint32_t id)
{
    for (size_t i = 0; i < st->ndevices; i++)
        if (st->devices[i]->id == id && strcmp(st->devices[i]->number, number) == 0)
            return st->devices[i];
    return NULL;
}

int wg_sandbox_state_device_remove(wg_sandbox_state_t *st, wg_sandbox_device_t *d)
{
    int rv = exec_bind(st, "DELETE FROM devices WHERE number = ? AND device = ?", "ti", d->number,
                       (int64_t)d->id);
    if (rv == 0)
        rv = exec_bind(st, "DELETE FROM prekeys WHERE number = ? AND device = ?", "ti", d->number,
                       (int64_t)d->id);
    if (rv == 0) /* what was queued for it will never be fetched */
        rv = exec_bind(st, "DELETE FROM offline WHERE number = ? AND device = ?", "ti", d->number,
                       (int64_t)d->id);
    if (rv != 0)
        return rv;
    for (size_t i = 0; i < st->ndevices; i++) {
        if (st->devices[i] == d) {
            memmove(&st->devices[i], &st->devices[i + 1],
                    (st->ndevices - i - 1) * sizeof(st->devices[0]));
            st->ndevices--;
            break;
        }
    }
    free(d);
    return 0;
}

size_t wg_sandbox_state_device_count(const wg_sandbox_state_t *st)
{
    return st->ndevices;
}

wg_sandbox_device_t *wg_sandbox_state_device_at(wg_sandbox_state_t *st, size_t i)
{
    return i < st->ndevices ? st->devices[i] : NULL;
}

int wg_sandbox_state_prekeys_put(wg_sandbox_state_t *st, const wg_sandbox_device_t *d,
                                 uint32_t registration_id, const uint8_t identity[WG_KEYS_KEY_LEN],
                                 uint32_t skey_id, const uint8_t skey_pub[WG_KEYS_KEY_LEN],
                                 const uint8_t skey_sig[WG_KEYS_SIG_LEN],
                                 const wg_sandbox_prekey_t *keys, size_t n)
{
    sqlite3_stmt *s = NULL;
    int rv = 0;
    (void)identity; /* the identity was fixed at pairing; a different one is refused earlier */
    if (sqlite3_exec(st->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
        return db_fail(st, "begin");
    if (skey_pub &&
        (rv = exec_bind(st,
                        "UPDATE devices SET registration_id = ?, skey_id = ?, skey_pub = ?, "
                        "skey_sig = ? WHERE number = ? AND device = ?",
                        "iibbti", (int64_t)registration_id, (int64_t)skey_id, skey_pub,
                        WG_KEYS_KEY_LEN, skey_sig, WG_KEYS_SIG_LEN, d->number, (int64_t)d->id)) !=
            0)
        goto out;
    if (sqlite3_prepare_v2(st->db,
                           "INSERT OR REPLACE INTO prekeys (number, device, key_id, pub) "
                           "VALUES (?, ?, ?, ?)",
                           -1, &s, NULL) != SQLITE_OK) {
        rv = db_fail(st, "prepare prekeys");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        sqlite3_reset(s);
        sqlite3_bind_text(s, 1, d->number, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 2, d->id);
        sqlite3_bind_int64(s, 3, keys[i].id);
        sqlite3_bind_blob(s, 4, keys[i].pub, WG_KEYS_KEY_LEN, SQLITE_STATIC);
        if (sqlite3_step(s) != SQLITE_DONE) {
            rv = db_fail(st, "insert prekey");
            goto out;
        }
    }
out:
    sqlite3_finalize(s);
    if (sqlite3_exec(st->db, rv == 0 ? "COMMIT" : "ROLLBACK", NULL, NULL, NULL) != SQLITE_OK &&
        rv == 0)
        rv = db_fail(st, "commit");
    return rv;
}

int wg_sandbox_state_prekey_count(wg_sandbox_state_t *st, const wg_sandbox_device_t *d, int *count)
{
    sqlite3_stmt *s = NULL;
    int rv = 0;
    *count = 0;
    if (sqlite3_prepare_v2(st->db, "SELECT COUNT(*) FROM prekeys WHERE number = ? AND device = ?",
                           -1, &s, NULL) != SQLITE_OK)
        return db_fail(st, "count");
    sqlite3_bind_text(s, 1, d->number, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, d->id);
    if (sqlite3_step(s) == SQLITE_ROW)
        *count = sqlite3_column_int(s, 0);
    else
        rv = db_fail(st, "count");
    sqlite3_finalize(s);
    return rv;
}

void wg_sandbox_device_jid(const wg_sandbox_device_t *d, char *out, size_t cap)
{
    snprintf(out, cap, "%s:%u@s.whatsapp.net", d->number, d->id);
}

int wg_sandbox_parse_device_jid(const char *s, char number[WG_SB_NUMBER_MAX + 1], uint32_t *id)
{
    const char *colon = strchr(s, ':'), *at = strchr(s, '@');
    char *end;
    unsigned long v;
    size_t n;
    if (!colon || !at || at < colon || strcmp(at, "@s.whatsapp.net") != 0)
        return WG_EINVAL;
    n = (size_t)(colon - s);
    if (n == 0 || n > WG_SB_NUMBER_MAX)
        return WG_EINVAL;
    memcpy(number, s, n);
    number[n] = 0;
    if (!wg_sandbox_number_valid(number) || colon[1] < '0' || colon[1] > '9')
        return WG_EINVAL;
    v = strtoul(colon + 1, &end, 10);
    if (end != at || v > 255)
        return WG_EINVAL;
    *id = (uint32_t)v;
    return 0;
}

/* ---- issue 5: phones' Signal state -------------------------------------------------------- */

typedef struct {
    wg_signal_storage_t hdr;
    wg_sandbox_state_t *st;
    char number[WG_SB_NUMBER_MAX + 1];
} phone_storage_t;

static int ps_get(wg_signal_storage_t *s, int kind, const char *key, uint8_t **val, size_t *len)
{
    phone_storage_t *ps = (phone_storage_t *)s;
    sqlite3_stmt *q = NULL;
    int rv = WG_ENOTFOUND;
    if (sqlite3_prepare_v2(ps->st->db,
                           "SELECT v FROM phone_signal WHERE number = ? AND kind = ? AND k = ?", -1,
                           &q, NULL) != SQLITE_OK)
        return db_fail(ps->st, "signal get");
    sqlite3_bind_text(q, 1, ps->number, -1, SQLITE_STATIC);
    sqlite3_bind_int(q, 2, kind);
    sqlite3_bind_text(q, 3, key, -1, SQLITE_STATIC);
    if (sqlite3_step(q) == SQLITE_ROW) {
        size_t n = (size_t)sqlite3_column_bytes(q, 0);
        if (!(*val = malloc(n ? n : 1))) {
            rv = WG_ENOMEM;
        } else {
            if (n)
                memcpy(*val, sqlite3_column_blob(q, 0), n);
            *len = n;
            rv = 0;
        }
    }
    sqlite3_finalize(q);
    return rv;
}

static int ps_put(wg_signal_storage_t *s, int kind, const char *key, const uint8_t *val, size_t len)
{
    phone_storage_t *ps = (phone_storage_t *)s;
    return exec_bind(ps->st,
                     "INSERT OR REPLACE INTO phone_signal (number, kind, k, v) "
                     "VALUES (?, ?, ?, ?)",
                     "titb", ps->number, (int64_t)kind, key, val, (int)len);
}

static int ps_remove(wg_signal_storage_t *s, int kind, const char *key)
{
    phone_storage_t *ps = (phone_storage_t *)s;
    return exec_bind(ps->st, "DELETE FROM phone_signal WHERE number = ? AND kind = ? AND k = ?",
                     "tit", ps->number, (int64_t)kind, key);
}

static int ps_keys(wg_signal_storage_t *s, int kind, const char *prefix, wg_signal_key_cb cb,
                   void *arg)
{
    phone_storage_t *ps = (phone_storage_t *)s;
    sqlite3_stmt *q = NULL;
    char **keys = NULL;
    size_t n = 0, cap = 0;
    int rv = 0;
    if (sqlite3_prepare_v2(ps->st->db,
                           "SELECT k FROM phone_signal WHERE number = ? AND kind = ? AND "
                           "substr(k, 1, ?) = ?",
                           -1, &q, NULL) != SQLITE_OK)
        return db_fail(ps->st, "signal keys");
    sqlite3_bind_text(q, 1, ps->number, -1, SQLITE_STATIC);
    sqlite3_bind_int(q, 2, kind);
    sqlite3_bind_int(q, 3, (int)strlen(prefix ? prefix : ""));
    sqlite3_bind_text(q, 4, prefix ? prefix : "", -1, SQLITE_STATIC);
    /* collected first: cb may not modify the storage, but the statement must be done anyway */
    while (rv == 0 && sqlite3_step(q) == SQLITE_ROW) {
        if ((rv = grow(&keys, &cap, n)) == 0 &&
            !(keys[n++] = strdup((const char *)sqlite3_column_text(q, 0))))
            rv = WG_ENOMEM;
    }
    sqlite3_finalize(q);
    for (size_t i = 0; i < n && rv == 0; i++)
        if (keys[i])
            rv = cb(keys[i], arg);
    for (size_t i = 0; i < n; i++)
        free(keys[i]);
    free(keys);
    return rv;
}

static void ps_free(wg_signal_storage_t *s)
{
    free(s);
}

static const wg_signal_storage_ops_t PS_OPS = {ps_get, ps_put, ps_remove, ps_keys, ps_free};

/* The phone's Signal keys: loaded, or made (registration id, signed prekey 1 signed by the
 * account key, which is the phone's identity) and saved on first use. */
static int phone_keys(wg_sandbox_state_t *st, const wg_sandbox_phone_t *p, wg_signal_keys_t *k)
{
    sqlite3_stmt *q = NULL;
    uint8_t djb[WG_KEYS_DJB_LEN], r[2];
    int rv = 0;
    memset(k, 0, sizeof(*k));
    k->identity = p->account;
    k->signed_prekey_id = 1;
    if (sqlite3_prepare_v2(st->db,
                           "SELECT registration_id, spk_priv, spk_sig FROM phone_keys "
                           "WHERE number = ?",
                           -1, &q, NULL) != SQLITE_OK)
        return db_fail(st, "phone keys");
    sqlite3_bind_text(q, 1, p->number, -1, SQLITE_STATIC);
    if (sqlite3_step(q) == SQLITE_ROW && sqlite3_column_bytes(q, 1) == WG_KEYS_KEY_LEN &&
        sqlite3_column_bytes(q, 2) == WG_KEYS_SIG_LEN) {
        k->registration_id = (uint32_t)sqlite3_column_int64(q, 0);
        rv = wg_keys_from_private(&k->signed_prekey, sqlite3_column_blob(q, 1));
        memcpy(k->signed_prekey_sig, sqlite3_column_blob(q, 2), WG_KEYS_SIG_LEN);
        sqlite3_finalize(q);
        return rv;
    }
    sqlite3_finalize(q);
    if ((rv = wg_random_bytes(r, sizeof(r))) != 0 ||
        (rv = wg_keys_generate(&k->signed_prekey)) != 0)
        return rv;
    k->registration_id = 1 + (((uint32_t)r[0] << 8 | r[1]) % 16380);
    wg_keys_djb_encode(djb, k->signed_prekey.pub);
    if ((rv = wg_keys_sign(k->signed_prekey_sig, p->account.priv, djb, sizeof(djb))) != 0)
        return rv;
    return exec_bind(st,
                     "INSERT INTO phone_keys (number, registration_id, spk_priv, spk_sig, "
                     "next_prekey) VALUES (?, ?, ?, ?, 1)",
                     "tibb", p->number, (int64_t)k->registration_id, k->signed_prekey.priv,
                     WG_KEYS_KEY_LEN, k->signed_prekey_sig, WG_KEYS_SIG_LEN);
}

int wg_sandbox_state_phone_signal(wg_sandbox_state_t *st, wg_sandbox_phone_t *p,
                                  struct wg_signal **out)
{
    phone_storage_t *ps;
    wg_signal_keys_t k;
    int rv;
    if (p->signal) {
        *out = p->signal;
        return 0;
    }
    if ((rv = phone_keys(st, p, &k)) != 0)
        return rv;
    if (!(ps = calloc(1, sizeof(*ps))))
        return WG_ENOMEM;
    ps->hdr.ops = &PS_OPS;
    ps->st = st;
    snprintf(ps->number, sizeof(ps->number), "%s", p->number);
    rv = wg_signal_new(&k, &ps->hdr, &p->signal);
    wg_keys_wipe(&k, sizeof(k));
    if (rv != 0)
        return rv;
    *out = p->signal;
    return 0;
}

int wg_sandbox_state_phone_bundle(wg_sandbox_state_t *st, wg_sandbox_phone_t *p,
                                  wg_signal_bundle_t *b)
{
    struct wg_signal *sig;
    sqlite3_stmt *q = NULL;
    uint32_t id = 1;
    int rv;
    if ((rv = wg_sandbox_state_phone_signal(st, p, &sig)) != 0)
        return rv;
    if (sqlite3_prepare_v2(st->db, "SELECT next_prekey FROM phone_keys WHERE number = ?", -1, &q,
                           NULL) != SQLITE_OK)
        return db_fail(st, "next prekey");
    sqlite3_bind_text(q, 1, p->number, -1, SQLITE_STATIC);
    if (sqlite3_step(q) == SQLITE_ROW)
        id = (uint32_t)sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    if (id == 0 || id > 0xFFFFFF)
        id = 1;
    /* a fresh one-time prekey per fetch: each is handed out once, as the server does */
    if ((rv = exec_bind(st, "UPDATE phone_keys SET next_prekey = ? WHERE number = ?", "it",
                        (int64_t)(id + 1), p->number)) != 0 ||
        (rv = wg_signal_prekeys_generate(sig, id, 1, NULL)) != 0)
        return rv;
    return wg_signal_own_bundle(sig, id, b);
}

int wg_sandbox_state_device_bundle(wg_sandbox_state_t *st, const wg_sandbox_device_t *d,
                                   wg_signal_bundle_t *b)
{
    sqlite3_stmt *q = NULL;
    int rv = WG_ENOTFOUND;
    memset(b, 0, sizeof(*b));
    if (sqlite3_prepare_v2(st->db,
                           "SELECT registration_id, skey_id, skey_pub, skey_sig FROM devices "
                           "WHERE number = ? AND device = ? AND skey_pub IS NOT NULL",
                           -1, &q, NULL) != SQLITE_OK)
        return db_fail(st, "bundle");
    sqlite3_bind_text(q, 1, d->number, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 2, d->id);
    if (sqlite3_step(q) == SQLITE_ROW && sqlite3_column_bytes(q, 2) == WG_KEYS_KEY_LEN &&
        sqlite3_column_bytes(q, 3) == WG_KEYS_SIG_LEN) {
        b->registration_id = (uint32_t)sqlite3_column_int64(q, 0);
        b->signed_prekey_id = (uint32_t)sqlite3_column_int64(q, 1);
        memcpy(b->signed_prekey, sqlite3_column_blob(q, 2), WG_KEYS_KEY_LEN);
        memcpy(b->signed_prekey_sig, sqlite3_column_blob(q, 3), WG_KEYS_SIG_LEN);
        memcpy(b->identity, d->identity_pub, WG_KEYS_KEY_LEN);
        rv = 0;
    }
    sqlite3_finalize(q);
    if (rv != 0)
        return rv;
    /* consume the lowest one-time prekey (none left: a bundle without one) */
    if (sqlite3_prepare_v2(st->db,
                           "SELECT key_id, pub FROM prekeys WHERE number = ? AND device = ? "
                           "ORDER BY key_id LIMIT 1",
                           -1, &q, NULL) != SQLITE_OK)
        return db_fail(st, "bundle prekey");
    sqlite3_bind_text(q, 1, d->number, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 2, d->id);
    if (sqlite3_step(q) == SQLITE_ROW && sqlite3_column_bytes(q, 1) == WG_KEYS_KEY_LEN) {
        b->has_prekey = 1;
        b->prekey_id = (uint32_t)sqlite3_column_int64(q, 0);
        memcpy(b->prekey, sqlite3_column_blob(q, 1), WG_KEYS_KEY_LEN);
    }
    sqlite3_finalize(q);
    if (b->has_prekey)
        rv = exec_bind(st, "DELETE FROM prekeys WHERE number = ? AND device = ? AND key_id = ?",
                       "tii", d->number, (int64_t)d->id, (int64_t)b->prekey_id);
    return rv;
}

/* ---- offline queue ------------------------------------------------------------------------ */

int wg_sandbox_state_offline_put(wg_sandbox_state_t *st, const char *number, uint32_t device,
                                 const uint8_t *node, size_t len)
{
    return exec_bind(st, "INSERT INTO offline (number, device, node) VALUES (?, ?, ?)", "tib",
                     number, (int64_t)device, node, (int)len);
}

int wg_sandbox_state_offline_take(wg_sandbox_state_t *st, const char *number, uint32_t device,
                                  wg_sandbox_offline_cb cb, void *arg, size_t *count)
{
    sqlite3_stmt *q = NULL;
    int64_t last = 0;
    int rv = 0;
    *count = 0;
    if (sqlite3_prepare_v2(st->db,
                           "SELECT seq, node FROM offline WHERE number = ? AND device = ? "
                           "ORDER BY seq",
                           -1, &q, NULL) != SQLITE_OK)
        return db_fail(st, "offline");
    sqlite3_bind_text(q, 1, number, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 2, device);
    while (rv == 0 && sqlite3_step(q) == SQLITE_ROW) {
        last = sqlite3_column_int64(q, 0);
        rv = cb(arg, sqlite3_column_blob(q, 1), (size_t)sqlite3_column_bytes(q, 1));
        (*count)++;
    }
    sqlite3_finalize(q);
    if (last)
        exec_bind(st, "DELETE FROM offline WHERE number = ? AND device = ? AND seq <= ?", "tii",
                  number, (int64_t)device, last);
    return rv;
}

int wg_sandbox_state_offline_count(wg_sandbox_state_t *st, const char *number, uint32_t device,
                                   int *count)
{
    sqlite3_stmt *q = NULL;
    *count = 0;
    if (sqlite3_prepare_v2(st->db, "SELECT COUNT(*) FROM offline WHERE number = ? AND device = ?",
                           -1, &q, NULL) != SQLITE_OK)
        return db_fail(st, "offline count");
    sqlite3_bind_text(q, 1, number, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 2, device);
    if (sqlite3_step(q) == SQLITE_ROW)
        *count = sqlite3_column_int(q, 0);
    sqlite3_finalize(q);
    return 0;
}

/* ---- what phones received ----------------------------------------------------------------- */

int wg_sandbox_state_inbox_add(wg_sandbox_state_t *st, const char *number, const char *kind,
                               const char *id, const char *chat, const char *author,
                               const char *text, int64_t t)
{
    return exec_bind(st,
                     "INSERT INTO phone_inbox (number, kind, id, chat, author, text, t) VALUES "
                     "(?, ?, ?, ?, ?, ?, ?)",
                     "tttttti", number, kind, id, chat, author, text ? text : "", t);
}

json_t *wg_sandbox_state_inbox_json(wg_sandbox_state_t *st, const char *number, const char *kind)
{
    sqlite3_stmt *q = NULL;
    json_t *a = json_array();
    if (!a || sqlite3_prepare_v2(st->db,
                                 "SELECT id, chat, author, text, t FROM phone_inbox WHERE "
                                 "number = ? AND kind = ? ORDER BY seq",
                                 -1, &q, NULL) != SQLITE_OK) {
        json_decref(a);
        return NULL;
    }
    sqlite3_bind_text(q, 1, number, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, kind, -1, SQLITE_STATIC);
    while (sqlite3_step(q) == SQLITE_ROW)
        json_array_append_new(
            a, json_pack("{s:s,s:s,s:s,s:s,s:I}", "id", sqlite3_column_text(q, 0), "from",
                         sqlite3_column_text(q, 1), "author", sqlite3_column_text(q, 2), "text",
                         sqlite3_column_text(q, 3), "t", (json_int_t)sqlite3_column_int64(q, 4)));
    sqlite3_finalize(q);
    return a;
}

/* ---- groups ------------------------------------------------------------------------------- */

int wg_sandbox_state_group_add(wg_sandbox_state_t *st, const char *jid, const char *subject,
                               const char *creator, const char *participants)
{
    return exec_bind(st,
                     "INSERT INTO groups (jid, subject, creator, participants, created) VALUES "
                     "(?, ?, ?, ?, ?)",
                     "ttttii", jid, subject, creator, participants, (int64_t)time(NULL));
}

int wg_sandbox_state_group_get(wg_sandbox_state_t *st, const char *jid, char *subject,
                               size_t subject_cap, char *creator, size_t creator_cap,
                               char *participants, size_t cap, int64_t *created)
{
    sqlite3_stmt *q = NULL;
    int rv = WG_ENOTFOUND;
    if (sqlite3_prepare_v2(st->db,
                           "SELECT subject, creator, participants, created FROM groups WHERE "
                           "jid = ?",
                           -1, &q, NULL) != SQLITE_OK)
        return db_fail(st, "group");
    sqlite3_bind_text(q, 1, jid, -1, SQLITE_STATIC);
    if (sqlite3_step(q) == SQLITE_ROW) {
        text_copy(q, 0, subject, subject_cap);
        text_copy(q, 1, creator, creator_cap);
        text_copy(q, 2, participants, cap);
        *created = sqlite3_column_int64(q, 3);
        rv = 0;
    }
    sqlite3_finalize(q);
    return rv;
}

/* ---- what phones sent (for resends after a retry receipt) ----------------------------------- */

int wg_sandbox_state_sent_add(wg_sandbox_state_t *st, const char *number, const char *id,
                              const char *chat, const char *text)
{
    return exec_bind(st,
                     "INSERT OR REPLACE INTO phone_sent (number, id, chat, text, t) VALUES "
                     "(?, ?, ?, ?, ?)",
                     "tttti", number, id, chat, text, (int64_t)time(NULL));
}

int wg_sandbox_state_sent_get(wg_sandbox_state_t *st, const char *number, const char *id,
                              char *chat, size_t chat_cap, char **text)
{
    sqlite3_stmt *q = NULL;
    int rv = WG_ENOTFOUND;
    if (sqlite3_prepare_v2(st->db, "SELECT chat, text FROM phone_sent WHERE number = ? AND id = ?",
                           -1, &q, NULL) != SQLITE_OK)
        return db_fail(st, "sent");
    sqlite3_bind_text(q, 1, number, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, id, -1, SQLITE_STATIC);
    if (sqlite3_step(q) == SQLITE_ROW) {
        text_copy(q, 0, chat, chat_cap);
        *text = strdup((const char *)sqlite3_column_text(q, 1));
        rv = *text ? 0 : WG_ENOMEM;
    }
    sqlite3_finalize(q);
    return rv;
}

int wg_sandbox_state_group_each(wg_sandbox_state_t *st, wg_sandbox_group_cb cb, void *arg)
{
    sqlite3_stmt *q = NULL;
    int rv = 0;
    if (sqlite3_prepare_v2(st->db, "SELECT jid FROM groups ORDER BY created, jid", -1, &q, NULL) !=
        SQLITE_OK)
        return db_fail(st, "groups");
    while (rv == 0 && sqlite3_step(q) == SQLITE_ROW)
        rv = cb(arg, (const char *)sqlite3_column_text(q, 0));
    sqlite3_finalize(q);
    return rv;
}
