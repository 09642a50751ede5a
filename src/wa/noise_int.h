/* noise_int.h - internals shared by noise.c (symmetric state, framing, initiator) and
 * noise_server.c (responder). Not for other modules: use noise.h / noise_server.h. */
#ifndef WG_WA_NOISE_INT_H
#define WG_WA_NOISE_INT_H

#include <protobuf-c/protobuf-c.h>

#include "wa/noise.h"

enum { WG_NOISE_ROLE_CLIENT = 1, WG_NOISE_ROLE_SERVER = 2 };

enum {
    WG_NOISE_ST_NEW = 0,       /* client: before wg_noise_client_start */
    WG_NOISE_ST_WAIT_INTRO,    /* server: reading [ED prefix] + "WA" xx yy */
    WG_NOISE_ST_WAIT_HELLO,    /* server: reading ClientHello */
    WG_NOISE_ST_WAIT_SERVER,   /* client: ClientHello sent, reading ServerHello */
    WG_NOISE_ST_WAIT_FINISH,   /* server: ServerHello sent, reading ClientFinish */
    WG_NOISE_ST_TRANSPORT,
    WG_NOISE_ST_FAILED,
};

struct wg_noise_s {
    int role;
    int state;
    int err; /* sticky error, 0 while healthy */
    wg_noise_callbacks_t cb;
    size_t max_frame;

    /* Noise symmetric state: handshake hash, chaining key, cipher key, shared nonce counter. */
    uint8_t h[32], ck[32], k[32];
    uint64_t nonce;

    wg_keys_pair_t s, e;
    int e_fixed; /* ephemeral supplied by the caller (tests) */
    uint8_t re[32], rs[32];
    int have_rs;

    uint8_t root[32];
    uint8_t intro[WG_NOISE_INTRO_LEN];
    int have_intro;
    uint8_t *routing; /* client: to send; server: received */
    size_t routing_len;
    uint8_t *payload; /* client: ClientPayload to send; server: ClientPayload received */
    size_t payload_len;
    int have_payload;
    uint8_t *cert; /* server: the certificate chain it presents */
    size_t cert_len;

    /* Transport ciphers after Split. */
    uint8_t wkey[32], rkey[32];
    uint64_t wctr, rctr;

    /* Frame reassembly: header bytes seen so far, then the body. */
    uint8_t hdr[WG_NOISE_FRAME_HDR_LEN];
    size_t hdr_have;
    size_t need;
    wg_buf_t body;
    wg_buf_t scratch; /* decrypted frame */
    wg_buf_t pre;     /* server: preamble bytes before the intro is complete */
};

/* Allocates and zeroes a state for `role`; copies opts/cb. NULL on ENOMEM. */
wg_noise_t *wg_noise_int_alloc(int role, const wg_keys_pair_t *static_kp,
                               const wg_noise_opts_t *opts, const wg_noise_callbacks_t *cb);
/* h = ck = protocol name; h = SHA256(h || intro). */
int wg_noise_int_init_symmetric(wg_noise_t *n, const uint8_t intro[WG_NOISE_INTRO_LEN]);
int wg_noise_int_mix_hash(wg_noise_t *n, const uint8_t *p, size_t len);
/* MixKey(DH(priv, pub)). */
int wg_noise_int_mix_dh(wg_noise_t *n, const uint8_t priv[32], const uint8_t pub[32]);
/* EncryptAndHash: ciphertext||tag (len + 16 bytes) into out[]. */
int wg_noise_int_encrypt_hash(wg_noise_t *n, const uint8_t *p, size_t len, uint8_t *out);
/* DecryptAndHash: plaintext (len - 16 bytes) into out[]; WG_ECRYPTO on a bad tag. */
int wg_noise_int_decrypt_hash(wg_noise_t *n, const uint8_t *c, size_t len, uint8_t *out);
/* Split: initiator writes with the first key, responder with the second. */
int wg_noise_int_split(wg_noise_t *n);
/* Makes the ephemeral key pair unless one was supplied. */
int wg_noise_int_make_ephemeral(wg_noise_t *n);
/* The one place the state changes; logs the transition at debug level. */
void wg_noise_int_set_state(wg_noise_t *n, int state);
/* Marks n failed with err (if not already) and returns err. */
int wg_noise_int_fail(wg_noise_t *n, int err);

/* Appends frame(serialized m) to out. */
int wg_noise_int_pack_frame(wg_buf_t *out, const ProtobufCMessage *m);

/* Responder steps, in noise_server.c. */
int wg_noise_int_server_hello(wg_noise_t *n, const uint8_t *frame, size_t len, wg_buf_t *out);
int wg_noise_int_server_finish(wg_noise_t *n, const uint8_t *frame, size_t len);

#endif
