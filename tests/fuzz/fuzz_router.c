/* fuzz_router.c - the native route table against arbitrary paths and methods, plus query
 * parameter decoding and credential extraction on the same bytes. Input: one method byte, then
 * "path?query". */
#include "api/native.h"
#include "http/router.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char *g_hdr;
static const char *hdr(const wg_http_req_t *r, const char *name)
{
    (void)r;
    return name[0] == 'A' ? g_hdr : NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 4096)
        return 0;
    char *s = malloc(size);
    if (!s)
        return 0;
    memcpy(s, data + 1, size - 1);
    s[size - 1] = 0;
    wg_http_req_t r;
    memset(&r, 0, sizeof(r));
    int method = 1 << (data[0] % 8);
    char *q = strchr(s, '?');
    if (q)
        *q++ = 0;
    int rv = wg_router_match(wg_native_routes, wg_native_nroutes, method, s, &r);
    if (rv == 0) {
        if (!r.route || r.nparams < 0 || r.nparams > WG_HTTP_MAX_PARAMS)
            abort();
        for (int i = 0; i < r.nparams; i++)
            if (strlen(r.params[i]) == 0 || strchr(r.params[i], '/'))
                abort();
    }
    char out[64];
    const char *keys[] = {"status", "name", "page", "limit", ""};
    for (int i = 0; i < 5; i++)
        if (wg_http_query_get(q, keys[i], out, sizeof(out)) == 0 && strlen(out) >= sizeof(out))
            abort();
    r.header = hdr;
    g_hdr = s;
    const char *c = wg_http_credential(&r, out, sizeof(out));
    if (c && (strlen(c) == 0 || strlen(c) >= sizeof(out)))
        abort();
    free(s);
    return 0;
}
