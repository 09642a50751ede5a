/* control.c - the sandbox's control API: JSON over HTTP (evhttp) on the --control address, no
 * auth (loopback). The routes are a contract (DESIGN.md "Sandbox control API"):
 *
 *   GET    /health                                {"status":"ok"}
 *   POST   /phones {number, pushName?}            201 {number, jid, lid}
 *   GET    /phones                                [{number, jid, lid, pushName}]   (extra)
 *   POST   /phones/{number}/scan {qr}             200 {deviceJid}   (waits for the companion)
 *   POST   /phones/{number}/link-code {code}      200 {deviceJid}   (waits for the companion)
 *   GET    /phones/{number}/devices               [{jid, connected}]
 *   DELETE /phones/{number}/devices/{deviceJid}   200 {jid, loggedOut:true}
 *   POST   /control/drop                          200 {dropped}
 *   POST   /control/refuse {seconds}              200 {refusingSeconds}
 *   POST   /control/prekey-upload {delayMs?, fail?}  200 {delayMs, fail}  (prekey upload
 *                                                 answers held delayMs; the next `fail`
 *                                                 uploads refused with 500)
 *   POST   /phones/{number}/messages {to, text, group?}  200 {id}  (to: number, user JID or
 *                                                 group JID; group: true allows a bare group id)
 *   GET    /phones/{number}/messages              [{id, from, author, text, t}] (received)
 *   POST   /phones/{number}/calls {to}            200 {callId}  (a call offer)
 *   GET    /phones/{number}/calls                 [{id, from, author, text, t}] (text: "offer"
 *                                                 placed, or the kind a device sent: "reject")
 *   GET    /phones/{number}/receipts              [{id, from, author, text, t}] receipts the phone
 *                                                 got for its messages (text: delivery, read…)
 *   POST   /groups {subject, creator, participants[]}  201 {jid}
 *
 * Errors are {"error": "<what went wrong>"} with a 4xx status (5xx only for our own failures).
 * Scan and link-code answer later: the request is parked (ctl_wait_t) until the server calls
 * back. If evhttp reports the connection closed first, the wait is cancelled on the server
 * side; evhttp does not watch a parked request's socket, though, so in practice a scan whose
 * caller left still completes (it is the phone's act) and its answer is dropped.
 *
 * Ownership: a ctl_wait_t lives from the parked request to its answer or its connection's close,
 * whichever comes first, and is freed there; wg_sandbox_control_free cancels the ones left. */
#include "sandbox/sb_int.h"

#include "util/codec.h"
#include "util/err.h"
#include "util/log.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <event2/util.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define MAX_BODY 65536

typedef struct ctl_wait_s ctl_wait_t;

struct wg_sandbox_control_s {
    wg_sandbox_t *sb;
    struct evhttp *http;
    uint16_t port;
    ctl_wait_t *waits;
};

struct ctl_wait_s {
    wg_sandbox_control_t *ctl;
    struct evhttp_request *req;
    wg_sandbox_pending_t *ticket;
    ctl_wait_t *prev, *next;
};

static void reply_json(struct evhttp_request *req, int status, json_t *body)
{
    struct evbuffer *b = evbuffer_new();
    char *s = body ? json_dumps(body, JSON_COMPACT) : NULL;
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
    if (b && s) {
        evbuffer_add(b, s, strlen(s));
        evbuffer_add(b, "\n", 1);
    }
    evhttp_send_reply(req, status, NULL, b);
    if (b)
        evbuffer_free(b);
    free(s);
    json_decref(body);
}

static void reply_error(struct evhttp_request *req, int status, const char *msg)
{
    reply_json(req, status, json_pack("{s:s}", "error", msg));
}

/* The JSON object body, or NULL after answering 400. */
static json_t *read_body(struct evhttp_request *req)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t n = evbuffer_get_length(in);
    json_error_t err;
    json_t *j;
    char msg[300];
    if (n == 0) {
        reply_error(req, 400, "a JSON object body is required");
        return NULL;
    }
    j = json_loadb((const char *)evbuffer_pullup(in, -1), n, 0, &err);
    if (!j || !json_is_object(j)) {
        snprintf(msg, sizeof(msg), "body is not a JSON object%s%s", j ? "" : ": ",
                 j ? "" : err.text);
        json_decref(j);
        reply_error(req, 400, msg);
        return NULL;
    }
    return j;
}

/* ---- parked requests ----------------------------------------------------------------------- */

static void wait_unlink(ctl_wait_t *w)
{
    if (w->prev)
        w->prev->next = w->next;
    else
        w->ctl->waits = w->next;
    if (w->next)
        w->next->prev = w->prev;
}

static void wait_conn_closed_cb(struct evhttp_connection *con, void *arg)
{
    ctl_wait_t *w = arg;
    (void)con;
    wg_log(WG_LOG_INFO, "sandbox", "control: client went away while waiting; cancelled");
    wg_sandbox_cancel(w->ctl->sb, w->ticket);
    wait_unlink(w);
    free(w);
}

static void wait_done_cb(void *arg, int status, const char *device_jid, const char *error)
{
    ctl_wait_t *w = arg;
    struct evhttp_connection *con = evhttp_request_get_connection(w->req);
    if (con)
        evhttp_connection_set_closecb(con, NULL, NULL);
    if (status == 200)
        reply_json(w->req, 200, json_pack("{s:s}", "deviceJid", device_jid));
    else
        reply_error(w->req, status, error ? error : "failed");
    wait_unlink(w);
    free(w);
}

typedef int (*start_fn)(wg_sandbox_t *, wg_sandbox_phone_t *, const char *, wg_sandbox_done_cb,
                        void *, wg_sandbox_pending_t **, const char **);

static void park(wg_sandbox_control_t *ctl, struct evhttp_request *req, wg_sandbox_phone_t *p,
                 const char *arg, start_fn start)
{
    ctl_wait_t *w = calloc(1, sizeof(*w));
    const char *error = NULL;
    int status;
    if (!w) {
        reply_error(req, 500, "out of memory");
        return;
    }
    w->ctl = ctl;
    w->req = req;
    status = start(ctl->sb, p, arg, wait_done_cb, w, &w->ticket, &error);
    if (status != 0) {
        free(w);
        reply_error(req, status, error ? error : "failed");
        return;
    }
    w->next = ctl->waits;
    if (ctl->waits)
        ctl->waits->prev = w;
    ctl->waits = w;
    evhttp_connection_set_closecb(evhttp_request_get_connection(req), wait_conn_closed_cb, w);
}

/* ---- routes -------------------------------------------------------------------------------- */

static json_t *phone_json(const wg_sandbox_phone_t *p)
{
    char jid[64], lid[64];
    snprintf(jid, sizeof(jid), "%s@s.whatsapp.net", p->number);
    snprintf(lid, sizeof(lid), "%s@lid", p->lid);
    return json_pack("{s:s,s:s,s:s,s:s}", "number", p->number, "jid", jid, "lid", lid, "pushName",
                     p->push_name);
}

static void phones_create(wg_sandbox_control_t *ctl, struct evhttp_request *req)
{
    json_t *b = read_body(req), *num, *name;
    wg_sandbox_phone_t *p;
    int rv;
    if (!b)
        return;
    num = json_object_get(b, "number");
    name = json_object_get(b, "pushName");
    if (!json_is_string(num) || !wg_sandbox_number_valid(json_string_value(num))) {
        reply_error(req, 400,
                    "number must be a string of 1 to 20 digits without a leading 0 "
                    "(international format without '+')");
    } else if (name && !json_is_null(name) &&
               (!json_is_string(name) || strlen(json_string_value(name)) >= 64)) {
        reply_error(req, 400, "pushName must be a string shorter than 64 bytes");
    } else if ((rv = wg_sandbox_state_phone_add(
                    wg_sandbox_state(ctl->sb), json_string_value(num),
                    json_is_string(name) ? json_string_value(name) : NULL, &p)) == WG_EEXIST) {
        reply_error(req, 409, "a phone with this number already exists");
    } else if (rv != 0) {
        reply_error(req, 500, "could not save the phone");
    } else {
        wg_log(WG_LOG_INFO, "sandbox", "phone %s created", p->number);
        reply_json(req, 201, phone_json(p));
    }
    json_decref(b);
}

static void phones_list(wg_sandbox_control_t *ctl, struct evhttp_request *req)
{
    wg_sandbox_state_t *st = wg_sandbox_state(ctl->sb);
    json_t *a = json_array();
    for (size_t i = 0; i < wg_sandbox_state_phone_count(st); i++)
        json_array_append_new(a, phone_json(wg_sandbox_state_phone_at(st, i)));
    reply_json(req, 200, a);
}

static void string_from_json(json_t *b, const char *key, const char **out)
{
    json_t *v = json_object_get(b, key);
    *out = json_is_string(v) ? json_string_value(v) : NULL;
}

static void phone_link(wg_sandbox_control_t *ctl, struct evhttp_request *req, wg_sandbox_phone_t *p,
                       const char *key, start_fn start)
{
    json_t *b = read_body(req);
    const char *v;
    char msg[64];
    if (!b)
        return;
    string_from_json(b, key, &v);
    if (!v || !*v) {
        snprintf(msg, sizeof(msg), "%s must be a non-empty string", key);
        reply_error(req, 400, msg);
    } else {
        park(ctl, req, p, v, start);
    }
    json_decref(b);
}

static void devices_list(wg_sandbox_control_t *ctl, struct evhttp_request *req,
                         const wg_sandbox_phone_t *p)
{
    wg_sandbox_state_t *st = wg_sandbox_state(ctl->sb);
    json_t *a = json_array();
    size_t n = wg_sandbox_state_device_count(st);
    for (size_t i = 0; i < n; i++) {
        wg_sandbox_device_t *d = wg_sandbox_state_device_at(st, i);
        char jid[64];
        if (strcmp(d->number, p->number) != 0)
            continue;
        wg_sandbox_device_jid(d, jid, sizeof(jid));
        json_array_append_new(a, json_pack("{s:s,s:b,s:s,s:I}", "jid", jid, "connected",
                                           d->conn != NULL, "platform", d->platform, "linkedAt",
                                           (json_int_t)d->linked_at));
    }
    reply_json(req, 200, a);
}

static void device_delete(wg_sandbox_control_t *ctl, struct evhttp_request *req,
                          const wg_sandbox_phone_t *p, const char *enc_jid)
{
    char *jid = evhttp_uridecode(enc_jid, 0, NULL);
    char number[WG_SB_NUMBER_MAX + 1];
    uint32_t id;
    wg_sandbox_device_t *d;
    if (!jid) {
        reply_error(req, 500, "out of memory");
        return;
    }
    if (wg_sandbox_parse_device_jid(jid, number, &id) != 0 || strcmp(number, p->number) != 0) {
        reply_error(req, 400, "deviceJid must be <number>:<device>@s.whatsapp.net of this phone");
    } else if (!(d = wg_sandbox_state_device_find(wg_sandbox_state(ctl->sb), number, id))) {
        reply_error(req, 404, "no such linked device");
    } else if (wg_sandbox_logout(ctl->sb, d) != 0) {
        reply_error(req, 500, "could not remove the device from the state file");
    } else {
        reply_json(req, 200, json_pack("{s:s,s:b}", "jid", jid, "loggedOut", 1));
    }
    free(jid);
}

static void control_refuse(wg_sandbox_control_t *ctl, struct evhttp_request *req)
{
    json_t *b = read_body(req), *s;
    if (!b)
        return;
    s = json_object_get(b, "seconds");
    if (!json_is_integer(s) || json_integer_value(s) < 0 || json_integer_value(s) > 86400) {
        reply_error(req, 400, "seconds must be an integer from 0 to 86400");
    } else {
        wg_sandbox_refuse(ctl->sb, (unsigned)json_integer_value(s));
        reply_json(req, 200, json_pack("{s:I}", "refusingSeconds", json_integer_value(s)));
    }
    json_decref(b);
}

/* An optional integer member in [0, max]: *out = its value, or -1 when absent. 0 or -1 (bad). */
static int opt_int(json_t *b, const char *key, long max, long *out)
{
    json_t *v = json_object_get(b, key);
    *out = -1;
    if (!v)
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > max)
        return -1;
    *out = (long)json_integer_value(v);
    return 0;
}

static void control_prekey_upload(wg_sandbox_control_t *ctl, struct evhttp_request *req)
{
    json_t *b = read_body(req);
    long delay, fail;
    unsigned cur_delay, cur_fail;
    if (!b)
        return;
    if (opt_int(b, "delayMs", 600000, &delay) != 0) {
        reply_error(req, 400, "delayMs must be an integer from 0 to 600000");
    } else if (opt_int(b, "fail", 1000, &fail) != 0) {
        reply_error(req, 400, "fail must be an integer from 0 to 1000");
    } else {
        wg_sandbox_upload_faults(ctl->sb, delay, fail, &cur_delay, &cur_fail);
        json_t *r =
            json_pack("{s:I,s:I}", "delayMs", (json_int_t)cur_delay, "fail", (json_int_t)cur_fail);
        reply_json(req, 200, r);
    }
    json_decref(b);
}

static void phone_message_post(wg_sandbox_control_t *ctl, struct evhttp_request *req,
                               wg_sandbox_phone_t *p)
{
    json_t *b = read_body(req);
    const char *to, *text, *error = NULL;
    char id[24];
    int status;
    if (!b)
        return;
    char gjid[96];
    json_t *group = json_object_get(b, "group");
    string_from_json(b, "to", &to);
    string_from_json(b, "text", &text);
    if (to && *to == '+') /* international format with '+' is fine */
        to++;
    if (to && json_is_true(group) && !strchr(to, '@')) { /* a group id without its server */
        snprintf(gjid, sizeof(gjid), "%.80s@g.us", to);
        to = gjid;
    }
    if (group && !json_is_boolean(group)) {
        reply_error(req, 400, "group must be a boolean");
    } else if (json_is_true(group) && (!to || !strstr(to, "@g.us"))) {
        reply_error(req, 400, "group: true needs a group id or group JID in to");
    } else if (!to || !*to || !text) {
        reply_error(req, 400, "to (number or JID) and text (string) are required");
    } else if (strlen(text) > 16384) {
        reply_error(req, 400, "text is longer than 16384 bytes");
    } else if ((status = wg_sandbox_phone_send(ctl->sb, p, to, text, id, &error)) == 200) {
        reply_json(req, 200, json_pack("{s:s}", "id", id));
    } else {
        reply_error(req, status, error ? error : "failed");
    }
    json_decref(b);
}

static void phone_call_post(wg_sandbox_control_t *ctl, struct evhttp_request *req,
                            wg_sandbox_phone_t *p)
{
    json_t *b = read_body(req);
    const char *to, *error = NULL;
    char id[40];
    int status;
    if (!b)
        return;
    string_from_json(b, "to", &to);
    if (!to || !*to)
        reply_error(req, 400, "to (number or JID) is required");
    else if ((status = wg_sandbox_phone_call(ctl->sb, p, to, id, &error)) == 200)
        reply_json(req, 200, json_pack("{s:s}", "callId", id));
    else
        reply_error(req, status, error ? error : "failed");
    json_decref(b);
}

static void inbox_get(wg_sandbox_control_t *ctl, struct evhttp_request *req,
                      const wg_sandbox_phone_t *p, const char *kind)
{
    json_t *a = wg_sandbox_state_inbox_json(wg_sandbox_state(ctl->sb), p->number, kind);
    if (!a)
        reply_error(req, 500, "could not read the state file");
    else
        reply_json(req, 200, a);
}

static void groups_create(wg_sandbox_control_t *ctl, struct evhttp_request *req)
{
    wg_sandbox_state_t *st = wg_sandbox_state(ctl->sb);
    json_t *b = read_body(req), *parts, *v;
    const char *subject, *creator;
    char list[4096], jid[64];
    uint8_t r[6];
    size_t i, len;
    if (!b)
        return;
    string_from_json(b, "subject", &subject);
    string_from_json(b, "creator", &creator);
    parts = json_object_get(b, "participants");
    if (!subject || !*subject || strlen(subject) > 100) {
        reply_error(req, 400, "subject must be a string of 1 to 100 bytes");
        goto out;
    }
    if (!creator || !wg_sandbox_state_phone_find(st, creator)) {
        reply_error(req, 400, "creator must be the number of a phone of this sandbox");
        goto out;
    }
    if (!json_is_array(parts) || json_array_size(parts) > 63) {
        reply_error(req, 400, "participants must be an array of at most 63 phone numbers");
        goto out;
    }
    len = (size_t)snprintf(list, sizeof(list), "%s", creator);
    json_array_foreach(parts, i, v)
    {
        const char *num = json_is_string(v) ? json_string_value(v) : NULL;
        char *at;
        char tmp[64];
        if (num && (at = strchr(num, '@'))) { /* a user JID is fine too */
            snprintf(tmp, sizeof(tmp), "%.*s", (int)(at - num), num);
            num = tmp;
        }
        if (!num || !wg_sandbox_state_phone_find(st, num)) {
            reply_error(req, 400,
                        "every participant must be the number of a phone of this "
                        "sandbox");
            goto out;
        }
        if (strcmp(num, creator) != 0 && !strstr(list, num))
            len += (size_t)snprintf(list + len, sizeof(list) - len, ",%s", num);
    }
    wg_random_bytes(r, sizeof(r));
    snprintf(
        jid, sizeof(jid), "120363%llu@g.us",
        (unsigned long long)(((uint64_t)r[0] << 40 | (uint64_t)r[1] << 32 | (uint64_t)r[2] << 24 |
                              (uint64_t)r[3] << 16 | (uint64_t)r[4] << 8 | r[5]) %
                                 900000000000ull +
                             100000000000ull));
    if (wg_sandbox_state_group_add(st, jid, subject, creator, list) != 0) {
        reply_error(req, 500, "could not save the group");
        goto out;
    }
    wg_log(WG_LOG_INFO, "sandbox", "group %s created by %s: %s", jid, creator, list);
    reply_json(req, 201, json_pack("{s:s,s:s}", "jid", jid, "subject", subject));
out:
    json_decref(b);
}

/* Splits the path into at most 5 segments (no decoding; the query string is dropped). */
static size_t split_path(char *path, char *seg[5])
{
    size_t n = 0;
    char *q = strchr(path, '?'), *save = NULL, *t;
    if (q)
        *q = 0;
    for (t = strtok_r(path, "/", &save); t; t = strtok_r(NULL, "/", &save)) {
        if (n == 5)
            return 6;
        seg[n++] = t;
    }
    return n;
}

static void route(struct evhttp_request *req, void *arg)
{
    wg_sandbox_control_t *ctl = arg;
    enum evhttp_cmd_type m = evhttp_request_get_command(req);
    const char *uri = evhttp_request_get_uri(req);
    char *path = strdup(uri ? uri : "/");
    char *seg[5] = {0};
    size_t n;
    wg_sandbox_phone_t *p = NULL;
    int get = m == EVHTTP_REQ_GET, post = m == EVHTTP_REQ_POST, del = m == EVHTTP_REQ_DELETE;
    if (!path) {
        reply_error(req, 500, "out of memory");
        return;
    }
    n = split_path(path, seg);
    wg_log(WG_LOG_DEBUG, "sandbox", "control: %d %s", (int)m, uri ? uri : "");
    if (n == 1 && !strcmp(seg[0], "health")) {
        if (get)
            reply_json(req, 200, json_pack("{s:s}", "status", "ok"));
        else
            reply_error(req, 405, "use GET");
    } else if (n == 1 && !strcmp(seg[0], "phones")) {
        if (post)
            phones_create(ctl, req);
        else if (get)
            phones_list(ctl, req);
        else
            reply_error(req, 405, "use POST to create a phone");
    } else if (n == 1 && !strcmp(seg[0], "groups")) {
        if (post)
            groups_create(ctl, req);
        else
            reply_error(req, 405, "use POST");
    } else if (n == 2 && !strcmp(seg[0], "control") &&
               (!strcmp(seg[1], "drop") || !strcmp(seg[1], "refuse") ||
                !strcmp(seg[1], "prekey-upload"))) {
        if (!post) {
            reply_error(req, 405, "use POST");
        } else if (!strcmp(seg[1], "drop")) {
            size_t k = wg_sandbox_connection_count(ctl->sb);
            wg_sandbox_drop_all(ctl->sb);
            reply_json(req, 200, json_pack("{s:I}", "dropped", (json_int_t)k));
        } else if (!strcmp(seg[1], "refuse")) {
            control_refuse(ctl, req);
        } else {
            control_prekey_upload(ctl, req);
        }
    } else if (n >= 3 && n <= 4 && !strcmp(seg[0], "phones")) {
        const char *what = seg[2];
        int known = !strcmp(what, "scan") || !strcmp(what, "link-code") ||
                    !strcmp(what, "devices") || !strcmp(what, "messages") ||
                    !strcmp(what, "calls") || !strcmp(what, "receipts");
        if (!known || (n == 4 && strcmp(what, "devices") != 0)) {
            reply_error(req, 404, "no such route");
        } else if (!wg_sandbox_number_valid(seg[1]) ||
                   !(p = wg_sandbox_state_phone_find(wg_sandbox_state(ctl->sb), seg[1]))) {
            reply_error(req, 404, "no such phone (create it with POST /phones)");
        } else if (!strcmp(what, "scan")) {
            if (post)
                phone_link(ctl, req, p, "qr", wg_sandbox_scan);
            else
                reply_error(req, 405, "use POST");
        } else if (!strcmp(what, "link-code")) {
            if (post)
                phone_link(ctl, req, p, "code", wg_sandbox_link_code);
            else
                reply_error(req, 405, "use POST");
        } else if (!strcmp(what, "devices") && n == 3) {
            if (get)
                devices_list(ctl, req, p);
            else
                reply_error(req, 405, "use GET");
        } else if (!strcmp(what, "devices")) {
            if (del)
                device_delete(ctl, req, p, seg[3]);
            else
                reply_error(req, 405, "use DELETE to log a device out");
        } else if (!strcmp(what, "messages")) {
            if (post)
                phone_message_post(ctl, req, p);
            else if (get)
                inbox_get(ctl, req, p, "message");
            else
                reply_error(req, 405, "use GET or POST");
        } else if (!strcmp(what, "receipts")) {
            if (get)
                inbox_get(ctl, req, p, "receipt");
            else
                reply_error(req, 405, "use GET");
        } else { /* calls */
            if (post)
                phone_call_post(ctl, req, p);
            else if (get)
                inbox_get(ctl, req, p, "call");
            else
                reply_error(req, 405, "use GET or POST");
        }
    } else {
        reply_error(req, 404, "no such route");
    }
    free(path);
}

int wg_sandbox_control_new(wg_sandbox_control_t **out, struct event_base *base, wg_sandbox_t *sb,
                           const char *listen)
{
    wg_sandbox_control_t *ctl = calloc(1, sizeof(*ctl));
    struct evhttp_bound_socket *bs;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    char host[128];
    const char *colon = strrchr(listen, ':');
    char *end;
    unsigned long port;
    int rv = WG_EINVAL;
    *out = NULL;
    if (!ctl)
        return WG_ENOMEM;
    if (!colon || (size_t)(colon - listen) >= sizeof(host))
        goto fail;
    port = strtoul(colon + 1, &end, 10);
    if (*end || port > 65535 || colon[1] == 0)
        goto fail;
    memcpy(host, listen, (size_t)(colon - listen));
    host[colon - listen] = 0;
    if (host[0] == '[') { /* [::1]:7071 */
        size_t hl = strlen(host);
        if (hl < 2 || host[hl - 1] != ']')
            goto fail;
        memmove(host, host + 1, hl - 2);
        host[hl - 2] = 0;
    }
    ctl->sb = sb;
    rv = WG_ENOMEM;
    if (!(ctl->http = evhttp_new(base)))
        goto fail;
    evhttp_set_max_body_size(ctl->http, MAX_BODY);
    evhttp_set_allowed_methods(ctl->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_DELETE |
                                              EVHTTP_REQ_PUT | EVHTTP_REQ_PATCH);
    evhttp_set_gencb(ctl->http, route, ctl);
    rv = WG_EIO;
    if (!(bs = evhttp_bind_socket_with_handle(ctl->http, host, (uint16_t)port))) {
        wg_log(WG_LOG_ERROR, "sandbox", "control: cannot listen on %s", listen);
        goto fail;
    }
    if (getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&ss, &sl) == 0)
        ctl->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                   : ((struct sockaddr_in *)&ss)->sin_port);
    *out = ctl;
    return 0;
fail:
    wg_sandbox_control_free(ctl);
    return rv;
}

uint16_t wg_sandbox_control_port(const wg_sandbox_control_t *c)
{
    return c->port;
}

void wg_sandbox_control_free(wg_sandbox_control_t *ctl)
{
    if (!ctl)
        return;
    while (ctl->waits) {
        ctl_wait_t *w = ctl->waits;
        struct evhttp_connection *con = evhttp_request_get_connection(w->req);
        if (con)
            evhttp_connection_set_closecb(con, NULL, NULL);
        wg_sandbox_cancel(ctl->sb, w->ticket);
        reply_error(w->req, 503, "the sandbox is shutting down");
        wait_unlink(w);
        free(w);
    }
    if (ctl->http)
        evhttp_free(ctl->http);
    free(ctl);
}
