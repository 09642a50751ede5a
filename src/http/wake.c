/* wake.c - see wake.h and http.h (wake keys). */
#include "http/http.h"
#include "http/wake.h"
#include "util/err.h"

#include <pthread.h>
#include <stddef.h>

#define NBUCKETS 256u

/* One lock for the table: a registration, a removal or a wake holds it for a few pointer steps;
 * a send takes it three times (add, wake, del), far below anything else a send costs. */
static struct {
    pthread_mutex_t mu;
    wg_http_watcher_t *b[NBUCKETS];
    int n;
} table = {PTHREAD_MUTEX_INITIALIZER, {0}, 0};

uint64_t wg_http_key_str(const char *s)
{
    uint64_t h = 14695981039346656037ull; /* FNV-1a 64 */
    for (; s && *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

uint64_t wg_http_key_num(uint64_t n)
{
    /* splitmix64 finalizer, offset so that a number and a short string rarely share a key */
    uint64_t z = n + 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

int wg_http_watch(wg_http_req_t *r, uint64_t key)
{
    for (int i = 0; i < r->nwatch; i++)
        if (r->watch[i] == key)
            return 0;
    if (r->nwatch >= WG_HTTP_WATCH_MAX)
        return WG_ELIMIT;
    r->watch[r->nwatch++] = key;
    return 0;
}

void wg_http_wake(uint64_t key)
{
    pthread_mutex_lock(&table.mu);
    for (wg_http_watcher_t *w = table.b[key % NBUCKETS]; w; w = w->next)
        if (w->key == key)
            w->fn(w->arg);
    pthread_mutex_unlock(&table.mu);
}

void wg_http_watcher_add(wg_http_watcher_t *w)
{
    pthread_mutex_lock(&table.mu);
    if (!w->added) {
        w->next = table.b[w->key % NBUCKETS];
        table.b[w->key % NBUCKETS] = w;
        w->added = 1;
        table.n++;
    }
    pthread_mutex_unlock(&table.mu);
}

void wg_http_watcher_del(wg_http_watcher_t *w)
{
    pthread_mutex_lock(&table.mu);
    for (wg_http_watcher_t **pp = &table.b[w->key % NBUCKETS]; w->added && *pp; pp = &(*pp)->next)
        if (*pp == w) {
            *pp = w->next;
            w->added = 0;
            table.n--;
            break;
        }
    pthread_mutex_unlock(&table.mu);
}

int wg_http_watcher_count(void)
{
    pthread_mutex_lock(&table.mu);
    int n = table.n;
    pthread_mutex_unlock(&table.mu);
    return n;
}
