"""Every yt-dlp internal that yt-dlp-async imports or patches, named once and checked once.

yt-dlp has no stable API below ``YoutubeDL``: its downloaders, utilities and
private methods move between releases.  So no other module of this package
imports from ``yt_dlp``; each takes what it needs from here with
``load('module:Name')`` (a name missing from ``NAMES`` is a bug, caught by
``tests/test_ytdlp_internals.py``), and ``check()`` looks up every name once,
at activation.  When the installed yt-dlp is older than ``OLDEST_YTDLP`` or
lacks one of the names, the plugin stands aside as a whole: every download goes
to yt-dlp's own downloaders, entries run one at a time, and ``yt-dlp -v`` says
why.  The options of the "Async Downloads" group still parse, so that a config
file that names them keeps working.

A name is ``'package.module:Attribute'`` or ``'package.module:Class.attribute'``.
Attributes yt-dlp sets on an instance cannot be looked up here; they are read
with ``getattr`` and a safe answer when absent, and listed in ``INSTANCE``.
(baton.py's ``AUDITED`` list names yt-dlp frames too, by file and qualified
name: it decides where the baton may be given up, and a frame it does not
know only costs overlap, never correctness.)
"""

from __future__ import annotations

import importlib
import re
import threading
from typing import Any

#: The oldest yt-dlp release this plugin is tested against (CI runs it, the
#: newest release and the newest nightly).  Older releases lack
#: ``yt_dlp.utils.networking.select_proxy`` and other names below.
OLDEST_YTDLP = '2025.05.22'

#: name -> what uses it.  Keep sorted.
NAMES: dict[str, str] = {
    'yt_dlp:YoutubeDL': 'the API the Python glue drives',
    'yt_dlp:parse_options': 'patches: the option group\'s values reach ydl_opts; celery.cli: a worker parses the submitter\'s argv',
    'yt_dlp.YoutubeDL:YoutubeDL._YoutubeDL__download_wrapper': 'playlist: URLs of a batch at once',
    'yt_dlp.YoutubeDL:YoutubeDL._YoutubeDL__process_iterable_entry': 'playlist: entries at once',
    'yt_dlp.YoutubeDL:YoutubeDL._YoutubeDL__process_playlist': 'playlist: entries at once',
    'yt_dlp.YoutubeDL:YoutubeDL._make_archive_id': 'playlist: archive lines; celery.cli: the Redis archive',
    'yt_dlp.YoutubeDL:YoutubeDL._match_entry': 'playlist: a free slot before the next entry',
    'yt_dlp.YoutubeDL:YoutubeDL._playlist_infodict': 'celery.cli: the playlist fields of a flat entry',
    'yt_dlp.YoutubeDL:YoutubeDL._request_director': 'request_options: which handler (and so which redirect rules) yt-dlp uses',
    'yt_dlp.YoutubeDL:YoutubeDL._write_info_json': 'playlist: the updated playlist info json',
    'yt_dlp.YoutubeDL:YoutubeDL._write_string': 'playlist: messages written above the status lines',
    'yt_dlp.YoutubeDL:YoutubeDL.dl': 'patches: fallback [debug] lines; playlist: one writer per file',
    'yt_dlp.YoutubeDL:YoutubeDL.download': 'playlist: URLs of a batch at once; summary: the run\'s last line',
    'yt_dlp.YoutubeDL:YoutubeDL.extract_info': 'playlist: URLs of a batch at once',
    'yt_dlp.YoutubeDL:YoutubeDL.in_download_archive': 'playlist: archive lines',
    'yt_dlp.YoutubeDL:YoutubeDL.prepare_filename': 'celery.policy: a worker writes only inside its folders',
    'yt_dlp.YoutubeDL:YoutubeDL.print_debug_header': 'patches: the -v line',
    'yt_dlp.YoutubeDL:YoutubeDL.process_ie_result': 'celery.cli: a worker downloads an entry extracted by the submitter',
    'yt_dlp.YoutubeDL:YoutubeDL.process_info': 'playlist: entries at once',
    'yt_dlp.YoutubeDL:YoutubeDL.record_download_archive': 'playlist: archive lines; celery.cli: a name another worker wrote',
    'yt_dlp.YoutubeDL:YoutubeDL.report_error': 'celery.cli: an entry\'s error, as yt-dlp prints it',
    'yt_dlp.YoutubeDL:YoutubeDL.run_all_pps': 'playlist: playlist postprocessors after every entry',
    'yt_dlp.YoutubeDL:YoutubeDL.sanitize_info': 'celery.cli: an entry as JSON for the worker',
    'yt_dlp.YoutubeDL:get_suitable_downloader': 'multiformat: video and audio at once',
    'yt_dlp.aes:aes_cbc_decrypt_bytes': 'fragment_crypto: AES-128 without the extension',
    'yt_dlp.aes:unpad_pkcs7': 'fragment_crypto: AES-128 without the extension',
    'yt_dlp.dependencies:Cryptodome': 'hls: AES-128 decrypted in C counts as available',
    'yt_dlp.dependencies:certifi': 'request_options: the CA bundle yt-dlp uses',
    'yt_dlp.downloader:_get_suitable_downloader': 'patches: the downloader choice',
    'yt_dlp.downloader:get_suitable_downloader': 'multiformat: each format\'s downloader',
    'yt_dlp.downloader:shorten_protocol_name': 'fallback: --downloader PROTO:NAME',
    'yt_dlp.downloader.common:FileDownloader': 'the base class of our downloaders',
    'yt_dlp.downloader.common:FileDownloader._hook_progress': 'boundary: were bytes reported before a failure',
    'yt_dlp.downloader.common:FileDownloader._prepare_multiline_status': 'playlist: one status line per download',
    'yt_dlp.downloader.common:FileDownloader.report_retry': 'fragment_pipeline: HttpFD\'s and FragmentFD\'s retry lines, --retry-sleep',
    'yt_dlp.downloader.dash:DashSegmentsFD': 'dash: the fragment loop is ours',
    'yt_dlp.downloader.external:ExternalFD._call_downloader': 'baton: an audited frame (AUDITED)',
    'yt_dlp.downloader.external:FFmpegFD._call_downloader': 'baton: an audited frame (AUDITED)',
    'yt_dlp.downloader.external:_BY_NAME': 'patches: --downloader async',
    'yt_dlp.downloader.fragment:FragmentFD._append_fragment': 'fragment_resume: bytes, then the state',
    'yt_dlp.downloader.fragment:FragmentFD._prepare_and_start_frag_download': 'hls: every fragment listed',
    'yt_dlp.downloader.fragment:FragmentFD._prepare_frag_download': 'fragment_resume: .part cut to the state',
    'yt_dlp.downloader.fragment:FragmentFD._write_ytdl_file': 'fragment_resume: the state written atomically',
    'yt_dlp.downloader.fragment:FragmentFD.download_and_append_fragments': 'fragments: the loop the engine replaces',
    'yt_dlp.downloader.fragment:FragmentFD.report_skip_fragment': 'fragment_pipeline: "Skipping fragment N"',
    'yt_dlp.downloader.hls:HlsFD': 'hls: the fragment loop is ours',
    'yt_dlp.downloader.http:HttpFD': 'downloader: the fallback for one download',
    'yt_dlp.minicurses:BreaklineStatusPrinter': 'console: status lines',
    'yt_dlp.minicurses:MultilinePrinter': 'console: status lines',
    'yt_dlp.networking:Request': 'request_options: the request whose handler yt-dlp would choose',
    'yt_dlp.networking:Response': 'errors: HTTPError for a failed reply',
    'yt_dlp.networking.exceptions:CertificateVerifyError': 'errors: TLS failures',
    'yt_dlp.networking.exceptions:HTTPError': 'errors: HTTP status errors; fragment_pipeline: 5xx are --retries',
    'yt_dlp.networking.exceptions:ProxyError': 'errors: proxy failures',
    'yt_dlp.networking.exceptions:SSLError': 'errors: TLS failures',
    'yt_dlp.networking.exceptions:TransportError': 'errors: network failures; fragment_pipeline: --retries',
    'yt_dlp.networking.exceptions:UnsupportedRequest': 'request_options: a handler that cannot take a request',
    'yt_dlp.options:create_parser': 'patches: the option group; celery.cli: which arguments are URLs',
    'yt_dlp.postprocessor:FFmpegMergerPP': 'multiformat: can the formats be merged',
    'yt_dlp.postprocessor.common:PostProcessor': 'the AsyncDownloads postprocessor plugin',
    'yt_dlp.postprocessor.exec:ExecPP.run': 'baton: an audited frame (AUDITED)',
    'yt_dlp.postprocessor.ffmpeg:FFmpegMergerPP': 'multiformat: the merger reads our part names',
    'yt_dlp.postprocessor.ffmpeg:FFmpegMergerPP.run': 'multiformat: the merger reads our part names',
    'yt_dlp.postprocessor.ffmpeg:FFmpegPostProcessor.real_run_ffmpeg': 'baton: an audited frame (AUDITED)',
    'yt_dlp.utils:ContentTooShortError': 'errors: a short body; fragment_pipeline: --retries',
    'yt_dlp.utils:DownloadError': 'celery.cli, fragment_pipeline: the error report_error raises',
    'yt_dlp.utils:Popen': 'baton: an audited frame (AUDITED)',
    'yt_dlp.utils:RetryManager': 'http_download, segmented_download: --retries',
    'yt_dlp.utils:ThrottledDownload': 'http_download: --throttled-rate',
    'yt_dlp.utils:XAttrMetadataError': 'http_download: --xattr-set-filesize',
    'yt_dlp.utils:XAttrUnavailableError': 'http_download: --xattr-set-filesize',
    'yt_dlp.utils:YoutubeDLError': 'boundary: yt-dlp\'s own errors always propagate',
    'yt_dlp.utils:extract_basic_auth': 'request_options: user:pass@ in a URL, as YoutubeDL.urlopen sends it',
    'yt_dlp.utils:is_path_like': 'playlist: the archive path',
    'yt_dlp.utils:locked_file': 'playlist, celery.cli: archive writes under a lock',
    'yt_dlp.utils:parse_bytes': 'options: --chunk-size',
    'yt_dlp.utils:parse_http_range': 'http_download, fragment_pipeline: Range headers',
    'yt_dlp.utils:prepend_extension': 'multiformat: the per-format file names',
    'yt_dlp.utils:variadic': 'playlist: URL lists',
    'yt_dlp.utils:write_string': 'console: status lines',
    'yt_dlp.utils:write_xattr': 'http_download: --xattr-set-filesize',
    'yt_dlp.utils.networking:HTTPHeaderDict': 'request_options: the request headers',
    'yt_dlp.utils.networking:clean_headers': 'request_options: internal pseudo-headers',
    'yt_dlp.utils.networking:clean_proxies': 'request_options: the proxy yt-dlp would use',
    'yt_dlp.utils.networking:normalize_url': 'fragment_pipeline: URLs escaped as yt-dlp\'s Request does',
    'yt_dlp.utils.networking:select_proxy': 'request_options: the proxy yt-dlp would use',
    'yt_dlp.utils.progress:ProgressCalculator': 'fragment_pipeline: speed and ETA',
    'yt_dlp.version:__version__': 'the version check',
}

#: instance attributes read (not in NAMES: they exist only once a YoutubeDL is made) -> what uses it
INSTANCE: dict[str, str] = {
    'YoutubeDL._num_downloads': 'playlist: --max-downloads per entry (checked in YoutubeDL.__init__\'s code)',
    'YoutubeDL._out_files': 'console.is_terminal: entries at once and the summary line only on a terminal '
                            '(absent: treated as not a terminal)',
}

_MISSING = object()
_lock = threading.Lock()
_checked: list[str | None] = []   # [] until check() ran, then [reason or None]
_cache: dict[str, Any] = {}


class InternalMissing(ImportError):
    """A yt-dlp internal is not in this yt-dlp (or not in ``NAMES``)."""


def _resolve(name: str) -> Any:
    module_name, _, attribute = name.partition(':')
    value: Any = importlib.import_module(module_name)
    for part in attribute.split('.'):
        # a class attribute must be the class's own (a patch replaces it there)
        namespace = getattr(value, '__dict__', None) if isinstance(value, type) else None
        if namespace is not None and part in namespace:
            value = namespace[part]
        else:
            value = getattr(value, part, _MISSING)
        if value is _MISSING:
            raise InternalMissing(f'{name.replace(":", ".")} is not in this yt-dlp')
    return value


def load(name: str) -> Any:
    """The yt-dlp object ``name`` ('module:Attr'); InternalMissing if absent."""
    if name not in NAMES:
        raise InternalMissing(f'{name} is not named in yt_dlp_async.ytdlp.internals.NAMES')
    try:
        return _cache[name]
    except KeyError:
        pass
    try:
        value = _resolve(name)
    except InternalMissing:
        raise
    except ImportError as exc:
        raise InternalMissing(f'{name.replace(":", ".")}: {exc}') from exc
    _cache[name] = value
    return value


def version_tuple(version: str) -> tuple[int, ...]:
    """'2025.05.22' -> (2025, 5, 22); nightlies ('2026.10.26.220202') keep their extra part."""
    return tuple(int(part) for part in re.findall(r'\d+', version)[:4])


def _reason() -> str | None:
    try:
        version = str(load('yt_dlp.version:__version__'))
    except Exception as exc:
        return f'cannot read yt-dlp\'s version ({exc})'
    if version_tuple(version) < version_tuple(OLDEST_YTDLP):
        return (f'yt-dlp {version} is older than {OLDEST_YTDLP}, the oldest this plugin supports '
                f'(pip install -U "yt-dlp>={OLDEST_YTDLP}")')
    missing = []
    for name in NAMES:
        try:
            load(name)
        except Exception as exc:
            missing.append(str(exc))
    if missing:
        return f'yt-dlp {version} lacks what the plugin uses: ' + '; '.join(missing)
    return None


def check() -> str | None:
    """Why the plugin must stand aside in this yt-dlp (None: every name is there).  Runs once."""
    with _lock:
        if not _checked:
            try:
                _checked.append(_reason())
            except Exception as exc:  # never break yt-dlp
                _checked.append(f'the check of yt-dlp\'s internals failed ({type(exc).__name__}: {exc})')
        return _checked[0]
