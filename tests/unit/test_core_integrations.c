/* test_core_integrations.c - the core's validation of event sinks and Chatwoot, and its proxy
 * connection test against a loopback CONNECT responder and a closed port. */
#include "core/core.h"
#include "test.h"
#include "util/err.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static json_t *parse(const char *txt)
{
    return json_loads(txt, 0, NULL);
}

WG_TEST(core_sinks_parse)
{
    wg_core_err_t err = {0};
    json_t *in = parse("{\"rabbitmq\":{\"enabled\":true,\"events\":[\"message.received\","
                       "\"message.received\"]},\"nats\":{}}"),
           *out = NULL;
    WG_CHECK_EQ_INT(wg_core_sinks_parse(in, &out, &err), 0);
    static const char want[] =
        "{\"nats\":{\"enabled\":false,\"events\":[]},\"rabbitmq\":{\"enabled\":true,"
        "\"events\":[\"message.received\"]},\"sqs\":{\"enabled\":false,\"events\":[]}}";
    char *txt = json_dumps(out, JSON_COMPACT | JSON_SORT_KEYS);
    WG_CHECK_STR(txt, want);
    free(txt);
    json_decref(in);
    json_decref(out);
    static const char *const bad[][2] = {
        {"{\"kafka\":{}}", "kafka"},
        {"{\"sqs\":[]}", "sqs"},
        {"{\"sqs\":{\"enabled\":\"yes\"}}", "sqs.enabled"},
        {"{\"nats\":{\"events\":[\"nope\"]}}", "nats.events"},
        {"{\"nats\":{\"events\":\"message.received\"}}", "nats.events"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memset(&err, 0, sizeof(err));
        in = parse(bad[i][0]);
        out = NULL;
        WG_CHECK_EQ_INT(wg_core_sinks_parse(in, &out, &err), WG_EINVAL);
        WG_CHECK(out == NULL);
        WG_CHECK_EQ_INT(err.status, 422);
        WG_CHECK_STR(err.field, bad[i][1]);
        json_decref(in);
    }
}

WG_TEST(core_chatwoot_all_or_nothing)
{
    wg_core_err_t err = {0};
    json_t *out = (json_t *)1, *in = parse("{\"signMsg\":true,\"nameInbox\":\"x\"}");
    /* no accountId, token or url: not configured, the rest ignored */
    WG_CHECK_EQ_INT(wg_core_chatwoot_parse(in, "inst", &out, &err), 0);
    WG_CHECK(out == NULL);
    json_decref(in);
    in = parse("{\"token\":\"t\"}");
    WG_CHECK_EQ_INT(wg_core_chatwoot_parse(in, "inst", &out, &err), WG_EINVAL);
    WG_CHECK_STR(err.field, "chatwoot.accountId,chatwoot.url");
    WG_CHECK(strstr(err.message, "missing: accountId, url") != NULL);
    json_decref(in);
    static const char *const bad[][2] = {
        {"{\"accountId\":\"x1\",\"token\":\"t\",\"url\":\"https://c.io\"}", "chatwoot.accountId"},
        {"{\"accountId\":1,\"token\":\"a b\",\"url\":\"https://c.io\"}", "chatwoot.token"},
        {"{\"accountId\":1,\"token\":\"t\",\"url\":\"c.io\"}", "chatwoot.url"},
        {"{\"accountId\":1,\"token\":\"t\",\"url\":\"https://c.io\",\"signMsg\":1}",
         "chatwoot.signMsg"},
        {"{\"accountId\":1,\"token\":\"t\",\"url\":\"https://c.io\","
         "\"daysLimitImportMessages\":4000}",
         "chatwoot.daysLimitImportMessages"},
        {"{\"accountId\":1,\"token\":\"t\",\"url\":\"https://c.io\",\"logo\":5}", "chatwoot.logo"},
        {"{\"accountId\":1,\"token\":\"t\",\"url\":\"https://c.io\",\"bogus\":5}",
         "chatwoot.bogus"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memset(&err, 0, sizeof(err));
        in = parse(bad[i][0]);
        out = NULL;
        WG_CHECK_EQ_INT(wg_core_chatwoot_parse(in, "inst", &out, &err), WG_EINVAL);
        WG_CHECK(out == NULL);
        WG_CHECK_STR(err.field, bad[i][1]);
        json_decref(in);
    }
    in = parse("{\"accountId\":12,\"token\":\"tok\",\"url\":\"http://cw.local:3000\","
               "\"importMessages\":false}");
    WG_CHECK_EQ_INT(wg_core_chatwoot_parse(in, "inst", &out, &err), 0);
    static const char want[] =
        "{\"accountId\":\"12\",\"conversationPending\":false,\"daysLimitImportMessages\":60,"
        "\"enabled\":true,\"importContacts\":true,\"importMessages\":false,\"logo\":null,"
        "\"mergeBrazilContacts\":false,\"nameInbox\":\"inst\",\"organization\":null,"
        "\"reopenConversation\":false,\"signMsg\":false,\"token\":\"tok\","
        "\"url\":\"http://cw.local:3000\"}";
    char *txt = json_dumps(out, JSON_COMPACT | JSON_SORT_KEYS);
    WG_CHECK(txt && strcmp(txt, want) == 0);
    free(txt);
    json_decref(in);
    json_decref(out);
}

/* A one-shot CONNECT responder: reads the request, answers `reply`, records the first line. */
typedef struct {
    int fd;
    const char *reply;
    char line[200];
} responder_t;

static void *respond_once(void *arg)
{
    responder_t *r = arg;
    int c = accept(r->fd, NULL, NULL);
    char buf[1024];
    size_t n = 0;
    if (c < 0)
        return NULL;
    while (n < sizeof(buf) - 1) {
        ssize_t k = recv(c, buf + n, sizeof(buf) - 1 - n, 0);
        if (k <= 0)
            break;
        n += (size_t)k;
        buf[n] = 0;
        if (strstr(buf, "\r\n\r\n"))
            break;
    }
    buf[n] = 0;
    char *eol = strstr(buf, "\r\n");
    if (eol)
        *eol = 0;
    snprintf(r->line, sizeof(r->line), "%.199s", buf);
    if (send(c, r->reply, strlen(r->reply), MSG_NOSIGNAL) < 0)
        r->line[0] = 0;
    close(c);
    return NULL;
}

static int listener(int *port)
{
    struct sockaddr_in a = {0};
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(fd, 4) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    *port = ntohs(a.sin_port);
    return fd;
}

/* Polls the test to its end (at most 5 s): 1, or the error. */
static int run_check(wg_core_t *c, json_t *proxy, wg_core_err_t *err)
{
    wg_proxy_check_t *pc = NULL;
    int rv = wg_core_proxy_check_start(c, proxy, &pc, err);
    if (rv)
        return rv;
    for (int i = 0; i < 500 && (rv = wg_core_proxy_check_poll(pc, err)) == 0; i++) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    wg_core_proxy_check_free(pc);
    return rv;
}

WG_TEST(core_proxy_check)
{
    wg_config_t cfg = {0};
    wg_core_t c = {0};
    wg_core_err_t err = {0};
    responder_t r = {0};
    pthread_t t;
    int port = 0;
    char txt[160];
    cfg.wa_url = "wss://web.whatsapp.test:5222/ws/chat";
    cfg.proxy_check_timeout_ms = 2000;
    c.cfg = &cfg;
    /* a proxy that opens the tunnel: the CONNECT names the WhatsApp endpoint */
    r.fd = listener(&port);
    WG_CHECK(r.fd >= 0);
    r.reply = "HTTP/1.1 200 Connection established\r\n\r\n";
    WG_CHECK(pthread_create(&t, NULL, respond_once, &r) == 0);
    snprintf(txt, sizeof(txt), "{\"protocol\":\"http\",\"host\":\"127.0.0.1\",\"port\":%d}", port);
    json_t *px = parse(txt);
    int rv = run_check(&c, px, &err);
    pthread_join(t, NULL);
    json_decref(px);
    WG_CHECK_EQ_INT(rv, 1);
    WG_CHECK_STR(r.line, "CONNECT web.whatsapp.test:5222 HTTP/1.1");
    /* a proxy that refuses */
    r.reply = "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n";
    WG_CHECK(pthread_create(&t, NULL, respond_once, &r) == 0);
    px = parse(txt);
    rv = run_check(&c, px, &err);
    pthread_join(t, NULL);
    json_decref(px);
    close(r.fd);
    WG_CHECK_EQ_INT(rv, WG_EIO);
    WG_CHECK_EQ_INT(err.status, 422);
    WG_CHECK_STR(err.code, "proxy_unreachable");
    WG_CHECK_STR(err.field, "proxy");
    /* nothing listens any more */
    memset(&err, 0, sizeof(err));
    px = parse(txt);
    rv = run_check(&c, px, &err);
    json_decref(px);
    WG_CHECK_EQ_INT(rv, WG_EIO);
    WG_CHECK(strstr(err.message, "cannot connect to the proxy") != NULL);
}
