"""Run nginx on loopback: fast static serving over HTTP/1.1 and HTTPS + HTTP/2.

``NginxServer(root_dir, workdir)`` writes an nginx.conf and a self-signed
certificate (for ``127.0.0.1`` and ``localhost``) into ``workdir``, starts
nginx in the foreground as a subprocess and serves ``root_dir`` on two free
ports of 127.0.0.1: plain HTTP/1.1 and ``ssl http2``.  Clients can trust the
server with ``ca_file`` (``workdir/cert.pem``).  The access log records, per
request: ``$remote_addr [$time_local] "$request" $status $body_bytes_sent
$server_protocol "$http_range" $connection $connection_requests
$request_time``; see :meth:`NginxServer.access_log_entries`.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Dict, List, Optional, Union

__all__ = ["NginxServer", "NginxError", "find_nginx", "find_openssl"]

PathLike = Union[str, "os.PathLike[str]"]

_LOG_FORMAT = (
    '$remote_addr [$time_local] "$request" $status $body_bytes_sent $server_protocol '
    '"$http_range" $connection $connection_requests $request_time'
)
_LOG_RE = re.compile(
    r'(?P<addr>\S+) \[(?P<time>[^\]]*)\] "(?P<request>[^"]*)" (?P<status>\d+) (?P<bytes>\d+) '
    r'(?P<protocol>\S+) "(?P<range>[^"]*)" (?P<connection>\d+) (?P<connection_requests>\d+) '
    r"(?P<request_time>\S+)"
)

_MIME_TYPES = {
    "text/html": "html htm",
    "text/plain": "txt",
    "application/json": "json",
    "application/vnd.apple.mpegurl": "m3u8",
    "application/dash+xml": "mpd",
    "video/mp2t": "ts",
    "video/mp4": "mp4 m4v",
    "audio/mp4": "m4a",
    "video/webm": "webm",
    "audio/mpeg": "mp3",
}


class NginxError(RuntimeError):
    """nginx could not be started."""


def find_nginx() -> Optional[str]:
    """Path of the nginx binary, or None."""
    found = shutil.which("nginx")
    if found:
        return found
    for candidate in ("/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/local/nginx/sbin/nginx"):
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def find_openssl() -> Optional[str]:
    """Path of the openssl CLI, or None."""
    return shutil.which("openssl")


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


class NginxServer:
    """nginx serving ``root_dir`` on 127.0.0.1 (HTTP/1.1 and HTTPS with HTTP/2)."""

    def __init__(
        self,
        root_dir: PathLike,
        workdir: PathLike,
        nginx_binary: Optional[str] = None,
        host: str = "127.0.0.1",
    ) -> None:
        self.root = Path(root_dir).resolve()
        self.workdir = Path(workdir).resolve()
        self.host = host
        self.nginx_binary = nginx_binary or find_nginx()
        self.http_port = 0
        self.https_port = 0
        self._proc: Optional[subprocess.Popen[bytes]] = None

    # -- paths --------------------------------------------------------------

    @property
    def conf_file(self) -> Path:
        return self.workdir / "nginx.conf"

    @property
    def ca_file(self) -> Path:
        """The self-signed certificate; use it as the client's CA bundle."""
        return self.workdir / "cert.pem"

    @property
    def key_file(self) -> Path:
        return self.workdir / "key.pem"

    @property
    def access_log(self) -> Path:
        return self.workdir / "access.log"

    @property
    def error_log(self) -> Path:
        return self.workdir / "error.log"

    # -- URLs ----------------------------------------------------------------

    def http_url(self, path: str = "/") -> str:
        """Plain HTTP/1.1 URL for ``path`` (starting with ``/``)."""
        return f"http://{self.host}:{self.http_port}{path}"

    def https_url(self, path: str = "/") -> str:
        """HTTPS URL (HTTP/2 via ALPN, HTTP/1.1 also accepted) for ``path``."""
        return f"https://{self.host}:{self.https_port}{path}"

    # -- content helpers -------------------------------------------------------

    def put_file(self, relpath: str, data: bytes) -> Path:
        """Write ``data`` to ``root/relpath`` (creating directories); returns the path."""
        target = self.root / relpath.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        return target

    # -- logs ----------------------------------------------------------------

    def access_log_lines(self) -> List[str]:
        """Lines of the access log so far (nginx writes them unbuffered)."""
        try:
            return self.access_log.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return []

    def access_log_entries(self) -> List[Dict[str, str]]:
        """Parsed access log: dicts with request, status, bytes, protocol, range, ..."""
        out = []
        for line in self.access_log_lines():
            m = _LOG_RE.match(line)
            if m:
                out.append(m.groupdict())
        return out

    # -- life cycle -------------------------------------------------------------

    def _make_cert(self) -> None:
        if self.ca_file.exists() and self.key_file.exists():
            return
        openssl = find_openssl()
        if openssl is None:
            raise NginxError("openssl CLI not found")
        subprocess.run(
            [
                openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                "-nodes", "-keyout", str(self.key_file), "-out", str(self.ca_file), "-days", "30",
                "-subj", "/CN=127.0.0.1",
                "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def _write_conf(self) -> None:
        w = self.workdir
        types = "\n".join(f"        {t} {exts};" for t, exts in _MIME_TYPES.items())
        temp_paths = "\n".join(
            f"    {name}_temp_path {w / 'tmp' / name};" for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        # Running as root: workers would switch to "nobody", which cannot read
        # pytest's 0700 temporary directories, so keep them as root.
        user = "user root;\n" if hasattr(os, "geteuid") and os.geteuid() == 0 else ""
        conf = f"""# generated by tests/nginxserver.py
{user}daemon off;
master_process on;
worker_processes 2;
pid {w / 'nginx.pid'};
error_log {self.error_log} warn;

events {{
    worker_connections 4096;
}}

http {{
    types {{
{types}
    }}
    default_type application/octet-stream;
    log_format faults '{_LOG_FORMAT}';
    access_log {self.access_log} faults;
{temp_paths}
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_timeout 65;
    keepalive_requests 100000;
    http2_max_concurrent_streams 256;

    server {{
        listen {self.host}:{self.http_port};
        listen {self.host}:{self.https_port} ssl http2;
        server_name localhost 127.0.0.1;
        ssl_certificate {self.ca_file};
        ssl_certificate_key {self.key_file};
        ssl_protocols TLSv1.2 TLSv1.3;
        root {self.root};
        location / {{
        }}
    }}
}}
"""
        self.conf_file.write_text(conf)

    def start(self, timeout: float = 10.0) -> "NginxServer":
        """Write config and certificate, launch nginx and wait for both ports."""
        if self._proc is not None:
            return self
        if self.nginx_binary is None:
            raise NginxError("nginx binary not found")
        self.root.mkdir(parents=True, exist_ok=True)
        self.workdir.mkdir(parents=True, exist_ok=True)
        for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (self.workdir / "tmp" / name).mkdir(parents=True, exist_ok=True)
        self._make_cert()
        last_error = ""
        for _attempt in range(3):  # free-port races: retry with new ports
            self.http_port = _free_port(self.host)
            self.https_port = _free_port(self.host)
            if self.http_port == self.https_port:
                continue
            self._write_conf()
            stderr_path = self.workdir / "nginx.stderr"
            with open(stderr_path, "wb") as stderr:
                proc = subprocess.Popen(
                    [self.nginx_binary, "-p", str(self.workdir), "-c", str(self.conf_file), "-e", str(self.error_log)],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=stderr,
                )
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if proc.poll() is not None:
                    break
                if _port_open(self.host, self.http_port) and _port_open(self.host, self.https_port):
                    self._proc = proc
                    return self
                time.sleep(0.05)
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            last_error = stderr_path.read_text(errors="replace")
            if self.error_log.exists():
                last_error += self.error_log.read_text(errors="replace")[-2000:]
        raise NginxError(f"nginx did not start: {last_error.strip()}")

    def stop(self) -> None:
        """Terminate nginx (SIGTERM, then SIGKILL after 5 s)."""
        proc = self._proc
        if proc is None:
            return
        self._proc = None
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def __enter__(self) -> "NginxServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
