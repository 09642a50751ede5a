/* messages.c - the inbound message path on one core. A second in-process Signal party (the
 * "phone", as in tests/unit/test_recv.c) encrypts N text messages (pkmsg first, then msg) into
 * real <message> stanzas, binary-encoded as they come off the wire, for an instance whose
 * Signal state lives in a real SQLite store (temp file, values sealed with a master key, behind
 * the same cache + stage as wa/conn.c's ensure_signal). Timed, per message, is what conn.c does
 * (noise_frame -> on_message), through conn.c's own functions: wg_binary_decode, then
 * wg_conn_recv_commit (stage begin, wg_recv_message: parse, decrypt, unpad, protobuf decode,
 * event JSON; then in one store transaction wg_store_event_append_once and
 * wg_signal_stage_commit: one commit), then the receipt node
 * (wg_conn_receipt_build + wg_binary_encode; the Noise frame and the socket are not part of
 * it). Encryption on the phone's side is done before the clock starts.
 * At the end the outbox must hold exactly N distinct message.received events, or it fails.
 * Built and run by bench/messages. Usage: messages [N, default 20000] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "store/store.h"
#include "util/buf.h"
#include "util/err.h"
#include "wa/binary.h"
#include "wa/conn.h"
#include "wa/creds.h"
#include "wa/msg.h"
#include "wa/recv.h"
#include "wa/signal.h"
#include "wa/signal_stage.h"
#include "wa/stanza.h"

#define GW_JID "222:3@s.whatsapp.net" /* the instance: a linked device of 222 */
#define PHONE_DEV "111:2@s.whatsapp.net"
#define INST "inst_bench"

static double clk(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
static double now(void)
{
    return clk(CLOCK_MONOTONIC);
}
static double cpu(void)
{
    return clk(CLOCK_PROCESS_CPUTIME_ID);
}
static double sys_time(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

#define DIE(...)                                                                                   \
    do {                                                                                           \
        fprintf(stderr, "messages: " __VA_ARGS__);                                                 \
        fputc('\n', stderr);                                                                       \
        exit(1);                                                                                   \
    } while (0)

static void keys_of(const wg_creds_t *c, wg_signal_keys_t *k)
{
    k->registration_id = c->registration_id;
    k->identity = c->identity;
    k->signed_prekey_id = c->signed_prekey_id;
    k->signed_prekey = c->signed_prekey;
    memcpy(k->signed_prekey_sig, c->signed_prekey_sig, sizeof(k->signed_prekey_sig));
}

/* One text stanza from the phone, encrypted and binary-encoded into *wire. */
static void seal_stanza(wg_signal_t *phone, size_t i, wg_buf_t *wire, wg_signal_type_t *type)
{
    wg_signal_addr_t gw;
    uint8_t *m = NULL, *pad = NULL, *ct = NULL;
    size_t mn = 0, pn = 0, cn = 0;
    char text[64], id[32];
    snprintf(text, sizeof(text), "benchmark message %zu", i);
    snprintf(id, sizeof(id), "3EB0%016zX", i);
    if (wg_signal_addr_from_jid(GW_JID, &gw) != 0 ||
        wg_msg_build_text(text, NULL, NULL, 0, &m, &mn) != 0 ||
        wg_msg_pad(m, mn, 0, &pad, &pn) != 0 ||
        wg_signal_encrypt(phone, &gw, pad, pn, type, &ct, &cn) != 0)
        DIE("encrypt %zu failed", i);
    wg_node_t *n = wg_node_new("message");
    wg_node_set_attr(n, "id", id);
    wg_node_set_attr_jid(n, "from", PHONE_DEV);
    wg_node_set_attr(n, "t", "1700000001");
    wg_node_set_attr(n, "type", "text");
    wg_node_set_attr(n, "notify", "Alice");
    wg_node_t *e = wg_node_add_new(n, "enc");
    wg_node_set_attr(e, "v", "2");
    wg_node_set_attr(e, "type", wg_signal_type_name(*type));
    wg_node_set_bytes(e, ct, cn);
    wg_buf_init(wire, 0);
    if (wg_binary_encode(n, wire) != 0)
        DIE("encode %zu failed", i);
    wg_node_free(n);
    free(m);
    free(pad);
    free(ct);
}

typedef struct {
    wg_store_t *st;
    wg_signal_t *sig;
    wg_signal_storage_t *stage;
    size_t receipt_bytes;
} gw_t;

/* What conn.c's noise_frame + on_message do with one inbound frame: binary decode, then the
 * engine's own wg_conn_recv_commit (stage, decrypt, append once, commit) and
 * wg_conn_receipt_build, encoded as it would go out (minus the Noise frame and the socket). */
static void handle(gw_t *g, const uint8_t *p, size_t len)
{
    wg_node_t *node = NULL;
    wg_recv_env_t env = {.sig = g->sig, .own_jid = GW_JID, .own_lid = "", .groups_ignore = 0};
    wg_recv_result_t r;
    int rv;
    if (wg_binary_decode(p, len, NULL, &node) != 0)
        DIE("binary decode failed");
    if ((rv = wg_conn_recv_commit(g->st, INST, g->stage, &env, node, &r)) != 0)
        DIE("recv: %s", wg_strerror(rv));
    if (r.reply != WG_RECV_RECEIPT || !r.event || strcmp(r.event, "message.received"))
        DIE("message %s not received (reply %d, payload %s)", r.in.id, (int)r.reply,
            r.payload ? r.payload : "-");
    wg_node_t *rn = NULL;
    wg_buf_t b;
    wg_buf_init(&b, 0);
    if (wg_conn_receipt_build(&r.in, r.receipt_type, 0, &rn) != 0 || wg_binary_encode(rn, &b) != 0)
        DIE("receipt failed");
    g->receipt_bytes += b.len;
    wg_buf_dispose(&b);
    wg_node_free(rn);
    wg_recv_result_dispose(&r);
    wg_node_free(node);
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

int main(int argc, char **argv)
{
    size_t n = argc > 1 ? (size_t)strtoul(argv[1], NULL, 10) : 20000;
    char path[256];
    uint8_t master[32];
    wg_creds_t gc, pc;
    wg_signal_keys_t k;
    wg_signal_storage_t *db = NULL, *cache = NULL, *pst = NULL;
    wg_signal_t *phone = NULL;
    gw_t g = {0};
    int rv;
    if (n < 2)
        n = 2;
    if (sodium_init() < 0)
        DIE("sodium_init");
    randombytes_buf(master, sizeof(master));
    snprintf(path, sizeof(path), "%s/wg_bench_messages_%d.db",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", (int)getpid());
    if ((rv = wg_store_open(path, &g.st)) != 0)
        DIE("store open %s: %s", path, wg_strerror(rv));
    wg_account_t a = {.id = "acc_bench", .name = "bench", .plan = "free", .created_at = 1,
                      .updated_at = 1};
    wg_instance_t in = {0};
    const char *conflict = NULL;
    in.id = INST;
    in.owner_id = "acc_bench";
    in.name = "bench";
    in.status = "CONNECTED";
    in.created_at = in.updated_at = wg_store_now_ms();
    wg_store_event_t cev = {"connection.updated", "{\"status\":\"CONNECTED\"}"};
    if (wg_store_account_insert(g.st, &a, NULL) != 0 ||
        wg_store_instance_insert(g.st, &in, "tok_bench", 0, &cev, &conflict) != 0)
        DIE("instance insert failed");

    /* the instance's Signal state as conn.c's ensure_signal builds it */
    if (wg_creds_generate(&gc) != 0 || wg_creds_generate(&pc) != 0)
        DIE("creds");
    if ((rv = wg_signal_storage_db_new(g.st, INST, master, &db)) != 0 ||
        (rv = wg_signal_storage_cache_new(db, 512, 1u << 20, &cache)) != 0 ||
        (rv = wg_signal_stage_new(cache, &g.stage)) != 0)
        DIE("signal storage: %s", wg_strerror(rv));
    keys_of(&gc, &k);
    if ((rv = wg_signal_new(&k, g.stage, &g.sig)) != 0)
        DIE("signal: %s", wg_strerror(rv));
    /* the phone: in memory */
    keys_of(&pc, &k);
    if (wg_signal_storage_mem_new(&pst) != 0 || wg_signal_new(&k, pst, &phone) != 0)
        DIE("phone signal");
    wg_creds_wipe(&gc);
    wg_creds_wipe(&pc);

    /* the phone fetches the instance's bundle (one-time prekey 1, sealed in the store) */
    wg_signal_bundle_t b;
    wg_signal_addr_t gwa, pha;
    if ((rv = wg_signal_prekeys_generate(g.sig, 1, 1, NULL)) != 0 ||
        (rv = wg_signal_own_bundle(g.sig, 1, &b)) != 0 ||
        (rv = wg_signal_addr_from_jid(GW_JID, &gwa)) != 0 ||
        (rv = wg_signal_addr_from_jid(PHONE_DEV, &pha)) != 0 ||
        (rv = wg_signal_process_bundle(phone, &gwa, &b)) != 0)
        DIE("bundle: %s", wg_strerror(rv));

    wg_buf_t *wire = calloc(n, sizeof(*wire));
    wg_signal_type_t t;
    double timed = 0, t0, c0, s0, cpu_used = 0, sys_used = 0;
    size_t bytes = 0;
    if (!wire)
        DIE("oom");
    /* message 0: the pkmsg that creates the session */
    seal_stanza(phone, 0, &wire[0], &t);
    if (t != WG_SIGNAL_PKMSG)
        DIE("first message is not a pkmsg");
    t0 = now();
    c0 = cpu();
    s0 = sys_time();
    handle(&g, wire[0].data, wire[0].len);
    cpu_used += cpu() - c0;
    sys_used += sys_time() - s0;
    timed += now() - t0;
    /* the instance answers once (not timed), so the phone's session is established */
    {
        uint8_t *m = NULL, *pad = NULL, *ct = NULL, *pt = NULL;
        size_t mn = 0, pn = 0, cn = 0, ptn = 0;
        wg_signal_type_t rt;
        if (wg_msg_build_text("ok", NULL, NULL, 0, &m, &mn) != 0 ||
            wg_msg_pad(m, mn, 0, &pad, &pn) != 0 ||
            wg_signal_encrypt(g.sig, &pha, pad, pn, &rt, &ct, &cn) != 0 ||
            wg_signal_decrypt(phone, &gwa, rt, ct, cn, &pt, &ptn) != 0)
            DIE("reply failed");
        free(m);
        free(pad);
        free(ct);
        free(pt);
    }
    /* messages 1..n-1: msg (whisper) stanzas, encrypted before the clock starts */
    for (size_t i = 1; i < n; i++) {
        seal_stanza(phone, i, &wire[i], &t);
        if (t != WG_SIGNAL_MSG)
            DIE("message %zu is not a msg", i);
        bytes += wire[i].len;
    }
    t0 = now();
    c0 = cpu();
    s0 = sys_time();
    for (size_t i = 1; i < n; i++)
        handle(&g, wire[i].data, wire[i].len);
    cpu_used += cpu() - c0;
    sys_used += sys_time() - s0;
    double rest = now() - t0;
    timed += rest;

    /* every message must be in the outbox exactly once */
    size_t got = 0, other = 0;
    int64_t after = 0;
    for (;;) {
        wg_outbox_row_t *rows = NULL;
        size_t nr = 0;
        wg_outbox_query_t q = {.instance_id = INST, .after_seq = after, .limit = 1000};
        if ((rv = wg_store_outbox_query(g.st, &q, &rows, &nr)) != 0)
            DIE("outbox query: %s", wg_strerror(rv));
        for (size_t i = 0; i < nr; i++) {
            if (!strcmp(rows[i].event, "message.received"))
                got++;
            else
                other++;
            after = rows[i].seq;
        }
        wg_outbox_list_free(rows, nr);
        if (nr == 0)
            break;
    }
    for (size_t i = 0; i < n; i++)
        wg_buf_dispose(&wire[i]);
    free(wire);
    wg_signal_free(phone);
    wg_signal_free(g.sig);
    wg_store_close(g.st);
    rm_db(path);

    printf("inbound messages (decode, decrypt, unpad, protobuf, outbox row + Signal state in "
           "one commit, receipt), one core, SQLite store:\n");
    printf("  %zu messages (1 pkmsg + %zu msg, %.0f wire bytes each) in %.3f s: %.0f messages/s, "
           "%.1f us/message\n",
           n, n - 1, (double)bytes / (double)(n - 1), timed, (double)n / timed,
           timed * 1e6 / (double)n);
    printf("  established-session msg only: %.0f messages/s, %.1f us/message\n",
           (double)(n - 1) / rest, rest * 1e6 / (double)(n - 1));
    printf("  CPU time %.3f s: %.1f us/message (%.0f messages/s), of which user %.1f us, kernel "
           "%.1f us (the commits' writes and fsyncs); the rest of the wall time waits on the "
           "disk (SQLite synchronous=FULL)\n",
           cpu_used, cpu_used * 1e6 / (double)n, (double)n / cpu_used,
           (cpu_used - sys_used) * 1e6 / (double)n, sys_used * 1e6 / (double)n);
    printf("  outbox: %zu message.received events (expected %zu), %zu other\n", got, n, other);
    if (got != n) {
        fprintf(stderr, "messages: FAIL: outbox holds %zu message.received events, expected %zu\n",
                got, n);
        return 1;
    }
    return 0;
}
