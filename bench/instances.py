"""instances.py - `bench/instances N [ws|wss|both]`: N linked instances on one gateway (issue 8).

For each transport (ws://, and wss:// with a self-signed certificate the gateway trusts through
SSL_CERT_FILE), in a temp dir that is removed at the end:

  1. start `wagate sandbox` and create N phones through its control API;
  2. start `wagate serve` (admin key, rate limits and plan limits off) and read its RSS with no
     instance: the baseline;
  3. link: create N instances (POST /v1/instances answers with the first QR) and scan each QR
     with its own phone (POST /phones/{n}/scan), CONCURRENCY at a time, until every instance is
     WORKING (the instances table, as tests/integration/test_link.py reads it): the link time;
  4. RSS right after linking, then the CPU time (utime + stime from /proc/<pid>/stat) of both
     processes over IDLE_SECONDS of idleness (keepalives only) and the RSS after it;
  5. reconnect storm: POST /control/drop, time until every instance has written a new
     connection.updated WORKING event (outbox rows after the drop);
  6. gateway restart: SIGTERM, start again on the same database, time (from the start of the new
     process) until every instance has logged in again, and its RSS then.

Per instance = (RSS - baseline with 0 instances) / N. RSS is VmRSS from /proc/<pid>/status,
peak VmHWM. The last lines are a Markdown table, and one "RESULT ..." line per transport that
bench/compare reads.

Environment: IDLE_SECONDS (60), CONCURRENCY (32), PREKEYS (WAGATE_WA_PREKEYS_INITIAL, default:
the gateway's own, 812), WAGATE_BIN (build/wagate), WORKERS (WAGATE_WORKERS, default 0 = one
per core), KEEP=1 keeps the temp dir.
"""
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.dont_write_bytecode = True  # write nothing into the repository (no __pycache__)
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
from harness import Server, free_port, http_request  # noqa: E402

ADMIN = "wga_bench_instances_admin_key_0123456789"
IDLE_SECONDS = float(os.environ.get("IDLE_SECONDS", "60"))
CONCURRENCY = int(os.environ.get("CONCURRENCY", "32"))
TICK = os.sysconf("SC_CLK_TCK")


def log(msg):
    print(msg, flush=True)


# ------------------------------------------------------------------ /proc readers
def proc_status(pid):
    """VmRSS, VmHWM (KiB) and thread count of a process."""
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM"):
                out[k] = int(v.split()[0])
            elif k == "Threads":
                out[k] = int(v)
    return out


def cpu_seconds(pid):
    """utime + stime of a process (all its threads), in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # fields 14 and 15 of stat(5)


def nfds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def raise_nofile(n):
    """Soft RLIMIT_NOFILE to what n connections need (the children inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = n + 1024
    if soft != resource.RLIM_INFINITY and soft < want:
        if hard != resource.RLIM_INFINITY and hard < want:
            sys.exit("bench/instances: N=%d needs ulimit -n >= %d, the hard limit is %d"
                     % (n, want, hard))
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


# ------------------------------------------------------------------ the sandbox
class Sandbox:
    def __init__(self, tmp, binary, tls):
        self.tmp, self.binary, self.tls = tmp, binary, tls
        self.ws_port, self.ctl_port = free_port(), free_port()
        self.cert = os.path.join(tmp, "cert.pem")
        self.proc = None

    def start(self):
        args = [self.binary, "sandbox", "--listen", "127.0.0.1:%d" % self.ws_port,
                "--control", "127.0.0.1:%d" % self.ctl_port,
                "--state", os.path.join(self.tmp, "sandbox.db"),
                "--root-key-out", os.path.join(self.tmp, "root.hex")]
        if self.tls:
            key = os.path.join(self.tmp, "key.pem")
            subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                            "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out",
                            self.cert, "-days", "2", "-subj", "/CN=127.0.0.1", "-addext",
                            "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
            args += ["--tls-cert", self.cert, "--tls-key", key]
        env = dict(os.environ, WAGATE_LOG_LEVEL="warn")
        self.err = open(os.path.join(self.tmp, "sandbox.log"), "ab")
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=self.err,
                                     cwd=self.tmp, env=env)
        deadline = time.time() + 15
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("sandbox exited %s" % self.proc.returncode)
            try:
                if self.api("GET", "/health", timeout=1)[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.05)
        else:
            raise RuntimeError("sandbox not healthy")
        with open(os.path.join(self.tmp, "root.hex")) as f:
            self.root = f.read().strip()
        return self

    def stop(self):
        if self.proc:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None
            self.err.close()

    def api(self, method, path, body=None, timeout=60):
        st, _, js = http_request("127.0.0.1", self.ctl_port, method, path, body, timeout=timeout)
        return st, js

    def url(self):
        return "%s://127.0.0.1:%d/ws/chat" % ("wss" if self.tls else "ws", self.ws_port)


def parallel(n, fn, workers=CONCURRENCY):
    """fn(i) for i in range(n) on `workers` threads; raises the first error."""
    errors = []
    lock = threading.Lock()
    nxt = [0]

    def run():
        while not errors:
            with lock:
                i = nxt[0]
                nxt[0] += 1
            if i >= n:
                return
            try:
                fn(i)
            except Exception as e:  # noqa: BLE001 - re-raised below
                errors.append("item %d: %r" % (i, e))
    threads = [threading.Thread(target=run) for _ in range(min(workers, n))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError(errors[0])


def wait_until(what, fn, timeout, procs=()):
    """Polls fn() until it returns True; fails at once if one of procs (Server/Sandbox) died."""
    deadline = time.time() + timeout
    while True:
        for p in procs:
            if p.proc and p.proc.poll() is not None:
                raise RuntimeError("%s: %s exited with status %s" % (
                    what, os.path.basename(p.proc.args[1]), p.proc.returncode))
        v = fn()
        if v is True:
            return
        if time.time() > deadline:
            raise RuntimeError("timeout after %d s: %s (%s)" % (timeout, what, v))
        time.sleep(0.1)


# ------------------------------------------------------------------ one run
def run(n, tls, binary):
    mode = "wss" if tls else "ws"
    tmp = tempfile.mkdtemp(prefix="wagate-bench-instances-")
    sb = srv = None
    r = {"mode": mode, "n": n}
    try:
        # a private copy of the binary: another `make` in the tree cannot swap it mid-run
        shutil.copy(binary, os.path.join(tmp, "wagate"))
        binary = os.path.join(tmp, "wagate")
        sb = Sandbox(tmp, binary, tls).start()
        phones = [str(5519000000000 + i) for i in range(n)]

        def phone(i):
            st, js = sb.api("POST", "/phones", {"number": phones[i], "pushName": "Bench"})
            if st != 201:
                raise RuntimeError("POST /phones: %s %s" % (st, js))
        t = time.time()
        parallel(n, phone)
        log("%s: %d sandbox phones in %.1f s" % (mode, n, time.time() - t))

        env = {"WAGATE_ADMIN_KEY": ADMIN, "WAGATE_WA_URL": sb.url(),
               "WAGATE_WA_ROOT_KEY": sb.root, "WAGATE_LOG_LEVEL": "warn",
               "WAGATE_RATE_CREATE": "0", "WAGATE_RATE_WRITE": "0", "WAGATE_RATE_READ": "0",
               "WAGATE_PLAN_LIMITS": "free=0,starter=0,pro=0,enterprise=0",
               "WAGATE_WORKERS": os.environ.get("WORKERS", "0")}
        if os.environ.get("PREKEYS"):
            env["WAGATE_WA_PREKEYS_INITIAL"] = os.environ["PREKEYS"]
        if tls:
            env["SSL_CERT_FILE"] = sb.cert  # OpenSSL's default verify paths honour it
        srv = Server(binary=binary, env=env, tmpdir=os.path.join(tmp, "gw"))
        os.makedirs(srv.tmpdir)
        srv.start()
        time.sleep(1.0)
        gw0 = proc_status(srv.proc.pid)
        sb0 = proc_status(sb.proc.pid)
        r["gw_base_kib"] = gw0["VmRSS"]
        r["sb_base_kib"] = sb0["VmRSS"]
        log("%s: baseline (0 instances) gateway RSS %d KiB, %d threads; sandbox RSS %d KiB"
            % (mode, gw0["VmRSS"], gw0["Threads"], sb0["VmRSS"]))

        def n_working():
            rows = srv.db_rows("SELECT COUNT(*) FROM instances WHERE status = 'WORKING'")
            c = rows[0][0]
            return True if c == n else "%d of %d WORKING" % (c, n)

        # -- link
        def link(i):
            st, _, js = srv.request("POST", "/v1/instances", {"name": "bench-%05d" % i},
                                    token=ADMIN, timeout=60)
            if st != 201:
                raise RuntimeError("create: %s %s" % (st, js))
            qr = (js["data"].get("qrCode") or {}).get("code")
            deadline = time.time() + 60
            while not qr:  # the 201 waits WAGATE_QR_WAIT_MS (10 s) at most: on a busy machine
                if time.time() > deadline:  # the QR may come after it
                    raise RuntimeError("no QR for instance %s" % js["data"]["id"])
                time.sleep(0.2)
                st, _, q = srv.request("GET", "/v1/instances/%s/qr" % js["data"]["id"],
                                       token=ADMIN)
                qr = st == 200 and q["data"]["code"]
            st, js = sb.api("POST", "/phones/%s/scan" % phones[i], {"qr": qr})
            if st != 200:
                raise RuntimeError("scan: %s %s" % (st, js))
        t0 = time.time()
        parallel(n, link)
        t_scanned = time.time() - t0
        wait_until("all linked", n_working, 120 + n * 0.2, (srv, sb))
        r["link_s"] = time.time() - t0
        log("%s: %d instances created and scanned in %.1f s, all WORKING after %.1f s"
            % (mode, n, t_scanned, r["link_s"]))
        # WORKING comes before the first prekey upload is done (WAGATE_WA_PREKEYS_INITIAL keys
        # per instance): wait until the stored prekeys stop growing and the gateway is quiet,
        # so that the idle figures below are idle
        prev, quiet = -1, 0
        while quiet < 2:
            c = cpu_seconds(srv.proc.pid)
            time.sleep(1.0)
            busy = cpu_seconds(srv.proc.pid) - c
            k = srv.db_rows("SELECT COUNT(*) FROM wa_prekeys")[0][0]
            quiet = quiet + 1 if k == prev and busy < 0.1 else 0
            prev = k
            if time.time() - t0 > 600 + n:
                raise RuntimeError("the gateway did not settle after linking")
        r["settled_s"] = time.time() - t0
        log("%s: settled (%d prekeys stored, gateway quiet) %.1f s after the first create"
            % (mode, prev, r["settled_s"]))
        gw1, sb1 = proc_status(srv.proc.pid), proc_status(sb.proc.pid)
        r["gw_linked_kib"] = gw1["VmRSS"]
        log("%s: after linking: gateway RSS %d KiB (peak %d), %d threads, %d fds; sandbox RSS %d KiB"
            % (mode, gw1["VmRSS"], gw1["VmHWM"], gw1["Threads"], nfds(srv.proc.pid),
               sb1["VmRSS"]))

        # -- idle
        c_gw, c_sb, t = cpu_seconds(srv.proc.pid), cpu_seconds(sb.proc.pid), time.time()
        time.sleep(IDLE_SECONDS)
        dt = time.time() - t
        r["idle_s"] = dt
        r["gw_idle_cpu_pct"] = 100 * (cpu_seconds(srv.proc.pid) - c_gw) / dt
        r["sb_idle_cpu_pct"] = 100 * (cpu_seconds(sb.proc.pid) - c_sb) / dt
        gw2, sb2 = proc_status(srv.proc.pid), proc_status(sb.proc.pid)
        r["gw_idle_kib"] = gw2["VmRSS"]
        r["gw_hwm_kib"] = gw2["VmHWM"]
        r["sb_idle_kib"] = sb2["VmRSS"]
        r["gw_threads"] = gw2["Threads"]
        log("%s: idle %.0f s: gateway CPU %.2f %% of a core, sandbox %.2f %%; gateway RSS %d KiB"
            " (peak %d), sandbox RSS %d KiB" % (mode, dt, r["gw_idle_cpu_pct"],
                                                r["sb_idle_cpu_pct"], gw2["VmRSS"],
                                                gw2["VmHWM"], sb2["VmRSS"]))
        bad = n_working()
        if bad is not True:
            raise RuntimeError("after idling: " + bad)

        # -- reconnect storm: every connection dropped at once
        def working_since(rowid):
            def check():
                c = srv.db_rows(
                    "SELECT COUNT(DISTINCT instance_id) FROM outbox WHERE rowid > ? AND "
                    "event = 'connection.updated' AND "
                    "json_extract(payload, '$.status') = 'WORKING'", (rowid,))[0][0]
                return True if c == n else "%d of %d back" % (c, n)
            return check

        def last_rowid():
            return srv.db_rows("SELECT COALESCE(MAX(rowid), 0) FROM outbox")[0][0]
        mark = last_rowid()
        t0 = time.time()
        st, js = sb.api("POST", "/control/drop")
        if st != 200:
            raise RuntimeError("drop: %s %s" % (st, js))
        wait_until("reconnect storm", working_since(mark), 300 + n * 0.1, (srv, sb))
        r["storm_s"] = time.time() - t0
        r["dropped"] = js.get("dropped")
        log("%s: reconnect storm: %s connections dropped, all WORKING again in %.1f s"
            % (mode, js.get("dropped"), r["storm_s"]))

        # -- gateway restart on the same database
        mark = last_rowid()
        srv.stop()
        t0 = time.time()
        srv.start(timeout=60)
        wait_until("restart", working_since(mark), 300 + n * 0.1, (srv, sb))
        r["restart_s"] = time.time() - t0
        time.sleep(1.0)
        gw3 = proc_status(srv.proc.pid)
        r["gw_restart_kib"] = gw3["VmRSS"]
        log("%s: gateway restart: all WORKING again in %.1f s; RSS then %d KiB (peak %d)"
            % (mode, r["restart_s"], gw3["VmRSS"], gw3["VmHWM"]))
        for k in ("linked", "idle", "restart"):
            r["per_%s_kib" % k] = (r["gw_%s_kib" % k] - r["gw_base_kib"]) / n
        r["sb_per_kib"] = (r["sb_idle_kib"] - r["sb_base_kib"]) / n
        return r
    finally:
        if srv:
            try:
                srv.stop()
            except RuntimeError as e:
                log(str(e))
        if sb:
            sb.stop()
        if os.environ.get("KEEP") == "1":
            log("kept %s" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def mib(k):
    return "%.1f" % (k / 1024)


def main():
    if len(sys.argv) < 2 or not sys.argv[1].isdigit() or int(sys.argv[1]) < 1:
        sys.exit("usage: bench/instances N [ws|wss|both]")
    n = int(sys.argv[1])
    which = sys.argv[2] if len(sys.argv) > 2 else "both"
    modes = {"ws": [False], "wss": [True], "both": [False, True]}.get(which)
    if modes is None:
        sys.exit("usage: bench/instances N [ws|wss|both]")
    binary = os.environ.get("WAGATE_BIN") or os.path.join(REPO, "build", "wagate")
    raise_nofile(n)
    log("bench/instances: N=%d, %d cores, load %s, idle %g s, ulimit -n %d"
        % (n, os.cpu_count(), " ".join("%.2f" % x for x in os.getloadavg()), IDLE_SECONDS,
           resource.getrlimit(resource.RLIMIT_NOFILE)[0]))
    results = [run(n, tls, binary) for tls in modes]
    log("")
    log("| mode | N | gateway RSS: 0 inst / linked / idle / after restart (MiB) | peak (MiB) "
        "| per instance: linked / idle / after restart (KiB) | threads | sandbox RSS idle (MiB) "
        "| link (s) | idle CPU gateway / sandbox (% of a core) | reconnect storm (s) "
        "| restart (s) |")
    log("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        log("| %s | %d | %s / %s / %s / %s | %s | %.1f / %.1f / %.1f | %d | %s | %.1f | %.2f / %.2f "
            "| %.1f | %.1f |" % (
                r["mode"], r["n"], mib(r["gw_base_kib"]), mib(r["gw_linked_kib"]),
                mib(r["gw_idle_kib"]), mib(r["gw_restart_kib"]), mib(r["gw_hwm_kib"]),
                r["per_linked_kib"], r["per_idle_kib"], r["per_restart_kib"], r["gw_threads"],
                mib(r["sb_idle_kib"]), r["link_s"], r["gw_idle_cpu_pct"], r["sb_idle_cpu_pct"],
                r["storm_s"], r["restart_s"]))
    for r in results:
        log("RESULT wagate " + " ".join(
            "%s=%s" % (k, ("%.2f" % v) if isinstance(v, float) else v) for k, v in r.items()))
    # The design target of issue 8: at most 64 KiB per idle linked instance. Below N = 1000 the
    # gateway's fixed costs that grow with the database (SQLite's page cache, up to 2 MiB on each
    # of its connections, filled by N x 812 prekeys) are a large part of (RSS - baseline) / N:
    # only said, not failed.
    over = [r["mode"] for r in results if r["per_idle_kib"] > 64]
    if over:
        log("bench/instances: above 64 KiB per idle linked instance: %s%s" % (
            ", ".join(over), "" if n >= 1000 else " (N < 1000: fixed costs weigh in)"))
        return 1 if n >= 1000 else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
