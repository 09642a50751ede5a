/* test_msg.c - wa/msg: padding edge cases, message ids, every Message kind decoded and rendered
 * as JSON, the builders round-tripping through the decoder, deviceSentMessage wrapping, garbage
 * refused. Test Messages are built with protobuf-c directly (the peer's encoder). */
#include "test.h"
#include "util/err.h"
#include "wa/msg.h"
#include "wa/pb.h"
#include "wa/proto/message.pb-c.h"

#include <stdlib.h>
#include <string.h>

WG_TEST(msg_pad_unpad)
{
    uint8_t *out = NULL;
    size_t n = 0, m = 0;
    const uint8_t body[] = {1, 2, 3};
    for (unsigned k = 1; k <= 15; k++) {
        WG_CHECK_EQ_INT(wg_msg_pad(body, 3, k, &out, &n), 0);
        WG_CHECK_EQ_INT(n, 3 + k);
        WG_CHECK_EQ_INT(out[n - 1], k);
        WG_CHECK_EQ_INT(out[3], k);
        WG_CHECK_EQ_INT(wg_msg_unpad(out, n, &m), 0);
        WG_CHECK_EQ_INT(m, 3);
        free(out);
    }
    WG_CHECK_EQ_INT(wg_msg_pad(body, 3, 16, &out, &n), WG_EINVAL);
    /* random N is always 1..15 */
    int seen[16] = {0};
    for (int i = 0; i < 400; i++) {
        WG_CHECK_EQ_INT(wg_msg_pad(body, 3, 0, &out, &n), 0);
        WG_CHECK(n >= 4 && n <= 18);
        WG_CHECK_EQ_INT(out[n - 1], n - 3);
        seen[n - 3]++;
        free(out);
    }
    WG_CHECK(seen[1] && seen[15]);
    /* empty body: only padding */
    WG_CHECK_EQ_INT(wg_msg_pad(NULL, 0, 4, &out, &n), 0);
    WG_CHECK_EQ_INT(wg_msg_unpad(out, n, &m), 0);
    WG_CHECK_EQ_INT(m, 0);
    free(out);
    /* Baileys pads 16 too */
    uint8_t b16[20];
    memset(b16, 16, sizeof(b16));
    b16[0] = b16[1] = b16[2] = b16[3] = 0xAA;
    WG_CHECK_EQ_INT(wg_msg_unpad(b16, 20, &m), 0);
    WG_CHECK_EQ_INT(m, 4);
    /* invalid: empty, zero, longer than the data, inconsistent bytes */
    const uint8_t z[] = {1, 0}, big[] = {5, 5, 5}, mixed[] = {9, 3, 2, 3};
    WG_CHECK_EQ_INT(wg_msg_unpad(z, 0, &m), WG_EPROTO);
    WG_CHECK_EQ_INT(wg_msg_unpad(z, 2, &m), WG_EPROTO);
    WG_CHECK_EQ_INT(wg_msg_unpad(big, 3, &m), WG_EPROTO);
    WG_CHECK_EQ_INT(wg_msg_unpad(mixed, 4, &m), WG_EPROTO);
    const uint8_t all[] = {3, 3, 3};
    WG_CHECK_EQ_INT(wg_msg_unpad(all, 3, &m), 0);
    WG_CHECK_EQ_INT(m, 0);
}

WG_TEST(msg_id_format)
{
    char id[WG_MSG_ID_LEN + 1], id2[WG_MSG_ID_LEN + 1];
    uint8_t r[16] = {0};
    WG_CHECK_EQ_INT(wg_msg_id(id, 1700000000, "5511999999999", r), 0);
    WG_CHECK_EQ_INT(strlen(id), 22);
    WG_CHECK(memcmp(id, "3EB0", 4) == 0);
    for (int i = 4; i < 22; i++)
        WG_CHECK((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'A' && id[i] <= 'F'));
    /* deterministic for the same inputs, different with other random bytes */
    WG_CHECK_EQ_INT(wg_msg_id(id2, 1700000000, "5511999999999", r), 0);
    WG_CHECK_STR(id, id2);
    r[0] = 1;
    WG_CHECK_EQ_INT(wg_msg_id(id2, 1700000000, "5511999999999", r), 0);
    WG_CHECK(strcmp(id, id2) != 0);
    WG_CHECK_EQ_INT(wg_msg_id(id2, 1700000000, "5511999999999", NULL), 0);
    WG_CHECK_EQ_INT(strlen(id2), 22);
}

static int pack_msg(const Wa__Message *x, uint8_t **out, size_t *len)
{
    return wg_pb_pack(&x->base, out, len);
}

/* Packs x, decodes it, renders JSON. */
static int decode(const Wa__Message *x, wg_msg_t **m, json_t **j)
{
    uint8_t *b = NULL;
    size_t n = 0;
    int rv = pack_msg(x, &b, &n);
    if (rv == 0)
        rv = wg_msg_decode(b, n, m);
    free(b);
    if (rv == 0 && j)
        *j = wg_msg_to_json(*m);
    return rv;
}

static const char *jget(json_t *o, const char *path)
{
    char buf[128];
    snprintf(buf, sizeof(buf), "%s", path);
    json_t *cur = o;
    for (char *tok = strtok(buf, "."); tok && cur; tok = strtok(NULL, "."))
        cur = json_object_get(cur, tok);
    return cur && json_is_string(cur) ? json_string_value(cur) : NULL;
}

WG_TEST(msg_decode_text_kinds)
{
    wg_msg_t *m = NULL;
    json_t *j = NULL;
    Wa__Message x = WA__MESSAGE__INIT;
    x.conversation = "hello";
    WG_CHECK_EQ_INT(decode(&x, &m, &j), 0);
    WG_CHECK_EQ_INT(m->kind, WG_MSG_TEXT);
    WG_CHECK_STR(m->text, "hello");
    WG_CHECK_STR(jget(j, "type"), "text");
    WG_CHECK_STR(jget(j, "text"), "hello");
    WG_CHECK(m->dsm_destination == NULL && m->skdm.p == NULL);
    json_decref(j);
    wg_msg_free(m);

    /* extended text with a quote and mentions */
    Wa__Message y = WA__MESSAGE__INIT, q = WA__MESSAGE__INIT;
    Wa__Message__ExtendedTextMessage e = WA__MESSAGE__EXTENDED_TEXT_MESSAGE__INIT;
    Wa__ContextInfo ci = WA__CONTEXT_INFO__INIT;
    char *mentions[] = {"1@s.whatsapp.net", "2@s.whatsapp.net"};
    q.conversation = "original";
    ci.stanza_id = "3EB0AAA";
    ci.participant = "9@s.whatsapp.net";
    ci.quoted_message = &q;
    ci.n_mentioned_jid = 2;
    ci.mentioned_jid = mentions;
    e.text = "reply @1 @2";
    e.context_info = &ci;
    y.extended_text_message = &e;
    WG_CHECK_EQ_INT(decode(&y, &m, &j), 0);
    WG_CHECK_EQ_INT(m->kind, WG_MSG_TEXT);
    WG_CHECK_STR(m->text, "reply @1 @2");
    WG_CHECK_STR(m->quoted_id, "3EB0AAA");
    WG_CHECK_STR(jget(j, "quoted.participant"), "9@s.whatsapp.net");
    WG_CHECK_EQ_INT(json_array_size(json_object_get(j, "mentions")), 2);
    json_decref(j);
    wg_msg_free(m);
}

WG_TEST(msg_decode_media_kinds)
{
    wg_msg_t *m = NULL;
    json_t *j = NULL;
    uint8_t key[32], sha[32], esha[32];
    memset(key, 1, 32);
    memset(sha, 2, 32);
    memset(esha, 3, 32);
    {
        Wa__Message x = WA__MESSAGE__INIT;
        Wa__Message__ImageMessage i = WA__MESSAGE__IMAGE_MESSAGE__INIT;
        i.url = "https://mmg.whatsapp.net/x";
        i.mimetype = "image/jpeg";
        i.caption = "cap";
        i.direct_path = "/v/t62/x";
        i.has_media_key = i.has_file_sha256 = i.has_file_enc_sha256 = 1;
        i.media_key = (ProtobufCBinaryData){32, key};
        i.file_sha256 = (ProtobufCBinaryData){32, sha};
        i.file_enc_sha256 = (ProtobufCBinaryData){32, esha};
        i.has_file_length = 1;
        i.file_length = 12345;
        i.has_width = i.has_height = 1;
        i.width = 640;
        i.height = 480;
        x.image_message = &i;
        WG_CHECK_EQ_INT(decode(&x, &m, &j), 0);
        WG_CHECK_EQ_INT(m->kind, WG_MSG_IMAGE);
        WG_CHECK_EQ_INT(m->media.media_key.len, 32);
        WG_CHECK_MEM(m->media.media_key.p, key, 32);
        WG_CHECK_EQ_INT(m->media.file_length, 12345);
        WG_CHECK_STR(jget(j, "type"), "image");
        WG_CHECK_STR(jget(j, "caption"), "cap");
        WG_CHECK_STR(jget(j, "media.mimetype"), "image/jpeg");
        WG_CHECK_STR(jget(j, "media.directPath"), "/v/t62/x");
        WG_CHECK_STR(jget(j, "media.mediaKey"), "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=");
        WG_CHECK_EQ_INT(
            json_integer_value(json_object_get(json_object_get(j, "media"), "fileLength")), 12345);
        WG_CHECK_EQ_INT(json_integer_value(json_object_get(json_object_get(j, "media"), "width")),
                        640);
        json_decref(j);
        wg_msg_free(m);
    }
    {
        Wa__Message x = WA__MESSAGE__INIT;
        Wa__Message__VideoMessage v = WA__MESSAGE__VIDEO_MESSAGE__INIT;
        v.mimetype = "video/mp4";
        v.caption = "vid";
        v.has_seconds = v.has_gif_playback = 1;
        v.seconds = 7;
        v.gif_playback = 1;
        x.video_message = &v;
        WG_CHECK_EQ_INT(decode(&x, &m, &j), 0);
        WG_CHECK_EQ_INT(m->kind, WG_MSG_VIDEO);
        WG_CHECK_EQ_INT(m->media.seconds, 7);
        WG_CHECK_EQ_INT(m->media.gif, 1);
        WG_CHECK(json_is_true(json_object_get(json_object_get(j, "media"), "gif")));
        WG_CHECK_STR(jget(j, "caption"), "vid");
        json_decref(j);
        wg_msg_free(m);
    }
    {
        Wa__Message x = WA__MESSAGE__INIT;
        Wa__Message__AudioMessage a = WA__MESSAGE__AUDIO_MESSAGE__INIT;
        a.mimetype = "audio/ogg; codecs=opus";
        a.has_ptt = a.has_seconds = 1;
        a.ptt = 1;
        a.seconds = 3;
        x.audio_message = &a;
        WG_CHECK_EQ_INT(decode(&x, &m, &j), 0);
        WG_CHECK_EQ_INT(m->kind, WG_MSG_AUDIO);
        WG_CHECK_EQ_INT(m->media.ptt, 1);
        WG_CHECK_STR(jget(j, "type"), "audio");
        WG_CHECK(json_is_true(json_object_get(json_object_get(j, "media"), "ptt")));
        json_decref(j);
        wg_msg_free(m);
    }
    {
        /* a document inside documentWithCaptionMessage */
        Wa__Message x = WA__MESSAGE__INIT, inner = WA__MESSAGE__INIT;
        Wa__Message__FutureProofMessage w = WA__MESSAGE__FUTURE_PROOF_MESSAGE__INIT;
        Wa__Message__DocumentMessage d = WA__MESSAGE__DOCUMENT_MESSAGE__INIT;
        d.mimetype = "application/pdf";
        d.file_name = "a.pdf";
        d.caption = "see";
        inner.document_message = &d;
        w.message = &inner;
        x.document_with_caption_message = &w;
        WG_CHECK_EQ_INT(decode(&x, &m, &j), 0);
        WG_CHECK_EQ_INT(m->kind, WG_MSG_DOCUMENT);
        WG_CHECK_STR(jget(j, "media.fileName"), "a.pdf");
        WG_CHECK_STR(jget(j, "caption"), "see");
        json_decref(j);
        wg_msg_free(m);
    }
    {
        Wa__Message x = WA__MESSAGE__INIT;
        Wa__Message__StickerMessage s = WA__MESSAGE__STICKER_MESSAGE__INIT;
        s.mimetype = "image/webp";
        s.has_is_animated = 1;
        s.is_animated = 1;
        x.sticker_message = &s;
        WG_CHECK_EQ_INT(decode(&x, &m, &j), 0);
        WG_CHECK_EQ_INT(m->kind, WG_MSG_STICKER);
        WG_CHECK_EQ_INT(m->media.animated, 1);
        WG_CHECK_STR(jget(j, "type"), "sticker");
        json_decref(j);
        wg_msg_free(m);
    }
    {
        /* view-once image in an ephemeral wrapper */
        Wa__Message x = WA__MESSAGE__INIT, mid = WA__MESSAGE__INIT, inner = WA__MESSAGE__INIT;
        Wa__Message__FutureProofMessage eph = WA__MESSAGE__FUTURE_PROOF_MESSAGE__INIT,
                                        vo = WA__MESSAGE__FUTURE_PROOF_MESSAGE__INIT;
        Wa__Message__ImageMessage i = WA__MESSAGE__IMAGE_MESSAGE__INIT;
        i.mimetype = "image/jpeg";
        inner.image_message = &i;
        vo.message = &inner;
        mid.view_once_message_v2 = &vo;
        eph.message = &mid;
        x.ephemeral_message = &eph;
        WG_CHECK_EQ_INT(decode(&x, &m, &j), 0);
        WG_CHECK_EQ_INT(m->kind, WG_MSG_IMAGE);
        WG_CHECK_EQ_INT(m->ephemeral, 1);
        WG_CHECK_EQ_INT(m->view_once, 1);
        WG_CHECK(json_is_true(json_object_get(j, "viewOnce")));
        WG_CHECK(json_is_true(json_object_get(j, "ephemeral")));
        json_decref(j);
        wg_msg_free(m);
    }
}

WG_TEST(msg_decode_location_contact_poll)
{
    wg_msg_t *m = NULL;
    json_t *j = NULL;
    Wa__Message x = WA__MESSAGE__INIT;
    Wa__Message__LocationMessage l = WA__MESSAGE__LOCATION_MESSAGE__INIT;
    l.has_degrees_latitude = l.has_degrees_longitude = 1;
    l.degrees_latitude = -23.5;
    l.degrees_longitude = -46.25;
    l.name = "Here";
    l.address = "Rua X";
    x.location_message = &l;
    WG_CHECK_EQ_INT(decode(&x, &m, &j), 0);
    WG_CHECK_EQ_INT(m->kind, WG_MSG_LOCATION);
    WG_CHECK(m->latitude == -23.5 && m->longitude == -46.25);
    WG_CHECK(json_real_value(json_object_get(json_object_get(j, "location"), "latitude")) == -23.5);
    WG_CHECK_STR(jget(j, "location.name"), "Here");
    json_decref(j);
    wg_msg_free(m);

    Wa__Message y = WA__MESSAGE__INIT;
    Wa__Message__ContactMessage c = WA__MESSAGE__CONTACT_MESSAGE__INIT;
    c.display_name = "Ann";
    c.vcard = "BEGIN:VCARD\nFN:Ann\nEND:VCARD";
    y.contact_message = &c;
    WG_CHECK_EQ_INT(decode(&y, &m, &j), 0);
    WG_CHECK_EQ_INT(m->kind, WG_MSG_CONTACT);
    WG_CHECK_STR(jget(j, "contact.displayName"), "Ann");
    WG_CHECK_STR(jget(j, "contact.vcard"), "BEGIN:VCARD\nFN:Ann\nEND:VCARD");
    json_decref(j);
    wg_msg_free(m);

    Wa__Message z = WA__MESSAGE__INIT;
    Wa__Message__PollCreationMessage p = WA__MESSAGE__POLL_CREATION_MESSAGE__INIT;
    p.name = "Lunch?";
    z.poll_creation_message_v3 = &p;
    WG_CHECK_EQ_INT(decode(&z, &m, &j), 0);
    WG_CHECK_EQ_INT(m->kind, WG_MSG_POLL);
    WG_CHECK_STR(jget(j, "name"), "Lunch?");
    json_decref(j);
    wg_msg_free(m);
}

WG_TEST(msg_builders_round_trip)
{
    uint8_t *b = NULL;
    size_t n = 0;
    wg_msg_t *m = NULL;
    json_t *j = NULL;

    /* plain text is a conversation */
    WG_CHECK_EQ_INT(wg_msg_build_text("hi", NULL, NULL, 0, &b, &n), 0);
    Wa__Message *raw = NULL;
    WG_CHECK_EQ_INT(wg_pb_unpack(&wa__message__descriptor, b, n, (ProtobufCMessage **)&raw), 0);
    WG_CHECK_STR(raw->conversation, "hi");
    WG_CHECK(raw->extended_text_message == NULL);
    wa__message__free_unpacked(raw, NULL);
    free(b);

    /* a reply: extendedTextMessage with contextInfo{stanzaId, participant, quotedMessage} */
    wg_msg_quote_t q = {.id = "3EB0QUOTED", .participant = "7@s.whatsapp.net", .text = "orig"};
    const char *ment[] = {"7@s.whatsapp.net"};
    WG_CHECK_EQ_INT(wg_msg_build_text("answer", &q, ment, 1, &b, &n), 0);
    WG_CHECK_EQ_INT(wg_pb_unpack(&wa__message__descriptor, b, n, (ProtobufCMessage **)&raw), 0);
    WG_CHECK(raw->extended_text_message && raw->extended_text_message->context_info);
    WG_CHECK_STR(raw->extended_text_message->context_info->stanza_id, "3EB0QUOTED");
    WG_CHECK_STR(raw->extended_text_message->context_info->quoted_message->conversation, "orig");
    wa__message__free_unpacked(raw, NULL);
    WG_CHECK_EQ_INT(wg_msg_decode(b, n, &m), 0);
    WG_CHECK_STR(m->text, "answer");
    WG_CHECK_STR(m->quoted_id, "3EB0QUOTED");
    WG_CHECK_STR(m->quoted_participant, "7@s.whatsapp.net");
    WG_CHECK_EQ_INT(m->n_mentions, 1);
    wg_msg_free(m);
    free(b);
    WG_CHECK_EQ_INT(wg_msg_build_text(NULL, NULL, NULL, 0, &b, &n), WG_EINVAL);

    /* reaction, revoke, edit */
    wg_msg_key_t k = {.remote_jid = "5@s.whatsapp.net", .id = "3EB0TARGET", .from_me = 1};
    WG_CHECK_EQ_INT(wg_msg_build_reaction(&k, "\xF0\x9F\x91\x8D", 1700000000000, &b, &n), 0);
    WG_CHECK_EQ_INT(wg_msg_decode(b, n, &m), 0);
    WG_CHECK_EQ_INT(m->kind, WG_MSG_REACTION);
    WG_CHECK_STR(m->text, "\xF0\x9F\x91\x8D");
    WG_CHECK_STR(m->target.id, "3EB0TARGET");
    WG_CHECK_EQ_INT(m->target.from_me, 1);
    j = wg_msg_to_json(m);
    WG_CHECK(json_is_true(json_object_get(json_object_get(j, "target"), "fromMe")));
    json_decref(j);
    wg_msg_free(m);
    free(b);
    WG_CHECK_EQ_INT(wg_msg_build_revoke(&k, &b, &n), 0);
    WG_CHECK_EQ_INT(wg_msg_decode(b, n, &m), 0);
    WG_CHECK_EQ_INT(m->kind, WG_MSG_REVOKE);
    WG_CHECK_EQ_INT(m->protocol_type, 0);
    WG_CHECK_STR(m->target.remote_jid, "5@s.whatsapp.net");
    wg_msg_free(m);
    free(b);
    WG_CHECK_EQ_INT(wg_msg_build_edit(&k, "fixed", 1700000000000, &b, &n), 0);
    WG_CHECK_EQ_INT(wg_msg_decode(b, n, &m), 0);
    WG_CHECK_EQ_INT(m->kind, WG_MSG_EDIT);
    WG_CHECK_EQ_INT(m->protocol_type, 14);
    WG_CHECK_STR(m->text, "fixed");
    j = wg_msg_to_json(m);
    WG_CHECK_STR(jget(j, "type"), "edit");
    WG_CHECK_STR(jget(j, "target.id"), "3EB0TARGET");
    json_decref(j);
    wg_msg_free(m);
    free(b);

    /* a history-sync notification is "protocol" */
    Wa__Message x = WA__MESSAGE__INIT;
    Wa__Message__ProtocolMessage p = WA__MESSAGE__PROTOCOL_MESSAGE__INIT;
    p.has_type = 1;
    p.type = WA__MESSAGE__PROTOCOL_MESSAGE__TYPE__HISTORY_SYNC_NOTIFICATION;
    x.protocol_message = &p;
    WG_CHECK_EQ_INT(decode(&x, &m, NULL), 0);
    WG_CHECK_EQ_INT(m->kind, WG_MSG_PROTOCOL);
    WG_CHECK_EQ_INT(m->protocol_type, 5);
    wg_msg_free(m);
}

WG_TEST(msg_skdm_and_dsm)
{
    uint8_t *b = NULL, *w = NULL;
    size_t n = 0, wn = 0;
    wg_msg_t *m = NULL;
    const uint8_t skdm[] = {0x33, 1, 2, 3};
    WG_CHECK_EQ_INT(wg_msg_build_skdm("123@g.us", skdm, sizeof(skdm), &b, &n), 0);
    WG_CHECK_EQ_INT(wg_msg_decode(b, n, &m), 0);
    WG_CHECK_EQ_INT(m->kind, WG_MSG_EMPTY);
    WG_CHECK_STR(m->skdm_group, "123@g.us");
    WG_CHECK_EQ_INT(m->skdm.len, 4);
    WG_CHECK_MEM(m->skdm.p, skdm, 4);
    wg_msg_free(m);
    free(b);

    /* DSM: our text copied to our own devices; the chat is the destination */
    WG_CHECK_EQ_INT(wg_msg_build_text("to bob", NULL, NULL, 0, &b, &n), 0);
    WG_CHECK_EQ_INT(wg_msg_wrap_dsm(b, n, "222@s.whatsapp.net", &w, &wn), 0);
    WG_CHECK(wn > n);
    WG_CHECK_EQ_INT(wg_msg_decode(w, wn, &m), 0);
    WG_CHECK_EQ_INT(m->kind, WG_MSG_TEXT);
    WG_CHECK_STR(m->text, "to bob");
    WG_CHECK_STR(m->dsm_destination, "222@s.whatsapp.net");
    json_t *j = wg_msg_to_json(m);
    WG_CHECK_STR(jget(j, "destination"), "222@s.whatsapp.net");
    json_decref(j);
    wg_msg_free(m);
    free(w);
    free(b);
    WG_CHECK_EQ_INT(wg_msg_wrap_dsm((const uint8_t *)"\xff\xff", 2, "x@s.whatsapp.net", &w, &wn),
                    WG_EPROTO);
    WG_CHECK_EQ_INT(wg_msg_wrap_dsm(NULL, 0, "", &w, &wn), WG_EINVAL);

    /* messageContextInfo travels to the outside of the DSM */
    Wa__Message x = WA__MESSAGE__INIT;
    Wa__MessageContextInfo mci = WA__MESSAGE_CONTEXT_INFO__INIT;
    uint8_t secret[32] = {9};
    mci.has_message_secret = 1;
    mci.message_secret = (ProtobufCBinaryData){32, secret};
    x.conversation = "s";
    x.message_context_info = &mci;
    WG_CHECK_EQ_INT(pack_msg(&x, &b, &n), 0);
    WG_CHECK_EQ_INT(wg_msg_wrap_dsm(b, n, "1@s.whatsapp.net", &w, &wn), 0);
    Wa__Message *raw = NULL;
    WG_CHECK_EQ_INT(wg_pb_unpack(&wa__message__descriptor, w, wn, (ProtobufCMessage **)&raw), 0);
    WG_CHECK(raw->message_context_info && raw->message_context_info->has_message_secret);
    WG_CHECK(raw->device_sent_message && raw->device_sent_message->message);
    WG_CHECK_STR(raw->device_sent_message->message->conversation, "s");
    wa__message__free_unpacked(raw, NULL);
    free(w);
    free(b);
}

WG_TEST(msg_decode_rejects_garbage)
{
    wg_msg_t *m = NULL;
    const uint8_t bad1[] = {0x0a, 0x05, 'a'}; /* truncated string */
    const uint8_t bad2[] = {0x0b};            /* group wire type */
    WG_CHECK_EQ_INT(wg_msg_decode(bad1, sizeof(bad1), &m), WG_EPROTO);
    WG_CHECK(m == NULL);
    WG_CHECK_EQ_INT(wg_msg_decode(bad2, sizeof(bad2), &m), WG_EPROTO);
    /* deep nesting (a quoted message in a quoted message ...) is refused, not a stack overflow:
     * Message{extendedTextMessage(6){contextInfo(17){quotedMessage(3){Message ...}}}} */
    uint8_t *cur = NULL;
    size_t cl = 0;
    for (int i = 0; i < 3 * 100; i++) {
        static const uint8_t tags[3][2] = {{0x1a}, {0x8a, 0x01}, {0x32}};
        const uint8_t *tag = tags[i % 3];
        size_t tagn = i % 3 == 1 ? 2 : 1, k = 0;
        uint8_t *nxt = malloc(cl + 16);
        WG_CHECK(nxt);
        memcpy(nxt, tag, tagn);
        k = tagn;
        for (size_t v = cl;; v >>= 7) { /* varint length */
            nxt[k++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
            if (v <= 0x7f)
                break;
        }
        if (cl)
            memcpy(nxt + k, cur, cl);
        free(cur);
        cur = nxt;
        cl = k + cl;
    }
    WG_CHECK_EQ_INT(wg_msg_decode(cur, cl, &m), WG_EPROTO);
    WG_CHECK(m == NULL);
    /* but 5 levels are fine */
    free(cur);
    cur = NULL;
    cl = 0;
    for (int i = 0; i < 3 * 5; i++) {
        static const uint8_t tags[3][2] = {{0x1a}, {0x8a, 0x01}, {0x32}};
        size_t tagn = i % 3 == 1 ? 2 : 1;
        uint8_t *nxt = malloc(cl + 8);
        WG_CHECK(nxt);
        memcpy(nxt, tags[i % 3], tagn);
        nxt[tagn] = (uint8_t)cl; /* < 128 here */
        if (cl)
            memcpy(nxt + tagn + 1, cur, cl);
        free(cur);
        cur = nxt;
        cl += tagn + 1;
    }
    WG_CHECK_EQ_INT(wg_msg_decode(cur, cl, &m), 0);
    WG_CHECK_EQ_INT(m->kind, WG_MSG_TEXT);
    wg_msg_free(m);
    free(cur);
}
