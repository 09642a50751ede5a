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
    " key_id INTEGER NOT NULL, pub BLOB NOT NULL, PRIMARY KEY (number, device, key_id));";

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
