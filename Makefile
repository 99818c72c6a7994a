# ssmlm build. Plain GNU make; see README.md.
#
#   make            library (build/libssmlm.a) and program (build/ssmlm)
#   make test       build and run every test (fp32 and fp64 variants), then the sanitizer pass
#   make test-fast  the tests without the sanitizer pass
#   make bench      build the benchmarks (run them from bench/, see bench/RESULTS.md)
#
# Numeric code (src/kernels, src/layers, src/model/forward.c) is written once against the type
# `real` (src/kernels/real.h) and compiled twice: fp32 (suffix _f32) and fp64 (suffix _f64).
# Tests under tests/ whose name starts with test_num_ are compiled the same two ways.

BUILD    ?= build
CC       ?= gcc
SAN      ?=
OPT      ?= -O3 -march=native
# OpenBLAS: Debian ships it built with OpenMP (libopenblas-openmp-dev) and with its own pthreads
# (libopenblas-pthread-dev, what plain libopenblas-dev usually selects).  We link the OpenMP build
# when it is installed: BLAS then runs on our OpenMP threads, one pool for everything (see
# ssmlm_threads_init in include/ssmlm.h).  BLAS_VARIANT=pthread (or any directory through
# BLAS_DIR) picks another; the sanitizer build, compiled by clang against LLVM's OpenMP runtime,
# uses the pthread build so that one process never loads two OpenMP runtimes.
comma       := ,
MULTIARCH   := $(shell $(CC) -print-multiarch 2>/dev/null)
BLAS_VARIANT ?= $(if $(wildcard /usr/lib/$(MULTIARCH)/openblas-openmp/libopenblas.so),openmp,pthread)
BLAS_DIR    ?= $(wildcard /usr/lib/$(MULTIARCH)/openblas-$(BLAS_VARIANT))
BLAS_INC    ?= $(firstword $(wildcard /usr/include/$(MULTIARCH)/openblas-$(BLAS_VARIANT) /usr/include/openblas))
BLAS_LIBS   := $(if $(BLAS_DIR),-L$(BLAS_DIR) -Wl$(comma)-rpath$(comma)$(BLAS_DIR)) -lopenblas
CFLAGS_BASE = -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wno-unknown-pragmas -fopenmp \
              -ffp-contract=fast -fno-math-errno -g -Iinclude -Isrc $(if $(BLAS_INC),-I$(BLAS_INC))
CFLAGS  ?= $(OPT)
ALL_CFLAGS = $(CFLAGS_BASE) $(CFLAGS) $(SAN)
LDLIBS   = $(BLAS_LIBS) -lcjson -lm -fopenmp $(SAN)
include mk/mpi.mk

GENERIC_SRC := $(wildcard src/kernels/*.c src/layers/*.c) src/model/forward.c
PLAIN_SRC   := $(filter-out $(GENERIC_SRC),$(wildcard src/*/*.c))
TOOL_SRC    := $(wildcard tools/*.c)
OBJ := $(PLAIN_SRC:%.c=$(BUILD)/obj/%.o) \
       $(GENERIC_SRC:%.c=$(BUILD)/f32/%.o) $(GENERIC_SRC:%.c=$(BUILD)/f64/%.o)

TEST_SUPPORT := tests/golden.c
NUM_TESTS   := $(patsubst tests/%.c,%,$(wildcard tests/test_num_*.c))
PLAIN_TESTS := $(filter-out $(NUM_TESTS),$(patsubst tests/%.c,%,$(wildcard tests/test_*.c)))
TEST_BINS := $(PLAIN_TESTS:%=$(BUILD)/tests/%) $(NUM_TESTS:%=$(BUILD)/tests/%_f32) $(NUM_TESTS:%=$(BUILD)/tests/%_f64)
BENCH_BINS := $(patsubst bench/%.c,$(BUILD)/bench/%,$(wildcard bench/bench_*.c))

.PHONY: all test test-fast test-san bench clean
all: $(BUILD)/libssmlm.a $(BUILD)/ssmlm

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c $< -o $@
$(BUILD)/f32/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c $< -o $@
$(BUILD)/f64/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -DSSMLM_REAL_F64 -MMD -MP -c $< -o $@

$(BUILD)/libssmlm.a: $(OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/ssmlm: $(TOOL_SRC:%.c=$(BUILD)/obj/%.o) $(BUILD)/libssmlm.a
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%_f32: tests/%.c $(TEST_SUPPORT) $(BUILD)/libssmlm.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Itests -o $@ $< $(TEST_SUPPORT) $(BUILD)/libssmlm.a $(LDLIBS)
$(BUILD)/tests/%_f64: tests/%.c $(TEST_SUPPORT) $(BUILD)/libssmlm.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -DSSMLM_REAL_F64 -Itests -o $@ $< $(TEST_SUPPORT) $(BUILD)/libssmlm.a $(LDLIBS)
$(BUILD)/tests/%: tests/%.c $(TEST_SUPPORT) $(BUILD)/libssmlm.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Itests -o $@ $< $(TEST_SUPPORT) $(BUILD)/libssmlm.a $(LDLIBS)

$(BUILD)/bench/%: bench/%.c $(BUILD)/libssmlm.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Ibench -o $@ $< $(BUILD)/libssmlm.a $(LDLIBS)

# Algorithm 1 must reproduce Python's double arithmetic exactly: no FMA contraction.
$(BUILD)/obj/src/model/pattern.o: CFLAGS += -ffp-contract=off

bench: $(BENCH_BINS)

# Runs every test binary; tests/run.sh prints one line per binary and the closing count.
test-fast: $(TEST_BINS) $(BUILD)/ssmlm
	@sh tests/run.sh $(BUILD) $(TEST_BINS)

# The same tests built with AddressSanitizer + UndefinedBehaviorSanitizer (clang, -O1).
test-san:
	@$(MAKE) --no-print-directory BUILD=build-san CC=clang OPT="-O1 -march=native" BLAS_VARIANT=pthread \
	  SAN="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -Wno-pass-failed" test-fast

test: test-fast test-san

clean:
	rm -rf build build-san

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
