/* envelope.h - an outbox event in the shape of the dialect that created its instance
 * (docs/events.md "Envelopes per dialect"). Pure functions: no I/O, no clock (the event's own
 * creation time is used), no store.
 *
 * The outbox holds core events (message.received, connection.updated, ...) with core payloads.
 * At delivery time the dispatcher hands a row and the instance's identity to
 * wg_envelope_render(), which picks the renderer by the stored dialect string:
 *   native, enviaai (and anything unknown): {id, event, instanceId, seq, timestamp, data}
 *                                   (wg_webhook_render) + x-enviaai-signature;
 *   evolution: {event, instance, data, destination, date_time, sender, server_url, apikey},
 *              Evolution event names and Baileys-shaped data (messages.upsert, ...);
 *   wachat:    the Evolution envelope with the instance's apiInstanceName;
 *   hypersender: {event, data:{id, event, metadata, me, payload, instanceId, userId}}
 *              (WAHA-shaped payloads, as Hypersender's Laravel SDK fixtures show).
 * The renderers live here, not in api/, so the events layer depends on nothing above core
 * data; api/ only stores the dialect name. */
#ifndef WG_EVENTS_ENVELOPE_H
#define WG_EVENTS_ENVELOPE_H

#include "events/webhook.h"
#include "store/store.h"

#include <stddef.h>

/* What a renderer knows about the instance (copied from its row: the dispatcher keeps it while
 * the instance is idle, so instance.deleted still renders with the instance's name). */
typedef struct {
    char *id, *name, *api_name, *owner_id, *jid, *push_name, *phone;
    char dialect[24];
} wg_envelope_inst_t;

/* Copies the fields of row into *out (strings malloc'd). 0 or WG_ENOMEM (nothing kept). */
int wg_envelope_inst_from(const wg_instance_t *row, wg_envelope_inst_t *out);
void wg_envelope_inst_dispose(wg_envelope_inst_t *in);

#define WG_ENVELOPE_MAX_HEADERS 4

/* A rendered request. body malloc'd (NUL-terminated, len bytes): wg_envelope_dispose. */
typedef struct {
    char *body;
    size_t len;
    char event[64];    /* the event name in the dialect ("messages.upsert") */
    char url_part[64]; /* the byEvents URL segment ("messages-upsert" for Evolution) */
    int enviaai_sig;   /* also sign as x-enviaai-signature (native/EnviaAI instances) */
    struct {
        char name[32];
        char value[96];
    } hdr[WG_ENVELOPE_MAX_HEADERS]; /* dialect headers (Hypersender: x-instanceId, ...) */
    size_t nhdr;
} wg_envelope_t;

/* Renders row for the instance. server_url: this gateway's public base URL (Evolution's
 * server_url). cfg: the instance's webhook settings (destination). 0, WG_ENOMEM, or
 * WG_EINVAL when the row's payload is not a JSON object (never for rows core/ wrote). */
int wg_envelope_render(const wg_envelope_inst_t *in, const wg_webhook_cfg_t *cfg,
                       const char *server_url, const wg_outbox_row_t *row, wg_envelope_t *out);
void wg_envelope_dispose(wg_envelope_t *e);

/* The public base URL (Evolution's server_url, no trailing slash) into out: public_url
 * (WAGATE_PUBLIC_URL) when set, else "http://<listen host>:<port>" with a wildcard host
 * (0.0.0.0, [::], empty) written as localhost. */
void wg_envelope_server_url(const char *public_url, const char *listen, char *out, size_t cap);

/* The Evolution name of a core event ("message.received" -> "messages.upsert"); the core name
 * itself when Evolution has none. Static string. */
const char *wg_envelope_evolution_event(const char *core_event);

#endif
