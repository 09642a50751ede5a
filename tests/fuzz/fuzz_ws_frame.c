/* fuzz_ws_frame.c - arbitrary bytes as the peer's stream into a WebSocket link (wslay wired to
 * memory evbuffers, ws_link.c), after an upgrade.
 *
 * Byte 0 picks the mode: bit 0 = client link (expects unmasked server frames) or server link
 * (expects masked client frames); bit 1 = the input starts with the server's HTTP upgrade
 * answer, which is parsed and checked first (wg_ws_handshake_parse_response) and only a
 * successful parse passes the remaining bytes on; bits 2-4 = chunk size class, so frames
 * arrive split at many points. Every message received is answered (echo), exercising the send
 * path and fragmentation; the output buffer is drained like a socket would. Small limits keep
 * each run cheap. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "util/err.h"
#include "wa/ws_handshake.h"
#include "wa/ws_link.h"

typedef struct {
    wg_ws_link_t *l;
    size_t msgs, bytes;
} ctx_t;

static void on_msg(void *owner, int is_text, const uint8_t *d, size_t n)
{
    ctx_t *c = owner;
    c->msgs++;
    c->bytes += n;
    if (n && (d[0] & 1))
        wg_ws_link_send(c->l, is_text, d, n);
    if (n && d[0] == 'C')
        wg_ws_link_close(c->l, 1000, "fuzz");
}

static void on_pong(void *owner, const uint8_t *d, size_t n)
{
    ctx_t *c = owner;
    (void)d;
    c->bytes += n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char key[] = "dGhlIHNhbXBsZSBub25jZQ==";
    wg_ws_link_cbs_t cbs = {on_msg, on_pong};
    struct evbuffer *in, *out;
    ctx_t c = {0};
    size_t off = 1, chunk;
    int is_client, rv = 0;

    if (size < 1)
        return 0;
    is_client = data[0] & 1;
    chunk = (size_t)1 << ((data[0] >> 2) & 7) * 2; /* 1, 4, 16, ... 16384 */
    if (data[0] & 2) {
        size_t used = 0;
        if (wg_ws_handshake_parse_response(data + 1, size - 1, key, &used, NULL, NULL) != 0)
            return 0;
        off += used;
    }
    in = evbuffer_new();
    out = evbuffer_new();
    if (wg_ws_link_new(&c.l, is_client, in, out, 64 * 1024, 32 * 1024, &cbs, &c) != 0)
        abort();
    while (off < size && rv == 0) {
        size_t n = size - off < chunk ? size - off : chunk;
        evbuffer_add(in, data + off, n);
        off += n;
        rv = wg_ws_link_recv(c.l);
        if (rv != 0 && rv != WG_EPROTO && rv != WG_ETOOBIG && rv != WG_ENOMEM)
            abort();                                   /* documented failures only */
        evbuffer_drain(out, evbuffer_get_length(out)); /* the "socket" took it */
        wg_ws_link_flush(c.l);
        if (wg_ws_link_close_received(c.l) && wg_ws_link_close_sent(c.l))
            break;
    }
    wg_ws_link_peer_close(c.l, NULL);
    wg_ws_link_free(c.l);
    evbuffer_free(in);
    evbuffer_free(out);
    return 0;
}
