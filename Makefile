# gatehouse — one Makefile. `make help` lists the targets.
# SAN=1 builds with AddressSanitizer + UndefinedBehaviorSanitizer into build-san/.

SAN     ?= 0
PREFIX  ?= /usr
DESTDIR ?=
VERSION := 0.1.0

ifeq ($(FUZZ),1)
# libFuzzer harnesses (fuzz/, `make fuzz`): clang, the library instrumented
# for coverage with ASan+UBSan, into build-fuzz/.
BUILD   := build-fuzz
CC      := clang
SANFLAGS := -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
OPT     := -O1
else ifeq ($(TSAN),1)
# ThreadSanitizer build (`make check-tsan`) into build-tsan/.
BUILD   := build-tsan
SANFLAGS := -fsanitize=thread -fno-omit-frame-pointer
OPT     := -O1
else ifeq ($(SAN),1)
BUILD   := build-san
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
OPT     := -O1
else
BUILD   := build
SANFLAGS :=
OPT     := -O2
endif

PKGS    := sqlite3 jansson inih libuv libsystemd openssl libmosquitto libmodbus libcurl libwebsockets
CC      ?= gcc
WARN    := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wconversion -Wno-sign-conversion \
           -Wstrict-prototypes -Wmissing-prototypes
CFLAGS  := -std=c11 -D_GNU_SOURCE -DGH_VERSION='"$(VERSION)"' $(OPT) -g $(WARN) $(SANFLAGS) \
           -Idaemon -Idrivers -I$(BUILD) $(shell pkg-config --cflags $(PKGS))
LDLIBS  := $(shell pkg-config --libs $(PKGS)) -lm -lpthread
LDFLAGS := $(SANFLAGS)

# daemon/*.c minus the two mains form libgatehouse.a, linked by the
# daemon, the CLI, the tests and the benches.
LIB_SRC := $(filter-out daemon/gatehoused.c daemon/gatehouse.c,$(wildcard daemon/*.c)) $(wildcard drivers/*.c)
LIB_OBJ := $(patsubst %.c,$(BUILD)/obj/%.o,$(notdir $(LIB_SRC))) $(BUILD)/obj/schema_gen.o
LIB     := $(BUILD)/libgatehouse.a
SCHEMA  := $(sort $(wildcard schema/[0-9][0-9][0-9]-*.sql))

TEST_SRC := $(wildcard tests/unit/test_*.c)
TEST_BIN := $(TEST_SRC:tests/unit/%.c=$(BUILD)/tests/%)
BENCH_SRC := $(wildcard bench/bench_*.c)
BENCH_BIN := $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)

BINS := $(BUILD)/gatehoused $(BUILD)/gatehouse
SIMS := $(BUILD)/sim/modbus_sim

# V=1 shows the full command lines
ifeq ($(V),1)
Q :=
else
Q := @
endif

.PHONY: all check check-unit check-san bench bench-nodered demo deps install deb package-test clean help \
	fuzz fuzz-build fuzz-bins check-tsan check-valgrind soak

all: $(BINS)

help:
	@echo "make deps     install the Debian packages (root, apt-get)"
	@echo "make          build $(BINS)"
	@echo "make check    all tests, normal build and ASan+UBSan build"
	@echo "make fuzz     libFuzzer harnesses (clang), each for FUZZ_TIME s (default 60); fuzz/README.md"
	@echo "make check-tsan  the bus and cloud tests against a ThreadSanitizer build"
	@echo "make check-valgrind  the integration suites with the daemon under valgrind memcheck (slow)"
	@echo "make soak     SOAK_MINUTES (30) at a site's load; report in $(BUILD)/soak/report.md"
	@echo "make bench    benchmarks, table in bench/RESULTS.md (QUICK=1: quick modes)"
	@echo "make bench-nodered  install Node-RED (npm, cache folder) and run the comparison with it"
	@echo "make demo     daemon on a seeded site, decisions being made"
	@echo "make install  DESTDIR=... PREFIX=/usr"
	@echo "make deb      build gatehouse_$(VERSION)_<arch>.deb into dist/"
	@echo "make package-test  root: build the .deb, install/upgrade/purge it in a debootstrap chroot"

vpath %.c daemon drivers
$(BUILD)/obj/%.o: %.c | $(BUILD)/obj
	@echo "  CC      $<"
	$(Q)$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/schema_gen.c: tools/embed-schema.sh $(SCHEMA) | $(BUILD)/obj
	@echo "  SCHEMA  $@"
	$(Q)sh tools/embed-schema.sh $@ $(SCHEMA)

$(BUILD)/obj/schema_gen.o: $(BUILD)/schema_gen.c
	$(Q)$(CC) $(CFLAGS) -c -o $@ $<

$(LIB): $(LIB_OBJ)
	$(Q)rm -f $@
	$(Q)ar rcs $@ $^

$(BUILD)/gatehoused: $(BUILD)/obj/gatehoused.o $(LIB)
	@echo "  LD      $@"
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/gatehouse: $(BUILD)/obj/gatehouse.o $(LIB)
	@echo "  LD      $@"
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%: tests/unit/%.c tests/unit/testutil.h $(LIB) | $(BUILD)/tests
	@echo "  TEST    $@"
	$(Q)$(CC) $(CFLAGS) -Itests/unit -o $@ $< $(LIB) $(LDFLAGS) $(LDLIBS) -lcriterion

$(BUILD)/sim/%: tests/sim/%.c $(LIB) | $(BUILD)/sim
	@echo "  SIM     $@"
	$(Q)$(CC) $(CFLAGS) -o $@ $< $(LIB) $(LDFLAGS) $(LDLIBS)

$(BUILD)/bench/%: bench/%.c $(LIB) | $(BUILD)/bench
	@echo "  BENCH   $@"
	$(Q)$(CC) $(CFLAGS) -o $@ $< $(LIB) $(LDFLAGS) $(LDLIBS)

$(BUILD)/obj $(BUILD)/tests $(BUILD)/bench $(BUILD)/sim:
	mkdir -p $@

# libFuzzer harnesses (fuzz/README.md), built with FUZZ=1 into build-fuzz/:
# the library with coverage + ASan + UBSan, each harness linked with
# libFuzzer's main. `make fuzz` runs each for FUZZ_TIME seconds on a copy
# of its seed corpus fuzz/corpus/NAME/ (FUZZ_ONLY=NAME: that one only).
FUZZ_TIME ?= 60
FUZZ_SRC  := $(wildcard fuzz/fuzz_*.c)
FUZZ_BIN  := $(FUZZ_SRC:fuzz/%.c=$(BUILD)/%)
FUZZ_ONLY ?= $(FUZZ_SRC:fuzz/fuzz_%.c=%)

$(BUILD)/fuzz_%: fuzz/fuzz_%.c fuzz/fuzz_common.h $(LIB)
	@echo "  FUZZ    $@"
	$(Q)$(CC) $(CFLAGS) -DGH_SRCDIR='"$(CURDIR)"' -fsanitize=fuzzer -o $@ $< $(LIB) $(LDFLAGS) $(LDLIBS)

fuzz-bins: $(FUZZ_BIN)

fuzz-build:
	@$(MAKE) --no-print-directory FUZZ=1 fuzz-bins

fuzz: fuzz-build
	@sh fuzz/run.sh build-fuzz $(FUZZ_TIME) $(FUZZ_ONLY)

# Unit and integration tests of this build; each binary is a Criterion suite.
check-unit: $(BINS) $(TEST_BIN) $(SIMS) $(BUILD)/bench/loadgen
	@set -e; export GH_BUILD=$(BUILD); for t in $(TEST_BIN); do \
		echo "== $$t"; $$t --jobs 2 --short-filename; done
	@GH_BUILD=$(BUILD) sh tests/cli/run.sh
	@/usr/bin/python3 tests/mqtt/run.py $(BUILD)
	@/usr/bin/python3 tests/bus/run.py $(BUILD)
	@/usr/bin/python3 tests/cloud/run.py $(BUILD)
	@/usr/bin/python3 tests/site/run.py $(BUILD)
	@/usr/bin/python3 tests/web/run.py $(BUILD)
	@/usr/bin/python3 tests/web-ui/run.py $(BUILD)
	@/usr/bin/python3 tests/fault/run.py $(BUILD)

check-san:
	$(MAKE) SAN=1 check-unit

check:
	$(MAKE) SAN=0 check-unit
	$(MAKE) SAN=1 check-unit

# The bus workers are threads: their tests against a ThreadSanitizer build
# of the daemon and the CLI. The board simulator is a test tool built without
# it (TSan holds back signals, so it would not stop on SIGTERM).
check-tsan:
	@$(MAKE) --no-print-directory TSAN=1 all
	@$(MAKE) --no-print-directory build/sim/modbus_sim
	@mkdir -p build-tsan/sim && cp build/sim/modbus_sim build-tsan/sim/modbus_sim
	@TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" /usr/bin/python3 tests/bus/run.py build-tsan
	@TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" /usr/bin/python3 tests/cloud/run.py build-tsan

# The integration suites (cli, mqtt, bus, cloud, site, web) with the daemon under
# valgrind's memcheck: GH_VALGRIND=1 makes testlib.daemon_cmd prefix it
# (suppressions: tests/valgrind.supp) and scales every wait by 10; each
# suite fails when a memcheck log has an error or a definite leak. Every
# suite runs; the exit status says whether all passed. Not in `check`: slow.
check-valgrind: $(BINS) $(SIMS) $(BUILD)/bench/loadgen
	@command -v valgrind >/dev/null || { echo "check-valgrind: valgrind is missing (make deps)"; exit 1; }
	@rc=0; export GH_VALGRIND=1 GH_BUILD=$(BUILD); sh tests/cli/run.sh || rc=1; \
	for s in mqtt bus cloud site web; do /usr/bin/python3 tests/$$s/run.py $(BUILD) || rc=1; done; exit $$rc

# The soak: SOAK_MINUTES of a 500-device site's load (tests/soak/run.py),
# sampled every 10 s; $(BUILD)/soak/report.md and report.csv with a verdict
# (flat memory and fds, every request answered, every event acked, the
# outbox drained). Not in `check`.
SOAK_MINUTES ?= 30
soak: $(BINS) $(SIMS)
	@/usr/bin/python3 tests/soak/run.py --build $(BUILD) --minutes $(SOAK_MINUTES)

# Every benchmark (QUICK=1: each one's quick mode), then bench/report.py
# writes bench/RESULTS.md and prints it; the Node-RED comparison runs when
# Node-RED is installed (bench-nodered installs it: npm ci into a cache
# folder outside the repository; check never needs it).
bench: $(BINS) $(BENCH_BIN) $(BUILD)/bench/loadgen $(SIMS)
	@sh bench/run.sh $(BUILD) "$(QUICK)"

bench-nodered: $(BINS) $(BUILD)/bench/loadgen $(SIMS)
	@sh bench/nodered/install.sh >/dev/null
	@sh bench/run.sh $(BUILD) "$(QUICK)" nodered

demo:
	@sh tools/deps.sh
	@$(MAKE) --no-print-directory all $(SIMS)
	@sh tools/demo.sh $(BUILD)

deps:
	sh tools/deps.sh

install: $(BINS)
	install -d $(DESTDIR)$(PREFIX)/sbin $(DESTDIR)$(PREFIX)/bin \
		$(DESTDIR)$(PREFIX)/share/gatehouse/web-ui $(DESTDIR)$(PREFIX)/share/gatehouse/profiles \
		$(DESTDIR)/etc/gatehouse $(DESTDIR)/lib/systemd/system
	install -m 0755 $(BUILD)/gatehoused $(DESTDIR)$(PREFIX)/sbin/gatehoused
	install -m 0755 $(BUILD)/gatehouse $(DESTDIR)$(PREFIX)/bin/gatehouse
	install -m 0644 systemd/gatehoused.service $(DESTDIR)/lib/systemd/system/
	install -m 0640 packaging/gatehouse.conf $(DESTDIR)/etc/gatehouse/gatehouse.conf
	if ls drivers/profiles/*.ini >/dev/null 2>&1; then install -m 0644 drivers/profiles/*.ini \
		$(DESTDIR)$(PREFIX)/share/gatehouse/profiles/; fi
	cp -r web-ui/. $(DESTDIR)$(PREFIX)/share/gatehouse/web-ui/

# The Debian package from this build (packaging/build-deb.sh; dpkg-dev).
deb: $(BINS)
	sh packaging/build-deb.sh $(BUILD) dist

# Root only, needs a Debian mirror: builds the .deb, installs it into a
# debootstrap chroot and checks files, user, first boot, upgrade, purge.
package-test: $(BINS)
	GH_BUILD=$(BUILD) sh tests/package/run.sh

clean:
	rm -rf build build-san build-fuzz build-tsan dist

-include $(wildcard $(BUILD)/obj/*.d)
