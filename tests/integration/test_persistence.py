"""Persistence across restarts: accounts, keys, instances and tokens survive; kill -9 loses
nothing that was answered 201; migrations are not re-applied."""
import json

from harness import Server


def test_restart_keeps_everything():
    srv = Server(env={"WAGATE_RATE_CREATE": "0"}).start()
    try:
        admin = srv.admin_key
        st, _, b = srv.request("POST", "/v1/accounts", {"name": "Keep", "plan": "pro"}, token=admin)
        acc = b["data"]
        made = []
        for i in range(5):
            st, _, b = srv.request("POST", "/v1/instances", {"name": "keep-%d" % i, "webhookUrl": "https://x.example/h",
                                                             "settings": {"autoRead": True}}, token=acc["apiKey"])
            assert st == 201
            made.append(b["data"])
        assert srv.stop() == 0
        srv.start()
        assert admin not in srv.stdout().split("wagate: admin key")[-1] or srv.stdout().count(admin) == 2
        assert srv.stdout().count("admin key (shown only this once") == 1
        st, _, b = srv.request("GET", "/v1/instances", token=acc["apiKey"])
        assert st == 200 and [d["id"] for d in b["data"]] == [m["id"] for m in made]
        got = {d["id"]: d for d in b["data"]}
        for m in made:
            g = got[m["id"]]
            for k in ("name", "webhookUrl", "settings", "createdAt"):
                assert g[k] == m[k], k
            assert srv.request("GET", "/v1/instances/" + m["id"], token=m["accessToken"])[0] == 200
        st, _, b = srv.request("GET", "/v1/accounts", token=admin)
        assert any(a["id"] == acc["id"] and a["plan"] == "pro" and a["instances"] == 5 for a in b["data"])
        versions = [v for (v,) in srv.db_rows("SELECT version FROM schema_migrations ORDER BY version")]
        assert versions == list(range(1, len(versions) + 1)) and versions, versions
        assert srv.stderr().count("op=migrate version=1") == 1  # applied once, not at restart
    finally:
        srv.cleanup()


def test_kill9_loses_nothing_answered():
    srv = Server(env={"WAGATE_RATE_CREATE": "0"}).start()
    try:
        admin = srv.admin_key
        answered = []
        for i in range(20):
            st, _, b = srv.request("POST", "/v1/instances", {"name": "k9-%d" % i}, token=admin)
            assert st == 201
            answered.append((b["data"]["id"], b["data"]["accessToken"]))
        st, _, b = srv.request("POST", "/v1/accounts", {"name": "K9"}, token=admin)
        acc_key = b["data"]["apiKey"]
        srv.request("POST", "/v1/instances/%s/stop" % answered[0][0], token=admin)
        srv.kill()
        srv.start()
        for iid, tok in answered:
            st, _, b = srv.request("GET", "/v1/instances/" + iid, token=tok)
            assert st == 200, iid
        assert srv.request("GET", "/v1/instances/" + answered[0][0], token=admin)[2]["data"]["status"] == "STOPPED"
        assert srv.request("GET", "/v1/instances", token=acc_key)[0] == 200
        assert srv.db_rows("PRAGMA integrity_check") == [("ok",)]
        # each answered change has its event: every creation, and the stop
        for iid, _ in answered:
            first = srv.db_rows("SELECT payload FROM outbox WHERE instance_id = ? AND seq = 1", (iid,))
            assert json.loads(first[0][0])["status"] == "STARTING"
        stops = srv.db_rows("SELECT payload FROM outbox WHERE instance_id = ? ORDER BY seq", (answered[0][0],))
        assert "STOPPED" in [json.loads(p)["status"] for (p,) in stops]
    finally:
        srv.cleanup()
