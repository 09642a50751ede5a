/* fuzz_noise_frame.c - arbitrary bytes into the Noise readers.
 *
 * A real handshake is made once (client <-> library responder, sandbox-style root) and its
 * states are snapshotted; each input clones the snapshot it needs and, by its first byte:
 *   0: drives the established client's frame reader with a script of chunks: raw bytes,
 *      genuine frames encrypted by the established server, and genuine frames with one bit
 *      flipped, each fed in fuzzer-chosen pieces (reassembly, several frames per chunk);
 *   1: feeds the rest to a fresh responder (preamble + ClientHello reader);
 *   2: feeds the rest to a client waiting for ServerHello (ServerHello + certificate chain);
 *   3: feeds the rest to a responder waiting for ClientFinish;
 *   4: hands the rest to the certificate chain verifier as a serialized CertChain (inside the
 *      handshake it is encrypted, so mutations above never reach it with new bytes).
 * Any return code is fine; crashes, leaks and sanitizer reports are not.
 *
 * Every key is fixed and the certificate chain is a constant (made once with
 * wg_noise_cert_chain_make from the fixed root), so the handshake messages are the same in
 * every run and the seed corpus stays meaningful: WG_FUZZ_WRITE_SEEDS=dir makes the fuzzer
 * write its seeds there (tests/fuzz/corpus/noise_frame was made that way). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <stdio.h>

#include "util/buf.h"
#include "util/codec.h"
#include "util/err.h"
#include "util/log.h"
#include "wa/keys.h"
#include "wa/noise.h"
#include "wa/noise_int.h"
#include "wa/noise_server.h"

#define NOW 1700000000u

static wg_keys_pair_t fz_root, fz_server;
static wg_noise_t *snap_client_est, *snap_server_est, *snap_server_new, *snap_client_wait,
    *snap_server_wait;

static volatile unsigned sink;

static int on_frame(void *ud, const uint8_t *p, size_t len)
{
    /* touch every byte so ASan sees the whole plaintext */
    unsigned *acc = ud;
    for (size_t i = 0; i < len; i++)
        *acc += p[i];
    return 0;
}

static uint8_t *dup_bytes(const uint8_t *p, size_t n)
{
    uint8_t *d;
    if (!p)
        return NULL;
    d = malloc(n ? n : 1);
    if (d && n)
        memcpy(d, p, n);
    return d;
}

static void buf_clone(wg_buf_t *dst, const wg_buf_t *src)
{
    wg_buf_init(dst, src->limit);
    if (src->len)
        wg_buf_append(dst, src->data, src->len);
}

/* Deep copy of a state (the fuzzer knows the internals; nothing else should). */
static wg_noise_t *clone(const wg_noise_t *src, unsigned *acc)
{
    wg_noise_t *n = malloc(sizeof(*n));
    if (!n)
        abort();
    *n = *src;
    buf_clone(&n->body, &src->body);
    buf_clone(&n->scratch, &src->scratch);
    buf_clone(&n->pre, &src->pre);
    n->routing = dup_bytes(src->routing, src->routing_len);
    n->payload = dup_bytes(src->payload, src->payload_len);
    n->cert = dup_bytes(src->cert, src->cert_len);
    n->cb.on_frame = on_frame;
    n->cb.ud = acc;
    return n;
}

/* wg_noise_cert_chain_make(root = 32 x 01, leaf = public key of 32 x 02, NOW +- 1 day) */
static const char CHAIN_HEX[] =
    "0a760a32080210011a20ce8d3ad1ccb633ec7b70c17814a5c76ecd029685050d344745ba05870e587d592080"
    "bfcaaa06288085d5aa0612404448810e0957212099e2925a953825806f9c2e928bd877f5c90988d1e1e07fbf"
    "4a099ade04761c7ed2dd4b618777b6faa4332291873c34425c69c4404cf2d28812760a32080110001a2074bd"
    "77e4d883d9e87e9feaeea29aeb142b11a071572caa96a20bc69b9021615b2080bfcaaa06288085d5aa061240"
    "aee397d5a0b5d8b20616be3d57b085d08cf151682e07fca327c5ce61a2e8cd0ed7b1ae4b9dc4fe6dffbed666"
    "d3fe234ea5ae615f2c92580abae42a576df6aa09";

static void fixed_key(wg_keys_pair_t *kp, uint8_t fill)
{
    uint8_t priv[32];
    memset(priv, fill, sizeof(priv));
    if (wg_keys_from_private(kp, priv))
        abort();
}

static void write_seed(const char *dir, const char *name, const uint8_t *hdr, size_t hlen,
                       const uint8_t *p, size_t len)
{
    char path[512];
    FILE *f;
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    if (!(f = fopen(path, "wb")))
        abort();
    fwrite(hdr, 1, hlen, f);
    fwrite(p, 1, len, f);
    fclose(f);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    wg_keys_pair_t root, ss, cs, ce, se;
    uint8_t *chain = NULL;
    size_t chain_len = 0;
    wg_buf_t a, b;
    wg_noise_t *c, *s;
    const char *seeds = getenv("WG_FUZZ_WRITE_SEEDS");
    (void)argc;
    (void)argv;

    wg_log_set_level(WG_LOG_OFF);
    wg_buf_init(&a, 0);
    wg_buf_init(&b, 0);
    fixed_key(&root, 1);
    fixed_key(&ss, 2);
    fixed_key(&cs, 3);
    fixed_key(&ce, 4);
    fixed_key(&se, 5);
    if (sizeof(CHAIN_HEX) > 1) {
        chain_len = (sizeof(CHAIN_HEX) - 1) / 2;
        if (!(chain = malloc(chain_len)) ||
            wg_hex_decode(CHAIN_HEX, sizeof(CHAIN_HEX) - 1, chain, chain_len) != (ssize_t)chain_len)
            abort();
    } else if (wg_noise_cert_chain_make(root.priv, ss.pub, NOW - 86400, NOW + 86400, &chain,
                                        &chain_len)) {
        abort();
    }
    wg_noise_opts_t co = {.root_pub = root.pub, .ephemeral = &ce};
    wg_noise_opts_t so = {.ephemeral = &se};
    if (wg_noise_client_new(&c, &cs, &co, NULL) ||
        wg_noise_server_new(&s, &ss, chain, chain_len, &so, NULL))
        abort();
    if (wg_noise_server_new(&snap_server_new, &ss, chain, chain_len, &so, NULL))
        abort();
    if (wg_noise_client_start(c, (const uint8_t *)"payload", 7, &a))
        abort();
    snap_client_wait = clone(c, NULL);
    if (seeds)
        write_seed(seeds, "client_hello", (const uint8_t *)"\x01\x00", 2, a.data, a.len);
    if (wg_noise_feed(s, a.data, a.len, NOW, &b))
        abort();
    snap_server_wait = clone(s, NULL);
    if (seeds)
        write_seed(seeds, "server_hello", (const uint8_t *)"\x02\x00", 2, b.data, b.len);
    wg_buf_reset(&a);
    if (wg_noise_feed(c, b.data, b.len, NOW, &a))
        abort();
    if (seeds)
        write_seed(seeds, "client_finish", (const uint8_t *)"\x03\x00", 2, a.data, a.len);
    if (wg_noise_feed(s, a.data, a.len, NOW, NULL))
        abort();
    fz_root = root;
    fz_server = ss;
    if (wg_noise_cert_chain_verify(chain, chain_len, root.pub, ss.pub, NOW))
        abort();
    if (seeds) {
        write_seed(seeds, "cert_chain", (const uint8_t *)"\x04", 1, chain, chain_len);
        char *hex = wg_hex_encode(chain, chain_len);
        fprintf(stderr, "chain %s\n", hex);
        free(hex);
        /* transport scripts: genuine frames, split and whole; a raw chunk; a flipped frame */
        static const uint8_t whole[] = "\x00\x01\x05" "hello" "\x01\x00\xff";
        static const uint8_t split[] = "\x00\x01\x0a" "0123456789" "\x00\x02\x01\x03" "world"
                                       "\x01\x00";
        static const uint8_t raw[] = "\x00\x00\x08\x00\x00\x05" "abcde" "\x02";
        static const uint8_t flip[] = "\x00\x02\x04" "abcd" "\x01\x02\x03" "xyz" "\xff";
        write_seed(seeds, "frames_whole", whole, sizeof(whole) - 1, NULL, 0);
        write_seed(seeds, "frames_split", split, sizeof(split) - 1, NULL, 0);
        write_seed(seeds, "frames_raw", raw, sizeof(raw) - 1, NULL, 0);
        write_seed(seeds, "frames_flip", flip, sizeof(flip) - 1, NULL, 0);
    }
    if (!wg_noise_is_established(c) || !wg_noise_is_established(s))
        abort();
    snap_client_est = c;
    snap_server_est = s;
    wg_buf_dispose(&a);
    wg_buf_dispose(&b);
    free(chain);
    return 0;
}

/* Feeds p[0..len) to n in pieces whose sizes come from the script. */
static int feed_pieces(wg_noise_t *n, const uint8_t *p, size_t len, const uint8_t **sc,
                       const uint8_t *end)
{
    int rv = 0;
    while (len && rv == 0) {
        size_t k = *sc < end ? (size_t)*(*sc)++ + 1 : len;
        k = k < len ? k : len;
        rv = wg_noise_feed(n, p, k, NOW, NULL);
        p += k;
        len -= k;
    }
    return rv;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned acc = 0;
    wg_buf_t out;

    if (size < 1)
        return 0;
    wg_buf_init(&out, 0);
    uint8_t mode = data[0] % 5;
    const uint8_t *p = data + 1, *end = data + size;

    if (mode == 4) {
        (void)wg_noise_cert_chain_verify(p, (size_t)(end - p), fz_root.pub, fz_server.pub, NOW);
    } else if (mode == 0) {
        wg_noise_t *c = clone(snap_client_est, &acc);
        wg_noise_t *s = clone(snap_server_est, NULL);
        int rv = 0;
        /* script: op byte, length byte, then bytes; op picks raw / genuine / flipped frame */
        while (p + 2 <= end && rv == 0) {
            uint8_t op = p[0] % 3;
            size_t l = p[1];
            p += 2;
            if ((size_t)(end - p) < l)
                l = (size_t)(end - p);
            const uint8_t *body = p;
            p += l;
            if (op == 0) {
                rv = feed_pieces(c, body, l, &p, end);
            } else {
                wg_buf_reset(&out);
                if (wg_noise_encrypt_frame(s, body, l, &out) != 0)
                    break;
                if (op == 2 && out.len)
                    out.data[(l * 31 + 7) % out.len] ^= (uint8_t)(1u << (l % 8));
                rv = feed_pieces(c, out.data, out.len, &p, end);
            }
        }
        wg_noise_free(c);
        wg_noise_free(s);
    } else {
        wg_noise_t *n = clone(mode == 1   ? snap_server_new
                              : mode == 2 ? snap_client_wait
                                          : snap_server_wait,
                              &acc);
        /* second byte: piece size for reassembly (0 = everything at once) */
        size_t piece = p < end ? *p++ : 0;
        size_t len = (size_t)(end - p);
        int rv = 0;
        for (size_t i = 0; i < len && rv == 0; i += piece ? piece : len)
            rv = wg_noise_feed(n, p + i, piece && len - i > piece ? piece : len - i, NOW, &out);
        wg_noise_free(n);
    }
    wg_buf_dispose(&out);
    sink = acc;
    return 0;
}
