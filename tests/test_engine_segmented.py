"""One resource over several connections: splitting, range honesty, resume,
politeness and the global rate limit.  Bytes are checked by SHA-256 and the
behaviour through the fault server's request log."""

from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from faultserver import FaultServer, content, sha256_of

from yt_dlp_async import AsyncDownloadEngine

MiB = 1 << 20


def sha256_file(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(MiB), b""):
            h.update(block)
    return h.hexdigest()


def parse_range(value: str | None) -> tuple[int, int | None]:
    assert value is not None
    m = re.fullmatch(r"bytes=(\d+)-(\d*)", value)
    assert m, value
    return int(m.group(1)), int(m.group(2)) + 1 if m.group(2) else None


def test_splits_over_n_connections(fault_server: FaultServer, tmp_path: Path) -> None:
    size = 8 * MiB + 123
    out = tmp_path / "s.bin"
    with AsyncDownloadEngine() as e:
        task = e.submit(fault_server.url(f"/data/{size}?rate=4000000"), out, connections=6, min_piece=256 * 1024)
        seen = 0
        while not task.wait(0.05):
            seen = max(seen, len(task.segments()))
        res = task.result()
    assert sha256_file(out) == sha256_of(size)
    assert res.downloaded_bytes == size and res.resource_size == size
    assert seen == 6
    fault_server.wait_idle()
    reqs = fault_server.requests(f"/data/{size}")
    assert fault_server.max_concurrent_for(f"/data/{size}") <= 6
    assert reqs[0].range is None                # the first asks for everything
    # every byte was fetched once, give or take what a split cut short
    assert size <= sum(r.bytes_sent for r in reqs) <= size + 6 * 64 * 1024


def test_min_piece_keeps_small_files_on_one_connection(fault_server: FaultServer, tmp_path: Path) -> None:
    size = 3 * MiB // 2
    with AsyncDownloadEngine() as e:
        e.submit(fault_server.url(f"/data/{size}"), tmp_path / "x", connections=8, min_piece=MiB).result(30)
    assert len(fault_server.requests(f"/data/{size}")) == 1
    assert sha256_file(tmp_path / "x") == sha256_of(size)


def test_max_request_caps_every_request(fault_server: FaultServer, tmp_path: Path) -> None:
    size = 5 * MiB + 7
    cap = 512 * 1024
    with AsyncDownloadEngine() as e:
        e.submit(fault_server.url(f"/data/{size}"), tmp_path / "x", connections=4, max_request=cap).result(30)
    assert sha256_file(tmp_path / "x") == sha256_of(size)
    reqs = fault_server.requests(f"/data/{size}")
    for r in reqs:
        start, end = parse_range(r.range)
        assert end is not None and end - start <= cap
    assert len(reqs) >= size // cap


@pytest.mark.parametrize(
    "query",
    [
        "norange=1",                 # 200 to everything: one connection
        "range200=1",                # 200 + a correct Content-Range: usable
        "drop_ranges_after=2",       # ranges stop half way: restart on one connection
        "etag_change=3",             # the resource changes under us: restart clean
    ],
)
def test_range_honesty(fault_server: FaultServer, tmp_path: Path, query: str) -> None:
    size = 4 * MiB
    out = tmp_path / "h.bin"
    with AsyncDownloadEngine(retry_base_delay=0.01) as e:
        res = e.submit(fault_server.url(f"/data/{size}?{query}&rate=8000000"), out, connections=4, min_piece=256 * 1024).result(60)
    data = out.read_bytes()
    if query.startswith("etag_change"):
        assert data == content(size, 1000)       # the new version, whole
    else:
        assert hashlib.sha256(data).hexdigest() == sha256_of(size)
    assert res.downloaded_bytes == size
    reqs = fault_server.requests(f"/data/{size}")
    if query == "norange=1":
        assert len(reqs) == 1 and reqs[0].status == 200
    if query in ("drop_ranges_after=2", "etag_change=3"):
        assert res.restarted
        assert reqs[-1].range is None and reqs[-1].status == 200


def test_children_send_if_range(fault_server: FaultServer, tmp_path: Path) -> None:
    size = 4 * MiB
    with AsyncDownloadEngine() as e:
        e.submit(fault_server.url(f"/data/{size}?rate=8000000"), tmp_path / "x", connections=4, min_piece=256 * 1024).result(30)
    reqs = fault_server.requests(f"/data/{size}")
    assert len(reqs) == 4
    assert all(r.header("If-Range") == f'"0-{size}-0"' for r in reqs[1:])


def test_segment_failure_is_retried_by_range(fault_server: FaultServer, tmp_path: Path) -> None:
    size = 4 * MiB
    with AsyncDownloadEngine(retry_base_delay=0.01) as e:
        e.submit(
            fault_server.url(f"/data/{size}?reset_after=300000&times=3&rate=8000000"), tmp_path / "x", connections=4
        ).result(30)
    assert sha256_file(tmp_path / "x") == sha256_of(size)


def test_resume_from_state_file_fetches_only_the_gaps(fault_server: FaultServer, tmp_path: Path) -> None:
    size = 6 * MiB
    out, state = tmp_path / "r.bin", tmp_path / "r.state"
    url = fault_server.url(f"/data/{size}?rate=3000000")
    with AsyncDownloadEngine() as e:
        task = e.submit(url, out, connections=4, state_path=state)
        while task.progress().downloaded_bytes < 2 * MiB:
            time.sleep(0.02)
        task.cancel()
        task.wait()
    saved = state.read_text().splitlines()
    assert saved[:2] == ["yt-dlp-async resume 1", f"size {size}"]
    ranges = [tuple(map(int, line.split()[1:])) for line in saved if line.startswith("range ")]
    have = sum(b - a for a, b in ranges)
    assert have >= 2 * MiB
    fault_server.wait_idle()
    fault_server.reset()
    with AsyncDownloadEngine() as e:
        task = e.submit(url, out, connections=4, state_path=state)
        res = task.result(60)
        assert task.resumed_bytes == have
    assert sha256_file(out) == sha256_of(size)
    assert res.downloaded_bytes == size
    fault_server.wait_idle()
    refetched = sum(r.bytes_sent for r in fault_server.requests(f"/data/{size}"))
    assert refetched <= size - have + 4 * 64 * 1024
    first = fault_server.requests(f"/data/{size}")[0]
    assert first.header("If-Range") == f'"0-{size}-0"'


def test_resume_after_sigkill(fault_server: FaultServer, tmp_path: Path) -> None:
    size = 8 * MiB
    out, state = tmp_path / "k.bin", tmp_path / "k.state"
    url = fault_server.url(f"/data/{size}?rate=500000")
    script = textwrap.dedent(
        """
        import sys
        from yt_dlp_async import AsyncDownloadEngine
        e = AsyncDownloadEngine()
        t = e.submit(sys.argv[1], sys.argv[2], connections=4, state_path=sys.argv[3])
        print("started", flush=True)
        t.wait()
        """
    )
    for delay in (1.3, 1.1):           # two kills at different points
        proc = subprocess.Popen([sys.executable, "-c", script, url, str(out), str(state)], cwd="/", stdout=subprocess.PIPE)
        assert proc.stdout is not None and proc.stdout.readline() == b"started\n"
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    lines = state.read_text().splitlines()
    have = sum(int(b) - int(a) for _, a, b in (line.split() for line in lines if line.startswith("range ")))
    assert 0 < have < size
    fault_server.wait_idle()
    fault_server.reset()
    with AsyncDownloadEngine() as e:
        res = e.submit(url, out, connections=4, state_path=state).result(60)
    assert sha256_file(out) == sha256_of(size)
    assert res.downloaded_bytes == size
    fault_server.wait_idle()
    assert sum(r.bytes_sent for r in fault_server.requests(f"/data/{size}")) <= size - have + 4 * 64 * 1024


def test_a_foreign_state_file_is_ignored(fault_server: FaultServer, tmp_path: Path) -> None:
    size = 2 * MiB
    out, state = tmp_path / "f.bin", tmp_path / "f.state"
    out.write_bytes(b"x" * size)
    state.write_text("something else\nrange 0 2097152\n")
    with AsyncDownloadEngine() as e:
        task = e.submit(fault_server.url(f"/data/{size}"), out, connections=4, state_path=state)
        task.result(30)
        assert task.resumed_bytes == 0
    assert sha256_file(out) == sha256_of(size)


def test_changed_resource_on_resume_restarts_clean(fault_server: FaultServer, tmp_path: Path) -> None:
    size = 3 * MiB
    out, state = tmp_path / "c.bin", tmp_path / "c.state"
    out.write_bytes(content(size)[: MiB] + b"\0" * (size - MiB))
    state.write_text(f'yt-dlp-async resume 1\nsize {size}\netag "stale"\nlast-modified -\nrange 0 {MiB}\n')
    with AsyncDownloadEngine() as e:
        res = e.submit(fault_server.url(f"/data/{size}"), out, connections=4, state_path=state,
                       in_place=True).result(30)   # the bytes written by hand above
    assert sha256_file(out) == sha256_of(size)
    assert res.restarted
    assert fault_server.requests(f"/data/{size}")[0].header("If-Range") == '"stale"'


def test_host_window_backs_off_a_server_that_limits_connections(fault_server: FaultServer, tmp_path: Path) -> None:
    size = 6 * MiB
    with AsyncDownloadEngine(retry_base_delay=0.05, max_host_connections=16) as e:
        e.submit(
            fault_server.url(f"/data/{size}?max_conns=3&rate=4000000"), tmp_path / "x", connections=8, min_piece=256 * 1024
        ).result(60)
    assert sha256_file(tmp_path / "x") == sha256_of(size)
    reqs = fault_server.requests(f"/data/{size}")
    refused = [r for r in reqs if r.status == 429]
    assert refused, "the server never limited us: the test proves nothing"
    last_refusal = max(r.started for r in refused)
    # after the window shrank, nothing more was refused for long
    assert len(refused) <= 8
    later = [r for r in reqs if r.started > last_refusal]
    assert later and all(r.status == 206 for r in later)


def test_global_rate_limit_is_smooth(fault_server: FaultServer, tmp_path: Path) -> None:
    cap = 2_000_000
    with AsyncDownloadEngine(rate_limit=cap) as e:
        tasks = [
            e.submit(fault_server.url(f"/data/{4 * MiB}?seed={i}"), tmp_path / f"{i}", connections=2, min_piece=256 * 1024)
            for i in range(3)
        ]
        samples: list[tuple[float, int]] = []
        t0 = time.monotonic()
        while time.monotonic() - t0 < 4.0:
            samples.append((time.monotonic(), sum(t.progress().downloaded_bytes for t in tasks)))
            time.sleep(0.02)
        for t in tasks:
            t.cancel()
    # every 1-second window after the first half second: within 10% of the cap
    rates = []
    for i, (ts, nbytes) in enumerate(samples):
        if ts - samples[0][0] < 0.5:
            continue
        for tj, bj in samples[i:]:
            if tj - ts >= 1.0:
                rates.append((bj - nbytes) / (tj - ts))
                break
    assert rates
    assert min(rates) >= 0.9 * cap and max(rates) <= 1.1 * cap, (min(rates), max(rates))


def test_a_refused_connection_opens_no_more(fault_server: FaultServer, tmp_path: Path) -> None:
    """Connections the server refuses while another is transferring leave
    their ranges as gaps, and no connection opens beyond those still working
    (the server said it wants no more; new ones used to be opened at once,
    and 2 x connections refusals failed the download): the one left takes
    the gaps when its own range is done."""
    size = 4 * MiB
    path = f"/data/{size}"
    with AsyncDownloadEngine(retry_base_delay=0.01) as e:
        res = e.submit(
            fault_server.url(f"{path}?skip=1&fail=3&fail_status=410&rate=1000000"), tmp_path / "x",
            connections=4, max_request=MiB, max_retries=0,
        ).result(60)
    assert sha256_file(tmp_path / "x") == sha256_of(size)
    assert res.downloaded_bytes == size
    fault_server.wait_idle()
    reqs = fault_server.requests(path)
    assert [r.status for r in reqs].count(410) == 3        # the three split off, nothing more
    served = [r for r in reqs if r.status == 206]
    assert sorted(parse_range(r.range) for r in served) == [(k * MiB, (k + 1) * MiB) for k in range(4)]
    # each takes a second: one opened while another worked would overlap it by far more than
    # the server's bookkeeping lags behind the client on a loaded machine
    for before, after in zip(served, served[1:]):
        assert before.finished is not None
        assert after.started >= before.finished - 0.3, "a connection opened while one was still working"


@pytest.mark.parametrize("connections", ["auto", 4])
@pytest.mark.parametrize(
    "refusal",
    [
        "skip=1&fail=1000&fail_status=403",      # a single-use URL: only the first GET is served
        "skip=1&fail=1000&fail_status=410",
        "skip=1&fail=3&fail_status=429",          # the next three refused
        "max_conns=1",                            # one connection at a time
    ],
)
def test_refused_extra_connections_leave_their_range_to_the_first(
    fault_server: FaultServer, tmp_path: Path, connections: int | str, refusal: str
) -> None:
    """A server that refuses the connections split off must not fail the
    download: their ranges go back to the first connection, whose open-ended
    request reads on, so its one GET is all the download needs (as yt-dlp
    alone); with no retries inside the engine, as the plugin runs it."""
    size = 8 * MiB
    out = tmp_path / "u.bin"
    with AsyncDownloadEngine(retry_base_delay=0.01) as e:
        res = e.submit(
            fault_server.url(f"/data/{size}?{refusal}&rate=2000000"), out, connections=connections,
            min_piece=256 * 1024, max_retries=0,
        ).result(60)
    assert sha256_file(out) == sha256_of(size)
    assert res.downloaded_bytes == size
    fault_server.wait_idle()
    reqs = fault_server.requests(f"/data/{size}")
    assert len(reqs) > 1, "no connection was split off: the test proves nothing"
    served = [r for r in reqs if r.status in (200, 206)]
    assert [(r.range, r.bytes_sent) for r in served] == [(None, size)]


def test_refusals_after_a_second_connection_leave_the_ranges_to_those_working(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    """The server admits two connections, then refuses every other request
    (nginx's limit_req with a burst of two): the ranges of the refused
    connections, and of those shed on the pressure before their reply, go
    to the working connections they were cut from; no new request is needed."""
    size = 8 * MiB
    path = f"/data/{size}"
    with AsyncDownloadEngine(retry_base_delay=0.01) as e:
        res = e.submit(
            fault_server.url(f"{path}?skip=2&fail=1000&fail_status=403&rate=2000000"), tmp_path / "x",
            min_piece=256 * 1024, max_retries=0,
        ).result(60)
    assert sha256_file(tmp_path / "x") == sha256_of(size)
    assert res.downloaded_bytes == size
    fault_server.wait_idle()
    reqs = fault_server.requests(path)
    assert any(r.status == 403 for r in reqs), "nothing was refused: the test proves nothing"
    assert [r.index for r in reqs if r.status in (200, 206)] == [0, 1]
