"""test_dialect_hypersender.py - the Hypersender dialect (issue 7) against `wagate sandbox`:
create-instance exactly as the seed (every field of the 201; 422 with one Laravel message per
failing rule; 429 after 5 per minute), instances with filter[uuid|name|phone|status], health
(10/min), request-new-qr-code (1/min, a fresh QR), restart (5/min), send-text and its queued
request, logout and delete (ours: Hypersender documents neither), error shapes, ownership across
owners and dialects, and real QR links by sandbox phones.
"""
import base64
import re
import time

from harness import Server
from test_link import Sandbox

ADMIN = "wga_hs_test_admin_key_0123456789ab"
SB = None
INVALID = "The given data was invalid."
TOO_MANY = {"message": "Too many requests. Please try again later."}


def setup_module():
    global SB
    SB = Sandbox().start()


def teardown_module():
    if SB:
        SB.cleanup()


def gateway():
    e = {"WAGATE_ADMIN_KEY": ADMIN, "WAGATE_WA_URL": SB.url(), "WAGATE_WA_ROOT_KEY": SB.root,
         "WAGATE_RATE_CREATE": "0", "WAGATE_RATE_WRITE": "0", "WAGATE_RATE_READ": "0",
         "WAGATE_WA_PREKEYS_INITIAL": "50", "WAGATE_WORKERS": "2", "WAGATE_QR_WAIT_MS": "10000"}
    return Server(env=e).start()


def account(srv, name):
    st, _, js = srv.request("POST", "/v1/accounts", {"name": name, "plan": "pro"}, token=ADMIN)
    assert st == 201, (st, js)
    return js["data"]["apiKey"]


def hs(srv, method, path, body=None, key=None, raw=None):
    st, hdrs, js = srv.request(method, "/hypersender" + path, body, token=key, raw=raw,
                               timeout=30)
    return st, hdrs, js


def check_422(st, js, errors):
    assert st == 422, (st, js)
    assert js == {"message": INVALID, "errors": errors, "statusCode": 422}, js


def check_png_b64(s):
    assert not s.startswith("data:"), s[:30]
    assert base64.b64decode(s)[:8] == b"\x89PNG\r\n\x1a\n"


def health(srv, iid, key):
    st, _, js = hs(srv, "GET", "/%s/health" % iid, key=key)
    assert st == 200, (st, js)
    assert set(js) == {"instance_id", "connected_at", "status"} and js["instance_id"] == iid, js
    return js


def test_hypersender_create_errors_limits_and_lifecycle():
    srv = gateway()
    try:
        ka, kb, kc = account(srv, "hs-a"), account(srv, "hs-b"), account(srv, "hs-c")
        st, _, js = hs(srv, "POST", "/create-instance", {"phone": "+5511911110000", "name": "x"})
        assert st == 401 and js == {"message": "Unauthenticated."}, js
        st, _, js = hs(srv, "GET", "/instances", key="wrong-key-0123456789")
        assert st == 401 and js == {"message": "Unauthenticated."}, js
        # 422: one message per failing rule
        check_422(*[x for i, x in enumerate(hs(srv, "POST", "/create-instance", {}, key=ka))
                    if i != 1], {"phone": ["The phone field is required."],
                                 "name": ["The name field is required."]})
        st, _, js = hs(srv, "POST", "/create-instance",
                       {"phone": "12ab", "name": "n" * 51, "webhook_url": "http://x y"},
                       key=ka)
        check_422(st, js, {"phone": ["The phone field format is invalid."],
                           "name": ["The name field must not be greater than 50 characters."],
                           "webhook_url": ["The webhook url field must be a valid URL.",
                                           "The webhook url field must start with one of the "
                                           "following: https://."]})
        # a real create
        phone = str(5511980000000 + int(time.time()) % 100000)
        body = {"phone": "+" + phone, "name": "hs-one", "webhook_url": "https://myapp.com/hook"}
        st, _, js = hs(srv, "POST", "/create-instance", body, key=ka)
        assert st == 201, (st, js, srv.stderr()[-2000:])
        assert set(js) == {"id", "name", "phone", "service_type", "status", "qr_code",
                           "access_token", "created_at"}, js
        assert js["name"] == "hs-one" and js["phone"] == "+" + phone, js
        assert js["service_type"] == "whatsapp" and js["status"] == "SCAN_QR_CODE", js
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", js["created_at"]), js
        check_png_b64(js["qr_code"])
        iid, tok, qr_png1 = js["id"], js["access_token"], js["qr_code"]
        assert isinstance(tok, str) and len(tok) >= 16
        rows = srv.db_rows("SELECT dialect FROM instances WHERE id = ?", (iid,))
        assert rows[0][0] == "hypersender", rows
        # the name is taken (per owner)
        check_422(*[x for i, x in enumerate(hs(srv, "POST", "/create-instance", body, key=ka))
                    if i != 1], {"name": ["The name has already been taken."]})
        # account B: the same name is fine for another owner
        st, _, jb = hs(srv, "POST", "/create-instance", dict(body, webhook_url=None), key=kb)
        assert st == 201, jb
        iid_b = jb["id"]
        # 429 after 5 creates a minute per account (422s count too)
        for i in range(5):
            st, _, js = hs(srv, "POST", "/create-instance", {} if i else
                           {"phone": "+5511922220000", "name": "hs-c0"}, key=kc)
            assert st in (201, 422), (st, js)
        st, hdrs, js = hs(srv, "POST", "/create-instance", {"phone": "+5511922220001",
                                                            "name": "hs-c1"}, key=kc)
        assert st == 429 and js == TOO_MANY and int(hdrs["retry-after"]) >= 1, (st, js)
        # list with filters, per owner
        def names(key, q=""):
            st, _, js = hs(srv, "GET", "/instances" + q, key=key)
            assert st == 200 and set(js) == {"data"}, js
            for x in js["data"]:
                assert set(x) == {"id", "name", "phone", "service_type", "status",
                                  "created_at"}, x
            return sorted(x["id"] for x in js["data"])
        assert names(ka) == [iid] and names(kb) == [iid_b] and names(tok) == [iid]
        assert names(ka, "?filter[name]=one") == [iid]
        assert names(ka, "?filter%5Bname%5D=ONE") == [iid]
        assert names(ka, "?filter[name]=zzz") == []
        assert names(ka, "?filter[uuid]=" + iid) == [iid]
        assert names(ka, "?filter[uuid]=" + iid_b) == []
        assert names(ka, "?filter[phone]=%2B" + phone) == [iid]
        assert names(ka, "?filter[status]=SCAN_QR_CODE") == [iid]
        assert names(ka, "?filter[status]=WORKING") == []
        assert sorted(names(ADMIN, "?filter[phone]=%2B" + phone)) == sorted([iid, iid_b])
        # health; other owners and other instances' tokens get 404, in any dialect
        h = health(srv, iid, ka)
        assert h["status"] == "SCAN_QR_CODE" and h["connected_at"] is None, h
        for key in (kb, jb["access_token"]):
            st, _, js = hs(srv, "GET", "/%s/health" % iid, key=key)
            assert st == 404 and js == {"message": "Instance not found."}, js
        st, _, js = srv.request("GET", "/evolution/instance/connectionState/hs-one", token=tok,
                                auth="apikey")
        assert st == 200 and js["instance"]["state"] == "connecting", js
        # B's instance has the same name: B's token resolves the name to its own instance only
        st, _, js = srv.request("GET", "/evolution/instance/fetchInstances?instanceName=hs-one",
                                token=jb["access_token"], auth="apikey")
        assert st == 200 and [x["id"] for x in js] == [iid_b], js
        st, _, js = srv.request("GET", "/v1/instances/" + iid_b, token=tok)
        assert st == 404 and js["success"] is False, js
        # request-new-qr-code: a fresh QR in the create shape, then 429 within the minute
        st, _, js = hs(srv, "POST", "/%s/request-new-qr-code" % iid_b, key=kb)
        assert st == 200, (st, js)
        assert set(js) == {"id", "name", "phone", "service_type", "status", "qr_code",
                           "access_token", "created_at"}, js
        assert js["id"] == iid_b and js["access_token"] is None, js
        check_png_b64(js["qr_code"])
        assert js["qr_code"] != jb["qr_code"]
        st, _, js = hs(srv, "POST", "/%s/request-new-qr-code" % iid_b, key=kb)
        assert st == 429 and js == TOO_MANY, (st, js)
        # health: 10 a minute per instance
        for _ in range(10):
            health(srv, iid_b, kb)
        st, _, js = hs(srv, "GET", "/%s/health" % iid_b, key=kb)
        assert st == 429 and js == TOO_MANY, (st, js)
        # link hs-one: the phone scans the QR now shown (its text through the native route)
        st, _, q = srv.request("GET", "/v1/instances/%s/qr" % iid, token=tok)
        assert st == 200, q
        st, pj = SB.api("POST", "/phones", {"number": phone, "pushName": "Hyper"})
        assert st == 201, pj
        st, sj = SB.api("POST", "/phones/%s/scan" % phone, {"qr": q["data"]["code"]})
        assert st == 200, sj
        deadline = time.time() + 20
        while health(srv, iid, tok)["status"] != "WORKING":
            assert time.time() < deadline, srv.stderr()[-3000:]
            time.sleep(0.1)
        h = health(srv, iid, tok)
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", h["connected_at"]), h
        st, _, js = hs(srv, "POST", "/%s/request-new-qr-code" % iid, key=tok)
        assert st == 409 and js == {"message": "The instance is already connected."}, js
        # restart: 5 a minute per instance
        st, _, js = hs(srv, "POST", "/%s/restart" % iid, key=tok)
        assert st == 200 and js == {"message": "WhatsApp instance restarted successfully."}, js
        deadline = time.time() + 20
        while health(srv, iid, tok)["status"] != "WORKING":
            assert time.time() < deadline, srv.stderr()[-3000:]
            time.sleep(0.1)
        for _ in range(4):
            st, _, js = hs(srv, "POST", "/%s/restart" % iid_b, key=kb)
            assert st == 200, js
        st, _, js = hs(srv, "POST", "/%s/restart" % iid_b, key=kb)
        assert st == 200, js
        st, _, js = hs(srv, "POST", "/%s/restart" % iid_b, key=kb)
        assert st == 429 and js == TOO_MANY, (st, js)
        # router errors in this dialect's shape (GET /nope is a 405: DELETE /{id} matches it)
        st, _, js = hs(srv, "GET", "/nope/nope", key=ka)
        assert st == 404 and js == {"message": "The route hypersender/nope/nope could not be "
                                               "found."}, js
        st, _, js = hs(srv, "GET", "/nope", key=ka)
        assert st == 405 and js == {"message": "The GET method is not supported for route "
                                               "hypersender/nope."}, js
        st, _, js = hs(srv, "GET", "/create-instance", key=ka)
        assert st == 405 and js == {"message": "The GET method is not supported for route "
                                               "hypersender/create-instance."}, js
    finally:
        srv.stop()


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


UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def queue_send(srv, iid, body, key):
    """POST send-text: the v2 queued answer, checked field by field; returns its uuid."""
    st, _, js = hs(srv, "POST", "/%s/send-text" % iid, body, key=key)
    assert st == 200, (st, js, srv.stderr()[-3000:])
    assert set(js) == {"queued", "message", "queued_request_uuid", "queued_request_link"}, js
    assert js["queued"] is True and js["message"] == "Processing your request...", js
    assert UUID4.match(js["queued_request_uuid"]), js
    assert js["queued_request_link"] == "http://127.0.0.1:%d/hypersender/%s/queued-requests/%s" % (
        srv.port, iid, js["queued_request_uuid"]), js
    return js["queued_request_uuid"]


def queued_result(srv, iid, uuid, key, body):
    """Polls GET queued-requests/{uuid} until the send ended; every answer checked."""
    deadline = time.time() + 40
    while True:
        st, _, js = hs(srv, "GET", "/%s/queued-requests/%s" % (iid, uuid), key=key)
        assert st == 200, (st, js)
        assert set(js) == {"uuid", "request", "response_status", "response_body",
                           "response_header"}, js
        assert js["uuid"] == uuid and js["request"] == body, js
        if js["response_status"] is None:
            assert js["response_body"] is None and js["response_header"] is None, js
            assert time.time() < deadline, srv.stderr()[-3000:]
            time.sleep(0.05)
            continue
        h = js["response_header"]
        assert set(h) == {"date", "content-type"} and h["content-type"] == ["application/json"]
        assert re.fullmatch(r"[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT",
                            h["date"][0]), h
        return js["response_status"], js["response_body"]


def test_hypersender_send_text():
    srv = gateway()
    try:
        ka, kb = account(srv, "hs-a"), account(srv, "hs-b")
        base = 201100000000 + int(time.time()) % 100000
        owner, peer = str(base), str(base + 1)
        st, _, js = hs(srv, "POST", "/create-instance", {"phone": "+" + owner, "name": "hs-s"},
                       key=ka)
        assert st == 201, js
        iid, tok = js["id"], js["access_token"]
        st, _, js = hs(srv, "POST", "/create-instance", {"phone": "+201099999999",
                                                         "name": "hs-other"}, key=kb)
        assert st == 201, js
        iid_b, tok_b = js["id"], js["access_token"]
        body = {"chatId": peer + "@c.us", "text": "hello from hypersender"}
        # not linked yet: refused before queueing
        st, _, js = hs(srv, "POST", "/%s/send-text" % iid, body, key=tok)
        assert st == 409 and js == {"message": "The instance is not connected."}, (st, js)
        # link: the phone scans the QR now shown (its text through the native route)
        st, _, q = srv.request("GET", "/v1/instances/%s/qr" % iid, token=tok)
        assert st == 200, q
        for n in (owner, peer):
            st, pj = SB.api("POST", "/phones", {"number": n, "pushName": "HS " + n})
            assert st == 201, pj
        st, sj = SB.api("POST", "/phones/%s/scan" % owner, {"qr": q["data"]["code"]})
        assert st == 200, sj
        deadline = time.time() + 20
        while health(srv, iid, tok)["status"] != "WORKING":
            assert time.time() < deadline, srv.stderr()[-3000:]
            time.sleep(0.1)
        # queued answer, then the outcome: 201 with the documented message shape (chatId in
        # WhatsApp Web's c.us form)
        t0 = int(time.time())
        uuid = queue_send(srv, iid, body, tok)
        st, js = queued_result(srv, iid, uuid, tok, body)
        assert st == 201, (st, js)
        assert set(js) == {"key", "status", "message", "messageTimestamp"}, js
        assert set(js["key"]) == {"id", "fromMe", "remoteJid"}, js
        assert re.fullmatch(r"3EB0[0-9A-F]{18}", js["key"]["id"]), js
        assert js["key"]["fromMe"] is True, js
        assert js["key"]["remoteJid"] == peer + "@s.whatsapp.net", js
        assert js["status"] == "PENDING", js
        assert js["message"] == {"extendedTextMessage": {"text": "hello from hypersender"}}, js
        assert isinstance(js["messageTimestamp"], str), js
        assert t0 - 1 <= int(js["messageTimestamp"]) <= time.time() + 1, js
        got = wait_inbox(peer, "hello from hypersender")
        assert got[0]["id"] == js["key"]["id"], got
        assert got[0]["from"].split("@")[0].split(":")[0] == owner, got
        # asked again (with the account key): the same outcome
        assert queued_result(srv, iid, uuid, ka, body) == (st, js)
        # the account key, a reply, a plain number and the optional flags
        body2 = {"chatId": peer, "text": "a reply", "reply_to": js["key"]["id"],
                 "link_preview": False, "link_preview_high_quality": False}
        st2, js2 = queued_result(srv, iid, queue_send(srv, iid, body2, ka), ka, body2)
        assert st2 == 201 and js2["key"]["remoteJid"] == peer + "@s.whatsapp.net", (st2, js2)
        assert js2["key"]["id"] != js["key"]["id"], js2
        wait_inbox(peer, "a reply")
        # nobody has this number: queued, then 404 as the outcome
        body3 = {"chatId": "4900000000001@c.us", "text": "x"}
        st3, js3 = queued_result(srv, iid, queue_send(srv, iid, body3, tok), tok, body3)
        assert st3 == 404 and js3 == {"message": "The recipient is not on WhatsApp."}, js3
        # validation, before queueing: one Laravel message per failing rule
        st, _, js = hs(srv, "POST", "/%s/send-text" % iid, {}, key=tok)
        check_422(st, js, {"chatId": ["The chat id field is required."],
                           "text": ["The text field is required."]})
        st, _, js = hs(srv, "POST", "/%s/send-text" % iid, raw="{nope", key=tok)
        check_422(st, js, {"chatId": ["The chat id field is required."],
                           "text": ["The text field is required."]})
        st, _, js = hs(srv, "POST", "/%s/send-text" % iid,
                       {"chatId": 5, "text": ["x"], "reply_to": 1, "link_preview": "yes"},
                       key=tok)
        check_422(st, js, {"chatId": ["The chat id field must be a string."],
                           "text": ["The text field must be a string."],
                           "reply_to": ["The reply to field must be a string."],
                           "link_preview": ["The link preview field must be true or false."]})
        st, _, js = hs(srv, "POST", "/%s/send-text" % iid, {"chatId": "not a number",
                                                           "text": "x"}, key=tok)
        check_422(st, js, {"chatId": ["The chat id field format is invalid."]})
        # auth and ownership, for both routes
        for path in ("/%s/send-text" % iid, "/%s/queued-requests/%s" % (iid, uuid)):
            method = "POST" if path.endswith("send-text") else "GET"
            st, _, js = hs(srv, method, path, body if method == "POST" else None)
            assert st == 401 and js == {"message": "Unauthenticated."}, (st, js)
            st, _, js = hs(srv, method, path, body if method == "POST" else None, key="nope")
            assert st == 401 and js == {"message": "Unauthenticated."}, (st, js)
            for key in (kb, tok_b):
                st, _, js = hs(srv, method, path, body if method == "POST" else None, key=key)
                assert st == 404 and js == {"message": "Instance not found."}, (st, js)
        st, _, js = hs(srv, "POST", "/%s/send-text" % iid_b, body, key=tok)
        assert st == 404 and js == {"message": "Instance not found."}, (st, js)
        # a queued request belongs to its instance; unknown ids are 404
        for i, key, u in ((iid_b, kb, uuid), (iid, tok, "a0816120-7e37-4e8b-8cf3-92deb2cdc133")):
            st, _, js = hs(srv, "GET", "/%s/queued-requests/%s" % (i, u), key=key)
            assert st == 404 and js == {"message": "Queued request not found."}, (st, js)
        st, _, js = hs(srv, "GET", "/%s/send-text" % iid, key=tok)
        assert st == 405, (st, js)
        assert [m["text"] for m in phone_inbox(peer)] == ["hello from hypersender", "a reply"]
    finally:
        srv.stop()


def wait_health(srv, iid, key, status, timeout=20):
    deadline = time.time() + timeout
    while True:
        h = health(srv, iid, key)
        if h["status"] == status:
            return h
        assert time.time() < deadline, (h, srv.stderr()[-3000:])
        time.sleep(0.1)


def listed(srv, key):
    st, _, js = hs(srv, "GET", "/instances", key=key)
    assert st == 200 and set(js) == {"data"}, (st, js)
    return {x["id"]: x for x in js["data"]}


def test_hypersender_logout_and_delete():
    """POST /{id}/logout and DELETE /{id} (ours: Hypersender documents neither): every field of
    every answer, the sandbox phone losing the device, the instance gone, the errors (401, 403,
    404 for unknown ids, other owners and other instances' tokens in every dialect, 409, 429)."""
    srv = gateway()
    try:
        ka, kb = account(srv, "hs-la"), account(srv, "hs-lb")
        phone = str(5511970000000 + int(time.time()) % 100000)
        made = {}
        for name, key, ph in (("hs-ld", ka, "+" + phone), ("hs-ld2", ka, "+5511960000001"),
                              ("hs-lb", kb, "+5511960000002")):
            st, _, js = hs(srv, "POST", "/create-instance", {"phone": ph, "name": name}, key=key)
            assert st == 201, (st, js)
            made[name] = js
        iid, tok = made["hs-ld"]["id"], made["hs-ld"]["access_token"]
        iid2, tok2 = made["hs-ld2"]["id"], made["hs-ld2"]["access_token"]
        iid_b, tok_b = made["hs-lb"]["id"], made["hs-lb"]["access_token"]
        routes = (("POST", "/%s/logout"), ("DELETE", "/%s"))
        # 401 without or with a wrong credential
        for method, path in routes:
            for key in (None, "wrong-key-0123456789"):
                st, _, js = hs(srv, method, path % iid, key=key)
                assert st == 401 and js == {"message": "Unauthenticated."}, (method, st, js)
        # 404: an unknown id, another owner's instance (its account key, its token), and
        # another instance's token of the same owner; nothing changed
        nobody = "a0816120-7e37-4e8b-8cf3-92deb2cdc133"
        for method, path in routes:
            for target, key in ((nobody, ka), (iid, kb), (iid, tok_b), (iid, tok2),
                                (iid_b, ka), (iid_b, tok)):
                st, _, js = hs(srv, method, path % target, key=key)
                assert st == 404 and js == {"message": "Instance not found."}, (method, st, js)
        # ... nor through the other dialects
        for method, path in (("POST", "/v1/instances/%s/logout" % iid),
                             ("DELETE", "/v1/instances/%s" % iid)):
            for key in (kb, tok_b, tok2):
                st, _, js = srv.request(method, path, token=key)
                assert st == 404 and js["success"] is False, (path, st, js)
        for method, path in (("DELETE", "/evolution/instance/logout/hs-ld"),
                             ("DELETE", "/evolution/instance/delete/hs-ld")):
            st, _, js = srv.request(method, path, token=kb, auth="apikey")
            assert st == 404, (path, st, js)
            st, _, js = srv.request(method, path, token=tok_b, auth="apikey")
            assert st == 401, (path, st, js)  # a token cannot probe names
        assert set(listed(srv, ka)) == {iid, iid2} and set(listed(srv, kb)) == {iid_b}
        # logout of an instance that is not connected: 409; 5 a minute per instance
        for _ in range(5):
            st, _, js = hs(srv, "POST", "/%s/logout" % iid2, key=tok2)
            assert st == 409 and js == {"message": "The instance is not connected."}, (st, js)
        st, hdrs, js = hs(srv, "POST", "/%s/logout" % iid2, key=tok2)
        assert st == 429 and js == TOO_MANY and int(hdrs["retry-after"]) >= 1, (st, js)
        # link hs-ld: the phone scans the QR now shown (its text through the native route)
        st, _, q = srv.request("GET", "/v1/instances/%s/qr" % iid, token=tok)
        assert st == 200, q
        st, pj = SB.api("POST", "/phones", {"number": phone, "pushName": "Hyper Out"})
        assert st == 201, pj
        st, sj = SB.api("POST", "/phones/%s/scan" % phone, {"qr": q["data"]["code"]})
        assert st == 200, sj
        wait_health(srv, iid, tok, "WORKING")
        st, devs = SB.api("GET", "/phones/%s/devices" % phone)
        assert st == 200 and len(devs) == 1 and devs[0]["connected"], devs
        assert srv.db_rows("SELECT COUNT(*) FROM wa_creds WHERE instance_id = ?",
                           (iid,))[0][0] == 1
        # logout with the instance's own token
        st, _, js = hs(srv, "POST", "/%s/logout" % iid, key=tok)
        assert st == 200 and js == {"message": "WhatsApp instance logged out successfully."}, js
        h = health(srv, iid, tok)
        assert h == {"instance_id": iid, "connected_at": None, "status": "STOPPED"}, h
        item = listed(srv, ka)[iid]
        assert item["status"] == "STOPPED" and item["name"] == "hs-ld", item
        st, _, nj = srv.request("GET", "/v1/instances/" + iid, token=ka)
        assert st == 200 and nj["data"]["statusReason"] == "logout", nj
        # the engine told WhatsApp (remove-companion-device): the phone no longer lists the
        # device; the credentials are wiped, it stays logged out
        deadline = time.time() + 10
        while True:
            st, devs = SB.api("GET", "/phones/%s/devices" % phone)
            assert st == 200, (st, devs)
            if devs == []:
                break
            assert time.time() < deadline, devs
            time.sleep(0.1)
        for table in ("wa_creds", "wa_prekeys"):
            assert srv.db_rows("SELECT COUNT(*) FROM %s WHERE instance_id = ?" % table,
                               (iid,))[0][0] == 0, table
        time.sleep(0.5)
        assert health(srv, iid, tok)["status"] == "STOPPED"
        st, _, js = hs(srv, "POST", "/%s/logout" % iid, key=ka)
        assert st == 409 and js == {"message": "The instance is not connected."}, (st, js)
        # a new link starts with a fresh QR
        st, _, js = hs(srv, "POST", "/%s/request-new-qr-code" % iid, key=tok)
        assert st == 200 and js["id"] == iid and js["status"] == "SCAN_QR_CODE", (st, js)
        check_png_b64(js["qr_code"])
        # delete: an instance token may not (403, nothing changed); 5 a minute per instance
        for _ in range(5):
            st, _, js = hs(srv, "DELETE", "/%s" % iid2, key=tok2)
            assert st == 403 and js == {"message": "This action is unauthorized."}, (st, js)
        st, _, js = hs(srv, "DELETE", "/%s" % iid2, key=tok2)
        assert st == 429 and js == TOO_MANY, (st, js)
        assert health(srv, iid2, tok2)["instance_id"] == iid2
        st, _, js = hs(srv, "DELETE", "/%s" % iid, key=tok)
        assert st == 403 and js == {"message": "This action is unauthorized."}, (st, js)
        # the owner's account key deletes it
        st, _, js = hs(srv, "DELETE", "/%s" % iid, key=ka)
        assert st == 200 and js == {"message": "WhatsApp instance deleted successfully."}, js
        assert srv.db_rows("SELECT COUNT(*) FROM instances WHERE id = ?", (iid,))[0][0] == 0
        # gone: 404 on every route, not listed, its token no longer authenticates
        for method, path in routes + (("GET", "/%s/health"), ("POST", "/%s/restart")):
            st, _, js = hs(srv, method, path % iid, key=ka)
            assert st == 404 and js == {"message": "Instance not found."}, (method, path, st, js)
        assert set(listed(srv, ka)) == {iid2}
        assert listed(srv, ka).get(iid) is None
        st, _, js = hs(srv, "GET", "/instances?filter[uuid]=" + iid, key=ADMIN)
        assert st == 200 and js == {"data": []}, js
        st, _, js = hs(srv, "GET", "/instances", key=tok)
        assert st == 401 and js == {"message": "Unauthenticated."}, (st, js)
        st, _, js = srv.request("GET", "/v1/instances/" + iid, token=ka)
        assert st == 404, (st, js)
        # the name is free again for this owner
        st, _, js = hs(srv, "POST", "/create-instance", {"phone": "+" + phone, "name": "hs-ld"},
                       key=ka)
        assert st == 201 and js["id"] != iid, (st, js)
        # the admin key deletes any owner's instance
        st, _, js = hs(srv, "DELETE", "/%s" % iid_b, key=ADMIN)
        assert st == 200 and js == {"message": "WhatsApp instance deleted successfully."}, js
        assert listed(srv, kb) == {}
        # method and route errors around the new routes
        st, _, js = hs(srv, "GET", "/%s/logout" % iid2, key=ka)
        assert st == 405 and js == {"message": "The GET method is not supported for route "
                                               "hypersender/%s/logout." % iid2}, (st, js)
    finally:
        srv.stop()
