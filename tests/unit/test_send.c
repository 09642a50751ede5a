/* test_send.c - core/send.c against a scripted engine: recipient normalisation, the bounds and
 * the WORKING check of a text send, how each engine outcome becomes an error, presence, and the
 * queued sends (settling, per-instance lookup, release of the engine's records). */
#include "core/send.h"
#include "test.h"
#include "util/err.h"

#include <stdint.h>
#include <stdlib.h>

/* A scripted engine: send_text hands out tokens 1, 2, …; send_result answers what the test put
 * in outcome[token] (0 = still under way). */
#define NT 16
typedef struct {
    wg_engine_t base;
    int send_rv; /* what send_text returns */
    char to[160], text[64], quoted[32], instance[64];
    unsigned delay;
    uint64_t next;
    int ended[NT], rv[NT], dropped[NT];
    char state[32], presence_to[160];
} fake_t;

static int f_send_text(wg_engine_t *e, const char *id, const char *to, const char *text,
                       const char *quoted, unsigned delay_ms, uint64_t *token)
{
    fake_t *f = (fake_t *)e;
    if (f->send_rv)
        return f->send_rv;
    snprintf(f->instance, sizeof(f->instance), "%s", id);
    snprintf(f->to, sizeof(f->to), "%s", to);
    snprintf(f->text, sizeof(f->text), "%s", text);
    snprintf(f->quoted, sizeof(f->quoted), "%s", quoted ? quoted : "(none)");
    f->delay = delay_ms;
    *token = ++f->next;
    return 0;
}

static int f_send_result(wg_engine_t *e, uint64_t token, int *rv, char msg_id[32], int drop)
{
    fake_t *f = (fake_t *)e;
    if (token >= NT || f->dropped[token])
        return WG_ENOTFOUND;
    if (drop) {
        f->dropped[token] = 1;
        return 0;
    }
    if (!f->ended[token])
        return 0;
    *rv = f->rv[token];
    snprintf(msg_id, 32, "3EB0%018llu", (unsigned long long)token);
    return 1;
}

static int f_presence(wg_engine_t *e, const char *id, const char *state, const char *to)
{
    fake_t *f = (fake_t *)e;
    (void)id;
    snprintf(f->state, sizeof(f->state), "%s", state);
    snprintf(f->presence_to, sizeof(f->presence_to), "%s", to ? to : "(none)");
    return 0;
}

static const wg_engine_ops_t fake_ops = {
    .name = "fake", .send_text = f_send_text, .send_result = f_send_result, .presence = f_presence};

static void setup(fake_t *f, wg_core_t *c, wg_instance_t *in, const char *status)
{
    memset(f, 0, sizeof(*f));
    f->base.ops = &fake_ops;
    memset(c, 0, sizeof(*c));
    c->engine = &f->base;
    memset(in, 0, sizeof(*in));
    in->id = (char *)"9b2f4c1e-0000-4000-8000-000000000001";
    in->status = (char *)status;
}

WG_TEST(send_to_jid)
{
    char j[160];
    WG_CHECK(wg_core_send_to_jid("+49 151-234 567", j, sizeof(j)) == 0);
    WG_CHECK(!strcmp(j, "49151234567@s.whatsapp.net"));
    WG_CHECK(wg_core_send_to_jid("201234567890@c.us", j, sizeof(j)) == 0);
    WG_CHECK(!strcmp(j, "201234567890@s.whatsapp.net"));
    WG_CHECK(wg_core_send_to_jid("120363024158769234@g.us", j, sizeof(j)) == 0);
    WG_CHECK(!strcmp(j, "120363024158769234@g.us"));
    WG_CHECK(wg_core_send_to_jid("1234", j, sizeof(j)) == WG_EINVAL);      /* too short */
    WG_CHECK(wg_core_send_to_jid("49+151234", j, sizeof(j)) == WG_EINVAL); /* '+' inside */
    WG_CHECK(wg_core_send_to_jid("abc", j, sizeof(j)) == WG_EINVAL);
    WG_CHECK(wg_core_send_to_jid("@s.whatsapp.net", j, sizeof(j)) == WG_EINVAL);
    WG_CHECK(wg_core_send_to_jid("a b@s.whatsapp.net", j, sizeof(j)) == WG_EINVAL);
    WG_CHECK(wg_core_send_to_jid("12345678901234567890123456789012", j, sizeof(j)) == WG_EINVAL);
    char small[20];
    WG_CHECK(wg_core_send_to_jid("201234567890@c.us", small, sizeof(small)) == WG_EINVAL);
}

WG_TEST(send_text_rules)
{
    fake_t f;
    wg_core_t c;
    wg_instance_t in;
    wg_core_send_t s;
    wg_core_err_t err;
    setup(&f, &c, &in, WG_STATUS_WORKING);
    json_t *d = json_integer(1500), *bad = json_integer(20001), *str = json_string("5");
    wg_core_send_text_t m = {"+55 11 99999-0000", "hi", "", d};
    WG_CHECK(wg_core_send_text(&c, &in, &m, &s, &err) == 0);
    WG_CHECK(!strcmp(s.to, "5511999990000@s.whatsapp.net") && !strcmp(f.to, s.to));
    WG_CHECK(!strcmp(f.text, "hi") && !strcmp(f.quoted, "(none)") && f.delay == 1500);
    WG_CHECK(s.delay_ms == 1500 && s.token == 1 && s.queued_at > 0);
    WG_CHECK(!strcmp(f.instance, in.id));
    m.quoted_id = "3EB0AAAA";
    m.delay = NULL;
    WG_CHECK(wg_core_send_text(&c, &in, &m, &s, &err) == 0);
    WG_CHECK(!strcmp(f.quoted, "3EB0AAAA") && f.delay == 0 && s.delay_ms == 0);
    /* each rule: its status, code and field */
    struct {
        const char *to, *text;
        json_t *delay;
        const char *field;
    } bad_cases[] = {{NULL, "x", NULL, "to"},
                     {"nope", "x", NULL, "to"},
                     {"5511999990000", NULL, NULL, "text"},
                     {"5511999990000", "", NULL, "text"},
                     {"5511999990000", "x", bad, "delay"},
                     {"5511999990000", "x", str, "delay"}};
    for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
        wg_core_send_text_t b = {bad_cases[i].to, bad_cases[i].text, NULL, bad_cases[i].delay};
        memset(&err, 0, sizeof(err));
        WG_CHECK(wg_core_send_text(&c, &in, &b, &s, &err) == WG_EINVAL);
        WG_CHECK_EQ_INT(err.status, 422);
        WG_CHECK(!strcmp(err.code, "validation_error") && !strcmp(err.field, bad_cases[i].field));
    }
    char *big = malloc(WG_SEND_MAX_TEXT + 2);
    memset(big, 'a', WG_SEND_MAX_TEXT + 1);
    big[WG_SEND_MAX_TEXT + 1] = 0;
    wg_core_send_text_t b = {"5511999990000", big, NULL, NULL};
    WG_CHECK(wg_core_send_text(&c, &in, &b, &s, &err) == WG_EINVAL && !strcmp(err.field, "text"));
    big[WG_SEND_MAX_TEXT] = 0; /* exactly 64 KiB is fine */
    WG_CHECK(wg_core_send_text(&c, &in, &b, &s, &err) == 0);
    free(big);
    /* the engine refuses to queue: 500 */
    f.send_rv = WG_ENOMEM;
    WG_CHECK(wg_core_send_text(&c, &in, &m, &s, &err) == WG_ENOMEM);
    WG_CHECK_EQ_INT(err.status, 500);
    f.send_rv = 0;
    /* not WORKING: 409; no engine: 503 (checked before the status) */
    in.status = (char *)WG_STATUS_SCAN_QR;
    WG_CHECK(wg_core_send_text(&c, &in, &m, &s, &err) == WG_EPERM);
    WG_CHECK(err.status == 409 && !strcmp(err.code, "instance_not_connected"));
    c.engine = NULL;
    WG_CHECK(wg_core_send_text(&c, &in, &m, &s, &err) != 0);
    WG_CHECK(err.status == 503 && !strcmp(err.code, "engine_unavailable"));
    json_decref(d);
    json_decref(bad);
    json_decref(str);
}

WG_TEST(send_result_outcomes)
{
    fake_t f;
    wg_core_t c;
    wg_instance_t in;
    wg_core_send_t s;
    wg_core_sent_t sent;
    wg_core_err_t err;
    setup(&f, &c, &in, WG_STATUS_WORKING);
    wg_core_send_text_t m = {"5511999990000", "hi", NULL, NULL};
    static const struct {
        int rv, status;
        const char *code, *field;
    } cases[] = {{WG_ENOTFOUND, 404, "not_on_whatsapp", "to"},
                 {WG_EPERM, 409, "instance_not_connected", ""},
                 {WG_EINVAL, 422, "validation_error", "to"},
                 {WG_EIO, 502, "send_failed", ""}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        WG_CHECK(wg_core_send_text(&c, &in, &m, &s, &err) == 0);
        WG_CHECK(wg_core_send_result(&c, &s, 0, &sent, &err) == 0); /* under way */
        f.ended[s.token] = 1;
        f.rv[s.token] = cases[i].rv;
        memset(&err, 0, sizeof(err));
        WG_CHECK(wg_core_send_result(&c, &s, 0, &sent, &err) < 0);
        WG_CHECK_EQ_INT(err.status, cases[i].status);
        WG_CHECK(!strcmp(err.code, cases[i].code) && !strcmp(err.field, cases[i].field));
        wg_core_send_drop(&c, &s);
        WG_CHECK(f.dropped[s.token]);
    }
    /* acked */
    WG_CHECK(wg_core_send_text(&c, &in, &m, &s, &err) == 0);
    f.ended[s.token] = 1;
    WG_CHECK(wg_core_send_result(&c, &s, 0, &sent, &err) == 1);
    WG_CHECK(!strncmp(sent.message_id, "3EB0", 4) && sent.acked_at >= s.queued_at);
    /* still under way when the caller gives up: 504 */
    WG_CHECK(wg_core_send_text(&c, &in, &m, &s, &err) == 0);
    WG_CHECK(wg_core_send_result(&c, &s, 1, &sent, &err) == WG_ETIMEDOUT);
    WG_CHECK(err.status == 504 && !strcmp(err.code, "send_timeout"));
}

WG_TEST(send_presence_rules)
{
    fake_t f;
    wg_core_t c;
    wg_instance_t in;
    wg_core_err_t err;
    setup(&f, &c, &in, WG_STATUS_WORKING);
    WG_CHECK(wg_core_send_presence(&c, &in, "available", "ignored", &err) == 0);
    WG_CHECK(!strcmp(f.state, "available") && !strcmp(f.presence_to, "(none)"));
    WG_CHECK(wg_core_send_presence(&c, &in, "composing", "+49 1512 345", &err) == 0);
    WG_CHECK(!strcmp(f.state, "composing") && !strcmp(f.presence_to, "491512345@s.whatsapp.net"));
    WG_CHECK(wg_core_send_presence(&c, &in, "paused", NULL, &err) == WG_EINVAL);
    WG_CHECK(err.status == 422 && !strcmp(err.field, "to"));
    WG_CHECK(wg_core_send_presence(&c, &in, "recording", NULL, &err) == WG_EINVAL);
    WG_CHECK(err.status == 422 && !strcmp(err.field, "presence"));
    WG_CHECK(wg_core_send_presence(&c, &in, NULL, NULL, &err) == WG_EINVAL);
    in.status = (char *)WG_STATUS_STOPPED;
    WG_CHECK(wg_core_send_presence(&c, &in, "available", NULL, &err) == WG_EPERM);
    WG_CHECK_EQ_INT(err.status, 409);
}

WG_TEST(send_queue)
{
    fake_t f;
    wg_core_t c;
    wg_instance_t in, other;
    wg_core_err_t err;
    wg_core_queued_t q;
    char id[40], id2[40];
    setup(&f, &c, &in, WG_STATUS_WORKING);
    other = in;
    other.id = (char *)"9b2f4c1e-0000-4000-8000-000000000002";
    wg_core_send_text_t m = {"5511999990000", "hi", NULL, NULL};
    /* refused at once: nothing kept */
    wg_core_send_text_t b = {"nope", "hi", NULL, NULL};
    WG_CHECK(wg_core_send_enqueue(&c, &in, &b, "{}", id, &err) == WG_EINVAL);
    WG_CHECK(!strcmp(err.field, "to") && f.next == 0);
    WG_CHECK(wg_core_send_enqueue(&c, &in, &m, "{\"text\":\"hi\"}", id, &err) == 0);
    WG_CHECK(strlen(id) == 36 && id[14] == '4');
    uint64_t t1 = f.next;
    WG_CHECK(wg_core_send_queued(&c, in.id, id, &q, &err) == 0);
    WG_CHECK(q.state == WG_QUEUED_PENDING && !strcmp(q.request, "{\"text\":\"hi\"}"));
    WG_CHECK(!strcmp(q.id, id) && !strcmp(q.instance_id, in.id));
    wg_core_queued_dispose(&q);
    /* another instance cannot see it; an unknown id is 404 */
    WG_CHECK(wg_core_send_queued(&c, other.id, id, &q, &err) == WG_ENOTFOUND);
    WG_CHECK(err.status == 404);
    WG_CHECK(wg_core_send_queued(&c, in.id, "nope", &q, &err) == WG_ENOTFOUND);
    /* acked: settled when asked, the engine's record released */
    f.ended[t1] = 1;
    WG_CHECK(wg_core_send_queued(&c, in.id, id, &q, &err) == 0);
    WG_CHECK(q.state == WG_QUEUED_SENT && !strncmp(q.sent.message_id, "3EB0", 4));
    WG_CHECK(q.ended_at >= q.send.queued_at && f.dropped[t1]);
    wg_core_queued_dispose(&q);
    /* a failed send, settled by the next enqueue though nobody asked */
    WG_CHECK(wg_core_send_enqueue(&c, &in, &m, "{}", id2, &err) == 0);
    uint64_t t2 = f.next;
    f.ended[t2] = 1;
    f.rv[t2] = WG_ENOTFOUND;
    WG_CHECK(wg_core_send_enqueue(&c, &other, &m, "{}", id, &err) == 0);
    WG_CHECK(f.dropped[t2]);
    WG_CHECK(wg_core_send_queued(&c, in.id, id2, &q, &err) == 0);
    WG_CHECK(q.state == WG_QUEUED_FAILED && q.err.status == 404);
    WG_CHECK(!strcmp(q.err.code, "not_on_whatsapp"));
    wg_core_queued_dispose(&q);
}
