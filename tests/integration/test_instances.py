"""Native instance API: create (fields, defaults, errors), list/get/patch/delete, lifecycle
actions, and the outbox events written with each status change."""
import json
import re

from harness import Server

srv = None
key = None  # enterprise account key
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
DEFAULT_SETTINGS = {"autoRead": False, "autoTyping": True, "rejectCall": False, "msgCall": "",
                    "groupsIgnore": False, "alwaysOnline": False, "readMessages": False,
                    "readStatus": False, "syncFullHistory": False}


def setup_module():
    global srv, key
    srv = Server(env={"WAGATE_RATE_CREATE": "0"}).start()
    st, _, b = srv.request("POST", "/v1/accounts", {"name": "Inst", "plan": "enterprise"}, token=srv.admin_key)
    key = b["data"]["apiKey"]


def teardown_module():
    srv.cleanup()


def create(body, token=None, expect=201):
    st, h, b = srv.request("POST", "/v1/instances", body, token=token or key)
    assert st == expect, (st, b)
    return b


def assert_chain(events):
    """connection.updated events of one instance form a chain: each previousStatus is the
    status the event before it reported, the first one starts from nothing."""
    prev = None
    for name, p in events:
        if name != "connection.updated":
            continue
        assert p["previousStatus"] == prev, events
        prev = p["status"]


def outbox(iid):
    return [(e, json.loads(p)) for e, p in srv.db_rows(
        "SELECT event, payload FROM outbox WHERE instance_id = ? ORDER BY seq", (iid,))]


def test_create_minimal():
    b = create({"name": "Sales WhatsApp"})
    d = b["data"]
    assert b["success"] is True
    assert re.match(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$", d["id"])
    assert d["name"] == "Sales WhatsApp"
    for k in ("phone", "profileName", "profilePicUrl", "webhookUrl", "qrCode"):
        assert d[k] is None, k
    assert d["settings"] == DEFAULT_SETTINGS
    assert ISO.match(d["createdAt"])
    assert d["accessToken"].startswith("wgi_") and len(d["accessToken"]) == 68
    # new instances start; with no reachable WhatsApp server they keep STARTING (engine
    # backoff) or fail with a reason - and never show a made-up QR code
    assert d["status"] in ("STARTING", "FAILED"), d
    assert d["status"] == "STARTING" or d["statusReason"]
    ev = outbox(d["id"])
    assert ev[0][0] == "connection.updated"
    assert ev[0][1] == {"instanceId": d["id"], "status": "STARTING", "previousStatus": None}
    assert_chain(ev)
    rows = srv.db_rows("SELECT id, seq FROM outbox WHERE instance_id = ? ORDER BY seq", (d["id"],))
    assert [s for _, s in rows] == list(range(1, len(rows) + 1))
    assert all(r[0].startswith("evt_") for r in rows)
    assert [r[0] for r in rows] == sorted(r[0] for r in rows)  # time-ordered ids


def test_create_full():
    body = {"name": "Full", "phone": "+5511999999999", "integration": "WHATSAPP-BAILEYS",
            "webhookUrl": "https://myapp.com/webhooks/whatsapp",
            "webhookEvents": ["message.received", "message.sent", "message.received"],
            "settings": {"autoRead": True, "rejectCall": True, "msgCall": "busy"},
            "proxy": {"protocol": "socks5", "host": "proxy.local", "port": 1080,
                      "username": "u", "password": "secret"}}
    d = create(body)["data"]
    assert d["phone"] == "+5511999999999"
    assert d["webhookUrl"] == body["webhookUrl"]
    assert d["webhookEvents"] == ["message.received", "message.sent"]
    assert d["settings"] == dict(DEFAULT_SETTINGS, autoRead=True, rejectCall=True, msgCall="busy")
    assert d["proxy"] == {"protocol": "socks5", "host": "proxy.local", "port": 1080, "username": "u"}
    assert "secret" not in json.dumps(d)


def test_create_phone_without_plus_and_string_port():
    d = create({"name": "P2", "phone": "14155550100", "proxy": {"host": "h", "port": "8080"}})["data"]
    assert d["phone"] == "+14155550100" and d["proxy"]["port"] == 8080 and d["proxy"]["protocol"] == "http"


def test_create_enviaai_dotted_settings():
    d = create({"name": "Dotted", "settings": {}, "settings.autoRead": True, "settings.autoTyping": False})["data"]
    assert d["settings"]["autoRead"] is True and d["settings"]["autoTyping"] is False


def test_custom_token():
    tok = "my-custom-token-0123456789"
    d = create({"name": "Custom", "token": tok})["data"]
    assert d["accessToken"] == tok
    st, _, b = srv.request("GET", "/v1/instances/" + d["id"], token=tok)
    assert st == 200 and b["data"]["id"] == d["id"]
    b = create({"name": "Custom2", "token": tok}, expect=422)
    assert b["error"]["field"] == "token"
    b = create({"name": "Custom3", "token": "short"}, expect=422)
    assert b["error"]["field"] == "token"


def test_create_validation_errors():
    cases = [
        ({}, 422, "validation_error", "name"),
        ({"name": ""}, 422, "validation_error", "name"),
        ({"name": None}, 422, "validation_error", "name"),
        ({"name": 12}, 422, "validation_error", "name"),
        ({"name": "x" * 51}, 422, "validation_error", "name"),
        ({"name": "bad\nname"}, 422, "validation_error", "name"),
        ({"name": "ok", "phone": "12345"}, 422, "validation_error", "phone"),
        ({"name": "ok", "phone": "+0123456789"}, 422, "validation_error", "phone"),
        ({"name": "ok", "phone": "+55 11 99999"}, 422, "validation_error", "phone"),
        ({"name": "ok", "phone": 5511999999999}, 422, "validation_error", "phone"),
        ({"name": "ok", "webhookUrl": "ftp://x.com/a"}, 422, "invalid_webhook_url", "webhookUrl"),
        ({"name": "ok", "webhookUrl": "not a url"}, 422, "invalid_webhook_url", "webhookUrl"),
        ({"name": "ok", "webhookUrl": "http://"}, 422, "invalid_webhook_url", "webhookUrl"),
        ({"name": "ok", "webhookUrl": "http://a.com:99999/"}, 422, "invalid_webhook_url", "webhookUrl"),
        ({"name": "ok", "webhookUrl": 3}, 422, "invalid_webhook_url", "webhookUrl"),
        ({"name": "ok", "webhookEvents": ["message.received", "message.exploded"]}, 422, "invalid_webhook_events", "webhookEvents"),
        ({"name": "ok", "webhookEvents": "message.received"}, 422, "invalid_webhook_events", "webhookEvents"),
        ({"name": "ok", "webhookEvents": [1]}, 422, "invalid_webhook_events", "webhookEvents"),
        ({"name": "ok", "settings": {"autoRead": "yes"}}, 422, "validation_error", "settings.autoRead"),
        ({"name": "ok", "settings": {"teleport": True}}, 422, "validation_error", "settings.teleport"),
        ({"name": "ok", "settings": []}, 422, "validation_error", "settings"),
        ({"name": "ok", "proxy": {"host": "h", "port": 0}}, 422, "validation_error", "proxy.port"),
        ({"name": "ok", "proxy": {"host": "h", "port": 70000}}, 422, "validation_error", "proxy.port"),
        ({"name": "ok", "proxy": {"host": "h", "port": "abc"}}, 422, "validation_error", "proxy.port"),
        ({"name": "ok", "proxy": {"host": "h"}}, 422, "validation_error", "proxy.port"),
        ({"name": "ok", "proxy": {"protocol": "ftp", "host": "h", "port": 1}}, 422, "validation_error", "proxy.protocol"),
        ({"name": "ok", "proxy": {"port": 1}}, 422, "validation_error", "proxy.host"),
        ({"name": "ok", "proxy": "socks5://h:1"}, 422, "validation_error", "proxy"),
        ({"name": "ok", "integration": "TELEGRAM"}, 422, "validation_error", "integration"),
    ]
    for body, status, code, field in cases:
        st, h, b = srv.request("POST", "/v1/instances", body, token=key)
        assert (st, b["error"]["code"], b["error"]["field"]) == (status, code, field), (body, b)
        assert b["success"] is False and b["error"]["message"]
        assert h["content-type"].startswith("application/json")


def test_name_unique_per_owner_and_50_chars_ok():
    n = "é" * 50  # 50 characters, 100 bytes
    create({"name": n})
    b = create({"name": n}, expect=422)
    assert b["error"] == {"code": "validation_error", "field": "name", "message": b["error"]["message"]}
    # another owner may reuse the name
    st, _, ob = srv.request("POST", "/v1/accounts", {"name": "Other", "plan": "pro"}, token=srv.admin_key)
    create({"name": n}, token=ob["data"]["apiKey"])


def test_invalid_json():
    for raw in ("", "{", "[]", "\"x\"", "{\"name\": \"a\", \"name\": \"b\"}", "\xff\xfe"):
        st, _, b = srv.request("POST", "/v1/instances", raw=raw.encode("latin-1"), token=key,
                               headers={"Content-Type": "application/json"})
        assert st == 400 and b["error"]["code"] == "invalid_json", raw


def test_get_list_filters_and_pages():
    st, _, ab = srv.request("POST", "/v1/accounts", {"name": "Lister", "plan": "enterprise"}, token=srv.admin_key)
    k = ab["data"]["apiKey"]
    ids = [create({"name": "list-%02d" % i}, token=k)["data"]["id"] for i in range(7)]
    create({"name": "other-name"}, token=k)
    st, _, b = srv.request("GET", "/v1/instances?limit=3&page=1", token=k)
    assert st == 200 and [d["id"] for d in b["data"]] == ids[:3]
    assert b["pagination"] == {"page": 1, "limit": 3, "total": 8, "totalPages": 3}
    st, _, b = srv.request("GET", "/v1/instances?limit=3&page=3", token=k)
    assert len(b["data"]) == 2
    st, _, b = srv.request("GET", "/v1/instances?name=LIST-0", token=k)
    assert b["pagination"]["total"] == 7
    st, _, b = srv.request("GET", "/v1/instances?name=list%2D03", token=k)
    assert [d["name"] for d in b["data"]] == ["list-03"]
    srv.request("POST", "/v1/instances/%s/stop" % ids[0], token=k)
    st, _, b = srv.request("GET", "/v1/instances?status=STOPPED", token=k)
    assert [d["id"] for d in b["data"]] == [ids[0]]
    st, _, b = srv.request("GET", "/v1/instances?status=stopped", token=k)
    assert [d["id"] for d in b["data"]] == [ids[0]]
    st, _, b = srv.request("GET", "/v1/instances?status=STOPPED&name=other", token=k)
    assert b["data"] == []
    for q, field in (("status=SLEEPING", "status"), ("limit=0", "limit"), ("limit=101", "limit"),
                     ("page=0", "page"), ("page=x", "page"), ("limit=-1", "limit")):
        st, _, b = srv.request("GET", "/v1/instances?" + q, token=k)
        assert st == 422 and b["error"]["field"] == field, q
    st, _, b = srv.request("GET", "/v1/instances/" + ids[1], token=k)
    assert st == 200 and b["data"]["id"] == ids[1] and "accessToken" not in b["data"]
    st, _, b = srv.request("GET", "/v1/instances/inst_000000000000000000000000", token=k)
    assert st == 404 and b["error"]["code"] == "not_found"


def test_patch_webhook_and_settings():
    d = create({"name": "patchme", "webhookUrl": "https://a.example/hook"})["data"]
    iid = d["id"]
    st, _, b = srv.request("PATCH", "/v1/instances/" + iid,
                           {"webhookEvents": ["qr.updated", "connection.updated"],
                            "settings": {"readMessages": True}}, token=key)
    assert st == 200, b
    assert b["data"]["webhookUrl"] == "https://a.example/hook"
    assert b["data"]["webhookEvents"] == ["qr.updated", "connection.updated"]
    assert b["data"]["settings"] == dict(DEFAULT_SETTINGS, readMessages=True)
    st, _, b = srv.request("PATCH", "/v1/instances/" + iid, {"settings": {"autoTyping": False}}, token=key)
    assert b["data"]["settings"] == dict(DEFAULT_SETTINGS, readMessages=True, autoTyping=False)
    st, _, b = srv.request("PATCH", "/v1/instances/" + iid, {"webhookUrl": "http://b.example:8080/x?y=1"}, token=key)
    assert b["data"]["webhookUrl"] == "http://b.example:8080/x?y=1"
    assert b["data"]["webhookEvents"] == ["qr.updated", "connection.updated"]
    st, _, b = srv.request("PATCH", "/v1/instances/" + iid, {"webhookUrl": None}, token=key)
    assert st == 200 and b["data"]["webhookUrl"] is None
    st, _, b = srv.request("PATCH", "/v1/instances/" + iid, {"proxy": {"host": "p", "port": 3128}}, token=key)
    assert b["data"]["proxy"]["port"] == 3128
    st, _, b = srv.request("PATCH", "/v1/instances/" + iid, {"proxy": None}, token=key)
    assert b["data"]["proxy"] is None
    for body, code, field in (({"webhookUrl": "gopher://x"}, "invalid_webhook_url", "webhookUrl"),
                              ({"webhookEvents": ["nope"]}, "invalid_webhook_events", "webhookEvents"),
                              ({"settings": {"autoRead": 1}}, "validation_error", "settings.autoRead"),
                              ({"proxy": {"host": "p", "port": 0}}, "validation_error", "proxy.port")):
        st, _, b = srv.request("PATCH", "/v1/instances/" + iid, body, token=key)
        assert st == 422 and (b["error"]["code"], b["error"]["field"]) == (code, field), body
    st, _, b = srv.request("PATCH", "/v1/instances/" + iid, {}, token=key)
    assert st == 422
    st, _, b = srv.request("PATCH", "/v1/instances/" + iid, raw="nope", token=key)
    assert st == 400 and b["error"]["code"] == "invalid_json"
    # nothing about the failed patches stuck
    st, _, b = srv.request("GET", "/v1/instances/" + iid, token=key)
    assert b["data"]["settings"] == dict(DEFAULT_SETTINGS, readMessages=True, autoTyping=False)


def test_lifecycle_actions():
    iid = create({"name": "life"})["data"]["id"]
    st, _, b = srv.request("POST", "/v1/instances/%s/stop" % iid, token=key)
    assert st == 200 and b["data"]["status"] == "STOPPED" and b["data"]["statusReason"] is None
    n_stop = len(outbox(iid))
    assert outbox(iid)[-1][1]["status"] == "STOPPED"
    st, _, b = srv.request("POST", "/v1/instances/%s/start" % iid, token=key)
    assert st == 200 and b["data"]["status"] in ("STARTING", "FAILED")
    assert outbox(iid)[n_stop][1] == {"instanceId": iid, "status": "STARTING", "previousStatus": "STOPPED", "reason": None}
    st, _, b = srv.request("POST", "/v1/instances/%s/restart" % iid, token=key)
    assert st == 200 and b["data"]["status"] in ("STARTING", "FAILED")
    st, _, b = srv.request("POST", "/v1/instances/%s/logout" % iid, token=key)
    assert st == 200 and b["data"]["status"] == "STOPPED" and b["data"]["statusReason"] == "logout"
    st, _, b = srv.request("POST", "/v1/instances/%s/stop" % iid, token=key)
    assert st == 200 and b["data"]["status"] == "STOPPED"
    ev = outbox(iid)
    assert_chain(ev)
    statuses = [p["status"] for _, p in ev]
    # stop, start, restart (stop + start), logout, stop: in this order
    want = ["STOPPED", "STARTING", "STOPPED", "STARTING", "STOPPED"]
    it = iter(statuses)
    assert all(w in it for w in want), statuses
    assert ev[-1][1]["status"] == "STOPPED"
    for a in ("start", "stop", "restart", "logout"):
        st, _, b = srv.request("POST", "/v1/instances/inst_nope/%s" % a, token=key)
        assert st == 404


def test_delete():
    iid = create({"name": "doomed"})["data"]["id"]
    st, _, b = srv.request("DELETE", "/v1/instances/" + iid, token=key)
    assert st == 200 and b == {"success": True, "data": {"id": iid, "deleted": True}}
    assert srv.request("GET", "/v1/instances/" + iid, token=key)[0] == 404
    assert srv.request("DELETE", "/v1/instances/" + iid, token=key)[0] == 404
    ev = outbox(iid)
    assert ev[-1][0] == "instance.deleted" and ev[-1][1]["instanceId"] == iid
    # the name is free again
    create({"name": "doomed"})
