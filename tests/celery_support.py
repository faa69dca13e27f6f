"""Fixtures for the Celery + Redis tests (tests/test_celery_*.py): a real redis-server, real workers.

``redis_server``: a redis-server (the Debian package) on a free loopback port,
no persistence (``--save '' --appendonly no``), its files in the test's tmp
dir; the test is skipped with the reason when redis-server (or celery) is not
installed (CI installs both, so they run there).

``celery_workers``: a factory, ``celery_workers.start('w1', concurrency=3)``,
that starts ``<venv>/bin/celery -A yt_dlp_async.celery worker --pool threads
-c N -n w1@%h`` as a subprocess with YTDLP_ASYNC_BROKER pointing at that
redis and waits until it is ready.  Teardown stops every worker (SIGTERM, then
SIGKILL after STOP_GRACE seconds) and redis-server: no process is left.

Keys: workers sign-check with the key file of their hermetic home
(``<tmp>/.home/config/yt-dlp-async/secret``, made on first use); a submitter run
with ``run_ytdlp(..., tmp_path)`` has the same home, so the same key, as a
user who copied the key file.  ``use_key_here(monkeypatch)`` gives this process it.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator, Mapping

import pytest

from ytdlp_support import hermetic_env

STOP_GRACE = 5.0
READY_TIMEOUT = 30.0
CELERY = str(Path(sys.executable).parent / 'celery')


def find_redis_server() -> str | None:
    return shutil.which('redis-server') or next(
        (p for p in ('/usr/bin/redis-server', '/usr/sbin/redis-server') if os.path.exists(p)), None)


def require_celery(redis: bool = True) -> None:
    """Skip, with the reason, without celery in this venv or (``redis``) without redis-server.

    Under ``make test`` (YTDLP_ASYNC_REQUIRE_INSTALLED=1) a missing part fails instead: CI
    installs both, and a skip there would pass the queue's tests without running them.
    """
    missing = []
    if redis and find_redis_server() is None:
        missing.append('redis-server is not installed (apt-get install redis-server)')
    if not os.path.exists(CELERY):
        missing.append(f'celery is not installed in {sys.executable} (pip install ".[celery]")')
    if missing and os.environ.get('YTDLP_ASYNC_REQUIRE_INSTALLED') == '1':
        pytest.fail('; '.join(missing))
    if missing:
        pytest.skip('; '.join(missing))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return int(s.getsockname()[1])


def _stop(proc: subprocess.Popen[Any], grace: float = STOP_GRACE) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


class RedisServer:
    """One redis-server process on 127.0.0.1:<free port>, data in ``directory``."""

    def __init__(self, directory: Path, persist: bool = False) -> None:
        self.directory = directory
        self.port = free_port()
        self.persist = persist  # AOF, fsync always, RDB uncompressed (so a grep sees every byte)
        self.proc: subprocess.Popen[Any] | None = None

    @property
    def url(self) -> str:
        return f'redis://127.0.0.1:{self.port}/0'

    def start(self) -> RedisServer:
        self.directory.mkdir(parents=True, exist_ok=True)
        binary = find_redis_server()
        assert binary is not None
        self.proc = subprocess.Popen(
            [binary, '--port', str(self.port), '--bind', '127.0.0.1', '--save', '',
             *(['--appendonly', 'yes', '--appendfsync', 'always', '--rdbcompression', 'no'] if self.persist
               else ['--appendonly', 'no']),
             '--dir', str(self.directory), '--logfile', str(self.directory / 'redis.log')],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(('127.0.0.1', self.port), 0.5) as s:
                    s.sendall(b'PING\r\n')
                    if s.recv(16).startswith(b'+PONG'):
                        return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f'redis-server did not start on port {self.port}')

    def client(self) -> Any:
        import redis
        return redis.Redis.from_url(self.url, decode_responses=True)

    def stop(self) -> None:
        if self.proc is not None:
            _stop(self.proc)


class Worker:
    """One ``celery worker`` subprocess; its output goes to ``log``."""

    def __init__(self, name: str, proc: subprocess.Popen[Any], log: Path) -> None:
        self.name = name
        self.proc = proc
        self.log = log

    def output(self) -> str:
        try:
            return self.log.read_text(errors='replace')
        except OSError:
            return ''

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ' ready.' in self.output():
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError(f'worker {self.name} not ready (exit {self.proc.poll()}):\n{self.output()[-4000:]}')

    def kill(self) -> None:
        """SIGKILL, as a machine that dies."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> None:
        _stop(self.proc)


class Workers:
    """Starts workers on one redis; ``stop_all`` ends them all (the fixture's teardown)."""

    def __init__(self, redis: RedisServer, base: Path) -> None:
        self.redis = redis
        self.base = base
        self.started: list[Worker] = []

    def use_key_here(self, monkeypatch: Any) -> None:
        """This (test) process signs with the workers' key file (their XDG_CONFIG_HOME), as a submitter would."""
        monkeypatch.delenv('YTDLP_ASYNC_SECRET', raising=False)
        monkeypatch.setenv('XDG_CONFIG_HOME', str(self.base / '.home' / 'config'))

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        return hermetic_env(self.base / '.home', {
            'YTDLP_ASYNC_BROKER': self.redis.url,
            'YTDLP_ASYNC_VISIBILITY_TIMEOUT': '4',
            'YTDLP_ASYNC_CLAIM_TTL': '3',
            **(extra or {}),
        })

    def start(self, name: str, concurrency: int = 3, cwd: Path | None = None,
              env: Mapping[str, str] | None = None, wait: bool = True) -> Worker:
        cwd = cwd or self.base
        cwd.mkdir(parents=True, exist_ok=True)
        log = self.base / f'worker-{name}.log'
        proc = subprocess.Popen(
            [CELERY, '-A', 'yt_dlp_async.celery', 'worker', '--pool', 'threads', '-c', str(concurrency),
             '-n', f'{name}@%h', '--loglevel', 'INFO', '--without-gossip', '--without-mingle',
             '--without-heartbeat'],
            cwd=cwd, env=self.env(env), stdout=open(log, 'wb'), stderr=subprocess.STDOUT,
            start_new_session=True)
        worker = Worker(name, proc, log)
        self.started.append(worker)
        if wait:
            worker.wait_ready()
        return worker

    def logs(self) -> str:
        return '\n'.join(f'--- worker {w.name}\n{w.output()[-3000:]}' for w in self.started)

    def stop_all(self) -> None:
        for worker in self.started:
            if worker.proc.poll() is None:
                worker.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE
        for worker in self.started:
            try:
                worker.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                worker.kill()


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    require_celery()
    server = RedisServer(tmp_path / 'redis').start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def celery_workers(redis_server: RedisServer, tmp_path: Path) -> Iterator[Workers]:
    workers = Workers(redis_server, tmp_path)
    try:
        yield workers
    finally:
        workers.stop_all()
