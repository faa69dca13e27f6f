"""Several playlist entries (and several URLs of a batch) downloading at once.

``--concurrent-downloads N`` (params['concurrent_downloads'], default 5) with
async downloads on: each entry is processed by its own worker thread, but a
single baton (baton.py) makes every thread take turns: yt-dlp's Python code
only ever runs in the thread holding it.  A worker gives the baton up only
while it waits (for its engine transfer, for a child process such as ffmpeg,
or for another worker), and only where it cannot hold another lock (baton.py
explains why this cannot deadlock), so the playlist loop goes on to extract
the next entry while earlier ones download.

Patched (class level, each feature-detected; a missing one makes the whole
feature stand aside with one ``[debug]`` line under ``-v``):

  YoutubeDL._YoutubeDL__process_playlist      opens a group of workers around yt-dlp's own loop
  YoutubeDL._YoutubeDL__process_iterable_entry   runs the entry in a worker: waits for a free slot,
                                              hands the baton over, returns when the worker first
                                              waits (a placeholder) or ends (its result)
  YoutubeDL.download                          the URLs of a batch, one worker each
  YoutubeDL.run_all_pps / _write_info_json    'playlist' PPs / 'updated playlist': every worker has ended
  YoutubeDL.dl                                two entries never write the same file at once
  YoutubeDL.record_download_archive / in_download_archive
                                              no duplicate archive lines, also across processes
  YoutubeDL._write_string, FileDownloader._prepare_multiline_status
                                              one status line per download (console.py)
  yt_dlp.utils.Popen.__init__ / wait / communicate
                                              the baton is given up while a child process runs, if
                                              the stack audit allows it and the child's output is
                                              piped (baton.py); the status line is ended first

Semantics kept from sequential yt-dlp:
  * yt-dlp's own loop runs unchanged (playlist items, reverse, match filters,
    "Downloading item i of n", playlist_index, info json, playlist PPs);
  * an entry's exception is raised where the sequential loop would have
    raised it: earlier entries finish, later (already started) ones are
    cancelled (their .part files stay), the earliest failure wins;
  * options that decide an entry from the ones before it (``--max-downloads``,
    the archive, ``--break-on-*``, match filters, ``%(autonumber)s``) see the
    URLs of a batch in order: the URLs then run one after the other
    (``batch_sequential_reason``), each playlist's entries still at once;
  * ``--max-downloads``: ``_num_downloads`` is swapped per worker at each turn,
    so the check at the end of ``process_info`` sees the count as of its own
    entry; the loop starts no entry while the count has reached the maximum;
  * Ctrl-C cancels every transfer (and child process) at once and joins every
    worker before yt-dlp's "Interrupted by user"; a second Ctrl-C stops
    waiting for a worker that does not end within GIVE_UP_AFTER seconds.
``--concurrent-downloads 1``, ``--no-async-downloads`` and the cases listed in
``sequential_reason`` never engage: yt-dlp's code runs untouched.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import threading
import time
from typing import Any, Callable

from . import baton as baton_mod, internals
from .baton import Baton, Checker, EntryCancelled, Runner, current_runner, released, set_current_runner

MARK = '__yt_dlp_async_playlist__'
SESSION_ATTR = '_yt_dlp_async_session'
WAIT_SLICE = 0.25
GIVE_UP_AFTER = 2.0  # seconds: after a second Ctrl-C, how long entries get to end

#: Set by patch_youtubedl_class: None when every target exists, else why not.
UNSUPPORTED: str | None = 'not patched yet'


# ----------------------------------------------------------------- workers
class PendingEntry(dict):  # type: ignore[type-arg]
    """Stands for an entry's result while its worker still runs; replaced when it ends."""

    def __init__(self, worker: Worker) -> None:
        super().__init__()
        self.worker = worker

    def __bool__(self) -> bool:  # yt-dlp's loop counts a falsy result as a failure
        return True

    def __hash__(self) -> int:  # type: ignore[override]
        return id(self)

    def __eq__(self, other: object) -> bool:
        return self is other


def _gated_wait(wait: Callable[[float], bool]) -> bool:
    """``wait(WAIT_SLICE)`` in GATE_SLICE steps, Ctrl-C held back meanwhile (baton.SigintGate)."""
    deadline = time.monotonic() + WAIT_SLICE
    with baton_mod.GATE:
        while True:
            left = deadline - time.monotonic()
            if wait(max(0.0, min(left, baton_mod.GATE_SLICE))):
                return True
            if left <= baton_mod.GATE_SLICE or baton_mod.GATE.interrupted():
                return False


class PlaylistContext:
    """yt-dlp's ``_playlist_level``/``_playlist_urls`` as one URL of a batch sees them.

    yt-dlp alone processes the URLs of a batch one after the other, each from
    level 0 with no playlist seen; at level 0 it forgets the playlists seen.
    Run at once, the second URL would find the first one's playlist "already
    downloaded" and skip it.  So each URL worker (and every worker below it)
    swaps its own pair in at each turn (baton held).
    """

    def __init__(self) -> None:
        self.level = 0
        self.urls: set[Any] = set()
        self._saved: tuple[Any, Any] | None = None

    def swap_in(self, ydl: Any) -> None:
        self._saved = (ydl._playlist_level, ydl._playlist_urls)
        ydl._playlist_level, ydl._playlist_urls = self.level, self.urls

    def swap_out(self, ydl: Any) -> None:
        if self._saved is None:
            return
        self.level, self.urls = ydl._playlist_level, ydl._playlist_urls
        ydl._playlist_level, ydl._playlist_urls = self._saved
        self._saved = None


class LoopRunner(Runner):
    """The thread that runs yt-dlp's top-level loop (usually the main thread)."""

    label = 'main'


class Worker(Runner):
    is_worker = True

    def __init__(self, session: Session, group: Group, index: int, label: str, fn: Callable[[], Any]) -> None:
        super().__init__(session)
        self.group = group
        self.index = index
        self.label = label
        self.fn = fn
        self.leaf = True          # counts against the N slots
        self.swapping = True      # has its own view of ydl._num_downloads
        self.view = session.ydl._num_downloads
        self.parked_or_done = threading.Event()
        self.done = False
        self.result: Any = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name=f'yt-dlp-async {label}', daemon=True)
        parent = group.runner
        self.context: PlaylistContext | None = (
            PlaylistContext() if group.kind == 'URL' else getattr(parent, 'context', None))

    # counter and playlist-state swaps, baton held
    def on_resume(self) -> None:
        if self.context is not None:
            self.context.swap_in(self.session.ydl)
        if self.swapping:
            self.session.swap_in(self)

    def on_park(self) -> None:
        if self.swapping:
            self.session.swap_out(self)
        if self.context is not None:
            self.context.swap_out(self.session.ydl)

    def become_parent(self) -> None:
        """This worker runs a nested loop: it stops counting as a download slot."""
        if self.swapping:
            self.session.swap_out(self)
            self.swapping = False
        if self.leaf:
            self.leaf = False
            self.session.leaf_ended()

    def request_cancel(self) -> None:
        super().request_cancel()
        for group in list(self.groups):
            group.cancel_from(-1)

    @property
    def failed(self) -> bool:
        return self.error is not None and not isinstance(self.error, EntryCancelled)

    def _run(self) -> None:
        session = self.session
        set_current_runner(self)
        if session.checker is not None:
            session.checker.install_here()
        self.root_frame = sys._getframe()
        try:
            session.baton.wait_until_owner(self)
            self.on_resume()
            try:
                self.result = self.fn()
            except BaseException as exc:  # noqa: B902 - recorded, raised by the loop thread
                self.error = exc
            finally:
                if session.baton.held_by(self):
                    self.on_park()
                self.done = True
                self.group.worker_ended(self)
        finally:
            self.parked_or_done.set()
            session.notify()
            if session.baton.held_by(self):
                session.baton.release(self)
            if session.checker is not None:
                session.checker.uninstall_here()
            set_current_runner(None)


class Group:
    """One loop (a playlist's entries, or a batch's URLs) and its workers."""

    def __init__(self, session: Session, runner: Runner, kind: str, ie_result: Any = None) -> None:
        self.session = session
        self.runner = runner
        self.kind = kind
        self.ie_result = ie_result
        self.workers: list[Worker] = []
        self.finished = False

    # --------------------------------------------------------- loop thread
    def spawn(self, fn: Callable[[], Any], label: str) -> Any:
        """Run ``fn`` (yt-dlp's processing of one entry) in a worker; see the module doc."""
        session = self.session
        self.wait_for_slot()
        worker = Worker(session, self, len(self.workers), label, fn)
        self.workers.append(worker)
        session.leaf_started()
        with released(handoff=worker):
            worker.thread.start()
            while not _gated_wait(worker.parked_or_done.wait):
                pass
        if worker.done:
            if worker.error is not None:
                self.raise_pending()
                raise worker.error  # cancelled before it began (an abort is under way)
            return worker.result
        return PendingEntry(worker)

    def wait_for_slot(self) -> None:
        session = self.session
        while True:
            self.raise_pending()
            if session.runner_cancelled(self.runner):
                raise EntryCancelled(f'{self.runner.label} cancelled')
            if session.leaves < session.slots and not session.max_downloads_reached():
                return
            session.wait_for_change()

    def raise_pending(self) -> None:
        """If an entry failed: let the earlier ones finish, then raise the earliest failure."""
        if not any(w.failed for w in self.workers):
            return
        self.wait_all()
        failure = self.earliest_failure()
        if failure is not None:
            raise failure

    def earliest_failure(self) -> BaseException | None:
        for worker in self.workers:
            if worker.failed:
                return worker.error
        return None

    def wait_all(self) -> None:
        while not all(w.done for w in self.workers):
            self.session.wait_for_change()

    def wait_all_or_give_up(self, seconds: float) -> None:
        """wait_all for at most ``seconds``, never waiting for the baton (a stuck worker may hold it)."""
        session = self.session
        if session.baton.held_by(self.runner):
            session.baton.release(self.runner)  # not taken back: the session is ending
        deadline = time.monotonic() + seconds
        while not all(w.done for w in self.workers) and time.monotonic() < deadline:
            session.wait_unbatoned()

    def cancel_from(self, index: int) -> None:
        for worker in self.workers:
            if worker.index > index and not worker.done:
                worker.request_cancel()

    def finish(self, ie_result: Any = None) -> None:
        """Every worker has ended; the first failure is raised; placeholders are replaced."""
        self.wait_all()
        self.finished = True
        failure = self.earliest_failure()
        if failure is not None:
            raise failure
        target = ie_result if ie_result is not None else self.ie_result
        entries = target.get('entries') if isinstance(target, dict) else None
        if isinstance(entries, list):
            target['entries'] = [e.worker.result if isinstance(e, PendingEntry) else e for e in entries]

    # -------------------------------------------------------- worker thread
    def worker_ended(self, worker: Worker) -> None:
        """Called by the worker, baton held, when its entry is done."""
        if worker.leaf:
            worker.leaf = False
            self.session.leaf_ended()
        if worker.failed:
            self.cancel_from(worker.index)  # later entries would not have started


class Session:
    """Concurrent processing for one YoutubeDL, from the top loop's start to its end."""

    def __init__(self, ydl: Any, slots: int) -> None:
        self.ydl = ydl
        self.slots = slots
        self.baton = Baton(check=baton_mod.check_enabled())
        self.checker = Checker(self.baton) if self.baton.check else None
        self.state = threading.Condition(threading.Lock())
        self.leaves = 0
        self.saved_global = 0
        self.files: dict[str, Runner] = {}
        self.archive_offset = 0
        self.board: Any = None
        self.loop_runner = LoopRunner(self)
        self.kept: dict[str, int] = {}  # waits that kept the baton (baton.stack_is_audited), by frame

    def note_kept(self, frame: str) -> None:
        self.kept[frame] = self.kept.get(frame, 0) + 1

    # state changes (any thread)
    def notify(self) -> None:
        with self.state:
            self.state.notify_all()

    def wait_for_change(self) -> None:
        with released():
            self.wait_unbatoned()

    def wait_unbatoned(self) -> None:
        """Wait up to WAIT_SLICE for a change of state (the baton is not touched)."""
        def wait(timeout: float) -> bool:
            with self.state:
                return self.state.wait(timeout)
        _gated_wait(wait)

    def parked(self, runner: Runner) -> None:
        if isinstance(runner, Worker):
            runner.parked_or_done.set()
        self.notify()

    def leaf_started(self) -> None:
        self.leaves += 1

    def leaf_ended(self) -> None:
        self.leaves -= 1
        self.notify()

    def runner_cancelled(self, runner: Runner) -> bool:
        return runner.cancel_requested

    def max_downloads_reached(self) -> bool:
        limit = self.ydl.params.get('max_downloads')
        return bool(limit) and self.leaves > 0 and self.ydl._num_downloads >= limit

    # ydl._num_downloads as seen by each worker (baton held)
    def swap_in(self, worker: Worker) -> None:
        self.saved_global = self.ydl._num_downloads
        self.ydl._num_downloads = worker.view

    def swap_out(self, worker: Worker) -> None:
        delta = self.ydl._num_downloads - worker.view
        worker.view = self.ydl._num_downloads
        self.ydl._num_downloads = self.saved_global + delta

    def all_workers(self) -> list[Worker]:
        found: list[Worker] = []

        def walk(groups: list[Group]) -> None:
            for group in groups:
                for worker in group.workers:
                    found.append(worker)
                    walk(worker.groups)
        walk(self.loop_runner.groups)
        return found

    def cancel_all(self) -> None:
        for worker in self.all_workers():
            if not worker.done:
                worker.request_cancel()

    # files written by dl(): one writer per file
    def claim_file(self, runner: Runner, key: str) -> None:
        while True:
            holder = self.files.get(key)
            if holder is None or holder is runner or getattr(holder, 'done', False):
                self.files[key] = runner
                return
            self.wait_for_change()

    def drop_file(self, runner: Runner, key: str) -> None:
        if self.files.get(key) is runner:
            del self.files[key]
            self.notify()

    def status_board(self, base: Any) -> Any:
        if self.board is None:
            from .console import StatusBoard
            self.board = StatusBoard(self.ydl, base.stream, bool(getattr(base, '_HAVE_FULLCAP', False)))
        return self.board


# --------------------------------------------------------------- engaging
def session_of(ydl: Any) -> Session | None:
    session = ydl.__dict__.get(SESSION_ATTR) if hasattr(ydl, '__dict__') else None
    return session if isinstance(session, Session) else None


def runner_of(ydl: Any) -> Runner | None:
    """The current thread's runner, if it takes part in ydl's session."""
    runner = current_runner()
    session = session_of(ydl)
    if runner is None or session is None or runner.session is not session:
        return None
    return runner


def sequential_reason(ydl: Any, download: bool = True) -> str | None:
    """Why this YoutubeDL processes entries one after the other (None: concurrently)."""
    params = ydl.params
    if UNSUPPORTED is not None:
        return UNSUPPORTED
    from .internals import check
    unsupported = check()
    if unsupported:
        return unsupported
    try:
        slots = int(params.get('concurrent_downloads') or 1)
    except (TypeError, ValueError):
        return 'concurrent_downloads is not a number'
    if slots <= 1:
        return '--concurrent-downloads 1'
    if not params.get('async_downloads'):
        return 'async downloads are off'
    if not download or params.get('simulate') or params.get('skip_download'):
        return 'nothing is downloaded'
    outtmpl = params.get('outtmpl')
    default = outtmpl.get('default') if isinstance(outtmpl, dict) else outtmpl
    if default == '-':
        return 'the output is stdout'
    if isinstance(default, str) and '%(' not in default.replace('%(ext)s', ''):
        # every entry writes the same name: which one is left there depends on the order
        return 'every entry has the same output name'
    if params.get('break_per_url'):
        return '--break-per-input counts per URL'
    if params.get('skip_playlist_after_errors'):
        return '--skip-playlist-after-errors counts failures in order'
    if not params.get('ignoreerrors'):
        # yt-dlp stops at the first failure: an entry after it must leave nothing behind
        # (no file, archive line, info json, .part), which only doing them in order guarantees
        return ABORT_ON_ERROR
    from . import shared_engine
    reason = shared_engine.unavailable_reason()
    if reason:
        return reason
    from .options import given
    from .console import is_terminal
    if not given(params, 'concurrent_downloads') and not is_terminal(ydl, 'out'):
        # a script or frontend may read it: it attributes the progress lines that follow a
        # "Destination:" line to that file, which entries at once would make wrong
        return NOT_A_TERMINAL
    return None


ABORT_ON_ERROR = '--abort-on-error stops at the first failing entry'
NOT_A_TERMINAL = ('the output is not a terminal (a program may be reading it; '
                  '--concurrent-downloads N downloads entries at once there too)')
#: reasons that are the user's own choice, or no loss: no warning when --concurrent-downloads was given
_QUIET_REASONS = ('--concurrent-downloads 1', 'async downloads are off', 'nothing is downloaded', NOT_A_TERMINAL)
_WARNED_ATTR = '_yt_dlp_async_concurrency_warned'


def explain_sequential(ydl: Any, kind: str, reason: str) -> None:
    """Say why entries run one at a time: one WARNING per YoutubeDL when the user asked for
    concurrency (``--concurrent-downloads N``, or the API's ``concurrent_downloads``), else ``-v``."""
    from .options import EXPLICIT_KEY, given
    params = ydl.params
    try:
        slots = int(params.get('concurrent_downloads') or 1)
    except (TypeError, ValueError):
        slots = 1
    if not reason.startswith(('--concurrent-downloads 1', 'async downloads are off')):
        _debug_once(ydl, f'[async] {kind}s are processed one at a time: {reason}')
    if reason.startswith(_QUIET_REASONS) or slots <= 1 or not given(params, 'concurrent_downloads'):
        return
    if ydl.__dict__.get(_WARNED_ATTR):
        return
    ydl.__dict__[_WARNED_ATTR] = True
    cli = isinstance(params.get(EXPLICIT_KEY), list)
    option = f'--concurrent-downloads {slots}' if cli else f'concurrent_downloads {slots}'
    if reason == ABORT_ON_ERROR and not cli:
        reason += " (set 'ignoreerrors': 'only_download' to download entries at once)"
    try:
        ydl.report_warning(f'[async] {option} has no effect: {reason}; entries are downloaded one at a time')
    except Exception:
        pass


def batch_sequential_reason(params: Any) -> str | None:
    """Why the URLs of a batch are processed one after the other, each URL's
    playlist still concurrently (None: the URLs run at once too).

    These options decide per entry from what the entries before it did, across
    the URLs of a batch as within one playlist; the playlist loop keeps its
    order (it waits for a slot before matching an entry), the URLs would not.
    """
    if params.get('max_downloads'):
        return '--max-downloads counts the entries in order'
    if params.get('download_archive') is not None:
        return '--download-archive: an entry in two URLs is downloaded once, by the first'
    if params.get('break_on_existing') or params.get('break_on_reject'):
        return '--break-on-existing/--break-on-reject stop at an entry in order'
    if params.get('match_filter') is not None:
        return 'a match filter sees the entries in order'
    outtmpl = params.get('outtmpl')
    templates = outtmpl.values() if isinstance(outtmpl, dict) else [outtmpl]
    if any(isinstance(t, str) and 'autonumber' in t for t in templates):
        return '%(autonumber)s numbers the entries in order'
    return None


def _debug_once(ydl: Any, message: str) -> None:
    noted = ydl.__dict__.setdefault('_yt_dlp_async_playlist_noted', set())
    if message not in noted:
        noted.add(message)
        try:
            ydl.write_debug(message)
        except Exception:
            pass


class _GroupScope:
    """Open a group for a loop of ``kind``; None when the loop runs sequentially."""

    def __init__(self, ydl: Any, kind: str, download: bool = True, ie_result: Any = None) -> None:
        self.ydl = ydl
        self.kind = kind
        self.download = download
        self.ie_result = ie_result
        self.group: Group | None = None
        self.top = False

    def __enter__(self) -> Group | None:
        ydl = self.ydl
        runner = current_runner()
        session = session_of(ydl)
        if session is not None:
            if runner is None or runner.session is not session or not isinstance(runner, Worker):
                return None  # not a worker of this session (another thread, or the loop itself)
            if not runner.session.baton.held_by(runner):
                return None
            runner.become_parent()
            self.group = Group(session, runner, self.kind, self.ie_result)
            runner.groups.append(self.group)
            return self.group
        if runner is not None:
            return None  # a worker of another YoutubeDL's session
        reason = sequential_reason(ydl, self.download)
        if reason is not None:
            explain_sequential(ydl, self.kind, reason)
            return None
        session = Session(ydl, int(ydl.params['concurrent_downloads']))
        _debug_once(ydl, f'[async] Concurrent downloads: up to {session.slots} at once '
                         f'(extraction and post-processing still run one at a time)')
        ydl.__dict__[SESSION_ATTR] = session
        set_current_runner(session.loop_runner)
        session.loop_runner.root_frame = sys._getframe(1)
        baton_mod.GATE.install()
        session.baton.acquire(session.loop_runner)
        if session.checker is not None:
            session.checker.install_here()
        self.top = True
        self.group = Group(session, session.loop_runner, self.kind, self.ie_result)
        session.loop_runner.groups.append(self.group)
        return self.group

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        group = self.group
        if group is None:
            return
        session = group.session
        replacement: BaseException | None = None
        try:
            if isinstance(exc, KeyboardInterrupt):  # Ctrl-C, or this parent worker was cancelled
                if self.top:
                    session.cancel_all()
                else:
                    group.cancel_from(-1)
            # any other exception was raised by the loop itself: the entries already started
            # come before it in sequential order, so they finish
            if self._wait_for_workers(group, isinstance(exc, KeyboardInterrupt) and self.top) and exc is None:
                raise KeyboardInterrupt
            failure = group.earliest_failure()
            if failure is not None and failure is not exc and not isinstance(exc, KeyboardInterrupt):
                replacement = failure
            elif exc is None and not group.finished:
                group.finish()
        finally:
            group.runner.groups.remove(group) if group in group.runner.groups else None
            if self.top:
                self._end_session(session, exc if replacement is None else replacement)
        if replacement is not None:
            raise replacement

    @staticmethod
    def _wait_for_workers(group: Group, interrupted: bool) -> bool:
        """Wait until every worker of ``group`` has ended; True if Ctrl-C was pressed meanwhile.

        A Ctrl-C cancels every entry and waits for them to end (their transfers
        and children are cancelled at once, their files cleaned up).  Once
        Ctrl-C has been pressed twice the wait is bounded (GIVE_UP_AFTER): an
        entry stuck where it cannot be cancelled (a progress hook that never
        returns) is left behind (a daemon thread), so Ctrl-C always works.
        """
        session = group.session
        presses = 1 if interrupted else 0
        caught = False
        while True:
            try:
                if presses >= 2:
                    group.wait_all_or_give_up(GIVE_UP_AFTER)
                else:
                    group.wait_all()
                return caught
            except KeyboardInterrupt:
                session.cancel_all()
                presses += 1
                caught = True

    def _end_session(self, session: Session, exc: BaseException | None) -> None:
        ydl = self.ydl
        if session.board is not None:
            session.board.close()
        checker = session.checker
        if checker is not None:
            checker.uninstall_here()
        if session.baton.held_by(session.loop_runner):
            session.baton.release(session.loop_runner)
        set_current_runner(None)
        ydl.__dict__.pop(SESSION_ATTR, None)
        baton_mod.GATE.uninstall()
        if checker is not None:
            summary = (f'[async] baton check: {checker.calls} yt-dlp calls checked in '
                       f'{len(checker.threads)} threads, {len(session.baton.violations)} violations\n')
            if session.kept:
                summary += '[async] baton kept while waiting in: ' + ', '.join(
                    f'{frame} ({count}x)' for frame, count in sorted(session.kept.items())) + '\n'

            try:
                os.write(2, summary.encode())
            except OSError:
                pass
            if session.baton.violations and exc is None:
                raise AssertionError('baton violations: ' + '; '.join(session.baton.violations[:5]))


# -------------------------------------------------------------- the patches
def _wrap(klass: Any, name: str, make: Callable[[Callable[..., Any]], Callable[..., Any]]) -> None:
    original = klass.__dict__[name]
    if getattr(original, MARK, False):
        return
    wrapper = make(original)
    functools.update_wrapper(wrapper, original)
    setattr(wrapper, MARK, True)
    setattr(klass, name, wrapper)


def _entry_label(kind: str, extra_info: Any, fallback: int) -> str:
    number = None
    try:
        number = extra_info.get('playlist_autonumber')
    except Exception:
        pass
    return f'{kind} {number if number is not None else fallback}'


def _current_group(ydl: Any) -> Group | None:
    runner = runner_of(ydl)
    groups = getattr(runner, 'groups', None)
    if not groups:
        return None
    group = groups[-1]
    return group if group.runner is runner and not group.finished else None


def patch_youtubedl_class(klass: Any) -> bool:
    """Install the patches on yt-dlp's YoutubeDL class (idempotent); False if it stands aside."""
    global UNSUPPORTED
    needed = ['_YoutubeDL__process_playlist', '_YoutubeDL__process_iterable_entry',
              '_YoutubeDL__download_wrapper', 'download', 'extract_info', 'run_all_pps',
              '_write_info_json', 'dl', 'record_download_archive', 'in_download_archive',
              '_make_archive_id', '_write_string', 'process_info', '_match_entry']
    missing = [name for name in needed if not callable(klass.__dict__.get(name))]
    try:
        FileDownloader = internals.load('yt_dlp.downloader.common:FileDownloader')
        Popen = internals.load('yt_dlp.utils:Popen')
        internals.load('yt_dlp.utils:locked_file')  # the archive writes need it
    except ImportError as exc:
        missing.append(f'yt_dlp.utils/downloader.common ({exc})')
        FileDownloader = Popen = None
    if FileDownloader is not None and not callable(FileDownloader.__dict__.get('_prepare_multiline_status')):
        missing.append('FileDownloader._prepare_multiline_status')
    if Popen is not None and not (isinstance(Popen, type) and issubclass(Popen, subprocess.Popen)):
        missing.append('yt_dlp.utils.Popen')
    init_code = getattr(klass.__dict__.get('__init__'), '__code__', None)
    if init_code is None or '_num_downloads' not in init_code.co_names:
        missing.append('YoutubeDL._num_downloads')
    if missing:
        UNSUPPORTED = 'yt-dlp lacks ' + ', '.join(missing)
        from .fallback import stand_aside
        stand_aside('concurrent playlist entries', f'not found in this yt-dlp: {", ".join(missing)}; '
                     'entries are downloaded one at a time')
        return False

    _wrap(klass, '_YoutubeDL__process_playlist', _make_process_playlist)
    _wrap(klass, '_YoutubeDL__process_iterable_entry', _make_process_iterable_entry)
    _wrap(klass, 'download', _make_download)
    _wrap(klass, '_match_entry', _make_match_entry)
    _wrap(klass, 'run_all_pps', _make_run_all_pps)
    _wrap(klass, '_write_info_json', _make_write_info_json)
    _wrap(klass, 'dl', _make_dl)
    _wrap(klass, 'record_download_archive', _make_record_download_archive)
    _wrap(klass, 'in_download_archive', _make_in_download_archive)
    _wrap(klass, '_write_string', _make_write_string)
    _wrap(FileDownloader, '_prepare_multiline_status', _make_prepare_multiline_status)
    _patch_popen(Popen)
    UNSUPPORTED = None
    return True


def _make_process_playlist(original: Callable[..., Any]) -> Callable[..., Any]:
    def process_playlist(self: Any, ie_result: Any, download: Any, *args: Any, **kwargs: Any) -> Any:
        with _GroupScope(self, 'item', bool(download), ie_result) as group:
            result = original(self, ie_result, download, *args, **kwargs)
            if group is not None and not group.finished:
                group.finish(ie_result)  # returned early (e.g. the updated info json failed)
            return result
    return process_playlist


def _make_process_iterable_entry(original: Callable[..., Any]) -> Callable[..., Any]:
    def process_iterable_entry(self: Any, entry: Any, download: Any, extra_info: Any) -> Any:
        group = _current_group(self)
        if group is None or group.kind != 'item':
            return original(self, entry, download, extra_info)
        label = _entry_label('item', extra_info, len(group.workers) + 1)
        parent = group.runner.label if isinstance(group.runner, Worker) else None
        return group.spawn(lambda: original(self, entry, download, extra_info),
                           f'{parent}, {label}' if parent else label)
    return process_iterable_entry


def _make_match_entry(original: Callable[..., Any]) -> Callable[..., Any]:
    def _match_entry(self: Any, info_dict: Any, *args: Any, **kwargs: Any) -> Any:
        # yt-dlp's loop checks each entry before "Downloading item i of n": wait for a free slot
        # first (and stop there at --max-downloads), as the sequential loop would not have got here yet
        group = _current_group(self)
        if group is not None and group.kind == 'item' and group.workers:
            group.wait_for_slot()
        return original(self, info_dict, *args, **kwargs)
    return _match_entry


def _make_download(original: Callable[..., Any]) -> Callable[..., Any]:
    def download(self: Any, url_list: Any) -> Any:
        variadic = internals.load('yt_dlp.utils:variadic')
        urls = list(variadic(url_list))
        if len(urls) < 2 or session_of(self) is not None or current_runner() is not None:
            return original(self, url_list)
        reason = sequential_reason(self)
        if reason is not None:
            explain_sequential(self, 'URL', reason)
            return original(self, url_list)
        reason = batch_sequential_reason(self.params)
        if reason is not None:
            _debug_once(self, f'[async] URLs are processed one at a time (the entries of each '
                              f'playlist still at once): {reason}')
            return original(self, url_list)
        # a template without fields never gets here (sequential_reason): yt-dlp's own
        # download() raises SameFileError for it
        with _GroupScope(self, 'URL') as group:
            if group is None:
                return original(self, url_list)
            for number, url in enumerate(urls, 1):
                run = functools.partial(
                    self._YoutubeDL__download_wrapper(self.extract_info), url,
                    force_generic_extractor=self.params.get('force_generic_extractor', False))
                group.spawn(run, f'URL {number}')
            group.finish()
        return self._download_retcode
    return download


def _make_run_all_pps(original: Callable[..., Any]) -> Callable[..., Any]:
    def run_all_pps(self: Any, key: Any, info: Any, *args: Any, **kwargs: Any) -> Any:
        if key == 'playlist':
            group = _current_group(self)
            if group is not None and group.kind == 'item':
                group.finish(info)
        return original(self, key, info, *args, **kwargs)
    return run_all_pps


def _make_write_info_json(original: Callable[..., Any]) -> Callable[..., Any]:
    def _write_info_json(self: Any, label: Any, ie_result: Any, *args: Any, **kwargs: Any) -> Any:
        if label == 'updated playlist':
            group = _current_group(self)
            if group is not None and group.kind == 'item':
                group.finish(ie_result)
        return original(self, label, ie_result, *args, **kwargs)
    return _write_info_json


def _make_dl(original: Callable[..., Any]) -> Callable[..., Any]:
    def dl(self: Any, name: Any, info: Any, *args: Any, **kwargs: Any) -> Any:
        runner = runner_of(self)
        if runner is None or not isinstance(name, str) or name == '-' or kwargs.get('test'):
            return original(self, name, info, *args, **kwargs)
        key = os.path.abspath(name)
        session = runner.session
        session.claim_file(runner, key)
        try:
            return original(self, name, info, *args, **kwargs)
        finally:
            session.drop_file(runner, key)
    return dl


def _archive_path(ydl: Any) -> str | None:
    is_path_like = internals.load('yt_dlp.utils:is_path_like')
    fn = ydl.params.get('download_archive')
    return os.fspath(fn) if fn is not None and is_path_like(fn) else None


def _read_new_archive_lines(session: Session, fn: str) -> set[str]:
    """Lines appended to the archive file since we last looked (by any process)."""
    try:
        with open(fn, 'rb') as f:
            size = os.fstat(f.fileno()).st_size
            if size < session.archive_offset:
                session.archive_offset = 0  # rewritten: read it all again
            f.seek(session.archive_offset)
            data = f.read()
    except FileNotFoundError:
        return set()
    end = data.rfind(b'\n') + 1  # only whole lines
    session.archive_offset += end
    return {line.strip() for line in data[:end].decode('utf-8', 'replace').splitlines() if line.strip()}


def _make_record_download_archive(original: Callable[..., Any]) -> Callable[..., Any]:
    def record_download_archive(self: Any, info_dict: Any) -> Any:
        runner = runner_of(self)
        fn = _archive_path(self)
        if runner is None or fn is None:
            return original(self, info_dict)
        locked_file = internals.load('yt_dlp.utils:locked_file')
        vid_id = self._make_archive_id(info_dict)
        assert vid_id
        self.write_debug(f'Adding to archive: {vid_id}')
        with locked_file(fn, 'a', encoding='utf-8') as archive_file:
            # under the exclusive lock: a line another process (or entry) wrote is not written twice
            self.archive.update(_read_new_archive_lines(runner.session, fn))
            if vid_id not in self.archive:
                archive_file.write(vid_id + '\n')
                archive_file.flush()
        self.archive.add(vid_id)
    return record_download_archive


def _make_in_download_archive(original: Callable[..., Any]) -> Callable[..., Any]:
    def in_download_archive(self: Any, info_dict: Any) -> Any:
        runner = runner_of(self)
        fn = _archive_path(self)
        if runner is not None and fn is not None and isinstance(self.archive, set):
            try:
                if os.path.getsize(fn) != runner.session.archive_offset:
                    self.archive.update(_read_new_archive_lines(runner.session, fn))
            except OSError:
                pass
        return original(self, info_dict)
    return in_download_archive


def _make_write_string(original: Callable[..., Any]) -> Callable[..., Any]:
    def _write_string(self: Any, *args: Any, **kwargs: Any) -> Any:
        session = session_of(self)
        board = session.board if session is not None else None
        if board is None:
            return original(self, *args, **kwargs)
        return board.around_message(lambda: original(self, *args, **kwargs))
    return _write_string


def _make_prepare_multiline_status(original: Callable[..., Any]) -> Callable[..., Any]:
    def _prepare_multiline_status(self: Any, *args: Any, **kwargs: Any) -> Any:
        result = original(self, *args, **kwargs)
        runner = runner_of(getattr(self, 'ydl', None))
        if isinstance(runner, Worker):
            from .console import make_slot_printer
            base = self._multiline
            if hasattr(base, 'stream') and hasattr(base, 'maximum'):
                templates = self.params.get('progress_template') or {}
                # a --progress-template line stays exactly what the user wrote
                label = None if isinstance(templates, dict) and templates.get('download') else runner.label
                self._multiline = make_slot_printer(runner.session.status_board(base), label, base)
        return result
    return _prepare_multiline_status


def _inherits_output(proc: subprocess.Popen[Any]) -> bool:
    """The child writes to our stdout or stderr itself (neither is piped to us)."""
    return proc.stdout is None or proc.stderr is None


def _patch_popen(popen: type) -> None:
    """Give the baton up while waiting for a child process (ffmpeg, ...), where that is safe.

    The release is audited (baton.released(audit=True)): a child waited for
    while a lock may be held (the ffmpeg version probe inside a
    cached_property) keeps the baton; see baton.py's module doc.  A child
    whose output is not piped (``--exec``) keeps it too, and the status line
    is ended before it starts, so its output starts at column 0 and no other
    entry's progress lands in it.  Either way the child is killed if the entry
    is cancelled (Ctrl-C).
    """
    if popen.__dict__.get(MARK):
        return
    original_init = popen.__dict__.get('__init__')
    init: Callable[..., None] = original_init if callable(original_init) else subprocess.Popen.__init__

    def _kill(proc: subprocess.Popen[Any]) -> Callable[[], None]:
        return lambda: subprocess.Popen.kill(proc)

    def nested() -> bool:  # subprocess's own call (communicate -> wait): the outer call decided
        return sys._getframe(2).f_code.co_filename == subprocess.__file__

    def __init__(self: subprocess.Popen[Any], *args: Any, **kwargs: Any) -> None:
        runner = current_runner()
        board = getattr(getattr(runner, 'session', None), 'board', None)
        if board is not None and (kwargs.get('stdout') is None or kwargs.get('stderr') is None):
            board.suspend()  # the child may print: end the status line first
        init(self, *args, **kwargs)

    def waiting(self: subprocess.Popen[Any]) -> Any:
        if _inherits_output(self):
            return baton_mod.kept(current_runner(), _kill(self))
        return released(cancel=_kill(self), audit=True)

    def wait(self: subprocess.Popen[Any], timeout: float | None = None) -> int:
        if current_runner() is None or nested():
            return subprocess.Popen.wait(self, timeout)
        with waiting(self):
            return subprocess.Popen.wait(self, timeout)

    def communicate(self: subprocess.Popen[Any], *args: Any, **kwargs: Any) -> Any:
        if current_runner() is None or nested():
            return subprocess.Popen.communicate(self, *args, **kwargs)
        with waiting(self):
            return subprocess.Popen.communicate(self, *args, **kwargs)

    if callable(original_init):  # else: no status line is ended before a child (cosmetic only)
        functools.update_wrapper(__init__, original_init)
        popen.__init__ = __init__  # type: ignore[misc]
    if 'wait' not in popen.__dict__:
        popen.wait = wait  # type: ignore[attr-defined]
    if 'communicate' not in popen.__dict__:
        popen.communicate = communicate  # type: ignore[attr-defined]
    setattr(popen, MARK, True)
