"""yt-dlp --async-queue and yt_dlp_async.celery.submit with a real redis-server and real Celery workers.

Every run: the fault server's playlist page (tests/ytdlp_support.page_url), workers
started by tests/celery_support.py (the tests that need them are skipped with the reason
when redis-server or celery is missing).
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from celery_support import Workers, celery_workers, free_port, redis_server, require_celery  # noqa: F401
from faultserver import sha256_of
from ytdlp_support import (
    PYTHON, hermetic_env, output, page_url, require_engine, require_hook, run_ytdlp, sha256_file, video_path)

BASE = 300_000
TEMPLATE = '%(playlist_index)s-%(title)s.%(ext)s'


@pytest.fixture(autouse=True)
def _installed() -> None:
    require_hook()
    require_engine()


def size(i: int) -> int:
    return BASE + i


def media(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith('.mp4'))


def data_gets(server: Any) -> list[Any]:
    server.wait_idle(5.0)
    return [e for e in server.log if e.method == 'GET' and e.path.startswith('/data/')]


def task_results(redis_url: str) -> list[dict[str, Any]]:
    import redis
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    metas = [json.loads(client.get(k) or '{}') for k in client.keys('celery-task-meta-*')]
    return [m['result'] for m in metas if m.get('status') == 'SUCCESS']


def archive_lines(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if line.strip()]


# ------------------------------------------------------------------ the whole path
def test_playlist_over_two_workers_exact_once_and_rerun_submits_nothing(
        tmp_path: Path, fault_server, celery_workers: Workers) -> None:
    out = tmp_path / 'out'
    out.mkdir()
    celery_workers.start('w1', concurrency=3, env={'YTDLP_ASYNC_WORKDIR': str(out)})
    celery_workers.start('w2', concurrency=3, env={'YTDLP_ASYNC_WORKDIR': str(out)})
    url = page_url(fault_server, [video_path(i, size(i), rate=400_000) for i in range(1, 7)])
    submitter = tmp_path / 'submitter'
    submitter.mkdir()
    template = '%(playlist_index)s-%(playlist_autonumber)s-%(n_entries)s-%(playlist_count)s-%(playlist)s-%(title)s.%(ext)s'
    args = ['--async-queue', celery_workers.redis.url, '--download-archive', 'a.txt', '-o', template, url]

    key = {'XDG_CONFIG_HOME': str(tmp_path / '.home' / 'config')}  # the workers' key file, as if copied
    proc = run_ytdlp(args, submitter, timeout=120, env=key)
    assert proc.returncode == 0, output(proc) + celery_workers.logs()
    # relative -o: the workers' folder; names as yt-dlp alone gives them (below)
    assert media(out) == [f'{i}-{i}-6-6-PL-PL ({i}).mp4' for i in range(1, 7)], output(proc)
    for i in range(1, 7):
        assert sha256_file(out / f'{i}-{i}-6-6-PL-PL ({i}).mp4') == sha256_of(size(i), i), i
    results = task_results(celery_workers.redis.url)
    assert len(results) == 6
    assert {r['hostname'].split('@')[0] for r in results} == {'w1', 'w2'}, results
    assert sorted(r['bytes'] for r in results) == [size(i) for i in range(1, 7)]
    lines = archive_lines(submitter / 'a.txt')
    assert len(lines) == 6 and len(set(lines)) == 6, lines
    assert sorted(celery_workers.redis.client().smembers(
        f'yt-dlp-async:archive:{submitter / "a.txt"}')) == sorted(lines)
    for i in range(1, 7):  # one progress line per state change, the last one names the file
        assert f'[queue] item {i}: finished {size(i) / 1024:.2f}KiB on w' in proc.stdout, output(proc)
        states = [line.split(':')[1].split()[0] for line in proc.stdout.splitlines()
                  if line.startswith(f'[queue] item {i}:')]
        assert len(states) == len(set(states)) and states[-1] == 'finished', (i, states)
    assert len([e for e in data_gets(fault_server) if e.bytes_sent]) >= 6

    local = tmp_path / 'local'
    alone = run_ytdlp(['-o', template, url], local.mkdir() or local, timeout=120)
    assert alone.returncode == 0, output(alone)
    assert media(local) == media(out)

    fault_server.reset()
    again = run_ytdlp(args, submitter, timeout=120, env=key)
    assert again.returncode == 0, output(again)
    assert '[queue]' not in again.stdout, output(again)   # nothing submitted
    assert 'has already been recorded in the archive' in again.stdout, output(again)
    assert data_gets(fault_server) == []                   # no media request
    assert archive_lines(submitter / 'a.txt') == lines
    assert len(task_results(celery_workers.redis.url)) == 6

    (submitter / 'a.txt').unlink()  # the queue's set still knows them: nothing new, the file comes back
    third = run_ytdlp(args, submitter, timeout=120, env=key)
    assert third.returncode == 0 and '[queue]' not in third.stdout, output(third)
    assert data_gets(fault_server) == []
    assert sorted(archive_lines(submitter / 'a.txt')) == sorted(lines)


def test_killed_worker_entry_is_redelivered_resumed_and_exact(
        tmp_path: Path, fault_server, celery_workers: Workers) -> None:
    big = 1_500_000
    out = tmp_path / 'out'
    out.mkdir()
    w1 = celery_workers.start('w1', concurrency=3)
    celery_workers.start('w2', concurrency=3)
    # 260 KB/s per entry: the dead worker's control file (saved every second) lags little behind
    url = page_url(fault_server, [video_path(i, big + i, rate=130_000) for i in range(1, 7)])
    cmd = [PYTHON, '-m', 'yt_dlp', '--no-cache-dir', '--async-queue', celery_workers.redis.url,
           '--async-connections', '2', '--download-archive', 'a.txt', '-o', str(out / TEMPLATE), url]
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=hermetic_env(tmp_path / '.home'))
    try:
        killed = _kill_when_half_done(celery_workers.redis.url, w1, 'w1', big)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    text = f'exit {proc.returncode}\n{stdout[-3000:]}\n{stderr[-3000:]}\n{celery_workers.logs()}'
    assert proc.returncode == 0, text
    assert media(out) == [f'{i}-PL ({i}).mp4' for i in range(1, 7)], text
    for i in range(1, 7):
        assert sha256_file(out / f'{i}-PL ({i}).mp4') == sha256_of(big + i, i), text
    lines = archive_lines(tmp_path / 'a.txt')
    assert len(lines) == 6 and len(set(lines)) == 6, lines
    results = task_results(celery_workers.redis.url)
    assert len(results) == 6 and 'w2' in {r['hostname'].split('@')[0] for r in results}, results
    # an entry the dead worker had half done resumed from its .part-async: starting again would
    # have cost the whole file plus what was done; resuming costs about the file
    half_done = {path: done for path, done in killed.items() if done >= 0.5 * big}
    assert half_done, killed
    for path, done in half_done.items():
        served = sum(e.bytes_sent for e in data_gets(fault_server) if e.path == path)
        assert served < big + done / 2, (path, done, served, text)


def _kill_when_half_done(redis_url: str, worker: Any, name: str, big: int) -> dict[str, int]:
    """SIGKILL ``worker`` once one of its downloads passed half; returns {its resources' paths: bytes done}."""
    import redis
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        metas = [json.loads(client.get(k) or '{}') for k in client.keys('celery-task-meta-*')]
        mine = [m['result'] for m in metas if m.get('status') == 'PROGRESS'
                and str(m['result'].get('hostname', '')).startswith(f'{name}@')
                and m['result'].get('status') == 'downloading']
        if any((m.get('downloaded_bytes') or 0) >= 0.5 * big for m in mine):
            worker.kill()
            return {f'/data/{big + int(os.path.basename(m["filename"]).split("-")[0])}.mp4':
                    int(m.get('downloaded_bytes') or 0) for m in mine}
        time.sleep(0.1)
    raise AssertionError(f'worker {name} never got half way into a download')


def test_progress_lines_update_in_place_on_a_terminal(tmp_path: Path, fault_server, celery_workers: Workers) -> None:
    import pty
    celery_workers.start('w1', concurrency=2)
    urls = [fault_server.url(video_path(i, 600_000 + i, rate=300_000)) for i in (1, 2)]
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [PYTHON, '-m', 'yt_dlp', '--no-cache-dir', '--async-queue', celery_workers.redis.url, '--async-connections', '1',
         '-o', str(tmp_path / 'v%(autonumber)s.%(ext)s'), *urls],
        cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=slave, stderr=subprocess.PIPE,
        env=hermetic_env(tmp_path / '.home'))
    os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    proc.wait(60)
    os.close(master)
    screen = b''.join(chunks).decode(errors='replace')
    assert proc.returncode == 0, screen + proc.stderr.read().decode(errors='replace')
    # two lines, redrawn in place: cursor up 2, then each line cleared and written again
    assert screen.count('\x1b[2A') >= 2, repr(screen[-2000:])
    assert '\r\x1b[K[queue] URL 1: downloading' in screen, repr(screen[-2000:])
    last = screen.rsplit('\x1b[2A', 1)[1]
    assert '[queue] URL 1: finished 585.94KiB on w1@' in last and '[queue] URL 2: finished 585.94KiB on w1@' in last
    for i in (1, 2):
        assert sha256_file(tmp_path / f'v0000{i}.mp4') == sha256_of(600_000 + i, i)


def test_entries_with_one_name_are_written_one_after_the_other(
        tmp_path: Path, fault_server, celery_workers: Workers) -> None:
    """yt-dlp alone writes the first and finds the file there for the others; never a mixed file."""
    celery_workers.start('w1', concurrency=2)
    celery_workers.start('w2', concurrency=2)
    n, big = 4, 800_000
    url = page_url(fault_server, [video_path(i, big, rate=400_000) for i in range(1, n + 1)])
    proc = run_ytdlp(['--async-queue', celery_workers.redis.url, '--async-connections', '2',
                      '-o', str(tmp_path / '%(playlist_title)s.%(ext)s'), url], tmp_path, timeout=120)
    assert proc.returncode == 0, output(proc) + celery_workers.logs()
    assert media(tmp_path) == ['PL.mp4']
    assert sha256_file(tmp_path / 'PL.mp4') in {sha256_of(big, i) for i in range(1, n + 1)}
    assert [p.name for p in tmp_path.iterdir() if '.part' in p.name] == []
    downloaded = {e.query.get('seed') for e in data_gets(fault_server) if e.bytes_sent}
    assert len(downloaded) == 1, downloaded  # the others found the file complete


def test_config_file_headers_cookies_and_format_mean_what_they_mean_locally(
        tmp_path: Path, fault_server, celery_workers: Workers) -> None:
    celery_workers.start('w1', concurrency=2, cwd=tmp_path / 'elsewhere', env={'YTDLP_ASYNC_ALLOW_PATHS': str(tmp_path)})
    cookies = tmp_path / 'cookies.txt'
    cookies.write_text('# Netscape HTTP Cookie File\n127.0.0.1\tFALSE\t/\tFALSE\t4102444800\tsid\t42\n')
    config = tmp_path / '.home' / 'config' / 'yt-dlp' / 'config'  # the submitter's user config (hermetic_env)
    config.parent.mkdir(parents=True)
    config.write_text(f'--add-header X-Queue:yes\n-o "{tmp_path}/out/cfg-%(id)s.%(ext)s"\n')
    guarded = fault_server.url(video_path(1, size(1), require_header='X-Queue:yes', require_cookie='sid=42'))
    proc = run_ytdlp(['--async-queue', celery_workers.redis.url, '--cookies', str(cookies), '-f', 'best', guarded],
                     tmp_path, timeout=120)
    assert proc.returncode == 0, output(proc) + celery_workers.logs()
    assert media(tmp_path / 'out') == [f'cfg-{size(1)}.mp4']  # the config file's -o, on the worker
    assert sha256_file(tmp_path / 'out' / f'cfg-{size(1)}.mp4') == sha256_of(size(1), 1)
    gets = [e for e in data_gets(fault_server) if e.bytes_sent]
    assert gets and all(e.status in (200, 206) for e in gets)


# ------------------------------------------------------------------ errors
def test_unreachable_queue_is_a_clear_error(tmp_path: Path, fault_server) -> None:
    require_celery(redis=False)
    queue = f'redis://127.0.0.1:{free_port()}/0'
    proc = run_ytdlp(['--async-queue', queue, fault_server.url(video_path(1, 1000))], tmp_path, timeout=30)
    assert proc.returncode == 1, output(proc)
    assert f'ERROR: cannot reach the queue at {queue}: ' in proc.stderr, output(proc)
    assert 'Connection refused' in proc.stderr, output(proc)
    assert data_gets(fault_server) == []
    assert list(tmp_path.glob('*.mp4')) == []


def test_a_queue_url_that_is_not_redis_is_refused_while_parsing(tmp_path: Path) -> None:
    proc = run_ytdlp(['--async-queue', 'amqp://127.0.0.1/', 'http://127.0.0.1:9/x.mp4'], tmp_path, timeout=60)
    assert proc.returncode == 2, output(proc)
    assert ("error: option --async-queue: invalid value 'amqp://127.0.0.1/': "
            'expected a Redis URL such as redis://HOST:6379/0') in proc.stderr, output(proc)


def test_simulate_runs_here_without_the_queue(tmp_path: Path, fault_server) -> None:
    queue = f'redis://127.0.0.1:{free_port()}/0'  # nobody listens: it must not be needed
    proc = run_ytdlp(['--async-queue', queue, '--print', 'id', fault_server.url(video_path(1, 1000))],
                     tmp_path, timeout=60)
    assert proc.returncode == 0, output(proc)
    assert proc.stdout.splitlines() == ['1000'], output(proc)


def test_failed_entry_exits_1_with_its_error_and_the_others_are_exact(
        tmp_path: Path, fault_server, celery_workers: Workers) -> None:
    celery_workers.start('w1', concurrency=3)
    videos = [video_path(1, size(1)), '/data/5000.mp4?status=404', video_path(3, size(3))]
    proc = run_ytdlp(['--async-queue', celery_workers.redis.url, '-o', str(tmp_path / TEMPLATE),
                      page_url(fault_server, videos)], tmp_path, timeout=120)
    assert proc.returncode == 1, output(proc)
    assert 'ERROR: unable to download video data: HTTP Error 404: Not Found (item 2)' in proc.stderr, output(proc)
    assert media(tmp_path) == ['1-PL (1).mp4', '3-PL (3).mp4']
    assert sha256_file(tmp_path / '1-PL (1).mp4') == sha256_of(size(1), 1)
    assert sha256_file(tmp_path / '3-PL (3).mp4') == sha256_of(size(3), 3)


def test_python_submit_handles(tmp_path: Path, fault_server, celery_workers: Workers,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    celery_workers.use_key_here(monkeypatch)
    from yt_dlp_async import celery as queue
    from yt_dlp_async.celery.errors import EntryError
    celery_workers.start('w1', concurrency=2)
    broker = celery_workers.redis.url
    good = fault_server.url(video_path(1, size(1)))
    [handle] = queue.submit([good], {'outtmpl': str(tmp_path / 'api.%(ext)s')}, broker_url=broker)
    result = handle.wait(60)
    assert result['filenames'] == [str(tmp_path / 'api.mp4')] and result['bytes'] == size(1), result
    assert result['hostname'].startswith('w1@')
    assert handle.status()['state'] == 'SUCCESS'
    assert sha256_file(tmp_path / 'api.mp4') == sha256_of(size(1), 1)

    # extracted here and on the worker (the generic extractor's probes get through), gone at the download
    gone = fault_server.url('/data/10.mp4?skip=2&fail=9&fail_status=404')
    [missing] = queue.submit([gone], {'outtmpl': str(tmp_path / 'm.%(ext)s')}, broker_url=broker)
    with pytest.raises(EntryError, match=r'^unable to download video data: HTTP Error 404: Not Found$'):
        missing.wait(60)
    assert missing.status() == {'state': 'FAILURE', 'error': 'unable to download video data: HTTP Error 404: Not Found'}
    with pytest.raises(EntryError, match=r'^\[generic\] 11: Unable to download webpage: HTTP Error 404'):
        queue.submit([fault_server.url('/data/11.mp4?status=404')], {}, broker_url=broker)  # fails here

    # a job of other versions is left to a worker of those versions: test_celery_faults.py


def test_no_worker_is_said_once_and_a_late_worker_still_runs_the_entry(
        tmp_path: Path, fault_server, celery_workers: Workers, monkeypatch: pytest.MonkeyPatch) -> None:
    celery_workers.use_key_here(monkeypatch)
    from yt_dlp_async import celery as queue
    from yt_dlp_async.celery import cli
    broker = celery_workers.redis.url
    [handle] = queue.submit([fault_server.url(video_path(3, size(3)))], {'outtmpl': str(tmp_path / 'late.%(ext)s')},
                            broker_url=broker)
    out, warned, ended = io.StringIO(), [], []
    follower = threading.Thread(target=lambda: ended.append(queue.submit_module.follow(
        [handle], out, queue_url=broker, warn=warned.append, hint_after=0.5)), daemon=True)
    follower.start()
    deadline = time.monotonic() + 20
    while not warned and time.monotonic() < deadline:
        time.sleep(0.05)
    ours = cli.versions()
    assert warned == [
        f'[queue] no worker has taken an entry in 0.5 s; start one of yt-dlp {ours["yt-dlp"]} / '
        f'yt-dlp-async {ours["yt-dlp-async"]} that reaches the queue: '
        f'YTDLP_ASYNC_BROKER={broker} celery -A yt_dlp_async.celery worker '
        f'(still waiting; Ctrl-C leaves the entries queued for a worker)'], out.getvalue()
    assert follower.is_alive() and handle.status() == {'state': 'PENDING'}
    celery_workers.start('late', concurrency=1)
    follower.join(90)
    assert not follower.is_alive(), celery_workers.logs()
    assert ended == [[]] and len(warned) == 1, (warned, out.getvalue())
    assert out.getvalue().splitlines()[0] == f'[queue] {handle.label}: queued'
    assert sha256_file(tmp_path / 'late.mp4') == sha256_of(size(3), 3)


@pytest.mark.parametrize('reverse', [False, True])
def test_flat_url_entries_get_their_playlist_fields(tmp_path: Path, fault_server, reverse: bool) -> None:
    """yt-dlp gives a flat (``url``) entry its playlist fields on a copy: the jobs must carry them."""
    from yt_dlp import YoutubeDL
    from yt_dlp.extractor.common import InfoExtractor
    from yt_dlp_async.celery import cli
    urls = [fault_server.url(video_path(i, size(i))) for i in range(1, 5)]

    class FlatIE(InfoExtractor):
        _VALID_URL = r'flat:(?P<id>.+)'
        IE_NAME = 'flat'

        def _real_extract(self, url: str) -> dict[str, Any]:
            return self.playlist_result([self.url_result(u, None, str(i), f'v{i}') for i, u in enumerate(urls, 1)],
                                        'plid', 'PL title')

    ydl = YoutubeDL({'quiet': True, 'playlist_items': '2,3', 'playlistreverse': reverse}, auto_init=False)
    ydl.add_info_extractor(FlatIE())
    ydl.add_default_info_extractors()
    jobs = cli.entry_jobs(ydl, 'flat:x', 1, {})
    assert [job['entry']['url'] for job in jobs] == (urls[2:0:-1] if reverse else urls[1:3])
    fields = [{k: job['extra_info'].get(k) for k in ('playlist_index', 'playlist_autonumber', 'playlist',
                                                    'playlist_id', 'n_entries', '__last_playlist_index')}
              for job in jobs]
    expected = [{'playlist_index': index, 'playlist_autonumber': n, 'playlist': 'PL title', 'playlist_id': 'plid',
                 'n_entries': 2, '__last_playlist_index': 3}
                for n, index in enumerate((3, 2) if reverse else (2, 3), 1)]
    assert fields == expected
    assert [job['label'] for job in jobs] == (['item 3', 'item 2'] if reverse else ['item 2', 'item 3'])


def test_plain_runs_do_not_import_celery(tmp_path: Path) -> None:
    code = ('import sys, yt_dlp; yt_dlp.parse_options(["-o", "x", "http://127.0.0.1/"]); '
            'ydl = yt_dlp.YoutubeDL({}); print("celery" in sys.modules, "yt_dlp_async.celery" in sys.modules)')
    proc = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=60,
                          env=hermetic_env(tmp_path / '.home'))
    assert proc.stdout.split() == ['False', 'False'], proc.stdout + proc.stderr
