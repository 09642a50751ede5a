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


def phone_inbox(phone):
    st, js = SB.api("GET", "/phones/%s/messages" % phone)
    assert st == 200, (st, js)
    return js


def test_enviaai_messages_send():
    env = {"WAGATE_ADMIN_KEY": ADMIN, "WAGATE_WA_URL": SB.url(), "WAGATE_WA_ROOT_KEY": SB.root,
           "WAGATE_RATE_CREATE": "0", "WAGATE_RATE_WRITE": "0", "WAGATE_RATE_READ": "0",
           "WAGATE_WA_PREKEYS_INITIAL": "50", "WAGATE_WORKERS": "2", "WAGATE_QR_WAIT_MS": "10000"}
    srv = Server(env=env).start()
    try:
        st, _, js = srv.request("POST", "/v1/accounts", {"name": "ea-b", "plan": "pro"},
                                token=ADMIN)
        assert st == 201, js
        kb = js["data"]["apiKey"]
        st, _, js = srv.request("POST", "/v1/instances", {"name": "ea-send"}, token=ADMIN,
                                timeout=30)
        assert st == 201, js
        iid, tok, qr = js["data"]["id"], js["data"]["accessToken"], js["data"]["qrCode"]["code"]
        st, _, js = srv.request("POST", "/v1/instances", {"name": "ea-other"}, token=kb)
        assert st == 201, js
        other_tok = js["data"]["accessToken"]

        def send(body, key=tok, raw=None):
            st, _, js = srv.request("POST", "/v1/messages/send", body, token=key, raw=raw,
                                    timeout=40)
            return st, js

        def err(st, js, status, code, field):
            assert st == status, (st, js)
            assert js["success"] is False and js["error"]["code"] == code, js
            assert js["error"]["field"] == field, js

        base = 5511950000000 + int(time.time()) % 100000
        owner, peer = str(base), str(base + 1)
        body = {"instanceId": iid, "to": peer, "message": "hello from enviaai"}
        err(*send(body), 409, "instance_not_connected", None)
        for n in (owner, peer):
            st, pj = SB.api("POST", "/phones", {"number": n, "pushName": "EA " + n})
            assert st == 201, pj
        st, sj = SB.api("POST", "/phones/%s/scan" % owner, {"qr": qr})
        assert st == 200, sj
        deadline = time.time() + 20
        while True:
            st, _, js = srv.request("GET", "/v1/instances/%s/status" % iid, token=tok)
            if st == 200 and js["data"]["status"] == "connected":
                break
            assert time.time() < deadline, (st, js, srv.stderr()[-3000:])
            time.sleep(0.1)
        # the documented flat answer (no data envelope)
        t0 = time.time()
        st, js = send(body)
        assert st == 200, (st, js, srv.stderr()[-3000:])
        assert set(js) == {"success", "messageId", "status", "timestamp"}, js
        assert js["success"] is True and js["status"] == "sent", js
        assert re.fullmatch(r"3EB0[0-9A-F]{18}", js["messageId"]), js
        assert ISO.match(js["timestamp"]), js
        ts = time.mktime(time.strptime(js["timestamp"][:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone
        assert t0 - 2 <= ts <= time.time() + 1, (js, t0)
        deadline = time.time() + 20
        while not [m for m in phone_inbox(peer) if m["text"] == "hello from enviaai"]:
            assert time.time() < deadline, phone_inbox(peer)
            time.sleep(0.05)
        got = [m for m in phone_inbox(peer) if m["text"] == "hello from enviaai"]
        assert got[0]["id"] == js["messageId"], got
        first = js["messageId"]
        st, js = send({"instanceId": iid, "to": "+" + peer, "message": "a reply",
                       "quotedMessageId": first, "metadata": {"order": 7}}, key=ADMIN)
        assert st == 200 and js["messageId"] != first, (st, js)
        # validation in the native shape, naming EnviaAI's fields
        err(*send({"to": peer, "message": "x"}), 422, "validation_error", "instanceId")
        err(*send({"instanceId": 5, "to": peer, "message": "x"}), 422, "validation_error",
            "instanceId")
        err(*send({"instanceId": iid, "message": "x"}), 422, "validation_error", "to")
        err(*send({"instanceId": iid, "to": "nope", "message": "x"}), 422, "validation_error",
            "to")
        err(*send({"instanceId": iid, "to": peer}), 422, "validation_error", "message")
        err(*send({"instanceId": iid, "to": peer, "message": ""}), 422, "validation_error",
            "message")
        err(*send({"instanceId": iid, "to": peer, "mediaUrl": "https://a.com/x.png",
                   "mediaType": "image"}), 422, "validation_error", "mediaUrl")
        err(*send(None, raw="{x"), 400, "invalid_json", None)
        err(*send({"instanceId": iid, "to": "4900000000001", "message": "x"}), 404,
            "not_on_whatsapp", "to")
        # auth and ownership: another owner's instance is missing
        err(*send(body, key=None), 401, "unauthorized", None)
        err(*send(body, key=kb), 404, "not_found", None)
        err(*send(body, key=other_tok), 404, "not_found", None)
        err(*send(dict(body, instanceId="ghost"), key=ADMIN), 404, "not_found", None)
        assert [m["text"] for m in phone_inbox(peer)] == ["hello from enviaai", "a reply"]
    finally:
        srv.stop()
