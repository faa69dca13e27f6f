"""Output while several entries download at once: every line stays yt-dlp's.

Frontends and scripts parse yt-dlp's output: a ``[download] Destination:``
line, then the progress lines of that file, matched from their first
character.  So every line is written exactly as yt-dlp alone writes it (only
the order of two entries' lines may interleave), and ``--progress-template``
output is exactly what the user wrote.  Where a program may be reading the
output (it is not a terminal) entries run one at a time unless the user asked
for ``--concurrent-downloads N`` (playlist.sequential_reason), so attributing
progress to the last ``Destination:`` stays right.

* Progress: every downloader of a session worker prints through one shared
  ``StatusBoard`` instead of its own ``MultilinePrinter``.  On a terminal with
  cursor control the board keeps one line per active download at the bottom;
  other messages are written above it (the board is erased, the message
  written, the board redrawn).  There, and only there, each progress line
  ends with its entry's label, e.g. ``  (item 2)`` (not with a
  ``--progress-template``).  Without cursor control (a pipe) the board
  behaves like yt-dlp's MultilinePrinter there: a status line is rewritten in
  place with ``\\r`` while the same download reports, and ended with a
  newline before anything else is written; nothing is added to it.
* Ctrl-C (or any end of the session with downloads still on the board): the
  board's last lines stay on the screen, as yt-dlp alone leaves its progress
  line before ``ERROR: Interrupted by user``.
* Child processes: before a child that writes to the terminal itself starts
  (``--exec``), ``suspend()`` ends the status line, so the child's output
  starts at column 0 (playlist.py keeps the baton while it runs, so no other
  entry's progress lands in it).

All of this runs with the baton held (it is called from yt-dlp's progress
hooks and ``_write_string``), so it needs no lock of its own beyond one that
protects against yt-dlp's own fragment threads.
"""

from __future__ import annotations

import sys
import threading
from typing import Any, Callable

from . import internals

UP = '\033[A'
ERASE_LINE = '\033[K'


class StatusBoard:
    def __init__(self, ydl: Any, stream: Any, fullcap: bool) -> None:
        self.ydl = ydl
        self.stream = stream
        self.fullcap = fullcap
        self.lines: dict[object, str] = {}
        self.drawn = 0            # lines of the board on screen (fullcap)
        self.dangling: object | None = None   # key whose status line is not ended (no fullcap)
        self.dangling_len = 0
        self.lock = threading.RLock()

    def _write(self, text: str) -> None:
        write_string = internals.load('yt_dlp.utils:write_string')
        write_string(text, self.stream)

    # ------------------------------------------------------------- drawing
    def _erase(self) -> None:
        if self.fullcap:
            if self.drawn:
                self._write('\r' + ERASE_LINE + (UP + ERASE_LINE) * (self.drawn - 1))
                self.drawn = 0
        elif self.dangling is not None:
            self._write('\n')
            self.dangling = None

    def _draw(self) -> None:
        if self.fullcap and self.lines and not self.drawn:
            self._write('\n'.join(self.lines.values()))
            self.drawn = len(self.lines)

    # ---------------------------------------------------------------- API
    def around_message(self, write: Callable[[], Any]) -> Any:
        """Write a message (``write()``) above the board."""
        with self.lock:
            self._erase()
            try:
                return write()
            finally:
                self._draw()

    def suspend(self) -> None:
        """A child process may write to the terminal now: end the status line (erase the board).

        The board is drawn again at the next update or message.
        """
        with self.lock:
            self._erase()
            try:
                self.stream.flush()
            except Exception:
                pass

    def update(self, key: object, text: str) -> None:
        with self.lock:
            self.lines[key] = text
            if self.fullcap:
                self._erase()
                self._draw()
                return
            if self.dangling == key:
                pad = ' ' * max(0, self.dangling_len - len(text))
                self._write('\r' + text + pad)
            else:
                self._erase()
                self._write(text)
            self.dangling, self.dangling_len = key, len(text)

    def finish(self, key: object, preserve: bool) -> None:
        """The download ``key`` ended: keep its last line (``preserve``) and drop it from the board."""
        with self.lock:
            last = self.lines.pop(key, None)
            if self.fullcap:
                self._erase()
                if preserve and last is not None:
                    self._write(last + '\n')
                self._draw()
                return
            if self.dangling == key:
                self._write('\n' if preserve else '\r' + ' ' * self.dangling_len + '\r')
                self.dangling = None

    def close(self) -> None:
        """The session ends: lines still on the board (Ctrl-C, an error) stay on the screen."""
        with self.lock:
            self.lines.clear()
            if self.fullcap:
                if self.drawn:
                    self._write('\n')  # after the board's last line, which stays
                    self.drawn = 0
            else:
                self._erase()


def labelled(label: str | None, text: str) -> str:
    """``[download]  5% ...`` -> ``[download]  5% ...  (item 2)``: the label at the end, after yt-dlp's line."""
    return f'{text}  ({label})' if label else text


def is_terminal(ydl: Any, which: str) -> bool:
    """Is yt-dlp's ``out``/``screen``/``error`` stream (``YoutubeDL._out_files``, an attribute
    its ``__init__`` sets) a terminal?  False when it cannot tell."""
    stream = getattr(getattr(ydl, '_out_files', None), which, None)
    try:
        return bool(stream is not None and stream.isatty())
    except Exception:
        return False


def progress_is_read_by_a_person(params: Any) -> bool:
    """Where yt-dlp writes progress (its ``out`` stream: stdout, or stderr with ``-o -``) is a
    terminal, and no logger takes it: ``is_terminal`` for code that has only the params."""
    if params.get('logger') is not None:
        return False
    stream = sys.stderr if params.get('logtostderr') else sys.stdout
    try:
        return bool(stream is not None and stream.isatty())
    except Exception:
        return False


def concurrency_asked(params: Any) -> bool:
    """The user asked for downloads at once: ``--concurrent-downloads N`` (N >= 2) given, or the
    API's ``concurrent_downloads``."""
    from .options import given
    try:
        slots = int(params.get('concurrent_downloads') or 1)
    except (TypeError, ValueError):
        return False
    return slots >= 2 and given(params, 'concurrent_downloads')


def make_slot_printer(board: StatusBoard, label: str | None, base: Any) -> Any:
    """A MultilinePrinter stand-in for one downloader (``base``: the printer yt-dlp made).

    ``label`` ends each of its lines on a board with cursor control (None: nothing is added).
    """
    BreaklineStatusPrinter = internals.load('yt_dlp.minicurses:BreaklineStatusPrinter')
    MultilinePrinter = internals.load('yt_dlp.minicurses:MultilinePrinter')

    class SlotPrinter(MultilinePrinter):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__(base.stream, base.maximum + 1, getattr(base, 'preserve_output', True))
            self.allow_colors = getattr(base, 'allow_colors', False)
            self._HAVE_FULLCAP = getattr(base, '_HAVE_FULLCAP', False)
            self._keys: set[object] = set()

        def print_at_line(self, text: str, pos: int) -> None:
            key = (id(self), pos)
            self._keys.add(key)
            board.update(key, labelled(label, text) if board.fullcap else text)

        def end(self) -> None:
            for key in sorted(self._keys, key=lambda k: k[1]):  # type: ignore[index]
                board.finish(key, self.preserve_output)
            self._keys.clear()

    class BoardBreaklinePrinter(BreaklineStatusPrinter):  # type: ignore[misc]
        """--newline: yt-dlp's line as it is, written above the board."""

        def __init__(self) -> None:
            super().__init__(base.stream, base.maximum + 1)
            self.allow_colors = getattr(base, 'allow_colors', False)
            self._HAVE_FULLCAP = getattr(base, '_HAVE_FULLCAP', False)

        def print_at_line(self, text: str, pos: int) -> None:
            board.around_message(lambda: self.write(self._add_line_number(text, pos), '\n'))

    if type(base) is MultilinePrinter:
        return SlotPrinter()
    if type(base) is BreaklineStatusPrinter:
        return BoardBreaklinePrinter()
    return base  # quiet, logger: nothing to coordinate
