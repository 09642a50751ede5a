/* test_events.c - events/: SSRF address classes, webhook settings, rendering, signature,
 * backoff, metrics text, and the store's outbox delivery functions (query/mark/replay). */
#include "events/metrics.h"
#include "events/ssrf.h"
#include "events/webhook.h"
#include "store/store.h"
#include "test.h"
#include "util/err.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int pub(const char *ip)
{
    struct sockaddr_in6 s6;
    struct sockaddr_in s4;
    memset(&s6, 0, sizeof(s6));
    memset(&s4, 0, sizeof(s4));
    if (inet_pton(AF_INET, ip, &s4.sin_addr) == 1) {
        s4.sin_family = AF_INET;
        return wg_ssrf_addr_public((struct sockaddr *)&s4, sizeof(s4));
    }
    if (inet_pton(AF_INET6, ip, &s6.sin6_addr) == 1) {
        s6.sin6_family = AF_INET6;
        return wg_ssrf_addr_public((struct sockaddr *)&s6, sizeof(s6));
    }
    return -1;
}

WG_TEST(events_ssrf_ranges)
{
    static const char *const deny[] = {
        "127.0.0.1", "127.255.255.254", "0.0.0.0", "10.0.0.1", "10.255.255.255", "172.16.0.1",
        "172.31.255.255", "192.168.1.1", "169.254.169.254", "100.64.0.1", "100.127.255.255",
        "224.0.0.1", "255.255.255.255", "240.0.0.1", "198.18.0.1", "192.0.2.1", "::1", "::",
        "fe80::1", "fc00::1", "fd12:3456::1", "ff02::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1",
        "::ffff:169.254.169.254", "64:ff9b::a9fe:a9fe", "2002:7f00:1::1", "2001:db8::1",
        "fec0::1", "::127.0.0.1"};
    static const char *const allow[] = {"8.8.8.8", "1.1.1.1", "172.32.0.1", "172.15.255.255",
                                        "100.128.0.1", "169.253.0.1", "2606:4700::1111",
                                        "::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1"};
    for (size_t i = 0; i < sizeof(deny) / sizeof(deny[0]); i++) {
        if (pub(deny[i]) != 0)
            fprintf(stderr, "  should be refused: %s\n", deny[i]);
        WG_CHECK_EQ_INT(pub(deny[i]), 0);
    }
    for (size_t i = 0; i < sizeof(allow) / sizeof(allow[0]); i++) {
        if (pub(allow[i]) != 1)
            fprintf(stderr, "  should be allowed: %s\n", allow[i]);
        WG_CHECK_EQ_INT(pub(allow[i]), 1);
    }
    struct sockaddr sa = {.sa_family = AF_UNIX};
    WG_CHECK_EQ_INT(wg_ssrf_addr_public(&sa, sizeof(sa)), 0);
    WG_CHECK_EQ_INT(wg_ssrf_addr_public(NULL, 0), 0);
}

WG_TEST(events_webhook_cfg_and_url)
{
    wg_webhook_cfg_t c;
    char *u = NULL;
    WG_CHECK_EQ_INT(wg_webhook_cfg_parse("{\"url\":\"https://h.example/in?x=1\",\"events\":"
                                         "[\"qr.updated\",\"instance.deleted\"],\"byEvents\":true,"
                                         "\"secret\":\"s3cr3t\",\"maxAttempts\":4}",
                                         "evolution", &c),
                    0);
    WG_CHECK_STR(c.url, "https://h.example/in?x=1");
    WG_CHECK_STR(c.secret, "s3cr3t");
    WG_CHECK_STR(c.dialect, "evolution");
    WG_CHECK_EQ_INT(c.max_attempts, 4);
    WG_CHECK(wg_webhook_wants(&c, "qr.updated"));
    WG_CHECK(!wg_webhook_wants(&c, "connection.updated"));
    WG_CHECK_EQ_INT(wg_webhook_url(&c, "qr.updated", &u), 0);
    WG_CHECK_STR(u, "https://h.example/in/qr.updated?x=1");
    free(u);
    wg_webhook_cfg_dispose(&c);
    /* defaults: no url, every event, unsigned; invalid JSON is "no webhook" */
    WG_CHECK_EQ_INT(wg_webhook_cfg_parse("{\"url\":null,\"events\":[],\"secret\":null}", NULL, &c), 0);
    WG_CHECK(!c.url && !c.secret && wg_webhook_wants(&c, "anything") && c.max_attempts == 0);
    WG_CHECK_EQ_INT(wg_webhook_url(&c, "x", &u), WG_EINVAL);
    wg_webhook_cfg_dispose(&c);
    WG_CHECK_EQ_INT(wg_webhook_cfg_parse("not json", "native", &c), 0);
    WG_CHECK(!c.url);
    wg_webhook_cfg_dispose(&c);
    WG_CHECK_EQ_INT(wg_webhook_cfg_parse("{\"url\":\"http://a/b/\",\"byEvents\":true}", NULL, &c), 0);
    WG_CHECK_EQ_INT(wg_webhook_url(&c, "message.received", &u), 0);
    WG_CHECK_STR(u, "http://a/b/message.received");
    free(u);
    wg_webhook_cfg_dispose(&c);
}

WG_TEST(events_webhook_render_and_sign)
{
    wg_webhook_cfg_t c = {0};
    wg_outbox_row_t r = {.seq = 7, .created_at = 1767225600123LL};
    char *body = NULL, sig[80];
    size_t len = 0;
    strcpy(r.id, "evt_0001");
    strcpy(r.instance_id, "inst_\"x");
    strcpy(r.event, "connection.updated");
    r.payload = "{\"status\":\"WORKING\"}";
    WG_CHECK_EQ_INT(wg_webhook_render(&c, &r, &body, &len), 0);
    WG_CHECK_EQ_INT(len, strlen(body));
    json_t *j = json_loads(body, 0, NULL);
    WG_CHECK(j != NULL);
    WG_CHECK_STR(json_string_value(json_object_get(j, "id")), "evt_0001");
    WG_CHECK_STR(json_string_value(json_object_get(j, "instanceId")), "inst_\"x");
    WG_CHECK_EQ_INT(json_integer_value(json_object_get(j, "seq")), 7);
    WG_CHECK_STR(json_string_value(json_object_get(j, "timestamp")), "2026-01-01T00:00:00.123Z");
    WG_CHECK_STR(json_string_value(json_object_get(json_object_get(j, "data"), "status")),
                 "WORKING");
    json_decref(j);
    /* RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?" */
    wg_webhook_sign("Jefe", "what do ya want for nothing?", 28, sig, sizeof(sig));
    WG_CHECK_STR(sig, "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    free(body);
}

WG_TEST(events_backoff)
{
    /* 2 s doubling, capped at 600 s, jitter in [d/2, d] */
    for (uint32_t rnd = 0; rnd < 5000; rnd += 997) {
        int64_t d1 = wg_webhook_backoff_ms(1, 2000, 600000, rnd);
        int64_t d3 = wg_webhook_backoff_ms(3, 2000, 600000, rnd);
        int64_t d20 = wg_webhook_backoff_ms(20, 2000, 600000, rnd);
        WG_CHECK(d1 >= 1000 && d1 <= 2000);
        WG_CHECK(d3 >= 4000 && d3 <= 8000);
        WG_CHECK(d20 >= 300000 && d20 <= 600000);
    }
    WG_CHECK_EQ_INT(wg_webhook_backoff_ms(1, 2000, 600000, 0), 1000);
    WG_CHECK_EQ_INT(wg_webhook_backoff_ms(1, 2000, 600000, 1000), 2000);
    WG_CHECK_EQ_INT(wg_webhook_backoff_ms(1000, 2000, 600000, 0), 300000);
}

WG_TEST(events_metrics_text)
{
    wg_metrics_t *m = wg_metrics_new();
    char *txt = NULL;
    size_t len = 0;
    static const char route[] = "/v1/instances";
    WG_CHECK(m != NULL);
    wg_metrics_delivered(m, 3);
    wg_metrics_delivered(m, 4000);
    wg_metrics_delivered(m, 999999);
    wg_metrics_retried(m);
    wg_metrics_dead(m);
    for (int i = 0; i < 3; i++)
        wg_metrics_http(m, route, 201);
    wg_metrics_http(m, route, 422);
    wg_metrics_http(m, NULL, 404);
    WG_CHECK_EQ_INT(wg_metrics_render(m, NULL, &txt, &len), 0);
    WG_CHECK(strstr(txt, "wagate_events_delivered_total 3\n"));
    WG_CHECK(strstr(txt, "wagate_events_retried_total 1\n"));
    WG_CHECK(strstr(txt, "wagate_events_dead_lettered_total 1\n"));
    WG_CHECK(strstr(txt, "wagate_delivery_latency_seconds_bucket{le=\"0.005\"} 1\n"));
    WG_CHECK(strstr(txt, "wagate_delivery_latency_seconds_bucket{le=\"5\"} 2\n"));
    WG_CHECK(strstr(txt, "wagate_delivery_latency_seconds_bucket{le=\"300\"} 2\n"));
    WG_CHECK(strstr(txt, "wagate_delivery_latency_seconds_bucket{le=\"+Inf\"} 3\n"));
    WG_CHECK(strstr(txt, "wagate_http_requests_total{route=\"/v1/instances\",status=\"201\"} 3\n"));
    WG_CHECK(strstr(txt, "wagate_http_requests_total{route=\"/v1/instances\",status=\"422\"} 1\n"));
    WG_CHECK(strstr(txt, "wagate_http_requests_total{route=\"unmatched\",status=\"404\"} 1\n"));
    WG_CHECK_EQ_INT(len, strlen(txt));
    free(txt);
    wg_metrics_free(m);
}

static int collect(const char *id, void *arg)
{
    strcat(arg, id);
    strcat(arg, ";");
    return 0;
}

WG_TEST(events_store_outbox_delivery)
{
    char path[] = "/tmp/wagate-test-events-XXXXXX";
    int fd = mkstemp(path);
    wg_store_t *st = NULL;
    wg_outbox_row_t *v = NULL, e;
    size_t n = 0;
    char ids[256] = "";
    int64_t last = -1;
    WG_CHECK(fd >= 0);
    close(fd);
    WG_CHECK_EQ_INT(wg_store_open(path, &st), 0);
    wg_store_event_t ev = {"qr.updated", "{\"n\":1}"};
    for (int i = 0; i < 3; i++)
        WG_CHECK_EQ_INT(wg_store_event_append(st, "inst_a", &ev), 0);
    WG_CHECK_EQ_INT(wg_store_event_append(st, "inst_b", &ev), 0);
    WG_CHECK_EQ_INT(wg_store_outbox_pending_instances(st, collect, ids), 0);
    WG_CHECK(strstr(ids, "inst_a;") && strstr(ids, "inst_b;"));
    WG_CHECK_EQ_INT(wg_store_outbox_last_seq(st, "inst_a", &last), 0);
    WG_CHECK_EQ_INT(last, 3);
    wg_outbox_query_t q = {"inst_a", "pending", 0, 10};
    WG_CHECK_EQ_INT(wg_store_outbox_query(st, &q, &v, &n), 0);
    WG_CHECK_EQ_INT(n, 3);
    WG_CHECK(v[0].seq == 1 && v[2].seq == 3 && !strncmp(v[0].id, "evt_", 4));
    wg_outbox_mark_t mk[3] = {{v[0].id, "delivered", 1, 0, NULL},
                              {v[1].id, "pending", 2, 123456, "HTTP 500"},
                              {v[2].id, "failed", 15, 0, "HTTP 410"}};
    WG_CHECK_EQ_INT(wg_store_outbox_mark(st, mk, 3), 0);
    char id2[64], id3[64];
    strcpy(id2, v[1].id);
    strcpy(id3, v[2].id);
    wg_outbox_list_free(v, n);
    WG_CHECK_EQ_INT(wg_store_outbox_get(st, id2, &e), 0);
    WG_CHECK(!strcmp(e.state, "pending") && e.attempts == 2 && e.next_attempt_at == 123456 &&
             !strcmp(e.last_error, "HTTP 500"));
    free(e.payload);
    /* after_seq and state filters */
    wg_outbox_query_t q2 = {"inst_a", NULL, 1, 10};
    WG_CHECK_EQ_INT(wg_store_outbox_query(st, &q2, &v, &n), 0);
    WG_CHECK(n == 2 && v[0].seq == 2);
    WG_CHECK(v[0].delivered_at == 0);
    wg_outbox_list_free(v, n);
    q2.after_seq = 0;
    q2.state = "delivered";
    WG_CHECK_EQ_INT(wg_store_outbox_query(st, &q2, &v, &n), 0);
    WG_CHECK(n == 1 && v[0].delivered_at > 0);
    wg_outbox_list_free(v, n);
    /* replay: only failed rows of that instance */
    WG_CHECK_EQ_INT(wg_store_outbox_replay(st, "inst_b", id3), WG_ENOTFOUND);
    WG_CHECK_EQ_INT(wg_store_outbox_replay(st, "inst_a", id2), WG_EEXIST);
    WG_CHECK_EQ_INT(wg_store_outbox_replay(st, "inst_a", id3), 0);
    WG_CHECK_EQ_INT(wg_store_outbox_get(st, id3, &e), 0);
    WG_CHECK(!strcmp(e.state, "pending") && e.attempts == 0 && e.next_attempt_at == 0);
    free(e.payload);
    WG_CHECK_EQ_INT(wg_store_outbox_get(st, "evt_none", &e), WG_ENOTFOUND);
    /* keyed append: a re-delivered WhatsApp message keeps its event id, no second row */
    char k1[40], k2[40], k3[40];
    int dup = -1;
    wg_store_event_t msg = {"message.received", "{\"id\":\"3EB0\"}"};
    WG_CHECK_EQ_INT(wg_store_event_append_once(st, "inst_a", &msg, "msg:3EB0", k1, sizeof(k1), &dup), 0);
    WG_CHECK_EQ_INT(dup, 0);
    WG_CHECK_EQ_INT(wg_store_event_append_once(st, "inst_a", &msg, "msg:3EB0", k2, sizeof(k2), &dup), 0);
    WG_CHECK_EQ_INT(dup, 1);
    WG_CHECK_STR(k1, k2);
    WG_CHECK_EQ_INT(wg_store_event_append_once(st, "inst_b", &msg, "msg:3EB0", k3, sizeof(k3), &dup), 0);
    WG_CHECK(dup == 0 && strcmp(k1, k3) != 0); /* keys are per instance */
    WG_CHECK_EQ_INT(wg_store_outbox_last_seq(st, "inst_a", &last), 0);
    WG_CHECK_EQ_INT(last, 4);
    wg_store_close(st);
    unlink(path);
    char side[64];
    snprintf(side, sizeof(side), "%s-wal", path);
    unlink(side);
    snprintf(side, sizeof(side), "%s-shm", path);
    unlink(side);
}
