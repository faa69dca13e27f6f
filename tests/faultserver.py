"""A fault-injecting, threaded HTTP/1.1 test server (stdlib only).

The server serves deterministic pseudo-random content and can misbehave in
many controlled ways (failures, resets, stalls, short bodies, ignored ranges,
changing ETags, throttling, ...), selected per request with query parameters.
It records every request in a thread-safe log so tests can assert on what the
client actually did.

Content
-------
``content(size, seed)`` is made of 64 KiB blocks; block ``k`` is
``hashlib.shake_128(f"{seed}:{k}".encode()).digest(65536)`` and the whole is
truncated to ``size``.  Only the blocks needed by a request are generated (with
a small LRU cache), so very large resources cost no memory.

Routes
------
``GET/HEAD /data/<size>[.<ext>]``
    ``content(size, seed)``; ``.mp4`` -> ``video/mp4``, anything else
    ``application/octet-stream`` (override with ``content_type=``).  Sends
    ``Content-Length``, ``Accept-Ranges: bytes``, ``ETag: "<seed>-<size>-<version>"``,
    ``Last-Modified`` (2020-01-01 + ``version`` days) and honours a single
    ``Range`` (``a-b``, ``a-``, ``-n``; multi-range or malformed -> 200 full,
    unsatisfiable -> 416 with ``Content-Range: bytes */size``) and ``If-Range``.
``GET/HEAD /file/<name>``
    A file registered with :meth:`FaultServer.add_file` (``name`` may contain
    slashes), with the same range/fault support as ``/data``.
``GET /redirect?to=URL&code=302``
    Redirect to ``URL`` (may point to another host/server).  ``loop=1``
    instead redirects to the request target itself, forever.
``GET /headers``
    Echo the request headers as JSON ``{"headers": {...}}``.
``GET /page?title=T&videos=/data/1000.mp4,/data/2000.mp4``
    Small HTML page with a ``<title>`` and one ``<video src=...>`` per path.
Anything else is 404.

Query parameters (all optional and combinable)
----------------------------------------------
Every request is counted against its *resource key*: the raw request target
(path + query string as sent).  Add ``key=anything`` to separate test runs.
Two counters exist per key:

* the request index ``n`` (all requests, any method, any outcome), and
* the served index ``m`` (GET requests that passed every gate below and are
  being answered with content).

Gates, applied to every route, in this order:

``latency=MS``        sleep before sending the response headers.
``max_conns=K``       if K requests for this key are already in progress,
                      answer 429 with ``Retry-After: 1`` (or ``retry_after``).
``status=CODE``       always answer ``CODE`` with a small body.
``require_header=Name:Value``  400 unless that header has that value.
``require_cookie=NAME=VALUE``  403 unless the Cookie header contains it.
``admit=N``           requests with ``n >= N`` answer 403: a server that admits
                      N requests per URL (a signed URL good for N uses).
``fail=N``            requests with ``n < N`` answer ``fail_status`` (default
                      503); ``retry_after=S`` adds ``Retry-After: S``.
``skip=N``            the first N requests of the key bypass ``fail`` and all
                      body faults and do not advance ``n``/``m`` (useful when a
                      client such as yt-dlp's generic extractor probes a URL once
                      before downloading it).
``set_cookie=NAME=VALUE``  add ``Set-Cookie: NAME=VALUE; Path=/``.
``set_cookie_seq=NAME``  add ``Set-Cookie: NAME=<k>; Path=/`` where ``k`` counts
                      the requests carrying this parameter (any key): a cookie
                      that changes on every request.
``cookie_chain=NAME``  a rotating token: once the server has issued ``NAME=<k>``
                      (any key) a request without the latest one gets 403;
                      each admitted request is issued ``NAME=<k+1>``.

Content options (``/data`` and ``/file``):

``seed=N``            content seed (``/data`` only, default 0).
``rate=BYTES_PER_SEC`` smooth per-connection throttle.
``share_rate=BYTES_PER_SEC`` one bandwidth shared by every connection of the
                      key: a second connection adds no speed, it splits it.
``norange=1``         ignore Range; always 200 full, no ``Accept-Ranges``.
``range200=1``        ranged body and ``Content-Range`` but status 200.
``bare206=1``         every content answer (ranged or whole) is a 206 without
                      ``Content-Range``; with ``norange=1`` always the whole body.
``drop_ranges_after=N`` honour ranges while ``m < N``, then ignore them.
``etag_change=N``     once ``m >= N`` the version becomes 1: ETag and
                      Last-Modified change and (``/data``) the content changes
                      too (effective seed ``seed + version * 1000``).
``no_length=1``       no Content-Length; ``Connection: close`` after the body.
``chunked=1``         ``Transfer-Encoding: chunked``.
``content_type=T``    override the Content-Type.
``gzip=1``            send the content gzip-compressed with
                      ``Content-Encoding: gzip`` whatever the client asked for
                      (Content-Length, ranges and ETag are of the compressed
                      stream, as a server with pre-compressed files does).
``gzip=always``       the same, but Range is ignored (always the whole body);
``gzip=auto``         as ``always``, unless the request's ``Accept-Encoding``
                      rules gzip out (no header at all means any coding is fine).
``range_shift=K``     a ranged answer (206) starts K bytes after the asked start;
                      its ``Content-Range`` says so honestly.

Body faults, applied to GET requests with ``m < times`` (``times`` defaults to
1; a negative ``times`` means every request):

``reset_after=K``     send K body bytes (after the client acknowledged them)
                      then reset the connection (RST, client sees ECONNRESET).
``stall_after=K``     send K body bytes, send nothing for ``stall=S`` seconds
                      (default 60) or until the server stops, then continue.
``short=K``           announce the real length but send K bytes fewer, then
                      close the connection.
"""

from __future__ import annotations

import array
import dataclasses
import email.utils
import functools
import gzip
import hashlib
import html
import itertools
import json
import re
import socket
import socketserver
import struct
import sys
import threading
import time
import urllib.parse
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

try:  # Linux/POSIX only: used to wait until the peer acknowledged sent data.
    import fcntl
    import termios

    _TIOCOUTQ: Optional[int] = termios.TIOCOUTQ
except (ImportError, AttributeError):  # pragma: no cover - non-POSIX
    fcntl = None  # type: ignore[assignment]
    _TIOCOUTQ = None

__all__ = [
    "BLOCK_SIZE",
    "FaultServer",
    "LogEntry",
    "RangeNotSatisfiable",
    "content",
    "content_range",
    "iter_content",
    "parse_range",
    "sha256_of",
]

BLOCK_SIZE = 64 * 1024
"""Size of one deterministic content block."""

_BASE_MTIME = 1577836800  # 2020-01-01T00:00:00Z
_MAX_THROTTLE_SLICE = 16 * 1024


# --------------------------------------------------------------------------
# Deterministic content
# --------------------------------------------------------------------------


@functools.lru_cache(maxsize=128)
def _block(seed: int, k: int) -> bytes:
    """Return content block ``k`` (always the full 64 KiB) for ``seed``."""
    return hashlib.shake_128(f"{seed}:{k}".encode()).digest(BLOCK_SIZE)


def iter_content(size: int, seed: int = 0, start: int = 0, end: Optional[int] = None) -> Iterator[bytes]:
    """Yield ``content(size, seed)[start:end]`` in pieces of at most one block."""
    stop = size if end is None else min(end, size)
    pos = max(0, start)
    while pos < stop:
        k, off = divmod(pos, BLOCK_SIZE)
        n = min(BLOCK_SIZE - off, stop - pos)
        block = _block(seed, k)
        yield block if (off == 0 and n == BLOCK_SIZE) else block[off : off + n]
        pos += n


def content_range(size: int, seed: int, start: int, end_exclusive: int) -> bytes:
    """Return ``content(size, seed)[start:end_exclusive]`` without building the whole."""
    return b"".join(iter_content(size, seed, start, end_exclusive))


def content(size: int, seed: int = 0) -> bytes:
    """Return the deterministic content of ``size`` bytes for ``seed``."""
    return content_range(size, seed, 0, size)


@functools.lru_cache(maxsize=256)
def sha256_of(size: int, seed: int = 0) -> str:
    """Hex SHA-256 of ``content(size, seed)``, computed block by block."""
    h = hashlib.sha256()
    for piece in iter_content(size, seed):
        h.update(piece)
    return h.hexdigest()


# --------------------------------------------------------------------------
# Range parsing
# --------------------------------------------------------------------------


class RangeNotSatisfiable(Exception):
    """The Range header is well-formed but cannot be satisfied (-> 416)."""


_RANGE_RE = re.compile(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*", re.IGNORECASE)


def parse_range(header: str, size: int) -> Optional[Tuple[int, int]]:
    """Parse a single byte range against a resource of ``size`` bytes.

    Returns ``(start, end_exclusive)``, or ``None`` when the header must be
    ignored (malformed, multi-range).  Raises :class:`RangeNotSatisfiable`.
    """
    m = _RANGE_RE.fullmatch(header)
    if not m:
        return None
    first, last = m.groups()
    if not first and not last:
        return None
    if not first:  # suffix range: the last N bytes
        n = int(last)
        if n == 0 or size == 0:
            raise RangeNotSatisfiable(header)
        return max(0, size - n), size
    start = int(first)
    if last and int(last) < start:
        return None
    if start >= size:
        raise RangeNotSatisfiable(header)
    end = size if not last else min(int(last) + 1, size)
    return start, end


def _http_date(ts: float) -> str:
    return email.utils.formatdate(ts, usegmt=True)


# --------------------------------------------------------------------------
# Log
# --------------------------------------------------------------------------


@dataclasses.dataclass
class LogEntry:
    """One HTTP request as seen by the server.

    The entry is appended when the request starts and updated in place while it
    is served (``status``, ``bytes_sent``, ``finished``, ``outcome``); use
    :meth:`FaultServer.wait_idle` before asserting on finished requests.
    """

    time: float
    method: str
    path: str
    query: Dict[str, str]
    headers: Dict[str, str]
    range: Optional[str]
    status: Optional[int] = None
    bytes_sent: int = 0
    conn_id: int = 0
    client_port: int = 0
    started: float = 0.0
    finished: Optional[float] = None
    raw_path: str = ""
    """Request target as sent (path + query): the resource key."""
    client_host: str = ""
    index: int = 0
    """Request index ``n`` for this resource key (0-based)."""
    outcome: str = ""
    """What the server did: ``ok``, ``fail``, ``reset``, ``stall``, ``short``, ``client-gone`` ..."""

    def header(self, name: str, default: Optional[str] = None) -> Optional[str]:
        """Case-insensitive request header lookup."""
        lname = name.lower()
        for k, v in self.headers.items():
            if k.lower() == lname:
                return v
        return default

    @property
    def duration(self) -> Optional[float]:
        """Seconds from request start to the end of the response, if finished."""
        return None if self.finished is None else self.finished - self.started


@dataclasses.dataclass
class _KeyState:
    """Counters for one resource key."""

    requests: int = 0  # all requests (n)
    served: int = 0  # GETs answered with content (m)
    active: int = 0  # in progress and admitted by max_conns
    share_next: float = 0.0  # share_rate: when the shared link is free again


@dataclasses.dataclass
class _Resource:
    """Something servable with ranges: size, validators and a chunk source."""

    size: int
    etag: str
    mtime: float
    content_type: str
    chunks: Callable[[int, int], Iterator[bytes]]

    @property
    def last_modified(self) -> str:
        return _http_date(self.mtime)


def _gzip_resource(res: _Resource) -> _Resource:
    """The same resource, gzip-compressed (deterministic: no timestamp)."""
    data = gzip.compress(b"".join(res.chunks(0, res.size)), mtime=0)
    return _Resource(
        size=len(data),
        etag=res.etag[:-1] + '-gz"',
        mtime=res.mtime,
        content_type=res.content_type,
        chunks=lambda a, b: iter((data[a:b],)),
    )


@dataclasses.dataclass
class _File:
    data: bytes
    content_type: str
    generation: int


class _BadParam(Exception):
    pass


class _Abort(Exception):
    """The server is stopping: abandon the response."""


class _Params:
    """Typed access to the query parameters."""

    INTS = (
        "seed", "fail", "fail_status", "status", "reset_after", "stall_after", "short", "times",
        "drop_ranges_after", "etag_change", "max_conns", "skip", "code", "range_shift", "admit",
    )
    FLOATS = ("rate", "latency", "stall", "share_rate")

    def __init__(self, query: Dict[str, str]) -> None:
        self.query = query

    def validate(self) -> None:
        """Raise :class:`_BadParam` early (before any header is sent) for bad numbers."""
        for name in self.INTS:
            self.get_int(name)
        for name in self.FLOATS:
            self.get_float(name)

    def get_str(self, name: str, default: Optional[str] = None) -> Optional[str]:
        return self.query.get(name, default)

    def get_int(self, name: str, default: Optional[int] = None) -> Optional[int]:
        raw = self.query.get(name)
        if raw is None or raw == "":
            return default
        try:
            return int(raw)
        except ValueError:
            raise _BadParam(f"{name}={raw!r} is not an integer") from None

    def get_float(self, name: str, default: Optional[float] = None) -> Optional[float]:
        raw = self.query.get(name)
        if raw is None or raw == "":
            return default
        try:
            return float(raw)
        except ValueError:
            raise _BadParam(f"{name}={raw!r} is not a number") from None

    def get_flag(self, name: str) -> bool:
        return self.query.get(name, "0").lower() not in ("0", "", "false", "no")


# --------------------------------------------------------------------------
# Server plumbing
# --------------------------------------------------------------------------


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 1024

    def __init__(self, address: Tuple[str, int], owner: "FaultServer") -> None:
        self.owner = owner
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind() does a reverse DNS lookup (getfqdn): skip it.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def process_request(self, request: Any, client_address: Any) -> None:
        self.owner._register_conn(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        self.owner._unregister_conn(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, (OSError, ValueError, _Abort)) or self.owner._stopping.is_set():
            return  # client went away or we are shutting down: not interesting
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FaultServer/1.0"
    timeout = None
    disable_nagle_algorithm = True
    server: _HTTPServer

    _entry: Optional[LogEntry] = None
    _extra_headers: List[Tuple[str, str]]

    # -- BaseHTTPRequestHandler hooks -------------------------------------

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass

    def version_string(self) -> str:
        return self.server_version

    def send_response(self, code: int, message: Optional[str] = None) -> None:
        if self._entry is not None:
            self._entry.status = code
        super().send_response(code, message)

    def do_GET(self) -> None:
        self._handle("GET")

    def do_HEAD(self) -> None:
        self._handle("HEAD")

    # -- request life cycle ----------------------------------------------

    def _handle(self, method: str) -> None:
        owner = self.server.owner
        split = urllib.parse.urlsplit(self.path)
        path = urllib.parse.unquote(split.path)
        query = dict(urllib.parse.parse_qsl(split.query, keep_blank_values=True))
        headers: Dict[str, str] = {}
        for k, v in self.headers.items():
            headers[k] = f"{headers[k]}, {v}" if k in headers else v
        now = time.monotonic()
        entry = LogEntry(
            time=now,
            method=method,
            path=path,
            query=query,
            headers=headers,
            range=self.headers.get("Range"),
            conn_id=owner._conn_id(self.request),
            client_host=str(self.client_address[0]),
            client_port=int(self.client_address[1]),
            started=now,
            raw_path=self.path,
        )
        self._entry = entry
        self._extra_headers = []
        state = owner._begin(entry)
        try:
            self._gate_and_route(method, path, _Params(query), state, entry)
            if not entry.outcome:
                entry.outcome = "ok"
        except _Abort:
            entry.outcome = entry.outcome or "aborted"
            self.close_connection = True
        except (OSError, ValueError) as exc:  # client went away, socket shut down...
            entry.outcome = entry.outcome or f"client-gone ({exc.__class__.__name__})"
            self.close_connection = True
        finally:
            entry.finished = time.monotonic()
            self._entry = None
            owner._end(entry)

    def _request_cookies(self) -> List[str]:
        """``NAME=VALUE`` pairs of all Cookie headers of the request."""
        raw = "; ".join(self.headers.get_all("Cookie") or [])
        return [c.strip() for c in raw.split(";") if c.strip()]

    def _wait(self, seconds: float) -> None:
        """Sleep, but raise :class:`_Abort` as soon as the server stops."""
        if seconds > 0 and self.server.owner._stopping.wait(seconds):
            raise _Abort()

    def _gate_and_route(self, method: str, path: str, p: _Params, state: _KeyState, entry: LogEntry) -> None:
        owner = self.server.owner
        try:
            p.validate()
            max_conns = p.get_int("max_conns")
            skip = p.get_int("skip", 0) or 0
            n = entry.index - skip
            admitted = True
            if max_conns is not None:
                with owner._lock:
                    if state.active >= max_conns:
                        admitted = False
                    else:
                        state.active += 1
            try:
                set_cookie = p.get_str("set_cookie")
                if set_cookie:
                    self._extra_headers.append(("Set-Cookie", f"{set_cookie}; Path=/"))
                seq_cookie = p.get_str("set_cookie_seq")
                if seq_cookie:
                    with owner._lock:
                        owner._cookie_seq += 1
                        k = owner._cookie_seq
                    self._extra_headers.append(("Set-Cookie", f"{seq_cookie}={k}; Path=/"))
                self._wait((p.get_float("latency", 0.0) or 0.0) / 1000.0)
                if not admitted:
                    entry.outcome = "max_conns"
                    self._simple(429, extra=[("Retry-After", p.get_str("retry_after") or "1")])
                    return
                status = p.get_int("status")
                if status is not None:
                    entry.outcome = "status"
                    self._simple(status)
                    return
                req_header = p.get_str("require_header")
                if req_header:
                    name, _, value = req_header.partition(":")
                    if self.headers.get(name.strip()) != value.strip():
                        entry.outcome = "missing-header"
                        self._simple(400, b"required header missing\n")
                        return
                chain = p.get_str("cookie_chain")
                if chain:
                    with owner._lock:
                        latest = owner._chains.get(chain)
                        admitted_chain = latest is None or f"{chain}={latest}" in self._request_cookies()
                        if admitted_chain:
                            owner._chains[chain] = (latest or 0) + 1
                            self._extra_headers.append(("Set-Cookie", f"{chain}={(latest or 0) + 1}; Path=/"))
                    if not admitted_chain:
                        entry.outcome = "stale-cookie"
                        self._simple(403, b"stale or missing chained cookie\n")
                        return
                req_cookie = p.get_str("require_cookie")
                if req_cookie:
                    if req_cookie.strip() not in self._request_cookies():
                        entry.outcome = "missing-cookie"
                        self._simple(403, b"required cookie missing\n")
                        return
                admit = p.get_int("admit")
                if admit is not None and n >= admit:
                    entry.outcome = "admit"
                    self._simple(403, b"this URL was used up\n")
                    return
                fail = p.get_int("fail")
                if fail is not None and 0 <= n < fail:
                    entry.outcome = "fail"
                    retry_after = p.get_str("retry_after")
                    self._simple(
                        p.get_int("fail_status", 503) or 503,
                        extra=[("Retry-After", retry_after)] if retry_after is not None else None,
                    )
                    return
                self._route(method, path, p, state, entry, skipped=n < 0)
            finally:
                if admitted and max_conns is not None:
                    with owner._lock:
                        state.active -= 1
        except _BadParam as exc:
            entry.outcome = "bad-param"
            self._simple(400, f"{exc}\n".encode())

    def _route(self, method: str, path: str, p: _Params, state: _KeyState, entry: LogEntry, skipped: bool) -> None:
        owner = self.server.owner
        m = re.fullmatch(r"/data/(\d+)(?:\.([A-Za-z0-9]+))?", path)
        if m:
            size = int(m.group(1))
            seed = p.get_int("seed", 0) or 0
            ctype = "video/mp4" if (m.group(2) or "").lower() == "mp4" else "application/octet-stream"
            ctype = p.get_str("content_type") or ctype

            def make_data(version: int) -> _Resource:
                eff = seed + version * 1000
                return _Resource(
                    size=size,
                    etag=f'"{seed}-{size}-{version}"',
                    mtime=_BASE_MTIME + version * 86400,
                    content_type=ctype,
                    chunks=lambda a, b: iter_content(size, eff, a, b),
                )

            self._serve_resource(method, p, state, entry, make_data, skipped)
            return
        if path.startswith("/file/"):
            name = path[len("/file/") :]
            with owner._lock:
                f = owner._files.get(name)
            if f is None:
                entry.outcome = "not-found"
                self._simple(404)
                return
            fobj = f

            def make_file(version: int) -> _Resource:
                data = fobj.data
                return _Resource(
                    size=len(data),
                    etag=f'"file-{fobj.generation}-{len(data)}-{version}"',
                    mtime=_BASE_MTIME + fobj.generation * 86400 + version * 3600,
                    content_type=p.get_str("content_type") or fobj.content_type,
                    chunks=lambda a, b: iter((data[a:b],)),
                )

            self._serve_resource(method, p, state, entry, make_file, skipped)
            return
        if path == "/redirect":
            to = self.path if p.get_flag("loop") else p.get_str("to")
            if not to:
                self._simple(400, b"missing to=\n")
                return
            code = p.get_int("code", 302) or 302
            entry.outcome = "redirect"
            self._simple(code, f"redirecting to {to}\n".encode(), extra=[("Location", to)])
            return
        if path == "/headers":
            body = json.dumps({"headers": entry.headers}, indent=1).encode()
            self._simple(200, body, content_type="application/json")
            return
        if path == "/page":
            title = p.get_str("title") or "Test page"
            videos = [v for v in (p.get_str("videos") or "").split(",") if v]
            parts = [
                "<!DOCTYPE html>",
                "<html><head><meta charset=\"utf-8\">",
                f"<title>{html.escape(title)}</title></head><body>",
                f"<h1>{html.escape(title)}</h1>",
            ]
            parts += [f'<video src="{html.escape(v, quote=True)}" controls></video>' for v in videos]
            parts.append("</body></html>\n")
            self._simple(200, "\n".join(parts).encode(), content_type="text/html; charset=utf-8")
            return
        entry.outcome = "not-found"
        self._simple(404)

    # -- responses --------------------------------------------------------

    def _simple(
        self,
        code: int,
        body: Optional[bytes] = None,
        content_type: str = "text/plain; charset=utf-8",
        extra: Optional[List[Tuple[str, str]]] = None,
    ) -> None:
        """Send a complete small response (no body for HEAD/204/304/1xx)."""
        if body is None:
            try:
                phrase = HTTPStatus(code).phrase
            except ValueError:
                phrase = "Status"
            body = f"{code} {phrase}\n".encode()
        if code < 200 or code in (204, 304):
            body = b""
        self.send_response(code)
        for k, v in self._extra_headers + (extra or []):
            self.send_header(k, v)
        self.send_header("Content-Type", content_type)
        if code >= 200 and code != 204:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)
            assert self._entry is not None
            self._entry.bytes_sent += len(body)

    @staticmethod
    def _if_range_matches(value: str, res: _Resource) -> bool:
        value = value.strip()
        if value.startswith('"') or value.startswith("W/"):
            return value == res.etag  # strong comparison; weak tags never match
        try:
            dt = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return False
        return dt is not None and int(dt.timestamp()) == int(res.mtime)

    def _serve_resource(
        self,
        method: str,
        p: _Params,
        state: _KeyState,
        entry: LogEntry,
        make: Callable[[int], _Resource],
        skipped: bool,
    ) -> None:
        owner = self.server.owner
        is_get = method == "GET"
        with owner._lock:
            m = state.served
            if is_get and not skipped:
                state.served += 1
        etag_change = p.get_int("etag_change")
        version = 1 if (etag_change is not None and not skipped and m >= etag_change) else 0
        res = make(version)
        gzip_mode = p.get_str("gzip")
        gzipped = self._wants_gzip(gzip_mode)
        if gzipped:
            res = _gzip_resource(res)

        norange = p.get_flag("norange") or (gzipped and gzip_mode != "1")
        drop_after = p.get_int("drop_ranges_after")
        honour = not norange and not (drop_after is not None and not skipped and m >= drop_after)
        start, end, status = 0, res.size, 200
        content_range: Optional[str] = None
        range_header = self.headers.get("Range")
        if range_header and honour:
            if_range = self.headers.get("If-Range")
            if if_range is None or self._if_range_matches(if_range, res):
                try:
                    parsed = parse_range(range_header, res.size)
                except RangeNotSatisfiable:
                    entry.outcome = "unsatisfiable"
                    self._simple(
                        416,
                        b"",
                        extra=[
                            ("Content-Range", f"bytes */{res.size}"),
                            ("Accept-Ranges", "bytes"),
                            ("ETag", res.etag),
                            ("Last-Modified", res.last_modified),
                        ],
                    )
                    return
                if parsed is not None:
                    start, end = parsed
                    start = min(end, start + (p.get_int("range_shift", 0) or 0))
                    status = 200 if p.get_flag("range200") else 206
                    content_range = f"bytes {start}-{end - 1}/{res.size}"
        if p.get_flag("bare206"):
            status, content_range = 206, None
        length = end - start
        chunked = p.get_flag("chunked")
        no_length = p.get_flag("no_length")

        self.send_response(status)
        for k, v in self._extra_headers:
            self.send_header(k, v)
        self.send_header("Content-Type", res.content_type)
        if gzipped:
            self.send_header("Content-Encoding", "gzip")
        if not norange:
            self.send_header("Accept-Ranges", "bytes")
        self.send_header("ETag", res.etag)
        self.send_header("Last-Modified", res.last_modified)
        if content_range:
            self.send_header("Content-Range", content_range)
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        elif no_length:
            self.send_header("Connection", "close")
            self.close_connection = True
        else:
            self.send_header("Content-Length", str(length))
        self.end_headers()
        if not is_get:
            return

        times = p.get_int("times", 1)
        assert times is not None
        faulty = not skipped and (times < 0 or m < times)
        reset_after = p.get_int("reset_after") if faulty else None
        short = p.get_int("short") if faulty else None
        stall_after = p.get_int("stall_after") if faulty else None
        cut, action = length, "ok"
        if reset_after is not None:
            cut, action = max(0, min(length, reset_after)), "reset"
        elif short is not None:
            cut, action = max(0, length - short), "short"
        rate = p.get_float("rate")
        stall = p.get_float("stall", 60.0) or 0.0

        share_rate = p.get_float("share_rate")
        share = (state, share_rate) if share_rate else None
        self._send_body(res, start, start + cut, chunked, rate, stall_after, stall, entry, share)

        if action == "reset":
            entry.outcome = "reset"
            self._reset_connection()
        elif action == "short":
            entry.outcome = "short"
            self.close_connection = True
        else:
            if chunked:
                self.wfile.write(b"0\r\n\r\n")
            if stall_after is not None:
                entry.outcome = "stall"

    def _wants_gzip(self, mode: Optional[str]) -> bool:
        """``gzip=1`` or ``always``, or ``gzip=auto`` and the request does not rule gzip out."""
        if mode in (None, "", "0"):
            return False
        if mode != "auto":
            return True
        accept = self.headers.get("Accept-Encoding")
        if accept is None:
            return True
        codings = {c.split(";")[0].strip().lower() for c in accept.split(",")}
        return "gzip" in codings or "*" in codings

    def _send_body(
        self,
        res: _Resource,
        start: int,
        end: int,
        chunked: bool,
        rate: Optional[float],
        stall_after: Optional[int],
        stall: float,
        entry: LogEntry,
        share: Optional[Tuple[_KeyState, float]] = None,
    ) -> None:
        """Write body bytes ``[start, end)``: throttled, stalled, chunk-framed as asked."""
        throttled = rate is not None and rate > 0
        # Unthrottled: one write per content piece (<= one 64 KiB block).
        piece = max(1, min(_MAX_THROTTLE_SLICE, int(rate / 20))) if throttled and rate else BLOCK_SIZE
        if share is not None:
            piece = max(1, min(piece, _MAX_THROTTLE_SLICE, int(share[1] / 20)))
        sent = 0
        t0 = time.monotonic()
        stalled = stall_after is None

        def do_stall() -> None:
            nonlocal stalled, t0
            stalled = True
            entry.outcome = "stall"
            self._wait(stall)
            if throttled and rate:
                t0 = time.monotonic() - sent / rate  # do not burst to catch up

        for chunk in res.chunks(start, end):
            view = memoryview(chunk)
            while view:
                take = min(piece, len(view))
                if not stalled:
                    assert stall_after is not None
                    if sent >= stall_after:
                        do_stall()
                        continue
                    take = min(take, stall_after - sent)
                data = view[:take]
                view = view[take:]
                if throttled and rate:
                    self._wait(t0 + (sent + take) / rate - time.monotonic())
                if share is not None:
                    # the key's one link: each piece takes the next slot of it
                    state, share_rate = share
                    with self.server.owner._lock:
                        slot = max(time.monotonic(), state.share_next) + take / share_rate
                        state.share_next = slot
                    self._wait(slot - time.monotonic())
                if chunked:
                    self.wfile.write(b"%x\r\n" % take + data.tobytes() + b"\r\n")
                else:
                    self.wfile.write(data)
                sent += take
                entry.bytes_sent += take
        if not stalled and stall_after is not None and sent >= stall_after:
            do_stall()  # the body ended exactly at the stall point

    def _reset_connection(self) -> None:
        """Abort the TCP connection with RST once the peer has ACKed our data."""
        sock: socket.socket = self.connection
        self.close_connection = True
        try:
            if fcntl is not None and _TIOCOUTQ is not None:
                deadline = time.monotonic() + 2.0
                buf = array.array("i", [0])
                while time.monotonic() < deadline:
                    fcntl.ioctl(sock.fileno(), _TIOCOUTQ, buf)
                    if buf[0] == 0:
                        break
                    self._wait(0.005)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        finally:
            # The socket only really closes once the buffered file objects are closed.
            for f in (self.wfile, self.rfile):
                try:
                    f.close()
                except (OSError, ValueError):
                    pass
            sock.close()


# --------------------------------------------------------------------------
# Public server
# --------------------------------------------------------------------------


class FaultServer:
    """Fault-injecting HTTP/1.1 server on a background thread.

    Usage::

        with FaultServer() as srv:
            urllib.request.urlopen(srv.url("/data/1000?fail=1"))
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._host = host
        self._requested_port = port
        self._httpd: Optional[_HTTPServer] = None
        self._thread: Optional[threading.Thread] = None
        self._port: Optional[int] = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._log: List[LogEntry] = []
        self._states: Dict[str, _KeyState] = {}
        self._files: Dict[str, _File] = {}
        self._file_gen = itertools.count(1)
        self._conns: Dict[socket.socket, int] = {}
        self._conn_counter = itertools.count(1)
        self._active = 0
        self._peak = 0
        self._path_active: Dict[str, int] = {}
        self._path_peak: Dict[str, int] = {}
        self._cookie_seq = 0
        self._chains: Dict[str, int] = {}

    # -- life cycle -------------------------------------------------------

    def start(self) -> "FaultServer":
        """Bind and start serving on a daemon thread. Returns ``self``."""
        if self._httpd is not None:
            return self
        self._stopping.clear()
        self._httpd = _HTTPServer((self._host, self._requested_port), self)
        self._port = int(self._httpd.server_address[1])
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"FaultServer-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and abort every open connection (returns promptly)."""
        httpd = self._httpd
        if httpd is None:
            return
        self._stopping.set()
        httpd.shutdown()
        with self._lock:
            socks = list(self._conns)
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(1.0)
        self.wait_idle(1.0)
        self._httpd = None
        self._thread = None

    def __enter__(self) -> "FaultServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- addressing -------------------------------------------------------

    @property
    def host(self) -> str:
        return self._host

    @property
    def port(self) -> int:
        """The bound port (still available after :meth:`stop`)."""
        if self._port is None:
            raise RuntimeError("FaultServer was never started")
        return self._port

    @property
    def base_url(self) -> str:
        return f"http://{self._host}:{self.port}"

    def url(self, path: str = "/") -> str:
        """Absolute URL for ``path`` (which should start with ``/``)."""
        return self.base_url + path

    def data_url(self, size: int, ext: str = "", **params: Any) -> str:
        """URL of ``/data/<size>[.<ext>]`` with the given query parameters."""
        path = f"/data/{size}" + (f".{ext.lstrip('.')}" if ext else "")
        if params:
            path += "?" + urllib.parse.urlencode({k: str(v) for k, v in params.items()})
        return self.url(path)

    # -- files ------------------------------------------------------------

    def add_file(self, name: str, data: bytes, content_type: str = "application/octet-stream") -> str:
        """Serve ``data`` at ``/file/<name>``; returns its URL. Re-adding changes the ETag."""
        name = name.lstrip("/")
        with self._lock:
            self._files[name] = _File(bytes(data), content_type, next(self._file_gen))
        return self.url("/file/" + urllib.parse.quote(name))

    # -- log & counters ---------------------------------------------------

    @property
    def log(self) -> List[LogEntry]:
        """Snapshot of the request log (entries are live objects)."""
        with self._lock:
            return list(self._log)

    def requests(self, path: Optional[str] = None, method: Optional[str] = None) -> List[LogEntry]:
        """Log entries, optionally filtered by path (without query) and method."""
        return [
            e for e in self.log if (path is None or e.path == path) and (method is None or e.method == method)
        ]

    @property
    def max_concurrent(self) -> int:
        """Peak number of requests in progress at once (all paths)."""
        with self._lock:
            return self._peak

    def max_concurrent_for(self, path: str) -> int:
        """Peak concurrency for a path (without query) or a full key (with ``?``)."""
        with self._lock:
            return self._path_peak.get(path, 0)

    @property
    def active(self) -> int:
        """Number of requests currently in progress."""
        with self._lock:
            return self._active

    @property
    def open_connections(self) -> int:
        """Number of client connections the server holds open right now."""
        with self._lock:
            return len(self._conns)

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Wait until no request is in progress; returns False on timeout."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._active:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(left)
        return True

    def reset(self) -> None:
        """Clear the log, per-resource counters and concurrency peaks."""
        with self._lock:
            self._log.clear()
            self._states.clear()
            self._peak = self._active
            self._path_peak = {k: v for k, v in self._path_active.items() if v}

    # -- internals used by the handler -----------------------------------

    def _register_conn(self, sock: socket.socket) -> None:
        with self._lock:
            self._conns[sock] = next(self._conn_counter)

    def _unregister_conn(self, sock: socket.socket) -> None:
        with self._lock:
            self._conns.pop(sock, None)

    def _conn_id(self, sock: socket.socket) -> int:
        with self._lock:
            return self._conns.get(sock, 0)

    def _begin(self, entry: LogEntry) -> _KeyState:
        with self._lock:
            self._log.append(entry)
            self._active += 1
            self._peak = max(self._peak, self._active)
            for k in {entry.path, entry.raw_path}:
                a = self._path_active.get(k, 0) + 1
                self._path_active[k] = a
                self._path_peak[k] = max(self._path_peak.get(k, 0), a)
            state = self._states.setdefault(entry.raw_path, _KeyState())
            entry.index = state.requests
            state.requests += 1
            return state

    def _end(self, entry: LogEntry) -> None:
        with self._lock:
            self._active -= 1
            for k in {entry.path, entry.raw_path}:
                self._path_active[k] -= 1
            self._idle.notify_all()
