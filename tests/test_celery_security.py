"""The queue against whoever can write to its Redis, and secrets kept out of it (issue 17).

Real redis-server, real Celery workers (tests/celery_support.py), real fault server.
Jobs are hand-built here the way a Redis writer or a key holder could build them, then
sealed (or not) and sent with Celery as the submitter sends them.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from celery_support import CELERY, RedisServer, Workers, celery_workers, free_port, redis_server, require_celery  # noqa: F401
from faultserver import sha256_of
from ytdlp_support import (
    PYTHON, hermetic_env, output, require_engine, require_hook, run_ytdlp, sha256_file, video_path)

SIZE = 200_000


@pytest.fixture(autouse=True)
def _installed() -> None:
    require_hook()
    require_engine()


def data_gets(server: Any) -> list[Any]:
    server.wait_idle(5.0)
    return [e for e in server.log if e.method == 'GET' and e.path.startswith('/data/')]


def job_for(url: str, argv: list[str] | None = None, ydl_opts: dict[str, Any] | None = None) -> dict[str, Any]:
    from yt_dlp_async.celery import cli
    return {'label': 'URL 1', 'entry': {'_type': 'url', 'url': url}, 'extra_info': {}, 'argv': argv,
            'ydl_opts': ydl_opts if argv is None else None, 'archive': None, 'versions': cli.versions(), 'number': 1}


def failure(handle: Any, timeout: float = 60) -> str:
    from yt_dlp_async.celery.errors import EntryError
    with pytest.raises(EntryError) as info:
        handle.wait(timeout)
    return str(info.value)


# ------------------------------------------------------------------ the allowlist
def test_tasks_that_would_run_commands_or_write_outside_are_refused_and_nothing_runs(
        tmp_path: Path, fault_server: Any, celery_workers: Workers, monkeypatch: pytest.MonkeyPatch) -> None:
    from yt_dlp_async.celery import submit_module as submit
    out, outside, mark = tmp_path / 'out', tmp_path / 'outside', tmp_path / 'MARK'
    out.mkdir()
    fake = tmp_path / 'fakebin'
    fake.mkdir()
    for tool in ('ffmpeg', 'ffprobe'):  # a fake ffmpeg that would leave the mark
        (fake / tool).write_text(f'#!/bin/sh\ntouch {mark}\n')
        (fake / tool).chmod(0o755)
    secret_file = tmp_path / 'secret-list.txt'
    secret_file.write_text(fault_server.url(video_path(9, SIZE + 9)) + '\n')
    celery_workers.start('w1', concurrency=2, env={'YTDLP_ASYNC_WORKDIR': str(out)})
    celery_workers.use_key_here(monkeypatch)
    app = submit.app_for(celery_workers.redis.url)
    url = fault_server.url(video_path(1, SIZE + 1))
    cases = {
        '--exec': job_for(url, ['--exec', f'touch {mark} #', '-o', '%(id)s.%(ext)s']),
        '--exec-before-download': job_for(url, ['--exec-before', f'touch {mark} #']),
        '--ffmpeg-location': job_for(url, ['--ffmpeg-location', str(fake), '--remux-video', 'mkv']),
        '--netrc-cmd': job_for(url, ['--netrc-cmd', f'touch {mark}', '--netrc']),
        '--batch-file': job_for(url, ['--batch-file', str(secret_file)]),
        '--load-info-json': job_for(url, ['--load-info-json', str(secret_file)]),
        'Exec postprocessor': job_for(url, ydl_opts={'outtmpl': str(out / 'api.%(ext)s'), 'postprocessors': [
            {'key': 'Exec', 'exec_cmd': f'touch {mark}', 'when': 'after_move'}]}),
        'ffmpeg_location param': job_for(url, ydl_opts={'ffmpeg_location': str(fake)}),
    }
    handles = dict(zip(cases, submit.send(app, cases.values())))
    errors = {name: failure(h) for name, h in handles.items()}
    allowed = "is not allowed on this worker (the worker's YTDLP_ASYNC_ALLOW_OPTIONS can allow it)"
    assert errors == {
        '--exec': f'refused: --exec {allowed}',
        '--exec-before-download': f'refused: --exec-before-download {allowed}',
        '--ffmpeg-location': f'refused: --ffmpeg-location {allowed}',
        '--netrc-cmd': f'refused: --netrc-cmd {allowed}',
        '--batch-file': f'refused: --batch-file {allowed}',
        '--load-info-json': f'refused: --load-info-json {allowed}',
        'Exec postprocessor': f'refused: --exec {allowed}',
        'ffmpeg_location param': f'refused: --ffmpeg-location {allowed}',
    }, celery_workers.logs()

    # paths: -o and --cookies outside the work folder, and a field that would lead out
    paths = {
        'absolute -o': job_for(url, ['-o', str(outside / 'x' / '%(id)s.%(ext)s')]),
        'dot-dot -o': job_for(url, ['-o', '../outside/%(id)s.%(ext)s']),
        '-P': job_for(url, ['-P', str(outside)]),
        '--cookies': job_for(url, ['--cookies', str(outside / 'cookies.txt')]),
        'api outtmpl': job_for(url, ydl_opts={'outtmpl': str(outside / 'api.%(ext)s')}),
    }
    handles = dict(zip(paths, submit.send(app, paths.values())))
    where = (f'outside this worker\'s folders ({os.path.realpath(out)}; '
             f'YTDLP_ASYNC_WORKDIR and YTDLP_ASYNC_ALLOW_PATHS on the worker)')
    errors = {name: failure(h) for name, h in handles.items()}
    assert errors == {
        'absolute -o': f'refused: -o/--output writes to {outside}/x/x.x, {where}',
        'dot-dot -o': f'refused: -o/--output writes to {outside}/x.x, {where}',
        '-P': f'refused: -P/--paths home is {outside}, {where}',
        '--cookies': f'refused: --cookies is {outside}/cookies.txt, {where}',
        'api outtmpl': f'refused: -o/--output writes to {outside}/api.x, {where}',
    }, celery_workers.logs()

    assert not mark.exists() and not outside.exists()
    assert data_gets(fault_server) == []  # nothing was even extracted
    assert list(out.iterdir()) == []

    # the same worker still downloads what it allows; and the submitter's ERROR names the option
    [ok] = submit.send(app, [job_for(url, ['-o', '%(id)s.%(ext)s'])])
    assert ok.wait(60)['filenames'] == [str(out / f'{SIZE + 1}.mp4')]
    assert sha256_file(out / f'{SIZE + 1}.mp4') == sha256_of(SIZE + 1, 1)
    proc = run_ytdlp(['--async-queue', celery_workers.redis.url, '--exec', f'touch {mark} #', url], tmp_path)
    assert proc.returncode == 1, output(proc)
    assert f'ERROR: refused: --exec {allowed} (URL 1)' in proc.stderr, output(proc)
    assert not mark.exists()


def test_a_worker_allows_what_its_own_environment_allows(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    require_celery(redis=False)
    from yt_dlp_async.celery import policy
    with pytest.raises(policy.Refusal, match='^refused: --exec is not allowed'):
        policy.check_argv(['--exec', 'echo'])
    policy.check_argv(['--no-exec', '--no-cache-dir', '-f', 'best', '--password', 'x'])  # turning off is fine
    monkeypatch.setenv('YTDLP_ASYNC_ALLOW_OPTIONS', '--exec, --ffmpeg-location')
    policy.check_argv(['--exec', 'echo', '--ffmpeg-location', '/opt/ffmpeg'])
    policy.check_params({'postprocessors': [{'key': 'Exec', 'exec_cmd': 'echo'}]})
    with pytest.raises(policy.Refusal, match='^refused: --netrc-cmd is not allowed'):
        policy.check_argv(['--netrc-cmd', 'echo'])
    monkeypatch.setenv('YTDLP_ASYNC_ALLOW_PATHS', str(tmp_path / 'more'))
    policy.check_paths({'outtmpl': {'default': str(tmp_path / 'more' / '%(id)s.%(ext)s')}}, str(tmp_path / 'w'))
    # or from the worker's config file
    monkeypatch.delenv('YTDLP_ASYNC_ALLOW_OPTIONS')
    monkeypatch.delenv('YTDLP_ASYNC_ALLOW_PATHS')
    monkeypatch.setenv('XDG_CONFIG_HOME', str(tmp_path / 'config'))
    outside = {'outtmpl': {'default': str(tmp_path / 'media' / '%(id)s.%(ext)s')}}
    with pytest.raises(policy.Refusal, match='^refused: -o/--output writes to '):
        policy.check_paths(outside, str(tmp_path / 'w'))
    (tmp_path / 'config' / 'yt-dlp-async').mkdir(parents=True)
    (tmp_path / 'config' / 'yt-dlp-async' / 'worker.conf').write_text(
        f'# this worker uploads\nallow-options = --exec\nallow-paths = {tmp_path / "media"}  # the disk\n')
    policy.check_argv(['--exec', 'rclone move {} remote:'])
    policy.check_paths(outside, str(tmp_path / 'w'))
    with pytest.raises(policy.Refusal, match='^refused: --ffmpeg-location is not allowed'):
        policy.check_argv(['--ffmpeg-location', '/opt/ffmpeg'])


# ------------------------------------------------------------------ signatures
def test_unsigned_and_foreign_tasks_are_refused_and_the_key_file_is_private(
        tmp_path: Path, fault_server: Any, celery_workers: Workers, monkeypatch: pytest.MonkeyPatch) -> None:
    from yt_dlp_async.celery import TASK_NAME, sealing, submit_module as submit
    celery_workers.start('w1', concurrency=2)
    app = submit.app_for(celery_workers.redis.url)
    out = tmp_path / 'u.%(ext)s'
    url = fault_server.url(video_path(1, SIZE + 1))
    job = job_for(url, ['-o', str(out)])

    unsigned = submit.EntryHandle(app.send_task(TASK_NAME, args=[job]), 'URL 1', job)
    key_file = tmp_path / '.home' / 'config' / 'yt-dlp-async' / 'secret'
    assert failure(unsigned) == (
        'refused an unsigned task: this worker runs only tasks signed with its key (every submitter and '
        f'worker needs the same key: YTDLP_ASYNC_SECRET, or the key file {key_file} copied from the '
        "submitter's machine)")
    # the worker made its key on first use: 32 random bytes in hex, readable by its user only
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert len(key_file.read_text().strip()) == 64

    monkeypatch.setenv('YTDLP_ASYNC_SECRET', 'not the cluster key')
    [foreign] = submit.send(app, [job])
    theirs = sealing.keys().id
    celery_workers.use_key_here(monkeypatch)
    ours = sealing.keys().id
    assert failure(foreign).startswith(
        f"refused a task whose signature does not match this worker's key (signed with key {theirs}, "
        f'this worker has key {ours} from {key_file}; ')

    envelope = sealing.seal(job)  # a writer who changes a signed task's body
    body = json.loads(envelope['body'])
    body['label'] = 'URL 2'
    envelope['body'] = json.dumps(body)
    tampered = submit.EntryHandle(app.send_task(TASK_NAME, args=[envelope]), 'URL 2', job)
    assert failure(tampered).startswith("refused a task whose signature does not match this worker's key")
    assert not list(tmp_path.glob('u.*')) and data_gets(fault_server) == []

    [signed] = submit.send(app, [job])  # the key file copied: it runs
    assert signed.wait(60)['filenames'] == [str(tmp_path / 'u.mp4')]


# ------------------------------------------------------------------ secrets
SECRETS = ('PW-s3cret-one', 'VP-s3cret-two', 'HDR-s3cret-three', 'USR-s3cret-four')


def test_no_password_or_header_value_in_redis_its_aof_inspect_or_any_log(
        tmp_path: Path, fault_server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    require_celery()
    redis = RedisServer(tmp_path / 'redis', persist=True).start()
    workers = Workers(redis, tmp_path)
    try:
        _secrets_run(tmp_path, fault_server, redis, workers, monkeypatch)
    finally:
        workers.stop_all()
        redis.stop()


def _secrets_run(tmp_path: Path, fault_server: Any, redis: RedisServer, workers: Workers,
                 monkeypatch: pytest.MonkeyPatch) -> None:
    from yt_dlp_async.celery import submit_module as submit
    workers.start('w1', concurrency=2)
    size = 900_000
    url = fault_server.url(video_path(1, size, rate=150_000))
    cmd = [PYTHON, '-m', 'yt_dlp', '--no-cache-dir', '--async-queue', redis.url, '--async-connections', '1',
           '--username', SECRETS[3], '--password', SECRETS[0], '--video-password', SECRETS[1],
           '--add-header', f'Authorization:Bearer {SECRETS[2]}', '-o', str(tmp_path / 's.%(ext)s'), url]
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=hermetic_env(tmp_path / '.home'))
    inspect = ''
    try:
        client = redis.client()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and 'yt_dlp_async.download' not in inspect:
            metas = [json.loads(client.get(k) or '{}') for k in client.keys('celery-task-meta-*')]
            if any(m.get('status') == 'PROGRESS' for m in metas):
                inspect = subprocess.run([CELERY, '-A', 'yt_dlp_async.celery', 'inspect', 'active', '--json'],
                                         capture_output=True, text=True, timeout=60,
                                         env=workers.env()).stdout
            time.sleep(0.2)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, stdout + stderr + workers.logs()
    assert sha256_file(tmp_path / 's.mp4') == sha256_of(size, 1)
    gets = data_gets(fault_server)  # the header reached the server, from the worker
    assert gets and all(e.headers.get('Authorization') == f'Bearer {SECRETS[2]}' for e in gets), gets
    assert 'yt_dlp_async.download' in inspect and '"args"' in inspect, inspect

    # a task whose options do not parse keeps no command line in its error
    workers.use_key_here(monkeypatch)
    [bad] = submit.send(submit.app_for(redis.url), [job_for(url, ['--password', SECRETS[0], '--no-such-option'])])
    assert failure(bad) == 'refused: the worker cannot parse the options: no such option: --no-such-option'
    [quoted] = submit.send(submit.app_for(redis.url), [job_for(url, ['--retries', SECRETS[0]])])
    assert failure(quoted) == 'refused: the worker cannot parse the options'  # its reason quotes the value

    # -v on the worker would print yt-dlp's params (password, headers) to its log: it is turned off
    quiet = fault_server.url(video_path(2, 1000 + 2))
    [verbose] = submit.send(submit.app_for(redis.url), [job_for(quiet, [
        '-v', '--username', SECRETS[3], '--password', SECRETS[0], '--add-header', f'X-Secret:{SECRETS[2]}', '-o', str(tmp_path / 'v.%(ext)s')])])
    assert verbose.wait(60)['filenames'] == [str(tmp_path / 'v.mp4')]
    assert '-v/--verbose is ignored on this worker' in workers.logs()

    client = redis.client()
    client.save()
    dumped = b''.join(_dump(redis, key) for key in client.keys('*'))
    files = b''.join(p.read_bytes() for p in (tmp_path / 'redis').rglob('*') if p.is_file())
    logs = workers.logs() + stdout + stderr + inspect
    assert list((tmp_path / 'redis').rglob('*.aof')), list((tmp_path / 'redis').rglob('*'))
    for secret in SECRETS:
        assert secret.encode() not in files, secret
        assert secret.encode() not in dumped, secret
        assert secret not in logs, (secret, logs)
    assert len(files) > 1000  # the AOF and the RDB hold the run (so the greps above looked at something)


def _dump(redis: RedisServer, key: str) -> bytes:
    import redis as redis_module
    raw = redis_module.Redis.from_url(redis.url)
    return bytes(raw.dump(key) or b'')


def test_the_redis_password_is_masked_in_the_submitters_messages(tmp_path: Path, fault_server: Any) -> None:
    require_celery(redis=False)
    from yt_dlp_async.celery import submit_module as submit
    port = free_port()
    queue = f'redis://:hunter2-pw@127.0.0.1:{port}/0'
    proc = run_ytdlp(['--async-queue', queue, fault_server.url(video_path(1, 1000))], tmp_path, timeout=30)
    assert proc.returncode == 1, output(proc)
    assert f'ERROR: cannot reach the queue at redis://:***@127.0.0.1:{port}/0: ' in proc.stderr, output(proc)
    assert 'hunter2-pw' not in proc.stdout + proc.stderr
    hint = submit.idle_hint(queue, 30)
    assert 'hunter2-pw' not in hint and f'YTDLP_ASYNC_BROKER=redis://:***@127.0.0.1:{port}/0 celery' in hint


# ------------------------------------------------------------------ Redis ACLs
SUBMITTER_ACL = ('on >sub-pw resetkeys ~yt-dlp-async* ~celery-task-meta-* ~_kombu.* resetchannels '
                 '&celery-task-meta-* -@all +@connection +get +set +exists +sadd +smembers +sismember +lpush +llen '
                 '+multi +exec +publish +subscribe +unsubscribe')
WORKER_ACL = 'on >work-pw ~* &* +@all -@admin -@dangerous'


def test_the_documented_acls_let_a_submitter_submit_and_nothing_more(
        tmp_path: Path, fault_server: Any, celery_workers: Workers) -> None:
    """docs/scale-out.md's ACL users: the run works, the submitter cannot flush, script or read leases."""
    import redis as redis_module
    admin = celery_workers.redis.client()
    admin.execute_command('ACL', 'SETUSER', 'submitter', *SUBMITTER_ACL.split())
    admin.execute_command('ACL', 'SETUSER', 'worker', *WORKER_ACL.split())
    port = celery_workers.redis.port
    worker_url, submitter_url = (f'redis://worker:work-pw@127.0.0.1:{port}/0',
                                 f'redis://submitter:sub-pw@127.0.0.1:{port}/0')
    celery_workers.start('w1', concurrency=2, env={'YTDLP_ASYNC_BROKER': worker_url})
    size = 250_000
    proc = run_ytdlp(['--async-queue', submitter_url, '--download-archive', 'a.txt', '-o', 'acl.%(ext)s',
                      fault_server.url(video_path(1, size))], tmp_path)
    assert proc.returncode == 0, output(proc) + celery_workers.logs()
    assert sha256_file(tmp_path / 'acl.mp4') == sha256_of(size, 1)
    assert 'sub-pw' not in proc.stdout + proc.stderr
    submitter = redis_module.Redis.from_url(submitter_url)
    for command in (('FLUSHALL',), ('CONFIG', 'GET', '*'), ('EVAL', 'return 1', '0'), ('KEYS', '*'),
                    ('ZRANGE', 'yt-dlp-async:lease:x', '0', '-1'), ('DEL', 'yt-dlp-async:archive:x')):
        with pytest.raises(redis_module.exceptions.NoPermissionError):
            submitter.execute_command(*command)
