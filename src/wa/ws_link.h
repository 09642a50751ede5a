/* ws_link.h - one open WebSocket connection (after the opening handshake): RFC 6455 framing
 * with wslay, reading from and writing to two memory buffers (libevent evbuffers).
 *
 * It does no I/O: the owner (ws.c for the client, sandbox/wsserver.c for the server) gives it
 * the input and output evbuffers of its bufferevent; wg_ws_link_recv() consumes what is in the
 * input (masking, fragment reassembly, ping -> pong, close reply, size limit) and calls back with
 * whole messages; wg_ws_link_send()/_ping()/_close() queue frames and wg_ws_link_flush() moves
 * queued frames into the output buffer, stopping at `out_high_water` bytes (call it again when
 * the output drained). Because it only touches evbuffers it can be fuzzed without sockets.
 *
 * Messages larger than WG_WS_LINK_FRAG bytes are sent fragmented (continuation frames).
 * Received messages are reassembled up to max_msg bytes; a larger one fails the link with
 * WG_ETOOBIG after queueing close 1009 (RFC 6455 7.4.1).
 *
 * Ownership: the link does not own the evbuffers. Messages passed to callbacks are valid only
 * during the call. Callbacks may call send/ping/close on the link but must not free it; the
 * owner frees it after wg_ws_link_recv() returns. */
#ifndef WG_WA_WS_LINK_H
#define WG_WA_WS_LINK_H

#include <stddef.h>
#include <stdint.h>

struct evbuffer;

#define WG_WS_LINK_FRAG 16384

/* RFC 6455 7.4.1 close codes used by the transport */
#define WG_WS_CLOSE_NORMAL 1000
#define WG_WS_CLOSE_GOING_AWAY 1001
#define WG_WS_CLOSE_PROTOCOL 1002
#define WG_WS_CLOSE_NO_STATUS 1005
#define WG_WS_CLOSE_ABNORMAL 1006
#define WG_WS_CLOSE_TOO_BIG 1009

typedef struct wg_ws_link_s wg_ws_link_t;

typedef struct {
    /* A complete data message. is_text: opcode was text (WhatsApp uses binary only). */
    void (*on_message)(void *owner, int is_text, const uint8_t *data, size_t len);
    /* A pong arrived (answer to our ping, or unsolicited). May be NULL. */
    void (*on_pong)(void *owner, const uint8_t *data, size_t len);
} wg_ws_link_cbs_t;

/* 0 and *out, or WG_ENOMEM. is_client: mask outgoing frames (and require unmasked input). */
int wg_ws_link_new(wg_ws_link_t **out, int is_client, struct evbuffer *in, struct evbuffer *outbuf,
                   uint64_t max_msg, size_t out_high_water, const wg_ws_link_cbs_t *cbs,
                   void *owner);
void wg_ws_link_free(wg_ws_link_t *l);

/* Consumes the input buffer, runs callbacks, flushes replies. 0, or the link failed:
 * WG_ETOOBIG (message over max_msg), WG_EPROTO (framing violation), WG_ENOMEM. After a
 * failure a close frame is queued/flushed; the owner should tear the connection down. */
int wg_ws_link_recv(wg_ws_link_t *l);
/* Moves queued frames to the output buffer (up to the high-water mark). 0 or WG_ENOMEM. */
int wg_ws_link_flush(wg_ws_link_t *l);

/* Queue a message (copied) and flush. 0, WG_ECLOSED (close already queued), WG_ENOMEM,
 * WG_EINVAL (ping payload > 125). */
int wg_ws_link_send(wg_ws_link_t *l, int is_text, const uint8_t *data, size_t len);
int wg_ws_link_ping(wg_ws_link_t *l, const uint8_t *data, size_t len);
/* Queue our close frame (code 0 = no status; reason <= 123 bytes, truncated) and flush.
 * 0 or WG_ECLOSED if one was already queued. */
int wg_ws_link_close(wg_ws_link_t *l, uint16_t code, const char *reason);

int wg_ws_link_close_sent(const wg_ws_link_t *l);     /* our close frame is in the output */
int wg_ws_link_close_received(const wg_ws_link_t *l); /* the peer's close frame arrived */
int wg_ws_link_want_write(const wg_ws_link_t *l);     /* frames still queued in wslay */
/* Code and reason of the peer's close frame (1005 if it had none); reason is "" if none.
 * Valid until the link is freed. */
uint16_t wg_ws_link_peer_close(const wg_ws_link_t *l, const char **reason);

#endif
