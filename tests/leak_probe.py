"""make leakcheck: exercise every engine path under valgrind, then read its
"definitely lost" line.  Plain downloads with resets and retries, a
segmented download with a control file, a 404, a body kept in memory, and a
stalled transfer cancelled by close(), three engines in a row."""

from __future__ import annotations

import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from faultserver import FaultServer  # noqa: E402

from yt_dlp_async import AsyncDownloadEngine  # noqa: E402


def main() -> None:
    with tempfile.TemporaryDirectory() as d, FaultServer() as srv:
        for n in range(3):
            with AsyncDownloadEngine(retry_base_delay=0.01, stall_timeout=1) as e:
                tasks = [
                    e.submit(srv.url(f"/data/300000?seed={i}&reset_after=100000&key={n}"), f"{d}/p{i}")
                    for i in range(20)
                ]
                tasks.append(e.submit(srv.url(f"/data/{4 << 20}?key={n}"), f"{d}/seg", connections=4,
                                      state_path=f"{d}/seg.ctl", min_piece=256 * 1024))
                tasks.append(e.submit(srv.url("/data/1000?status=404"), f"{d}/404"))
                memory = e.submit(srv.url("/data/100000"), memory=True)
                slow = e.submit(srv.url("/data/1000000?stall_after=1000&stall=60"), f"{d}/slow")
                for t in tasks:
                    t.wait()
                assert len(memory.body()) == 100000
            assert slow.progress().state == "cancelled"
    print("leak probe: done")


if __name__ == "__main__":
    main()
