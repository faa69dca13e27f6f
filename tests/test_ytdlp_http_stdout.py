"""``-o -`` when the connection breaks mid-body (issue 9, item 3).

yt-dlp alone writes each byte once; a retry through the engine must continue
from the count already written (Range + If-Range, Content-Range checked) or,
when the server cannot send the rest into a pipe, fail without writing bytes
twice.  A stdout that is a regular file is written from its position (what
was there before stays, several videos follow one another).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from faultserver import content, sha256_of
from ytdlp_support import (
    PYTHON, get_requests, hermetic_env, require_engine, require_hook, sha256_file, write_info_json,
    write_playlist_json)

SIZE = 5_000_000
RESET_AT = 2_000_000


@pytest.fixture(autouse=True)
def _installed() -> None:
    require_hook()
    require_engine()


def to_file(tmp_path: Path, url: str, out: Path, *extra: str, mode: str = 'wb',
            info: Path | None = None) -> subprocess.CompletedProcess[bytes]:
    """yt-dlp -o - with its stdout the file ``out`` itself (as `yt-dlp -o - > out`)."""
    info = info or write_info_json(tmp_path / f'{out.name}.json', url)
    with open(out, mode) as sink:
        return subprocess.run(
            [PYTHON, '-m', 'yt_dlp', '--no-cache-dir', '-v', '--retry-sleep', '0', '--no-clean-info-json', *extra,
             '--load-info-json', str(info), '-o', '-'],
            cwd=tmp_path, stdout=sink, stderr=subprocess.PIPE, timeout=180, env=hermetic_env(tmp_path / '.home'))


def pipe_to_file(tmp_path: Path, url: str, out: Path, *extra: str) -> subprocess.CompletedProcess[bytes]:
    """yt-dlp -o - with its stdout a pipe read into ``out`` (as `yt-dlp -o - | cat > out`)."""
    info = write_info_json(tmp_path / f'{out.name}.json', url)
    with open(out, 'wb') as sink:
        reader = subprocess.Popen(['cat'], stdin=subprocess.PIPE, stdout=sink)
        proc = subprocess.run(
            [PYTHON, '-m', 'yt_dlp', '--no-cache-dir', '-v', '--retry-sleep', '0', *extra,
             '--load-info-json', str(info), '-o', '-'],
            cwd=tmp_path, stdout=reader.stdin, stderr=subprocess.PIPE, timeout=180,
            env=hermetic_env(tmp_path / '.home'))
        assert reader.stdin is not None
        reader.stdin.close()
        reader.wait(timeout=60)
    return proc


@pytest.mark.parametrize('sink', [pipe_to_file, to_file], ids=['pipe', 'file'])
@pytest.mark.parametrize('native', [False, True], ids=['engine', 'ytdlp-alone'])
def test_reset_mid_body_gives_the_exact_file(tmp_path: Path, fault_server, native: bool, sink) -> None:
    url = fault_server.data_url(SIZE, 'mp4', reset_after=RESET_AT, key=f'native{native}')
    out = tmp_path / 'out.bin'
    proc = sink(tmp_path, url, out, *(['--no-async-downloads'] if native else []))
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    assert out.stat().st_size == SIZE
    assert sha256_file(out) == sha256_of(SIZE)
    if native:
        return
    assert b'Invoking async downloader' in proc.stderr
    first, second = get_requests(fault_server, f'/data/{SIZE}.mp4')
    assert first.outcome == 'reset' and first.range is None
    written = int(second.range.split('=')[1].rstrip('-'))
    assert 0 < written <= RESET_AT
    assert second.header('If-Range') == f'"0-{SIZE}-0"'


def test_server_ignoring_ranges_fails_without_duplicate_bytes(tmp_path: Path, fault_server) -> None:
    url = fault_server.data_url(SIZE, 'mp4', reset_after=RESET_AT, norange=1)
    out = tmp_path / 'out.bin'
    proc = pipe_to_file(tmp_path, url, out)
    err = proc.stderr.decode()
    assert proc.returncode != 0, err[-3000:]
    assert 'unable to continue the download to stdout after' in err, err[-3000:]
    kept = out.stat().st_size
    assert 0 < kept <= SIZE
    assert out.read_bytes() == content(SIZE)[:kept]   # each byte once, in order


def test_resource_changed_before_the_retry_fails_without_mixing(tmp_path: Path, fault_server) -> None:
    # the second request's If-Range no longer matches: the server sends the new file (200),
    # which cannot be appended to the old bytes already in the pipe
    url = fault_server.data_url(SIZE, 'mp4', reset_after=RESET_AT, etag_change=1)
    out = tmp_path / 'out.bin'
    proc = pipe_to_file(tmp_path, url, out)
    err = proc.stderr.decode()
    assert proc.returncode != 0, err[-3000:]
    assert 'unable to continue the download to stdout after' in err, err[-3000:]
    kept = out.stat().st_size
    assert 0 < kept <= RESET_AT
    assert out.read_bytes() == content(SIZE)[:kept]
    requests = get_requests(fault_server, f'/data/{SIZE}.mp4')
    assert requests[1].header('If-Range') == f'"0-{SIZE}-0"' and requests[1].status == 200


@pytest.mark.parametrize('mode', ['r+b', 'ab'], ids=['positioned', 'append'])
@pytest.mark.parametrize('native', [False, True], ids=['engine', 'ytdlp-alone'])
def test_regular_file_stdout_keeps_what_was_there_and_every_video(tmp_path: Path, fault_server,
                                                                   native: bool, mode: str) -> None:
    # `{ echo HEADER; yt-dlp -o - PLAYLIST; } > out`: the header, then each video after the other
    urls = [fault_server.data_url(300_000, 'mp4', seed=1, reset_after=100_000, key=f'{native}{mode}'),
            fault_server.data_url(200_000, 'mp4', seed=2, key=f'{native}{mode}')]
    info = write_playlist_json(tmp_path / 'pl.json', urls)
    out = tmp_path / 'out.bin'
    out.write_bytes(b'HEADER\n')
    with open(out, mode) as f:
        f.seek(0, 2)            # after the header, as the shell leaves it
        proc = subprocess.run(
            [PYTHON, '-m', 'yt_dlp', '--no-cache-dir', '--retry-sleep', '0', '--no-clean-info-json',
             *(['--no-async-downloads'] if native else []), '--load-info-json', str(info), '-o', '-'],
            cwd=tmp_path, stdout=f, stderr=subprocess.PIPE, timeout=180,
            env=hermetic_env(tmp_path / '.home'))
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    assert out.read_bytes() == b'HEADER\n' + content(300_000, 1) + content(200_000, 2)


def test_regular_file_stdout_restarts_when_ranges_are_ignored(tmp_path: Path, fault_server) -> None:
    # unlike a pipe, a file can be written again from its first byte
    url = fault_server.data_url(SIZE, 'mp4', reset_after=RESET_AT, norange=1)
    out = tmp_path / 'out.bin'
    proc = to_file(tmp_path, url, out)
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    assert sha256_file(out) == sha256_of(SIZE)
