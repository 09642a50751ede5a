/* node.c - the binary-node tree: constructors, attribute and content setters/getters, clone,
 * structural equality, free. No I/O. A node owns everything hanging off it (see node.h);
 * strings marked static (token strings set by the decoder) are shared and never freed. */
#include "wa/node_impl.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"

void wg_node_str_free(const char *s, uint8_t stat)
{
    if (!stat)
        free((char *)s);
}

static char *dup_n(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (!p)
        return NULL;
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

wg_node_t *wg_node_new(const char *tag)
{
    wg_node_t *n;
    size_t l;

    if (!tag || !*tag)
        return NULL;
    l = strlen(tag);
    if (l > UINT32_MAX)
        return NULL;
    n = calloc(1, sizeof(*n));
    if (!n)
        return NULL;
    n->tag = dup_n(tag, l);
    if (!n->tag) {
        free(n);
        return NULL;
    }
    n->tag_len = (uint32_t)l;
    return n;
}

void wg_node_clear_content(wg_node_t *n)
{
    uint32_t i;

    if (n->kind == WG_NODE_LIST) {
        for (i = 0; i < n->u.kids.n; i++)
            wg_node_free(n->u.kids.v[i]);
        free(n->u.kids.v);
    } else if (n->kind == WG_NODE_BYTES || n->kind == WG_NODE_TEXT) {
        free(n->u.data.p);
    }
    memset(&n->u, 0, sizeof(n->u));
    n->kind = WG_NODE_NONE;
    n->text_jid = 0;
}

void wg_node_free(wg_node_t *n)
{
    uint32_t i;

    if (!n)
        return;
    wg_node_clear_content(n);
    for (i = 0; i < n->nattrs; i++) {
        wg_node_str_free(n->attrs[i].key, n->attrs[i].key_stat);
        wg_node_str_free(n->attrs[i].val, n->attrs[i].val_stat);
    }
    free(n->attrs);
    wg_node_str_free(n->tag, n->tag_stat);
    free(n);
}

const char *wg_node_tag(const wg_node_t *n)
{
    return n->tag;
}

int wg_node_tag_is(const wg_node_t *n, const char *tag)
{
    return n && tag && strcmp(n->tag, tag) == 0;
}

static wg_node_attr_t *find_attr(const wg_node_t *n, const char *key, size_t klen)
{
    uint32_t i;

    for (i = n->nattrs; i-- > 0;) {
        if (n->attrs[i].key_len == klen && memcmp(n->attrs[i].key, key, klen) == 0)
            return &n->attrs[i];
    }
    return NULL;
}

static int set_attr(wg_node_t *n, const char *key, const char *value, size_t vlen, int is_jid)
{
    size_t klen = strlen(key);
    wg_node_attr_t *a = find_attr(n, key, klen);
    char *v, *k = NULL;

    if (vlen > UINT32_MAX || klen > UINT32_MAX)
        return WG_EINVAL;
    v = dup_n(value, vlen);
    if (!v)
        return WG_ENOMEM;
    if (!a) {
        if (n->nattrs == n->attr_cap) {
            uint32_t cap = n->attr_cap ? n->attr_cap * 2 : 4;
            wg_node_attr_t *na = realloc(n->attrs, cap * sizeof(*na));
            if (!na) {
                free(v);
                return WG_ENOMEM;
            }
            n->attrs = na;
            n->attr_cap = cap;
        }
        k = dup_n(key, klen);
        if (!k) {
            free(v);
            return WG_ENOMEM;
        }
        a = &n->attrs[n->nattrs++];
        a->key = k;
        a->key_len = (uint32_t)klen;
        a->key_stat = 0;
    } else {
        wg_node_str_free(a->val, a->val_stat);
    }
    a->val = v;
    a->val_len = (uint32_t)vlen;
    a->val_stat = 0;
    a->is_jid = (uint8_t)is_jid;
    return 0;
}

static void del_attr(wg_node_t *n, const char *key)
{
    size_t klen = strlen(key);
    uint32_t i, j;

    for (i = 0, j = 0; i < n->nattrs; i++) {
        wg_node_attr_t *a = &n->attrs[i];
        if (a->key_len == klen && memcmp(a->key, key, klen) == 0) {
            wg_node_str_free(a->key, a->key_stat);
            wg_node_str_free(a->val, a->val_stat);
            continue;
        }
        n->attrs[j++] = *a;
    }
    n->nattrs = j;
}

int wg_node_set_attr(wg_node_t *n, const char *key, const char *value)
{
    if (!n || !key)
        return WG_EINVAL;
    if (!value) {
        del_attr(n, key);
        return 0;
    }
    return set_attr(n, key, value, strlen(value), 0);
}

int wg_node_set_attr_jid(wg_node_t *n, const char *key, const char *jid)
{
    wg_jid_t j;
    size_t l;

    if (!n || !key || !jid)
        return WG_EINVAL;
    l = strlen(jid);
    if (wg_jid_parse(jid, l, &j) != 0)
        return WG_EINVAL;
    return set_attr(n, key, jid, l, 1);
}

int wg_node_set_attrf(wg_node_t *n, const char *key, const char *fmt, ...)
{
    va_list ap;
    char *s = NULL;
    int len, rv;

    if (!n || !key || !fmt)
        return WG_EINVAL;
    va_start(ap, fmt);
    len = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (len < 0)
        return WG_ENOMEM;
    rv = set_attr(n, key, s, (size_t)len, 0);
    free(s);
    return rv;
}

const char *wg_node_attr(const wg_node_t *n, const char *key)
{
    const wg_node_attr_t *a;

    if (!n || !key)
        return NULL;
    a = find_attr(n, key, strlen(key));
    return a ? a->val : NULL;
}

int wg_node_attr_jid(const wg_node_t *n, const char *key, wg_jid_t *out)
{
    const wg_node_attr_t *a;

    if (!n || !key)
        return WG_EINVAL;
    a = find_attr(n, key, strlen(key));
    if (!a)
        return WG_ENOTFOUND;
    return wg_jid_parse(a->val, a->val_len, out);
}

size_t wg_node_attr_count(const wg_node_t *n)
{
    return n->nattrs;
}

const char *wg_node_attr_at(const wg_node_t *n, size_t i, const char **value, int *is_jid)
{
    if (i >= n->nattrs)
        return NULL;
    if (value)
        *value = n->attrs[i].val;
    if (is_jid)
        *is_jid = n->attrs[i].is_jid;
    return n->attrs[i].key;
}

wg_node_content_t wg_node_content_type(const wg_node_t *n)
{
    return (wg_node_content_t)n->kind;
}

int wg_node_take_bytes(wg_node_t *n, uint8_t *p, size_t len)
{
    uint8_t *q = p;

    /* Keep the promise that content is followed by a NUL byte. */
    q = realloc(p, len + 1);
    if (!q) {
        free(p);
        return WG_ENOMEM;
    }
    q[len] = 0;
    wg_node_clear_content(n);
    n->kind = WG_NODE_BYTES;
    n->u.data.p = q;
    n->u.data.len = len;
    return 0;
}

static int set_data(wg_node_t *n, const void *p, size_t len, wg_node_content_t kind, int jid)
{
    uint8_t *q = malloc(len + 1);

    if (!q)
        return WG_ENOMEM;
    if (len)
        memcpy(q, p, len);
    q[len] = 0;
    wg_node_clear_content(n);
    n->kind = (uint8_t)kind;
    n->text_jid = (uint8_t)jid;
    n->u.data.p = q;
    n->u.data.len = len;
    return 0;
}

int wg_node_set_bytes(wg_node_t *n, const void *p, size_t len)
{
    if (!n || (!p && len))
        return WG_EINVAL;
    return set_data(n, p, len, WG_NODE_BYTES, 0);
}

int wg_node_set_text(wg_node_t *n, const char *s)
{
    if (!n || !s)
        return WG_EINVAL;
    return set_data(n, s, strlen(s), WG_NODE_TEXT, 0);
}

int wg_node_set_text_jid(wg_node_t *n, const char *jid)
{
    wg_jid_t j;

    if (!n || !jid || wg_jid_parse(jid, strlen(jid), &j) != 0)
        return WG_EINVAL;
    return set_data(n, jid, strlen(jid), WG_NODE_TEXT, 1);
}

const uint8_t *wg_node_bytes(const wg_node_t *n, size_t *len)
{
    if (n->kind != WG_NODE_BYTES && n->kind != WG_NODE_TEXT) {
        if (len)
            *len = 0;
        return NULL;
    }
    if (len)
        *len = n->u.data.len;
    return n->u.data.p ? n->u.data.p : (const uint8_t *)"";
}

int wg_node_text_is_jid(const wg_node_t *n)
{
    return n->kind == WG_NODE_TEXT && n->text_jid;
}

int wg_node_set_list(wg_node_t *n)
{
    wg_node_clear_content(n);
    n->kind = WG_NODE_LIST;
    return 0;
}

int wg_node_add_child(wg_node_t *parent, wg_node_t *child)
{
    if (!parent || !child || child == parent)
        return WG_EINVAL;
    if (parent->kind == WG_NODE_BYTES || parent->kind == WG_NODE_TEXT)
        return WG_EINVAL;
    if (parent->kind == WG_NODE_NONE) {
        memset(&parent->u, 0, sizeof(parent->u));
        parent->kind = WG_NODE_LIST;
    }
    if (parent->u.kids.n == parent->u.kids.cap) {
        uint32_t cap = parent->u.kids.cap ? parent->u.kids.cap * 2 : 4;
        wg_node_t **v = realloc(parent->u.kids.v, cap * sizeof(*v));
        if (!v)
            return WG_ENOMEM;
        parent->u.kids.v = v;
        parent->u.kids.cap = cap;
    }
    parent->u.kids.v[parent->u.kids.n++] = child;
    return 0;
}

wg_node_t *wg_node_add_new(wg_node_t *parent, const char *tag)
{
    wg_node_t *c = wg_node_new(tag);

    if (c && wg_node_add_child(parent, c) != 0) {
        wg_node_free(c);
        return NULL;
    }
    return c;
}

size_t wg_node_child_count(const wg_node_t *n)
{
    return n->kind == WG_NODE_LIST ? n->u.kids.n : 0;
}

wg_node_t *wg_node_child(const wg_node_t *n, size_t i)
{
    if (n->kind != WG_NODE_LIST || i >= n->u.kids.n)
        return NULL;
    return n->u.kids.v[i];
}

wg_node_t *wg_node_child_by_tag(const wg_node_t *n, const char *tag)
{
    uint32_t i;

    if (!n || !tag || n->kind != WG_NODE_LIST)
        return NULL;
    for (i = 0; i < n->u.kids.n; i++) {
        if (strcmp(n->u.kids.v[i]->tag, tag) == 0)
            return n->u.kids.v[i];
    }
    return NULL;
}

wg_node_t *wg_node_clone(const wg_node_t *n)
{
    wg_node_t *c;
    uint32_t i;

    if (!n)
        return NULL;
    c = wg_node_new(n->tag);
    if (!c)
        return NULL;
    for (i = 0; i < n->nattrs; i++) {
        /* Keep duplicates as they are: append directly. */
        wg_node_attr_t *a;
        if (c->nattrs == c->attr_cap) {
            uint32_t cap = c->attr_cap ? c->attr_cap * 2 : 4;
            wg_node_attr_t *na = realloc(c->attrs, cap * sizeof(*na));
            if (!na)
                goto fail;
            c->attrs = na;
            c->attr_cap = cap;
        }
        a = &c->attrs[c->nattrs];
        *a = n->attrs[i];
        a->key_stat = a->val_stat = 0;
        a->key = dup_n(n->attrs[i].key, n->attrs[i].key_len);
        a->val = dup_n(n->attrs[i].val, n->attrs[i].val_len);
        if (!a->key || !a->val) {
            free((char *)a->key);
            free((char *)a->val);
            goto fail;
        }
        c->nattrs++;
    }
    if (n->kind == WG_NODE_LIST) {
        c->kind = WG_NODE_LIST;
        for (i = 0; i < n->u.kids.n; i++) {
            wg_node_t *k = wg_node_clone(n->u.kids.v[i]);
            if (!k || wg_node_add_child(c, k) != 0) {
                wg_node_free(k);
                goto fail;
            }
        }
    } else if (n->kind == WG_NODE_BYTES || n->kind == WG_NODE_TEXT) {
        if (set_data(c, n->u.data.p, n->u.data.len, (wg_node_content_t)n->kind, n->text_jid) != 0)
            goto fail;
    }
    return c;
fail:
    wg_node_free(c);
    return NULL;
}

/* Every effective attribute of a (last duplicate wins) is in b with the same value. */
static int attrs_subset(const wg_node_t *a, const wg_node_t *b)
{
    uint32_t i;

    for (i = 0; i < a->nattrs; i++) {
        const wg_node_attr_t *x = find_attr(a, a->attrs[i].key, a->attrs[i].key_len);
        const wg_node_attr_t *y = find_attr(b, a->attrs[i].key, a->attrs[i].key_len);
        if (!y || x->val_len != y->val_len || memcmp(x->val, y->val, x->val_len) != 0 ||
            x->is_jid != y->is_jid)
            return 0;
    }
    return 1;
}

/* Raw bytes and non-JID text are the same thing on the wire when the text is written raw. */
static int bytes_like(const wg_node_t *n)
{
    return n->kind == WG_NODE_BYTES || (n->kind == WG_NODE_TEXT && !n->text_jid);
}

int wg_node_equal(const wg_node_t *a, const wg_node_t *b)
{
    uint32_t i;

    if (!a || !b)
        return a == b;
    if (a->tag_len != b->tag_len || memcmp(a->tag, b->tag, a->tag_len) != 0)
        return 0;
    if (a->kind != b->kind && !(bytes_like(a) && bytes_like(b)))
        return 0;
    if (!attrs_subset(a, b) || !attrs_subset(b, a))
        return 0;
    switch (a->kind) {
    case WG_NODE_LIST:
        if (a->u.kids.n != b->u.kids.n)
            return 0;
        for (i = 0; i < a->u.kids.n; i++) {
            if (!wg_node_equal(a->u.kids.v[i], b->u.kids.v[i]))
                return 0;
        }
        return 1;
    case WG_NODE_TEXT:
    case WG_NODE_BYTES:
        if (a->text_jid != b->text_jid)
            return 0;
        return a->u.data.len == b->u.data.len &&
               (a->u.data.len == 0 || memcmp(a->u.data.p, b->u.data.p, a->u.data.len) == 0);
    default:
        return 1;
    }
}
