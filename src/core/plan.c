/* plan.c - see plan.h. */
#include "core/plan.h"
#include "util/err.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

const char *const wg_plan_names[WG_PLAN_COUNT] = {"free", "starter", "pro", "enterprise"};
static const int64_t defaults[WG_PLAN_COUNT] = {1, 3, 10, 0};

int wg_plan_index(const char *name)
{
    for (int i = 0; name && i < WG_PLAN_COUNT; i++)
        if (!strcmp(name, wg_plan_names[i]))
            return i;
    return -1;
}

int64_t wg_plan_limit(const wg_plans_t *p, const char *name)
{
    int i = wg_plan_index(name);
    return i < 0 ? -1 : p->limit[i];
}

int wg_plans_parse(wg_plans_t *p, const char *spec)
{
    memcpy(p->limit, defaults, sizeof(defaults));
    const char *s = spec ? spec : "";
    while (*s) {
        const char *end = strchr(s, ',');
        size_t len = end ? (size_t)(end - s) : strlen(s);
        const char *eq = memchr(s, '=', len);
        char name[32];
        if (!eq || (size_t)(eq - s) >= sizeof(name) || eq == s)
            return WG_EINVAL;
        memcpy(name, s, (size_t)(eq - s));
        name[eq - s] = 0;
        int i = wg_plan_index(name);
        if (i < 0)
            return WG_EINVAL;
        char num[24];
        size_t nl = len - (size_t)(eq - s) - 1;
        if (nl == 0 || nl >= sizeof(num))
            return WG_EINVAL;
        memcpy(num, eq + 1, nl);
        num[nl] = 0;
        char *ep;
        errno = 0;
        long long v = strtoll(num, &ep, 10);
        if (errno || *ep || v < 0)
            return WG_EINVAL;
        p->limit[i] = v;
        s = end ? end + 1 : s + len;
    }
    return 0;
}
