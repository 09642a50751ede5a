/* fuzz_sandbox_stanza.c - libFuzzer target for the sandbox's readers of client bytes
 * (src/sandbox/stanza.c and the device-JID / number checks of the control API).
 *
 * The first input byte picks the target, the rest is the outside input:
 *   0  binary-decode the rest and read it as a prekey upload iq (wg_sandbox_upload_parse);
 *   1  the same, but the harness first re-signs the <skey> with a fixed identity (and puts
 *      that identity into <identity>) so the fuzzer gets past the signature to the key list;
 *   2  binary-decode and read the node as an <skey> (wg_sandbox_skey_parse);
 *   3  the rest as a NUL-terminated string: wg_sandbox_parse_device_jid, wg_sandbox_number_valid.
 * Seeds: tests/fuzz/corpus/sandbox_stanza/ (valid uploads made with the fixed identity). Any
 * result is fine; crashes, leaks and UB are not. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sandbox/sb_int.h"
#include "wa/binary.h"
#include "wa/keys.h"
#include "wa/node.h"

#define IDENTITY_PRIV 0x5a

static void identity(wg_keys_pair_t *k)
{
    uint8_t priv[32];
    memset(priv, IDENTITY_PRIV, sizeof(priv));
    wg_keys_from_private(k, priv);
}

/* Puts the fixed identity and a valid signature over the current skey value into the tree. */
static void resign(wg_node_t *iq)
{
    static const uint8_t random[WG_KEYS_SIG_RANDOM_LEN] = {1};
    wg_keys_pair_t id;
    wg_node_t *skey = wg_node_child_by_tag(iq, "skey"),
              *ident = wg_node_child_by_tag(iq, "identity");
    wg_node_t *val = skey ? wg_node_child_by_tag(skey, "value") : NULL;
    wg_node_t *sig = skey ? wg_node_child_by_tag(skey, "signature") : NULL;
    const uint8_t *v;
    size_t len;
    uint8_t djb[WG_KEYS_DJB_LEN], s[WG_KEYS_SIG_LEN];
    if (!ident || !val || !sig || !(v = wg_node_bytes(val, &len)) || len != WG_KEYS_KEY_LEN)
        return;
    identity(&id);
    wg_keys_djb_encode(djb, v);
    if (wg_keys_sign_with_random(s, id.priv, djb, sizeof(djb), random) != 0)
        return;
    wg_node_set_bytes(sig, s, sizeof(s));
    wg_node_set_bytes(ident, id.pub, sizeof(id.pub));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    wg_node_t *n = NULL;
    wg_sandbox_upload_t u;
    if (size < 1)
        return 0;
    uint8_t which = data[0] % 4;
    data++;
    size--;
    if (which == 3) {
        char *s = malloc(size + 1), number[WG_SB_NUMBER_MAX + 1];
        uint32_t id;
        if (!s)
            return 0;
        memcpy(s, data, size);
        s[size] = 0;
        wg_sandbox_parse_device_jid(s, number, &id);
        wg_sandbox_number_valid(s);
        free(s);
        return 0;
    }
    if (wg_binary_decode(data, size, NULL, &n) != 0)
        return 0;
    if (which == 2) {
        wg_keys_pair_t id;
        uint32_t sid;
        uint8_t pub[32], sig[64];
        identity(&id);
        wg_sandbox_skey_parse(n, id.pub, &sid, pub, sig);
    } else {
        if (which == 1)
            resign(n);
        if (wg_sandbox_upload_parse(n, &u) == 0)
            wg_sandbox_upload_dispose(&u);
    }
    wg_node_free(n);
    return 0;
}
