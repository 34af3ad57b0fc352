# weir - build with a plain Makefile and pkg-config.
#
#   make            release build: build/release/weir
#   make run        install what is missing, build, start `weir serve`
#   make test       ASan+UBSan build, unit, conformance and integration tests
#   make fuzz       libFuzzer targets (clang) in build/fuzz/
#   make bench      benchmarks in bench/ (see bench/RESULTS.md)
#   make check-style  refuse banned functions (sprintf, strcpy, atoi, ...)
#
# DuckDB: .deps/duckdb (scripts/install-deps.sh) by default; a system
# install with DUCKDB_PREFIX=/usr/local (include/duckdb.h, lib/libduckdb.so).

MODE ?= release
BUILD ?= build/$(MODE)
CC ?= cc

DUCKDB_PREFIX ?= $(CURDIR)/.deps/duckdb
PKGS := yaml-0.1 libpcre2-8 libzstd libpq libmariadb rdkafka openssl

WARN := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
        -Wno-unused-parameter -Wvla -Wformat=2
BASE_CFLAGS := -std=c11 -D_GNU_SOURCE -g $(WARN) -Isrc \
        -isystem $(DUCKDB_PREFIX)/include $(shell pkg-config --cflags $(PKGS))
LIBS := $(shell pkg-config --libs $(PKGS)) -L$(DUCKDB_PREFIX)/lib -lduckdb \
        -Wl,-rpath,$(DUCKDB_PREFIX)/lib -lpthread -lm

ifeq ($(MODE),release)
  OPT := -O2
else ifeq ($(MODE),asan)
  OPT := -O1 -fno-omit-frame-pointer -fsanitize=address,undefined \
         -fno-sanitize-recover=undefined -DWEIR_TESTING=1
else ifeq ($(MODE),debug)
  OPT := -O0 -DWEIR_TESTING=1
else
  $(error MODE must be release, asan or debug)
endif

CFLAGS ?=
LDFLAGS ?=
ALL_CFLAGS := $(BASE_CFLAGS) $(OPT) $(CFLAGS)
ALL_LDFLAGS := $(OPT) $(LDFLAGS)

LIB_SRCS := $(filter-out src/cli/main.c,$(shell find src -name '*.c' | sort))
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/obj/%.o)
MAIN_OBJ := $(BUILD)/obj/src/cli/main.o
LIB := $(BUILD)/libweir.a
BIN := $(BUILD)/weir

TEST_SRCS := $(sort $(wildcard tests/unit/test_*.c))
TEST_BINS := $(TEST_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
TEST_HELPER_SRCS := $(filter-out $(TEST_SRCS),$(wildcard tests/unit/*.c))
TEST_HELPER_OBJS := $(TEST_HELPER_SRCS:%.c=$(BUILD)/obj/%.o)
TOOL_SRCS := $(sort $(wildcard tests/tools/*.c))
TOOL_BINS := $(TOOL_SRCS:tests/tools/%.c=$(BUILD)/tools/%)

.SECONDARY:
.PHONY: all run test test-build fuzz bench clean check-style deps
all: $(BIN)

deps:
	@scripts/install-deps.sh

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC    $<"
	@$(CC) $(ALL_CFLAGS) -MMD -MP -c $< -o $@

$(LIB): $(LIB_OBJS)
	@rm -f $@
	@ar rcs $@ $^

$(BIN): $(MAIN_OBJ) $(LIB)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(TEST_HELPER_OBJS) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS) $(shell pkg-config --libs cmocka)

$(BUILD)/tools/%: $(BUILD)/obj/tests/tools/%.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

test-build: $(BIN) $(TEST_BINS) $(TOOL_BINS)

# make run: the main job on the embedded default.
run: deps
	@$(MAKE) --no-print-directory MODE=release all
	./build/release/weir serve $(ARGS)

test: deps
	@$(MAKE) --no-print-directory MODE=asan test-build
	@$(MAKE) --no-print-directory MODE=release all
	@tests/run.sh $(or $(TEST_BUILD),build/asan)

FUZZ_SRCS := $(sort $(wildcard fuzz/fuzz_*.c))
FUZZ_BINS := $(FUZZ_SRCS:fuzz/%.c=build/fuzz/%)
# Fuzz targets link the parsers only (no DuckDB, no I/O backends).
FUZZ_LIB_SRCS := $(sort $(wildcard src/core/*.c src/schema/*.c src/config/*.c) src/net/framing.c \
                 src/store/tablelog.c src/store/segment.c src/store/partition.c)
fuzz: $(FUZZ_BINS)
build/fuzz/%: fuzz/%.c $(FUZZ_LIB_SRCS)
	@mkdir -p $(dir $@)
	clang -std=c11 -D_GNU_SOURCE -g -O1 -Isrc \
	    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	    -DWEIR_FUZZING=1 \
	    -o $@ $< $(FUZZ_LIB_SRCS) $(shell pkg-config --cflags --libs $(PKGS)) -lpthread -lm

bench: all
	@bench/run.sh

check-style:
	@scripts/check-style.sh

clean:
	rm -rf build

-include $(shell find build -name '*.d' 2>/dev/null)
