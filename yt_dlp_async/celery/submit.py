"""Sending entries to the workers, handles to wait on, and the submitter's progress lines.

``submit(urls, ydl_opts)`` (Python) and ``yt-dlp --async-queue URL`` (cli.py) both
end here: ``ping`` fails within seconds when Redis does not answer
(QueueUnreachable: ``cannot reach the queue at URL: reason``), ``send`` makes
one task per job, ``follow`` prints one line per entry from the workers'
reports (updated in place on a terminal, one line per change of state
otherwise) until every entry ended.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Iterable, TextIO

from . import TASK_NAME, make_app
from .archive import redis_client
from .errors import EntryError, QueueUnreachable

POLL_EVERY = 0.5
LOST_AFTER = 30.0  # seconds without an answer from Redis before follow() gives up
CHECK_EVERY = 2.0  # seconds between the Watchdog's looks at Redis
IDLE_HINT_AFTER = 30.0  # seconds with every entry still queued before follow() says no worker took one
PING_TIMEOUT = 3.0
_apps: dict[str, Any] = {}


def mask_url(url: str) -> str:
    """``url`` with its password shown as ``***`` (as Celery shows a broker URL)."""
    from urllib.parse import urlsplit
    try:
        password = urlsplit(url).password
    except ValueError:
        return url
    return url.replace(f':{password}@', ':***@', 1) if password else url


def mask(text: str, url: str) -> str:
    """``text`` with ``url`` masked, and its password wherever else it appears."""
    from urllib.parse import unquote, urlsplit
    text = text.replace(url, mask_url(url))
    try:
        password = urlsplit(url).password
    except ValueError:
        return text
    for secret in {password, unquote(password or '')} - {None, ''}:
        text = text.replace(str(secret), '***')
    return text


def ping(url: str) -> Any:
    """A Redis client for the queue at ``url``, after one PING; QueueUnreachable otherwise."""
    try:
        client = redis_client(url, timeout=PING_TIMEOUT)
        client.ping()
    except Exception as exc:
        raise QueueUnreachable(mask(f'cannot reach the queue at {url}: {exc}', url)) from None
    return client


def app_for(url: str) -> Any:
    if url not in _apps:
        _apps[url] = make_app(url)
    return _apps[url]


class EntryHandle:
    """One submitted entry: ``status()`` now, ``wait(timeout)`` for its result.

    A final state (SUCCESS, FAILURE) is kept here once seen: a Redis that restarts without
    its data forgets results, and the entry must not look queued again.
    """

    def __init__(self, result: Any, label: str, job: dict[str, Any], envelope: Any = None, app: Any = None) -> None:
        self.result = result
        self.label = label
        self.job = job
        self.envelope = envelope  # the sealed task, to queue it again (Watchdog)
        self.app = app
        self.final: dict[str, Any] | None = None
        self.value: dict[str, Any] = {}

    @property
    def id(self) -> str:
        return str(self.result.id)

    def status(self) -> dict[str, Any]:
        """``{'state': PENDING|STARTED|PROGRESS|SUCCESS|FAILURE, ...}`` with the worker's last report."""
        if self.final is not None:
            return dict(self.final)
        state = str(self.result.state)
        info = self.result.info
        status: dict[str, Any] = {'state': state}
        if state == 'FAILURE':
            status['error'] = error_text(info)
        elif isinstance(info, dict):
            status.update(info)
        if state == 'SUCCESS':
            self.value = dict(info) if isinstance(info, dict) else {}
        if state in ('SUCCESS', 'FAILURE'):
            self.final = dict(status)
        return status

    def requeue(self) -> None:
        """Send the same sealed task again, under the same id (the workers run an id once: tasks.py)."""
        self.app.send_task(TASK_NAME, args=[self.envelope], task_id=self.id)

    def wait(self, timeout: float | None = None) -> dict[str, Any]:
        """The result (``filenames``, ``bytes``, ``hostname``...); EntryError with yt-dlp's text if it failed."""
        try:
            value = self.result.get(timeout=timeout, propagate=True, interval=POLL_EVERY)
        except EntryError:
            raise
        except Exception as exc:
            if type(exc).__name__ == 'TimeoutError' and 'celery' in type(exc).__module__:
                raise
            raise EntryError(error_text(exc)) from None
        return dict(value)


def error_text(exc: Any) -> str:
    if isinstance(exc, BaseException):
        text = str(exc.args[0]) if len(exc.args) == 1 else str(exc)
        return text or type(exc).__name__
    return str(exc)


def send(app: Any, jobs: Iterable[dict[str, Any]]) -> list[EntryHandle]:
    """One task per job, each sealed with the cluster's key (sealing.py)."""
    from .sealing import keys, seal
    k = keys()
    handles = []
    for job in jobs:
        envelope = seal(job, k)
        handles.append(EntryHandle(app.send_task(TASK_NAME, args=[envelope]), job['label'], job, envelope, app))
    return handles


def submit(urls: Any, ydl_opts: dict[str, Any] | None = None, broker_url: str | None = None) -> list[EntryHandle]:
    """Extract ``urls`` here (playlists flat) and send one task per entry; one handle each."""
    from . import broker_from_env, cli
    url = broker_url or broker_from_env()
    jobs = cli.submit_jobs(urls, dict(ydl_opts or {}), url)
    return send(app_for(url), jobs)


# ------------------------------------------------------------------ progress lines
def _size(n: Any) -> str:
    if not isinstance(n, (int, float)):
        return '?'
    value = float(n)
    for unit in ('B', 'KiB', 'MiB', 'GiB', 'TiB'):
        if value < 1024 or unit == 'TiB':
            return f'{value:.2f}{unit}' if unit != 'B' else f'{int(value)}B'
        value /= 1024
    return f'{value:.2f}TiB'


def line_for(handle: EntryHandle, status: dict[str, Any]) -> tuple[str, str]:
    """(state key, text): the key changes only when the entry's state does."""
    state, host = status['state'], status.get('hostname')
    on = f' on {host}' if host else ''
    if state == 'PENDING':
        return 'queued', f'[queue] {handle.label}: queued'
    if state == 'RETRY':
        versions = handle.job.get('versions') or {}
        return 'waiting', (f'[queue] {handle.label}: waiting for a worker of yt-dlp {versions.get("yt-dlp")} / '
                           f'yt-dlp-async {versions.get("yt-dlp-async")}')
    if state == 'FAILURE':
        return 'failed', f'[queue] {handle.label}: failed{on}: {status.get("error")}'
    if state == 'SUCCESS':
        result = handle.value or (handle.result.result if isinstance(handle.result.result, dict) else {}) or {}
        if result.get('skipped'):
            return 'done', f'[queue] {handle.label}: {result["skipped"]} (on {result.get("hostname")})'
        files = ', '.join(result.get('filenames') or []) or '-'
        return 'done', (f'[queue] {handle.label}: finished {_size(result.get("bytes"))} '
                        f'on {result.get("hostname")}: {files}')
    filename = status.get('filename') or ''
    if status.get('status') == 'downloading':  # one state per file (merged formats have several)
        done, total = status.get('downloaded_bytes'), status.get('total_bytes')
        percent = f'{100.0 * done / total:5.1f}% of ' if isinstance(done, (int, float)) and total else ''
        speed = f' at {_size(status.get("speed"))}/s' if status.get('speed') else ''
        return f'downloading {filename}', (f'[queue] {handle.label}: downloading {percent}{_size(total)}{speed}{on}: '
                                           f'{filename}')
    if status.get('status') == 'finished':  # yt-dlp's hook: this file is complete, postprocessing may follow
        return f'downloaded {filename}', (f'[queue] {handle.label}: downloaded {_size(status.get("total_bytes"))}'
                                          f'{on}: {filename}')
    return 'started', f'[queue] {handle.label}: started{on}'


def idle_hint(queue_url: str, seconds: float) -> str:
    """What follow() says once when no worker has taken an entry for ``seconds`` (it goes on waiting)."""
    from .cli import versions
    ours = versions()
    return (f'[queue] no worker has taken an entry in {seconds:g} s; start one of yt-dlp {ours["yt-dlp"]} / '
            f'yt-dlp-async {ours["yt-dlp-async"]} that reaches the queue: '
            f'YTDLP_ASYNC_BROKER={mask_url(queue_url)} celery -A yt_dlp_async.celery worker '
            f'(still waiting; Ctrl-C leaves the entries queued for a worker)')


def follow(handles: list[EntryHandle], out: TextIO, quiet: bool = False, queue_url: str = 'URL',
           warn: Callable[[str], None] | None = None, hint_after: float = IDLE_HINT_AFTER,
           watchdog: Watchdog | None = None) -> list[tuple[EntryHandle, str]]:
    """Print the entries' lines until all ended; returns the failed ones with their error text.

    While every entry is still queued after ``hint_after`` seconds, ``warn`` (default: a
    line on ``out``) gets ``idle_hint()`` once: a queue with no worker otherwise waits silently.
    """
    tty = bool(getattr(out, 'isatty', lambda: False)()) and not quiet
    keys: dict[int, str] = {}
    drawn = 0
    pending = set(range(len(handles)))
    answered = begun = time.monotonic()
    taken = hinted = False
    last: dict[int, dict[str, Any]] = {}
    while True:
        texts = []
        for i, handle in enumerate(handles):
            try:
                status = handle.status()
                answered = time.monotonic()
            except Exception as exc:  # a Redis hiccup: try again, for a while
                if time.monotonic() - answered > LOST_AFTER:
                    raise QueueUnreachable(f'lost the queue for {LOST_AFTER:.0f} s: {exc} '
                                           f'(the workers go on; rerun to see the results)') from None
                status = last.get(i) or {'state': 'PENDING'}  # shown as it was
            last[i] = status
            key, text = line_for(handle, status)
            texts.append(text)
            if status['state'] != 'PENDING':
                taken = True
            if status['state'] in ('SUCCESS', 'FAILURE'):
                pending.discard(i)
            if not tty and not quiet and keys.get(i) != key:
                out.write(text + '\n')
            keys[i] = key
        if tty:
            out.write(('\x1b[%dA' % drawn if drawn else '') + ''.join(f'\r\x1b[K{t}\n' for t in texts))
            drawn = len(texts)
        if not (taken or hinted) and time.monotonic() - begun >= hint_after:
            hinted = True
            text = idle_hint(queue_url, hint_after)
            if warn is not None:
                warn(text)
            else:
                out.write(text + '\n')
            drawn = 0  # on a terminal the entries' lines are drawn again below it
        if watchdog is not None and pending:
            for text in watchdog.check([handles[i] for i in sorted(pending)], last_states=[last[i] for i in sorted(pending)]):
                if warn is not None:
                    warn(text)
                else:
                    out.write(text + '\n')
                drawn = 0
        out.flush()
        if not pending:
            break
        time.sleep(POLL_EVERY)
    return [(h, str(h.status().get('error'))) for h in handles if h.status()['state'] == 'FAILURE']


# ------------------------------------------------------------------ entries lost with Redis or a worker
class Watchdog:
    """Queues again what the queue lost: the submitter's side of surviving a broker restart.

    * ``yt-dlp-async:run:<run>`` is set when the run is sent; when it is gone, Redis lost its
      data (restarted without persistence): every entry not seen ending is sent again (same
      task id; a worker that still runs it finishes it, and the copy then returns its result),
      and the archive set is seeded again from the lines known here.
    * An entry started but without its task claim (``claim:task:<id>``, refreshed by its
      worker every third of YTDLP_ASYNC_CLAIM_TTL) for twice that TTL has a dead worker: it
      is sent again instead of waiting for Redis's visibility timeout.
    """

    def __init__(self, client: Any, run: str, reseed: Callable[[], None] | None = None) -> None:
        from . import env_number, result_ttl
        self.client = client
        self.run = run
        self.reseed = reseed
        self.grace = 2 * env_number('YTDLP_ASYNC_CLAIM_TTL', 30.0)
        self.ttl = result_ttl()
        self.missing: dict[str, float] = {}
        self.checked = 0.0
        self.client.set(self.marker, '1', ex=self.ttl)

    @property
    def marker(self) -> str:
        from .archive import PREFIX
        return f'{PREFIX}run:{self.run}'

    def check(self, pending: list[EntryHandle], last_states: list[dict[str, Any]] | None = None) -> list[str]:
        """Lines saying what was queued again (checks at most every CHECK_EVERY seconds)."""
        from .archive import claim_key
        now = time.monotonic()
        if now - self.checked < CHECK_EVERY:
            return []
        self.checked = now
        try:
            if not self.client.set(self.marker, '1', ex=self.ttl, xx=True):  # kept alive while the run lasts
                self.client.set(self.marker, '1', ex=self.ttl)
                if self.reseed is not None:
                    self.reseed()
                for handle in pending:
                    handle.requeue()
                self.missing.clear()
                return [f'[queue] the queue lost its data (Redis restarted without persistence?): '
                        f'{len(pending)} unfinished entries queued again']
            lines = []
            states = last_states or [h.status() for h in pending]
            for handle, status in zip(pending, states):
                if status.get('state') not in ('STARTED', 'PROGRESS') or self.client.exists(
                        claim_key(f'task:{handle.id}')):
                    self.missing.pop(handle.id, None)
                    continue
                since = self.missing.setdefault(handle.id, now)
                if now - since >= self.grace:
                    handle.requeue()
                    self.missing.pop(handle.id, None)
                    host = status.get('hostname') or 'its worker'
                    lines.append(f'[queue] {handle.label}: {host} stopped answering for {self.grace:g} s; '
                                 f'queued again')
            return lines
        except Exception:
            return []  # Redis is away: the next check tries again


def archived_lines(handles: Iterable[EntryHandle]) -> set[str]:
    """The archive lines the finished entries recorded, as their results said."""
    return {str(line) for h in handles for line in (h.value.get('archived') or [])}
