"""What does not go through the engine goes to yt-dlp's own downloader, with one [debug] reason."""

from __future__ import annotations

import os
import shutil
import textwrap
from pathlib import Path

import pytest

from faultserver import content, sha256_of
from ytdlp_support import (
    ENGINE_LINE, NATIVE_LINE, get_requests, output, require_engine, require_hook, run_python, run_ytdlp,
    sha256_file, write_info_json)

REASON = '[debug] [async] Using yt-dlp\'s {fd} downloader: {reason}'


@pytest.fixture(autouse=True)
def _installed() -> None:
    require_hook()


def reason_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("[debug] [async] Using yt-dlp's")]


def download(tmp_path: Path, server, *args: str, size: int = 40_000, disable_hook: bool = False,
             **query: object) -> tuple[str, Path]:
    out = tmp_path / 'out.mp4'
    proc = run_ytdlp(['-v', *args, '-o', str(out), server.data_url(size, 'mp4', **query)], tmp_path,
                     disable_hook=disable_hook)
    assert proc.returncode == 0, output(proc)
    assert sha256_file(out) == sha256_of(size)
    return proc.stderr, out


def test_default_uses_the_engine(tmp_path: Path, fault_server) -> None:
    require_engine()
    stderr, _ = download(tmp_path, fault_server)
    assert ENGINE_LINE in stderr and NATIVE_LINE not in stderr
    assert reason_lines(stderr) == []


def test_no_async_downloads_really_uses_httpfd(tmp_path: Path, fault_server) -> None:
    stderr, _ = download(tmp_path, fault_server, '--no-async-downloads')
    assert NATIVE_LINE in stderr and ENGINE_LINE not in stderr
    assert reason_lines(stderr) == []  # switched off, not a fallback
    # HttpFD's own request: urllib sends Connection: close, requests keep-alive; libcurl sends none
    assert get_requests(fault_server, '/data/40000.mp4')[-1].header('Connection') in ('close', 'keep-alive')


def test_explicit_native_downloader(tmp_path: Path, fault_server) -> None:
    stderr, _ = download(tmp_path, fault_server, '--downloader', 'native')
    assert reason_lines(stderr) == [REASON.format(fd='http', reason='--downloader native was given')]
    assert NATIVE_LINE in stderr


@pytest.mark.skipif(shutil.which('curl') is None, reason='curl binary not installed')
@pytest.mark.skipif(bool(os.environ.get('YTDLP_ASYNC_SANITIZED')),
                    reason="make sanitize preloads ASan into every child, and the curl binary hangs with it")
def test_explicit_external_downloader(tmp_path: Path, fault_server) -> None:
    stderr, _ = download(tmp_path, fault_server, '--downloader', 'curl')
    assert reason_lines(stderr) == [REASON.format(fd='curl', reason='--downloader curl was given')]
    assert 'Invoking curl downloader on' in stderr


@pytest.mark.parametrize('choice', ['async', 'http:async', 'default:async'])
def test_downloader_async_selects_the_engine(tmp_path: Path, fault_server, choice: str) -> None:
    require_engine()
    stderr, _ = download(tmp_path, fault_server, '--no-async-downloads', '--downloader', choice)
    assert ENGINE_LINE in stderr and NATIVE_LINE not in stderr


def test_impersonation_falls_back(tmp_path: Path, fault_server) -> None:
    info = write_info_json(tmp_path / 'i.json', fault_server.data_url(30_000, 'mp4'), impersonate='chrome')
    proc = run_ytdlp(['-v', '--load-info-json', str(info), '-o', 'imp.mp4'], tmp_path)
    assert proc.returncode == 0, output(proc)
    assert reason_lines(proc.stderr) == [REASON.format(fd='http', reason=(
        'impersonation was requested (--impersonate or the format needs it); libcurl cannot impersonate'))]
    assert NATIVE_LINE in proc.stderr
    assert sha256_file(tmp_path / 'imp.mp4') == sha256_of(30_000)


def test_live_stream_falls_back(tmp_path: Path, fault_server) -> None:
    info = write_info_json(tmp_path / 'i.json', fault_server.data_url(30_000, 'mp4'), is_live=True)
    proc = run_ytdlp(['-v', '--load-info-json', str(info), '-o', 'live.mp4'], tmp_path)
    assert proc.returncode == 0, output(proc)
    assert reason_lines(proc.stderr) == [REASON.format(fd='http', reason='live streams are not handled by the engine')]
    assert NATIVE_LINE in proc.stderr


def test_legacy_server_connect_falls_back(tmp_path: Path, fault_server) -> None:
    stderr, _ = download(tmp_path, fault_server, '--legacy-server-connect')
    assert reason_lines(stderr) == [REASON.format(
        fd='http', reason='--legacy-server-connect has no libcurl equivalent in the engine')]
    assert NATIVE_LINE in stderr


def test_hls_uses_the_engine_unless_native_is_asked_for(tmp_path: Path, fault_server) -> None:
    """HLS fragments go to the engine (AsyncHlsFD, tests/test_ytdlp_fragments.py); --downloader native keeps yt-dlp's."""
    segments = [bytes([65 + i]) * 5000 for i in range(3)]
    names = [fault_server.add_file(f'hls/seg{i}.ts', data, 'video/mp2t') for i, data in enumerate(segments)]
    playlist = '#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n'
    playlist += ''.join(f'#EXTINF:2.0,\n{url}\n' for url in names) + '#EXT-X-ENDLIST\n'
    m3u8 = fault_server.add_file('hls/index.m3u8', playlist.encode(), 'application/vnd.apple.mpegurl')
    info = write_info_json(tmp_path / 'i.json', m3u8, protocol='m3u8_native', ext='ts')
    proc = run_ytdlp(['-v', '--load-info-json', str(info), '-o', 'hls.ts'], tmp_path)
    assert proc.returncode == 0, output(proc)
    assert reason_lines(proc.stderr) == []
    assert 'Invoking hlsnative downloader on' in proc.stderr
    assert '[async] Fragments through the engine' in proc.stderr
    assert (tmp_path / 'hls.ts').read_bytes() == b''.join(segments)

    proc = run_ytdlp(['-v', '--downloader', 'm3u8:native', '--load-info-json', str(info), '-o', 'native.ts'], tmp_path)
    assert proc.returncode == 0, output(proc)
    assert reason_lines(proc.stderr) == [REASON.format(fd='hlsnative', reason='--downloader native was given')]
    assert '[async] Fragments through the engine' not in proc.stderr
    assert (tmp_path / 'native.ts').read_bytes() == b''.join(segments)


def test_extension_failing_to_import_falls_back(tmp_path: Path, fault_server) -> None:
    url = fault_server.data_url(60_000, 'mp4')
    code = textwrap.dedent(f'''
        import sys
        sys.modules['yt_dlp_async._engine'] = None   # the extension cannot be imported
        import yt_dlp
        sys.argv = ['yt-dlp', '-v', '--no-cache-dir', '-o', 'broken.mp4', {url!r}]
        yt_dlp.main()
    ''')
    proc = run_python(code, tmp_path)
    assert proc.returncode == 0, output(proc)
    lines = reason_lines(proc.stderr)
    assert len(lines) == 1 and lines[0].startswith(
        "[debug] [async] Using yt-dlp's http downloader: the engine failed to load (ImportError: "), output(proc)
    assert 'yt_dlp_async._engine' in lines[0]
    assert NATIVE_LINE in proc.stderr and ENGINE_LINE not in proc.stderr
    assert '[debug] [async] Async downloads: on, but the engine failed to load' in proc.stderr
    assert sha256_file(tmp_path / 'broken.mp4') == sha256_of(60_000)


def test_options_parse_when_the_extension_fails(tmp_path: Path) -> None:
    code = ("import sys; sys.modules['yt_dlp_async._engine'] = None; import yt_dlp; "
            "print(yt_dlp.parse_options(['--concurrent-downloads', '3', 'u']).ydl_opts['concurrent_downloads'])")
    proc = run_python(code, tmp_path)
    assert proc.returncode == 0 and proc.stdout.strip() == '3', output(proc)


def test_postprocessor_activates_without_the_hook(tmp_path: Path, fault_server) -> None:
    require_engine()
    stderr, _ = download(tmp_path, fault_server, disable_hook=True)
    assert NATIVE_LINE in stderr and ENGINE_LINE not in stderr  # no hook: plain yt-dlp
    (tmp_path / 'out.mp4').unlink()
    stderr, _ = download(tmp_path, fault_server, '--use-postprocessor', 'AsyncDownloads:when=pre_process',
                         disable_hook=True)
    assert ENGINE_LINE in stderr, stderr
    assert '[debug] [async] Async downloads: on (AsyncDownloads postprocessor);' in stderr


def test_api_install_then_params(tmp_path: Path, fault_server) -> None:
    require_engine()
    url = fault_server.data_url(70_000, 'mp4')
    code = textwrap.dedent(f'''
        import yt_dlp_async
        yt_dlp_async.install()
        from yt_dlp import YoutubeDL
        for flag in (False, True):
            with YoutubeDL({{'async_downloads': flag, 'verbose': True, 'outtmpl': f'api{{flag}}.%(ext)s'}}) as ydl:
                ydl.download([{url!r}])
    ''')
    proc = run_python(code, tmp_path, disable_hook=True)
    assert proc.returncode == 0, output(proc)
    first, second = proc.stderr.split("'async_downloads': True", 1)
    assert NATIVE_LINE in first and ENGINE_LINE not in first
    assert ENGINE_LINE in second
    assert sha256_file(tmp_path / 'apiFalse.mp4') == sha256_file(tmp_path / 'apiTrue.mp4') == sha256_of(70_000)


def test_patch_stands_aside_when_its_target_changed(tmp_path: Path, fault_server) -> None:
    url = fault_server.data_url(25_000, 'mp4')
    code = textwrap.dedent(f'''
        import sys
        import yt_dlp, yt_dlp.downloader as d
        original = d._get_suitable_downloader
        d._get_suitable_downloader = lambda *args: original(*args)  # "a newer yt-dlp" changed it
        import yt_dlp_async.ytdlp
        yt_dlp_async.ytdlp.install()
        sys.argv = ['yt-dlp', '-v', '--no-cache-dir', '-o', 'aside.mp4', {url!r}]
        yt_dlp.main()
    ''')
    proc = run_python(code, tmp_path, disable_hook=True)
    assert proc.returncode == 0, output(proc)
    aside = [l for l in proc.stderr.splitlines() if 'that patch stands aside' in l]
    assert len(aside) == 1 and aside[0].startswith(
        '[debug] [async] yt_dlp.downloader._get_suitable_downloader: unexpected signature'), output(proc)
    assert NATIVE_LINE in proc.stderr
    assert (tmp_path / 'aside.mp4').read_bytes() == content(25_000)
