/* stanza.h - builders and parsers of the messaging stanzas (wa-protocol-messaging.md §2, §3,
 * §5): outgoing <message> with <participants> and <enc> (§3.5, §4.2), incoming <message> (§2.1,
 * §2.2), receipts (delivery, read, retry §2.8) in both directions, <ack> (§2.7), the usync
 * device-list query and result (§3.2), the prekey-bundle fetch and reply (§3.3), presence and
 * chat state, call offers and the call reject (§5).
 *
 * Pure: node trees in, node trees out; no I/O, no clock (times are arguments), no globals.
 * Builders return 0 and a new tree in *out (caller frees with wg_node_free), or WG_EINVAL /
 * WG_ENOMEM. Parsers read a tree that came from outside and never trust it: anything missing or
 * malformed gives WG_EPROTO (and no partial result to free). Strings and bytes in parse results
 * point into the node: they live as long as it does. Parsers that return arrays malloc them;
 * the caller frees the array with free() (the strings inside stay owned by the node). */
#ifndef WG_WA_STANZA_H
#define WG_WA_STANZA_H

#include <stddef.h>
#include <stdint.h>

#include "wa/node.h"
#include "wa/signal.h"

#define WG_STANZA_JID_MAX 128
#define WG_STANZA_MAX_ENC 8      /* <enc> children of one incoming <message> */
#define WG_STANZA_MAX_IDS 256    /* message ids in one incoming receipt */
#define WG_STANZA_MAX_DEVICES 64 /* devices of one user in a usync result */

/* ---- outgoing <message> (§3.5, §4.2) ---------------------------------------------------- */

typedef struct {
    const char *jid;       /* device JID */
    wg_signal_type_t type; /* PKMSG or MSG */
    const uint8_t *ct;
    size_t len;
} wg_stanza_to_t;

typedef struct {
    const char *id;
    const char *to;              /* chat: a user's bare JID or a group */
    const char *type;            /* "text", "media", "reaction", "poll", "event" */
    const char *mediatype;       /* set on every <enc> when non-NULL */
    const char *edit;            /* edit attribute ("1", "7", ...) or NULL */
    const char *addressing_mode; /* groups: "lid"/"pn" or NULL */
    const char *phash;           /* or NULL */
    const wg_stanza_to_t *to_devices;
    size_t n_to;
    const uint8_t *skmsg; /* groups: the SenderKeyMessage, or NULL */
    size_t skmsg_len;
    const uint8_t *device_identity; /* ADVSignedDeviceIdentity; required when any enc is pkmsg */
    size_t device_identity_len;
    /* Single-device forms. direct: the one enc of to_devices[0] goes straight under <message>
     * (no <participants>): a resend after a retry receipt (§3.7) or a peer message to our own
     * devices (§8). */
    int direct;
    const char *participant, *recipient; /* resend: copied from the retry receipt */
    int64_t t;                           /* resend: the original t (written when > 0) */
    uint32_t count;                      /* resend: count attribute on the enc (when > 0) */
    int no_fanout;                       /* resend to a non-group: device_fanout="false" */
    const char *category;                /* "peer": also adds <meta appdata="default"/> */
} wg_stanza_msg_out_t;

/* <message id to type [edit] [addressing_mode] [phash]><participants><to jid><enc v="2" type>…
 * </to>…</participants>[<enc v="2" type="skmsg">…</enc>][<device-identity>]</message>.
 * <participants> is left out when n_to is 0 (a group send to nobody new); <device-identity> is
 * written only when some enc is a pkmsg (WG_EINVAL if it is then missing).
 * direct (n_to must be 1, no skmsg): <message id to type [t] [participant] [recipient]
 * [category] [device_fanout="false"]>[<meta appdata="default"/>]<enc v="2" type [count]>…</enc>
 * [<device-identity>]</message>, to = the device or chat the caller names. */
int wg_stanza_message_build(const wg_stanza_msg_out_t *m, wg_node_t **out);

/* ---- incoming <message> (§2.1-2.3) ------------------------------------------------------ */

typedef struct {
    int type; /* wg_signal_type_t, or -1 for a type we do not handle (msmsg, frskmsg, ...) */
    int v;    /* the v attribute: 2 (3 is Armadillo: not for us) */
    const uint8_t *ct;
    size_t len;
    const char *mediatype; /* or NULL */
    uint32_t count;        /* retry count attribute, 0 when absent */
} wg_stanza_enc_t;

typedef struct {
    const char *id, *from, *type;
    const char *participant, *recipient, *notify, *category, *addressing_mode, *edit;
    const char *sender_lid, *sender_pn, *participant_lid, *participant_pn;
    int64_t t;
    int offline;
    int is_group;                 /* from a group or broadcast: author = participant */
    int from_me;                  /* sent by another of our own devices */
    char chat[WG_STANZA_JID_MAX]; /* the conversation (bare JID, or group) */
    const char *author;           /* device JID that wrote it (from or participant) */
    size_t n_enc;
    wg_stanza_enc_t enc[WG_STANZA_MAX_ENC];
    int unavailable; /* an <unavailable> child and no enc */
} wg_stanza_msg_in_t;

/* Reads a <message>. own_users: our user parts (phone number, LID user), NULL-terminated list
 * (may be NULL), to tell our other devices' copies apart (§2.1: chat = recipient then).
 * WG_EPROTO: not a message, no id/from, bad from JID, a group without participant, more than
 * WG_STANZA_MAX_ENC encs, an enc without bytes or with an unknown v. */
int wg_stanza_message_parse(const wg_node_t *n, const char *const *own_users,
                            wg_stanza_msg_in_t *out);

/* ---- receipts and acks (§2.7, §2.8, §5) ------------------------------------------------- */

typedef struct {
    const char *const *ids; /* ids[0] goes into id, the rest into <list><item id/></list> */
    size_t n_ids;
    const char *to, *participant, *recipient;
    const char *type; /* NULL (delivery), "read", "read-self", "played", "sender", "inactive",
                       * "peer_msg", "hist_sync" */
    int64_t t;        /* written as t when > 0 (read receipts carry it) */
} wg_stanza_receipt_t;

int wg_stanza_receipt_build(const wg_stanza_receipt_t *r, wg_node_t **out);

/* §2.8: <receipt id to [participant] [recipient] type="retry" [category="peer"]><retry count
 * id t v="1"/><registration>BE32</registration>[<keys>…</keys>]</receipt>. keys (when non-NULL)
 * is our own bundle with a freshly made one-time prekey (has_prekey must be set), plus the
 * device identity bytes. */
typedef struct {
    const char *id, *to, *participant, *recipient;
    int peer; /* category="peer" */
    uint32_t count;
    int64_t orig_t;
    uint32_t registration_id;
    const wg_signal_bundle_t *keys;
    const uint8_t *device_identity;
    size_t device_identity_len;
} wg_stanza_retry_t;

int wg_stanza_retry_build(const wg_stanza_retry_t *r, wg_node_t **out);

/* An incoming <receipt> (§5; §3.7 for type="retry"). */
typedef struct {
    const char *id, *from, *participant, *recipient, *type; /* type NULL = delivery */
    int64_t t;
    size_t n_ids; /* id first, then the <list> items */
    const char *ids[WG_STANZA_MAX_IDS];
    /* type="retry" */
    uint32_t retry_count;
    const char *retry_id;
    int64_t retry_t;
    uint32_t registration_id;
    int has_keys;
    wg_signal_bundle_t keys;
    const uint8_t *device_identity;
    size_t device_identity_len;
} wg_stanza_receipt_in_t;

int wg_stanza_receipt_parse(const wg_node_t *n, wg_stanza_receipt_in_t *out);

/* <ack class=<tag of n> id to=<from> [participant] [recipient] [type (not for messages)]
 * [error]> for the incoming stanza n (message, receipt, notification, call). error NULL for a
 * plain ack. WG_EPROTO when n has no id or from. */
int wg_stanza_ack_build(const wg_node_t *n, const char *error, wg_node_t **out);

/* ---- usync device list (§3.2) ----------------------------------------------------------- */

/* <iq xmlns="usync" type="get" to="@s.whatsapp.net"><usync sid mode="query" context="message"
 * last="true" index="0"><query><devices version="2"/>[<lid/>]</query><list><user jid/>…
 * </list></usync></iq>. The iq id is the caller's to add. */
int wg_stanza_usync_build(const char *sid, const char *const *users, size_t n, int with_lid,
                          wg_node_t **out);

typedef struct {
    uint32_t id;
    uint32_t key_index; /* 0 when absent */
    int has_key_index;
    int hosted;
} wg_stanza_device_t;

typedef struct {
    const char *jid;
    const char *lid; /* <lid val>, or NULL */
    int error;       /* the user had an <error> child instead of devices */
    size_t n_devices;
    wg_stanza_device_t devices[WG_STANZA_MAX_DEVICES];
} wg_stanza_usync_user_t;

/* Reads the result iq (or its <usync> child). *users malloc'd (free()), *n entries. */
int wg_stanza_usync_parse(const wg_node_t *n, wg_stanza_usync_user_t **users, size_t *count);

/* The device JID of device d of user (its bare JID): "user:d@server" (device 0: the bare JID),
 * hosted devices on "hosted" / "hosted.lid" (§3.2). 0, WG_EINVAL, WG_ETOOBIG. */
int wg_stanza_device_jid(const char *user_jid, const wg_stanza_device_t *d, char *buf, size_t cap);

/* ---- prekey bundles (§3.3) -------------------------------------------------------------- */

/* <iq xmlns="encrypt" type="get" to="@s.whatsapp.net"><key><user jid [reason="identity"]/>…
 * </key></iq>. */
int wg_stanza_prekey_fetch_build(const char *const *device_jids, size_t n, int reason_identity,
                                 wg_node_t **out);

typedef struct {
    const char *jid;
    int error; /* an <error> child: no bundle */
    wg_signal_bundle_t bundle;
} wg_stanza_bundle_t;

/* Reads the reply (<iq><list><user>… or the <list> itself); accepts keys wrapped in <keys> as
 * whatsmeow does. Exact sizes: registration 4, type 05, identity/values 32, ids 3, signature 64.
 * *bundles malloc'd (free()). */
int wg_stanza_prekey_fetch_parse(const wg_node_t *n, wg_stanza_bundle_t **bundles, size_t *count);

/* ---- encrypt notifications (§8) -------------------------------------------------------- */

typedef struct {
    int has_count; /* <count value=N/> from the server: prekeys left; upload when N < 5 */
    uint32_t count;
    int identity; /* <identity/> from a user: they re-registered, forget their sessions */
    const char *from;
} wg_stanza_encrypt_note_t;

/* Reads <notification type="encrypt" from>…</notification>. WG_EPROTO when it is not one, has
 * no from, or has neither child (or a count that is not a number). */
int wg_stanza_encrypt_note_parse(const wg_node_t *n, wg_stanza_encrypt_note_t *out);

/* ---- presence, chat state, calls (§5) --------------------------------------------------- */

/* <presence type="available"|"unavailable" [name]/>. */
int wg_stanza_presence_build(int available, const char *name, wg_node_t **out);
/* <presence type="subscribe" to/>. */
int wg_stanza_presence_subscribe_build(const char *to, wg_node_t **out);

typedef struct {
    const char *from;
    int available;    /* type absent or "available" */
    const char *last; /* "deny", a unix time, or NULL */
} wg_stanza_presence_in_t;
int wg_stanza_presence_parse(const wg_node_t *n, wg_stanza_presence_in_t *out);

/* <chatstate to [from]><composing [media="audio"]/> | <paused/></chatstate>. */
int wg_stanza_chatstate_build(const char *to, const char *from, int composing, int audio,
                              wg_node_t **out);

typedef struct {
    const char *from, *participant;
    int composing; /* 0: paused */
    int audio;
} wg_stanza_chatstate_in_t;
int wg_stanza_chatstate_parse(const wg_node_t *n, wg_stanza_chatstate_in_t *out);

typedef struct {
    const char *from, *id;
    int64_t t;
    const char *kind; /* offer, offer_notice, accept, preaccept, transport, terminate, reject… */
    const char *call_id, *call_creator, *caller_pn, *group_jid;
    int video;
} wg_stanza_call_t;
/* Reads a <call>: WG_EPROTO without from/id, a child, or call-id/call-creator on it. */
int wg_stanza_call_parse(const wg_node_t *n, wg_stanza_call_t *out);

/* <call id from=<own> to=<caller>><reject call-id call-creator count="0"/></call>. */
int wg_stanza_call_reject_build(const char *id, const char *own_jid, const char *caller,
                                const char *call_id, const char *call_creator, wg_node_t **out);

#endif
