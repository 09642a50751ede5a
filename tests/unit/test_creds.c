/* test_creds.c - wa/creds (record, byte form, sealing) and wa/masterkey (configured key, key
 * file created 0600, refused when group/other readable). */
#include "test.h"
#include "util/err.h"
#include "wa/creds.h"
#include "wa/masterkey.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void paired_record(wg_creds_t *c)
{
    c->paired = 1;
    snprintf(c->jid, sizeof(c->jid), "5511999990001:7@s.whatsapp.net");
    snprintf(c->lid, sizeof(c->lid), "484927972859127:7@lid");
    snprintf(c->platform, sizeof(c->platform), "android");
    snprintf(c->push_name, sizeof(c->push_name), "Alice");
    memset(c->primary_identity, 0x42, sizeof(c->primary_identity));
    for (size_t i = 0; i < 150; i++)
        c->account[i] = (uint8_t)i;
    c->account_len = 150;
}

WG_TEST(creds_generate_is_valid)
{
    wg_creds_t c;
    uint8_t djb[33];
    WG_CHECK_EQ_INT(wg_creds_generate(&c), 0);
    WG_CHECK(c.registration_id >= 1 && c.registration_id <= 16380);
    WG_CHECK_EQ_INT(c.signed_prekey_id, 1);
    WG_CHECK(!c.paired);
    wg_keys_djb_encode(djb, c.signed_prekey.pub);
    WG_CHECK_EQ_INT(wg_keys_verify(c.identity.pub, djb, sizeof(djb), c.signed_prekey_sig), 0);
    WG_CHECK(memcmp(c.noise.pub, c.identity.pub, 32) != 0);
    wg_creds_t d;
    WG_CHECK_EQ_INT(wg_creds_generate(&d), 0);
    WG_CHECK(memcmp(c.adv_secret, d.adv_secret, 32) != 0);
    wg_creds_wipe(&c);
    wg_creds_wipe(&d);
}

WG_TEST(creds_encode_decode_round_trip)
{
    wg_creds_t c, d;
    uint8_t *b = NULL;
    size_t n = 0;
    WG_CHECK_EQ_INT(wg_creds_generate(&c), 0);
    for (int paired = 0; paired < 2; paired++) {
        if (paired)
            paired_record(&c);
        WG_CHECK_EQ_INT(wg_creds_encode(&c, &b, &n), 0);
        WG_CHECK_EQ_INT(wg_creds_decode(&d, b, n), 0);
        WG_CHECK(memcmp(&c.noise, &d.noise, sizeof(c.noise)) == 0);
        WG_CHECK(memcmp(&c.identity, &d.identity, sizeof(c.identity)) == 0);
        WG_CHECK(memcmp(&c.signed_prekey, &d.signed_prekey, sizeof(c.signed_prekey)) == 0);
        WG_CHECK_MEM(c.signed_prekey_sig, d.signed_prekey_sig, 64);
        WG_CHECK_EQ_INT(c.registration_id, d.registration_id);
        WG_CHECK_MEM(c.adv_secret, d.adv_secret, 32);
        WG_CHECK_EQ_INT(c.paired, d.paired);
        WG_CHECK_STR(c.jid, d.jid);
        WG_CHECK_STR(c.lid, d.lid);
        WG_CHECK_STR(c.push_name, d.push_name);
        WG_CHECK_EQ_INT(c.account_len, d.account_len);
        WG_CHECK_MEM(c.account, d.account, c.account_len);
        WG_CHECK_MEM(c.primary_identity, d.primary_identity, 32);
        /* strict: every truncation is rejected */
        for (size_t cut = 0; cut < n; cut++)
            WG_CHECK_EQ_INT(wg_creds_decode(&d, b, cut), WG_EPROTO);
        /* a duplicated field or a wrong size is rejected */
        b[4 + 2] = 31; /* T_NOISE length 32 -> 31 */
        WG_CHECK_EQ_INT(wg_creds_decode(&d, b, n), WG_EPROTO);
        free(b);
    }
    char phone[24];
    uint32_t dev = 0;
    WG_CHECK_EQ_INT(wg_creds_phone(&c, phone, sizeof(phone), &dev), 0);
    WG_CHECK_STR(phone, "5511999990001");
    WG_CHECK_EQ_INT(dev, 7);
    snprintf(c.jid, sizeof(c.jid), "55a1@s.whatsapp.net");
    WG_CHECK_EQ_INT(wg_creds_phone(&c, phone, sizeof(phone), &dev), WG_EINVAL);
    wg_creds_wipe(&c);
    wg_creds_wipe(&d);
}

WG_TEST(creds_seal_open)
{
    uint8_t key[32], other[32], *s = NULL, *p = NULL;
    size_t sn = 0, pn = 0;
    const uint8_t msg[] = "secret key material";
    memset(key, 1, 32);
    memset(other, 2, 32);
    WG_CHECK_EQ_INT(wg_creds_seal(key, "inst_a", msg, sizeof(msg), &s, &sn), 0);
    WG_CHECK_EQ_INT(sn, sizeof(msg) + WG_CREDS_SEAL_OVERHEAD);
    WG_CHECK(memcmp(s, "WGS1", 4) == 0);
    WG_CHECK(memmem(s, sn, "secret", 6) == NULL);
    WG_CHECK_EQ_INT(wg_creds_open(key, "inst_a", s, sn, &p, &pn), 0);
    WG_CHECK_EQ_INT(pn, sizeof(msg));
    WG_CHECK_MEM(p, msg, pn);
    free(p);
    /* wrong key, another instance's label, any flipped byte, truncation */
    WG_CHECK_EQ_INT(wg_creds_open(other, "inst_a", s, sn, &p, &pn), WG_ECRYPTO);
    WG_CHECK_EQ_INT(wg_creds_open(key, "inst_b", s, sn, &p, &pn), WG_ECRYPTO);
    for (size_t i = 4; i < sn; i++) {
        s[i] ^= 0x01;
        WG_CHECK_EQ_INT(wg_creds_open(key, "inst_a", s, sn, &p, &pn), WG_ECRYPTO);
        s[i] ^= 0x01;
    }
    WG_CHECK_EQ_INT(wg_creds_open(key, "inst_a", s, 20, &p, &pn), WG_EPROTO);
    s[0] = 'X';
    WG_CHECK_EQ_INT(wg_creds_open(key, "inst_a", s, sn, &p, &pn), WG_EPROTO);
    free(s);
    /* two seals of the same bytes differ (random IV) */
    uint8_t *s1 = NULL, *s2 = NULL;
    WG_CHECK_EQ_INT(wg_creds_seal(key, "x", msg, sizeof(msg), &s1, &sn), 0);
    WG_CHECK_EQ_INT(wg_creds_seal(key, "x", msg, sizeof(msg), &s2, &sn), 0);
    WG_CHECK(memcmp(s1, s2, sn) != 0);
    free(s1);
    free(s2);
}

WG_TEST(creds_seal_record)
{
    wg_creds_t c, d;
    uint8_t key[32], *s = NULL;
    size_t sn = 0;
    memset(key, 7, 32);
    WG_CHECK_EQ_INT(wg_creds_generate(&c), 0);
    paired_record(&c);
    WG_CHECK_EQ_INT(wg_creds_seal_record(key, "inst_x", &c, &s, &sn), 0);
    WG_CHECK(memmem(s, sn, c.identity.priv, 32) == NULL);
    WG_CHECK(memmem(s, sn, "5511999990001", 13) == NULL);
    WG_CHECK_EQ_INT(wg_creds_open_record(key, "inst_x", s, sn, &d), 0);
    WG_CHECK_MEM(d.identity.priv, c.identity.priv, 32);
    WG_CHECK_STR(d.jid, c.jid);
    WG_CHECK_EQ_INT(wg_creds_open_record(key, "inst_y", s, sn, &d), WG_ECRYPTO);
    free(s);
    wg_creds_wipe(&c);
    wg_creds_wipe(&d);
}

WG_TEST(masterkey_configured_and_file)
{
    uint8_t k1[32], k2[32];
    char db[128], kf[160];
    int created = -1;
    struct stat st;
    WG_CHECK_EQ_INT(wg_masterkey_load(
                        "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
                        "/nonexistent/x.db", k1, &created),
                    0);
    WG_CHECK_EQ_INT(created, 0);
    WG_CHECK_EQ_INT(k1[0], 0);
    WG_CHECK_EQ_INT(k1[31], 0x1f);
    WG_CHECK_EQ_INT(wg_masterkey_load("abcd", "x.db", k1, NULL), WG_EINVAL);
    WG_CHECK_EQ_INT(wg_masterkey_load("", "postgresql://db/x", k1, NULL), WG_EINVAL);

    snprintf(db, sizeof(db), "/tmp/wg_test_mk_%d_%ld.db", (int)getpid(), random());
    snprintf(kf, sizeof(kf), "%s.key", db);
    unlink(kf);
    WG_CHECK_EQ_INT(wg_masterkey_load(NULL, db, k1, &created), 0);
    WG_CHECK_EQ_INT(created, 1);
    WG_CHECK_EQ_INT(stat(kf, &st), 0);
    WG_CHECK_EQ_INT(st.st_mode & 0777, 0600);
    WG_CHECK_EQ_INT(st.st_size, 65);
    /* second start: the same key, nothing created */
    WG_CHECK_EQ_INT(wg_masterkey_load("", db, k2, &created), 0);
    WG_CHECK_EQ_INT(created, 0);
    WG_CHECK_MEM(k1, k2, 32);
    /* a key file others may read is refused */
    chmod(kf, 0644);
    WG_CHECK_EQ_INT(wg_masterkey_load("", db, k2, NULL), WG_EINVAL);
    /* garbage in the file is refused */
    chmod(kf, 0600);
    int fd = open(kf, O_WRONLY | O_TRUNC);
    WG_CHECK(fd >= 0);
    WG_CHECK_EQ_INT(write(fd, "nothex\n", 7), 7);
    close(fd);
    WG_CHECK_EQ_INT(wg_masterkey_load("", db, k2, NULL), WG_EINVAL);
    unlink(kf);
}
