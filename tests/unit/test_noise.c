/* test_noise.c - the Noise layer: framing and intro codecs, a full XX handshake of our
 * initiator against (a) a responder written here from the spec (wa-protocol-core.md §2) with
 * only the wg_keys primitives and hand-rolled protobuf bytes, and (b) the library responder,
 * which must produce byte-identical messages; then transport frames both ways in every
 * chunking, and tamper cases (flipped bytes, wrong root, leaf key != static, serials,
 * validity window, truncated and oversized frames, replay, callbacks that fail). */
#include <stdlib.h>
#include <string.h>

#include "test.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/log.h"
#include "wa/keys.h"
#include "wa/noise.h"
#include "wa/noise_int.h"
#include "wa/noise_server.h"
#include "wa/proto/handshake.pb-c.h"

#define NOW 1700000000u
#define DAY 86400u

/* ---- a collector for callbacks ------------------------------------------------------------- */

typedef struct {
    int handshakes;
    int frames;
    wg_buf_t got; /* frames concatenated, each prefixed by a 1-byte length marker '|' */
    int fail_with;
} sink_t;

static int sink_handshake(void *ud, wg_noise_t *n)
{
    sink_t *s = ud;
    (void)n;
    s->handshakes++;
    return 0;
}

static int sink_frame(void *ud, const uint8_t *p, size_t len)
{
    sink_t *s = ud;
    s->frames++;
    wg_buf_append(&s->got, p, len);
    wg_buf_append_byte(&s->got, '|');
    return s->fail_with;
}

static void sink_init(sink_t *s)
{
    memset(s, 0, sizeof(*s));
    wg_buf_init(&s->got, 0);
}

static wg_noise_callbacks_t sink_cb(sink_t *s)
{
    wg_noise_callbacks_t cb = {sink_handshake, sink_frame, s};
    return cb;
}

/* ---- codecs ---------------------------------------------------------------------------------- */

WG_TEST(noise_frame_codec)
{
    wg_buf_t b;
    const uint8_t *pl;
    size_t plen;
    wg_buf_init(&b, 0);
    WG_CHECK_EQ_INT(wg_noise_frame_encode(&b, (const uint8_t *)"hello", 5), 0);
    WG_CHECK_EQ_INT(b.len, 8);
    WG_CHECK_MEM(b.data, "\x00\x00\x05hello", 8);
    for (size_t i = 0; i < 8; i++)
        WG_CHECK_EQ_INT(wg_noise_frame_parse(b.data, i, 100, &pl, &plen), WG_EAGAIN);
    WG_CHECK_EQ_INT(wg_noise_frame_parse(b.data, 8, 100, &pl, &plen), 8);
    WG_CHECK_EQ_INT(plen, 5);
    WG_CHECK_MEM(pl, "hello", 5);
    WG_CHECK_EQ_INT(wg_noise_frame_parse(b.data, 8, 4, &pl, &plen), WG_ETOOBIG);
    WG_CHECK_EQ_INT(wg_noise_frame_parse((const uint8_t *)"\xff\xff\xff", 3, WG_NOISE_MAX_FRAME,
                                         &pl, &plen),
                    WG_EAGAIN);
    wg_buf_dispose(&b);
}

WG_TEST(noise_intro_codec)
{
    wg_buf_t b;
    uint8_t intro[4];
    const uint8_t *ri;
    size_t rl;
    wg_buf_init(&b, 0);
    WG_CHECK_EQ_INT(wg_noise_intro_encode(&b, (const uint8_t *)WG_NOISE_INTRO, NULL, 0), 0);
    WG_CHECK_EQ_INT(b.len, 4);
    WG_CHECK_MEM(b.data, "\x57\x41\x06\x03", 4);
    WG_CHECK_EQ_INT(wg_noise_intro_parse(b.data, 4, intro, &ri, &rl), 4);
    WG_CHECK(ri == NULL && rl == 0);

    /* "ED" 00 01 len3 routing || WA 06 03 (§1.5) */
    wg_buf_reset(&b);
    WG_CHECK_EQ_INT(wg_noise_intro_encode(&b, (const uint8_t *)WG_NOISE_INTRO,
                                          (const uint8_t *)"route", 5),
                    0);
    WG_CHECK_EQ_INT(b.len, 16);
    WG_CHECK_MEM(b.data, "ED\x00\x01\x00\x00\x05routeWA\x06\x03", 16);
    for (size_t i = 0; i < 16; i++)
        WG_CHECK_EQ_INT(wg_noise_intro_parse(b.data, i, intro, &ri, &rl), WG_EAGAIN);
    WG_CHECK_EQ_INT(wg_noise_intro_parse(b.data, 16, intro, &ri, &rl), 16);
    WG_CHECK_EQ_INT(rl, 5);
    WG_CHECK_MEM(ri, "route", 5);
    WG_CHECK_MEM(intro, "WA\x06\x03", 4);

    WG_CHECK_EQ_INT(wg_noise_intro_parse((const uint8_t *)"GET ", 4, intro, &ri, &rl), WG_EPROTO);
    WG_CHECK_EQ_INT(wg_noise_intro_parse((const uint8_t *)"WB", 2, intro, &ri, &rl), WG_EPROTO);
    WG_CHECK_EQ_INT(wg_noise_intro_parse((const uint8_t *)"EX", 2, intro, &ri, &rl), WG_EPROTO);
    WG_CHECK_EQ_INT(wg_noise_intro_parse((const uint8_t *)"ED\x00\x01\x00\x00\x00WA\x06\x03", 11,
                                         intro, &ri, &rl),
                    WG_EPROTO); /* empty routing info */
    WG_CHECK_EQ_INT(wg_noise_intro_parse((const uint8_t *)"ED\x00\x01\xff\xff\xff", 7, intro, &ri,
                                         &rl),
                    WG_EPROTO); /* over the limit */
    uint8_t big[WG_NOISE_MAX_ROUTING_INFO + 1] = {0};
    WG_CHECK_EQ_INT(wg_noise_intro_encode(&b, intro, big, sizeof(big)), WG_EINVAL);
    wg_buf_dispose(&b);
}

/* ---- a responder written from the spec ----------------------------------------------------- */

typedef struct {
    uint8_t h[32], ck[32], k[32];
    uint32_t n;
    wg_keys_pair_t s, e;
    uint8_t re[32], rs[32];
    uint8_t rkey[32], wkey[32];
} tresp_t;

static void t_mixhash(tresp_t *t, const uint8_t *p, size_t n)
{
    wg_keys_sha256(t->h, t->h, 32, p, n);
}

static int t_mixkey(tresp_t *t, const uint8_t *priv, const uint8_t *pub)
{
    uint8_t dh[32], okm[64];
    if (wg_keys_dh(dh, priv, pub) != 0 ||
        wg_keys_hkdf_sha256(okm, 64, t->ck, 32, dh, 32, NULL, 0) != 0)
        return -1;
    memcpy(t->ck, okm, 32);
    memcpy(t->k, okm + 32, 32);
    t->n = 0;
    return 0;
}

static void t_iv(uint8_t iv[12], uint32_t n)
{
    memset(iv, 0, 12);
    iv[8] = (uint8_t)(n >> 24);
    iv[9] = (uint8_t)(n >> 16);
    iv[10] = (uint8_t)(n >> 8);
    iv[11] = (uint8_t)n;
}

static void t_enc(tresp_t *t, const uint8_t *p, size_t n, uint8_t *out)
{
    uint8_t iv[12];
    t_iv(iv, t->n++);
    wg_keys_gcm_encrypt(out, t->k, iv, t->h, 32, p, n);
    t_mixhash(t, out, n + 16);
}

static int t_dec(tresp_t *t, const uint8_t *c, size_t n, uint8_t *out)
{
    uint8_t iv[12];
    t_iv(iv, t->n++);
    if (wg_keys_gcm_decrypt(out, t->k, iv, t->h, 32, c, n) != 0)
        return -1;
    t_mixhash(t, c, n);
    return 0;
}

static size_t t_varint(uint8_t *p, size_t v)
{
    size_t i = 0;
    while (v >= 0x80) {
        p[i++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[i++] = (uint8_t)v;
    return i;
}

static int t_get_varint(const uint8_t **p, const uint8_t *end, size_t *v)
{
    size_t r = 0;
    for (int sh = 0; *p < end && sh < 35; sh += 7) {
        uint8_t b = *(*p)++;
        r |= (size_t)(b & 0x7f) << sh;
        if (!(b & 0x80)) {
            *v = r;
            return 0;
        }
    }
    return -1;
}

/* Reads "WA 06 03" + frame(ClientHello) and writes frame(ServerHello) to out. */
static int tresp_hello(tresp_t *t, const uint8_t *in, size_t len, const uint8_t *chain,
                       size_t chain_len, wg_buf_t *out)
{
    static const uint8_t hello_hdr[] = {0x57, 0x41, 0x06, 0x03, 0x00, 0x00, 0x24,
                                        0x12, 0x22, 0x0a, 0x20};
    uint8_t cstatic[48], *cpay, inner[16], hdr[16];
    size_t il = 0, hl;

    if (len != 43 || memcmp(in, hello_hdr, sizeof(hello_hdr)) != 0)
        return -1;
    memcpy(t->h, WG_NOISE_PROTOCOL_NAME, 32);
    memcpy(t->ck, WG_NOISE_PROTOCOL_NAME, 32);
    t_mixhash(t, in, 4);
    memcpy(t->re, in + 11, 32);
    t_mixhash(t, t->re, 32);
    t_mixhash(t, t->e.pub, 32);
    if (t_mixkey(t, t->e.priv, t->re) != 0)
        return -1;
    t_enc(t, t->s.pub, 32, cstatic);
    if (t_mixkey(t, t->s.priv, t->re) != 0)
        return -1;
    cpay = malloc(chain_len + 16);
    t_enc(t, chain, chain_len, cpay);
    /* ServerHello { ephemeral = 1, static = 2, payload = 3 } inside HandshakeMessage field 3 */
    size_t sl = 2 + 32 + 2 + 48 + 1 + t_varint(inner, chain_len + 16) + chain_len + 16;
    hl = 0;
    hdr[hl++] = 0x1a;
    hl += t_varint(hdr + hl, sl);
    size_t total = hl + sl;
    uint8_t f3[3] = {(uint8_t)(total >> 16), (uint8_t)(total >> 8), (uint8_t)total};
    wg_buf_append(out, f3, 3);
    wg_buf_append(out, hdr, hl);
    wg_buf_append(out, "\x0a\x20", 2);
    wg_buf_append(out, t->e.pub, 32);
    wg_buf_append(out, "\x12\x30", 2);
    wg_buf_append(out, cstatic, 48);
    wg_buf_append_byte(out, 0x1a);
    il = t_varint(inner, chain_len + 16);
    wg_buf_append(out, inner, il);
    wg_buf_append(out, cpay, chain_len + 16);
    free(cpay);
    return 0;
}

/* Reads frame(ClientFinish); returns the payload (malloc'd) and does the Split. */
static uint8_t *tresp_finish(tresp_t *t, const uint8_t *in, size_t len, size_t *plen)
{
    const uint8_t *p = in + 3, *end = in + len;
    size_t l, flen;
    uint8_t *pay = NULL, okm[64];

    if (len < 3 || (size_t)((in[0] << 16) | (in[1] << 8) | in[2]) != len - 3)
        return NULL;
    if (p >= end || *p++ != 0x22 || t_get_varint(&p, end, &flen) != 0 ||
        flen != (size_t)(end - p))
        return NULL;
    if (end - p < 50 || p[0] != 0x0a || p[1] != 0x30)
        return NULL;
    if (t_dec(t, p + 2, 48, t->rs) != 0)
        return NULL;
    p += 50;
    if (t_mixkey(t, t->e.priv, t->rs) != 0)
        return NULL;
    if (p >= end || *p++ != 0x12 || t_get_varint(&p, end, &l) != 0 || l != (size_t)(end - p) ||
        l < 16)
        return NULL;
    pay = malloc(l);
    if (t_dec(t, p, l, pay) != 0) {
        free(pay);
        return NULL;
    }
    *plen = l - 16;
    wg_keys_hkdf_sha256(okm, 64, t->ck, 32, NULL, 0, NULL, 0);
    memcpy(t->rkey, okm, 32);
    memcpy(t->wkey, okm + 32, 32);
    return pay;
}

/* ---- fixtures --------------------------------------------------------------------------------- */

typedef struct {
    wg_keys_pair_t root, server_s, client_s, client_e, server_e;
    uint8_t *chain;
    size_t chain_len;
} fixture_t;

static int fixture_init(fixture_t *f)
{
    memset(f, 0, sizeof(*f));
    if (wg_keys_generate(&f->root) || wg_keys_generate(&f->server_s) ||
        wg_keys_generate(&f->client_s) || wg_keys_generate(&f->client_e) ||
        wg_keys_generate(&f->server_e))
        return -1;
    return wg_noise_cert_chain_make(f->root.priv, f->server_s.pub, NOW - DAY, NOW + DAY,
                                    &f->chain, &f->chain_len);
}

static const uint8_t PAYLOAD[] = "\x08\x01\x18\x00 client payload bytes";

WG_TEST(noise_handshake_vs_spec_responder)
{
    fixture_t f;
    sink_t cs;
    tresp_t t;
    wg_noise_t *c = NULL;
    wg_buf_t out, reply;
    uint8_t *pay = NULL;
    size_t plen = 0;

    WG_CHECK_EQ_INT(fixture_init(&f), 0);
    sink_init(&cs);
    wg_buf_init(&out, 0);
    wg_buf_init(&reply, 0);
    memset(&t, 0, sizeof(t));
    t.s = f.server_s;
    t.e = f.server_e;

    wg_noise_opts_t o = {.root_pub = f.root.pub, .ephemeral = &f.client_e};
    wg_noise_callbacks_t cb = sink_cb(&cs);
    WG_CHECK_EQ_INT(wg_noise_client_new(&c, &f.client_s, &o, &cb), 0);
    WG_CHECK_EQ_INT(wg_noise_feed(c, (const uint8_t *)"x", 1, NOW, &out), WG_EINVAL);
    WG_CHECK_EQ_INT(wg_noise_client_start(c, PAYLOAD, sizeof(PAYLOAD), &out), 0);
    /* §2.5 sanity check: 57 41 06 03 00 00 24 12 22 0A 20 <e.pub>, 43 bytes */
    WG_CHECK_EQ_INT(out.len, 43);
    WG_CHECK_MEM(out.data + 11, f.client_e.pub, 32);
    WG_CHECK_EQ_INT(tresp_hello(&t, out.data, out.len, f.chain, f.chain_len, &reply), 0);

    wg_buf_reset(&out);
    WG_CHECK_EQ_INT(wg_noise_feed(c, reply.data, reply.len, NOW, &out), 0);
    WG_CHECK(wg_noise_is_established(c));
    WG_CHECK_EQ_INT(cs.handshakes, 1);
    WG_CHECK_MEM(wg_noise_peer_static(c), f.server_s.pub, 32);
    pay = tresp_finish(&t, out.data, out.len, &plen);
    WG_CHECK(pay != NULL);
    WG_CHECK_EQ_INT(plen, sizeof(PAYLOAD));
    WG_CHECK_MEM(pay, PAYLOAD, plen);
    free(pay);
    WG_CHECK_MEM(t.rs, f.client_s.pub, 32);
    WG_CHECK_MEM(wg_noise_handshake_hash(c), t.h, 32);

    /* transport: the spec responder encrypts with counter 0, 1; AAD empty (§2.9) */
    for (uint32_t i = 0; i < 2; i++) {
        uint8_t iv[12], ct[64];
        char msg[32];
        int ml = snprintf(msg, sizeof(msg), "server frame %u", i);
        t_iv(iv, i);
        WG_CHECK_EQ_INT(wg_keys_gcm_encrypt(ct + 3, t.wkey, iv, NULL, 0, (uint8_t *)msg,
                                            (size_t)ml),
                        0);
        ct[0] = 0;
        ct[1] = 0;
        ct[2] = (uint8_t)(ml + 16);
        WG_CHECK_EQ_INT(wg_noise_feed(c, ct, (size_t)ml + 19, NOW, NULL), 0);
    }
    WG_CHECK_EQ_INT(cs.frames, 2);
    WG_CHECK_STR((char *)cs.got.data, "server frame 0|server frame 1|");
    /* and the other way */
    wg_buf_reset(&out);
    WG_CHECK_EQ_INT(wg_noise_encrypt_frame(c, (const uint8_t *)"ping", 4, &out), 0);
    WG_CHECK_EQ_INT(out.len, 3 + 4 + 16);
    uint8_t iv[12], pt[4];
    t_iv(iv, 0);
    WG_CHECK_EQ_INT(wg_keys_gcm_decrypt(pt, t.rkey, iv, NULL, 0, out.data + 3, 20), 0);
    WG_CHECK_MEM(pt, "ping", 4);

    wg_noise_free(c);
    wg_buf_dispose(&out);
    wg_buf_dispose(&reply);
    wg_buf_dispose(&cs.got);
    free(f.chain);
}

/* Runs client <-> library server; chunk = bytes per feed (0 = all at once). */
typedef struct {
    fixture_t f;
    sink_t cs, ss;
    wg_noise_t *c, *s;
    wg_buf_t c2s, s2c;
} pair_t;

static int feed_chunks(wg_noise_t *n, const uint8_t *p, size_t len, size_t chunk, wg_buf_t *out)
{
    int rv = 0;
    if (!chunk)
        return wg_noise_feed(n, p, len, NOW, out);
    for (size_t i = 0; i < len && rv == 0; i += chunk)
        rv = wg_noise_feed(n, p + i, len - i < chunk ? len - i : chunk, NOW, out);
    return rv;
}

static int pair_setup(pair_t *pr, size_t chunk, const wg_noise_opts_t *copts)
{
    memset(pr, 0, sizeof(*pr));
    if (fixture_init(&pr->f) != 0)
        return -1;
    sink_init(&pr->cs);
    sink_init(&pr->ss);
    wg_buf_init(&pr->c2s, 0);
    wg_buf_init(&pr->s2c, 0);
    wg_noise_opts_t o = {.root_pub = pr->f.root.pub};
    if (copts)
        o = *copts;
    if (!o.root_pub)
        o.root_pub = pr->f.root.pub;
    wg_noise_callbacks_t ccb = sink_cb(&pr->cs), scb = sink_cb(&pr->ss);
    if (wg_noise_client_new(&pr->c, &pr->f.client_s, &o, &ccb) != 0 ||
        wg_noise_server_new(&pr->s, &pr->f.server_s, pr->f.chain, pr->f.chain_len, NULL, &scb) != 0)
        return -2;
    if (wg_noise_client_start(pr->c, PAYLOAD, sizeof(PAYLOAD), &pr->c2s) != 0)
        return -3;
    if (feed_chunks(pr->s, pr->c2s.data, pr->c2s.len, chunk, &pr->s2c) != 0)
        return -4;
    wg_buf_reset(&pr->c2s);
    if (feed_chunks(pr->c, pr->s2c.data, pr->s2c.len, chunk, &pr->c2s) != 0)
        return -5;
    wg_buf_reset(&pr->s2c);
    if (feed_chunks(pr->s, pr->c2s.data, pr->c2s.len, chunk, &pr->s2c) != 0)
        return -6;
    wg_buf_reset(&pr->c2s);
    return 0;
}

static void pair_dispose(pair_t *pr)
{
    wg_noise_free(pr->c);
    wg_noise_free(pr->s);
    wg_buf_dispose(&pr->c2s);
    wg_buf_dispose(&pr->s2c);
    wg_buf_dispose(&pr->cs.got);
    wg_buf_dispose(&pr->ss.got);
    free(pr->f.chain);
}

WG_TEST(noise_library_responder_matches_spec)
{
    /* Same keys on both responders -> the library's ServerHello equals the spec responder's. */
    fixture_t f;
    tresp_t t;
    wg_noise_t *c = NULL, *s = NULL;
    wg_buf_t hello, r1, r2;
    WG_CHECK_EQ_INT(fixture_init(&f), 0);
    wg_buf_init(&hello, 0);
    wg_buf_init(&r1, 0);
    wg_buf_init(&r2, 0);
    memset(&t, 0, sizeof(t));
    t.s = f.server_s;
    t.e = f.server_e;
    wg_noise_opts_t co = {.root_pub = f.root.pub, .ephemeral = &f.client_e};
    wg_noise_opts_t so = {.ephemeral = &f.server_e};
    WG_CHECK_EQ_INT(wg_noise_client_new(&c, &f.client_s, &co, NULL), 0);
    WG_CHECK_EQ_INT(wg_noise_server_new(&s, &f.server_s, f.chain, f.chain_len, &so, NULL), 0);
    WG_CHECK_EQ_INT(wg_noise_client_start(c, PAYLOAD, sizeof(PAYLOAD), &hello), 0);
    WG_CHECK_EQ_INT(tresp_hello(&t, hello.data, hello.len, f.chain, f.chain_len, &r1), 0);
    WG_CHECK_EQ_INT(wg_noise_feed(s, hello.data, hello.len, NOW, &r2), 0);
    WG_CHECK_EQ_INT(r1.len, r2.len);
    WG_CHECK_MEM(r1.data, r2.data, r1.len);
    WG_CHECK_MEM(wg_noise_intro(s), "WA\x06\x03", 4);
    wg_noise_free(c);
    wg_noise_free(s);
    wg_buf_dispose(&hello);
    wg_buf_dispose(&r1);
    wg_buf_dispose(&r2);
    free(f.chain);
}

WG_TEST(noise_handshake_and_transport_chunkings)
{
    static const size_t chunks[] = {0, 1, 2, 3, 7, 64};
    for (size_t ci = 0; ci < sizeof(chunks) / sizeof(chunks[0]); ci++) {
        pair_t pr;
        int rv = pair_setup(&pr, chunks[ci], NULL);
        if (rv != 0)
            pair_dispose(&pr);
        WG_CHECK_EQ_INT(rv, 0);
        WG_CHECK(wg_noise_is_established(pr.c) && wg_noise_is_established(pr.s));
        WG_CHECK_EQ_INT(pr.cs.handshakes, 1);
        WG_CHECK_EQ_INT(pr.ss.handshakes, 1);
        WG_CHECK_MEM(wg_noise_peer_static(pr.s), pr.f.client_s.pub, 32);
        WG_CHECK_MEM(wg_noise_peer_static(pr.c), pr.f.server_s.pub, 32);
        WG_CHECK_MEM(wg_noise_handshake_hash(pr.c), wg_noise_handshake_hash(pr.s), 32);
        size_t plen = 0;
        const uint8_t *pay = wg_noise_client_payload(pr.s, &plen);
        WG_CHECK(pay && plen == sizeof(PAYLOAD) && memcmp(pay, PAYLOAD, plen) == 0);
        WG_CHECK(wg_noise_client_payload(pr.c, &plen) == NULL);

        /* several frames in one buffer, fed in the same chunking, both directions; one
         * empty frame and one large one */
        static uint8_t big[70000];
        for (size_t i = 0; i < sizeof(big); i++)
            big[i] = (uint8_t)(i * 7);
        WG_CHECK_EQ_INT(wg_noise_encrypt_frame(pr.c, (const uint8_t *)"one", 3, &pr.c2s), 0);
        WG_CHECK_EQ_INT(wg_noise_encrypt_frame(pr.c, NULL, 0, &pr.c2s), 0);
        WG_CHECK_EQ_INT(wg_noise_encrypt_frame(pr.c, (const uint8_t *)"three", 5, &pr.c2s), 0);
        WG_CHECK_EQ_INT(wg_noise_encrypt_frame(pr.c, big, sizeof(big), &pr.c2s), 0);
        WG_CHECK_EQ_INT(feed_chunks(pr.s, pr.c2s.data, pr.c2s.len, chunks[ci] * 997, NULL), 0);
        WG_CHECK_EQ_INT(pr.ss.frames, 4);
        WG_CHECK_MEM(pr.ss.got.data, "one||three|", 11);
        WG_CHECK_MEM(pr.ss.got.data + 11, big, sizeof(big));
        WG_CHECK_EQ_INT(wg_noise_encrypt_frame(pr.s, (const uint8_t *)"back", 4, &pr.s2c), 0);
        WG_CHECK_EQ_INT(wg_noise_encrypt_frame(pr.s, (const uint8_t *)"again", 5, &pr.s2c), 0);
        WG_CHECK_EQ_INT(feed_chunks(pr.c, pr.s2c.data, pr.s2c.len, chunks[ci], NULL), 0);
        WG_CHECK_STR((char *)pr.cs.got.data, "back|again|");
        pair_dispose(&pr);
    }
}

WG_TEST(noise_handshake_with_routing_prefix)
{
    pair_t pr;
    wg_noise_opts_t o = {.routing_info = (const uint8_t *)"\x08\x02\x10\x05", .routing_info_len = 4};
    int rv = pair_setup(&pr, 5, &o);
    if (rv != 0)
        pair_dispose(&pr);
    WG_CHECK_EQ_INT(rv, 0);
    size_t rl = 0;
    const uint8_t *ri = wg_noise_routing_info(pr.s, &rl);
    WG_CHECK(ri && rl == 4 && memcmp(ri, "\x08\x02\x10\x05", 4) == 0);
    WG_CHECK(wg_noise_is_established(pr.s));
    pair_dispose(&pr);
}

/* ---- tamper cases ----------------------------------------------------------------------------- */

/* Client handshake against the library server with a given chain and `now`; flip = index into
 * the ServerHello bytes to corrupt (-1 none). Returns the client's feed result. */
static int client_vs_chain(const fixture_t *f, const uint8_t *chain, size_t chain_len,
                           const uint8_t *root_pub, uint64_t now, long flip)
{
    wg_noise_t *c = NULL, *s = NULL;
    wg_buf_t a, b;
    int rv = -1000;
    wg_buf_init(&a, 0);
    wg_buf_init(&b, 0);
    wg_noise_opts_t o = {.root_pub = root_pub};
    if (wg_noise_client_new(&c, &f->client_s, &o, NULL) != 0 ||
        wg_noise_server_new(&s, &f->server_s, chain, chain_len, NULL, NULL) != 0 ||
        wg_noise_client_start(c, PAYLOAD, sizeof(PAYLOAD), &a) != 0 ||
        wg_noise_feed(s, a.data, a.len, now, &b) != 0)
        goto out;
    if (flip >= 0 && (size_t)flip < b.len)
        b.data[flip] ^= 0x01;
    wg_buf_reset(&a);
    rv = wg_noise_feed(c, b.data, b.len, now, &a);
    if (rv != 0) {
        /* sticky, nothing sent, safe to keep using the API */
        if (a.len != 0 || wg_noise_feed(c, (const uint8_t *)"abc", 3, now, &a) != rv ||
            wg_noise_encrypt_frame(c, (const uint8_t *)"x", 1, &a) != rv ||
            wg_noise_is_established(c) || wg_noise_error(c) != rv)
            rv = -2000;
    }
out:
    wg_noise_free(c);
    wg_noise_free(s);
    wg_buf_dispose(&a);
    wg_buf_dispose(&b);
    return rv;
}

WG_TEST(noise_tamper_server_hello)
{
    fixture_t f, g;
    WG_CHECK_EQ_INT(fixture_init(&f), 0);
    WG_CHECK_EQ_INT(fixture_init(&g), 0);
    WG_CHECK_EQ_INT(client_vs_chain(&f, f.chain, f.chain_len, f.root.pub, NOW, -1), 0);
    /* wrong root key */
    WG_CHECK_EQ_INT(client_vs_chain(&f, f.chain, f.chain_len, g.root.pub, NOW, -1), WG_ECRYPTO);
    /* the default root (WhatsApp's) does not accept a sandbox chain */
    WG_CHECK_EQ_INT(client_vs_chain(&f, f.chain, f.chain_len, NULL, NOW, -1), WG_ECRYPTO);
    /* leaf key != server static: g's chain certifies g.server_s, but f.server_s answers */
    WG_CHECK_EQ_INT(client_vs_chain(&f, g.chain, g.chain_len, g.root.pub, NOW, -1), WG_ECRYPTO);
    /* outside the validity window */
    WG_CHECK_EQ_INT(client_vs_chain(&f, f.chain, f.chain_len, f.root.pub, NOW + 2 * DAY, -1),
                    WG_ECRYPTO);
    WG_CHECK_EQ_INT(client_vs_chain(&f, f.chain, f.chain_len, f.root.pub, NOW - 2 * DAY, -1),
                    WG_ECRYPTO);
    /* every byte of the ServerHello after the frame header (whose flips only change how many
     * bytes are awaited): protobuf structure -> EPROTO, keys and ciphertext -> ECRYPTO; never
     * success, never a crash. */
    wg_noise_t *c = NULL, *s = NULL;
    wg_buf_t a, b;
    wg_buf_init(&a, 0);
    wg_buf_init(&b, 0);
    WG_CHECK_EQ_INT(wg_noise_client_new(&c, &f.client_s, NULL, NULL), 0);
    WG_CHECK_EQ_INT(wg_noise_server_new(&s, &f.server_s, f.chain, f.chain_len, NULL, NULL), 0);
    WG_CHECK_EQ_INT(wg_noise_client_start(c, PAYLOAD, 4, &a), 0);
    WG_CHECK_EQ_INT(wg_noise_feed(s, a.data, a.len, NOW, &b), 0);
    size_t hello_len = b.len;
    wg_noise_free(c);
    wg_noise_free(s);
    wg_buf_dispose(&a);
    wg_buf_dispose(&b);
    int crypto = 0, proto = 0;
    for (size_t i = 3; i < hello_len; i++) {
        int rv = client_vs_chain(&f, f.chain, f.chain_len, f.root.pub, NOW, (long)i);
        WG_CHECK(rv != 0 && rv != -1000 && rv != -2000);
        crypto += rv == WG_ECRYPTO;
        proto += rv == WG_EPROTO;
    }
    WG_CHECK(crypto > 100 && proto > 0);
    free(f.chain);
    free(g.chain);
}

/* Builds a chain by hand to break one rule at a time. */
static uint8_t *build_chain(size_t *len, const wg_keys_pair_t *root, const wg_keys_pair_t *inter,
                            uint32_t iserial, uint32_t iissuer, const uint8_t *leaf_key,
                            uint32_t lissuer, size_t sig_len, const wg_keys_pair_t *leaf_signer,
                            uint64_t leaf_not_after, uint64_t inter_not_after)
{
    Wa__CertChain__NoiseCertificate__Details d1 = WA__CERT_CHAIN__NOISE_CERTIFICATE__DETAILS__INIT;
    Wa__CertChain__NoiseCertificate__Details d2 = WA__CERT_CHAIN__NOISE_CERTIFICATE__DETAILS__INIT;
    Wa__CertChain__NoiseCertificate c1 = WA__CERT_CHAIN__NOISE_CERTIFICATE__INIT;
    Wa__CertChain__NoiseCertificate c2 = WA__CERT_CHAIN__NOISE_CERTIFICATE__INIT;
    Wa__CertChain cc = WA__CERT_CHAIN__INIT;
    uint8_t b1[256], b2[256], s1[64], s2[64], *out;

    d1.has_serial = d1.has_issuerserial = d1.has_key = d1.has_notbefore = d1.has_notafter = 1;
    d1.serial = iserial;
    d1.issuerserial = iissuer;
    d1.key.data = (uint8_t *)inter->pub;
    d1.key.len = 32;
    d1.notbefore = NOW - DAY;
    d1.notafter = inter_not_after;
    d2 = d1;
    d2.serial = iserial + 1;
    d2.issuerserial = lissuer;
    d2.key.data = (uint8_t *)leaf_key;
    d2.notafter = leaf_not_after;
    size_t l1 = protobuf_c_message_pack(&d1.base, b1);
    size_t l2 = protobuf_c_message_pack(&d2.base, b2);
    wg_keys_sign(s1, root->priv, b1, l1);
    wg_keys_sign(s2, (leaf_signer ? leaf_signer : inter)->priv, b2, l2);
    c1.has_details = c1.has_signature = c2.has_details = c2.has_signature = 1;
    c1.details.data = b1;
    c1.details.len = l1;
    c1.signature.data = s1;
    c1.signature.len = sig_len;
    c2.details.data = b2;
    c2.details.len = l2;
    c2.signature.data = s2;
    c2.signature.len = 64;
    cc.intermediate = &c1;
    cc.leaf = &c2;
    *len = wa__cert_chain__get_packed_size(&cc);
    out = malloc(*len);
    wa__cert_chain__pack(&cc, out);
    return out;
}

WG_TEST(noise_cert_chain_rules)
{
    wg_keys_pair_t root, inter, leaf, other;
    uint8_t *ch;
    size_t len;
    WG_CHECK_EQ_INT(wg_keys_generate(&root), 0);
    WG_CHECK_EQ_INT(wg_keys_generate(&inter), 0);
    WG_CHECK_EQ_INT(wg_keys_generate(&leaf), 0);
    WG_CHECK_EQ_INT(wg_keys_generate(&other), 0);

    struct {
        uint32_t iserial, iissuer, lissuer;
        size_t sig_len;
        int want;
    } cases[] = {
        {7, 0, 7, 64, 0},          /* valid */
        {7, 1, 7, 64, WG_ECRYPTO}, /* intermediate not issued by serial 0 */
        {7, 0, 8, 64, WG_ECRYPTO}, /* leaf issuer != intermediate serial */
        {7, 0, 7, 63, WG_ECRYPTO}, /* short signature */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ch = build_chain(&len, &root, &inter, cases[i].iserial, cases[i].iissuer, leaf.pub,
                         cases[i].lissuer, cases[i].sig_len, NULL, NOW + DAY, NOW + DAY);
        int rv = wg_noise_cert_chain_verify(ch, len, root.pub, leaf.pub, NOW);
        free(ch);
        WG_CHECK_EQ_INT(rv, cases[i].want);
    }
    /* the leaf key must be the server static */
    ch = build_chain(&len, &root, &inter, 7, 0, leaf.pub, 7, 64, NULL, NOW + DAY, NOW + DAY);
    WG_CHECK_EQ_INT(wg_noise_cert_chain_verify(ch, len, root.pub, other.pub, NOW), WG_ECRYPTO);
    WG_CHECK_EQ_INT(wg_noise_cert_chain_verify(ch, len, other.pub, leaf.pub, NOW), WG_ECRYPTO);
    /* every single flipped byte is refused */
    for (size_t i = 0; i < len; i++) {
        ch[i] ^= 0x20;
        WG_CHECK(wg_noise_cert_chain_verify(ch, len, root.pub, leaf.pub, NOW) != 0);
        ch[i] ^= 0x20;
    }
    WG_CHECK_EQ_INT(wg_noise_cert_chain_verify(ch, len, root.pub, leaf.pub, NOW), 0);
    free(ch);
    /* leaf signed by someone else than the intermediate */
    ch = build_chain(&len, &root, &inter, 7, 0, leaf.pub, 7, 64, &other, NOW + DAY, NOW + DAY);
    WG_CHECK_EQ_INT(wg_noise_cert_chain_verify(ch, len, root.pub, leaf.pub, NOW), WG_ECRYPTO);
    free(ch);
    /* the leaf's own validity window is checked, not only the intermediate's */
    ch = build_chain(&len, &root, &inter, 7, 0, leaf.pub, 7, 64, NULL, NOW - 1, NOW + DAY);
    WG_CHECK_EQ_INT(wg_noise_cert_chain_verify(ch, len, root.pub, leaf.pub, NOW - 1), 0);
    WG_CHECK_EQ_INT(wg_noise_cert_chain_verify(ch, len, root.pub, leaf.pub, NOW), WG_ECRYPTO);
    free(ch);
    ch = build_chain(&len, &root, &inter, 7, 0, leaf.pub, 7, 64, NULL, NOW + DAY, NOW - 1);
    WG_CHECK_EQ_INT(wg_noise_cert_chain_verify(ch, len, root.pub, leaf.pub, NOW - 1), 0);
    WG_CHECK_EQ_INT(wg_noise_cert_chain_verify(ch, len, root.pub, leaf.pub, NOW), WG_ECRYPTO);
    free(ch);
    WG_CHECK_EQ_INT(wg_noise_cert_chain_verify((const uint8_t *)"\xff\xff", 2, root.pub, leaf.pub,
                                               NOW),
                    WG_EPROTO);
    WG_CHECK_EQ_INT(wg_noise_cert_chain_verify((const uint8_t *)"", 0, root.pub, leaf.pub, NOW),
                    WG_EPROTO);
}

WG_TEST(noise_tamper_client_finish_and_intro)
{
    fixture_t f;
    WG_CHECK_EQ_INT(fixture_init(&f), 0);
    for (int mode = 0; mode < 3; mode++) {
        wg_noise_t *c = NULL, *s = NULL;
        wg_buf_t a, b;
        wg_buf_init(&a, 0);
        wg_buf_init(&b, 0);
        wg_noise_opts_t o = {.root_pub = f.root.pub};
        WG_CHECK_EQ_INT(wg_noise_client_new(&c, &f.client_s, &o, NULL), 0);
        WG_CHECK_EQ_INT(wg_noise_server_new(&s, &f.server_s, f.chain, f.chain_len, NULL, NULL), 0);
        WG_CHECK_EQ_INT(wg_noise_client_start(c, PAYLOAD, sizeof(PAYLOAD), &a), 0);
        if (mode == 2) {
            a.data[0] = 'X'; /* not an intro */
            WG_CHECK_EQ_INT(wg_noise_feed(s, a.data, a.len, NOW, &b), WG_EPROTO);
        } else {
            WG_CHECK_EQ_INT(wg_noise_feed(s, a.data, a.len, NOW, &b), 0);
            wg_buf_reset(&a);
            WG_CHECK_EQ_INT(wg_noise_feed(c, b.data, b.len, NOW, &a), 0);
            /* mode 0: flip inside the encrypted static; mode 1: in the encrypted payload tag */
            a.data[mode == 0 ? 10 : a.len - 1] ^= 0x80;
            WG_CHECK_EQ_INT(wg_noise_feed(s, a.data, a.len, NOW, NULL), WG_ECRYPTO);
            WG_CHECK(wg_noise_client_payload(s, NULL) == NULL);
        }
        WG_CHECK(!wg_noise_is_established(s));
        wg_noise_free(c);
        wg_noise_free(s);
        wg_buf_dispose(&a);
        wg_buf_dispose(&b);
    }
    free(f.chain);
}

WG_TEST(noise_tamper_transport)
{
    pair_t pr;
    int rv = pair_setup(&pr, 0, NULL);
    if (rv != 0)
        pair_dispose(&pr);
    WG_CHECK_EQ_INT(rv, 0);
    wg_buf_t one;
    wg_buf_init(&one, 0);

    /* a frame split anywhere is delivered only when complete */
    WG_CHECK_EQ_INT(wg_noise_encrypt_frame(pr.s, (const uint8_t *)"hello", 5, &one), 0);
    WG_CHECK_EQ_INT(wg_noise_feed(pr.c, one.data, one.len - 1, NOW, NULL), 0);
    WG_CHECK_EQ_INT(pr.cs.frames, 0);
    WG_CHECK_EQ_INT(wg_noise_feed(pr.c, one.data + one.len - 1, 1, NOW, NULL), 0);
    WG_CHECK_EQ_INT(pr.cs.frames, 1);
    /* a replayed frame fails: the counter moved on */
    WG_CHECK_EQ_INT(wg_noise_feed(pr.c, one.data, one.len, NOW, NULL), WG_ECRYPTO);
    WG_CHECK_EQ_INT(wg_noise_feed(pr.c, one.data, one.len, NOW, NULL), WG_ECRYPTO);
    WG_CHECK_EQ_INT(wg_noise_encrypt_frame(pr.c, (const uint8_t *)"x", 1, &one), WG_ECRYPTO);
    WG_CHECK_EQ_INT(pr.cs.frames, 1);

    pair_dispose(&pr);

    /* a flipped ciphertext or tag byte toward the server */

    for (size_t pos = 3; pos < 3 + 4 + 16; pos++) {
        rv = pair_setup(&pr, 0, NULL);
        if (rv != 0)
            pair_dispose(&pr);
        WG_CHECK_EQ_INT(rv, 0);
        wg_buf_reset(&one);
        WG_CHECK_EQ_INT(wg_noise_encrypt_frame(pr.c, (const uint8_t *)"data", 4, &one), 0);
        one.data[pos] ^= 0x04;
        rv = wg_noise_feed(pr.s, one.data, one.len, NOW, NULL);
        int frames = pr.ss.frames;
        pair_dispose(&pr);
        WG_CHECK_EQ_INT(rv, WG_ECRYPTO);
        WG_CHECK_EQ_INT(frames, 0);
    }

    /* a frame shorter than the tag */
    rv = pair_setup(&pr, 0, NULL);
    if (rv != 0)
        pair_dispose(&pr);
    WG_CHECK_EQ_INT(rv, 0);
    WG_CHECK_EQ_INT(wg_noise_feed(pr.c, (const uint8_t *)"\x00\x00\x05hello", 8, NOW, NULL),
                    WG_ECRYPTO);
    pair_dispose(&pr);

    /* a callback that fails stops the feed with its code */
    rv = pair_setup(&pr, 0, NULL);
    if (rv != 0)
        pair_dispose(&pr);
    WG_CHECK_EQ_INT(rv, 0);
    wg_buf_reset(&one);
    WG_CHECK_EQ_INT(wg_noise_encrypt_frame(pr.s, (const uint8_t *)"a", 1, &one), 0);
    WG_CHECK_EQ_INT(wg_noise_encrypt_frame(pr.s, (const uint8_t *)"b", 1, &one), 0);
    pr.cs.fail_with = WG_EPROTO;
    WG_CHECK_EQ_INT(wg_noise_feed(pr.c, one.data, one.len, NOW, NULL), WG_EPROTO);
    WG_CHECK_EQ_INT(pr.cs.frames, 1);
    pair_dispose(&pr);
    wg_buf_dispose(&one);
}

WG_TEST(noise_oversized_frames)
{
    pair_t pr;
    wg_buf_t one;
    uint8_t big[2000] = {0};
    wg_noise_opts_t o = {.max_frame = 1000};
    int rv = pair_setup(&pr, 0, &o);
    if (rv != 0)
        pair_dispose(&pr);
    WG_CHECK_EQ_INT(rv, 0);
    wg_buf_init(&one, 0);
    /* 984 + 16 = 1000 is fine, 985 + 16 is over the limit: refused from the header alone */
    WG_CHECK_EQ_INT(wg_noise_encrypt_frame(pr.s, big, 984, &one), 0);
    WG_CHECK_EQ_INT(wg_noise_feed(pr.c, one.data, one.len, NOW, NULL), 0);
    wg_buf_reset(&one);
    WG_CHECK_EQ_INT(wg_noise_encrypt_frame(pr.s, big, 985, &one), 0);
    WG_CHECK_EQ_INT(wg_noise_feed(pr.c, one.data, 3, NOW, NULL), WG_ETOOBIG);
    WG_CHECK_EQ_INT(wg_noise_feed(pr.c, one.data + 3, 10, NOW, NULL), WG_ETOOBIG);
    /* sending: the protocol limit */
    WG_CHECK_EQ_INT(wg_noise_encrypt_frame(pr.s, big, WG_NOISE_MAX_FRAME - 15, &one), WG_ETOOBIG);
    pair_dispose(&pr);
    wg_buf_dispose(&one);

    /* during the handshake, a server announcing a 16 MiB frame is cut off at the header */
    fixture_t f;
    wg_noise_t *c = NULL;
    wg_buf_t a;
    WG_CHECK_EQ_INT(fixture_init(&f), 0);
    wg_buf_init(&a, 0);
    WG_CHECK_EQ_INT(wg_noise_client_new(&c, &f.client_s, NULL, NULL), 0);
    WG_CHECK_EQ_INT(wg_noise_client_start(c, NULL, 0, &a), 0);
    WG_CHECK_EQ_INT(wg_noise_feed(c, (const uint8_t *)"\xff\xff", 2, NOW, &a), 0);
    WG_CHECK_EQ_INT(wg_noise_feed(c, (const uint8_t *)"\xff", 1, NOW, &a), WG_ETOOBIG);
    wg_noise_free(c);
    wg_buf_dispose(&a);
    free(f.chain);
}

WG_TEST(noise_counter_exhaustion)
{
    pair_t pr;
    wg_buf_t one;
    int rv = pair_setup(&pr, 0, NULL);
    if (rv != 0)
        pair_dispose(&pr);
    WG_CHECK_EQ_INT(rv, 0);
    wg_buf_init(&one, 0);
    /* the IV holds a 32-bit counter: frame 2^32 - 1 is the last one ever sent */
    pr.c->wctr = 0xFFFFFFFFu;
    pr.s->rctr = 0xFFFFFFFFu;
    WG_CHECK_EQ_INT(wg_noise_encrypt_frame(pr.c, (const uint8_t *)"last", 4, &one), 0);
    WG_CHECK_EQ_INT(wg_noise_feed(pr.s, one.data, one.len, NOW, NULL), 0);
    WG_CHECK_EQ_INT(pr.ss.frames, 1);
    WG_CHECK_EQ_INT(wg_noise_encrypt_frame(pr.c, (const uint8_t *)"more", 4, &one), WG_ECRYPTO);
    pair_dispose(&pr);

    /* the reader refuses a counter past 2^32 - 1 instead of wrapping the IV to 0 */
    rv = pair_setup(&pr, 0, NULL);
    if (rv != 0)
        pair_dispose(&pr);
    WG_CHECK_EQ_INT(rv, 0);
    wg_buf_reset(&one);
    WG_CHECK_EQ_INT(wg_noise_encrypt_frame(pr.c, (const uint8_t *)"zero", 4, &one), 0);
    pr.s->rctr = 0x100000000ull;
    WG_CHECK_EQ_INT(wg_noise_feed(pr.s, one.data, one.len, NOW, NULL), WG_ECRYPTO);
    WG_CHECK_EQ_INT(pr.ss.frames, 0);
    pair_dispose(&pr);
    wg_buf_dispose(&one);
}

WG_TEST(noise_root_key_from_hex)
{
    uint8_t k[32];
    WG_CHECK_EQ_INT(wg_noise_root_key_from_hex(NULL, k), 0);
    WG_CHECK_MEM(k, WG_NOISE_WA_ROOT_KEY, 32);
    /* WhatsApp's root key as printed in wa-protocol-core.md §2.7 */
    WG_CHECK_EQ_INT(k[0], 0x14);
    WG_CHECK_EQ_INT(k[31], 0x6b);
    memset(k, 0, sizeof(k));
    WG_CHECK_EQ_INT(wg_noise_root_key_from_hex("", k), 0);
    WG_CHECK_MEM(k, WG_NOISE_WA_ROOT_KEY, 32);
    WG_CHECK_EQ_INT(
        wg_noise_root_key_from_hex(
            "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", k),
        0);
    WG_CHECK_EQ_INT(k[0], 0);
    WG_CHECK_EQ_INT(k[31], 0x1f);
    WG_CHECK_EQ_INT(
        wg_noise_root_key_from_hex(
            "05ff0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", k),
        0);
    WG_CHECK_EQ_INT(k[0], 0xff);
    WG_CHECK_EQ_INT(
        wg_noise_root_key_from_hex(
            "06ff0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", k),
        WG_EINVAL);
    WG_CHECK_EQ_INT(wg_noise_root_key_from_hex("abcd", k), WG_EINVAL);
    WG_CHECK_EQ_INT(
        wg_noise_root_key_from_hex(
            "zz0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", k),
        WG_EINVAL);
}
