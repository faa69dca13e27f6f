"""One http/https file over several connections (``--async-connections``).

By default (``auto``) the engine starts with one connection and adds more
while each step raises the total rate (csrc/adaptive.c, docs/adaptive.md); a
number fixes the count.  ``-v`` prints one line per download at its end with
the connections used and why (``connections_line``).

The engine splits the file (aria2's rule: a free connection halves the
largest unfinished range while both halves stay at least ``--chunk-size``),
caps every request at ``--http-chunk-size`` / the format's
``downloader_options`` where given (YouTube's 10 MiB), checks every range
reply, and falls back to one connection if the server does not honour
ranges.  The file has holes until it is complete, so it never carries a name
that native yt-dlp would resume from or treat as finished: it is written to
``NAME.part-async`` with a control file ``NAME.part-async.ctl`` (finished
ranges and validators) beside it, and renamed to ``NAME`` when complete.
Running the same command again after any interruption, SIGKILL included,
resumes from the control file.

A download that wrote nothing leaves neither file behind (HttpFD opens its
file with the first byte); one that failed after writing keeps both, as
HttpFD keeps its .part, and the next run resumes from them.  When
``NAME.part-async.ctl.tmp`` (the control file's temporary name while it is
saved) would be longer than the filesystem's NAME_MAX, or ``NAME`` is a
directory, the file is not split: HttpDownload fetches it in order under
HttpFD's own names, so the outcome is yt-dlp's.

Everything else (progress hooks, size limits, throttling, retries, errors)
is HttpDownload's, which this class extends.
"""

from __future__ import annotations

import os
import time
from typing import Any, NoReturn

from . import cookies as cookie_lines, internals
from . import baton, errors, partmeta, summary
from .http_download import POLL_INTERVAL, RETRY_AFTER_STATUSES, HttpDownload, _Abort, _Retry, debug_after_status
from .partmeta import SPARSE_SUFFIX, STATE_SUFFIX
#: the engine's number for "auto": one connection at first, more while each
#: step raises the total rate, up to 16, fewer on pressure (docs/adaptive.md);
#: the default when neither --async-connections nor -N says
AUTO = 0
#: retries of each connection inside the engine (--async-max-retries): none
#: by default, so that --retries/--retry-sleep count every fault as with
#: HttpFD; a connection that fails leaves its range to the others, and the
#: download fails only when no connection is left (then yt-dlp retries and
#: the control file resumes it)
DEFAULT_CONNECTION_RETRIES = 0


#: why a split download used the connections it did (the engine's word,
#: Task.info()['connections_note']) -> the words of the -v line
NOTES = {
    'fell-back': 'a range reply was unusable: fell back to one connection from the first byte',
    'coded': 'not split: the reply is content-coded',
    'no-length': 'not split: the server sent no length',
    'no-ranges': 'not split: the server ignores ranges',
    'max': 'at the maximum',
    'no-gain': 'the last step did not raise the rate, given back',
    'partial-gain': 'the last step raised the rate only partly',
    'limited': 'no more could start (host window, pieces at --chunk-size, or the end of the file)',
    'pressure': 'the server pushed back (429/503/403 or resets)',
    'small': 'too little left to measure another step',
    'none': 'done before a step could be measured',
}


def connections_for(params: dict[str, Any]) -> int:
    """--async-connections (a number, or auto), else an explicit -N (> 1), else auto (0)."""
    value = params.get('async_connections')
    if value == 'auto':
        return AUTO
    if value:
        return int(value)
    fragments = params.get('concurrent_fragment_downloads') or 1
    return int(fragments) if fragments > 1 else AUTO


def sparse_name(filename: str) -> str:
    return filename + SPARSE_SUFFIX


def refusal(fd: Any, filename: str, info_dict: dict[str, Any]) -> str | None:
    """Why this download is not split (the -v line says it), or None when it
    may be; else it is fetched in order by HttpDownload."""
    params = fd.params
    if connections_for(params) == 1:
        return 'fixed by --async-connections 1'
    for key, why in (('test', '--test'), ('nopart', '--no-part')):
        if params.get(key):
            return why
    tmp = fd.temp_name(filename)
    if tmp == '-' or filename == '-':
        return 'written to stdout, in order'
    headers = {k.lower() for k in (info_dict.get('http_headers') or {})}
    if 'range' in headers:
        return 'the format asks for a byte range'
    native_part = os.path.isfile(tmp) and os.path.getsize(tmp) > 0
    if params.get('continuedl', True) and native_part and not os.path.exists(sparse_name(filename)):
        return f'resuming {os.path.basename(tmp)!r} in order, as yt-dlp would'
    if os.path.exists(filename) and not os.path.isfile(filename):
        return 'the target is not a regular file'  # HttpFD fails on it before the first byte; so does the in-order path
    control = sparse_name(filename) + STATE_SUFFIX + partmeta.STATE_TEMP_SUFFIX
    if not partmeta.name_fits(control):
        return (f'its control file {os.path.basename(control)!r} would be longer than the filesystem allows '
                f'({partmeta.name_max(os.path.dirname(control))} bytes); written to {os.path.basename(tmp)!r} '
                'as yt-dlp names it')
    return None


def connections_line(filename: str, report: Any) -> str:
    """The one -v line of a split download: the connections it used and why.

    ``report`` is its ``DownloadTask.connections()`` (a download that went in
    order says why in http_download.py)."""
    name = os.path.basename(filename) or filename
    history = list(report.history)
    peak = report.peak
    note = report.note
    if note == 'fixed':
        why = f'fixed at {history[-1]}'
    else:
        why = NOTES.get(note, note)
        if note == 'max':
            why = f'at the maximum ({history[-1]})'
    steps = ' -> '.join(str(n) for n in history)
    plural = '' if history == [1] else 's'
    return f'[async] {name}: {steps} connection{plural}, peak {peak}; {why}'


def _size_announced(headers: dict[str, str] | None) -> bool:
    """The reply gave the resource's size (Content-Length, or a Content-Range total)."""
    headers = headers or {}
    total = headers.get('content-range', '').rpartition('/')[2].strip()
    return 'content-length' in headers or total.isdigit()


class SegmentedDownload(HttpDownload):
    def __init__(self, fd: Any, engine: Any, api: Any, filename: str, info_dict: dict[str, Any]) -> None:
        super().__init__(fd, engine, api, filename, info_dict)
        self.tmpfilename = sparse_name(filename)
        self.state_path = self.tmpfilename + STATE_SUFFIX
        self.tmp_existed = os.path.lexists(self.tmpfilename)
        self.connections = connections_for(self.params)
        self.min_piece = int(self.params.get('async_chunk_size') or (1 << 20))
        retries = self.params.get('async_max_retries')
        self.connection_retries = int(retries) if retries is not None else DEFAULT_CONNECTION_RETRIES

    def run(self) -> bool:
        RetryManager = internals.load('yt_dlp.utils:RetryManager')

        rate_limit = self.params.get('ratelimit')
        self.engine.set_rate_limit(int(rate_limit) if rate_limit else None)
        fresh = not self.params.get('continuedl', True)
        done = False
        try:
            for retry in RetryManager(self.params.get('retries'), summary.counting_report_retry(self.fd)):
                try:
                    done = self._attempt_segmented(fresh)
                    return done
                except _Retry as exc:
                    retry.error = exc.error
                    fresh = False
                except _Abort:
                    return False
            return False
        finally:
            if not done and self.bytes_seen <= 0:
                self._discard_new_tmp()
            self._note_connections()

    bytes_seen = 0      # most bytes the file held at any point of this run
    task: Any = None    # the engine task of the last attempt

    def _note_connections(self) -> None:
        """The -v line: the connections the last attempt used and why."""
        report = self.task.connections() if self.task is not None else None
        if report is not None:
            debug_after_status(self.fd, connections_line(self.filename, report))

    def _attempt_segmented(self, fresh: bool) -> bool:
        self._sleep_retry_after()
        if fresh:
            for path in (self.state_path, self.tmpfilename):
                try:
                    os.remove(path)
                except FileNotFoundError:
                    pass
        sent = cookie_lines.to_netscape_lines(self.ydl.cookiejar)
        kwargs: dict[str, Any] = dict(self.submit_options)
        task = self._with_file_access_retries(lambda: self.engine.submit(
            self.url, self.tmpfilename,
            headers=list(self.headers.items()), cookies=sent,
            connections='auto' if self.connections == AUTO else self.connections, min_piece=self.min_piece,
            max_request=self.chunk_size or None, state_path=self.state_path,
            max_retries=self.connection_retries, **kwargs))
        if task.resumed_bytes:
            self.fd.report_resuming_byte(task.resumed_bytes)
        self.task = task
        try:
            result = self._wait_segmented(task)
        except KeyboardInterrupt:
            self._cancel(task)
            self.bytes_seen = max(self.bytes_seen, task.progress().downloaded_bytes)
            raise
        except self.api.AsyncDownloadError as exc:
            self.bytes_seen = max(self.bytes_seen, int(getattr(exc, 'downloaded', 0) or 0))
            if self.bytes_seen > 0:
                self._report_destination()   # HttpFD announces it with the first byte, even if it fails
            self._segmented_failure(exc)
        except OSError as exc:
            self._write_failed(exc)
        return self._segmented_done(result, sent)

    def _segmented_failure(self, exc: Any) -> NoReturn:
        """Raise what an engine error of the whole task means for yt-dlp."""
        if isinstance(exc, self.api.HTTPStatusError):
            error = errors.to_ytdlp(exc, self.api)
            status = int(exc.http_status or 0)
            if status in RETRY_AFTER_STATUSES:
                self._note_retry_after(exc)
            if 500 <= status < 600 or status == 429:
                raise _Retry(error)
            if self.bytes_seen <= 0:
                # bytes on disk stay resumable (.part-async + .ctl), as HttpFD keeps its .part
                self._discard_new_tmp()
            raise error
        resumed = self.task.resumed_bytes if self.task is not None else 0
        if isinstance(exc, self.api.ShortBodyError) and int(getattr(exc, 'downloaded', 0) or 0) <= resumed:
            self._no_data_blocks()   # HttpFD: an attempt that read no byte at all is an error, not retried
        if isinstance(exc, (self.api.ShortBodyError, self.api.RangeError)):
            raise _Retry(errors.to_ytdlp(exc, self.api))
        if isinstance(exc, self.api.NetworkError):
            error = errors.transport_error(exc)
            if errors.is_fatal_transport(error):
                raise error
            raise _Retry(error)
        raise exc

    def _segmented_done(self, result: Any, sent: list[str]) -> bool:
        try:
            cookie_lines.store_lines(self.ydl.cookiejar, result.cookies or (), sent)
        except Exception as exc:
            self.fd.write_debug(f'[async] could not store cookies: {exc}')
        if result.resource_size is not None and _size_announced(result.headers):
            # HttpFD checks the size the server announced; a length learnt by reading to
            # the end was never checked by yt-dlp, which keeps such a file
            self._check_sizes(result.resource_size, final=True)
        if result.restarted and self.task is not None and self.task.resumed_bytes > 0:
            # the bytes resumed were dropped (the server ignored the ranges): HttpFD's line
            self.fd.report_unable_to_resume()
        self.last_modified = result.last_modified or (result.headers or {}).get('last-modified')
        self.resume_len = result.downloaded_bytes
        if self.resume_len <= 0:
            self.fd.to_stderr('\n')
            self.fd.report_error('Did not get any data blocks')
            return False
        self._drop_stale_tail(self.resume_len)
        # HttpFD's last 'downloading' hook has every byte: also when the engine
        # was done before the first poll (a hook cancelling a download sees one)
        fetched = self.resume_len - (self.task.resumed_bytes if self.task is not None else 0)
        elapsed = getattr(result, 'elapsed', None)
        self._emit_downloading(self.resume_len, self.resume_len, fetched / elapsed if elapsed else None, 0)
        self._set_filesize_xattr(result.resource_size if _size_announced(result.headers) else None)
        self.fd.try_rename(self.tmpfilename, self.filename)
        stale = [self.state_path]
        old_part = self.fd.temp_name(self.filename)
        if old_part != self.filename:
            # --no-continue: HttpFD would have overwritten it; else it was left beside our
            # .part-async (an earlier run without the plugin): HttpFD's success leaves none
            stale.append(old_part)
        for path in stale:
            try:
                os.remove(path)
            except OSError:
                pass
        self._set_mtime()
        self._emit_finished(self.resume_len)
        return True

    def _drop_stale_tail(self, size: int) -> None:
        """The engine writes in place and never shortens the file: cut what an
        older, longer .part-async held past the end (a control file that could
        not be used, a resource that shrank since)."""
        if os.path.getsize(self.tmpfilename) > size:
            os.truncate(self.tmpfilename, size)

    def _discard_new_tmp(self) -> None:
        """Leave nothing behind a download that wrote nothing (as HttpFD,
        which opens the file with the first byte)."""
        if self.tmp_existed:
            return
        for path in (self.state_path, self.tmpfilename):
            try:
                os.remove(path)
            except OSError:
                pass

    def _sizes_allowed(self, size: int) -> bool:
        low, high = self.params.get('min_filesize'), self.params.get('max_filesize')
        return not ((low is not None and size < low) or (high is not None and size > high))

    def _wait_segmented(self, task: Any) -> Any:
        """Poll until done: one progress line with the summed bytes and speed."""
        last = -1
        started = time.time()
        while not baton.wait_task(task, POLL_INTERVAL):  # the baton is given up while waiting (playlist.py)
            progress = task.progress()
            total = progress.resource_size
            if total is not None and not self._sizes_allowed(total):
                self._cancel(task)          # first: the engine saves its state file on cancel
                self._check_sizes(total, final=True)   # the message, the clean-up, _Abort
            self.bytes_seen = max(self.bytes_seen, progress.downloaded_bytes)
            if progress.downloaded_bytes != last and progress.downloaded_bytes > 0:
                last = progress.downloaded_bytes
                speed, eta = progress.speed, progress.eta
                if speed is None:       # the engine's first sample comes after 0.25 s
                    fetched = progress.downloaded_bytes - task.resumed_bytes
                    speed = self.fd.calc_speed(started, time.time(), fetched)
                    if speed and total is not None:
                        eta = self.fd.calc_eta(speed, max(total - progress.downloaded_bytes, 0))
                self._emit_downloading(progress.downloaded_bytes, total, speed, eta)
            self._check_throttle(task, progress.speed)
        return task.result()
