/* node_impl.h - the wg_node_t layout, shared only by node.c, binary.c and node_print.c (the
 * codec builds and walks trees without going through the public setters). Other modules use
 * node.h. Strings flagged "stat" point at static token strings and are never freed. */
#ifndef WG_WA_NODE_IMPL_H
#define WG_WA_NODE_IMPL_H

#include <stdint.h>

#include "wa/node.h"

typedef struct {
    const char *key;
    const char *val; /* NUL-terminated; val_len bytes without the NUL */
    uint32_t key_len, val_len;
    uint8_t key_stat, val_stat, is_jid;
} wg_node_attr_t;

struct wg_node {
    const char *tag;
    uint32_t tag_len;
    uint8_t tag_stat;
    uint8_t kind;     /* wg_node_content_t */
    uint8_t text_jid; /* TEXT content is a JID */
    uint32_t nattrs, attr_cap;
    wg_node_attr_t *attrs;
    union {
        struct {
            wg_node_t **v;
            uint32_t n, cap;
        } kids;
        struct {
            uint8_t *p; /* NUL-terminated; may be NULL when len is 0 */
            size_t len;
        } data;
    } u;
};

/* Frees a string unless it is static. */
void wg_node_str_free(const char *s, uint8_t stat);

#endif
