# The two commands of the README, and the developer ones. Each installs what it needs first.
BUILD ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
CONF ?= examples/fcgihost.conf
FUZZ_SECONDS ?= 600
MESON_FLAGS ?= -Dwerror=true

.PHONY: all build run test sanitize fuzz bench clean deps

all: build

$(BUILD)/build.ninja:
	meson setup $(BUILD) $(MESON_FLAGS)

build:
	@scripts/deps.sh build
	@[ -f $(BUILD)/build.ninja ] || meson setup $(BUILD) $(MESON_FLAGS)
	ninja -C $(BUILD)

run: build
	./$(BUILD)/fcgihost -c $(CONF)

test:
	@scripts/deps.sh test
	@[ -f $(BUILD)/build.ninja ] || meson setup $(BUILD) $(MESON_FLAGS)
	ninja -C $(BUILD)
	scripts/run-tests.sh $(BUILD)

sanitize:
	@scripts/deps.sh sanitize
	@[ -f $(ASAN_BUILD)/build.ninja ] || meson setup $(ASAN_BUILD) $(MESON_FLAGS) \
	    -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug
	ninja -C $(ASAN_BUILD)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	    scripts/run-tests.sh $(ASAN_BUILD)

# libFuzzer: every target in fuzz/ for FUZZ_SECONDS each (default 10 minutes), corpus in fuzz/corpus.
fuzz:
	@scripts/deps.sh fuzz
	@[ -f $(FUZZ_BUILD)/build.ninja ] || CC=clang meson setup $(FUZZ_BUILD) -Dlibfuzzer=true -Db_lundef=false
	ninja -C $(FUZZ_BUILD)
	scripts/fuzz.sh $(FUZZ_BUILD) $(FUZZ_SECONDS) $(TARGETS)

bench: build
	@scripts/deps.sh bench
	bench/static.sh

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
