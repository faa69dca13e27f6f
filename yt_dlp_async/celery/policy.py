"""What a worker agrees to run: an allowlist of options, and the folders it writes to.

A signed task (sealing.py) comes from someone who holds the key, but holding the
key means "may ask for downloads", not "may run programs on the workers".  So the
worker runs a job only when every option it sets is on the allowlist below, or on
the worker's own list, from its environment or its config file (never from the task):

  YTDLP_ASYNC_ALLOW_OPTIONS  comma-separated options this worker also accepts, by their
                             long name (``--exec,--ffmpeg-location``) or yt-dlp's name
                             for them (``exec_cmd``); ``*`` accepts every option
  YTDLP_ASYNC_ALLOW_PATHS    folders (``os.pathsep``-separated) the worker may also write
                             to, besides its work folder (YTDLP_ASYNC_WORKDIR or its cwd)
  worker.conf                ``allow-options = --exec`` and ``allow-paths = /srv/media`` lines,
                             added to those (``$XDG_CONFIG_HOME/yt-dlp-async/worker.conf``, or
                             the file YTDLP_ASYNC_WORKER_CONFIG names)

Refused unless allowed there: anything that runs a program or loads code (``--exec``,
``--exec-before-download``, ``--netrc-cmd``, ``--ffmpeg-location``, ``--downloader``,
``--downloader-args``, ``--postprocessor-args``, ``--use-postprocessor``,
``--plugin-dirs``, ``--js-runtimes``, ``--remote-components``, ``--bidi-workaround``,
``--update``), anything that reads or writes the worker's own files outside its folders
(``--batch-file``, ``--load-info-json``, ``--config-locations``, ``--cookies-from-browser``,
``--netrc``, ``--netrc-location``, ``--client-certificate``, ``--cache-dir``,
``--print-to-file``, ``--load-pages``, ``--write-pages``, ``--enable-file-urls``), and
``--print-traffic`` (it logs header values).  Every option not named in SAFE_DESTS
(new yt-dlp options too) is refused until it is looked at.

Paths: ``-o``, ``-P`` and ``--cookies`` must lead into the worker's folders, checked
before the download, and every file name yt-dlp makes (``prepare_filename``) is checked
again when it is made, so a field value cannot lead out either.
"""

from __future__ import annotations

import optparse
import os
import re
from typing import Any, Iterable

from ..ytdlp import internals
from ..ytdlp.options import EXPLICIT_ATTR, EXPLICIT_KEY

#: parser dests of options that neither run programs nor touch the worker's files
SAFE_DESTS = frozenset('''
ignoreerrors allowed_extractors force_generic_extractor default_search ignoreconfig extract_flat
live_from_start wait_for_video mark_watched color compat_opts proxy socket_timeout source_address
impersonate geo_verification_proxy geo_bypass playliststart playlistend playlist_items matchtitle
rejecttitle min_filesize max_filesize date datebefore dateafter min_views max_views match_filter
breaking_match_filter noplaylist age_limit max_downloads break_on_existing break_on_reject break_per_url
skip_playlist_after_errors concurrent_fragment_downloads ratelimit throttledratelimit retries
file_access_retries fragment_retries retry_sleep skip_unavailable_fragments keep_fragments buffersize
noresizebuffer http_chunk_size test playlist_reverse playlist_random lazy_playlist hls_prefer_native
hls_use_mpegts download_ranges useid paths outtmpl outtmpl_na_placeholder autonumber_size
autonumber_start restrictfilenames windowsfilenames trim_file_name overwrites continue_dl nopart
updatetime writedescription writeinfojson allow_playlist_files clean_infojson getcomments cookiefile
writethumbnail list_thumbnails writelink writeurllink writewebloclink writedesktoplink quiet
no_warnings simulate ignore_no_formats_error skip_download forceprint geturl gettitle getid
getthumbnail getdescription getduration getfilename getformat dumpjson dump_single_json print_json
force_write_download_archive progress_with_newline noprogress consoletitle progress_template
progress_delta verbose encoding legacy_server_connect no_check_certificate prefer_insecure
user_agent referer headers sleep_interval_requests sleep_interval max_sleep_interval
sleep_interval_subtitles format format_sort format_sort_force allow_multiple_video_streams
allow_multiple_audio_streams prefer_free_formats check_formats listformats listformats_table
merge_output_format allow_unplayable_formats writesubtitles writeautomaticsub allsubtitles
listsubtitles subtitlesformat subtitleslangs username password twofactor videopassword ap_mso
ap_username ap_password extractaudio audioformat audioquality remuxvideo recodevideo keepvideo
nopostoverwrites embedsubtitles embedthumbnail addmetadata addchapters embed_infojson metafromtitle
parse_metadata xattrs concat_playlist fixup convertsubtitles convertthumbnails split_chapters
remove_chapters force_keyframes_at_cuts sponsorblock_mark sponsorblock_remove
sponsorblock_chapter_title no_sponsorblock sponsorblock_api extractor_retries dynamic_mpd
hls_split_discontinuity extractor_args async_downloads concurrent_downloads async_connections
async_host_connections async_chunk_size async_timeout async_retry_delay async_max_retries
'''.split()) | {EXPLICIT_ATTR}   # which of the plugin's options were given (a set of their names)

#: YoutubeDL params (Python API jobs) that neither run programs nor touch the worker's files
SAFE_PARAMS = SAFE_DESTS | frozenset('''
http_headers continuedl outtmpl_na_placeholder playlistreverse playlistrandom noprogress
extract_flat postprocessors format_sort check_formats writeautomaticsub
allow_multiple_video_streams allow_multiple_audio_streams extractor_retries sleep_interval
autonumber_start
'''.split()) | {EXPLICIT_KEY}

#: postprocessors a Python API job may ask for (Exec runs commands; others by key must be allowed)
SAFE_POSTPROCESSORS = frozenset('''
FFmpegExtractAudio FFmpegVideoConvertor FFmpegVideoRemuxer FFmpegEmbedSubtitle FFmpegMetadata
EmbedThumbnail FFmpegSubtitlesConvertor FFmpegThumbnailsConvertor FFmpegSplitChapters SponsorBlock
ModifyChapters FFmpegConcat FFmpegCopyStream FFmpegFixupStretched FFmpegFixupM4a FFmpegFixupM3u8
FFmpegFixupTimestamp FFmpegFixupDuration FFmpegFixupDuplicateMoov MetadataParser XAttrMetadata
'''.split())

#: the long option named in a refusal, for params whose name is not the option's
PARAM_OPTIONS = {'exec_cmd': '--exec', 'postprocessors': '--use-postprocessor', 'ffmpeg_location': '--ffmpeg-location',
                 'netrc_cmd': '--netrc-cmd', 'external_downloader': '--downloader',
                 'cookiesfrombrowser': '--cookies-from-browser', 'load_info_filename': '--load-info-json'}


class Refusal(ValueError):
    """The job asks for something this worker does not allow; the message names it."""


def config_file() -> str:
    """The worker's own configuration: YTDLP_ASYNC_WORKER_CONFIG, else $XDG_CONFIG_HOME/yt-dlp-async/worker.conf."""
    base = os.environ.get('XDG_CONFIG_HOME') or os.path.join(os.path.expanduser('~'), '.config')
    return os.environ.get('YTDLP_ASYNC_WORKER_CONFIG') or os.path.join(base, 'yt-dlp-async', 'worker.conf')


def _config(key: str) -> list[str]:
    """The values of ``key = value`` lines of the worker's config file (``#`` starts a comment)."""
    try:
        with open(config_file(), encoding='utf-8') as f:
            lines = f.read().splitlines()
    except OSError:
        return []
    found = []
    for line in lines:
        name, sep, value = line.split('#', 1)[0].partition('=')
        if sep and name.strip() == key and value.strip():
            found.append(value.strip())
    return found


def allowed_extra() -> set[str]:
    """YTDLP_ASYNC_ALLOW_OPTIONS and the config file's ``allow-options`` lines."""
    raws = [os.environ.get('YTDLP_ASYNC_ALLOW_OPTIONS') or '', *_config('allow-options')]
    return {part.strip() for raw in raws for part in raw.split(',') if part.strip()}


def roots(workdir: str) -> list[str]:
    """The work folder, YTDLP_ASYNC_ALLOW_PATHS and the config file's ``allow-paths`` lines."""
    raws = [os.environ.get('YTDLP_ASYNC_ALLOW_PATHS') or '', *_config('allow-paths')]
    extra = [p for raw in raws for p in raw.split(os.pathsep) if p]
    return [os.path.realpath(os.path.expanduser(p)) for p in [workdir, *extra]]


def _allowed(names: Iterable[str], extra: set[str]) -> bool:
    return '*' in extra or any(name in extra for name in names)


def _refuse(option: str) -> Refusal:
    return Refusal(f'refused: {option} is not allowed on this worker '
                   f'(the worker\'s YTDLP_ASYNC_ALLOW_OPTIONS can allow it)')


# ------------------------------------------------------------------ command lines
def _option_used(argv: list[str], strings: list[str]) -> str:
    """The option string of ``strings`` that ``argv`` spells (abbreviations too), else the first long one."""
    for arg in argv:
        head = arg.split('=', 1)[0]
        for s in strings:
            if head == s or (head.startswith('--') and len(head) > 3 and s.startswith(head)):
                return s
            if not head.startswith('--') and len(s) == 2 and head.startswith(s):
                return s
    return next((s for s in strings if s.startswith('--')), strings[0])


def parse_failure(exc: BaseException, argv: list[str]) -> str:
    """The refusal of options yt-dlp cannot parse: its reason, unless the reason quotes a value."""
    text = str(exc.code if isinstance(exc, SystemExit) else exc.msg if isinstance(exc, optparse.OptParseError)
               else exc)
    reason = text.strip().splitlines()[-1].split('error: ', 1)[-1] if text.strip() else ''
    values = [a.split('=', 1)[1] if a.startswith('--') and '=' in a else a[2:] if not a.startswith('--') and
              a.startswith('-') else a for a in argv if not (a.startswith('--') and '=' not in a)]
    values = [v for v in values if len(v) >= 3]
    if not reason or any(v in reason for v in values):  # it may quote a password: not repeated
        return 'refused: the worker cannot parse the options'
    return f'refused: the worker cannot parse the options: {reason}'


def check_argv(argv: list[str]) -> None:
    """Refusal when ``argv`` sets an option that is neither safe nor allowed by the worker.

    Parsed with yt-dlp's parser alone (no config or batch file is read): every option whose
    value differs from its default is checked.
    """
    parser = internals.load('yt_dlp.options:create_parser')()
    try:
        given, _ = parser.parse_args(list(argv))
    except (SystemExit, optparse.OptParseError) as exc:
        raise Refusal(parse_failure(exc, argv)) from None
    defaults = parser.get_default_values()
    extra = allowed_extra()
    by_dest: dict[str, list[str]] = {}
    for option in parser._get_all_options():
        if option.dest:
            by_dest.setdefault(option.dest, []).extend(option._long_opts + option._short_opts)
    for dest, value in sorted(vars(given).items()):
        if dest in SAFE_DESTS or value == getattr(defaults, dest, None) or value in (None, False, [], {}, ''):
            continue  # a risky option turned off (--no-cache-dir, --no-exec...) is harmless
        strings = by_dest.get(dest) or [dest]
        if _allowed([dest, *strings], extra):
            continue
        raise _refuse(_option_used(list(argv), strings))


# ------------------------------------------------------------------ Python API options
def check_params(opts: dict[str, Any]) -> None:
    """Refusal when a Python API job's ydl_opts hold a param that is neither safe nor allowed."""
    extra = allowed_extra()
    for key in sorted(opts):
        if key not in SAFE_PARAMS and not _allowed([key, PARAM_OPTIONS.get(key, '')], extra):
            raise _refuse(PARAM_OPTIONS.get(key) or key)
    for pp in opts.get('postprocessors') or []:
        name = str(pp.get('key') if isinstance(pp, dict) else pp)
        if name in SAFE_POSTPROCESSORS:
            continue
        option = '--exec' if name == 'Exec' else f'the {name} postprocessor'
        if not _allowed([name, option, 'exec_cmd' if name == 'Exec' else name], extra):
            raise _refuse(option)


# ------------------------------------------------------------------ paths
_FIELD = re.compile(r'%(?:\([^)]*\))?[-#0+ ]*\d*(?:\.\d+)?[diouxXeEfFgGcrsaBjhlqDSU%]')


def inside(path: str, folders: list[str]) -> bool:
    real = os.path.realpath(path)
    return any(real == f or real.startswith(f.rstrip(os.sep) + os.sep) for f in folders)


def _where(path: str, folders: list[str]) -> str:
    return (f'{path}, outside this worker\'s folders ({", ".join(folders)}; '
            f'YTDLP_ASYNC_WORKDIR and YTDLP_ASYNC_ALLOW_PATHS on the worker)')


def check_paths(opts: dict[str, Any], workdir: str) -> None:
    """Refusal when -o/-P/--cookies (already resolved against ``workdir``) lead outside the folders."""
    folders = roots(workdir)
    paths = dict(opts.get('paths') or {})
    home = str(paths.get('home') or workdir)
    for kind, value in paths.items():
        full = os.path.join(home, os.path.expanduser(str(value))) if kind != 'home' else home
        if not inside(full, folders):
            raise Refusal(f'refused: -P/--paths {kind} is {_where(full, folders)}')
    outtmpl = opts.get('outtmpl')
    templates = outtmpl.values() if isinstance(outtmpl, dict) else [outtmpl]
    for template in templates:
        if not isinstance(template, str) or template in ('', '-'):
            continue
        probe = _FIELD.sub('x', os.path.expanduser(template))  # a field's value cannot hold a separator
        full = os.path.normpath(os.path.join(home, probe))
        if not inside(full, folders):
            raise Refusal(f'refused: -o/--output writes to {_where(full, folders)}')
    cookiefile = opts.get('cookiefile')
    if cookiefile and not inside(str(cookiefile), folders):
        raise Refusal(f'refused: --cookies is {_where(str(cookiefile), folders)}')


def quiet_argv(argv: list[str]) -> tuple[list[str], str | None]:
    """``argv`` without -v/--verbose unless the worker allows it, and the note that says so.

    Verbose, yt-dlp prints the command line (header values are not hidden) and an API
    YoutubeDL its ``params``: the password and header values would go to the worker's log.
    """
    if _allowed(['--verbose', 'verbose'], allowed_extra()):
        return argv, None
    parser = internals.load('yt_dlp.options:create_parser')()
    if not parser.parse_args(list(argv))[0].verbose:
        return argv, None
    kept = [a for a in argv if not (a == '-v' or (a.startswith('--verb') and '--verbose'.startswith(a)))]
    if parser.parse_args(list(kept))[0].verbose:
        raise Refusal('refused: -v inside a group of short options (give -v alone; this worker ignores it)')
    return kept, VERBOSE_NOTE


def quiet_params(opts: dict[str, Any]) -> str | None:
    """A Python API job's ``verbose`` turned off unless the worker allows it (see quiet_argv)."""
    if not opts.get('verbose') or _allowed(['--verbose', 'verbose'], allowed_extra()):
        return None
    opts['verbose'] = False
    return VERBOSE_NOTE


VERBOSE_NOTE = ('-v/--verbose is ignored on this worker: yt-dlp would print the options, passwords and '
                'header values included, to its log (the worker\'s YTDLP_ASYNC_ALLOW_OPTIONS=--verbose keeps it)')


def guard_filenames(ydl: Any, workdir: str) -> None:
    """Check every name ``ydl.prepare_filename`` makes: a file outside the folders is an error."""
    folders = roots(workdir)
    prepare = ydl.prepare_filename
    DownloadError = internals.load('yt_dlp.utils:DownloadError')

    def checked(*args: Any, **kwargs: Any) -> Any:
        name = prepare(*args, **kwargs)
        if isinstance(name, str) and name not in ('', '-') and not inside(os.path.abspath(name), folders):
            raise DownloadError(f'refused: the output file {_where(os.path.abspath(name), folders)}')
        return name

    ydl.prepare_filename = checked
