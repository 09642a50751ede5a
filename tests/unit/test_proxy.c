/* test_proxy.c - HTTP CONNECT and SOCKS5 handshake state machines, fed bytes by hand. */
#include "test.h"

#include <stdlib.h>

#include "util/buf.h"
#include "util/err.h"
#include "wa/proxy.h"

static wg_proxy_t *mk(wg_proxy_type_t t, const char *user, const char *pass)
{
    wg_proxy_opts_t o = {t, "proxy.local", 3128, user, pass};
    wg_proxy_t *p = NULL;
    return wg_proxy_new(&p, &o, "web.whatsapp.com", 443) == 0 ? p : NULL;
}

WG_TEST(proxy_parse_type)
{
    wg_proxy_type_t t;
    WG_CHECK_EQ_INT(wg_proxy_parse_type("http", &t), 0);
    WG_CHECK_EQ_INT(t, WG_PROXY_HTTP);
    WG_CHECK_EQ_INT(wg_proxy_parse_type("SOCKS5", &t), 0);
    WG_CHECK_EQ_INT(t, WG_PROXY_SOCKS5);
    WG_CHECK_EQ_INT(wg_proxy_parse_type("", &t), 0);
    WG_CHECK_EQ_INT(t, WG_PROXY_NONE);
    WG_CHECK_EQ_INT(wg_proxy_parse_type("socks4", &t), WG_EINVAL);
}

WG_TEST(proxy_new_rejects_bad_fields)
{
    wg_proxy_opts_t o = {WG_PROXY_HTTP, "p", 1, "us\r\ner", "x"};
    wg_proxy_t *p = NULL;
    char longname[300];
    WG_CHECK_EQ_INT(wg_proxy_new(&p, &o, "h", 1), WG_EINVAL);
    o.user = NULL;
    WG_CHECK_EQ_INT(wg_proxy_new(&p, &o, "a b", 1), WG_EINVAL);
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = 0;
    o.type = WG_PROXY_SOCKS5;
    WG_CHECK_EQ_INT(wg_proxy_new(&p, &o, longname, 1), WG_EINVAL);
    o.type = WG_PROXY_NONE;
    WG_CHECK_EQ_INT(wg_proxy_new(&p, &o, "h", 1), WG_EINVAL);
    WG_CHECK(p == NULL);
}

WG_TEST(proxy_http_connect_ok)
{
    int rv;
    wg_proxy_t *p = mk(WG_PROXY_HTTP, "alice", "s3cret");
    static const char reply[] = "HTTP/1.1 200 Connection established\r\nX: y\r\n\r\nTUNNEL";
    wg_buf_t out;
    size_t used = 99;
    WG_CHECK(p);
    wg_buf_init(&out, 0);
    WG_CHECK_EQ_INT(wg_proxy_start(p, &out), 0);
    /* base64("alice:s3cret") = YWxpY2U6czNjcmV0 */
    const char *want = "CONNECT web.whatsapp.com:443 HTTP/1.1\r\n"
                       "Host: web.whatsapp.com:443\r\n"
                       "Proxy-Authorization: Basic YWxpY2U6czNjcmV0\r\n\r\n";
    WG_CHECK_STR((char *)out.data, want);
    wg_buf_reset(&out);
    /* partial answers: need more */
    for (size_t i = 0; i < sizeof(reply) - 1 - 6 - 1; i++) {
        WG_CHECK_EQ_INT(wg_proxy_feed(p, (const uint8_t *)reply, i, &used, &out), WG_EAGAIN);
        WG_CHECK_EQ_INT(used, 0);
    }
    rv = wg_proxy_feed(p, (const uint8_t *)reply, sizeof(reply) - 1, &used, &out);
    WG_CHECK_EQ_INT(rv, 0);
    WG_CHECK_EQ_INT(used, sizeof(reply) - 1 - 6); /* TUNNEL bytes are left for the tunnel */
    WG_CHECK_EQ_INT(out.len, 0);
    wg_buf_dispose(&out);
    wg_proxy_free(p);
}

WG_TEST(proxy_http_errors)
{
    int rv;
    wg_proxy_t *p = mk(WG_PROXY_HTTP, "alice", "bad");
    static const char r407[] = "HTTP/1.1 407 Proxy Authentication Required\r\n\r\n";
    static const char r502[] = "HTTP/1.0 502 Bad Gateway\r\n\r\n";
    static const char junk[] = "SSH-2.0-OpenSSH\r\n";
    wg_buf_t out;
    size_t used;
    wg_buf_init(&out, 0);
    WG_CHECK_EQ_INT(wg_proxy_start(p, &out), 0);
    rv = wg_proxy_feed(p, (const uint8_t *)r407, sizeof(r407) - 1, &used, &out);
    WG_CHECK_EQ_INT(rv, WG_EPERM);
    WG_CHECK(strstr(wg_proxy_error(p), "authentication failed") != NULL);
    wg_proxy_free(p);

    p = mk(WG_PROXY_HTTP, NULL, NULL);
    wg_buf_reset(&out);
    WG_CHECK_EQ_INT(wg_proxy_start(p, &out), 0);
    WG_CHECK(strstr((char *)out.data, "Proxy-Authorization") == NULL);
    rv = wg_proxy_feed(p, (const uint8_t *)r502, sizeof(r502) - 1, &used, &out);
    WG_CHECK_EQ_INT(rv, WG_EIO);
    WG_CHECK(strstr(wg_proxy_error(p), "502") != NULL);
    wg_proxy_free(p);

    p = mk(WG_PROXY_HTTP, NULL, NULL);
    WG_CHECK_EQ_INT(wg_proxy_start(p, &out), 0);
    /* garbage is rejected before the head is complete */
    WG_CHECK_EQ_INT(wg_proxy_feed(p, (const uint8_t *)junk, 4, &used, &out), WG_EPROTO);
    wg_proxy_free(p);
    wg_buf_dispose(&out);
}

WG_TEST(proxy_socks5_auth_flow)
{
    wg_proxy_t *p = mk(WG_PROXY_SOCKS5, "bob", "pw");
    static const uint8_t greet[] = {5, 2, 0, 2};
    static const uint8_t auth[] = {1, 3, 'b', 'o', 'b', 2, 'p', 'w'};
    static const uint8_t conn_hdr[] = {5, 1, 0, 3, 16};
    /* method reply, auth reply, connect reply (IPv4) and 3 tunnel bytes, all at once */
    static const uint8_t all[] = {5, 2, 1, 0, 5, 0, 0, 1, 10, 0, 0, 1, 0x1f, 0x90, 'a', 'b', 'c'};
    wg_buf_t out;
    size_t used;
    WG_CHECK(p);
    wg_buf_init(&out, 0);
    WG_CHECK_EQ_INT(wg_proxy_start(p, &out), 0);
    WG_CHECK_EQ_INT(out.len, 4);
    WG_CHECK_MEM(out.data, greet, 4);
    wg_buf_reset(&out);

    WG_CHECK_EQ_INT(wg_proxy_feed(p, all, 1, &used, &out), WG_EAGAIN);
    WG_CHECK_EQ_INT(used, 0);
    WG_CHECK_EQ_INT(wg_proxy_feed(p, all, 2, &used, &out), WG_EAGAIN);
    WG_CHECK_EQ_INT(used, 2);
    WG_CHECK_EQ_INT(out.len, sizeof(auth));
    WG_CHECK_MEM(out.data, auth, sizeof(auth));
    wg_buf_reset(&out);
    /* the rest in one go: auth ok -> connect request; connect reply -> done */
    WG_CHECK_EQ_INT(wg_proxy_feed(p, all + 2, sizeof(all) - 2, &used, &out), 0);
    WG_CHECK_EQ_INT(used, sizeof(all) - 2 - 3);
    WG_CHECK_EQ_INT(out.len, 5 + 16 + 2);
    WG_CHECK_MEM(out.data, conn_hdr, 5);
    WG_CHECK_MEM(out.data + 5, "web.whatsapp.com", 16);
    WG_CHECK_EQ_INT(out.data[21], 0x01);
    WG_CHECK_EQ_INT(out.data[22], 0xbb);
    wg_buf_dispose(&out);
    wg_proxy_free(p);
}

WG_TEST(proxy_socks5_failures)
{
    int rv;
    wg_buf_t out;
    size_t used;
    wg_proxy_t *p = mk(WG_PROXY_SOCKS5, "bob", "wrong");
    static const uint8_t m2[] = {5, 2}, authfail[] = {1, 1}, nomethod[] = {5, 0xff};
    static const uint8_t m0[] = {5, 0}, refused[] = {5, 5, 0, 1};
    static const uint8_t badver[] = {4, 0};
    static const uint8_t badatyp[] = {5, 0, 0, 9, 0};
    static const uint8_t domain_partial[] = {5, 0, 0, 3, 10, 'a', 'b'};

    wg_buf_init(&out, 0);
    wg_proxy_start(p, &out);
    WG_CHECK_EQ_INT(wg_proxy_feed(p, m2, 2, &used, &out), WG_EAGAIN);
    WG_CHECK_EQ_INT(wg_proxy_feed(p, authfail, 2, &used, &out), WG_EPERM);
    WG_CHECK(strstr(wg_proxy_error(p), "authentication failed") != NULL);
    wg_proxy_free(p);

    p = mk(WG_PROXY_SOCKS5, NULL, NULL);
    wg_proxy_start(p, &out);
    WG_CHECK_EQ_INT(wg_proxy_feed(p, nomethod, 2, &used, &out), WG_EPERM);
    wg_proxy_free(p);

    p = mk(WG_PROXY_SOCKS5, NULL, NULL);
    wg_proxy_start(p, &out);
    WG_CHECK_EQ_INT(wg_proxy_feed(p, m2, 2, &used, &out), WG_EPERM); /* auth wanted, none given */
    wg_proxy_free(p);

    p = mk(WG_PROXY_SOCKS5, NULL, NULL);
    wg_proxy_start(p, &out);
    WG_CHECK_EQ_INT(wg_proxy_feed(p, m0, 2, &used, &out), WG_EAGAIN);
    WG_CHECK_EQ_INT(wg_proxy_feed(p, refused, 4, &used, &out), WG_EIO);
    WG_CHECK(strstr(wg_proxy_error(p), "connection refused") != NULL);
    wg_proxy_free(p);

    p = mk(WG_PROXY_SOCKS5, NULL, NULL);
    wg_proxy_start(p, &out);
    WG_CHECK_EQ_INT(wg_proxy_feed(p, badver, 2, &used, &out), WG_EPROTO);
    wg_proxy_free(p);

    p = mk(WG_PROXY_SOCKS5, NULL, NULL);
    wg_proxy_start(p, &out);
    WG_CHECK_EQ_INT(wg_proxy_feed(p, m0, 2, &used, &out), WG_EAGAIN);
    WG_CHECK_EQ_INT(wg_proxy_feed(p, badatyp, sizeof(badatyp), &used, &out), WG_EPROTO);
    wg_proxy_free(p);

    p = mk(WG_PROXY_SOCKS5, NULL, NULL);
    wg_proxy_start(p, &out);
    WG_CHECK_EQ_INT(wg_proxy_feed(p, m0, 2, &used, &out), WG_EAGAIN);
    rv = wg_proxy_feed(p, domain_partial, sizeof(domain_partial), &used, &out);
    WG_CHECK_EQ_INT(rv, WG_EAGAIN);
    WG_CHECK_EQ_INT(used, 0);
    wg_proxy_free(p);
    wg_buf_dispose(&out);
}
