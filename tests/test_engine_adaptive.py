"""connections="auto" (the default of a plain whole-file download): the
engine's adaptive count (csrc/adaptive.c) against real servers.  A server
that throttles each connection makes it climb; a small file on a fast server
stays on one connection; a server that answers 429 when too many connections
are open makes it give connections back; a fixed number stays fixed.  Bytes
by SHA-256, counts by the fault server's request log and the task's report;
no assertion on speed."""

from __future__ import annotations

from pathlib import Path

import pytest
from faultserver import FaultServer, content, sha256_of
from ytdlp_support import sha256_file

from yt_dlp_async import AsyncDownloadEngine

MiB = 1 << 20


def served(server: FaultServer, path: str) -> list:
    """GET requests of path that were answered with content."""
    server.wait_idle()
    return [r for r in server.requests(path) if r.status in (200, 206)]


def concurrent_at(requests: list, when: float) -> int:
    return sum(1 for r in requests if r.started <= when and (r.finished is None or r.finished > when))


@pytest.mark.parametrize("latency", ["", "&latency=100"])
def test_auto_climbs_on_a_per_connection_throttle(fault_server: FaultServer, tmp_path: Path, latency: str) -> None:
    size = 12 * MiB + 7
    out = tmp_path / "t.bin"
    with AsyncDownloadEngine() as e:
        task = e.submit(fault_server.url(f"/data/{size}?rate=1000000{latency}"), out)   # auto: the default
        res = task.result(60)
        report = task.connections()
    assert sha256_file(out) == sha256_of(size)
    assert res.downloaded_bytes == size
    assert report is not None and report.adaptive
    # 1 -> 2, then x4 while a step pays linearly (x2 if noise hid it)
    history = res.connections_history
    assert history[:2] == (1, 2) and len(history) > 2 and history[2] in (4, 8), res
    assert res.connections_peak >= 8, res
    assert fault_server.max_concurrent >= 8
    # the first request is the whole file; the others are ranges of it
    requests = served(fault_server, f"/data/{size}")
    assert requests[0].range is None
    assert all(r.range for r in requests[1:]) and len(requests) >= 4


def test_auto_keeps_a_small_file_on_one_connection(fault_server: FaultServer, tmp_path: Path) -> None:
    size = 3 * MiB
    out = tmp_path / "s.bin"
    with AsyncDownloadEngine() as e:
        res = e.submit(fault_server.url(f"/data/{size}"), out, connections="auto").result(30)
    assert sha256_file(out) == sha256_of(size)
    # done before a step could be measured: never split
    assert res.connections_history == (1,) and res.connections_peak == 1, res
    assert res.connections_note == "none"
    requests = fault_server.requests(f"/data/{size}")
    assert len(requests) == 1 and requests[0].range is None


def test_pressure_gives_connections_back(fault_server: FaultServer, tmp_path: Path) -> None:
    # the server answers 429 (Retry-After: 0) to a fourth connection at once
    size = 16 * MiB
    path = f"/data/{size}"
    out = tmp_path / "p.bin"
    with AsyncDownloadEngine() as e:
        res = e.submit(fault_server.url(f"{path}?rate=1000000&max_conns=3&retry_after=0"), out).result(60)
    assert sha256_file(out) == sha256_of(size)
    history = list(res.connections_history)
    top = history.index(max(history))
    assert max(history) >= 4 and min(history[top:]) <= 2, history    # halved after the 429
    log = fault_server.requests(path)
    refused = [r for r in log if r.status == 429]
    assert refused, [r.status for r in log]
    # one burst, not a storm: the refusals of one x4 step (2 -> 8: six new
    # connections, three over the limit plus the ones racing them) and at
    # most one more try before the target is back at what ran
    assert len(refused) <= 7, [r.status for r in log]
    # a second after the first 429, at most two connections transfer
    ok = [r for r in log if r.status in (200, 206)]
    assert concurrent_at(ok, refused[0].started + 1.0) <= 2


@pytest.mark.parametrize("n", [1, 4])
def test_a_number_is_fixed(fault_server: FaultServer, tmp_path: Path, n: int) -> None:
    size = 4 * MiB
    out = tmp_path / "f.bin"
    with AsyncDownloadEngine() as e:
        task = e.submit(fault_server.url(f"/data/{size}?rate=2000000"), out, connections=n,
                        min_piece=256 * 1024)
        res = task.result(30)
        report = task.connections()
    assert sha256_file(out) == sha256_of(size)
    assert fault_server.max_concurrent in (n, n + 1)   # + one cut at a split point, closing
    if n == 1:
        assert report is None and res.connections_note is None
    else:
        assert report is not None and not report.adaptive and report.note == "fixed"
        assert res.connections_history == (n,) and res.connections_peak == n


def test_bad_connections_values(fault_server: FaultServer, tmp_path: Path) -> None:
    with AsyncDownloadEngine() as e:
        with pytest.raises(TypeError, match="whole number or 'auto'"):
            e.submit(fault_server.url("/data/10"), tmp_path / "a", connections="many")
        with pytest.raises(ValueError, match="or 'auto'"):
            e.submit(fault_server.url("/data/10"), tmp_path / "a", connections=0)
    assert not (tmp_path / "a").exists()


def test_auto_resumes_from_the_control_file(fault_server: FaultServer, tmp_path: Path) -> None:
    # a control file written by a fixed count resumes under auto, exact
    size = 6 * MiB
    url = fault_server.url(f"/data/{size}?rate=3000000")
    out, state = tmp_path / "r.bin", tmp_path / "r.ctl"
    with AsyncDownloadEngine() as e:
        task = e.submit(url, out, connections=4, min_piece=256 * 1024, state_path=state)
        while task.progress().downloaded_bytes < 2 * MiB and not task.done():
            task.wait(0.05)
        task.cancel()
        task.wait(10)
    assert state.exists()
    fault_server.reset()
    with AsyncDownloadEngine() as e:
        task = e.submit(url, out, state_path=state)
        assert task.resumed_bytes >= 2 * MiB
        res = task.result(60)
    assert sha256_file(out) == sha256_of(size) and res.downloaded_bytes == size
    assert all(r.range for r in fault_server.requests(f"/data/{size}"))   # only what was missing


def test_a_split_download_reports_like_a_plain_one(fault_server: FaultServer, tmp_path: Path) -> None:
    # auto made every plain download a split one: its result must say what a
    # plain transfer's says (fixed counts had these gaps too)
    with AsyncDownloadEngine(retry_base_delay=0.01) as e:
        # an empty resource is complete, not "0 of 0 bytes"
        empty = e.submit(fault_server.url("/data/0"), tmp_path / "e", connections=4).result(30)
        assert empty.downloaded_bytes == 0 and (tmp_path / "e").stat().st_size == 0
        # the reply's headers, and every connection's retries
        res = e.submit(fault_server.url("/data/300000?fail=1&fail_status=500"), tmp_path / "h",
                       connections=4).result(30)
        assert res.headers.get("content-type") == "application/octet-stream", res.headers
        assert res.retries == 1
        # the resource changed under the only (open-ended) connection: restarted, new validator
        res = e.submit(fault_server.url("/data/500000?reset_after=100000&etag_change=1"), tmp_path / "r",
                       connections=4).result(30)
        assert res.restarted and res.etag == '"0-500000-1"', res
    assert sha256_file(tmp_path / "h") == sha256_of(300000)
    assert (tmp_path / "r").read_bytes() == content(500000, 1000)


def test_a_server_that_admits_two_requests_and_shares_its_bandwidth(fault_server: FaultServer, tmp_path: Path) -> None:
    # issue 18: the second connection adds no speed and is given back; the
    # rest of its range must not cost a third request (403 here): 20 runs,
    # five at a time, each its own key (its own two requests, its own link)
    size = 6 * MiB + 11
    path = f"/data/{size}"
    results = []
    with AsyncDownloadEngine() as e:
        for batch in range(4):
            tasks = [(i, e.submit(fault_server.url(f"{path}?key={i}&admit=2&share_rate=1000000"),
                                  tmp_path / f"a{i}.bin"))
                     for i in range(batch * 5, batch * 5 + 5)]
            for i, task in tasks:
                try:
                    res = task.result(120)
                    results.append((i, sha256_file(tmp_path / f"a{i}.bin") == sha256_of(size),
                                    res.connections_history))
                except Exception as exc:          # noqa: BLE001 - the failure is what is counted
                    results.append((i, False, repr(exc)))
    log = fault_server.requests(path)
    assert [r for r in results if not r[1]] == [], (results, [(r.range, r.status, r.outcome) for r in log])
    assert not [r for r in log if r.status == 403]
    # the climb was tried: the second connection was opened
    assert any(len(h) > 1 for _, _, h in results), results
