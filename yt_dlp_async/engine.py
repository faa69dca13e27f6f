"""The public engine API over the C extension ``yt_dlp_async._engine``.

An :class:`AsyncDownloadEngine` runs one libcurl multi loop on a thread of
its own.  :meth:`AsyncDownloadEngine.submit` queues a download and returns a
:class:`DownloadTask`, which can be waited for (the GIL is released while
waiting), polled for :class:`DownloadProgress`, cancelled, or awaited from
asyncio without a thread per task (each event loop watches an eventfd of
its own that the engine writes to when a task finishes; a non-blocking pipe
in the portable build, see docs/portability.md).  :meth:`AsyncDownloadEngine.stats`
returns the engine's counters as :class:`EngineStats`.

A task is a :class:`concurrent.futures.Future`.  A whole resource to a path is
written to ``PATH.ytdla-part`` and renamed to ``PATH`` when complete (the
exact resource under the final name, or nothing); the rename, done callbacks
and ``on_progress`` run on one dispatcher thread per engine when no caller
observes the end first.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import hashlib
import logging
import os
import select
import stat
import struct
import threading
import time
import weakref
from dataclasses import dataclass, field
from typing import Any, Callable, Generator, Iterable, Mapping, Sequence, Tuple, Union

from . import _engine
from .errors import ERROR_KINDS, AsyncDownloadError

HeadersArg = Union[Mapping[str, str], Iterable[Tuple[str, str]], None]
ProgressCallback = Callable[["DownloadTask", "DownloadProgress"], None]

LOGGER = logging.getLogger("yt_dlp_async")

#: Written beside the target while a download runs (``in_place=False``), then
#: renamed to the target; not yt-dlp's ``.part`` nor the plugin's ``.part-async``.
PART_SUFFIX = ".ytdla-part"
#: The resume state (finished ranges + validators) beside the temporary file.
STATE_SUFFIX = ".ctl"

__all__ = [
    "AsyncDownloadEngine",
    "DownloadProgress",
    "DownloadResult",
    "DownloadTask",
    "Engine",
    "EngineStats",
    "SegmentProgress",
    "build_features",
    "curl_version",
    "download",
]


def curl_version() -> str:
    """libcurl's version string, e.g. ``libcurl/7.88.1 OpenSSL/3.0.19 ...``."""
    return _engine.curl_version()


def body_bytes_to_python() -> int:
    """Body bytes of ``memory=True`` tasks handed to Python as ``bytes`` so far
    (:meth:`DownloadTask.body`), in this process.  A debug count: bodies
    appended with :meth:`DownloadTask.append_body` never reach Python."""
    return int(_engine.body_bytes_to_python())


def build_features() -> tuple[str, ...]:
    """How the extension was built: ``('linux', 'wakeup:eventfd')``, or
    ``('portable', 'wakeup:pipe')`` when built with ``YTDLP_ASYNC_PORTABLE=1``."""
    return tuple(_engine.BUILD_FEATURES)


@dataclass(frozen=True)
class EngineStats:
    """What an engine did since it was created (:meth:`AsyncDownloadEngine.stats`).

    Counted by the engine thread in C: ``files`` and ``failures`` are the
    submitted tasks that finished done / failed (cancelled ones are neither);
    ``bytes`` are the bytes received and written by every attempt (a retry
    that resumes does not count the bytes before it again); ``retries`` the
    engine's own retries; ``connections`` the connections libcurl opened
    (``CURLINFO_NUM_CONNECTS`` summed: a reused connection is not counted
    again); ``seconds`` from the first counted task's submit to the last
    one's end.  (Fallbacks to yt-dlp's own downloader are counted by the
    yt-dlp summary line, not here: the engine never hands a download back.)
    """

    files: int = 0
    bytes: int = 0
    seconds: float = 0.0
    retries: int = 0
    connections: int = 0
    failures: int = 0

    @property
    def speed(self) -> float | None:
        """bytes / seconds, None when no time passed."""
        return self.bytes / self.seconds if self.seconds > 0 else None


@dataclass(frozen=True)
class DownloadProgress:
    """A snapshot of one task, as :meth:`DownloadTask.progress` returns it."""

    state: str
    downloaded_bytes: int
    total_bytes: int | None
    resource_size: int | None
    speed: float | None
    eta: float | None
    elapsed: float
    retries: int
    http_status: int | None
    #: validators of the reply being written, known once its headers are
    #: accepted (before its first body byte); None when it has none
    etag: str | None = None
    last_modified: str | None = None
    #: ``hold_new_validator``: (number, file position of its first byte) of
    #: the reply whose body waits for :meth:`DownloadTask.release`, else None
    hold: tuple[int, int] | None = None

    @property
    def finished(self) -> bool:
        return self.state in ("done", "failed", "cancelled")


@dataclass(frozen=True)
class SegmentProgress:
    """One connection of a segmented download (``connections`` > 1)."""

    start: int              # first resource byte of its range
    end: int | None         # one past its last byte (None: to the end)
    downloaded_bytes: int
    state: str
    speed: float
    retries: int


@dataclass(frozen=True)
class ConnectionReport:
    """How many connections a split download (``connections`` > 1 or
    ``"auto"``) used, and why (docs/adaptive.md)."""

    history: tuple[int, ...]   # the targets in order, e.g. (1, 2, 8, 16)
    peak: int                  # most connections transferring at once
    target: int                # the target now (at the end: the last one)
    note: str                  # why: "max", "no-gain", "no-ranges", "fixed", ...
    adaptive: bool             # "auto" (else a fixed number)


@dataclass(frozen=True)
class DownloadResult:
    """What a finished task returns.

    ``downloaded_bytes`` is the number of bytes of the resource (or of the
    ``range`` asked for) that the file holds when the task is done, bytes
    found done by a resume included: for a whole resource to a ``path`` it
    is the size of the file under ``path``.  ``path`` is the final name.
    """

    url: str
    effective_url: str
    path: str | None
    http_status: int
    downloaded_bytes: int
    resource_size: int | None
    headers: dict[str, str] = field(repr=False)
    etag: str | None
    last_modified: str | None
    cookies: list[str] = field(repr=False)
    retries: int
    restarted: bool
    elapsed: float
    #: most connections at once, the targets in order, and why (split
    #: downloads; a plain transfer is one connection, note None)
    connections_peak: int = 1
    connections_history: tuple[int, ...] = (1,)
    connections_note: str | None = None


def _parse_headers(raw: bytes) -> dict[str, str]:
    """The final response's header block -> {lower-case name: value}."""
    headers: dict[str, str] = {}
    for line in raw.decode("latin-1").split("\n")[1:]:
        name, sep, value = line.partition(":")
        if sep and name.strip():
            key = name.strip().lower()
            value = value.strip()
            if key == "set-cookie" and key in headers:
                headers[key] += ", " + value
            else:
                headers[key] = value
    return headers


def _normalise_headers(headers: HeadersArg) -> list[tuple[str, str]]:
    if headers is None:
        return []
    items = headers.items() if isinstance(headers, Mapping) else headers
    out = []
    for item in items:
        name, value = item
        if not isinstance(name, str) or not isinstance(value, str):
            raise TypeError(f"header names and values must be str, not {item!r}")
        out.append((name, value))
    return out


def _connection_report(info: Mapping[str, Any]) -> ConnectionReport | None:
    if "connections_history" not in info:
        return None
    return ConnectionReport(
        history=tuple(int(n) for n in info["connections_history"]),
        peak=int(info["connections_peak"]),
        target=int(info["connections_target"]),
        note=str(info["connections_note"]),
        adaptive=bool(info["connections_adaptive"]),
    )


def _connection_fields(info: Mapping[str, Any]) -> dict[str, Any]:
    report = _connection_report(info)
    if report is None:
        return {}
    return {
        "connections_peak": report.peak,
        "connections_history": report.history,
        "connections_note": report.note,
    }


def _connections_arg(connections: int | str | None, plain: bool) -> int:
    """The engine's number: 0 is auto (adaptive.c), else fixed."""
    if connections is None:
        return 0 if plain else 1
    if connections == "auto":
        return 0
    if isinstance(connections, bool) or not isinstance(connections, int):
        raise TypeError(f"connections must be a whole number or 'auto', not {connections!r}")
    if connections < 1:
        raise ValueError(f"connections must be between 1 and 64, or 'auto', not {connections}")
    return connections


def _fspath(path: str | os.PathLike[str] | None) -> str | None:
    return None if path is None else os.fspath(path)


def _part_name(path: str) -> str:
    """``PATH.ytdla-part``; when that name plus ``.ctl`` would pass the
    filesystem's NAME_MAX, a short hidden name in the same directory
    (``.<hash of the name>.ytdla-part``: the rename stays on one filesystem)."""
    directory, name = os.path.split(path)
    try:
        name_max = os.pathconf(directory or ".", "PC_NAME_MAX")
    except (OSError, ValueError):
        name_max = 255
    if len(os.fsencode(name + PART_SUFFIX + STATE_SUFFIX)) <= name_max:
        return path + PART_SUFFIX
    digest = hashlib.sha256(os.fsencode(name)).hexdigest()[:16]
    return os.path.join(directory, f".{digest}{PART_SUFFIX}")


def _special(path: str) -> bool:
    """An existing path that is not a regular file (a FIFO, a device)."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return not stat.S_ISREG(mode) and not stat.S_ISDIR(mode)


def _check_directory(path: str) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(
            2, f"cannot write {path!r}: the directory {directory!r} does not exist", path
        )


class _Waiters(list):  # type: ignore[type-arg]
    """``Future._waiters`` of a task: concurrent.futures.wait() and
    as_completed() append to it; that is the sign that someone waits without
    calling a method of the task, so the engine's dispatcher starts watching
    it (and resolves it when the engine says it ended)."""

    def __init__(self, task: DownloadTask) -> None:
        super().__init__()
        self._task_ref = weakref.ref(task)

    def append(self, waiter: Any) -> None:
        super().append(waiter)
        task = self._task_ref()
        if task is not None:
            task._watch()


class DownloadTask(concurrent.futures.Future):  # type: ignore[type-arg]
    """A queued or running download; made by :meth:`AsyncDownloadEngine.submit`.

    A :class:`concurrent.futures.Future` whose result is a
    :class:`DownloadResult`: ``result()``, ``exception()``, ``done()``,
    ``cancelled()``, ``running()``, ``add_done_callback()``, and
    ``concurrent.futures.wait()`` / ``as_completed()`` /
    ``asyncio.wrap_future()`` work as with any future.  ``await task`` works
    too (without a thread per task).  Done callbacks run on the engine's
    dispatcher thread, or at once in the caller when the task has ended.
    """

    def __init__(self, task: Any, engine: AsyncDownloadEngine, *, final: str | None = None,
                 part: str | None = None, state: str | None = None,
                 on_progress: ProgressCallback | None = None,
                 progress_interval: float = 0.5) -> None:
        super().__init__()
        self._waiters = _Waiters(self)
        self._task = task
        self._engine = engine
        self._final = final            # the name a finished download is renamed to
        self._part = part              # the temporary name (None: written in place)
        self._state_path = state       # its resume state, removed on success
        self._on_progress = on_progress
        self._progress_interval = progress_interval
        self._finish_lock = threading.Lock()
        self._ended = False            # _finish() has run
        self._finish_error: BaseException | None = None

    def __repr__(self) -> str:
        return f"<DownloadTask {self.id} {self.progress().state} {self.url}>"

    @property
    def id(self) -> int:
        return int(self._task.id)

    @property
    def url(self) -> str:
        return str(self._task.url)

    @property
    def path(self) -> str | None:
        """The final name (the bytes go to :attr:`part_path` until done)."""
        if self._final is not None:
            return self._final
        path = self._task.path
        return None if path is None else os.fspath(path)

    @property
    def part_path(self) -> str | None:
        """The temporary name beside :attr:`path` (None: ``in_place``)."""
        return self._part

    # -- the future's state ------------------------------------------------

    def done(self) -> bool:
        """True once the task has finished, whatever the outcome (and, for
        a path, the file is under its final name or gone)."""
        if self._ended:
            return True
        if not self._task.done():
            return False
        self._finish()
        return True

    def running(self) -> bool:
        return not self.done() and self._task.info()["state"] != "queued"

    def cancelled(self) -> bool:
        return self.done() and self._task.info()["state"] == "cancelled"

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the task finishes or ``timeout`` seconds pass.

        The GIL is released while waiting and Ctrl-C raises
        KeyboardInterrupt within 0.1 s.  Returns :meth:`done`.
        """
        self._task.wait(timeout)
        return self.done()

    def cancel(self) -> bool:
        """Stop the task; it ends as cancelled within 100 ms.  Returns False
        when it had already finished, else True.  A path's bytes stay in
        :attr:`part_path` (with the state a later submit resumes from)
        when there is something to resume, else they go."""
        if self.done():
            return self.cancelled()
        self._task.cancel()
        return True

    def result(self, timeout: float | None = None) -> DownloadResult:
        """Wait for the task and return its result, or raise its error:
        a :class:`~yt_dlp_async.AsyncDownloadError` subclass
        (:class:`~yt_dlp_async.DownloadCancelledError` when cancelled), or
        OSError for a local write error.  TimeoutError when ``timeout``
        seconds pass first."""
        if not self.wait(timeout):
            raise TimeoutError(f"the download of {self.url} has not finished yet")
        return self._outcome()

    def exception(self, timeout: float | None = None) -> BaseException | None:
        """The error :meth:`result` would raise, or None; raises
        :class:`~yt_dlp_async.DownloadCancelledError` for a cancelled task,
        as a future does."""
        try:
            self.result(timeout)
        except TimeoutError:
            if not self.done():
                raise
            return self._stored_exception()
        except concurrent.futures.CancelledError:
            raise
        except Exception as exc:
            return exc
        return None

    def _stored_exception(self) -> BaseException | None:
        try:
            self._outcome()
        except concurrent.futures.CancelledError:
            raise
        except Exception as exc:
            return exc
        return None

    def add_done_callback(self, fn: Callable[[Any], object]) -> None:
        """Call ``fn(task)`` when the task ends (at once when it has)."""
        self.done()
        self._watch()
        super().add_done_callback(fn)

    def _watch(self) -> None:
        if self._ended:
            return
        if self._engine.closed:     # every task has ended: settle it here
            self.done()
            return
        self._engine._track(self)

    def _finish(self) -> None:
        """Once the engine says the task ended: the temporary file becomes
        the final name (or goes), then the future is resolved."""
        with self._finish_lock:
            if self._ended:
                return
            info = self._task.info()
            if self._part is not None:
                try:
                    self._settle_file(info)
                except OSError as exc:
                    self._finish_error = exc
            self._ended = True
        try:
            if info["state"] == "cancelled" and self._finish_error is None:
                concurrent.futures.Future.cancel(self)
                concurrent.futures.Future.set_running_or_notify_cancel(self)
                return
            try:
                result = self._outcome()
            except Exception as exc:
                concurrent.futures.Future.set_exception(self, exc)
            else:
                concurrent.futures.Future.set_result(self, result)
        except concurrent.futures.InvalidStateError:
            pass

    def _settle_file(self, info: Mapping[str, Any]) -> None:
        part, state, final = self._part, self._state_path, self.path
        assert part is not None and final is not None
        if info["state"] == "done":
            size = int(info["downloaded_bytes"])
            try:
                with open(part, "r+b") as f:
                    # a resumed temporary file never keeps a longer tail
                    if os.fstat(f.fileno()).st_size > size:
                        f.truncate(size)
            except FileNotFoundError:
                if size:
                    raise
                open(part, "wb").close()   # an empty resource: an empty file
            os.replace(part, final)
            _remove(state)
            return
        # failed or cancelled: keep what a later submit can resume, else nothing
        resumable = state is not None and os.path.exists(state)
        try:
            empty = os.path.getsize(part) == 0
        except OSError:
            empty = True
        if empty or not resumable:
            _remove(part)
            _remove(state)

    # -- what it did ---------------------------------------------------------

    def release(self, hold: int) -> None:
        """Let the body of held reply number ``hold`` (``progress().hold[0]``)
        be written: call it once its validator is stored.  A stale number
        (that attempt ended) releases nothing."""
        self._task.release(hold)

    def set_priority(self, priority: int) -> None:
        """Move a queued task: lower values run first."""
        self._task.set_priority(priority)

    def body(self, timeout: float | None = None) -> bytes:
        """The body of a ``memory=True`` task: waits, raises like
        :meth:`result`, and hands the bytes over (call it once)."""
        self.result(timeout)
        return bytes(self._task.take_body())

    def partial_body(self) -> bytes:
        """The bytes a ``memory=True`` task that failed had received, in
        order from the start of its range, so that a caller retrying it can
        ask for the rest (empty when the reply was content-coded: decoded
        bytes cannot be resumed by offset).  Call it once, after the task
        failed (ValueError otherwise)."""
        return bytes(self._task.take_partial_body())

    def append_body(self, fileno: int, *, key: bytes | None = None, iv: bytes | None = None,
                    keep: str | None = None, timeout: float | None = None) -> int:
        """Append the body of a finished ``memory=True`` task to the open
        descriptor ``fileno`` in C, without making it a Python object (call
        it once; the buffer is freed, also on error).  ``keep``: first write
        the body as received to that file; ``key``/``iv`` (16 bytes each):
        AES-128-CBC-decrypt it, PKCS#7 padding removed as yt-dlp does.
        Returns the bytes appended; raises like :meth:`result`, OSError for
        a write error, ValueError when decryption is refused.  Waits first,
        as :meth:`body` does."""
        self.result(timeout)
        return int(self._task.append_body(fileno, key=key, iv=iv, keep=keep))

    def segments(self) -> list[SegmentProgress]:
        """Per-connection detail of a segmented download (else [])."""
        return [
            SegmentProgress(
                start=seg["start"],
                end=None if seg["end"] < 0 else seg["end"],
                downloaded_bytes=seg["downloaded"],
                state=seg["state"],
                speed=seg["speed"],
                retries=seg["retries"],
            )
            for seg in self._task.info().get("segments", [])
        ]

    def connections(self) -> ConnectionReport | None:
        """The connection count of a split download (else None: one)."""
        return _connection_report(self._task.info())

    @property
    def resumed_bytes(self) -> int:
        """Bytes a segmented download found done in its state file."""
        return int(self._task.info().get("resumed_bytes", 0))

    def progress(self) -> DownloadProgress:
        """A snapshot; a finished state once the file is settled (see :meth:`done`)."""
        if self._task.done():
            self.done()
        info = self._task.info()
        speed = info["speed"] or None
        total = info["total_bytes"]
        eta = None
        if speed and total is not None:
            eta = max(0.0, (total - info["downloaded_bytes"]) / speed)
        return DownloadProgress(
            state="failed" if self._finish_error is not None else info["state"],
            downloaded_bytes=info["downloaded_bytes"],
            total_bytes=total,
            resource_size=info["resource_size"],
            speed=speed,
            eta=eta,
            elapsed=info["elapsed"],
            retries=info["retries"],
            http_status=info["http_status"],
            etag=info.get("etag"),
            last_modified=info.get("last_modified"),
            hold=info.get("hold"),
        )

    def _outcome(self) -> DownloadResult:
        info = self._task.info()
        if self._finish_error is not None:
            raise self._finish_error
        headers = _parse_headers(info["raw_headers"])
        if info["state"] != "done":
            kind = info["error_kind"]
            reason = info["error"] or kind
            if kind == "io":
                raise OSError(info["os_errno"], reason, self.path)
            cls = ERROR_KINDS.get(kind, AsyncDownloadError)
            raise cls(
                reason,
                url=self.url,
                http_status=info["http_status"],
                headers=headers,
                curl_code=info["curl_code"],
                retries=info["retries"],
                downloaded=info["downloaded_bytes"],
                expected=info["total_bytes"],
            )
        return DownloadResult(
            url=self.url,
            effective_url=info["effective_url"] or self.url,
            path=self.path,
            http_status=info["http_status"] or 0,
            downloaded_bytes=info["downloaded_bytes"],
            resource_size=info["resource_size"],
            headers=headers,
            etag=info["etag"],
            last_modified=info["last_modified"],
            cookies=list(info["cookies"]),
            retries=info["retries"],
            restarted=info["restarted"],
            elapsed=info["elapsed"],
            **_connection_fields(info),
        )

    def __await__(self) -> Generator[Any, None, DownloadResult]:
        return self._engine._await_task(self).__await__()


def _remove(path: str | None) -> None:
    if path is None:
        return
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


class _Dispatcher:
    """A daemon thread that resolves the tasks someone waits on without
    calling them (done callbacks, concurrent.futures.wait, temporary files to
    rename) and calls progress callbacks.

    It sleeps on an eventfd (a pipe in the portable build) that the engine
    writes to whenever a task ends, or until the next progress callback is
    due; it only looks at the tasks it was given, and ends once it has none
    left (the engine starts another for the next one), so an engine nobody
    closes keeps no thread.
    """

    def __init__(self, engine: Any, first: DownloadTask) -> None:
        self.engine = engine
        self.lock = threading.Lock()
        # task -> when its progress callback is due; never empty while the thread runs
        self.tasks: dict[DownloadTask, float] = {first: time.monotonic()}
        self.stopping = False
        self.exited = False                          # under lock: no more tasks, fds closed
        self.rfd, self.wfd = _engine.wakeup_fds()
        try:
            engine.subscribe(self.wfd)
            self.subscribed = True
        except Exception:   # a closed engine: its tasks have ended
            self.subscribed = False
        self.thread = threading.Thread(target=self._run, name="yt-dlp-async-dispatcher", daemon=True)
        self.thread.start()

    def track(self, task: DownloadTask) -> bool:
        """Watch ``task``; False when this dispatcher has ended (make another)."""
        with self.lock:
            if self.exited:
                return False
            if task not in self.tasks:
                self.tasks[task] = time.monotonic()
            self._wake()
        return True

    def _wake(self) -> None:
        """Under self.lock, so the descriptor is never one closed meanwhile."""
        if not self.exited:
            try:
                os.write(self.wfd, struct.pack("Q", 1))
            except OSError:   # a full pipe already wakes it
                pass

    def stop(self) -> None:
        """After the engine closed: every task has ended; resolve them, join."""
        with self.lock:
            self.stopping = True
            self._wake()
        if threading.current_thread() is not self.thread:
            self.thread.join()

    def _run(self) -> None:
        poller = select.poll()   # not select(): a descriptor past FD_SETSIZE is fine
        poller.register(self.rfd, select.POLLIN)
        try:
            while True:
                with self.lock:
                    tasks = list(self.tasks.items())
                    stopping = self.stopping
                now = time.monotonic()
                for task, due in tasks:
                    if task._task.done() or stopping:
                        task._task.wait(None)
                        task.done()
                        if task._on_progress is not None:
                            _call_progress(task)
                        with self.lock:
                            self.tasks.pop(task, None)
                    elif task._on_progress is not None and now >= due:
                        _call_progress(task)
                        with self.lock:
                            if task in self.tasks:
                                self.tasks[task] = now + task._progress_interval
                with self.lock:
                    if not self.tasks:
                        self.exited = True
                        return
                    dues = [d for t, d in self.tasks.items() if t._on_progress is not None]
                timeout = None if not dues else max(0.0, min(dues) - time.monotonic())
                poller.poll(None if timeout is None else int(timeout * 1000) + 1)
                try:
                    os.read(self.rfd, 4096)
                except OSError:
                    pass
        finally:
            with self.lock:
                self.exited = True
                if self.subscribed:
                    try:
                        self.engine.unsubscribe(self.wfd)   # the engine never writes it after this
                    except Exception:
                        pass
                _close_pair(self.rfd, self.wfd)


def _call_progress(task: DownloadTask) -> None:
    callback = task._on_progress
    if callback is None:
        return
    try:
        callback(task, task.progress())
    except Exception:
        LOGGER.exception("the progress callback of %r raised", task)


class _LoopWatcher:
    """Resolves futures of finished tasks for one asyncio event loop.

    Each watcher has an eventfd of its own that the engine writes to
    whenever any task finishes, so a loop never consumes another loop's
    wake-up (the engine writes to every subscribed fd).  The loop watches
    it with ``add_reader``: no thread and no polling per awaited task.
    Only the loop's own thread touches a watcher after it is made.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, engine: Any) -> None:
        self.loop = loop
        self.engine = engine
        self.fd = -1        # read end, watched by the loop
        self.wfd = -1       # write end, subscribed (the same fd for an eventfd)
        self.pending: dict[DownloadTask, list[asyncio.Future[None]]] = {}

    def add(self, task: DownloadTask) -> asyncio.Future[None]:
        fut: asyncio.Future[None] = self.loop.create_future()
        self.pending.setdefault(task, []).append(fut)
        if self.fd < 0:
            self._watch()
        # subscribed before this check: a finish after it is not missed
        if task.done():
            self._ready()
        return fut

    def _watch(self) -> None:
        rfd, wfd = _engine.wakeup_fds()
        try:
            self.engine.subscribe(wfd)
        except BaseException:
            _close_pair(rfd, wfd)
            # a closed engine has finished every task: resolve them now
            self._resolve_done()
            return
        self.fd, self.wfd = rfd, wfd
        self.loop.add_reader(rfd, self._ready)

    def _unwatch(self) -> None:
        fd, wfd, self.fd, self.wfd = self.fd, self.wfd, -1, -1
        if fd < 0:
            return
        self.loop.remove_reader(fd)
        self.engine.unsubscribe(wfd)  # after this the engine never writes wfd
        _close_pair(fd, wfd)

    def _resolve_done(self) -> None:
        for task in [t for t in self.pending if t.done()]:
            for fut in self.pending.pop(task):
                if not fut.done():
                    fut.set_result(None)

    def _ready(self) -> None:
        if self.fd >= 0:
            try:
                os.read(self.fd, 4096)  # an eventfd's counter, or a pipe's pending bytes
            except OSError:  # BlockingIOError: nothing pending
                pass
        self._resolve_done()
        if not self.pending:
            self._unwatch()

    def discard(self, task: DownloadTask, fut: asyncio.Future[None]) -> None:
        """Forget a future whose awaiting coroutine went away."""
        futs = self.pending.get(task)
        if futs is not None and fut in futs:
            futs.remove(fut)
            if not futs:
                del self.pending[task]
        if not self.pending:
            self._unwatch()


def _close_pair(rfd: int, wfd: int) -> None:
    os.close(rfd)
    if wfd != rfd:
        os.close(wfd)


_live_engines: "weakref.WeakSet[AsyncDownloadEngine]" = weakref.WeakSet()


@atexit.register
def _close_live_engines() -> None:
    """At interpreter exit: cancel live transfers and join the engine threads.

    A Ctrl-C that lands here is the user's second: the first ended the run
    and the process is already exiting.  close() is bounded (it cancels and
    joins) and Python raises the KeyboardInterrupt only once it returns, so
    the Ctrl-C cannot end the process sooner; letting it through would only
    print a traceback after yt-dlp's "Interrupted by user", or leave the
    next engine unjoined.  A forked child's copies belong to the parent.
    """
    pid = os.getpid()
    for engine in list(_live_engines):
        while True:
            try:
                if engine._pid != pid or engine.closed:
                    break
                engine.close()
            except KeyboardInterrupt:
                continue


class AsyncDownloadEngine:
    """A libcurl multi engine on its own thread.

    ``max_connections`` caps transfers in flight, ``max_host_connections``
    caps them per host (host:port); the rest wait in a queue ordered by
    priority, then submit order.  Retryable faults (resets, timeouts,
    stalls, 5xx, 408, 429, short bodies) are retried up to ``max_retries``
    times after ``uniform(0, min(retry_max_delay, retry_base_delay *
    2**n))`` seconds, or the server's Retry-After if longer, resuming from
    the bytes already written.  ``rate_limit`` caps the sum of all
    transfers in bytes/s.
    """

    def __init__(
        self,
        *,
        max_connections: int = 64,
        max_host_connections: int = 16,
        connect_timeout: float = 20.0,
        stall_timeout: float = 20.0,
        max_retries: int = 10,
        retry_base_delay: float = 1.0,
        retry_max_delay: float = 30.0,
        rate_limit: int | None = None,
        buffer_size: int = 256 * 1024,
    ) -> None:
        self._engine = _engine.Engine(
            max_connections=max_connections,
            max_host_connections=max_host_connections,
            connect_timeout=connect_timeout,
            stall_timeout=stall_timeout,
            max_retries=max_retries,
            retry_base_delay=retry_base_delay,
            retry_max_delay=retry_max_delay,
            rate_limit=int(rate_limit or 0),
            buffer_size=buffer_size,
        )
        self._pid = os.getpid()
        self._watchers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopWatcher] = (
            weakref.WeakKeyDictionary()
        )
        self._watchers_lock = threading.Lock()
        self._dispatch: _Dispatcher | None = None
        _live_engines.add(self)

    def __enter__(self) -> AsyncDownloadEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> AsyncDownloadEngine:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    @property
    def closed(self) -> bool:
        return bool(self._engine.closed)

    def close(self) -> None:
        """Cancel every live task and join the engine thread (and the
        thread that runs callbacks, once they have run)."""
        self._engine.close()
        with self._watchers_lock:
            dispatch = self._dispatch
        if dispatch is not None:
            dispatch.stop()
        _live_engines.discard(self)

    def _track(self, task: DownloadTask) -> None:
        """Have the dispatcher thread watch ``task`` (started when none runs)."""
        with self._watchers_lock:
            if self._dispatch is None or not self._dispatch.track(task):
                self._dispatch = _Dispatcher(self._engine, task)

    def body_memory(self) -> tuple[int, int]:
        """(held, peak): bytes the engine holds now for bodies of
        ``memory=True`` tasks (not yet taken or appended), and the most it
        held at once.  Readable after :meth:`close`."""
        held, peak = self._engine.body_memory()
        return int(held), int(peak)

    def stats(self) -> EngineStats:
        """The engine's counters so far (also after :meth:`close`)."""
        raw = self._engine.stats()
        return EngineStats(
            files=int(raw["files"]),
            bytes=int(raw["bytes"]),
            seconds=float(raw["seconds"]),
            retries=int(raw["retries"]),
            connections=int(raw["connections"]),
            failures=int(raw["failures"]),
        )

    def set_rate_limit(self, bytes_per_second: int | None) -> None:
        """Cap the sum of all transfers (None or 0: no cap)."""
        self._engine.set_rate_limit(int(bytes_per_second or 0))

    def submit(
        self,
        url: str,
        path: str | os.PathLike[str] | None = None,
        *,
        fileno: int | None = None,
        headers: HeadersArg = None,
        range: tuple[int, int | None] | None = None,  # noqa: A002 - the HTTP name
        offset: int | None = None,
        expected_size: int | None = None,
        truncate: bool = False,
        if_range: str | None = None,
        priority: int = 0,
        cookies: Iterable[str] | None = None,
        proxy: str | None = None,
        source_address: str | None = None,
        verify: bool = True,
        ca_file: str | os.PathLike[str] | None = None,
        ca_path: str | os.PathLike[str] | None = None,
        client_cert: str | os.PathLike[str] | None = None,
        client_key: str | os.PathLike[str] | None = None,
        client_key_password: str | None = None,
        max_filesize: int | None = None,
        max_retries: int | None = None,
        connections: int | str | None = None,
        min_piece: int = 1 << 20,
        max_request: int | None = None,
        state_path: str | os.PathLike[str] | None = None,
        memory: bool = False,
        max_memory: int = 64 << 20,
        hold_new_validator: bool = False,
        in_place: bool | None = None,
        on_progress: ProgressCallback | None = None,
        progress_interval: float = 0.5,
        auth_to_other_hosts: bool = False,
    ) -> DownloadTask:
        """Queue the download of ``url`` into ``path`` (or ``fileno``).

        ``range=(start, end)`` asks for resource bytes [start, end) (end
        None: to the end); they are written at file position ``offset``
        (default: ``start``, so resource byte i lands at position i).
        ``connections`` > 1 fetches the resource (or its tail from
        ``range[0]``) over that many connections when the server honours
        ranges; ``"auto"`` (the default, also None) starts with one and adds
        connections while each step raises the total rate, up to 16, and
        gives them back on 429/503/403 and resets (docs/adaptive.md).  The
        default is one connection when the download is not a plain whole
        resource to a ``path`` (a bounded range, an ``offset``,
        ``expected_size``, ``if_range``, ``fileno``, ``memory`` or
        ``hold_new_validator``).  A free connection takes the largest unfinished range and
        splits it in half while both halves stay ``min_piece`` or longer;
        no request asks for more than ``max_request`` bytes.  The file may
        have holes until the task is done: ``state_path`` names a control
        file (finished ranges + validators) that a later submit with the
        same path and state_path resumes from.

        ``memory=True`` keeps the body in memory instead (at most
        ``max_memory`` bytes; for fragments and keys): read it with
        :meth:`DownloadTask.body`.

        ``hold_new_validator=True`` (one connection, a ``path``): the body
        of a reply that writes the file from its first byte, or whose
        validator (strong ETag, else Last-Modified) is not ``if_range``,
        waits once its headers are accepted: ``progress().hold`` shows it
        with the reply's ``etag``/``last_modified``, and nothing of it is
        written until :meth:`DownloadTask.release`.  The caller stores the
        validator beside the file first; a task never released waits
        until cancelled.

        ``path``, ``in_place`` False (the default for a whole resource to
        a path): the bytes go to ``PATH.ytdla-part`` beside it, the resume
        state to ``PATH.ytdla-part.ctl`` (or ``state_path``), and only a
        finished download is renamed to ``path`` (replacing what was there)
        and its state removed: ``path`` holds the exact resource or is left
        as it was.  A failed or cancelled download keeps the temporary file
        and its state when a later submit of the same path can resume from
        them (a split download that saved its state), else removes both;
        ``truncate=True`` starts over instead of resuming.  ``in_place=True``
        (implied by ``range``, ``offset``, ``if_range``,
        ``hold_new_validator``, and by a path that is not a regular file,
        e.g. a FIFO) writes into ``path`` itself, at the positions asked,
        without truncating it unless ``truncate`` (the yt-dlp plugin manages
        its own ``.part`` files this way).

        ``on_progress(task, progress)`` is called on the engine's dispatcher
        thread every ``progress_interval`` seconds while the task runs and
        once when it has ended (after the file is settled).

        ``auth_to_other_hosts=True`` keeps an ``Authorization`` header
        when a redirect leads to another host (by default only the first
        host gets it).

        Bad input raises ValueError / OSError here, before any byte is
        written.  ``path`` is checked here but opened (created, truncated)
        only when the transfer starts, so queued tasks hold no descriptor;
        a FIFO without a reader raises OSError (ENXIO) here.
        ``max_filesize=0`` is a limit of 0 bytes; None means no limit.
        """
        if memory:
            if path is not None or fileno is not None:
                raise ValueError("memory=True takes no path and no fileno")
        elif path is None and fileno is None:
            raise ValueError("give a path or a fileno to write to")
        if path is not None and fileno is not None:
            raise ValueError("give a path or a fileno, not both")
        start, end = 0, -1
        if range is not None:
            start, range_end = range
            end = -1 if range_end is None else range_end
            if start < 0 or (range_end is not None and range_end <= start):
                raise ValueError(
                    f"invalid range {range!r}: expected (start, end) with "
                    "0 <= start < end, or (start, None)"
                )
        final = part = state = None
        if path is not None:
            path = os.fspath(path)
            _check_directory(path)
            writes_into = (range is not None or offset is not None or if_range is not None
                           or hold_new_validator)
            if in_place is False and writes_into:
                raise ValueError("range, offset, if_range and hold_new_validator write into the "
                                 "file as it is: they need in_place=True")
            if in_place is None:
                in_place = writes_into or _special(path)
            if not in_place:
                if os.path.isdir(path):
                    raise IsADirectoryError(21, f"cannot write {path!r}: it is a directory", path)
                part = _part_name(path)
                state = os.fspath(state_path) if state_path is not None else part + STATE_SUFFIX
                if truncate:
                    _remove(state)
                # no state: nothing in the temporary file can be trusted; start over
                truncate = truncate or not os.path.exists(state)
                final, path, state_path = path, part, state
        plain = (path is not None and fileno is None and not memory and not hold_new_validator
                 and end == -1 and offset is None and expected_size is None and if_range is None)
        task = self._engine.submit(
            url,
            path,
            fileno=-1 if fileno is None else fileno,
            headers=_normalise_headers(headers),
            range_start=start,
            range_end=end,
            offset=-1 if offset is None else offset,
            expected_size=-1 if expected_size is None else expected_size,
            truncate=truncate,
            if_range=if_range,
            priority=priority,
            cookies=None if cookies is None else list(cookies),
            proxy=proxy,
            source_address=source_address,
            verify=verify,
            ca_file=_fspath(ca_file),
            ca_path=_fspath(ca_path),
            client_cert=_fspath(client_cert),
            client_key=_fspath(client_key),
            client_key_password=client_key_password,
            max_filesize=-1 if max_filesize is None else max_filesize,
            max_retries=-1 if max_retries is None else max_retries,
            connections=_connections_arg(connections, plain),
            min_piece=min_piece,
            max_request=max_request or 0,
            state_path=_fspath(state_path),
            memory=memory,
            max_memory=max_memory,
            hold_new_validator=hold_new_validator,
            auth_to_other_hosts=auth_to_other_hosts,
        )
        result = DownloadTask(task, self, final=final, part=part, state=state, on_progress=on_progress,
                              progress_interval=progress_interval)
        if part is not None or on_progress is not None:
            result._watch()   # renamed, or reported, as soon as it ends
        return result

    async def _await_task(self, task: DownloadTask) -> DownloadResult:
        loop = asyncio.get_running_loop()
        with self._watchers_lock:
            watcher = self._watchers.get(loop)
            if watcher is None:
                watcher = self._watchers[loop] = _LoopWatcher(loop, self._engine)
        fut = watcher.add(task)
        try:
            await fut
        except asyncio.CancelledError:
            watcher.discard(task, fut)
            task.cancel()
            raise
        task.done()
        return task._outcome()


Engine = AsyncDownloadEngine


def _names_for(urls: Sequence[str]) -> list[str]:
    from urllib.parse import unquote, urlsplit

    names: list[str] = []
    seen: set[str] = set()
    for i, url in enumerate(urls):
        base = os.path.basename(unquote(urlsplit(url).path))
        if base in ("", ".", ".."):  # no name, or one that names a directory
            base = f"download-{i + 1}"
        name, n = base, 1
        while name in seen:
            stem, ext = os.path.splitext(base)
            name, n = f"{stem}.{n}{ext}", n + 1
        seen.add(name)
        names.append(name)
    return names


def download(
    urls: Iterable[str],
    directory: str | os.PathLike[str],
    concurrency: int = 5,
    *,
    on_progress: ProgressCallback | None = None,
    progress_interval: float = 0.5,
    connections: int | str | None = None,
    **engine_options: Any,
) -> list[DownloadResult]:
    """Download every URL into ``directory``, ``concurrency`` at a time.

    Files are named after the last part of each URL's path; ``directory`` is
    created when missing.  Each is written to ``NAME.ytdla-part`` and renamed
    to ``NAME`` when complete (see :meth:`AsyncDownloadEngine.submit`): an
    interrupted run leaves the old file (if any) and what it can resume
    from, and running it again resumes.  ``on_progress(task, progress)`` is
    called for each download as :meth:`~AsyncDownloadEngine.submit`
    describes; ``connections`` is passed to it too.  Returns the results in
    the order of ``urls``; if any failed, the first error is raised once
    every other download has finished.
    """
    url_list = list(urls)
    directory = os.fspath(directory)
    os.makedirs(directory, exist_ok=True)
    engine_options.setdefault("max_connections", concurrency)
    engine_options.setdefault("max_host_connections", concurrency)
    with AsyncDownloadEngine(**engine_options) as engine:
        tasks = [
            engine.submit(url, os.path.join(directory, name), connections=connections,
                          on_progress=on_progress, progress_interval=progress_interval)
            for url, name in zip(url_list, _names_for(url_list))
        ]
        for task in tasks:
            task.wait()
        return [task.result() for task in tasks]


