/* test_stanza.c - wa/stanza: every builder against the exact node text of the fact sheet, every
 * parser on well-formed input (also after a binary encode/decode round trip) and on malformed
 * input (missing attributes, wrong sizes, bad JIDs) with WG_EPROTO. */
#include "test.h"
#include "util/buf.h"
#include "util/err.h"
#include "wa/binary.h"
#include "wa/stanza.h"

#include <stdlib.h>
#include <string.h>

static char *txt(const wg_node_t *n)
{
    return wg_node_to_string(n, WG_NODE_PRINT_FULL);
}

/* Encodes and decodes n (what a peer would see), freeing n. */
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

#define CHECK_TEXT(node, expect)                                                                   \
    do {                                                                                           \
        char *s_ = txt(node);                                                                      \
        WG_CHECK(s_);                                                                              \
        int ok_ = strcmp(s_, expect) == 0;                                                         \
        if (!ok_)                                                                                  \
            fprintf(stderr, "    got:    %s\n    expect: %s\n", s_, expect);                       \
        free(s_);                                                                                  \
        WG_CHECK(ok_);                                                                             \
    } while (0)

WG_TEST(stanza_message_build_and_parse)
{
    const uint8_t c1[] = {0x33, 1, 2}, c2[] = {0x33, 3}, di[] = {0xAA, 0xBB}, sk[] = {0x33, 0x90};
    wg_stanza_to_t to[] = {{"222@s.whatsapp.net", WG_SIGNAL_PKMSG, c1, 3},
                           {"222:3@s.whatsapp.net", WG_SIGNAL_MSG, c2, 2}};
    wg_stanza_msg_out_t m = {.id = "3EB0AB",
                             .to = "222@s.whatsapp.net",
                             .type = "text",
                             .to_devices = to,
                             .n_to = 2,
                             .device_identity = di,
                             .device_identity_len = 2};
    wg_node_t *n = NULL;
    WG_CHECK_EQ_INT(wg_stanza_message_build(&m, &n), 0);
    CHECK_TEXT(n,
               "<message id=\"3EB0AB\" to=\"222@s.whatsapp.net\" type=\"text\"><participants>"
               "<to jid=\"222@s.whatsapp.net\"><enc v=\"2\" type=\"pkmsg\"><!-- 3 bytes: 330102 -->"
               "</enc></to><to jid=\"222:3@s.whatsapp.net\"><enc v=\"2\" type=\"msg\">"
               "<!-- 2 bytes: 3303 --></enc></to></participants><device-identity>"
               "<!-- 2 bytes: aabb --></device-identity></message>");
    wg_node_free(n);
    /* pkmsg without device identity is refused; msg-only needs none */
    m.device_identity = NULL;
    WG_CHECK_EQ_INT(wg_stanza_message_build(&m, &n), WG_EINVAL);
    to[0].type = WG_SIGNAL_MSG;
    WG_CHECK_EQ_INT(wg_stanza_message_build(&m, &n), 0);
    WG_CHECK(wg_node_child_by_tag(n, "device-identity") == NULL);
    wg_node_free(n);
    /* group: skmsg beside participants, attributes */
    wg_stanza_msg_out_t g = {.id = "3EB0CD",
                             .to = "123-456@g.us",
                             .type = "text",
                             .addressing_mode = "lid",
                             .to_devices = to,
                             .n_to = 1,
                             .skmsg = sk,
                             .skmsg_len = 2};
    WG_CHECK_EQ_INT(wg_stanza_message_build(&g, &n), 0);
    CHECK_TEXT(n,
               "<message id=\"3EB0CD\" to=\"123-456@g.us\" type=\"text\" addressing_mode=\"lid\">"
               "<participants><to jid=\"222@s.whatsapp.net\"><enc v=\"2\" type=\"msg\">"
               "<!-- 3 bytes: 330102 --></enc></to></participants><enc v=\"2\" type=\"skmsg\">"
               "<!-- 2 bytes: 3390 --></enc></message>");
    wg_node_free(n);
    to[0].jid = "not a jid";
    WG_CHECK(wg_stanza_message_build(&g, &n) != 0);
}

static wg_node_t *incoming(const char *from, const char *participant, const char *recipient)
{
    wg_node_t *n = wg_node_new("message"), *e;
    wg_node_set_attr(n, "id", "ABC");
    wg_node_set_attr_jid(n, "from", from);
    if (participant)
        wg_node_set_attr_jid(n, "participant", participant);
    if (recipient)
        wg_node_set_attr_jid(n, "recipient", recipient);
    wg_node_set_attr(n, "t", "1700000000");
    wg_node_set_attr(n, "type", "text");
    wg_node_set_attr(n, "notify", "Bob");
    wg_node_set_attr(n, "offline", "1");
    e = wg_node_add_new(n, "enc");
    wg_node_set_attr(e, "v", "2");
    wg_node_set_attr(e, "type", "pkmsg");
    wg_node_set_bytes(e, "\x33\x01", 2);
    e = wg_node_add_new(n, "enc");
    wg_node_set_attr(e, "v", "2");
    wg_node_set_attr(e, "type", "skmsg");
    wg_node_set_attr(e, "mediatype", "image");
    wg_node_set_bytes(e, "\x33\x02\x03", 3);
    return n;
}

WG_TEST(stanza_message_parse_roles)
{
    const char *own[] = {"111", "999", NULL};
    wg_stanza_msg_in_t m;
    /* 1:1 from a peer device */
    wg_node_t *n = wire(incoming("222:4@s.whatsapp.net", NULL, NULL));
    WG_CHECK(n);
    WG_CHECK_EQ_INT(wg_stanza_message_parse(n, own, &m), 0);
    WG_CHECK_STR(m.chat, "222@s.whatsapp.net");
    WG_CHECK_STR(m.author, "222:4@s.whatsapp.net");
    WG_CHECK_EQ_INT(m.from_me, 0);
    WG_CHECK_EQ_INT(m.is_group, 0);
    WG_CHECK_EQ_INT(m.t, 1700000000);
    WG_CHECK_EQ_INT(m.offline, 1);
    WG_CHECK_STR(m.notify, "Bob");
    WG_CHECK_EQ_INT(m.n_enc, 2);
    WG_CHECK_EQ_INT(m.enc[0].type, WG_SIGNAL_PKMSG);
    WG_CHECK_EQ_INT(m.enc[0].len, 2);
    WG_CHECK_EQ_INT(m.enc[1].type, WG_SIGNAL_SKMSG);
    WG_CHECK_STR(m.enc[1].mediatype, "image");
    wg_node_free(n);
    /* our own other device, with recipient: the chat is the recipient */
    n = incoming("111:2@s.whatsapp.net", NULL, "333@s.whatsapp.net");
    WG_CHECK_EQ_INT(wg_stanza_message_parse(n, own, &m), 0);
    WG_CHECK_EQ_INT(m.from_me, 1);
    WG_CHECK_STR(m.chat, "333@s.whatsapp.net");
    wg_node_free(n);
    /* LID from */
    n = incoming("999:1@lid", NULL, NULL);
    WG_CHECK_EQ_INT(wg_stanza_message_parse(n, own, &m), 0);
    WG_CHECK_EQ_INT(m.from_me, 1);
    WG_CHECK_STR(m.chat, "999@lid");
    wg_node_free(n);
    /* group: author is participant, which is mandatory */
    n = incoming("123-456@g.us", "222:4@s.whatsapp.net", NULL);
    WG_CHECK_EQ_INT(wg_stanza_message_parse(n, own, &m), 0);
    WG_CHECK_EQ_INT(m.is_group, 1);
    WG_CHECK_STR(m.chat, "123-456@g.us");
    WG_CHECK_STR(m.author, "222:4@s.whatsapp.net");
    wg_node_free(n);
    n = incoming("123-456@g.us", NULL, NULL);
    WG_CHECK_EQ_INT(wg_stanza_message_parse(n, own, &m), WG_EPROTO);
    wg_node_free(n);
    /* malformed: no id, bad t, enc without bytes, bad v, unknown enc type kept as -1 */
    n = incoming("222@s.whatsapp.net", NULL, NULL);
    wg_node_set_attr(n, "id", NULL);
    WG_CHECK_EQ_INT(wg_stanza_message_parse(n, own, &m), WG_EPROTO);
    wg_node_set_attr(n, "id", "X");
    wg_node_set_attr(n, "t", "12a");
    WG_CHECK_EQ_INT(wg_stanza_message_parse(n, own, &m), WG_EPROTO);
    wg_node_set_attr(n, "t", "5");
    wg_node_set_attr(wg_node_child(n, 0), "type", "msmsg");
    WG_CHECK_EQ_INT(wg_stanza_message_parse(n, own, &m), 0);
    WG_CHECK_EQ_INT(m.enc[0].type, -1);
    wg_node_set_attr(wg_node_child(n, 0), "v", "7");
    WG_CHECK_EQ_INT(wg_stanza_message_parse(n, own, &m), WG_EPROTO);
    wg_node_set_attr(wg_node_child(n, 0), "v", "2");
    wg_node_clear_content(wg_node_child(n, 1));
    WG_CHECK_EQ_INT(wg_stanza_message_parse(n, own, &m), WG_EPROTO);
    wg_node_free(n);
    n = wg_node_new("receipt");
    WG_CHECK_EQ_INT(wg_stanza_message_parse(n, own, &m), WG_EPROTO);
    wg_node_free(n);
}

WG_TEST(stanza_receipts_and_acks)
{
    wg_node_t *n = NULL, *a = NULL;
    const char *ids[] = {"A1", "A2", "A3"};
    wg_stanza_receipt_t r = {.ids = ids, .n_ids = 1, .to = "222@s.whatsapp.net"};
    WG_CHECK_EQ_INT(wg_stanza_receipt_build(&r, &n), 0);
    CHECK_TEXT(n, "<receipt id=\"A1\" to=\"222@s.whatsapp.net\"/>");
    wg_node_free(n);
    wg_stanza_receipt_t rd = {.ids = ids,
                              .n_ids = 3,
                              .to = "123-456@g.us",
                              .participant = "222@s.whatsapp.net",
                              .type = "read",
                              .t = 1700000001};
    WG_CHECK_EQ_INT(wg_stanza_receipt_build(&rd, &n), 0);
    CHECK_TEXT(n, "<receipt id=\"A1\" to=\"123-456@g.us\" participant=\"222@s.whatsapp.net\" "
                  "type=\"read\" t=\"1700000001\"><list><item id=\"A2\"/><item id=\"A3\"/></list>"
                  "</receipt>");
    wg_node_free(n);

    /* incoming receipt with a list, then its ack */
    n = wg_node_new("receipt");
    wg_node_set_attr(n, "id", "B1");
    wg_node_set_attr_jid(n, "from", "222:3@s.whatsapp.net");
    wg_node_set_attr(n, "type", "read");
    wg_node_set_attr(n, "t", "1700000002");
    wg_node_t *list = wg_node_add_new(n, "list");
    wg_node_set_attr(wg_node_add_new(list, "item"), "id", "B2");
    n = wire(n);
    wg_stanza_receipt_in_t in;
    WG_CHECK_EQ_INT(wg_stanza_receipt_parse(n, &in), 0);
    WG_CHECK_EQ_INT(in.n_ids, 2);
    WG_CHECK_STR(in.ids[1], "B2");
    WG_CHECK_STR(in.type, "read");
    WG_CHECK_EQ_INT(in.t, 1700000002);
    WG_CHECK_EQ_INT(wg_stanza_ack_build(n, NULL, &a), 0);
    CHECK_TEXT(a, "<ack class=\"receipt\" id=\"B1\" to=\"222:3@s.whatsapp.net\" type=\"read\"/>");
    wg_node_free(a);
    wg_node_free(n);

    /* message nack: no type, with error */
    n = incoming("123-456@g.us", "222:4@s.whatsapp.net", NULL);
    WG_CHECK_EQ_INT(wg_stanza_ack_build(n, "500", &a), 0);
    CHECK_TEXT(a, "<ack class=\"message\" id=\"ABC\" to=\"123-456@g.us\" "
                  "participant=\"222:4@s.whatsapp.net\" error=\"500\"/>");
    wg_node_free(a);
    wg_node_set_attr(n, "from", NULL);
    WG_CHECK_EQ_INT(wg_stanza_ack_build(n, NULL, &a), WG_EPROTO);
    wg_node_free(n);
    n = wg_node_new("receipt");
    WG_CHECK_EQ_INT(wg_stanza_receipt_parse(n, &in), WG_EPROTO);
    wg_node_free(n);
}

WG_TEST(stanza_retry_receipt_round_trip)
{
    wg_signal_bundle_t keys = {.registration_id = 0x01020304,
                               .signed_prekey_id = 1,
                               .has_prekey = 1,
                               .prekey_id = 0x0A0B0C};
    memset(keys.identity, 1, 32);
    memset(keys.signed_prekey, 2, 32);
    memset(keys.signed_prekey_sig, 3, 64);
    memset(keys.prekey, 4, 32);
    const uint8_t di[] = {7, 7, 7};
    wg_stanza_retry_t r = {.id = "M1",
                           .to = "222:3@s.whatsapp.net",
                           .count = 1,
                           .orig_t = 1700000000,
                           .registration_id = 0x01020304};
    wg_node_t *n = NULL;
    WG_CHECK_EQ_INT(wg_stanza_retry_build(&r, &n), 0);
    CHECK_TEXT(n,
               "<receipt id=\"M1\" to=\"222:3@s.whatsapp.net\" type=\"retry\"><retry count=\"1\" "
               "id=\"M1\" t=\"1700000000\" v=\"1\"/><registration><!-- 4 bytes: 01020304 -->"
               "</registration></receipt>");
    wg_node_free(n);
    r.count = 2;
    r.keys = &keys;
    r.device_identity = di;
    r.device_identity_len = 3;
    WG_CHECK_EQ_INT(wg_stanza_retry_build(&r, &n), 0);
    /* the sender's side reads it back: the peer JID becomes from */
    wg_node_set_attr(n, "to", NULL);
    wg_node_set_attr_jid(n, "from", "111:2@s.whatsapp.net");
    n = wire(n);
    wg_stanza_receipt_in_t in;
    WG_CHECK_EQ_INT(wg_stanza_receipt_parse(n, &in), 0);
    WG_CHECK_EQ_INT(in.retry_count, 2);
    WG_CHECK_STR(in.retry_id, "M1");
    WG_CHECK_EQ_INT(in.retry_t, 1700000000);
    WG_CHECK_EQ_INT(in.registration_id, 0x01020304);
    WG_CHECK_EQ_INT(in.has_keys, 1);
    WG_CHECK_EQ_INT(in.keys.prekey_id, 0x0A0B0C);
    WG_CHECK_EQ_INT(in.keys.registration_id, 0x01020304);
    WG_CHECK_MEM(in.keys.signed_prekey_sig, keys.signed_prekey_sig, 64);
    WG_CHECK_EQ_INT(in.device_identity_len, 3);
    /* a short identity is refused */
    wg_node_set_bytes(wg_node_child_by_tag(wg_node_child_by_tag(n, "keys"), "identity"), "x", 1);
    WG_CHECK_EQ_INT(wg_stanza_receipt_parse(n, &in), WG_EPROTO);
    wg_node_free(n);
    keys.has_prekey = 0;
    WG_CHECK_EQ_INT(wg_stanza_retry_build(&r, &n), WG_EINVAL);
}

WG_TEST(stanza_usync_build_and_parse)
{
    const char *users[] = {"222@s.whatsapp.net", "111@s.whatsapp.net"};
    wg_node_t *n = NULL;
    WG_CHECK_EQ_INT(wg_stanza_usync_build("sid-1", users, 2, 1, &n), 0);
    CHECK_TEXT(n, "<iq xmlns=\"usync\" type=\"get\" to=\"@s.whatsapp.net\"><usync sid=\"sid-1\" "
                  "mode=\"query\" context=\"message\" last=\"true\" index=\"0\"><query><devices "
                  "version=\"2\"/><lid/></query><list><user jid=\"222@s.whatsapp.net\"/><user "
                  "jid=\"111@s.whatsapp.net\"/></list></usync></iq>");
    wg_node_free(n);

    /* the result */
    wg_node_t *iq = wg_node_new("iq"), *u = wg_node_add_new(iq, "usync"),
              *list = wg_node_add_new(u, "list"), *usr = wg_node_add_new(list, "user");
    wg_node_set_attr_jid(usr, "jid", "222@s.whatsapp.net");
    wg_node_t *dl = wg_node_add_new(wg_node_add_new(usr, "devices"), "device-list"), *d;
    d = wg_node_add_new(dl, "device");
    wg_node_set_attr(d, "id", "0");
    d = wg_node_add_new(dl, "device");
    wg_node_set_attr(d, "id", "5");
    wg_node_set_attr(d, "key-index", "2");
    d = wg_node_add_new(dl, "device");
    wg_node_set_attr(d, "id", "99");
    wg_node_set_attr(d, "key-index", "3");
    wg_node_set_attr(d, "is_hosted", "true");
    wg_node_set_attr_jid(wg_node_add_new(usr, "lid"), "val", "888@lid");
    usr = wg_node_add_new(list, "user");
    wg_node_set_attr_jid(usr, "jid", "333@s.whatsapp.net");
    wg_node_add_new(usr, "error");
    iq = wire(iq);
    wg_stanza_usync_user_t *res = NULL;
    size_t cnt = 0;
    WG_CHECK_EQ_INT(wg_stanza_usync_parse(iq, &res, &cnt), 0);
    WG_CHECK_EQ_INT(cnt, 2);
    WG_CHECK_STR(res[0].jid, "222@s.whatsapp.net");
    WG_CHECK_STR(res[0].lid, "888@lid");
    WG_CHECK_EQ_INT(res[0].n_devices, 3);
    WG_CHECK_EQ_INT(res[0].devices[1].id, 5);
    WG_CHECK_EQ_INT(res[0].devices[1].has_key_index, 1);
    WG_CHECK_EQ_INT(res[0].devices[1].key_index, 2);
    WG_CHECK_EQ_INT(res[0].devices[0].has_key_index, 0);
    WG_CHECK_EQ_INT(res[0].devices[2].hosted, 1);
    WG_CHECK_EQ_INT(res[1].error, 1);
    char jid[128];
    WG_CHECK_EQ_INT(wg_stanza_device_jid(res[0].jid, &res[0].devices[0], jid, sizeof(jid)), 0);
    WG_CHECK_STR(jid, "222@s.whatsapp.net");
    WG_CHECK_EQ_INT(wg_stanza_device_jid(res[0].jid, &res[0].devices[1], jid, sizeof(jid)), 0);
    WG_CHECK_STR(jid, "222:5@s.whatsapp.net");
    WG_CHECK_EQ_INT(wg_stanza_device_jid(res[0].jid, &res[0].devices[2], jid, sizeof(jid)), 0);
    WG_CHECK_STR(jid, "222:99@hosted");
    WG_CHECK_EQ_INT(wg_stanza_device_jid("888@lid", &res[0].devices[1], jid, sizeof(jid)), 0);
    WG_CHECK_STR(jid, "888:5@lid");
    WG_CHECK_EQ_INT(wg_stanza_device_jid("1@g.us", &res[0].devices[1], jid, sizeof(jid)),
                    WG_EINVAL);
    free(res);
    /* a device without id is malformed */
    wg_node_t *dl2 = wg_node_child_by_tag(
        wg_node_child_by_tag(
            wg_node_child(wg_node_child_by_tag(wg_node_child_by_tag(iq, "usync"), "list"), 0),
            "devices"),
        "device-list");
    WG_CHECK(dl2);
    wg_node_set_attr(wg_node_child(dl2, 0), "id", "x");
    WG_CHECK_EQ_INT(wg_stanza_usync_parse(iq, &res, &cnt), WG_EPROTO);
    WG_CHECK(res == NULL);
    wg_node_free(iq);
}

static wg_node_t *bundle_user(const char *jid, int with_key, int wrap)
{
    wg_node_t *u = wg_node_new("user"), *k, *sk;
    uint8_t b32[32], sig[64];
    memset(b32, 5, 32);
    memset(sig, 6, 64);
    wg_node_set_attr_jid(u, "jid", jid);
    wg_node_set_bytes(wg_node_add_new(u, "registration"), "\x00\x00\x30\x39", 4);
    wg_node_t *kp = wrap ? wg_node_add_new(u, "keys") : u;
    wg_node_set_bytes(wg_node_add_new(kp, "type"), "\x05", 1);
    wg_node_set_bytes(wg_node_add_new(kp, "identity"), b32, 32);
    sk = wg_node_add_new(kp, "skey");
    wg_node_set_bytes(wg_node_add_new(sk, "id"), "\x00\x00\x01", 3);
    wg_node_set_bytes(wg_node_add_new(sk, "value"), b32, 32);
    wg_node_set_bytes(wg_node_add_new(sk, "signature"), sig, 64);
    if (with_key) {
        k = wg_node_add_new(kp, "key");
        wg_node_set_bytes(wg_node_add_new(k, "id"), "\x00\x01\x00", 3);
        wg_node_set_bytes(wg_node_add_new(k, "value"), b32, 32);
    }
    return u;
}

WG_TEST(stanza_prekey_fetch)
{
    const char *devs[] = {"222@s.whatsapp.net", "222:3@s.whatsapp.net"};
    wg_node_t *n = NULL;
    WG_CHECK_EQ_INT(wg_stanza_prekey_fetch_build(devs, 2, 1, &n), 0);
    CHECK_TEXT(n,
               "<iq xmlns=\"encrypt\" type=\"get\" to=\"@s.whatsapp.net\"><key><user "
               "jid=\"222@s.whatsapp.net\" reason=\"identity\"/><user jid=\"222:3@s.whatsapp.net\" "
               "reason=\"identity\"/></key></iq>");
    wg_node_free(n);

    wg_node_t *iq = wg_node_new("iq"), *list = wg_node_add_new(iq, "list");
    wg_node_add_child(list, bundle_user("222@s.whatsapp.net", 1, 0));
    wg_node_add_child(list, bundle_user("222:3@s.whatsapp.net", 0, 1));
    wg_node_t *e = wg_node_add_new(list, "user");
    wg_node_set_attr_jid(e, "jid", "222:4@s.whatsapp.net");
    wg_node_add_new(e, "error");
    iq = wire(iq);
    wg_stanza_bundle_t *b = NULL;
    size_t cnt = 0;
    WG_CHECK_EQ_INT(wg_stanza_prekey_fetch_parse(iq, &b, &cnt), 0);
    WG_CHECK_EQ_INT(cnt, 3);
    WG_CHECK_EQ_INT(b[0].bundle.registration_id, 12345);
    WG_CHECK_EQ_INT(b[0].bundle.has_prekey, 1);
    WG_CHECK_EQ_INT(b[0].bundle.prekey_id, 256);
    WG_CHECK_EQ_INT(b[0].bundle.signed_prekey_id, 1);
    WG_CHECK_EQ_INT(b[1].bundle.has_prekey, 0);
    WG_CHECK_STR(b[1].jid, "222:3@s.whatsapp.net");
    WG_CHECK_EQ_INT(b[2].error, 1);
    free(b);
    /* wrong sizes are refused */
    wg_node_t *u0 = wg_node_child(wg_node_child_by_tag(iq, "list"), 0);
    wg_node_set_bytes(wg_node_child_by_tag(wg_node_child_by_tag(u0, "skey"), "signature"), "x", 1);
    WG_CHECK_EQ_INT(wg_stanza_prekey_fetch_parse(iq, &b, &cnt), WG_EPROTO);
    wg_node_set_bytes(wg_node_child_by_tag(u0, "type"), "\x06", 1);
    WG_CHECK_EQ_INT(wg_stanza_prekey_fetch_parse(iq, &b, &cnt), WG_EPROTO);
    wg_node_free(iq);
    n = wg_node_new("iq");
    WG_CHECK_EQ_INT(wg_stanza_prekey_fetch_parse(n, &b, &cnt), WG_EPROTO);
    wg_node_free(n);
}

WG_TEST(stanza_presence_chatstate_call)
{
    wg_node_t *n = NULL;
    WG_CHECK_EQ_INT(wg_stanza_presence_build(1, "Gate", &n), 0);
    CHECK_TEXT(n, "<presence type=\"available\" name=\"Gate\"/>");
    wg_node_free(n);
    WG_CHECK_EQ_INT(wg_stanza_presence_build(0, NULL, &n), 0);
    CHECK_TEXT(n, "<presence type=\"unavailable\"/>");
    wg_node_free(n);
    WG_CHECK_EQ_INT(wg_stanza_presence_subscribe_build("222@s.whatsapp.net", &n), 0);
    CHECK_TEXT(n, "<presence type=\"subscribe\" to=\"222@s.whatsapp.net\"/>");
    wg_node_free(n);
    WG_CHECK_EQ_INT(wg_stanza_chatstate_build("222@s.whatsapp.net", NULL, 1, 0, &n), 0);
    CHECK_TEXT(n, "<chatstate to=\"222@s.whatsapp.net\"><composing/></chatstate>");
    wg_node_free(n);
    WG_CHECK_EQ_INT(wg_stanza_chatstate_build("222@s.whatsapp.net", NULL, 1, 1, &n), 0);
    CHECK_TEXT(n, "<chatstate to=\"222@s.whatsapp.net\"><composing media=\"audio\"/></chatstate>");
    wg_node_free(n);
    WG_CHECK_EQ_INT(wg_stanza_chatstate_build("222@s.whatsapp.net", NULL, 0, 0, &n), 0);
    CHECK_TEXT(n, "<chatstate to=\"222@s.whatsapp.net\"><paused/></chatstate>");
    /* the receiving side */
    wg_node_set_attr(n, "to", NULL);
    wg_node_set_attr_jid(n, "from", "111@s.whatsapp.net");
    n = wire(n);
    wg_stanza_chatstate_in_t cs;
    WG_CHECK_EQ_INT(wg_stanza_chatstate_parse(n, &cs), 0);
    WG_CHECK_EQ_INT(cs.composing, 0);
    WG_CHECK_STR(cs.from, "111@s.whatsapp.net");
    wg_node_free(n);

    wg_stanza_presence_in_t p;
    n = wg_node_new("presence");
    wg_node_set_attr_jid(n, "from", "222@s.whatsapp.net");
    wg_node_set_attr(n, "type", "unavailable");
    wg_node_set_attr(n, "last", "deny");
    WG_CHECK_EQ_INT(wg_stanza_presence_parse(n, &p), 0);
    WG_CHECK_EQ_INT(p.available, 0);
    WG_CHECK_STR(p.last, "deny");
    wg_node_set_attr(n, "type", "weird");
    WG_CHECK_EQ_INT(wg_stanza_presence_parse(n, &p), WG_EPROTO);
    wg_node_free(n);

    /* a call offer, its ack and our reject */
    n = wg_node_new("call");
    wg_node_set_attr_jid(n, "from", "222:1@s.whatsapp.net");
    wg_node_set_attr(n, "id", "CALLMSG1");
    wg_node_set_attr(n, "t", "1700000003");
    wg_node_t *o = wg_node_add_new(n, "offer");
    wg_node_set_attr(o, "call-id", "C0FFEE");
    wg_node_set_attr_jid(o, "call-creator", "222:1@s.whatsapp.net");
    wg_node_add_new(o, "video");
    n = wire(n);
    wg_stanza_call_t c;
    WG_CHECK_EQ_INT(wg_stanza_call_parse(n, &c), 0);
    WG_CHECK_STR(c.kind, "offer");
    WG_CHECK_STR(c.call_id, "C0FFEE");
    WG_CHECK_EQ_INT(c.video, 1);
    WG_CHECK_EQ_INT(c.t, 1700000003);
    wg_node_t *a = NULL;
    WG_CHECK_EQ_INT(wg_stanza_ack_build(n, NULL, &a), 0);
    CHECK_TEXT(a, "<ack class=\"call\" id=\"CALLMSG1\" to=\"222:1@s.whatsapp.net\"/>");
    wg_node_free(a);
    WG_CHECK_EQ_INT(wg_stanza_call_reject_build("R1", "111@s.whatsapp.net", c.from, c.call_id,
                                                c.call_creator, &a),
                    0);
    CHECK_TEXT(a, "<call id=\"R1\" from=\"111@s.whatsapp.net\" to=\"222:1@s.whatsapp.net\"><reject "
                  "call-id=\"C0FFEE\" call-creator=\"222:1@s.whatsapp.net\" count=\"0\"/></call>");
    wg_node_free(a);
    wg_node_set_attr(wg_node_child(n, 0), "call-id", NULL);
    WG_CHECK_EQ_INT(wg_stanza_call_parse(n, &c), WG_EPROTO);
    wg_node_free(n);
    n = wg_node_new("call");
    WG_CHECK_EQ_INT(wg_stanza_call_parse(n, &c), WG_EPROTO);
    wg_node_free(n);
}

/* ---- the three modules together: what the engine will do ---- */

#include "wa/creds.h"
#include "wa/msg.h"

static wg_signal_t *e2e_party(void)
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

/* The receiving side of §2: parse, decrypt each enc in order, unpad, decode; SKDMs stored. */
static int receive(wg_signal_t *me, wg_node_t *n, const char *const *own, char *text, size_t cap)
{
    wg_stanza_msg_in_t m;
    wg_signal_addr_t from;
    int rv = wg_stanza_message_parse(n, own, &m);
    text[0] = 0;
    if (rv || (rv = wg_signal_addr_from_jid(m.author, &from)) != 0)
        return rv;
    for (size_t i = 0; i < m.n_enc; i++) {
        uint8_t *pt = NULL;
        size_t ptn = 0, len = 0;
        wg_msg_t *msg = NULL;
        if (m.enc[i].type == WG_SIGNAL_SKMSG)
            rv = wg_signal_group_decrypt(me, m.chat, &from, m.enc[i].ct, m.enc[i].len, &pt, &ptn);
        else
            rv = wg_signal_decrypt(me, &from, (wg_signal_type_t)m.enc[i].type, m.enc[i].ct,
                                   m.enc[i].len, &pt, &ptn);
        if (rv == 0 && (rv = wg_msg_unpad(pt, ptn, &len)) == 0 &&
            (rv = wg_msg_decode(pt, len, &msg)) == 0) {
            if (msg->skdm.p)
                rv = wg_signal_group_process(me, m.chat, &from, msg->skdm.p, msg->skdm.len);
            if (msg->text)
                snprintf(text, cap, "%s", msg->text);
        }
        wg_msg_free(msg);
        free(pt);
        if (rv)
            return rv;
    }
    return 0;
}

WG_TEST(stanza_end_to_end_dm_and_group)
{
    wg_signal_t *alice = e2e_party(), *bob = e2e_party();
    const char *alice_own[] = {"111", NULL}, *bob_own[] = {"222", NULL};
    wg_signal_addr_t a_addr, b_addr;
    char text[64];
    WG_CHECK(alice && bob);
    WG_CHECK_EQ_INT(wg_signal_addr_from_jid("111:1@s.whatsapp.net", &a_addr), 0);
    WG_CHECK_EQ_INT(wg_signal_addr_from_jid("222@s.whatsapp.net", &b_addr), 0);

    /* Bob's bundle travels as the server's key-fetch reply */
    WG_CHECK_EQ_INT(wg_signal_prekeys_generate(bob, 1, 2, NULL), 0);
    wg_signal_bundle_t own;
    WG_CHECK_EQ_INT(wg_signal_own_bundle(bob, 2, &own), 0);
    wg_node_t *iq = wg_node_new("iq"), *list = wg_node_add_new(iq, "list");
    wg_node_t *u = wg_node_add_new(list, "user"), *sk, *k;
    uint8_t reg[4] = {(uint8_t)(own.registration_id >> 24), (uint8_t)(own.registration_id >> 16),
                      (uint8_t)(own.registration_id >> 8), (uint8_t)own.registration_id};
    uint8_t spk_id[3] = {0, 0, (uint8_t)own.signed_prekey_id}, pk_id[3] = {0, 0, 2};
    wg_node_set_attr_jid(u, "jid", "222@s.whatsapp.net");
    wg_node_set_bytes(wg_node_add_new(u, "registration"), reg, 4);
    wg_node_set_bytes(wg_node_add_new(u, "type"), "\x05", 1);
    wg_node_set_bytes(wg_node_add_new(u, "identity"), own.identity, 32);
    sk = wg_node_add_new(u, "skey");
    wg_node_set_bytes(wg_node_add_new(sk, "id"), spk_id, 3);
    wg_node_set_bytes(wg_node_add_new(sk, "value"), own.signed_prekey, 32);
    wg_node_set_bytes(wg_node_add_new(sk, "signature"), own.signed_prekey_sig, 64);
    k = wg_node_add_new(u, "key");
    wg_node_set_bytes(wg_node_add_new(k, "id"), pk_id, 3);
    wg_node_set_bytes(wg_node_add_new(k, "value"), own.prekey, 32);
    iq = wire(iq);
    wg_stanza_bundle_t *bundles = NULL;
    size_t nb = 0;
    WG_CHECK_EQ_INT(wg_stanza_prekey_fetch_parse(iq, &bundles, &nb), 0);
    WG_CHECK_EQ_INT(nb, 1);
    WG_CHECK_EQ_INT(wg_signal_process_bundle(alice, &b_addr, &bundles[0].bundle), 0);
    free(bundles);
    wg_node_free(iq);

    /* Alice -> Bob: text, padded, pkmsg in a <message>; Bob sees it "from" Alice's device */
    uint8_t *m = NULL, *pad = NULL, *ct = NULL;
    size_t mn = 0, pn = 0, cn = 0;
    wg_signal_type_t t;
    WG_CHECK_EQ_INT(wg_msg_build_text("hi bob", NULL, NULL, 0, &m, &mn), 0);
    WG_CHECK_EQ_INT(wg_msg_pad(m, mn, 0, &pad, &pn), 0);
    WG_CHECK_EQ_INT(wg_signal_encrypt(alice, &b_addr, pad, pn, &t, &ct, &cn), 0);
    wg_stanza_to_t to = {"222@s.whatsapp.net", t, ct, cn};
    wg_stanza_msg_out_t out = {.id = "3EB0E2E",
                               .to = "222@s.whatsapp.net",
                               .type = "text",
                               .to_devices = &to,
                               .n_to = 1,
                               .device_identity = (const uint8_t *)"adv",
                               .device_identity_len = 3};
    wg_node_t *n = NULL;
    WG_CHECK_EQ_INT(wg_stanza_message_build(&out, &n), 0);
    free(m);
    free(pad);
    free(ct);
    /* the server turns <participants> into one <message from> per device */
    wg_node_t *rx = wg_node_new("message");
    wg_node_set_attr(rx, "id", "3EB0E2E");
    wg_node_set_attr_jid(rx, "from", "111:1@s.whatsapp.net");
    wg_node_set_attr(rx, "t", "1700000000");
    wg_node_t *enc =
        wg_node_child_by_tag(wg_node_child(wg_node_child_by_tag(n, "participants"), 0), "enc");
    wg_node_add_child(rx, wg_node_clone(enc));
    wg_node_free(n);
    rx = wire(rx);
    WG_CHECK_EQ_INT(receive(bob, rx, bob_own, text, sizeof(text)), 0);
    WG_CHECK_STR(text, "hi bob");
    wg_node_free(rx);

    /* Bob creates a group key, sends SKDM (pairwise msg) + skmsg in one stanza to Alice */
    const char *g = "120363001@g.us";
    uint8_t *skdm = NULL, *skm = NULL, *gp = NULL, *gct = NULL;
    size_t sn = 0, smn = 0, gpn = 0, gcn = 0;
    WG_CHECK_EQ_INT(wg_signal_group_skdm(bob, g, &b_addr, &skdm, &sn), 0);
    WG_CHECK_EQ_INT(wg_msg_build_skdm(g, skdm, sn, &skm, &smn), 0);
    WG_CHECK_EQ_INT(wg_msg_pad(skm, smn, 0, &pad, &pn), 0);
    WG_CHECK_EQ_INT(wg_signal_encrypt(bob, &a_addr, pad, pn, &t, &ct, &cn), 0);
    WG_CHECK_EQ_INT(t, WG_SIGNAL_MSG);
    WG_CHECK_EQ_INT(wg_msg_build_text("hello group", NULL, NULL, 0, &m, &mn), 0);
    WG_CHECK_EQ_INT(wg_msg_pad(m, mn, 0, &gp, &gpn), 0);
    WG_CHECK_EQ_INT(wg_signal_group_encrypt(bob, g, &b_addr, gp, gpn, &gct, &gcn), 0);
    rx = wg_node_new("message");
    wg_node_set_attr(rx, "id", "3EB0G1");
    wg_node_set_attr_jid(rx, "from", g);
    wg_node_set_attr_jid(rx, "participant", "222@s.whatsapp.net");
    enc = wg_node_add_new(rx, "enc");
    wg_node_set_attr(enc, "v", "2");
    wg_node_set_attr(enc, "type", "msg");
    wg_node_set_bytes(enc, ct, cn);
    enc = wg_node_add_new(rx, "enc");
    wg_node_set_attr(enc, "v", "2");
    wg_node_set_attr(enc, "type", "skmsg");
    wg_node_set_bytes(enc, gct, gcn);
    rx = wire(rx);
    WG_CHECK_EQ_INT(receive(alice, rx, alice_own, text, sizeof(text)), 0);
    WG_CHECK_STR(text, "hello group");
    /* the same stanza again: duplicate, reported as such */
    WG_CHECK_EQ_INT(receive(alice, rx, alice_own, text, sizeof(text)), WG_EEXIST);
    wg_node_free(rx);
    free(skdm);
    free(skm);
    free(pad);
    free(ct);
    free(m);
    free(gp);
    free(gct);
    wg_signal_free(alice);
    wg_signal_free(bob);
}

WG_TEST(stanza_encrypt_notification)
{
    wg_stanza_encrypt_note_t e;
    wg_node_t *n = wg_node_new("notification");
    wg_node_set_attr_jid(n, "from", "@s.whatsapp.net");
    wg_node_set_attr(n, "type", "encrypt");
    wg_node_set_attr(n, "id", "N1");
    wg_node_set_attr(wg_node_add_new(n, "count"), "value", "3");
    n = wire(n);
    WG_CHECK_EQ_INT(wg_stanza_encrypt_note_parse(n, &e), 0);
    WG_CHECK_EQ_INT(e.has_count, 1);
    WG_CHECK_EQ_INT(e.count, 3);
    WG_CHECK_EQ_INT(e.identity, 0);
    wg_node_t *a = NULL;
    WG_CHECK_EQ_INT(wg_stanza_ack_build(n, NULL, &a), 0);
    CHECK_TEXT(a,
               "<ack class=\"notification\" id=\"N1\" to=\"@s.whatsapp.net\" type=\"encrypt\"/>");
    wg_node_free(a);
    wg_node_set_attr(wg_node_child(n, 0), "value", "-1");
    WG_CHECK_EQ_INT(wg_stanza_encrypt_note_parse(n, &e), WG_EPROTO);
    wg_node_free(n);
    n = wg_node_new("notification");
    wg_node_set_attr_jid(n, "from", "222@s.whatsapp.net");
    wg_node_set_attr(n, "type", "encrypt");
    WG_CHECK_EQ_INT(wg_stanza_encrypt_note_parse(n, &e), WG_EPROTO); /* neither child */
    wg_node_add_new(n, "identity");
    WG_CHECK_EQ_INT(wg_stanza_encrypt_note_parse(n, &e), 0);
    WG_CHECK_EQ_INT(e.identity, 1);
    WG_CHECK_STR(e.from, "222@s.whatsapp.net");
    wg_node_set_attr(n, "type", "devices");
    WG_CHECK_EQ_INT(wg_stanza_encrypt_note_parse(n, &e), WG_EPROTO);
    wg_node_free(n);
}

WG_TEST(stanza_message_direct_forms)
{
    const uint8_t c1[] = {0x33, 0xF1};
    wg_stanza_to_t to = {"222:3@s.whatsapp.net", WG_SIGNAL_MSG, c1, 2};
    /* §3.7 resend for one device after its retry receipt */
    wg_stanza_msg_out_t m = {.id = "3EB0R",
                             .to = "222:3@s.whatsapp.net",
                             .type = "text",
                             .to_devices = &to,
                             .n_to = 1,
                             .direct = 1,
                             .t = 1700000000,
                             .count = 2,
                             .no_fanout = 1};
    wg_node_t *n = NULL;
    WG_CHECK_EQ_INT(wg_stanza_message_build(&m, &n), 0);
    CHECK_TEXT(n,
               "<message id=\"3EB0R\" to=\"222:3@s.whatsapp.net\" type=\"text\" t=\"1700000000\" "
               "device_fanout=\"false\"><enc v=\"2\" type=\"msg\" count=\"2\">"
               "<!-- 2 bytes: 33f1 --></enc></message>");
    wg_node_free(n);
    /* §8 peer message to our own devices, pkmsg: meta and device identity */
    to.type = WG_SIGNAL_PKMSG;
    wg_stanza_msg_out_t p = {.id = "3EB0P",
                             .to = "111@s.whatsapp.net",
                             .type = "text",
                             .to_devices = &to,
                             .n_to = 1,
                             .direct = 1,
                             .category = "peer",
                             .device_identity = (const uint8_t *)"\x01",
                             .device_identity_len = 1};
    WG_CHECK_EQ_INT(wg_stanza_message_build(&p, &n), 0);
    CHECK_TEXT(n,
               "<message id=\"3EB0P\" to=\"111@s.whatsapp.net\" type=\"text\" category=\"peer\">"
               "<meta appdata=\"default\"/><enc v=\"2\" type=\"pkmsg\"><!-- 2 bytes: 33f1 --></enc>"
               "<device-identity><!-- 1 bytes: 01 --></device-identity></message>");
    /* what the receiving device sees parses as ours, category peer */
    wg_node_set_attr(n, "to", NULL);
    wg_node_set_attr_jid(n, "from", "111:5@s.whatsapp.net");
    n = wire(n);
    const char *own[] = {"111", NULL};
    wg_stanza_msg_in_t in;
    WG_CHECK_EQ_INT(wg_stanza_message_parse(n, own, &in), 0);
    WG_CHECK_EQ_INT(in.from_me, 1);
    WG_CHECK_STR(in.category, "peer");
    WG_CHECK_EQ_INT(in.n_enc, 1);
    wg_node_free(n);
    /* direct needs exactly one device and no skmsg */
    m.n_to = 0;
    WG_CHECK_EQ_INT(wg_stanza_message_build(&m, &n), WG_EINVAL);
    m.n_to = 1;
    m.skmsg = c1;
    m.skmsg_len = 2;
    WG_CHECK_EQ_INT(wg_stanza_message_build(&m, &n), WG_EINVAL);
}
