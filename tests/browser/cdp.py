"""cdp.py - drive headless Chromium from the Python standard library (no npm, no driver).

    with Chromium() as b:                     # headless, temporary profile, own process group
        b.navigate("http://127.0.0.1:8080/page")
        b.evaluate("document.title")          # Runtime.evaluate, value returned as JSON

Chromium is started with --remote-debugging-port=0 and a fresh --user-data-dir; it writes the
port it chose to <user-data-dir>/DevToolsActivePort. We take the first "page" target from
http://127.0.0.1:<port>/json/list and speak the Chrome DevTools Protocol over its WebSocket
with the minimal RFC 6455 client below (client frames masked, server frames unmasked, text and
continuation frames reassembled; no extensions).

Flags: --headless=new (the current headless mode), --no-sandbox only when running as root
(Chromium refuses to start its sandbox as root, e.g. in CI containers; as a normal user the
sandbox stays on), --disable-gpu and --disable-dev-shm-usage (small /dev/shm in containers),
--no-first-run, --no-default-browser-check, --disable-extensions, --mute-audio.
close() ends Chromium's whole process group (it was started as a new session, so the group is
ours alone) and removes the profile.
"""
import base64
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
import urllib.request

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium():
    """The Chromium binary, or None ($CHROMIUM overrides the search)."""
    env = os.environ.get("CHROMIUM")
    if env:
        return env if os.path.exists(env) or shutil.which(env) else None
    for c in CANDIDATES:
        p = shutil.which(c)
        if p:
            return p
    return None


class WebSocket:
    """A WebSocket client for one ws://host:port/path URL (text messages only)."""

    def __init__(self, url, timeout=20):
        assert url.startswith("ws://"), url
        hostport, _, path = url[5:].partition("/")
        host, _, port = hostport.partition(":")
        self.sock = socket.create_connection((host, int(port or 80)), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        req = ("GET /%s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % (path, hostport, key))
        self.sock.sendall(req.encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("WebSocket handshake: connection closed")
            head += chunk
        head, _, self.buf = head.partition(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 101"):
            raise ConnectionError("WebSocket handshake refused: %r" % head[:200])

    def _read(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("WebSocket closed")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def send(self, text):
        data = text.encode()
        head = bytearray([0x81])  # FIN + text
        n = len(data)
        if n < 126:
            head.append(0x80 | n)
        elif n < 65536:
            head.append(0x80 | 126)
            head += struct.pack(">H", n)
        else:
            head.append(0x80 | 127)
            head += struct.pack(">Q", n)
        mask = os.urandom(4)
        head += mask
        self.sock.sendall(bytes(head) + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    def recv(self):
        """The next text message (pings answered, close raises)."""
        parts = []
        while True:
            b0, b1 = self._read(2)
            op, n = b0 & 0x0F, b1 & 0x7F
            if n == 126:
                n = struct.unpack(">H", self._read(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self._read(8))[0]
            mask = self._read(4) if b1 & 0x80 else None
            data = self._read(n)
            if mask:
                data = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
            if op == 0x8:
                raise ConnectionError("WebSocket closed by the peer")
            if op == 0x9:  # ping -> pong (masked, as a client must)
                m = os.urandom(4)
                self.sock.sendall(bytes([0x8A, 0x80 | len(data)]) + m +
                                  bytes(b ^ m[i % 4] for i, b in enumerate(data)))
                continue
            if op in (0x1, 0x2, 0x0):
                parts.append(data)
                if b0 & 0x80:
                    return b"".join(parts).decode()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class Chromium:
    def __init__(self, binary=None, timeout=20, width=420, height=460):
        self.binary = binary or find_chromium()
        if not self.binary:
            raise FileNotFoundError("chromium not found (apt package `chromium`, scripts/deps.sh)")
        self.timeout = timeout
        self.width, self.height = width, height
        self.profile = tempfile.mkdtemp(prefix="wagate-chromium-")
        self.proc = None
        self.ws = None
        self.next_id = 0

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()

    def start(self):
        args = [self.binary, "--headless=new", "--remote-debugging-port=0",
                "--remote-debugging-address=127.0.0.1", "--user-data-dir=" + self.profile,
                "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                "--no-default-browser-check", "--disable-extensions", "--mute-audio",
                "--window-size=%d,%d" % (self.width, self.height)]
        if os.geteuid() == 0:
            args.append("--no-sandbox")  # Chromium will not run its sandbox as root
        args.append("about:blank")
        self.log = open(os.path.join(self.profile, "chromium.log"), "wb")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=self.log,
                                     start_new_session=True)
        port_file = os.path.join(self.profile, "DevToolsActivePort")
        deadline = time.time() + self.timeout
        port = None
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("chromium exited %s:\n%s" % (self.proc.returncode,
                                                                self.stderr()))
            try:
                with open(port_file) as f:
                    port = int(f.readline().strip())
                break
            except (OSError, ValueError):
                time.sleep(0.05)
        if not port:
            raise RuntimeError("chromium did not open its DevTools port:\n" + self.stderr())
        page = None
        while time.time() < deadline and not page:
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d/json/list" % port,
                                            timeout=2) as r:
                    targets = json.loads(r.read())
                page = next((t for t in targets if t.get("type") == "page"), None)
            except OSError:
                pass
            if not page:
                time.sleep(0.05)
        if not page:
            raise RuntimeError("no page target in chromium")
        self.ws = WebSocket(page["webSocketDebuggerUrl"], timeout=self.timeout)
        self.call("Emulation.setDeviceMetricsOverride",
                  {"width": self.width, "height": self.height, "deviceScaleFactor": 1,
                   "mobile": False})
        return self

    def stderr(self):
        try:
            with open(os.path.join(self.profile, "chromium.log"), "rb") as f:
                return f.read().decode(errors="replace")[-3000:]
        except OSError:
            return ""

    def call(self, method, params=None):
        """One CDP command; its result (events that arrive meanwhile are dropped)."""
        self.next_id += 1
        mid = self.next_id
        self.ws.send(json.dumps({"id": mid, "method": method, "params": params or {}}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == mid:
                if "error" in msg:
                    raise RuntimeError("%s: %s" % (method, msg["error"]))
                return msg.get("result", {})

    def navigate(self, url):
        return self.call("Page.navigate", {"url": url})

    def evaluate(self, expr):
        r = self.call("Runtime.evaluate", {"expression": expr, "returnByValue": True})
        if "exceptionDetails" in r:
            raise RuntimeError("evaluate %r: %s" % (expr, r["exceptionDetails"]))
        return r["result"].get("value")

    def close(self):
        if self.ws:
            self.ws.close()
            self.ws = None
        if self.proc:
            # the group is Chromium's own session (renderers, zygote): end all of it
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.killpg(self.proc.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    self.proc.wait(5)
                    time.sleep(0.2)  # let the children follow their parent
                except subprocess.TimeoutExpired:
                    continue
            self.proc = None
        if getattr(self, "log", None):
            self.log.close()
            self.log = None
        shutil.rmtree(self.profile, ignore_errors=True)
