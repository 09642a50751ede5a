"""test_webhook_envelopes.py - every dialect's webhook envelope as a local HTTPS receiver gets
it (issue 7): instances created through native /v1 (EnviaAI), Evolution, Hypersender and
Wachat, linked through `wagate sandbox`, a peer phone writes to them, and each request is
checked field by field: event name, instance, data, destination, date_time, sender,
server_url, apikey, byEvents URL suffixes, the instance's own headers, the dialect's headers,
and the signatures (HMAC-SHA256 of the raw body with the instance's webhook secret).
Also: webhook.headers validation (400/422 naming the field) and read back.
"""
import base64
import hashlib
import hmac
import json
import re
import shutil
import tempfile
import time

from harness import Server
from receiver import Receiver
from test_link import Sandbox

ADMIN = "wga_env_test_admin_key_0123456789ab"
PUBLIC = "https://gw.example.test"
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
SB = SRV = RCV = TMP = None
PHONES = iter(range(5531900000000, 5531999999999))


def setup_module():
    global SB, SRV, RCV, TMP
    SB = Sandbox().start()
    TMP = tempfile.mkdtemp(prefix="wagate-env-")
    RCV = Receiver(TMP).start()
    env = {"WAGATE_ADMIN_KEY": ADMIN, "WAGATE_WA_URL": SB.url(), "WAGATE_WA_ROOT_KEY": SB.root,
           "WAGATE_RATE_CREATE": "0", "WAGATE_RATE_WRITE": "0", "WAGATE_RATE_READ": "0",
           "WAGATE_WA_PREKEYS_INITIAL": "50", "WAGATE_WORKERS": "2", "WAGATE_QR_WAIT_MS": "10000",
           "WAGATE_WEBHOOK_ALLOW_PRIVATE": "1", "WAGATE_WEBHOOK_CA": RCV.ca_file,
           "WAGATE_WEBHOOK_BACKOFF_MS": "30", "WAGATE_WEBHOOK_BACKOFF_MAX_MS": "200",
           "WAGATE_PUBLIC_URL": PUBLIC + "/"}
    SRV = Server(env=env).start()


def teardown_module():
    if SRV:
        SRV.stop()
    if RCV:
        RCV.stop()
    if SB:
        SB.cleanup()
    shutil.rmtree(TMP, ignore_errors=True)


# ---- helpers -----------------------------------------------------------------------------
def wait_for(fn, what, timeout=25):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(0.05)
    raise AssertionError("timed out waiting for %s (last %r)\n%s" % (
        what, last, SRV.stderr()[-3000:]))


def new_phone(push):
    n = str(next(PHONES))
    st, js = SB.api("POST", "/phones", {"number": n, "pushName": push})
    assert st == 201, (st, js)
    return n


def jid(n):
    return n + "@s.whatsapp.net"


def native_qr(iid):
    def code():
        st, _, js = SRV.request("GET", "/v1/instances/%s/qr" % iid, token=ADMIN)
        return st == 200 and js["data"]["code"]
    return wait_for(code, "QR of " + iid)


def scan(phone, code, iid):
    st, js = SB.api("POST", "/phones/%s/scan" % phone, {"qr": code})
    assert st == 200, (st, js)

    def working():  # WORKING comes after the prekey upload: peers can reach the device
        st, _, js = SRV.request("GET", "/v1/instances/" + iid, token=ADMIN)
        return js["data"]["status"] == "WORKING"
    wait_for(working, "WORKING")


def profile_name(iid):
    """The push name the gateway stored for the linked account (None when WhatsApp sent none)."""
    st, _, js = SRV.request("GET", "/v1/instances/" + iid, token=ADMIN)
    assert st == 200, js
    return js["data"]["profileName"]


def phone_send(phone, to, text):
    st, js = SB.api("POST", "/phones/%s/messages" % phone, {"to": to, "text": text})
    assert st == 200, (st, js)
    return js["id"]


def got(prefix):
    """Requests that reached RCV under path prefix, as (path, headers, body bytes, parsed)."""
    return [(g["path"], g["headers"], g["body"], json.loads(g["body"]))
            for g in RCV.snapshot() if g["path"].startswith(prefix)]


def one(prefix, pred, what):
    return wait_for(lambda: next((x for x in got(prefix) if pred(x[3])), None), what)


def secret_of(iid):
    rows = SRV.db_rows("SELECT webhook FROM instances WHERE id = ?", (iid,))
    return json.loads(rows[0][0])["secret"]


def check_sig(secret, hdrs, body, enviaai):
    mac = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    assert hdrs["x-wagate-signature"] == mac, hdrs
    if enviaai:
        assert hdrs["x-enviaai-signature"] == mac, hdrs
    else:
        assert "x-enviaai-signature" not in hdrs, hdrs
    assert hdrs["content-type"] == "application/json", hdrs
    assert hdrs["x-wagate-delivery"].startswith("evt_"), hdrs


# ---- native / EnviaAI ---------------------------------------------------------------------
def test_native_envelope_headers_and_signatures():
    owner, peer = new_phone("NOwner"), new_phone("NPeer")
    st, _, js = SRV.request("POST", "/v1/instances", {
        "name": "env-native", "webhookUrl": RCV.url("/native"),
        "webhookHeaders": {"Authorization": "Bearer n-1", "X-Tenant": "acme"}},
        token=ADMIN, timeout=30)
    assert st == 201, js
    iid, secret = js["data"]["id"], js["data"]["webhookSecret"]
    scan(owner, js["data"]["qrCode"]["code"], iid)
    mid = phone_send(peer, owner, "hello native")
    path, hdrs, body, ev = one("/native", lambda e: e["event"] == "message.received",
                               "native message.received")
    assert path == "/native", path
    assert set(ev) == {"id", "event", "instanceId", "seq", "timestamp", "data"}, ev
    assert ev["instanceId"] == iid and ISO.match(ev["timestamp"]), ev
    d = ev["data"]
    assert d["id"] == mid and d["chat"] == jid(peer) and d["from"] == jid(peer), d
    assert d["fromMe"] is False and d["pushName"] == "NPeer", d
    assert d["message"] == {"type": "text", "text": "hello native"}, d
    assert hdrs["authorization"] == "Bearer n-1" and hdrs["x-tenant"] == "acme", hdrs
    assert hdrs["x-wagate-event"] == "message.received", hdrs
    assert hdrs["x-wagate-delivery"] == ev["id"], hdrs
    check_sig(secret, hdrs, body, enviaai=True)
    # every request of this instance is signed both ways and carries its headers
    for _, h, b, _e in got("/native"):
        check_sig(secret, h, b, enviaai=True)
        assert h["authorization"] == "Bearer n-1", h
    # PATCH replaces the headers; bad ones are refused naming the field
    for bad in ({"Content-Type": "text/plain"}, {"X-A": "v\r\nX-Injected: 1"},
                {"bad name": "v"}, {"X-Wagate-Signature": "x"}, {"X-A": 5},
                {("X-%d" % i): "v" for i in range(21)}, ["not", "an", "object"]):
        st, _, js = SRV.request("PATCH", "/v1/instances/" + iid, {"webhookHeaders": bad},
                                token=ADMIN)
        assert st == 422 and js["error"]["field"] == "webhookHeaders", (bad, st, js)
    st, _, js = SRV.request("PATCH", "/v1/instances/" + iid, {"webhookHeaders": {"X-New": "2"}},
                            token=ADMIN)
    assert st == 200, js
    phone_send(peer, owner, "after patch")
    _, hdrs, _, _ = one("/native", lambda e: e["event"] == "message.received"
                        and e["data"]["message"].get("text") == "after patch", "after patch")
    assert hdrs["x-new"] == "2" and "authorization" not in hdrs, hdrs


# ---- Evolution ------------------------------------------------------------------------------
def evo(method, path, body=None):
    st, _, js = SRV.request(method, "/evolution" + path, body, token=ADMIN, auth="apikey",
                            timeout=30)
    return st, js


def check_evo_envelope(ev, name, dest, sender):
    assert set(ev) == {"event", "instance", "data", "destination", "date_time", "sender",
                       "server_url", "apikey"}, ev
    assert ev["instance"] == name, ev
    assert ev["destination"] == dest, ev
    assert ISO.match(ev["date_time"]), ev
    assert ev["sender"] == sender, ev
    assert ev["server_url"] == PUBLIC, ev
    assert ev["apikey"] is None, ev


def test_evolution_envelope_by_events_and_headers():
    owner, peer = new_phone("EOwner"), new_phone("EPeer")
    dest = RCV.url("/evo")
    st, js = evo("POST", "/instance/create", {
        "instanceName": "env-evo", "qrcode": True, "integration": "WHATSAPP-BAILEYS",
        "webhook": {"url": dest, "byEvents": True, "base64": False,
                    "headers": {"Authorization": "Bearer evo-1", "X-Tenant": "t1"},
                    "events": ["QRCODE_UPDATED", "CONNECTION_UPDATE", "MESSAGES_UPSERT",
                               "SEND_MESSAGE", "MESSAGES_UPDATE"]}})
    assert st == 201, js
    iid, code = js["instance"]["instanceId"], js["qrcode"]["code"]
    assert js["webhook"]["webhookHeaders"] == {"Authorization": "Bearer evo-1", "X-Tenant": "t1"}
    st, js = evo("GET", "/webhook/find/env-evo")
    assert st == 200 and js["headers"] == {"Authorization": "Bearer evo-1", "X-Tenant": "t1"}, js
    secret = secret_of(iid)
    # the QR as Evolution shows it, before linking: sender null
    path, hdrs, body, ev = one("/evo", lambda e: e["event"] == "qrcode.updated"
                               and e["data"]["qrcode"]["code"] == code, "qrcode.updated")
    assert path == "/evo/qrcode-updated", path
    check_evo_envelope(ev, "env-evo", dest, None)
    q = ev["data"]["qrcode"]
    assert q["instance"] == "env-evo" and q["pairingCode"] is None, q
    assert base64.b64decode(q["base64"][len("data:image/png;base64,"):])[:4] == b"\x89PNG", q
    assert hdrs["authorization"] == "Bearer evo-1" and hdrs["x-tenant"] == "t1", hdrs
    assert hdrs["x-wagate-event"] == "qr.updated", hdrs
    check_sig(secret, hdrs, body, enviaai=False)
    scan(owner, code, iid)
    path, hdrs, body, ev = one("/evo", lambda e: e["event"] == "connection.update"
                               and e["data"]["state"] == "open", "connection.update open")
    assert path == "/evo/connection-update", path
    check_evo_envelope(ev, "env-evo", dest, jid(owner))
    assert ev["data"] == {"instance": "env-evo", "state": "open", "statusReason": 200,
                          "wuid": jid(owner), "profileName": profile_name(iid),
                          "profilePictureUrl": None}, ev["data"]
    assert any(e["event"] == "connection.update" and e["data"]["state"] == "connecting"
               for _, _, _, e in got("/evo/connection-update")), got("/evo/connection-update")
    # a text from the peer: messages.upsert with Baileys' fields
    mid = phone_send(peer, owner, "hello evo")
    path, hdrs, body, ev = one("/evo", lambda e: e["event"] == "messages.upsert",
                               "messages.upsert")
    assert path == "/evo/messages-upsert", path
    check_evo_envelope(ev, "env-evo", dest, jid(owner))
    d = ev["data"]
    assert d["key"] == {"remoteJid": jid(peer), "fromMe": False, "id": mid}, d
    assert d["pushName"] == "EPeer" and d["status"] == "DELIVERY_ACK", d
    assert d["message"] == {"conversation": "hello evo"} and d["messageType"] == "conversation", d
    assert isinstance(d["messageTimestamp"], int) and abs(d["messageTimestamp"] - time.time()) < 120
    assert d["instanceId"] == iid, d
    assert d["source"] in ("ios", "web", "android", "desktop", "unknown"), d
    assert hdrs["authorization"] == "Bearer evo-1" and hdrs["x-tenant"] == "t1", hdrs
    check_sig(secret, hdrs, body, enviaai=False)
    # our own phone writes: send.message, fromMe
    mid2 = phone_send(owner, peer, "from the phone")
    path, _, _, ev = one("/evo", lambda e: e["event"] == "send.message", "send.message")
    assert path == "/evo/send-message", path
    d = ev["data"]
    assert d["key"] == {"remoteJid": jid(peer), "fromMe": True, "id": mid2}, d
    assert d["status"] == "SERVER_ACK" and d["message"] == {"conversation": "from the phone"}, d
    # a text sent through the API: the peer's receipt is messages.update
    st, _, js = SRV.request("POST", "/v1/instances/%s/messages" % iid,
                            {"to": "+" + peer, "text": "via api"}, token=ADMIN, timeout=40)
    assert st == 200, js
    sent_id = js["data"]["messageId"]
    path, _, _, ev = one("/evo", lambda e: e["event"] == "messages.update"
                         and e["data"]["keyId"] == sent_id, "messages.update")
    assert path == "/evo/messages-update", path
    d = ev["data"]
    assert d["remoteJid"] == jid(peer) and d["fromMe"] is True and d["instanceId"] == iid, d
    assert d["status"] in ("DELIVERY_ACK", "READ"), d
    # every Evolution request: no EnviaAI header, signed, custom headers
    for p, h, b, e in got("/evo"):
        check_sig(secret, h, b, enviaai=False)
        assert h["x-tenant"] == "t1", h
        assert p == "/evo/" + e["event"].replace(".", "-"), (p, e["event"])
    # webhook/set: new headers, byEvents off; invalid headers -> 400 naming the field
    st, js = evo("POST", "/webhook/set/env-evo", {"webhook": {
        "enabled": True, "url": dest, "byEvents": False, "headers": {"X-Tenant": "t2"},
        "events": ["MESSAGES_UPSERT"]}})
    assert st == 201 and js["headers"] == {"X-Tenant": "t2"}, js
    for bad in ({"Host": "evil"}, {"X-A": "a\nb"}, {"": "v"}):
        st, js = evo("POST", "/webhook/set/env-evo", {"webhook": {
            "enabled": True, "url": dest, "headers": bad}})
        assert st == 400 and "webhookHeaders" in js["response"]["message"][0], (bad, st, js)
    phone_send(peer, owner, "no suffix now")
    path, hdrs, _, ev = one("/evo", lambda e: e["event"] == "messages.upsert"
                            and e["data"]["message"].get("conversation") == "no suffix now",
                            "upsert without byEvents")
    assert path == "/evo" and hdrs["x-tenant"] == "t2" and "authorization" not in hdrs, (
        path, hdrs)
    # REMOVE_INSTANCE is not among its events: instance.deleted is filtered out, never sent
    st, js = evo("DELETE", "/instance/delete/env-evo")
    assert st == 200, js

    def deleted_state():
        rows = SRV.db_rows("SELECT state, last_error FROM outbox WHERE instance_id = ? AND "
                           "event = 'instance.deleted'", (iid,))
        return rows and rows[0][0] != "pending" and rows[0]
    assert tuple(wait_for(deleted_state, "instance.deleted outcome")) == ("skipped", "filtered")
    assert not [e for _, _, _, e in got("/evo") if e["event"] == "remove.instance"]


# ---- Hypersender ----------------------------------------------------------------------------
def test_hypersender_envelope():
    st, _, js = SRV.request("POST", "/v1/accounts", {"name": "env-hs", "plan": "pro"},
                            token=ADMIN)
    assert st == 201, js
    acc, key = js["data"]["id"], js["data"]["apiKey"]
    owner, peer = new_phone("HOwner"), new_phone("HPeer")
    st, _, js = SRV.request("POST", "/hypersender/create-instance", {
        "phone": "+" + owner, "name": "env-hs", "webhook_url": RCV.url("/hs")},
        token=key, timeout=30)
    assert st == 201, js
    iid = js["id"]
    scan(owner, native_qr(iid), iid)
    mid = phone_send(peer, owner, "hello hs")
    path, hdrs, body, ev = one("/hs", lambda e: e["event"] == "message.any", "message.any")
    assert path == "/hs", path
    assert set(ev) == {"event", "data"}, ev
    d = ev["data"]
    assert set(d) == {"id", "event", "metadata", "me", "payload", "instanceId", "userId"}, d
    assert d["event"] == "message.any" and d["id"] == hdrs["x-wagate-delivery"], d
    assert d["instanceId"] == iid and d["userId"] == acc and d["metadata"] == [], d
    assert d["me"] == {"id": owner + "@c.us", "pushName": profile_name(iid), "lid": None}, d
    p = d["payload"]
    assert p["id"] == "false_%s@c.us_%s" % (peer, mid), p
    assert p["from"] == peer + "@c.us" and p["fromMe"] is False and p["body"] == "hello hs", p
    assert p["hasMedia"] is False and p["media"] is None and p["replyTo"] is None, p
    assert p["ack"] == 2 and p["ackName"] == "DEVICE", p
    assert isinstance(p["timestamp"], int), p
    assert p["_data"]["key"] == {"remoteJid": jid(peer), "fromMe": False, "id": mid}, p
    assert p["_data"]["message"] == {"conversation": "hello hs"}, p
    assert hdrs["x-userid"] == acc and hdrs["x-instanceid"] == iid, hdrs
    check_sig(secret_of(iid), hdrs, body, enviaai=False)
    _, _, _, ev = one("/hs", lambda e: e["event"] == "session.status"
                      and e["data"]["payload"]["status"] == "WORKING", "session.status")
    assert ev["data"]["payload"] == {"name": "env-hs", "status": "WORKING"}, ev


# ---- Wachat ---------------------------------------------------------------------------------
def test_wachat_envelope_uses_api_instance_name():
    owner, peer = new_phone("WOwner"), new_phone("WPeer")
    st, _, js = SRV.request("POST", "/wachat/instance/create", {
        "instanceName": "env-wachat", "integration": "WHATSAPP-BAILEYS"}, token=ADMIN,
        timeout=30)
    assert st == 201, js
    iid, api = js["instance"]["instanceId"], js["instance"]["apiInstanceName"]
    assert api != "env-wachat" and re.match(r"^t\d+_", api), api
    dest = RCV.url("/wachat")
    st, _, js = SRV.request("PATCH", "/v1/instances/" + iid, {"webhookUrl": dest}, token=ADMIN)
    assert st == 200, js
    scan(owner, native_qr(iid), iid)
    mid = phone_send(peer, owner, "hello wachat")
    path, hdrs, body, ev = one("/wachat", lambda e: e["event"] == "messages.upsert",
                               "wachat messages.upsert")
    assert path == "/wachat", path
    check_evo_envelope(ev, api, dest, jid(owner))
    assert ev["data"]["key"]["id"] == mid and ev["data"]["instanceId"] == iid, ev
    assert ev["data"]["message"] == {"conversation": "hello wachat"}, ev
    secret = secret_of(iid)
    check_sig(secret, hdrs, body, enviaai=False)
    # no event filter: the deletion arrives as Evolution's remove.instance, data null, with the
    # name and settings the instance had
    st, _, js = SRV.request("DELETE", "/wachat/instance/delete/" + api, token=ADMIN)
    assert st == 200, js
    _, hdrs, body, ev = one("/wachat", lambda e: e["event"] == "remove.instance",
                            "remove.instance")
    check_evo_envelope(ev, api, dest, jid(owner))
    assert ev["data"] is None, ev
    check_sig(secret, hdrs, body, enviaai=False)
