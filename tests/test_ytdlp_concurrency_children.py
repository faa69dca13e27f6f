"""Concurrent playlist entries whose postprocessors run child processes (ffmpeg, --exec).

Every postprocessor that runs a child is run on a 4-entry playlist whose
entries download at once, and compared with yt-dlp alone
(``--no-async-downloads``) on the same playlist: same files, same bytes, exit
0.  Each run has a 60 s timeout, so a deadlock (an entry parked on the baton
while holding the lock of ``FFmpegPostProcessor.available``, a
``functools.cached_property``, which another entry waits for while holding the
baton) fails instead of hanging.  Every entry's first use of ffmpeg (the
version probe) happens in its own worker, at the same time as the others'.

The playlist is a ``--load-info-json`` playlist whose formats, thumbnails and
media are served by the fault server (throttled, so that entries overlap), or
the fault server's ``/page`` for the generic extractor.
"""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
import urllib.parse
from pathlib import Path
from typing import Any

import pytest

from ytdlp_support import output, require_engine, require_hook, run_ytdlp, sha256_file

CHECK = {'YTDLP_ASYNC_BATON_CHECK': '1'}
ENTRIES = 4
TIMEOUT = 60


@pytest.fixture(autouse=True)
def _installed() -> None:
    require_hook()
    require_engine()
    if shutil.which('ffmpeg') is None or shutil.which('ffprobe') is None:
        pytest.skip('ffmpeg not found (Debian: apt-get install ffmpeg)')


@functools.lru_cache(maxsize=None)
def media(directory: str) -> dict[str, bytes]:
    """A 2 s test video (H.264 + AAC), its video-only and audio-only parts, and a PNG thumbnail."""
    work = Path(directory)
    work.mkdir(parents=True, exist_ok=True)
    ffmpeg = ['ffmpeg', '-hide_banner', '-loglevel', 'error', '-y']
    subprocess.run([*ffmpeg, '-f', 'lavfi', '-i', 'testsrc=duration=2:size=160x120:rate=10',
                    '-f', 'lavfi', '-i', 'sine=frequency=440:duration=2', '-c:v', 'libx264', '-preset', 'ultrafast',
                    '-pix_fmt', 'yuv420p', '-c:a', 'aac', '-shortest', str(work / 'b.mp4')], check=True)
    subprocess.run([*ffmpeg, '-i', str(work / 'b.mp4'), '-c', 'copy', '-an', str(work / 'v.mp4')], check=True)
    subprocess.run([*ffmpeg, '-i', str(work / 'b.mp4'), '-c', 'copy', '-vn', str(work / 'a.m4a')], check=True)
    subprocess.run([*ffmpeg, '-f', 'lavfi', '-i', 'testsrc=size=64x48', '-frames:v', '1', str(work / 't.png')],
                   check=True)
    return {name: (work / name).read_bytes() for name in ('b.mp4', 'v.mp4', 'a.m4a', 't.png')}


@pytest.fixture
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    return media(str(tmp_path_factory.getbasetemp() / 'children-media'))


def playlist_json(server: Any, files: dict[str, bytes], path: Path) -> Path:
    """A playlist of ENTRIES videos, each with a combined format, video+audio formats and a thumbnail."""
    entries = []
    for i in range(1, ENTRIES + 1):
        def url(name: str) -> str:
            return server.add_file(f'e{i}/{name}', files[name]) + '?rate=150000'
        entries.append({
            'id': f'e{i}', 'title': f'entry {i}', 'extractor': 'generic', 'extractor_key': 'Generic',
            'webpage_url': f'http://127.0.0.1/e{i}', 'thumbnail': server.add_file(f'e{i}/t.png', files['t.png']),
            'formats': [
                {'format_id': 'v', 'url': url('v.mp4'), 'ext': 'mp4', 'protocol': 'http',
                 'vcodec': 'avc1.42c00d', 'acodec': 'none', 'width': 160, 'height': 120, 'tbr': 300},
                {'format_id': 'a', 'url': url('a.m4a'), 'ext': 'm4a', 'protocol': 'http',
                 'vcodec': 'none', 'acodec': 'mp4a.40.2', 'abr': 128, 'tbr': 128},
                {'format_id': 'b', 'url': url('b.mp4'), 'ext': 'mp4', 'protocol': 'http',
                 'vcodec': 'avc1.42c00d', 'acodec': 'mp4a.40.2', 'width': 160, 'height': 120, 'tbr': 100},
            ],
        })
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({
        '_type': 'playlist', 'id': 'pl', 'title': 'PL', 'extractor': 'generic', 'extractor_key': 'Generic',
        'webpage_url': 'http://127.0.0.1/pl', 'entries': entries,
    }))
    return path


def run(directory: Path, args: list[str], native: bool) -> subprocess.CompletedProcess[str]:
    directory.mkdir(parents=True, exist_ok=True)
    # in a pipe entries run at once only when asked for (a program may be reading the output)
    switch = ['--no-async-downloads'] if native else ['--concurrent-downloads', '5']
    try:
        return run_ytdlp([*switch, '--retry-sleep', '0', *args], directory, timeout=TIMEOUT, env=CHECK)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f'yt-dlp {" ".join(args)} did not end within {TIMEOUT} s (deadlock?)\n'
                    f'{(exc.stdout or b"")[-3000:]!r}\n{(exc.stderr or b"")[-3000:]!r}')


def streams(path: Path) -> str:
    probe = subprocess.run(['ffprobe', '-v', 'error', '-show_entries', 'stream=codec_type,codec_name,duration_ts',
                            '-of', 'csv=p=0', str(path)], capture_output=True, text=True, check=True)
    return probe.stdout


def listing(directory: Path) -> dict[str, str]:
    """File name -> SHA-256 (Matroska, which holds a random segment UID: its streams)."""
    return {p.name: streams(p) if p.suffix == '.mkv' else sha256_file(p)
            for p in sorted(directory.iterdir()) if p.is_file()}


def assert_like_native(conc: subprocess.CompletedProcess[str], native: subprocess.CompletedProcess[str],
                       conc_dir: Path, native_dir: Path) -> None:
    assert native.returncode == 0, output(native)
    assert conc.returncode == 0, output(conc)
    assert 'BATON VIOLATION' not in conc.stderr, output(conc)
    assert ', 0 violations' in conc.stderr, output(conc)  # the entries did run concurrently, checked
    ours, theirs = listing(conc_dir), listing(native_dir)
    assert sorted(ours) == sorted(theirs), output(conc)
    assert ours == theirs


CASES = {
    'merge': ['-f', 'bv*+ba'],
    'embed-metadata': ['-f', 'b', '--embed-metadata'],
    'embed-thumbnail': ['-f', 'b', '--embed-thumbnail'],
    'merge-metadata-thumbnail': ['-f', 'bv*+ba', '--embed-metadata', '--embed-thumbnail'],
    'extract-audio': ['-f', 'b', '-x'],
    'remux-video': ['-f', 'b', '--remux-video', 'mkv'],
    'exec': ['-f', 'b', '--exec', 'echo EXEC {}'],
}


@pytest.mark.parametrize('case', sorted(CASES))
def test_postprocessor_children_with_concurrent_entries(tmp_path: Path, fault_server, files: dict[str, bytes],
                                                        case: str) -> None:
    info = playlist_json(fault_server, files, tmp_path / 'pl.json')
    args = [*CASES[case], '--no-clean-info-json', '--load-info-json', str(info), '-o', '%(id)s.%(ext)s']
    native = run(tmp_path / 'native', args, native=True)
    conc = run(tmp_path / 'conc', args, native=False)
    # ffmpeg's output is the same bytes for the same input; thumbnails embed the same picture
    assert_like_native(conc, native, tmp_path / 'conc', tmp_path / 'native')
    if case == 'exec':
        lines = sorted(line for line in conc.stdout.splitlines() if line.startswith('EXEC '))
        assert lines == [f'EXEC {tmp_path / "conc" / f"e{i}.mp4"}' for i in range(1, ENTRIES + 1)], output(conc)


def test_generic_page_embed_metadata(tmp_path: Path, fault_server, files: dict[str, bytes]) -> None:
    """The reported command: ``-f b --embed-metadata`` on a generic page of 4 videos (hung after 2 files)."""
    videos = [urllib.parse.urlsplit(fault_server.add_file(f'p{i}.mp4', files['b.mp4'])).path + '?rate=150000'
              for i in range(1, ENTRIES + 1)]
    page = fault_server.url('/page?' + urllib.parse.urlencode({'title': 'PL', 'videos': ','.join(videos)}))
    args = ['-f', 'b', '--embed-metadata', '-o', '%(playlist_index)s.%(ext)s', page]
    native = run(tmp_path / 'native', args, native=True)
    conc = run(tmp_path / 'conc', args, native=False)
    assert_like_native(conc, native, tmp_path / 'conc', tmp_path / 'native')
    assert sorted(listing(tmp_path / 'conc')) == [f'{i}.mp4' for i in range(1, ENTRIES + 1)]
