/* err.h - wagate error codes.
 *
 * Functions return int: 0 on success, a negative WG_E* on failure; byte counts are ssize_t.
 * Parsers tell "need more bytes" (WG_EAGAIN) apart from "these bytes are wrong" (WG_EPROTO,
 * WG_EINVAL). wg_strerror() gives a static message for any code; the caller never frees it. */
#ifndef WG_UTIL_ERR_H
#define WG_UTIL_ERR_H

enum {
    WG_OK = 0,
    WG_ENOMEM = -1,    /* allocation failed */
    WG_EINVAL = -2,    /* bad argument or malformed input */
    WG_EAGAIN = -3,    /* incomplete input: feed more bytes */
    WG_EPROTO = -4,    /* peer broke the protocol */
    WG_ECRYPTO = -5,   /* decryption, signature or MAC check failed */
    WG_ETOOBIG = -6,   /* a peer-sized buffer crossed its hard limit */
    WG_EIO = -7,       /* system or socket error */
    WG_ENOTFOUND = -8, /* no such object */
    WG_EEXIST = -9,    /* object already exists (unique constraint) */
    WG_ETIMEDOUT = -10,
    WG_ECLOSED = -11, /* connection closed */
    WG_ESTORE = -12,  /* storage backend error */
    WG_EPERM = -13,   /* not allowed */
    WG_ELIMIT = -14,  /* quota or plan limit reached */
};

const char *wg_strerror(int err);

#endif
