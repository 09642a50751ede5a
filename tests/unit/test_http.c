/* test_http.c - router matching, query decoding, credential extraction, rate limiter. */
#include "http/ratelimit.h"
#include "http/router.h"
#include "test.h"
#include "util/err.h"

#include <string.h>

static void h_dummy(wg_http_req_t *r, void *ctx)
{
    (void)r;
    (void)ctx;
}

static const wg_route_t routes[] = {
    {WG_HTTP_GET, "/health", h_dummy, 0},
    {WG_HTTP_GET | WG_HTTP_POST, "/v1/instances", h_dummy, 1},
    {WG_HTTP_GET, "/v1/instances/{id}", h_dummy, 2},
    {WG_HTTP_DELETE, "/v1/instances/{id}", h_dummy, 3},
    {WG_HTTP_POST, "/v1/instances/{id}/start", h_dummy, 4},
    {WG_HTTP_POST, "/v1/a/{x}/b/{y}", h_dummy, 5},
};
#define NR (sizeof(routes) / sizeof(routes[0]))

WG_TEST(http_router_match)
{
    wg_http_req_t r;
    memset(&r, 0, sizeof(r));
    WG_CHECK_EQ_INT(wg_router_match(routes, NR, WG_HTTP_GET, "/health", &r), 0);
    WG_CHECK_EQ_INT(r.route->rclass, 0);
    WG_CHECK_EQ_INT(wg_router_match(routes, NR, WG_HTTP_POST, "/v1/instances/", &r), 0);
    WG_CHECK_EQ_INT(r.route->rclass, 1);
    WG_CHECK_EQ_INT(wg_router_match(routes, NR, WG_HTTP_DELETE, "/v1/instances/inst_1", &r), 0);
    WG_CHECK_EQ_INT(r.route->rclass, 3);
    WG_CHECK_EQ_INT(r.nparams, 1);
    WG_CHECK_STR(r.params[0], "inst_1");
    WG_CHECK_EQ_INT(wg_router_match(routes, NR, WG_HTTP_POST, "/v1/a/one/b/two", &r), 0);
    WG_CHECK_EQ_INT(r.nparams, 2);
    WG_CHECK_STR(r.params[0], "one");
    WG_CHECK_STR(r.params[1], "two");
}

WG_TEST(http_router_404_405)
{
    wg_http_req_t r;
    memset(&r, 0, sizeof(r));
    WG_CHECK_EQ_INT(wg_router_match(routes, NR, WG_HTTP_GET, "/", &r), WG_ENOTFOUND);
    WG_CHECK_EQ_INT(wg_router_match(routes, NR, WG_HTTP_GET, "/v1/instances//", &r), WG_ENOTFOUND);
    WG_CHECK_EQ_INT(wg_router_match(routes, NR, WG_HTTP_GET, "/v1/instances/a/b", &r), WG_ENOTFOUND);
    WG_CHECK_EQ_INT(wg_router_match(routes, NR, WG_HTTP_GET, "/v1/instances/a b", &r), WG_ENOTFOUND);
    WG_CHECK_EQ_INT(wg_router_match(routes, NR, WG_HTTP_GET, "/healthz", &r), WG_ENOTFOUND);
    WG_CHECK_EQ_INT(wg_router_match(routes, NR, WG_HTTP_PUT, "/v1/instances/x", &r), WG_EPERM);
    WG_CHECK_STR(r.allow, "GET, DELETE");
    WG_CHECK_EQ_INT(wg_router_match(routes, NR, WG_HTTP_GET, "/v1/instances/x/start", &r), WG_EPERM);
    WG_CHECK_STR(r.allow, "POST");
    char longp[400];
    memset(longp, 'a', sizeof(longp));
    memcpy(longp, "/v1/instances/", 14);
    longp[sizeof(longp) - 1] = 0;
    WG_CHECK_EQ_INT(wg_router_match(routes, NR, WG_HTTP_GET, longp, &r), WG_ENOTFOUND);
}

WG_TEST(http_query_get)
{
    char b[16];
    WG_CHECK_EQ_INT(wg_http_query_get("a=1&name=x%20y+z&b", "name", b, sizeof(b)), 0);
    WG_CHECK_STR(b, "x y z");
    WG_CHECK_EQ_INT(wg_http_query_get("a=1&b", "b", b, sizeof(b)), 0);
    WG_CHECK_STR(b, "");
    WG_CHECK_EQ_INT(wg_http_query_get("a=1", "ab", b, sizeof(b)), WG_ENOTFOUND);
    WG_CHECK_EQ_INT(wg_http_query_get(NULL, "a", b, sizeof(b)), WG_ENOTFOUND);
    WG_CHECK_EQ_INT(wg_http_query_get("a=%zz", "a", b, sizeof(b)), WG_EINVAL);
    WG_CHECK_EQ_INT(wg_http_query_get("a=%00", "a", b, sizeof(b)), WG_EINVAL);
    WG_CHECK_EQ_INT(wg_http_query_get("a=%4", "a", b, sizeof(b)), WG_EINVAL);
    WG_CHECK_EQ_INT(wg_http_query_get("a=0123456789abcdefg", "a", b, sizeof(b)), WG_ETOOBIG);
}

static const char *hdr_auth, *hdr_apikey;
static const char *fake_header(const wg_http_req_t *r, const char *name)
{
    (void)r;
    return !strcmp(name, "Authorization") ? hdr_auth : !strcmp(name, "apikey") ? hdr_apikey : NULL;
}

WG_TEST(http_credential)
{
    wg_http_req_t r;
    char b[64];
    memset(&r, 0, sizeof(r));
    r.header = fake_header;
    hdr_auth = "Bearer  tok123 ";
    hdr_apikey = NULL;
    WG_CHECK_STR(wg_http_credential(&r, b, sizeof(b)), "tok123");
    hdr_auth = "bearer abc";
    WG_CHECK_STR(wg_http_credential(&r, b, sizeof(b)), "abc");
    hdr_auth = "Basic abc";
    WG_CHECK(wg_http_credential(&r, b, sizeof(b)) == NULL);
    hdr_apikey = "k1";
    WG_CHECK_STR(wg_http_credential(&r, b, sizeof(b)), "k1");
    hdr_auth = NULL;
    hdr_apikey = "   ";
    WG_CHECK(wg_http_credential(&r, b, sizeof(b)) == NULL);
    hdr_apikey = "0123456789012345678901234567890123456789012345678901234567890123456789";
    WG_CHECK(wg_http_credential(&r, b, sizeof(b)) == NULL);
}

WG_TEST(http_ratelimit_bucket)
{
    wg_ratelimit_t *rl = wg_ratelimit_new(0);
    int ra = 0;
    WG_CHECK(rl != NULL);
    for (int i = 0; i < 5; i++)
        WG_CHECK_EQ_INT(wg_ratelimit_take(rl, "k", 5, 1000, &ra), 0);
    WG_CHECK_EQ_INT(wg_ratelimit_take(rl, "k", 5, 1000, &ra), WG_ELIMIT);
    WG_CHECK_EQ_INT(ra, 12); /* 5/min: one token every 12 s */
    WG_CHECK_EQ_INT(wg_ratelimit_take(rl, "other", 5, 1000, &ra), 0);
    WG_CHECK_EQ_INT(wg_ratelimit_take(rl, "k", 5, 7000, &ra), WG_ELIMIT);
    WG_CHECK_EQ_INT(ra, 6);
    WG_CHECK_EQ_INT(wg_ratelimit_take(rl, "k", 5, 13000, &ra), 0);
    WG_CHECK_EQ_INT(wg_ratelimit_take(rl, "k", 5, 13000, &ra), WG_ELIMIT);
    WG_CHECK_EQ_INT(wg_ratelimit_take(rl, "k", 0, 13000, &ra), 0); /* unlimited */
    wg_ratelimit_free(rl);
}

WG_TEST(http_ratelimit_bounded_memory)
{
    wg_ratelimit_t *rl = wg_ratelimit_new(4);
    int ra;
    char k[16];
    for (int i = 0; i < 4; i++) {
        snprintf(k, sizeof(k), "k%d", i);
        WG_CHECK_EQ_INT(wg_ratelimit_take(rl, k, 60, 0, &ra), 0);
    }
    /* table full, nothing refilled: fail open */
    WG_CHECK_EQ_INT(wg_ratelimit_take(rl, "new", 60, 0, &ra), 0);
    /* a minute later all buckets are full again and get recycled; limits still apply */
    WG_CHECK_EQ_INT(wg_ratelimit_take(rl, "new", 1, 60000, &ra), 0);
    WG_CHECK_EQ_INT(wg_ratelimit_take(rl, "new", 1, 60000, &ra), WG_ELIMIT);
    wg_ratelimit_free(rl);
}
