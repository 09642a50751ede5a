/* account.c - accounts, their keys and the admin key; credential resolution.
 *
 * Keys are random 256-bit tokens shown once; only SHA-256 hex is stored. Resolution looks a
 * hash up by index, then compares the stored hash in constant time. Order: admin key, account
 * key, instance token. */
#include "core/core.h"
#include "core/token.h"
#include "core/validate.h"
#include "util/err.h"
#include "util/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void wg_core_err_set(wg_core_err_t *e, int status, const char *code, const char *field,
                     const char *fmt, ...)
{
    va_list ap;
    if (!e)
        return;
    e->status = status;
    e->code = code;
    snprintf(e->field, sizeof(e->field), "%s", field ? field : "");
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof(e->message), fmt, ap);
    va_end(ap);
}

static int internal(wg_core_err_t *err, int rv)
{
    if (rv == WG_ENOMEM)
        wg_core_err_set(err, 500, "internal_error", NULL, "out of memory");
    else
        wg_core_err_set(err, 500, "internal_error", NULL, "internal error (%s)", wg_strerror(rv));
    return rv;
}

int wg_core_new(const wg_config_t *cfg, wg_engine_t *engine, wg_core_t **out)
{
    wg_core_t *c = calloc(1, sizeof(*c));
    char *h = NULL;
    int rv;
    *out = NULL;
    if (!c)
        return WG_ENOMEM;
    c->cfg = cfg;
    c->engine = engine;
    if ((rv = wg_plans_parse(&c->plans, cfg->plan_limits)) != 0) {
        wg_log(WG_LOG_ERROR, "core", "bad WAGATE_PLAN_LIMITS=\"%s\"", cfg->plan_limits);
        goto out;
    }
    if ((rv = wg_store_open(cfg->db, &c->store)) != 0)
        goto out;
    if (cfg->admin_key && *cfg->admin_key) {
        wg_token_hash(cfg->admin_key, strlen(cfg->admin_key), c->admin_hash);
    } else if ((rv = wg_store_meta_get(c->store, "admin_key_hash", &h)) == 0) {
        snprintf(c->admin_hash, sizeof(c->admin_hash), "%s", h);
    } else if (rv != WG_ENOTFOUND)
        goto out;
    rv = 0;
    *out = c;
out:
    free(h);
    if (rv)
        wg_core_free(c);
    return rv;
}

void wg_core_free(wg_core_t *c)
{
    if (!c)
        return;
    wg_store_close(c->store);
    free(c);
}

int wg_core_bootstrap(wg_core_t *c, char **generated)
{
    wg_account_t a = {0};
    char *key = NULL;
    int rv;
    *generated = NULL;
    rv = wg_store_account_get(c->store, WG_ADMIN_ACCOUNT_ID, &a);
    wg_account_dispose(&a);
    if (rv == WG_ENOTFOUND) {
        wg_account_t adm = {.id = WG_ADMIN_ACCOUNT_ID, .name = "admin", .plan = "enterprise"};
        adm.created_at = adm.updated_at = wg_store_now_ms();
        rv = wg_store_account_insert(c->store, &adm, NULL);
        if (rv == WG_EEXIST)
            rv = 0;
    }
    if (rv)
        return rv;
    if (c->admin_hash[0])
        return 0;
    if (!(key = wg_token_new("wga_")))
        return WG_ENOMEM;
    char h[65];
    wg_token_hash(key, strlen(key), h);
    rv = wg_store_meta_insert(c->store, "admin_key_hash", h);
    if (rv == WG_EEXIST) { /* another process got there first: use its key */
        char *v = NULL;
        free(key);
        key = NULL;
        if ((rv = wg_store_meta_get(c->store, "admin_key_hash", &v)) == 0)
            snprintf(c->admin_hash, sizeof(c->admin_hash), "%s", v);
        free(v);
        return rv;
    }
    if (rv) {
        free(key);
        return rv;
    }
    memcpy(c->admin_hash, h, sizeof(h));
    *generated = key;
    return 0;
}

int wg_core_authenticate(wg_core_t *c, const char *token, wg_auth_t *out, wg_core_err_t *err)
{
    char h[65];
    int rv;
    memset(out, 0, sizeof(*out));
    if (!token || !*token || strlen(token) > 512) {
        wg_core_err_set(err, 401, "unauthorized", NULL, "missing or invalid credentials");
        return WG_EPERM;
    }
    wg_token_hash(token, strlen(token), h);
    if (c->admin_hash[0] && wg_token_hash_equal(h, c->admin_hash)) {
        out->kind = WG_AUTH_ADMIN;
        snprintf(out->account_id, sizeof(out->account_id), "%s", WG_ADMIN_ACCOUNT_ID);
        return 0;
    }
    wg_account_t a;
    rv = wg_store_account_by_key(c->store, h, &a);
    if (rv == 0) {
        int ok = wg_token_hash_equal(h, a.key_hash);
        if (ok) {
            out->kind = WG_AUTH_ACCOUNT;
            snprintf(out->account_id, sizeof(out->account_id), "%s", a.id);
        }
        wg_account_dispose(&a);
        if (ok)
            return 0;
    } else if (rv != WG_ENOTFOUND)
        return internal(err, rv);
    wg_instance_t in;
    rv = wg_store_instance_by_token(c->store, h, &in);
    if (rv == 0) {
        int ok = wg_token_hash_equal(h, in.token_hash);
        if (ok) {
            out->kind = WG_AUTH_INSTANCE;
            snprintf(out->account_id, sizeof(out->account_id), "%s", in.owner_id);
            snprintf(out->instance_id, sizeof(out->instance_id), "%s", in.id);
        }
        wg_instance_dispose(&in);
        if (ok)
            return 0;
    } else if (rv != WG_ENOTFOUND)
        return internal(err, rv);
    wg_core_err_set(err, 401, "unauthorized", NULL, "missing or invalid credentials");
    return WG_EPERM;
}

int64_t wg_core_plan_limit(const wg_core_t *c, const char *plan)
{
    return wg_plan_limit(&c->plans, plan);
}

static int check_plan(const char *plan, wg_core_err_t *err)
{
    if (wg_plan_index(plan) < 0) {
        wg_core_err_set(err, 422, "validation_error", "plan",
                        "plan must be one of free, starter, pro, enterprise");
        return WG_EINVAL;
    }
    return 0;
}

int wg_core_account_create(wg_core_t *c, const char *name, const char *plan, wg_account_t *out,
                           char **key, wg_core_err_t *err)
{
    int rv;
    char h[65];
    memset(out, 0, sizeof(*out));
    *key = NULL;
    if (!wg_valid_text(name, 100)) {
        wg_core_err_set(err, 422, "validation_error", "name",
                        "name is required (1 to 100 characters)");
        return WG_EINVAL;
    }
    if (!plan)
        plan = "free";
    if ((rv = check_plan(plan, err)) != 0)
        return rv;
    wg_account_t a = {.name = (char *)name, .plan = (char *)plan};
    a.id = wg_id_new("acc_", 12);
    *key = wg_token_new("wgk_");
    if (!a.id || !*key) {
        rv = internal(err, WG_ENOMEM);
        goto out;
    }
    wg_token_hash(*key, strlen(*key), h);
    a.created_at = a.updated_at = wg_store_now_ms();
    if ((rv = wg_store_account_insert(c->store, &a, h)) != 0 ||
        (rv = wg_store_account_get(c->store, a.id, out)) != 0) {
        internal(err, rv);
        goto out;
    }
    wg_log(WG_LOG_INFO, "core", "account=%s created plan=%s", a.id, plan);
out:
    free(a.id);
    if (rv) {
        free(*key);
        *key = NULL;
    }
    return rv;
}

int wg_core_account_update(wg_core_t *c, const char *id, const char *name, const char *plan,
                           wg_account_t *out, wg_core_err_t *err)
{
    int rv;
    memset(out, 0, sizeof(*out));
    if (name && !wg_valid_text(name, 100)) {
        wg_core_err_set(err, 422, "validation_error", "name", "name must be 1 to 100 characters");
        return WG_EINVAL;
    }
    if (plan && (rv = check_plan(plan, err)) != 0)
        return rv;
    rv = wg_store_account_update(c->store, id, name, plan);
    if (rv == WG_ENOTFOUND) {
        wg_core_err_set(err, 404, "not_found", NULL, "account not found");
        return rv;
    }
    if (rv || (rv = wg_store_account_get(c->store, id, out)) != 0)
        return internal(err, rv);
    wg_log(WG_LOG_INFO, "core", "account=%s updated plan=%s", id, out->plan);
    return 0;
}

int wg_core_account_rotate_key(wg_core_t *c, const char *id, char **key, wg_core_err_t *err)
{
    char h[65];
    int rv;
    if (!strcmp(id, WG_ADMIN_ACCOUNT_ID)) {
        wg_core_err_set(err, 422, "validation_error", "id",
                        "the built-in admin account uses the admin key");
        return WG_EINVAL;
    }
    if (!(*key = wg_token_new("wgk_")))
        return internal(err, WG_ENOMEM);
    wg_token_hash(*key, strlen(*key), h);
    rv = wg_store_account_set_key(c->store, id, h);
    if (rv) {
        free(*key);
        *key = NULL;
        if (rv == WG_ENOTFOUND) {
            wg_core_err_set(err, 404, "not_found", NULL, "account not found");
            return rv;
        }
        return internal(err, rv);
    }
    wg_log(WG_LOG_INFO, "core", "account=%s key rotated", id);
    return 0;
}
