"""One http/https download through the engine, with HttpFD's behaviour.

This is the body of ``AsyncFileDownloader.real_download``.  It follows HttpFD
(yt_dlp/downloader/http.py) step for step, but every byte is moved by the
engine's thread; this Python thread only plans the requests, polls
``task.progress()`` every POLL_INTERVAL seconds to call the progress hooks,
and turns the engine's errors into yt-dlp's:

* ``NAME.part`` and resume from its size (``--continue``), ``--no-continue``
  and ``--no-part``; a server that ignores the Range restarts the file;
* ``--test``: the first 10241 bytes only;
* ``http_chunk_size`` (params or ``downloader_options``): sequential ranged
  requests of 95-100 % of that size, like HttpFD;
* a caller-supplied ``Range`` header (fragments) is honoured;
* ``--retries``/``--retry-sleep`` through yt-dlp's RetryManager, resuming from
  the bytes on disk; 4xx raises ``HTTPError`` at once, 5xx/429/network faults
  are retried (after the server's ``Retry-After``, at most RETRY_AFTER_CAP
  seconds), a short body is ``ContentTooShortError``;
* the validator (ETag / Last-Modified) of the bytes in ``.part`` is kept
  (partmeta.py) and sent as ``If-Range`` on resume: a changed resource
  restarts from byte 0 instead of giving a mixed file;
* ``-o -``: a retry continues from the bytes already written to stdout
  (Range + If-Range, Content-Range checked); when the server cannot send the
  rest into a pipe, the download fails rather than writing bytes twice.  A
  stdout that is a regular file is written from its current position
  (``{ echo x; yt-dlp -o - ...; } > f``, several videos one after another),
  which is left after the last byte, as HttpFD's writes leave it;
* a failure leaves no empty ``.part`` this run created (HttpFD opens the file
  with the first byte); a finished file removes the ``.part-async`` and
  ``.ctl`` a split download of the same name left behind;
* 416 on resume: finished when the size matches within 100 bytes, else restart;
* ``--min-filesize``/``--max-filesize``, ``--throttled-rate`` (ThrottledDownload),
  ``--limit-rate`` (engine rate limit), ``--no-mtime``, ``-o -`` (stdout),
  ``--file-access-retries``; cookies in and out of ``ydl.cookiejar``.
"""

from __future__ import annotations

import enum
import errno
import fcntl
import os
import random
import re
import stat
import sys
import time
from typing import Any, Callable, NoReturn

from . import cookies as cookie_lines, internals
from . import baton, errors, partmeta, request_options, summary

POLL_INTERVAL = 0.1
THROTTLE_SECONDS = 3.0
CANCEL_WAIT = 2.0
#: longest Retry-After (seconds) honoured before a retry; a longer one is
#: cut to this with a warning
RETRY_AFTER_CAP = 60.0
#: statuses retried within --retries, after the server's Retry-After
RETRY_AFTER_STATUSES = frozenset({429, 503})
_UNSATISFIED_RANGE = re.compile(r'bytes\s+\*/(\d+)')


class _Step(enum.Enum):
    DONE = 'a request completed'
    AGAIN = 'redo the request (restart from byte 0)'


def debug_after_status(fd: Any, line: str) -> None:
    """``[debug] line``, written once yt-dlp has ended the status line (AsyncFileDownloader.download)."""
    later = getattr(fd, 'debug_after_status', None)
    if callable(later):
        later(line)
    else:
        fd.write_debug(line)


class _Retry(Exception):
    """Raised inside one attempt for an error yt-dlp's --retries covers."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


class _Abort(Exception):
    """The download stops with ``real_download`` returning False."""


class _Changed(Exception):
    """The resource's size is not the one the bytes on disk came from."""


class HttpDownload:
    def __init__(self, fd: Any, engine: Any, api: Any, filename: str, info_dict: dict[str, Any]) -> None:
        self.fd = fd
        self.ydl = fd.ydl
        self.params: dict[str, Any] = fd.params
        self.engine = engine
        self.api = api
        self.filename = filename
        self.info_dict = info_dict
        self.url: str = info_dict['url']

        headers = request_options.request_headers(info_dict)
        self.request_proxy = request_options.split_proxy_headers(headers)
        self.url = request_options.url_credentials(self.url, headers)
        parse_http_range = internals.load('yt_dlp.utils:parse_http_range')
        self.req_start, self.req_end, _ = parse_http_range(headers.pop('Range', None))
        self.headers = headers

        self.tmpfilename: str = fd.temp_name(filename)
        self.to_stdout = self.tmpfilename == '-'
        self.is_test = bool(self.params.get('test'))
        self.chunk_size: int = int(
            fd._TEST_FILE_SIZE if self.is_test else (
                self.params.get('http_chunk_size')
                or (info_dict.get('downloader_options') or {}).get('http_chunk_size')
                or 0))
        # anything at the name (a FIFO, a device node: --no-part -o /dev/null) is not
        # ours to remove after a failure; only a regular file's bytes are resumed
        self.tmp_existed = not self.to_stdout and os.path.lexists(self.tmpfilename)
        self.resume_len = 0
        if self.params.get('continuedl', True) and self.tmp_existed and os.path.isfile(self.tmpfilename):
            self.resume_len = os.path.getsize(self.tmpfilename)
        self.is_resume = self.resume_len > 0
        self.ranges_ignored = False
        self.content_len: int | None = None   # size of the whole remote resource
        self.start_time = time.time()
        self.throttle_start: float | None = None
        self.destination_reported = False
        self.unable_to_resume_reported = False
        self.last_modified: str | None = None
        self.stdout_written = 0          # bytes already in the pipe (-o -)
        self.stdout_origin: int | None = None  # where byte 0 goes when stdout is a regular file
        self.stdout_append = False       # ... opened with O_APPEND (pwrite appends, whatever the offset)
        self.stdout_located = False
        self.retry_wait = 0.0            # Retry-After to sleep before the next attempt
        self.validator: str | None = None  # ETag / Last-Modified of the bytes held
        self.known_size: int | None = None  # size of the resource they came from
        if self.resume_len > 0:
            self.validator = partmeta.read(self.tmpfilename)
            self.known_size = partmeta.read_size(self.tmpfilename)
        self.submit_options = request_options.submit_options(
            self.ydl, self.params, self.url, self.request_proxy)

    #: why this download goes in order (segmented_download.refusal), for the
    #: one -v line at its end; None: no line (SegmentedDownload prints its own)
    not_split: str | None = None

    # ----------------------------------------------------------------- entry
    def run(self) -> bool:
        RetryManager = internals.load('yt_dlp.utils:RetryManager')

        rate_limit = self.params.get('ratelimit')
        self.engine.set_rate_limit(int(rate_limit) if rate_limit else None)
        done = False
        try:
            for retry in RetryManager(self.params.get('retries'), summary.counting_report_retry(self.fd)):
                try:
                    done = self._attempt()
                    return done
                except _Retry as exc:
                    retry.error = exc.error
                    self.resume_len = self._bytes_on_disk()
                except _Abort:
                    return False
            return False
        finally:
            self._settle_stdout()
            if not done:
                self._discard_empty_new_tmp()
            if self.not_split is not None:
                debug_after_status(self.fd, f'[async] {os.path.basename(self.filename) or self.filename}: '
                                              f'1 connection, not split: {self.not_split}')

    def _sleep_retry_after(self) -> None:
        """Wait what the last 429/503 asked for (Retry-After) before the next request."""
        wait, self.retry_wait = self.retry_wait, 0.0
        if wait > 0:
            # yt-dlp alone prints no line here (it does not wait): only -v says why the pause
            self.fd.write_debug(f'[async] sleeping {wait:.2f} seconds as the server asked (Retry-After)')
            time.sleep(wait)

    def _note_retry_after(self, exc: Any) -> None:
        self.retry_wait = retry_after_seconds(exc, self.fd.report_warning)

    # -------------------------------------------------------------- planning
    def _bytes_on_disk(self) -> int:
        if self.to_stdout:
            return self.stdout_written
        try:
            return os.path.getsize(self.tmpfilename)
        except OSError:
            return 0

    def _target_len(self) -> int | None:
        """Bytes the finished file holds, once the resource size is known."""
        if self.content_len is None:
            return None
        end = self.content_len if self.req_end is None else min(self.content_len, self.req_end + 1)
        size = end - (self.req_start or 0)
        if self.is_test:
            size = min(size, self.fd._TEST_FILE_SIZE)
        return max(size, 0)

    def _plan(self) -> tuple[int | None, int | None]:
        """(first, last) resource bytes of the next request, inclusive; None = open."""
        chunk = self.chunk_size
        if chunk and not self.is_test:
            chunk = random.randint(int(chunk * 0.95), chunk)
        if self.ranges_ignored:
            return None, None
        if self.resume_len > 0:
            start: int | None = self.resume_len + (self.req_start or 0)
            if self.is_resume:
                self.fd.report_resuming_byte(self.resume_len)
        elif self.req_start is not None:
            start = self.req_start
        elif chunk:
            start = 0
        else:
            start = None
        self.is_resume = False
        if chunk and start is not None:
            end: int | None = start + chunk - 1
            if self.req_end is not None:
                end = min(end, self.req_end)  # type: ignore[type-var]
        else:
            end = self.req_end
        if end is not None and self.content_len is not None and end >= self.content_len:
            end = self.content_len - 1
        return start, end

    # --------------------------------------------------------------- attempt
    #: a request of this attempt wrote bytes (HttpFD keeps its file open across
    #: --http-chunk-size requests: an empty one after that is not "no data blocks")
    attempt_wrote = False

    def _attempt(self) -> bool:
        self._sleep_retry_after()
        self.attempt_wrote = False
        while True:
            start, end = self._plan()
            if start is not None and end is not None and start > end:
                self.resume_len = 0
                self._truncate_next = True
                raise _Retry(Exception(f'Conflicting range. (start={start} > end={end})'))
            outcome = self._request(start, end)
            if isinstance(outcome, bool):
                return outcome
            if outcome is _Step.AGAIN:
                continue
            target = self._target_len()
            if self.is_test or not self.chunk_size or target is None or self.resume_len >= target:
                return self._finish()

    _truncate_next = False
    base = 0
    last_total: int | None = None

    def _submit(self, start: int | None, end: int | None, base: int, cookies: list[str]) -> Any:
        kwargs: dict[str, Any] = dict(self.submit_options)
        kwargs['headers'] = list(self.headers.items())
        kwargs['cookies'] = cookies
        kwargs['connections'] = 1             # in order, one connection
        if start is not None:
            kwargs['range'] = (start, None if end is None else end + 1)
            kwargs['offset'] = base
        truncate = base == 0 or self._truncate_next
        if start is not None and base > 0 and self.validator and not truncate:
            kwargs['if_range'] = self.validator   # a changed resource answers 200: restart, never mix
        if self.to_stdout:
            sys.stdout.flush()
            buffer = getattr(sys.stdout, 'buffer', None)
            if buffer is not None:
                buffer.flush()
            self._locate_stdout()
            if self.stdout_origin is not None:
                # O_APPEND: pwrite appends anyway; an offset before the range makes a
                # restart from byte 0 (which would append the file again) impossible
                kwargs['offset'] = 0 if self.stdout_append and base > 0 else self.stdout_origin + base
            return self._with_file_access_retries(
                lambda: self.engine.submit(self.url, fileno=1, **kwargs))
        kwargs['truncate'] = truncate
        # the engine holds the body of a reply that would write bytes under a
        # validator not yet stored beside the .part, until _store_held released it
        kwargs['hold_new_validator'] = not self.is_test
        return self._with_file_access_retries(lambda: self.engine.submit(self.url, self.tmpfilename, **kwargs))

    def _locate_stdout(self) -> None:
        """A regular file as stdout: the position its first byte goes to (the
        engine writes it with pwrite, which neither reads nor moves that position)."""
        if self.stdout_located:
            return
        self.stdout_located = True
        try:
            if not stat.S_ISREG(os.fstat(1).st_mode):
                return               # a pipe or a terminal: written in order
            self.stdout_append = bool(fcntl.fcntl(1, fcntl.F_GETFL) & os.O_APPEND)
            self.stdout_origin = os.lseek(1, 0, os.SEEK_CUR)
        except OSError:
            self.stdout_origin = None

    def _stdout_rewritable(self) -> bool:
        """Whether bytes already written to stdout can be written again from byte 0."""
        return self.stdout_origin is not None and not self.stdout_append

    def _settle_stdout(self) -> None:
        """Leave a regular-file stdout's position after the last byte, as writes would."""
        origin = self.stdout_origin
        if self.to_stdout and origin is not None and not self.stdout_append:
            try:
                os.lseek(1, origin + self.stdout_written, os.SEEK_SET)
            except OSError:
                pass

    def _with_file_access_retries(self, submit: Callable[[], Any]) -> Any:
        RetryManager = internals.load('yt_dlp.utils:RetryManager')

        def report(err: BaseException, count: int, retries: int) -> None:
            RetryManager.report_retry(
                err, count, retries, info=self.fd.to_screen,
                warn=lambda e: (time.sleep(0.01), self.fd.to_screen(f'[download] Unable to open file: {e}')),
                error=lambda e: None,
                sleep_func=(self.params.get('retry_sleep_functions') or {}).get('file_access'))

        last: OSError | None = None
        for retry in RetryManager(self.params.get('file_access_retries', 3), report):
            try:
                return submit()
            except OSError as err:
                last = err
                if err.errno in (errno.EACCES, errno.EINVAL):
                    retry.error = err
                    continue
                break
        self.fd.report_error(f'unable to open for writing: {last}')
        raise _Abort()

    def _request(self, start: int | None, end: int | None) -> bool | _Step:
        """Run one request: the final outcome, or the step to take next."""
        self.base = start - (self.req_start or 0) if start is not None else 0
        sent = cookie_lines.to_netscape_lines(self.ydl.cookiejar)
        task = self._submit(start, end, self.base, sent)
        self._truncate_next = False
        try:
            result = self._wait(task, start)
        except KeyboardInterrupt:
            self._cancel(task)
            self._note_ended(task)
            raise
        except _Changed:
            return self._restart_changed()
        except self.api.AsyncDownloadError as exc:
            if int(getattr(exc, 'downloaded', 0) or 0) > 0:
                self._report_destination()   # HttpFD announces it with the first byte, even if the request fails
            self._note_failure(exc)
            return self._failed(exc, start)
        except OSError as exc:
            self._write_failed(exc)
        return self._succeeded(result, start, end, sent)

    def _write_failed(self, exc: OSError) -> NoReturn:
        """HttpFD's lines when writing fails: the file was opened (Destination), then the error."""
        self._report_destination()
        self.fd.to_stderr('\n')
        self.fd.report_error(f'unable to write data: {errors.write_error_text(exc)}')
        raise _Abort()

    def _note_ended(self, task: Any) -> None:
        """Keep what a cancelled task wrote (validator, bytes in the pipe)."""
        try:
            task.result(0)
        except self.api.AsyncDownloadError as exc:
            self._note_failure(exc)
        except Exception:
            pass

    def _note_failure(self, exc: Any) -> None:
        """A failed request may have written bytes: count them (stdout) and keep
        the validator of the response they came from (.part)."""
        status = int(getattr(exc, 'http_status', 0) or 0)
        downloaded = int(getattr(exc, 'downloaded', 0) or 0)
        if not 200 <= status < 300 or downloaded <= 0:
            return
        headers = {k.lower(): v for k, v in (getattr(exc, 'headers', None) or {}).items()}
        validator = partmeta.choose(headers.get('etag'), headers.get('last-modified'))
        self.known_size = _resource_size(headers, status) or self.known_size
        if self.base > 0 and self.validator and validator and validator != self.validator:
            self.base = 0                    # the engine restarted a changed resource from byte 0:
            self._cut_after(downloaded)      # the older tail must not count as resumable bytes
        self._keep_validator(validator)
        if self.to_stdout:
            self.stdout_written = self.base + downloaded

    def _keep_validator(self, validator: str | None) -> None:
        self.validator = validator
        if not self.to_stdout:
            partmeta.write(self.tmpfilename, validator, self.known_size)

    def _check_size(self, task: Any, start: int | None, size: int | None) -> None:
        """A resumed request must come from a resource of the size the bytes on disk
        came from (stored as soon as a response is known, even if the validator is not)."""
        if size is None or size == self.known_size:
            return
        if start and self.base > 0 and self.known_size is not None:
            self._cancel(task)
            raise _Changed()
        self.known_size = size
        if not self.to_stdout and not self.is_test:
            partmeta.write_size(self.tmpfilename, size)

    def _store_held(self, task: Any, progress: Any) -> None:
        """The engine holds a reply before its first byte: store its validator and
        size on the .part (bytes from its position on are of an older reply, and go),
        then let the body be written.  A SIGKILL at any moment leaves no byte of a
        reply whose validator is not stored."""
        number, position = progress.hold
        if self._bytes_on_disk() > position:
            self._cut_after(position)
        size = progress.resource_size if progress.resource_size is not None else self.known_size
        partmeta.write(self.tmpfilename, partmeta.choose(progress.etag, progress.last_modified), size)
        task.release(number)

    def _restart_changed(self) -> _Step:
        self.fd.write_debug(f'[async] the resource is no longer {self.known_size} bytes: '
                            'restarting from byte 0 instead of resuming')
        self._report_unable_to_resume()
        self.resume_len = 0
        self._truncate_next = True
        self.validator = self.known_size = None
        if self.to_stdout:
            self.fd.report_error('unable to continue the download to stdout: the file changed on the server')
            raise _Abort()
        return _Step.AGAIN

    def _failed(self, exc: Any, start: int | None) -> bool | _Step:
        """An engine error of one request: the next step, or the error to raise."""
        if isinstance(exc, self.api.RangeError):
            return self._ranges_ignored(start)
        if isinstance(exc, self.api.HTTPStatusError):
            return self._http_status_error(exc, start)
        if isinstance(exc, self.api.ShortBodyError):
            if int(getattr(exc, 'downloaded', 0) or 0) <= 0 and not self.attempt_wrote:
                self._no_data_blocks()   # HttpFD: a body that ends before its first byte is not retried
            raise _Retry(errors.content_too_short(exc, self.base, self._announced_total(exc)))
        if isinstance(exc, self.api.NetworkError):
            error = errors.transport_error(exc)
            if errors.is_fatal_transport(error):
                raise error
            raise _Retry(error)
        if isinstance(exc, self.api.FileSizeError):
            self.fd.to_screen(f'\r[download] File is larger than max-filesize ({exc}). Aborting.')
            self._discard_new_tmp()
            raise _Abort()
        raise exc

    def _succeeded(self, result: Any, start: int | None, end: int | None, sent: list[str]) -> _Step:
        self.attempt_wrote = self.attempt_wrote or result.downloaded_bytes > 0
        if self.to_stdout:
            self.stdout_written = (0 if result.restarted else self.base) + result.downloaded_bytes
        if (start is not None and end is not None and not (self.is_test and start == 0)
                and getattr(result, 'http_status', 206) == 200
                and 'content-range' not in (result.headers or {})):
            return self._ranges_ignored(start)  # a 200 without Content-Range is the whole file, not our range
        try:
            cookie_lines.store_lines(self.ydl.cookiejar, result.cookies or (), sent)
        except Exception as exc:
            self.fd.write_debug(f'[async] could not store cookies: {exc}')
        if result.restarted:
            self._report_unable_to_resume()
            self.base = 0
            self._cut_after(result.downloaded_bytes)   # an older, longer .part keeps no tail
        if not self.is_test:
            self.known_size = result.resource_size or self.known_size
            self._keep_validator(partmeta.choose(result.etag, result.last_modified))
        if result.resource_size is not None:
            self.content_len = result.resource_size
        self.last_modified = result.last_modified or (result.headers or {}).get('last-modified')
        self.resume_len = self.base + result.downloaded_bytes
        total = self._total_for(result.resource_size, None, self.base)
        if total is not None:
            self._check_sizes(total, final=True)
        if self.is_test and self.resume_len > self.fd._TEST_FILE_SIZE:
            self._trim_test_download()
        elapsed = getattr(result, 'elapsed', None)
        speed = result.downloaded_bytes / elapsed if elapsed else None
        self._emit_downloading(self.resume_len, total, speed, 0 if total is not None else None)
        return _Step.DONE

    # --------------------------------------------------------------- waiting
    def _wait(self, task: Any, start: int | None) -> Any:
        """Poll the task until it ends, calling the progress hooks; its result."""
        started = time.time()
        last_bytes = -1
        while not baton.wait_task(task, POLL_INTERVAL):  # the baton is given up while waiting (playlist.py)
            progress = task.progress()
            if start and progress.total_bytes is not None and progress.total_bytes == progress.resource_size:
                self._report_unable_to_resume()  # the server sent the whole file: rewritten from byte 0
                self.base = 0
            self._check_size(task, start, progress.resource_size)
            if progress.hold is not None:
                self._store_held(task, progress)
            written = self.base + progress.downloaded_bytes
            total = self._total_for(progress.resource_size, progress.total_bytes, self.base)
            self.last_total = total if total is not None else self.last_total
            if total is not None and not self._check_sizes(total, final=False):
                self._cancel(task)
                raise _Abort()
            if self.is_test and written >= self.fd._TEST_FILE_SIZE:
                self._cancel(task)  # the server ignored the test Range: keep the first bytes only
                return _TestCut(progress)
            if progress.downloaded_bytes != last_bytes and progress.downloaded_bytes > 0:
                last_bytes = progress.downloaded_bytes
                speed = progress.speed
                if speed is None:
                    speed = self.fd.calc_speed(started, time.time(), progress.downloaded_bytes)
                eta = progress.eta
                if eta is None and total is not None and speed:
                    eta = self.fd.calc_eta(speed, max(total - written, 0))
                self._emit_downloading(written, total, speed, eta)
            self._check_throttle(task, progress.speed)
        return task.result()

    def _cancel(self, task: Any) -> None:
        try:
            task.cancel()
            baton.wait_task(task, CANCEL_WAIT)
        except Exception:
            pass

    def _check_throttle(self, task: Any, speed: float | None) -> None:
        limit = self.params.get('throttledratelimit') or 0
        if not speed or not limit:
            return
        now = time.time()
        if speed < limit:
            if self.throttle_start is None:
                self.throttle_start = now
            elif now - self.throttle_start > THROTTLE_SECONDS:
                self._cancel(task)
                ThrottledDownload = internals.load('yt_dlp.utils:ThrottledDownload')
                raise ThrottledDownload()
        else:
            self.throttle_start = None

    # ----------------------------------------------------------- accounting
    def _total_for(self, resource_size: int | None, task_total: int | None, base: int) -> int | None:
        if resource_size is not None:
            end = resource_size if self.req_end is None else min(resource_size, self.req_end + 1)
            total: int | None = end - (self.req_start or 0)
        elif task_total is not None:
            total = base + task_total
        else:
            total = None
        if total is not None and self.is_test:
            total = min(total, self.fd._TEST_FILE_SIZE)
        return total

    def _announced_total(self, exc: Any) -> int | None:
        """The whole file's size from the failed response's headers (else the last progress)."""
        parse_http_range = internals.load('yt_dlp.utils:parse_http_range')
        headers = {k.lower(): v for k, v in (getattr(exc, 'headers', None) or {}).items()}
        _, _, resource_size = parse_http_range(headers.get('content-range'))
        length = headers.get('content-length')
        task_total = int(length) if length and length.isdigit() else None
        total = self._total_for(resource_size, task_total, self.base)
        return total if total is not None else self.last_total

    def _check_sizes(self, size: int, final: bool) -> bool:
        """HttpFD's --min-filesize/--max-filesize check; False (and a message) to abort."""
        low, high = self.params.get('min_filesize'), self.params.get('max_filesize')
        message = None
        if low is not None and size < low:
            message = f'File is smaller than min-filesize ({size} bytes < {low} bytes). Aborting.'
        elif high is not None and size > high:
            message = f'File is larger than max-filesize ({size} bytes > {high} bytes). Aborting.'
        if message is None:
            return True
        self.fd.to_screen(f'\r[download] {message}')
        self._discard_new_tmp()
        if final:
            raise _Abort()
        return False

    def _discard_new_tmp(self) -> None:
        """Remove a .part this run created and nothing else may use (as HttpFD never opened it)."""
        if not self.to_stdout and not self.tmp_existed:
            partmeta.clear(self.tmpfilename)
            try:
                os.remove(self.tmpfilename)
            except OSError:
                pass

    def _cut_after(self, size: int) -> None:
        if self.to_stdout:
            origin = self.stdout_origin
            if origin is not None and not self.stdout_append:
                try:
                    os.ftruncate(1, origin + size)
                except OSError:
                    pass
            return
        try:
            with open(self.tmpfilename, 'r+b') as f:
                f.truncate(size)
        except OSError:
            pass

    def _discard_empty_new_tmp(self) -> None:
        """HttpFD opens the file with the first byte; leave no empty .part behind an error."""
        if not self.to_stdout and not self.tmp_existed and self._bytes_on_disk() == 0:
            self._discard_new_tmp()

    def _trim_test_download(self) -> None:
        if not self.to_stdout:
            with open(self.tmpfilename, 'r+b') as f:
                f.truncate(self.fd._TEST_FILE_SIZE)
        self.resume_len = self.fd._TEST_FILE_SIZE

    def _report_unable_to_resume(self) -> None:
        if not self.unable_to_resume_reported and (self.resume_len > 0 or self.is_resume):
            self.unable_to_resume_reported = True
            self.fd.report_unable_to_resume()

    def _report_destination(self) -> None:
        if not self.destination_reported:
            self.destination_reported = True
            self.fd.report_destination(self.filename)

    def _emit_downloading(self, written: int, total: int | None,
                          speed: float | None, eta: float | None) -> None:
        if written <= 0 and total is None:
            return
        self._report_destination()
        self.fd._hook_progress({
            'status': 'downloading',
            'downloaded_bytes': written,
            'total_bytes': total,
            'tmpfilename': self.tmpfilename,
            'filename': self.filename,
            'eta': None if eta is None else int(eta),   # HttpFD's is whole seconds
            'speed': speed,
            'elapsed': time.time() - self.start_time,
            'ctx_id': self.info_dict.get('ctx_id'),
        }, self.info_dict)

    # ------------------------------------------------------------ outcomes
    def _ranges_ignored(self, start: int | None) -> _Step:
        """A bounded range got a 200: like HttpFD, fetch the whole resource from byte 0."""
        if self.ranges_ignored:
            raise _Retry(errors.transport_error(Exception('the server ignored an unbounded request')))
        if self.to_stdout and self.stdout_written > 0 and not self._stdout_rewritable():
            self.fd.to_stderr('\n')
            self.fd.report_error(
                f'unable to continue the download to stdout after {self.stdout_written} bytes: the server '
                'did not send the rest (it ignored the Range request or the file changed), and bytes '
                'already written to stdout cannot be taken back')
            raise _Abort()
        if self.to_stdout and self.stdout_written > 0:
            self._cut_after(0)           # a regular file: written again from its first byte
            self.stdout_written = 0
        if start:
            self._report_unable_to_resume()
        self.ranges_ignored = True
        self.resume_len = 0
        self._truncate_next = True
        return _Step.AGAIN

    def _http_status_error(self, exc: Any, start: int | None) -> bool | _Step:
        status = int(getattr(exc, 'http_status', 0) or 0)
        if status == 416 and start and self.resume_len > 0:
            return self._range_not_satisfiable(exc)
        error = errors.to_ytdlp(exc, self.api)
        if status in RETRY_AFTER_STATUSES:
            self._note_retry_after(exc)
        if 500 <= status < 600 or status == 429:
            raise _Retry(error)
        self._discard_empty_new_tmp()
        raise error

    def _range_not_satisfiable(self, exc: Any) -> bool | _Step:
        headers = {k.lower(): v for k, v in (getattr(exc, 'headers', None) or {}).items()}
        match = _UNSATISFIED_RANGE.search(headers.get('content-range', ''))
        size = int(match.group(1)) - (self.req_start or 0) if match else None
        # HttpFD takes a .part within 100 bytes of the size as complete; only an
        # exact match is: shorter misses the tail, longer keeps bytes that are
        # not the resource's (a .part of another version): fetched again instead
        if size is not None and size == self.resume_len:
            self.fd.report_file_already_downloaded(self.filename)
            partmeta.clear(self.tmpfilename)
            self.fd.try_rename(self.tmpfilename, self.filename)
            partmeta.remove_split_leftovers(self.filename)
            self.fd._hook_progress({
                'filename': self.filename,
                'status': 'finished',
                'downloaded_bytes': self.resume_len,
                'total_bytes': self.resume_len,
            }, self.info_dict)
            return True
        self._report_unable_to_resume()
        self.resume_len = 0
        self._truncate_next = True
        return _Step.AGAIN

    def _no_data_blocks(self) -> NoReturn:
        """HttpFD's end when an attempt read no byte at all: an error, no retry."""
        self.fd.to_stderr('\n')
        self.fd.report_error('Did not get any data blocks')
        raise _Abort()

    def _finish(self) -> bool:
        byte_counter = self.resume_len
        if byte_counter <= 0:
            self.fd.to_stderr('\n')
            self.fd.report_error('Did not get any data blocks')
            return False
        self._report_destination()
        if not self.to_stdout:
            partmeta.clear(self.tmpfilename)
            self._set_filesize_xattr(self.content_len)
            self.fd.try_rename(self.tmpfilename, self.filename)
            partmeta.remove_split_leftovers(self.filename)
            self._set_mtime()
        self._emit_finished(byte_counter)
        return True

    def _set_filesize_xattr(self, size: int | None) -> None:
        """--xattr-set-filesize (yt-dlp up to 2025.x): the announced size on the file, as HttpFD."""
        if not self.params.get('xattr_set_filesize') or size is None:
            return
        write_xattr = internals.load('yt_dlp.utils:write_xattr')
        try:
            write_xattr(self.tmpfilename, 'user.ytdl.filesize', str(size).encode())
        except (internals.load('yt_dlp.utils:XAttrUnavailableError'),
                internals.load('yt_dlp.utils:XAttrMetadataError')) as err:
            self.fd.report_error(f'unable to set filesize xattr: {err}')

    def _set_mtime(self) -> None:
        """--mtime: the file gets the server's Last-Modified, as HttpFD does."""
        if self.params.get('updatetime') and self.last_modified:
            self.info_dict['filetime'] = self.fd.try_utime(self.filename, self.last_modified)

    def _emit_finished(self, byte_counter: int) -> None:
        self.fd._hook_progress({
            'downloaded_bytes': byte_counter,
            'total_bytes': byte_counter,
            'filename': self.filename,
            'status': 'finished',
            'elapsed': time.time() - self.start_time,
            'ctx_id': self.info_dict.get('ctx_id'),
        }, self.info_dict)


class _TestCut:
    """Result stand-in when --test stopped a transfer at 10241 bytes."""

    def __init__(self, progress: Any) -> None:
        self.downloaded_bytes = progress.downloaded_bytes
        self.resource_size = progress.resource_size
        self.restarted = False
        self.cookies: list[str] = []
        self.last_modified = None
        self.headers: dict[str, str] = {}
        self.elapsed = progress.elapsed
        self.http_status = progress.http_status


def retry_after_seconds(exc: Any, warn: Callable[[str], Any]) -> float:
    """The wait a 429/503 asks for (Retry-After: seconds or an HTTP date), at most RETRY_AFTER_CAP."""
    import email.utils
    headers = {k.lower(): v for k, v in (getattr(exc, 'headers', None) or {}).items()}
    value = (headers.get('retry-after') or '').strip()
    if not value:
        return 0.0
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return 0.0
        seconds = when.timestamp() - time.time()
    if seconds != seconds or seconds <= 0:
        return 0.0
    if seconds > RETRY_AFTER_CAP:
        warn(f'The server asked to wait {seconds:.0f} seconds before a retry (Retry-After); '
             f'waiting {RETRY_AFTER_CAP:.0f} seconds, the most yt-dlp-async waits')
        return RETRY_AFTER_CAP
    return seconds


def _resource_size(headers: dict[str, str], status: int) -> int | None:
    """The whole resource's size from a 2xx response's headers: Content-Range, else
    the length of a 200 (or of a 206 without Content-Range, the engine's answer to a plain GET)."""
    parse_http_range = internals.load('yt_dlp.utils:parse_http_range')
    _, _, total = parse_http_range(headers.get('content-range'))
    if total:
        return int(total)
    length = headers.get('content-length', '')
    return int(length) if status in (200, 206) and 'content-range' not in headers and length.isdigit() else None
