/* noise_bridge.c - wagate's Noise responder on stdin/stdout, for noise.test.mjs.
 *
 * Makes a fresh root key, server static key and certificate chain (wg_noise_cert_chain_make),
 * prints the root public key as one hex line on stdout, then feeds stdin to the responder and
 * writes its output (ServerHello, transport frames) to stdout. Once the handshake is done it
 * reports "HS <payload hex> <client static hex> <routing info hex or ->" on stderr and sends the
 * frame "hello from wagate"; every transport frame it receives is answered with "echo:" + frame.
 * Any error: "ERR <message>" on stderr, exit status 1. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util/codec.h"
#include "util/err.h"
#include "util/log.h"
#include "wa/noise.h"
#include "wa/noise_server.h"

static wg_buf_t outb;
static wg_noise_t *srv;

static void hex_out(const uint8_t *p, size_t n)
{
    char *h = n ? wg_hex_encode(p, n) : NULL;
    fprintf(stderr, " %s", h ? h : "-");
    free(h);
}

static int on_handshake(void *ud, wg_noise_t *n)
{
    size_t pl = 0, rl = 0;
    const uint8_t *p = wg_noise_client_payload(n, &pl), *r = wg_noise_routing_info(n, &rl);
    (void)ud;
    fprintf(stderr, "HS");
    hex_out(p, pl);
    hex_out(wg_noise_peer_static(n), 32);
    hex_out(r, r ? rl : 0);
    fprintf(stderr, "\n");
    return wg_noise_encrypt_frame(n, (const uint8_t *)"hello from wagate", 17, &outb);
}

static int on_frame(void *ud, const uint8_t *p, size_t len)
{
    wg_buf_t b;
    int rv;
    (void)ud;
    wg_buf_init(&b, 0);
    wg_buf_append(&b, "echo:", 5);
    wg_buf_append(&b, p, len);
    rv = wg_noise_encrypt_frame(srv, b.data, b.len, &outb);
    wg_buf_dispose(&b);
    return rv;
}

int main(void)
{
    wg_keys_pair_t root, ss;
    uint8_t *chain = NULL, in[65536];
    size_t chain_len = 0;
    uint64_t now = (uint64_t)time(NULL);
    ssize_t r;
    char *h;

    wg_log_set_level(WG_LOG_OFF);
    wg_buf_init(&outb, 0);
    if (wg_keys_generate(&root) || wg_keys_generate(&ss) ||
        wg_noise_cert_chain_make(root.priv, ss.pub, now - 3600, now + 3600, &chain, &chain_len))
        return 2;
    wg_noise_callbacks_t cb = {on_handshake, on_frame, NULL};
    if (wg_noise_server_new(&srv, &ss, chain, chain_len, NULL, &cb))
        return 2;
    h = wg_hex_encode(root.pub, 32);
    printf("%s\n", h);
    fflush(stdout);
    free(h);
    while ((r = read(0, in, sizeof(in))) > 0) {
        int rv = wg_noise_feed(srv, in, (size_t)r, now, &outb);
        if (outb.len) {
            fwrite(outb.data, 1, outb.len, stdout);
            fflush(stdout);
            wg_buf_reset(&outb);
        }
        if (rv) {
            fprintf(stderr, "ERR %s\n", wg_strerror(rv));
            return 1;
        }
    }
    wg_noise_free(srv);
    wg_buf_dispose(&outb);
    free(chain);
    return 0;
}
