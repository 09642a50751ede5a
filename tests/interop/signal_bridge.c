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
 * and the whole receive/send paths through wa/stanza.c and wa/msg.c (node bytes = wg_binary
 * frames, flag byte included):
 *   SENDTEXT <to> <own> <text> <quoted id|->  -> OK <outgoing node> <node as delivered to <to>>
 *   SENDGROUP <group> <own> <to> <text>      -> OK <outgoing node> <node as delivered to <to>>
 *   RECV <node>                              -> OK <chat> <author> <kind> <text|-> <quoted id|->
 * (SENDGROUP sends the SKDM pairwise in the same stanza, §4.2; RECV decrypts every enc in
 * order, stores SKDMs, unpads and decodes; our own users are 5511000000001 / 100000000001.)
 * Failures answer "ERR <wg error number> <message>". Prekeys 1..8 exist at start. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/codec.h"
#include "util/err.h"
#include "util/log.h"
#include "util/buf.h"
#include "wa/binary.h"
#include "wa/creds.h"
#include "wa/msg.h"
#include "wa/signal.h"
#include "wa/stanza.h"

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

static void hex_node(const wg_node_t *n)
{
    wg_buf_t b;
    wg_buf_init(&b, 0);
    if (wg_binary_encode(n, &b) == 0)
        hex(b.data, b.len);
    else
        printf(" -");
    wg_buf_dispose(&b);
}

/* What the server delivers to device `to` for an outgoing <message>: from = our device,
 * [participant] for groups, the enc addressed to `to` and the skmsg. */
static wg_node_t *delivered(const wg_node_t *out, const char *own, const char *to, int group)
{
    wg_node_t *n = wg_node_new("message"), *parts = wg_node_child_by_tag(out, "participants");
    wg_node_set_attr(n, "id", wg_node_attr(out, "id"));
    wg_node_set_attr_jid(n, "from", group ? wg_node_attr(out, "to") : own);
    if (group)
        wg_node_set_attr_jid(n, "participant", own);
    wg_node_set_attr(n, "t", "1700000000");
    wg_node_set_attr(n, "type", wg_node_attr(out, "type"));
    for (size_t i = 0; parts && i < wg_node_child_count(parts); i++) {
        wg_node_t *t = wg_node_child(parts, i);
        const char *j = wg_node_attr(t, "jid");
        if (j && strcmp(j, to) == 0)
            wg_node_add_child(n, wg_node_clone(wg_node_child_by_tag(t, "enc")));
    }
    for (size_t i = 0; i < wg_node_child_count(out); i++)
        if (wg_node_tag_is(wg_node_child(out, i), "enc"))
            wg_node_add_child(n, wg_node_clone(wg_node_child(out, i)));
    return n;
}

/* pad + encrypt for `to`: one wg_stanza_to_t (ct malloc'd into *ct). */
static int seal_for(const char *to, const uint8_t *msg, size_t len, wg_stanza_to_t *t, uint8_t **ct)
{
    wg_signal_addr_t a;
    uint8_t *pad = NULL;
    size_t pn = 0;
    int rv;
    if ((rv = wg_signal_addr_from_jid(to, &a)) || (rv = wg_msg_pad(msg, len, 0, &pad, &pn)))
        return rv;
    rv = wg_signal_encrypt(me, &a, pad, pn, &t->type, ct, &t->len);
    free(pad);
    t->jid = to;
    t->ct = *ct;
    return rv;
}

static int send_text(char **a, int group)
{
    uint8_t *text = NULL, *m = NULL, *ct = NULL, *skdm = NULL, *skm = NULL, *gct = NULL,
            *gpad = NULL;
    size_t tl = 0, mn = 0, sn = 0, smn = 0, gcn = 0, gpn = 0;
    wg_node_t *out = NULL, *dl = NULL;
    wg_stanza_to_t to;
    wg_signal_addr_t self;
    const char *chat = a[1], *own = a[2], *dev = group ? a[3] : a[1];
    int rv;
    if ((rv = unhex(a[group ? 4 : 3], &text, &tl)) != 0)
        return rv;
    char *s = calloc(1, tl + 1);
    if (!s) {
        free(text);
        return WG_ENOMEM;
    }
    memcpy(s, text, tl);
    wg_msg_quote_t q = {.id = group ? NULL : a[4], .participant = chat};
    int quoted = !group && strcmp(a[4], "-") != 0;
    if ((rv = wg_msg_build_text(s, quoted ? &q : NULL, NULL, 0, &m, &mn)) != 0)
        goto out;
    if (group) {
        /* §4.2: SKDM pairwise (no DSM), content once as skmsg */
        if ((rv = wg_signal_addr_from_jid(own, &self)) ||
            (rv = wg_signal_group_skdm(me, chat, &self, &skdm, &sn)) ||
            (rv = wg_msg_build_skdm(chat, skdm, sn, &skm, &smn)) ||
            (rv = seal_for(dev, skm, smn, &to, &ct)) || (rv = wg_msg_pad(m, mn, 0, &gpad, &gpn)) ||
            (rv = wg_signal_group_encrypt(me, chat, &self, gpad, gpn, &gct, &gcn)))
            goto out;
    } else if ((rv = seal_for(dev, m, mn, &to, &ct)) != 0)
        goto out;
    wg_stanza_msg_out_t mo = {.id = "3EB0BRIDGE0000000000AB",
                              .to = chat,
                              .type = "text",
                              .to_devices = &to,
                              .n_to = 1,
                              .skmsg = gct,
                              .skmsg_len = gcn,
                              .device_identity = (const uint8_t *)"adv-identity",
                              .device_identity_len = 12};
    if ((rv = wg_stanza_message_build(&mo, &out)) != 0)
        goto out;
    dl = delivered(out, own, dev, group);
    printf("OK");
    hex_node(out);
    hex_node(dl);
    printf("\n");
out:
    wg_node_free(out);
    wg_node_free(dl);
    free(s);
    free(text);
    free(m);
    free(ct);
    free(skdm);
    free(skm);
    free(gct);
    free(gpad);
    return rv;
}

static int recv_node(const char *h)
{
    static const char *const own[] = {"5511000000001", "100000000001", NULL};
    uint8_t *b = NULL;
    size_t bl = 0;
    wg_node_t *n = NULL;
    wg_stanza_msg_in_t m;
    wg_signal_addr_t from;
    char *text = NULL, *quoted = NULL;
    const char *kind = "empty";
    int rv;
    if ((rv = unhex(h, &b, &bl)) || (rv = wg_binary_decode(b, bl, NULL, &n)) ||
        (rv = wg_stanza_message_parse(n, own, &m)) ||
        (rv = wg_signal_addr_from_jid(m.author, &from)))
        goto out;
    for (size_t i = 0; i < m.n_enc && rv == 0; i++) {
        uint8_t *pt = NULL;
        size_t ptn = 0, len = 0;
        wg_msg_t *msg = NULL;
        if (m.enc[i].type == WG_SIGNAL_SKMSG)
            rv = wg_signal_group_decrypt(me, m.chat, &from, m.enc[i].ct, m.enc[i].len, &pt, &ptn);
        else if (m.enc[i].type >= 0)
            rv = wg_signal_decrypt(me, &from, (wg_signal_type_t)m.enc[i].type, m.enc[i].ct,
                                   m.enc[i].len, &pt, &ptn);
        else
            continue;
        if (rv == 0 && (rv = wg_msg_unpad(pt, ptn, &len)) == 0 &&
            (rv = wg_msg_decode(pt, len, &msg)) == 0) {
            /* Baileys keys an SKDM by its groupId (§2.6.2); we check it is this chat */
            if (msg->skdm.p && m.is_group && msg->skdm_group &&
                strcmp(msg->skdm_group, m.chat) == 0)
                rv = wg_signal_group_process(me, m.chat, &from, msg->skdm.p, msg->skdm.len);
            if (msg->kind != WG_MSG_EMPTY) {
                kind = wg_msg_kind_name(msg->kind);
                free(text);
                free(quoted);
                text =
                    msg->text ? wg_hex_encode((const uint8_t *)msg->text, strlen(msg->text)) : NULL;
                quoted = msg->quoted_id ? strdup(msg->quoted_id) : NULL;
            }
        }
        wg_msg_free(msg);
        free(pt);
    }
    if (rv == 0)
        printf("OK %s %s %s %s %s\n", m.chat, m.author, kind, text && *text ? text : "-",
               quoted ? quoted : "-");
out:
    free(text);
    free(quoted);
    wg_node_free(n);
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
    if (n == 2 && strcmp(a[0], "RECV") == 0)
        return recv_node(a[1]);
    if (n == 5 && strcmp(a[0], "SENDTEXT") == 0)
        return send_text(a, 0);
    if (n == 5 && strcmp(a[0], "SENDGROUP") == 0)
        return send_text(a, 1);
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
