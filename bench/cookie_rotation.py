#!/usr/bin/env python3
"""Issue 16, case 12: an HLS stream whose segment replies set a cookie that changes every time.

Runs one stream through yt-dlp alone (``--no-async-downloads``) and through the
plugin, each on its own segment files, and prints the wall time, whether the
output is byte-exact, and the segment requests the server saw (by status)::

    python bench/cookie_rotation.py                       # 120 segments, cookie_chain, 50 ms latency
    python bench/cookie_rotation.py --mode set_cookie_seq --segments 300 --latency 0

``cookie_chain``: each reply issues the next token and a request without the
latest one gets 403 (a rotating token); ``set_cookie_seq``: a new value on every
reply, nothing required.  Timing only; the tests (tests/test_ytdlp_faults_alone.py)
assert the outcomes.
"""

from __future__ import annotations

import argparse
import collections
import sys
import time
from pathlib import Path
import tempfile

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / 'tests'))

import fragment_streams as fs  # noqa: E402
from faultserver import FaultServer  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--mode', choices=['cookie_chain', 'set_cookie_seq'], default='cookie_chain')
    parser.add_argument('--segments', type=int, default=120)
    parser.add_argument('--latency', type=int, default=50, help='ms before each segment reply')
    args = parser.parse_args()
    with FaultServer() as server, tempfile.TemporaryDirectory() as tmp:
        segments = fs.random_segments(args.segments)
        for switch in (fs.NATIVE, fs.ENGINE):
            name = 'alone' if switch == fs.NATIVE else 'plugin'
            params = {args.mode: f'tok{name}', **({'latency': args.latency} if args.latency else {})}
            stream = fs.hls_stream(server, name, segments, faults={i: params for i in range(args.segments)})
            started = time.monotonic()
            proc = fs.run_one(Path(tmp) / name, stream, switch)
            elapsed = time.monotonic() - started
            out = Path(tmp) / name / 'out.mp4'
            exact = out.exists() and out.read_bytes() == stream.expected
            statuses = collections.Counter(e.status for e in server.log if e.path.startswith(f'/file/{name}/seg'))
            print(f'{name:6} exit {proc.returncode} exact {exact} {elapsed:6.2f} s  requests {dict(statuses)}')


if __name__ == '__main__':
    main()
