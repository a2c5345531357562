# poise - top-level build.  `make` builds into build/; `make test` and
# `make demo` first install what a fresh Debian machine lacks.
#
# Variants: BUILD=dir SAN="-fsanitize=..." OPT=... build the same tree with
# other flags (make test uses build/asan and build/tsan).

BUILD ?= build
VERSION := 0.2.0
SOVERSION := 0
CC ?= cc
OPT ?= -O2
SAN ?=
CFLAGS := -std=gnu11 -D_GNU_SOURCE -g $(OPT) -Wall -Wextra -Wshadow -Wno-unused-parameter \
	  -fPIC -Iinclude -Isrc -DPOISE_RELEASE='"$(VERSION)"' $(SAN) $(EXTRA_CFLAGS)
LDFLAGS := $(SAN) $(EXTRA_LDFLAGS)
LDLIBS := -lpthread

# The test hooks (crash tracking and the crash fence, fault injection, the
# deliberately wrong writer) are in test builds only: the unit tests link
# libpoise-test.a (every library object again, -DPOISE_TEST_HOOKS, plus
# these two files); the shipped libraries, the CLI and the shim have none.
HOOK_SRC := src/common/fault.c src/dev/track.c
LIB_SRC := $(filter-out $(HOOK_SRC),$(wildcard src/common/*.c src/dev/*.c src/fs/*.c)) $(wildcard src/dev/*.S)
LIB_OBJ := $(patsubst %,$(BUILD)/obj/%.o,$(basename $(LIB_SRC)))
TLIB_OBJ := $(patsubst %,$(BUILD)/obj-test/%.o,$(basename $(LIB_SRC) $(HOOK_SRC)))
CLI_OBJ := $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard src/cli/*.c src/fuse/*.c))
# evaluated when used (`=`), not when the Makefile is read: on a fresh
# machine `make demo` installs libfuse3-dev (deps) before these are needed
FUSE_CFLAGS = $(shell pkg-config --cflags fuse3 2>/dev/null)
FUSE_LIBS = $(shell pkg-config --libs fuse3 2>/dev/null || echo -lfuse3)
# man pages: man/*.in are roff with @HELP cmd...@ lines, which gen.sh
# replaces with the commands' own --help text (so the two never differ)
MAN_IN := $(wildcard man/*.in)
MAN_OUT := $(patsubst man/%.in,$(BUILD)/man/%,$(MAN_IN))
UNIT := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(wildcard tests/unit/test_*.c))
BENCH := $(patsubst bench/%.c,$(BUILD)/%,$(wildcard bench/bench_*.c))

.PHONY: all tests bench-bin deps test demo bench clean test-vm fuzz torture install uninstall deb
all: $(BUILD)/poise $(BUILD)/libpoise.so $(BUILD)/libpoise.so.$(SOVERSION) $(BUILD)/libpoise.a \
	$(BUILD)/libpoise-preload.so $(BUILD)/poise.pc $(BUILD)/mount.fuse.poise $(MAN_OUT)

$(BUILD)/obj/src/fuse/%.o: src/fuse/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(FUSE_CFLAGS) -MMD -MP -c $< -o $@
$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@
$(BUILD)/obj/%.o: %.S
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/obj-test/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -DPOISE_TEST_HOOKS -MMD -MP -c $< -o $@
$(BUILD)/obj-test/%.o: %.S
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/libpoise.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^
$(BUILD)/libpoise-test.a: $(TLIB_OBJ)
	@rm -f $@
	ar rcs $@ $^
# A library that behaves in other people's processes exports its API and
# nothing else: the version script lists the functions include/poise.h and
# include/poise-admin.h declare (as PMDK's libpmem2.link.in does).
$(BUILD)/libpoise.map: include/poise.h include/poise-admin.h
	@mkdir -p $(dir $@)
	@{ echo '{ global:'; cat $^ | grep -oE '\bpoise_[a-z0-9_]+ *\(' | tr -d ' (' | sort -u | sed 's/$$/;/'; \
	   echo 'local: *; };'; } >$@
# libpoise.so.0 is the soname (bump SOVERSION when the ABI breaks; VERSION
# follows POISE_VERSION_MAJOR and _MINOR in poise.h);
# libpoise.so is the link-time name
$(BUILD)/libpoise.so.$(VERSION): $(LIB_OBJ) $(BUILD)/libpoise.map
	$(CC) -shared $(LDFLAGS) -Wl,-soname,libpoise.so.$(SOVERSION) -Wl,--version-script=$(BUILD)/libpoise.map \
		$(LIB_OBJ) -o $@ $(LDLIBS)
$(BUILD)/libpoise.so.$(SOVERSION) $(BUILD)/libpoise.so: $(BUILD)/libpoise.so.$(VERSION)
	ln -sf libpoise.so.$(VERSION) $@
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

$(BUILD)/man/%: man/%.in man/gen.sh $(BUILD)/poise
	@mkdir -p $(dir $@)
	man/gen.sh $(BUILD)/poise $(VERSION) <$< >$@.tmp && mv $@.tmp $@
# the files that name where poise is installed are made with those places
# (PREFIX etc. below); $(BUILD)/.dirs remembers them, so a change remakes
$(BUILD)/.dirs: FORCE
	@mkdir -p $(BUILD)
	@echo '$(PREFIX) $(BINDIR) $(LIBDIR) $(INCLUDEDIR) $(VERSION)' | cmp -s - $@ || \
		echo '$(PREFIX) $(BINDIR) $(LIBDIR) $(INCLUDEDIR) $(VERSION)' >$@
$(BUILD)/poise.pc: scripts/poise.pc.in $(BUILD)/.dirs
	sed -e 's|@PREFIX@|$(PREFIX)|; s|@LIBDIR@|$(LIBDIR)|; s|@INCLUDEDIR@|$(INCLUDEDIR)|; s|@VERSION@|$(VERSION)|' $< >$@
$(BUILD)/mount.fuse.poise: scripts/mount.fuse.poise $(BUILD)/.dirs
	sed -e 's|@BINDIR@|$(BINDIR)|' $< >$@ && chmod 755 $@
FORCE:

# make install [PREFIX=/usr/local] [DESTDIR=]: the command, the libraries,
# the header, pkg-config, the shim, the mount helper (in /sbin, where
# mount(8) looks for mount.fuse.poise), man pages, bash completion
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
MANDIR ?= $(PREFIX)/share/man
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
SHIMDIR ?= $(LIBDIR)/poise
SBINDIR ?= /sbin
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
INSTALL ?= install
# (each place quoted: a DESTDIR or PREFIX with a space stays one path)
D = $(DESTDIR)
install: all
	$(INSTALL) -d "$(D)$(BINDIR)" "$(D)$(LIBDIR)" "$(D)$(INCLUDEDIR)" "$(D)$(PKGCONFIGDIR)" "$(D)$(SHIMDIR)" \
		"$(D)$(SBINDIR)" "$(D)$(MANDIR)/man3" "$(D)$(MANDIR)/man8" "$(D)$(BASHCOMPDIR)"
	$(INSTALL) -m 755 $(BUILD)/poise "$(D)$(BINDIR)/poise"
	$(INSTALL) -m 644 $(BUILD)/libpoise.so.$(VERSION) "$(D)$(LIBDIR)/"
	ln -sf libpoise.so.$(VERSION) "$(D)$(LIBDIR)/libpoise.so.$(SOVERSION)"
	ln -sf libpoise.so.$(SOVERSION) "$(D)$(LIBDIR)/libpoise.so"
	$(INSTALL) -m 644 $(BUILD)/libpoise.a "$(D)$(LIBDIR)/"
	$(INSTALL) -m 644 include/poise.h include/poise-admin.h "$(D)$(INCLUDEDIR)/"
	$(INSTALL) -m 644 $(BUILD)/poise.pc "$(D)$(PKGCONFIGDIR)/"
	$(INSTALL) -m 644 $(BUILD)/libpoise-preload.so "$(D)$(SHIMDIR)/"
	$(INSTALL) -m 755 $(BUILD)/mount.fuse.poise "$(D)$(SBINDIR)/"
	$(INSTALL) -m 644 $(filter %.3,$(MAN_OUT)) "$(D)$(MANDIR)/man3/"
	$(INSTALL) -m 644 $(filter %.8,$(MAN_OUT)) "$(D)$(MANDIR)/man8/"
	$(INSTALL) -m 644 scripts/poise.bash-completion "$(D)$(BASHCOMPDIR)/poise"
	@# a real install (no DESTDIR) by root: the loader's cache learns libpoise.so.0
	@if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" = 0 ] && command -v ldconfig >/dev/null; then ldconfig; fi
uninstall:
	rm -f "$(D)$(BINDIR)/poise" "$(D)$(LIBDIR)/libpoise.so.$(VERSION)" "$(D)$(LIBDIR)/libpoise.so.$(SOVERSION)" \
		"$(D)$(LIBDIR)/libpoise.so" "$(D)$(LIBDIR)/libpoise.a" "$(D)$(INCLUDEDIR)/poise.h" \
		"$(D)$(INCLUDEDIR)/poise-admin.h" "$(D)$(PKGCONFIGDIR)/poise.pc" "$(D)$(SHIMDIR)/libpoise-preload.so" \
		"$(D)$(SBINDIR)/mount.fuse.poise" "$(D)$(BASHCOMPDIR)/poise"
	for m in $(patsubst $(BUILD)/man/%,man3/%,$(filter %.3,$(MAN_OUT))) \
		 $(patsubst $(BUILD)/man/%,man8/%,$(filter %.8,$(MAN_OUT))); do rm -f "$(D)$(MANDIR)/$$m"; done
	-rmdir "$(D)$(SHIMDIR)"

# the Debian packages (debian/): poise, libpoise0, libpoise-dev in ../
# (dh's clean step runs `make clean`: build/ is removed first)
deb:
	@scripts/install-deps deb
	dpkg-buildpackage -us -uc -b
	lintian --fail-on error ../poise_$(VERSION)_amd64.changes

$(BUILD)/tests/%: tests/unit/%.c tests/unit/harness.h tests/unit/fs_check.h $(BUILD)/libpoise-test.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -DPOISE_TEST_HOOKS $< $(BUILD)/libpoise-test.a -o $@ $(LDLIBS)
# the command with the test hooks (tests/fuzz/make-corpus.sh crashes it at a fence)
$(BUILD)/tests/poise-hooks: $(CLI_OBJ) $(BUILD)/libpoise-test.a
	$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS) $(FUSE_LIBS)
tests: all $(UNIT) $(BUILD)/tests/poise-hooks

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

-include $(shell find $(BUILD)/obj $(BUILD)/obj-test -name '*.d' 2>/dev/null)
