"""compare.py - `bench/compare [N] [ws|wss|both]`: bench/instances and bench/baileys-instances
with the same N (default 100) and transport (default ws), one after the other (each against its
own sandbox, started the same way), then the ratio wagate / Baileys of RSS per idle linked
instance (issue 8). Both scripts' own output is shown; the last lines are a Markdown table.
IDLE_SECONDS, CONCURRENCY and WAGATE_BIN are passed on.
"""
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def results(cmd):
    """Runs a bench script, echoing its output; returns its RESULT lines as dicts by mode."""
    print("== " + " ".join(os.path.relpath(c, os.path.dirname(HERE)) if c.startswith(HERE) else c
                           for c in cmd), flush=True)
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    out = {}
    for line in p.stdout:
        print(line, end="", flush=True)
        if line.startswith("RESULT "):
            f = line.split()
            kv = dict(x.split("=", 1) for x in f[2:])
            out[kv["mode"]] = kv
    p.wait()
    return out


def main():
    n = sys.argv[1] if len(sys.argv) > 1 else "100"
    which = sys.argv[2] if len(sys.argv) > 2 else "ws"
    if not n.isdigit() or int(n) < 1 or which not in ("ws", "wss", "both"):
        sys.exit("usage: bench/compare [N] [ws|wss|both]")
    modes = ["ws", "wss"] if which == "both" else [which]
    wg = results([os.path.join(HERE, "instances"), n, which])
    bl = {}
    for m in modes:
        bl.update(results([os.path.join(HERE, "baileys-instances"), n, m]))
    print()
    print("| mode | N | wagate KiB per idle linked instance | Baileys KiB per idle linked client "
          "| wagate / Baileys | Baileys / wagate |")
    print("|---|---|---|---|---|---|")
    rc = 0
    for m in modes:
        if m not in wg or m not in bl:
            print("| %s | %s | %s | %s | - | - |" % (m, n, "failed" if m not in wg else "",
                                                      "failed" if m not in bl else ""))
            rc = 1
            continue
        w, b = float(wg[m]["per_idle_kib"]), float(bl[m]["per_idle_kib"])
        print("| %s | %s | %.1f | %.1f | %.4f | %.0fx |" % (m, n, w, b, w / b, b / w))
        print("RESULT compare mode=%s n=%s wagate_kib=%.2f baileys_kib=%.2f ratio=%.4f"
              % (m, n, w, b, w / b))
    return rc


if __name__ == "__main__":
    sys.exit(main())
