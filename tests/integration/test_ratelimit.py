"""Rate limiting: 429 with Retry-After and a JSON body; creation is limited per account."""
from harness import Server


def test_create_rate_limit_per_account():
    srv = Server(env={"WAGATE_RATE_CREATE": "3"}).start()
    try:
        st, _, b = srv.request("POST", "/v1/accounts", {"name": "R", "plan": "enterprise"}, token=srv.admin_key)
        k, aid = b["data"]["apiKey"], b["data"]["id"]
        codes = [srv.request("POST", "/v1/instances", {"name": "r%d" % i}, token=k)[0] for i in range(3)]
        assert codes == [201, 201, 201]
        st, h, b = srv.request("POST", "/v1/instances", {"name": "r3"}, token=k)
        assert st == 429
        assert h["content-type"].startswith("application/json")
        assert int(h["retry-after"]) >= 1 and int(h["retry-after"]) <= 20
        assert b["success"] is False and b["error"]["code"] == "rate_limited"
        assert b["error"]["retryAfter"] == int(h["retry-after"])
        assert srv.db_rows("SELECT COUNT(*) FROM instances WHERE owner_id = ?", (aid,)) == [(3,)]
        # the same account via the admin key shares the per-account bucket
        st, _, _ = srv.request("POST", "/v1/instances", {"name": "r4", "accountId": aid}, token=srv.admin_key)
        assert st == 429
        # reads are another class; other accounts have their own bucket
        assert srv.request("GET", "/v1/instances", token=k)[0] == 200
        st, _, b = srv.request("POST", "/v1/accounts", {"name": "R2", "plan": "pro"}, token=srv.admin_key)
        assert srv.request("POST", "/v1/instances", {"name": "x"}, token=b["data"]["apiKey"])[0] == 201
    finally:
        srv.cleanup()


def test_default_create_rate_is_5_per_minute():
    srv = Server().start()
    try:
        codes = [srv.request("POST", "/v1/instances", {"name": "d%d" % i}, token=srv.admin_key)[0] for i in range(6)]
        assert codes == [201] * 5 + [429]
    finally:
        srv.cleanup()


def test_read_rate_limit_per_credential():
    srv = Server(env={"WAGATE_RATE_READ": "4"}).start()
    try:
        codes = [srv.request("GET", "/v1/instances", token=srv.admin_key)[0] for _ in range(5)]
        assert codes == [200] * 4 + [429]
        st, h, b = srv.request("GET", "/v1/accounts", token=srv.admin_key)
        assert st == 429 and "retry-after" in h
        # health is not limited
        assert srv.request("GET", "/health")[0] == 200
    finally:
        srv.cleanup()
