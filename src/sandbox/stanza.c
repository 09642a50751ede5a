/* stanza.c - the sandbox's pure readers of client stanzas (no I/O, no state): the prekey
 * upload and signed-prekey rotation of <iq xmlns="encrypt"> (wa-protocol-core.md §7.4), checked
 * strictly (exact sizes, the signed prekey's signature by the identity key, at most
 * WG_SANDBOX_MAX_PREKEYS keys). Fuzzed by tests/fuzz/fuzz_sandbox_stanza.c.
 *
 * Ownership: wg_sandbox_upload_parse fills an embedded struct whose key array is malloc'd;
 * wg_sandbox_upload_dispose frees it. On error nothing is left to free. */
#include "sandbox/sb_int.h"

#include "util/err.h"
#include "wa/node.h"

#include <stdlib.h>
#include <string.h>

static const uint8_t *child_bytes(const wg_node_t *n, const char *tag, size_t want)
{
    wg_node_t *k = n ? wg_node_child_by_tag(n, tag) : NULL;
    size_t len = 0;
    const uint8_t *p =
        k && wg_node_content_type(k) == WG_NODE_BYTES ? wg_node_bytes(k, &len) : NULL;
    return p && len == want ? p : NULL;
}

static uint32_t be_uint(const uint8_t *p, size_t n)
{
    uint32_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

int wg_sandbox_skey_parse(const wg_node_t *skey, const uint8_t identity[WG_KEYS_KEY_LEN],
                          uint32_t *id, uint8_t pub[WG_KEYS_KEY_LEN], uint8_t sig[WG_KEYS_SIG_LEN])
{
    const uint8_t *i = child_bytes(skey, "id", 3), *v = child_bytes(skey, "value", WG_KEYS_KEY_LEN),
                  *s = child_bytes(skey, "signature", WG_KEYS_SIG_LEN);
    uint8_t djb[WG_KEYS_DJB_LEN];
    if (!i || !v || !s)
        return WG_EPROTO;
    /* §8.3: the signature covers the 33-byte Signal form 05 || pub. */
    wg_keys_djb_encode(djb, v);
    if (wg_keys_verify(identity, djb, sizeof(djb), s) != 0)
        return WG_ECRYPTO;
    *id = be_uint(i, 3);
    memcpy(pub, v, WG_KEYS_KEY_LEN);
    memcpy(sig, s, WG_KEYS_SIG_LEN);
    return 0;
}

int wg_sandbox_upload_parse(const wg_node_t *iq, wg_sandbox_upload_t *u)
{
    const uint8_t *reg = child_bytes(iq, "registration", 4);
    const uint8_t *type = child_bytes(iq, "type", 1);
    const uint8_t *ident = child_bytes(iq, "identity", WG_KEYS_KEY_LEN);
    wg_node_t *list = wg_node_child_by_tag(iq, "list");
    size_t nk = list ? wg_node_child_count(list) : 0;
    int rv;
    memset(u, 0, sizeof(*u));
    if (!reg || !type || type[0] != WG_KEYS_DJB_TYPE || !ident)
        return WG_EPROTO;
    if (nk > WG_SANDBOX_MAX_PREKEYS)
        return WG_ETOOBIG;
    u->registration_id = be_uint(reg, 4);
    memcpy(u->identity, ident, WG_KEYS_KEY_LEN);
    if ((rv = wg_sandbox_skey_parse(wg_node_child_by_tag(iq, "skey"), u->identity, &u->skey_id,
                                    u->skey_pub, u->skey_sig)) != 0)
        return rv;
    if (nk && !(u->keys = calloc(nk, sizeof(*u->keys))))
        return WG_ENOMEM;
    for (size_t i = 0; i < nk; i++) {
        wg_node_t *k = wg_node_child(list, i);
        const uint8_t *kid = child_bytes(k, "id", 3),
                      *val = child_bytes(k, "value", WG_KEYS_KEY_LEN);
        if (!wg_node_tag_is(k, "key") || !kid || !val) {
            wg_sandbox_upload_dispose(u);
            return WG_EPROTO;
        }
        u->keys[i].id = be_uint(kid, 3);
        memcpy(u->keys[i].pub, val, WG_KEYS_KEY_LEN);
    }
    u->nkeys = nk;
    return 0;
}

void wg_sandbox_upload_dispose(wg_sandbox_upload_t *u)
{
    free(u->keys);
    memset(u, 0, sizeof(*u));
}
