/* ssrf.c - see ssrf.h. Ranges from the IANA special-purpose address registries
 * (RFC 6890 and updates). */
#include "events/ssrf.h"

#include <netinet/in.h>
#include <stdint.h>
#include <string.h>

static int v4_public(uint32_t a) /* host byte order */
{
    static const struct {
        uint32_t net, mask;
    } deny[] = {
        {0x00000000, 0xff000000}, /* 0.0.0.0/8 "this network" */
        {0x0a000000, 0xff000000}, /* 10/8 */
        {0x64400000, 0xffc00000}, /* 100.64/10 CGNAT */
        {0x7f000000, 0xff000000}, /* 127/8 loopback */
        {0xa9fe0000, 0xffff0000}, /* 169.254/16 link-local (cloud metadata) */
        {0xac100000, 0xfff00000}, /* 172.16/12 */
        {0xc0000000, 0xffffff00}, /* 192.0.0/24 IETF protocol assignments */
        {0xc0000200, 0xffffff00}, /* 192.0.2/24 TEST-NET-1 */
        {0xc0586300, 0xffffff00}, /* 192.88.99/24 6to4 relay anycast */
        {0xc0a80000, 0xffff0000}, /* 192.168/16 */
        {0xc6120000, 0xfffe0000}, /* 198.18/15 benchmarking */
        {0xc6336400, 0xffffff00}, /* 198.51.100/24 TEST-NET-2 */
        {0xcb007100, 0xffffff00}, /* 203.0.113/24 TEST-NET-3 */
        {0xe0000000, 0xf0000000}, /* 224/4 multicast */
        {0xf0000000, 0xf0000000}, /* 240/4 reserved + broadcast */
    };
    for (size_t i = 0; i < sizeof(deny) / sizeof(deny[0]); i++)
        if ((a & deny[i].mask) == deny[i].net)
            return 0;
    return 1;
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int v6_public(const uint8_t *b)
{
    static const uint8_t zero[16];
    /* :: and ::1 */
    if (!memcmp(b, zero, 15) && b[15] <= 1)
        return 0;
    /* ::ffff:a.b.c.d (mapped) and ::a.b.c.d (deprecated compatible): judge the IPv4 part */
    if (!memcmp(b, zero, 10) && ((b[10] == 0xff && b[11] == 0xff) || (b[10] == 0 && b[11] == 0)))
        return v4_public(be32(b + 12));
    /* 64:ff9b::/96 NAT64 well-known prefix: the embedded IPv4 address decides */
    static const uint8_t nat64[12] = {0x00, 0x64, 0xff, 0x9b};
    if (!memcmp(b, nat64, 12))
        return v4_public(be32(b + 12));
    /* 64:ff9b:1::/48 local-use NAT64 */
    if (b[0] == 0x00 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b && b[4] == 0 && b[5] == 1)
        return 0;
    /* 2002::/16 6to4: embedded IPv4 in bytes 2..5 */
    if (b[0] == 0x20 && b[1] == 0x02)
        return v4_public(be32(b + 2));
    if ((b[0] & 0xfe) == 0xfc) /* fc00::/7 unique local */
        return 0;
    if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) /* fe80::/10 link-local */
        return 0;
    if (b[0] == 0xfe && (b[1] & 0xc0) == 0xc0) /* fec0::/10 site-local (deprecated) */
        return 0;
    if (b[0] == 0xff) /* multicast */
        return 0;
    if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0d && b[3] == 0xb8) /* 2001:db8::/32 docs */
        return 0;
    if (b[0] == 0x01 && !memcmp(b + 1, zero, 7)) /* 100::/64 discard */
        return 0;
    return 1;
}

int wg_ssrf_addr_public(const struct sockaddr *sa, size_t len)
{
    if (!sa)
        return 0;
    if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
        return v4_public(ntohl(s4->sin_addr.s_addr));
    }
    if (sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
        return v6_public(s6->sin6_addr.s6_addr);
    }
    return 0;
}
