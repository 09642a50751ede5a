"""Concurrent writes through the native API: no PATCH may lose another one's change.

PATCH /v1/instances/{id} is a read-merge-write: webhookUrl, webhookEvents and the webhook
options live in one JSON column (webhook), every settings key in another (settings). When the
core read the row, merged in memory and wrote the column back in separate statements, two
PATCHes of different keys running on two HTTP threads could both read the old row and the second
write erased the first one's key (a lost update), with both answered 200. The store now does the
read, the merge and the write in one IMMEDIATE transaction (wg_store_instance_patch).

The test fires the PATCHes of each round at the same moment (a barrier, one thread and one fresh
connection per field; the server runs 2 HTTP threads), then checks that every field holds the
value its PATCH of that round wrote. It fails against the old code: three runs with the binary
of commit 37cf416 (WAGATE_BIN=...) lost a field in round 1, 2 and 2, e.g. "round 2: lost
updates (wanted, stored): {'webhookMaxAttempts': (3, 2), 'settings.msgCall': ('call r2',
'call r1')}"."""
import json
import threading

from harness import Server

srv = None
key = None
ROUNDS = 20


def setup_module():
    global srv, key
    srv = Server(env={"WAGATE_RATE_CREATE": "0", "WAGATE_RATE_WRITE": "0",
                      "WAGATE_RATE_READ": "0", "WAGATE_HTTP_THREADS": "2"}).start()
    st, _, b = srv.request("POST", "/v1/accounts", {"name": "Conc", "plan": "enterprise"},
                           token=srv.admin_key)
    assert st == 201, b
    key = b["data"]["apiKey"]


def teardown_module():
    srv.cleanup()


# field name -> (patch body for round r, value expected in the stored instance for round r);
# two keys of the webhook column, two of the settings column
FIELDS = {
    "webhookUrl": (lambda r: {"webhookUrl": "https://h.example/r%d" % r},
                   lambda r: "https://h.example/r%d" % r),
    "webhookMaxAttempts": (lambda r: {"webhookMaxAttempts": r + 1}, lambda r: r + 1),
    "settings.msgCall": (lambda r: {"settings": {"msgCall": "call r%d" % r}},
                         lambda r: "call r%d" % r),
    "settings.rejectCall": (lambda r: {"settings": {"rejectCall": r % 2 == 0}},
                            lambda r: r % 2 == 0),
}


def stored(iid):
    """The four fields as the database holds them now."""
    webhook, settings = srv.db_rows("SELECT webhook, settings FROM instances WHERE id = ?",
                                    (iid,))[0]
    w, s = json.loads(webhook), json.loads(settings)
    return {"webhookUrl": w.get("url"), "webhookMaxAttempts": w.get("maxAttempts"),
            "settings.msgCall": s.get("msgCall"), "settings.rejectCall": s.get("rejectCall")}


def test_concurrent_patches_of_different_fields_keep_every_change():
    st, _, b = srv.request("POST", "/v1/instances", {"name": "contended"}, token=key)
    assert st == 201, b
    iid = b["data"]["id"]
    for r in range(ROUNDS):
        barrier = threading.Barrier(len(FIELDS))
        answers = {}

        def patch(field, body):
            barrier.wait()
            answers[field] = srv.request("PATCH", "/v1/instances/" + iid, body, token=key)

        threads = [threading.Thread(target=patch, args=(f, make(r)))
                   for f, (make, _) in FIELDS.items()]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for f, (st, _, b) in answers.items():
            assert st == 200, (r, f, st, b)
        want = {f: expect(r) for f, (_, expect) in FIELDS.items()}
        got = stored(iid)
        lost = {f: (want[f], got[f]) for f in FIELDS if got[f] != want[f]}
        assert not lost, "round %d: lost updates (wanted, stored): %r" % (r, lost)
        # the API shows the same
        st, _, b = srv.request("GET", "/v1/instances/" + iid, token=key)
        assert st == 200 and b["data"]["webhookUrl"] == want["webhookUrl"], b
        assert b["data"]["settings"]["msgCall"] == want["settings.msgCall"], b
        assert b["data"]["settings"]["rejectCall"] == want["settings.rejectCall"], b
