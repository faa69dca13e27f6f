"""yt-dlp with --async-connections auto (the default): the connection count
follows the server (csrc/adaptive.c), and -v says what was decided, one line
per download at its end.  Bytes by SHA-256, counts by the fault server's
request log; no assertion on speed."""

from __future__ import annotations

import concurrent.futures
import re
from pathlib import Path

import pytest
from faultserver import sha256_of
from ytdlp_support import (
    ENGINE_LINE, get_requests, output, require_engine, require_hook, run_ytdlp, sha256_file, write_info_json)

MiB = 1 << 20
LINE = re.compile(r'^\[debug\] \[async\] (?P<name>\S+): (?P<steps>\d+(?: -> \d+)*) connections?, '
                  r'peak (?P<peak>\d+); (?P<why>.+)$', re.M)


@pytest.fixture(autouse=True)
def _installed() -> None:
    require_hook()
    require_engine()


def connection_lines(stderr: str) -> list[re.Match[str]]:
    return list(LINE.finditer(stderr))


def test_default_climbs_on_a_per_connection_throttle(tmp_path: Path, fault_server) -> None:
    size = 12 * MiB + 5
    info = write_info_json(tmp_path / 'i.json', fault_server.data_url(size, 'mp4', rate=1_000_000))
    proc = run_ytdlp(['-v', '--load-info-json', str(info), '-o', 'a.mp4'], tmp_path)
    assert proc.returncode == 0, output(proc)
    assert ENGINE_LINE in proc.stderr
    assert sha256_file(tmp_path / 'a.mp4') == sha256_of(size)
    assert not list(tmp_path.glob('a.mp4.*'))
    lines = connection_lines(proc.stderr)
    assert len(lines) == 1, output(proc)
    steps = [int(n) for n in lines[0]['steps'].split(' -> ')]
    # 1 -> 2, then x4 while a step pays linearly (x2 if noise hid it)
    assert lines[0]['name'] == 'a.mp4' and steps[:2] == [1, 2] and steps[2] in (4, 8), lines[0][0]
    assert int(lines[0]['peak']) >= 8, lines[0][0]
    assert fault_server.max_concurrent >= 8
    ranges = [r.range for r in get_requests(fault_server, f'/data/{size}.mp4')]
    assert ranges[0] is None and all(ranges[1:]) and len(ranges) >= 4, ranges


def test_default_keeps_a_small_file_on_one_connection(tmp_path: Path, fault_server) -> None:
    size = 2 * MiB
    info = write_info_json(tmp_path / 'i.json', fault_server.data_url(size, 'mp4'))
    proc = run_ytdlp(['-v', '--load-info-json', str(info), '-o', 's.mp4'], tmp_path)
    assert proc.returncode == 0, output(proc)
    assert sha256_file(tmp_path / 's.mp4') == sha256_of(size)
    requests = get_requests(fault_server, f'/data/{size}.mp4')
    assert len(requests) == 1 and requests[0].range is None, [r.range for r in requests]
    assert '[debug] [async] s.mp4: 1 connection, peak 1; done before a step could be measured' \
        in proc.stderr, output(proc)


def test_a_fixed_number_means_exactly_that(tmp_path: Path, fault_server) -> None:
    size = 6 * MiB
    info = write_info_json(tmp_path / 'i.json', fault_server.data_url(size, 'mp4', rate=2_000_000))
    proc = run_ytdlp(['-v', '--async-connections', '4', '--chunk-size', '256K', '--load-info-json', str(info),
                      '-o', 'f.mp4'], tmp_path)
    assert proc.returncode == 0, output(proc)
    assert sha256_file(tmp_path / 'f.mp4') == sha256_of(size)
    assert 4 <= fault_server.max_concurrent <= 5     # + one cut at a split point, closing
    assert '[debug] [async] f.mp4: 4 connections, peak 4; fixed at 4' in proc.stderr, output(proc)


@pytest.mark.parametrize('query, args, line', [
    ({'norange': 1}, [], '1 connection, peak 1; not split: the server ignores ranges'),
    ({'no_length': 1}, [], '1 connection, peak 1; not split: the server sent no length'),
    ({'no_length': 1}, ['--async-connections', '1'], '1 connection, not split: fixed by --async-connections 1'),
])
def test_the_line_says_why_a_file_is_not_split(tmp_path: Path, fault_server, query: dict[str, int],
                                               args: list[str], line: str) -> None:
    size = 1 * MiB
    info = write_info_json(tmp_path / 'i.json', fault_server.data_url(size, 'mp4', **query))
    proc = run_ytdlp(['-v', *args, '--load-info-json', str(info), '-o', 'n.mp4'], tmp_path)
    assert proc.returncode == 0, output(proc)
    assert sha256_file(tmp_path / 'n.mp4') == sha256_of(size)
    assert f'[debug] [async] n.mp4: {line}' in proc.stderr, output(proc)
    # without -v: no line
    proc = run_ytdlp([*args, '--load-info-json', str(info), '-o', 'p.mp4'], tmp_path)
    assert proc.returncode == 0 and 'connection' not in proc.stderr, output(proc)


@pytest.mark.parametrize('value', ['auto', 'AUTO'])
def test_auto_is_a_value(tmp_path: Path, fault_server, value: str) -> None:
    size = 1 * MiB
    info = write_info_json(tmp_path / 'i.json', fault_server.data_url(size, 'mp4'))
    proc = run_ytdlp(['-v', '--async-connections', value, '--load-info-json', str(info), '-o', 'x.mp4'], tmp_path)
    assert proc.returncode == 0, output(proc)
    assert sha256_file(tmp_path / 'x.mp4') == sha256_of(size)
    assert len(connection_lines(proc.stderr)) == 1, output(proc)


@pytest.mark.parametrize('value', ['0', '65', 'some', ''])
def test_bad_values_are_usage_errors(tmp_path: Path, value: str) -> None:
    proc = run_ytdlp(['--async-connections', value, 'http://127.0.0.1:9/x'], tmp_path)
    assert proc.returncode == 2, output(proc)
    assert f"option --async-connections: invalid value {value!r}: expected auto, or a whole number from 1 to 64" \
        in proc.stderr, output(proc)


def test_a_server_that_admits_two_requests_and_shares_its_bandwidth(tmp_path: Path, fault_server) -> None:
    # issue 18: the second connection adds no speed and is given back after
    # its first bytes; the rest of its range must not cost a third request,
    # which this server refuses with 403 (yt-dlp alone needs one).  Eight
    # runs, four at a time, each with its own key: its own two requests and
    # its own link.
    size = 6 * MiB + 3

    def one(i: int) -> tuple[int, str, bool]:
        work = tmp_path / f'r{i}'
        work.mkdir()
        info = write_info_json(work / 'i.json', fault_server.data_url(size, 'mp4', key=i, admit=2,
                                                                       share_rate=1_000_000))
        proc = run_ytdlp(['-v', '--load-info-json', str(info), '-o', 'a.mp4'], work)
        exact = proc.returncode == 0 and sha256_file(work / 'a.mp4') == sha256_of(size)
        return proc.returncode, output(proc), exact

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        runs = list(pool.map(one, range(8)))
    log = get_requests(fault_server, f'/data/{size}.mp4')
    assert all(exact for _, _, exact in runs), [out for rc, out, exact in runs if not exact][:1]
    assert not [r for r in log if r.status == 403], [(r.range, r.status) for r in log]
    steps = [connection_lines(out)[0]['steps'] for _, out, _ in runs]
    assert any(s.startswith('1 -> 2') for s in steps), steps      # the climb was tried
