"""DownloadTask.append_body: a memory=True body goes to a descriptor in C (csrc/fragstream.c).

The fragment pipeline appends HLS/DASH fragments with it, so their bytes
never become Python objects.  Checked here on the engine alone, against a
loopback server: the bytes in the file, the keep file, AES-128 decryption
(against the openssl CLI and the module's own aes128_cbc_decrypt), the
errors, and the engine's counters (body_bytes_to_python, body_memory).
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Iterator

import pytest
from faultserver import FaultServer
from fragment_streams import aes_encrypt

from yt_dlp_async import AsyncDownloadEngine, HTTPStatusError, aes128_cbc_decrypt
from yt_dlp_async.engine import body_bytes_to_python

KEY = bytes(range(16))
IV = bytes(range(100, 116))


@pytest.fixture
def engine() -> Iterator[AsyncDownloadEngine]:
    with AsyncDownloadEngine(retry_base_delay=0.05, retry_max_delay=0.2, max_retries=2) as eng:
        yield eng


def _fetch(engine: AsyncDownloadEngine, server: FaultServer, name: str, data: bytes):
    task = engine.submit(server.add_file(name, data), memory=True)
    task.result(30)
    return task


def _append(path: Path, task, **kwargs) -> int:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        return task.append_body(fd, **kwargs)
    finally:
        os.close(fd)


def test_plain_body_is_appended_after_what_is_there(tmp_path: Path, engine, fault_server) -> None:
    data = os.urandom(300_001)
    out = tmp_path / 'out'
    out.write_bytes(b'head')
    before = body_bytes_to_python()
    task = _fetch(engine, fault_server, 'plain', data)
    assert engine.body_memory()[0] >= len(data)
    assert _append(out, task) == len(data)
    assert out.read_bytes() == b'head' + data
    assert body_bytes_to_python() == before  # nothing became a bytes object
    assert engine.body_memory()[0] == 0     # the buffer is freed


def test_body_counter_counts_what_body_hands_over(engine, fault_server) -> None:
    before = body_bytes_to_python()
    task = _fetch(engine, fault_server, 'counted', b'x' * 5000)
    assert task.body() == b'x' * 5000
    assert body_bytes_to_python() == before + 5000


def test_aes128_is_decrypted_and_unpadded_like_ytdlp(tmp_path: Path, engine, fault_server) -> None:
    plain = os.urandom(70_000 + 5)
    encrypted = aes_encrypt(plain, KEY, IV)
    task = _fetch(engine, fault_server, 'aes', encrypted)
    out = tmp_path / 'out'
    assert _append(out, task, key=KEY, iv=IV) == len(plain)
    assert out.read_bytes() == plain == aes128_cbc_decrypt(encrypted, KEY, IV)


def test_keep_writes_the_body_as_received(tmp_path: Path, engine, fault_server) -> None:
    plain = os.urandom(4096)
    encrypted = aes_encrypt(plain, KEY, IV)
    task = _fetch(engine, fault_server, 'keep', encrypted)
    keep = tmp_path / 'out.part-Frag3'
    keep.write_bytes(b'stale bytes from an earlier run, longer than nothing' * 200)
    assert _append(tmp_path / 'out', task, key=KEY, iv=IV, keep=str(keep)) == len(plain)
    assert keep.read_bytes() == encrypted  # truncated, then the raw body
    assert (tmp_path / 'out').read_bytes() == plain


def test_body_is_appended_once(tmp_path: Path, engine, fault_server) -> None:
    task = _fetch(engine, fault_server, 'once', b'y' * 1000)
    _append(tmp_path / 'out', task)
    with pytest.raises(ValueError, match='already taken'):
        _append(tmp_path / 'out', task)
    assert (tmp_path / 'out').read_bytes() == b'y' * 1000


def test_bad_key_is_refused_before_the_body_is_used(tmp_path: Path, engine, fault_server) -> None:
    encrypted = aes_encrypt(b'z' * 100, KEY, IV)
    task = _fetch(engine, fault_server, 'badkey', encrypted)
    with pytest.raises(ValueError, match='16-byte key and a 16-byte IV'):
        _append(tmp_path / 'out', task, key=KEY[:8], iv=IV)
    with pytest.raises(ValueError, match='16-byte key'):
        _append(tmp_path / 'out', task, key=KEY)
    assert not (tmp_path / 'out').read_bytes()
    assert _append(tmp_path / 'out', task, key=KEY, iv=IV) == 100  # still there
    assert (tmp_path / 'out').read_bytes() == b'z' * 100


def test_length_not_a_block_multiple_is_refused(tmp_path: Path, engine, fault_server) -> None:
    task = _fetch(engine, fault_server, 'odd', os.urandom(33))
    with pytest.raises(ValueError, match='not a multiple of the AES block size'):
        _append(tmp_path / 'out', task, key=KEY, iv=IV)
    assert (tmp_path / 'out').read_bytes() == b''
    assert engine.body_memory()[0] == 0


def test_write_error_is_an_oserror_and_frees_the_body(tmp_path: Path, engine, fault_server) -> None:
    task = _fetch(engine, fault_server, 'rofd', b'w' * 2000)
    (tmp_path / 'ro').write_bytes(b'')
    fd = os.open(tmp_path / 'ro', os.O_RDONLY)
    try:
        with pytest.raises(OSError) as info:
            task.append_body(fd)
    finally:
        os.close(fd)
    assert info.value.errno == errno.EBADF
    assert engine.body_memory()[0] == 0


def test_keep_error_names_the_file(tmp_path: Path, engine, fault_server) -> None:
    task = _fetch(engine, fault_server, 'keeperr', b'k' * 100)
    missing = tmp_path / 'no' / 'such' / 'dir' / 'frag'
    with pytest.raises(FileNotFoundError) as info:
        _append(tmp_path / 'out', task, keep=str(missing))
    assert info.value.filename == str(missing)
    assert (tmp_path / 'out').read_bytes() == b''


def test_failed_task_raises_its_error(tmp_path: Path, engine, fault_server) -> None:
    task = engine.submit(fault_server.url('/data/100?status=404'), memory=True)
    with pytest.raises(HTTPStatusError):
        _append(tmp_path / 'out', task, timeout=30)
    assert (tmp_path / 'out').read_bytes() == b''


def test_empty_body_appends_nothing(tmp_path: Path, engine, fault_server) -> None:
    task = _fetch(engine, fault_server, 'empty', b'')
    keep = tmp_path / 'keep'
    assert _append(tmp_path / 'out', task, keep=str(keep)) == 0
    assert not keep.exists()  # as the pipeline did: nothing kept for an empty fragment
