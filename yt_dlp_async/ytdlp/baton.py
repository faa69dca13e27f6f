"""The baton: one lock, held by whichever thread runs yt-dlp's Python code.

Concurrent playlist entries (playlist.py) run in worker threads, but only the
thread holding the baton may run yt-dlp code.  A thread gives the baton up
only while it *waits*: for an engine transfer (``wait_task``, called from the
downloader's poll loop in http_download.py), for a child process (ffmpeg,
``--exec``: yt-dlp's ``Popen.wait``/``communicate``, patched in playlist.py),
or for another worker (playlist.py).  So extraction, format selection,
post-processing, archive writes and hooks still run one at a time; only the
waiting overlaps.

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
        with self._cond:
            if self._owner is None and not self._queue:
                self._grant(runner)
                return
            if self._owner is runner:
                return
            self._queue.append(runner)
            try:
                while self._owner is not runner:
                    self._cond.wait()
            except BaseException:  # KeyboardInterrupt in the main thread
                if self._owner is runner:
                    self._pass_on()
                else:
                    try:
                        self._queue.remove(runner)
                    except ValueError:
                        pass
                raise

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


# ------------------------------------------------------------------- threads
_local = threading.local()


def current_runner() -> Runner | None:
    return getattr(_local, 'runner', None)


def set_current_runner(runner: Runner | None) -> None:
    _local.runner = runner


@contextlib.contextmanager
def released(cancel: Callable[[], Any] | None = None,
             handoff: Runner | None = None) -> Iterator[None]:
    """Give the baton up for the duration of a wait, if this thread holds it.

    ``cancel`` (e.g. ``task.cancel`` or ``proc.kill``) is called from another
    thread if the entry is cancelled meanwhile; after the wait a cancelled
    worker raises EntryCancelled (once).  ``handoff`` gives the baton to that
    runner instead of the next waiter.  Does nothing outside a session.
    """
    runner = current_runner()
    session = getattr(runner, 'session', None)
    if runner is None or session is None or not session.baton.held_by(runner):
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


def wait_task(task: Any, timeout: float | None) -> bool:
    """``task.wait(timeout)`` with the baton given up meanwhile (see ``released``)."""
    with released(cancel=task.cancel):
        return bool(task.wait(timeout))


# ------------------------------------------------------------- debug checker
def _ytdlp_dir() -> str | None:
    module = sys.modules.get('yt_dlp')
    path = getattr(module, '__file__', None)
    return os.path.dirname(os.path.abspath(path)) + os.sep if path else None


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
