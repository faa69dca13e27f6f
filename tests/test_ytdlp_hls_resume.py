"""HLS/DASH resume is exact whatever a crash or a full disk left behind (issue 9).

yt-dlp records only the last fragment index in ``.ytdl``, rewritten in place
after the fragment's bytes; a kill -9 or a full disk can leave an empty
``.ytdl``, a ``.part`` one fragment longer than recorded, or a half fragment
recorded as whole, and its resume then appends to the wrong end (exit 0, a
wrong file).  These tests kill yt-dlp, or build those leftovers directly, and
check the rerun's file byte for byte.
"""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from fragment_streams import (
    COMMON_ARGS, ENGINE, FRAGMENT_LINE, NATIVE, Stream, dash_stream, files_named, hls_aes_stream, hls_byterange_stream, hls_stream,
    random_segments, run_one, write_info)
from ytdlp_support import PYTHON, get_requests, hermetic_env, output, require_engine, require_hook, sha256_file


@pytest.fixture(autouse=True)
def _installed() -> None:
    require_hook()
    require_engine()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _start(cwd: Path, info: Path, switch: str, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [PYTHON, '-m', 'yt_dlp', '--no-cache-dir', *COMMON_ARGS, switch, '--async-host-connections', '2',
         '--load-info-json', str(info), '-o', 'out.%(ext)s', *args],
        cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=hermetic_env(cwd.parent / '.home'))


def _kill_when(proc: subprocess.Popen[bytes], ready: Callable[[], bool], timeout: float = 60) -> None:
    """SIGKILL ``proc`` as soon as ``ready()`` (polled without sleeping much)."""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and proc.poll() is None and not ready():
            time.sleep(0.001)
        assert proc.poll() is None, 'yt-dlp finished before it could be killed'
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)


def _part_at_least(path: Path, size: int) -> Callable[[], bool]:
    def ready() -> bool:
        try:
            return path.stat().st_size >= size
        except OSError:
            return False
    return ready


def _kill_after(directory: Path, stream: Stream, switch: str, fragments: int, *args: str) -> None:
    """Run yt-dlp in ``directory`` and kill it once ``.part`` holds ``fragments`` fragments (or more)."""
    directory.mkdir(parents=True, exist_ok=True)
    info = write_info(directory, stream)
    proc = _start(directory, info, switch, *args)
    _kill_when(proc, _part_at_least(directory / 'out.mp4.part', len(b''.join(stream.segments[:fragments]))))


def _kill_at_stall(directory: Path, stream: Stream, switch: str, index: int, *args: str) -> None:
    """Run yt-dlp and kill it once ``.ytdl`` records ``index`` fragments or more (at a stall: exactly ``index``)."""
    directory.mkdir(parents=True, exist_ok=True)
    info = write_info(directory, stream)
    proc = _start(directory, info, switch, *args)

    def ready() -> bool:
        try:
            return _recorded_index(directory) >= index
        except (OSError, ValueError, KeyError):
            return False
    _kill_when(proc, ready)


def _stalling_hls(server: Any, name: str, stall_at: int, count: int = 12) -> Stream:
    """Fragments of 50 ms, but the one after ``stall_at`` takes 5 s: a kill then lands between fragments."""
    faults = {i: {'latency': 5000 if i == stall_at else 50} for i in range(count)}
    return hls_stream(server, name, random_segments(count, base=12_000), faults=faults)


def _state(directory: Path) -> dict[str, Any]:
    return json.loads((directory / 'out.mp4.ytdl').read_text())


def _recorded_index(directory: Path) -> int:
    return int(_state(directory)['downloader']['current_fragment']['index'])


def _rerun_is_exact(directory: Path, stream: Stream, switch: str = ENGINE, *args: str
                    ) -> subprocess.CompletedProcess[str]:
    proc = run_one(directory, stream, switch, *args)
    assert proc.returncode == 0, output(proc)
    if switch == ENGINE:
        assert FRAGMENT_LINE in proc.stderr, output(proc)
    assert sha256_file(directory / 'out.mp4') == _sha(stream.expected), output(proc)
    assert files_named(directory, 'out*') == ['out.mp4'], output(proc)
    return proc


def _slow_hls(server: Any, name: str, count: int = 16, latency: int = 120) -> Stream:
    return hls_stream(server, name, random_segments(count, base=12_000),
                      faults={i: {'latency': latency} for i in range(count)})


def _leave(directory: Path, stream: Stream, part: bytes, ytdl: str | None) -> None:
    """What a crash left: ``.part`` bytes and the ``.ytdl`` text (None: no .ytdl file)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / 'out.mp4.part').write_bytes(part)
    if ytdl is not None:
        (directory / 'out.mp4.ytdl').write_text(ytdl)


def _native_state(index: int) -> str:
    return json.dumps({'downloader': {'current_fragment': {'index': index}}})


def _our_state(index: int, part_bytes: int) -> str:
    return json.dumps({'downloader': {'current_fragment': {'index': index}},
                       'yt_dlp_async': {'fragment_index': index, 'part_bytes': part_bytes}})


def _fetched(server: Any, prefix: str) -> set[str]:
    server.wait_idle()
    return {e.path for e in get_requests(server, None) if e.path.startswith(prefix)}


# ------------------------------------------------------------------ kill -9
def test_kill_at_several_points_then_resume_is_exact(tmp_path: Path, fault_server) -> None:
    """kill -9 right as ``.part`` grows (between the bytes and their record, when it lands there)."""
    stream = _slow_hls(fault_server, 'loop', latency=60)
    for trial, fragments in enumerate((1, 3, 5, 8, 11, 14)):
        directory = tmp_path / f't{trial}'
        _kill_after(directory, stream, ENGINE, fragments, '-N', '4')
        state = _state(directory)
        # what the state records is what is on disk: the record is written after the bytes, atomically
        recorded = state['yt_dlp_async']['part_bytes']
        assert recorded == len(b''.join(stream.segments[:_recorded_index(directory)]))
        assert (directory / 'out.mp4.part').read_bytes()[:recorded] == stream.expected[:recorded]
        _rerun_is_exact(directory, stream)


def test_killed_twice_then_resume_is_exact(tmp_path: Path, fault_server) -> None:
    """A resumed run killed again (the first kill's leftovers already settled) still ends exact."""
    stream = _slow_hls(fault_server, 'twice', latency=60)
    directory = tmp_path / 'run'
    _kill_after(directory, stream, ENGINE, 3, '-N', '4')
    first = _recorded_index(directory)
    _kill_after(directory, stream, ENGINE, 9, '-N', '4')
    assert _recorded_index(directory) >= first
    _rerun_is_exact(directory, stream)


def test_kill_then_resume_skips_the_fragments_on_disk(tmp_path: Path, fault_server) -> None:
    stream = _stalling_hls(fault_server, 'skip', stall_at=6)
    directory = tmp_path / 'run'
    _kill_at_stall(directory, stream, ENGINE, 6)
    assert _recorded_index(directory) == 6
    assert (directory / 'out.mp4.part').read_bytes() == b''.join(stream.segments[:6])
    fault_server.reset()
    _rerun_is_exact(directory, stream)
    fetched = _fetched(fault_server, '/file/skip/seg')
    assert '/file/skip/seg5.ts' not in fetched and '/file/skip/seg6.ts' in fetched


def test_aes128_kill_then_resume_is_exact(tmp_path: Path, fault_server) -> None:
    stream = hls_aes_stream(fault_server, 'aes', random_segments(14, base=9_000), explicit_iv=False,
                            key_rotation=True, faults={i: {'latency': 120} for i in range(14)})
    directory = tmp_path / 'run'
    _kill_at_stall(directory, stream, ENGINE, 2)  # on the record: it trails the bytes by up to a loop turn
    index = _recorded_index(directory)
    assert 2 <= index < 14
    assert _state(directory)['yt_dlp_async']['part_bytes'] == len(b''.join(stream.segments[:index]))
    _rerun_is_exact(directory, stream)


def test_aes128_resume_uses_the_media_sequence_iv(tmp_path: Path, fault_server) -> None:
    """Without an IV attribute the IV is the media sequence number, which must count the fragments on disk."""
    segments = random_segments(8, base=3_000)
    stream = hls_aes_stream(fault_server, 'aesiv', segments, explicit_iv=False)
    directory = tmp_path / 'run'
    _leave(directory, stream, b''.join(segments[:5]), _our_state(5, len(b''.join(segments[:5]))))
    fault_server.reset()
    _rerun_is_exact(directory, stream)
    assert '/file/aesiv/seg4.ts' not in _fetched(fault_server, '/file/aesiv/seg')


def test_byterange_resume_continues_the_implied_offset(tmp_path: Path, fault_server) -> None:
    """An EXT-X-BYTERANGE without ``@`` starts where the previous range ended, on disk or not."""
    stream = hls_byterange_stream(fault_server, 'brr', [20_000 + i * 101 for i in range(8)])
    directory = tmp_path / 'run'
    _leave(directory, stream, b''.join(stream.segments[:3]), _our_state(3, len(b''.join(stream.segments[:3]))))
    _rerun_is_exact(directory, stream)


def test_dash_kill_then_resume_is_exact(tmp_path: Path, fault_server) -> None:
    segments = random_segments(14, base=9_000)
    stream = dash_stream(fault_server, 'dash', segments, faults={i: {'latency': 120} for i in range(14)})
    directory = tmp_path / 'run'
    # killed once .ytdl records 3 fragments: the record trails the bytes by up to one turn of the
    # fragment loop (it is written once per turn), so killing on the .part size could leave it lower
    _kill_at_stall(directory, stream, ENGINE, 3)
    index = _recorded_index(directory)
    assert 3 <= index < 14
    part = (directory / 'out.mp4.part').read_bytes()
    assert part[:len(b''.join(segments[:index]))] == b''.join(segments[:index])
    fault_server.reset()
    proc = _rerun_is_exact(directory, stream)
    assert 'Invoking dashsegments downloader' in proc.stderr
    assert f'/file/dash/chunk{index - 1}.m4s' not in _fetched(fault_server, '/file/dash/chunk')


def test_native_state_with_n_then_engine_restarts_cleanly(tmp_path: Path, fault_server) -> None:
    """yt-dlp's own state (no .part length) cannot vouch for the end of .part: a clean restart, exact."""
    stream = _slow_hls(fault_server, 'natn')
    directory = tmp_path / 'run'
    _kill_after(directory, stream, NATIVE, 5, '-N', '4')
    assert 'yt_dlp_async' not in (directory / 'out.mp4.ytdl').read_text()  # (yt-dlp may leave it empty)
    proc = _rerun_is_exact(directory, stream)
    assert ('does not record the length of the .part file' in proc.stderr
            or '.ytdl file is corrupt' in proc.stderr), output(proc)


def test_engine_state_then_native_rerun_is_exact(tmp_path: Path, fault_server) -> None:
    """yt-dlp alone reads our .ytdl (its keys, ours beside them) and resumes where it says."""
    stream = _stalling_hls(fault_server, 'tonat', stall_at=5)
    directory = tmp_path / 'run'
    _kill_at_stall(directory, stream, ENGINE, 5)
    state = _state(directory)
    assert state['downloader']['current_fragment'] == {'index': 5}  # what yt-dlp reads
    assert state['yt_dlp_async'] == {'fragment_index': 5, 'part_bytes': len(b''.join(stream.segments[:5]))}
    assert (directory / 'out.mp4.part').read_bytes() == b''.join(stream.segments[:5])
    fault_server.reset()
    _rerun_is_exact(directory, stream, NATIVE)
    fetched = _fetched(fault_server, '/file/tonat/seg')
    assert '/file/tonat/seg4.ts' not in fetched and '/file/tonat/seg5.ts' in fetched


# ------------------------------------------------------- what a crash leaves
def test_empty_ytdl_restarts_cleanly(tmp_path: Path, fault_server) -> None:
    """An empty .ytdl (killed between yt-dlp's open('w') and its write): never old bytes plus the stream."""
    stream = hls_stream(fault_server, 'empty', random_segments(6))
    directory = tmp_path / 'run'
    _leave(directory, stream, b''.join(stream.segments[:3]), '')
    proc = _rerun_is_exact(directory, stream)
    assert '.ytdl file is corrupt' in proc.stderr, output(proc)


def test_corrupt_ytdl_restarts_cleanly(tmp_path: Path, fault_server) -> None:
    stream = hls_stream(fault_server, 'corrupt', random_segments(6))
    for n, text in enumerate(('{"downloader": {"current_fragm', '{"downloader": {"current_fragment": {"index": -2}}}',
                              '\x00\x00\x00')):
        directory = tmp_path / f'run{n}'
        _leave(directory, stream, b''.join(stream.segments[:3]), text)
        proc = _rerun_is_exact(directory, stream)
        assert '.ytdl file is corrupt' in proc.stderr, output(proc)


def test_part_without_ytdl_restarts_cleanly(tmp_path: Path, fault_server) -> None:
    stream = hls_stream(fault_server, 'noytdl', random_segments(6))
    directory = tmp_path / 'run'
    _leave(directory, stream, b''.join(stream.segments[:2]), None)
    proc = _rerun_is_exact(directory, stream)
    assert 'The .part file has no .ytdl file' in proc.stderr, output(proc)


@pytest.mark.parametrize('kind', ['hls', 'dash'])
def test_part_longer_than_recorded_is_cut(tmp_path: Path, fault_server, kind: str) -> None:
    """Killed after a fragment's bytes (and half of the next) but before its record: cut, then resumed."""
    segments = random_segments(8)
    stream = (hls_stream if kind == 'hls' else dash_stream)(fault_server, kind, segments)
    directory = tmp_path / 'run'
    recorded = len(b''.join(segments[:3]))
    _leave(directory, stream, b''.join(segments[:4]) + segments[4][:5000], _our_state(3, recorded))
    fault_server.reset()
    proc = _rerun_is_exact(directory, stream)
    assert f'cut from {recorded + len(segments[3]) + 5000} to {recorded} bytes' in proc.stderr, output(proc)
    names = [e.path.rsplit('/', 1)[1] for e in get_requests(fault_server, None)]
    assert ('seg2.ts' if kind == 'hls' else 'chunk2.m4s') not in names  # resumed, not restarted
    assert ('seg3.ts' if kind == 'hls' else 'chunk3.m4s') in names


def test_part_shorter_than_recorded_restarts_cleanly(tmp_path: Path, fault_server) -> None:
    segments = random_segments(6)
    stream = hls_stream(fault_server, 'short', segments)
    directory = tmp_path / 'run'
    _leave(directory, stream, b''.join(segments[:2]), _our_state(3, len(b''.join(segments[:3]))))
    proc = _rerun_is_exact(directory, stream)
    assert 'The .part file is shorter than the .ytdl file records' in proc.stderr, output(proc)


def test_half_first_fragment_with_index_zero_starts_again(tmp_path: Path, fault_server) -> None:
    """Killed while the first fragment was being written: the state says none, so none is kept."""
    segments = random_segments(5)
    stream = hls_stream(fault_server, 'zero', segments)
    for n, text in enumerate((_native_state(0), _our_state(0, 0))):
        directory = tmp_path / f'run{n}'
        _leave(directory, stream, segments[0][:7000], text)
        _rerun_is_exact(directory, stream)


def test_native_state_one_fragment_behind_restarts_cleanly(tmp_path: Path, fault_server) -> None:
    """yt-dlp killed after a fragment's bytes, before its record: its state cannot tell, so no appending."""
    segments = random_segments(6)
    stream = hls_stream(fault_server, 'behind', segments)
    directory = tmp_path / 'run'
    _leave(directory, stream, b''.join(segments[:4]), _native_state(3))
    proc = _rerun_is_exact(directory, stream)
    assert 'does not record the length of the .part file' in proc.stderr, output(proc)


def test_no_continue_starts_again(tmp_path: Path, fault_server) -> None:
    segments = random_segments(6)
    stream = hls_stream(fault_server, 'nocont', segments)
    directory = tmp_path / 'run'
    _leave(directory, stream, b''.join(segments[:3]), _our_state(3, len(b''.join(segments[:3]))))
    _rerun_is_exact(directory, stream, ENGINE, '--no-continue')


# ----------------------------------------------------------------- disk full
@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs (root only); ``remount`` makes it larger."""
    mount_point = tmp_path / 'disk'
    mount_point.mkdir()
    try:
        subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', str(mount_point)],
                       check=True, capture_output=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as exc:
        pytest.skip(f'cannot mount a small tmpfs here (needs root): {exc}')
    try:
        yield mount_point
    finally:
        subprocess.run(['umount', '-l', str(mount_point)], capture_output=True, timeout=30)


def _grow(mount_point: Path) -> None:
    subprocess.run(['mount', '-o', 'remount,size=32m', str(mount_point)], check=True, capture_output=True, timeout=30)


@pytest.mark.parametrize('second', [ENGINE, NATIVE], ids=['then-engine', 'then-native'])
def test_disk_full_then_rerun_is_exact(tmp_path: Path, fault_server, small_disk: Path, second: str) -> None:
    """The disk fills mid-fragment: the error is reported, the half fragment is cut off again, the rerun is exact."""
    segments = random_segments(16, base=190_000, step=1_013)  # ~3 MiB: more than the disk holds
    stream = hls_stream(fault_server, 'full', segments)
    info = write_info(tmp_path, stream)

    def run(switch: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [PYTHON, '-m', 'yt_dlp', '--no-cache-dir', *COMMON_ARGS, switch, '--load-info-json', str(info),
             '-o', 'out.%(ext)s'], cwd=small_disk, capture_output=True, text=True, timeout=120,
            env=hermetic_env(tmp_path / '.home'))

    proc = run(ENGINE)
    assert proc.returncode != 0, output(proc)
    assert 'No space left on device' in proc.stderr, output(proc)
    assert not (small_disk / 'out.mp4').exists()
    index = _recorded_index(small_disk)
    part = (small_disk / 'out.mp4.part').read_bytes()
    assert 1 <= index < 16
    assert part == b''.join(segments[:index])  # the .part ends where the .ytdl says, for any resumer
    assert _state(small_disk)['yt_dlp_async']['part_bytes'] == len(part)

    _grow(small_disk)
    proc = run(second)
    assert proc.returncode == 0, output(proc)
    assert sha256_file(small_disk / 'out.mp4') == _sha(stream.expected)
    assert files_named(small_disk, 'out*') == ['out.mp4']


_APPEND_ON_A_FULL_DISK = '''
import json, os
from yt_dlp import YoutubeDL
from yt_dlp_async.ytdlp.hls import AsyncHlsFD

PAGE = 4096
fd = AsyncHlsFD(YoutubeDL({'quiet': True}), {'quiet': True})
ctx = {'filename': 'out.mp4', 'total_frags': 3}
fd._prepare_frag_download(ctx)

def append(index, size):
    ctx['fragment_index'] = index
    ctx['fragment_filename_sanitized'] = f'out.mp4.part-Frag{index}'
    try:
        fd._append_fragment(ctx, b'x' * size)
        return 'ok'
    except OSError as exc:
        return exc.__class__.__name__ + ' ' + str(exc.errno)

def leave_free(pages):
    with open('filler', 'ab') as filler:
        while True:
            stat = os.statvfs('.')
            free = stat.f_bavail * stat.f_frsize
            if free <= pages * PAGE:
                break
            filler.write(b'f' * min(free - pages * PAGE, 1 << 20))
            filler.flush()
    return os.statvfs('.').f_bavail * os.statvfs('.').f_frsize

def state():
    return json.load(open('out.mp4.ytdl'))

results = [append(1, PAGE)]
results.append(leave_free(2))
results.append(append(2, 3 * PAGE))   # the bytes do not fit: written in part, then cut off again
results += [os.path.getsize('out.mp4.part'), state()]
results.append(append(2, 2 * PAGE))   # the bytes fit, their record does not: the bytes are cut off again
results += [os.path.getsize('out.mp4.part'), state(), sorted(os.listdir('.'))]
print(json.dumps(results))
'''


def test_append_on_a_full_disk_keeps_part_and_state_in_step(tmp_path: Path, small_disk: Path) -> None:
    """Whether the fragment or its record hits the full disk, .part ends where the .ytdl says."""
    proc = subprocess.run([PYTHON, '-c', _APPEND_ON_A_FULL_DISK], cwd=small_disk, capture_output=True, text=True,
                          timeout=60, env=hermetic_env(tmp_path / '.home'))
    assert proc.returncode == 0, proc.stderr
    first, free, too_big, size1, state1, no_room, size2, state2, names = json.loads(proc.stdout.splitlines()[-1])
    one = {'downloader': {'current_fragment': {'index': 1}, 'extra_state': {}},
           'yt_dlp_async': {'fragment_index': 1, 'part_bytes': 4096}}
    assert first == 'ok' and free == 2 * 4096
    assert too_big == 'OSError 28' and no_room == 'OSError 28', proc.stdout
    assert size1 == size2 == 4096
    state1['downloader'].setdefault('extra_state', {})
    state2['downloader'].setdefault('extra_state', {})
    assert state1 == state2 == one
    assert names == ['filler', 'out.mp4.part', 'out.mp4.ytdl']  # no temporary state file left
