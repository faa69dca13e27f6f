"""Video and audio at the same time: ``AsyncMultiFD`` for ``bestvideo+bestaudio``.

yt-dlp downloads the formats of a merged download one after the other when
``get_suitable_downloader`` (as bound in ``yt_dlp.YoutubeDL``) finds no
single downloader for them.  The wrapper installed by ``patch_module``
answers ``AsyncMultiFD`` instead when async downloads are on, the output is
a file, ffmpeg can merge, every format would go to one of the engine's
downloaders (http/https, HLS, DASH), and a person reads the progress (a
terminal) or the user asked for downloads at once (``--concurrent-downloads
N``): a program reading the output gets yt-dlp's own lines, one format after
the other (console.py).  yt-dlp then takes its "one downloader
for all formats" branch: it names each format's file (``f['filepath']``),
calls ``dl()`` once, and merges with FFmpegMergerPP as usual.

That branch names every format's file with the merged extension
(``out.fv1.mkv`` holding MP4 data); yt-dlp's format-by-format branch, the one
it takes without us, uses each format's own (``out.fv1.mp4``, ``out.fa1.m4a``),
and those are the names ``-k`` keeps and a later run resumes.  So
``AsyncMultiFD`` downloads to the format-by-format names (``sequential_name``)
and the merger, wrapped by ``patch_merger``, merges (and deletes or keeps)
the files under those names.

``AsyncMultiFD.real_download`` runs each format's own downloader
(AsyncFileDownloader / AsyncHlsFD / AsyncDashFD, as yt-dlp would choose it)
on a thread of its own; those threads only wait on engine tasks.  Progress
is yt-dlp's multi-line display, one line per format (``progress_idx``).
"""

from __future__ import annotations

import functools
import os
import threading
from types import ModuleType
from typing import Any, Mapping

from . import fallback, internals

FileDownloader = internals.load('yt_dlp.downloader.common:FileDownloader')

JOIN_INTERVAL = 0.1
MARK = '__yt_dlp_async_wrapped__'

#: yt-dlp's name for a format's file (absolute) -> the name AsyncMultiFD downloaded it to
_renamed: dict[str, str] = {}
_renamed_lock = threading.Lock()


def sequential_name(given: str, merged_ext: str | None, format_ext: str | None) -> str:
    """``out.fv1.mkv`` (yt-dlp's one-downloader name) -> ``out.fv1.mp4`` (its format-by-format name)."""
    if not merged_ext or not format_ext or not given.endswith('.' + merged_ext):
        return given
    return given[:-len(merged_ext)] + format_ext


class _Line:
    """One line of the parent's multi-line printer; ``end()`` is the parent's to call."""

    def __init__(self, printer: Any, index: int) -> None:
        self._printer = printer
        self._index = index

    def print_at_line(self, text: str, pos: int) -> None:
        self._printer.print_at_line(text, self._index)

    def end(self) -> None:
        pass

    def __getattr__(self, name: str) -> Any:
        return getattr(self._printer, name)


def format_info(info_dict: Mapping[str, Any], fmt: Mapping[str, Any]) -> dict[str, Any]:
    """What yt-dlp's sequential path passes to dl() for one format."""
    info = dict(info_dict)
    info.pop('requested_formats', None)
    info.update(fmt)
    return info


def _engine_classes() -> tuple[type, ...]:
    from .dash import AsyncDashFD
    from .downloader import AsyncFileDownloader
    from .hls import AsyncHlsFD
    return (AsyncFileDownloader, AsyncHlsFD, AsyncDashFD)


def _merger_available(params: Mapping[str, Any]) -> bool:
    class _ParamsOnly:
        """The little of a YoutubeDL that FFmpegPostProcessor reads to find ffmpeg."""

        _postprocessor_hooks: list[Any] = []

        def __init__(self) -> None:
            self.params = params

        def write_debug(self, *args: Any, **kwargs: Any) -> None:
            pass

        report_warning = to_screen = deprecation_warning = write_debug

    try:
        FFmpegMergerPP = internals.load('yt_dlp.postprocessor:FFmpegMergerPP')
        return bool(FFmpegMergerPP(_ParamsOnly()).available)
    except Exception:
        return False


def eligible(info_dict: Mapping[str, Any], params: Mapping[str, Any]) -> bool:
    """True when every requested format goes to an engine downloader and yt-dlp would merge them."""
    formats = info_dict.get('requested_formats') or []
    if len(formats) < 2 or not params.get('async_downloads'):
        return False
    if params.get('allow_unplayable_formats') or not _merger_available(params):
        return False
    from .console import concurrency_asked, progress_is_read_by_a_person
    if not (progress_is_read_by_a_person(params) or concurrency_asked(params)):
        # a program may be reading the output: it attributes progress lines to the last
        # "Destination:" line, and reads them from their first character ("1: [download]" is not)
        return False
    get_suitable_downloader = internals.load('yt_dlp.downloader:get_suitable_downloader')
    classes = _engine_classes()
    for fmt in formats:
        if fmt.get('section_start') is not None or fmt.get('section_end') is not None:
            return False
        fd = get_suitable_downloader(format_info(info_dict, fmt), dict(params))
        if fd not in classes:
            return False
    return True


class AsyncMultiFD(FileDownloader):  # type: ignore[misc, valid-type]
    FD_NAME = 'async_multi'

    def real_download(self, filename: str, info_dict: dict[str, Any]) -> bool:
        get_suitable_downloader = internals.load('yt_dlp.downloader:get_suitable_downloader')

        formats = info_dict['requested_formats']
        count = len(formats)
        self._prepare_multiline_status(count)
        stop = threading.Event()
        jobs: list[tuple[threading.Thread, dict[str, Any]]] = []
        for index, fmt in enumerate(formats):
            info = format_info(info_dict, fmt)
            path = self._format_path(fmt, info, filename, info_dict.get('ext'))
            if info.get('filepath'):
                info['filepath'] = path  # what the fragment downloaders name their files after
            fd_class = get_suitable_downloader(info, self.params, to_stdout=False)
            child = self._child(fd_class, index, count, stop)
            self.write_debug(f'[async] format {fmt.get("format_id")}: {child.FD_NAME} downloader, at the same time')
            outcome: dict[str, Any] = {}
            thread = threading.Thread(target=self._run_child, args=(child, path, info, outcome),
                                      name=f'yt-dlp-async format {fmt.get("format_id")}', daemon=True)
            jobs.append((thread, outcome))
        for thread, _ in jobs:
            thread.start()
        try:
            for thread, _ in jobs:
                while thread.is_alive():
                    thread.join(JOIN_INTERVAL)
        except KeyboardInterrupt:
            stop.set()
            raise
        for _, outcome in jobs:
            if 'error' in outcome:
                raise outcome['error']
        return all(outcome.get('ok') for _, outcome in jobs)

    @staticmethod
    def _format_path(fmt: dict[str, Any], info: Mapping[str, Any], filename: str, merged_ext: str | None) -> str:
        """The format's file as yt-dlp alone names it; yt-dlp's merger is told (``_renamed``)."""
        prepend_extension = internals.load('yt_dlp.utils:prepend_extension')
        given = fmt.get('filepath') or prepend_extension(filename, f'f{fmt["format_id"]}', merged_ext)
        path = sequential_name(given, merged_ext, info.get('ext'))
        if path != given and fmt.get('filepath'):
            fmt['filepath'] = path  # the same dict as the caller's requested_formats entry
            with _renamed_lock:
                _renamed[os.path.abspath(given)] = path
        return path

    def _child(self, fd_class: Any, index: int, count: int, stop: threading.Event) -> Any:
        child = fd_class(self.ydl, self.params)
        child._multiline = _Line(self._multiline, index)
        for hook in self._progress_hooks:
            if hook != self.report_progress:
                child.add_progress_hook(hook)
        own_hook = child._hook_progress

        def hook_progress(status: dict[str, Any], info: dict[str, Any]) -> None:
            if status.get('progress_idx') is None:
                status['progress_idx'] = index
                status['max_progress'] = count
            own_hook(status, info)

        child._hook_progress = hook_progress
        child._async_interrupted = stop.is_set
        return child

    @staticmethod
    def _run_child(child: Any, path: str, info: dict[str, Any], outcome: dict[str, Any]) -> None:
        try:
            ok, _ = child.download(path, info)
            outcome['ok'] = bool(ok)
        except BaseException as exc:  # handed to the calling thread
            outcome['error'] = exc


def patch_merger() -> bool:
    """FFmpegMergerPP merges the files AsyncMultiFD wrote (see the module doc)."""
    try:
        FFmpegMergerPP = internals.load('yt_dlp.postprocessor.ffmpeg:FFmpegMergerPP')
    except ImportError:
        return False
    original = FFmpegMergerPP.__dict__.get('run')
    if not callable(original):
        return False
    if getattr(original, MARK, False):
        return True

    def run(self: Any, info: Any, *args: Any, **kwargs: Any) -> Any:
        files = info.get('__files_to_merge') if isinstance(info, dict) else None
        if isinstance(files, list) and _renamed:
            with _renamed_lock:
                info['__files_to_merge'] = [
                    _renamed.pop(os.path.abspath(f), f) if isinstance(f, str) else f for f in files]
        return original(self, info, *args, **kwargs)

    functools.update_wrapper(run, original)
    setattr(run, MARK, True)
    FFmpegMergerPP.run = run
    return True


def patch_module(module: ModuleType) -> bool:
    """Wrap ``get_suitable_downloader`` as ``yt_dlp.YoutubeDL`` binds it (process_info and dl)."""
    if not patch_merger():
        return False
    original = getattr(module, 'get_suitable_downloader', None)
    if original is None or not callable(original):
        return False
    if getattr(original, MARK, False):
        return True

    def get_suitable_downloader(info_dict: dict[str, Any], params: Mapping[str, Any] = {},  # noqa: B006
                                *args: Any, **kwargs: Any) -> Any:
        fd = original(info_dict, params, *args, **kwargs)
        if fd is not None or args or kwargs.get('protocol') or kwargs.get('to_stdout'):
            return fd
        try:
            if info_dict.get('requested_formats') and eligible(info_dict, params):
                return AsyncMultiFD
        except Exception as exc:  # never break yt-dlp's choice
            fallback.note(f'[async] multi-format choice failed ({type(exc).__name__}: {exc}); keeping yt-dlp\'s')
        return fd

    functools.update_wrapper(get_suitable_downloader, original)
    setattr(get_suitable_downloader, MARK, True)
    module.get_suitable_downloader = get_suitable_downloader  # type: ignore[attr-defined]
    return True
