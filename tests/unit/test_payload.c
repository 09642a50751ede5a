/* test_payload.c - registration and login ClientPayloads: every field checked after unpacking
 * with protobuf-c, the byte layouts §3.5 pins (eRegid BE32, eKeytype 05, eSkeyId BE24,
 * buildHash = MD5("2.3000.<rev>")), and the parser's round trip and refusals. */
#include "test.h"
#include "util/err.h"
#include "wa/payload.h"
#include "wa/pb.h"
#include "wa/proto/client.pb-c.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void wg_test_reg_fill(wg_payload_reg_t *r)
{
    memset(r, 0, sizeof(*r));
    r->registration_id = 0x01020304;
    r->signed_prekey_id = 0x0a0b0c;
    for (int i = 0; i < 32; i++) {
        r->identity_pub[i] = (uint8_t)(0x10 + i);
        r->signed_prekey_pub[i] = (uint8_t)(0x80 + i);
    }
    for (int i = 0; i < 64; i++)
        r->signed_prekey_sig[i] = (uint8_t)(0xc0 ^ i);
}

/* MD5("2.3000.1045649367"), computed independently (python hashlib). */
static const uint8_t wg_test_hash[16] = {0x9f, 0xa5, 0x3a, 0xf9, 0x42, 0x15, 0x67, 0xb1,
                                         0x14, 0xe3, 0x3c, 0x9b, 0xb1, 0xef, 0x7d, 0xb2};

/* Checks the base fields (§3.2-§3.4) with the defaults. Returns 1 when all match. */
static int wg_test_base_ok(const Wa__ClientPayload *cp)
{
    const Wa__ClientPayload__UserAgent *ua = cp->user_agent;
    if (ua == NULL || ua->app_version == NULL || cp->web_info == NULL)
        return 0;
    return ua->has_platform && ua->platform == WA__CLIENT_PAYLOAD__USER_AGENT__PLATFORM__WEB &&
           ua->app_version->has_primary && ua->app_version->primary == 2 &&
           ua->app_version->has_secondary && ua->app_version->secondary == 3000 &&
           ua->app_version->has_tertiary && ua->app_version->tertiary == 1045649367u &&
           !ua->app_version->has_quaternary && ua->has_release_channel &&
           ua->release_channel == WA__CLIENT_PAYLOAD__USER_AGENT__RELEASE_CHANNEL__RELEASE &&
           ua->mcc && strcmp(ua->mcc, "000") == 0 && ua->mnc && strcmp(ua->mnc, "000") == 0 &&
           ua->os_version && strcmp(ua->os_version, "0.1") == 0 && ua->os_build_number &&
           strcmp(ua->os_build_number, "0.1") == 0 && ua->manufacturer &&
           strcmp(ua->manufacturer, "") == 0 && ua->device && strcmp(ua->device, "Desktop") == 0 &&
           ua->locale_language_iso6391 && strcmp(ua->locale_language_iso6391, "en") == 0 &&
           ua->locale_country_iso31661_alpha2 &&
           strcmp(ua->locale_country_iso31661_alpha2, "US") == 0 &&
           cp->web_info->has_web_sub_platform &&
           cp->web_info->web_sub_platform == WA__CLIENT_PAYLOAD__WEB_INFO__WEB_SUB_PLATFORM__WEB_BROWSER &&
           cp->has_connect_type && cp->connect_type == WA__CLIENT_PAYLOAD__CONNECT_TYPE__WIFI_UNKNOWN &&
           cp->has_connect_reason &&
           cp->connect_reason == WA__CLIENT_PAYLOAD__CONNECT_REASON__USER_ACTIVATED &&
           cp->push_name == NULL;
}

WG_TEST(payload_registration_fields)
{
    wg_payload_reg_t r;
    uint8_t *out = NULL;
    size_t len = 0;
    Wa__ClientPayload *cp;
    Wa__DeviceProps *dp;
    const Wa__ClientPayload__DevicePairingRegistrationData *d;

    wg_test_reg_fill(&r);
    WG_CHECK_EQ_INT(wg_payload_build_registration(NULL, &r, &out, &len), 0);
    cp = wa__client_payload__unpack(NULL, len, out);
    free(out);
    WG_CHECK(cp != NULL);
    WG_CHECK(wg_test_base_ok(cp));
    WG_CHECK(cp->has_passive && !cp->passive);
    WG_CHECK(cp->has_pull && !cp->pull);
    WG_CHECK(!cp->has_username && !cp->has_device && !cp->has_lc && !cp->has_lid_db_migrated);
    d = cp->device_pairing_data;
    WG_CHECK(d != NULL);
    WG_CHECK(d->has_e_regid && d->e_regid.len == 4);
    WG_CHECK_MEM(d->e_regid.data, "\x01\x02\x03\x04", 4);
    WG_CHECK(d->has_e_keytype && d->e_keytype.len == 1 && d->e_keytype.data[0] == 0x05);
    WG_CHECK(d->has_e_ident && d->e_ident.len == 32);
    WG_CHECK_MEM(d->e_ident.data, r.identity_pub, 32);
    WG_CHECK(d->has_e_skey_id && d->e_skey_id.len == 3);
    WG_CHECK_MEM(d->e_skey_id.data, "\x0a\x0b\x0c", 3);
    WG_CHECK(d->has_e_skey_val && d->e_skey_val.len == 32);
    WG_CHECK_MEM(d->e_skey_val.data, r.signed_prekey_pub, 32);
    WG_CHECK(d->has_e_skey_sig && d->e_skey_sig.len == 64);
    WG_CHECK_MEM(d->e_skey_sig.data, r.signed_prekey_sig, 64);
    WG_CHECK(d->has_build_hash && d->build_hash.len == 16);
    WG_CHECK_MEM(d->build_hash.data, wg_test_hash, 16);
    WG_CHECK(d->has_device_props);

    /* deviceProps is serialized bytes, not a sub-message (§3.5). */
    dp = wa__device_props__unpack(NULL, d->device_props.len, d->device_props.data);
    wa__client_payload__free_unpacked(cp, NULL);
    WG_CHECK(dp != NULL);
    WG_CHECK_STR(dp->os, "wagate");
    WG_CHECK(dp->version && dp->version->primary == 0 && dp->version->secondary == 1 &&
             dp->version->tertiary == 0);
    WG_CHECK(dp->has_platform_type && dp->platform_type == WA__DEVICE_PROPS__PLATFORM_TYPE__CHROME);
    WG_CHECK(dp->has_require_full_sync && !dp->require_full_sync);
    WG_CHECK(dp->history_sync_config != NULL);
    WG_CHECK(dp->history_sync_config->has_storage_quota_mb &&
             dp->history_sync_config->storage_quota_mb == 10240);
    WG_CHECK(dp->history_sync_config->has_inline_initial_payload_in_e2ee_msg &&
             dp->history_sync_config->inline_initial_payload_in_e2ee_msg);
    WG_CHECK(dp->history_sync_config->has_support_call_log_history &&
             !dp->history_sync_config->support_call_log_history);
    wa__device_props__free_unpacked(dp, NULL);
}

WG_TEST(payload_registration_byte_layout)
{
    wg_payload_reg_t r;
    uint8_t *out = NULL;
    size_t len = 0;

    wg_test_reg_fill(&r);
    r.registration_id = 0x3fff;
    r.signed_prekey_id = 1; /* §8.3: 1 at registration */
    WG_CHECK_EQ_INT(wg_payload_build_registration(NULL, &r, &out, &len), 0);
    /* Field 19 (devicePairingData, 9a 01 + length) and inside it, in field order:
     * 0a 04 <regid BE32>, 12 01 05, 1a 20 <ident>, 22 03 <id BE24>. */
    static const uint8_t head[] = {0x0a, 0x04, 0x00, 0x00, 0x3f, 0xff, 0x12, 0x01, 0x05, 0x1a, 0x20};
    static const uint8_t skid[] = {0x22, 0x03, 0x00, 0x00, 0x01, 0x2a, 0x20};
    /* The pairing data is ~210 bytes, so its length is a 2-byte varint: 9a 01 LL 01. */
    uint8_t *p = NULL;
    for (size_t i = 0; i + 4 + sizeof(head) <= len; i++) {
        if (out[i] == 0x9a && out[i + 1] == 0x01 && (out[i + 2] & 0x80) && out[i + 3] == 0x01 &&
            memcmp(out + i + 4, head, sizeof(head)) == 0) {
            p = out + i + 4;
            WG_CHECK_EQ_INT((out[i + 2] & 0x7f) + 128, len - (size_t)(i + 4) - 3); /* - pull */
            break;
        }
    }
    WG_CHECK(p != NULL);
    WG_CHECK_MEM(p + sizeof(head), r.identity_pub, 32);
    WG_CHECK_MEM(p + sizeof(head) + 32, skid, sizeof(skid));
    WG_CHECK_MEM(p + sizeof(head) + 32 + sizeof(skid), r.signed_prekey_pub, 32);
    /* Registration carries no username: field 1 must not be the first byte. */
    WG_CHECK(out[0] != 0x08);
    free(out);

    r.signed_prekey_id = 0x1000000; /* does not fit in 3 bytes */
    WG_CHECK_EQ_INT(wg_payload_build_registration(NULL, &r, &out, &len), WG_EINVAL);
    WG_CHECK_EQ_INT(wg_payload_build_registration(NULL, NULL, &out, &len), WG_EINVAL);
}

WG_TEST(payload_login_fields)
{
    uint8_t *out = NULL;
    size_t len = 0;
    Wa__ClientPayload *cp;

    WG_CHECK_EQ_INT(wg_payload_build_login(NULL, 5511999998888ull, 7, &out, &len), 0);
    /* Field 1 varint first: 08 + varint(5511999998888). */
    WG_CHECK_EQ_INT(out[0], 0x08);
    WG_CHECK_MEM(out + 1, "\xa8\x97\xb5\xe6\xb5\xa0\x01", 7);
    cp = wa__client_payload__unpack(NULL, len, out);
    free(out);
    WG_CHECK(cp != NULL);
    WG_CHECK(wg_test_base_ok(cp));
    WG_CHECK(cp->has_username && cp->username == 5511999998888ull);
    WG_CHECK(cp->has_device && cp->device == 7);
    WG_CHECK(cp->has_passive && cp->passive);
    WG_CHECK(cp->has_pull && cp->pull);
    WG_CHECK(cp->has_lid_db_migrated && cp->lid_db_migrated); /* [W] */
    WG_CHECK(cp->has_lc && cp->lc == 1);                       /* [W] */
    WG_CHECK(cp->device_pairing_data == NULL);
    wa__client_payload__free_unpacked(cp, NULL);

    WG_CHECK_EQ_INT(wg_payload_build_login(NULL, 0, 1, &out, &len), WG_EINVAL);
}

WG_TEST(payload_config_overrides)
{
    wg_payload_config_t c;
    uint8_t *out = NULL;
    size_t len = 0;
    Wa__ClientPayload *cp;

    wg_payload_config_init(&c);
    /* [B]'s choices: lidDbMigrated=false, no lc; plus a push name and another version. */
    c.lid_db_migrated = 0;
    c.lc = -1;
    c.push_name = "Gateway";
    WG_CHECK_EQ_INT(wg_payload_version_parse("2.3000.1035194821", c.version), 0);
    WG_CHECK_EQ_INT(wg_payload_build_login(&c, 15550001111ull, 3, &out, &len), 0);
    cp = wa__client_payload__unpack(NULL, len, out);
    free(out);
    WG_CHECK(cp != NULL);
    WG_CHECK(cp->has_lid_db_migrated && !cp->lid_db_migrated);
    WG_CHECK(!cp->has_lc);
    WG_CHECK_STR(cp->push_name, "Gateway");
    WG_CHECK(cp->user_agent->app_version->tertiary == 1035194821u);
    wa__client_payload__free_unpacked(cp, NULL);
}

WG_TEST(payload_version_and_hash)
{
    uint32_t v[3] = {9, 9, 9};
    uint8_t h[16];

    WG_CHECK_EQ_INT(wg_payload_version_parse("2.3000.1045649367", v), 0);
    WG_CHECK(v[0] == 2 && v[1] == 3000 && v[2] == 1045649367u);
    WG_CHECK_EQ_INT(wg_payload_build_hash(v, h), 0);
    WG_CHECK_MEM(h, wg_test_hash, 16);
    v[2] = 1035194821u;
    WG_CHECK_EQ_INT(wg_payload_build_hash(v, h), 0);
    WG_CHECK_MEM(h, "\xa2\xc9\x47\x1e\xff\x91\x0a\x9e\x1a\xe6\x59\x89\x0a\x28\x87\x2d", 16);

    static const char *bad[] = {"", "2", "2.3000", "2.3000.", "2..1", "2.3000.1.4", "a.b.c",
                                "2.3000.4294967296", "2.3000.1 ", "-2.3000.1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        WG_CHECK_EQ_INT(wg_payload_version_parse(bad[i], v), WG_EINVAL);
    WG_CHECK(v[2] == 1035194821u); /* untouched by failures */
}

WG_TEST(payload_parse_round_trip)
{
    wg_payload_reg_t r;
    wg_payload_info_t info;
    uint8_t *out = NULL;
    size_t len = 0;

    wg_test_reg_fill(&r);
    WG_CHECK_EQ_INT(wg_payload_build_registration(NULL, &r, &out, &len), 0);
    WG_CHECK_EQ_INT(wg_payload_parse(out, len, &info), 0);
    free(out);
    WG_CHECK_EQ_INT(info.registration, 1);
    WG_CHECK_EQ_INT(info.has_username, 0);
    WG_CHECK_EQ_INT(info.passive, 0);
    WG_CHECK_EQ_INT(info.pull, 0);
    WG_CHECK_EQ_INT(info.lid_db_migrated, -1);
    WG_CHECK_EQ_INT(info.platform, 14);
    WG_CHECK(info.version[0] == 2 && info.version[1] == 3000 && info.version[2] == 1045649367u);
    WG_CHECK_EQ_INT(info.connect_type, 1);
    WG_CHECK_EQ_INT(info.connect_reason, 1);
    WG_CHECK_EQ_INT(info.web_sub_platform, 0);
    WG_CHECK_STR(info.device_name, "Desktop");
    WG_CHECK_STR(info.locale_language, "en");
    WG_CHECK_STR(info.locale_country, "US");
    WG_CHECK_STR(info.push_name, "");
    WG_CHECK_EQ_INT(info.registration_id, 0x01020304);
    WG_CHECK_EQ_INT(info.signed_prekey_id, 0x0a0b0c);
    WG_CHECK_MEM(info.identity_pub, r.identity_pub, 32);
    WG_CHECK_MEM(info.signed_prekey_pub, r.signed_prekey_pub, 32);
    WG_CHECK_MEM(info.signed_prekey_sig, r.signed_prekey_sig, 64);
    WG_CHECK_MEM(info.build_hash, wg_test_hash, 16);
    WG_CHECK_STR(info.props_os, "wagate");
    WG_CHECK(info.props_version[1] == 1);
    WG_CHECK_EQ_INT(info.props_platform_type, 1);
    WG_CHECK_EQ_INT(info.require_full_sync, 0);

    WG_CHECK_EQ_INT(wg_payload_build_login(NULL, 491701234567ull, 12, &out, &len), 0);
    WG_CHECK_EQ_INT(wg_payload_parse(out, len, &info), 0);
    free(out);
    WG_CHECK_EQ_INT(info.registration, 0);
    WG_CHECK(info.has_username && info.username == 491701234567ull);
    WG_CHECK(info.has_device && info.device == 12);
    WG_CHECK_EQ_INT(info.passive, 1);
    WG_CHECK_EQ_INT(info.pull, 1);
    WG_CHECK_EQ_INT(info.lid_db_migrated, 1);
    WG_CHECK_EQ_INT(info.props_platform_type, -1);
    WG_CHECK_EQ_INT(info.registration_id, 0);
}

/* Packs a registration payload with one devicePairingData field replaced. */
static int wg_test_parse_tampered(int which, size_t newlen, uint8_t first)
{
    Wa__ClientPayload cp = WA__CLIENT_PAYLOAD__INIT;
    Wa__ClientPayload__DevicePairingRegistrationData dp =
        WA__CLIENT_PAYLOAD__DEVICE_PAIRING_REGISTRATION_DATA__INIT;
    uint8_t buf[80], *out = NULL;
    size_t len = 0;
    wg_payload_info_t info;
    int rv;
    ProtobufCBinaryData *f[8] = {&dp.e_regid, &dp.e_skey_val, &dp.e_ident, &dp.e_skey_id,
                                 &dp.e_keytype, &dp.e_skey_sig, &dp.build_hash, &dp.device_props};
    size_t sizes[8] = {4, 32, 32, 3, 1, 64, 16, 0};

    memset(buf, 0x05, sizeof(buf));
    dp.has_e_regid = dp.has_e_keytype = dp.has_e_ident = dp.has_e_skey_id = 1;
    dp.has_e_skey_val = dp.has_e_skey_sig = dp.has_build_hash = dp.has_device_props = 1;
    for (int i = 0; i < 8; i++) {
        f[i]->data = buf;
        f[i]->len = sizes[i];
    }
    if (which >= 0) {
        f[which]->len = newlen;
        buf[0] = first;
    }
    cp.device_pairing_data = &dp;
    if (wg_pb_pack(&cp.base, &out, &len) != 0)
        return -100;
    rv = wg_payload_parse(out, len, &info);
    free(out);
    return rv;
}

WG_TEST(payload_parse_refuses)
{
    wg_payload_info_t info;
    uint8_t *out = NULL;
    size_t len = 0;
    wg_payload_reg_t r;

    /* Untampered: valid (all sizes right, eKeytype 05, empty DeviceProps). */
    WG_CHECK_EQ_INT(wg_test_parse_tampered(-1, 0, 0x05), 0);
    WG_CHECK_EQ_INT(wg_test_parse_tampered(0, 3, 0x05), WG_EPROTO);  /* eRegid 3 bytes */
    WG_CHECK_EQ_INT(wg_test_parse_tampered(3, 4, 0x05), WG_EPROTO);  /* eSkeyId 4 bytes */
    WG_CHECK_EQ_INT(wg_test_parse_tampered(4, 1, 0x06), WG_EPROTO);  /* eKeytype 06 */
    WG_CHECK_EQ_INT(wg_test_parse_tampered(2, 33, 0x05), WG_EPROTO); /* eIdent 33 bytes */
    WG_CHECK_EQ_INT(wg_test_parse_tampered(5, 63, 0x05), WG_EPROTO); /* eSkeySig 63 bytes */
    WG_CHECK_EQ_INT(wg_test_parse_tampered(6, 20, 0x05), WG_EPROTO); /* buildHash 20 bytes */
    /* deviceProps that is not a DeviceProps (05 05: field 0). */
    WG_CHECK_EQ_INT(wg_test_parse_tampered(7, 2, 0x05), WG_EPROTO);

    /* Neither login nor registration; both at once. */
    WG_CHECK_EQ_INT(wg_payload_parse((const uint8_t *)"\x18\x01", 2, &info), WG_EPROTO);
    WG_CHECK_EQ_INT(wg_payload_parse(NULL, 0, &info), WG_EPROTO);
    wg_test_reg_fill(&r);
    WG_CHECK_EQ_INT(wg_payload_build_registration(NULL, &r, &out, &len), 0);
    uint8_t *both = malloc(len + 2);
    WG_CHECK(both != NULL);
    both[0] = 0x08;
    both[1] = 0x05;
    memcpy(both + 2, out, len);
    WG_CHECK_EQ_INT(wg_payload_parse(both, len + 2, &info), WG_EPROTO);
    free(both);
    WG_CHECK(info.registration == 0 && info.registration_id == 0); /* zeroed on error */

    /* Every prefix of a valid registration that cuts into or before devicePairingData is
     * refused. Fields are packed in number order, so the last 3 bytes are pull (33: 88 02 00)
     * and only the prefix that drops exactly them still parses (pull then absent). */
    WG_CHECK_MEM(out + len - 3, "\x88\x02\x00", 3);
    for (size_t n = 0; n < len - 3; n++)
        WG_CHECK_EQ_INT(wg_payload_parse(out, n, &info), WG_EPROTO);
    WG_CHECK_EQ_INT(wg_payload_parse(out, len - 3, &info), 0);
    WG_CHECK_EQ_INT(info.pull, -1);
    free(out);

    /* A push name longer than the struct holds is refused, not truncated. */
    wg_payload_config_t c;
    char name[200];
    memset(name, 'n', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0';
    wg_payload_config_init(&c);
    c.push_name = name;
    WG_CHECK_EQ_INT(wg_payload_build_login(&c, 1, 1, &out, &len), 0);
    WG_CHECK_EQ_INT(wg_payload_parse(out, len, &info), WG_EPROTO);
    free(out);
    WG_CHECK_EQ_INT(wg_payload_parse(NULL, 0, NULL), WG_EINVAL);
}
