/* node.h - the binary-node tree ("stanza"): a tag, attributes, and content that is nothing, a
 * list of child nodes, raw bytes, or text.
 *
 * Every wg_node_t owns its strings, attributes, bytes and children; wg_node_free() frees the
 * whole subtree. A child added to a parent belongs to the parent from then on. Pointers returned
 * by getters live as long as the node (or until that attribute/content is replaced).
 *
 * Attribute values are strings; a value may be marked as a JID (wg_node_set_attr_jid), which
 * makes the encoder write it as a JID (wa-protocol-core.md 4.5) instead of a string. The decoder
 * marks values that arrived as JIDs. Keys are unique when set through wg_node_set_attr*; a
 * decoded node keeps duplicate keys as they came and wg_node_attr() returns the last one (as
 * Baileys and whatsmeow do).
 *
 * Content kinds: WG_NODE_BYTES is written raw with a length (BINARY_8/20/32), never tokenized;
 * WG_NODE_TEXT is written like an attribute value (token, packed or raw string, or a JID) and is
 * what the decoder gives for content that arrived as a token, packed string or JID. Neither
 * holds a NUL-terminated guarantee of meaning, but both are followed by a NUL byte in memory. */
#ifndef WG_WA_NODE_H
#define WG_WA_NODE_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"
#include "wa/jid.h"

typedef struct wg_node wg_node_t;

typedef enum {
    WG_NODE_NONE = 0, /* no content */
    WG_NODE_LIST,     /* a list of children (possibly empty: written as LIST_EMPTY) */
    WG_NODE_BYTES,    /* raw bytes */
    WG_NODE_TEXT,     /* a string (or a JID, see wg_node_text_is_jid) */
} wg_node_content_t;

/* A new node with a copy of tag (non-empty). NULL on ENOMEM or empty/NULL tag. */
wg_node_t *wg_node_new(const char *tag);
/* Frees the node, its strings and all its children. NULL is fine. */
void wg_node_free(wg_node_t *n);
/* A deep copy, or NULL on ENOMEM. */
wg_node_t *wg_node_clone(const wg_node_t *n);

const char *wg_node_tag(const wg_node_t *n);
int wg_node_tag_is(const wg_node_t *n, const char *tag);

/* Sets (or replaces) attribute key to a copy of value; value NULL removes it. "" is a valid
 * value (written as an empty string). 0, WG_EINVAL (NULL key) or WG_ENOMEM. */
int wg_node_set_attr(wg_node_t *n, const char *key, const char *value);
/* Same, with the value marked as a JID; WG_EINVAL when wg_jid_parse() rejects it. */
int wg_node_set_attr_jid(wg_node_t *n, const char *key, const char *jid);
int wg_node_set_attrf(wg_node_t *n, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The value of key (the last one if the decoder saw duplicates), or NULL. */
const char *wg_node_attr(const wg_node_t *n, const char *key);
/* Parses attribute key as a JID; out views the node's string. 0, WG_ENOTFOUND, WG_EINVAL. */
int wg_node_attr_jid(const wg_node_t *n, const char *key, wg_jid_t *out);
size_t wg_node_attr_count(const wg_node_t *n);
/* The i-th attribute's key (NULL when i is out of range); *value and *is_jid if non-NULL. */
const char *wg_node_attr_at(const wg_node_t *n, size_t i, const char **value, int *is_jid);

wg_node_content_t wg_node_content_type(const wg_node_t *n);
/* Replaces the content with a copy of len bytes (BYTES). 0 or WG_ENOMEM. */
int wg_node_set_bytes(wg_node_t *n, const void *p, size_t len);
/* Replaces the content with p (BYTES), which must come from malloc: the node now owns it, also
 * on failure (then it is freed). p may be NULL when len is 0. 0 or WG_ENOMEM. */
int wg_node_take_bytes(wg_node_t *n, uint8_t *p, size_t len);
/* Replaces the content with a copy of the string s (TEXT). 0 or WG_ENOMEM. */
int wg_node_set_text(wg_node_t *n, const char *s);
/* Replaces the content with a JID (TEXT marked as JID). 0, WG_EINVAL, WG_ENOMEM. */
int wg_node_set_text_jid(wg_node_t *n, const char *jid);
/* BYTES or TEXT content and its length; NULL (and *len 0) for other kinds. */
const uint8_t *wg_node_bytes(const wg_node_t *n, size_t *len);
int wg_node_text_is_jid(const wg_node_t *n);
/* Removes any content, leaving an empty child list (written as LIST_EMPTY). 0 or WG_ENOMEM. */
int wg_node_set_list(wg_node_t *n);
/* Removes any content (NONE). */
void wg_node_clear_content(wg_node_t *n);

/* Appends child; on success the parent owns it, on failure the caller still does. Content that
 * is BYTES or TEXT makes this WG_EINVAL; NONE becomes a list. 0, WG_EINVAL, WG_ENOMEM. */
int wg_node_add_child(wg_node_t *parent, wg_node_t *child);
/* Creates a child with tag, appends it, returns it (owned by parent), NULL on error. */
wg_node_t *wg_node_add_new(wg_node_t *parent, const char *tag);
size_t wg_node_child_count(const wg_node_t *n);
wg_node_t *wg_node_child(const wg_node_t *n, size_t i);
/* The first child with this tag, or NULL. */
wg_node_t *wg_node_child_by_tag(const wg_node_t *n, const char *tag);

/* 1 when a and b are structurally equal: same tag, same attributes by key (order-insensitive;
 * last duplicate wins; JID marking counts), same children, same bytes. BYTES and non-JID TEXT
 * with the same bytes are equal (text written raw decodes as BYTES: the wire cannot tell). */
int wg_node_equal(const wg_node_t *a, const wg_node_t *b);

/* Printing (node_print.c): the XML-like text form for logs and tests, e.g.
 *   <iq id="1.2-3" to="@s.whatsapp.net" type="get" xmlns="w:p"><ping/></iq>
 * Attributes are printed in their stored order; JID values print like strings. TEXT content is
 * printed escaped; BYTES content prints as escaped text when it is printable UTF-8, otherwise as
 * <!-- N bytes: hex -->. Without WG_NODE_PRINT_FULL, bytes beyond 256 are cut ("..."). */
#define WG_NODE_PRINT_INDENT 1u /* one element per line, two-space indent */
#define WG_NODE_PRINT_FULL 2u   /* never truncate byte content */
/* Appends the text form to out: 0, WG_ENOMEM or WG_ETOOBIG (out's limit). */
int wg_node_print(const wg_node_t *n, unsigned flags, wg_buf_t *out);
/* The text form in a new NUL-terminated string (caller frees), NULL on ENOMEM. */
char *wg_node_to_string(const wg_node_t *n, unsigned flags);

#endif
