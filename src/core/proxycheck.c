/* proxycheck.c - the proxy connection test (core.h): opens a tunnel through the proxy to the
 * WhatsApp endpoint and closes it, on a thread of its own so that the HTTP loop only polls.
 *
 * Why a thread and not the loop: resolving the proxy's name is a blocking getaddrinfo, and the
 * core has no event base. The thread holds its own copy of everything; the test object is
 * shared by the thread and the poller and freed by whichever lets go last. The HTTP side keeps
 * its own deadline, so a thread stuck in DNS past the bound never delays an answer. */
#include "core/core.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/log.h"
#include "wa/proxy.h"
#include "wa/ws.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* Tests running at once (threads), process-wide: a flood of creates naming a silent proxy
 * must not become a flood of threads. Above the cap a test is refused (503, retry later). */
#define MAX_RUNNING 32
static atomic_int running;

struct wg_proxy_check {
    pthread_mutex_t mu;
    int refs; /* the thread and the poller */
    int done; /* 1 once the thread has a verdict */
    int rv;   /* 0 tunnel open, WG_E* otherwise */
    char why[160];
    int64_t deadline; /* monotonic ms */
    wg_proxy_type_t type;
    char host[256], user[256], pass[256];
    uint16_t port;
    char target[256];
    uint16_t target_port;
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void unref(wg_proxy_check_t *pc)
{
    pthread_mutex_lock(&pc->mu);
    int last = --pc->refs == 0;
    pthread_mutex_unlock(&pc->mu);
    if (last) {
        pthread_mutex_destroy(&pc->mu);
        memset(pc->pass, 0, sizeof(pc->pass));
        free(pc);
    }
}

/* Waits for `events` on fd until the deadline: 0 ready, WG_ETIMEDOUT, WG_EIO. */
static int wait_fd(int fd, short events, int64_t deadline)
{
    for (;;) {
        int64_t left = deadline - mono_ms();
        if (left <= 0)
            return WG_ETIMEDOUT;
        struct pollfd p = {fd, events, 0};
        int n = poll(&p, 1, (int)left);
        if (n > 0)
            return 0;
        if (n < 0 && errno != EINTR)
            return WG_EIO;
    }
}

/* A TCP connection to the proxy (any of its addresses) before the deadline, or -1 (why set). */
static int dial(wg_proxy_check_t *pc)
{
    struct addrinfo hints = {0}, *res = NULL;
    char port[8];
    hints.ai_socktype = SOCK_STREAM;
    snprintf(port, sizeof(port), "%u", (unsigned)pc->port);
    int g = getaddrinfo(pc->host, port, &hints, &res);
    if (g != 0) {
        snprintf(pc->why, sizeof(pc->why), "cannot resolve %.100s: %s", pc->host, gai_strerror(g));
        return -1;
    }
    int fd = -1;
    snprintf(pc->why, sizeof(pc->why), "no address for %.100s", pc->host);
    for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
        if (fd < 0)
            continue;
        int err = 0;
        socklen_t len = sizeof(err);
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 && errno != EINPROGRESS)
            err = errno;
        else if (wait_fd(fd, POLLOUT, pc->deadline) != 0)
            err = ETIMEDOUT;
        else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
            err = errno;
        if (err) {
            snprintf(pc->why, sizeof(pc->why), "cannot connect to the proxy %.100s:%u: %s",
                     pc->host, (unsigned)pc->port, strerror(err));
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    return fd;
}

static int send_all(int fd, wg_buf_t *b, int64_t deadline)
{
    while (b->len) {
        ssize_t n = send(fd, b->data, b->len, MSG_NOSIGNAL);
        if (n > 0) {
            wg_buf_consume(b, (size_t)n);
            continue;
        }
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            return WG_EIO;
        int rv = wait_fd(fd, POLLOUT, deadline);
        if (rv)
            return rv;
    }
    return 0;
}

/* The handshake through an open TCP connection: 0 when the proxy opened the tunnel. */
static int tunnel(wg_proxy_check_t *pc, int fd)
{
    wg_proxy_opts_t o = {pc->type, pc->host, pc->port, pc->user[0] ? pc->user : NULL,
                         pc->user[0] ? pc->pass : NULL};
    wg_proxy_t *p = NULL;
    wg_buf_t out;
    uint8_t in[1024];
    size_t have = 0;
    int rv;
    wg_buf_init(&out, 4096);
    if ((rv = wg_proxy_new(&p, &o, pc->target, pc->target_port)) != 0 ||
        (rv = wg_proxy_start(p, &out)) != 0) {
        snprintf(pc->why, sizeof(pc->why), "unusable proxy settings");
        goto out;
    }
    for (;;) {
        if ((rv = send_all(fd, &out, pc->deadline)) != 0) {
            snprintf(pc->why, sizeof(pc->why), "the proxy stopped reading");
            goto out;
        }
        if ((rv = wait_fd(fd, POLLIN, pc->deadline)) != 0) {
            snprintf(pc->why, sizeof(pc->why), "the proxy did not answer in time");
            goto out;
        }
        ssize_t n = recv(fd, in + have, sizeof(in) - have, 0);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            continue;
        if (n <= 0) {
            rv = WG_EIO;
            snprintf(pc->why, sizeof(pc->why), "the proxy closed the connection");
            goto out;
        }
        have += (size_t)n;
        size_t used = 0;
        rv = wg_proxy_feed(p, in, have, &used, &out);
        if (rv == 0)
            goto out;
        if (rv != WG_EAGAIN) {
            snprintf(pc->why, sizeof(pc->why), "%s", wg_proxy_error(p));
            goto out;
        }
        memmove(in, in + used, have - used);
        have -= used;
        if (have == sizeof(in)) { /* an answer larger than any handshake needs */
            rv = WG_EPROTO;
            snprintf(pc->why, sizeof(pc->why), "the proxy's answer is too long");
            goto out;
        }
    }
out:
    wg_proxy_free(p);
    wg_buf_dispose(&out);
    return rv;
}

static void *run(void *arg)
{
    wg_proxy_check_t *pc = arg;
    int rv = WG_EIO;
    int fd = dial(pc);
    if (fd >= 0) {
        rv = tunnel(pc, fd);
        close(fd);
    }
    pthread_mutex_lock(&pc->mu);
    pc->rv = rv == 0 ? 0 : rv == WG_ETIMEDOUT ? WG_ETIMEDOUT : WG_EIO;
    pc->done = 1;
    pthread_mutex_unlock(&pc->mu);
    atomic_fetch_sub(&running, 1);
    unref(pc);
    return NULL;
}

static int copy_field(char *dst, size_t cap, json_t *o, const char *key)
{
    const char *v = json_string_value(json_object_get(o, key));
    if (!v)
        v = "";
    if (strlen(v) >= cap)
        return WG_EINVAL;
    snprintf(dst, cap, "%s", v);
    return 0;
}

int wg_core_proxy_check_start(wg_core_t *c, json_t *proxy, wg_proxy_check_t **out,
                              wg_core_err_t *err)
{
    wg_proxy_check_t *pc;
    char *thost = NULL, *tpath = NULL;
    int tls = 0, rv;
    pthread_t t;
    pthread_attr_t at;
    *out = NULL;
    if (!(pc = calloc(1, sizeof(*pc)))) {
        wg_core_err_set(err, 500, "internal_error", NULL, "out of memory");
        return WG_ENOMEM;
    }
    const char *proto = json_string_value(json_object_get(proxy, "protocol"));
    json_int_t port = json_integer_value(json_object_get(proxy, "port"));
    /* "https" proxies are reached with HTTP CONNECT in clear, as the engine does (wa/engine.c) */
    pc->type = proto && !strcmp(proto, "socks5") ? WG_PROXY_SOCKS5 : WG_PROXY_HTTP;
    if (port < 1 || port > 65535 || copy_field(pc->host, sizeof(pc->host), proxy, "host") ||
        !pc->host[0] || copy_field(pc->user, sizeof(pc->user), proxy, "username") ||
        copy_field(pc->pass, sizeof(pc->pass), proxy, "password")) {
        free(pc);
        wg_core_err_set(err, 422, "validation_error", "proxy", "proxy must be parsed first");
        return WG_EINVAL;
    }
    pc->port = (uint16_t)port;
    if (wg_ws_url_parse(c->cfg->wa_url, &tls, &thost, &pc->target_port, &tpath) != 0 ||
        strlen(thost) >= sizeof(pc->target)) {
        free(thost);
        free(tpath);
        free(pc);
        wg_core_err_set(err, 500, "internal_error", NULL, "WAGATE_WA_URL is not usable");
        return WG_EINVAL;
    }
    snprintf(pc->target, sizeof(pc->target), "%s", thost);
    free(thost);
    free(tpath);
    pc->deadline =
        mono_ms() + (c->cfg->proxy_check_timeout_ms > 0 ? c->cfg->proxy_check_timeout_ms : 5000);
    if (atomic_fetch_add(&running, 1) >= MAX_RUNNING) {
        atomic_fetch_sub(&running, 1);
        free(pc);
        wg_core_err_set(err, 503, "busy", NULL, "too many proxy tests running; retry shortly");
        return WG_ELIMIT;
    }
    pc->refs = 2;
    pthread_mutex_init(&pc->mu, NULL);
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&at, 256 * 1024);
    rv = pthread_create(&t, &at, run, pc);
    pthread_attr_destroy(&at);
    if (rv != 0) {
        atomic_fetch_sub(&running, 1);
        pthread_mutex_destroy(&pc->mu);
        free(pc);
        wg_core_err_set(err, 500, "internal_error", NULL, "cannot start the proxy test");
        return WG_EIO;
    }
    *out = pc;
    return 0;
}

int wg_core_proxy_check_poll(wg_proxy_check_t *pc, wg_core_err_t *err)
{
    int done, rv;
    char why[160];
    pthread_mutex_lock(&pc->mu);
    done = pc->done;
    rv = pc->rv;
    if (done) /* the thread writes why before done, and never after */
        snprintf(why, sizeof(why), "%s", pc->why);
    pthread_mutex_unlock(&pc->mu);
    if (!done && mono_ms() < pc->deadline + 250) /* the thread's own bound comes first */
        return 0;
    if (done && rv == 0)
        return 1;
    if (!done) {
        rv = WG_ETIMEDOUT;
        snprintf(why, sizeof(why), "no tunnel within the time allowed");
    }
    wg_log(WG_LOG_INFO, "core", "proxy test %s:%u -> %s:%u failed: %s", pc->host,
           (unsigned)pc->port, pc->target, (unsigned)pc->target_port, why);
    wg_core_err_set(err, 422, "proxy_unreachable", "proxy", "%s", why);
    return rv;
}

void wg_core_proxy_check_free(wg_proxy_check_t *pc)
{
    if (pc)
        unref(pc);
}
