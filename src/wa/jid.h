/* jid.h - WhatsApp JIDs ("user[_agent][:device]@server"): parsing and formatting.
 *
 * A wg_jid_t is a view: user and server point into the text it was parsed from (or into strings
 * the caller owns) and are not NUL-terminated; it owns nothing and needs no free. The text forms
 * are Baileys' (jid-utils): "@s.whatsapp.net" (empty user: the server itself), "123@s.whatsapp.net",
 * "123:4@s.whatsapp.net" (device), "123_7:4@s.whatsapp.net" (raw agent 7), "555:2@lid",
 * "1234-5678@g.us", "status@broadcast", "120363@newsletter", "9:3@hosted", "42:1@msgr" (FB),
 * "5-42:1@interop" (integrator 5). The wire encoding a JID gets (wa-protocol-core.md 4.5) follows
 * from its fields: see wg_jid_type_t. */
#ifndef WG_WA_JID_H
#define WG_WA_JID_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

typedef enum {
    WG_JID_PAIR = 0, /* JID_PAIR (0xFA): user + server */
    WG_JID_AD,       /* AD_JID (0xF7): agent/domain byte, device byte, user */
    WG_JID_FB,       /* FB_JID (0xF6): user, 16-bit device, server ("msgr") */
    WG_JID_INTEROP,  /* INTEROP_JID (0xF5): user, 16-bit device, 16-bit integrator, server */
} wg_jid_type_t;

/* AD_JID domain bytes (wa-protocol-core.md 4.5). Any other byte is a raw agent on s.whatsapp.net. */
enum { WG_JID_DOMAIN_WA = 0, WG_JID_DOMAIN_LID = 1, WG_JID_DOMAIN_HOSTED = 128, WG_JID_DOMAIN_HOSTED_LID = 129 };

typedef struct {
    const char *user; /* may be empty (len 0) for a PAIR: the server JID */
    size_t user_len;
    const char *server; /* never empty */
    size_t server_len;
    wg_jid_type_t type;
    uint8_t domain;      /* AD only: the domain/agent byte written on the wire */
    uint16_t device;     /* AD (0..255), FB, INTEROP */
    uint16_t integrator; /* INTEROP only */
} wg_jid_t;

/* Parses len bytes of text. Returns 0, or WG_EINVAL when it is not a JID this codec can encode
 * exactly: no '@' or more than one, empty server, bad device/agent/integrator numbers, a device
 * on a server AD_JID cannot carry (only s.whatsapp.net, lid, hosted, hosted.lid; msgr/interop use
 * their own forms). Choice of encoding: "msgr" with a device -> FB; "interop" in the
 * "integrator-user:device" form -> INTEROP; "hosted"/"hosted.lid" -> always AD (as whatsmeow);
 * an explicit ":device" (even ":0") or "_agent" on s.whatsapp.net/lid -> AD (as Baileys);
 * everything else -> PAIR. */
int wg_jid_parse(const char *s, size_t len, wg_jid_t *out);

/* Appends the text form to out (0, WG_ENOMEM, WG_ETOOBIG). AD omits ":0" (Baileys' jidEncode),
 * FB and INTEROP always show the device. Parsing the result gives back an equal JID, except that
 * an AD device-0 JID on s.whatsapp.net/lid comes back as a PAIR (same meaning). */
int wg_jid_format(const wg_jid_t *jid, wg_buf_t *out);

/* The text form in a new NUL-terminated string (caller frees), or NULL on ENOMEM. */
char *wg_jid_to_string(const wg_jid_t *jid);

/* 1 when the JID's server is `server` (NUL-terminated), else 0. */
int wg_jid_server_is(const wg_jid_t *jid, const char *server);

#endif
