/* noise_server.h - the Noise XX responder (what WhatsApp's server does), for the sandbox and
 * for tests, plus the certificate-chain maker.
 *
 * A responder is a wg_noise_t driven with the same calls as the initiator (noise.h):
 * wg_noise_feed() reads the preamble ([ED prefix] + "WA" xx yy, hashed as prologue) and the
 * ClientHello, appends the ServerHello (ephemeral, encrypted static key, encrypted certificate
 * chain) to `out`, then reads ClientFinish; on_handshake fires once the client's static key
 * (wg_noise_peer_static) and ClientPayload bytes (wg_noise_client_payload) are authenticated.
 * After that, frames go both ways with wg_noise_feed / wg_noise_encrypt_frame.
 * The responder does not judge the intro's version bytes: wg_noise_intro() tells the caller. */
#ifndef WG_WA_NOISE_SERVER_H
#define WG_WA_NOISE_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "wa/noise.h"

/* New responder with the server's static key pair and the serialized CertChain it presents
 * (its leaf key must be static_kp->pub for clients to accept it). chain is copied; opts may be
 * NULL (max_frame and ephemeral are used). 0, WG_EINVAL, WG_ENOMEM. */
int wg_noise_server_new(wg_noise_t **out, const wg_keys_pair_t *static_kp, const uint8_t *chain,
                        size_t chain_len, const wg_noise_opts_t *opts,
                        const wg_noise_callbacks_t *cb);

/* Makes a serialized CertChain: a fresh intermediate key pair (serial 1, issuerSerial 0)
 * signed by root_priv, and a leaf (serial 2, issuerSerial 1, key = leaf_pub) signed by the
 * intermediate, both valid from not_before to not_after (Unix seconds). *out is malloc'd; the
 * caller frees it. 0, WG_EINVAL, WG_ENOMEM, WG_EIO. */
int wg_noise_cert_chain_make(const uint8_t root_priv[WG_KEYS_KEY_LEN],
                             const uint8_t leaf_pub[WG_KEYS_KEY_LEN], uint64_t not_before,
                             uint64_t not_after, uint8_t **out, size_t *out_len);

#endif
