"""HTTP server behaviour: health, JSON everywhere, 404/405, limits, timeouts, keep-alive,
graceful shutdown, --help, request logs."""
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import time

from harness import REPO, Server

srv = None


def setup_module():
    global srv
    srv = Server(env={"WAGATE_HTTP_BODY_LIMIT": "4096", "WAGATE_HTTP_IDLE_TIMEOUT": "1",
                      "WAGATE_RATE_CREATE": "0"}).start()


def teardown_module():
    srv.cleanup()


def test_health_json():
    st, h, b = srv.request("GET", "/health")
    assert st == 200
    assert h["content-type"].startswith("application/json")
    assert b["status"] == "ok" and b["version"]
    for s in ("STOPPED", "STARTING", "SCAN_QR_CODE", "WORKING", "FAILED", "PENDING", "total"):
        assert isinstance(b["instances"][s], int)


def test_health_counts_follow_instances():
    before = srv.request("GET", "/health")[2]["instances"]
    st, _, _ = srv.request("POST", "/v1/instances", {"name": "health-count"}, token=srv.admin_key)
    assert st == 201
    after = srv.request("GET", "/health")[2]["instances"]
    assert after["total"] == before["total"] + 1
    assert sum(v for k, v in after.items() if k != "total") == after["total"]


def test_unknown_route_404_json():
    for path in ("/", "/nope", "/v1", "/v1/instances/x/y/z", "/v1/instancesX"):
        st, h, b = srv.request("GET", path, token=srv.admin_key)
        assert st == 404, path
        assert h["content-type"].startswith("application/json")
        assert b == {"success": False, "error": {"code": "not_found", "message": b["error"]["message"], "field": None}}


def test_wrong_method_405_json():
    for m, path in (("PUT", "/v1/instances"), ("DELETE", "/v1/instances"), ("POST", "/health"),
                    ("GET", "/v1/instances/abc/start"), ("PUT", "/v1/accounts/x")):
        st, h, b = srv.request(m, path, token=srv.admin_key)
        assert st == 405, (m, path)
        assert h["content-type"].startswith("application/json")
        assert b["error"]["code"] == "method_not_allowed"
        assert "allow" in h


def test_trailing_slash_is_same_route():
    st, _, b = srv.request("GET", "/v1/instances/", token=srv.admin_key)
    assert st == 200 and b["success"] is True


def test_body_limit_413_json():
    st, h, b = srv.request("POST", "/v1/instances", raw="{" + " " * 5000 + "}", token=srv.admin_key,
                           headers={"Content-Type": "application/json"})
    assert st == 413
    assert h["content-type"].startswith("application/json")
    assert b["success"] is False and b["error"]["code"] == "payload_too_large"
    # just under the limit is parsed normally
    st, _, b = srv.request("POST", "/v1/instances", raw='{"name": "fits"' + " " * 3900 + "}", token=srv.admin_key)
    assert st == 201


def raw_exchange(port, data):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(data)
    s.settimeout(3)
    out = b""
    try:
        while True:
            c = s.recv(65536)
            if not c:
                break
            out += c
    except socket.timeout:
        pass
    s.close()
    return out


def test_protocol_errors_are_json():
    for data, status in ((b"GET /health HTTP/1.1\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n", b"400"),
                         (b"garbage\r\n\r\n", b"400"),
                         (b"BREW /health HTTP/1.1\r\nHost: x\r\n\r\n", b"501"),
                         (b"POST /v1/instances HTTP/1.1\r\nContent-Length: 999999\r\n\r\n", b"413")):
        out = raw_exchange(srv.port, data)
        head, _, body = out.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 " + status), out[:200]
        assert b"Content-Type: application/json" in head, out[:300]
        assert json.loads(body)["success"] is False


def test_idle_connection_closed():
    s = socket.create_connection(("127.0.0.1", srv.port))
    s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")  # headers never finished
    s.settimeout(5)
    t0 = time.time()
    data = s.recv(100)
    while data:
        data = s.recv(100)
    assert time.time() - t0 < 4, "server kept a silent connection"
    s.close()
    # the server still serves others
    assert srv.request("GET", "/health")[0] == 200


def test_slow_trickle_cut_at_request_deadline():
    """One byte every 0.4 s never trips the 1 s idle timeout; the 2 s request deadline cuts it."""
    s2 = Server(env={"WAGATE_HTTP_IDLE_TIMEOUT": "1", "WAGATE_HTTP_REQUEST_TIMEOUT": "2"}).start()
    try:
        sock = socket.create_connection(("127.0.0.1", s2.port))
        sock.settimeout(0.05)
        t0 = time.time()
        closed_at = None
        payload = b"GET /health HTTP/1.1\r\nX-Slow: " + b"a" * 1000
        for b in payload:
            try:
                sock.sendall(bytes([b]))
                if sock.recv(100) == b"":
                    closed_at = time.time() - t0
                    break
            except socket.timeout:
                pass
            except OSError:
                closed_at = time.time() - t0
                break
            if time.time() - t0 > 8:
                break
            time.sleep(0.4)
        sock.close()
        assert closed_at is not None and 1.5 < closed_at < 4.5, closed_at
        assert "no complete request in 2s" in s2.stderr()
        # a keep-alive client that keeps asking is not cut: the deadline restarts per response
        c = http.client.HTTPConnection("127.0.0.1", s2.port, timeout=5)
        t0 = time.time()
        while time.time() - t0 < 3.5:
            c.request("GET", "/health")
            r = c.getresponse()
            r.read()
            assert r.status == 200
            time.sleep(0.3)
        c.close()
    finally:
        s2.cleanup()


def test_deferred_response_outlives_request_deadline():
    """A create that waits for a QR (WAGATE_QR_WAIT_MS) is a complete request: the request
    deadline must not cut the connection while the answer is pending."""
    s2 = Server(env={"WAGATE_WA_URL": "ws://127.0.0.1:9/ws/chat", "WAGATE_QR_WAIT_MS": "3000",
                     "WAGATE_HTTP_REQUEST_TIMEOUT": "1", "WAGATE_RATE_CREATE": "0"}).start()
    try:
        t0 = time.time()
        st, _, b = s2.request("POST", "/v1/instances", {"name": "waits"}, token=s2.admin_key)
        took = time.time() - t0
        assert st == 201 and b["data"]["qrCode"] is None, b
        assert 2.5 < took < 6, took
    finally:
        s2.cleanup()


def test_keep_alive():
    c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=5)
    for _ in range(3):
        c.request("GET", "/health")
        r = c.getresponse()
        r.read()
        assert r.status == 200
    c.close()


def test_request_log_line():
    st, _, b = srv.request("POST", "/v1/instances", {"name": "log-line"}, token=srv.admin_key)
    assert st == 201
    iid = b["data"]["id"]
    time.sleep(0.1)
    assert re.search(r"method=POST path=/v1/instances status=201 ms=[0-9.]+ instance=" + iid, srv.stderr())
    assert re.search(r"core instance=%s created owner=acc_admin from=- to=STARTING" % iid, srv.stderr())


def test_serve_help_lists_every_key():
    out = subprocess.run([srv.binary, "serve", "--help"], capture_output=True, text=True).stdout
    for key, default in (("WAGATE_LISTEN", "0.0.0.0:8080"), ("WAGATE_DB", "./wagate.db"),
                         ("WAGATE_ADMIN_KEY", ""), ("WAGATE_MASTER_KEY", ""),
                         ("WAGATE_WA_URL", "wss://web.whatsapp.com/ws/chat"),
                         ("WAGATE_WA_ROOT_KEY", ""), ("WAGATE_WEBHOOK_ALLOW_PRIVATE", "0"),
                         ("WAGATE_WEBHOOK_CA", ""), ("WAGATE_LOG_LEVEL", "info"),
                         ("WAGATE_HTTP_BODY_LIMIT", "1048576"), ("WAGATE_RATE_CREATE", "5"),
                         ("WAGATE_PLAN_LIMITS", "free=1,starter=3,pro=10,enterprise=0")):
        assert re.search(r"%s\s+\w+\s+default \"%s\"" % (key, re.escape(default)), out), key


def test_bad_config_refused():
    env = dict(os.environ, WAGATE_HTTP_THREADS="zero", WAGATE_DB=os.path.join(srv.tmpdir, "x.db"))
    p = subprocess.run([srv.binary, "serve"], env=env, capture_output=True, text=True, timeout=10)
    assert p.returncode != 0 and "WAGATE_HTTP_THREADS" in p.stderr


def test_graceful_shutdown_finishes_in_flight_request():
    s2 = Server(env={"WAGATE_SHUTDOWN_TIMEOUT": "10", "WAGATE_RATE_CREATE": "0"}).start()
    try:
        body = b'{"name": "in-flight"}'
        sock = socket.create_connection(("127.0.0.1", s2.port))
        sock.sendall(b"POST /v1/instances HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                     + s2.admin_key.encode() + b"\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n" % len(body) + body[:5])
        time.sleep(0.3)
        s2.proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        assert s2.proc.poll() is None, "server exited with a request in flight"
        # new connections are refused while draining
        try:
            socket.create_connection(("127.0.0.1", s2.port), timeout=1).close()
            refused = False
        except OSError:
            refused = True
        assert refused
        sock.sendall(body[5:])
        sock.settimeout(5)
        resp = b""
        while b"\r\n\r\n" not in resp or not resp.rstrip().endswith(b"}"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            resp += chunk
        sock.close()
        assert resp.startswith(b"HTTP/1.1 201"), resp[:200]
        rc = s2.proc.wait(10)
        s2.proc = None
        assert rc == 0
        assert "main stopped" in s2.stderr()
        # the answered create is in the database, and the database was closed cleanly
        rows = s2.db_rows("SELECT name FROM instances")
        assert rows == [("in-flight",)]
        assert s2.db_rows("PRAGMA integrity_check") == [("ok",)]
        assert not os.path.exists(s2.db + "-wal") or os.path.getsize(s2.db + "-wal") == 0
    finally:
        s2.cleanup()


def test_version_command():
    out = subprocess.run([os.path.join(REPO, "build", "wagate"), "version"], capture_output=True, text=True).stdout
    assert out.startswith("wagate ")


def test_serve_with_descriptors_above_fd_setsize():
    """On a restart the engine opens one socket per linked instance before the HTTP server is
    created, so the server's own descriptors can be above FD_SETSIZE (1024). The server once
    waited for its stop pipe with select(): FD_SET wrote past the fd_set into its stack frame
    (bench/instances 10000 wss: SIGSEGV right after a restart). Started here with 1,100
    descriptors already open, under the ASan build when there is one (the overflow is then
    reported at once), it must serve and stop cleanly."""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 4096 if hard == resource.RLIM_INFINITY else min(4096, hard)
    assert want > 1200, "RLIMIT_NOFILE hard limit %d is too low for this test" % hard
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    fds = []
    try:
        while len(fds) < 1100:
            fds.append(os.open(os.devnull, os.O_RDONLY))
        asan = os.path.join(REPO, "build-asan", "wagate")
        srv = Server(binary=asan if os.path.exists(asan) else None)
        srv.pass_fds = tuple(fds)
        srv.start(timeout=30)
        try:
            st, _, js = srv.request("GET", "/health")
            assert st == 200, js
        finally:
            code = srv.stop()
        err = srv.stderr()
        assert code == 0, "exit %s:\n%s" % (code, err[-3000:])
        assert "AddressSanitizer" not in err and "runtime error" not in err, err[-3000:]
    finally:
        for fd in fds:
            os.close(fd)
        if soft < want:
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
