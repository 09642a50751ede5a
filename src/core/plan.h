/* plan.h - plans and their instance limits, parsed from WAGATE_PLAN_LIMITS
 * ("free=1,starter=3,pro=10,enterprise=0"; 0 = unlimited). The four plan names are fixed; the
 * config may change their limits, not add plans. */
#ifndef WG_CORE_PLAN_H
#define WG_CORE_PLAN_H

#include <stdint.h>

#define WG_PLAN_COUNT 4

typedef struct {
    int64_t limit[WG_PLAN_COUNT]; /* indexed like wg_plan_names; 0 = unlimited */
} wg_plans_t;

extern const char *const wg_plan_names[WG_PLAN_COUNT];

/* Defaults, then overrides from spec (NULL/"" = defaults only). 0 or WG_EINVAL. */
int wg_plans_parse(wg_plans_t *p, const char *spec);
/* Index of a plan name or -1. */
int wg_plan_index(const char *name);
/* Limit for a plan (0 = unlimited); -1 for an unknown plan. */
int64_t wg_plan_limit(const wg_plans_t *p, const char *name);

#endif
