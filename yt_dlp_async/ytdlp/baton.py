"""The baton: one lock, held by whichever thread runs yt-dlp's Python code.

Concurrent playlist entries (playlist.py) run in worker threads, but only the
thread holding the baton may run yt-dlp code.  A thread gives the baton up
only while it *waits*, and only at a few known points.  So extraction, format
selection, post-processing, archive writes and hooks still run one at a time;
only the waiting overlaps.

Why this cannot deadlock
------------------------
A thread that gives the baton up must take it back before it runs yt-dlp code
again.  If, when it gave the baton up, it held some other lock L (yt-dlp's, a
``functools.cached_property``'s in Python 3.11, a plugin's), then the thread
now holding the baton may block on L while the first one blocks on the baton:
a deadlock no Ctrl-C can end.  (This happened with the ffmpeg version probe,
which runs a child process inside ``FFmpegPostProcessor.available``.)  So the
baton is given up only where no other lock can be held:

* **Our own waits** (playlist.py: waiting for a worker to start, for a free
  slot, for another entry to finish a file, for every entry at the end of a
  playlist) are reached only from our wrappers of yt-dlp's playlist loop and
  ``dl()``, called directly by yt-dlp's processing functions, which hold no
  lock.  They must give the baton up (other workers have to run).
* **Optional waits** (``wait_task``: an engine transfer; a child process such
  as ffmpeg or ``--exec``: yt-dlp's ``Popen.communicate``/``wait``, patched in
  playlist.py) give the baton up only after a *stack audit*
  (``stack_is_audited``): every frame between the thread's root (the worker's
  ``_run``, or the call that opened the session) and the wait must be our own
  code or a yt-dlp function on ``AUDITED`` -- functions read and known to call
  down without holding any lock.  Any other frame (``functools`` running a
  cached_property, ``_get_ffmpeg_version``, a plugin, a yt-dlp function this
  list does not know) and the thread keeps the baton while it waits: correct,
  only less overlap.  A wait that keeps the baton still registers its cancel
  (``task.cancel`` / ``proc.kill``), so Ctrl-C ends it.
* A child process that writes to our stdout/stderr itself (``--exec``; any
  child whose output is not piped) keeps the baton too, whatever the stack:
  the status line is ended before it starts (console.py) and no other entry
  may print a progress line in the middle of its output.

Since no thread ever holds another lock while it waits for the baton, a thread
holding the baton can always run on: every lock it wants is free or held by a
thread that is itself running, never by one parked on the baton.

Ctrl-C: the main thread's waits on our own locks are sliced and hold
KeyboardInterrupt back until the lock is released (``SigintGate``), so a
Ctrl-C, or two, never leaves the baton or a condition half taken; a second
Ctrl-C stops waiting for entries that do not end (playlist.py).

Outside a concurrent session nothing here does anything: ``wait_task(task, t)``
is ``task.wait(t)`` and ``released()`` is an empty context manager.  This
module imports neither yt-dlp nor the engine.

Debug mode (``YTDLP_ASYNC_BATON_CHECK=1``): the baton counts its holders and a
profile function checks every call of a function defined in yt-dlp's package
from a session thread; a violation is printed to stderr at once
(``[async] BATON VIOLATION: ...``) and makes the session end with an
AssertionError.
"""

from __future__ import annotations

import collections
import contextlib
import os
import sys
import threading
from types import FrameType
from typing import Any, Callable, Iterator

CHECK_ENV = 'YTDLP_ASYNC_BATON_CHECK'


def check_enabled() -> bool:
    return os.environ.get(CHECK_ENV, '').strip().lower() in ('1', 'true', 'yes', 'on')


class EntryCancelled(KeyboardInterrupt):
    """Raised in a worker whose entry is cancelled (Ctrl-C, --abort-on-error, --max-downloads).

    A KeyboardInterrupt so that the downloaders' own Ctrl-C handling runs
    (http_download cancels its transfer and keeps the .part file) and yt-dlp's
    ``except Exception`` blocks let it through.
    """


class Runner:
    """A thread taking part in a session: the loop thread or a worker.

    Subclassed by playlist.Worker; the hooks are called with the baton held.
    """

    label = 'main'
    is_worker = False

    def __init__(self, session: Any) -> None:
        self.session = session
        self.cancel_requested = False
        self.cancel_delivered = False
        self._cancels: list[Callable[[], Any]] = []
        self._cancel_lock = threading.Lock()
        self.groups: list[Any] = []   # loops this runner runs (playlist.Group), innermost last
        self.root_frame: FrameType | None = None  # where the stack audit stops (see stack_is_audited)

    # --- called by the baton / released(), baton held
    def on_park(self) -> None:
        """About to give the baton up to wait."""

    def on_resume(self) -> None:
        """Got the baton back after a wait."""

    # --- cancellation (any thread)
    def request_cancel(self) -> None:
        with self._cancel_lock:
            self.cancel_requested = True
            cancels = list(self._cancels)
        for cancel in cancels:
            try:
                cancel()  # task.cancel() / proc.kill(): thread-safe, runs no yt-dlp code
            except Exception:
                pass

    def _push_cancel(self, cancel: Callable[[], Any] | None) -> None:
        if cancel is None:
            return
        with self._cancel_lock:
            self._cancels.append(cancel)
            already = self.cancel_requested
        if already:
            try:
                cancel()
            except Exception:
                pass

    def _pop_cancel(self, cancel: Callable[[], Any] | None) -> None:
        if cancel is None:
            return
        with self._cancel_lock:
            try:
                self._cancels.remove(cancel)
            except ValueError:
                pass

    def deliver_cancel(self) -> None:
        """Raise EntryCancelled once, if this runner was cancelled."""
        if self.cancel_requested and not self.cancel_delivered and self.is_worker:
            self.cancel_delivered = True
            raise EntryCancelled(f'{self.label} cancelled')


class Baton:
    """A FIFO lock whose owner is a Runner; the owner can hand it to another runner."""

    def __init__(self, check: bool = False) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._owner: Runner | None = None
        self._queue: collections.deque[Runner] = collections.deque()
        self.check = check
        self._holders = 0
        self.violations: list[str] = []

    @property
    def owner(self) -> Runner | None:
        return self._owner

    def held_by(self, runner: Runner | None) -> bool:
        return runner is not None and self._owner is runner

    def _grant(self, runner: Runner | None) -> None:
        # called with self._cond held
        if self.check and self._owner is not None:
            self.violation(f'baton granted to {runner and runner.label} while {self._owner.label} holds it')
        self._owner = runner
        self._cond.notify_all()

    def acquire(self, runner: Runner) -> None:
        """Wait for the baton; Ctrl-C (main thread) ends the wait with KeyboardInterrupt, without it."""
        with GATE:
            with self._cond:
                if self._owner is None and not self._queue:
                    self._grant(runner)
                    return
                if self._owner is runner:
                    return
                self._queue.append(runner)
                while self._owner is not runner:
                    if GATE.interrupted():
                        self._queue.remove(runner)
                        break
                    self._cond.wait(GATE_SLICE)

    def release(self, runner: Runner) -> None:
        with self._cond:
            if self._owner is not runner:
                if self.check:
                    self.violation(f'{runner.label} released a baton held by '
                                   f'{self._owner.label if self._owner else "nobody"}')
                return
            self._pass_on()

    def hand_to(self, runner: Runner, other: Runner) -> None:
        """Give the baton held by ``runner`` straight to ``other`` (a new worker)."""
        with self._cond:
            if self._owner is not runner and self.check:
                self.violation(f'{runner.label} handed over a baton it does not hold')
            self._owner = None
            self._grant(other)

    def wait_until_owner(self, runner: Runner) -> None:
        with self._cond:
            while self._owner is not runner:
                self._cond.wait()

    def _pass_on(self) -> None:
        self._owner = None
        self._grant(self._queue.popleft() if self._queue else None)

    def violation(self, message: str) -> None:
        self.violations.append(message)
        try:
            os.write(2, f'\n[async] BATON VIOLATION: {message}\n'.encode('utf-8', 'replace'))
        except OSError:
            pass


# -------------------------------------------------------------------- Ctrl-C
GATE_SLICE = 0.1


class SigintGate:
    """Ctrl-C in the main thread, held back while that thread is inside one of our locks.

    Python raises KeyboardInterrupt between any two bytecodes, also inside
    ``threading.Condition.wait`` while it takes its lock back: the ``with``
    block then releases a lock it does not hold ("release unlocked lock") and
    the session's state is left half changed.  While a session runs, the
    SIGINT handler (installed only in place of Python's default one) records
    a Ctrl-C that arrives inside ``with GATE:``; the block's own waits are
    sliced and end when ``interrupted()``, and KeyboardInterrupt is raised as
    the block is left, with every lock released.  Anywhere else Ctrl-C raises
    at once, as before.
    """

    def __init__(self) -> None:
        self.depth = 0
        self.pending = False
        self._previous: Any = None
        self._installed = False

    def _handler(self, signum: int, frame: Any) -> None:
        if self.depth:
            self.pending = True
            return
        raise KeyboardInterrupt

    def install(self) -> None:
        import signal
        if self._installed or threading.current_thread() is not threading.main_thread():
            return
        if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
            return  # the application's own handler: leave it alone
        self._previous = signal.signal(signal.SIGINT, self._handler)
        self._installed = True

    def uninstall(self) -> None:
        import signal
        if not self._installed or threading.current_thread() is not threading.main_thread():
            return
        if signal.getsignal(signal.SIGINT) == self._handler:
            signal.signal(signal.SIGINT, self._previous)
        self._installed = False
        self.depth = 0
        self.pending = False

    def interrupted(self) -> bool:
        return self.pending and threading.current_thread() is threading.main_thread()

    def __enter__(self) -> SigintGate:
        if threading.current_thread() is threading.main_thread():
            self.depth += 1
        return self

    def __exit__(self, *exc: Any) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        self.depth -= 1
        if self.depth == 0 and self.pending:
            self.pending = False
            if exc[0] is None:
                raise KeyboardInterrupt


GATE = SigintGate()


# ------------------------------------------------------------------- threads
_local = threading.local()


def current_runner() -> Runner | None:
    return getattr(_local, 'runner', None)


def set_current_runner(runner: Runner | None) -> None:
    _local.runner = runner


#: yt-dlp functions (file name relative to yt-dlp's package, co_qualname) that were read and
#: hold no lock while they call down to a wait: the path from an entry to its download, and
#: from the entry to a postprocessor's (or external downloader's) child process.
AUDITED: frozenset[tuple[str, str]] = frozenset({
    # an entry, from the playlist loop (or a batch URL) to dl()
    ('YoutubeDL.py', 'YoutubeDL.__process_iterable_entry'),
    ('YoutubeDL.py', 'YoutubeDL.__process_playlist'),
    ('YoutubeDL.py', 'YoutubeDL.__download_wrapper.<locals>.wrapper'),
    ('YoutubeDL.py', 'YoutubeDL._handle_extraction_exceptions.<locals>.wrapper'),
    ('YoutubeDL.py', '_catch_unsafe_extension_error.<locals>.wrapper'),
    ('YoutubeDL.py', 'YoutubeDL.__extract_info'),
    ('YoutubeDL.py', 'YoutubeDL.extract_info'),
    ('YoutubeDL.py', 'YoutubeDL.process_ie_result'),
    ('YoutubeDL.py', 'YoutubeDL.process_video_result'),
    ('YoutubeDL.py', 'YoutubeDL.process_info'),
    ('YoutubeDL.py', 'YoutubeDL.dl'),
    ('downloader/common.py', 'FileDownloader.download'),
    ('downloader/hls.py', 'HlsFD.real_download'),        # parses the playlist, then our fragment loop
    ('downloader/dash.py', 'DashSegmentsFD.real_download'),
    # postprocessors that run a child process
    ('YoutubeDL.py', 'YoutubeDL.post_process'),
    ('YoutubeDL.py', 'YoutubeDL.pre_process'),
    ('YoutubeDL.py', 'YoutubeDL.run_all_pps'),
    ('YoutubeDL.py', 'YoutubeDL.run_pp'),
    ('YoutubeDL.py', 'YoutubeDL.process_info.<locals>.existing_video_file'),
    ('YoutubeDL.py', 'YoutubeDL.process_info.<locals>.correct_ext'),
    ('YoutubeDL.py', 'YoutubeDL.process_info.<locals>.compatible_formats'),
    ('postprocessor/common.py', 'PostProcessorMetaClass.run_wrapper.<locals>.run'),
    ('postprocessor/common.py', 'PostProcessor._restrict_to.<locals>.decorator.<locals>.wrapper'),
    ('postprocessor/ffmpeg.py', 'FFmpegPostProcessor.real_run_ffmpeg'),
    ('postprocessor/ffmpeg.py', 'FFmpegPostProcessor.get_metadata_object'),  # ffprobe; the probe's
    # properties (probe_basename, check_version) have returned before the child starts
    ('postprocessor/ffmpeg.py', 'FFmpegPostProcessor.run_ffmpeg_multiple_files'),
    ('postprocessor/ffmpeg.py', 'FFmpegPostProcessor.run_ffmpeg'),
    ('postprocessor/ffmpeg.py', 'FFmpegExtractAudioPP.run_ffmpeg'),
    ('postprocessor/ffmpeg.py', 'FFmpegExtractAudioPP.run'),
    ('postprocessor/ffmpeg.py', 'FFmpegVideoConvertorPP.run'),
    ('postprocessor/ffmpeg.py', 'FFmpegVideoRemuxerPP.run'),
    ('postprocessor/ffmpeg.py', 'FFmpegMergerPP.run'),
    ('postprocessor/ffmpeg.py', 'FFmpegMetadataPP.run'),
    ('postprocessor/ffmpeg.py', 'FFmpegFixupPostProcessor._fixup'),
    ('postprocessor/ffmpeg.py', 'FFmpegFixupM4aPP.run'),
    ('postprocessor/ffmpeg.py', 'FFmpegFixupM3u8PP.run'),
    ('postprocessor/ffmpeg.py', 'FFmpegFixupM3u8PP._needs_fixup'),
    ('postprocessor/ffmpeg.py', 'FFmpegFixupStretchedPP.run'),
    ('postprocessor/ffmpeg.py', 'FFmpegFixupTimestampPP.run'),
    ('postprocessor/ffmpeg.py', 'FFmpegFixupDuplicateMoovPP.run'),
    ('postprocessor/ffmpeg.py', 'FFmpegCopyStreamPP.run'),
    ('postprocessor/ffmpeg.py', 'FFmpegEmbedSubtitlePP.run'),
    ('postprocessor/ffmpeg.py', 'FFmpegSubtitlesConvertorPP.run'),
    ('postprocessor/ffmpeg.py', 'FFmpegThumbnailsConvertorPP.convert_thumbnail'),
    ('postprocessor/ffmpeg.py', 'FFmpegThumbnailsConvertorPP.run'),
    ('postprocessor/embedthumbnail.py', 'EmbedThumbnailPP.run'),
    ('postprocessor/exec.py', 'ExecPP.run'),
    # the child process itself
    ('utils/_utils.py', 'Popen.run'),
    ('utils/_utils.py', 'Popen.communicate_or_kill'),
    # external downloaders (ffmpeg for HLS/DASH without the engine, aria2c, ...)
    ('downloader/external.py', 'ExternalFD.real_download'),
    ('downloader/external.py', 'ExternalFD._call_downloader'),
    ('downloader/external.py', 'FFmpegFD._call_downloader'),
    ('downloader/external.py', 'ExternalFD._call_process'),
})

_OWN_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


def _frame_key(frame: FrameType, ytdlp_dir: str) -> tuple[str, str] | None:
    """(path relative to yt-dlp, qualname) for a yt-dlp frame; None for any other frame."""
    filename = frame.f_code.co_filename
    if not filename.startswith(ytdlp_dir):
        return None
    relative = filename[len(ytdlp_dir):].replace(os.sep, '/')
    return relative, getattr(frame.f_code, 'co_qualname', frame.f_code.co_name)


def unaudited_frame(runner: Runner, frame: FrameType | None) -> str | None:
    """The first frame between ``frame`` and the runner's root that may hold a lock, or None."""
    ytdlp_dir = _ytdlp_dir()
    root = runner.root_frame
    if ytdlp_dir is None or root is None:
        return 'no root frame' if root is None else 'yt-dlp not imported'
    while frame is not None and frame is not root:
        filename = frame.f_code.co_filename
        if not filename.startswith(_OWN_DIR) or filename.startswith(ytdlp_dir):
            key = _frame_key(frame, ytdlp_dir)
            if key is None or key not in AUDITED:
                return f'{os.path.basename(filename)}:{getattr(frame.f_code, "co_qualname", frame.f_code.co_name)}'
        frame = frame.f_back
    return None if frame is root else 'root frame not on the stack'


def stack_is_audited(runner: Runner, depth: int = 2) -> bool:
    """True when no frame on this thread's stack (below its root) can hold a lock; see the module doc."""
    reason = unaudited_frame(runner, sys._getframe(depth))
    if reason is not None and runner.session is not None:
        note = getattr(runner.session, 'note_kept', None)
        if callable(note):
            note(reason)
    return reason is None


@contextlib.contextmanager
def released(cancel: Callable[[], Any] | None = None,
             handoff: Runner | None = None, audit: bool = False) -> Iterator[None]:
    """Give the baton up for the duration of a wait, if this thread holds it.

    ``cancel`` (e.g. ``task.cancel`` or ``proc.kill``) is called from another
    thread if the entry is cancelled meanwhile; after the wait a cancelled
    worker raises EntryCancelled (once).  ``handoff`` gives the baton to that
    runner instead of the next waiter.  ``audit``: an optional wait, which
    keeps the baton unless ``stack_is_audited`` (it still registers
    ``cancel``).  Does nothing outside a session.
    """
    runner = current_runner()
    session = getattr(runner, 'session', None)
    if runner is None or session is None or not session.baton.held_by(runner):
        yield
        return
    if audit and not stack_is_audited(runner, depth=3):
        with kept(runner, cancel):
            yield
        return
    baton = session.baton
    if handoff is None:
        runner.deliver_cancel()
    runner.on_park()
    runner._push_cancel(cancel)
    if handoff is not None:
        baton.hand_to(runner, handoff)
    else:
        baton.release(runner)
    try:
        session.parked(runner)
        yield
    finally:
        runner._pop_cancel(cancel)
        baton.acquire(runner)
        runner.on_resume()
    runner.deliver_cancel()


@contextlib.contextmanager
def kept(runner: Runner | None, cancel: Callable[[], Any] | None) -> Iterator[None]:
    """Wait with the baton kept; ``cancel`` is still called if the entry is cancelled (Ctrl-C)."""
    if runner is None:
        yield
        return
    runner._push_cancel(cancel)
    try:
        yield
    finally:
        runner._pop_cancel(cancel)
    runner.deliver_cancel()


def wait_task(task: Any, timeout: float | None) -> bool:
    """``task.wait(timeout)`` with the baton given up meanwhile (see ``released``)."""
    with released(cancel=task.cancel, audit=True):
        return bool(task.wait(timeout))


# ------------------------------------------------------------- debug checker
_ytdlp_dir_cache: list[str] = []


def _ytdlp_dir() -> str | None:
    if _ytdlp_dir_cache:
        return _ytdlp_dir_cache[0]
    module = sys.modules.get('yt_dlp')
    path = getattr(module, '__file__', None)
    if not path:
        return None
    _ytdlp_dir_cache.append(os.path.dirname(os.path.abspath(path)) + os.sep)
    return _ytdlp_dir_cache[0]


class Checker:
    """Profile function: every yt-dlp function called by a session thread needs the baton."""

    def __init__(self, baton: Baton) -> None:
        self.baton = baton
        self.prefix = _ytdlp_dir()
        self.calls = 0
        self.threads: set[int] = set()
        self._previous: dict[int, Any] = {}

    def __call__(self, frame: Any, event: str, arg: Any) -> None:
        if event != 'call' or self.prefix is None:
            return
        filename = frame.f_code.co_filename
        if not filename.startswith(self.prefix):
            return
        runner = current_runner()
        if runner is None or getattr(runner, 'session', None) is None:
            return
        self.calls += 1
        if not self.baton.held_by(runner):
            owner = self.baton.owner
            self.baton.violation(
                f'{runner.label} ({threading.current_thread().name}) called '
                f'{os.path.basename(filename)}:{frame.f_code.co_name} while '
                f'{owner.label if owner else "nobody"} holds the baton')

    def install_here(self) -> None:
        self.threads.add(threading.get_ident())
        self._previous[threading.get_ident()] = sys.getprofile()
        sys.setprofile(self)

    def uninstall_here(self) -> None:
        sys.setprofile(self._previous.pop(threading.get_ident(), None))
