"""Which downloads go to the engine, and one ``[debug]`` line for each that does not.

``choose()`` post-processes yt-dlp's own choice in the wrapped
``yt_dlp.downloader._get_suitable_downloader``.  The [debug] line needs a
YoutubeDL; ``YoutubeDL.dl`` is wrapped (patches.py) to publish the running one
through ``download_context`` for the duration of the call.
"""

from __future__ import annotations

import contextlib
import contextvars
import urllib.parse
from typing import Any, Iterator, Mapping

from . import request_options, shared_engine

ENGINE_PROTOCOLS = frozenset({'http', 'https'})
#: get_suitable_downloader() probes used by HlsFD/DashSegmentsFD: never ours, never worth a line
DELEGATION_PROBES = frozenset({'m3u8_frag_urls', 'dash_frag_urls'})
ASYNC_NAMES = frozenset({'async'})


class _Context:
    def __init__(self, ydl: Any) -> None:
        self.ydl = ydl
        self.noted: set[str] = set()


_current: contextvars.ContextVar[_Context | None] = contextvars.ContextVar('yt_dlp_async_dl', default=None)


@contextlib.contextmanager
def download_context(ydl: Any) -> Iterator[None]:
    token = _current.set(_Context(ydl))
    try:
        yield
    finally:
        _current.reset(token)


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


def fallback_line(fd_name: str, reason: str) -> str:
    return f'[async] Using yt-dlp\'s {fd_name} downloader: {reason}'


def requested_downloader(params: Mapping[str, Any], protocol: str) -> str | None:
    """The --downloader NAME the user gave for this protocol (or for all), if any."""
    chosen = params.get('external_downloader')
    if chosen is None or isinstance(chosen, str):
        return chosen or None
    try:
        from yt_dlp.downloader import shorten_protocol_name
        key = shorten_protocol_name(protocol, True)
    except Exception:
        key = protocol
    return chosen.get(key, chosen.get('default')) or None


def is_async_name(name: str | None) -> bool:
    return bool(name) and name.strip().lower() in ASYNC_NAMES  # type: ignore[union-attr]


def impersonation_requested(info_dict: Mapping[str, Any], params: Mapping[str, Any]) -> bool:
    return info_dict.get('impersonate') is not None or bool(params.get('impersonate'))


def engine_reason(info_dict: Mapping[str, Any], params: Mapping[str, Any]) -> str | None:
    """Why the engine cannot take this http(s) download, or None."""
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


def choose(fd: Any, info_dict: dict[str, Any], protocol: str, params: Mapping[str, Any], default: Any) -> Any:
    """Return the downloader class to use instead of yt-dlp's choice ``fd``."""
    from yt_dlp.downloader.http import HttpFD

    from .downloader import AsyncFileDownloader

    if protocol in DELEGATION_PROBES:
        return fd
    requested = requested_downloader(params, protocol)
    explicit_async = is_async_name(requested)
    if not (params.get('async_downloads') or explicit_async):
        return fd
    fd_name = getattr(fd, 'FD_NAME', None) or 'http'

    if fd is AsyncFileDownloader:
        reason = engine_reason(info_dict, params)
        if reason is None:
            return fd
        note(fallback_line('http', reason))
        return HttpFD

    if protocol not in ENGINE_PROTOCOLS:
        return _choose_fragmented(fd, fd_name, info_dict, protocol, params, requested, explicit_async)
    if requested and not explicit_async:
        note(fallback_line(fd_name, f'--downloader {requested} was given'))
        return fd
    if fd is not HttpFD:
        if fd is not None:
            note(fallback_line(fd_name, 'yt-dlp chose this downloader for the format'))
        return fd
    reason = engine_reason(info_dict, params)
    if reason is not None:
        note(fallback_line(fd_name, reason))
        return fd
    return AsyncFileDownloader


def _choose_fragmented(fd: Any, fd_name: str, info_dict: dict[str, Any], protocol: str, params: Mapping[str, Any],
                       requested: str | None, explicit_async: bool) -> Any:
    """HlsFD -> AsyncHlsFD, DashSegmentsFD -> AsyncDashFD (fragments.py); the rest stays yt-dlp's."""
    from . import fragments

    swapped = fragments.swap(fd, protocol)
    if swapped is None:
        if fd is not None:
            note(fallback_line(fd_name, native_reason(info_dict, protocol, params)))
        return fd
    if requested and not explicit_async:
        note(fallback_line(fd_name, f'--downloader {requested} was given'))
        return fd
    reason = fragments.engine_reason_for(info_dict, params)
    if reason is not None:
        note(fallback_line(fd_name, reason))
        return fd
    return swapped


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
