/* recv.h - what one received <message> means (wa-protocol-messaging.md §2): parse the stanza,
 * decrypt every <enc> in document order (pkmsg/msg with the author's 1:1 session, skmsg with
 * the sender key of (chat, author)), unpad, decode the Message, store a carried sender-key
 * distribution, and describe the event to append plus the reply the server must get.
 *
 * Pure protocol logic: no sockets, no clock, no store of its own. The only side effects are
 * on the wg_signal_t (its storage), as decrypting must update the ratchets. The caller (conn.c)
 * appends the event with wg_store_event_append_once(key) and only then sends the reply
 * (receipt or retry receipt + ack), so a crash before the commit makes the server re-deliver,
 * and a re-delivery after the commit finds the same key (one event, same id).
 *
 * Events: name "message.received" (someone else wrote it) or "message.sent" (our own phone or
 * another of our devices wrote it), payload JSON {id, chat, from, fromMe, isGroup, timestamp,
 * pushName?, offline?, message{...wg_msg_to_json} | error{code, detail}}. A message we cannot
 * decrypt still gets its event, with "error" instead of "message" (never a silent drop), and a
 * retry receipt asks the sender to re-encrypt. Group messages are skipped (no event, normal
 * receipt) when groups_ignore is set; so are messages with nothing to show (a bare sender-key
 * distribution, protocol messages). */
#ifndef WG_WA_RECV_H
#define WG_WA_RECV_H

#include <stddef.h>
#include <stdint.h>

#include "wa/node.h"
#include "wa/signal.h"
#include "wa/stanza.h"

typedef struct {
    wg_signal_t *sig;
    const char *own_jid; /* our device JID "phone:N@s.whatsapp.net" */
    const char *own_lid; /* our LID device JID or NULL/"" */
    int groups_ignore;
} wg_recv_env_t;

typedef enum {
    WG_RECV_RECEIPT = 1, /* everything handled: send the normal receipt (type in receipt_type) */
    WG_RECV_RETRY,       /* a decryption failed: send a retry receipt, then a plain ack */
    WG_RECV_NACK,        /* a stanza we cannot read at all: <ack error=nack_code> */
} wg_recv_reply_t;

typedef struct {
    wg_stanza_msg_in_t in; /* the parsed stanza (pointers into the node) */
    wg_recv_reply_t reply;
    const char *receipt_type; /* NULL (delivery), "sender", "peer_msg" */
    int nack_code;            /* WG_RECV_NACK: 487 parse error, 488 no enc, 491 bad protobuf */
    const char *event;        /* NULL: nothing to append */
    char *payload;            /* JSON of the event (malloc'd) */
    char key[320];            /* dedupe key: "msg:" chat ":" id ":" author */
    int group_key_missing;    /* the retry is for an skmsg without a sender key */
    int has_text;             /* the message decoded to a text (read receipts) */
} wg_recv_result_t;

/* Handles one <message>. 0 with *out filled (dispose with wg_recv_result_dispose), or
 * WG_ENOMEM / WG_ESTORE (a storage failure: the caller must not reply, so the server
 * re-delivers). */
int wg_recv_message(const wg_recv_env_t *env, const wg_node_t *n, wg_recv_result_t *out);
void wg_recv_result_dispose(wg_recv_result_t *r);

/* The user part of a JID ("123" of "123:4@s.whatsapp.net") into buf; "" when none. */
void wg_recv_user_of(const char *jid, char *buf, size_t cap);

#endif
