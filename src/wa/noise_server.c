/* noise_server.c - the Noise XX responder side of WhatsApp's handshake and the certificate
 * chain maker. The shared symmetric state, framing and transport are in noise.c.
 *
 * Responder steps (the mirror of wa-protocol-core.md §2.5-§2.8):
 *   <- e                    MixHash(re)
 *   -> e, ee, s, es         MixHash(e.pub); MixKey(DH(e, re)); EncryptAndHash(s.pub);
 *                           MixKey(DH(s, re)); EncryptAndHash(cert chain)
 *   <- s, se                DecryptAndHash(client static); MixKey(DH(e, rs));
 *                           DecryptAndHash(ClientPayload); Split (responder reads with the
 *                           first key, writes with the second).
 * Ownership: the chain and the received payload are owned by the wg_noise_t. */
#include "wa/noise_server.h"

#include <stdlib.h>
#include <string.h>

#include "util/err.h"
#include "wa/noise_int.h"
#include "wa/proto/handshake.pb-c.h"

#define TAG_LEN WG_KEYS_GCM_TAG_LEN

int wg_noise_server_new(wg_noise_t **out, const wg_keys_pair_t *static_kp, const uint8_t *chain,
                        size_t chain_len, const wg_noise_opts_t *opts,
                        const wg_noise_callbacks_t *cb)
{
    int rv = WG_ENOMEM;
    wg_noise_t *n = NULL;

    if (!out || !static_kp || !chain || !chain_len || chain_len > WG_NOISE_HANDSHAKE_MAX_FRAME / 2)
        return WG_EINVAL;
    if (!(n = wg_noise_int_alloc(WG_NOISE_ROLE_SERVER, static_kp, opts, cb)))
        goto out;
    if (!(n->cert = malloc(chain_len)))
        goto out;
    memcpy(n->cert, chain, chain_len);
    n->cert_len = chain_len;
    wg_noise_int_set_state(n, WG_NOISE_ST_WAIT_INTRO);
    *out = n;
    n = NULL;
    rv = 0;
out:
    wg_noise_free(n);
    return rv;
}

int wg_noise_int_server_hello(wg_noise_t *n, const uint8_t *frame, size_t len, wg_buf_t *out)
{
    int rv = WG_EPROTO;
    Wa__HandshakeMessage *msg = NULL;
    const Wa__HandshakeMessage__ClientHello *ch;
    Wa__HandshakeMessage reply = WA__HANDSHAKE_MESSAGE__INIT;
    Wa__HandshakeMessage__ServerHello sh = WA__HANDSHAKE_MESSAGE__SERVER_HELLO__INIT;
    uint8_t cstatic[32 + TAG_LEN], *cpay = NULL;

    if (!out)
        return WG_EINVAL;
    if (!(msg = wa__handshake_message__unpack(NULL, len, frame)))
        goto out;
    ch = msg->clienthello;
    if (!ch || !ch->has_ephemeral || ch->ephemeral.len != 32)
        goto out;
    memcpy(n->re, ch->ephemeral.data, 32);
    if ((rv = wg_noise_int_mix_hash(n, n->re, 32)) != 0)
        goto out;
    if ((rv = wg_noise_int_make_ephemeral(n)) != 0)
        goto out;
    if ((rv = wg_noise_int_mix_hash(n, n->e.pub, 32)) != 0)
        goto out;
    if ((rv = wg_noise_int_mix_dh(n, n->e.priv, n->re)) != 0) /* ee */
        goto out;
    if ((rv = wg_noise_int_encrypt_hash(n, n->s.pub, 32, cstatic)) != 0)
        goto out;
    if ((rv = wg_noise_int_mix_dh(n, n->s.priv, n->re)) != 0) /* es */
        goto out;
    rv = WG_ENOMEM;
    if (!(cpay = malloc(n->cert_len + TAG_LEN)))
        goto out;
    if ((rv = wg_noise_int_encrypt_hash(n, n->cert, n->cert_len, cpay)) != 0)
        goto out;
    sh.has_ephemeral = 1;
    sh.ephemeral.data = n->e.pub;
    sh.ephemeral.len = 32;
    sh.has_static_ = 1;
    sh.static_.data = cstatic;
    sh.static_.len = sizeof(cstatic);
    sh.has_payload = 1;
    sh.payload.data = cpay;
    sh.payload.len = n->cert_len + TAG_LEN;
    reply.serverhello = &sh;
    if ((rv = wg_noise_int_pack_frame(out, &reply.base)) != 0)
        goto out;
    wg_noise_int_set_state(n, WG_NOISE_ST_WAIT_FINISH);
    rv = 0;
out:
    free(cpay);
    if (msg)
        wa__handshake_message__free_unpacked(msg, NULL);
    return rv;
}

int wg_noise_int_server_finish(wg_noise_t *n, const uint8_t *frame, size_t len)
{
    int rv = WG_EPROTO;
    Wa__HandshakeMessage *msg = NULL;
    const Wa__HandshakeMessage__ClientFinish *cf;
    uint8_t *pay = NULL;

    if (!(msg = wa__handshake_message__unpack(NULL, len, frame)))
        goto out;
    cf = msg->clientfinish;
    if (!cf || !cf->has_static_ || cf->static_.len != 32 + TAG_LEN || !cf->has_payload ||
        cf->payload.len < TAG_LEN)
        goto out;
    if ((rv = wg_noise_int_decrypt_hash(n, cf->static_.data, cf->static_.len, n->rs)) != 0)
        goto out;
    n->have_rs = 1;
    if ((rv = wg_noise_int_mix_dh(n, n->e.priv, n->rs)) != 0) /* se */
        goto out;
    rv = WG_ENOMEM;
    if (!(pay = malloc(cf->payload.len - TAG_LEN + 1)))
        goto out;
    if ((rv = wg_noise_int_decrypt_hash(n, cf->payload.data, cf->payload.len, pay)) != 0)
        goto out;
    if ((rv = wg_noise_int_split(n)) != 0)
        goto out;
    n->payload = pay;
    n->payload_len = cf->payload.len - TAG_LEN;
    n->have_payload = 1;
    pay = NULL;
    /* the chain is sent once per connection */
    free(n->cert);
    n->cert = NULL;
    n->cert_len = 0;
    wg_noise_int_set_state(n, WG_NOISE_ST_TRANSPORT);
    rv = 0;
out:
    free(pay);
    if (msg)
        wa__handshake_message__free_unpacked(msg, NULL);
    return rv;
}

/* Serialized Details, signed by signer_priv, into a NoiseCertificate's fields (malloc'd). */
static int make_cert(uint32_t serial, uint32_t issuer, const uint8_t key[32], uint64_t nb,
                     uint64_t na, const uint8_t signer_priv[32], uint8_t **det, size_t *det_len,
                     uint8_t sig[WG_KEYS_SIG_LEN])
{
    Wa__CertChain__NoiseCertificate__Details d = WA__CERT_CHAIN__NOISE_CERTIFICATE__DETAILS__INIT;
    int rv;

    /* every field written explicitly: Baileys 6.7 fails on an absent issuerSerial */
    d.has_serial = d.has_issuerserial = d.has_key = d.has_notbefore = d.has_notafter = 1;
    d.serial = serial;
    d.issuerserial = issuer;
    d.key.data = (uint8_t *)key;
    d.key.len = 32;
    d.notbefore = nb;
    d.notafter = na;
    *det_len = protobuf_c_message_get_packed_size(&d.base);
    if (!(*det = malloc(*det_len)))
        return WG_ENOMEM;
    protobuf_c_message_pack(&d.base, *det);
    if ((rv = wg_keys_sign(sig, signer_priv, *det, *det_len)) != 0) {
        free(*det);
        *det = NULL;
    }
    return rv;
}

int wg_noise_cert_chain_make(const uint8_t root_priv[WG_KEYS_KEY_LEN],
                             const uint8_t leaf_pub[WG_KEYS_KEY_LEN], uint64_t not_before,
                             uint64_t not_after, uint8_t **out, size_t *out_len)
{
    int rv;
    wg_keys_pair_t inter;
    uint8_t *idet = NULL, *ldet = NULL, isig[WG_KEYS_SIG_LEN], lsig[WG_KEYS_SIG_LEN];
    size_t ilen = 0, llen = 0;
    Wa__CertChain cc = WA__CERT_CHAIN__INIT;
    Wa__CertChain__NoiseCertificate ic = WA__CERT_CHAIN__NOISE_CERTIFICATE__INIT;
    Wa__CertChain__NoiseCertificate lc = WA__CERT_CHAIN__NOISE_CERTIFICATE__INIT;

    if (!root_priv || !leaf_pub || !out || !out_len || not_before > not_after)
        return WG_EINVAL;
    if ((rv = wg_keys_generate(&inter)) != 0)
        goto out;
    if ((rv = make_cert(1, WG_NOISE_CERT_ISSUER_SERIAL, inter.pub, not_before, not_after,
                        root_priv, &idet, &ilen, isig)) != 0)
        goto out;
    if ((rv = make_cert(2, 1, leaf_pub, not_before, not_after, inter.priv, &ldet, &llen, lsig)) !=
        0)
        goto out;
    ic.has_details = ic.has_signature = lc.has_details = lc.has_signature = 1;
    ic.details.data = idet;
    ic.details.len = ilen;
    ic.signature.data = isig;
    ic.signature.len = sizeof(isig);
    lc.details.data = ldet;
    lc.details.len = llen;
    lc.signature.data = lsig;
    lc.signature.len = sizeof(lsig);
    cc.intermediate = &ic;
    cc.leaf = &lc;
    *out_len = wa__cert_chain__get_packed_size(&cc);
    rv = WG_ENOMEM;
    if (!(*out = malloc(*out_len)))
        goto out;
    wa__cert_chain__pack(&cc, *out);
    rv = 0;
out:
    wg_keys_wipe(&inter, sizeof(inter));
    free(idet);
    free(ldet);
    return rv;
}
