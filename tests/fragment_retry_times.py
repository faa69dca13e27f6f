"""Times of yt-dlp alone (the hook disabled) and with the plugin on an HLS stream with faults (issue 18).

    cd tests && ../.venv/bin/python fragment_retry_times.py "{i: {'reset_after': 100000, 'times': -1} for i in range(6)}" \
        6 500000 3 --fragment-retries 3 --retry-sleep 0

Arguments: the faults per segment (a Python expression), the number of segments, their size, the runs per
side, then yt-dlp's options.  Prints each run (time, exit code, bytes right, retry lines) and the medians.
Not a test: no time is asserted anywhere.
"""

from __future__ import annotations

import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import fragment_streams as fs
from faultserver import FaultServer
from ytdlp_support import run_ytdlp


def main(argv: list[str]) -> None:
    faults = eval(argv[0], {})  # noqa: S307 - the caller's own expression, e.g. a dict comprehension
    count, size, runs, extra = int(argv[1]), int(argv[2]), int(argv[3]), argv[4:]
    segments = [os.urandom(size) for _ in range(count)]
    root = Path(tempfile.mkdtemp(prefix='fragment-retry-times-'))
    with FaultServer('127.0.0.1') as server:
        for side in ('alone', 'plugin'):
            times = []
            for run in range(runs):
                stream = fs.hls_stream(server, f'{side}{run}', segments, faults=faults)
                work = root / f'{side}{run}'
                work.mkdir()
                info = fs.write_info(work, stream)
                switch = [] if side == 'alone' else [fs.ENGINE]
                start = time.monotonic()
                proc = run_ytdlp(['-v', *fs.COMMON_ARGS, *switch, '--load-info-json', str(info), '-o', 'out.%(ext)s',
                                  *extra], work, disable_hook=side == 'alone')
                times.append(time.monotonic() - start)
                out = work / 'out.mp4'
                lines = [line for line in re.split(r'[\r\n]+|(?=\[download\] Got)', proc.stdout + proc.stderr)
                         if re.search('Retrying|Skipping|Giving up', line) and '{' not in line]
                print(f'{side} run {run}: {times[-1]:.2f} s, exit {proc.returncode}, '
                      f'bytes right {out.is_file() and out.read_bytes() == stream.expected}, {len(lines)} retry lines')
            print(f'{side}: median {statistics.median(times):.2f} s; load average {os.getloadavg()}')
    shutil.rmtree(root, ignore_errors=True)


if __name__ == '__main__':
    main(sys.argv[1:])
