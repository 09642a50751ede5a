/* sb_int.h - what the sandbox's files (sandbox.c, state.c, server.c, control.c) share: the
 * phone and device records, the persistent state, the server object and the calls the control
 * API makes into the server. Not a public header: nothing outside src/sandbox/ includes it.
 *
 * Ownership: the state owns every phone and device record (freed by wg_sandbox_state_close or
 * when a device is removed); the server owns its connections (wg_sandbox_conn_t, freed when
 * the WebSocket closes). A device points at its live login connection (or NULL) and that
 * connection points back; both pointers are cleared together by the server. */
#ifndef WG_SANDBOX_SB_INT_H
#define WG_SANDBOX_SB_INT_H

#include <stddef.h>
#include <stdint.h>

#include "wa/keys.h"
#include "wa/signal.h"

struct event_base;
struct evhttp_request;
typedef struct ssl_ctx_st SSL_CTX;

#define WG_SB_NUMBER_MAX 20 /* digits of a phone number */

typedef struct wg_sandbox_conn_s wg_sandbox_conn_t;

/* A simulated phone: the primary device of an account. */
typedef struct {
    char number[WG_SB_NUMBER_MAX + 1]; /* digits, e.g. "15550001111" */
    char push_name[64];
    char lid[24];           /* the account's LID user part (digits) */
    wg_keys_pair_t account; /* the phone's identity ("account") key pair */
    uint32_t next_device;   /* next companion device id (1, 2, ...) */
    int64_t created;
    struct wg_signal *signal; /* its Signal state, opened on first use (not persisted here) */
} wg_sandbox_phone_t;

/* A linked companion device. */
typedef struct {
    char number[WG_SB_NUMBER_MAX + 1];
    uint32_t id; /* N in number:N@s.whatsapp.net */
    uint8_t noise_pub[WG_KEYS_KEY_LEN];
    uint8_t identity_pub[WG_KEYS_KEY_LEN];
    uint32_t registration_id;
    char platform[64]; /* DeviceProps.os the companion sent */
    int64_t linked_at;
    wg_sandbox_conn_t *conn; /* live login connection, or NULL (not persisted) */
} wg_sandbox_device_t;

/* ---- state.c: SQLite-backed records (write-through; everything read back at open) ------- */

typedef struct wg_sandbox_state_s wg_sandbox_state_t;

/* Opens (creating) the state file. 0, WG_ESTORE (with a log line), WG_ENOMEM. */
int wg_sandbox_state_open(wg_sandbox_state_t **out, const char *path);
void wg_sandbox_state_close(wg_sandbox_state_t *st);
/* The sandbox root key pair: loaded, or generated and saved on first use. 0, WG_ESTORE, WG_EIO. */
int wg_sandbox_state_root_key(wg_sandbox_state_t *st, wg_keys_pair_t *root);

/* number: 1..20 digits, no leading 0 (WG_EINVAL); WG_EEXIST when known; push_name may be NULL.
 * *out (may be NULL) points at the record owned by st. */
int wg_sandbox_state_phone_add(wg_sandbox_state_t *st, const char *number, const char *push_name,
                               wg_sandbox_phone_t **out);
wg_sandbox_phone_t *wg_sandbox_state_phone_find(wg_sandbox_state_t *st, const char *number);
/* Takes the phone's next device id (persisted before it is returned). 0, WG_ESTORE. */
int wg_sandbox_state_phone_take_device(wg_sandbox_state_t *st, wg_sandbox_phone_t *p, uint32_t *id);
size_t wg_sandbox_state_phone_count(const wg_sandbox_state_t *st);
/* The i-th phone in creation order, or NULL. */
wg_sandbox_phone_t *wg_sandbox_state_phone_at(wg_sandbox_state_t *st, size_t i);

/* Records a linked device (copied from *d, conn ignored). 0, WG_EEXIST, WG_ESTORE, WG_ENOMEM.
 * *out (may be NULL) is the record owned by st. */
int wg_sandbox_state_device_add(wg_sandbox_state_t *st, const wg_sandbox_device_t *d,
                                wg_sandbox_device_t **out);
wg_sandbox_device_t *wg_sandbox_state_device_find(wg_sandbox_state_t *st, const char *number,
                                                  uint32_t id);
/* Unlinks and frees the record (and its prekeys). The caller has detached d->conn. */
int wg_sandbox_state_device_remove(wg_sandbox_state_t *st, wg_sandbox_device_t *d);
/* Iteration over all devices (index order is insertion order; removal shifts it). */
size_t wg_sandbox_state_device_count(const wg_sandbox_state_t *st);
wg_sandbox_device_t *wg_sandbox_state_device_at(wg_sandbox_state_t *st, size_t i);

/* Prekeys of a device (iq xmlns="encrypt"). */
typedef struct {
    uint32_t id; /* 24-bit */
    uint8_t pub[WG_KEYS_KEY_LEN];
} wg_sandbox_prekey_t;

/* Saves the registration id, identity, signed prekey and one-time prekeys of an upload in one
 * transaction (existing ids are replaced). 0, WG_ESTORE. */
int wg_sandbox_state_prekeys_put(wg_sandbox_state_t *st, const wg_sandbox_device_t *d,
                                 uint32_t registration_id, const uint8_t identity[WG_KEYS_KEY_LEN],
                                 uint32_t skey_id, const uint8_t skey_pub[WG_KEYS_KEY_LEN],
                                 const uint8_t skey_sig[WG_KEYS_SIG_LEN],
                                 const wg_sandbox_prekey_t *keys, size_t n);
/* One-time prekeys stored for the device. 0, WG_ESTORE. */
int wg_sandbox_state_prekey_count(wg_sandbox_state_t *st, const wg_sandbox_device_t *d, int *count);

/* ---- issue 5: phones' Signal state, offline queue, inbox, groups (state.c) -------------- */

struct wg_signal;
struct json_t;
/* The phone's Signal state over the state file (identity = the account key pair that signs
 * ADV identities; signed prekey id 1; registration id): made on first use, owned by p. */
int wg_sandbox_state_phone_signal(wg_sandbox_state_t *st, wg_sandbox_phone_t *p,
                                  struct wg_signal **out);
/* The phone's bundle with a fresh one-time prekey (each fetch hands out a new one). */
int wg_sandbox_state_phone_bundle(wg_sandbox_state_t *st, wg_sandbox_phone_t *p,
                                  wg_signal_bundle_t *b);
/* A companion's bundle from its upload, consuming its lowest one-time prekey (none left: no
 * <key>). WG_ENOTFOUND when it never uploaded. */
int wg_sandbox_state_device_bundle(wg_sandbox_state_t *st, const wg_sandbox_device_t *d,
                                   wg_signal_bundle_t *b);
/* The offline queue: encoded nodes per device, in order. take calls cb for each and deletes
 * them. */
typedef int (*wg_sandbox_offline_cb)(void *arg, const uint8_t *node, size_t len);
int wg_sandbox_state_offline_put(wg_sandbox_state_t *st, const char *number, uint32_t device,
                                 const uint8_t *node, size_t len);
int wg_sandbox_state_offline_take(wg_sandbox_state_t *st, const char *number, uint32_t device,
                                  wg_sandbox_offline_cb cb, void *arg, size_t *count);
int wg_sandbox_state_offline_count(wg_sandbox_state_t *st, const char *number, uint32_t device,
                                   int *count);
/* What a phone received: kind "message" or "call". */
int wg_sandbox_state_inbox_add(wg_sandbox_state_t *st, const char *number, const char *kind,
                               const char *id, const char *chat, const char *author,
                               const char *text, int64_t t);
/* [{id, from, author, text, t}] of kind, oldest first; NULL on failure. */
struct json_t *wg_sandbox_state_inbox_json(wg_sandbox_state_t *st, const char *number,
                                           const char *kind);
/* cb for each group's JID, oldest first (a non-zero return stops and is returned). */
typedef int (*wg_sandbox_group_cb)(void *arg, const char *jid);
int wg_sandbox_state_group_each(wg_sandbox_state_t *st, wg_sandbox_group_cb cb, void *arg);
/* What a phone sent (kept for resends after a retry receipt). get: *text malloc'd;
 * WG_ENOTFOUND. */
int wg_sandbox_state_sent_add(wg_sandbox_state_t *st, const char *number, const char *id,
                              const char *chat, const char *text);
int wg_sandbox_state_sent_get(wg_sandbox_state_t *st, const char *number, const char *id,
                              char *chat, size_t chat_cap, char **text);
/* Groups: participants is a comma-separated list of numbers (creator included). */
int wg_sandbox_state_group_add(wg_sandbox_state_t *st, const char *jid, const char *subject,
                               const char *creator, const char *participants);
int wg_sandbox_state_group_get(wg_sandbox_state_t *st, const char *jid, char *subject,
                               size_t subject_cap, char *creator, size_t creator_cap,
                               char *participants, size_t cap, int64_t *created);

/* ---- stanza.c: pure readers of client stanzas ------------------------------------------- */

#define WG_SANDBOX_MAX_PREKEYS 2000 /* Baileys uploads 812 at most, whatsmeow 812 */

struct wg_node;
/* A prekey upload (§7.4), checked. keys is malloc'd (dispose frees it). */
typedef struct {
    uint32_t registration_id;
    uint8_t identity[WG_KEYS_KEY_LEN];
    uint32_t skey_id;
    uint8_t skey_pub[WG_KEYS_KEY_LEN];
    uint8_t skey_sig[WG_KEYS_SIG_LEN];
    wg_sandbox_prekey_t *keys;
    size_t nkeys;
} wg_sandbox_upload_t;

/* Reads <registration>4</> <type>05</> <identity>32</> <list><key><id>3</><value>32</></key>…
 * </list> <skey><id>3</><value>32</><signature>64</></skey> (children of iq; bytes content with
 * exact sizes). 0; WG_EPROTO (missing or mis-sized part); WG_ETOOBIG (more than
 * WG_SANDBOX_MAX_PREKEYS keys); WG_ECRYPTO (the signed prekey's signature does not verify with
 * the identity key); WG_ENOMEM. On error *u holds nothing. */
int wg_sandbox_upload_parse(const struct wg_node *iq, wg_sandbox_upload_t *u);
void wg_sandbox_upload_dispose(wg_sandbox_upload_t *u);
/* Reads an <skey> (id 3, value 32, signature 64) and verifies its signature with identity.
 * 0, WG_EPROTO, WG_ECRYPTO. */
int wg_sandbox_skey_parse(const struct wg_node *skey, const uint8_t identity[WG_KEYS_KEY_LEN],
                          uint32_t *id, uint8_t pub[WG_KEYS_KEY_LEN], uint8_t sig[WG_KEYS_SIG_LEN]);

/* ---- server.c: the WhatsApp side ---------------------------------------------------------- */

typedef struct wg_sandbox_s wg_sandbox_t;

typedef struct {
    const char *listen;       /* WebSocket address */
    SSL_CTX *ssl_ctx;         /* NULL = ws:// */
    unsigned first_node_ms;   /* delay before the first post-handshake node (50) */
    unsigned pair_timeout_ms; /* scan / link-code wait for the companion (20000) */
    unsigned reg_lifetime_s;  /* a registration connection is closed after this (200) */
    unsigned idle_timeout_s;  /* a logged-in connection silent this long is closed (180; 0 off) */
} wg_sandbox_opts_t;

/* Starts the WebSocket side on base with the state (borrowed). 0, WG_EIO, WG_ENOMEM, ... */
int wg_sandbox_new(wg_sandbox_t **out, struct event_base *base, wg_sandbox_state_t *st,
                   const wg_sandbox_opts_t *opts);
void wg_sandbox_free(wg_sandbox_t *sb);
uint16_t wg_sandbox_port(const wg_sandbox_t *sb);
const wg_keys_pair_t *wg_sandbox_root(const wg_sandbox_t *sb);
wg_sandbox_state_t *wg_sandbox_state(wg_sandbox_t *sb);

/* The answer to a control request that the server finishes later (scan, link-code). The
 * control API gives a callback; the server calls it exactly once: status 200 with the device
 * JID, or a 4xx/5xx status with a message. If the HTTP request goes away first, the control
 * API calls wg_sandbox_cancel(ticket) and the callback is never called. */
typedef void (*wg_sandbox_done_cb)(void *arg, int status, const char *device_jid,
                                   const char *error);
typedef struct wg_sandbox_pending_s wg_sandbox_pending_t;

/* The phone scans qr (either form). Returns 0 and a ticket when the pair-success went out
 * (done follows), or a status (4xx) with *error set to a static message and no callback. */
int wg_sandbox_scan(wg_sandbox_t *sb, wg_sandbox_phone_t *p, const char *qr,
                    wg_sandbox_done_cb done, void *arg, wg_sandbox_pending_t **ticket,
                    const char **error);
/* The phone enters a pairing code. Same contract as wg_sandbox_scan. */
int wg_sandbox_link_code(wg_sandbox_t *sb, wg_sandbox_phone_t *p, const char *code,
                         wg_sandbox_done_cb done, void *arg, wg_sandbox_pending_t **ticket,
                         const char **error);
void wg_sandbox_cancel(wg_sandbox_t *sb, wg_sandbox_pending_t *ticket);
/* The phone logs d out: <stream:error code="401"><conflict type="device_removed"/> to a live
 * connection, then the record is removed. 0 or WG_ESTORE. */
int wg_sandbox_logout(wg_sandbox_t *sb, wg_sandbox_device_t *d);
/* Drops every WebSocket connection now. */
void wg_sandbox_drop_all(wg_sandbox_t *sb);
/* New WebSocket connections are refused (HTTP 503) for `seconds` from now (0 ends it). */
void wg_sandbox_refuse(wg_sandbox_t *sb, unsigned seconds);
/* Prekey upload faults (control/prekey-upload), for clients' tests of what they do before the
 * upload is acknowledged: answers to uploads are sent delay_ms after the upload (the keys are
 * stored at once), and the next `fail` uploads are refused with error 500 (nothing stored).
 * A negative argument leaves that setting as it is; *cur_* get the settings now in force. */
void wg_sandbox_upload_faults(wg_sandbox_t *sb, long delay_ms, long fail, unsigned *cur_delay_ms,
                              unsigned *cur_fail);
size_t wg_sandbox_connection_count(const wg_sandbox_t *sb);

/* Phone p sends text to `to` (a number, a user JID, or a group JID): encrypted for every
 * device of the recipient (every member's devices for a group, with the sender key
 * distribution) and, as a deviceSentMessage copy, for p's own companions. id gets the message
 * id. Returns an HTTP status (200; 400/404 with *error). */
int wg_sandbox_phone_send(wg_sandbox_t *sb, wg_sandbox_phone_t *p, const char *to, const char *text,
                          char id[24], const char **error);
/* Phone p rings `to` (a phone's number or user JID): <call><offer call-id call-creator> to its
 * companions; recorded as an outgoing "offer" in p's calls. Status as above. */
int wg_sandbox_phone_call(wg_sandbox_t *sb, wg_sandbox_phone_t *p, const char *to, char call_id[40],
                          const char **error);

/* ---- control.c: the HTTP control API ------------------------------------------------------ */

typedef struct wg_sandbox_control_s wg_sandbox_control_t;
/* Binds the control API ("host:port", port 0 = any). 0, WG_EINVAL, WG_EIO, WG_ENOMEM. */
int wg_sandbox_control_new(wg_sandbox_control_t **out, struct event_base *base, wg_sandbox_t *sb,
                           const char *listen);
uint16_t wg_sandbox_control_port(const wg_sandbox_control_t *c);
void wg_sandbox_control_free(wg_sandbox_control_t *c);

/* ---- helpers shared by the files (server.c) ------------------------------------------------ */

/* "number:id@s.whatsapp.net" into out (>= 48 bytes). */
void wg_sandbox_device_jid(const wg_sandbox_device_t *d, char *out, size_t cap);
/* Parses "number:id@s.whatsapp.net" (or "number.0:id@..."): 0 or WG_EINVAL. */
int wg_sandbox_parse_device_jid(const char *s, char number[WG_SB_NUMBER_MAX + 1], uint32_t *id);
/* 1 when s is 1..20 digits without a leading 0. */
int wg_sandbox_number_valid(const char *s);

#endif
