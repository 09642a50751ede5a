/* test_http_wake.c - wake keys (http/wake.c) and the server's deferred responses woken by them
 * (http/server.c): a real server on a loopback port, one HTTP thread, a raw socket client. */
#include "http/server.h"
#include "http/wake.h"
#include "test.h"
#include "util/err.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static void count_cb(void *arg)
{
    (*(int *)arg)++;
}

WG_TEST(http_wake_table)
{
    int a = 0, b = 0, base = wg_http_watcher_count();
    wg_http_watcher_t wa = {.key = 7, .fn = count_cb, .arg = &a};
    wg_http_watcher_t wb = {.key = 7, .fn = count_cb, .arg = &b};
    wg_http_watcher_t wc = {.key = 7 + 256, .fn = count_cb, .arg = &b}; /* same bucket */
    wg_http_watcher_add(&wa);
    wg_http_watcher_add(&wb);
    wg_http_watcher_add(&wc);
    wg_http_watcher_add(&wa); /* twice: still once */
    WG_CHECK_EQ_INT(wg_http_watcher_count(), base + 3);
    wg_http_wake(7);
    WG_CHECK_EQ_INT(a, 1);
    WG_CHECK_EQ_INT(b, 1);
    wg_http_wake(8); /* nobody watches it */
    WG_CHECK_EQ_INT(a + b, 2);
    wg_http_watcher_del(&wa);
    wg_http_watcher_del(&wa); /* twice: harmless */
    wg_http_wake(7);
    WG_CHECK_EQ_INT(a, 1); /* removed: never called again */
    WG_CHECK_EQ_INT(b, 2);
    wg_http_watcher_del(&wb);
    wg_http_watcher_del(&wc);
    WG_CHECK_EQ_INT(wg_http_watcher_count(), base);
}

WG_TEST(http_wake_watch_list)
{
    wg_http_req_t r;
    memset(&r, 0, sizeof(r));
    WG_CHECK(wg_http_key_str("inst-a") == wg_http_key_str("inst-a"));
    WG_CHECK(wg_http_key_str("inst-a") != wg_http_key_str("inst-b"));
    WG_CHECK(wg_http_key_num(1) != wg_http_key_num(2));
    WG_CHECK_EQ_INT(wg_http_watch(&r, 1), 0);
    WG_CHECK_EQ_INT(wg_http_watch(&r, 1), 0); /* already there */
    WG_CHECK_EQ_INT(r.nwatch, 1);
    for (int i = 2; i <= WG_HTTP_WATCH_MAX; i++)
        WG_CHECK_EQ_INT(wg_http_watch(&r, (uint64_t)i), 0);
    WG_CHECK_EQ_INT(wg_http_watch(&r, 99), WG_ELIMIT);
    WG_CHECK_EQ_INT(r.nwatch, WG_HTTP_WATCH_MAX);
}

/* ---- a server with one deferred route ---- */

#define KEY 0x5eedull

static atomic_int calls, cancels, ready, answered_wakes, observed;
static int answer_after = 1; /* /w answers on the call that sees `ready` (or call n, see hammer) */
static int wait_ms = 20000;

static int w_wait(wg_http_req_t *r, void *ctx, int final)
{
    (void)ctx;
    if (final < 0) {
        atomic_fetch_add(&cancels, 1);
        return 1;
    }
    int n = atomic_fetch_add(&calls, 1) + 1;
    if (!final && !(answer_after > 1 ? n >= answer_after : atomic_load(&ready)))
        return 0;
    r->status = 200;
    r->json = json_pack("{s:i}", "wakes", r->wait_wakes);
    return 1;
}

static void h_wait(wg_http_req_t *r, void *ctx)
{
    (void)ctx;
    r->wait = w_wait;
    r->wait_ms = wait_ms;
    wg_http_watch(r, KEY);
}

static const wg_route_t wroutes[] = {{WG_HTTP_GET, "/w", h_wait, 0}};

static int dummy_ctx;
static void *w_ctx_new(void *arg, int i)
{
    (void)arg;
    (void)i;
    return &dummy_ctx;
}
static void w_ctx_free(void *c)
{
    (void)c;
}
static void w_error(wg_http_req_t *r, void *ctx, int status, const char *code, const char *msg)
{
    (void)ctx;
    (void)msg;
    r->status = status;
    r->json = json_pack("{s:s}", "error", code);
}
static void w_observe(void *ctx, const wg_http_req_t *r, int status)
{
    (void)ctx;
    if (status == 200)
        atomic_store(&answered_wakes, r->wait_wakes);
    atomic_fetch_add(&observed, 1);
}

static char listen_at[32];

/* A loopback port free just now (the server's parser wants a real port, not 0). */
static int free_port(void)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = 0;
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
        port = ntohs(sa.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

static const char *w_env(const char *name, void *arg)
{
    (void)arg;
    if (!strcmp(name, "WAGATE_LISTEN"))
        return listen_at;
    if (!strcmp(name, "WAGATE_HTTP_THREADS"))
        return "1";
    return NULL;
}

typedef struct {
    wg_config_t cfg;
    wg_http_server_t *s;
    pthread_t th;
    int port;
} wsrv_t;

static void *run_main(void *arg)
{
    wsrv_t *w = arg;
    wg_http_server_run(w->s);
    return NULL;
}

static int wsrv_start(wsrv_t *w)
{
    static const wg_http_app_t app = {wroutes, 1, w_ctx_new, w_ctx_free, w_error, NULL, w_observe};
    char err[200];
    memset(w, 0, sizeof(*w));
    snprintf(listen_at, sizeof(listen_at), "127.0.0.1:%d", free_port());
    if (wg_config_load(&w->cfg, w_env, NULL, err, sizeof(err)) != 0 ||
        wg_http_server_new(&w->cfg, &app, &w->s) != 0)
        return WG_EIO;
    const char *colon = strrchr(wg_http_server_address(w->s), ':');
    w->port = colon ? atoi(colon + 1) : 0;
    return pthread_create(&w->th, NULL, run_main, w) == 0 ? 0 : WG_EIO;
}

static void wsrv_stop(wsrv_t *w)
{
    wg_http_server_stop(w->s);
    pthread_join(w->th, NULL);
    wg_http_server_free(w->s);
    wg_config_dispose(&w->cfg);
}

/* A connected socket that has sent GET /w; -1 on failure. */
static int get_w(int port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    static const char req[] = "GET /w HTTP/1.1\r\nHost: t\r\n\r\n";
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    for (int i = 0; fd >= 0 && i < 100; i++) { /* the server thread may not listen yet */
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
            return write(fd, req, sizeof(req) - 1) == (ssize_t)sizeof(req) - 1 ? fd : -1;
        usleep(10000);
    }
    if (fd >= 0)
        close(fd);
    return -1;
}

/* Reads until the response body's closing brace (or ms pass); the bytes in buf. */
static int read_answer(int fd, char *buf, size_t cap, int ms)
{
    size_t n = 0;
    struct pollfd p = {.fd = fd, .events = POLLIN};
    buf[0] = 0;
    while (n + 1 < cap && !strchr(buf, '}') && poll(&p, 1, ms) == 1) {
        ssize_t k = read(fd, buf + n, cap - 1 - n);
        if (k <= 0)
            break;
        n += (size_t)k;
        buf[n] = 0;
    }
    return strchr(buf, '}') ? 0 : WG_ETIMEDOUT;
}

/* Waits (up to 10 s) until *v >= want. */
static int await_at_least(atomic_int *v, int want)
{
    for (int i = 0; i < 1000 && atomic_load(v) < want; i++)
        usleep(10000);
    return atomic_load(v) >= want;
}

static void reset(int after)
{
    atomic_store(&calls, 0);
    atomic_store(&cancels, 0);
    atomic_store(&ready, 0);
    atomic_store(&answered_wakes, -1);
    atomic_store(&observed, 0);
    answer_after = after;
    wait_ms = 20000;
}

/* The answer goes out on the wake, not on a poll: the call that answered was a woken one, and
 * nothing answered while the outcome was not there (no fixed tick answers by itself). */
WG_TEST(http_wake_answers_deferred_request)
{
    wsrv_t w;
    char buf[1024];
    reset(1);
    WG_CHECK_EQ_INT(wsrv_start(&w), 0);
    int fd = get_w(w.port);
    WG_CHECK(fd >= 0);
    WG_CHECK(await_at_least(&calls, 1)); /* deferred, first call made */
    WG_CHECK(read_answer(fd, buf, sizeof(buf), 150) == WG_ETIMEDOUT); /* still waiting */
    atomic_store(&ready, 1);
    wg_http_wake(wg_http_key_num(1)); /* another key: nothing */
    wg_http_wake(KEY);
    WG_CHECK_EQ_INT(read_answer(fd, buf, sizeof(buf), 10000), 0);
    WG_CHECK(strstr(buf, "HTTP/1.1 200") == buf);
    WG_CHECK(await_at_least(&observed, 1));
    WG_CHECK_EQ_INT(atomic_load(&answered_wakes), 1);
    WG_CHECK_EQ_INT(wg_http_watcher_count(), 0); /* answered: out of the table */
    close(fd);
    wsrv_stop(&w);
}

/* A request that ended (its deadline, or the server stopping with its client gone) has left
 * the wake table: waking its key afterwards touches nothing (ASan would see it) and answers
 * nothing twice. */
WG_TEST(http_wake_after_request_ended)
{
    wsrv_t w;
    char buf[1024];
    reset(1);
    wait_ms = 200;
    WG_CHECK_EQ_INT(wsrv_start(&w), 0);
    int fd = get_w(w.port);
    WG_CHECK(fd >= 0);
    WG_CHECK_EQ_INT(read_answer(fd, buf, sizeof(buf), 10000), 0); /* the deadline's answer */
    close(fd);
    WG_CHECK(await_at_least(&observed, 1));
    WG_CHECK_EQ_INT(atomic_load(&answered_wakes), 0);
    WG_CHECK_EQ_INT(wg_http_watcher_count(), 0);
    wg_http_wake(KEY);
    /* the client goes before its answer; the server stops with the request still waiting */
    wait_ms = 20000;
    atomic_store(&calls, 0);
    fd = get_w(w.port);
    WG_CHECK(fd >= 0);
    WG_CHECK(await_at_least(&calls, 1)); /* deferred */
    close(fd);
    wsrv_stop(&w);
    WG_CHECK_EQ_INT(atomic_load(&observed) + atomic_load(&cancels), 2); /* ended once */
    WG_CHECK_EQ_INT(wg_http_watcher_count(), 0);
    wg_http_wake(KEY);
}

static atomic_int hammering;
static void *hammer(void *arg)
{
    (void)arg;
    while (atomic_load(&hammering))
        wg_http_wake(KEY);
    return NULL;
}

/* Requests answered by wakes and requests whose clients vanish, while another thread wakes
 * the key without pause: every request ends exactly once and leaves the table. */
WG_TEST(http_wake_races_with_request_end)
{
    wsrv_t w;
    pthread_t th;
    char buf[1024];
    int answered = 0;
    reset(3); /* each request answers on its 3rd call: the first, then two wakes */
    WG_CHECK_EQ_INT(wsrv_start(&w), 0);
    atomic_store(&hammering, 1);
    WG_CHECK(pthread_create(&th, NULL, hammer, NULL) == 0);
    for (int i = 0; i < 40; i++) {
        int fd = get_w(w.port);
        if (fd < 0)
            break;
        if (i % 2) {
            close(fd); /* gone, maybe before, maybe after its answer */
            continue;
        }
        atomic_store(&calls, 0);
        answered += read_answer(fd, buf, sizeof(buf), 10000) == 0;
        close(fd);
    }
    atomic_store(&hammering, 0);
    pthread_join(th, NULL);
    wsrv_stop(&w);
    WG_CHECK_EQ_INT(answered, 20);
    WG_CHECK_EQ_INT(wg_http_watcher_count(), 0);
}
