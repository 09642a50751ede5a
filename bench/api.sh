#!/bin/sh
# API throughput on loopback with wrk: GET /health and GET /v1/instances (an account with 10
# instances, one page of 10). Starts its own `wagate serve` on a free port with a temp database,
# logs at warn (no per-request lines) and read rate limit off so wrk measures the server; the
# WhatsApp URL is a refused loopback port (instances stay STARTING, nothing leaves the machine).
#   sh bench/api.sh [seconds=10] [connections=64] [wrk threads=1]
# Prints one "bench: <route> <req/s> req/s p99=<latency>" line per route.
set -e
cd "$(dirname "$0")/.." || exit 1
secs=${1:-10}
conns=${2:-64}
threads=${3:-1}
bin=${WAGATE_BIN:-build/wagate}
command -v wrk >/dev/null || { echo "bench: wrk is not installed (sh scripts/deps.sh --bench)"; exit 1; }
[ -x "$bin" ] || { echo "bench: $bin missing (make)"; exit 1; }

tmp=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
admin="wga_bench_$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')"
WAGATE_LISTEN=127.0.0.1:$port WAGATE_DB=$tmp/bench.db WAGATE_ADMIN_KEY=$admin \
    WAGATE_LOG_LEVEL=warn WAGATE_RATE_READ=0 WAGATE_RATE_CREATE=0 \
    WAGATE_WA_URL=ws://127.0.0.1:9/ws/chat WAGATE_QR_WAIT_MS=0 \
    "$bin" serve >"$tmp/out.log" 2>"$tmp/err.log" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$tmp"' EXIT INT TERM
base=http://127.0.0.1:$port
i=0
until curl -sf "$base/health" >/dev/null; do
    i=$((i + 1)); [ $i -gt 100 ] && { echo "bench: server did not start"; cat "$tmp/err.log"; exit 1; }
    sleep 0.05
done
key=$(curl -sf -X POST "$base/v1/accounts" -H "Authorization: Bearer $admin" \
    -d '{"name":"bench","plan":"enterprise"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["apiKey"])')
n=0
while [ $n -lt 10 ]; do
    curl -sf -o /dev/null -X POST "$base/v1/instances" -H "Authorization: Bearer $key" -d "{\"name\":\"bench-$n\"}"
    n=$((n + 1))
done

run() {
    label=$1; shift
    out=$(wrk -t"$threads" -c"$conns" -d"${secs}s" --latency "$@")
    rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    p99=$(echo "$out" | awk '$1 == "99%" {print $2}')
    errs=$(echo "$out" | awk '/Non-2xx|Socket errors/ {print}' | tr '\n' ' ')
    echo "bench: $label $rps req/s p99=$p99 ${errs}"
}
echo "bench: wagate $("$bin" version | cut -d' ' -f2), wrk -t$threads -c$conns -d${secs}s, $(nproc) cores, WAGATE_HTTP_THREADS=${WAGATE_HTTP_THREADS:-2}"
run "GET /health" "$base/health"
run "GET /v1/instances" -H "Authorization: Bearer $key" "$base/v1/instances?limit=10"
