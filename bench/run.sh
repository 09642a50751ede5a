#!/bin/sh
# `make bench`: runs every bench/*.sh script (except this one), then bench/messages, bench/instances 100
# and bench/compare 100.
cd "$(dirname "$0")" || exit 1
rc=0
for s in *.sh; do
    [ "$s" = run.sh ] && continue
    echo "== bench/$s"
    sh "$s" || rc=1
done
# scripts without the .sh suffix (named as the issues name them), with small sizes
for s in messages "instances 100" "compare 100"; do
    set -- $s
    [ -f "$1" ] || continue
    echo "== bench/$s"
    sh "$@" || rc=1
done
exit $rc
