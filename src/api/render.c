/* render.c - see render.h. */
#include "api/render.h"

#include "qr/qr.h"
#include "util/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void wg_render_time(int64_t ms, char *out, size_t cap)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(out, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

json_t *wg_render_time_json(int64_t ms)
{
    char b[40];
    wg_render_time(ms, b, sizeof(b));
    return json_string(b);
}

json_t *wg_render_json_column(const char *txt)
{
    json_t *j = txt ? json_loads(txt, 0, NULL) : NULL;
    return j ? j : json_null();
}

json_t *wg_render_str(const char *s)
{
    return s ? json_string(s) : json_null();
}

json_t *wg_render_instance_native(const wg_instance_t *in, const char *access_token)
{
    json_t *wh = wg_render_json_column(in->webhook);
    json_t *url = json_object_get(wh, "url"), *events = json_object_get(wh, "events");
    json_t *proxy = wg_render_json_column(in->proxy);
    if (json_is_object(proxy))
        json_object_del(proxy, "password");
    json_t *settings = wg_render_json_column(in->settings);
    /* a WHATSAPP-BUSINESS token is a Meta credential: stored, never shown */
    json_object_del(json_object_get(settings, "business"), "token");
    json_t *o = json_pack(
        "{s:s, s:s, s:s, s:o, s:o, s:o, s:o, s:s, s:O, s:O, s:o, s:o, s:n, s:o, s:o}", "id",
        in->id, "name", in->name, "status", in->status, "statusReason",
        wg_render_str(in->status_reason), "phone", wg_render_str(in->phone), "profileName",
        wg_render_str(in->push_name), "profilePicUrl", wg_render_str(in->profile_pic_url),
        "integration", in->integration ? in->integration : "WHATSAPP-BAILEYS", "webhookUrl",
        url ? url : json_null(), "webhookEvents", events ? events : json_null(), "settings",
        settings, "proxy", proxy, "qrCode", "createdAt",
        wg_render_time_json(in->created_at), "updatedAt", wg_render_time_json(in->updated_at));
    json_decref(wh);
    if (o && access_token)
        json_object_set_new(o, "accessToken", json_string(access_token));
    return o;
}

json_t *wg_render_ok(json_t *data)
{
    return json_pack("{s:b, s:o}", "success", 1, "data", data ? data : json_null());
}

json_t *wg_render_error(const char *code, const char *message, const char *field)
{
    return json_pack("{s:b, s:{s:s, s:s, s:o}}", "success", 0, "error", "code", code, "message",
                     message, "field", field && *field ? json_string(field) : json_null());
}

const char *wg_render_status_evolution(const char *status)
{
    if (!strcmp(status, WG_STATUS_WORKING))
        return "open";
    if (!strcmp(status, WG_STATUS_STARTING) || !strcmp(status, WG_STATUS_SCAN_QR) ||
        !strcmp(status, WG_STATUS_PENDING))
        return "connecting";
    return "close";
}

const char *wg_render_status_enviaai(const char *status)
{
    if (!strcmp(status, WG_STATUS_WORKING))
        return "connected";
    if (!strcmp(status, WG_STATUS_SCAN_QR))
        return "qr_pending";
    if (!strcmp(status, WG_STATUS_STARTING) || !strcmp(status, WG_STATUS_PENDING))
        return "connecting";
    return "disconnected";
}

void wg_render_time_plain(int64_t ms, char *out, size_t cap)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(out, cap, "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

static const char *reason_phrase(int status)
{
    switch (status) {
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 413: return "Payload Too Large";
    case 429: return "Too Many Requests";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return status >= 500 ? "Internal Server Error" : "Error";
    }
}

json_t *wg_render_error_evolution(int status, const char *msg)
{
    return json_pack("{s:i, s:s, s:{s:[s]}}", "status", status, "error", reason_phrase(status),
                     "response", "message", msg);
}

json_t *wg_render_ok_evolution(const char *msg)
{
    return json_pack("{s:s, s:b, s:{s:s}}", "status", "SUCCESS", "error", 0, "response",
                     "message", msg);
}

int wg_render_qr(wg_core_t *core, const char *id, char **code, char **png_b64,
                 int64_t *expires_ms)
{
    long long exp = 0;
    *code = *png_b64 = NULL;
    if (!core->engine || !core->engine->ops->qr ||
        core->engine->ops->qr(core->engine, id, code, &exp) != 0)
        return WG_ENOTFOUND;
    if (!(*png_b64 = wg_qr_png_base64(*code, 0, -1, NULL))) {
        free(*code);
        *code = NULL;
        return WG_ENOMEM;
    }
    *expires_ms = exp;
    return 0;
}
