/* test_config.c - the config table: defaults, overrides, bounds, booleans. */
#include "test.h"
#include "util/config.h"
#include "util/err.h"

#include <string.h>

static const char *fake_env(const char *name, void *arg)
{
    const char **kv = arg;
    for (int i = 0; kv[i]; i += 2)
        if (!strcmp(kv[i], name))
            return kv[i + 1];
    return NULL;
}

WG_TEST(config_defaults)
{
    wg_config_t c;
    char err[128];
    const char *none[] = {NULL};
    WG_CHECK_EQ_INT(wg_config_load(&c, fake_env, none, err, sizeof(err)), 0);
    WG_CHECK_STR(c.listen, "0.0.0.0:8080");
    WG_CHECK_STR(c.db, "./wagate.db");
    WG_CHECK_STR(c.admin_key, "");
    WG_CHECK_STR(c.wa_url, "wss://web.whatsapp.com/ws/chat");
    WG_CHECK_STR(c.log_level, "info");
    WG_CHECK_EQ_INT(c.webhook_allow_private, 0);
    WG_CHECK_EQ_INT(c.http_body_limit, 1048576);
    WG_CHECK_EQ_INT(c.rate_create, 5);
    WG_CHECK_STR(c.plan_limits, "free=1,starter=3,pro=10,enterprise=0");
    wg_config_dispose(&c);
}

WG_TEST(config_overrides_and_bounds)
{
    wg_config_t c;
    char err[128];
    const char *env[] = {"WAGATE_LISTEN", "127.0.0.1:9", "WAGATE_WEBHOOK_ALLOW_PRIVATE", "true",
                         "WAGATE_HTTP_THREADS", "4", NULL};
    WG_CHECK_EQ_INT(wg_config_load(&c, fake_env, env, err, sizeof(err)), 0);
    WG_CHECK_STR(c.listen, "127.0.0.1:9");
    WG_CHECK_EQ_INT(c.webhook_allow_private, 1);
    WG_CHECK_EQ_INT(c.http_threads, 4);
    wg_config_dispose(&c);

    const char *bad1[] = {"WAGATE_HTTP_THREADS", "0", NULL};
    WG_CHECK_EQ_INT(wg_config_load(&c, fake_env, bad1, err, sizeof(err)), WG_EINVAL);
    WG_CHECK(strstr(err, "WAGATE_HTTP_THREADS") != NULL);
    const char *bad2[] = {"WAGATE_HTTP_BODY_LIMIT", "12abc", NULL};
    WG_CHECK_EQ_INT(wg_config_load(&c, fake_env, bad2, err, sizeof(err)), WG_EINVAL);
    const char *bad3[] = {"WAGATE_WEBHOOK_ALLOW_PRIVATE", "maybe", NULL};
    WG_CHECK_EQ_INT(wg_config_load(&c, fake_env, bad3, err, sizeof(err)), WG_EINVAL);
}

WG_TEST(config_table_complete)
{
    const char *must[] = {"WAGATE_LISTEN",      "WAGATE_DB",         "WAGATE_ADMIN_KEY",
                          "WAGATE_MASTER_KEY",  "WAGATE_WA_URL",     "WAGATE_WA_ROOT_KEY",
                          "WAGATE_WEBHOOK_ALLOW_PRIVATE", "WAGATE_WEBHOOK_CA", "WAGATE_LOG_LEVEL"};
    for (size_t i = 0; i < sizeof(must) / sizeof(must[0]); i++) {
        int found = 0;
        for (const wg_config_key_t *k = wg_config_keys(); k->name; k++)
            found |= !strcmp(k->name, must[i]);
        WG_CHECK(found);
    }
}
