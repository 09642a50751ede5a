/* node_print.c - the XML-like text form of a node tree, for logs and tests (see node.h for the
 * format). Only appends to a caller's buffer; never fails except on ENOMEM / buffer limit.
 * It prints what it is given: callers that log stanzas carrying secrets must redact first. */
#include <stdlib.h>
#include <string.h>

#include "util/err.h"
#include "wa/node_impl.h"

#define PRINT_CUT 256 /* bytes of content shown without WG_NODE_PRINT_FULL */

/* Valid UTF-8 without control characters other than tab and newline. */
static int printable(const uint8_t *p, size_t n)
{
    size_t i = 0, k, need;
    uint32_t cp;

    while (i < n) {
        uint8_t c = p[i];
        if (c < 0x80) {
            if (c < 0x20 && c != '\t' && c != '\n')
                return 0;
            if (c == 0x7f)
                return 0;
            i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            need = 1;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            need = 2;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            need = 3;
            cp = c & 0x07;
        } else {
            return 0;
        }
        if (need >= n - i)
            return 0;
        for (k = 1; k <= need; k++) {
            if ((p[i + k] & 0xc0) != 0x80)
                return 0;
            cp = cp << 6 | (p[i + k] & 0x3f);
        }
        if ((need == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
            (need == 3 && (cp < 0x10000 || cp > 0x10ffff)))
            return 0;
        i += need + 1;
    }
    return 1;
}

static int put_escaped(wg_buf_t *b, const uint8_t *p, size_t n)
{
    size_t i, run = 0;
    int rv;

    for (i = 0; i < n; i++) {
        const char *e = NULL;
        switch (p[i]) {
        case '&': e = "&amp;"; break;
        case '<': e = "&lt;"; break;
        case '>': e = "&gt;"; break;
        case '"': e = "&quot;"; break;
        case '\n': e = "&#10;"; break;
        case '\t': e = "&#9;"; break;
        default: break;
        }
        if (!e)
            continue;
        if ((rv = wg_buf_append(b, p + run, i - run)) != 0 || (rv = wg_buf_append_str(b, e)) != 0)
            return rv;
        run = i + 1;
    }
    return wg_buf_append(b, p + run, n - run);
}

static int put_content_bytes(wg_buf_t *b, const uint8_t *p, size_t n, int text, unsigned flags)
{
    size_t show = (flags & WG_NODE_PRINT_FULL) || n <= PRINT_CUT ? n : PRINT_CUT;
    size_t i;
    int rv;

    if (text || printable(p, n)) {
        /* Cut on a UTF-8 boundary. */
        while (show < n && show > 0 && (p[show] & 0xc0) == 0x80)
            show--;
        if ((rv = put_escaped(b, p, show)) != 0)
            return rv;
        return show < n ? wg_buf_append_str(b, "...") : 0;
    }
    if ((rv = wg_buf_printf(b, "<!-- %zu bytes: ", n)) != 0)
        return rv;
    for (i = 0; i < show; i++) {
        if ((rv = wg_buf_printf(b, "%02x", p[i])) != 0)
            return rv;
    }
    return wg_buf_append_str(b, show < n ? "... -->" : " -->");
}

static int indent(wg_buf_t *b, unsigned flags, unsigned depth)
{
    unsigned i;
    int rv;

    if (!(flags & WG_NODE_PRINT_INDENT))
        return 0;
    for (i = 0; i < depth; i++) {
        if ((rv = wg_buf_append(b, "  ", 2)) != 0)
            return rv;
    }
    return 0;
}

static int print_node(const wg_node_t *n, unsigned flags, unsigned depth, wg_buf_t *b)
{
    const char *nl = (flags & WG_NODE_PRINT_INDENT) ? "\n" : "";
    uint32_t i;
    int rv;

    if ((rv = indent(b, flags, depth)) != 0 || (rv = wg_buf_append_byte(b, '<')) != 0 ||
        (rv = put_escaped(b, (const uint8_t *)n->tag, n->tag_len)) != 0)
        return rv;
    for (i = 0; i < n->nattrs; i++) {
        const wg_node_attr_t *a = &n->attrs[i];
        if ((rv = wg_buf_append_byte(b, ' ')) != 0 ||
            (rv = put_escaped(b, (const uint8_t *)a->key, a->key_len)) != 0 ||
            (rv = wg_buf_append(b, "=\"", 2)) != 0 ||
            (rv = put_escaped(b, (const uint8_t *)a->val, a->val_len)) != 0 ||
            (rv = wg_buf_append_byte(b, '"')) != 0)
            return rv;
    }
    switch (n->kind) {
    case WG_NODE_NONE:
        return wg_buf_printf(b, "/>%s", nl);
    case WG_NODE_LIST:
        if ((rv = wg_buf_append_byte(b, '>')) != 0)
            return rv;
        if (n->u.kids.n > 0 && (rv = wg_buf_append_str(b, nl)) != 0)
            return rv;
        for (i = 0; i < n->u.kids.n; i++) {
            if ((rv = print_node(n->u.kids.v[i], flags, depth + 1, b)) != 0)
                return rv;
        }
        if (n->u.kids.n > 0 && (rv = indent(b, flags, depth)) != 0)
            return rv;
        break;
    default:
        if ((rv = wg_buf_append_byte(b, '>')) != 0 ||
            (rv = put_content_bytes(b, n->u.data.p ? n->u.data.p : (const uint8_t *)"",
                                    n->u.data.len, n->kind == WG_NODE_TEXT, flags)) != 0)
            return rv;
        break;
    }
    if ((rv = wg_buf_append(b, "</", 2)) != 0 ||
        (rv = put_escaped(b, (const uint8_t *)n->tag, n->tag_len)) != 0)
        return rv;
    return wg_buf_printf(b, ">%s", nl);
}

int wg_node_print(const wg_node_t *n, unsigned flags, wg_buf_t *out)
{
    if (!n || !out)
        return WG_EINVAL;
    return print_node(n, flags, 0, out);
}

char *wg_node_to_string(const wg_node_t *n, unsigned flags)
{
    wg_buf_t b;
    size_t len;

    wg_buf_init(&b, 0);
    if (wg_node_print(n, flags, &b) != 0 || wg_buf_reserve(&b, 0) != 0) {
        wg_buf_dispose(&b);
        return NULL;
    }
    b.data[b.len] = 0;
    return (char *)wg_buf_steal(&b, &len);
}
