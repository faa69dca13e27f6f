"""The engine on its own: bytes, faults, retries, limits, cancel, bad input.

Every test talks to a real HTTP server on loopback (tests/faultserver.py) and
checks the file's SHA-256 and/or the server's request log.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from pathlib import Path
from typing import Iterator

import pytest
from faultserver import FaultServer, content, sha256_of

import yt_dlp_async
from yt_dlp_async import (
    AsyncDownloadEngine,
    ShortBodyError,
    HTTPStatusError,
    RangeError,
    NetworkError,
)


def sha256_file(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@pytest.fixture
def engine() -> Iterator[AsyncDownloadEngine]:
    with AsyncDownloadEngine(
        retry_base_delay=0.05, retry_max_delay=0.2, max_retries=5, stall_timeout=1
    ) as e:
        yield e


def test_whole_file_bytes_and_result(engine: AsyncDownloadEngine, fault_server: FaultServer, tmp_path: Path) -> None:
    size = 3 * 1024 * 1024 + 17
    out = tmp_path / "a.bin"
    res = engine.submit(fault_server.url(f"/data/{size}.mp4?seed=7"), out).result(30)
    assert sha256_file(out) == sha256_of(size, 7)
    assert res.downloaded_bytes == size
    assert res.resource_size == size
    assert res.http_status == 200
    assert res.etag == f'"7-{size}-0"'
    assert res.headers["content-type"] == "video/mp4"
    assert res.retries == 0
    reqs = fault_server.requests(f"/data/{size}.mp4")
    assert len(reqs) == 1 and reqs[0].range is None


@pytest.mark.parametrize(
    "query, min_requests",
    [
        ("fail=2", 3),                              # 503 twice, then 200
        ("fail=1&fail_status=429&retry_after=0", 2),
        ("fail=1&fail_status=500", 2),
        ("fail=1&fail_status=408", 2),
        ("reset_after=300000", 2),                  # connection reset mid-body
        ("reset_after=100000&times=3", 4),
        ("short=250000", 2),                        # Content-Length longer than the body
        ("stall_after=200000&stall=30", 2),         # stall: low-speed limit fires
        ("range200=1&reset_after=100000", 2),       # 200 + Content-Range is honoured
        ("chunked=1&reset_after=100000", 2),
    ],
)
def test_faults_give_exact_bytes(
    engine: AsyncDownloadEngine, fault_server: FaultServer, tmp_path: Path, query: str, min_requests: int
) -> None:
    size = 1_000_000
    out = tmp_path / "f.bin"
    res = engine.submit(fault_server.url(f"/data/{size}?{query}"), out).result(30)
    assert sha256_file(out) == sha256_of(size)
    reqs = fault_server.requests(f"/data/{size}")
    assert len(reqs) >= min_requests
    assert res.retries == len(reqs) - 1
    # every retry after bytes were written resumes where the file ended
    for prev, cur in zip(reqs, reqs[1:]):
        if prev.status in (200, 206) and prev.bytes_sent and "chunked" not in query:
            assert cur.range == f"bytes={prev.bytes_sent + (int(prev.range[6:].split('-')[0]) if prev.range else 0)}-"


def test_resume_sends_if_range_and_restarts_when_etag_changes(
    engine: AsyncDownloadEngine, fault_server: FaultServer, tmp_path: Path
) -> None:
    """The first reply resets after 100 kB; by the retry the resource has a
    new version: If-Range makes the server send it whole, and the file is
    the new version only, never a mix."""
    size = 500_000
    out = tmp_path / "e.bin"
    res = engine.submit(fault_server.url(f"/data/{size}?reset_after=100000&etag_change=1"), out).result(30)
    reqs = fault_server.requests(f"/data/{size}")
    assert reqs[1].header("If-Range") == f'"0-{size}-0"'
    assert reqs[1].status == 200
    assert res.restarted
    new = content(size, 1000)
    assert out.read_bytes() == new
    assert res.etag == f'"0-{size}-1"'


def test_server_ignoring_ranges_on_resume_restarts_from_zero(
    engine: AsyncDownloadEngine, fault_server: FaultServer, tmp_path: Path
) -> None:
    size = 400_000
    out = tmp_path / "n.bin"
    res = engine.submit(fault_server.url(f"/data/{size}?norange=1&reset_after=150000"), out).result(30)
    assert sha256_file(out) == sha256_of(size)
    assert res.restarted
    reqs = fault_server.requests(f"/data/{size}")
    assert [r.status for r in reqs] == [200, 200]
    assert reqs[1].range == "bytes=150000-"


def test_bounded_range_into_offset(engine: AsyncDownloadEngine, fault_server: FaultServer, tmp_path: Path) -> None:
    size = 300_000
    out = tmp_path / "r.bin"
    out.write_bytes(b"\0" * 10)
    res = engine.submit(fault_server.url(f"/data/{size}"), out, range=(1000, 51000), offset=10).result(30)
    data = out.read_bytes()
    assert data[:10] == b"\0" * 10
    assert data[10:] == content(size)[1000:51000]
    assert res.downloaded_bytes == 50000
    assert fault_server.requests(f"/data/{size}")[0].range == "bytes=1000-50999"


def test_bounded_range_ignored_by_server_is_a_range_error(
    engine: AsyncDownloadEngine, fault_server: FaultServer, tmp_path: Path
) -> None:
    out = tmp_path / "x.bin"
    task = engine.submit(fault_server.url("/data/100000?norange=1"), out, range=(5000, 9000))
    with pytest.raises(RangeError, match="ignored the Range request"):
        task.result(30)
    assert out.stat().st_size == 0          # not a byte of the wrong data


def test_ranges_dropped_half_way_is_a_range_error(
    engine: AsyncDownloadEngine, fault_server: FaultServer, tmp_path: Path
) -> None:
    out = tmp_path / "d.bin"
    url = fault_server.url("/data/200000?drop_ranges_after=1&reset_after=20000")
    task = engine.submit(url, out, range=(100000, 200000), offset=0)
    with pytest.raises(RangeError):
        task.result(30)
    # only the honest first 20000 bytes are in the file
    assert out.read_bytes() == content(200000)[100000:120000]


def test_prefix_of_a_server_without_ranges(engine: AsyncDownloadEngine, fault_server: FaultServer, tmp_path: Path) -> None:
    """range=(0, n) against a server that answers 200: the first n bytes."""
    out = tmp_path / "p.bin"
    res = engine.submit(fault_server.url("/data/100000?norange=1"), out, range=(0, 10241)).result(30)
    assert out.read_bytes() == content(100000)[:10241]
    assert res.downloaded_bytes == 10241


@pytest.mark.parametrize("status", [400, 403, 404, 410])
def test_4xx_fails_at_once(engine: AsyncDownloadEngine, fault_server: FaultServer, tmp_path: Path, status: int) -> None:
    task = engine.submit(fault_server.url(f"/data/1000?status={status}"), tmp_path / "x")
    with pytest.raises(HTTPStatusError) as info:
        task.result(30)
    assert info.value.http_status == status
    assert f"HTTP Error {status}" in str(info.value)
    assert info.value.retries == 0
    assert len(fault_server.requests("/data/1000")) == 1


def test_5xx_exhausts_retries(fault_server: FaultServer, tmp_path: Path) -> None:
    with AsyncDownloadEngine(max_retries=3, retry_base_delay=0.01, retry_max_delay=0.02) as e:
        task = e.submit(fault_server.url("/data/1000?status=503"), tmp_path / "x")
        with pytest.raises(HTTPStatusError) as info:
            task.result(30)
    assert info.value.http_status == 503 and info.value.retries == 3
    assert len(fault_server.requests("/data/1000")) == 4


def test_short_body_exhausts_retries(fault_server: FaultServer, tmp_path: Path) -> None:
    with AsyncDownloadEngine(max_retries=2, retry_base_delay=0.01, retry_max_delay=0.02) as e:
        task = e.submit(fault_server.url("/data/100000?short=1000&times=100"), tmp_path / "x")
        with pytest.raises(ShortBodyError):
            task.result(30)


def test_connection_refused_is_transport_error(tmp_path: Path) -> None:
    with AsyncDownloadEngine(max_retries=1, retry_base_delay=0.01) as e:
        with pytest.raises(NetworkError, match="curl error 7"):
            e.submit("http://127.0.0.1:9/x", tmp_path / "x").result(30)


def test_retry_after_is_honoured(engine: AsyncDownloadEngine, fault_server: FaultServer, tmp_path: Path) -> None:
    engine.submit(fault_server.url("/data/1000?fail=1&fail_status=429&retry_after=1"), tmp_path / "x").result(30)
    first, second = fault_server.requests("/data/1000")
    assert second.started - first.finished >= 0.95


def test_backoff_is_capped_full_jitter(fault_server: FaultServer, tmp_path: Path) -> None:
    """delay_n = uniform(0, min(max, base * 2**n)): with base 0.1 and max
    0.3, the gaps are below 0.1, 0.2, 0.3, 0.3, 0.3 (plus scheduling slack),
    and not all zero."""
    with AsyncDownloadEngine(max_retries=6, retry_base_delay=0.1, retry_max_delay=0.3) as e:
        e.submit(fault_server.url("/data/1000?fail=5"), tmp_path / "x").result(30)
    reqs = fault_server.requests("/data/1000")
    assert len(reqs) == 6
    gaps = [b.started - a.finished for a, b in zip(reqs, reqs[1:])]
    caps = [0.1, 0.2, 0.3, 0.3, 0.3]
    for gap, cap in zip(gaps, caps):
        assert gap <= cap + 0.08, (gaps, caps)
    assert sum(gaps) > 0.02


def test_200_transfers_in_flight_at_once(fault_server: FaultServer, tmp_path: Path) -> None:
    n = 220
    with AsyncDownloadEngine(max_connections=256, max_host_connections=256) as e:
        tasks = [
            e.submit(fault_server.url(f"/data/5000?seed={i}&latency=1500"), tmp_path / f"{i}.bin")
            for i in range(n)
        ]
        for t in tasks:
            t.result(60)
    assert fault_server.max_concurrent >= 200
    for i in range(n):
        assert sha256_file(tmp_path / f"{i}.bin") == sha256_of(5000, i)


def test_connection_limits_hold(fault_server: FaultServer, tmp_path: Path) -> None:
    with AsyncDownloadEngine(max_connections=10, max_host_connections=3) as e:
        tasks = [e.submit(fault_server.url(f"/data/1000?key={i}&latency=200"), tmp_path / f"{i}") for i in range(12)]
        for t in tasks:
            t.result(30)
    assert fault_server.max_concurrent == 3


def test_priority_orders_the_queue(fault_server: FaultServer, tmp_path: Path) -> None:
    with AsyncDownloadEngine(max_connections=1) as e:
        blocker = e.submit(fault_server.url("/data/1000?key=blocker&latency=500"), tmp_path / "b")
        time.sleep(0.1)
        t5 = e.submit(fault_server.url("/data/1000?key=p5"), tmp_path / "5", priority=5)
        t1 = e.submit(fault_server.url("/data/1000?key=p1"), tmp_path / "1", priority=1)
        t3a = e.submit(fault_server.url("/data/1000?key=p3a"), tmp_path / "3a", priority=3)
        t3b = e.submit(fault_server.url("/data/1000?key=p3b"), tmp_path / "3b", priority=3)
        t9 = e.submit(fault_server.url("/data/1000?key=p9"), tmp_path / "9", priority=9)
        t9.set_priority(0)
        for t in (blocker, t5, t1, t3a, t3b, t9):
            t.result(30)
    order = [r.query["key"] for r in fault_server.requests("/data/1000")]
    assert order == ["blocker", "p9", "p1", "p3a", "p3b", "p5"]


def test_gil_is_released_while_waiting(fault_server: FaultServer, tmp_path: Path) -> None:
    counter = 0
    stop = threading.Event()

    def spin() -> None:
        nonlocal counter
        while not stop.is_set():
            counter += 1

    with AsyncDownloadEngine() as e:
        task = e.submit(fault_server.url("/data/1000?latency=1000"), tmp_path / "x")
        th = threading.Thread(target=spin)
        th.start()
        time.sleep(0.05)
        before = counter
        task.wait()
        during = counter - before
        stop.set()
        th.join()
    assert task.done()
    assert during > 10_000   # the spinning thread ran all through the wait


def test_cancel_takes_effect_quickly(fault_server: FaultServer, tmp_path: Path) -> None:
    out = tmp_path / "c.bin"
    with AsyncDownloadEngine() as e:
        task = e.submit(fault_server.url("/data/1000000?stall_after=50000&stall=60"), out, in_place=True)
        deadline = time.monotonic() + 10
        while task.progress().downloaded_bytes < 50000 and time.monotonic() < deadline:
            time.sleep(0.01)
        t0 = time.monotonic()
        task.cancel()
        assert task.wait(5)
        elapsed = time.monotonic() - t0
        assert task.progress().state == "cancelled"
        with pytest.raises(yt_dlp_async.DownloadCancelledError):
            task.result()
    assert elapsed < 2  # not the server's 60 s stall (about 0.1 s on a quiet machine; CI machines are loaded)
    assert out.read_bytes() == content(1000000)[:50000]   # kept, not truncated


def test_close_cancels_and_joins(fault_server: FaultServer, tmp_path: Path) -> None:
    e = AsyncDownloadEngine()
    task = e.submit(fault_server.url("/data/1000000?stall_after=1000&stall=60"), tmp_path / "x")
    time.sleep(0.2)
    t0 = time.monotonic()
    e.close()
    assert time.monotonic() - t0 < 3  # not the server's 60 s stall
    assert e.closed and task.done() and task.progress().state == "cancelled"
    with pytest.raises(yt_dlp_async._engine.EngineError, match="closed"):
        e.submit(fault_server.url("/data/1"), tmp_path / "y")


def test_asyncio_await_without_threads(fault_server: FaultServer, tmp_path: Path) -> None:
    import asyncio

    def client_threads() -> set[str]:
        # the fault server runs in this process: leave its threads out
        return {t.name for t in threading.enumerate() if "process_request" not in t.name and "FaultServer" not in t.name}

    async def main() -> list[yt_dlp_async.DownloadResult]:
        async with AsyncDownloadEngine() as e:
            threads_before = client_threads()
            tasks = [e.submit(fault_server.url(f"/data/20000?seed={i}&latency=100"), tmp_path / f"{i}") for i in range(30)]
            results = await asyncio.gather(*tasks)
            # no thread per task: the engine's one dispatcher (it renames each
            # finished .ytdla-part; submit() starts it) is the only new one
            assert client_threads() - threads_before <= {"yt-dlp-async-dispatcher"}
            return list(results)

    results = asyncio.run(main())
    assert [r.downloaded_bytes for r in results] == [20000] * 30
    for i in range(30):
        assert sha256_file(tmp_path / f"{i}") == sha256_of(20000, i)


def test_asyncio_error_is_raised(fault_server: FaultServer, tmp_path: Path) -> None:
    import asyncio

    async def main() -> None:
        async with AsyncDownloadEngine() as e:
            await e.submit(fault_server.url("/data/10?status=404"), tmp_path / "x")

    with pytest.raises(HTTPStatusError):
        asyncio.run(main())


def test_progress_fields(fault_server: FaultServer, tmp_path: Path) -> None:
    with AsyncDownloadEngine() as e:
        task = e.submit(fault_server.url("/data/2000000?rate=2000000"), tmp_path / "x")
        seen = []
        while not task.wait(0.1):
            seen.append(task.progress())
        final = task.progress()
    mid = [p for p in seen if p.state == "active" and p.downloaded_bytes > 0]
    assert mid, seen
    assert all(p.total_bytes == 2000000 for p in mid)
    assert any(p.speed and 1e6 < p.speed < 4e6 for p in mid)
    assert any(p.eta is not None for p in mid)
    assert final.state == "done" and final.downloaded_bytes == 2000000 and final.eta is None


def test_rate_limit_caps_the_sum(fault_server: FaultServer, tmp_path: Path) -> None:
    with AsyncDownloadEngine(rate_limit=1_000_000) as e:
        t0 = time.monotonic()
        tasks = [e.submit(fault_server.url(f"/data/500000?seed={i}"), tmp_path / f"{i}") for i in range(4)]
        for t in tasks:
            t.result(30)
        elapsed = time.monotonic() - t0
    # 2 MB at 1 MB/s: about 2 s (a burst of 1/20 s is allowed)
    assert elapsed >= 1.8
    for i in range(4):
        assert sha256_file(tmp_path / f"{i}") == sha256_of(500000, i)


def test_write_to_a_pipe(fault_server: FaultServer) -> None:
    r, w = os.pipe()
    data = bytearray()

    def reader() -> None:
        while chunk := os.read(r, 65536):
            data.extend(chunk)

    th = threading.Thread(target=reader)
    th.start()
    with AsyncDownloadEngine(retry_base_delay=0.01) as e:
        e.submit(fault_server.url("/data/300000?reset_after=100000"), fileno=w).result(30)
    os.close(w)
    th.join()
    os.close(r)
    assert bytes(data) == content(300000)


def test_cookies_in_and_out_and_not_across_hosts(
    fault_server: FaultServer, fault_server2: FaultServer, tmp_path: Path
) -> None:
    host = "127.0.0.1"
    jar = [f"{host}\tFALSE\t/\tFALSE\t0\tsession\tabc"]
    with AsyncDownloadEngine() as e:
        res = e.submit(
            fault_server.url("/data/1000?require_cookie=session=abc&set_cookie=fresh=xyz"),
            tmp_path / "a",
            cookies=jar,
        ).result(30)
        assert any(line.split("\t")[5:7] == ["fresh", "xyz"] for line in res.cookies)
        target = fault_server2.url("/headers")
        e.submit(fault_server.url(f"/redirect?to={target}"), tmp_path / "b", cookies=jar).result(30)
    assert fault_server.requests("/redirect")[0].header("Cookie") == "session=abc"
    assert fault_server2.requests("/headers")[0].header("Cookie") is None


def test_headers_are_sent(fault_server: FaultServer, tmp_path: Path) -> None:
    with AsyncDownloadEngine() as e:
        e.submit(
            fault_server.url("/data/10?require_header=X-Test:yes"),
            tmp_path / "a",
            headers={"X-Test": "yes", "User-Agent": "ua/1", "Accept-Encoding": "identity"},
        ).result(30)
    req = fault_server.requests("/data/10")[0]
    assert req.status == 200 and req.header("User-Agent") == "ua/1"


@pytest.mark.parametrize(
    "kwargs, exc, message",
    [
        ({"url": "ftp://127.0.0.1/x"}, ValueError, "unsupported URL scheme 'ftp'"),
        ({"url": "file:///etc/passwd"}, ValueError, "unsupported URL scheme 'file'"),
        ({"headers": {"X-A": "b\r\nInjected: 1"}}, ValueError, "CR, LF or NUL"),
        ({"headers": {"Bad\nName": "v"}}, ValueError, "invalid HTTP header"),
        ({"range": (-1, 10)}, ValueError, "invalid range"),
        ({"range": (10, 5)}, ValueError, "invalid range"),
        ({"path": "/nonexistent-dir/x/y.bin"}, FileNotFoundError, "does not exist"),
    ],
)
def test_bad_input_is_refused_before_writing(
    fault_server: FaultServer, tmp_path: Path, kwargs: dict, exc: type, message: str
) -> None:
    args = {"url": fault_server.url("/data/10"), "path": str(tmp_path / "out.bin")}
    args.update(kwargs)
    with AsyncDownloadEngine() as e:
        with pytest.raises(exc, match=message.replace("(", r"\(")):
            e.submit(args.pop("url"), args.pop("path"), **args)
    assert not (tmp_path / "out.bin").exists()
    assert fault_server.log == []


def test_unwritable_path(fault_server: FaultServer, tmp_path: Path) -> None:
    d = tmp_path / "ro"
    d.mkdir()
    d.chmod(0o500)
    try:
        if os.access(d, os.W_OK):
            pytest.skip("running as a user that can write anywhere")
        with AsyncDownloadEngine() as e, pytest.raises(PermissionError):
            e.submit(fault_server.url("/data/10"), d / "x")
    finally:
        d.chmod(0o700)


def test_redirect_to_other_scheme_is_refused(fault_server: FaultServer, tmp_path: Path) -> None:
    with AsyncDownloadEngine() as e:
        with pytest.raises(NetworkError, match="curl error 1"):
            e.submit(fault_server.url("/redirect?to=ftp://127.0.0.1/x"), tmp_path / "x").result(30)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"max_connections": 0}, "max_connections must be between 1 and 10000"),
        ({"max_connections": 10**6}, "max_connections must be between 1 and 10000"),
        ({"max_host_connections": -3}, "max_host_connections"),
        ({"connect_timeout": 0}, "connect_timeout"),
        ({"max_retries": -1}, "max_retries"),
        ({"rate_limit": -5}, "rate_limit must be >= 0"),
    ],
)
def test_absurd_limits(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        AsyncDownloadEngine(**kwargs)


def test_download_convenience(fault_server: FaultServer, tmp_path: Path) -> None:
    urls = [fault_server.url(f"/data/{1000 + i}.mp4?seed={i}") for i in range(8)]
    results = yt_dlp_async.download(urls, tmp_path, concurrency=3)
    assert [r.downloaded_bytes for r in results] == [1000 + i for i in range(8)]
    for i in range(8):
        assert sha256_file(tmp_path / f"{1000 + i}.mp4") == sha256_of(1000 + i, i)
    assert fault_server.max_concurrent <= 3


def test_download_names_a_dot_dot_url_as_it_names_an_unnamed_one(fault_server: FaultServer, tmp_path: Path) -> None:
    """A URL whose path ends in ".." names no file: it gets download-N like an
    empty path (it raised IsADirectoryError, after the URLs before it had
    started, and left their files empty)."""
    urls = [fault_server.url("/data/2048.mp4?seed=7"), fault_server.url("/data/.."), fault_server.url("/data/.")]
    with pytest.raises(yt_dlp_async.HTTPStatusError):
        yt_dlp_async.download(urls, tmp_path)
    assert sha256_file(tmp_path / "2048.mp4") == sha256_of(2048, 7)
    # the two that failed leave nothing (issue 16: before, two empty files)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["2048.mp4"]


def test_download_creates_its_folder(fault_server: FaultServer, tmp_path: Path) -> None:
    """The README's one-call example names a folder that need not exist yet."""
    target = tmp_path / "new" / "downloads"
    results = yt_dlp_async.download([fault_server.url("/data/2048.mp4?seed=7")], target)
    assert [r.downloaded_bytes for r in results] == [2048]
    assert sha256_file(target / "2048.mp4") == sha256_of(2048, 7)


def test_memory_body_with_retries(engine: AsyncDownloadEngine, fault_server: FaultServer) -> None:
    task = engine.submit(fault_server.url("/data/300000?reset_after=100000&seed=3"), memory=True)
    assert task.body(30) == content(300000, 3)
    assert len(fault_server.requests("/data/300000")) == 2


def test_memory_partial_body_of_a_failed_task(engine: AsyncDownloadEngine, fault_server: FaultServer) -> None:
    """A failed memory task hands over the bytes it received, so that its caller asks for the rest."""
    task = engine.submit(fault_server.url("/data/300000?reset_after=100000&seed=3"), memory=True, max_retries=0)
    with pytest.raises(NetworkError):
        task.body(30)
    assert task.partial_body() == content(300000, 3)[:100000]
    rest = engine.submit(fault_server.url("/data/300000?reset_after=100000&seed=3"), memory=True,
                         range=(100000, None), max_retries=0)
    assert rest.body(30) == content(300000, 3)[100000:]  # the fault fired once: the rest comes whole
    done = engine.submit(fault_server.url("/data/1000"), memory=True)
    done.wait(30)
    with pytest.raises(ValueError, match="not failed"):
        done.partial_body()


def test_memory_body_is_bounded(engine: AsyncDownloadEngine, fault_server: FaultServer) -> None:
    task = engine.submit(fault_server.url("/data/300000"), memory=True, max_memory=100000)
    with pytest.raises(OSError, match="max_memory 100000"):
        task.body(30)


def test_aes128_matches_openssl_cli(tmp_path: Path) -> None:
    import subprocess

    key, iv = bytes(range(16)), bytes(range(16, 32))
    plain = content(100_001, 9)
    (tmp_path / "p").write_bytes(plain)
    subprocess.run(
        ["openssl", "enc", "-aes-128-cbc", "-K", key.hex(), "-iv", iv.hex(), "-in", tmp_path / "p", "-out", tmp_path / "c"],
        check=True,
    )
    cipher = (tmp_path / "c").read_bytes()
    assert yt_dlp_async.aes128_cbc_decrypt(cipher, key, iv) == plain
    assert yt_dlp_async.aes128_cbc_decrypt(cipher, key, iv, unpad=False)[: len(plain)] == plain
    with pytest.raises(ValueError, match="16-byte key"):
        yt_dlp_async.aes128_cbc_decrypt(cipher, key[:8], iv)
    with pytest.raises(ValueError, match="multiple of the AES block size"):
        yt_dlp_async.aes128_cbc_decrypt(cipher[:-1], key, iv)
