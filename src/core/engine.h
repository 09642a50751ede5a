/* engine.h - the interface between the core and a WhatsApp engine.
 *
 * The engine runs instances (connections, pairing, messaging) and reports what happens back to
 * the core through `report`. The core calls start/stop/logout; they return quickly:
 *   start  0 = the engine took the instance (it will report STARTING/SCAN_QR_CODE/WORKING/FAILED
 *          later); negative = it cannot run it now, and `reason` (short snake_case) says why;
 *          the core then marks the instance FAILED with that reason.
 *   stop   forget the connection, keep credentials.  logout  unlink the device, wipe them.
 * Reports must be delivered on the thread that owns the core they are given to (the engine
 * posts them to that thread's loop); the core writes each status change and its event in one
 * transaction (wg_core_instance_set_status).
 *
 * wg_engine_unavailable_new() is the engine used until the real one exists: it answers every
 * start with "engine_unavailable" and never reports anything. */
#ifndef WG_CORE_ENGINE_H
#define WG_CORE_ENGINE_H

#include <stddef.h>
#include <stdint.h>

typedef struct wg_engine wg_engine_t;

typedef struct {
    const char *instance_id;
    const char *status; /* new status (WG_STATUS_*); NULL = no status change (a QR update) */
    const char *reason; /* NULL or snake_case reason */
    /* WORKING: the linked identity ("phone:N@s.whatsapp.net", digits, push name or NULL). */
    const char *jid, *phone, *push_name;
    /* A new QR (status SCAN_QR_CODE or NULL): its string and when it expires (ms, epoch). */
    const char *qr;
    long long qr_expires_at;
} wg_engine_report_t;

typedef void (*wg_engine_report_cb)(void *arg, const wg_engine_report_t *r);

typedef struct {
    const char *name;
    int (*start)(wg_engine_t *e, const char *instance_id, char *reason, size_t reason_cap);
    int (*stop)(wg_engine_t *e, const char *instance_id);
    int (*logout)(wg_engine_t *e, const char *instance_id);
    void (*free)(wg_engine_t *e);
    /* Optional (NULL = not supported). Any thread. The QR now shown for the instance: *code
     * malloc'd (caller frees), *expires_at ms since the epoch. WG_ENOTFOUND when none. */
    int (*qr)(wg_engine_t *e, const char *instance_id, char **code, long long *expires_at);
    /* Optional. Any thread. How many QR codes the instance has shown since it last showed none
     * (its current connect attempt: a link, a stop or a reconnect ends one); 0 when none now. */
    int (*qr_count)(wg_engine_t *e, const char *instance_id);
    /* Optional. Starts the pairing-code flow for `phone` (digits) on an instance that is
     * waiting to be paired; code[] receives "ABCD-EFGH". WG_EPERM when it is not waiting for
     * pairing, WG_EINVAL for a bad phone. */
    int (*pairing_code)(wg_engine_t *e, const char *instance_id, const char *phone, char code[16]);
    /* Optional. Where the last pairing code of the instance stands: 1 live (the server took
     * it; the phone may enter it now), 0 still being sent, WG_ECLOSED refused or lost. */
    int (*pairing_code_state)(wg_engine_t *e, const char *instance_id);
    /* Optional. Any thread; returns at once. Queues a text for `to` (a user's bare JID) on the
     * instance (quoted_id may be NULL), composing for delay_ms first; *token names the
     * outcome for send_result. 0, WG_EINVAL, WG_ENOMEM. */
    int (*send_text)(wg_engine_t *e, const char *instance_id, const char *to, const char *text,
                     const char *quoted_id, unsigned delay_ms, uint64_t *token);
    /* Optional. Any thread. 1 when the send ended (*rv: 0 acked by the server, WG_ENOTFOUND
     * not on WhatsApp, WG_EPERM instance not connected, others; msg_id set when known), 0
     * while under way, WG_ENOTFOUND for an unknown token. drop = 1 forgets the token. */
    int (*send_result)(wg_engine_t *e, uint64_t token, int *rv, char msg_id[32], int drop);
    /* Optional. Any thread. state "available"/"unavailable" (to NULL), or "composing"/"paused"
     * for the chat `to`. 0 queued, WG_EINVAL. */
    int (*presence)(wg_engine_t *e, const char *instance_id, const char *state, const char *to);
} wg_engine_ops_t;

struct wg_engine {
    const wg_engine_ops_t *ops;
    wg_engine_report_cb report; /* set by the core owner; may be NULL */
    void *report_arg;
};

wg_engine_t *wg_engine_unavailable_new(void);
void wg_engine_free(wg_engine_t *e);

#endif
