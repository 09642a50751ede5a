/* noise.c - the Noise_XX_25519_AESGCM_SHA256 initiator, the symmetric state shared with the
 * responder (noise_server.c), 3-byte framing with reassembly, the server certificate chain
 * check and the transport ciphers. No I/O: bytes in, bytes and callbacks out (see noise.h).
 *
 * Facts relied on (wa-protocol-core.md): §1.3 intro "WA" 06 03 sent once before the first
 * frame and hashed as the prologue; §1.4 frames are len(3, BE) || payload; §2.1-2.3 h = ck =
 * the 32-byte protocol name, MixKey = HKDF(salt = ck, ikm = dh) -> ck || k, one handshake nonce
 * counter reset by MixKey, IV = 8 zero bytes || counter (BE32), AAD = h, the hash absorbs the
 * ciphertext with its tag; §2.7 the certificate checks; §2.8 Split = HKDF(ck, empty) ->
 * initiator write key || read key; §2.9 transport counters per direction, empty AAD.
 *
 * Ownership: the wg_noise_t owns copies of everything it is given; wg_noise_free() releases
 * and wipes them. */
#include "wa/noise.h"

#include <stdlib.h>
#include <string.h>

#include "util/codec.h"
#include "util/err.h"
#include "util/log.h"
#include "wa/noise_int.h"
#include "wa/proto/handshake.pb-c.h"

#define TAG_LEN WG_KEYS_GCM_TAG_LEN
/* Buffers above this size are released after use, so an idle connection keeps little memory. */
#define KEEP_BUF 16384

/* ---- framing and preamble ------------------------------------------------------------------ */

int wg_noise_frame_encode(wg_buf_t *out, const uint8_t *p, size_t len)
{
    uint8_t hdr[3];
    int rv;

    if (!out || (!p && len))
        return WG_EINVAL;
    if (len > WG_NOISE_MAX_FRAME)
        return WG_ETOOBIG;
    hdr[0] = (uint8_t)(len >> 16);
    hdr[1] = (uint8_t)(len >> 8);
    hdr[2] = (uint8_t)len;
    if ((rv = wg_buf_reserve(out, 3 + len)) != 0)
        return rv;
    wg_buf_append(out, hdr, 3);
    return wg_buf_append(out, p, len);
}

ssize_t wg_noise_frame_parse(const uint8_t *p, size_t len, size_t max, const uint8_t **payload,
                             size_t *plen)
{
    size_t n;
    if (len < 3)
        return WG_EAGAIN;
    n = ((size_t)p[0] << 16) | ((size_t)p[1] << 8) | p[2];
    if (n > max)
        return WG_ETOOBIG;
    if (len - 3 < n)
        return WG_EAGAIN;
    *payload = p + 3;
    *plen = n;
    return (ssize_t)(3 + n);
}

int wg_noise_intro_encode(wg_buf_t *out, const uint8_t intro[WG_NOISE_INTRO_LEN],
                          const uint8_t *routing_info, size_t routing_len)
{
    int rv;
    if (!out || !intro || (!routing_info && routing_len))
        return WG_EINVAL;
    if (routing_len > WG_NOISE_MAX_ROUTING_INFO)
        return WG_EINVAL;
    if ((rv = wg_buf_reserve(out, 7 + routing_len + WG_NOISE_INTRO_LEN)) != 0)
        return rv;
    if (routing_len) {
        /* "ED", 00, 01, then the length as one byte + uint16 BE (wa-protocol-core.md §1.5) */
        uint8_t ed[7] = {'E', 'D', 0, 1, (uint8_t)(routing_len >> 16), (uint8_t)(routing_len >> 8),
                         (uint8_t)routing_len};
        wg_buf_append(out, ed, sizeof(ed));
        wg_buf_append(out, routing_info, routing_len);
    }
    return wg_buf_append(out, intro, WG_NOISE_INTRO_LEN);
}

ssize_t wg_noise_intro_parse(const uint8_t *p, size_t len, uint8_t intro[WG_NOISE_INTRO_LEN],
                             const uint8_t **routing, size_t *routing_len)
{
    size_t off = 0, rl = 0;

    *routing = NULL;
    *routing_len = 0;
    if (len >= 1 && p[0] == 'E') {
        if (len < 7)
            return (len >= 2 && p[1] != 'D') || (len >= 3 && p[2] != 0) ||
                           (len >= 4 && p[3] != 1)
                       ? WG_EPROTO
                       : WG_EAGAIN;
        if (p[1] != 'D' || p[2] != 0 || p[3] != 1)
            return WG_EPROTO;
        rl = ((size_t)p[4] << 16) | ((size_t)p[5] << 8) | p[6];
        if (rl == 0 || rl > WG_NOISE_MAX_ROUTING_INFO)
            return WG_EPROTO;
        off = 7 + rl;
    }
    /* "WA" + magic + dictionary version; the last two bytes are the peer's business. */
    if (len > off && p[off] != 'W')
        return WG_EPROTO;
    if (len > off + 1 && p[off + 1] != 'A')
        return WG_EPROTO;
    if (len < off + WG_NOISE_INTRO_LEN)
        return WG_EAGAIN;
    memcpy(intro, p + off, WG_NOISE_INTRO_LEN);
    if (rl) {
        *routing = p + 7;
        *routing_len = rl;
    }
    return (ssize_t)(off + WG_NOISE_INTRO_LEN);
}

int wg_noise_int_pack_frame(wg_buf_t *out, const ProtobufCMessage *m)
{
    size_t sz = protobuf_c_message_get_packed_size(m);
    int rv;

    if (!out)
        return WG_EINVAL;
    if (sz > WG_NOISE_MAX_FRAME)
        return WG_ETOOBIG;
    if ((rv = wg_buf_reserve(out, 3 + sz)) != 0)
        return rv;
    uint8_t *d = out->data + out->len;
    d[0] = (uint8_t)(sz >> 16);
    d[1] = (uint8_t)(sz >> 8);
    d[2] = (uint8_t)sz;
    if (protobuf_c_message_pack(m, d + 3) != sz)
        return WG_EIO;
    out->len += 3 + sz;
    out->data[out->len] = 0;
    return 0;
}

/* ---- symmetric state ------------------------------------------------------------------------ */

static const char *state_name(int st)
{
    static const char *const names[] = {"new",         "wait_intro",  "wait_hello", "wait_server",
                                        "wait_finish", "transport",   "failed"};
    return st >= 0 && st <= WG_NOISE_ST_FAILED ? names[st] : "?";
}

void wg_noise_int_set_state(wg_noise_t *n, int state)
{
    wg_log(WG_LOG_DEBUG, "noise", "role=%s state=%s->%s",
           n->role == WG_NOISE_ROLE_CLIENT ? "client" : "server", state_name(n->state),
           state_name(state));
    n->state = state;
}

int wg_noise_int_fail(wg_noise_t *n, int err)
{
    if (!n->err) {
        n->err = err;
        wg_noise_int_set_state(n, WG_NOISE_ST_FAILED);
        wg_keys_wipe(n->k, sizeof(n->k));
        wg_keys_wipe(n->wkey, sizeof(n->wkey));
        wg_keys_wipe(n->rkey, sizeof(n->rkey));
        wg_keys_wipe(&n->e, sizeof(n->e));
    }
    return n->err;
}

int wg_noise_int_init_symmetric(wg_noise_t *n, const uint8_t intro[WG_NOISE_INTRO_LEN])
{
    memcpy(n->h, WG_NOISE_PROTOCOL_NAME, 32);
    memcpy(n->ck, WG_NOISE_PROTOCOL_NAME, 32);
    memcpy(n->k, WG_NOISE_PROTOCOL_NAME, 32);
    n->nonce = 0;
    memcpy(n->intro, intro, WG_NOISE_INTRO_LEN);
    n->have_intro = 1;
    return wg_noise_int_mix_hash(n, intro, WG_NOISE_INTRO_LEN);
}

int wg_noise_int_mix_hash(wg_noise_t *n, const uint8_t *p, size_t len)
{
    return wg_keys_sha256(n->h, n->h, 32, p, len);
}

int wg_noise_int_mix_dh(wg_noise_t *n, const uint8_t priv[32], const uint8_t pub[32])
{
    uint8_t dh[32], okm[64];
    int rv;

    if ((rv = wg_keys_dh(dh, priv, pub)) != 0)
        goto out;
    if ((rv = wg_keys_hkdf_sha256(okm, 64, n->ck, 32, dh, 32, NULL, 0)) != 0)
        goto out;
    memcpy(n->ck, okm, 32);
    memcpy(n->k, okm + 32, 32);
    n->nonce = 0;
out:
    wg_keys_wipe(dh, sizeof(dh));
    wg_keys_wipe(okm, sizeof(okm));
    return rv;
}

static void make_iv(uint8_t iv[12], uint64_t ctr)
{
    memset(iv, 0, 8);
    iv[8] = (uint8_t)(ctr >> 24);
    iv[9] = (uint8_t)(ctr >> 16);
    iv[10] = (uint8_t)(ctr >> 8);
    iv[11] = (uint8_t)ctr;
}

int wg_noise_int_encrypt_hash(wg_noise_t *n, const uint8_t *p, size_t len, uint8_t *out)
{
    uint8_t iv[12];
    int rv;

    if (n->nonce > 0xFFFFFFFFu)
        return WG_ECRYPTO;
    make_iv(iv, n->nonce);
    if ((rv = wg_keys_gcm_encrypt(out, n->k, iv, n->h, 32, p, len)) != 0)
        return rv;
    n->nonce++;
    return wg_noise_int_mix_hash(n, out, len + TAG_LEN);
}

int wg_noise_int_decrypt_hash(wg_noise_t *n, const uint8_t *c, size_t len, uint8_t *out)
{
    uint8_t iv[12];
    int rv;

    if (len < TAG_LEN || n->nonce > 0xFFFFFFFFu)
        return WG_ECRYPTO;
    make_iv(iv, n->nonce);
    if ((rv = wg_keys_gcm_decrypt(out, n->k, iv, n->h, 32, c, len)) != 0)
        return rv == WG_EINVAL ? WG_ECRYPTO : rv;
    n->nonce++;
    return wg_noise_int_mix_hash(n, c, len);
}

int wg_noise_int_split(wg_noise_t *n)
{
    uint8_t okm[64];
    int rv;

    /* HKDF(salt = ck, empty IKM): first half is the initiator's sending key. */
    if ((rv = wg_keys_hkdf_sha256(okm, 64, n->ck, 32, NULL, 0, NULL, 0)) != 0)
        goto out;
    if (n->role == WG_NOISE_ROLE_CLIENT) {
        memcpy(n->wkey, okm, 32);
        memcpy(n->rkey, okm + 32, 32);
    } else {
        memcpy(n->rkey, okm, 32);
        memcpy(n->wkey, okm + 32, 32);
    }
    n->wctr = n->rctr = 0;
    /* The handshake secrets are no longer needed; h stays for channel binding / tests. */
    wg_keys_wipe(n->ck, sizeof(n->ck));
    wg_keys_wipe(n->k, sizeof(n->k));
    wg_keys_wipe(&n->e, sizeof(n->e));
out:
    wg_keys_wipe(okm, sizeof(okm));
    return rv;
}

int wg_noise_int_make_ephemeral(wg_noise_t *n)
{
    if (n->e_fixed)
        return 0;
    return wg_keys_generate(&n->e);
}

wg_noise_t *wg_noise_int_alloc(int role, const wg_keys_pair_t *static_kp,
                               const wg_noise_opts_t *opts, const wg_noise_callbacks_t *cb)
{
    wg_noise_t *n = calloc(1, sizeof(*n));
    if (!n)
        return NULL;
    n->role = role;
    n->s = *static_kp;
    if (cb)
        n->cb = *cb;
    n->max_frame = WG_NOISE_MAX_FRAME;
    memcpy(n->root, WG_NOISE_WA_ROOT_KEY, 32);
    if (opts) {
        if (opts->max_frame && opts->max_frame < WG_NOISE_MAX_FRAME)
            n->max_frame = opts->max_frame;
        if (opts->root_pub)
            memcpy(n->root, opts->root_pub, 32);
        if (opts->ephemeral) {
            n->e = *opts->ephemeral;
            n->e_fixed = 1;
        }
    }
    wg_buf_init(&n->body, WG_NOISE_MAX_FRAME);
    wg_buf_init(&n->scratch, WG_NOISE_MAX_FRAME);
    wg_buf_init(&n->pre, 7 + WG_NOISE_MAX_ROUTING_INFO + WG_NOISE_INTRO_LEN);
    return n;
}

void wg_noise_free(wg_noise_t *n)
{
    if (!n)
        return;
    wg_buf_dispose(&n->body);
    if (n->scratch.data)
        wg_keys_wipe(n->scratch.data, n->scratch.cap);
    wg_buf_dispose(&n->scratch);
    wg_buf_dispose(&n->pre);
    if (n->payload)
        wg_keys_wipe(n->payload, n->payload_len);
    free(n->payload);
    free(n->routing);
    free(n->cert);
    wg_keys_wipe(n, sizeof(*n));
    free(n);
}

/* ---- certificate chain ---------------------------------------------------------------------- */

/* Nested messages have no generated unpack function in protobuf-c: use the descriptor. */
static Wa__CertChain__NoiseCertificate__Details *details_unpack(const uint8_t *p, size_t len)
{
    return (Wa__CertChain__NoiseCertificate__Details *)protobuf_c_message_unpack(
        &wa__cert_chain__noise_certificate__details__descriptor, NULL, len, p);
}

static int cert_time_ok(const Wa__CertChain__NoiseCertificate__Details *d, uint64_t now)
{
    /* absent fields read as 0, as protobuf getters do in whatsmeow */
    uint64_t nb = d->has_notbefore ? d->notbefore : 0;
    uint64_t na = d->has_notafter ? d->notafter : 0;
    return nb <= now && now <= na;
}

int wg_noise_cert_chain_verify(const uint8_t *chain, size_t len,
                               const uint8_t root_pub[WG_KEYS_KEY_LEN],
                               const uint8_t server_static[WG_KEYS_KEY_LEN], uint64_t now)
{
    int rv = WG_EPROTO;
    Wa__CertChain *cc = NULL;
    Wa__CertChain__NoiseCertificate__Details *id = NULL, *ld = NULL;
    const Wa__CertChain__NoiseCertificate *inter, *leaf;

    if (!chain || !root_pub || !server_static)
        return WG_EINVAL;
    if (!(cc = wa__cert_chain__unpack(NULL, len, chain)))
        goto out;
    inter = cc->intermediate;
    leaf = cc->leaf;
    if (!inter || !leaf || !inter->has_details || !inter->has_signature || !leaf->has_details ||
        !leaf->has_signature)
        goto out;
    rv = WG_ECRYPTO;
    if (inter->signature.len != WG_KEYS_SIG_LEN || leaf->signature.len != WG_KEYS_SIG_LEN)
        goto out;
    if (wg_keys_verify(root_pub, inter->details.data, inter->details.len,
                       inter->signature.data) != 0)
        goto out;
    if (!(id = details_unpack(inter->details.data, inter->details.len))) {
        rv = WG_EPROTO;
        goto out;
    }
    if ((id->has_issuerserial ? id->issuerserial : 0) != WG_NOISE_CERT_ISSUER_SERIAL ||
        !id->has_key || id->key.len != WG_KEYS_KEY_LEN)
        goto out;
    if (wg_keys_verify(id->key.data, leaf->details.data, leaf->details.len,
                       leaf->signature.data) != 0)
        goto out;
    if (!cert_time_ok(id, now))
        goto out;
    if (!(ld = details_unpack(leaf->details.data, leaf->details.len))) {
        rv = WG_EPROTO;
        goto out;
    }
    if ((ld->has_issuerserial ? ld->issuerserial : 0) != (id->has_serial ? id->serial : 0))
        goto out;
    /* whatsmeow checks this and so do we: the chain must certify the key we talk to. */
    if (!ld->has_key || ld->key.len != WG_KEYS_KEY_LEN ||
        memcmp(ld->key.data, server_static, WG_KEYS_KEY_LEN) != 0)
        goto out;
    if (!cert_time_ok(ld, now))
        goto out;
    rv = 0;
out:
    if (ld)
        protobuf_c_message_free_unpacked(&ld->base, NULL);
    if (id)
        protobuf_c_message_free_unpacked(&id->base, NULL);
    if (cc)
        wa__cert_chain__free_unpacked(cc, NULL);
    return rv;
}

int wg_noise_root_key_from_hex(const char *hex, uint8_t out[WG_KEYS_KEY_LEN])
{
    uint8_t k[WG_KEYS_DJB_LEN];
    size_t len;
    ssize_t n;

    if (!out)
        return WG_EINVAL;
    if (!hex || !*hex) {
        memcpy(out, WG_NOISE_WA_ROOT_KEY, WG_KEYS_KEY_LEN);
        return 0;
    }
    len = strlen(hex);
    if (len != 2 * WG_KEYS_KEY_LEN && len != 2 * WG_KEYS_DJB_LEN)
        return WG_EINVAL;
    n = wg_hex_decode(hex, len, k, sizeof(k));
    if (n == WG_KEYS_KEY_LEN) {
        memcpy(out, k, WG_KEYS_KEY_LEN);
        return 0;
    }
    if (n == WG_KEYS_DJB_LEN)
        return wg_keys_djb_decode(out, k, (size_t)n);
    return WG_EINVAL;
}

/* ---- initiator ------------------------------------------------------------------------------ */

int wg_noise_client_new(wg_noise_t **out, const wg_keys_pair_t *static_kp,
                        const wg_noise_opts_t *opts, const wg_noise_callbacks_t *cb)
{
    int rv = WG_ENOMEM;
    wg_noise_t *n = NULL;
    const uint8_t *intro = (const uint8_t *)WG_NOISE_INTRO;

    if (!out || !static_kp)
        return WG_EINVAL;
    if (opts && ((opts->routing_info_len && !opts->routing_info) ||
                 opts->routing_info_len > WG_NOISE_MAX_ROUTING_INFO))
        return WG_EINVAL;
    if (!(n = wg_noise_int_alloc(WG_NOISE_ROLE_CLIENT, static_kp, opts, cb)))
        goto out;
    if (opts && opts->intro)
        intro = opts->intro;
    if (opts && opts->routing_info_len) {
        if (!(n->routing = malloc(opts->routing_info_len)))
            goto out;
        memcpy(n->routing, opts->routing_info, opts->routing_info_len);
        n->routing_len = opts->routing_info_len;
    }
    if ((rv = wg_noise_int_init_symmetric(n, intro)) != 0)
        goto out;
    wg_noise_int_set_state(n, WG_NOISE_ST_NEW);
    *out = n;
    n = NULL;
out:
    wg_noise_free(n);
    return rv;
}

int wg_noise_client_start(wg_noise_t *n, const uint8_t *payload, size_t payload_len,
                          wg_buf_t *out)
{
    int rv;
    size_t mark;
    Wa__HandshakeMessage msg = WA__HANDSHAKE_MESSAGE__INIT;
    Wa__HandshakeMessage__ClientHello hello = WA__HANDSHAKE_MESSAGE__CLIENT_HELLO__INIT;

    if (!n || !out || (!payload && payload_len))
        return WG_EINVAL;
    if (n->err)
        return n->err;
    if (n->role != WG_NOISE_ROLE_CLIENT || n->state != WG_NOISE_ST_NEW)
        return WG_EINVAL;
    if (payload_len > WG_NOISE_HANDSHAKE_MAX_FRAME)
        return WG_ETOOBIG;
    mark = out->len;
    if (!(n->payload = malloc(payload_len ? payload_len : 1)))
        return WG_ENOMEM;
    if (payload_len)
        memcpy(n->payload, payload, payload_len);
    n->payload_len = payload_len;

    /* -> e */
    if ((rv = wg_noise_int_make_ephemeral(n)) != 0)
        goto out;
    if ((rv = wg_noise_int_mix_hash(n, n->e.pub, 32)) != 0)
        goto out;
    hello.has_ephemeral = 1;
    hello.ephemeral.data = n->e.pub;
    hello.ephemeral.len = 32;
    msg.clienthello = &hello;
    if ((rv = wg_noise_intro_encode(out, n->intro, n->routing, n->routing_len)) != 0)
        goto out;
    if ((rv = wg_noise_int_pack_frame(out, &msg.base)) != 0)
        goto out;
    wg_noise_int_set_state(n, WG_NOISE_ST_WAIT_SERVER);
out:
    if (rv != 0) {
        out->len = mark;
        if (out->data)
            out->data[mark] = 0;
        wg_noise_int_fail(n, rv);
    }
    return rv;
}

/* <- e, ee, s, es (ServerHello); then -> s, se (ClientFinish) and Split. */
static int client_on_server_hello(wg_noise_t *n, const uint8_t *p, size_t len, uint64_t now,
                                  wg_buf_t *out)
{
    int rv = WG_EPROTO;
    Wa__HandshakeMessage *msg = NULL;
    const Wa__HandshakeMessage__ServerHello *sh;
    uint8_t *cert = NULL, *cpay = NULL, cstatic[32 + TAG_LEN];
    Wa__HandshakeMessage fmsg = WA__HANDSHAKE_MESSAGE__INIT;
    Wa__HandshakeMessage__ClientFinish fin = WA__HANDSHAKE_MESSAGE__CLIENT_FINISH__INIT;

    if (!out)
        return WG_EINVAL;
    if (!(msg = wa__handshake_message__unpack(NULL, len, p)))
        goto out;
    sh = msg->serverhello;
    if (!sh || !sh->has_ephemeral || sh->ephemeral.len != 32 || !sh->has_static_ ||
        sh->static_.len != 32 + TAG_LEN || !sh->has_payload || sh->payload.len < TAG_LEN)
        goto out;

    memcpy(n->re, sh->ephemeral.data, 32);
    if ((rv = wg_noise_int_mix_hash(n, n->re, 32)) != 0)
        goto out;
    if ((rv = wg_noise_int_mix_dh(n, n->e.priv, n->re)) != 0) /* ee */
        goto out;
    if ((rv = wg_noise_int_decrypt_hash(n, sh->static_.data, sh->static_.len, n->rs)) != 0)
        goto out;
    n->have_rs = 1;
    if ((rv = wg_noise_int_mix_dh(n, n->e.priv, n->rs)) != 0) /* es */
        goto out;
    rv = WG_ENOMEM;
    if (!(cert = malloc(sh->payload.len - TAG_LEN + 1)))
        goto out;
    if ((rv = wg_noise_int_decrypt_hash(n, sh->payload.data, sh->payload.len, cert)) != 0)
        goto out;
    if ((rv = wg_noise_cert_chain_verify(cert, sh->payload.len - TAG_LEN, n->root, n->rs, now)) !=
        0) {
        wg_log(WG_LOG_WARN, "noise", "cert_chain=rejected err=%s", wg_strerror(rv));
        goto out;
    }

    /* -> s, se */
    if ((rv = wg_noise_int_encrypt_hash(n, n->s.pub, 32, cstatic)) != 0)
        goto out;
    if ((rv = wg_noise_int_mix_dh(n, n->s.priv, n->re)) != 0) /* se */
        goto out;
    rv = WG_ENOMEM;
    if (!(cpay = malloc(n->payload_len + TAG_LEN)))
        goto out;
    if ((rv = wg_noise_int_encrypt_hash(n, n->payload, n->payload_len, cpay)) != 0)
        goto out;
    fin.has_static_ = 1;
    fin.static_.data = cstatic;
    fin.static_.len = sizeof(cstatic);
    fin.has_payload = 1;
    fin.payload.data = cpay;
    fin.payload.len = n->payload_len + TAG_LEN;
    fmsg.clientfinish = &fin;
    if ((rv = wg_noise_int_pack_frame(out, &fmsg.base)) != 0)
        goto out;
    if ((rv = wg_noise_int_split(n)) != 0)
        goto out;
    /* the ClientPayload was for the server only; do not keep it */
    wg_keys_wipe(n->payload, n->payload_len);
    free(n->payload);
    n->payload = NULL;
    n->payload_len = 0;
    wg_noise_int_set_state(n, WG_NOISE_ST_TRANSPORT);
    rv = 0;
out:
    free(cert);
    free(cpay);
    if (msg)
        wa__handshake_message__free_unpacked(msg, NULL);
    return rv;
}

/* ---- transport ------------------------------------------------------------------------------ */

static int transport_frame(wg_noise_t *n, const uint8_t *p, size_t len)
{
    uint8_t iv[12];
    int rv;

    if (len < TAG_LEN || n->rctr > 0xFFFFFFFFu)
        return WG_ECRYPTO;
    wg_buf_reset(&n->scratch);
    if ((rv = wg_buf_reserve(&n->scratch, len - TAG_LEN)) != 0)
        return rv;
    make_iv(iv, n->rctr);
    n->rctr++;
    if ((rv = wg_keys_gcm_decrypt(n->scratch.data, n->rkey, iv, NULL, 0, p, len)) != 0)
        return WG_ECRYPTO;
    n->scratch.len = len - TAG_LEN;
    rv = n->cb.on_frame ? n->cb.on_frame(n->cb.ud, n->scratch.data, n->scratch.len) : 0;
    if (n->scratch.cap > KEEP_BUF) {
        wg_keys_wipe(n->scratch.data, n->scratch.cap);
        wg_buf_dispose(&n->scratch);
    }
    return rv;
}

int wg_noise_encrypt_frame(wg_noise_t *n, const uint8_t *p, size_t len, wg_buf_t *out)
{
    uint8_t iv[12];
    uint8_t *d;
    size_t clen;
    int rv;

    if (!n || !out || (!p && len))
        return WG_EINVAL;
    if (n->err)
        return n->err;
    if (n->state != WG_NOISE_ST_TRANSPORT)
        return WG_EINVAL;
    if (len > WG_NOISE_MAX_FRAME - TAG_LEN)
        return WG_ETOOBIG;
    if (n->wctr > 0xFFFFFFFFu) /* nonce space exhausted: never reuse an IV */
        return wg_noise_int_fail(n, WG_ECRYPTO);
    clen = len + TAG_LEN;
    if ((rv = wg_buf_reserve(out, 3 + clen)) != 0)
        return rv;
    d = out->data + out->len;
    d[0] = (uint8_t)(clen >> 16);
    d[1] = (uint8_t)(clen >> 8);
    d[2] = (uint8_t)clen;
    make_iv(iv, n->wctr);
    if ((rv = wg_keys_gcm_encrypt(d + 3, n->wkey, iv, NULL, 0, p, len)) != 0)
        return wg_noise_int_fail(n, rv);
    n->wctr++;
    out->len += 3 + clen;
    out->data[out->len] = 0;
    return 0;
}

/* ---- the reader ----------------------------------------------------------------------------- */

static size_t frame_limit(const wg_noise_t *n)
{
    if (n->state == WG_NOISE_ST_TRANSPORT)
        return n->max_frame;
    return n->max_frame < WG_NOISE_HANDSHAKE_MAX_FRAME ? n->max_frame
                                                       : WG_NOISE_HANDSHAKE_MAX_FRAME;
}

static int process_frame(wg_noise_t *n, const uint8_t *p, size_t len, uint64_t now,
                         wg_buf_t *out)
{
    int rv;

    switch (n->state) {
    case WG_NOISE_ST_TRANSPORT:
        return transport_frame(n, p, len);
    case WG_NOISE_ST_WAIT_SERVER:
        rv = client_on_server_hello(n, p, len, now, out);
        break;
    case WG_NOISE_ST_WAIT_HELLO:
        return wg_noise_int_server_hello(n, p, len, out);
    case WG_NOISE_ST_WAIT_FINISH:
        rv = wg_noise_int_server_finish(n, p, len);
        break;
    default:
        return WG_EPROTO;
    }
    if (rv == 0 && n->state == WG_NOISE_ST_TRANSPORT && n->cb.on_handshake)
        rv = n->cb.on_handshake(n->cb.ud, n);
    return rv;
}

/* Server: collects the preamble; on success *data and *len are advanced past it. */
static int server_preamble(wg_noise_t *n, const uint8_t **data, size_t *len)
{
    uint8_t intro[WG_NOISE_INTRO_LEN];
    const uint8_t *ri;
    size_t rl, before = n->pre.len, room = n->pre.limit - n->pre.len;
    size_t take = *len < room ? *len : room;
    ssize_t c;
    int rv;

    if ((rv = wg_buf_append(&n->pre, *data, take)) != 0)
        return rv;
    c = wg_noise_intro_parse(n->pre.data, n->pre.len, intro, &ri, &rl);
    if (c == WG_EAGAIN) {
        if (n->pre.len >= n->pre.limit)
            return WG_EPROTO;
        *data += take;
        *len -= take;
        return 0;
    }
    if (c < 0)
        return (int)c;
    if (rl) {
        if (!(n->routing = malloc(rl)))
            return WG_ENOMEM;
        memcpy(n->routing, ri, rl);
        n->routing_len = rl;
    }
    if ((rv = wg_noise_int_init_symmetric(n, intro)) != 0)
        return rv;
    /* c counts bytes of pre; those before this call were consumed by earlier calls. */
    *data += (size_t)c - before;
    *len -= (size_t)c - before;
    wg_buf_dispose(&n->pre);
    wg_noise_int_set_state(n, WG_NOISE_ST_WAIT_HELLO);
    return 0;
}

int wg_noise_feed(wg_noise_t *n, const uint8_t *data, size_t len, uint64_t now, wg_buf_t *out)
{
    int rv = 0;

    if (!n || (!data && len))
        return WG_EINVAL;
    if (n->err)
        return n->err;
    if (n->state == WG_NOISE_ST_NEW)
        return WG_EINVAL; /* wg_noise_client_start first */
    if (n->state == WG_NOISE_ST_WAIT_INTRO && len) {
        if ((rv = server_preamble(n, &data, &len)) != 0)
            goto out;
        if (n->state == WG_NOISE_ST_WAIT_INTRO)
            return 0;
    }
    while (len > 0) {
        if (n->hdr_have < WG_NOISE_FRAME_HDR_LEN) {
            if (n->hdr_have == 0) {
                /* Fast path: a whole frame in the chunk is processed without copying. */
                const uint8_t *pl;
                size_t plen;
                ssize_t c = wg_noise_frame_parse(data, len, frame_limit(n), &pl, &plen);
                if (c == WG_ETOOBIG) {
                    rv = WG_ETOOBIG;
                    goto out;
                }
                if (c > 0) {
                    data += c;
                    len -= (size_t)c;
                    if ((rv = process_frame(n, pl, plen, now, out)) != 0)
                        goto out;
                    continue;
                }
            }
            size_t take = WG_NOISE_FRAME_HDR_LEN - n->hdr_have;
            take = take < len ? take : len;
            memcpy(n->hdr + n->hdr_have, data, take);
            n->hdr_have += take;
            data += take;
            len -= take;
            if (n->hdr_have < WG_NOISE_FRAME_HDR_LEN)
                break;
            n->need = ((size_t)n->hdr[0] << 16) | ((size_t)n->hdr[1] << 8) | n->hdr[2];
            if (n->need > frame_limit(n)) {
                rv = WG_ETOOBIG;
                goto out;
            }
            /* no reservation up front: memory grows with the bytes that really arrive */
            wg_buf_reset(&n->body);
        }
        size_t take = n->need - n->body.len;
        take = take < len ? take : len;
        if ((rv = wg_buf_append(&n->body, data, take)) != 0)
            goto out;
        data += take;
        len -= take;
        if (n->body.len == n->need) {
            n->hdr_have = 0;
            rv = process_frame(n, n->body.data, n->body.len, now, out);
            wg_buf_reset(&n->body);
            if (n->body.cap > KEEP_BUF)
                wg_buf_dispose(&n->body);
            if (rv != 0)
                goto out;
        }
    }
out:
    if (rv != 0) {
        if (rv == WG_ETOOBIG)
            wg_log(WG_LOG_WARN, "noise", "frame=too_big limit=%zu", frame_limit(n));
        wg_noise_int_fail(n, rv);
    }
    return rv;
}

/* ---- accessors ------------------------------------------------------------------------------ */

int wg_noise_is_established(const wg_noise_t *n)
{
    return n && !n->err && n->state == WG_NOISE_ST_TRANSPORT;
}

int wg_noise_error(const wg_noise_t *n)
{
    return n ? n->err : WG_EINVAL;
}

const uint8_t *wg_noise_peer_static(const wg_noise_t *n)
{
    return n && n->have_rs ? n->rs : NULL;
}

const uint8_t *wg_noise_client_payload(const wg_noise_t *n, size_t *len)
{
    if (!n || n->role != WG_NOISE_ROLE_SERVER || !n->have_payload)
        return NULL;
    if (len)
        *len = n->payload_len;
    return n->payload;
}

const uint8_t *wg_noise_intro(const wg_noise_t *n)
{
    return n && n->have_intro ? n->intro : NULL;
}

const uint8_t *wg_noise_routing_info(const wg_noise_t *n, size_t *len)
{
    if (!n || !n->routing)
        return NULL;
    if (len)
        *len = n->routing_len;
    return n->routing;
}

const uint8_t *wg_noise_handshake_hash(const wg_noise_t *n)
{
    return n ? n->h : NULL;
}
