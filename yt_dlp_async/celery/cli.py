"""The yt-dlp glue of the queue path: the only module of yt_dlp_async.celery that touches yt-dlp.

Every yt-dlp internal comes from ``yt_dlp_async.ytdlp.internals`` (NAMES).

Submitter (``yt-dlp --async-queue URL ...``; patches.py sends ``YoutubeDL.download`` here):
  * each URL is extracted here with ``extract_flat='in_playlist'``, so yt-dlp's own playlist
    loop (items, reverse, filters, the archive) picks the entries without resolving them;
    their playlist fields are made as that loop makes them (``playlist_entries``: it puts
    them on a copy of a flat entry, not on the entry);
  * one job per entry: the entry (sanitized, JSON), its playlist fields (``extra_info``), the
    arguments yt-dlp parsed (config files', then the command line's) minus ``--async-queue``,
    the URLs and the options that only mean something here (batch file, archive file, config
    locations), the archive's name and both versions;
  * the archive (``--download-archive FILE``) lives in a Redis set named after FILE's absolute
    path, seeded from FILE; FILE gets the set's new lines when the run ends.

Worker (tasks.py): ``worker_opts`` parses the same command line with yt-dlp's own
``parse_options``; relative -o/-P/--cookies paths are resolved against the worker's folder;
``run_entry`` gives the entry to ``YoutubeDL.process_ie_result(entry, download=True,
extra_info=playlist fields)``, which extracts a URL entry (``extract_info``) or downloads a
resolved one, so output templates name files as they would locally (``%(autonumber)s``
too: ``autonumber_start`` moves by the entry's number in the run).  The instance's
``YoutubeDL.dl`` waits for a claim on the file's name (relative to the worker's folder)
first, so two entries with one name are written one after the other, as in one process,
and a name another worker wrote in this run is not downloaded again (tasks.FileGuard).
Before any of it the worker checks the options against its allowlist (policy.py).
"""

from __future__ import annotations

import optparse
import os
import sys
from typing import Any, Callable, Iterable

from ..ytdlp import internals

#: Options whose value is dropped from the workers' command line (they are the submitter's).
DROPPED_WITH_VALUE = ('--async-queue', '--batch-file', '-a', '--download-archive', '--load-info-json',
                      '--config-locations', '--config-location')  # the config files' arguments are sent
DROPPED_FLAGS = ('--no-download-archive', '--no-batch-file')


# ------------------------------------------------------------------ versions
def versions() -> dict[str, str]:
    from ..ytdlp.patches import plugin_version
    return {'yt-dlp': str(internals.load('yt_dlp.version:__version__')), 'yt-dlp-async': plugin_version()}


def version_mismatch(theirs: dict[str, str]) -> str | None:
    """The worker's refusal when the submitter's versions differ from ours (None: they match)."""
    ours = versions()
    if theirs == ours:
        return None
    return (f'worker has yt-dlp {ours["yt-dlp"]} / yt-dlp-async {ours["yt-dlp-async"]}, '
            f'submitter has yt-dlp {theirs.get("yt-dlp")} / yt-dlp-async {theirs.get("yt-dlp-async")}')


def new_run() -> str:
    """The id of one submission: a name is written once per run across the workers (tasks.FileGuard)."""
    import uuid
    return uuid.uuid4().hex


# ------------------------------------------------------------------ the command line
def _drop_options(argv: list[str]) -> list[str]:
    kept: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg in DROPPED_FLAGS:
            continue
        if arg in DROPPED_WITH_VALUE:
            skip = True
            continue
        if any(arg.startswith(f'{name}=') for name in DROPPED_WITH_VALUE if name.startswith('--')):
            continue
        if arg.startswith('-a') and not arg.startswith('--') and len(arg) > 2:
            continue
        kept.append(arg)
    return kept


def worker_argv(argv: list[str]) -> list[str]:
    """``argv`` without --async-queue, the URLs and the submitter-only options."""
    argv = _drop_options(list(argv))
    parser = internals.load('yt_dlp.options:create_parser')()
    positional = parser.parse_args(argv)[1]
    urls = set(positional)
    for index in range(len(argv) - 1, -1, -1):
        if argv[index] not in urls:
            continue
        trial = argv[:index] + argv[index + 1:]
        if len(parser.parse_args(trial)[1]) == len(positional) - 1:  # it was a URL, not an option's value
            argv, positional = trial, parser.parse_args(trial)[1]
    return [str(arg) for arg in argv]


# ------------------------------------------------------------------ submitter
def _archive_name(path: Any) -> str:
    return str(os.path.abspath(os.fspath(path)))


def entry_jobs(ydl: Any, url: str, number: int, base: dict[str, Any], prefix: str = '') -> list[dict[str, Any]]:
    """The jobs for one URL: one per playlist entry (extracted flat), or the URL itself.

    Labels: ``URL n`` for a video, ``item i`` for a playlist's entry (``prefix``: ``URL n `` when
    there are several URLs).
    """
    saved, archive = ydl.params.get('extract_flat'), ydl.archive
    ydl.params['extract_flat'] = 'in_playlist'
    ydl.archive = set()  # archived entries keep their place: %(playlist_autonumber)s counts them, as alone
    try:
        info = ydl.extract_info(url, download=False)
    finally:
        ydl.params['extract_flat'], ydl.archive = saved, archive
    if not info:
        return []
    if info.get('_type') not in ('playlist', 'multi_video'):
        if _in_archive(ydl, info):
            return []
        return [{**base, 'label': f'URL {number}', 'entry': {'_type': 'url', 'url': url}, 'extra_info': {}}]
    return [{**base, 'label': f'{prefix}item {extra["playlist_index"]}',
             'entry': ydl.sanitize_info(dict(entry), True), 'extra_info': extra}
            for entry, extra in playlist_entries(ydl, info) if not _in_archive(ydl, entry)]


def playlist_entries(ydl: Any, info: dict[str, Any]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """The entries yt-dlp's playlist loop kept, each with the fields that loop gives it.

    yt-dlp adds the playlist fields to a copy of a flat (``url``) entry, not to the entry, so
    they are made here as it makes them: the playlist's (``YoutubeDL._playlist_infodict``),
    then the entry's ``playlist_index`` (``requested_entries``, in the loop's order: items,
    reverse) and ``playlist_autonumber``.
    """
    entries = list(info.get('entries') or [])
    indexes = info.get('requested_entries') or range(1, len(entries) + 1)
    common = ydl._playlist_infodict(info, n_entries=len(entries))
    # %(playlist_index)s is padded to the last index yt-dlp's loop would reach (its requested_entries)
    common['__last_playlist_index'] = max(indexes, default=0)
    return [(entry, {**{k: v for k, v in common.items() if v is not None},
                     'playlist_index': index, 'playlist_autonumber': position})
            for position, (index, entry) in enumerate(zip(indexes, entries), 1) if entry]


def _in_archive(ydl: Any, info: dict[str, Any]) -> bool:
    if not ydl.params.get('download_archive') or not info.get('id'):
        return False
    try:
        line = ydl._make_archive_id(info)
    except Exception:
        return False
    if line and line in ydl.archive:
        title = f' {info["title"]}' if info.get('title') else ''
        ydl.to_screen(f'[download] {info.get("id")}:{title} has already been recorded in the archive')
        return True
    return False


def build_jobs(ydl: Any, urls: Iterable[str], base: dict[str, Any],
               on_error: Callable[[str], None]) -> tuple[list[dict[str, Any]], list[str]]:
    """Jobs for every URL, and the error text of each URL whose extraction failed."""
    DownloadError = internals.load('yt_dlp.utils:DownloadError')
    jobs: list[dict[str, Any]] = []
    failures: list[str] = []
    urls = list(urls)
    for number, url in enumerate(urls, 1):
        try:
            jobs.extend(entry_jobs(ydl, url, number, base, f'URL {number} ' if len(urls) > 1 else ''))
        except DownloadError as exc:
            failures.append(_strip_error(str(exc)))  # yt-dlp printed the ERROR line
        except Exception as exc:
            on_error(f'{url}: {type(exc).__name__}: {exc}')
            failures.append(f'{url}: {type(exc).__name__}: {exc}')
    for number, job in enumerate(jobs, 1):
        job['number'] = number  # the entry's place among this run's downloads: %(autonumber)s
    return jobs, failures


def _strip_error(text: str) -> str:
    return text[len('ERROR: '):] if text.startswith('ERROR: ') else text


def prepare_archive(ydl: Any, client: Any) -> str | None:
    """Seed the Redis set from the local archive file; the set's lines count as archived here too."""
    from . import archive
    path = ydl.params.get('download_archive')
    if not path or not internals.load('yt_dlp.utils:is_path_like')(path):
        return None
    name = _archive_name(path)
    archive.seed(client, name, list(ydl.archive))
    ydl.archive.update(archive.members(client, name))
    return name


def write_back_archive(ydl: Any, client: Any, name: str, known: Iterable[str] = ()) -> int:
    """Append the set's lines (and ``known``: the finished entries' own) the local file lacks; returns how many."""
    from . import archive
    path = ydl.params['download_archive']
    local: set[str] = set()
    try:
        with open(path, encoding='utf-8') as f:
            local = {line.strip() for line in f if line.strip()}
    except FileNotFoundError:
        pass
    new = sorted((archive.members(client, name) | set(known)) - local)
    if new:
        locked_file = internals.load('yt_dlp.utils:locked_file')
        with locked_file(path, 'a', encoding='utf-8') as f:
            f.write(''.join(f'{line}\n' for line in new))
    return len(new)


def report_error(ydl: Any, message: str) -> None:
    """An ERROR line as yt-dlp prints it, without stopping the run."""
    DownloadError = internals.load('yt_dlp.utils:DownloadError')
    try:
        ydl.report_error(message)
    except DownloadError:
        pass


def download(ydl: Any, url_list: Any) -> int:
    """``YoutubeDL.download`` with --async-queue: returns the exit status yt-dlp would."""
    from . import submit_module as submit
    from .errors import QueueUnreachable
    queue_url = ydl.params['async_queue']
    try:
        client = submit.ping(queue_url)
    except QueueUnreachable as exc:
        report_error(ydl, str(exc))
        return 1
    urls = list(internals.load('yt_dlp.utils:variadic')(url_list))
    argv = ydl.params.get('async_queue_argv') or sys.argv[1:]
    try:
        name = prepare_archive(ydl, client)
    except Exception as exc:  # Redis went away after the ping
        report_error(ydl, submit.mask(f'cannot reach the queue at {queue_url}: {exc}', queue_url))
        return 1
    base = {'argv': worker_argv(argv), 'ydl_opts': None, 'archive': name, 'versions': versions(), 'run': new_run()}
    jobs, failures = build_jobs(ydl, urls, base, lambda text: report_error(ydl, text))
    try:
        handles = submit.send(submit.app_for(queue_url), jobs)
    except Exception as exc:  # Redis went away after the ping
        report_error(ydl, submit.mask(f'cannot reach the queue at {queue_url}: {exc}', queue_url))
        return 1
    def reseed() -> None:  # Redis lost the set: what this run knows goes back in
        if name is not None:
            from . import archive
            archive.seed(client, name, set(ydl.archive) | submit.archived_lines(handles))

    try:
        watchdog = submit.Watchdog(client, str(base['run']), reseed)
        errors = submit.follow(handles, sys.stdout, quiet=bool(ydl.params.get('quiet')), queue_url=queue_url,
                               warn=ydl.report_warning, watchdog=watchdog)
    except QueueUnreachable as exc:
        report_error(ydl, submit.mask(f'{exc} ({queue_url})', queue_url))
        return 1
    finally:  # also on Ctrl-C: the lines of the entries done so far (the workers go on)
        if name is not None:
            try:
                write_back_archive(ydl, client, name, submit.archived_lines(handles))
            except Exception as exc:
                ydl.report_warning(f'the archive file was not updated from the queue: {exc}')
    for handle, text in errors:
        report_error(ydl, f'{text} ({handle.label})')
    return 1 if failures or errors else 0


def submit_jobs(urls: Iterable[str], ydl_opts: dict[str, Any], broker_url: str) -> list[dict[str, Any]]:
    """The Python API's extraction: one job per entry, carrying ``ydl_opts`` (JSON) instead of argv.

    A URL whose extraction fails raises EntryError with yt-dlp's text before anything is sent.
    """
    import json
    from . import submit_module as submit
    client = submit.ping(broker_url)
    opts = {k: v for k, v in ydl_opts.items() if k not in ('progress_hooks', 'postprocessor_hooks', 'logger')}
    try:
        json.dumps(opts)
    except TypeError as exc:
        raise TypeError(f'ydl_opts for the queue must be JSON values ({exc})') from exc
    YoutubeDL = internals.load('yt_dlp:YoutubeDL')
    with YoutubeDL({**ydl_opts, 'quiet': True, 'noprogress': True}) as ydl:
        name = prepare_archive(ydl, client)
        base = {'argv': None, 'ydl_opts': opts, 'archive': name, 'versions': versions(), 'run': new_run()}
        jobs, failures = build_jobs(ydl, internals.load('yt_dlp.utils:variadic')(urls), base, lambda text: None)
    if failures:
        from .errors import EntryError
        raise EntryError('; '.join(failures))
    return jobs


# ------------------------------------------------------------------ worker
def _resolve(path: str, workdir: str) -> str:
    return os.path.join(workdir, os.path.expanduser(path))


def worker_opts(job: dict[str, Any], workdir: str) -> dict[str, Any]:
    """The entry's ydl_opts on this worker: the submitter's command line, parsed here.

    Raises policy.Refusal (a ValueError) naming the first option the worker does not allow;
    the message never repeats the command line (it may hold passwords).
    """
    from . import policy
    if job.get('argv') is not None:
        argv = [str(a) for a in job['argv']]
        policy.check_argv(argv)  # before parse_options, which would read batch and config files
        argv, note = policy.quiet_argv(argv)
        try:
            parsed = internals.load('yt_dlp:parse_options')(argv)
        except (SystemExit, optparse.OptParseError) as exc:
            raise policy.Refusal(policy.parse_failure(exc, argv)) from None
        opts = dict(parsed.ydl_opts)
    else:
        opts = dict(job.get('ydl_opts') or {})
        policy.check_params(opts)
        note = policy.quiet_params(opts)
    paths = dict(opts.get('paths') or {})
    outtmpl = opts.get('outtmpl')
    default = outtmpl.get('default') if isinstance(outtmpl, dict) else outtmpl
    if paths.get('home') or not (isinstance(default, str) and os.path.isabs(os.path.expanduser(default))):
        paths['home'] = _resolve(paths.get('home') or '', workdir)  # an absolute -P/-o is used as given
        opts['paths'] = paths
    if opts.get('cookiefile'):
        opts['cookiefile'] = _resolve(opts['cookiefile'], workdir)
    # %(autonumber)s counts the run's downloads: the entry's number, as in one process
    opts['autonumber_start'] = int(opts.get('autonumber_start') or 1) + int(job.get('number') or 1) - 1
    opts.update(ignoreerrors=False, noprogress=True, download_archive=None, async_queue=None)
    opts.pop('async_queue_argv', None)
    policy.check_paths(opts, workdir)
    if note:
        import logging
        logging.getLogger('yt_dlp_async.celery').warning('%s', note)
    return opts


class WrittenElsewhere(Exception):
    """This run already wrote the file on another worker (its own folder): not downloaded again."""

    def __init__(self, owner: str, name: str) -> None:
        super().__init__(f'already downloaded on {owner}: {name}')
        self.owner, self.name = owner, name


def _guard_files(ydl: Any, guard: Any) -> None:
    """Around every file yt-dlp downloads: ``guard.before(path)`` waits for the file's claim
    (two workers never write one name at once) and raises WrittenElsewhere when another worker
    wrote that name in this run; ``guard.after(path)`` records a success.

    With one shared folder the second writer then finds the file complete and says it has
    already been downloaded, as yt-dlp does when two entries of one run have the same name;
    with a folder per worker it is not downloaded a second time either.
    """
    dl = ydl.dl

    def guarded_dl(name: Any, info: Any, *args: Any, **kwargs: Any) -> Any:
        if not isinstance(name, str) or name == '-' or kwargs.get('test'):
            return dl(name, info, *args, **kwargs)
        path = os.path.abspath(name)
        try:
            guard.before(path)
        except WrittenElsewhere:
            ydl.record_download_archive(info)  # as yt-dlp does for a file already there
            raise
        result = dl(name, info, *args, **kwargs)
        if result and (result[0] if isinstance(result, tuple) else result):
            guard.after(path)
        return result

    ydl.dl = guarded_dl


#: fields yt-dlp sets itself while it downloads: never taken from a task
_PRIVATE = frozenset(('requested_downloads', 'requested_formats', 'requested_subtitles', 'entries', 'filepath',
                      '_filename', 'filename', 'infojson_filename'))


def _public(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if not str(k).startswith('__') and k not in _PRIVATE}


def run_entry(job: dict[str, Any], ydl_opts: dict[str, Any],
              guard: Any = None, workdir: str | None = None) -> dict[str, Any]:
    """Download one entry; returns its files.  yt-dlp's failure raises EntryError with its text.

    The entry and its playlist fields are sanitized again here (no private ``__`` field, no
    ``filepath``): only public fields of an extraction come from the submitter.  With
    ``workdir``, every file name yt-dlp makes must be inside the worker's folders (policy).
    """
    from ..ytdlp import install
    from . import policy
    from .errors import EntryError
    install(import_ytdlp=True)
    YoutubeDL = internals.load('yt_dlp:YoutubeDL')
    DownloadError = internals.load('yt_dlp.utils:DownloadError')
    extra = dict(job.get('extra_info') or {})
    last = extra.get('__last_playlist_index')
    try:
        with YoutubeDL(ydl_opts) as ydl:
            entry = ydl.sanitize_info(dict(job['entry']), True)
            extra = _public(extra)
            if isinstance(last, int):
                extra['__last_playlist_index'] = last  # the padding of %(playlist_index)s
            if workdir is not None:
                policy.guard_filenames(ydl, workdir)
            if guard is not None:
                _guard_files(ydl, guard)
            info = ydl.process_ie_result(entry, download=True, extra_info=extra)
    except WrittenElsewhere as exc:
        ydl.to_screen(f'[download] {exc.name} has already been downloaded on {exc.owner}')
        return {'filenames': [], 'bytes': 0, 'id': entry.get('id'), 'title': entry.get('title'),
                'skipped': str(exc)}
    except DownloadError as exc:
        text = str(exc)
        raise EntryError(_strip_error(text)) from None
    files = []
    for item in (info or {}).get('requested_downloads') or []:
        path = item.get('filepath') or item.get('_filename')
        if path and path not in files:
            files.append(path)
    return {'filenames': files, 'bytes': sum(os.path.getsize(p) for p in files if os.path.isfile(p)),
            'id': (info or {}).get('id'), 'title': (info or {}).get('title')}
