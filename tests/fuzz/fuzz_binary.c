/* fuzz_binary.c - libFuzzer target for the binary-node decoder (wg_binary_decode), including the
 * zlib path (flag byte 0x02). Whatever decodes must re-encode, decode again to an equal tree,
 * and print; small limits keep each run cheap. */
#include <stdint.h>
#include <stdlib.h>

#include "util/buf.h"
#include "wa/binary.h"
#include "wa/node.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    wg_binary_limits_t lim;
    wg_node_t *n = NULL, *m = NULL;
    wg_buf_t b;
    char *s;

    wg_binary_limits_default(&lim);
    lim.max_bytes = 1 << 20;
    lim.max_nodes = 20000;
    if (wg_binary_decode(data, size, &lim, &n) != 0)
        return 0;
    wg_buf_init(&b, 0);
    if (wg_binary_encode(n, &b) != 0)
        abort(); /* every decoded tree must be encodable */
    lim.max_bytes = 8u << 20; /* re-encoding may grow: packed strings over 127 go raw */
    if (wg_binary_decode(b.data, b.len, &lim, &m) != 0 || !wg_node_equal(n, m))
        abort(); /* and must come back the same */
    s = wg_node_to_string(n, WG_NODE_PRINT_INDENT);
    free(s);
    wg_buf_dispose(&b);
    wg_node_free(m);
    wg_node_free(n);
    return 0;
}
