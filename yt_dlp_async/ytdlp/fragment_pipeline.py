"""The fragments of one HLS/DASH format through the engine, appended in order.

``FragmentPipeline.run`` replaces the body of yt-dlp's
``FragmentFD.download_and_append_fragments`` once yt-dlp has parsed the
manifest and prepared ``ctx`` (``_prepare_and_start_frag_download``: the
``.part`` stream, the ``.ytdl`` resume point).  Every fragment is an engine
task kept in memory (``memory=True``); this thread only plans and appends:

* a window of at most ``max(-N, DEFAULT_WINDOW)`` fragments is outstanding
  (in flight, queued in the engine, or done and waiting for its turn); the
  window only moves when the next fragment in order has been appended, so a
  slow fragment stops new submissions and memory stays bounded (also by
  ``WINDOW_BYTES`` once fragment sizes are known).  The engine's per-host
  cap decides how many of them actually transfer at once;
* fragments are appended strictly in order.  Their bytes never become
  Python objects: a finished fragment's body stays in the engine's memory
  until its turn, when ``DownloadTask.append_body`` writes it to the
  ``.part`` descriptor in C, decrypting AES-128 on the way
  (csrc/fragstream.c); after each turn of the loop, fragment_resume.record
  writes the ``.ytdl`` state once for the fragments appended in that turn,
  with the ``.part`` length, after their bytes (ExactResume's rule; one
  atomic rename per turn, not per fragment).  Only what C cannot do takes
  the old path through Python and ``_append_fragment``: a ``pack_func``
  (WebVTT), an output without a file descriptor, AES with a key, IV or
  length C refuses (yt-dlp's own AES);
* yt-dlp's semantics: 4xx answers are retried ``--fragment-retries`` times
  (yt-dlp's "Retrying fragment N" lines), except a 4xx that may be for a
  cookie not stored yet: one answered while an earlier fragment's or a key's
  reply is still to come waits for it, and is asked again, free, if a reply
  changed the cookies (yt-dlp asks one at a time, each with the cookies the
  replies before it set).  A fragment refused again after it was asked with
  newer cookies means they change with every reply (a rotating token): from
  there on the pipeline asks one fragment at a time, in order, as yt-dlp
  does (in parallel the refused ones would race for each new value);
  5xx/network faults are HttpFD's: each failed
  request is one of ``--retries`` ("[download] Got error: ... Retrying
  (k/N)...", slept by ``--retry-sleep http:``), the engine itself makes
  none (``--async-max-retries`` N: N of its own, with backoff, before one
  counts), and then the fragment is
  unavailable; the next request of a fragment asks only for what the
  failed ones did not bring (``DownloadTask.partial_body``), as HttpFD
  resumes ``NAME.part-FragN``, and starts from byte 0 when the server does
  not resume it; an unavailable fragment is skipped ("Skipping fragment N") or,
  when fatal (``--abort-on-unavailable-fragment``; DASH fragment 0), ends the
  download once every fragment before it is on disk;
* ``--keep-fragments`` writes each downloaded fragment as yt-dlp names it
  (``NAME.part-FragN``, in C as well), ``--test`` skips decryption like yt-dlp.
"""

from __future__ import annotations

import collections
import time
import urllib.parse
import weakref
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator

from . import cookies as cookie_lines, internals
from . import baton, errors, fragment_crypto, fragment_resume, request_options, summary

POLL_INTERVAL = 0.1
PROGRESS_INTERVAL = 0.1
DEFAULT_WINDOW = 16
WINDOW_BYTES = 256 << 20
MAX_FRAGMENT_MEMORY = 1 << 30
MAX_ENGINE_RETRIES = 100
#: times a refused fragment is asked again because cookies changed after it was asked (not --fragment-retries)
MAX_COOKIE_RETRIES = 3
CANCEL_WAIT = 2.0


class _Stop(Exception):
    """The download ends with real_download returning False."""


@dataclass
class _Slot:
    fragment: dict[str, Any]
    frag_index: int
    fatal: bool
    task: Any = None
    done: Any = None                     # the finished task whose body waits in the engine
    size: int = 0                        # bytes its body holds
    body: bytes | None = None            # the old path only (bodies_in_c False)
    error: BaseException | None = None  # yt-dlp's exception once the fragment is given up
    retries: int = 0                     # fragment-level retries made
    http_retries: int = 0                # HttpFD-level retries (--retries) of its current fragment attempt
    prefix: bytes = b''                  # bytes failed attempts received: the next one asks for the rest
    resume: bool = True                  # False once the server did not resume it (it starts from byte 0)
    budget: int = 0                      # fragment-level retries allowed for its last error
    client_error: bool = False           # its last error was a 4xx (yt-dlp retries those per fragment)
    cookie_version: int = 0              # the pipeline's cookies it was asked with
    deferred: BaseException | None = None  # a 4xx waiting: an earlier reply may still set the cookie it lacks
    failure: BaseException | None = None   # a fault counted once the fragments before it are appended (line order)
    cookie_retries: int = 0              # asked again because cookies changed (MAX_COOKIE_RETRIES)

    @property
    def settled(self) -> bool:
        return self.task is None and self.deferred is None and self.failure is None


class FragmentPipeline:
    def __init__(self, fd: Any, engine: Any, api: Any, ctx: dict[str, Any], fragments: Iterable[dict[str, Any]],
                 info_dict: dict[str, Any], *, is_fatal: Callable[[int], bool],
                 pack_func: Callable[[bytes, int], bytes], finish_func: Callable[[], bytes] | None,
                 interrupted: Callable[[], bool], bodies_in_c: bool = False) -> None:
        self.fd = fd
        self.ydl = fd.ydl
        self.params: dict[str, Any] = fd.params
        self.engine = engine
        self.api = api
        self.ctx = ctx
        self.fragments: Iterator[dict[str, Any]] = iter(fragments)
        self.info_dict = info_dict
        self.is_fatal = is_fatal
        self.pack_func = pack_func
        self.finish_func = finish_func
        self.interrupted = interrupted
        self.bodies_in_c = bodies_in_c and _has_fileno(ctx['dest_stream'])

        self.window = max(int(self.params.get('concurrent_fragment_downloads') or 1), DEFAULT_WINDOW)
        self.fragment_retries = self.params.get('fragment_retries')
        self.http_retries = self.params.get('retries') or 0  # HttpFD's RetryManager count (inf allowed)
        self.engine_retries = _engine_retries(self.params)
        self.is_test = bool(self.params.get('test'))
        self.keep_fragments = bool(self.params.get('keep_fragments'))

        headers = request_options.request_headers(info_dict)
        self.request_proxy = request_options.split_proxy_headers(headers)
        parse_http_range = internals.load('yt_dlp.utils:parse_http_range')
        start, end, _ = parse_http_range(headers.pop('Range', None))
        self.header_range: tuple[int, int | None] | None = (
            None if start is None else (start, None if end is None else end + 1))
        self.headers = list(headers.items())
        self.cookies = cookie_lines.to_netscape_lines(self.ydl.cookiejar)
        self.cookie_version = 0  # bumped whenever a reply stored a cookie
        # one fragment at a time, each asked with the cookies of the replies before it
        # (yt-dlp's order): set once the cookies proved to rotate (_failed)
        self.serial = False
        self._options: dict[str, dict[str, Any]] = {}
        self._sent: weakref.WeakKeyDictionary[Any, list[str]] = weakref.WeakKeyDictionary()  # task -> its cookies
        self.keys = fragment_crypto.KeyCache(info_dict, self._submit_key, self._fetch_key_natively, self._ytdlp_error,
                                             lambda task: self._store_cookies(task.result(), task))

        self.pending: collections.deque[_Slot] = collections.deque()
        self.exhausted = False
        total = ctx.get('total_frags')
        self.total_frags: int | None = int(total) if total else None
        self.done_frags = int(ctx.get('fragment_index') or 0)  # fragments already on disk count as done
        self.done_bytes = int(ctx.get('complete_frags_downloaded_bytes') or 0)
        self.run_bytes = 0  # bytes of fragments finished in this run
        self.sizes_seen = 0
        self.sizes_total = 0
        ProgressCalculator = internals.load('yt_dlp.utils.progress:ProgressCalculator')
        self.progress = ProgressCalculator(self.done_bytes)
        self.last_progress = 0.0

    # ----------------------------------------------------------------- entry
    def run(self) -> bool:
        rate_limit = self.params.get('ratelimit')
        self.engine.set_rate_limit(int(rate_limit) if rate_limit else None)
        try:
            self._loop()
        except _Stop:
            self._cancel_all()
            return False
        except BaseException:
            self._cancel_all()
            self._record_what_is_on_disk()
            raise
        if self.finish_func is not None:
            self.ctx['dest_stream'].write(self.finish_func())
            self.ctx['dest_stream'].flush()
        return bool(self.fd._finish_frag_download(self.ctx, self.info_dict))

    def _loop(self) -> None:
        while True:
            if self.interrupted():
                raise KeyboardInterrupt
            self._fill()
            if not self.pending:
                return
            head = self.pending[0]
            waiting_for = head.task if head.task is not None else self.keys.in_flight() if head.deferred else None
            if waiting_for is not None:
                baton.wait_task(waiting_for, POLL_INTERVAL)  # the baton is given up while waiting (playlist.py)
            self._collect()
            self._settle_deferred()
            while self.pending and self.pending[0].settled:
                self._append(self.pending.popleft())
            fragment_resume.record(self.fd, self.ctx)  # once for the fragments appended in C just now
            self._report_progress()

    # -------------------------------------------------------------- planning
    def _window_limit(self) -> int:
        if self.serial:
            return 1
        limit = self.window
        if self.sizes_seen:
            average = max(1, self.sizes_total // self.sizes_seen)
            limit = min(limit, max(2, WINDOW_BYTES // average))
        return limit

    def _fill(self) -> None:
        while not self.exhausted and len(self.pending) < self._window_limit():
            fragment = next(self.fragments, None)
            if fragment is None:
                self.exhausted = True
                return
            frag_index = int(fragment['frag_index'])
            slot = _Slot(fragment, frag_index, bool(self.is_fatal(fragment.get('index') or (frag_index - 1))))
            self.pending.append(slot)
            self.keys.prefetch(fragment)
            self._submit(slot)

    def _submit_options(self, url: str) -> dict[str, Any]:
        netloc = urllib.parse.urlsplit(url)[:2]
        key = f'{netloc[0]}://{netloc[1]}'
        options = self._options.get(key)
        if options is None:
            options = request_options.submit_options(self.ydl, self.params, url, self.request_proxy)
            self._options[key] = options
        return options

    def _submit_memory(self, url: str, byte_range: tuple[int, int | None] | None, priority: int) -> Any:
        # yt-dlp's Request escapes what a manifest leaves raw (spaces, non-ASCII); the engine refuses it
        url = internals.load('yt_dlp.utils.networking:normalize_url')(url)
        max_memory = MAX_FRAGMENT_MEMORY
        if byte_range is not None and byte_range[1] is not None:
            max_memory = max(1, byte_range[1] - byte_range[0])
        headers: Any = self.headers
        if '@' in urllib.parse.urlsplit(url).netloc:
            headers = internals.load('yt_dlp.utils.networking:HTTPHeaderDict')(dict(self.headers))
            url = request_options.url_credentials(url, headers)
            headers = list(headers.items())
        task = self.engine.submit(
            url, memory=True, max_memory=max_memory, headers=headers, cookies=self.cookies,
            range=byte_range, priority=priority, max_retries=self.engine_retries, **self._submit_options(url))
        self._sent[task] = self.cookies
        return task

    def _requested(self, slot: _Slot) -> tuple[int, int | None] | None:
        byte_range = slot.fragment.get('byte_range')
        return (byte_range['start'], byte_range['end']) if byte_range else self.header_range

    def _submit(self, slot: _Slot) -> None:
        requested = self._requested(slot)
        if slot.prefix:  # HttpFD resumes a fragment from its .part-FragN: the rest of the range
            requested = ((requested[0] if requested else 0) + len(slot.prefix), requested[1] if requested else None)
        slot.body = None
        slot.cookie_version = self.cookie_version
        try:
            slot.task = self._submit_memory(slot.fragment['url'], requested, slot.frag_index)
        except ValueError as exc:  # a range the engine refuses: the fragment is unavailable
            slot.task = None
            slot.error = errors.transport_error(exc)

    def _submit_key(self, url: str) -> Any:
        return self._submit_memory(url, None, -1)

    def _fetch_key_natively(self, url: str) -> bytes:
        return bytes(self.ydl.urlopen(self.fd._prepare_url(self.info_dict, url)).read())

    def _ytdlp_error(self, exc: BaseException) -> BaseException:
        return errors.to_ytdlp(exc, self.api)

    # ------------------------------------------------------------ collecting
    def _collect(self) -> None:
        self.keys.collect()  # first: a key reply's cookie counts for the fragments refused with it
        done = [slot for slot in self.pending if slot.task is not None and slot.task.done()]
        # replies before refusals: the cookies a reply set count for a fragment refused beside it
        for slot in sorted(done, key=lambda slot: _ended_in_error(slot.task)):
            task = slot.task
            if task is None or not task.done():
                continue
            try:
                result = task.result()
                body = None if self.bodies_in_c and not slot.prefix else task.body()
            except (self.api.AsyncDownloadError, OSError) as exc:
                slot.task = None
                if not self._resume_refused(slot, exc):
                    self._keep_partial(slot, task)
                    self._failed(slot, exc)
                continue
            slot.task = None
            if body is not None and slot.prefix:
                body, slot.prefix = slot.prefix + body, b''
            if body is None:
                slot.done = task  # the body stays in the engine until its turn (_append_in_c)
                slot.size = int(result.downloaded_bytes)
            else:
                slot.body = body
                slot.size = len(body)
            self._store_cookies(result, task)
            self.done_frags += 1
            self.run_bytes += slot.size
            self.sizes_seen += 1
            self.sizes_total += slot.size

    def _keep_partial(self, slot: _Slot, task: Any) -> None:
        """The bytes a failed attempt received stay for the next one, as HttpFD keeps NAME.part-FragN."""
        if not slot.resume:
            return
        try:
            slot.prefix += task.partial_body()
        except (ValueError, AttributeError):
            pass
        requested = self._requested(slot)
        if requested and requested[1] is not None and requested[0] + len(slot.prefix) >= requested[1]:
            slot.prefix = b''  # nothing left to ask for: a bounded range asked again whole

    def _resume_refused(self, slot: _Slot, exc: BaseException) -> bool:
        """A request for the rest that the server did not answer with the rest (it ignored the range, or
        416): the fragment starts again from byte 0 at once, as HttpFD does ("Unable to resume", which its
        quiet fragment downloader does not print), without spending a retry; never resumed again."""
        if not slot.prefix:
            return False
        status = int(getattr(exc, 'http_status', 0) or 0)
        if not (isinstance(exc, self.api.RangeError) or (isinstance(exc, self.api.HTTPStatusError) and status == 416)):
            return False
        slot.prefix, slot.resume = b'', False
        self._submit(slot)
        return True

    def _store_cookies(self, result: Any, task: Any) -> None:
        # what the reply changed is judged against the cookies its request was sent
        # with: against today's, a cookie another reply changed since would go back
        # to the older value the request carried
        sent = self._sent.pop(task, self.cookies)
        if 'set-cookie' not in (result.headers or {}):
            return
        try:
            if cookie_lines.store_lines(self.ydl.cookiejar, result.cookies or (), sent):
                self.cookies = cookie_lines.to_netscape_lines(self.ydl.cookiejar)
                self.cookie_version += 1
        except Exception as exc:
            self.fd.write_debug(f'[async] could not store cookies: {exc}')

    def _failed(self, slot: _Slot, exc: BaseException) -> None:
        """A 4xx may be for a cookie yt-dlp would have had: it asks for fragment N+1 (and the key) only
        after fragment N's reply stored its cookies, we ask for them at once.  So a fragment refused
        before cookies changed is asked again with them, and one refused while an earlier reply is
        still to come waits for it; neither spends --fragment-retries."""
        if self._is_client_error(exc):
            changed = slot.cookie_version != self.cookie_version
            earlier = self._earlier_reply_to_come(slot)
            if (changed or earlier) and slot.cookie_retries:
                # refused again after it was asked with newer cookies: they change reply by
                # reply (a rotating token), and the fragments asked at once race for each
                # new value.  From here on one at a time, in order, as yt-dlp asks; a
                # refusal that lost such a race does not count (only a reply changes the
                # cookies, so these end with the fragments)
                self.serial = True
            if (changed or earlier) and (self.serial or slot.cookie_retries < MAX_COOKIE_RETRIES):
                if changed and not (self.serial and earlier):
                    slot.cookie_retries += 1
                    self._submit(slot)
                    return
                slot.deferred = exc
                return
        self._count_in_turn(slot, exc)

    def _count_in_turn(self, slot: _Slot, exc: BaseException) -> None:
        """yt-dlp prints all of fragment N's lines before fragment N+1's: a fault is counted (its retry line,
        its sleep) when its fragment is next to be appended."""
        if self.pending[0] is not slot:
            slot.failure = exc
            return
        self._count_failure(slot, exc)

    def _is_client_error(self, exc: BaseException) -> bool:
        status = int(getattr(exc, 'http_status', 0) or 0)
        return isinstance(exc, self.api.HTTPStatusError) and 400 <= status < 500

    def _earlier_reply_to_come(self, slot: _Slot) -> bool:
        """A reply still to come that may set the cookies ``slot`` was refused for: the key's, an
        earlier fragment's, or, once the cookies rotate reply by reply (``serial``), any fragment's
        in flight (the server may have rotated them for a later fragment asked before ``slot``)."""
        if self.keys.in_flight() is not None:
            return True
        before = True
        for other in self.pending:
            if other is slot:
                if not self.serial:
                    return False
                before = False
                continue
            if other.task is not None:
                return True
            if before and self.serial and other.deferred is not None:
                return True   # (in order: a refused one still to be asked again comes first)
        return False

    def _settle_deferred(self) -> None:
        """Deferred 4xx: asked again once cookies changed, else failed once no earlier reply is to come;
        a fault of the fragment whose turn it is (the head): counted now."""
        for slot in list(self.pending):
            if slot.failure is not None and self.pending[0] is slot:
                failure, slot.failure = slot.failure, None
                self._count_failure(slot, failure)
                continue
            exc = slot.deferred
            if exc is None:
                continue
            earlier = self._earlier_reply_to_come(slot)
            if slot.cookie_version != self.cookie_version and not (self.serial and earlier):
                slot.deferred = None
                slot.cookie_retries += 1
                self._submit(slot)
            elif not earlier:
                slot.deferred = None
                self._count_in_turn(slot, exc)

    def _count_failure(self, slot: _Slot, exc: BaseException) -> None:
        """yt-dlp's rules: a 4xx is one of --fragment-retries (FragmentFD's "Retrying fragment N"); a 5xx,
        a network fault or a short body is one of --retries of HttpFD, which fetches the fragment."""
        error = errors.to_ytdlp(exc, self.api)
        if isinstance(exc, self.api.RangeError):
            # a byte-range fragment the server will not cut out: so will every later one.
            # Skipping it would leave a partial file under the final name (yt-dlp alone
            # writes the whole resource for each such fragment): the download ends here
            slot.fatal = True
        client_error = self._is_client_error(exc)
        slot.client_error = client_error
        if not client_error and self._http_retryable(error):
            slot.http_retries += 1
            if slot.http_retries <= self.http_retries:
                summary.retried(self.fd.ydl)
                self.fd.report_retry(error, slot.http_retries, self.http_retries)  # HttpFD's line and sleep
                self._submit(slot)
                return
            slot.error = error
            return
        slot.budget = self.fragment_retries if client_error and self.fragment_retries else 0
        slot.retries += 1
        if slot.retries <= slot.budget:
            summary.retried(self.fd.ydl)
            self.fd.report_retry(error, slot.retries, slot.budget, slot.frag_index, slot.fatal)
            slot.http_retries = 0  # each fragment attempt is a new HttpFD download with its own --retries
            self._submit(slot)
            return
        slot.error = error

    def _http_retryable(self, error: BaseException) -> bool:
        """What HttpFD retries within --retries: 5xx, network faults but TLS verification, short bodies."""
        HTTPError = internals.load('yt_dlp.networking.exceptions:HTTPError')
        TransportError = internals.load('yt_dlp.networking.exceptions:TransportError')
        ContentTooShortError = internals.load('yt_dlp.utils:ContentTooShortError')
        if isinstance(error, HTTPError):
            return 500 <= int(error.status or 0) < 600
        if isinstance(error, TransportError):
            return not errors.is_fatal_transport(error)
        return isinstance(error, ContentTooShortError)

    # -------------------------------------------------------------- appending
    def _append(self, slot: _Slot) -> None:
        if slot.done is not None:
            self._append_in_c(slot)
            return
        content = slot.body
        slot.body = None
        if content and self.keep_fragments:
            self._keep(slot.frag_index, content)
        if content and fragment_crypto.needs_decryption(slot.fragment):
            key = self.keys.key_for(slot.fragment)
            if not self.is_test:  # yt-dlp does not decrypt --test downloads (cut to 10 KiB)
                content = fragment_crypto.decrypt(content, key, fragment_crypto.fragment_iv(slot.fragment), self.api)
        if not content:
            self._unavailable(slot)
            return
        fragment_resume.record(self.fd, self.ctx)  # C appends first: this append records at once
        self.ctx['fragment_index'] = slot.frag_index
        self.ctx['fragment_filename_sanitized'] = self._fragment_filename(slot.frag_index)
        self.fd._append_fragment(self.ctx, self.pack_func(content, slot.frag_index))

    def _append_in_c(self, slot: _Slot) -> None:
        """The fragment's body from the engine to ``.part`` (keep, decrypt, append: csrc/fragstream.c)."""
        task, slot.done = slot.done, None
        if not slot.size:
            self._unavailable(slot)
            return
        key = iv = None
        if fragment_crypto.needs_decryption(slot.fragment) and not self.is_test:
            key = self.keys.key_for(slot.fragment)
            iv = fragment_crypto.fragment_iv(slot.fragment)
            if not fragment_crypto.decrypts_in_c(key, iv, slot.size):
                slot.body = task.body()  # yt-dlp's own AES for what C refuses
                self._append(slot)
                return
        name = self._fragment_filename(slot.frag_index)
        keep = name if self.keep_fragments else None
        appended = fragment_resume.append_in_c(
            self.fd, self.ctx, slot.frag_index, name,
            lambda fileno: int(task.append_body(fileno, key=key, iv=iv, keep=keep)))
        if not appended:
            self._unavailable(slot)

    def _record_what_is_on_disk(self) -> None:
        """After an error: the state for the fragments appended before it (best effort)."""
        try:
            fragment_resume.record(self.fd, self.ctx)
        except Exception:
            pass  # .part was cut back to the last record: the state on disk still describes it

    def _unavailable(self, slot: _Slot) -> None:
        """yt-dlp's FragmentFD for a fragment without bytes: skipped, or the end of the download when fatal."""
        if not slot.fatal:
            DownloadError = internals.load('yt_dlp.utils:DownloadError')
            try:
                self._report_given_up(slot)
            except DownloadError:
                pass  # yt-dlp's fragment loop catches what report_error raises for a fragment it may skip
            self.fd.report_skip_fragment(slot.frag_index, 'fragment not found')
            return
        self._cancel_all()
        self._record_what_is_on_disk()
        self.ctx['dest_stream'].close()
        self._report_given_up(slot)  # raises yt-dlp's DownloadError (unless --ignore-errors)
        self.fd.report_error(f'fragment {slot.frag_index} not found, unable to continue')
        raise _Stop()

    def _report_given_up(self, slot: _Slot) -> None:
        """The ERROR yt-dlp prints when it gives up on a fragment's request (none for an empty body)."""
        error = slot.error
        if error is None:
            return
        if slot.client_error:  # FragmentFD's retries: report_retry, silent for a fragment it may skip
            if slot.fatal:
                self.fd.report_retry(error, slot.retries, max(slot.retries - 1, 0), slot.frag_index, True)
            return
        # a 5xx or network error the engine retried --retries times: HttpFD's own words
        retries = int(self.params.get('retries') or 0)
        self.fd.report_error(f'\r[download] Got error: {error}. Giving up after {retries} retries'
                             if retries else f'\r[download] Got error: {error}')

    def _fragment_filename(self, frag_index: int) -> str:
        return '%s-Frag%d' % (self.ctx['tmpfilename'], frag_index)

    def _keep(self, frag_index: int, content: bytes) -> None:
        stream, _ = self.fd.sanitize_open(self._fragment_filename(frag_index), 'wb')
        with stream:
            stream.write(content)

    # ---------------------------------------------------------------- progress
    def _report_progress(self) -> None:
        now = time.monotonic()
        if now - self.last_progress < PROGRESS_INTERVAL and not (self.exhausted and not self.pending):
            return
        self.last_progress = now
        in_flight = 0
        for slot in self.pending:
            if slot.task is not None:
                try:
                    in_flight += slot.task.progress().downloaded_bytes
                except Exception:
                    pass
        downloaded = self.run_bytes + in_flight
        final = self.exhausted and not self.pending
        if downloaded <= 0 or (downloaded == self.reported_bytes and not final):
            return  # as yt-dlp's loop: a report when bytes arrive (no decay to a speed it cannot print)
        self.reported_bytes = downloaded
        self.progress.update(downloaded)
        state: dict[str, Any] = {
            'status': 'downloading',
            'downloaded_bytes': self.progress.downloaded,
            'fragment_index': self.done_frags,
            'fragment_count': self.total_frags,
            'filename': self.ctx['filename'],
            'tmpfilename': self.ctx['tmpfilename'],
            'elapsed': self.progress.elapsed,
            'speed': _printable(self.progress.speed.smooth),
            'eta': self.progress.eta.smooth,
            'max_progress': self.ctx.get('max_progress'),
            'progress_idx': self.ctx.get('progress_idx'),
        }
        if self.total_frags and self.done_frags:
            self.progress.total = int((self.done_bytes + self.run_bytes) / self.done_frags * self.total_frags)
            state['total_bytes_estimate'] = self.progress.total
        self.ctx['complete_frags_downloaded_bytes'] = self.done_bytes + self.run_bytes
        self.ctx['speed'] = state['speed']
        self.fd._hook_progress(state, self.info_dict)

    reported_bytes = 0

    # ---------------------------------------------------------------- cleanup
    def _cancel_all(self) -> None:
        tasks = [slot.task for slot in self.pending if slot.task is not None]
        for task in tasks:
            try:
                task.cancel()
            except Exception:
                pass
        for task in tasks:
            try:
                task.wait(CANCEL_WAIT)
            except BaseException:
                pass
        for slot in self.pending:
            slot.task = None
            slot.done = None
            slot.body = None
            slot.deferred = None
            slot.failure = None
        self.keys.cancel()


def _has_fileno(stream: Any) -> bool:
    """True when the output has a descriptor the engine can append to."""
    try:
        return int(stream.fileno()) >= 0
    except (AttributeError, OSError, ValueError):
        return False


def _engine_retries(params: dict[str, Any]) -> int:
    """The engine's own retries of 5xx/network faults per fragment request: --async-max-retries (default
    none: every failed request is one of yt-dlp's --retries, reported and slept as HttpFD does)."""
    retries = params.get('async_max_retries')
    try:
        return int(min(float(retries or 0), MAX_ENGINE_RETRIES))
    except (TypeError, ValueError):
        return 0


def _printable(speed: float | None) -> float | None:
    """A speed yt-dlp's format_bytes can print: below a millibyte a second it has no suffix (IndexError)."""
    return None if speed is None or speed < 1e-3 else speed


def _ended_in_error(task: Any) -> bool:
    """A finished task that failed or was cancelled (``exception()`` raises for a cancelled one)."""
    try:
        return task.exception(0) is not None
    except BaseException:
        return True
