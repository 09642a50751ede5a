#!/bin/sh
# Runs every test suite and prints the total as the last line: "N passed, N failed".
# Each suite prints its own "<name>: N passed, N failed" line; this script sums them.
# A suite that crashes or prints no summary counts as one failure.
cd "$(dirname "$0")/.." || exit 1
log=$(mktemp -d)
total_p=0
total_f=0

suite() {
    name=$1
    shift
    echo "== $name"
    "$@" 2>&1 | tee "$log/$name.out"
    line=$(grep -E '^[a-z0-9_-]+: [0-9]+ passed, [0-9]+ failed' "$log/$name.out" | tail -n 1)
    if [ -z "$line" ]; then
        echo "$name: no summary line (crashed?) - counted as 1 failure"
        total_f=$((total_f + 1))
        return
    fi
    p=$(echo "$line" | sed -E 's/.*: ([0-9]+) passed.*/\1/')
    f=$(echo "$line" | sed -E 's/.* ([0-9]+) failed.*/\1/')
    total_p=$((total_p + p))
    total_f=$((total_f + f))
}

suite unit build/test_unit
suite unit-asan env ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 build-asan/test_unit
for t in tests/integration/run.py; do
    [ -f "$t" ] && suite integration python3 tests/integration/run.py
done
[ -f tests/interop/run.sh ] && suite interop sh tests/interop/run.sh
[ -f tests/fuzz/smoke.sh ] && suite fuzz-smoke sh tests/fuzz/smoke.sh build-fuzz "${FUZZ_SMOKE_SECONDS:-5}"

rm -rf "$log"
echo "$total_p passed, $total_f failed"
[ "$total_f" -eq 0 ]
