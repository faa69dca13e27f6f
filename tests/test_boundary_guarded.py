"""Issue 16, case 17: ``boundary.guarded`` and the run summary.

A download that succeeded to stdout grows no file, so before the fix an
exception raised by the summary bookkeeping after ``engine_run()`` returned
sent the download to yt-dlp's own downloader: the bytes went out twice.
"""

from __future__ import annotations

from typing import Any

import pytest

from yt_dlp_async.ytdlp import boundary, summary


class _FD:
    """What guarded() reads of a downloader: ``ydl`` and report_warning."""

    def __init__(self) -> None:
        self.ydl = None
        self.warnings: list[str] = []

    def report_warning(self, message: str) -> None:
        self.warnings.append(message)


def test_summary_failure_after_success_never_runs_the_download_again(monkeypatch: pytest.MonkeyPatch) -> None:
    runs: list[str] = []

    def broken_summary(ydl: Any, ok: bool) -> None:
        raise RuntimeError('summary bookkeeping failed')

    monkeypatch.setattr(summary, 'download_ended', broken_summary)
    fd = _FD()

    def engine_run() -> bool:
        runs.append('engine')
        return True

    def native_run() -> bool:
        runs.append('native')
        return True

    ok = boundary.guarded(fd, 'http', boundary.Snapshot.around('-'), engine_run, native_run)
    assert runs == ['engine']          # before the fix: ['engine', 'native']
    assert ok is True
    assert any('summary bookkeeping failed' in w for w in fd.warnings), fd.warnings


def test_engine_failure_before_a_byte_still_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    runs: list[str] = []
    ended: list[bool] = []
    monkeypatch.setattr(summary, 'download_ended', lambda ydl, ok: ended.append(ok))
    fd = _FD()

    def engine_run() -> bool:
        runs.append('engine')
        raise ValueError('a bug of ours')

    def native_run() -> bool:
        runs.append('native')
        return True

    assert boundary.guarded(fd, 'http', boundary.Snapshot.around('-'), engine_run, native_run) is True
    assert runs == ['engine', 'native']
    assert ended == []                 # the handed-back download is yt-dlp's, not counted as ours
    assert any('ValueError: a bug of ours' in w for w in fd.warnings), fd.warnings
