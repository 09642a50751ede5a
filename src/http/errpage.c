/* errpage.c - JSON instead of libevent's HTML error pages.
 *
 * libevent 2.1's evhttp answers some requests itself before any callback of ours runs: a body
 * over the limit (413), a header block over the limit or a malformed request (400), an unknown
 * method (501). It renders them through evhttp_send_error(), which writes an HTML page, and
 * 2.1 has no hook to change that (2.2 adds evhttp_set_errorcb). libevent calls
 * evhttp_send_error through its PLT, so defining the function here, in the program, replaces it
 * for the whole process (the dynamic linker resolves libevent's reference to the executable's
 * definition). This version does what the original does — status line, "Connection: close",
 * HTTP/1.1 for requests whose version was never parsed — with the native JSON error body. It
 * uses only public API (event2/http_struct.h for the version fields, as the original reads
 * them). Our own handlers never call evhttp_send_error. */
#include "http/server.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/http_struct.h>
#include <event2/keyvalq_struct.h>
#include <stddef.h>

/* Referenced by server.c so the linker takes this object from libwagate.a. */
int wg_http_errpage_json = 1;

static const char *code_of(int status)
{
    switch (status) {
    case 400: return "bad_request";
    case 413: return "payload_too_large";
    case 417: return "expectation_failed";
    case 431: return "headers_too_large";
    case 501: return "not_implemented";
    case 503: return "unavailable";
    default: return status >= 500 ? "internal_error" : "bad_request";
    }
}

static const char *phrase_of(int status)
{
    switch (status) {
    case 400: return "malformed request or header block too large";
    case 413: return "request body too large";
    case 417: return "expectation failed";
    case 501: return "method not implemented";
    default: return "request rejected";
    }
}

void evhttp_send_error(struct evhttp_request *req, int error, const char *reason);
void evhttp_send_error(struct evhttp_request *req, int error, const char *reason)
{
    struct evbuffer *buf = evbuffer_new();
    if (!buf) { /* as libevent does: without memory, drop the connection */
        evhttp_connection_free(evhttp_request_get_connection(req));
        return;
    }
    if (!req->major || !req->minor) {
        req->major = 1;
        req->minor = 1;
    }
    struct evkeyvalq *oh = evhttp_request_get_output_headers(req);
    evhttp_clear_headers(oh);
    evhttp_add_header(oh, "Content-Type", "application/json; charset=utf-8");
    evhttp_add_header(oh, "Connection", "close");
    evbuffer_add_printf(buf,
                        "{\"success\":false,\"error\":{\"code\":\"%s\",\"message\":\"%s\","
                        "\"field\":null}}\n",
                        code_of(error), phrase_of(error));
    evhttp_send_reply(req, error, reason, buf);
    evbuffer_free(buf);
}
