"""yt-dlp-async: a libcurl multi download engine, and yt-dlp's downloader.

``import yt_dlp_async`` gives the engine API (see README.md)::

    from yt_dlp_async import AsyncDownloadEngine
    with AsyncDownloadEngine() as engine:
        task = engine.submit("https://example.org/video.mp4", "video.mp4")
        print(task.result().downloaded_bytes)

It also makes yt-dlp use the engine: importing this package registers the
``async_downloads`` YoutubeDL parameter (see :func:`install`).
"""

from __future__ import annotations

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
    CancelledError,
    ContentTooShortError,
    DownloadError,
    FileSizeError,
    HTTPStatusError,
    RangeError,
    TransportError,
)

__version__ = "0.1.0"

__all__ = [
    "AsyncDownloadEngine",
    "CancelledError",
    "ContentTooShortError",
    "DownloadError",
    "DownloadProgress",
    "DownloadResult",
    "DownloadTask",
    "Engine",
    "EngineStats",
    "FileSizeError",
    "HTTPStatusError",
    "RangeError",
    "SegmentProgress",
    "TransportError",
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
