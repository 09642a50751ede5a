/* test_api.c - render helpers and native request parsing. */
#include "api/native.h"
#include "api/render.h"
#include "test.h"
#include "util/err.h"

#include <string.h>

WG_TEST(api_render_time)
{
    char b[40];
    wg_render_time(1770120000123LL, b, sizeof(b));
    WG_CHECK_STR(b, "2026-02-03T12:00:00.123Z");
    wg_render_time(0, b, sizeof(b));
    WG_CHECK_STR(b, "1970-01-01T00:00:00.000Z");
}

WG_TEST(api_render_error_shape)
{
    json_t *e = wg_render_error("validation_error", "bad", "name");
    char *s = json_dumps(e, JSON_COMPACT | JSON_SORT_KEYS);
    WG_CHECK_STR(s, "{\"error\":{\"code\":\"validation_error\",\"field\":\"name\",\"message\":\"bad\"},"
                    "\"success\":false}");
    free(s);
    json_decref(e);
    e = wg_render_error("unauthorized", "no", NULL);
    WG_CHECK(json_is_null(json_object_get(json_object_get(e, "error"), "field")));
    json_decref(e);
}

WG_TEST(api_render_instance_hides_password)
{
    wg_instance_t in = {0};
    in.id = "inst_1";
    in.name = "n";
    in.status = "FAILED";
    in.webhook = "{\"url\":\"https://x\",\"events\":[\"qr.updated\"]}";
    in.settings = "{\"autoRead\":false}";
    in.proxy = "{\"host\":\"h\",\"port\":1,\"password\":\"secret\"}";
    json_t *o = wg_render_instance_native(&in, "tok");
    char *s = json_dumps(o, JSON_COMPACT);
    WG_CHECK(strstr(s, "secret") == NULL);
    WG_CHECK(strstr(s, "\"webhookUrl\":\"https://x\"") != NULL);
    WG_CHECK(strstr(s, "\"accessToken\":\"tok\"") != NULL);
    WG_CHECK(strstr(s, "\"qrCode\":null") != NULL);
    free(s);
    json_decref(o);
}

WG_TEST(api_native_parse_create)
{
    wg_core_err_t err = {0};
    json_t *root = NULL, *owned = NULL;
    wg_instance_spec_t spec;
    const char *body = "{\"name\":\"a\",\"phone\":\"+5511999999999\",\"settings\":{},"
                       "\"settings.autoRead\":true,\"webhookEvents\":[\"qr.updated\"]}";
    WG_CHECK_EQ_INT(wg_native_parse_body((const uint8_t *)body, strlen(body), &root, &err), 0);
    WG_CHECK_EQ_INT(wg_native_parse_create(root, &spec, &owned, &err), 0);
    WG_CHECK_STR(spec.name, "a");
    WG_CHECK_STR(spec.phone, "+5511999999999");
    WG_CHECK(owned != NULL && json_is_true(json_object_get(spec.settings, "autoRead")));
    WG_CHECK(json_is_array(spec.webhook_events));
    json_decref(owned);
    json_decref(root);

    const char *bad = "{\"name\":1}";
    WG_CHECK_EQ_INT(wg_native_parse_body((const uint8_t *)bad, strlen(bad), &root, &err), 0);
    WG_CHECK_EQ_INT(wg_native_parse_create(root, &spec, &owned, &err), WG_EINVAL);
    WG_CHECK_STR(err.field, "name");
    json_decref(root);
    WG_CHECK_EQ_INT(wg_native_parse_body((const uint8_t *)"[1]", 3, &root, &err), WG_EINVAL);
    WG_CHECK_EQ_INT(err.status, 400);
    WG_CHECK_STR(err.code, "invalid_json");
    WG_CHECK_EQ_INT(wg_native_parse_body((const uint8_t *)"", 0, &root, &err), WG_EINVAL);
}
