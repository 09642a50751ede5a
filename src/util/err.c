/* err.c - messages for WG_E* codes. */
#include "util/err.h"

const char *wg_strerror(int err)
{
    switch (err) {
    case WG_OK: return "ok";
    case WG_ENOMEM: return "out of memory";
    case WG_EINVAL: return "invalid argument or input";
    case WG_EAGAIN: return "incomplete input";
    case WG_EPROTO: return "protocol error";
    case WG_ECRYPTO: return "cryptographic check failed";
    case WG_ETOOBIG: return "size limit exceeded";
    case WG_EIO: return "i/o error";
    case WG_ENOTFOUND: return "not found";
    case WG_EEXIST: return "already exists";
    case WG_ETIMEDOUT: return "timed out";
    case WG_ECLOSED: return "connection closed";
    case WG_ESTORE: return "storage error";
    case WG_EPERM: return "not permitted";
    case WG_ELIMIT: return "limit reached";
    default: return "unknown error";
    }
}
