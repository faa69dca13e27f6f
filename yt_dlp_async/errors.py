"""Exceptions raised by :class:`yt_dlp_async.DownloadTask.result`.

Each carries what the engine knew when the task ended, so that callers (the
yt-dlp adapter among them) can map it onto their own error types.
"""

from __future__ import annotations

from typing import Mapping


class DownloadError(Exception):
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


class HTTPStatusError(DownloadError):
    """The server answered with an error status: a 4xx at once, or a
    5xx/408/429 that persisted through every retry."""


class TransportError(DownloadError):
    """A network fault (reset, timeout, stall, DNS, TLS) that persisted
    through every retry, or one that no retry can fix (TLS verification)."""


class ContentTooShortError(DownloadError):
    """The body was shorter than announced, through every retry."""


class RangeError(DownloadError):
    """A bounded range was ignored by the server, or the resource changed
    (ETag / Last-Modified) while parts of it were being fetched."""


class FileSizeError(DownloadError):
    """The resource is larger than the ``max_filesize`` given."""


class CancelledError(DownloadError):
    """The task was cancelled, or its engine closed before it finished."""


ERROR_KINDS: dict[str, type[DownloadError]] = {
    "http": HTTPStatusError,
    "transport": TransportError,
    "too_short": ContentTooShortError,
    "range": RangeError,
    "filesize": FileSizeError,
    "cancelled": CancelledError,
}
