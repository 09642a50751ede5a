/* recv.c - see recv.h. */
#include "wa/recv.h"
#include "util/err.h"
#include "util/log.h"
#include "wa/msg.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void wg_recv_user_of(const char *jid, char *buf, size_t cap)
{
    size_t n = 0;
    if (cap == 0)
        return;
    if (jid)
        while (jid[n] && jid[n] != ':' && jid[n] != '@' && n + 1 < cap)
            n++;
    if (jid)
        memcpy(buf, jid, n);
    buf[n] = 0;
}

/* "user@server" of a device JID ("user:d@server" or "user_a:d@server"). */
static void bare_of(const char *jid, char *buf, size_t cap)
{
    const char *at = jid ? strchr(jid, '@') : NULL;
    char user[WG_STANZA_JID_MAX];
    wg_recv_user_of(jid, user, sizeof(user));
    snprintf(buf, cap, "%s%s", user, at ? at : "");
}

void wg_recv_result_dispose(wg_recv_result_t *r)
{
    if (!r)
        return;
    free(r->payload);
    r->payload = NULL;
}

static const char *err_code(int rv)
{
    switch (rv) {
    case WG_ENOTFOUND:
        return "no_session";
    case WG_ECRYPTO:
        return "bad_signature";
    case WG_EPROTO:
        return "decrypt_failed";
    default:
        return "decrypt_failed";
    }
}

static int set_payload(wg_recv_result_t *r, json_t *o)
{
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!s)
        return WG_ENOMEM;
    r->payload = s;
    return 0;
}

static json_t *base_json(const wg_stanza_msg_in_t *in, const char *chat)
{
    char from[WG_STANZA_JID_MAX];
    bare_of(in->author, from, sizeof(from));
    json_t *o = json_object();
    if (!o)
        return NULL;
    json_object_set_new(o, "id", json_string(in->id));
    json_object_set_new(o, "chat", json_string(chat));
    json_object_set_new(o, "from", json_string(from));
    json_object_set_new(o, "fromMe", json_boolean(in->from_me));
    json_object_set_new(o, "isGroup", json_boolean(in->is_group));
    json_object_set_new(o, "timestamp", json_integer((json_int_t)in->t));
    if (in->notify && *in->notify)
        json_object_set_new(o, "pushName", json_string(in->notify));
    if (in->offline)
        json_object_set_new(o, "offline", json_true());
    return o;
}

/* One enc: 0 and *m (decoded message, may be NULL for a duplicate), or the error. */
static int decrypt_one(const wg_recv_env_t *env, const wg_stanza_msg_in_t *in,
                       const wg_stanza_enc_t *e, const wg_signal_addr_t *author, int *dup,
                       wg_msg_t **m)
{
    uint8_t *pt = NULL;
    size_t pt_len = 0, len = 0;
    int rv;
    *m = NULL;
    *dup = 0;
    if (e->type == WG_SIGNAL_SKMSG) {
        if (!in->is_group)
            return WG_EPROTO;
        rv = wg_signal_group_decrypt(env->sig, in->chat, author, e->ct, e->len, &pt, &pt_len);
    } else
        rv = wg_signal_decrypt(env->sig, author, (wg_signal_type_t)e->type, e->ct, e->len, &pt,
                               &pt_len);
    if (rv == WG_EEXIST) {
        *dup = 1;
        return 0;
    }
    if (rv)
        return rv;
    if ((rv = wg_msg_unpad(pt, pt_len, &len)) == 0)
        rv = wg_msg_decode(pt, len, m);
    free(pt);
    if (rv == 0 && (*m)->skdm.p && (*m)->skdm.len && in->is_group) {
        /* §2.6.2: keyed by (chat from the stanza, sender), as whatsmeow */
        int r2 = wg_signal_group_process(env->sig, in->chat, author, (*m)->skdm.p, (*m)->skdm.len);
        if (r2 == WG_ENOMEM || r2 == WG_ESTORE) {
            wg_msg_free(*m);
            *m = NULL;
            return r2;
        }
        if (r2)
            wg_log(WG_LOG_WARN, "recv", "id=%s sender key distribution refused err=%s", in->id,
                   wg_strerror(r2));
    }
    return rv;
}

int wg_recv_message(const wg_recv_env_t *env, const wg_node_t *n, wg_recv_result_t *out)
{
    char u1[WG_STANZA_JID_MAX], u2[WG_STANZA_JID_MAX];
    const char *own[3] = {NULL, NULL, NULL};
    wg_stanza_msg_in_t *in = &out->in;
    wg_signal_addr_t author;
    wg_msg_t *shown = NULL;
    int rv, fail = 0, any_dup = 0;
    memset(out, 0, sizeof(*out));
    out->reply = WG_RECV_RECEIPT;
    wg_recv_user_of(env->own_jid, u1, sizeof(u1));
    wg_recv_user_of(env->own_lid, u2, sizeof(u2));
    size_t k = 0;
    if (*u1)
        own[k++] = u1;
    if (*u2)
        own[k++] = u2;
    if (wg_stanza_message_parse(n, own, in) != 0) {
        out->reply = WG_RECV_NACK;
        out->nack_code = 487;
        return 0;
    }
    snprintf(out->key, sizeof(out->key), "msg:%s:%s", in->chat, in->id);
    if (in->category && !strcmp(in->category, "peer"))
        out->receipt_type = "peer_msg";
    else if (in->from_me)
        out->receipt_type = "sender";
    if (in->n_enc == 0) {
        if (!in->unavailable) {
            out->reply = WG_RECV_NACK;
            out->nack_code = 488;
        }
        return 0;
    }
    if (wg_signal_addr_from_jid(in->author, &author) != 0) {
        out->reply = WG_RECV_NACK;
        out->nack_code = 487;
        return 0;
    }
    for (size_t i = 0; i < in->n_enc; i++) {
        const wg_stanza_enc_t *e = &in->enc[i];
        wg_msg_t *m = NULL;
        int dup = 0;
        if (e->type < 0 || e->v != 2)
            continue; /* msmsg, v=3, ...: not for us */
        rv = decrypt_one(env, in, e, &author, &dup, &m);
        if (rv == WG_ENOMEM || rv == WG_ESTORE) {
            wg_msg_free(shown);
            return rv;
        }
        if (rv) {
            wg_log(WG_LOG_WARN, "recv", "id=%s from=%s enc=%s err=%s", in->id, in->author,
                   wg_signal_type_name((wg_signal_type_t)e->type), wg_strerror(rv));
            if (!fail)
                fail = rv;
            if (e->type == WG_SIGNAL_SKMSG && rv == WG_ENOTFOUND)
                out->group_key_missing = 1;
            continue;
        }
        any_dup |= dup;
        if (m && (!shown || (shown->kind == WG_MSG_EMPTY && m->kind != WG_MSG_EMPTY))) {
            wg_msg_free(shown);
            shown = m;
        } else
            wg_msg_free(m);
    }
    if (fail) {
        /* an event with the error, keyed apart so a successful resend still gets its own */
        json_t *o = base_json(in, in->chat), *err = json_object();
        wg_msg_free(shown);
        out->reply = WG_RECV_RETRY;
        if (in->is_group && env->groups_ignore) {
            json_decref(o);
            json_decref(err);
            return 0;
        }
        if (!o || !err) {
            json_decref(o);
            json_decref(err);
            return WG_ENOMEM;
        }
        json_object_set_new(err, "code", json_string(err_code(fail)));
        json_object_set_new(err, "detail", json_string(wg_strerror(fail)));
        json_object_set_new(o, "error", err);
        snprintf(out->key, sizeof(out->key), "msgerr:%s:%s", in->chat, in->id);
        out->event = in->from_me ? "message.sent" : "message.received";
        return set_payload(out, o);
    }
    (void)any_dup; /* a re-delivery we already decrypted: normal receipt, no new event */
    if (!shown || shown->kind == WG_MSG_EMPTY || shown->kind == WG_MSG_PROTOCOL ||
        (in->is_group && env->groups_ignore)) {
        wg_msg_free(shown);
        return 0;
    }
    const char *chat = shown->dsm_destination ? shown->dsm_destination : in->chat;
    char chat_bare[WG_STANZA_JID_MAX];
    if (shown->dsm_destination) {
        bare_of(shown->dsm_destination, chat_bare, sizeof(chat_bare));
        chat = chat_bare;
    }
    json_t *o = base_json(in, chat), *mj = wg_msg_to_json(shown);
    out->has_text = shown->kind == WG_MSG_TEXT;
    wg_msg_free(shown);
    if (!o || !mj) {
        json_decref(o);
        json_decref(mj);
        return WG_ENOMEM;
    }
    json_object_set_new(o, "message", mj);
    out->event = in->from_me ? "message.sent" : "message.received";
    return set_payload(out, o);
}
