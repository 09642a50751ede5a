/* send.h - the rules for sending a text and setting presence, shared by every dialect.
 *
 * A dialect adapter parses its own body into wg_core_send_text_t (type errors of its own JSON
 * are its business), then calls wg_core_send_text: the core normalises the recipient (phone
 * number or JID -> JID), bounds the text and the delay, checks that the engine can send and
 * that the instance is WORKING, and queues the text on the engine. The engine answers later
 * (the server's ack): poll wg_core_send_result until it says the send ended, or give up and
 * call it with drop = 1. HTTP adapters do not poll themselves: wg_dialect_send_text
 * (api/dialect.h) defers the response and calls the adapter's renderer once the outcome is
 * known.
 *
 * Errors (wg_core_err_t, as in core.h):
 *   422 validation_error  field "to"    (not a phone number in international format or a JID)
 *                          field "text"  (missing, empty or over 64 KiB)
 *                          field "delay" (not an integer of milliseconds 0..20000)
 *                          field "presence" / "to" for wg_core_send_presence
 *   503 engine_unavailable       the engine cannot send
 *   409 instance_not_connected   status is not WORKING (at queue time or when the engine tried)
 *   404 not_on_whatsapp   field "to"   the number is not on WhatsApp / the group does not exist
 *   504 send_timeout             no server ack in time (only when final)
 *   502 send_failed              anything else the engine reported
 *   500 internal_error           could not queue */
#ifndef WG_CORE_SEND_H
#define WG_CORE_SEND_H

#include "core/core.h"

#include <stdint.h>

#define WG_SEND_MAX_TEXT 65536     /* bytes */
#define WG_SEND_MAX_DELAY_MS 20000 /* composing shown before the text */
#define WG_SEND_WAIT_MS 30000      /* how long an adapter waits for the ack, delay excluded */

typedef struct {
    const char *to;   /* "+49 151 234…" / "49151234…" / "…@s.whatsapp.net" / "…@g.us" */
    const char *text; /* UTF-8 */
    const char *quoted_id; /* NULL or "": no quote */
    json_t *delay;         /* NULL or JSON null: none; else an integer of ms (borrowed) */
} wg_core_send_text_t;

/* A queued send. token names the engine's outcome; to is the normalised chat JID. */
typedef struct {
    uint64_t token;
    char to[160];
    unsigned delay_ms;
    int64_t queued_at; /* ms since the epoch */
} wg_core_send_t;

/* The outcome of an acked send. */
typedef struct {
    char message_id[32]; /* WhatsApp message id ("3EB0…") */
    int64_t acked_at;    /* ms since the epoch, when wagate saw the ack */
} wg_core_sent_t;

/* Recipient as a JID: "+49 151 234" / "49-151-234" -> "49151234@s.whatsapp.net" (at least 5
 * digits); "N@c.us" -> "N@s.whatsapp.net"; any other JID is kept as given (no spaces).
 * 0 or WG_EINVAL. */
int wg_core_send_to_jid(const char *in, char *out, size_t cap);

/* Validates m for instance `in` (loaded by the caller for its credential) and queues the text.
 * 0 with *out filled (then the caller must end it with wg_core_send_result ... drop = 1), or a
 * negative WG_E* with err set (nothing queued). */
int wg_core_send_text(wg_core_t *c, const wg_instance_t *in, const wg_core_send_text_t *m,
                      wg_core_send_t *out, wg_core_err_t *err);

/* Where send s stands. With final = 1 a send still under way ends as 504 send_timeout.
 *   1  acked by the server: *sent filled
 *   0  still under way (final = 0 only)
 *   negative WG_E*: the send failed, err set (404 not_on_whatsapp, 409, 422 "to", 502, 504).
 * Does not release the engine's record: call wg_core_send_drop once done. */
int wg_core_send_result(wg_core_t *c, const wg_core_send_t *s, int final, wg_core_sent_t *sent,
                        wg_core_err_t *err);
/* Forgets the engine's record of send s (always call once, when done with it). */
void wg_core_send_drop(wg_core_t *c, const wg_core_send_t *s);

/* ---- queued sends (Hypersender v2: the answer names the send; its outcome is asked later) ----
 * Queued sends live in one process-wide table (a later request about one may land on any
 * worker thread), in memory only: a restart forgets them. At most WG_SEND_QUEUE_MAX entries
 * (the oldest go first) for at most WG_SEND_QUEUE_TTL_MS after they ended. Outcomes are settled
 * when asked for and whenever another send is queued, so the engine's records are released
 * even for sends nobody asks about. */
#define WG_SEND_QUEUE_MAX 10000
#define WG_SEND_QUEUE_TTL_MS (24LL * 3600 * 1000)

typedef enum { WG_QUEUED_PENDING = 0, WG_QUEUED_SENT, WG_QUEUED_FAILED } wg_queued_state_t;

typedef struct {
    char id[40]; /* UUID v4 */
    char instance_id[64];
    char *request; /* the request as the caller gave it (JSON text); malloc'd */
    wg_core_send_t send;
    wg_queued_state_t state;
    wg_core_sent_t sent; /* SENT */
    wg_core_err_t err;   /* FAILED (as wg_core_send_result reports it) */
    int64_t ended_at;    /* ms since the epoch; SENT and FAILED */
} wg_core_queued_t;

/* Validates and queues m exactly as wg_core_send_text (same errors, nothing kept on failure),
 * then keeps the send under a new UUID written to id. request (JSON text) is copied. */
int wg_core_send_enqueue(wg_core_t *c, const wg_instance_t *in, const wg_core_send_text_t *m,
                         const char *request, char id[40], wg_core_err_t *err);
/* A copy of queued send `id` of instance instance_id, settled first (an acked or failed send
 * ends; one older than WG_SEND_WAIT_MS plus its delay ends as 504 send_timeout). 0, or
 * WG_ENOTFOUND with err 404 not_found (no such id for that instance), WG_ENOMEM. Dispose the
 * copy with wg_core_queued_dispose. */
int wg_core_send_queued(wg_core_t *c, const char *instance_id, const char *id,
                        wg_core_queued_t *out, wg_core_err_t *err);
void wg_core_queued_dispose(wg_core_queued_t *q);

/* Presence of instance `in`: "available" / "unavailable" (to ignored), or "composing" /
 * "paused" in the chat `to` (required; phone number or JID). Checks the engine and WORKING as
 * wg_core_send_text does, then queues it. 0 or a negative WG_E* with err set. */
int wg_core_send_presence(wg_core_t *c, const wg_instance_t *in, const char *state, const char *to,
                          wg_core_err_t *err);

#endif
