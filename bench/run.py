#!/usr/bin/env python3
"""Benchmarks: yt-dlp-async against yt-dlp's native downloader, aria2c and curl.

``make bench`` runs ``python bench/run.py`` (all default workloads, 3 runs of
every contender, interleaved round-robin) and writes ``bench/results.md``,
``bench/results.png`` and the raw numbers in ``bench/results.json``.

    python bench/run.py --list                 # workloads and contenders
    python bench/run.py --quick                # small sizes, 1 run: smoke test (writes bench/work/quick/)
    python bench/run.py --workload file-1g --workload throttled --runs 5
    python bench/run.py --workload all         # every workload (default=False ones too)
    python bench/run.py --workload issue10     # the workloads issue 10's goals are judged on (+ startup)
    python bench/run.py --contender ytdlp-native --contender ytdlp-async

Every server listens on 127.0.0.1 only and is started here: nginx from Debian
(tests/nginxserver.py) and the project's throttling server
(tests/faultserver.py, in this process).  Each run is a child process measured
with os.wait4(): wall time, CPU (user+sys, children of the child included,
e.g. the aria2c that yt-dlp starts) and peak RSS.  Every output file is
checked by SHA-256; a wrong or missing file makes the run FAILED.  Run
directories live under bench/work/ and are deleted after each run.

Results of workloads not selected this time are kept from the previous
results.json (each table says when it was measured).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import hashlib
import json
import os
import platform
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

import servers as srvmod  # noqa: E402  (also puts tests/ on sys.path)
from servers import Servers, sha256_of, write_content  # noqa: E402

KiB = 1 << 10
MiB = 1 << 20
GiB = 1 << 30
RATE = 2_000_000  # bytes/s per connection for the throttled workloads ("2 MB/s")

PY = sys.executable

API_SCRIPT = r"""
import sys
import yt_dlp_async
url, path, ca, conns = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
kw = {"ca_file": ca} if ca else {}
if conns:
    kw["connections"] = conns
with yt_dlp_async.AsyncDownloadEngine() as engine:
    engine.submit(url, path, **kw).result()
"""


# ----------------------------------------------------------------------------
# Workload preparation
# ----------------------------------------------------------------------------


@dataclasses.dataclass
class Prepared:
    """What every run of a workload needs; produced once per workload."""

    total_bytes: int                      # payload bytes (for MB/s and CPU s/GiB)
    expected: List[Tuple[str, str]]       # (file name in the run dir, sha256)
    info: Any                             # info JSON for yt-dlp (dict; a playlist dict for playlists)
    url: Optional[str] = None             # single-file contenders (aria2c, curl, API)
    out_name: str = "out.mp4"             # their output name
    out_template: str = "out.%(ext)s"     # yt-dlp's -o
    entries: List[Dict[str, Any]] = dataclasses.field(default_factory=list)  # playlist entries (xargs)
    ytdlp_args: List[str] = dataclasses.field(default_factory=list)  # extra yt-dlp args for every yt-dlp contender
    ca_file: Optional[str] = None
    rate: Optional[int] = None            # per-connection throttle (B/s): ideal = bytes / (conns * rate)
    check: Optional[Callable[[Path], Optional[str]]] = None  # extra output check -> error text
    notes: List[str] = dataclasses.field(default_factory=list)
    extra: Dict[str, Any] = dataclasses.field(default_factory=dict)  # copied into results.json (goal inputs)


def _headers() -> Dict[str, str]:
    return {"User-Agent": "yt-dlp-async-bench/1.0", "Accept": "*/*"}


def _video_info(vid: str, url: str, protocol: str, ext: str = "mp4") -> Dict[str, Any]:
    # Minimal: no webpage_url, so a failure cannot fall back to extracting a URL.
    return {"id": vid, "title": vid, "ext": ext, "url": url, "protocol": protocol, "http_headers": _headers()}


class Ctx:
    def __init__(self, servers: Servers, quick: bool) -> None:
        self.servers = servers
        self.quick = quick


def prep_startup(ctx: Ctx) -> Prepared:
    path, digest = ctx.servers.nginx_put("startup/1k.mp4", KiB, seed=7)
    url = ctx.servers.nginx.http_url(path)
    return Prepared(total_bytes=KiB, expected=[("out.mp4", digest)], info=_video_info("startup", url, "http"), url=url,
                    notes=["1 KiB from nginx: the fixed cost of starting each tool (interpreter, imports, "
                           "engine thread); the `wall - start-up` columns of the other tables subtract it."])


def _nginx_file(ctx: Ctx, size: int, vid: str) -> Prepared:
    path, digest = ctx.servers.nginx_put(f"file/{size}.mp4", size, seed=1)
    url = ctx.servers.nginx.http_url(path)
    return Prepared(total_bytes=size, expected=[("out.mp4", digest)], info=_video_info(vid, url, "http"), url=url,
                    notes=["nginx (sendfile, page cache) over plain HTTP/1.1 on loopback, no throttle."])


def prep_file_1g(ctx: Ctx) -> Prepared:
    return _nginx_file(ctx, 64 * MiB if ctx.quick else GiB, "file1g")


def prep_file_64m(ctx: Ctx) -> Prepared:
    p = _nginx_file(ctx, 8 * MiB if ctx.quick else 64 * MiB, "file64m")
    p.notes.append("The small twin of `file-1g`: peak RSS must not grow with the file's size (issue 10).")
    return p


def _throttled(ctx: Ctx, latency: int) -> Prepared:
    size = 8 * MiB if ctx.quick else 64 * MiB
    seed = 2 if not latency else 3
    params: Dict[str, Any] = {"seed": seed, "rate": RATE}
    if latency:
        params["latency"] = latency
    url = ctx.servers.fault.data_url(size, "mp4", **params)
    note = f"tests/faultserver.py limiting every connection to {RATE / 1e6:g} MB/s"
    if latency:
        note += f", {latency} ms before every response"
    return Prepared(total_bytes=size, expected=[("out.mp4", sha256_of(size, seed))],
                    info=_video_info("throttled", url, "http"), url=url, rate=RATE,
                    notes=[note + ".  `ideal` = bytes / (connections x rate): for the default the connections its "
                                  "`-v` line reports (one untimed probe run), else, and for every other row, the "
                                  "peak of concurrent requests the server saw."])


def prep_throttled(ctx: Ctx) -> Prepared:
    return _throttled(ctx, 0)


def prep_throttled_latency(ctx: Ctx) -> Prepared:
    return _throttled(ctx, 100)


def _m3u8(segment_urls: Sequence[str], key_line: str = "") -> bytes:
    lines = ["#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-TARGETDURATION:2", "#EXT-X-MEDIA-SEQUENCE:0",
             "#EXT-X-PLAYLIST-TYPE:VOD"]
    if key_line:
        lines.append(key_line)
    for u in segment_urls:
        lines += ["#EXTINF:2.000,", u]
    lines.append("#EXT-X-ENDLIST")
    return ("\n".join(lines) + "\n").encode()


def _hls_nginx(ctx: Ctx, name: str, count: int, seg_size: int, aes: bool) -> Prepared:
    www = ctx.servers.www
    seg_dir = www / name
    total = hashlib.sha256()
    names = []
    key = bytes(range(16))
    openssl = shutil.which("openssl")
    for i in range(count):
        seg = f"seg{i:05d}.ts"
        plain = seg_dir / ("plain-" + seg if aes else seg)
        write_content(plain, seg_size, 10_000 + i)
        total.update(plain.read_bytes())
        if aes:
            enc = seg_dir / seg
            if not enc.exists():
                if openssl is None:
                    raise RuntimeError("openssl CLI needed to encrypt the HLS segments")
                iv = i.to_bytes(16, "big")  # no IV attribute: the media sequence number, as the spec says
                subprocess.run([openssl, "enc", "-aes-128-cbc", "-K", key.hex(), "-iv", iv.hex(),
                                "-in", str(plain), "-out", str(enc)], check=True)
        names.append(seg)
    key_line = ""
    if aes:
        (seg_dir / "key.bin").write_bytes(key)
        key_line = '#EXT-X-KEY:METHOD=AES-128,URI="key.bin"'
    (seg_dir / "index.m3u8").write_bytes(_m3u8(names, key_line))
    url = ctx.servers.nginx.http_url(f"/{name}/index.m3u8")
    return Prepared(total_bytes=count * seg_size, expected=[("out.mp4", total.hexdigest())],
                    info=_video_info(name, url, "m3u8_native"), ytdlp_args=["--fixup", "never"],
                    notes=[f"{count} fragments of {seg_size // KiB} KiB from nginx on loopback"
                           + (" (AES-128, key by URI, IV = media sequence)" if aes else "")
                           + "; the output must equal the fragments concatenated" + (" after decryption" if aes else "")
                           + "; `--fixup never` (random bytes are no MPEG-TS)."])


def prep_hls(ctx: Ctx) -> Prepared:
    return _hls_nginx(ctx, "hls", 40 if ctx.quick else 400, 256 * KiB, aes=False)


def prep_hls_aes(ctx: Ctx) -> Prepared:
    try:
        import Cryptodome  # noqa: F401
    except ImportError:
        raise RuntimeError("pycryptodomex not installed: yt-dlp would hand the stream to ffmpeg") from None
    return _hls_nginx(ctx, "hls-aes", 40 if ctx.quick else 400, 256 * KiB, aes=True)


def prep_hls_latency(ctx: Ctx) -> Prepared:
    fault = ctx.servers.fault
    count = 20 if ctx.quick else 200
    seg_size = 100 * KiB
    total = hashlib.sha256()
    urls = []
    for i in range(count):
        data = srvmod.content(seg_size, 20_000 + i)
        total.update(data)
        urls.append(fault.add_file(f"hlslat/seg{i:05d}.ts", data) + "?latency=50")
    m3u8_url = fault.add_file("hlslat/index.m3u8", _m3u8(urls), "application/vnd.apple.mpegurl")
    window, source = fragment_window()
    ideal = f"{count * 0.05 / window:.3f} s" if window else "not known"
    return Prepared(total_bytes=count * seg_size, expected=[("out.mp4", total.hexdigest())],
                    info=_video_info("hlslat", m3u8_url, "m3u8_native"), ytdlp_args=["--fixup", "never"],
                    extra={"fragments": count, "latency_s": 0.05, "fragment_window": window,
                           "fragment_window_source": source},
                    notes=[f"{count} fragments of 100 KiB from tests/faultserver.py with 50 ms before every "
                           f"fragment response.  Fragment window of the default: {window} ({source}); "
                           f"ideal = {count} x 50 ms / {window} = {ideal}."])


def fragment_window() -> Tuple[Optional[int], str]:
    """Fragments one HLS download of the plugin has in flight by default, read from its code.

    The pipeline keeps max(-N, DEFAULT_WINDOW) fragments outstanding and the
    engine transfers at most --async-host-connections of them to one host.
    """
    try:
        from yt_dlp_async.ytdlp import fragment_pipeline, options
    except Exception as exc:
        return None, f"not readable: {type(exc).__name__}: {exc}"
    window = getattr(fragment_pipeline, "DEFAULT_WINDOW", None)
    host = getattr(options, "DEFAULTS", {}).get("async_host_connections")
    if not isinstance(window, int):
        return None, "yt_dlp_async.ytdlp.fragment_pipeline.DEFAULT_WINDOW not found"
    if not isinstance(host, int):
        return window, f"fragment_pipeline.DEFAULT_WINDOW = {window} (-N 1)"
    return min(window, host), (f"min(fragment_pipeline.DEFAULT_WINDOW = {window} with -N 1, "
                               f"--async-host-connections default = {host})")


def _make_media(www: Path, quick: bool) -> Tuple[Path, Path]:
    """A real H.264 video (noise, so it does not compress) and an ALAC (lossless, MP4) audio track."""
    secs = 4 if quick else 16
    d = www / "media"
    d.mkdir(parents=True, exist_ok=True)
    video, audio = d / f"video-{secs}.mp4", d / f"audio-{secs}.m4a"
    ff = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y"]
    if not video.exists():
        subprocess.run(ff + ["-f", "lavfi", "-i", "testsrc2=s=640x360:r=25", "-vf", "noise=alls=60:allf=t+u",
                             "-t", str(secs), "-c:v", "libx264", "-preset", "ultrafast", "-b:v", "8M",
                             "-maxrate", "8M", "-bufsize", "2M", "-an", "-fflags", "+bitexact",
                             str(video) + ".tmp.mp4"], check=True)
        os.replace(str(video) + ".tmp.mp4", video)
    if not audio.exists():
        subprocess.run(ff + ["-f", "lavfi", "-i", f"anoisesrc=d={secs}:c=white:a=0.5:r=48000", "-ac", "2",
                             "-c:a", "alac", "-fflags", "+bitexact", "-f", "mp4",
                             str(audio) + ".tmp"], check=True)
        os.replace(str(audio) + ".tmp", audio)
    return video, audio


def _ffprobe_streams(path: Path) -> List[str]:
    out = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=codec_type", "-of", "csv=p=0", str(path)],
                         capture_output=True, text=True)
    return sorted(out.stdout.split())


def prep_pair(ctx: Ctx) -> Prepared:
    if not shutil.which("ffmpeg") or not shutil.which("ffprobe"):
        raise RuntimeError("ffmpeg/ffprobe not installed")
    video, audio = _make_media(ctx.servers.www, ctx.quick)
    fault = ctx.servers.fault
    vdata, adata = video.read_bytes(), audio.read_bytes()
    q = f"?rate={RATE}&latency=50"
    vurl = fault.add_file("pair/video.mp4", vdata, "video/mp4") + q
    aurl = fault.add_file("pair/audio.m4a", adata, "audio/mp4") + q
    formats = [
        {"format_id": "a", "url": aurl, "ext": "m4a", "protocol": "http", "vcodec": "none", "acodec": "alac",
         "http_headers": _headers(), "filesize": len(adata)},
        {"format_id": "v", "url": vurl, "ext": "mp4", "protocol": "http", "vcodec": "avc1.42c01e", "acodec": "none",
         "width": 640, "height": 360, "http_headers": _headers(), "filesize": len(vdata)},
    ]
    info = {"id": "pair", "title": "pair", "formats": formats, "ext": "mp4"}

    def check(run_dir: Path) -> Optional[str]:
        merged = run_dir / "out.mp4"
        if not merged.exists():
            return "merged out.mp4 missing"
        streams = _ffprobe_streams(merged)
        if streams != ["audio", "video"]:
            return f"merged out.mp4 has streams {streams}"
        return None

    return Prepared(total_bytes=len(vdata) + len(adata),
                    expected=[("out.fv.mp4", hashlib.sha256(vdata).hexdigest()),
                              ("out.fa.m4a|out.fa.mp4", hashlib.sha256(adata).hexdigest())],
                    info=info, ytdlp_args=["-f", "bv+ba", "-k"], rate=RATE, check=check,
                    notes=[f"`-f bv+ba -k`: an H.264 video ({len(vdata) / MiB:.1f} MiB) and an ALAC audio "
                           f"({len(adata) / MiB:.1f} MiB) from tests/faultserver.py at {RATE / 1e6:g} MB/s per "
                           "connection and 50 ms per request, merged by ffmpeg; both downloaded formats are "
                           "checked by SHA-256 (`-k`) and the merged file by ffprobe (one video, one audio stream)."])


def _playlist_info(entries: List[Dict[str, Any]]) -> Dict[str, Any]:
    return {"_type": "playlist", "id": "pl", "title": "pl", "extractor": "generic", "extractor_key": "Generic",
            "entries": entries}


def prep_playlist(ctx: Ctx) -> Prepared:
    fault = ctx.servers.fault
    n = 10
    size = 2 * MiB if ctx.quick else 16 * MiB
    entries = []
    expected = []
    for i in range(n):
        url = fault.data_url(size, "mp4", seed=100 + i, rate=RATE)
        entries.append(_video_info(f"v{i:02d}", url, "http"))
        expected.append((f"v{i:02d}.mp4", sha256_of(size, 100 + i)))
    return Prepared(total_bytes=n * size, expected=expected, info=_playlist_info(entries), entries=entries,
                    out_template="%(id)s.%(ext)s", rate=RATE, ytdlp_args=["--no-clean-info-json"],
                    notes=[f"A {n}-entry playlist info JSON (loaded with `--no-clean-info-json`, which keeps "
                           f"its entries), {size // MiB} MiB per video, tests/faultserver.py "
                           f"at {RATE / 1e6:g} MB/s per connection (issue 10: no added latency).",
                           PLAYLIST_NOTE, ENTRIES_NOTE])


# Why the playlist row is slower than `aria2c -j5 -x16` (issue 10 asks the note to say it).
ENTRIES_NOTE = ("The plugin's rows pass `--concurrent-downloads 5`: its default on a terminal, but the bench's "
                "output is a pipe, where entries run one at a time unless asked for (README, \"Output\").")

PLAYLIST_NOTE = (
    "On the gap to `aria2c -j5 -x16 -i list`: aria2c opens up to 16 connections for each of its 5 files at "
    "once (up to 80 to one host), so against a server that limits each connection it gets up to 80 x the "
    "per-connection rate.  The engine shares one window of `--async-host-connections` (default 16) between "
    "every download of the process, so this playlist gets at most 16 x the per-connection rate whatever "
    "`--concurrent-downloads` says, once its downloads ask for that many (the default's adaptive count per "
    "file decides that first: the goals section gives the measured split of the gap).  Where they reach it, "
    "that is the cost of the host window (the `ideal` column: bytes / (peak connections x rate)); the "
    "`--async-host-connections 80` rows show the same engine without it.  What "
    "it protects: the sites yt-dlp talks to count connections per client; 80 parallel connections to one "
    "host is what gets a client answered with 429/403 or banned, and on an ordinary link (not one throttled "
    "per connection) it only splits the same bandwidth more ways while costing the server 80 sockets.  The "
    "window also backs off a host that answers 429/403/503.")


def _many_small(ctx: Ctx, n: int) -> Prepared:
    size = 256 * KiB if ctx.quick else MiB
    entries = []
    expected = []
    for i in range(n):
        path, digest = ctx.servers.nginx_put(f"many/{i:03d}.mp4", size, seed=300 + i)
        entries.append(_video_info(f"m{i:03d}", ctx.servers.nginx.http_url(path), "http"))
        expected.append((f"m{i:03d}.mp4", digest))
    return Prepared(total_bytes=n * size, expected=expected, info=_playlist_info(entries), entries=entries,
                    out_template="%(id)s.%(ext)s", ytdlp_args=["--no-clean-info-json"],
                    notes=[f"A {n}-entry playlist of {size // KiB} KiB files from nginx, unthrottled: peak RSS "
                           "must not grow with the playlist's length (issue 10); compare with the other "
                           "`many-` table.  yt-dlp itself keeps every entry's info dict, so the native row's "
                           "growth is the floor.", ENTRIES_NOTE])


def prep_many_10(ctx: Ctx) -> Prepared:
    return _many_small(ctx, 10)


def prep_many_40(ctx: Ctx) -> Prepared:
    return _many_small(ctx, 40)


# ---- scale-out (issue 12): Celery workers and Redis, started here -----------------------------

SCALE_ENTRIES = 20
SCALE_WORKERS = {"scale-1": 1, "scale-2": 2, "scale-4": 4}   # contender -> workers
SCALE_THREADS = 5                                            # downloads at once per worker (-c)
SCALE_READY_TIMEOUT = 60.0


class ScaleOut:
    """The workload's redis-server (one for all its runs) and the workers of the current run."""

    redis: Optional[subprocess.Popen] = None
    url = ""
    page_url = ""
    workers: List[subprocess.Popen] = []

    @classmethod
    def start_redis(cls, workdir: Path) -> None:
        import atexit
        import socket
        if cls.redis is not None:
            return
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server not installed (apt-get install redis-server)")
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        folder = workdir / "redis"
        folder.mkdir(parents=True, exist_ok=True)
        cls.redis = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no", "--dir", str(folder)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        atexit.register(cls.stop_redis)
        cls.url = f"redis://127.0.0.1:{port}/0"
        deadline = time.monotonic() + 10
        while not cls._redis_call("PING").startswith("+PONG"):
            if time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)

    @classmethod
    def _redis_call(cls, command: str) -> str:
        import socket
        port = int(cls.url.rsplit(":", 1)[1].split("/")[0])
        try:
            with socket.create_connection(("127.0.0.1", port), 1) as sock:
                sock.sendall(command.encode() + b"\r\n")
                return sock.recv(64).decode(errors="replace")
        except OSError:
            return ""

    @classmethod
    def stop_redis(cls) -> None:
        if cls.redis is not None and cls.redis.poll() is None:
            cls.redis.terminate()
            cls.redis.wait(10)
        cls.redis = None

    @classmethod
    def start_workers(cls, count: int, job: "Job") -> Callable[[], None]:
        """FLUSHALL, then ``count`` workers writing into the run dir, all ready; returns their teardown."""
        cls._redis_call("FLUSHALL")
        celery = str(Path(PY).parent / "celery")
        env = {**os.environ, "YTDLP_ASYNC_BROKER": cls.url, "YTDLP_ASYNC_WORKDIR": str(job.run_dir)}
        logs = []
        for i in range(count):
            log = job.run_dir.parent / f"{job.run_dir.name}-worker{i}.log"
            logs.append(log)
            cls.workers.append(subprocess.Popen(
                [celery, "-A", "yt_dlp_async.celery", "worker", "--pool", "threads", "-c", str(SCALE_THREADS),
                 "-n", f"w{i}@%h", "--loglevel", "INFO", "--without-gossip", "--without-mingle",
                 "--without-heartbeat"], cwd=job.run_dir.parent, env=env, stdout=open(log, "wb"),
                stderr=subprocess.STDOUT, start_new_session=True))
        deadline = time.monotonic() + SCALE_READY_TIMEOUT
        for log, proc in zip(logs, cls.workers):
            while " ready." not in log.read_text(errors="replace"):
                if proc.poll() is not None or time.monotonic() > deadline:
                    cls.stop_workers()
                    raise RuntimeError(f"celery worker not ready: {tail(log)}")
                time.sleep(0.1)
        return cls.stop_workers

    @classmethod
    def stop_workers(cls) -> None:
        for proc in cls.workers:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in cls.workers:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        cls.workers = []


def prep_scale_out(ctx: Ctx) -> Prepared:
    import urllib.parse
    if not (Path(PY).parent / "celery").exists():
        raise RuntimeError(f"celery not installed next to {PY} (pip install '.[celery]')")
    ScaleOut.start_redis(ctx.servers.workdir)
    fault = ctx.servers.fault
    n = 4 if ctx.quick else SCALE_ENTRIES
    size = 2 * MiB if ctx.quick else 16 * MiB
    videos = [f"/data/{size}.mp4?seed={200 + i}&rate={RATE}" for i in range(1, n + 1)]
    ScaleOut.page_url = fault.url("/page?" + urllib.parse.urlencode({"title": "PL", "videos": ",".join(videos)}))
    width = len(str(n))
    expected = [(f"{i:0{width}d}.mp4", sha256_of(size, 200 + i)) for i in range(1, n + 1)]
    return Prepared(total_bytes=n * size, expected=expected, info={}, url=ScaleOut.page_url,
                    out_template="%(playlist_index)s.%(ext)s", rate=RATE,
                    notes=[f"A {n}-entry playlist page of tests/faultserver.py (yt-dlp's generic extractor), "
                           f"{size // MiB} MiB per video at {RATE / 1e6:g} MB/s per connection.  Queue rows: "
                           f"`yt-dlp --async-queue` submits the entries to N Celery workers "
                           f"(`celery -A yt_dlp_async.celery worker --pool threads -c {SCALE_THREADS}`, "
                           "started and ready before the clock starts, all on this machine, writing into one "
                           "folder) and follows them: wall time is from submit to the last entry done.  "
                           "The per-host window (--async-host-connections, 16) holds for all workers together "
                           "(Redis leases), so the `conns` column (the server's peak) stays at or below 16 and "
                           "more workers on one machine add no bandwidth: the rows show the queue's overhead."])


def scale_out_contenders() -> List["Contender"]:
    def queued(workers: int) -> "Contender":
        def build(job: "Job") -> List[str]:
            return ytdlp_base(job) + ["--async-queue", ScaleOut.url, ScaleOut.page_url]
        return Contender(f"scale-{workers}", f"queue, {workers} worker{'s' if workers > 1 else ''}",
                         f"yt-dlp --async-queue REDIS PAGE ({workers} x celery worker -c {SCALE_THREADS})", build,
                         ["redis-server"], needs_plugin=True,
                         setup=lambda job: ScaleOut.start_workers(workers, job))

    def local(job: "Job") -> List[str]:
        return ytdlp_base(job) + ["--concurrent-downloads", str(SCALE_THREADS), ScaleOut.page_url]

    return [queued(n) for n in SCALE_WORKERS.values()] + [
        Contender("local-c5", "no queue: yt-dlp --concurrent-downloads 5",
                  "yt-dlp --concurrent-downloads 5 PAGE", local, [], needs_plugin=True)]


def scale_out_verdict(rows: List[Dict[str, Any]]) -> str:
    r = {x["key"]: x for x in rows}
    local = r.get("local-c5")
    parts = []
    for key in SCALE_WORKERS:
        row = r.get(key)
        if row and row.get("wall_med") is not None:
            txt = f"{row['label']}: {row['wall_med']:.2f} s, peak {row['conns']:.0f} conns"
            if local and local.get("wall_med"):
                txt += f" ({row['wall_med'] / local['wall_med']:.2f}x of no queue)"
            parts.append(txt)
    if local and local.get("wall_med"):
        parts.append(f"no queue: {local['wall_med']:.2f} s, peak {local['conns']:.0f} conns")
    return "; ".join(parts)


@dataclasses.dataclass
class Workload:
    name: str
    title: str
    prepare: Callable[[Ctx], Prepared]
    contenders: List[str]
    timeout: Callable[[bool], float]  # quick -> seconds per run
    default: bool = True
    goal: str = ""
    issue: int = 0
    probe: bool = False  # one untimed `yt-dlp --async-downloads -v` run: which downloader yt-dlp invoked


FILE_CONTENDERS = ["ytdlp-native", "ytdlp-async", "ytdlp-async-1", "ytdlp-async-16", "ytdlp-aria2c", "aria2c", "curl",
                   "api", "api-8"]
# Issue 10: only the contenders that inform a goal run on the slow workloads (a
# single connection at 2 MB/s is 33.5 s a run and informs none of them).
THROTTLED_CONTENDERS = ["ytdlp-async", "ytdlp-async-16", "ytdlp-aria2c", "aria2c"]
HLS_CONTENDERS = ["ytdlp-native", "ytdlp-native-n16", "ytdlp-async"]

# Extension point: add workloads here (name, title, prepare function, contenders).
WORKLOADS: List[Workload] = [
    Workload("startup", "Start-up: 1 KiB from nginx", prep_startup,
             ["ytdlp-native", "ytdlp-async", "ytdlp-aria2c", "aria2c", "curl", "api"], lambda q: 60, probe=True),
    Workload("file-1g", "One 1 GiB file from nginx on loopback, no throttle", prep_file_1g, FILE_CONTENDERS,
             lambda q: 60 if q else 180, issue=10, probe=True,
             goal="the default within 1.05x of `--async-connections 1` in wall time; CPU s/GiB at or below "
                  "yt-dlp native's"),
    Workload("file-64m", "One 64 MiB file from nginx on loopback, no throttle", prep_file_64m,
             ["ytdlp-native", "ytdlp-async", "ytdlp-async-1"], lambda q: 60, issue=10,
             goal="peak RSS of the default within 5 MiB of the 1 GiB file's"),
    Workload("throttled", "One 64 MiB file, 2 MB/s per connection", prep_throttled, THROTTLED_CONTENDERS,
             lambda q: 60 if q else 150, issue=10, probe=True,
             goal="the default no slower than yt-dlp + aria2c (-x16 -s16 -k1M) and >= 0.85 of the ideal for the "
                  "connections it chose (bytes / (connections x 2 MB/s))"),
    Workload("throttled-latency", "One 64 MiB file, 2 MB/s per connection, 100 ms per request",
             prep_throttled_latency, THROTTLED_CONTENDERS, lambda q: 60 if q else 150, issue=10, probe=True,
             goal="as `throttled`, with 100 ms before every response"),
    Workload("hls", "HLS: 400 fragments of 256 KiB from nginx", prep_hls, HLS_CONTENDERS,
             lambda q: 60 if q else 180, issue=10, probe=True,
             goal="CPU s/GiB within 2x of the single-file path (`file-1g`, the default); >= 6x faster than "
                  "native -N 16"),
    Workload("hls-latency", "HLS: 200 fragments of 100 KiB, 50 ms per request", prep_hls_latency,
             ["ytdlp-native-n16", "ytdlp-async"], lambda q: 60 if q else 120, issue=10, probe=True,
             goal="the default within 1.3x of the ideal (fragments x latency / fragment window)"),
    Workload("hls-aes", "HLS AES-128: 400 fragments of 256 KiB from nginx", prep_hls_aes, HLS_CONTENDERS,
             lambda q: 60 if q else 180, issue=10, probe=True,
             goal="the default no more than 10% slower than the unencrypted `hls` row"),
    Workload("playlist", "Playlist: 10 videos of 16 MiB, 2 MB/s per connection", prep_playlist,
             ["ytdlp-async", "ytdlp-async-host80", "ytdlp-async-16", "ytdlp-async-16-host80", "ytdlp-aria2c",
              "aria2c-list", "xargs-ytdlp"],
             lambda q: 90 if q else 300, issue=10, probe=True,
             goal="a row for `aria2c -j5 -x16 -i list`; the note explains the gap to it"),
    Workload("many-10", "Playlist: 10 entries of 1 MiB from nginx (peak RSS)", prep_many_10,
             ["ytdlp-native", "ytdlp-async"], lambda q: 60 if q else 120, issue=10),
    Workload("many-40", "Playlist: 40 entries of 1 MiB from nginx (peak RSS)", prep_many_40,
             ["ytdlp-native", "ytdlp-async"], lambda q: 60 if q else 180, issue=10,
             goal="peak RSS of the default within 5 MiB of the 10-entry playlist's (`many-10`)"),
    Workload("pair", "Video + audio (bv+ba), 2 MB/s per connection, merged by ffmpeg", prep_pair,
             ["ytdlp-native", "ytdlp-async", "ytdlp-aria2c"], lambda q: 60 if q else 120, issue=5,
             goal="yt-dlp --async-downloads close to the time of the larger format alone"),
    Workload("scale-out", "Scale-out: 20 videos of 16 MiB, 2 MB/s per connection, Celery workers on one machine",
             prep_scale_out, ["scale-1", "scale-2", "scale-4", "local-c5"], lambda q: 120 if q else 400,
             default=False, issue=12,
             goal="the cluster-wide host window holds (peak <= 16 connections with any number of workers); "
                  "the queue's overhead against one yt-dlp"),
]
WORKLOAD_BY_NAME = {w.name: w for w in WORKLOADS}


# ----------------------------------------------------------------------------
# Contenders
# ----------------------------------------------------------------------------


@dataclasses.dataclass
class Job:
    run_dir: Path
    prepared: Prepared
    info_json: Path
    entry_list: Optional[Path]
    url_list: Optional[Path] = None  # aria2c -i: "URL\n  out=NAME" per entry


@dataclasses.dataclass
class Contender:
    key: str
    label: str
    command: str            # shown in results.md
    build: Callable[[Job], List[str]]
    needs: List[str]        # executables
    needs_plugin: bool = False
    setup: Optional[Callable[[Job], Callable[[], None]]] = None  # before the clock; returns the teardown


class Tools:
    def __init__(self) -> None:
        self.aria2c = shutil.which("aria2c")
        self.curl = shutil.which("curl")
        self.xargs = shutil.which("xargs")
        self.ytdlp_ok, self.ytdlp_version = self._probe([PY, "-m", "yt_dlp", "--version"])
        help_ok, help_text = self._probe([PY, "-m", "yt_dlp", "--help"])
        self.plugin = help_ok and "--async-downloads" in help_text
        try:
            import inspect
            import yt_dlp_async
            self.api = True
            self.api_error = ""
            self.api_connections = "connections" in inspect.signature(yt_dlp_async.AsyncDownloadEngine.submit).parameters
        except Exception as exc:  # reported as skipped
            self.api = False
            self.api_connections = False
            self.api_error = f"{type(exc).__name__}: {exc}"

    @staticmethod
    def _probe(argv: List[str]) -> Tuple[bool, str]:
        try:
            out = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return False, str(exc)
        return out.returncode == 0, out.stdout.strip()


def ytdlp_base(job: Job) -> List[str]:
    p = job.prepared
    argv = [PY, "-m", "yt_dlp", "--ignore-config", "--no-cache-dir", "--no-mtime", "-o", p.out_template]
    if p.ca_file:
        argv.append("--no-check-certificates")
    return argv + p.ytdlp_args


def make_contenders(tools: Tools) -> Dict[str, Contender]:
    native_flag = ["--no-async-downloads"] if tools.plugin else []
    ytdlp = "yt-dlp --load-info-json INFO"
    aria_args = ["-x16", "-s16", "-k1M"]

    def native(job: Job) -> List[str]:
        return ytdlp_base(job) + native_flag + ["--load-info-json", str(job.info_json)]

    def native_n16(job: Job) -> List[str]:
        return ytdlp_base(job) + native_flag + ["-N", "16", "--load-info-json", str(job.info_json)]

    def entries_at_once(job: Job) -> List[str]:
        # the bench's output is a pipe, where entries run one at a time unless asked for (README,
        # "Output"): a playlist row asks for the terminal's default, 5 at once
        return ["--concurrent-downloads", "5"] if job.prepared.entries else []

    def asyncd(job: Job) -> List[str]:
        return ytdlp_base(job) + ["--async-downloads", *entries_at_once(job), "--load-info-json", str(job.info_json)]

    def asyncd_with(*extra: str) -> Callable[[Job], List[str]]:
        def build(job: Job) -> List[str]:
            return ytdlp_base(job) + ["--async-downloads", *entries_at_once(job), *extra,
                                      "--load-info-json", str(job.info_json)]
        return build

    def ytdlp_aria(job: Job) -> List[str]:
        return ytdlp_base(job) + ["--downloader", "aria2c", "--downloader-args", "aria2c:" + " ".join(aria_args),
                                  "--load-info-json", str(job.info_json)]

    def aria(job: Job) -> List[str]:
        p = job.prepared
        argv = [tools.aria2c or "aria2c", "--no-conf", *aria_args, "--console-log-level=warn",
                "--summary-interval=0", "--download-result=hide", "-d", str(job.run_dir), "-o", p.out_name]
        if p.ca_file:
            argv.append(f"--ca-certificate={p.ca_file}")
        return argv + [p.url or ""]

    def curl(job: Job) -> List[str]:
        p = job.prepared
        argv = [tools.curl or "curl", "-sS", "-f", "-o", p.out_name]
        if p.ca_file:
            argv += ["--cacert", p.ca_file]
        return argv + [p.url or ""]

    def api(job: Job) -> List[str]:
        p = job.prepared
        return [PY, "-c", API_SCRIPT, p.url or "", str(job.run_dir / p.out_name), p.ca_file or "", "0"]

    def api8(job: Job) -> List[str]:
        p = job.prepared
        return [PY, "-c", API_SCRIPT, p.url or "", str(job.run_dir / p.out_name), p.ca_file or "", "8"]

    def aria_list(job: Job) -> List[str]:
        assert job.url_list is not None
        return [tools.aria2c or "aria2c", "--no-conf", "-j5", *aria_args, "--console-log-level=warn",
                "--summary-interval=0", "--download-result=hide", "-d", str(job.run_dir), "-i", str(job.url_list)]

    def xargs(job: Job) -> List[str]:
        assert job.entry_list is not None
        return [tools.xargs or "xargs", "-P", "5", "-n", "1", "-a", str(job.entry_list)] + \
            ytdlp_base(job) + native_flag + ["--load-info-json"]

    nf = " --no-async-downloads" if tools.plugin else ""
    return {c.key: c for c in [
        Contender("ytdlp-native", "yt-dlp (native)", ytdlp + nf, native, []),
        Contender("ytdlp-native-n16", "yt-dlp -N 16 (native)", ytdlp + nf + " -N 16", native_n16, []),
        Contender("ytdlp-async", "yt-dlp (default: --async-downloads)", ytdlp + " --async-downloads", asyncd, [],
                  needs_plugin=True),
        Contender("ytdlp-async-1", "yt-dlp --async-connections 1", ytdlp + " --async-downloads --async-connections 1",
                  asyncd_with("--async-connections", "1"), [], needs_plugin=True),
        Contender("ytdlp-async-16", "yt-dlp --async-connections 16",
                  ytdlp + " --async-downloads --async-connections 16", asyncd_with("--async-connections", "16"), [],
                  needs_plugin=True),
        Contender("ytdlp-async-host80", "yt-dlp --async-host-connections 80",
                  ytdlp + " --async-downloads --async-host-connections 80",
                  asyncd_with("--async-host-connections", "80"), [], needs_plugin=True),
        Contender("ytdlp-async-16-host80", "yt-dlp --async-connections 16 --async-host-connections 80",
                  ytdlp + " --async-downloads --async-connections 16 --async-host-connections 80",
                  asyncd_with("--async-connections", "16", "--async-host-connections", "80"), [],
                  needs_plugin=True),
        Contender("ytdlp-aria2c", "yt-dlp + aria2c", ytdlp + ' --downloader aria2c --downloader-args "aria2c:'
                  + " ".join(aria_args) + '"', ytdlp_aria, ["aria2c"]),
        Contender("aria2c", "aria2c -x16 -s16 -k1M", "aria2c " + " ".join(aria_args) + " -d DIR -o NAME URL", aria,
                  ["aria2c"]),
        Contender("aria2c-list", "aria2c -j5 -x16 -s16 -k1M -i list",
                  "aria2c -j5 " + " ".join(aria_args) + " -d DIR -i LIST (URL + out=NAME per entry)", aria_list,
                  ["aria2c"]),
        Contender("curl", "curl -o", "curl -sS -f -o NAME URL", curl, ["curl"]),
        Contender("api", "Python API (engine)", "python -c 'AsyncDownloadEngine().submit(url, path).result()'", api,
                  []),
        Contender("api-8", "Python API, connections=8", "python -c 'AsyncDownloadEngine().submit(url, path, "
                  "connections=8).result()'", api8, []),
        Contender("xargs-ytdlp", "xargs -P 5 yt-dlp (native)", "xargs -P 5 -n 1 yt-dlp" + nf + " --load-info-json",
                  xargs, ["xargs"]),
        *scale_out_contenders(),
    ]}


def skip_reason(c: Contender, tools: Tools) -> Optional[str]:
    for exe in c.needs:
        if not shutil.which(exe):
            return f"{exe} not installed"
    if c.key.startswith("ytdlp") or c.key == "xargs-ytdlp":
        if not tools.ytdlp_ok:
            return "yt-dlp not importable by this Python"
    if c.needs_plugin and not tools.plugin:
        return "yt-dlp has no --async-downloads (plugin not installed)"
    if c.key.startswith("api") and not tools.api:
        return f"yt_dlp_async does not import: {tools.api_error}"
    if c.key == "api-8" and not tools.api_connections:
        return "AsyncDownloadEngine.submit() has no connections= parameter (engine without segmented downloads)"
    return None


# ----------------------------------------------------------------------------
# Measuring one run
# ----------------------------------------------------------------------------


@dataclasses.dataclass
class Measure:
    wall: float
    user: float
    sys: float
    maxrss_kib: int
    returncode: Optional[int]
    timed_out: bool


# Children are started by a small helper process (python -I -S, ~10 MiB), not by this
# process: on Linux a child's ru_maxrss keeps the high-water mark of the memory
# it was forked from, so a fork of this harness (servers, caches) would report
# the harness's RSS as every contender's peak.
SPAWNER = r"""
import json, os, signal, sys, time
child = [0]
def kill(*_):
    if child[0]:
        try:
            os.killpg(child[0], signal.SIGKILL)
        except OSError:
            pass
timed_out = [False]
def on_alarm(*_):
    timed_out[0] = True
    kill()
signal.signal(signal.SIGALRM, on_alarm)
signal.signal(signal.SIGINT, lambda *_: (kill(), os._exit(130)))
signal.signal(signal.SIGTERM, lambda *_: (kill(), os._exit(143)))
hwm = 0
with open("/proc/self/status") as f:  # this process's own high-water mark (ru_maxrss is the parent's)
    for line in f:
        if line.startswith("VmHWM:"):
            hwm = int(line.split()[1])
sys.stdout.write(json.dumps({"ready": True, "self_maxrss_kib": hwm}) + "\n")
sys.stdout.flush()
for line in sys.stdin:
    job = json.loads(line)
    os.chdir(job["cwd"])
    actions = [(os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
               (os.POSIX_SPAWN_OPEN, 1, job["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644),
               (os.POSIX_SPAWN_DUP2, 1, 2)]
    timed_out[0] = False
    t0 = time.perf_counter()
    try:
        pid = os.posix_spawnp(job["argv"][0], job["argv"], os.environ, file_actions=actions, setsid=True)
    except OSError as exc:
        sys.stdout.write(json.dumps({"error": str(exc)}) + "\n")
        sys.stdout.flush()
        continue
    child[0] = pid
    signal.setitimer(signal.ITIMER_REAL, job["timeout"])
    _, status, ru = os.wait4(pid, 0)
    wall = time.perf_counter() - t0
    signal.setitimer(signal.ITIMER_REAL, 0)
    kill()  # whatever the child left behind in its session
    child[0] = 0
    sys.stdout.write(json.dumps({"wall": wall, "user": ru.ru_utime, "sys": ru.ru_stime, "maxrss": ru.ru_maxrss,
                                 "returncode": os.waitstatus_to_exitcode(status), "timed_out": timed_out[0]}) + "\n")
    sys.stdout.flush()
"""


class Spawner:
    def __init__(self) -> None:
        self.proc = subprocess.Popen([PY, "-I", "-S", "-c", SPAWNER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, bufsize=1)
        assert self.proc.stdout is not None
        hello = json.loads(self.proc.stdout.readline())
        self.floor_mib = hello["self_maxrss_kib"] / 1024

    def run(self, argv: List[str], cwd: Path, timeout: float, log_path: Path) -> Dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps({"argv": argv, "cwd": str(cwd), "timeout": timeout,
                                          "log": str(log_path)}) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the spawner process died")
        return json.loads(line)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()  # kills its current child group too
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()


_spawner: Optional[Spawner] = None


def measure(argv: List[str], cwd: Path, timeout: float, log_path: Path) -> Measure:
    """Run argv in its own session (through the spawner); wall time and rusage from os.wait4()."""
    global _spawner
    if _spawner is None:
        _spawner = Spawner()
    log_path.write_bytes(("$ " + shlex.join(argv) + "\n").encode())
    r = _spawner.run(argv, cwd, timeout, log_path)
    if "error" in r:
        with open(log_path, "a") as f:
            f.write(r["error"] + "\n")
        return Measure(0.0, 0.0, 0.0, 0, 127, False)
    return Measure(r["wall"], r["user"], r["sys"], r["maxrss"], r["returncode"], r["timed_out"])


_ARROWS_RE = re.compile(r"(\d+(?:\s*(?:->|→)\s*\d+)*)\s+connections?\b", re.I)
_PEAK_RE = re.compile(r"\bpeak\D{0,12}?(\d+)", re.I)


def connections_from_verbose(lines: Sequence[str]) -> Optional[int]:
    """The connections the engine says it used, from its `-v` line(s); None when it says nothing.

    Reads "peak N" on a line about connections, else the largest number of a
    chain such as "1 -> 4 -> 16 connections" (or "8 connections").  Several
    downloads: the largest.
    """
    peaks: List[int] = []
    chains: List[int] = []
    for ln in lines:
        low = ln.lower()
        if "connection" not in low or "async" not in low:
            continue
        m = _PEAK_RE.search(ln)
        if m:
            peaks.append(int(m.group(1)))
            continue
        for chain in _ARROWS_RE.findall(ln):
            chains.append(max(int(x) for x in re.findall(r"\d+", chain)))
    found = peaks or chains  # a line that names its peak says more than one that only counts
    return max(found) if found else None


def connection_lines(lines: Sequence[str]) -> List[str]:
    """The engine's own -v lines about connections ("[async] NAME: 1 -> 4 connections, peak 4; why")."""
    out = []
    for ln in lines:
        low = ln.lower()
        if "connection" in low and "async" in low and "[debug]" in low and ln.strip() not in out:
            out.append(ln.strip())
    return out


def _probe_keep(line: str) -> bool:
    low = line.lower()
    return ("invoking" in low and "downloader" in low) or "falling back" in low or "fallback" in low or \
        ("[async]" in low and "async downloads:" not in low) or ("async" in low and "connection" in low
                                                                  and "[debug]" in low)


def probe_async(wl: Workload, c: Contender, p: Prepared, servers: Servers, workdir: Path,
                quick: bool) -> Dict[str, Any]:
    """Run `yt-dlp --async-downloads -v` once, untimed: which downloader ran, the connections the engine
    says it used (its -v line) and the server's peak of concurrent requests in that run."""
    run_dir = workdir / "runs" / f"{wl.name}-probe"
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    info_json = run_dir / "_info.json"
    info_json.write_text(json.dumps(p.info))
    argv = c.build(Job(run_dir, p, info_json, None)) + ["-v"]
    log_path = workdir / "runs" / f"{wl.name}-probe.log"
    try:
        servers.mark()
        measure(argv, run_dir, wl.timeout(quick), log_path)
        stats = servers.stats()
        text = log_path.read_text(errors="replace").replace("\r", "\n")
        # stdout (progress) and stderr (debug) share the log: a [debug] line can follow a progress line's text
        lines = [part for ln in text.splitlines() for part in re.split(r"(?=\[debug\])", ln) if part.strip()]
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
    keep: List[str] = []
    for ln in lines:
        ln = ln.strip()
        if _probe_keep(ln) and ln not in keep:
            keep.append(ln)
    log_path.unlink(missing_ok=True)
    return {"text": "; ".join(k[:240] for k in keep[:6]) or "no downloader line in the -v output",
            "conns": connections_from_verbose(lines), "conn_lines": connection_lines(lines)[:12],
            "server_peak": stats["peak_concurrent"], "server_connections": stats["connections"]}


def file_sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def verify(run_dir: Path, p: Prepared) -> Optional[str]:
    for names, digest in p.expected:
        # "a|b": either name (yt-dlp names the kept parts of a merged download
        # NAME.f<id>.<own ext> when it fetches formats one after the other, and
        # NAME.f<id>.<merged ext> when one downloader takes them all)
        name = next((n for n in names.split("|") if (run_dir / n).exists()), names.split("|")[0])
        path = run_dir / name
        if not path.exists():
            present = sorted(x.name for x in run_dir.iterdir() if not x.name.startswith("_"))
            return f"{name} missing (run dir has: {', '.join(present[:8]) or 'nothing'})"
        got = file_sha256(path)
        if got != digest:
            return f"{name}: SHA-256 mismatch ({path.stat().st_size} bytes, sha256 {got[:12]}.. != {digest[:12]}..)"
    if p.check is not None:
        return p.check(run_dir)
    return None


def tail(path: Path, n: int = 6) -> str:
    try:
        lines = path.read_text(errors="replace").replace("\r", "\n").splitlines()
    except FileNotFoundError:
        return ""
    lines = [ln for ln in lines if ln.strip() and not ln.startswith("$ ")]
    return " | ".join(lines[-n:])[-600:]


def one_run(wl: Workload, c: Contender, p: Prepared, servers: Servers, workdir: Path, run_index: int,
            quick: bool, keep_failed: Path) -> Dict[str, Any]:
    run_dir = workdir / "runs" / f"{wl.name}-{c.key}-{run_index}"
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    info_json = run_dir / "_info.json"
    info_json.write_text(json.dumps(p.info))
    entry_list = url_list = None
    if p.entries:
        entry_list = run_dir / "_entries.txt"
        names = []
        for e in p.entries:
            f = run_dir / f"_entry-{e['id']}.json"
            f.write_text(json.dumps(e))
            names.append(str(f))
        entry_list.write_text("\n".join(names) + "\n")
        url_list = run_dir / "_urls.txt"
        url_list.write_text("".join(f"{e['url']}\n  out={e['id']}.{e['ext']}\n" for e in p.entries))
    job = Job(run_dir, p, info_json, entry_list, url_list)
    argv = c.build(job)
    log_path = workdir / "runs" / f"{wl.name}-{c.key}-{run_index}.log"
    teardown = c.setup(job) if c.setup else None
    try:
        servers.mark()
        m = measure(argv, run_dir, wl.timeout(quick), log_path)
        stats = servers.stats()
    finally:
        if teardown:
            teardown()
    if m.timed_out:
        status, error = "TIMEOUT", f"killed after {wl.timeout(quick):.0f} s"
    elif m.returncode != 0:
        status, error = "FAILED", f"exit status {m.returncode}"
    else:
        error = verify(run_dir, p)
        status = "OK" if error is None else "FAILED"
    if status != "OK":
        if error and "exit status" in error or status == "TIMEOUT":
            error = f"{error}: {tail(log_path)}"
        # Keep the log of a failed run for the report.
        keep_failed.mkdir(parents=True, exist_ok=True)
        shutil.copy(log_path, keep_failed / log_path.name)
    shutil.rmtree(run_dir, ignore_errors=True)
    log_path.unlink(missing_ok=True)
    return {
        "contender": c.key, "run": run_index, "status": status, "error": error,
        "wall": m.wall, "cpu": m.user + m.sys, "user": m.user, "sys": m.sys,
        "maxrss_mib": m.maxrss_kib / 1024, "returncode": m.returncode,
        "command": shlex.join(argv), **stats,
    }


# ----------------------------------------------------------------------------
# Machine and versions
# ----------------------------------------------------------------------------


def _first_line(argv: List[str], stderr: bool = False) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return "not installed"
    text = (out.stderr if stderr else out.stdout) or out.stdout or out.stderr
    return text.strip().splitlines()[0] if text.strip() else "?"


def _loadavg() -> List[float]:
    """1/5/15-minute load averages: how busy the (shared) machine was around a workload."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def machine_info(workdir: Path) -> Dict[str, str]:
    model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "?"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / (1 << 20):.1f} GiB"
    except OSError:
        pass
    fs = _first_line(["sh", "-c", f"df -T {shlex.quote(str(workdir))} | tail -1 | awk '{{print $2}}'"])
    return {"nproc": str(os.cpu_count()), "cpu": model, "kernel": platform.release(), "memory": mem,
            "workdir_fs": fs, "python": platform.python_version()}


def versions(tools: Tools) -> Dict[str, str]:
    v = {"yt-dlp": tools.ytdlp_version if tools.ytdlp_ok else "not installed",
         "yt-dlp-async plugin": "installed (--async-downloads)" if tools.plugin else "not installed",
         "aria2c": _first_line([tools.aria2c, "--version"]) if tools.aria2c else "not installed",
         "curl": _first_line([tools.curl, "--version"]) if tools.curl else "not installed",
         "nginx": _first_line(["nginx", "-v"], stderr=True) if srvmod.find_nginx() else "not installed",
         "ffmpeg": _first_line(["ffmpeg", "-version"])}
    if tools.api:
        import yt_dlp_async
        try:
            v["engine libcurl"] = yt_dlp_async.curl_version()
        except Exception as exc:  # pragma: no cover
            v["engine libcurl"] = f"? ({exc})"
        try:
            from importlib.metadata import version
            v["yt-dlp-async"] = version("yt-dlp-async")
        except Exception:
            pass
        try:
            from yt_dlp_async import _engine
            so = Path(_engine.__file__ or "").name
            v["engine build"] = so + (" (limited API, abi3)" if ".abi3." in so else " (full C API)")
        except Exception as exc:  # pragma: no cover
            v["engine build"] = f"? ({exc})"
    commit = _first_line(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "csrc", "yt_dlp_async"],
                           capture_output=True, text=True).stdout.strip()
    v["source"] = f"git {commit}" + (" + uncommitted changes in csrc/ or yt_dlp_async/" if dirty else "")
    return v


# ----------------------------------------------------------------------------
# Summaries, results.md, results.png
# ----------------------------------------------------------------------------


# Variants start like their base contender: the start-up row subtracted from them.
STARTUP_OF = {"ytdlp-async-1": "ytdlp-async", "ytdlp-async-16": "ytdlp-async", "ytdlp-async-host80": "ytdlp-async",
              "ytdlp-async-16-host80": "ytdlp-async",
              "ytdlp-native-n16": "ytdlp-native", "aria2c-list": "aria2c", "api-8": "api"}


def summarize(wres: Dict[str, Any], startup: Optional[Dict[str, Any]]) -> List[Dict[str, Any]]:
    rows = []
    total = wres["total_bytes"]
    rate = wres.get("rate")
    by_c: Dict[str, List[Dict[str, Any]]] = {}
    for r in wres["runs"]:
        by_c.setdefault(r["contender"], []).append(r)
    start_med: Dict[str, float] = {}
    start_cpu: Dict[str, float] = {}
    spread: Dict[str, Tuple[float, float]] = {}  # max - min of the start-up runs: (wall, CPU)
    if startup:
        for s in summarize(startup, None):
            if s.get("wall_med") is not None:
                start_med[s["key"]] = s["wall_med"]
                start_cpu[s["key"]] = s["cpu_med"]
                spread[s["key"]] = (s["wall_max"] - s["wall_min"], s["cpu_max"] - s["cpu_min"])
    local: Dict[str, List[Dict[str, Any]]] = {}
    for r in wres.get("startup_runs") or []:
        if r["status"] == "OK":
            local.setdefault(r["contender"], []).append(r)
    for key, runs_ in local.items():  # measured in this workload's own rounds: preferred
        start_med[key] = statistics.median(r["wall"] for r in runs_)
        start_cpu[key] = statistics.median(r["cpu"] for r in runs_)
        spread[key] = (max(r["wall"] for r in runs_) - min(r["wall"] for r in runs_),
                       max(r["cpu"] for r in runs_) - min(r["cpu"] for r in runs_))
    for key in wres["contenders"]:
        label = wres["labels"].get(key, key)
        if key in wres.get("skipped", {}):
            rows.append({"key": key, "label": label, "skipped": wres["skipped"][key]})
            continue
        runs = by_c.get(key, [])
        ok = [r for r in runs if r["status"] == "OK"]
        row: Dict[str, Any] = {"key": key, "label": label, "runs": len(runs), "ok": len(ok),
                               "failures": [f"run {r['run'] + 1}: {r['status']}: {r['error']}" for r in runs
                                            if r["status"] != "OK"]}
        if ok:
            walls = [r["wall"] for r in ok]
            cpus = [r["cpu"] for r in ok]
            row.update(
                wall_med=statistics.median(walls), wall_min=min(walls), wall_max=max(walls),
                cpu_med=statistics.median(cpus), cpu_min=min(cpus), cpu_max=max(cpus),
                rss_med=statistics.median(r["maxrss_mib"] for r in ok), rss_max=max(r["maxrss_mib"] for r in ok),
                rss_min=min(r["maxrss_mib"] for r in ok),
                conns=statistics.median(r["peak_concurrent"] or r["connections"] for r in ok),
                server_peak=statistics.median(r.get("peak_concurrent") or 0 for r in ok),
                distinct_conns=statistics.median(r["connections"] for r in ok),
                requests=statistics.median(r["requests"] for r in ok),
            )
            spans = [r["server_span"] for r in ok if r.get("server_span")]
            if spans:
                row["span_med"] = statistics.median(spans)
                with_span = [r for r in ok if r.get("server_span")]
                row["ramp_med"] = statistics.median(r.get("ramp") or 0.0 for r in with_span)
                row["idle_med"] = statistics.median(r.get("idle") or 0.0 for r in with_span)
                row["mean_conc_med"] = statistics.median(r.get("mean_concurrent") or 0.0 for r in with_span)
            row["mbps"] = total / row["wall_med"] / 1e6
            row["cpu_per_gib"] = row["cpu_med"] / (total / GiB)
            skey = STARTUP_OF.get(key, key)
            if skey in start_med and startup is not wres:
                row["startup_wall"], row["startup_cpu"] = start_med[skey], start_cpu[skey]
                row["startup_spread"], row["startup_cpu_spread"] = spread.get(skey, (0.0, 0.0))
                row["net"] = row["wall_med"] - start_med[skey]
                row["net_cpu_per_gib"] = (row["cpu_med"] - start_cpu[skey]) / (total / GiB)
            # The connections a row is judged by: the engine's own -v line (one untimed probe run of the
            # default) when it says, else the server's peak of concurrent requests in the timed runs.
            row["conns_used"], row["conns_from"] = row["conns"], "server peak"
            if key == "ytdlp-async" and wres.get("probe_conns") and wres.get("single_file", True):
                row["conns_used"], row["conns_from"] = wres["probe_conns"], "-v line"
            if rate and row["conns_used"]:
                row["ideal"] = total / (row["conns_used"] * rate)
                row["of_ideal_whole"] = row["ideal"] / row["wall_med"]
                row["of_ideal"] = row["ideal"] / row["net"] if (row.get("net") or 0) > 0 else None
        rows.append(row)
    native = next((r for r in rows if r["key"] == "ytdlp-native" and r.get("wall_med")), None)
    for r in rows:
        if native and r.get("wall_med"):
            r["vs_native"] = r["wall_med"] / native["wall_med"]
            r["cpu_vs_native"] = r["cpu_med"] / native["cpu_med"] if native["cpu_med"] else None
    return rows


def _f(x: Optional[float], fmt: str = "{:.2f}") -> str:
    return "–" if x is None else fmt.format(x)


# ----------------------------------------------------------------------------
# Issue 10 goals: each verdict computed from the medians above
# ----------------------------------------------------------------------------

Rows = Dict[str, List[Dict[str, Any]]]


@dataclasses.dataclass
class GoalResult:
    """One goal of issue 10 judged on measured medians.

    ``whole`` judges the numbers as a user times them (process start to exit);
    ``phase`` the download phase (each row minus its tool's start-up, from the
    `startup` table): an ideal counts transfer time only, and a fixed start-up
    weighs differently on payloads of different sizes.  None = not evaluated.
    """

    gid: str
    goal: str
    workload: str
    measured: str = "not measured"
    whole: Optional[bool] = None
    phase: Optional[bool] = None
    reason: str = ""
    info_only: bool = False


def _row(all_rows: Rows, workload: str, key: str) -> Optional[Dict[str, Any]]:
    r = next((x for x in all_rows.get(workload, []) if x["key"] == key), None)
    return r if r and r.get("wall_med") is not None else None


def _startup(all_rows: Rows, key: str, row: Optional[Dict[str, Any]] = None) -> Optional[Dict[str, Any]]:
    """The start-up a row subtracts: measured in its own workload's rounds, else the `startup` table's."""
    if row and row.get("startup_wall") is not None:
        return {"wall_med": row["startup_wall"], "cpu_med": row["startup_cpu"]}
    return _row(all_rows, "startup", STARTUP_OF.get(key, key))


def _pos(*xs: Optional[float]) -> bool:
    """Every download-phase number there and positive (a start-up median above a short row's is noise)."""
    return all(x is not None and x > 0 for x in xs)


def _clear(*rows: Dict[str, Any], cpu: bool = False) -> Optional[str]:
    """None when each row's download phase stands out of its start-up's noise (more than twice the spread
    of the start-up runs it subtracts), else what was seen: a verdict on it would judge the noise."""
    for r in rows:
        net = (r["cpu_med"] - r.get("startup_cpu", 0.0)) if cpu else r.get("net")
        noise = r.get("startup_cpu_spread" if cpu else "startup_spread") or 0.0
        if net is None or net <= 2 * noise:
            what = "CPU" if cpu else "wall"
            return (f"download phase not judged: {r['label']}'s {net or 0:.2f} s ({what}) is within twice the "
                    f"spread of its start-up runs ({noise:.2f} s)")
    return None


def _verdict(ok: Optional[bool]) -> str:
    return "–" if ok is None else ("met" if ok else "NOT met")


def _g_file(all_rows: Rows, results: Dict[str, Any]) -> GoalResult:
    g = GoalResult("1", "1 GiB from nginx: the default within 1.05x of `--async-connections 1` in wall time, "
                        "CPU s/GiB at or below native yt-dlp's", "file-1g")
    a, one, n = (_row(all_rows, "file-1g", k) for k in ("ytdlp-async", "ytdlp-async-1", "ytdlp-native"))
    if not (a and one and n):
        return g
    ratio = a["wall_med"] / one["wall_med"]
    g.measured = (f"wall {a['wall_med']:.2f} s vs {one['wall_med']:.2f} s with 1 connection = {ratio:.2f}x; "
                  f"CPU {a['cpu_per_gib']:.2f} vs {n['cpu_per_gib']:.2f} s/GiB native")
    g.whole = ratio <= 1.05 and a["cpu_per_gib"] <= n["cpu_per_gib"]
    unclear = _clear(a, one) or _clear(a, n, cpu=True)
    if unclear:
        g.measured += f"; {unclear}"
    elif _pos(a.get("net"), one.get("net"), a.get("net_cpu_per_gib"), n.get("net_cpu_per_gib")):
        pr = a["net"] / one["net"]
        g.measured += (f"; download phase {a['net']:.2f} vs {one['net']:.2f} s = {pr:.2f}x, "
                       f"{a['net_cpu_per_gib']:.2f} vs {n['net_cpu_per_gib']:.2f} CPU s/GiB")
        g.phase = pr <= 1.05 and a["net_cpu_per_gib"] <= n["net_cpu_per_gib"]
    wres = results["workloads"].get("file-1g", {})
    why = []
    if ratio > 1.05:
        why.append(f"the default used {a['distinct_conns']:.0f} connection(s) and {a['requests']:.0f} request(s) "
                   f"at nginx ({_said(wres)}) against 1; "
                   f"CPU {a['cpu_med']:.2f} s vs {one['cpu_med']:.2f} s with one connection")
    if a["cpu_per_gib"] > n["cpu_per_gib"]:
        why.append(f"CPU {a['cpu_med']:.2f} s vs {n['cpu_med']:.2f} s native")
    g.reason = "; ".join(why)
    return g


def _said(wres: Dict[str, Any]) -> str:
    lines = wres.get("probe_conn_lines") or []
    return "its -v line: `" + lines[0] + "`" if lines else "no connection line in its -v output"


def _conns_source(a: Dict[str, Any]) -> str:
    if a["conns_from"] == "-v line":
        return f"from its -v line; the server's peak was {a['server_peak']:.0f}"
    return "the server's peak of concurrent requests; the -v line gave no count"


def _g_throttled(all_rows: Rows, results: Dict[str, Any], name: str, gid: str, what: str) -> GoalResult:
    g = GoalResult(gid, f"64 MiB at 2 MB/s per connection{what}: the default no slower than yt-dlp + aria2c "
                        "-x16 and >= 0.85 of the ideal for the connections it chose", name)
    a, ar = _row(all_rows, name, "ytdlp-async"), _row(all_rows, name, "ytdlp-aria2c")
    if not (a and ar and a.get("ideal")):
        return g
    g.measured = (f"{a['wall_med']:.2f} s vs {ar['wall_med']:.2f} s for yt-dlp + aria2c; "
                  f"{a['conns_used']:.0f} connection(s) ({_conns_source(a)}), "
                  f"ideal {a['ideal']:.2f} s: {a['of_ideal_whole']:.2f} of ideal (whole), "
                  f"{_f(a.get('of_ideal'))} (download phase)")
    g.whole = a["wall_med"] <= ar["wall_med"] and a["of_ideal_whole"] >= 0.85
    unclear = _clear(a, ar)
    if unclear:
        g.measured += f"; {unclear}"
    elif _pos(a.get("net"), ar.get("net"), a.get("of_ideal")):
        g.phase = a["net"] <= ar["net"] and a["of_ideal"] >= 0.85
        g.measured += f"; download phase {a['net']:.2f} s vs {ar['net']:.2f} s"
    why = []
    if a.get("span_med"):
        why.append(f"the server saw our transfer last {a['span_med']:.2f} s (first request to last byte; ideal "
                   f"{a['ideal']:.2f} s), {a['ramp_med']:.2f} s of it before the peak of "
                   f"{a['server_peak']:.0f} concurrent requests, {a['mean_conc_med']:.1f} in progress on average")
    if ar.get("span_med"):
        why.append(f"yt-dlp + aria2c: {ar['span_med']:.2f} s at the server, peak {ar['server_peak']:.0f} reached "
                   f"after {ar['ramp_med']:.2f} s")
    why.append(_said(results["workloads"].get(name, {})))
    c16 = _row(all_rows, name, "ytdlp-async-16")
    if c16 and c16.get("ideal"):
        why.append(f"the same engine fixed at 16 connections (`--async-connections 16`): {c16['wall_med']:.2f} s, "
                   f"{c16['of_ideal_whole']:.2f} of its ideal (whole), {_f(c16.get('of_ideal'))} (download phase), "
                   f"{c16['span_med'] if c16.get('span_med') else 0:.2f} s at the server")
    st = _startup(all_rows, "ytdlp-async", a)
    if st:
        why.append(f"yt-dlp start-up {st['wall_med']:.2f} s is in every yt-dlp row's wall time")
    g.reason = "; ".join(why)
    return g


def _g_hls_cpu(all_rows: Rows, results: Dict[str, Any]) -> GoalResult:
    g = GoalResult("3a", "HLS 400 x 256 KiB from nginx: CPU s/GiB within 2x of the single-file path "
                         "(`file-1g`, the default)", "hls")
    a, f = _row(all_rows, "hls", "ytdlp-async"), _row(all_rows, "file-1g", "ytdlp-async")
    if not (a and f):
        return g
    ratio = a["cpu_per_gib"] / f["cpu_per_gib"]
    g.measured = f"{a['cpu_per_gib']:.2f} vs {f['cpu_per_gib']:.2f} CPU s/GiB = {ratio:.2f}x"
    g.whole = ratio <= 2
    unclear = _clear(a, f, cpu=True)
    if unclear:
        g.measured += f"; {unclear}"
    elif _pos(a.get("net_cpu_per_gib"), f.get("net_cpu_per_gib")):
        pr = a["net_cpu_per_gib"] / f["net_cpu_per_gib"]
        g.measured += f"; download phase {a['net_cpu_per_gib']:.2f} vs {f['net_cpu_per_gib']:.2f} = {pr:.2f}x"
        g.phase = pr <= 2
    st = _startup(all_rows, "ytdlp-async", a)
    hls_gib = results["workloads"]["hls"]["total_bytes"] / GiB
    f_gib = results["workloads"]["file-1g"]["total_bytes"] / GiB
    if st:
        g.reason = (f"yt-dlp's start-up CPU ({st['cpu_med']:.2f} s) is {st['cpu_med'] / hls_gib:.2f} s/GiB of the "
                    f"{hls_gib * 1024:.0f} MiB HLS row but {st['cpu_med'] / f_gib:.2f} s/GiB of the "
                    f"{f_gib * 1024:.0f} MiB file; "
                    f"{a['requests']:.0f} requests vs {f['requests']:.0f}")
    return g


def _g_hls_speed(all_rows: Rows, results: Dict[str, Any]) -> GoalResult:
    g = GoalResult("3b", "HLS 400 x 256 KiB from nginx: >= 6x faster than native `-N 16`", "hls")
    a, n16 = _row(all_rows, "hls", "ytdlp-async"), _row(all_rows, "hls", "ytdlp-native-n16")
    if not (a and n16):
        return g
    sp = n16["wall_med"] / a["wall_med"]
    g.measured = f"{a['wall_med']:.2f} s vs {n16['wall_med']:.2f} s = {sp:.2f}x faster"
    g.whole = sp >= 6
    unclear = _clear(a, n16)
    if unclear:
        g.measured += f"; {unclear}"
    elif _pos(a.get("net"), n16.get("net")):
        ps = n16["net"] / a["net"]
        g.measured += f"; download phase {a['net']:.2f} vs {n16['net']:.2f} s = {ps:.2f}x"
        g.phase = ps >= 6
    st = _startup(all_rows, "ytdlp-async", a)
    if st:
        g.reason = (f"yt-dlp's start-up ({st['wall_med']:.2f} s) is {st['wall_med'] / a['wall_med'] * 100:.0f}% of "
                    f"our wall time and bounds the whole-process ratio at "
                    f"{n16['wall_med'] / st['wall_med']:.1f}x even for an instant download; CPU "
                    f"{a['cpu_med']:.2f} s vs {n16['cpu_med']:.2f} s")
    return g


def _g_hls_aes(all_rows: Rows, results: Dict[str, Any]) -> GoalResult:
    g = GoalResult("3c", "HLS AES-128: within 10% of plain HLS (the default)", "hls-aes")
    a, plain = _row(all_rows, "hls-aes", "ytdlp-async"), _row(all_rows, "hls", "ytdlp-async")
    if not (a and plain):
        return g
    slow = a["wall_med"] / plain["wall_med"] - 1
    g.measured = (f"{a['wall_med']:.2f} s vs {plain['wall_med']:.2f} s plain = {slow * 100:+.0f}%; CPU "
                  f"{a['cpu_med']:.2f} vs {plain['cpu_med']:.2f} s")
    g.whole = slow <= 0.10
    unclear = _clear(a, plain)
    if unclear:
        g.measured += f"; {unclear}"
    elif _pos(a.get("net"), plain.get("net")):
        ps = a["net"] / plain["net"] - 1
        g.measured += f"; download phase {ps * 100:+.0f}%"
        g.phase = ps <= 0.10
    g.reason = f"CPU {a['cpu_med'] - plain['cpu_med']:+.2f} s for decryption ({a['requests']:.0f} requests)"
    return g


def _g_hls_latency(all_rows: Rows, results: Dict[str, Any]) -> GoalResult:
    g = GoalResult("4", "HLS 200 x 100 KiB, 50 ms per request: within 1.3x of the ideal "
                        "(fragments x latency / window)", "hls-latency")
    a = _row(all_rows, "hls-latency", "ytdlp-async")
    wres = results["workloads"].get("hls-latency", {})
    window = wres.get("fragment_window")
    source = f"window {window} from the code"
    if not window and a and a.get("server_peak"):
        window, source = int(a["server_peak"]), f"window {a['server_peak']:.0f} = the server's peak (not in the code)"
    if not (a and window and wres.get("fragments") and wres.get("latency_s")):
        return g  # also a table measured before the harness recorded fragments and latency
    ideal = wres["fragments"] * wres["latency_s"] / window
    g.measured = (f"{a['wall_med']:.2f} s = {a['wall_med'] / ideal:.2f}x of ideal {ideal:.3f} s ({source}; "
                  f"server peak {a['server_peak']:.0f} concurrent)")
    g.whole = a["wall_med"] <= 1.3 * ideal
    unclear = _clear(a)
    if unclear:
        g.measured += f"; {unclear}"
    elif _pos(a.get("net")):
        g.measured += f"; download phase {a['net']:.2f} s = {a['net'] / ideal:.2f}x"
        g.phase = a["net"] <= 1.3 * ideal
    why = []
    if a.get("span_med"):
        why.append(f"the server saw the fragments take {a['span_med']:.2f} s = {a['span_med'] / ideal:.2f}x ideal "
                   f"(first request to last byte) with {a['mean_conc_med']:.1f} requests in progress on average "
                   f"(window {window}) and none for {a['idle_med']:.2f} s of it")
    st = _startup(all_rows, "ytdlp-async", a)
    if st:
        why.append(f"yt-dlp start-up {st['wall_med']:.2f} s alone is {st['wall_med'] / ideal:.2f}x the ideal")
    g.reason = "; ".join(why)
    return g


def _g_playlist(all_rows: Rows, results: Dict[str, Any]) -> GoalResult:
    g = GoalResult("5", "Playlist 10 x 16 MiB at 2 MB/s per connection: a row for `aria2c -j5 -x16 -i list`; "
                        "the note explains the gap", "playlist", info_only=True)
    a, al = _row(all_rows, "playlist", "ytdlp-async"), _row(all_rows, "playlist", "aria2c-list")
    if not (a and al):
        return g
    g.measured = (f"{a['wall_med']:.2f} s (server peak {a['server_peak']:.0f} concurrent) vs {al['wall_med']:.2f} s "
                  f"for aria2c -j5 (peak {al['server_peak']:.0f}) = {a['wall_med'] / al['wall_med']:.2f}x")
    h80 = _row(all_rows, "playlist", "ytdlp-async-host80")
    if h80:
        g.measured += f"; `--async-host-connections 80`: {h80['wall_med']:.2f} s (peak {h80['server_peak']:.0f})"
    g.reason = _playlist_reason(results, a, al, all_rows)
    return g


def host_window_default() -> Optional[int]:
    """--async-host-connections' default, read from the plugin's code."""
    try:
        from yt_dlp_async.ytdlp import options
    except Exception:
        return None
    value = getattr(options, "DEFAULTS", {}).get("async_host_connections")
    return value if isinstance(value, int) else None


def _playlist_reason(results: Dict[str, Any], a: Dict[str, Any], al: Dict[str, Any], all_rows: Rows) -> str:
    """What the playlist rows measured about the gap to aria2c -j5: the per-file count, then the host window."""
    wres = results["workloads"].get("playlist", {})
    window = wres.get("host_window") or host_window_default() or 16
    why = [f"aria2c -j5 -x16 had {al['server_peak']:.0f} requests in progress at its peak, the default "
           f"{a['server_peak']:.0f} (ideal at those peaks {al.get('ideal') or 0:.2f} s vs {a.get('ideal') or 0:.2f} s)"]
    lines = wres.get("probe_conn_lines") or []
    if lines:
        first = lines[0].split("]", 2)[-1].strip()
        why.append(f"each file's own count (-v, {len(lines)} line(s) of the untimed run; the first: `{first}`)")
    h80 = _row(all_rows, "playlist", "ytdlp-async-host80")
    if a["server_peak"] < window:
        txt = f"the default stayed below the host window ({window}): the window did not bind here"
        if h80:
            txt += (f" (raising it to 80 alone: {h80['wall_med']:.2f} s, peak {h80['server_peak']:.0f}, against "
                    f"{a['wall_med']:.2f} s)")
        why.append(txt)
    elif h80:
        why.append(f"the default reached the host window ({window}); raising it to 80: {h80['wall_med']:.2f} s at "
                   f"peak {h80['server_peak']:.0f}, against {a['wall_med']:.2f} s")
    c16, c16h = _row(all_rows, "playlist", "ytdlp-async-16"), _row(all_rows, "playlist", "ytdlp-async-16-host80")
    if c16:
        why.append(f"with 16 connections per file the files share the host window: {c16['wall_med']:.2f} s at "
                   f"peak {c16['server_peak']:.0f}")
    if c16h:
        txt = f"with the window at 80 as well: {c16h['wall_med']:.2f} s at peak {c16h['server_peak']:.0f}"
        if c16:
            txt += f" (the host window's cost here: {c16['wall_med']:.2f} s -> {c16h['wall_med']:.2f} s)"
        why.append(txt + f"; aria2c -j5: {al['wall_med']:.2f} s at peak {al['server_peak']:.0f}")
    return "; ".join(why)


def _g_rss(all_rows: Rows, gid: str, goal: str, small: str, big: str) -> GoalResult:
    g = GoalResult(gid, goal, big)
    a_s, a_b = _row(all_rows, small, "ytdlp-async"), _row(all_rows, big, "ytdlp-async")
    if not (a_s and a_b):
        return g
    d = a_b["rss_med"] - a_s["rss_med"]
    g.measured = f"peak RSS {a_s['rss_med']:.1f} MiB (`{small}`) vs {a_b['rss_med']:.1f} MiB (`{big}`): {d:+.1f} MiB"
    n_s, n_b = _row(all_rows, small, "ytdlp-native"), _row(all_rows, big, "ytdlp-native")
    if n_s and n_b:
        g.measured += f"; native yt-dlp {n_b['rss_med'] - n_s['rss_med']:+.1f} MiB"
    g.whole = abs(d) <= 5
    if n_s and n_b:
        g.reason = (f"native yt-dlp grows {n_b['rss_med'] - n_s['rss_med']:+.1f} MiB on the same change "
                    "(its own state), ours the difference")
    return g


def issue10_goals(results: Dict[str, Any], all_rows: Rows) -> List[GoalResult]:
    """Every goal of issue 10, judged on the medians in all_rows."""
    return [
        _g_file(all_rows, results),
        _g_throttled(all_rows, results, "throttled", "2a", ""),
        _g_throttled(all_rows, results, "throttled-latency", "2b", ", 100 ms per request"),
        _g_hls_cpu(all_rows, results),
        _g_hls_speed(all_rows, results),
        _g_hls_aes(all_rows, results),
        _g_hls_latency(all_rows, results),
        _g_playlist(all_rows, results),
        _g_rss(all_rows, "6a", "Peak RSS flat in file size: 64 MiB vs 1 GiB within 5 MiB (the default)",
               "file-64m", "file-1g"),
        _g_rss(all_rows, "6b", "Peak RSS flat in playlist length: 10 vs 40 entries within 5 MiB (the default)",
               "many-10", "many-40"),
    ]


def _goal_line(g: GoalResult) -> str:
    if g.info_only:
        return f"{g.measured}" + (f" ({g.reason})" if g.reason else "")
    txt = f"{_verdict(g.whole)}"
    if g.phase is not None:
        txt += f" (download phase: {_verdict(g.phase)})"
    return f"{txt}: {g.measured}"


def goal_verdict(name: str, rows: List[Dict[str, Any]], all_rows: Rows,
                 results: Optional[Dict[str, Any]] = None) -> str:
    """The verdict line(s) of the goals judged on workload `name` (issue 10), or the older pair and
    scale-out (issue 12) goals."""
    if name == "scale-out":
        return scale_out_verdict(rows)
    r = {x["key"]: x for x in rows}
    a = r.get("ytdlp-async")
    if not a or a.get("wall_med") is None:
        return "not evaluated (the default has no successful run)"
    if name == "pair":
        n = r.get("ytdlp-native")
        return f"{a['wall_med']:.2f} s vs {n['wall_med']:.2f} s native (sequential)" if n and n.get("wall_med") else ""
    goals = [g for g in issue10_goals(results or {"workloads": {}}, all_rows) if g.workload == name]
    return " / ".join(f"[{g.gid}] {_goal_line(g)}" for g in goals)


def _load_sentence(results: Dict[str, Any], goals: List[GoalResult]) -> str:
    loads = []
    for name in {g.workload for g in goals} | {"startup", "file-64m", "many-10"}:
        wres = results["workloads"].get(name, {})
        loads += [x[0] for x in (wres.get("load_before"), wres.get("load_after")) if x]
    if not loads:
        return ""
    nproc = results.get("meta", {}).get("machine", {}).get("nproc", "?")
    return (f"  The machine is shared: the 1-minute load average around these workloads was {min(loads):.1f} to "
            f"{max(loads):.1f} on {nproc} CPUs.")


def write_goals(out: List[str], results: Dict[str, Any], all_rows: Rows) -> None:
    """The "Issue 10 goals" section at the top of results.md."""
    w = out.append
    goals = issue10_goals(results, all_rows)
    w("## Issue 10 goals\n")
    quick = any(results["workloads"].get(g.workload, {}).get("quick") for g in goals)
    w("Computed by `goal_verdict` from the medians in the tables below" + (" (QUICK sizes: a smoke test, not the "
      "issue's sizes)" if quick else "") + ".  *Whole process*: the numbers as a user times them, from start "
      "to exit.  *Download phase*: each row minus its tool's start-up (the `startup` table: yt-dlp's interpreter "
      "and imports are in every yt-dlp row), the basis an ideal (transfer time only) is defined on.  Ideals: "
      "bytes / (connections x 2 MB/s) for the throttled rows, fragments x latency / window for `hls-latency`." +
      _load_sentence(results, goals) + "\n")
    w("| # | goal | measured (medians) | whole process | download phase |")
    w("|---|---|---|---|---|")
    for g in goals:
        if g.info_only:
            verdicts = ["row present" if g.measured != "not measured" else "not measured", "–"]
        else:
            verdicts = [f"**{_verdict(g.whole)}**", _verdict(g.phase)]
        w(f"| {g.gid} | {g.goal} | {g.measured} | {verdicts[0]} | {verdicts[1]} |")
    w("")
    gaps = [g for g in goals if g.reason and (g.info_only or g.whole is False or g.phase is False)]
    if gaps:
        w("What was measured that explains each goal not met (and the playlist gap):\n")
        for g in gaps:
            w(f"- **{g.gid}** ({g.workload}): {g.reason}.")
        w("")


def write_markdown(results: Dict[str, Any], path: Path) -> None:
    meta = results["meta"]
    out: List[str] = []
    w = out.append
    floor = f"{meta['rss_floor_mib']:.0f} MiB" if meta.get("rss_floor_mib") else "about 10 MiB"
    all_rows = {name: summarize(wres, results["workloads"].get("startup"))
                for name, wres in results["workloads"].items()}
    w("# Benchmarks\n")
    write_goals(out, results, all_rows)
    w("Generated by `bench/run.py` (`make bench`); do not edit by hand.  Every number is from runs in the same "
      "invocation, contenders interleaved round-robin.  Wall time and CPU (user+sys of the process and the "
      "children it waited for, e.g. the aria2c that yt-dlp starts) come from `os.wait4()`; peak RSS is the "
      "largest `ru_maxrss` of the process tree (children are started by a small helper process, so "
      "the floor is that helper's own RSS: {floor}).  Every output file is checked by SHA-256; a wrong file makes "
      "the run FAILED and it is left out of the statistics.\n".replace("{floor}", floor))
    w("yt-dlp runs use `--load-info-json` with a minimal info JSON (id, title, ext, url, protocol, "
      "http_headers), so no extractor runs and no request probes the URL before the download; their time "
      "still includes yt-dlp's start-up (Python, imports), shown in the `startup` table and subtracted in the "
      "`wall - start-up` column.  The `Python API` row runs `AsyncDownloadEngine().submit(url, path).result()` "
      "in a fresh `python -c` (interpreter start included).  MB/s is 10^6 bytes per second of median wall "
      "time.  `÷ native` is the ratio of medians to yt-dlp's native downloader (below 1 = faster / less CPU).\n")
    w("## Machine and versions\n")
    w(f"- date: {meta['date']}")
    m = meta["machine"]
    w(f"- machine: {m['nproc']} CPUs ({m['cpu']}), {m['memory']} RAM, kernel {m['kernel']}, "
      f"bench/work on {m['workdir_fs']}, Python {m['python']}")
    for k, v in meta["versions"].items():
        w(f"- {k}: {v}")
    w(f"- command: `{meta['command']}` (the full set: `make bench`)")
    w("")
    problems: List[str] = []
    for wl in WORKLOADS:
        wres = results["workloads"].get(wl.name)
        if wres is None:
            continue
        rows = all_rows[wl.name]
        w(f"## {wl.name}: {wres['title']}\n")
        meas = f"measured {wres['date']}, {wres['runs_per_contender']} run(s) per contender"
        if wres.get("quick"):
            meas += ", QUICK sizes (smoke test)"
        if wres["date"] != meta["date"]:
            meas += f", with `{wres['command']}`"
        if wres.get("load_before") and wres.get("load_after"):
            meas += (f", load average {wres['load_before'][0]:.1f} before and {wres['load_after'][0]:.1f} after "
                     f"on {meta['machine']['nproc']} CPUs")
        tb = wres["total_bytes"]
        size = f"{tb / MiB:.0f} MiB" if tb >= MiB else f"{tb / KiB:.0f} KiB"
        notes = [PLAYLIST_NOTE if n.startswith("On the gap to `aria2c -j5") else n for n in wres.get("notes", [])]
        w(f"{size} of payload; {meas}.  " + " ".join(notes) + "\n")
        throttled = bool(wres.get("rate"))
        head = ["contender", "ok/runs", "wall s median", "min", "max"]
        if results["workloads"].get("startup") and wl.name != "startup":
            head.append("wall - start-up")
        head += ["MB/s", "CPU s", "CPU s/GiB"]
        if "wall - start-up" in head:
            head.append("CPU s/GiB - start-up")
        head += ["peak RSS MiB", "conns", "requests", "wall ÷ native", "CPU ÷ native"]
        spans = any(r.get("span_med") for r in rows)
        if spans:
            head += ["server span s"]
        if throttled:
            head += ["ideal s", "of ideal (wall)", "of ideal (wall - start-up)"]
        w("| " + " | ".join(head) + " |")
        w("|" + "---|" * len(head))
        for r in rows:
            if "skipped" in r:
                w(f"| {r['label']} | skipped: {r['skipped']} |" + " |" * (len(head) - 2))
                continue
            cells = [r["label"], f"{r['ok']}/{r['runs']}" + ("" if r["ok"] == r["runs"] else " ⚠")]
            cells += [_f(r.get("wall_med")), _f(r.get("wall_min")), _f(r.get("wall_max"))]
            if "wall - start-up" in head:
                cells.append(_f(r.get("net")))
            cells += [_f(r.get("mbps"), "{:.1f}"), _f(r.get("cpu_med")),
                      _f(r.get("cpu_per_gib")) if wl.name != "startup" else "–"]
            if "CPU s/GiB - start-up" in head:
                cells.append(_f(r.get("net_cpu_per_gib")))
            cells += [_f(r.get("rss_med"), "{:.0f}"), _f(r.get("conns"), "{:.0f}"), _f(r.get("requests"), "{:.0f}"),
                      _f(r.get("vs_native"), "{:.2f}x"), _f(r.get("cpu_vs_native"), "{:.2f}x")]
            if spans:
                cells.append(_f(r.get("span_med")))
            if throttled:
                cells += [_f(r.get("ideal")), _f(r.get("of_ideal_whole"), "{:.2f}"), _f(r.get("of_ideal"), "{:.2f}")]
            w("| " + " | ".join(cells) + " |")
            for f in r.get("failures", []):
                problems.append(f"- `{wl.name}` / {r['label']}: {f}")
        w("")
        if wres.get("probe"):
            line = f"`yt-dlp --async-downloads -v` (one extra untimed run) says: `{wres['probe']}`"
            if "probe_server_peak" in wres:
                line += (f"; connections in its -v line: {wres.get('probe_conns') or 'none given'}; the server saw "
                         f"{wres['probe_server_connections']} connection(s)")
                if wres["probe_server_peak"]:
                    line += f", peak {wres['probe_server_peak']} concurrent requests"
            w(line + "\n")
        if spans:
            w("`server span`: first request's start to last response's end at the fault server (no client "
              "start-up in it).  `conns`: peak concurrent requests at the fault server (distinct connections "
              "for nginx).\n")
        if wl.goal:
            verdict = goal_verdict(wl.name, rows, all_rows, results) or "–"
            w(f"Goal (issue {wl.issue}): {wl.goal}. **Result: {verdict}**\n")
        cmds = wres.get("commands", {})
        if cmds:
            w("<details><summary>commands</summary>\n")
            for key in wres["contenders"]:
                if key in cmds:
                    w(f"- {wres['labels'].get(key, key)}: `{cmds[key]}`")
            w("\n</details>\n")
    w("## Problems seen\n")
    if problems:
        w("Runs that failed (logs of failed runs are kept in bench/work/failed/ until the next run):\n")
        out.extend(problems)
    else:
        w("None: every run produced the expected bytes.")
    w("")
    w("![results](results.png)\n")
    path.write_text("\n".join(out) + "\n")


COLORS = {"ytdlp-native": "#7f7f7f", "ytdlp-native-n16": "#bcbd22", "ytdlp-async": "#d62728",
          "ytdlp-async-16": "#ff9896", "ytdlp-async-1": "#8c564b", "ytdlp-async-host80": "#c49c94",
          "ytdlp-async-16-host80": "#f7b6d2",
          "aria2c-list": "#9edae5",
          "ytdlp-aria2c": "#1f77b4", "aria2c": "#17becf", "curl": "#2ca02c", "api": "#ff7f0e", "api-8": "#e377c2",
          "xargs-ytdlp": "#9467bd"}


def write_chart(results: Dict[str, Any], path: Path) -> Optional[str]:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib not installed (pip install matplotlib): no chart"
    names = [wl.name for wl in WORKLOADS if wl.name in results["workloads"]]
    if not names:
        return None
    fig, axes = plt.subplots(len(names), 3, figsize=(18, 1.0 + 2.1 * len(names)), squeeze=False,
                             gridspec_kw={"width_ratios": [2, 2, 1.3]})
    for i, name in enumerate(names):
        wres = results["workloads"][name]
        rows = summarize(wres, None)
        labels = [r["label"] for r in rows]
        for j, (metric, title) in enumerate((("wall", "wall time, s"), ("cpu", "CPU time (user+sys), s"),
                                             ("rss", "peak RSS, MiB"))):
            ax = axes[i][j]
            med = [r.get(f"{metric}_med") or 0 for r in rows]
            lo = [max(0.0, (r.get(f"{metric}_med") or 0) - (r.get(f"{metric}_min") or 0)) for r in rows]
            hi = [max(0.0, (r.get(f"{metric}_max") or 0) - (r.get(f"{metric}_med") or 0)) for r in rows]
            y = list(range(len(rows)))
            ax.barh(y, med, xerr=[lo, hi], color=[COLORS.get(r["key"], "#333") for r in rows], capsize=3)
            ax.set_yticks(y)
            ax.set_yticklabels(labels if j == 0 else [""] * len(labels), fontsize=8)
            ax.invert_yaxis()
            top = max([m + h for m, h in zip(med, hi)] + [1e-9])
            for k, r in enumerate(rows):
                if "skipped" in r:
                    ax.text(0, k, " skipped", va="center", fontsize=7, color="#555")
                elif r.get("wall_med") is None:
                    ax.text(0, k, " FAILED", va="center", fontsize=7, color="red")
                else:
                    txt = f" {med[k]:.0f}" if metric == "rss" else f" {med[k]:.2f}"
                    if r["ok"] != r["runs"]:
                        txt += f" ({r['runs'] - r['ok']} failed)"
                    ax.text(med[k] + hi[k], k, txt, va="center", fontsize=7)
            ax.set_xlim(0, top * 1.25)
            ax.set_title(f"{name}: {title}" + (" (QUICK)" if wres.get("quick") else ""), fontsize=9)
            ax.tick_params(axis="x", labelsize=7)
    fig.suptitle("yt-dlp-async benchmarks: median with min-max (lower is better)", fontsize=11)
    fig.tight_layout(rect=(0, 0, 1, 0.985))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None


# ----------------------------------------------------------------------------
# Main
# ----------------------------------------------------------------------------


def ensure_python_deps(allowed: bool) -> None:
    """matplotlib (the chart) and pycryptodomex (yt-dlp decrypts AES-128 HLS natively only with it,
    else it hands the stream to ffmpeg) into this venv when missing."""
    missing = []
    for module, package in (("matplotlib", "matplotlib"), ("Cryptodome", "pycryptodomex")):
        try:
            __import__(module)
        except ImportError:
            missing.append(package)
    if not missing or not allowed:
        return
    print(f"bench: pip install {' '.join(missing)}", flush=True)
    subprocess.run([PY, "-m", "pip", "install", "-q", *missing], check=False)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workload", action="append", default=[],
                    help="workload to run (repeatable; 'all' = every workload, 'issue10' = those issue 10's goals "
                         "are judged on, default = the default set)")
    ap.add_argument("--contender", action="append", default=[], help="only these contenders (repeatable)")
    ap.add_argument("--runs", type=int, default=None, help="runs per contender (default 3; 1 with --quick)")
    ap.add_argument("--quick", action="store_true", help="small sizes for a smoke test; output to bench/work/quick/")
    ap.add_argument("--output-dir", type=Path, default=None,
                    help="where results.md/.png/.json go (default bench/, bench/work/quick/ with --quick)")
    ap.add_argument("--work-dir", type=Path, default=None,
                    help="servers' content, run directories and logs (default bench/work; emptied of runs first)")
    ap.add_argument("--local-startup", action=argparse.BooleanOptionalAction, default=None,
                    help="measure the start-up rows inside every workload's rounds too, for its `- start-up` "
                         "columns (default: on, off with --quick)")
    ap.add_argument("--fresh", action="store_true", help="do not keep results of workloads not run this time")
    ap.add_argument("--keep-content", action="store_true", help="keep generated server content in bench/work/www")
    ap.add_argument("--no-install", action="store_true", help="do not pip install matplotlib/pycryptodomex if missing")
    ap.add_argument("--list", action="store_true", help="list workloads and contenders and exit")
    return ap.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    if args.list:
        for wl in WORKLOADS:
            print(f"{wl.name:18} {'default' if wl.default else 'opt-in ':7} {wl.title}")
            print(f"{'':18}         contenders: {', '.join(wl.contenders)}")
        return 0
    if "all" in args.workload:
        selected = list(WORKLOADS)
    elif "issue10" in args.workload:  # every workload an issue-10 goal is judged on, and the start-up row
        selected = [wl for wl in WORKLOADS if wl.issue == 10 or wl.name == "startup"]
    elif args.workload:
        unknown = [n for n in args.workload if n not in WORKLOAD_BY_NAME]
        if unknown:
            print(f"unknown workload(s): {', '.join(unknown)}; see --list", file=sys.stderr)
            return 2
        selected = [wl for wl in WORKLOADS if wl.name in args.workload]
    else:
        selected = [wl for wl in WORKLOADS if wl.default]
    runs = args.runs if args.runs is not None else (1 if args.quick else 3)
    out_dir = args.output_dir or (BENCH / "work" / "quick" if args.quick else BENCH)
    out_dir.mkdir(parents=True, exist_ok=True)
    workdir = (args.work_dir or BENCH / "work").resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(workdir / "runs", ignore_errors=True)
    shutil.rmtree(workdir / "failed", ignore_errors=True)
    failed_dir = workdir / "failed"

    ensure_python_deps(not args.no_install)
    tools = Tools()
    contenders = make_contenders(tools)
    unknown = [k for k in args.contender if k not in contenders]
    if unknown:
        print(f"unknown contender(s): {', '.join(unknown)}; one of {', '.join(contenders)}", file=sys.stderr)
        return 2
    given = sys.argv[1:] if argv is None else argv
    command = "python bench/run.py" + (" " + shlex.join(given) if given else "")
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    results_json = out_dir / "results.json"
    results: Dict[str, Any] = {"workloads": {}}
    if results_json.exists() and not args.fresh:
        try:
            results = json.loads(results_json.read_text())
        except ValueError:
            pass
    results["meta"] = {"date": date, "command": command, "machine": machine_info(workdir),
                       "versions": versions(tools)}
    print(f"bench: {len(selected)} workload(s), {runs} run(s) each; plugin "
          f"{'found' if tools.plugin else 'NOT found'}; results in {out_dir}", flush=True)

    servers = Servers(workdir)
    ctx = Ctx(servers, args.quick)
    local_startup = args.local_startup if args.local_startup is not None else not args.quick
    startup_wl = WORKLOAD_BY_NAME["startup"]
    startup_p: Optional[Prepared] = None
    t_start = time.monotonic()
    try:
        for wl in selected:
            keys = [k for k in wl.contenders if not args.contender or k in args.contender]
            print(f"\n== {wl.name}: {wl.title}", flush=True)
            t_prep = time.monotonic()
            try:
                p = wl.prepare(ctx)
            except Exception as exc:
                print(f"   cannot prepare: {type(exc).__name__}: {exc}", flush=True)
                continue
            print(f"   prepared in {time.monotonic() - t_prep:.1f} s", flush=True)
            skipped = {}
            active = []
            for k in keys:
                reason = skip_reason(contenders[k], tools)
                if reason:
                    skipped[k] = reason
                    print(f"   {contenders[k].label}: skipped ({reason})", flush=True)
                else:
                    active.append(k)
            wres: Dict[str, Any] = {
                "title": wl.title, "date": date, "command": command, "quick": args.quick,
                "runs_per_contender": runs, "total_bytes": p.total_bytes, "rate": p.rate, "notes": p.notes,
                "contenders": keys, "labels": {k: contenders[k].label for k in keys}, "skipped": skipped,
                "commands": {k: contenders[k].command for k in keys}, "runs": [],
                "single_file": not p.entries, "load_before": _loadavg(), "host_window": host_window_default(),
                **p.extra,
            }
            # Start-up rows measured inside this workload's rounds (a shared machine's load drifts
            # between workloads): the 1 KiB download of every tool whose start-up a row subtracts.
            bases: List[str] = []
            if local_startup and wl.name != "startup":
                bases = sorted({STARTUP_OF.get(k, k) for k in active} & set(startup_wl.contenders) - set(skipped))
                if bases and startup_p is None:
                    startup_p = startup_wl.prepare(ctx)
            wres["startup_runs"] = []
            items = [("run", k) for k in active] + [("startup", b) for b in bases]
            for r in range(runs):
                order = items[r % len(items):] + items[:r % len(items)] if items else []
                for kind, k in order:
                    if kind == "startup":
                        assert startup_p is not None
                        res = one_run(startup_wl, contenders[k], startup_p, servers, workdir, r, args.quick,
                                      failed_dir)
                        wres["startup_runs"].append(res)
                        label = f"(start-up) {contenders[k].label}"
                    else:
                        res = one_run(wl, contenders[k], p, servers, workdir, r, args.quick, failed_dir)
                        wres["runs"].append(res)
                        label = contenders[k].label
                    extra = "" if res["status"] == "OK" else f"  {res['status']}: {res['error']}"
                    print(f"   run {r + 1}/{runs} {label:28} {res['wall']:7.2f} s wall "
                          f"{res['cpu']:6.2f} s CPU {res['maxrss_mib']:6.0f} MiB "
                          f"{res['connections']:3d} conn{extra}", flush=True)
            wres["load_after"] = _loadavg()
            if wl.probe and "ytdlp-async" in active:
                probe = probe_async(wl, contenders["ytdlp-async"], p, servers, workdir, args.quick)
                wres["probe"] = probe["text"]
                wres["probe_conns"] = probe["conns"]
                wres["probe_conn_lines"] = probe["conn_lines"]
                wres["probe_server_peak"] = probe["server_peak"]
                wres["probe_server_connections"] = probe["server_connections"]
                print(f"   probe (-v): {probe['text']}; connections from -v: {probe['conns']}, "
                      f"server peak {probe['server_peak']}, connections {probe['server_connections']}", flush=True)
            results["workloads"][wl.name] = wres
            # Write after every workload: an interrupted run still leaves its numbers.
            results_json.write_text(json.dumps(results, indent=1))
            write_markdown(results, out_dir / "results.md")
            for row in summarize(wres, results["workloads"].get("startup")):
                if row.get("wall_med") is not None:
                    print(f"   = {row['label']:28} median {row['wall_med']:7.2f} s  {row['mbps']:8.1f} MB/s  "
                          f"CPU {row['cpu_med']:6.2f} s  x native {_f(row.get('vs_native'))}", flush=True)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    finally:
        if _spawner is not None:
            results["meta"]["rss_floor_mib"] = round(_spawner.floor_mib, 1)
            _spawner.close()
        servers.stop()
        shutil.rmtree(workdir / "runs", ignore_errors=True)
        shutil.rmtree(workdir / "nginx", ignore_errors=True)
        if not args.keep_content:
            shutil.rmtree(workdir / "www", ignore_errors=True)
    results_json.write_text(json.dumps(results, indent=1))
    write_markdown(results, out_dir / "results.md")
    err = write_chart(results, out_dir / "results.png")
    if err:
        print(f"bench: {err}", file=sys.stderr)
    print(f"\nbench: done in {time.monotonic() - t_start:.0f} s; wrote {out_dir / 'results.md'}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
