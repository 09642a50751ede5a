#!/bin/sh
# The same as bench/api (kept for old references; `make bench` runs it through this name).
exec sh "$(dirname "$0")/api" "$@"
