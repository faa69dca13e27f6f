"""The portable build (docs/portability.md): one switch, YTDLP_ASYNC_PORTABLE=1 at build time.

In the default suite these tests check the Linux build (eventfd); ``make
test-portable`` builds the extension with ``YTDLP_ASYNC_PORTABLE=1`` into
``.venv-portable`` and runs them with ``YTDLP_ASYNC_EXPECT_PORTABLE=1``: the
module must then say so, must not import eventfd at all, and its wake-ups must
be a non-blocking pipe, while asyncio waits still work.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import re
import stat
from pathlib import Path

import pytest

from faultserver import sha256_of
from ytdlp_support import require_engine

PORTABLE = os.environ.get("YTDLP_ASYNC_EXPECT_PORTABLE") == "1"


@pytest.fixture(autouse=True)
def _engine_imports() -> None:
    require_engine()


def test_build_features_say_which_build() -> None:
    import yt_dlp_async
    from yt_dlp_async import _engine

    expected = ("portable", "wakeup:pipe") if PORTABLE else ("linux", "wakeup:eventfd")
    assert _engine.BUILD_FEATURES == expected
    assert yt_dlp_async.build_features() == expected


def test_the_extension_imports_eventfd_only_in_the_linux_build() -> None:
    from yt_dlp_async import _engine

    binary = Path(_engine.__file__).read_bytes()
    # the dynamic symbol table names an imported function as "eventfd\0"
    imports_eventfd = re.search(rb"(?<![\w:])eventfd\x00", binary) is not None
    assert imports_eventfd is not PORTABLE


def test_wakeup_fds_are_a_pipe_or_an_eventfd() -> None:
    from yt_dlp_async import _engine

    rfd, wfd = _engine.wakeup_fds()
    try:
        for fd in {rfd, wfd}:
            assert fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_NONBLOCK
            assert fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC
        if PORTABLE:
            assert rfd != wfd and stat.S_ISFIFO(os.fstat(rfd).st_mode)
        else:
            assert rfd == wfd and not stat.S_ISFIFO(os.fstat(rfd).st_mode)
        with pytest.raises(BlockingIOError):
            os.read(rfd, 8)  # nothing pending yet
    finally:
        os.close(rfd)
        if wfd != rfd:
            os.close(wfd)


def test_engine_wakes_the_subscribed_fd(fault_server, tmp_path: Path) -> None:
    import yt_dlp_async
    from yt_dlp_async import _engine

    rfd, wfd = _engine.wakeup_fds()
    try:
        with yt_dlp_async.AsyncDownloadEngine() as engine:
            engine._engine.subscribe(wfd)
            task = engine.submit(fault_server.url("/data/20000?seed=3"), tmp_path / "w.bin")
            task.result(30)
            assert len(os.read(rfd, 4096)) >= 1  # the finish wrote a wake-up
            engine._engine.unsubscribe(wfd)
    finally:
        os.close(rfd)
        if wfd != rfd:
            os.close(wfd)
    assert (tmp_path / "w.bin").read_bytes() and task.result().downloaded_bytes == 20000


def test_asyncio_waits_through_the_build_wakeup(fault_server, tmp_path: Path) -> None:
    import yt_dlp_async

    sizes = [40_000, 90_000, 150_000]

    async def main() -> list[int]:
        async with yt_dlp_async.AsyncDownloadEngine() as engine:
            tasks = [engine.submit(fault_server.url(f"/data/{n}?seed={i}&latency=50"), tmp_path / f"{i}.bin")
                     for i, n in enumerate(sizes)]
            return [r.downloaded_bytes for r in await asyncio.gather(*tasks)]

    assert asyncio.run(main()) == sizes
    import hashlib
    for i, n in enumerate(sizes):
        assert hashlib.sha256((tmp_path / f"{i}.bin").read_bytes()).hexdigest() == sha256_of(n, i)
