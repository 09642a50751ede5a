/* binary.h - the WhatsApp binary-node codec ("WABinary", wa-protocol-core.md 4): node tree <->
 * bytes. No I/O, no globals; the token tables are const (tokens.h).
 *
 * The byte form is what travels inside one Noise transport frame: a flags byte, then the node.
 * Flag bit 0x02 means the rest is zlib data (RFC 1950) to inflate first; other bits are ignored
 * (as Baileys' decompressingIfRequired). Encoders write 0x00 (or 0x02 for the compressed form).
 *
 * Encoding rules (same bytes as Baileys' encodeBinaryNode where the format leaves no choice):
 * list headers LIST_EMPTY/LIST_8/LIST_16; strings as single-byte token, double-byte token,
 * NIBBLE_8 (0-9 - ., at most 127 chars), HEX_8 (0-9 A-F uppercase, at most 127), else raw
 * BINARY_8/20/32; "" is BINARY_8 of length 0; attributes whose value is "" are written (Baileys
 * does; whatsmeow drops them). Values marked as JIDs are written as JIDs (jid.h decides the
 * form). Strings not marked as JIDs are never turned into JIDs, even when they contain '@'
 * (Baileys does that implicitly; that is the one deliberate divergence).
 *
 * Decoding is strict: every byte must be consumed; tags 0xF0..0xF4 are invalid; a tag, attribute
 * key or JID part may not itself be a JID; strings may not contain NUL bytes; a decoded JID must
 * parse back with wg_jid_parse(); packed strings may not contain the pad nibble except as the
 * dropped last nibble of an odd length. All of these, and truncation and crossing a limit, give
 * WG_EPROTO. A frame is complete by construction (the Noise layer delivers whole frames), so
 * there is no WG_EAGAIN here. */
#ifndef WG_WA_BINARY_H
#define WG_WA_BINARY_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"
#include "wa/node.h"

/* Tag bytes (wa-protocol-core.md 4.1). */
enum {
    WG_BIN_LIST_EMPTY = 0x00,
    WG_BIN_DICTIONARY_0 = 0xEC,
    WG_BIN_DICTIONARY_3 = 0xEF,
    WG_BIN_INTEROP_JID = 0xF5,
    WG_BIN_FB_JID = 0xF6,
    WG_BIN_AD_JID = 0xF7,
    WG_BIN_LIST_8 = 0xF8,
    WG_BIN_LIST_16 = 0xF9,
    WG_BIN_JID_PAIR = 0xFA,
    WG_BIN_HEX_8 = 0xFB,
    WG_BIN_BINARY_8 = 0xFC,
    WG_BIN_BINARY_20 = 0xFD,
    WG_BIN_BINARY_32 = 0xFE,
    WG_BIN_NIBBLE_8 = 0xFF,
    WG_BIN_PACKED_MAX = 127,
    WG_BIN_FLAG_COMPRESSED = 0x02,
};

typedef struct {
    size_t max_bytes;   /* largest node accepted, before and after inflate (default 16 MiB) */
    unsigned max_depth; /* deepest nesting; the root is depth 1 (default 64) */
    size_t max_nodes;   /* most nodes in one tree (default 200000) */
} wg_binary_limits_t;

void wg_binary_limits_default(wg_binary_limits_t *lim);

/* Appends 0x00 and the encoded node to out. 0; WG_EINVAL for a node the format cannot carry
 * (a value marked as JID that wg_jid_parse rejects, more than 65535 list entries, more than
 * 2^32-1 bytes); WG_ENOMEM; WG_ETOOBIG when out's limit is crossed. On error out->len is
 * restored (bytes already appended are dropped). */
int wg_binary_encode(const wg_node_t *node, wg_buf_t *out);

/* Same, but writes the flags byte 0x02 and the node zlib-compressed (what a server may send). */
int wg_binary_encode_compressed(const wg_node_t *node, wg_buf_t *out);

/* Decodes one frame payload (flags byte + node) of len bytes. lim NULL means the defaults.
 * On success *out is a new tree the caller frees with wg_node_free(). Returns 0, WG_EPROTO for
 * malformed input or a crossed limit, WG_ENOMEM. *out is NULL on error. */
int wg_binary_decode(const uint8_t *p, size_t len, const wg_binary_limits_t *lim, wg_node_t **out);

#endif
