/* masterkey.c - see masterkey.h. */
#include "wa/masterkey.h"
#include "util/codec.h"
#include "util/err.h"
#include "util/log.h"
#include "wa/keys.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int from_hex(const char *s, size_t n, uint8_t key[WG_MASTERKEY_LEN])
{
    while (n && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' '))
        n--;
    if (n != 2 * WG_MASTERKEY_LEN || wg_hex_decode(s, n, key, WG_MASTERKEY_LEN) != WG_MASTERKEY_LEN)
        return WG_EINVAL;
    return 0;
}

static int read_file(const char *path, uint8_t key[WG_MASTERKEY_LEN])
{
    char buf[160];
    struct stat st;
    ssize_t n;
    int fd = open(path, O_RDONLY | O_CLOEXEC), rv = 0;
    if (fd < 0)
        return errno == ENOENT ? WG_ENOTFOUND : WG_EIO;
    if (fstat(fd, &st) != 0) {
        rv = WG_EIO;
        goto out;
    }
    if (st.st_mode & 077) {
        wg_log(WG_LOG_ERROR, "masterkey", "file=%s mode=%03o err=\"readable by group/others; "
               "chmod 600 it\"", path, (unsigned)(st.st_mode & 0777));
        rv = WG_EINVAL;
        goto out;
    }
    if ((n = read(fd, buf, sizeof(buf) - 1)) < 0) {
        rv = WG_EIO;
        goto out;
    }
    buf[n] = 0;
    if ((rv = from_hex(buf, (size_t)n, key)) != 0)
        wg_log(WG_LOG_ERROR, "masterkey", "file=%s err=\"not 64 hex digits\"", path);
out:
    close(fd);
    wg_keys_wipe(buf, sizeof(buf));
    return rv;
}

static int create_file(const char *path, uint8_t key[WG_MASTERKEY_LEN])
{
    char *hex = NULL;
    int rv, fd;
    if ((rv = wg_random_bytes(key, WG_MASTERKEY_LEN)) != 0)
        return rv;
    if (!(hex = wg_hex_encode(key, WG_MASTERKEY_LEN)))
        return WG_ENOMEM;
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        rv = errno == EEXIST ? WG_EEXIST : WG_EIO;
        goto out;
    }
    size_t len = strlen(hex);
    hex[len] = '\n'; /* replaces the NUL; written with its length below */
    if (write(fd, hex, len + 1) != (ssize_t)(len + 1) || fsync(fd) != 0) {
        rv = WG_EIO;
        close(fd);
        unlink(path);
        goto out;
    }
    close(fd);
    wg_log(WG_LOG_INFO, "masterkey", "file=%s created (mode 0600); back it up with the database",
           path);
out:
    wg_keys_wipe(hex, 2 * WG_MASTERKEY_LEN);
    free(hex);
    return rv;
}

int wg_masterkey_load(const char *configured, const char *db, uint8_t key[WG_MASTERKEY_LEN],
                      int *created)
{
    char path[4096];
    int rv;
    if (created)
        *created = 0;
    if (configured && *configured) {
        if (from_hex(configured, strlen(configured), key) != 0) {
            wg_log(WG_LOG_ERROR, "masterkey", "err=\"WAGATE_MASTER_KEY must be 64 hex digits\"");
            return WG_EINVAL;
        }
        return 0;
    }
    if (!db || !*db || strstr(db, "://")) {
        wg_log(WG_LOG_ERROR, "masterkey", "err=\"set WAGATE_MASTER_KEY (no database file)\"");
        return WG_EINVAL;
    }
    if (snprintf(path, sizeof(path), "%s.key", db) >= (int)sizeof(path))
        return WG_EINVAL;
    rv = read_file(path, key);
    if (rv != WG_ENOTFOUND)
        return rv;
    rv = create_file(path, key);
    if (rv == WG_EEXIST) /* another process created it meanwhile */
        return read_file(path, key);
    if (rv == 0 && created)
        *created = 1;
    return rv;
}
