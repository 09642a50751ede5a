/* conn.h - one WhatsApp instance on one event loop: the I/O glue that stacks
 * ws (socket, proxy, TLS, WebSocket) -> noise (handshake, frames) -> binary (nodes) -> session
 * (protocol logic), plus the credentials in the store and the timers.
 *
 * Timers: the WebSocket connect timeout (ws.h), one timer for the session's next deadline
 * (QR rotation, login timeout, keepalive) or for the reconnect backoff, and a deferred event that tears a
 * connection down outside its own callbacks (STYLE: never free a connection inside its own
 * callback).
 *
 * Reconnect policy (wa-protocol-core.md §7.9, DESIGN "Runtime model"): 515 reconnects at once;
 * network loss, 503/500, keepalive timeout, a failed or unanswered login step (prekey upload,
 * passive iq) and refused connects wait a backoff with full jitter, uniform in
 * [0, min(cap, 1 s * 2^attempt)], reset once WORKING or showing a QR;
 * logged out wipes the credentials and stops (FAILED logged_out); qr_timeout, replaced and
 * other final failures stop with FAILED and keep the credentials.
 *
 * Status reports (through env->report, on the loop's thread) happen only on a change:
 * STARTING while (re)connecting, SCAN_QR_CODE with the first QR and a report per rotation
 * (qr set, status NULL), WORKING with the identity once the session is READY (the login steps
 * after <success> answered: prekeys uploaded when the server ran low, passive iq), FAILED
 * with a reason.
 *
 * Ownership: env is copied, its pointers borrowed (they outlive the conn). Every function runs
 * on the loop's thread. wg_conn_free() must not be called from inside env callbacks. */
#ifndef WG_WA_CONN_H
#define WG_WA_CONN_H

#include <stddef.h>
#include <stdint.h>

#include "core/engine.h"
#include "store/store.h"
#include "wa/proxy.h"
#include "wa/recv.h"
#include "wa/session.h"
#include "wa/signal.h"

struct event_base;
struct evdns_base;
typedef struct ssl_ctx_st SSL_CTX;

typedef struct wg_conn_s wg_conn_t;

typedef struct {
    struct event_base *base;
    struct evdns_base *dns;
    SSL_CTX *ssl;
    wg_store_t *store;
    const uint8_t *master_key; /* 32 bytes */
    const char *url;           /* WAGATE_WA_URL */
    const uint8_t *root_pub;   /* 32 bytes: the key that signs the server's chain */
    uint32_t connect_timeout_ms;
    uint32_t backoff_max_ms;
    wg_session_config_t session; /* timings and prekey batch (next_prekey_id ignored) */
    /* on the loop thread: status/QR/identity changes */
    void (*report)(void *arg, const wg_engine_report_t *r);
    /* on the loop thread: the QR now shown changed (qr NULL = none any more) */
    void (*qr_changed)(void *arg, const char *instance_id, const char *qr, long long expires_at);
    /* on the loop thread: a pairing code became live (state 2) or failed (-1) */
    void (*link_code)(void *arg, const char *instance_id, int state);
    /* on the loop thread: a send started with a token ended: rv 0 (the server acked
     * message id), WG_ENOTFOUND (not on WhatsApp), WG_ECLOSED, WG_ETIMEDOUT, WG_EIO */
    void (*send_done)(void *arg, uint64_t token, int rv, const char *msg_id);
    void *arg;
} wg_conn_env_t;

/* The instance's proxy, or type WG_PROXY_NONE. Strings borrowed by the conn (copied). */
typedef struct {
    wg_proxy_type_t type;
    char host[256];
    uint16_t port;
    char user[256], pass[256];
} wg_conn_proxy_t;

/* A stopped conn for instance_id. 0, WG_EINVAL, WG_ENOMEM. */
int wg_conn_new(wg_conn_t **out, const wg_conn_env_t *env, const char *instance_id,
                const wg_conn_proxy_t *proxy);
/* Loads (or creates and stores) the credentials and connects: login when paired, else
 * registration. Failures are reported (FAILED + reason) and returned. */
int wg_conn_start(wg_conn_t *c);
/* Closes the connection, keeps the credentials; reports nothing. */
void wg_conn_stop(wg_conn_t *c);
/* Our own logout on a logged-in connection: sends remove-companion-device and waits (bounded,
 * session logout_timeout_ms) for its answer or the server's close; then the conn is STOPPED
 * with its in-memory credentials wiped, reporting nothing and never reconnecting (whatever
 * ended it). The caller wipes the stored credentials. WG_EPERM when not logged in (nothing
 * was sent: the device stays listed at WhatsApp), WG_ENOMEM, send errors. */
int wg_conn_logout(wg_conn_t *c);
/* 1 while that logout is under way. */
int wg_conn_leaving(const wg_conn_t *c);
/* Pairing code (§6) on the live registration connection. WG_EPERM when not waiting for a QR
 * scan; other errors of wg_session_pair_code. */
int wg_conn_pair_code(wg_conn_t *c, const char *phone, const char *code);
/* Sends a text to a user (bare JID "digits@s.whatsapp.net"), optionally quoting quoted_id:
 * device lists (usync), prekey bundles for devices without a session, one encryption per
 * device and per our own other devices (deviceSentMessage), the <message>; composing/paused
 * around it with autoTyping, and for delay_ms before the lookups start (the request's
 * "delay"). id_out (>= 23 bytes) gets the message id at once; send_done(token)
 * reports the outcome when the server acks (token 0: no report). WG_EPERM when not logged in,
 * WG_EINVAL for a bad JID or a group (not supported yet), other errors when nothing was sent. */
int wg_conn_send_text(wg_conn_t *c, const char *to, const char *text, const char *quoted_id,
                      uint32_t delay_ms, uint64_t token, char id_out[32]);
/* Presence: "available"/"unavailable", or chat state "composing"/"paused" to `to`. WG_EPERM
 * when not logged in, WG_EINVAL. */
int wg_conn_presence(wg_conn_t *c, const char *state, const char *to);
/* 1 when connected, logged in and the login steps are done (the instance is WORKING). */
int wg_conn_working(const wg_conn_t *c);
const char *wg_conn_id(const wg_conn_t *c);
void wg_conn_free(wg_conn_t *c);

/* The receive steps for one <message>, as the engine runs them (and bench/messages.c times
 * them): the Signal state changes staged on `stage` (the wg_signal_stage_new storage under
 * env->sig), wg_recv_message (decrypt, unpad, protobuf decode), then its event appended once to
 * instance_id's outbox (key r->key) and the staged state written, both in one store
 * transaction (wg_store_txn_begin: one commit). 0: all committed and *r filled; the caller
 * sends the reply r->reply asks for, then wg_recv_result_dispose(r). An error (storage,
 * memory): nothing committed, the staged state discarded, *r needs no dispose, and no reply
 * may be sent (the server re-delivers). */
int wg_conn_recv_commit(wg_store_t *st, const char *instance_id, wg_signal_storage_t *stage,
                        const wg_recv_env_t *env, const wg_node_t *node, wg_recv_result_t *r);
/* The receipt for a received message (type NULL: delivery; t 0: no t attribute). */
int wg_conn_receipt_build(const wg_stanza_msg_in_t *in, const char *type, int64_t t,
                          wg_node_t **out);

#endif
