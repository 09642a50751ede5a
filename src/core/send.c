/* send.c - see send.h. Validation and the engine calls of a text send and of presence; no
 * waiting here (the engine's worker sends; callers poll the outcome). */
#include "core/send.h"
#include "util/err.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int wg_core_send_to_jid(const char *in, char *out, size_t cap)
{
    size_t n = 0;
    char digits[32];
    const char *at = strchr(in, '@');
    if (at) {
        if (strlen(in) >= cap || strchr(in, ' ') || at == in)
            return WG_EINVAL;
        /* "c.us" is WhatsApp Web's name for the user server (Hypersender, WAHA, wa-js) */
        if (!strcmp(at, "@c.us")) {
            if ((size_t)(at - in) + sizeof("@s.whatsapp.net") > cap)
                return WG_EINVAL;
            snprintf(out, cap, "%.*s@s.whatsapp.net", (int)(at - in), in);
        } else
            snprintf(out, cap, "%s", in);
        return 0;
    }
    for (const char *p = in; *p; p++) {
        if (*p == '+' && p == in)
            continue;
        if (*p == ' ' || *p == '-')
            continue;
        if (*p < '0' || *p > '9' || n + 1 >= sizeof(digits))
            return WG_EINVAL;
        digits[n++] = *p;
    }
    digits[n] = 0;
    if (n < 5)
        return WG_EINVAL;
    snprintf(out, cap, "%s@s.whatsapp.net", digits);
    return 0;
}

static int not_connected(wg_core_err_t *err)
{
    wg_core_err_set(err, 409, "instance_not_connected", NULL,
                    "the instance is not connected to WhatsApp (status must be WORKING)");
    return WG_EPERM;
}

/* The engine has the operation (has_op) and the instance is WORKING. 0 or err set. */
static int can_send(wg_core_t *c, const wg_instance_t *in, int has_op, wg_core_err_t *err)
{
    if (!c->engine || !has_op) {
        wg_core_err_set(err, 503, "engine_unavailable", NULL, "no WhatsApp engine");
        return WG_EIO;
    }
    if (!in->status || strcmp(in->status, WG_STATUS_WORKING) != 0)
        return not_connected(err);
    return 0;
}

int wg_core_send_text(wg_core_t *c, const wg_instance_t *in, const wg_core_send_text_t *m,
                      wg_core_send_t *out, wg_core_err_t *err)
{
    int rv;
    memset(out, 0, sizeof(*out));
    if (!m->to || wg_core_send_to_jid(m->to, out->to, sizeof(out->to)) != 0) {
        wg_core_err_set(err, 422, "validation_error", "to",
                        "to must be a phone number in international format or a user JID");
        return WG_EINVAL;
    }
    if (!m->text || !*m->text || strlen(m->text) > WG_SEND_MAX_TEXT) {
        wg_core_err_set(err, 422, "validation_error", "text", "text is required (at most 64 KiB)");
        return WG_EINVAL;
    }
    if (m->delay && !json_is_null(m->delay)) {
        if (!json_is_integer(m->delay) || json_integer_value(m->delay) < 0 ||
            json_integer_value(m->delay) > WG_SEND_MAX_DELAY_MS) {
            wg_core_err_set(err, 422, "validation_error", "delay",
                            "delay must be milliseconds between 0 and 20000");
            return WG_EINVAL;
        }
        out->delay_ms = (unsigned)json_integer_value(m->delay);
    }
    int ops = c->engine && c->engine->ops->send_text && c->engine->ops->send_result;
    if ((rv = can_send(c, in, ops, err)) != 0)
        return rv;
    out->queued_at = now_ms();
    rv = c->engine->ops->send_text(c->engine, in->id, out->to, m->text,
                                   m->quoted_id && *m->quoted_id ? m->quoted_id : NULL,
                                   out->delay_ms, &out->token);
    if (rv != 0) {
        wg_core_err_set(err, 500, "internal_error", NULL, "could not queue the message");
        return rv;
    }
    return 0;
}

int wg_core_send_result(wg_core_t *c, const wg_core_send_t *s, int final, wg_core_sent_t *sent,
                        wg_core_err_t *err)
{
    const wg_engine_ops_t *ops = c->engine->ops;
    char mid[32] = "";
    int rv = 0;
    int st = ops->send_result(c->engine, s->token, &rv, mid, 0);
    if (st == 0 && !final)
        return 0;
    if (st == 1 && rv == 0) {
        memset(sent, 0, sizeof(*sent));
        snprintf(sent->message_id, sizeof(sent->message_id), "%s", mid);
        sent->acked_at = now_ms();
        return 1;
    }
    if (st == 0) {
        wg_core_err_set(err, 504, "send_timeout", NULL,
                        "WhatsApp did not acknowledge the message in time");
        return WG_ETIMEDOUT;
    }
    if (rv == WG_ENOTFOUND) {
        wg_core_err_set(err, 404, "not_on_whatsapp", "to",
                        "the number is not on WhatsApp (or the group does not exist)");
        return WG_ENOTFOUND;
    }
    if (rv == WG_EPERM)
        return not_connected(err);
    if (rv == WG_EINVAL) {
        wg_core_err_set(err, 422, "validation_error", "to",
                        "to must be a phone number in international format or a user JID");
        return WG_EINVAL;
    }
    wg_core_err_set(err, 502, "send_failed", NULL, "the message could not be sent");
    return rv < 0 ? rv : WG_EIO;
}

void wg_core_send_drop(wg_core_t *c, const wg_core_send_t *s)
{
    if (c->engine && c->engine->ops->send_result)
        c->engine->ops->send_result(c->engine, s->token, NULL, NULL, 1);
}

int wg_core_send_presence(wg_core_t *c, const wg_instance_t *in, const char *state, const char *to,
                          wg_core_err_t *err)
{
    char jid[160];
    int rv;
    int chat = state && (!strcmp(state, "composing") || !strcmp(state, "paused"));
    if (!state || (!chat && strcmp(state, "available") && strcmp(state, "unavailable"))) {
        wg_core_err_set(err, 422, "validation_error", "presence",
                        "presence must be available, unavailable, composing or paused");
        return WG_EINVAL;
    }
    if (chat && (!to || wg_core_send_to_jid(to, jid, sizeof(jid)) != 0)) {
        wg_core_err_set(err, 422, "validation_error", "to",
                        "to (a phone number or user JID) is required for composing and paused");
        return WG_EINVAL;
    }
    if ((rv = can_send(c, in, c->engine && c->engine->ops->presence, err)) != 0)
        return rv;
    if (c->engine->ops->presence(c->engine, in->id, state, chat ? jid : NULL) != 0) {
        wg_core_err_set(err, 500, "internal_error", NULL, "could not queue the presence");
        return WG_EIO;
    }
    return 0;
}
