"""Exact resume of HLS/DASH downloads: the ``.ytdl`` state and the ``.part`` length always agree.

yt-dlp's FragmentFD records only the index of the last appended fragment in
``NAME.ytdl``, rewrites that file in place (``open('w')`` then write) after
every fragment, and on resume appends to whatever ``.part`` holds.  A crash
(kill -9, power loss) or a full disk can therefore leave a state that lies:
an empty ``.ytdl`` (the old bytes plus the whole stream again), a ``.part``
with one more fragment than recorded (a fragment twice), or a half-written
fragment recorded as complete.  ``ExactResume`` (a mixin before yt-dlp's
FragmentFD subclass) closes those holes:

* after every fragment (the engine's C path: after every run of fragments
  appended together, ``append_in_c`` then ``record``) the ``.ytdl``
  records, next to yt-dlp's own keys
  (which yt-dlp reads; it ignores the others), the byte length of ``.part``
  at that point; it is written to a temporary file and renamed over the old
  one, only once the fragment's bytes are written and flushed;
* a fragment whose write (or state write) fails is cut off again, so the
  ``.part`` and the ``.ytdl`` on disk still agree, for us and for yt-dlp;
* before yt-dlp opens ``.part`` for a resume, ``settle`` cuts it to the
  recorded length, or restarts cleanly (one warning saying why) when the
  state is missing, unreadable, carries no length (left by yt-dlp alone: its
  end cannot be vouched for) or records more bytes than ``.part`` holds.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any, Callable

#: our key in the .ytdl JSON (yt-dlp reads only 'downloader')
STATE_KEY = 'yt_dlp_async'
#: ctx key: the length of .part that the state on disk describes (the C path: once ``record`` ran)
PART_BYTES = '_async_part_bytes'
#: ctx key: (part_bytes, fragment_index) of the state on disk, for the C path's cut-back
RECORDED = '_async_recorded'


@dataclass(frozen=True)
class SavedState:
    """What a readable ``.ytdl`` says: the last fragment on disk and (if we wrote it) the ``.part`` length."""

    index: int
    part_bytes: int | None


@dataclass(frozen=True)
class Decision:
    """What to do with ``.part`` before the download opens it."""

    keep_bytes: int          # cut .part to this length (0: start from the beginning)
    drop_state: bool         # remove the .ytdl file as well (yt-dlp then starts a fresh one)
    warning: str | None = None
    debug: str | None = None


def _count(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None


def read_state(path: str) -> SavedState | None:
    """The state in ``path``, or None when it is empty, unreadable or not yt-dlp's format."""
    try:
        with open(path, encoding='utf-8') as stream:
            data = json.loads(stream.read())
        index = _count(data['downloader']['current_fragment']['index'])
    except (OSError, ValueError, TypeError, KeyError):
        return None
    if index is None:
        return None
    ours = data.get(STATE_KEY)
    part_bytes = None
    if isinstance(ours, dict) and ours.get('fragment_index') == index:
        part_bytes = _count(ours.get('part_bytes'))
    return SavedState(index, part_bytes)


def decide(part_len: int, state: SavedState | None, *, state_exists: bool, continuedl: bool,
           keeps_state: bool) -> Decision:
    """The rule, given the ``.part`` length and the state on disk (pure: no file is touched)."""
    keep = Decision(part_len, False)
    if part_len <= 0:
        return keep  # nothing to append to: yt-dlp's own checks restart cleanly
    restart = 'Restarting from the beginning ...'
    if not keeps_state:
        return Decision(0, False, debug='[async] no .ytdl file is kept: the .part file is started again')
    if not continuedl:
        return Decision(0, True, debug='[async] --no-continue: the .part file is started again')
    if not state_exists:
        return Decision(0, False, f'The .part file has no .ytdl file, so its end is unknown. {restart}')
    if state is None:
        return Decision(0, True, f'.ytdl file is corrupt or empty. {restart}')
    if state.index == 0:
        return Decision(0, False, debug='[async] the .ytdl file records no fragment: the .part file is started again')
    if state.part_bytes is None:
        return Decision(0, True, 'The .ytdl file does not record the length of the .part file (it was not written '
                        f'by yt-dlp-async), so the resume point cannot be checked. {restart}')
    if part_len < state.part_bytes:
        return Decision(0, True, f'The .part file is shorter than the .ytdl file records ({part_len} < '
                        f'{state.part_bytes} bytes). {restart}')
    if part_len > state.part_bytes:
        return Decision(state.part_bytes, False, debug=(
            f'[async] the .part file is cut from {part_len} to {state.part_bytes} bytes, '
            f'the length the .ytdl file records after fragment {state.index}'))
    return keep


def settle(fd: Any, ctx: dict[str, Any]) -> None:
    """Make ``.part`` agree with the ``.ytdl`` state before yt-dlp's ``_prepare_frag_download`` opens it."""
    filename = ctx['filename']
    if ctx.get('live') is True or filename == '-':
        return  # live streams append as yt-dlp does; stdout has no .part
    part = fd.temp_name(filename)
    part_len = os.path.getsize(part) if os.path.isfile(part) else 0
    ytdl = fd.ytdl_filename(filename)
    state_exists = os.path.isfile(ytdl)
    decision = decide(
        part_len, read_state(ytdl) if state_exists else None, state_exists=state_exists,
        continuedl=bool(fd.params.get('continuedl', True)), keeps_state=not fd.params.get('_no_ytdl_file'))
    if decision.warning:
        fd.report_warning(decision.warning)
    if decision.debug:
        fd.write_debug(decision.debug)
    if decision.keep_bytes != part_len:
        os.truncate(part, decision.keep_bytes)
    if decision.drop_state and state_exists:
        os.remove(ytdl)
    ctx[PART_BYTES] = decision.keep_bytes


def state_json(ctx: dict[str, Any]) -> str:
    """yt-dlp's .ytdl content for ``ctx`` plus our record of the ``.part`` length."""
    index = ctx['fragment_index']
    downloader: dict[str, Any] = {'current_fragment': {'index': index}}
    if 'extra_state' in ctx:
        downloader['extra_state'] = ctx['extra_state']
    if ctx.get('fragment_count') is not None:
        downloader['fragment_count'] = ctx['fragment_count']
    data: dict[str, Any] = {'downloader': downloader}
    part_bytes = ctx.get(PART_BYTES)
    if part_bytes is None and index == 0:
        part_bytes = 0
    if part_bytes is not None:
        data[STATE_KEY] = {'fragment_index': index, 'part_bytes': int(part_bytes)}
    return json.dumps(data)


def write_state(path: str, ctx: dict[str, Any]) -> None:
    """Replace ``path`` atomically: a reader (or a crash) sees the old state or the new one, never half."""
    temporary = path + '.tmp'
    try:
        with open(temporary, 'w', encoding='utf-8') as stream:
            stream.write(state_json(ctx))
        os.replace(temporary, path)
    except BaseException:
        try:
            os.remove(temporary)
        except OSError:
            pass
        raise


def _write_all(stream: Any, data: bytes) -> None:
    """Write ``data`` past any buffer, so a failure leaves nothing queued to be written at close."""
    stream.flush()
    raw = getattr(stream, 'raw', None)
    if raw is None:
        stream.write(data)
        stream.flush()
        return
    view = memoryview(data)
    while view:
        written = raw.write(view)
        if not written:
            raise OSError('the .part file accepted no bytes')
        view = view[written:]


def _cut_back(stream: Any, length: int) -> None:
    try:
        fileno = stream.fileno()
        os.ftruncate(fileno, length)
        os.lseek(fileno, length, os.SEEK_SET)
    except (OSError, ValueError):
        pass


def append_and_record(fd: Any, ctx: dict[str, Any], content: bytes) -> None:
    """Append a fragment to ``.part``, then record it; on any failure ``.part`` is cut back to the last record."""
    stream = ctx['dest_stream']
    stream.flush()
    before = os.fstat(stream.fileno()).st_size
    try:
        _write_all(stream, content)
        ctx[PART_BYTES] = before + len(content)
        fd._write_ytdl_file(ctx)
        ctx[RECORDED] = (ctx[PART_BYTES], ctx['fragment_index'])
    except BaseException:
        ctx[PART_BYTES] = before
        _cut_back(stream, before)
        raise


def append_in_c(fd: Any, ctx: dict[str, Any], frag_index: int, fragment_file: str,
                write: Callable[[int], int]) -> int:
    """``ExactResume._append_fragment`` for a body the engine writes itself, but not yet recorded.

    ``write(fileno)`` appends the fragment to the output's descriptor in C
    and returns the bytes appended (0: nothing, the fragment is unavailable).
    ``record`` then writes the ``.ytdl`` state once for every fragment
    appended since the last record (one atomic rename per run of fragments,
    not per fragment).  Until then ``.part`` may be longer than the state on
    disk says, which ``settle`` cuts back on a resume; on any failure here
    ``.part`` is cut back to the last record at once.  Returns the bytes
    appended.
    """
    stream = ctx['dest_stream']
    stream.flush()
    fileno = stream.fileno()
    keeps = fd._keeps_state(ctx)
    before = 0
    if keeps:
        before = os.fstat(fileno).st_size
        ctx.setdefault(RECORDED, (before, ctx['fragment_index']))
    try:
        appended = write(fileno)
        if appended:
            ctx['fragment_index'] = frag_index
            ctx[PART_BYTES] = before + appended
    except BaseException:
        if keeps:
            _back_to_record(stream, ctx)
        raise
    finally:
        if not fd.params.get('keep_fragments', False):
            fd.try_remove(fragment_file)
        fd.try_remove(fragment_file + '.part')  # left by yt-dlp -N when it was killed
    return appended


def _back_to_record(stream: Any, ctx: dict[str, Any]) -> None:
    part_bytes, index = ctx[RECORDED]
    ctx[PART_BYTES] = part_bytes
    ctx['fragment_index'] = index
    _cut_back(stream, part_bytes)


def record(fd: Any, ctx: dict[str, Any]) -> None:
    """Write the ``.ytdl`` state for the fragments ``append_in_c`` appended since the last record.

    If the state cannot be written, ``.part`` is cut back to the last record
    (the state on disk still describes it) and the error is raised.
    """
    recorded = ctx.get(RECORDED)
    if recorded is None or not fd._keeps_state(ctx) or recorded == (ctx[PART_BYTES], ctx['fragment_index']):
        return
    try:
        fd._write_ytdl_file(ctx)
    except BaseException:
        _back_to_record(ctx['dest_stream'], ctx)
        raise
    ctx[RECORDED] = (ctx[PART_BYTES], ctx['fragment_index'])


class ExactResume:
    """Mixin before yt-dlp's FragmentFD subclass: exact ``.ytdl``/``.part`` bookkeeping (module docstring)."""

    def _prepare_frag_download(self, ctx: dict[str, Any]) -> None:
        settle(self, ctx)
        super()._prepare_frag_download(ctx)  # type: ignore[misc]

    def _write_ytdl_file(self, ctx: dict[str, Any]) -> None:
        write_state(self.ytdl_filename(ctx['filename']), ctx)  # type: ignore[attr-defined]

    def _keeps_state(self, ctx: dict[str, Any]) -> bool:
        params = self.params  # type: ignore[attr-defined]
        return ctx.get('live') is not True and ctx['tmpfilename'] != '-' and not params.get('_no_ytdl_file')

    def _append_fragment(self, ctx: dict[str, Any], frag_content: bytes) -> None:
        try:
            if self._keeps_state(ctx):
                append_and_record(self, ctx, frag_content)
            else:
                ctx['dest_stream'].write(frag_content)
                ctx['dest_stream'].flush()
        finally:
            fragment_file = ctx['fragment_filename_sanitized']
            if not self.params.get('keep_fragments', False):  # type: ignore[attr-defined]
                self.try_remove(fragment_file)  # type: ignore[attr-defined]
            # a fragment yt-dlp (-N) had half downloaded when it was killed; the engine fetched it anew
            self.try_remove(fragment_file + '.part')  # type: ignore[attr-defined]
            del ctx['fragment_filename_sanitized']
