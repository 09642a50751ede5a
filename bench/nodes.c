/* nodes.c - binary-node codec throughput on a realistic stanza mix: message fan-out with enc
 * children, receipts, acks, notifications, presence, iq ping/usync/prekey upload. Built and run
 * by bench/nodes.sh. Prints encode and decode MB/s (of encoded bytes) and nodes/s (tree nodes)
 * for the mix, plus a line per stanza kind. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/buf.h"
#include "wa/binary.h"
#include "wa/node.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint8_t junk[4096];

static wg_node_t *enc_node(wg_node_t *parent, const char *type, size_t len)
{
    wg_node_t *e = wg_node_add_new(parent, "enc");
    wg_node_set_attr(e, "v", "2");
    wg_node_set_attr(e, "type", type);
    wg_node_set_bytes(e, junk, len);
    return e;
}

static wg_node_t *mk_message_group(void)
{
    wg_node_t *m = wg_node_new("message"), *ps;
    char jid[64];
    int i;

    wg_node_set_attr_jid(m, "to", "120363041234567890@g.us");
    wg_node_set_attr(m, "id", "3EB0C431D4A4B2F1E9A7");
    wg_node_set_attr(m, "type", "text");
    wg_node_set_attr(m, "phash", "2:Xk2f9Q==");
    ps = wg_node_add_new(m, "participants");
    for (i = 0; i < 8; i++) {
        wg_node_t *to = wg_node_add_new(ps, "to");
        snprintf(jid, sizeof(jid), "5511987654%03d:%d@s.whatsapp.net", i, i % 4);
        wg_node_set_attr_jid(to, "jid", jid);
        enc_node(to, i % 3 ? "msg" : "pkmsg", 180);
    }
    enc_node(m, "skmsg", 140);
    wg_node_set_bytes(wg_node_add_new(m, "device-identity"), junk, 160);
    return m;
}

static wg_node_t *mk_message_in(void)
{
    wg_node_t *m = wg_node_new("message");
    wg_node_set_attr_jid(m, "from", "5511987654321@s.whatsapp.net");
    wg_node_set_attr(m, "id", "3EB0C431D4A4B2F1E9A7");
    wg_node_set_attr(m, "t", "1732500000");
    wg_node_set_attr(m, "type", "text");
    wg_node_set_attr(m, "notify", "Maria Silva");
    wg_node_set_attr(m, "offline", "0");
    enc_node(m, "msg", 120);
    return m;
}

static wg_node_t *mk_receipt(void)
{
    wg_node_t *r = wg_node_new("receipt"), *l;
    int i;
    wg_node_set_attr_jid(r, "from", "5511987654321:3@s.whatsapp.net");
    wg_node_set_attr(r, "id", "3EB0C431D4A4B2F1E9A7");
    wg_node_set_attr(r, "t", "1732500001");
    wg_node_set_attr(r, "type", "read");
    l = wg_node_add_new(r, "list");
    for (i = 0; i < 3; i++)
        wg_node_set_attr(wg_node_add_new(l, "item"), "id", "3EB0C431D4A4B2F1E9A8");
    return r;
}

static wg_node_t *mk_ack(void)
{
    wg_node_t *a = wg_node_new("ack");
    wg_node_set_attr(a, "id", "3EB0C431D4A4B2F1E9A7");
    wg_node_set_attr_jid(a, "to", "5511987654321@s.whatsapp.net");
    wg_node_set_attr(a, "class", "message");
    return a;
}

static wg_node_t *mk_notification(void)
{
    wg_node_t *n = wg_node_new("notification"), *add;
    wg_node_set_attr_jid(n, "from", "120363041234567890@g.us");
    wg_node_set_attr(n, "id", "2871263478");
    wg_node_set_attr(n, "t", "1732500002");
    wg_node_set_attr(n, "type", "w:gp2");
    wg_node_set_attr_jid(n, "participant", "123456789012345@lid");
    add = wg_node_add_new(n, "add");
    wg_node_set_attr_jid(wg_node_add_new(add, "participant"), "jid", "5511912345678@s.whatsapp.net");
    return n;
}

static wg_node_t *mk_presence(void)
{
    wg_node_t *p = wg_node_new("presence");
    wg_node_set_attr_jid(p, "from", "5511987654321@s.whatsapp.net");
    wg_node_set_attr(p, "type", "available");
    return p;
}

static wg_node_t *mk_ping(void)
{
    wg_node_t *iq = wg_node_new("iq");
    wg_node_set_attr(iq, "id", "1732.12-7");
    wg_node_set_attr_jid(iq, "to", "@s.whatsapp.net");
    wg_node_set_attr(iq, "type", "get");
    wg_node_set_attr(iq, "xmlns", "w:p");
    wg_node_add_new(iq, "ping");
    return iq;
}

static wg_node_t *mk_usync_result(void)
{
    wg_node_t *iq = wg_node_new("iq"), *us, *list;
    char jid[64];
    int i, d;
    wg_node_set_attr_jid(iq, "from", "@s.whatsapp.net");
    wg_node_set_attr(iq, "id", "1732.12-8");
    wg_node_set_attr(iq, "type", "result");
    us = wg_node_add_new(iq, "usync");
    wg_node_set_attr(us, "sid", "1732.12-8");
    wg_node_set_attr(us, "mode", "query");
    list = wg_node_add_new(us, "list");
    for (i = 0; i < 5; i++) {
        wg_node_t *u = wg_node_add_new(list, "user"), *dl;
        snprintf(jid, sizeof(jid), "5511987654%03d@s.whatsapp.net", i);
        wg_node_set_attr_jid(u, "jid", jid);
        dl = wg_node_add_new(wg_node_add_new(u, "devices"), "device-list");
        for (d = 0; d < 3; d++) {
            wg_node_t *dv = wg_node_add_new(dl, "device");
            wg_node_set_attrf(dv, "id", "%d", d * 7);
            if (d)
                wg_node_set_attrf(dv, "key-index", "%d", d);
        }
    }
    return iq;
}

static wg_node_t *mk_prekeys(void)
{
    wg_node_t *iq = wg_node_new("iq"), *list, *sk;
    uint8_t id[3] = {0, 0, 0};
    int i;
    wg_node_set_attr(iq, "id", "1732.12-9");
    wg_node_set_attr(iq, "xmlns", "encrypt");
    wg_node_set_attr(iq, "type", "set");
    wg_node_set_attr_jid(iq, "to", "@s.whatsapp.net");
    wg_node_set_bytes(wg_node_add_new(iq, "registration"), junk, 4);
    wg_node_set_bytes(wg_node_add_new(iq, "type"), "\x05", 1);
    wg_node_set_bytes(wg_node_add_new(iq, "identity"), junk, 32);
    list = wg_node_add_new(iq, "list");
    for (i = 0; i < 30; i++) {
        wg_node_t *k = wg_node_add_new(list, "key");
        id[2] = (uint8_t)i;
        wg_node_set_bytes(wg_node_add_new(k, "id"), id, 3);
        wg_node_set_bytes(wg_node_add_new(k, "value"), junk, 32);
    }
    sk = wg_node_add_new(iq, "skey");
    wg_node_set_bytes(wg_node_add_new(sk, "id"), id, 3);
    wg_node_set_bytes(wg_node_add_new(sk, "value"), junk, 32);
    wg_node_set_bytes(wg_node_add_new(sk, "signature"), junk, 64);
    return iq;
}

static size_t count_nodes(const wg_node_t *n)
{
    size_t c = 1, i;
    for (i = 0; i < wg_node_child_count(n); i++)
        c += count_nodes(wg_node_child(n, i));
    return c;
}

typedef struct {
    const char *name;
    wg_node_t *(*mk)(void);
    int weight; /* share of the mix */
} kind_t;

int main(int argc, char **argv)
{
    static const kind_t kinds[] = {
        {"message-in", mk_message_in, 30}, {"receipt", mk_receipt, 20}, {"ack", mk_ack, 15},
        {"message-group-out", mk_message_group, 8}, {"notification", mk_notification, 8},
        {"presence", mk_presence, 8},   {"iq-ping", mk_ping, 5},      {"usync-result", mk_usync_result, 4},
        {"prekey-upload", mk_prekeys, 2},
    };
    enum { NK = sizeof(kinds) / sizeof(kinds[0]) };
    double secs = argc > 1 ? atof(argv[1]) : 1.0;
    wg_node_t *mix[100];
    wg_buf_t enc[100], out;
    size_t nmix = 0, mix_bytes = 0, mix_nodes = 0, i, k;
    int w;

    for (i = 0; i < sizeof(junk); i++)
        junk[i] = (uint8_t)(i * 131 + 7);
    for (k = 0; k < NK; k++)
        for (w = 0; w < kinds[k].weight; w++)
            mix[nmix++] = kinds[k].mk();
    for (i = 0; i < nmix; i++) {
        wg_buf_init(&enc[i], 0);
        if (wg_binary_encode(mix[i], &enc[i]) != 0)
            return 1;
        mix_bytes += enc[i].len;
        mix_nodes += count_nodes(mix[i]);
    }
    printf("mix: %zu stanzas, %zu nodes, %zu bytes encoded (avg %.0f bytes/stanza)\n", nmix,
           mix_nodes, mix_bytes, (double)mix_bytes / (double)nmix);

    /* encode */
    {
        double t0 = now(), t;
        size_t rounds = 0;
        wg_buf_init(&out, 0);
        do {
            for (i = 0; i < nmix; i++) {
                wg_buf_reset(&out);
                if (wg_binary_encode(mix[i], &out) != 0)
                    return 1;
            }
            rounds++;
        } while ((t = now() - t0) < secs);
        printf("encode: %.1f MB/s, %.2f M nodes/s, %.0f stanzas/s\n",
               (double)(rounds * mix_bytes) / t / 1e6, (double)(rounds * mix_nodes) / t / 1e6,
               (double)(rounds * nmix) / t);
        wg_buf_dispose(&out);
    }
    /* decode */
    {
        double t0 = now(), t;
        size_t rounds = 0;
        do {
            for (i = 0; i < nmix; i++) {
                wg_node_t *n;
                if (wg_binary_decode(enc[i].data, enc[i].len, NULL, &n) != 0)
                    return 1;
                wg_node_free(n);
            }
            rounds++;
        } while ((t = now() - t0) < secs);
        printf("decode: %.1f MB/s, %.2f M nodes/s, %.0f stanzas/s\n",
               (double)(rounds * mix_bytes) / t / 1e6, (double)(rounds * mix_nodes) / t / 1e6,
               (double)(rounds * nmix) / t);
    }
    /* per kind, decode only (what the engine does most) */
    for (k = 0; k < NK; k++) {
        wg_node_t *one = kinds[k].mk(), *n;
        wg_buf_t b;
        double t0, t;
        size_t rounds = 0;
        wg_buf_init(&b, 0);
        wg_binary_encode(one, &b);
        t0 = now();
        do {
            if (wg_binary_decode(b.data, b.len, NULL, &n) != 0)
                return 1;
            wg_node_free(n);
            rounds++;
        } while ((t = now() - t0) < secs / 10);
        printf("  %-18s %5zu bytes %3zu nodes: decode %7.1f MB/s %9.0f stanzas/s\n", kinds[k].name,
               b.len, count_nodes(one), (double)(rounds * b.len) / t / 1e6, (double)rounds / t);
        wg_buf_dispose(&b);
        wg_node_free(one);
    }
    for (i = 0; i < nmix; i++) {
        wg_buf_dispose(&enc[i]);
        wg_node_free(mix[i]);
    }
    return 0;
}
