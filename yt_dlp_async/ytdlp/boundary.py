"""The fallback boundary: a failure of our own hands the download back to yt-dlp.

Every engine download runs inside ``guarded()``.  An exception raised by our
code (not the server's HTTP or network error that yt-dlp would report as
well) before the first byte of the download is committed sends that download
to yt-dlp's own downloader:

* an ``OSError`` is the machine's answer (a name too long for our temporary
  files, a FIFO, permissions): a policy, told in one ``[debug]`` line;
* a ``ServerFault`` is the server's: what it sent (an AES key of the wrong
  length) fails yt-dlp's own code as well: one ``[debug]`` line, and yt-dlp
  then does with it what it does alone;
* anything else is a bug in yt-dlp-async: a WARNING that asks for a report.

"Committed" means a byte reached the output: a file we may write (the final
name, ``.part``, ``.part-async``, the fragment ``.part``) grew, or a progress
hook was told of downloaded bytes (the only sign when writing to stdout).  Once
a byte is committed the exception propagates as it would in yt-dlp: falling
back then could write the same bytes twice.  Empty files that our attempt
created are removed before yt-dlp's downloader starts, so nothing is left that
yt-dlp alone would not leave.

yt-dlp's own errors (``YoutubeDLError``: ``DownloadError``, ``HTTPError``,
``ContentTooShortError``, ...), ``KeyboardInterrupt`` and ``SystemExit`` always
propagate.

``guarded()`` also feeds the run summary (summary.py): each engine download's
start, end and outcome, and a fallback (our downloaders count their retries
where they report them: ``summary.retried``).
"""

from __future__ import annotations

import os
from typing import Any, Callable, Iterable

from . import fallback, internals, summary

#: What our downloads may create next to the final name (segmented_download, http_download, fragments).
SUFFIXES = ('', '.part', '.part-async', '.part-async.ctl')


class Snapshot:
    """The sizes of the files a download may write, taken before it starts."""

    def __init__(self, paths: Iterable[str]) -> None:
        self.sizes: dict[str, int | None] = {path: _size(path) for path in dict.fromkeys(paths) if path}

    @classmethod
    def around(cls, filename: str, extra: Iterable[str] = ()) -> Snapshot:
        if not filename or filename == '-':
            return cls(extra)
        return cls([filename + suffix for suffix in SUFFIXES] + list(extra))

    def grew(self) -> bool:
        return any((_size(path) or 0) > (before or 0) for path, before in self.sizes.items())

    def remove_new_empty(self) -> list[str]:
        """Remove the empty files that did not exist before; returns their names."""
        removed = []
        for path, before in self.sizes.items():
            if before is None and _size(path) == 0:
                try:
                    os.remove(path)
                    removed.append(path)
                except OSError:
                    pass
        return removed


def _size(path: str) -> int | None:
    try:
        return os.stat(path).st_size if os.path.isfile(path) else None
    except (OSError, ValueError):
        return None


class ServerFault(Exception):
    """The server sent what yt-dlp's own code fails on too; ``__cause__`` is the
    exception yt-dlp's code raised.  Once a byte is committed that exception
    propagates in its place, as it would from yt-dlp alone."""


def is_ytdlp_error(exc: BaseException) -> bool:
    """An error yt-dlp's own downloader would raise too (or an interruption): never ours to catch."""
    if not isinstance(exc, Exception):
        return True  # KeyboardInterrupt, SystemExit, GeneratorExit
    try:
        return isinstance(exc, internals.load('yt_dlp.utils:YoutubeDLError'))
    except internals.InternalMissing:
        return False


class _HookWatch:
    """Sees every progress hook call of one downloader: did it report downloaded bytes?"""

    def __init__(self, fd: Any) -> None:
        self.fd = fd
        self.reported = False
        self.original = fd.__dict__.get('_hook_progress')

    def __enter__(self) -> _HookWatch:
        inner = self.fd._hook_progress

        def hook_progress(status: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
            if (status.get('downloaded_bytes') or 0) > 0 and status.get('status') == 'downloading':
                self.reported = True
            return inner(status, *args, **kwargs)

        self.fd._hook_progress = hook_progress
        return self

    def __exit__(self, *exc_info: Any) -> None:
        if self.original is None:
            self.fd.__dict__.pop('_hook_progress', None)
        else:
            self.fd._hook_progress = self.original


def guarded(fd: Any, fd_name: str, snapshot: Snapshot, engine_run: Callable[[], bool],
            native_run: Callable[[], bool], watch_hooks: bool = False) -> bool:
    """``engine_run()``; on our own failure before a byte is committed, ``native_run()``."""
    watch = _HookWatch(fd) if watch_hooks else None
    ydl = getattr(fd, 'ydl', None)
    summary.download_started(ydl)
    handed_back = False
    try:
        if watch is None:
            ok = bool(engine_run())
        else:
            with watch:
                ok = bool(engine_run())
    except BaseException as exc:
        if is_ytdlp_error(exc) or snapshot.grew() or (watch is not None and watch.reported):
            _count_end(fd, ydl, False)
            if isinstance(exc, ServerFault) and exc.__cause__ is not None:
                raise exc.__cause__ from None   # its traceback alone, as from yt-dlp
            raise
        snapshot.remove_new_empty()
        report(fd, fd_name, exc)
        handed_back = True
    if handed_back:
        # outside the except: an error of yt-dlp's own run is its own, not one raised
        # while handling ours (its traceback would show ours first)
        fallback.mark_handed_back()
        return native_run()
    # outside the try: the download is over (to stdout nothing grew on disk),
    # so nothing raised from here on may send it to yt-dlp a second time
    _count_end(fd, ydl, ok)
    return ok


def _count_end(fd: Any, ydl: Any, ok: bool) -> None:
    """The summary's count of one ended download; a bug in it is reported, never fatal."""
    try:
        summary.download_ended(ydl, ok)
    except Exception as exc:
        fd.report_warning(f'[async] yt-dlp-async failed to count a finished download in its summary '
                          f'({type(exc).__name__}: {exc}). This is a bug in yt-dlp-async: please report it')


def report(fd: Any, fd_name: str, exc: BaseException) -> None:
    """One line for a download handed back: [debug] for the machine's refusal or the
    server's fault, WARNING for a bug."""
    what = f'{type(exc).__name__}: {exc}'
    if isinstance(exc, ServerFault):
        fallback.hand_back(fd_name, str(exc), fd.ydl)
        return
    if isinstance(exc, OSError):
        fallback.hand_back(fd_name, f'the engine could not write the file ({what})', fd.ydl)
        return
    fd.report_warning(
        f'[async] yt-dlp-async failed before writing any byte ({what}); this download goes to yt-dlp\'s '
        f'{fd_name} downloader instead. This is a bug in yt-dlp-async: please report it with the output of -v')
