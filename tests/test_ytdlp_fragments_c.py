"""HLS/DASH fragment bytes never pass through Python (issue 10): the engine appends them in C.

Each run starts yt-dlp with a probe (a ``sitecustomize`` on PYTHONPATH) that
counts calls of yt-dlp's ``_append_fragment`` (FragmentFD's and ExactResume's)
and, at exit, writes that count, the engine's count of body bytes turned into
Python ``bytes`` (``_engine.body_bytes_to_python``), the most body memory
the engine held at once (``body_memory``) and the process's peak RSS.
The file is checked byte for byte against the served segments.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from fragment_streams import (
    COMMON_ARGS, ENGINE, FRAGMENT_LINE, Stream, aes_encrypt, dash_stream, files_named, hls_aes_stream, hls_stream,
    random_segments, write_info)
from test_ytdlp_hls_resume import _kill_after
from ytdlp_support import PYTHON, get_requests, hermetic_env, output, require_engine, require_hook, sha256_file

PROBE = '''
import atexit, json, os, resource

_calls = [0]


def _count(cls):
    original = cls.__dict__['_append_fragment']

    def counted(self, ctx, frag_content):
        _calls[0] += 1
        return original(self, ctx, frag_content)
    cls._append_fragment = counted


from yt_dlp.downloader.fragment import FragmentFD
from yt_dlp_async.ytdlp.fragment_resume import ExactResume
from yt_dlp_async.ytdlp import shared_engine
_count(FragmentFD)
_count(ExactResume)
_engines = []
_get_engine = shared_engine.get_engine


def _remember(params):
    engine = _get_engine(params)
    _engines.append(engine)
    return engine
shared_engine.get_engine = _remember


@atexit.register
def _report():
    from yt_dlp_async import _engine
    with open(os.environ['FRAG_PROBE_OUT'], 'w') as out:
        json.dump({'append_calls': _calls[0], 'body_bytes': _engine.body_bytes_to_python(),
                   'body_memory_peak': max([e.body_memory()[1] for e in _engines] or [0]),
                   'maxrss_kib': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}, out)
'''


@pytest.fixture(autouse=True)
def _installed() -> None:
    require_hook()
    require_engine()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _probe_env(tmp_path: Path) -> dict[str, str]:
    probe_dir = tmp_path / 'probe'
    probe_dir.mkdir(exist_ok=True)
    (probe_dir / 'sitecustomize.py').write_text(PROBE)
    return {'PYTHONPATH': str(probe_dir), 'FRAG_PROBE_OUT': str(tmp_path / 'probe.json')}


def _run(tmp_path: Path, directory: Path, stream: Stream, *args: str
         ) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """yt-dlp (engine on) with the probe; returns the process and what the probe wrote."""
    directory.mkdir(parents=True, exist_ok=True)
    info = write_info(directory, stream)
    env = hermetic_env(tmp_path / '.home', _probe_env(tmp_path))
    proc = subprocess.run(
        [PYTHON, '-m', 'yt_dlp', '--no-cache-dir', '-v', *COMMON_ARGS, ENGINE, '--load-info-json', str(info),
         '-o', 'out.%(ext)s', *args], cwd=directory, capture_output=True, text=True, timeout=120, env=env)
    probe = json.loads((tmp_path / 'probe.json').read_text())
    return proc, probe


def _exact(proc: subprocess.CompletedProcess[str], directory: Path, stream: Stream) -> None:
    assert proc.returncode == 0, output(proc)
    assert FRAGMENT_LINE in proc.stderr, output(proc)
    assert sha256_file(directory / 'out.mp4') == _sha(stream.expected), output(proc)


def test_hls_fragment_bytes_never_reach_python(tmp_path: Path, fault_server) -> None:
    segments = random_segments(24, base=30_000)
    stream = hls_stream(fault_server, 'noc', segments)
    proc, probe = _run(tmp_path, tmp_path / 'out', stream)
    _exact(proc, tmp_path / 'out', stream)
    assert probe['body_bytes'] == 0, probe
    assert probe['append_calls'] == 0, probe
    assert files_named(tmp_path / 'out', 'out*') == ['out.mp4']


def test_dash_fragment_bytes_never_reach_python(tmp_path: Path, fault_server) -> None:
    stream = dash_stream(fault_server, 'nocd', random_segments(12, base=25_000))
    proc, probe = _run(tmp_path, tmp_path / 'out', stream)
    _exact(proc, tmp_path / 'out', stream)
    assert probe == {**probe, 'body_bytes': 0, 'append_calls': 0}


def test_aes128_is_decrypted_in_c_only_the_key_reaches_python(tmp_path: Path, fault_server) -> None:
    """Two keys (rotation): Python sees their 16 bytes each, never a fragment."""
    stream = hls_aes_stream(fault_server, 'aesc', random_segments(10, base=20_000), explicit_iv=False,
                            key_rotation=True)
    proc, probe = _run(tmp_path, tmp_path / 'out', stream)
    _exact(proc, tmp_path / 'out', stream)
    assert probe['body_bytes'] == 2 * 16, probe
    assert probe['append_calls'] == 0, probe


def test_stdout_is_written_in_c(tmp_path: Path, fault_server) -> None:
    """``-o -``: the fragments reach stdout from C as well, in order."""
    stream = hls_stream(fault_server, 'outc', random_segments(8, base=9_000),
                        faults={i: {'latency': (8 - i) * 30} for i in range(8)})
    directory = tmp_path / 'out'
    directory.mkdir()
    info = write_info(directory, stream)
    proc = subprocess.run(
        [PYTHON, '-m', 'yt_dlp', '--no-cache-dir', '-v', *COMMON_ARGS, ENGINE, '--load-info-json', str(info),
         '-o', '-'], cwd=directory, capture_output=True, timeout=120,
        env=hermetic_env(tmp_path / '.home', _probe_env(tmp_path)))
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    assert FRAGMENT_LINE in proc.stderr.decode()
    assert _sha(proc.stdout) == _sha(stream.expected)
    probe = json.loads((tmp_path / 'probe.json').read_text())
    assert probe['body_bytes'] == 0 and probe['append_calls'] == 0, probe


def test_keep_fragments_written_in_c(tmp_path: Path, fault_server) -> None:
    """--keep-fragments: NAME.part-FragN as received (encrypted), as yt-dlp leaves them."""
    stream = hls_aes_stream(fault_server, 'keepc', random_segments(5, base=3_000), explicit_iv=True)
    proc, probe = _run(tmp_path, tmp_path / 'out', stream, '--keep-fragments')
    _exact(proc, tmp_path / 'out', stream)
    names = files_named(tmp_path / 'out', 'out.mp4.part-Frag*')
    assert names == [f'out.mp4.part-Frag{i}' for i in range(1, 6)]
    key, iv = stream.extra['keys'][0], stream.extra['iv']
    for i, name in enumerate(names):
        assert (tmp_path / 'out' / name).read_bytes() == aes_encrypt(stream.segments[i], key, iv)
    assert probe['body_bytes'] == 16 and probe['append_calls'] == 0, probe


def test_out_of_order_completion_is_appended_in_order(tmp_path: Path, fault_server) -> None:
    """Later fragments answer first (per-fragment latency falls): the file is still exact."""
    count = 10
    faults = {i: {'latency': (count - i) * 60} for i in range(count)}
    stream = hls_stream(fault_server, 'ooo', random_segments(count, base=15_000), faults=faults)
    proc, probe = _run(tmp_path, tmp_path / 'out', stream)
    _exact(proc, tmp_path / 'out', stream)
    assert probe['body_bytes'] == 0 and probe['append_calls'] == 0, probe
    fault_server.wait_idle()
    finished = {e.path.rsplit('/', 1)[-1]: e.finished for e in get_requests(fault_server, None)
                if e.path.startswith('/file/ooo/seg')}
    assert finished[f'seg{count - 1}.ts'] < finished['seg0.ts']  # they did complete out of order


def test_kill_then_resume_in_c_is_exact(tmp_path: Path, fault_server) -> None:
    """kill -9 mid-stream, then a rerun through the C path: exact bytes, nothing through Python."""
    stream = hls_stream(fault_server, 'killc', random_segments(16, base=12_000),
                        faults={i: {'latency': 120} for i in range(16)})
    directory = tmp_path / 'out'
    _kill_after(directory, stream, ENGINE, 5)
    assert (directory / 'out.mp4.ytdl').exists()
    proc, probe = _run(tmp_path, directory, stream)
    _exact(proc, directory, stream)
    assert files_named(directory, 'out*') == ['out.mp4']
    assert probe['body_bytes'] == 0 and probe['append_calls'] == 0, probe


def test_memory_is_bounded_by_the_window_not_the_stream(tmp_path: Path, fault_server) -> None:
    """200 fragments of 256 KiB (50 MiB) or 20: the engine never holds more than a window of bodies.

    (Peak RSS is no measure here: yt-dlp alone grows by ~40 MiB between these
    two runs, through glibc's allocator, whoever holds the bytes.)
    """
    size = 256 << 10
    window = 16  # fragment_pipeline.DEFAULT_WINDOW: no -N given
    for count in (20, 200):
        segments = [bytes([i % 251]) * size for i in range(count)]
        stream = hls_stream(fault_server, f'mem{count}', segments)
        directory = tmp_path / f'out{count}'
        proc, probe = _run(tmp_path, directory, stream)
        _exact(proc, directory, stream)
        assert probe['body_bytes'] == 0, probe
        assert 0 < probe['body_memory_peak'] <= window * size, probe


def _fresh_download(tmp_path: Path) -> tuple[Any, dict[str, Any]]:
    from yt_dlp import YoutubeDL
    from yt_dlp_async.ytdlp.hls import AsyncHlsFD
    fd = AsyncHlsFD(YoutubeDL({'quiet': True}), {'quiet': True})
    ctx: dict[str, Any] = {'filename': str(tmp_path / 'out.mp4'), 'total_frags': 4}
    fd._prepare_frag_download(ctx)
    return fd, ctx


def _on_disk(tmp_path: Path) -> tuple[bytes, int, int]:
    state = json.loads((tmp_path / 'out.mp4.ytdl').read_text())
    return ((tmp_path / 'out.mp4.part').read_bytes(), state['downloader']['current_fragment']['index'],
            state['yt_dlp_async']['part_bytes'])


def _writer(data: bytes, fail: bool = False) -> Any:
    def write(fileno: int) -> int:
        os.write(fileno, data)
        if fail:
            raise OSError(28, 'No space left on device')
        return len(data)
    return write


def test_c_appends_are_recorded_together_and_a_failure_cuts_back_to_the_record(tmp_path: Path) -> None:
    """append_in_c appends, record writes one state for all; a failed write or record cuts .part back."""
    from yt_dlp_async.ytdlp import fragment_resume
    fd, ctx = _fresh_download(tmp_path)
    frag = str(tmp_path / 'out.mp4.part-Frag')
    assert fragment_resume.append_in_c(fd, ctx, 1, frag + '1', _writer(b'a' * 10)) == 10
    assert fragment_resume.append_in_c(fd, ctx, 2, frag + '2', _writer(b'b' * 20)) == 20
    assert _on_disk(tmp_path)[1:] == (0, 0)  # not recorded yet: a resume would cut .part to 0
    fragment_resume.record(fd, ctx)
    assert _on_disk(tmp_path) == (b'a' * 10 + b'b' * 20, 2, 30)

    assert fragment_resume.append_in_c(fd, ctx, 3, frag + '3', _writer(b'c' * 5)) == 5
    with pytest.raises(OSError):  # fragment 4 half written: .part goes back to the record (fragment 2)
        fragment_resume.append_in_c(fd, ctx, 4, frag + '4', _writer(b'd' * 7, fail=True))
    assert _on_disk(tmp_path) == (b'a' * 10 + b'b' * 20, 2, 30)
    assert (ctx['fragment_index'], ctx[fragment_resume.PART_BYTES]) == (2, 30)

    assert fragment_resume.append_in_c(fd, ctx, 3, frag + '3', _writer(b'c' * 5)) == 5

    def no_room(ctx: dict[str, Any]) -> None:
        raise OSError(28, 'No space left on device')
    fd._write_ytdl_file = no_room
    with pytest.raises(OSError):  # the record fails: the bytes it would describe go too
        fragment_resume.record(fd, ctx)
    assert _on_disk(tmp_path) == (b'a' * 10 + b'b' * 20, 2, 30)
    ctx['dest_stream'].close()


def test_aes_body_c_refuses_goes_through_ytdlps_aes_like_native(tmp_path: Path, fault_server) -> None:
    """A fragment whose encrypted length is no multiple of 16: C refuses it, yt-dlp's own AES decrypts
    it (the old path, for that fragment only), and the file is what yt-dlp alone writes."""
    segments = random_segments(4, base=4_000)
    stream = hls_aes_stream(fault_server, 'odd', segments, explicit_iv=True)
    key, iv = stream.extra['keys'][0], stream.extra['iv']
    odd = aes_encrypt(segments[2], key, iv) + b'12345'
    fault_server.add_file('odd/seg2.ts', odd)
    proc, probe = _run(tmp_path, tmp_path / 'engine', stream)
    native = subprocess.run(
        [PYTHON, '-m', 'yt_dlp', '--no-cache-dir', *COMMON_ARGS, '--no-async-downloads', '--load-info-json',
         str(write_info(tmp_path / 'engine', stream, 'native.json')), '-o', 'native.%(ext)s'],
        cwd=tmp_path / 'engine', capture_output=True, text=True, timeout=120,
        env=hermetic_env(tmp_path / '.home'))
    assert proc.returncode == native.returncode == 0, output(proc) + output(native)
    engine_bytes = (tmp_path / 'engine' / 'out.mp4').read_bytes()
    assert engine_bytes == (tmp_path / 'engine' / 'native.mp4').read_bytes()
    assert engine_bytes.startswith(segments[0] + segments[1]) and engine_bytes.endswith(segments[3])
    assert probe['body_bytes'] == 16 + len(odd), probe  # the key, and that one fragment
    assert probe['append_calls'] == 1, probe
