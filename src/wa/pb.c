/* pb.c - depth-bounded validation in front of protobuf-c unpack, and pack to a malloc'd buffer.
 *
 * The walker reads the protobuf wire format (tag varint, then a varint, 8 bytes, a varint
 * length + bytes, or 4 bytes) and, for a length-delimited field the descriptor says is a
 * sub-message, checks the contents recursively with depth + 1. It allocates nothing.
 * Wire types 3/4 (groups) are refused: protobuf-c does not support them either. */
#include "wa/pb.h"

#include "util/err.h"

#include <stdlib.h>

/* Reads a varint of at most 10 bytes at p[*i..n); 0 or WG_EPROTO. */
static int wg_pb_varint(const uint8_t *p, size_t n, size_t *i, uint64_t *v)
{
    uint64_t r = 0;
    for (unsigned shift = 0; shift < 70; shift += 7) {
        if (*i >= n)
            return WG_EPROTO;
        uint8_t b = p[(*i)++];
        r |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = r;
            return 0;
        }
    }
    return WG_EPROTO;
}

int wg_pb_check(const ProtobufCMessageDescriptor *desc, const uint8_t *p, size_t n,
                int max_depth)
{
    size_t i = 0;
    uint64_t tag, v;

    if (desc == NULL || max_depth < 0 || (p == NULL && n > 0))
        return WG_EPROTO;
    while (i < n) {
        if (wg_pb_varint(p, n, &i, &tag) != 0)
            return WG_EPROTO;
        uint64_t num = tag >> 3;
        if (num == 0 || num > 0x1fffffff) /* field numbers are 1 .. 2^29-1 */
            return WG_EPROTO;
        switch (tag & 7) {
        case 0: /* varint */
            if (wg_pb_varint(p, n, &i, &v) != 0)
                return WG_EPROTO;
            break;
        case 1: /* 64-bit */
            if (n - i < 8)
                return WG_EPROTO;
            i += 8;
            break;
        case 5: /* 32-bit */
            if (n - i < 4)
                return WG_EPROTO;
            i += 4;
            break;
        case 2: { /* length-delimited */
            const ProtobufCFieldDescriptor *f;
            if (wg_pb_varint(p, n, &i, &v) != 0 || v > n - i)
                return WG_EPROTO;
            f = protobuf_c_message_descriptor_get_field(desc, (unsigned)num);
            if (f != NULL && f->type == PROTOBUF_C_TYPE_MESSAGE) {
                if (max_depth == 0)
                    return WG_EPROTO;
                if (wg_pb_check(f->descriptor, p + i, (size_t)v, max_depth - 1) != 0)
                    return WG_EPROTO;
            }
            i += (size_t)v;
            break;
        }
        default: /* 3, 4: groups; 6, 7: undefined */
            return WG_EPROTO;
        }
    }
    return 0;
}

int wg_pb_unpack(const ProtobufCMessageDescriptor *desc, const uint8_t *p, size_t n,
                 ProtobufCMessage **out)
{
    ProtobufCMessage *m;

    if (desc == NULL || out == NULL || (p == NULL && n > 0))
        return WG_EINVAL;
    if (wg_pb_check(desc, p, n, WG_PB_MAX_DEPTH) != 0)
        return WG_EPROTO;
    /* protobuf-c reads no byte when n == 0 but wants a non-NULL pointer anyway. */
    m = protobuf_c_message_unpack(desc, NULL, n, p ? p : (const uint8_t *)"");
    if (m == NULL)
        return WG_EPROTO;
    *out = m;
    return 0;
}

int wg_pb_pack(const ProtobufCMessage *m, uint8_t **out, size_t *len)
{
    size_t n;
    uint8_t *buf;

    if (m == NULL || out == NULL || len == NULL)
        return WG_EINVAL;
    n = protobuf_c_message_get_packed_size(m);
    buf = malloc(n ? n : 1);
    if (buf == NULL)
        return WG_ENOMEM;
    if (protobuf_c_message_pack(m, buf) != n) {
        free(buf);
        return WG_EINVAL;
    }
    *out = buf;
    *len = n;
    return 0;
}
