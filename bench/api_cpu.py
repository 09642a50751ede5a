"""api_cpu.py - the CPU time wagate spends per request on bench/api's three GET routes.

req/s on this shared 2-core machine moves with everyone else's load far more than with a change
to the gateway; the gateway's own CPU time per request (utime + stime of the process over a wrk
run, divided by the requests answered) moves much less, so it is the figure to compare two
builds with. No sandbox: one account (the key wrk sends) with 10 unlinked instances, rate limits
off, log level warn, WAGATE_HTTP_THREADS as in the environment (default 2).

Usage: python3 bench/api_cpu.py [seconds=8] [connections=64]
       WAGATE_BIN=/path/to/other/wagate python3 bench/api_cpu.py   (compare builds: alternate)
Prints one line per route: "api_cpu: <route> <req/s> req/s p99=<latency> cpu=<µs>/req".
"""
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
from harness import Server  # noqa: E402


def cpu_s(pid):
    """User + system CPU seconds of a process so far."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main():
    secs = int(sys.argv[1]) if len(sys.argv) > 1 else 8
    conns = int(sys.argv[2]) if len(sys.argv) > 2 else 64
    srv = Server(env={"WAGATE_RATE_CREATE": "0", "WAGATE_RATE_WRITE": "0",
                      "WAGATE_RATE_READ": "0", "WAGATE_LOG_LEVEL": "warn"}).start()
    try:
        st, _, b = srv.request("POST", "/v1/accounts", {"name": "bench", "plan": "enterprise"},
                               token=srv.admin_key)
        assert st == 201, b
        key = b["data"]["apiKey"]
        ids = []
        for i in range(10):
            st, _, b = srv.request("POST", "/v1/instances", {"name": "bench-%d" % i}, token=key)
            assert st == 201, b
            ids.append(b["data"]["id"])
        with open("/proc/loadavg") as f:
            print("api_cpu: %s, load average %s" % (srv.binary, " ".join(f.read().split()[:3])))
        base = "http://127.0.0.1:%d" % srv.port
        for label, path in (("GET /health", "/health"),
                            ("GET /v1/instances/{id}", "/v1/instances/" + ids[0]),
                            ("GET /v1/instances", "/v1/instances?limit=10")):
            c0 = cpu_s(srv.proc.pid)
            out = subprocess.run(["wrk", "-t1", "-c%d" % conns, "-d%ds" % secs, "--latency",
                                  "-H", "Authorization: Bearer " + key, base + path],
                                 capture_output=True, text=True).stdout
            cpu = cpu_s(srv.proc.pid) - c0
            n = re.search(r"(\d+) requests in", out)
            rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
            p99 = re.search(r"^\s*99%\s+(\S+)", out, re.M)
            if not (n and rps and p99):
                raise SystemExit("api_cpu: wrk output not understood:\n" + out)
            print("api_cpu: %s %s req/s p99=%s cpu=%.1f us/req" % (
                label, rps.group(1), p99.group(1), cpu / int(n.group(1)) * 1e6), flush=True)
    finally:
        srv.cleanup()


if __name__ == "__main__":
    main()
