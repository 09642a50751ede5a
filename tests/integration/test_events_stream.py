"""test_events_stream.py - GET /v1/instances/{id}/events/stream as Server-Sent Events: replay from
?since=<event id> (and Last-Event-ID), live events, resume after a reconnect with nothing missed
and nothing repeated, authentication like the REST API."""
import http.client
import time

from harness import Server
from test_events import FAST, create


class SSE:
    def __init__(self, srv, inst, since=None, token=None, last_event_id=None):
        self.c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
        path = "/v1/instances/%s/events/stream" % inst + ("?since=" + since if since else "")
        h = {"Authorization": "Bearer " + (token or srv.admin_key), "Accept": "text/event-stream"}
        if last_event_id:
            h["Last-Event-ID"] = last_event_id
        self.c.request("GET", path, headers=h)
        self.r = self.c.getresponse()
        self.status = self.r.status
        self.ctype = self.r.getheader("Content-Type")

    def events(self, n, timeout=10):
        """Reads n events: list of (id, event, data line)."""
        out, cur = [], {}
        deadline = time.time() + timeout
        while len(out) < n:
            assert time.time() < deadline, ("stream timed out", out)
            line = self.r.readline()
            assert line, "stream ended"
            line = line.decode().rstrip("\n")
            if line == "":
                if cur:
                    out.append((cur.get("id"), cur.get("event"), cur.get("data")))
                cur = {}
            elif not line.startswith(":"):
                k, _, v = line.partition(": ")
                cur[k] = v
        return out

    def close(self):
        self.c.close()


def test_stream_replay_live_and_resume():
    srv = Server(env=dict(FAST, WAGATE_HTTP_IDLE_TIMEOUT="2")).start()
    try:
        d = create(srv, "streamer", None)
        inst = d["id"]
        for _ in range(2):
            srv.request("POST", "/v1/instances/%s/stop" % inst, token=srv.admin_key)
            srv.request("POST", "/v1/instances/%s/start" % inst, token=srv.admin_key)
        rows = srv.db_rows("SELECT id, event FROM outbox WHERE instance_id = ? ORDER BY seq", (inst,))
        assert len(rows) >= 4
        # replay after the first event
        s = SSE(srv, inst, since=rows[0][0])
        assert s.status == 200 and s.ctype.startswith("text/event-stream"), (s.status, s.ctype)
        got = s.events(len(rows) - 1)
        assert [g[0] for g in got] == [r[0] for r in rows[1:]], (got, rows)
        assert all('"instanceId":"%s"' % inst in g[2] for g in got)
        # live: outlives the idle timeout (2 s), then a new event arrives on the open stream
        time.sleep(3)
        srv.request("POST", "/v1/instances/%s/stop" % inst, token=srv.admin_key)
        live = s.events(1)
        assert live[0][1] == "connection.updated" and '"STOPPED"' in live[0][2], live
        last = live[0][0]
        s.close()
        # events while disconnected; resume from the last id seen: exactly those, in order
        srv.request("POST", "/v1/instances/%s/start" % inst, token=srv.admin_key)
        srv.request("POST", "/v1/instances/%s/stop" % inst, token=srv.admin_key)
        rows = srv.db_rows("SELECT id FROM outbox WHERE instance_id = ? ORDER BY seq", (inst,))
        missed = [r[0] for r in rows][[r[0] for r in rows].index(last) + 1:]
        assert missed
        s = SSE(srv, inst, last_event_id=last)  # what a browser EventSource sends
        got = s.events(len(missed))
        assert [g[0] for g in got] == missed, (got, missed)
        s.close()
        # no since: only new events
        s = SSE(srv, inst)
        srv.request("POST", "/v1/instances/%s/start" % inst, token=srv.admin_key)
        got = s.events(1)
        new = srv.db_rows("SELECT id FROM outbox WHERE instance_id = ? ORDER BY seq", (inst,))
        assert got[0][0] == new[len(rows)][0], (got, new[len(rows):])
        s.close()
        # auth like the REST API: other account 404, bad token 401, unknown since 422
        st, _, acc = srv.request("POST", "/v1/accounts", {"name": "o"}, token=srv.admin_key)
        s = SSE(srv, inst, token=acc["data"]["apiKey"])
        assert s.status == 404
        s.close()
        s = SSE(srv, inst, token="nope-nope-nope-nope")
        assert s.status == 401
        s.close()
        s = SSE(srv, inst, since="evt_unknown")
        assert s.status == 422
        s.close()
        # the instance token sees its own stream
        s = SSE(srv, inst, token=d["token"] if "token" in d else d.get("accessToken"),
                since=rows[0][0])
        assert s.status == 200
        t0 = time.time()
        assert srv.stop() == 0  # an open stream ends at shutdown, without waiting for it
        assert time.time() - t0 < 4
        s.close()
    finally:
        srv.cleanup()


class WS:
    """A raw RFC 6455 client (stdlib socket): upgrade, then read server frames."""

    def __init__(self, srv, inst, since=None, token=None):
        import base64
        import os
        import socket
        self.s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        key = base64.b64encode(os.urandom(16)).decode()
        path = "/v1/instances/%s/events/stream" % inst + ("?since=" + since if since else "")
        self.s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                        "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
                        "Authorization: Bearer %s\r\n\r\n" % (path, key, token or srv.admin_key)).encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            chunk = self.s.recv(4096)
            assert chunk, "closed during the handshake"
            self.buf += chunk
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode().split("\r\n")
        self.status = int(lines[0].split()[1])
        self.headers = {l.split(":", 1)[0].lower(): l.split(":", 1)[1].strip() for l in lines[1:]}
        import hashlib
        self.expected_accept = base64.b64encode(hashlib.sha1(
            (key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()

    def _need(self, n):
        while len(self.buf) < n:
            chunk = self.s.recv(65536)
            assert chunk, "connection closed"
            self.buf += chunk

    def frame(self):
        self._need(2)
        op, ln = self.buf[0] & 0x0f, self.buf[1] & 0x7f
        assert self.buf[0] & 0x80 and not self.buf[1] & 0x80  # FIN, unmasked from the server
        off = 2
        if ln == 126:
            self._need(4)
            ln, off = int.from_bytes(self.buf[2:4], "big"), 4
        elif ln == 127:
            self._need(10)
            ln, off = int.from_bytes(self.buf[2:10], "big"), 10
        self._need(off + ln)
        payload, self.buf = self.buf[off:off + ln], self.buf[off + ln:]
        return op, payload

    def close(self):
        self.s.close()


def test_websocket_stream_replay_live_and_close():
    import json
    srv = Server(env=FAST).start()
    try:
        d = create(srv, "wsstream", None)
        inst = d["id"]
        srv.request("POST", "/v1/instances/%s/stop" % inst, token=srv.admin_key)
        rows = srv.db_rows("SELECT id FROM outbox WHERE instance_id = ? ORDER BY seq", (inst,))
        ws = WS(srv, inst, since=rows[0][0])
        assert ws.status == 101, ws.status
        assert ws.headers["upgrade"].lower() == "websocket"
        assert ws.headers["sec-websocket-accept"] == ws.expected_accept
        got = [json.loads(ws.frame()[1]) for _ in rows[1:]]
        assert [g["id"] for g in got] == [r[0] for r in rows[1:]], got
        srv.request("POST", "/v1/instances/%s/start" % inst, token=srv.admin_key)
        op, p = ws.frame()
        ev = json.loads(p)
        assert op == 1 and ev["event"] == "connection.updated" and ev["instanceId"] == inst
        assert ev["seq"] == len(rows) + 1
        # shutdown: a close frame 1001; the client closes (RFC 6455 7.1.1) and the server exits
        import signal
        t0 = time.time()
        srv.proc.send_signal(signal.SIGTERM)
        while True:
            op, p = ws.frame()
            if op == 8:
                break
        assert int.from_bytes(p[:2], "big") == 1001
        ws.close()
        assert srv.stop() == 0 and time.time() - t0 < 3
        srv.start()
        # a bad upgrade is refused; auth applies before any upgrade
        import socket
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
        s.sendall(("GET /v1/instances/%s/events/stream HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                   "Connection: Upgrade\r\nAuthorization: Bearer %s\r\n\r\n" % (inst, srv.admin_key)).encode())
        assert s.recv(100).startswith(b"HTTP/1.1 400"), "upgrade without a key accepted"
        s.close()
        ws = WS(srv, inst, token="wrong-token-wrong-token")
        assert ws.status == 401
        ws.close()
    finally:
        srv.cleanup()
