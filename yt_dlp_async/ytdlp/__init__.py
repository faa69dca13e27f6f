"""yt-dlp integration of yt-dlp-async.

Public API::

    import yt_dlp_async.ytdlp
    yt_dlp_async.ytdlp.install()          # patch yt-dlp (now, or when it is imported)
    YoutubeDL({'async_downloads': True})  # http/https downloads go through the engine

``install()`` is idempotent and cheap: it does not import yt-dlp unless asked
(``install(import_ytdlp=True)``).  The ``.pth`` hook installed with the
package calls the same patches automatically, and the ``AsyncDownloads``
postprocessor plugin calls ``activate()`` for one YoutubeDL.

Modules: options (the option group), patches (what is patched in yt-dlp),
fallback (which downloads go to the engine), downloader (AsyncFileDownloader),
http_download (one download), request_options / cookies / errors (mapping
yt-dlp's networking params, cookie jar and exceptions), shared_engine (the
process-wide engine).
"""

from __future__ import annotations

from typing import Any

__all__ = ['install', 'activate']


def install(import_ytdlp: bool = False) -> bool:
    """Patch yt-dlp so that ``params['async_downloads']`` selects the engine (idempotent)."""
    from .patches import install as _install
    return _install(import_ytdlp=import_ytdlp)


def activate(ydl: Any, activated_by: str | None = None) -> None:
    """Patch yt-dlp and turn async downloads on for this YoutubeDL."""
    from .patches import install as _install, report_debug
    _install(import_ytdlp=True)
    ydl.params['async_downloads'] = True
    report_debug(ydl, activated_by)
