"""Readable output while several entries download at once.

* Progress: every downloader of a session worker prints through one shared
  ``StatusBoard`` instead of its own ``MultilinePrinter``.  On a terminal with
  cursor control the board keeps one line per active download at the bottom;
  other messages are written above it (the board is erased, the message
  written, the board redrawn).  Without cursor control (a pipe) it behaves
  like yt-dlp's MultilinePrinter there: a status line is rewritten in place
  with ``\\r`` while the same download reports, and ended with a newline
  before anything else is written.  Each status line names its entry.
* Messages: once a worker has begun waiting (its output may now interleave
  with other entries'), its screen and stderr messages are prefixed with its
  entry label, e.g. ``ERROR: [item 3] ...`` (after the severity word, which
  scripts match at the start of a line).  stdout data (``--print``, ``-j``)
  is never prefixed.
* Child processes: before a child that writes to the terminal itself starts
  (``--exec``), ``suspend()`` ends the status line, so the child's output
  starts at column 0 (playlist.py keeps the baton while it runs, so no other
  entry's progress lands in it).

All of this runs with the baton held (it is called from yt-dlp's progress
hooks and ``_write_string``), so it needs no lock of its own beyond one that
protects against yt-dlp's own fragment threads.
"""

from __future__ import annotations

import re
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
        with self.lock:
            self.lines.clear()
            self._erase()


def labelled(label: str, text: str) -> str:
    """``[download]  5% ...`` -> ``[download] [item 2]  5% ...``; else ``[item 2] text``."""
    if text.startswith('[download]'):
        return f'[download] [{label}]{text[len("[download]"):]}'
    return f'[{label}] {text}'


#: yt-dlp's severity word (maybe coloured): a label goes after it, so that
#: scripts matching lines that start with ``ERROR:`` still match
_SEVERITY = re.compile(r'(?:\x1b\[[0-9;]*m)?(?:ERROR|WARNING|Deprecated Feature):(?:\x1b\[[0-9;]*m)? ')


def prefix_message(label: str, message: str) -> str:
    """Label a message's first line, ``[label] `` after any leading ``\\r``/``\\n``
    and after a leading ``ERROR: ``/``WARNING: ``."""
    stripped = message.lstrip('\r\n')
    lead = message[:len(message) - len(stripped)]
    if not stripped.strip():
        return message
    severity = _SEVERITY.match(stripped)
    if severity:
        lead, stripped = lead + severity.group(), stripped[severity.end():]
    return f'{lead}[{label}] {stripped}'


def make_slot_printer(board: StatusBoard, label: str, base: Any) -> Any:
    """A MultilinePrinter stand-in for one downloader (``base``: the printer yt-dlp made)."""
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
            board.update(key, labelled(label, text))

        def end(self) -> None:
            for key in sorted(self._keys, key=lambda k: k[1]):  # type: ignore[index]
                board.finish(key, self.preserve_output)
            self._keys.clear()

    class LabelledBreaklinePrinter(BreaklineStatusPrinter):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__(base.stream, base.maximum + 1)
            self.allow_colors = getattr(base, 'allow_colors', False)
            self._HAVE_FULLCAP = getattr(base, '_HAVE_FULLCAP', False)

        def print_at_line(self, text: str, pos: int) -> None:
            board.around_message(lambda: self.write(self._add_line_number(labelled(label, text), pos), '\n'))

    if type(base) is MultilinePrinter:
        return SlotPrinter()
    if type(base) is BreaklineStatusPrinter:
        return LabelledBreaklinePrinter()
    return base  # quiet, logger: nothing to coordinate
