"""HLS and DASH fragments through the engine: the same bytes, files and behaviour as native yt-dlp."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from fragment_streams import (
    COMMON_ARGS, ENGINE, FRAGMENT_LINE, NATIVE, Stream, dash_stream, files_named, hls_aes_stream,
    hls_byterange_stream, hls_stream, random_segments, run_both, run_one, write_info)
from ytdlp_support import (
    PYTHON, get_requests, hermetic_env, output, require_engine, require_hook, sha256_file)


@pytest.fixture(autouse=True)
def _installed() -> None:
    require_hook()
    require_engine()


def assert_same_output(engine: subprocess.CompletedProcess[str], native: subprocess.CompletedProcess[str],
                       engine_dir: Path, native_dir: Path, expected: bytes, name: str = 'out.mp4') -> None:
    assert engine.returncode == 0, output(engine)
    assert native.returncode == 0, output(native)
    assert FRAGMENT_LINE in engine.stderr, output(engine)
    assert FRAGMENT_LINE not in native.stderr, output(native)
    assert (engine_dir / name).read_bytes() == expected, output(engine)
    assert sha256_file(engine_dir / name) == sha256_file(native_dir / name)
    for directory in (engine_dir, native_dir):  # nothing left behind: no .part, .ytdl or -Frag files
        assert files_named(directory, 'out*') == [name], output(engine)


# ------------------------------------------------------------------------ HLS
def test_hls_plain_matches_native(tmp_path: Path, fault_server) -> None:
    stream = hls_stream(fault_server, 'plain', random_segments(40, base=8_000))
    engine, native, engine_dir, native_dir = run_both(tmp_path, stream)
    assert_same_output(engine, native, engine_dir, native_dir, stream.expected)
    assert 'Invoking hlsnative downloader' in engine.stderr  # the FD name the fixups compare
    assert '[hlsnative] Total fragments: 40' in engine.stdout
    assert '(frag 40/40)' in engine.stdout or '100% of' in engine.stdout


def test_hls_window_is_concurrent_and_bounded(tmp_path: Path, fault_server) -> None:
    """Fragments overlap up to the window (16, or -N if larger), under the per-host cap."""
    stream = hls_stream(fault_server, 'window', random_segments(40, base=4_000),
                        faults={i: {'latency': 200} for i in range(40)})
    proc = run_one(tmp_path / 'e', stream, ENGINE, '--async-host-connections', '64')
    assert proc.returncode == 0, output(proc)
    assert (tmp_path / 'e' / 'out.mp4').read_bytes() == stream.expected
    assert 8 <= fault_server.max_concurrent <= 16, fault_server.max_concurrent  # overlap, not a stopwatch

    fault_server.reset()
    proc = run_one(tmp_path / 'cap', stream, ENGINE, '--async-host-connections', '3', '-N', '32')
    assert proc.returncode == 0, output(proc)
    assert 2 <= fault_server.max_concurrent <= 3, fault_server.max_concurrent


def test_hls_byterange_matches_native(tmp_path: Path, fault_server) -> None:
    stream = hls_byterange_stream(fault_server, 'br', [30_000 + i * 101 for i in range(9)])
    engine, native, engine_dir, native_dir = run_both(tmp_path, stream)
    assert_same_output(engine, native, engine_dir, native_dir, stream.expected)
    ranges = {e.range for e in get_requests(fault_server, '/file/br/media.bin')}
    assert 'bytes=0-29999' in ranges  # each fragment asks for its own range only


def test_hls_init_section_matches_native(tmp_path: Path, fault_server) -> None:
    stream = hls_stream(fault_server, 'init', random_segments(6), init=os.urandom(1_234))
    engine, native, engine_dir, native_dir = run_both(tmp_path, stream)
    assert_same_output(engine, native, engine_dir, native_dir, stream.expected)


def test_hls_init_section_as_byterange(tmp_path: Path, fault_server) -> None:
    stream = hls_byterange_stream(fault_server, 'brinit', [20_000] * 5, init_size=777)
    engine, native, engine_dir, native_dir = run_both(tmp_path, stream)
    assert_same_output(engine, native, engine_dir, native_dir, stream.expected)


@pytest.mark.parametrize('explicit_iv', [True, False], ids=['iv', 'media-sequence-iv'])
def test_hls_aes128_matches_native(tmp_path: Path, fault_server, explicit_iv: bool) -> None:
    stream = hls_aes_stream(fault_server, f'aes{int(explicit_iv)}', random_segments(8, base=3_000),
                            explicit_iv=explicit_iv, key_rotation=True)
    engine, native, engine_dir, native_dir = run_both(tmp_path, stream)
    assert_same_output(engine, native, engine_dir, native_dir, stream.expected)
    assert 'extraction will be delegated' not in engine.stderr  # decrypted in C, not handed to ffmpeg
    fault_server.wait_idle()
    name = f'aes{int(explicit_iv)}'
    key_requests = [e for e in fault_server.requests() if e.path.startswith(f'/file/{name}/key')]
    # each key once per run: two keys, two runs (native and engine)
    assert len(key_requests) == 4, [e.path for e in key_requests]


def test_hls_aes_key_from_info_dict(tmp_path: Path, fault_server) -> None:
    """``hls_aes`` (key and IV given by the extractor) is honoured; the key URI is never fetched."""
    stream = hls_aes_stream(fault_server, 'aesinfo', random_segments(5, base=2_000), explicit_iv=True)
    stream.info['hls_aes'] = {'key': '0x' + stream.extra['keys'][0].hex(), 'iv': stream.extra['iv'].hex()}
    fault_server.add_file('aesinfo/key0.bin', b'wrong key 123456')
    engine, native, engine_dir, native_dir = run_both(tmp_path, stream)
    assert_same_output(engine, native, engine_dir, native_dir, stream.expected)
    assert not [e for e in fault_server.requests() if e.path == '/file/aesinfo/key0.bin']


def test_hls_extra_param_to_segment_url(tmp_path: Path, fault_server) -> None:
    stream = hls_stream(fault_server, 'extra', random_segments(4), extra_param_to_segment_url='token=abc123')
    proc = run_one(tmp_path / 'e', stream, ENGINE)
    assert proc.returncode == 0, output(proc)
    assert FRAGMENT_LINE in proc.stderr
    assert (tmp_path / 'e' / 'out.mp4').read_bytes() == stream.expected
    segment_requests = [e for e in get_requests(fault_server, '/file/extra/seg0.ts')]
    assert segment_requests and all(e.query.get('token') == 'abc123' for e in segment_requests)


def test_hls_headers_and_cookies_reach_fragments_and_key(tmp_path: Path, fault_server) -> None:
    checks = {'require_header': 'X-Frag:yes', 'require_cookie': 'sid=7'}
    stream = hls_stream(fault_server, 'hdr', random_segments(3), faults={i: checks for i in range(3)},
                        http_headers={'X-Frag': 'yes'}, cookies='sid=7; Domain=127.0.0.1; Path=/')
    proc = run_one(tmp_path / 'e', stream, ENGINE)
    assert proc.returncode == 0, output(proc)
    assert (tmp_path / 'e' / 'out.mp4').read_bytes() == stream.expected


# ------------------------------------------------------------ faults: retries
def test_fragment_failing_k_times_with_5xx_is_retried_by_the_engine(tmp_path: Path, fault_server) -> None:
    segments = random_segments(6)
    outputs = {}
    for label, switch in (('e', ENGINE), ('n', NATIVE)):
        stream = hls_stream(fault_server, f'f5{label}', segments, faults={2: {'fail': 3}})
        proc = run_one(tmp_path / label, stream, switch, '--async-retry-delay', '0.05', '--retries', '5')
        assert proc.returncode == 0, output(proc)
        outputs[label] = (tmp_path / label / 'out.mp4').read_bytes()
    assert outputs['e'] == outputs['n'] == b''.join(segments)
    statuses = [e.status for e in get_requests(fault_server, '/file/f5e/seg2.ts')]
    assert statuses == [503, 503, 503, 200], statuses


def test_fragment_failing_k_times_with_4xx_uses_fragment_retries(tmp_path: Path, fault_server) -> None:
    segments = random_segments(5)
    stream = hls_stream(fault_server, 'f4', segments, faults={1: {'fail': 2, 'fail_status': 403}})
    proc = run_one(tmp_path / 'e', stream, ENGINE, '--fragment-retries', '3')
    assert proc.returncode == 0, output(proc)
    assert (tmp_path / 'e' / 'out.mp4').read_bytes() == b''.join(segments)
    assert 'HTTP Error 403: Forbidden. Retrying fragment 2 (1/3)...' in proc.stdout + proc.stderr, output(proc)
    assert 'Retrying fragment 2 (2/3)' in proc.stdout + proc.stderr


# --------------------------------------------------- faults: missing fragments
def test_missing_hls_fragment_is_skipped_like_native(tmp_path: Path, fault_server) -> None:
    segments = random_segments(6)
    stream = hls_stream(fault_server, 'miss', segments, faults={3: {'status': 404}})
    engine, native, engine_dir, native_dir = run_both(tmp_path, stream, '--fragment-retries', '1')
    expected = b''.join(segments[:3] + segments[4:])
    assert_same_output(engine, native, engine_dir, native_dir, expected)
    assert 'Skipping fragment 4 ...' in engine.stdout, output(engine)


def test_missing_hls_fragment_aborts_with_abort_option(tmp_path: Path, fault_server) -> None:
    segments = random_segments(6)
    stream = hls_stream(fault_server, 'abort', segments, faults={3: {'status': 404}})
    engine, native, engine_dir, native_dir = run_both(
        tmp_path, stream, '--fragment-retries', '1', '--abort-on-unavailable-fragment')
    for proc, directory in ((engine, engine_dir), (native, native_dir)):
        assert proc.returncode == 1, output(proc)
        assert 'HTTP Error 404' in proc.stderr, output(proc)
        assert not (directory / 'out.mp4').exists()
        # what is on disk is the fragments before the missing one, and .ytdl says so
        assert (directory / 'out.mp4.part').read_bytes() == b''.join(segments[:3]), output(proc)
        ytdl = json.loads((directory / 'out.mp4.ytdl').read_text())
        assert ytdl['downloader']['current_fragment']['index'] == 3


def test_dash_matches_native_and_first_fragment_is_fatal(tmp_path: Path, fault_server) -> None:
    segments = random_segments(12)
    stream = dash_stream(fault_server, 'dash', segments, faults={5: {'status': 404}})
    engine, native, engine_dir, native_dir = run_both(tmp_path, stream, '--fragment-retries', '0')
    assert_same_output(engine, native, engine_dir, native_dir, b''.join(segments[:5] + segments[6:]))
    assert 'Invoking dashsegments downloader' in engine.stderr

    fatal = dash_stream(fault_server, 'dash0', segments, faults={0: {'status': 404}})
    proc = run_one(tmp_path / 'fatal', fatal, ENGINE, '--fragment-retries', '0')
    assert proc.returncode == 1, output(proc)
    assert FRAGMENT_LINE in proc.stderr and 'HTTP Error 404' in proc.stderr, output(proc)


# ---------------------------------------------------------------- options
def test_keep_fragments_as_native_names_them(tmp_path: Path, fault_server) -> None:
    stream = hls_aes_stream(fault_server, 'keep', random_segments(4, base=2_000), explicit_iv=False)
    engine, native, engine_dir, native_dir = run_both(tmp_path, stream, '--keep-fragments')
    assert engine.returncode == 0 and native.returncode == 0, output(engine) + output(native)
    names = files_named(engine_dir, 'out.mp4.part-Frag*')
    assert names == files_named(native_dir, 'out.mp4.part-Frag*') == [f'out.mp4.part-Frag{i}' for i in range(1, 5)]
    for name in names:  # kept as downloaded (encrypted), like yt-dlp
        assert (engine_dir / name).read_bytes() == (native_dir / name).read_bytes()
    assert (engine_dir / 'out.mp4').read_bytes() == stream.expected


def test_test_option_downloads_the_first_fragment_only(tmp_path: Path, fault_server) -> None:
    stream = hls_stream(fault_server, 'test', random_segments(5))
    engine, native, engine_dir, native_dir = run_both(tmp_path, stream, '--test')
    assert_same_output(engine, native, engine_dir, native_dir, stream.segments[0])
    assert len(get_requests(fault_server, '/file/test/seg1.ts')) == 0


def test_progress_hooks_have_fragment_index_and_count(tmp_path: Path, fault_server) -> None:
    stream = hls_stream(fault_server, 'prog', random_segments(10), faults={i: {'latency': 100} for i in range(10)})
    proc = run_one(tmp_path / 'e', stream, ENGINE, '--newline', '--async-host-connections', '2', '--progress-template',
                   'download:PROG %(progress.fragment_index)s/%(progress.fragment_count)s %(progress.status)s')
    assert proc.returncode == 0, output(proc)
    lines = [line for line in proc.stdout.splitlines() if line.startswith('PROG ')]
    downloading = [line for line in lines if line.endswith(' downloading')]
    assert downloading and all(line.split()[1].endswith('/10') for line in downloading), output(proc)
    indexes = [int(line.split()[1].split('/')[0]) for line in downloading]
    assert indexes == sorted(indexes) and indexes[-1] == 10 and len(set(indexes)) >= 3, indexes


def test_stdout_output(tmp_path: Path, fault_server) -> None:
    stream = hls_stream(fault_server, 'stdout', random_segments(5))
    (tmp_path / 'e').mkdir()
    info = write_info(tmp_path / 'e', stream)
    proc = subprocess.run([PYTHON, '-m', 'yt_dlp', '-v', *COMMON_ARGS, '--load-info-json', str(info), '-o', '-'],
                          cwd=tmp_path / 'e', capture_output=True, timeout=120,
                          env=hermetic_env(tmp_path / 'e' / '.home'))
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    assert proc.stdout == stream.expected


# ----------------------------------------------------------- kill and resume
def _kill_midway(directory: Path, stream: Stream, switch: str, at_least: int) -> int:
    """Start yt-dlp, SIGKILL it once the .ytdl file says ``at_least`` fragments are on disk."""
    directory.mkdir(parents=True, exist_ok=True)
    info = write_info(directory, stream)
    proc = subprocess.Popen(
        [PYTHON, '-m', 'yt_dlp', '--no-cache-dir', *COMMON_ARGS, switch, '--async-host-connections', '2',
         '--load-info-json', str(info), '-o', 'out.%(ext)s'],
        cwd=directory, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=hermetic_env(directory / '.home'))
    ytdl = directory / 'out.mp4.ytdl'
    deadline = time.monotonic() + 60
    index = 0
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                index = json.loads(ytdl.read_text())['downloader']['current_fragment']['index']
            except (OSError, ValueError, KeyError):
                index = 0
            if index >= at_least:
                break
            time.sleep(0.02)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    assert index >= at_least, 'yt-dlp finished or stalled before it could be killed'
    return int(json.loads(ytdl.read_text())['downloader']['current_fragment']['index'])


@pytest.mark.parametrize('first, second', [(ENGINE, NATIVE), (ENGINE, ENGINE), (NATIVE, ENGINE)],
                         ids=['engine-then-native', 'engine-then-engine', 'native-then-engine'])
def test_kill_and_resume(tmp_path: Path, fault_server, first: str, second: str) -> None:
    segments = random_segments(16, base=10_000)
    # fragment 5 stalls, so the kill lands between fragments (not between a fragment's bytes and its record)
    stream = hls_stream(fault_server, 'resume', segments,
                        faults={i: {'latency': 5000 if i == 4 else 100} for i in range(16)})
    directory = tmp_path / 'run'
    index = _kill_midway(directory, stream, first, at_least=4)
    assert index < 16
    assert (directory / 'out.mp4.part').read_bytes() == b''.join(segments[:index])
    fault_server.reset()
    proc = run_one(directory, stream, second)
    assert proc.returncode == 0, output(proc)
    assert (directory / 'out.mp4').read_bytes() == stream.expected
    assert files_named(directory, 'out*') == ['out.mp4']
    fetched = {e.path for e in get_requests(fault_server, None) if e.path.startswith('/file/resume/seg')}
    assert f'/file/resume/seg{index}.ts' in fetched
    if first == NATIVE:  # yt-dlp's state has no .part length to check the end against: a clean restart
        assert 'does not record the length of the .part file' in proc.stderr, output(proc)
        assert '/file/resume/seg0.ts' in fetched
    else:
        assert f'/file/resume/seg{index - 1}.ts' not in fetched  # fragments on disk are not fetched again


# ------------------------------------------------------------------ fallback
def test_live_and_sample_aes_fall_back_with_a_reason(tmp_path: Path, fault_server) -> None:
    stream = hls_stream(fault_server, 'sample', random_segments(2),
                        key_lines=['#EXT-X-KEY:METHOD=SAMPLE-AES,URI="key.bin",KEYFORMAT="identity"'])
    proc = run_one(tmp_path / 'sample', stream, ENGINE, '--allow-unplayable-formats')
    assert FRAGMENT_LINE not in proc.stderr, output(proc)
    assert '[async] Using yt-dlp\'s hlsnative downloader: EXT-X-KEY METHOD=SAMPLE-AES' in proc.stderr, output(proc)

    live = hls_stream(fault_server, 'live', random_segments(2), is_live=True)
    proc = run_one(tmp_path / 'live', live, ENGINE)
    assert FRAGMENT_LINE not in proc.stderr, output(proc)
    assert 'live streams are not handled by the engine' in proc.stderr, output(proc)


def test_native_downloader_option_keeps_yt_dlp(tmp_path: Path, fault_server) -> None:
    stream = hls_stream(fault_server, 'nat', random_segments(3))
    proc = run_one(tmp_path / 'e', stream, ENGINE, '--downloader', 'm3u8:native')
    assert proc.returncode == 0, output(proc)
    assert FRAGMENT_LINE not in proc.stderr
    assert '--downloader native was given' in proc.stderr, output(proc)


def test_a_long_wait_for_one_fragment_keeps_a_printable_speed(tmp_path: Path, fault_server) -> None:
    """Progress is reported when bytes arrive, as yt-dlp's loop does: while one fragment waits for its
    retries the smoothed speed must not decay below what yt-dlp's format_bytes can print (IndexError)."""
    stream = hls_stream(fault_server, 'slowfrag', random_segments(6),
                        faults={3: {'fail': 6, 'retry_after': 1}})
    proc = run_one(tmp_path / 'e', stream, ENGINE, '--retries', '10', '--fragment-retries', '10', '--newline')
    assert proc.returncode == 0, output(proc)
    assert 'IndexError' not in proc.stderr
    assert (tmp_path / 'e' / 'out.mp4').read_bytes() == stream.expected
    assert len(get_requests(fault_server, '/file/slowfrag/seg3.ts')) == 7  # six 503s, then the segment


def test_printable_speed() -> None:
    from yt_dlp_async.ytdlp.fragment_pipeline import _printable
    assert _printable(None) is None and _printable(1e-30) is None
    assert _printable(0.5) == 0.5 and _printable(2e6) == 2e6
