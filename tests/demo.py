"""make demo: what the plugin is for, in under a minute, from a local server.

Two downloads that real sites make slow, each run twice with the real yt-dlp
as a user types it: once as yt-dlp alone (``--no-async-downloads``), once with
the plugin (on by default once installed), and the two times side by side:

* one file from a server that throttles each connection (as CDNs do): yt-dlp
  reads it over one connection; the plugin adds connections while each step
  raises the rate (docs/adaptive.md);
* an HLS stream whose fragments each take a round trip of latency before
  their first byte: yt-dlp fetches them one after the other; the plugin keeps
  several in flight.

Both are served by the project's test server (tests/faultserver.py, stdlib
only) on 127.0.0.1; every output is checked byte for byte against what was
served.  Needs only the package itself (``pip install .``: yt-dlp comes along).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from faultserver import FaultServer  # noqa: E402

MiB = 1024 * 1024
FILE_SIZE = 16 * MiB
RATE = 2_000_000          # bytes/s per connection
FRAGMENTS = 60
LATENCY_MS = 150          # before each fragment's first byte


def hls(server: FaultServer, name: str) -> tuple[str, bytes]:
    """A VOD playlist of FRAGMENTS segments, each answered after LATENCY_MS."""
    lines = ["#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-TARGETDURATION:2", "#EXT-X-MEDIA-SEQUENCE:0"]
    segments = []
    for i in range(FRAGMENTS):
        data = os.urandom(40_000 + 997 * i)
        segments.append(data)
        server.add_file(f"{name}/seg{i}.ts", data, "video/mp2t")
        lines += ["#EXTINF:2.0,", f"seg{i}.ts?latency={LATENCY_MS}"]
    lines.append("#EXT-X-ENDLIST")
    url = server.add_file(f"{name}/index.m3u8", ("\n".join(lines) + "\n").encode(), "application/vnd.apple.mpegurl")
    return url, b"".join(segments)


def run(label: str, switch: str, url: str, expected: bytes, work: str) -> float:
    directory = tempfile.mkdtemp(dir=work)
    # --fixup never: the fragments are random bytes, not a video ffmpeg could remux
    cmd = ["yt-dlp", switch, "--fixup", "never", "--no-progress", "-o", "out.%(ext)s", url]
    print(f"$ {' '.join(cmd)}    # {label}", flush=True)
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "yt_dlp", *cmd[1:]], cwd=directory, capture_output=True, text=True)
    seconds = time.monotonic() - start
    outputs = [f for f in os.listdir(directory) if f.startswith("out.") and not f.endswith((".part", ".ytdl"))]
    if proc.returncode != 0 or len(outputs) != 1:
        sys.stdout.write(proc.stdout + proc.stderr)
        raise SystemExit(f"demo: yt-dlp exited with {proc.returncode}, left {sorted(os.listdir(directory))}")
    with open(os.path.join(directory, outputs[0]), "rb") as f:
        got = hashlib.sha256(f.read()).hexdigest()
    if got != hashlib.sha256(expected).hexdigest():
        raise SystemExit(f"demo: {outputs[0]} differs from what the server sent")
    return seconds


def main() -> int:
    rows = []
    with tempfile.TemporaryDirectory() as work, FaultServer() as server:
        video = os.urandom(FILE_SIZE)
        server.add_file("demo.mp4", video, content_type="video/mp4")
        file_url = server.url(f"/file/demo.mp4?rate={RATE}")
        stream_url, stream = hls(server, "live")
        cases = [
            (f"a {FILE_SIZE // MiB} MiB file, {RATE / 1e6:g} MB/s per connection", file_url, video),
            (f"HLS, {FRAGMENTS} fragments, {LATENCY_MS} ms latency each", stream_url, stream),
        ]
        for label, url, expected in cases:
            alone = run(label, "--no-async-downloads", url, expected, work)
            plugin = run(label, "--async-downloads", url, expected, work)
            rows.append((label, alone, plugin))
    width = max(len(label) for label, _, _ in rows)
    print()
    print(f"{'':{width}}  yt-dlp alone  with yt-dlp-async")
    for label, alone, plugin in rows:
        print(f"{label:{width}}  {alone:10.1f} s  {plugin:10.1f} s  ({alone / plugin:.1f}x)")
    print("\nEvery output is byte-identical to what the server sent.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
