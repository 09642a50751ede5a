/* test_ws_handshake.c - pure WebSocket upgrade request/response functions and the head parser. */
#include "test.h"

#include <stdlib.h>

#include "util/buf.h"
#include "util/err.h"
#include "wa/ws.h"
#include "wa/ws_handshake.h"

WG_TEST(ws_handshake_accept_rfc_example)
{
    /* RFC 6455 section 1.3 */
    char acc[WG_WS_ACCEPT_LEN + 1];
    WG_CHECK_EQ_INT(wg_ws_handshake_accept("dGhlIHNhbXBsZSBub25jZQ==", acc), 0);
    WG_CHECK_STR(acc, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

WG_TEST(ws_handshake_key_is_base64_of_nonce)
{
    const uint8_t nonce[16] = "the sample nonce";
    char key[WG_WS_KEY_LEN + 1];
    wg_ws_handshake_key(nonce, key);
    WG_CHECK_STR(key, "dGhlIHNhbXBsZSBub25jZQ==");
}

WG_TEST(ws_handshake_request_build)
{
    wg_ws_header_t extra[] = {{"Cache-Control", "no-cache"}, {"Pragma", "no-cache"}};
    wg_ws_handshake_req_t r = {"web.whatsapp.com",         "/ws/chat", "https://web.whatsapp.com",
                               "dGhlIHNhbXBsZSBub25jZQ==", extra,      2};
    wg_buf_t b;
    wg_buf_init(&b, 0);
    WG_CHECK_EQ_INT(wg_ws_handshake_request(&b, &r), 0);
    const char *want = "GET /ws/chat HTTP/1.1\r\nHost: web.whatsapp.com\r\n"
                       "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                       "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                       "Sec-WebSocket-Version: 13\r\n"
                       "Origin: https://web.whatsapp.com\r\n"
                       "Cache-Control: no-cache\r\nPragma: no-cache\r\n\r\n";
    WG_CHECK_STR((char *)b.data, want);
    wg_buf_reset(&b);
    extra[1].value = "x\r\nEvil: 1";
    WG_CHECK_EQ_INT(wg_ws_handshake_request(&b, &r), WG_EINVAL);
    extra[1].value = "ok";
    extra[1].name = "Bad Name";
    WG_CHECK_EQ_INT(wg_ws_handshake_request(&b, &r), WG_EINVAL);
    wg_buf_dispose(&b);
}

static const char good_resp[] = "HTTP/1.1 101 Switching Protocols\r\n"
                                "Upgrade: websocket\r\n"
                                "Connection: Upgrade\r\n"
                                "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";

WG_TEST(ws_handshake_response_ok_and_partial)
{
    int rv;
    const char *key = "dGhlIHNhbXBsZSBub25jZQ==";
    char buf[512];
    size_t used = 0, n = sizeof(good_resp) - 1;
    int status;
    const char *why;

    memcpy(buf, good_resp, n);
    memcpy(buf + n, "\x82\x01X", 3); /* a frame right behind the head */
    for (size_t i = 0; i < n; i++) {
        rv = wg_ws_handshake_parse_response((uint8_t *)buf, i, key, &used, &status, &why);
        WG_CHECK_EQ_INT(rv, WG_EAGAIN);
    }
    rv = wg_ws_handshake_parse_response((uint8_t *)buf, n + 3, key, &used, &status, &why);
    WG_CHECK_EQ_INT(rv, 0);
    WG_CHECK_EQ_INT(used, n);
    WG_CHECK_EQ_INT(status, 101);
}

WG_TEST(ws_handshake_response_rejects)
{
    int rv;
    const char *key = "dGhlIHNhbXBsZSBub25jZQ==";
    static const char bad_accept[] = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                                     "Connection: upgrade\r\nSec-WebSocket-Accept: AAAA\r\n\r\n";
    static const char forbidden[] = "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n";
    static const char no_upgrade[] = "HTTP/1.1 101 OK\r\nConnection: Upgrade\r\n"
                                     "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
    size_t used;
    int status;
    const char *why;

    rv = wg_ws_handshake_parse_response((const uint8_t *)bad_accept, sizeof(bad_accept) - 1, key,
                                        &used, &status, &why);
    WG_CHECK_EQ_INT(rv, WG_EPROTO);
    WG_CHECK_STR(why, "bad Sec-WebSocket-Accept");
    rv = wg_ws_handshake_parse_response((const uint8_t *)forbidden, sizeof(forbidden) - 1, key,
                                        &used, &status, &why);
    WG_CHECK_EQ_INT(rv, WG_EPROTO);
    WG_CHECK_EQ_INT(status, 403);
    rv = wg_ws_handshake_parse_response((const uint8_t *)no_upgrade, sizeof(no_upgrade) - 1, key,
                                        &used, &status, &why);
    WG_CHECK_EQ_INT(rv, WG_EPROTO);
    /* garbage is reported before the head is complete */
    rv = wg_ws_handshake_parse_response((const uint8_t *)"\x16\x03\x01", 3, key, &used, &status,
                                        &why);
    WG_CHECK_EQ_INT(rv, WG_EPROTO);
    rv = wg_ws_handshake_parse_response((const uint8_t *)"HTTP/2", 6, key, &used, &status, &why);
    WG_CHECK_EQ_INT(rv, WG_EPROTO);
}

WG_TEST(ws_handshake_head_limits)
{
    int rv;
    wg_ws_handshake_head_t h;
    size_t used;
    wg_buf_t b;
    int i;

    wg_buf_init(&b, 0);
    wg_buf_append_str(&b, "HTTP/1.1 200 OK\r\n");
    while (b.len < WG_WS_MAX_HEAD + 10)
        wg_buf_append_str(&b, "X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
    WG_CHECK_EQ_INT(wg_ws_handshake_parse_head(b.data, b.len, 0, 0, &h, &used), WG_ETOOBIG);
    wg_buf_reset(&b);
    wg_buf_append_str(&b, "HTTP/1.1 200 OK\r\n");
    for (i = 0; i < WG_WS_MAX_HEADERS + 1; i++)
        wg_buf_printf(&b, "H%d: v\r\n", i);
    wg_buf_append_str(&b, "\r\n");
    WG_CHECK_EQ_INT(wg_ws_handshake_parse_head(b.data, b.len, 0, 0, &h, &used), WG_ETOOBIG);
    /* obs-fold and bare CR are refused */
    rv = wg_ws_handshake_parse_head((const uint8_t *)"HTTP/1.1 200 OK\r\nA: b\r\n c\r\n\r\n", 29, 0,
                                    0, &h, &used);
    WG_CHECK_EQ_INT(rv, WG_EPROTO);
    rv = wg_ws_handshake_parse_head((const uint8_t *)"HTTP/1.1 200 OK\r\nA: b\rc\r\n\r\n", 27, 0, 0,
                                    &h, &used);
    WG_CHECK_EQ_INT(rv, WG_EPROTO);
    /* LF-only line ends are accepted; values are trimmed */
    rv = wg_ws_handshake_parse_head((const uint8_t *)"HTTP/1.0 407 Auth\nA:  b \n\n", 26, 0, 0, &h,
                                    &used);
    WG_CHECK_EQ_INT(rv, 0);
    WG_CHECK_EQ_INT(h.status, 407);
    WG_CHECK_STR(wg_ws_handshake_head_get(&h, "a"), "b");
    WG_CHECK_STR(h.reason, "Auth");
    wg_ws_handshake_head_dispose(&h);
    wg_buf_dispose(&b);
}

WG_TEST(ws_handshake_request_parse)
{
    int rv;
    static const char req[] =
        "GET /ws/chat?x=1 HTTP/1.1\r\nHost: a\r\nUpgrade: WebSocket\r\n"
        "Connection: keep-alive, Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\nOrigin: https://web.whatsapp.com\r\n\r\n";
    static const char nokey[] = "GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n"
                                "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n";
    static const char post[] = "POST / HTTP/1.1\r\nHost: a\r\n\r\n";
    wg_ws_handshake_head_t h;
    const char *key, *why;
    size_t used;
    wg_buf_t b;

    rv = wg_ws_handshake_parse_request((const uint8_t *)req, 20, &h, &key, &used, &why);
    WG_CHECK_EQ_INT(rv, WG_EAGAIN);
    rv =
        wg_ws_handshake_parse_request((const uint8_t *)req, sizeof(req) - 1, &h, &key, &used, &why);
    WG_CHECK_EQ_INT(rv, 0);
    WG_CHECK_STR(h.target, "/ws/chat?x=1");
    WG_CHECK_STR(wg_ws_handshake_head_get(&h, "origin"), "https://web.whatsapp.com");
    WG_CHECK_STR(key, "dGhlIHNhbXBsZSBub25jZQ==");
    wg_buf_init(&b, 0);
    WG_CHECK_EQ_INT(wg_ws_handshake_response(&b, key), 0);
    WG_CHECK(strstr((char *)b.data, "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
    wg_buf_dispose(&b);
    wg_ws_handshake_head_dispose(&h);

    rv = wg_ws_handshake_parse_request((const uint8_t *)nokey, sizeof(nokey) - 1, &h, &key, &used,
                                       &why);
    WG_CHECK_EQ_INT(rv, WG_EPROTO);
    WG_CHECK_STR(why, "bad Sec-WebSocket-Key");
    rv = wg_ws_handshake_parse_request((const uint8_t *)post, sizeof(post) - 1, &h, &key, &used,
                                       &why);
    WG_CHECK_EQ_INT(rv, WG_EPROTO);
    rv = wg_ws_handshake_parse_request((const uint8_t *)"\x16\x03", 2, &h, &key, &used, &why);
    WG_CHECK_EQ_INT(rv, WG_EPROTO);
}

WG_TEST(ws_url_parse)
{
    int rv;
    int tls;
    char *host, *path;
    uint16_t port;
    rv = wg_ws_url_parse("wss://web.whatsapp.com/ws/chat", &tls, &host, &port, &path);
    WG_CHECK_EQ_INT(rv, 0);
    WG_CHECK_EQ_INT(tls, 1);
    WG_CHECK_STR(host, "web.whatsapp.com");
    WG_CHECK_EQ_INT(port, 443);
    WG_CHECK_STR(path, "/ws/chat");
    free(host);
    free(path);
    rv = wg_ws_url_parse("ws://[::1]:7070?a=b", &tls, &host, &port, &path);
    WG_CHECK_EQ_INT(rv, 0);
    WG_CHECK_EQ_INT(tls, 0);
    WG_CHECK_STR(host, "::1");
    WG_CHECK_EQ_INT(port, 7070);
    WG_CHECK_STR(path, "/?a=b");
    free(host);
    free(path);
    WG_CHECK_EQ_INT(wg_ws_url_parse("http://x/", &tls, &host, &port, &path), WG_EINVAL);
    WG_CHECK_EQ_INT(wg_ws_url_parse("ws://u:p@x/", &tls, &host, &port, &path), WG_EINVAL);
    WG_CHECK_EQ_INT(wg_ws_url_parse("ws://x:99999/", &tls, &host, &port, &path), WG_EINVAL);
    WG_CHECK_EQ_INT(wg_ws_url_parse("ws://:80/", &tls, &host, &port, &path), WG_EINVAL);
    WG_CHECK_EQ_INT(wg_ws_url_parse("ws://x/a b", &tls, &host, &port, &path), WG_EINVAL);
}
