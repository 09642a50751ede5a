"""test_dialect_wachat.py - the Wachat dialect (issue 7) against `wagate sandbox`: create (every
field of the 201, apiInstanceName = unique prefix + slug, the first real QR as a data: URI PNG
that decodes to the engine's pairing string, imageUrl/liveUrl), ?response=image (PNG with
X-Instance-Name / X-Api-Instance-Name), WHATSAPP-BUSINESS (each meta field required by name;
stored, token never rendered, FAILED cloud_api_not_supported), every error (401, 400 naming the
field, 403 duplicate, 404, 405), /instance/qr, /instance/qr/image and /instance/qr/live with
?apiKey=, connectionState, a real link by a sandbox phone, send text, restart, logout, delete,
and isolation: no credential of one owner (account key or instance token, of any dialect)
reaches another owner's instance through /wachat, and a Wachat instance token reaches nothing
else through /evolution, /hypersender or /v1.
"""
import base64
import http.client
import json
import os
import re
import shutil
import subprocess
import tempfile
import time

from harness import Server
from test_link import Sandbox

ADMIN = "wga_wachat_test_admin_key_0123456789"
SB = None
API_NAME = re.compile(r"^t[0-9]+_[0-9a-z]{8}_([a-z0-9-]+)$")
IID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
PHONES = iter(range(5511960000000 + int(time.time()) % 10000 * 100, 5511999999999))


def setup_module():
    global SB
    SB = Sandbox().start()


def teardown_module():
    if SB:
        SB.cleanup()


def gateway(extra=None):
    e = {"WAGATE_ADMIN_KEY": ADMIN, "WAGATE_WA_URL": SB.url(), "WAGATE_WA_ROOT_KEY": SB.root,
         "WAGATE_RATE_CREATE": "0", "WAGATE_RATE_WRITE": "0", "WAGATE_RATE_READ": "0",
         "WAGATE_WA_PREKEYS_INITIAL": "50", "WAGATE_WORKERS": "2", "WAGATE_QR_WAIT_MS": "10000"}
    e.update(extra or {})
    return Server(env=e).start()


def account(srv, name):
    st, _, js = srv.request("POST", "/v1/accounts", {"name": name, "plan": "pro"}, token=ADMIN)
    assert st == 201, (st, js)
    return js["data"]["apiKey"]


def raw(srv, method, path, body=None, key=None, headers=None):
    """(status, lower-case headers, bytes) of one request; key as Bearer."""
    h = dict(headers or {})
    data = None
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        h["Content-Type"] = "application/json"
    if key is not None:
        h["Authorization"] = "Bearer " + key
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=40)
    try:
        conn.request(method, path, body=data, headers=h)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def wac(srv, method, path, body=None, key=None, prefix="/wachat"):
    st, hdrs, data = raw(srv, method, prefix + path, body, key)
    assert hdrs.get("content-type", "").startswith("application/json"), (st, hdrs, data[:200])
    return st, json.loads(data)


def assert_err(st, js, want_status, msg=None, contains=None):
    reasons = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
               405: "Method Not Allowed", 409: "Conflict", 429: "Too Many Requests"}
    assert st == want_status, (st, js)
    assert set(js) == {"status", "error", "response"}, js
    assert js["status"] == want_status and js["error"] == reasons[want_status], js
    assert isinstance(js["response"]["message"], list) and len(js["response"]["message"]) == 1
    if msg is not None:
        assert js["response"]["message"][0] == msg, js
    if contains is not None:
        assert contains in js["response"]["message"][0], js


def state(srv, api, key):
    st, js = wac(srv, "GET", "/instance/connectionState/" + api, key=key)
    assert st == 200, (st, js)
    assert set(js) == {"instance"} and set(js["instance"]) == {"instanceName",
                                                               "apiInstanceName", "state"}, js
    assert js["instance"]["apiInstanceName"] == api, js
    return js["instance"]["state"]


def wait_for(fn, what, srv=None, timeout=20):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(0.05)
    raise AssertionError("timed out waiting for %s (last %r)\n%s" % (
        what, last, srv.stderr()[-3000:] if srv else ""))


def png_text(png):
    """The text a QR PNG encodes, read back by zbarimg (zbar-tools, from scripts/deps.sh)."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n", png[:16]
    assert shutil.which("zbarimg"), "zbarimg missing: run scripts/deps.sh"
    d = tempfile.mkdtemp(prefix="wachat-qr-")
    try:
        p = os.path.join(d, "qr.png")
        with open(p, "wb") as f:
            f.write(png)
        out = subprocess.run(["zbarimg", "--raw", "-q", p], capture_output=True, timeout=20)
        return out.stdout.decode().strip()
    finally:
        shutil.rmtree(d, ignore_errors=True)


def check_qrcode(srv, q, api, key):
    assert set(q) == {"code", "base64", "expiresAt", "imageUrl", "liveUrl"}, q
    assert q["code"].count(",") >= 3, q["code"]
    assert q["base64"].startswith("data:image/png;base64,"), q["base64"][:40]
    png = base64.b64decode(q["base64"][len("data:image/png;base64,"):])
    assert png_text(png) == q["code"], "the image must encode the engine's pairing string"
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", q["expiresAt"]), q
    base = "http://127.0.0.1:%d/wachat/instance/qr" % srv.port
    qs = "?instanceName=%s&apiKey=%s" % (api, key)
    assert q["imageUrl"] == base + "/image" + qs, q["imageUrl"]
    assert q["liveUrl"] == base + "/live" + qs, q["liveUrl"]


def new_phone(push):
    n = str(next(PHONES))
    st, js = SB.api("POST", "/phones", {"number": n, "pushName": push})
    assert st == 201, (st, js)
    return n


def test_wachat_create_fields_errors_and_business():
    srv = gateway()
    try:
        ka, kb = account(srv, "wac-a"), account(srv, "wac-b")
        # 401 before anything else
        assert_err(*wac(srv, "POST", "/instance/create", {"instanceName": "x"}), 401,
                   "Unauthorized")
        assert_err(*wac(srv, "POST", "/instance/create", {"instanceName": "x"}, key="nope"),
                   401, "Unauthorized")
        assert_err(*wac(srv, "GET", "/instance/connectionState/ghost"), 401, "Unauthorized")
        # 400s, each naming its field
        assert_err(*wac(srv, "POST", "/instance/create", {}, key=ka), 400,
                   "instanceName is required")
        assert_err(*wac(srv, "POST", "/instance/create", {"instanceName": ""}, key=ka), 400,
                   "instanceName is required")
        st, _, data = raw(srv, "POST", "/wachat/instance/create", b"{nope", ka)
        assert_err(st, json.loads(data), 400, "request body must be a JSON object")
        for integ in ("WHATSAPP-FOO", 7):
            assert_err(*wac(srv, "POST", "/instance/create",
                            {"instanceName": "v", "integration": integ}, key=ka), 400,
                       contains="Invalid integration")
        for q in ("xml", "image" * 10, "%ZZ"):
            assert_err(*wac(srv, "POST", "/instance/create?response=" + q,
                            {"instanceName": "v"}, key=ka), 400, "response must be json or image")
        assert_err(*wac(srv, "POST", "/instance/create",
                        {"instanceName": "v", "rejectCalls": "yes"}, key=ka), 400,
                   contains="rejectCalls")
        assert_err(*wac(srv, "POST", "/instance/create",
                        {"instanceName": "v", "ignoreGroups": 1}, key=ka), 400,
                   contains="ignoreGroups")
        assert_err(*wac(srv, "POST", "/instance/create", {"instanceName": "v", "number": "12ab"},
                        key=ka), 400, contains="number")
        assert_err(*wac(srv, "POST", "/instance/create", {"instanceName": "x" * 51}, key=ka),
                   400, contains="instanceName")
        meta = {"metaToken": "EAAG-meta-token", "metaBusinessId": "1234567890",
                "metaPhoneNumberId": "109876543210"}
        for missing in meta:
            body = {"instanceName": "biz", "integration": "WHATSAPP-BUSINESS"}
            body.update({k: v for k, v in meta.items() if k != missing})
            assert_err(*wac(srv, "POST", "/instance/create", body, key=ka), 400,
                       "%s is required for WHATSAPP-BUSINESS" % missing)
            body[missing] = ""
            assert_err(*wac(srv, "POST", "/instance/create", body, key=ka), 400,
                       "%s is required for WHATSAPP-BUSINESS" % missing)
        rows = srv.db_rows("SELECT COUNT(*) FROM instances")
        assert rows[0][0] == 0, rows  # no failed create stored anything

        # a Baileys create: every field
        body = {"instanceName": "Store Jakarta!", "number": "628123456789",
                "integration": "WHATSAPP-BAILEYS", "rejectCalls": True, "ignoreGroups": True,
                "alwaysOnline": True, "readMessages": False, "readStatus": True}
        st, js = wac(srv, "POST", "/instance/create", body, key=ka)
        assert st == 201, (st, js, srv.stderr()[-2000:])
        assert set(js) == {"instance", "hash", "settings", "qrcode"}, js
        i = js["instance"]
        assert set(i) == {"instanceName", "apiInstanceName", "instanceId", "integration",
                          "number", "state", "statusReason"}, i
        assert i["instanceName"] == "Store Jakarta!" and IID.match(i["instanceId"]), i
        m = API_NAME.match(i["apiInstanceName"])
        assert m and m.group(1) == "store-jakarta", i
        assert i["integration"] == "WHATSAPP-BAILEYS" and i["number"] == "628123456789", i
        assert i["state"] == "connecting" and i["statusReason"] is None, i
        assert isinstance(js["hash"], str) and len(js["hash"]) >= 16, js
        assert js["settings"] == {"rejectCalls": True, "ignoreGroups": True,
                                  "alwaysOnline": True, "readMessages": False,
                                  "readStatus": True}, js["settings"]
        api = i["apiInstanceName"]
        check_qrcode(srv, js["qrcode"], api, ka)
        rows = srv.db_rows("SELECT dialect, api_name, name, integration FROM instances "
                           "WHERE id = ?", (i["instanceId"],))
        assert rows == [("wachat", api, "Store Jakarta!", "WHATSAPP-BAILEYS")], rows
        # the friendly name is the owner's: a duplicate is 403, another owner may use it
        assert_err(*wac(srv, "POST", "/instance/create", {"instanceName": "Store Jakarta!"},
                        key=ka), 403, 'This name "Store Jakarta!" is already in use.')
        st, jb = wac(srv, "POST", "/instance/create", {"instanceName": "Store Jakarta!"}, key=kb)
        assert st == 201 and jb["instance"]["apiInstanceName"] != api, jb
        assert API_NAME.match(jb["instance"]["apiInstanceName"]).group(1) == "store-jakarta"
        assert jb["instance"]["number"] is None and jb["settings"]["rejectCalls"] is False, jb
        # an instance token cannot create
        assert_err(*wac(srv, "POST", "/instance/create", {"instanceName": "z"},
                        key=js["hash"]), 401, "Unauthorized")

        # ?response=image: the PNG itself, the names in headers
        st, hdrs, png = raw(srv, "POST", "/wachat/instance/create?response=image",
                            {"instanceName": "img_one"}, ka)
        assert st == 201 and hdrs["content-type"] == "image/png", (st, hdrs, png[:200])
        assert hdrs["x-instance-name"] == "img_one", hdrs
        img_api = hdrs["x-api-instance-name"]
        assert API_NAME.match(img_api).group(1) == "img-one", hdrs
        text = png_text(png)
        assert text.count(",") >= 3, text
        st, q = wac(srv, "GET", "/instance/qr?instanceName=" + img_api, key=ka)
        assert st == 200 and q["qrcode"]["code"] == text, q

        # WHATSAPP-BUSINESS: stored, no QR, fails at once with the reason; token never shown
        body = {"instanceName": "biz", "integration": "WHATSAPP-BUSINESS", "number": "6281234567890"}
        body.update(meta)
        st, js = wac(srv, "POST", "/instance/create", body, key=ka)
        assert st == 201, (st, js)
        assert set(js) == {"instance", "hash", "settings", "qrcode"} and js["qrcode"] is None, js
        bi = js["instance"]
        assert bi["integration"] == "WHATSAPP-BUSINESS" and bi["state"] == "close", bi
        assert bi["statusReason"] == "cloud_api_not_supported", bi
        assert "EAAG-meta-token" not in json.dumps(js), js
        st, _, nj = srv.request("GET", "/v1/instances/" + bi["instanceId"], token=ka)
        assert st == 200 and nj["data"]["status"] == "FAILED", nj
        assert nj["data"]["settings"]["business"] == {"businessId": "1234567890",
                                                      "phoneNumberId": "109876543210"}, nj
        assert "EAAG-meta-token" not in json.dumps(nj), nj
        stored = json.loads(srv.db_rows("SELECT settings FROM instances WHERE id = ?",
                                        (bi["instanceId"],))[0][0])
        assert stored["business"]["token"] == "EAAG-meta-token", stored
        assert_err(*wac(srv, "GET", "/instance/qr?instanceName=" + bi["apiInstanceName"],
                        key=ka), 400, "WHATSAPP-BUSINESS instances have no QR code")
        st, js = wac(srv, "POST", "/instance/restart/" + bi["apiInstanceName"], key=ka)
        assert st == 200 and js["instance"]["state"] == "close", js
        # meta fields are ignored for Baileys
        st, js = wac(srv, "POST", "/instance/create", dict(meta, instanceName="plain"), key=ka)
        assert st == 201 and js["instance"]["integration"] == "WHATSAPP-BAILEYS", js
        stored = json.loads(srv.db_rows("SELECT settings FROM instances WHERE id = ?",
                                        (js["instance"]["instanceId"],))[0][0])
        assert "business" not in stored, stored

        # router errors in the dialect's shape
        assert_err(*wac(srv, "GET", "/nope", key=ka), 404, "Cannot GET /wachat/nope")
        assert_err(*wac(srv, "GET", "/instance/create", key=ka), 405)
    finally:
        srv.stop()


def test_wachat_qr_routes_link_send_lifecycle_and_isolation():
    srv = gateway()
    try:
        ka, kb = account(srv, "wac-a"), account(srv, "wac-b")
        st, js = wac(srv, "POST", "/instance/create", {"instanceName": "store-jakarta"}, key=ka)
        assert st == 201, (st, js)
        api, iid, tok = js["instance"]["apiInstanceName"], js["instance"]["instanceId"], js["hash"]
        assert API_NAME.match(api).group(1) == "store-jakarta", api
        qr1 = js["qrcode"]["code"]
        # B's instances in every dialect
        st, jb = wac(srv, "POST", "/instance/create", {"instanceName": "b-wachat"}, key=kb)
        assert st == 201, jb
        api_b, tok_b = jb["instance"]["apiInstanceName"], jb["hash"]
        st, _, eb = srv.request("POST", "/evolution/instance/create", {"instanceName": "b-evo"},
                                token=kb, auth="apikey", timeout=30)
        assert st == 201, eb
        st, _, hb = srv.request("POST", "/hypersender/create-instance",
                                {"name": "b-hs", "phone": "+5511977770000"}, token=kb,
                                timeout=30)
        assert st == 201, hb
        st, _, nb = srv.request("POST", "/v1/instances", {"name": "b-native"}, token=kb,
                                timeout=30)
        assert st == 201, nb

        # GET /instance/qr: Bearer or ?apiKey=
        assert_err(*wac(srv, "GET", "/instance/qr?instanceName=" + api), 401, "Unauthorized")
        assert_err(*wac(srv, "GET", "/instance/qr", key=ka), 400, "instanceName is required")
        assert_err(*wac(srv, "GET", "/instance/qr?instanceName=t1_ghost", key=ka), 404,
                   'The "t1_ghost" instance does not exist')
        st, q = wac(srv, "GET", "/instance/qr?instanceName=" + api, key=ka)
        assert st == 200 and set(q) == {"instance", "qrcode"}, q
        assert q["instance"] == {"instanceName": "store-jakarta", "apiInstanceName": api,
                                 "instanceId": iid, "integration": "WHATSAPP-BAILEYS",
                                 "number": None, "state": "connecting", "statusReason": None}, q
        check_qrcode(srv, q["qrcode"], api, ka)
        assert q["qrcode"]["code"] == qr1, q
        st, q2 = wac(srv, "GET", "/instance/qr?instanceName=%s&apiKey=%s" % (api, tok))
        assert st == 200 and q2["qrcode"]["imageUrl"].endswith("&apiKey=" + tok), q2
        # qr/image: a PNG of the same QR, for an <img> (key in the query)
        st, hdrs, png = raw(srv, "GET", "/wachat/instance/qr/image?instanceName=%s&apiKey=%s"
                            % (api, ka))
        assert st == 200 and hdrs["content-type"] == "image/png", (st, hdrs, png[:200])
        assert png_text(png) == qr1
        st, hdrs, data = raw(srv, "GET", "/wachat/instance/qr/image?instanceName=" + api)
        assert_err(st, json.loads(data), 401, "Unauthorized")
        st, hdrs, data = raw(srv, "GET", "/wachat/instance/qr/image?instanceName=%s&apiKey=x%s"
                             % (api, ka))
        assert_err(st, json.loads(data), 401, "Unauthorized")
        # qr/live: the page, only with a key that reaches the instance
        st, hdrs, page = raw(srv, "GET", "/wachat/instance/qr/live?instanceName=%s&apiKey=%s"
                             % (api, ka))
        assert st == 200 and hdrs["content-type"] == "text/html; charset=utf-8", (st, hdrs)
        assert b"<img id=\"qr\"" in page and b"Connected" in page, page[:300]
        assert b"http://" not in page and b"https://" not in page  # no external assets
        for q in ("?instanceName=%s&apiKey=bad" % api, "?instanceName=" + api,
                  "?instanceName=%s&apiKey=%s" % (api, tok_b)):
            st, hdrs, data = raw(srv, "GET", "/wachat/instance/qr/live" + q)
            assert_err(st, json.loads(data), 401, "Unauthorized")

        # isolation: B's key, B's tokens of every dialect cannot reach A's instance
        for key in (kb,):
            assert_err(*wac(srv, "GET", "/instance/connectionState/" + api, key=key), 404,
                       'The "%s" instance does not exist' % api)
            assert_err(*wac(srv, "GET", "/instance/qr?instanceName=" + api, key=key), 404)
            st, _, data = raw(srv, "GET", "/wachat/instance/qr/image?instanceName=%s&apiKey=%s"
                              % (api, key))
            assert_err(st, json.loads(data), 404)
            st, _, data = raw(srv, "GET", "/wachat/instance/qr/live?instanceName=%s&apiKey=%s"
                              % (api, key))
            assert_err(st, json.loads(data), 404)
            assert_err(*wac(srv, "POST", "/instance/restart/" + api, key=key), 404)
            assert_err(*wac(srv, "DELETE", "/instance/logout/" + api, key=key), 404)
            assert_err(*wac(srv, "DELETE", "/instance/delete/" + api, key=key), 404)
            assert_err(*wac(srv, "POST", "/send/text", {"instanceName": api, "number":
                                                        "5511900000001", "type": "text",
                                                        "message": "x"}, key=key), 404)
        for key in (tok_b, eb["hash"], hb["access_token"], nb["data"]["accessToken"]):
            assert_err(*wac(srv, "GET", "/instance/connectionState/" + api, key=key), 401)
            assert_err(*wac(srv, "GET", "/instance/qr?instanceName=" + api, key=key), 401)
            assert_err(*wac(srv, "DELETE", "/instance/delete/" + api, key=key), 401)
            assert_err(*wac(srv, "POST", "/send/text", {"instanceName": api, "number":
                                                        "5511900000001", "type": "text",
                                                        "message": "x"}, key=key), 401)
        # A's Wachat token reaches its own instance only, through any dialect
        assert state(srv, api, tok) == "connecting"
        assert_err(*wac(srv, "GET", "/instance/connectionState/" + api_b, key=tok), 401)
        st, _, js = srv.request("GET", "/evolution/instance/connectionState/b-evo", token=tok,
                                auth="apikey")
        assert st == 401, (st, js)
        st, _, js = srv.request("GET", "/hypersender/%s/health" % hb["id"], token=tok)
        assert st == 404, (st, js)
        st, _, js = srv.request("GET", "/v1/instances/" + nb["data"]["id"], token=tok)
        assert st == 404 and js["success"] is False, (st, js)
        st, _, js = srv.request("GET", "/v1/instances/" + jb["instance"]["instanceId"], token=tok)
        assert st == 404, (st, js)
        st, _, js = srv.request("GET", "/v1/instances/" + iid, token=tok)
        assert st == 200 and js["data"]["id"] == iid, (st, js)
        # A's account key cannot reach B's instances through the other dialects either
        st, _, js = srv.request("GET", "/evolution/instance/connectionState/b-evo", token=ka,
                                auth="apikey")
        assert st == 404, (st, js)

        # link: a sandbox phone scans the QR of the create
        owner, peer = new_phone("Wachat"), new_phone("Peer")
        st, sj = SB.api("POST", "/phones/%s/scan" % owner, {"qr": qr1})
        assert st == 200, sj
        wait_for(lambda: state(srv, api, ka) == "open", "open", srv)  # prekeys uploaded too
        st, q = wac(srv, "GET", "/instance/qr?instanceName=" + api, key=ka)
        assert st == 200 and q["qrcode"] is None and q["instance"]["state"] == "open", q
        assert q["instance"]["number"] == owner and q["instance"]["statusReason"] is None, q
        st, _, data = raw(srv, "GET", "/wachat/instance/qr/image?instanceName=%s&apiKey=%s"
                          % (api, ka))
        assert_err(st, json.loads(data), 404, "No QR code to show: the instance is open")

        # send text
        send = {"instanceName": api, "number": peer, "type": "text", "message": "Halo dari wachat"}
        for k in ("instanceName", "number", "type", "message"):
            assert_err(*wac(srv, "POST", "/send/text", {x: v for x, v in send.items() if x != k},
                            key=ka), 400, "%s is required" % k)
        assert_err(*wac(srv, "POST", "/send/text", dict(send, type="image"), key=ka), 400,
                   "type must be text")
        assert_err(*wac(srv, "POST", "/send/text", dict(send, number="abc"), key=ka), 400,
                   contains="number")
        assert_err(*wac(srv, "POST", "/send/text", dict(send, delay=-5), key=ka), 400,
                   contains="delay")
        assert_err(*wac(srv, "POST", "/send/text", send), 401, "Unauthorized")
        t0 = time.time()
        st, js = wac(srv, "POST", "/send/text", send, key=tok)
        assert st == 200, (st, js, srv.stderr()[-3000:])
        assert set(js) == {"key", "message", "messageTimestamp", "status"}, js
        assert js["key"] == {"remoteJid": peer + "@s.whatsapp.net", "fromMe": True,
                             "id": js["key"]["id"]} and js["key"]["id"].startswith("3EB0"), js
        assert js["message"] == {"conversation": "Halo dari wachat"}, js
        assert abs(js["messageTimestamp"] - t0) <= 5 and js["status"] == "SERVER_ACK", js
        inbox = wait_for(lambda: [m for m in SB.api("GET", "/phones/%s/messages" % peer)[1]
                                  if m["text"] == "Halo dari wachat"], "text at the phone", srv)
        assert inbox[0]["id"] == js["key"]["id"], inbox

        # restart keeps the link
        st, js = wac(srv, "POST", "/instance/restart/" + api, key=ka)
        assert st == 200 and js == {"instance": {"instanceName": "store-jakarta",
                                                 "apiInstanceName": api,
                                                 "state": js["instance"]["state"]}}, js
        assert js["instance"]["state"] in ("connecting", "open"), js
        wait_for(lambda: state(srv, api, ka) == "open", "open after restart", srv)
        # logout, then logging out again is 400 "not connected"
        st, js = wac(srv, "DELETE", "/instance/logout/" + api, key=tok)
        assert st == 200 and js == {"status": "SUCCESS", "error": False,
                                    "response": {"message": "Instance logged out"}}, js
        wait_for(lambda: state(srv, api, ka) == "close", "close", srv)
        assert_err(*wac(srv, "DELETE", "/instance/logout/" + api, key=ka), 400,
                   'The "%s" instance is not connected' % api)
        assert_err(*wac(srv, "POST", "/send/text", send, key=ka), 409)
        # /instance/qr starts a closed instance again: a fresh QR
        st, q = wac(srv, "GET", "/instance/qr?instanceName=" + api, key=ka)
        assert st == 200, (st, q)
        check_qrcode(srv, q["qrcode"], api, ka)
        assert q["qrcode"]["code"] != qr1
        # delete: not with the instance token; the account key; the name is gone
        assert_err(*wac(srv, "DELETE", "/instance/delete/" + api, key=tok), 403)
        st, js = wac(srv, "DELETE", "/instance/delete/" + api, key=ka)
        assert st == 200 and js == {"status": "SUCCESS", "error": False,
                                    "response": {"message": "Instance deleted"}}, js
        assert_err(*wac(srv, "GET", "/instance/connectionState/" + api, key=ka), 404)
        assert_err(*wac(srv, "GET", "/instance/connectionState/" + api, key=tok), 401)
        # the admin key sees every owner's instance by its apiInstanceName
        assert state(srv, api_b, ADMIN) in ("connecting", "close")
    finally:
        srv.stop()


def test_wachat_create_rate_limit():
    srv = gateway({"WAGATE_RATE_CREATE": "2"})
    try:
        ka, kb = account(srv, "wac-a"), account(srv, "wac-b")
        for n in ("r1", "r2"):
            st, js = wac(srv, "POST", "/instance/create", {"instanceName": n}, key=ka)
            assert st == 201, (st, js)
        st, hdrs, data = raw(srv, "POST", "/wachat/instance/create", {"instanceName": "r3"}, ka)
        assert_err(st, json.loads(data), 429, "Too many requests; retry later")
        assert int(hdrs["retry-after"]) >= 1, hdrs
        # per account: another account still creates
        st, js = wac(srv, "POST", "/instance/create", {"instanceName": "r3"}, key=kb)
        assert st == 201, (st, js)
    finally:
        srv.stop()
