/* fuzz_stanza.c - libFuzzer target for the messaging readers of outside input: the input is a
 * binary-node frame (wg_binary_decode); the tree goes through every parser of wa/stanza.c
 * (message, receipt, usync result, prekey-bundle reply, encrypt notification, presence,
 * chatstate, call, ack); the
 * bytes of every <enc> go through wa/msg.c (unpad, Message decode, JSON) and wa/signal.c
 * (pkmsg/msg/skmsg deserialization and decryption attempts against an in-memory party with no
 * sessions, and sender-key distribution parsing). Seeds: tests/fuzz/corpus/stanza/ (frames
 * made with the builders of wa/stanza.c). Any result is fine; crashes, leaks and UB are not. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"
#include "wa/binary.h"
#include "wa/creds.h"
#include "wa/msg.h"
#include "wa/node.h"
#include "wa/signal.h"
#include "wa/stanza.h"

/* One party for the whole run (the harness may keep state; the code under test does not). */
static wg_signal_t *party(void)
{
    static wg_signal_t *s;
    if (!s) {
        wg_creds_t c;
        wg_signal_keys_t k;
        wg_signal_storage_t *st = NULL;
        if (wg_creds_generate(&c) != 0 || wg_signal_storage_mem_new(&st) != 0)
            abort();
        k.registration_id = c.registration_id;
        k.identity = c.identity;
        k.signed_prekey_id = c.signed_prekey_id;
        k.signed_prekey = c.signed_prekey;
        memcpy(k.signed_prekey_sig, c.signed_prekey_sig, sizeof(k.signed_prekey_sig));
        if (wg_signal_new(&k, st, &s) != 0 || wg_signal_prekeys_generate(s, 1, 4, NULL) != 0)
            abort();
    }
    return s;
}

static void plaintext(const uint8_t *p, size_t n)
{
    size_t len = 0;
    wg_msg_t *m = NULL;
    if (wg_msg_unpad(p, n, &len) != 0)
        len = n; /* also try the bytes as they are */
    if (wg_msg_decode(p, len, &m) == 0) {
        json_t *j = wg_msg_to_json(m);
        char *s = j ? json_dumps(j, 0) : NULL;
        free(s);
        json_decref(j);
        if (m->skdm.p)
            wg_signal_group_process(party(), "1-2@g.us", &(wg_signal_addr_t){"9", 1}, m->skdm.p,
                                    m->skdm.len);
        wg_msg_free(m);
    }
}

static void encs(const wg_stanza_msg_in_t *m)
{
    wg_signal_addr_t a;
    if (wg_signal_addr_from_jid(m->author, &a) != 0)
        return;
    for (size_t i = 0; i < m->n_enc; i++) {
        const wg_stanza_enc_t *e = &m->enc[i];
        uint8_t *pt = NULL;
        size_t ptn = 0;
        int rv;
        plaintext(e->ct, e->len);
        if (e->type == WG_SIGNAL_SKMSG)
            rv = wg_signal_group_decrypt(party(), m->chat, &a, e->ct, e->len, &pt, &ptn);
        else if (e->type == WG_SIGNAL_PKMSG || e->type == WG_SIGNAL_MSG)
            rv =
                wg_signal_decrypt(party(), &a, (wg_signal_type_t)e->type, e->ct, e->len, &pt, &ptn);
        else
            continue;
        if (rv == 0)
            plaintext(pt, ptn);
        free(pt);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const own[] = {"111", "999", NULL};
    wg_binary_limits_t lim;
    wg_node_t *n = NULL, *ack = NULL;
    wg_binary_limits_default(&lim);
    lim.max_bytes = 1 << 20;
    lim.max_nodes = 20000;
    if (wg_binary_decode(data, size, &lim, &n) != 0)
        return 0;

    wg_stanza_msg_in_t m;
    if (wg_stanza_message_parse(n, own, &m) == 0)
        encs(&m);
    wg_stanza_receipt_in_t *r = malloc(sizeof(*r));
    if (r && wg_stanza_receipt_parse(n, r) == 0 && r->has_keys)
        wg_signal_process_bundle(party(), &(wg_signal_addr_t){"8", 2}, &r->keys);
    free(r);
    wg_stanza_usync_user_t *u = NULL;
    size_t cnt = 0;
    if (wg_stanza_usync_parse(n, &u, &cnt) == 0) {
        char jid[WG_STANZA_JID_MAX];
        for (size_t i = 0; i < cnt; i++)
            for (size_t k = 0; k < u[i].n_devices; k++)
                wg_stanza_device_jid(u[i].jid, &u[i].devices[k], jid, sizeof(jid));
        free(u);
    }
    wg_stanza_bundle_t *b = NULL;
    if (wg_stanza_prekey_fetch_parse(n, &b, &cnt) == 0) {
        for (size_t i = 0; i < cnt; i++)
            if (!b[i].error)
                wg_signal_process_bundle(party(), &(wg_signal_addr_t){"7", 1}, &b[i].bundle);
        free(b);
    }
    wg_stanza_encrypt_note_t en;
    wg_stanza_encrypt_note_parse(n, &en);
    wg_stanza_presence_in_t p;
    wg_stanza_presence_parse(n, &p);
    wg_stanza_chatstate_in_t cs;
    wg_stanza_chatstate_parse(n, &cs);
    wg_stanza_call_t c;
    if (wg_stanza_call_parse(n, &c) == 0) {
        wg_node_t *rej = NULL;
        wg_stanza_call_reject_build("R", "111@s.whatsapp.net", c.from, c.call_id, c.call_creator,
                                    &rej);
        wg_node_free(rej);
    }
    if (wg_stanza_ack_build(n, NULL, &ack) == 0)
        wg_node_free(ack);
    wg_node_free(n);
    return 0;
}
