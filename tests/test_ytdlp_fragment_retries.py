"""Fragment retries as yt-dlp alone makes them: the same retry lines, exit code and file.

yt-dlp fetches each fragment with HttpFD: a 5xx or a network fault is one of
``--retries`` ("[download] Got error: ... Retrying (k/N)...", then "Giving up
after N retries" and "Skipping fragment N"), slept by ``--retry-sleep``
(``http:``); a 4xx is one of ``--fragment-retries`` ("Retrying fragment N
(k/M)"), slept by ``--retry-sleep fragment:``.  The plugin must print the
same lines and must not wait longer (its engine's own backoff is off for
fragments unless ``--async-max-retries`` asks for it).
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from fragment_streams import ENGINE, Stream, dash_stream, hls_aes_stream, hls_stream, info_for, random_segments, run_one
from test_ytdlp_fragments_alone import _files, run_alone_and_plugin
from ytdlp_support import get_requests, output, require_engine, require_hook

KB = 1000


@pytest.fixture(autouse=True)
def _installed() -> None:
    require_hook()
    require_engine()


SPLIT = re.compile(r'[\r\n]+|(?=\[download\] (?:Got error|Skipping|fragment))')
#: urllib's and libcurl's words for one network fault differ; the HTTP errors do not
NETWORK_ERROR = re.compile(r'Got error: (?!HTTP Error)(.*?)(?=\. Retrying|\. Giving up|$)')


def retry_lines(proc: subprocess.CompletedProcess[str]) -> list[str]:
    """The lines a frontend parses for retries, in order (a network error's own words replaced)."""
    lines = []
    for line in SPLIT.split(proc.stdout + '\n' + proc.stderr):
        line = line.strip()
        if line.startswith(('[download]', 'Sleeping')) and '{' not in line and re.search(
                r'Retrying|Giving up|Skipping fragment|not found, unable to continue|Sleeping', line):
            lines.append(NETWORK_ERROR.sub('Got error: <network error>', line))
    return lines


def assert_same_as_alone(alone: subprocess.CompletedProcess[str], plugin: subprocess.CompletedProcess[str],
                         alone_dir: Path, plugin_dir: Path) -> None:
    assert plugin.returncode == alone.returncode, output(alone) + output(plugin)
    assert _final(plugin_dir) == _final(alone_dir), output(alone) + output(plugin)
    assert sorted(retry_lines(plugin)) == sorted(retry_lines(alone)), output(alone) + output(plugin)


def _final(directory: Path) -> dict[str, str]:
    """The download's files but the ``NAME.part-FragN.part`` yt-dlp alone leaves of a fragment it skipped
    (the plugin holds a fragment in memory until its turn: none to leave)."""
    return {name: sha for name, sha in _files(directory).items() if not re.search(r'-Frag\d+\.part$', name)}


def _stream(server: Any, name: str, segments: list[bytes], faults: dict[int, dict[str, Any]]) -> Stream:
    return hls_stream(server, name, segments, faults=faults)


SEGMENTS = random_segments(6, base=3_000)


@pytest.mark.parametrize('fails,args,exit_code', [
    (3, ('--fragment-retries', '3', '--retry-sleep', '0'), 0),
    (2, ('--retries', '3', '--fragment-retries', '3', '--retry-sleep', '0'), 0),
    (10, ('--retries', '3', '--fragment-retries', '3', '--retry-sleep', '0'), 1),  # an ERROR line: exit 1
])
def test_fragment_answering_503_prints_yt_dlp_retry_lines(tmp_path: Path, fault_server, fails: int,
                                                           args: tuple[str, ...], exit_code: int) -> None:
    alone, plugin, alone_dir, plugin_dir = run_alone_and_plugin(
        tmp_path, lambda label: _stream(fault_server, f'r503-{fails}-{label}', SEGMENTS, {3: {'fail': fails}}), *args)
    assert alone.returncode == exit_code, output(alone)
    assert retry_lines(alone), output(alone)
    assert_same_as_alone(alone, plugin, alone_dir, plugin_dir)
    retries = int(args[args.index('--retries') + 1]) if '--retries' in args else 10
    statuses = [e.status for e in get_requests(fault_server, f'/file/r503-{fails}-p/seg3.ts')]
    assert statuses == [503] * min(fails, retries + 1) + ([200] if fails <= retries else []), statuses


def test_fragment_answering_403_prints_fragment_retry_lines(tmp_path: Path, fault_server) -> None:
    alone, plugin, alone_dir, plugin_dir = run_alone_and_plugin(
        tmp_path, lambda label: _stream(fault_server, f'r403-{label}', SEGMENTS, {2: {'fail': 5, 'fail_status': 403}}),
        '--fragment-retries', '3', '--retry-sleep', '0')
    assert 'Retrying fragment 3 (3/3)' in alone.stdout + alone.stderr, output(alone)
    assert_same_as_alone(alone, plugin, alone_dir, plugin_dir)


def test_retry_sleep_http_is_slept_and_printed(tmp_path: Path, fault_server) -> None:
    """``--retry-sleep 0.2``: HttpFD's "Sleeping 0.20 seconds ..." after each retry line, as yt-dlp alone."""
    alone, plugin, alone_dir, plugin_dir = run_alone_and_plugin(
        tmp_path, lambda label: _stream(fault_server, f'rsleep-{label}', SEGMENTS, {1: {'fail': 2}}),
        '--retry-sleep', '0.2', '--fragment-retries', '3')
    assert any('Sleeping 0.20 seconds' in line for line in retry_lines(alone)), output(alone)
    assert_same_as_alone(alone, plugin, alone_dir, plugin_dir)


def test_retry_sleep_fragment_is_slept_for_fragment_retries(tmp_path: Path, fault_server) -> None:
    """``--retry-sleep fragment:linear=0.1::0.1``: FragmentFD's sleeps after each "Retrying fragment" line."""
    alone, plugin, alone_dir, plugin_dir = run_alone_and_plugin(
        tmp_path, lambda label: _stream(fault_server, f'rfsleep-{label}', SEGMENTS, {4: {'fail': 2, 'fail_status': 403}}),
        '--retry-sleep', 'fragment:linear=0.1::0.1', '--fragment-retries', '3')
    assert [line for line in retry_lines(alone) if line.startswith('Sleeping')] == [
        'Sleeping 0.10 seconds ...', 'Sleeping 0.20 seconds ...'], output(alone)
    assert_same_as_alone(alone, plugin, alone_dir, plugin_dir)


BIG = [os.urandom(500 * KB) for _ in range(6)]


def test_every_fragment_resetting_without_progress_gives_up_as_yt_dlp(tmp_path: Path, fault_server) -> None:
    """6 x 500 KB, every response of fragments 2, 4 and 6 reset after 100 KB and ranges ignored: no retry
    makes progress, each of them spends --retries 3 and is skipped."""
    faults = {i: {'reset_after': 100 * KB, 'times': -1, 'norange': 1} for i in (1, 3, 5)}
    alone, plugin, alone_dir, plugin_dir = run_alone_and_plugin(
        tmp_path, lambda label: _stream(fault_server, f'rreset-{label}', BIG, faults),
        '--retries', '3', '--fragment-retries', '3', '--retry-sleep', '0')
    assert sum('Retrying (' in line for line in retry_lines(alone)) == 9, output(alone)
    assert_same_as_alone(alone, plugin, alone_dir, plugin_dir)


def test_every_fragment_resetting_resumes_as_yt_dlp(tmp_path: Path, fault_server) -> None:
    """6 x 500 KB, every response reset after 100 KB, ranges honoured: HttpFD resumes each fragment from
    its NAME.part-FragN and completes within --retries 10; the plugin resumes from the bytes it holds.
    (yt-dlp alone loses the block a reset cuts, so it needs more retries than the plugin: the count of
    lines is not compared here, their form and the file are.)"""
    faults = {i: {'reset_after': 100 * KB, 'times': -1} for i in range(len(BIG))}
    alone, plugin, alone_dir, plugin_dir = run_alone_and_plugin(
        tmp_path, lambda label: _stream(fault_server, f'rresume-{label}', BIG, faults),
        '--fragment-retries', '3', '--retry-sleep', '0')
    assert alone.returncode == plugin.returncode == 0, output(alone) + output(plugin)
    assert (plugin_dir / 'out.mp4').read_bytes() == b''.join(BIG), output(plugin)
    assert _final(plugin_dir) == _final(alone_dir)
    lines = retry_lines(plugin)
    assert lines and all(re.fullmatch(r'\[download\] Got error: .*\. Retrying \([1-9]/10\)\.\.\.', line)
                         for line in lines), output(plugin)
    assert len(lines) <= len(retry_lines(alone)), output(alone) + output(plugin)
    ranges = [e.range for e in get_requests(fault_server, '/file/rresume-p/seg0.ts')]
    assert ranges == [None, 'bytes=100000-', 'bytes=200000-', 'bytes=300000-', 'bytes=400000-'], ranges


def _byterange_resetting(server: Any, name: str, blob: bytes, size: int) -> Stream:
    """EXT-X-BYTERANGE fragments of one file whose every response is reset after 100 KB."""
    server.add_file(f'{name}/media.bin', blob)
    lines = ['#EXTM3U', '#EXT-X-VERSION:4', '#EXT-X-TARGETDURATION:2', '#EXT-X-MEDIA-SEQUENCE:0']
    for offset in range(0, len(blob), size):
        lines += ['#EXTINF:2.0,', f'#EXT-X-BYTERANGE:{size}@{offset}', f'media.bin?reset_after={100 * KB}&times=-1']
    lines.append('#EXT-X-ENDLIST')
    url = server.add_file(f'{name}/index.m3u8', ('\n'.join(lines) + '\n').encode(), 'application/vnd.apple.mpegurl')
    return Stream([blob], info_for(url, 'm3u8_native'))


def test_byterange_fragments_resetting_resume_within_their_range(tmp_path: Path, fault_server) -> None:
    """A retried byte-range fragment asks for the rest of its own range, never past its end."""
    blob = os.urandom(3 * 350 * KB)
    alone, plugin, alone_dir, plugin_dir = run_alone_and_plugin(
        tmp_path, lambda label: _byterange_resetting(fault_server, f'rbr-{label}', blob, 350 * KB),
        '--fragment-retries', '3', '--retry-sleep', '0')
    assert alone.returncode == plugin.returncode == 0, output(alone) + output(plugin)
    assert (plugin_dir / 'out.mp4').read_bytes() == blob, output(plugin)
    assert _final(plugin_dir) == _final(alone_dir)
    ranges = [e.range for e in get_requests(fault_server, '/file/rbr-p/media.bin')]
    assert sorted(ranges) == sorted(f'bytes={start + done}-{start + 350 * KB - 1}'
                                    for start in range(0, len(blob), 350 * KB) for done in range(0, 350 * KB, 100 * KB))


def test_async_max_retries_are_the_engine_s_own_before_one_counts(tmp_path: Path, fault_server) -> None:
    """``--async-max-retries 2``: the engine retries a fragment's 503 twice itself (no line), before a
    failure counts as one of --retries."""
    stream = _stream(fault_server, 'rengine', SEGMENTS, {2: {'fail': 3}})
    proc = run_one(tmp_path / 'e', stream, ENGINE, '--async-max-retries', '2', '--async-retry-delay', '0.01',
                   '--retries', '3', '--retry-sleep', '0')
    assert proc.returncode == 0, output(proc)
    assert (tmp_path / 'e' / 'out.mp4').read_bytes() == stream.expected
    assert retry_lines(proc) == ['[download] Got error: HTTP Error 503: Service Unavailable. Retrying (1/3)...'], \
        output(proc)
    assert [e.status for e in get_requests(fault_server, '/file/rengine/seg2.ts')] == [503, 503, 503, 200]


@pytest.mark.parametrize('kind', ['hls', 'dash'])
def test_resumed_fragment_is_decrypted_and_kept_whole(tmp_path: Path, fault_server, kind: str) -> None:
    """A fragment resumed after a reset is the bytes before it and the rest: AES-128 decrypts the whole
    (HLS), --keep-fragments keeps the whole (DASH), as yt-dlp alone."""
    segments = [os.urandom(300 * KB) for _ in range(3)]
    faults = {1: {'reset_after': 100 * KB, 'times': 2}}

    def build(label: str) -> Stream:
        if kind == 'hls':
            return hls_aes_stream(fault_server, f'raes-{label}', segments, explicit_iv=False, faults=faults)
        return dash_stream(fault_server, f'rdash-{label}', segments, faults=faults)
    args = ('--fragment-retries', '3', '--retry-sleep', '0') + (('--keep-fragments',) if kind == 'dash' else ())
    alone, plugin, alone_dir, plugin_dir = run_alone_and_plugin(tmp_path, build, *args)
    assert alone.returncode == plugin.returncode == 0, output(alone) + output(plugin)
    assert (plugin_dir / 'out.mp4').read_bytes() == b''.join(segments), output(plugin)
    assert_same_as_alone(alone, plugin, alone_dir, plugin_dir)
    assert sum('Retrying (' in line for line in retry_lines(plugin)) == 2, output(plugin)
    if kind == 'dash':
        assert (plugin_dir / 'out.mp4.part-Frag2').read_bytes() == segments[1]


def test_retry_lines_come_in_fragment_order(tmp_path: Path, fault_server) -> None:
    """yt-dlp fetches one fragment after the other: fragment 2's retries are all printed before fragment 4's,
    even where fragment 4's first 503 arrives first (fragment 2 answers slowly)."""
    faults = {1: {'fail': 2, 'latency': 400}, 3: {'fail': 1}}
    alone, plugin, alone_dir, plugin_dir = run_alone_and_plugin(
        tmp_path, lambda label: _stream(fault_server, f'rorder-{label}', SEGMENTS, faults),
        '--retries', '3', '--fragment-retries', '3', '--retry-sleep', '0')
    expected = ['[download] Got error: HTTP Error 503: Service Unavailable. Retrying (1/3)...',
                '[download] Got error: HTTP Error 503: Service Unavailable. Retrying (2/3)...',
                '[download] Got error: HTTP Error 503: Service Unavailable. Retrying (1/3)...']
    assert retry_lines(alone) == expected, output(alone)
    assert retry_lines(plugin) == expected, output(plugin)
    assert_same_as_alone(alone, plugin, alone_dir, plugin_dir)
