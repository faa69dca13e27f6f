"""``python -m yt_dlp_async URL...``: download URLs with the engine, with progress.

A small command line over :func:`yt_dlp_async.download` (no yt-dlp involved:
for sites, formats and playlists run ``yt-dlp``, which uses the engine once
this package is installed).  Each file goes to ``DIR/NAME.ytdla-part`` and is
renamed to ``DIR/NAME`` when complete; running the same command again after
an interruption resumes.  Exit status: 0 when every download finished, 1
when one failed, 2 for bad arguments, 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from typing import Sequence, TextIO

from . import __version__, download
from .engine import DownloadProgress, DownloadTask


def _size(n: float | None) -> str:
    if n is None:
        return "?"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


class Progress:
    """One status line for the whole run on a terminal (redrawn in place),
    else one line per finished file."""

    def __init__(self, stream: TextIO, quiet: bool) -> None:
        self.stream = stream
        self.quiet = quiet
        self.tty = stream.isatty()
        self.lock = threading.Lock()
        self.tasks: dict[int, DownloadProgress] = {}
        self.names: dict[int, str] = {}
        self.started = time.monotonic()

    def __call__(self, task: DownloadTask, progress: DownloadProgress) -> None:
        with self.lock:
            self.tasks[task.id] = progress
            self.names[task.id] = os.path.basename(task.path or task.url)
            if self.quiet:
                return
            if progress.finished:
                self._line(f"{self.names[task.id]}: {progress.state}, {_size(progress.downloaded_bytes)}"
                           f" in {progress.elapsed:.1f} s")
            elif self.tty:
                self._status()

    def _line(self, text: str) -> None:
        self.stream.write(("\r\033[K" if self.tty else "") + text + "\n")
        if self.tty:
            self._status()
        self.stream.flush()

    def _status(self) -> None:
        live = [p for p in self.tasks.values() if p.state not in ("failed", "cancelled")]
        done = sum(p.downloaded_bytes for p in live)
        total_known = all(p.total_bytes is not None for p in live)
        total = sum(p.total_bytes or 0 for p in live)
        speed = sum(p.speed or 0 for p in self.tasks.values() if not p.finished)
        running = sum(1 for p in self.tasks.values() if not p.finished)
        share = f" {100 * done / total:5.1f}%" if total_known and total else ""
        self.stream.write(f"\r\033[K[{running} running]{share} {_size(done)}"
                          f"{' of ' + _size(total) if total_known else ''} at {_size(speed)}/s")
        self.stream.flush()

    def close(self) -> None:
        if self.tty and not self.quiet:
            self.stream.write("\r\033[K")
            self.stream.flush()


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m yt_dlp_async",
        description="Download URLs (direct links, not web pages) with yt-dlp-async's libcurl engine.",
    )
    p.add_argument("urls", nargs="+", metavar="URL")
    p.add_argument("-d", "--directory", default=".", help="where the files go (default: the current one)")
    p.add_argument("-j", "--jobs", type=int, default=5, help="files at a time (default: 5)")
    p.add_argument("-c", "--connections", default="auto",
                   help="connections per file: 'auto' (default: add while it pays, up to 16) or a number")
    p.add_argument("-r", "--rate-limit", type=int, default=None, metavar="BYTES",
                   help="cap the total rate, in bytes/s")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")
    p.add_argument("--version", action="version", version=f"yt-dlp-async {__version__}")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    connections: int | str = args.connections
    if connections != "auto":
        try:
            connections = int(connections)
        except ValueError:
            parser().error(f"--connections: expected 'auto' or a number, not {args.connections!r}")
    if args.jobs < 1:
        parser().error("--jobs must be at least 1")
    progress = Progress(sys.stderr, args.quiet)
    try:
        results = download(args.urls, args.directory, args.jobs, connections=connections,
                           on_progress=progress, progress_interval=0.25, rate_limit=args.rate_limit)
    except KeyboardInterrupt:
        progress.close()
        print("Interrupted: run the same command again to resume", file=sys.stderr)
        return 130
    except Exception as exc:  # the first failure, once every other download ended
        progress.close()
        print(f"error: {exc}", file=sys.stderr)
        return 1
    progress.close()
    if not args.quiet:
        total = sum(r.downloaded_bytes for r in results)
        seconds = time.monotonic() - progress.started
        print(f"{len(results)} file(s), {_size(total)} in {seconds:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
