"""make demo: a real download through yt-dlp, from a local server, through the engine.

Serves a generated video (or random bytes without ffmpeg) from the project's
test server on 127.0.0.1, runs `yt-dlp --async-downloads URL` as a user
would, and checks that the file is byte-identical to what was served.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from faultserver import FaultServer  # noqa: E402


def make_video(directory: str) -> bytes:
    path = os.path.join(directory, "demo-src.mp4")
    if shutil.which("ffmpeg"):
        subprocess.run(
            ["ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "testsrc=duration=30:size=1280x720:rate=30",
             "-f", "lavfi", "-i", "sine=frequency=440:duration=20", "-c:v", "libx264", "-preset", "ultrafast", "-b:v", "8M",
             "-c:a", "aac", "-shortest", path],
            check=True,
        )
        with open(path, "rb") as f:
            return f.read()
    return os.urandom(8 * 1024 * 1024)


def main() -> int:
    with tempfile.TemporaryDirectory() as work, FaultServer() as server:
        video = make_video(work)
        server.add_file("demo.mp4", video, content_type="video/mp4")
        # per-connection throttling, as CDNs do: 4 MB/s
        url = server.url("/file/demo.mp4?rate=4000000")
        cmd = [sys.executable, "-m", "yt_dlp", "--async-downloads", "-v", "-o", "%(title)s.%(ext)s", url]
        print("$", " ".join(cmd[2:]), flush=True)
        proc = subprocess.run(cmd, cwd=work)
        if proc.returncode != 0:
            print(f"demo: yt-dlp exited with {proc.returncode}")
            return 1
        files = [f for f in os.listdir(work) if f != "demo-src.mp4" and not f.endswith(".part")]
        if len(files) != 1:
            print(f"demo: expected one downloaded file, found {files}")
            return 1
        with open(os.path.join(work, files[0]), "rb") as f:
            got = f.read()
        want_sha, got_sha = hashlib.sha256(video).hexdigest(), hashlib.sha256(got).hexdigest()
        requests = server.requests("/file/demo.mp4")
        print(f"demo: {files[0]}: {len(got)} bytes, sha256 {got_sha}")
        print(f"demo: served sha256 {want_sha}: {'identical' if got_sha == want_sha else 'DIFFERENT'}")
        print(f"demo: {len(requests)} request(s) to the server, User-Agent {requests[0].header('User-Agent')!r}")
        return 0 if got_sha == want_sha else 1


if __name__ == "__main__":
    sys.exit(main())
