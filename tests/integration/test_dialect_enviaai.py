"""test_dialect_enviaai.py - EnviaAI's connection routes on /v1 (issue 7) against `wagate
sandbox`: connect {method:"qrcode"} -> qr_pending with a data: URI QR and its expiry, qrcode,
status (connected | disconnected | connecting | qr_pending), disconnect, errors in the native
shape, other owners' ids answering 404, and the x-enviaai-signature webhook header (HMAC-SHA256
of the raw body) as received by a local HTTPS receiver.
"""
import base64
import hashlib
import hmac
import re
import shutil
import tempfile
import time

from harness import Server
from receiver import Receiver
from test_link import Sandbox

ADMIN = "wga_ea_test_admin_key_0123456789ab"
SB = None
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def setup_module():
    global SB
    SB = Sandbox().start()


def teardown_module():
    if SB:
        SB.cleanup()


def check_conn(d, status):
    assert d["status"] == status, d
    if status == "qr_pending":
        assert d["qrCode"].startswith("data:image/png;base64,"), d
        png = base64.b64decode(d["qrCode"][len("data:image/png;base64,"):])
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        assert ISO.match(d["qrCodeExpiresAt"]), d
    else:
        assert d["qrCode"] is None and d["qrCodeExpiresAt"] is None, d


def test_enviaai_connect_status_disconnect_and_signature():
    tmp = tempfile.mkdtemp(prefix="wagate-ea-")
    rcv = Receiver(tmp).start()
    env = {"WAGATE_ADMIN_KEY": ADMIN, "WAGATE_WA_URL": SB.url(), "WAGATE_WA_ROOT_KEY": SB.root,
           "WAGATE_RATE_CREATE": "0", "WAGATE_RATE_WRITE": "0", "WAGATE_RATE_READ": "0",
           "WAGATE_WA_PREKEYS_INITIAL": "50", "WAGATE_WORKERS": "2", "WAGATE_QR_WAIT_MS": "0",
           "WAGATE_WEBHOOK_ALLOW_PRIVATE": "1", "WAGATE_WEBHOOK_CA": rcv.ca_file,
           "WAGATE_WEBHOOK_BACKOFF_MS": "30", "WAGATE_WEBHOOK_BACKOFF_MAX_MS": "200"}
    srv = Server(env=env).start()
    try:
        st, _, js = srv.request("POST", "/v1/instances", {"name": "ea-one",
                                                          "webhookUrl": rcv.url("/hook")},
                                token=ADMIN)
        assert st == 201, js
        iid, tok, secret = js["data"]["id"], js["data"]["accessToken"], js["data"]["webhookSecret"]
        st, _, other = srv.request("POST", "/v1/instances", {"name": "ea-two"}, token=ADMIN)
        assert st == 201
        tok2 = other["data"]["accessToken"]

        def call(method, path, body=None, key=tok):
            st, _, js = srv.request(method, "/v1/instances/%s%s" % (iid, path), body, token=key,
                                    timeout=30)
            return st, js

        st, js = call("POST", "/connect", {"method": "pairing"})
        assert st == 422 and js["success"] is False and js["error"]["field"] == "method", js
        st, js = call("GET", "/status", key=None)
        assert st == 401 and js["success"] is False, js
        for path in ("/status", "/qrcode"):
            st, js = call("GET", path, key=tok2)  # another instance's token: not found
            assert st == 404 and js["error"]["code"] == "not_found", js
        st, js = call("POST", "/connect", {"method": "qrcode"})
        assert st == 200 and js["success"] is True, (st, js)
        assert set(js["data"]) == {"status", "qrCode", "qrCodeExpiresAt"}, js
        check_conn(js["data"], "qr_pending")
        st, js = call("GET", "/qrcode")
        assert st == 200, js
        check_conn(js["data"], "qr_pending")
        st, js = call("GET", "/status")
        assert st == 200 and set(js["data"]) == {"id", "status", "qrCode", "qrCodeExpiresAt",
                                                  "phone", "profileName"}, js
        check_conn(js["data"], "qr_pending")
        # link: the phone scans the QR text (native route), then connected
        st, _, q = srv.request("GET", "/v1/instances/%s/qr" % iid, token=tok)
        phone = str(5511960000000 + int(time.time()) % 100000)
        assert SB.api("POST", "/phones", {"number": phone, "pushName": "Envia"})[0] == 201
        st, sj = SB.api("POST", "/phones/%s/scan" % phone, {"qr": q["data"]["code"]})
        assert st == 200, sj
        deadline = time.time() + 20
        while call("GET", "/status")[1]["data"]["status"] != "connected":
            assert time.time() < deadline, srv.stderr()[-3000:]
            time.sleep(0.1)
        st, js = call("GET", "/status")
        check_conn(js["data"], "connected")
        assert js["data"]["phone"] == "+" + phone and js["data"]["id"] == iid, js
        st, js = call("GET", "/qrcode")
        assert st == 404 and js["error"]["code"] == "qr_not_available", js
        st, js = call("POST", "/connect", {"method": "qrcode"})
        assert st == 200, js
        check_conn(js["data"], "connected")
        st, js = call("POST", "/disconnect")
        assert st == 200 and js["data"] == {"id": iid, "status": "disconnected"}, js
        st, js = call("GET", "/status")
        check_conn(js["data"], "disconnected")
        # connect again: a new QR
        st, js = call("POST", "/connect", {"method": "qrcode"}, key=ADMIN)
        assert st == 200, js
        check_conn(js["data"], "qr_pending")
        # webhooks carry x-enviaai-signature = sha256=HMAC-SHA256(secret, raw body)
        deadline = time.time() + 20
        while not any(g["instance"] == iid for g in rcv.snapshot()):
            assert time.time() < deadline, "no webhook"
            time.sleep(0.05)
        for g in rcv.snapshot():
            mac = hmac.new(secret.encode(), g["body"], hashlib.sha256).hexdigest()
            assert g["headers"]["x-enviaai-signature"] == "sha256=" + mac, g["headers"]
            assert g["headers"]["x-wagate-signature"] == "sha256=" + mac
    finally:
        srv.stop()
        rcv.stop()
        shutil.rmtree(tmp, ignore_errors=True)
