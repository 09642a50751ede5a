/* ratelimit.c - see ratelimit.h. Open hashing with chains; FNV-1a over the key. */
#include "http/ratelimit.h"
#include "util/err.h"
#include "util/log.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct bucket {
    struct bucket *next;
    double tokens, cap, rate_ms; /* rate in tokens per ms */
    int64_t last_ms;
    char key[];
} bucket_t;

struct wg_ratelimit {
    pthread_mutex_t mu;
    bucket_t **slots;
    size_t nslots, count, max_keys;
};

wg_ratelimit_t *wg_ratelimit_new(size_t max_keys)
{
    wg_ratelimit_t *rl = calloc(1, sizeof(*rl));
    if (!rl)
        return NULL;
    rl->max_keys = max_keys ? max_keys : 100000;
    rl->nslots = 4096;
    rl->slots = calloc(rl->nslots, sizeof(*rl->slots));
    if (!rl->slots) {
        free(rl);
        return NULL;
    }
    pthread_mutex_init(&rl->mu, NULL);
    return rl;
}

void wg_ratelimit_free(wg_ratelimit_t *rl)
{
    if (!rl)
        return;
    for (size_t i = 0; i < rl->nslots; i++) {
        bucket_t *b = rl->slots[i];
        while (b) {
            bucket_t *n = b->next;
            free(b);
            b = n;
        }
    }
    pthread_mutex_destroy(&rl->mu);
    free(rl->slots);
    free(rl);
}

static void refill(bucket_t *b, int64_t now)
{
    if (now > b->last_ms) {
        b->tokens = fmin(b->cap, b->tokens + (double)(now - b->last_ms) * b->rate_ms);
        b->last_ms = now;
    }
}

/* Drops buckets that have refilled completely. */
static void sweep(wg_ratelimit_t *rl, int64_t now)
{
    for (size_t i = 0; i < rl->nslots; i++) {
        bucket_t **pp = &rl->slots[i];
        while (*pp) {
            bucket_t *b = *pp;
            refill(b, now);
            if (b->tokens >= b->cap) {
                *pp = b->next;
                free(b);
                rl->count--;
            } else
                pp = &b->next;
        }
    }
}

int wg_ratelimit_take(wg_ratelimit_t *rl, const char *key, double per_minute, int64_t now_ms,
                      int *retry_after_s)
{
    uint64_t h = 1469598103934665603ULL;
    int rv = 0;
    if (per_minute <= 0)
        return 0;
    for (const char *p = key; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    pthread_mutex_lock(&rl->mu);
    size_t slot = h % rl->nslots;
    bucket_t *b = rl->slots[slot];
    while (b && strcmp(b->key, key))
        b = b->next;
    if (!b) {
        if (rl->count >= rl->max_keys)
            sweep(rl, now_ms);
        size_t klen = strlen(key);
        if (rl->count >= rl->max_keys || !(b = malloc(sizeof(*b) + klen + 1))) {
            wg_log(WG_LOG_WARN, "ratelimit", "table full keys=%zu: allowing", rl->count);
            goto out;
        }
        memcpy(b->key, key, klen + 1);
        b->cap = per_minute;
        b->tokens = per_minute;
        b->last_ms = now_ms;
        b->next = rl->slots[slot];
        rl->slots[slot] = b;
        rl->count++;
    }
    b->cap = per_minute; /* limits may differ per class but a key has one class */
    b->rate_ms = per_minute / 60000.0;
    refill(b, now_ms);
    if (b->tokens >= 1.0) {
        b->tokens -= 1.0;
    } else {
        double wait_ms = (1.0 - b->tokens) / b->rate_ms;
        int s = (int)ceil(wait_ms / 1000.0);
        *retry_after_s = s < 1 ? 1 : s;
        rv = WG_ELIMIT;
    }
out:
    pthread_mutex_unlock(&rl->mu);
    return rv;
}
