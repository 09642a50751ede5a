#!/bin/sh
# Idle WebSocket link memory: builds build/libwagate.a, compiles bench/ws_idle.c against it and
# runs it. Usage: sh bench/ws_idle.sh [links, default 2000] [tls 1|0, default 1]
cd "$(dirname "$0")/.." || exit 1
make -s --no-print-directory build/libwagate.a || exit 1
PKGS="libevent libevent_openssl libevent_pthreads openssl jansson libprotobuf-c libsignal-protocol-c libqrencode libpng libcurl sqlite3 zlib libsodium"
mkdir -p build/bench
# shellcheck disable=SC2046,SC2086
cc -std=c11 -D_GNU_SOURCE -O2 -g -Wall -Wextra -Werror -Isrc -Ibuild/gen $(pkg-config --cflags $PKGS) \
    -o build/bench/ws_idle bench/ws_idle.c build/libwagate.a $(pkg-config --libs $PKGS) \
    -lwslay -lpthread -lm || exit 1
exec build/bench/ws_idle "${1:-2000}" "${2:-1}"
