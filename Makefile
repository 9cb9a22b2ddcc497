# Build: `make` (release, into build/), `make test` (ASan+UBSan build of the
# same sources, then every test), `make run`, `make bench`, `make deps`,
# `make style`, `make fuzz`.  Sources are picked up per folder, so a new .c
# file needs no Makefile edit; a new module folder needs one line below.

CC      ?= cc
CSTD    := -std=c11 -D_GNU_SOURCE
WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes
CFLAGS  ?= -O2 -g
PKGS    := lmdb libpcre2-8 libxxhash jansson
LIBS    := -llmdb -lpcre2-8 -lxxhash -ljansson -lmicrohttpd -lpthread -lm
SAN     := -fsanitize=address,undefined -fno-omit-frame-pointer \
           -fno-sanitize-recover=undefined
DATA    ?= data
LISTEN  ?= 127.0.0.1:9201

# One object list per module folder; dependencies point one way:
# tools -> http -> rollup, anomaly -> query, statsd -> tsdb.
TSDB_SRC   := $(wildcard tsdb/*.c)
STATSD_SRC := $(wildcard statsd/*.c)
QUERY_SRC  := $(wildcard query/*.c)
ROLLUP_SRC := $(wildcard rollup/*.c)
ANOMALY_SRC := $(wildcard anomaly/*.c)
HTTP_SRC   := $(wildcard http/*.c)
LIB_SRC    := $(TSDB_SRC) $(STATSD_SRC) $(QUERY_SRC) $(ROLLUP_SRC) \
              $(ANOMALY_SRC) $(HTTP_SRC)
TEST_SRC := $(wildcard tests/*/test_*.c)
TOOLS    := tsdbd tsdb-bench tsdb-check tsdb-dump tsdb-compact tsdb-load \
            tsdb-replay

REL_OBJ  := $(LIB_SRC:%.c=build/obj/%.o)
SAN_OBJ  := $(LIB_SRC:%.c=build/asan/obj/%.o)
TEST_BIN := $(TEST_SRC:tests/%.c=build/asan/tests/%)
TOOL_BIN := $(TOOLS:%=build/%)
SAN_TOOLS := $(TOOLS:%=build/asan/%)

.PHONY: all test run bench deps style fuzz clean asan check-deps
all: $(TOOL_BIN)

build/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) $(WARN) $(CFLAGS) -I. -MMD -MP -c $< -o $@

build/asan/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) $(WARN) -O1 -g $(SAN) -I. -MMD -MP \
	    -c $< -o $@

build/libtsdb.a: $(REL_OBJ)
	@rm -f $@; ar rcs $@ $^
build/asan/libtsdb.a: $(SAN_OBJ)
	@mkdir -p $(dir $@); rm -f $@; ar rcs $@ $^

build/%: tools/%.c build/libtsdb.a
	$(CC) $(CSTD) $(WARN) $(CFLAGS) -I. -MMD -MP -MF $@.d $< build/libtsdb.a \
	    -ljemalloc $(LIBS) -o $@
build/asan/%: tools/%.c build/asan/libtsdb.a
	$(CC) $(CSTD) $(WARN) -O1 -g $(SAN) -I. -MMD -MP -MF $@.d $< \
	    build/asan/libtsdb.a \
	    $(LIBS) -o $@
build/asan/tests/%: tests/%.c build/asan/libtsdb.a
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) $(WARN) -O1 -g $(SAN) -I. -Itests -MMD -MP -MF $@.d $< \
	    build/asan/libtsdb.a -lcmocka $(LIBS) -o $@

asan: $(TEST_BIN) $(SAN_TOOLS)

# make deps: installs what is missing, only that; needs root on a fresh
# Debian machine.  Listed once here and nowhere else.
DEB_PKGS := build-essential pkg-config liblmdb-dev lmdb-utils \
            libmicrohttpd-dev libjemalloc-dev libcmocka-dev libpcre2-dev \
            libxxhash-dev libjansson-dev clang-format prometheus python3 curl
deps:
	@missing=""; for p in $(DEB_PKGS); do \
	    dpkg-query -W -f='$${Status}' $$p 2>/dev/null | \
	        grep -q 'ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	    echo "deps: installing$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	        apt-get install -y -qq $$missing >/dev/null || exit 1; \
	fi
	@command -v node >/dev/null && command -v npm >/dev/null || { \
	    echo "deps: installing nodejs npm"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	        apt-get install -y -qq nodejs npm >/dev/null; } || exit 1
	@[ tests/clients/node_modules/.package-lock.json -nt \
	    tests/clients/package-lock.json ] || \
	    npm ci --prefix tests/clients --no-audit --no-fund

test: deps
	@$(MAKE) --no-print-directory asan
	@tests/run-all $(TEST_BIN)

run: deps
	@$(MAKE) --no-print-directory all
	@mkdir -p $(DATA)
	build/tsdbd --data $(DATA) --listen $(LISTEN)

bench: deps
	@$(MAKE) --no-print-directory all
	bench/run-bench
	bench/run-tier-bench

fuzz: deps
	@bench/run-fuzz

style:
	@drift=0; for f in $$(git ls-files '*.c' '*.h'); do \
	    if ! clang-format --style=file $$f | cmp -s - $$f; then \
	        echo "style: $$f differs from .clang-format"; drift=1; fi; \
	done; [ $$drift -eq 0 ] && echo "style: clean"; exit $$drift

clean:
	rm -rf build

-include $(REL_OBJ:.o=.d) $(SAN_OBJ:.o=.d) $(TEST_BIN:=.d) $(TOOL_BIN:=.d) \
    $(SAN_TOOLS:=.d)
