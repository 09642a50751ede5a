/* integrations.c - validation of the integrations an instance may carry besides its webhook:
 * event sinks (RabbitMQ, SQS, NATS) and Chatwoot (core.h). They are stored in the instance's
 * `sinks` and `chatwoot` columns; nothing delivers to them yet (docs/dialects.md), so these
 * functions only decide what is acceptable and write the canonical objects. */
#include "core/core.h"
#include "core/validate.h"
#include "util/err.h"

#include <stdio.h>
#include <string.h>

static const char *const sink_names[] = {"rabbitmq", "sqs", "nats"};
#define NSINKS (sizeof(sink_names) / sizeof(sink_names[0]))

static int oom(wg_core_err_t *err)
{
    wg_core_err_set(err, 500, "internal_error", NULL, "out of memory");
    return WG_ENOMEM;
}

/* One sink {enabled, events} -> canonical, into *out. */
static int parse_sink(const char *name, json_t *in, json_t **out, wg_core_err_t *err)
{
    char field[40];
    json_t *events = NULL;
    *out = NULL;
    if (!json_is_object(in)) {
        wg_core_err_set(err, 422, "validation_error", name, "%s must be an object", name);
        return WG_EINVAL;
    }
    json_t *en = json_object_get(in, "enabled"), *ev = json_object_get(in, "events");
    if (en && !json_is_null(en) && !json_is_boolean(en)) {
        snprintf(field, sizeof(field), "%s.enabled", name);
        wg_core_err_set(err, 422, "validation_error", field, "%s must be a boolean", field);
        return WG_EINVAL;
    }
    if (ev && !json_is_null(ev)) {
        int rv = wg_core_events_parse(ev, &events, err);
        if (rv) { /* the events parser names the webhook's field: name ours */
            snprintf(field, sizeof(field), "%s.events", name);
            snprintf(err->field, sizeof(err->field), "%s", field);
            err->code = "validation_error";
            return rv;
        }
    }
    *out = json_pack("{s:b, s:o}", "enabled", json_is_true(en), "events",
                     events ? events : json_array());
    return *out ? 0 : oom(err);
}

int wg_core_sinks_parse(json_t *in, json_t **out, wg_core_err_t *err)
{
    json_t *o = json_object();
    const char *k;
    json_t *v;
    *out = NULL;
    if (!o)
        return oom(err);
    if (in && !json_is_null(in) && !json_is_object(in)) {
        json_decref(o);
        wg_core_err_set(err, 422, "validation_error", "sinks", "sinks must be an object");
        return WG_EINVAL;
    }
    if (in && json_is_object(in))
        json_object_foreach(in, k, v)
        {
            size_t i;
            for (i = 0; i < NSINKS && strcmp(k, sink_names[i]); i++)
                ;
            if (i == NSINKS) {
                char field[64];
                snprintf(field, sizeof(field), "%.50s", k);
                json_decref(o);
                wg_core_err_set(err, 422, "validation_error", field,
                                "unknown event sink (rabbitmq, sqs or nats)");
                return WG_EINVAL;
            }
        }
    for (size_t i = 0; i < NSINKS; i++) {
        json_t *s = in && json_is_object(in) ? json_object_get(in, sink_names[i]) : NULL, *c;
        int rv = s && !json_is_null(s)
                     ? parse_sink(sink_names[i], s, &c, err)
                     : ((c = json_pack("{s:b, s:[]}", "enabled", 0, "events")) ? 0 : oom(err));
        if (rv) {
            json_decref(o);
            return rv;
        }
        json_object_set_new(o, sink_names[i], c);
    }
    *out = o;
    return 0;
}

/* ---- Chatwoot ---- */

static const char *const cw_required[] = {"accountId", "token", "url"};
static const struct {
    const char *key;
    int def; /* default of a boolean */
} cw_bools[] = {
    {"signMsg", 0},        {"reopenConversation", 0},  {"conversationPending", 0},
    {"importContacts", 1}, {"mergeBrazilContacts", 0}, {"importMessages", 1},
};
static const char *const cw_texts[] = {"nameInbox", "organization", "logo"};

static int present(json_t *v)
{
    return v && !json_is_null(v) && !(json_is_string(v) && !json_string_length(v));
}

static int cw_bad(wg_core_err_t *err, const char *key, const char *what)
{
    char field[64];
    snprintf(field, sizeof(field), "chatwoot.%s", key);
    wg_core_err_set(err, 422, "validation_error", field, "%s %s", field, what);
    return WG_EINVAL;
}

/* accountId, token, url: all present or none. 1 configured, 0 not, WG_EINVAL (err). */
static int cw_required_check(json_t *in, wg_core_err_t *err)
{
    char missing[64] = "", names[64] = "";
    int n = 0;
    for (size_t i = 0; i < 3; i++) {
        if (present(json_object_get(in, cw_required[i])))
            n++;
        else {
            size_t l = strlen(missing);
            snprintf(missing + l, sizeof(missing) - l, "%schatwoot.%s", l ? "," : "",
                     cw_required[i]);
            l = strlen(names);
            snprintf(names + l, sizeof(names) - l, "%s%s", l ? ", " : "", cw_required[i]);
        }
    }
    if (n == 0)
        return 0;
    if (n == 3)
        return 1;
    wg_core_err_set(err, 422, "validation_error", NULL,
                    "chatwoot needs accountId, token and url together; missing: %s", names);
    snprintf(err->field, sizeof(err->field), "%s", missing);
    return WG_EINVAL;
}

int wg_core_chatwoot_parse(json_t *in, const char *instance_name, json_t **out, wg_core_err_t *err)
{
    json_t *o = NULL, *v;
    char acc[32];
    *out = NULL;
    if (!in || json_is_null(in))
        return 0;
    if (!json_is_object(in)) {
        wg_core_err_set(err, 422, "validation_error", "chatwoot", "chatwoot must be an object");
        return WG_EINVAL;
    }
    int rv = cw_required_check(in, err);
    if (rv <= 0)
        return rv;
    /* accountId: Chatwoot's ids are integers; Evolution takes them as text */
    v = json_object_get(in, "accountId");
    if (json_is_integer(v) && json_integer_value(v) > 0)
        snprintf(acc, sizeof(acc), "%lld", (long long)json_integer_value(v));
    else if (json_is_string(v) && json_string_length(v) <= 20 &&
             strspn(json_string_value(v), "0123456789") == json_string_length(v))
        snprintf(acc, sizeof(acc), "%s", json_string_value(v));
    else
        return cw_bad(err, "accountId", "must be a positive integer (or its digits)");
    v = json_object_get(in, "token");
    if (!json_is_string(v) || !wg_valid_text(json_string_value(v), 256) ||
        strchr(json_string_value(v), ' '))
        return cw_bad(err, "token", "must be a text of at most 256 characters without spaces");
    v = json_object_get(in, "url");
    if (!json_is_string(v) || !wg_valid_http_url(json_string_value(v)))
        return cw_bad(err, "url", "must be an absolute http(s) URL");
    if (!(o = json_pack("{s:b, s:s, s:O, s:O}", "enabled", 1, "accountId", acc, "token",
                        json_object_get(in, "token"), "url", v)))
        return oom(err);
    for (size_t i = 0; i < sizeof(cw_bools) / sizeof(cw_bools[0]); i++) {
        v = json_object_get(in, cw_bools[i].key);
        if (v && !json_is_null(v) && !json_is_boolean(v)) {
            json_decref(o);
            return cw_bad(err, cw_bools[i].key, "must be a boolean");
        }
        json_object_set_new(
            o, cw_bools[i].key,
            json_boolean(v && !json_is_null(v) ? json_is_true(v) : cw_bools[i].def));
    }
    v = json_object_get(in, "daysLimitImportMessages");
    if (v && !json_is_null(v) &&
        (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 3650)) {
        json_decref(o);
        return cw_bad(err, "daysLimitImportMessages", "must be an integer from 0 to 3650");
    }
    json_object_set_new(o, "daysLimitImportMessages",
                        json_integer(v && !json_is_null(v) ? json_integer_value(v) : 60));
    for (size_t i = 0; i < sizeof(cw_texts) / sizeof(cw_texts[0]); i++) {
        v = json_object_get(in, cw_texts[i]);
        if (present(v) && (!json_is_string(v) || !wg_valid_text(json_string_value(v), 500))) {
            json_decref(o);
            return cw_bad(err, cw_texts[i], "must be a text of at most 500 characters");
        }
        if (present(v))
            json_object_set(o, cw_texts[i], v);
        else if (!strcmp(cw_texts[i], "nameInbox") && instance_name)
            json_object_set_new(o, "nameInbox", json_string(instance_name));
        else
            json_object_set_new(o, cw_texts[i], json_null());
    }
    const char *k;
    json_object_foreach(in, k, v)
    {
        if (!json_object_get(o, k)) {
            json_decref(o);
            return cw_bad(err, k, "is not a Chatwoot setting");
        }
    }
    *out = o;
    return 0;
}
