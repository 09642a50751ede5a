"""test_events.py - events that are never lost (docs/events.md): webhook delivery over HTTPS to
a local receiver that fails for a while (500s, timeouts, closed connections) and recovers,
order per instance, signatures, dead letters and replay, SSRF refusal, metrics.

Events are produced through the API: create/stop/start/delete give connection.updated and
instance.deleted (the engine's WhatsApp URL is refused, so each start ends FAILED)."""
import hashlib
import hmac
import json
import os
import shutil
import tempfile
import time

from harness import Server
from receiver import Receiver

FAST = {
    "WAGATE_WEBHOOK_ALLOW_PRIVATE": "1",
    "WAGATE_WEBHOOK_TIMEOUT_MS": "700",
    "WAGATE_WEBHOOK_BACKOFF_MS": "30",
    "WAGATE_WEBHOOK_BACKOFF_MAX_MS": "200",
    "WAGATE_WEBHOOK_MAX_ATTEMPTS": "1000",
    "WAGATE_EVENTS_POLL_MS": "5000",  # found through inotify on the WAL
    "WAGATE_RATE_CREATE": "100000",
    "WAGATE_RATE_WRITE": "100000",
    "WAGATE_RATE_READ": "100000",
}


def wait_for(cond, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


def create(srv, name, url, **extra):
    body = {"name": name, "webhookUrl": url}
    body.update(extra)
    st, _, b = srv.request("POST", "/v1/instances", body, token=srv.admin_key)
    assert st == 201, (st, b)
    return b["data"]


def outbox(srv, inst):
    return srv.db_rows("SELECT id, seq, state FROM outbox WHERE instance_id = ? ORDER BY seq",
                       (inst,))


def check_order(got):
    """First arrival of each id must come in seq order per instance; returns duplicates."""
    seen, last, dups = set(), {}, 0
    for g in got:
        if g["id"] in seen:
            dups += 1
            continue
        seen.add(g["id"])
        assert g["seq"] > last.get(g["instance"], 0), ("order broken", g["instance"], g["seq"],
                                                       last.get(g["instance"]))
        last[g["instance"]] = g["seq"]
    return dups


def test_flaky_receiver_gets_every_event_in_order_signed():
    tmp = tempfile.mkdtemp(prefix="wagate-ev-")
    rcv = Receiver(tmp).start()
    rcv.timeout_sleep = 1.5

    # 0-5: 500, 6-7: time out, 8-10: connection closed, 11-13: 500, then healthy
    def flaky(n):
        if n < 6 or 11 <= n < 14:
            return "500"
        if n < 8:
            return "timeout"
        if n < 11:
            return "close"
        return "ok"

    rcv.behaviour = flaky
    env = dict(FAST, WAGATE_WEBHOOK_CA=rcv.ca_file)
    srv = Server(env=env).start()
    try:
        insts = []
        for i in range(3):
            d = create(srv, "ev%d" % i, rcv.url("/hook"))
            assert d["webhookSecret"].startswith("whsec_"), d
            insts.append(d)
        # the secret is shown once: not in GET
        st, _, g = srv.request("GET", "/v1/instances/" + insts[0]["id"], token=srv.admin_key)
        assert st == 200 and "webhookSecret" not in g["data"] and "secret" not in json.dumps(g)
        for _ in range(3):
            for d in insts:
                st, _, _ = srv.request("POST", "/v1/instances/%s/stop" % d["id"], token=srv.admin_key)
                assert st == 200
                st, _, _ = srv.request("POST", "/v1/instances/%s/start" % d["id"], token=srv.admin_key)
                assert st == 200
        expected = {}
        for d in insts:
            rows = outbox(srv, d["id"])
            assert len(rows) >= 6, rows
            expected[d["id"]] = [r[0] for r in rows]

        def all_delivered():
            return all(all(r[2] == "delivered" for r in outbox(srv, i)) for i in expected)

        wait_for(all_delivered, 60, "every event delivered")
        got = rcv.snapshot()
        assert rcv.requests > len(got), "the receiver's failures were never exercised"
        ids = {g["id"] for g in got}
        for inst, evs in expected.items():
            missing = [e for e in evs if e not in ids]
            assert not missing, ("missing", inst, missing)
        dups = check_order(got)
        secrets = {d["id"]: d["webhookSecret"] for d in insts}
        for g in got:
            h = g["headers"]
            assert h["x-wagate-event"] == g["event"] and h["x-wagate-delivery"] == g["id"]
            assert h["x-wagate-timestamp"].isdigit()
            mac = hmac.new(secrets[g["instance"]].encode(), g["body"], hashlib.sha256).hexdigest()
            assert h["x-wagate-signature"] == "sha256=" + mac, "bad signature"
            assert g["path"] == "/hook"
        print("   flaky receiver: %d events, %d requests, %d duplicates" %
              (sum(len(v) for v in expected.values()), rcv.requests, dups))
        # retries were counted, and the API shows attempts
        st, hd, _ = srv.request("GET", "/metrics", token=srv.admin_key)
        assert st == 200
        st, _, ev = srv.request("GET", "/v1/instances/%s/events?status=delivered" % insts[0]["id"],
                                token=srv.admin_key)
        assert st == 200 and len(ev["data"]) == len(expected[insts[0]["id"]])
        assert ev["data"][0]["attempts"] > 1  # the first event met the failures
    finally:
        srv.cleanup()
        rcv.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def test_outcome_waits_for_the_write_lock():
    """Another writer holds the database's write lock for longer than the store's busy timeout
    (5 s) right when a delivery's outcome is to be committed (the engine threads committing
    non-stop did this in bench/messages). The delivered event must be recorded as delivered
    once the lock is free, and never delivered twice (before: the outcome was dropped, the row
    stayed pending and went out again)."""
    import sqlite3
    import threading
    tmp = tempfile.mkdtemp(prefix="wagate-ev-")
    rcv = Receiver(tmp).start()
    arrived, locked = threading.Event(), threading.Event()

    def hold_first(n):
        if n == 0:  # answer the first delivery only once the lock is taken
            arrived.set()
            locked.wait(15)
        return "ok"

    rcv.behaviour = hold_first
    env = dict(FAST, WAGATE_WEBHOOK_CA=rcv.ca_file)
    srv = Server(env=env).start()
    try:
        d = create(srv, "locked", rcv.url("/hook"))
        assert arrived.wait(10), "no delivery"
        con = sqlite3.connect(srv.db, timeout=10, isolation_level=None)
        try:
            con.execute("BEGIN IMMEDIATE")
            locked.set()
            time.sleep(7)
            con.execute("ROLLBACK")
        finally:
            con.close()
        wait_for(lambda: all(r[2] == "delivered" for r in outbox(srv, d["id"])), 30,
                 "every event recorded as delivered")
        got = rcv.snapshot()
        ids = [g["id"] for g in got]
        assert "outcomes not recorded" in srv.stderr(), "the lock never got in the way"
        assert len(ids) == len(set(ids)), ("delivered twice", ids)
        assert set(ids) == {r[0] for r in outbox(srv, d["id"])}, (ids, outbox(srv, d["id"]))
        print("   write lock held 7 s: %d events, each delivered once" % len(ids))
    finally:
        srv.cleanup()
        rcv.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def test_dead_letters_and_replay():
    tmp = tempfile.mkdtemp(prefix="wagate-ev-")
    rcv = Receiver(tmp).start()
    mode = {"v": "500"}
    rcv.behaviour = lambda n: mode["v"]
    env = dict(FAST, WAGATE_WEBHOOK_CA=rcv.ca_file, WAGATE_WEBHOOK_MAX_ATTEMPTS="3")
    srv = Server(env=env).start()
    try:
        a = create(srv, "dead-a", rcv.url("/a"))
        path = "/v1/instances/%s/events" % a["id"]

        def failed():
            st, _, b = srv.request("GET", path + "?status=failed", token=srv.admin_key)
            assert st == 200
            return b["data"] if len(b["data"]) == len(outbox(srv, a["id"])) else None

        dead = wait_for(failed, 20, "events dead-lettered after 3 attempts")
        assert all(e["attempts"] == 3 and e["lastError"] == "HTTP 500" for e in dead), dead
        assert srv.db_rows("SELECT COUNT(*) FROM outbox_dead WHERE instance_id = ?",
                           (a["id"],))[0][0] == len(dead)
        # per instance: webhookMaxAttempts overrides WAGATE_WEBHOOK_MAX_ATTEMPTS
        b2 = create(srv, "dead-b", rcv.url("/b"), webhookMaxAttempts=5)
        wait_for(lambda: all(r[2] == "failed" for r in outbox(srv, b2["id"])), 20, "b dead")
        st, _, bb = srv.request("GET", "/v1/instances/%s/events?status=failed" % b2["id"],
                                token=srv.admin_key)
        assert bb["data"] and all(e["attempts"] == 5 for e in bb["data"]), bb
        # 410 Gone: dead at the first attempt
        mode["v"] = "410"
        srv.request("POST", "/v1/instances/%s/stop" % a["id"], token=srv.admin_key)
        wait_for(lambda: len(failed() or []) == len(dead) + 1, 10, "410 dead-lettered")
        st, _, b = srv.request("GET", path + "?status=failed", token=srv.admin_key)
        assert b["data"][-1]["attempts"] == 1 and b["data"][-1]["lastError"] == "HTTP 410"
        dead = b["data"]
        # replay: receiver healthy again, every dead letter arrives, in the order replayed
        mode["v"] = "ok"
        before = len(rcv.snapshot())
        for e in dead:
            st, _, r = srv.request("POST", "%s/%s/replay" % (path, e["id"]), token=srv.admin_key)
            assert st == 200 and r["data"]["status"] in ("pending", "delivered"), (st, r)
        wait_for(lambda: all(r[2] == "delivered" for r in outbox(srv, a["id"])), 10, "replayed")
        got = [g["id"] for g in rcv.snapshot()[before:]]
        assert got == [e["id"] for e in dead], (got, dead)
        # replaying a delivered event is refused; an unknown one is 404
        st, _, r = srv.request("POST", "%s/%s/replay" % (path, dead[0]["id"]), token=srv.admin_key)
        assert st == 409, (st, r)
        st, _, r = srv.request("POST", "%s/evt_nope/replay" % path, token=srv.admin_key)
        assert st == 404
        # another account's key cannot see them (404, no existence leak)
        st, _, acc = srv.request("POST", "/v1/accounts", {"name": "other"}, token=srv.admin_key)
        assert st == 201
        st, _, _ = srv.request("GET", path, token=acc["data"]["apiKey"])
        assert st == 404
        # metrics
        st, _, _ = srv.request("GET", "/metrics", token=acc["data"]["apiKey"])
        assert st == 403
        conn_metrics = metrics(srv)
        assert conn_metrics["wagate_events_dead_lettered_total"] >= len(dead)
        assert conn_metrics["wagate_events_retried_total"] >= 2
        assert conn_metrics["wagate_events_delivered_total"] >= len(dead)
    finally:
        srv.cleanup()
        rcv.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def metrics(srv):
    import http.client
    c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
    c.request("GET", "/metrics", headers={"Authorization": "Bearer " + srv.admin_key})
    r = c.getresponse()
    txt = r.read().decode()
    c.close()
    assert r.status == 200 and r.getheader("Content-Type").startswith("text/plain"), r.status
    out = {}
    for line in txt.splitlines():
        if line and not line.startswith("#"):
            k, v = line.rsplit(" ", 1)
            out[k] = float(v)
    assert 'wagate_http_requests_total{route="/v1/instances",status="201"}' in out, txt
    assert any(k.startswith("wagate_instances{status=") for k in out), txt
    assert "wagate_delivery_latency_seconds_count" in out
    return out


def test_ssrf_refused_without_allow_private():
    tmp = tempfile.mkdtemp(prefix="wagate-ev-")
    rcv = Receiver(tmp, tls=False).start()
    env = dict(FAST, WAGATE_WEBHOOK_ALLOW_PRIVATE="0")
    srv = Server(env=env).start()
    try:
        urls = [rcv.url("/x"), rcv.url("/x", host="localhost"), "http://169.254.169.254/latest",
                "http://10.1.2.3/", "http://[::1]:%d/" % rcv.port]
        insts = [create(srv, "ssrf%d" % i, u) for i, u in enumerate(urls)]

        def all_failed():
            return all(all(r[2] == "failed" for r in outbox(srv, d["id"])) for d in insts)

        wait_for(all_failed, 15, "private targets refused")
        for d in insts:
            st, _, b = srv.request("GET", "/v1/instances/%s/events?status=failed" % d["id"],
                                   token=srv.admin_key)
            assert all("address not allowed" in e["lastError"] and e["attempts"] == 1
                       for e in b["data"]), b
        assert rcv.requests == 0, "a private address was reached"
        # a non-http(s) URL is refused at the API
        st, _, b = srv.request("POST", "/v1/instances", {"name": "f", "webhookUrl": "file:///etc/passwd"},
                               token=srv.admin_key)
        assert st == 422
    finally:
        srv.cleanup()
        rcv.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def test_filter_and_by_events():
    tmp = tempfile.mkdtemp(prefix="wagate-ev-")
    rcv = Receiver(tmp, tls=False).start()
    srv = Server(env=FAST).start()
    try:
        d = create(srv, "filt", rcv.url("/base"), webhookEvents=["instance.deleted"])
        srv.request("POST", "/v1/instances/%s/stop" % d["id"], token=srv.admin_key)
        # the dispatcher learns the settings with the instance's first rows; an instance deleted
        # before the dispatcher ever saw it has no settings left (docs/events.md, gaps)
        wait_for(lambda: all(r[2] != "pending" for r in outbox(srv, d["id"])), 10, "filtered")
        st, _, _ = srv.request("DELETE", "/v1/instances/" + d["id"], token=srv.admin_key)
        assert st in (200, 204)
        wait_for(lambda: all(r[2] != "pending" for r in outbox(srv, d["id"])), 10, "settled")
        rows = outbox(srv, d["id"])
        states = {r[2] for r in rows}
        assert states == {"skipped", "delivered"}, rows
        got = rcv.snapshot()
        assert [g["event"] for g in got] == ["instance.deleted"], got
        # byEvents: set through the column (no API field yet): the name is appended to the path
        e = create(srv, "byev", rcv.url("/base/"))
        wh = json.loads(srv.db_rows("SELECT webhook FROM instances WHERE id = ?", (e["id"],))[0][0])
        assert wh["secret"] == e["webhookSecret"]
        wait_for(lambda: all(r[2] != "pending" for r in outbox(srv, e["id"])), 10, "first rows")
        st, _, b = srv.request("PATCH", "/v1/instances/" + e["id"], {"webhookByEvents": True},
                               token=srv.admin_key)
        assert st == 200, b
        st, _, b = srv.request("PATCH", "/v1/instances/" + e["id"], {"webhookMaxAttempts": 0},
                               token=srv.admin_key)
        assert st == 422 and b["error"]["field"] == "webhookMaxAttempts", b
        srv.request("POST", "/v1/instances/%s/stop" % e["id"], token=srv.admin_key)
        wait_for(lambda: all(r[2] != "pending" for r in outbox(srv, e["id"])), 10, "byEvents")
        paths = [g["path"] for g in rcv.snapshot() if g["instance"] == e["id"]]
        assert paths[-1] == "/base/connection.updated" and paths[0] == "/base/", paths
    finally:
        srv.cleanup()
        rcv.stop()
        shutil.rmtree(tmp, ignore_errors=True)
