"""A reply's validators are visible while its body streams; ``hold_new_validator``.

The in-order yt-dlp path stores the ETag / Last-Modified of a ``.part``
beside it before the first byte of a reply reaches it (issue 9, item 10):
the engine publishes them as soon as the reply's headers are accepted, and
can hold the body until the caller has stored them.  Every test talks to the
fault server on loopback and checks the file's bytes and the request log.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Iterator

import pytest
from faultserver import FaultServer, content, sha256_of

from yt_dlp_async import AsyncDownloadEngine, DownloadProgress, DownloadTask

SIZE = 1_000_000


@pytest.fixture
def engine() -> Iterator[AsyncDownloadEngine]:
    with AsyncDownloadEngine(retry_base_delay=0.05, retry_max_delay=0.2, max_retries=2, stall_timeout=5) as e:
        yield e


def poll(task: DownloadTask, ready: Callable[[DownloadProgress], bool], timeout: float = 20) -> DownloadProgress:
    """The first progress snapshot for which ``ready`` holds (fails after ``timeout``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        progress = task.progress()
        if ready(progress):
            return progress
        assert not progress.finished, progress
        time.sleep(0.02)
    raise AssertionError(f'not reached in {timeout} s: {task.progress()}')


def test_validators_are_visible_while_the_body_streams(
        engine: AsyncDownloadEngine, fault_server: FaultServer, tmp_path: Path) -> None:
    out = tmp_path / 'a.bin'
    task = engine.submit(fault_server.data_url(SIZE, 'mp4', seed=5, rate=200_000), out)
    streaming = poll(task, lambda p: p.downloaded_bytes > 0)
    assert streaming.state == 'active' and streaming.downloaded_bytes < SIZE
    assert streaming.etag == f'"5-{SIZE}-0"'
    assert streaming.last_modified is not None and streaming.last_modified.endswith('GMT')
    assert streaming.hold is None              # not asked for
    task.cancel()
    task.wait(10)


def test_held_reply_writes_nothing_until_released(
        engine: AsyncDownloadEngine, fault_server: FaultServer, tmp_path: Path) -> None:
    out = tmp_path / 'a.bin'
    task = engine.submit(fault_server.data_url(SIZE, 'mp4', seed=6), out, hold_new_validator=True)
    held = poll(task, lambda p: p.hold is not None)
    assert held.etag == f'"6-{SIZE}-0"' and held.resource_size == SIZE
    number, position = held.hold
    assert position == 0
    task.release(number + 1)                   # a stale number releases nothing
    time.sleep(0.5)
    still = task.progress()
    assert still.hold == held.hold and still.downloaded_bytes == 0 and out.stat().st_size == 0
    task.release(number)
    result = task.result(30)
    assert result.downloaded_bytes == SIZE and sha256_of(SIZE, 6) == _sha(out)
    assert len(fault_server.requests(f'/data/{SIZE}.mp4')) == 1


def test_resume_under_its_own_validator_is_not_held(
        engine: AsyncDownloadEngine, fault_server: FaultServer, tmp_path: Path) -> None:
    out = tmp_path / 'a.bin'
    kept = 300_000
    out.write_bytes(content(SIZE, 7)[:kept])
    etag = f'"7-{SIZE}-0"'
    task = engine.submit(fault_server.data_url(SIZE, 'mp4', seed=7), out, range=(kept, None),
                         if_range=etag, hold_new_validator=True)
    assert task.result(30).downloaded_bytes == SIZE - kept    # never waited for a release
    assert _sha(out) == sha256_of(SIZE, 7)
    request, = fault_server.requests(f'/data/{SIZE}.mp4')
    assert request.status == 206 and request.header('If-Range') == etag


def test_changed_resource_on_resume_is_held_at_byte_zero(
        engine: AsyncDownloadEngine, fault_server: FaultServer, tmp_path: Path) -> None:
    # the server answers 200 to the If-Range: the engine restarts from byte 0,
    # and that new reply is held at file position 0 before overwriting anything
    out = tmp_path / 'a.bin'
    old = b'x' * 300_000
    out.write_bytes(old)
    task = engine.submit(fault_server.data_url(SIZE, 'mp4', seed=8), out, range=(len(old), None),
                         if_range='"an-older-version"', hold_new_validator=True)
    held = poll(task, lambda p: p.hold is not None)
    assert held.hold[1] == 0 and held.etag == f'"8-{SIZE}-0"'
    assert out.read_bytes() == old             # nothing of the new reply yet
    task.release(held.hold[0])
    assert task.result(30).restarted
    assert _sha(out) == sha256_of(SIZE, 8)


def test_hold_is_refused_where_nobody_could_store_a_validator(
        engine: AsyncDownloadEngine, fault_server: FaultServer) -> None:
    with pytest.raises(ValueError, match='hold_new_validator'):
        engine.submit(fault_server.data_url(100), memory=True, hold_new_validator=True)


def _sha(path: Path) -> str:
    import hashlib
    return hashlib.sha256(path.read_bytes()).hexdigest()
