/* session.c - see session.h. One state variable (st) changed only by set_state(), which logs.
 *
 *   WAIT     after the handshake: nothing known yet
 *   PAIRING  pair-device refs received, QRs shown (registration connection)
 *   PAIRED   pair-success answered; waiting for the 515 restart
 *   LOGIN    <success> received; the login steps that must precede messaging are under way
 *            (prekey count, upload when low, passive iq), bounded by login_timeout_ms
 *   ONLINE   every login step answered: READY raised (the instance is WORKING)
 *   LEAVING  our own logout: remove-companion-device sent; only its answer and the server's
 *            close count, bounded by logout_timeout_ms; everything else is ignored
 *   CLOSED   a CLOSE event was raised; input is ignored */
#include "wa/session.h"
#include "util/codec.h"
#include "util/err.h"
#include "util/log.h"
#include "wa/pair.h"
#include "wa/payload.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_REFS 16
#define SERVER_JID "@s.whatsapp.net"
#define NEVER UINT64_MAX

enum { ST_WAIT = 0, ST_PAIRING, ST_PAIRED, ST_LOGIN, ST_ONLINE, ST_LEAVING, ST_CLOSED };
static const char *const st_names[] = {"wait",   "pairing", "paired", "login",
                                       "online", "leaving", "closed"};

/* What an outstanding iq of ours was for. IQ_UPLOAD is the login upload (READY waits for it),
 * IQ_REFILL a later one (the server ran low while we were online). */
enum {
    IQ_NONE = 0,
    IQ_PING,
    IQ_COUNT,
    IQ_UPLOAD,
    IQ_REFILL,
    IQ_PASSIVE,
    IQ_LINK_HELLO,
    IQ_LINK_FINISH,
    IQ_LOGOUT
};
static const char *const iq_names[] = {"none",          "ping",        "prekey_count",
                                       "prekey_upload", "refill",      "passive",
                                       "link_hello",    "link_finish", "logout"};

/* Login steps still unanswered (ST_LOGIN): READY when none is left. */
#define WAIT_COUNT 1u
#define WAIT_UPLOAD 2u
#define WAIT_PASSIVE 4u
#define MAX_PENDING 16

struct wg_session_s {
    wg_creds_t *creds;
    wg_session_config_t cfg;
    wg_session_cbs_t cb;
    int st;
    char id_prefix[16];
    unsigned id_counter;
    struct {
        char id[32];
        int kind;
    } pending[MAX_PENDING];
    /* QR pairing */
    char *refs[MAX_REFS];
    unsigned nrefs, ref_idx;
    uint64_t qr_deadline;
    /* keepalive */
    uint64_t ping_due, ping_deadline;
    /* login steps (ST_LOGIN) */
    unsigned login_wait; /* WAIT_* */
    uint64_t login_started, login_deadline;
    uint64_t logout_deadline; /* ST_LEAVING */
    /* pairing code */
    int link_active;
    char link_code[WG_PAIR_CODE_LEN + 1];
    char link_phone[24];
    char link_ref[128];
    wg_keys_pair_t link_eph;
    uint32_t next_prekey_id;
};

static void set_state(wg_session_t *s, int st, const char *why)
{
    if (s->st == st)
        return;
    wg_log(WG_LOG_DEBUG, "session", "jid=%s from=%s to=%s why=%s",
           s->creds->paired ? s->creds->jid : "-", st_names[s->st], st_names[st], why);
    s->st = st;
}

static int emit(wg_session_t *s, const wg_session_event_t *ev)
{
    return s->cb.event(s->cb.ud, ev);
}

static int close_with(wg_session_t *s, wg_session_close_t how, const char *reason)
{
    wg_session_event_t ev = {.type = WG_SESSION_EV_CLOSE, .close = how, .reason = reason};
    if (s->st == ST_CLOSED)
        return 0;
    set_state(s, ST_CLOSED, reason);
    s->qr_deadline = s->ping_due = s->ping_deadline = s->login_deadline = NEVER;
    s->logout_deadline = NEVER;
    return emit(s, &ev);
}

/* ---- building and sending nodes ---------------------------------------------------------- */

static void next_id(wg_session_t *s, char *out, size_t cap)
{
    snprintf(out, cap, "%s%u", s->id_prefix, ++s->id_counter);
}

static void track(wg_session_t *s, const char *id, int kind)
{
    for (int i = 0; i < MAX_PENDING; i++)
        if (s->pending[i].kind == IQ_NONE) {
            snprintf(s->pending[i].id, sizeof(s->pending[i].id), "%s", id);
            s->pending[i].kind = kind;
            return;
        }
    /* full (a server that answers nothing): the oldest is forgotten. A login step forgotten
     * this way ends in login_timeout and a reconnect, never in READY without its answer. */
    snprintf(s->pending[0].id, sizeof(s->pending[0].id), "%s", id);
    s->pending[0].kind = kind;
}

static int untrack(wg_session_t *s, const char *id)
{
    for (int i = 0; id && i < MAX_PENDING; i++)
        if (s->pending[i].kind != IQ_NONE && !strcmp(s->pending[i].id, id)) {
            int k = s->pending[i].kind;
            s->pending[i].kind = IQ_NONE;
            return k;
        }
    return IQ_NONE;
}

static int send_free(wg_session_t *s, wg_node_t *n)
{
    int rv = n ? s->cb.send(s->cb.ud, n) : WG_ENOMEM;
    wg_node_free(n);
    return rv;
}

/* <iq to="@s.whatsapp.net" type=type [xmlns] id=new>; *id receives the id. */
static wg_node_t *iq_new(wg_session_t *s, const char *type, const char *xmlns, char *id,
                         size_t idcap)
{
    wg_node_t *n = wg_node_new("iq");
    next_id(s, id, idcap);
    if (n &&
        (wg_node_set_attr(n, "id", id) || wg_node_set_attr_jid(n, "to", SERVER_JID) ||
         wg_node_set_attr(n, "type", type) || (xmlns && wg_node_set_attr(n, "xmlns", xmlns)))) {
        wg_node_free(n);
        return NULL;
    }
    return n;
}

/* <iq to=@s.whatsapp.net type=result id=id/> */
static int send_result(wg_session_t *s, const char *id)
{
    wg_node_t *n = wg_node_new("iq");
    if (n && (wg_node_set_attr_jid(n, "to", SERVER_JID) || wg_node_set_attr(n, "type", "result") ||
              wg_node_set_attr(n, "id", id ? id : ""))) {
        wg_node_free(n);
        n = NULL;
    }
    return send_free(s, n);
}

static int send_iq_error(wg_session_t *s, const char *id, int code, const char *text)
{
    wg_node_t *n = wg_node_new("iq"), *e = NULL;
    if (n && !wg_node_set_attr_jid(n, "to", SERVER_JID) && !wg_node_set_attr(n, "type", "error") &&
        !wg_node_set_attr(n, "id", id ? id : "") && (e = wg_node_add_new(n, "error")) &&
        !wg_node_set_attrf(e, "code", "%d", code) && !wg_node_set_attr(e, "text", text))
        return send_free(s, n);
    wg_node_free(n);
    return WG_ENOMEM;
}

static wg_node_t *add_bytes(wg_node_t *parent, const char *tag, const void *p, size_t len)
{
    wg_node_t *c = wg_node_add_new(parent, tag);
    if (c && wg_node_set_bytes(c, p, len) != 0)
        return NULL;
    return c;
}

/* ---- QR pairing (§5) --------------------------------------------------------------------- */

static void free_refs(wg_session_t *s)
{
    for (unsigned i = 0; i < s->nrefs; i++)
        free(s->refs[i]);
    s->nrefs = s->ref_idx = 0;
}

static int show_qr(wg_session_t *s, uint64_t now_ms, int keep_deadline)
{
    char *qr = NULL;
    const char *ref = s->refs[s->ref_idx];
    uint32_t valid = s->ref_idx == 0 ? s->cfg.qr_first_ms : s->cfg.qr_next_ms;
    int rv = wg_pair_qr_string(&qr, (const uint8_t *)ref, strlen(ref), s->creds->noise.pub,
                               s->creds->identity.pub, s->creds->adv_secret, s->cfg.qr_platform,
                               WG_PAIR_QR_URL);
    if (rv)
        return rv;
    if (!keep_deadline)
        s->qr_deadline = now_ms + valid;
    else if (s->qr_deadline > now_ms)
        valid = (uint32_t)(s->qr_deadline - now_ms);
    wg_session_event_t ev = {.type = WG_SESSION_EV_QR,
                             .qr = qr,
                             .qr_valid_ms = valid,
                             .qr_index = s->ref_idx,
                             .qr_count = s->nrefs};
    rv = emit(s, &ev);
    free(qr);
    return rv;
}

static int on_pair_device(wg_session_t *s, const wg_node_t *iq, const wg_node_t *pd,
                          uint64_t now_ms)
{
    int rv;
    if (s->creds->paired) {
        wg_log(WG_LOG_WARN, "session", "jid=%s pair-device while paired: ignored", s->creds->jid);
        return 0;
    }
    free_refs(s);
    for (size_t i = 0; i < wg_node_child_count(pd) && s->nrefs < MAX_REFS; i++) {
        const wg_node_t *r = wg_node_child(pd, i);
        size_t len;
        const uint8_t *b = wg_node_bytes(r, &len);
        if (!wg_node_tag_is(r, "ref") || !b || len == 0 || len > WG_PAIR_REF_MAX ||
            memchr(b, ',', len) || memchr(b, 0, len))
            continue;
        if (!(s->refs[s->nrefs] = strndup((const char *)b, len)))
            return WG_ENOMEM;
        s->nrefs++;
    }
    /* §5.2: acknowledge right away */
    if ((rv = send_result(s, wg_node_attr(iq, "id"))) != 0)
        return rv;
    if (s->nrefs == 0) {
        wg_log(WG_LOG_WARN, "session", "pair-device without usable refs");
        return close_with(s, WG_SESSION_RECONNECT_BACKOFF, "no_qr_refs");
    }
    set_state(s, ST_PAIRING, "pair-device");
    return show_qr(s, now_ms, 0);
}

static int on_pair_success(wg_session_t *s, const wg_node_t *iq, const wg_node_t *ps)
{
    const char *id = wg_node_attr(iq, "id");
    const wg_node_t *di = wg_node_child_by_tag(ps, "device-identity");
    const wg_node_t *dev = wg_node_child_by_tag(ps, "device");
    const wg_node_t *plat = wg_node_child_by_tag(ps, "platform");
    const wg_node_t *biz = wg_node_child_by_tag(ps, "biz");
    const char *jid = dev ? wg_node_attr(dev, "jid") : NULL;
    const char *lid = dev ? wg_node_attr(dev, "lid") : NULL;
    wg_pair_success_t res;
    wg_pair_fail_t fail = WG_PAIR_FAIL_NONE;
    wg_node_t *n = NULL, *sign, *d;
    char kidx[16];
    size_t len = 0;
    const uint8_t *b = di ? wg_node_bytes(di, &len) : NULL;
    int rv;

    if (s->creds->paired) {
        wg_log(WG_LOG_WARN, "session", "jid=%s second pair-success: ignored", s->creds->jid);
        return 0;
    }
    if (!b || !jid || strlen(jid) >= WG_CREDS_STR_MAX || (lid && strlen(lid) >= WG_CREDS_STR_MAX)) {
        wg_log(WG_LOG_WARN, "session", "pair-success malformed (identity/jid missing)");
        if ((rv = send_iq_error(s, id, 500, "internal-error")) != 0)
            return rv;
        return close_with(s, WG_SESSION_STOP, "pair_failed");
    }
    rv = wg_pair_verify_success(&res, &fail, s->creds->adv_secret, &s->creds->identity, b, len);
    if (rv) {
        wg_log(WG_LOG_WARN, "session", "pair-success rejected check=%s err=%s",
               wg_pair_fail_text(fail), wg_strerror(rv));
        if ((rv = send_iq_error(s, id, wg_pair_fail_code(fail), wg_pair_fail_text(fail))) != 0)
            return rv;
        return close_with(s, WG_SESSION_STOP, "pair_failed");
    }
    /* §5.7 step 6: persist before answering */
    wg_creds_t *c = s->creds;
    if (res.account_len > WG_CREDS_ACCOUNT_MAX) {
        rv = WG_ETOOBIG;
        goto out;
    }
    c->paired = 1;
    snprintf(c->jid, sizeof(c->jid), "%s", jid);
    snprintf(c->lid, sizeof(c->lid), "%s", lid ? lid : "");
    snprintf(c->platform, sizeof(c->platform), "%s",
             plat && wg_node_attr(plat, "name") ? wg_node_attr(plat, "name") : "");
    snprintf(c->business_name, sizeof(c->business_name), "%s",
             biz && wg_node_attr(biz, "name") ? wg_node_attr(biz, "name") : "");
    memcpy(c->primary_identity, res.account_signature_key, WG_KEYS_KEY_LEN);
    memcpy(c->account, res.account, res.account_len);
    c->account_len = res.account_len;
    wg_session_event_t ev = {.type = WG_SESSION_EV_CREDS};
    if ((rv = emit(s, &ev)) != 0) {
        c->paired = 0;
        send_iq_error(s, id, 500, "internal-error");
        goto out;
    }
    free_refs(s);
    s->qr_deadline = NEVER;
    set_state(s, ST_PAIRED, "pair-success");
    wg_log(WG_LOG_INFO, "session", "jid=%s paired platform=%s", c->jid, c->platform);
    /* §5.7 step 7 */
    snprintf(kidx, sizeof(kidx), "%u", res.device.key_index);
    n = wg_node_new("iq");
    if (!n || wg_node_set_attr_jid(n, "to", SERVER_JID) || wg_node_set_attr(n, "type", "result") ||
        wg_node_set_attr(n, "id", id ? id : "") ||
        !(sign = wg_node_add_new(n, "pair-device-sign")) ||
        !(d = add_bytes(sign, "device-identity", res.reply, res.reply_len)) ||
        wg_node_set_attr(d, "key-index", kidx)) {
        rv = WG_ENOMEM;
        goto out;
    }
    rv = s->cb.send(s->cb.ud, n);
out:
    wg_node_free(n);
    wg_pair_success_dispose(&res);
    return rv;
}

/* ---- pairing code (§6) ------------------------------------------------------------------- */

static wg_node_t *link_iq(wg_session_t *s, const char *stage, wg_node_t **reg, int kind)
{
    char id[32], jid[48];
    wg_node_t *n = iq_new(s, "set", "md", id, sizeof(id));
    snprintf(jid, sizeof(jid), "%s@s.whatsapp.net", s->link_phone);
    if (!n || !(*reg = wg_node_add_new(n, "link_code_companion_reg")) ||
        wg_node_set_attr_jid(*reg, "jid", jid) || wg_node_set_attr(*reg, "stage", stage)) {
        wg_node_free(n);
        return NULL;
    }
    track(s, id, kind);
    return n;
}

int wg_session_pair_code(wg_session_t *s, const char *phone, const char *code, uint64_t now_ms)
{
    uint8_t wrapped[WG_PAIR_WRAPPED_EPH_LEN];
    char platform[2] = {s->cfg.qr_platform, 0};
    wg_node_t *n, *reg, *c;
    size_t pl = phone ? strlen(phone) : 0;
    int rv;
    (void)now_ms;
    if (s->st != ST_PAIRING || s->creds->paired)
        return WG_EPERM;
    /* [W]: digits only, more than 6, no leading 0 */
    if (pl < 7 || pl >= sizeof(s->link_phone) || phone[0] == '0' ||
        strspn(phone, "0123456789") != pl || !code || strlen(code) != WG_PAIR_CODE_LEN)
        return WG_EINVAL;
    snprintf(s->link_phone, sizeof(s->link_phone), "%s", phone);
    snprintf(s->link_code, sizeof(s->link_code), "%s", code);
    s->link_ref[0] = 0;
    if ((rv = wg_keys_generate(&s->link_eph)) != 0 ||
        (rv = wg_pair_code_wrap_ephemeral(wrapped, code, s->link_eph.pub,
                                          s->cfg.pbkdf2_iterations)) != 0)
        return rv;
    if (!(n = link_iq(s, "companion_hello", &reg, IQ_LINK_HELLO)) ||
        wg_node_set_attr(reg, "should_show_push_notification", "true") ||
        !add_bytes(reg, "link_code_pairing_wrapped_companion_ephemeral_pub", wrapped,
                   sizeof(wrapped)) ||
        !add_bytes(reg, "companion_server_auth_key_pub", s->creds->noise.pub, WG_KEYS_KEY_LEN) ||
        !(c = wg_node_add_new(reg, "companion_platform_id")) || wg_node_set_text(c, platform) ||
        !(c = wg_node_add_new(reg, "companion_platform_display")) ||
        wg_node_set_text(c, s->cfg.platform_display) ||
        !add_bytes(reg, "link_code_pairing_nonce", "\0", 1)) { /* [W]: one byte 00 */
        wg_node_free(n);
        return WG_ENOMEM;
    }
    s->link_active = 1;
    wg_log(WG_LOG_INFO, "session", "pairing code requested phone=%s", phone);
    return send_free(s, n);
}

static int on_link_code_notification(wg_session_t *s, const wg_node_t *reg)
{
    const wg_node_t *ref = wg_node_child_by_tag(reg, "link_code_pairing_ref");
    const wg_node_t *pid = wg_node_child_by_tag(reg, "primary_identity_pub");
    const wg_node_t *wr =
        wg_node_child_by_tag(reg, "link_code_pairing_wrapped_primary_ephemeral_pub");
    uint8_t bundle[WG_PAIR_KEY_BUNDLE_LEN], adv[WG_PAIR_ADV_SECRET_LEN];
    size_t rl = 0, pl = 0, wl = 0;
    const uint8_t *rb = ref ? wg_node_bytes(ref, &rl) : NULL;
    const uint8_t *pb = pid ? wg_node_bytes(pid, &pl) : NULL;
    const uint8_t *wb = wr ? wg_node_bytes(wr, &wl) : NULL;
    wg_node_t *n, *r2;
    int rv;
    if (!s->link_active || s->st != ST_PAIRING) {
        wg_log(WG_LOG_WARN, "session", "link code notification without a request: ignored");
        return 0;
    }
    if (!rb || !rl || rl >= sizeof(s->link_ref) || !pb || pl != WG_KEYS_KEY_LEN || !wb ||
        wl < WG_PAIR_WRAPPED_EPH_LEN) {
        wg_log(WG_LOG_WARN, "session", "link code notification malformed: ignored");
        return 0;
    }
    if (s->link_ref[0] && (strlen(s->link_ref) != rl || memcmp(s->link_ref, rb, rl))) {
        wg_log(WG_LOG_WARN, "session", "link code notification for another ref: ignored");
        return 0;
    }
    memcpy(s->link_ref, rb, rl);
    s->link_ref[rl] = 0;
    rv = wg_pair_code_finish(bundle, adv, s->link_code, &s->link_eph, &s->creds->identity, pb, wb,
                             wl, s->cfg.pbkdf2_iterations);
    if (rv) {
        wg_log(WG_LOG_WARN, "session", "link code finish failed err=%s", wg_strerror(rv));
        return 0;
    }
    /* §6.6 step 9: the derived adv secret replaces ours; pair-success is checked with it */
    memcpy(s->creds->adv_secret, adv, sizeof(adv));
    wg_keys_wipe(adv, sizeof(adv));
    wg_session_event_t ev = {.type = WG_SESSION_EV_CREDS};
    if ((rv = emit(s, &ev)) != 0)
        return rv;
    if (!(n = link_iq(s, "companion_finish", &r2, IQ_LINK_FINISH)) ||
        !add_bytes(r2, "link_code_pairing_wrapped_key_bundle", bundle, sizeof(bundle)) ||
        !add_bytes(r2, "companion_identity_public", s->creds->identity.pub, WG_KEYS_KEY_LEN) ||
        !add_bytes(r2, "link_code_pairing_ref", rb, rl)) {
        wg_node_free(n);
        return WG_ENOMEM;
    }
    return send_free(s, n);
}

/* ---- after login (§7) -------------------------------------------------------------------- */

/* Makes count one-time prekeys, has them persisted (EV_PREKEYS), uploads them; kind is
 * IQ_UPLOAD (login) or IQ_REFILL. */
static int upload_prekeys(wg_session_t *s, uint32_t count, int kind)
{
    wg_session_prekey_t *pk = NULL;
    wg_node_t *n = NULL, *list, *k, *sk;
    char id[32];
    uint8_t b4[4], b3[3];
    int rv = 0;
    if (count == 0)
        return 0;
    if (s->next_prekey_id == 0)
        s->next_prekey_id = 1;
    if (s->next_prekey_id + count - 1 > WG_SESSION_PREKEY_MAX_ID) /* wrap: start over at 1 */
        s->next_prekey_id = 1;
    if (!(pk = calloc(count, sizeof(*pk))))
        return WG_ENOMEM;
    for (uint32_t i = 0; i < count; i++) {
        pk[i].id = s->next_prekey_id + i;
        if ((rv = wg_keys_generate(&pk[i].kp)) != 0)
            goto out;
    }
    wg_session_event_t ev = {.type = WG_SESSION_EV_PREKEYS, .prekeys = pk, .nprekeys = count};
    if ((rv = emit(s, &ev)) != 0)
        goto out;
    s->next_prekey_id += count;
    /* §7.4 layout */
    if (!(n = iq_new(s, "set", "encrypt", id, sizeof(id)))) {
        rv = WG_ENOMEM;
        goto out;
    }
    uint32_t r = s->creds->registration_id;
    b4[0] = (uint8_t)(r >> 24), b4[1] = (uint8_t)(r >> 16), b4[2] = (uint8_t)(r >> 8),
    b4[3] = (uint8_t)r;
    rv = WG_ENOMEM;
    if (!add_bytes(n, "registration", b4, 4) || !add_bytes(n, "type", "\x05", 1) ||
        !add_bytes(n, "identity", s->creds->identity.pub, 32) ||
        !(list = wg_node_add_new(n, "list")))
        goto out;
    if (wg_node_set_list(list) != 0)
        goto out;
    for (uint32_t i = 0; i < count; i++) {
        b3[0] = (uint8_t)(pk[i].id >> 16), b3[1] = (uint8_t)(pk[i].id >> 8),
        b3[2] = (uint8_t)pk[i].id;
        if (!(k = wg_node_add_new(list, "key")) || !add_bytes(k, "id", b3, 3) ||
            !add_bytes(k, "value", pk[i].kp.pub, 32))
            goto out;
    }
    uint32_t sid = s->creds->signed_prekey_id;
    b3[0] = (uint8_t)(sid >> 16), b3[1] = (uint8_t)(sid >> 8), b3[2] = (uint8_t)sid;
    if (!(sk = wg_node_add_new(n, "skey")) || !add_bytes(sk, "id", b3, 3) ||
        !add_bytes(sk, "value", s->creds->signed_prekey.pub, 32) ||
        !add_bytes(sk, "signature", s->creds->signed_prekey_sig, 64))
        goto out;
    track(s, id, kind);
    wg_log(WG_LOG_INFO, "session", "jid=%s prekeys upload count=%u first=%u", s->creds->jid, count,
           pk[0].id);
    rv = s->cb.send(s->cb.ud, n);
out:
    if (pk) {
        wg_keys_wipe(pk, count * sizeof(*pk));
        free(pk);
    }
    wg_node_free(n);
    return rv;
}

/* A login step answered (bit of WAIT_*): READY once none is left. */
static int login_step_done(wg_session_t *s, unsigned bit, uint64_t now_ms)
{
    s->login_wait &= ~bit;
    if (s->st != ST_LOGIN || s->login_wait)
        return 0;
    s->login_deadline = NEVER;
    set_state(s, ST_ONLINE, "login steps answered");
    wg_log(WG_LOG_DEBUG, "session", "jid=%s ready after_ms=%llu", s->creds->jid,
           (unsigned long long)(now_ms - s->login_started));
    wg_session_event_t ev = {.type = WG_SESSION_EV_READY};
    return emit(s, &ev);
}

/* A login step failed: not READY on this connection; reconnect with backoff, which repeats
 * the whole sequence (count, upload, passive) and grows the delay while it keeps failing. */
static int login_step_failed(wg_session_t *s, int kind, const wg_node_t *err)
{
    static const char *const why[] = {[IQ_COUNT] = "prekey_count_failed",
                                      [IQ_UPLOAD] = "prekey_upload_failed",
                                      [IQ_PASSIVE] = "passive_failed"};
    wg_log(WG_LOG_WARN, "session", "jid=%s login step %s failed code=%s text=%s", s->creds->jid,
           iq_names[kind], err && wg_node_attr(err, "code") ? wg_node_attr(err, "code") : "-",
           err && wg_node_attr(err, "text") ? wg_node_attr(err, "text") : "-");
    return close_with(s, WG_SESSION_RECONNECT_BACKOFF, why[kind]);
}

static int on_success(wg_session_t *s, const wg_node_t *node, uint64_t now_ms)
{
    const char *lid = wg_node_attr(node, "lid");
    wg_node_t *n;
    char id[32];
    int rv;
    if (!s->creds->paired) {
        wg_log(WG_LOG_WARN, "session", "<success> on a registration connection: ignored");
        return 0;
    }
    if (s->st == ST_LOGIN || s->st == ST_ONLINE) {
        wg_log(WG_LOG_WARN, "session", "jid=%s second <success>: ignored", s->creds->jid);
        return 0;
    }
    if (lid && *lid && strlen(lid) < WG_CREDS_STR_MAX && strcmp(lid, s->creds->lid)) {
        snprintf(s->creds->lid, sizeof(s->creds->lid), "%s", lid);
        wg_session_event_t ev = {.type = WG_SESSION_EV_CREDS};
        if ((rv = emit(s, &ev)) != 0)
            return rv;
    }
    set_state(s, ST_LOGIN, "success");
    s->ping_due = now_ms + s->cfg.keepalive_ms;
    s->ping_deadline = NEVER;
    s->login_started = now_ms;
    s->login_deadline = now_ms + s->cfg.login_timeout_ms;
    s->login_wait = WAIT_COUNT | WAIT_PASSIVE;
    wg_session_event_t ev = {.type = WG_SESSION_EV_CONNECTED};
    if ((rv = emit(s, &ev)) != 0)
        return rv;
    /* §7.2: prekey count (then the upload when low) and the passive iq ("active"). [W] and [B]
     * send the passive iq after the upload; we send it with the count so that a login without
     * an upload costs one round trip, and wait for all of them before READY. */
    if (!(n = iq_new(s, "get", "encrypt", id, sizeof(id))) || !wg_node_add_new(n, "count")) {
        wg_node_free(n);
        return WG_ENOMEM;
    }
    track(s, id, IQ_COUNT);
    if ((rv = send_free(s, n)) != 0)
        return rv;
    if (!(n = iq_new(s, "set", "passive", id, sizeof(id))) || !wg_node_add_new(n, "active")) {
        wg_node_free(n);
        return WG_ENOMEM;
    }
    track(s, id, IQ_PASSIVE);
    return send_free(s, n);
}

static uint32_t count_value(const wg_node_t *parent)
{
    const wg_node_t *c = wg_node_child_by_tag(parent, "count");
    const char *v = c ? wg_node_attr(c, "value") : NULL;
    return v ? (uint32_t)strtoul(v, NULL, 10) : 0;
}

/* The answer to the login's count query: upload when the server runs low (§7.4). */
static int on_count(wg_session_t *s, const wg_node_t *iq, uint64_t now_ms)
{
    uint32_t have = count_value(iq);
    int rv;
    wg_log(WG_LOG_DEBUG, "session", "jid=%s prekeys on server=%u", s->creds->jid, have);
    if (have < WG_SESSION_PREKEYS_MIN) {
        uint32_t n = have == 0 ? s->cfg.prekeys_initial : s->cfg.prekeys_batch;
        s->login_wait |= WAIT_UPLOAD;
        if ((rv = upload_prekeys(s, n, IQ_UPLOAD)) != 0)
            return rv;
    }
    return login_step_done(s, WAIT_COUNT, now_ms);
}

static int on_iq_answer(wg_session_t *s, const wg_node_t *iq, uint64_t now_ms)
{
    const char *type = wg_node_attr(iq, "type");
    int kind = untrack(s, wg_node_attr(iq, "id"));
    int ok = type && !strcmp(type, "result");
    const wg_node_t *err = wg_node_child_by_tag(iq, "error");
    switch (kind) {
    case IQ_PING:
        s->ping_deadline = NEVER;
        s->ping_due = now_ms + s->cfg.keepalive_ms;
        return 0;
    case IQ_COUNT:
    case IQ_UPLOAD:
    case IQ_PASSIVE:
        if (s->st != ST_LOGIN)
            return 0; /* a late answer after the close */
        if (!ok)
            return login_step_failed(s, kind, err);
        if (kind == IQ_COUNT)
            return on_count(s, iq, now_ms);
        if (kind == IQ_UPLOAD)
            wg_log(WG_LOG_INFO, "session", "jid=%s prekeys upload accepted", s->creds->jid);
        return login_step_done(s, kind == IQ_UPLOAD ? WAIT_UPLOAD : WAIT_PASSIVE, now_ms);
    case IQ_LINK_HELLO:
        if (ok) {
            const wg_node_t *reg = wg_node_child_by_tag(iq, "link_code_companion_reg");
            const wg_node_t *ref = reg ? wg_node_child_by_tag(reg, "link_code_pairing_ref") : NULL;
            size_t rl = 0;
            const uint8_t *rb = ref ? wg_node_bytes(ref, &rl) : NULL;
            if (rb && rl && rl < sizeof(s->link_ref)) {
                memcpy(s->link_ref, rb, rl);
                s->link_ref[rl] = 0;
            }
            wg_session_event_t ev = {.type = WG_SESSION_EV_LINK_CODE, .link_ok = 1};
            return emit(s, &ev);
        }
        s->link_active = 0;
        {
            wg_session_event_t ev = {.type = WG_SESSION_EV_LINK_CODE, .link_ok = 0};
            int rv = emit(s, &ev);
            if (rv)
                return rv;
        }
        break;
    case IQ_NONE:
        return 0; /* not ours, or already answered */
    default:
        break;
    }
    /* a refill or a link iq: the failure is logged; a refill is tried again at the server's
     * next low-count notification */
    if (!ok)
        wg_log(WG_LOG_WARN, "session", "jid=%s iq %s failed code=%s text=%s",
               s->creds->paired ? s->creds->jid : "-", iq_names[kind],
               err && wg_node_attr(err, "code") ? wg_node_attr(err, "code") : "-",
               err && wg_node_attr(err, "text") ? wg_node_attr(err, "text") : "-");
    return 0;
}

/* <ack class="notification" id=… to=<from> type=…/> ([W] sendAck) */
static int ack_notification(wg_session_t *s, const wg_node_t *node)
{
    const char *id = wg_node_attr(node, "id"), *from = wg_node_attr(node, "from");
    const char *type = wg_node_attr(node, "type");
    wg_node_t *n = wg_node_new("ack");
    if (!n || wg_node_set_attr(n, "class", "notification") ||
        wg_node_set_attr(n, "id", id ? id : "") ||
        (from ? wg_node_set_attr_jid(n, "to", from) != 0 && wg_node_set_attr(n, "to", from) != 0
              : wg_node_set_attr_jid(n, "to", SERVER_JID) != 0) ||
        (type && wg_node_set_attr(n, "type", type))) {
        wg_node_free(n);
        return WG_ENOMEM;
    }
    return send_free(s, n);
}

static int on_notification(wg_session_t *s, const wg_node_t *node, uint64_t now_ms)
{
    const char *type = wg_node_attr(node, "type");
    int rv = ack_notification(s, node);
    if (rv || !type)
        return rv;
    if (!strcmp(type, "link_code_companion_reg")) {
        const wg_node_t *reg = wg_node_child_by_tag(node, "link_code_companion_reg");
        return reg ? on_link_code_notification(s, reg) : 0;
    }
    /* the server runs low while we are online; during the login the count query decides,
     * unless it has already been answered with "enough" */
    if (!strcmp(type, "encrypt") && wg_node_child_by_tag(node, "count") &&
        (s->st == ST_ONLINE ||
         (s->st == ST_LOGIN && !(s->login_wait & (WAIT_COUNT | WAIT_UPLOAD))))) {
        uint32_t have = count_value(node);
        if (have < WG_SESSION_PREKEYS_MIN)
            return upload_prekeys(s, s->cfg.prekeys_batch, IQ_REFILL);
        return 0;
    }
    if (!strcmp(type, "companion_reg_refresh") && s->st == ST_PAIRING) {
        /* §5.9: new adv secret, the current ref re-rendered */
        if ((rv = wg_random_bytes(s->creds->adv_secret, WG_CREDS_ADV_SECRET_LEN)) != 0)
            return rv;
        wg_session_event_t ev = {.type = WG_SESSION_EV_CREDS};
        if ((rv = emit(s, &ev)) != 0)
            return rv;
        return show_qr(s, now_ms, 1);
    }
    return 0;
}

/* §7.7 */
static int on_stream_error(wg_session_t *s, const wg_node_t *node)
{
    const char *code = wg_node_attr(node, "code");
    const wg_node_t *conflict = wg_node_child_by_tag(node, "conflict");
    const char *ctype = conflict ? wg_node_attr(conflict, "type") : NULL;
    wg_log(WG_LOG_INFO, "session", "jid=%s stream:error code=%s conflict=%s",
           s->creds->paired ? s->creds->jid : "-", code ? code : "-", ctype ? ctype : "-");
    if (code && !strcmp(code, "515"))
        return close_with(s, WG_SESSION_RECONNECT_NOW, "restart_required");
    if ((ctype && !strcmp(ctype, "device_removed")) || (code && !strcmp(code, "401")))
        return close_with(s, WG_SESSION_LOGGED_OUT, "logged_out");
    if (ctype && !strcmp(ctype, "replaced"))
        return close_with(s, WG_SESSION_STOP, "replaced");
    return close_with(s, WG_SESSION_RECONNECT_BACKOFF,
                      code && !strcmp(code, "503") ? "service_unavailable" : "stream_error");
}

/* §7.8 */
static int on_failure(wg_session_t *s, const wg_node_t *node)
{
    const char *r = wg_node_attr(node, "reason");
    int reason = r ? atoi(r) : 0;
    wg_log(WG_LOG_INFO, "session", "jid=%s failure reason=%d", s->creds->jid, reason);
    switch (reason) {
    case 401:
    case 403:
    case 406:
        return close_with(s, WG_SESSION_LOGGED_OUT, "logged_out");
    case 500:
    case 503:
        return close_with(s, WG_SESSION_RECONNECT_BACKOFF, "service_unavailable");
    case 402:
        return close_with(s, WG_SESSION_STOP, "temporarily_banned");
    case 405:
        return close_with(s, WG_SESSION_STOP, "client_outdated");
    default:
        return close_with(s, WG_SESSION_STOP, "login_failed");
    }
}

/* ---- our own logout ---------------------------------------------------------------------- */

int wg_session_logout(wg_session_t *s, uint64_t now_ms)
{
    wg_node_t *n, *r;
    char id[32];
    if (s->st != ST_LOGIN && s->st != ST_ONLINE)
        return WG_EPERM;
    /* [B] socket.ts logout, [W] Client.Logout: <iq xmlns="md" type="set"> with
     * <remove-companion-device jid=<our device JID> reason="user_initiated"/> */
    if (!(n = iq_new(s, "set", "md", id, sizeof(id))) ||
        !(r = wg_node_add_new(n, "remove-companion-device")) ||
        wg_node_set_attr_jid(r, "jid", s->creds->jid) ||
        wg_node_set_attr(r, "reason", "user_initiated")) {
        wg_node_free(n);
        return WG_ENOMEM;
    }
    track(s, id, IQ_LOGOUT);
    set_state(s, ST_LEAVING, "logout");
    /* nothing but the answer matters now: no QR, login step or keepalive deadline */
    s->qr_deadline = s->ping_due = s->ping_deadline = s->login_deadline = NEVER;
    s->logout_deadline = now_ms + s->cfg.logout_timeout_ms;
    wg_log(WG_LOG_INFO, "session", "jid=%s logout: remove-companion-device sent", s->creds->jid);
    return send_free(s, n);
}

/* ST_LEAVING: the answer to our remove-companion-device, or the server ending the stream
 * (a real server may close with device_removed right after its result), ends the session as
 * LOGGED_OUT; anything else (messages, notifications, pings) is ignored. */
static int leaving_handle(wg_session_t *s, const wg_node_t *node)
{
    const char *tag = wg_node_tag(node), *type = wg_node_attr(node, "type");
    if (!strcmp(tag, "iq") && type && (!strcmp(type, "result") || !strcmp(type, "error")) &&
        untrack(s, wg_node_attr(node, "id")) == IQ_LOGOUT) {
        if (!strcmp(type, "result"))
            return close_with(s, WG_SESSION_LOGGED_OUT, "logout");
        const wg_node_t *err = wg_node_child_by_tag(node, "error");
        wg_log(WG_LOG_WARN, "session", "jid=%s logout refused code=%s text=%s", s->creds->jid,
               err && wg_node_attr(err, "code") ? wg_node_attr(err, "code") : "-",
               err && wg_node_attr(err, "text") ? wg_node_attr(err, "text") : "-");
        return close_with(s, WG_SESSION_LOGGED_OUT, "logout_refused");
    }
    if (!strcmp(tag, "stream:error") || !strcmp(tag, "xmlstreamend") || !strcmp(tag, "failure")) {
        wg_log(WG_LOG_INFO, "session", "jid=%s logout: the server ended the stream (%s)",
               s->creds->jid, tag);
        return close_with(s, WG_SESSION_LOGGED_OUT, "logout");
    }
    return 0;
}

int wg_session_handle(wg_session_t *s, const wg_node_t *node, uint64_t now_ms)
{
    const char *tag = wg_node_tag(node);
    if (s->st == ST_CLOSED)
        return 0;
    if (s->st == ST_LEAVING)
        return leaving_handle(s, node);
    /* any frame is a sign of life, like [B]'s lastDateRecv */
    if (s->ping_deadline != NEVER)
        s->ping_deadline = now_ms + s->cfg.keepalive_timeout_ms;
    if (!strcmp(tag, "iq")) {
        const char *type = wg_node_attr(node, "type");
        const wg_node_t *c = wg_node_child_count(node) ? wg_node_child(node, 0) : NULL;
        if (type && (!strcmp(type, "result") || !strcmp(type, "error")))
            return on_iq_answer(s, node, now_ms);
        if (type && !strcmp(type, "set") && c && wg_node_tag_is(c, "pair-device"))
            return on_pair_device(s, node, c, now_ms);
        if (type && !strcmp(type, "set") && c && wg_node_tag_is(c, "pair-success"))
            return on_pair_success(s, node, c);
        if (type && !strcmp(type, "get")) /* server ping (urn:xmpp:ping) */
            return send_result(s, wg_node_attr(node, "id"));
        return 0;
    }
    if (!strcmp(tag, "success"))
        return on_success(s, node, now_ms);
    if (!strcmp(tag, "failure"))
        return on_failure(s, node);
    if (!strcmp(tag, "stream:error"))
        return on_stream_error(s, node);
    if (!strcmp(tag, "xmlstreamend"))
        return close_with(s, WG_SESSION_RECONNECT_BACKOFF, "stream_end");
    if (!strcmp(tag, "notification"))
        return on_notification(s, node, now_ms);
    if (!strcmp(tag, "ib")) {
        if (wg_node_child_by_tag(node, "downgrade_webclient"))
            return close_with(s, WG_SESSION_STOP, "multidevice_not_enabled");
        return 0;
    }
    wg_log(WG_LOG_DEBUG, "session", "jid=%s unhandled tag=%s",
           s->creds->paired ? s->creds->jid : "-", tag);
    return 0;
}

uint64_t wg_session_next_deadline(const wg_session_t *s)
{
    uint64_t d = s->qr_deadline;
    if (s->login_deadline < d)
        d = s->login_deadline;
    if (s->ping_due < d)
        d = s->ping_due;
    if (s->ping_deadline < d)
        d = s->ping_deadline;
    if (s->logout_deadline < d)
        d = s->logout_deadline;
    return d;
}

static int send_ping(wg_session_t *s, uint64_t now_ms)
{
    char id[32];
    wg_node_t *n = iq_new(s, "get", "w:p", id, sizeof(id));
    if (!n || !wg_node_add_new(n, "ping")) { /* [B] sends <ping/> */
        wg_node_free(n);
        return WG_ENOMEM;
    }
    track(s, id, IQ_PING);
    s->ping_due = NEVER;
    s->ping_deadline = now_ms + s->cfg.keepalive_timeout_ms;
    return send_free(s, n);
}

int wg_session_on_timer(wg_session_t *s, uint64_t now_ms)
{
    int rv;
    if (s->st == ST_CLOSED)
        return 0;
    if (s->logout_deadline <= now_ms) {
        wg_log(WG_LOG_WARN, "session", "jid=%s logout unanswered after_ms=%u", s->creds->jid,
               s->cfg.logout_timeout_ms);
        return close_with(s, WG_SESSION_LOGGED_OUT, "logout_unanswered");
    }
    if (s->qr_deadline <= now_ms) {
        if (s->ref_idx + 1 >= s->nrefs) {
            wg_log(WG_LOG_INFO, "session", "qr refs exhausted count=%u", s->nrefs);
            return close_with(s, WG_SESSION_STOP, "qr_timeout");
        }
        s->ref_idx++;
        if ((rv = show_qr(s, now_ms, 0)) != 0)
            return rv;
    }
    if (s->login_deadline <= now_ms) {
        /* a login step unanswered (e.g. the prekey upload): not READY on this connection */
        wg_log(WG_LOG_WARN, "session",
               "jid=%s login steps unanswered after_ms=%llu count=%d upload=%d passive=%d",
               s->creds->jid, (unsigned long long)(now_ms - s->login_started),
               !!(s->login_wait & WAIT_COUNT), !!(s->login_wait & WAIT_UPLOAD),
               !!(s->login_wait & WAIT_PASSIVE));
        return close_with(s, WG_SESSION_RECONNECT_BACKOFF, "login_timeout");
    }
    if (s->ping_deadline <= now_ms) {
        wg_log(WG_LOG_INFO, "session", "jid=%s keepalive timeout", s->creds->jid);
        return close_with(s, WG_SESSION_RECONNECT_BACKOFF, "keepalive_timeout");
    }
    if (s->ping_due <= now_ms && (rv = send_ping(s, now_ms)) != 0)
        return rv;
    return 0;
}

int wg_session_new(wg_session_t **out, wg_creds_t *creds, const wg_session_config_t *cfg,
                   const wg_session_cbs_t *cbs, uint64_t now_ms)
{
    uint8_t r[2];
    wg_session_t *s;
    int rv;
    *out = NULL;
    if (!creds || !cbs || !cbs->send || !cbs->event)
        return WG_EINVAL;
    if ((rv = wg_random_bytes(r, sizeof(r))) != 0)
        return rv;
    if (!(s = calloc(1, sizeof(*s))))
        return WG_ENOMEM;
    s->creds = creds;
    s->cb = *cbs;
    if (cfg)
        s->cfg = *cfg;
#define DEF(f, v)                                                                                  \
    if (!s->cfg.f)                                                                                 \
    s->cfg.f = (v)
    DEF(qr_first_ms, WG_SESSION_QR_FIRST_MS);
    DEF(qr_next_ms, WG_SESSION_QR_NEXT_MS);
    DEF(keepalive_ms, WG_SESSION_KEEPALIVE_MS);
    DEF(keepalive_timeout_ms, WG_SESSION_KEEPALIVE_TIMEOUT_MS);
    DEF(prekeys_initial, WG_SESSION_PREKEYS_INITIAL);
    DEF(prekeys_batch, WG_SESSION_PREKEYS_BATCH);
    DEF(login_timeout_ms, WG_SESSION_LOGIN_TIMEOUT_MS);
    DEF(logout_timeout_ms, WG_SESSION_LOGOUT_TIMEOUT_MS);
    DEF(qr_platform, '1');
    DEF(platform_display, "Chrome (Linux)");
#undef DEF
    s->next_prekey_id = s->cfg.next_prekey_id ? s->cfg.next_prekey_id : 1;
    /* §7.6: "<a>.<b>-<counter>" */
    snprintf(s->id_prefix, sizeof(s->id_prefix), "%u.%u-", r[0], r[1]);
    s->qr_deadline = s->ping_deadline = s->login_deadline = s->logout_deadline = NEVER;
    /* keepalive from the start: a registration connection can die silently too */
    s->ping_due = now_ms + s->cfg.keepalive_ms;
    *out = s;
    return 0;
}

void wg_session_free(wg_session_t *s)
{
    if (!s)
        return;
    free_refs(s);
    wg_keys_wipe(&s->link_eph, sizeof(s->link_eph));
    wg_keys_wipe(s->link_code, sizeof(s->link_code));
    free(s);
}

int wg_session_pairing(const wg_session_t *s)
{
    return s->st == ST_PAIRING;
}

int wg_session_closed(const wg_session_t *s)
{
    return s->st == ST_CLOSED;
}

int wg_session_logged_in(const wg_session_t *s)
{
    return s->st == ST_LOGIN || s->st == ST_ONLINE;
}

int wg_session_ready(const wg_session_t *s)
{
    return s->st == ST_ONLINE;
}

int wg_session_client_payload(const wg_creds_t *c, const char *push_name, uint8_t **out,
                              size_t *len)
{
    wg_payload_config_t cfg;
    wg_payload_config_init(&cfg);
    if (push_name && *push_name)
        cfg.push_name = push_name;
    if (c->paired) {
        char phone[24];
        uint32_t device;
        if (wg_creds_phone(c, phone, sizeof(phone), &device) != 0)
            return WG_EINVAL;
        return wg_payload_build_login(&cfg, strtoull(phone, NULL, 10), device, out, len);
    }
    wg_payload_reg_t reg = {.registration_id = c->registration_id,
                            .signed_prekey_id = c->signed_prekey_id};
    memcpy(reg.identity_pub, c->identity.pub, 32);
    memcpy(reg.signed_prekey_pub, c->signed_prekey.pub, 32);
    memcpy(reg.signed_prekey_sig, c->signed_prekey_sig, 64);
    return wg_payload_build_registration(&cfg, &reg, out, len);
}
