"""The output frontends and scripts parse stays yt-dlp's (issue 16, "never worse: the output").

Every run goes through ``python -m yt_dlp`` against the fault server, once
with yt-dlp alone (the hook disabled) and once with the plugin, and compares
what they printed.  A GUI frontend reads a ``[download] Destination:`` line and
attributes the progress lines after it to that file; ``parse_progress`` does
the same (anchored at the start of each line) and checks every progress line
against the size of the file it attributes it to.
"""

from __future__ import annotations

import json
import os
import re
import select
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from faultserver import sha256_of
from test_ytdlp_multiformat import video_audio  # noqa: F401 - a fixture
from ytdlp_support import (
    PYTHON, hermetic_env, output, page_url, require_engine, require_hook, run_ytdlp, sha256_file, video_path,
    write_info_json)

#: distinct sizes, so that a progress line's total names its file
SIZES = {1: 150_001, 2: 260_002, 3: 370_003, 4: 480_004}
PROGRESS = re.compile(r'^\[download\] +(\d+(?:\.\d+)?)% of +~? *(\d+(?:\.\d+)?[KMG]?i?B)\b')
TEMPLATE = 'download:PT %(progress.downloaded_bytes)s/%(progress.total_bytes)s'
SUMMARY = re.compile(r'\[async\] \d+ files?\b')
TEMPLATE_LINE = re.compile(r'^PT (\d+)/(\d+)$')
DESTINATION = re.compile(r'^\[download\] Destination: (.+)$')


@pytest.fixture(autouse=True)
def _installed() -> None:
    require_hook()
    require_engine()


def playlist(server: Any, rate: int = 0, sizes: dict[int, int] = SIZES) -> str:
    extra = {'rate': rate} if rate else {}
    return page_url(server, [video_path(i, size, **extra) for i, size in sizes.items()])


def run(args: list[str], cwd: Path, alone: bool = False, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    cwd.mkdir(parents=True, exist_ok=True)
    return run_ytdlp(['--retry-sleep', '0', *args], cwd, disable_hook=alone, **kwargs)


def fmt(n: int) -> str:
    from yt_dlp.utils import format_bytes
    return format_bytes(n)


def is_progress(line: str) -> bool:
    return bool(PROGRESS.match(line) or TEMPLATE_LINE.match(line))


def normalised(line: str, directory: Path) -> str:
    """A line of one run, its folder's path and the JSON fields that differ by nature between runs taken out."""
    line = line.replace(str(directory), 'DIR')
    if line.startswith('{'):
        info = json.loads(line)
        for key in ('epoch', 'http_headers', '_version'):
            info.pop(key, None)
        for fmt_ in info.get('formats') or []:
            fmt_.pop('http_headers', None)
        for fmt_ in info.get('requested_downloads') or []:
            fmt_.pop('http_headers', None)
        return json.dumps(info, sort_keys=True)
    return line


def other_lines(text: str, directory: Path) -> list[str]:
    """Every line that is not a progress line (a line rewritten with \\r counts as its last state)."""
    lines = [part.split('\r')[-1] for part in text.split('\n')]
    return [normalised(line, directory) for line in lines if line and not is_progress(line)]


def attributed_progress(text: str) -> list[tuple[str, str, str]]:
    """(file, percent or bytes, total) of each progress line, attributed to the last Destination."""
    current = None
    found = []
    for line in text.split('\n'):
        line = line.split('\r')[-1]
        destination = DESTINATION.match(line)
        if destination:
            current = os.path.basename(destination.group(1))
            continue
        m = PROGRESS.match(line) or TEMPLATE_LINE.match(line)
        if m:
            found.append((current, m.group(1), m.group(2)))
    return found


def size_of(name: str | None) -> int:
    assert name is not None, 'a progress line before any Destination line'
    return SIZES[int(name.split('.')[0])]


def assert_files(directory: Path) -> None:
    for i, size in SIZES.items():
        assert sha256_file(directory / f'{i}.mp4') == sha256_of(size, i), i


MODES = {
    'newline': ['--newline'],
    'progress-template': ['--newline', '--progress-template', TEMPLATE],
    'progress-template-no-newline': ['--progress-template', TEMPLATE],
    'print-json-exec': ['--newline', '--print', 'after_move:MOVED %(filepath)s', '-j', '--no-simulate',
                        '--exec', 'echo EXEC {}'],
}


@pytest.mark.parametrize('mode', MODES)
def test_a_pipe_reads_what_ytdlp_alone_prints(tmp_path: Path, fault_server, mode: str) -> None:
    """Case 1: in a pipe, with nothing asked, the entries run one at a time and every line is yt-dlp's."""
    args = [*MODES[mode], '-o', '%(playlist_index)s.%(ext)s', playlist(fault_server)]
    alone = run(args, tmp_path / 'alone', alone=True)
    plugin = run(args, tmp_path / 'plugin')
    assert alone.returncode == 0, output(alone)
    assert plugin.returncode == 0, output(plugin)
    assert 'Invoking async downloader' not in plugin.stderr  # (no -v: the engine line is not printed)
    assert_files(tmp_path / 'alone')
    assert_files(tmp_path / 'plugin')
    # every line other than progress: the same, in the same order
    assert other_lines(plugin.stdout, tmp_path / 'plugin') == other_lines(alone.stdout, tmp_path / 'alone')
    assert other_lines(plugin.stderr, tmp_path / 'plugin') == other_lines(alone.stderr, tmp_path / 'alone')
    if mode == 'print-json-exec':  # --print/-j imply --quiet: no progress, no Destination lines
        assert sorted(line.split('/')[-1] for line in plugin.stdout.splitlines() if line.startswith('EXEC ')) == \
            [f'{i}.mp4' for i in SIZES], output(plugin)
        return
    destinations = [line for line in plugin.stdout.splitlines() if line.startswith('[download] Destination:')]
    assert len(destinations) == len(SIZES), output(plugin)
    # a parser anchored at the line start reads every progress line, and attributes it rightly
    progress = attributed_progress(plugin.stdout)
    assert {name for name, _, _ in progress} == {f'{i}.mp4' for i in SIZES}, output(plugin)
    for name, done, total in progress:
        if mode.startswith('progress-template'):
            assert int(total) == size_of(name) and 0 <= int(done) <= int(total), (name, done, total)
        else:
            assert total == fmt(size_of(name)), (name, done, total)
    leftovers = [line for line in plugin.stdout.replace('\r', '\n').splitlines()
                 if ('%' in line and line.startswith('[download]') and not PROGRESS.match(line))
                 or ('PT ' in line and not TEMPLATE_LINE.match(line))]
    assert leftovers == [], output(plugin)


@pytest.mark.parametrize('mode', ['newline', 'progress-template'])
def test_explicit_concurrency_in_a_pipe_keeps_every_line(tmp_path: Path, fault_server, mode: str) -> None:
    """--concurrent-downloads N given: entries at once in a pipe too, every line still yt-dlp's (order aside)."""
    rate_sizes = {i: 400_000 + 100_000 * i for i in range(1, 5)}
    args = [*MODES[mode], '-o', '%(playlist_index)s.%(ext)s', playlist(fault_server, 400_000, rate_sizes)]
    alone = run(args, tmp_path / 'alone', alone=True)
    plugin = run(['--concurrent-downloads', '3', *args], tmp_path / 'plugin')
    assert alone.returncode == 0 and plugin.returncode == 0, output(alone) + output(plugin)
    for i, size in rate_sizes.items():
        assert sha256_file(tmp_path / 'plugin' / f'{i}.mp4') == sha256_of(size, i)
    assert Counter(other_lines(plugin.stdout, tmp_path / 'plugin')) == \
        Counter(other_lines(alone.stdout, tmp_path / 'alone'))
    # entries did overlap: a Destination line came before the previous entry's 100% line
    lines = plugin.stdout.splitlines()
    dest_at = [n for n, line in enumerate(lines) if DESTINATION.match(line)]
    done_at = [n for n, line in enumerate(lines)
               if line.startswith('[download] 100% of') or (TEMPLATE_LINE.match(line)
                                                           and line.split('/')[0][3:] == line.split('/')[1])]
    assert dest_at[1] < done_at[0], output(plugin)
    # every progress line parses from its first character
    assert all(PROGRESS.match(line) or TEMPLATE_LINE.match(line) for line in lines
               if '%' in line and line.startswith('[download]') or line.startswith('PT ')), output(plugin)
    assert '[item' not in plugin.stdout + plugin.stderr


def test_resume_line_is_ytdlps(tmp_path: Path, fault_server) -> None:
    """A .part yt-dlp left: "[download] Resuming download at byte N", as yt-dlp alone prints it, entries at once."""
    from faultserver import content_range
    sizes = {i: 300_000 + 100_000 * i for i in range(1, 4)}
    args = ['--newline', '-o', '%(playlist_index)s.%(ext)s', playlist(fault_server, 600_000, sizes)]
    for side in ('alone', 'plugin'):
        (tmp_path / side).mkdir()
        (tmp_path / side / '2.mp4.part').write_bytes(content_range(sizes[2], 2, 0, 100_000))
    alone = run(args, tmp_path / 'alone', alone=True)
    plugin = run(['--concurrent-downloads', '3', *args], tmp_path / 'plugin')
    assert alone.returncode == plugin.returncode == 0, output(alone) + output(plugin)
    for i, size in sizes.items():
        assert sha256_file(tmp_path / 'plugin' / f'{i}.mp4') == sha256_of(size, i)
    assert '[download] Resuming download at byte 100000' in alone.stdout.splitlines(), output(alone)
    assert Counter(other_lines(plugin.stdout, tmp_path / 'plugin')) == \
        Counter(other_lines(alone.stdout, tmp_path / 'alone'))


def test_errors_keep_ytdlps_words(tmp_path: Path, fault_server) -> None:
    sizes = {1: 200_001, 2: 200_002, 3: 200_003}
    paths = [video_path(i, size, rate=400_000) if i != 2 else video_path(i, size, status=403)
             for i, size in sizes.items()]
    args = ['--newline', '-o', '%(playlist_index)s.%(ext)s', page_url(fault_server, paths)]
    alone = run(args, tmp_path / 'alone', alone=True)
    plugin = run(['--concurrent-downloads', '3', *args], tmp_path / 'plugin')
    assert alone.returncode == plugin.returncode == 1, output(alone) + output(plugin)
    error = 'ERROR: unable to download video data: HTTP Error 403: Forbidden'
    assert error in alone.stderr.splitlines(), output(alone)
    assert other_lines(plugin.stderr, tmp_path / 'plugin') == other_lines(alone.stderr, tmp_path / 'alone')


def test_merged_formats_in_a_pipe_are_ytdlps(tmp_path: Path, fault_server, video_audio: tuple[bytes, bytes]) -> None:
    """-f bv+ba in a pipe: one format after the other, every line yt-dlp's, no [async] line (cases 1, 2)."""
    from test_ytdlp_multiformat import AUDIO_FIELDS, VIDEO_FIELDS, http_format, write_video_info
    video, audio = video_audio
    rate = max(len(video), len(audio))
    formats = [http_format(fault_server, 'v.mp4', video, VIDEO_FIELDS, rate=rate),
               http_format(fault_server, 'a.m4a', audio, AUDIO_FIELDS, rate=rate)]
    runs = {}
    for side in ('alone', 'plugin'):
        (tmp_path / side).mkdir()
        info = write_video_info(tmp_path / side / 'info.json', formats)
        runs[side] = run(['--newline', '-f', 'bv+ba', '--load-info-json', str(info), '-o', 'out.%(ext)s'],
                         tmp_path / side, alone=side == 'alone')
        assert runs[side].returncode == 0, output(runs[side])
    alone, plugin = runs['alone'], runs['plugin']
    assert sha256_file(tmp_path / 'plugin' / 'out.mp4') == sha256_file(tmp_path / 'alone' / 'out.mp4')
    # the same lines; "Deleting original file" in any order (yt-dlp deletes from a set)
    ours, theirs = other_lines(plugin.stdout, tmp_path / 'plugin'), other_lines(alone.stdout, tmp_path / 'alone')
    assert Counter(ours) == Counter(theirs)
    assert [line for line in ours if not line.startswith('Deleting')] == \
        [line for line in theirs if not line.startswith('Deleting')]
    sizes = {'out.fv.mp4': len(video), 'out.fa.m4a': len(audio)}
    progress = attributed_progress(plugin.stdout)
    assert {name for name, _, _ in progress} == set(sizes), output(plugin)
    assert all(total == fmt(sizes[name]) for name, _, total in progress), progress
    assert not [line for line in plugin.stdout.splitlines() if '[download]' in line and not line.startswith('[')]
    assert not SUMMARY.search(plugin.stdout + plugin.stderr), output(plugin)


# ------------------------------------------------------------------ the summary line


def test_no_summary_line_in_a_pipe(tmp_path: Path, fault_server) -> None:
    """Case 2: two or more engine downloads in a pipe: no [async] line (yt-dlp alone prints none)."""
    proc = run(['--concurrent-downloads', '3', '-o', '%(playlist_index)s.%(ext)s', playlist(fault_server)], tmp_path)
    assert proc.returncode == 0, output(proc)
    assert_files(tmp_path)
    assert not SUMMARY.search(proc.stdout + proc.stderr), output(proc)
    assert proc.stdout.rstrip().splitlines()[-1] == '[download] Finished downloading playlist: PL'


def test_verbose_simulate_prints_no_zero_summary(tmp_path: Path, fault_server) -> None:
    """Case 5: -v --simulate downloads nothing: no '[async] 0 files' line."""
    proc = run(['-v', '--simulate', playlist(fault_server)], tmp_path)
    assert proc.returncode == 0, output(proc)
    assert not SUMMARY.search(proc.stdout + proc.stderr), output(proc)


# ------------------------------------------------------------------ -v lines on their own
def test_verbose_connections_line_is_a_line_of_its_own(tmp_path: Path, fault_server) -> None:
    """Case 3: the [debug] connections line is never glued onto the last progress line."""
    info = write_info_json(tmp_path / 'i.json', fault_server.data_url(700_000, 'mp4'))
    merged = subprocess.run(
        [PYTHON, '-m', 'yt_dlp', '--no-cache-dir', '-v', '--load-info-json', str(info), '-o', 'a.mp4'],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120,
        env=hermetic_env(tmp_path / '.home'))
    assert merged.returncode == 0, merged.stdout
    assert sha256_file(tmp_path / 'a.mp4') == sha256_of(700_000)
    glued = [line for line in merged.stdout.replace('\r', '\n').splitlines()
             if '[debug] [async]' in line and not line.startswith('[debug] [async]')]
    assert glued == [] and '[debug] [async] a.mp4: 1 connection' in merged.stdout, merged.stdout[-3000:]
    # -o -: progress and [debug] lines both go to stderr
    to_stdout = subprocess.run(
        [PYTHON, '-m', 'yt_dlp', '--no-cache-dir', '-v', '--load-info-json', str(info), '-o', '-'],
        cwd=tmp_path, capture_output=True, timeout=120, env=hermetic_env(tmp_path / '.home'))
    stderr = to_stdout.stderr.decode(errors='replace')
    assert to_stdout.returncode == 0, stderr
    assert len(to_stdout.stdout) == 700_000
    glued = [line for line in stderr.replace('\r', '\n').splitlines()
             if '[debug] [async]' in line and not line.startswith('[debug] [async]')]
    assert glued == [] and '[debug] [async] -: 1 connection' in stderr, stderr[-3000:]


# ------------------------------------------------------------------ a terminal
class Terminal:
    """yt-dlp on a pseudo-terminal (TERM=xterm: cursor control), and the screen it leaves."""

    def __init__(self, args: list[str], cwd: Path) -> None:
        import pty
        cwd.mkdir(parents=True, exist_ok=True)
        master, slave = pty.openpty()
        env = hermetic_env(cwd / '.home', {'TERM': 'xterm', 'COLUMNS': '200', 'LINES': '50'})
        self.proc = subprocess.Popen(
            [PYTHON, '-m', 'yt_dlp', '--no-cache-dir', '--retry-sleep', '0', *args], cwd=cwd,
            stdin=subprocess.DEVNULL, stdout=slave, stderr=slave, env=env, start_new_session=True)
        os.close(slave)
        self.master = master
        self.data = b''

    def read(self, until: Any = None, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if until is not None and until(self.data.decode(errors='replace')):
                break
            ready, _, _ = select.select([self.master], [], [], 0.1)
            if not ready:
                if self.proc.poll() is not None and until is None:
                    break
                continue
            try:
                chunk = os.read(self.master, 65536)
            except OSError:
                break
            if not chunk:
                break
            self.data += chunk
        return self.data.decode(errors='replace')

    def finish(self) -> str:
        text = self.read()
        self.proc.wait(60)
        os.close(self.master)
        return text


def screen(text: str) -> list[str]:
    """What a terminal shows after ``text``: \\r, \\n, ESC[K, ESC[nA/B and colours interpreted."""
    rows: list[list[str]] = [[]]
    row = col = 0
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == '\x1b':
            m = re.match(r'\x1b\[(\d*)([A-Za-z])', text[i:])
            if m:
                n = int(m.group(1) or 1)
                if m.group(2) == 'A':
                    row = max(0, row - n)
                elif m.group(2) == 'B':
                    row += n
                elif m.group(2) == 'K':
                    del rows[row][col:]
                i += m.end()
                while len(rows) <= row:
                    rows.append([])
                continue
        if ch == '\r':
            col = 0
        elif ch == '\n':
            row, col = row + 1, 0
            while len(rows) <= row:
                rows.append([])
        else:
            line = rows[row]
            while len(line) < col:
                line.append(' ')
            if col < len(line):
                line[col] = ch
            else:
                line.append(ch)
            col += 1
        i += 1
    return [''.join(r).rstrip() for r in rows]


def test_terminal_keeps_ytdlp_lines_and_prints_the_summary(tmp_path: Path, fault_server) -> None:
    """On a terminal: entries at once, messages as yt-dlp prints them, the summary line at the end."""
    sizes = {i: 300_000 + 100_000 * i for i in range(1, 4)}
    term = Terminal(['-o', '%(playlist_index)s.%(ext)s', playlist(fault_server, 500_000, sizes)], tmp_path)
    text = term.finish()
    assert term.proc.returncode == 0, text[-3000:]
    for i, size in sizes.items():
        assert sha256_file(tmp_path / f'{i}.mp4') == sha256_of(size, i)
    shown = screen(text)
    assert [line for line in shown if line.startswith('[download] Destination:')] == \
        [f'[download] Destination: {i}.mp4' for i in sizes], repr(text)
    assert not [line for line in shown if line.startswith('[item')], shown
    assert SUMMARY.match(shown[-2] if shown[-1] == '' else shown[-1]), shown[-5:]
    # each entry's progress lines: yt-dlp's line, then the entry (only here, on a terminal)
    finals = [line for line in shown if PROGRESS.match(line)]
    assert sorted(line.rsplit('  ', 1)[1] for line in finals) == [f'(item {i})' for i in sizes], finals
    for line in finals:
        i = int(line.rsplit('(item ', 1)[1].rstrip(')'))
        assert PROGRESS.match(line).group(2) == fmt(sizes[i]), line


def test_terminal_progress_template_is_the_users(tmp_path: Path, fault_server) -> None:
    sizes = {i: 300_000 + 100_000 * i for i in range(1, 4)}
    term = Terminal(['--progress-template', TEMPLATE, '-o', '%(playlist_index)s.%(ext)s',
                     playlist(fault_server, 500_000, sizes)], tmp_path)
    text = term.finish()
    assert term.proc.returncode == 0, text[-3000:]
    lines = [part for line in text.replace('\x1b[K', '').replace('\x1b[A', '\n').split('\n')
             for part in line.split('\r') if 'PT ' in part]
    assert lines and all(TEMPLATE_LINE.match(line.strip()) for line in lines), lines[:20]


def test_ctrl_c_on_a_terminal_keeps_the_progress_lines(tmp_path: Path, fault_server) -> None:
    """Case 4: Ctrl-C during a concurrent playlist: the progress lines on screen stay, then yt-dlp's error."""
    sizes = {i: 4_000_000 + i for i in range(1, 4)}
    term = Terminal(['-o', '%(playlist_index)s.%(ext)s', playlist(fault_server, 300_000, sizes)], tmp_path)
    term.read(until=lambda text: all(f'{i}.mp4' in text for i in sizes) and text.count('% of') >= 6)
    os.killpg(term.proc.pid, signal.SIGINT)
    text = term.finish()
    shown = [line for line in screen(text) if line]
    assert shown[-1] == 'ERROR: Interrupted by user', shown[-8:]
    progress = [line for line in shown if PROGRESS.match(line)]
    assert len(progress) >= len(sizes), shown[-10:]
    assert shown.index(progress[-1]) > shown.index('[download] Destination: 3.mp4'), shown[-10:]


# ------------------------------------------------------------------ options that cannot take effect
STAND_ASIDE = '''
import sys
import yt_dlp_async.ytdlp.internals as internals
internals._checked[:] = ['yt-dlp 2000.01.01 is older than this test pretends']
import yt_dlp
sys.exit(yt_dlp.main(sys.argv[1:]))
'''


def test_explicit_concurrency_beside_a_ytdlp_stood_aside_from_warns(tmp_path: Path, fault_server) -> None:
    """Case 5: --concurrent-downloads 3 cannot take effect: one WARNING says why (not only -v)."""
    url = playlist(fault_server)
    proc = subprocess.run(
        [PYTHON, '-c', STAND_ASIDE, '--no-cache-dir', '--concurrent-downloads', '3', '-o', '%(playlist_index)s.%(ext)s',
         url], cwd=tmp_path, capture_output=True, text=True, timeout=120, env=hermetic_env(tmp_path / '.home'))
    assert proc.returncode == 0, output(proc)
    assert_files(tmp_path)
    warnings = [line for line in proc.stderr.splitlines() if line.startswith('WARNING: [async]')]
    assert warnings == ['WARNING: [async] --concurrent-downloads 3 has no effect: yt-dlp 2000.01.01 is older '
                        'than this test pretends; entries are downloaded one at a time'], output(proc)
    # without the option: nothing to warn about
    quiet = subprocess.run(
        [PYTHON, '-c', STAND_ASIDE, '--no-cache-dir', '-o', 'b%(playlist_index)s.%(ext)s', url], cwd=tmp_path,
        capture_output=True, text=True, timeout=120, env=hermetic_env(tmp_path / '.home'))
    assert quiet.returncode == 0 and 'WARNING: [async]' not in quiet.stderr, output(quiet)


API = '''
import sys, yt_dlp
with yt_dlp.YoutubeDL({'async_downloads': True, 'concurrent_downloads': 3, 'outtmpl': '%(playlist_index)s.%(ext)s',
                       'retry_sleep_functions': {}}) as ydl:
    sys.exit(ydl.download([sys.argv[1]]))
'''


def test_api_abort_on_error_warns_once(tmp_path: Path, fault_server) -> None:
    """Case 6: the API's default is abort-on-error, so entries run one at a time: a WARNING says so."""
    proc = subprocess.run([PYTHON, '-c', API, playlist(fault_server)], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120, env=hermetic_env(tmp_path / '.home'))
    assert proc.returncode == 0, output(proc)
    assert_files(tmp_path)
    warnings = [line for line in proc.stderr.splitlines() if line.startswith('WARNING: [async]')]
    assert warnings == ["WARNING: [async] concurrent_downloads 3 has no effect: --abort-on-error stops at the "
                        "first failing entry (set 'ignoreerrors': 'only_download' to download entries at once); "
                        "entries are downloaded one at a time"], output(proc)


def test_instance_attributes_read_exist() -> None:
    """internals.INSTANCE: what console.is_terminal and playlist.py read from a YoutubeDL is there."""
    import yt_dlp
    from yt_dlp_async.ytdlp import internals
    with yt_dlp.YoutubeDL({'quiet': True}) as ydl:
        for name in internals.INSTANCE:
            assert hasattr(ydl, name.split('.', 1)[1]), name
        assert all(hasattr(ydl._out_files, which) for which in ('out', 'screen', 'error'))
