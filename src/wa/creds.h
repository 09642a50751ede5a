/* creds.h - the WhatsApp credentials of one instance (one linked companion device): the keys
 * made at registration and what pairing added, as one plain record; its byte form; and that
 * byte form sealed with the master key (AES-256-GCM) for the store.
 *
 * Facts: wa-protocol-core.md §8 (what to persist), §5.7 (what pairing adds). One-time prekeys
 * are NOT in this record: they live in their own store table (each sealed the same way, see
 * wg_creds_seal), because they are many and are consumed one by one by the messaging layer.
 *
 * No I/O, no globals. wg_creds_t is plain data (embed or copy it); it holds private keys, so
 * owners wipe it with wg_creds_wipe() when done. Functions return 0 or a negative WG_E*. */
#ifndef WG_WA_CREDS_H
#define WG_WA_CREDS_H

#include <stddef.h>
#include <stdint.h>

#include "wa/keys.h"

#define WG_CREDS_ADV_SECRET_LEN 32
#define WG_CREDS_ACCOUNT_MAX 2048 /* ADVSignedDeviceIdentity is ~200 bytes */
#define WG_CREDS_STR_MAX 128      /* jid, lid, platform, names (NUL-terminated) */
#define WG_CREDS_MASTER_KEY_LEN 32
/* Sealed form: "WGS1" || iv(12) || ciphertext || tag(16). */
#define WG_CREDS_SEAL_MAGIC "WGS1"
#define WG_CREDS_SEAL_OVERHEAD (4 + 12 + 16)

typedef struct {
    /* registration (§8.1-8.5) */
    wg_keys_pair_t noise;         /* Noise static key s */
    wg_keys_pair_t identity;      /* Signal identity key */
    wg_keys_pair_t signed_prekey; /* signed prekey (id 1 at registration) */
    uint32_t signed_prekey_id;    /* 24-bit */
    uint8_t signed_prekey_sig[WG_KEYS_SIG_LEN]; /* XEdDSA(identity, 05 || spk pub) */
    uint32_t registration_id;     /* 14-bit, 1..16380 */
    uint8_t adv_secret[WG_CREDS_ADV_SECRET_LEN];
    /* after pairing (§5.7 step 6); paired == 0 before */
    int paired;
    char jid[WG_CREDS_STR_MAX];      /* "phone:N@s.whatsapp.net" */
    char lid[WG_CREDS_STR_MAX];      /* "lid:N@lid" or "" */
    char platform[WG_CREDS_STR_MAX]; /* primary's platform ("android", "iphone", ...) */
    char business_name[WG_CREDS_STR_MAX];
    char push_name[WG_CREDS_STR_MAX];
    uint8_t primary_identity[WG_KEYS_KEY_LEN]; /* accountSignatureKey: trusted identity */
    uint8_t account[WG_CREDS_ACCOUNT_MAX];     /* full ADVSignedDeviceIdentity */
    size_t account_len;
} wg_creds_t;

/* Fresh registration credentials: noise, identity and signed prekey pairs (clamped), signed
 * prekey id 1 and its signature over 05 || pub, a 14-bit registration id in 1..16380 (as
 * libsignal's key helper), a random adv secret. 0, WG_EIO. */
int wg_creds_generate(wg_creds_t *c);

/* The phone number (user part of jid) and device number of a paired record. 0, WG_EINVAL
 * (not paired or jid malformed). phone receives the digits, NUL-terminated. */
int wg_creds_phone(const wg_creds_t *c, char *phone, size_t cap, uint32_t *device);

/* Byte form (versioned TLV, every field with its exact size). *out malloc'd (caller wipes and
 * frees). 0, WG_ENOMEM. */
int wg_creds_encode(const wg_creds_t *c, uint8_t **out, size_t *len);
/* Parses the byte form strictly into *c (zeroed first). 0, WG_EPROTO. */
int wg_creds_decode(wg_creds_t *c, const uint8_t *p, size_t len);

/* AES-256-GCM with the master key, a random IV and the AAD "wagate:" || label (e.g. the
 * instance id, so a sealed blob cannot be moved to another instance). *out malloc'd.
 * 0, WG_EINVAL, WG_ENOMEM, WG_EIO. */
int wg_creds_seal(const uint8_t key[WG_CREDS_MASTER_KEY_LEN], const char *label,
                  const uint8_t *p, size_t len, uint8_t **out, size_t *out_len);
/* The inverse. 0; WG_EPROTO (not a sealed blob), WG_ECRYPTO (wrong key, label or tampered);
 * WG_ENOMEM. *out malloc'd. */
int wg_creds_open(const uint8_t key[WG_CREDS_MASTER_KEY_LEN], const char *label,
                  const uint8_t *p, size_t len, uint8_t **out, size_t *out_len);

/* encode + seal / open + decode in one step. */
int wg_creds_seal_record(const uint8_t key[WG_CREDS_MASTER_KEY_LEN], const char *label,
                         const wg_creds_t *c, uint8_t **out, size_t *out_len);
int wg_creds_open_record(const uint8_t key[WG_CREDS_MASTER_KEY_LEN], const char *label,
                         const uint8_t *p, size_t len, wg_creds_t *c);

void wg_creds_wipe(wg_creds_t *c);

#endif
