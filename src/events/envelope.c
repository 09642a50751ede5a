/* envelope.c - see envelope.h. One renderer per dialect; each maps the core event name and
 * builds the dialect's data from the core payload (docs/events.md lists both sides). Field
 * names and value sets follow the products' own sources: Evolution API v2
 * (whatsapp.baileys.service.ts prepareMessage, connectionUpdate, webhook.controller.ts emit;
 * renderStatus.ts), Hypersender's Laravel SDK webhook fixtures (WAHA payloads). */
#include "events/envelope.h"
#include "qr/qr.h"
#include "util/err.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- instance identity ---- */

static int dup_or_null(char **dst, const char *src)
{
    *dst = NULL;
    return src && !(*dst = strdup(src)) ? WG_ENOMEM : 0;
}

int wg_envelope_inst_from(const wg_instance_t *row, wg_envelope_inst_t *out)
{
    memset(out, 0, sizeof(*out));
    snprintf(out->dialect, sizeof(out->dialect), "%s", row->dialect ? row->dialect : "native");
    if (dup_or_null(&out->id, row->id) || dup_or_null(&out->name, row->name) ||
        dup_or_null(&out->api_name, row->api_name) || dup_or_null(&out->owner_id, row->owner_id) ||
        dup_or_null(&out->jid, row->jid) || dup_or_null(&out->push_name, row->push_name) ||
        dup_or_null(&out->phone, row->phone)) {
        wg_envelope_inst_dispose(out);
        return WG_ENOMEM;
    }
    return 0;
}

void wg_envelope_inst_dispose(wg_envelope_inst_t *in)
{
    if (!in)
        return;
    free(in->id);
    free(in->name);
    free(in->api_name);
    free(in->owner_id);
    free(in->jid);
    free(in->push_name);
    free(in->phone);
    memset(in, 0, sizeof(*in));
}

void wg_envelope_dispose(wg_envelope_t *e)
{
    if (!e)
        return;
    free(e->body);
    memset(e, 0, sizeof(*e));
}

/* ---- small helpers ---- */

static void iso_ms(int64_t ms, char *buf, size_t cap)
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    snprintf(buf, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

static const char *sget(json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

/* o[k] = s, or null when s is NULL. */
static void set_str(json_t *o, const char *k, const char *s)
{
    json_object_set_new(o, k, s ? json_string(s) : json_null());
}

/* o[k] = a copy of src[sk] when present. */
static void copy_field(json_t *o, const char *k, json_t *src, const char *sk)
{
    json_t *v = json_object_get(src, sk);
    if (v)
        json_object_set(o, k, v);
}

/* "user:device@server" -> "user@server" (the account JID). */
static void bare_jid(const char *jid, char *out, size_t cap)
{
    const char *colon = jid ? strchr(jid, ':') : NULL, *at = jid ? strchr(jid, '@') : NULL;
    if (!jid)
        out[0] = 0;
    else if (colon && at && colon < at)
        snprintf(out, cap, "%.*s%s", (int)(colon - jid), jid, at);
    else
        snprintf(out, cap, "%s", jid);
}

/* WAHA writes personal chats as "<number>@c.us" where WhatsApp says "@s.whatsapp.net". */
static void cus_jid(const char *jid, char *out, size_t cap)
{
    char b[160];
    bare_jid(jid, b, sizeof(b));
    char *at = strstr(b, "@s.whatsapp.net");
    if (at)
        snprintf(out, cap, "%.*s@c.us", (int)(at - b), b);
    else
        snprintf(out, cap, "%s", b);
}

/* Baileys' getDevice(): which client wrote a message, from the shape of its id. */
static const char *source_of(const char *id)
{
    size_t n = id ? strlen(id) : 0;
    if (n == 20 && !strncmp(id, "3A", 2))
        return "ios";
    if (n == 22 && !strncmp(id, "3E", 2))
        return "web";
    if (n == 21 || n == 32)
        return "android";
    if ((n >= 2 && !strncmp(id, "3F", 2)) || n == 18)
        return "desktop";
    return "unknown";
}

/* ---- Evolution API v2 (and Wachat) ---- */

static const struct {
    const char *core, *evo;
} evo_names[] = {
    {"message.received", "messages.upsert"},
    {"message.sent", "send.message"},
    {"message.ack", "messages.update"},
    {"message.deleted", "messages.delete"},
    {"qr.updated", "qrcode.updated"},
    {"connection.updated", "connection.update"},
    {"call.received", "call"},
    {"presence.updated", "presence.update"},
    {"group.updated", "groups.update"},
    {"contact.updated", "contacts.update"},
    {"instance.deleted", "remove.instance"},
};

const char *wg_envelope_evolution_event(const char *core_event)
{
    for (size_t i = 0; i < sizeof(evo_names) / sizeof(evo_names[0]); i++)
        if (!strcmp(evo_names[i].core, core_event))
            return evo_names[i].evo;
    return core_event;
}

/* Evolution's byEvents segment: "messages.upsert" -> "messages-upsert" (webhook.controller.ts
 * turns '.' and '-' into '_', upper-cases, then '_' into '-' and lower-cases). */
static void kebab(const char *ev, char *out, size_t cap)
{
    size_t i = 0;
    for (; ev[i] && i + 1 < cap; i++)
        out[i] = ev[i] == '.' || ev[i] == '_'     ? '-'
                 : (ev[i] >= 'A' && ev[i] <= 'Z') ? (char)(ev[i] - 'A' + 'a')
                                                  : ev[i];
    out[i] = 0;
}

/* Core media fields -> the WhatsApp proto field names Baileys serialises. */
static json_t *evo_media(json_t *m)
{
    json_t *md = json_object_get(m, "media"), *o = json_object();
    static const char *const same[] = {"url",           "mimetype",   "fileSha256", "fileLength",
                                       "height",        "width",      "seconds",    "mediaKey",
                                       "fileEncSha256", "directPath", "fileName"};
    for (size_t i = 0; i < sizeof(same) / sizeof(same[0]); i++)
        copy_field(o, same[i], md, same[i]);
    copy_field(o, "caption", m, "caption");
    copy_field(o, "ptt", md, "ptt");
    copy_field(o, "gifPlayback", md, "gif");
    copy_field(o, "isAnimated", md, "animated");
    if (json_is_true(json_object_get(m, "viewOnce")))
        json_object_set_new(o, "viewOnce", json_true());
    return o;
}

static json_t *evo_key(json_t *t)
{
    json_t *k = json_object();
    copy_field(k, "remoteJid", t, "remoteJid");
    json_object_set_new(k, "fromMe", json_boolean(json_is_true(json_object_get(t, "fromMe"))));
    copy_field(k, "id", t, "id");
    copy_field(k, "participant", t, "participant");
    return k;
}

/* The core message (wg_msg_to_json) as Evolution's {message, messageType}. Text is
 * "conversation" whatever the proto field was: prepareMessage folds extendedTextMessage in. */
static json_t *evo_message(json_t *m, const char **type)
{
    const char *k = sget(m, "type");
    json_t *o = json_object(), *sub;
    *type = "unknown";
    if (!k)
        return o;
    if (!strcmp(k, "text")) {
        *type = "conversation";
        copy_field(o, "conversation", m, "text");
    } else if (!strcmp(k, "image") || !strcmp(k, "video") || !strcmp(k, "audio") ||
               !strcmp(k, "document") || !strcmp(k, "sticker")) {
        static const char *const names[][2] = {{"image", "imageMessage"},
                                               {"video", "videoMessage"},
                                               {"audio", "audioMessage"},
                                               {"document", "documentMessage"},
                                               {"sticker", "stickerMessage"}};
        for (size_t i = 0; i < 5; i++)
            if (!strcmp(k, names[i][0]))
                *type = names[i][1];
        json_object_set_new(o, *type, evo_media(m));
    } else if (!strcmp(k, "location")) {
        json_t *l = json_object_get(m, "location");
        *type = "locationMessage";
        sub = json_object();
        copy_field(sub, "degreesLatitude", l, "latitude");
        copy_field(sub, "degreesLongitude", l, "longitude");
        copy_field(sub, "name", l, "name");
        copy_field(sub, "address", l, "address");
        json_object_set_new(o, *type, sub);
    } else if (!strcmp(k, "contact")) {
        *type = "contactMessage";
        sub = json_object();
        copy_field(sub, "displayName", json_object_get(m, "contact"), "displayName");
        copy_field(sub, "vcard", json_object_get(m, "contact"), "vcard");
        json_object_set_new(o, *type, sub);
    } else if (!strcmp(k, "reaction")) {
        *type = "reactionMessage";
        sub = json_object();
        json_object_set_new(sub, "key", evo_key(json_object_get(m, "target")));
        copy_field(sub, "text", m, "text");
        json_object_set_new(o, *type, sub);
    } else if (!strcmp(k, "revoke") || !strcmp(k, "edit")) {
        *type = "protocolMessage";
        sub = json_object();
        json_object_set_new(sub, "key", evo_key(json_object_get(m, "target")));
        json_object_set_new(sub, "type",
                            json_string(!strcmp(k, "revoke") ? "REVOKE" : "MESSAGE_EDIT"));
        if (!strcmp(k, "edit") && json_object_get(m, "text"))
            json_object_set_new(sub, "editedMessage",
                                json_pack("{s:O}", "conversation", json_object_get(m, "text")));
        json_object_set_new(o, *type, sub);
    } else if (!strcmp(k, "poll")) {
        *type = "pollCreationMessage";
        sub = json_object();
        copy_field(sub, "name", m, "name");
        json_object_set_new(o, *type, sub);
    }
    return o;
}

/* contextInfo {stanzaId, participant, mentionedJid} of a reply or mention, or NULL. */
static json_t *evo_context(json_t *m)
{
    json_t *q = json_object_get(m, "quoted"), *mn = json_object_get(m, "mentions");
    if (!q && !mn)
        return NULL;
    json_t *c = json_object();
    copy_field(c, "stanzaId", q, "id");
    copy_field(c, "participant", q, "participant");
    if (mn)
        json_object_set(c, "mentionedJid", mn);
    return c;
}

/* message.received / message.sent -> messages.upsert / send.message data (prepareMessage). */
static json_t *evo_upsert(const wg_envelope_inst_t *in, json_t *p)
{
    int from_me = json_is_true(json_object_get(p, "fromMe"));
    const char *id = sget(p, "id"), *type;
    json_t *m = json_object_get(p, "message"), *key = json_object(), *d = json_object();
    copy_field(key, "remoteJid", p, "chat");
    json_object_set_new(key, "fromMe", json_boolean(from_me));
    copy_field(key, "id", p, "id");
    if (json_is_true(json_object_get(p, "isGroup")))
        copy_field(key, "participant", p, "from");
    json_object_set_new(d, "key", key);
    set_str(d, "pushName", sget(p, "pushName"));
    /* renderStatus.ts: a message from someone else is DELIVERY_ACK once we have it; ours
     * went through the server (SERVER_ACK) */
    json_object_set_new(d, "status", json_string(from_me ? "SERVER_ACK" : "DELIVERY_ACK"));
    json_object_set_new(d, "message", evo_message(m, &type));
    json_t *ctx = evo_context(m);
    if (ctx)
        json_object_set_new(d, "contextInfo", ctx);
    json_object_set_new(d, "messageType", json_string(type));
    copy_field(d, "messageTimestamp", p, "timestamp");
    set_str(d, "instanceId", in->id);
    json_object_set_new(d, "source", json_string(source_of(id)));
    return d;
}

/* message.ack -> messages.update {keyId, remoteJid, fromMe, participant, status, instanceId}:
 * receipts come for messages we sent. A receipt naming several ids is rendered with the first
 * (Evolution sends one update per message). */
static json_t *evo_ack(const wg_envelope_inst_t *in, json_t *p)
{
    const char *st = sget(p, "status");
    const char *evo = !st                        ? "SERVER_ACK"
                      : !strcmp(st, "read")      ? "READ"
                      : !strcmp(st, "played")    ? "PLAYED"
                      : !strcmp(st, "delivered") ? "DELIVERY_ACK"
                                                 : "SERVER_ACK";
    json_t *d = json_object();
    copy_field(d, "keyId", p, "id");
    copy_field(d, "remoteJid", p, "chat");
    json_object_set_new(d, "fromMe", json_true());
    copy_field(d, "participant", p, "participant");
    json_object_set_new(d, "status", json_string(evo));
    set_str(d, "instanceId", in->id);
    return d;
}

static const char *evo_state(const char *status)
{
    if (!status)
        return "close";
    if (!strcmp(status, "WORKING"))
        return "open";
    if (!strcmp(status, "STARTING") || !strcmp(status, "SCAN_QR_CODE") ||
        !strcmp(status, "PENDING"))
        return "connecting";
    return "close";
}

/* connection.updated -> connection.update {instance, state, statusReason, wuid?, profileName?,
 * profilePictureUrl?}. statusReason is Baileys' DisconnectReason: 200 while fine, 401 logged
 * out, 428 connection closed; QR codes that ran out are Evolution's "refused". */
static json_t *evo_connection(const char *inst_name, json_t *p)
{
    const char *status = sget(p, "status"), *reason = sget(p, "reason");
    const char *state = evo_state(status);
    int code = 200;
    if (!strcmp(state, "close")) {
        code = reason && !strcmp(reason, "logged_out") ? 401 : 428;
        if (reason && !strcmp(reason, "qr_timeout"))
            state = "refused";
    }
    json_t *d =
        json_pack("{s:s?, s:s, s:i}", "instance", inst_name, "state", state, "statusReason", code);
    if (d && !strcmp(state, "open") && json_object_get(p, "jid")) {
        copy_field(d, "wuid", p, "jid");
        copy_field(d, "profileName", p, "pushName");
        json_object_set_new(d, "profilePictureUrl", json_null());
    }
    return d;
}

/* qr.updated -> qrcode.updated {qrcode:{instance, pairingCode, code, base64 data: URI}}. */
static json_t *evo_qr(const char *inst_name, json_t *p)
{
    const char *code = sget(p, "code");
    char *b64 = code ? wg_qr_png_base64(code, 0, -1, NULL) : NULL;
    char *uri = NULL;
    if (b64) {
        size_t n = strlen(b64) + 32;
        if ((uri = malloc(n)))
            snprintf(uri, n, "data:image/png;base64,%s", b64);
    }
    json_t *d = json_pack("{s:{s:s?, s:n, s:s?, s:s?}}", "qrcode", "instance", inst_name,
                          "pairingCode", "code", code, "base64", uri);
    free(b64);
    free(uri);
    return d;
}

/* call.received -> call: Baileys' WACallEvent {id, from, chatId, groupJid, isGroup, isVideo,
 * status, date, offline}. */
static json_t *evo_call(json_t *p)
{
    char when[96];
    json_t *t = json_object_get(p, "timestamp");
    iso_ms(json_is_integer(t) ? (int64_t)json_integer_value(t) * 1000 : 0, when, sizeof(when));
    json_t *d = json_object();
    copy_field(d, "id", p, "id");
    copy_field(d, "from", p, "from");
    copy_field(d, "chatId", p, "from");
    json_object_set_new(d, "groupJid", json_null());
    json_object_set_new(d, "isGroup", json_boolean(json_is_true(json_object_get(p, "isGroup"))));
    json_object_set_new(d, "isVideo", json_boolean(json_is_true(json_object_get(p, "video"))));
    json_object_set_new(d, "status", json_string("offer"));
    json_object_set_new(d, "date", json_string(when));
    json_object_set_new(d, "offline", json_false());
    return d;
}

static json_t *evo_data(const wg_envelope_inst_t *in, const char *inst_name, const char *event,
                        json_t *p)
{
    if (!strcmp(event, "message.received") || !strcmp(event, "message.sent"))
        return evo_upsert(in, p);
    if (!strcmp(event, "message.ack"))
        return evo_ack(in, p);
    if (!strcmp(event, "connection.updated"))
        return evo_connection(inst_name, p);
    if (!strcmp(event, "qr.updated"))
        return evo_qr(inst_name, p);
    if (!strcmp(event, "call.received"))
        return evo_call(p);
    if (!strcmp(event, "instance.deleted"))
        return json_null(); /* monitor.service.ts sends REMOVE_INSTANCE with null data */
    return json_incref(p);  /* no Evolution shape of its own: the core data */
}

/* {event, instance, data, destination, date_time, sender, server_url, apikey}. apikey is null:
 * Evolution sends the instance token only with EXPOSE_IN_FETCH_INSTANCES, and we keep token
 * hashes only. sender is the account JID once linked (Evolution's wuid), else null. */
static json_t *render_evolution(const wg_envelope_inst_t *in, const char *inst_name,
                                const wg_webhook_cfg_t *cfg, const char *server_url,
                                const wg_outbox_row_t *row, json_t *p, wg_envelope_t *out)
{
    char when[96], sender[160];
    const char *ev = wg_envelope_evolution_event(row->event);
    snprintf(out->event, sizeof(out->event), "%s", ev);
    kebab(ev, out->url_part, sizeof(out->url_part));
    iso_ms(row->created_at, when, sizeof(when));
    bare_jid(in->jid, sender, sizeof(sender));
    json_t *data = evo_data(in, inst_name, row->event, p);
    if (!data)
        return NULL;
    return json_pack("{s:s, s:s?, s:o, s:s?, s:s, s:s?, s:s?, s:n}", "event", ev, "instance",
                     inst_name, "data", data, "destination", cfg->url, "date_time", when, "sender",
                     sender[0] ? sender : NULL, "server_url", server_url, "apikey");
}

/* ---- Hypersender (WAHA-shaped) ---- */

static const char *const ack_names[] = {"PENDING", "SERVER", "DEVICE", "READ", "PLAYED"};

/* WAHA's serialized message id: "<fromMe>_<chat>_<id>". */
static void waha_id(int from_me, const char *chat, const char *id, char *out, size_t cap)
{
    char c[160];
    cus_jid(chat, c, sizeof(c));
    snprintf(out, cap, "%s_%s_%s", from_me ? "true" : "false", c, id ? id : "");
}

static json_t *hs_message(json_t *p)
{
    int from_me = json_is_true(json_object_get(p, "fromMe"));
    const char *chat = sget(p, "chat"), *id = sget(p, "id"), *type;
    json_t *m = json_object_get(p, "message");
    const char *kind = sget(m, "type");
    char sid[256], from[160];
    waha_id(from_me, chat, id, sid, sizeof(sid));
    cus_jid(chat, from, sizeof(from));
    int media =
        kind && (!strcmp(kind, "image") || !strcmp(kind, "video") || !strcmp(kind, "audio") ||
                 !strcmp(kind, "document") || !strcmp(kind, "sticker"));
    const char *body = sget(m, "text") ? sget(m, "text") : sget(m, "caption");
    json_t *key = json_pack("{s:s?, s:b, s:s?}", "remoteJid", chat, "fromMe", from_me, "id", id);
    json_t *raw = json_object();
    json_object_set_new(raw, "key", key);
    copy_field(raw, "messageTimestamp", p, "timestamp");
    copy_field(raw, "pushName", p, "pushName");
    json_object_set_new(raw, "broadcast", json_false());
    json_object_set_new(raw, "message", evo_message(m, &type));
    /* ack: ours reached the server (1 SERVER); theirs reached this device (2 DEVICE) */
    int ack = from_me ? 1 : 2;
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(sid));
    copy_field(o, "timestamp", p, "timestamp");
    json_object_set_new(o, "from", json_string(from));
    json_object_set_new(o, "fromMe", json_boolean(from_me));
    if (json_is_true(json_object_get(p, "isGroup"))) {
        char part[160];
        cus_jid(sget(p, "from"), part, sizeof(part));
        json_object_set_new(o, "participant", json_string(part));
    }
    json_object_set_new(o, "source", json_string("app")); /* written in a WhatsApp app */
    set_str(o, "body", body);
    json_object_set_new(o, "hasMedia", json_boolean(media));
    json_object_set_new(o, "media", json_null());
    json_object_set_new(o, "ack", json_integer(ack));
    json_object_set_new(o, "ackName", json_string(ack_names[ack]));
    json_t *q = json_object_get(m, "quoted");
    if (q && sget(q, "id")) {
        json_object_set_new(
            o, "replyTo",
            json_pack("{s:s, s:s?}", "id", sget(q, "id"), "participant", sget(q, "participant")));
    } else {
        json_object_set_new(o, "replyTo", json_null());
    }
    json_object_set_new(o, "_data", raw);
    return o;
}

static json_t *hs_ack(json_t *p)
{
    const char *st = sget(p, "status");
    int ack = !st ? 1 : !strcmp(st, "read") ? 3 : !strcmp(st, "played") ? 4 : 2;
    char sid[256], from[160];
    waha_id(1, sget(p, "chat"), sget(p, "id"), sid, sizeof(sid));
    cus_jid(sget(p, "chat"), from, sizeof(from));
    return json_pack("{s:s, s:s, s:b, s:i, s:s}", "id", sid, "from", from, "fromMe", 1, "ack", ack,
                     "ackName", ack_names[ack]);
}

static json_t *hs_call(json_t *p)
{
    char from[160];
    cus_jid(sget(p, "from"), from, sizeof(from));
    json_t *o = json_object();
    copy_field(o, "id", p, "id");
    json_object_set_new(o, "from", json_string(from));
    copy_field(o, "timestamp", p, "timestamp");
    json_object_set_new(o, "isVideo", json_boolean(json_is_true(json_object_get(p, "video"))));
    json_object_set_new(o, "isGroup", json_boolean(json_is_true(json_object_get(p, "isGroup"))));
    return o;
}

/* {event, data:{id, event, metadata, me, payload, instanceId, userId}} with headers x-userId and
 * x-instanceId (Hypersender's webhook docs list them as required). Events: message.any (both
 * directions; fromMe tells them apart), message.ack, call.received, session.status {name,
 * status}; events without a WAHA counterpart keep the core name and data. */
static json_t *render_hypersender(const wg_envelope_inst_t *in, const wg_outbox_row_t *row,
                                  json_t *p, wg_envelope_t *out)
{
    const char *ce = row->event, *ev = ce;
    json_t *payload;
    if (!strcmp(ce, "message.received") || !strcmp(ce, "message.sent")) {
        ev = "message.any";
        payload = hs_message(p);
    } else if (!strcmp(ce, "message.ack")) {
        payload = hs_ack(p);
    } else if (!strcmp(ce, "call.received")) {
        payload = hs_call(p);
    } else if (!strcmp(ce, "connection.updated")) {
        ev = "session.status";
        payload = json_pack("{s:s?, s:s?}", "name", in->name, "status", sget(p, "status"));
    } else {
        payload = json_incref(p);
    }
    if (!payload)
        return NULL;
    snprintf(out->event, sizeof(out->event), "%s", ev);
    snprintf(out->url_part, sizeof(out->url_part), "%s", ev);
    json_t *me = json_null();
    if (in->jid) {
        char id[160];
        cus_jid(in->jid, id, sizeof(id));
        me = json_pack("{s:s, s:s?, s:n}", "id", id, "pushName", in->push_name, "lid");
    }
    if (in->owner_id) {
        snprintf(out->hdr[out->nhdr].name, sizeof(out->hdr[0].name), "x-userId");
        snprintf(out->hdr[out->nhdr++].value, sizeof(out->hdr[0].value), "%s", in->owner_id);
    }
    snprintf(out->hdr[out->nhdr].name, sizeof(out->hdr[0].name), "x-instanceId");
    snprintf(out->hdr[out->nhdr++].value, sizeof(out->hdr[0].value), "%s", row->instance_id);
    return json_pack("{s:s, s:{s:s, s:s, s:[], s:o, s:o, s:s, s:s?}}", "event", ev, "data", "id",
                     row->id, "event", ev, "metadata", "me", me, "payload", payload, "instanceId",
                     row->instance_id, "userId", in->owner_id);
}

/* ---- dispatch by dialect ---- */

void wg_envelope_server_url(const char *public_url, const char *listen, char *out, size_t cap)
{
    if (public_url && *public_url) {
        size_t n = strlen(public_url);
        while (n > 1 && public_url[n - 1] == '/') /* "https://x/" and "https://x" alike */
            n--;
        snprintf(out, cap, "%.*s", (int)n, public_url);
        return;
    }
    /* no public URL configured: the listen address, with a wildcard host made reachable */
    const char *l = listen ? listen : "";
    const char *colon = strrchr(l, ':');
    const char *port = colon ? colon + 1 : "8080";
    size_t hl = colon ? (size_t)(colon - l) : strlen(l);
    if (hl == 0 || (hl == 7 && !strncmp(l, "0.0.0.0", 7)) || (hl == 4 && !strncmp(l, "[::]", 4)))
        snprintf(out, cap, "http://localhost:%s", port);
    else
        snprintf(out, cap, "http://%.*s:%s", (int)hl, l, port);
}

int wg_envelope_render(const wg_envelope_inst_t *in, const wg_webhook_cfg_t *cfg,
                       const char *server_url, const wg_outbox_row_t *row, wg_envelope_t *out)
{
    const char *d = in->dialect;
    int evo = !strcmp(d, "evolution"), wachat = !strcmp(d, "wachat");
    memset(out, 0, sizeof(*out));
    if (!evo && !wachat && strcmp(d, "hypersender") != 0) {
        /* native and EnviaAI (the native API is EnviaAI's superset): the native envelope */
        snprintf(out->event, sizeof(out->event), "%s", row->event);
        snprintf(out->url_part, sizeof(out->url_part), "%s", row->event);
        out->enviaai_sig = 1;
        return wg_webhook_render(cfg, row, &out->body, &out->len);
    }
    json_error_t jerr;
    json_t *p = row->payload && *row->payload ? json_loads(row->payload, 0, &jerr) : json_object();
    json_t *env = NULL;
    int rv = WG_EINVAL;
    if (!p || !json_is_object(p))
        goto out;
    rv = WG_ENOMEM;
    if (evo || wachat) /* Wachat runs Evolution underneath: its name is the prefixed one */
        env = render_evolution(in, wachat && in->api_name ? in->api_name : in->name, cfg,
                               server_url, row, p, out);
    else
        env = render_hypersender(in, row, p, out);
    if (!env || !(out->body = json_dumps(env, JSON_COMPACT)))
        goto out;
    out->len = strlen(out->body);
    rv = 0;
out:
    json_decref(p);
    json_decref(env);
    if (rv)
        wg_envelope_dispose(out);
    return rv;
}
