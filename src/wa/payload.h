/* payload.h - the ClientPayload sent (Noise-encrypted) in ClientFinish: build it for a new
 * companion (registration) or an already paired device (login), and parse it back (the
 * sandbox's side).
 *
 * Facts: docs wa-protocol-core.md §3 (ClientPayload, UserAgent, WebInfo, registration and
 * login payloads, DeviceProps), §8 (keys at registration). Constants in one place:
 * wg_payload_config_init() fills the values both reference clients send ([W] whatsmeow
 * store/clientpayload.go BaseClientPayload / DeviceProps, [B] Baileys
 * src/Utils/validate-connection.ts, src/Defaults/baileys-version.json).
 *
 * Pure functions: no I/O, no clocks, no globals. Built bytes are malloc'd for the caller
 * (free()). The config only borrows its strings; they must outlive the call. */
#ifndef WG_WA_PAYLOAD_H
#define WG_WA_PAYLOAD_H

#include <stddef.h>
#include <stdint.h>

/* WhatsApp Web version sent as userAgent.appVersion and hashed into buildHash (§3.3: [W]
 * 2.3000.1045649367, [B] 2.3000.1035194821). A stale one gets <failure reason="405">, so
 * callers let the user override it (wg_payload_version_parse). */
#define WG_PAYLOAD_VERSION_PRIMARY 2
#define WG_PAYLOAD_VERSION_SECONDARY 3000
#define WG_PAYLOAD_VERSION_TERTIARY 1045649367u

/* What a companion says about itself. Enum-valued fields hold the ClientPayload / DeviceProps
 * enum numbers (client.proto). String fields NULL = field omitted. */
typedef struct {
    uint32_t version[3];         /* WG_PAYLOAD_VERSION_* */
    int platform;                /* UserAgent.Platform: WEB (14) [B+W] */
    int release_channel;         /* RELEASE (0) [B+W] */
    const char *mcc;             /* "000" [B+W] */
    const char *mnc;             /* "000" [B+W] */
    const char *os_version;      /* "0.1" [B+W] */
    const char *os_build_number; /* "0.1" [B+W] */
    const char *manufacturer;    /* "" [W]; [B] omits it */
    const char *device;          /* "Desktop" [B+W] */
    const char *locale_language; /* "en" [B+W] */
    const char *locale_country;  /* "US" [B+W] */
    int web_sub_platform;        /* WebInfo: WEB_BROWSER (0) [B+W default] */
    int connect_type;            /* WIFI_UNKNOWN (1) [B+W] */
    int connect_reason;          /* USER_ACTIVATED (1) [B+W] */
    const char *push_name;       /* NULL: omitted ([B] sends it only when configured) */
    /* Login only (§3.7 DIFF): [W] lidDbMigrated=true and lc=1; [B] false and no lc. */
    int lid_db_migrated;         /* 1 ([W]) */
    int lc;                      /* 1 ([W]); < 0 omits the field */
    /* DeviceProps, registration only (§3.6): what the phone lists under "Linked devices". */
    const char *props_os;        /* "wagate" */
    uint32_t props_version[3];   /* 0.1.0 */
    int props_platform_type;     /* DeviceProps.PlatformType: CHROME (1), [B]'s default */
    int require_full_sync;       /* 0: a gateway wants recent history only ([W] false) */
    uint32_t storage_quota_mb;   /* 10240 [B+W] */
} wg_payload_config_t;

/* The companion's keys at registration (§3.5, §8): public keys raw 32 bytes. */
typedef struct {
    uint32_t registration_id;       /* sent as 4 bytes big-endian */
    uint8_t identity_pub[32];       /* eIdent */
    uint32_t signed_prekey_id;      /* 24-bit (1 at registration); sent as 3 bytes BE */
    uint8_t signed_prekey_pub[32];  /* eSkeyVal */
    uint8_t signed_prekey_sig[64];  /* XEdDSA(identity, 05 || signed_prekey_pub) */
} wg_payload_reg_t;

/* A parsed ClientPayload (the sandbox's view). Strings are NUL-terminated copies ("" when
 * absent); int flags are -1 when the field was absent. */
typedef struct {
    int registration;             /* 1: device_pairing_data present (new companion) */
    int has_username;
    uint64_t username;            /* phone number user part (login) */
    int has_device;
    uint32_t device;              /* device id (login) */
    int passive;                  /* -1/0/1 */
    int pull;                     /* -1/0/1 */
    int lid_db_migrated;          /* -1/0/1 */
    int platform;                 /* UserAgent.Platform or -1 */
    uint32_t version[3];          /* userAgent.appVersion (0 when absent) */
    int connect_type;             /* -1 when absent */
    int connect_reason;           /* -1 when absent */
    int web_sub_platform;         /* -1 when absent */
    char device_name[64];         /* userAgent.device */
    char locale_language[16];
    char locale_country[16];
    char push_name[128];
    /* Registration only (registration == 1); lengths were checked exactly. */
    uint32_t registration_id;
    uint8_t identity_pub[32];
    uint32_t signed_prekey_id;
    uint8_t signed_prekey_pub[32];
    uint8_t signed_prekey_sig[64];
    uint8_t build_hash[16];
    char props_os[64];            /* DeviceProps.os */
    uint32_t props_version[3];
    int props_platform_type;      /* -1 when absent */
    int require_full_sync;        /* -1/0/1 */
} wg_payload_info_t;

/* Fills *cfg with the defaults documented above. */
void wg_payload_config_init(wg_payload_config_t *cfg);

/* Parses "2.3000.1045649367" into v[3]; 0 or WG_EINVAL (not three decimal uint32 parts). */
int wg_payload_version_parse(const char *s, uint32_t v[3]);

/* buildHash: MD5 of the ASCII version "P.S.T" (§3.5). Returns 0 or WG_ECRYPTO. */
int wg_payload_build_hash(const uint32_t version[3], uint8_t out[16]);

/* Serialized DeviceProps for devicePairingData.deviceProps. cfg NULL = defaults.
 * Returns 0 and a malloc'd *out / *len, WG_EINVAL or WG_ENOMEM. */
int wg_payload_build_device_props(const wg_payload_config_t *cfg, uint8_t **out, size_t *len);

/* Registration payload (§3.5): base fields, passive=false, pull=false, devicePairingData
 * {eRegid BE32, eKeytype 05, eIdent, eSkeyId BE24, eSkeyVal, eSkeySig, buildHash, deviceProps};
 * no username/device. Returns 0 and malloc'd *out / *len, WG_EINVAL (NULL arguments, signed
 * prekey id >= 2^24) or WG_ENOMEM / WG_ECRYPTO. */
int wg_payload_build_registration(const wg_payload_config_t *cfg, const wg_payload_reg_t *reg,
                                  uint8_t **out, size_t *len);

/* Login payload (§3.7): base fields, username = phone number (the user part of our JID as a
 * number), device = our device id, passive=true, pull=true, lidDbMigrated and lc as cfg says.
 * Returns 0 and malloc'd *out / *len, WG_EINVAL (NULL arguments or username 0) or WG_ENOMEM. */
int wg_payload_build_login(const wg_payload_config_t *cfg, uint64_t username, uint32_t device,
                           uint8_t **out, size_t *len);

/* Parses a ClientPayload into *info. A valid payload is either a registration (all eight
 * devicePairingData fields with their exact sizes, eKeytype 05, deviceProps decodable, no
 * username) or a login (username present, no devicePairingData). Returns 0, WG_EPROTO for
 * anything else (bad protobuf, wrong sizes, too-long strings), WG_EINVAL for NULL arguments.
 * On error *info is zeroed. */
int wg_payload_parse(const uint8_t *p, size_t n, wg_payload_info_t *info);

#endif
