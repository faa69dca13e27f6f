"""The patches that make the engine yt-dlp's http/https downloader.

Applied right after each yt-dlp module executes (by the ``.pth`` import hook,
``yt_dlp_async_hook``) or to already-imported modules (``install()``, the
AsyncDownloads postprocessor).  Each one checks that its target exists in the
installed yt-dlp and otherwise stands aside; ``yt-dlp -v`` then prints one
``[debug]`` line per patch that stood aside.

  yt_dlp.downloader._get_suitable_downloader  http/https -> AsyncFileDownloader (selection.py)
  yt_dlp.downloader.external._BY_NAME['async'] --downloader async / "http:async"
  yt_dlp.options.create_parser                 the "Async Downloads" option group
  yt_dlp.parse_options                         the group's values -> ydl_opts (with --async-queue,
                                               the arguments too, config files' included, for the workers)
  YoutubeDL.dl                                 the running YoutubeDL, for fallback [debug] lines;
                                               a finished NAME removes NAME.part-async(.ctl)
  YoutubeDL.print_debug_header                 the -v line: on/off, plugin and libcurl versions
  YoutubeDL.download                           the run's summary line (summary.py), outside
                                               playlist.py's wrapper; outside both, --async-queue:
                                               the URLs go to Celery workers
                                               (yt_dlp_async.celery.cli; celery is imported only then)
  yt_dlp.YoutubeDL.get_suitable_downloader     merged formats at the same time (multiformat.py)

HLS (HlsFD) and DASH (DashSegmentsFD) become AsyncHlsFD / AsyncDashFD in
selection.choose() (fragments.py).
"""

from __future__ import annotations

import functools
import inspect
import os
import sys
import threading
from types import ModuleType
from typing import Any, Callable

from . import fallback, internals, options

MARK = '__yt_dlp_async_wrapped__'

_lock = threading.RLock()
_stand_aside = fallback.stand_aside


def _is_wrapped(func: object) -> bool:
    return bool(getattr(func, MARK, False))


def _mark(wrapper: Callable[..., Any], original: Callable[..., Any]) -> Callable[..., Any]:
    functools.update_wrapper(wrapper, original)
    setattr(wrapper, MARK, True)
    return wrapper


def _parameters(func: Callable[..., Any]) -> list[str]:
    try:
        return list(inspect.signature(func).parameters)
    except (TypeError, ValueError):
        return []


# --------------------------------------------------------------- yt_dlp.downloader
def patch_get_suitable_downloader(module: ModuleType) -> bool:
    target = 'yt_dlp.downloader._get_suitable_downloader'
    original = getattr(module, '_get_suitable_downloader', None)
    if original is None:
        _stand_aside(target, 'not found in this yt-dlp')
        return False
    if _is_wrapped(original):
        return True
    if _parameters(original)[:4] != ['info_dict', 'protocol', 'params', 'default']:
        _stand_aside(target, f'unexpected signature {_parameters(original)}')
        return False
    from . import fallback, selection

    def _get_suitable_downloader(info_dict: dict[str, Any], protocol: str, params: dict[str, Any],
                                 default: Any, *args: Any, **kwargs: Any) -> Any:
        fd = original(info_dict, protocol, params, default, *args, **kwargs)
        try:
            return selection.choose(fd, info_dict, protocol, params, default)
        except Exception as exc:  # never break yt-dlp's choice
            fallback.note(f'[async] downloader choice failed ({type(exc).__name__}: {exc}); keeping yt-dlp\'s')
            return fd

    module._get_suitable_downloader = _mark(_get_suitable_downloader, original)  # type: ignore[attr-defined]
    return True


def register_external_downloader() -> bool:
    """``--downloader async`` (and ``"http:async"``) validate and select AsyncFileDownloader."""
    target = 'yt_dlp.downloader.external._BY_NAME'
    try:
        registry = internals.load('yt_dlp.downloader.external:_BY_NAME')
    except Exception as exc:
        _stand_aside(target, f'cannot import it ({exc})')
        return False
    if not isinstance(registry, dict):
        _stand_aside(target, 'not found in this yt-dlp')
        return False
    from .downloader import AsyncFileDownloader
    registry.setdefault('async', AsyncFileDownloader)
    return True


def patch_downloader_package(module: ModuleType) -> None:
    patch_get_suitable_downloader(module)
    register_external_downloader()


# ------------------------------------------------------------------ yt_dlp.options
def patch_create_parser(module: ModuleType) -> bool:
    target = 'yt_dlp.options.create_parser'
    original = getattr(module, 'create_parser', None)
    if original is None or not callable(original):
        _stand_aside(target, 'not found in this yt-dlp')
        return False
    if _is_wrapped(original):
        return True

    def create_parser(*args: Any, **kwargs: Any) -> Any:
        register_external_downloader()  # before the parser lists the downloaders
        parser = original(*args, **kwargs)
        try:
            if not options.has_option_group(parser):
                options.add_option_group(parser)
        except Exception as exc:
            _stand_aside('the Async Downloads option group', f'{type(exc).__name__}: {exc}')
        _record_parsed_args(parser)
        return parser

    module.create_parser = _mark(create_parser, original)  # type: ignore[attr-defined]
    return True


PARSED_ARGS = '_yt_dlp_async_parsed_args'


def _record_parsed_args(parser: Any) -> None:
    """Keep the arguments the parser last parsed: yt-dlp passes the config files' and the
    command line's together, which --async-queue sends to the workers."""
    parse_args = getattr(parser, 'parse_args', None)
    if parse_args is None:
        return

    def recording_parse_args(args: Any = None, *rest: Any, **kwargs: Any) -> Any:
        if args is not None:
            args = list(args)  # yt-dlp passes a generator: read it once, for both
            setattr(parser, PARSED_ARGS, [str(a) for a in args])
        return parse_args(args, *rest, **kwargs)

    parser.parse_args = recording_parse_args


# -------------------------------------------------------------------------- yt_dlp
def patch_parse_options(module: ModuleType) -> bool:
    target = 'yt_dlp.parse_options'
    original = getattr(module, 'parse_options', None)
    if original is None or not callable(original):
        _stand_aside(target, 'not found in this yt-dlp')
        return False
    if _is_wrapped(original):
        return True

    def parse_options(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        ydl_opts = getattr(result, 'ydl_opts', None)
        opts = getattr(result, 'options', None)
        if isinstance(ydl_opts, dict) and opts is not None:
            for key, value in options.params_from_options(opts).items():
                ydl_opts.setdefault(key, value)
            ydl_opts.setdefault(options.EXPLICIT_KEY, options.explicit_params(opts))
            if ydl_opts.get('async_queue'):  # the workers parse the same arguments (config files' too)
                argv = getattr(getattr(result, 'parser', None), PARSED_ARGS, None)
                if argv is None:
                    argv = args[0] if args else kwargs.get('argv')
                ydl_opts['async_queue_argv'] = list(sys.argv[1:] if argv is None else argv)
        else:
            _stand_aside(target, 'its result has no options/ydl_opts')
        return result

    module.parse_options = _mark(parse_options, original)  # type: ignore[attr-defined]
    return True


# --------------------------------------------------------------- yt_dlp.YoutubeDL
def patch_youtubedl_class(module: ModuleType) -> None:
    klass = getattr(module, 'YoutubeDL', None)
    if not isinstance(klass, type):
        _stand_aside('yt_dlp.YoutubeDL.YoutubeDL', 'not found in this yt-dlp')
        return
    from . import fallback

    dl = klass.__dict__.get('dl')
    if dl is None or not callable(dl):
        _stand_aside('YoutubeDL.dl', 'not found in this yt-dlp (fallback reasons are not logged)')
    elif not _is_wrapped(dl):
        def wrapped_dl(self: Any, *args: Any, **kwargs: Any) -> Any:
            with fallback.download_context(self) as context:
                try:
                    result = dl(self, *args, **kwargs)
                finally:
                    if context.handed_back:
                        from . import summary
                        summary.fell_back(self)
            success = result[0] if isinstance(result, tuple) and result else result
            if success and args and isinstance(args[0], str) and args[0] != '-' and os.path.isfile(args[0]):
                from .partmeta import remove_split_leftovers
                remove_split_leftovers(args[0])  # a split attempt's files, once any downloader finished
            return result
        klass.dl = _mark(wrapped_dl, dl)

    header = klass.__dict__.get('print_debug_header')
    if header is None or not callable(header):
        _stand_aside('YoutubeDL.print_debug_header', 'not found in this yt-dlp (no -v line)')
    elif not _is_wrapped(header):
        def print_debug_header(self: Any, *args: Any, **kwargs: Any) -> Any:
            result = header(self, *args, **kwargs)
            try:
                report_debug(self)
            except Exception:
                pass
            return result
        klass.print_debug_header = _mark(print_debug_header, header)

    concurrent = False
    try:  # several playlist entries / URLs at once (playlist.py)
        from . import playlist
        concurrent = playlist.patch_youtubedl_class(klass)
    except Exception as exc:
        _stand_aside('concurrent playlist entries', f'{type(exc).__name__}: {exc}')
    if not concurrent:
        patch_download_without_concurrency(klass)
    download = klass.__dict__.get('download')  # after playlist.py's wrapper: this one is outside it
    if download is None or not callable(download):
        _stand_aside('YoutubeDL.download', 'not found in this yt-dlp (no summary line)')
    elif not _is_wrapped(download):
        from . import summary
        klass.download = _mark(summary.make_download(download), download)

    patch_queue_download(klass)  # outermost: a queued run downloads nothing here


def patch_download_without_concurrency(klass: Any) -> None:
    """playlist.py stood aside: an explicit --concurrent-downloads N gets one WARNING saying so."""
    download = klass.__dict__.get('download')
    if download is None or not callable(download) or _is_wrapped(download) or getattr(download, ALONE_MARK, False):
        return

    def download_one_at_a_time(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            from . import playlist
            playlist.explain_sequential(self, 'item', playlist.UNSUPPORTED or 'concurrent entries stood aside')
        except Exception:
            pass
        return download(self, *args, **kwargs)

    functools.update_wrapper(download_one_at_a_time, download)
    setattr(download_one_at_a_time, ALONE_MARK, True)  # not MARK: the summary's wrapper goes around it
    klass.download = download_one_at_a_time


ALONE_MARK = '__yt_dlp_async_entries_alone__'


QUEUE_MARK = '__yt_dlp_async_queue__'


def patch_queue_download(klass: Any) -> None:
    """``--async-queue URL``: YoutubeDL.download sends the URLs' entries to Celery workers."""
    download = klass.__dict__.get('download')
    if download is None or not callable(download):
        _stand_aside('YoutubeDL.download', 'not found in this yt-dlp (--async-queue is not available)')
        return
    if getattr(download, QUEUE_MARK, False):
        return

    def queue_download(self: Any, url_list: Any) -> Any:
        if not self.params.get('async_queue') or self.params.get('simulate'):
            return download(self, url_list)  # -s, -j, --print ...: nothing to download, yt-dlp prints here
        try:
            from ..celery import cli  # imports celery: only for --async-queue
        except ImportError as exc:
            self.to_stderr(f'ERROR: --async-queue needs Celery and the Redis client: '
                           f'pip install "yt-dlp-async[celery]" ({exc})')
            return 1
        return cli.download(self, url_list)

    functools.update_wrapper(queue_download, download)
    setattr(queue_download, QUEUE_MARK, True)
    klass.download = queue_download


def patch_youtubedl_module(module: ModuleType) -> None:
    patch_youtubedl_class(module)
    from . import multiformat
    if not multiformat.patch_module(module):
        _stand_aside('yt_dlp.YoutubeDL.get_suitable_downloader',
                     'not found in this yt-dlp (merged formats download one after the other)')


# ---------------------------------------------------------------------- dispatch
_PATCHERS: dict[str, Callable[[ModuleType], Any]] = {
    'yt_dlp.downloader': patch_downloader_package,
    'yt_dlp.options': patch_create_parser,
    'yt_dlp.YoutubeDL': patch_youtubedl_module,
    'yt_dlp': patch_parse_options,
}


def on_module_loaded(module: ModuleType) -> None:
    """Called by the import hook right after one of yt-dlp's modules executed."""
    patcher = _PATCHERS.get(getattr(module, '__name__', ''))
    if patcher is None:
        return
    with _lock:
        patcher(module)


def apply_loaded() -> list[str]:
    """Patch the yt-dlp modules already imported; returns their names."""
    done = []
    with _lock:
        for name, patcher in _PATCHERS.items():
            module = sys.modules.get(name)
            if module is not None:
                patcher(module)
                done.append(name)
    return done


def install(import_ytdlp: bool = False) -> bool:
    """Make the engine yt-dlp's http/https downloader in this process.

    Patches the yt-dlp modules already imported and arranges (through the
    import hook) for the others to be patched when they are imported.  With
    ``import_ytdlp=True`` yt-dlp is imported now.  Downloads use the engine
    when ``params['async_downloads']`` is true (or with ``--downloader async``).
    Idempotent; returns True when yt-dlp is patched or will be on import.
    """
    hooked = False
    try:
        import yt_dlp_async_hook
        hooked = yt_dlp_async_hook.install(force=True)
    except Exception:
        hooked = False
    if import_ytdlp or not hooked:
        try:
            internals.load('yt_dlp:YoutubeDL')  # imports yt_dlp (and yt_dlp.YoutubeDL)
        except Exception:
            return hooked
    apply_loaded()
    return True


# ------------------------------------------------------------------------ -v line
def plugin_version() -> str:
    """The package's version (yt_dlp_async/_version.py, the one place it is written)."""
    from .._version import __version__
    return __version__


def status_line(params: dict[str, Any], activated_by: str | None = None) -> str:
    from . import shared_engine
    curl = shared_engine.curl_version() or 'libcurl unavailable'
    enabled = bool(params.get('async_downloads'))
    chosen = params.get('external_downloader')
    if isinstance(chosen, dict) and any(str(v).strip().lower() == 'async' for v in chosen.values()):
        enabled, activated_by = True, activated_by or '--downloader async'
    if enabled:
        state = 'on' + (f' ({activated_by})' if activated_by else '')
        reason = internals.check() or shared_engine.unavailable_reason()
        if reason:
            state += f', but {reason}: yt-dlp\'s downloaders are used'
    else:
        state = 'off'
    return f'[async] Async downloads: {state}; yt-dlp-async {plugin_version()}, {curl}'


def report_debug(ydl: Any, activated_by: str | None = None) -> None:
    """Write the -v lines: the status line, then any patch that stood aside."""
    write_debug = getattr(ydl, 'write_debug', None)
    if write_debug is None or not ydl.params.get('verbose'):
        return
    write_debug(status_line(ydl.params, activated_by))
    for line in fallback.STOOD_ASIDE:
        write_debug(line)
    try:
        import yt_dlp_async_hook
        for error in yt_dlp_async_hook.ERRORS:
            write_debug(f'[async] import hook error: {error}')
    except ImportError:
        pass
