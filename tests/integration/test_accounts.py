"""Admin routes: accounts, plans, key rotation; credentials in both header forms."""
import re

from harness import Server

srv = None
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def setup_module():
    global srv
    srv = Server(env={"WAGATE_RATE_CREATE": "0"}).start()


def teardown_module():
    srv.cleanup()


def test_admin_key_printed_once_and_works():
    assert srv.admin_key and srv.admin_key.startswith("wga_") and len(srv.admin_key) >= 36
    assert srv.stdout().count(srv.admin_key) >= 1
    assert "curl" in srv.stdout() and "/v1/instances" in srv.stdout()
    st, _, b = srv.request("GET", "/v1/accounts", token=srv.admin_key)
    assert st == 200 and b["success"] is True
    st, _, _ = srv.request("GET", "/v1/accounts", token=srv.admin_key, auth="apikey")
    assert st == 200
    # the plain key is not stored anywhere in the database
    assert not srv.db_rows("SELECT 1 FROM meta WHERE value = ?", (srv.admin_key,))


def test_unauthorized():
    for tok in (None, "", "wrong", "wga_" + "0" * 64):
        st, h, b = srv.request("GET", "/v1/instances", token=tok)
        assert st == 401, tok
        assert b["success"] is False and b["error"]["code"] == "unauthorized"
    st, _, b = srv.request("GET", "/v1/instances", headers={"Authorization": "Basic " + srv.admin_key})
    assert st == 401


def test_create_account():
    st, _, b = srv.request("POST", "/v1/accounts", {"name": "Acme", "plan": "starter"}, token=srv.admin_key)
    assert st == 201, b
    d = b["data"]
    assert b["success"] is True
    assert d["id"].startswith("acc_") and d["name"] == "Acme" and d["plan"] == "starter"
    assert d["apiKey"].startswith("wgk_") and len(d["apiKey"]) >= 4 + 32  # >= 128 bits
    assert ISO.match(d["createdAt"])
    # only a hash is stored
    assert not srv.db_rows("SELECT 1 FROM accounts WHERE key_hash = ?", (d["apiKey"],))
    (h,) = srv.db_rows("SELECT key_hash FROM accounts WHERE id = ?", (d["id"],))[0]
    assert re.match(r"^[0-9a-f]{64}$", h)
    # the key is shown only at creation
    st, _, b = srv.request("GET", "/v1/accounts", token=srv.admin_key)
    acc = [a for a in b["data"] if a["id"] == d["id"]][0]
    assert "apiKey" not in acc and acc["instanceLimit"] == 3 and acc["instances"] == 0
    # the key works, in both forms
    assert srv.request("GET", "/v1/instances", token=d["apiKey"])[0] == 200
    assert srv.request("GET", "/v1/instances", token=d["apiKey"], auth="apikey")[0] == 200


def test_account_default_plan_free():
    st, _, b = srv.request("POST", "/v1/accounts", {"name": "Default"}, token=srv.admin_key)
    assert st == 201 and b["data"]["plan"] == "free"


def test_account_validation():
    cases = [({}, "name"), ({"name": ""}, "name"), ({"name": 5}, "name"), ({"name": "x" * 101}, "name"),
             ({"name": "ok", "plan": "gold"}, "plan"), ({"name": "ok", "plan": 3}, "plan")]
    for body, field in cases:
        st, _, b = srv.request("POST", "/v1/accounts", body, token=srv.admin_key)
        assert st == 422, body
        assert b["error"]["code"] == "validation_error" and b["error"]["field"] == field, b
    st, _, b = srv.request("POST", "/v1/accounts", raw="{nope", token=srv.admin_key)
    assert st == 400 and b["error"]["code"] == "invalid_json"


def test_non_admin_forbidden_on_admin_routes():
    st, _, b = srv.request("POST", "/v1/accounts", {"name": "U"}, token=srv.admin_key)
    key, aid = b["data"]["apiKey"], b["data"]["id"]
    st, _, ib = srv.request("POST", "/v1/instances", {"name": "i"}, token=key)
    itok = ib["data"]["accessToken"]
    for tok in (key, itok):
        for m, p, body in (("GET", "/v1/accounts", None), ("POST", "/v1/accounts", {"name": "z"}),
                           ("PATCH", "/v1/accounts/" + aid, {"plan": "pro"}),
                           ("POST", "/v1/accounts/%s/keys" % aid, None)):
            st, _, b = srv.request(m, p, body, token=tok)
            assert st == 403 and b["error"]["code"] == "forbidden", (m, p)


def test_patch_plan():
    st, _, b = srv.request("POST", "/v1/accounts", {"name": "P", "plan": "free"}, token=srv.admin_key)
    aid = b["data"]["id"]
    st, _, b = srv.request("PATCH", "/v1/accounts/" + aid, {"plan": "pro"}, token=srv.admin_key)
    assert st == 200 and b["data"]["plan"] == "pro" and b["data"]["instanceLimit"] == 10
    st, _, b = srv.request("PATCH", "/v1/accounts/" + aid, {"plan": "enterprise"}, token=srv.admin_key)
    assert st == 200 and b["data"]["instanceLimit"] is None
    st, _, b = srv.request("PATCH", "/v1/accounts/" + aid, {"plan": "platinum"}, token=srv.admin_key)
    assert st == 422 and b["error"]["field"] == "plan"
    st, _, b = srv.request("PATCH", "/v1/accounts/" + aid, {}, token=srv.admin_key)
    assert st == 422
    st, _, b = srv.request("PATCH", "/v1/accounts/acc_doesnotexist", {"plan": "pro"}, token=srv.admin_key)
    assert st == 404 and b["error"]["code"] == "not_found"


def test_rotate_key():
    st, _, b = srv.request("POST", "/v1/accounts", {"name": "R"}, token=srv.admin_key)
    aid, old = b["data"]["id"], b["data"]["apiKey"]
    st, _, b = srv.request("POST", "/v1/accounts/%s/keys" % aid, token=srv.admin_key)
    assert st == 201 and b["data"]["id"] == aid
    new = b["data"]["apiKey"]
    assert new != old and new.startswith("wgk_")
    assert srv.request("GET", "/v1/instances", token=old)[0] == 401
    assert srv.request("GET", "/v1/instances", token=new)[0] == 200
    st, _, b = srv.request("POST", "/v1/accounts/acc_nope/keys", token=srv.admin_key)
    assert st == 404


def test_admin_key_from_env_is_not_printed():
    key = "wga_env_" + "ab" * 20
    s2 = Server(env={"WAGATE_ADMIN_KEY": key}).start()
    try:
        assert key not in s2.stdout()
        assert s2.request("GET", "/v1/accounts", token=key)[0] == 200
        assert not s2.db_rows("SELECT 1 FROM meta WHERE key = 'admin_key_hash'")
    finally:
        s2.cleanup()
