"""Concurrent entries mean what yt-dlp alone means: each test runs the same command twice, with
and without concurrency (``--no-async-downloads`` / ``--concurrent-downloads 1``), and compares.

The playlist is the fault server's ``/page`` (generic extractor), throttled so
that entries overlap.
"""

from __future__ import annotations

import re
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from ytdlp_support import (
    PYTHON, hermetic_env, output, page_url, require_engine, require_hook, run_ytdlp, sha256_file)
from ytdlp_support import video_path as support_video_path

CHECK = {'YTDLP_ASYNC_BATON_CHECK': '1'}
BASE_SIZE = 200_000


@pytest.fixture(autouse=True)
def _installed() -> None:
    require_hook()
    require_engine()


def video_path(i: int, size: int | None = None, **params: Any) -> str:
    return support_video_path(i, size or BASE_SIZE + i, **params)


def run(args: list[str], cwd: Path, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    cwd.mkdir(parents=True, exist_ok=True)
    # in a pipe entries run at once only when asked for (a program may be reading the output)
    asked = [] if '--concurrent-downloads' in args else ['--concurrent-downloads', '5']
    return run_ytdlp(['--retry-sleep', '0', *asked, *args], cwd, env=CHECK, timeout=90, **kwargs)


def tree(directory: Path) -> dict[str, str]:
    """Every file left in the folder (but the hermetic HOME), with its SHA-256."""
    return {str(p.relative_to(directory)): sha256_file(p) for p in sorted(directory.rglob('*'))
            if p.is_file() and '.home' not in p.relative_to(directory).parts}


# ------------------------------------------------------------ --abort-on-error
def test_abort_on_error_leaves_what_yt_dlp_leaves(tmp_path: Path, fault_server) -> None:
    videos = [video_path(i, rate=2_000_000) for i in range(1, 9)]
    videos[1] = video_path(2, status=404)  # entry 2 fails; yt-dlp never reaches 3..8
    url = page_url(fault_server, videos)
    common = ['--abort-on-error', '--download-archive', 'a.txt', '--write-info-json',
              '-o', '%(playlist_index)s.%(ext)s', url]
    native = run(['--no-async-downloads', *common], tmp_path / 'native')
    conc = run(['-v', *common], tmp_path / 'conc')
    assert conc.returncode == native.returncode == 1, output(conc) + output(native)
    assert '1.mp4' in tree(tmp_path / 'native')
    assert tree(tmp_path / 'conc').keys() == tree(tmp_path / 'native').keys(), output(conc)
    assert (tmp_path / 'conc' / 'a.txt').read_text() == (tmp_path / 'native' / 'a.txt').read_text()
    assert (tmp_path / 'conc' / '1.mp4').read_bytes() == (tmp_path / 'native' / '1.mp4').read_bytes()
    assert '[debug] [async] items are processed one at a time: --abort-on-error' in conc.stderr, output(conc)


# ------------------------------------------------------- the same URL twice
@pytest.mark.parametrize('kind', ['playlist', 'video'])
def test_same_url_twice_runs_exec_and_print_as_often(tmp_path: Path, fault_server, kind: str) -> None:
    if kind == 'playlist':
        url = page_url(fault_server, [video_path(i, rate=1_000_000) for i in range(1, 4)])
    else:
        url = fault_server.url(video_path(1, rate=1_000_000))
    common = ['--exec', 'echo EXEC {}', '--print', 'after_move:PRINT %(filepath)s',
              '-o', '%(playlist_index|0)s-%(id)s.%(ext)s', url, url]
    native = run(['--no-async-downloads', *common], tmp_path / 'native')
    conc = run(common, tmp_path / 'conc')
    assert conc.returncode == native.returncode == 0, output(conc) + output(native)

    def counted(proc: subprocess.CompletedProcess[str], directory: Path) -> list[str]:
        return sorted(line.replace(str(directory), 'DIR') for line in proc.stdout.splitlines()
                      if line.startswith(('EXEC ', 'PRINT ')))
    assert counted(conc, tmp_path / 'conc') == counted(native, tmp_path / 'native'), output(conc) + output(native)
    assert len(counted(native, tmp_path / 'native')) == (12 if kind == 'playlist' else 4)
    assert tree(tmp_path / 'conc') == tree(tmp_path / 'native')
    assert ', 0 violations' in conc.stderr, output(conc)


# ------------------------------------------------ child output and status lines
@pytest.mark.parametrize('progress', ['carriage-return', 'newline'])
def test_exec_output_starts_a_line(tmp_path: Path, fault_server, progress: str) -> None:
    """--exec's output (the child writes to our stdout itself) never lands on a progress line."""
    # entry 1 is slow: its progress line is being rewritten while the others' --exec children print
    videos = [video_path(1, size=2_000_000, rate=500_000)] + [video_path(i, rate=1_000_000) for i in range(2, 7)]
    url = page_url(fault_server, videos)
    flags = ['--newline'] if progress == 'newline' else []
    proc = run([*flags, '--exec', 'sleep 0.3; echo EXEC {}', '--print', 'after_move:PRINT %(filepath)s',
                '--no-quiet', '--progress', '-o', '%(playlist_index)s.%(ext)s', url], tmp_path)
    assert proc.returncode == 0, output(proc)
    assert ', 0 violations' in proc.stderr, output(proc)
    lines = proc.stdout.split('\n')
    assert sorted(line for line in lines if line.startswith('EXEC ')) == \
        [f'EXEC {tmp_path / f"{i}.mp4"}' for i in range(1, 7)], output(proc)
    assert sorted(line for line in lines if line.startswith('PRINT ')) == \
        [f'PRINT {tmp_path / f"{i}.mp4"}' for i in range(1, 7)], output(proc)
    for line in lines:  # "[Exec] Executing command: sleep 0.3; echo EXEC ..." is yt-dlp's own message
        if re.search(r'(EXEC|PRINT) /', line) and 'Executing command' not in line:
            assert line.startswith(('EXEC /', 'PRINT /')), repr(line)
    assert '% of' in proc.stdout  # progress lines were printed


# ------------------------------------------------------------------- Ctrl-C
STUCK_HOOK_SCRIPT = '''
import sys, threading, yt_dlp
ready = sys.argv[2]
def hook(d):
    if d.get('status') == 'downloading' and d['info_dict'].get('playlist_index') == 2:
        open(ready, 'w').close()
        threading.Event().wait()  # a progress hook that never returns: nothing can cancel it
params = {'async_downloads': True, 'concurrent_downloads': 4, 'ignoreerrors': 'only_download',
          'outtmpl': '%(playlist_index)s.%(ext)s', 'progress_hooks': [hook], 'quiet': True, 'noprogress': True}
try:
    with yt_dlp.YoutubeDL(params) as ydl:
        ydl.download([sys.argv[1]])
except KeyboardInterrupt:
    print('INTERRUPTED', flush=True)
    sys.exit(1)
print('FINISHED', flush=True)
'''


def test_two_sigints_end_the_process(tmp_path: Path, fault_server) -> None:
    """An entry stuck where nothing can cancel it: the second Ctrl-C still ends the process."""
    url = page_url(fault_server, [video_path(i, size=2_000_000, rate=400_000) for i in range(1, 5)])
    ready = tmp_path / 'ready'
    proc = subprocess.Popen([PYTHON, '-c', STUCK_HOOK_SCRIPT, url, str(ready)], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=hermetic_env(tmp_path / '.home'))
    try:
        deadline = time.monotonic() + 30
        while not ready.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert ready.exists(), proc.communicate(timeout=30)
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        time.sleep(1.0)
        assert proc.poll() is None  # the stuck entry holds the first Ctrl-C up (it is waited for)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 1 and out.strip() == 'INTERRUPTED', (proc.returncode, out, err[-3000:])
    assert not list(tmp_path.glob('*.mp4'))  # no entry was finished (renamed) on the way out


@pytest.mark.parametrize('gap', [0.0, 0.005, 0.02])
def test_two_quick_sigints_end_as_yt_dlp_alone(tmp_path: Path, fault_server, gap: float) -> None:
    """Two Ctrl-C in a row while entries download: "Interrupted by user", never a lock error.

    yt-dlp alone exits 1 when the second one lands while it unwinds and 130
    (-SIGINT) when it lands after its "Interrupted by user": either is fine,
    a RuntimeError from a lock the first one interrupted is not.
    """
    url = page_url(fault_server, [video_path(i, size=3_000_000, rate=500_000) for i in range(1, 5)])
    proc = subprocess.Popen([PYTHON, '-m', 'yt_dlp', '--no-cache-dir', '--concurrent-downloads', '4',
                             '-o', '%(playlist_index)s.%(ext)s', url],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=hermetic_env(tmp_path / '.home'))
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(list(tmp_path.glob('*.part*'))) < 4:
            time.sleep(0.05)
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        time.sleep(gap)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode in (1, -signal.SIGINT), (proc.returncode, err[-3000:])
    assert 'release unlocked lock' not in err and 'Traceback' not in err.split('Interrupted by user')[0], err[-3000:]
    assert err.rstrip().endswith('ERROR: Interrupted by user') or proc.returncode == -signal.SIGINT, err[-3000:]
    assert not list(tmp_path.glob('*.mp4'))
