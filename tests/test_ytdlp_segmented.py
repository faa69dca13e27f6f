"""yt-dlp with one file over several connections: bytes, the
request log, resume after SIGKILL through the control file, and the cases
that stay on one connection (--no-part, stdout, --async-connections 1)."""

from __future__ import annotations

import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
from faultserver import content, sha256_of
from ytdlp_support import (
    ENGINE_LINE, PYTHON, get_requests, hermetic_env, output, require_engine, require_hook, run_ytdlp,
    sha256_file, write_info_json)

MiB = 1 << 20


@pytest.fixture(autouse=True)
def _installed() -> None:
    require_hook()
    require_engine()


def ranges_of(requests: list) -> list[tuple[int, int | None]]:
    out = []
    for r in requests:
        if r.range is None:
            out.append((0, None))
            continue
        m = re.fullmatch(r'bytes=(\d+)-(\d*)', r.range)
        assert m, r.range
        out.append((int(m.group(1)), int(m.group(2)) + 1 if m.group(2) else None))
    return out


def test_file_over_several_connections(tmp_path: Path, fault_server) -> None:
    size = 6 * MiB + 99
    info = write_info_json(tmp_path / 'i.json', fault_server.data_url(size, 'mp4', rate=3_000_000))
    proc = run_ytdlp(['-v', '--async-connections', '4', '--chunk-size', '256K', '--load-info-json', str(info),
                      '-o', 'v.mp4'], tmp_path)
    assert proc.returncode == 0, output(proc)
    assert ENGINE_LINE in proc.stderr
    assert sha256_file(tmp_path / 'v.mp4') == sha256_of(size)
    assert not list(tmp_path.glob('v.mp4.*'))       # no temp or control file left
    path = f'/data/{size}.mp4'
    # four at once (five while a connection cut at a split point closes)
    assert 4 <= fault_server.max_concurrent <= 5
    assert len(get_requests(fault_server, path)) >= 4
    assert '100% of' in proc.stdout                 # yt-dlp's own progress line


def test_eight_connections_and_N_counts(tmp_path: Path, fault_server) -> None:
    # a fixed number means exactly that many (the default, auto, is in test_ytdlp_adaptive.py)
    size = 8 * MiB
    info = write_info_json(tmp_path / 'i.json', fault_server.data_url(size, 'mp4', rate=4_000_000, key='a'))
    assert run_ytdlp(['--async-connections', '8', '--chunk-size', '256K', '--load-info-json', str(info),
                      '-o', 'a.mp4'], tmp_path).returncode == 0
    # a connection cut short at a split point can still be finishing on the
    # server's side when its successor starts: allow that one overlap
    assert 8 <= fault_server.max_concurrent <= 9
    fault_server.reset()
    info = write_info_json(tmp_path / 'j.json', fault_server.data_url(size, 'mp4', rate=4_000_000, key='b'))
    assert run_ytdlp(['-N', '3', '--chunk-size', '256K', '--load-info-json', str(info), '-o', 'b.mp4'],
                     tmp_path).returncode == 0
    assert 3 <= fault_server.max_concurrent <= 4
    assert sha256_file(tmp_path / 'a.mp4') == sha256_file(tmp_path / 'b.mp4') == sha256_of(size)


def test_http_chunk_size_caps_every_request(tmp_path: Path, fault_server) -> None:
    size = 3 * MiB
    info = write_info_json(tmp_path / 'i.json', fault_server.data_url(size, 'mp4'),
                           downloader_options={'http_chunk_size': 512 * 1024})
    proc = run_ytdlp(['--load-info-json', str(info), '-o', 'c.mp4'], tmp_path)
    assert proc.returncode == 0, output(proc)
    assert sha256_file(tmp_path / 'c.mp4') == sha256_of(size)
    spans = ranges_of(get_requests(fault_server, f'/data/{size}.mp4'))
    assert all(end is not None and end - start <= 512 * 1024 for start, end in spans), spans


def test_sigkill_then_rerun_resumes_from_the_control_file(tmp_path: Path, fault_server) -> None:
    size = 6 * MiB
    info = write_info_json(tmp_path / 'i.json', fault_server.data_url(size, 'mp4', rate=500_000))
    sparse, ctl = tmp_path / 'k.mp4.part-async', tmp_path / 'k.mp4.part-async.ctl'
    proc = subprocess.Popen([PYTHON, '-m', 'yt_dlp', '--async-connections', '4', '--load-info-json', str(info),
                             '-o', 'k.mp4'], cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=hermetic_env(tmp_path / '.home'))
    deadline = time.monotonic() + 30
    while not (ctl.exists() and 'range ' in ctl.read_text()) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1.0)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    # native yt-dlp never sees a file with holes under NAME.part or NAME
    assert not (tmp_path / 'k.mp4.part').exists() and not (tmp_path / 'k.mp4').exists()
    have = sum(int(b) - int(a) for _, a, b in (line.split() for line in ctl.read_text().splitlines()
                                                 if line.startswith('range ')))
    assert 0 < have < size
    data = sparse.read_bytes()
    for line in ctl.read_text().splitlines():
        if line.startswith('range '):
            a, b = map(int, line.split()[1:])
            assert data[a:b] == content(size)[a:b]        # the control file never runs ahead of the data
    fault_server.wait_idle()
    fault_server.reset()
    # a .part of a run without the plugin in between: resumed from ours, and not left behind
    (tmp_path / 'k.mp4.part').write_bytes(content(size)[:100_000])
    proc2 = run_ytdlp(['--async-connections', '4', '--load-info-json', str(info), '-o', 'k.mp4'], tmp_path)
    assert proc2.returncode == 0, output(proc2)
    assert f'Resuming download at byte {have}' in proc2.stdout
    assert sha256_file(tmp_path / 'k.mp4') == sha256_of(size)
    fault_server.wait_idle()
    fetched = sum(r.bytes_sent for r in get_requests(fault_server, f'/data/{size}.mp4'))
    assert fetched <= size - have + 4 * 64 * 1024
    assert not sparse.exists() and not ctl.exists() and not (tmp_path / 'k.mp4.part').exists()


@pytest.mark.parametrize('args', [['--no-part'], ['--async-connections', '1']])
def test_in_order_over_one_connection(tmp_path: Path, fault_server, args: list[str]) -> None:
    size = 4 * MiB
    info = write_info_json(tmp_path / 'i.json', fault_server.data_url(size, 'mp4'))
    proc = run_ytdlp([*args, '--load-info-json', str(info), '-o', 'o.mp4'], tmp_path)
    assert proc.returncode == 0, output(proc)
    assert sha256_file(tmp_path / 'o.mp4') == sha256_of(size)
    assert [r.range for r in get_requests(fault_server, f'/data/{size}.mp4')] == [None]


def test_stdout_is_one_connection_in_order(tmp_path: Path, fault_server) -> None:
    size = 3 * MiB
    info = write_info_json(tmp_path / 'i.json', fault_server.data_url(size, 'mp4'))
    proc = subprocess.run([PYTHON, '-m', 'yt_dlp', '--load-info-json', str(info), '-o', '-'], cwd=tmp_path,
                          capture_output=True, env=hermetic_env(tmp_path / '.home'), timeout=60)
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    assert proc.stdout == content(size)
    assert len(get_requests(fault_server, f'/data/{size}.mp4')) == 1


def test_server_without_ranges_gives_one_connection(tmp_path: Path, fault_server) -> None:
    size = 4 * MiB
    info = write_info_json(tmp_path / 'i.json', fault_server.data_url(size, 'mp4', norange=1))
    proc = run_ytdlp(['--load-info-json', str(info), '-o', 'n.mp4'], tmp_path)
    assert proc.returncode == 0, output(proc)
    assert sha256_file(tmp_path / 'n.mp4') == sha256_of(size)
    assert [r.status for r in get_requests(fault_server, f'/data/{size}.mp4')] == [200]


def test_max_filesize_leaves_nothing(tmp_path: Path, fault_server) -> None:
    info = write_info_json(tmp_path / 'i.json', fault_server.data_url(3 * MiB, 'mp4', rate=1_000_000))
    proc = run_ytdlp(['--max-filesize', '1M', '--load-info-json', str(info), '-o', 'm.mp4'], tmp_path)
    assert 'File is larger than max-filesize (3145728 bytes > 1048576 bytes). Aborting.' in proc.stdout, output(proc)
    assert not list(tmp_path.glob('m.mp4*'))


@pytest.mark.parametrize('fault', ['no_length', 'chunked'])
@pytest.mark.parametrize('limit', [['--max-filesize', '500K'], ['--min-filesize', '5M']], ids=['max', 'min'])
def test_a_size_no_header_gave_is_not_checked(tmp_path: Path, fault_server, fault: str, limit: list[str]) -> None:
    """yt-dlp checks --max/--min-filesize against the announced length only: a
    reply without one is kept whatever its size (the plugin used to delete it
    once read, exit 0 and no file)."""
    size = 2_000_000
    info = write_info_json(tmp_path / 'i.json', fault_server.data_url(size, 'mp4', **{fault: 1}))
    for name, disable in (('alone', True), ('plugin', False)):
        proc = run_ytdlp([*limit, '-v', '--load-info-json', str(info), '-o', f'{name}.mp4'], tmp_path,
                         disable_hook=disable)
        assert proc.returncode == 0 and 'Aborting' not in proc.stdout, output(proc)
        assert sha256_file(tmp_path / f'{name}.mp4') == sha256_of(size), output(proc)
        assert (ENGINE_LINE in proc.stderr) == (not disable), output(proc)


@pytest.mark.parametrize('query, args', [
    ('skip=2&fail=1000&fail_status=403', []),          # a single-use URL: the probe and one GET pass
    ('skip=2&fail=1000&fail_status=410', []),
    ('skip=2&fail=3&fail_status=403', []),             # the extra connection refused three times
    ('skip=2&fail=3&fail_status=429', ['--retries', '0']),
    ('max_conns=1', ['--retries', '0']),
], ids=['single-use-403', 'single-use-410', '403x3', '429x3-r0', 'max-conns-1-r0'])
def test_refused_extra_connections_do_not_fail_the_download(tmp_path: Path, fault_server, query: str,
                                                            args: list[str]) -> None:
    """A server that refuses more than one connection: yt-dlp alone makes one
    GET and succeeds; the plugin, which splits the file by default, used to
    fail (403 Forbidden, exit 1, data deleted).  The range of a refused
    connection goes back to the first, whose open-ended request reads on."""
    size = 8_000_000
    for name, disable in (('alone', True), ('plugin', False)):
        url = fault_server.url(f'/data/{size}.mp4?key={name}&{query}&rate=1500000')
        target = [url]
        if 'max_conns' in query:
            # no generic probe: its connection may still count on the server when the GET comes
            target = ['--load-info-json', str(write_info_json(tmp_path / f'{name}.json', url))]
        proc = run_ytdlp([*args, '-v', '-o', f'{name}.mp4', *target], tmp_path, disable_hook=disable)
        assert proc.returncode == 0, output(proc)
        assert sha256_file(tmp_path / f'{name}.mp4') == sha256_of(size), output(proc)
        assert (ENGINE_LINE in proc.stderr) == (not disable), output(proc)
    fault_server.wait_idle()
    plugin = [r for r in fault_server.requests(f'/data/{size}.mp4') if r.query.get('key') == 'plugin']
    probes = 0 if 'max_conns' in query else 1
    assert len(plugin) > probes + 1, 'the plugin never split the file: the test proves nothing'


def test_a_refusal_after_data_keeps_it_resumable(tmp_path: Path, fault_server) -> None:
    """The download fails (403) after bytes were written: as HttpFD keeps its
    .part, the plugin keeps .part-async and its control file (both used to be
    deleted), and the next run resumes from them."""
    size = 4 * MiB
    chunk = {'http_chunk_size': MiB}
    refusing = write_info_json(tmp_path / 'r.json', fault_server.data_url(
        size, 'mp4', skip=1, fail=1000, fail_status=403), downloader_options=chunk)
    alone = run_ytdlp(['--load-info-json', str(refusing), '-o', 'a.mp4'], tmp_path, disable_hook=True)
    assert alone.returncode == 1 and 'HTTP Error 403: Forbidden' in alone.stderr, output(alone)
    kept = (tmp_path / 'a.mp4.part').read_bytes()      # yt-dlp varies its chunks a little
    assert 0 < len(kept) <= MiB and kept == content(size)[:len(kept)], len(kept)
    fault_server.reset()
    proc = run_ytdlp(['--load-info-json', str(refusing), '-o', 'p.mp4'], tmp_path)
    assert proc.returncode == 1 and 'HTTP Error 403: Forbidden' in proc.stderr, output(proc)
    sparse, ctl = tmp_path / 'p.mp4.part-async', tmp_path / 'p.mp4.part-async.ctl'
    have = [tuple(map(int, line.split()[1:])) for line in ctl.read_text().splitlines() if line.startswith('range ')]
    assert len(have) == 1 and have[0][0] == 0 and 0 < have[0][1] <= MiB, have
    end = have[0][1]
    assert sparse.read_bytes()[:end] == content(size)[:end]
    fault_server.reset()
    working = write_info_json(tmp_path / 'w.json', fault_server.data_url(size, 'mp4'), downloader_options=chunk)
    again = run_ytdlp(['--load-info-json', str(working), '-o', 'p.mp4'], tmp_path)
    assert again.returncode == 0, output(again)
    assert f'Resuming download at byte {end}' in again.stdout
    assert sha256_file(tmp_path / 'p.mp4') == sha256_of(size)
    assert ranges_of(get_requests(fault_server, f'/data/{size}.mp4'))[0][0] == end
