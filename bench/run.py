#!/usr/bin/env python3
"""Benchmarks: yt-dlp-async against yt-dlp's native downloader, aria2c and curl.

``make bench`` runs ``python bench/run.py`` (all default workloads, 3 runs of
every contender, interleaved round-robin) and writes ``bench/results.md``,
``bench/results.png`` and the raw numbers in ``bench/results.json``.

    python bench/run.py --list                 # workloads and contenders
    python bench/run.py --quick                # small sizes, 1 run: smoke test (writes bench/work/quick/)
    python bench/run.py --workload file-1g --workload throttled --runs 5
    python bench/run.py --workload all         # also the opt-in workloads (playlist)
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


def prep_file_1g(ctx: Ctx) -> Prepared:
    size = 64 * MiB if ctx.quick else GiB
    path, digest = ctx.servers.nginx_put(f"file/{size}.mp4", size, seed=1)
    url = ctx.servers.nginx.http_url(path)
    return Prepared(total_bytes=size, expected=[("out.mp4", digest)], info=_video_info("file1g", url, "http"), url=url,
                    notes=["nginx (sendfile, page cache) over plain HTTP/1.1 on loopback, no throttle."])


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
                    notes=[note + ". `ideal` = bytes / (peak concurrent connections seen by the server x rate)."])


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
    return Prepared(total_bytes=count * seg_size, expected=[("out.mp4", total.hexdigest())],
                    info=_video_info("hlslat", m3u8_url, "m3u8_native"), ytdlp_args=["--fixup", "never"],
                    notes=[f"{count} fragments of 100 KiB from tests/faultserver.py with 50 ms before every "
                           f"fragment response; ideal = {count} x 50 ms / fragments in flight."])


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


def prep_playlist(ctx: Ctx) -> Prepared:
    fault = ctx.servers.fault
    n = 10
    size = 2 * MiB if ctx.quick else 16 * MiB
    entries = []
    expected = []
    for i in range(n):
        url = fault.data_url(size, "mp4", seed=100 + i, rate=RATE, latency=50)
        entries.append(_video_info(f"v{i:02d}", url, "http"))
        expected.append((f"v{i:02d}.mp4", sha256_of(size, 100 + i)))
    info = {"_type": "playlist", "id": "pl", "title": "pl", "extractor": "generic", "extractor_key": "Generic",
            "entries": entries}
    return Prepared(total_bytes=n * size, expected=expected, info=info, entries=entries,
                    out_template="%(id)s.%(ext)s", rate=RATE, ytdlp_args=["--no-clean-info-json"],
                    notes=[f"A {n}-entry playlist info JSON (loaded with `--no-clean-info-json`, which keeps "
                           f"its entries), {size // MiB} MiB per video, tests/faultserver.py "
                           f"at {RATE / 1e6:g} MB/s per connection and 50 ms per request."])


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


FILE_CONTENDERS = ["ytdlp-native", "ytdlp-async", "ytdlp-async-16", "ytdlp-aria2c", "aria2c", "curl", "api", "api-8"]
HLS_CONTENDERS = ["ytdlp-native", "ytdlp-native-n16", "ytdlp-async"]

# Extension point: add workloads here (name, title, prepare function, contenders).
WORKLOADS: List[Workload] = [
    Workload("startup", "Start-up: 1 KiB from nginx", prep_startup, FILE_CONTENDERS, lambda q: 60, probe=True),
    Workload("file-1g", "One 1 GiB file from nginx on loopback, no throttle", prep_file_1g, FILE_CONTENDERS,
             lambda q: 60 if q else 180, issue=4,
             goal="yt-dlp --async-downloads at or below yt-dlp native in wall time and CPU s/GiB"),
    Workload("throttled", "One 64 MiB file, 2 MB/s per connection", prep_throttled, FILE_CONTENDERS,
             lambda q: 60 if q else 150, issue=4,
             goal="yt-dlp --async-downloads >= 0.8x of ideal (connections x rate) and faster than yt-dlp + aria2c"),
    Workload("throttled-latency", "One 64 MiB file, 2 MB/s per connection, 100 ms per request",
             prep_throttled_latency, FILE_CONTENDERS, lambda q: 60 if q else 150, issue=4,
             goal="as above, with 100 ms of latency per request"),
    Workload("hls", "HLS: 400 fragments of 256 KiB from nginx", prep_hls, HLS_CONTENDERS,
             lambda q: 60 if q else 180, issue=5, probe=True,
             goal="yt-dlp --async-downloads >= 5x faster than native -N 16; CPU s/GiB within 2x of the 1 GiB file"),
    Workload("hls-latency", "HLS: 200 fragments of 100 KiB, 50 ms per request", prep_hls_latency, HLS_CONTENDERS,
             lambda q: 60 if q else 120, issue=5,
             goal="yt-dlp --async-downloads within 1.5x of ideal (fragments x latency / window)"),
    Workload("hls-aes", "HLS AES-128: 400 fragments of 256 KiB from nginx", prep_hls_aes, HLS_CONTENDERS,
             lambda q: 60 if q else 180, issue=5, probe=True,
             goal="yt-dlp --async-downloads no more than 10% slower than the unencrypted `hls` row"),
    Workload("pair", "Video + audio (bv+ba), 2 MB/s per connection, merged by ffmpeg", prep_pair,
             ["ytdlp-native", "ytdlp-async", "ytdlp-aria2c"], lambda q: 60 if q else 120, issue=5,
             goal="yt-dlp --async-downloads close to the time of the larger format alone"),
    Workload("playlist", "Playlist: 10 videos of 16 MiB, 2 MB/s per connection, 50 ms per request", prep_playlist,
             ["ytdlp-native", "ytdlp-aria2c", "xargs-ytdlp", "ytdlp-async"], lambda q: 90 if q else 300,
             default=False, issue=6,
             goal="yt-dlp --async-downloads >= 5x faster than native and faster than xargs -P 5"),
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

    def asyncd(job: Job) -> List[str]:
        return ytdlp_base(job) + ["--async-downloads", "--load-info-json", str(job.info_json)]

    def asyncd16(job: Job) -> List[str]:
        return ytdlp_base(job) + ["--async-downloads", "--async-connections", "16",
                                  "--load-info-json", str(job.info_json)]

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

    def xargs(job: Job) -> List[str]:
        assert job.entry_list is not None
        return [tools.xargs or "xargs", "-P", "5", "-n", "1", "-a", str(job.entry_list)] + \
            ytdlp_base(job) + native_flag + ["--load-info-json"]

    nf = " --no-async-downloads" if tools.plugin else ""
    return {c.key: c for c in [
        Contender("ytdlp-native", "yt-dlp (native)", ytdlp + nf, native, []),
        Contender("ytdlp-native-n16", "yt-dlp -N 16 (native)", ytdlp + nf + " -N 16", native_n16, []),
        Contender("ytdlp-async", "yt-dlp --async-downloads", ytdlp + " --async-downloads", asyncd, [],
                  needs_plugin=True),
        Contender("ytdlp-async-16", "yt-dlp --async-downloads --async-connections 16",
                  ytdlp + " --async-downloads --async-connections 16", asyncd16, [], needs_plugin=True),
        Contender("ytdlp-aria2c", "yt-dlp + aria2c", ytdlp + ' --downloader aria2c --downloader-args "aria2c:'
                  + " ".join(aria_args) + '"', ytdlp_aria, ["aria2c"]),
        Contender("aria2c", "aria2c -x16 -s16 -k1M", "aria2c " + " ".join(aria_args) + " -d DIR -o NAME URL", aria,
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


def probe_async(wl: Workload, c: Contender, p: Prepared, workdir: Path, quick: bool) -> str:
    """Run `yt-dlp --async-downloads -v` once, untimed; return the lines that say which downloader ran."""
    run_dir = workdir / "runs" / f"{wl.name}-probe"
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    info_json = run_dir / "_info.json"
    info_json.write_text(json.dumps(p.info))
    argv = c.build(Job(run_dir, p, info_json, None)) + ["-v"]
    log_path = workdir / "runs" / f"{wl.name}-probe.log"
    try:
        measure(argv, run_dir, wl.timeout(quick), log_path)
        lines = log_path.read_text(errors="replace").replace("\r", "\n").splitlines()
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
    keep = []
    for ln in lines:
        low = ln.lower()
        if ("invoking" in low and "downloader" in low) or "falling back" in low or "fallback" in low or \
                ("[async]" in low and "async downloads:" not in low):
            ln = ln.strip()
            if ln not in keep:
                keep.append(ln)
    log_path.unlink(missing_ok=True)
    return "; ".join(k[:200] for k in keep[:4]) or "no downloader line in the -v output"


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
    entry_list = None
    if p.entries:
        entry_list = run_dir / "_entries.txt"
        names = []
        for e in p.entries:
            f = run_dir / f"_entry-{e['id']}.json"
            f.write_text(json.dumps(e))
            names.append(str(f))
        entry_list.write_text("\n".join(names) + "\n")
    job = Job(run_dir, p, info_json, entry_list)
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
    commit = _first_line(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "csrc", "yt_dlp_async"],
                           capture_output=True, text=True).stdout.strip()
    v["source"] = f"git {commit}" + (" + uncommitted changes in csrc/ or yt_dlp_async/" if dirty else "")
    return v


# ----------------------------------------------------------------------------
# Summaries, results.md, results.png
# ----------------------------------------------------------------------------


def summarize(wres: Dict[str, Any], startup: Optional[Dict[str, Any]]) -> List[Dict[str, Any]]:
    rows = []
    total = wres["total_bytes"]
    rate = wres.get("rate")
    by_c: Dict[str, List[Dict[str, Any]]] = {}
    for r in wres["runs"]:
        by_c.setdefault(r["contender"], []).append(r)
    start_med: Dict[str, float] = {}
    start_cpu: Dict[str, float] = {}
    if startup:
        for s in summarize(startup, None):
            if s.get("wall_med") is not None:
                start_med[s["key"]] = s["wall_med"]
                start_cpu[s["key"]] = s["cpu_med"]
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
                conns=statistics.median(r["peak_concurrent"] or r["connections"] for r in ok),
                requests=statistics.median(r["requests"] for r in ok),
            )
            row["mbps"] = total / row["wall_med"] / 1e6
            row["cpu_per_gib"] = row["cpu_med"] / (total / GiB)
            if key in start_med and startup is not wres:
                row["net"] = row["wall_med"] - start_med[key]
                row["net_cpu_per_gib"] = (row["cpu_med"] - start_cpu[key]) / (total / GiB)
            if rate and row["conns"]:
                row["ideal"] = total / (row["conns"] * rate)
                row["of_ideal"] = row["ideal"] / row["wall_med"]
        rows.append(row)
    native = next((r for r in rows if r["key"] == "ytdlp-native" and r.get("wall_med")), None)
    for r in rows:
        if native and r.get("wall_med"):
            r["vs_native"] = r["wall_med"] / native["wall_med"]
            r["cpu_vs_native"] = r["cpu_med"] / native["cpu_med"] if native["cpu_med"] else None
    return rows


def _f(x: Optional[float], fmt: str = "{:.2f}") -> str:
    return "–" if x is None else fmt.format(x)


def goal_verdict(name: str, rows: List[Dict[str, Any]], all_rows: Dict[str, List[Dict[str, Any]]]) -> str:
    if name == "scale-out":
        return scale_out_verdict(rows)
    r = {x["key"]: x for x in rows}
    a = r.get("ytdlp-async")
    if not a or a.get("wall_med") is None:
        return "not evaluated (yt-dlp --async-downloads has no successful run)"
    n = r.get("ytdlp-native")
    if name == "file-1g" and n and n.get("wall_med"):
        ok = a["wall_med"] <= n["wall_med"] and a["cpu_med"] <= n["cpu_med"]
        txt = (f"{'met' if ok else 'NOT met'}: wall {a['wall_med']:.2f} s vs {n['wall_med']:.2f} s native, "
               f"CPU {a['cpu_per_gib']:.2f} vs {n['cpu_per_gib']:.2f} s/GiB")
        if a.get("net_cpu_per_gib") is not None and n.get("net_cpu_per_gib") is not None:
            txt += (f" (download phase, start-up subtracted: {a['net']:.2f} s vs {n['net']:.2f} s, "
                    f"{a['net_cpu_per_gib']:.2f} vs {n['net_cpu_per_gib']:.2f} CPU s/GiB)")
        return txt
    if name in ("throttled", "throttled-latency"):
        ar = r.get("ytdlp-aria2c")
        of = a.get("of_ideal") or 0
        faster = ar is None or ar.get("wall_med") is None or a["wall_med"] < ar["wall_med"]
        ok = of >= 0.8 and faster
        txt = f"{'met' if ok else 'NOT met'}: {of:.2f}x of ideal with {a['conns']:.0f} connection(s)"
        if ar and ar.get("wall_med"):
            txt += f"; {a['wall_med']:.2f} s vs {ar['wall_med']:.2f} s for yt-dlp + aria2c"
        return txt
    if name == "hls":
        n16 = r.get("ytdlp-native-n16")
        if n16 and n16.get("wall_med"):
            sp = n16["wall_med"] / a["wall_med"]
            f1 = {x["key"]: x for x in all_rows.get("file-1g", [])}.get("ytdlp-async")
            txt = f"{'met' if sp >= 5 else 'NOT met'}: {sp:.2f}x faster than native -N 16"
            if f1 and f1.get("cpu_per_gib"):
                txt += f"; CPU {a['cpu_per_gib']:.2f} s/GiB vs {f1['cpu_per_gib']:.2f} on the 1 GiB file"
            return txt
    if name == "hls-aes":
        plain = {x["key"]: x for x in all_rows.get("hls", [])}.get("ytdlp-async")
        if plain and plain.get("wall_med"):
            slow = a["wall_med"] / plain["wall_med"] - 1
            return f"{'met' if slow <= 0.10 else 'NOT met'}: {slow * 100:+.0f}% vs unencrypted"
    if name == "playlist" and n and n.get("wall_med"):
        x = r.get("xargs-ytdlp")
        sp = n["wall_med"] / a["wall_med"]
        ok = sp >= 5 and (x is None or not x.get("wall_med") or a["wall_med"] < x["wall_med"])
        txt = f"{'met' if ok else 'NOT met'}: {sp:.2f}x faster than native"
        if x and x.get("wall_med"):
            txt += f"; {a['wall_med']:.2f} s vs {x['wall_med']:.2f} s for xargs -P 5"
        return txt
    if name == "hls-latency":
        return f"{a['wall_med']:.2f} s (see the ideal in the note)"
    if name == "pair":
        return f"{a['wall_med']:.2f} s vs {n['wall_med']:.2f} s native (sequential)" if n and n.get("wall_med") else ""
    return ""


def write_markdown(results: Dict[str, Any], path: Path) -> None:
    meta = results["meta"]
    out: List[str] = []
    w = out.append
    floor = f"{meta['rss_floor_mib']:.0f} MiB" if meta.get("rss_floor_mib") else "about 10 MiB"
    w("# Benchmarks\n")
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
    all_rows = {name: summarize(wres, results["workloads"].get("startup"))
                for name, wres in results["workloads"].items()}
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
        tb = wres["total_bytes"]
        size = f"{tb / MiB:.0f} MiB" if tb >= MiB else f"{tb / KiB:.0f} KiB"
        w(f"{size} of payload; {meas}.  " + " ".join(wres.get("notes", [])) + "\n")
        throttled = bool(wres.get("rate"))
        head = ["contender", "ok/runs", "wall s median", "min", "max"]
        if results["workloads"].get("startup") and wl.name != "startup":
            head.append("wall - start-up")
        head += ["MB/s", "CPU s", "CPU s/GiB"]
        if "wall - start-up" in head:
            head.append("CPU s/GiB - start-up")
        head += ["peak RSS MiB", "conns", "requests", "wall ÷ native", "CPU ÷ native"]
        if throttled:
            head += ["ideal s", "of ideal"]
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
            if throttled:
                cells += [_f(r.get("ideal")), _f(r.get("of_ideal"), "{:.2f}")]
            w("| " + " | ".join(cells) + " |")
            for f in r.get("failures", []):
                problems.append(f"- `{wl.name}` / {r['label']}: {f}")
        w("")
        if wres.get("probe"):
            w(f"`yt-dlp --async-downloads -v` (one extra untimed run) says: `{wres['probe']}`\n")
        if wl.goal:
            w(f"Goal (issue {wl.issue}): {wl.goal}. **Result: {goal_verdict(wl.name, rows, all_rows) or '–'}**\n")
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
          "ytdlp-async-16": "#ff9896",
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
    fig, axes = plt.subplots(len(names), 2, figsize=(13, 1.0 + 2.1 * len(names)), squeeze=False)
    for i, name in enumerate(names):
        wres = results["workloads"][name]
        rows = summarize(wres, None)
        labels = [r["label"] for r in rows]
        for j, (metric, title) in enumerate((("wall", "wall time, s"), ("cpu", "CPU time (user+sys), s"))):
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
                    txt = f" {med[k]:.2f}"
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
                    help="workload to run (repeatable; 'all' = every workload, default = the default set)")
    ap.add_argument("--contender", action="append", default=[], help="only these contenders (repeatable)")
    ap.add_argument("--runs", type=int, default=None, help="runs per contender (default 3; 1 with --quick)")
    ap.add_argument("--quick", action="store_true", help="small sizes for a smoke test; output to bench/work/quick/")
    ap.add_argument("--output-dir", type=Path, default=None,
                    help="where results.md/.png/.json go (default bench/, bench/work/quick/ with --quick)")
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
    workdir = BENCH / "work"
    workdir.mkdir(exist_ok=True)
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
            }
            for r in range(runs):
                order = active[r % len(active):] + active[:r % len(active)] if active else []
                for k in order:
                    res = one_run(wl, contenders[k], p, servers, workdir, r, args.quick, failed_dir)
                    wres["runs"].append(res)
                    extra = "" if res["status"] == "OK" else f"  {res['status']}: {res['error']}"
                    print(f"   run {r + 1}/{runs} {contenders[k].label:28} {res['wall']:7.2f} s wall "
                          f"{res['cpu']:6.2f} s CPU {res['maxrss_mib']:6.0f} MiB "
                          f"{res['connections']:3d} conn{extra}", flush=True)
            if wl.probe and "ytdlp-async" in active:
                wres["probe"] = probe_async(wl, contenders["ytdlp-async"], p, workdir, args.quick)
                print(f"   probe (-v): {wres['probe']}", flush=True)
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
