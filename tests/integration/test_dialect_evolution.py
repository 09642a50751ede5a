"""test_dialect_evolution.py - the Evolution API v2 dialect (issue 7) against `wagate sandbox`:
create (every field of the 201, the first real QR as a data: URI PNG), the error shape
{status, error, response:{message:[…]}} for 400/401/403/404/405, auth before existence, an
instance token confined to its own instance, fetchInstances filtered per owner without tokens,
connect/connectionState/restart/logout/delete across a real QR link by a sandbox phone, the
mount at / with WAGATE_ROOT_DIALECT=evolution, and that native routes keep the native shape.
"""
import base64
import re
import time

from harness import Server
from test_link import Sandbox

ADMIN = "wga_evo_test_admin_key_0123456789"
SB = None
IID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")  # the core id is a UUID v4, as Evolution documents


def setup_module():
    global SB
    SB = Sandbox().start()


def teardown_module():
    if SB:
        SB.cleanup()


def gateway():
    e = {"WAGATE_ADMIN_KEY": ADMIN, "WAGATE_WA_URL": SB.url(), "WAGATE_WA_ROOT_KEY": SB.root,
         "WAGATE_RATE_CREATE": "0", "WAGATE_RATE_WRITE": "0", "WAGATE_RATE_READ": "0",
         "WAGATE_WA_PREKEYS_INITIAL": "50", "WAGATE_WORKERS": "2", "WAGATE_QR_WAIT_MS": "10000",
         "WAGATE_ROOT_DIALECT": "evolution"}
    return Server(env=e).start()


def account(srv, name):
    st, _, js = srv.request("POST", "/v1/accounts", {"name": name, "plan": "pro"}, token=ADMIN)
    assert st == 201, (st, js)
    return js["data"]["apiKey"]


def evo(srv, method, path, body=None, key=None, prefix="/evolution"):
    st, hdrs, js = srv.request(method, prefix + path, body, token=key, auth="apikey", timeout=30)
    return st, js


def assert_err(st, js, want_status, want_error, msg=None):
    assert st == want_status, (st, js)
    assert set(js) == {"status", "error", "response"}, js
    assert js["status"] == want_status and js["error"] == want_error, js
    assert isinstance(js["response"]["message"], list) and len(js["response"]["message"]) == 1, js
    if msg is not None:
        assert js["response"]["message"][0] == msg, js


def state(srv, name, key):
    st, js = evo(srv, "GET", "/instance/connectionState/" + name, key=key)
    assert st == 200, (st, js)
    assert js == {"instance": {"instanceName": name, "state": js["instance"]["state"]}}, js
    return js["instance"]["state"]


def wait_state(srv, name, key, want, timeout=20):
    deadline = time.time() + timeout
    s = None
    while time.time() < deadline:
        s = state(srv, name, key)
        if s == want:
            return
        time.sleep(0.05)
    raise AssertionError("%s: state %s, want %s\n%s" % (name, s, want, srv.stderr()[-3000:]))


def check_qrcode(q):
    assert set(q) == {"pairingCode", "code", "base64", "count"}, q
    assert q["pairingCode"] is None and q["count"] == 1, q
    assert q["code"].count(",") >= 3, q["code"]
    assert q["base64"].startswith("data:image/png;base64,"), q["base64"][:40]
    png = base64.b64decode(q["base64"][len("data:image/png;base64,"):])
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_evolution_create_errors_auth_and_lifecycle():
    srv = gateway()
    try:
        ka, kb = account(srv, "evo-a"), account(srv, "evo-b")
        # auth before validation and existence
        assert_err(*evo(srv, "POST", "/instance/create", {}), 401, "Unauthorized", "Unauthorized")
        assert_err(*evo(srv, "POST", "/instance/create", {"instanceName": "x"}, key="nope"),
                   401, "Unauthorized")
        assert_err(*evo(srv, "GET", "/instance/connectionState/ghost"), 401, "Unauthorized")
        assert_err(*evo(srv, "GET", "/instance/connectionState/ghost", key="bad-key-123"), 401,
                   "Unauthorized")
        # validation: 400
        assert_err(*evo(srv, "POST", "/instance/create", {}, key=ka), 400, "Bad Request",
                   "instanceName is required")
        assert_err(*evo(srv, "POST", "/instance/create", {"instanceName": "v", "integration":
                                                            "WHATSAPP-FOO"}, key=ka),
                   400, "Bad Request", "Invalid integration")
        st, js = evo(srv, "POST", "/instance/create",
                     {"instanceName": "v", "webhook": {"url": "https://myapp.com/h",
                                                      "events": ["MESSAGES_UPSERT", "NOPE"]}},
                     key=ka)
        assert_err(st, js, 400, "Bad Request")
        assert "NOPE" in js["response"]["message"][0], js
        st, js = evo(srv, "POST", "/instance/create", {"instanceName": "v", "rejectCall": "yes"},
                     key=ka)
        assert_err(st, js, 400, "Bad Request")
        # a real create with a QR
        body = {"instanceName": "evo-one", "qrcode": True, "integration": "WHATSAPP-BAILEYS",
                "rejectCall": True, "msgCall": "busy", "groupsIgnore": True,
                "webhook": {"url": "https://myapp.com/hook", "byEvents": True, "base64": False,
                            "headers": {"x-a": "1"},
                            "events": ["MESSAGES_UPSERT", "CONNECTION_UPDATE", "CHATS_UPSERT"]}}
        st, js = evo(srv, "POST", "/instance/create", body, key=ka)
        assert st == 201, (st, js, srv.stderr()[-2000:])
        assert set(js) == {"instance", "hash", "webhook", "rabbitmq", "nats", "sqs", "settings",
                           "qrcode"}, js
        i = js["instance"]
        assert set(i) == {"instanceName", "instanceId", "integration", "webhookWaBusiness",
                          "accessTokenWaBusiness", "status"}, i
        assert i["instanceName"] == "evo-one" and IID.match(i["instanceId"]), i
        assert i["integration"] == "WHATSAPP-BAILEYS" and i["webhookWaBusiness"] is None, i
        assert i["accessTokenWaBusiness"] == "" and i["status"] == "connecting", i
        tok = js["hash"]
        assert isinstance(tok, str) and len(tok) >= 16, js
        assert js["webhook"] == {"webhookUrl": "https://myapp.com/hook", "webhookHeaders":
                                 {"x-a": "1"}, "webhookByEvents": True, "webhookBase64": False,
                                 "events": body["webhook"]["events"]}, js["webhook"]
        for k in ("rabbitmq", "nats", "sqs"):
            assert js[k] == {"enabled": False}, js
        assert js["settings"] == {"rejectCall": True, "msgCall": "busy", "groupsIgnore": True,
                                  "alwaysOnline": False, "readMessages": False,
                                  "readStatus": False, "syncFullHistory": False}, js["settings"]
        check_qrcode(js["qrcode"])
        qr1 = js["qrcode"]["code"]
        # the dialect is remembered
        rows = srv.db_rows("SELECT dialect FROM instances WHERE id = ?", (i["instanceId"],))
        assert rows[0][0] == "evolution", rows
        # name in use: 403
        assert_err(*evo(srv, "POST", "/instance/create", {"instanceName": "evo-one"}, key=ka),
                   403, "Forbidden", 'This name "evo-one" is already in use.')
        # another owner's instance, without a QR wait
        st, js2 = evo(srv, "POST", "/instance/create", {"instanceName": "evo-two"}, key=kb)
        assert st == 201 and "qrcode" not in js2, js2
        tok2 = js2["hash"]
        # ownership: account B cannot see A's instance (same answer as a missing name)
        assert_err(*evo(srv, "GET", "/instance/connectionState/evo-one", key=kb), 404,
                   "Not Found", 'The "evo-one" instance does not exist')
        assert_err(*evo(srv, "GET", "/instance/connectionState/ghost", key=ka), 404,
                   "Not Found", 'The "ghost" instance does not exist')
        # an instance token reaches its own instance only; other names are 401 (no probing)
        assert state(srv, "evo-one", tok) == "connecting"
        assert_err(*evo(srv, "GET", "/instance/connectionState/evo-two", key=tok), 401,
                   "Unauthorized")
        assert_err(*evo(srv, "GET", "/instance/connectionState/ghost", key=tok), 401,
                   "Unauthorized")
        assert_err(*evo(srv, "DELETE", "/instance/delete/evo-one", key=tok2), 401,
                   "Unauthorized")
        assert_err(*evo(srv, "POST", "/instance/create", {"instanceName": "z"}, key=tok), 401,
                   "Unauthorized")
        # a token of this dialect cannot reach another owner's instance natively either
        st, _, nj = srv.request("GET", "/v1/instances/" + js2["instance"]["instanceId"],
                                token=tok)
        assert st == 404 and nj["success"] is False, nj
        # fetchInstances: per owner, filtered, never tokens
        for key, want in ((ka, ["evo-one"]), (kb, ["evo-two"]), (tok, ["evo-one"]),
                          (tok2, ["evo-two"]), (ADMIN, ["evo-one", "evo-two"])):
            st, arr = evo(srv, "GET", "/instance/fetchInstances", key=key)
            assert st == 200 and sorted(x["name"] for x in arr) == want, (key, arr)
            for x in arr:
                assert "token" not in x and "hash" not in x and "token_hash" not in x, x
                assert set(x) == {"id", "name", "connectionStatus", "ownerJid", "profileName",
                                  "profilePicUrl", "integration", "number", "businessId",
                                  "clientName", "createdAt", "updatedAt", "Setting",
                                  "Chatwoot", "Rabbitmq", "Sqs", "Nats"}, x
        st, arr = evo(srv, "GET", "/instance/fetchInstances?instanceName=evo-two", key=ka)
        assert st == 200 and arr == [], arr
        st, arr = evo(srv, "GET", "/instance/fetchInstances?instanceId=" + i["instanceId"],
                      key=ADMIN)
        assert st == 200 and [x["name"] for x in arr] == ["evo-one"], arr
        assert arr[0]["connectionStatus"] == "connecting" and arr[0]["Setting"]["rejectCall"]
        # link: a sandbox phone scans the QR of the create
        phone = str(5511970000000 + int(time.time()) % 100000)
        st, pj = SB.api("POST", "/phones", {"number": phone, "pushName": "Evo"})
        assert st == 201, pj
        st, sj = SB.api("POST", "/phones/%s/scan" % phone, {"qr": qr1})
        assert st == 200, sj
        wait_state(srv, "evo-one", ka, "open")
        st, js = evo(srv, "GET", "/instance/connect/evo-one", key=tok)
        assert st == 200 and js == {"instance": {"instanceName": "evo-one", "state": "open"}}, js
        st, arr = evo(srv, "GET", "/instance/fetchInstances?number=" + phone, key=ka)
        assert st == 200 and len(arr) == 1 and arr[0]["connectionStatus"] == "open", arr
        assert arr[0]["ownerJid"].startswith(phone), arr
        # restart keeps the link
        st, js = evo(srv, "POST", "/instance/restart/evo-one", key=ka)
        assert st == 200 and js["instance"]["instanceName"] == "evo-one", js
        wait_state(srv, "evo-one", ka, "open")
        # logout, then logging out again is 400 "not connected"
        st, js = evo(srv, "DELETE", "/instance/logout/evo-one", key=tok)
        assert st == 200 and js == {"status": "SUCCESS", "error": False,
                                    "response": {"message": "Instance logged out"}}, js
        wait_state(srv, "evo-one", ka, "close")
        assert_err(*evo(srv, "DELETE", "/instance/logout/evo-one", key=ka), 400, "Bad Request",
                   'The "evo-one" instance is not connected')
        # connect again: a fresh QR
        st, q = evo(srv, "GET", "/instance/connect/evo-one", key=ka)
        assert st == 200, (st, q)
        check_qrcode(q)
        assert q["code"] != qr1
        # delete; the name is gone
        st, js = evo(srv, "DELETE", "/instance/delete/evo-one", key=ka)
        assert st == 200 and js == {"status": "SUCCESS", "error": False,
                                    "response": {"message": "Instance deleted"}}, js
        assert_err(*evo(srv, "GET", "/instance/connectionState/evo-one", key=ka), 404,
                   "Not Found")
        # mounted at / too (WAGATE_ROOT_DIALECT=evolution), same auth rules
        assert state(srv, "evo-two", kb) in ("connecting", "close")
        st, js = evo(srv, "GET", "/instance/connectionState/evo-two", key=kb, prefix="")
        assert st == 200 and js["instance"]["instanceName"] == "evo-two", js
        assert_err(*evo(srv, "GET", "/instance/connectionState/evo-two", prefix=""), 401,
                   "Unauthorized")
        # router errors in the dialect's shape; native keeps its own
        assert_err(*evo(srv, "GET", "/nope", key=ka), 404, "Not Found",
                   "Cannot GET /evolution/nope")
        assert_err(*evo(srv, "GET", "/nope", key=ka, prefix=""), 404, "Not Found",
                   "Cannot GET /nope")
        st, js = evo(srv, "GET", "/instance/create", key=ka)
        assert_err(st, js, 405, "Method Not Allowed")
        st, _, nj = srv.request("GET", "/v1/nope", token=ADMIN)
        assert st == 404 and nj["success"] is False and nj["error"]["code"] == "not_found", nj
    finally:
        srv.stop()


def test_evolution_webhook_and_settings_set_find():
    srv = gateway()
    try:
        ka, kb = account(srv, "evo-a"), account(srv, "evo-b")
        st, js = evo(srv, "POST", "/instance/create", {"instanceName": "evo-w"}, key=ka)
        assert st == 201, js
        tok = js["hash"]
        off = {"enabled": False, "url": None, "events": [], "webhookByEvents": False,
               "webhookBase64": False, "headers": {}}
        st, js = evo(srv, "GET", "/webhook/find/evo-w", key=ka)
        assert st == 200 and js == off, js
        assert_err(*evo(srv, "GET", "/webhook/find/evo-w"), 401, "Unauthorized")
        assert_err(*evo(srv, "GET", "/webhook/find/evo-w", key=kb), 404, "Not Found")
        assert_err(*evo(srv, "POST", "/webhook/set/evo-w", {"webhook": {"url": "https://a.com/x"}},
                        key=kb), 404, "Not Found")
        on = {"webhook": {"enabled": True, "url": "https://myapp.com/w", "byEvents": True,
                          "base64": True, "events": ["MESSAGES_UPSERT", "QRCODE_UPDATED"]}}
        st, js = evo(srv, "POST", "/webhook/set/evo-w", on, key=tok)
        want = {"enabled": True, "url": "https://myapp.com/w", "webhookByEvents": True,
                "webhookBase64": True, "events": ["MESSAGES_UPSERT", "QRCODE_UPDATED"],
                "headers": {}}
        assert st == 201 and js == want, js
        st, js = evo(srv, "GET", "/webhook/find/evo-w", key=ka)
        assert st == 200 and js == want, js
        st, js = evo(srv, "POST", "/webhook/set/evo-w",
                     {"webhook": {"enabled": True, "url": "https://myapp.com/w",
                                  "events": ["BOGUS"]}}, key=ka)
        assert_err(st, js, 400, "Bad Request")
        assert_err(*evo(srv, "POST", "/webhook/set/evo-w",
                        {"webhook": {"enabled": True, "url": "ftp://x.com/a"}}, key=ka),
                   400, "Bad Request")
        assert_err(*evo(srv, "POST", "/webhook/set/evo-w", {"webhook": {"enabled": True}},
                        key=ka), 400, "Bad Request",
                   "webhook.url is required when the webhook is enabled")
        st, js = evo(srv, "GET", "/webhook/find/evo-w", key=ka)
        assert js == want, js  # failed sets changed nothing
        st, js = evo(srv, "POST", "/webhook/set/evo-w", {"webhook": {"enabled": False}}, key=ka)
        assert st == 201 and js["enabled"] is False and js["url"] is None, js
        # settings
        st, js = evo(srv, "GET", "/settings/find/evo-w", key=tok)
        assert st == 200 and js == {"rejectCall": False, "msgCall": "", "groupsIgnore": False,
                                    "alwaysOnline": False, "readMessages": False,
                                    "readStatus": False, "syncFullHistory": False}, js
        st, js = evo(srv, "POST", "/settings/set/evo-w", {"rejectCall": True, "msgCall": "no",
                                                          "readStatus": True}, key=ka)
        s2 = {"rejectCall": True, "msgCall": "no", "groupsIgnore": False, "alwaysOnline": False,
              "readMessages": False, "readStatus": True, "syncFullHistory": False}
        assert st == 201 and js == {"settings": {"instanceName": "evo-w", "settings": s2}}, js
        st, js = evo(srv, "GET", "/settings/find/evo-w", key=ka)
        assert st == 200 and js == s2, js
        assert_err(*evo(srv, "POST", "/settings/set/evo-w", {"readMessages": "x"}, key=ka), 400,
                   "Bad Request")
        assert_err(*evo(srv, "GET", "/settings/find/evo-w", key=kb), 404, "Not Found")
    finally:
        srv.stop()


def test_evolution_proxy_fields_set_find():
    srv = gateway()
    px = TinyProxy("ok")  # proxies are tested before they are stored: a real one
    try:
        ka, kb = account(srv, "evo-a"), account(srv, "evo-b")
        st, js = evo(srv, "POST", "/instance/create",
                     {"instanceName": "evo-p", "proxyHost": "bad host", "proxyPort": "3128"},
                     key=ka)
        assert_err(st, js, 400, "Bad Request")
        assert js["response"]["message"][0].startswith("Invalid proxy"), js
        st, js = evo(srv, "POST", "/instance/create",
                     {"instanceName": "evo-p", "proxyHost": "127.0.0.1",
                      "proxyPort": str(px.port), "proxyProtocol": "http",
                      "proxyUsername": "u", "proxyPassword": "secret"}, key=ka)
        assert st == 201, js
        st, js = evo(srv, "GET", "/proxy/find/evo-p", key=ka)
        assert st == 200 and js == {"enabled": True, "host": "127.0.0.1",
                                    "port": str(px.port), "protocol": "http",
                                    "username": "u"}, js
        assert_err(*evo(srv, "GET", "/proxy/find/evo-p", key=kb), 404, "Not Found")
        st, js = evo(srv, "POST", "/proxy/set/evo-p", {"enabled": True, "host": "10.0.0.2",
                                                       "port": "99999", "protocol": "http"},
                     key=ka)
        assert_err(st, js, 400, "Bad Request")
        assert js["response"]["message"][0].startswith("Invalid proxy"), js
        st, js = evo(srv, "POST", "/proxy/set/evo-p", {"enabled": True, "host": "127.0.0.1",
                                                       "port": str(px.port),
                                                       "protocol": "socks5",
                                                       "password": "pw"}, key=ka)
        assert st == 201 and js == {"enabled": True, "host": "127.0.0.1",
                                    "port": str(px.port), "protocol": "socks5",
                                    "username": ""}, js
        assert ("SOCKS5", "127.0.0.1:%d" % SB.ws_port) in px.targets, px.targets
        assert "pw" not in json_text(srv, ka)
        st, js = evo(srv, "POST", "/proxy/set/evo-p", {"enabled": False}, key=ka)
        assert st == 201 and js == {"enabled": False, "host": "", "port": "", "protocol": "",
                                    "username": ""}, js
    finally:
        srv.stop()
        px.close()


def json_text(srv, key):
    import json
    return json.dumps([evo(srv, "GET", p, key=key)[1] for p in
                       ("/proxy/find/evo-p", "/instance/fetchInstances")])


def phone_inbox(phone):
    st, js = SB.api("GET", "/phones/%s/messages" % phone)
    assert st == 200, (st, js)
    return js


def wait_inbox(phone, text, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        got = [m for m in phone_inbox(phone) if m["text"] == text]
        if got:
            return got
        time.sleep(0.05)
    raise AssertionError("%r never reached phone %s: %r" % (text, phone, phone_inbox(phone)))


def test_evolution_send_text_and_set_presence():
    srv = gateway()
    try:
        ka, kb = account(srv, "evo-a"), account(srv, "evo-b")
        st, js = evo(srv, "POST", "/instance/create", {"instanceName": "evo-s", "qrcode": True},
                     key=ka)
        assert st == 201, js
        iid, tok, qr = js["instance"]["instanceId"], js["hash"], js["qrcode"]["code"]
        st, js = evo(srv, "POST", "/instance/create", {"instanceName": "evo-s2"}, key=kb)
        assert st == 201, js
        tok2 = js["hash"]
        text = {"number": "5511900000001", "text": "hi"}
        # not linked yet: Evolution's socket words, as a 400
        assert_err(*evo(srv, "POST", "/message/sendText/evo-s", text, key=ka), 400,
                   "Bad Request", "Connection Closed")
        assert_err(*evo(srv, "POST", "/instance/setPresence/evo-s", {"presence": "available"},
                        key=ka), 400, "Bad Request", "Error: Connection Closed")
        # link, and a peer phone to write to
        base = 5511980000000 + int(time.time()) % 100000
        owner, peer = str(base), str(base + 1)
        for n, name in ((owner, "Evo Owner"), (peer, "Evo Peer")):
            st, pj = SB.api("POST", "/phones", {"number": n, "pushName": name})
            assert st == 201, pj
        st, sj = SB.api("POST", "/phones/%s/scan" % owner, {"qr": qr})
        assert st == 200, sj
        wait_state(srv, "evo-s", ka, "open")
        st, arr = evo(srv, "GET", "/instance/fetchInstances?instanceName=evo-s", key=ka)
        assert st == 200 and len(arr) == 1, arr
        profile = arr[0]["profileName"]
        # sendText with the instance's own token: 201 with Evolution's message record
        t0 = int(time.time())
        st, js = evo(srv, "POST", "/message/sendText/evo-s",
                     {"number": peer, "text": "hello from evolution", "linkPreview": False},
                     key=tok)
        assert st == 201, (st, js, srv.stderr()[-3000:])
        assert set(js) == {"key", "pushName", "status", "message", "messageType",
                           "messageTimestamp", "instanceId", "source"}, js
        assert set(js["key"]) == {"remoteJid", "fromMe", "id"}, js
        assert js["key"]["remoteJid"] == peer + "@s.whatsapp.net", js
        assert js["key"]["fromMe"] is True, js
        assert re.fullmatch(r"3EB0[0-9A-F]{18}", js["key"]["id"]), js
        assert js["pushName"] == (profile if profile else "Você"), (js, profile)
        assert js["status"] == "PENDING" and js["messageType"] == "conversation", js
        assert js["message"] == {"conversation": "hello from evolution"}, js
        assert isinstance(js["messageTimestamp"], int), js
        assert t0 - 1 <= js["messageTimestamp"] <= time.time() + 1, js
        assert js["instanceId"] == iid and js["source"] == "web", js
        got = wait_inbox(peer, "hello from evolution")
        assert got[0]["id"] == js["key"]["id"], got
        assert got[0]["from"].split("@")[0].split(":")[0] == owner, got
        first_id = js["key"]["id"]
        # a JID, "+" with spaces, a delay (composing first) and a quote, with the account key
        t1 = time.time()
        st, js = evo(srv, "POST", "/message/sendText/evo-s",
                     {"number": peer + "@s.whatsapp.net", "text": "second, after a pause",
                      "delay": 1200, "quoted": {"key": {"id": first_id}}}, key=ka)
        assert st == 201 and time.time() - t1 >= 1.2, (st, js, time.time() - t1)
        assert js["key"]["remoteJid"] == peer + "@s.whatsapp.net", js
        assert js["key"]["id"] != first_id, js
        wait_inbox(peer, "second, after a pause")
        st, js = evo(srv, "POST", "/message/sendText/evo-s",
                     {"number": "+%s %s" % (peer[:2], peer[2:]), "text": "third"}, key=ADMIN)
        assert st == 201 and js["key"]["remoteJid"] == peer + "@s.whatsapp.net", js
        wait_inbox(peer, "third")
        # validation, in jsonschema's words (every failing rule)
        st, js = evo(srv, "POST", "/message/sendText/evo-s", {}, key=ka)
        assert st == 400 and js == {"status": 400, "error": "Bad Request", "response": {
            "message": ['instance requires property "number"',
                        'instance requires property "text"']}}, js
        assert_err(*evo(srv, "POST", "/message/sendText/evo-s", {"number": peer}, key=ka), 400,
                   "Bad Request", 'instance requires property "text"')
        assert_err(*evo(srv, "POST", "/message/sendText/evo-s", {"text": "x"}, key=ka), 400,
                   "Bad Request", 'instance requires property "number"')
        assert_err(*evo(srv, "POST", "/message/sendText/evo-s", {"number": int(peer), "text": "x"},
                        key=ka), 400, "Bad Request", "Invalid format")
        assert_err(*evo(srv, "POST", "/message/sendText/evo-s", {"number": peer, "text": 5},
                        key=ka), 400, "Bad Request", "text is not of a type(s) string")
        assert_err(*evo(srv, "POST", "/message/sendText/evo-s",
                        {"number": peer, "text": "x", "delay": "1s"}, key=ka), 400,
                   "Bad Request", "delay is not of a type(s) integer")
        assert_err(*evo(srv, "POST", "/message/sendText/evo-s", {"number": peer, "text": "  "},
                        key=ka), 400, "Bad Request", "Text is required")
        assert_err(*evo(srv, "POST", "/message/sendText/evo-s",
                        {"number": peer, "text": "x", "delay": 20001}, key=ka), 400,
                   "Bad Request", "delay must be milliseconds between 0 and 20000")
        st, _, js = srv.request("POST", "/evolution/message/sendText/evo-s", token=ka,
                                auth="apikey", raw="{not json")
        assert_err(st, js, 400, "Bad Request", "request body must be a JSON object")
        # a number that is not one, and one nobody registered: Evolution's onWhatsApp answer
        assert_err(*evo(srv, "POST", "/message/sendText/evo-s", {"number": "abc", "text": "x"},
                        key=ka), 400, "Bad Request",
                   {"jid": "abc@s.whatsapp.net", "exists": False, "number": "abc"})
        assert_err(*evo(srv, "POST", "/message/sendText/evo-s",
                        {"number": "4900000000001", "text": "nobody"}, key=ka), 400,
                   "Bad Request",
                   {"jid": "4900000000001@s.whatsapp.net", "exists": False,
                    "number": "4900000000001"})
        # auth before anything; another owner's instance is missing; another token is 401
        assert_err(*evo(srv, "POST", "/message/sendText/evo-s", text), 401, "Unauthorized")
        assert_err(*evo(srv, "POST", "/message/sendText/evo-s", text, key="nope"), 401,
                   "Unauthorized")
        assert_err(*evo(srv, "POST", "/message/sendText/evo-s", text, key=kb), 404,
                   "Not Found", 'The "evo-s" instance does not exist')
        assert_err(*evo(srv, "POST", "/message/sendText/evo-s", text, key=tok2), 401,
                   "Unauthorized")
        assert_err(*evo(srv, "POST", "/message/sendText/ghost", text, key=ka), 404,
                   "Not Found", 'The "ghost" instance does not exist')
        # only the three texts reached the peer
        assert [m["text"] for m in phone_inbox(peer)] == [
            "hello from evolution", "second, after a pause", "third"], phone_inbox(peer)
        # setPresence: 201 {presence}
        for p in ("available", "unavailable"):
            st, js = evo(srv, "POST", "/instance/setPresence/evo-s", {"presence": p}, key=tok)
            assert st == 201 and js == {"presence": p}, (st, js)
        assert_err(*evo(srv, "POST", "/instance/setPresence/evo-s", {}, key=ka), 400,
                   "Bad Request", 'instance requires property "presence"')
        assert_err(*evo(srv, "POST", "/instance/setPresence/evo-s", {"presence": "dancing"},
                        key=ka), 400, "Bad Request",
                   "presence is not one of enum values: unavailable,available,composing,"
                   "recording,paused")
        assert_err(*evo(srv, "POST", "/instance/setPresence/evo-s", {"presence": 1}, key=ka),
                   400, "Bad Request", "presence is not of a type(s) string")
        st, js = evo(srv, "POST", "/instance/setPresence/evo-s", {"presence": "composing"},
                     key=ka)
        assert_err(st, js, 400, "Bad Request")  # a chat state needs a chat: sendPresence's
        assert "composing" in js["response"]["message"][0], js
        assert_err(*evo(srv, "POST", "/instance/setPresence/evo-s", {"presence": "available"}),
                   401, "Unauthorized")
        assert_err(*evo(srv, "POST", "/instance/setPresence/evo-s", {"presence": "available"},
                        key=kb), 404, "Not Found", 'The "evo-s" instance does not exist')
        assert_err(*evo(srv, "POST", "/instance/setPresence/evo-s", {"presence": "available"},
                        key=tok2), 401, "Unauthorized")
        # logged out: Connection Closed again
        st, js = evo(srv, "DELETE", "/instance/logout/evo-s", key=ka)
        assert st == 200, js
        wait_state(srv, "evo-s", ka, "close")
        assert_err(*evo(srv, "POST", "/message/sendText/evo-s",
                        {"number": peer, "text": "too late"}, key=ka), 400, "Bad Request",
                   "Connection Closed")
        assert "too late" not in [m["text"] for m in phone_inbox(peer)]
    finally:
        srv.stop()


# ---- create: pairing code, QR count, WHATSAPP-BUSINESS, proxy test, sinks, Chatwoot ----

PAIR_CODE = re.compile(r"^[1-9A-HJ-NP-TV-Z]{8}$")  # Baileys' form, as Evolution shows it
_PHONES = iter(range(5511960000000 + int(time.time()) % 30000 * 10, 5511999999999))


def gateway_with(extra):
    e = {"WAGATE_ADMIN_KEY": ADMIN, "WAGATE_WA_URL": SB.url(), "WAGATE_WA_ROOT_KEY": SB.root,
         "WAGATE_RATE_CREATE": "0", "WAGATE_RATE_WRITE": "0", "WAGATE_RATE_READ": "0",
         "WAGATE_WA_PREKEYS_INITIAL": "50", "WAGATE_WORKERS": "2", "WAGATE_QR_WAIT_MS": "10000"}
    e.update(extra)
    return Server(env=e).start()


def sandbox_phone(push="Evo Pair"):
    n = str(next(_PHONES))
    st, js = SB.api("POST", "/phones", {"number": n, "pushName": push})
    assert st == 201, (st, js)
    return n


def test_evolution_pairing_code_on_create_and_connect_links():
    srv = gateway_with({})
    try:
        ka = account(srv, "evo-pc")
        p1, p2 = sandbox_phone(), sandbox_phone()
        # create with a number: the first QR and a pairing code the server took
        st, js = evo(srv, "POST", "/instance/create",
                     {"instanceName": "evo-pc1", "qrcode": True, "number": p1}, key=ka)
        assert st == 201, (st, js, srv.stderr()[-2000:])
        q = js["qrcode"]
        assert set(q) == {"pairingCode", "code", "base64", "count"}, q
        assert PAIR_CODE.match(q["pairingCode"] or ""), q
        assert q["count"] == 1 and q["base64"].startswith("data:image/png;base64,"), q
        assert js["instance"]["status"] == "connecting", js
        # the sandbox phone enters it (as typed on a phone: with the dash) and is linked
        code = q["pairingCode"]
        st, sj = SB.api("POST", "/phones/%s/link-code" % p1, {"code": code[:4] + "-" + code[4:]})
        assert st == 200 and sj["deviceJid"].startswith(p1 + ":"), (st, sj)
        wait_state(srv, "evo-pc1", ka, "open")
        st, arr = evo(srv, "GET", "/instance/fetchInstances?instanceName=evo-pc1", key=ka)
        assert st == 200 and arr[0]["ownerJid"].startswith(p1) and arr[0]["number"] == p1, arr
        # a code that is not the one shown does not link
        st, js = evo(srv, "POST", "/instance/create", {"instanceName": "evo-pc2"}, key=ka)
        assert st == 201 and "qrcode" not in js, js
        assert_err(*evo(srv, "GET", "/instance/connect/evo-pc2?number=12", key=ka), 400,
                   "Bad Request")
        st, q = evo(srv, "GET", "/instance/connect/evo-pc2?number=" + p2, key=ka)
        assert st == 200 and PAIR_CODE.match(q["pairingCode"] or ""), (st, q)
        assert q["count"] >= 1 and q["code"].count(",") >= 3, q
        wrong = "".join("Z" if ch != "Z" else "Y" for ch in q["pairingCode"])
        st, sj = SB.api("POST", "/phones/%s/link-code" % p2, {"code": wrong})
        assert st != 200, (st, sj)
        assert state(srv, "evo-pc2", ka) == "connecting"
        # connect?number= again: a fresh code, and that one links. The failed attempt ends the
        # registration connection (the sandbox, as WhatsApp, drops it): until the instance shows
        # a QR again there is no code to give, and the answer says so (no pairingCode)
        deadline = time.time() + 15
        while True:
            st, q2 = evo(srv, "GET", "/instance/connect/evo-pc2?number=" + p2, key=ka)
            assert st == 200, (st, q2)
            if q2.get("pairingCode") or time.time() > deadline:
                break
            assert q2 == {"instance": {"instanceName": "evo-pc2", "state": "connecting"}} or \
                q2["pairingCode"] is None, q2
            time.sleep(0.2)
        assert PAIR_CODE.match(q2.get("pairingCode") or ""), (q2, srv.stderr()[-3000:])
        st, sj = SB.api("POST", "/phones/%s/link-code" % p2, {"code": q2["pairingCode"]})
        assert st == 200, (st, sj)
        wait_state(srv, "evo-pc2", ka, "open")
        # without a number the QR answer has no pairing code; a linked instance none at all
        st, js = evo(srv, "GET", "/instance/connect/evo-pc2?number=" + p2, key=ka)
        assert st == 200 and js == {"instance": {"instanceName": "evo-pc2", "state": "open"}}, js
    finally:
        srv.stop()


def test_evolution_qr_count_is_per_connect_attempt():
    # short QR refs so that the rotation happens within the test
    srv = gateway_with({"WAGATE_QR_FIRST_MS": "1500", "WAGATE_QR_NEXT_MS": "1500"})
    try:
        ka = account(srv, "evo-cnt")
        st, js = evo(srv, "POST", "/instance/create", {"instanceName": "evo-c", "qrcode": True},
                     key=ka)
        assert st == 201 and js["qrcode"]["count"] == 1 and js["qrcode"]["pairingCode"] is None
        seen = [js["qrcode"]["code"]]
        deadline = time.time() + 8
        while time.time() < deadline and len(seen) < 3:
            st, q = evo(srv, "GET", "/instance/connect/evo-c", key=ka)
            assert st == 200 and "code" in q, q
            if q["code"] != seen[-1]:
                seen.append(q["code"])
            # count: every distinct QR of this attempt, never more
            assert q["count"] == len(seen), (q["count"], len(seen))
            time.sleep(0.1)
        assert len(seen) == 3, seen
        # a restart is a new attempt: counting starts again
        st, js = evo(srv, "POST", "/instance/restart/evo-c", key=ka)
        assert st == 200, js
        deadline = time.time() + 10
        while time.time() < deadline:
            st, q = evo(srv, "GET", "/instance/connect/evo-c", key=ka)
            if st == 200 and "code" in q and q["code"] not in seen:
                break
            time.sleep(0.05)
        assert q.get("count") == 1, q
    finally:
        srv.stop()


def test_evolution_whatsapp_business():
    srv = gateway_with({})
    try:
        ka = account(srv, "evo-biz")
        st, js = evo(srv, "POST", "/instance/create",
                     {"instanceName": "evo-b", "integration": "WHATSAPP-BUSINESS"}, key=ka)
        assert st == 400 and js["response"]["message"] == [
            "token is required", "number is required", "businessId is required"], js
        st, js = evo(srv, "POST", "/instance/create",
                     {"instanceName": "evo-b", "integration": "WHATSAPP-BUSINESS",
                      "token": "EAAGm0PX4ZCpsBAKmeta0123456789", "number": ""}, key=ka)
        assert st == 400 and js["response"]["message"] == [
            "number is required", "businessId is required"], js
        assert_err(*evo(srv, "GET", "/instance/connectionState/evo-b", key=ka), 404, "Not Found")
        meta = "EAAGm0PX4ZCpsBAKmeta0123456789"
        st, js = evo(srv, "POST", "/instance/create",
                     {"instanceName": "evo-b", "integration": "WHATSAPP-BUSINESS",
                      "token": meta, "number": "106540352242922", "businessId": "1234567890",
                      "qrcode": True}, key=ka)
        assert st == 201, (st, js)
        i = js["instance"]
        assert i["integration"] == "WHATSAPP-BUSINESS" and i["webhookWaBusiness"] is None, i
        assert i["accessTokenWaBusiness"] == "" and i["status"] == "close", i
        assert js["hash"] == meta and "qrcode" not in js, js
        # stored, not connected: close; connect cannot open it and shows no QR
        assert state(srv, "evo-b", ka) == "close"
        st, js = evo(srv, "GET", "/instance/connect/evo-b", key=ka)
        assert st == 200 and js == {"instance": {"instanceName": "evo-b", "state": "close"}}, js
        rows = srv.db_rows("SELECT status, status_reason, integration FROM instances "
                           "WHERE name = 'evo-b'")
        assert rows == [("FAILED", "cloud_api_not_supported", "WHATSAPP-BUSINESS")], rows
        st, arr = evo(srv, "GET", "/instance/fetchInstances?instanceName=evo-b", key=ka)
        assert st == 200 and len(arr) == 1, arr
        assert arr[0]["businessId"] == "1234567890" and arr[0]["number"] == "106540352242922"
        assert arr[0]["integration"] == "WHATSAPP-BUSINESS" and meta not in str(arr), arr
        st, arr = evo(srv, "GET", "/instance/fetchInstances?number=106540352242922", key=ka)
        assert st == 200 and [x["name"] for x in arr] == ["evo-b"], arr
        # the Meta token is the instance's apikey too (Evolution's hash)
        assert state(srv, "evo-b", meta) == "close"
    finally:
        srv.stop()


class TinyProxy:
    """An HTTP CONNECT and SOCKS5 (no authentication) proxy on loopback (stdlib): mode "ok"
    tunnels, "refuse" answers 403 (SOCKS5: reply 2, not allowed), "mute" accepts and never
    answers. Records (method, "host:port") of every tunnel asked for."""

    def __init__(self, mode="ok"):
        import socket
        import threading
        self.mode = mode
        self.targets = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.open = []
        self.stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        import threading
        while not self.stopped:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.open.append(c)
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _socks5(self, c):
        """SOCKS5 handshake after the first byte (5); returns (host, port) or None."""
        import struct

        def read(n):
            b = b""
            while len(b) < n:
                d = c.recv(n - len(b))
                if not d:
                    raise OSError("eof")
                b += d
            return b
        nm = read(1)[0]
        methods = read(nm)
        if self.mode == "mute":
            return None
        c.sendall(b"\x05\x00" if 0 in methods else b"\x05\xff")
        ver, cmd, _, atyp = read(4)
        if atyp == 1:
            host = ".".join(str(x) for x in read(4))
        elif atyp == 3:
            host = read(read(1)[0]).decode()
        else:
            raise OSError("atyp")
        port = struct.unpack(">H", read(2))[0]
        self.targets.append(("SOCKS5", "%s:%d" % (host, port)))
        if self.mode == "refuse":
            c.sendall(b"\x05\x02\x00\x01\x00\x00\x00\x00\x00\x00")
            return None
        return host, port

    def _serve(self, c):
        import socket
        import threading
        first = c.recv(1)
        if first == b"\x05":
            try:
                hp = self._socks5(c)
            except OSError:
                hp = None
            if not hp:
                if self.mode != "mute":
                    c.close()
                return
            try:
                up = socket.create_connection(hp, timeout=5)
            except OSError:
                c.close()
                return
            up.settimeout(None)
            self.open.append(up)
            c.sendall(b"\x05\x00\x00\x01\x7f\x00\x00\x01\x00\x00")
            self._relay(c, up)
            return
        head = first
        while b"\r\n\r\n" not in head:
            d = c.recv(4096)
            if not d:
                c.close()
                return
            head += d
        line = head.split(b"\r\n")[0].decode()
        method, target = line.split()[:2]
        self.targets.append((method, target))
        if self.mode == "mute":
            return  # keep it open, say nothing
        if self.mode == "refuse" or method != "CONNECT":
            c.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
            c.close()
            return
        host, port = target.rsplit(":", 1)
        try:
            up = socket.create_connection((host, int(port)), timeout=5)
        except OSError:
            c.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
            c.close()
            return
        up.settimeout(None)
        self.open.append(up)
        c.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        rest = head.split(b"\r\n\r\n", 1)[1]
        if rest:
            up.sendall(rest)
        self._relay(c, up)

    def _relay(self, c, up):
        import socket
        import threading

        def pipe(a, b):
            try:
                while True:
                    d = a.recv(65536)
                    if not d:
                        break
                    b.sendall(d)
            except OSError:
                pass
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

        threading.Thread(target=pipe, args=(c, up), daemon=True).start()
        threading.Thread(target=pipe, args=(up, c), daemon=True).start()

    def close(self):
        self.stopped = True
        self.sock.close()
        for s in self.open:
            try:
                s.close()
            except OSError:
                pass


def test_evolution_proxy_connection_test():
    from harness import free_port
    good, refuse, mute = TinyProxy("ok"), TinyProxy("refuse"), TinyProxy("mute")
    closed = free_port()  # nothing listens there
    srv = gateway_with({"WAGATE_PROXY_CHECK_TIMEOUT_MS": "1500", "WAGATE_HTTP_THREADS": "1"})
    try:
        ka = account(srv, "evo-px")
        target = "127.0.0.1:%d" % SB.ws_port

        def create(name, port, **kw):
            body = {"instanceName": name, "proxyHost": "127.0.0.1", "proxyPort": str(port),
                    "proxyProtocol": "http"}
            body.update(kw)
            return evo(srv, "POST", "/instance/create", body, key=ka)

        # a closed port, a proxy refusing CONNECT: 400 Invalid proxy, nothing created
        assert_err(*create("evo-x1", closed), 400, "Bad Request", "Invalid proxy")
        assert_err(*create("evo-x1", refuse.port), 400, "Bad Request", "Invalid proxy")
        assert ("CONNECT", target) in refuse.targets, refuse.targets
        assert_err(*evo(srv, "GET", "/instance/connectionState/evo-x1", key=ka), 404,
                   "Not Found")
        # a proxy that never answers: bounded by WAGATE_PROXY_CHECK_TIMEOUT_MS, and the one
        # HTTP thread keeps answering meanwhile (the test runs off the loop)
        import threading
        res = {}
        t0 = time.time()
        th = threading.Thread(target=lambda: res.update(r=create("evo-x2", mute.port)))
        th.start()
        time.sleep(0.3)
        t1 = time.time()
        st, _, _ = srv.request("GET", "/health")
        assert st == 200 and time.time() - t1 < 0.5
        th.join(10)
        assert_err(*res["r"], 400, "Bad Request", "Invalid proxy")
        assert 1.4 <= time.time() - t0 < 4, time.time() - t0
        # a working proxy: 201, stored, and the engine reaches WhatsApp through it (first QR)
        n0 = len(good.targets)
        st, js = create("evo-px1", good.port, qrcode=True, proxyUsername="u",
                        proxyPassword="pw")
        assert st == 201, (st, js, srv.stderr()[-2000:])
        assert js["qrcode"]["code"].count(",") >= 3, js["qrcode"]
        assert good.targets[n0:] and all(t == ("CONNECT", target) for t in good.targets[n0:])
        assert len(good.targets) - n0 >= 2, good.targets  # the test, then the engine
        st, js = evo(srv, "GET", "/proxy/find/evo-px1", key=ka)
        assert st == 200 and js == {"enabled": True, "host": "127.0.0.1",
                                    "port": str(good.port), "protocol": "http",
                                    "username": "u"}, js
        # proxy/set: tested the same way; a failed set changes nothing
        for port in (closed, refuse.port):
            assert_err(*evo(srv, "POST", "/proxy/set/evo-px1",
                            {"enabled": True, "host": "127.0.0.1", "port": str(port),
                             "protocol": "http"}, key=ka), 400, "Bad Request", "Invalid proxy")
        st, js = evo(srv, "GET", "/proxy/find/evo-px1", key=ka)
        assert js["port"] == str(good.port), js
        st, js = evo(srv, "POST", "/proxy/set/evo-px1",
                     {"enabled": True, "host": "localhost", "port": str(good.port),
                      "protocol": "https"}, key=ka)
        assert st == 201 and js == {"enabled": True, "host": "localhost",
                                    "port": str(good.port), "protocol": "https",
                                    "username": ""}, js
        st, js = evo(srv, "POST", "/proxy/set/evo-px1", {"enabled": False}, key=ka)
        assert st == 201 and js["enabled"] is False, js
    finally:
        srv.stop()
        for p in (good, refuse, mute):
            p.close()


def test_evolution_sinks_and_chatwoot():
    srv = gateway_with({})
    try:
        ka = account(srv, "evo-int")

        def create(**kw):
            body = {"instanceName": "evo-i"}
            body.update(kw)
            return evo(srv, "POST", "/instance/create", body, key=ka)

        # sinks: validated against the Evolution event list
        st, js = create(rabbitmq={"enabled": True, "events": ["MESSAGES_UPSERT", "NOPE"]})
        assert_err(st, js, 400, "Bad Request")
        assert js["response"]["message"][0].startswith("rabbitmq.events") and \
            "NOPE" in js["response"]["message"][0], js
        st, js = create(sqs={"enabled": "yes"})
        assert_err(st, js, 400, "Bad Request")
        assert "sqs.enabled" in js["response"]["message"][0], js
        assert_err(*create(nats=["x"]), 400, "Bad Request")
        # chatwoot: all or nothing, each missing field named
        st, js = create(chatwootAccountId="7")
        assert st == 400 and js["response"]["message"] == [
            "chatwootToken is required", "chatwootUrl is required"], js
        st, js = create(chatwootToken="cw-token", chatwootSignMsg=True)
        assert st == 400 and js["response"]["message"] == [
            "chatwootAccountId is required", "chatwootUrl is required"], js
        assert_err(*create(chatwootAccountId="7", chatwootToken="t", chatwootUrl="ftp://x.io"),
                   400, "Bad Request", 'Invalid "url" property in chatwoot')
        st, js = create(chatwootAccountId="7", chatwootToken="t", chatwootUrl="https://cw.io",
                        chatwootDaysLimitImportMessages="many")
        assert_err(st, js, 400, "Bad Request")
        assert js["response"]["message"][0].startswith("chatwootDaysLimitImportMessages"), js
        assert_err(*evo(srv, "GET", "/instance/connectionState/evo-i", key=ka), 404,
                   "Not Found")
        # chatwoot flags alone configure nothing
        st, js = create(instanceName="evo-i0", chatwootSignMsg=True)
        assert st == 201 and "chatwoot" not in js, js
        # all of it
        st, js = create(number="5511912345678",
                        rabbitmq={"enabled": True, "events": ["MESSAGES_UPSERT",
                                                              "CONNECTION_UPDATE"]},
                        sqs={"enabled": False}, nats={"enabled": True, "events": []},
                        chatwootAccountId=7, chatwootToken="cw-secret-token",
                        chatwootUrl="https://chatwoot.example.com", chatwootSignMsg=True,
                        chatwootReopenConversation=False, chatwootConversationPending=True,
                        chatwootImportContacts=False, chatwootOrganization="Org")
        assert st == 201, (st, js)
        assert js["rabbitmq"] == {"enabled": True} and js["sqs"] == {"enabled": False}, js
        assert js["nats"] == {"enabled": True}, js
        assert js["chatwoot"] == {
            "enabled": True, "accountId": "7", "token": "cw-secret-token",
            "url": "https://chatwoot.example.com", "signMsg": True, "reopenConversation": False,
            "conversationPending": True, "importContacts": False, "mergeBrazilContacts": False,
            "importMessages": True, "daysLimitImportMessages": 60, "nameInbox": "evo-i",
            "organization": "Org", "logo": None, "number": "5511912345678",
            "webhookUrl": None}, js["chatwoot"]
        st, arr = evo(srv, "GET", "/instance/fetchInstances", key=ka)
        assert st == 200, arr
        items = {x["name"]: x for x in arr}
        x = items["evo-i"]
        assert x["Rabbitmq"] == {"enabled": True, "events": ["MESSAGES_UPSERT",
                                                             "CONNECTION_UPDATE"]}, x
        assert x["Sqs"] is None and x["Nats"] == {"enabled": True, "events": []}, x
        cw = dict(js["chatwoot"])
        del cw["token"]
        assert x["Chatwoot"] == cw and "cw-secret-token" not in str(arr), x
        y = items["evo-i0"]
        assert y["Chatwoot"] is None and y["Rabbitmq"] is None and y["Nats"] is None, y
        rows = srv.db_rows("SELECT sinks, chatwoot FROM instances WHERE name = 'evo-i'")
        assert '"rabbitmq"' in rows[0][0] and '"message.received"' in rows[0][0], rows
        assert '"cw-secret-token"' in rows[0][1], rows
    finally:
        srv.stop()
