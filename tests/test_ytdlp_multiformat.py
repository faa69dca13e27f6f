"""Video and audio downloaded at the same time (``-f bv+ba``), then merged by yt-dlp's ffmpeg merger."""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from fragment_streams import FRAGMENT_LINE
from ytdlp_support import output, require_engine, require_hook, run_ytdlp, sha256_file

MULTI_LINE = 'Invoking async_multi downloader on'


@pytest.fixture(autouse=True)
def _installed() -> None:
    require_hook()
    require_engine()
    if shutil.which('ffmpeg') is None:
        pytest.skip('ffmpeg not found (Debian: apt-get install ffmpeg)')


@functools.lru_cache(maxsize=None)
def media(directory: str) -> tuple[bytes, bytes]:
    """A 3 s test video (H.264 + AAC) made by ffmpeg, split into video-only mp4 and audio-only m4a."""
    work = Path(directory)
    work.mkdir(parents=True, exist_ok=True)
    ffmpeg = ['ffmpeg', '-hide_banner', '-loglevel', 'error', '-y']
    subprocess.run([*ffmpeg, '-f', 'lavfi', '-i', 'testsrc=duration=3:size=320x240:rate=25',
                    '-f', 'lavfi', '-i', 'sine=frequency=440:duration=3', '-c:v', 'libx264', '-preset', 'ultrafast',
                    '-pix_fmt', 'yuv420p', '-c:a', 'aac', '-shortest', str(work / 'src.mp4')], check=True)
    subprocess.run([*ffmpeg, '-i', str(work / 'src.mp4'), '-c', 'copy', '-an', str(work / 'v.mp4')], check=True)
    subprocess.run([*ffmpeg, '-i', str(work / 'src.mp4'), '-c', 'copy', '-vn', str(work / 'a.m4a')], check=True)
    return (work / 'v.mp4').read_bytes(), (work / 'a.m4a').read_bytes()


@pytest.fixture
def video_audio(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, bytes]:
    return media(str(tmp_path_factory.getbasetemp() / 'media'))


def split(data: bytes, parts: int) -> list[bytes]:
    step = -(-len(data) // parts)
    return [data[i:i + step] for i in range(0, len(data), step)]


VIDEO_FIELDS = {'format_id': 'v', 'ext': 'mp4', 'vcodec': 'avc1.42c00d', 'acodec': 'none',
                'width': 320, 'height': 240, 'tbr': 300}
AUDIO_FIELDS = {'format_id': 'a', 'ext': 'm4a', 'vcodec': 'none', 'acodec': 'mp4a.40.2', 'abr': 128, 'tbr': 128}


def http_format(server: Any, name: str, data: bytes, fields: dict[str, Any], **query: Any) -> dict[str, Any]:
    url = server.add_file(name, data)
    if query:
        url += '?' + '&'.join(f'{k}={v}' for k, v in query.items())
    return {**fields, 'url': url, 'protocol': 'http'}


def hls_format(server: Any, name: str, data: bytes, fields: dict[str, Any]) -> dict[str, Any]:
    lines = ['#EXTM3U', '#EXT-X-VERSION:3', '#EXT-X-TARGETDURATION:1', '#EXT-X-MEDIA-SEQUENCE:0']
    for i, part in enumerate(split(data, 7)):
        server.add_file(f'{name}/s{i}.bin', part)
        lines += ['#EXTINF:1.0,', f's{i}.bin?latency=50']
    lines.append('#EXT-X-ENDLIST')
    url = server.add_file(f'{name}/index.m3u8', ('\n'.join(lines) + '\n').encode())
    return {**fields, 'url': url, 'manifest_url': url, 'protocol': 'm3u8_native'}


def dash_format(server: Any, name: str, data: bytes, fields: dict[str, Any]) -> dict[str, Any]:
    parts = split(data, 5)
    for i, part in enumerate(parts):
        server.add_file(f'{name}/c{i}.m4s', part)
    base = server.url(f'/file/{name}/')
    return {**fields, 'url': base + 'manifest.mpd', 'manifest_url': base + 'manifest.mpd',
            'protocol': 'http_dash_segments', 'fragment_base_url': base,
            'fragments': [{'path': f'c{i}.m4s?latency=50'} for i in range(len(parts))]}


def write_video_info(path: Path, formats: list[dict[str, Any]]) -> Path:
    path.write_text(json.dumps({
        'id': 'av', 'title': 'video and audio', 'extractor': 'generic', 'extractor_key': 'Generic',
        'webpage_url': 'http://127.0.0.1/av', 'formats': formats,
    }))
    return path


def run_merge(directory: Path, formats: list[dict[str, Any]], switch: str, *args: str
              ) -> subprocess.CompletedProcess[str]:
    directory.mkdir(parents=True, exist_ok=True)
    info = write_video_info(directory / 'info.json', formats)
    # in a pipe the formats download at once only when asked for (a program may be reading the output)
    asked = ['--concurrent-downloads', '2'] if switch == '--async-downloads' else []
    return run_ytdlp(['-v', switch, *asked, '-f', 'bv+ba', '-k', '--load-info-json', str(info), '-o', 'out.%(ext)s',
                      *args], directory, timeout=180)


def assert_merged_like_native(engine_dir: Path, native_dir: Path, video: bytes, audio: bytes) -> None:
    # -k keeps the parts under the names yt-dlp alone gives them: NAME.f<id>.<the format's ext>
    assert (engine_dir / 'out.fv.mp4').read_bytes() == video
    assert (engine_dir / 'out.fa.m4a').read_bytes() == audio
    assert sorted(p.name for p in engine_dir.iterdir() if p.is_file()) == \
        sorted(p.name for p in native_dir.iterdir() if p.is_file())
    assert sha256_file(engine_dir / 'out.mp4') == sha256_file(native_dir / 'out.mp4')
    probe = subprocess.run(['ffprobe', '-v', 'error', '-show_entries', 'stream=codec_type', '-of', 'csv=p=0',
                            str(engine_dir / 'out.mp4')], capture_output=True, text=True, check=True)
    assert sorted(probe.stdout.split()) == ['audio', 'video']


def test_video_and_audio_over_https_at_the_same_time(tmp_path: Path, fault_server, video_audio) -> None:
    video, audio = video_audio
    rate = max(len(video), len(audio))  # about one second each
    formats = [http_format(fault_server, 'v.mp4', video, VIDEO_FIELDS, rate=rate),
               http_format(fault_server, 'a.m4a', audio, AUDIO_FIELDS, rate=rate)]
    started = time.monotonic()
    engine = run_merge(tmp_path / 'engine', formats, '--async-downloads', '--newline')
    engine_time = time.monotonic() - started
    assert engine.returncode == 0, output(engine)
    assert MULTI_LINE in engine.stderr, output(engine)
    assert '[Merger] Merging formats into "out.mp4"' in engine.stdout, output(engine)
    fault_server.wait_idle()
    downloads = [e for e in fault_server.requests() if e.method == 'GET' and e.path in ('/file/v.mp4', '/file/a.m4a')]
    assert len(downloads) == 2
    first, second = sorted(downloads, key=lambda e: e.started)
    assert second.started < first.finished, 'the two formats did not overlap'
    lines = engine.stdout.splitlines()  # yt-dlp's multi-line progress: one numbered line per format
    assert any(line.startswith('1: [download]') for line in lines), output(engine)
    assert any(line.startswith('2: [download]') for line in lines), output(engine)

    native = run_merge(tmp_path / 'native', formats, '--no-async-downloads')
    assert native.returncode == 0, output(native)
    assert MULTI_LINE not in native.stderr
    assert_merged_like_native(tmp_path / 'engine', tmp_path / 'native', video, audio)
    assert engine_time < 30, output(engine)


def test_hls_video_with_dash_audio(tmp_path: Path, fault_server, video_audio) -> None:
    video, audio = video_audio
    formats = [hls_format(fault_server, 'hv', video, VIDEO_FIELDS), dash_format(fault_server, 'da', audio, AUDIO_FIELDS)]
    engine = run_merge(tmp_path / 'engine', formats, '--async-downloads')
    assert engine.returncode == 0, output(engine)
    assert MULTI_LINE in engine.stderr and engine.stderr.count(FRAGMENT_LINE) == 2, output(engine)
    native = run_merge(tmp_path / 'native', formats, '--no-async-downloads', '--fixup', 'never')
    assert native.returncode == 0, output(native)
    assert_merged_like_native(tmp_path / 'engine', tmp_path / 'native', video, audio)


def test_resumes_the_format_that_was_not_finished(tmp_path: Path, fault_server, video_audio) -> None:
    """A finished format file is kept ("already downloaded"), as in yt-dlp's one-after-the-other path."""
    video, audio = video_audio
    formats = [http_format(fault_server, 'v2.mp4', video, VIDEO_FIELDS),
               http_format(fault_server, 'a2.m4a', audio, AUDIO_FIELDS)]
    directory = tmp_path / 'engine'
    directory.mkdir()
    (directory / 'out.fv.mp4').write_bytes(video)
    engine = run_merge(directory, formats, '--async-downloads')
    assert engine.returncode == 0, output(engine)
    assert 'out.fv.mp4 has already been downloaded' in engine.stdout, output(engine)
    fault_server.wait_idle()
    assert not [e for e in fault_server.requests() if e.path == '/file/v2.mp4' and e.method == 'GET']
    assert (directory / 'out.fa.m4a').read_bytes() == audio


def test_keep_into_mkv_names_the_parts_as_yt_dlp(tmp_path: Path, fault_server, video_audio) -> None:
    """``-k --merge-output-format mkv``: yt-dlp keeps out.fv.mp4 / out.fa.m4a, not MP4 data in out.fv.mkv."""
    video, audio = video_audio
    formats = [http_format(fault_server, 'v4.mp4', video, VIDEO_FIELDS),
               http_format(fault_server, 'a4.m4a', audio, AUDIO_FIELDS)]
    engine = run_merge(tmp_path / 'engine', formats, '--async-downloads', '--merge-output-format', 'mkv')
    native = run_merge(tmp_path / 'native', formats, '--no-async-downloads', '--merge-output-format', 'mkv')
    assert engine.returncode == native.returncode == 0, output(engine) + output(native)
    assert MULTI_LINE in engine.stderr, output(engine)
    kept = sorted(p.name for p in (tmp_path / 'engine').iterdir() if p.is_file())
    assert kept == sorted(p.name for p in (tmp_path / 'native').iterdir() if p.is_file())
    assert kept == ['info.json', 'out.fa.m4a', 'out.fv.mp4', 'out.mkv']
    assert (tmp_path / 'engine' / 'out.fv.mp4').read_bytes() == video
    assert (tmp_path / 'engine' / 'out.fa.m4a').read_bytes() == audio
    assert '[Merger] Merging formats into "out.mkv"' in engine.stdout, output(engine)


def test_no_async_or_stdout_keeps_yt_dlp_path(tmp_path: Path, fault_server, video_audio) -> None:
    video, audio = video_audio
    formats = [http_format(fault_server, 'v3.mp4', video, VIDEO_FIELDS),
               http_format(fault_server, 'a3.m4a', audio, AUDIO_FIELDS)]
    directory = tmp_path / 'single'
    proc = run_merge(directory, formats, '--async-downloads', '-f', 'bv')
    assert proc.returncode == 0, output(proc)
    assert MULTI_LINE not in proc.stderr
