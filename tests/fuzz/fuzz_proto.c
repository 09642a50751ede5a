/* fuzz_proto.c - the protobuf decoders of peer bytes: client.proto, adv.proto, message.proto
 * through wg_pb_unpack(), and wg_payload_parse().
 *
 * The first input byte picks the decoder (byte % count, table below; seeds in
 * tests/fuzz/corpus/proto/ start with that byte); the rest is the message. Each accepted
 * input is packed, unpacked and packed again: the two packings must be identical (protobuf-c
 * normalizes on the first round: merged duplicates, packed repeats, unknown fields last). */
#include "util/err.h"
#include "wa/payload.h"
#include "wa/pb.h"
#include "wa/proto/adv.pb-c.h"
#include "wa/proto/client.pb-c.h"
#include "wa/proto/message.pb-c.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const ProtobufCMessageDescriptor *const wg_fuzz_descs[] = {
    &wa__client_payload__descriptor,                 /* 0 */
    &wa__device_props__descriptor,                   /* 1 */
    &wa__client_pairing_props__descriptor,           /* 2 */
    &wa__advsigned_device_identity_hmac__descriptor, /* 3 */
    &wa__advsigned_device_identity__descriptor,      /* 4 */
    &wa__advdevice_identity__descriptor,             /* 5 */
    &wa__advsigned_key_index_list__descriptor,       /* 6 */
    &wa__advkey_index_list__descriptor,              /* 7 */
    &wa__message__descriptor,                        /* 8 */
    &wa__lidmigration_mapping_sync_payload__descriptor, /* 9 */
    NULL,                                            /* 10: wg_payload_parse */
};
#define WG_FUZZ_N (sizeof(wg_fuzz_descs) / sizeof(wg_fuzz_descs[0]))

static void wg_fuzz_roundtrip(const ProtobufCMessageDescriptor *d, const uint8_t *p, size_t n)
{
    ProtobufCMessage *m1 = NULL, *m2 = NULL;
    uint8_t *b1 = NULL, *b2 = NULL;
    size_t l1 = 0, l2 = 0;

    if (wg_pb_unpack(d, p, n, &m1) != 0)
        return;
    if (wg_pb_pack(m1, &b1, &l1) != 0)
        abort();
    /* What we packed must decode again (and within the depth limit: packing adds none). */
    if (wg_pb_unpack(d, b1, l1, &m2) != 0)
        abort();
    if (wg_pb_pack(m2, &b2, &l2) != 0)
        abort();
    if (l1 != l2 || memcmp(b1, b2, l1) != 0)
        abort();
    free(b1);
    free(b2);
    protobuf_c_message_free_unpacked(m1, NULL);
    protobuf_c_message_free_unpacked(m2, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t which;

    if (size < 1)
        return 0;
    which = data[0] % WG_FUZZ_N;
    if (wg_fuzz_descs[which] != NULL) {
        wg_fuzz_roundtrip(wg_fuzz_descs[which], data + 1, size - 1);
    } else {
        wg_payload_info_t info;
        int rv = wg_payload_parse(data + 1, size - 1, &info);
        if (rv != 0 && rv != WG_EPROTO)
            abort();
        /* Parsed strings are always terminated inside their arrays. */
        if (rv == 0 && (memchr(info.push_name, 0, sizeof(info.push_name)) == NULL ||
                        memchr(info.props_os, 0, sizeof(info.props_os)) == NULL))
            abort();
    }
    return 0;
}
