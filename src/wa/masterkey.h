/* masterkey.h - the master key that seals WhatsApp credentials at rest (WAGATE_MASTER_KEY).
 *
 * Either given (64 hex digits = 32 bytes) or kept in a key file next to the database,
 * "<db>.key", created on first start with mode 0600 (O_EXCL: two processes cannot both create
 * it) holding 64 hex digits and a newline. An existing key file readable by group or others is
 * refused: the key must stay private. This module does file I/O once at start-up; it keeps no
 * state. */
#ifndef WG_WA_MASTERKEY_H
#define WG_WA_MASTERKEY_H

#include <stddef.h>
#include <stdint.h>

#define WG_MASTERKEY_LEN 32

/* Loads the master key into key[32]. configured: the WAGATE_MASTER_KEY value ("" or NULL =
 * use the key file). db: the WAGATE_DB value; the file is db + ".key" (a postgresql:// URL
 * has no file: then the key must be configured). *created (optional) is set to 1 when a new
 * key file was written. 0; WG_EINVAL (bad hex, no db path, file with a bad content or open
 * to group/others); WG_EIO (file system error). */
int wg_masterkey_load(const char *configured, const char *db, uint8_t key[WG_MASTERKEY_LEN],
                      int *created);

#endif
