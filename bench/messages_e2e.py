"""messages_e2e.py - inbound messages end to end, run by bench/messages (see there and
bench/README.md): `wagate sandbox` + `wagate serve` + bench/events_recv.c on loopback.

K instances are linked to K sandbox phones (the owners) by QR, each with a webhook URL on the
receiver; S other sandbox phones (the senders) send texts to the owners through the sandbox
control API (POST /phones/{n}/messages), S threads with one keep-alive connection each. Message
i goes from sender i % S to owner i % K with the text "bench <i> <ns>", ns being the send time
(CLOCK_REALTIME) taken just before the control request. The sandbox encrypts it for the owner's
devices (the phone itself and the linked gateway) and routes it; the gateway decrypts it,
commits message.received to its outbox, sends the receipt, and delivers the event to the
receiver's webhook URL. The receiver parses the text out of each webhook body and records
receipt - send.

Phases: a warm-up (the first message of each sender/owner pair: the pkmsg that builds the
session), a burst of M messages sent as fast as the sandbox takes them, then P messages paced
at R/s. Per phase: the send rate the sandbox accepted, messages/s committed to the outbox (the
rows' created_at) and delivered to the webhook (first send to last receipt), p50/p99 latency
send -> commit and send -> webhook, CPU seconds per process, and that every message arrived
once (unique seqs, duplicate deliveries, outbox rows); exit 1 otherwise.

Usage: python3 bench/messages_e2e.py [M=5000] [K=10] [S=4] [P=500] [R=50]
"""
import http.client
import json
import os
import subprocess
import sys
import threading
import time
from math import gcd

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
from harness import Server, free_port  # noqa: E402
from test_link import Sandbox  # noqa: E402

ADMIN = "wga_bench_messages_admin_key_0123456789"
FIRST_PHONE = 5531900000000


def log(msg):
    print("messages: " + msg, flush=True)


class Ctl:
    """One keep-alive connection to the sandbox control API."""

    def __init__(self, port):
        self.port = port
        self.conn = None

    def call(self, method, path, body=None):
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            try:
                data = json.dumps(body).encode() if body is not None else None
                self.conn.request(method, path, body=data,
                                  headers={"Content-Type": "application/json"})
                resp = self.conn.getresponse()
                raw = resp.read()
                return resp.status, (json.loads(raw) if raw else None)
            except (http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = None
                if attempt:
                    raise
        return None, None


def cpu_s(pid):
    """User + system CPU seconds of a process so far."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def recv_stats(port, query=""):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.request("GET", "/stats?" + query)
        return json.loads(c.getresponse().read())
    finally:
        c.close()


def wait_for(fn, what, timeout, srv=None, sb=None):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if fn():
            return
        time.sleep(0.05)
    tail = srv.stderr()[-3000:] if srv else ""
    raise SystemExit("messages: timed out waiting for %s\n%s" % (what, tail))


def sandbox_log(sb):
    with open(os.path.join(sb.tmpdir, "stderr.log"), "rb") as f:
        return f.read().decode("utf-8", "replace")


def srv_version(srv):
    out = subprocess.run([srv.binary, "version"], capture_output=True, text=True).stdout
    return out.split()[1] if len(out.split()) > 1 else "?"


def link(srv, sb, name, phone, hook):
    st, _, js = srv.request("POST", "/v1/instances", {"name": name, "webhookUrl": hook},
                            token=ADMIN, timeout=30)
    if st != 201:
        raise SystemExit("messages: create %s: %s %s" % (name, st, js))
    inst = js["data"]
    st, js = sb.api("POST", "/phones/%s/scan" % phone, {"qr": inst["qrCode"]["code"]})
    if st != 200:
        raise SystemExit("messages: scan %s: %s %s" % (name, st, js))
    dev = js["deviceJid"].split("@")[0]

    def working():
        st, _, js = srv.request("GET", "/v1/instances/" + inst["id"], token=ADMIN)
        return st == 200 and js["data"]["status"] == "WORKING"
    wait_for(working, "%s WORKING" % name, 30, srv)
    # peers can build sessions with the device once its prekeys are uploaded
    wait_for(lambda: ("%s uploaded" % dev) in sandbox_log(sb), "%s prekey upload" % dev, 30, srv)
    return inst["id"]


def pct(v, p):
    return v[int(p * (len(v) - 1) + 0.5)] if v else 0.0


class Bench:
    def __init__(self, sb, srv, recv, rport, owners, senders):
        self.sb, self.srv, self.recv, self.rport = sb, srv, recv, rport
        self.owners, self.senders = owners, senders
        self.sent_ns = {}

    def phase(self, label, seq0, m, rate=None):
        """Sends seqs seq0 .. seq0+m-1 (as fast as the control API takes them, or paced at
        rate/s over all senders), waits until all are at the webhook, prints the figures.
        Returns False if any was lost or duplicated."""
        sb, srv, s, k = self.sb, self.srv, len(self.senders), len(self.owners)
        procs = {"gateway": srv.proc.pid, "sandbox": sb.proc.pid, "receiver": self.recv.pid}
        cpu0 = {name: cpu_s(pid) for name, pid in procs.items()}
        me0 = sum(os.times()[:2])
        errors = []
        start = time.time_ns() + 50 * 1000000

        def sender(j):
            ctl = Ctl(sb.ctl_port)
            for i in range(seq0 + j, seq0 + m, s):
                if rate:
                    wait = (start + (i - seq0) * 1e9 / rate - time.time_ns()) / 1e9
                    if wait > 0:
                        time.sleep(wait)
                ns = time.time_ns()
                self.sent_ns[i] = ns
                st, js = ctl.call("POST", "/phones/%s/messages" % self.senders[j],
                                  {"to": self.owners[i % k], "text": "bench %d %d" % (i, ns)})
                if st != 200:
                    errors.append((i, st, js))
                    return

        threads = [threading.Thread(target=sender, args=(j,)) for j in range(s)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        sent_done = time.time_ns()
        if errors:
            raise SystemExit("messages: send failed: %r" % (errors[:3],))
        first_send = min(self.sent_ns[i] for i in range(seq0, seq0 + m))
        q = "from=%d&to=%d" % (seq0, seq0 + m)
        last = [None, time.time()]

        def done():
            st = recv_stats(self.rport, q)
            if st["unique"] != last[0]:
                last[0], last[1] = st["unique"], time.time()
            elif time.time() - last[1] > 60:
                raise SystemExit("messages: stuck at %d of %d delivered for 60 s" % (
                    st["unique"], m))
            return st["unique"] >= m
        wait_for(done, "all %d messages at the webhook" % m, 900, srv)
        cpu = {name: cpu_s(pid) - cpu0[name] for name, pid in procs.items()}
        cpu["this script"] = sum(os.times()[:2]) - me0
        time.sleep(1.0)  # late duplicates would show up here
        st = recv_stats(self.rport, q)
        # the engine's part: when each message.received row was committed (created_at, ms)
        commit = []
        for created, payload in srv.db_rows("SELECT created_at, payload FROM outbox WHERE "
                                            "event = 'message.received'"):
            seq = int(json.loads(payload)["message"]["text"].split()[1])
            if seq0 <= seq < seq0 + m:
                commit.append((created, created - self.sent_ns[seq] / 1e6))
        how = "paced at %d/s" % rate if rate else "as fast as the sandbox takes them"
        log("%s: %d messages, %s, %d senders -> %d instances" % (label, m, how, s, k))
        log("  sent (sandbox control API accepted): %.2f s, %.0f/s" % (
            (sent_done - first_send) / 1e9, m / ((sent_done - first_send) / 1e9)))
        cl = sorted(c[1] for c in commit)
        csecs = (max(c[0] for c in commit) - first_send / 1e6) / 1e3
        log("  committed to the outbox: %.0f messages/s (first send to last commit %.2f s); "
            "send -> commit p50 %.1f ms, p99 %.1f ms" % (len(cl) / csecs, csecs, pct(cl, 0.5),
                                                        pct(cl, 0.99)))
        secs = (st["last_ns"] - first_send) / 1e9
        log("  delivered to the webhook: %.0f messages/s (first send to last receipt %.2f s); "
            "send -> webhook p50 %.1f ms, p99 %.1f ms, max %.1f ms" % (
                st["unique"] / secs, secs, st["p50_us"] / 1000, st["p99_us"] / 1000,
                st["max_us"] / 1000))
        log("  CPU seconds meanwhile: %s" % ", ".join("%s %.1f" % kv for kv in cpu.items()))
        lost = m - st["unique"]
        log("  unique at the webhook %d of %d, lost %d, duplicate deliveries %d, outbox rows %d"
            % (st["unique"], m, lost, st["dups"], len(commit)))
        if lost or st["dups"] or len(commit) != m:
            log("FAIL: %s: lost %d, duplicates %d, outbox rows %d (want %d)" % (
                label, lost, st["dups"], len(commit), m))
            warn = [ln for ln in srv.stderr().splitlines() if " warn " in ln or " error " in ln]
            log("gateway warnings and errors (%d, the last 20):\n%s" % (
                len(warn), "\n".join(warn[-20:])))
            return False
        return True


def main():
    m = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    k = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    s = int(sys.argv[3]) if len(sys.argv) > 3 else 4
    paced = int(sys.argv[4]) if len(sys.argv) > 4 else 500
    rate = int(sys.argv[5]) if len(sys.argv) > 5 else 50
    rport = free_port()
    recv = subprocess.Popen([os.path.join(HERE, "..", "build", "bench", "events_recv"),
                             str(rport)])
    sb = srv = None
    ok = True
    try:
        sb = Sandbox().start()
        srv = Server(env={"WAGATE_ADMIN_KEY": ADMIN, "WAGATE_WA_URL": sb.url(),
                          "WAGATE_WA_ROOT_KEY": sb.root, "WAGATE_WEBHOOK_ALLOW_PRIVATE": "1",
                          "WAGATE_RATE_CREATE": "0", "WAGATE_RATE_WRITE": "0",
                          "WAGATE_RATE_READ": "0", "WAGATE_LOG_LEVEL": "warn"}).start()
        hook = "http://127.0.0.1:%d/hook" % rport
        phones = [str(FIRST_PHONE + i) for i in range(k + s)]
        for i, n in enumerate(phones):
            st, js = sb.api("POST", "/phones", {"number": n, "pushName": "bench%d" % i})
            if st != 201:
                raise SystemExit("messages: phone %s: %s %s" % (n, st, js))
        t0 = time.time()
        for i in range(k):
            link(srv, sb, "bench-%d" % i, phones[i], hook)
        log("wagate %s, %d cores (shared), %d instances linked to the sandbox in %.1f s, "
            "webhook receiver on loopback" % (srv_version(srv), os.cpu_count() or 1, k,
                                              time.time() - t0))
        b = Bench(sb, srv, recv, rport, phones[:k], phones[k:])
        # every sender/owner pair's first message is a pkmsg that builds the session: warm up
        # with one message per pair so both phases measure established sessions (msg)
        pairs = k * s // gcd(k, s)
        ok = b.phase("warm-up (first message of each sender/owner pair)", 0, pairs) and ok
        if m:
            ok = b.phase("burst", pairs, m) and ok
        if paced:
            ok = b.phase("paced", pairs + m, paced, rate) and ok
    finally:
        if srv:
            srv.cleanup()
        if sb:
            sb.cleanup()
        recv.kill()
        recv.wait()
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
