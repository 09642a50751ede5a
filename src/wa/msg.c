/* msg.c - see msg.h. The decoder walks the unpacked protobuf-c tree and points into it; the
 * builders fill stack-allocated protobuf-c structs (strings cast from const: protobuf-c only
 * reads them while packing) and pack them with wg_pb_pack. */
#include "wa/msg.h"
#include "util/codec.h"
#include "util/err.h"
#include "wa/keys.h"
#include "wa/pb.h"
#include "wa/proto/message.pb-c.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- padding ------------------------------------------------------------------------------- */

int wg_msg_pad(const uint8_t *p, size_t len, unsigned n, uint8_t **out, size_t *out_len)
{
    uint8_t r;
    *out = NULL;
    *out_len = 0;
    if (n > 15 || (!p && len))
        return WG_EINVAL;
    if (n == 0) {
        if (wg_random_bytes(&r, 1) != 0)
            return WG_EIO;
        n = r & 0x0F; /* whatsmeow padMessage: 0 becomes 15 */
        if (n == 0)
            n = 15;
    }
    if (!(*out = malloc(len + n)))
        return WG_ENOMEM;
    if (len)
        memcpy(*out, p, len);
    memset(*out + len, (int)n, n);
    *out_len = len + n;
    return 0;
}

int wg_msg_unpad(const uint8_t *p, size_t len, size_t *out_len)
{
    if (!p || len == 0)
        return WG_EPROTO;
    size_t n = p[len - 1];
    if (n == 0 || n > len)
        return WG_EPROTO;
    for (size_t i = len - n; i < len; i++)
        if (p[i] != n)
            return WG_EPROTO;
    *out_len = len - n;
    return 0;
}

/* ---- ids ----------------------------------------------------------------------------------- */

int wg_msg_id(char out[WG_MSG_ID_LEN + 1], int64_t now_s, const char *own_user,
              const uint8_t *random16)
{
    static const char hex[] = "0123456789ABCDEF";
    uint8_t buf[8 + 128 + 5 + 16], rnd[16], md[WG_KEYS_SHA256_LEN];
    size_t ul = own_user ? strlen(own_user) : 0, n = 0;
    if (ul > 128)
        return WG_EINVAL;
    if (!random16) {
        if (wg_random_bytes(rnd, sizeof(rnd)) != 0)
            return WG_EIO;
        random16 = rnd;
    }
    for (int i = 7; i >= 0; i--)
        buf[n++] = (uint8_t)((uint64_t)now_s >> (8 * i));
    memcpy(buf + n, own_user, ul);
    n += ul;
    memcpy(buf + n, "@c.us", 5);
    n += 5;
    memcpy(buf + n, random16, 16);
    n += 16;
    if (wg_keys_sha256(md, buf, n, NULL, 0) != 0)
        return WG_EIO;
    memcpy(out, "3EB0", 4);
    for (int i = 0; i < 9; i++) {
        out[4 + 2 * i] = hex[md[i] >> 4];
        out[5 + 2 * i] = hex[md[i] & 15];
    }
    out[WG_MSG_ID_LEN] = 0;
    return 0;
}

/* ---- decoding ------------------------------------------------------------------------------ */

static wg_msg_bytes_t bytes_of(protobuf_c_boolean has, ProtobufCBinaryData b)
{
    wg_msg_bytes_t r = {NULL, 0};
    if (has) {
        r.p = b.data;
        r.len = b.len;
    }
    return r;
}

static void take_context(wg_msg_t *m, const Wa__ContextInfo *ci)
{
    if (!ci)
        return;
    m->quoted_id = ci->stanza_id;
    m->quoted_participant = ci->participant;
    m->n_mentions = ci->n_mentioned_jid;
    m->mentions = ci->mentioned_jid;
}

static void take_key(wg_msg_t *m, const Wa__MessageKey *k)
{
    if (!k)
        return;
    m->target.remote_jid = k->remote_jid;
    m->target.id = k->id;
    m->target.participant = k->participant;
    m->target.from_me = k->has_from_me && k->from_me;
}

static const char *edited_text(const Wa__Message *e)
{
    if (!e)
        return NULL;
    if (e->conversation)
        return e->conversation;
    if (e->extended_text_message)
        return e->extended_text_message->text;
    if (e->image_message)
        return e->image_message->caption;
    if (e->video_message)
        return e->video_message->caption;
    if (e->document_message)
        return e->document_message->caption;
    return NULL;
}

/* The message inside the FutureProof wrappers (§2.6.4), marking which ones were seen. Depth is
 * bounded by wg_pb_unpack. */
static const Wa__Message *unwrap(wg_msg_t *m, const Wa__Message *x)
{
    for (;;) {
        const Wa__Message__FutureProofMessage *w = NULL;
        if (x->ephemeral_message && x->ephemeral_message->message) {
            w = x->ephemeral_message;
            m->ephemeral = 1;
        } else if (x->view_once_message && x->view_once_message->message)
            w = x->view_once_message;
        else if (x->view_once_message_v2 && x->view_once_message_v2->message)
            w = x->view_once_message_v2;
        else if (x->view_once_message_v2_extension && x->view_once_message_v2_extension->message)
            w = x->view_once_message_v2_extension;
        else if (x->document_with_caption_message && x->document_with_caption_message->message)
            w = x->document_with_caption_message;
        else if (x->edited_message && x->edited_message->message)
            w = x->edited_message;
        if (!w)
            return x;
        if (w == x->view_once_message || w == x->view_once_message_v2 ||
            w == x->view_once_message_v2_extension)
            m->view_once = 1;
        x = w->message;
    }
}

static void classify(wg_msg_t *m, const Wa__Message *x)
{
    wg_msg_media_t *md = &m->media;
    m->protocol_type = -1;
    if (x->conversation) {
        m->kind = WG_MSG_TEXT;
        m->text = x->conversation;
    } else if (x->extended_text_message) {
        const Wa__Message__ExtendedTextMessage *e = x->extended_text_message;
        m->kind = WG_MSG_TEXT;
        m->text = e->text ? e->text : "";
        take_context(m, e->context_info);
    } else if (x->image_message) {
        const Wa__Message__ImageMessage *i = x->image_message;
        m->kind = WG_MSG_IMAGE;
        md->url = i->url, md->mimetype = i->mimetype, md->caption = i->caption;
        md->direct_path = i->direct_path;
        md->media_key = bytes_of(i->has_media_key, i->media_key);
        md->file_sha256 = bytes_of(i->has_file_sha256, i->file_sha256);
        md->file_enc_sha256 = bytes_of(i->has_file_enc_sha256, i->file_enc_sha256);
        md->file_length = i->has_file_length ? i->file_length : 0;
        md->width = i->has_width ? i->width : 0;
        md->height = i->has_height ? i->height : 0;
        md->view_once = i->has_view_once && i->view_once;
        take_context(m, i->context_info);
    } else if (x->video_message || x->ptv_message) {
        const Wa__Message__VideoMessage *v = x->video_message ? x->video_message : x->ptv_message;
        m->kind = WG_MSG_VIDEO;
        md->url = v->url, md->mimetype = v->mimetype, md->caption = v->caption;
        md->direct_path = v->direct_path;
        md->media_key = bytes_of(v->has_media_key, v->media_key);
        md->file_sha256 = bytes_of(v->has_file_sha256, v->file_sha256);
        md->file_enc_sha256 = bytes_of(v->has_file_enc_sha256, v->file_enc_sha256);
        md->file_length = v->has_file_length ? v->file_length : 0;
        md->seconds = v->has_seconds ? v->seconds : 0;
        md->width = v->has_width ? v->width : 0;
        md->height = v->has_height ? v->height : 0;
        md->gif = v->has_gif_playback && v->gif_playback;
        md->view_once = v->has_view_once && v->view_once;
        take_context(m, v->context_info);
    } else if (x->audio_message) {
        const Wa__Message__AudioMessage *a = x->audio_message;
        m->kind = WG_MSG_AUDIO;
        md->url = a->url, md->mimetype = a->mimetype, md->direct_path = a->direct_path;
        md->media_key = bytes_of(a->has_media_key, a->media_key);
        md->file_sha256 = bytes_of(a->has_file_sha256, a->file_sha256);
        md->file_enc_sha256 = bytes_of(a->has_file_enc_sha256, a->file_enc_sha256);
        md->file_length = a->has_file_length ? a->file_length : 0;
        md->seconds = a->has_seconds ? a->seconds : 0;
        md->ptt = a->has_ptt && a->ptt;
        md->view_once = a->has_view_once && a->view_once;
        take_context(m, a->context_info);
    } else if (x->document_message) {
        const Wa__Message__DocumentMessage *d = x->document_message;
        m->kind = WG_MSG_DOCUMENT;
        md->url = d->url, md->mimetype = d->mimetype, md->caption = d->caption;
        md->direct_path = d->direct_path, md->file_name = d->file_name;
        md->media_key = bytes_of(d->has_media_key, d->media_key);
        md->file_sha256 = bytes_of(d->has_file_sha256, d->file_sha256);
        md->file_enc_sha256 = bytes_of(d->has_file_enc_sha256, d->file_enc_sha256);
        md->file_length = d->has_file_length ? d->file_length : 0;
        take_context(m, d->context_info);
    } else if (x->sticker_message) {
        const Wa__Message__StickerMessage *s = x->sticker_message;
        m->kind = WG_MSG_STICKER;
        md->url = s->url, md->mimetype = s->mimetype, md->direct_path = s->direct_path;
        md->media_key = bytes_of(s->has_media_key, s->media_key);
        md->file_sha256 = bytes_of(s->has_file_sha256, s->file_sha256);
        md->file_enc_sha256 = bytes_of(s->has_file_enc_sha256, s->file_enc_sha256);
        md->file_length = s->has_file_length ? s->file_length : 0;
        md->width = s->has_width ? s->width : 0;
        md->height = s->has_height ? s->height : 0;
        md->animated = s->has_is_animated && s->is_animated;
        take_context(m, s->context_info);
    } else if (x->location_message) {
        const Wa__Message__LocationMessage *l = x->location_message;
        m->kind = WG_MSG_LOCATION;
        m->latitude = l->has_degrees_latitude ? l->degrees_latitude : 0;
        m->longitude = l->has_degrees_longitude ? l->degrees_longitude : 0;
        m->location_name = l->name;
        m->location_address = l->address;
        take_context(m, l->context_info);
    } else if (x->contact_message) {
        m->kind = WG_MSG_CONTACT;
        m->contact_name = x->contact_message->display_name;
        m->vcard = x->contact_message->vcard;
        take_context(m, x->contact_message->context_info);
    } else if (x->reaction_message) {
        m->kind = WG_MSG_REACTION;
        m->text = x->reaction_message->text ? x->reaction_message->text : "";
        take_key(m, x->reaction_message->key);
    } else if (x->protocol_message) {
        const Wa__Message__ProtocolMessage *p = x->protocol_message;
        m->protocol_type = p->has_type ? (int)p->type : 0; /* proto2 default: REVOKE */
        take_key(m, p->key);
        if (m->protocol_type == WA__MESSAGE__PROTOCOL_MESSAGE__TYPE__REVOKE)
            m->kind = WG_MSG_REVOKE;
        else if (m->protocol_type == WA__MESSAGE__PROTOCOL_MESSAGE__TYPE__MESSAGE_EDIT) {
            m->kind = WG_MSG_EDIT;
            m->text = edited_text(p->edited_message);
        } else
            m->kind = WG_MSG_PROTOCOL;
    } else if (x->poll_creation_message || x->poll_creation_message_v2 ||
               x->poll_creation_message_v3) {
        const Wa__Message__PollCreationMessage *p =
            x->poll_creation_message      ? x->poll_creation_message
            : x->poll_creation_message_v2 ? x->poll_creation_message_v2
                                          : x->poll_creation_message_v3;
        m->kind = WG_MSG_POLL;
        m->text = p->name;
    } else if (x->sender_key_distribution_message || x->message_context_info ||
               x->fast_ratchet_key_sender_key_distribution_message) {
        /* nothing else known: a key-only message (§4.2) unless unknown fields came too */
        m->kind = x->base.n_unknown_fields ? WG_MSG_UNKNOWN : WG_MSG_EMPTY;
    } else
        m->kind = x->base.n_unknown_fields ? WG_MSG_UNKNOWN : WG_MSG_EMPTY;
}

static void find_skdm(wg_msg_t *m, const Wa__Message *x)
{
    const Wa__Message__SenderKeyDistributionMessage *k = x->sender_key_distribution_message;
    if (m->skdm.p || !k || !k->has_axolotl_sender_key_distribution_message)
        return;
    m->skdm_group = k->group_id;
    m->skdm = bytes_of(1, k->axolotl_sender_key_distribution_message);
}

int wg_msg_decode(const uint8_t *p, size_t len, wg_msg_t **out)
{
    ProtobufCMessage *pb = NULL;
    wg_msg_t *m;
    int rv;
    *out = NULL;
    if ((rv = wg_pb_unpack(&wa__message__descriptor, p, len, &pb)) != 0)
        return rv == WG_EINVAL ? WG_EPROTO : rv;
    if (!(m = calloc(1, sizeof(*m)))) {
        protobuf_c_message_free_unpacked(pb, NULL);
        return WG_ENOMEM;
    }
    m->pb_ = pb;
    const Wa__Message *x = (const Wa__Message *)pb;
    /* §2.6.1: a copy of what we sent from another device */
    if (x->device_sent_message && x->device_sent_message->message) {
        m->dsm_destination =
            x->device_sent_message->destination_jid ? x->device_sent_message->destination_jid : "";
        find_skdm(m, x->device_sent_message->message);
        find_skdm(m, x);
        x = x->device_sent_message->message;
    } else
        find_skdm(m, x);
    x = unwrap(m, x);
    find_skdm(m, x);
    classify(m, x);
    *out = m;
    return 0;
}

void wg_msg_free(wg_msg_t *m)
{
    if (!m)
        return;
    protobuf_c_message_free_unpacked(m->pb_, NULL);
    free(m);
}

const char *wg_msg_kind_name(wg_msg_kind_t k)
{
    static const char *const names[] = {
        [WG_MSG_EMPTY] = "empty",       [WG_MSG_TEXT] = "text",
        [WG_MSG_IMAGE] = "image",       [WG_MSG_VIDEO] = "video",
        [WG_MSG_AUDIO] = "audio",       [WG_MSG_DOCUMENT] = "document",
        [WG_MSG_STICKER] = "sticker",   [WG_MSG_LOCATION] = "location",
        [WG_MSG_CONTACT] = "contact",   [WG_MSG_REACTION] = "reaction",
        [WG_MSG_REVOKE] = "revoke",     [WG_MSG_EDIT] = "edit",
        [WG_MSG_PROTOCOL] = "protocol", [WG_MSG_POLL] = "poll",
        [WG_MSG_UNKNOWN] = "unknown",
    };
    return (unsigned)k < sizeof(names) / sizeof(names[0]) ? names[k] : "unknown";
}

/* ---- JSON ---------------------------------------------------------------------------------- */

/* Sets key to a string if s is non-NULL; 0 or -1. */
static int jstr(json_t *o, const char *key, const char *s)
{
    if (!s)
        return 0;
    /* jansson refuses invalid UTF-8 from a peer: keep the event, drop the field */
    json_t *v = json_string(s);
    return v ? json_object_set_new(o, key, v) : 0;
}

static int jb64(json_t *o, const char *key, wg_msg_bytes_t b)
{
    if (!b.p)
        return 0;
    char *s = wg_base64_encode(b.p, b.len);
    if (!s)
        return -1;
    int rv = json_object_set_new(o, key, json_string(s));
    free(s);
    return rv;
}

static int jint(json_t *o, const char *key, json_int_t v, int cond)
{
    return cond ? json_object_set_new(o, key, json_integer(v)) : 0;
}

json_t *wg_msg_to_json(const wg_msg_t *m)
{
    json_t *o = json_object(), *sub = NULL;
    int bad = !o;
    if (bad)
        return NULL;
    bad |= json_object_set_new(o, "type", json_string(wg_msg_kind_name(m->kind)));
    if (m->kind == WG_MSG_POLL)
        bad |= jstr(o, "name", m->text);
    else
        bad |= jstr(o, "text", m->text);
    if (m->quoted_id) {
        bad |= !(sub = json_object());
        if (sub) {
            bad |= jstr(sub, "id", m->quoted_id) | jstr(sub, "participant", m->quoted_participant);
            bad |= json_object_set_new(o, "quoted", sub);
        }
    }
    if (m->n_mentions) {
        json_t *a = json_array();
        bad |= !a;
        for (size_t i = 0; a && i < m->n_mentions; i++)
            if (m->mentions[i])
                bad |= json_array_append_new(a, json_string(m->mentions[i]));
        if (a)
            bad |= json_object_set_new(o, "mentions", a);
    }
    if (m->kind >= WG_MSG_IMAGE && m->kind <= WG_MSG_STICKER) {
        const wg_msg_media_t *md = &m->media;
        bad |= !(sub = json_object());
        if (sub) {
            bad |= jstr(sub, "url", md->url) | jstr(sub, "mimetype", md->mimetype) |
                   jstr(sub, "directPath", md->direct_path) | jstr(sub, "fileName", md->file_name);
            bad |= jb64(sub, "mediaKey", md->media_key) | jb64(sub, "fileSha256", md->file_sha256) |
                   jb64(sub, "fileEncSha256", md->file_enc_sha256);
            bad |= jint(sub, "fileLength", (json_int_t)md->file_length, 1);
            bad |= jint(sub, "seconds", md->seconds, md->seconds != 0);
            bad |= jint(sub, "width", md->width, md->width != 0);
            bad |= jint(sub, "height", md->height, md->height != 0);
            if (md->ptt)
                bad |= json_object_set_new(sub, "ptt", json_true());
            if (md->gif)
                bad |= json_object_set_new(sub, "gif", json_true());
            if (md->animated)
                bad |= json_object_set_new(sub, "animated", json_true());
            bad |= json_object_set_new(o, "media", sub);
        }
        bad |= jstr(o, "caption", md->caption);
        if (md->view_once)
            bad |= json_object_set_new(o, "viewOnce", json_true());
    }
    if (m->kind == WG_MSG_LOCATION) {
        bad |= !(sub = json_object());
        if (sub) {
            bad |= json_object_set_new(sub, "latitude", json_real(m->latitude));
            bad |= json_object_set_new(sub, "longitude", json_real(m->longitude));
            bad |= jstr(sub, "name", m->location_name) | jstr(sub, "address", m->location_address);
            bad |= json_object_set_new(o, "location", sub);
        }
    }
    if (m->kind == WG_MSG_CONTACT) {
        bad |= !(sub = json_object());
        if (sub) {
            bad |= jstr(sub, "displayName", m->contact_name) | jstr(sub, "vcard", m->vcard);
            bad |= json_object_set_new(o, "contact", sub);
        }
    }
    if (m->target.id) {
        bad |= !(sub = json_object());
        if (sub) {
            bad |= jstr(sub, "remoteJid", m->target.remote_jid) | jstr(sub, "id", m->target.id) |
                   jstr(sub, "participant", m->target.participant);
            bad |= json_object_set_new(sub, "fromMe", json_boolean(m->target.from_me));
            bad |= json_object_set_new(o, "target", sub);
        }
    }
    bad |= jint(o, "protocolType", m->protocol_type, m->protocol_type >= 0);
    if (m->dsm_destination)
        bad |= jstr(o, "destination", m->dsm_destination);
    if (m->ephemeral)
        bad |= json_object_set_new(o, "ephemeral", json_true());
    if (m->view_once && !json_object_get(o, "viewOnce"))
        bad |= json_object_set_new(o, "viewOnce", json_true());
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* ---- building ------------------------------------------------------------------------------ */

static int pack(const Wa__Message *x, uint8_t **out, size_t *len)
{
    return wg_pb_pack(&x->base, out, len);
}

int wg_msg_build_text(const char *text, const wg_msg_quote_t *quote, const char *const *mentions,
                      size_t n_mentions, uint8_t **out, size_t *len)
{
    Wa__Message x = WA__MESSAGE__INIT, quoted = WA__MESSAGE__INIT;
    Wa__Message__ExtendedTextMessage e = WA__MESSAGE__EXTENDED_TEXT_MESSAGE__INIT;
    Wa__ContextInfo ci = WA__CONTEXT_INFO__INIT;
    *out = NULL;
    *len = 0;
    if (!text || (quote && !quote->id) || (n_mentions && !mentions))
        return WG_EINVAL;
    if (!quote && n_mentions == 0) {
        x.conversation = (char *)text;
        return pack(&x, out, len);
    }
    e.text = (char *)text;
    if (quote) {
        ci.stanza_id = (char *)quote->id;
        ci.participant = (char *)quote->participant;
        if (quote->text) {
            quoted.conversation = (char *)quote->text;
            ci.quoted_message = &quoted;
        }
    }
    ci.n_mentioned_jid = n_mentions;
    ci.mentioned_jid = (char **)mentions;
    e.context_info = &ci;
    x.extended_text_message = &e;
    return pack(&x, out, len);
}

static void fill_key(Wa__MessageKey *k, const wg_msg_key_t *t)
{
    k->remote_jid = (char *)t->remote_jid;
    k->id = (char *)t->id;
    k->participant = (char *)t->participant;
    k->has_from_me = 1;
    k->from_me = t->from_me ? 1 : 0;
}

int wg_msg_build_reaction(const wg_msg_key_t *target, const char *emoji, int64_t now_ms,
                          uint8_t **out, size_t *len)
{
    Wa__Message x = WA__MESSAGE__INIT;
    Wa__Message__ReactionMessage r = WA__MESSAGE__REACTION_MESSAGE__INIT;
    Wa__MessageKey k = WA__MESSAGE_KEY__INIT;
    *out = NULL;
    *len = 0;
    if (!target || !target->id || !target->remote_jid || !emoji)
        return WG_EINVAL;
    fill_key(&k, target);
    r.key = &k;
    r.text = (char *)emoji;
    r.has_sender_timestamp_ms = 1;
    r.sender_timestamp_ms = now_ms;
    x.reaction_message = &r;
    return pack(&x, out, len);
}

int wg_msg_build_revoke(const wg_msg_key_t *target, uint8_t **out, size_t *len)
{
    Wa__Message x = WA__MESSAGE__INIT;
    Wa__Message__ProtocolMessage p = WA__MESSAGE__PROTOCOL_MESSAGE__INIT;
    Wa__MessageKey k = WA__MESSAGE_KEY__INIT;
    *out = NULL;
    *len = 0;
    if (!target || !target->id || !target->remote_jid)
        return WG_EINVAL;
    fill_key(&k, target);
    p.key = &k;
    p.has_type = 1; /* written explicitly, though REVOKE is the default */
    p.type = WA__MESSAGE__PROTOCOL_MESSAGE__TYPE__REVOKE;
    x.protocol_message = &p;
    return pack(&x, out, len);
}

int wg_msg_build_edit(const wg_msg_key_t *target, const char *text, int64_t now_ms, uint8_t **out,
                      size_t *len)
{
    Wa__Message x = WA__MESSAGE__INIT, edited = WA__MESSAGE__INIT;
    Wa__Message__ProtocolMessage p = WA__MESSAGE__PROTOCOL_MESSAGE__INIT;
    Wa__MessageKey k = WA__MESSAGE_KEY__INIT;
    *out = NULL;
    *len = 0;
    if (!target || !target->id || !target->remote_jid || !text)
        return WG_EINVAL;
    fill_key(&k, target);
    edited.conversation = (char *)text;
    p.key = &k;
    p.has_type = 1;
    p.type = WA__MESSAGE__PROTOCOL_MESSAGE__TYPE__MESSAGE_EDIT;
    p.edited_message = &edited;
    p.has_timestamp_ms = 1;
    p.timestamp_ms = now_ms;
    x.protocol_message = &p;
    return pack(&x, out, len);
}

int wg_msg_build_skdm(const char *group, const uint8_t *skdm, size_t skdm_len, uint8_t **out,
                      size_t *len)
{
    Wa__Message x = WA__MESSAGE__INIT;
    Wa__Message__SenderKeyDistributionMessage k =
        WA__MESSAGE__SENDER_KEY_DISTRIBUTION_MESSAGE__INIT;
    *out = NULL;
    *len = 0;
    if (!group || !skdm || !skdm_len)
        return WG_EINVAL;
    k.group_id = (char *)group;
    k.has_axolotl_sender_key_distribution_message = 1;
    k.axolotl_sender_key_distribution_message.data = (uint8_t *)skdm;
    k.axolotl_sender_key_distribution_message.len = skdm_len;
    x.sender_key_distribution_message = &k;
    return pack(&x, out, len);
}

int wg_msg_wrap_dsm(const uint8_t *msg, size_t msg_len, const char *destination, uint8_t **out,
                    size_t *len)
{
    ProtobufCMessage *pb = NULL;
    Wa__Message x = WA__MESSAGE__INIT;
    Wa__Message__DeviceSentMessage d = WA__MESSAGE__DEVICE_SENT_MESSAGE__INIT;
    int rv;
    *out = NULL;
    *len = 0;
    if (!destination || !*destination)
        return WG_EINVAL;
    if ((rv = wg_pb_unpack(&wa__message__descriptor, msg, msg_len, &pb)) != 0)
        return rv == WG_EINVAL ? WG_EPROTO : rv;
    Wa__Message *inner = (Wa__Message *)pb;
    d.destination_jid = (char *)destination;
    d.message = inner;
    x.device_sent_message = &d;
    x.message_context_info = inner->message_context_info; /* §3.4: copied to the outside */
    rv = pack(&x, out, len);
    protobuf_c_message_free_unpacked(pb, NULL);
    return rv;
}
