/* binary.c - binary-node encoder and decoder (see binary.h for the rules and their sources).
 *
 * Encoder: walks the tree, appending to a caller's wg_buf_t; it allocates nothing else.
 * Decoder: a recursive-descent reader over the frame bytes with explicit limits (depth, node
 * count, sizes). Token strings in the decoded tree point at the const tables (flagged static);
 * everything else is copied. The decoder owns nothing after it returns except the tree it hands
 * to the caller. No I/O. */
#include "wa/binary.h"

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "util/err.h"
#include "wa/node_impl.h"
#include "wa/tokens.h"

void wg_binary_limits_default(wg_binary_limits_t *lim)
{
    lim->max_bytes = 16u << 20;
    lim->max_depth = 64;
    lim->max_nodes = 200000;
}

/* ---------------------------------------------------------------- encoder */

/* Makes room for n more bytes so the caller can write them at b->data + b->len. */
static inline int room(wg_buf_t *b, size_t n)
{
    if (b->data && b->len + n < b->cap)
        return 0;
    return wg_buf_reserve(b, n);
}

static inline int put1(wg_buf_t *b, uint8_t c)
{
    int rv = room(b, 1);
    if (rv == 0)
        b->data[b->len++] = c;
    return rv;
}

static inline int put2(wg_buf_t *b, uint8_t c0, uint8_t c1)
{
    int rv = room(b, 2);
    if (rv == 0) {
        b->data[b->len++] = c0;
        b->data[b->len++] = c1;
    }
    return rv;
}

static int put_list_header(wg_buf_t *b, size_t n)
{
    int rv;

    if (n == 0)
        return put1(b, WG_BIN_LIST_EMPTY);
    if (n < 256)
        return put2(b, WG_BIN_LIST_8, (uint8_t)n);
    if (n > 0xffff)
        return WG_EINVAL;
    if ((rv = room(b, 3)) != 0)
        return rv;
    b->data[b->len++] = WG_BIN_LIST_16;
    b->data[b->len++] = (uint8_t)(n >> 8);
    b->data[b->len++] = (uint8_t)n;
    return 0;
}

/* BINARY_8 / BINARY_20 / BINARY_32 length header and the bytes. */
static int put_raw(wg_buf_t *b, const void *p, size_t n)
{
    uint8_t *w;
    int rv;

    if ((uint64_t)n > 0xffffffffu)
        return WG_EINVAL;
    if ((rv = room(b, n + 5)) != 0)
        return rv;
    w = b->data + b->len;
    if (n < 256) {
        *w++ = WG_BIN_BINARY_8;
        *w++ = (uint8_t)n;
    } else if (n < (1u << 20)) {
        *w++ = WG_BIN_BINARY_20;
        *w++ = (uint8_t)((n >> 16) & 0x0f);
        *w++ = (uint8_t)(n >> 8);
        *w++ = (uint8_t)n;
    } else {
        *w++ = WG_BIN_BINARY_32;
        *w++ = (uint8_t)(n >> 24);
        *w++ = (uint8_t)(n >> 16);
        *w++ = (uint8_t)(n >> 8);
        *w++ = (uint8_t)n;
    }
    if (n)
        memcpy(w, p, n);
    b->len = (size_t)(w - b->data) + n;
    return 0;
}

static inline uint8_t nibble_of(char c)
{
    return c == '-' ? 10 : c == '.' ? 11 : (uint8_t)(c - '0');
}

static inline uint8_t hex_of(char c)
{
    return c <= '9' ? (uint8_t)(c - '0') : (uint8_t)(c - 'A' + 10);
}

/* NIBBLE_8 / HEX_8 (wa-protocol-core.md 4.4): count byte with bit 7 for odd lengths, pad 0xF. */
static int put_packed(wg_buf_t *b, const char *s, size_t n, uint8_t tag)
{
    size_t i, half = n / 2;
    uint8_t *w;
    int rv;

    if ((rv = room(b, 2 + half + 1)) != 0)
        return rv;
    w = b->data + b->len;
    *w++ = tag;
    *w++ = (uint8_t)(((n + 1) / 2) | (n & 1 ? 0x80 : 0));
    if (tag == WG_BIN_NIBBLE_8) {
        for (i = 0; i < half; i++)
            *w++ = (uint8_t)(nibble_of(s[2 * i]) << 4 | nibble_of(s[2 * i + 1]));
        if (n & 1)
            *w++ = (uint8_t)(nibble_of(s[n - 1]) << 4 | 0x0f);
    } else {
        for (i = 0; i < half; i++)
            *w++ = (uint8_t)(hex_of(s[2 * i]) << 4 | hex_of(s[2 * i + 1]));
        if (n & 1)
            *w++ = (uint8_t)(hex_of(s[n - 1]) << 4 | 0x0f);
    }
    b->len = (size_t)(w - b->data);
    return 0;
}

static int put_string(wg_buf_t *b, const char *s, size_t n);

static int put_u16(wg_buf_t *b, uint16_t v)
{
    return put2(b, (uint8_t)(v >> 8), (uint8_t)v);
}

static int put_jid(wg_buf_t *b, const wg_jid_t *j)
{
    int rv;

    switch (j->type) {
    case WG_JID_PAIR:
        if ((rv = put1(b, WG_BIN_JID_PAIR)) != 0)
            return rv;
        /* An empty user is LIST_EMPTY, not an empty string (4.5). */
        rv = j->user_len ? put_string(b, j->user, j->user_len) : put1(b, WG_BIN_LIST_EMPTY);
        if (rv != 0)
            return rv;
        return put_string(b, j->server, j->server_len);
    case WG_JID_AD:
        if ((rv = room(b, 3)) != 0)
            return rv;
        b->data[b->len++] = WG_BIN_AD_JID;
        b->data[b->len++] = j->domain;
        b->data[b->len++] = (uint8_t)j->device;
        return put_string(b, j->user, j->user_len);
    case WG_JID_FB:
        if ((rv = put1(b, WG_BIN_FB_JID)) != 0 || (rv = put_string(b, j->user, j->user_len)) != 0 ||
            (rv = put_u16(b, j->device)) != 0)
            return rv;
        return put_string(b, j->server, j->server_len);
    case WG_JID_INTEROP:
        if ((rv = put1(b, WG_BIN_INTEROP_JID)) != 0 ||
            (rv = put_string(b, j->user, j->user_len)) != 0 || (rv = put_u16(b, j->device)) != 0 ||
            (rv = put_u16(b, j->integrator)) != 0)
            return rv;
        return put_string(b, j->server, j->server_len);
    }
    return WG_EINVAL;
}

/* A string, in the priority order of wa-protocol-core.md 4.3. */
static int put_string(wg_buf_t *b, const char *s, size_t n)
{
    uint8_t dict, idx;
    int nib = 1, hex = 1, t;
    size_t i;

    if (n == 0)
        return put_raw(b, s, 0);
    t = wg_tokens_lookup(s, n, &dict, &idx);
    if (t == 1)
        return put1(b, idx);
    if (t == 2)
        return put2(b, (uint8_t)(WG_BIN_DICTIONARY_0 + dict), idx);
    if (n <= WG_BIN_PACKED_MAX) {
        for (i = 0; i < n && (nib || hex); i++) {
            char c = s[i];
            int digit = c >= '0' && c <= '9';
            if (!digit && c != '-' && c != '.')
                nib = 0;
            if (!digit && !(c >= 'A' && c <= 'F'))
                hex = 0;
        }
        if (nib)
            return put_packed(b, s, n, WG_BIN_NIBBLE_8);
        if (hex)
            return put_packed(b, s, n, WG_BIN_HEX_8);
    }
    return put_raw(b, s, n);
}

static int put_value(wg_buf_t *b, const char *s, size_t n, int is_jid)
{
    wg_jid_t j;

    if (!is_jid)
        return put_string(b, s, n);
    if (wg_jid_parse(s, n, &j) != 0)
        return WG_EINVAL;
    return put_jid(b, &j);
}

static int put_node(wg_buf_t *b, const wg_node_t *n)
{
    size_t count;
    uint32_t i;
    int rv;

    if (n->tag_len == 0)
        return WG_EINVAL;
    count = 1 + 2 * (size_t)n->nattrs + (n->kind != WG_NODE_NONE ? 1 : 0);
    if ((rv = put_list_header(b, count)) != 0 || (rv = put_string(b, n->tag, n->tag_len)) != 0)
        return rv;
    for (i = 0; i < n->nattrs; i++) {
        const wg_node_attr_t *a = &n->attrs[i];
        if ((rv = put_string(b, a->key, a->key_len)) != 0 ||
            (rv = put_value(b, a->val, a->val_len, a->is_jid)) != 0)
            return rv;
    }
    switch (n->kind) {
    case WG_NODE_LIST:
        if ((rv = put_list_header(b, n->u.kids.n)) != 0)
            return rv;
        for (i = 0; i < n->u.kids.n; i++) {
            if ((rv = put_node(b, n->u.kids.v[i])) != 0)
                return rv;
        }
        return 0;
    case WG_NODE_BYTES:
        return put_raw(b, n->u.data.p, n->u.data.len);
    case WG_NODE_TEXT:
        return put_value(b, (const char *)n->u.data.p, n->u.data.len, n->text_jid);
    default:
        return 0;
    }
}

int wg_binary_encode(const wg_node_t *node, wg_buf_t *out)
{
    size_t start = out->len;
    int rv;

    if (!node)
        return WG_EINVAL;
    if ((rv = put1(out, 0)) != 0 || (rv = put_node(out, node)) != 0)
        out->len = start;
    if (out->data)
        out->data[out->len] = 0;
    return rv;
}

int wg_binary_encode_compressed(const wg_node_t *node, wg_buf_t *out)
{
    wg_buf_t plain;
    uLongf zlen;
    size_t start = out->len;
    int rv;

    wg_buf_init(&plain, 0);
    if ((rv = wg_binary_encode(node, &plain)) != 0)
        goto out;
    zlen = compressBound((uLong)(plain.len - 1));
    if ((rv = wg_buf_reserve(out, 1 + (size_t)zlen)) != 0)
        goto out;
    out->data[out->len] = WG_BIN_FLAG_COMPRESSED;
    if (compress2(out->data + out->len + 1, &zlen, plain.data + 1, (uLong)(plain.len - 1),
                  Z_DEFAULT_COMPRESSION) != Z_OK) {
        rv = WG_ENOMEM;
        goto out;
    }
    out->len += 1 + (size_t)zlen;
    out->data[out->len] = 0;
out:
    if (rv != 0) {
        out->len = start;
        if (out->data)
            out->data[out->len] = 0;
    }
    wg_buf_dispose(&plain);
    return rv;
}

/* ---------------------------------------------------------------- decoder */

typedef struct {
    const uint8_t *p, *end;
    const wg_binary_limits_t *lim;
    size_t nodes;
    char pack[2][256]; /* unpacked NIBBLE_8/HEX_8 strings: slot 0 general, slot 1 JID server */
    wg_buf_t jid;      /* text form of the last decoded JID */
} dec_t;

/* A decoded string before it is copied into the tree. */
typedef struct {
    const char *p;
    size_t len;
    uint8_t stat; /* p is a static token string */
    uint8_t jid;  /* arrived as a JID; p is its text form */
} sv_t;

static inline int get1(dec_t *d, uint8_t *v)
{
    if (d->p >= d->end)
        return WG_EPROTO;
    *v = *d->p++;
    return 0;
}

static inline int getn(dec_t *d, size_t n, uint32_t *v)
{
    uint32_t x = 0;
    size_t i;

    if ((size_t)(d->end - d->p) < n)
        return WG_EPROTO;
    for (i = 0; i < n; i++)
        x = x << 8 | *d->p++;
    *v = x;
    return 0;
}

static int get_list_size(dec_t *d, uint8_t tag, uint32_t *n)
{
    uint8_t c;
    int rv;

    switch (tag) {
    case WG_BIN_LIST_EMPTY:
        *n = 0;
        return 0;
    case WG_BIN_LIST_8:
        if ((rv = get1(d, &c)) != 0)
            return rv;
        *n = c;
        return 0;
    case WG_BIN_LIST_16:
        return getn(d, 2, n);
    default:
        return WG_EPROTO;
    }
}

/* Length of a BINARY_8/20/32 payload that follows; checked against what is left. */
static int get_bin_len(dec_t *d, uint8_t tag, size_t *n)
{
    uint32_t v = 0;
    int rv;

    switch (tag) {
    case WG_BIN_BINARY_8:
        rv = getn(d, 1, &v);
        break;
    case WG_BIN_BINARY_20:
        rv = getn(d, 3, &v);
        v &= 0xfffff; /* top nibble of the first byte is masked (Baileys readInt20) */
        break;
    default:
        rv = getn(d, 4, &v);
        break;
    }
    if (rv != 0)
        return rv;
    if ((size_t)(d->end - d->p) < v)
        return WG_EPROTO;
    *n = v;
    return 0;
}

static int get_packed(dec_t *d, uint8_t tag, unsigned slot, sv_t *sv)
{
    static const char nib[16] = "0123456789-.\0\0\0\0";
    static const char hex[16] = "0123456789ABCDEF";
    const char *map = tag == WG_BIN_NIBBLE_8 ? nib : hex;
    char *out = d->pack[slot];
    uint8_t start, c;
    size_t nbytes, i, len;

    if (get1(d, &start) != 0)
        return WG_EPROTO;
    nbytes = start & 0x7f;
    if ((size_t)(d->end - d->p) < nbytes)
        return WG_EPROTO;
    len = nbytes * 2;
    for (i = 0; i < nbytes; i++) {
        c = *d->p++;
        out[2 * i] = map[c >> 4];
        out[2 * i + 1] = map[c & 0x0f];
        /* Nibbles 0xC..0xE are invalid; 0xF (pad) only as the dropped last nibble. */
        if (tag == WG_BIN_NIBBLE_8 && (out[2 * i] == 0 || (out[2 * i + 1] == 0 &&
                                                           !(i + 1 == nbytes && (start & 0x80) &&
                                                             (c & 0x0f) == 0x0f))))
            return WG_EPROTO;
    }
    if (start & 0x80) {
        if (len == 0)
            return WG_EPROTO;
        len--;
    }
    out[len] = '\0';
    sv->p = out;
    sv->len = len;
    sv->stat = 0;
    sv->jid = 0;
    return 0;
}

static int get_string(dec_t *d, uint8_t tag, unsigned slot, int allow_jid, sv_t *sv);

static int jid_user_ok(const sv_t *u)
{
    return !u->jid && !memchr(u->p, '@', u->len) && !memchr(u->p, ':', u->len);
}

/* Reads a JID after its tag byte, formats it into d->jid, and checks that the text parses back
 * to the same JID (so a tree's JID text always re-encodes to the same meaning). */
static int get_jid(dec_t *d, uint8_t tag, sv_t *sv)
{
    wg_jid_t j, back;
    sv_t user, server;
    uint32_t v = 0;
    uint8_t c;
    int rv;

    memset(&j, 0, sizeof(j));
    memset(&server, 0, sizeof(server));
    switch (tag) {
    case WG_BIN_JID_PAIR:
        j.type = WG_JID_PAIR;
        if ((rv = get1(d, &c)) != 0 || (rv = get_string(d, c, 0, 0, &user)) != 0 ||
            (rv = get1(d, &c)) != 0 || (rv = get_string(d, c, 1, 0, &server)) != 0)
            return rv;
        break;
    case WG_BIN_AD_JID:
        j.type = WG_JID_AD;
        if ((rv = get1(d, &j.domain)) != 0 || (rv = get1(d, &c)) != 0)
            return rv;
        j.device = c;
        if ((rv = get1(d, &c)) != 0 || (rv = get_string(d, c, 0, 0, &user)) != 0)
            return rv;
        server.p = j.domain == WG_JID_DOMAIN_LID          ? "lid"
                   : j.domain == WG_JID_DOMAIN_HOSTED     ? "hosted"
                   : j.domain == WG_JID_DOMAIN_HOSTED_LID ? "hosted.lid"
                                                          : "s.whatsapp.net";
        server.len = strlen(server.p);
        break;
    case WG_BIN_FB_JID:
        j.type = WG_JID_FB;
        if ((rv = get1(d, &c)) != 0 || (rv = get_string(d, c, 0, 0, &user)) != 0 ||
            (rv = getn(d, 2, &v)) != 0 || (rv = get1(d, &c)) != 0 ||
            (rv = get_string(d, c, 1, 0, &server)) != 0)
            return rv;
        j.device = (uint16_t)v;
        break;
    default: /* INTEROP_JID */
        j.type = WG_JID_INTEROP;
        if ((rv = get1(d, &c)) != 0 || (rv = get_string(d, c, 0, 0, &user)) != 0 ||
            (rv = getn(d, 2, &v)) != 0)
            return rv;
        j.device = (uint16_t)v;
        if ((rv = getn(d, 2, &v)) != 0 || (rv = get1(d, &c)) != 0 ||
            (rv = get_string(d, c, 1, 0, &server)) != 0)
            return rv;
        j.integrator = (uint16_t)v;
        break;
    }
    if (!jid_user_ok(&user) || server.len == 0 || memchr(server.p, '@', server.len))
        return WG_EPROTO;
    j.user = user.p;
    j.user_len = user.len;
    j.server = server.p;
    j.server_len = server.len;
    wg_buf_reset(&d->jid);
    if ((rv = wg_jid_format(&j, &d->jid)) != 0)
        return rv == WG_ENOMEM ? rv : WG_EPROTO;
    if (wg_jid_parse((const char *)d->jid.data, d->jid.len, &back) != 0 ||
        back.user_len != j.user_len || memcmp(back.user, j.user, j.user_len) != 0 ||
        back.server_len != j.server_len || memcmp(back.server, j.server, j.server_len) != 0 ||
        back.device != j.device || back.integrator != j.integrator ||
        (j.type == WG_JID_AD && back.type == WG_JID_AD && back.domain != j.domain) ||
        ((j.type == WG_JID_FB || j.type == WG_JID_INTEROP) && back.type != j.type))
        return WG_EPROTO;
    sv->p = (const char *)d->jid.data;
    sv->len = d->jid.len;
    sv->stat = 0;
    sv->jid = 1;
    return 0;
}

static int get_string(dec_t *d, uint8_t tag, unsigned slot, int allow_jid, sv_t *sv)
{
    size_t n;
    uint8_t c;
    int rv;

    sv->stat = 0;
    sv->jid = 0;
    if (tag >= 1 && tag < WG_TOKENS_SINGLE_COUNT) {
        sv->p = wg_tokens_single(tag);
        sv->len = strlen(sv->p);
        sv->stat = 1;
        return 0;
    }
    switch (tag) {
    case WG_BIN_LIST_EMPTY:
        sv->p = "";
        sv->len = 0;
        sv->stat = 1;
        return 0;
    case WG_BIN_DICTIONARY_0:
    case WG_BIN_DICTIONARY_0 + 1:
    case WG_BIN_DICTIONARY_0 + 2:
    case WG_BIN_DICTIONARY_3:
        if ((rv = get1(d, &c)) != 0)
            return rv;
        sv->p = wg_tokens_double((unsigned)(tag - WG_BIN_DICTIONARY_0), c);
        sv->len = strlen(sv->p);
        sv->stat = 1;
        return 0;
    case WG_BIN_BINARY_8:
    case WG_BIN_BINARY_20:
    case WG_BIN_BINARY_32:
        if ((rv = get_bin_len(d, tag, &n)) != 0)
            return rv;
        if (memchr(d->p, '\0', n))
            return WG_EPROTO;
        sv->p = (const char *)d->p;
        sv->len = n;
        d->p += n;
        return 0;
    case WG_BIN_NIBBLE_8:
    case WG_BIN_HEX_8:
        return get_packed(d, tag, slot, sv);
    case WG_BIN_JID_PAIR:
    case WG_BIN_AD_JID:
    case WG_BIN_FB_JID:
    case WG_BIN_INTEROP_JID:
        if (!allow_jid)
            return WG_EPROTO;
        return get_jid(d, tag, sv);
    default:
        return WG_EPROTO;
    }
}

/* Copies a decoded string into the tree (static tokens are shared). */
static int own(const sv_t *sv, const char **out, uint32_t *len, uint8_t *stat)
{
    char *s;

    if (sv->len > UINT32_MAX)
        return WG_EPROTO;
    *len = (uint32_t)sv->len;
    if (sv->stat) {
        *out = sv->p;
        *stat = 1;
        return 0;
    }
    s = malloc(sv->len + 1);
    if (!s)
        return WG_ENOMEM;
    memcpy(s, sv->p, sv->len);
    s[sv->len] = '\0';
    *out = s;
    *stat = 0;
    return 0;
}

static int get_node(dec_t *d, unsigned depth, wg_node_t **out)
{
    wg_node_t *n = NULL;
    uint32_t size, nattrs, nkids, i;
    uint8_t c;
    sv_t sv;
    size_t left, blen;
    int rv;

    *out = NULL;
    if (depth > d->lim->max_depth || ++d->nodes > d->lim->max_nodes)
        return WG_EPROTO;
    if ((rv = get1(d, &c)) != 0 || (rv = get_list_size(d, c, &size)) != 0)
        return rv;
    if (size == 0)
        return WG_EPROTO;
    if ((rv = get1(d, &c)) != 0 || (rv = get_string(d, c, 0, 0, &sv)) != 0)
        return rv;
    if (sv.len == 0)
        return WG_EPROTO;
    if ((n = calloc(1, sizeof(*n))) == NULL)
        return WG_ENOMEM;
    if ((rv = own(&sv, &n->tag, &n->tag_len, &n->tag_stat)) != 0) {
        free(n);
        return rv;
    }
    nattrs = (size - 1) >> 1;
    left = (size_t)(d->end - d->p);
    if (nattrs) {
        /* Each attribute takes at least two bytes: no allocation beyond what the input backs. */
        if ((size_t)nattrs * 2 > left) {
            rv = WG_EPROTO;
            goto out;
        }
        if ((n->attrs = malloc(nattrs * sizeof(*n->attrs))) == NULL) {
            rv = WG_ENOMEM;
            goto out;
        }
        n->attr_cap = nattrs;
    }
    for (i = 0; i < nattrs; i++) {
        wg_node_attr_t *a = &n->attrs[i];
        if ((rv = get1(d, &c)) != 0 || (rv = get_string(d, c, 0, 0, &sv)) != 0 ||
            (rv = own(&sv, &a->key, &a->key_len, &a->key_stat)) != 0)
            goto out;
        if ((rv = get1(d, &c)) != 0 || (rv = get_string(d, c, 0, 1, &sv)) != 0 ||
            (rv = own(&sv, &a->val, &a->val_len, &a->val_stat)) != 0) {
            wg_node_str_free(a->key, a->key_stat);
            goto out;
        }
        a->is_jid = sv.jid;
        n->nattrs++;
    }
    if (size % 2 == 0) {
        if ((rv = get1(d, &c)) != 0)
            goto out;
        switch (c) {
        case WG_BIN_LIST_EMPTY:
        case WG_BIN_LIST_8:
        case WG_BIN_LIST_16:
            if ((rv = get_list_size(d, c, &nkids)) != 0)
                goto out;
            n->kind = WG_NODE_LIST;
            if (nkids == 0)
                break;
            /* Each child takes at least three bytes (F8 01 <tag>). */
            if ((size_t)nkids * 3 > (size_t)(d->end - d->p)) {
                rv = WG_EPROTO;
                goto out;
            }
            if ((n->u.kids.v = malloc(nkids * sizeof(*n->u.kids.v))) == NULL) {
                rv = WG_ENOMEM;
                goto out;
            }
            n->u.kids.cap = nkids;
            for (i = 0; i < nkids; i++) {
                if ((rv = get_node(d, depth + 1, &n->u.kids.v[i])) != 0)
                    goto out;
                n->u.kids.n++;
            }
            break;
        case WG_BIN_BINARY_8:
        case WG_BIN_BINARY_20:
        case WG_BIN_BINARY_32:
            if ((rv = get_bin_len(d, c, &blen)) != 0)
                goto out;
            if ((n->u.data.p = malloc(blen + 1)) == NULL) {
                rv = WG_ENOMEM;
                goto out;
            }
            memcpy(n->u.data.p, d->p, blen);
            n->u.data.p[blen] = 0;
            n->u.data.len = blen;
            n->kind = WG_NODE_BYTES;
            d->p += blen;
            break;
        default:
            if ((rv = get_string(d, c, 0, 1, &sv)) != 0)
                goto out;
            if ((n->u.data.p = malloc(sv.len + 1)) == NULL) {
                rv = WG_ENOMEM;
                goto out;
            }
            memcpy(n->u.data.p, sv.p, sv.len);
            n->u.data.p[sv.len] = 0;
            n->u.data.len = sv.len;
            n->kind = WG_NODE_TEXT;
            n->text_jid = sv.jid;
            break;
        }
    }
    rv = 0;
out:
    if (rv != 0) {
        wg_node_free(n);
        return rv;
    }
    *out = n;
    return 0;
}

/* Inflates a zlib stream into out, failing past max bytes or on trailing data. */
static int inflate_capped(const uint8_t *p, size_t len, size_t max, wg_buf_t *out)
{
    z_stream zs;
    int zr, rv = 0;

    memset(&zs, 0, sizeof(zs));
    if (inflateInit(&zs) != Z_OK)
        return WG_ENOMEM;
    zs.next_in = (Bytef *)p;
    zs.avail_in = (uInt)(len > UINT32_MAX ? UINT32_MAX : len);
    if (len > UINT32_MAX) {
        rv = WG_EPROTO;
        goto out;
    }
    for (;;) {
        size_t chunk = out->cap > out->len + 1 ? out->cap - out->len - 1 : 0;
        if (chunk == 0) {
            if ((rv = wg_buf_reserve(out, out->len < 4096 ? 4096 : out->len)) != 0) {
                rv = rv == WG_ETOOBIG ? WG_EPROTO : rv;
                goto out;
            }
            continue;
        }
        if (chunk > max - out->len + 1)
            chunk = max - out->len + 1; /* one byte past the cap is enough to tell */
        zs.next_out = out->data + out->len;
        zs.avail_out = (uInt)(chunk > UINT32_MAX ? UINT32_MAX : chunk);
        zr = inflate(&zs, Z_NO_FLUSH);
        out->len = (size_t)(zs.next_out - out->data);
        if (out->len > max) {
            rv = WG_EPROTO;
            goto out;
        }
        if (zr == Z_STREAM_END)
            break;
        if (zr == Z_MEM_ERROR) {
            rv = WG_ENOMEM;
            goto out;
        }
        if (zr != Z_OK) { /* data error, or Z_BUF_ERROR: truncated stream */
            rv = WG_EPROTO;
            goto out;
        }
    }
    if (zs.avail_in != 0)
        rv = WG_EPROTO;
out:
    inflateEnd(&zs);
    return rv;
}

int wg_binary_decode(const uint8_t *p, size_t len, const wg_binary_limits_t *lim, wg_node_t **out)
{
    wg_binary_limits_t defaults;
    wg_buf_t plain;
    dec_t *d = NULL;
    int rv;

    *out = NULL;
    wg_buf_init(&plain, 0);
    if (!lim) {
        wg_binary_limits_default(&defaults);
        lim = &defaults;
    }
    if (!p || len < 2 || len - 1 > lim->max_bytes)
        return WG_EPROTO;
    if ((d = malloc(sizeof(*d))) == NULL)
        return WG_ENOMEM;
    d->lim = lim;
    d->nodes = 0;
    wg_buf_init(&d->jid, 0);
    if (p[0] & WG_BIN_FLAG_COMPRESSED) {
        if ((rv = inflate_capped(p + 1, len - 1, lim->max_bytes, &plain)) != 0)
            goto out;
        d->p = plain.data;
        d->end = plain.data + plain.len;
    } else {
        d->p = p + 1;
        d->end = p + len;
    }
    if ((rv = get_node(d, 1, out)) != 0)
        goto out;
    if (d->p != d->end) { /* leftover bytes after the root node (whatsmeow rejects them too) */
        wg_node_free(*out);
        *out = NULL;
        rv = WG_EPROTO;
    }
out:
    wg_buf_dispose(&d->jid);
    wg_buf_dispose(&plain);
    free(d);
    return rv;
}
