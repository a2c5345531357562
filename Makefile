# poise - top-level build.  `make` builds into build/; `make test` and
# `make demo` first install what a fresh Debian machine lacks.
#
# Variants: BUILD=dir SAN="-fsanitize=..." OPT=... build the same tree with
# other flags (make test uses build/asan and build/tsan).

BUILD ?= build
CC ?= cc
OPT ?= -O2
SAN ?=
CFLAGS := -std=gnu11 -D_GNU_SOURCE -g $(OPT) -Wall -Wextra -Wshadow -Wno-unused-parameter \
	  -fPIC -Iinclude -Isrc $(SAN) $(EXTRA_CFLAGS)
LDFLAGS := $(SAN)
LDLIBS := -lpthread

LIB_SRC := $(wildcard src/common/*.c src/dev/*.c src/fs/*.c) $(wildcard src/dev/*.S)
LIB_OBJ := $(patsubst %,$(BUILD)/obj/%.o,$(basename $(LIB_SRC)))
CLI_OBJ := $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard src/cli/*.c src/fuse/*.c))
# evaluated when used (`=`), not when the Makefile is read: on a fresh
# machine `make demo` installs libfuse3-dev (deps) before these are needed
FUSE_CFLAGS = $(shell pkg-config --cflags fuse3 2>/dev/null)
FUSE_LIBS = $(shell pkg-config --libs fuse3 2>/dev/null || echo -lfuse3)
UNIT := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(wildcard tests/unit/test_*.c))
BENCH := $(patsubst bench/%.c,$(BUILD)/%,$(wildcard bench/bench_*.c))

.PHONY: all tests bench-bin deps test demo bench clean test-vm fuzz torture
all: $(BUILD)/poise $(BUILD)/libpoise.so $(BUILD)/libpoise.a $(BUILD)/libpoise-preload.so

$(BUILD)/obj/src/fuse/%.o: src/fuse/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(FUSE_CFLAGS) -MMD -MP -c $< -o $@
$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@
$(BUILD)/obj/%.o: %.S
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/libpoise.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^
# A library that behaves in other people's processes exports its API and
# nothing else: the version script lists the functions include/poise.h
# declares (as PMDK's libpmem2.link.in does).
$(BUILD)/libpoise.map: include/poise.h
	@mkdir -p $(dir $@)
	@{ echo '{ global:'; grep -oE '\bpoise_[a-z0-9_]+ *\(' $< | tr -d ' (' | sort -u | sed 's/$$/;/'; \
	   echo 'local: *; };'; } >$@
$(BUILD)/libpoise.so: $(LIB_OBJ) $(BUILD)/libpoise.map
	$(CC) -shared $(LDFLAGS) -Wl,-soname,libpoise.so -Wl,--version-script=$(BUILD)/libpoise.map $(LIB_OBJ) -o $@ $(LDLIBS)
PRELOAD_OBJ := $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard src/preload/*.c))
# the shim: the library linked in, so a program needs nothing but LD_PRELOAD.
# Its copy of the library calls the C library's open, statx, pread, ...
# under other names (src/preload/real.c), never the shim's own definitions;
# the link fails if a library object still calls a name the shim defines.
# It exports only the C library names it interposes: the library's own
# functions stay local, so a program's own iget or dir_add is never taken
# for the library's (nor the library's for the program's).
SHIM_LIB_OBJ := $(patsubst $(BUILD)/obj/%,$(BUILD)/obj-shim/%,$(LIB_OBJ))
$(BUILD)/obj-shim/%.o: $(BUILD)/obj/%.o src/preload/real.syms
	@mkdir -p $(dir $@)
	objcopy --redefine-syms=src/preload/real.syms $< $@
$(BUILD)/libpoise-preload.so: $(PRELOAD_OBJ) $(SHIM_LIB_OBJ)
	@nm -u $(SHIM_LIB_OBJ) | awk 'NF == 2 {print $$2}' | sort -u >$@.u
	@nm --defined-only $(PRELOAD_OBJ) | awk '$$2 == "T" || $$2 == "W" {print $$3}' | grep -v '^__poise_libc_' | sort -u >$@.d
	@bad=$$(comm -12 $@.u $@.d | tr '\n' ' '); rm -f $@.u $@.d; \
	if [ -n "$$bad" ]; then echo "shim: the library calls $$bad, which the shim defines: add them to src/preload/real.syms and real.c"; exit 1; fi
	@{ echo '{ global:'; nm --defined-only $(PRELOAD_OBJ) | awk '$$2 == "T" || $$2 == "W" {print $$3}' | \
	   grep -v -e '^shim_' -e '^__poise_libc_' | sort -u | sed 's/$$/;/'; echo 'local: *; };'; } >$@.map
	$(CC) -shared $(LDFLAGS) -Wl,-soname,libpoise-preload.so -Wl,--version-script=$@.map $^ -o $@ $(LDLIBS) -ldl
$(BUILD)/poise: $(CLI_OBJ) $(BUILD)/libpoise.a
	$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS) $(FUSE_LIBS)

$(BUILD)/tests/%: tests/unit/%.c tests/unit/harness.h tests/unit/fs_check.h $(BUILD)/libpoise.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $< $(BUILD)/libpoise.a -o $@ $(LDLIBS)
tests: all $(UNIT)

$(BUILD)/bench_%: bench/bench_%.c $(BUILD)/libpoise.a
	$(CC) $(CFLAGS) $< $(BUILD)/libpoise.a -o $@ $(LDLIBS) -lm
bench-bin: all $(BENCH)

deps:
	@scripts/install-deps

ASAN := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
TSAN := -fsanitize=thread

# The whole suite: unit tests under ASan+UBSan and under TSan, the CLI
# scenarios against the release and the ASan build.
test: deps
	@$(MAKE) --no-print-directory tests
	@$(MAKE) --no-print-directory tests BUILD=build/asan OPT=-O1 SAN="$(ASAN)"
	@$(MAKE) --no-print-directory tests BUILD=build/tsan OPT=-O1 SAN="$(TSAN)"
	@$(MAKE) --no-print-directory build/fuzz/fuzz_mount
	@tests/run-all.sh

demo: deps
	@$(MAKE) --no-print-directory all
	@scripts/demo.sh

bench:
	@scripts/install-deps bench
	@$(MAKE) --no-print-directory bench-bin
	@bench/run.sh

# libFuzzer: the mount/fsck harness, the library built with clang and
# ASan+UBSan (tests/fuzz/)
FUZZ_FLAGS := -std=gnu11 -D_GNU_SOURCE -g -O1 -Iinclude -Isrc -fsanitize=fuzzer,address,undefined \
	-fno-sanitize-recover=undefined -fno-omit-frame-pointer
# (tests/fuzz/mutate.c: the structure-aware mutator, which reseals CRCs)
build/fuzz/fuzz_mount: tests/fuzz/fuzz_mount.c tests/fuzz/mutate.c $(LIB_SRC) $(wildcard src/*/*.h)
	@mkdir -p $(dir $@)
	clang $(FUZZ_FLAGS) tests/fuzz/fuzz_mount.c tests/fuzz/mutate.c $(LIB_SRC) -o $@ -lpthread
fuzz: deps
	@$(MAKE) --no-print-directory build/fuzz/fuzz_mount

# the long harnesses (docs/RELIABILITY.md): scripts/torture.sh
torture: deps
	@$(MAKE) --no-print-directory tests build/fuzz/fuzz_mount
	@scripts/torture.sh

# the real-kernel suite in the pmem VM (tests/vm/run.sh)
$(BUILD)/vm-hwpoison: tests/vm/hwpoison.c tests/unit/harness.h $(BUILD)/libpoise.a
	$(CC) $(CFLAGS) -Itests/unit $< $(BUILD)/libpoise.a -o $@ $(LDLIBS)
test-vm: deps
	@$(MAKE) --no-print-directory all $(BUILD)/vm-hwpoison
	@tests/vm/run.sh

clean:
	rm -rf build

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
