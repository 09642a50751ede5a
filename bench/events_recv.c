/* events_recv.c - a minimal webhook receiver for the benchmarks: libevent evhttp on one thread,
 * answers every POST with 200 and counts them; GET /count returns the count.
 *
 * For bench/messages it also looks in each POST body for a benchmark text "bench <seq> <ns>"
 * (seq: the message's number, ns: the sender's send time, CLOCK_REALTIME in ns) and notes, per
 * seq, the receipt time of its first delivery and how often it came. GET /stats?from=A&to=B
 * returns one line of JSON over the seqs in [A, B) (default: all):
 * {"posts","unique","dups","first_ns","last_ns","p50_us","p99_us","max_us"}
 * (posts: every POST so far; unique: seqs in the range that arrived; dups: extra deliveries
 * of them; first/last_ns: first and last receipt; latency = receipt - send).
 * Usage: events_recv <port> */
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SEQ_MAX 10000000

typedef struct {
    int64_t sent_ns, recv_ns; /* recv_ns 0: not arrived */
    uint32_t count;
} seen_t;

typedef struct {
    unsigned long posts;
    seen_t *seen; /* indexed by seq */
    size_t cap;
} recv_t;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* "bench <seq> <ns>" anywhere in the body (the text inside the event's JSON). */
static void note_bench(recv_t *r, struct evbuffer *body, int64_t t)
{
    char buf[8192];
    size_t n = evbuffer_get_length(body);
    unsigned long long seq, sent;
    const char *p;
    if (n >= sizeof(buf))
        n = sizeof(buf) - 1;
    evbuffer_copyout(body, buf, n);
    buf[n] = 0;
    if (!(p = strstr(buf, "bench ")) || sscanf(p, "bench %llu %llu", &seq, &sent) != 2 ||
        seq >= SEQ_MAX)
        return;
    if (seq >= r->cap) {
        size_t cap = r->cap ? r->cap : 4096;
        while (cap <= seq)
            cap *= 2;
        seen_t *s = realloc(r->seen, cap * sizeof(*s));
        if (!s)
            return;
        memset(s + r->cap, 0, (cap - r->cap) * sizeof(*s));
        r->seen = s;
        r->cap = cap;
    }
    seen_t *e = &r->seen[seq];
    if (e->count++ == 0) {
        e->sent_ns = (int64_t)sent;
        e->recv_ns = t;
    }
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static double pct_us(const int64_t *v, size_t n, double p)
{
    return n ? (double)v[(size_t)(p * (double)(n - 1) + 0.5)] / 1000.0 : 0.0;
}

static void stats(recv_t *r, size_t from, size_t to, struct evbuffer *out)
{
    if (to > r->cap)
        to = r->cap;
    if (from > to)
        from = to;
    int64_t *v = to > from ? malloc((to - from) * sizeof(*v)) : NULL;
    int64_t first = 0, last = 0;
    size_t n = 0;
    unsigned long dups = 0;
    for (size_t i = from; v && i < to; i++) {
        const seen_t *e = &r->seen[i];
        if (!e->count)
            continue;
        dups += e->count - 1;
        v[n++] = e->recv_ns - e->sent_ns;
        if (!first || e->recv_ns < first)
            first = e->recv_ns;
        if (e->recv_ns > last)
            last = e->recv_ns;
    }
    if (n)
        qsort(v, n, sizeof(*v), cmp_i64);
    evbuffer_add_printf(out,
                        "{\"posts\":%lu,\"unique\":%zu,\"dups\":%lu,\"first_ns\":%lld,"
                        "\"last_ns\":%lld,\"p50_us\":%.0f,\"p99_us\":%.0f,\"max_us\":%.0f}\n",
                        r->posts, n, dups, (long long)first, (long long)last, pct_us(v, n, 0.50),
                        pct_us(v, n, 0.99), n ? (double)v[n - 1] / 1000.0 : 0.0);
    free(v);
}

static void on_req(struct evhttp_request *req, void *arg)
{
    recv_t *r = arg;
    struct evbuffer *out = evbuffer_new();
    if (evhttp_request_get_command(req) == EVHTTP_REQ_POST) {
        r->posts++;
        note_bench(r, evhttp_request_get_input_buffer(req), now_ns());
        evbuffer_add(out, "ok", 2);
    } else if (!strncmp(evhttp_request_get_uri(req), "/stats", 6)) {
        const char *q = evhttp_request_get_uri(req) + 6, *f = strstr(q, "from="),
                   *t = strstr(q, "to=");
        stats(r, f ? strtoul(f + 5, NULL, 10) : 0, t ? strtoul(t + 3, NULL, 10) : SEQ_MAX, out);
    } else {
        evbuffer_add_printf(out, "%lu\n", r->posts);
    }
    evhttp_send_reply(req, 200, "OK", out);
    evbuffer_free(out);
}

int main(int argc, char **argv)
{
    recv_t r = {0};
    struct event_base *base = event_base_new();
    struct evhttp *http = base ? evhttp_new(base) : NULL;
    if (argc < 2 || !http || evhttp_bind_socket(http, "127.0.0.1", (unsigned short)atoi(argv[1]))) {
        fprintf(stderr, "usage: events_recv <port> (bind failed?)\n");
        return 1;
    }
    evhttp_set_gencb(http, on_req, &r);
    event_base_dispatch(base);
    return 0;
}
