"""Exceptions raised by :class:`yt_dlp_async.DownloadTask.result`.

Each carries what the engine knew when the task ended, so that callers (the
yt-dlp adapter among them) can map it onto their own error types.

No name here is one that yt-dlp or the standard library already uses for
another class (yt-dlp has ``DownloadError``, ``ContentTooShortError`` and
``TransportError``; asyncio and concurrent.futures have ``CancelledError``):
an ``except`` clause that names one of ours never silently means theirs.
:class:`DownloadCancelledError` *is* a :class:`concurrent.futures.CancelledError`,
because a :class:`~yt_dlp_async.DownloadTask` is a ``concurrent.futures.Future``.
The package imports without yt-dlp, so none of them derives from yt-dlp's.
"""

from __future__ import annotations

import concurrent.futures
from typing import Mapping


class AsyncDownloadError(Exception):
    """A download failed.  The subclass says why."""

    def __init__(
        self,
        reason: str,
        *,
        url: str = "",
        http_status: int | None = None,
        headers: Mapping[str, str] | None = None,
        curl_code: int = 0,
        retries: int = 0,
        downloaded: int = 0,
        expected: int | None = None,
    ) -> None:
        super().__init__(f"{reason} ({url})" if url else reason)
        self.reason = reason
        self.url = url
        self.http_status = http_status
        self.headers: dict[str, str] = dict(headers or {})
        self.curl_code = curl_code
        self.retries = retries
        self.downloaded = downloaded
        self.expected = expected


class HTTPStatusError(AsyncDownloadError):
    """The server answered with an error status: a 4xx at once, or a
    5xx/408/429 that persisted through every retry."""


class NetworkError(AsyncDownloadError):
    """A network fault (reset, timeout, stall, DNS, TLS) that persisted
    through every retry, or one that no retry can fix (TLS verification)."""


class ShortBodyError(AsyncDownloadError):
    """The body was shorter than announced, through every retry."""


class RangeError(AsyncDownloadError):
    """A bounded range was ignored by the server, or the resource changed
    (ETag / Last-Modified) while parts of it were being fetched."""


class FileSizeError(AsyncDownloadError):
    """The resource is larger than the ``max_filesize`` given."""


class DownloadCancelledError(AsyncDownloadError, concurrent.futures.CancelledError):
    """The task was cancelled, or its engine closed before it finished."""


ERROR_KINDS: dict[str, type[AsyncDownloadError]] = {
    "http": HTTPStatusError,
    "transport": NetworkError,
    "too_short": ShortBodyError,
    "range": RangeError,
    "filesize": FileSizeError,
    "cancelled": DownloadCancelledError,
}

#: The names before 0.2.0, each of which shadowed another library's class.
RENAMED = {
    "DownloadError": "AsyncDownloadError",
    "TransportError": "NetworkError",
    "ContentTooShortError": "ShortBodyError",
    "CancelledError": "DownloadCancelledError",
}


def missing_attribute(module: str, name: str) -> AttributeError:
    """The error for ``module.name`` that does not exist: a renamed exception names its new name."""
    if name in RENAMED:
        return AttributeError(
            f"{module}.{name} was renamed {RENAMED[name]} in 0.2.0 "
            f"(the old name shadowed another library's {name})"
        )
    return AttributeError(f"module {module!r} has no attribute {name!r}")


def __getattr__(name: str) -> object:
    raise missing_attribute(__name__, name)
