/* test_sandbox.c - the sandbox: pure pieces (number and device-JID checks, prekey upload
 * reader), the SQLite state (reload after reopen), and the server end to end on one loop with
 * a companion built from our own client pieces (wa/ws, noise, payload, pair): registration
 * refs, scan, pair-success verified by the companion side, pair-device-sign verified by the
 * phone side, 515, login, prekey count/upload, passive, ping, unknown iq, replaced, logout,
 * login refused after logout, and a scan whose adv secret the companion does not know; prekey
 * upload faults (refused, answer held back, the client leaving meanwhile). */
#include "test.h"

#include "sandbox/sb_int.h"
#include "util/buf.h"
#include "util/codec.h"
#include "util/err.h"
#include "util/log.h"
#include "wa/binary.h"
#include "wa/node.h"
#include "wa/noise.h"
#include "wa/pair.h"
#include "wa/payload.h"
#include "wa/signal.h"
#include "wa/stanza.h"
#include "wa/ws.h"

#include <jansson.h>

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void tmp_path(char *p, size_t cap)
{
    snprintf(p, cap, "/tmp/wg_test_sandbox_%d_%ld.db", (int)getpid(), random());
}

static void rm_db(const char *p)
{
    char x[300];
    unlink(p);
    snprintf(x, sizeof(x), "%s-wal", p);
    unlink(x);
    snprintf(x, sizeof(x), "%s-shm", p);
    unlink(x);
}

WG_TEST(sandbox_number_and_device_jid)
{
    char num[WG_SB_NUMBER_MAX + 1];
    uint32_t id;
    WG_CHECK(wg_sandbox_number_valid("15550001111"));
    WG_CHECK(wg_sandbox_number_valid("1"));
    WG_CHECK(!wg_sandbox_number_valid("0155"));
    WG_CHECK(!wg_sandbox_number_valid(""));
    WG_CHECK(!wg_sandbox_number_valid("+155"));
    WG_CHECK(!wg_sandbox_number_valid("123456789012345678901"));
    WG_CHECK(wg_sandbox_number_valid("12345678901234567890"));
    WG_CHECK_EQ_INT(wg_sandbox_parse_device_jid("15550001111:7@s.whatsapp.net", num, &id), 0);
    WG_CHECK_STR(num, "15550001111");
    WG_CHECK_EQ_INT(id, 7);
    WG_CHECK_EQ_INT(wg_sandbox_parse_device_jid("1:255@s.whatsapp.net", num, &id), 0);
    WG_CHECK_EQ_INT(wg_sandbox_parse_device_jid("1:256@s.whatsapp.net", num, &id), WG_EINVAL);
    WG_CHECK_EQ_INT(wg_sandbox_parse_device_jid("1:7@lid", num, &id), WG_EINVAL);
    WG_CHECK_EQ_INT(wg_sandbox_parse_device_jid("1@s.whatsapp.net", num, &id), WG_EINVAL);
    WG_CHECK_EQ_INT(wg_sandbox_parse_device_jid("01:1@s.whatsapp.net", num, &id), WG_EINVAL);
    WG_CHECK_EQ_INT(wg_sandbox_parse_device_jid("1:x@s.whatsapp.net", num, &id), WG_EINVAL);
    WG_CHECK_EQ_INT(wg_sandbox_parse_device_jid("1:-1@s.whatsapp.net", num, &id), WG_EINVAL);
    WG_CHECK_EQ_INT(wg_sandbox_parse_device_jid(":1@s.whatsapp.net", num, &id), WG_EINVAL);
}

/* ---- prekey upload reader ---------------------------------------------------------------- */

static void addb(wg_node_t *p, const char *tag, const void *b, size_t n)
{
    wg_node_set_bytes(wg_node_add_new(p, tag), b, n);
}

/* A valid upload iq with nkeys keys (ids 1..n) signed by id; spk_out gets the signed prekey. */
static wg_node_t *make_upload(const wg_keys_pair_t *id, size_t nkeys, wg_keys_pair_t *spk_out)
{
    wg_node_t *iq = wg_node_new("iq"), *list, *sk;
    uint8_t reg[4] = {0, 0, 0x30, 0x39}, t = 5, sid[3] = {0, 0, 1}, djb[33], sig[64];
    wg_keys_pair_t spk;
    wg_node_set_attr(iq, "xmlns", "encrypt");
    wg_node_set_attr(iq, "type", "set");
    addb(iq, "registration", reg, 4);
    addb(iq, "type", &t, 1);
    addb(iq, "identity", id->pub, 32);
    list = wg_node_add_new(iq, "list");
    for (size_t i = 0; i < nkeys; i++) {
        wg_node_t *k = wg_node_add_new(list, "key");
        uint8_t kid[3] = {(uint8_t)((i + 1) >> 16), (uint8_t)((i + 1) >> 8), (uint8_t)(i + 1)};
        uint8_t pub[32];
        memset(pub, (int)(i & 0xff), sizeof(pub));
        addb(k, "id", kid, 3);
        addb(k, "value", pub, 32);
    }
    wg_keys_generate(&spk);
    wg_keys_djb_encode(djb, spk.pub);
    wg_keys_sign(sig, id->priv, djb, sizeof(djb));
    sk = wg_node_add_new(iq, "skey");
    addb(sk, "id", sid, 3);
    addb(sk, "value", spk.pub, 32);
    addb(sk, "signature", sig, 64);
    if (spk_out)
        *spk_out = spk;
    return iq;
}

WG_TEST(sandbox_upload_parse)
{
    wg_keys_pair_t id, other, spk;
    wg_sandbox_upload_t u;
    wg_node_t *iq;
    uint8_t sig[64];
    wg_keys_generate(&id);
    wg_keys_generate(&other);
    iq = make_upload(&id, 3, &spk);
    WG_CHECK_EQ_INT(wg_sandbox_upload_parse(iq, &u), 0);
    WG_CHECK_EQ_INT(u.registration_id, 12345);
    WG_CHECK_EQ_INT(u.nkeys, 3);
    WG_CHECK_EQ_INT(u.keys[2].id, 3);
    WG_CHECK_EQ_INT(u.skey_id, 1);
    WG_CHECK_MEM(u.skey_pub, spk.pub, 32);
    WG_CHECK_MEM(u.identity, id.pub, 32);
    wg_sandbox_upload_dispose(&u);
    /* signature by another key */
    wg_node_set_bytes(wg_node_child_by_tag(iq, "identity"), other.pub, 32);
    WG_CHECK_EQ_INT(wg_sandbox_upload_parse(iq, &u), WG_ECRYPTO);
    wg_node_set_bytes(wg_node_child_by_tag(iq, "identity"), id.pub, 31);
    WG_CHECK_EQ_INT(wg_sandbox_upload_parse(iq, &u), WG_EPROTO);
    wg_node_set_bytes(wg_node_child_by_tag(iq, "identity"), id.pub, 32);
    /* tampered signature */
    memcpy(sig,
           wg_node_bytes(wg_node_child_by_tag(wg_node_child_by_tag(iq, "skey"), "signature"),
                         &(size_t){0}),
           64);
    sig[0] ^= 1;
    wg_node_set_bytes(wg_node_child_by_tag(wg_node_child_by_tag(iq, "skey"), "signature"), sig, 64);
    WG_CHECK_EQ_INT(wg_sandbox_upload_parse(iq, &u), WG_ECRYPTO);
    wg_node_free(iq);
    /* key type other than 05 */
    iq = make_upload(&id, 1, NULL);
    wg_node_set_bytes(wg_node_child_by_tag(iq, "type"), "\x06", 1);
    WG_CHECK_EQ_INT(wg_sandbox_upload_parse(iq, &u), WG_EPROTO);
    wg_node_free(iq);
    /* a list entry that is not a <key> with 3 + 32 bytes */
    iq = make_upload(&id, 2, NULL);
    wg_node_set_bytes(
        wg_node_child_by_tag(wg_node_child(wg_node_child_by_tag(iq, "list"), 1), "value"), "x", 1);
    WG_CHECK_EQ_INT(wg_sandbox_upload_parse(iq, &u), WG_EPROTO);
    wg_node_free(iq);
    /* too many keys; and none at all is fine (a signed-prekey-only upload) */
    iq = make_upload(&id, WG_SANDBOX_MAX_PREKEYS + 1, NULL);
    WG_CHECK_EQ_INT(wg_sandbox_upload_parse(iq, &u), WG_ETOOBIG);
    wg_node_free(iq);
    iq = make_upload(&id, 0, NULL);
    WG_CHECK_EQ_INT(wg_sandbox_upload_parse(iq, &u), 0);
    WG_CHECK_EQ_INT(u.nkeys, 0);
    wg_sandbox_upload_dispose(&u);
    wg_node_free(iq);
}

/* ---- state -------------------------------------------------------------------------------- */

WG_TEST(sandbox_state_persists)
{
    char path[256];
    wg_sandbox_state_t *st = NULL;
    wg_keys_pair_t root, root2;
    wg_sandbox_phone_t *p, *q;
    wg_sandbox_device_t d = {0}, *rec;
    wg_sandbox_prekey_t keys[3] = {{1, {1}}, {2, {2}}, {3, {3}}};
    uint8_t spk[32] = {9}, sig[64] = {8};
    uint32_t id;
    int count;
    tmp_path(path, sizeof(path));
    WG_CHECK_EQ_INT(wg_sandbox_state_open(&st, path), 0);
    WG_CHECK_EQ_INT(wg_sandbox_state_root_key(st, &root), 0);
    WG_CHECK_EQ_INT(wg_sandbox_state_phone_add(st, "15550001111", "Ann", &p), 0);
    WG_CHECK_EQ_INT(wg_sandbox_state_phone_add(st, "15550001111", NULL, NULL), WG_EEXIST);
    WG_CHECK_EQ_INT(wg_sandbox_state_phone_add(st, "0155", NULL, NULL), WG_EINVAL);
    WG_CHECK_EQ_INT(wg_sandbox_state_phone_add(st, "15550002222", NULL, NULL), 0);
    WG_CHECK_EQ_INT(strlen(p->lid), 15);
    WG_CHECK_EQ_INT(wg_sandbox_state_phone_take_device(st, p, &id), 0);
    WG_CHECK_EQ_INT(id, 1);
    WG_CHECK_EQ_INT(wg_sandbox_state_phone_take_device(st, p, &id), 0);
    WG_CHECK_EQ_INT(id, 2);
    snprintf(d.number, sizeof(d.number), "15550001111");
    d.id = 2;
    memset(d.noise_pub, 0xa1, 32);
    memset(d.identity_pub, 0xb2, 32);
    d.registration_id = 77;
    snprintf(d.platform, sizeof(d.platform), "Ubuntu");
    d.linked_at = 1700000000;
    WG_CHECK_EQ_INT(wg_sandbox_state_device_add(st, &d, &rec), 0);
    WG_CHECK_EQ_INT(wg_sandbox_state_device_add(st, &d, NULL), WG_EEXIST);
    WG_CHECK_EQ_INT(wg_sandbox_state_prekeys_put(st, rec, 77, d.identity_pub, 1, spk, sig, keys, 3),
                    0);
    WG_CHECK_EQ_INT(wg_sandbox_state_prekeys_put(st, rec, 77, d.identity_pub, 1, spk, sig, keys, 2),
                    0);
    WG_CHECK_EQ_INT(wg_sandbox_state_prekey_count(st, rec, &count), 0);
    WG_CHECK_EQ_INT(count, 3); /* same ids replaced, not added */
    wg_sandbox_state_close(st);
    st = NULL;

    WG_CHECK_EQ_INT(wg_sandbox_state_open(&st, path), 0);
    WG_CHECK_EQ_INT(wg_sandbox_state_root_key(st, &root2), 0);
    WG_CHECK_MEM(root.priv, root2.priv, 32);
    WG_CHECK_MEM(root.pub, root2.pub, 32);
    WG_CHECK_EQ_INT(wg_sandbox_state_phone_count(st), 2);
    WG_CHECK((q = wg_sandbox_state_phone_find(st, "15550001111")) != NULL);
    WG_CHECK_STR(q->push_name, "Ann");
    WG_CHECK_EQ_INT(q->next_device, 3);
    WG_CHECK_STR(wg_sandbox_state_phone_at(st, 1)->number, "15550002222");
    WG_CHECK((rec = wg_sandbox_state_device_find(st, "15550001111", 2)) != NULL);
    WG_CHECK_MEM(rec->noise_pub, d.noise_pub, 32);
    WG_CHECK_MEM(rec->identity_pub, d.identity_pub, 32);
    WG_CHECK_EQ_INT(rec->registration_id, 77);
    WG_CHECK_STR(rec->platform, "Ubuntu");
    WG_CHECK(rec->conn == NULL);
    WG_CHECK_EQ_INT(wg_sandbox_state_prekey_count(st, rec, &count), 0);
    WG_CHECK_EQ_INT(count, 3);
    WG_CHECK_EQ_INT(wg_sandbox_state_device_remove(st, rec), 0);
    WG_CHECK_EQ_INT(wg_sandbox_state_device_count(st), 0);
    wg_sandbox_state_close(st);
    st = NULL;

    WG_CHECK_EQ_INT(wg_sandbox_state_open(&st, path), 0);
    WG_CHECK_EQ_INT(wg_sandbox_state_device_count(st), 0);
    d.id = 2;
    WG_CHECK_EQ_INT(wg_sandbox_state_device_add(st, &d, &rec), 0);
    WG_CHECK_EQ_INT(wg_sandbox_state_prekey_count(st, rec, &count), 0);
    WG_CHECK_EQ_INT(count, 0); /* prekeys went with the removed device */
    wg_sandbox_state_close(st);
    rm_db(path);
}

/* ---- end to end: our own companion against the sandbox on one loop ------------------------- */

typedef struct {
    struct event_base *base;
    wg_sandbox_t *sb;
    wg_sandbox_phone_t *phone;
    char url[64];
    wg_ws_t *ws;
    wg_noise_t *noise;
    int login; /* connect with the login payload */
    wg_keys_pair_t noise_kp, identity, spk;
    uint8_t adv[32];
    int scan_wrong_adv; /* the phone scans a QR with another adv secret */
    int qr_only;        /* keep the QR (c->qr) instead of scanning it directly */
    int hold;           /* do not answer pair-success until hold is cleared */
    char qr[400];
    int have_qr;
    wg_node_t *held; /* the pair-success kept while holding */
    uint32_t device;
    /* observations */
    int nrefs, open, ended, got_pair_success, verify_rv, got_515, got_success, got_offline;
    int got_failure401, got_replaced, got_removed, err_iq;
    int count_value, upload_ok, passive_ok, ping_ok, unknown_err;
    int upload_sent, upload_answered;
    uint64_t upload_sent_ms, upload_answer_ms;   /* monotonic */
    int msg_ack, retry_keys, usync_ok, fetch_ok; /* messaging (issue 5) */
    int rm_refused, rm_ok, rm_removed_after;     /* remove-companion-device (our own logout) */
    char lid[64];
    int scan_status, scan_done;
    char scan_jid[64], scan_err[160];
} cli_t;

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void cli_send(cli_t *c, wg_node_t *n)
{
    wg_buf_t plain, out;
    wg_buf_init(&plain, 0);
    wg_buf_init(&out, 0);
    if (wg_binary_encode(n, &plain) == 0 &&
        wg_noise_encrypt_frame(c->noise, plain.data, plain.len, &out) == 0)
        wg_ws_send_binary(c->ws, out.data, out.len);
    wg_buf_dispose(&plain);
    wg_buf_dispose(&out);
    wg_node_free(n);
}

static wg_node_t *cli_iq(const char *type, const char *id, const char *xmlns)
{
    wg_node_t *n = wg_node_new("iq");
    wg_node_set_attr_jid(n, "to", "@s.whatsapp.net");
    wg_node_set_attr(n, "type", type);
    wg_node_set_attr(n, "id", id);
    if (xmlns)
        wg_node_set_attr(n, "xmlns", xmlns);
    return n;
}

static void scan_done(void *arg, int status, const char *jid, const char *err)
{
    cli_t *c = arg;
    c->scan_done = 1;
    c->scan_status = status;
    snprintf(c->scan_jid, sizeof(c->scan_jid), "%s", jid ? jid : "");
    snprintf(c->scan_err, sizeof(c->scan_err), "%s", err ? err : "");
}

static void cli_after_success(cli_t *c)
{
    wg_node_t *n = cli_iq("get", "c.1", "encrypt");
    wg_node_add_new(n, "count");
    cli_send(c, n);
}

static int cli_frame(void *ud, const uint8_t *p, size_t len)
{
    cli_t *c = ud;
    wg_node_t *n = NULL, *ch;
    const char *type, *id;
    if (wg_binary_decode(p, len, NULL, &n) != 0)
        return WG_EPROTO;
    type = wg_node_attr(n, "type");
    id = wg_node_attr(n, "id");
    ch = wg_node_child(n, 0);
    if (wg_node_tag_is(n, "iq") && ch && wg_node_tag_is(ch, "pair-device")) {
        wg_pair_qr_t dummy;
        char *qr = NULL;
        size_t rlen;
        const uint8_t *ref = wg_node_bytes(wg_node_child(ch, 0), &rlen);
        uint8_t adv[32];
        const char *err = NULL;
        wg_sandbox_pending_t *ticket;
        c->nrefs = (int)wg_node_child_count(ch);
        cli_send(c, cli_iq("result", id, NULL));
        memcpy(adv, c->adv, 32);
        if (c->scan_wrong_adv)
            adv[0] ^= 1;
        wg_pair_qr_string(&qr, ref, rlen, c->noise_kp.pub, c->identity.pub, adv, '1',
                          WG_PAIR_QR_URL);
        (void)dummy;
        if (c->qr_only) {
            snprintf(c->qr, sizeof(c->qr), "%s", qr ? qr : "");
            c->have_qr = 1;
        } else {
            c->scan_status = wg_sandbox_scan(c->sb, c->phone, qr, scan_done, c, &ticket, &err);
            if (c->scan_status)
                c->scan_done = 1;
        }
        free(qr);
    } else if (wg_node_tag_is(n, "iq") && ch && wg_node_tag_is(ch, "pair-success") && c->hold) {
        c->got_pair_success = 1;
        c->held = n; /* answered later by cli_release */
        return 0;
    } else if (wg_node_tag_is(n, "iq") && ch && wg_node_tag_is(ch, "pair-success")) {
        wg_pair_success_t ps;
        wg_pair_fail_t fail;
        size_t dlen;
        const uint8_t *di = wg_node_bytes(wg_node_child_by_tag(ch, "device-identity"), &dlen);
        c->got_pair_success = 1;
        c->verify_rv = wg_pair_verify_success(&ps, &fail, c->adv, &c->identity, di, dlen);
        if (c->verify_rv == 0) {
            wg_node_t *r = cli_iq("result", id, NULL), *s = wg_node_add_new(r, "pair-device-sign");
            wg_node_t *d = wg_node_add_new(s, "device-identity");
            wg_node_set_attrf(d, "key-index", "%u", ps.device.key_index);
            wg_node_set_bytes(d, ps.reply, ps.reply_len);
            cli_send(c, r);
            wg_pair_success_dispose(&ps);
            wg_jid_t jid;
            if (wg_node_attr_jid(wg_node_child_by_tag(ch, "device"), "jid", &jid) == 0)
                c->device = jid.device;
        } else {
            wg_node_t *r = cli_iq("error", id, NULL), *e = wg_node_add_new(r, "error");
            wg_node_set_attrf(e, "code", "%d", wg_pair_fail_code(fail));
            wg_node_set_attr(e, "text", wg_pair_fail_text(fail));
            cli_send(c, r);
        }
    } else if (wg_node_tag_is(n, "iq") && id && !strcmp(id, "rm.1")) {
        wg_node_t *e = wg_node_child_by_tag(n, "error");
        c->rm_refused = type && !strcmp(type, "error") && e && wg_node_attr(e, "code") &&
                        !strcmp(wg_node_attr(e, "code"), "400");
    } else if (wg_node_tag_is(n, "iq") && id && !strcmp(id, "rm.2")) {
        c->rm_ok = type && !strcmp(type, "result");
    } else if (wg_node_tag_is(n, "stream:error")) {
        const char *code = wg_node_attr(n, "code");
        wg_node_t *k = wg_node_child_by_tag(n, "conflict");
        const char *kt = k ? wg_node_attr(k, "type") : NULL;
        c->rm_removed_after = c->rm_ok; /* the stream ends after the iq's result */
        if (code && !strcmp(code, "515"))
            c->got_515 = 1;
        if (kt && !strcmp(kt, "replaced"))
            c->got_replaced = 1;
        if (kt && !strcmp(kt, "device_removed") && code && !strcmp(code, "401"))
            c->got_removed = 1;
    } else if (wg_node_tag_is(n, "failure")) {
        const char *r = wg_node_attr(n, "reason");
        c->got_failure401 = r && !strcmp(r, "401");
    } else if (wg_node_tag_is(n, "success")) {
        c->got_success = 1;
        snprintf(c->lid, sizeof(c->lid), "%s",
                 wg_node_attr(n, "lid") ? wg_node_attr(n, "lid") : "");
        cli_after_success(c);
    } else if (wg_node_tag_is(n, "ib") && ch && wg_node_tag_is(ch, "offline")) {
        c->got_offline = wg_node_attr(ch, "count") && !strcmp(wg_node_attr(ch, "count"), "0");
    } else if (wg_node_tag_is(n, "iq") && id && !strcmp(id, "c.1")) {
        wg_node_t *k = wg_node_child_by_tag(n, "count");
        c->count_value = k && wg_node_attr(k, "value") ? atoi(wg_node_attr(k, "value")) : -1;
        wg_node_t *up = make_upload(&c->identity, 5, NULL);
        wg_node_set_attr_jid(up, "to", "@s.whatsapp.net");
        wg_node_set_attr(up, "id", "u.1");
        c->upload_sent = 1;
        c->upload_sent_ms = mono_ms();
        cli_send(c, up);
    } else if (wg_node_tag_is(n, "iq") && id && !strcmp(id, "u.1")) {
        c->upload_answered = 1;
        c->upload_answer_ms = mono_ms();
        c->upload_ok = type && !strcmp(type, "result");
        wg_node_t *q = cli_iq("get", "c.2", "encrypt");
        wg_node_add_new(q, "count");
        cli_send(c, q);
    } else if (wg_node_tag_is(n, "iq") && id && !strcmp(id, "c.2")) {
        wg_node_t *k = wg_node_child_by_tag(n, "count");
        c->count_value = k && wg_node_attr(k, "value") ? atoi(wg_node_attr(k, "value")) : -1;
        wg_node_t *q = cli_iq("set", "p.1", "passive");
        wg_node_add_new(q, "active");
        cli_send(c, q);
    } else if (wg_node_tag_is(n, "iq") && id && !strcmp(id, "p.1")) {
        c->passive_ok = type && !strcmp(type, "result");
        wg_node_t *q = cli_iq("get", "k.1", "w:p");
        wg_node_add_new(q, "ping");
        cli_send(c, q);
    } else if (wg_node_tag_is(n, "iq") && id && !strcmp(id, "k.1")) {
        c->ping_ok = type && !strcmp(type, "result");
        wg_node_t *q = cli_iq("get", "x.1", "w:unknown");
        wg_node_add_new(q, "whatever");
        cli_send(c, q);
    } else if (wg_node_tag_is(n, "iq") && id && !strcmp(id, "x.1")) {
        wg_node_t *e = wg_node_child_by_tag(n, "error");
        c->unknown_err = type && !strcmp(type, "error") && e && wg_node_attr(e, "code") &&
                         !strcmp(wg_node_attr(e, "code"), "501");
        /* messaging: a usync device list of our own number and an unknown one */
        const char *users[] = {"15550009999@s.whatsapp.net", "19999999999@s.whatsapp.net"};
        wg_node_t *q = NULL;
        if (wg_stanza_usync_build("s.1", users, 2, 1, &q) == 0) {
            wg_node_set_attr(q, "id", "us.1");
            cli_send(c, q);
        }
    } else if (wg_node_tag_is(n, "iq") && id && !strcmp(id, "us.1")) {
        wg_stanza_usync_user_t *u = NULL;
        size_t nu = 0;
        if (wg_stanza_usync_parse(n, &u, &nu) == 0 && nu == 2)
            c->usync_ok = !u[0].error && u[0].n_devices == 2 && u[0].devices[0].id == 0 &&
                          u[0].devices[1].id == 1 && u[0].devices[1].key_index == 1 && u[0].lid &&
                          strstr(u[0].lid, "@lid") && u[1].error && u[1].n_devices == 0;
        free(u);
        /* the bundle of our own device (its upload: ids 1..5; the lowest is handed out) and of
         * the phone (its own keys) */
        const char *devs[] = {"15550009999:1@s.whatsapp.net", "15550009999@s.whatsapp.net"};
        wg_node_t *q = NULL;
        if (wg_stanza_prekey_fetch_build(devs, 2, 0, &q) == 0) {
            wg_node_set_attr(q, "id", "kf.1");
            cli_send(c, q);
        }
    } else if (wg_node_tag_is(n, "iq") && id && !strcmp(id, "kf.1")) {
        wg_stanza_bundle_t *b = NULL;
        size_t nb = 0;
        if (wg_stanza_prekey_fetch_parse(n, &b, &nb) == 0 && nb == 2)
            c->fetch_ok = !b[0].error && b[0].bundle.has_prekey && b[0].bundle.prekey_id == 1 &&
                          memcmp(b[0].bundle.identity, c->identity.pub, 32) == 0 && !b[1].error &&
                          b[1].bundle.has_prekey &&
                          memcmp(b[1].bundle.identity, c->phone->account.pub, 32) == 0;
        free(b);
        /* a single-device message to our own phone that it cannot decrypt: the server acks
         * it and the phone answers with a retry receipt carrying its keys (§2.8) */
        wg_node_t *m = wg_node_new("message"), *e;
        wg_node_set_attr(m, "id", "3EB0000000000000000001");
        wg_node_set_attr_jid(m, "to", "15550009999@s.whatsapp.net");
        wg_node_set_attr(m, "type", "text");
        e = wg_node_add_new(m, "enc");
        wg_node_set_attr(e, "v", "2");
        wg_node_set_attr(e, "type", "msg");
        wg_node_set_bytes(e, "\x33garbage", 8);
        cli_send(c, m);
    } else if (wg_node_tag_is(n, "ack") && id && !strcmp(id, "3EB0000000000000000001")) {
        c->msg_ack = wg_node_attr(n, "class") && !strcmp(wg_node_attr(n, "class"), "message") &&
                     !wg_node_attr(n, "error");
    } else if (wg_node_tag_is(n, "receipt") && type && !strcmp(type, "retry")) {
        wg_stanza_receipt_in_t r;
        if (wg_stanza_receipt_parse(n, &r) == 0 && r.has_keys && r.retry_count == 1 &&
            !strcmp(r.id, "3EB0000000000000000001") &&
            !strcmp(r.from, "15550009999@s.whatsapp.net") &&
            memcmp(r.keys.identity, c->phone->account.pub, 32) == 0)
            c->retry_keys = 1;
    }
    wg_node_free(n);
    return 0;
}

/* Answers a held pair-success now. */
static void cli_release(cli_t *c)
{
    wg_node_t *n = c->held;
    uint8_t *copy;
    wg_buf_t b;
    c->hold = 0;
    c->held = NULL;
    c->got_pair_success = 0;
    wg_buf_init(&b, 0);
    if (n && wg_binary_encode(n, &b) == 0 && (copy = malloc(b.len))) {
        memcpy(copy, b.data, b.len);
        cli_frame(c, copy, b.len);
        free(copy);
    }
    wg_buf_dispose(&b);
    wg_node_free(n);
}

static int cli_handshake(void *ud, wg_noise_t *n)
{
    (void)ud;
    (void)n;
    return 0;
}

static void ws_open_cb(wg_ws_t *ws, void *user)
{
    cli_t *c = user;
    wg_noise_opts_t o = {0};
    wg_noise_callbacks_t cb = {cli_handshake, cli_frame, c};
    wg_payload_config_t cfg;
    uint8_t *payload = NULL;
    size_t plen = 0;
    wg_buf_t out;
    (void)ws;
    c->open = 1;
    o.root_pub = wg_sandbox_root(c->sb)->pub;
    wg_payload_config_init(&cfg);
    if (c->login) {
        wg_payload_build_login(&cfg, strtoull(c->phone->number, NULL, 10), c->device, &payload,
                               &plen);
    } else {
        wg_payload_reg_t reg = {0};
        uint8_t djb[33];
        reg.registration_id = 4242;
        memcpy(reg.identity_pub, c->identity.pub, 32);
        reg.signed_prekey_id = 1;
        memcpy(reg.signed_prekey_pub, c->spk.pub, 32);
        wg_keys_djb_encode(djb, c->spk.pub);
        wg_keys_sign(reg.signed_prekey_sig, c->identity.priv, djb, 33);
        wg_payload_build_registration(&cfg, &reg, &payload, &plen);
    }
    wg_buf_init(&out, 0);
    if (wg_noise_client_new(&c->noise, &c->noise_kp, &o, &cb) == 0 &&
        wg_noise_client_start(c->noise, payload, plen, &out) == 0)
        wg_ws_send_binary(c->ws, out.data, out.len);
    wg_buf_dispose(&out);
    free(payload);
}

static void ws_msg_cb(wg_ws_t *ws, const uint8_t *data, size_t len, void *user)
{
    cli_t *c = user;
    wg_buf_t out;
    (void)ws;
    wg_buf_init(&out, 0);
    if (wg_noise_feed(c->noise, data, len, (uint64_t)time(NULL), &out) == 0 && out.len)
        wg_ws_send_binary(c->ws, out.data, out.len);
    wg_buf_dispose(&out);
}

static void ws_close_cb(wg_ws_t *ws, int code, const char *reason, void *user)
{
    (void)ws;
    (void)code;
    (void)reason;
    ((cli_t *)user)->ended = 1;
}

static void ws_err_cb(wg_ws_t *ws, int err, const char *msg, void *user)
{
    (void)ws;
    (void)err;
    (void)msg;
    ((cli_t *)user)->ended = 1;
}

static void cli_disconnect(cli_t *c)
{
    wg_node_free(c->held);
    c->held = NULL;
    wg_ws_free(c->ws);
    wg_noise_free(c->noise);
    c->ws = NULL;
    c->noise = NULL;
}

static int cli_connect(cli_t *c, int login)
{
    wg_ws_opts_t o = {0};
    wg_ws_cbs_t cbs = {ws_open_cb, ws_msg_cb, ws_close_cb, ws_err_cb, NULL};
    cli_disconnect(c);
    c->login = login;
    c->open = c->ended = 0;
    o.url = c->url;
    return wg_ws_new(&c->ws, c->base, &o, &cbs, c);
}

/* Runs the loop until *flag is set or 10 s pass. */
static int run_until(cli_t *c, const int *flag)
{
    time_t end = time(NULL) + 10;
    while (!*flag && time(NULL) < end)
        event_base_loop(c->base, EVLOOP_ONCE | EVLOOP_NONBLOCK), usleep(1000);
    return *flag;
}

static void cli_init(cli_t *c, struct event_base *base, wg_sandbox_t *sb, wg_sandbox_phone_t *p)
{
    memset(c, 0, sizeof(*c));
    c->base = base;
    c->sb = sb;
    c->phone = p;
    snprintf(c->url, sizeof(c->url), "ws://127.0.0.1:%u/ws/chat", wg_sandbox_port(sb));
    wg_keys_generate(&c->noise_kp);
    wg_keys_generate(&c->identity);
    wg_keys_generate(&c->spk);
    wg_random_bytes(c->adv, sizeof(c->adv));
}

WG_TEST(sandbox_end_to_end)
{
    char path[256], jid[64];
    struct event_base *base = event_base_new();
    wg_sandbox_state_t *st = NULL;
    wg_sandbox_t *sb = NULL;
    wg_sandbox_phone_t *p;
    wg_sandbox_device_t *d;
    wg_sandbox_opts_t o = {"127.0.0.1:0", NULL, 20, 3000, 200};
    static cli_t a, b, e;
    wg_log_level_t lvl = wg_log_min_level;
    wg_log_set_level(WG_LOG_WARN); /* the flow logs each step at info */
    tmp_path(path, sizeof(path));
    WG_CHECK(base != NULL);
    WG_CHECK_EQ_INT(wg_sandbox_state_open(&st, path), 0);
    WG_CHECK_EQ_INT(wg_sandbox_new(&sb, base, st, &o), 0);
    WG_CHECK_EQ_INT(wg_sandbox_state_phone_add(st, "15550009999", "Pat", &p), 0);

    /* registration: 6 refs, the phone scans, pair-success verifies on the companion side */
    cli_init(&a, base, sb, p);
    WG_CHECK_EQ_INT(cli_connect(&a, 0), 0);
    WG_CHECK(run_until(&a, &a.scan_done));
    WG_CHECK_EQ_INT(a.nrefs, 6);
    WG_CHECK(a.got_pair_success);
    WG_CHECK_EQ_INT(a.verify_rv, 0);
    WG_CHECK_EQ_INT(a.scan_status, 200);
    WG_CHECK_STR(a.scan_jid, "15550009999:1@s.whatsapp.net");
    WG_CHECK(run_until(&a, &a.got_515));
    WG_CHECK_EQ_INT(a.device, 1);
    WG_CHECK((d = wg_sandbox_state_device_find(st, "15550009999", 1)) != NULL);
    WG_CHECK_MEM(d->noise_pub, a.noise_kp.pub, 32);
    WG_CHECK_MEM(d->identity_pub, a.identity.pub, 32);

    /* login: success with the device LID, empty offline queue, prekeys, passive, ping, 501 */
    WG_CHECK_EQ_INT(cli_connect(&a, 1), 0);
    WG_CHECK(run_until(&a, &a.unknown_err));
    WG_CHECK(a.got_success);
    snprintf(jid, sizeof(jid), "%s:1@lid", p->lid);
    WG_CHECK_STR(a.lid, jid);
    WG_CHECK(a.got_offline);
    WG_CHECK(a.upload_ok);
    WG_CHECK_EQ_INT(a.count_value, 5);
    WG_CHECK(a.passive_ok && a.ping_ok);
    WG_CHECK(d->conn != NULL);
    /* messaging: usync, bundles, a single-device message acked, the phone's retry receipt */
    WG_CHECK(run_until(&a, &a.retry_keys));
    WG_CHECK(a.usync_ok);
    WG_CHECK(a.fetch_ok);
    WG_CHECK(a.msg_ack);
    {
        int left = -1;
        WG_CHECK_EQ_INT(wg_sandbox_state_prekey_count(st, d, &left), 0);
        WG_CHECK_EQ_INT(left, 4); /* the fetch consumed one of the 5 */
    }

    /* a second login of the same device replaces the first */
    b = a;
    b.ws = NULL;
    b.noise = NULL;
    b.got_success = b.unknown_err = 0;
    WG_CHECK_EQ_INT(cli_connect(&b, 1), 0);
    WG_CHECK(run_until(&b, &b.unknown_err));
    WG_CHECK(run_until(&a, &a.got_replaced));
    WG_CHECK_EQ_INT(b.count_value, 5); /* the same ids 1..5 again: replaced, not added */

    /* logout from the phone: 401 device_removed, record gone, next login refused */
    WG_CHECK_EQ_INT(wg_sandbox_logout(sb, d), 0);
    WG_CHECK(run_until(&b, &b.got_removed));
    WG_CHECK(wg_sandbox_state_device_find(st, "15550009999", 1) == NULL);
    WG_CHECK_EQ_INT(cli_connect(&b, 1), 0);
    WG_CHECK(run_until(&b, &b.got_failure401));

    /* the QR carries an adv secret the companion does not have: it rejects pair-success */
    cli_init(&e, base, sb, p);
    e.scan_wrong_adv = 1;
    WG_CHECK_EQ_INT(cli_connect(&e, 0), 0);
    WG_CHECK(run_until(&e, &e.scan_done));
    WG_CHECK_EQ_INT(e.scan_status, 422);
    WG_CHECK(strstr(e.scan_err, "hmac") != NULL);
    WG_CHECK_EQ_INT(wg_sandbox_state_device_count(st), 0);

    /* the companion logs itself out (remove-companion-device): another device's JID is
     * refused (400, nothing removed); its own: result, record gone, then 401 device_removed */
    static cli_t f;
    cli_init(&f, base, sb, p);
    WG_CHECK_EQ_INT(cli_connect(&f, 0), 0);
    WG_CHECK(run_until(&f, &f.got_515));
    WG_CHECK_EQ_INT(cli_connect(&f, 1), 0);
    WG_CHECK(run_until(&f, &f.retry_keys));
    WG_CHECK((d = wg_sandbox_state_device_find(st, "15550009999", f.device)) != NULL);
    {
        wg_node_t *q = cli_iq("set", "rm.1", "md");
        wg_node_t *r = wg_node_add_new(q, "remove-companion-device");
        snprintf(jid, sizeof(jid), "15550009999:%u@s.whatsapp.net", f.device + 1);
        wg_node_set_attr_jid(r, "jid", jid);
        wg_node_set_attr(r, "reason", "user_initiated");
        cli_send(&f, q);
        WG_CHECK(run_until(&f, &f.rm_refused));
        WG_CHECK(wg_sandbox_state_device_find(st, "15550009999", f.device) != NULL);
        q = cli_iq("set", "rm.2", "md");
        r = wg_node_add_new(q, "remove-companion-device");
        snprintf(jid, sizeof(jid), "15550009999:%u@s.whatsapp.net", f.device);
        wg_node_set_attr_jid(r, "jid", jid);
        wg_node_set_attr(r, "reason", "user_initiated");
        cli_send(&f, q);
        WG_CHECK(run_until(&f, &f.got_removed));
        WG_CHECK(f.rm_ok && f.rm_removed_after);
        WG_CHECK(wg_sandbox_state_device_find(st, "15550009999", f.device) == NULL);
        WG_CHECK(run_until(&f, &f.ended));
    }

    cli_disconnect(&a);
    cli_disconnect(&b);
    cli_disconnect(&e);
    cli_disconnect(&f);
    wg_sandbox_free(sb);
    wg_sandbox_state_close(st);
    event_base_free(base);
    rm_db(path);
    wg_log_set_level(lvl);
}

/* ---- the control API's parked scan: answered, and the HTTP client leaving early ------------ */

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>

static int http_post(uint16_t port, const char *path, const char *body)
{
    struct sockaddr_in a = {0};
    char req[1024];
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0)
        return -1;
    snprintf(req, sizeof(req),
             "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
             "Content-Length: %zu\r\n\r\n%s",
             path, strlen(body), body);
    if (write(fd, req, strlen(req)) != (ssize_t)strlen(req)) {
        close(fd);
        return -1;
    }
    fcntl(fd, F_SETFL, O_NONBLOCK);
    return fd;
}

/* Pumps the loop until the response (or 10 s); appends what arrived to out. */
static int http_read(cli_t *c, int fd, char *out, size_t cap)
{
    size_t n = 0;
    time_t end = time(NULL) + 10;
    out[0] = 0;
    while (time(NULL) < end) {
        ssize_t r = read(fd, out + n, cap - 1 - n);
        if (r > 0) {
            n += (size_t)r;
            out[n] = 0;
            if (strstr(out, "\r\n\r\n") && strchr(strstr(out, "\r\n\r\n"), '}'))
                return 0;
        }
        event_base_loop(c->base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
        usleep(1000);
    }
    return -1;
}

static void pump(cli_t *c, int ms)
{
    for (int i = 0; i < ms; i++) {
        event_base_loop(c->base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
        usleep(1000);
    }
}

WG_TEST(sandbox_control_scan_parked)
{
    char path[256], body[600], resp[2048];
    struct event_base *base = event_base_new();
    wg_sandbox_state_t *st = NULL;
    wg_sandbox_t *sb = NULL;
    wg_sandbox_control_t *ctl = NULL;
    wg_sandbox_phone_t *p;
    wg_sandbox_opts_t o = {"127.0.0.1:0", NULL, 0, 3000, 200};
    static cli_t a, b;
    wg_log_level_t lvl = wg_log_min_level;
    int fd;
    wg_log_set_level(WG_LOG_WARN);
    tmp_path(path, sizeof(path));
    WG_CHECK_EQ_INT(wg_sandbox_state_open(&st, path), 0);
    WG_CHECK_EQ_INT(wg_sandbox_new(&sb, base, st, &o), 0);
    WG_CHECK_EQ_INT(wg_sandbox_control_new(&ctl, base, sb, "127.0.0.1:0"), 0);
    WG_CHECK_EQ_INT(wg_sandbox_state_phone_add(st, "15550008888", NULL, &p), 0);

    /* answered: the HTTP request waits for pair-device-sign, then gets the device JID */
    cli_init(&a, base, sb, p);
    a.qr_only = 1;
    WG_CHECK_EQ_INT(cli_connect(&a, 0), 0);
    WG_CHECK(run_until(&a, &a.have_qr));
    snprintf(body, sizeof(body), "{\"qr\": \"%s\"}", a.qr);
    WG_CHECK((fd = http_post(wg_sandbox_control_port(ctl), "/phones/15550008888/scan", body)) >= 0);
    WG_CHECK_EQ_INT(http_read(&a, fd, resp, sizeof(resp)), 0);
    close(fd);
    WG_CHECK(strstr(resp, "HTTP/1.1 200") == resp);
    WG_CHECK(strstr(resp, "\"deviceJid\":\"15550008888:1@s.whatsapp.net\"") != NULL);
    WG_CHECK_EQ_INT(wg_sandbox_state_device_count(st), 1);

    /* the HTTP client leaves while the companion holds its answer: the scan is the phone's
     * act and completes anyway (evhttp does not watch a request's socket before the reply);
     * the answer goes to a closed connection without harm (ASan/LSan watch this) */
    cli_init(&b, base, sb, p);
    b.qr_only = 1;
    b.hold = 1;
    WG_CHECK_EQ_INT(cli_connect(&b, 0), 0);
    WG_CHECK(run_until(&b, &b.have_qr));
    snprintf(body, sizeof(body), "{\"qr\": \"%s\"}", b.qr);
    WG_CHECK((fd = http_post(wg_sandbox_control_port(ctl), "/phones/15550008888/scan", body)) >= 0);
    WG_CHECK(run_until(&b, &b.got_pair_success));
    close(fd);
    pump(&b, 200);
    cli_release(&b);
    pump(&b, 300);
    WG_CHECK(run_until(&b, &b.got_515));
    WG_CHECK_EQ_INT(wg_sandbox_state_device_count(st), 2);

    cli_disconnect(&a);
    cli_disconnect(&b);
    wg_sandbox_control_free(ctl);
    wg_sandbox_free(sb);
    wg_sandbox_state_close(st);
    event_base_free(base);
    rm_db(path);
    wg_log_set_level(lvl);
}

WG_TEST(sandbox_idle_timeout)
{
    char path[256];
    struct event_base *base = event_base_new();
    wg_sandbox_state_t *st = NULL;
    wg_sandbox_t *sb = NULL;
    wg_sandbox_phone_t *p;
    wg_sandbox_opts_t o = {"127.0.0.1:0", NULL, 0, 3000, 200, 1};
    static cli_t a;
    wg_log_level_t lvl = wg_log_min_level;
    time_t t0;
    wg_log_set_level(WG_LOG_WARN);
    tmp_path(path, sizeof(path));
    WG_CHECK_EQ_INT(wg_sandbox_state_open(&st, path), 0);
    WG_CHECK_EQ_INT(wg_sandbox_new(&sb, base, st, &o), 0);
    WG_CHECK_EQ_INT(wg_sandbox_state_phone_add(st, "15550007777", NULL, &p), 0);
    cli_init(&a, base, sb, p);
    WG_CHECK_EQ_INT(cli_connect(&a, 0), 0);
    WG_CHECK(run_until(&a, &a.got_515));
    WG_CHECK_EQ_INT(cli_connect(&a, 1), 0);
    WG_CHECK(run_until(&a, &a.unknown_err)); /* the last of the client's queries */
    t0 = time(NULL);
    WG_CHECK(!a.ended);
    WG_CHECK(run_until(&a, &a.ended)); /* silent from here on: closed after ~1 s + 0.5 s */
    WG_CHECK(time(NULL) - t0 <= 4);
    cli_disconnect(&a);
    wg_sandbox_free(sb);
    wg_sandbox_state_close(st);
    event_base_free(base);
    rm_db(path);
    wg_log_set_level(lvl);
}

/* ---- control/prekey-upload: refused uploads store nothing; held answers come late --------- */

WG_TEST(sandbox_prekey_upload_faults)
{
    char path[256];
    struct event_base *base = event_base_new();
    wg_sandbox_state_t *st = NULL;
    wg_sandbox_t *sb = NULL;
    wg_sandbox_phone_t *p;
    wg_sandbox_device_t *d;
    wg_sandbox_opts_t o = {"127.0.0.1:0", NULL, 0, 3000, 200};
    static cli_t a;
    unsigned delay, fail;
    int left = -1;
    wg_log_level_t lvl = wg_log_min_level;
    wg_log_set_level(WG_LOG_WARN);
    tmp_path(path, sizeof(path));
    WG_CHECK_EQ_INT(wg_sandbox_state_open(&st, path), 0);
    WG_CHECK_EQ_INT(wg_sandbox_new(&sb, base, st, &o), 0);
    WG_CHECK_EQ_INT(wg_sandbox_state_phone_add(st, "15550006666", NULL, &p), 0);
    wg_sandbox_upload_faults(sb, -1, -1, &delay, &fail);
    WG_CHECK_EQ_INT(delay, 0);
    WG_CHECK_EQ_INT(fail, 0);
    cli_init(&a, base, sb, p);
    WG_CHECK_EQ_INT(cli_connect(&a, 0), 0);
    WG_CHECK(run_until(&a, &a.got_515));
    WG_CHECK((d = wg_sandbox_state_device_find(st, "15550006666", 1)) != NULL);

    /* refused once: error 500 at once, nothing stored (the next count says 0) */
    wg_sandbox_upload_faults(sb, -1, 1, &delay, &fail);
    WG_CHECK_EQ_INT(fail, 1);
    WG_CHECK_EQ_INT(cli_connect(&a, 1), 0);
    WG_CHECK(run_until(&a, &a.unknown_err));
    WG_CHECK(a.upload_answered && !a.upload_ok);
    WG_CHECK_EQ_INT(a.count_value, 0);
    WG_CHECK_EQ_INT(wg_sandbox_state_prekey_count(st, d, &left), 0);
    WG_CHECK_EQ_INT(left, 0);
    wg_sandbox_upload_faults(sb, -1, -1, &delay, &fail);
    WG_CHECK_EQ_INT(fail, 0); /* used up */

    /* held 400 ms: the keys are stored at once, the result comes after the delay */
    wg_sandbox_upload_faults(sb, 400, -1, &delay, &fail);
    WG_CHECK_EQ_INT(delay, 400);
    a.upload_sent = a.upload_answered = a.upload_ok = a.unknown_err = 0;
    WG_CHECK_EQ_INT(cli_connect(&a, 1), 0);
    WG_CHECK(run_until(&a, &a.upload_sent));
    WG_CHECK(run_until(&a, &a.upload_answered));
    WG_CHECK(a.upload_ok);
    WG_CHECK(a.upload_answer_ms - a.upload_sent_ms >= 390);
    WG_CHECK(run_until(&a, &a.unknown_err));
    WG_CHECK_EQ_INT(a.count_value, 5);

    /* the client leaves while an answer is held: the connection goes, nothing is sent late */
    a.upload_sent = a.upload_answered = 0;
    WG_CHECK_EQ_INT(cli_connect(&a, 1), 0);
    WG_CHECK(run_until(&a, &a.upload_sent));
    {
        uint64_t end = mono_ms() + 150; /* the server has it and holds the answer */
        while (mono_ms() < end)
            event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK), usleep(1000);
    }
    WG_CHECK(!a.upload_answered);
    cli_disconnect(&a);
    {
        uint64_t end = mono_ms() + 700;
        while (mono_ms() < end)
            event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK), usleep(1000);
    }
    WG_CHECK(!a.upload_answered);
    WG_CHECK_EQ_INT(wg_sandbox_connection_count(sb), 0);

    wg_sandbox_upload_faults(sb, 0, 0, &delay, &fail);
    wg_sandbox_free(sb);
    wg_sandbox_state_close(st);
    event_base_free(base);
    rm_db(path);
    wg_log_set_level(lvl);
}

/* ---- issue 5: phones' Signal state, bundles, offline queue, inbox, groups (state.c) -------- */

static int offline_collect(void *arg, const uint8_t *node, size_t len)
{
    wg_buf_t *b = arg;
    wg_buf_append(b, node, len);
    wg_buf_append(b, "|", 1);
    return 0;
}

WG_TEST(sandbox_state_messaging)
{
    char path[256], subject[64], creator[24], parts[256];
    wg_sandbox_state_t *st = NULL;
    wg_sandbox_phone_t *a, *b;
    wg_sandbox_device_t d = {0}, *rec;
    wg_sandbox_prekey_t keys[2] = {{5, {5}}, {3, {3}}};
    wg_keys_pair_t spk;
    uint8_t djb[33], sig[64];
    wg_signal_bundle_t bun, bun2;
    wg_signal_t *sa, *sb_;
    wg_signal_addr_t addr_a = {"15550001111", 0}, addr_b = {"15550002222", 0};
    wg_signal_type_t t;
    uint8_t *ct = NULL, *pt = NULL;
    size_t ctlen, ptlen, n;
    int count;
    int64_t created;
    wg_buf_t q;
    json_t *j;
    tmp_path(path, sizeof(path));
    WG_CHECK_EQ_INT(wg_sandbox_state_open(&st, path), 0);
    WG_CHECK_EQ_INT(wg_sandbox_state_phone_add(st, "15550001111", "Ann", &a), 0);
    WG_CHECK_EQ_INT(wg_sandbox_state_phone_add(st, "15550002222", NULL, &b), 0);
    /* a phone's bundle: identity = the account key, signed prekey verifies, a new one-time
     * prekey each time */
    WG_CHECK_EQ_INT(wg_sandbox_state_phone_bundle(st, b, &bun), 0);
    WG_CHECK_EQ_INT(wg_sandbox_state_phone_bundle(st, b, &bun2), 0);
    WG_CHECK_MEM(bun.identity, b->account.pub, 32);
    WG_CHECK(bun.has_prekey && bun2.has_prekey && bun.prekey_id != bun2.prekey_id);
    WG_CHECK_EQ_INT(bun.registration_id, bun2.registration_id);
    wg_keys_djb_encode(djb, bun.signed_prekey);
    WG_CHECK_EQ_INT(wg_keys_verify(b->account.pub, djb, 33, bun.signed_prekey_sig), 0);
    /* a session from phone a to phone b, through the stored state */
    WG_CHECK_EQ_INT(wg_sandbox_state_phone_signal(st, a, &sa), 0);
    WG_CHECK_EQ_INT(wg_sandbox_state_phone_signal(st, b, &sb_), 0);
    WG_CHECK_EQ_INT(wg_signal_process_bundle(sa, &addr_b, &bun), 0);
    WG_CHECK_EQ_INT(
        wg_signal_encrypt(sa, &addr_b, (const uint8_t *)"hello\x01", 6, &t, &ct, &ctlen), 0);
    WG_CHECK_EQ_INT(t, WG_SIGNAL_PKMSG);
    WG_CHECK_EQ_INT(wg_signal_decrypt(sb_, &addr_a, t, ct, ctlen, &pt, &ptlen), 0);
    WG_CHECK(ptlen == 6 && memcmp(pt, "hello\x01", 6) == 0);
    free(ct), free(pt);
    ct = pt = NULL;
    /* b answers, then everything is reopened: the sessions are in the file */
    WG_CHECK_EQ_INT(wg_signal_encrypt(sb_, &addr_a, (const uint8_t *)"yo\x01", 3, &t, &ct, &ctlen),
                    0);
    WG_CHECK_EQ_INT(t, WG_SIGNAL_MSG);
    WG_CHECK_EQ_INT(wg_signal_decrypt(sa, &addr_b, t, ct, ctlen, &pt, &ptlen), 0);
    free(ct), free(pt);
    ct = pt = NULL;

    /* a companion's bundle consumes its lowest one-time prekey, then has none */
    snprintf(d.number, sizeof(d.number), "15550001111");
    d.id = 1;
    WG_CHECK_EQ_INT(wg_keys_generate(&spk), 0);
    memcpy(d.identity_pub, spk.pub, 32);
    WG_CHECK_EQ_INT(wg_sandbox_state_device_add(st, &d, &rec), 0);
    WG_CHECK_EQ_INT(wg_sandbox_state_device_bundle(st, rec, &bun), WG_ENOTFOUND); /* no upload */
    wg_keys_djb_encode(djb, spk.pub);
    WG_CHECK_EQ_INT(wg_keys_sign(sig, spk.priv, djb, 33), 0);
    WG_CHECK_EQ_INT(wg_sandbox_state_prekeys_put(st, rec, 42, spk.pub, 1, spk.pub, sig, keys, 2),
                    0);
    WG_CHECK_EQ_INT(wg_sandbox_state_device_bundle(st, rec, &bun), 0);
    WG_CHECK(bun.has_prekey && bun.prekey_id == 3 && bun.prekey[0] == 3 &&
             bun.registration_id == 42);
    WG_CHECK_MEM(bun.signed_prekey_sig, sig, 64);
    WG_CHECK_EQ_INT(wg_sandbox_state_device_bundle(st, rec, &bun), 0);
    WG_CHECK(bun.has_prekey && bun.prekey_id == 5);
    WG_CHECK_EQ_INT(wg_sandbox_state_device_bundle(st, rec, &bun), 0);
    WG_CHECK(!bun.has_prekey);
    WG_CHECK_EQ_INT(wg_sandbox_state_prekey_count(st, rec, &count), 0);
    WG_CHECK_EQ_INT(count, 0);

    /* offline queue: in order, per device, taken once */
    WG_CHECK_EQ_INT(wg_sandbox_state_offline_put(st, "15550001111", 1, (const uint8_t *)"one", 3),
                    0);
    WG_CHECK_EQ_INT(wg_sandbox_state_offline_put(st, "15550001111", 2, (const uint8_t *)"x", 1), 0);
    WG_CHECK_EQ_INT(wg_sandbox_state_offline_put(st, "15550001111", 1, (const uint8_t *)"two", 3),
                    0);
    /* inbox and groups */
    WG_CHECK_EQ_INT(wg_sandbox_state_inbox_add(st, "15550002222", "message", "ID1",
                                               "15550001111@s.whatsapp.net",
                                               "15550001111:1@s.whatsapp.net", "hi", 17),
                    0);
    WG_CHECK_EQ_INT(
        wg_sandbox_state_inbox_add(st, "15550002222", "call", "C1", "x", "y", "reject", 18), 0);
    WG_CHECK_EQ_INT(wg_sandbox_state_group_add(st, "1203631@g.us", "S", "15550001111",
                                               "15550001111,15550002222"),
                    0);
    WG_CHECK_EQ_INT(wg_sandbox_state_group_add(st, "1203631@g.us", "S", "1", "1"), WG_EEXIST);
    wg_sandbox_state_close(st);

    st = NULL;
    WG_CHECK_EQ_INT(wg_sandbox_state_open(&st, path), 0);
    a = wg_sandbox_state_phone_find(st, "15550001111");
    b = wg_sandbox_state_phone_find(st, "15550002222");
    WG_CHECK(a && b && !a->signal);
    WG_CHECK_EQ_INT(wg_sandbox_state_phone_signal(st, a, &sa), 0);
    WG_CHECK_EQ_INT(wg_sandbox_state_phone_signal(st, b, &sb_), 0);
    WG_CHECK_EQ_INT(wg_signal_has_session(sa, &addr_b), 1);
    WG_CHECK_EQ_INT(
        wg_signal_encrypt(sa, &addr_b, (const uint8_t *)"again\x01", 6, &t, &ct, &ctlen), 0);
    WG_CHECK_EQ_INT(t, WG_SIGNAL_MSG); /* the session went on, no new pkmsg */
    WG_CHECK_EQ_INT(wg_signal_decrypt(sb_, &addr_a, t, ct, ctlen, &pt, &ptlen), 0);
    WG_CHECK(ptlen == 6 && memcmp(pt, "again\x01", 6) == 0);
    free(ct), free(pt);
    /* the next phone prekey id went on too */
    WG_CHECK_EQ_INT(wg_sandbox_state_phone_bundle(st, b, &bun), 0);
    WG_CHECK_EQ_INT(bun.prekey_id, 3);

    WG_CHECK_EQ_INT(wg_sandbox_state_offline_count(st, "15550001111", 1, &count), 0);
    WG_CHECK_EQ_INT(count, 2);
    wg_buf_init(&q, 0);
    WG_CHECK_EQ_INT(wg_sandbox_state_offline_take(st, "15550001111", 1, offline_collect, &q, &n),
                    0);
    WG_CHECK(n == 2 && q.len == 8 && memcmp(q.data, "one|two|", 8) == 0);
    wg_buf_reset(&q);
    WG_CHECK_EQ_INT(wg_sandbox_state_offline_take(st, "15550001111", 1, offline_collect, &q, &n),
                    0);
    WG_CHECK(n == 0 && q.len == 0);
    WG_CHECK_EQ_INT(wg_sandbox_state_offline_count(st, "15550001111", 2, &count), 0);
    WG_CHECK_EQ_INT(count, 1);
    wg_buf_dispose(&q);

    j = wg_sandbox_state_inbox_json(st, "15550002222", "message");
    WG_CHECK(j && json_array_size(j) == 1);
    WG_CHECK_STR(json_string_value(json_object_get(json_array_get(j, 0), "text")), "hi");
    WG_CHECK_STR(json_string_value(json_object_get(json_array_get(j, 0), "author")),
                 "15550001111:1@s.whatsapp.net");
    json_decref(j);
    j = wg_sandbox_state_inbox_json(st, "15550002222", "call");
    WG_CHECK(j && json_array_size(j) == 1);
    json_decref(j);
    WG_CHECK_EQ_INT(wg_sandbox_state_group_get(st, "1203631@g.us", subject, sizeof(subject),
                                               creator, sizeof(creator), parts, sizeof(parts),
                                               &created),
                    0);
    WG_CHECK_STR(subject, "S");
    WG_CHECK_STR(creator, "15550001111");
    WG_CHECK_STR(parts, "15550001111,15550002222");
    WG_CHECK_EQ_INT(wg_sandbox_state_group_get(st, "9@g.us", subject, sizeof(subject), creator,
                                               sizeof(creator), parts, sizeof(parts), &created),
                    WG_ENOTFOUND);
    wg_sandbox_state_close(st);
    rm_db(path);
}
