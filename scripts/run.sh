#!/bin/sh
# Called by `make run` (after deps + build): starts the gateway in the foreground on port 8080
# with the SQLite file ./wagate.db. On the first start wagate prints the admin key once and a
# curl that creates an instance. Any WAGATE_* variable already set in the environment wins;
# `build/wagate serve --help` lists them all. Stop with Ctrl-C (graceful shutdown).
cd "$(dirname "$0")/.." || exit 1
: "${WAGATE_LISTEN:=0.0.0.0:8080}"
: "${WAGATE_DB:=./wagate.db}"
export WAGATE_LISTEN WAGATE_DB
exec ./build/wagate serve
