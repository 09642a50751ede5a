#!/bin/sh
# Event delivery throughput and memory: N events of 1 KiB pending in the outbox, delivered to a
# local receiver (bench/events_recv.c, plain HTTP on loopback); the gateway pinned to one core
# (taskset), the receiver to the other. Prints events/s and the gateway's RSS while they are
# pending. Usage: sh bench/events.sh [events, default 100000] [instances, default 50]
cd "$(dirname "$0")/.." || exit 1
make -s --no-print-directory build/wagate || exit 1
mkdir -p build/bench
cc -O2 -Wall -Wextra -Werror -o build/bench/events_recv bench/events_recv.c \
    $(pkg-config --cflags --libs libevent) || exit 1
exec python3 bench/events.py "${1:-100000}" "${2:-50}"
