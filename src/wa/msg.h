/* msg.h - the plaintext layer of messaging: the random padding around a Message protobuf
 * (wa-protocol-messaging.md §2.4), decoding a received Message into a flat description and JSON
 * (§2.5, §2.6, §6.4 field numbers), building the Message bytes we send (text, quoted replies,
 * reactions, revokes, edits, sender-key distribution, the deviceSentMessage copy for our own
 * devices, §3.4) and message ids (§3.1).
 *
 * Pure: no I/O, no globals; randomness only where the caller does not pass it. Peer bytes are
 * decoded only through wg_pb_unpack (bounded nesting). Output buffers are malloc'd (caller
 * frees). A wg_msg_t owns the decoded protobuf; every pointer in it lives until wg_msg_free.
 * Functions return 0 or a negative WG_E*: WG_EPROTO for bytes that are not what they claim. */
#ifndef WG_WA_MSG_H
#define WG_WA_MSG_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* ---- padding (§2.4) ---------------------------------------------------------------------- */

/* p || N bytes of value N into *out (len + N bytes). n = 1..15 picks N; n = 0 draws N at random
 * in 1..15 (as whatsmeow; Baileys uses 1..16, both unpad either). 0, WG_EINVAL, WG_ENOMEM. */
int wg_msg_pad(const uint8_t *p, size_t len, unsigned n, uint8_t **out, size_t *out_len);
/* The length without the padding: N = last byte, 1 <= N <= len, and all N bytes equal N (as
 * whatsmeow). WG_EPROTO otherwise. The data itself stays in place. */
int wg_msg_unpad(const uint8_t *p, size_t len, size_t *out_len);

/* ---- ids (§3.1) -------------------------------------------------------------------------- */

#define WG_MSG_ID_LEN 22 /* "3EB0" + 18 uppercase hex digits */

/* "3EB0" + hex(SHA-256(BE64(now) || own_user || "@c.us" || random16)[0..9]) into out (23 bytes
 * with the NUL). random16 NULL: 16 fresh random bytes. 0, WG_EINVAL, WG_EIO. */
int wg_msg_id(char out[WG_MSG_ID_LEN + 1], int64_t now_s, const char *own_user,
              const uint8_t *random16);

/* ---- decoding a received Message ---------------------------------------------------------- */

typedef enum {
    WG_MSG_EMPTY = 0, /* nothing we show (e.g. only a sender-key distribution) */
    WG_MSG_TEXT,
    WG_MSG_IMAGE,
    WG_MSG_VIDEO,
    WG_MSG_AUDIO,
    WG_MSG_DOCUMENT,
    WG_MSG_STICKER,
    WG_MSG_LOCATION,
    WG_MSG_CONTACT,
    WG_MSG_REACTION,
    WG_MSG_REVOKE,   /* protocolMessage type 0 */
    WG_MSG_EDIT,     /* protocolMessage type 14 */
    WG_MSG_PROTOCOL, /* another protocolMessage type (history sync, app-state keys, ...) */
    WG_MSG_POLL,
    WG_MSG_UNKNOWN, /* a content field we do not model */
} wg_msg_kind_t;

typedef struct {
    const uint8_t *p;
    size_t len;
} wg_msg_bytes_t;

typedef struct {
    const char *url, *mimetype, *direct_path, *file_name, *caption;
    wg_msg_bytes_t media_key, file_sha256, file_enc_sha256;
    uint64_t file_length;
    uint32_t seconds, width, height;
    int ptt, gif, animated, view_once;
} wg_msg_media_t;

/* The message a reaction/revoke/edit points at. */
typedef struct {
    const char *remote_jid, *id, *participant;
    int from_me;
} wg_msg_key_t;

typedef struct wg_msg {
    wg_msg_kind_t kind;
    const char *text; /* conversation, extended text, reaction emoji (may be ""), new text of an
                       * edit, poll name; NULL otherwise */
    const char *quoted_id, *quoted_participant; /* contextInfo of the content, if any */
    size_t n_mentions;
    char **mentions;
    wg_msg_media_t media;       /* IMAGE .. STICKER */
    double latitude, longitude; /* LOCATION */
    const char *location_name, *location_address;
    const char *contact_name, *vcard; /* CONTACT */
    wg_msg_key_t target;              /* REACTION, REVOKE, EDIT */
    int protocol_type;                /* protocolMessage.type, -1 when absent */
    const char *dsm_destination;      /* non-NULL when unwrapped from deviceSentMessage: the chat */
    const char *skdm_group;           /* senderKeyDistributionMessage (outer or inner), if any */
    wg_msg_bytes_t skdm;              /* its axolotl bytes, for wg_signal_group_process */
    int ephemeral, view_once;         /* unwrapped from these wrappers */
    void *pb_;                        /* owner of everything above */
} wg_msg_t;

/* Decodes unpadded Message bytes: unwraps deviceSentMessage (§2.6.1), ephemeral, viewOnce
 * (V2, V2Extension), documentWithCaption and edited wrappers (§2.6.4), finds the
 * senderKeyDistributionMessage and classifies the content. *out freed with wg_msg_free.
 * 0, WG_EPROTO (not a Message), WG_ENOMEM. */
int wg_msg_decode(const uint8_t *p, size_t len, wg_msg_t **out);
void wg_msg_free(wg_msg_t *m);

/* "text", "image", ... (the JSON "type" values). */
const char *wg_msg_kind_name(wg_msg_kind_t k);

/* A JSON object for events: {"type", "text"?, "caption"?, "quoted"{id, participant}?,
 * "mentions"[]?, "media"{url, mimetype, directPath, mediaKey (base64), fileSha256,
 * fileEncSha256, fileLength, fileName?, seconds?, width?, height?, ptt?, gif?},
 * "location"{latitude, longitude, name?, address?}, "contact"{displayName, vcard},
 * "target"{remoteJid, id, fromMe, participant?}, "protocolType"?, "fromMeOnDevice"?{destination},
 * "ephemeral"?, "viewOnce"?}. New reference (json_decref), NULL on ENOMEM. */
json_t *wg_msg_to_json(const wg_msg_t *m);

/* ---- building what we send --------------------------------------------------------------- */

/* A quoted message for a reply (contextInfo: stanzaId, participant, quotedMessage). */
typedef struct {
    const char *id;          /* required */
    const char *participant; /* author of the quoted message (groups; our/their JID in DMs) */
    const char *text;        /* its text, carried as quotedMessage.conversation; may be NULL */
} wg_msg_quote_t;

/* Message{conversation} or, with a quote or mentions, Message{extendedTextMessage{text,
 * contextInfo}}. mentions may be NULL. */
int wg_msg_build_text(const char *text, const wg_msg_quote_t *quote, const char *const *mentions,
                      size_t n_mentions, uint8_t **out, size_t *len);
/* Message{reactionMessage{key, text = emoji ("" removes), senderTimestampMs}}. */
int wg_msg_build_reaction(const wg_msg_key_t *target, const char *emoji, int64_t now_ms,
                          uint8_t **out, size_t *len);
/* Message{protocolMessage{key, type REVOKE}}. */
int wg_msg_build_revoke(const wg_msg_key_t *target, uint8_t **out, size_t *len);
/* Message{protocolMessage{key, type MESSAGE_EDIT, editedMessage{conversation}, timestampMs}}. */
int wg_msg_build_edit(const wg_msg_key_t *target, const char *text, int64_t now_ms, uint8_t **out,
                      size_t *len);
/* Message{senderKeyDistributionMessage{groupId, axolotl bytes}} (§4.2 step 4). */
int wg_msg_build_skdm(const char *group, const uint8_t *skdm, size_t skdm_len, uint8_t **out,
                      size_t *len);
/* §3.4: the copy for our own other devices: Message{deviceSentMessage{destinationJid, message},
 * messageContextInfo copied from the inner message}. WG_EPROTO if msg is not a Message. */
int wg_msg_wrap_dsm(const uint8_t *msg, size_t msg_len, const char *destination, uint8_t **out,
                    size_t *len);

#endif
