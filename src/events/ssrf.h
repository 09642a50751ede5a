/* ssrf.h - which network addresses a webhook may connect to.
 *
 * Pure functions on socket addresses (no DNS, no I/O): the webhook sink calls them from curl's
 * open-socket callback, i.e. on the address curl is about to connect to after resolving, so a
 * name that resolves (or re-resolves: DNS rebinding) to a private address is refused too. */
#ifndef WG_EVENTS_SSRF_H
#define WG_EVENTS_SSRF_H

#include <stddef.h>
#include <sys/socket.h>

/* 1 when sa is a public unicast address; 0 for loopback, unspecified, private (RFC 1918),
 * carrier-grade NAT (RFC 6598), link-local, multicast, reserved/benchmark ranges, IPv6
 * unique-local/link-local/site-local, and IPv4-mapped/compatible/NAT64/6to4 forms of any of
 * those. Families other than AF_INET/AF_INET6 give 0. */
int wg_ssrf_addr_public(const struct sockaddr *sa, size_t len);

#endif
