"""api.py - run by bench/api (see there and bench/README.md): HTTP API throughput with wrk on
loopback against its own `wagate serve` (temp database, log level warn, every rate limit off:
WAGATE_RATE_CREATE/WRITE/READ=0) and its own `wagate sandbox`.

Setup: one account (plan enterprise) with 10 instances; the first is linked by QR to sandbox
phone A, the others stay unlinked (SCAN_QR_CODE). Phone B is the recipient of the sends.
Routes, one wrk run each, with the account's API key:
  GET  /health
  GET  /v1/instances/{id}          (the linked instance)
  GET  /v1/instances?limit=10      (one page of the 10)
  POST /v1/instances/{id}/messages {"to": B, "text": "bench api <n>"} (bench/api_post.lua)
The POST is a real send: the engine looks up B's devices, encrypts for each, sends the
<message> to the sandbox, and the request is answered only when the server acked it
(deferred ack); afterwards the script counts the texts that phone B decrypted.
Prints one "bench: <route> <req/s> req/s p99=<latency>" line per route.

Usage: python3 bench/api.py [seconds=10] [connections=64] [wrk threads=1]
"""
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
from harness import Server  # noqa: E402
from test_link import Sandbox  # noqa: E402

ADMIN = "wga_bench_api_admin_key_0123456789abcdef"
PHONE_A, PHONE_B = "5531800000001", "5531800000002"


def load():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def cpu_s(pid):
    """User + system CPU seconds of a process so far."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wrk(label, secs, conns, threads, url, key, script=None, env=None):
    # --timeout 30s: a slow answer (a send waiting for its ack) counts in the latency instead of
    # being dropped as a wrk timeout at 2 s
    cmd = ["wrk", "-t%d" % threads, "-c%d" % conns, "-d%ds" % secs, "--latency", "--timeout",
           "30s", "-H", "Authorization: Bearer " + key]
    if script:
        cmd += ["-s", script]
    out = subprocess.run(cmd + [url], capture_output=True, text=True,
                         env=dict(os.environ, **(env or {}))).stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p99 = re.search(r"^\s*99%\s+(\S+)", out, re.M)
    reqs = re.search(r"(\d+) requests in", out)
    extra = " ".join(m.group(0) for m in re.finditer(r"(Non-2xx or 3xx responses: \d+|"
                                                     r"Socket errors:[^\n]*)", out))
    if not rps or not p99:
        raise SystemExit("bench: wrk output not understood:\n" + out)
    print("bench: %s %s req/s p99=%s (%s requests in %d s) %s" % (
        label, rps.group(1), p99.group(1), reqs.group(1) if reqs else "?", secs, extra),
        flush=True)
    return int(reqs.group(1)) if reqs else 0, extra


def main():
    secs = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    conns = int(sys.argv[2]) if len(sys.argv) > 2 else 64
    threads = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    sb = srv = None
    try:
        sb = Sandbox().start()
        srv = Server(env={"WAGATE_ADMIN_KEY": ADMIN, "WAGATE_WA_URL": sb.url(),
                          "WAGATE_WA_ROOT_KEY": sb.root, "WAGATE_RATE_CREATE": "0",
                          "WAGATE_RATE_WRITE": "0", "WAGATE_RATE_READ": "0",
                          "WAGATE_LOG_LEVEL": "warn"}).start()
        for n, name in ((PHONE_A, "A"), (PHONE_B, "B")):
            st, js = sb.api("POST", "/phones", {"number": n, "pushName": name})
            assert st == 201, (st, js)
        st, _, js = srv.request("POST", "/v1/accounts", {"name": "bench", "plan": "enterprise"},
                                token=ADMIN)
        assert st == 201, (st, js)
        key = js["data"]["apiKey"]
        st, _, js = srv.request("POST", "/v1/instances", {"name": "bench-linked"}, token=key,
                                timeout=30)
        assert st == 201, (st, js)
        iid = js["data"]["id"]
        st, js = sb.api("POST", "/phones/%s/scan" % PHONE_A, {"qr": js["data"]["qrCode"]["code"]})
        assert st == 200, (st, js)
        dev = js["deviceJid"].split("@")[0]
        deadline = time.time() + 30
        while True:
            st, _, js = srv.request("GET", "/v1/instances/" + iid, token=key)
            with open(os.path.join(sb.tmpdir, "stderr.log"), "rb") as f:
                uploaded = ("%s uploaded" % dev).encode() in f.read()
            if js["data"]["status"] == "WORKING" and uploaded:
                break
            if time.time() > deadline:
                raise SystemExit("bench: the instance did not link:\n" + srv.stderr()[-3000:])
            time.sleep(0.05)
        for i in range(9):
            st, _, js = srv.request("POST", "/v1/instances", {"name": "bench-%d" % i}, token=key,
                                    timeout=30)
            assert st == 201, (st, js)
        # one send first, so the session with B exists (the first message is a pkmsg)
        st, _, js = srv.request("POST", "/v1/instances/%s/messages" % iid,
                                {"to": PHONE_B, "text": "warm up"}, token=key, timeout=30)
        assert st == 200, (st, js)
        ver = subprocess.run([srv.binary, "version"], capture_output=True, text=True).stdout
        print("bench: wagate %s, wrk -t%d -c%d -d%ds, %d cores (shared), WAGATE_HTTP_THREADS=%s, "
              "rate limits off, 10 instances (1 linked to the sandbox)" % (
                  ver.split()[1] if len(ver.split()) > 1 else "?", threads, conns, secs,
                  os.cpu_count() or 1, os.environ.get("WAGATE_HTTP_THREADS", "2")), flush=True)
        print("bench: load average %s before the runs" % load(), flush=True)
        base = "http://127.0.0.1:%d" % srv.port
        wrk("GET /health", secs, conns, threads, base + "/health", key)
        wrk("GET /v1/instances/{id}", secs, conns, threads, base + "/v1/instances/" + iid, key)
        wrk("GET /v1/instances", secs, conns, threads, base + "/v1/instances?limit=10", key)
        cpu0 = (cpu_s(srv.proc.pid), cpu_s(sb.proc.pid))
        n, extra = wrk("POST /v1/instances/{id}/messages", secs, conns, threads,
                       base + "/v1/instances/%s/messages" % iid, key,
                       script=os.path.join(HERE, "api_post.lua"), env={"BENCH_TO": PHONE_B})
        cpu = (cpu_s(srv.proc.pid) - cpu0[0], cpu_s(sb.proc.pid) - cpu0[1])
        # what phone B decrypted of them (answered requests; a send still in flight when wrk
        # stopped may arrive too)
        time.sleep(2)
        st, inbox = sb.api("GET", "/phones/%s/messages" % PHONE_B)
        got = len([m for m in inbox if m["text"].startswith("bench api ")])
        print("bench: POST messages: %d requests answered by wrk's end, %d texts decrypted by the "
              "recipient phone (sandbox)%s; CPU seconds during the run: wagate %.1f, sandbox %.1f"
              % (n, got, "; " + extra if extra else "", cpu[0], cpu[1]), flush=True)
        print("bench: load average %s after the runs" % load(), flush=True)
    finally:
        if srv:
            srv.cleanup()
        if sb:
            sb.cleanup()


if __name__ == "__main__":
    main()
