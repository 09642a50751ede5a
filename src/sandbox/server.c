/* server.c - the WhatsApp side of the sandbox: per WebSocket connection a Noise XX responder
 * (certificate chain signed by the sandbox root), binary nodes, and the server half of
 * registration (pair-device refs), QR and pairing-code linking (pair-success signed by the
 * phone's account key, pair-device-sign verified), the 515 restart, login of a linked device
 * (<success>, <failure reason="401">, replaced), prekey count/upload/digest/rotate, passive,
 * keepalive pings, logout (device_removed) and unknown iqs (error 501, never silence).
 *
 * Messaging (issue 5, wa-protocol-messaging.md §2-§5): usync device lists, prekey bundles,
 * routing of <message>/<receipt>/<call>/<chatstate> between devices (copying <enc> nodes, never
 * decrypting them), the persisted offline queue, group metadata, and the simulated phones
 * (device 0 of each account: a Signal identity that sends 1:1/group/DSM texts and decrypts what
 * is sent to it). Facts: docs wa-protocol-core.md §1-§8;
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
#include "wa/jid.h"
#include "wa/msg.h"
#include "wa/node.h"
#include "wa/noise.h"
#include "wa/noise_server.h"
#include "wa/pair.h"
#include "wa/payload.h"
#include "wa/stanza.h"

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
    /* a prekey upload answer held back by control/prekey-upload {delayMs} */
    struct event *upload_timer;
    char upload_id[64];
    int upload_code; /* 0: result; else the <error code> */
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
    unsigned upload_delay_ms; /* control/prekey-upload: answer uploads this much later */
    unsigned upload_fail;     /* ... and refuse this many of the next ones (error 500) */
    uint32_t seq;
};

static int offline_send_cb(void *arg, const uint8_t *p, size_t len);
static void handle_usync(wg_sandbox_conn_t *c, const char *id, const wg_node_t *iq);
static void handle_prekey_fetch(wg_sandbox_conn_t *c, const char *id, const wg_node_t *key);
static void handle_group_iq(wg_sandbox_conn_t *c, const char *id, const wg_node_t *iq);

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
    if (c->upload_timer)
        event_free(c->upload_timer);
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
    /* §7.8: what was queued while the device was away, then the marker clients wait for. */
    {
        size_t queued = 0;
        wg_sandbox_state_offline_take(c->sb->st, d->number, d->id, offline_send_cb, c, &queued);
        n = wg_node_new("ib");
        if (n) {
            wg_node_t *o = wg_node_add_new(n, "offline");
            if (o)
                wg_node_set_attrf(o, "count", "%zu", queued);
        }
    }
    wg_log(WG_LOG_INFO, "sandbox", "conn=%s logged in %s:%u", wg_wsserver_conn_peer(c->ws), number,
           d->id);
    return send_free(c, n);
}

/* Sends the upload answer held back, if any. */
static void upload_answer_held(wg_sandbox_conn_t *c)
{
    if (!c->upload_id[0])
        return;
    if (c->dev) /* logged before the answer leaves, so a test that sees its effect sees this */
        wg_log(WG_LOG_INFO, "sandbox", "%s:%u prekey upload answered late", c->dev->number,
               c->dev->id);
    if (c->upload_code)
        send_iq_error(c, c->upload_id, c->upload_code, "internal-server-error");
    else
        send_result(c, c->upload_id);
    c->upload_id[0] = 0;
}

static void upload_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    upload_answer_held(arg);
}

/* Answers an upload (code 0: result, else an error with that code, always internal-server-error
 * here), at once or upload_delay_ms later. One answer is held per connection: a second upload
 * while one is held gets the first answer out first, so answers keep their order. */
static void upload_answer(wg_sandbox_conn_t *c, const char *id, int code)
{
    unsigned delay = c->sb->upload_delay_ms;
    if (delay && !c->upload_timer &&
        !(c->upload_timer = evtimer_new(c->sb->base, upload_timer_cb, c)))
        delay = 0; /* out of memory: answer now rather than never */
    if (!delay || strlen(id) >= sizeof(c->upload_id)) {
        if (code)
            send_iq_error(c, id, code, "internal-server-error");
        else
            send_result(c, id);
        return;
    }
    upload_answer_held(c);
    snprintf(c->upload_id, sizeof(c->upload_id), "%s", id);
    c->upload_code = code;
    arm_ms(c->upload_timer, delay);
    wg_log(WG_LOG_INFO, "sandbox", "%s:%u prekey upload answer held for %u ms", c->dev->number,
           c->dev->id, delay);
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
    if (memcmp(u.identity, c->dev->identity_pub, WG_KEYS_KEY_LEN) != 0) {
        send_iq_error(c, id, 409, "conflict"); /* not the identity linked at pairing */
    } else if (c->sb->upload_fail > 0) {
        c->sb->upload_fail--; /* control/prekey-upload {fail}: refused, nothing stored */
        wg_log(WG_LOG_INFO, "sandbox", "%s:%u prekey upload refused (control/prekey-upload)",
               c->dev->number, c->dev->id);
        upload_answer(c, id, 500);
    } else if (wg_sandbox_state_prekeys_put(c->sb->st, c->dev, u.registration_id, u.identity,
                                            u.skey_id, u.skey_pub, u.skey_sig, u.keys,
                                            u.nkeys) != 0) {
        send_iq_error(c, id, 500, "internal-server-error");
    } else {
        /* stored now; only the answer may be held back (control/prekey-upload {delayMs}) */
        wg_log(WG_LOG_INFO, "sandbox", "%s:%u uploaded %zu prekeys", c->dev->number, c->dev->id,
               u.nkeys);
        upload_answer(c, id, 0);
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

/* 1 when jid (the remove-companion-device target) names device d itself, by its phone number
 * or its account's LID: a companion can only remove itself. */
static int names_device(wg_sandbox_t *sb, const wg_sandbox_device_t *d, const char *jid)
{
    wg_jid_t j;
    const wg_sandbox_phone_t *p = wg_sandbox_state_phone_find(sb->st, d->number);
    if (!jid || wg_jid_parse(jid, strlen(jid), &j) != 0 || j.type != WG_JID_AD || j.device != d->id)
        return 0;
    if (wg_jid_server_is(&j, "s.whatsapp.net"))
        return j.user_len == strlen(d->number) && !memcmp(j.user, d->number, j.user_len);
    return p && wg_jid_server_is(&j, "lid") && j.user_len == strlen(p->lid) &&
           !memcmp(j.user, p->lid, j.user_len);
}

/* The companion logs itself out (core §7.7; [B] logout, [W] Client.Logout): the phone stops
 * listing it, the iq is answered, then the stream ends as for a removal from the phone
 * (<stream:error code="401"><conflict type="device_removed"/>), which both libraries treat as
 * logged out. Another device's JID (or none) is refused: 400, nothing removed. */
static void handle_remove_self(wg_sandbox_conn_t *c, const char *id, const wg_node_t *rcd)
{
    wg_sandbox_device_t *d = c->dev;
    const char *target = wg_node_attr(rcd, "jid"), *why = wg_node_attr(rcd, "reason");
    char jid[64];
    wg_sandbox_device_jid(d, jid, sizeof(jid));
    if (!names_device(c->sb, d, target)) {
        wg_log(WG_LOG_INFO, "sandbox", "%s remove-companion-device for jid=%s refused", jid,
               target ? target : "-");
        send_iq_error(c, id, 400, "bad-request");
        return;
    }
    send_result(c, id);
    c->dev = NULL;
    d->conn = NULL;
    wg_sandbox_state_device_remove(c->sb->st, d);
    wg_log(WG_LOG_INFO, "sandbox", "%s logged itself out reason=%s", jid, why ? why : "-");
    stream_error(c, "401", "device_removed");
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
        if (strcmp(type, "get") == 0 && first && wg_node_tag_is(first, "key"))
            handle_prekey_fetch(c, id, first);
        else
            handle_encrypt(c, id, type, iq);
        return;
    }
    if (xmlns && strcmp(xmlns, "usync") == 0 && strcmp(type, "get") == 0) {
        handle_usync(c, id, iq);
        return;
    }
    if (xmlns && strcmp(xmlns, "w:g2") == 0 && strcmp(type, "get") == 0) {
        handle_group_iq(c, id, iq);
        return;
    }
    if (xmlns && strcmp(xmlns, "passive") == 0 && first &&
        (wg_node_tag_is(first, "active") || wg_node_tag_is(first, "passive"))) {
        send_result(c, id);
        return;
    }
    if (xmlns && strcmp(xmlns, "md") == 0 && strcmp(type, "set") == 0 && first &&
        wg_node_tag_is(first, "remove-companion-device")) {
        handle_remove_self(c, id, first);
        return;
    }
    wg_log(WG_LOG_DEBUG, "sandbox", "conn=%s unhandled iq xmlns=%s type=%s",
           wg_wsserver_conn_peer(c->ws), xmlns ? xmlns : "-", type);
    send_iq_error(c, id, 501, "feature-not-implemented");
}

/* ---- messaging (issue 5): routing between devices, usync, prekey bundles, phones ------------ */

/* A user or device JID resolved to a sandbox number (a phone's PN or LID user) and device. */
typedef struct {
    char number[WG_SB_NUMBER_MAX + 1];
    uint32_t device;
    int group; /* an @g.us JID (number unused) */
} sb_addr_t;

/* 0 when jid names a user known here (a phone's number or LID; companions belong to phones) or
 * a group; WG_ENOTFOUND for a valid JID of nobody; WG_EINVAL for garbage. */
static int resolve_jid(wg_sandbox_t *sb, const char *jid, sb_addr_t *a)
{
    wg_jid_t j;
    char user[64];
    wg_sandbox_phone_t *p = NULL;
    memset(a, 0, sizeof(*a));
    if (!jid || wg_jid_parse(jid, strlen(jid), &j) != 0 || j.user_len >= sizeof(user))
        return WG_EINVAL;
    memcpy(user, j.user, j.user_len);
    user[j.user_len] = 0;
    if (wg_jid_server_is(&j, "g.us")) {
        a->group = 1;
        return 0;
    }
    a->device = j.type == WG_JID_AD ? j.device : 0;
    if (wg_jid_server_is(&j, "s.whatsapp.net") || wg_jid_server_is(&j, "c.us")) {
        p = wg_sandbox_number_valid(user) ? wg_sandbox_state_phone_find(sb->st, user) : NULL;
    } else if (wg_jid_server_is(&j, "lid")) {
        for (size_t i = 0; i < wg_sandbox_state_phone_count(sb->st) && !p; i++) {
            wg_sandbox_phone_t *q = wg_sandbox_state_phone_at(sb->st, i);
            if (strcmp(q->lid, user) == 0)
                p = q;
        }
    } else {
        return WG_EINVAL;
    }
    if (!p)
        return WG_ENOTFOUND;
    snprintf(a->number, sizeof(a->number), "%s", p->number);
    return 0;
}

static void dev_jid(const char *number, uint32_t device, char *out, size_t cap)
{
    if (device)
        snprintf(out, cap, "%.20s:%u@s.whatsapp.net", number, device);
    else
        snprintf(out, cap, "%.20s@s.whatsapp.net", number);
}

/* The devices of a number: 0 (the phone) then its linked companions. At most max. */
static size_t user_devices(wg_sandbox_t *sb, const char *number, uint32_t *ids, size_t max)
{
    size_t n = 0;
    if (!wg_sandbox_state_phone_find(sb->st, number))
        return 0;
    ids[n++] = 0;
    for (size_t i = 0; i < wg_sandbox_state_device_count(sb->st) && n < max; i++) {
        wg_sandbox_device_t *d = wg_sandbox_state_device_at(sb->st, i);
        if (strcmp(d->number, number) == 0)
            ids[n++] = d->id;
    }
    return n;
}

static void phone_receive(wg_sandbox_t *sb, wg_sandbox_phone_t *p, const wg_node_t *n);

/* Hands n (kept by the caller) to device `device` of number: the phone itself (device 0)
 * reads it; a connected companion gets it now; an offline one at its next login. */
static int deliver(wg_sandbox_t *sb, const char *number, uint32_t device, const wg_node_t *n)
{
    wg_sandbox_device_t *d;
    wg_buf_t b;
    int rv;
    if (device == 0) {
        wg_sandbox_phone_t *p = wg_sandbox_state_phone_find(sb->st, number);
        if (!p)
            return WG_ENOTFOUND;
        phone_receive(sb, p, n);
        return 0;
    }
    if (!(d = wg_sandbox_state_device_find(sb->st, number, device)))
        return WG_ENOTFOUND;
    if (d->conn && d->conn->state == CS_LOGIN && d->conn->ws)
        return send_node(d->conn, n);
    wg_buf_init(&b, 0);
    if ((rv = wg_binary_encode(n, &b)) == 0)
        rv = wg_sandbox_state_offline_put(sb->st, number, device, b.data, b.len);
    wg_buf_dispose(&b);
    wg_log(WG_LOG_DEBUG, "sandbox", "queued a <%s> for offline %s:%u", wg_node_tag(n), number,
           device);
    return rv;
}

static int offline_send_cb(void *arg, const uint8_t *p, size_t len)
{
    wg_sandbox_conn_t *c = arg;
    wg_node_t *n = NULL;
    if (wg_binary_decode(p, len, NULL, &n) != 0)
        return 0; /* cannot happen: we encoded it */
    wg_node_set_attr(n, "offline", "1");
    send_free(c, n);
    return 0;
}

/* §3.2: <usync><list><user jid><devices><device-list>…</device-list><key-index-list/></devices>
 * <lid val/></user>…; nobody on WhatsApp: <devices><error code="404" text="item-not-found"/>. */
static void handle_usync(wg_sandbox_conn_t *c, const char *id, const wg_node_t *iq)
{
    const wg_node_t *us = wg_node_child_by_tag(iq, "usync");
    const wg_node_t *list = us ? wg_node_child_by_tag(us, "list") : NULL;
    const wg_node_t *query = us ? wg_node_child_by_tag(us, "query") : NULL;
    int want_lid = query && wg_node_child_by_tag(query, "lid");
    wg_node_t *r = iq_new("result", id), *ru, *rl;
    if (!list || !r) {
        wg_node_free(r);
        send_iq_error(c, id, 400, "bad-request");
        return;
    }
    if (!(ru = wg_node_add_new(r, "usync")) || !(rl = wg_node_add_new(ru, "list")))
        goto nomem;
    if (wg_node_attr(us, "sid"))
        wg_node_set_attr(ru, "sid", wg_node_attr(us, "sid"));
    wg_node_set_attr(ru, "mode", "query");
    wg_node_set_attr(ru, "context",
                     wg_node_attr(us, "context") ? wg_node_attr(us, "context") : "message");
    for (size_t i = 0; i < wg_node_child_count(list); i++) {
        const wg_node_t *u = wg_node_child(list, i);
        const char *jid = wg_node_attr(u, "jid");
        sb_addr_t a;
        wg_node_t *ou, *devs, *dl, *e;
        uint32_t ids[64];
        size_t nd;
        if (!wg_node_tag_is(u, "user") || !jid)
            continue;
        if (!(ou = wg_node_add_new(rl, "user")) || wg_node_set_attr_jid(ou, "jid", jid) != 0 ||
            !(devs = wg_node_add_new(ou, "devices")))
            goto nomem;
        if (resolve_jid(c->sb, jid, &a) != 0 || a.group) {
            if (!(e = wg_node_add_new(devs, "error")))
                goto nomem;
            wg_node_set_attr(e, "code", "404");
            wg_node_set_attr(e, "text", "item-not-found");
            continue;
        }
        nd = user_devices(c->sb, a.number, ids, 64);
        if (!(dl = wg_node_add_new(devs, "device-list")))
            goto nomem;
        for (size_t k = 0; k < nd; k++) {
            wg_node_t *d = wg_node_add_new(dl, "device");
            if (!d)
                goto nomem;
            wg_node_set_attrf(d, "id", "%u", ids[k]);
            if (ids[k])
                wg_node_set_attrf(d, "key-index", "%u", ids[k]);
        }
        if (!(e = wg_node_add_new(devs, "key-index-list")))
            goto nomem;
        wg_node_set_attrf(e, "ts", "%lld", (long long)time(NULL));
        if (want_lid) {
            wg_sandbox_phone_t *p = wg_sandbox_state_phone_find(c->sb->st, a.number);
            char lid[64];
            snprintf(lid, sizeof(lid), "%s@lid", p->lid);
            if (!(e = wg_node_add_new(ou, "lid")))
                goto nomem;
            wg_node_set_attr_jid(e, "val", lid);
        }
    }
    send_free(c, r);
    return;
nomem:
    wg_node_free(r);
    send_iq_error(c, id, 500, "internal-server-error");
}

static int be_bytes(wg_node_t *parent, const char *tag, uint32_t v, size_t n)
{
    uint8_t b[4];
    wg_node_t *k = wg_node_add_new(parent, tag);
    for (size_t i = 0; i < n; i++)
        b[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
    return k ? wg_node_set_bytes(k, b, n) : WG_ENOMEM;
}

static int raw_bytes(wg_node_t *parent, const char *tag, const uint8_t *p, size_t n)
{
    wg_node_t *k = wg_node_add_new(parent, tag);
    return k ? wg_node_set_bytes(k, p, n) : WG_ENOMEM;
}

/* A device's bundle, as the server hands it out: phones' own keys, companions' uploads. */
static int bundle_for(wg_sandbox_t *sb, const char *number, uint32_t device, wg_signal_bundle_t *b)
{
    wg_sandbox_device_t *d;
    if (device == 0) {
        wg_sandbox_phone_t *p = wg_sandbox_state_phone_find(sb->st, number);
        return p ? wg_sandbox_state_phone_bundle(sb->st, p, b) : WG_ENOTFOUND;
    }
    if (!(d = wg_sandbox_state_device_find(sb->st, number, device)))
        return WG_ENOTFOUND;
    return wg_sandbox_state_device_bundle(sb->st, d, b);
}

/* §3.3: <iq xmlns="encrypt" type="get"><key><user jid/>…</key></iq> → <list><user jid>
 * <registration/><type/><identity/><skey/>[<key/>]</user>… (an unknown device: <error/>). */
static void handle_prekey_fetch(wg_sandbox_conn_t *c, const char *id, const wg_node_t *key)
{
    wg_node_t *r = iq_new("result", id), *list;
    static const uint8_t type05 = WG_KEYS_DJB_TYPE;
    if (!r || !(list = wg_node_add_new(r, "list")))
        goto nomem;
    for (size_t i = 0; i < wg_node_child_count(key); i++) {
        const wg_node_t *u = wg_node_child(key, i);
        const char *jid = wg_node_attr(u, "jid");
        wg_signal_bundle_t b;
        sb_addr_t a;
        wg_node_t *ou, *sk, *k;
        if (!wg_node_tag_is(u, "user") || !jid)
            continue;
        if (!(ou = wg_node_add_new(list, "user")) || wg_node_set_attr_jid(ou, "jid", jid) != 0)
            goto nomem;
        if (resolve_jid(c->sb, jid, &a) != 0 || a.group ||
            bundle_for(c->sb, a.number, a.device, &b) != 0) {
            wg_node_t *e = wg_node_add_new(ou, "error");
            if (!e)
                goto nomem;
            wg_node_set_attr(e, "code", "404");
            wg_node_set_attr(e, "text", "item-not-found");
            continue;
        }
        if (be_bytes(ou, "registration", b.registration_id, 4) ||
            raw_bytes(ou, "type", &type05, 1) ||
            raw_bytes(ou, "identity", b.identity, WG_KEYS_KEY_LEN) ||
            !(sk = wg_node_add_new(ou, "skey")) || be_bytes(sk, "id", b.signed_prekey_id, 3) ||
            raw_bytes(sk, "value", b.signed_prekey, WG_KEYS_KEY_LEN) ||
            raw_bytes(sk, "signature", b.signed_prekey_sig, WG_KEYS_SIG_LEN))
            goto nomem;
        if (b.has_prekey &&
            (!(k = wg_node_add_new(ou, "key")) || be_bytes(k, "id", b.prekey_id, 3) ||
             raw_bytes(k, "value", b.prekey, WG_KEYS_KEY_LEN)))
            goto nomem;
    }
    send_free(c, r);
    return;
nomem:
    wg_node_free(r);
    send_iq_error(c, id, 500, "internal-server-error");
}

/* Group members from the state: numbers into out (comma list parsed). */
static size_t group_members(wg_sandbox_t *sb, const char *gjid, char out[][WG_SB_NUMBER_MAX + 1],
                            size_t max, char *subject, size_t subject_cap, char *creator,
                            int64_t *created)
{
    char parts[4096], *save = NULL, *t;
    size_t n = 0;
    char cr[WG_SB_NUMBER_MAX + 1], subj[256];
    int64_t cre = 0;
    if (wg_sandbox_state_group_get(sb->st, gjid, subject ? subject : subj,
                                   subject ? subject_cap : sizeof(subj), creator ? creator : cr,
                                   WG_SB_NUMBER_MAX + 1, parts, sizeof(parts), &cre) != 0)
        return 0;
    if (created)
        *created = cre;
    for (t = strtok_r(parts, ",", &save); t && n < max; t = strtok_r(NULL, ",", &save))
        snprintf(out[n++], WG_SB_NUMBER_MAX + 1, "%s", t);
    return n;
}

#define MAX_MEMBERS 64

/* <group id subject s_t s_o creation creator addressing_mode="pn" size><participant jid
 * [type]/>…</group> under parent; 0 when gjid is a group, WG_ENOTFOUND. */
static int add_group_node(wg_sandbox_t *sb, wg_node_t *parent, const char *gjid)
{
    char members[MAX_MEMBERS][WG_SB_NUMBER_MAX + 1], subject[256], creator[WG_SB_NUMBER_MAX + 1];
    char jid[96];
    const char *at = strchr(gjid, '@');
    int64_t created = 0;
    size_t n =
        group_members(sb, gjid, members, MAX_MEMBERS, subject, sizeof(subject), creator, &created);
    wg_node_t *g;
    if (!n || !at)
        return WG_ENOTFOUND;
    if (!(g = wg_node_add_new(parent, "group")))
        return WG_ENOMEM;
    wg_node_set_attrf(g, "id", "%.*s", (int)(at - gjid), gjid);
    wg_node_set_attr(g, "subject", subject);
    wg_node_set_attrf(g, "s_t", "%lld", (long long)created);
    wg_node_set_attrf(g, "creation", "%lld", (long long)created);
    dev_jid(creator, 0, jid, sizeof(jid));
    wg_node_set_attr_jid(g, "creator", jid);
    wg_node_set_attr_jid(g, "s_o", jid);
    wg_node_set_attr(g, "addressing_mode", "pn");
    wg_node_set_attrf(g, "size", "%zu", n);
    for (size_t i = 0; i < n; i++) {
        wg_node_t *pn = wg_node_add_new(g, "participant");
        if (!pn)
            return WG_ENOMEM;
        dev_jid(members[i], 0, jid, sizeof(jid));
        wg_node_set_attr_jid(pn, "jid", jid);
        if (strcmp(members[i], creator) == 0)
            wg_node_set_attr(pn, "type", "superadmin");
    }
    return 0;
}

typedef struct {
    wg_sandbox_t *sb;
    const char *number;
    wg_node_t *parent;
} participating_t;

static int participating_cb(void *arg, const char *gjid)
{
    participating_t *pa = arg;
    char members[MAX_MEMBERS][WG_SB_NUMBER_MAX + 1];
    size_t n = group_members(pa->sb, gjid, members, MAX_MEMBERS, NULL, 0, NULL, NULL);
    for (size_t i = 0; i < n; i++)
        if (strcmp(members[i], pa->number) == 0)
            return add_group_node(pa->sb, pa->parent, gjid) == WG_ENOMEM ? WG_ENOMEM : 0;
    return 0;
}

/* §4.1: <iq xmlns="w:g2" type="get" to=group><query/> → <group …>; to="@g.us" with
 * <participating> → <groups><group …/>…</groups> (the groups the device's account is in). */
static void handle_group_iq(wg_sandbox_conn_t *c, const char *id, const wg_node_t *iq)
{
    const char *to = wg_node_attr(iq, "to");
    const wg_node_t *first = wg_node_child(iq, 0);
    wg_node_t *r = NULL;
    int rv;
    if (to && strcmp(to, "@g.us") == 0 && first && wg_node_tag_is(first, "participating")) {
        participating_t pa = {c->sb, c->dev->number, NULL};
        wg_node_t *gs;
        if (!(r = iq_new("result", id)) || !(gs = wg_node_add_new(r, "groups"))) {
            wg_node_free(r);
            send_iq_error(c, id, 500, "internal-server-error");
            return;
        }
        pa.parent = gs;
        if (wg_sandbox_state_group_each(c->sb->st, participating_cb, &pa) != 0) {
            wg_node_free(r);
            send_iq_error(c, id, 500, "internal-server-error");
            return;
        }
        if (wg_node_child_count(gs) == 0)
            wg_node_set_list(gs); /* <groups></groups>, an empty list */
        send_free(c, r);
        return;
    }
    if (!to || !strstr(to, "@g.us") || strcmp(to, "@g.us") == 0) {
        send_iq_error(c, id, 501, "feature-not-implemented");
        return;
    }
    if (!(r = iq_new("result", id)) || wg_node_set_attr_jid(r, "from", to) != 0) {
        wg_node_free(r);
        send_iq_error(c, id, 500, "internal-server-error");
        return;
    }
    if ((rv = add_group_node(c->sb, r, to)) != 0) {
        wg_node_free(r);
        if (rv == WG_ENOTFOUND)
            send_iq_error(c, id, 404, "item-not-found");
        else
            send_iq_error(c, id, 500, "internal-server-error");
        return;
    }
    send_free(c, r);
}

/* <message id to><enc…/>…</message> as a device receives it. */
static wg_node_t *msg_new(const char *id, const char *from, const char *participant,
                          const char *recipient, const char *type, const char *notify)
{
    wg_node_t *m = wg_node_new("message");
    if (!m || wg_node_set_attr(m, "id", id) || wg_node_set_attr_jid(m, "from", from) ||
        wg_node_set_attr(m, "type", type ? type : "text") ||
        wg_node_set_attrf(m, "t", "%lld", (long long)time(NULL)) ||
        (participant && wg_node_set_attr_jid(m, "participant", participant)) ||
        (recipient && wg_node_set_attr_jid(m, "recipient", recipient)) ||
        (notify && *notify && wg_node_set_attr(m, "notify", notify))) {
        wg_node_free(m);
        return NULL;
    }
    return m;
}

static int add_clone(wg_node_t *parent, const wg_node_t *child)
{
    wg_node_t *k = wg_node_clone(child);
    if (!k || wg_node_add_child(parent, k) != 0) {
        wg_node_free(k);
        return WG_ENOMEM;
    }
    return 0;
}

static const wg_node_t *find_to(const wg_node_t *parts, wg_sandbox_t *sb, const char *number,
                                uint32_t device)
{
    for (size_t i = 0; parts && i < wg_node_child_count(parts); i++) {
        const wg_node_t *t = wg_node_child(parts, i);
        sb_addr_t a;
        if (wg_node_tag_is(t, "to") && resolve_jid(sb, wg_node_attr(t, "jid"), &a) == 0 &&
            !a.group && a.device == device && strcmp(a.number, number) == 0)
            return wg_node_child_by_tag(t, "enc");
    }
    return NULL;
}

static void send_ack(wg_sandbox_conn_t *c, const char *cls, const char *id, const char *from,
                     const char *error)
{
    wg_node_t *a = wg_node_new("ack");
    if (!a)
        return;
    wg_node_set_attr(a, "class", cls);
    wg_node_set_attr(a, "id", id ? id : "");
    if (from)
        wg_node_set_attr_jid(a, "from", from);
    wg_node_set_attrf(a, "t", "%lld", (long long)time(NULL));
    if (error)
        wg_node_set_attr(a, "error", error);
    send_free(c, a);
}

/* 1 when m has an <enc> other than skmsg directly under it (the single-device form). */
static int direct_enc(const wg_node_t *m)
{
    for (size_t i = 0; i < wg_node_child_count(m); i++) {
        const wg_node_t *e = wg_node_child(m, i);
        const char *t = wg_node_attr(e, "type");
        if (wg_node_tag_is(e, "enc") && t && strcmp(t, "skmsg") != 0)
            return 1;
    }
    return 0;
}

/* Routes a message from a device (number/device) to every addressed device (§3.5, §4.2). The
 * sender is a companion (c != NULL; it gets the server ack §3.6) or a phone (c NULL). */
static int route_message(wg_sandbox_t *sb, const char *number, uint32_t device, const wg_node_t *m,
                         wg_sandbox_conn_t *c)
{
    const char *id = wg_node_attr(m, "id"), *to = wg_node_attr(m, "to");
    const char *type = wg_node_attr(m, "type");
    const wg_node_t *parts = wg_node_child_by_tag(m, "participants");
    const wg_node_t *ident = wg_node_child_by_tag(m, "device-identity");
    const wg_node_t *skmsg = NULL;
    wg_sandbox_phone_t *sp = wg_sandbox_state_phone_find(sb->st, number);
    char from[96];
    sb_addr_t ta;
    size_t delivered = 0;
    for (size_t i = 0; i < wg_node_child_count(m); i++) {
        const wg_node_t *e = wg_node_child(m, i);
        if (wg_node_tag_is(e, "enc") && wg_node_attr(e, "type") &&
            strcmp(wg_node_attr(e, "type"), "skmsg") == 0)
            skmsg = e;
    }
    if (!id || !to || resolve_jid(sb, to, &ta) != 0) {
        if (c)
            send_ack(c, "message", id, to, id && to ? "404" : "400");
        return WG_EPROTO;
    }
    dev_jid(number, device, from, sizeof(from));
    if (!parts && direct_enc(m)) {
        /* the single-device form (a resend after a retry receipt, §3.7, or a peer message):
         * the encs go to the device named by participant (groups) or to */
        const char *tjid = ta.group ? wg_node_attr(m, "participant") : to;
        sb_addr_t da;
        uint32_t ids[64];
        size_t nd;
        wg_node_t *out;
        char chat[96];
        if (!tjid || resolve_jid(sb, tjid, &da) != 0 || da.group) {
            if (c)
                send_ack(c, "message", id, to, "400");
            return WG_EPROTO;
        }
        if (strchr(tjid, ':')) {
            ids[0] = da.device;
            nd = 1;
        } else {
            nd = user_devices(sb, da.number, ids, 64);
        }
        dev_jid(da.number, 0, chat, sizeof(chat));
        for (size_t k = 0; k < nd; k++) {
            if (strcmp(da.number, number) == 0 && ids[k] == device)
                continue;
            out = ta.group
                      ? msg_new(id, to, from, NULL, type, sp ? sp->push_name : NULL)
                      : msg_new(id, from, NULL,
                                strcmp(da.number, number) == 0 && !wg_node_attr(m, "category")
                                    ? (wg_node_attr(m, "recipient") ? wg_node_attr(m, "recipient")
                                                                    : chat)
                                    : NULL,
                                type, sp ? sp->push_name : NULL);
            if (!out)
                return WG_ENOMEM;
            if (wg_node_attr(m, "category"))
                wg_node_set_attr(out, "category", wg_node_attr(m, "category"));
            for (size_t i = 0; i < wg_node_child_count(m); i++) {
                const wg_node_t *e = wg_node_child(m, i);
                if ((wg_node_tag_is(e, "enc") || wg_node_tag_is(e, "device-identity") ||
                     wg_node_tag_is(e, "meta")) &&
                    add_clone(out, e) != 0) {
                    wg_node_free(out);
                    return WG_ENOMEM;
                }
            }
            deliver(sb, da.number, ids[k], out);
            wg_node_free(out);
            delivered++;
        }
    } else if (ta.group) {
        char members[MAX_MEMBERS][WG_SB_NUMBER_MAX + 1];
        size_t nm = group_members(sb, to, members, MAX_MEMBERS, NULL, 0, NULL, NULL);
        for (size_t i = 0; i < nm; i++) {
            uint32_t ids[64];
            size_t nd = user_devices(sb, members[i], ids, 64);
            for (size_t k = 0; k < nd; k++) {
                const wg_node_t *pe = find_to(parts, sb, members[i], ids[k]);
                wg_node_t *out;
                if (ids[k] == device && strcmp(members[i], number) == 0)
                    continue;
                if (!pe && !skmsg)
                    continue;
                if (!(out = msg_new(id, to, from, NULL, type, sp ? sp->push_name : NULL)))
                    return WG_ENOMEM;
                wg_node_set_attr(out, "addressing_mode", "pn");
                if ((pe && add_clone(out, pe)) || (skmsg && add_clone(out, skmsg)) ||
                    (pe && ident && add_clone(out, ident))) {
                    wg_node_free(out);
                    return WG_ENOMEM;
                }
                deliver(sb, members[i], ids[k], out);
                wg_node_free(out);
                delivered++;
            }
        }
    } else {
        for (size_t i = 0; parts && i < wg_node_child_count(parts); i++) {
            const wg_node_t *t = wg_node_child(parts, i), *e;
            sb_addr_t a;
            wg_node_t *out;
            char chat[96];
            if (!wg_node_tag_is(t, "to") || !(e = wg_node_child_by_tag(t, "enc")) ||
                resolve_jid(sb, wg_node_attr(t, "jid"), &a) != 0 || a.group)
                continue;
            if (strcmp(a.number, number) == 0 && a.device == device)
                continue;
            dev_jid(ta.number, 0, chat, sizeof(chat));
            /* own other devices see the chat in recipient (§2.1) */
            if (!(out = msg_new(id, from, NULL, strcmp(a.number, number) == 0 ? chat : NULL, type,
                                sp ? sp->push_name : NULL)))
                return WG_ENOMEM;
            if (add_clone(out, e) || (ident && add_clone(out, ident))) {
                wg_node_free(out);
                return WG_ENOMEM;
            }
            deliver(sb, a.number, a.device, out);
            wg_node_free(out);
            delivered++;
        }
    }
    wg_log(WG_LOG_INFO, "sandbox", "message %s from %s to %s: %zu device(s)", id, from, to,
           delivered);
    if (c)
        send_ack(c, "message", id, to, NULL);
    return 0;
}

/* A receipt from a device goes to the author of the message it names (§5): to (a device or a
 * user: all its devices) or, in a group, participant. */
static void route_receipt(wg_sandbox_t *sb, const char *number, uint32_t device, const wg_node_t *r)
{
    const char *to = wg_node_attr(r, "to"), *participant = wg_node_attr(r, "participant");
    const char *id = wg_node_attr(r, "id"), *type = wg_node_attr(r, "type");
    sb_addr_t ta, target;
    char from[96];
    wg_node_t *out;
    uint32_t ids[64];
    size_t nd;
    if (!id || !to || resolve_jid(sb, to, &ta) != 0)
        return;
    if (ta.group && (!participant || resolve_jid(sb, participant, &target) != 0 || target.group))
        return;
    if (!ta.group)
        target = ta;
    dev_jid(number, device, from, sizeof(from));
    if (!(out = wg_node_new("receipt")))
        return;
    wg_node_set_attr(out, "id", id);
    if (ta.group) {
        wg_node_set_attr_jid(out, "from", to);
        wg_node_set_attr_jid(out, "participant", from);
    } else {
        wg_node_set_attr_jid(out, "from", from);
    }
    if (wg_node_attr(r, "recipient"))
        wg_node_set_attr_jid(out, "recipient", wg_node_attr(r, "recipient"));
    if (type)
        wg_node_set_attr(out, "type", type);
    wg_node_set_attrf(out, "t", "%lld", (long long)time(NULL));
    for (size_t i = 0; i < wg_node_child_count(r); i++)
        add_clone(out, wg_node_child(r, i));
    /* a device JID names one device; a bare JID all of that user's devices */
    if (strchr(ta.group ? participant : to, ':')) {
        ids[0] = target.device;
        nd = 1;
    } else {
        nd = user_devices(sb, target.number, ids, 64);
    }
    for (size_t k = 0; k < nd; k++)
        if (!(strcmp(target.number, number) == 0 && ids[k] == device))
            deliver(sb, target.number, ids[k], out);
    wg_node_free(out);
}

/* <chatstate to>…</chatstate> → the peer's devices with from = the sender. */
static void route_chatstate(wg_sandbox_t *sb, const char *number, uint32_t device,
                            const wg_node_t *n)
{
    sb_addr_t ta;
    uint32_t ids[64];
    size_t nd;
    char from[96];
    wg_node_t *out;
    if (resolve_jid(sb, wg_node_attr(n, "to"), &ta) != 0 || ta.group || !(out = wg_node_clone(n)))
        return;
    dev_jid(number, 0, from, sizeof(from));
    wg_node_set_attr_jid(out, "from", from);
    nd = user_devices(sb, ta.number, ids, 64);
    for (size_t k = 1; k < nd; k++) /* phones do not care; offline devices need not know */
    {
        wg_sandbox_device_t *d = wg_sandbox_state_device_find(sb->st, ta.number, ids[k]);
        if (d && d->conn && !(strcmp(ta.number, number) == 0 && ids[k] == device))
            send_node(d->conn, out);
    }
    wg_node_free(out);
}

/* <call to>: offers and rejects go to the callee's devices (a phone records them). */
static void route_call(wg_sandbox_t *sb, const char *number, uint32_t device, const wg_node_t *n)
{
    sb_addr_t ta;
    uint32_t ids[64];
    size_t nd;
    char from[96];
    wg_node_t *out;
    if (resolve_jid(sb, wg_node_attr(n, "to"), &ta) != 0 || ta.group || !(out = wg_node_clone(n)))
        return;
    dev_jid(number, device, from, sizeof(from));
    wg_node_set_attr_jid(out, "from", from);
    wg_node_set_attrf(out, "t", "%lld", (long long)time(NULL));
    if (strchr(wg_node_attr(n, "to"), ':')) {
        ids[0] = ta.device;
        nd = 1;
    } else {
        nd = user_devices(sb, ta.number, ids, 64);
    }
    for (size_t k = 0; k < nd; k++)
        if (!(strcmp(ta.number, number) == 0 && ids[k] == device))
            deliver(sb, ta.number, ids[k], out);
    wg_node_free(out);
}

/* Stanzas of a logged-in companion other than iqs. */
static void handle_stanza(wg_sandbox_conn_t *c, const wg_node_t *n)
{
    wg_sandbox_device_t *d = c->dev;
    if (!d || c->state != CS_LOGIN)
        return;
    if (wg_node_tag_is(n, "message")) {
        route_message(c->sb, d->number, d->id, n, c);
    } else if (wg_node_tag_is(n, "receipt")) {
        route_receipt(c->sb, d->number, d->id, n);
        send_ack(c, "receipt", wg_node_attr(n, "id"), wg_node_attr(n, "to"), NULL);
    } else if (wg_node_tag_is(n, "chatstate")) {
        route_chatstate(c->sb, d->number, d->id, n);
    } else if (wg_node_tag_is(n, "call")) {
        route_call(c->sb, d->number, d->id, n);
        send_ack(c, "call", wg_node_attr(n, "id"), wg_node_attr(n, "to"), NULL);
    }
    /* presence, ack: accepted, nothing to answer */
}

/* ---- the phones -------------------------------------------------------------------------------
 */

static int phone_encrypt(wg_sandbox_t *sb, wg_signal_t *sig, const char *number, uint32_t device,
                         const uint8_t *pt, size_t len, wg_node_t *parent);

/* §3.7: a device could not decrypt what the phone sent: rebuild the session from the keys in
 * the retry receipt (or a fresh bundle when there is no session), re-encrypt the original text
 * for that one device (a DSM copy for the phone's own companions; in a group the sender key
 * distribution goes along, pairwise) and send it directly with the retry count. */
static void phone_resend(wg_sandbox_t *sb, wg_sandbox_phone_t *p, const wg_node_t *n,
                         const sb_addr_t *dev)
{
    wg_stanza_receipt_in_t r;
    wg_signal_t *sig;
    wg_signal_addr_t addr, self;
    char chat[96], own[96], djid[96], *text = NULL;
    uint8_t *msg = NULL, *inner = NULL, *pt = NULL, *skdm = NULL;
    size_t msg_len = 0, inner_len = 0, pt_len = 0, skdm_len = 0;
    wg_node_t *out = NULL;
    int group, rv;
    if (wg_stanza_receipt_parse(n, &r) != 0 || dev->device == 0 ||
        wg_sandbox_state_sent_get(sb->st, p->number, r.id, chat, sizeof(chat), &text) != 0 ||
        wg_sandbox_state_phone_signal(sb->st, p, &sig) != 0)
        goto out;
    group = strstr(chat, "@g.us") != NULL;
    dev_jid(p->number, 0, own, sizeof(own));
    dev_jid(dev->number, dev->device, djid, sizeof(djid));
    if (wg_signal_addr_from_jid(djid, &addr) != 0 || wg_signal_addr_from_jid(own, &self) != 0)
        goto out;
    if (r.has_keys && (rv = wg_signal_process_bundle(sig, &addr, &r.keys)) != 0) {
        wg_log(WG_LOG_INFO, "sandbox", "phone %s: retry keys of %s refused: %s", p->number, djid,
               wg_strerror(rv));
        goto out;
    }
    if ((rv = wg_msg_build_text(text, NULL, NULL, 0, &inner, &inner_len)) != 0)
        goto out;
    if (group) { /* the text with the sender key distribution, pairwise (§3.7 step 3) */
        uint8_t *sk = NULL;
        size_t sk_len = 0;
        if (wg_signal_group_skdm(sig, chat, &self, &skdm, &skdm_len) != 0 ||
            wg_msg_build_skdm(chat, skdm, skdm_len, &sk, &sk_len) != 0)
            goto out;
        /* two concatenated Message encodings merge into one Message (protobuf) */
        if (!(msg = malloc(inner_len + sk_len))) {
            free(sk);
            goto out;
        }
        memcpy(msg, inner, inner_len);
        memcpy(msg + inner_len, sk, sk_len);
        msg_len = inner_len + sk_len;
        free(sk);
    } else if (strcmp(dev->number, p->number) == 0) {
        if (wg_msg_wrap_dsm(inner, inner_len, chat, &msg, &msg_len) != 0)
            goto out;
    } else {
        msg = inner;
        msg_len = inner_len;
        inner = NULL;
    }
    if (wg_msg_pad(msg, msg_len, 0, &pt, &pt_len) != 0)
        goto out;
    if (!(out = msg_new(r.id, group ? chat : own, group ? own : NULL,
                        !group && strcmp(dev->number, p->number) == 0 ? chat : NULL, "text",
                        p->push_name)))
        goto out;
    if ((rv = phone_encrypt(sb, sig, dev->number, dev->device, pt, pt_len, out)) != 0) {
        wg_log(WG_LOG_INFO, "sandbox", "phone %s: resend to %s failed: %s", p->number, djid,
               wg_strerror(rv));
        goto out;
    }
    wg_node_set_attrf(wg_node_child(out, 0), "count", "%u", r.retry_count);
    deliver(sb, dev->number, dev->device, out);
    wg_log(WG_LOG_INFO, "sandbox", "phone %s resent %s to %s (retry %u)", p->number, r.id, djid,
           r.retry_count);
out:
    wg_node_free(out);
    free(text), free(msg), free(inner), free(pt), free(skdm);
}

static void route_receipt(wg_sandbox_t *sb, const char *number, uint32_t device,
                          const wg_node_t *r);

/* §2.8: the phone could not decrypt an enc of n: it asks the author's device to resend, with
 * its own bundle (a fresh one-time prekey) so a new session can be built. */
static void phone_retry(wg_sandbox_t *sb, wg_sandbox_phone_t *p, const wg_node_t *n,
                        const char *participant, const wg_node_t *enc)
{
    wg_stanza_retry_t rr = {0};
    wg_signal_bundle_t b;
    wg_node_t *r = NULL;
    const char *ts = wg_node_attr(n, "t"), *cnt = wg_node_attr(enc, "count");
    if (wg_sandbox_state_phone_bundle(sb->st, p, &b) != 0)
        return;
    rr.id = wg_node_attr(n, "id");
    rr.to = wg_node_attr(n, "from");
    rr.participant = participant;
    rr.count = (cnt ? (uint32_t)strtoul(cnt, NULL, 10) : 0) + 1;
    rr.orig_t = ts ? strtoll(ts, NULL, 10) : (int64_t)time(NULL);
    rr.registration_id = b.registration_id;
    rr.keys = &b;
    if (rr.count > 5 || wg_stanza_retry_build(&rr, &r) != 0)
        return;
    wg_log(WG_LOG_INFO, "sandbox", "phone %s asks %s to resend %s (retry %u)", p->number,
           participant ? participant : rr.to, rr.id, rr.count);
    route_receipt(sb, p->number, 0, r);
    wg_node_free(r);
}

/* Decrypts what was sent to the phone, keeps texts (GET /phones/{n}/messages), records call
 * offers/rejects, and answers messages with a delivery receipt. */
static void phone_receive(wg_sandbox_t *sb, wg_sandbox_phone_t *p, const wg_node_t *n)
{
    wg_signal_t *sig;
    const char *id = wg_node_attr(n, "id"), *from = wg_node_attr(n, "from");
    const char *participant = wg_node_attr(n, "participant");
    const char *author = participant ? participant : from;
    char chat[96], own[96];
    sb_addr_t aa;
    wg_signal_addr_t addr;
    int got = 0, retried = 0;
    if (!id || !from || resolve_jid(sb, author, &aa) != 0 || aa.group)
        return;
    dev_jid(aa.number, 0, chat, sizeof(chat));
    if (participant)
        snprintf(chat, sizeof(chat), "%s", from);
    dev_jid(p->number, 0, own, sizeof(own));
    if (wg_node_tag_is(n, "call")) {
        const wg_node_t *k = wg_node_child(n, 0);
        const char *cid = k ? wg_node_attr(k, "call-id") : NULL;
        if (k)
            wg_sandbox_state_inbox_add(sb->st, p->number, "call", cid ? cid : id, chat, author,
                                       wg_node_tag(k), (int64_t)time(NULL));
        return;
    }
    if (wg_node_tag_is(n, "receipt")) {
        const char *rt = wg_node_attr(n, "type");
        wg_log(WG_LOG_INFO, "sandbox", "phone %s: receipt %s for %s from %s", p->number,
               rt ? rt : "delivery", id, author);
        if (rt && strcmp(rt, "retry") == 0) {
            phone_resend(sb, p, n, &aa);
            return;
        }
        /* GET /phones/{n}/receipts: {id: message id, from: chat, author: device, text: type} */
        {
            const wg_node_t *list = wg_node_child_by_tag(n, "list");
            wg_sandbox_state_inbox_add(sb->st, p->number, "receipt", id, chat, author,
                                       rt ? rt : "delivery", (int64_t)time(NULL));
            for (size_t i = 0; list && i < wg_node_child_count(list); i++) {
                const char *iid = wg_node_attr(wg_node_child(list, i), "id");
                if (iid)
                    wg_sandbox_state_inbox_add(sb->st, p->number, "receipt", iid, chat, author,
                                               rt ? rt : "delivery", (int64_t)time(NULL));
            }
        }
        return;
    }
    if (!wg_node_tag_is(n, "message") || wg_sandbox_state_phone_signal(sb->st, p, &sig) != 0)
        return;
    {
        char adev[96];
        dev_jid(aa.number, aa.device, adev, sizeof(adev));
        if (wg_signal_addr_from_jid(adev, &addr) != 0)
            return;
    }
    for (size_t i = 0; i < wg_node_child_count(n); i++) {
        const wg_node_t *e = wg_node_child(n, i);
        const char *ts = wg_node_attr(e, "type");
        int t = ts ? wg_signal_type_parse(ts) : -1;
        const uint8_t *ct;
        size_t ctlen = 0, plen;
        uint8_t *pt = NULL;
        size_t ptlen = 0;
        wg_msg_t *msg = NULL;
        int rv;
        if (!wg_node_tag_is(e, "enc") || t < 0 || !(ct = wg_node_bytes(e, &ctlen)))
            continue;
        if (t == WG_SIGNAL_SKMSG)
            rv = participant ? wg_signal_group_decrypt(sig, from, &addr, ct, ctlen, &pt, &ptlen)
                             : WG_EPROTO;
        else
            rv = wg_signal_decrypt(sig, &addr, (wg_signal_type_t)t, ct, ctlen, &pt, &ptlen);
        if (rv != 0) {
            wg_log(WG_LOG_INFO, "sandbox", "phone %s: cannot decrypt %s %s from %s: %s", p->number,
                   ts, id, author, wg_strerror(rv));
            if (rv != WG_EEXIST && aa.device && !retried) {
                phone_retry(sb, p, n, participant ? author : NULL, e);
                retried = 1;
            }
            continue;
        }
        if (wg_msg_unpad(pt, ptlen, &plen) == 0 && wg_msg_decode(pt, plen, &msg) == 0) {
            if (msg->skdm_group && msg->skdm.len)
                wg_signal_group_process(sig, msg->skdm_group, &addr, msg->skdm.p, msg->skdm.len);
            if (msg->text && msg->kind != WG_MSG_EMPTY) {
                /* a copy of what one of the phone's own companions sent (DSM, §3.4) is kept
                 * apart: GET /phones/{n}/messages lists what others sent to the phone */
                int mine = strcmp(aa.number, p->number) == 0;
                const char *rcpt = wg_node_attr(n, "recipient");
                wg_sandbox_state_inbox_add(sb->st, p->number, mine ? "own" : "message", id,
                                           mine && rcpt ? rcpt : chat, author, msg->text,
                                           (int64_t)time(NULL));
                wg_log(WG_LOG_INFO, "sandbox", "phone %s received %s from %s", p->number, id,
                       author);
            }
            got = 1;
            wg_msg_free(msg);
        }
        free(pt);
    }
    if (got) { /* the delivery receipt goes back to the author's device (§5) */
        wg_node_t *r = wg_node_new("receipt");
        if (r) {
            wg_node_set_attr(r, "id", id);
            if (participant) {
                wg_node_set_attr_jid(r, "from", from);
                wg_node_set_attr_jid(r, "participant", own);
            } else {
                wg_node_set_attr_jid(r, "from", own);
            }
            wg_node_set_attrf(r, "t", "%lld", (long long)time(NULL));
            if (strcmp(aa.number, p->number) == 0) { /* §2.7: from one of our own devices */
                const char *rcpt = wg_node_attr(n, "recipient");
                wg_node_set_attr(r, "type", "sender");
                if (rcpt && !participant)
                    wg_node_set_attr_jid(r, "recipient", rcpt);
            }
            if (aa.device || strcmp(aa.number, p->number) != 0) /* another phone keeps it */
                deliver(sb, aa.number, aa.device, r);
            wg_node_free(r);
        }
    }
}

/* Encrypts pt for device (number, device) from phone p, making the session from a bundle
 * when there is none (the sandbox is the server: no network). */
static int phone_encrypt(wg_sandbox_t *sb, wg_signal_t *sig, const char *number, uint32_t device,
                         const uint8_t *pt, size_t len, wg_node_t *parent)
{
    char jid[96];
    wg_signal_addr_t a;
    wg_signal_type_t t;
    uint8_t *ct = NULL;
    size_t ctlen = 0;
    wg_node_t *e;
    int rv;
    dev_jid(number, device, jid, sizeof(jid));
    if ((rv = wg_signal_addr_from_jid(jid, &a)) != 0)
        return rv;
    if (wg_signal_has_session(sig, &a) != 1) {
        wg_signal_bundle_t b;
        if ((rv = bundle_for(sb, number, device, &b)) != 0 ||
            (rv = wg_signal_process_bundle(sig, &a, &b)) != 0)
            return rv;
    }
    if ((rv = wg_signal_encrypt(sig, &a, pt, len, &t, &ct, &ctlen)) != 0)
        return rv;
    if (!(e = wg_node_add_new(parent, "enc")) || wg_node_set_attr(e, "v", "2") ||
        wg_node_set_attr(e, "type", wg_signal_type_name(t)) ||
        wg_node_take_bytes(e, ct, ctlen) != 0) {
        free(ct);
        return WG_ENOMEM;
    }
    return 0;
}

static int pad_copy(const uint8_t *m, size_t len, uint8_t **out, size_t *olen)
{
    return wg_msg_pad(m, len, 0, out, olen);
}

int wg_sandbox_phone_send(wg_sandbox_t *sb, wg_sandbox_phone_t *p, const char *to, const char *text,
                          char id[24], const char **error)
{
    wg_signal_t *sig;
    sb_addr_t ta;
    char own[96], chat[96];
    uint8_t *msg = NULL, *pmsg = NULL, *dsm = NULL, *pdsm = NULL;
    size_t msg_len, pmsg_len, dsm_len, pdsm_len;
    int status = 500, rv;
    char tojid[96];
    *error = "internal error";
    /* to: a number, a user JID or a group JID */
    if (wg_sandbox_number_valid(to))
        dev_jid(to, 0, tojid, sizeof(tojid));
    else
        snprintf(tojid, sizeof(tojid), "%s", to);
    if ((rv = resolve_jid(sb, tojid, &ta)) != 0 || (!ta.group && ta.device)) {
        *error = rv == WG_ENOTFOUND ? "that number is not on WhatsApp (no such phone)"
                                    : "to must be a number, a user JID or a group JID";
        return rv == WG_ENOTFOUND ? 404 : 400;
    }
    char one[1][WG_SB_NUMBER_MAX + 1];
    if (ta.group && !group_members(sb, tojid, one, 1, NULL, 0, NULL, NULL)) {
        *error = "no such group";
        return 404;
    }
    if ((rv = wg_sandbox_state_phone_signal(sb->st, p, &sig)) != 0 ||
        (rv = wg_msg_id(id, (int64_t)time(NULL), p->number, NULL)) != 0 ||
        (rv = wg_msg_build_text(text, NULL, NULL, 0, &msg, &msg_len)) != 0 ||
        (rv = pad_copy(msg, msg_len, &pmsg, &pmsg_len)) != 0)
        goto out;
    dev_jid(p->number, 0, own, sizeof(own));
    if (ta.group) {
        char members[MAX_MEMBERS][WG_SB_NUMBER_MAX + 1];
        size_t nm = group_members(sb, tojid, members, MAX_MEMBERS, NULL, 0, NULL, NULL);
        wg_signal_addr_t self;
        uint8_t *skdm = NULL, *sk = NULL, *psk = NULL, *skmsg = NULL;
        size_t skdm_len, sk_len, psk_len, skmsg_len;
        wg_signal_addr_from_jid(own, &self);
        if ((rv = wg_signal_group_skdm(sig, tojid, &self, &skdm, &skdm_len)) != 0 ||
            (rv = wg_msg_build_skdm(tojid, skdm, skdm_len, &sk, &sk_len)) != 0 ||
            (rv = pad_copy(sk, sk_len, &psk, &psk_len)) != 0 ||
            (rv = wg_signal_group_encrypt(sig, tojid, &self, pmsg, pmsg_len, &skmsg, &skmsg_len)) !=
                0) {
            free(skdm), free(sk), free(psk), free(skmsg);
            goto out;
        }
        /* as whatsmeow: the SKDM goes to every device on every send (§4.2) */
        for (size_t i = 0; i < nm; i++) {
            uint32_t ids[64];
            size_t nd = user_devices(sb, members[i], ids, 64);
            for (size_t k = 0; k < nd; k++) {
                wg_node_t *out, *e;
                if (ids[k] == 0 && strcmp(members[i], p->number) == 0)
                    continue;
                if (!(out = msg_new(id, tojid, own, NULL, "text", p->push_name))) {
                    rv = WG_ENOMEM;
                    break;
                }
                wg_node_set_attr(out, "addressing_mode", "pn");
                if ((rv = phone_encrypt(sb, sig, members[i], ids[k], psk, psk_len, out)) != 0)
                    wg_log(WG_LOG_INFO, "sandbox", "phone %s: no session with %s:%u: %s", p->number,
                           members[i], ids[k], wg_strerror(rv));
                if ((e = wg_node_add_new(out, "enc"))) {
                    wg_node_set_attr(e, "v", "2");
                    wg_node_set_attr(e, "type", "skmsg");
                    wg_node_set_bytes(e, skmsg, skmsg_len);
                }
                deliver(sb, members[i], ids[k], out);
                wg_node_free(out);
                rv = 0;
            }
        }
        free(skdm), free(sk), free(psk), free(skmsg);
        if (rv != 0)
            goto out;
    } else {
        uint32_t ids[64];
        size_t nd;
        dev_jid(ta.number, 0, chat, sizeof(chat));
        if ((rv = wg_msg_wrap_dsm(msg, msg_len, chat, &dsm, &dsm_len)) != 0 ||
            (rv = pad_copy(dsm, dsm_len, &pdsm, &pdsm_len)) != 0)
            goto out;
        /* the recipient's devices, then our own companions with the deviceSentMessage copy */
        for (int pass = 0; pass < 2; pass++) {
            const char *num = pass == 0 ? ta.number : p->number;
            if (pass == 1 && strcmp(ta.number, p->number) == 0)
                break;
            nd = user_devices(sb, num, ids, 64);
            for (size_t k = 0; k < nd; k++) {
                wg_node_t *out;
                if (pass == 1 && ids[k] == 0)
                    continue;
                if (pass == 0 && ids[k] == 0 && strcmp(num, p->number) == 0)
                    continue;
                if (!(out =
                          msg_new(id, own, NULL, pass == 1 ? chat : NULL, "text", p->push_name))) {
                    rv = WG_ENOMEM;
                    goto out;
                }
                rv = pass == 1 ? phone_encrypt(sb, sig, num, ids[k], pdsm, pdsm_len, out)
                               : phone_encrypt(sb, sig, num, ids[k], pmsg, pmsg_len, out);
                if (rv == 0)
                    deliver(sb, num, ids[k], out);
                else
                    wg_log(WG_LOG_INFO, "sandbox", "phone %s: cannot encrypt for %s:%u: %s",
                           p->number, num, ids[k], wg_strerror(rv));
                wg_node_free(out);
            }
        }
        rv = 0;
    }
    wg_sandbox_state_sent_add(sb->st, p->number, id, tojid, text);
    wg_log(WG_LOG_INFO, "sandbox", "phone %s sent %s to %s", p->number, id, tojid);
    status = 200;
out:
    if (rv != 0)
        wg_log(WG_LOG_ERROR, "sandbox", "phone %s: send failed: %s", p->number, wg_strerror(rv));
    free(msg), free(pmsg), free(dsm), free(pdsm);
    return rv == 0 ? status : 500;
}

int wg_sandbox_phone_call(wg_sandbox_t *sb, wg_sandbox_phone_t *p, const char *to, char call_id[40],
                          const char **error)
{
    sb_addr_t ta;
    char tojid[96], own[96], id[32];
    uint8_t r[16];
    wg_node_t *n, *o, *a;
    if (wg_sandbox_number_valid(to))
        dev_jid(to, 0, tojid, sizeof(tojid));
    else
        snprintf(tojid, sizeof(tojid), "%s", to);
    if (resolve_jid(sb, tojid, &ta) != 0 || ta.group || ta.device) {
        *error = "to must be the number or user JID of a phone of this sandbox";
        return 404;
    }
    wg_random_bytes(r, sizeof(r));
    for (int i = 0; i < 16; i++)
        snprintf(call_id + 2 * i, 3, "%02X", r[i]);
    dev_jid(p->number, 0, own, sizeof(own));
    next_id(sb, id, sizeof(id));
    if (!(n = wg_node_new("call")) || wg_node_set_attr_jid(n, "from", own) ||
        wg_node_set_attr(n, "id", id) || wg_node_set_attrf(n, "t", "%lld", (long long)time(NULL)) ||
        (p->push_name[0] && wg_node_set_attr(n, "notify", p->push_name)) ||
        !(o = wg_node_add_new(n, "offer")) || wg_node_set_attr(o, "call-id", call_id) ||
        wg_node_set_attr_jid(o, "call-creator", own) || !(a = wg_node_add_new(o, "audio")) ||
        wg_node_set_attr(a, "enc", "opus") || wg_node_set_attr(a, "rate", "16000")) {
        wg_node_free(n);
        *error = "out of memory";
        return 500;
    }
    {
        uint32_t ids[64];
        size_t nd = user_devices(sb, ta.number, ids, 64);
        for (size_t k = 1; k < nd; k++) /* the callee's companions ring */
            deliver(sb, ta.number, ids[k], n);
    }
    wg_node_free(n);
    wg_sandbox_state_inbox_add(sb->st, p->number, "call", call_id, tojid, own, "offer",
                               (int64_t)time(NULL));
    wg_log(WG_LOG_INFO, "sandbox", "phone %s calls %s (call-id %s)", p->number, tojid, call_id);
    return 200;
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
    else
        handle_stanza(c, node);
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

void wg_sandbox_upload_faults(wg_sandbox_t *sb, long delay_ms, long fail, unsigned *cur_delay_ms,
                              unsigned *cur_fail)
{
    if (delay_ms >= 0)
        sb->upload_delay_ms = (unsigned)delay_ms;
    if (fail >= 0)
        sb->upload_fail = (unsigned)fail;
    if (delay_ms >= 0 || fail >= 0)
        wg_log(WG_LOG_INFO, "sandbox", "prekey uploads: answer after %u ms, refuse the next %u",
               sb->upload_delay_ms, sb->upload_fail);
    *cur_delay_ms = sb->upload_delay_ms;
    *cur_fail = sb->upload_fail;
}

size_t wg_sandbox_connection_count(const wg_sandbox_t *sb)
{
    return sb->nconns;
}
