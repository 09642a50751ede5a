/* signal.h - the Signal protocol of one instance, on libsignal-protocol-c 2.3.3: 1:1 sessions
 * (pkmsg/msg), sessions built from the server's prekey bundles, and group sender keys
 * (SenderKeyDistributionMessage, skmsg). wa-protocol-messaging.md §1, §2.3, §3.3, §4.2, §9.
 *
 * wg_signal_t wraps one signal_context (crypto provider on OpenSSL: HMAC-SHA256, SHA-512,
 * AES-CBC-PKCS5 and AES-CTR, RAND_bytes) and a signal_protocol_store_context whose callbacks go
 * to a wg_signal_storage_t: a small vtable that gets/puts/removes blobs by (kind, key). Three
 * storages exist: in memory (tests, the sandbox's simulated phones), on our store (signal_db.c:
 * blobs sealed with the master key, one-time prekeys shared with wa_prekeys), and a bounded
 * LRU cache in front of either. The protocol layer does no I/O itself: whatever the storage does
 * is the only I/O (a store query on the instance's thread).
 *
 * Keys in the storage (wg_signal_kind_t): SESSION and IDENTITY by "name.device" (each device has
 * its own identity key), SENDER_KEY by "group\x1fname.device", PREKEY and SIGNED_PREKEY by the
 * decimal id. Values: session/sender-key records as libsignal serializes them; identity = the 33
 * byte 0x05 key; PREKEY = priv(32) || pub(32) (the same form wa/conn.c stores at upload);
 * SIGNED_PREKEY = priv(32) || pub(32) || signature(64) (the current one comes from the keys given
 * at creation, only older ones would be stored).
 *
 * Trust: on first use, and an identity that changes is accepted and overwritten (§9.4.4: as
 * Baileys and whatsmeow).
 *
 * Threads: a wg_signal_t belongs to one thread (no locking functions are installed).
 * Errors (int): 0; WG_EINVAL bad arguments or an address that is not a device; WG_EPROTO
 * malformed message bytes, and a 1:1 message whose MAC fails (libsignal reports both as an
 * invalid message); WG_ECRYPTO bad signature or key; WG_ENOTFOUND no session, no
 * sender key, or an unknown prekey id; WG_EEXIST a message already decrypted (duplicate/old
 * counter: §2.7 says send the normal receipt); WG_ENOMEM; WG_ESTORE storage failure.
 * Output buffers (*ct, *pt, *skdm) are malloc'd; the caller frees them. */
#ifndef WG_WA_SIGNAL_H
#define WG_WA_SIGNAL_H

#include <stddef.h>
#include <stdint.h>

#include "wa/keys.h"

/* ---- addresses (§1.2) -------------------------------------------------------------------- */

#define WG_SIGNAL_NAME_MAX 96

/* A Signal ProtocolAddress: name = user, or user "_" domain (1 LID, 128 hosted, 129 hosted LID);
 * device = the JID's device (0 when absent). Local only: never on the wire. */
typedef struct {
    char name[WG_SIGNAL_NAME_MAX];
    uint32_t device;
} wg_signal_addr_t;

/* The address of a user or device JID on s.whatsapp.net (or c.us), lid, hosted or hosted.lid.
 * A raw agent on s.whatsapp.net does not change the name (whatsmeow ActualAgent). Device 99
 * outside hosted servers, empty users and other servers (groups, broadcast, newsletter) are
 * WG_EINVAL. */
int wg_signal_addr_from_jid(const char *jid, wg_signal_addr_t *out);
/* "name.device" into buf; 0 or WG_ETOOBIG. */
int wg_signal_addr_format(const wg_signal_addr_t *a, char *buf, size_t cap);

/* ---- storage ----------------------------------------------------------------------------- */

typedef enum {
    WG_SIGNAL_K_SESSION = 1,
    WG_SIGNAL_K_PREKEY = 2,
    WG_SIGNAL_K_SIGNED_PREKEY = 3,
    WG_SIGNAL_K_IDENTITY = 4,
    WG_SIGNAL_K_SENDER_KEY = 5,
} wg_signal_kind_t;

#define WG_SIGNAL_PREKEY_LEN 64         /* priv || pub */
#define WG_SIGNAL_SIGNED_PREKEY_LEN 128 /* priv || pub || signature */
#define WG_SIGNAL_KEY_SEP '\x1f'        /* between group and address in SENDER_KEY keys */

typedef struct wg_signal_storage wg_signal_storage_t;
typedef int (*wg_signal_key_cb)(const char *key, void *arg);

typedef struct wg_signal_storage_ops {
    /* *val malloc'd (caller frees); 0, WG_ENOTFOUND, WG_ENOMEM, WG_ESTORE. */
    int (*get)(wg_signal_storage_t *s, int kind, const char *key, uint8_t **val, size_t *len);
    /* Inserts or replaces a copy. 0, WG_ENOMEM, WG_ESTORE. */
    int (*put)(wg_signal_storage_t *s, int kind, const char *key, const uint8_t *val, size_t len);
    /* 0 also when absent. */
    int (*remove)(wg_signal_storage_t *s, int kind, const char *key);
    /* cb for each key of kind starting with prefix; a non-zero cb return stops and is
     * returned. The storage must not be modified from cb. */
    int (*keys)(wg_signal_storage_t *s, int kind, const char *prefix, wg_signal_key_cb cb,
                void *arg);
    void (*free)(wg_signal_storage_t *s);
} wg_signal_storage_ops_t;

/* Every storage struct starts with this header. */
struct wg_signal_storage {
    const wg_signal_storage_ops_t *ops;
};

/* In memory, unbounded (a phone of the sandbox holds a few dozen records). 0, WG_ENOMEM. */
int wg_signal_storage_mem_new(wg_signal_storage_t **out);
/* Number of records of kind (tests). */
size_t wg_signal_storage_mem_count(wg_signal_storage_t *s, int kind);

/* A write-through LRU cache of at most max_entries records and max_bytes value bytes in front of
 * inner (which it owns from now on, also on failure). Only SESSION, IDENTITY and SENDER_KEY are
 * cached (prekeys are read once); keys() and everything else go to inner. 0, WG_ENOMEM. */
int wg_signal_storage_cache_new(wg_signal_storage_t *inner, size_t max_entries, size_t max_bytes,
                                wg_signal_storage_t **out);
/* Hits and misses so far (tests, stats). */
void wg_signal_storage_cache_stats(wg_signal_storage_t *s, uint64_t *hits, uint64_t *misses);
/* Drops every cached record (the store underneath was rolled back past writes the cache saw);
 * a no-op when s is not a cache. */
void wg_signal_storage_cache_clear(wg_signal_storage_t *s);

/* On our store (wa/signal_db.c): rows of wa_signal and wa_prekeys of instance_id, each value
 * sealed with wg_creds_seal(master_key, label) where label is "<instance>/prekey/<id>" for
 * one-time prekeys (as wa/conn.c stores them) and "<instance>/signal/<kind>/<key>" for the rest.
 * st and master_key are borrowed (they must outlive the storage); instance_id is copied.
 * 0, WG_EINVAL, WG_ENOMEM. */
struct wg_store;
int wg_signal_storage_db_new(struct wg_store *st, const char *instance_id,
                             const uint8_t master_key[32], wg_signal_storage_t **out);

void wg_signal_storage_free(wg_signal_storage_t *s);

/* ---- the instance's Signal state ---------------------------------------------------------- */

typedef struct wg_signal wg_signal_t;

/* Our own long-term keys (from wg_creds_t): they never go through the storage. */
typedef struct {
    uint32_t registration_id;
    wg_keys_pair_t identity;
    uint32_t signed_prekey_id;
    wg_keys_pair_t signed_prekey;
    uint8_t signed_prekey_sig[WG_KEYS_SIG_LEN];
} wg_signal_keys_t;

/* A peer device's prekey bundle, as the <iq xmlns="encrypt"> key fetch returns it (§3.3): keys
 * are the raw 32 bytes of the XMPP layer. */
typedef struct {
    uint32_t registration_id;
    uint8_t identity[WG_KEYS_KEY_LEN];
    uint32_t signed_prekey_id;
    uint8_t signed_prekey[WG_KEYS_KEY_LEN];
    uint8_t signed_prekey_sig[WG_KEYS_SIG_LEN];
    int has_prekey; /* the one-time <key> may be absent */
    uint32_t prekey_id;
    uint8_t prekey[WG_KEYS_KEY_LEN];
} wg_signal_bundle_t;

typedef enum {
    WG_SIGNAL_MSG = 2,   /* SignalMessage: "msg" */
    WG_SIGNAL_PKMSG = 3, /* PreKeySignalMessage: "pkmsg" */
    WG_SIGNAL_SKMSG = 4, /* SenderKeyMessage: "skmsg" */
} wg_signal_type_t;

/* "msg", "pkmsg", "skmsg" (NULL for others) and back (-1 for unknown names). */
const char *wg_signal_type_name(wg_signal_type_t t);
int wg_signal_type_parse(const char *name);

/* A new per-instance state over storage, which it owns from now on (also on failure).
 * keys is copied. 0, WG_ENOMEM, WG_EIO (crypto library). */
int wg_signal_new(const wg_signal_keys_t *keys, wg_signal_storage_t *storage, wg_signal_t **out);
void wg_signal_free(wg_signal_t *s);
wg_signal_storage_t *wg_signal_storage(wg_signal_t *s);

/* Makes n one-time prekeys with ids first..first+n-1 (wrapping past 0xFFFFFF to 1) and puts them
 * in the storage; their key pairs into pairs[] if non-NULL (for an upload). 0 or an error. */
int wg_signal_prekeys_generate(wg_signal_t *s, uint32_t first, size_t n, wg_keys_pair_t *pairs);

/* Our own bundle, as a server would hand it out: the one-time prekey prekey_id is read from the
 * storage (0: a bundle without one). For tests and the sandbox's phones. WG_ENOTFOUND. */
int wg_signal_own_bundle(wg_signal_t *s, uint32_t prekey_id, wg_signal_bundle_t *out);

/* 1 when a session with addr exists, 0 when not, or an error. */
int wg_signal_has_session(wg_signal_t *s, const wg_signal_addr_t *addr);

/* Builds a session from the peer's bundle (verifies the signed-prekey signature: WG_ECRYPTO). */
int wg_signal_process_bundle(wg_signal_t *s, const wg_signal_addr_t *addr,
                             const wg_signal_bundle_t *b);

/* Encrypts pt (already padded: msg.h) for the device: *type is PKMSG until the peer answered,
 * then MSG. WG_ENOTFOUND without a session. */
int wg_signal_encrypt(wg_signal_t *s, const wg_signal_addr_t *to, const uint8_t *pt, size_t len,
                      wg_signal_type_t *type, uint8_t **ct, size_t *ct_len);

/* Decrypts a PKMSG (builds the session, consumes the one-time prekey) or MSG from the device. */
int wg_signal_decrypt(wg_signal_t *s, const wg_signal_addr_t *from, wg_signal_type_t type,
                      const uint8_t *ct, size_t len, uint8_t **pt, size_t *pt_len);

/* The stored identity key of a device (raw 32 bytes): 0 or WG_ENOTFOUND. */
int wg_signal_identity(wg_signal_t *s, const wg_signal_addr_t *addr, uint8_t key[WG_KEYS_KEY_LEN]);

/* Moves the session and identity of from to to (a PN device address to its LID address once
 * the mapping is known, §1.3, as whatsmeow migrateSessionStore): nothing is overwritten when to
 * already has a session. 1 moved, 0 nothing to move (or to already had one), or an error. */
int wg_signal_migrate(wg_signal_t *s, const wg_signal_addr_t *from, const wg_signal_addr_t *to);

/* Deletes the sessions and identities of every device of name (an <identity/> notification,
 * §8; §9.4.5). 0 or an error. */
int wg_signal_delete_user(wg_signal_t *s, const char *name);

/* ---- groups (§4.2): sender key named (group JID text, sender address) ---- */

/* Our sender key for the group (made on first use) as the SenderKeyDistributionMessage bytes
 * (0x33 || protobuf) to put into Message.senderKeyDistributionMessage. */
int wg_signal_group_skdm(wg_signal_t *s, const char *group, const wg_signal_addr_t *self,
                         uint8_t **skdm, size_t *len);
/* skmsg bytes of pt (padded) with our sender key. WG_ENOTFOUND before wg_signal_group_skdm. */
int wg_signal_group_encrypt(wg_signal_t *s, const char *group, const wg_signal_addr_t *self,
                            const uint8_t *pt, size_t len, uint8_t **ct, size_t *ct_len);
/* Stores a sender's distribution message (received inside a pkmsg/msg). */
int wg_signal_group_process(wg_signal_t *s, const char *group, const wg_signal_addr_t *sender,
                            const uint8_t *skdm, size_t len);
/* Decrypts an skmsg. WG_ENOTFOUND when the sender's key is unknown (send a retry receipt). */
int wg_signal_group_decrypt(wg_signal_t *s, const char *group, const wg_signal_addr_t *sender,
                            const uint8_t *ct, size_t len, uint8_t **pt, size_t *pt_len);

#endif
