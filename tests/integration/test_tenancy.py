"""Tenant isolation (account keys and instance tokens see only their own) and plan limits."""
from harness import Server

srv = None
A = B = None  # dicts: key, id, inst (id), itok, inst2


def setup_module():
    global srv, A, B
    srv = Server(env={"WAGATE_RATE_CREATE": "0"}).start()
    A, B = {}, {}
    for t, name in ((A, "A"), (B, "B")):
        st, _, b = srv.request("POST", "/v1/accounts", {"name": name, "plan": "starter"}, token=srv.admin_key)
        t["key"], t["id"] = b["data"]["apiKey"], b["data"]["id"]
        st, _, b = srv.request("POST", "/v1/instances", {"name": name + "-1"}, token=t["key"])
        t["inst"], t["itok"] = b["data"]["id"], b["data"]["accessToken"]
        st, _, b = srv.request("POST", "/v1/instances", {"name": name + "-2"}, token=t["key"])
        t["inst2"] = b["data"]["id"]


def teardown_module():
    srv.cleanup()


ROUTES = [("GET", "/v1/instances/%s", None), ("PATCH", "/v1/instances/%s", {"settings": {"autoRead": True}}),
          ("POST", "/v1/instances/%s/start", None), ("POST", "/v1/instances/%s/stop", None),
          ("POST", "/v1/instances/%s/restart", None), ("POST", "/v1/instances/%s/logout", None),
          ("DELETE", "/v1/instances/%s", None)]


def snapshot(iid):
    # (status may move on its own: the engine reports connection attempts)
    return srv.db_rows("SELECT name, settings, webhook, proxy FROM instances WHERE id = ?", (iid,))


def test_other_account_sees_nothing():
    before = snapshot(A["inst"])
    for tok in (B["key"], B["itok"]):
        for m, p, body in ROUTES:
            st, _, b = srv.request(m, p % A["inst"], body, token=tok)
            assert st == 404, (tok[:4], m, p)
            assert b["error"]["code"] == "not_found"
            # indistinguishable from an id that does not exist
            st2, _, b2 = srv.request(m, p % "ffffffff-ffff-4fff-bfff-ffffffffffff", body, token=tok)
            assert (st2, b2["error"]) == (st, b["error"])
        st, _, b = srv.request("GET", "/v1/instances", token=tok)
        ids = [d["id"] for d in b["data"]]
        assert A["inst"] not in ids and A["inst2"] not in ids
        st, _, b = srv.request("GET", "/v1/instances?name=A-", token=tok)
        assert b["data"] == [] and b["pagination"]["total"] == 0
    assert snapshot(A["inst"]) == before, "another tenant changed A's instance"


def test_account_list_is_own():
    st, _, b = srv.request("GET", "/v1/instances", token=A["key"])
    assert sorted(d["id"] for d in b["data"]) == sorted([A["inst"], A["inst2"]])


def test_instance_token_grants_only_its_instance():
    st, _, b = srv.request("GET", "/v1/instances", token=A["itok"])
    assert [d["id"] for d in b["data"]] == [A["inst"]]
    assert srv.request("GET", "/v1/instances/" + A["inst"], token=A["itok"])[0] == 200
    st, _, b = srv.request("PATCH", "/v1/instances/" + A["inst"], {"settings": {"alwaysOnline": True}}, token=A["itok"])
    assert st == 200 and b["data"]["settings"]["alwaysOnline"] is True
    assert srv.request("POST", "/v1/instances/%s/stop" % A["inst"], token=A["itok"])[0] == 200
    for m, p, body in ROUTES:
        assert srv.request(m, p % A["inst2"], body, token=A["itok"])[0] == 404, (m, p)
    st, _, b = srv.request("POST", "/v1/instances", {"name": "x"}, token=A["itok"])
    assert st == 403 and b["error"]["code"] == "forbidden"
    st, _, b = srv.request("DELETE", "/v1/instances/" + A["inst"], token=A["itok"])
    assert st == 403 and b["error"]["code"] == "forbidden"


def test_account_cannot_create_for_another():
    st, _, b = srv.request("POST", "/v1/instances", {"name": "sneaky", "accountId": B["id"]}, token=A["key"])
    assert st == 403
    st, _, b = srv.request("GET", "/v1/instances?name=sneaky", token=B["key"])
    assert b["data"] == []


def test_admin_sees_all_and_creates_for_accounts():
    st, _, b = srv.request("GET", "/v1/instances?limit=100", token=srv.admin_key)
    ids = {d["id"] for d in b["data"]}
    assert {A["inst"], A["inst2"], B["inst"], B["inst2"]} <= ids
    st, _, b = srv.request("POST", "/v1/instances", {"name": "by-admin", "accountId": B["id"]}, token=srv.admin_key)
    assert st == 201
    st, _, b2 = srv.request("GET", "/v1/instances/" + b["data"]["id"], token=B["key"])
    assert st == 200
    st, _, b = srv.request("POST", "/v1/instances", {"name": "x", "accountId": "acc_missing"}, token=srv.admin_key)
    assert st == 422 and b["error"]["field"] == "accountId"


def test_plan_limits():
    st, _, b = srv.request("POST", "/v1/accounts", {"name": "Free", "plan": "free"}, token=srv.admin_key)
    k, aid = b["data"]["apiKey"], b["data"]["id"]
    assert srv.request("POST", "/v1/instances", {"name": "f1"}, token=k)[0] == 201
    st, h, b = srv.request("POST", "/v1/instances", {"name": "f2"}, token=k)
    assert st == 403 and b["success"] is False and b["error"]["code"] == "instance_limit_reached"
    assert srv.db_rows("SELECT COUNT(*) FROM instances WHERE owner_id = ?", (aid,)) == [(1,)]
    srv.request("PATCH", "/v1/accounts/" + aid, {"plan": "starter"}, token=srv.admin_key)
    assert srv.request("POST", "/v1/instances", {"name": "f2"}, token=k)[0] == 201
    assert srv.request("POST", "/v1/instances", {"name": "f3"}, token=k)[0] == 201
    assert srv.request("POST", "/v1/instances", {"name": "f4"}, token=k)[0] == 403
    # deleting frees a slot
    st, _, b = srv.request("GET", "/v1/instances?name=f3", token=k)
    assert srv.request("DELETE", "/v1/instances/" + b["data"][0]["id"], token=k)[0] == 200
    assert srv.request("POST", "/v1/instances", {"name": "f4"}, token=k)[0] == 201
    srv.request("PATCH", "/v1/accounts/" + aid, {"plan": "pro"}, token=srv.admin_key)
    for i in range(7):
        assert srv.request("POST", "/v1/instances", {"name": "p%d" % i}, token=k)[0] == 201
    assert srv.request("POST", "/v1/instances", {"name": "p7"}, token=k)[0] == 403
    srv.request("PATCH", "/v1/accounts/" + aid, {"plan": "enterprise"}, token=srv.admin_key)
    for i in range(5):
        assert srv.request("POST", "/v1/instances", {"name": "e%d" % i}, token=k)[0] == 201


def test_plan_limits_configurable():
    s2 = Server(env={"WAGATE_PLAN_LIMITS": "free=2,enterprise=3", "WAGATE_RATE_CREATE": "0"}).start()
    try:
        st, _, b = s2.request("POST", "/v1/accounts", {"name": "F"}, token=s2.admin_key)
        k = b["data"]["apiKey"]
        assert b["data"]["instanceLimit"] == 2
        codes = [s2.request("POST", "/v1/instances", {"name": "n%d" % i}, token=k)[0] for i in range(3)]
        assert codes == [201, 201, 403]
    finally:
        s2.cleanup()
