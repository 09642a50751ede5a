/* send.c - see send.h. Validation and the engine calls of a text send and of presence; no
 * waiting here (the engine's worker sends; callers poll the outcome). */
#include "core/send.h"
#include "core/token.h"
#include "util/err.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
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

/* ---- queued sends ---- */

typedef struct qentry {
    wg_core_queued_t q;
    struct qentry *next;
} qentry_t;

/* One table for the process: the cores are per thread, a queued send is asked about from any. */
static struct {
    pthread_mutex_t mu;
    qentry_t *head, **tail; /* oldest first */
    size_t n;
} queue = {PTHREAD_MUTEX_INITIALIZER, NULL, &queue.head, 0};

/* Ends e when the engine knows its outcome, or when it waited too long (lock held). */
static void settle(wg_core_t *c, qentry_t *e, int64_t now)
{
    wg_core_queued_t *q = &e->q;
    if (q->state != WG_QUEUED_PENDING)
        return;
    int late = now > q->send.queued_at + WG_SEND_WAIT_MS + (int64_t)q->send.delay_ms;
    int st = wg_core_send_result(c, &q->send, late, &q->sent, &q->err);
    if (st == 0)
        return;
    q->state = st == 1 ? WG_QUEUED_SENT : WG_QUEUED_FAILED;
    q->ended_at = now;
    wg_core_send_drop(c, &q->send);
}

static void entry_free(wg_core_t *c, qentry_t *e)
{
    if (e->q.state == WG_QUEUED_PENDING)
        wg_core_send_drop(c, &e->q.send);
    free(e->q.request);
    free(e);
}

/* Settles what can be, then drops entries past their time and the oldest beyond the cap
 * (lock held). */
static void sweep(wg_core_t *c, int64_t now)
{
    for (qentry_t **pp = &queue.head, *e; (e = *pp);) {
        settle(c, e, now);
        int expired = e->q.state != WG_QUEUED_PENDING && now - e->q.ended_at > WG_SEND_QUEUE_TTL_MS;
        if (expired || queue.n > WG_SEND_QUEUE_MAX) {
            *pp = e->next;
            queue.n--;
            entry_free(c, e);
        } else
            pp = &e->next;
    }
    queue.tail = &queue.head;
    while (*queue.tail)
        queue.tail = &(*queue.tail)->next;
}

int wg_core_send_enqueue(wg_core_t *c, const wg_instance_t *in, const wg_core_send_text_t *m,
                         const char *request, char id[40], wg_core_err_t *err)
{
    int rv;
    char *uuid = wg_uuid_new();
    qentry_t *e = calloc(1, sizeof(*e));
    if (!uuid || !e || !(e->q.request = strdup(request ? request : "{}"))) {
        if (e)
            free(e->q.request);
        free(e);
        free(uuid);
        wg_core_err_set(err, 500, "internal_error", NULL, "out of memory");
        return WG_ENOMEM;
    }
    if ((rv = wg_core_send_text(c, in, m, &e->q.send, err)) != 0) {
        free(e->q.request);
        free(e);
        free(uuid);
        return rv;
    }
    snprintf(e->q.id, sizeof(e->q.id), "%s", uuid);
    snprintf(e->q.instance_id, sizeof(e->q.instance_id), "%s", in->id);
    snprintf(id, 40, "%s", uuid);
    free(uuid);
    pthread_mutex_lock(&queue.mu);
    *queue.tail = e;
    queue.tail = &e->next;
    queue.n++;
    sweep(c, now_ms());
    pthread_mutex_unlock(&queue.mu);
    return 0;
}

int wg_core_send_queued(wg_core_t *c, const char *instance_id, const char *id,
                        wg_core_queued_t *out, wg_core_err_t *err)
{
    int rv = WG_ENOTFOUND;
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&queue.mu);
    for (qentry_t *e = queue.head; e; e = e->next) {
        if (strcmp(e->q.id, id) || strcmp(e->q.instance_id, instance_id))
            continue;
        settle(c, e, now_ms());
        *out = e->q;
        rv = (out->request = strdup(e->q.request)) ? 0 : WG_ENOMEM;
        break;
    }
    pthread_mutex_unlock(&queue.mu);
    if (rv == WG_ENOTFOUND)
        wg_core_err_set(err, 404, "not_found", NULL, "queued request not found");
    else if (rv)
        wg_core_err_set(err, 500, "internal_error", NULL, "out of memory");
    return rv;
}

void wg_core_queued_dispose(wg_core_queued_t *q)
{
    free(q->request);
    q->request = NULL;
}
