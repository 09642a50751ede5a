/* test_signal.c - wa/signal: JID -> address mapping; two parties in one process, each with its
 * own storage: bundle -> pkmsg -> msg both ways, out-of-order and duplicate delivery, tampering,
 * missing sessions and prekeys, group sender keys both ways; the LRU cache bounds; the storage on
 * SQLite (sealed blobs, sessions surviving a reopen, wrong master key). */
#include "store/store.h"
#include "test.h"
#include "util/err.h"
#include "wa/creds.h"
#include "wa/signal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A party: its keys (made like wg_creds_generate) over the given storage. */
static wg_signal_t *party(wg_signal_storage_t *st, wg_signal_keys_t *keys_out)
{
    wg_creds_t c;
    wg_signal_keys_t k;
    wg_signal_t *s = NULL;
    if (wg_creds_generate(&c) != 0)
        return NULL;
    k.registration_id = c.registration_id;
    k.identity = c.identity;
    k.signed_prekey_id = c.signed_prekey_id;
    k.signed_prekey = c.signed_prekey;
    memcpy(k.signed_prekey_sig, c.signed_prekey_sig, sizeof(k.signed_prekey_sig));
    wg_creds_wipe(&c);
    if (keys_out)
        *keys_out = k;
    if (!st && wg_signal_storage_mem_new(&st) != 0)
        return NULL;
    if (wg_signal_new(&k, st, &s) != 0)
        return NULL;
    return s;
}

static int addr(const char *jid, wg_signal_addr_t *a)
{
    return wg_signal_addr_from_jid(jid, a);
}

/* Encrypts text from a to b (addressed as `to` by a) and decrypts it at b (from `from`). */
static int send_one(wg_signal_t *a, const wg_signal_addr_t *to, wg_signal_t *b,
                    const wg_signal_addr_t *from, const char *text, wg_signal_type_t *type)
{
    uint8_t *ct = NULL, *pt = NULL;
    size_t ctn = 0, ptn = 0;
    int rv = wg_signal_encrypt(a, to, (const uint8_t *)text, strlen(text), type, &ct, &ctn);
    if (rv == 0)
        rv = wg_signal_decrypt(b, from, *type, ct, ctn, &pt, &ptn);
    if (rv == 0 && (ptn != strlen(text) || memcmp(pt, text, ptn) != 0))
        rv = -100;
    free(ct);
    free(pt);
    return rv;
}

WG_TEST(signal_addr_from_jid)
{
    wg_signal_addr_t a;
    char buf[128];
    WG_CHECK_EQ_INT(addr("123@s.whatsapp.net", &a), 0);
    WG_CHECK_STR(a.name, "123");
    WG_CHECK_EQ_INT(a.device, 0);
    WG_CHECK_EQ_INT(addr("123:7@s.whatsapp.net", &a), 0);
    WG_CHECK_STR(a.name, "123");
    WG_CHECK_EQ_INT(a.device, 7);
    WG_CHECK_EQ_INT(wg_signal_addr_format(&a, buf, sizeof(buf)), 0);
    WG_CHECK_STR(buf, "123.7");
    WG_CHECK_EQ_INT(addr("555:2@lid", &a), 0);
    WG_CHECK_STR(a.name, "555_1");
    WG_CHECK_EQ_INT(a.device, 2);
    WG_CHECK_EQ_INT(addr("555@lid", &a), 0);
    WG_CHECK_STR(a.name, "555_1");
    WG_CHECK_EQ_INT(a.device, 0);
    WG_CHECK_EQ_INT(addr("9:99@hosted", &a), 0);
    WG_CHECK_STR(a.name, "9_128");
    WG_CHECK_EQ_INT(a.device, 99);
    WG_CHECK_EQ_INT(addr("9:99@hosted.lid", &a), 0);
    WG_CHECK_STR(a.name, "9_129");
    /* raw agent on s.whatsapp.net does not change the name (whatsmeow ActualAgent) */
    WG_CHECK_EQ_INT(addr("123_7:4@s.whatsapp.net", &a), 0);
    WG_CHECK_STR(a.name, "123");
    WG_CHECK_EQ_INT(a.device, 4);
    WG_CHECK_EQ_INT(addr("123:99@s.whatsapp.net", &a), WG_EINVAL);
    WG_CHECK_EQ_INT(addr("1234-5678@g.us", &a), WG_EINVAL);
    WG_CHECK_EQ_INT(addr("status@broadcast", &a), WG_EINVAL);
    WG_CHECK_EQ_INT(addr("@s.whatsapp.net", &a), WG_EINVAL);
    WG_CHECK_EQ_INT(addr("nonsense", &a), WG_EINVAL);
    WG_CHECK_STR(wg_signal_type_name(WG_SIGNAL_PKMSG), "pkmsg");
    WG_CHECK_EQ_INT(wg_signal_type_parse("skmsg"), WG_SIGNAL_SKMSG);
    WG_CHECK_EQ_INT(wg_signal_type_parse("frskmsg"), -1);
}

WG_TEST(signal_pkmsg_then_msg_both_ways)
{
    wg_signal_t *alice = party(NULL, NULL), *bob = party(NULL, NULL);
    wg_signal_addr_t a_addr, b_addr;
    wg_signal_bundle_t bundle;
    wg_signal_type_t t;
    WG_CHECK(alice && bob);
    WG_CHECK_EQ_INT(addr("111:3@s.whatsapp.net", &a_addr), 0);
    WG_CHECK_EQ_INT(addr("222@s.whatsapp.net", &b_addr), 0);

    WG_CHECK_EQ_INT(wg_signal_prekeys_generate(bob, 1, 5, NULL), 0);
    WG_CHECK_EQ_INT(wg_signal_storage_mem_count(wg_signal_storage(bob), WG_SIGNAL_K_PREKEY), 5);
    WG_CHECK_EQ_INT(wg_signal_own_bundle(bob, 3, &bundle), 0);
    WG_CHECK_EQ_INT(bundle.has_prekey, 1);

    /* no session yet */
    uint8_t *ct = NULL;
    size_t ctn = 0;
    WG_CHECK_EQ_INT(wg_signal_encrypt(alice, &b_addr, (const uint8_t *)"x", 1, &t, &ct, &ctn),
                    WG_ENOTFOUND);
    WG_CHECK_EQ_INT(wg_signal_has_session(alice, &b_addr), 0);
    WG_CHECK_EQ_INT(wg_signal_process_bundle(alice, &b_addr, &bundle), 0);
    WG_CHECK_EQ_INT(wg_signal_has_session(alice, &b_addr), 1);

    /* pkmsg until Bob answers; the one-time prekey is consumed */
    WG_CHECK_EQ_INT(send_one(alice, &b_addr, bob, &a_addr, "hello bob", &t), 0);
    WG_CHECK_EQ_INT(t, WG_SIGNAL_PKMSG);
    WG_CHECK_EQ_INT(wg_signal_storage_mem_count(wg_signal_storage(bob), WG_SIGNAL_K_PREKEY), 4);
    WG_CHECK_EQ_INT(send_one(alice, &b_addr, bob, &a_addr, "still pkmsg", &t), 0);
    WG_CHECK_EQ_INT(t, WG_SIGNAL_PKMSG);
    WG_CHECK_EQ_INT(send_one(bob, &a_addr, alice, &b_addr, "hi alice", &t), 0);
    WG_CHECK_EQ_INT(t, WG_SIGNAL_MSG);
    WG_CHECK_EQ_INT(send_one(alice, &b_addr, bob, &a_addr, "now msg", &t), 0);
    WG_CHECK_EQ_INT(t, WG_SIGNAL_MSG);
    for (int i = 0; i < 20; i++) {
        char text[32];
        snprintf(text, sizeof(text), "ping %d", i);
        WG_CHECK_EQ_INT(send_one(i % 3 ? alice : bob, i % 3 ? &b_addr : &a_addr,
                                 i % 3 ? bob : alice, i % 3 ? &a_addr : &b_addr, text, &t),
                        0);
        WG_CHECK_EQ_INT(t, WG_SIGNAL_MSG);
    }
    /* each side knows the other's identity */
    uint8_t ik[32];
    wg_signal_bundle_t own;
    WG_CHECK_EQ_INT(wg_signal_identity(alice, &b_addr, ik), 0);
    WG_CHECK_EQ_INT(wg_signal_own_bundle(bob, 0, &own), 0);
    WG_CHECK_MEM(ik, own.identity, 32);
    WG_CHECK_EQ_INT(own.has_prekey, 0);
    WG_CHECK_EQ_INT(wg_signal_identity(bob, &a_addr, ik), 0);
    wg_signal_free(alice);
    wg_signal_free(bob);
}

WG_TEST(signal_bundle_without_one_time_prekey)
{
    wg_signal_t *alice = party(NULL, NULL), *bob = party(NULL, NULL);
    wg_signal_addr_t a_addr, b_addr;
    wg_signal_bundle_t bundle;
    wg_signal_type_t t;
    WG_CHECK(alice && bob);
    addr("111@s.whatsapp.net", &a_addr);
    addr("222:1@lid", &b_addr);
    WG_CHECK_EQ_INT(wg_signal_own_bundle(bob, 0, &bundle), 0);
    WG_CHECK_EQ_INT(wg_signal_process_bundle(alice, &b_addr, &bundle), 0);
    WG_CHECK_EQ_INT(send_one(alice, &b_addr, bob, &a_addr, "no otk", &t), 0);
    WG_CHECK_EQ_INT(t, WG_SIGNAL_PKMSG);
    WG_CHECK_EQ_INT(send_one(bob, &a_addr, alice, &b_addr, "ok", &t), 0);
    wg_signal_free(alice);
    wg_signal_free(bob);
}

WG_TEST(signal_bad_bundle_and_unknown_prekey)
{
    wg_signal_t *alice = party(NULL, NULL), *bob = party(NULL, NULL);
    wg_signal_addr_t a_addr, b_addr;
    wg_signal_bundle_t bundle;
    uint8_t *ct = NULL, *pt = NULL;
    size_t ctn = 0, ptn = 0;
    wg_signal_type_t t;
    WG_CHECK(alice && bob);
    addr("111@s.whatsapp.net", &a_addr);
    addr("222@s.whatsapp.net", &b_addr);
    WG_CHECK_EQ_INT(wg_signal_prekeys_generate(bob, 7, 1, NULL), 0);
    WG_CHECK_EQ_INT(wg_signal_own_bundle(bob, 8, &bundle), WG_ENOTFOUND);
    WG_CHECK_EQ_INT(wg_signal_own_bundle(bob, 7, &bundle), 0);
    /* a forged signed-prekey signature is refused */
    bundle.signed_prekey_sig[5] ^= 1;
    WG_CHECK_EQ_INT(wg_signal_process_bundle(alice, &b_addr, &bundle), WG_ECRYPTO);
    WG_CHECK_EQ_INT(wg_signal_has_session(alice, &b_addr), 0);
    bundle.signed_prekey_sig[5] ^= 1;
    /* a one-time prekey Bob no longer has: the pkmsg cannot be decrypted */
    WG_CHECK_EQ_INT(wg_signal_process_bundle(alice, &b_addr, &bundle), 0);
    WG_CHECK_EQ_INT(
        wg_signal_storage(bob)->ops->remove(wg_signal_storage(bob), WG_SIGNAL_K_PREKEY, "7"), 0);
    WG_CHECK_EQ_INT(wg_signal_encrypt(alice, &b_addr, (const uint8_t *)"x", 1, &t, &ct, &ctn), 0);
    WG_CHECK_EQ_INT(t, WG_SIGNAL_PKMSG);
    WG_CHECK_EQ_INT(wg_signal_decrypt(bob, &a_addr, t, ct, ctn, &pt, &ptn), WG_ENOTFOUND);
    WG_CHECK(pt == NULL);
    /* and a msg without any session */
    WG_CHECK_EQ_INT(wg_signal_decrypt(bob, &a_addr, WG_SIGNAL_MSG, ct, ctn, &pt, &ptn) < 0, 1);
    free(ct);
    wg_signal_free(alice);
    wg_signal_free(bob);
}

WG_TEST(signal_out_of_order_duplicate_tampered)
{
    wg_signal_t *alice = party(NULL, NULL), *bob = party(NULL, NULL);
    wg_signal_addr_t a_addr, b_addr;
    wg_signal_bundle_t bundle;
    wg_signal_type_t t;
    uint8_t *ct[5] = {0}, *pt = NULL;
    size_t ctn[5] = {0}, ptn = 0;
    WG_CHECK(alice && bob);
    addr("111@s.whatsapp.net", &a_addr);
    addr("222@s.whatsapp.net", &b_addr);
    WG_CHECK_EQ_INT(wg_signal_prekeys_generate(bob, 1, 1, NULL), 0);
    WG_CHECK_EQ_INT(wg_signal_own_bundle(bob, 1, &bundle), 0);
    WG_CHECK_EQ_INT(wg_signal_process_bundle(alice, &b_addr, &bundle), 0);
    WG_CHECK_EQ_INT(send_one(alice, &b_addr, bob, &a_addr, "first", &t), 0);
    WG_CHECK_EQ_INT(send_one(bob, &a_addr, alice, &b_addr, "reply", &t), 0);
    for (int i = 0; i < 5; i++) {
        char text[16];
        snprintf(text, sizeof(text), "m%d", i);
        WG_CHECK_EQ_INT(wg_signal_encrypt(alice, &b_addr, (const uint8_t *)text, strlen(text), &t,
                                          &ct[i], &ctn[i]),
                        0);
        WG_CHECK_EQ_INT(t, WG_SIGNAL_MSG);
    }
    /* tampered: one flipped bit in the body, then in the MAC; the session is not harmed */
    ct[4][ctn[4] / 2] ^= 0x10;
    WG_CHECK_EQ_INT(wg_signal_decrypt(bob, &a_addr, WG_SIGNAL_MSG, ct[4], ctn[4], &pt, &ptn) < 0,
                    1);
    ct[4][ctn[4] / 2] ^= 0x10;
    ct[4][ctn[4] - 1] ^= 0x01;
    /* libsignal reports a bad MAC as an invalid message */
    WG_CHECK_EQ_INT(wg_signal_decrypt(bob, &a_addr, WG_SIGNAL_MSG, ct[4], ctn[4], &pt, &ptn),
                    WG_EPROTO);
    WG_CHECK(pt == NULL);
    ct[4][ctn[4] - 1] ^= 0x01;
    /* garbage and a wrong type */
    WG_CHECK_EQ_INT(
        wg_signal_decrypt(bob, &a_addr, WG_SIGNAL_MSG, (const uint8_t *)"\x33zz", 3, &pt, &ptn),
        WG_EPROTO);
    WG_CHECK_EQ_INT(wg_signal_decrypt(bob, &a_addr, WG_SIGNAL_PKMSG, ct[0], ctn[0], &pt, &ptn),
                    WG_EPROTO);
    WG_CHECK_EQ_INT(wg_signal_decrypt(bob, &a_addr, WG_SIGNAL_MSG, NULL, 0, &pt, &ptn), WG_EPROTO);
    /* out of order: 4, 1, 3, 0, 2 */
    static const int order[] = {4, 1, 3, 0, 2};
    for (int k = 0; k < 5; k++) {
        int i = order[k];
        char text[16];
        snprintf(text, sizeof(text), "m%d", i);
        WG_CHECK_EQ_INT(wg_signal_decrypt(bob, &a_addr, WG_SIGNAL_MSG, ct[i], ctn[i], &pt, &ptn),
                        0);
        WG_CHECK_EQ_INT(ptn, strlen(text));
        WG_CHECK_MEM(pt, text, ptn);
        free(pt);
        pt = NULL;
    }
    /* duplicate */
    WG_CHECK_EQ_INT(wg_signal_decrypt(bob, &a_addr, WG_SIGNAL_MSG, ct[2], ctn[2], &pt, &ptn),
                    WG_EEXIST);
    /* the session still works */
    WG_CHECK_EQ_INT(send_one(bob, &a_addr, alice, &b_addr, "after", &t), 0);
    for (int i = 0; i < 5; i++)
        free(ct[i]);
    wg_signal_free(alice);
    wg_signal_free(bob);
}

WG_TEST(signal_identity_change_and_delete_user)
{
    wg_signal_t *alice = party(NULL, NULL), *bob = party(NULL, NULL), *bob2 = party(NULL, NULL);
    wg_signal_addr_t a_addr, b_addr, b5;
    wg_signal_bundle_t bundle;
    wg_signal_type_t t;
    WG_CHECK(alice && bob && bob2);
    addr("111@s.whatsapp.net", &a_addr);
    addr("222@s.whatsapp.net", &b_addr);
    addr("222:5@s.whatsapp.net", &b5);
    WG_CHECK_EQ_INT(wg_signal_own_bundle(bob, 0, &bundle), 0);
    WG_CHECK_EQ_INT(wg_signal_process_bundle(alice, &b_addr, &bundle), 0);
    WG_CHECK_EQ_INT(wg_signal_process_bundle(alice, &b5, &bundle), 0);
    WG_CHECK_EQ_INT(send_one(alice, &b_addr, bob, &a_addr, "one", &t), 0);
    /* Bob re-registers (new identity): a new pkmsg from him is accepted (trust on first use,
     * changes accepted) and replaces the stored identity */
    WG_CHECK_EQ_INT(wg_signal_own_bundle(alice, 0, &bundle), 0);
    WG_CHECK_EQ_INT(wg_signal_process_bundle(bob2, &a_addr, &bundle), 0);
    WG_CHECK_EQ_INT(send_one(bob2, &a_addr, alice, &b_addr, "new me", &t), 0);
    WG_CHECK_EQ_INT(t, WG_SIGNAL_PKMSG);
    uint8_t ik[32];
    wg_signal_bundle_t b2;
    WG_CHECK_EQ_INT(wg_signal_identity(alice, &b_addr, ik), 0);
    WG_CHECK_EQ_INT(wg_signal_own_bundle(bob2, 0, &b2), 0);
    WG_CHECK_MEM(ik, b2.identity, 32);
    /* <identity/> notification: all of 222's devices forgotten, 111's kept */
    WG_CHECK_EQ_INT(wg_signal_has_session(alice, &b5), 1);
    WG_CHECK_EQ_INT(wg_signal_delete_user(alice, "222"), 0);
    WG_CHECK_EQ_INT(wg_signal_has_session(alice, &b_addr), 0);
    WG_CHECK_EQ_INT(wg_signal_has_session(alice, &b5), 0);
    WG_CHECK_EQ_INT(wg_signal_identity(alice, &b_addr, ik), WG_ENOTFOUND);
    WG_CHECK_EQ_INT(wg_signal_delete_user(alice, "2.2"), WG_EINVAL);
    wg_signal_free(alice);
    wg_signal_free(bob);
    wg_signal_free(bob2);
}

WG_TEST(signal_group_sender_keys_both_ways)
{
    wg_signal_t *alice = party(NULL, NULL), *bob = party(NULL, NULL), *carol = party(NULL, NULL);
    wg_signal_addr_t a_addr, b_addr;
    const char *g = "120363000000000001@g.us";
    uint8_t *skdm = NULL, *skdm2 = NULL, *ct = NULL, *pt = NULL, *cts[4] = {0};
    size_t n = 0, n2 = 0, ctn = 0, ptn = 0, ctsn[4] = {0};
    WG_CHECK(alice && bob && carol);
    addr("111:2@s.whatsapp.net", &a_addr);
    addr("222@lid", &b_addr);

    /* no sender key yet */
    WG_CHECK_EQ_INT(wg_signal_group_encrypt(alice, g, &a_addr, (const uint8_t *)"x", 1, &ct, &ctn),
                    WG_ENOTFOUND);
    WG_CHECK_EQ_INT(wg_signal_group_skdm(alice, g, &a_addr, &skdm, &n), 0);
    WG_CHECK(n > 0 && skdm[0] == 0x33);
    /* asking again gives the same key (same chain, same signing key) */
    WG_CHECK_EQ_INT(wg_signal_group_skdm(alice, g, &a_addr, &skdm2, &n2), 0);
    WG_CHECK_EQ_INT(n2, n);
    WG_CHECK_MEM(skdm2, skdm, n);
    free(skdm2);
    WG_CHECK_EQ_INT(
        wg_signal_group_encrypt(alice, g, &a_addr, (const uint8_t *)"before", 6, &ct, &ctn), 0);
    /* Bob has no key for Alice: clean "not found" (a retry receipt), then he gets the SKDM */
    WG_CHECK_EQ_INT(wg_signal_group_decrypt(bob, g, &a_addr, ct, ctn, &pt, &ptn), WG_ENOTFOUND);
    WG_CHECK_EQ_INT(wg_signal_group_process(bob, g, &a_addr, skdm, n), 0);
    WG_CHECK_EQ_INT(wg_signal_group_process(carol, g, &a_addr, skdm, n), 0);
    WG_CHECK_EQ_INT(wg_signal_group_decrypt(bob, g, &a_addr, ct, ctn, &pt, &ptn), 0);
    WG_CHECK_EQ_INT(ptn, 6);
    WG_CHECK_MEM(pt, "before", 6);
    free(pt);
    free(ct);
    free(skdm);
    /* several messages, out of order at Carol, duplicate refused */
    for (int i = 0; i < 4; i++) {
        char text[16];
        snprintf(text, sizeof(text), "g%d", i);
        WG_CHECK_EQ_INT(
            wg_signal_group_encrypt(alice, g, &a_addr, (const uint8_t *)text, 2, &cts[i], &ctsn[i]),
            0);
    }
    static const int order[] = {3, 0, 2, 1};
    for (int k = 0; k < 4; k++) {
        char text[16];
        snprintf(text, sizeof(text), "g%d", order[k]);
        WG_CHECK_EQ_INT(
            wg_signal_group_decrypt(carol, g, &a_addr, cts[order[k]], ctsn[order[k]], &pt, &ptn),
            0);
        WG_CHECK_MEM(pt, text, 2);
        free(pt);
    }
    WG_CHECK_EQ_INT(wg_signal_group_decrypt(carol, g, &a_addr, cts[1], ctsn[1], &pt, &ptn),
                    WG_EEXIST);
    /* tampered skmsg (signature no longer matches) */
    cts[0][3] ^= 0x40;
    WG_CHECK_EQ_INT(wg_signal_group_decrypt(bob, g, &a_addr, cts[0], ctsn[0], &pt, &ptn) < 0, 1);
    WG_CHECK_EQ_INT(
        wg_signal_group_decrypt(bob, g, &a_addr, (const uint8_t *)"\x33\x01", 2, &pt, &ptn),
        WG_EPROTO);
    for (int i = 0; i < 4; i++)
        free(cts[i]);
    /* the other way: Bob sends to the group */
    WG_CHECK_EQ_INT(wg_signal_group_skdm(bob, g, &b_addr, &skdm, &n), 0);
    WG_CHECK_EQ_INT(wg_signal_group_process(alice, g, &b_addr, skdm, n), 0);
    WG_CHECK_EQ_INT(
        wg_signal_group_encrypt(bob, g, &b_addr, (const uint8_t *)"from bob", 8, &ct, &ctn), 0);
    WG_CHECK_EQ_INT(wg_signal_group_decrypt(alice, g, &b_addr, ct, ctn, &pt, &ptn), 0);
    WG_CHECK_MEM(pt, "from bob", 8);
    free(pt);
    /* the key is per (group, sender): another group or sender does not decrypt it */
    WG_CHECK_EQ_INT(wg_signal_group_decrypt(alice, "999@g.us", &b_addr, ct, ctn, &pt, &ptn),
                    WG_ENOTFOUND);
    WG_CHECK_EQ_INT(wg_signal_group_decrypt(alice, g, &a_addr, ct, ctn, &pt, &ptn) < 0, 1);
    WG_CHECK_EQ_INT(wg_signal_group_process(alice, g, &b_addr, (const uint8_t *)"\x33", 1),
                    WG_EPROTO);
    free(ct);
    free(skdm);
    wg_signal_free(alice);
    wg_signal_free(bob);
    wg_signal_free(carol);
}

static int count_cb(const char *key, void *arg)
{
    (void)key;
    (*(int *)arg)++;
    return 0;
}

WG_TEST(signal_cache_bounds_and_write_through)
{
    wg_signal_storage_t *mem = NULL, *c = NULL;
    uint8_t *v = NULL;
    size_t n = 0;
    uint64_t hits, misses;
    uint8_t big[100] = {0};
    WG_CHECK_EQ_INT(wg_signal_storage_mem_new(&mem), 0);
    WG_CHECK_EQ_INT(wg_signal_storage_cache_new(mem, 2, 64, &c), 0);
    WG_CHECK_EQ_INT(c->ops->put(c, WG_SIGNAL_K_SESSION, "a.0", (const uint8_t *)"AA", 2), 0);
    WG_CHECK_EQ_INT(c->ops->put(c, WG_SIGNAL_K_SESSION, "b.0", (const uint8_t *)"BB", 2), 0);
    WG_CHECK_EQ_INT(c->ops->get(c, WG_SIGNAL_K_SESSION, "a.0", &v, &n), 0); /* a newest */
    free(v);
    WG_CHECK_EQ_INT(c->ops->put(c, WG_SIGNAL_K_SESSION, "c.0", (const uint8_t *)"CC", 2), 0);
    wg_signal_storage_cache_stats(c, &hits, &misses);
    WG_CHECK_EQ_INT(hits, 1);
    /* b was evicted (2 entries max): a miss served by the inner storage */
    WG_CHECK_EQ_INT(c->ops->get(c, WG_SIGNAL_K_SESSION, "b.0", &v, &n), 0);
    WG_CHECK_EQ_INT(n, 2);
    WG_CHECK_MEM(v, "BB", 2);
    free(v);
    wg_signal_storage_cache_stats(c, &hits, &misses);
    WG_CHECK_EQ_INT(misses, 1);
    /* a value above the byte bound is stored but not cached */
    WG_CHECK_EQ_INT(c->ops->put(c, WG_SIGNAL_K_SENDER_KEY,
                                "g\x1f"
                                "a.0",
                                big, sizeof(big)),
                    0);
    WG_CHECK_EQ_INT(c->ops->get(c, WG_SIGNAL_K_SENDER_KEY,
                                "g\x1f"
                                "a.0",
                                &v, &n),
                    0);
    WG_CHECK_EQ_INT(n, sizeof(big));
    free(v);
    wg_signal_storage_cache_stats(c, &hits, &misses);
    WG_CHECK_EQ_INT(misses, 2);
    /* remove goes through, the cache forgets it */
    WG_CHECK_EQ_INT(c->ops->remove(c, WG_SIGNAL_K_SESSION, "c.0"), 0);
    WG_CHECK_EQ_INT(c->ops->get(c, WG_SIGNAL_K_SESSION, "c.0", &v, &n), WG_ENOTFOUND);
    WG_CHECK_EQ_INT(mem->ops->get(mem, WG_SIGNAL_K_SESSION, "c.0", &v, &n), WG_ENOTFOUND);
    /* prekeys bypass the cache */
    WG_CHECK_EQ_INT(c->ops->put(c, WG_SIGNAL_K_PREKEY, "1", big, 64), 0);
    WG_CHECK_EQ_INT(c->ops->get(c, WG_SIGNAL_K_PREKEY, "1", &v, &n), 0);
    free(v);
    wg_signal_storage_cache_stats(c, &hits, &misses);
    WG_CHECK_EQ_INT(hits, 1);
    WG_CHECK_EQ_INT(misses, 3); /* b.0, the big sender key, c.0 after its removal */
    int cnt = 0;
    WG_CHECK_EQ_INT(c->ops->keys(c, WG_SIGNAL_K_SESSION, "", count_cb, &cnt), 0);
    WG_CHECK_EQ_INT(cnt, 2);
    wg_signal_storage_free(c);

    /* two parties talking through caches of 1 entry still work (evictions all the time) */
    wg_signal_storage_t *m1 = NULL, *m2 = NULL, *c1 = NULL, *c2 = NULL;
    WG_CHECK_EQ_INT(wg_signal_storage_mem_new(&m1), 0);
    WG_CHECK_EQ_INT(wg_signal_storage_mem_new(&m2), 0);
    WG_CHECK_EQ_INT(wg_signal_storage_cache_new(m1, 1, 4096, &c1), 0);
    WG_CHECK_EQ_INT(wg_signal_storage_cache_new(m2, 1, 4096, &c2), 0);
    wg_signal_t *alice = party(c1, NULL), *bob = party(c2, NULL);
    wg_signal_addr_t a_addr, b_addr;
    wg_signal_bundle_t bundle;
    wg_signal_type_t t;
    WG_CHECK(alice && bob);
    addr("111@s.whatsapp.net", &a_addr);
    addr("222@s.whatsapp.net", &b_addr);
    WG_CHECK_EQ_INT(wg_signal_own_bundle(bob, 0, &bundle), 0);
    WG_CHECK_EQ_INT(wg_signal_process_bundle(alice, &b_addr, &bundle), 0);
    for (int i = 0; i < 6; i++) {
        WG_CHECK_EQ_INT(send_one(alice, &b_addr, bob, &a_addr, "x", &t), 0);
        WG_CHECK_EQ_INT(send_one(bob, &a_addr, alice, &b_addr, "y", &t), 0);
    }
    wg_signal_storage_cache_stats(c1, &hits, &misses);
    WG_CHECK(hits > 0);
    wg_signal_free(alice);
    wg_signal_free(bob);
}

/* ---- on SQLite ---- */

static wg_store_t *open_db(char *path, size_t cap, const char *inst)
{
    wg_store_t *st = NULL;
    snprintf(path, cap, "/tmp/wg_test_signal_%d_%ld.db", (int)getpid(), random());
    if (wg_store_open(path, &st) != 0)
        return NULL;
    wg_account_t a = {.id = "acc1", .name = "acc", .plan = "free"};
    a.created_at = a.updated_at = wg_store_now_ms();
    if (wg_store_account_insert(st, &a, NULL) != 0)
        return NULL;
    wg_instance_t in = {0};
    in.id = (char *)inst;
    in.owner_id = "acc1";
    in.name = (char *)inst;
    in.status = "STARTING";
    in.created_at = in.updated_at = wg_store_now_ms();
    wg_store_event_t ev = {"connection.updated", "{}"};
    const char *conflict = NULL;
    if (wg_store_instance_insert(st, &in, "tok-hash", 0, &ev, &conflict) != 0)
        return NULL;
    return st;
}

static void rm_db(const char *path)
{
    char p[300];
    unlink(path);
    snprintf(p, sizeof(p), "%s-wal", path);
    unlink(p);
    snprintf(p, sizeof(p), "%s-shm", path);
    unlink(p);
}

WG_TEST(signal_db_storage_sealed_and_reloaded)
{
    char path[256];
    uint8_t mk[32], mk2[32];
    const char *inst = "inst-1";
    wg_store_t *st = open_db(path, sizeof(path), inst);
    wg_signal_storage_t *db = NULL, *cached = NULL;
    wg_signal_keys_t akeys;
    wg_signal_addr_t a_addr, b_addr;
    wg_signal_bundle_t bundle;
    wg_signal_type_t t;
    WG_CHECK(st);
    memset(mk, 0x42, sizeof(mk));
    memset(mk2, 0x43, sizeof(mk2));
    addr("111@s.whatsapp.net", &a_addr);
    addr("222:4@lid", &b_addr);

    /* Alice on SQLite (behind a cache), Bob in memory */
    WG_CHECK_EQ_INT(wg_signal_storage_db_new(st, inst, mk, &db), 0);
    WG_CHECK_EQ_INT(wg_signal_storage_cache_new(db, 16, 1 << 20, &cached), 0);
    wg_signal_t *alice = party(cached, &akeys), *bob = party(NULL, NULL);
    WG_CHECK(alice && bob);
    /* Alice's prekeys are where wa/conn.c puts them (wa_prekeys) */
    WG_CHECK_EQ_INT(wg_signal_prekeys_generate(alice, 1, 3, NULL), 0);
    uint32_t next = 0;
    WG_CHECK_EQ_INT(wg_store_prekeys_next_id(st, inst, &next), 0);
    WG_CHECK_EQ_INT(next, 4);
    /* Bob starts: pkmsg to Alice consumes her prekey 2 in the database */
    WG_CHECK_EQ_INT(wg_signal_own_bundle(alice, 2, &bundle), 0);
    WG_CHECK_EQ_INT(wg_signal_process_bundle(bob, &a_addr, &bundle), 0);
    WG_CHECK_EQ_INT(send_one(bob, &a_addr, alice, &b_addr, "to sqlite", &t), 0);
    WG_CHECK_EQ_INT(t, WG_SIGNAL_PKMSG);
    uint8_t *blob = NULL;
    size_t n = 0;
    WG_CHECK_EQ_INT(wg_store_prekey_get(st, inst, 2, &blob, &n), WG_ENOTFOUND);
    WG_CHECK_EQ_INT(wg_store_prekey_get(st, inst, 3, &blob, &n), 0);
    free(blob);
    WG_CHECK_EQ_INT(send_one(alice, &b_addr, bob, &a_addr, "reply", &t), 0);
    WG_CHECK_EQ_INT(t, WG_SIGNAL_MSG);
    /* a group key too */
    const char *g = "555@g.us";
    uint8_t *skdm = NULL, *ct = NULL, *pt = NULL;
    size_t sn = 0, ctn = 0, ptn = 0;
    WG_CHECK_EQ_INT(wg_signal_group_skdm(bob, g, &b_addr, &skdm, &sn), 0);
    WG_CHECK_EQ_INT(wg_signal_group_process(alice, g, &b_addr, skdm, sn), 0);
    free(skdm);

    /* the session row is sealed: no plaintext session bytes in the table, and it opens only
     * with the right label */
    WG_CHECK_EQ_INT(wg_store_signal_get(st, inst, WG_SIGNAL_K_SESSION, "222_1.4", &blob, &n), 0);
    WG_CHECK(n > WG_CREDS_SEAL_OVERHEAD && memcmp(blob, WG_CREDS_SEAL_MAGIC, 4) == 0);
    uint8_t *open = NULL;
    size_t on = 0;
    WG_CHECK_EQ_INT(wg_creds_open(mk, "inst-1/signal/1/222_1.4", blob, n, &open, &on), 0);
    free(open);
    WG_CHECK_EQ_INT(wg_creds_open(mk, "inst-1/signal/1/222_1.5", blob, n, &open, &on), WG_ECRYPTO);
    free(blob);
    wg_signal_free(alice); /* frees the cache and the db storage, not the store */

    /* reopen the database: Alice's session and sender key are still there */
    wg_store_close(st);
    WG_CHECK_EQ_INT(wg_store_open(path, &st), 0);
    WG_CHECK_EQ_INT(wg_signal_storage_db_new(st, inst, mk, &db), 0);
    WG_CHECK_EQ_INT(wg_signal_new(&akeys, db, &alice), 0);
    WG_CHECK_EQ_INT(wg_signal_has_session(alice, &b_addr), 1);
    WG_CHECK_EQ_INT(send_one(bob, &a_addr, alice, &b_addr, "after reload", &t), 0);
    WG_CHECK_EQ_INT(t, WG_SIGNAL_MSG);
    WG_CHECK_EQ_INT(send_one(alice, &b_addr, bob, &a_addr, "me too", &t), 0);
    WG_CHECK_EQ_INT(wg_signal_group_encrypt(bob, g, &b_addr, (const uint8_t *)"grp", 3, &ct, &ctn),
                    0);
    WG_CHECK_EQ_INT(wg_signal_group_decrypt(alice, g, &b_addr, ct, ctn, &pt, &ptn), 0);
    WG_CHECK_MEM(pt, "grp", 3);
    free(pt);
    free(ct);
    wg_signal_free(alice);

    /* the wrong master key cannot read anything: a storage error, not a crash or a session */
    WG_CHECK_EQ_INT(wg_signal_storage_db_new(st, inst, mk2, &db), 0);
    WG_CHECK_EQ_INT(wg_signal_new(&akeys, db, &alice), 0);
    WG_CHECK_EQ_INT(wg_signal_has_session(alice, &b_addr), WG_ESTORE);
    WG_CHECK_EQ_INT(wg_signal_encrypt(alice, &b_addr, (const uint8_t *)"x", 1, &t, &ct, &ctn),
                    WG_ESTORE);
    wg_signal_free(alice);

    /* logout wipes the Signal state with the credentials */
    WG_CHECK_EQ_INT(wg_store_creds_delete(st, inst), 0);
    WG_CHECK_EQ_INT(wg_store_signal_get(st, inst, WG_SIGNAL_K_SESSION, "222_1.4", &blob, &n),
                    WG_ENOTFOUND);
    wg_signal_free(bob);
    wg_store_close(st);
    rm_db(path);
}

WG_TEST(signal_migrate_pn_to_lid)
{
    wg_signal_t *alice = party(NULL, NULL), *bob = party(NULL, NULL);
    wg_signal_addr_t a_addr, b_pn, b_lid;
    wg_signal_bundle_t bundle;
    wg_signal_type_t t;
    uint8_t ik[32];
    WG_CHECK(alice && bob);
    addr("111@s.whatsapp.net", &a_addr);
    addr("222:2@s.whatsapp.net", &b_pn);
    addr("888:2@lid", &b_lid);
    WG_CHECK_EQ_INT(wg_signal_own_bundle(bob, 0, &bundle), 0);
    WG_CHECK_EQ_INT(wg_signal_process_bundle(alice, &b_pn, &bundle), 0);
    WG_CHECK_EQ_INT(send_one(alice, &b_pn, bob, &a_addr, "as pn", &t), 0);
    WG_CHECK_EQ_INT(wg_signal_migrate(alice, &b_pn, &b_lid), 1);
    WG_CHECK_EQ_INT(wg_signal_has_session(alice, &b_pn), 0);
    WG_CHECK_EQ_INT(wg_signal_has_session(alice, &b_lid), 1);
    WG_CHECK_EQ_INT(wg_signal_identity(alice, &b_lid, ik), 0);
    WG_CHECK_MEM(ik, bundle.identity, 32);
    /* the same session, now under the LID address */
    WG_CHECK_EQ_INT(send_one(bob, &a_addr, alice, &b_lid, "to lid", &t), 0);
    WG_CHECK_EQ_INT(t, WG_SIGNAL_MSG);
    WG_CHECK_EQ_INT(send_one(alice, &b_lid, bob, &a_addr, "from lid", &t), 0);
    /* nothing left to move; an existing target is never overwritten */
    WG_CHECK_EQ_INT(wg_signal_migrate(alice, &b_pn, &b_lid), 0);
    WG_CHECK_EQ_INT(wg_signal_process_bundle(alice, &b_pn, &bundle), 0);
    WG_CHECK_EQ_INT(wg_signal_migrate(alice, &b_pn, &b_lid), 0);
    WG_CHECK_EQ_INT(wg_signal_has_session(alice, &b_pn), 1);
    wg_signal_free(alice);
    wg_signal_free(bob);
}

/* wa/conn.c stores uploaded prekeys itself (save_prekeys): label "<instance>/prekey/<id>",
 * value priv || pub, through wg_store_prekeys_put. A pkmsg must find and consume those. */
WG_TEST(signal_db_reads_prekeys_stored_by_conn)
{
    char path[256];
    uint8_t mk[32];
    const char *inst = "inst-conn";
    wg_store_t *st = open_db(path, sizeof(path), inst);
    wg_signal_storage_t *db = NULL;
    wg_signal_keys_t keys;
    wg_signal_addr_t a_addr, b_addr;
    wg_signal_bundle_t bundle;
    wg_signal_type_t t;
    wg_keys_pair_t kp;
    uint8_t pair[64], *blob = NULL;
    size_t n = 0;
    WG_CHECK(st);
    memset(mk, 0x11, sizeof(mk));
    addr("111@s.whatsapp.net", &a_addr);
    addr("222@s.whatsapp.net", &b_addr);
    WG_CHECK_EQ_INT(wg_keys_generate(&kp), 0);
    memcpy(pair, kp.priv, 32);
    memcpy(pair + 32, kp.pub, 32);
    WG_CHECK_EQ_INT(wg_creds_seal(mk, "inst-conn/prekey/77", pair, 64, &blob, &n), 0);
    wg_store_prekey_t pk = {.id = 77, .blob = blob, .len = n};
    WG_CHECK_EQ_INT(wg_store_prekeys_put(st, inst, &pk, 1), 0);
    free(blob);
    WG_CHECK_EQ_INT(wg_signal_storage_db_new(st, inst, mk, &db), 0);
    wg_signal_t *bob = party(db, &keys), *alice = party(NULL, NULL);
    WG_CHECK(bob && alice);
    WG_CHECK_EQ_INT(wg_signal_own_bundle(bob, 77, &bundle), 0);
    WG_CHECK_MEM(bundle.prekey, kp.pub, 32);
    WG_CHECK_EQ_INT(wg_signal_process_bundle(alice, &b_addr, &bundle), 0);
    WG_CHECK_EQ_INT(send_one(alice, &b_addr, bob, &a_addr, "uses key 77", &t), 0);
    WG_CHECK_EQ_INT(t, WG_SIGNAL_PKMSG);
    WG_CHECK_EQ_INT(wg_store_prekey_get(st, inst, 77, &blob, &n), WG_ENOTFOUND);
    wg_signal_free(bob);
    wg_signal_free(alice);
    wg_store_close(st);
    rm_db(path);
}
