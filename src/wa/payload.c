/* payload.c - build and parse the ClientPayload (ClientFinish plaintext) with protobuf-c.
 *
 * Builders fill stack-allocated protobuf-c structs that point at the caller's bytes and at
 * small stack buffers, then pack once into a malloc'd buffer: nothing else is allocated.
 * The parser unpacks through wg_pb_unpack() (depth-bounded), copies what the sandbox needs
 * into a plain struct and frees the protobuf-c message before returning. */
#include "wa/payload.h"

#include "util/err.h"
#include "wa/pb.h"
#include "wa/proto/client.pb-c.h"

#include <inttypes.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WG_PAYLOAD_KEYTYPE_DJB 0x05 /* eKeytype: the Curve25519 "Signal-style" key prefix */

void wg_payload_config_init(wg_payload_config_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->version[0] = WG_PAYLOAD_VERSION_PRIMARY;
    cfg->version[1] = WG_PAYLOAD_VERSION_SECONDARY;
    cfg->version[2] = WG_PAYLOAD_VERSION_TERTIARY;
    cfg->platform = WA__CLIENT_PAYLOAD__USER_AGENT__PLATFORM__WEB;
    cfg->release_channel = WA__CLIENT_PAYLOAD__USER_AGENT__RELEASE_CHANNEL__RELEASE;
    cfg->mcc = "000";
    cfg->mnc = "000";
    cfg->os_version = "0.1";
    cfg->os_build_number = "0.1";
    cfg->manufacturer = "";
    cfg->device = "Desktop";
    cfg->locale_language = "en";
    cfg->locale_country = "US";
    cfg->web_sub_platform = WA__CLIENT_PAYLOAD__WEB_INFO__WEB_SUB_PLATFORM__WEB_BROWSER;
    cfg->connect_type = WA__CLIENT_PAYLOAD__CONNECT_TYPE__WIFI_UNKNOWN;
    cfg->connect_reason = WA__CLIENT_PAYLOAD__CONNECT_REASON__USER_ACTIVATED;
    cfg->push_name = NULL;
    cfg->lid_db_migrated = 1;
    cfg->lc = 1;
    cfg->props_os = "wagate";
    cfg->props_version[0] = 0;
    cfg->props_version[1] = 1;
    cfg->props_version[2] = 0;
    cfg->props_platform_type = WA__DEVICE_PROPS__PLATFORM_TYPE__CHROME;
    cfg->require_full_sync = 0;
    cfg->storage_quota_mb = 10240;
}

int wg_payload_version_parse(const char *s, uint32_t v[3])
{
    uint32_t tmp[3];
    const char *p = s;

    if (s == NULL || v == NULL)
        return WG_EINVAL;
    for (int i = 0; i < 3; i++) {
        uint64_t x = 0;
        const char *start = p;
        while (*p >= '0' && *p <= '9') {
            x = x * 10 + (uint64_t)(*p - '0');
            if (x > UINT32_MAX)
                return WG_EINVAL;
            p++;
        }
        if (p == start || (i < 2 && *p != '.') || (i == 2 && *p != '\0'))
            return WG_EINVAL;
        tmp[i] = (uint32_t)x;
        if (i < 2)
            p++;
    }
    memcpy(v, tmp, sizeof(tmp));
    return 0;
}

int wg_payload_build_hash(const uint32_t version[3], uint8_t out[16])
{
    char s[40];
    unsigned int mdlen = 0;
    int n = snprintf(s, sizeof(s), "%" PRIu32 ".%" PRIu32 ".%" PRIu32, version[0], version[1],
                     version[2]);

    if (n <= 0 || (size_t)n >= sizeof(s))
        return WG_EINVAL;
    if (EVP_Digest(s, (size_t)n, out, &mdlen, EVP_md5(), NULL) != 1 || mdlen != 16)
        return WG_ECRYPTO;
    return 0;
}

int wg_payload_build_device_props(const wg_payload_config_t *cfg, uint8_t **out, size_t *len)
{
    wg_payload_config_t defaults;
    Wa__DeviceProps props = WA__DEVICE_PROPS__INIT;
    Wa__DeviceProps__AppVersion ver = WA__DEVICE_PROPS__APP_VERSION__INIT;
    Wa__DeviceProps__HistorySyncConfig hist = WA__DEVICE_PROPS__HISTORY_SYNC_CONFIG__INIT;

    if (out == NULL || len == NULL)
        return WG_EINVAL;
    if (cfg == NULL) {
        wg_payload_config_init(&defaults);
        cfg = &defaults;
    }
    props.os = (char *)cfg->props_os;
    ver.has_primary = ver.has_secondary = ver.has_tertiary = 1;
    ver.primary = cfg->props_version[0];
    ver.secondary = cfg->props_version[1];
    ver.tertiary = cfg->props_version[2];
    props.version = &ver;
    props.has_platform_type = 1;
    props.platform_type = (Wa__DeviceProps__PlatformType)cfg->props_platform_type;
    props.has_require_full_sync = 1;
    props.require_full_sync = cfg->require_full_sync ? 1 : 0;

    /* HistorySyncConfig: the values both references send (§3.6: [B] validate-connection.ts
     * generateRegistrationNode, [W] store/clientpayload.go DeviceProps). Call-log and group
     * history are the two they disagree on; a gateway needs neither: false, as [B]. */
    hist.has_storage_quota_mb = 1;
    hist.storage_quota_mb = cfg->storage_quota_mb;
    /* Inline initial payload: the first history chunk rides in the message itself, so a
     * minimal client need not download it (wa-protocol-messaging.md §7). */
    hist.has_inline_initial_payload_in_e2ee_msg = 1;
    hist.inline_initial_payload_in_e2ee_msg = 1;
    hist.has_support_call_log_history = 1;
    hist.support_call_log_history = 0;
    hist.has_support_bot_user_agent_chat_history = 1;
    hist.support_bot_user_agent_chat_history = 1;
    hist.has_support_cag_reactions_and_polls = 1;
    hist.support_cag_reactions_and_polls = 1;
    hist.has_support_biz_hosted_msg = 1;
    hist.support_biz_hosted_msg = 1;
    hist.has_support_recent_sync_chunk_message_count_tuning = 1;
    hist.support_recent_sync_chunk_message_count_tuning = 1;
    hist.has_support_hosted_group_msg = 1;
    hist.support_hosted_group_msg = 1;
    hist.has_support_fbid_bot_chat_history = 1;
    hist.support_fbid_bot_chat_history = 1;
    hist.has_support_message_association = 1;
    hist.support_message_association = 1;
    hist.has_support_group_history = 1;
    hist.support_group_history = 0;
    props.history_sync_config = &hist;

    return wg_pb_pack(&props.base, out, len);
}

/* The fields both payloads share (§3.2-§3.4). `ua`, `ver`, `web` are the caller's. */
static void wg_payload_base(const wg_payload_config_t *cfg, Wa__ClientPayload *cp,
                            Wa__ClientPayload__UserAgent *ua,
                            Wa__ClientPayload__UserAgent__AppVersion *ver,
                            Wa__ClientPayload__WebInfo *web)
{
    ver->has_primary = ver->has_secondary = ver->has_tertiary = 1;
    ver->primary = cfg->version[0];
    ver->secondary = cfg->version[1];
    ver->tertiary = cfg->version[2];

    ua->has_platform = 1;
    ua->platform = (Wa__ClientPayload__UserAgent__Platform)cfg->platform;
    ua->app_version = ver;
    ua->mcc = (char *)cfg->mcc;
    ua->mnc = (char *)cfg->mnc;
    ua->os_version = (char *)cfg->os_version;
    ua->manufacturer = (char *)cfg->manufacturer;
    ua->device = (char *)cfg->device;
    ua->os_build_number = (char *)cfg->os_build_number;
    ua->has_release_channel = 1;
    ua->release_channel = (Wa__ClientPayload__UserAgent__ReleaseChannel)cfg->release_channel;
    ua->locale_language_iso6391 = (char *)cfg->locale_language;
    ua->locale_country_iso31661_alpha2 = (char *)cfg->locale_country;

    web->has_web_sub_platform = 1;
    web->web_sub_platform = (Wa__ClientPayload__WebInfo__WebSubPlatform)cfg->web_sub_platform;

    cp->user_agent = ua;
    cp->web_info = web;
    cp->push_name = (char *)cfg->push_name;
    cp->has_connect_type = 1;
    cp->connect_type = (Wa__ClientPayload__ConnectType)cfg->connect_type;
    cp->has_connect_reason = 1;
    cp->connect_reason = (Wa__ClientPayload__ConnectReason)cfg->connect_reason;
}

int wg_payload_build_registration(const wg_payload_config_t *cfg, const wg_payload_reg_t *reg,
                                  uint8_t **out, size_t *len)
{
    wg_payload_config_t defaults;
    Wa__ClientPayload cp = WA__CLIENT_PAYLOAD__INIT;
    Wa__ClientPayload__UserAgent ua = WA__CLIENT_PAYLOAD__USER_AGENT__INIT;
    Wa__ClientPayload__UserAgent__AppVersion ver = WA__CLIENT_PAYLOAD__USER_AGENT__APP_VERSION__INIT;
    Wa__ClientPayload__WebInfo web = WA__CLIENT_PAYLOAD__WEB_INFO__INIT;
    Wa__ClientPayload__DevicePairingRegistrationData dp =
        WA__CLIENT_PAYLOAD__DEVICE_PAIRING_REGISTRATION_DATA__INIT;
    uint8_t regid[4], keytype = WG_PAYLOAD_KEYTYPE_DJB, skeyid[3], hash[16];
    uint8_t *props = NULL;
    size_t props_len = 0;
    int rv;

    if (reg == NULL || out == NULL || len == NULL || reg->signed_prekey_id > 0xffffff)
        return WG_EINVAL;
    if (cfg == NULL) {
        wg_payload_config_init(&defaults);
        cfg = &defaults;
    }
    if ((rv = wg_payload_build_hash(cfg->version, hash)) != 0)
        goto out;
    if ((rv = wg_payload_build_device_props(cfg, &props, &props_len)) != 0)
        goto out;

    wg_payload_base(cfg, &cp, &ua, &ver, &web);
    cp.has_passive = 1;
    cp.passive = 0;
    cp.has_pull = 1;
    cp.pull = 0;

    /* §3.5: fixed-width big-endian integers, raw 32-byte keys. */
    regid[0] = (uint8_t)(reg->registration_id >> 24);
    regid[1] = (uint8_t)(reg->registration_id >> 16);
    regid[2] = (uint8_t)(reg->registration_id >> 8);
    regid[3] = (uint8_t)reg->registration_id;
    skeyid[0] = (uint8_t)(reg->signed_prekey_id >> 16);
    skeyid[1] = (uint8_t)(reg->signed_prekey_id >> 8);
    skeyid[2] = (uint8_t)reg->signed_prekey_id;
    dp.has_e_regid = 1;
    dp.e_regid.data = regid;
    dp.e_regid.len = sizeof(regid);
    dp.has_e_keytype = 1;
    dp.e_keytype.data = &keytype;
    dp.e_keytype.len = 1;
    dp.has_e_ident = 1;
    dp.e_ident.data = (uint8_t *)reg->identity_pub;
    dp.e_ident.len = sizeof(reg->identity_pub);
    dp.has_e_skey_id = 1;
    dp.e_skey_id.data = skeyid;
    dp.e_skey_id.len = sizeof(skeyid);
    dp.has_e_skey_val = 1;
    dp.e_skey_val.data = (uint8_t *)reg->signed_prekey_pub;
    dp.e_skey_val.len = sizeof(reg->signed_prekey_pub);
    dp.has_e_skey_sig = 1;
    dp.e_skey_sig.data = (uint8_t *)reg->signed_prekey_sig;
    dp.e_skey_sig.len = sizeof(reg->signed_prekey_sig);
    dp.has_build_hash = 1;
    dp.build_hash.data = hash;
    dp.build_hash.len = sizeof(hash);
    dp.has_device_props = 1;
    dp.device_props.data = props;
    dp.device_props.len = props_len;
    cp.device_pairing_data = &dp;

    rv = wg_pb_pack(&cp.base, out, len);
out:
    free(props);
    return rv;
}

int wg_payload_build_login(const wg_payload_config_t *cfg, uint64_t username, uint32_t device,
                           uint8_t **out, size_t *len)
{
    wg_payload_config_t defaults;
    Wa__ClientPayload cp = WA__CLIENT_PAYLOAD__INIT;
    Wa__ClientPayload__UserAgent ua = WA__CLIENT_PAYLOAD__USER_AGENT__INIT;
    Wa__ClientPayload__UserAgent__AppVersion ver = WA__CLIENT_PAYLOAD__USER_AGENT__APP_VERSION__INIT;
    Wa__ClientPayload__WebInfo web = WA__CLIENT_PAYLOAD__WEB_INFO__INIT;

    if (out == NULL || len == NULL || username == 0)
        return WG_EINVAL;
    if (cfg == NULL) {
        wg_payload_config_init(&defaults);
        cfg = &defaults;
    }
    wg_payload_base(cfg, &cp, &ua, &ver, &web);
    cp.has_username = 1;
    cp.username = username;
    cp.has_device = 1;
    cp.device = device;
    cp.has_passive = 1;
    cp.passive = 1;
    cp.has_pull = 1;
    cp.pull = 1;
    cp.has_lid_db_migrated = 1;
    cp.lid_db_migrated = cfg->lid_db_migrated ? 1 : 0;
    if (cfg->lc >= 0) {
        cp.has_lc = 1;
        cp.lc = cfg->lc;
    }
    return wg_pb_pack(&cp.base, out, len);
}

/* Copies a string field into dst (cap bytes with the NUL); NULL copies "". 0 or WG_EPROTO
 * when it does not fit. */
static int wg_payload_copy_str(char *dst, size_t cap, const char *src)
{
    size_t n = src ? strlen(src) : 0;
    if (n >= cap)
        return WG_EPROTO;
    memcpy(dst, src ? src : "", n);
    dst[n] = '\0';
    return 0;
}

/* A bytes field must be present with exactly `n` bytes. */
static int wg_payload_fixed(protobuf_c_boolean has, const ProtobufCBinaryData *b, size_t n)
{
    return (has && b->len == n) ? 0 : WG_EPROTO;
}

static int wg_payload_parse_props(const ProtobufCBinaryData *b, wg_payload_info_t *info)
{
    ProtobufCMessage *m = NULL;
    Wa__DeviceProps *dp;
    int rv;

    if ((rv = wg_pb_unpack(&wa__device_props__descriptor, b->data, b->len, &m)) != 0)
        return rv;
    dp = (Wa__DeviceProps *)m;
    if ((rv = wg_payload_copy_str(info->props_os, sizeof(info->props_os), dp->os)) != 0)
        goto out;
    if (dp->version != NULL) {
        info->props_version[0] = dp->version->primary;
        info->props_version[1] = dp->version->secondary;
        info->props_version[2] = dp->version->tertiary;
    }
    info->props_platform_type = dp->has_platform_type ? (int)dp->platform_type : -1;
    info->require_full_sync = dp->has_require_full_sync ? (int)dp->require_full_sync : -1;
out:
    protobuf_c_message_free_unpacked(m, NULL);
    return rv;
}

static int wg_payload_parse_reg(const Wa__ClientPayload__DevicePairingRegistrationData *dp,
                                wg_payload_info_t *info)
{
    const uint8_t *r, *s;

    if (wg_payload_fixed(dp->has_e_regid, &dp->e_regid, 4) != 0 ||
        wg_payload_fixed(dp->has_e_keytype, &dp->e_keytype, 1) != 0 ||
        dp->e_keytype.data[0] != WG_PAYLOAD_KEYTYPE_DJB ||
        wg_payload_fixed(dp->has_e_ident, &dp->e_ident, 32) != 0 ||
        wg_payload_fixed(dp->has_e_skey_id, &dp->e_skey_id, 3) != 0 ||
        wg_payload_fixed(dp->has_e_skey_val, &dp->e_skey_val, 32) != 0 ||
        wg_payload_fixed(dp->has_e_skey_sig, &dp->e_skey_sig, 64) != 0 ||
        wg_payload_fixed(dp->has_build_hash, &dp->build_hash, 16) != 0 || !dp->has_device_props)
        return WG_EPROTO;
    r = dp->e_regid.data;
    s = dp->e_skey_id.data;
    info->registration_id = (uint32_t)r[0] << 24 | (uint32_t)r[1] << 16 | (uint32_t)r[2] << 8 | r[3];
    info->signed_prekey_id = (uint32_t)s[0] << 16 | (uint32_t)s[1] << 8 | s[2];
    memcpy(info->identity_pub, dp->e_ident.data, 32);
    memcpy(info->signed_prekey_pub, dp->e_skey_val.data, 32);
    memcpy(info->signed_prekey_sig, dp->e_skey_sig.data, 64);
    memcpy(info->build_hash, dp->build_hash.data, 16);
    return wg_payload_parse_props(&dp->device_props, info);
}

int wg_payload_parse(const uint8_t *p, size_t n, wg_payload_info_t *info)
{
    ProtobufCMessage *m = NULL;
    Wa__ClientPayload *cp;
    int rv;

    if (info == NULL || (p == NULL && n > 0))
        return WG_EINVAL;
    memset(info, 0, sizeof(*info));
    if ((rv = wg_pb_unpack(&wa__client_payload__descriptor, p, n, &m)) != 0)
        goto out;
    cp = (Wa__ClientPayload *)m;

    info->registration = cp->device_pairing_data != NULL;
    info->has_username = cp->has_username;
    info->username = cp->username;
    info->has_device = cp->has_device;
    info->device = cp->device;
    /* §3.5/§3.7: registration has no username; login has one and no pairing data. */
    if (info->registration == info->has_username) {
        rv = WG_EPROTO;
        goto out;
    }
    info->passive = cp->has_passive ? (int)cp->passive : -1;
    info->pull = cp->has_pull ? (int)cp->pull : -1;
    info->lid_db_migrated = cp->has_lid_db_migrated ? (int)cp->lid_db_migrated : -1;
    info->connect_type = cp->has_connect_type ? (int)cp->connect_type : -1;
    info->connect_reason = cp->has_connect_reason ? (int)cp->connect_reason : -1;
    info->platform = -1;
    info->web_sub_platform = -1;
    info->props_platform_type = -1;
    info->require_full_sync = -1;
    if (cp->user_agent != NULL) {
        const Wa__ClientPayload__UserAgent *ua = cp->user_agent;
        info->platform = ua->has_platform ? (int)ua->platform : -1;
        if (ua->app_version != NULL) {
            info->version[0] = ua->app_version->primary;
            info->version[1] = ua->app_version->secondary;
            info->version[2] = ua->app_version->tertiary;
        }
        if ((rv = wg_payload_copy_str(info->device_name, sizeof(info->device_name),
                                      ua->device)) != 0 ||
            (rv = wg_payload_copy_str(info->locale_language, sizeof(info->locale_language),
                                      ua->locale_language_iso6391)) != 0 ||
            (rv = wg_payload_copy_str(info->locale_country, sizeof(info->locale_country),
                                      ua->locale_country_iso31661_alpha2)) != 0)
            goto out;
    }
    if (cp->web_info != NULL && cp->web_info->has_web_sub_platform)
        info->web_sub_platform = (int)cp->web_info->web_sub_platform;
    if ((rv = wg_payload_copy_str(info->push_name, sizeof(info->push_name), cp->push_name)) != 0)
        goto out;
    if (info->registration && (rv = wg_payload_parse_reg(cp->device_pairing_data, info)) != 0)
        goto out;
    rv = 0;
out:
    if (m != NULL)
        protobuf_c_message_free_unpacked(m, NULL);
    if (rv != 0)
        memset(info, 0, sizeof(*info));
    return rv;
}
