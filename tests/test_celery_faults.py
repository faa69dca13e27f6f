"""The queue as yt-dlp alone names files, without shared storage, across Redis restarts and versions (issue 17).

Real redis-server, real Celery workers (tests/celery_support.py), the fault server's playlist page.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from celery_support import RedisServer, Workers, celery_workers, redis_server  # noqa: F401
from faultserver import sha256_of
from ytdlp_support import (
    PYTHON, hermetic_env, output, page_url, require_engine, require_hook, run_ytdlp, sha256_file, video_path)

BASE = 100_000


@pytest.fixture(autouse=True)
def _installed() -> None:
    require_hook()
    require_engine()


def media(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith('.mp4')) if directory.exists() else []


def served(server: Any) -> dict[str, int]:
    """Bytes the server sent per /data path."""
    server.wait_idle(5.0)
    out: dict[str, int] = {}
    for e in server.log:
        if e.method == 'GET' and e.path.startswith('/data/'):
            out[e.path] = out.get(e.path, 0) + e.bytes_sent
    return out


# ------------------------------------------------------------------ names
def test_names_and_padding_equal_plain_ytdlp_also_on_a_rerun_with_an_archive(
        tmp_path: Path, fault_server: Any, celery_workers: Workers) -> None:
    out, local = tmp_path / 'out', tmp_path / 'local'
    out.mkdir()
    local.mkdir()
    celery_workers.start('w1', concurrency=4, env={'YTDLP_ASYNC_WORKDIR': str(out)})
    url = page_url(fault_server, [video_path(i, BASE + i) for i in range(1, 11)])
    template = '%(playlist_index)s-%(n_entries)s-%(playlist_autonumber)s-%(autonumber)s.%(ext)s'
    first = ['--download-archive', 'a.txt', '-o', template, '-I', '1:4', url]
    second = ['--download-archive', 'a.txt', '-o', template, url]  # the rerun after a Ctrl-C
    for args in (first, second):
        alone = run_ytdlp(args, local)
        assert alone.returncode == 0, output(alone)
        queued = run_ytdlp(['--async-queue', celery_workers.redis.url, *args], tmp_path)
        assert queued.returncode == 0, output(queued) + celery_workers.logs()
        assert media(out) == media(local), (media(out), media(local))
    assert '07-10-07-00003.mp4' in media(local)  # two-digit index: padded from the whole playlist
    for name in media(out):
        i = int(name.split('-')[0])
        assert sha256_file(out / name) == sha256_of(BASE + i, i), name


# ------------------------------------------------------------------ no shared storage
def test_workers_with_their_own_folders_download_one_name_once(
        tmp_path: Path, fault_server: Any, celery_workers: Workers) -> None:
    """Six entries, one name: yt-dlp alone downloads the first and finds the file for the others.

    With a folder per worker nothing is found on the other disk: the run's record of the name
    (written:<run>:<name>) is what keeps the second worker from downloading it again.
    """
    folders = [tmp_path / 'w1', tmp_path / 'w2']
    for name, folder in zip(('w1', 'w2'), folders):
        folder.mkdir()
        celery_workers.start(name, concurrency=3, env={'YTDLP_ASYNC_WORKDIR': str(folder)})
    sizes = {i: BASE * 4 + i for i in range(1, 7)}
    url = page_url(fault_server, [video_path(i, sizes[i], rate=400_000) for i in sizes])
    proc = run_ytdlp(['--async-queue', celery_workers.redis.url, '--async-connections', '1',
                      '-o', '%(playlist_title)s.%(ext)s', url], tmp_path, timeout=120)
    assert proc.returncode == 0, output(proc) + celery_workers.logs()
    sent = {path: n for path, n in served(fault_server).items() if n}
    assert len(sent) == 1, (sent, output(proc))
    [(path, n)] = sent.items()
    i = next(i for i, size in sizes.items() if path == f'/data/{size}.mp4')
    assert n == sizes[i], (path, n)  # once, not twice
    files = [folder / 'PL.mp4' for folder in folders if (folder / 'PL.mp4').exists()]
    assert len(files) == 1 and sha256_file(files[0]) == sha256_of(sizes[i], i), files
    assert 'already downloaded on w' in proc.stdout, output(proc)


# ------------------------------------------------------------------ the broker restarts
def _wait_two_done_and_one_running(redis: RedisServer, timeout: float = 60) -> None:
    client = redis.client()
    deadline = time.monotonic() + timeout
    states: list[Any] = []
    while time.monotonic() < deadline:
        states = [json.loads(client.get(k) or '{}').get('status') for k in client.keys('celery-task-meta-*')]
        if states.count('SUCCESS') >= 2 and any(s in ('STARTED', 'PROGRESS') for s in states):
            return
        time.sleep(0.05)
    raise AssertionError(f'never two entries done and one running: {states}')


@pytest.mark.parametrize('persist', [True, False], ids=['aof', 'no-persistence'])
def test_redis_restarted_mid_run_kills_no_worker_and_every_entry_lands_once(
        tmp_path: Path, fault_server: Any, persist: bool) -> None:
    """Two entries run, two wait in the queue, two are done when Redis restarts."""
    from celery_support import require_celery
    require_celery()
    redis = RedisServer(tmp_path / 'redis', persist=persist).start()
    workers = Workers(redis, tmp_path)
    try:
        out = tmp_path / 'out'
        out.mkdir()
        w1 = workers.start('w1', concurrency=2, env={'YTDLP_ASYNC_WORKDIR': str(out)})
        sizes = {i: (BASE + i if i <= 2 else 1_200_000 + i) for i in range(1, 7)}
        url = page_url(fault_server, [video_path(i, sizes[i], rate=300_000) for i in sizes])
        cmd = [PYTHON, '-m', 'yt_dlp', '--no-cache-dir', '--async-queue', redis.url, '--async-connections', '1',
               '--download-archive', 'a.txt', '-o', '%(playlist_index)s.%(ext)s', url]
        proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=hermetic_env(tmp_path / '.home', {'YTDLP_ASYNC_CLAIM_TTL': '3'}))
        try:
            _wait_two_done_and_one_running(redis)  # 1 and 2 (small) are done, 3 and 4 run, 5 and 6 wait
            redis.stop()
            time.sleep(1.0)
            redis.start()
            try:
                stdout, stderr = proc.communicate(timeout=120)
            except subprocess.TimeoutExpired:
                proc.kill()
                stdout, stderr = proc.communicate()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        text = f'exit {proc.returncode}\n{stdout[-4000:]}\n{stderr[-3000:]}\n{workers.logs()}'
        assert proc.returncode == 0, text
        assert w1.proc.poll() is None, text  # the worker lived through it
        assert 'Unrecoverable error' not in w1.output(), text
        assert media(out) == [f'{i}.mp4' for i in sizes], text
        for i, size in sizes.items():
            assert sha256_file(out / f'{i}.mp4') == sha256_of(size, i), (i, text)
        lines = [line for line in (tmp_path / 'a.txt').read_text().splitlines() if line.strip()]
        assert len(lines) == 6 and len(set(lines)) == 6, (lines, text)
        if not persist:  # the submitter said what it did
            assert 'WARNING: [queue] the queue lost its data (Redis restarted without persistence?): ' in stderr, text
        sent = {path: n for path, n in served(fault_server).items() if n}
        for i, size in sizes.items():  # resumed or found complete, never fetched twice over
            assert sent[f'/data/{size}.mp4'] < 2 * size, (i, sent)
    finally:
        workers.stop_all()
        redis.stop()


def test_kombu_restore_after_the_transport_is_gone(redis_server: RedisServer) -> None:
    """The kombu fault behind "Unrecoverable error: AttributeError(... 'hostname')", without Celery."""
    from kombu import Connection

    def close_detached() -> str:
        conn = Connection(redis_server.url)
        queue = conn.SimpleQueue('t17')
        queue.put({'a': 1})
        queue.get(timeout=5)  # delivered, not acknowledged
        conn._do_close_transport()  # what Celery's connection loss does first
        try:
            queue.channel.close()  # then the channel gives its unacknowledged messages back
        except AttributeError as exc:
            return str(exc)
        return 'closed'

    from kombu.transport import redis as transport
    original = transport.QoS.restore_unacked
    try:
        assert close_detached() == "'NoneType' object has no attribute 'hostname'"  # kombu as it is
        from yt_dlp_async.celery import broker
        broker.patch_kombu()
        assert close_detached() == 'closed'
        # the message was not lost: it waits in Redis's unacked hash for the visibility timeout
        assert redis_server.client().hlen('unacked') == 2
    finally:
        transport.QoS.restore_unacked = original


# ------------------------------------------------------------------ versions
def test_a_worker_of_another_version_leaves_the_entry_to_a_matching_one(
        tmp_path: Path, fault_server: Any, celery_workers: Workers, monkeypatch: pytest.MonkeyPatch) -> None:
    """A rolling upgrade: the entry of an older submitter waits for an older worker instead of failing."""
    from yt_dlp_async.celery import cli, submit_module as submit, version_queue
    new = celery_workers.start('new', concurrency=1)
    celery_workers.use_key_here(monkeypatch)
    ours = cli.versions()
    theirs = {'yt-dlp': ours['yt-dlp'], 'yt-dlp-async': '0.0.1'}
    size = BASE * 7
    job = {'label': 'URL 1', 'entry': {'_type': 'url', 'url': fault_server.url(video_path(1, size))},
           'extra_info': {}, 'argv': ['-o', str(tmp_path / 'old.%(ext)s')], 'ydl_opts': None, 'archive': None,
           'versions': theirs, 'number': 1, 'run': 'r1'}
    [handle] = submit.send(submit.app_for(celery_workers.redis.url), [job])  # on this version's queue
    deadline = time.monotonic() + 30
    while handle.status()['state'] != 'RETRY' and time.monotonic() < deadline:
        time.sleep(0.1)
    assert handle.status() == {'state': 'RETRY'}, new.output()
    assert (f'left {handle.id} (URL 1) to a worker of yt-dlp {ours["yt-dlp"]} / yt-dlp-async 0.0.1 on queue '
            f'{version_queue(theirs)}') in new.output()
    assert submit.line_for(handle, handle.status())[1] == (
        f'[queue] URL 1: waiting for a worker of yt-dlp {ours["yt-dlp"]} / yt-dlp-async 0.0.1')
    assert not (tmp_path / 'old.mp4').exists() and served(fault_server) == {}

    # an "old" worker: a copy of the installed package whose one version (_version.py) says
    # 0.0.1, found first on sys.path
    import yt_dlp_async
    old = tmp_path / 'old-pkg'
    shutil.copytree(Path(yt_dlp_async.__file__).parent, old / 'yt_dlp_async')
    (old / 'yt_dlp_async' / '_version.py').write_text("__version__ = '0.0.1'\n")
    celery_workers.start('old', concurrency=1, env={'PYTHONPATH': str(old)})
    result = handle.wait(60)
    assert result['hostname'].startswith('old@') and result['filenames'] == [str(tmp_path / 'old.mp4')], result
    assert sha256_file(tmp_path / 'old.mp4') == sha256_of(size, 1)
    assert set(served(fault_server)) == {f'/data/{size}.mp4'}  # fetched only once the old worker ran it


# ------------------------------------------------------------------ a worker dies
def test_an_entry_of_a_dead_worker_is_queued_again_before_the_visibility_timeout(
        tmp_path: Path, fault_server: Any, celery_workers: Workers) -> None:
    """Visibility timeout 1 h: without the submitter's Watchdog the entry would wait that long."""
    slow = {'YTDLP_ASYNC_VISIBILITY_TIMEOUT': '3600'}
    w1 = celery_workers.start('w1', concurrency=1, env=slow)
    size = 1_500_000
    url = fault_server.url(video_path(1, size, rate=200_000))
    cmd = [PYTHON, '-m', 'yt_dlp', '--no-cache-dir', '--async-queue', celery_workers.redis.url,
           '--async-connections', '2', '-o', str(tmp_path / 'd.%(ext)s'), url]
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=hermetic_env(tmp_path / '.home', {'YTDLP_ASYNC_CLAIM_TTL': '3'}))
    try:
        client = celery_workers.redis.client()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            metas = [json.loads(client.get(k) or '{}') for k in client.keys('celery-task-meta-*')]
            if any(m.get('status') == 'PROGRESS' and (m.get('result') or {}).get('status') == 'downloading'
                   for m in metas):
                break
            time.sleep(0.1)
        time.sleep(1.0)
        w1.kill()
        celery_workers.start('w2', concurrency=1, env=slow)
        try:
            stdout, stderr = proc.communicate(timeout=90)
        except subprocess.TimeoutExpired:
            proc.kill()
            stdout, stderr = proc.communicate()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    text = f'exit {proc.returncode}\n{stdout[-3000:]}\n{stderr[-3000:]}\n{celery_workers.logs()}'
    assert proc.returncode == 0, text
    assert 'WARNING: [queue] URL 1: w1@' in stderr and 'stopped answering for 6 s; queued again' in stderr, text
    assert '[queue] URL 1: finished 1.43MiB on w2@' in stdout, text
    assert sha256_file(tmp_path / 'd.mp4') == sha256_of(size, 1)
