"""yt-dlp-async: a libcurl multi download engine, and yt-dlp's downloader.

``import yt_dlp_async`` gives the engine API (see README.md)::

    from yt_dlp_async import AsyncDownloadEngine
    with AsyncDownloadEngine() as engine:
        task = engine.submit("https://example.org/video.mp4", "video.mp4")
        print(task.result().downloaded_bytes)

(``video.mp4`` appears only once complete: the bytes go to
``video.mp4.ytdla-part`` until then).

It also makes yt-dlp use the engine: importing this package registers the
``async_downloads`` YoutubeDL parameter (see :func:`install`).
"""

from __future__ import annotations

import sys

if sys.version_info < (3, 11):  # pragma: no cover - pip refuses the install (requires-python)
    raise ImportError("yt-dlp-async needs Python 3.11 or newer (yt-dlp does too; the baton's "
                      "stack audit reads code objects' co_qualname, new in 3.11)")

from ._version import __version__
from .engine import (
    AsyncDownloadEngine,
    DownloadProgress,
    DownloadResult,
    DownloadTask,
    Engine,
    EngineStats,
    SegmentProgress,
    build_features,
    curl_version,
    download,
)
from ._engine import aes128_cbc_decrypt
from .errors import (
    missing_attribute as _missing_attribute,
    AsyncDownloadError,
    DownloadCancelledError,
    FileSizeError,
    HTTPStatusError,
    NetworkError,
    RangeError,
    ShortBodyError,
)

__all__ = [
    "AsyncDownloadEngine",
    "AsyncDownloadError",
    "DownloadCancelledError",
    "DownloadProgress",
    "DownloadResult",
    "DownloadTask",
    "Engine",
    "EngineStats",
    "FileSizeError",
    "HTTPStatusError",
    "NetworkError",
    "RangeError",
    "SegmentProgress",
    "ShortBodyError",
    "__version__",
    "aes128_cbc_decrypt",
    "build_features",
    "curl_version",
    "download",
    "install",
]


def install() -> bool:
    """Patch yt-dlp (if importable) so that YoutubeDL(params) with
    ``async_downloads`` uses this engine.  Returns True when patched."""
    from .ytdlp import install as _install

    return bool(_install())


def __getattr__(name: str) -> object:
    raise _missing_attribute(__name__, name)
