"""Coverage-guided fuzzing of the C parsers of untrusted bytes, bounded.

Builds tests/fuzz/fuzz_*.c with clang's libFuzzer, ASan and UBSan through
``make fuzz-build`` and runs each harness for ``YTDLP_ASYNC_FUZZ_TIME``
seconds (default 30) from the checked-in seeds in tests/fuzz/corpus/.  A
crash, a leak, a timeout (5 s per input), a sanitizer report or a broken
invariant fails the test and names the saved input.  Skipped only when
clang (or its libFuzzer runtime) is missing.  See docs/fuzzing.md.

The last tests replay, through the real engine and a local server, the bugs
the fuzzers found.
"""

from __future__ import annotations

import hashlib
import os
import resource
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from faultserver import FaultServer, sha256_of
from ytdlp_support import output, require_engine, require_hook, run_ytdlp, sha256_file, write_info_json

from yt_dlp_async import AsyncDownloadEngine

ROOT = Path(__file__).resolve().parent.parent
FUZZ_SRC = ROOT / "tests" / "fuzz"
FUZZERS = ("http", "controlfile", "ranges", "aes")


def _fuzz_time() -> int:
    raw = os.environ.get("YTDLP_ASYNC_FUZZ_TIME", "30")
    try:
        seconds = int(raw)
    except ValueError:
        raise ValueError(f"YTDLP_ASYNC_FUZZ_TIME must be whole seconds, not {raw!r}") from None
    if seconds < 1:
        raise ValueError("YTDLP_ASYNC_FUZZ_TIME must be at least 1")
    return seconds


def _fuzz_env() -> dict[str, str]:
    """The environment for clang and the fuzzers: without the gcc sanitizer
    runtimes that ``make sanitize`` preloads into the test run."""
    env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "ASAN_OPTIONS", "UBSAN_OPTIONS")}
    env["ASAN_OPTIONS"] = "detect_leaks=1"
    env["UBSAN_OPTIONS"] = "print_stacktrace=1"
    return env


def _libfuzzer_missing() -> str | None:
    """Why the fuzzers cannot be built here, or None."""
    clang = shutil.which("clang")
    if clang is None:
        return "clang is not installed (apt-get install clang)"
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "probe.c"
        src.write_text("int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { (void)d; (void)n; return 0; }\n")
        probe = subprocess.run(
            [clang, "-fsanitize=fuzzer,address,undefined", str(src), "-o", str(Path(tmp) / "probe")],
            capture_output=True,
            text=True,
            env=_fuzz_env(),
        )
    if probe.returncode != 0:
        return f"clang cannot link libFuzzer: {probe.stderr.strip()[:300]}"
    return None


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fuzzers, built once into a private build directory."""
    reason = _libfuzzer_missing()
    if reason:
        pytest.skip(reason)
    out = tmp_path_factory.mktemp("fuzz")
    build = subprocess.run(
        ["make", "-s", "-C", str(ROOT), "fuzz-build", f"FUZZ_DIR={out}"],
        capture_output=True,
        text=True,
        env=_fuzz_env(),
    )
    assert build.returncode == 0, f"building the fuzzers failed:\n{build.stdout}\n{build.stderr}"
    return out


def _crash_files(out: Path, name: str) -> list[Path]:
    return sorted(out.glob(f"crash-{name}-*"))


@pytest.mark.parametrize("name", FUZZERS)
def test_fuzzer_finds_nothing(fuzz_dir: Path, name: str) -> None:
    seconds = _fuzz_time()
    corpus = fuzz_dir / f"corpus-{name}"
    corpus.mkdir(exist_ok=True)
    seeds = FUZZ_SRC / "corpus" / name
    assert any(seeds.iterdir()), f"no seeds in {seeds}"
    dictionary = FUZZ_SRC / f"{name}.dict"
    cmd = [
        str(fuzz_dir / f"fuzz_{name}"),
        str(corpus),
        str(seeds),
        *([f"-dict={dictionary}"] if dictionary.exists() else []),
        f"-max_total_time={seconds}",
        "-timeout=5",
        "-rss_limit_mb=1024",
        f"-artifact_prefix={fuzz_dir}/crash-{name}-",
        "-print_final_stats=1",
    ]
    run = subprocess.run(cmd, capture_output=True, text=True, errors="replace", env=_fuzz_env(), timeout=seconds + 120)
    log = run.stderr
    crashes = _crash_files(fuzz_dir, name)
    if run.returncode != 0 or crashes:
        where = ", ".join(str(p) for p in crashes) or "(no input saved)"
        pytest.fail(
            f"fuzz_{name} failed (exit {run.returncode}); input: {where}\n"
            f"reproduce: {fuzz_dir}/fuzz_{name} <input>\n" + log[-6000:]
        )
    # it really ran: the seeds were read and inputs were executed
    assert "stat::number_of_executed_units" in log, log[-2000:]
    units = int(log.split("stat::number_of_executed_units:")[1].split()[0])
    assert units > len(list(seeds.iterdir())), log[-2000:]


def test_regression_seeds_pass(fuzz_dir: Path) -> None:
    """Each input that once broke a parser is replayed on its own."""
    replayed = 0
    for name in FUZZERS:
        seeds = sorted((FUZZ_SRC / "corpus" / name).glob("regress-*"))
        if not seeds:
            continue
        replayed += len(seeds)
        run = subprocess.run(
            [str(fuzz_dir / f"fuzz_{name}"), *map(str, seeds)],
            capture_output=True,
            text=True,
            errors="replace",
            env=_fuzz_env(),
        )
        assert run.returncode == 0, run.stderr[-4000:]
        assert run.stderr.count("Executed ") == len(seeds), run.stderr[-2000:]
    assert replayed >= 6, "regression seeds went missing"


# ---- what the fuzzers found, through the real engine -------------------------

RETRY_AFTER_MAX = 86400.0  # HTTP_RETRY_AFTER_MAX in csrc/engine.h


def test_control_file_with_ranges_past_its_size_is_not_trusted(fault_server: FaultServer, tmp_path: Path) -> None:
    """A size line after the range lines used to skip the range check: the
    engine then took a file of garbage as finished, without one request."""
    size = 100_000
    out, state = tmp_path / "x.bin", tmp_path / "x.bin.ctl"
    out.write_bytes(b"\xee" * size)
    state.write_text(f'yt-dlp-async resume 1\nrange 0 {size}\nsize 1000\netag "0-{size}-0"\nlast-modified -\n')
    with AsyncDownloadEngine() as engine:
        task = engine.submit(fault_server.url(f"/data/{size}"), out, connections=4, state_path=state)
        result = task.result(60)
        assert task.resumed_bytes == 0
    assert result.downloaded_bytes == size
    assert hashlib.sha256(out.read_bytes()).hexdigest() == sha256_of(size)
    fault_server.wait_idle()
    served = fault_server.requests(f"/data/{size}", "GET")
    assert served and sum(entry.bytes_sent for entry in served) >= size


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def test_retry_after_beyond_any_wait_is_capped(fault_server: FaultServer, tmp_path: Path) -> None:
    """``Retry-After: 1e999`` used to parse to infinity: the retry never
    came and the engine thread spun (an infinite wait cast to a poll
    timeout).  Now it is capped at HTTP_RETRY_AFTER_MAX and the thread sleeps."""
    with AsyncDownloadEngine(max_retries=1, retry_base_delay=0.01, retry_max_delay=0.02) as engine:
        task = engine.submit(fault_server.url("/data/1000?fail=5&retry_after=1e999"), tmp_path / "x")
        deadline = time.monotonic() + 30
        while task.progress().retries < 1:
            assert time.monotonic() < deadline, task.progress()
            time.sleep(0.02)
        cpu = _cpu_seconds()
        time.sleep(2)
        cpu = _cpu_seconds() - cpu
        assert task.progress().state == "retry_wait"
        task.cancel()
        assert task.wait(10)
        retry_after = task._task.info()["retry_after"]
    assert retry_after == RETRY_AFTER_MAX
    assert cpu < 0.3, f"the engine used {cpu:.2f} s of CPU while waiting 2 s for a retry"


# ---- a refused or outdated control file beside a longer .part-async ----------

STALE_CONTROL_FILES = {
    "unusable": "not a control file\n",
    "ranges-past-size": 'yt-dlp-async resume 1\nrange 0 {old}\nsize 1000\netag "x"\nlast-modified -\n',
    "resource-shrank": 'yt-dlp-async resume 1\nsize {old}\netag "file-0-{old}-0"\nlast-modified -\nrange 0 65536\n',
}


@pytest.mark.parametrize("case", sorted(STALE_CONTROL_FILES))
def test_ytdlp_leaves_no_stale_tail_after_a_fresh_start(tmp_path: Path, fault_server: FaultServer, case: str) -> None:
    """When the control file cannot be used (or the resource changed and
    shrank), the download starts from byte 0 into the old .part-async: the
    finished file must be the new resource, not it plus the old file's tail."""
    require_hook()
    require_engine()
    data = os.urandom(1 << 20)
    old = len(data) + 300_000
    url = fault_server.add_file("v.mp4", data)
    info = write_info_json(tmp_path / "i.json", url)
    (tmp_path / "v.mp4.part-async").write_bytes(b"\xee" * old)
    (tmp_path / "v.mp4.part-async.ctl").write_text(STALE_CONTROL_FILES[case].format(old=old))
    proc = run_ytdlp(["-v", "--load-info-json", str(info), "-o", "v.mp4"], tmp_path)
    assert proc.returncode == 0, output(proc)
    assert (tmp_path / "v.mp4").stat().st_size == len(data)
    assert sha256_file(tmp_path / "v.mp4") == hashlib.sha256(data).hexdigest()
    assert not list(tmp_path.glob("v.mp4.*"))
