"""test_events_crash.py - kill -9 in the middle of delivering 20,000 events to a slow HTTPS
receiver, start again: every event id arrives at least once, none is missing, the order per
instance holds (first arrivals by seq), and the number of duplicates is printed.

The 20,000 events are written straight into the SQLite outbox while the gateway is stopped
(same columns and id format as the store writes: evt_ + 12 hex digits of ms time + 16 random hex
digits, seq continuing per instance); 20 instances with a webhook each, made through the API."""
import json
import os
import shutil
import sqlite3
import tempfile
import time

from harness import Server
from receiver import Receiver
from test_events import FAST, check_order, create, wait_for

N_INST = 20
PER_INST = 1000


def insert_events(db, insts):
    con = sqlite3.connect(db, timeout=10)
    now = int(time.time() * 1000)
    rows = []
    for inst in insts:
        seq = con.execute("SELECT COALESCE(MAX(seq), 0) FROM outbox WHERE instance_id = ?",
                          (inst,)).fetchone()[0]
        for i in range(PER_INST):
            seq += 1
            eid = "evt_%012x%s" % (now + i, os.urandom(8).hex())
            payload = json.dumps({"instanceId": inst, "n": i, "text": "x" * 200})
            rows.append((eid, inst, seq, "message.received", payload, now + i))
    con.executemany("INSERT INTO outbox (id, instance_id, seq, event, payload, created_at) "
                    "VALUES (?, ?, ?, ?, ?, ?)", rows)
    con.commit()
    con.close()
    return len(rows)


def test_kill_9_mid_delivery_loses_nothing():
    tmp = tempfile.mkdtemp(prefix="wagate-crash-")
    rcv = Receiver(tmp).start()
    rcv.delay = 0.002  # slow receiver: 2 ms per event
    env = dict(FAST, WAGATE_WEBHOOK_CA=rcv.ca_file)
    srv = Server(env=env).start()
    try:
        insts = [create(srv, "crash%d" % i, rcv.url("/hook"))["id"] for i in range(N_INST)]
        wait_for(lambda: srv.db_rows("SELECT COUNT(*) FROM outbox WHERE state = 'pending'")[0][0] == 0,
                 30, "the creation events delivered")
        assert srv.stop() == 0
        n = insert_events(srv.db, insts)
        assert n == N_INST * PER_INST
        expected = {r[0]: (r[1], r[2]) for r in srv.db_rows("SELECT id, instance_id, seq FROM outbox")}

        t0 = time.time()
        srv.start()
        wait_for(lambda: len(rcv.got) >= n // 3, 120, "a third delivered")
        srv.kill()
        at_kill = len(rcv.snapshot())
        marked = srv.db_rows("SELECT COUNT(*) FROM outbox WHERE state = 'delivered'")[0][0]
        assert at_kill < len(expected), "everything was delivered before the kill"

        srv.start()
        wait_for(lambda: srv.db_rows("SELECT COUNT(*) FROM outbox WHERE state != 'delivered'")[0][0] == 0,
                 180, "every event delivered after the restart")
        t_done = time.time() - t0
        # restarts add connection.updated rows of their own: expect every row there is now
        expected = {r[0]: (r[1], r[2]) for r in srv.db_rows("SELECT id, instance_id, seq FROM outbox")}
        got = rcv.snapshot()
        ids = {g["id"] for g in got}
        missing = [e for e in expected if e not in ids]
        assert not missing, ("missing after the crash", len(missing), missing[:5])
        for g in got:  # what arrived is what was stored
            assert expected[g["id"]] == (g["instance"], g["seq"]), g
        dups = check_order(got)
        print("   crash test: %d events, delivered before kill -9: %d (marked %d), "
              "duplicates after restart: %d, %.1f s" % (len(expected), at_kill, marked, dups, t_done))
        assert dups == len(got) - len(expected)
    finally:
        srv.cleanup()
        rcv.stop()
        shutil.rmtree(tmp, ignore_errors=True)
