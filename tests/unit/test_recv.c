/* test_recv.c - wa/recv: scripted <message> stanzas encrypted by a second in-process Signal
 * party (the "phone"), decided by the gateway side: fresh session (pkmsg) and established (msg)
 * texts become message.received with the right text/sender/timestamp; a re-delivery gives no
 * second event; undecryptable bytes give a retry and an error event; group SKDM + skmsg with
 * groupsIgnore off and on; skmsg without a sender key; our own phone's copy (deviceSentMessage)
 * becomes message.sent in the destination chat; a message without enc is nacked. */
#include "test.h"
#include "util/buf.h"
#include "util/err.h"
#include "wa/binary.h"
#include "wa/creds.h"
#include "wa/msg.h"
#include "wa/recv.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define GW_JID "222:3@s.whatsapp.net" /* the gateway: a linked device of 222 */
#define GW_DEV "222:3@s.whatsapp.net"
#define PEER "111@s.whatsapp.net"      /* the phone of someone else */
#define OWN_PHONE "222@s.whatsapp.net" /* our own phone (device 0) */
#define GROUP "120363009@g.us"

static wg_signal_t *party(void)
{
    wg_creds_t c;
    wg_signal_keys_t k;
    wg_signal_storage_t *st = NULL;
    wg_signal_t *s = NULL;
    if (wg_creds_generate(&c) != 0 || wg_signal_storage_mem_new(&st) != 0)
        return NULL;
    k.registration_id = c.registration_id;
    k.identity = c.identity;
    k.signed_prekey_id = c.signed_prekey_id;
    k.signed_prekey = c.signed_prekey;
    memcpy(k.signed_prekey_sig, c.signed_prekey_sig, sizeof(k.signed_prekey_sig));
    wg_creds_wipe(&c);
    return wg_signal_new(&k, st, &s) == 0 ? s : NULL;
}

/* Encodes and decodes n (what the gateway would read off the wire), freeing n. */
static wg_node_t *wire(wg_node_t *n)
{
    wg_buf_t b;
    wg_node_t *out = NULL;
    wg_buf_init(&b, 0);
    if (wg_binary_encode(n, &b) == 0)
        wg_binary_decode(b.data, b.len, NULL, &out);
    wg_buf_dispose(&b);
    wg_node_free(n);
    return out;
}

/* Padded Message bytes, encrypted from `from` (a sender party) to the gateway's address. */
static int seal(wg_signal_t *from, const uint8_t *msg, size_t len, wg_signal_type_t *t,
                uint8_t **ct, size_t *cn)
{
    wg_signal_addr_t gw;
    uint8_t *pad = NULL;
    size_t pn = 0;
    int rv = wg_signal_addr_from_jid(GW_DEV, &gw);
    if (rv == 0 && (rv = wg_msg_pad(msg, len, 0, &pad, &pn)) == 0)
        rv = wg_signal_encrypt(from, &gw, pad, pn, t, ct, cn);
    free(pad);
    return rv;
}

static wg_node_t *stanza(const char *id, const char *from, const char *participant,
                         const char *recipient, const char *t)
{
    wg_node_t *n = wg_node_new("message");
    wg_node_set_attr(n, "id", id);
    wg_node_set_attr_jid(n, "from", from);
    if (participant)
        wg_node_set_attr_jid(n, "participant", participant);
    if (recipient)
        wg_node_set_attr_jid(n, "recipient", recipient);
    wg_node_set_attr(n, "t", t);
    wg_node_set_attr(n, "type", "text");
    wg_node_set_attr(n, "notify", "Alice");
    return n;
}

static void add_enc(wg_node_t *n, wg_signal_type_t t, const uint8_t *ct, size_t cn)
{
    wg_node_t *e = wg_node_add_new(n, "enc");
    wg_node_set_attr(e, "v", "2");
    wg_node_set_attr(e, "type", wg_signal_type_name(t));
    wg_node_set_bytes(e, ct, cn);
}

/* A text from `from` (device JID from_dev) as a 1:1 stanza. */
static wg_node_t *dm(wg_signal_t *from, const char *id, const char *from_dev, const char *text,
                     wg_signal_type_t *type)
{
    uint8_t *m = NULL, *ct = NULL;
    size_t mn = 0, cn = 0;
    wg_node_t *n = NULL;
    if (wg_msg_build_text(text, NULL, NULL, 0, &m, &mn) == 0 &&
        seal(from, m, mn, type, &ct, &cn) == 0) {
        n = stanza(id, from_dev, NULL, NULL, "1700000001");
        add_enc(n, *type, ct, cn);
        n = wire(n);
    }
    free(m);
    free(ct);
    return n;
}

static json_t *payload(const wg_recv_result_t *r)
{
    return r->payload ? json_loads(r->payload, 0, NULL) : NULL;
}

#define JSTR(o, k) json_string_value(json_object_get((o), (k)))

/* The phone's side: a session with the gateway built from the gateway's bundle. */
static int connect_to_gw(wg_signal_t *phone, wg_signal_t *gw, uint32_t prekey_id)
{
    wg_signal_addr_t a;
    wg_signal_bundle_t b;
    int rv;
    if ((rv = wg_signal_prekeys_generate(gw, prekey_id, 1, NULL)) != 0 ||
        (rv = wg_signal_own_bundle(gw, prekey_id, &b)) != 0 ||
        (rv = wg_signal_addr_from_jid(GW_DEV, &a)) != 0)
        return rv;
    return wg_signal_process_bundle(phone, &a, &b);
}

WG_TEST(recv_dm_fresh_established_duplicate)
{
    wg_signal_t *gw = party(), *alice = party();
    wg_recv_env_t env = {.own_jid = GW_JID};
    wg_recv_result_t r;
    wg_signal_type_t t;
    WG_CHECK(gw && alice);
    env.sig = gw;
    WG_CHECK_EQ_INT(connect_to_gw(alice, gw, 7), 0);

    wg_node_t *n = dm(alice, "3EB0AAA1", "111:2@s.whatsapp.net", "hello gateway", &t);
    WG_CHECK(n);
    WG_CHECK_EQ_INT(t, WG_SIGNAL_PKMSG);
    WG_CHECK_EQ_INT(wg_recv_message(&env, n, &r), 0);
    WG_CHECK_EQ_INT(r.reply, WG_RECV_RECEIPT);
    WG_CHECK(r.receipt_type == NULL);
    WG_CHECK_STR(r.event, "message.received");
    WG_CHECK_STR(r.key, "msg:" PEER ":3EB0AAA1");
    WG_CHECK(r.has_text);
    json_t *o = payload(&r);
    WG_CHECK(o);
    WG_CHECK_STR(JSTR(o, "id"), "3EB0AAA1");
    WG_CHECK_STR(JSTR(o, "chat"), PEER);
    WG_CHECK_STR(JSTR(o, "from"), PEER);
    WG_CHECK_STR(JSTR(o, "pushName"), "Alice");
    WG_CHECK_EQ_INT(json_integer_value(json_object_get(o, "timestamp")), 1700000001);
    WG_CHECK(json_is_false(json_object_get(o, "fromMe")));
    WG_CHECK_STR(JSTR(json_object_get(o, "message"), "text"), "hello gateway");
    WG_CHECK_STR(JSTR(json_object_get(o, "message"), "type"), "text");
    json_decref(o);
    wg_recv_result_dispose(&r);

    /* the same stanza again (the server re-delivers): receipt, no second event */
    WG_CHECK_EQ_INT(wg_recv_message(&env, n, &r), 0);
    WG_CHECK_EQ_INT(r.reply, WG_RECV_RECEIPT);
    WG_CHECK(r.event == NULL);
    wg_recv_result_dispose(&r);
    wg_node_free(n);

    /* the gateway answers once (so Alice's session is established), then Alice sends msg */
    wg_signal_addr_t aa;
    uint8_t *m = NULL, *ct = NULL, *pad = NULL, *pt = NULL;
    size_t mn = 0, cn = 0, pn = 0, ptn = 0;
    WG_CHECK_EQ_INT(wg_signal_addr_from_jid("111:2@s.whatsapp.net", &aa), 0);
    WG_CHECK_EQ_INT(wg_msg_build_text("ok", NULL, NULL, 0, &m, &mn), 0);
    WG_CHECK_EQ_INT(wg_msg_pad(m, mn, 0, &pad, &pn), 0);
    WG_CHECK_EQ_INT(wg_signal_encrypt(gw, &aa, pad, pn, &t, &ct, &cn), 0);
    WG_CHECK_EQ_INT(t, WG_SIGNAL_MSG);
    wg_signal_addr_t ga;
    WG_CHECK_EQ_INT(wg_signal_addr_from_jid(GW_DEV, &ga), 0);
    WG_CHECK_EQ_INT(wg_signal_decrypt(alice, &ga, t, ct, cn, &pt, &ptn), 0);
    free(m);
    free(ct);
    free(pad);
    free(pt);
    n = dm(alice, "3EB0AAA2", "111:2@s.whatsapp.net", "second", &t);
    WG_CHECK(n);
    WG_CHECK_EQ_INT(t, WG_SIGNAL_MSG);
    WG_CHECK_EQ_INT(wg_recv_message(&env, n, &r), 0);
    WG_CHECK_STR(r.event, "message.received");
    o = payload(&r);
    WG_CHECK_STR(JSTR(json_object_get(o, "message"), "text"), "second");
    json_decref(o);
    wg_recv_result_dispose(&r);
    wg_node_free(n);
    wg_signal_free(gw);
    wg_signal_free(alice);
}

WG_TEST(recv_undecryptable_retry_and_error_event)
{
    wg_signal_t *gw = party(), *alice = party(), *mallory = party();
    wg_recv_env_t env = {.own_jid = GW_JID};
    wg_recv_result_t r;
    wg_signal_type_t t;
    WG_CHECK(gw && alice && mallory);
    env.sig = gw;
    /* a msg with no session on our side */
    WG_CHECK_EQ_INT(connect_to_gw(alice, mallory, 3), 0); /* Alice has a session with other keys */
    wg_node_t *n = dm(alice, "3EB0BAD1", "111@s.whatsapp.net", "lost", &t);
    WG_CHECK(n);
    WG_CHECK_EQ_INT(wg_recv_message(&env, n, &r), 0);
    WG_CHECK_EQ_INT(r.reply, WG_RECV_RETRY);
    WG_CHECK_STR(r.event, "message.received");
    WG_CHECK_STR(r.key, "msgerr:" PEER ":3EB0BAD1");
    json_t *o = payload(&r);
    WG_CHECK(o && json_object_get(o, "error") && !json_object_get(o, "message"));
    WG_CHECK(JSTR(json_object_get(o, "error"), "code"));
    json_decref(o);
    wg_recv_result_dispose(&r);
    wg_node_free(n);

    /* garbage bytes as a msg */
    n = stanza("3EB0BAD2", "111@s.whatsapp.net", NULL, NULL, "1700000002");
    add_enc(n, WG_SIGNAL_MSG, (const uint8_t *)"\x33garbage", 8);
    n = wire(n);
    WG_CHECK_EQ_INT(wg_recv_message(&env, n, &r), 0);
    WG_CHECK_EQ_INT(r.reply, WG_RECV_RETRY);
    WG_CHECK_STR(r.event, "message.received");
    wg_recv_result_dispose(&r);
    wg_node_free(n);

    /* no enc at all: nack 488; not a message: 487 */
    n = stanza("3EB0BAD3", "111@s.whatsapp.net", NULL, NULL, "1700000002");
    WG_CHECK_EQ_INT(wg_recv_message(&env, n, &r), 0);
    WG_CHECK_EQ_INT(r.reply, WG_RECV_NACK);
    WG_CHECK_EQ_INT(r.nack_code, 488);
    WG_CHECK(r.event == NULL);
    wg_node_free(n);
    n = wg_node_new("message");
    WG_CHECK_EQ_INT(wg_recv_message(&env, n, &r), 0);
    WG_CHECK_EQ_INT(r.reply, WG_RECV_NACK);
    WG_CHECK_EQ_INT(r.nack_code, 487);
    wg_node_free(n);
    wg_signal_free(gw);
    wg_signal_free(alice);
    wg_signal_free(mallory);
}

/* Alice sends SKDM (pairwise) + skmsg in one group stanza. */
static wg_node_t *group_msg(wg_signal_t *alice, const char *id, const char *text, int with_skdm)
{
    wg_signal_addr_t a;
    uint8_t *skdm = NULL, *skm = NULL, *ct = NULL, *m = NULL, *gp = NULL, *gct = NULL;
    size_t sn = 0, smn = 0, cn = 0, mn = 0, gpn = 0, gcn = 0;
    wg_signal_type_t t;
    wg_node_t *n = NULL;
    if (wg_signal_addr_from_jid("111:2@s.whatsapp.net", &a) != 0 ||
        wg_signal_group_skdm(alice, GROUP, &a, &skdm, &sn) != 0 ||
        wg_msg_build_skdm(GROUP, skdm, sn, &skm, &smn) != 0 ||
        seal(alice, skm, smn, &t, &ct, &cn) != 0 ||
        wg_msg_build_text(text, NULL, NULL, 0, &m, &mn) != 0 ||
        wg_msg_pad(m, mn, 0, &gp, &gpn) != 0 ||
        wg_signal_group_encrypt(alice, GROUP, &a, gp, gpn, &gct, &gcn) != 0)
        goto out;
    n = stanza(id, GROUP, "111:2@s.whatsapp.net", NULL, "1700000005");
    if (with_skdm)
        add_enc(n, t, ct, cn);
    add_enc(n, WG_SIGNAL_SKMSG, gct, gcn);
    n = wire(n);
out:
    free(skdm);
    free(skm);
    free(ct);
    free(m);
    free(gp);
    free(gct);
    return n;
}

WG_TEST(recv_group_and_groups_ignore)
{
    wg_signal_t *gw = party(), *alice = party();
    wg_recv_env_t env = {.own_jid = GW_JID};
    wg_recv_result_t r;
    WG_CHECK(gw && alice);
    env.sig = gw;
    WG_CHECK_EQ_INT(connect_to_gw(alice, gw, 9), 0);

    /* skmsg before any sender key: retry (with keys), error event */
    wg_node_t *n = group_msg(alice, "3EB0G0", "too early", 0);
    WG_CHECK(n);
    WG_CHECK_EQ_INT(wg_recv_message(&env, n, &r), 0);
    WG_CHECK_EQ_INT(r.reply, WG_RECV_RETRY);
    WG_CHECK(r.group_key_missing);
    WG_CHECK_STR(r.event, "message.received");
    wg_recv_result_dispose(&r);
    wg_node_free(n);

    n = group_msg(alice, "3EB0G1", "hello group", 1);
    WG_CHECK(n);
    WG_CHECK_EQ_INT(wg_recv_message(&env, n, &r), 0);
    WG_CHECK_EQ_INT(r.reply, WG_RECV_RECEIPT);
    WG_CHECK_STR(r.event, "message.received");
    json_t *o = payload(&r);
    WG_CHECK_STR(JSTR(o, "chat"), GROUP);
    WG_CHECK_STR(JSTR(o, "from"), PEER);
    WG_CHECK(json_is_true(json_object_get(o, "isGroup")));
    WG_CHECK_STR(JSTR(json_object_get(o, "message"), "text"), "hello group");
    json_decref(o);
    wg_recv_result_dispose(&r);
    wg_node_free(n);

    /* groupsIgnore: decrypted (ratchets move on), receipt, no event */
    env.groups_ignore = 1;
    n = group_msg(alice, "3EB0G2", "ignored", 0);
    WG_CHECK(n);
    WG_CHECK_EQ_INT(wg_recv_message(&env, n, &r), 0);
    WG_CHECK_EQ_INT(r.reply, WG_RECV_RECEIPT);
    WG_CHECK(r.event == NULL);
    wg_recv_result_dispose(&r);
    wg_node_free(n);
    env.groups_ignore = 0;
    n = group_msg(alice, "3EB0G3", "seen again", 0);
    WG_CHECK_EQ_INT(wg_recv_message(&env, n, &r), 0);
    WG_CHECK_STR(r.event, "message.received");
    o = payload(&r);
    WG_CHECK_STR(JSTR(json_object_get(o, "message"), "text"), "seen again");
    json_decref(o);
    wg_recv_result_dispose(&r);
    wg_node_free(n);
    wg_signal_free(gw);
    wg_signal_free(alice);
}

WG_TEST(recv_own_phone_copy_is_message_sent)
{
    wg_signal_t *gw = party(), *phone = party();
    wg_recv_env_t env = {.own_jid = GW_JID};
    wg_recv_result_t r;
    wg_signal_type_t t;
    uint8_t *m = NULL, *dsm = NULL, *ct = NULL;
    size_t mn = 0, dn = 0, cn = 0;
    WG_CHECK(gw && phone);
    env.sig = gw;
    WG_CHECK_EQ_INT(connect_to_gw(phone, gw, 11), 0);
    WG_CHECK_EQ_INT(wg_msg_build_text("sent from my phone", NULL, NULL, 0, &m, &mn), 0);
    WG_CHECK_EQ_INT(wg_msg_wrap_dsm(m, mn, PEER, &dsm, &dn), 0);
    WG_CHECK_EQ_INT(seal(phone, dsm, dn, &t, &ct, &cn), 0);
    wg_node_t *n = stanza("3EB0ME1", OWN_PHONE, NULL, PEER, "1700000009");
    add_enc(n, t, ct, cn);
    n = wire(n);
    free(m);
    free(dsm);
    free(ct);
    WG_CHECK_EQ_INT(wg_recv_message(&env, n, &r), 0);
    WG_CHECK_EQ_INT(r.reply, WG_RECV_RECEIPT);
    WG_CHECK_STR(r.receipt_type, "sender");
    WG_CHECK_STR(r.event, "message.sent");
    json_t *o = payload(&r);
    WG_CHECK_STR(JSTR(o, "chat"), PEER);
    WG_CHECK(json_is_true(json_object_get(o, "fromMe")));
    WG_CHECK_STR(JSTR(json_object_get(o, "message"), "text"), "sent from my phone");
    json_decref(o);
    wg_recv_result_dispose(&r);
    wg_node_free(n);
    wg_signal_free(gw);
    wg_signal_free(phone);
}

#include "wa/signal_stage.h"

/* The crash between decrypting and committing the event: the staged state is discarded, the
 * same stanza decrypts again (same event key); after a commit it is a duplicate. */
WG_TEST(recv_stage_discard_then_redelivery)
{
    wg_creds_t c;
    wg_signal_keys_t k;
    wg_signal_storage_t *mem = NULL, *stage = NULL;
    wg_signal_t *gw = NULL, *alice = party();
    wg_recv_result_t r;
    wg_signal_type_t t;
    WG_CHECK(alice);
    WG_CHECK_EQ_INT(wg_creds_generate(&c), 0);
    WG_CHECK_EQ_INT(wg_signal_storage_mem_new(&mem), 0);
    WG_CHECK_EQ_INT(wg_signal_stage_new(mem, &stage), 0);
    k.registration_id = c.registration_id;
    k.identity = c.identity;
    k.signed_prekey_id = c.signed_prekey_id;
    k.signed_prekey = c.signed_prekey;
    memcpy(k.signed_prekey_sig, c.signed_prekey_sig, sizeof(k.signed_prekey_sig));
    WG_CHECK_EQ_INT(wg_signal_new(&k, stage, &gw), 0);
    WG_CHECK_EQ_INT(connect_to_gw(alice, gw, 21), 0);
    wg_recv_env_t env = {.sig = gw, .own_jid = GW_JID};
    wg_node_t *n = dm(alice, "3EB0CR1", "111:2@s.whatsapp.net", "survives a crash", &t);
    WG_CHECK(n && t == WG_SIGNAL_PKMSG);
    size_t before = wg_signal_storage_mem_count(mem, WG_SIGNAL_K_SESSION);

    wg_signal_stage_begin(stage);
    WG_CHECK_EQ_INT(wg_recv_message(&env, n, &r), 0);
    WG_CHECK_STR(r.event, "message.received");
    WG_CHECK(wg_signal_stage_pending(stage) > 0);
    WG_CHECK_EQ_INT(wg_signal_storage_mem_count(mem, WG_SIGNAL_K_SESSION), before);
    wg_recv_result_dispose(&r);
    wg_signal_stage_discard(stage); /* "crash": nothing reached the store */

    wg_signal_stage_begin(stage);
    WG_CHECK_EQ_INT(wg_recv_message(&env, n, &r), 0);
    WG_CHECK_STR(r.event, "message.received");
    WG_CHECK_STR(r.key, "msg:" PEER ":3EB0CR1");
    wg_recv_result_dispose(&r);
    WG_CHECK_EQ_INT(wg_signal_stage_commit(stage), 0);
    WG_CHECK_EQ_INT(wg_signal_storage_mem_count(mem, WG_SIGNAL_K_SESSION), before + 1);

    wg_signal_stage_begin(stage);
    WG_CHECK_EQ_INT(wg_recv_message(&env, n, &r), 0);
    WG_CHECK(r.event == NULL); /* now a duplicate */
    wg_recv_result_dispose(&r);
    WG_CHECK_EQ_INT(wg_signal_stage_commit(stage), 0);
    wg_node_free(n);
    wg_creds_wipe(&c);
    wg_signal_free(gw);
    wg_signal_free(alice);
}
