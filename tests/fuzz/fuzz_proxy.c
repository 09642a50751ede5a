/* fuzz_proxy.c - arbitrary proxy answers into the HTTP CONNECT / SOCKS5 state machines.
 *
 * Byte 0: bit 0 = SOCKS5 or HTTP, bit 1 = with credentials, bits 2-3 = chunk size class. The
 * rest arrives in chunks and is handled exactly as ws.c does: keep what was not consumed,
 * append the next chunk, feed again. Checks: consumed never exceeds what was given, results
 * are only the documented codes, and a finished handshake stays finished. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/err.h"
#include "wa/proxy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    wg_proxy_opts_t o = {WG_PROXY_HTTP, "127.0.0.1", 1080, NULL, NULL};
    wg_proxy_t *p = NULL;
    wg_buf_t pending, out;
    size_t off = 1, chunk;
    int rv = WG_EAGAIN;

    if (size < 1)
        return 0;
    o.type = (data[0] & 1) ? WG_PROXY_SOCKS5 : WG_PROXY_HTTP;
    if (data[0] & 2) {
        o.user = "user";
        o.pass = "pass";
    }
    chunk = (size_t)1 << ((data[0] >> 2) & 3) * 3; /* 1, 8, 64, 512 */
    if (wg_proxy_new(&p, &o, "web.whatsapp.com", 443) != 0)
        abort();
    wg_buf_init(&pending, 0);
    wg_buf_init(&out, 0);
    if (wg_proxy_start(p, &out) != 0)
        abort();
    while (off < size && rv == WG_EAGAIN) {
        size_t n = size - off < chunk ? size - off : chunk, used = 0;
        wg_buf_append(&pending, data + off, n);
        off += n;
        rv = wg_proxy_feed(p, pending.data, pending.len, &used, &out);
        if (used > pending.len)
            abort();
        wg_buf_consume(&pending, used);
        if (rv != 0 && rv != WG_EAGAIN && rv != WG_EPERM && rv != WG_EIO && rv != WG_EPROTO &&
            rv != WG_ENOMEM)
            abort();
        if (out.len > 4096)
            abort(); /* we only ever send small requests */
        wg_buf_reset(&out);
    }
    if (rv == 0) {
        size_t used = 1;
        if (wg_proxy_feed(p, data, size, &used, &out) != 0 || used != 0)
            abort();
    } else if (rv != WG_EAGAIN)
        (void)wg_proxy_error(p);
    wg_buf_dispose(&pending);
    wg_buf_dispose(&out);
    wg_proxy_free(p);
    return 0;
}
