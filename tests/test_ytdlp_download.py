"""Downloads through the engine as yt-dlp users make them: the CLI and YoutubeDL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from faultserver import content, sha256_of
from ytdlp_support import (
    ENGINE_LINE, PYTHON, get_requests, hermetic_env, output, require_engine, require_hook, run_ytdlp,
    sha256_file, write_info_json, write_playlist_json)


#: HttpFD's in-order path (one connection, NAME.part): the tests below that
#: check its request-level behaviour ask for it; test_ytdlp_segmented.py
#: covers the default, several connections per file.
IN_ORDER = ['--async-connections', '1']


@pytest.fixture(autouse=True)
def _installed() -> None:
    require_hook()
    require_engine()


def make_ydl(params: dict[str, Any]) -> Any:
    import yt_dlp_async.ytdlp
    yt_dlp_async.ytdlp.install(import_ytdlp=True)
    from yt_dlp import YoutubeDL
    return YoutubeDL({'quiet': True, 'noprogress': True, 'async_downloads': True, 'retries': 2,
                      'retry_sleep_functions': {'http': lambda n: 0}, **params})


# ------------------------------------------------------------------------- CLI
def test_cli_direct_url_is_byte_identical(tmp_path: Path, fault_server) -> None:
    size = 3_000_000
    proc = run_ytdlp(['-v', '-o', 'video.%(ext)s', fault_server.data_url(size, 'mp4', rate=3_000_000)], tmp_path)
    assert proc.returncode == 0, output(proc)
    assert ENGINE_LINE in proc.stderr, output(proc)
    assert sha256_file(tmp_path / 'video.mp4') == sha256_of(size)
    assert '[download] 100% of' in proc.stdout and '[download] Destination: video.mp4' in proc.stdout
    download = get_requests(fault_server, f'/data/{size}.mp4')[-1]
    assert download.header('Accept-Encoding') == 'identity'
    assert download.header('User-Agent')  # yt-dlp's http_headers were sent


def test_cli_newline_progress_lines(tmp_path: Path, fault_server) -> None:
    size = 600_000
    proc = run_ytdlp(['--newline', '-o', 'v.mp4', fault_server.data_url(size, 'mp4', rate=1_000_000)], tmp_path)
    assert proc.returncode == 0, output(proc)
    lines = [l for l in proc.stdout.splitlines() if l.startswith('[download]') and '% of' in l]
    assert len(lines) >= 3, output(proc)  # several updates, one per line
    assert lines[-1].startswith('[download] 100% of')


def test_cli_progress_template_and_quiet(tmp_path: Path, fault_server) -> None:
    url = fault_server.data_url(300_000, 'mp4', rate=1_000_000)
    proc = run_ytdlp(['--newline', '--progress-template', 'download:PROG %(progress.downloaded_bytes)s/'
                      '%(progress.total_bytes)s %(progress.status)s', '-o', 'a.mp4', url], tmp_path)
    assert proc.returncode == 0, output(proc)
    assert 'PROG 300000/300000 finished' in proc.stdout, output(proc)
    assert any(line.startswith('PROG ') and line.endswith('/300000 downloading') for line in proc.stdout.splitlines())
    proc = run_ytdlp(['-q', '-o', 'b.mp4', url], tmp_path)
    assert proc.returncode == 0 and proc.stdout == '', output(proc)
    assert sha256_file(tmp_path / 'b.mp4') == sha256_of(300_000)


def test_cli_info_json_headers_and_cookies(tmp_path: Path, fault_server) -> None:
    url = fault_server.data_url(50_000, 'mp4', require_header='X-Test:abc', require_cookie='session=42',
                                set_cookie='fresh=yes')
    info = write_info_json(tmp_path / 'info.json', url, http_headers={'X-Test': 'abc'},
                           cookies='session=42; Domain=127.0.0.1; Path=/')
    jar = tmp_path / 'jar.txt'
    proc = run_ytdlp(['-v', '--load-info-json', str(info), '--cookies', str(jar), '-o', 'out.mp4'], tmp_path)
    assert proc.returncode == 0, output(proc)
    assert ENGINE_LINE in proc.stderr
    assert sha256_file(tmp_path / 'out.mp4') == sha256_of(50_000)
    request = get_requests(fault_server, '/data/50000.mp4')[-1]
    assert request.header('X-Test') == 'abc' and 'session=42' in (request.header('Cookie') or '')
    saved = jar.read_text()  # Set-Cookie went back into yt-dlp's jar, which --cookies saves
    assert any(line.split('\t')[5:7] == ['fresh', 'yes'] for line in saved.splitlines() if '\t' in line), saved


def test_cli_test_flag_downloads_10241_bytes(tmp_path: Path, fault_server) -> None:
    info = write_info_json(tmp_path / 'i.json', fault_server.data_url(100_000, 'mp4'))
    proc = run_ytdlp(['--test', '--load-info-json', str(info), '-o', 't.mp4'], tmp_path)
    assert proc.returncode == 0, output(proc)
    assert (tmp_path / 't.mp4').read_bytes() == content(100_000)[:10241]
    assert get_requests(fault_server, '/data/100000.mp4')[-1].range == 'bytes=0-10240'


def test_cli_http_chunk_size_makes_sequential_ranges(tmp_path: Path, fault_server) -> None:
    size = 350_000
    info = write_info_json(tmp_path / 'i.json', fault_server.data_url(size, 'mp4'))
    proc = run_ytdlp([*IN_ORDER, '--http-chunk-size', '100K', '--load-info-json', str(info), '-o', 'c.mp4'], tmp_path)
    assert proc.returncode == 0, output(proc)
    assert sha256_file(tmp_path / 'c.mp4') == sha256_of(size)
    ranges = [e.range for e in get_requests(fault_server, f'/data/{size}.mp4')]
    assert len(ranges) == 4 and all(ranges), ranges
    starts = [int(r.split('=')[1].split('-')[0]) for r in ranges]
    assert starts[0] == 0 and starts == sorted(starts)
    for r in ranges[:-1]:
        first, last = map(int, r.split('=')[1].split('-'))
        assert 0.95 * 102400 <= last - first + 1 <= 102400


def test_info_json_downloader_options_chunk_size(tmp_path: Path, fault_server) -> None:
    size = 250_000
    info = write_info_json(tmp_path / 'i.json', fault_server.data_url(size, 'mp4'),
                           downloader_options={'http_chunk_size': 100_000})
    proc = run_ytdlp(['--load-info-json', str(info), '-o', 'd.mp4'], tmp_path)
    assert proc.returncode == 0, output(proc)
    assert sha256_file(tmp_path / 'd.mp4') == sha256_of(size)
    assert len(get_requests(fault_server, f'/data/{size}.mp4')) == 3


def test_cli_resumes_part_file(tmp_path: Path, fault_server) -> None:
    size = 400_000
    (tmp_path / 'r.mp4.part').write_bytes(content(size)[:123_456])
    info = write_info_json(tmp_path / 'i.json', fault_server.data_url(size, 'mp4'))
    proc = run_ytdlp(['--load-info-json', str(info), '-o', 'r.mp4'], tmp_path)
    assert proc.returncode == 0, output(proc)
    assert '[download] Resuming download at byte 123456' in proc.stdout
    assert sha256_file(tmp_path / 'r.mp4') == sha256_of(size)
    assert not (tmp_path / 'r.mp4.part').exists()
    assert [e.range for e in get_requests(fault_server, f'/data/{size}.mp4')] == ['bytes=123456-']


def test_cli_no_continue_restarts(tmp_path: Path, fault_server) -> None:
    size = 200_000
    (tmp_path / 'n.mp4.part').write_bytes(b'x' * 150_000)
    info = write_info_json(tmp_path / 'i.json', fault_server.data_url(size, 'mp4'))
    proc = run_ytdlp(['--no-continue', '--load-info-json', str(info), '-o', 'n.mp4'], tmp_path)
    assert proc.returncode == 0, output(proc)
    assert sha256_file(tmp_path / 'n.mp4') == sha256_of(size)
    assert [e.range for e in get_requests(fault_server, f'/data/{size}.mp4')] == [None]


def test_cli_resume_on_server_without_ranges_restarts(tmp_path: Path, fault_server) -> None:
    size = 200_000
    (tmp_path / 'z.mp4.part').write_bytes(content(size)[:50_000])
    info = write_info_json(tmp_path / 'i.json', fault_server.data_url(size, 'mp4', norange=1))
    proc = run_ytdlp(['--load-info-json', str(info), '-o', 'z.mp4'], tmp_path)
    assert proc.returncode == 0, output(proc)
    assert '[download] Unable to resume' in proc.stdout, output(proc)
    assert sha256_file(tmp_path / 'z.mp4') == sha256_of(size)


def test_cli_complete_part_file_416(tmp_path: Path, fault_server) -> None:
    size = 100_000
    (tmp_path / 'f.mp4.part').write_bytes(content(size))
    info = write_info_json(tmp_path / 'i.json', fault_server.data_url(size, 'mp4'))
    proc = run_ytdlp(['--load-info-json', str(info), '-o', 'f.mp4'], tmp_path)
    assert proc.returncode == 0, output(proc)
    assert 'has already been downloaded' in proc.stdout, output(proc)
    assert sha256_file(tmp_path / 'f.mp4') == sha256_of(size)
    assert [e.status for e in get_requests(fault_server, f'/data/{size}.mp4')] == [416]


@pytest.mark.parametrize('extra', [1, 50, 99])
def test_cli_part_longer_than_the_resource_is_fetched_again(tmp_path: Path, fault_server, extra: int) -> None:
    """A .part a few bytes longer than the resource (a longer version's, or a
    tail of garbage): HttpFD's "within 100 bytes" rule would rename it as the
    file, garbage and all (yt-dlp alone fails on it today); it is fetched again."""
    size = 100_000
    (tmp_path / 'f.mp4.part').write_bytes(content(size) + b'x' * extra)
    info = write_info_json(tmp_path / 'i.json', fault_server.data_url(size, 'mp4'))
    proc = run_ytdlp(['--load-info-json', str(info), '-o', 'f.mp4'], tmp_path)
    assert proc.returncode == 0, output(proc)
    assert 'has already been downloaded' not in proc.stdout, output(proc)
    assert sha256_file(tmp_path / 'f.mp4') == sha256_of(size)
    assert [e.status for e in get_requests(fault_server, f'/data/{size}.mp4')] == [416, 200]
    assert not [p.name for p in tmp_path.iterdir() if '.part' in p.name]


def filesize_xattr(path: Path) -> bytes | None:
    try:
        return os.getxattr(path, 'user.ytdl.filesize')
    except OSError:
        return None


@pytest.mark.parametrize('extra', [[], IN_ORDER], ids=['default', 'in-order'])
def test_xattr_set_filesize_as_yt_dlp_alone(tmp_path: Path, fault_server, extra: list[str]) -> None:
    """--xattr-set-filesize: the file carries user.ytdl.filesize where yt-dlp alone
    sets it (releases up to 2025.x; the newest ignores the option), and not otherwise."""
    size = 600_000
    info = write_info_json(tmp_path / 'i.json', fault_server.data_url(size, 'mp4'))
    seen = {}
    for mode, disable in (('alone', True), ('plugin', False)):
        (tmp_path / mode).mkdir()
        proc = run_ytdlp(['--xattr-set-filesize', *([] if disable else extra), '--load-info-json', str(info), '-o', 'f.mp4'],
                         tmp_path / mode, disable_hook=disable)
        assert proc.returncode == 0, output(proc)
        assert sha256_file(tmp_path / mode / 'f.mp4') == sha256_of(size)
        seen[mode] = filesize_xattr(tmp_path / mode / 'f.mp4')
    assert seen['plugin'] == seen['alone'], seen
    if seen['alone'] is not None:
        assert seen['alone'] == str(size).encode()


def test_cli_no_part(tmp_path: Path, fault_server) -> None:
    size = 300_000
    info = write_info_json(tmp_path / 'i.json', fault_server.data_url(size, 'mp4', rate=600_000))
    seen: list[str] = []
    proc = subprocess.Popen([PYTHON, '-m', 'yt_dlp', '--no-part', '--load-info-json', str(info), '-o', 'np.mp4'],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=hermetic_env(tmp_path / '.home'))
    while proc.poll() is None:
        seen.extend(p.name for p in tmp_path.iterdir() if p.name.startswith('np.'))
        time.sleep(0.05)
    assert proc.returncode == 0, proc.stderr.read()
    assert 'np.mp4.part' not in seen and 'np.mp4' in seen
    assert sha256_file(tmp_path / 'np.mp4') == sha256_of(size)


def test_cli_stdout(tmp_path: Path, fault_server) -> None:
    size = 500_000
    info = write_info_json(tmp_path / 'i.json', fault_server.data_url(size, 'mp4'))
    proc = subprocess.run([PYTHON, '-m', 'yt_dlp', '-v', '--load-info-json', str(info), '-o', '-'], cwd=tmp_path,
                          capture_output=True, timeout=120, env=hermetic_env(tmp_path / '.home'))
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    assert ENGINE_LINE.encode() in proc.stderr
    assert proc.stdout == content(size)


def test_cli_retries_5xx_then_succeeds(tmp_path: Path, fault_server) -> None:
    size = 80_000
    info = write_info_json(tmp_path / 'i.json', fault_server.data_url(size, 'mp4', fail=2))
    proc = run_ytdlp(['--retry-sleep', '0', '--load-info-json', str(info), '-o', 'x.mp4'], tmp_path)
    assert proc.returncode == 0, output(proc)
    assert '[download] Got error: HTTP Error 503: Service Unavailable. Retrying (1/10)...' in proc.stdout, output(proc)
    assert 'Retrying (2/10)' in proc.stdout
    assert [e.status for e in get_requests(fault_server, f'/data/{size}.mp4')] == [503, 503, 200]
    assert sha256_file(tmp_path / 'x.mp4') == sha256_of(size)


def test_cli_gives_up_after_retries(tmp_path: Path, fault_server) -> None:
    info = write_info_json(tmp_path / 'i.json', fault_server.data_url(80_000, 'mp4', fail=10))
    proc = run_ytdlp(['-R', '2', '--retry-sleep', '0', '--load-info-json', str(info), '-o', 'x.mp4'], tmp_path)
    assert proc.returncode == 1, output(proc)
    assert 'Got error: HTTP Error 503: Service Unavailable. Giving up after 2 retries' in proc.stderr, output(proc)
    assert len(get_requests(fault_server, '/data/80000.mp4')) == 3


def test_cli_404_is_raised_at_once(tmp_path: Path, fault_server) -> None:
    info = write_info_json(tmp_path / 'i.json', fault_server.data_url(1000, 'mp4', status=404))
    proc = run_ytdlp(['--load-info-json', str(info), '-o', 'x.mp4'], tmp_path)
    assert proc.returncode == 1, output(proc)
    assert 'ERROR: unable to download video data: HTTP Error 404: Not Found' in proc.stderr, output(proc)
    assert len(get_requests(fault_server, '/data/1000.mp4')) == 1
    assert not list(tmp_path.glob('x.mp4*'))


def test_cli_ignore_errors_and_abort_on_error(tmp_path: Path, fault_server) -> None:
    # a page with two <video>s: the generic extractor makes a playlist; the first answers 403
    page = fault_server.url('/page?title=T&videos=/data/1000.mp4%3Fstatus%3D403,/data/20000.mp4')
    proc = run_ytdlp(['-i', '--concurrent-downloads', '2', '-o', '%(playlist_index)s.%(ext)s', page], tmp_path)
    assert proc.returncode == 1, output(proc)
    # the entries run at once: the error is still yt-dlp's line, word for word
    assert 'ERROR: unable to download video data: HTTP Error 403: Forbidden' in proc.stderr.splitlines(), \
        output(proc)
    assert sha256_file(tmp_path / '2.mp4') == sha256_of(20_000)
    assert not list(tmp_path.glob('1.mp4*'))
    (tmp_path / '2.mp4').unlink()
    proc = run_ytdlp(['--abort-on-error', '-o', '%(playlist_index)s.%(ext)s', page], tmp_path)
    assert proc.returncode == 1, output(proc)
    assert 'HTTP Error 403: Forbidden' in proc.stderr
    assert not (tmp_path / '2.mp4').exists()


def test_cli_connection_reset_is_retried_with_resume(tmp_path: Path, fault_server) -> None:
    size = 300_000
    info = write_info_json(tmp_path / 'i.json', fault_server.data_url(size, 'mp4', reset_after=100_000))
    proc = run_ytdlp([*IN_ORDER, '--retry-sleep', '0', '--load-info-json', str(info), '-o', 'r.mp4'], tmp_path)
    assert proc.returncode == 0, output(proc)
    assert 'Retrying (1/10)' in proc.stdout, output(proc)
    requests = get_requests(fault_server, f'/data/{size}.mp4')
    assert len(requests) == 2 and requests[0].range is None
    assert requests[1].range is not None and int(requests[1].range.split('=')[1].rstrip('-')) >= 100_000 - 65536
    assert sha256_file(tmp_path / 'r.mp4') == sha256_of(size)


def test_cli_short_body_is_content_too_short(tmp_path: Path, fault_server) -> None:
    info = write_info_json(tmp_path / 'i.json', fault_server.data_url(100_000, 'mp4', short=1000, times=-1))
    proc = run_ytdlp(['-R', '1', '--retry-sleep', '0', '--load-info-json', str(info), '-o', 's.mp4'], tmp_path)
    assert proc.returncode == 1, output(proc)
    assert 'Downloaded 99000 bytes, expected 100000 bytes. Retrying (1/1)...' in proc.stdout, output(proc)
    # the resumed request gets no byte at all: yt-dlp alone ends with this line, not retried (issue 16)
    assert proc.stderr.rstrip().endswith('ERROR: Did not get any data blocks'), output(proc)


def test_cli_max_and_min_filesize(tmp_path: Path, fault_server) -> None:
    info = write_info_json(tmp_path / 'i.json', fault_server.data_url(300_000, 'mp4', rate=500_000))
    proc = run_ytdlp(['--max-filesize', '100K', '--load-info-json', str(info), '-o', 'm.mp4'], tmp_path)
    assert 'File is larger than max-filesize (300000 bytes > 102400 bytes). Aborting.' in proc.stdout, output(proc)
    assert not list(tmp_path.glob('m.mp4*'))
    proc = run_ytdlp(['--min-filesize', '1M', '--load-info-json', str(info), '-o', 'm.mp4'], tmp_path)
    assert 'File is smaller than min-filesize (300000 bytes < 1048576 bytes). Aborting.' in proc.stdout, output(proc)
    assert not list(tmp_path.glob('m.mp4*'))


def test_cli_limit_rate(tmp_path: Path, fault_server) -> None:
    size = 400_000
    info = write_info_json(tmp_path / 'i.json', fault_server.data_url(size, 'mp4'))
    start = time.monotonic()
    proc = run_ytdlp(['-r', '200K', '--load-info-json', str(info), '-o', 'l.mp4'], tmp_path)
    elapsed = time.monotonic() - start
    assert proc.returncode == 0, output(proc)
    assert sha256_file(tmp_path / 'l.mp4') == sha256_of(size)
    assert elapsed >= 1.4, f'400 KB at 200 KiB/s took {elapsed:.2f} s'


@pytest.mark.parametrize('mtime', [True, False])
def test_cli_mtime_from_last_modified(tmp_path: Path, fault_server, mtime: bool) -> None:
    info = write_info_json(tmp_path / 'i.json', fault_server.data_url(10_000, 'mp4'))
    proc = run_ytdlp(['--mtime' if mtime else '--no-mtime', '--load-info-json', str(info), '-o', 't.mp4'], tmp_path)
    assert proc.returncode == 0, output(proc)
    if mtime:
        assert os.path.getmtime(tmp_path / 't.mp4') == 1577836800  # the server's Last-Modified, 2020-01-01
    else:
        assert abs(os.path.getmtime(tmp_path / 't.mp4') - time.time()) < 600


def test_sigint_leaves_part_that_resumes(tmp_path: Path, fault_server) -> None:
    size = 3_000_000
    slow = write_info_json(tmp_path / 'slow.json', fault_server.data_url(size, 'mp4', rate=400_000))
    part = tmp_path / 's.mp4.part'
    proc = subprocess.Popen([PYTHON, '-m', 'yt_dlp', *IN_ORDER, '--load-info-json', str(slow), '-o', 's.mp4'], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=hermetic_env(tmp_path / '.home'))
    deadline = time.monotonic() + 30
    while not (part.exists() and part.stat().st_size > 300_000) and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode != 0 and b'Interrupted by user' in err, err.decode()[-2000:]
    kept = part.stat().st_size
    assert 300_000 < kept < size
    assert part.read_bytes() == content(size)[:kept]  # only bytes that were really received
    assert not (tmp_path / 's.mp4').exists()

    fault_server.reset()
    fast = write_info_json(tmp_path / 'fast.json', fault_server.data_url(size, 'mp4'))
    proc2 = run_ytdlp([*IN_ORDER, '--load-info-json', str(fast), '-o', 's.mp4'], tmp_path)
    assert proc2.returncode == 0, output(proc2)
    assert f'Resuming download at byte {kept}' in proc2.stdout
    assert [e.range for e in get_requests(fault_server, f'/data/{size}.mp4')] == [f'bytes={kept}-']
    assert sha256_file(tmp_path / 's.mp4') == sha256_of(size)


# --------------------------------------------------------------------- Python API
def test_progress_hooks_from_the_calling_thread(tmp_path: Path, fault_server) -> None:
    size = 800_000
    calls: list[tuple[int, dict[str, Any]]] = []
    ydl = make_ydl({'outtmpl': str(tmp_path / '%(id)s.%(ext)s'), 'async_connections': 1,
                    'progress_hooks': [lambda d: calls.append((threading.get_ident(), dict(d)))]})
    with ydl:
        info = ydl.extract_info(fault_server.data_url(size, 'mp4', rate=1_500_000))
    filename = info['requested_downloads'][0]['filepath']
    assert sha256_file(filename) == sha256_of(size)
    assert {ident for ident, _ in calls} == {threading.get_ident()}
    downloading = [d for _, d in calls if d['status'] == 'downloading']
    finished = [d for _, d in calls if d['status'] == 'finished']
    assert len(downloading) >= 3 and len(finished) == 1
    for d in downloading:
        assert {'downloaded_bytes', 'total_bytes', 'tmpfilename', 'filename', 'eta', 'speed', 'elapsed',
                'ctx_id', 'info_dict'} <= set(d)
        assert d['total_bytes'] == size and d['tmpfilename'] == filename + '.part' and d['filename'] == filename
    counts = [d['downloaded_bytes'] for d in downloading]
    assert counts == sorted(counts) and counts[-1] == size
    assert any(d['speed'] for d in downloading) and any(d['eta'] is not None for d in downloading)
    assert finished[0]['downloaded_bytes'] == finished[0]['total_bytes'] == size
    assert finished[0]['filename'] == filename and finished[0]['elapsed'] > 0


@pytest.mark.parametrize('size, rate', [(1000, None), (3_000_000, 2_000_000)], ids=['tiny', 'split'])
def test_hooks_of_a_split_download_end_at_every_byte(tmp_path: Path, fault_server, size: int, rate: int | None) -> None:
    """The path that may split (the default) calls 'downloading' before
    'finished' even when the engine was done before the first poll, the last
    one with every byte, eta in whole seconds, as HttpFD; a hook raising
    DownloadCancelled there leaves what it leaves without the plugin."""
    from yt_dlp.utils import DownloadCancelled
    url = fault_server.data_url(size, 'mp4', **({'rate': rate} if rate else {}))
    for mode, on in (('alone', False), ('plugin', True)):
        calls: list[dict[str, Any]] = []
        ydl = make_ydl({'outtmpl': str(tmp_path / mode / 'v.%(ext)s'), 'async_downloads': on,
                        'progress_hooks': [lambda d: calls.append(dict(d))]})
        with ydl:
            ydl.extract_info(url)
        statuses = [d['status'] for d in calls]
        assert statuses[-1] == 'finished' and set(statuses[:-1]) == {'downloading'} and len(statuses) >= 2, (mode, statuses)
        last = calls[-2]
        assert last['downloaded_bytes'] == last['total_bytes'] == size, (mode, last)
        assert all(d['eta'] is None or type(d['eta']) is int for d in calls[:-1]), (mode, calls)
        assert sha256_file(tmp_path / mode / 'v.mp4') == sha256_of(size)

        def cancel(d: dict[str, Any]) -> None:
            if d['status'] == 'downloading':
                raise DownloadCancelled('the hook said no')
        ydl = make_ydl({'outtmpl': str(tmp_path / mode / 'c.%(ext)s'), 'async_downloads': on,
                        'progress_hooks': [cancel]})
        with ydl, pytest.raises(DownloadCancelled, match='the hook said no'):
            ydl.extract_info(url)
        assert not (tmp_path / mode / 'c.mp4').exists(), mode


def test_throttled_rate_raises_throttled_download(tmp_path: Path, fault_server) -> None:
    from yt_dlp.utils import ThrottledDownload
    from yt_dlp_async.ytdlp.downloader import AsyncFileDownloader
    ydl = make_ydl({})
    fd = AsyncFileDownloader(ydl, {**ydl.params, 'throttledratelimit': 200_000, 'async_connections': 1})
    target = tmp_path / 'slow.mp4'
    start = time.monotonic()
    with pytest.raises(ThrottledDownload):
        fd.real_download(str(target), {'url': fault_server.data_url(2_000_000, 'mp4', rate=50_000)})
    assert 3 <= time.monotonic() - start < 15
    part = Path(str(target) + '.part')
    assert part.exists() and part.read_bytes() == content(2_000_000)[:part.stat().st_size]


def test_api_cookies_are_scoped_and_written_back(tmp_path: Path, fault_server) -> None:
    import http.cookiejar
    ydl = make_ydl({'outtmpl': str(tmp_path / 'c.%(ext)s')})
    ydl.cookiejar.set_cookie(http.cookiejar.Cookie(
        0, 'session', 'abc', None, False, '127.0.0.1', False, False, '/', True, False, None, True, None, None, {}))
    from yt_dlp_async.ytdlp.downloader import AsyncFileDownloader
    fd = AsyncFileDownloader(ydl, ydl.params)
    url = fault_server.data_url(30_000, 'mp4', require_cookie='session=abc', set_cookie='token=xyz')
    assert fd.real_download(str(tmp_path / 'c.mp4'), {'url': url})
    assert sha256_file(tmp_path / 'c.mp4') == sha256_of(30_000)
    assert {c.name: c.value for c in ydl.cookiejar} == {'session': 'abc', 'token': 'xyz'}
    assert 'token=xyz' in ydl.cookiejar.get_cookie_header(fault_server.url('/'))
