"""events.py - driven by bench/events.sh (see there). Uses the integration test harness."""
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
from harness import Server, free_port  # noqa: E402


def rss_kb(pid, key="VmRSS"):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def pending(db):
    con = sqlite3.connect(db, timeout=10)
    try:
        return con.execute("SELECT COUNT(*) FROM outbox WHERE state = 'pending'").fetchone()[0]
    finally:
        con.close()


def main():
    n, ninst = int(sys.argv[1]), int(sys.argv[2])
    ncpu = os.cpu_count() or 1
    port = free_port()
    recv = subprocess.Popen(([] if ncpu < 2 else ["taskset", "-c", "1"]) +
                            [os.path.join(HERE, "..", "build", "bench", "events_recv"), str(port)])
    srv = Server(env={"WAGATE_WEBHOOK_ALLOW_PRIVATE": "1", "WAGATE_RATE_CREATE": "100000",
                      "WAGATE_RATE_WRITE": "100000", "WAGATE_LOG_LEVEL": "warn",
                      "WAGATE_HTTP_THREADS": "1", "WAGATE_WORKERS": "1"})
    try:
        time.sleep(0.2)
        srv.start()
        url = "http://127.0.0.1:%d/hook" % port
        insts = []
        for i in range(ninst):
            st, _, b = srv.request("POST", "/v1/instances", {"name": "b%d" % i, "webhookUrl": url},
                                   token=srv.admin_key)
            assert st == 201, b
            insts.append(b["data"]["id"])
        deadline = time.time() + 30
        while pending(srv.db) and time.time() < deadline:
            time.sleep(0.1)
        srv.stop()
        # n events of 1 KiB (payload), spread over the instances, written while stopped
        con = sqlite3.connect(srv.db, timeout=10)
        now = int(time.time() * 1000)
        body = "x" * (1024 - 40)
        rows, seqs = [], {}
        for inst in insts:
            seqs[inst] = con.execute("SELECT MAX(seq) FROM outbox WHERE instance_id = ?",
                                     (inst,)).fetchone()[0] or 0
        for i in range(n):
            inst = insts[i % ninst]
            seqs[inst] += 1
            rows.append(("evt_%012x%s" % (now + i // 1000, os.urandom(8).hex()), inst,
                         seqs[inst], "message.received", json.dumps({"i": i, "t": body}), now))
        con.executemany("INSERT INTO outbox (id, instance_id, seq, event, payload, created_at) "
                        "VALUES (?, ?, ?, ?, ?, ?)", rows)
        con.commit()
        con.close()
        t0 = time.time()
        srv.start()
        if ncpu >= 2:
            subprocess.run(["taskset", "-a", "-p", "-c", "0", str(srv.proc.pid)],
                           stdout=subprocess.DEVNULL, check=False)
        pend0 = pending(srv.db)
        rss_pending = rss_kb(srv.proc.pid)
        while True:
            p = pending(srv.db)
            if p == 0:
                break
            if time.time() - t0 > 600:
                raise SystemExit("bench: not done after 600 s (%d pending)" % p)
            time.sleep(0.05)
        dt = time.time() - t0
        hwm = rss_kb(srv.proc.pid, "VmHWM")
        rss_end = rss_kb(srv.proc.pid)
        print("events: %d x 1 KiB over %d instances, gateway on one core" % (n, ninst))
        print("events: delivered in %.2f s = %.0f events/s (start-up included)" % (dt, n / dt))
        print("events: RSS with %d pending: %.1f MiB; peak RSS during delivery: %.1f MiB; "
              "after: %.1f MiB" % (pend0, rss_pending / 1024, hwm / 1024, rss_end / 1024))
    finally:
        srv.cleanup()
        recv.kill()
        recv.wait()


if __name__ == "__main__":
    main()
