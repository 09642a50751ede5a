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
#include "wa/noise.h"
#include "wa/ws.h"

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
#define MAX_OUT_BUFFER (8u << 20) /* a peer that stops reading cannot make us buffer more */

enum { C_STOPPED = 0, C_CONNECTING, C_HANDSHAKE, C_OPEN, C_BACKOFF };
static const char *const c_names[] = {"stopped", "connecting", "handshake", "open", "backoff"};

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
    unsigned attempt;         /* consecutive failed connection attempts */
    const char *status;       /* last status reported (static string) */
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
            wg_log(WG_LOG_ERROR, "conn", "instance=%s credentials cannot be opened (wrong "
                   "WAGATE_MASTER_KEY?) err=%s", c->id, wg_strerror(rv));
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

static void teardown(wg_conn_t *c)
{
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

static int sess_event(void *ud, const wg_session_event_t *ev)
{
    wg_conn_t *c = ud;
    switch (ev->type) {
    case WG_SESSION_EV_QR: {
        long long exp = wall_ms() + ev->qr_valid_ms;
        c->attempt = 0;
        wg_log(WG_LOG_INFO, "conn", "instance=%s qr ref=%u/%u valid_ms=%u", c->id,
               ev->qr_index + 1, ev->qr_count, ev->qr_valid_ms);
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
        c->attempt = 0;
        qr_clear(c);
        wg_log(WG_LOG_INFO, "conn", "instance=%s logged in jid=%s", c->id, c->creds.jid);
        report_working(c);
        return 0;
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
    conn_state(c, C_CONNECTING, c->creds.paired ? "login" : "registration");
    if ((rv = wg_ws_new(&c->ws, c->env.base, &o, &cbs, c)) != 0) {
        c->ws = NULL;
        wg_log(WG_LOG_WARN, "conn", "instance=%s cannot connect url=%s err=%s", c->id,
               c->env.url, wg_strerror(rv));
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
    return c->st == C_OPEN && c->sess && wg_session_logged_in(c->sess);
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
    wg_creds_wipe(&c->creds);
    free(c);
}
