/* signal_mem.c - two wg_signal_storage_t implementations (signal.h): records in memory (a plain
 * list: tests and the sandbox's phones hold few), and a bounded write-through LRU cache in front
 * of another storage (the instance's store). Values are copied in and out; every buffer handed
 * out is malloc'd for the caller. Secrets are wiped before they are freed. */
#include "util/err.h"
#include "wa/signal.h"

#include <stdlib.h>
#include <string.h>

typedef struct rec {
    struct rec *prev, *next; /* the memory list, or the cache's LRU order (head = newest) */
    int kind;
    char *key;
    uint8_t *val;
    size_t len;
} rec_t;

static void rec_free(rec_t *r)
{
    if (!r)
        return;
    wg_keys_wipe(r->val, r->len);
    free(r->val);
    free(r->key);
    free(r);
}

static rec_t *rec_new(int kind, const char *key, const uint8_t *val, size_t len)
{
    rec_t *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->kind = kind;
    r->key = strdup(key);
    r->val = malloc(len ? len : 1);
    if (!r->key || !r->val) {
        free(r->key);
        free(r->val);
        free(r);
        return NULL;
    }
    if (len)
        memcpy(r->val, val, len);
    r->len = len;
    return r;
}

static int copy_out(const rec_t *r, uint8_t **val, size_t *len)
{
    if (!(*val = malloc(r->len ? r->len : 1)))
        return WG_ENOMEM;
    if (r->len)
        memcpy(*val, r->val, r->len);
    *len = r->len;
    return 0;
}

/* A doubly linked list with a head pointer. */
static void list_unlink(rec_t **head, rec_t *r)
{
    if (r->prev)
        r->prev->next = r->next;
    else
        *head = r->next;
    if (r->next)
        r->next->prev = r->prev;
    r->prev = r->next = NULL;
}

static void list_push(rec_t **head, rec_t *r)
{
    r->prev = NULL;
    r->next = *head;
    if (*head)
        (*head)->prev = r;
    *head = r;
}

static rec_t *list_find(rec_t *head, int kind, const char *key)
{
    for (rec_t *r = head; r; r = r->next)
        if (r->kind == kind && strcmp(r->key, key) == 0)
            return r;
    return NULL;
}

/* ---- in memory ----------------------------------------------------------------------------- */

typedef struct {
    wg_signal_storage_t base;
    rec_t *head;
} mem_t;

static int mem_get(wg_signal_storage_t *base, int kind, const char *key, uint8_t **val, size_t *len)
{
    mem_t *m = (mem_t *)base;
    rec_t *r = list_find(m->head, kind, key);
    *val = NULL;
    *len = 0;
    return r ? copy_out(r, val, len) : WG_ENOTFOUND;
}

static int mem_put(wg_signal_storage_t *base, int kind, const char *key, const uint8_t *val,
                   size_t len)
{
    mem_t *m = (mem_t *)base;
    rec_t *r = rec_new(kind, key, val, len), *old;
    if (!r)
        return WG_ENOMEM;
    if ((old = list_find(m->head, kind, key))) {
        list_unlink(&m->head, old);
        rec_free(old);
    }
    list_push(&m->head, r);
    return 0;
}

static int mem_remove(wg_signal_storage_t *base, int kind, const char *key)
{
    mem_t *m = (mem_t *)base;
    rec_t *r = list_find(m->head, kind, key);
    if (r) {
        list_unlink(&m->head, r);
        rec_free(r);
    }
    return 0;
}

static int mem_keys(wg_signal_storage_t *base, int kind, const char *prefix, wg_signal_key_cb cb,
                    void *arg)
{
    mem_t *m = (mem_t *)base;
    size_t plen = strlen(prefix);
    int rv;
    for (rec_t *r = m->head; r; r = r->next)
        if (r->kind == kind && strncmp(r->key, prefix, plen) == 0 && (rv = cb(r->key, arg)) != 0)
            return rv;
    return 0;
}

static void mem_free(wg_signal_storage_t *base)
{
    mem_t *m = (mem_t *)base;
    while (m->head) {
        rec_t *r = m->head;
        list_unlink(&m->head, r);
        rec_free(r);
    }
    free(m);
}

static const wg_signal_storage_ops_t mem_ops = {
    .get = mem_get, .put = mem_put, .remove = mem_remove, .keys = mem_keys, .free = mem_free};

int wg_signal_storage_mem_new(wg_signal_storage_t **out)
{
    mem_t *m = calloc(1, sizeof(*m));
    *out = NULL;
    if (!m)
        return WG_ENOMEM;
    m->base.ops = &mem_ops;
    *out = &m->base;
    return 0;
}

size_t wg_signal_storage_mem_count(wg_signal_storage_t *base, int kind)
{
    size_t n = 0;
    if (!base || base->ops != &mem_ops)
        return 0;
    for (rec_t *r = ((mem_t *)base)->head; r; r = r->next)
        n += r->kind == kind;
    return n;
}

/* ---- LRU cache ----------------------------------------------------------------------------- */

typedef struct {
    wg_signal_storage_t base;
    wg_signal_storage_t *inner;
    rec_t *head; /* newest first */
    rec_t *tail;
    size_t n, bytes, max_n, max_bytes;
    uint64_t hits, misses;
} cache_t;

static int cacheable(int kind)
{
    return kind == WG_SIGNAL_K_SESSION || kind == WG_SIGNAL_K_IDENTITY ||
           kind == WG_SIGNAL_K_SENDER_KEY;
}

static void cache_drop(cache_t *c, rec_t *r)
{
    if (r == c->tail)
        c->tail = r->prev;
    list_unlink(&c->head, r);
    c->n--;
    c->bytes -= r->len;
    rec_free(r);
}

/* Adds a copy as the newest entry, evicting the oldest beyond the bounds. A value larger than
 * the byte bound is not cached at all. Failing to cache is not an error. */
static void cache_add(cache_t *c, int kind, const char *key, const uint8_t *val, size_t len)
{
    rec_t *r, *old = list_find(c->head, kind, key);
    if (old)
        cache_drop(c, old);
    if (len > c->max_bytes || c->max_n == 0 || !(r = rec_new(kind, key, val, len)))
        return;
    list_push(&c->head, r);
    if (!c->tail)
        c->tail = r;
    c->n++;
    c->bytes += len;
    while (c->tail && (c->n > c->max_n || c->bytes > c->max_bytes))
        cache_drop(c, c->tail);
}

static int cache_get(wg_signal_storage_t *base, int kind, const char *key, uint8_t **val,
                     size_t *len)
{
    cache_t *c = (cache_t *)base;
    rec_t *r;
    int rv;
    if (!cacheable(kind))
        return c->inner->ops->get(c->inner, kind, key, val, len);
    if ((r = list_find(c->head, kind, key))) {
        c->hits++;
        if (r != c->head) { /* move to the front */
            if (r == c->tail)
                c->tail = r->prev;
            list_unlink(&c->head, r);
            list_push(&c->head, r);
        }
        return copy_out(r, val, len);
    }
    c->misses++;
    if ((rv = c->inner->ops->get(c->inner, kind, key, val, len)) == 0)
        cache_add(c, kind, key, *val, *len);
    return rv;
}

static int cache_put(wg_signal_storage_t *base, int kind, const char *key, const uint8_t *val,
                     size_t len)
{
    cache_t *c = (cache_t *)base;
    rec_t *old;
    int rv = c->inner->ops->put(c->inner, kind, key, val, len);
    if (!cacheable(kind))
        return rv;
    if (rv == 0)
        cache_add(c, kind, key, val, len);
    else if ((old = list_find(c->head, kind, key)))
        cache_drop(c, old); /* unknown state underneath: forget it */
    return rv;
}

static int cache_remove(wg_signal_storage_t *base, int kind, const char *key)
{
    cache_t *c = (cache_t *)base;
    rec_t *old = list_find(c->head, kind, key);
    if (old)
        cache_drop(c, old);
    return c->inner->ops->remove(c->inner, kind, key);
}

static int cache_keys(wg_signal_storage_t *base, int kind, const char *prefix, wg_signal_key_cb cb,
                      void *arg)
{
    cache_t *c = (cache_t *)base;
    return c->inner->ops->keys(c->inner, kind, prefix, cb, arg);
}

static void cache_free(wg_signal_storage_t *base)
{
    cache_t *c = (cache_t *)base;
    while (c->head)
        cache_drop(c, c->head);
    wg_signal_storage_free(c->inner);
    free(c);
}

static const wg_signal_storage_ops_t cache_ops = {.get = cache_get,
                                                  .put = cache_put,
                                                  .remove = cache_remove,
                                                  .keys = cache_keys,
                                                  .free = cache_free};

int wg_signal_storage_cache_new(wg_signal_storage_t *inner, size_t max_entries, size_t max_bytes,
                                wg_signal_storage_t **out)
{
    cache_t *c;
    *out = NULL;
    if (!inner)
        return WG_EINVAL;
    if (!(c = calloc(1, sizeof(*c)))) {
        wg_signal_storage_free(inner);
        return WG_ENOMEM;
    }
    c->base.ops = &cache_ops;
    c->inner = inner;
    c->max_n = max_entries;
    c->max_bytes = max_bytes;
    *out = &c->base;
    return 0;
}

void wg_signal_storage_cache_clear(wg_signal_storage_t *base)
{
    cache_t *c = (cache_t *)base;
    if (!base || base->ops != &cache_ops)
        return;
    while (c->head)
        cache_drop(c, c->head);
}

void wg_signal_storage_cache_stats(wg_signal_storage_t *base, uint64_t *hits, uint64_t *misses)
{
    cache_t *c = (cache_t *)base;
    if (!base || base->ops != &cache_ops) {
        *hits = *misses = 0;
        return;
    }
    *hits = c->hits;
    *misses = c->misses;
}
