"""Servers and generated content for the benchmarks (loopback only).

* nginx from Debian (``tests/nginxserver.py``): plain HTTP/1.1 and HTTPS with
  HTTP/2, serving ``bench/work/www``.  Used wherever the server must not be the
  bottleneck (the unthrottled 1 GiB file, HLS fragments).
* the project's throttling/fault server (``tests/faultserver.py``), run in this
  process on a background thread: ``/data/<size>.mp4?seed=N&rate=B/s&latency=MS``
  serves deterministic content, ``add_file(name, bytes)`` serves ``/file/<name>``.

Content is deterministic (``faultserver.iter_content(size, seed)``), so the
SHA-256 every output is checked against is known without keeping a reference
copy around.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
if str(ROOT / "tests") not in sys.path:
    sys.path.insert(0, str(ROOT / "tests"))

from faultserver import FaultServer, content, iter_content, sha256_of  # noqa: E402
from nginxserver import NginxServer, find_nginx  # noqa: E402

__all__ = [
    "FaultServer", "NginxServer", "Servers", "content", "find_nginx", "iter_content",
    "sha256_of", "write_content",
]


def write_content(path: Path, size: int, seed: int) -> str:
    """Write ``content(size, seed)`` to ``path`` (kept if already there); returns its SHA-256."""
    marker = path.with_name(path.name + ".sha256")
    if path.exists() and marker.exists() and path.stat().st_size == size:
        parts = marker.read_text().split()
        if parts[1:] == [str(size), str(seed)]:
            return parts[0]
    path.parent.mkdir(parents=True, exist_ok=True)
    h = hashlib.sha256()
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        buf: List[bytes] = []
        pending = 0
        for piece in iter_content(size, seed):
            h.update(piece)
            buf.append(piece)
            pending += len(piece)
            if pending >= 8 << 20:
                f.write(b"".join(buf))
                buf, pending = [], 0
        f.write(b"".join(buf))
    os.replace(tmp, path)
    digest = h.hexdigest()
    marker.write_text(f"{digest} {size} {seed}\n")
    return digest


def _timeline(entries: List[Any]) -> Dict[str, float]:
    """Fault-server requests of one run -> when and how densely they were served.

    server_span: first request's start to last request's end (the transfer as
    the server saw it: no client start-up in it); ramp: first request's start
    to the moment the peak number of concurrent requests was first reached;
    idle: time inside the span with no request in progress (the client was
    busy elsewhere); mean_concurrent: request-seconds / span.
    """
    events: List[Tuple[float, int]] = []
    for e in entries:
        start = e.started or e.time
        events.append((start, 1))
        events.append((e.finished if e.finished is not None else start, -1))
    if not events:
        return {"server_span": 0.0, "ramp": 0.0, "idle": 0.0, "mean_concurrent": 0.0}
    events.sort()
    first, last = events[0][0], events[-1][0]
    active = peak = 0
    peak_at = prev = first
    idle = busy = 0.0
    for t, d in events:
        if active == 0:
            idle += t - prev
        busy += active * (t - prev)
        prev = t
        active += d
        if active > peak:
            peak, peak_at = active, t
    span = last - first
    return {"server_span": round(span, 4), "ramp": round(peak_at - first, 4), "idle": round(idle, 4),
            "mean_concurrent": round(busy / span, 3) if span > 0 else 0.0}


class Servers:
    """Starts nginx and the fault server on first use; ``stop()`` ends both."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.www = workdir / "www"
        self._nginx: Optional[NginxServer] = None
        self._fault: Optional[FaultServer] = None
        self._nginx_log_pos = 0

    # -- nginx -----------------------------------------------------------------
    @property
    def nginx(self) -> NginxServer:
        if self._nginx is None:
            self.www.mkdir(parents=True, exist_ok=True)
            srv = NginxServer(self.www, self.workdir / "nginx")
            srv.start()
            self._nginx = srv
        return self._nginx

    def nginx_put(self, relpath: str, size: int, seed: int) -> Tuple[str, str]:
        """Generate a file in nginx's root; returns (path below the root, sha256)."""
        digest = write_content(self.www / relpath, size, seed)
        return "/" + relpath, digest

    # -- fault server ------------------------------------------------------------
    @property
    def fault(self) -> FaultServer:
        if self._fault is None:
            self._fault = FaultServer().start()
        return self._fault

    # -- per-run server statistics --------------------------------------------------
    def mark(self) -> None:
        """Start of a run: remember where the logs are."""
        if self._fault is not None:
            self._fault.reset()
        if self._nginx is not None:
            try:
                self._nginx_log_pos = self._nginx.access_log.stat().st_size
            except FileNotFoundError:
                self._nginx_log_pos = 0

    def stats(self) -> Dict[str, int]:
        """Requests, distinct connections (and peak concurrency: fault server) since mark()."""
        requests = 0
        conns: set = set()
        peak = 0
        body = 0
        timeline: Dict[str, float] = {}
        if self._fault is not None:
            self._fault.wait_idle(2.0)
            entries = [e for e in self._fault.log if e.method == "GET"]
            for e in entries:
                requests += 1
                conns.add(("f", e.conn_id))
                body += e.bytes_sent
            peak = self._fault.max_concurrent
            timeline = _timeline(entries)
        if self._nginx is not None:
            try:
                with open(self._nginx.access_log, "rb") as f:
                    f.seek(self._nginx_log_pos)
                    lines = f.read().decode(errors="replace").splitlines()
            except FileNotFoundError:
                lines = []
            from nginxserver import _LOG_RE  # the log format nginxserver writes
            for line in lines:
                m = _LOG_RE.match(line)
                if not m:
                    continue
                requests += 1
                conns.add(("n", m.group("connection")))
                body += int(m.group("bytes"))
        return {"requests": requests, "connections": len(conns), "peak_concurrent": peak, "bytes_served": body,
                **timeline}

    def stop(self) -> None:
        if self._fault is not None:
            self._fault.stop()
            self._fault = None
        if self._nginx is not None:
            self._nginx.stop()
            self._nginx = None
