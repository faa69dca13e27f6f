"""Why a download cannot go to the engine, and the one ``[debug]`` line that says so.

The reasons (``engine_reason``, ``native_reason``) and the lines
(``hand_back``, ``note``, ``stand_aside``) live here; selection.py uses them to
choose a downloader, and the downloaders use them when they hand a download
back to yt-dlp.  This
module imports none of our downloaders, so every module can import it.

The [debug] line needs a YoutubeDL; ``YoutubeDL.dl`` is wrapped (patches.py) to
publish the running one through ``download_context`` for the duration of the
call.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import stat
import urllib.parse
from typing import Any, Iterator, Mapping

from . import internals, request_options, shared_engine

ENGINE_PROTOCOLS = frozenset({'http', 'https'})
ASYNC_NAMES = frozenset({'async'})


class _Context:
    def __init__(self, ydl: Any) -> None:
        self.ydl = ydl
        self.noted: set[str] = set()
        self.handed_back = False   # the download went to yt-dlp's own downloader (summary.py)


_current: contextvars.ContextVar[_Context | None] = contextvars.ContextVar('yt_dlp_async_dl', default=None)


@contextlib.contextmanager
def download_context(ydl: Any) -> Iterator[_Context]:
    context = _Context(ydl)
    token = _current.set(context)
    try:
        yield context
    finally:
        _current.reset(token)


def mark_handed_back() -> None:
    """The running dl() call's download goes to yt-dlp's own downloader (counted once per call)."""
    context = _current.get()
    if context is not None:
        context.handed_back = True


def hand_back(fd_name: str, reason: str, ydl: Any = None) -> None:
    """This download goes to yt-dlp's ``fd_name`` downloader: count it for the
    summary and say why in one ``[debug]`` line."""
    context = _current.get()
    if context is not None and (ydl is None or ydl is context.ydl):
        context.handed_back = True
    note(f"[async] Using yt-dlp's {fd_name} downloader: {reason}", ydl)


def note(message: str, ydl: Any = None) -> None:
    """Write ``[debug] message`` once per YoutubeDL.dl() call (with -v)."""
    context = _current.get()
    if ydl is None:
        if context is None:
            return
        ydl = context.ydl
    if context is not None and context.ydl is ydl:
        if message in context.noted:
            return
        context.noted.add(message)
    write_debug = getattr(ydl, 'write_debug', None)
    if write_debug is not None:
        write_debug(message)


#: One line per patch (or the whole plugin) that stood aside, printed by ``yt-dlp -v``.
STOOD_ASIDE: list[str] = []


def stand_aside(target: str, why: str) -> None:
    line = f'[async] {target}: {why}; that patch stands aside'
    if line not in STOOD_ASIDE:
        STOOD_ASIDE.append(line)


def requested_downloader(params: Mapping[str, Any], protocol: str) -> str | None:
    """The --downloader NAME the user gave for this protocol (or for all), if any."""
    chosen = params.get('external_downloader')
    if chosen is None or isinstance(chosen, str):
        return chosen or None
    try:
        key = internals.load('yt_dlp.downloader:shorten_protocol_name')(protocol, True)
    except Exception:
        key = protocol
    return chosen.get(key, chosen.get('default')) or None


def is_async_name(name: str | None) -> bool:
    return bool(name) and name.strip().lower() in ASYNC_NAMES  # type: ignore[union-attr]


def impersonation_requested(info_dict: Mapping[str, Any], params: Mapping[str, Any]) -> bool:
    return info_dict.get('impersonate') is not None or bool(params.get('impersonate'))


def engine_reason(info_dict: Mapping[str, Any], params: Mapping[str, Any]) -> str | None:
    """Why the engine cannot take this http(s) download, or None."""
    unsupported = internals.check()
    if unsupported:
        return unsupported
    if impersonation_requested(info_dict, params):
        return 'impersonation was requested (--impersonate or the format needs it); libcurl cannot impersonate'
    if info_dict.get('is_live'):
        return 'live streams are not handled by the engine'
    scheme = urllib.parse.urlsplit(str(info_dict.get('url') or '')).scheme.lower()
    if scheme not in ENGINE_PROTOCOLS:
        return f'URL scheme "{scheme}" is not handled by the engine'
    reason = request_options.unsupported_reason(params, info_dict)
    if reason:
        return reason
    return shared_engine.unavailable_reason()


def target_reason(path: str) -> str | None:
    """Why the engine cannot write ``path`` (yt-dlp's name for the bytes: the
    ``.part``, or the file itself under ``--no-part``), or None.

    A FIFO: opening one for writing waits for a reader (or fails at once
    without waiting), so yt-dlp's downloader opens it at its first byte, after
    the server answered; the engine opens its file before the first request.
    """
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return None
    if stat.S_ISFIFO(mode):
        return f'{path} is a FIFO (named pipe), which yt-dlp opens only once the first byte arrives'
    return None


def native_reason(info_dict: Mapping[str, Any], protocol: str, params: Mapping[str, Any]) -> str:
    """Why yt-dlp's choice for a protocol other than http/https stays (one line)."""
    if info_dict.get('section_start') is not None or info_dict.get('section_end') is not None:
        return '--download-sections is done by ffmpeg'
    if protocol == 'http_dash_segments_generator' or info_dict.get('is_from_start'):
        return '--live-from-start is not handled by the engine'
    if info_dict.get('is_live'):
        return 'live streams are not handled by the engine'
    if protocol in ('m3u8', 'm3u8_native', 'http_dash_segments'):
        return f'yt-dlp chose this downloader for protocol "{protocol}"'
    return f'protocol "{protocol}" is not handled by the engine yet'
