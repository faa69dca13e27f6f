"""The engine against issue 9: never worse than yt-dlp alone.

Awaiting from several event loops, max_filesize while receiving, files
opened only when their transfer starts, what close() releases, FIFOs,
fork, content-coded replies and slow trickles.  Every test talks to the
fault server on loopback and checks bytes, errors or the server's log.
"""

from __future__ import annotations

import asyncio
import errno
import gzip
import hashlib
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Iterator

import pytest
from faultserver import FaultServer, content, sha256_of

from yt_dlp_async import AsyncDownloadEngine, FileSizeError, NetworkError, RangeError

PYTHON = sys.executable


def sha256_file(path: str | os.PathLike[str]) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def run_script(code: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYTHON, "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def engine() -> Iterator[AsyncDownloadEngine]:
    with AsyncDownloadEngine(retry_base_delay=0.05, retry_max_delay=0.2, max_retries=3, stall_timeout=2) as e:
        yield e


# ---- 11: awaiting from several loops in several threads -------------------


def test_loops_in_several_threads_all_finish(fault_server: FaultServer, tmp_path: Path) -> None:
    # rounds in lock step: after each round nothing else finishes, so a
    # wake-up that one loop takes from another is never made up for
    rounds, threads = 20, 3
    barrier = threading.Barrier(threads)
    finished: list[int] = [0] * threads
    timeouts: list[int] = [0] * threads
    with AsyncDownloadEngine(max_connections=8) as engine:

        def worker(k: int) -> None:
            async def main() -> None:
                for r in range(rounds):
                    barrier.wait(30)
                    task = engine.submit(fault_server.data_url(100, seed=k * 1000 + r), tmp_path / f"{k}-{r}")
                    try:
                        await asyncio.wait_for(_await(task), 10)
                        finished[k] += 1
                    except asyncio.TimeoutError:
                        timeouts[k] += 1

            asyncio.run(main())

        ts = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(threads)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(300)
        assert not any(t.is_alive() for t in ts)
    assert timeouts == [0] * threads
    assert finished == [rounds] * threads
    assert sha256_file(tmp_path / "2-19") == sha256_of(100, 2019)


def test_one_loop_awaits_after_another_loop_is_gone(fault_server: FaultServer, tmp_path: Path) -> None:
    with AsyncDownloadEngine() as engine:
        for i in range(5):
            task = engine.submit(fault_server.data_url(1000, seed=i), tmp_path / f"x{i}")
            res = asyncio.run(asyncio.wait_for(_await(task), 10))
            assert res.downloaded_bytes == 1000
        assert sha256_file(tmp_path / "x4") == sha256_of(1000, 4)


async def _await(task):  # type: ignore[no-untyped-def]
    return await task


# ---- 12: max_filesize while receiving, and 0 -------------------------------


def test_max_filesize_without_content_length(
    engine: AsyncDownloadEngine, fault_server: FaultServer, tmp_path: Path
) -> None:
    out = tmp_path / "big"
    task = engine.submit(fault_server.data_url(400_000, chunked=1), out, max_filesize=100_000)
    with pytest.raises(FileSizeError, match="larger than max_filesize"):
        task.result(30)
    assert not out.exists() and not os.path.exists(f"{out}.ytdla-part")   # nothing to resume: nothing kept
    assert len(fault_server.requests("/data/400000")) == 1  # not retried


def test_max_filesize_zero_is_a_limit_of_zero_bytes(
    engine: AsyncDownloadEngine, fault_server: FaultServer, tmp_path: Path
) -> None:
    with pytest.raises(FileSizeError):
        engine.submit(fault_server.data_url(10), tmp_path / "a", max_filesize=0).result(30)
    with pytest.raises(FileSizeError):
        engine.submit(fault_server.data_url(10, chunked=1), tmp_path / "b", max_filesize=0).result(30)
    assert not (tmp_path / "a").exists() or (tmp_path / "a").stat().st_size == 0
    # an empty file is within a limit of 0
    assert engine.submit(fault_server.data_url(0), tmp_path / "c", max_filesize=0).result(30).downloaded_bytes == 0


def test_max_filesize_at_the_size_passes(
    engine: AsyncDownloadEngine, fault_server: FaultServer, tmp_path: Path
) -> None:
    for i, extra in enumerate(({}, {"chunked": 1})):
        out = tmp_path / f"f{i}"
        engine.submit(fault_server.data_url(50_000, **extra), out, max_filesize=50_000).result(30)
        assert sha256_file(out) == sha256_of(50_000)


# ---- 13: a file is opened only when its transfer starts --------------------


def test_thousand_urls_under_a_low_fd_limit(fault_server: FaultServer, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    proc = run_script(
        """
        import resource, sys
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))
        import yt_dlp_async
        base, out, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
        urls = [f"{base}/data/{100 + i}?latency=100" for i in range(n)]
        res = yt_dlp_async.download(urls, out, concurrency=8)
        print(sum(r.downloaded_bytes for r in res))
        """,
        fault_server.base_url,
        str(out),
        "1000",
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert int(proc.stdout.split()[-1]) == sum(100 + i for i in range(1000))
    names = sorted(os.listdir(out))
    assert len(names) == 1000
    for i in (0, 1, 499, 999):
        assert sha256_file(out / str(100 + i)) == sha256_of(100 + i)
    assert all((out / n).stat().st_size == int(n) for n in names)


def test_queued_task_holds_no_file(fault_server: FaultServer, tmp_path: Path) -> None:
    with AsyncDownloadEngine(max_connections=1) as engine:
        first = engine.submit(fault_server.data_url(30_000, rate=30_000), tmp_path / "first")
        queued = engine.submit(fault_server.data_url(10), tmp_path / "queued")
        time.sleep(0.3)
        assert not (tmp_path / "queued").exists()
        queued.cancel()
        first.result(30)
        assert queued.wait(5)
    assert not (tmp_path / "queued").exists()
    assert sha256_file(tmp_path / "first") == sha256_of(30_000)


def test_unopenable_file_fails_the_task_with_oserror(fault_server: FaultServer, tmp_path: Path) -> None:
    d = tmp_path / "d"
    d.mkdir()
    with AsyncDownloadEngine(max_connections=1) as engine:
        slow = engine.submit(fault_server.data_url(20_000, rate=40_000), tmp_path / "slow")
        # in place: a temporary name beside it would start the engine's dispatcher
        # thread first, which gives the transfer time to open the file
        task = engine.submit(fault_server.data_url(10), d / "x", in_place=True)
        d.rmdir()  # gone before the transfer starts
        with pytest.raises(OSError) as info:
            task.result(30)
        assert info.value.errno == errno.ENOENT
        slow.result(30)


# ---- 14: close() releases; FIFOs; fork --------------------------------------


def _fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def _link(fd: str) -> str:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return "?"


def test_close_releases_fds_and_connections(fault_server: FaultServer, tmp_path: Path) -> None:
    before = _fds()
    engine = AsyncDownloadEngine()
    for i in range(3):
        engine.submit(fault_server.data_url(1000, seed=i), tmp_path / f"c{i}").result(30)
    assert fault_server.open_connections >= 1  # kept alive for reuse
    engine.close()
    deadline = time.monotonic() + 5
    while fault_server.open_connections and time.monotonic() < deadline:
        time.sleep(0.05)
    assert fault_server.open_connections == 0
    while _fds() - before and time.monotonic() < deadline:
        time.sleep(0.05)  # the server closes its side a moment later
    assert {fd: _link(fd) for fd in _fds() - before} == {}
    engine.close()  # twice is fine
    del engine


def test_submit_to_a_fifo_without_reader_does_not_block(tmp_path: Path, fault_server: FaultServer) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    proc = run_script(
        """
        import sys
        from yt_dlp_async import AsyncDownloadEngine
        with AsyncDownloadEngine() as e:
            try:
                e.submit(sys.argv[1], sys.argv[2])
            except OSError as exc:
                print("OSError", exc.errno, exc)
        """,
        fault_server.data_url(10),
        str(fifo),
        timeout=20,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"OSError {errno.ENXIO} ")
    assert "no process has it open for reading" in proc.stdout


def test_submit_to_a_fifo_with_a_reader(tmp_path: Path, fault_server: FaultServer) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader_ready = threading.Event()

    def reader() -> None:
        fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        reader_ready.set()
        os.set_blocking(fd, True)
        chunks = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                b = os.read(fd, 65536)
            except BlockingIOError:
                continue
            if not b and chunks:
                break
            if not b:
                time.sleep(0.01)
                continue
            chunks.append(b)
        os.close(fd)
        got.append(b"".join(chunks))

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    reader_ready.wait(5)
    with AsyncDownloadEngine() as e:
        e.submit(fault_server.data_url(100_000, seed=3), fifo).result(30)
    t.join(25)
    assert got and got[0] == content(100_000, 3)


def test_forked_child_exits_silently(fault_server: FaultServer, tmp_path: Path) -> None:
    proc = run_script(
        """
        import os, sys
        from yt_dlp_async import AsyncDownloadEngine
        e = AsyncDownloadEngine()
        e.submit(sys.argv[1], sys.argv[2]).result(30)
        pid = os.fork()
        if pid == 0:
            sys.exit(0)          # a normal exit: atexit handlers run
        _, status = os.waitpid(pid, 0)
        print("child", os.waitstatus_to_exitcode(status), flush=True)
        """,
        fault_server.data_url(1234),
        str(tmp_path / "x"),
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "child 0"
    assert proc.stderr == ""


# ---- 6: a content-coded reply is decoded, fetched whole ---------------------


def test_gzip_reply_is_decoded(engine: AsyncDownloadEngine, fault_server: FaultServer, tmp_path: Path) -> None:
    size = 300_000
    out = tmp_path / "g"
    res = engine.submit(
        fault_server.data_url(size, "mp4", gzip=1), out, headers={"Accept-Encoding": "identity"}
    ).result(30)
    assert sha256_file(out) == sha256_of(size)
    assert res.downloaded_bytes == size
    reqs = fault_server.requests(f"/data/{size}.mp4")
    assert [r.header("Accept-Encoding") for r in reqs] == ["identity"]


def test_gzip_without_our_header_asks_for_identity(
    engine: AsyncDownloadEngine, fault_server: FaultServer, tmp_path: Path
) -> None:
    out = tmp_path / "g"
    engine.submit(fault_server.data_url(5000, gzip=1), out).result(30)
    assert sha256_file(out) == sha256_of(5000)
    assert [r.header("Accept-Encoding") for r in fault_server.requests("/data/5000")] == ["identity"]


def test_gzip_reply_is_not_split_or_resumed_by_offset(
    engine: AsyncDownloadEngine, fault_server: FaultServer, tmp_path: Path
) -> None:
    size = 2_000_000
    raw = content(size)
    encoded_len = len(gzip.compress(raw, mtime=0))
    out = tmp_path / "g"
    # the first reply is reset half way: the retry must start again from 0
    url = fault_server.data_url(size, gzip=1, reset_after=encoded_len // 2)
    res = engine.submit(url, out, connections=4, min_piece=16384).result(60)
    assert sha256_file(out) == sha256_of(size)
    assert res.downloaded_bytes == size
    gets = [r for r in fault_server.requests(f"/data/{size}") if r.method == "GET"]
    assert all(r.range in (None, "bytes=0-") for r in gets[1:]), [r.range for r in gets]


def test_gzip_short_reply_is_fetched_again_whole(
    engine: AsyncDownloadEngine, fault_server: FaultServer, tmp_path: Path
) -> None:
    size = 500_000
    out = tmp_path / "g"
    task = engine.submit(fault_server.data_url(size, gzip=1, short=1000), out)
    res = task.result(30)
    assert res.retries == 1
    assert sha256_file(out) == sha256_of(size)
    assert fault_server.wait_idle(5.0)  # the server logs a reply's outcome after its last byte went out
    gets = fault_server.requests(f"/data/{size}")
    assert [(r.outcome, r.range) for r in gets] == [("short", None), ("ok", None)]


def test_gzip_reply_to_a_bounded_range_is_refused(
    engine: AsyncDownloadEngine, fault_server: FaultServer, tmp_path: Path
) -> None:
    out = tmp_path / "g"
    with pytest.raises(RangeError, match="content-coded reply to a range request"):
        engine.submit(fault_server.data_url(100_000, gzip=1), out, range=(1000, 2000)).result(30)
    assert not out.exists() or out.read_bytes().strip(b"\0") == b""


def test_gzip_through_ytdlp(fault_server: FaultServer, tmp_path: Path) -> None:
    from ytdlp_support import output, require_engine, require_hook, run_ytdlp

    require_hook()
    require_engine()
    size = 700_000
    proc = run_ytdlp(["-v", "-o", "v.%(ext)s", fault_server.data_url(size, "mp4", gzip=1)], tmp_path)
    assert proc.returncode == 0, output(proc)
    assert sha256_file(tmp_path / "v.mp4") == sha256_of(size)


# ---- 5: a trickle is not a stall ---------------------------------------------


def test_one_byte_per_second_is_not_a_stall(fault_server: FaultServer, tmp_path: Path) -> None:
    out = tmp_path / "t"
    with AsyncDownloadEngine(stall_timeout=3, max_retries=0) as e:
        res = e.submit(fault_server.data_url(12, rate=1), out).result(60)
    assert res.retries == 0
    assert out.read_bytes() == content(12)


def test_no_byte_for_stall_timeout_is_a_stall(fault_server: FaultServer, tmp_path: Path) -> None:
    out = tmp_path / "s"
    with AsyncDownloadEngine(stall_timeout=2, max_retries=0) as e:
        with pytest.raises(NetworkError):
            e.submit(fault_server.data_url(5000, stall_after=100, stall=30), out).result(30)
    with AsyncDownloadEngine(stall_timeout=2, max_retries=2, retry_base_delay=0.05) as e:
        res = e.submit(fault_server.data_url(5000, stall_after=100, stall=30, key="b"), out).result(30)
    assert res.retries == 1
    assert sha256_file(out) == sha256_of(5000)
