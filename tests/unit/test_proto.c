/* test_proto.c - the .proto definitions (client, adv, message) at the byte level, and the
 * depth-bounded unpack of wa/pb: expected encodings are written out by hand from the field
 * numbers in wa-protocol-core.md §3/§5.6 and wa-protocol-messaging.md §2.5/§6.4. */
#include "test.h"
#include "util/err.h"
#include "wa/pb.h"
#include "wa/proto/adv.pb-c.h"
#include "wa/proto/client.pb-c.h"
#include "wa/proto/message.pb-c.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Packs m and compares with the expected bytes; then unpacks those bytes with wg_pb_unpack
 * and packs again, which must give the same bytes. */
static int wg_test_pb_exact(const ProtobufCMessage *m, const uint8_t *want, size_t wlen)
{
    uint8_t *got = NULL, *again = NULL;
    size_t glen = 0, alen = 0;
    ProtobufCMessage *u = NULL;
    int ok = 0;

    if (wg_pb_pack(m, &got, &glen) != 0)
        goto out;
    if (glen != wlen || memcmp(got, want, wlen) != 0) {
        fprintf(stderr, "    packed:");
        for (size_t i = 0; i < glen; i++)
            fprintf(stderr, " %02x", got[i]);
        fprintf(stderr, "\n    wanted:");
        for (size_t i = 0; i < wlen; i++)
            fprintf(stderr, " %02x", want[i]);
        fprintf(stderr, "\n");
        goto out;
    }
    if (wg_pb_unpack(m->descriptor, want, wlen, &u) != 0)
        goto out;
    if (wg_pb_pack(u, &again, &alen) != 0 || alen != wlen || memcmp(again, want, wlen) != 0)
        goto out;
    ok = 1;
out:
    free(got);
    free(again);
    if (u != NULL)
        protobuf_c_message_free_unpacked(u, NULL);
    return ok;
}

WG_TEST(proto_client_payload_field_numbers)
{
    Wa__ClientPayload cp = WA__CLIENT_PAYLOAD__INIT;
    Wa__ClientPayload__UserAgent ua = WA__CLIENT_PAYLOAD__USER_AGENT__INIT;
    Wa__ClientPayload__UserAgent__AppVersion av = WA__CLIENT_PAYLOAD__USER_AGENT__APP_VERSION__INIT;
    Wa__ClientPayload__WebInfo wi = WA__CLIENT_PAYLOAD__WEB_INFO__INIT;

    cp.has_username = 1;
    cp.username = 300; /* varint ac 02 */
    cp.has_passive = 1;
    cp.passive = 1;
    av.has_primary = av.has_secondary = 1;
    av.primary = 2;
    av.secondary = 3000; /* b8 17 */
    ua.has_platform = 1;
    ua.platform = WA__CLIENT_PAYLOAD__USER_AGENT__PLATFORM__WEB;
    ua.app_version = &av;
    ua.device = "D";
    ua.locale_country_iso31661_alpha2 = "US";
    cp.user_agent = &ua;
    wi.has_web_sub_platform = 1;
    wi.web_sub_platform = WA__CLIENT_PAYLOAD__WEB_INFO__WEB_SUB_PLATFORM__WIN32;
    cp.web_info = &wi;
    cp.has_connect_type = 1;
    cp.connect_type = WA__CLIENT_PAYLOAD__CONNECT_TYPE__WIFI_UNKNOWN;
    cp.has_connect_reason = 1;
    cp.connect_reason = WA__CLIENT_PAYLOAD__CONNECT_REASON__USER_ACTIVATED;
    cp.has_device = 1;
    cp.device = 7;
    cp.has_lc = 1;
    cp.lc = 1;
    cp.has_pull = 1;
    cp.pull = 1;
    cp.has_lid_db_migrated = 1;
    cp.lid_db_migrated = 1;

    static const uint8_t want[] = {
        0x08, 0xac, 0x02,                   /* 1 username varint 300 */
        0x18, 0x01,                         /* 3 passive */
        0x2a, 0x10,                         /* 5 userAgent, 16 bytes */
        0x08, 0x0e,                         /*   1 platform WEB */
        0x12, 0x05, 0x08, 0x02, 0x10, 0xb8, 0x17, /* 2 appVersion {1: 2, 2: 3000} */
        0x3a, 0x01, 'D',                    /*   7 device */
        0x62, 0x02, 'U', 'S',               /*   12 localeCountryIso31661Alpha2 */
        0x32, 0x02, 0x20, 0x04,             /* 6 webInfo {4 webSubPlatform WIN32} */
        0x60, 0x01,                         /* 12 connectType WIFI_UNKNOWN */
        0x68, 0x01,                         /* 13 connectReason USER_ACTIVATED */
        0x90, 0x01, 0x07,                   /* 18 device */
        0xc0, 0x01, 0x01,                   /* 24 lc */
        0x88, 0x02, 0x01,                   /* 33 pull */
        0xc8, 0x02, 0x01,                   /* 41 lidDbMigrated */
    };
    WG_CHECK(wg_test_pb_exact(&cp.base, want, sizeof(want)));
}

WG_TEST(proto_device_pairing_data_field_numbers)
{
    Wa__ClientPayload cp = WA__CLIENT_PAYLOAD__INIT;
    Wa__ClientPayload__DevicePairingRegistrationData dp =
        WA__CLIENT_PAYLOAD__DEVICE_PAIRING_REGISTRATION_DATA__INIT;
    uint8_t b[8] = {1, 2, 3, 4, 5, 6, 7, 8};

#define WG_TEST_SET(f, n)                                                                          \
    do {                                                                                           \
        dp.has_##f = 1;                                                                            \
        dp.f.data = b;                                                                             \
        dp.f.len = (n);                                                                            \
    } while (0)
    WG_TEST_SET(e_regid, 4);
    WG_TEST_SET(e_keytype, 1);
    WG_TEST_SET(e_ident, 2);
    WG_TEST_SET(e_skey_id, 3);
    WG_TEST_SET(e_skey_val, 2);
    WG_TEST_SET(e_skey_sig, 2);
    WG_TEST_SET(build_hash, 2);
    WG_TEST_SET(device_props, 2);
#undef WG_TEST_SET
    cp.device_pairing_data = &dp;
    static const uint8_t want[] = {
        0x9a, 0x01, 0x22, /* 19 devicePairingData, 34 bytes */
        0x0a, 0x04, 1, 2, 3, 4, 0x12, 0x01, 1, 0x1a, 0x02, 1, 2, 0x22, 0x03, 1, 2, 3,
        0x2a, 0x02, 1, 2, 0x32, 0x02, 1, 2, 0x3a, 0x02, 1, 2, 0x42, 0x02, 1, 2,
    };
    WG_CHECK(wg_test_pb_exact(&cp.base, want, sizeof(want)));
}

WG_TEST(proto_device_props_field_numbers)
{
    Wa__DeviceProps p = WA__DEVICE_PROPS__INIT;
    Wa__DeviceProps__AppVersion v = WA__DEVICE_PROPS__APP_VERSION__INIT;
    Wa__DeviceProps__HistorySyncConfig h = WA__DEVICE_PROPS__HISTORY_SYNC_CONFIG__INIT;

    p.os = "wg";
    v.has_tertiary = 1;
    v.tertiary = 7;
    p.version = &v;
    p.has_platform_type = 1;
    p.platform_type = WA__DEVICE_PROPS__PLATFORM_TYPE__DESKTOP;
    p.has_require_full_sync = 1;
    p.require_full_sync = 0;
    h.has_storage_quota_mb = 1;
    h.storage_quota_mb = 10240; /* 80 50 */
    h.has_inline_initial_payload_in_e2ee_msg = 1;
    h.inline_initial_payload_in_e2ee_msg = 1;
    h.has_thumbnail_sync_days_limit = 1;
    h.thumbnail_sync_days_limit = 60;
    p.history_sync_config = &h;
    static const uint8_t want[] = {
        0x0a, 0x02, 'w', 'g', 0x12, 0x02, 0x18, 0x07, 0x18, 0x07, 0x20, 0x00,
        0x2a, 0x08, 0x18, 0x80, 0x50, 0x20, 0x01, 0x98, 0x01, 0x3c, /* 19 thumbnailSyncDaysLimit */
    };
    WG_CHECK(wg_test_pb_exact(&p.base, want, sizeof(want)));
}

WG_TEST(proto_adv_field_numbers)
{
    Wa__ADVSignedDeviceIdentityHMAC hm = WA__ADVSIGNED_DEVICE_IDENTITY_HMAC__INIT;
    Wa__ADVSignedDeviceIdentity si = WA__ADVSIGNED_DEVICE_IDENTITY__INIT;
    Wa__ADVDeviceIdentity di = WA__ADVDEVICE_IDENTITY__INIT;
    Wa__ADVKeyIndexList kl = WA__ADVKEY_INDEX_LIST__INIT;
    Wa__ADVSignedKeyIndexList skl = WA__ADVSIGNED_KEY_INDEX_LIST__INIT;
    uint8_t b[2] = {0xaa, 0xbb};
    uint32_t idx[3] = {0, 1, 200};

    hm.has_details = hm.has_hmac = hm.has_account_type = 1;
    hm.details.data = hm.hmac.data = b;
    hm.details.len = 2;
    hm.hmac.len = 1;
    hm.account_type = WA__ADVENCRYPTION_TYPE__HOSTED;
    static const uint8_t w1[] = {0x0a, 0x02, 0xaa, 0xbb, 0x12, 0x01, 0xaa, 0x18, 0x01};
    WG_CHECK(wg_test_pb_exact(&hm.base, w1, sizeof(w1)));

    si.has_details = si.has_account_signature_key = si.has_account_signature = 1;
    si.has_device_signature = 1;
    si.details.data = si.account_signature_key.data = b;
    si.account_signature.data = si.device_signature.data = b;
    si.details.len = si.account_signature_key.len = si.account_signature.len = 1;
    si.device_signature.len = 2;
    static const uint8_t w2[] = {0x0a, 0x01, 0xaa, 0x12, 0x01, 0xaa, 0x1a, 0x01,
                                 0xaa, 0x22, 0x02, 0xaa, 0xbb};
    WG_CHECK(wg_test_pb_exact(&si.base, w2, sizeof(w2)));
    /* The pair-device-sign reply drops field 2 (§5.7 step 7). */
    si.has_account_signature_key = 0;
    static const uint8_t w2b[] = {0x0a, 0x01, 0xaa, 0x1a, 0x01, 0xaa, 0x22, 0x02, 0xaa, 0xbb};
    WG_CHECK(wg_test_pb_exact(&si.base, w2b, sizeof(w2b)));

    di.has_raw_id = di.has_timestamp = di.has_key_index = di.has_account_type = 1;
    di.has_device_type = 1;
    di.raw_id = 5;
    di.timestamp = 1700000000; /* 80 e2 cf aa 06 */
    di.key_index = 3;
    di.account_type = WA__ADVENCRYPTION_TYPE__E2EE;
    di.device_type = WA__ADVENCRYPTION_TYPE__HOSTED;
    static const uint8_t w3[] = {0x08, 0x05, 0x10, 0x80, 0xe2, 0xcf, 0xaa, 0x06,
                                 0x18, 0x03, 0x20, 0x00, 0x28, 0x01};
    WG_CHECK(wg_test_pb_exact(&di.base, w3, sizeof(w3)));

    kl.has_raw_id = 1;
    kl.raw_id = 9;
    kl.n_valid_indexes = 3;
    kl.valid_indexes = idx;
    kl.has_account_type = 1;
    kl.account_type = WA__ADVENCRYPTION_TYPE__E2EE;
    /* 4 validIndexes packed: one length-delimited run of varints. */
    static const uint8_t w4[] = {0x08, 0x09, 0x22, 0x04, 0x00, 0x01, 0xc8, 0x01, 0x28, 0x00};
    WG_CHECK(wg_test_pb_exact(&kl.base, w4, sizeof(w4)));

    skl.has_details = skl.has_account_signature = skl.has_account_signature_key = 1;
    skl.details.data = skl.account_signature.data = skl.account_signature_key.data = b;
    skl.details.len = skl.account_signature.len = skl.account_signature_key.len = 1;
    static const uint8_t w5[] = {0x0a, 0x01, 0xaa, 0x12, 0x01, 0xaa, 0x1a, 0x01, 0xaa};
    WG_CHECK(wg_test_pb_exact(&skl.base, w5, sizeof(w5)));
}

WG_TEST(proto_message_text_reply_and_reaction)
{
    Wa__Message m = WA__MESSAGE__INIT, quoted = WA__MESSAGE__INIT;
    Wa__Message__ExtendedTextMessage et = WA__MESSAGE__EXTENDED_TEXT_MESSAGE__INIT;
    Wa__ContextInfo ci = WA__CONTEXT_INFO__INIT;
    Wa__Message__ReactionMessage re = WA__MESSAGE__REACTION_MESSAGE__INIT;
    Wa__MessageKey key = WA__MESSAGE_KEY__INIT;

    m.conversation = "hi";
    static const uint8_t w1[] = {0x0a, 0x02, 'h', 'i'};
    WG_CHECK(wg_test_pb_exact(&m.base, w1, sizeof(w1)));

    /* A reply: extendedTextMessage(6){text(1), contextInfo(17){stanzaId 1, participant 2,
     * quotedMessage 3}}. */
    m.conversation = NULL;
    quoted.conversation = "q";
    ci.stanza_id = "ID";
    ci.participant = "p@s";
    ci.quoted_message = &quoted;
    et.text = "ok";
    et.context_info = &ci;
    m.extended_text_message = &et;
    static const uint8_t w2[] = {
        0x32, 0x15, 0x0a, 0x02, 'o', 'k', 0x8a, 0x01, 0x0e,             /* 6 { 1 "ok", 17 { */
        0x0a, 0x02, 'I', 'D', 0x12, 0x03, 'p', '@', 's', 0x1a, 0x03, 0x0a, 0x01, 'q', /* }} */
    };
    WG_CHECK(wg_test_pb_exact(&m.base, w2, sizeof(w2)));

    /* reactionMessage(46){key(1){remoteJid 1, fromMe 2, id 3}, text(2), senderTimestampMs(4)} */
    m.extended_text_message = NULL;
    key.remote_jid = "a@s";
    key.has_from_me = 1;
    key.from_me = 1;
    key.id = "X";
    re.key = &key;
    re.text = "+";
    re.has_sender_timestamp_ms = 1;
    re.sender_timestamp_ms = 1;
    m.reaction_message = &re;
    static const uint8_t w3[] = {0xf2, 0x02, 0x11, 0x0a, 0x0a, 0x0a, 0x03, 'a', '@', 's', 0x10,
                                 0x01, 0x1a, 0x01, 'X', 0x12, 0x01, '+', 0x20, 0x01};
    WG_CHECK(wg_test_pb_exact(&m.base, w3, sizeof(w3)));
}

WG_TEST(proto_message_protocol_edit_dsm_skdm)
{
    Wa__Message m = WA__MESSAGE__INIT, edited = WA__MESSAGE__INIT, inner = WA__MESSAGE__INIT;
    Wa__Message__ProtocolMessage pm = WA__MESSAGE__PROTOCOL_MESSAGE__INIT;
    Wa__Message__DeviceSentMessage dsm = WA__MESSAGE__DEVICE_SENT_MESSAGE__INIT;
    Wa__Message__SenderKeyDistributionMessage sk = WA__MESSAGE__SENDER_KEY_DISTRIBUTION_MESSAGE__INIT;
    Wa__Message__FutureProofMessage fp = WA__MESSAGE__FUTURE_PROOF_MESSAGE__INIT;
    Wa__MessageContextInfo mci = WA__MESSAGE_CONTEXT_INFO__INIT;
    Wa__MessageKey key = WA__MESSAGE_KEY__INIT;
    uint8_t sec[2] = {0x5e, 0xc7};

    /* protocolMessage(12){key(1), type(2)=MESSAGE_EDIT(14), editedMessage(14)} */
    key.id = "K";
    edited.conversation = "new";
    pm.key = &key;
    pm.has_type = 1;
    pm.type = WA__MESSAGE__PROTOCOL_MESSAGE__TYPE__MESSAGE_EDIT;
    pm.edited_message = &edited;
    m.protocol_message = &pm;
    static const uint8_t w1[] = {0x62, 0x0e, 0x0a, 0x03, 0x1a, 0x01, 'K', 0x10, 0x0e,
                                 0x72, 0x05, 0x0a, 0x03, 'n', 'e', 'w'};
    WG_CHECK(wg_test_pb_exact(&m.base, w1, sizeof(w1)));
    pm.type = WA__MESSAGE__PROTOCOL_MESSAGE__TYPE__REVOKE;
    pm.edited_message = NULL;
    static const uint8_t w1b[] = {0x62, 0x07, 0x0a, 0x03, 0x1a, 0x01, 'K', 0x10, 0x00};
    WG_CHECK(wg_test_pb_exact(&m.base, w1b, sizeof(w1b)));

    /* deviceSentMessage(31){destinationJid 1, message 2} + messageContextInfo(35){secret 3} */
    m.protocol_message = NULL;
    inner.conversation = "x";
    dsm.destination_jid = "d";
    dsm.message = &inner;
    m.device_sent_message = &dsm;
    mci.has_message_secret = 1;
    mci.message_secret.data = sec;
    mci.message_secret.len = 2;
    m.message_context_info = &mci;
    static const uint8_t w2[] = {0xfa, 0x01, 0x08, 0x0a, 0x01, 'd', 0x12, 0x03, 0x0a, 0x01, 'x',
                                 0x9a, 0x02, 0x04, 0x1a, 0x02, 0x5e, 0xc7};
    WG_CHECK(wg_test_pb_exact(&m.base, w2, sizeof(w2)));

    /* senderKeyDistributionMessage(2){groupId 1, axolotl 2} */
    m.device_sent_message = NULL;
    m.message_context_info = NULL;
    sk.group_id = "g@g.us";
    sk.has_axolotl_sender_key_distribution_message = 1;
    sk.axolotl_sender_key_distribution_message.data = sec;
    sk.axolotl_sender_key_distribution_message.len = 1;
    m.sender_key_distribution_message = &sk;
    static const uint8_t w3[] = {0x12, 0x0b, 0x0a, 0x06, 'g', '@', 'g', '.', 'u', 's',
                                 0x12, 0x01, 0x5e};
    WG_CHECK(wg_test_pb_exact(&m.base, w3, sizeof(w3)));

    /* editedMessage(58) and ephemeralMessage(40) are FutureProofMessage{message 1} */
    m.sender_key_distribution_message = NULL;
    fp.message = &inner;
    m.edited_message = &fp;
    static const uint8_t w4[] = {0xd2, 0x03, 0x05, 0x0a, 0x03, 0x0a, 0x01, 'x'};
    WG_CHECK(wg_test_pb_exact(&m.base, w4, sizeof(w4)));
    m.edited_message = NULL;
    m.ephemeral_message = &fp;
    static const uint8_t w5[] = {0xc2, 0x02, 0x05, 0x0a, 0x03, 0x0a, 0x01, 'x'};
    WG_CHECK(wg_test_pb_exact(&m.base, w5, sizeof(w5)));
}

WG_TEST(proto_message_media_field_numbers)
{
    /* §6.4 table: url, mimetype, fileSha256, fileLength, mediaKey, fileEncSha256, directPath.
     * One byte per bytes field keeps the expected encodings short. */
    uint8_t k = 0x4b;
    Wa__Message m = WA__MESSAGE__INIT;
    Wa__Message__ImageMessage im = WA__MESSAGE__IMAGE_MESSAGE__INIT;
    Wa__Message__VideoMessage vm = WA__MESSAGE__VIDEO_MESSAGE__INIT;
    Wa__Message__AudioMessage am = WA__MESSAGE__AUDIO_MESSAGE__INIT;
    Wa__Message__DocumentMessage dm = WA__MESSAGE__DOCUMENT_MESSAGE__INIT;
    Wa__Message__StickerMessage sm = WA__MESSAGE__STICKER_MESSAGE__INIT;

#define WG_TEST_MEDIA(x)                                                                           \
    do {                                                                                           \
        (x).url = "u";                                                                             \
        (x).mimetype = "m";                                                                        \
        (x).has_file_sha256 = (x).has_media_key = (x).has_file_enc_sha256 = 1;                    \
        (x).file_sha256.data = (x).media_key.data = (x).file_enc_sha256.data = &k;                \
        (x).file_sha256.len = (x).media_key.len = (x).file_enc_sha256.len = 1;                    \
        (x).has_file_length = 1;                                                                   \
        (x).file_length = 5;                                                                       \
        (x).direct_path = "p";                                                                     \
    } while (0)
    WG_TEST_MEDIA(im);
    im.caption = "c";
    im.has_width = im.has_height = 1;
    im.height = 2;
    im.width = 3;
    m.image_message = &im;
    static const uint8_t wi[] = {0x1a, 0x1b, 0x0a, 0x01, 'u', 0x12, 0x01, 'm', 0x1a, 0x01, 'c',
                                 0x22, 0x01, 0x4b, 0x28, 0x05, 0x30, 0x02, 0x38, 0x03,
                                 0x42, 0x01, 0x4b, 0x4a, 0x01, 0x4b, 0x5a, 0x01, 'p'};
    WG_CHECK(wg_test_pb_exact(&m.base, wi, sizeof(wi)));
    m.image_message = NULL;

    WG_TEST_MEDIA(vm);
    vm.has_seconds = 1;
    vm.seconds = 9;
    m.video_message = &vm;
    static const uint8_t wv[] = {0x4a, 0x16, 0x0a, 0x01, 'u', 0x12, 0x01, 'm', 0x1a, 0x01, 0x4b,
                                 0x20, 0x05, 0x28, 0x09, 0x32, 0x01, 0x4b, 0x5a, 0x01, 0x4b,
                                 0x6a, 0x01, 'p'};
    WG_CHECK(wg_test_pb_exact(&m.base, wv, sizeof(wv)));
    m.video_message = NULL;

    WG_TEST_MEDIA(am);
    am.has_ptt = 1;
    am.ptt = 1;
    m.audio_message = &am;
    static const uint8_t wa[] = {0x42, 0x16, 0x0a, 0x01, 'u', 0x12, 0x01, 'm', 0x1a, 0x01, 0x4b,
                                 0x20, 0x05, 0x30, 0x01, 0x3a, 0x01, 0x4b, 0x42, 0x01, 0x4b,
                                 0x4a, 0x01, 'p'};
    WG_CHECK(wg_test_pb_exact(&m.base, wa, sizeof(wa)));
    m.audio_message = NULL;

    WG_TEST_MEDIA(dm);
    dm.file_name = "f";
    m.document_message = &dm;
    static const uint8_t wd[] = {0x3a, 0x17, 0x0a, 0x01, 'u', 0x12, 0x01, 'm', 0x22, 0x01, 0x4b,
                                 0x28, 0x05, 0x3a, 0x01, 0x4b, 0x42, 0x01, 'f', 0x4a, 0x01, 0x4b,
                                 0x52, 0x01, 'p'};
    WG_CHECK(wg_test_pb_exact(&m.base, wd, sizeof(wd)));
    m.document_message = NULL;

    WG_TEST_MEDIA(sm);
    m.sticker_message = &sm;
    static const uint8_t ws[] = {0xd2, 0x01, 0x14, 0x0a, 0x01, 'u', 0x12, 0x01, 0x4b,
                                 0x1a, 0x01, 0x4b, 0x22, 0x01, 0x4b, 0x2a, 0x01, 'm',
                                 0x42, 0x01, 'p', 0x48, 0x05};
    WG_CHECK(wg_test_pb_exact(&m.base, ws, sizeof(ws)));
#undef WG_TEST_MEDIA
}

WG_TEST(proto_unknown_fields_survive_repack)
{
    /* A newer field (Message.call = 10, not declared here) and an unknown varint 200. */
    static const uint8_t in[] = {0x0a, 0x01, 'x', 0x52, 0x02, 0x08, 0x01, 0xc0, 0x0c, 0x07};
    ProtobufCMessage *m = NULL;
    uint8_t *out = NULL;
    size_t len = 0;

    WG_CHECK_EQ_INT(wg_pb_unpack(&wa__message__descriptor, in, sizeof(in), &m), 0);
    WG_CHECK_STR(((Wa__Message *)m)->conversation, "x");
    WG_CHECK_EQ_INT(wg_pb_pack(m, &out, &len), 0);
    protobuf_c_message_free_unpacked(m, NULL);
    WG_CHECK_EQ_INT(len, sizeof(in));
    WG_CHECK_MEM(out, in, sizeof(in));
    free(out);
}

WG_TEST(proto_malformed_rejected)
{
    static const struct {
        const char *what;
        uint8_t b[12];
        size_t n;
    } bad[] = {
        {"truncated varint", {0x08, 0x80}, 2},
        {"truncated tag", {0x80}, 1},
        {"length past end", {0x0a, 0x05, 'a'}, 3},
        {"truncated fixed64", {0x09, 1, 2, 3}, 4},
        {"truncated fixed32", {0x0d, 1, 2}, 3},
        {"start group", {0x0b, 0x0c}, 2},
        {"wire type 7", {0x0f, 0x00}, 2},
        {"field number 0", {0x02, 0x00}, 2},
        {"11-byte varint", {0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, 12},
        {"bad sub-message", {0x32, 0x02, 0x0a, 0x05}, 4}, /* extendedText{text len 5 of 0} */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ProtobufCMessage *m = NULL;
        if (wg_pb_unpack(&wa__message__descriptor, bad[i].b, bad[i].n, &m) != WG_EPROTO) {
            wg_test_fail(wg_failed_, __FILE__, __LINE__, bad[i].what);
            return;
        }
        WG_CHECK(m == NULL);
    }
    /* protobuf-c on its own also refuses these (no leak under ASan on its error path). */
    WG_CHECK(wa__message__unpack(NULL, 3, (const uint8_t *)"\x0a\x05\x61") == NULL);
    WG_CHECK(wa__client_payload__unpack(NULL, 2, (const uint8_t *)"\x08\x80") == NULL);
    WG_CHECK(wa__advdevice_identity__unpack(NULL, 1, (const uint8_t *)"\x10") == NULL);
    /* Wrong wire type for a declared field: username (varint) sent as bytes. */
    WG_CHECK(wa__client_payload__unpack(NULL, 3, (const uint8_t *)"\x0a\x01\x00") == NULL);
    /* Empty input is a valid empty message. */
    ProtobufCMessage *e = NULL;
    WG_CHECK_EQ_INT(wg_pb_unpack(&wa__message__descriptor, NULL, 0, &e), 0);
    protobuf_c_message_free_unpacked(e, NULL);
    WG_CHECK_EQ_INT(wg_pb_unpack(NULL, NULL, 0, &e), WG_EINVAL);
}

/* Message nested `depth` times through deviceSentMessage(31).message(2), innermost
 * conversation "x". Built inside out; caller frees. */
static uint8_t *wg_test_nest(size_t depth, size_t *len)
{
    size_t cap = 8 + depth * 14, start = cap;
    uint8_t *b = malloc(cap);
    if (b == NULL)
        return NULL;
    b[--start] = 'x';
    b[--start] = 0x01;
    b[--start] = 0x0a;
    for (size_t d = 0; d < depth; d++) {
        uint8_t v[5];
        size_t inner = cap - start, vn = 0, x = inner;
        do {
            v[vn++] = (uint8_t)((x & 0x7f) | (x > 0x7f ? 0x80 : 0));
            x >>= 7;
        } while (x);
        /* DeviceSentMessage { 2: <Message> } */
        for (size_t i = vn; i > 0; i--)
            b[--start] = v[i - 1];
        b[--start] = 0x12;
        inner = cap - start;
        vn = 0;
        x = inner;
        do {
            v[vn++] = (uint8_t)((x & 0x7f) | (x > 0x7f ? 0x80 : 0));
            x >>= 7;
        } while (x);
        for (size_t i = vn; i > 0; i--)
            b[--start] = v[i - 1];
        b[--start] = 0x01;
        b[--start] = 0xfa; /* field 31, wire type 2 */
    }
    memmove(b, b + start, cap - start);
    *len = cap - start;
    return b;
}

WG_TEST(proto_depth_limit)
{
    size_t len;
    ProtobufCMessage *m = NULL;
    uint8_t *b;

    /* Each level is two sub-messages (Message -> DeviceSentMessage -> Message). */
    b = wg_test_nest(WG_PB_MAX_DEPTH / 2, &len);
    WG_CHECK(b != NULL);
    WG_CHECK_EQ_INT(wg_pb_unpack(&wa__message__descriptor, b, len, &m), 0);
    free(b);
    Wa__Message *w = (Wa__Message *)m;
    for (int i = 0; i < WG_PB_MAX_DEPTH / 2; i++) {
        WG_CHECK(w->device_sent_message != NULL && w->device_sent_message->message != NULL);
        w = w->device_sent_message->message;
    }
    WG_CHECK_STR(w->conversation, "x");
    protobuf_c_message_free_unpacked(m, NULL);

    b = wg_test_nest(WG_PB_MAX_DEPTH / 2 + 1, &len);
    WG_CHECK(b != NULL);
    m = NULL;
    WG_CHECK_EQ_INT(wg_pb_unpack(&wa__message__descriptor, b, len, &m), WG_EPROTO);
    WG_CHECK(m == NULL);
    free(b);

    /* 200k levels (~2 MB): plain protobuf-c would recurse 400k frames deep. */
    b = wg_test_nest(200000, &len);
    WG_CHECK(b != NULL);
    WG_CHECK_EQ_INT(wg_pb_unpack(&wa__message__descriptor, b, len, &m), WG_EPROTO);
    free(b);
}
