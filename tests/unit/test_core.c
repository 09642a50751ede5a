/* test_core.c - validation, plans, tokens, and the core against a temporary database with the
 * unavailable engine: create -> FAILED/engine_unavailable, auth kinds, visibility, limits. */
#include "core/core.h"
#include "core/plan.h"
#include "core/token.h"
#include "core/validate.h"
#include "test.h"
#include "util/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

WG_TEST(core_validate_url)
{
    WG_CHECK(wg_valid_http_url("https://myapp.com/webhooks/whatsapp"));
    WG_CHECK(wg_valid_http_url("http://127.0.0.1:8080/x?y=1#z"));
    WG_CHECK(wg_valid_http_url("HTTP://[::1]:80/"));
    WG_CHECK(wg_valid_http_url("http://a"));
    WG_CHECK(!wg_valid_http_url("ftp://a.com"));
    WG_CHECK(!wg_valid_http_url("http://"));
    WG_CHECK(!wg_valid_http_url("http:///path"));
    WG_CHECK(!wg_valid_http_url("http://a b.com"));
    WG_CHECK(!wg_valid_http_url("http://a.com:0"));
    WG_CHECK(!wg_valid_http_url("http://a.com:65536"));
    WG_CHECK(!wg_valid_http_url("http://a.com:"));
    WG_CHECK(!wg_valid_http_url("http://user:pw@a.com/"));
    WG_CHECK(!wg_valid_http_url("http://[]/"));
    WG_CHECK(!wg_valid_http_url("javascript:alert(1)"));
    WG_CHECK(!wg_valid_http_url(NULL));
}

WG_TEST(core_validate_e164_text_events_token)
{
    char out[20];
    WG_CHECK(wg_valid_e164("+5511999999999", out, sizeof(out)));
    WG_CHECK_STR(out, "+5511999999999");
    WG_CHECK(wg_valid_e164("14155550100", out, sizeof(out)));
    WG_CHECK_STR(out, "+14155550100");
    WG_CHECK(!wg_valid_e164("+0123456789", out, sizeof(out)));
    WG_CHECK(!wg_valid_e164("+1234567", out, sizeof(out)));
    WG_CHECK(!wg_valid_e164("+1234567890123456", out, sizeof(out)));
    WG_CHECK(!wg_valid_e164("+1 415 555", out, sizeof(out)));
    WG_CHECK(wg_valid_text("Sales WhatsApp", 50));
    WG_CHECK(wg_valid_text("\xc3\xa9", 1));
    WG_CHECK(!wg_valid_text("\xc3\xa9\xc3\xa9", 1));
    WG_CHECK(!wg_valid_text("", 50));
    WG_CHECK(!wg_valid_text("   ", 50));
    WG_CHECK(!wg_valid_text("a\tb", 50));
    WG_CHECK(!wg_valid_text("\xff", 50));
    WG_CHECK(wg_valid_event("message.received"));
    WG_CHECK(wg_valid_event("instance.deleted"));
    WG_CHECK(!wg_valid_event("message.exploded"));
    WG_CHECK(wg_valid_token("0123456789abcdef"));
    WG_CHECK(!wg_valid_token("0123456789abcde"));
    WG_CHECK(!wg_valid_token("0123456789 abcdef"));
}

WG_TEST(core_plans)
{
    wg_plans_t p;
    WG_CHECK_EQ_INT(wg_plans_parse(&p, NULL), 0);
    WG_CHECK_EQ_INT(wg_plan_limit(&p, "free"), 1);
    WG_CHECK_EQ_INT(wg_plan_limit(&p, "starter"), 3);
    WG_CHECK_EQ_INT(wg_plan_limit(&p, "pro"), 10);
    WG_CHECK_EQ_INT(wg_plan_limit(&p, "enterprise"), 0);
    WG_CHECK_EQ_INT(wg_plan_limit(&p, "gold"), -1);
    WG_CHECK_EQ_INT(wg_plans_parse(&p, "pro=20,free=2"), 0);
    WG_CHECK_EQ_INT(wg_plan_limit(&p, "pro"), 20);
    WG_CHECK_EQ_INT(wg_plan_limit(&p, "free"), 2);
    WG_CHECK_EQ_INT(wg_plans_parse(&p, "gold=1"), WG_EINVAL);
    WG_CHECK_EQ_INT(wg_plans_parse(&p, "free=-1"), WG_EINVAL);
    WG_CHECK_EQ_INT(wg_plans_parse(&p, "free="), WG_EINVAL);
    WG_CHECK_EQ_INT(wg_plans_parse(&p, "free"), WG_EINVAL);
}

WG_TEST(core_token_hash)
{
    char h[65];
    /* SHA-256("abc"), FIPS 180-2 appendix B.1 */
    wg_token_hash("abc", 3, h);
    WG_CHECK_STR(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    char h2[65];
    wg_token_hash("abd", 3, h2);
    WG_CHECK(wg_token_hash_equal(h, h));
    WG_CHECK(!wg_token_hash_equal(h, h2));
    WG_CHECK(!wg_token_hash_equal(h, "abc"));
    char *t1 = wg_token_new("wgk_"), *t2 = wg_token_new("wgk_");
    WG_CHECK(t1 && t2 && strlen(t1) == 68 && strcmp(t1, t2) != 0);
    free(t1);
    free(t2);
}

static void cleanup_db(const char *path)
{
    char p[300];
    unlink(path);
    snprintf(p, sizeof(p), "%s-wal", path);
    unlink(p);
    snprintf(p, sizeof(p), "%s-shm", path);
    unlink(p);
}

WG_TEST(core_lifecycle_with_unavailable_engine)
{
    char path[256];
    wg_config_t cfg;
    wg_core_t *c = NULL;
    wg_core_err_t err = {0};
    char *admin = NULL, *key = NULL, *itok = NULL;
    wg_account_t acc;
    wg_instance_t in;
    wg_auth_t a;
    snprintf(path, sizeof(path), "/tmp/wg_test_core_%d.db", (int)getpid());
    WG_CHECK_EQ_INT(wg_config_load(&cfg, NULL, NULL, NULL, 0), 0);
    free(cfg.db);
    cfg.db = strdup(path);
    wg_engine_t *eng = wg_engine_unavailable_new();
    WG_CHECK_EQ_INT(wg_core_new(&cfg, eng, &c), 0);
    WG_CHECK_EQ_INT(wg_core_bootstrap(c, &admin), 0);
    WG_CHECK(admin && strncmp(admin, "wga_", 4) == 0);
    WG_CHECK_EQ_INT(wg_core_authenticate(c, admin, &a, &err), 0);
    WG_CHECK_EQ_INT(a.kind, WG_AUTH_ADMIN);
    WG_CHECK_EQ_INT(wg_core_authenticate(c, "nope", &a, &err), WG_EPERM);
    WG_CHECK_EQ_INT(err.status, 401);

    WG_CHECK_EQ_INT(wg_core_account_create(c, "A", "free", &acc, &key, &err), 0);
    WG_CHECK_EQ_INT(wg_core_authenticate(c, key, &a, &err), 0);
    WG_CHECK_EQ_INT(a.kind, WG_AUTH_ACCOUNT);
    WG_CHECK_STR(a.account_id, acc.id);

    wg_instance_spec_t spec = {.owner_id = acc.id, .name = "one"};
    WG_CHECK_EQ_INT(wg_core_instance_create(c, &spec, &in, &itok, &err), 0);
    WG_CHECK_STR(in.status, "FAILED");
    WG_CHECK_STR(in.status_reason, "engine_unavailable");
    char iid[64];
    snprintf(iid, sizeof(iid), "%s", in.id);
    wg_instance_dispose(&in);

    spec.name = "two";
    char *t2 = NULL;
    WG_CHECK_EQ_INT(wg_core_instance_create(c, &spec, &in, &t2, &err), WG_ELIMIT);
    WG_CHECK_EQ_INT(err.status, 403);
    WG_CHECK_STR(err.code, "instance_limit_reached");
    WG_CHECK(t2 == NULL);

    wg_auth_t ia;
    WG_CHECK_EQ_INT(wg_core_authenticate(c, itok, &ia, &err), 0);
    WG_CHECK_EQ_INT(ia.kind, WG_AUTH_INSTANCE);
    WG_CHECK_STR(ia.instance_id, iid);
    WG_CHECK_EQ_INT(wg_core_instance_action(c, &ia, iid, WG_ACTION_STOP, &in, &err), 0);
    WG_CHECK_STR(in.status, "STOPPED");
    wg_instance_dispose(&in);
    WG_CHECK_EQ_INT(wg_core_instance_delete(c, &ia, iid, &err), WG_EPERM);
    wg_auth_t stranger = {.kind = WG_AUTH_ACCOUNT, .account_id = "acc_other"};
    WG_CHECK_EQ_INT(wg_core_instance_get(c, &stranger, iid, &in, &err), WG_ENOTFOUND);
    WG_CHECK_EQ_INT(err.status, 404);
    WG_CHECK_EQ_INT(wg_core_instance_delete(c, &a, iid, &err), 0);
    WG_CHECK_EQ_INT(wg_core_authenticate(c, itok, &ia, &err), WG_EPERM);

    wg_account_dispose(&acc);
    free(admin);
    free(key);
    free(itok);
    wg_core_free(c);
    /* a second core on the same database sees the stored admin key hash */
    WG_CHECK_EQ_INT(wg_core_new(&cfg, eng, &c), 0);
    WG_CHECK(c->admin_hash[0] != 0);
    WG_CHECK_EQ_INT(wg_core_bootstrap(c, &admin), 0);
    WG_CHECK(admin == NULL);
    wg_core_free(c);
    wg_engine_free(eng);
    wg_config_dispose(&cfg);
    cleanup_db(path);
}

WG_TEST(core_settings_and_proxy)
{
    wg_core_err_t err = {0};
    json_t *out = NULL;
    json_t *in = json_pack("{s:b, s:s}", "autoRead", 1, "msgCall", "hi");
    WG_CHECK_EQ_INT(wg_core_settings_merge(NULL, in, &out, &err), 0);
    WG_CHECK(json_is_true(json_object_get(out, "autoRead")));
    WG_CHECK(json_is_true(json_object_get(out, "autoTyping")));
    WG_CHECK(json_is_false(json_object_get(out, "rejectCall")));
    WG_CHECK_STR(json_string_value(json_object_get(out, "msgCall")), "hi");
    json_decref(in);
    json_decref(out);
    in = json_pack("{s:i}", "autoRead", 1);
    WG_CHECK_EQ_INT(wg_core_settings_merge(NULL, in, &out, &err), WG_EINVAL);
    WG_CHECK_STR(err.field, "settings.autoRead");
    json_decref(in);
    in = json_pack("{s:s, s:i}", "host", "h", "port", 65536);
    WG_CHECK_EQ_INT(wg_core_proxy_parse(in, &out, &err), WG_EINVAL);
    WG_CHECK_STR(err.field, "proxy.port");
    json_decref(in);
    in = json_pack("{s:s, s:s, s:i, s:s}", "protocol", "socks5", "host", "h", "port", 1080,
                   "password", "p");
    WG_CHECK_EQ_INT(wg_core_proxy_parse(in, &out, &err), 0);
    WG_CHECK_EQ_INT(json_integer_value(json_object_get(out, "port")), 1080);
    json_decref(in);
    json_decref(out);
}
