"""The cluster-wide host window (yt_dlp_async.celery.lease) against a real redis-server.

Several processes take leases of one host's window from one redis-server; the
tests sample the Redis state while they run: the tokens held never exceed the
window, a SIGKILLed holder's share comes back after the TTL, and a holder that
keeps renewing keeps its share for many TTLs.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from celery_support import RedisServer, Workers, celery_workers, redis_server  # noqa: F401
from faultserver import sha256_of
from ytdlp_support import output, page_url, require_engine, require_hook, run_ytdlp, sha256_file, video_path

if os.environ.get('YTDLP_ASYNC_REQUIRE_INSTALLED') == '1':  # make test installs both: missing is an error
    import redis
    from yt_dlp_async.celery import lease
else:
    redis = pytest.importorskip('redis')
    lease = pytest.importorskip('yt_dlp_async.celery.lease')

PYTHON = sys.executable
HOST_URL = 'http://media.example:8080/watch?v=1'
KEY = lease.host_key(HOST_URL)


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    return redis_server.url


def _holder(url: str, code: str, *args: Any, ttl: float = 5.0) -> subprocess.Popen[str]:
    """A Python process that runs ``code`` with ``lease``, ``client``, ``argv`` bound."""
    prelude = ('import json, sys, time, redis\n'
               'from yt_dlp_async.celery import lease\n'
               'client = redis.Redis.from_url(sys.argv[1])\n'
               'argv = sys.argv[2:]\n')
    env = {**os.environ, lease.TTL_ENV: str(ttl)}
    return subprocess.Popen([PYTHON, '-c', prelude + code, url, *map(str, args)],
                            stdout=subprocess.PIPE, text=True, env=env)


def _members(client: Any) -> list[str]:
    return [m.decode() for m in client.zrange(KEY, 0, -1)]


CHURN = '''
import random
window, rounds = int(argv[0]), int(argv[1])
grants = []
for i in range(rounds):
    opts = {'async_host_connections': window, 'async_connections': random.randint(1, window)}
    with lease.hold(client, argv[2], opts, grace=0) as held:
        grants.append(held.count)
        time.sleep(random.uniform(0.005, 0.03))
print(json.dumps(grants))
'''


def test_many_processes_never_hold_more_than_the_window(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    window, rounds = 4, 25
    procs = [_holder(redis_url, CHURN, window, rounds, HOST_URL) for _ in range(6)]
    samples = []
    while any(p.poll() is None for p in procs):
        samples.append(client.zcard(KEY))
        time.sleep(0.002)
    grants = [json.loads(p.communicate()[0]) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert [len(g) for g in grants] == [rounds] * 6
    assert all(1 <= n <= window for g in grants for n in g)
    assert max(samples) <= window, f'Redis held {max(samples)} leases of a window of {window}'
    assert max(samples) == window          # the processes did contend for the window
    assert client.zcard(KEY) == 0          # every lease released on exit


HOLD_FOREVER = '''
with lease.hold(client, argv[0], {'async_host_connections': int(argv[1])}) as held:
    print('HELD', held.count, flush=True)
    time.sleep(120)
'''


def test_sigkilled_holder_leases_expire_and_go_to_others(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    ttl = 2.0
    proc = _holder(redis_url, HOLD_FOREVER, HOST_URL, 4, ttl=ttl)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().split() == ['HELD', '4']
        assert all(f':{proc.pid}:' in m for m in _members(client))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        killed = time.monotonic()
        # the dead worker's share stays taken until its last renewal's TTL runs out ...
        assert lease.try_acquire(client, KEY, 4, 4, ttl) is None
        # ... and then all of it is granted to the next one
        taken = lease.acquire(client, KEY, 4, 4, ttl)
        waited = time.monotonic() - killed
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert taken.count == 4
    assert waited < ttl + 5
    assert not any(f':{proc.pid}:' in m for m in _members(client))
    assert _members(client) == sorted(taken.tokens)
    taken.release()
    assert client.zcard(KEY) == 0


HOLD_FOR = '''
with lease.hold(client, argv[0], {'async_host_connections': 3, 'async_connections': 2}) as held:
    print('HELD', held.count, flush=True)
    time.sleep(float(argv[1]))
print('RELEASED', flush=True)
'''


def test_renewals_keep_a_long_holder_leases(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    ttl, hold_for = 1.0, 5.0           # the holder keeps its leases for five TTLs
    proc = _holder(redis_url, HOLD_FOR, HOST_URL, hold_for, ttl=ttl)
    assert proc.stdout is not None
    assert proc.stdout.readline().split() == ['HELD', '2']
    mine = _members(client)
    assert len(mine) == 2
    seen: list[tuple[int, int]] = []   # (Redis time in ms, unexpired leases)
    while proc.poll() is None:
        seconds, micros = client.time()
        now = seconds * 1000 + micros // 1000
        seen.append((now, len(client.zrangebyscore(KEY, now, '+inf'))))
        time.sleep(0.05)
    out = proc.communicate()[0]
    assert out.split() == ['RELEASED']
    counts = [n for _, n in seen]
    held = counts.index(0) if 0 in counts else len(counts)
    assert counts == [2] * held + [0] * (len(counts) - held), counts
    # both leases stayed live for over four TTLs (renewed), then were released
    assert seen[held - 1][0] - seen[0][0] >= (hold_for - 1.0) * 1000
    assert client.zcard(KEY) == 0


def test_download_lease_yields_overrides_within_the_free_share(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    other = lease.try_acquire(client, KEY, 4, 1, 10.0)
    assert other is not None
    opts = {'async_host_connections': 4, 'concurrent_fragment_downloads': 6}
    with lease.download_lease(redis_url, HOST_URL, opts) as overrides:
        assert overrides == {'async_connections': 3, 'async_host_connections': 3,
                             'concurrent_fragment_downloads': 3}
        assert client.zcard(KEY) == 4
    # released RELEASE_GRACE after the block, by the heartbeat thread
    deadline = time.monotonic() + 10
    while client.zcard(KEY) > 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _members(client) == other.tokens


def test_concurrent_downloads_of_one_process_get_distinct_engines(redis_url: str) -> None:
    """Same-sized shares would share one engine (keyed by its per-host cap) and use one share between them."""
    client = redis.Redis.from_url(redis_url)
    opts = {'async_host_connections': 16}
    with lease.download_lease(redis_url, HOST_URL, opts) as first, \
            lease.download_lease(redis_url, HOST_URL, opts) as second:
        caps = [o['async_host_connections'] for o in (first, second)]
        assert caps == [8, 7]                          # 8 + 7 connections, in two engines
        assert not {'async_connections'} & (first.keys() | second.keys())  # auto stays auto within the cap
        assert client.zcard(KEY) == 15                 # each holds exactly the leases it may use
    deadline = time.monotonic() + 10
    while client.zcard(KEY) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert client.zcard(KEY) == 0


def test_a_download_waits_for_half_its_share_rather_than_crawl_on_one_lease(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    others = lease.try_acquire(client, KEY, 16, 15, 10.0)
    assert others is not None and others.count == 15
    assert lease.try_acquire(client, KEY, 16, 8, 10.0) is None     # 1 free of the 8 wanted: wait
    assert lease.try_acquire(client, KEY, 16, 2, 10.0).count == 1  # 1 of 2 is half: go
    others.shrink(10)                                              # 5 free now (16 - 10 - 1)
    assert lease.try_acquire(client, KEY, 16, 8, 10.0).count == 5  # 5 of 8 >= half: go with 5
    assert client.zcard(KEY) == 16


def test_a_release_wakes_the_waiters_of_the_same_process(redis_url: str) -> None:
    """A waiter of this process retries when a download here gives its leases back, not after its backoff."""
    client = redis.Redis.from_url(redis_url)
    with lease.hold(client, HOST_URL, {'async_host_connections': 2}, grace=0) as first:
        got: list[Any] = []
        waiter = threading.Thread(target=lambda: got.append(lease.acquire(
            client, KEY, 2, 2, 10.0, sleep=lambda _: lease._wait_for_release(60))))
        waiter.start()
        time.sleep(0.3)
        assert not got                       # the window is full: it waits (up to 60 s a turn)
    waiter.join(20)                          # woken by the release, long before its 60 s
    assert not waiter.is_alive() and got[0].count == 2
    assert set(_members(client)) == set(got[0].tokens) and not set(first.tokens) & set(got[0].tokens)
    got[0].release()


def test_a_split_download_on_one_lease_stays_split() -> None:
    """One connection would fetch in order and start over instead of resuming a killed worker's .part-async."""
    one = lease.overrides_for(1, {'async_connections': 2})
    assert one == {'async_connections': 2, 'async_host_connections': 1, 'concurrent_fragment_downloads': 1}
    assert lease.overrides_for(1, {'async_connections': 1})['async_connections'] == 1  # in order anyway
    assert lease.overrides_for(3, {'concurrent_fragment_downloads': 8})['async_connections'] == 3
    # auto (the default) stays auto: the engine's per-host cap holds it to the leases
    assert lease.overrides_for(3, {}) == {'async_host_connections': 3, 'concurrent_fragment_downloads': 1}
    assert 'async_connections' not in lease.overrides_for(1, {'async_connections': 'auto'})


def test_download_lease_without_redis_broker_changes_nothing() -> None:
    with lease.download_lease('amqp://guest@127.0.0.1:5672//', HOST_URL, {}) as overrides:
        assert overrides == {}


# ------------------------------------------------------------------ the whole path
E2E_SIZE = 4_000_000


def test_three_workers_stay_within_the_cluster_host_window(
        tmp_path: Path, fault_server: Any, celery_workers: Workers) -> None:
    """3 workers x 3 downloads at once, --async-host-connections 4: the server never sees more than 4."""
    require_hook()
    require_engine()
    out = tmp_path / 'out'
    out.mkdir()
    for name in ('w1', 'w2', 'w3'):
        celery_workers.start(name, concurrency=3, env={'YTDLP_ASYNC_WORKDIR': str(out)})
    sizes = {i: E2E_SIZE + i for i in range(1, 7)}
    url = page_url(fault_server, [video_path(i, sizes[i], rate=1_000_000) for i in sizes])
    submitter = tmp_path / 'submitter'
    submitter.mkdir()
    fault_server.reset()
    proc = run_ytdlp(['--async-queue', celery_workers.redis.url, '--async-host-connections', '4',
                      '-o', '%(playlist_index)s.%(ext)s', url], submitter, timeout=180,
                     env={'XDG_CONFIG_HOME': str(tmp_path / '.home' / 'config')})  # the workers' key file
    text = output(proc) + celery_workers.logs()
    assert proc.returncode == 0, text
    assert sorted(p.name for p in out.iterdir() if p.name.endswith('.mp4')) == [f'{i}.mp4' for i in sizes], text
    for i, size in sizes.items():
        assert sha256_file(out / f'{i}.mp4') == sha256_of(size, i), i
    fault_server.wait_idle(5.0)
    gets = [e for e in fault_server.log if e.method == 'GET' and e.path.startswith('/data/')]
    # the files were split (several connections each), by more than one worker ...
    assert any(e.range for e in gets), [(e.path, e.range) for e in gets]
    results = task_results(celery_workers.redis.url)
    assert len({r['hostname'].split('@')[0] for r in results}) >= 2, results
    # ... and all of them together never had more than the window open at the server
    assert fault_server.max_concurrent <= 4, (fault_server.max_concurrent, text)
    assert celery_workers.redis.client().keys(lease.KEY_PREFIX + '*') == []   # every lease released


def task_results(redis_url: str) -> list[dict[str, Any]]:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    metas = [json.loads(client.get(k) or '{}') for k in client.keys('celery-task-meta-*')]
    return [m['result'] for m in metas if m.get('status') == 'SUCCESS']
