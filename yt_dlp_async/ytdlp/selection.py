"""Which downloader takes a download: yt-dlp's choice, or ours in its place.

``choose()`` post-processes yt-dlp's own choice in the wrapped
``yt_dlp.downloader._get_suitable_downloader`` (patches.py): http/https ->
AsyncFileDownloader, HlsFD -> AsyncHlsFD, DashSegmentsFD -> AsyncDashFD, each
only when ``fallback.engine_reason`` finds nothing against it; otherwise
yt-dlp's choice stays, with one ``[debug]`` line saying why.

Imports run one way: selection -> downloader, fragments -> fallback.
"""

from __future__ import annotations

from typing import Any, Mapping

from . import fallback, internals
from .fallback import engine_reason, hand_back, is_async_name, native_reason, requested_downloader

ENGINE_PROTOCOLS = fallback.ENGINE_PROTOCOLS
#: get_suitable_downloader() probes used by HlsFD/DashSegmentsFD: never ours, never worth a line
DELEGATION_PROBES = frozenset({'m3u8_frag_urls', 'dash_frag_urls'})


def choose(fd: Any, info_dict: dict[str, Any], protocol: str, params: Mapping[str, Any], default: Any) -> Any:
    """Return the downloader class to use instead of yt-dlp's choice ``fd``."""
    if protocol in DELEGATION_PROBES:
        return fd
    requested = requested_downloader(params, protocol)
    explicit_async = is_async_name(requested)
    if not (params.get('async_downloads') or explicit_async):
        return fd
    fd_name = getattr(fd, 'FD_NAME', None) or 'http'
    unsupported = internals.check()
    if unsupported:  # the whole plugin stands aside (--downloader async gets HttpFD)
        hand_back(fd_name, unsupported)
        return internals.load('yt_dlp.downloader.http:HttpFD') if fd_name == 'async' else fd

    from .downloader import AsyncFileDownloader
    HttpFD = internals.load('yt_dlp.downloader.http:HttpFD')

    if fd is AsyncFileDownloader:
        reason = engine_reason(info_dict, params)
        if reason is None:
            return fd
        hand_back('http', reason)
        return HttpFD

    if protocol not in ENGINE_PROTOCOLS:
        return _choose_fragmented(fd, fd_name, info_dict, protocol, params, requested, explicit_async)
    if requested and not explicit_async:
        hand_back(fd_name, f'--downloader {requested} was given')
        return fd
    if fd is not HttpFD:
        if fd is not None:
            hand_back(fd_name, 'yt-dlp chose this downloader for the format')
        return fd
    reason = engine_reason(info_dict, params)
    if reason is not None:
        hand_back(fd_name, reason)
        return fd
    return AsyncFileDownloader


def _choose_fragmented(fd: Any, fd_name: str, info_dict: dict[str, Any], protocol: str, params: Mapping[str, Any],
                       requested: str | None, explicit_async: bool) -> Any:
    """HlsFD -> AsyncHlsFD, DashSegmentsFD -> AsyncDashFD (fragments.py); the rest stays yt-dlp's."""
    from . import fragments

    swapped = fragments.swap(fd, protocol)
    if swapped is None:
        if fd is not None:
            hand_back(fd_name, native_reason(info_dict, protocol, params))
        return fd
    if requested and not explicit_async:
        hand_back(fd_name, f'--downloader {requested} was given')
        return fd
    reason = fragments.engine_reason_for(info_dict, params)
    if reason is not None:
        hand_back(fd_name, reason)
        return fd
    return swapped
