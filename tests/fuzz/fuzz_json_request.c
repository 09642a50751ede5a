/* fuzz_json_request.c - request bodies through the native parser and the core validators:
 * create and patch parsing, settings merge, proxy and events checks, and rendering of the
 * result. Input: one byte selecting the path, then the body. */
#include "api/native.h"
#include "api/render.h"
#include "core/core.h"
#include "core/validate.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    wg_core_err_t err = {0};
    json_t *root = NULL, *owned = NULL, *out = NULL;
    if (size < 1)
        return 0;
    int mode = data[0] & 1;
    if (wg_native_parse_body(data + 1, size - 1, &root, &err) != 0)
        return 0;
    if (mode == 0) {
        wg_instance_spec_t spec;
        if (wg_native_parse_create(root, &spec, &owned, &err) == 0) {
            char e164[20];
            if (spec.phone)
                wg_valid_e164(spec.phone, e164, sizeof(e164));
            if (spec.webhook_url)
                wg_valid_http_url(spec.webhook_url);
            wg_valid_text(spec.name, 50);
            if (spec.token)
                wg_valid_token(spec.token);
            if (wg_core_settings_merge(NULL, spec.settings, &out, &err) == 0) {
                char *s = json_dumps(out, JSON_COMPACT);
                json_t *again = NULL;
                json_t *back = s ? json_loads(s, 0, NULL) : NULL;
                /* stored settings re-merge to the same object */
                if (back && wg_core_settings_merge(back, NULL, &again, &err) == 0) {
                    if (!json_equal(again, out))
                        abort();
                    json_decref(again);
                }
                json_decref(back);
                free(s);
                json_decref(out);
                out = NULL;
            }
            if (wg_core_proxy_parse(spec.proxy, &out, &err) == 0)
                json_decref(out);
            out = NULL;
            if (spec.webhook_events && wg_core_events_parse(spec.webhook_events, &out, &err) == 0)
                json_decref(out);
        }
    } else {
        wg_instance_patch_t p;
        if (wg_native_parse_patch(root, &p, &err) == 0 && p.settings &&
            wg_core_settings_merge(NULL, p.settings, &out, &err) == 0)
            json_decref(out);
    }
    json_t *e = wg_render_error(err.code ? err.code : "x", err.message, err.field);
    json_decref(e);
    json_decref(owned);
    json_decref(root);
    return 0;
}
