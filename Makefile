# wagate build. `make` builds build/wagate; `make run` and `make test` first install missing
# Debian packages (scripts/deps.sh). Every .c under src/ except src/main.c goes into one static
# library that the daemon, the unit tests and the fuzzers link. .proto files under
# src/wa/proto/ are compiled with protoc-c into $(BUILD)/gen at build time.
#
# Variants: SAN=1 (ASan+UBSan, in build-asan/), FUZZ=1 (clang + libFuzzer, in build-fuzz/).

SAN ?= 0
FUZZ ?= 0
ifeq ($(FUZZ),1)
  BUILD ?= build-fuzz
  CC := clang
else ifeq ($(SAN),1)
  BUILD ?= build-asan
else
  BUILD ?= build
endif

PKGS := libevent libevent_openssl libevent_pthreads openssl jansson libprotobuf-c \
        libsignal-protocol-c libqrencode libpng libcurl sqlite3 zlib libsodium
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

VERSION := $(shell cat VERSION 2>/dev/null || echo 0.0.0)
CFLAGS_BASE := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wno-missing-field-initializers \
               -Isrc -I$(BUILD)/gen -DWG_VERSION='"$(VERSION)"' $(PKG_CFLAGS)
OPT ?= -O2 -g
ifeq ($(FUZZ),1)
  OPT := -O1 -g -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined
  LDSAN := -fsanitize=address,undefined
else ifeq ($(SAN),1)
  OPT := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
  LDSAN := -fsanitize=address,undefined
endif
CFLAGS := $(CFLAGS_BASE) $(OPT) $(EXTRA_CFLAGS)
LDLIBS := $(PKG_LIBS) -lwslay -lpthread -lm

PROTOS := $(wildcard src/wa/proto/*.proto)
PROTO_C := $(PROTOS:src/wa/proto/%.proto=$(BUILD)/gen/wa/proto/%.pb-c.c)
PROTO_H := $(PROTO_C:.c=.h)
WEB := $(shell find web -type f 2>/dev/null | sort)

LIB_SRC := $(filter-out src/main.c,$(shell find src -name '*.c' | sort))
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/obj/%.o) $(PROTO_C:%.c=%.o) $(BUILD)/gen/web_assets.o
UNIT_SRC := $(wildcard tests/unit/*.c)
UNIT_OBJ := $(UNIT_SRC:%.c=$(BUILD)/obj/%.o)
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZERS := $(FUZZ_SRC:tests/fuzz/%.c=$(BUILD)/%)

.PHONY: all deps run test test-unit test-asan fuzz fuzz-smoke bench clean interop-deps
all: $(BUILD)/wagate

deps:
	@sh scripts/deps.sh

$(BUILD)/gen/wa/proto/%.pb-c.c $(BUILD)/gen/wa/proto/%.pb-c.h: src/wa/proto/%.proto
	@mkdir -p $(BUILD)/gen/wa/proto
	protoc-c --proto_path=src/wa/proto --c_out=$(BUILD)/gen/wa/proto $<

# Static web assets (dashboard, live QR page, OpenAPI) embedded as a table of byte arrays.
$(BUILD)/gen/web_assets.c: scripts/embed.sh $(WEB)
	@mkdir -p $(dir $@)
	sh scripts/embed.sh web > $@

# Generated sources are kept (not treated as intermediate), so builds do not re-run protoc-c.
.SECONDARY: $(PROTO_C) $(PROTO_H) $(BUILD)/gen/web_assets.c

$(BUILD)/obj/%.o: %.c | $(PROTO_H)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/gen/%.o: $(BUILD)/gen/%.c
	$(CC) $(CFLAGS) -Wno-unused-parameter -c -o $@ $<

$(BUILD)/libwagate.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/wagate: $(BUILD)/obj/src/main.o $(BUILD)/libwagate.a
	$(CC) $(CFLAGS) $(LDSAN) -o $@ $^ $(LDLIBS)

$(BUILD)/test_unit: $(UNIT_OBJ) $(BUILD)/libwagate.a
	$(CC) $(CFLAGS) $(LDSAN) -o $@ $^ $(LDLIBS)

$(BUILD)/fuzz_%: tests/fuzz/fuzz_%.c $(BUILD)/libwagate.a
	$(CC) $(CFLAGS) -fsanitize=fuzzer -o $@ $^ $(LDLIBS)

run: deps all
	@sh scripts/run.sh

test-unit: $(BUILD)/test_unit
	$(BUILD)/test_unit

fuzz:
	@$(MAKE) --no-print-directory FUZZ=1 fuzzers
fuzzers: $(FUZZERS)

# Each fuzzer for FUZZ_SECONDS (default 60) with ASan+UBSan; 0 crashes required.
FUZZ_SECONDS ?= 60
fuzz-smoke: fuzz
	@sh tests/fuzz/smoke.sh build-fuzz $(FUZZ_SECONDS)

test: deps
	@$(MAKE) --no-print-directory all $(BUILD)/test_unit
	@$(MAKE) --no-print-directory SAN=1 build-asan/test_unit build-asan/wagate
	@$(MAKE) --no-print-directory FUZZ=1 fuzzers
	@sh tests/run.sh

bench: deps all
	@sh scripts/deps.sh --bench
	@sh bench/run.sh

clean:
	rm -rf build build-asan build-fuzz

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
