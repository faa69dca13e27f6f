# yt-dlp-async: every command sets up what it needs (Debian packages when
# run as root and missing, a venv in .venv) and then runs.
#
#   make demo      a real download through yt-dlp from a local server
#   make test      build, install into .venv and run the whole test suite
#   make sanitize  the same suite against an ASan + UBSan build (.venv-san)
#   make leakcheck valgrind over every engine path: "definitely lost" must be 0
#   make bench     benchmarks against yt-dlp native, aria2c and curl
#   make lint      mypy over the package
#   make differential  issue 9: every fault through yt-dlp alone and the plugin, the table

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
SAN_VENV ?= .venv-san
DEBS := libcurl4-openssl-dev libssl-dev pkg-config curl openssl nginx aria2 ffmpeg
PYTEST_ARGS ?=

.PHONY: deps venv install test sanitize leakcheck demo bench lint clean

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

test: install
	cd tests && YTDLP_ASYNC_REQUIRE_INSTALLED=1 ../$(PY) -m pytest -q -p no:cacheprovider $(PYTEST_ARGS) .
	$(PY) -m mypy --strict --follow-imports=silent yt_dlp_async/engine.py yt_dlp_async/errors.py

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

clean:
	rm -rf build dist *.egg-info $(VENV) $(SAN_VENV) yt_dlp_async/*.so
