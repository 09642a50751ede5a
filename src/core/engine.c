/* engine.c - the "unavailable" engine: the placeholder until the WhatsApp engine lands. It
 * refuses to start instances, which the core turns into FAILED/engine_unavailable; it never
 * pretends to connect and never produces a QR code. */
#include "core/engine.h"
#include "util/err.h"

#include <stdio.h>
#include <stdlib.h>

static int un_start(wg_engine_t *e, const char *id, char *reason, size_t cap)
{
    (void)e;
    (void)id;
    snprintf(reason, cap, "engine_unavailable");
    return WG_EPERM;
}

static int un_stop(wg_engine_t *e, const char *id)
{
    (void)e;
    (void)id;
    return 0;
}

static void un_free(wg_engine_t *e)
{
    free(e);
}

static const wg_engine_ops_t unavailable_ops = {
    .name = "unavailable", .start = un_start, .stop = un_stop, .logout = un_stop, .free = un_free};

wg_engine_t *wg_engine_unavailable_new(void)
{
    wg_engine_t *e = calloc(1, sizeof(*e));
    if (e)
        e->ops = &unavailable_ops;
    return e;
}

void wg_engine_free(wg_engine_t *e)
{
    if (e)
        e->ops->free(e);
}
