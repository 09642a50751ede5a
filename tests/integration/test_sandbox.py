"""test_sandbox.py - `wagate sandbox` from the outside: its control API (routes, JSON errors,
4xx codes), its WebSocket side as far as a stdlib client can go (upgrade, refuse, drop, garbage
instead of a Noise handshake) and persistence of its state file across a kill -9.

Linking real companions (QR, pairing code, login, logout, restart with linked devices) needs a
WhatsApp client: tests/interop/link.test.mjs does that with Baileys.
"""
import base64
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time

from harness import REPO, free_port, http_request

BIN = os.environ.get("WAGATE_BIN") or os.path.join(REPO, "build", "wagate")
if not os.path.isabs(BIN):
    BIN = os.path.join(REPO, BIN)


class Sandbox:
    def __init__(self, tmpdir=None):
        self.tmpdir = tmpdir or tempfile.mkdtemp(prefix="wagate-sb-")
        self.state = os.path.join(self.tmpdir, "sandbox.db")
        self.keyfile = os.path.join(self.tmpdir, "root.hex")
        self.ws_port = free_port()
        self.ctl_port = free_port()
        self.proc = None
        self.root = None

    def start(self, timeout=10):
        self.out = open(os.path.join(self.tmpdir, "stdout.log"), "wb")
        self.err = open(os.path.join(self.tmpdir, "stderr.log"), "ab")
        self.proc = subprocess.Popen(
            [BIN, "sandbox", "--listen", "127.0.0.1:%d" % self.ws_port, "--control",
             "127.0.0.1:%d" % self.ctl_port, "--state", self.state, "--root-key-out",
             self.keyfile], stdout=self.out, stderr=self.err, cwd=self.tmpdir)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("sandbox exited %s: %s" % (self.proc.returncode, self.stderr()))
            try:
                if self.api("GET", "/health", timeout=1)[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.05)
        else:
            raise RuntimeError("sandbox not healthy: " + self.stderr())
        m = re.search(r"root key ([0-9a-f]{64})", self.stdout())
        self.root = m.group(1) if m else None
        return self

    def stop(self, sig=signal.SIGTERM):
        if not self.proc:
            return None
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.proc = None
        self.out.close()
        self.err.close()
        return rc

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.tmpdir, ignore_errors=True)

    def api(self, method, path, body=None, raw=None, timeout=10):
        st, _, js = http_request("127.0.0.1", self.ctl_port, method, path, body, raw=raw,
                                 timeout=timeout)
        return st, js

    def stdout(self):
        with open(os.path.join(self.tmpdir, "stdout.log"), "rb") as f:
            return f.read().decode(errors="replace")

    def stderr(self):
        with open(os.path.join(self.tmpdir, "stderr.log"), "rb") as f:
            return f.read().decode(errors="replace")


SB = None


def setup_module():
    global SB
    SB = Sandbox().start()


def teardown_module():
    if SB:
        SB.cleanup()


# ---------------------------------------------------------------- a minimal WebSocket client
def ws_open(port, path="/ws/chat"):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(("GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
               "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
               "Origin: https://web.whatsapp.com\r\n\r\n" % (path, port, key)).encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(4096)
        if not chunk:
            break
        head += chunk
    status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/1.1 ") else 0
    rest = head.split(b"\r\n\r\n", 1)[1] if b"\r\n\r\n" in head else b""
    return s, status, rest


def ws_send_binary(s, payload):
    mask = os.urandom(4)
    n = len(payload)
    hdr = bytes([0x82]) + (bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + struct.pack(">H", n))
    s.sendall(hdr + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))


def ws_read_event(s, pending=b"", timeout=5):
    """Reads until a close frame or EOF: ('close', code) or ('eof', None) or ('timeout', None)."""
    s.settimeout(timeout)
    buf = pending
    try:
        while True:
            while len(buf) >= 2:
                op = buf[0] & 0x0F
                n = buf[1] & 0x7F
                off = 2
                if n == 126:
                    if len(buf) < 4:
                        break
                    n = struct.unpack(">H", buf[2:4])[0]
                    off = 4
                if len(buf) < off + n:
                    break
                body = buf[off:off + n]
                buf = buf[off + n:]
                if op == 0x8:
                    return "close", struct.unpack(">H", body[:2])[0] if len(body) >= 2 else None
            chunk = s.recv(4096)
            if not chunk:
                return "eof", None
            buf += chunk
    except socket.timeout:
        return "timeout", None
    except ConnectionResetError:
        return "eof", None


# ---------------------------------------------------------------- tests
def test_cli_help_and_bad_options():
    r = subprocess.run([BIN, "sandbox", "--help"], capture_output=True, text=True, timeout=10)
    assert r.returncode == 0 and "--root-key-out" in r.stdout and "--state" in r.stdout
    r = subprocess.run([BIN, "sandbox", "--bogus", "x"], capture_output=True, text=True, timeout=10)
    assert r.returncode == 2 and "bad option" in r.stderr
    r = subprocess.run([BIN, "sandbox", "--tls-cert", "x.pem"], capture_output=True, text=True,
                       timeout=10)
    assert r.returncode == 2 and "--tls-key" in r.stderr


def test_start_prints_root_key_and_addresses():
    out = SB.stdout()
    assert SB.root and len(SB.root) == 64
    with open(SB.keyfile) as f:
        assert f.read().strip() == SB.root
    assert "websocket ws://127.0.0.1:%d/ws/chat" % SB.ws_port in out
    assert "control http://127.0.0.1:%d" % SB.ctl_port in out


def test_port_in_use_fails_clearly():
    d = tempfile.mkdtemp(prefix="wagate-sb-")
    try:
        r = subprocess.run([BIN, "sandbox", "--listen", "127.0.0.1:%d" % SB.ws_port, "--control",
                            "127.0.0.1:0", "--state", os.path.join(d, "s.db")],
                           capture_output=True, text=True, timeout=10)
        assert r.returncode == 1 and "cannot listen" in r.stderr, r.stderr
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_health_and_unknown_routes():
    assert SB.api("GET", "/health") == (200, {"status": "ok"})
    st, js = SB.api("GET", "/nope")
    assert st == 404 and js["error"] == "no such route"
    st, js = SB.api("POST", "/health")
    assert st == 405 and "GET" in js["error"]
    st, js = SB.api("GET", "/phones/15550000001/whatever")
    assert st == 404


def test_create_phone_and_errors():
    st, js = SB.api("POST", "/phones", {"number": "15551230001", "pushName": "Ann"})
    assert st == 201, js
    assert js["number"] == "15551230001" and js["jid"] == "15551230001@s.whatsapp.net"
    assert re.fullmatch(r"\d{15}@lid", js["lid"]) and js["pushName"] == "Ann"
    st, js = SB.api("POST", "/phones", {"number": "15551230001"})
    assert st == 409 and "already exists" in js["error"]
    for bad in ["0123", "12a4", "", "1" * 21, 15551230009, None]:
        st, js = SB.api("POST", "/phones", {"number": bad})
        assert st == 400 and "number" in js["error"], (bad, st, js)
    st, js = SB.api("POST", "/phones", {"number": "15551230002", "pushName": 5})
    assert st == 400 and "pushName" in js["error"]
    st, js = SB.api("POST", "/phones", raw="{not json")
    assert st == 400 and "JSON" in js["error"]
    st, js = SB.api("POST", "/phones", raw="[1]")
    assert st == 400 and "JSON object" in js["error"]
    st, js = SB.api("POST", "/phones")
    assert st == 400 and "body" in js["error"]
    st, js = SB.api("POST", "/phones", {"number": "15551230003"})
    assert st == 201 and js["pushName"] == ""
    st, js = SB.api("GET", "/phones")
    nums = [p["number"] for p in js]
    assert st == 200 and "15551230001" in nums and "15551230003" in nums
    assert "15551230002" not in nums


def test_unknown_phone_is_404():
    for method, path, body in [("POST", "/phones/19990000001/scan", {"qr": "x"}),
                               ("POST", "/phones/19990000001/link-code", {"code": "ABCD-EFGH"}),
                               ("GET", "/phones/19990000001/devices", None),
                               ("DELETE", "/phones/19990000001/devices/19990000001:1@s.whatsapp.net",
                                None)]:
        st, js = SB.api(method, path, body)
        assert st == 404 and "no such phone" in js["error"], (path, st, js)


def test_scan_errors():
    SB.api("POST", "/phones", {"number": "15551230010"})
    st, js = SB.api("POST", "/phones/15551230010/scan", {"qr": "not a qr"})
    assert st == 400 and "pairing string" in js["error"]
    st, js = SB.api("POST", "/phones/15551230010/scan", {})
    assert st == 400 and "qr" in js["error"]
    st, js = SB.api("GET", "/phones/15551230010/scan")
    assert st == 405
    k = lambda: base64.b64encode(os.urandom(32)).decode()
    for qr in ["2@nosuchref,%s,%s,%s" % (k(), k(), k()),
               "https://wa.me/settings/linked_devices#2@nosuchref,%s,%s,%s,1" % (k(), k(), k())]:
        st, js = SB.api("POST", "/phones/15551230010/scan", {"qr": qr})
        assert st == 404 and "ref" in js["error"], (st, js)


def test_link_code_errors():
    SB.api("POST", "/phones", {"number": "15551230011"})
    st, js = SB.api("POST", "/phones/15551230011/link-code", {"code": "ABC"})
    assert st == 400 and "code" in js["error"]
    st, js = SB.api("POST", "/phones/15551230011/link-code", {"code": "ABCD-EFG0"})
    assert st == 400  # 0 is not in the pairing alphabet
    st, js = SB.api("POST", "/phones/15551230011/link-code", {"code": "abcd-efgh"})
    assert st == 404 and "no companion is waiting" in js["error"]


def test_devices_list_and_delete_errors():
    SB.api("POST", "/phones", {"number": "15551230012"})
    assert SB.api("GET", "/phones/15551230012/devices") == (200, [])
    st, js = SB.api("DELETE", "/phones/15551230012/devices/garbage")
    assert st == 400 and "deviceJid" in js["error"]
    st, js = SB.api("DELETE", "/phones/15551230012/devices/15551230099:1@s.whatsapp.net")
    assert st == 400  # another number's device
    st, js = SB.api("DELETE", "/phones/15551230012/devices/15551230012%3A3%40s.whatsapp.net")
    assert st == 404 and "no such linked device" in js["error"]
    st, js = SB.api("POST", "/phones/15551230012/devices")
    assert st == 405


def test_messaging_route_errors():
    SB.api("POST", "/phones", {"number": "15551230013"})
    for method, path, body, status, err in [
            ("POST", "/phones/15551230013/messages", {"to": "15559999999", "text": "hi"}, 404,
             "not on WhatsApp"),
            ("POST", "/phones/15551230013/messages", {"to": "x@y", "text": "hi"}, 400, "to must"),
            ("POST", "/phones/15551230013/messages", {"text": "hi"}, 400, "required"),
            ("POST", "/phones/15551230013/messages", {"to": "120363000000000001@g.us",
                                                      "text": "hi"}, 404, "no such group"),
            ("PUT", "/phones/15551230013/messages", None, 405, "use GET or POST"),
            ("POST", "/phones/15551230013/messages", {"to": "15551230013@s.whatsapp.net",
                                                      "text": "x", "group": True}, 400,
             "group: true"),
            ("POST", "/phones/15551230013/messages", {"to": "15551230013", "text": "x",
                                                      "group": True}, 404, "no such group"),
            ("POST", "/phones/15551230013/messages", {"to": "15551230013", "text": "x",
                                                      "group": 1}, 400, "boolean"),
            ("POST", "/phones/15551230013/calls", {"to": "15559999999"}, 404, "phone"),
            ("POST", "/phones/15551230013/calls", {}, 400, "required"),
            ("POST", "/groups", {"subject": "g", "creator": "1", "participants": []}, 400,
             "creator"),
            ("POST", "/groups", {"subject": "g", "creator": "15551230013",
                                 "participants": ["15559999999"]}, 400, "participant"),
            ("POST", "/groups", {"creator": "15551230013", "participants": []}, 400, "subject"),
            ("GET", "/groups", None, 405, "use POST"),
            ("POST", "/phones/15551230013/receipts", {}, 405, "use GET")]:
        st, js = SB.api(method, path, body)
        assert st == status and err in js["error"], (path, body, st, js)
    st, js = SB.api("GET", "/phones/15551230013/messages")
    assert st == 200 and js == []


def wait_inbox(sb, number, pred, kind="messages", timeout=5):
    deadline = time.time() + timeout
    while True:
        st, js = sb.api("GET", "/phones/%s/%s" % (number, kind))
        assert st == 200
        hit = [m for m in js if pred(m)]
        if hit or time.time() > deadline:
            return hit
        time.sleep(0.05)


def test_phone_to_phone_and_group_messages():
    """Two simulated phones talk through Signal sessions made from each other's bundles (the
    phones' own identity keys); a group's sender key reaches every member."""
    a, b, c = "15551230021", "15551230022", "15551230023"
    for n in (a, b, c):
        assert SB.api("POST", "/phones", {"number": n, "pushName": "P" + n[-1]})[0] == 201
    st, js = SB.api("POST", "/phones/%s/messages" % a, {"to": b, "text": "hello b"})
    assert st == 200 and re.fullmatch(r"3EB0[0-9A-F]{18}", js["id"]), js
    mid = js["id"]
    got = wait_inbox(SB, b, lambda m: m["id"] == mid)
    assert got and got[0]["text"] == "hello b" and got[0]["from"] == a + "@s.whatsapp.net"
    assert got[0]["author"] == a + "@s.whatsapp.net" and got[0]["t"] > 0
    # b's phone answered with a delivery receipt, which a's phone keeps
    rc = wait_inbox(SB, a, lambda m: m["id"] == mid, kind="receipts")
    assert rc and rc[0]["text"] == "delivery" and rc[0]["author"] == b + "@s.whatsapp.net", rc
    # the answer uses the session the first message built ("+number" as the address)
    st, js = SB.api("POST", "/phones/%s/messages" % b, {"to": "+" + a,
                                                        "text": "hi a"})
    assert st == 200
    assert wait_inbox(SB, a, lambda m: m["text"] == "hi a")
    # group: creator a, members b and c
    st, g = SB.api("POST", "/groups", {"subject": "Team", "creator": a,
                                       "participants": [b, c + "@s.whatsapp.net"]})
    assert st == 201 and re.fullmatch(r"\d+@g\.us", g["jid"]) and g["subject"] == "Team", g
    for i in range(2):
        # the group JID, or its id with group: true (DESIGN.md's {to, text, group?})
        to = {"to": g["jid"]} if i == 0 else {"to": g["jid"].split("@")[0], "group": True}
        st, js = SB.api("POST", "/phones/%s/messages" % a, dict(to, text="g%d" % i))
        assert st == 200
        for n in (b, c):
            got = wait_inbox(SB, n, lambda m, i=i: m["text"] == "g%d" % i)
            assert got and got[0]["from"] == g["jid"] and got[0]["author"] == a + "@s.whatsapp.net"
    # a member answers in the group
    assert SB.api("POST", "/phones/%s/messages" % c, {"to": g["jid"], "text": "from c"})[0] == 200
    assert wait_inbox(SB, a, lambda m: m["text"] == "from c" and m["from"] == g["jid"])
    assert wait_inbox(SB, b, lambda m: m["text"] == "from c")
    # a sender never receives its own message
    assert not wait_inbox(SB, c, lambda m: m["text"] == "from c", timeout=0.2)
    # a call between phones is recorded on the caller's side
    st, js = SB.api("POST", "/phones/%s/calls" % a, {"to": b})
    assert st == 200 and re.fullmatch(r"[0-9A-F]{32}", js["callId"])
    calls = wait_inbox(SB, a, lambda m: m["id"] == js["callId"], kind="calls")
    assert calls and calls[0]["text"] == "offer" and calls[0]["from"] == b + "@s.whatsapp.net"


def test_phone_sessions_survive_restart():
    sb = Sandbox().start()
    try:
        a, b = "15551230031", "15551230032"
        sb.api("POST", "/phones", {"number": a})
        sb.api("POST", "/phones", {"number": b})
        assert sb.api("POST", "/phones/%s/messages" % a, {"to": b, "text": "one"})[0] == 200
        assert wait_inbox(sb, b, lambda m: m["text"] == "one")
        assert sb.stop() == 0
        sb.start()
        # same sessions: a msg (not a new pkmsg) that b can only decrypt with its stored state
        assert sb.api("POST", "/phones/%s/messages" % a, {"to": b, "text": "two"})[0] == 200
        assert sb.api("POST", "/phones/%s/messages" % b, {"to": a, "text": "three"})[0] == 200
        assert wait_inbox(sb, b, lambda m: m["text"] == "two")
        assert wait_inbox(sb, a, lambda m: m["text"] == "three")
        st, js = sb.api("GET", "/phones/%s/messages" % b)
        assert [m["text"] for m in js] == ["one", "two"]
        assert "cannot decrypt" not in sb.stderr()
    finally:
        sb.cleanup()


def test_websocket_upgrade_and_path():
    s, status, _ = ws_open(SB.ws_port)
    s.close()
    assert status == 101
    s, status, _ = ws_open(SB.ws_port, "/other")
    s.close()
    assert status == 404


def test_garbage_instead_of_handshake_is_closed():
    s, status, rest = ws_open(SB.ws_port)
    try:
        assert status == 101
        ws_send_binary(s, b"GARBAGE!" * 4)
        ev, code = ws_read_event(s, rest)
        assert ev == "close" and code == 1002, (ev, code)
    finally:
        s.close()


def test_refuse_then_accept():
    st, js = SB.api("POST", "/control/refuse", {"seconds": -1})
    assert st == 400 and "seconds" in js["error"]
    st, js = SB.api("POST", "/control/refuse", {"seconds": "2"})
    assert st == 400
    st, js = SB.api("POST", "/control/refuse", {"seconds": 2})
    assert st == 200 and js == {"refusingSeconds": 2}
    s, status, rest = ws_open(SB.ws_port)
    try:
        ev, code = ws_read_event(s, rest)
        assert ev == "close" and code == 1013, (ev, code)  # try again later
    finally:
        s.close()
    time.sleep(2.2)
    s, status, rest = ws_open(SB.ws_port)
    try:
        assert status == 101
        ev, _ = ws_read_event(s, rest, timeout=0.7)
        assert ev == "timeout", ev  # accepted: the server waits for the Noise handshake
    finally:
        s.close()


def test_prekey_upload_faults_control():
    # the settings themselves; their effect on uploads is tested in test_sandbox.c (a client on
    # the loop) and test_link.py (the gateway's WORKING waits for the answer)
    assert SB.api("POST", "/control/prekey-upload", {}) == (200, {"delayMs": 0, "fail": 0})
    for bad in ({"delayMs": -1}, {"delayMs": "5"}, {"delayMs": 600001}, {"fail": 1.5},
                {"fail": 1001}):
        st, js = SB.api("POST", "/control/prekey-upload", bad)
        assert st == 400 and list(bad)[0] in js["error"], (bad, st, js)
    assert SB.api("POST", "/control/prekey-upload", {"delayMs": 250}) == (
        200, {"delayMs": 250, "fail": 0})
    assert SB.api("POST", "/control/prekey-upload", {"fail": 2}) == (
        200, {"delayMs": 250, "fail": 2})  # a member left out is kept
    assert SB.api("GET", "/control/prekey-upload")[0] == 405
    assert SB.api("POST", "/control/prekey-upload", {"delayMs": 0, "fail": 0}) == (
        200, {"delayMs": 0, "fail": 0})


def test_drop_closes_every_connection():
    socks = [ws_open(SB.ws_port) for _ in range(3)]
    try:
        assert all(st == 101 for _, st, _ in socks)
        time.sleep(0.1)
        st, js = SB.api("POST", "/control/drop")
        assert st == 200 and js["dropped"] >= 3, js
        for s, _, rest in socks:
            ev, _ = ws_read_event(s, rest, timeout=3)
            assert ev == "eof", ev
        assert SB.api("GET", "/control/drop")[0] == 405
    finally:
        for s, _, _ in socks:
            s.close()


def test_state_survives_kill_and_restart():
    sb = Sandbox().start()
    try:
        root = sb.root
        st, a = sb.api("POST", "/phones", {"number": "15557770001", "pushName": "Zoe"})
        assert st == 201
        st, b = sb.api("POST", "/phones", {"number": "15557770002"})
        assert st == 201
        assert sb.stop(signal.SIGKILL) == -signal.SIGKILL
        sb.start()
        assert sb.root == root, "root key changed across a restart"
        with open(sb.keyfile) as f:
            assert f.read().strip() == root
        st, js = sb.api("GET", "/phones")
        assert st == 200 and js == [a, b], js
        assert "2 phones" in sb.stdout()
        st, js = sb.api("POST", "/phones", {"number": "15557770001"})
        assert st == 409
        assert sb.stop() == 0  # SIGTERM: clean stop
    finally:
        sb.cleanup()


def test_fresh_state_has_a_new_root_key():
    other = Sandbox().start()
    try:
        assert other.root and other.root != SB.root
    finally:
        other.cleanup()


def test_tls_websocket():
    import ssl
    d = tempfile.mkdtemp(prefix="wagate-sb-tls-")
    cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    r = subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", cert,
                        "-days", "2", "-subj", "/CN=127.0.0.1", "-addext",
                        "subjectAltName=IP:127.0.0.1"], capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr
    port, cport = free_port(), free_port()
    proc = subprocess.Popen([BIN, "sandbox", "--listen", "127.0.0.1:%d" % port, "--control",
                             "127.0.0.1:%d" % cport, "--state", os.path.join(d, "s.db"),
                             "--tls-cert", cert, "--tls-key", key],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=d)
    try:
        line = b""
        deadline = time.time() + 10
        while b"websocket" not in line and time.time() < deadline:
            line = proc.stdout.readline()
        assert ("websocket wss://127.0.0.1:%d/ws/chat" % port).encode() in line, line
        ctx = ssl.create_default_context(cafile=cert)
        raw = socket.create_connection(("127.0.0.1", port), timeout=5)
        s = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
        s.sendall(("GET /ws/chat HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                   "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n"
                   % base64.b64encode(os.urandom(16)).decode()).encode())
        head = s.recv(4096)
        s.close()
        assert head.startswith(b"HTTP/1.1 101"), head
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(d, ignore_errors=True)
