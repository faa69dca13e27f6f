"""Downloads across machines: a Celery app whose workers download through yt-dlp and the engine.

A worker, on any machine that sees the output folder::

    YTDLP_ASYNC_BROKER=redis://HOST:6379/0 celery -A yt_dlp_async.celery worker

One worker process runs one engine: the app's pool is Celery's ``threads``
pool, with as many threads as downloads at once (``worker_concurrency`` =
``YTDLP_ASYNC_CONCURRENT_DOWNLOADS``, default 5, like ``--concurrent-downloads``;
``-c N`` on the worker's command line overrides it), so every download of the
process shares that engine's connections, rate limit and per-host window.

Submitting: ``yt-dlp --async-queue redis://HOST:6379/0 [options] URL...`` or,
from Python, ``submit(urls, ydl_opts)`` (see submit.py).

Configuration, from the environment of the worker (and of ``app`` users):

  YTDLP_ASYNC_BROKER               broker and result backend (default redis://127.0.0.1:6379/0)
  YTDLP_ASYNC_CONCURRENT_DOWNLOADS threads of one worker process (default 5)
  YTDLP_ASYNC_VISIBILITY_TIMEOUT   seconds before Redis hands an unacknowledged task to another
                                   worker (default 3600).  Tasks are acknowledged when they end
                                   (acks_late), so this is how long a killed worker's entry waits
                                   before it is redelivered.  In production it must exceed the
                                   longest download: a task still running after it is delivered
                                   again, and the copy waits for the first one's claim (archive.py)
                                   instead of downloading twice, holding a thread meanwhile.
  YTDLP_ASYNC_CLAIM_TTL            seconds a claim on an entry outlives its worker (default 30;
                                   the worker refreshes it every third of that while it runs)
  YTDLP_ASYNC_WORKDIR              folder for relative -o/-P/--cookies paths (default: the worker's cwd);
                                   the worker writes only there (and in YTDLP_ASYNC_ALLOW_PATHS)
  YTDLP_ASYNC_ALLOW_OPTIONS        options this worker accepts beyond its allowlist (policy.py; also
                                   ``allow-options``/``allow-paths`` lines of its worker.conf)
  YTDLP_ASYNC_SECRET               the cluster key (else the key file, sealing.py): tasks not signed
                                   with it are refused
  YTDLP_ASYNC_RESULT_TTL           seconds results stay in Redis (default 86400)

Modules: tasks (the worker task), submit (sending, handles, progress lines),
sealing (the cluster key; signed, encrypted tasks), policy (what a worker runs),
archive (claims and the download archive in Redis), cli (the yt-dlp glue, the
only module here that touches yt-dlp), lease (the cluster-wide host window).
"""

from __future__ import annotations

import os
from typing import Any

from celery import Celery

DEFAULT_BROKER = 'redis://127.0.0.1:6379/0'
TASK_NAME = 'yt_dlp_async.download'


def env_number(name: str, default: float) -> float:
    """A positive number from the environment; ``default`` when unset or invalid."""
    try:
        value = float(os.environ.get(name, ''))
    except ValueError:
        return default
    return value if value > 0 else default


def result_ttl() -> int:
    """Seconds results (and the worker's done markers) stay in Redis: YTDLP_ASYNC_RESULT_TTL, default 1 day."""
    return int(env_number('YTDLP_ASYNC_RESULT_TTL', 24 * 3600.0))


def version_queue(versions: dict[str, Any] | None = None) -> str:
    """The queue of one pair of versions: a worker takes only the entries of submitters like it."""
    if versions is None:
        from .cli import versions as ours
        versions = ours()
    return f'yt-dlp-async.{versions.get("yt-dlp")}.{versions.get("yt-dlp-async")}'


def broker_from_env() -> str:
    return os.environ.get('YTDLP_ASYNC_BROKER') or DEFAULT_BROKER


def config(broker_url: str) -> dict[str, Any]:
    """The app's settings: late acknowledgement, one task prefetched, one engine per process."""
    visibility = env_number('YTDLP_ASYNC_VISIBILITY_TIMEOUT', 3600.0)
    transport = {
        'visibility_timeout': visibility,
        # look for abandoned tasks often enough for the visibility timeout to mean what it says
        'unacked_restore_interval': max(1, min(10, int(visibility // 2))),
        'unacked_restore_throttle': 1,
    }
    return {
        'broker_url': broker_url,
        'result_backend': broker_url,
        'broker_transport_options': transport,
        'result_backend_transport_options': {'retry_policy': {'timeout': 5.0}},
        'broker_connection_retry_on_startup': True,
        'task_acks_late': True,
        'task_reject_on_worker_lost': True,
        # no STARTED from Celery: a copy redelivered while the first still runs would show the entry as
        # started again while it only waits for the first one's claim; the task reports 'started' itself
        'task_track_started': False,
        'worker_prefetch_multiplier': 1,
        'worker_pool': 'threads',
        'worker_concurrency': int(env_number('YTDLP_ASYNC_CONCURRENT_DOWNLOADS', 5)),
        'worker_hijack_root_logger': False,
        'task_default_queue': version_queue(),  # submitters send there, workers consume it
        'task_serializer': 'json',
        'result_serializer': 'json',
        'accept_content': ['json'],
        'result_expires': result_ttl(),
        'task_publish_retry_policy': {'max_retries': 2, 'interval_start': 0.2, 'interval_step': 0.5},
    }


def make_app(broker_url: str) -> Celery:
    """A Celery app on ``broker_url`` (Redis: broker and result backend) with the download task."""
    celery_app = Celery('yt_dlp_async', include=['yt_dlp_async.celery.tasks'])
    celery_app.conf.update(config(broker_url))
    return celery_app


#: The app workers run (``celery -A yt_dlp_async.celery worker``); broker from YTDLP_ASYNC_BROKER.
app = make_app(broker_from_env())


# The module first, then the function of the same name: the package attribute stays the function.
from . import submit as submit_module  # noqa: E402


def submit(urls: Any, ydl_opts: dict[str, Any] | None = None, broker_url: str | None = None) -> list[Any]:
    """Extract ``urls`` here and send one task per entry; returns one handle per entry (submit.py).

    Each handle has ``.wait(timeout)`` (the result dict: filenames, bytes, hostname; raises
    EntryError with the entry's error text) and ``.status()``.
    """
    return submit_module.submit(urls, ydl_opts, broker_url)


__all__ = ['app', 'make_app', 'submit', 'TASK_NAME', 'DEFAULT_BROKER']
