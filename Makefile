# yt-dlp-async: every command sets up what it needs (Debian packages when
# run as root and missing, a venv in .venv) and then runs.
#
#   make demo      a real download through yt-dlp from a local server
#   make test      build, install into .venv and run the whole test suite
#   make sanitize  the same suite against an ASan + UBSan build (.venv-san)
#   make leakcheck valgrind over every engine path: "definitely lost" must be 0
#   make bench     benchmarks against yt-dlp native, aria2c and curl
#   make lint      mypy over the package
#   make fuzz      libFuzzer (clang, ASan + UBSan) over the parsers of untrusted
#                  bytes, FUZZ_TIME seconds each (docs/fuzzing.md)
#   make differential  issue 9: every fault through yt-dlp alone and the plugin, the table
#   make test-versions yt-dlp's integration tests on the other yt-dlp releases we declare

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
SAN_VENV ?= .venv-san
DEBS := libcurl4-openssl-dev libssl-dev pkg-config curl openssl nginx aria2 ffmpeg clang redis-server
PYTEST_ARGS ?=

.PHONY: deps venv install test test-versions test-ytdlp sanitize leakcheck demo bench lint clean fuzz fuzz-build

deps:
	@missing=$$(for p in $(DEBS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing: $$missing"; \
	    DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else \
	    echo "missing Debian packages: $$missing (run: sudo apt-get install $$missing)"; exit 1; \
	  fi; \
	fi

$(VENV)/.created:
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	touch $@

venv: $(VENV)/.created

# A real (non-editable) install: it puts yt_dlp_async.pth into site-packages
# the way users get it, so `yt-dlp` itself picks the plugin up.
install: deps venv
	$(VENV)/bin/pip install -q --upgrade '.[test]'

# Most tests wait on servers, children and timeouts rather than the CPU, so they
# run in TEST_JOBS processes (pytest-xdist); the differential matrix runs its
# own pool and prints its table, so it runs on its own after them.
TEST_JOBS ?= 4
test: install
	cd tests && YTDLP_ASYNC_REQUIRE_INSTALLED=1 ../$(PY) -m pytest -q -p no:cacheprovider -n $(TEST_JOBS) \
	  --ignore=test_differential.py $(PYTEST_ARGS) .
	cd tests && YTDLP_ASYNC_REQUIRE_INSTALLED=1 ../$(PY) -m pytest -q -p no:cacheprovider -rxX $(PYTEST_ARGS) \
	  test_differential.py
	$(PY) -m mypy --strict --follow-imports=silent yt_dlp_async/engine.py yt_dlp_async/errors.py

# yt-dlp's integration tests against other yt-dlp releases, each in its own venv:
# the oldest we support, the newest nightly, and one below the oldest beside
# which the plugin is installed with --no-deps (it must stand aside cleanly):
# the release just below, and 2023.03.04, which Debian 12 ships.  The supported
# ones get yt-dlp[default] (pycryptodomex among them): without it yt-dlp
# 2025.05.22 alone crashes on AES-128 HLS when ffmpeg is absent, and the tests
# compare our bytes with its bytes.
OLDEST_YTDLP := $(shell sed -n "s/^OLDEST_YTDLP = '\(.*\)'/\1/p" yt_dlp_async/ytdlp/internals.py)
BELOW_OLDEST_YTDLP ?= 2025.4.30 2023.3.4
YTDLP_TESTS ?= test_ytdlp_*.py
test-versions: deps
	$(MAKE) --no-print-directory test-ytdlp VENV=.venv-ytdlp-oldest YTDLP_SPEC='yt-dlp[default]==$(OLDEST_YTDLP)'
	$(MAKE) --no-print-directory test-ytdlp VENV=.venv-ytdlp-nightly YTDLP_SPEC='--pre yt-dlp[default]'
	for v in $(BELOW_OLDEST_YTDLP); do \
	  $(MAKE) --no-print-directory test-ytdlp VENV=.venv-ytdlp-$$v YTDLP_SPEC="yt-dlp==$$v" \
	    YTDLP_TESTS=test_ytdlp_internals.py || exit 1; \
	done

test-ytdlp: venv
	$(VENV)/bin/pip install -q --upgrade pytest pytest-xdist $(YTDLP_SPEC)
	$(VENV)/bin/pip install -q --no-deps --force-reinstall .
	@echo "== yt-dlp $$($(VENV)/bin/python -m yt_dlp --version) =="
	cd tests && YTDLP_ASYNC_REQUIRE_INSTALLED=1 ../$(PY) -m pytest -q -p no:cacheprovider -n $(TEST_JOBS) \
	  $(PYTEST_ARGS) $(YTDLP_TESTS)

sanitize: deps
	$(MAKE) install VENV=$(SAN_VENV)
	YTDLP_ASYNC_SANITIZE=1 $(SAN_VENV)/bin/pip install -q --force-reinstall --no-deps .
	cd tests && LD_PRELOAD="$$(gcc -print-file-name=libasan.so) $$(gcc -print-file-name=libubsan.so)" \
	  ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  YTDLP_ASYNC_SANITIZED=1 YTDLP_ASYNC_REQUIRE_INSTALLED=1 ../$(SAN_VENV)/bin/python -m pytest -q -p no:cacheprovider $(PYTEST_ARGS) .

.PHONY: differential
differential: install
	cd tests && YTDLP_ASYNC_REQUIRE_INSTALLED=1 ../$(PY) -m pytest -q -p no:cacheprovider -rxX $(PYTEST_ARGS) test_differential.py

leakcheck: install
	@command -v valgrind >/dev/null || { echo "leakcheck needs valgrind (apt-get install valgrind)"; exit 1; }
	mkdir -p build && cd tests && PYTHONMALLOC=malloc valgrind --leak-check=full --show-leak-kinds=definite \
	  --errors-for-leak-kinds=definite --log-file=../build/valgrind.log ../$(PY) leak_probe.py
	@grep "definitely lost" build/valgrind.log
	@grep -q "definitely lost: 0 bytes in 0 blocks" build/valgrind.log

demo: install
	$(PY) tests/demo.py

bench: install
	$(PY) bench/run.py

lint: install
	$(PY) -m mypy --strict --follow-imports=silent yt_dlp_async/engine.py yt_dlp_async/errors.py

# Each harness builds the pure C files it needs, nothing else (no Python).
FUZZ_CC ?= clang
FUZZ_DIR ?= build/fuzz
FUZZ_TIME ?= 30
FUZZ_EXTRA ?=
FUZZERS := http controlfile ranges aes
FUZZ_CFLAGS := -g -O1 -fno-omit-frame-pointer -Wall -Wextra -Werror -Icsrc \
  -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
FUZZ_SRC_http := csrc/httpparse.c
FUZZ_SRC_controlfile := csrc/controlfile.c csrc/ranges.c
FUZZ_SRC_ranges := csrc/ranges.c
FUZZ_SRC_aes := csrc/aes.c

.SECONDEXPANSION:
fuzz-build: $(foreach f,$(FUZZERS),$(FUZZ_DIR)/fuzz_$(f))

$(FUZZ_DIR)/fuzz_%: tests/fuzz/fuzz_%.c $$(FUZZ_SRC_$$*) csrc/engine.h tests/fuzz/fuzz.h
	@command -v $(FUZZ_CC) >/dev/null || { echo "fuzz needs clang (apt-get install clang)"; exit 1; }
	@mkdir -p $(FUZZ_DIR)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_EXTRA) $$(pkg-config --cflags libcurl) $< $(FUZZ_SRC_$*) \
	  -o $@ $$(pkg-config --libs libcurl libcrypto) -lm

# Run each fuzzer for FUZZ_TIME seconds from the checked-in seeds; new
# inputs go to $(FUZZ_DIR)/corpus-NAME, a crash to $(FUZZ_DIR)/crash-NAME-*.
fuzz: fuzz-build
	@for f in $(FUZZERS); do \
	  mkdir -p $(FUZZ_DIR)/corpus-$$f; \
	  echo "fuzz_$$f: $(FUZZ_TIME) s"; \
	  $(FUZZ_DIR)/fuzz_$$f $(FUZZ_DIR)/corpus-$$f tests/fuzz/corpus/$$f \
	    $$([ -f tests/fuzz/$$f.dict ] && echo -dict=tests/fuzz/$$f.dict) \
	    -max_total_time=$(FUZZ_TIME) -timeout=5 \
	    -rss_limit_mb=1024 -artifact_prefix=$(FUZZ_DIR)/crash-$$f- \
	    -print_final_stats=1 2>$(FUZZ_DIR)/fuzz_$$f.log \
	  || { tail -40 $(FUZZ_DIR)/fuzz_$$f.log; exit 1; }; \
	  grep -h "stat::number_of_executed_units" $(FUZZ_DIR)/fuzz_$$f.log; \
	done

clean:
	rm -rf build dist *.egg-info $(VENV) $(SAN_VENV) yt_dlp_async/*.so
