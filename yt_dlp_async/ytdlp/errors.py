"""Map the engine's exceptions to the ones yt-dlp's code and users expect from HttpFD.

``process_info`` catches yt-dlp's ``HTTPError``/``TransportError`` ("unable to
download video data") and ``ContentTooShortError``; ``FragmentFD`` retries on
``HTTPError``; so an engine error must become one of those, carrying status,
headers and the engine error as ``cause``.
"""

from __future__ import annotations

import io
import os
from typing import Any

from . import internals

# libcurl error codes (curl/curl.h)
CURLE_UNSUPPORTED_PROTOCOL = 1
CURLE_TOO_MANY_REDIRECTS = 47
CURLE_COULDNT_RESOLVE_PROXY = 5
CURLE_SSL_CONNECT_ERROR = 35
CURLE_PEER_FAILED_VERIFICATION = 60
CURLE_SSL_CERTPROBLEM = 58
CURLE_SSL_CIPHER = 59
CURLE_SSL_CACERT_BADFILE = 77
CURLE_SSL_PINNEDPUBKEYNOTMATCH = 90
CURLE_SSL_INVALIDCERTSTATUS = 91
CURLE_PROXY = 97

_CERT_CODES = frozenset({CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CACERT_BADFILE,
                         CURLE_SSL_PINNEDPUBKEYNOTMATCH, CURLE_SSL_INVALIDCERTSTATUS})
_SSL_CODES = frozenset({CURLE_SSL_CONNECT_ERROR, CURLE_SSL_CERTPROBLEM, CURLE_SSL_CIPHER})
_PROXY_CODES = frozenset({CURLE_COULDNT_RESOLVE_PROXY, CURLE_PROXY})


def http_error(url: str, status: int, headers: dict[str, str] | None, cause: BaseException | None = None,
               redirect_loop: bool = False) -> Exception:
    """yt-dlp's HTTPError for a status, built on a real ``yt_dlp.networking.Response``."""
    Response = internals.load('yt_dlp.networking:Response')
    HTTPError = internals.load('yt_dlp.networking.exceptions:HTTPError')
    response = Response(io.BytesIO(b''), url, dict(headers or {}), status)
    error = HTTPError(response, redirect_loop=redirect_loop)
    error.__cause__ = cause
    return error


def transport_error(exc: BaseException) -> Exception:
    code = getattr(exc, 'curl_code', None)
    status = int(getattr(exc, 'http_status', 0) or 0)
    if code in (CURLE_TOO_MANY_REDIRECTS, CURLE_UNSUPPORTED_PROTOCOL) and 300 <= status < 400:
        # a redirect not followed (a loop, or to a scheme other than http/https):
        # yt-dlp's request handler raises HTTPError for its 3xx, not retried
        return http_error(getattr(exc, 'url', '') or '', status, getattr(exc, 'headers', None), exc,
                          redirect_loop=code == CURLE_TOO_MANY_REDIRECTS)
    message = str(getattr(exc, 'reason', None) or exc) or type(exc).__name__
    if code in _CERT_CODES:
        error_class = internals.load('yt_dlp.networking.exceptions:CertificateVerifyError')
    elif code in _SSL_CODES:
        error_class = internals.load('yt_dlp.networking.exceptions:SSLError')
    elif code in _PROXY_CODES:
        error_class = internals.load('yt_dlp.networking.exceptions:ProxyError')
    else:
        error_class = internals.load('yt_dlp.networking.exceptions:TransportError')
    error: Exception = error_class(message, cause=exc)
    return error


def content_too_short(exc: BaseException, resume_len: int = 0, total: int | None = None) -> Exception:
    """HttpFD's message counts the whole file: bytes on disk vs the announced size."""
    ContentTooShortError = internals.load('yt_dlp.utils:ContentTooShortError')
    downloaded = int(getattr(exc, 'downloaded', 0) or 0) + resume_len
    expected = int(getattr(exc, 'expected', 0) or 0) + resume_len
    if total is not None and total > expected:
        expected = total
    error = ContentTooShortError(downloaded, expected)
    error.__cause__ = exc
    return error


def to_ytdlp(exc: BaseException, api: Any, resume_len: int = 0) -> BaseException:
    """The yt-dlp exception for an engine ``AsyncDownloadError`` (others are returned as they are)."""
    if isinstance(exc, api.HTTPStatusError):
        return http_error(getattr(exc, 'url', '') or '', int(getattr(exc, 'http_status', 0) or 0),
                          getattr(exc, 'headers', None), exc)
    if isinstance(exc, api.ShortBodyError):
        return content_too_short(exc, resume_len)
    if isinstance(exc, api.NetworkError):
        return transport_error(exc)
    return exc


def is_fatal_transport(error: BaseException) -> bool:
    """TLS verification failures and redirects not followed (an HTTPError) are not retried (as in HttpFD)."""
    CertificateVerifyError = internals.load('yt_dlp.networking.exceptions:CertificateVerifyError')
    HTTPError = internals.load('yt_dlp.networking.exceptions:HTTPError')
    return isinstance(error, (CertificateVerifyError, HTTPError))


def write_error_text(exc: OSError) -> str:
    """HttpFD's words after "unable to write data: ": the OSError its file's write
    raised, ``[Errno 28] No space left on device`` (no file name, no engine words)."""
    if exc.errno:
        return str(OSError(exc.errno, os.strerror(exc.errno)))
    return str(exc)
