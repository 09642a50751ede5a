#!/bin/sh
# Runs every built fuzzer in $1 for $2 seconds each from its seed corpus (tests/fuzz/corpus/NAME).
# A crash, leak or sanitizer report is a failure. Prints "fuzz-smoke: N passed, N failed".
dir=${1:-build-fuzz}
secs=${2:-60}
p=0
f=0
for fz in "$dir"/fuzz_*; do
    [ -x "$fz" ] || continue
    name=$(basename "$fz" | sed 's/^fuzz_//')
    seeds=tests/fuzz/corpus/$name
    work=$(mktemp -d)
    [ -d "$seeds" ] && cp -r "$seeds"/. "$work"/ 2>/dev/null
    out=$(mktemp)
    if "$fz" -max_total_time="$secs" -print_final_stats=1 -artifact_prefix="$work/" "$work" >"$out" 2>&1; then
        execs=$(grep -E 'stat::number_of_executed_units' "$out" | awk '{print $2}')
        echo "ok   fuzz_$name ${secs}s execs=${execs:-?}"
        p=$((p + 1))
    else
        echo "FAIL fuzz_$name"
        tail -n 40 "$out"
        f=$((f + 1))
    fi
    rm -rf "$work" "$out"
done
echo "fuzz-smoke: $p passed, $f failed"
[ "$f" -eq 0 ]
