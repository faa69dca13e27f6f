"""The cluster-wide per-host connection window: leases in Redis.

``--async-host-connections N`` caps the connections one process opens to one
host (the engine enforces it in C).  With many Celery workers that cap holds
per worker, so ten workers would open ten times N.  This module makes N hold
for the whole cluster:

* per host, one Redis sorted set (``yt-dlp-async:lease:<host>``) holds lease
  tokens scored by their expiry (milliseconds, Redis server time, so the
  clocks of the machines do not matter);
* a download asks for ``want`` leases (the connections it would open); one Lua
  script drops expired tokens and grants ``min(want, N - held)`` atomically
  when that is at least half of ``want`` (least_of); else the download waits
  (jittered backoff up to MAX_BACKOFF, cut short when a download of the same
  process gives leases back) and asks again;
* a heartbeat thread renews the tokens every TTL/3; a worker that dies stops
  renewing, so its share is free again at most TTL later;
* the tokens are removed RELEASE_GRACE after the download ends (success,
  error or cancel), from the heartbeat thread, so the task does not wait.

``download_lease`` is the one call the worker task makes around a download;
it yields the option overrides that keep the download within its leases:

* ``async_connections``: the connections of a split file (a fixed number also
  caps the adaptive ``auto`` choice); never 1 for a download that would split,
  which would change its path (in order, no resume of a ``.part-async``);
* ``async_host_connections``: the engine's per-host cap for this download (the
  shared engine is keyed by it, so a download with k leases runs in an engine
  whose per-host window is k: fragments, probes and split files alike);
* ``concurrent_fragment_downloads``: yt-dlp's own fragment threads, for the
  downloads that fall back to yt-dlp's downloaders.

The concurrent downloads of one worker process that go to one host each get a
different per-host cap (EngineCaps: a download whose number of leases another
one of them already uses as its cap gives one back, or more), so each runs in
its own engine and uses its whole share; at most ``window`` engines per process.

The host is the entry URL's (the contract hands the lease the entry, not the
media URL an extractor finds later): for direct links and our tests they are
the same; for sites whose media lives on a CDN the window counts per site.
"""

from __future__ import annotations

import atexit
import logging
import os
import random
import socket
import threading
import time
import urllib.parse
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator

log = logging.getLogger(__name__)

#: connections per host for the whole cluster when the submitter gave none
DEFAULT_WINDOW = 16
#: leases a download asks for when neither --async-connections N nor -N says
#: (the adaptive ``auto`` then climbs within what it got)
DEFAULT_WANT = 8
#: seconds a lease lives without renewal: how long a dead worker's share stays taken
DEFAULT_TTL = 15.0
#: environment variable that overrides DEFAULT_TTL (seconds) in a worker
TTL_ENV = 'YTDLP_ASYNC_LEASE_TTL'
#: Redis key prefix of the per-host sorted sets
KEY_PREFIX = 'yt-dlp-async:lease:'
#: longest pause between two attempts while the window is full: a share
#: freed while its next holder sleeps stays unused meanwhile
MAX_BACKOFF = 0.25
#: seconds the leases outlive the download: a server counts a connection the
#: client just closed until it notices (a throttled server at its next write),
#: so the next holder must not start at once; the heartbeat keeps them meanwhile
RELEASE_GRACE = 0.05
#: seconds a lease command may take before it fails (the task fails with it
#: rather than hang; a renewal that fails is tried again at the next beat)
REDIS_TIMEOUT = 10.0
#: broker URL schemes that name a Redis server
REDIS_SCHEMES = ('redis', 'rediss', 'unix')

# Both scripts read the clock of the Redis server (TIME), so every machine
# agrees on when a lease expires.  KEYS[1] is the host's sorted set.
_PRELUDE = """
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local ttl = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
"""

# ARGV: ttl_ms, window, want, least, token prefix -> number of leases granted
# (0: fewer than ``least`` are free, wait)
_ACQUIRE = _PRELUDE + """
local want = tonumber(ARGV[3])
local free = window - redis.call('ZCARD', KEYS[1])
local n = math.min(want, free)
if n < math.max(1, tonumber(ARGV[4])) then return 0 end
for i = 1, n do
  redis.call('ZADD', KEYS[1], now + ttl, ARGV[5] .. ':' .. i)
end
redis.call('PEXPIRE', KEYS[1], ttl * 2)
return n
"""

# ARGV: ttl_ms, window, token... -> tokens held after the renewal.  A token that
# expired (its holder missed renewals) is taken again only if the window has room.
_RENEW = _PRELUDE + """
local held = 0
for i = 3, #ARGV do
  if redis.call('ZSCORE', KEYS[1], ARGV[i]) then
    redis.call('ZADD', KEYS[1], now + ttl, ARGV[i])
    held = held + 1
  elseif redis.call('ZCARD', KEYS[1]) < window then
    redis.call('ZADD', KEYS[1], now + ttl, ARGV[i])
    held = held + 1
  end
end
redis.call('PEXPIRE', KEYS[1], ttl * 2)
return held
"""


def host_key(url: str) -> str:
    """The Redis key of the window for the host of ``url`` (host[:port], lower case)."""
    parts = urllib.parse.urlsplit(url)
    host = (parts.hostname or '').lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = f'{host}:{port}' if port else host
    return KEY_PREFIX + (netloc or 'unknown')


def _positive_int(value: Any) -> int | None:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


def window_of(ydl_opts: dict[str, Any]) -> int:
    """The cluster window: the submitter's --async-host-connections, else 16."""
    return _positive_int(ydl_opts.get('async_host_connections')) or DEFAULT_WINDOW


def wanted(ydl_opts: dict[str, Any]) -> int:
    """Connections one download would open: --async-connections N, else -N > 1, else 8."""
    explicit = _positive_int(ydl_opts.get('async_connections'))
    if explicit:
        return explicit
    fragments = _positive_int(ydl_opts.get('concurrent_fragment_downloads')) or 1
    return fragments if fragments > 1 else DEFAULT_WANT


def overrides_for(granted: int, ydl_opts: dict[str, Any]) -> dict[str, Any]:
    """The options that keep one download within ``granted`` connections.

    The engine's per-host cap is what holds the download to its leases: the
    adaptive ``auto`` (the default) stays auto and climbs within it.  A fixed
    count (--async-connections N, -N) becomes ``granted``, but a split stays a
    split: a download that would open several connections is given at least 2
    (with a cap of 1 its pieces take turns), because with 1 yt-dlp-async
    fetches the file in order and would start over instead of resuming the
    ``.part-async`` a killed worker left.
    """
    fragments = _positive_int(ydl_opts.get('concurrent_fragment_downloads')) or 1
    overrides: dict[str, Any] = {
        'async_host_connections': granted,
        'concurrent_fragment_downloads': min(fragments, granted),
    }
    if _positive_int(ydl_opts.get('async_connections')) or fragments > 1:
        overrides['async_connections'] = granted if granted >= 2 or wanted(ydl_opts) < 2 else 2
    return overrides


def ttl_seconds(ttl: float | None = None) -> float:
    """The lease TTL: the argument, else $YTDLP_ASYNC_LEASE_TTL, else 15 s."""
    if ttl is not None:
        return ttl
    try:
        value = float(os.environ.get(TTL_ENV, ''))
    except ValueError:
        return DEFAULT_TTL
    return value if value > 0 else DEFAULT_TTL


@dataclass
class HostLease:
    """``count`` tokens of one host's window, renewed until released."""

    client: Any
    key: str
    window: int
    ttl: float
    tokens: list[str]

    @property
    def count(self) -> int:
        return len(self.tokens)

    def renew(self) -> int:
        """Push the tokens' expiry TTL ahead; returns how many are held."""
        held = self.client.eval(_RENEW, 1, self.key, int(self.ttl * 1000), self.window, *self.tokens)
        return int(held)

    def release(self) -> None:
        if self.tokens:
            self.client.zrem(self.key, *self.tokens)

    def shrink(self, count: int) -> None:
        """Give back all but ``count`` tokens."""
        extra, self.tokens = self.tokens[count:], self.tokens[:count]
        if extra:
            self.client.zrem(self.key, *extra)


class EngineCaps:
    """Which per-host caps this process's running downloads use, per host.

    The shared engine is keyed by its per-host cap, so two downloads of one
    process that got the same number of leases would share one engine and
    together open only one share.  Each running download of a host gets a cap
    no other running download of that host in this process has: the largest
    free one not above its leases (the rest of its leases go back).
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.used: dict[str, set[int]] = {}

    def claim(self, key: str, most: int, least: int = 1) -> int | None:
        """The largest cap in [least, most] not in use for ``key`` (now in use), or None."""
        with self.lock:
            used = self.used.setdefault(key, set())
            cap = next((c for c in range(most, least - 1, -1) if c not in used), None)
            if cap is not None:
                used.add(cap)
            return cap

    def free(self, key: str, cap: int) -> None:
        with self.lock:
            used = self.used.get(key, set())
            used.discard(cap)
            if not used:
                self.used.pop(key, None)


#: the caps of this process's running downloads (see EngineCaps)
process_caps = EngineCaps()


def _token_prefix() -> str:
    return f'{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}'


#: notified whenever this process gives leases back, so its own waiters try
#: again at once instead of at the end of their backoff
_freed = threading.Condition()


def _wait_for_release(seconds: float) -> None:
    """Sleep ``seconds``, or less when a download of this process releases leases meanwhile."""
    with _freed:
        _freed.wait(seconds)


def _announce_release() -> None:
    with _freed:
        _freed.notify_all()


def least_of(want: int) -> int:
    """The smallest share worth starting with: half of what the download wants.

    A download cannot take more connections once it runs, so one started on
    the last free lease would crawl on one connection long after the others
    (and hold the end of a playlist back); it waits for half its share instead.
    """
    return max(1, (want + 1) // 2)


def try_acquire(client: Any, key: str, window: int, want: int, ttl: float) -> HostLease | None:
    """One attempt: up to ``want`` leases of ``key`` if at least half of that is free, else None."""
    prefix = _token_prefix()
    want = max(1, min(want, window))
    granted = int(client.eval(_ACQUIRE, 1, key, int(ttl * 1000), window, want, least_of(want), prefix))
    if granted <= 0:
        return None
    return HostLease(client, key, window, ttl, [f'{prefix}:{i}' for i in range(1, granted + 1)])


def acquire(client: Any, key: str, window: int, want: int, ttl: float, *, caps: EngineCaps | None = None,
            sleep: Callable[[float], None] = _wait_for_release) -> HostLease:
    """Wait until half of ``want`` (least_of) is free; take up to ``want``.

    With ``caps``, the lease is also shrunk to a per-host cap no other running
    download of this process uses (claimed in ``caps``; the caller frees it).
    """
    delay = 0.05
    while True:
        lease = try_acquire(client, key, window, want, ttl)
        if lease is not None and caps is None:
            return lease
        if lease is not None and caps is not None:
            cap = caps.claim(key, lease.count, least_of(min(want, window)))
            if cap is not None:
                lease.shrink(cap)
                return lease
            lease.release()
        sleep(delay * random.uniform(0.5, 1.5))
        delay = min(MAX_BACKOFF, delay * 2)


class _Heartbeat:
    """Renews one lease every TTL/3 on a daemon thread; releases it ``grace`` s after stop()."""

    live: set[_Heartbeat] = set()
    live_lock = threading.Lock()

    def __init__(self, lease: HostLease, grace: float) -> None:
        self.lease = lease
        self.grace = min(grace, lease.ttl / 2)   # released before the last renewal runs out
        self.stopped = threading.Event()
        self.released = threading.Lock()
        self.thread = threading.Thread(target=self._run, name='yt-dlp-async lease', daemon=True)

    def start(self) -> None:
        with self.live_lock:
            self.live.add(self)
        self.thread.start()

    def stop(self) -> None:
        """The download ended: the thread releases the lease after the grace and exits."""
        self.stopped.set()
        if self.grace <= 0:
            self.thread.join()

    def _run(self) -> None:
        while not self.stopped.wait(self.lease.ttl / 3):
            self._renew()
        time.sleep(self.grace)
        self.release()

    def _renew(self) -> None:
        try:
            held = self.lease.renew()
        except Exception as exc:  # Redis away for a moment: try again next beat
            log.warning('lease renewal for %s failed: %s', self.lease.key, exc)
            return
        if held < self.lease.count:
            log.warning('lease %s: %d of %d leases had expired and were taken by others',
                        self.lease.key, self.lease.count - held, self.lease.count)

    def release(self) -> None:
        """Remove the tokens (once); the process exit calls it for the leases still in their grace."""
        if not self.released.acquire(blocking=False):
            return
        with self.live_lock:
            self.live.discard(self)
        try:
            self.lease.release()
        except Exception as exc:  # the tokens expire after the TTL anyway
            log.warning('lease release for %s failed: %s', self.lease.key, exc)
        _announce_release()

    @classmethod
    def release_all(cls) -> None:
        with cls.live_lock:
            beats = list(cls.live)
        for beat in beats:
            beat.release()


atexit.register(_Heartbeat.release_all)
_clients: dict[str, Any] = {}
_clients_lock = threading.Lock()


def redis_client(broker_url: str) -> Any:
    """The process's Redis client for the broker URL, or None when the broker is not Redis."""
    if urllib.parse.urlsplit(broker_url).scheme not in REDIS_SCHEMES:
        return None
    with _clients_lock:
        client = _clients.get(broker_url)
        if client is None:
            import redis
            client = _clients[broker_url] = redis.Redis.from_url(
                broker_url, socket_timeout=REDIS_TIMEOUT, socket_connect_timeout=REDIS_TIMEOUT)
        return client


@contextmanager
def hold(client: Any, url: str, ydl_opts: dict[str, Any], *, ttl: float | None = None,
         grace: float = RELEASE_GRACE, caps: EngineCaps | None = None) -> Iterator[HostLease]:
    """Hold this download's leases of its host's window while the block runs (and ``grace`` s more)."""
    key = host_key(url)
    lease = acquire(client, key, window_of(ydl_opts), wanted(ydl_opts), ttl_seconds(ttl), caps=caps)
    cap = lease.count
    heartbeat = _Heartbeat(lease, grace)
    heartbeat.start()
    try:
        yield lease
    finally:
        heartbeat.stop()
        if caps is not None:
            caps.free(key, cap)
            _announce_release()


@contextmanager
def download_lease(broker_url: str, url: str, ydl_opts: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Hold the host's share of the cluster window around one download; yield option overrides."""
    client = redis_client(broker_url)
    if client is None:
        log.warning('broker %s is not Redis: no cluster-wide host window, each worker keeps its own',
                    urllib.parse.urlsplit(broker_url).scheme)
        yield {}
        return
    with hold(client, url, ydl_opts, caps=process_caps) as lease:
        yield overrides_for(lease.count, ydl_opts)
