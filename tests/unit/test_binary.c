/* test_binary.c - binary-node codec: tokens, node tree, JIDs, encoder/decoder, printer. */
#include "test.h"
#include "util/buf.h"
#include "util/codec.h"
#include "util/err.h"
#include "wa/binary.h"
#include "wa/jid.h"
#include "wa/node.h"
#include "wa/tokens.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <zlib.h>

static const uint8_t *junk_bytes(void)
{
    static const uint8_t z[128];
    return z;
}

/* Encodes n and returns the hex of the bytes (flag byte included); caller frees. */
static char *enc_hex(const wg_node_t *n)
{
    wg_buf_t b;
    char *h = NULL;

    wg_buf_init(&b, 0);
    if (wg_binary_encode(n, &b) == 0)
        h = wg_hex_encode(b.data, b.len);
    wg_buf_dispose(&b);
    return h;
}

/* Decodes hex bytes; returns the decoder's result code. */
static int dec_hex(const char *hex, wg_node_t **out)
{
    uint8_t buf[4096];
    ssize_t n = wg_hex_decode(hex, strlen(hex), buf, sizeof(buf));

    if (n < 0)
        return (int)n;
    return wg_binary_decode(buf, (size_t)n, NULL, out);
}

/* encode -> decode -> equal, and re-encoding gives the same bytes. */
static int roundtrip(const wg_node_t *n)
{
    wg_buf_t a, b;
    wg_node_t *d = NULL;
    int ok = 0;

    wg_buf_init(&a, 0);
    wg_buf_init(&b, 0);
    if (wg_binary_encode(n, &a) != 0 || wg_binary_decode(a.data, a.len, NULL, &d) != 0)
        goto out;
    if (!wg_node_equal(n, d) || wg_binary_encode(d, &b) != 0)
        goto out;
    ok = a.len == b.len && memcmp(a.data, b.data, a.len) == 0;
out:
    wg_node_free(d);
    wg_buf_dispose(&a);
    wg_buf_dispose(&b);
    return ok;
}

static void sha_hex(const char *const *v, size_t n, char out[65])
{
    wg_buf_t b;
    uint8_t md[32];
    unsigned mdlen = 0;
    size_t i;
    char *h;

    wg_buf_init(&b, 0);
    for (i = 0; i < n; i++) {
        if (i)
            wg_buf_append_byte(&b, '\n');
        wg_buf_append_str(&b, v[i]);
    }
    EVP_Digest(b.data, b.len, md, &mdlen, EVP_sha256(), NULL);
    wg_buf_dispose(&b);
    h = wg_hex_encode(md, 32);
    memcpy(out, h, 65);
    free(h);
}

WG_TEST(binary_tokens_match_fact_sheet)
{
    const char *v[256];
    char h[65];
    unsigned i, d;
    static const char *const want[4] = {
        "c19c763b07f7684fc58490eb838873edeec498d59bf4d56bbb33d8e7af4cb112",
        "e8894a798e1d92bc5f5f5cd1c2ffeef43a5c03acb1775b34d121ffe0a19b8f6a",
        "8f4081781e324d9ab95574b01ff37a44753403cebd0d1feeeb985661cc86cae8",
        "8e397aec42a6a503621910cf3d7a8f9e287e94192031265b6e55519e0e19fadc",
    };

    v[0] = "";
    for (i = 1; i < WG_TOKENS_SINGLE_COUNT; i++)
        v[i] = wg_tokens_single(i);
    sha_hex(v, WG_TOKENS_SINGLE_COUNT, h);
    WG_CHECK_STR(h, "1e8302d2aba0d8c40d09fd79fc9c70347350cb00926dd0e3565683b347be35a5");
    for (d = 0; d < 4; d++) {
        for (i = 0; i < 256; i++)
            v[i] = wg_tokens_double(d, i);
        sha_hex(v, 256, h);
        WG_CHECK_STR(h, want[d]);
    }
    WG_CHECK(wg_tokens_single(0) == NULL);
    WG_CHECK(wg_tokens_single(236) == NULL);
    WG_CHECK(wg_tokens_double(4, 0) == NULL);
    WG_CHECK_STR(wg_tokens_single(25), "iq");
    WG_CHECK_STR(wg_tokens_single(235), "screen_height");
    WG_CHECK_STR(wg_tokens_double(1, 238), "pair-device");
}

WG_TEST(binary_tokens_lookup_both_ways)
{
    uint8_t dict = 99, idx = 0;
    unsigned i, d;

    for (i = 1; i < WG_TOKENS_SINGLE_COUNT; i++) {
        const char *s = wg_tokens_single(i);
        WG_CHECK_EQ_INT(wg_tokens_lookup(s, strlen(s), &dict, &idx), 1);
        WG_CHECK_EQ_INT(idx, i);
    }
    for (d = 0; d < 4; d++) {
        for (i = 0; i < 256; i++) {
            const char *s = wg_tokens_double(d, i);
            WG_CHECK_EQ_INT(wg_tokens_lookup(s, strlen(s), &dict, &idx), 2);
            WG_CHECK_EQ_INT(dict, d);
            WG_CHECK_EQ_INT(idx, i);
        }
    }
    WG_CHECK_EQ_INT(wg_tokens_lookup("", 0, &dict, &idx), 0);
    WG_CHECK_EQ_INT(wg_tokens_lookup("md", 2, &dict, &idx), 0);
    WG_CHECK_EQ_INT(wg_tokens_lookup("pair-success", 12, &dict, &idx), 0);
    WG_CHECK_EQ_INT(wg_tokens_lookup("iqx", 2, &dict, &idx), 1); /* length-bounded: "iq" */
    WG_CHECK_EQ_INT(wg_tokens_lookup("iqx", 3, &dict, &idx), 0);
}

WG_TEST(binary_worked_example)
{
    /* wa-protocol-core.md 4.7 */
    const char *want = "00f80a1911fa0003042916570 8ff831b2a3ff801f80156";
    char wantc[128];
    size_t i, j = 0;
    wg_node_t *iq = wg_node_new("iq"), *d = NULL;
    char *h, *s;

    for (i = 0; want[i]; i++)
        if (want[i] != ' ')
            wantc[j++] = want[i];
    wantc[j] = 0;
    WG_CHECK(iq);
    WG_CHECK_EQ_INT(wg_node_set_attr_jid(iq, "to", "@s.whatsapp.net"), 0);
    WG_CHECK_EQ_INT(wg_node_set_attr(iq, "type", "get"), 0);
    WG_CHECK_EQ_INT(wg_node_set_attr(iq, "xmlns", "w:p"), 0);
    WG_CHECK_EQ_INT(wg_node_set_attr(iq, "id", "1.2-3"), 0);
    WG_CHECK(wg_node_add_new(iq, "ping"));
    h = enc_hex(iq);
    WG_CHECK_STR(h, wantc);
    free(h);
    WG_CHECK_EQ_INT(dec_hex(wantc, &d), 0);
    WG_CHECK(wg_node_equal(iq, d));
    s = wg_node_to_string(d, 0);
    WG_CHECK_STR(s, "<iq to=\"@s.whatsapp.net\" type=\"get\" xmlns=\"w:p\" id=\"1.2-3\"><ping/></iq>");
    free(s);
    {
        int is_jid = 0;
        const char *v = NULL;
        WG_CHECK_STR(wg_node_attr_at(d, 0, &v, &is_jid), "to");
        WG_CHECK(is_jid);
        WG_CHECK_STR(v, "@s.whatsapp.net");
    }
    wg_node_free(d);
    wg_node_free(iq);
}

/* Encodes <a x=VALUE/> and checks the bytes of VALUE (after "00 f8 03 <a> <x>"). */
static int value_bytes(const char *value, int jid, const char *want_hex)
{
    wg_node_t *n = wg_node_new("a");
    wg_node_t *d = NULL;
    char *h;
    int ok;

    if (!n)
        return 0;
    if ((jid ? wg_node_set_attr_jid(n, "x", value) : wg_node_set_attr(n, "x", value)) != 0) {
        wg_node_free(n);
        return 0;
    }
    h = enc_hex(n);
    /* "a" and "x" are not tokens: fc01 61, fc01 78 */
    ok = h && strncmp(h, "00f803fc0161fc0178", 18) == 0 && strcmp(h + 18, want_hex) == 0;
    if (ok) {
        ok = dec_hex(h, &d) == 0 && wg_node_equal(n, d);
        if (ok && jid) {
            int is_jid = 0;
            const char *v;
            wg_node_attr_at(d, 0, &v, &is_jid);
            ok = is_jid && strcmp(v, value) == 0;
        }
    }
    if (!ok)
        fprintf(stderr, "  value %s: got %s want ...%s\n", value, h ? h + 18 : "(null)", want_hex);
    free(h);
    wg_node_free(d);
    wg_node_free(n);
    return ok;
}

WG_TEST(binary_jid_forms)
{
    WG_CHECK(value_bytes("@s.whatsapp.net", 1, "fa0003"));
    WG_CHECK(value_bytes("123@s.whatsapp.net", 1, "faff82123f03"));
    WG_CHECK(value_bytes("123:4@s.whatsapp.net", 1, "f70004ff82123f"));
    WG_CHECK(value_bytes("555:2@lid", 1, "f70102ff82555f"));
    WG_CHECK(value_bytes("1234-5678@g.us", 1, "faff851234a5678f1c"));
    WG_CHECK(value_bytes("status@broadcast", 1, "fa0b0d"));
    WG_CHECK(value_bytes("120363@newsletter", 1, "faff03120363fc0a6e6577736c6574746572"));
    WG_CHECK(value_bytes("91:3@hosted", 1, "f78003ff0191"));
    WG_CHECK(value_bytes("91@hosted.lid", 1, "f78100ff0191"));
    WG_CHECK(value_bytes("123_7:3@s.whatsapp.net", 1, "f70703ff82123f"));
    /* A string with '@' that is not marked as a JID stays a raw string. */
    WG_CHECK(value_bytes("a@b", 0, "fc03614062"));
}

WG_TEST(binary_jid_fb_interop_layout)
{
    wg_node_t *n = wg_node_new("a"), *d = NULL;
    char *h;
    const char *v;
    int is_jid = 0;

    WG_CHECK(n);
    WG_CHECK_EQ_INT(wg_node_set_attr_jid(n, "x", "4243:1@msgr"), 0);
    h = enc_hex(n);
    /* F6 user(nibble "4243") device(0001) server("msgr" raw) */
    WG_CHECK(h && strcmp(h + 18, "f6ff024243" "0001" "cc") == 0); /* "msgr" is token 0xCC */
    free(h);
    WG_CHECK_EQ_INT(wg_node_set_attr_jid(n, "x", "5-4243:1@interop"), 0);
    h = enc_hex(n);
    WG_CHECK(h && strcmp(h + 18, "f5ff024243" "0001" "0005" "fc07696e7465726f70") == 0);
    WG_CHECK_EQ_INT(dec_hex(h, &d), 0);
    free(h);
    WG_CHECK_STR(wg_node_attr_at(d, 0, &v, &is_jid), "x");
    WG_CHECK_STR(v, "5-4243:1@interop");
    WG_CHECK(is_jid);
    wg_node_free(d);
    wg_node_free(n);
}

WG_TEST(binary_jid_parse_format)
{
    wg_jid_t j;
    char *s;

    WG_CHECK_EQ_INT(wg_jid_parse("123:4@s.whatsapp.net", 20, &j), 0);
    WG_CHECK_EQ_INT(j.type, WG_JID_AD);
    WG_CHECK_EQ_INT(j.device, 4);
    WG_CHECK_EQ_INT(j.user_len, 3);
    WG_CHECK(wg_jid_server_is(&j, "s.whatsapp.net"));
    s = wg_jid_to_string(&j);
    WG_CHECK_STR(s, "123:4@s.whatsapp.net");
    free(s);
    /* An explicit :0 is an AD_JID (Baileys); formatting drops it. */
    WG_CHECK_EQ_INT(wg_jid_parse("123:0@lid", 9, &j), 0);
    WG_CHECK_EQ_INT(j.type, WG_JID_AD);
    WG_CHECK_EQ_INT(j.domain, WG_JID_DOMAIN_LID);
    s = wg_jid_to_string(&j);
    WG_CHECK_STR(s, "123@lid");
    free(s);
    WG_CHECK_EQ_INT(wg_jid_parse("1@hosted", 8, &j), 0);
    WG_CHECK_EQ_INT(j.type, WG_JID_AD);
    WG_CHECK_EQ_INT(wg_jid_parse("1-2@g.us", 8, &j), 0);
    WG_CHECK_EQ_INT(j.type, WG_JID_PAIR);
    WG_CHECK_EQ_INT(wg_jid_parse("nope", 4, &j), WG_EINVAL);
    WG_CHECK_EQ_INT(wg_jid_parse("a@", 2, &j), WG_EINVAL);
    WG_CHECK_EQ_INT(wg_jid_parse("a@b@c", 5, &j), WG_EINVAL);
    WG_CHECK_EQ_INT(wg_jid_parse("1:256@s.whatsapp.net", 20, &j), WG_EINVAL);
    WG_CHECK_EQ_INT(wg_jid_parse("1:01@s.whatsapp.net", 19, &j), WG_EINVAL);
    WG_CHECK_EQ_INT(wg_jid_parse("1:2@g.us", 8, &j), WG_EINVAL);
    WG_CHECK_EQ_INT(wg_jid_parse("1_1:2@s.whatsapp.net", 20, &j), WG_EINVAL);
    WG_CHECK_EQ_INT(wg_jid_parse("1:65535@msgr", 12, &j), 0);
    WG_CHECK_EQ_INT(j.device, 65535);
    WG_CHECK_EQ_INT(wg_jid_parse("1:65536@msgr", 12, &j), WG_EINVAL);
}

WG_TEST(binary_packing_edges)
{
    char s[200];
    int i;

    /* odd and even nibble strings */
    WG_CHECK(value_bytes("135", 0, "ff82135f"));
    WG_CHECK(value_bytes("135791", 0, "ff03135791"));
    WG_CHECK(value_bytes("-.", 0, "ff01ab"));
    /* hex: uppercase only; lowercase is raw */
    WG_CHECK(value_bytes("ABC", 0, "fb82abcf"));
    WG_CHECK(value_bytes("1F", 0, "fb011f"));
    WG_CHECK(value_bytes("abc", 0, "fc03616263"));
    WG_CHECK(value_bytes("", 0, "fc00"));
    WG_CHECK(value_bytes("1a", 0, "fc023161"));
    /* 127 characters pack (64 bytes, odd flag); 128 do not */
    for (i = 0; i < 127; i++)
        s[i] = (char)('0' + i % 10);
    s[127] = 0;
    {
        wg_node_t *n = wg_node_new("a");
        char *h;
        WG_CHECK(n);
        WG_CHECK_EQ_INT(wg_node_set_attr(n, "x", s), 0);
        h = enc_hex(n);
        WG_CHECK(h && strncmp(h + 18, "ffc0", 4) == 0 && strlen(h) == 18 + 4 + 128);
        free(h);
        WG_CHECK(roundtrip(n));
        s[127] = '1';
        s[128] = 0;
        WG_CHECK_EQ_INT(wg_node_set_attr(n, "x", s), 0);
        h = enc_hex(n);
        WG_CHECK(h && strncmp(h + 18, "fc80", 4) == 0);
        free(h);
        WG_CHECK(roundtrip(n));
        wg_node_free(n);
    }
}

WG_TEST(binary_list_sizes)
{
    wg_node_t *n = wg_node_new("a");
    char key[16];
    char *h;
    int i;

    WG_CHECK(n);
    for (i = 0; i < 127; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        WG_CHECK_EQ_INT(wg_node_set_attr(n, key, "v"), 0);
    }
    h = enc_hex(n); /* 1 + 2*127 = 255 */
    WG_CHECK(h && strncmp(h, "00f8ff", 6) == 0);
    free(h);
    WG_CHECK(roundtrip(n));
    WG_CHECK_EQ_INT(wg_node_set_attr(n, "k127", "v"), 0);
    h = enc_hex(n); /* 257 */
    WG_CHECK(h && strncmp(h, "00f90101", 8) == 0);
    free(h);
    WG_CHECK(roundtrip(n));
    wg_node_free(n);

    n = wg_node_new("list");
    WG_CHECK(n);
    for (i = 0; i < 256; i++)
        WG_CHECK(wg_node_add_new(n, "item"));
    h = enc_hex(n); /* node header f8 02 <list>; child list f9 0100 */
    WG_CHECK(h && strncmp(h, "00f80271f90100", 14) == 0);
    free(h);
    WG_CHECK(roundtrip(n));
    wg_node_free(n);

    /* empty child list differs from no content */
    n = wg_node_new("a");
    WG_CHECK(n);
    WG_CHECK_EQ_INT(wg_node_set_list(n), 0);
    h = enc_hex(n);
    WG_CHECK_STR(h, "00f802fc016100");
    free(h);
    WG_CHECK(roundtrip(n));
    wg_node_free(n);
}

WG_TEST(binary_byte_lengths)
{
    static const size_t lens[] = {0, 255, 256, (1u << 20) - 1, 1u << 20};
    static const char *const hdr[] = {"fc00", "fcff", "fd000100", "fd0fffff", "fe00100000"};
    size_t i;

    for (i = 0; i < 5; i++) {
        wg_node_t *n = wg_node_new("a"), *d = NULL;
        uint8_t *p = malloc(lens[i] + 1);
        wg_buf_t b;
        char *h;
        WG_CHECK(n && p);
        memset(p, 0xA5, lens[i]);
        WG_CHECK_EQ_INT(wg_node_set_bytes(n, p, lens[i]), 0);
        free(p);
        wg_buf_init(&b, 0);
        WG_CHECK_EQ_INT(wg_binary_encode(n, &b), 0);
        h = wg_hex_encode(b.data + 6, strlen(hdr[i]) / 2); /* after 00 f8 02 fc01 61 */
        WG_CHECK_STR(h, hdr[i]);
        free(h);
        WG_CHECK_EQ_INT(wg_binary_decode(b.data, b.len, NULL, &d), 0);
        WG_CHECK(wg_node_equal(n, d));
        WG_CHECK_EQ_INT(wg_node_content_type(d), WG_NODE_BYTES);
        wg_node_free(d);
        wg_buf_dispose(&b);
        wg_node_free(n);
    }
}

WG_TEST(binary_text_content)
{
    wg_node_t *n = wg_node_new("a"), *d = NULL;
    char *h;
    size_t len;

    WG_CHECK(n);
    WG_CHECK_EQ_INT(wg_node_set_text(n, "result"), 0);
    h = enc_hex(n);
    WG_CHECK_STR(h, "00f802fc016114");
    WG_CHECK_EQ_INT(dec_hex(h, &d), 0);
    free(h);
    WG_CHECK_EQ_INT(wg_node_content_type(d), WG_NODE_TEXT);
    WG_CHECK_MEM(wg_node_bytes(d, &len), "result", 6);
    WG_CHECK_EQ_INT(len, 6);
    wg_node_free(d);
    WG_CHECK_EQ_INT(wg_node_set_text_jid(n, "1@g.us"), 0);
    WG_CHECK(roundtrip(n));
    WG_CHECK_EQ_INT(wg_node_set_text_jid(n, "bad"), WG_EINVAL);
    wg_node_free(n);
}

WG_TEST(binary_node_api)
{
    wg_node_t *n = wg_node_new("message"), *c, *k;
    wg_jid_t j;
    size_t len;

    WG_CHECK(n);
    WG_CHECK(wg_node_new("") == NULL);
    WG_CHECK_EQ_INT(wg_node_set_attr(n, "id", "A"), 0);
    WG_CHECK_EQ_INT(wg_node_set_attr(n, "id", "B"), 0);
    WG_CHECK_EQ_INT(wg_node_attr_count(n), 1);
    WG_CHECK_STR(wg_node_attr(n, "id"), "B");
    WG_CHECK_EQ_INT(wg_node_set_attrf(n, "t", "%d", 1700000000), 0);
    WG_CHECK_STR(wg_node_attr(n, "t"), "1700000000");
    WG_CHECK_EQ_INT(wg_node_set_attr_jid(n, "to", "1:2@s.whatsapp.net"), 0);
    WG_CHECK_EQ_INT(wg_node_attr_jid(n, "to", &j), 0);
    WG_CHECK_EQ_INT(j.device, 2);
    WG_CHECK_EQ_INT(wg_node_attr_jid(n, "from", &j), WG_ENOTFOUND);
    WG_CHECK_EQ_INT(wg_node_set_attr_jid(n, "to", "x"), WG_EINVAL);
    WG_CHECK_EQ_INT(wg_node_set_attr(n, "t", NULL), 0);
    WG_CHECK(wg_node_attr(n, "t") == NULL);
    c = wg_node_add_new(n, "enc");
    WG_CHECK(c);
    WG_CHECK_EQ_INT(wg_node_set_bytes(c, "\x01\x02", 2), 0);
    WG_CHECK_EQ_INT(wg_node_add_child(c, n), WG_EINVAL); /* bytes content */
    WG_CHECK(wg_node_child_by_tag(n, "enc") == c);
    WG_CHECK(wg_node_child_by_tag(n, "nope") == NULL);
    WG_CHECK_EQ_INT(wg_node_child_count(n), 1);
    WG_CHECK(wg_node_child(n, 1) == NULL);
    k = wg_node_clone(n);
    WG_CHECK(k && wg_node_equal(n, k));
    WG_CHECK_EQ_INT(wg_node_set_bytes(wg_node_child(k, 0), "\x01\x03", 2), 0);
    WG_CHECK(!wg_node_equal(n, k));
    WG_CHECK_MEM(wg_node_bytes(c, &len), "\x01\x02", 2);
    WG_CHECK(roundtrip(n));
    wg_node_free(k);
    wg_node_free(n);
}

/* Every proper prefix of a valid encoding is rejected as WG_EPROTO. */
WG_TEST(binary_reject_truncated)
{
    wg_node_t *n = wg_node_new("message"), *e, *d = NULL;
    wg_buf_t b;
    size_t i;

    WG_CHECK(n);
    WG_CHECK_EQ_INT(wg_node_set_attr_jid(n, "to", "123:4@s.whatsapp.net"), 0);
    WG_CHECK_EQ_INT(wg_node_set_attr_jid(n, "participant", "5-6:7@interop"), 0);
    WG_CHECK_EQ_INT(wg_node_set_attr(n, "id", "3EB0ABCDEF"), 0);
    e = wg_node_add_new(n, "enc");
    WG_CHECK(e);
    WG_CHECK_EQ_INT(wg_node_set_bytes(e, "0123456789", 10), 0);
    wg_buf_init(&b, 0);
    WG_CHECK_EQ_INT(wg_binary_encode(n, &b), 0);
    for (i = 0; i < b.len; i++) {
        WG_CHECK_EQ_INT(wg_binary_decode(b.data, i, NULL, &d), WG_EPROTO);
        WG_CHECK(d == NULL);
    }
    /* trailing bytes */
    WG_CHECK_EQ_INT(wg_buf_append_byte(&b, 0), 0);
    WG_CHECK_EQ_INT(wg_binary_decode(b.data, b.len, NULL, &d), WG_EPROTO);
    wg_buf_dispose(&b);
    wg_node_free(n);
}

WG_TEST(binary_reject_malformed)
{
    wg_node_t *d = NULL;
    static const char *const bad[] = {
        "00f801f0",           /* unassigned tag byte as the tag */
        "00f800",             /* list size 0 */
        "0000",               /* LIST_EMPTY as the node */
        "00f80100",           /* empty tag */
        "00f801f8",           /* list tag in string position */
        "00f802fc0161f7",     /* truncated AD_JID content */
        "00f803fc0161fc01 78ffc1" + 0, /* placeholder replaced below */
        "00f801ff81cf",       /* nibble 0xC */
        "00f801ff80",         /* odd flag with no bytes */
        "00f801fff1",         /* pad nibble in the middle... (truncated) */
        "00f801ff01f1",       /* pad nibble 0xF as the high nibble */
        "00f801ff011f",       /* pad nibble as the last nibble without the odd flag */
        "00f801fc036100 62",  /* NUL inside a string */
        "00f801fa0003",       /* JID as a tag */
        "00f803fc0161fa0003fc0162", /* JID as an attribute key */
        "00f803fc0161fc0162fafa000303", /* JID inside a JID */
        "00f803fc0161fc0162fa0000", /* JID pair with empty server */
        "00f803fc0161fc0162f6ff01420001fc01 78", /* FB JID on a server other than msgr */
        "00f802fc0161f803",   /* child list claims 3 children, none there */
        "00f802fc0161fe7fffffff", /* BINARY_32 longer than the input */
    };
    size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char hex[128];
        size_t j, k = 0;
        int rv;
        if (i == 6)
            continue;
        for (j = 0; bad[i][j]; j++)
            if (bad[i][j] != ' ')
                hex[k++] = bad[i][j];
        hex[k] = 0;
        rv = dec_hex(hex, &d);
        if (rv != WG_EPROTO)
            fprintf(stderr, "  case %zu (%s): %d\n", i, hex, rv);
        WG_CHECK_EQ_INT(rv, WG_EPROTO);
        WG_CHECK(d == NULL);
    }
    /* The well-formed neighbours of some of the above do decode. */
    WG_CHECK_EQ_INT(dec_hex("00f801ff811f", &d), 0);
    WG_CHECK_STR(wg_node_tag(d), "1");
    wg_node_free(d);
    WG_CHECK_EQ_INT(dec_hex("00f801fb811f", &d), 0); /* hex: any pad nibble is dropped */
    WG_CHECK_STR(wg_node_tag(d), "1");
    wg_node_free(d);
    WG_CHECK_EQ_INT(dec_hex("00f802fc0161f800", &d), 0); /* LIST_8 of size 0 = empty list */
    WG_CHECK_EQ_INT(wg_node_content_type(d), WG_NODE_LIST);
    wg_node_free(d);
}

WG_TEST(binary_reject_depth_and_node_bombs)
{
    wg_binary_limits_t lim;
    wg_buf_t b;
    wg_node_t *d = NULL;
    unsigned i, depth = 100;

    /* depth bomb: 100 nested <a> (each f8 02 fc 01 61 f8 01), innermost f8 01 fc 01 61 */
    wg_buf_init(&b, 0);
    WG_CHECK_EQ_INT(wg_buf_append_byte(&b, 0), 0);
    for (i = 0; i < depth - 1; i++)
        WG_CHECK_EQ_INT(wg_buf_append(&b, "\xf8\x02\xfc\x01\x61\xf8\x01", 7), 0);
    WG_CHECK_EQ_INT(wg_buf_append(&b, "\xf8\x01\xfc\x01\x61", 5), 0);
    WG_CHECK_EQ_INT(wg_binary_decode(b.data, b.len, NULL, &d), WG_EPROTO);
    wg_binary_limits_default(&lim);
    lim.max_depth = depth;
    WG_CHECK_EQ_INT(wg_binary_decode(b.data, b.len, &lim, &d), 0);
    wg_node_free(d);
    lim.max_depth = 64;
    lim.max_nodes = 99;
    WG_CHECK_EQ_INT(wg_binary_decode(b.data, b.len, &lim, &d), WG_EPROTO);
    lim.max_depth = depth;
    lim.max_nodes = 100;
    WG_CHECK_EQ_INT(wg_binary_decode(b.data, b.len, &lim, &d), 0);
    wg_node_free(d);
    lim.max_bytes = b.len - 2;
    WG_CHECK_EQ_INT(wg_binary_decode(b.data, b.len, &lim, &d), WG_EPROTO);
    wg_buf_dispose(&b);
}

WG_TEST(binary_compressed)
{
    wg_node_t *n = wg_node_new("iq"), *d = NULL;
    wg_binary_limits_t lim;
    wg_buf_t b;
    uint8_t *big, z[256];
    uLongf zlen = sizeof(z) - 1;

    WG_CHECK(n);
    big = calloc(1, 100000);
    WG_CHECK(big);
    WG_CHECK_EQ_INT(wg_node_set_bytes(n, big, 100000), 0);
    free(big);
    wg_buf_init(&b, 0);
    WG_CHECK_EQ_INT(wg_binary_encode_compressed(n, &b), 0);
    WG_CHECK_EQ_INT(b.data[0], 2);
    WG_CHECK(b.len < 1000);
    WG_CHECK_EQ_INT(wg_binary_decode(b.data, b.len, NULL, &d), 0);
    WG_CHECK(wg_node_equal(n, d));
    wg_node_free(d);
    /* inflate bomb: ~100 KB out of < 1 KB in, cap 64 KB */
    wg_binary_limits_default(&lim);
    lim.max_bytes = 65536;
    WG_CHECK_EQ_INT(wg_binary_decode(b.data, b.len, &lim, &d), WG_EPROTO);
    WG_CHECK(d == NULL);
    /* exactly at the cap is fine */
    lim.max_bytes = 100000 + 7; /* f8 02 19 fe xxxxxxxx */
    WG_CHECK_EQ_INT(wg_binary_decode(b.data, b.len, &lim, &d), 0);
    wg_node_free(d);
    lim.max_bytes = 100000 + 6;
    WG_CHECK_EQ_INT(wg_binary_decode(b.data, b.len, &lim, &d), WG_EPROTO);
    /* truncated zlib stream, garbage, trailing bytes after the stream */
    WG_CHECK_EQ_INT(wg_binary_decode(b.data, b.len - 3, NULL, &d), WG_EPROTO);
    b.data[3] ^= 0x55;
    WG_CHECK_EQ_INT(wg_binary_decode(b.data, b.len, NULL, &d), WG_EPROTO);
    z[0] = 2;
    WG_CHECK_EQ_INT(compress(z + 1, &zlen, (const Bytef *)"\xf8\x01\x19", 3), Z_OK);
    WG_CHECK_EQ_INT(wg_binary_decode(z, 1 + zlen, NULL, &d), 0);
    WG_CHECK_STR(wg_node_tag(d), "iq");
    wg_node_free(d);
    z[1 + zlen] = 0;
    WG_CHECK_EQ_INT(wg_binary_decode(z, 2 + zlen, NULL, &d), WG_EPROTO);
    /* other flag bits are ignored, as in Baileys */
    WG_CHECK_EQ_INT(dec_hex("fdf8011 9", &d), WG_EINVAL); /* (space is not hex) */
    WG_CHECK_EQ_INT(dec_hex("fdf80119", &d), 0);
    wg_node_free(d);
    wg_buf_dispose(&b);
    wg_node_free(n);
}

WG_TEST(binary_print)
{
    wg_node_t *n = wg_node_new("message"), *c;
    char *s;

    WG_CHECK(n);
    WG_CHECK_EQ_INT(wg_node_set_attr(n, "id", "a<\"&>"), 0);
    c = wg_node_add_new(n, "body");
    WG_CHECK(c);
    WG_CHECK_EQ_INT(wg_node_set_bytes(c, "hi\xc3\xa9", 4), 0);
    c = wg_node_add_new(n, "enc");
    WG_CHECK(c);
    WG_CHECK_EQ_INT(wg_node_set_bytes(c, "\x00\x01\xff", 3), 0);
    c = wg_node_add_new(n, "list");
    WG_CHECK(c);
    WG_CHECK_EQ_INT(wg_node_set_list(c), 0);
    s = wg_node_to_string(n, 0);
    WG_CHECK_STR(s, "<message id=\"a&lt;&quot;&amp;&gt;\"><body>hi\xc3\xa9</body>"
                    "<enc><!-- 3 bytes: 0001ff --></enc><list></list></message>");
    free(s);
    s = wg_node_to_string(n, WG_NODE_PRINT_INDENT);
    WG_CHECK_STR(s, "<message id=\"a&lt;&quot;&amp;&gt;\">\n  <body>hi\xc3\xa9</body>\n"
                    "  <enc><!-- 3 bytes: 0001ff --></enc>\n  <list></list>\n</message>\n");
    free(s);
    {
        uint8_t big[300];
        memset(big, 'x', sizeof(big));
        WG_CHECK_EQ_INT(wg_node_set_bytes(c, big, sizeof(big)), 0);
        s = wg_node_to_string(c, 0);
        WG_CHECK(s && strlen(s) == strlen("<list></list>") + 256 + 3);
        free(s);
        s = wg_node_to_string(c, WG_NODE_PRINT_FULL);
        WG_CHECK(s && strlen(s) == strlen("<list></list>") + 300);
        free(s);
    }
    wg_node_free(n);
}

/* ---- random trees: encode -> decode -> equal -> same bytes */

static uint32_t rng(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(*s >> 33);
}

static void rand_str(uint64_t *s, char *out, size_t cap)
{
    static const char *const pool[] = {"iq", "message", "type", "id", "to", "result", "w:p", "",
                                       "0", "1.2-3", "ABCDEF0123", "abc", "read-self", "mute_v2",
                                       "1961", "md", "hello world"};
    uint32_t k = rng(s) % 6, i, n;

    if (k < 3) {
        snprintf(out, cap, "%s", pool[rng(s) % (sizeof(pool) / sizeof(pool[0]))]);
        return;
    }
    n = rng(s) % (k == 5 ? 140 : 20);
    if (n >= cap)
        n = (uint32_t)cap - 1;
    for (i = 0; i < n; i++) {
        static const char alpha[] = "0123456789-.ABCDEFabcxyz_:/ ";
        out[i] = k == 3 ? "0123456789-."[rng(s) % 12]
                 : k == 4 ? "0123456789ABCDEF"[rng(s) % 16]
                          : alpha[rng(s) % (sizeof(alpha) - 1)];
    }
    out[n] = 0;
}

static const char *rand_jid(uint64_t *s)
{
    static const char *const jids[] = {
        "@s.whatsapp.net", "123@s.whatsapp.net", "123:4@s.whatsapp.net", "555:2@lid", "555@lid",
        "1234-5678@g.us", "status@broadcast", "120363@newsletter", "9:3@hosted", "9@hosted.lid",
        "42:1@msgr", "5-42:1@interop", "12_7:3@s.whatsapp.net"};
    return jids[rng(s) % (sizeof(jids) / sizeof(jids[0]))];
}

static wg_node_t *rand_node(uint64_t *s, int depth)
{
    char buf[160], key[160];
    wg_node_t *n;
    uint32_t i, na, k;

    do
        rand_str(s, buf, sizeof(buf));
    while (!buf[0]);
    n = wg_node_new(buf);
    if (!n)
        return NULL;
    na = rng(s) % 6;
    for (i = 0; i < na; i++) {
        rand_str(s, key, sizeof(key));
        if (rng(s) % 3 == 0) {
            wg_node_set_attr_jid(n, key, rand_jid(s));
        } else {
            rand_str(s, buf, sizeof(buf));
            wg_node_set_attr(n, key, buf);
        }
    }
    k = rng(s) % 6;
    if (k == 1) {
        uint8_t raw[300];
        uint32_t len = rng(s) % sizeof(raw);
        for (i = 0; i < len; i++)
            raw[i] = (uint8_t)rng(s);
        wg_node_set_bytes(n, raw, len);
    } else if (k == 2) {
        rand_str(s, buf, sizeof(buf));
        wg_node_set_text(n, buf);
    } else if (k == 3) {
        wg_node_set_text_jid(n, rand_jid(s));
    } else if (k >= 4 && depth < 5) {
        uint32_t nk = rng(s) % 4;
        wg_node_set_list(n);
        for (i = 0; i < nk; i++) {
            wg_node_t *c = rand_node(s, depth + 1);
            if (c && wg_node_add_child(n, c) != 0)
                wg_node_free(c);
        }
    }
    return n;
}

WG_TEST(binary_random_roundtrip)
{
    uint64_t seed = 42;
    int i;

    for (i = 0; i < 500; i++) {
        wg_node_t *n = rand_node(&seed, 0);
        int ok;
        WG_CHECK(n);
        ok = roundtrip(n);
        if (!ok) {
            char *s = wg_node_to_string(n, 0);
            fprintf(stderr, "  failed on %s\n", s ? s : "?");
            free(s);
        }
        wg_node_free(n);
        WG_CHECK(ok);
    }
}

WG_TEST(binary_double_byte_tokens)
{
    /* dictionary 0 index 0, dictionary 1 index 238, dictionary 2, dictionary 3 (last) */
    WG_CHECK(value_bytes("read-self", 0, "ec00"));
    WG_CHECK(value_bytes("pair-device", 0, "edee"));
    WG_CHECK(value_bytes("failure", 0, "ee3c"));
    WG_CHECK(value_bytes("1961", 0, "efff"));
    WG_CHECK(value_bytes("passive", 0, "ec18"));
    /* not tokens: written raw */
    WG_CHECK(value_bytes("pair-success", 0, "fc0c706169722d73756363657373"));
}

WG_TEST(binary_encode_errors_restore_buffer)
{
    wg_node_t *n = wg_node_new("list");
    wg_buf_t b;
    uint32_t i;

    WG_CHECK(n);
    for (i = 0; i < 65536; i++)
        WG_CHECK(wg_node_add_new(n, "x"));
    wg_buf_init(&b, 0);
    WG_CHECK_EQ_INT(wg_buf_append(&b, "keep", 4), 0);
    WG_CHECK_EQ_INT(wg_binary_encode(n, &b), WG_EINVAL); /* more than LIST_16 can count */
    WG_CHECK_EQ_INT(b.len, 4);
    WG_CHECK_STR((char *)b.data, "keep");
    wg_buf_dispose(&b);
    wg_node_free(n);

    n = wg_node_new("a");
    WG_CHECK(n);
    WG_CHECK_EQ_INT(wg_node_set_bytes(n, junk_bytes(), 100), 0);
    wg_buf_init(&b, 50); /* hard limit below the encoding */
    WG_CHECK_EQ_INT(wg_binary_encode(n, &b), WG_ETOOBIG);
    WG_CHECK_EQ_INT(b.len, 0);
    wg_buf_dispose(&b);
    wg_node_free(n);
}
