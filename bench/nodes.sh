#!/bin/sh
# Binary-node codec benchmark: builds build/libwagate.a (make), compiles bench/nodes.c against it
# and runs it. Usage: sh bench/nodes.sh [seconds per measurement, default 2]
cd "$(dirname "$0")/.." || exit 1
make -s --no-print-directory build/libwagate.a || exit 1
PKGS="libevent libevent_openssl libevent_pthreads openssl jansson libprotobuf-c libsignal-protocol-c libqrencode libpng libcurl sqlite3 zlib libsodium"
mkdir -p build/bench
# shellcheck disable=SC2046,SC2086
cc -std=c11 -D_GNU_SOURCE -O2 -g -Wall -Wextra -Werror -Isrc -Ibuild/gen $(pkg-config --cflags $PKGS) \
    -o build/bench/nodes bench/nodes.c build/libwagate.a $(pkg-config --libs $PKGS) \
    -lwslay -lpthread -lm || exit 1
exec build/bench/nodes "${1:-2}"
