/* server.c - the WhatsApp side of the sandbox: per WebSocket connection a Noise XX responder
 * (certificate chain signed by the sandbox root), binary nodes, and the server half of
 * registration (pair-device refs), QR and pairing-code linking (pair-success signed by the
 * phone's account key, pair-device-sign verified), the 515 restart, login of a linked device
 * (<success>, <failure reason="401">, replaced), prekey count/upload/digest/rotate, passive,
 * keepalive pings, logout (device_removed) and unknown iqs (error 501, never silence).
 *
 * Not here: Signal messaging, groups, calls (issue 5). Facts: docs wa-protocol-core.md §1-§8;
 * INTEROP.md (Baileys 6.7 needs a pause before the first post-handshake node: first_node_ms).
 *
 * One libevent loop, no threads. Per connection: a wsserver connection, a noise object, two
 * small timers and, only while unregistered, the refs (malloc'd `reg`). Frames encrypted before
 * the first-node pause are queued in `out` and flushed when it ends.
 *
 * Ownership: a connection struct is freed when its WebSocket closes (on_close), never inside
 * its own callbacks: `busy` marks a running handler and the free happens when it returns.
 * A pending control request (wg_sandbox_pending_t) belongs to its connection; it is finished
 * exactly once (callback) or cancelled (no callback) and then freed. */
#include "sandbox/sb_int.h"

#include "sandbox/wsserver.h"
#include "util/buf.h"
#include "util/codec.h"
#include "util/err.h"
#include "util/log.h"
#include "wa/binary.h"
#include "wa/node.h"
#include "wa/noise.h"
#include "wa/noise_server.h"
#include "wa/pair.h"
#include "wa/payload.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NREFS 6
#define REF_MAX 80
#define HANDSHAKE_TIMEOUT_MS 20000 /* [W] waits 20 s for the server's answer; we wait as long */
#define CLOSE_DELAY_MS 500         /* after a stream:error, give the client time to close first */

typedef enum { CS_HANDSHAKE = 0, CS_REG, CS_LOGIN, CS_CLOSING } conn_state_t;
static const char *const STATE_NAMES[] = {"handshake", "registration", "login", "closing"};

typedef struct {
    uint8_t identity_pub[WG_KEYS_KEY_LEN];
    uint32_t registration_id;
    char platform[64];
    char refs[NREFS][REF_MAX + 1];
    /* pairing code: the companion_hello of this connection */
    int has_hello;
    char hello_number[WG_SB_NUMBER_MAX + 1];
    uint8_t hello_wrapped[WG_PAIR_WRAPPED_EPH_LEN];
    char hello_ref[REF_MAX + 1];
} reg_t;

struct wg_sandbox_pending_s {
    wg_sandbox_conn_t *conn;
    wg_sandbox_done_cb done;
    void *arg;
    struct event *timer;
    wg_sandbox_phone_t *phone;
    int phase; /* 0: link code, waiting for companion_finish; 1: waiting for pair-device-sign */
    uint32_t device_id;
    char iq_id[32];
    uint8_t *details;
    size_t details_len;
    wg_keys_pair_t primary_eph;
    uint8_t companion_eph_pub[WG_KEYS_KEY_LEN];
};

struct wg_sandbox_conn_s {
    wg_sandbox_t *sb;
    wg_wsserver_conn_t *ws;
    wg_noise_t *noise;
    wg_sandbox_conn_t *prev, *next;
    conn_state_t state;
    int ready;                /* the first-node pause is over */
    int close_due;            /* close once ready (after CLOSE_DELAY_MS) */
    uint16_t close_code;      /* 0 = 1000 */
    int busy, dead;           /* handler running; WebSocket gone while busy */
    struct event *timer;      /* first-node pause, then the close delay */
    struct event *life_timer; /* registration lifetime, then idle timeout after login */
    wg_buf_t out;             /* frames held back during the pause */
    uint8_t noise_pub[WG_KEYS_KEY_LEN];
    reg_t *reg;
    wg_sandbox_pending_t *pending;
    wg_sandbox_device_t *dev;
    uint32_t seq;
};

struct wg_sandbox_s {
    struct event_base *base;
    wg_sandbox_state_t *st;
    wg_sandbox_opts_t opts;
    wg_keys_pair_t root;
    wg_keys_pair_t server_static;
    uint8_t *chain;
    size_t chain_len;
    wg_wsserver_t *ws;
    wg_sandbox_conn_t *conns;
    size_t nconns;
    uint64_t refuse_until_ms;
    uint32_t seq;
};

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void set_state(wg_sandbox_conn_t *c, conn_state_t st)
{
    if (c->state == st)
        return;
    wg_log(WG_LOG_DEBUG, "sandbox", "conn=%s state %s -> %s",
           c->ws ? wg_wsserver_conn_peer(c->ws) : "-", STATE_NAMES[c->state], STATE_NAMES[st]);
    c->state = st;
}

static void arm_ms(struct event *ev, unsigned ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(ev, &tv);
}

/* ---- sending -------------------------------------------------------------------------------- */

static void flush_out(wg_sandbox_conn_t *c)
{
    if (c->ws && c->out.len > 0)
        wg_wsserver_conn_send(c->ws, 0, c->out.data, c->out.len);
    wg_buf_reset(&c->out);
}

/* Encodes, encrypts and sends (or queues during the pause) one node; the node stays the
 * caller's. 0 or a negative error (the connection is then useless; callers close it). */
static int send_node(wg_sandbox_conn_t *c, const wg_node_t *n)
{
    wg_buf_t plain;
    int rv;
    if (!c->ws || !c->noise)
        return WG_ECLOSED;
    if (wg_log_min_level <= WG_LOG_DEBUG) {
        char *s = wg_node_to_string(n, 0);
        wg_log(WG_LOG_DEBUG, "sandbox", "conn=%s send %s", wg_wsserver_conn_peer(c->ws),
               s ? s : "?");
        free(s);
    }
    wg_buf_init(&plain, 0);
    if ((rv = wg_binary_encode(n, &plain)) == 0 &&
        (rv = wg_noise_encrypt_frame(c->noise, plain.data, plain.len, &c->out)) == 0 && c->ready)
        flush_out(c);
    wg_buf_dispose(&plain);
    return rv;
}

/* Sends n and frees it (n may be NULL after an allocation failure: WG_ENOMEM). */
static int send_free(wg_sandbox_conn_t *c, wg_node_t *n)
{
    int rv = n ? send_node(c, n) : WG_ENOMEM;
    wg_node_free(n);
    return rv;
}

static void next_id(wg_sandbox_t *sb, char *out, size_t cap)
{
    snprintf(out, cap, "sb.%u", ++sb->seq);
}

static wg_node_t *iq_new(const char *type, const char *id)
{
    wg_node_t *n = wg_node_new("iq");
    if (!n || wg_node_set_attr_jid(n, "from", "@s.whatsapp.net") != 0 ||
        wg_node_set_attr(n, "type", type) != 0 || wg_node_set_attr(n, "id", id) != 0) {
        wg_node_free(n);
        return NULL;
    }
    return n;
}

static int send_result(wg_sandbox_conn_t *c, const char *id)
{
    return send_free(c, iq_new("result", id));
}

static int send_iq_error(wg_sandbox_conn_t *c, const char *id, int code, const char *text)
{
    wg_node_t *n = iq_new("error", id ? id : "");
    wg_node_t *e = n ? wg_node_add_new(n, "error") : NULL;
    if (!e || wg_node_set_attrf(e, "code", "%d", code) != 0 ||
        wg_node_set_attr(e, "text", text) != 0) {
        wg_node_free(n);
        return WG_ENOMEM;
    }
    return send_free(c, n);
}

/* Closes after the client had a moment to read what was sent (it normally closes first). */
static void close_soon(wg_sandbox_conn_t *c)
{
    set_state(c, CS_CLOSING);
    c->close_due = 1;
    if (c->ready && c->timer) {
        evtimer_del(c->timer);
        arm_ms(c->timer, CLOSE_DELAY_MS);
    }
}

/* <stream:error code="..."> with an optional <conflict type="..."/>, then close. */
static void stream_error(wg_sandbox_conn_t *c, const char *code, const char *conflict)
{
    wg_node_t *n = wg_node_new("stream:error");
    if (n && code)
        wg_node_set_attr(n, "code", code);
    if (n && conflict) {
        wg_node_t *k = wg_node_add_new(n, "conflict");
        if (k)
            wg_node_set_attr(k, "type", conflict);
    }
    send_free(c, n);
    close_soon(c);
}

/* ---- pending control requests ---------------------------------------------------------------- */

static void pending_free(wg_sandbox_pending_t *p)
{
    if (!p)
        return;
    if (p->timer)
        event_free(p->timer);
    free(p->details);
    wg_keys_wipe(&p->primary_eph, sizeof(p->primary_eph));
    free(p);
}

/* Detaches p from its connection, calls back once, frees p. */
static void pending_finish(wg_sandbox_pending_t *p, int status, const char *jid, const char *err)
{
    if (p->conn && p->conn->pending == p)
        p->conn->pending = NULL;
    p->conn = NULL;
    if (p->done)
        p->done(p->arg, status, jid, err);
    pending_free(p);
}

static void pending_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    wg_sandbox_pending_t *p = arg;
    wg_sandbox_conn_t *c = p->conn;
    (void)fd;
    (void)what;
    pending_finish(p, 408, NULL,
                   p->phase == 0 ? "timed out waiting for the companion's companion_finish"
                                 : "timed out waiting for the companion's pair-device-sign");
    if (c)
        close_soon(c);
}

void wg_sandbox_cancel(wg_sandbox_t *sb, wg_sandbox_pending_t *p)
{
    (void)sb;
    if (!p)
        return;
    p->done = NULL;
    pending_finish(p, 0, NULL, NULL);
}

/* ---- connection lifetime --------------------------------------------------------------------- */

static void conn_free(wg_sandbox_conn_t *c)
{
    wg_sandbox_t *sb = c->sb;
    if (c->prev)
        c->prev->next = c->next;
    else
        sb->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    sb->nconns--;
    if (c->timer)
        event_free(c->timer);
    if (c->life_timer)
        event_free(c->life_timer);
    wg_noise_free(c->noise);
    wg_buf_dispose(&c->out);
    if (c->reg)
        wg_keys_wipe(c->reg, sizeof(*c->reg));
    free(c->reg);
    free(c);
}

/* The WebSocket is gone: detach everything that points at c, then free it (later if busy). */
static void conn_gone(wg_sandbox_conn_t *c)
{
    c->ws = NULL;
    if (c->dev && c->dev->conn == c)
        c->dev->conn = NULL;
    c->dev = NULL;
    if (c->pending)
        pending_finish(c->pending, 410, NULL,
                       "the companion disconnected before the link was confirmed");
    if (c->busy)
        c->dead = 1;
    else
        conn_free(c);
}

static void conn_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    wg_sandbox_conn_t *c = arg;
    (void)fd;
    (void)what;
    if (c->state == CS_HANDSHAKE) { /* no ClientFinish in time */
        wg_log(WG_LOG_INFO, "sandbox", "conn=%s handshake timeout, closing",
               c->ws ? wg_wsserver_conn_peer(c->ws) : "-");
        set_state(c, CS_CLOSING);
        if (c->ws)
            wg_wsserver_conn_close(c->ws, 1002, "handshake timeout");
        return;
    }
    if (!c->ready) {
        c->ready = 1;
        flush_out(c);
        if (c->close_due)
            arm_ms(c->timer, CLOSE_DELAY_MS);
        return;
    }
    if (c->close_due && c->ws)
        wg_wsserver_conn_close(c->ws, c->close_code ? c->close_code : 1000,
                               c->close_code == 1013 ? "try again later" : "");
}

static void life_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    wg_sandbox_conn_t *c = arg;
    (void)fd;
    (void)what;
    if (c->state == CS_LOGIN) {
        /* clients ping every 20-30 s (§7.5): silence this long means a dead peer */
        wg_log(WG_LOG_INFO, "sandbox", "conn=%s idle for %u s, closing",
               c->ws ? wg_wsserver_conn_peer(c->ws) : "-", c->sb->opts.idle_timeout_s);
        close_soon(c);
        return;
    }
    if (c->state != CS_REG || c->pending)
        return;
    wg_log(WG_LOG_INFO, "sandbox", "conn=%s registration refs expired, closing",
           c->ws ? wg_wsserver_conn_peer(c->ws) : "-");
    close_soon(c);
}

/* ---- registration --------------------------------------------------------------------------- */

static int make_ref(char out[REF_MAX + 1])
{
    uint8_t r[36];
    char *b;
    int rv = wg_random_bytes(r, sizeof(r));
    if (rv != 0)
        return rv;
    if (!(b = wg_base64_encode(r, sizeof(r))))
        return WG_ENOMEM;
    snprintf(out, REF_MAX + 1, "2@%s", b);
    free(b);
    return 0;
}

static int start_registration(wg_sandbox_conn_t *c, const wg_payload_info_t *info)
{
    wg_node_t *iq = NULL, *pd;
    char id[32];
    int rv;
    if (!(c->reg = calloc(1, sizeof(*c->reg))))
        return WG_ENOMEM;
    memcpy(c->reg->identity_pub, info->identity_pub, WG_KEYS_KEY_LEN);
    c->reg->registration_id = info->registration_id;
    snprintf(c->reg->platform, sizeof(c->reg->platform), "%s", info->props_os);
    set_state(c, CS_REG);
    next_id(c->sb, id, sizeof(id));
    if (!(iq = iq_new("set", id)) || wg_node_set_attr(iq, "xmlns", "md") != 0 ||
        !(pd = wg_node_add_new(iq, "pair-device"))) {
        rv = WG_ENOMEM;
        goto out;
    }
    for (int i = 0; i < NREFS; i++) {
        wg_node_t *r;
        if ((rv = make_ref(c->reg->refs[i])) != 0)
            goto out;
        /* bytes, not text: clients read the ref as a Buffer (INTEROP.md) */
        if (!(r = wg_node_add_new(pd, "ref")) ||
            wg_node_set_bytes(r, c->reg->refs[i], strlen(c->reg->refs[i])) != 0) {
            rv = WG_ENOMEM;
            goto out;
        }
    }
    rv = send_node(c, iq);
    if (rv == 0 && c->sb->opts.reg_lifetime_s) {
        if (!(c->life_timer = evtimer_new(c->sb->base, life_timer_cb, c)))
            rv = WG_ENOMEM;
        else
            arm_ms(c->life_timer, c->sb->opts.reg_lifetime_s * 1000u);
    }
    wg_log(WG_LOG_INFO, "sandbox", "conn=%s registration: pair-device with %d refs sent",
           wg_wsserver_conn_peer(c->ws), NREFS);
out:
    wg_node_free(iq);
    return rv;
}

/* Sends pair-success for a new device of phone p, signed with the adv secret, and waits for
 * the pair-device-sign (phase 1). p->conn is c. */
static int send_pair_success(wg_sandbox_conn_t *c, wg_sandbox_pending_t *pd,
                             const uint8_t adv_secret[WG_PAIR_ADV_SECRET_LEN])
{
    wg_sandbox_phone_t *p = pd->phone;
    wg_pair_device_t dev = {0};
    uint8_t *ident = NULL;
    size_t ident_len = 0;
    wg_node_t *iq = NULL, *ps, *k;
    char buf[96];
    int rv;
    if ((rv = wg_sandbox_state_phone_take_device(c->sb->st, p, &pd->device_id)) != 0)
        return rv;
    /* rawId identifies the account's key set; the key index grows with each linked device. */
    dev.raw_id = (uint32_t)strtoul(p->lid + strlen(p->lid) - 9, NULL, 10);
    dev.timestamp = (uint64_t)time(NULL);
    dev.key_index = pd->device_id;
    free(pd->details);
    pd->details = NULL;
    if ((rv = wg_pair_phone_make_identity(&ident, &ident_len, &pd->details, &pd->details_len,
                                          &p->account, c->reg->identity_pub, adv_secret, &dev)) !=
        0)
        return rv;
    next_id(c->sb, pd->iq_id, sizeof(pd->iq_id));
    rv = WG_ENOMEM;
    if (!(iq = iq_new("set", pd->iq_id)) ||
        wg_node_set_attrf(iq, "t", "%lld", (long long)time(NULL)) ||
        !(ps = wg_node_add_new(iq, "pair-success")) ||
        !(k = wg_node_add_new(ps, "device-identity")))
        goto out;
    if (wg_node_take_bytes(k, ident, ident_len) != 0) {
        ident = NULL;
        goto out;
    }
    ident = NULL;
    if (!(k = wg_node_add_new(ps, "platform")) || wg_node_set_attr(k, "name", "android") ||
        !(k = wg_node_add_new(ps, "device")))
        goto out;
    snprintf(buf, sizeof(buf), "%s:%u@s.whatsapp.net", p->number, pd->device_id);
    if (wg_node_set_attr_jid(k, "jid", buf) != 0)
        goto out;
    snprintf(buf, sizeof(buf), "%s:%u@lid", p->lid, pd->device_id);
    if (wg_node_set_attr_jid(k, "lid", buf) != 0)
        goto out;
    pd->phase = 1;
    rv = send_node(c, iq);
    wg_log(WG_LOG_INFO, "sandbox", "conn=%s pair-success sent for %s:%u",
           wg_wsserver_conn_peer(c->ws), p->number, pd->device_id);
out:
    free(ident);
    wg_node_free(iq);
    return rv;
}

static wg_sandbox_pending_t *pending_new(wg_sandbox_conn_t *c, wg_sandbox_phone_t *p,
                                         wg_sandbox_done_cb done, void *arg)
{
    wg_sandbox_pending_t *pd = calloc(1, sizeof(*pd));
    if (!pd)
        return NULL;
    if (!(pd->timer = evtimer_new(c->sb->base, pending_timeout_cb, pd))) {
        free(pd);
        return NULL;
    }
    pd->conn = c;
    pd->phone = p;
    pd->done = done;
    pd->arg = arg;
    c->pending = pd;
    arm_ms(pd->timer, c->sb->opts.pair_timeout_ms);
    return pd;
}

int wg_sandbox_scan(wg_sandbox_t *sb, wg_sandbox_phone_t *p, const char *qr,
                    wg_sandbox_done_cb done, void *arg, wg_sandbox_pending_t **ticket,
                    const char **error)
{
    wg_pair_qr_t q;
    wg_sandbox_conn_t *c;
    wg_sandbox_pending_t *pd;
    int status = 0;
    *ticket = NULL;
    if (wg_pair_qr_parse(&q, qr, strlen(qr)) != 0) {
        *error = "qr is not a WhatsApp pairing string (ref,noise,identity,adv[,platform] or the "
                 "https://wa.me/settings/linked_devices# form)";
        return 400;
    }
    for (c = sb->conns; c; c = c->next) {
        if (c->state != CS_REG || !c->reg)
            continue;
        for (int i = 0; i < NREFS; i++)
            if (strcmp(c->reg->refs[i], q.ref) == 0)
                goto found;
    }
    *error = "unknown or expired QR ref: no registration connection holds it";
    status = 404;
    goto out;
found:
    if (c->pending) {
        *error = "this companion is already being linked";
        status = 409;
    } else if (memcmp(q.noise_pub, c->noise_pub, WG_KEYS_KEY_LEN) != 0) {
        *error = "the QR's noise key is not the connection's Noise static key";
        status = 422;
    } else if (memcmp(q.identity_pub, c->reg->identity_pub, WG_KEYS_KEY_LEN) != 0) {
        *error = "the QR's identity key is not the one in the companion's ClientPayload";
        status = 422;
    }
    if (status)
        goto out;
    c->busy++;
    if (!(pd = pending_new(c, p, done, arg))) {
        *error = "out of memory";
        status = 500;
    } else if (send_pair_success(c, pd, q.adv_secret) != 0) {
        pd->done = NULL;
        pending_finish(pd, 0, NULL, NULL);
        *error = "could not send pair-success";
        status = 500;
    } else {
        *ticket = pd;
    }
    c->busy--;
    if (c->dead)
        conn_free(c);
out:
    wg_pair_qr_dispose(&q);
    return status;
}

int wg_sandbox_link_code(wg_sandbox_t *sb, wg_sandbox_phone_t *p, const char *code_in,
                         wg_sandbox_done_cb done, void *arg, wg_sandbox_pending_t **ticket,
                         const char **error)
{
    char code[WG_PAIR_CODE_LEN + 1];
    wg_sandbox_conn_t *c, *found = NULL;
    wg_sandbox_pending_t *pd = NULL;
    uint8_t wrapped[WG_PAIR_WRAPPED_EPH_LEN];
    wg_node_t *n = NULL, *r, *k;
    char id[32];
    int status = 0;
    *ticket = NULL;
    if (wg_pair_code_normalize(code, code_in) != 0) {
        *error = "code must be 8 characters of the pairing alphabet (XXXX-XXXX)";
        return 400;
    }
    for (c = sb->conns; c; c = c->next)
        if (c->state == CS_REG && c->reg && c->reg->has_hello && !c->pending &&
            strcmp(c->reg->hello_number, p->number) == 0)
            found = c; /* the newest request wins */
    if (!(c = found)) {
        *error = "no companion is waiting for a pairing code for this number";
        return 404;
    }
    c->busy++;
    if (!(pd = pending_new(c, p, done, arg))) {
        *error = "out of memory";
        status = 500;
        goto out;
    }
    /* The phone unwraps the companion's ephemeral with the code the user typed; a wrong code
     * gives a wrong key here and shows as a key-bundle failure at companion_finish. */
    if (wg_pair_code_unwrap_ephemeral(pd->companion_eph_pub, code, c->reg->hello_wrapped,
                                      sizeof(c->reg->hello_wrapped), 0) != 0 ||
        wg_keys_generate(&pd->primary_eph) != 0 ||
        wg_pair_code_wrap_ephemeral(wrapped, code, pd->primary_eph.pub, 0) != 0) {
        *error = "pairing-code cryptography failed";
        status = 500;
        goto out;
    }
    next_id(sb, id, sizeof(id));
    if (!(n = wg_node_new("notification")) ||
        wg_node_set_attr_jid(n, "from", "@s.whatsapp.net") != 0 ||
        wg_node_set_attr(n, "type", "link_code_companion_reg") != 0 ||
        wg_node_set_attr(n, "id", id) != 0 ||
        wg_node_set_attrf(n, "t", "%lld", (long long)time(NULL)) != 0 ||
        !(r = wg_node_add_new(n, "link_code_companion_reg")) ||
        !(k = wg_node_add_new(r, "link_code_pairing_ref")) ||
        wg_node_set_bytes(k, c->reg->hello_ref, strlen(c->reg->hello_ref)) != 0 ||
        !(k = wg_node_add_new(r, "primary_identity_pub")) ||
        wg_node_set_bytes(k, p->account.pub, WG_KEYS_KEY_LEN) != 0 ||
        !(k = wg_node_add_new(r, "link_code_pairing_wrapped_primary_ephemeral_pub")) ||
        wg_node_set_bytes(k, wrapped, sizeof(wrapped)) != 0 || send_node(c, n) != 0) {
        *error = "could not send the link_code_companion_reg notification";
        status = 500;
        goto out;
    }
    wg_log(WG_LOG_INFO, "sandbox", "conn=%s phone %s entered a pairing code",
           wg_wsserver_conn_peer(c->ws), p->number);
    *ticket = pd;
    pd = NULL;
out:
    wg_node_free(n);
    if (pd) {
        pd->done = NULL;
        pending_finish(pd, 0, NULL, NULL);
    }
    c->busy--;
    if (c->dead)
        conn_free(c);
    return status;
}

static const uint8_t *child_bytes(const wg_node_t *n, const char *tag, size_t *len)
{
    wg_node_t *k = n ? wg_node_child_by_tag(n, tag) : NULL;
    *len = 0;
    return k ? wg_node_bytes(k, len) : NULL;
}

static void handle_link_code_iq(wg_sandbox_conn_t *c, const char *id, const wg_node_t *reg)
{
    const char *stage = wg_node_attr(reg, "stage");
    const uint8_t *b;
    size_t len;
    if (stage && strcmp(stage, "companion_hello") == 0) {
        wg_jid_t jid;
        char number[WG_SB_NUMBER_MAX + 1];
        wg_node_t *iq, *r, *k;
        if (wg_node_attr_jid(reg, "jid", &jid) != 0 || jid.user_len == 0 ||
            jid.user_len > WG_SB_NUMBER_MAX) {
            send_iq_error(c, id, 400, "bad-request");
            return;
        }
        memcpy(number, jid.user, jid.user_len);
        number[jid.user_len] = 0;
        if (!wg_sandbox_number_valid(number) || !wg_sandbox_state_phone_find(c->sb->st, number)) {
            send_iq_error(c, id, 404, "not-found");
            return;
        }
        b = child_bytes(reg, "link_code_pairing_wrapped_companion_ephemeral_pub", &len);
        if (!b || len < WG_PAIR_WRAPPED_EPH_LEN) {
            send_iq_error(c, id, 400, "bad-request");
            return;
        }
        memcpy(c->reg->hello_wrapped, b, WG_PAIR_WRAPPED_EPH_LEN);
        b = child_bytes(reg, "companion_server_auth_key_pub", &len);
        if (!b || len != WG_KEYS_KEY_LEN || memcmp(b, c->noise_pub, WG_KEYS_KEY_LEN) != 0) {
            send_iq_error(c, id, 400, "bad-request");
            return;
        }
        if (make_ref(c->reg->hello_ref) != 0) {
            send_iq_error(c, id, 500, "internal-server-error");
            return;
        }
        snprintf(c->reg->hello_number, sizeof(c->reg->hello_number), "%s", number);
        c->reg->has_hello = 1;
        if (!(iq = iq_new("result", id)) || !(r = wg_node_add_new(iq, "link_code_companion_reg")) ||
            !(k = wg_node_add_new(r, "link_code_pairing_ref")) ||
            wg_node_set_bytes(k, c->reg->hello_ref, strlen(c->reg->hello_ref)) != 0) {
            wg_node_free(iq);
            return;
        }
        send_free(c, iq);
        wg_log(WG_LOG_INFO, "sandbox", "conn=%s pairing code requested for %s",
               wg_wsserver_conn_peer(c->ws), number);
        return;
    }
    if (stage && strcmp(stage, "companion_finish") == 0) {
        wg_sandbox_pending_t *pd = c->pending;
        uint8_t adv[WG_PAIR_ADV_SECRET_LEN];
        const uint8_t *bundle, *ident;
        size_t blen, ilen;
        if (!pd || pd->phase != 0) {
            send_iq_error(c, id, 404, "not-found");
            return;
        }
        b = child_bytes(reg, "link_code_pairing_ref", &len);
        bundle = child_bytes(reg, "link_code_pairing_wrapped_key_bundle", &blen);
        ident = child_bytes(reg, "companion_identity_public", &ilen);
        if (!b || len != strlen(c->reg->hello_ref) || memcmp(b, c->reg->hello_ref, len) != 0 ||
            !bundle || !ident || ilen != WG_KEYS_KEY_LEN) {
            send_iq_error(c, id, 400, "bad-request");
            pending_finish(pd, 400, NULL, "the companion's companion_finish was malformed");
            close_soon(c);
            return;
        }
        if (memcmp(ident, c->reg->identity_pub, WG_KEYS_KEY_LEN) != 0) {
            send_iq_error(c, id, 400, "bad-request");
            pending_finish(pd, 422, NULL,
                           "companion_identity_public is not the identity of the ClientPayload");
            close_soon(c);
            return;
        }
        if (wg_pair_phone_code_finish(adv, &pd->primary_eph, &pd->phone->account,
                                      pd->companion_eph_pub, ident, bundle, blen) != 0) {
            send_iq_error(c, id, 401, "not-authorized");
            pending_finish(pd, 400, NULL,
                           "wrong pairing code: the companion's key bundle does not decrypt");
            close_soon(c);
            return;
        }
        send_result(c, id);
        if (send_pair_success(c, pd, adv) != 0) {
            pending_finish(pd, 500, NULL, "could not send pair-success");
            close_soon(c);
        }
        wg_keys_wipe(adv, sizeof(adv));
        return;
    }
    send_iq_error(c, id, 400, "bad-request");
}

/* The companion's answer to pair-success. */
static void handle_pair_reply(wg_sandbox_conn_t *c, const wg_node_t *iq, const char *type)
{
    wg_sandbox_pending_t *pd = c->pending;
    wg_sandbox_phone_t *p = pd->phone;
    wg_node_t *sign = wg_node_child_by_tag(iq, "pair-device-sign");
    const uint8_t *b;
    size_t len;
    wg_sandbox_device_t d, *rec;
    char jid[64], msg[160];
    int rv;
    if (strcmp(type, "error") == 0) {
        wg_node_t *e = wg_node_child_by_tag(iq, "error");
        snprintf(msg, sizeof(msg), "the companion rejected pair-success: %s %s",
                 e && wg_node_attr(e, "code") ? wg_node_attr(e, "code") : "?",
                 e && wg_node_attr(e, "text") ? wg_node_attr(e, "text") : "");
        pending_finish(pd, 422, NULL, msg);
        close_soon(c);
        return;
    }
    b = child_bytes(sign, "device-identity", &len);
    if (!b || (rv = wg_pair_phone_verify_sign(p->account.pub, c->reg->identity_pub, b, len,
                                              pd->details, pd->details_len)) != 0) {
        wg_log(WG_LOG_WARN, "sandbox", "conn=%s pair-device-sign rejected: %s",
               wg_wsserver_conn_peer(c->ws), b ? wg_strerror(rv) : "missing device-identity");
        pending_finish(pd, 422, NULL, "verification of the companion's pair-device-sign failed");
        stream_error(c, "401", NULL);
        return;
    }
    memset(&d, 0, sizeof(d));
    snprintf(d.number, sizeof(d.number), "%s", p->number);
    d.id = pd->device_id;
    memcpy(d.noise_pub, c->noise_pub, WG_KEYS_KEY_LEN);
    memcpy(d.identity_pub, c->reg->identity_pub, WG_KEYS_KEY_LEN);
    d.registration_id = c->reg->registration_id;
    snprintf(d.platform, sizeof(d.platform), "%s", c->reg->platform);
    d.linked_at = (int64_t)time(NULL);
    if (wg_sandbox_state_device_add(c->sb->st, &d, &rec) != 0) {
        pending_finish(pd, 500, NULL, "could not save the linked device");
        close_soon(c);
        return;
    }
    wg_sandbox_device_jid(rec, jid, sizeof(jid));
    wg_log(WG_LOG_INFO, "sandbox", "linked %s (%s)", jid, d.platform);
    pending_finish(pd, 200, jid, NULL);
    /* §5.8: the server ends the stream; the companion logs in on a new connection. */
    stream_error(c, "515", NULL);
}

/* ---- login ------------------------------------------------------------------------------------
 */

static int start_login(wg_sandbox_conn_t *c, const wg_payload_info_t *info)
{
    char number[32], lid[64];
    wg_sandbox_device_t *d;
    wg_sandbox_phone_t *p;
    wg_node_t *n;
    snprintf(number, sizeof(number), "%llu", (unsigned long long)info->username);
    d = info->has_device ? wg_sandbox_state_device_find(c->sb->st, number, info->device) : NULL;
    p = wg_sandbox_state_phone_find(c->sb->st, number);
    if (!d || !p || memcmp(d->noise_pub, c->noise_pub, WG_KEYS_KEY_LEN) != 0) {
        wg_log(WG_LOG_INFO, "sandbox", "conn=%s login refused for %s:%u (%s)",
               wg_wsserver_conn_peer(c->ws), number, info->has_device ? info->device : 0,
               !d ? "not a linked device" : "noise key differs");
        n = wg_node_new("failure");
        if (n)
            wg_node_set_attr(n, "reason", "401");
        send_free(c, n);
        close_soon(c);
        return 0;
    }
    if (d->conn && d->conn != c) {
        wg_sandbox_conn_t *old = d->conn;
        wg_log(WG_LOG_INFO, "sandbox", "conn=%s replaces the connection of %s:%u",
               wg_wsserver_conn_peer(c->ws), number, d->id);
        old->dev = NULL;
        d->conn = NULL;
        stream_error(old, NULL, "replaced");
    }
    d->conn = c;
    c->dev = d;
    set_state(c, CS_LOGIN);
    if (c->sb->opts.idle_timeout_s) {
        if (!c->life_timer && !(c->life_timer = evtimer_new(c->sb->base, life_timer_cb, c)))
            return WG_ENOMEM;
        arm_ms(c->life_timer, c->sb->opts.idle_timeout_s * 1000u);
    }
    if (!(n = wg_node_new("success")))
        return WG_ENOMEM;
    wg_node_set_attrf(n, "t", "%lld", (long long)time(NULL));
    snprintf(lid, sizeof(lid), "%s:%u@lid", p->lid, d->id);
    wg_node_set_attr_jid(n, "lid", lid);
    wg_node_set_attr(n, "props", "1");
    if (send_free(c, n) != 0)
        return WG_EIO;
    /* §7.8: the offline queue is empty; clients wait for this marker. */
    n = wg_node_new("ib");
    if (n) {
        wg_node_t *o = wg_node_add_new(n, "offline");
        if (o)
            wg_node_set_attr(o, "count", "0");
    }
    wg_log(WG_LOG_INFO, "sandbox", "conn=%s logged in %s:%u", wg_wsserver_conn_peer(c->ws), number,
           d->id);
    return send_free(c, n);
}

/* <iq xmlns="encrypt" type="set"> with registration/type/identity/list/skey (§7.4). */
static void handle_prekey_upload(wg_sandbox_conn_t *c, const char *id, const wg_node_t *iq)
{
    wg_sandbox_upload_t u;
    int rv = wg_sandbox_upload_parse(iq, &u);
    if (rv != 0) {
        wg_log(WG_LOG_INFO, "sandbox", "%s:%u bad prekey upload: %s", c->dev->number, c->dev->id,
               wg_strerror(rv));
        if (rv == WG_ECRYPTO)
            send_iq_error(c, id, 406, "not-acceptable");
        else
            send_iq_error(c, id, rv == WG_ENOMEM ? 500 : 400,
                          rv == WG_ENOMEM ? "internal-server-error" : "bad-request");
        return;
    }
    if (memcmp(u.identity, c->dev->identity_pub, WG_KEYS_KEY_LEN) != 0)
        send_iq_error(c, id, 409, "conflict"); /* not the identity linked at pairing */
    else if (wg_sandbox_state_prekeys_put(c->sb->st, c->dev, u.registration_id, u.identity,
                                          u.skey_id, u.skey_pub, u.skey_sig, u.keys, u.nkeys) != 0)
        send_iq_error(c, id, 500, "internal-server-error");
    else {
        send_result(c, id);
        wg_log(WG_LOG_INFO, "sandbox", "%s:%u uploaded %zu prekeys", c->dev->number, c->dev->id,
               u.nkeys);
    }
    wg_sandbox_upload_dispose(&u);
}

static void handle_encrypt(wg_sandbox_conn_t *c, const char *id, const char *type,
                           const wg_node_t *iq)
{
    wg_node_t *first = wg_node_child(iq, 0);
    int count = 0;
    if (strcmp(type, "get") == 0 && first && wg_node_tag_is(first, "count")) {
        wg_node_t *r = iq_new("result", id), *k;
        if (wg_sandbox_state_prekey_count(c->sb->st, c->dev, &count) != 0 || !r ||
            !(k = wg_node_add_new(r, "count")) || wg_node_set_attrf(k, "value", "%d", count)) {
            wg_node_free(r);
            send_iq_error(c, id, 500, "internal-server-error");
            return;
        }
        send_free(c, r);
        return;
    }
    if (strcmp(type, "get") == 0 && first && wg_node_tag_is(first, "digest")) {
        wg_node_t *r;
        if (wg_sandbox_state_prekey_count(c->sb->st, c->dev, &count) != 0 || count == 0) {
            send_iq_error(c, id, 404, "item-not-found");
            return;
        }
        r = iq_new("result", id);
        if (r && !wg_node_add_new(r, "digest")) {
            wg_node_free(r);
            r = NULL;
        }
        send_free(c, r);
        return;
    }
    if (strcmp(type, "set") == 0 && wg_node_child_by_tag(iq, "registration")) {
        handle_prekey_upload(c, id, iq);
        return;
    }
    if (strcmp(type, "set") == 0 && first && wg_node_tag_is(first, "rotate")) {
        uint32_t sid;
        uint8_t pub[WG_KEYS_KEY_LEN], sig[WG_KEYS_SIG_LEN];
        int rv = wg_sandbox_skey_parse(wg_node_child_by_tag(first, "skey"), c->dev->identity_pub,
                                       &sid, pub, sig);
        if (rv != 0)
            send_iq_error(c, id, rv == WG_ECRYPTO ? 406 : 400,
                          rv == WG_ECRYPTO ? "not-acceptable" : "bad-request");
        else if (wg_sandbox_state_prekeys_put(c->sb->st, c->dev, c->dev->registration_id,
                                              c->dev->identity_pub, sid, pub, sig, NULL, 0) != 0)
            send_iq_error(c, id, 500, "internal-server-error");
        else
            send_result(c, id);
        return;
    }
    send_iq_error(c, id, 501, "feature-not-implemented");
}

static void handle_iq(wg_sandbox_conn_t *c, const wg_node_t *iq)
{
    const char *type = wg_node_attr(iq, "type"), *id = wg_node_attr(iq, "id");
    const char *xmlns = wg_node_attr(iq, "xmlns");
    wg_node_t *first = wg_node_child(iq, 0);
    if (!type || !id) {
        send_iq_error(c, id, 400, "bad-request");
        return;
    }
    if (strcmp(type, "result") == 0 || strcmp(type, "error") == 0) {
        if (c->pending && c->pending->phase == 1 && strcmp(id, c->pending->iq_id) == 0)
            handle_pair_reply(c, iq, type);
        return; /* answers to pair-device and notifications need nothing */
    }
    if (xmlns && strcmp(xmlns, "w:p") == 0) { /* keepalive (§7.5), any state */
        send_result(c, id);
        return;
    }
    if (c->state == CS_REG) {
        if (xmlns && strcmp(xmlns, "md") == 0 && first &&
            wg_node_tag_is(first, "link_code_companion_reg")) {
            handle_link_code_iq(c, id, first);
            return;
        }
        send_iq_error(c, id, 401, "not-authorized");
        return;
    }
    if (c->state != CS_LOGIN || !c->dev)
        return;
    if (xmlns && strcmp(xmlns, "encrypt") == 0) {
        handle_encrypt(c, id, type, iq);
        return;
    }
    if (xmlns && strcmp(xmlns, "passive") == 0 && first &&
        (wg_node_tag_is(first, "active") || wg_node_tag_is(first, "passive"))) {
        send_result(c, id);
        return;
    }
    if (xmlns && strcmp(xmlns, "md") == 0 && first &&
        wg_node_tag_is(first, "remove-companion-device")) {
        /* The companion logs itself out. */
        wg_sandbox_device_t *d = c->dev;
        char jid[64];
        wg_sandbox_device_jid(d, jid, sizeof(jid));
        send_result(c, id);
        c->dev = NULL;
        d->conn = NULL;
        wg_sandbox_state_device_remove(c->sb->st, d);
        wg_log(WG_LOG_INFO, "sandbox", "%s logged itself out", jid);
        close_soon(c);
        return;
    }
    wg_log(WG_LOG_DEBUG, "sandbox", "conn=%s unhandled iq xmlns=%s type=%s",
           wg_wsserver_conn_peer(c->ws), xmlns ? xmlns : "-", type);
    send_iq_error(c, id, 501, "feature-not-implemented");
}

/* ---- noise callbacks ---------------------------------------------------------------------------
 */

static int on_handshake(void *ud, wg_noise_t *n)
{
    wg_sandbox_conn_t *c = ud;
    wg_payload_info_t info;
    size_t plen;
    const uint8_t *payload = wg_noise_client_payload(n, &plen);
    const uint8_t *peer = wg_noise_peer_static(n);
    int rv;
    if (!payload || !peer)
        return WG_EPROTO;
    memcpy(c->noise_pub, peer, WG_KEYS_KEY_LEN);
    if ((rv = wg_payload_parse(payload, plen, &info)) != 0) {
        wg_log(WG_LOG_INFO, "sandbox", "conn=%s bad ClientPayload: %s",
               wg_wsserver_conn_peer(c->ws), wg_strerror(rv));
        return rv;
    }
    /* INTEROP.md: Baileys 6.7 drops a node that arrives right after the handshake. */
    evtimer_del(c->timer);
    if (c->sb->opts.first_node_ms)
        arm_ms(c->timer, c->sb->opts.first_node_ms);
    else
        c->ready = 1;
    if (info.registration)
        return start_registration(c, &info);
    return start_login(c, &info);
}

static int on_frame(void *ud, const uint8_t *p, size_t len)
{
    wg_sandbox_conn_t *c = ud;
    wg_node_t *node = NULL;
    int rv;
    if (c->state == CS_CLOSING)
        return 0;
    if (c->state == CS_LOGIN && c->life_timer) /* any frame proves the peer alive */
        arm_ms(c->life_timer, c->sb->opts.idle_timeout_s * 1000u);
    if ((rv = wg_binary_decode(p, len, NULL, &node)) != 0) {
        wg_log(WG_LOG_INFO, "sandbox", "conn=%s undecodable node (%zu bytes)",
               wg_wsserver_conn_peer(c->ws), len);
        return rv;
    }
    if (wg_log_min_level <= WG_LOG_DEBUG) {
        char *s = wg_node_to_string(node, 0);
        wg_log(WG_LOG_DEBUG, "sandbox", "conn=%s recv %s", wg_wsserver_conn_peer(c->ws),
               s ? s : "?");
        free(s);
    }
    if (wg_node_tag_is(node, "iq"))
        handle_iq(c, node);
    /* ack, receipt, presence, ib, notification answers: nothing to do before messaging */
    wg_node_free(node);
    return 0;
}

/* ---- WebSocket callbacks -----------------------------------------------------------------------
 */

static int ws_on_open(wg_wsserver_conn_t *ws, const wg_ws_handshake_head_t *req, void *user)
{
    wg_sandbox_t *sb = user;
    wg_sandbox_conn_t *c;
    wg_noise_callbacks_t cb;
    if (!req->target || strncmp(req->target, "/ws/chat", 8) != 0 ||
        (req->target[8] && req->target[8] != '?'))
        return 404;
    if (!(c = calloc(1, sizeof(*c))))
        return 503;
    c->sb = sb;
    c->ws = ws;
    wg_buf_init(&c->out, 0);
    cb.on_handshake = on_handshake;
    cb.on_frame = on_frame;
    cb.ud = c;
    if (!(c->timer = evtimer_new(sb->base, conn_timer_cb, c)) ||
        wg_noise_server_new(&c->noise, &sb->server_static, sb->chain, sb->chain_len, NULL, &cb) !=
            0) {
        if (c->timer)
            event_free(c->timer);
        wg_buf_dispose(&c->out);
        free(c);
        return 503;
    }
    if (sb->refuse_until_ms && now_ms() < sb->refuse_until_ms) {
        /* Refusing: accept the upgrade and close at once (1013 try again later). A refused
         * upgrade (HTTP 503) is cleaner, but Baileys listens for ws' 'unexpected-response'
         * and then never hears of the failure: it would hang instead of reconnecting. */
        wg_log(WG_LOG_INFO, "sandbox", "conn=%s refused (control/refuse)",
               wg_wsserver_conn_peer(ws));
        c->state = CS_CLOSING;
        c->ready = 1;
        c->close_due = 1;
        c->close_code = 1013;
        arm_ms(c->timer, 0);
    } else {
        arm_ms(c->timer, HANDSHAKE_TIMEOUT_MS);
    }
    c->next = sb->conns;
    if (sb->conns)
        sb->conns->prev = c;
    sb->conns = c;
    sb->nconns++;
    wg_wsserver_conn_set_data(ws, c);
    return 0;
}

static void ws_on_message(wg_wsserver_conn_t *ws, int is_text, const uint8_t *data, size_t len,
                          void *user)
{
    wg_sandbox_conn_t *c = wg_wsserver_conn_data(ws);
    wg_buf_t hs;
    int rv;
    (void)user;
    if (!c || is_text || c->state == CS_CLOSING)
        return;
    wg_buf_init(&hs, 0);
    c->busy++;
    rv = wg_noise_feed(c->noise, data, len, (uint64_t)time(NULL), &hs);
    if (hs.len && c->ws)
        wg_wsserver_conn_send(c->ws, 0, hs.data, hs.len);
    wg_buf_dispose(&hs);
    if (rv != 0 && c->ws && c->state != CS_CLOSING) {
        wg_log(WG_LOG_INFO, "sandbox", "conn=%s closed: %s (in %s)", wg_wsserver_conn_peer(ws),
               wg_strerror(rv), STATE_NAMES[c->state]);
        set_state(c, CS_CLOSING);
        wg_wsserver_conn_close(c->ws, 1002, "protocol error");
    }
    c->busy--;
    if (c->dead && c->busy == 0)
        conn_free(c);
}

static void ws_on_close(wg_wsserver_conn_t *ws, int code, const char *reason, void *user)
{
    wg_sandbox_conn_t *c = wg_wsserver_conn_data(ws);
    (void)user;
    if (!c)
        return;
    wg_log(WG_LOG_DEBUG, "sandbox", "conn=%s closed code=%d %s", wg_wsserver_conn_peer(ws), code,
           reason ? reason : "");
    wg_wsserver_conn_set_data(ws, NULL);
    conn_gone(c);
}

/* ---- the server
 * ---------------------------------------------------------------------------------- */

int wg_sandbox_new(wg_sandbox_t **out, struct event_base *base, wg_sandbox_state_t *st,
                   const wg_sandbox_opts_t *opts)
{
    wg_sandbox_t *sb = calloc(1, sizeof(*sb));
    wg_wsserver_opts_t wo = {0};
    wg_wsserver_cbs_t cbs = {ws_on_open, ws_on_message, ws_on_close};
    uint64_t now = (uint64_t)time(NULL);
    int rv;
    *out = NULL;
    if (!sb)
        return WG_ENOMEM;
    sb->base = base;
    sb->st = st;
    sb->opts = *opts;
    if ((rv = wg_sandbox_state_root_key(st, &sb->root)) != 0 ||
        (rv = wg_keys_generate(&sb->server_static)) != 0 ||
        (rv = wg_noise_cert_chain_make(sb->root.priv, sb->server_static.pub, now - 86400,
                                       now + 365 * 86400ull, &sb->chain, &sb->chain_len)) != 0)
        goto fail;
    wo.listen = opts->listen;
    wo.ssl_ctx = opts->ssl_ctx;
    if ((rv = wg_wsserver_new(&sb->ws, base, &wo, &cbs, sb)) != 0)
        goto fail;
    *out = sb;
    return 0;
fail:
    wg_sandbox_free(sb);
    return rv;
}

void wg_sandbox_free(wg_sandbox_t *sb)
{
    if (!sb)
        return;
    /* wsserver_free calls no on_close: release our side of every connection first. */
    while (sb->conns) {
        wg_sandbox_conn_t *c = sb->conns;
        c->busy = 0;
        conn_gone(c);
    }
    wg_wsserver_free(sb->ws);
    free(sb->chain);
    wg_keys_wipe(&sb->root, sizeof(sb->root));
    wg_keys_wipe(&sb->server_static, sizeof(sb->server_static));
    free(sb);
}

uint16_t wg_sandbox_port(const wg_sandbox_t *sb)
{
    return wg_wsserver_port(sb->ws);
}

const wg_keys_pair_t *wg_sandbox_root(const wg_sandbox_t *sb)
{
    return &sb->root;
}

wg_sandbox_state_t *wg_sandbox_state(wg_sandbox_t *sb)
{
    return sb->st;
}

int wg_sandbox_logout(wg_sandbox_t *sb, wg_sandbox_device_t *d)
{
    wg_sandbox_conn_t *c = d->conn;
    char jid[64];
    wg_sandbox_device_jid(d, jid, sizeof(jid));
    if (c) {
        c->dev = NULL;
        d->conn = NULL;
        stream_error(c, "401", "device_removed");
    }
    wg_log(WG_LOG_INFO, "sandbox", "%s logged out by the phone%s", jid,
           c ? " (was connected)" : "");
    return wg_sandbox_state_device_remove(sb->st, d);
}

void wg_sandbox_drop_all(wg_sandbox_t *sb)
{
    wg_log(WG_LOG_INFO, "sandbox", "dropping %zu connections", sb->nconns);
    wg_wsserver_drop_all(sb->ws);
}

void wg_sandbox_refuse(wg_sandbox_t *sb, unsigned seconds)
{
    sb->refuse_until_ms = seconds ? now_ms() + (uint64_t)seconds * 1000u : 0;
    wg_log(WG_LOG_INFO, "sandbox", "refusing new connections for %u s", seconds);
}

size_t wg_sandbox_connection_count(const wg_sandbox_t *sb)
{
    return sb->nconns;
}
