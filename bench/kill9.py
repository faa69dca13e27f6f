"""kill -9 in the middle of a split download, then rerun (issue 18).

yt-dlp with the plugin downloads SIZE bytes from the fault server, which
throttles each connection to RATE bytes/s; the process is killed with
SIGKILL at 10 points of the download, then the same command is run again to
the end.  For each point: the bytes the server sent over both runs divided by
the file size, and whether the file's SHA-256 is the content's.  A ratio of
1.0 is a perfect resume; what the first run received after its last control
file save is fetched twice.

The points are spread over the download: an uninterrupted run of each mode
is timed first (from the first byte on disk to the process' end), and the
kills fall at 5 %, 15 %, ..., 95 % of that time after the first byte.

    .venv/bin/python bench/kill9.py                 # --async-connections 8, and auto (the default)
    .venv/bin/python bench/kill9.py --mode auto --points 5
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from faultserver import FaultServer, sha256_of  # noqa: E402

MODES: Dict[str, List[str]] = {"8": ["--async-connections", "8"], "16": ["--async-connections", "16"], "auto": []}


def env_for(home: Path) -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("YTDLP_", "XDG_"))}
    home.mkdir(parents=True, exist_ok=True)
    env.update({"HOME": str(home), "XDG_CONFIG_HOME": str(home / "config"), "XDG_CACHE_HOME": str(home / "cache"),
                "NO_COLOR": "1"})
    return env


def command(url: str, mode: str) -> List[str]:
    return [sys.executable, "-m", "yt_dlp", "--no-cache-dir", "--no-progress", *MODES[mode], "-o", "k.bin", url]


def first_byte(work: Path, proc: "subprocess.Popen[bytes]", timeout: float = 60) -> float:
    """Wait until the download has bytes on disk; return that moment."""
    sparse = work / "k.bin.part-async"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if sparse.stat().st_blocks > 0:
                return time.monotonic()
        except FileNotFoundError:
            pass
        if proc.poll() is not None:
            raise RuntimeError(f"yt-dlp ended before its first byte (exit {proc.returncode})")
        time.sleep(0.002)
    raise RuntimeError("no byte on disk in time")


def served(server: FaultServer, path: str) -> int:
    server.wait_idle(10)
    return sum(e.bytes_sent for e in server.requests(path) if e.method == "GET")


def timed_run(server: FaultServer, url: str, mode: str, base: Path) -> float:
    work = Path(tempfile.mkdtemp(dir=base))
    proc = subprocess.Popen(command(url, mode), cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=env_for(work / ".home"))
    t0 = first_byte(work, proc)
    proc.wait(300)
    took = time.monotonic() - t0
    shutil.rmtree(work, ignore_errors=True)
    return took


def trial(server: FaultServer, url: str, path: str, size: int, mode: str, after: float, base: Path) -> dict:
    work = Path(tempfile.mkdtemp(dir=base))
    server.wait_idle(10)
    server.reset()
    proc = subprocess.Popen(command(url, mode), cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=env_for(work / ".home"))
    t0 = first_byte(work, proc)
    time.sleep(max(0.0, t0 + after - time.monotonic()))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    first = served(server, path)
    ctl = work / "k.bin.part-async.ctl"
    claimed = 0
    if ctl.exists():
        claimed = sum(int(b) - int(a) for _, a, b in (ln.split() for ln in ctl.read_text().splitlines()
                                                       if ln.startswith("range ")))
    rerun = subprocess.run(command(url, mode), cwd=work, capture_output=True, text=True, env=env_for(work / ".home"),
                           timeout=300)
    total = served(server, path)
    out = work / "k.bin"
    exact = rerun.returncode == 0 and out.exists() and sha256_file(out) == sha256_of(size)
    shutil.rmtree(work, ignore_errors=True)
    return {"mode": mode, "kill_after": round(after, 3), "first_run_sent": first, "ctl_claimed": claimed,
            "rerun_sent": total - first, "ratio": total / size, "exact": exact, "rc": rerun.returncode}


def sha256_file(path: Path) -> str:
    import hashlib
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=24 * 1000 * 1000)
    ap.add_argument("--rate", type=int, default=1000 * 1000, help="bytes/s per connection")
    ap.add_argument("--mode", choices=sorted(MODES), action="append")
    ap.add_argument("--points", type=int, default=10)
    ap.add_argument("--json", type=Path, help="write every trial here")
    args = ap.parse_args(argv)
    modes = args.mode or ["8", "auto"]
    server = FaultServer().start()
    path = f"/data/{args.size}"
    url = server.url(f"{path}?rate={args.rate}")
    base = Path(tempfile.mkdtemp(prefix="kill9-"))
    rows = []
    try:
        for mode in modes:
            took = timed_run(server, url, mode, base)
            print(f"mode {mode}: an uninterrupted run takes {took:.2f} s from its first byte", flush=True)
            for i in range(args.points):
                after = took * (i + 0.5) / args.points
                r = trial(server, url, path, args.size, mode, after, base)
                rows.append(r)
                print(f"  kill after {r['kill_after']:.2f} s: first run sent {r['first_run_sent'] / 1e6:.1f} MB, "
                      f"control file {r['ctl_claimed'] / 1e6:.1f} MB, rerun sent {r['rerun_sent'] / 1e6:.1f} MB: "
                      f"{r['ratio']:.3f}x, {'exact' if r['exact'] else 'WRONG (rc %d)' % r['rc']}", flush=True)
            ratios = [r["ratio"] for r in rows if r["mode"] == mode]
            print(f"mode {mode}: served / size median {statistics.median(ratios):.3f}x, max {max(ratios):.3f}x; "
                  f"{sum(r['exact'] for r in rows if r['mode'] == mode)}/{len(ratios)} exact", flush=True)
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0 if all(r["exact"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
