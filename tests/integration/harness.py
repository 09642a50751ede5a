"""harness.py - start a real `wagate serve` and talk to it over HTTP (stdlib only).

Reusable by every integration test:

    from harness import Server
    srv = Server(env={"WAGATE_RATE_CREATE": "1000"})   # temp dir + db, free loopback port
    srv.start()                                        # waits for GET /health == 200
    st, hdrs, body = srv.request("POST", "/v1/instances", {"name": "a"}, token=srv.admin_key)
    srv.stop()                                         # SIGTERM, waits, returns the exit code
    srv.kill(); srv.start()                            # crash + restart on the same database

- Server(binary=None, env=None, tmpdir=None): binary defaults to $WAGATE_BIN or build/wagate.
  Unless env sets WAGATE_WA_URL, the server gets a refused loopback port as WhatsApp URL (no
  test reaches the internet) and WAGATE_QR_WAIT_MS=0 (creates answer at once); pass the
  sandbox's WAGATE_WA_URL / WAGATE_WA_ROOT_KEY in env to link instances.
  The server's stdout/stderr go to <tmpdir>/stdout.log and stderr.log (srv.stdout(),
  srv.stderr()). srv.admin_key is the key printed at first start (or WAGATE_ADMIN_KEY if given).
- request(method, path, body=None, token=None, headers=None, raw=None, auth="bearer"):
  body is JSON-encoded unless raw (bytes/str) is given; token goes in "Authorization: Bearer"
  (auth="bearer") or "apikey" (auth="apikey"). Returns (status, headers with lower-case names,
  parsed JSON or None). Every call uses a fresh connection.
- http_request(host, port, ...) is the same helper for any server (e.g. the sandbox).
- srv.db_rows(sql, args) reads the server's SQLite file directly (WAL: safe while it runs).
"""
import http.client
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_request(host, port, method, path, body=None, token=None, headers=None, raw=None,
                 auth="bearer", timeout=10):
    h = {}
    data = None
    if raw is not None:
        data = raw.encode() if isinstance(raw, str) else raw
    elif body is not None:
        data = json.dumps(body).encode()
        h["Content-Type"] = "application/json"
    if token is not None:
        if auth == "apikey":
            h["apikey"] = token
        else:
            h["Authorization"] = "Bearer " + token
    h.update(headers or {})
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request(method, path, body=data, headers=h)
        resp = conn.getresponse()
        payload = resp.read()
        hdrs = {k.lower(): v for k, v in resp.getheaders()}
        try:
            parsed = json.loads(payload) if payload else None
        except ValueError:
            parsed = None
        return resp.status, hdrs, parsed
    finally:
        conn.close()


class Server:
    def __init__(self, binary=None, env=None, tmpdir=None):
        self.binary = binary or os.environ.get("WAGATE_BIN") or os.path.join(REPO, "build", "wagate")
        if not os.path.isabs(self.binary):  # relative to the repository root
            self.binary = os.path.join(REPO, self.binary)
        self.own_tmp = tmpdir is None
        self.tmpdir = tmpdir or tempfile.mkdtemp(prefix="wagate-it-")
        self.db = os.path.join(self.tmpdir, "wagate.db")
        self.port = None
        self.extra_env = dict(env or {})
        self.proc = None
        self.admin_key = self.extra_env.get("WAGATE_ADMIN_KEY")
        self._out = self._err = None
        self.pass_fds = ()  # descriptors the server inherits (a test can start it with many open)

    # -- lifecycle --
    def start(self, timeout=10):
        if self.port is None:
            self.port = free_port()
        env = dict(os.environ)
        env.update({
            "WAGATE_LISTEN": "127.0.0.1:%d" % self.port,
            "WAGATE_DB": self.db,
            "WAGATE_LOG_LEVEL": "info",
        })
        if "WAGATE_WA_URL" not in self.extra_env:
            # hermetic by default: the engine's connections are refused at once, so no QR can
            # come and a create need not wait for one (tests that want WhatsApp pass the
            # sandbox's WAGATE_WA_URL and root key in env, and get the normal QR wait)
            env["WAGATE_WA_URL"] = "ws://127.0.0.1:9/ws/chat"
            env["WAGATE_QR_WAIT_MS"] = "0"
        env.update(self.extra_env)
        self._out = open(os.path.join(self.tmpdir, "stdout.log"), "ab")
        self._err = open(os.path.join(self.tmpdir, "stderr.log"), "ab")
        self.proc = subprocess.Popen([self.binary, "serve"], env=env, stdout=self._out,
                                     stderr=self._err, cwd=self.tmpdir,
                                     pass_fds=self.pass_fds)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("wagate exited with %s:\n%s" % (self.proc.returncode, self.stderr()))
            try:
                st, _, _ = self.request("GET", "/health", timeout=1)
                if st == 200:
                    break
            except OSError:
                pass
            time.sleep(0.05)
        else:
            raise RuntimeError("wagate did not become healthy:\n" + self.stderr())
        if self.admin_key is None:
            for line in self.stdout().splitlines():
                line = line.strip()
                if line.startswith("wga_"):
                    self.admin_key = line
        return self

    def stop(self, sig=signal.SIGTERM, timeout=15):
        """Signals the server and waits; returns its exit code."""
        if not self.proc:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.proc = None
        for f in (self._out, self._err):
            if f:
                f.close()
        self._out = self._err = None
        err = self.stderr()
        for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
            if marker in err:
                raise RuntimeError("sanitizer report in wagate's stderr:\n" + err[-4000:])
        return rc

    def kill(self):
        return self.stop(signal.SIGKILL)

    def cleanup(self):
        self.stop()
        if self.own_tmp:
            shutil.rmtree(self.tmpdir, ignore_errors=True)

    # -- I/O --
    def request(self, method, path, body=None, token=None, headers=None, raw=None,
                auth="bearer", timeout=10):
        return http_request("127.0.0.1", self.port, method, path, body, token, headers, raw,
                            auth, timeout)

    def stdout(self):
        with open(os.path.join(self.tmpdir, "stdout.log"), "rb") as f:
            return f.read().decode(errors="replace")

    def stderr(self):
        try:
            with open(os.path.join(self.tmpdir, "stderr.log"), "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def db_rows(self, sql, args=()):
        con = sqlite3.connect(self.db, timeout=5)
        try:
            return con.execute(sql, args).fetchall()
        finally:
            con.close()
