/* test_core_api_name.c - the core's generated api_name (Wachat's apiInstanceName) and lookup by
 * it, and WHATSAPP-BUSINESS credentials, against a temporary database with the unavailable
 * engine. */
#include "core/core.h"
#include "test.h"
#include "util/err.h"

#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void drop_db(const char *path)
{
    char p[300];
    unlink(path);
    snprintf(p, sizeof(p), "%s-wal", path);
    unlink(p);
    snprintf(p, sizeof(p), "%s-shm", path);
    unlink(p);
}

static int matches(const char *re, const char *s)
{
    regex_t rx;
    if (regcomp(&rx, re, REG_EXTENDED | REG_NOSUB) != 0)
        return 0;
    int ok = regexec(&rx, s, 0, NULL, 0) == 0;
    regfree(&rx);
    return ok;
}

/* Creates owner's instance `name` with a generated api_name; *api receives it. */
static int create(wg_core_t *c, const char *owner, const char *name, char *api, size_t cap)
{
    wg_instance_spec_t spec = {
        .owner_id = owner, .name = name, .api_name_auto = 1, .dialect = "wachat"};
    wg_instance_t in;
    wg_core_err_t err = {0};
    char *tok = NULL;
    int rv = wg_core_instance_create(c, &spec, &in, &tok, &err);
    if (rv == 0) {
        snprintf(api, cap, "%s", in.api_name ? in.api_name : "");
        wg_instance_dispose(&in);
    }
    free(tok);
    return rv;
}

WG_TEST(core_api_name_generated_unique_and_resolved)
{
    char path[256], a1[96], a2[96], a3[96], a4[96];
    wg_config_t cfg;
    wg_core_t *c = NULL;
    wg_core_err_t err = {0};
    wg_account_t acc, acc2;
    char *key = NULL, *key2 = NULL;
    wg_instance_t in;
    snprintf(path, sizeof(path), "/tmp/wg_test_apiname_%d.db", (int)getpid());
    WG_CHECK_EQ_INT(wg_config_load(&cfg, NULL, NULL, NULL, 0), 0);
    free(cfg.db);
    cfg.db = strdup(path);
    wg_engine_t *eng = wg_engine_unavailable_new();
    WG_CHECK_EQ_INT(wg_core_new(&cfg, eng, &c), 0);
    WG_CHECK_EQ_INT(wg_core_account_create(c, "A", "enterprise", &acc, &key, &err), 0);
    WG_CHECK_EQ_INT(wg_core_account_create(c, "B", "enterprise", &acc2, &key2, &err), 0);

    /* t<n>_<8 base36>_<slug>: n counts the owner's instances, the slug is the name lowered */
    WG_CHECK_EQ_INT(create(c, acc.id, "Store Jakarta!", a1, sizeof(a1)), 0);
    WG_CHECK(matches("^t1_[0-9a-z]{8}_store-jakarta$", a1));
    WG_CHECK_EQ_INT(create(c, acc.id, "__jakarta__store__", a2, sizeof(a2)), 0);
    WG_CHECK(matches("^t2_[0-9a-z]{8}_jakarta-store$", a2));
    WG_CHECK_EQ_INT(create(c, acc.id, "\xc3\xa9\xc3\xa9", a3, sizeof(a3)), 0);
    WG_CHECK(matches("^t3_[0-9a-z]{8}_instance$", a3)); /* nothing left of the name */
    WG_CHECK_EQ_INT(create(c, acc2.id, "Store Jakarta!", a4, sizeof(a4)), 0);
    WG_CHECK(matches("^t1_[0-9a-z]{8}_store-jakarta$", a4));
    WG_CHECK(strcmp(a1, a4) != 0);
    /* 50 characters of name: the slug keeps 40 */
    char longname[51], a5[96];
    memset(longname, 'x', 50);
    longname[50] = 0;
    WG_CHECK_EQ_INT(create(c, acc.id, longname, a5, sizeof(a5)), 0);
    WG_CHECK(matches("^t4_[0-9a-z]{8}_x{40}$", a5));

    /* lookup: the owner and the admin see it, another account does not, a token only its own */
    wg_auth_t owner = {.kind = WG_AUTH_ACCOUNT}, other = {.kind = WG_AUTH_ACCOUNT},
              admin = {.kind = WG_AUTH_ADMIN};
    snprintf(owner.account_id, sizeof(owner.account_id), "%s", acc.id);
    snprintf(other.account_id, sizeof(other.account_id), "%s", acc2.id);
    WG_CHECK_EQ_INT(wg_core_instance_by_api_name(c, &owner, a1, &in, &err), 0);
    WG_CHECK_STR(in.name, "Store Jakarta!");
    WG_CHECK_STR(in.dialect, "wachat");
    wg_auth_t tok = {.kind = WG_AUTH_INSTANCE};
    snprintf(tok.instance_id, sizeof(tok.instance_id), "%s", in.id);
    snprintf(tok.account_id, sizeof(tok.account_id), "%s", acc.id);
    wg_instance_dispose(&in);
    WG_CHECK_EQ_INT(wg_core_instance_by_api_name(c, &admin, a4, &in, &err), 0);
    wg_instance_dispose(&in);
    WG_CHECK_EQ_INT(wg_core_instance_by_api_name(c, &other, a1, &in, &err), WG_ENOTFOUND);
    WG_CHECK_EQ_INT(err.status, 404);
    WG_CHECK_EQ_INT(wg_core_instance_by_api_name(c, &owner, "Store Jakarta!", &in, &err),
                    WG_ENOTFOUND);
    WG_CHECK_EQ_INT(wg_core_instance_by_api_name(c, &tok, a1, &in, &err), 0);
    wg_instance_dispose(&in);
    WG_CHECK_EQ_INT(wg_core_instance_by_api_name(c, &tok, a2, &in, &err), WG_EPERM);
    WG_CHECK_EQ_INT(err.status, 401);
    WG_CHECK_EQ_INT(wg_core_instance_by_api_name(c, &tok, "t9_nothing_here", &in, &err), WG_EPERM);
    WG_CHECK_EQ_INT(wg_core_instance_by_api_name(c, &owner, "", &in, &err), WG_ENOTFOUND);

    wg_account_dispose(&acc);
    wg_account_dispose(&acc2);
    free(key);
    free(key2);
    wg_core_free(c);
    wg_engine_free(eng);
    wg_config_dispose(&cfg);
    drop_db(path);
}

WG_TEST(core_business_credentials)
{
    char path[256];
    wg_config_t cfg;
    wg_core_t *c = NULL;
    wg_core_err_t err = {0};
    wg_account_t acc;
    char *key = NULL, *tok = NULL;
    wg_instance_t in;
    snprintf(path, sizeof(path), "/tmp/wg_test_business_%d.db", (int)getpid());
    WG_CHECK_EQ_INT(wg_config_load(&cfg, NULL, NULL, NULL, 0), 0);
    free(cfg.db);
    cfg.db = strdup(path);
    wg_engine_t *eng = wg_engine_unavailable_new();
    WG_CHECK_EQ_INT(wg_core_new(&cfg, eng, &c), 0);
    WG_CHECK_EQ_INT(wg_core_account_create(c, "A", "enterprise", &acc, &key, &err), 0);

    json_t *biz = json_pack("{s:s, s:s}", "token", "EAAG", "businessId", "123");
    wg_instance_spec_t spec = {
        .owner_id = acc.id, .name = "biz", .integration = "WHATSAPP-BUSINESS", .business = biz};
    /* each key is required, by name */
    WG_CHECK_EQ_INT(wg_core_instance_create(c, &spec, &in, &tok, &err), WG_EINVAL);
    WG_CHECK_EQ_INT(err.status, 422);
    WG_CHECK_STR(err.field, "business.phoneNumberId");
    json_object_set_new(biz, "phoneNumberId", json_string("456"));
    json_object_set_new(biz, "token", json_string(""));
    WG_CHECK_EQ_INT(wg_core_instance_create(c, &spec, &in, &tok, &err), WG_EINVAL);
    WG_CHECK_STR(err.field, "business.token");
    json_object_set_new(biz, "token", json_integer(5));
    WG_CHECK_EQ_INT(wg_core_instance_create(c, &spec, &in, &tok, &err), WG_EINVAL);
    WG_CHECK_STR(err.field, "business.token");
    spec.business = NULL;
    WG_CHECK_EQ_INT(wg_core_instance_create(c, &spec, &in, &tok, &err), WG_EINVAL);
    WG_CHECK_STR(err.field, "business.token");

    /* stored in settings.business; the engine is never asked: FAILED with the reason */
    json_object_set_new(biz, "token", json_string("EAAG"));
    spec.business = biz;
    WG_CHECK_EQ_INT(wg_core_instance_create(c, &spec, &in, &tok, &err), 0);
    WG_CHECK_STR(in.status, "FAILED");
    WG_CHECK_STR(in.status_reason, "cloud_api_not_supported");
    json_t *s = json_loads(in.settings, 0, NULL);
    WG_CHECK_STR(json_string_value(json_object_get(json_object_get(s, "business"), "token")),
                 "EAAG");
    WG_CHECK_STR(
        json_string_value(json_object_get(json_object_get(s, "business"), "phoneNumberId")), "456");
    json_decref(s);
    char iid[64];
    snprintf(iid, sizeof(iid), "%s", in.id);
    wg_instance_dispose(&in);
    free(tok);
    tok = NULL;

    /* a settings patch keeps the credentials and cannot set them */
    wg_auth_t owner = {.kind = WG_AUTH_ACCOUNT};
    snprintf(owner.account_id, sizeof(owner.account_id), "%s", acc.id);
    json_t *patch = json_pack("{s:b}", "rejectCall", 1);
    wg_instance_patch_t p = {.settings = patch};
    WG_CHECK_EQ_INT(wg_core_instance_update(c, &owner, iid, &p, &in, &err), 0);
    s = json_loads(in.settings, 0, NULL);
    WG_CHECK(json_is_true(json_object_get(s, "rejectCall")));
    WG_CHECK_STR(json_string_value(json_object_get(json_object_get(s, "business"), "token")),
                 "EAAG");
    json_decref(s);
    wg_instance_dispose(&in);
    json_object_set_new(patch, "business", json_pack("{s:s}", "token", "x"));
    WG_CHECK_EQ_INT(wg_core_instance_update(c, &owner, iid, &p, &in, &err), WG_EINVAL);
    WG_CHECK_STR(err.field, "settings.business");
    json_decref(patch);

    /* restart: still not started */
    WG_CHECK_EQ_INT(wg_core_instance_action(c, &owner, iid, WG_ACTION_RESTART, &in, &err), 0);
    WG_CHECK_STR(in.status, "FAILED");
    WG_CHECK_STR(in.status_reason, "cloud_api_not_supported");
    wg_instance_dispose(&in);

    /* Baileys ignores the credentials */
    spec.integration = NULL;
    spec.name = "plain";
    WG_CHECK_EQ_INT(wg_core_instance_create(c, &spec, &in, &tok, &err), 0);
    s = json_loads(in.settings, 0, NULL);
    WG_CHECK(json_object_get(s, "business") == NULL);
    json_decref(s);
    WG_CHECK_STR(in.status_reason, "engine_unavailable");
    wg_instance_dispose(&in);
    free(tok);

    json_decref(biz);
    wg_account_dispose(&acc);
    free(key);
    wg_core_free(c);
    wg_engine_free(eng);
    wg_config_dispose(&cfg);
    drop_db(path);
}
