/* test_recv_commit.c - wg_conn_recv_commit on a real SQLite store, with the engine's storage
 * stack (sealed signal_db under the LRU cache under the stage): the message's outbox row and
 * the Signal state it advanced are ONE transaction. When the state cannot be written after the
 * event was appended, neither is committed (before: the event was committed alone, and the
 * message decrypted again as a duplicate of an event whose state was lost); the re-delivery
 * then decrypts (the one-time prekey was not consumed) and commits both. Also the store's
 * transaction API itself (savepoints inside, rollback, no nesting). */
#include "store/store.h"
#include "test.h"
#include "util/buf.h"
#include "util/err.h"
#include "wa/binary.h"
#include "wa/conn.h"
#include "wa/creds.h"
#include "wa/msg.h"
#include "wa/recv.h"
#include "wa/signal.h"
#include "wa/signal_stage.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define GW_JID "222:3@s.whatsapp.net"
#define PHONE_DEV "111:2@s.whatsapp.net"
#define INST "inst_rc"

static wg_store_t *open_tmp(char *path, size_t cap)
{
    wg_store_t *st = NULL;
    snprintf(path, cap, "/tmp/wg_test_rc_%d_%ld.db", (int)getpid(), random());
    return wg_store_open(path, &st) == 0 ? st : NULL;
}

static void rm_db(const char *path)
{
    char p[300];
    unlink(path);
    snprintf(p, sizeof(p), "%s-wal", path);
    unlink(p);
    snprintf(p, sizeof(p), "%s-shm", path);
    unlink(p);
}

static int mk_inst(wg_store_t *st)
{
    wg_account_t a = {.id = "acc_rc", .name = "rc", .plan = "free"};
    wg_instance_t in = {0};
    const char *conflict = NULL;
    int rv;
    a.created_at = a.updated_at = wg_store_now_ms();
    if ((rv = wg_store_account_insert(st, &a, NULL)) != 0)
        return rv;
    in.id = INST;
    in.owner_id = "acc_rc";
    in.name = "rc";
    in.status = "WORKING";
    in.created_at = in.updated_at = wg_store_now_ms();
    return wg_store_instance_insert(st, &in, "hash_rc", 0, NULL, &conflict);
}

/* One SQL statement on a second connection (what another thread or process does). */
static int sql_on(const char *path, const char *text)
{
    sqlite3 *db = NULL;
    int rc = sqlite3_open(path, &db);
    if (rc == SQLITE_OK) {
        sqlite3_busy_timeout(db, 5000);
        rc = sqlite3_exec(db, text, NULL, NULL, NULL);
    }
    sqlite3_close(db);
    return rc;
}

static int64_t count_of(const char *path, const char *text)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *q = NULL;
    int64_t n = -1;
    if (sqlite3_open(path, &db) == SQLITE_OK &&
        sqlite3_prepare_v2(db, text, -1, &q, NULL) == SQLITE_OK && sqlite3_step(q) == SQLITE_ROW)
        n = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    sqlite3_close(db);
    return n;
}

static wg_signal_t *phone_party(void)
{
    wg_creds_t c;
    wg_signal_keys_t k;
    wg_signal_storage_t *mem = NULL;
    wg_signal_t *s = NULL;
    if (wg_creds_generate(&c) != 0 || wg_signal_storage_mem_new(&mem) != 0)
        return NULL;
    k.registration_id = c.registration_id;
    k.identity = c.identity;
    k.signed_prekey_id = c.signed_prekey_id;
    k.signed_prekey = c.signed_prekey;
    memcpy(k.signed_prekey_sig, c.signed_prekey_sig, sizeof(k.signed_prekey_sig));
    wg_creds_wipe(&c);
    return wg_signal_new(&k, mem, &s) == 0 ? s : NULL;
}

/* A text from the phone to the gateway, as read off the wire. */
static wg_node_t *dm(wg_signal_t *phone, const char *id, wg_signal_type_t *t)
{
    wg_signal_addr_t gw;
    uint8_t *m = NULL, *pad = NULL, *ct = NULL;
    size_t mn = 0, pn = 0, cn = 0;
    wg_node_t *n = NULL, *out = NULL;
    wg_buf_t b;
    if (wg_signal_addr_from_jid(GW_JID, &gw) == 0 &&
        wg_msg_build_text("one commit", NULL, NULL, 0, &m, &mn) == 0 &&
        wg_msg_pad(m, mn, 0, &pad, &pn) == 0 &&
        wg_signal_encrypt(phone, &gw, pad, pn, t, &ct, &cn) == 0) {
        n = wg_node_new("message");
        wg_node_set_attr(n, "id", id);
        wg_node_set_attr_jid(n, "from", PHONE_DEV);
        wg_node_set_attr(n, "t", "1700000001");
        wg_node_set_attr(n, "type", "text");
        wg_node_t *e = wg_node_add_new(n, "enc");
        wg_node_set_attr(e, "v", "2");
        wg_node_set_attr(e, "type", wg_signal_type_name(*t));
        wg_node_set_bytes(e, ct, cn);
        wg_buf_init(&b, 0);
        if (wg_binary_encode(n, &b) == 0)
            wg_binary_decode(b.data, b.len, NULL, &out);
        wg_buf_dispose(&b);
        wg_node_free(n);
    }
    free(m);
    free(pad);
    free(ct);
    return out;
}

WG_TEST(recv_commit_event_and_state_are_one_transaction)
{
    static const uint8_t mk[32] = {7};
    char path[256];
    wg_store_t *st = open_tmp(path, sizeof(path));
    wg_signal_storage_t *db = NULL, *cache = NULL, *stage = NULL;
    wg_signal_t *gw = NULL, *phone = phone_party();
    wg_creds_t c;
    wg_signal_keys_t k;
    wg_signal_addr_t a;
    wg_signal_bundle_t b;
    wg_signal_type_t t;
    wg_recv_result_t r;
    WG_CHECK(st && phone);
    WG_CHECK_EQ_INT(mk_inst(st), 0);
    WG_CHECK_EQ_INT(wg_creds_generate(&c), 0);
    WG_CHECK_EQ_INT(wg_signal_storage_db_new(st, INST, mk, &db), 0);
    WG_CHECK_EQ_INT(wg_signal_storage_cache_new(db, 64, 1u << 20, &cache), 0);
    WG_CHECK_EQ_INT(wg_signal_stage_new(cache, &stage), 0);
    k.registration_id = c.registration_id;
    k.identity = c.identity;
    k.signed_prekey_id = c.signed_prekey_id;
    k.signed_prekey = c.signed_prekey;
    memcpy(k.signed_prekey_sig, c.signed_prekey_sig, sizeof(k.signed_prekey_sig));
    WG_CHECK_EQ_INT(wg_signal_new(&k, stage, &gw), 0);
    WG_CHECK_EQ_INT(wg_signal_prekeys_generate(gw, 5, 1, NULL), 0);
    WG_CHECK_EQ_INT(wg_signal_own_bundle(gw, 5, &b), 0);
    WG_CHECK_EQ_INT(wg_signal_addr_from_jid(GW_JID, &a), 0);
    WG_CHECK_EQ_INT(wg_signal_process_bundle(phone, &a, &b), 0);
    wg_node_t *n = dm(phone, "3EB0ONE1", &t);
    WG_CHECK(n && t == WG_SIGNAL_PKMSG);
    wg_recv_env_t env = {.sig = gw, .own_jid = GW_JID};
    WG_CHECK_EQ_INT(count_of(path, "SELECT COUNT(*) FROM wa_prekeys"), 1);
    WG_CHECK_EQ_INT(count_of(path, "SELECT COUNT(*) FROM wa_signal"), 0);

    /* the state write fails after the event was appended (another thread's trigger stands in
     * for a full disk): nothing of the message may stay, the prekey is not consumed */
    WG_CHECK_EQ_INT(sql_on(path, "CREATE TRIGGER no_signal BEFORE INSERT ON wa_signal "
                                 "BEGIN SELECT RAISE(ABORT, 'injected'); END"),
                    SQLITE_OK);
    WG_CHECK(wg_conn_recv_commit(st, INST, stage, &env, n, &r) != 0);
    WG_CHECK_EQ_INT(count_of(path, "SELECT COUNT(*) FROM outbox"), 0);
    WG_CHECK_EQ_INT(count_of(path, "SELECT COUNT(*) FROM wa_prekeys"), 1);
    WG_CHECK_EQ_INT(count_of(path, "SELECT COUNT(*) FROM wa_signal"), 0);

    /* the server re-delivers: it decrypts again, and both are committed together */
    WG_CHECK_EQ_INT(sql_on(path, "DROP TRIGGER no_signal"), SQLITE_OK);
    WG_CHECK_EQ_INT(wg_conn_recv_commit(st, INST, stage, &env, n, &r), 0);
    WG_CHECK_STR(r.event, "message.received");
    wg_recv_result_dispose(&r);
    WG_CHECK_EQ_INT(count_of(path, "SELECT COUNT(*) FROM outbox"), 1);
    WG_CHECK_EQ_INT(count_of(path, "SELECT COUNT(*) FROM wa_prekeys"), 0);
    WG_CHECK(count_of(path, "SELECT COUNT(*) FROM wa_signal WHERE kind = 1") >= 1);

    /* the next message on the session commits too (the state above was really stored) */
    wg_node_free(n);
    n = dm(phone, "3EB0ONE2", &t);
    WG_CHECK(n);
    WG_CHECK_EQ_INT(wg_conn_recv_commit(st, INST, stage, &env, n, &r), 0);
    WG_CHECK_STR(r.event, "message.received");
    wg_recv_result_dispose(&r);
    WG_CHECK_EQ_INT(count_of(path, "SELECT COUNT(*) FROM outbox"), 2);
    wg_node_free(n);
    wg_creds_wipe(&c);
    wg_signal_free(gw);
    wg_signal_free(phone);
    wg_store_close(st);
    rm_db(path);
}

WG_TEST(store_txn_savepoints_rollback_no_nesting)
{
    char path[256], id[64];
    wg_store_t *st = open_tmp(path, sizeof(path));
    wg_store_event_t ev = {"message.received", "{}"};
    int dup = 0;
    WG_CHECK(st);
    WG_CHECK_EQ_INT(mk_inst(st), 0);
    WG_CHECK_EQ_INT(wg_store_txn_end(st, 0), WG_EINVAL); /* none open */
    /* rolled back: neither write stays */
    WG_CHECK_EQ_INT(wg_store_txn_begin(st), 0);
    WG_CHECK_EQ_INT(wg_store_txn_begin(st), WG_EINVAL); /* no nesting */
    WG_CHECK_EQ_INT(wg_store_event_append_once(st, INST, &ev, "k1", id, sizeof(id), &dup), 0);
    WG_CHECK_EQ_INT(wg_store_signal_put(st, INST, 1, "s1", (const uint8_t *)"x", 1), 0);
    WG_CHECK_EQ_INT(wg_store_txn_end(st, WG_ESTORE), WG_ESTORE);
    WG_CHECK_EQ_INT(count_of(path, "SELECT COUNT(*) FROM outbox WHERE dedupe_key = 'k1'"), 0);
    WG_CHECK_EQ_INT(count_of(path, "SELECT COUNT(*) FROM wa_signal"), 0);
    /* committed at the end only; an operation that fails undoes only itself */
    WG_CHECK_EQ_INT(wg_store_txn_begin(st), 0);
    WG_CHECK_EQ_INT(wg_store_event_append_once(st, INST, &ev, "k2", id, sizeof(id), &dup), 0);
    WG_CHECK_EQ_INT(count_of(path, "SELECT COUNT(*) FROM outbox WHERE dedupe_key = 'k2'"), 0);
    WG_CHECK_EQ_INT(wg_store_signal_put(st, "inst_nope", 1, "s1", (const uint8_t *)"x", 1),
                    WG_ENOTFOUND);
    WG_CHECK_EQ_INT(wg_store_signal_put(st, INST, 1, "s2", (const uint8_t *)"y", 1), 0);
    WG_CHECK_EQ_INT(wg_store_txn_end(st, 0), 0);
    WG_CHECK_EQ_INT(count_of(path, "SELECT COUNT(*) FROM outbox WHERE dedupe_key = 'k2'"), 1);
    WG_CHECK_EQ_INT(count_of(path, "SELECT COUNT(*) FROM wa_signal"), 1);
    /* outside a transaction every call commits by itself again */
    WG_CHECK_EQ_INT(wg_store_signal_put(st, INST, 1, "s3", (const uint8_t *)"z", 1), 0);
    WG_CHECK_EQ_INT(count_of(path, "SELECT COUNT(*) FROM wa_signal"), 2);
    wg_store_close(st);
    rm_db(path);
}
