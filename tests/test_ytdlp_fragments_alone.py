"""Fragmented downloads with the plugin against yt-dlp alone (the hook disabled): same exit code, same files.

Each case is a fault yt-dlp's own fragment loop survives (or fails on) in its
own way; the plugin must end the same way ("never worse than yt-dlp alone").
"""

from __future__ import annotations

import hashlib
import re
import subprocess
from pathlib import Path
from typing import Callable

import pytest

from fragment_streams import (
    COMMON_ARGS, ENGINE, FRAGMENT_LINE, Stream, dash_stream, hls_stream, random_segments, write_info)
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
