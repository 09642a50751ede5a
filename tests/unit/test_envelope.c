/* test_envelope.c - events/envelope: each dialect's envelope and data shapes rendered from core
 * events (native, Evolution, Wachat, Hypersender), Evolution's byEvents segments, the
 * server_url default, and the custom headers of a webhook. */
#include "events/envelope.h"
#include "test.h"
#include "util/err.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static wg_envelope_inst_t inst(const char *dialect)
{
    wg_envelope_inst_t in = {0};
    in.id = "0b7c2f4e-1111-4222-8333-944455556666";
    in.name = "shop";
    in.api_name = "t1_abc_shop";
    in.owner_id = "acc_1";
    in.jid = "5511999990000@s.whatsapp.net";
    in.push_name = "Shop";
    snprintf(in.dialect, sizeof(in.dialect), "%s", dialect);
    return in;
}

static wg_outbox_row_t row(const char *event, const char *payload)
{
    wg_outbox_row_t r = {.seq = 3, .created_at = 1767225600123LL};
    strcpy(r.id, "evt_00000000000a0000000000000001");
    strcpy(r.instance_id, "0b7c2f4e-1111-4222-8333-944455556666");
    snprintf(r.event, sizeof(r.event), "%s", event);
    r.payload = (char *)payload;
    return r;
}

/* Renders and parses; the caller json_decref()s. */
static json_t *render(const char *dialect, const char *event, const char *payload,
                      wg_envelope_t *env)
{
    wg_envelope_inst_t in = inst(dialect);
    wg_webhook_cfg_t c = {0};
    c.url = "https://hooks.example/in";
    wg_outbox_row_t r = row(event, payload);
    if (wg_envelope_render(&in, &c, "https://gw.example", &r, env) != 0)
        return NULL;
    return json_loads(env->body, 0, NULL);
}

#define S(o, k) json_string_value(json_object_get((o), (k)))

static const char *const MSG =
    "{\"id\":\"3EB0AABBCCDDEEFF001122\",\"chat\":\"5511988887777@s.whatsapp.net\",\"from\":"
    "\"5511988887777@s.whatsapp.net\",\"fromMe\":false,\"isGroup\":false,\"timestamp\":"
    "1767225600,\"pushName\":\"Ana\",\"message\":{\"type\":\"text\",\"text\":\"oi\"}}";

WG_TEST(envelope_native_unchanged)
{
    wg_envelope_t env;
    json_t *j = render("native", "message.received", MSG, &env);
    WG_CHECK(j != NULL);
    WG_CHECK_STR(S(j, "event"), "message.received");
    WG_CHECK_STR(S(j, "instanceId"), "0b7c2f4e-1111-4222-8333-944455556666");
    WG_CHECK_STR(S(json_object_get(j, "data"), "id"), "3EB0AABBCCDDEEFF001122");
    WG_CHECK(env.enviaai_sig == 1 && env.nhdr == 0);
    WG_CHECK_STR(env.url_part, "message.received");
    json_decref(j);
    wg_envelope_dispose(&env);
    /* an unknown dialect string (never written by core/) falls back to native */
    j = render("enviaai", "qr.updated", "{\"code\":\"x\"}", &env);
    WG_CHECK(j && env.enviaai_sig && json_object_get(j, "seq"));
    json_decref(j);
    wg_envelope_dispose(&env);
}

WG_TEST(envelope_evolution_message)
{
    wg_envelope_t env;
    json_t *j = render("evolution", "message.received", MSG, &env);
    WG_CHECK(j != NULL);
    WG_CHECK_STR(S(j, "event"), "messages.upsert");
    WG_CHECK_STR(env.url_part, "messages-upsert");
    WG_CHECK(!env.enviaai_sig);
    WG_CHECK_STR(S(j, "instance"), "shop");
    WG_CHECK_STR(S(j, "destination"), "https://hooks.example/in");
    WG_CHECK_STR(S(j, "date_time"), "2026-01-01T00:00:00.123Z");
    WG_CHECK_STR(S(j, "sender"), "5511999990000@s.whatsapp.net");
    WG_CHECK_STR(S(j, "server_url"), "https://gw.example");
    WG_CHECK(json_is_null(json_object_get(j, "apikey")));
    WG_CHECK_EQ_INT(json_object_size(j), 8);
    json_t *d = json_object_get(j, "data"), *k = json_object_get(d, "key");
    WG_CHECK_STR(S(k, "remoteJid"), "5511988887777@s.whatsapp.net");
    WG_CHECK(json_is_false(json_object_get(k, "fromMe")));
    WG_CHECK_STR(S(k, "id"), "3EB0AABBCCDDEEFF001122");
    WG_CHECK(!json_object_get(k, "participant"));
    WG_CHECK_STR(S(d, "pushName"), "Ana");
    WG_CHECK_STR(S(d, "status"), "DELIVERY_ACK");
    WG_CHECK_STR(S(json_object_get(d, "message"), "conversation"), "oi");
    WG_CHECK_STR(S(d, "messageType"), "conversation");
    WG_CHECK_EQ_INT(json_integer_value(json_object_get(d, "messageTimestamp")), 1767225600);
    WG_CHECK_STR(S(d, "instanceId"), "0b7c2f4e-1111-4222-8333-944455556666");
    WG_CHECK_STR(S(d, "source"), "web");
    json_decref(j);
    wg_envelope_dispose(&env);
    /* our own phone's message in a group, with an image and a reply */
    j = render("evolution", "message.sent",
               "{\"id\":\"3A0123456789ABCDEF01\",\"chat\":\"120363@g.us\",\"from\":"
               "\"5511999990000@s.whatsapp.net\",\"fromMe\":true,\"isGroup\":true,\"timestamp\":5,"
               "\"message\":{\"type\":\"image\",\"caption\":\"c\",\"media\":{\"url\":\"https://m\","
               "\"mimetype\":\"image/jpeg\",\"fileLength\":10},\"quoted\":{\"id\":\"Q1\","
               "\"participant\":\"p@s.whatsapp.net\"}}}",
               &env);
    WG_CHECK(j != NULL);
    WG_CHECK_STR(S(j, "event"), "send.message");
    WG_CHECK_STR(env.url_part, "send-message");
    d = json_object_get(j, "data");
    WG_CHECK_STR(S(json_object_get(d, "key"), "participant"), "5511999990000@s.whatsapp.net");
    WG_CHECK_STR(S(d, "status"), "SERVER_ACK");
    WG_CHECK_STR(S(d, "messageType"), "imageMessage");
    WG_CHECK_STR(S(d, "source"), "ios");
    WG_CHECK(json_is_null(json_object_get(d, "pushName")));
    json_t *im = json_object_get(json_object_get(d, "message"), "imageMessage");
    WG_CHECK_STR(S(im, "caption"), "c");
    WG_CHECK_STR(S(im, "mimetype"), "image/jpeg");
    WG_CHECK_EQ_INT(json_integer_value(json_object_get(im, "fileLength")), 10);
    WG_CHECK_STR(S(json_object_get(d, "contextInfo"), "stanzaId"), "Q1");
    json_decref(j);
    wg_envelope_dispose(&env);
}

WG_TEST(envelope_evolution_other_events)
{
    wg_envelope_t env;
    json_t *j = render("evolution", "connection.updated",
                       "{\"status\":\"WORKING\",\"jid\":\"5511999990000@s.whatsapp.net\","
                       "\"pushName\":\"Shop\"}",
                       &env);
    json_t *d = json_object_get(j, "data");
    WG_CHECK_STR(S(j, "event"), "connection.update");
    WG_CHECK_STR(S(d, "instance"), "shop");
    WG_CHECK_STR(S(d, "state"), "open");
    WG_CHECK_EQ_INT(json_integer_value(json_object_get(d, "statusReason")), 200);
    WG_CHECK_STR(S(d, "wuid"), "5511999990000@s.whatsapp.net");
    WG_CHECK_STR(S(d, "profileName"), "Shop");
    json_decref(j);
    wg_envelope_dispose(&env);
    j = render("evolution", "connection.updated",
               "{\"status\":\"FAILED\",\"reason\":\"logged_out\"}", &env);
    d = json_object_get(j, "data");
    WG_CHECK_STR(S(d, "state"), "close");
    WG_CHECK_EQ_INT(json_integer_value(json_object_get(d, "statusReason")), 401);
    WG_CHECK(!json_object_get(d, "wuid"));
    json_decref(j);
    wg_envelope_dispose(&env);
    j = render("evolution", "message.ack",
               "{\"id\":\"M1\",\"ids\":[\"M1\"],\"status\":\"read\",\"chat\":\"1@s.whatsapp.net\","
               "\"timestamp\":9}",
               &env);
    d = json_object_get(j, "data");
    WG_CHECK_STR(S(j, "event"), "messages.update");
    WG_CHECK_STR(S(d, "keyId"), "M1");
    WG_CHECK_STR(S(d, "remoteJid"), "1@s.whatsapp.net");
    WG_CHECK_STR(S(d, "status"), "READ");
    WG_CHECK(json_is_true(json_object_get(d, "fromMe")));
    json_decref(j);
    wg_envelope_dispose(&env);
    j = render("evolution", "qr.updated", "{\"code\":\"2@abc,def,ghi,jkl\"}", &env);
    d = json_object_get(json_object_get(j, "data"), "qrcode");
    WG_CHECK_STR(S(j, "event"), "qrcode.updated");
    WG_CHECK_STR(env.url_part, "qrcode-updated");
    WG_CHECK_STR(S(d, "code"), "2@abc,def,ghi,jkl");
    WG_CHECK(!strncmp(S(d, "base64"), "data:image/png;base64,iVBOR", 27));
    WG_CHECK_STR(S(d, "instance"), "shop");
    json_decref(j);
    wg_envelope_dispose(&env);
    j = render("evolution", "call.received",
               "{\"id\":\"C1\",\"from\":\"1@s.whatsapp.net\",\"video\":true,\"isGroup\":false,"
               "\"timestamp\":1767225600,\"rejected\":false}",
               &env);
    d = json_object_get(j, "data");
    WG_CHECK_STR(S(j, "event"), "call");
    WG_CHECK_STR(S(d, "status"), "offer");
    WG_CHECK_STR(S(d, "date"), "2026-01-01T00:00:00.000Z");
    WG_CHECK(json_is_true(json_object_get(d, "isVideo")));
    json_decref(j);
    wg_envelope_dispose(&env);
    j = render("evolution", "instance.deleted", "{\"instanceId\":\"x\"}", &env);
    WG_CHECK_STR(S(j, "event"), "remove.instance");
    WG_CHECK(json_is_null(json_object_get(j, "data")));
    json_decref(j);
    wg_envelope_dispose(&env);
    /* a payload that is not an object is refused, nothing allocated */
    WG_CHECK(render("evolution", "qr.updated", "[1]", &env) == NULL);
    WG_CHECK(env.body == NULL);
}

WG_TEST(envelope_wachat_and_hypersender)
{
    wg_envelope_t env;
    json_t *j = render("wachat", "message.received", MSG, &env);
    WG_CHECK_STR(S(j, "event"), "messages.upsert");
    WG_CHECK_STR(S(j, "instance"), "t1_abc_shop");
    json_decref(j);
    wg_envelope_dispose(&env);
    j = render("hypersender", "message.received", MSG, &env);
    WG_CHECK(j != NULL);
    WG_CHECK_STR(S(j, "event"), "message.any");
    json_t *d = json_object_get(j, "data"), *p = json_object_get(d, "payload");
    WG_CHECK_STR(S(d, "id"), "evt_00000000000a0000000000000001");
    WG_CHECK_STR(S(d, "event"), "message.any");
    WG_CHECK_STR(S(d, "instanceId"), "0b7c2f4e-1111-4222-8333-944455556666");
    WG_CHECK_STR(S(d, "userId"), "acc_1");
    WG_CHECK_STR(S(json_object_get(d, "me"), "id"), "5511999990000@c.us");
    WG_CHECK_STR(S(p, "id"), "false_5511988887777@c.us_3EB0AABBCCDDEEFF001122");
    WG_CHECK_STR(S(p, "from"), "5511988887777@c.us");
    WG_CHECK_STR(S(p, "body"), "oi");
    WG_CHECK_EQ_INT(json_integer_value(json_object_get(p, "ack")), 2);
    WG_CHECK_STR(S(p, "ackName"), "DEVICE");
    WG_CHECK_STR(S(json_object_get(json_object_get(p, "_data"), "message"), "conversation"), "oi");
    WG_CHECK_EQ_INT(env.nhdr, 2);
    WG_CHECK_STR(env.hdr[0].name, "x-userId");
    WG_CHECK_STR(env.hdr[0].value, "acc_1");
    WG_CHECK_STR(env.hdr[1].name, "x-instanceId");
    json_decref(j);
    wg_envelope_dispose(&env);
    j = render("hypersender", "message.ack",
               "{\"id\":\"M1\",\"status\":\"delivered\",\"chat\":\"1@s.whatsapp.net\"}", &env);
    p = json_object_get(json_object_get(j, "data"), "payload");
    WG_CHECK_STR(S(p, "id"), "true_1@c.us_M1");
    WG_CHECK_STR(S(p, "ackName"), "DEVICE");
    json_decref(j);
    wg_envelope_dispose(&env);
    j = render("hypersender", "connection.updated", "{\"status\":\"WORKING\"}", &env);
    WG_CHECK_STR(S(j, "event"), "session.status");
    WG_CHECK_STR(S(json_object_get(json_object_get(j, "data"), "payload"), "status"), "WORKING");
    json_decref(j);
    wg_envelope_dispose(&env);
}

WG_TEST(envelope_server_url_and_headers)
{
    char u[128];
    wg_envelope_server_url("https://gw.example/", "0.0.0.0:8080", u, sizeof(u));
    WG_CHECK_STR(u, "https://gw.example");
    wg_envelope_server_url("", "0.0.0.0:8080", u, sizeof(u));
    WG_CHECK_STR(u, "http://localhost:8080");
    wg_envelope_server_url(NULL, "127.0.0.1:9000", u, sizeof(u));
    WG_CHECK_STR(u, "http://127.0.0.1:9000");
    WG_CHECK_STR(wg_envelope_evolution_event("group.updated"), "groups.update");
    WG_CHECK_STR(wg_envelope_evolution_event("something.new"), "something.new");
    wg_webhook_cfg_t c;
    WG_CHECK_EQ_INT(wg_webhook_cfg_parse("{\"url\":\"https://a\",\"headers\":{\"Authorization\":"
                                         "\"Bearer t\",\"X-N\":1,\"X-Two\":\"2\"}}",
                                         "evolution", &c),
                    0);
    WG_CHECK_EQ_INT(c.nhdrs, 2); /* the number is not a header value: skipped */
    WG_CHECK_STR(c.hdr_names[0], "Authorization");
    WG_CHECK_STR(c.hdr_values[0], "Bearer t");
    WG_CHECK_STR(c.hdr_names[1], "X-Two");
    wg_webhook_cfg_dispose(&c);
}
