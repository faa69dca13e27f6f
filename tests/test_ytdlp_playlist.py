"""Several playlist entries / URLs at once (yt_dlp_async/ytdlp/playlist.py), run as users run yt-dlp.

The playlist is the fault server's ``/page``: an HTML page whose ``<video>``
tags yt-dlp's generic extractor turns into a playlist.  Every run has the
baton check on (YTDLP_ASYNC_BATON_CHECK=1): a thread running yt-dlp code
without the baton, or two holders, print ``BATON VIOLATION`` and fail the run.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
import urllib.parse
from pathlib import Path
from typing import Any

import pytest

from faultserver import content_range, sha256_of
from ytdlp_support import (
    PYTHON, hermetic_env, output, page_url, require_engine, require_hook, run_ytdlp, sha256_file)
from ytdlp_support import video_path as support_video_path

CHECK = {'YTDLP_ASYNC_BATON_CHECK': '1'}
BASE_SIZE = 300_000


@pytest.fixture(autouse=True)
def _installed() -> None:
    require_hook()
    require_engine()


def video_path(i: int, size: int | None = None, **params: Any) -> str:
    return support_video_path(i, size or BASE_SIZE + i, **params)


def expected_sha(i: int, size: int | None = None) -> str:
    return sha256_of(size or BASE_SIZE + i, i)


#: in a pipe entries run at once only when asked for (a program may be reading the output)
CONCURRENT = ['--concurrent-downloads', '5']


def run(args: list[str], cwd: Path, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    env = {**CHECK, **kwargs.pop('env', {})}
    cwd.mkdir(parents=True, exist_ok=True)
    asked = [] if '--concurrent-downloads' in args else CONCURRENT
    return run_ytdlp(['--retry-sleep', '0', *asked, *args], cwd, env=env, **kwargs)


def assert_baton_checked(proc: subprocess.CompletedProcess[str]) -> None:
    assert 'BATON VIOLATION' not in proc.stderr, output(proc)
    assert ', 0 violations' in proc.stderr, output(proc)  # the session ran, with the check on


def media_files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith('.mp4'))


def data_gets(server: Any) -> list[Any]:
    server.wait_idle(5.0)
    return [e for e in server.log if e.method == 'GET' and e.path.startswith('/data/')]


def overlapping_entries(server: Any) -> int:
    """Most different /data resources being served at the same moment."""
    gets = [e for e in data_gets(server) if e.bytes_sent > 0 and e.finished is not None]
    best = 0
    for e in gets:
        at = e.started + 0.5 * (e.finished - e.started)
        best = max(best, len({g.path for g in gets if g.started <= at <= g.finished}))
    return best


def archive_lines(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if line.strip()]


# ------------------------------------------------------------------ results
def test_entries_byte_identical_and_overlapping(tmp_path: Path, fault_server) -> None:
    n = 6
    url = page_url(fault_server, [video_path(i, rate=600_000) for i in range(1, n + 1)])
    proc = run(['-v', '-o', '%(playlist_index)s.%(ext)s', url], tmp_path)
    assert proc.returncode == 0, output(proc)
    assert_baton_checked(proc)
    assert '[async] Concurrent downloads: up to 5 at once' in proc.stderr
    assert media_files(tmp_path) == [f'{i}.mp4' for i in range(1, n + 1)]
    for i in range(1, n + 1):
        assert sha256_file(tmp_path / f'{i}.mp4') == expected_sha(i), i
    assert overlapping_entries(fault_server) >= 3, output(proc)
    # every entry's last progress line, as yt-dlp writes it; the playlist still finishes last
    # (then the run's summary, -v)
    finals = [line for line in proc.stdout.replace('\r', '\n').splitlines()
              if re.match(r'\[download\] 100% of +[\d.]+KiB in ', line)]
    assert len(finals) == n, output(proc)
    *_, finished, summary = proc.stdout.rstrip().splitlines()
    assert finished == '[download] Finished downloading playlist: PL'
    assert summary.startswith(f'[async] {n} files, '), output(proc)


def test_url_batch_downloads_at_once(tmp_path: Path, fault_server) -> None:
    urls = [fault_server.url(video_path(i, rate=600_000)) for i in range(1, 5)]
    proc = run(['-o', 'u%(id)s.%(ext)s', *urls], tmp_path)
    assert proc.returncode == 0, output(proc)
    assert_baton_checked(proc)
    assert media_files(tmp_path) == [f'u{BASE_SIZE + i}.mp4' for i in range(1, 5)]
    for i in range(1, 5):
        assert sha256_file(tmp_path / f'u{BASE_SIZE + i}.mp4') == expected_sha(i)
    assert overlapping_entries(fault_server) >= 3


def test_print_exec_info_json_and_playlist_index(tmp_path: Path, fault_server) -> None:
    url = page_url(fault_server, [video_path(i, rate=800_000) for i in range(1, 5)])
    proc = run(['-o', '%(playlist_index)s-%(playlist_title)s.%(ext)s', '--write-info-json', '-J', '--no-simulate',
                '--print', 'after_move:MOVED %(filepath)s', '--exec', 'echo EXEC {}', url], tmp_path)
    assert proc.returncode == 0, output(proc)
    assert_baton_checked(proc)
    lines = proc.stdout.splitlines()
    moved = sorted(line for line in lines if line.startswith('MOVED '))
    assert moved == [f'MOVED {tmp_path / f"{i}-PL.mp4"}' for i in range(1, 5)], output(proc)  # never prefixed
    executed = [line for line in proc.stdout.splitlines() if 'EXEC ' in line]
    assert len(executed) == 4, output(proc)
    for i in range(1, 5):
        assert sha256_file(tmp_path / f'{i}-PL.mp4') == expected_sha(i)
        assert (tmp_path / f'{i}-PL.info.json').is_file()
    assert (tmp_path / '0-PL.info.json').is_file()  # the playlist's own (playlist_index 0)
    # -J: the playlist yt-dlp returns holds every entry's final result, not a placeholder
    entries = json.loads(lines[-1])['entries']
    assert [e['playlist_index'] for e in entries] == [1, 2, 3, 4]
    assert [e['requested_downloads'][0]['filepath'] for e in entries] == [str(tmp_path / f'{i}-PL.mp4') for i in range(1, 5)]


def outcome(directory: Path) -> dict[str, Any]:
    """Every file a run left, by name: its SHA-256 (an archive: its lines, in any order)."""
    return {p.name: sorted(archive_lines(p)) if p.suffix == '.txt' else sha256_file(p)
            for p in sorted(directory.iterdir()) if p.is_file()}


BATCH_CASES = {
    # the second page's first entries would start before the first page's last one
    'max-downloads': (['--max-downloads', '3', '-o', '%(playlist_title)s-%(playlist_index)s.%(ext)s'], 'abc'),
    # the same videos in two playlists (a channel and one of its playlists): downloaded once
    'archive': (['--download-archive', 'a.txt', '-o', '%(playlist_title)s-%(playlist_index)s.%(ext)s'], 'aa'),
    'autonumber': (['-o', '%(autonumber)s-%(playlist_title)s.%(ext)s'], 'ab'),
    'match-filter': (['--match-filters', 'playlist_index!=2', '--break-match-filters', 'title!*=B-3',
                      '-o', '%(playlist_title)s-%(playlist_index)s.%(ext)s'], 'abc'),
}


@pytest.mark.parametrize('case', list(BATCH_CASES))
def test_a_batch_decided_in_order_ends_as_yt_dlp_alone(tmp_path: Path, fault_server, case: str) -> None:
    """Options that decide an entry from the entries before it see a batch of
    playlist URLs in order, as yt-dlp alone does (run at once, --max-downloads
    fetched other videos, the archive let a video in two playlists be fetched
    twice, autonumber followed completion order)."""
    args, pages = BATCH_CASES[case]
    entries = {'a': (1, 2, 3), 'b': (4, 5, 6), 'c': (7, 8, 9)}
    urls = [page_url(fault_server, [video_path(i, rate=3_000_000 if i % 3 == 1 else 20_000_000)
                                    for i in entries[p]], title=p.upper()) for p in pages]
    results = {}
    for mode, extra in (('alone', ['--no-async-downloads']), ('plugin', ['-v'])):
        proc = run([*extra, *args, *urls], tmp_path / mode)
        results[mode] = (proc.returncode, outcome(tmp_path / mode))
        if mode == 'plugin':
            plugin = proc
    assert results['plugin'] == results['alone'], output(plugin)
    assert results['alone'][1], results  # the case downloads something
    assert '[async] URLs are processed one at a time (the entries of each playlist still at once): ' \
        in plugin.stderr, output(plugin)


def test_entries_with_one_output_name_end_as_yt_dlp_alone(tmp_path: Path, fault_server) -> None:
    """Every entry to one name with --force-overwrites: the last entry's file is
    left, as yt-dlp alone leaves it (at once, the entry finishing last won)."""
    url = page_url(fault_server, [video_path(1, rate=1_000_000), video_path(2), video_path(3, size=200_000)])
    results = {}
    for mode, extra in (('alone', ['--no-async-downloads']), ('plugin', ['-v'])):
        proc = run([*extra, '--force-overwrites', '-o', 'same.%(ext)s', url], tmp_path / mode)
        results[mode] = (proc.returncode, outcome(tmp_path / mode))
        if mode == 'plugin':
            plugin = proc
    assert results['plugin'] == results['alone'] == (0, {'same.mp4': expected_sha(3, 200_000)}), output(plugin)
    assert '[async] items are processed one at a time: every entry has the same output name' in plugin.stderr


# ------------------------------------------------------------------ archive
def test_archive_exact_and_order_free(tmp_path: Path, fault_server) -> None:
    url = page_url(fault_server, [video_path(i, rate=1_000_000) for i in range(1, 7)])
    native = run(['--no-async-downloads', '--download-archive', 'a.txt', '-o', '%(playlist_index)s.%(ext)s', url],
                 tmp_path / 'native')
    assert native.returncode == 0, output(native)
    expected = archive_lines(tmp_path / 'native' / 'a.txt')
    assert len(expected) == 6 and len(set(expected)) == 6

    proc = run(['--download-archive', 'a.txt', '-o', '%(playlist_index)s.%(ext)s', url], tmp_path / 'conc')
    assert proc.returncode == 0, output(proc)
    assert_baton_checked(proc)
    got = archive_lines(tmp_path / 'conc' / 'a.txt')
    assert sorted(got) == sorted(expected), (got, expected)

    fault_server.reset()  # a second run: everything is in the archive, nothing is downloaded
    again = run(['--download-archive', 'a.txt', '-o', '%(playlist_index)s.%(ext)s', url], tmp_path / 'conc')
    assert again.returncode == 0, output(again)
    assert again.stdout.count('has already been recorded in the archive') == 6, output(again)
    assert not [e for e in data_gets(fault_server) if e.bytes_sent > 100_000]
    assert archive_lines(tmp_path / 'conc' / 'a.txt') == got


def test_archive_shared_by_two_processes(tmp_path: Path, fault_server) -> None:
    url = page_url(fault_server, [video_path(i, rate=1_500_000) for i in range(1, 9)])
    archive = tmp_path / 'shared-archive.txt'
    procs = []
    for name in ('one', 'two'):
        (tmp_path / name).mkdir()
        procs.append(subprocess.Popen(
            [PYTHON, '-m', 'yt_dlp', '--no-cache-dir', *CONCURRENT, '--download-archive', str(archive),
             '-o', '%(playlist_index)s.%(ext)s', url],
            cwd=tmp_path / name, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=hermetic_env(tmp_path / name / '.home', CHECK)))
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err[-3000:]
        assert 'BATON VIOLATION' not in err
    lines = archive_lines(archive)
    assert len(lines) == 8 and len(set(lines)) == 8, lines  # no duplicates, no lost lines
    for i in range(1, 9):  # every entry is complete in at least one of the two directories
        copies = [tmp_path / d / f'{i}.mp4' for d in ('one', 'two') if (tmp_path / d / f'{i}.mp4').exists()]
        assert copies and all(sha256_file(c) == expected_sha(i) for c in copies)


# ----------------------------------------------------------- limits, errors
def test_max_downloads_gives_exactly_that_many(tmp_path: Path, fault_server) -> None:
    url = page_url(fault_server, [video_path(i, rate=1_000_000) for i in range(1, 11)])
    proc = run(['--max-downloads', '3', '--download-archive', 'a.txt', '-o', '%(playlist_index)s.%(ext)s', url],
               tmp_path)
    assert proc.returncode == 101, output(proc)
    assert_baton_checked(proc)
    assert media_files(tmp_path) == ['01.mp4', '02.mp4', '03.mp4'], output(proc)  # 10 entries: 2 digits
    assert not [p for p in tmp_path.iterdir() if '.part' in p.name]
    for i in (1, 2, 3):
        assert sha256_file(tmp_path / f'0{i}.mp4') == expected_sha(i)
    assert len(archive_lines(tmp_path / 'a.txt')) == 3
    downloaded = {e.path for e in data_gets(fault_server) if e.bytes_sent > 50_000}
    assert downloaded == {f'/data/{BASE_SIZE + i}.mp4' for i in (1, 2, 3)}, downloaded
    assert 'Maximum number of downloads reached' in proc.stdout
    assert 'Downloading item 4 of 10' not in proc.stdout  # as sequential: the loop stopped at item 3


@pytest.mark.parametrize('ignore_errors', [True, False], ids=['ignore-errors', 'abort-on-error'])
def test_one_entry_failing(tmp_path: Path, fault_server, ignore_errors: bool) -> None:
    videos = [video_path(i, rate=1_000_000) for i in range(1, 6)]
    videos[2] = video_path(3, status=404)  # entry 3 fails
    url = page_url(fault_server, videos)
    flags = ['-i'] if ignore_errors else ['--abort-on-error']
    native = run([*flags, '--no-async-downloads', '-o', '%(playlist_index)s.%(ext)s', url], tmp_path / 'native')
    proc = run([*flags, '-o', '%(playlist_index)s.%(ext)s', url], tmp_path / 'conc')
    assert proc.returncode == native.returncode == 1, output(proc) + output(native)
    assert media_files(tmp_path / 'conc') == media_files(tmp_path / 'native'), output(proc)
    for name in media_files(tmp_path / 'conc'):
        i = int(name.split('.')[0])
        assert sha256_file(tmp_path / 'conc' / name) == expected_sha(i)
    assert 'ERROR:' in proc.stderr
    # an entry's label goes after the severity word: a script's ^ERROR: still finds each error
    errors = [line for line in proc.stderr.splitlines() if 'ERROR:' in line]
    assert all(line.startswith('ERROR:') for line in errors), output(proc)
    assert len(errors) == sum(line.startswith('ERROR:') for line in native.stderr.splitlines()), output(proc)
    assert_baton_checked(proc) if ignore_errors else None


def test_abort_on_error_during_download_stops_the_others(tmp_path: Path, fault_server) -> None:
    videos = [video_path(i, size=3_000_000, rate=1_000_000) for i in range(1, 5)]
    # entry 2 fails once it is downloading (the page's entries are not probed), with no retries left
    videos[1] = video_path(2, size=3_000_000, rate=1_000_000, fail=100, fail_status=500)
    url = page_url(fault_server, videos)
    start = time.monotonic()
    proc = run(['--abort-on-error', '-R', '0', '--async-connections', '1', '-o', '%(playlist_index)s.%(ext)s', url],
               tmp_path)
    assert proc.returncode == 1, output(proc)
    assert time.monotonic() - start < 20
    assert 'ERROR:' in proc.stderr
    assert '2.mp4' not in media_files(tmp_path)
    for name in media_files(tmp_path):  # entry 1 may finish (it came first); nothing is corrupt
        assert name == '1.mp4' and sha256_file(tmp_path / name) == expected_sha(1, 3_000_000)
    assert not {'3.mp4', '4.mp4'} & set(media_files(tmp_path))


# ------------------------------------------------------------------- Ctrl-C
def test_sigint_mid_playlist_then_resume(tmp_path: Path, fault_server) -> None:
    size = 4_000_000
    videos = [video_path(i, size=size, rate=800_000) for i in range(1, 5)]
    url = page_url(fault_server, videos)
    args = [PYTHON, '-m', 'yt_dlp', '--no-cache-dir', *CONCURRENT, '--download-archive', 'a.txt',
            '-o', '%(playlist_index)s.%(ext)s', url]
    proc = subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=hermetic_env(tmp_path / '.home', CHECK))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        parts = [p for p in tmp_path.iterdir() if '.part' in p.name and p.stat().st_size > 0]
        if len({p.name.split('.')[0] for p in parts}) >= 3:
            break
        time.sleep(0.05)
    time.sleep(0.5)
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    took = time.monotonic() - sent
    assert proc.returncode == 1 and 'Interrupted by user' in err, err[-3000:]
    assert took < 5, took
    assert fault_server.wait_idle(2.0)  # every transfer was cancelled: nothing is being served any more
    assert media_files(tmp_path) == []
    kept = [p.name for p in tmp_path.iterdir() if '.part' in p.name]
    assert len({name.split('.')[0] for name in kept}) >= 3, kept
    assert not (tmp_path / 'a.txt').exists() or archive_lines(tmp_path / 'a.txt') == []
    # the files whose first 64 KiB the first run wrote (every download starts on one connection at byte 0)
    head = 64 << 10
    started = {i for i in range(1, 5) if (tmp_path / f'{i}.mp4.part-async').is_file()
               and (tmp_path / f'{i}.mp4.part-async').read_bytes()[:head] == content_range(size, i, 0, head)}
    assert started, kept

    fault_server.reset()
    again = run(['-v', '--download-archive', 'a.txt', '-o', '%(playlist_index)s.%(ext)s', url], tmp_path)
    assert again.returncode == 0, output(again)
    assert_baton_checked(again)
    assert media_files(tmp_path) == ['1.mp4', '2.mp4', '3.mp4', '4.mp4']
    for i in range(1, 5):
        assert sha256_file(tmp_path / f'{i}.mp4') == expected_sha(i, size)
    gets = [e for e in data_gets(fault_server) if e.path == f'/data/{size}.mp4']
    log = (kept, sorted(started), [(e.query.get('seed'), e.range, e.bytes_sent, e.outcome) for e in gets],
           again.stderr[-4000:])
    # what the first run wrote was kept: no file it started is asked for from byte 0 again
    from_zero = {int(e.query['seed']) for e in gets if not e.range or e.range.startswith('bytes=0-')}
    assert not from_zero & started, log
    assert len(archive_lines(tmp_path / 'a.txt')) == 4


# ------------------------------------------------------ sequential at N=1
def _normalised(stdout: str) -> list[str]:
    """Output lines without progress updates (they depend on timing)."""
    lines = []
    for line in stdout.replace('\r', '\n').splitlines():
        if not line.strip() or ('[download]' in line and ('% of' in line or ' at ' in line)):
            continue
        lines.append(line.rstrip())
    return lines


def test_concurrent_downloads_1_is_sequential(tmp_path: Path, fault_server) -> None:
    videos = [video_path(i, rate=2_000_000) for i in range(1, 6)]
    videos[3] = video_path(4, status=404)
    url = page_url(fault_server, videos)
    common = ['-i', '--async-connections', '1', '--download-archive', 'a.txt',
              '-o', '%(playlist_index)s.%(ext)s', '--print', 'after_move:%(filepath)s', url]
    native = run(['--no-async-downloads', *common], tmp_path / 'native')
    one = run(['--concurrent-downloads', '1', *common], tmp_path / 'one')
    assert native.returncode == one.returncode == 1, output(native) + output(one)
    assert _normalised(one.stdout.replace(str(tmp_path / 'one'), 'DIR')) == \
        _normalised(native.stdout.replace(str(tmp_path / 'native'), 'DIR')), output(one) + output(native)
    assert one.stderr.replace(str(tmp_path / 'one'), 'DIR') == native.stderr.replace(str(tmp_path / 'native'), 'DIR')
    assert archive_lines(tmp_path / 'one' / 'a.txt') == archive_lines(tmp_path / 'native' / 'a.txt')
    assert len(archive_lines(tmp_path / 'one' / 'a.txt')) == 4
    assert 'baton check' not in one.stderr  # the session never started


def test_verbose_explains_sequential(tmp_path: Path, fault_server) -> None:
    url = page_url(fault_server, [video_path(i) for i in range(1, 3)])
    proc = run(['-v', '--skip-playlist-after-errors', '2', '-o', '%(playlist_index)s.%(ext)s', url], tmp_path)
    assert proc.returncode == 0, output(proc)
    assert '[async] items are processed one at a time: --skip-playlist-after-errors' in proc.stderr, output(proc)
    assert media_files(tmp_path) == ['1.mp4', '2.mp4']


def test_hls_entries_overlap(tmp_path: Path, fault_server) -> None:
    """HLS entries give the baton up while their fragments download (HlsFD.real_download is audited)."""
    from fragment_streams import hls_stream, random_segments
    streams = [hls_stream(fault_server, f'plhls{i}', random_segments(8), faults={j: {'latency': 400} for j in range(8)})
               for i in range(3)]
    paths = [urllib.parse.urlsplit(stream.info['url']).path for stream in streams]
    proc = run(['-o', '%(playlist_index)s.%(ext)s', page_url(fault_server, paths)], tmp_path)
    assert proc.returncode == 0, output(proc)
    assert_baton_checked(proc)
    for i, stream in enumerate(streams, 1):
        assert (tmp_path / f'{i}.mp4').read_bytes() == stream.expected
    kept = [line for line in proc.stderr.splitlines() if 'baton kept while waiting in' in line]
    assert not any('HlsFD.real_download' in line for line in kept), kept
    lines = proc.stdout.splitlines()
    first_done = next(i for i, line in enumerate(lines) if line.startswith('[download] 100%'))
    assert any('Downloading item 3 of 3' in line for line in lines[:first_done]), proc.stdout
