/* pb.h - safe protobuf-c entry points for bytes that come from a peer.
 *
 * protobuf-c recurses once per nested sub-message and has no depth limit, and our Message is
 * recursive (ContextInfo.quoted_message, DeviceSentMessage.message, FutureProofMessage): two
 * bytes per level are enough to run a thread out of stack. wg_pb_unpack() first walks the wire
 * data guided by the message descriptor, with bounded recursion, and refuses malformed data,
 * group wire types and nesting deeper than WG_PB_MAX_DEPTH; only then does it call
 * protobuf_c_message_unpack(). Pure functions: no I/O, no globals.
 *
 * Ownership: *out from wg_pb_unpack() is freed with protobuf_c_message_free_unpacked(*out,
 * NULL) (or the generated NAME__free_unpacked()); *out from wg_pb_pack() with free(). */
#ifndef WG_WA_PB_H
#define WG_WA_PB_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

/* Deepest sub-message nesting accepted (the top-level message is depth 0). Real WhatsApp
 * messages nest well under 10 (device-sent copy of a quoted reply in an ephemeral wrapper). */
#define WG_PB_MAX_DEPTH 32

/* Checks that p[0..n) is well-formed protobuf for `desc` with sub-messages nested at most
 * `max_depth` deep. Unknown fields are skipped, not descended into. Returns 0 or WG_EPROTO. */
int wg_pb_check(const ProtobufCMessageDescriptor *desc, const uint8_t *p, size_t n,
                int max_depth);

/* wg_pb_check() with WG_PB_MAX_DEPTH, then protobuf_c_message_unpack(). Returns 0 and sets
 * *out, WG_EPROTO for invalid bytes (protobuf data is never "incomplete": it arrives whole in
 * a frame or a node), WG_EINVAL for NULL arguments. */
int wg_pb_unpack(const ProtobufCMessageDescriptor *desc, const uint8_t *p, size_t n,
                 ProtobufCMessage **out);

/* Packs `m` into a malloc'd buffer (a 1-byte allocation for an empty message, so *out is
 * never NULL on success). Returns 0, WG_EINVAL or WG_ENOMEM. */
int wg_pb_pack(const ProtobufCMessage *m, uint8_t **out, size_t *len);

#endif
