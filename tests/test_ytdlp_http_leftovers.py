"""What a failed or finished download leaves in the folder (issue 9, item 7).

Each case runs the same command through the engine and with yt-dlp alone
(``--no-async-downloads``) in two folders and compares what is left there.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from faultserver import sha256_of
from ytdlp_support import (
    PYTHON, get_requests, hermetic_env, output, require_engine, require_hook, run_ytdlp, sha256_file,
    write_info_json)

SPLIT = ['--async-connections', '4']
IN_ORDER = ['--async-connections', '1']
NATIVE = ['--no-async-downloads']


@pytest.fixture(autouse=True)
def _installed() -> None:
    require_hook()
    require_engine()


def listing(folder: Path) -> list[str]:
    return sorted(name for name in os.listdir(folder) if name not in ('.home', 'i.json'))


def refused_url() -> str:
    with socket.socket() as sock:       # a port nobody listens on
        sock.bind(('127.0.0.1', 0))
        port = sock.getsockname()[1]
    return f'http://127.0.0.1:{port}/x.mp4'


def run_in(folder: Path, url: str, *args: str, setup=None) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    folder.mkdir()
    if setup is not None:
        setup(folder)
    info = write_info_json(folder / 'i.json', url)
    proc = run_ytdlp(['-R', '1', '--retry-sleep', '0', *args, '--load-info-json', str(info), '-o', 'x.mp4'], folder)
    return proc, listing(folder)


def compare(tmp_path: Path, url: str, ours: list[str], setup=None) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    native_proc, native_files = run_in(tmp_path / 'native', url, *NATIVE, setup=setup)
    proc, files = run_in(tmp_path / 'ours', url, *ours, setup=setup)
    assert (proc.returncode, files) == (native_proc.returncode, native_files), output(proc)
    return proc, files


@pytest.mark.parametrize('mode', [SPLIT, IN_ORDER], ids=['split', 'in-order'])
def test_refused_connection_leaves_nothing(tmp_path: Path, mode: list[str]) -> None:
    proc, files = compare(tmp_path, refused_url(), mode)
    assert proc.returncode == 1 and files == []


@pytest.mark.parametrize('mode', [SPLIT, IN_ORDER], ids=['split', 'in-order'])
@pytest.mark.parametrize('fault', [{'fail': 10}, {'reset_after': 0, 'times': -1}, {'status': 404}],
                         ids=['503', 'reset-before-a-byte', '404'])
def test_failure_before_a_byte_leaves_nothing(tmp_path: Path, fault_server, mode: list[str], fault: dict) -> None:
    url = fault_server.data_url(300_000, 'mp4', **fault)
    proc, files = compare(tmp_path, url, mode)
    assert proc.returncode == 1 and files == []


def interrupted_split(folder: Path, url: str) -> None:
    """A split download killed (SIGKILL) half way: NAME.part-async and its .ctl stay."""
    folder.mkdir()
    info = write_info_json(folder / 'i.json', url)
    proc = subprocess.Popen([PYTHON, '-m', 'yt_dlp', *SPLIT, '--load-info-json', str(info), '-o', 'x.mp4'],
                            cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=hermetic_env(folder / '.home'))
    ctl = folder / 'x.mp4.part-async.ctl'
    deadline = time.monotonic() + 30
    while not (ctl.exists() and (folder / 'x.mp4.part-async').stat().st_size > 0) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert listing(folder) == ['x.mp4.part-async', 'x.mp4.part-async.ctl']


@pytest.mark.parametrize('finisher', [IN_ORDER, NATIVE], ids=['one-connection', 'ytdlp-alone'])
def test_split_leftovers_go_when_finished_another_way(tmp_path: Path, fault_server, finisher: list[str]) -> None:
    size = 2_000_000
    folder = tmp_path / 'f'
    interrupted_split(folder, fault_server.data_url(size, 'mp4', rate=200_000))
    info = write_info_json(folder / 'i.json', fault_server.data_url(size, 'mp4'))
    proc = run_ytdlp([*finisher, '--load-info-json', str(info), '-o', 'x.mp4'], folder)
    assert proc.returncode == 0, output(proc)
    assert listing(folder) == ['x.mp4']
    assert sha256_file(folder / 'x.mp4') == sha256_of(size)


def test_directory_in_the_way_fails_before_fetching(tmp_path: Path, fault_server) -> None:
    size = 3_000_000
    url = fault_server.data_url(size, 'mp4')
    native_proc, _ = run_in(tmp_path / 'native', url, *NATIVE, setup=lambda f: (f / 'x.mp4').mkdir())
    native_requests = len(get_requests(fault_server, f'/data/{size}.mp4'))
    proc, files = compare_after_native(tmp_path, url, native_proc)
    assert files == ['x.mp4'] and (tmp_path / 'ours' / 'x.mp4').is_dir()
    assert 'Is a directory' in proc.stderr, output(proc)
    fetched = sum(e.bytes_sent for e in get_requests(fault_server, f'/data/{size}.mp4')[native_requests:])
    assert fetched < size // 2      # not the whole file first


def compare_after_native(tmp_path: Path, url: str,
                         native_proc: subprocess.CompletedProcess[str]) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    proc, files = run_in(tmp_path / 'ours', url, *SPLIT, setup=lambda f: (f / 'x.mp4').mkdir())
    assert (proc.returncode, files) == (native_proc.returncode, listing(tmp_path / 'native')), output(proc)
    return proc, files
