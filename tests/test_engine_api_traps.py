"""Issue 16, cases 13-16: the Python API cannot leave a wrong file.

``yt_dlp_async.download`` and ``AsyncDownloadEngine.submit(url, path)`` write
to ``PATH.ytdla-part`` (state in ``PATH.ytdla-part.ctl``) and rename on
success: the exact resource under the final name, or the old file / nothing.
Every test downloads from tests/faultserver.py on 127.0.0.1 and checks bytes.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from faultserver import FaultServer, sha256_of

import yt_dlp_async
from yt_dlp_async import AsyncDownloadEngine, DownloadProgress, DownloadTask


def sha256_file(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


# -- case 13: a smaller download over a larger file ---------------------------

def test_download_over_a_larger_file_leaves_exactly_the_resource(fault_server: FaultServer, tmp_path: Path) -> None:
    old = tmp_path / "4000000.bin"
    with open(old, "wb") as f:
        f.truncate(50 * 1024 * 1024)        # 52,428,800 bytes of an older file
    [res] = yt_dlp_async.download([fault_server.url("/data/4000000.bin?seed=3")], tmp_path)
    assert os.path.getsize(old) == 4_000_000 == res.downloaded_bytes
    assert sha256_file(old) == sha256_of(4_000_000, 3)
    assert leftovers(tmp_path) == ["4000000.bin"]


def test_submit_over_a_larger_file(fault_server: FaultServer, tmp_path: Path) -> None:
    out = tmp_path / "a.bin"
    out.write_bytes(b"x" * 3_000_000)
    with AsyncDownloadEngine() as engine:
        res = engine.submit(fault_server.url("/data/1000000?seed=4"), out).result(30)
    assert res.downloaded_bytes == os.path.getsize(out) == 1_000_000
    assert sha256_file(out) == sha256_of(1_000_000, 4)
    assert res.path == str(out)
    assert leftovers(tmp_path) == ["a.bin"]


def test_in_place_keeps_the_old_contract(fault_server: FaultServer, tmp_path: Path) -> None:
    """in_place=True (the yt-dlp plugin's way) writes into the file as it is."""
    out = tmp_path / "a.bin"
    out.write_bytes(b"x" * 300)
    with AsyncDownloadEngine() as engine:
        res = engine.submit(fault_server.url("/data/100"), out, in_place=True).result(30)
        assert res.downloaded_bytes == 100 and os.path.getsize(out) == 300
        with pytest.raises(ValueError, match="in_place=True"):
            engine.submit(fault_server.url("/data/100"), out, range=(0, 10), in_place=False)


def test_downloaded_bytes_of_a_range_and_an_empty_resource(fault_server: FaultServer, tmp_path: Path) -> None:
    with AsyncDownloadEngine() as engine:
        part = engine.submit(fault_server.url("/data/5000"), tmp_path / "r.bin", range=(1000, 3000)).result(30)
        empty = engine.submit(fault_server.url("/data/0"), tmp_path / "e.bin").result(30)
    assert part.downloaded_bytes == 2000
    assert empty.downloaded_bytes == 0 and (tmp_path / "e.bin").read_bytes() == b""


# -- case 14: an interrupted split download -----------------------------------

def test_interrupted_split_download_resumes_and_cleans_up(fault_server: FaultServer, tmp_path: Path) -> None:
    size = 6 * 1024 * 1024
    url = fault_server.url(f"/data/{size}.bin?seed=5&rate=1000000&key=resume")
    out = tmp_path / "big.bin"
    with AsyncDownloadEngine() as engine:
        task = engine.submit(url, out, connections=4, min_piece=256 * 1024)
        deadline = time.monotonic() + 30
        while task.progress().downloaded_bytes < 1_500_000 and time.monotonic() < deadline:
            time.sleep(0.05)
        task.cancel()
        with pytest.raises(yt_dlp_async.DownloadCancelledError):
            task.result(10)
        assert task.cancelled()
    assert not out.exists()                              # before: a sparse file under the final name
    assert leftovers(tmp_path) == ["big.bin.ytdla-part", "big.bin.ytdla-part.ctl"]
    before = len(fault_server.requests(f"/data/{size}.bin"))
    with AsyncDownloadEngine() as engine:
        task = engine.submit(fault_server.url(f"/data/{size}.bin?seed=5&key=resume"), out, connections=4,
                             min_piece=256 * 1024)
        res = task.result(60)
    assert task.resumed_bytes >= 1_000_000                 # before: it started over
    assert res.downloaded_bytes == size
    assert sha256_file(out) == sha256_of(size, 5)
    assert leftovers(tmp_path) == ["big.bin"]              # before: the state file stayed
    again = fault_server.requests(f"/data/{size}.bin")[before:]
    assert again and all(r.range is not None for r in again)
    assert sum(1 for r in again if r.range is not None and r.range.startswith("bytes=0-")) <= 1


# -- case 15: errors leave nothing under the final name ---------------------

def test_404_and_refused_leave_no_file(fault_server: FaultServer, tmp_path: Path) -> None:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    with AsyncDownloadEngine(max_retries=0) as engine:
        t404 = engine.submit(fault_server.url("/nothing-here"), tmp_path / "a.bin")
        tref = engine.submit(f"http://127.0.0.1:{closed_port}/x", tmp_path / "b.bin")
        with pytest.raises(yt_dlp_async.HTTPStatusError):
            t404.result(30)
        with pytest.raises(yt_dlp_async.NetworkError):
            tref.result(30)
    assert leftovers(tmp_path) == []                       # before: two 0-byte files


def test_a_failure_keeps_the_old_file(fault_server: FaultServer, tmp_path: Path) -> None:
    out = tmp_path / "a.bin"
    out.write_bytes(b"the old one")
    with AsyncDownloadEngine(max_retries=0) as engine:
        with pytest.raises(yt_dlp_async.AsyncDownloadError):
            engine.submit(fault_server.url("/data/100000?status=500"), out).result(30)
    assert out.read_bytes() == b"the old one"
    assert leftovers(tmp_path) == ["a.bin"]


# -- case 16: progress callback, a real Future, names -------------------------

def test_progress_callback_and_future_protocol(fault_server: FaultServer, tmp_path: Path) -> None:
    seen: list[tuple[str, int]] = []
    threads: set[str] = set()

    def on_progress(task: DownloadTask, p: DownloadProgress) -> None:
        seen.append((p.state, p.downloaded_bytes))
        threads.add(threading.current_thread().name)

    done: list[Any] = []
    with AsyncDownloadEngine() as engine:
        task = engine.submit(fault_server.url("/data/2000000?rate=2000000"), tmp_path / "p.bin",
                             connections=1, on_progress=on_progress, progress_interval=0.1)   # about 1 s
        assert isinstance(task, concurrent.futures.Future)
        task.add_done_callback(done.append)
        finished, _ = concurrent.futures.wait([task], timeout=30)
        assert finished == {task}
        assert task.exception() is None and not task.cancelled()
        assert [f.result().downloaded_bytes for f in concurrent.futures.as_completed([task], 5)] == [2000000]
        failing = engine.submit(fault_server.url("/data/10?status=404"), tmp_path / "q.bin")
        assert isinstance(failing.exception(30), yt_dlp_async.HTTPStatusError)

        async def via_asyncio() -> int:
            t = engine.submit(fault_server.url("/data/1000"), tmp_path / "r.bin")
            return (await asyncio.wrap_future(t)).downloaded_bytes
        assert asyncio.run(via_asyncio()) == 1000
    assert done == [task]
    assert seen[-1] == ("done", 2000000)
    assert len(seen) >= 3 and seen[0][1] < 2000000        # called while it ran, then at the end
    assert threads == {"yt-dlp-async-dispatcher"}


def test_a_cancelled_task_is_a_cancelled_future(fault_server: FaultServer, tmp_path: Path) -> None:
    with AsyncDownloadEngine() as engine:
        task = engine.submit(fault_server.url("/data/5000000?rate=500000"), tmp_path / "c.bin", connections=1)
        time.sleep(0.2)
        assert task.running()
        assert task.cancel() is True
        finished, _ = concurrent.futures.wait([task], timeout=10)
        assert finished == {task} and task.cancelled()
        with pytest.raises(concurrent.futures.CancelledError):
            task.result()
        with pytest.raises(yt_dlp_async.DownloadCancelledError):
            task.exception()
        assert task.cancel() is True          # already cancelled
    assert leftovers(tmp_path) == []          # one connection saves no state: nothing to resume


def test_error_names_shadow_nothing() -> None:
    import asyncio as aio

    import yt_dlp.networking.exceptions
    import yt_dlp.utils
    theirs = {yt_dlp.utils.DownloadError, yt_dlp.utils.ContentTooShortError,
              yt_dlp.networking.exceptions.TransportError, aio.CancelledError,
              concurrent.futures.CancelledError}
    their_names = {cls.__name__ for cls in theirs}
    for name in yt_dlp_async.__all__:
        obj = getattr(yt_dlp_async, name)
        if isinstance(obj, type) and issubclass(obj, BaseException) and obj.__name__ in their_names:
            assert any(issubclass(obj, t) for t in theirs if t.__name__ == obj.__name__), name
    assert issubclass(yt_dlp_async.DownloadCancelledError, concurrent.futures.CancelledError)
    assert issubclass(yt_dlp_async.DownloadCancelledError, yt_dlp_async.AsyncDownloadError)
    for old in ("DownloadError", "CancelledError", "ContentTooShortError", "TransportError"):
        with pytest.raises(AttributeError, match="renamed"):
            getattr(yt_dlp_async, old)


def test_a_name_near_name_max_still_downloads(fault_server: FaultServer, tmp_path: Path) -> None:
    """PATH.ytdla-part.ctl would pass NAME_MAX (255): a short hidden temporary name instead."""
    out = tmp_path / ("v" * 250 + ".mp4")
    with AsyncDownloadEngine() as engine:
        task = engine.submit(fault_server.url("/data/300000?seed=8"), out)
        assert task.part_path is not None and len(os.path.basename(task.part_path)) < 40
        res = task.result(30)
    assert res.path == str(out) and sha256_file(out) == sha256_of(300000, 8)
    assert leftovers(tmp_path) == [out.name]


def test_the_dispatcher_thread_ends_with_its_tasks(fault_server: FaultServer, tmp_path: Path) -> None:
    """An engine nobody closes keeps no thread once its tasks have ended."""
    def dispatchers() -> int:
        return sum(1 for t in threading.enumerate() if t.name == "yt-dlp-async-dispatcher")

    engine = AsyncDownloadEngine()
    try:
        for i in range(3):
            done: list[Any] = []
            task = engine.submit(fault_server.url(f"/data/{1000 + i}?seed={i}"), tmp_path / f"{i}.bin")
            task.add_done_callback(done.append)
            assert task.result(30).downloaded_bytes == 1000 + i
            deadline = time.monotonic() + 10
            while (dispatchers() or not done) and time.monotonic() < deadline:
                time.sleep(0.02)
            assert dispatchers() == 0 and done == [task]
            assert sha256_file(tmp_path / f"{i}.bin") == sha256_of(1000 + i, i)
    finally:
        engine.close()
