#!/bin/sh
# `make bench`: runs every bench/*.sh script (except this one), then bench/messages.
cd "$(dirname "$0")" || exit 1
rc=0
for s in *.sh; do
    [ "$s" = run.sh ] && continue
    echo "== bench/$s"
    sh "$s" || rc=1
done
# scripts without the .sh suffix (named as the issues name them)
for s in messages; do
    [ -f "$s" ] || continue
    echo "== bench/$s"
    sh "$s" || rc=1
done
exit $rc
