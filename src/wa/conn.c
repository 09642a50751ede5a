/* conn.c - see conn.h. States (changed only by conn_state(), which logs):
 *
 *   STOPPED     no connection, no timer (initial; after stop, FAILED, logged out)
 *   CONNECTING  WebSocket (DNS, TCP, proxy, TLS, upgrade) under way
 *   HANDSHAKE   Noise XX under way
 *   OPEN        transport keys in place; the session runs
 *   BACKOFF     waiting for the reconnect timer */
#include "wa/conn.h"
#include "util/err.h"
#include "util/log.h"
#include "wa/binary.h"
#include "wa/creds.h"
#include "wa/msg.h"
#include "wa/noise.h"
#include "wa/recv.h"
#include "wa/signal.h"
#include "wa/signal_stage.h"
#include "wa/stanza.h"
#include "wa/ws.h"

#include <jansson.h>

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The core's status names (core.h WG_STATUS_*); one object each, so pointers compare. */
static const char STATUS_STARTING[] = "STARTING";
static const char STATUS_SCAN_QR[] = "SCAN_QR_CODE";
static const char STATUS_WORKING[] = "WORKING";
static const char STATUS_FAILED[] = "FAILED";
#define BACKOFF_BASE_MS 1000u
#define SENT_KEEP 128u            /* DMs kept for resends (whatsmeow keeps 256) */
#define MAX_OUT_BUFFER (8u << 20) /* a peer that stops reading cannot make us buffer more */

enum { C_STOPPED = 0, C_CONNECTING, C_HANDSHAKE, C_OPEN, C_BACKOFF };
static const char *const c_names[] = {"stopped", "connecting", "handshake", "open", "backoff"};

typedef struct send_op send_op_t;

struct wg_conn_s {
    wg_conn_env_t env;
    char id[64];
    wg_conn_proxy_t proxy;
    int st;
    wg_creds_t creds;
    int have_creds;
    wg_ws_t *ws;
    wg_noise_t *noise;
    wg_session_t *sess;
    struct event *timer, *defer;
    int close_pending;        /* a wg_session_close_t, 0 = none */
    const char *close_reason; /* static string */
    int leaving;              /* our own logout is under way (wg_conn_logout) */
    unsigned attempt;         /* consecutive failed connection attempts */
    uint64_t connect_ms;      /* when this attempt began (logged with WORKING) */
    const char *status;       /* last status reported (static string) */
    send_op_t *ops;           /* sends under way (newest first) */
    struct sent_dm {          /* recent DMs we sent, for resends after a retry receipt (§3.7): */
        char id[24];          /* SENT_KEEP of them, allocated at the first DM sent (22 KiB */
        char to[128];         /* that an idle instance does not need, issue 8) */
        uint8_t *msg;
        size_t len;
        int64_t t;
    } *sent;
    unsigned sent_next;
    unsigned iq_counter;
    wg_signal_storage_t *stage; /* sig's storage (owned by sig): holds writes back */
    wg_signal_t *sig;           /* the Signal state (made at the first login; kept across links) */
    struct {                    /* the instance's settings, reloaded at most every second */
        int read_messages, read_status, groups_ignore, reject_call, always_online, auto_typing;
        char msg_call[1024];
        uint64_t loaded_ms;
        int loaded;
    } set;
};

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static long long wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void conn_state(wg_conn_t *c, int st, const char *why)
{
    if (c->st == st)
        return;
    wg_log(WG_LOG_DEBUG, "conn", "instance=%s from=%s to=%s why=%s", c->id, c_names[c->st],
           c_names[st], why);
    c->st = st;
}

/* ---- reports ----------------------------------------------------------------------------- */

static void report_status(wg_conn_t *c, const char *status, const char *reason)
{
    wg_engine_report_t r = {.instance_id = c->id, .status = status, .reason = reason};
    if (c->status == status)
        return;
    c->status = status;
    c->env.report(c->env.arg, &r);
}

static void report_qr(wg_conn_t *c, const char *qr, long long expires_at)
{
    wg_engine_report_t r = {.instance_id = c->id, .qr = qr, .qr_expires_at = expires_at};
    if (c->status != STATUS_SCAN_QR)
        r.status = c->status = STATUS_SCAN_QR;
    c->env.report(c->env.arg, &r);
}

static void report_working(wg_conn_t *c)
{
    char digits[24], phone[32], jid[64];
    uint32_t device;
    const char *push = c->creds.push_name[0]       ? c->creds.push_name
                       : c->creds.business_name[0] ? c->creds.business_name
                                                   : NULL;
    wg_engine_report_t r = {.instance_id = c->id, .status = STATUS_WORKING, .push_name = push};
    if (wg_creds_phone(&c->creds, digits, sizeof(digits), &device) == 0) {
        snprintf(phone, sizeof(phone), "+%s", digits);
        snprintf(jid, sizeof(jid), "%s@s.whatsapp.net", digits);
        r.phone = phone;
        r.jid = jid;
    }
    c->status = STATUS_WORKING;
    c->env.report(c->env.arg, &r);
}

static void qr_clear(wg_conn_t *c)
{
    if (c->env.qr_changed)
        c->env.qr_changed(c->env.arg, c->id, NULL, 0);
}

/* ---- credentials ------------------------------------------------------------------------- */

static int save_creds(wg_conn_t *c)
{
    uint8_t *blob = NULL;
    size_t n = 0;
    int rv = wg_creds_seal_record(c->env.master_key, c->id, &c->creds, &blob, &n);
    if (rv == 0)
        rv = wg_store_creds_put(c->env.store, c->id, blob, n);
    free(blob);
    if (rv)
        wg_log(WG_LOG_ERROR, "conn", "instance=%s credentials not stored err=%s", c->id,
               wg_strerror(rv));
    return rv;
}

static int load_creds(wg_conn_t *c)
{
    uint8_t *blob = NULL;
    size_t n = 0;
    int rv = wg_store_creds_get(c->env.store, c->id, &blob, &n);
    if (rv == 0) {
        rv = wg_creds_open_record(c->env.master_key, c->id, blob, n, &c->creds);
        free(blob);
        if (rv) {
            wg_log(WG_LOG_ERROR, "conn",
                   "instance=%s credentials cannot be opened (wrong "
                   "WAGATE_MASTER_KEY?) err=%s",
                   c->id, wg_strerror(rv));
            return WG_ECRYPTO;
        }
        c->have_creds = 1;
        return 0;
    }
    if (rv != WG_ENOTFOUND)
        return rv;
    /* §8: a new device */
    if ((rv = wg_creds_generate(&c->creds)) != 0)
        return rv;
    c->have_creds = 1;
    return save_creds(c);
}

static int save_prekeys(wg_conn_t *c, const wg_session_prekey_t *pk, size_t n)
{
    wg_store_prekey_t *v = calloc(n ? n : 1, sizeof(*v));
    char label[96];
    uint8_t pair[64];
    size_t done = 0;
    int rv = v ? 0 : WG_ENOMEM;
    for (; rv == 0 && done < n; done++) {
        uint8_t *blob = NULL;
        memcpy(pair, pk[done].kp.priv, 32);
        memcpy(pair + 32, pk[done].kp.pub, 32);
        snprintf(label, sizeof(label), "%s/prekey/%u", c->id, pk[done].id);
        rv = wg_creds_seal(c->env.master_key, label, pair, sizeof(pair), &blob, &v[done].len);
        v[done].id = pk[done].id;
        v[done].blob = blob;
        if (rv)
            break;
    }
    wg_keys_wipe(pair, sizeof(pair));
    if (rv == 0)
        rv = wg_store_prekeys_put(c->env.store, c->id, v, n);
    for (size_t i = 0; v && i < n; i++)
        free((void *)v[i].blob);
    free(v);
    if (rv)
        wg_log(WG_LOG_ERROR, "conn", "instance=%s prekeys not stored err=%s", c->id,
               wg_strerror(rv));
    return rv;
}

/* ---- tearing down and reconnecting ------------------------------------------------------- */

/* Marks the link for closing; the deferred event does the work after the current callback. */
static void link_fail(wg_conn_t *c, int how, const char *reason)
{
    if (c->close_pending)
        return;
    c->close_pending = how;
    c->close_reason = reason;
    event_active(c->defer, 0, 0);
}

static void ops_fail_all(wg_conn_t *c, int rv);

static void teardown(wg_conn_t *c)
{
    ops_fail_all(c, WG_ECLOSED);
    wg_session_free(c->sess);
    c->sess = NULL;
    wg_noise_free(c->noise);
    c->noise = NULL;
    wg_ws_free(c->ws);
    c->ws = NULL;
    evtimer_del(c->timer);
}

static void do_connect(wg_conn_t *c);

static void schedule_backoff(wg_conn_t *c, const char *why)
{
    uint64_t cap = c->env.backoff_max_ms ? c->env.backoff_max_ms : 60000u;
    uint64_t ceil_ms = BACKOFF_BASE_MS << (c->attempt < 20 ? c->attempt : 20);
    uint32_t r = 0;
    if (ceil_ms > cap)
        ceil_ms = cap;
    evutil_secure_rng_get_bytes(&r, sizeof(r));
    uint64_t delay = (uint64_t)r % (ceil_ms + 1); /* full jitter */
    c->attempt++;
    struct timeval tv = {(time_t)(delay / 1000), (suseconds_t)(delay % 1000) * 1000};
    conn_state(c, C_BACKOFF, why);
    wg_log(WG_LOG_INFO, "conn", "instance=%s reconnect in_ms=%llu attempt=%u why=%s", c->id,
           (unsigned long long)delay, c->attempt, why);
    evtimer_add(c->timer, &tv);
}

static void stop_failed(wg_conn_t *c, const char *reason)
{
    teardown(c);
    qr_clear(c);
    conn_state(c, C_STOPPED, reason);
    report_status(c, STATUS_FAILED, reason);
}

/* The end of our own logout, whatever ended it (the answer, the server's close, the bound, a
 * lost link): never a reconnect, and no report (the core stopped the instance with reason
 * "logout" when it asked). The stored credentials were wiped by the engine already. */
static void logout_done(wg_conn_t *c, const char *why)
{
    c->leaving = 0;
    wg_creds_wipe(&c->creds);
    c->have_creds = 0;
    wg_signal_free(c->sig);
    c->sig = NULL;
    c->stage = NULL;
    /* no qr_clear: a logged-in conn shows none, and a new conn of the instance (a start right
     * after the logout) may be showing one now */
    conn_state(c, C_STOPPED, "logout");
    wg_log(WG_LOG_INFO, "conn", "instance=%s logout done why=%s", c->id, why);
}

static void on_defer(evutil_socket_t fd, short what, void *arg)
{
    wg_conn_t *c = arg;
    int how = c->close_pending;
    const char *reason = c->close_reason ? c->close_reason : "closed";
    (void)fd;
    (void)what;
    c->close_pending = 0;
    c->close_reason = NULL;
    if (!how)
        return;
    teardown(c);
    if (c->leaving) {
        logout_done(c, reason);
        return;
    }
    switch (how) {
    case WG_SESSION_RECONNECT_NOW:
        wg_log(WG_LOG_INFO, "conn", "instance=%s reconnect now why=%s", c->id, reason);
        do_connect(c);
        break;
    case WG_SESSION_LOGGED_OUT:
        if (wg_store_creds_delete(c->env.store, c->id) != 0)
            wg_log(WG_LOG_ERROR, "conn", "instance=%s credentials not wiped", c->id);
        wg_creds_wipe(&c->creds);
        c->have_creds = 0;
        wg_signal_free(c->sig);
        c->sig = NULL;
        c->stage = NULL;
        wg_log(WG_LOG_INFO, "conn", "instance=%s logged out: credentials wiped", c->id);
        stop_failed(c, "logged_out");
        break;
    case WG_SESSION_STOP:
        stop_failed(c, reason);
        break;
    default: /* WG_SESSION_RECONNECT_BACKOFF */
        qr_clear(c);
        report_status(c, STATUS_STARTING, NULL);
        schedule_backoff(c, reason);
        break;
    }
}

/* ---- session callbacks ------------------------------------------------------------------- */

static int sess_send(void *ud, const wg_node_t *node)
{
    wg_conn_t *c = ud;
    wg_buf_t plain, frame;
    int rv;
    if (!c->noise || !c->ws)
        return WG_ECLOSED;
    if (wg_log_min_level <= WG_LOG_DEBUG) {
        char *txt = wg_node_to_string(node, 0);
        wg_log(WG_LOG_DEBUG, "conn", "instance=%s send %s", c->id, txt ? txt : "?");
        free(txt);
    }
    if (wg_ws_pending_output(c->ws) > MAX_OUT_BUFFER) {
        wg_log(WG_LOG_WARN, "conn", "instance=%s output buffer over %u bytes", c->id,
               MAX_OUT_BUFFER);
        return WG_ETOOBIG;
    }
    wg_buf_init(&plain, 0);
    wg_buf_init(&frame, 0);
    if ((rv = wg_binary_encode(node, &plain)) == 0 &&
        (rv = wg_noise_encrypt_frame(c->noise, plain.data, plain.len, &frame)) == 0)
        rv = wg_ws_send_binary(c->ws, frame.data, frame.len);
    wg_buf_dispose(&plain);
    wg_buf_dispose(&frame);
    return rv;
}

static int on_logged_in(wg_conn_t *c);

static int sess_event(void *ud, const wg_session_event_t *ev)
{
    wg_conn_t *c = ud;
    switch (ev->type) {
    case WG_SESSION_EV_QR: {
        long long exp = wall_ms() + ev->qr_valid_ms;
        c->attempt = 0;
        wg_log(WG_LOG_INFO, "conn", "instance=%s qr ref=%u/%u valid_ms=%u", c->id, ev->qr_index + 1,
               ev->qr_count, ev->qr_valid_ms);
        /* status first: whoever sees the QR in the table also sees SCAN_QR_CODE stored */
        report_qr(c, ev->qr, exp);
        if (c->env.qr_changed)
            c->env.qr_changed(c->env.arg, c->id, ev->qr, exp);
        return 0;
    }
    case WG_SESSION_EV_LINK_CODE:
        wg_log(WG_LOG_INFO, "conn", "instance=%s pairing code %s by the server", c->id,
               ev->link_ok ? "accepted" : "rejected");
        if (c->env.link_code)
            c->env.link_code(c->env.arg, c->id, ev->link_ok ? 2 : -1);
        return 0;
    case WG_SESSION_EV_CREDS:
        return save_creds(c);
    case WG_SESSION_EV_PREKEYS:
        return save_prekeys(c, ev->prekeys, ev->nprekeys);
    case WG_SESSION_EV_CONNECTED:
        qr_clear(c);
        wg_log(WG_LOG_INFO, "conn", "instance=%s logged in jid=%s", c->id, c->creds.jid);
        return 0;
    case WG_SESSION_EV_READY:
        /* WORKING only now: the prekeys are on the server and the connection is active, so
         * peers can reach us and we can send. The backoff resets here, not at <success>, so a
         * login whose steps keep failing backs off like any other failed attempt. */
        c->attempt = 0;
        wg_log(WG_LOG_INFO, "conn", "instance=%s working after_ms=%llu", c->id,
               (unsigned long long)(mono_ms() - c->connect_ms));
        report_working(c);
        return on_logged_in(c);
    case WG_SESSION_EV_CLOSE:
        link_fail(c, ev->close, ev->reason);
        return 0;
    }
    return 0;
}

static void arm_timer(wg_conn_t *c)
{
    uint64_t d = c->sess ? wg_session_next_deadline(c->sess) : UINT64_MAX;
    if (d == UINT64_MAX) {
        evtimer_del(c->timer);
        return;
    }
    uint64_t now = mono_ms(), delay = d > now ? d - now : 0;
    struct timeval tv = {(time_t)(delay / 1000), (suseconds_t)(delay % 1000) * 1000};
    evtimer_add(c->timer, &tv);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    wg_conn_t *c = arg;
    (void)fd;
    (void)what;
    if (c->st == C_BACKOFF) {
        do_connect(c);
        return;
    }
    if (c->st != C_OPEN || !c->sess || c->close_pending)
        return;
    int rv = wg_session_on_timer(c->sess, mono_ms());
    if (rv) {
        link_fail(c, WG_SESSION_RECONNECT_BACKOFF, "session_error");
        return;
    }
    if (!c->close_pending)
        arm_timer(c);
}

/* ---- messaging (wa-protocol-messaging.md §2, §5) ----------------------------------------- */

static int json_flag(json_t *o, const char *k)
{
    return json_is_true(json_object_get(o, k));
}

static void load_settings(wg_conn_t *c, int force)
{
    uint64_t now = mono_ms();
    wg_instance_t in;
    if (!force && c->set.loaded && now - c->set.loaded_ms < 1000)
        return;
    if (wg_store_instance_get(c->env.store, c->id, &in) != 0)
        return;
    json_t *j = in.settings ? json_loads(in.settings, 0, NULL) : NULL;
    if (j) {
        const char *mc = json_string_value(json_object_get(j, "msgCall"));
        c->set.read_messages = json_flag(j, "readMessages") || json_flag(j, "autoRead");
        c->set.read_status = json_flag(j, "readStatus");
        c->set.groups_ignore = json_flag(j, "groupsIgnore");
        c->set.reject_call = json_flag(j, "rejectCall");
        c->set.always_online = json_flag(j, "alwaysOnline");
        c->set.auto_typing = json_flag(j, "autoTyping");
        snprintf(c->set.msg_call, sizeof(c->set.msg_call), "%s", mc ? mc : "");
        c->set.loaded = 1;
        c->set.loaded_ms = now;
    }
    json_decref(j);
    wg_instance_dispose(&in);
}

/* The Signal state over our store (sealed), behind a bounded cache. */
static int ensure_signal(wg_conn_t *c)
{
    wg_signal_storage_t *db = NULL, *cache = NULL;
    wg_signal_keys_t k;
    int rv;
    if (c->sig)
        return 0;
    if ((rv = wg_signal_storage_db_new(c->env.store, c->id, c->env.master_key, &db)) != 0)
        return rv;
    if ((rv = wg_signal_storage_cache_new(db, 512, 1u << 20, &cache)) != 0 ||
        (rv = wg_signal_stage_new(cache, &c->stage)) != 0)
        return rv;
    k.registration_id = c->creds.registration_id;
    k.identity = c->creds.identity;
    k.signed_prekey_id = c->creds.signed_prekey_id;
    k.signed_prekey = c->creds.signed_prekey;
    memcpy(k.signed_prekey_sig, c->creds.signed_prekey_sig, sizeof(k.signed_prekey_sig));
    rv = wg_signal_new(&k, c->stage, &c->sig);
    if (rv)
        c->stage = NULL;
    wg_keys_wipe(&k, sizeof(k));
    return rv;
}

static int send_node(wg_conn_t *c, wg_node_t *n)
{
    int rv = n ? sess_send(c, n) : WG_ENOMEM;
    wg_node_free(n);
    return rv;
}

static int send_ack(wg_conn_t *c, const wg_node_t *in, const char *error)
{
    wg_node_t *n = NULL;
    int rv = wg_stanza_ack_build(in, error, &n);
    return rv ? rv : send_node(c, n);
}

/* An event keyed for exactly-once (see wg_store_event_append_once). */
static int append_once(wg_store_t *st, const char *inst, const char *name, const char *payload,
                       const char *key)
{
    wg_store_event_t ev = {.name = name, .payload = payload};
    char id[64];
    int dup = 0;
    int rv = wg_store_event_append_once(st, inst, &ev, key, id, sizeof(id), &dup);
    if (rv)
        wg_log(WG_LOG_ERROR, "conn", "instance=%s event %s not stored err=%s", inst, name,
               wg_strerror(rv));
    else
        wg_log(WG_LOG_DEBUG, "conn", "instance=%s event=%s id=%s dup=%d", inst, name, id, dup);
    return rv;
}

static int append_event(wg_conn_t *c, const char *name, const char *payload, const char *key)
{
    return append_once(c->env.store, c->id, name, payload, key);
}

/* §2.8: a retry receipt; <keys> with a fresh one-time prekey from the second try on, or when
 * the sender key of a group is missing. */
static int send_retry(wg_conn_t *c, const wg_recv_result_t *r)
{
    const wg_stanza_msg_in_t *in = &r->in;
    uint32_t count = 1, next = 1;
    wg_signal_bundle_t b;
    wg_node_t *n = NULL;
    int rv;
    for (size_t i = 0; i < in->n_enc; i++)
        if (in->enc[i].count + 1 > count)
            count = in->enc[i].count + 1;
    if (count >= 5) {
        wg_log(WG_LOG_WARN, "conn", "instance=%s message %s undecryptable after %u retries", c->id,
               in->id, count);
        return 0;
    }
    wg_stanza_retry_t rr = {.id = in->id,
                            .to = in->from,
                            .participant = in->participant,
                            .recipient = in->recipient,
                            .peer = in->category && !strcmp(in->category, "peer"),
                            .count = count,
                            .orig_t = in->t,
                            .registration_id = c->creds.registration_id};
    if (count > 1 || r->group_key_missing) {
        if ((rv = wg_store_prekeys_next_id(c->env.store, c->id, &next)) != 0 ||
            (rv = wg_signal_prekeys_generate(c->sig, next, 1, NULL)) != 0 ||
            (rv = wg_signal_own_bundle(c->sig, next, &b)) != 0)
            return rv;
        rr.keys = &b;
        rr.device_identity = c->creds.account;
        rr.device_identity_len = c->creds.account_len;
    }
    if ((rv = wg_stanza_retry_build(&rr, &n)) != 0)
        return rv;
    return send_node(c, n);
}

int wg_conn_receipt_build(const wg_stanza_msg_in_t *in, const char *type, int64_t t,
                          wg_node_t **out)
{
    const char *ids[1] = {in->id};
    wg_stanza_receipt_t r = {.ids = ids,
                             .n_ids = 1,
                             .to = in->from,
                             .participant = in->participant,
                             .recipient = in->recipient,
                             .type = type,
                             .t = t};
    return wg_stanza_receipt_build(&r, out);
}

static int send_receipt(wg_conn_t *c, const wg_stanza_msg_in_t *in, const char *type, int64_t t)
{
    wg_node_t *n = NULL;
    int rv = wg_conn_receipt_build(in, type, t, &n);
    return rv ? rv : send_node(c, n);
}

int wg_conn_recv_commit(wg_store_t *st, const char *instance_id, wg_signal_storage_t *stage,
                        const wg_recv_env_t *env, const wg_node_t *node, wg_recv_result_t *r)
{
    /* the new ratchet state is held back while decrypting (no write lock held for the CPU
     * work), then written with the event in one transaction: one commit, one fdatasync. A
     * crash before it keeps the old state, so the re-delivered message decrypts again and
     * finds its event */
    wg_signal_stage_begin(stage);
    int rv = wg_recv_message(env, node, r);
    if (rv) {
        wg_signal_stage_discard(stage);
        return rv; /* storage: no reply, the server re-delivers after the reconnect */
    }
    if (!r->event && !wg_signal_stage_pending(stage)) {
        wg_signal_stage_discard(stage);
        return 0; /* nothing to write (a receipt-only outcome that changed no state) */
    }
    if ((rv = wg_store_txn_begin(st)) != 0) {
        wg_signal_stage_discard(stage);
        wg_recv_result_dispose(r);
        return rv; /* not committed: not acknowledged */
    }
    if (r->event)
        rv = append_once(st, instance_id, r->event, r->payload, r->key);
    if (rv == 0 && (rv = wg_signal_stage_commit(stage)) != 0)
        wg_log(WG_LOG_ERROR, "conn", "instance=%s signal state not stored err=%s", instance_id,
               wg_strerror(rv));
    else if (rv)
        wg_signal_stage_discard(stage);
    if ((rv = wg_store_txn_end(st, rv)) != 0) {
        /* rolled back: the cache under the stage may hold state the store does not */
        wg_signal_stage_rolled_back(stage);
        wg_recv_result_dispose(r);
        return rv; /* not committed: not acknowledged */
    }
    return 0;
}

static int on_message(wg_conn_t *c, const wg_node_t *node)
{
    wg_recv_env_t env = {.sig = c->sig,
                         .own_jid = c->creds.jid,
                         .own_lid = c->creds.lid,
                         .groups_ignore = c->set.groups_ignore};
    wg_recv_result_t r;
    int rv = wg_conn_recv_commit(c->env.store, c->id, c->stage, &env, node, &r);
    if (rv)
        return rv;
    switch (r.reply) {
    case WG_RECV_NACK: {
        char code[16];
        snprintf(code, sizeof(code), "%d", r.nack_code);
        rv = send_ack(c, node, code);
        break;
    }
    case WG_RECV_RETRY:
        if ((rv = send_retry(c, &r)) == 0)
            rv = send_ack(c, node, NULL);
        break;
    default:
        rv = send_receipt(c, &r.in, r.receipt_type, 0);
        if (rv == 0 && r.event && !r.in.from_me) {
            int status = !strcmp(r.in.chat, "status@broadcast");
            if (status ? c->set.read_status : c->set.read_messages)
                rv = send_receipt(c, &r.in, "read", (int64_t)(wall_ms() / 1000));
        }
        break;
    }
    wg_recv_result_dispose(&r);
    return rv;
}

static const char *ack_status(const char *type)
{
    if (!type)
        return "delivered";
    if (!strcmp(type, "read") || !strcmp(type, "read-self"))
        return "read";
    if (!strcmp(type, "played") || !strcmp(type, "played-self"))
        return "played";
    return NULL;
}

static int own_bare(wg_conn_t *c, char *buf, size_t cap, uint32_t *dev);

/* §3.7: a device could not decrypt a DM of ours: rebuild its session from the <keys> it sent
 * (if any) and send the kept message again to that device alone. Group messages and messages
 * no longer kept are not resent (logged). */
static int resend_on_retry(wg_conn_t *c, const wg_stanza_receipt_in_t *r)
{
    const char *mid = r->retry_id ? r->retry_id : r->ids[0];
    const char *dev = r->from;
    char me[WG_STANZA_JID_MAX], user[WG_STANZA_JID_MAX], my_user[WG_STANZA_JID_MAX];
    uint8_t *dsm = NULL, *pad = NULL, *ct = NULL;
    size_t dl = 0, pl = 0, cl = 0;
    wg_signal_addr_t a;
    wg_signal_type_t t;
    uint32_t d;
    unsigned k;
    int rv;
    for (k = c->sent ? 0 : SENT_KEEP; k < SENT_KEEP; k++)
        if (c->sent[k].msg && !strcmp(c->sent[k].id, mid))
            break;
    if (k == SENT_KEEP || r->retry_count >= 10 || strstr(dev, "@g.us")) {
        wg_log(WG_LOG_INFO, "conn", "instance=%s retry receipt for %s from %s: not resent", c->id,
               mid, dev);
        return 0;
    }
    if ((rv = wg_signal_addr_from_jid(dev, &a)) != 0)
        return 0;
    if (r->has_keys && (rv = wg_signal_process_bundle(c->sig, &a, &r->keys)) != 0) {
        wg_log(WG_LOG_WARN, "conn", "instance=%s retry keys of %s refused err=%s", c->id, dev,
               wg_strerror(rv));
        return rv == WG_ENOMEM || rv == WG_ESTORE ? rv : 0;
    }
    if (wg_signal_has_session(c->sig, &a) != 1)
        return 0;
    if ((rv = own_bare(c, me, sizeof(me), &d)) != 0)
        return rv;
    wg_recv_user_of(dev, user, sizeof(user));
    wg_recv_user_of(me, my_user, sizeof(my_user));
    int own = !strcmp(user, my_user);
    if (own)
        rv = wg_msg_wrap_dsm(c->sent[k].msg, c->sent[k].len, c->sent[k].to, &dsm, &dl);
    if (rv == 0)
        rv = wg_msg_pad(own ? dsm : c->sent[k].msg, own ? dl : c->sent[k].len, 0, &pad, &pl);
    if (rv == 0)
        rv = wg_signal_encrypt(c->sig, &a, pad, pl, &t, &ct, &cl);
    if (rv == 0) {
        wg_stanza_to_t one = {dev, t, ct, cl};
        wg_stanza_msg_out_t m = {.id = c->sent[k].id,
                                 .to = dev,
                                 .type = "text",
                                 .to_devices = &one,
                                 .n_to = 1,
                                 .direct = 1,
                                 .t = c->sent[k].t,
                                 .count = r->retry_count,
                                 .no_fanout = 1,
                                 .device_identity = t == WG_SIGNAL_PKMSG ? c->creds.account : NULL,
                                 .device_identity_len =
                                     t == WG_SIGNAL_PKMSG ? c->creds.account_len : 0};
        wg_node_t *n = NULL;
        if ((rv = wg_stanza_message_build(&m, &n)) == 0)
            rv = send_node(c, n);
        wg_log(WG_LOG_INFO, "conn", "instance=%s resent %s to %s (retry %u) rv=%s", c->id, mid, dev,
               r->retry_count, wg_strerror(rv));
    }
    free(dsm);
    free(pad);
    free(ct);
    return rv;
}

static int on_receipt(wg_conn_t *c, const wg_node_t *node)
{
    wg_stanza_receipt_in_t r;
    int rv;
    if (wg_stanza_receipt_parse(node, &r) != 0)
        return send_ack(c, node, NULL);
    const char *status = ack_status(r.type);
    if (status) {
        json_t *o = json_object(), *ids = json_array();
        char key[256];
        if (!o || !ids) {
            json_decref(o);
            json_decref(ids);
            return WG_ENOMEM;
        }
        for (size_t i = 0; i < r.n_ids; i++)
            json_array_append_new(ids, json_string(r.ids[i]));
        json_object_set_new(o, "id", json_string(r.ids[0]));
        json_object_set_new(o, "ids", ids);
        json_object_set_new(o, "status", json_string(status));
        json_object_set_new(o, "chat", json_string(r.from));
        if (r.participant)
            json_object_set_new(o, "participant", json_string(r.participant));
        json_object_set_new(o, "timestamp", json_integer((json_int_t)r.t));
        char *p = json_dumps(o, JSON_COMPACT);
        json_decref(o);
        if (!p)
            return WG_ENOMEM;
        snprintf(key, sizeof(key), "ack:%s:%s:%s:%s", r.ids[0], status, r.from,
                 r.participant ? r.participant : "");
        rv = append_event(c, "message.ack", p, key);
        free(p);
        if (rv)
            return rv;
    } else if (r.type && !strcmp(r.type, "retry") && (rv = resend_on_retry(c, &r)) != 0)
        return rv;
    return send_ack(c, node, NULL);
}

static int send_text_to(wg_conn_t *c, const char *to, const char *text, const char *quoted,
                        char *id_out, uint64_t token, uint32_t delay_ms);

static int on_call(wg_conn_t *c, const wg_node_t *node)
{
    wg_stanza_call_t call;
    int rv;
    if (wg_stanza_call_parse(node, &call) != 0 || strcmp(call.kind, "offer") != 0)
        return send_ack(c, node, NULL);
    const char *caller = call.call_creator ? call.call_creator : call.from;
    char from[WG_STANZA_JID_MAX], key[200];
    int reject = c->set.reject_call;
    {
        char user[WG_STANZA_JID_MAX];
        const char *at = strchr(caller, '@');
        wg_recv_user_of(caller, user, sizeof(user));
        snprintf(from, sizeof(from), "%s%s", user, at ? at : "");
    }
    json_t *o = json_object();
    if (!o)
        return WG_ENOMEM;
    json_object_set_new(o, "id", json_string(call.call_id));
    json_object_set_new(o, "from", json_string(from));
    json_object_set_new(o, "video", json_boolean(call.video));
    json_object_set_new(o, "isGroup", json_boolean(call.group_jid != NULL));
    json_object_set_new(o, "timestamp", json_integer((json_int_t)call.t));
    json_object_set_new(o, "rejected", json_boolean(reject));
    char *p = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!p)
        return WG_ENOMEM;
    snprintf(key, sizeof(key), "call:%s", call.call_id);
    rv = append_event(c, "call.received", p, key);
    free(p);
    if (rv)
        return rv;
    if ((rv = send_ack(c, node, NULL)) != 0)
        return rv;
    if (reject) {
        wg_node_t *n = NULL;
        if ((rv = wg_stanza_call_reject_build(call.id, c->creds.jid, call.from, call.call_id,
                                              caller, &n)) != 0 ||
            (rv = send_node(c, n)) != 0)
            return rv;
        if (c->set.msg_call[0]) {
            char mid[WG_MSG_ID_LEN + 1];
            int r2 = send_text_to(c, from, c->set.msg_call, NULL, mid, 0, 0);
            if (r2)
                wg_log(WG_LOG_WARN, "conn", "instance=%s msgCall to %s not sent err=%s", c->id,
                       from, wg_strerror(r2));
        }
    }
    return 0;
}

/* ---- sending a text (wa-protocol-messaging.md §3; groups §4) ----------------------------- */

enum { OP_GROUP = 1, OP_USYNC, OP_KEYS, OP_SENT, OP_DELAY };
#define OP_MAX_USERS 256
#define OP_STALE_MS 60000u

struct send_op {
    struct send_op *next;
    int state;
    int group;
    char iq[32];
    char id[WG_MSG_ID_LEN + 1];
    char to[WG_STANZA_JID_MAX]; /* the peer's bare JID, or the group */
    uint8_t *msg;               /* the Message bytes */
    size_t msg_len;
    size_t n_devs;
    char (*devs)[WG_STANZA_JID_MAX];
    int *own; /* (devs and own: sized by the usync result) 1: one of our own devices (gets the
                 deviceSentMessage copy in DMs) */
    size_t n_users, max_users;
    char (*users)[WG_STANZA_JID_MAX]; /* whose devices to look up */
    uint64_t token;
    uint64_t started_ms;
    wg_conn_t *conn;
    struct event *delay_ev; /* the "delay" of the request, while composing */
};

static void op_finish(wg_conn_t *c, send_op_t *op, int rv)
{
    send_op_t **pp = &c->ops;
    while (*pp && *pp != op)
        pp = &(*pp)->next;
    if (*pp)
        *pp = op->next;
    wg_log(rv ? WG_LOG_WARN : WG_LOG_DEBUG, "conn", "instance=%s send id=%s to=%s rv=%s", c->id,
           op->id, op->to, wg_strerror(rv));
    if (op->token && c->env.send_done)
        c->env.send_done(c->env.arg, op->token, rv, op->id);
    if (rv == 0 && op->state == OP_SENT && !op->group && op->msg &&
        (c->sent || (c->sent = calloc(SENT_KEEP, sizeof(*c->sent))))) {
        unsigned k = c->sent_next++ % SENT_KEEP;
        free(c->sent[k].msg);
        snprintf(c->sent[k].id, sizeof(c->sent[k].id), "%s", op->id);
        snprintf(c->sent[k].to, sizeof(c->sent[k].to), "%s", op->to);
        c->sent[k].msg = op->msg;
        c->sent[k].len = op->msg_len;
        c->sent[k].t = (int64_t)(wall_ms() / 1000);
        op->msg = NULL;
    }
    if (op->delay_ev)
        event_free(op->delay_ev);
    free(op->msg);
    free(op->devs);
    free(op->own);
    free(op->users);
    free(op);
}

static void ops_fail_all(wg_conn_t *c, int rv)
{
    while (c->ops)
        op_finish(c, c->ops, rv);
}

static void ops_sweep(wg_conn_t *c)
{
    uint64_t now = mono_ms();
    for (send_op_t *op = c->ops, *next; op; op = next) {
        next = op->next;
        if (now - op->started_ms > OP_STALE_MS)
            op_finish(c, op, WG_ETIMEDOUT);
    }
}

static int send_iq(wg_conn_t *c, send_op_t *op, wg_node_t *n)
{
    snprintf(op->iq, sizeof(op->iq), "wgs.%u", ++c->iq_counter);
    if (!n || wg_node_set_attr(n, "id", op->iq)) {
        wg_node_free(n);
        return WG_ENOMEM;
    }
    return send_node(c, n);
}

static int chatstate(wg_conn_t *c, const char *to, int composing)
{
    wg_node_t *n = NULL;
    int rv = wg_stanza_chatstate_build(to, NULL, composing, 0, &n);
    return rv ? rv : send_node(c, n);
}

/* Encrypts for every device with a session and sends the <message>: DMs get pad(Message) per
 * peer device and pad(deviceSentMessage) per own device; groups get one skmsg plus the
 * sender-key distribution pairwise to every device (as whatsmeow). */
static int op_encrypt_send(wg_conn_t *c, send_op_t *op)
{
    wg_stanza_to_t *to = calloc(op->n_devs ? op->n_devs : 1, sizeof(*to));
    uint8_t *dsm = NULL, *pad_peer = NULL, *pad_own = NULL, *skdm = NULL, *skdm_msg = NULL;
    uint8_t *skmsg = NULL;
    size_t dsm_len = 0, lp = 0, lo = 0, n = 0, skdm_len = 0, skdm_msg_len = 0, skmsg_len = 0;
    int rv = to ? 0 : WG_ENOMEM, any_pk = 0, peers = 0;
    wg_signal_addr_t self;
    if (rv == 0 && op->group) {
        uint8_t *gpad = NULL;
        size_t gl = 0;
        if ((rv = wg_signal_addr_from_jid(c->creds.jid, &self)) == 0 &&
            (rv = wg_signal_group_skdm(c->sig, op->to, &self, &skdm, &skdm_len)) == 0 &&
            (rv = wg_msg_build_skdm(op->to, skdm, skdm_len, &skdm_msg, &skdm_msg_len)) == 0 &&
            (rv = wg_msg_pad(skdm_msg, skdm_msg_len, 0, &pad_peer, &lp)) == 0 &&
            (rv = wg_msg_pad(op->msg, op->msg_len, 0, &gpad, &gl)) == 0)
            rv = wg_signal_group_encrypt(c->sig, op->to, &self, gpad, gl, &skmsg, &skmsg_len);
        free(gpad);
    } else if (rv == 0 && (rv = wg_msg_pad(op->msg, op->msg_len, 0, &pad_peer, &lp)) == 0 &&
               (rv = wg_msg_wrap_dsm(op->msg, op->msg_len, op->to, &dsm, &dsm_len)) == 0)
        rv = wg_msg_pad(dsm, dsm_len, 0, &pad_own, &lo);
    for (size_t i = 0; rv == 0 && i < op->n_devs; i++) {
        wg_signal_addr_t a;
        wg_signal_type_t t;
        uint8_t *ct = NULL;
        size_t cl = 0;
        int dsm_copy = op->own[i] && !op->group;
        if (wg_signal_addr_from_jid(op->devs[i], &a) != 0 || wg_signal_has_session(c->sig, &a) != 1)
            continue;
        rv = wg_signal_encrypt(c->sig, &a, dsm_copy ? pad_own : pad_peer, dsm_copy ? lo : lp, &t,
                               &ct, &cl);
        if (rv)
            break;
        to[n].jid = op->devs[i];
        to[n].type = t;
        to[n].ct = ct;
        to[n].len = cl;
        any_pk |= t == WG_SIGNAL_PKMSG;
        peers += !op->own[i];
        n++;
    }
    if (rv == 0 && peers == 0 && !op->group)
        rv = WG_ENOTFOUND; /* no device of the peer could be reached */
    if (rv == 0) {
        wg_stanza_msg_out_t m = {.id = op->id,
                                 .to = op->to,
                                 .type = "text",
                                 .to_devices = to,
                                 .n_to = n,
                                 .skmsg = skmsg,
                                 .skmsg_len = skmsg_len,
                                 .device_identity = any_pk ? c->creds.account : NULL,
                                 .device_identity_len = any_pk ? c->creds.account_len : 0};
        wg_node_t *node = NULL;
        if ((rv = wg_stanza_message_build(&m, &node)) == 0)
            rv = send_node(c, node);
    }
    for (size_t i = 0; to && i < n; i++)
        free((void *)to[i].ct);
    free(to);
    free(dsm);
    free(pad_peer);
    free(pad_own);
    free(skdm);
    free(skdm_msg);
    free(skmsg);
    if (rv == 0) {
        op->state = OP_SENT;
        if (c->set.auto_typing || op->delay_ev)
            chatstate(c, op->to, 0);
    }
    return rv;
}

/* Devices without a session: fetch their bundles; none missing: send at once. */
static int op_sessions(wg_conn_t *c, send_op_t *op)
{
    const char **missing = calloc(op->n_devs ? op->n_devs : 1, sizeof(*missing));
    size_t m = 0;
    int rv = missing ? 0 : WG_ENOMEM;
    for (size_t i = 0; rv == 0 && i < op->n_devs; i++) {
        wg_signal_addr_t a;
        if (wg_signal_addr_from_jid(op->devs[i], &a) != 0)
            continue;
        int h = wg_signal_has_session(c->sig, &a);
        if (h < 0)
            rv = h;
        else if (!h)
            missing[m++] = op->devs[i];
    }
    if (rv == 0 && m == 0)
        rv = op_encrypt_send(c, op);
    else if (rv == 0) {
        wg_node_t *n = NULL;
        if ((rv = wg_stanza_prekey_fetch_build(missing, m, 0, &n)) == 0) {
            op->state = OP_KEYS;
            rv = send_iq(c, op, n);
        }
    }
    free(missing);
    return rv;
}

static int own_bare(wg_conn_t *c, char *buf, size_t cap, uint32_t *dev)
{
    char digits[32];
    int rv = wg_creds_phone(&c->creds, digits, sizeof(digits), dev);
    if (rv == 0)
        snprintf(buf, cap, "%s@s.whatsapp.net", digits);
    return rv;
}

static int op_usync(wg_conn_t *c, send_op_t *op)
{
    const char **users = calloc(op->n_users ? op->n_users : 1, sizeof(*users));
    char sid[32];
    wg_node_t *n = NULL;
    int rv = users ? 0 : WG_ENOMEM;
    for (size_t i = 0; users && i < op->n_users; i++)
        users[i] = op->users[i];
    snprintf(sid, sizeof(sid), "wgu.%u", c->iq_counter + 1);
    op->state = OP_USYNC;
    if (rv == 0 && (rv = wg_stanza_usync_build(sid, users, op->n_users, 0, &n)) == 0)
        rv = send_iq(c, op, n);
    free(users);
    return rv;
}

static int op_add_user(send_op_t *op, const char *jid)
{
    for (size_t i = 0; i < op->n_users; i++)
        if (!strcmp(op->users[i], jid))
            return 0;
    if (op->n_users >= op->max_users || strlen(jid) >= WG_STANZA_JID_MAX)
        return WG_ETOOBIG;
    snprintf(op->users[op->n_users++], WG_STANZA_JID_MAX, "%s", jid);
    return 0;
}

/* §4.1: the group's members (+ ourselves) -> usync. */
static int op_on_group(wg_conn_t *c, send_op_t *op, const wg_node_t *iq)
{
    const wg_node_t *g = wg_node_child_by_tag(iq, "group");
    char me[WG_STANZA_JID_MAX];
    uint32_t dev;
    int rv;
    if (!g)
        return WG_ENOTFOUND;
    if ((rv = own_bare(c, me, sizeof(me), &dev)) != 0 || (rv = op_add_user(op, me)) != 0)
        return rv;
    for (size_t i = 0; i < wg_node_child_count(g); i++) {
        const wg_node_t *p = wg_node_child(g, i);
        const char *jid = wg_node_attr(p, "jid"), *pn = wg_node_attr(p, "phone_number");
        char bare[WG_STANZA_JID_MAX], user[WG_STANZA_JID_MAX];
        if (!wg_node_tag_is(p, "participant") || !jid)
            continue;
        if (strstr(jid, "@lid") && pn)
            jid = pn;
        wg_recv_user_of(jid, user, sizeof(user));
        const char *at = strchr(jid, '@');
        snprintf(bare, sizeof(bare), "%s%s", user, at ? at : "");
        if ((rv = op_add_user(op, bare)) != 0)
            return rv;
    }
    return op_usync(c, op);
}

static int op_on_usync(wg_conn_t *c, send_op_t *op, const wg_node_t *iq)
{
    wg_stanza_usync_user_t *users = NULL;
    size_t nu = 0;
    char me[WG_STANZA_JID_MAX];
    uint32_t own_dev = 0;
    int found = 0, rv;
    if ((rv = own_bare(c, me, sizeof(me), &own_dev)) != 0)
        return rv;
    if ((rv = wg_stanza_usync_parse(iq, &users, &nu)) != 0)
        return rv;
    size_t total = 0;
    for (size_t i = 0; i < nu; i++)
        total += users[i].n_devices;
    free(op->devs);
    free(op->own);
    op->devs = calloc(total ? total : 1, sizeof(*op->devs));
    op->own = calloc(total ? total : 1, sizeof(*op->own));
    if (!op->devs || !op->own) {
        free(users);
        return WG_ENOMEM;
    }
    op->n_devs = 0;
    for (size_t i = 0; i < nu; i++) {
        int own = users[i].jid && !strcmp(users[i].jid, me);
        int wanted = 0;
        for (size_t k = 0; users[i].jid && k < op->n_users; k++)
            wanted |= !strcmp(users[i].jid, op->users[k]);
        if (!wanted)
            continue;
        if (!own && !users[i].error && users[i].n_devices &&
            (op->group || !strcmp(users[i].jid, op->to)))
            found = 1;
        for (size_t d = 0; d < users[i].n_devices && op->n_devs < total; d++) {
            if (own && users[i].devices[d].id == own_dev)
                continue; /* ourselves */
            if (users[i].devices[d].hosted || users[i].devices[d].id == 99)
                continue;
            if (wg_stanza_device_jid(users[i].jid, &users[i].devices[d], op->devs[op->n_devs],
                                     WG_STANZA_JID_MAX) != 0)
                continue;
            op->own[op->n_devs++] = own;
        }
    }
    free(users);
    if (!found && !op->group)
        return WG_ENOTFOUND; /* not on WhatsApp */
    return op_sessions(c, op);
}

static int op_on_keys(wg_conn_t *c, send_op_t *op, const wg_node_t *iq)
{
    wg_stanza_bundle_t *b = NULL;
    size_t nb = 0;
    int rv = wg_stanza_prekey_fetch_parse(iq, &b, &nb);
    if (rv)
        return rv;
    for (size_t i = 0; i < nb; i++) {
        wg_signal_addr_t a;
        if (b[i].error || wg_signal_addr_from_jid(b[i].jid, &a) != 0)
            continue;
        int r2 = wg_signal_process_bundle(c->sig, &a, &b[i].bundle);
        if (r2 == WG_ENOMEM || r2 == WG_ESTORE) {
            free(b);
            return r2;
        }
        if (r2)
            wg_log(WG_LOG_WARN, "conn", "instance=%s bundle of %s refused err=%s", c->id, b[i].jid,
                   wg_strerror(r2));
    }
    free(b);
    return op_encrypt_send(c, op);
}

/* An iq answer to one of our send steps: 1 when it was ours. */
static int ops_on_iq(wg_conn_t *c, const wg_node_t *iq)
{
    const char *id = wg_node_attr(iq, "id"), *type = wg_node_attr(iq, "type");
    send_op_t *op;
    int rv;
    if (!id || strncmp(id, "wgs.", 4) != 0)
        return 0;
    for (op = c->ops; op && strcmp(op->iq, id); op = op->next)
        ;
    if (!op)
        return 1;
    op->iq[0] = 0;
    if (!type || strcmp(type, "result") != 0)
        rv = op->state == OP_GROUP ? WG_ENOTFOUND : WG_EIO;
    else if (op->state == OP_GROUP)
        rv = op_on_group(c, op, iq);
    else
        rv = op->state == OP_USYNC ? op_on_usync(c, op, iq) : op_on_keys(c, op, iq);
    if (rv)
        op_finish(c, op, rv);
    return 1;
}

static void ops_on_ack(wg_conn_t *c, const wg_node_t *ack)
{
    const char *id = wg_node_attr(ack, "id"), *cls = wg_node_attr(ack, "class");
    if (!id || !cls || strcmp(cls, "message") != 0)
        return;
    for (send_op_t *op = c->ops; op; op = op->next)
        if (op->state == OP_SENT && !strcmp(op->id, id)) {
            op_finish(c, op, wg_node_attr(ack, "error") ? WG_EIO : 0);
            return;
        }
}

/* The lookups start: group metadata, or the usync of the peer and ourselves. */
static int op_lookup(wg_conn_t *c, send_op_t *op)
{
    char me[WG_STANZA_JID_MAX];
    uint32_t dev;
    int rv;
    if (op->group) {
        /* §4.1 metadata first: who the members are */
        wg_node_t *n = wg_node_new("iq"), *qn = n ? wg_node_add_new(n, "query") : NULL;
        op->state = OP_GROUP;
        if (!qn || wg_node_set_attr(n, "xmlns", "w:g2") || wg_node_set_attr(n, "type", "get") ||
            wg_node_set_attr_jid(n, "to", op->to) ||
            wg_node_set_attr(qn, "request", "interactive")) {
            wg_node_free(n);
            return WG_ENOMEM;
        }
        return send_iq(c, op, n);
    }
    if ((rv = own_bare(c, me, sizeof(me), &dev)) != 0 || (rv = op_add_user(op, op->to)) != 0 ||
        (rv = op_add_user(op, me)) != 0)
        return rv;
    return op_usync(c, op);
}

static void op_delay_done(evutil_socket_t fd, short what, void *arg)
{
    send_op_t *op = arg;
    wg_conn_t *c = op->conn;
    int rv;
    (void)fd;
    (void)what;
    rv = wg_conn_working(c) && !c->close_pending ? op_lookup(c, op) : WG_ECLOSED;
    if (rv)
        op_finish(c, op, rv);
}

static int send_text_to(wg_conn_t *c, const char *to, const char *text, const char *quoted,
                        char *id_out, uint64_t token, uint32_t delay_ms)
{
    char digits[32], me[WG_STANZA_JID_MAX];
    uint32_t dev = 0;
    send_op_t *op;
    int rv;
    if (!wg_conn_working(c) || c->close_pending)
        return WG_EPERM;
    if (!to || !strchr(to, '@') || strlen(to) >= WG_STANZA_JID_MAX || !text)
        return WG_EINVAL;
    if ((rv = ensure_signal(c)) != 0 ||
        (rv = wg_creds_phone(&c->creds, digits, sizeof(digits), &dev)) != 0 ||
        (rv = own_bare(c, me, sizeof(me), &dev)) != 0)
        return rv;
    load_settings(c, 0);
    ops_sweep(c);
    int group = strstr(to, "@g.us") != NULL;
    if (!(op = calloc(1, sizeof(*op))) ||
        !(op->users = calloc(group ? OP_MAX_USERS : 2, sizeof(*op->users)))) {
        free(op);
        return WG_ENOMEM;
    }
    op->max_users = group ? OP_MAX_USERS : 2;
    snprintf(op->to, sizeof(op->to), "%s", to);
    op->group = group;
    op->token = token;
    op->started_ms = mono_ms();
    wg_msg_quote_t q = {.id = quoted, .participant = op->group ? NULL : to};
    if ((rv = wg_msg_id(op->id, (int64_t)(wall_ms() / 1000), digits, NULL)) != 0 ||
        (rv = wg_msg_build_text(text, quoted ? &q : NULL, NULL, 0, &op->msg, &op->msg_len)) != 0) {
        op->token = 0;
        op_finish(c, op, rv);
        return rv;
    }
    if (id_out)
        snprintf(id_out, WG_MSG_ID_LEN + 1, "%s", op->id);
    op->next = c->ops;
    c->ops = op;
    op->conn = c;
    if (c->set.auto_typing || delay_ms)
        chatstate(c, to, 1);
    if (delay_ms) {
        /* "delay": stay composing that long, then look the devices up and send */
        struct timeval tv = {(time_t)(delay_ms / 1000), (suseconds_t)(delay_ms % 1000) * 1000};
        op->state = OP_DELAY;
        if (!(op->delay_ev = evtimer_new(c->env.base, op_delay_done, op)) ||
            evtimer_add(op->delay_ev, &tv) != 0)
            rv = WG_ENOMEM;
    } else
        rv = op_lookup(c, op);
    if (rv) {
        op->token = 0; /* the caller gets rv directly */
        op_finish(c, op, rv);
    }
    return rv;
}

/* At READY (WORKING): Signal state ready, settings read; available presence when alwaysOnline
 * (§5). */
static int on_logged_in(wg_conn_t *c)
{
    int rv = ensure_signal(c);
    if (rv)
        return rv;
    load_settings(c, 1);
    if (c->set.always_online) {
        wg_node_t *n = NULL;
        const char *name = c->creds.push_name[0] ? c->creds.push_name : NULL;
        if ((rv = wg_stanza_presence_build(1, name, &n)) != 0)
            return rv;
        return send_node(c, n);
    }
    return 0;
}

/* After the session handled node: messages, receipts and calls once logged in. */
static int on_stanza(wg_conn_t *c, const wg_node_t *node)
{
    const char *tag = wg_node_tag(node);
    int rv;
    if (!c->sess || !wg_session_logged_in(c->sess))
        return 0;
    if (!strcmp(tag, "iq")) {
        ops_on_iq(c, node);
        return 0;
    }
    if (!strcmp(tag, "ack")) {
        ops_on_ack(c, node);
        return 0;
    }
    if (strcmp(tag, "message") && strcmp(tag, "receipt") && strcmp(tag, "call"))
        return 0;
    if ((rv = ensure_signal(c)) != 0)
        return rv;
    load_settings(c, 0);
    if (!strcmp(tag, "message"))
        return on_message(c, node);
    if (!strcmp(tag, "receipt"))
        return on_receipt(c, node);
    return on_call(c, node);
}

/* ---- noise callbacks --------------------------------------------------------------------- */

static int noise_handshake(void *ud, wg_noise_t *n)
{
    wg_conn_t *c = ud;
    wg_session_config_t cfg = c->env.session;
    wg_session_cbs_t cbs = {sess_send, sess_event, c};
    int rv;
    (void)n;
    if ((rv = wg_store_prekeys_next_id(c->env.store, c->id, &cfg.next_prekey_id)) != 0 ||
        (rv = wg_session_new(&c->sess, &c->creds, &cfg, &cbs, mono_ms())) != 0)
        return rv;
    conn_state(c, C_OPEN, "handshake done");
    arm_timer(c);
    return 0;
}

static int noise_frame(void *ud, const uint8_t *p, size_t len)
{
    wg_conn_t *c = ud;
    wg_node_t *node = NULL;
    int rv;
    if (!c->sess || c->close_pending)
        return 0;
    if ((rv = wg_binary_decode(p, len, NULL, &node)) != 0) {
        wg_log(WG_LOG_WARN, "conn", "instance=%s undecodable node len=%zu: ignored", c->id, len);
        return 0;
    }
    if (wg_log_min_level <= WG_LOG_DEBUG) {
        char *txt = wg_node_to_string(node, 0);
        wg_log(WG_LOG_DEBUG, "conn", "instance=%s recv %s", c->id, txt ? txt : "?");
        free(txt);
    }
    rv = wg_session_handle(c->sess, node, mono_ms());
    if (rv == 0 && !c->close_pending)
        rv = on_stanza(c, node);
    wg_node_free(node);
    if (rv) {
        wg_log(WG_LOG_WARN, "conn", "instance=%s session error=%s", c->id, wg_strerror(rv));
        link_fail(c, WG_SESSION_RECONNECT_BACKOFF, "session_error");
        return 0;
    }
    if (!c->close_pending)
        arm_timer(c);
    return 0;
}

/* ---- WebSocket callbacks ----------------------------------------------------------------- */

static void ws_open(wg_ws_t *ws, void *user)
{
    wg_conn_t *c = user;
    wg_noise_opts_t nopts = {.root_pub = c->env.root_pub};
    wg_noise_callbacks_t ncb = {noise_handshake, noise_frame, c};
    uint8_t *payload = NULL;
    size_t plen = 0;
    wg_buf_t out;
    int rv;
    wg_buf_init(&out, 0);
    if ((rv = wg_noise_client_new(&c->noise, &c->creds.noise, &nopts, &ncb)) != 0 ||
        (rv = wg_session_client_payload(&c->creds, NULL, &payload, &plen)) != 0 ||
        (rv = wg_noise_client_start(c->noise, payload, plen, &out)) != 0 ||
        (rv = wg_ws_send_binary(ws, out.data, out.len)) != 0) {
        wg_log(WG_LOG_WARN, "conn", "instance=%s handshake start failed err=%s", c->id,
               wg_strerror(rv));
        link_fail(c, WG_SESSION_RECONNECT_BACKOFF, "handshake_failed");
    } else
        conn_state(c, C_HANDSHAKE, c->creds.paired ? "login" : "registration");
    free(payload);
    wg_buf_dispose(&out);
}

static void ws_message(wg_ws_t *ws, const uint8_t *data, size_t len, void *user)
{
    wg_conn_t *c = user;
    wg_buf_t out;
    int rv;
    if (!c->noise || c->close_pending)
        return;
    wg_buf_init(&out, 0);
    rv = wg_noise_feed(c->noise, data, len, (uint64_t)(wall_ms() / 1000), &out);
    if (rv == 0 && out.len)
        rv = wg_ws_send_binary(ws, out.data, out.len);
    wg_buf_dispose(&out);
    if (rv) {
        wg_log(WG_LOG_WARN, "conn", "instance=%s noise error=%s", c->id, wg_strerror(rv));
        link_fail(c, WG_SESSION_RECONNECT_BACKOFF,
                  c->st == C_HANDSHAKE ? "handshake_failed" : "noise_error");
    }
}

static void ws_closed(wg_ws_t *ws, int code, const char *reason, void *user)
{
    wg_conn_t *c = user;
    (void)ws;
    wg_log(WG_LOG_INFO, "conn", "instance=%s websocket closed code=%d reason=%s", c->id, code,
           reason ? reason : "-");
    link_fail(c, WG_SESSION_RECONNECT_BACKOFF, "connection_closed");
}

static void ws_error(wg_ws_t *ws, int err, const char *msg, void *user)
{
    wg_conn_t *c = user;
    (void)ws;
    wg_log(WG_LOG_INFO, "conn", "instance=%s websocket error=%s msg=%s state=%s", c->id,
           wg_strerror(err), msg ? msg : "-", c_names[c->st]);
    link_fail(c, WG_SESSION_RECONNECT_BACKOFF,
              c->st == C_CONNECTING ? "connect_failed" : "connection_lost");
}

static void do_connect(wg_conn_t *c)
{
    wg_ws_opts_t o = {.url = c->env.url,
                      .origin = WG_WS_ORIGIN_WHATSAPP,
                      .connect_timeout_ms = c->env.connect_timeout_ms,
                      .ssl_ctx = c->env.ssl,
                      .dns = c->env.dns};
    wg_ws_cbs_t cbs = {ws_open, ws_message, ws_closed, ws_error, NULL};
    int rv;
    if (c->proxy.type != WG_PROXY_NONE) {
        o.proxy.type = c->proxy.type;
        o.proxy.host = c->proxy.host;
        o.proxy.port = c->proxy.port;
        o.proxy.user = c->proxy.user;
        o.proxy.pass = c->proxy.pass;
    }
    teardown(c);
    if (c->status != STATUS_SCAN_QR)
        report_status(c, STATUS_STARTING, NULL);
    c->connect_ms = mono_ms();
    conn_state(c, C_CONNECTING, c->creds.paired ? "login" : "registration");
    if ((rv = wg_ws_new(&c->ws, c->env.base, &o, &cbs, c)) != 0) {
        c->ws = NULL;
        wg_log(WG_LOG_WARN, "conn", "instance=%s cannot connect url=%s err=%s", c->id, c->env.url,
               wg_strerror(rv));
        if (rv == WG_EINVAL) {
            stop_failed(c, "bad_server_url");
            return;
        }
        schedule_backoff(c, "connect_failed");
    }
}

/* ---- public ------------------------------------------------------------------------------ */

int wg_conn_new(wg_conn_t **out, const wg_conn_env_t *env, const char *instance_id,
                const wg_conn_proxy_t *proxy)
{
    wg_conn_t *c;
    *out = NULL;
    if (!env || !env->base || !env->store || !env->master_key || !env->url || !env->report ||
        !instance_id || strlen(instance_id) >= sizeof(c->id))
        return WG_EINVAL;
    if (!(c = calloc(1, sizeof(*c))))
        return WG_ENOMEM;
    c->env = *env;
    snprintf(c->id, sizeof(c->id), "%s", instance_id);
    if (proxy)
        c->proxy = *proxy;
    c->status = STATUS_STARTING; /* the core set it before asking us to start */
    if (!(c->timer = evtimer_new(env->base, on_timer, c)) ||
        !(c->defer = event_new(env->base, -1, 0, on_defer, c))) {
        wg_conn_free(c);
        return WG_ENOMEM;
    }
    *out = c;
    return 0;
}

int wg_conn_start(wg_conn_t *c)
{
    int rv;
    if (c->st != C_STOPPED)
        return 0;
    c->attempt = 0;
    if (!c->have_creds && (rv = load_creds(c)) != 0) {
        report_status(c, STATUS_FAILED,
                      rv == WG_ECRYPTO ? "credentials_unreadable" : "store_error");
        return rv;
    }
    do_connect(c);
    return 0;
}

void wg_conn_stop(wg_conn_t *c)
{
    teardown(c);
    c->close_pending = 0;
    event_del(c->defer);
    qr_clear(c);
    conn_state(c, C_STOPPED, "stop");
}

int wg_conn_logout(wg_conn_t *c)
{
    int rv;
    if (c->st != C_OPEN || !c->sess || c->close_pending || c->leaving)
        return WG_EPERM;
    if ((rv = wg_session_logout(c->sess, mono_ms())) != 0)
        return rv;
    c->leaving = 1;
    if (!c->close_pending)
        arm_timer(c);
    return 0;
}

int wg_conn_leaving(const wg_conn_t *c)
{
    return c->leaving;
}

int wg_conn_pair_code(wg_conn_t *c, const char *phone, const char *code)
{
    if (c->st != C_OPEN || !c->sess || c->close_pending || !wg_session_pairing(c->sess))
        return WG_EPERM;
    int rv = wg_session_pair_code(c->sess, phone, code, mono_ms());
    if (!c->close_pending)
        arm_timer(c);
    return rv;
}

int wg_conn_working(const wg_conn_t *c)
{
    return c->st == C_OPEN && c->sess && wg_session_ready(c->sess);
}

const char *wg_conn_id(const wg_conn_t *c)
{
    return c->id;
}

void wg_conn_free(wg_conn_t *c)
{
    if (!c)
        return;
    teardown(c);
    if (c->timer)
        event_free(c->timer);
    if (c->defer)
        event_free(c->defer);
    wg_signal_free(c->sig);
    for (unsigned k = 0; c->sent && k < SENT_KEEP; k++)
        free(c->sent[k].msg);
    free(c->sent);
    wg_creds_wipe(&c->creds);
    free(c);
}

int wg_conn_send_text(wg_conn_t *c, const char *to, const char *text, const char *quoted_id,
                      uint32_t delay_ms, uint64_t token, char id_out[32])
{
    int rv = send_text_to(c, to, text, quoted_id, id_out, token, delay_ms);
    if (!c->close_pending)
        arm_timer(c);
    return rv;
}

int wg_conn_presence(wg_conn_t *c, const char *state, const char *to)
{
    wg_node_t *n = NULL;
    int rv;
    if (!wg_conn_working(c) || c->close_pending)
        return WG_EPERM;
    if (!strcmp(state, "available") || !strcmp(state, "unavailable"))
        rv = wg_stanza_presence_build(state[0] == 'a',
                                      c->creds.push_name[0] ? c->creds.push_name : NULL, &n);
    else if (to && (!strcmp(state, "composing") || !strcmp(state, "paused")))
        rv = wg_stanza_chatstate_build(to, NULL, state[0] == 'c', 0, &n);
    else
        return WG_EINVAL;
    return rv ? rv : send_node(c, n);
}
