/* events_recv.c - a minimal webhook receiver for bench/events.sh: libevent evhttp on one
 * thread, answers every POST with 200 and counts them; GET /count returns the count.
 * Usage: events_recv <port> */
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <stdio.h>
#include <stdlib.h>

static void on_req(struct evhttp_request *req, void *arg)
{
    unsigned long *count = arg;
    struct evbuffer *out = evbuffer_new();
    if (evhttp_request_get_command(req) == EVHTTP_REQ_POST) {
        (*count)++;
        evbuffer_add(out, "ok", 2);
    } else {
        evbuffer_add_printf(out, "%lu\n", *count);
    }
    evhttp_send_reply(req, 200, "OK", out);
    evbuffer_free(out);
}

int main(int argc, char **argv)
{
    unsigned long count = 0;
    struct event_base *base = event_base_new();
    struct evhttp *http = base ? evhttp_new(base) : NULL;
    if (argc < 2 || !http || evhttp_bind_socket(http, "127.0.0.1", (unsigned short)atoi(argv[1]))) {
        fprintf(stderr, "usage: events_recv <port> (bind failed?)\n");
        return 1;
    }
    evhttp_set_gencb(http, on_req, &count);
    event_base_dispatch(base);
    return 0;
}
