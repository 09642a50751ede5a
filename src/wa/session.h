/* session.h - the protocol logic of one connected WhatsApp companion, after the Noise handshake:
 * QR pairing, pairing code, pair-success, login, prekeys, passive/active, keepalive, stream
 * errors and failures. Pure: it consumes decoded nodes and the current (monotonic) time and
 * produces nodes to send and events through callbacks; no sockets, no clock, no store.
 *
 * Facts: wa-protocol-core.md §5 (pair-device refs, QR string, rotation 60 s then 20 s,
 * pair-success), §6 (link code), §7 (success, prekey count/upload, passive iq, keepalive,
 * stream errors, failure reasons, reconnect policy), §8 (keys). Also handled: server iq pings
 * (answered), notifications (acked), <ib><downgrade_webclient/> (FAILED), companion_reg_refresh
 * (§5.9: new adv secret, same ref re-rendered).
 *
 * Time: every entry point takes now_ms (monotonic milliseconds); the caller arms ONE timer for
 * wg_session_next_deadline() and calls wg_session_on_timer() when it fires.
 *
 * Callbacks may not free the session. `send` gets a node owned by the session (valid during the
 * call). `event` gets events in the order they must be acted on; a CREDS or PREKEYS event must
 * be persisted before the callback returns (the session sends what depends on it right after),
 * and a non-zero return aborts the operation: the entry point returns that error. After a CLOSE
 * event the session ignores all further input (wg_session_closed() is 1).
 *
 * Ownership: the session borrows the credentials record (it updates it in place on pairing and
 * before raising CREDS); it must outlive the session. */
#ifndef WG_WA_SESSION_H
#define WG_WA_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include "wa/creds.h"
#include "wa/node.h"

#define WG_SESSION_QR_FIRST_MS 60000u /* §5.4 */
#define WG_SESSION_QR_NEXT_MS 20000u
#define WG_SESSION_KEEPALIVE_MS 25000u         /* [W] 20-30 s; [B] 30 s */
#define WG_SESSION_KEEPALIVE_TIMEOUT_MS 20000u /* no answer to a ping: the link is dead */
#define WG_SESSION_PREKEYS_INITIAL 812u        /* first upload, server count 0 (§7.4) */
#define WG_SESSION_PREKEYS_BATCH 50u           /* later uploads ([W]) */
#define WG_SESSION_PREKEYS_MIN 5u              /* upload when the server has fewer */
#define WG_SESSION_PREKEY_MAX_ID 0xFFFFFFu     /* 24-bit ids */
/* login steps after <success> ([B]: 30 s for the prekey upload) */
#define WG_SESSION_LOGIN_TIMEOUT_MS 30000u
/* our own logout: how long the answer to remove-companion-device is waited for */
#define WG_SESSION_LOGOUT_TIMEOUT_MS 5000u

typedef struct wg_session_s wg_session_t;

typedef struct {
    uint32_t qr_first_ms, qr_next_ms; /* 0 = defaults above */
    uint32_t keepalive_ms, keepalive_timeout_ms;
    uint32_t prekeys_initial, prekeys_batch; /* 0 = defaults above */
    uint32_t login_timeout_ms;               /* 0 = WG_SESSION_LOGIN_TIMEOUT_MS */
    uint32_t logout_timeout_ms;              /* 0 = WG_SESSION_LOGOUT_TIMEOUT_MS */
    uint32_t next_prekey_id;                 /* first one-time prekey id not yet made (>= 1) */
    char qr_platform;                        /* §5.3 client type; 0 = '1' (Chrome) */
    const char *platform_display;            /* §6.5 "Browser (OS)"; NULL = "Chrome (Linux)" */
    uint32_t pbkdf2_iterations;              /* 0 = the real 2<<16 (tests only) */
} wg_session_config_t;

typedef enum {
    WG_SESSION_EV_QR = 1,    /* a new QR to show: qr, qr_valid_ms (also after a refresh) */
    WG_SESSION_EV_CREDS,     /* the record changed (paired, adv secret, lid): persist it */
    WG_SESSION_EV_PREKEYS,   /* new one-time prekeys: persist them before they are uploaded */
    WG_SESSION_EV_CONNECTED, /* <success>: logged in (creds->jid known); the login steps
                                follow: messages may arrive, but sending waits for READY */
    WG_SESSION_EV_READY,     /* the login steps are answered: prekey count, the upload when the
                                server had fewer than WG_SESSION_PREKEYS_MIN (its result, so
                                peers can build sessions with us), the passive iq. The instance
                                is WORKING from here. A failed or unanswered step (within
                                login_timeout_ms) is a CLOSE with RECONNECT_BACKOFF instead */
    WG_SESSION_EV_CLOSE,     /* the connection must end: close, reason */
    WG_SESSION_EV_LINK_CODE, /* the server answered companion_hello: link_ok 1 (the code is
                                live: the phone may enter it) or 0 (rejected) */
} wg_session_ev_type_t;

typedef enum {
    WG_SESSION_RECONNECT_NOW = 1, /* 515 restart required (after pairing) */
    WG_SESSION_RECONNECT_BACKOFF, /* 503, 500, stream end, keepalive timeout, a login step
                                     failed (prekey_count_failed, prekey_upload_failed,
                                     passive_failed) or unanswered (login_timeout) */
    WG_SESSION_STOP,              /* do not reconnect, keep credentials (qr_timeout, replaced,
                                     client_outdated, banned, ...): FAILED with reason */
    WG_SESSION_LOGGED_OUT,        /* 401/403/406 failure or device_removed: wipe credentials.
                                     Also the end of our own logout (wg_session_logout):
                                     "logout" (answered, or the server closed the stream),
                                     "logout_refused" (an iq error), "logout_unanswered" */
} wg_session_close_t;

typedef struct {
    uint32_t id;
    wg_keys_pair_t kp;
} wg_session_prekey_t;

typedef struct {
    wg_session_ev_type_t type;
    const char *qr;       /* EV_QR: the QR string (valid during the call) */
    uint32_t qr_valid_ms; /* EV_QR: how long it is shown */
    unsigned qr_index;    /* EV_QR: 0-based ref index; qr_count refs in all */
    unsigned qr_count;
    const wg_session_prekey_t *prekeys; /* EV_PREKEYS */
    size_t nprekeys;
    wg_session_close_t close; /* EV_CLOSE */
    const char *reason;       /* EV_CLOSE: snake_case ("qr_timeout", "logged_out", ...) */
    int link_ok;              /* EV_LINK_CODE */
} wg_session_event_t;

typedef struct {
    int (*send)(void *ud, const wg_node_t *node);
    int (*event)(void *ud, const wg_session_event_t *ev);
    void *ud;
} wg_session_cbs_t;

/* A session for a freshly established connection. cfg NULL = defaults. 0, WG_EINVAL, WG_ENOMEM,
 * WG_EIO (randomness for the iq id prefix). */
int wg_session_new(wg_session_t **out, wg_creds_t *creds, const wg_session_config_t *cfg,
                   const wg_session_cbs_t *cbs, uint64_t now_ms);
void wg_session_free(wg_session_t *s);

/* One received node. 0, or the error of a callback / WG_ENOMEM (the caller closes the
 * connection and reconnects with backoff). Unknown or malformed stanzas are logged and
 * ignored. */
int wg_session_handle(wg_session_t *s, const wg_node_t *node, uint64_t now_ms);

/* The earliest moment wg_session_on_timer must run (UINT64_MAX: none). */
uint64_t wg_session_next_deadline(const wg_session_t *s);
/* Runs what is due at now_ms (QR rotation/expiry, login timeout, keepalive ping/timeout). 0 or
 * an error. */
int wg_session_on_timer(wg_session_t *s, uint64_t now_ms);

/* Starts the pairing-code flow (§6): code is the 8-character code (wg_pair_code_new), phone
 * the account's number in digits. Sends companion_hello. WG_EINVAL (bad phone/code), WG_EPERM
 * (not waiting for pairing: no pair-device yet, or already paired), WG_EIO. */
int wg_session_pair_code(wg_session_t *s, const char *phone, const char *code, uint64_t now_ms);

/* Our own logout (wa-protocol-core.md; [B] logout, [W] Client.Logout): sends
 * <iq xmlns="md" type="set"><remove-companion-device jid=<our device JID>
 * reason="user_initiated"/></iq>, after which the session only waits for its answer (or the
 * server's close) for logout_timeout_ms and then raises CLOSE LOGGED_OUT; all other input is
 * ignored meanwhile. WG_EPERM when not logged in (<success> not received, or closed). */
int wg_session_logout(wg_session_t *s, uint64_t now_ms);

/* 1 once the server has sent pair-device and the session shows QRs (not paired yet). */
int wg_session_pairing(const wg_session_t *s);
/* 1 after a CLOSE event. */
int wg_session_closed(const wg_session_t *s);
/* 1 after <success> (CONNECTED): stanzas of a logged-in connection may be handled. */
int wg_session_logged_in(const wg_session_t *s);
/* 1 after READY: the login steps are done; sending is allowed. */
int wg_session_ready(const wg_session_t *s);

/* Builds the ClientPayload for this record: login when paired, else registration (§3.5,
 * §3.7). *out malloc'd. 0, WG_EINVAL, WG_ENOMEM. */
int wg_session_client_payload(const wg_creds_t *creds, const char *push_name, uint8_t **out,
                              size_t *len);

#endif
