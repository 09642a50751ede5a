/* test_store.c - the SQLite store: migrations, accounts, instances with plan limits and
 * uniqueness, status changes with their outbox events in one transaction, deletion. */
#include "store/store.h"
#include "test.h"
#include "util/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static wg_store_t *open_tmp(char *path, size_t cap)
{
    wg_store_t *st = NULL;
    snprintf(path, cap, "/tmp/wg_test_store_%d_%ld.db", (int)getpid(), random());
    if (wg_store_open(path, &st) != 0)
        return NULL;
    return st;
}

static void rm_db(const char *path)
{
    char p[300];
    unlink(path);
    snprintf(p, sizeof(p), "%s-wal", path);
    unlink(p);
    snprintf(p, sizeof(p), "%s-shm", path);
    unlink(p);
}

static int mk_inst(wg_store_t *st, const char *id, const char *owner, const char *name,
                   const char *hash, int64_t limit, const char **conflict)
{
    wg_instance_t in = {0};
    in.id = (char *)id;
    in.owner_id = (char *)owner;
    in.name = (char *)name;
    in.status = "STARTING";
    in.created_at = in.updated_at = wg_store_now_ms();
    wg_store_event_t ev = {"connection.updated", "{\"status\":\"STARTING\"}"};
    return wg_store_instance_insert(st, &in, hash, limit, &ev, conflict);
}

WG_TEST(store_open_migrate_reopen)
{
    char path[256];
    wg_store_t *st = open_tmp(path, sizeof(path));
    WG_CHECK(st != NULL);
    WG_CHECK_EQ_INT(wg_store_schema_version(st), 5);
    wg_store_close(st);
    WG_CHECK_EQ_INT(wg_store_open(path, &st), 0);
    WG_CHECK_EQ_INT(wg_store_schema_version(st), 5);
    wg_store_close(st);
    rm_db(path);
    WG_CHECK_EQ_INT(wg_store_open("postgresql://x/y", &st), WG_EINVAL);
    WG_CHECK_EQ_INT(wg_store_open("/nonexistent-dir/x.db", &st), WG_ESTORE);
}

WG_TEST(store_meta_first_writer_wins)
{
    char path[256], *v = NULL;
    wg_store_t *st = open_tmp(path, sizeof(path));
    WG_CHECK(st != NULL);
    WG_CHECK_EQ_INT(wg_store_meta_get(st, "k", &v), WG_ENOTFOUND);
    WG_CHECK_EQ_INT(wg_store_meta_insert(st, "k", "one"), 0);
    WG_CHECK_EQ_INT(wg_store_meta_insert(st, "k", "two"), WG_EEXIST);
    WG_CHECK_EQ_INT(wg_store_meta_get(st, "k", &v), 0);
    WG_CHECK_STR(v, "one");
    free(v);
    wg_store_close(st);
    rm_db(path);
}

WG_TEST(store_accounts)
{
    char path[256];
    wg_store_t *st = open_tmp(path, sizeof(path));
    wg_account_t a = {.id = "acc_1", .name = "A", .plan = "free", .created_at = 1, .updated_at = 1};
    wg_account_t got;
    WG_CHECK(st != NULL);
    WG_CHECK_EQ_INT(wg_store_account_insert(st, &a, "h1"), 0);
    WG_CHECK_EQ_INT(wg_store_account_insert(st, &a, "h2"), WG_EEXIST);
    WG_CHECK_EQ_INT(wg_store_account_by_key(st, "h1", &got), 0);
    WG_CHECK_STR(got.id, "acc_1");
    WG_CHECK_STR(got.key_hash, "h1");
    wg_account_dispose(&got);
    WG_CHECK_EQ_INT(wg_store_account_set_key(st, "acc_1", "h3"), 0);
    WG_CHECK_EQ_INT(wg_store_account_by_key(st, "h1", &got), WG_ENOTFOUND);
    WG_CHECK_EQ_INT(wg_store_account_update(st, "acc_1", NULL, "pro"), 0);
    WG_CHECK_EQ_INT(wg_store_account_update(st, "acc_x", NULL, "pro"), WG_ENOTFOUND);
    wg_account_t *v;
    size_t n;
    WG_CHECK_EQ_INT(wg_store_account_list(st, &v, &n), 0);
    WG_CHECK_EQ_INT(n, 1);
    WG_CHECK_STR(v[0].plan, "pro");
    WG_CHECK_STR(v[0].name, "A");
    wg_account_list_free(v, n);
    wg_store_close(st);
    rm_db(path);
}

WG_TEST(store_instances_limit_unique_events)
{
    char path[256];
    const char *conflict;
    wg_store_t *st = open_tmp(path, sizeof(path));
    wg_account_t a = {.id = "acc_1", .name = "A", .plan = "free", .created_at = 1, .updated_at = 1};
    WG_CHECK(st != NULL);
    WG_CHECK_EQ_INT(wg_store_account_insert(st, &a, NULL), 0);
    WG_CHECK_EQ_INT(mk_inst(st, "i1", "acc_1", "n1", "t1", 2, &conflict), 0);
    WG_CHECK_EQ_INT(mk_inst(st, "i2", "acc_1", "n1", "t2", 2, &conflict), WG_EEXIST);
    WG_CHECK_STR(conflict, "name");
    WG_CHECK_EQ_INT(mk_inst(st, "i2", "acc_1", "n2", "t1", 2, &conflict), WG_EEXIST);
    WG_CHECK_STR(conflict, "token");
    WG_CHECK_EQ_INT(mk_inst(st, "i2", "acc_1", "n2", "t2", 2, &conflict), 0);
    WG_CHECK_EQ_INT(mk_inst(st, "i3", "acc_1", "n3", "t3", 2, &conflict), WG_ELIMIT);
    WG_CHECK_EQ_INT(mk_inst(st, "i3", "acc_1", "n3", "t3", 0, &conflict), 0);
    /* unknown owner: foreign key */
    WG_CHECK_EQ_INT(mk_inst(st, "i4", "acc_x", "n4", "t4", 0, &conflict), WG_EEXIST);

    wg_instance_t in;
    WG_CHECK_EQ_INT(wg_store_instance_by_token(st, "t2", &in), 0);
    WG_CHECK_STR(in.id, "i2");
    WG_CHECK_STR(in.settings, "{}");
    wg_instance_dispose(&in);

    wg_instance_filter_t f = {.owner_id = "acc_1", .name_like = "N", .limit = 2};
    wg_instance_t *v;
    size_t n;
    int64_t total;
    WG_CHECK_EQ_INT(wg_store_instance_list(st, &f, &v, &n, &total), 0);
    WG_CHECK_EQ_INT(total, 3);
    WG_CHECK_EQ_INT(n, 2);
    wg_instance_list_free(v, n);

    /* delete writes its event even though the row is gone */
    wg_store_event_t ev = {"instance.deleted", "{}"};
    WG_CHECK_EQ_INT(wg_store_instance_delete(st, "i1", &ev), 0);
    WG_CHECK_EQ_INT(wg_store_instance_delete(st, "i1", &ev), WG_ENOTFOUND);
    wg_outbox_row_t *rows;
    WG_CHECK_EQ_INT(wg_store_outbox_list(st, "i1", &rows, &n), 0);
    WG_CHECK_EQ_INT(n, 2);
    WG_CHECK_EQ_INT(rows[0].seq, 1);
    WG_CHECK_EQ_INT(rows[1].seq, 2);
    WG_CHECK_STR(rows[1].event, "instance.deleted");
    WG_CHECK_STR(rows[1].state, "pending");
    WG_CHECK(strncmp(rows[0].id, "evt_", 4) == 0 && strcmp(rows[0].id, rows[1].id) < 0);
    wg_outbox_list_free(rows, n);
    wg_store_close(st);
    rm_db(path);
}

static int fail_ev(const char *prev, wg_store_event_t *ev, void *arg)
{
    (void)prev;
    (void)ev;
    (void)arg;
    return WG_ENOMEM;
}

static int ok_ev(const char *prev, wg_store_event_t *ev, void *arg)
{
    *(char **)arg = strdup(prev);
    ev->name = "connection.updated";
    ev->payload = "{}";
    return 0;
}

WG_TEST(store_status_change_is_atomic)
{
    char path[256], *seen = NULL, *prev = NULL;
    const char *conflict;
    wg_store_t *st = open_tmp(path, sizeof(path));
    wg_account_t a = {.id = "acc_1", .name = "A", .plan = "free", .created_at = 1, .updated_at = 1};
    WG_CHECK(st != NULL);
    WG_CHECK_EQ_INT(wg_store_account_insert(st, &a, NULL), 0);
    WG_CHECK_EQ_INT(mk_inst(st, "i1", "acc_1", "n1", "t1", 0, &conflict), 0);
    /* the event cannot be built: the status must not change either */
    WG_CHECK_EQ_INT(wg_store_instance_set_status(st, "i1", "FAILED", "x", fail_ev, NULL, NULL),
                    WG_ENOMEM);
    wg_instance_t in;
    WG_CHECK_EQ_INT(wg_store_instance_get(st, "i1", &in), 0);
    WG_CHECK_STR(in.status, "STARTING");
    wg_instance_dispose(&in);
    WG_CHECK_EQ_INT(wg_store_instance_set_status(st, "i1", "FAILED", "why", ok_ev, &seen, &prev), 0);
    WG_CHECK_STR(seen, "STARTING");
    WG_CHECK_STR(prev, "STARTING");
    free(seen);
    free(prev);
    WG_CHECK_EQ_INT(wg_store_instance_get(st, "i1", &in), 0);
    WG_CHECK_STR(in.status, "FAILED");
    WG_CHECK_STR(in.status_reason, "why");
    wg_instance_dispose(&in);
    WG_CHECK_EQ_INT(wg_store_instance_set_status(st, "nope", "FAILED", NULL, NULL, NULL, NULL),
                    WG_ENOTFOUND);
    wg_outbox_row_t *rows;
    size_t n;
    WG_CHECK_EQ_INT(wg_store_outbox_list(st, "i1", &rows, &n), 0);
    WG_CHECK_EQ_INT(n, 2);
    wg_outbox_list_free(rows, n);
    wg_store_close(st);
    rm_db(path);
}

typedef struct {
    int calls, rv;
    const char *settings, *seen;
    char prev[64];
} patch_arg_t;

static int merge_cb(const wg_instance_t *cur, wg_instance_change_t *chg, void *arg)
{
    patch_arg_t *p = arg;
    p->calls++;
    snprintf(p->prev, sizeof(p->prev), "%s", cur->settings);
    chg->settings = p->settings;
    chg->set_proxy = 1; /* proxy NULL: cleared */
    return p->rv;
}

WG_TEST(store_instance_patch_merges_under_the_lock)
{
    char path[256];
    const char *conflict;
    wg_store_t *st = open_tmp(path, sizeof(path)), *other = NULL;
    wg_account_t a = {.id = "acc_1", .name = "A", .plan = "free", .created_at = 1, .updated_at = 1};
    wg_instance_t in;
    WG_CHECK(st != NULL);
    WG_CHECK_EQ_INT(wg_store_account_insert(st, &a, NULL), 0);
    WG_CHECK_EQ_INT(mk_inst(st, "i1", "acc_1", "n1", "t1", 0, &conflict), 0);
    /* a refused merge writes nothing and its error comes back */
    patch_arg_t p = {.rv = WG_EINVAL, .settings = "{\"x\":1}"};
    WG_CHECK_EQ_INT(wg_store_instance_patch(st, "i1", merge_cb, &p, &in), WG_EINVAL);
    WG_CHECK(in.id == NULL);
    WG_CHECK_EQ_INT(wg_store_instance_get(st, "i1", &in), 0);
    WG_CHECK_STR(in.settings, "{}");
    wg_instance_dispose(&in);
    /* the merge sees the row as stored and *out the row as written */
    p.rv = 0;
    WG_CHECK_EQ_INT(wg_store_instance_patch(st, "i1", merge_cb, &p, &in), 0);
    WG_CHECK_STR(p.prev, "{}");
    WG_CHECK_STR(in.settings, "{\"x\":1}");
    WG_CHECK(in.proxy == NULL);
    wg_instance_dispose(&in);
    /* missing id: no merge call */
    p.calls = 0;
    WG_CHECK_EQ_INT(wg_store_instance_patch(st, "nope", merge_cb, &p, NULL), WG_ENOTFOUND);
    WG_CHECK_EQ_INT(p.calls, 0);
    /* a second connection's commit is seen by the first one's next read and merge: the cached
     * statements of `st` hold no read snapshot between calls */
    WG_CHECK_EQ_INT(wg_store_open(path, &other), 0);
    p.settings = "{\"x\":2}";
    WG_CHECK_EQ_INT(wg_store_instance_patch(other, "i1", merge_cb, &p, NULL), 0);
    WG_CHECK_EQ_INT(wg_store_instance_by_token(st, "t1", &in), 0); /* another query than before */
    WG_CHECK_STR(in.settings, "{\"x\":2}");
    wg_instance_dispose(&in);
    p.settings = "{\"x\":3}";
    WG_CHECK_EQ_INT(wg_store_instance_patch(st, "i1", merge_cb, &p, NULL), 0);
    WG_CHECK_STR(p.prev, "{\"x\":2}");
    wg_store_close(other);
    wg_store_close(st);
    rm_db(path);
}
