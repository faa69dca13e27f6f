"""Resuming ``NAME.part`` never gives a mixed file (issue 9, item 10).

The in-order path keeps the ETag / Last-Modified of the bytes in ``.part``
in the extended attribute ``user.yt-dlp-async.validator`` and sends it as
``If-Range`` on resume; a resource that changed meanwhile answers 200 and
the file restarts from byte 0.  A ``.part`` left by yt-dlp alone (no
validator) resumes as yt-dlp resumes it.  The validator is stored before
the first byte of a reply reaches the ``.part`` (the engine holds the body
until then), so even a SIGKILL during the first request leaves none unstored.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from faultserver import content
from ytdlp_support import (
    PYTHON, get_requests, hermetic_env, output, require_engine, require_hook, run_ytdlp, sha256_file,
    write_info_json)

XATTR = 'user.yt-dlp-async.validator'
SIZE = 1_000_000
IN_ORDER = ['--async-connections', '1', '--retry-sleep', '0']
OLD = content(SIZE, seed=1)
NEW = content(SIZE, seed=2)     # same size: only the validator tells them apart


@pytest.fixture(autouse=True)
def _installed() -> None:
    require_hook()
    require_engine()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def xattr_of(path: Path) -> str | None:
    try:
        return os.getxattr(path, XATTR).decode()
    except OSError:
        return None


def interrupt_with_reset(tmp_path: Path, fault_server, native: bool) -> tuple[Path, str]:
    """A download that breaks at 300,000 bytes with -R 0: the .part stays."""
    url = fault_server.add_file('v.mp4', OLD, 'video/mp4') + '?reset_after=300000'
    info = write_info_json(tmp_path / 'i.json', url)
    proc = run_ytdlp([*IN_ORDER, *(['--no-async-downloads'] if native else []), '-R', '0',
                      '--load-info-json', str(info), '-o', 'v.mp4'], tmp_path)
    assert proc.returncode == 1, output(proc)
    part = tmp_path / 'v.mp4.part'
    assert 0 < part.stat().st_size <= 300_000 and part.read_bytes() == OLD[:part.stat().st_size]
    return part, str(info)


def finish(tmp_path: Path, info: str) -> subprocess.CompletedProcess[str]:
    proc = run_ytdlp([*IN_ORDER, '--load-info-json', info, '-o', 'v.mp4'], tmp_path)
    assert proc.returncode == 0, output(proc)
    return proc


def interrupt_when_part_exceeds(tmp_path: Path, info: Path, part: Path, min_bytes: int, sig: int) -> int:
    """Run yt-dlp (one connection) and send ``sig`` once ``part`` holds more than ``min_bytes``; its exit code."""
    proc = subprocess.Popen([PYTHON, '-m', 'yt_dlp', *IN_ORDER, '--load-info-json', str(info), '-o', 'v.mp4'],
                            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=hermetic_env(tmp_path / '.home'))
    deadline = time.monotonic() + 30
    while not (part.exists() and part.stat().st_size > min_bytes) and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(sig)
    return proc.wait(timeout=30)


def test_changed_resource_restarts_instead_of_mixing(tmp_path: Path, fault_server) -> None:
    part, info = interrupt_with_reset(tmp_path, fault_server, native=False)
    stored = xattr_of(part)
    assert stored is not None and stored.startswith('"file-')
    fault_server.add_file('v.mp4', NEW, 'video/mp4')       # new content, new ETag, same size
    proc = finish(tmp_path, info)
    assert sha256_file(tmp_path / 'v.mp4') == sha(NEW), output(proc)
    assert '[download] Unable to resume' in proc.stdout
    request = get_requests(fault_server, '/file/v.mp4')[-1]
    assert request.header('If-Range') == stored and request.status == 200
    assert xattr_of(tmp_path / 'v.mp4') is None      # the finished file carries no attribute
    assert sorted(p.name for p in tmp_path.iterdir()) == ['.home', 'i.json', 'v.mp4']


def test_unchanged_resource_resumes_with_if_range(tmp_path: Path, fault_server) -> None:
    part, info = interrupt_with_reset(tmp_path, fault_server, native=False)
    kept = part.stat().st_size
    stored = xattr_of(part)
    proc = finish(tmp_path, info)
    assert f'Resuming download at byte {kept}' in proc.stdout, output(proc)
    assert sha256_file(tmp_path / 'v.mp4') == sha(OLD)
    request = get_requests(fault_server, '/file/v.mp4')[-1]
    assert request.range == f'bytes={kept}-' and request.header('If-Range') == stored and request.status == 206


def test_part_left_by_ytdlp_alone_resumes_as_ytdlp_does(tmp_path: Path, fault_server) -> None:
    part, info = interrupt_with_reset(tmp_path, fault_server, native=True)
    kept = part.stat().st_size
    assert xattr_of(part) is None
    proc = finish(tmp_path, info)
    assert f'Resuming download at byte {kept}' in proc.stdout, output(proc)
    assert sha256_file(tmp_path / 'v.mp4') == sha(OLD)
    request = get_requests(fault_server, '/file/v.mp4')[-1]
    assert request.range == f'bytes={kept}-' and request.header('If-Range') is None


def test_ctrl_c_keeps_the_validator(tmp_path: Path, fault_server) -> None:
    url = fault_server.add_file('v.mp4', OLD, 'video/mp4') + '?rate=200000'
    info = write_info_json(tmp_path / 'i.json', url)
    part = tmp_path / 'v.mp4.part'
    assert interrupt_when_part_exceeds(tmp_path, info, part, 200_000, signal.SIGINT) != 0
    assert xattr_of(part) is not None
    fault_server.add_file('v.mp4', NEW, 'video/mp4')
    finish(tmp_path, str(info))
    assert sha256_file(tmp_path / 'v.mp4') == sha(NEW)


def test_shorter_new_resource_leaves_no_old_tail(tmp_path: Path, fault_server) -> None:
    # the old .part is longer than the whole new file: the restart must not keep its tail
    url = fault_server.add_file('v.mp4', OLD, 'video/mp4') + '?reset_after=600000'
    info = write_info_json(tmp_path / 'i.json', url)
    proc = run_ytdlp([*IN_ORDER, '-R', '0', '--load-info-json', str(info), '-o', 'v.mp4'], tmp_path)
    assert proc.returncode == 1, output(proc)
    assert (tmp_path / 'v.mp4.part').stat().st_size > 200_000
    short_new = content(100_000, seed=3)
    fault_server.add_file('v.mp4', short_new, 'video/mp4')
    finish(tmp_path, str(info))
    assert sha256_file(tmp_path / 'v.mp4') == sha(short_new)


def test_sigkill_in_the_first_request_still_refuses_another_size(tmp_path: Path, fault_server) -> None:
    # SIGKILL before the first request ended: the resource size was stored before the
    # first byte; without the validator (a server that sends none: removed here), a new
    # file of another size restarts
    url = fault_server.add_file('v.mp4', OLD, 'video/mp4') + '?rate=200000'
    info = write_info_json(tmp_path / 'i.json', url)
    part = tmp_path / 'v.mp4.part'
    interrupt_when_part_exceeds(tmp_path, info, part, 200_000, signal.SIGKILL)
    assert os.getxattr(part, 'user.yt-dlp-async.size') == str(SIZE).encode()
    os.removexattr(part, XATTR)
    kept = part.stat().st_size
    longer_new = content(SIZE + 5000, seed=4)
    fault_server.add_file('v.mp4', longer_new, 'video/mp4')
    proc2 = finish(tmp_path, str(info))
    assert sha256_file(tmp_path / 'v.mp4') == sha(longer_new), output(proc2)
    assert '[download] Unable to resume' in proc2.stdout
    ranges = [e.range for e in get_requests(fault_server, '/file/v.mp4')[-2:]]
    assert ranges == [f'bytes={kept}-', None]
    assert sorted(p.name for p in tmp_path.iterdir()) == ['.home', 'i.json', 'v.mp4']


def test_sigkill_in_the_first_request_then_a_same_size_change_restarts(tmp_path: Path, fault_server) -> None:
    # the validator is stored before the first byte of the first reply reaches the
    # .part: killed with bytes on disk, a same-size new file is refused by If-Range
    url = fault_server.add_file('v.mp4', OLD, 'video/mp4') + '?rate=100000'
    info = write_info_json(tmp_path / 'i.json', url)
    part = tmp_path / 'v.mp4.part'
    interrupt_when_part_exceeds(tmp_path, info, part, 0, signal.SIGKILL)
    kept = part.stat().st_size
    assert 0 < kept < SIZE and part.read_bytes() == OLD[:kept]
    stored = xattr_of(part)
    assert len(get_requests(fault_server, '/file/v.mp4')) == 1     # killed during the first request
    fault_server.add_file('v.mp4', NEW, 'video/mp4')       # same size, new ETag
    proc2 = finish(tmp_path, str(info))
    assert sha256_file(tmp_path / 'v.mp4') == sha(NEW), output(proc2)
    rerun = get_requests(fault_server, '/file/v.mp4')[-1]
    assert stored is not None and stored.startswith('"file-') and stored.endswith(f'-{SIZE}-0"')
    assert rerun.range == f'bytes={kept}-' and rerun.header('If-Range') == stored and rerun.status == 200
    assert sorted(p.name for p in tmp_path.iterdir()) == ['.home', 'i.json', 'v.mp4']


def _no_xattrs(monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    def unsupported(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOTSUP, 'Operation not supported')
    for name in ('getxattr', 'setxattr', 'removexattr'):
        monkeypatch.setattr(os, name, unsupported)


def test_sidecar_when_the_filesystem_has_no_xattrs(tmp_path: Path, fault_server,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    import yt_dlp_async.ytdlp
    yt_dlp_async.ytdlp.install(import_ytdlp=True)
    from yt_dlp import YoutubeDL
    _no_xattrs(monkeypatch)
    url = fault_server.add_file('v.mp4', OLD, 'video/mp4') + '?reset_after=300000'
    info = {'id': 'v', 'title': 'v', 'url': url, 'ext': 'mp4', 'format_id': '0', 'protocol': 'http',
            'extractor': 'generic', 'extractor_key': 'Generic', 'webpage_url': url}
    params = {'quiet': True, 'noprogress': True, 'async_downloads': True, 'async_connections': 1,
              'outtmpl': str(tmp_path / 'v.%(ext)s'), 'retry_sleep_functions': {'http': lambda n: 0}}
    with YoutubeDL({**params, 'retries': 0, 'ignoreerrors': True}) as ydl:
        ydl.process_ie_result(dict(info), download=True)
    sidecar = tmp_path / 'v.mp4.part.async-validator'
    validator, size = sidecar.read_text().splitlines()
    assert validator.startswith('"file-') and size == str(SIZE)
    fault_server.add_file('v.mp4', NEW, 'video/mp4')
    with YoutubeDL(params) as ydl:
        ydl.process_ie_result(dict(info), download=True)
    assert sha256_file(tmp_path / 'v.mp4') == sha(NEW)
    assert sorted(p.name for p in tmp_path.iterdir()) == ['v.mp4']     # the sidecar went with the .part


def test_complete_part_416_leaves_no_attribute_on_the_file(tmp_path: Path, fault_server) -> None:
    from faultserver import sha256_of
    size = 100_000
    part = tmp_path / 'f.mp4.part'
    part.write_bytes(content(size))
    os.setxattr(part, XATTR, f'"0-{size}-0"'.encode())     # the /data resource's ETag
    info = write_info_json(tmp_path / 'i.json', fault_server.data_url(size, 'mp4'))
    proc = run_ytdlp([*IN_ORDER, '--load-info-json', str(info), '-o', 'f.mp4'], tmp_path)
    assert proc.returncode == 0, output(proc)
    assert 'has already been downloaded' in proc.stdout, output(proc)
    request, = get_requests(fault_server, f'/data/{size}.mp4')
    assert request.status == 416 and request.header('If-Range') == f'"0-{size}-0"'
    assert sha256_file(tmp_path / 'f.mp4') == sha256_of(size)
    assert xattr_of(tmp_path / 'f.mp4') is None
