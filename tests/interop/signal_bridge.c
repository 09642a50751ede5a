/* signal_bridge.c - one wagate Signal party (wa/signal.c over in-memory storage, fresh keys)
 * driven line by line over stdin/stdout, for signal.test.mjs. Bytes travel as lowercase hex; a
 * missing optional value is "-". Prints "READY" first, then one reply line per command:
 *   BUNDLE <prekey id|0>                 -> OK <reg> <identity> <spk id> <spk> <sig> <pk id> <pk|->
 *   PROCESS <jid> <reg> <identity> <spk id> <spk> <sig> <pk id|0> <pk|->   -> OK
 *   ENC <jid> <pt>                       -> OK <msg|pkmsg> <ct>
 *   DEC <jid> <msg|pkmsg> <ct>           -> OK <pt>
 *   GSKDM <group> <own jid>              -> OK <skdm>
 *   GENC <group> <own jid> <pt>          -> OK <skmsg>
 *   GPROC <group> <sender jid> <skdm>    -> OK
 *   GDEC <group> <sender jid> <skmsg>    -> OK <pt>
 * Failures answer "ERR <wg error number> <message>". Prekeys 1..8 exist at start. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/codec.h"
#include "util/err.h"
#include "util/log.h"
#include "wa/creds.h"
#include "wa/signal.h"

static wg_signal_t *me;

static int unhex(const char *s, uint8_t **out, size_t *n)
{
    size_t l = strlen(s);
    if (strcmp(s, "-") == 0) {
        *out = NULL;
        *n = 0;
        return 0;
    }
    *out = malloc(l / 2 + 1);
    ssize_t r = *out ? wg_hex_decode(s, l, *out, l / 2 + 1) : -1;
    if (r < 0) {
        free(*out);
        *out = NULL;
        return WG_EINVAL;
    }
    *n = (size_t)r;
    return 0;
}

static void hex(const uint8_t *p, size_t n)
{
    char *h = n ? wg_hex_encode(p, n) : NULL;
    printf(" %s", h ? h : "-");
    free(h);
}

static int fixed(const char *s, uint8_t *out, size_t n)
{
    uint8_t *b = NULL;
    size_t l = 0;
    int rv = unhex(s, &b, &l);
    if (rv == 0 && l != n)
        rv = WG_EINVAL;
    if (rv == 0)
        memcpy(out, b, n);
    free(b);
    return rv;
}

static int run(char **a, int n)
{
    wg_signal_addr_t addr;
    uint8_t *in = NULL, *o = NULL;
    size_t inl = 0, ol = 0;
    wg_signal_type_t t;
    int rv = WG_EINVAL;
    if (n == 2 && strcmp(a[0], "BUNDLE") == 0) {
        wg_signal_bundle_t b;
        if ((rv = wg_signal_own_bundle(me, (uint32_t)strtoul(a[1], NULL, 10), &b)) != 0)
            return rv;
        printf("OK %u", b.registration_id);
        hex(b.identity, 32);
        printf(" %u", b.signed_prekey_id);
        hex(b.signed_prekey, 32);
        hex(b.signed_prekey_sig, 64);
        printf(" %u", b.prekey_id);
        hex(b.has_prekey ? b.prekey : NULL, b.has_prekey ? 32 : 0);
        printf("\n");
        return 0;
    }
    if (n < 3)
        return WG_EINVAL;
    if (strcmp(a[0], "PROCESS") == 0 && n == 9) {
        wg_signal_bundle_t b = {0};
        if ((rv = wg_signal_addr_from_jid(a[1], &addr)) != 0)
            return rv;
        b.registration_id = (uint32_t)strtoul(a[2], NULL, 10);
        b.signed_prekey_id = (uint32_t)strtoul(a[4], NULL, 10);
        b.prekey_id = (uint32_t)strtoul(a[7], NULL, 10);
        b.has_prekey = strcmp(a[8], "-") != 0;
        if ((rv = fixed(a[3], b.identity, 32)) || (rv = fixed(a[5], b.signed_prekey, 32)) ||
            (rv = fixed(a[6], b.signed_prekey_sig, 64)) ||
            (b.has_prekey && (rv = fixed(a[8], b.prekey, 32))))
            return rv;
        if ((rv = wg_signal_process_bundle(me, &addr, &b)) == 0)
            printf("OK\n");
        return rv;
    }
    if (a[0][0] == 'G') {
        if (n != 4 && !(n == 3 && strcmp(a[0], "GSKDM") == 0))
            return WG_EINVAL;
        if ((rv = wg_signal_addr_from_jid(a[2], &addr)) != 0 ||
            (n == 4 && (rv = unhex(a[3], &in, &inl)) != 0))
            return rv;
        if (strcmp(a[0], "GSKDM") == 0)
            rv = wg_signal_group_skdm(me, a[1], &addr, &o, &ol);
        else if (strcmp(a[0], "GENC") == 0)
            rv = wg_signal_group_encrypt(me, a[1], &addr, in, inl, &o, &ol);
        else if (strcmp(a[0], "GPROC") == 0)
            rv = wg_signal_group_process(me, a[1], &addr, in, inl);
        else if (strcmp(a[0], "GDEC") == 0)
            rv = wg_signal_group_decrypt(me, a[1], &addr, in, inl, &o, &ol);
        else
            rv = WG_EINVAL;
    } else if (strcmp(a[0], "ENC") == 0 && n == 3) {
        if ((rv = wg_signal_addr_from_jid(a[1], &addr)) == 0 &&
            (rv = unhex(a[2], &in, &inl)) == 0 &&
            (rv = wg_signal_encrypt(me, &addr, in, inl, &t, &o, &ol)) == 0) {
            printf("OK %s", wg_signal_type_name(t));
            hex(o, ol);
            printf("\n");
            free(in);
            free(o);
            return 0;
        }
    } else if (strcmp(a[0], "DEC") == 0 && n == 4) {
        int ty = wg_signal_type_parse(a[2]);
        if ((rv = wg_signal_addr_from_jid(a[1], &addr)) == 0 && (rv = unhex(a[3], &in, &inl)) == 0)
            rv = ty < 0 ? WG_EINVAL
                        : wg_signal_decrypt(me, &addr, (wg_signal_type_t)ty, in, inl, &o, &ol);
    }
    if (rv == 0) {
        printf("OK");
        if (o)
            hex(o, ol);
        printf("\n");
    }
    free(in);
    free(o);
    return rv;
}

int main(void)
{
    wg_creds_t c;
    wg_signal_keys_t k;
    wg_signal_storage_t *st = NULL;
    static char line[1 << 20];
    wg_log_set_level(WG_LOG_OFF);
    if (wg_creds_generate(&c) || wg_signal_storage_mem_new(&st))
        return 2;
    k.registration_id = c.registration_id;
    k.identity = c.identity;
    k.signed_prekey_id = c.signed_prekey_id;
    k.signed_prekey = c.signed_prekey;
    memcpy(k.signed_prekey_sig, c.signed_prekey_sig, sizeof(k.signed_prekey_sig));
    if (wg_signal_new(&k, st, &me) || wg_signal_prekeys_generate(me, 1, 8, NULL))
        return 2;
    printf("READY\n");
    fflush(stdout);
    while (fgets(line, sizeof(line), stdin)) {
        char *a[12], *save = NULL;
        int n = 0;
        for (char *tok = strtok_r(line, " \r\n", &save); tok && n < 12;
             tok = strtok_r(NULL, " \r\n", &save))
            a[n++] = tok;
        if (n == 0)
            continue;
        int rv = run(a, n);
        if (rv)
            printf("ERR %d %s\n", rv, wg_strerror(rv));
        fflush(stdout);
    }
    wg_signal_free(me);
    wg_creds_wipe(&c);
    return 0;
}
