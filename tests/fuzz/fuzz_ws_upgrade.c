/* fuzz_ws_upgrade.c - the server side's HTTP upgrade request parser
 * (wg_ws_handshake_parse_request) and the generic head parser, on arbitrary bytes.
 *
 * Checks the parser contract: a prefix of a complete head is never "invalid" when the whole
 * is valid (garbage is reported as soon as it is seen, never later than it should be), a valid
 * request yields a 24-char key whose 101 answer the client-side checker accepts, and the head
 * limit is honoured. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/err.h"
#include "wa/ws_handshake.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    wg_ws_handshake_head_t h;
    const char *key = NULL, *why = NULL;
    size_t used = 0;
    int rv = wg_ws_handshake_parse_request(data, size, &h, &key, &used, &why);

    if (rv == 0) {
        wg_buf_t b;
        size_t u2 = 0;
        if (used > size || used > WG_WS_MAX_HEAD || strlen(key) != WG_WS_KEY_LEN)
            abort();
        /* our own 101 for this key must satisfy our own client */
        wg_buf_init(&b, 0);
        if (wg_ws_handshake_response(&b, key) != 0 ||
            wg_ws_handshake_parse_response(b.data, b.len, key, &u2, NULL, NULL) != 0 || u2 != b.len)
            abort();
        wg_buf_dispose(&b);
        /* a strict prefix of a complete head is incomplete, not invalid */
        {
            wg_ws_handshake_head_t h2;
            size_t u3;
            if (wg_ws_handshake_parse_head(data, used - 1, 1, 0, &h2, &u3) != WG_EAGAIN)
                abort();
        }
        wg_ws_handshake_head_dispose(&h);
    } else if (rv != WG_EAGAIN && rv != WG_EPROTO && rv != WG_ETOOBIG && rv != WG_ENOMEM)
        abort();

    /* the same bytes as a response head */
    if (wg_ws_handshake_parse_head(data, size, 0, 0, &h, &used) == 0) {
        if (h.status < 100 || h.status > 999 || used > size)
            abort();
        for (size_t i = 0; i < h.nheaders; i++)
            if (!h.headers[i].name[0])
                abort();
        wg_ws_handshake_head_dispose(&h);
    }
    return 0;
}
