/* render.h - JSON rendering helpers shared by the API dialects (native, evolution,
 * hypersender; wachat later): timestamps, JSON columns, the native instance object and the
 * native envelopes. Every function returns a new reference (caller json_decref()s) or NULL on
 * out-of-memory, and never takes ownership of its inputs unless it says "steals". */
#ifndef WG_API_RENDER_H
#define WG_API_RENDER_H

#include "core/core.h"
#include "store/store.h"

#include <jansson.h>
#include <stdint.h>

/* ISO-8601 UTC with milliseconds: "2026-02-03T12:00:00.000Z" (out >= 32 bytes). */
void wg_render_time(int64_t ms, char *out, size_t cap);
json_t *wg_render_time_json(int64_t ms);
/* A stored JSON column parsed back (NULL/invalid text gives JSON null). */
json_t *wg_render_json_column(const char *txt);
/* json_string or json_null for a NULL string. */
json_t *wg_render_str(const char *s);

/* Native instance object; access_token included only when non-NULL (at creation). The proxy
 * password is never rendered. */
json_t *wg_render_instance_native(const wg_instance_t *in, const char *access_token);
/* {"success":true,"data":data} (steals data). */
json_t *wg_render_ok(json_t *data);
/* {"success":false,"error":{"code","message","field"}} (field null when NULL or ""). */
json_t *wg_render_error(const char *code, const char *message, const char *field);

/* Status names per dialect for a core status (WG_STATUS_*): Evolution "open | connecting |
 * close", EnviaAI "connected | disconnected | connecting | qr_pending". Static strings. */
const char *wg_render_status_evolution(const char *status);
const char *wg_render_status_enviaai(const char *status);
/* "YYYY-MM-DDTHH:MM:SS" UTC, no fraction, no zone (Hypersender's created_at; out >= 24). */
void wg_render_time_plain(int64_t ms, char *out, size_t cap);

/* Evolution's error body {status, error:"<reason phrase>", response:{message:[msg]}}, also
 * Wachat's (its docs do not show errors; it is Evolution-like). */
json_t *wg_render_error_evolution(int status, const char *msg);
/* Evolution's (and Wachat's) success envelope {status:"SUCCESS", error:false,
 * response:{message:msg}} (logout, delete). */
json_t *wg_render_ok_evolution(const char *msg);

/* The QR the engine shows now for instance `id`: *code (the QR text) and *png_b64 (base64 PNG,
 * no "data:" prefix), both malloc'd (caller frees), *expires_ms its expiry. 0, or WG_ENOTFOUND
 * when no QR is shown, WG_ENOMEM. */
int wg_render_qr(wg_core_t *core, const char *id, char **code, char **png_b64,
                 int64_t *expires_ms);

#endif
