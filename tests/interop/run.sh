#!/bin/sh
# Interop suites: wagate against Baileys (npm, pinned in package.json / package-lock.json).
# Installs node_modules with `npm ci` when missing or older than package-lock.json, builds the
# C helpers against build/libwagate.a, then runs every tests/interop/*.test.mjs. Each suite
# prints its own "<name>: N passed, N failed" as its last such line; this script sums them and
# prints "interop: N passed, N failed" last. A suite that crashes or prints no summary counts as
# one failure. Suites get NODES_TOOL (path of the nodes_tool binary) in the environment.
cd "$(dirname "$0")/../.." || exit 1
root=$(pwd)
dir=tests/interop
out=build/interop
p=0
f=0

fail_all() {
    echo "interop: setup failed: $1"
    echo "interop: 0 passed, 1 failed"
    exit 1
}

command -v node >/dev/null 2>&1 || fail_all "node not found"
if [ ! -d $dir/node_modules ] || [ $dir/package-lock.json -nt $dir/node_modules ]; then
    echo "interop: npm ci"
    (cd $dir && npm ci --no-audit --no-fund --loglevel=error >/dev/null 2>&1) || fail_all "npm ci"
    touch $dir/node_modules
fi

make -s --no-print-directory build/libwagate.a >/dev/null || fail_all "make build/libwagate.a"
mkdir -p $out
PKGS="libevent libevent_openssl libevent_pthreads openssl jansson libprotobuf-c libsignal-protocol-c libqrencode libpng libcurl sqlite3 zlib libsodium"
# shellcheck disable=SC2046,SC2086
cc -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -Isrc -Ibuild/gen $(pkg-config --cflags $PKGS) \
    -o $out/nodes_tool $dir/nodes_tool.c build/libwagate.a $(pkg-config --libs $PKGS) \
    -lwslay -lpthread -lm || fail_all "building nodes_tool"
export NODES_TOOL="$root/$out/nodes_tool"

for t in $dir/*.test.mjs; do
    [ -f "$t" ] || continue
    name=$(basename "$t" .test.mjs)
    log=$(mktemp)
    echo "== interop/$name"
    (cd $dir && timeout 300 node "$(basename "$t")" "$NODES_TOOL") >"$log" 2>&1
    cat "$log"
    line=$(grep -E '^[a-z0-9_-]+: [0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)
    rm -f "$log"
    if [ -z "$line" ]; then
        echo "$name: no summary line (crashed?) - counted as 1 failure"
        f=$((f + 1))
        continue
    fi
    sp=$(echo "$line" | sed -E 's/.*: ([0-9]+) passed.*/\1/')
    sf=$(echo "$line" | sed -E 's/.* ([0-9]+) failed.*/\1/')
    p=$((p + sp))
    f=$((f + sf))
done
echo "interop: $p passed, $f failed"
[ "$f" -eq 0 ]
