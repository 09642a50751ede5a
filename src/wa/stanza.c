/* stanza.c - see stanza.h. Builders add attributes in the order the fact sheet writes them (so
 * the printed form is stable for tests); attributes that carry JIDs are marked as JIDs so the
 * encoder writes them in JID form. Parsers check every field they hand out. */
#include "wa/stanza.h"
#include "util/err.h"
#include "wa/jid.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SERVER "s.whatsapp.net"
#define SERVER_JID "@s.whatsapp.net" /* the server itself: a JID pair with an empty user */

/* ---- small helpers -------------------------------------------------------------------------- */

static int set(wg_node_t *n, const char *k, const char *v)
{
    return v ? wg_node_set_attr(n, k, v) : 0;
}

static int set_jid(wg_node_t *n, const char *k, const char *v)
{
    return v ? wg_node_set_attr_jid(n, k, v) : 0;
}

static wg_node_t *add_bytes(wg_node_t *parent, const char *tag, const void *p, size_t len)
{
    wg_node_t *c = wg_node_add_new(parent, tag);
    if (c && wg_node_set_bytes(c, p, len) != 0)
        return NULL;
    return c;
}

static void be(uint8_t *out, uint32_t v, int n)
{
    for (int i = n - 1; i >= 0; i--, v >>= 8)
        out[i] = (uint8_t)v;
}

static uint32_t from_be(const uint8_t *p, int n)
{
    uint32_t v = 0;
    for (int i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

/* Returns *out = n on success, or frees n: for the builders' single exit. */
static int finish(wg_node_t *n, int rv, wg_node_t **out)
{
    if (rv) {
        wg_node_free(n);
        *out = NULL;
        return rv < 0 ? rv : WG_ENOMEM;
    }
    *out = n;
    return 0;
}

/* A decimal attribute in [0, max]; absent = 0 with *has 0. */
static int attr_uint(const wg_node_t *n, const char *k, uint64_t max, uint64_t *v, int *has)
{
    const char *s = wg_node_attr(n, k);
    char *end;
    *v = 0;
    if (has)
        *has = 0;
    if (!s)
        return 0;
    if (!*s || *s < '0' || *s > '9')
        return WG_EPROTO;
    unsigned long long x = strtoull(s, &end, 10);
    if (*end || x > max)
        return WG_EPROTO;
    *v = x;
    if (has)
        *has = 1;
    return 0;
}

/* An attribute that must be a JID when present. */
static int attr_jid_ok(const wg_node_t *n, const char *k, const char **v)
{
    wg_jid_t j;
    *v = wg_node_attr(n, k);
    if (*v && wg_jid_parse(*v, strlen(*v), &j) != 0)
        return WG_EPROTO;
    return 0;
}

/* Bytes content of exactly len bytes (len 0: any non-empty). */
static const uint8_t *child_bytes(const wg_node_t *n, const char *tag, size_t want, size_t *len)
{
    wg_node_t *c = n ? wg_node_child_by_tag(n, tag) : NULL;
    size_t l = 0;
    const uint8_t *p = c && wg_node_content_type(c) == WG_NODE_BYTES ? wg_node_bytes(c, &l) : NULL;
    if (!p || (want && l != want) || (!want && l == 0))
        return NULL;
    if (len)
        *len = l;
    return p;
}

/* ---- outgoing message ----------------------------------------------------------------------- */

static int add_enc(wg_node_t *parent, const char *type, const char *mediatype, const uint8_t *ct,
                   size_t len, uint32_t count)
{
    wg_node_t *e = wg_node_add_new(parent, "enc");
    char c[16];
    snprintf(c, sizeof(c), "%u", count);
    if (!e || wg_node_set_attr(e, "v", "2") || wg_node_set_attr(e, "type", type) ||
        set(e, "count", count ? c : NULL) || set(e, "mediatype", mediatype) ||
        wg_node_set_bytes(e, ct, len))
        return WG_ENOMEM;
    return 0;
}

/* §3.7 resend / §8 peer message: one enc straight under <message>. */
static int build_direct(const wg_stanza_msg_out_t *m, int any_pk, wg_node_t **out)
{
    const wg_stanza_to_t *d = &m->to_devices[0];
    wg_node_t *n;
    char t[24];
    int rv, peer = m->category && strcmp(m->category, "peer") == 0;
    if (m->n_to != 1 || m->skmsg)
        return WG_EINVAL;
    if (!(n = wg_node_new("message")))
        return WG_ENOMEM;
    snprintf(t, sizeof(t), "%lld", (long long)m->t);
    if ((rv = wg_node_set_attr(n, "id", m->id)) || (rv = wg_node_set_attr_jid(n, "to", m->to)) ||
        (rv = wg_node_set_attr(n, "type", m->type)) || (rv = set(n, "t", m->t > 0 ? t : NULL)) ||
        (rv = set_jid(n, "participant", m->participant)) ||
        (rv = set_jid(n, "recipient", m->recipient)) || (rv = set(n, "category", m->category)) ||
        (rv = set(n, "device_fanout", m->no_fanout ? "false" : NULL)) ||
        (rv = set(n, "edit", m->edit)))
        goto out;
    rv = WG_ENOMEM;
    if (peer) {
        wg_node_t *meta = wg_node_add_new(n, "meta");
        if (!meta || wg_node_set_attr(meta, "appdata", "default"))
            goto out;
    }
    if ((rv = add_enc(n, wg_signal_type_name(d->type), m->mediatype, d->ct, d->len, m->count)))
        goto out;
    if (any_pk && !add_bytes(n, "device-identity", m->device_identity, m->device_identity_len))
        rv = WG_ENOMEM;
out:
    return finish(n, rv, out);
}

int wg_stanza_message_build(const wg_stanza_msg_out_t *m, wg_node_t **out)
{
    wg_node_t *n = NULL, *parts;
    int rv = WG_EINVAL, any_pk = 0;
    *out = NULL;
    if (!m || !m->id || !m->to || !m->type || (m->n_to && !m->to_devices) ||
        (!m->n_to && !m->skmsg))
        return WG_EINVAL;
    for (size_t i = 0; i < m->n_to; i++) {
        const wg_stanza_to_t *t = &m->to_devices[i];
        if (!t->jid || !t->ct || !t->len ||
            (t->type != WG_SIGNAL_PKMSG && t->type != WG_SIGNAL_MSG))
            return WG_EINVAL;
        any_pk |= t->type == WG_SIGNAL_PKMSG;
    }
    if (any_pk && (!m->device_identity || !m->device_identity_len))
        return WG_EINVAL; /* §3.5: required with any pkmsg */
    if (m->direct)
        return build_direct(m, any_pk, out);
    if (!(n = wg_node_new("message")))
        return WG_ENOMEM;
    if ((rv = wg_node_set_attr(n, "id", m->id)) || (rv = wg_node_set_attr_jid(n, "to", m->to)) ||
        (rv = wg_node_set_attr(n, "type", m->type)) || (rv = set(n, "edit", m->edit)) ||
        (rv = set(n, "addressing_mode", m->addressing_mode)) || (rv = set(n, "phash", m->phash)))
        goto out;
    if (m->n_to) {
        rv = WG_ENOMEM;
        if (!(parts = wg_node_add_new(n, "participants")))
            goto out;
        for (size_t i = 0; i < m->n_to; i++) {
            const wg_stanza_to_t *t = &m->to_devices[i];
            wg_node_t *to = wg_node_add_new(parts, "to");
            if (!to)
                goto out;
            if ((rv = wg_node_set_attr_jid(to, "jid", t->jid)) != 0 ||
                (rv = add_enc(to, wg_signal_type_name(t->type), m->mediatype, t->ct, t->len, 0)))
                goto out;
        }
    }
    if (m->skmsg && (rv = add_enc(n, "skmsg", m->mediatype, m->skmsg, m->skmsg_len, 0)) != 0)
        goto out;
    rv = 0;
    if (any_pk && !add_bytes(n, "device-identity", m->device_identity, m->device_identity_len))
        rv = WG_ENOMEM;
out:
    return finish(n, rv, out);
}

/* ---- incoming message ----------------------------------------------------------------------- */

static int user_is(const wg_jid_t *j, const char *const *own_users)
{
    for (size_t i = 0; own_users && own_users[i]; i++)
        if (strlen(own_users[i]) == j->user_len && memcmp(own_users[i], j->user, j->user_len) == 0)
            return 1;
    return 0;
}

int wg_stanza_message_parse(const wg_node_t *n, const char *const *own_users,
                            wg_stanza_msg_in_t *out)
{
    wg_jid_t from;
    uint64_t v;
    int has;
    memset(out, 0, sizeof(*out));
    if (!n || !wg_node_tag_is(n, "message"))
        return WG_EPROTO;
    out->id = wg_node_attr(n, "id");
    out->from = wg_node_attr(n, "from");
    if (!out->id || !*out->id || !out->from ||
        wg_jid_parse(out->from, strlen(out->from), &from) != 0 || from.user_len == 0)
        goto bad;
    out->type = wg_node_attr(n, "type");
    out->notify = wg_node_attr(n, "notify");
    out->category = wg_node_attr(n, "category");
    out->addressing_mode = wg_node_attr(n, "addressing_mode");
    out->edit = wg_node_attr(n, "edit");
    out->offline = wg_node_attr(n, "offline") != NULL;
    if (attr_jid_ok(n, "participant", &out->participant) ||
        attr_jid_ok(n, "recipient", &out->recipient) ||
        attr_jid_ok(n, "sender_lid", &out->sender_lid) ||
        attr_jid_ok(n, "sender_pn", &out->sender_pn) ||
        attr_jid_ok(n, "participant_lid", &out->participant_lid) ||
        attr_jid_ok(n, "participant_pn", &out->participant_pn) ||
        attr_uint(n, "t", INT64_MAX, &v, NULL))
        goto bad;
    out->t = (int64_t)v;
    /* §2.1: who is the chat and who the author */
    if (wg_jid_server_is(&from, "g.us") || wg_jid_server_is(&from, "broadcast")) {
        if (!out->participant)
            goto bad;
        out->is_group = 1;
        out->author = out->participant;
        if (strlen(out->from) >= sizeof(out->chat))
            goto bad;
        memcpy(out->chat, out->from, strlen(out->from) + 1);
        wg_jid_t p;
        if (wg_jid_parse(out->participant, strlen(out->participant), &p) == 0 &&
            user_is(&p, own_users))
            out->from_me = 1;
    } else {
        out->author = out->from;
        out->from_me = user_is(&from, own_users);
        if (out->from_me && out->recipient) {
            if (strlen(out->recipient) >= sizeof(out->chat))
                goto bad;
            memcpy(out->chat, out->recipient, strlen(out->recipient) + 1);
        } else {
            int k = snprintf(out->chat, sizeof(out->chat), "%.*s@%.*s", (int)from.user_len,
                             from.user, (int)from.server_len, from.server);
            if (k < 0 || (size_t)k >= sizeof(out->chat))
                goto bad;
        }
    }
    /* §2.2: enc children in document order */
    for (size_t i = 0; i < wg_node_child_count(n); i++) {
        wg_node_t *c = wg_node_child(n, i);
        if (wg_node_tag_is(c, "unavailable")) {
            out->unavailable = 1;
            continue;
        }
        if (!wg_node_tag_is(c, "enc"))
            continue;
        if (out->n_enc == WG_STANZA_MAX_ENC)
            goto bad;
        wg_stanza_enc_t *e = &out->enc[out->n_enc];
        if (attr_uint(c, "v", 9, &v, &has) || !has || (v != 2 && v != 3))
            goto bad;
        e->v = (int)v;
        e->type = wg_signal_type_parse(wg_node_attr(c, "type"));
        if (wg_node_content_type(c) != WG_NODE_BYTES || !(e->ct = wg_node_bytes(c, &e->len)) ||
            e->len == 0)
            goto bad;
        e->mediatype = wg_node_attr(c, "mediatype");
        if (attr_uint(c, "count", UINT32_MAX, &v, NULL))
            goto bad;
        e->count = (uint32_t)v;
        out->n_enc++;
    }
    if (out->n_enc)
        out->unavailable = 0;
    return 0;
bad:
    memset(out, 0, sizeof(*out));
    return WG_EPROTO;
}

/* ---- receipts and acks ---------------------------------------------------------------------- */

int wg_stanza_receipt_build(const wg_stanza_receipt_t *r, wg_node_t **out)
{
    wg_node_t *n = NULL, *list;
    char t[24];
    int rv;
    *out = NULL;
    if (!r || !r->n_ids || !r->ids || !r->ids[0] || !r->to)
        return WG_EINVAL;
    if (!(n = wg_node_new("receipt")))
        return WG_ENOMEM;
    snprintf(t, sizeof(t), "%lld", (long long)r->t);
    if ((rv = wg_node_set_attr(n, "id", r->ids[0])) ||
        (rv = wg_node_set_attr_jid(n, "to", r->to)) ||
        (rv = set_jid(n, "participant", r->participant)) ||
        (rv = set_jid(n, "recipient", r->recipient)) || (rv = set(n, "type", r->type)) ||
        (rv = set(n, "t", r->t > 0 ? t : NULL)))
        goto out;
    if (r->n_ids > 1) {
        rv = WG_ENOMEM;
        if (!(list = wg_node_add_new(n, "list")))
            goto out;
        for (size_t i = 1; i < r->n_ids; i++) {
            wg_node_t *it = wg_node_add_new(list, "item");
            if (!r->ids[i]) {
                rv = WG_EINVAL;
                goto out;
            }
            if (!it || wg_node_set_attr(it, "id", r->ids[i]))
                goto out;
        }
        rv = 0;
    }
out:
    return finish(n, rv, out);
}

/* <type>05</type><identity/>[<key>]<skey> as in the prekey upload (§1.6). */
static int add_keys(wg_node_t *keys, const wg_signal_bundle_t *b, const uint8_t *di, size_t dil)
{
    uint8_t id3[3];
    wg_node_t *k, *sk;
    if (!add_bytes(keys, "type", "\x05", 1) || !add_bytes(keys, "identity", b->identity, 32))
        return WG_ENOMEM;
    be(id3, b->prekey_id, 3);
    if (!(k = wg_node_add_new(keys, "key")) || !add_bytes(k, "id", id3, 3) ||
        !add_bytes(k, "value", b->prekey, 32))
        return WG_ENOMEM;
    be(id3, b->signed_prekey_id, 3);
    if (!(sk = wg_node_add_new(keys, "skey")) || !add_bytes(sk, "id", id3, 3) ||
        !add_bytes(sk, "value", b->signed_prekey, 32) ||
        !add_bytes(sk, "signature", b->signed_prekey_sig, WG_KEYS_SIG_LEN))
        return WG_ENOMEM;
    if (di && dil && !add_bytes(keys, "device-identity", di, dil))
        return WG_ENOMEM;
    return 0;
}

int wg_stanza_retry_build(const wg_stanza_retry_t *r, wg_node_t **out)
{
    wg_node_t *n = NULL, *retry, *keys;
    char num[24];
    uint8_t reg[4];
    int rv;
    *out = NULL;
    if (!r || !r->id || !r->to || (r->keys && !r->keys->has_prekey))
        return WG_EINVAL;
    if (!(n = wg_node_new("receipt")))
        return WG_ENOMEM;
    if ((rv = wg_node_set_attr(n, "id", r->id)) || (rv = wg_node_set_attr_jid(n, "to", r->to)) ||
        (rv = set_jid(n, "participant", r->participant)) ||
        (rv = set_jid(n, "recipient", r->recipient)) ||
        (rv = wg_node_set_attr(n, "type", "retry")) ||
        (rv = set(n, "category", r->peer ? "peer" : NULL)))
        goto out;
    rv = WG_ENOMEM;
    if (!(retry = wg_node_add_new(n, "retry")))
        goto out;
    snprintf(num, sizeof(num), "%u", r->count);
    if (wg_node_set_attr(retry, "count", num) || wg_node_set_attr(retry, "id", r->id))
        goto out;
    snprintf(num, sizeof(num), "%lld", (long long)r->orig_t);
    if (wg_node_set_attr(retry, "t", num) || wg_node_set_attr(retry, "v", "1"))
        goto out;
    be(reg, r->registration_id, 4);
    if (!add_bytes(n, "registration", reg, 4))
        goto out;
    if (r->keys) {
        if (!(keys = wg_node_add_new(n, "keys")) ||
            (rv = add_keys(keys, r->keys, r->device_identity, r->device_identity_len)) != 0)
            goto out;
    }
    rv = 0;
out:
    return finish(n, rv, out);
}

/* Reads <type/>, <identity/>, [<key/>], <skey/> of a user or keys node into b. */
static int read_keys(const wg_node_t *u, wg_signal_bundle_t *b, int need_registration)
{
    const uint8_t *p;
    memset(b, 0, sizeof(*b));
    if (need_registration) {
        if (!(p = child_bytes(u, "registration", 4, NULL)))
            return WG_EPROTO;
        b->registration_id = from_be(p, 4);
    }
    wg_node_t *type = wg_node_child_by_tag(u, "type");
    if (type && (!(p = child_bytes(u, "type", 1, NULL)) || p[0] != 0x05))
        return WG_EPROTO;
    if (!(p = child_bytes(u, "identity", 32, NULL)))
        return WG_EPROTO;
    memcpy(b->identity, p, 32);
    wg_node_t *sk = wg_node_child_by_tag(u, "skey"), *k = wg_node_child_by_tag(u, "key");
    if (!sk || !(p = child_bytes(sk, "id", 3, NULL)))
        return WG_EPROTO;
    b->signed_prekey_id = from_be(p, 3);
    if (!(p = child_bytes(sk, "value", 32, NULL)))
        return WG_EPROTO;
    memcpy(b->signed_prekey, p, 32);
    if (!(p = child_bytes(sk, "signature", 64, NULL)))
        return WG_EPROTO;
    memcpy(b->signed_prekey_sig, p, 64);
    if (k) {
        if (!(p = child_bytes(k, "id", 3, NULL)))
            return WG_EPROTO;
        b->prekey_id = from_be(p, 3);
        if (!(p = child_bytes(k, "value", 32, NULL)))
            return WG_EPROTO;
        memcpy(b->prekey, p, 32);
        b->has_prekey = 1;
    }
    return 0;
}

int wg_stanza_receipt_parse(const wg_node_t *n, wg_stanza_receipt_in_t *out)
{
    uint64_t v;
    memset(out, 0, sizeof(*out));
    if (!n || !wg_node_tag_is(n, "receipt"))
        return WG_EPROTO;
    out->id = wg_node_attr(n, "id");
    out->type = wg_node_attr(n, "type");
    if (!out->id || !*out->id || attr_jid_ok(n, "from", &out->from) || !out->from ||
        attr_jid_ok(n, "participant", &out->participant) ||
        attr_jid_ok(n, "recipient", &out->recipient) || attr_uint(n, "t", INT64_MAX, &v, NULL))
        goto bad;
    out->t = (int64_t)v;
    out->ids[out->n_ids++] = out->id;
    wg_node_t *list = wg_node_child_by_tag(n, "list");
    for (size_t i = 0; list && i < wg_node_child_count(list); i++) {
        wg_node_t *it = wg_node_child(list, i);
        const char *id = wg_node_tag_is(it, "item") ? wg_node_attr(it, "id") : NULL;
        if (!id)
            continue;
        if (out->n_ids == WG_STANZA_MAX_IDS)
            goto bad;
        out->ids[out->n_ids++] = id;
    }
    if (out->type && strcmp(out->type, "retry") == 0) {
        wg_node_t *r = wg_node_child_by_tag(n, "retry");
        const uint8_t *p;
        if (!r || attr_uint(r, "count", UINT32_MAX, &v, NULL))
            goto bad;
        out->retry_count = (uint32_t)v;
        out->retry_id = wg_node_attr(r, "id");
        if (attr_uint(r, "t", INT64_MAX, &v, NULL))
            goto bad;
        out->retry_t = (int64_t)v;
        if (!(p = child_bytes(n, "registration", 4, NULL)))
            goto bad;
        out->registration_id = from_be(p, 4);
        wg_node_t *keys = wg_node_child_by_tag(n, "keys");
        if (keys) {
            if (read_keys(keys, &out->keys, 0) != 0)
                goto bad;
            out->keys.registration_id = out->registration_id;
            out->has_keys = 1;
            out->device_identity =
                child_bytes(keys, "device-identity", 0, &out->device_identity_len);
        }
    }
    return 0;
bad:
    memset(out, 0, sizeof(*out));
    return WG_EPROTO;
}

int wg_stanza_ack_build(const wg_node_t *in, const char *error, wg_node_t **out)
{
    const char *id, *from, *type, *participant, *recipient;
    wg_node_t *n = NULL;
    int rv;
    *out = NULL;
    if (!in)
        return WG_EINVAL;
    id = wg_node_attr(in, "id");
    type = wg_node_attr(in, "type");
    if (!id || attr_jid_ok(in, "from", &from) || !from ||
        attr_jid_ok(in, "participant", &participant) || attr_jid_ok(in, "recipient", &recipient))
        return WG_EPROTO;
    if (!(n = wg_node_new("ack")))
        return WG_ENOMEM;
    /* whatsmeow sendAck: type only for non-message classes */
    if ((rv = wg_node_set_attr(n, "class", wg_node_tag(in))) ||
        (rv = wg_node_set_attr(n, "id", id)) || (rv = wg_node_set_attr_jid(n, "to", from)) ||
        (rv = set_jid(n, "participant", participant)) ||
        (rv = set_jid(n, "recipient", recipient)) ||
        (rv = set(n, "type", wg_node_tag_is(in, "message") ? NULL : type)) ||
        (rv = set(n, "error", error)))
        goto out;
out:
    return finish(n, rv, out);
}

/* ---- usync ---------------------------------------------------------------------------------- */

static wg_node_t *iq_new(const char *xmlns, const char *type)
{
    wg_node_t *n = wg_node_new("iq");
    if (n && (wg_node_set_attr(n, "xmlns", xmlns) || wg_node_set_attr(n, "type", type) ||
              wg_node_set_attr_jid(n, "to", SERVER_JID))) {
        wg_node_free(n);
        return NULL;
    }
    return n;
}

int wg_stanza_usync_build(const char *sid, const char *const *users, size_t n, int with_lid,
                          wg_node_t **out)
{
    wg_node_t *iq, *u, *q, *d, *list;
    int rv = WG_ENOMEM;
    *out = NULL;
    if (!sid || !n || !users)
        return WG_EINVAL;
    if (!(iq = iq_new("usync", "get")))
        return WG_ENOMEM;
    if (!(u = wg_node_add_new(iq, "usync")) || wg_node_set_attr(u, "sid", sid) ||
        wg_node_set_attr(u, "mode", "query") || wg_node_set_attr(u, "context", "message") ||
        wg_node_set_attr(u, "last", "true") || wg_node_set_attr(u, "index", "0") ||
        !(q = wg_node_add_new(u, "query")) || !(d = wg_node_add_new(q, "devices")) ||
        wg_node_set_attr(d, "version", "2") || (with_lid && !wg_node_add_new(q, "lid")) ||
        !(list = wg_node_add_new(u, "list")))
        goto out;
    for (size_t i = 0; i < n; i++) {
        wg_node_t *usr;
        if (!users[i]) {
            rv = WG_EINVAL;
            goto out;
        }
        if (!(usr = wg_node_add_new(list, "user")))
            goto out;
        if ((rv = wg_node_set_attr_jid(usr, "jid", users[i])) != 0)
            goto out;
    }
    rv = 0;
out:
    return finish(iq, rv, out);
}

/* The first descendant with tag along a path of direct children, or n itself if it has it. */
static const wg_node_t *find_list(const wg_node_t *n, const char *outer, const char *inner)
{
    if (wg_node_tag_is(n, inner))
        return n;
    if (wg_node_tag_is(n, "iq")) {
        wg_node_t *c = wg_node_child_by_tag(n, outer);
        if (c)
            n = c;
        else
            return wg_node_child_by_tag(n, inner);
    }
    if (wg_node_tag_is(n, outer))
        return wg_node_child_by_tag(n, inner);
    return NULL;
}

int wg_stanza_usync_parse(const wg_node_t *n, wg_stanza_usync_user_t **users, size_t *count)
{
    const wg_node_t *list;
    wg_stanza_usync_user_t *u = NULL;
    size_t cnt = 0, cap;
    uint64_t v;
    int has;
    *users = NULL;
    *count = 0;
    if (!n || !(list = find_list(n, "usync", "list")))
        return WG_EPROTO;
    cap = wg_node_child_count(list);
    if (!(u = calloc(cap ? cap : 1, sizeof(*u))))
        return WG_ENOMEM;
    for (size_t i = 0; i < cap; i++) {
        wg_node_t *un = wg_node_child(list, i);
        wg_stanza_usync_user_t *x = &u[cnt];
        if (!wg_node_tag_is(un, "user"))
            continue;
        if (attr_jid_ok(un, "jid", &x->jid) || !x->jid)
            goto bad;
        wg_node_t *lid = wg_node_child_by_tag(un, "lid");
        if (lid && attr_jid_ok(lid, "val", &x->lid))
            goto bad;
        wg_node_t *devs = wg_node_child_by_tag(un, "devices");
        if (!devs) {
            x->error = wg_node_child_by_tag(un, "error") != NULL;
            cnt++;
            continue;
        }
        if (wg_node_child_by_tag(devs, "error"))
            x->error = 1;
        wg_node_t *dl = wg_node_child_by_tag(devs, "device-list");
        for (size_t k = 0; dl && k < wg_node_child_count(dl); k++) {
            wg_node_t *d = wg_node_child(dl, k);
            if (!wg_node_tag_is(d, "device"))
                continue;
            if (x->n_devices == WG_STANZA_MAX_DEVICES)
                goto bad;
            wg_stanza_device_t *dv = &x->devices[x->n_devices];
            if (attr_uint(d, "id", 0xFFFF, &v, &has) || !has)
                goto bad;
            dv->id = (uint32_t)v;
            if (attr_uint(d, "key-index", UINT32_MAX, &v, &dv->has_key_index))
                goto bad;
            dv->key_index = (uint32_t)v;
            const char *h = wg_node_attr(d, "is_hosted");
            dv->hosted = h && strcmp(h, "true") == 0;
            x->n_devices++;
        }
        cnt++;
    }
    *users = u;
    *count = cnt;
    return 0;
bad:
    free(u);
    return WG_EPROTO;
}

int wg_stanza_device_jid(const char *user_jid, const wg_stanza_device_t *d, char *buf, size_t cap)
{
    wg_jid_t j;
    const char *server;
    int n;
    if (!user_jid || !d || wg_jid_parse(user_jid, strlen(user_jid), &j) != 0 || !j.user_len)
        return WG_EINVAL;
    int lid = wg_jid_server_is(&j, "lid") || wg_jid_server_is(&j, "hosted.lid");
    if (!lid && !wg_jid_server_is(&j, SERVER) && !wg_jid_server_is(&j, "hosted"))
        return WG_EINVAL;
    if (d->hosted || d->id == 99)
        server = lid ? "hosted.lid" : "hosted";
    else
        server = lid ? "lid" : SERVER;
    if (d->id == 0)
        n = snprintf(buf, cap, "%.*s@%s", (int)j.user_len, j.user, server);
    else
        n = snprintf(buf, cap, "%.*s:%u@%s", (int)j.user_len, j.user, d->id, server);
    return n < 0 || (size_t)n >= cap ? WG_ETOOBIG : 0;
}

/* ---- prekey bundles ------------------------------------------------------------------------- */

int wg_stanza_prekey_fetch_build(const char *const *device_jids, size_t n, int reason_identity,
                                 wg_node_t **out)
{
    wg_node_t *iq, *key;
    int rv = WG_ENOMEM;
    *out = NULL;
    if (!device_jids || !n)
        return WG_EINVAL;
    if (!(iq = iq_new("encrypt", "get")))
        return WG_ENOMEM;
    if (!(key = wg_node_add_new(iq, "key")))
        goto out;
    for (size_t i = 0; i < n; i++) {
        wg_node_t *u = wg_node_add_new(key, "user");
        if (!u)
            goto out;
        if (!device_jids[i]) {
            rv = WG_EINVAL;
            goto out;
        }
        if ((rv = wg_node_set_attr_jid(u, "jid", device_jids[i])) != 0 ||
            (rv = set(u, "reason", reason_identity ? "identity" : NULL)) != 0)
            goto out;
        rv = WG_ENOMEM;
    }
    rv = 0;
out:
    return finish(iq, rv, out);
}

int wg_stanza_prekey_fetch_parse(const wg_node_t *n, wg_stanza_bundle_t **bundles, size_t *count)
{
    const wg_node_t *list;
    wg_stanza_bundle_t *b;
    size_t cnt = 0, cap;
    *bundles = NULL;
    *count = 0;
    if (!n)
        return WG_EPROTO;
    list = wg_node_tag_is(n, "list") ? n
           : wg_node_tag_is(n, "iq") ? wg_node_child_by_tag(n, "list")
                                     : NULL;
    if (!list)
        return WG_EPROTO;
    cap = wg_node_child_count(list);
    if (!(b = calloc(cap ? cap : 1, sizeof(*b))))
        return WG_ENOMEM;
    for (size_t i = 0; i < cap; i++) {
        wg_node_t *u = wg_node_child(list, i);
        wg_stanza_bundle_t *x = &b[cnt];
        if (!wg_node_tag_is(u, "user"))
            continue;
        if (attr_jid_ok(u, "jid", &x->jid) || !x->jid)
            goto bad;
        if (wg_node_child_by_tag(u, "error")) {
            x->error = 1;
            cnt++;
            continue;
        }
        const uint8_t *reg = child_bytes(u, "registration", 4, NULL);
        wg_node_t *keys = wg_node_child_by_tag(u, "keys");
        if (!reg || read_keys(keys ? keys : u, &x->bundle, 0) != 0)
            goto bad;
        x->bundle.registration_id = from_be(reg, 4);
        cnt++;
    }
    *bundles = b;
    *count = cnt;
    return 0;
bad:
    free(b);
    return WG_EPROTO;
}

/* ---- encrypt notifications ------------------------------------------------------------------ */

int wg_stanza_encrypt_note_parse(const wg_node_t *n, wg_stanza_encrypt_note_t *out)
{
    const char *type;
    uint64_t v;
    memset(out, 0, sizeof(*out));
    if (!n || !wg_node_tag_is(n, "notification") || !(type = wg_node_attr(n, "type")) ||
        strcmp(type, "encrypt") != 0 || attr_jid_ok(n, "from", &out->from) || !out->from)
        goto bad;
    wg_node_t *c = wg_node_child_by_tag(n, "count");
    if (c) {
        if (attr_uint(c, "value", UINT32_MAX, &v, &out->has_count) || !out->has_count)
            goto bad;
        out->count = (uint32_t)v;
    }
    out->identity = wg_node_child_by_tag(n, "identity") != NULL;
    if (!out->has_count && !out->identity)
        goto bad;
    return 0;
bad:
    memset(out, 0, sizeof(*out));
    return WG_EPROTO;
}

/* ---- presence, chat state, calls ------------------------------------------------------------ */

int wg_stanza_presence_build(int available, const char *name, wg_node_t **out)
{
    wg_node_t *n = wg_node_new("presence");
    int rv;
    *out = NULL;
    if (!n)
        return WG_ENOMEM;
    rv = wg_node_set_attr(n, "type", available ? "available" : "unavailable");
    if (rv == 0)
        rv = set(n, "name", name);
    return finish(n, rv, out);
}

int wg_stanza_presence_subscribe_build(const char *to, wg_node_t **out)
{
    wg_node_t *n;
    int rv;
    *out = NULL;
    if (!to)
        return WG_EINVAL;
    if (!(n = wg_node_new("presence")))
        return WG_ENOMEM;
    if ((rv = wg_node_set_attr(n, "type", "subscribe")) == 0)
        rv = wg_node_set_attr_jid(n, "to", to);
    return finish(n, rv, out);
}

int wg_stanza_presence_parse(const wg_node_t *n, wg_stanza_presence_in_t *out)
{
    const char *type;
    memset(out, 0, sizeof(*out));
    if (!n || !wg_node_tag_is(n, "presence") || attr_jid_ok(n, "from", &out->from) || !out->from)
        goto bad;
    type = wg_node_attr(n, "type");
    if (type && strcmp(type, "available") != 0 && strcmp(type, "unavailable") != 0)
        goto bad;
    out->available = !type || strcmp(type, "available") == 0;
    out->last = wg_node_attr(n, "last");
    return 0;
bad:
    memset(out, 0, sizeof(*out));
    return WG_EPROTO;
}

int wg_stanza_chatstate_build(const char *to, const char *from, int composing, int audio,
                              wg_node_t **out)
{
    wg_node_t *n, *c;
    int rv;
    *out = NULL;
    if (!to)
        return WG_EINVAL;
    if (!(n = wg_node_new("chatstate")))
        return WG_ENOMEM;
    if ((rv = set_jid(n, "from", from)) || (rv = wg_node_set_attr_jid(n, "to", to)))
        goto out;
    rv = WG_ENOMEM;
    if (!(c = wg_node_add_new(n, composing ? "composing" : "paused")))
        goto out;
    rv = composing && audio ? wg_node_set_attr(c, "media", "audio") : 0;
out:
    return finish(n, rv, out);
}

int wg_stanza_chatstate_parse(const wg_node_t *n, wg_stanza_chatstate_in_t *out)
{
    memset(out, 0, sizeof(*out));
    if (!n || !wg_node_tag_is(n, "chatstate") || attr_jid_ok(n, "from", &out->from) || !out->from ||
        attr_jid_ok(n, "participant", &out->participant) || wg_node_child_count(n) < 1)
        goto bad;
    wg_node_t *c = wg_node_child(n, 0);
    if (wg_node_tag_is(c, "composing")) {
        const char *media = wg_node_attr(c, "media");
        out->composing = 1;
        out->audio = media && strcmp(media, "audio") == 0;
    } else if (!wg_node_tag_is(c, "paused"))
        goto bad;
    return 0;
bad:
    memset(out, 0, sizeof(*out));
    return WG_EPROTO;
}

int wg_stanza_call_parse(const wg_node_t *n, wg_stanza_call_t *out)
{
    uint64_t v;
    memset(out, 0, sizeof(*out));
    if (!n || !wg_node_tag_is(n, "call") || attr_jid_ok(n, "from", &out->from) || !out->from ||
        !(out->id = wg_node_attr(n, "id")) || attr_uint(n, "t", INT64_MAX, &v, NULL) ||
        wg_node_child_count(n) < 1)
        goto bad;
    out->t = (int64_t)v;
    wg_node_t *c = wg_node_child(n, 0);
    out->kind = wg_node_tag(c);
    out->call_id = wg_node_attr(c, "call-id");
    if (!out->call_id || !*out->call_id || attr_jid_ok(c, "call-creator", &out->call_creator) ||
        !out->call_creator || attr_jid_ok(c, "caller_pn", &out->caller_pn) ||
        attr_jid_ok(c, "group-jid", &out->group_jid))
        goto bad;
    out->video = wg_node_child_by_tag(c, "video") != NULL;
    return 0;
bad:
    memset(out, 0, sizeof(*out));
    return WG_EPROTO;
}

int wg_stanza_call_reject_build(const char *id, const char *own_jid, const char *caller,
                                const char *call_id, const char *call_creator, wg_node_t **out)
{
    wg_node_t *n, *r;
    int rv;
    *out = NULL;
    if (!own_jid || !caller || !call_id || !call_creator)
        return WG_EINVAL;
    if (!(n = wg_node_new("call")))
        return WG_ENOMEM;
    if ((rv = set(n, "id", id)) || (rv = wg_node_set_attr_jid(n, "from", own_jid)) ||
        (rv = wg_node_set_attr_jid(n, "to", caller)))
        goto out;
    rv = WG_ENOMEM;
    if (!(r = wg_node_add_new(n, "reject")))
        goto out;
    if ((rv = wg_node_set_attr(r, "call-id", call_id)) ||
        (rv = wg_node_set_attr_jid(r, "call-creator", call_creator)) ||
        (rv = wg_node_set_attr(r, "count", "0")))
        goto out;
out:
    return finish(n, rv, out);
}
