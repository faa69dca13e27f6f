"""Fragmented downloads with the plugin against yt-dlp alone (the hook disabled): same exit code, same files.

Each case is a fault yt-dlp's own fragment loop survives (or fails on) in its
own way; the plugin must end the same way ("never worse than yt-dlp alone").
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import urllib.request
from pathlib import Path
from typing import Any, Callable

import pytest

from fragment_streams import (
    COMMON_ARGS, ENGINE, FRAGMENT_LINE, Stream, dash_stream, hls_aes_stream, hls_stream, info_for, random_segments, write_info)
from ytdlp_support import output, require_engine, require_hook, run_ytdlp


@pytest.fixture(autouse=True)
def _installed() -> None:
    require_hook()
    require_engine()


def _run(directory: Path, stream: Stream, args: tuple[str, ...], alone: bool) -> subprocess.CompletedProcess[str]:
    directory.mkdir(parents=True)
    info = write_info(directory, stream)
    switch = [] if alone else [ENGINE]  # the option only exists with the plugin
    return run_ytdlp(['-v', *COMMON_ARGS, *switch, '--load-info-json', str(info), '-o', 'out.%(ext)s', *args],
                     directory, disable_hook=alone)


def _files(directory: Path) -> dict[str, str]:
    """The download's files (name -> SHA-256), as the user finds them."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.glob('out*')) if p.name != 'out.mp4.ytdl'}


def _errors(proc: subprocess.CompletedProcess[str]) -> list[str]:
    """The ERROR messages (a fragment's starts on the next line: '\\r[download] Got error: ...').
    A network error is worded by libcurl, not Python: only that there was one is compared."""
    return [re.sub(r'Got error: (?!HTTP Error).*', 'Got error: <network error>', message.strip())
            for message in re.findall(r'^ERROR:[ \r\n]*(.*)$', proc.stderr, re.M)]


def run_alone_and_plugin(tmp_path: Path, build: Callable[[str], Stream], *args: str
                         ) -> tuple[subprocess.CompletedProcess[str], subprocess.CompletedProcess[str], Path, Path]:
    """``build(label)`` makes the stream (own server paths per run: fault counters are per path)."""
    alone_dir, plugin_dir = tmp_path / 'alone', tmp_path / 'plugin'
    alone = _run(alone_dir, build('a'), args, alone=True)
    plugin = _run(plugin_dir, build('p'), args, alone=False)
    assert FRAGMENT_LINE in plugin.stderr, output(plugin)
    assert FRAGMENT_LINE not in alone.stderr
    return alone, plugin, alone_dir, plugin_dir


def assert_same_end(alone: subprocess.CompletedProcess[str], plugin: subprocess.CompletedProcess[str],
                    alone_dir: Path, plugin_dir: Path) -> None:
    assert plugin.returncode == alone.returncode, output(alone) + output(plugin)
    assert _files(plugin_dir) == _files(alone_dir), output(alone) + output(plugin)
    assert _errors(plugin) == _errors(alone), output(alone) + output(plugin)


# ------------------------------------------- an unavailable fragment, --abort-on-error
SEGMENTS = random_segments(6, base=3_000)

UNAVAILABLE = {
    # yt-dlp reports the fragment's ERROR, catches the DownloadError it raises, skips the fragment: exit 0
    'hls-503-skipped': ('hls', 2, {'status': 503}, ('--retries', '0', '--abort-on-error'), 0),
    'hls-reset-skipped': ('hls', 2, {'reset_after': 100}, ('--retries', '0', '--fragment-retries', '0',
                                                            '--abort-on-error'), 0),
    'dash-503-skipped': ('dash', 3, {'status': 503}, ('--retries', '0', '--abort-on-error'), 0),
    # the first DASH fragment is fatal: the DownloadError ends the download
    'dash-first-503': ('dash', 0, {'status': 503}, ('--retries', '0', '--abort-on-error'), 1),
    'hls-503-abort-unavailable': ('hls', 2, {'status': 503}, ('--retries', '0', '--abort-on-error',
                                                              '--abort-on-unavailable-fragments'), 1),
    'hls-503-abort-unavailable-ignore-errors': ('hls', 2, {'status': 503}, (
        '--retries', '1', '--retry-sleep', '0', '--abort-on-unavailable-fragments'), 1),
}


@pytest.mark.parametrize('case', list(UNAVAILABLE))
def test_unavailable_fragment_ends_as_yt_dlp_alone(tmp_path: Path, fault_server, case: str) -> None:
    kind, index, fault, args, exit_code = UNAVAILABLE[case]

    def build(label: str) -> Stream:
        make = hls_stream if kind == 'hls' else dash_stream
        return make(fault_server, f'unavail-{case}-{label}', SEGMENTS, faults={index: fault})

    alone, plugin, alone_dir, plugin_dir = run_alone_and_plugin(tmp_path, build, *args)
    assert alone.returncode == exit_code, output(alone)
    assert any('Got error: ' in line for line in _errors(alone)), output(alone)
    assert_same_end(alone, plugin, alone_dir, plugin_dir)
    if exit_code == 0:
        assert (plugin_dir / 'out.mp4').read_bytes() == b''.join(SEGMENTS[:index] + SEGMENTS[index + 1:])
        assert f'Skipping fragment {index + 1} ...' in plugin.stdout, output(plugin)


# ------------------------------------------- fragment URLs yt-dlp's request layer escapes
def _hls_with_names(server: Any, name: str, names: list[str]) -> Stream:
    lines = ['#EXTM3U', '#EXT-X-VERSION:3', '#EXT-X-TARGETDURATION:2', '#EXT-X-MEDIA-SEQUENCE:0']
    for file_name, data in zip(names, SEGMENTS):
        server.add_file(f'{name}/{file_name}', data)
        lines += ['#EXTINF:2.0,', file_name]
    lines.append('#EXT-X-ENDLIST')
    url = server.add_file(f'{name}/index.m3u8', ('\n'.join(lines) + '\n').encode(), 'application/vnd.apple.mpegurl')
    return Stream(SEGMENTS[:len(names)], info_for(url, 'm3u8_native'))


def _dash_with_names(server: Any, name: str, names: list[str]) -> Stream:
    for file_name, data in zip(names, SEGMENTS):
        server.add_file(f'{name}/{file_name}', data)
    info = info_for(server.url(f'/file/{name}/manifest.mpd'), 'http_dash_segments',
                    fragment_base_url=server.url(f'/file/{name}/'),
                    fragments=[{'path': file_name, 'duration': 2.0} for file_name in names])
    return Stream(SEGMENTS[:len(names)], info)


@pytest.mark.parametrize('kind', ['hls', 'dash'])
def test_fragment_url_with_a_space_is_escaped_as_yt_dlp_does(tmp_path: Path, fault_server, kind: str) -> None:
    names = ['seg 0.ts', 's1.ts', 'seg 2 (x).ts', 's3.ts']
    make = _hls_with_names if kind == 'hls' else _dash_with_names
    stream = make(fault_server, f'space-{kind}', names)
    alone, plugin, alone_dir, plugin_dir = run_alone_and_plugin(tmp_path, lambda label: stream)
    assert alone.returncode == 0, output(alone)
    assert_same_end(alone, plugin, alone_dir, plugin_dir)
    assert (plugin_dir / 'out.mp4').read_bytes() == stream.expected


# ------------------------------------------- cookies set by one reply that later requests need
def _with_key_setting_cookie(server: Any, name: str) -> Stream:
    """AES-128 segments 2.. answer 403 without the cookie the key's reply sets (yt-dlp asks for the key
    when it decrypts fragment 1, before it asks for fragment 2)."""
    stream = hls_aes_stream(server, name, SEGMENTS, explicit_iv=True, media_sequence=0,
                            faults={i: {'require_cookie': 'kc=1'} for i in range(1, len(SEGMENTS))})
    playlist = urllib.request.urlopen(stream.info['url']).read().decode()
    stream.info['url'] = server.add_file(f'{name}/index.m3u8', playlist.replace(
        'key0.bin', 'key0.bin?set_cookie=kc=1').encode(), 'application/vnd.apple.mpegurl')
    return stream


def test_cookie_set_by_the_key_reply_reaches_the_fragments(tmp_path: Path, fault_server) -> None:
    alone, plugin, alone_dir, plugin_dir = run_alone_and_plugin(
        tmp_path, lambda label: _with_key_setting_cookie(fault_server, f'keycookie-{label}'))
    assert alone.returncode == 0, output(alone)
    assert_same_end(alone, plugin, alone_dir, plugin_dir)
    assert (plugin_dir / 'out.mp4').read_bytes() == b''.join(SEGMENTS), output(plugin)
    assert 'Skipping fragment' not in plugin.stdout, output(plugin)


def test_cookie_set_by_the_first_fragment_reaches_the_others(tmp_path: Path, fault_server) -> None:
    """yt-dlp asks for fragment 2 once fragment 1 is in: its cookie goes along; the plugin asks for them at
    once, so a fragment refused before the cookie came is asked again with it, not out of --fragment-retries."""
    # fragment 1 is slow: the others are refused before its reply (and cookie) comes
    faults: dict[int, dict[str, Any]] = {0: {'set_cookie': 'sid=7', 'latency': 300},
                                         **{i: {'require_cookie': 'sid=7'} for i in range(1, len(SEGMENTS))}}
    alone, plugin, alone_dir, plugin_dir = run_alone_and_plugin(
        tmp_path, lambda label: hls_stream(fault_server, f'fragcookie-{label}', SEGMENTS, faults=faults),
        '--fragment-retries', '0')
    assert alone.returncode == 0, output(alone)
    assert_same_end(alone, plugin, alone_dir, plugin_dir)
    assert (plugin_dir / 'out.mp4').read_bytes() == b''.join(SEGMENTS), output(plugin)
    assert 'Skipping fragment' not in plugin.stdout + plugin.stderr, output(plugin)
    assert 'Retrying fragment' not in plugin.stdout + plugin.stderr, output(plugin)
