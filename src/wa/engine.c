/* engine.c - see engine.h. */
#include "wa/engine.h"
#include "store/store.h"
#include "util/err.h"
#include "util/log.h"
#include "wa/conn.h"
#include "wa/keys.h"
#include "wa/noise.h"
#include "wa/pair.h"
#include "wa/ws.h"

#include <event2/dns.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <jansson.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NBUCKETS 1024u

enum { CMD_START = 1, CMD_STOP, CMD_LOGOUT, CMD_PAIR_CODE, CMD_SHUTDOWN, CMD_SEND, CMD_PRESENCE };

typedef struct cmd {
    struct cmd *next;
    int type;
    char id[64];
    char phone[24];
    char code[WG_PAIR_CODE_LEN + 1];
    /* CMD_SEND, CMD_PRESENCE */
    char *to, *text, *quoted;
    unsigned delay_ms;
    uint64_t token;
} cmd_t;

/* The outcome of a send, read by the API thread that asked (woken by hooks.changed). */
typedef struct sres {
    struct sres *next;
    uint64_t token;
    int done, rv;
    char msg_id[32];
} sres_t;

typedef struct centry {
    struct centry *next;
    wg_conn_t *conn;
} centry_t;

typedef struct qrent {
    struct qrent *next;
    char id[64];
    char *qr;
    long long expires_at;
    int link_state; /* pairing code: 0 none, 1 being sent, 2 live, -1 failed */
    int shown;      /* distinct QRs published since the entry appeared (the connect attempt) */
} qrent_t;

typedef struct eng eng_t;

typedef struct {
    eng_t *eng;
    int index;
    pthread_t thread;
    int started;
    struct event_base *base;
    struct evdns_base *dns;
    SSL_CTX *ssl;
    wg_store_t *store;
    void *ctx;
    struct event *wake;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int init_done, init_rv;
    cmd_t *head, *tail;
    centry_t *conns[NBUCKETS];
    centry_t *leaving; /* conns still finishing their logout, out of the table (below) */
    wg_conn_env_t env;
} worker_t;

struct eng {
    wg_engine_t base; /* first: the core sees a wg_engine_t */
    const wg_config_t *cfg;
    uint8_t master[32];
    uint8_t root[32];
    wg_engine_hooks_t hooks;
    int nworkers;
    worker_t *w;
    pthread_mutex_t qmu;
    qrent_t *qr[NBUCKETS];
    atomic_int count;
    pthread_mutex_t smu; /* the send results */
    sres_t *sres[64];
    uint64_t next_token;
};

static unsigned hash_id(const char *s)
{
    unsigned h = 2166136261u; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

/* What ops->qr/qr_count/pairing_code_state answer for id may have changed (token 0), or send
 * token ended: main wakes the HTTP requests waiting on it (no engine lock held here). */
static void notify(eng_t *e, const char *id, uint64_t token)
{
    if (e->hooks.changed)
        e->hooks.changed(e->hooks.arg, id, token);
}

/* ---- the shared QR table (any thread) ---------------------------------------------------- */

static void qr_set(void *arg, const char *id, const char *qr, long long expires_at)
{
    worker_t *w = arg;
    eng_t *e = w->eng;
    unsigned b = hash_id(id) % NBUCKETS;
    char *copy = qr ? strdup(qr) : NULL;
    pthread_mutex_lock(&e->qmu);
    qrent_t **pp = &e->qr[b], *q;
    for (q = *pp; q && strcmp(q->id, id); pp = &q->next, q = q->next)
        ;
    if (!copy) { /* cleared (or out of memory: better no QR than a stale one) */
        if (q) {
            *pp = q->next;
            free(q->qr);
            free(q);
        }
    } else if (q) {
        q->shown += strcmp(q->qr, copy) != 0;
        free(q->qr);
        q->qr = copy;
        q->expires_at = expires_at;
        copy = NULL;
    } else if ((q = calloc(1, sizeof(*q)))) {
        snprintf(q->id, sizeof(q->id), "%s", id);
        q->qr = copy;
        q->expires_at = expires_at;
        q->shown = 1;
        q->next = e->qr[b];
        e->qr[b] = q;
        copy = NULL;
    }
    pthread_mutex_unlock(&e->qmu);
    free(copy);
    notify(e, id, 0);
}

/* Sets the pairing-code state of the instance's entry (none: nothing to track). */
static void link_state_set(eng_t *e, const char *id, int state)
{
    unsigned b = hash_id(id) % NBUCKETS;
    pthread_mutex_lock(&e->qmu);
    for (qrent_t *q = e->qr[b]; q; q = q->next)
        if (!strcmp(q->id, id)) {
            q->link_state = state;
            break;
        }
    pthread_mutex_unlock(&e->qmu);
    notify(e, id, 0);
}

static void link_code_cb(void *arg, const char *id, int state)
{
    worker_t *w = arg;
    link_state_set(w->eng, id, state);
}

static int op_pairing_code_state(wg_engine_t *base, const char *id)
{
    eng_t *e = (eng_t *)base;
    unsigned b = hash_id(id) % NBUCKETS;
    int st = -1;
    pthread_mutex_lock(&e->qmu);
    for (qrent_t *q = e->qr[b]; q; q = q->next)
        if (!strcmp(q->id, id)) {
            st = q->link_state;
            break;
        }
    pthread_mutex_unlock(&e->qmu);
    return st == 2 ? 1 : st == 1 ? 0 : WG_ECLOSED;
}

static void qr_drop(eng_t *e, const char *id)
{
    worker_t w = {.eng = e};
    qr_set(&w, id, NULL, 0);
}

static int op_qr(wg_engine_t *base, const char *id, char **code, long long *expires_at)
{
    eng_t *e = (eng_t *)base;
    unsigned b = hash_id(id) % NBUCKETS;
    int rv = WG_ENOTFOUND;
    *code = NULL;
    pthread_mutex_lock(&e->qmu);
    for (qrent_t *q = e->qr[b]; q; q = q->next)
        if (!strcmp(q->id, id)) {
            rv = (*code = strdup(q->qr)) ? 0 : WG_ENOMEM;
            *expires_at = q->expires_at;
            break;
        }
    pthread_mutex_unlock(&e->qmu);
    return rv;
}

static int op_qr_count(wg_engine_t *base, const char *id)
{
    eng_t *e = (eng_t *)base;
    unsigned b = hash_id(id) % NBUCKETS;
    int n = 0;
    pthread_mutex_lock(&e->qmu);
    for (qrent_t *q = e->qr[b]; q; q = q->next)
        if (!strcmp(q->id, id)) {
            n = q->shown;
            break;
        }
    pthread_mutex_unlock(&e->qmu);
    return n;
}

/* ---- commands (API threads -> worker) ---------------------------------------------------- */

static worker_t *worker_of(eng_t *e, const char *id)
{
    return &e->w[hash_id(id) % (unsigned)e->nworkers];
}

static int post(worker_t *w, int type, const char *id, const char *phone, const char *code)
{
    cmd_t *c = calloc(1, sizeof(*c));
    if (!c)
        return WG_ENOMEM;
    c->type = type;
    if (id)
        snprintf(c->id, sizeof(c->id), "%s", id);
    if (phone)
        snprintf(c->phone, sizeof(c->phone), "%s", phone);
    if (code)
        snprintf(c->code, sizeof(c->code), "%s", code);
    pthread_mutex_lock(&w->mu);
    if (w->tail)
        w->tail->next = c;
    else
        w->head = c;
    w->tail = c;
    pthread_mutex_unlock(&w->mu);
    event_active(w->wake, EV_READ, 0);
    return 0;
}

static int op_start(wg_engine_t *base, const char *id, char *reason, size_t cap)
{
    eng_t *e = (eng_t *)base;
    int rv = strlen(id) < 64 ? post(worker_of(e, id), CMD_START, id, NULL, NULL) : WG_EINVAL;
    if (rv)
        snprintf(reason, cap, "engine_error");
    return rv;
}

static int op_stop(wg_engine_t *base, const char *id)
{
    eng_t *e = (eng_t *)base;
    qr_drop(e, id);
    return post(worker_of(e, id), CMD_STOP, id, NULL, NULL);
}

static int op_logout(wg_engine_t *base, const char *id)
{
    eng_t *e = (eng_t *)base;
    qr_drop(e, id);
    return post(worker_of(e, id), CMD_LOGOUT, id, NULL, NULL);
}

static int op_pairing_code(wg_engine_t *base, const char *id, const char *phone, char out[16])
{
    eng_t *e = (eng_t *)base;
    char digits[24], code[WG_PAIR_CODE_LEN + 1], *qr = NULL;
    long long exp;
    size_t n = 0;
    int rv;
    for (const char *p = phone; p && *p; p++) {
        if (*p == '+' && p == phone)
            continue;
        if (*p < '0' || *p > '9' || n + 1 >= sizeof(digits))
            return WG_EINVAL;
        digits[n++] = *p;
    }
    digits[n] = 0;
    /* [W] pair-code.go: digits only, more than 6, no leading 0 */
    if (n < 7 || digits[0] == '0')
        return WG_EINVAL;
    if ((rv = op_qr(base, id, &qr, &exp)) != 0)
        return rv == WG_ENOTFOUND ? WG_EPERM : rv;
    free(qr);
    if ((rv = wg_pair_code_new(code)) != 0 || (rv = wg_pair_code_display(out, code)) != 0)
        return rv;
    link_state_set(e, id, 1);
    return post(worker_of(e, id), CMD_PAIR_CODE, id, digits, code);
}

/* ---- sends and presence (API threads -> worker; outcome through the result table) -------- */

static void cmd_free(cmd_t *c)
{
    wg_keys_wipe(c->code, sizeof(c->code));
    free(c->to);
    free(c->text);
    free(c->quoted);
    free(c);
}

static int post_cmd(worker_t *w, cmd_t *c)
{
    pthread_mutex_lock(&w->mu);
    if (w->tail)
        w->tail->next = c;
    else
        w->head = c;
    w->tail = c;
    pthread_mutex_unlock(&w->mu);
    event_active(w->wake, EV_READ, 0);
    return 0;
}

static void sres_done(eng_t *e, uint64_t token, int rv, const char *msg_id)
{
    pthread_mutex_lock(&e->smu);
    for (sres_t *r = e->sres[token % 64]; r; r = r->next)
        if (r->token == token) {
            r->done = 1;
            r->rv = rv;
            if (msg_id)
                snprintf(r->msg_id, sizeof(r->msg_id), "%s", msg_id);
            break;
        }
    pthread_mutex_unlock(&e->smu);
    notify(e, NULL, token);
}

static void send_done_cb(void *arg, uint64_t token, int rv, const char *msg_id)
{
    worker_t *w = arg;
    sres_done(w->eng, token, rv, msg_id);
}

static int op_send_text(wg_engine_t *base, const char *id, const char *to, const char *text,
                        const char *quoted, unsigned delay_ms, uint64_t *token)
{
    eng_t *e = (eng_t *)base;
    cmd_t *c;
    sres_t *r;
    if (!id || strlen(id) >= 64 || !to || !text)
        return WG_EINVAL;
    if (!(c = calloc(1, sizeof(*c))) || !(r = calloc(1, sizeof(*r)))) {
        free(c);
        return WG_ENOMEM;
    }
    c->type = CMD_SEND;
    c->delay_ms = delay_ms;
    snprintf(c->id, sizeof(c->id), "%s", id);
    c->to = strdup(to);
    c->text = strdup(text);
    c->quoted = quoted ? strdup(quoted) : NULL;
    if (!c->to || !c->text || (quoted && !c->quoted)) {
        cmd_free(c);
        free(r);
        return WG_ENOMEM;
    }
    pthread_mutex_lock(&e->smu);
    r->token = ++e->next_token;
    r->next = e->sres[r->token % 64];
    e->sres[r->token % 64] = r;
    pthread_mutex_unlock(&e->smu);
    c->token = *token = r->token;
    return post_cmd(worker_of(e, id), c);
}

static int op_send_result(wg_engine_t *base, uint64_t token, int *rv, char msg_id[32], int drop)
{
    eng_t *e = (eng_t *)base;
    int st = WG_ENOTFOUND;
    pthread_mutex_lock(&e->smu);
    for (sres_t **pp = &e->sres[token % 64], *r; (r = *pp); pp = &r->next)
        if (r->token == token) {
            st = r->done;
            if (rv)
                *rv = r->rv;
            if (msg_id)
                snprintf(msg_id, 32, "%s", r->msg_id);
            if (drop) {
                *pp = r->next;
                free(r);
            }
            break;
        }
    pthread_mutex_unlock(&e->smu);
    return st;
}

static int op_presence(wg_engine_t *base, const char *id, const char *state, const char *to)
{
    eng_t *e = (eng_t *)base;
    cmd_t *c;
    if (!id || strlen(id) >= 64 || !state)
        return WG_EINVAL;
    if (!(c = calloc(1, sizeof(*c))))
        return WG_ENOMEM;
    c->type = CMD_PRESENCE;
    snprintf(c->id, sizeof(c->id), "%s", id);
    c->text = strdup(state);
    c->to = to ? strdup(to) : NULL;
    if (!c->text || (to && !c->to)) {
        cmd_free(c);
        return WG_ENOMEM;
    }
    return post_cmd(worker_of(e, id), c);
}

/* ---- the worker's conn table (worker thread only) ---------------------------------------- */

static centry_t **conn_slot(worker_t *w, const char *id)
{
    centry_t **pp = &w->conns[hash_id(id) % NBUCKETS];
    while (*pp && strcmp(wg_conn_id((*pp)->conn), id))
        pp = &(*pp)->next;
    return pp;
}

/* Frees the conns of the leaving list whose logout has ended (all of them with force). */
static void leaving_sweep(worker_t *w, int force)
{
    for (centry_t **pp = &w->leaving, *ce; (ce = *pp);) {
        if (!force && wg_conn_leaving(ce->conn)) {
            pp = &ce->next;
            continue;
        }
        *pp = ce->next;
        wg_conn_free(ce->conn);
        free(ce);
    }
}

static void conn_remove(worker_t *w, const char *id)
{
    centry_t **pp = conn_slot(w, id), *ce = *pp;
    if (!ce)
        return;
    *pp = ce->next;
    if (wg_conn_leaving(ce->conn)) {
        /* a start or stop right after a logout: the remove-companion-device iq is still on its
         * way (maybe not even written to the socket yet); the conn finishes it out of the
         * table, swept once it has ended */
        ce->next = w->leaving;
        w->leaving = ce;
        atomic_fetch_sub(&w->eng->count, 1);
        return;
    }
    wg_conn_stop(ce->conn);
    wg_conn_free(ce->conn);
    free(ce);
    atomic_fetch_sub(&w->eng->count, 1);
}

/* The instance's proxy column -> conn proxy (none when absent or unusable). */
static void load_proxy(worker_t *w, const char *id, wg_conn_proxy_t *px)
{
    wg_instance_t in;
    memset(px, 0, sizeof(*px));
    if (wg_store_instance_get(w->store, id, &in) != 0)
        return;
    json_t *j = in.proxy ? json_loads(in.proxy, 0, NULL) : NULL;
    const char *proto = j ? json_string_value(json_object_get(j, "protocol")) : NULL;
    const char *host = j ? json_string_value(json_object_get(j, "host")) : NULL;
    json_int_t port = j ? json_integer_value(json_object_get(j, "port")) : 0;
    const char *user = j ? json_string_value(json_object_get(j, "username")) : NULL;
    const char *pass = j ? json_string_value(json_object_get(j, "password")) : NULL;
    if (proto && host && port > 0 && port < 65536) {
        /* "https" proxies are reached with HTTP CONNECT in clear (no TLS to the proxy yet) */
        px->type = !strcmp(proto, "socks5") ? WG_PROXY_SOCKS5 : WG_PROXY_HTTP;
        snprintf(px->host, sizeof(px->host), "%s", host);
        px->port = (uint16_t)port;
        snprintf(px->user, sizeof(px->user), "%s", user ? user : "");
        snprintf(px->pass, sizeof(px->pass), "%s", pass ? pass : "");
    }
    json_decref(j);
    wg_instance_dispose(&in);
}

static void do_start(worker_t *w, const char *id)
{
    wg_conn_proxy_t px;
    wg_conn_t *c = NULL;
    centry_t *ce;
    conn_remove(w, id); /* restart: a fresh connection */
    load_proxy(w, id, &px);
    if (wg_conn_new(&c, &w->env, id, &px) != 0 || !(ce = calloc(1, sizeof(*ce)))) {
        wg_conn_free(c);
        wg_engine_report_t r = {.instance_id = id, .status = "FAILED", .reason = "engine_error"};
        w->eng->hooks.report(w->ctx, &r);
        return;
    }
    ce->conn = c;
    centry_t **slot = &w->conns[hash_id(id) % NBUCKETS];
    ce->next = *slot;
    *slot = ce;
    atomic_fetch_add(&w->eng->count, 1);
    if (wg_conn_start(c) != 0) /* reported FAILED already */
        conn_remove(w, id);
}

/* Logout: a logged-in connection tells WhatsApp to remove the device (remove-companion-device)
 * and ends by itself once answered, closed by the server, or after the bound (wg_conn_logout);
 * any other state has nobody to tell, so the device stays listed at WhatsApp until the phone
 * removes it. The stored credentials go now either way: the conn keeps its own copy for the
 * iq, and a start that follows at once must not log in with them again. */
static void do_logout(worker_t *w, const char *id)
{
    centry_t *ce = *conn_slot(w, id);
    int rv = ce ? wg_conn_logout(ce->conn) : WG_EPERM;
    if (rv) {
        conn_remove(w, id);
        wg_log(WG_LOG_WARN, "engine",
               "instance=%s logout while not logged in (%s): wiped here only; WhatsApp lists the "
               "device until the phone removes it",
               id, wg_strerror(rv));
    }
    if (wg_store_creds_delete(w->store, id) != 0)
        wg_log(WG_LOG_ERROR, "engine", "instance=%s logout: credentials not wiped", id);
    else
        wg_log(WG_LOG_INFO, "engine", "instance=%s logout: credentials wiped%s", id,
               rv ? "" : "; waiting for WhatsApp to remove the device");
}

static void on_wake(evutil_socket_t fd, short what, void *arg)
{
    worker_t *w = arg;
    cmd_t *c, *next;
    (void)fd;
    (void)what;
    pthread_mutex_lock(&w->mu);
    c = w->head;
    w->head = w->tail = NULL;
    pthread_mutex_unlock(&w->mu);
    leaving_sweep(w, 0);
    for (; c; c = next) {
        next = c->next;
        switch (c->type) {
        case CMD_START:
            do_start(w, c->id);
            break;
        case CMD_STOP:
            conn_remove(w, c->id);
            break;
        case CMD_LOGOUT:
            do_logout(w, c->id);
            break;
        case CMD_PAIR_CODE: {
            centry_t *ce = *conn_slot(w, c->id);
            int rv = ce ? wg_conn_pair_code(ce->conn, c->phone, c->code) : WG_ENOTFOUND;
            if (rv) {
                wg_log(WG_LOG_WARN, "engine", "instance=%s pairing code not sent err=%s", c->id,
                       wg_strerror(rv));
                link_state_set(w->eng, c->id, -1);
            }
            break;
        }
        case CMD_SEND: {
            centry_t *ce = *conn_slot(w, c->id);
            char mid[32] = "";
            int rv = ce ? wg_conn_send_text(ce->conn, c->to, c->text, c->quoted, c->delay_ms,
                                            c->token, mid)
                        : WG_EPERM;
            if (rv) /* nothing went out: the outcome now (else send_done reports it) */
                sres_done(w->eng, c->token, rv, mid);
            break;
        }
        case CMD_PRESENCE: {
            centry_t *ce = *conn_slot(w, c->id);
            int rv = ce ? wg_conn_presence(ce->conn, c->text, c->to) : WG_EPERM;
            if (rv)
                wg_log(WG_LOG_WARN, "engine", "instance=%s presence %s not sent err=%s", c->id,
                       c->text, wg_strerror(rv));
            break;
        }
        case CMD_SHUTDOWN:
            event_base_loopbreak(w->base);
            break;
        }
        cmd_free(c);
    }
}

/* ---- worker threads ---------------------------------------------------------------------- */

static void worker_report(void *arg, const wg_engine_report_t *r)
{
    worker_t *w = arg;
    w->eng->hooks.report(w->ctx, r);
}

static int worker_init(worker_t *w)
{
    eng_t *e = w->eng;
    const wg_config_t *cfg = e->cfg;
    int rv;
    if (!(w->base = event_base_new()) || !(w->wake = event_new(w->base, -1, 0, on_wake, w)))
        return WG_ENOMEM;
    if (!(w->dns = evdns_base_new(w->base, EVDNS_BASE_INITIALIZE_NAMESERVERS)))
        w->dns = evdns_base_new(w->base, 0); /* no resolv.conf: IP literals still work */
    if (!(w->ssl = wg_ws_ssl_ctx_new(NULL)))
        wg_log(WG_LOG_WARN, "engine", "worker=%d no TLS context: wss:// will fail", w->index);
    if ((rv = wg_store_open(cfg->db, &w->store)) != 0)
        return rv;
    if (e->hooks.ctx_new && !(w->ctx = e->hooks.ctx_new(e->hooks.arg, w->index)))
        return WG_EIO;
    w->env = (wg_conn_env_t){
        .base = w->base,
        .dns = w->dns,
        .ssl = w->ssl,
        .store = w->store,
        .master_key = e->master,
        .url = cfg->wa_url,
        .root_pub = e->root,
        .connect_timeout_ms = (uint32_t)cfg->wa_connect_timeout_ms,
        .backoff_max_ms = (uint32_t)cfg->wa_backoff_max_ms,
        .session = {.qr_first_ms = (uint32_t)cfg->qr_first_ms,
                    .qr_next_ms = (uint32_t)cfg->qr_next_ms,
                    .keepalive_ms = (uint32_t)cfg->wa_keepalive_ms,
                    .prekeys_initial = (uint32_t)cfg->wa_prekeys_initial,
                    .login_timeout_ms = (uint32_t)cfg->wa_login_timeout_ms},
        .report = worker_report,
        .qr_changed = qr_set,
        .link_code = link_code_cb,
        .send_done = send_done_cb,
        .arg = w,
    };
    return 0;
}

static void worker_dispose(worker_t *w)
{
    for (unsigned b = 0; b < NBUCKETS; b++)
        while (w->conns[b])
            conn_remove(w, wg_conn_id(w->conns[b]->conn));
    leaving_sweep(w, 1);
    for (cmd_t *c = w->head, *n; c; c = n) {
        n = c->next;
        cmd_free(c);
    }
    w->head = w->tail = NULL;
    if (w->ctx && w->eng->hooks.ctx_free)
        w->eng->hooks.ctx_free(w->ctx);
    w->ctx = NULL;
    wg_store_close(w->store);
    w->store = NULL;
    if (w->dns)
        evdns_base_free(w->dns, 0);
    w->dns = NULL;
    if (w->ssl)
        SSL_CTX_free(w->ssl);
    w->ssl = NULL;
    if (w->wake)
        event_free(w->wake);
    w->wake = NULL;
    if (w->base)
        event_base_free(w->base);
    w->base = NULL;
}

static void *worker_main(void *arg)
{
    worker_t *w = arg;
    int rv = worker_init(w);
    pthread_mutex_lock(&w->mu);
    w->init_done = 1;
    w->init_rv = rv;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    if (rv == 0) {
        wg_log(WG_LOG_DEBUG, "engine", "worker=%d running", w->index);
        event_base_loop(w->base, EVLOOP_NO_EXIT_ON_EMPTY);
    }
    worker_dispose(w);
    return NULL;
}

static void op_free(wg_engine_t *base)
{
    eng_t *e = (eng_t *)base;
    for (int i = 0; e->w && i < e->nworkers; i++) {
        worker_t *w = &e->w[i];
        if (w->started && post(w, CMD_SHUTDOWN, NULL, NULL, NULL) == 0)
            pthread_join(w->thread, NULL);
        else if (w->started) {
            event_base_loopbreak(w->base);
            pthread_join(w->thread, NULL);
        }
        pthread_mutex_destroy(&w->mu);
        pthread_cond_destroy(&w->cv);
    }
    free(e->w);
    for (unsigned b = 0; b < NBUCKETS; b++)
        for (qrent_t *q = e->qr[b], *n; q; q = n) {
            n = q->next;
            free(q->qr);
            free(q);
        }
    pthread_mutex_destroy(&e->qmu);
    for (unsigned b = 0; b < 64; b++)
        for (sres_t *r = e->sres[b], *n; r; r = n) {
            n = r->next;
            free(r);
        }
    pthread_mutex_destroy(&e->smu);
    wg_keys_wipe(e->master, sizeof(e->master));
    free(e);
}

static const wg_engine_ops_t wa_ops = {
    .name = "whatsapp",
    .start = op_start,
    .stop = op_stop,
    .logout = op_logout,
    .free = op_free,
    .qr = op_qr,
    .qr_count = op_qr_count,
    .pairing_code = op_pairing_code,
    .pairing_code_state = op_pairing_code_state,
    .send_text = op_send_text,
    .send_result = op_send_result,
    .presence = op_presence,
};

int wg_engine_wa_count(wg_engine_t *base)
{
    return atomic_load(&((eng_t *)base)->count);
}

int wg_engine_wa_new(const wg_config_t *cfg, const uint8_t master_key[32],
                     const wg_engine_hooks_t *hooks, wg_engine_t **out)
{
    eng_t *e;
    int rv = 0, tls = 0, n = cfg->workers;
    char *host = NULL, *path = NULL;
    uint16_t port;
    *out = NULL;
    if (!hooks || !hooks->report)
        return WG_EINVAL;
    if (wg_ws_url_parse(cfg->wa_url, &tls, &host, &port, &path) != 0) {
        wg_log(WG_LOG_ERROR, "engine", "bad WAGATE_WA_URL=%s", cfg->wa_url);
        return WG_EINVAL;
    }
    free(host);
    free(path);
    if (!(e = calloc(1, sizeof(*e))))
        return WG_ENOMEM;
    pthread_mutex_init(&e->qmu, NULL);
    pthread_mutex_init(&e->smu, NULL);
    e->base.ops = &wa_ops;
    e->cfg = cfg;
    e->hooks = *hooks;
    memcpy(e->master, master_key, 32);
    if (wg_noise_root_key_from_hex(cfg->wa_root_key, e->root) != 0) {
        wg_log(WG_LOG_ERROR, "engine", "bad WAGATE_WA_ROOT_KEY (want 64 hex digits)");
        rv = WG_EINVAL;
        goto out;
    }
    if (n <= 0) {
        long c = sysconf(_SC_NPROCESSORS_ONLN);
        n = c > 0 ? (int)c : 1;
    }
    evthread_use_pthreads(); /* event_active from API threads wakes a worker's loop */
    if (!(e->w = calloc((size_t)n, sizeof(worker_t)))) {
        rv = WG_ENOMEM;
        goto out;
    }
    e->nworkers = n;
    for (int i = 0; i < n; i++) {
        worker_t *w = &e->w[i];
        w->eng = e;
        w->index = i;
        pthread_mutex_init(&w->mu, NULL);
        pthread_cond_init(&w->cv, NULL);
        if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
            rv = WG_EIO;
            goto out;
        }
        pthread_mutex_lock(&w->mu);
        while (!w->init_done)
            pthread_cond_wait(&w->cv, &w->mu);
        rv = w->init_rv;
        pthread_mutex_unlock(&w->mu);
        if (rv) {
            pthread_join(w->thread, NULL);
            goto out;
        }
        w->started = 1;
    }
    wg_log(WG_LOG_INFO, "engine", "workers=%d url=%s", n, cfg->wa_url);
    *out = &e->base;
    return 0;
out:
    op_free(&e->base);
    return rv;
}
