"""The worker task: one entry, downloaded through yt-dlp and the engine.

At-least-once, never twice: the task is acknowledged when it ends (``acks_late``)
and given back when its worker is lost, so Redis hands a killed worker's entry
to another worker after the visibility timeout.  To make a second delivery
harmless, the task first claims its own id in Redis (archive.Claims, refreshed
while it runs): a copy delivered while the first still runs waits for the
claim, then returns the first one's recorded result (``done:<task id>``).  The
entry resumes from the ``.part``/``.part-async`` files the dead worker left in
the shared output folder.  With an archive, yt-dlp's archive check claims the
entry's archive line too (RedisArchive), so two tasks for one entry (two
submitters) never download it twice, and the line is added once, on success.

Progress: yt-dlp's progress hooks update the task's state (``PROGRESS``, with
status, downloaded/total bytes, speed, filename and the worker's hostname),
at most every PROGRESS_EVERY seconds and at every change of status.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from typing import Any, Callable

from . import TASK_NAME, app, env_number, result_ttl
from .archive import Claims, RedisArchive, claim_key, new_token, redis_client, PREFIX
from .errors import EntryError
from . import broker
from .lease import download_lease

log = logging.getLogger('yt_dlp_async.celery')
broker.patch_kombu()  # a Redis restart must not kill the worker (broker.py)

PROGRESS_EVERY = 0.5


def done_key(task_id: str) -> str:
    return f'{PREFIX}done:{task_id}'


def progress_hook(report: Callable[[dict[str, Any]], None], hostname: str) -> Callable[[dict[str, Any]], None]:
    """A yt-dlp progress hook that reports at most every PROGRESS_EVERY seconds (and every change)."""
    last: dict[str, Any] = {'status': None, 'at': 0.0}
    lock = threading.Lock()

    def hook(d: dict[str, Any]) -> None:
        now = time.monotonic()
        with lock:
            if d.get('status') == last['status'] and now - float(last['at']) < PROGRESS_EVERY:
                return
            last['status'], last['at'] = d.get('status'), now
        meta = {
            'status': d.get('status'),
            'downloaded_bytes': d.get('downloaded_bytes'),
            'total_bytes': d.get('total_bytes') or d.get('total_bytes_estimate'),
            'speed': d.get('speed'),
            'filename': d.get('filename'),
            'hostname': hostname,
        }
        try:
            report(meta)
        except Exception:
            pass  # progress is best effort; the download goes on
    return hook


def run(job: dict[str, Any], task_id: str, hostname: str, broker_url: str,
        report: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    """Download one job (see cli.entry_jobs); returns the result the submitter gets."""
    client = redis_client(broker_url)
    finished = client.get(done_key(task_id))
    if finished:
        return dict(json.loads(finished))
    claims = Claims(client, new_token(hostname), env_number('YTDLP_ASYNC_CLAIM_TTL', 30.0))
    try:
        if not claims.wait_claim(claim_key(f'task:{task_id}'), done=lambda: client.exists(done_key(task_id))):
            return dict(json.loads(client.get(done_key(task_id)) or '{}'))
        report({'status': 'started', 'hostname': hostname})
        result = _download(job, claims, client, hostname, broker_url, report)
        client.set(done_key(task_id), json.dumps(result), ex=result_ttl())
        return result
    finally:
        claims.release_all()


def _download(job: dict[str, Any], claims: Claims, client: Any, hostname: str, broker_url: str,
              report: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    from . import cli
    workdir = os.environ.get('YTDLP_ASYNC_WORKDIR') or os.getcwd()
    try:
        ydl_opts = cli.worker_opts(job, workdir)
    except ValueError as exc:  # policy.Refusal: names the option, never the command line
        log.error('%s (%s)', exc, job.get('label'))
        raise EntryError(str(exc)) from None
    archive = RedisArchive(client, job['archive'], claims) if job.get('archive') else None
    ydl_opts['download_archive'] = archive
    ydl_opts['progress_hooks'] = [*(ydl_opts.get('progress_hooks') or []), progress_hook(report, hostname)]
    entry_url = str(job['entry'].get('url') or job['entry'].get('webpage_url') or '')  # the host it downloads from
    with download_lease(broker_url, entry_url, ydl_opts) as overrides:
        ydl_opts = {**ydl_opts, **overrides}
        guard = FileGuard(claims, client, str(job.get('run') or ''), hostname, workdir)
        result = cli.run_entry(job, ydl_opts, guard, workdir)
    result['hostname'] = hostname
    result['archived'] = list(archive.recorded) if archive is not None else []
    if archive is not None and not result['filenames'] and not result['archived'] and not result.get('skipped'):
        result['skipped'] = 'already in the archive'
    return result


def written_key(run: str, name: str) -> str:
    return f'{PREFIX}written:{run}:{name}'


class FileGuard:
    """One name, one writer, once per run, across workers with or without shared storage.

    A file is named relative to the worker's folder (the submitter's template, so the same on
    every worker) or by its absolute path outside it.  Its claim serializes the writers of
    that name; ``written:<run>:<name>`` says which worker wrote it in this run (cli._guard_files).
    """

    def __init__(self, claims: Claims, client: Any, run: str, hostname: str, workdir: str) -> None:
        self.claims, self.client, self.run, self.hostname = claims, client, run, hostname
        self.workdir = os.path.realpath(workdir)

    def name(self, path: str) -> str:
        real = os.path.realpath(path)
        inside = real.startswith(self.workdir.rstrip(os.sep) + os.sep)
        return os.path.relpath(real, self.workdir) if inside else real

    def before(self, path: str) -> None:
        from .cli import WrittenElsewhere
        name = self.name(path)
        self.claims.wait_claim(claim_key(f'file:{name}'))
        owner = self.client.get(written_key(self.run, name)) if self.run else None
        if owner and owner != self.hostname:
            raise WrittenElsewhere(owner, name)

    def after(self, path: str) -> None:
        if self.run:
            self.client.set(written_key(self.run, self.name(path)), self.hostname, ex=result_ttl())


@app.task(name=TASK_NAME, bind=True, acks_late=True, reject_on_worker_lost=True)  # type: ignore[untyped-decorator]
def download_entry(self: Any, envelope: Any) -> dict[str, Any]:
    """The Celery task: one entry of a submitted URL (a job built by cli.entry_jobs, sealed)."""
    from .sealing import Refused, unseal
    task_id = str(self.request.id)
    hostname = str(self.request.hostname or socket.gethostname())
    try:
        job = unseal(envelope)
    except Refused as exc:
        log.error('%s: %s', task_id, exc)
        raise EntryError(str(exc)) from None
    from . import cli, version_queue
    theirs = dict(job.get('versions') or {})
    if cli.version_mismatch(theirs):  # a rolling upgrade: leave it to a worker of its version
        queue = version_queue(theirs)
        log.warning('left %s (%s) to a worker of yt-dlp %s / yt-dlp-async %s on queue %s: %s', task_id,
                    job.get('label'), theirs.get('yt-dlp'), theirs.get('yt-dlp-async'), queue,
                    cli.version_mismatch(theirs))
        raise self.retry(queue=queue, countdown=0, max_retries=None)

    def report(meta: dict[str, Any]) -> None:
        self.update_state(task_id=task_id, state='PROGRESS', meta=meta)

    return run(job, task_id, hostname, self.app.conf.broker_url, report)
