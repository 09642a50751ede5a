"""receiver.py - a local HTTPS webhook receiver for the event tests (stdlib only).

    rcv = Receiver(tmpdir)          # makes a CA + a cert for 127.0.0.1 with the openssl CLI
    rcv.start()                      # ThreadingHTTPServer + ssl on a free 127.0.0.1 port
    rcv.url("/hook"), rcv.ca_file    # give these to wagate (webhookUrl, WAGATE_WEBHOOK_CA)
    rcv.behaviour = fn               # fn(n) -> "ok" | "500" | "410" | "timeout" | "close",
                                     # n = 0-based index of the request; default always "ok"
    rcv.delay = 0.002                # seconds to sleep before answering "ok" (a slow receiver)
    rcv.got                          # list of dicts {id, event, instance, seq, headers, body}
                                     # for every request answered 2xx, in arrival order
    rcv.requests                     # count of every request seen (any answer)
    rcv.stop()

tls=False serves plain HTTP instead.
"""
import http.server
import json
import os
import socket
import ssl
import subprocess
import threading
import time


def make_ca(d):
    """CA key/cert and a server cert for 127.0.0.1/localhost signed by it; returns paths."""
    ca_key, ca_crt = os.path.join(d, "ca.key"), os.path.join(d, "ca.pem")
    key, csr, crt = os.path.join(d, "srv.key"), os.path.join(d, "srv.csr"), os.path.join(d, "srv.pem")
    ext = os.path.join(d, "ext.cnf")
    with open(ext, "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n")
    q = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "check": True}
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-keyout", ca_key, "-out", ca_crt, "-days", "2",
                    "-subj", "/CN=wagate test CA"], **q)
    subprocess.run(["openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=127.0.0.1"], **q)
    subprocess.run(["openssl", "x509", "-req", "-in", csr, "-CA", ca_crt, "-CAkey", ca_key,
                    "-CAcreateserial", "-out", crt, "-days", "2", "-extfile", ext], **q)
    return ca_crt, crt, key


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as two writes

    def log_message(self, *a):
        pass

    def do_POST(self):
        r = self.server.rcv
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n)
        with r.lock:
            idx = r.requests
            r.requests += 1
        action = r.behaviour(idx) if r.behaviour else "ok"
        if action == "close":
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        if action == "timeout":
            time.sleep(r.timeout_sleep)
            self.close_connection = True
            return
        if action in ("500", "410", "404"):
            self.send_response(int(action))
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if r.delay:
            time.sleep(r.delay)
        try:
            ev = json.loads(body)
        except ValueError:
            ev = {}
        rec = {"id": ev.get("id"), "event": ev.get("event"), "instance": ev.get("instanceId"),
               "seq": ev.get("seq"), "path": self.path,
               "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body}
        with r.lock:
            r.got.append(rec)
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def handle_error(self, request, client_address):
        pass  # a gateway killed mid-request (kill -9 test) is expected, not news


class Receiver:
    def __init__(self, tmpdir, tls=True):
        self.tmpdir = tmpdir
        self.tls = tls
        self.behaviour = None
        self.delay = 0
        self.timeout_sleep = 2.0
        self.got = []
        self.requests = 0
        self.lock = threading.Lock()
        self.ca_file = None
        self.srv = None
        self.port = None

    def start(self):
        self.srv = _Server(("127.0.0.1", 0), _Handler)
        self.srv.rcv = self
        if self.tls:
            ca, crt, key = make_ca(self.tmpdir)
            self.ca_file = ca
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(crt, key)
            self.srv.socket = ctx.wrap_socket(self.srv.socket, server_side=True)
        self.port = self.srv.server_address[1]
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()
        return self

    def url(self, path="/hook", host="127.0.0.1"):
        return "%s://%s:%d%s" % ("https" if self.tls else "http", host, self.port, path)

    def snapshot(self):
        with self.lock:
            return list(self.got)

    def stop(self):
        if self.srv:
            self.srv.shutdown()
            self.srv.server_close()
            self.srv = None
