/* server.c - see server.h. */
#include "http/server.h"
#include "http/wake.h"
#include "util/err.h"
#include "util/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/thread.h>
#include <event2/util.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* A connection we track for the request deadline. evhttp owns the bufferevent; we hold one
 * extra reference so the struct (and its fd) stay valid until we have seen evhttp free it
 * (bufferevent_free clears the callbacks) and drop our reference. */
typedef struct conn {
    struct conn *next;
    struct bufferevent *bev;
    double since_ms; /* accept, or the previous response */
    int shut;
} conn_t;

#define CONN_SLOTS 1024

struct pending;

typedef struct worker {
    struct wg_http_server *srv;
    int index;
    pthread_t thread;
    int started;
    struct event_base *base;
    struct evhttp *http;
    struct evhttp_bound_socket *bound;
    struct event *stop_ev, *drain_ev, *sweep_ev;
    conn_t *conns[CONN_SLOTS];
    size_t nconns;
    void *ctx;
    int draining;
    int idle_events; /* events added on an idle base (libevent's own), see drain_check */
    struct pending *pending; /* deferred requests and streams of this thread */
} worker_t;

struct wg_http_server {
    const wg_config_t *cfg;
    wg_http_app_t app;
    int fd;
    int stop_pipe[2];
    char address[80];
    int nworkers;
    worker_t *workers;
};

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static size_t conn_slot(const struct bufferevent *bev)
{
    return ((uintptr_t)bev >> 4) % CONN_SLOTS;
}

/* evhttp asks us for each accepted connection's bufferevent (fd set by evhttp afterwards). */
static struct bufferevent *on_new_bev(struct event_base *base, void *arg)
{
    worker_t *w = arg;
    struct bufferevent *bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    conn_t *c = bev ? calloc(1, sizeof(*c)) : NULL;
    if (!c)
        return bev; /* untracked (or NULL: evhttp makes its own) */
    bufferevent_incref(bev);
    c->bev = bev;
    c->since_ms = now_ms();
    size_t i = conn_slot(bev);
    c->next = w->conns[i];
    w->conns[i] = c;
    w->nconns++;
    return bev;
}

/* The connection's request deadline counts from `at` (ms, now_ms clock). */
static void conn_touch_at(worker_t *w, struct bufferevent *bev, double at)
{
    for (conn_t *c = bev ? w->conns[conn_slot(bev)] : NULL; c; c = c->next)
        if (c->bev == bev) {
            c->since_ms = at;
            return;
        }
}

static void conn_touch(worker_t *w, struct bufferevent *bev)
{
    conn_touch_at(w, bev, now_ms());
}

/* Drops connections evhttp has freed; shuts down the ones past the request deadline (evhttp
 * then sees EOF and frees them itself). all: drop every entry (after evhttp_free). */
static void conn_sweep(worker_t *w, int all)
{
    double now = now_ms(), limit = w->srv->cfg->http_request_timeout * 1000.0;
    for (size_t i = 0; i < CONN_SLOTS; i++) {
        conn_t **pp = &w->conns[i];
        while (*pp) {
            conn_t *c = *pp;
            bufferevent_data_cb rd, wr;
            bufferevent_event_cb ev;
            void *arg;
            bufferevent_getcb(c->bev, &rd, &wr, &ev, &arg);
            if (all || (!rd && !wr && !ev)) {
                *pp = c->next;
                bufferevent_decref(c->bev);
                free(c);
                w->nconns--;
                continue;
            }
            if (!c->shut && now - c->since_ms > limit) {
                evutil_socket_t fd = bufferevent_getfd(c->bev);
                if (fd >= 0)
                    shutdown(fd, SHUT_RDWR);
                c->shut = 1;
                wg_log(WG_LOG_WARN, "http", "thread=%d closing connection: no complete request "
                       "in %ds", w->index, w->srv->cfg->http_request_timeout);
            }
            pp = &c->next;
        }
    }
}

static void on_sweep(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    conn_sweep(arg, 0);
}

static const char *req_header(const wg_http_req_t *r, const char *name)
{
    return evhttp_find_header(evhttp_request_get_input_headers(r->impl), name);
}

static int method_of(enum evhttp_cmd_type t, const char **name)
{
    switch (t) {
    case EVHTTP_REQ_GET: *name = "GET"; return WG_HTTP_GET;
    case EVHTTP_REQ_POST: *name = "POST"; return WG_HTTP_POST;
    case EVHTTP_REQ_PUT: *name = "PUT"; return WG_HTTP_PUT;
    case EVHTTP_REQ_PATCH: *name = "PATCH"; return WG_HTTP_PATCH;
    case EVHTTP_REQ_DELETE: *name = "DELETE"; return WG_HTTP_DELETE;
    case EVHTTP_REQ_HEAD: *name = "HEAD"; return WG_HTTP_HEAD;
    case EVHTTP_REQ_OPTIONS: *name = "OPTIONS"; return WG_HTTP_OPTIONS;
    default: *name = "OTHER"; return WG_HTTP_OTHER;
    }
}

static void send_response(worker_t *w, struct evhttp_request *req, wg_http_req_t *r)
{
    struct evkeyvalq *oh = evhttp_request_get_output_headers(req);
    struct evbuffer *out = evbuffer_new();
    char *body = NULL;
    if (!r->json && !r->raw) {
        w->srv->app.error(r, w->ctx, 500, "internal_error", "no response");
    }
    if (r->raw) {
        evhttp_add_header(oh, "Content-Type",
                          r->content_type ? r->content_type : "application/octet-stream");
        if (out)
            evbuffer_add(out, r->raw, r->raw_len);
        free(r->raw);
        r->raw = NULL;
    } else {
        body = r->json ? json_dumps(r->json, JSON_COMPACT) : NULL;
        evhttp_add_header(oh, "Content-Type", "application/json; charset=utf-8");
    }
    evhttp_add_header(oh, "Cache-Control", "no-store");
    if (r->retry_after[0])
        evhttp_add_header(oh, "Retry-After", r->retry_after);
    if (r->allow[0])
        evhttp_add_header(oh, "Allow", r->allow);
    for (size_t i = 0; i < sizeof(r->xhdr) / sizeof(r->xhdr[0]); i++)
        if (r->xhdr[i].name[0])
            evhttp_add_header(oh, r->xhdr[i].name, r->xhdr[i].value);
    if (w->draining)
        evhttp_add_header(oh, "Connection", "close");
    if (out && body) {
        evbuffer_add(out, body, strlen(body));
        evbuffer_add(out, "\n", 1);
    }
    evhttp_send_reply(req, r->status ? r->status : 500, NULL, out);
    if (out)
        evbuffer_free(out);
    free(body);
    json_decref(r->json);
    r->json = NULL;
}

/* wait: "" for a request answered at once; for a deferred one, what made the answering call
 * (wake, poll, deadline, drain) and how many calls of each kind it took. */
static void log_request(worker_t *w, const wg_http_req_t *r, int status, double t0,
                        const char *wait)
{
    if (w->srv->app.observe)
        w->srv->app.observe(w->ctx, r, status);
    wg_log(WG_LOG_INFO, "http", "method=%s path=%.200s status=%d ms=%.2f instance=%s remote=%s%s",
           r->method_name, r->path, status, now_ms() - t0, r->log_instance[0] ? r->log_instance : "-",
           r->remote, wait);
}

/* A deferred response (http.h "wait") or a stream: the request copied to the heap. Its one
 * event, tick, is both the poll timer and the wake: wg_http_wake() activates it from any thread
 * with EV_READ (wake_cb), the timer fires it with EV_TIMEOUT; libevent deletes a non-persistent
 * event before running it, so either way the callback re-arms (or frees) it. */
typedef struct pending {
    worker_t *w;
    struct pending *prev, *next; /* w->pending */
    struct evhttp_request *req;
    struct evhttp_connection *evcon;
    struct event *tick;
    wg_http_watcher_t watchers[WG_HTTP_WATCH_MAX]; /* r.watch[0..nwatched) in the wake table */
    int nwatched;
    wg_http_req_t r;
    double t0, deadline;
} pending_t;

static pending_t *pending_new(worker_t *w, struct evhttp_request *req, const wg_http_req_t *r,
                              double t0, event_callback_fn cb)
{
    pending_t *p = calloc(1, sizeof(*p));
    if (!p || !(p->tick = event_new(w->base, -1, 0, cb, p))) {
        free(p);
        return NULL;
    }
    p->w = w;
    p->req = req;
    p->r = *r;
    for (int i = 0; i < r->nparams; i++) /* params point into pbuf: rebase them */
        if (r->params[i] >= r->pbuf && r->params[i] < r->pbuf + sizeof(r->pbuf))
            p->r.params[i] = p->r.pbuf + (r->params[i] - r->pbuf);
    p->t0 = t0;
    p->next = w->pending;
    if (w->pending)
        w->pending->prev = p;
    w->pending = p;
    return p;
}

static void pending_free(pending_t *p)
{
    /* out of the wake table first: after this no other thread can reach p->tick */
    for (int i = 0; i < p->nwatched; i++)
        wg_http_watcher_del(&p->watchers[i]);
    if (p->prev)
        p->prev->next = p->next;
    else
        p->w->pending = p->next;
    if (p->next)
        p->next->prev = p->prev;
    if (p->evcon)
        evhttp_connection_set_closecb(p->evcon, NULL, NULL);
    event_free(p->tick);
    free(p->r.raw);
    json_decref(p->r.json);
    free(p);
}

/* wake.h fn: on the waking thread, under the wake table's lock (so p is alive). It only queues
 * p's event on p's loop: event_active() is thread-safe since evthread_use_pthreads() runs
 * before any base exists (wg_http_server_new), and it wakes the loop if it sleeps. */
static void wake_cb(void *arg)
{
    pending_t *p = arg;
    event_active(p->tick, EV_READ, 0);
}

/* Puts the keys r.watch[] holds and the wake table does not yet into the table; 1 when it
 * added any. */
static int pending_watch(pending_t *p)
{
    int added = 0;
    while (p->nwatched < p->r.nwatch && p->nwatched < WG_HTTP_WATCH_MAX) {
        wg_http_watcher_t *k = &p->watchers[p->nwatched++];
        k->key = p->r.watch[p->nwatched - 1];
        k->fn = wake_cb;
        k->arg = p;
        wg_http_watcher_add(k);
        added = 1;
    }
    return added;
}

static void pending_closed(struct evhttp_connection *evcon, void *arg)
{
    pending_t *p = arg;
    (void)evcon;
    if (p->r.stream) {
        p->r.stream(&p->r, p->w->ctx, -1);
        /* libevent detaches an unfinished reply from a failed connection and leaves the
         * request to us (http.c evhttp_connection_incoming_fail: !userdone) */
        if (!evhttp_request_get_connection(p->req))
            evhttp_request_free(p->req);
    } else
        p->r.wait(&p->r, p->w->ctx, -1);
    p->evcon = NULL; /* going away: do not touch it */
    pending_free(p);
}

/* The next call of a waiting request: at once when the last call added keys (an outcome woken
 * before they were in the table would be missed otherwise), else the safety poll, never past
 * the deadline. */
static void pending_arm(pending_t *p, double now)
{
    if (pending_watch(p)) {
        event_active(p->tick, EV_TIMEOUT, 0);
        return;
    }
    double ms = p->nwatched ? WG_HTTP_WAIT_POLL_MS : WG_HTTP_WAIT_TICK_MS;
    if (p->deadline - now < ms)
        ms = p->deadline - now > 0 ? p->deadline - now : 0;
    long us = (long)(ms * 1000.0) + 1; /* not a hair early: the deadline call must be final */
    struct timeval tv = {us / 1000000, us % 1000000};
    evtimer_add(p->tick, &tv);
}

static void pending_tick(evutil_socket_t fd, short what, void *arg)
{
    pending_t *p = arg;
    double now = now_ms();
    int final = now >= p->deadline || p->w->draining;
    int woken = (what & EV_READ) != 0;
    char how[64];
    (void)fd;
    p->r.wait_wakes += woken;
    p->r.wait_polls += !woken;
    if (!p->r.wait(&p->r, p->w->ctx, final) && !final) {
        pending_arm(p, now);
        return;
    }
    snprintf(how, sizeof(how), " wait=%s wakes=%d polls=%d",
             p->w->draining ? "drain" : woken ? "wake" : final ? "deadline" : "poll",
             p->r.wait_wakes, p->r.wait_polls);
    int status = p->r.status ? p->r.status : 500;
    send_response(p->w, p->req, &p->r);
    if (p->evcon)
        conn_touch(p->w, evhttp_connection_get_bufferevent(p->evcon));
    log_request(p->w, &p->r, status, p->t0, how);
    pending_free(p);
}

/* A streaming response (http.h "stream"): one tick per WG_HTTP_STREAM_TICK_MS. */
static void stream_tick(evutil_socket_t fd, short what, void *arg)
{
    pending_t *p = arg;
    int final = p->w->draining ? 1 : 0;
    (void)fd;
    (void)what;
    int done = p->r.stream(&p->r, p->w->ctx, final);
    if (p->r.raw && p->r.ws_accept[0]) {
        /* libevent drops body chunks of a 1xx reply: write the frames to the socket's
         * bufferevent ourselves (evhttp's write callback has nothing to do meanwhile) */
        struct bufferevent *bev = p->evcon ? evhttp_connection_get_bufferevent(p->evcon) : NULL;
        if (bev)
            bufferevent_write(bev, p->r.raw, p->r.raw_len);
        free(p->r.raw);
        p->r.raw = NULL;
        p->r.raw_len = 0;
    }
    if (p->r.raw) {
        struct evbuffer *b = evbuffer_new();
        if (b) {
            evbuffer_add(b, p->r.raw, p->r.raw_len);
            evhttp_send_reply_chunk(p->req, b);
            evbuffer_free(b);
        }
        free(p->r.raw);
        p->r.raw = NULL;
        p->r.raw_len = 0;
    }
    if (!done && !final) {
        if (p->evcon) /* a live stream is not a slow request */
            conn_touch_at(p->w, evhttp_connection_get_bufferevent(p->evcon), now_ms());
        struct timeval tv = {0, WG_HTTP_STREAM_TICK_MS * 1000};
        evtimer_add(p->tick, &tv);
        return;
    }
    evhttp_send_reply_end(p->req);
    log_request(p->w, &p->r, p->r.ws_accept[0] ? 101 : 200, p->t0, "");
    pending_free(p);
}

/* 0 when the stream started; negative when it could not (the handler's stream gets -1). */
static int start_stream(worker_t *w, struct evhttp_request *req, const wg_http_req_t *r, double t0)
{
    pending_t *p = pending_new(w, req, r, t0, stream_tick);
    struct timeval tv = {0, 0};
    if (!p)
        return WG_ENOMEM;
    struct evkeyvalq *oh = evhttp_request_get_output_headers(req);
    if (r->ws_accept[0]) {
        /* libevent neither chunks nor counts the body of a 1xx reply: the chunks we send are
         * the raw bytes of the WebSocket connection (RFC 6455 4.2.2) */
        evhttp_add_header(oh, "Upgrade", "websocket");
        evhttp_add_header(oh, "Connection", "Upgrade");
        evhttp_add_header(oh, "Sec-WebSocket-Accept", r->ws_accept);
    } else {
        evhttp_add_header(oh, "Content-Type",
                          r->content_type ? r->content_type : "text/event-stream");
        evhttp_add_header(oh, "Cache-Control", "no-store");
        evhttp_add_header(oh, "X-Accel-Buffering", "no");
        evhttp_add_header(oh, "Connection", "close"); /* the connection ends with the stream */
    }
    p->evcon = evhttp_request_get_connection(req);
    if (p->evcon) {
        /* the idle timeout is for requests: a stream may be quiet for long (pings keep
         * intermediaries open); a vanished client is seen when a write fails */
        struct timeval day = {86400, 0};
        evhttp_connection_set_timeout_tv(p->evcon, &day);
        evhttp_connection_set_closecb(p->evcon, pending_closed, p);
    }
    if (r->ws_accept[0])
        evhttp_send_reply_start(req, 101, "Switching Protocols");
    else
        evhttp_send_reply_start(req, 200, "OK");
    evtimer_add(p->tick, &tv);
    return 0;
}

/* 0 when the request now waits; negative when it could not be deferred (answer at once). */
static int defer_request(worker_t *w, struct evhttp_request *req, const wg_http_req_t *r,
                         double t0)
{
    pending_t *p = pending_new(w, req, r, t0, pending_tick);
    if (!p)
        return WG_ENOMEM;
    p->deadline = now_ms() + (r->wait_ms > 0 ? r->wait_ms : 0);
    p->evcon = evhttp_request_get_connection(req);
    if (p->evcon) {
        evhttp_connection_set_closecb(p->evcon, pending_closed, p);
        /* the request is complete; while we wait the request deadline must not cut it */
        conn_touch_at(w, evhttp_connection_get_bufferevent(p->evcon), p->deadline);
    }
    /* keys into the wake table, then the first call at once: an outcome that came before the
     * keys were in the table is seen by that call, one after it wakes the request */
    pending_watch(p);
    event_active(p->tick, EV_TIMEOUT, 0);
    return 0;
}

static void on_request(struct evhttp_request *req, void *arg)
{
    worker_t *w = arg;
    double t0 = now_ms();
    wg_http_req_t r;
    char *peer = NULL;
    ev_uint16_t port = 0;
    memset(&r, 0, sizeof(r));
    r.impl = req;
    r.header = req_header;
    r.method = method_of(evhttp_request_get_command(req), &r.method_name);
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    r.path = uri ? evhttp_uri_get_path(uri) : NULL;
    r.query = uri ? evhttp_uri_get_query(uri) : NULL;
    if (!r.path || !*r.path)
        r.path = "/";
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    r.body_len = evbuffer_get_length(in);
    r.body = r.body_len ? evbuffer_pullup(in, -1) : (const uint8_t *)"";
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    if (evcon) {
        evhttp_connection_get_peer(evcon, &peer, &port);
        conn_touch(w, evhttp_connection_get_bufferevent(evcon)); /* complete: deadline met */
    }
    r.remote = peer ? peer : "-";

    if (!uri || (r.body_len && !r.body)) {
        w->srv->app.error(&r, w->ctx, 400, "bad_request", "malformed request");
    } else {
        int m = wg_router_match(w->srv->app.routes, w->srv->app.nroutes, r.method, r.path, &r);
        if (m == WG_ENOTFOUND)
            w->srv->app.error(&r, w->ctx, 404, "not_found", "no such route");
        else if (m == WG_EPERM)
            w->srv->app.error(&r, w->ctx, 405, "method_not_allowed", "method not allowed here");
        else
            r.route->handler(&r, w->ctx);
    }
    if (r.stream && !r.json && !r.raw) {
        if (start_stream(w, req, &r, t0) == 0)
            return;
        r.stream(&r, w->ctx, -1);
        w->srv->app.error(&r, w->ctx, 500, "internal_error", "could not start the stream");
    }
    if (r.wait && !r.json && !r.raw) {
        if (defer_request(w, req, &r, t0) == 0)
            return;
        r.wait(&r, w->ctx, 1); /* could not defer: answer with what there is now */
    }
    int status = r.status ? r.status : 500;
    send_response(w, req, &r);
    if (evcon) /* the next request's deadline counts from this response */
        conn_touch(w, evhttp_connection_get_bufferevent(evcon));
    log_request(w, &r, status, t0, "");
}

static void drain_check(evutil_socket_t fd, short what, void *arg)
{
    worker_t *w = arg;
    (void)fd;
    (void)what;
    conn_sweep(w, 0); /* drop our references to connections evhttp has freed */
    wg_log(WG_LOG_DEBUG, "http", "thread=%d drain events=%d idle=%d", w->index,
           event_base_get_num_events(w->base, EVENT_BASE_COUNT_ADDED), w->idle_events);
    /* Only libevent's own events, the loopexit deadline and this timer left: every connection
     * is closed. */
    if (event_base_get_num_events(w->base, EVENT_BASE_COUNT_ADDED) <= w->idle_events + 2)
        event_base_loopbreak(w->base);
}

static void on_stop(evutil_socket_t fd, short what, void *arg)
{
    worker_t *w = arg;
    (void)fd;
    (void)what;
    if (w->draining)
        return;
    w->draining = 1;
    if (w->bound) {
        evhttp_del_accept_socket(w->http, w->bound);
        w->bound = NULL;
    }
    if (w->sweep_ev) /* drain_check reaps from now on; keeps the event count exact */
        event_del(w->sweep_ev);
    /* waiting requests answer now (final), streams end: their next poll may be a second away */
    for (struct pending *p = w->pending; p; p = p->next)
        event_active(p->tick, EV_TIMEOUT, 0);
    struct timeval deadline = {w->srv->cfg->shutdown_timeout, 0};
    event_base_loopexit(w->base, &deadline);
    struct timeval tick = {0, 20000};
    w->drain_ev = event_new(w->base, -1, EV_PERSIST, drain_check, w);
    if (w->drain_ev)
        event_add(w->drain_ev, &tick);
}

static void *worker_main(void *arg)
{
    worker_t *w = arg;
    event_base_dispatch(w->base);
    wg_log(WG_LOG_DEBUG, "http", "thread=%d stopped", w->index);
    return NULL;
}

static int worker_init(worker_t *w)
{
    const wg_config_t *cfg = w->srv->cfg;
    int fd = -1;
    if (!(w->base = event_base_new()) || !(w->http = evhttp_new(w->base)))
        return WG_ENOMEM;
    evhttp_set_max_body_size(w->http, cfg->http_body_limit);
    evhttp_set_max_headers_size(w->http, cfg->http_header_limit);
    evhttp_set_timeout(w->http, cfg->http_idle_timeout);
    /* every method reaches the router, which answers 405 in JSON */
    evhttp_set_allowed_methods(w->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                            EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
                                            EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE |
                                            EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
    evhttp_set_bevcb(w->http, on_new_bev, w);
    evhttp_set_default_content_type(w->http, "application/json; charset=utf-8");
    evhttp_set_gencb(w->http, on_request, w);
    /* libevent adds its cross-thread wakeup event lazily; add it now so the baseline counts it */
    evthread_make_base_notifiable(w->base);
    w->idle_events = event_base_get_num_events(w->base, EVENT_BASE_COUNT_ADDED);
    /* evhttp closes the socket it was given when freed: give each thread its own dup. */
    if ((fd = dup(w->srv->fd)) < 0)
        return WG_EIO;
    if (!(w->bound = evhttp_accept_socket_with_handle(w->http, fd))) {
        close(fd);
        return WG_EIO;
    }
    if (!(w->stop_ev = event_new(w->base, -1, 0, on_stop, w)))
        return WG_ENOMEM;
    struct timeval second = {1, 0};
    if (!(w->sweep_ev = event_new(w->base, -1, EV_PERSIST, on_sweep, w)) ||
        event_add(w->sweep_ev, &second) != 0)
        return WG_ENOMEM;
    if (!(w->ctx = w->srv->app.ctx_new(w->srv->app.arg, w->index)))
        return WG_EIO;
    return 0;
}

static void worker_dispose(worker_t *w)
{
    /* connections first: freeing them releases deferred requests, whose wait callbacks may
     * still use the app context; then the context (closes this thread's database) */
    if (w->http)
        evhttp_free(w->http);
    /* a deferred request whose connection evhttp did not give us (none seen) is released here,
     * before its event's base goes and while its wake-table entries can still be removed */
    while (w->pending) {
        pending_t *p = w->pending;
        if (p->r.stream)
            p->r.stream(&p->r, w->ctx, -1);
        else
            p->r.wait(&p->r, w->ctx, -1);
        p->evcon = NULL;
        pending_free(p);
    }
    conn_sweep(w, 1);
    if (w->ctx)
        w->srv->app.ctx_free(w->ctx);
    if (w->drain_ev)
        event_free(w->drain_ev);
    if (w->sweep_ev)
        event_free(w->sweep_ev);
    if (w->stop_ev)
        event_free(w->stop_ev);
    if (w->base)
        event_base_free(w->base);
    memset(w, 0, sizeof(*w));
}

int wg_http_server_new(const wg_config_t *cfg, const wg_http_app_t *app, wg_http_server_t **out)
{
    struct sockaddr_storage ss;
    int sslen = sizeof(ss), one = 1, rv = 0;
    wg_http_server_t *s = calloc(1, sizeof(*s));
    *out = NULL;
    if (!s)
        return WG_ENOMEM;
    s->cfg = cfg;
    s->app = *app;
    if (!wg_http_errpage_json) /* never true: pulls errpage.o (JSON error pages) into the link */
        wg_log(WG_LOG_WARN, "http", "libevent error pages are HTML");
    s->fd = -1;
    s->stop_pipe[0] = s->stop_pipe[1] = -1;
    static int threads_on;
    if (!threads_on && evthread_use_pthreads() == 0)
        threads_on = 1;
    if (evutil_parse_sockaddr_port(cfg->listen, (struct sockaddr *)&ss, &sslen) != 0) {
        wg_log(WG_LOG_ERROR, "http", "bad WAGATE_LISTEN=\"%s\" (want host:port)", cfg->listen);
        rv = WG_EINVAL;
        goto out;
    }
    if ((s->fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
        setsockopt(s->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(s->fd, (struct sockaddr *)&ss, (socklen_t)sslen) != 0 || listen(s->fd, 1024) != 0 ||
        evutil_make_socket_nonblocking(s->fd) != 0) {
        wg_log(WG_LOG_ERROR, "http", "listen addr=%s err=\"%s\"", cfg->listen, strerror(errno));
        rv = WG_EIO;
        goto out;
    }
    socklen_t bl = sizeof(ss);
    getsockname(s->fd, (struct sockaddr *)&ss, &bl);
    char host[64] = "?";
    int port = 0;
    if (ss.ss_family == AF_INET) {
        inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, host, sizeof(host));
        port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        snprintf(s->address, sizeof(s->address), "%s:%d", host, port);
    } else {
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, host, sizeof(host));
        port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
        snprintf(s->address, sizeof(s->address), "[%s]:%d", host, port);
    }
    if (pipe2(s->stop_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
        rv = WG_EIO;
        goto out;
    }
    s->nworkers = cfg->http_threads > 0 ? cfg->http_threads : 1;
    if (!(s->workers = calloc((size_t)s->nworkers, sizeof(worker_t)))) {
        rv = WG_ENOMEM;
        goto out;
    }
    *out = s;
    return 0;
out:
    wg_http_server_free(s);
    return rv;
}

const char *wg_http_server_address(const wg_http_server_t *s)
{
    return s->address;
}

int wg_http_server_run(wg_http_server_t *s)
{
    int rv = 0, i;
    for (i = 0; i < s->nworkers; i++) {
        worker_t *w = &s->workers[i];
        w->srv = s;
        w->index = i;
        if ((rv = worker_init(w)) != 0)
            goto stop;
        if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
            rv = WG_EIO;
            goto stop;
        }
        w->started = 1;
    }
    wg_log(WG_LOG_INFO, "http", "listening addr=%s threads=%d", s->address, s->nworkers);
    /* Wait for wg_http_server_stop (a byte on the pipe). poll, never select: on a restart the
     * engine has already opened a socket per linked instance, so the pipe's fd can be above
     * FD_SETSIZE (1024), and FD_SET on it wrote past the fd_set into this stack frame (the
     * SIGSEGV of bench/instances 10000 wss right after a gateway restart). */
    for (;;) {
        char c;
        struct pollfd pfd = {.fd = s->stop_pipe[0], .events = POLLIN};
        int n = poll(&pfd, 1, -1);
        if (n > 0 && read(s->stop_pipe[0], &c, 1) == 1)
            break;
        if (n < 0 && errno != EINTR)
            break;
    }
    wg_log(WG_LOG_INFO, "http", "shutting down: draining in-flight requests (<= %ds)",
           s->cfg->shutdown_timeout);
stop:
    /* Stop listening: close our copy here; each thread closes its dup in on_stop. */
    if (s->fd >= 0) {
        close(s->fd);
        s->fd = -1;
    }
    for (int j = 0; j < s->nworkers; j++) {
        worker_t *w = &s->workers[j];
        if (w->started)
            event_active(w->stop_ev, 0, 0);
    }
    for (int j = 0; j < s->nworkers; j++) {
        worker_t *w = &s->workers[j];
        if (w->started)
            pthread_join(w->thread, NULL);
        if (w->srv)
            worker_dispose(w);
    }
    return rv;
}

void wg_http_server_stop(wg_http_server_t *s)
{
    char c = 1;
    ssize_t n = write(s->stop_pipe[1], &c, 1);
    (void)n;
}

void wg_http_server_free(wg_http_server_t *s)
{
    if (!s)
        return;
    if (s->fd >= 0)
        close(s->fd);
    if (s->stop_pipe[0] >= 0)
        close(s->stop_pipe[0]);
    if (s->stop_pipe[1] >= 0)
        close(s->stop_pipe[1]);
    free(s->workers);
    free(s);
}
