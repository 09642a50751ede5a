/* noise.h - WhatsApp's Noise layer: Noise_XX_25519_AESGCM_SHA256 with the WhatsApp intro
 * header, 3-byte length framing, server certificate chain, and the transport ciphers.
 *
 * A pure state machine: no sockets, no clock, no globals. The caller feeds received bytes in
 * any chunking (wg_noise_feed) and gets back
 *   - handshake replies appended to a caller-owned wg_buf_t (to be sent as they are),
 *   - the on_handshake callback once the transport keys are in place,
 *   - each decrypted transport frame through on_frame (plaintext valid only during the call).
 * wg_noise_encrypt_frame() appends one framed ciphertext to a caller buffer.
 *
 * The initiator (client) lives here; the responder (server, for the sandbox) is created with
 * wg_noise_server_new() from noise_server.h and shares this API afterwards.
 *
 * Client wire flow (wa-protocol-core.md §1.3-§2.9):
 *   wg_noise_client_new(), wg_noise_client_start(payload) -> [ED prefix] "WA" 06 03 + ClientHello
 *   feed(ServerHello) -> cert chain verified, ClientFinish appended to out, on_handshake()
 *   feed(...) -> on_frame(plaintext) per frame; wg_noise_encrypt_frame() for sending.
 *
 * Errors: every failure returns a negative WG_E* (WG_ECRYPTO: a tag, signature or certificate
 * check failed; WG_EPROTO: malformed handshake message or intro; WG_ETOOBIG: a frame longer
 * than the limit; WG_ENOMEM) and is sticky: the object refuses all further input and output
 * with the same code, and stays safe to free. A failed feed means "close the connection".
 *
 * Ownership: wg_noise_free() frees the object and wipes its keys. Callbacks must not free the
 * object or call wg_noise_feed() re-entrantly; they may call wg_noise_encrypt_frame(). */
#ifndef WG_WA_NOISE_H
#define WG_WA_NOISE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "util/buf.h"
#include "wa/keys.h"

/* The protocol name is exactly 32 bytes, so it is used as the initial h and ck as is. */
#define WG_NOISE_PROTOCOL_NAME "Noise_XX_25519_AESGCM_SHA256\0\0\0\0"
/* Intro header "WA", magic 6, token dictionary version 3 (wa-protocol-core.md §1.3). It is
 * both sent in front of the first frame and hashed as the Noise prologue. */
#define WG_NOISE_INTRO_LEN 4
#define WG_NOISE_INTRO "WA\x06\x03"
/* A frame is len(3 bytes, big-endian) || payload, so 2^24 - 1 is the protocol maximum. */
#define WG_NOISE_FRAME_HDR_LEN 3
#define WG_NOISE_MAX_FRAME 0xFFFFFFu
/* Handshake messages are a few hundred bytes; this bounds what a peer can make us buffer
 * before it has authenticated. */
#define WG_NOISE_HANDSHAKE_MAX_FRAME 65536u
/* Optional routing-info prefix ("ED" 00 01 len3 bytes) in front of the intro (§1.5). */
#define WG_NOISE_MAX_ROUTING_INFO 4096u
/* The certificate chain's issuer serial for the intermediate (whatsmeow WACertIssuerSerial). */
#define WG_NOISE_CERT_ISSUER_SERIAL 0u

/* WhatsApp's root Curve25519 public key, which signs the intermediate certificate of the
 * server's chain. Identical in whatsmeow (handshake.go WACertPubKey) and Baileys
 * (src/Defaults/index.ts WA_CERT_DETAILS.PUBLIC_KEY); wa-protocol-core.md §2.7. The sandbox
 * uses its own root, configured with WAGATE_WA_ROOT_KEY. */
#define WG_NOISE_WA_ROOT_KEY                                                                      \
    "\x14\x23\x75\x57\x4d\x0a\x58\x71\x66\xaa\xe7\x1e\xbe\x51\x64\x37"                             \
    "\xc4\xa2\x8b\x73\xe3\x69\x5c\x6c\xe1\xf7\xf9\x54\x5d\xa8\xee\x6b"

typedef struct wg_noise_s wg_noise_t;

typedef struct {
    /* Called once, when the handshake is complete and transport mode begins. The peer's static
     * key (wg_noise_peer_static) and, on a server, the client's payload
     * (wg_noise_client_payload) are readable now. Return 0 to go on, negative to fail. */
    int (*on_handshake)(void *ud, wg_noise_t *n);
    /* One decrypted transport frame; p is valid only during the call. 0 or negative to fail. */
    int (*on_frame)(void *ud, const uint8_t *p, size_t len);
    void *ud;
} wg_noise_callbacks_t;

typedef struct {
    /* Client: the 32-byte root key that must sign the chain; NULL = WG_NOISE_WA_ROOT_KEY. */
    const uint8_t *root_pub;
    /* Client: the 4-byte intro/prologue; NULL = WG_NOISE_INTRO. */
    const uint8_t *intro;
    /* Client: optional routing info, sent in an "ED" prefix before the intro (not hashed). */
    const uint8_t *routing_info;
    size_t routing_info_len;
    /* Largest transport frame accepted from the peer; 0 = WG_NOISE_MAX_FRAME. */
    size_t max_frame;
    /* Ephemeral key pair to use instead of a fresh random one (tests only). */
    const wg_keys_pair_t *ephemeral;
} wg_noise_opts_t;

/* New initiator with the persistent static key pair (the "noise key"); opts may be NULL.
 * cb is copied. 0, WG_EINVAL, WG_ENOMEM; *out is set only on success. */
int wg_noise_client_new(wg_noise_t **out, const wg_keys_pair_t *static_kp,
                        const wg_noise_opts_t *opts, const wg_noise_callbacks_t *cb);

/* Starts the handshake: appends [routing prefix] + intro + frame(ClientHello) to out. payload
 * (the serialized ClientPayload) is copied and sent encrypted in ClientFinish. */
int wg_noise_client_start(wg_noise_t *n, const uint8_t *payload, size_t payload_len,
                          wg_buf_t *out);

/* Feeds received bytes (any chunking). `now` is Unix seconds, used for the certificate
 * validity check. Handshake replies are appended to out (may be NULL once in transport
 * mode). 0 when every byte was consumed (a partial frame stays buffered), else a sticky
 * negative error (including a negative value returned by a callback). */
int wg_noise_feed(wg_noise_t *n, const uint8_t *data, size_t len, uint64_t now, wg_buf_t *out);

/* Encrypts one transport frame and appends len(3) || ciphertext || tag to out.
 * 0, WG_EINVAL (not in transport mode), WG_ETOOBIG (len + 16 > 2^24 - 1), WG_ENOMEM, or the
 * sticky error. */
int wg_noise_encrypt_frame(wg_noise_t *n, const uint8_t *p, size_t len, wg_buf_t *out);

/* 1 once transport keys are in place (and no error has happened), else 0. */
int wg_noise_is_established(const wg_noise_t *n);
/* The sticky error, or 0. */
int wg_noise_error(const wg_noise_t *n);
/* The peer's authenticated static key (32 bytes) once known, else NULL. */
const uint8_t *wg_noise_peer_static(const wg_noise_t *n);
/* Server side: the decrypted ClientPayload bytes once the handshake is complete (owned by n),
 * else NULL. */
const uint8_t *wg_noise_client_payload(const wg_noise_t *n, size_t *len);
/* The 4-byte intro used as prologue (server: as received), or NULL before it is known. */
const uint8_t *wg_noise_intro(const wg_noise_t *n);
/* Server side: routing info from an "ED" prefix (NULL when absent; owned by n). */
const uint8_t *wg_noise_routing_info(const wg_noise_t *n, size_t *len);
/* The handshake hash h (32 bytes): equal on both ends after a successful handshake. */
const uint8_t *wg_noise_handshake_hash(const wg_noise_t *n);

/* Frees n and wipes its key material; NULL is fine. */
void wg_noise_free(wg_noise_t *n);

/* ---- Stand-alone pieces (also used by the state machine) -------------------------------- */

/* Appends len(3, BE) || p to out. WG_ETOOBIG if len > WG_NOISE_MAX_FRAME. */
int wg_noise_frame_encode(wg_buf_t *out, const uint8_t *p, size_t len);

/* Parses one frame at the start of p[0..len). On success returns the bytes consumed (3 +
 * payload) and points *payload / *plen into p. WG_EAGAIN when incomplete, WG_ETOOBIG when the
 * announced length exceeds max. */
ssize_t wg_noise_frame_parse(const uint8_t *p, size_t len, size_t max, const uint8_t **payload,
                             size_t *plen);

/* Appends the client's connection preamble: optional "ED" 00 01 len3 routing-info prefix,
 * then the 4-byte intro. WG_EINVAL if routing info is longer than WG_NOISE_MAX_ROUTING_INFO. */
int wg_noise_intro_encode(wg_buf_t *out, const uint8_t intro[WG_NOISE_INTRO_LEN],
                          const uint8_t *routing_info, size_t routing_len);

/* Parses the preamble at the start of p[0..len): returns bytes consumed, copies the intro to
 * intro[4] and points *routing and *routing_len into p (NULL/0 when absent). WG_EAGAIN when
 * incomplete; WG_EPROTO when it is not "WA"+2 bytes (optionally after a valid ED prefix). */
ssize_t wg_noise_intro_parse(const uint8_t *p, size_t len, uint8_t intro[WG_NOISE_INTRO_LEN],
                             const uint8_t **routing, size_t *routing_len);

/* The root key to trust from its configured hex form (the value of WAGATE_WA_ROOT_KEY, read
 * by the caller): NULL or "" gives WG_NOISE_WA_ROOT_KEY; 64 hex digits are the raw key; 66
 * starting with "05" the Signal form. 0 or WG_EINVAL. */
int wg_noise_root_key_from_hex(const char *hex, uint8_t out[WG_KEYS_KEY_LEN]);

/* Verifies a serialized CertChain as whatsmeow does (wa-protocol-core.md §2.7): both
 * signatures 64 bytes; root signs the intermediate details; intermediate issuerSerial == 0 and
 * key 32 bytes; the intermediate key signs the leaf details; leaf issuerSerial == intermediate
 * serial; leaf key == server_static; notBefore <= now <= notAfter for both.
 * 0, WG_EPROTO (undecodable or missing parts), WG_ECRYPTO (any check failed). */
int wg_noise_cert_chain_verify(const uint8_t *chain, size_t len,
                               const uint8_t root_pub[WG_KEYS_KEY_LEN],
                               const uint8_t server_static[WG_KEYS_KEY_LEN], uint64_t now);

#endif
