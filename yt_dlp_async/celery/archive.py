"""Claims on entries, and the download archive, in Redis.

Keys (all under ``yt-dlp-async:``):

  archive:<name>              a set: the archive lines (``youtube ID``) of one archive
  claim:<what>                a string: who is downloading ``what`` now (a token), with a TTL

A claim is taken with ``SET NX PX`` and refreshed by its holder every third of
its TTL while the download runs (taken again if Redis lost it in a restart), so a worker killed mid-download loses it
after at most the TTL; it is released (only by its holder) when the task ends.
An archive line is added only after the download succeeded, while the claim is
still held, so two workers never download the same entry and a line is never
recorded twice.

``RedisArchive`` is what a worker gives yt-dlp as ``params['download_archive']``
(yt-dlp accepts any container with ``in`` and ``add``): ``ID in archive`` is
true when the line is in the set, false once this task holds the entry's
claim, and waits while another worker holds it (then is true when that one
succeeded, false when it failed or died).
"""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any, Iterable

PREFIX = 'yt-dlp-async:'
WAIT_STEP = 0.5

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
_REFRESH = """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
if not holder then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1 end
return 0
"""


def archive_key(name: str) -> str:
    return f'{PREFIX}archive:{name}'


def claim_key(what: str) -> str:
    return f'{PREFIX}claim:{what}'


def new_token(hostname: str) -> str:
    return f'{hostname}:{uuid.uuid4().hex}'


class Claims:
    """The claims one task holds, refreshed by a background thread until ``release_all``."""

    def __init__(self, client: Any, token: str, ttl: float) -> None:
        self.client = client
        self.token = token
        self.ttl_ms = max(1000, int(ttl * 1000))
        self._held: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def try_claim(self, key: str) -> bool:
        """Take ``key`` if free (or already ours); False while someone else holds it."""
        with self._lock:
            if key in self._held:
                return True
        if self.client.set(key, self.token, nx=True, px=self.ttl_ms) or self.client.get(key) == self.token:
            with self._lock:
                self._held.add(key)
            self._start_refresher()
            return True
        return False

    def wait_claim(self, key: str, done: Any = None) -> bool:
        """Wait until ``key`` is ours (True) or ``done()`` says the work was done meanwhile (False).

        ``done()`` is asked again once the claim is ours: its holder may have finished (and
        released it) between the first question and the claim.  A claim taken then stays held
        until ``release_all()``, as every claim does."""
        while True:
            if done is not None and done():
                return False
            if self.try_claim(key):
                return done is None or not done()
            time.sleep(WAIT_STEP)

    def release_all(self) -> None:
        self._stop.set()
        with self._lock:
            held, self._held = list(self._held), set()
        for key in held:
            try:
                self.client.eval(_RELEASE, 1, key, self.token)
            except Exception:
                pass  # it expires after the TTL anyway

    def _start_refresher(self) -> None:
        with self._lock:
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._refresh_loop, name='yt-dlp-async claims', daemon=True)
        self._thread.start()

    def _refresh_loop(self) -> None:
        while not self._stop.wait(self.ttl_ms / 3000):
            with self._lock:
                held = list(self._held)
            for key in held:
                try:
                    self.client.eval(_REFRESH, 1, key, self.token, self.ttl_ms)
                except Exception:
                    pass  # a Redis hiccup: the next turn tries again


class RedisArchive:
    """An archive set in Redis, as yt-dlp's ``download_archive`` container (see the module docstring)."""

    def __init__(self, client: Any, name: str, claims: Claims) -> None:
        self.client = client
        self.key = archive_key(name)
        self.name = name
        self.claims = claims
        self.recorded: list[str] = []

    def __bool__(self) -> bool:
        return True  # yt-dlp skips the archive check when it is falsy

    def __contains__(self, line: object) -> bool:
        if not isinstance(line, str) or not line:
            return False
        if self.client.sismember(self.key, line):
            return True
        self.claims.wait_claim(claim_key(f'{self.name}:{line}'), done=lambda: self.client.sismember(self.key, line))
        return bool(self.client.sismember(self.key, line))

    def add(self, line: str) -> None:
        if self.client.sadd(self.key, line):
            self.recorded.append(line)

    def update(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.add(line)


def seed(client: Any, name: str, lines: Iterable[str]) -> None:
    """Put the local archive file's lines into the set (submit time)."""
    batch = [line for line in lines if line]
    if batch:
        client.sadd(archive_key(name), *batch)


def members(client: Any, name: str) -> set[str]:
    return {m.decode() if isinstance(m, bytes) else str(m) for m in client.smembers(archive_key(name))}


def redis_client(url: str, timeout: float = 5.0) -> Any:
    """A Redis client for ``url`` that answers or fails within ``timeout`` seconds."""
    import redis
    return redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout,
                                decode_responses=True)
