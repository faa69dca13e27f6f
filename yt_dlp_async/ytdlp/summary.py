"""The one line that ends a yt-dlp run made through the engine.

    [async] 3 files, 6.0 MiB in 2.1 s (2.9 MiB/s); 2 retries, 12 connections, 0 fallbacks

Printed with ``YoutubeDL.to_screen`` (so ``-q`` silences it) when
``YoutubeDL.download`` returns, once per call, only where a person reads it:
on a terminal when two or more downloads went through the engine, and under
``-v`` when at least one went through the engine or was handed back to
yt-dlp's own downloader.  Never in a pipe without ``-v`` (a script reading
yt-dlp's output sees only yt-dlp's lines), never for a run that downloaded
nothing (``--simulate``).  The figures:

* files: engine downloads that succeeded (boundary.guarded's engine run
  returned true); a failed one is listed as ``N failed`` after them;
* bytes, connections: what the shared engines counted in C during the run
  (``AsyncDownloadEngine.stats()``: bytes received and written, connections
  libcurl opened);
* retries: the engine's own retries (C) plus the retries of yt-dlp's
  ``--retries``/``--fragment-retries`` that our downloaders report (``retried``
  where they call ``FileDownloader.report_retry``: a retry that follows, not the
  last error; a per-call count, safe when yt-dlp runs fragments in threads);
* fallbacks: ``dl()`` calls whose download our code handed to yt-dlp's own
  downloader (fallback.hand_back, or boundary.guarded's fallback);
* time: from the first engine download's start to the end of the last.

Patched (patches.py applies it after playlist.py, so it is the outermost):

  YoutubeDL.download     opens a Run on the YoutubeDL, prints the line at the end

The engines are process-wide (shared_engine.py): two YoutubeDL runs at the
same time in one process see each other's bytes and connections.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from . import internals, shared_engine

RUN_ATTR = '_yt_dlp_async_run'
_UNITS = ('B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB')


@dataclass
class Run:
    """The counters of one ``YoutubeDL.download`` call."""

    engine_start: dict[int, Any] = field(default_factory=dict)   # id(engine) -> EngineStats at the start
    files: int = 0
    failures: int = 0
    fallbacks: int = 0
    retries: int = 0              # yt-dlp-level retries reported by our downloaders
    first_start: float | None = None
    last_end: float | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def engine_downloads(self) -> int:
        return self.files + self.failures


def format_bytes(n: float) -> str:
    """1536 -> '1.5 KiB' (binary units, as yt-dlp's format_bytes; one decimal)."""
    value = float(n)
    for unit in _UNITS:
        if abs(value) < 1024 or unit == _UNITS[-1]:
            return f'{int(value)} B' if unit == 'B' else f'{value:.1f} {unit}'
        value /= 1024
    return f'{value:.1f} {_UNITS[-1]}'  # not reached


def _engine_snapshot() -> dict[int, Any]:
    snapshot = {}
    for engine in shared_engine.engines():
        try:
            snapshot[id(engine)] = engine.stats()
        except Exception:
            pass
    return snapshot


def _engine_delta(start: dict[int, Any]) -> tuple[int, int, int]:
    """(bytes, retries, connections) the shared engines counted since ``start``."""
    total_bytes = retries = connections = 0
    for key, stats in _engine_snapshot().items():
        before = start.get(key)
        total_bytes += stats.bytes - (before.bytes if before else 0)
        retries += stats.retries - (before.retries if before else 0)
        connections += stats.connections - (before.connections if before else 0)
    return max(total_bytes, 0), max(retries, 0), max(connections, 0)


def current(ydl: Any) -> Run | None:
    run = getattr(ydl, RUN_ATTR, None) if ydl is not None else None
    return run if isinstance(run, Run) else None


# ------------------------------------------------------------- what is counted
def download_started(ydl: Any) -> None:
    """An engine download starts now (boundary.guarded): the run's time counts from the first."""
    now = time.monotonic()
    run = current(ydl)
    if run is not None:
        with run.lock:
            if run.first_start is None or now < run.first_start:
                run.first_start = now


def download_ended(ydl: Any, ok: bool) -> None:
    run = current(ydl)
    if run is None:
        return
    now = time.monotonic()
    with run.lock:
        if ok:
            run.files += 1
        else:
            run.failures += 1
        if run.last_end is None or now > run.last_end:
            run.last_end = now


def retried(ydl: Any) -> None:
    """A yt-dlp-level retry follows (``report_retry`` with count <= retries)."""
    run = current(ydl)
    if run is not None:
        with run.lock:
            run.retries += 1


def counting_report_retry(fd: Any) -> Callable[..., Any]:
    """``fd.report_retry`` for a RetryManager, counting each retry that follows (not the last error)."""
    def report_retry(err: Any, count: int, retries: float, *args: Any, **kwargs: Any) -> Any:
        if count <= retries:
            retried(getattr(fd, 'ydl', None))
        return fd.report_retry(err, count, retries, *args, **kwargs)
    return report_retry


def fell_back(ydl: Any) -> None:
    """One dl() call's download went to yt-dlp's own downloader."""
    run = current(ydl)
    if run is not None:
        with run.lock:
            run.fallbacks += 1


# ------------------------------------------------------------------- the line
def line(run: Run) -> str:
    total_bytes, engine_retries, connections = _engine_delta(run.engine_start)
    seconds = 0.0
    if run.first_start is not None and run.last_end is not None:
        seconds = max(run.last_end - run.first_start, 0.0)
    speed = f' ({format_bytes(total_bytes / seconds)}/s)' if seconds > 0 else ''
    failed = f' ({run.failures} failed)' if run.failures else ''
    shown = f'{seconds:.2f}' if seconds < 1 else f'{seconds:.1f}'
    return (f'[async] {_count(run.files, "file")}{failed}, {format_bytes(total_bytes)} in {shown} s{speed}; '
            f'{_count(run.retries + engine_retries, "retry", "retries")}, {_count(connections, "connection")}, '
            f'{_count(run.fallbacks, "fallback")}')


def _count(n: int, one: str, many: str | None = None) -> str:
    """``1 file``, ``3 files``."""
    return f'{n} {one}' if n == 1 else f'{n} {many or one + "s"}'


def _wanted(ydl: Any, run: Run) -> bool:
    """Only where a person reads it: on a terminal, or under -v; never for a run with nothing to count."""
    params = getattr(ydl, 'params', None) or {}
    if run.engine_downloads == 0 and run.fallbacks == 0:
        return False
    if params.get('verbose'):
        return True
    from .console import is_terminal
    return run.engine_downloads >= 2 and is_terminal(ydl, 'screen')


def report(ydl: Any, run: Run) -> None:
    if internals.check() is not None or not _wanted(ydl, run):
        return
    ydl.to_screen(line(run))


def make_download(original: Callable[..., Any]) -> Callable[..., Any]:
    """The wrapper of ``YoutubeDL.download``: one Run per outermost call."""
    def download(self: Any, *args: Any, **kwargs: Any) -> Any:
        if current(self) is not None:
            return original(self, *args, **kwargs)
        run = Run(engine_start=_engine_snapshot())
        setattr(self, RUN_ATTR, run)
        interrupted = False
        try:
            return original(self, *args, **kwargs)
        except KeyboardInterrupt:
            interrupted = True
            raise
        finally:
            try:
                delattr(self, RUN_ATTR)
            except AttributeError:
                pass
            if not interrupted:
                try:
                    report(self, run)
                except Exception:  # never break yt-dlp's exit
                    pass
    return download
