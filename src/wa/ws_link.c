/* ws_link.c - wslay event context wired to two evbuffers (see ws_link.h). No sockets: the
 * wslay recv/send callbacks copy from/to memory and answer WSLAY_ERR_WOULDBLOCK when the input
 * is empty or the output is above its high-water mark. */
#include "wa/ws_link.h"

#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <wslay/wslay.h>

#include "util/codec.h"
#include "util/err.h"

/* An outgoing fragmented message: wslay pulls it through frag_read_cb, FIFO order. */
typedef struct frag_s {
    struct frag_s *next;
    size_t len, off;
    uint8_t data[];
} frag_t;

struct wg_ws_link_s {
    wslay_event_context_ptr ctx;
    struct evbuffer *in, *out;
    size_t high_water;
    uint64_t max_msg;
    uint64_t cur_msg; /* bytes announced so far in the data message being received */
    int too_big;
    int is_client;
    frag_t *frags, **frags_tail;
    wg_ws_link_cbs_t cbs;
    void *owner;
    uint16_t peer_code;
    char peer_reason[124];
};

static ssize_t recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags, void *user)
{
    wg_ws_link_t *l = user;
    int n;
    (void)flags;
    if (len > (size_t)1 << 30)
        len = (size_t)1 << 30;
    n = evbuffer_remove(l->in, buf, len);
    if (n <= 0) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    return n;
}

static ssize_t send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
                       void *user)
{
    wg_ws_link_t *l = user;
    (void)flags;
    if (l->high_water && evbuffer_get_length(l->out) >= l->high_water) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    if (evbuffer_add(l->out, data, len) != 0) {
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }
    return (ssize_t)len;
}

static int genmask_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, void *user)
{
    (void)user;
    if (wg_random_bytes(buf, len) != 0) {
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }
    return 0;
}

static void frame_start_cb(wslay_event_context_ptr ctx,
                           const struct wslay_event_on_frame_recv_start_arg *arg, void *user)
{
    wg_ws_link_t *l = user;
    (void)ctx;
    /* Track the announced size of the data message to tell "too big" from other failures;
     * wslay enforces the same limit on the bytes themselves. */
    if (arg->opcode == WSLAY_TEXT_FRAME || arg->opcode == WSLAY_BINARY_FRAME)
        l->cur_msg = 0;
    if (arg->opcode == WSLAY_TEXT_FRAME || arg->opcode == WSLAY_BINARY_FRAME ||
        arg->opcode == WSLAY_CONTINUATION_FRAME) {
        if (arg->payload_length > l->max_msg || l->cur_msg > l->max_msg - arg->payload_length)
            l->too_big = 1;
        else
            l->cur_msg += arg->payload_length;
    }
}

static void msg_cb(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg,
                   void *user)
{
    wg_ws_link_t *l = user;
    (void)ctx;
    switch (arg->opcode) {
    case WSLAY_TEXT_FRAME:
    case WSLAY_BINARY_FRAME:
        l->cur_msg = 0;
        if (l->cbs.on_message)
            l->cbs.on_message(l->owner, arg->opcode == WSLAY_TEXT_FRAME, arg->msg, arg->msg_length);
        break;
    case WSLAY_PONG:
        if (l->cbs.on_pong)
            l->cbs.on_pong(l->owner, arg->msg, arg->msg_length);
        break;
    case WSLAY_CONNECTION_CLOSE: {
        size_t rl = arg->msg_length > 2 ? arg->msg_length - 2 : 0;
        if (rl > sizeof(l->peer_reason) - 1)
            rl = sizeof(l->peer_reason) - 1;
        l->peer_code = arg->status_code ? arg->status_code : WG_WS_CLOSE_NO_STATUS;
        if (rl)
            memcpy(l->peer_reason, arg->msg + 2, rl);
        l->peer_reason[rl] = 0;
        /* keep the reason printable for logs */
        for (size_t i = 0; i < rl; i++)
            if ((uint8_t)l->peer_reason[i] < 0x20)
                l->peer_reason[i] = '?';
        break;
    }
    default: /* ping: wslay queues the pong itself */
        break;
    }
}

static ssize_t frag_read_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len,
                            const union wslay_event_msg_source *source, int *eof, void *user)
{
    wg_ws_link_t *l = user;
    frag_t *f = source->data;
    size_t n = f->len - f->off;
    (void)ctx;
    if (n > len)
        n = len;
    memcpy(buf, f->data + f->off, n);
    f->off += n;
    if (f->off == f->len) {
        *eof = 1;
        /* wslay reads fragmented messages in the order they were queued: f is the head. */
        if (l->frags == f) {
            l->frags = f->next;
            if (!l->frags)
                l->frags_tail = &l->frags;
            free(f);
        }
    }
    return (ssize_t)n;
}

int wg_ws_link_new(wg_ws_link_t **out, int is_client, struct evbuffer *in, struct evbuffer *outbuf,
                   uint64_t max_msg, size_t out_high_water, const wg_ws_link_cbs_t *cbs,
                   void *owner)
{
    struct wslay_event_callbacks wcb = {
        .recv_callback = recv_cb,
        .send_callback = send_cb,
        .genmask_callback = is_client ? genmask_cb : NULL,
        .on_frame_recv_start_callback = frame_start_cb,
        .on_msg_recv_callback = msg_cb,
    };
    wg_ws_link_t *l;
    int r;

    *out = NULL;
    if ((l = calloc(1, sizeof(*l))) == NULL)
        return WG_ENOMEM;
    l->in = in;
    l->out = outbuf;
    l->high_water = out_high_water;
    l->max_msg = max_msg ? max_msg : ((uint64_t)1 << 31) - 1;
    l->is_client = is_client;
    l->frags_tail = &l->frags;
    l->cbs = *cbs;
    l->owner = owner;
    r = is_client ? wslay_event_context_client_init(&l->ctx, &wcb, l)
                  : wslay_event_context_server_init(&l->ctx, &wcb, l);
    if (r != 0) {
        free(l);
        return WG_ENOMEM;
    }
    wslay_event_config_set_max_recv_msg_length(l->ctx, l->max_msg);
    *out = l;
    return 0;
}

void wg_ws_link_free(wg_ws_link_t *l)
{
    if (!l)
        return;
    wslay_event_context_free(l->ctx);
    while (l->frags) {
        frag_t *f = l->frags;
        l->frags = f->next;
        free(f);
    }
    free(l);
}

int wg_ws_link_flush(wg_ws_link_t *l)
{
    int r = wslay_event_send(l->ctx);
    return r == 0 ? 0 : (r == WSLAY_ERR_NOMEM ? WG_ENOMEM : WG_EIO);
}

int wg_ws_link_recv(wg_ws_link_t *l)
{
    int r = wslay_event_recv(l->ctx), rv = 0;

    if (r == WSLAY_ERR_NOMEM)
        rv = WG_ENOMEM;
    else if (r != 0)
        rv = WG_EPROTO;
    else if (!wslay_event_get_read_enabled(l->ctx) && !wslay_event_get_close_received(l->ctx))
        rv = WG_EPROTO; /* wslay stopped reading and queued close 1002 or 1009 */
    if (rv != 0)
        /* our reads are over whatever happens: drop unread input */
        evbuffer_drain(l->in, evbuffer_get_length(l->in));
    r = wg_ws_link_flush(l);
    /* wslay checks the size before any frame callback, so the close code it sent tells us;
     * frame_start_cb covers the case where the close could not be flushed yet. */
    if (rv == WG_EPROTO &&
        (l->too_big || wslay_event_get_status_code_sent(l->ctx) == WSLAY_CODE_MESSAGE_TOO_BIG))
        rv = WG_ETOOBIG;
    return rv ? rv : r;
}

int wg_ws_link_send(wg_ws_link_t *l, int is_text, const uint8_t *data, size_t len)
{
    uint8_t op = is_text ? WSLAY_TEXT_FRAME : WSLAY_BINARY_FRAME;
    int r;

    if (wslay_event_get_close_sent(l->ctx) || !wslay_event_get_write_enabled(l->ctx))
        return WG_ECLOSED;
    if (len <= WG_WS_LINK_FRAG) {
        struct wslay_event_msg m = {op, data, len};
        r = wslay_event_queue_msg(l->ctx, &m);
    } else {
        struct wslay_event_fragmented_msg m;
        frag_t *f = malloc(sizeof(*f) + len);
        if (!f)
            return WG_ENOMEM;
        f->next = NULL;
        f->len = len;
        f->off = 0;
        memcpy(f->data, data, len);
        memset(&m, 0, sizeof(m));
        m.opcode = op;
        m.source.data = f;
        m.read_callback = frag_read_cb;
        if ((r = wslay_event_queue_fragmented_msg(l->ctx, &m)) != 0)
            free(f);
        else {
            *l->frags_tail = f;
            l->frags_tail = &f->next;
        }
    }
    if (r == WSLAY_ERR_NOMEM)
        return WG_ENOMEM;
    if (r != 0)
        return WG_ECLOSED;
    return wg_ws_link_flush(l);
}

int wg_ws_link_ping(wg_ws_link_t *l, const uint8_t *data, size_t len)
{
    struct wslay_event_msg m = {WSLAY_PING, data, len};
    int r;
    if (len > 125)
        return WG_EINVAL;
    if ((r = wslay_event_queue_msg(l->ctx, &m)) != 0)
        return r == WSLAY_ERR_NOMEM ? WG_ENOMEM : WG_ECLOSED;
    return wg_ws_link_flush(l);
}

int wg_ws_link_close(wg_ws_link_t *l, uint16_t code, const char *reason)
{
    size_t rl = reason ? strlen(reason) : 0;
    int r;
    if (rl > 123)
        rl = 123;
    if (code == 0)
        rl = 0;
    r = wslay_event_queue_close(l->ctx, code, (const uint8_t *)reason, rl);
    if (r != 0)
        return r == WSLAY_ERR_NOMEM ? WG_ENOMEM : WG_ECLOSED;
    return wg_ws_link_flush(l);
}

int wg_ws_link_close_sent(const wg_ws_link_t *l)
{
    return wslay_event_get_close_sent(l->ctx);
}

int wg_ws_link_close_received(const wg_ws_link_t *l)
{
    return wslay_event_get_close_received(l->ctx);
}

int wg_ws_link_want_write(const wg_ws_link_t *l)
{
    return wslay_event_want_write(l->ctx);
}

uint16_t wg_ws_link_peer_close(const wg_ws_link_t *l, const char **reason)
{
    if (reason)
        *reason = l->peer_reason;
    return l->peer_code ? l->peer_code : WG_WS_CLOSE_NO_STATUS;
}
