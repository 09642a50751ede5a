"""A (re)start while another connection holds the database's write lock longer than the 5 s busy
timeout: the gateway must come up and stay up, and linked instances come back WORKING with their
identity once the lock is free.

Every thread opens its own store connection at start (HTTP workers, engine workers, the
dispatcher). Opening used to take the write lock (BEGIN IMMEDIATE to check the schema version)
even when nothing was to migrate: under the write load of thousands of instances logging in at
once (bench/instances 10000 wss) an open timed out with "database is locked" and the gateway
stopped within seconds of its start. Here another process holds the lock instead."""
import sqlite3
import threading
import time

import test_link as L
from harness import Server

HOLD_S = 7.0  # > the store's 5 s busy timeout


def hold_write_lock(db, seconds):
    """Takes the write lock on db now (BEGIN IMMEDIATE) and releases it after `seconds` from a
    thread; returns the thread (join it)."""
    con = sqlite3.connect(db, timeout=10, isolation_level=None, check_same_thread=False)
    con.execute("BEGIN IMMEDIATE")

    def release():
        time.sleep(seconds)
        con.execute("ROLLBACK")
        con.close()

    t = threading.Thread(target=release)
    t.start()
    return t


def test_start_while_another_process_holds_the_write_lock():
    srv = Server(env={"WAGATE_ADMIN_KEY": L.ADMIN, "WAGATE_RATE_CREATE": "0"}).start()
    try:
        st, _, b = srv.request("POST", "/v1/instances", {"name": "locked"}, token=L.ADMIN)
        assert st == 201, (st, b)
        iid = b["data"]["id"]
        assert srv.stop() == 0
        t0 = time.time()
        holder = hold_write_lock(srv.db, HOLD_S)
        try:
            srv.start(timeout=HOLD_S + 10)
        finally:
            holder.join()
        assert time.time() - t0 >= HOLD_S - 0.5
        time.sleep(0.5)
        assert srv.proc.poll() is None, srv.stderr()[-3000:]
        st, _, b = srv.request("GET", "/v1/instances/" + iid, token=L.ADMIN)
        assert st == 200, (st, b)
        assert "cannot open database" not in srv.stderr()
        assert srv.stop() == 0
    finally:
        srv.cleanup()


def setup_module():
    L.setup_module()


def teardown_module():
    L.teardown_module()


def test_linked_instances_restart_while_the_write_lock_is_held():
    srv = L.gateway()
    try:
        ids = [L.link_by_qr(srv, "lock-%d" % i, L.new_phone())["id"] for i in range(3)]
        jids = dict(srv.db_rows("SELECT id, jid FROM instances"))
        assert all(jids.values()), jids
        assert srv.stop() == 0
        holder = hold_write_lock(srv.db, HOLD_S)
        try:
            srv.start(timeout=HOLD_S + 20)
        finally:
            holder.join()
        for iid in ids:
            L.wait_status(srv, iid, "WORKING", timeout=40)
        # each one connected again (a resume whose STARTING write timed out was not started and
        # kept showing the WORKING of the previous run)
        for iid in ids:
            L.wait_log("instance=%s working after_ms" % iid,
                       lambda: srv.stderr().split("main stopped")[-1], timeout=40)
        assert srv.proc.poll() is None, srv.stderr()[-3000:]
        assert dict(srv.db_rows("SELECT id, jid FROM instances")) == jids
        assert srv.stop() == 0
    finally:
        srv.cleanup()
