/* signal_stage.c - see signal_stage.h. Held-back writes are a list, newest last; a read
 * searches it from the newest (a decryption touches a handful of records). */
#include "wa/signal_stage.h"
#include "util/err.h"

#include <stdlib.h>
#include <string.h>

typedef struct op {
    struct op *next;
    int kind;
    char *key;
    uint8_t *val; /* NULL: a removal */
    size_t len;
} op_t;

typedef struct {
    wg_signal_storage_t base;
    wg_signal_storage_t *inner;
    int active;
    op_t *head, *tail;
    size_t n;
} stage_t;

static void ops_free(stage_t *st)
{
    for (op_t *o = st->head, *n; o; o = n) {
        n = o->next;
        free(o->key);
        free(o->val);
        free(o);
    }
    st->head = st->tail = NULL;
    st->n = 0;
}

static const op_t *find(const stage_t *st, int kind, const char *key)
{
    const op_t *hit = NULL;
    for (const op_t *o = st->head; o; o = o->next)
        if (o->kind == kind && !strcmp(o->key, key))
            hit = o; /* the newest wins */
    return hit;
}

static int st_get(wg_signal_storage_t *s, int kind, const char *key, uint8_t **val, size_t *len)
{
    stage_t *st = (stage_t *)s;
    const op_t *o = st->active ? find(st, kind, key) : NULL;
    if (!o)
        return st->inner->ops->get(st->inner, kind, key, val, len);
    if (!o->val)
        return WG_ENOTFOUND;
    if (!(*val = malloc(o->len ? o->len : 1)))
        return WG_ENOMEM;
    memcpy(*val, o->val, o->len);
    *len = o->len;
    return 0;
}

static int hold(stage_t *st, int kind, const char *key, const uint8_t *val, size_t len)
{
    op_t *o = calloc(1, sizeof(*o));
    if (!o || !(o->key = strdup(key)) || (val && !(o->val = malloc(len ? len : 1)))) {
        if (o)
            free(o->key);
        free(o);
        return WG_ENOMEM;
    }
    o->kind = kind;
    if (val)
        memcpy(o->val, val, len);
    o->len = len;
    if (st->tail)
        st->tail->next = o;
    else
        st->head = o;
    st->tail = o;
    st->n++;
    return 0;
}

static int st_put(wg_signal_storage_t *s, int kind, const char *key, const uint8_t *val, size_t len)
{
    stage_t *st = (stage_t *)s;
    if (!st->active)
        return st->inner->ops->put(st->inner, kind, key, val, len);
    return hold(st, kind, key, val ? val : (const uint8_t *)"", val ? len : 0);
}

static int st_remove(wg_signal_storage_t *s, int kind, const char *key)
{
    stage_t *st = (stage_t *)s;
    if (!st->active)
        return st->inner->ops->remove(st->inner, kind, key);
    return hold(st, kind, key, NULL, 0);
}

static int st_keys(wg_signal_storage_t *s, int kind, const char *prefix, wg_signal_key_cb cb,
                   void *arg)
{
    stage_t *st = (stage_t *)s;
    return st->inner->ops->keys(st->inner, kind, prefix, cb, arg);
}

static void st_free(wg_signal_storage_t *s)
{
    stage_t *st = (stage_t *)s;
    ops_free(st);
    wg_signal_storage_free(st->inner);
    free(st);
}

static const wg_signal_storage_ops_t stage_ops = {st_get, st_put, st_remove, st_keys, st_free};

int wg_signal_stage_new(wg_signal_storage_t *inner, wg_signal_storage_t **out)
{
    stage_t *st = calloc(1, sizeof(*st));
    *out = NULL;
    if (!st) {
        wg_signal_storage_free(inner);
        return WG_ENOMEM;
    }
    st->base.ops = &stage_ops;
    st->inner = inner;
    *out = &st->base;
    return 0;
}

void wg_signal_stage_begin(wg_signal_storage_t *s)
{
    stage_t *st = (stage_t *)s;
    ops_free(st);
    st->active = 1;
}

int wg_signal_stage_commit(wg_signal_storage_t *s)
{
    stage_t *st = (stage_t *)s;
    int rv = 0;
    st->active = 0;
    for (op_t *o = st->head; rv == 0 && o; o = o->next)
        rv = o->val ? st->inner->ops->put(st->inner, o->kind, o->key, o->val, o->len)
                    : st->inner->ops->remove(st->inner, o->kind, o->key);
    ops_free(st);
    return rv;
}

void wg_signal_stage_discard(wg_signal_storage_t *s)
{
    stage_t *st = (stage_t *)s;
    st->active = 0;
    ops_free(st);
}

void wg_signal_stage_rolled_back(wg_signal_storage_t *s)
{
    wg_signal_storage_cache_clear(((stage_t *)s)->inner);
}

size_t wg_signal_stage_pending(wg_signal_storage_t *s)
{
    return ((stage_t *)s)->n;
}
