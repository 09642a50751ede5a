/* test_session.c - wa/session driven by scripted nodes: QR refs, rotation and timeout,
 * pair-success (accepted with the phone's real signature check of our reply; rejected with a
 * wrong adv secret), 515, login with prekey count/upload and passive (READY only once each is
 * answered; a failed or unanswered step reconnects instead), keepalive answered and timed out,
 * stream errors and failures, our own logout (remove-companion-device: answered, refused,
 * the server's close, unanswered), the pairing-code flow against the phone side of wa/pair,
 * notifications acked, server pings answered, client payloads. */
#include "test.h"
#include "util/err.h"
#include "wa/pair.h"
#include "wa/payload.h"
#include "wa/session.h"

#include <stdlib.h>
#include <string.h>

#define MAXN 64
#define FAST_ITER 2

typedef struct {
    wg_node_t *sent[MAXN];
    int nsent;
    wg_session_ev_type_t ev[MAXN];
    char qr[MAXN][512];
    uint32_t qr_ms[MAXN];
    wg_session_close_t close;
    char reason[64];
    int nev;
    size_t nprekeys;
    uint32_t first_prekey;
    int fail_creds; /* make the CREDS event fail */
    int link_ok;
} rec_t;

static int rec_send(void *ud, const wg_node_t *n)
{
    rec_t *r = ud;
    if (r->nsent < MAXN)
        r->sent[r->nsent++] = wg_node_clone(n);
    return 0;
}

static int rec_event(void *ud, const wg_session_event_t *ev)
{
    rec_t *r = ud;
    if (r->nev >= MAXN)
        return 0;
    int i = r->nev++;
    r->ev[i] = ev->type;
    if (ev->type == WG_SESSION_EV_QR) {
        snprintf(r->qr[i], sizeof(r->qr[i]), "%s", ev->qr);
        r->qr_ms[i] = ev->qr_valid_ms;
    } else if (ev->type == WG_SESSION_EV_CLOSE) {
        r->close = ev->close;
        snprintf(r->reason, sizeof(r->reason), "%s", ev->reason);
    } else if (ev->type == WG_SESSION_EV_PREKEYS) {
        r->nprekeys = ev->nprekeys;
        r->first_prekey = ev->prekeys[0].id;
    } else if (ev->type == WG_SESSION_EV_CREDS && r->fail_creds) {
        return WG_ESTORE;
    } else if (ev->type == WG_SESSION_EV_LINK_CODE)
        r->link_ok = ev->link_ok;
    return 0;
}

static void rec_clear(rec_t *r)
{
    for (int i = 0; i < r->nsent; i++)
        wg_node_free(r->sent[i]);
    memset(r, 0, sizeof(*r));
}

static wg_node_t *node(const char *tag, const char *k1, const char *v1, const char *k2,
                       const char *v2)
{
    wg_node_t *n = wg_node_new(tag);
    if (k1)
        wg_node_set_attr(n, k1, v1);
    if (k2)
        wg_node_set_attr(n, k2, v2);
    return n;
}

static wg_node_t *pair_device(int nrefs)
{
    wg_node_t *iq = node("iq", "type", "set", "id", "srv.1");
    wg_node_set_attr_jid(iq, "from", "@s.whatsapp.net");
    wg_node_t *pd = wg_node_add_new(iq, "pair-device");
    for (int i = 0; i < nrefs; i++) {
        char ref[32];
        snprintf(ref, sizeof(ref), "2@ref-number-%d", i);
        wg_node_set_bytes(wg_node_add_new(pd, "ref"), ref, strlen(ref));
    }
    return iq;
}

static int feed(wg_session_t *s, wg_node_t *n, uint64_t now)
{
    int rv = wg_session_handle(s, n, now);
    wg_node_free(n);
    return rv;
}

static const wg_session_config_t CFG = {.qr_first_ms = 60000,
                                        .qr_next_ms = 20000,
                                        .keepalive_ms = 25000,
                                        .keepalive_timeout_ms = 20000,
                                        .prekeys_initial = 30,
                                        .prekeys_batch = 10,
                                        .next_prekey_id = 1,
                                        .pbkdf2_iterations = FAST_ITER};

static wg_session_t *new_session(wg_creds_t *c, rec_t *r, uint64_t now)
{
    wg_session_t *s = NULL;
    wg_session_cbs_t cbs = {rec_send, rec_event, r};
    if (wg_session_new(&s, c, &CFG, &cbs, now) != 0)
        return NULL;
    return s;
}

WG_TEST(session_qr_refs_rotation_and_timeout)
{
    wg_creds_t c;
    rec_t r = {0};
    wg_pair_qr_t q;
    WG_CHECK_EQ_INT(wg_creds_generate(&c), 0);
    wg_session_t *s = new_session(&c, &r, 1000);
    WG_CHECK(s != NULL);
    WG_CHECK_EQ_INT(feed(s, pair_device(3), 1000), 0);
    /* acked at once with the same id, and the first QR for 60 s */
    WG_CHECK_EQ_INT(r.nsent, 1);
    WG_CHECK(wg_node_tag_is(r.sent[0], "iq"));
    WG_CHECK_STR(wg_node_attr(r.sent[0], "type"), "result");
    WG_CHECK_STR(wg_node_attr(r.sent[0], "id"), "srv.1");
    WG_CHECK_EQ_INT(wg_node_child_count(r.sent[0]), 0);
    WG_CHECK_EQ_INT(r.nev, 1);
    WG_CHECK_EQ_INT(r.ev[0], WG_SESSION_EV_QR);
    WG_CHECK_EQ_INT(r.qr_ms[0], 60000);
    WG_CHECK(wg_session_pairing(s));
    /* the QR carries the ref and our keys */
    WG_CHECK_EQ_INT(wg_pair_qr_parse(&q, r.qr[0], strlen(r.qr[0])), 0);
    WG_CHECK_STR(q.ref, "2@ref-number-0");
    WG_CHECK_MEM(q.noise_pub, c.noise.pub, 32);
    WG_CHECK_MEM(q.identity_pub, c.identity.pub, 32);
    WG_CHECK_MEM(q.adv_secret, c.adv_secret, 32);
    WG_CHECK_EQ_INT(q.platform, '1');
    wg_pair_qr_dispose(&q);
    /* nothing before the deadline; then 20 s per later ref */
    WG_CHECK_EQ_INT(wg_session_next_deadline(s), 26000); /* the keepalive comes first */
    WG_CHECK_EQ_INT(wg_session_on_timer(s, 26000), 0);   /* ping sent */
    WG_CHECK_EQ_INT(r.nsent, 2);
    WG_CHECK_STR(wg_node_attr(r.sent[1], "xmlns"), "w:p");
    wg_node_t *pong = node("iq", "type", "result", "id", wg_node_attr(r.sent[1], "id"));
    WG_CHECK_EQ_INT(feed(s, pong, 26100), 0);
    WG_CHECK_EQ_INT(wg_session_next_deadline(s), 51100);
    WG_CHECK_EQ_INT(wg_session_on_timer(s, 51100), 0); /* ping again; QR still ref 0 */
    WG_CHECK_EQ_INT(r.nev, 1);
    pong = node("iq", "type", "result", "id", wg_node_attr(r.sent[2], "id"));
    WG_CHECK_EQ_INT(feed(s, pong, 51200), 0);
    WG_CHECK_EQ_INT(wg_session_next_deadline(s), 61000);
    WG_CHECK_EQ_INT(wg_session_on_timer(s, 61000), 0);
    WG_CHECK_EQ_INT(r.nev, 2);
    WG_CHECK_EQ_INT(r.ev[1], WG_SESSION_EV_QR);
    WG_CHECK_EQ_INT(r.qr_ms[1], 20000);
    WG_CHECK(strstr(r.qr[1], "2@ref-number-1,") != NULL);
    WG_CHECK_EQ_INT(wg_session_on_timer(s, 81000), 0);
    WG_CHECK(strstr(r.qr[2], "2@ref-number-2,") != NULL);
    /* the last ref expires: FAILED qr_timeout, no reconnect */
    WG_CHECK_EQ_INT(wg_session_on_timer(s, 101000), 0);
    WG_CHECK_EQ_INT(r.ev[r.nev - 1], WG_SESSION_EV_CLOSE);
    WG_CHECK_EQ_INT(r.close, WG_SESSION_STOP);
    WG_CHECK_STR(r.reason, "qr_timeout");
    WG_CHECK(wg_session_closed(s));
    WG_CHECK_EQ_INT(wg_session_next_deadline(s), UINT64_MAX);
    /* input after the close is ignored */
    int nsent = r.nsent;
    WG_CHECK_EQ_INT(feed(s, pair_device(2), 102000), 0);
    WG_CHECK_EQ_INT(r.nsent, nsent);
    wg_session_free(s);
    rec_clear(&r);
    wg_creds_wipe(&c);
}

/* The server's pair-success for our identity, signed by `phone` with adv secret `adv`. */
static wg_node_t *pair_success(const wg_keys_pair_t *phone, const uint8_t our_identity[32],
                               const uint8_t adv[32], uint8_t **details, size_t *dlen)
{
    uint8_t *cont = NULL;
    size_t clen = 0;
    wg_pair_device_t dev = {.raw_id = 77, .timestamp = 1764000000, .key_index = 3};
    if (wg_pair_phone_make_identity(&cont, &clen, details, dlen, phone, our_identity, adv, &dev))
        return NULL;
    wg_node_t *iq = node("iq", "type", "set", "id", "srv.2");
    wg_node_set_attr_jid(iq, "from", "@s.whatsapp.net");
    wg_node_t *ps = wg_node_add_new(iq, "pair-success");
    wg_node_set_bytes(wg_node_add_new(ps, "device-identity"), cont, clen);
    wg_node_set_attr(wg_node_add_new(ps, "platform"), "name", "android");
    wg_node_t *d = wg_node_add_new(ps, "device");
    wg_node_set_attr_jid(d, "jid", "5511988887777:4@s.whatsapp.net");
    wg_node_set_attr_jid(d, "lid", "99887766:4@lid");
    free(cont);
    return iq;
}

WG_TEST(session_pair_success_then_515)
{
    wg_creds_t c;
    wg_keys_pair_t phone;
    rec_t r = {0};
    uint8_t *det = NULL;
    size_t dlen = 0;
    WG_CHECK_EQ_INT(wg_creds_generate(&c), 0);
    WG_CHECK_EQ_INT(wg_keys_generate(&phone), 0);
    wg_session_t *s = new_session(&c, &r, 0);
    WG_CHECK_EQ_INT(feed(s, pair_device(6), 0), 0);
    wg_node_t *ps = pair_success(&phone, c.identity.pub, c.adv_secret, &det, &dlen);
    WG_CHECK(ps != NULL);
    WG_CHECK_EQ_INT(feed(s, ps, 5000), 0);
    /* persisted before the answer: CREDS, then the reply */
    WG_CHECK_EQ_INT(r.ev[r.nev - 1], WG_SESSION_EV_CREDS);
    WG_CHECK(c.paired);
    WG_CHECK_STR(c.jid, "5511988887777:4@s.whatsapp.net");
    WG_CHECK_STR(c.lid, "99887766:4@lid");
    WG_CHECK_STR(c.platform, "android");
    WG_CHECK_MEM(c.primary_identity, phone.pub, 32);
    WG_CHECK(c.account_len > 100);
    const wg_node_t *reply = r.sent[r.nsent - 1];
    WG_CHECK_STR(wg_node_attr(reply, "type"), "result");
    WG_CHECK_STR(wg_node_attr(reply, "id"), "srv.2");
    const wg_node_t *sign = wg_node_child_by_tag(reply, "pair-device-sign");
    WG_CHECK(sign != NULL);
    const wg_node_t *di = wg_node_child_by_tag(sign, "device-identity");
    WG_CHECK(di != NULL);
    WG_CHECK_STR(wg_node_attr(di, "key-index"), "3");
    size_t blen = 0;
    const uint8_t *b = wg_node_bytes(di, &blen);
    /* the phone's own check of our signature */
    WG_CHECK_EQ_INT(wg_pair_phone_verify_sign(phone.pub, c.identity.pub, b, blen, det, dlen), 0);
    WG_CHECK_EQ_INT(wg_session_next_deadline(s) < UINT64_MAX, 1); /* keepalive only */
    /* no QR rotation any more */
    int nev = r.nev;
    WG_CHECK_EQ_INT(wg_session_on_timer(s, 70000), 0);
    for (int i = nev; i < r.nev; i++)
        WG_CHECK(r.ev[i] != WG_SESSION_EV_QR);
    /* 515: reconnect at once */
    wg_node_t *se = node("stream:error", "code", "515", NULL, NULL);
    WG_CHECK_EQ_INT(feed(s, se, 70100), 0);
    WG_CHECK_EQ_INT(r.close, WG_SESSION_RECONNECT_NOW);
    free(det);
    wg_session_free(s);
    rec_clear(&r);
    wg_creds_wipe(&c);
}

WG_TEST(session_pair_success_rejected)
{
    wg_creds_t c;
    wg_keys_pair_t phone;
    rec_t r = {0};
    uint8_t *det = NULL, wrong[32];
    size_t dlen = 0;
    WG_CHECK_EQ_INT(wg_creds_generate(&c), 0);
    WG_CHECK_EQ_INT(wg_keys_generate(&phone), 0);
    memset(wrong, 9, sizeof(wrong));
    wg_session_t *s = new_session(&c, &r, 0);
    WG_CHECK_EQ_INT(feed(s, pair_device(6), 0), 0);
    WG_CHECK_EQ_INT(feed(s, pair_success(&phone, c.identity.pub, wrong, &det, &dlen), 10), 0);
    WG_CHECK(!c.paired);
    const wg_node_t *e = r.sent[r.nsent - 1];
    WG_CHECK_STR(wg_node_attr(e, "type"), "error");
    WG_CHECK_STR(wg_node_attr(e, "id"), "srv.2");
    const wg_node_t *err = wg_node_child_by_tag(e, "error");
    WG_CHECK(err != NULL);
    WG_CHECK_STR(wg_node_attr(err, "code"), "401");
    WG_CHECK_STR(wg_node_attr(err, "text"), "hmac-mismatch");
    WG_CHECK_EQ_INT(r.close, WG_SESSION_STOP);
    WG_CHECK_STR(r.reason, "pair_failed");
    free(det);
    wg_session_free(s);
    rec_clear(&r);

    /* verified, but the store fails: internal-error, not paired, error returned */
    s = new_session(&c, &r, 0);
    r.fail_creds = 1;
    WG_CHECK_EQ_INT(feed(s, pair_device(6), 0), 0);
    WG_CHECK_EQ_INT(feed(s, pair_success(&phone, c.identity.pub, c.adv_secret, &det, &dlen), 10),
                    WG_ESTORE);
    WG_CHECK(!c.paired);
    WG_CHECK_STR(wg_node_attr(wg_node_child_by_tag(r.sent[r.nsent - 1], "error"), "code"), "500");
    free(det);
    wg_session_free(s);
    rec_clear(&r);
    wg_creds_wipe(&c);
}

static void make_paired(wg_creds_t *c)
{
    c->paired = 1;
    snprintf(c->jid, sizeof(c->jid), "5511988887777:4@s.whatsapp.net");
}

WG_TEST(session_login_prekeys_passive_keepalive)
{
    wg_creds_t c;
    rec_t r = {0};
    WG_CHECK_EQ_INT(wg_creds_generate(&c), 0);
    make_paired(&c);
    wg_session_t *s = new_session(&c, &r, 0);
    wg_node_t *ok = node("success", "t", "1764000000", "lid", "99887766:4@lid");
    WG_CHECK_EQ_INT(feed(s, ok, 100), 0);
    WG_CHECK(wg_session_logged_in(s));
    WG_CHECK(!wg_session_ready(s));
    /* lid learnt (CREDS), CONNECTED, then count + passive */
    WG_CHECK_EQ_INT(r.ev[0], WG_SESSION_EV_CREDS);
    WG_CHECK_STR(c.lid, "99887766:4@lid");
    WG_CHECK_EQ_INT(r.ev[1], WG_SESSION_EV_CONNECTED);
    WG_CHECK_EQ_INT(r.nsent, 2);
    WG_CHECK_STR(wg_node_attr(r.sent[0], "xmlns"), "encrypt");
    WG_CHECK_STR(wg_node_attr(r.sent[0], "type"), "get");
    WG_CHECK(wg_node_child_by_tag(r.sent[0], "count") != NULL);
    WG_CHECK_STR(wg_node_attr(r.sent[1], "xmlns"), "passive");
    WG_CHECK(wg_node_child_by_tag(r.sent[1], "active") != NULL);
    /* server has 0 prekeys: the initial batch (30 here), persisted before the upload */
    wg_node_t *res = node("iq", "type", "result", "id", wg_node_attr(r.sent[0], "id"));
    wg_node_set_attr(wg_node_add_new(res, "count"), "value", "0");
    WG_CHECK_EQ_INT(feed(s, res, 200), 0);
    WG_CHECK_EQ_INT(r.ev[2], WG_SESSION_EV_PREKEYS);
    WG_CHECK_EQ_INT(r.nprekeys, 30);
    WG_CHECK_EQ_INT(r.first_prekey, 1);
    const wg_node_t *up = r.sent[2];
    WG_CHECK_STR(wg_node_attr(up, "xmlns"), "encrypt");
    WG_CHECK_STR(wg_node_attr(up, "type"), "set");
    size_t len = 0;
    const uint8_t *reg = wg_node_bytes(wg_node_child_by_tag(up, "registration"), &len);
    WG_CHECK_EQ_INT(len, 4);
    WG_CHECK_EQ_INT(((uint32_t)reg[2] << 8 | reg[3]), c.registration_id);
    WG_CHECK_MEM(wg_node_bytes(wg_node_child_by_tag(up, "type"), &len), "\x05", 1);
    WG_CHECK_MEM(wg_node_bytes(wg_node_child_by_tag(up, "identity"), &len), c.identity.pub, 32);
    const wg_node_t *list = wg_node_child_by_tag(up, "list");
    WG_CHECK_EQ_INT(wg_node_child_count(list), 30);
    const uint8_t *id3 = wg_node_bytes(wg_node_child_by_tag(wg_node_child(list, 29), "id"), &len);
    WG_CHECK_EQ_INT(len, 3);
    WG_CHECK_EQ_INT(id3[2], 30);
    const wg_node_t *sk = wg_node_child_by_tag(up, "skey");
    WG_CHECK_MEM(wg_node_bytes(wg_node_child_by_tag(sk, "signature"), &len), c.signed_prekey_sig,
                 64);
    /* not READY while the upload and the passive iq are unanswered */
    WG_CHECK_EQ_INT(r.nev, 3);
    WG_CHECK(!wg_session_ready(s));
    WG_CHECK_EQ_INT(feed(s, node("iq", "type", "result", "id", wg_node_attr(r.sent[1], "id")), 210),
                    0);
    WG_CHECK_EQ_INT(r.nev, 3);
    WG_CHECK(!wg_session_ready(s));
    WG_CHECK_EQ_INT(feed(s, node("iq", "type", "result", "id", wg_node_attr(up, "id")), 220), 0);
    WG_CHECK_EQ_INT(r.nev, 4);
    WG_CHECK_EQ_INT(r.ev[3], WG_SESSION_EV_READY);
    WG_CHECK(wg_session_ready(s));
    WG_CHECK_EQ_INT(wg_session_next_deadline(s), 25100); /* no login deadline left */
    /* the server later says it runs low: a batch of 10 from id 31 */
    wg_node_t *nt = node("notification", "type", "encrypt", "id", "n1");
    wg_node_set_attr_jid(nt, "from", "@s.whatsapp.net");
    wg_node_set_attr(wg_node_add_new(nt, "count"), "value", "2");
    WG_CHECK_EQ_INT(feed(s, nt, 300), 0);
    WG_CHECK(wg_node_tag_is(r.sent[3], "ack")); /* acked first */
    WG_CHECK_STR(wg_node_attr(r.sent[3], "class"), "notification");
    WG_CHECK_STR(wg_node_attr(r.sent[3], "id"), "n1");
    WG_CHECK_EQ_INT(r.nprekeys, 10);
    WG_CHECK_EQ_INT(r.first_prekey, 31);
    /* server ping answered */
    wg_node_t *sp = node("iq", "type", "get", "id", "ping-7");
    wg_node_set_attr(sp, "xmlns", "urn:xmpp:ping");
    WG_CHECK_EQ_INT(feed(s, sp, 400), 0);
    WG_CHECK_STR(wg_node_attr(r.sent[r.nsent - 1], "type"), "result");
    WG_CHECK_STR(wg_node_attr(r.sent[r.nsent - 1], "id"), "ping-7");
    /* keepalive: ping at 25.1 s; frames keep it alive; silence for 20 s ends it */
    WG_CHECK_EQ_INT(wg_session_next_deadline(s), 25100);
    WG_CHECK_EQ_INT(wg_session_on_timer(s, 25100), 0);
    WG_CHECK_STR(wg_node_attr(r.sent[r.nsent - 1], "xmlns"), "w:p");
    WG_CHECK_EQ_INT(wg_session_next_deadline(s), 45100);
    WG_CHECK_EQ_INT(wg_session_on_timer(s, 45099), 0);
    WG_CHECK(!wg_session_closed(s));
    WG_CHECK_EQ_INT(wg_session_on_timer(s, 45100), 0);
    WG_CHECK(wg_session_closed(s));
    WG_CHECK_EQ_INT(r.close, WG_SESSION_RECONNECT_BACKOFF);
    WG_CHECK_STR(r.reason, "keepalive_timeout");
    wg_session_free(s);
    rec_clear(&r);
    wg_creds_wipe(&c);
}

static int close_of(wg_creds_t *c, wg_node_t *n, wg_session_close_t *how, char *reason)
{
    rec_t r = {0};
    wg_session_t *s = new_session(c, &r, 0);
    int rv = feed(s, n, 1);
    *how = r.close;
    snprintf(reason, 64, "%s", r.reason);
    wg_session_free(s);
    rec_clear(&r);
    return rv;
}

/* A logged-in session: <success> fed at `now`; r.sent[0] is the count query, r.sent[1] the
 * passive iq. */
static wg_session_t *logged_in(wg_creds_t *c, rec_t *r, uint64_t now)
{
    wg_session_t *s = new_session(c, r, now);
    if (s && feed(s, node("success", "t", "1764000000", NULL, NULL), now) != 0) {
        wg_session_free(s);
        return NULL;
    }
    return s;
}

static wg_node_t *answer(const wg_node_t *iq, const char *type, const char *count)
{
    wg_node_t *n = node("iq", "type", type, "id", wg_node_attr(iq, "id"));
    if (count)
        wg_node_set_attr(wg_node_add_new(n, "count"), "value", count);
    else if (!strcmp(type, "error")) {
        wg_node_t *e = wg_node_add_new(n, "error");
        wg_node_set_attr(e, "code", "500");
        wg_node_set_attr(e, "text", "internal-server-error");
    }
    return n;
}

static int count_ev(const rec_t *r, wg_session_ev_type_t t)
{
    int k = 0;
    for (int i = 0; i < r->nev; i++)
        k += r->ev[i] == t;
    return k;
}

WG_TEST(session_ready_only_after_the_login_steps)
{
    wg_creds_t c;
    rec_t r = {0};
    WG_CHECK_EQ_INT(wg_creds_generate(&c), 0);
    make_paired(&c);

    /* enough prekeys on the server: no upload; READY once count and passive are answered, in
     * either order */
    wg_session_t *s = logged_in(&c, &r, 0);
    WG_CHECK(s != NULL);
    WG_CHECK_EQ_INT(r.nsent, 2);
    WG_CHECK_EQ_INT(feed(s, answer(r.sent[1], "result", NULL), 5), 0);
    WG_CHECK(!wg_session_ready(s));
    WG_CHECK_EQ_INT(feed(s, answer(r.sent[0], "result", "5"), 6), 0);
    WG_CHECK(wg_session_ready(s));
    WG_CHECK_EQ_INT(r.nsent, 2); /* nothing uploaded */
    WG_CHECK_EQ_INT(count_ev(&r, WG_SESSION_EV_PREKEYS), 0);
    WG_CHECK_EQ_INT(count_ev(&r, WG_SESSION_EV_READY), 1);
    WG_CHECK_EQ_INT(wg_session_next_deadline(s), 25000); /* only the keepalive */
    wg_session_free(s);
    rec_clear(&r);

    /* the upload is refused: no READY, a reconnect with backoff */
    s = logged_in(&c, &r, 0);
    WG_CHECK_EQ_INT(feed(s, answer(r.sent[1], "result", NULL), 5), 0);
    WG_CHECK_EQ_INT(feed(s, answer(r.sent[0], "result", "3"), 6), 0);
    WG_CHECK_EQ_INT(r.nsent, 3);
    WG_CHECK_EQ_INT(r.nprekeys, 10); /* fewer than 5 left: a batch */
    WG_CHECK(!wg_session_ready(s));
    WG_CHECK_EQ_INT(feed(s, answer(r.sent[2], "error", NULL), 7), 0);
    WG_CHECK(wg_session_closed(s));
    WG_CHECK_EQ_INT(r.close, WG_SESSION_RECONNECT_BACKOFF);
    WG_CHECK_STR(r.reason, "prekey_upload_failed");
    WG_CHECK_EQ_INT(count_ev(&r, WG_SESSION_EV_READY), 0);
    wg_session_free(s);
    rec_clear(&r);

    /* the upload is never answered: login_timeout at the bound, not READY */
    s = logged_in(&c, &r, 1000);
    WG_CHECK_EQ_INT(feed(s, answer(r.sent[0], "result", "0"), 1005), 0);
    WG_CHECK_EQ_INT(feed(s, answer(r.sent[1], "result", NULL), 1006), 0);
    WG_CHECK_EQ_INT(r.nprekeys, 30);
    WG_CHECK(!wg_session_ready(s));
    WG_CHECK_EQ_INT(wg_session_next_deadline(s), 26000); /* the keepalive comes first */
    WG_CHECK_EQ_INT(wg_session_on_timer(s, 26000), 0);   /* ping; any frame counts as life */
    WG_CHECK_EQ_INT(feed(s, answer(r.sent[r.nsent - 1], "result", NULL), 26001), 0);
    WG_CHECK_EQ_INT(wg_session_next_deadline(s), 31000);
    WG_CHECK_EQ_INT(wg_session_on_timer(s, 30999), 0);
    WG_CHECK(!wg_session_closed(s));
    WG_CHECK_EQ_INT(wg_session_on_timer(s, 31000), 0);
    WG_CHECK(wg_session_closed(s));
    WG_CHECK_EQ_INT(r.close, WG_SESSION_RECONNECT_BACKOFF);
    WG_CHECK_STR(r.reason, "login_timeout");
    WG_CHECK_EQ_INT(count_ev(&r, WG_SESSION_EV_READY), 0);
    /* a late answer changes nothing */
    WG_CHECK_EQ_INT(feed(s, answer(r.sent[2], "result", NULL), 31001), 0);
    WG_CHECK(!wg_session_ready(s));
    wg_session_free(s);
    rec_clear(&r);

    /* the count query or the passive iq refused: reconnect too */
    s = logged_in(&c, &r, 0);
    WG_CHECK_EQ_INT(feed(s, answer(r.sent[0], "error", NULL), 5), 0);
    WG_CHECK_STR(r.reason, "prekey_count_failed");
    WG_CHECK_EQ_INT(r.close, WG_SESSION_RECONNECT_BACKOFF);
    wg_session_free(s);
    rec_clear(&r);
    s = logged_in(&c, &r, 0);
    WG_CHECK_EQ_INT(feed(s, answer(r.sent[0], "result", "9"), 5), 0);
    WG_CHECK_EQ_INT(feed(s, answer(r.sent[1], "error", NULL), 6), 0);
    WG_CHECK_STR(r.reason, "passive_failed");
    WG_CHECK_EQ_INT(count_ev(&r, WG_SESSION_EV_READY), 0);
    wg_session_free(s);
    rec_clear(&r);

    /* a low-count notification during the login does not start a second upload while the
     * login's own is under way; answered, the session is READY */
    s = logged_in(&c, &r, 0);
    WG_CHECK_EQ_INT(feed(s, answer(r.sent[0], "result", "0"), 5), 0);
    WG_CHECK_EQ_INT(count_ev(&r, WG_SESSION_EV_PREKEYS), 1);
    wg_node_t *nt = node("notification", "type", "encrypt", "id", "n9");
    wg_node_set_attr(wg_node_add_new(nt, "count"), "value", "0");
    WG_CHECK_EQ_INT(feed(s, nt, 6), 0);
    WG_CHECK_EQ_INT(count_ev(&r, WG_SESSION_EV_PREKEYS), 1);
    WG_CHECK_EQ_INT(feed(s, answer(r.sent[2], "result", NULL), 7), 0);
    WG_CHECK(!wg_session_ready(s)); /* the passive iq is still unanswered */
    WG_CHECK_EQ_INT(feed(s, answer(r.sent[1], "result", NULL), 8), 0);
    WG_CHECK(wg_session_ready(s));
    wg_session_free(s);
    rec_clear(&r);
    wg_creds_wipe(&c);
}

WG_TEST(session_stream_errors_and_failures)
{
    wg_creds_t c;
    wg_session_close_t how;
    char reason[64];
    WG_CHECK_EQ_INT(wg_creds_generate(&c), 0);
    make_paired(&c);
    wg_node_t *n = node("stream:error", "code", "401", NULL, NULL);
    wg_node_set_attr(wg_node_add_new(n, "conflict"), "type", "device_removed");
    WG_CHECK_EQ_INT(close_of(&c, n, &how, reason), 0);
    WG_CHECK_EQ_INT(how, WG_SESSION_LOGGED_OUT);
    WG_CHECK_STR(reason, "logged_out");
    n = node("stream:error", NULL, NULL, NULL, NULL);
    wg_node_set_attr(wg_node_add_new(n, "conflict"), "type", "replaced");
    close_of(&c, n, &how, reason);
    WG_CHECK_EQ_INT(how, WG_SESSION_STOP);
    WG_CHECK_STR(reason, "replaced");
    close_of(&c, node("stream:error", "code", "503", NULL, NULL), &how, reason);
    WG_CHECK_EQ_INT(how, WG_SESSION_RECONNECT_BACKOFF);
    close_of(&c, node("xmlstreamend", NULL, NULL, NULL, NULL), &how, reason);
    WG_CHECK_EQ_INT(how, WG_SESSION_RECONNECT_BACKOFF);
    static const struct {
        const char *reason;
        wg_session_close_t how;
    } f[] = {{"401", WG_SESSION_LOGGED_OUT},
             {"403", WG_SESSION_LOGGED_OUT},
             {"406", WG_SESSION_LOGGED_OUT},
             {"500", WG_SESSION_RECONNECT_BACKOFF},
             {"503", WG_SESSION_RECONNECT_BACKOFF},
             {"405", WG_SESSION_STOP},
             {"402", WG_SESSION_STOP},
             {"409", WG_SESSION_STOP}};
    for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
        close_of(&c, node("failure", "reason", f[i].reason, NULL, NULL), &how, reason);
        WG_CHECK_EQ_INT(how, f[i].how);
    }
    close_of(&c, node("failure", "reason", "405", NULL, NULL), &how, reason);
    WG_CHECK_STR(reason, "client_outdated");
    wg_creds_wipe(&c);
}

/* A logged-in session that has sent its logout: r.sent[r.nsent - 1] is the iq. */
static wg_session_t *leaving(wg_creds_t *c, rec_t *r, uint64_t now)
{
    wg_session_t *s = logged_in(c, r, now);
    if (s && wg_session_logout(s, now) != 0) {
        wg_session_free(s);
        return NULL;
    }
    return s;
}

WG_TEST(session_logout)
{
    wg_creds_t c;
    rec_t r = {0};
    WG_CHECK_EQ_INT(wg_creds_generate(&c), 0);
    /* not logged in (a registration connection, or before <success>): nothing sent */
    wg_session_t *s = new_session(&c, &r, 0);
    WG_CHECK_EQ_INT(wg_session_logout(s, 0), WG_EPERM);
    WG_CHECK_EQ_INT(r.nsent, 0);
    wg_session_free(s);
    rec_clear(&r);
    make_paired(&c);

    /* during the login steps already (logged in, not READY): the iq, as [B] and [W] send it */
    s = leaving(&c, &r, 1000);
    WG_CHECK(s != NULL);
    WG_CHECK_EQ_INT(r.nsent, 3);
    const wg_node_t *iq = r.sent[2];
    WG_CHECK_STR(wg_node_tag(iq), "iq");
    WG_CHECK_STR(wg_node_attr(iq, "type"), "set");
    WG_CHECK_STR(wg_node_attr(iq, "xmlns"), "md");
    WG_CHECK_STR(wg_node_attr(iq, "to"), "@s.whatsapp.net");
    WG_CHECK_EQ_INT(wg_node_child_count(iq), 1);
    const wg_node_t *rcd = wg_node_child(iq, 0);
    WG_CHECK_STR(wg_node_tag(rcd), "remove-companion-device");
    WG_CHECK_STR(wg_node_attr(rcd, "jid"), "5511988887777:4@s.whatsapp.net");
    WG_CHECK_STR(wg_node_attr(rcd, "reason"), "user_initiated");
    WG_CHECK(!wg_session_logged_in(s) && !wg_session_ready(s) && !wg_session_closed(s));
    WG_CHECK_EQ_INT(wg_session_logout(s, 1001), WG_EPERM); /* once */
    /* only the bound is left (no keepalive, no login deadline) */
    WG_CHECK_EQ_INT(wg_session_next_deadline(s), 1000 + WG_SESSION_LOGOUT_TIMEOUT_MS);
    /* meanwhile: login step answers, notifications, server pings and messages are ignored
     * (nothing sent, no event) */
    int nev = r.nev;
    WG_CHECK_EQ_INT(feed(s, answer(r.sent[0], "result", "0"), 1002), 0);
    WG_CHECK_EQ_INT(feed(s, answer(r.sent[1], "result", NULL), 1003), 0);
    wg_node_t *nt = node("notification", "type", "encrypt", "id", "n1");
    wg_node_set_attr(wg_node_add_new(nt, "count"), "value", "0");
    WG_CHECK_EQ_INT(feed(s, nt, 1004), 0);
    WG_CHECK_EQ_INT(feed(s, node("iq", "type", "get", "id", "p1"), 1005), 0);
    WG_CHECK_EQ_INT(feed(s, node("message", "id", "m1", "type", "text"), 1006), 0);
    WG_CHECK_EQ_INT(r.nsent, 3);
    WG_CHECK_EQ_INT(r.nev, nev);
    /* the answer: CLOSE LOGGED_OUT "logout"; later input changes nothing */
    WG_CHECK_EQ_INT(feed(s, answer(iq, "result", NULL), 1100), 0);
    WG_CHECK(wg_session_closed(s));
    WG_CHECK_EQ_INT(r.close, WG_SESSION_LOGGED_OUT);
    WG_CHECK_STR(r.reason, "logout");
    WG_CHECK_EQ_INT(count_ev(&r, WG_SESSION_EV_CLOSE), 1);
    WG_CHECK_EQ_INT(count_ev(&r, WG_SESSION_EV_READY), 0);
    wg_node_t *se = node("stream:error", "code", "401", NULL, NULL);
    wg_node_set_attr(wg_node_add_new(se, "conflict"), "type", "device_removed");
    WG_CHECK_EQ_INT(feed(s, se, 1101), 0);
    WG_CHECK_EQ_INT(count_ev(&r, WG_SESSION_EV_CLOSE), 1);
    wg_session_free(s);
    rec_clear(&r);

    /* refused */
    s = leaving(&c, &r, 0);
    WG_CHECK_EQ_INT(feed(s, answer(r.sent[2], "error", NULL), 5), 0);
    WG_CHECK_EQ_INT(r.close, WG_SESSION_LOGGED_OUT);
    WG_CHECK_STR(r.reason, "logout_refused");
    wg_session_free(s);
    rec_clear(&r);

    /* the server ends the stream before (or instead of) answering: the expected end too */
    s = leaving(&c, &r, 0);
    se = node("stream:error", "code", "401", NULL, NULL);
    wg_node_set_attr(wg_node_add_new(se, "conflict"), "type", "device_removed");
    WG_CHECK_EQ_INT(feed(s, se, 5), 0);
    WG_CHECK_EQ_INT(r.close, WG_SESSION_LOGGED_OUT);
    WG_CHECK_STR(r.reason, "logout");
    wg_session_free(s);
    rec_clear(&r);
    s = leaving(&c, &r, 0);
    WG_CHECK_EQ_INT(feed(s, node("xmlstreamend", NULL, NULL, NULL, NULL), 5), 0);
    WG_CHECK_EQ_INT(r.close, WG_SESSION_LOGGED_OUT);
    wg_session_free(s);
    rec_clear(&r);

    /* unanswered: CLOSE at the bound, not before */
    s = logged_in(&c, &r, 0);
    WG_CHECK_EQ_INT(feed(s, answer(r.sent[0], "result", "9"), 5), 0);
    WG_CHECK_EQ_INT(feed(s, answer(r.sent[1], "result", NULL), 6), 0);
    WG_CHECK(wg_session_ready(s)); /* from WORKING too */
    WG_CHECK_EQ_INT(wg_session_logout(s, 10000), 0);
    WG_CHECK_EQ_INT(wg_session_on_timer(s, 10000 + WG_SESSION_LOGOUT_TIMEOUT_MS - 1), 0);
    WG_CHECK(!wg_session_closed(s));
    WG_CHECK_EQ_INT(wg_session_on_timer(s, 10000 + WG_SESSION_LOGOUT_TIMEOUT_MS), 0);
    WG_CHECK(wg_session_closed(s));
    WG_CHECK_EQ_INT(r.close, WG_SESSION_LOGGED_OUT);
    WG_CHECK_STR(r.reason, "logout_unanswered");
    WG_CHECK_EQ_INT(wg_session_logout(s, 20000), WG_EPERM); /* closed */
    wg_session_free(s);
    rec_clear(&r);
    wg_creds_wipe(&c);
}

WG_TEST(session_pairing_code_flow)
{
    wg_creds_t c;
    wg_keys_pair_t phone, peph;
    rec_t r = {0};
    char code[9];
    uint8_t ceph_pub[32], wp[80], adv_phone[32], *det = NULL;
    size_t len = 0, dlen = 0;
    WG_CHECK_EQ_INT(wg_creds_generate(&c), 0);
    WG_CHECK_EQ_INT(wg_keys_generate(&phone), 0);
    WG_CHECK_EQ_INT(wg_keys_generate(&peph), 0);
    WG_CHECK_EQ_INT(wg_pair_code_new(code), 0);
    wg_session_t *s = new_session(&c, &r, 0);
    /* not before the refs arrived; bad phone numbers refused */
    WG_CHECK_EQ_INT(wg_session_pair_code(s, "5511977776666", code, 0), WG_EPERM);
    WG_CHECK_EQ_INT(feed(s, pair_device(6), 0), 0);
    WG_CHECK_EQ_INT(wg_session_pair_code(s, "0511977776666", code, 0), WG_EINVAL);
    WG_CHECK_EQ_INT(wg_session_pair_code(s, "55119", code, 0), WG_EINVAL);
    WG_CHECK_EQ_INT(wg_session_pair_code(s, "5511977776666", code, 0), 0);
    const wg_node_t *hello = r.sent[r.nsent - 1];
    WG_CHECK_STR(wg_node_attr(hello, "xmlns"), "md");
    const wg_node_t *reg = wg_node_child_by_tag(hello, "link_code_companion_reg");
    WG_CHECK_STR(wg_node_attr(reg, "stage"), "companion_hello");
    WG_CHECK_STR(wg_node_attr(reg, "jid"), "5511977776666@s.whatsapp.net");
    WG_CHECK_MEM(wg_node_bytes(wg_node_child_by_tag(reg, "companion_server_auth_key_pub"), &len),
                 c.noise.pub, 32);
    WG_CHECK_STR(
        (const char *)wg_node_bytes(wg_node_child_by_tag(reg, "companion_platform_display"), &len),
        "Chrome (Linux)");
    const uint8_t *wc = wg_node_bytes(
        wg_node_child_by_tag(reg, "link_code_pairing_wrapped_companion_ephemeral_pub"), &len);
    WG_CHECK_EQ_INT(len, 80);
    /* the server takes it */
    wg_node_t *res = node("iq", "type", "result", "id", wg_node_attr(hello, "id"));
    wg_node_set_bytes(
        wg_node_add_new(wg_node_add_new(res, "link_code_companion_reg"), "link_code_pairing_ref"),
        "REF-1", 5);
    WG_CHECK_EQ_INT(feed(s, res, 10), 0);
    WG_CHECK_EQ_INT(r.ev[r.nev - 1], WG_SESSION_EV_LINK_CODE);
    WG_CHECK_EQ_INT(r.link_ok, 1);
    /* the phone: unwrap, wrap its own ephemeral, notify */
    WG_CHECK_EQ_INT(wg_pair_code_unwrap_ephemeral(ceph_pub, code, wc, 80, FAST_ITER), 0);
    WG_CHECK_EQ_INT(wg_pair_code_wrap_ephemeral(wp, code, peph.pub, FAST_ITER), 0);
    wg_node_t *nt = node("notification", "type", "link_code_companion_reg", "id", "n9");
    wg_node_set_attr_jid(nt, "from", "@s.whatsapp.net");
    wg_node_t *lr = wg_node_add_new(nt, "link_code_companion_reg");
    wg_node_set_bytes(wg_node_add_new(lr, "link_code_pairing_ref"), "REF-1", 5);
    wg_node_set_bytes(wg_node_add_new(lr, "primary_identity_pub"), phone.pub, 32);
    wg_node_set_bytes(wg_node_add_new(lr, "link_code_pairing_wrapped_primary_ephemeral_pub"), wp,
                      80);
    uint8_t old_adv[32];
    memcpy(old_adv, c.adv_secret, 32);
    WG_CHECK_EQ_INT(feed(s, nt, 20), 0);
    /* acked, adv secret replaced (CREDS), companion_finish sent */
    WG_CHECK(wg_node_tag_is(r.sent[r.nsent - 2], "ack"));
    WG_CHECK(memcmp(old_adv, c.adv_secret, 32) != 0);
    const wg_node_t *fin = wg_node_child_by_tag(r.sent[r.nsent - 1], "link_code_companion_reg");
    WG_CHECK_STR(wg_node_attr(fin, "stage"), "companion_finish");
    const uint8_t *bundle =
        wg_node_bytes(wg_node_child_by_tag(fin, "link_code_pairing_wrapped_key_bundle"), &len);
    WG_CHECK_EQ_INT(len, 156);
    WG_CHECK_EQ_INT(
        wg_pair_phone_code_finish(adv_phone, &peph, &phone, ceph_pub, c.identity.pub, bundle, len),
        0);
    WG_CHECK_MEM(adv_phone, c.adv_secret, 32); /* both ends derived the same secret */
    /* and the pair-success made with it is accepted */
    WG_CHECK_EQ_INT(feed(s, pair_success(&phone, c.identity.pub, adv_phone, &det, &dlen), 30), 0);
    WG_CHECK(c.paired);
    free(det);
    wg_session_free(s);
    rec_clear(&r);
    wg_creds_wipe(&c);
}

WG_TEST(session_client_payloads)
{
    wg_creds_t c;
    uint8_t *p = NULL;
    size_t n = 0;
    wg_payload_info_t info;
    WG_CHECK_EQ_INT(wg_creds_generate(&c), 0);
    WG_CHECK_EQ_INT(wg_session_client_payload(&c, NULL, &p, &n), 0);
    WG_CHECK_EQ_INT(wg_payload_parse(p, n, &info), 0);
    WG_CHECK_EQ_INT(info.registration, 1);
    WG_CHECK_EQ_INT(info.registration_id, c.registration_id);
    WG_CHECK_MEM(info.identity_pub, c.identity.pub, 32);
    WG_CHECK_MEM(info.signed_prekey_sig, c.signed_prekey_sig, 64);
    WG_CHECK_EQ_INT(info.passive, 0);
    free(p);
    make_paired(&c);
    WG_CHECK_EQ_INT(wg_session_client_payload(&c, NULL, &p, &n), 0);
    WG_CHECK_EQ_INT(wg_payload_parse(p, n, &info), 0);
    WG_CHECK_EQ_INT(info.registration, 0);
    WG_CHECK_EQ_INT(info.username, 5511988887777ULL);
    WG_CHECK_EQ_INT(info.device, 4);
    WG_CHECK_EQ_INT(info.passive, 1);
    WG_CHECK_EQ_INT(info.pull, 1);
    free(p);
    wg_creds_wipe(&c);
}
