"""The run's summary line (yt_dlp_async/ytdlp/summary.py) and ``engine.stats()`` (issue 11).

yt-dlp runs as users run it (``python -m yt_dlp`` against the fault server);
every figure of the line is checked against what the server served and logged.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from faultserver import sha256_of
from ytdlp_support import output, page_url, require_engine, require_hook, run_ytdlp, sha256_file, video_path

SUMMARY = re.compile(
    r'^\[async\] (\d+) files?(?: \((\d+) failed\))?, ([\d.]+ (?:B|KiB|MiB|GiB)) in ([\d.]+) s'
    r'(?: \([\d.]+ (?:B|KiB|MiB|GiB)/s\))?; (\d+) (?:retry|retries), (\d+) connections?, (\d+) fallbacks?$')


@pytest.fixture(autouse=True)
def _installed() -> None:
    require_hook()
    require_engine()


def summaries(text: str) -> list[re.Match[str]]:
    return [m for m in (SUMMARY.match(line) for line in text.splitlines()) if m]


def summary_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if re.match(r'\[async\] \d+ files?[ ,]', line)]


def gib(n: int) -> str:
    from yt_dlp_async.ytdlp.summary import format_bytes
    return format_bytes(n)


def run(args: list[str], cwd: Path):  # type: ignore[no-untyped-def]
    cwd.mkdir(parents=True, exist_ok=True)
    return run_ytdlp(['--retry-sleep', '0', *args], cwd)


SIZES = {1: 300_001, 2: 450_002, 3: 600_003}


def test_format_bytes_units() -> None:
    from yt_dlp_async.ytdlp.summary import format_bytes
    assert [format_bytes(n) for n in (0, 1023, 1024, 1536, 6 * 1024 * 1024, 3 << 30)] == [
        '0 B', '1023 B', '1.0 KiB', '1.5 KiB', '6.0 MiB', '3.0 GiB']


def test_playlist_of_three_prints_one_line(tmp_path: Path, fault_server) -> None:
    # -v: in a pipe the line is printed only under -v (test_ytdlp_output.py: none without it, one on a terminal)
    url = page_url(fault_server, [video_path(i, SIZES[i]) for i in SIZES])
    proc = run(['-v', '-o', '%(playlist_index)s.%(ext)s', url], tmp_path)
    assert proc.returncode == 0, output(proc)
    for i, size in SIZES.items():
        assert sha256_file(tmp_path / f'{i}.mp4') == sha256_of(size, i)
    found = summaries(proc.stdout)
    assert len(summary_lines(proc.stdout + proc.stderr)) == 1 and len(found) == 1, output(proc)
    m = found[0]
    assert m.group(1) == '3' and m.group(2) is None
    assert m.group(3) == gib(sum(SIZES.values()))
    assert (m.group(5), m.group(7)) == ('0', '0')
    # connections: what libcurl opened, as the server saw them (only the engine fetched /data)
    fault_server.wait_idle(5.0)
    conns = {e.conn_id for e in fault_server.log if e.path.startswith('/data/')}
    assert int(m.group(6)) == len(conns), output(proc)
    # the line is the run's last (after the playlist's own last line)
    assert proc.stdout.rstrip().splitlines()[-1] == m.group(0)


def test_one_download_prints_none_unless_verbose(tmp_path: Path, fault_server) -> None:
    url = fault_server.url(video_path(7, 200_007))
    proc = run(['-o', 'a.%(ext)s', url], tmp_path / 'plain')
    assert proc.returncode == 0, output(proc)
    assert sha256_file(tmp_path / 'plain' / 'a.mp4') == sha256_of(200_007, 7)
    assert summary_lines(proc.stdout + proc.stderr) == [], output(proc)

    verbose = run(['-v', '-o', 'a.%(ext)s', url], tmp_path / 'verbose')
    assert verbose.returncode == 0, output(verbose)
    found = summaries(verbose.stdout)
    assert len(found) == 1 and len(summary_lines(verbose.stdout + verbose.stderr)) == 1, output(verbose)
    assert found[0].group(1) == '1' and found[0].group(3) == gib(200_007)


def test_quiet_prints_none(tmp_path: Path, fault_server) -> None:
    url = page_url(fault_server, [video_path(i, SIZES[i]) for i in SIZES])
    proc = run(['-q', '-o', '%(playlist_index)s.%(ext)s', url], tmp_path)
    assert proc.returncode == 0, output(proc)
    assert sorted(p.name for p in tmp_path.glob('*.mp4')) == ['1.mp4', '2.mp4', '3.mp4']
    assert summary_lines(proc.stdout + proc.stderr) == [], output(proc)


def test_a_503_then_success_is_one_retry(tmp_path: Path, fault_server) -> None:
    # skip=1: the generic extractor's probe is not the failing request
    path = video_path(8, 150_008, fail=1, skip=1)
    proc = run(['-v', '-o', 'r.%(ext)s', fault_server.url(path)], tmp_path)
    assert proc.returncode == 0, output(proc)
    assert sha256_file(tmp_path / 'r.mp4') == sha256_of(150_008, 8)
    fault_server.wait_idle(5.0)
    statuses = [e.status for e in fault_server.log if e.method == 'GET' and e.path.startswith('/data/')]
    assert statuses == [200, 503, 200], statuses   # probe, the failure, the download
    found = summaries(proc.stdout)
    assert len(found) == 1, output(proc)
    assert found[0].group(1) == '1' and found[0].group(5) == str(statuses.count(503))
    assert found[0].group(3) == gib(150_008)


def test_engine_retries_are_counted(tmp_path: Path, fault_server) -> None:
    # --async-max-retries 2: the engine retries the 503s itself, yt-dlp sees none
    path = video_path(9, 120_009, fail=2, skip=1)
    proc = run(['-v', '--async-max-retries', '2', '--async-retry-delay', '0.01', '-o', 'e.%(ext)s',
                fault_server.url(path)], tmp_path)
    assert proc.returncode == 0, output(proc)
    assert sha256_file(tmp_path / 'e.mp4') == sha256_of(120_009, 9)
    assert 'Retrying' not in proc.stdout + proc.stderr, output(proc)
    fault_server.wait_idle(5.0)
    failed = [e for e in fault_server.log if e.path.startswith('/data/') and e.status == 503]
    found = summaries(proc.stdout)
    assert len(found) == 1 and found[0].group(5) == str(len(failed)) == '2', output(proc)


def test_a_fallback_is_counted(tmp_path: Path, fault_server) -> None:
    # --legacy-server-connect has no libcurl equivalent: yt-dlp's HttpFD takes both URLs
    urls = [fault_server.url(video_path(i, SIZES[i])) for i in (1, 2)]
    proc = run(['-v', '--legacy-server-connect', '-o', 'f%(autonumber)s.%(ext)s', *urls], tmp_path)
    assert proc.returncode == 0, output(proc)
    assert sha256_file(tmp_path / 'f00001.mp4') == sha256_of(SIZES[1], 1)
    assert sha256_file(tmp_path / 'f00002.mp4') == sha256_of(SIZES[2], 2)
    found = summaries(proc.stdout)
    assert len(found) == 1, output(proc)
    assert (found[0].group(1), found[0].group(7), found[0].group(3)) == ('0', '2', '0 B'), output(proc)


def test_engine_stats_after_downloads(tmp_path: Path, fault_server) -> None:
    import yt_dlp_async
    sizes = [70_000, 130_000, 1_000_001]
    with yt_dlp_async.AsyncDownloadEngine(retry_base_delay=0.01) as engine:
        assert engine.stats() == yt_dlp_async.EngineStats()
        tasks = [engine.submit(fault_server.url(f'/data/{size}?seed={i}'), tmp_path / f'{i}.bin')
                 for i, size in enumerate(sizes)]
        tasks.append(engine.submit(fault_server.url('/data/50000?fail=1&key=retry'), tmp_path / 'r.bin'))
        for task in tasks:
            task.result(30)
        missing = engine.submit(fault_server.url('/data/1000?status=404'), tmp_path / 'gone.bin')
        with pytest.raises(yt_dlp_async.HTTPStatusError):
            missing.result(30)
    stats = engine.stats()  # still readable after close()
    for i, size in enumerate(sizes):
        assert sha256_file(tmp_path / f'{i}.bin') == sha256_of(size, i)
    assert isinstance(stats, yt_dlp_async.EngineStats)
    with pytest.raises(AttributeError):
        stats.files = 0  # type: ignore[misc]  # frozen
    assert stats.files == len(sizes) + 1
    assert stats.failures == 1
    assert stats.bytes == sum(sizes) + 50_000
    assert stats.retries == 1
    fault_server.wait_idle(5.0)
    assert stats.connections == len({e.conn_id for e in fault_server.log})
    assert stats.seconds > 0 and stats.speed is not None
