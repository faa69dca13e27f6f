"""yt-dlp's internals are named in one module and checked once; our own failures fall back to yt-dlp.

* Only ``yt_dlp_async/ytdlp/internals.py`` imports from ``yt_dlp``; every name
  passed to ``internals.load`` is listed in ``internals.NAMES``.
* On a yt-dlp at or above ``OLDEST_YTDLP`` every name resolves; below it (CI's
  version matrix installs one with ``--no-deps``) the plugin stands aside as a
  whole: ``-v`` says why and http, HLS and playlist downloads are exact through
  yt-dlp's own downloaders.
* The boundary (boundary.py): an exception from our code before the first byte
  sends that download to yt-dlp's downloader (a WARNING for a bug, a [debug]
  line for an OSError); after a byte it propagates and nothing is fetched twice.
"""

from __future__ import annotations

import ast
import json
import textwrap
import urllib.parse
from pathlib import Path

import pytest

from faultserver import sha256_of
from fragment_streams import hls_stream, random_segments, write_info
from ytdlp_support import (
    ENGINE_LINE, NATIVE_LINE, get_requests, output, page_url, require_engine, require_hook, run_python,
    run_ytdlp, sha256_file, video_path, write_info_json)

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / 'yt_dlp_async'


def installed_version() -> tuple[str, bool]:
    """The installed yt-dlp's version, and whether it is at or above the oldest we support."""
    from yt_dlp.version import __version__

    from yt_dlp_async.ytdlp import internals
    return __version__, internals.version_tuple(__version__) >= internals.version_tuple(internals.OLDEST_YTDLP)


def _python_files() -> list[Path]:
    return sorted(PACKAGE.rglob('*.py'))


def test_only_internals_imports_ytdlp() -> None:
    offenders = []
    for path in _python_files():
        if path.name == 'internals.py':
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            offenders += [f'{path.relative_to(ROOT)}:{node.lineno} imports {name}'
                          for name in names if name == 'yt_dlp' or name.startswith('yt_dlp.')]
    assert offenders == []


def test_every_loaded_name_is_listed() -> None:
    from yt_dlp_async.ytdlp import internals
    loaded = set()
    for path in _python_files():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == 'load'
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == 'internals'):
                assert node.args and isinstance(node.args[0], ast.Constant), f'{path}:{node.lineno}'
                loaded.add(node.args[0].value)
    assert loaded, 'no internals.load() call found: the scan is broken'
    assert sorted(loaded - set(internals.NAMES)) == []
    with pytest.raises(internals.InternalMissing, match='not named in'):
        internals.load('yt_dlp.utils:not_a_listed_name')


def test_version_tuple_orders_releases_and_nightlies() -> None:
    from yt_dlp_async.ytdlp.internals import version_tuple
    assert version_tuple('2025.05.22') == (2025, 5, 22)
    assert version_tuple('2025.04.30') < version_tuple('2025.05.22') < version_tuple('2025.5.22.1')
    assert version_tuple('2026.10.26.220202') > version_tuple('2026.10.26')


def test_check_passes_on_a_supported_ytdlp() -> None:
    version, supported = installed_version()
    if not supported:
        pytest.skip(f'yt-dlp {version} is below the oldest supported: see the tests below')
    from yt_dlp_async.ytdlp import internals
    assert internals.check() is None
    missing = []
    for name in internals.NAMES:
        try:
            internals.load(name)
        except internals.InternalMissing as exc:
            missing.append(str(exc))
    assert missing == []


# ------------------------------------------------------------ below the oldest
@pytest.fixture
def below_oldest() -> str:
    require_hook()
    version, supported = installed_version()
    if supported:
        pytest.skip(f'yt-dlp {version} is supported; CI installs an older one for these tests (make test-versions)')
    return version


def test_below_oldest_http_is_exact_through_httpfd(tmp_path: Path, fault_server, below_oldest: str) -> None:
    from yt_dlp_async.ytdlp.internals import OLDEST_YTDLP
    size = 3_000_000
    proc = run_ytdlp(['-v', '-o', 'out.bin', fault_server.data_url(size, 'bin')], tmp_path)
    assert proc.returncode == 0, output(proc)
    assert sha256_file(tmp_path / 'out.bin') == sha256_of(size)
    assert NATIVE_LINE in proc.stderr and ENGINE_LINE not in proc.stderr
    assert f'older than {OLDEST_YTDLP}' in proc.stderr  # the -v line says why
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != '.home') == ['out.bin']


def test_below_oldest_hls_is_exact(tmp_path: Path, fault_server, below_oldest: str) -> None:
    segments = random_segments(6)
    stream = hls_stream(fault_server, 'old', segments)
    info = write_info(tmp_path, stream)
    proc = run_ytdlp(['-v', '--load-info-json', str(info), '-o', 'hls.ts'], tmp_path)
    assert proc.returncode == 0, output(proc)
    assert (tmp_path / 'hls.ts').read_bytes() == b''.join(segments)
    assert '[async] Fragments through the engine' not in proc.stderr


def test_below_oldest_playlist_is_sequential_and_exact(tmp_path: Path, fault_server, below_oldest: str) -> None:
    sizes = [200_000 + i for i in range(1, 5)]
    page = page_url(fault_server, [video_path(i, size) for i, size in enumerate(sizes, 1)])
    proc = run_ytdlp(['-v', '-o', '%(playlist_index)s.%(ext)s', page], tmp_path)
    assert proc.returncode == 0, output(proc)
    for i, size in enumerate(sizes, 1):
        assert sha256_file(tmp_path / f'{i}.mp4') == sha256_of(size, i)
    assert '[item ' not in proc.stdout  # no concurrent-entry labels
    assert 'items are processed one at a time: yt-dlp' in proc.stderr


# ------------------------------------------------------------------ the boundary
@pytest.fixture
def supported() -> None:
    require_hook()
    require_engine()
    version, ok = installed_version()
    if not ok:
        pytest.skip(f'yt-dlp {version} is below the oldest supported: the plugin stands aside')


BOUNDARY_SCRIPT = '''
import json, sys
import yt_dlp
from yt_dlp_async.ytdlp import {module} as target

def broken(self, *args, **kwargs):
    raise {exception}('injected by the test')

{patch}
messages = []
class Logger:
    def debug(self, msg): messages.append(msg)
    def info(self, msg): messages.append(msg)
    def warning(self, msg): messages.append('WARNING: ' + msg)
    def error(self, msg): messages.append('ERROR: ' + msg)
opts = {{'outtmpl': 'out.%(ext)s', 'logger': Logger(), 'verbose': True, 'retries': 0, 'async_downloads': True}}
with yt_dlp.YoutubeDL(opts) as ydl:
    try:
        code = ydl.download_with_info_file('info.json')
    except Exception as exc:  # what the yt-dlp command line shows as a traceback
        code = 'raised'
        messages.append(f'RAISED: {{type(exc).__name__}}: {{exc}}')
print(json.dumps({{'code': code, 'messages': messages}}))
'''


#: HttpDownload.run and SegmentedDownload.run raise (which one runs depends on the file and the server)
BREAK_BOTH_PATHS = '''
target.HttpDownload.run = broken
from yt_dlp_async.ytdlp import segmented_download
segmented_download.SegmentedDownload.run = broken
'''


def run_with_patch(tmp_path: Path, module: str, patch: str, exception: str = 'RuntimeError') -> dict:
    code = BOUNDARY_SCRIPT.format(module=module, exception=exception, patch=textwrap.dedent(patch))
    proc = run_python(code, tmp_path)
    assert proc.returncode == 0, output(proc)
    return json.loads(proc.stdout.splitlines()[-1])


def test_a_bug_before_the_first_byte_falls_back_with_a_warning(tmp_path: Path, fault_server, supported: None) -> None:
    size = 700_000
    write_info_json(tmp_path / 'info.json', fault_server.data_url(size, 'mp4'))
    result = run_with_patch(tmp_path, 'http_download', BREAK_BOTH_PATHS)
    assert result['code'] == 0, result
    assert sha256_file(tmp_path / 'out.mp4') == sha256_of(size)
    warnings = [m for m in result['messages'] if m.startswith('WARNING: [async]')]
    assert len(warnings) == 1 and 'RuntimeError: injected by the test' in warnings[0], result['messages']
    assert "yt-dlp's http downloader" in warnings[0]
    assert sorted(p.name for p in tmp_path.iterdir() if p.name not in ('.home', 'info.json')) == ['out.mp4']


def test_an_oserror_before_the_first_byte_is_a_debug_line(tmp_path: Path, fault_server, supported: None) -> None:
    size = 300_000
    write_info_json(tmp_path / 'info.json', fault_server.data_url(size, 'mp4'))
    result = run_with_patch(tmp_path, 'http_download', BREAK_BOTH_PATHS, exception='PermissionError')
    assert result['code'] == 0, result
    assert sha256_file(tmp_path / 'out.mp4') == sha256_of(size)
    assert not [m for m in result['messages'] if m.startswith('WARNING')], result['messages']
    lines = [m for m in result['messages'] if m.startswith("[debug] [async] Using yt-dlp's http downloader")]
    assert lines == ["[debug] [async] Using yt-dlp's http downloader: the engine could not write the file "
                     "(PermissionError: injected by the test)"]


def test_a_bug_after_bytes_are_written_propagates(tmp_path: Path, fault_server, supported: None) -> None:
    """Once the file has bytes, falling back could fetch (and write) them twice: the error is reported."""
    size = 500_000
    url = fault_server.data_url(size, 'mp4')
    write_info_json(tmp_path / 'info.json', url)
    result = run_with_patch(tmp_path, 'http_download', '''
        original = target.HttpDownload.run
        def run_then_fail(self, *args, **kwargs):
            original(self, *args, **kwargs)
            raise RuntimeError('injected by the test')
        target.HttpDownload.run = run_then_fail
        from yt_dlp_async.ytdlp import segmented_download
        original_segmented = segmented_download.SegmentedDownload.run
        def segmented_then_fail(self, *args, **kwargs):
            original_segmented(self, *args, **kwargs)
            raise RuntimeError('injected by the test')
        segmented_download.SegmentedDownload.run = segmented_then_fail
    ''')
    assert result['code'] == 'raised', result
    assert result['messages'][-1] == 'RAISED: RuntimeError: injected by the test'
    assert not [m for m in result['messages'] if m.startswith('WARNING: [async]')]
    path = urllib.parse.urlsplit(url).path
    requests = get_requests(fault_server, path)
    assert requests and sum(r.bytes_sent for r in requests) <= size  # not fetched twice


def test_a_bug_in_the_fragment_pipeline_falls_back_to_ytdlps_loop(tmp_path: Path, fault_server, supported: None) -> None:
    segments = random_segments(5)
    stream = hls_stream(fault_server, 'boundary', segments)
    write_info(tmp_path, stream)
    result = run_with_patch(tmp_path, 'fragment_pipeline', 'target.FragmentPipeline.run = broken\n')
    assert result['code'] == 0, result
    outputs = [p for p in tmp_path.iterdir() if p.name.startswith('out.')]
    assert len(outputs) == 1 and outputs[0].read_bytes() == b''.join(segments)
    warnings = [m for m in result['messages'] if m.startswith('WARNING: [async]')]
    assert len(warnings) == 1 and "yt-dlp's hlsnative downloader" in warnings[0], result['messages']
