"""The "Async Downloads" option group added to yt-dlp's parser, and its params.

Bad values are rejected while the arguments are parsed (command line and
config files alike) by raising ``optparse.OptionValueError``; yt-dlp's parser
turns that into its own ``yt-dlp: error: ...`` message and exit status 2.
"""

from __future__ import annotations

import optparse
from typing import Any, Callable

from . import internals

GROUP_TITLE = 'Async Downloads'

#: option dest -> YoutubeDL.params key
PARAM_KEYS: dict[str, str] = {
    'async_downloads': 'async_downloads',
    'concurrent_downloads': 'concurrent_downloads',
    'async_chunk_size': 'async_chunk_size',
    'async_timeout': 'async_timeout',
    'async_retry_delay': 'async_retry_delay',
    'async_max_retries': 'async_max_retries',
    'async_connections': 'async_connections',
    'async_host_connections': 'async_host_connections',
    'async_queue': 'async_queue',
}

DEFAULTS: dict[str, Any] = {
    'async_downloads': True,
    'concurrent_downloads': 5,
    'async_chunk_size': 1024 * 1024,
    'async_timeout': None,
    'async_retry_delay': None,
    'async_max_retries': None,
    'async_connections': None,
    'async_host_connections': 16,
    'async_queue': None,
}

#: The params key listing the options given on the command line or in a config
#: file (not left at their defaults).  Without it (the Python API) every key
#: the params hold was given.
EXPLICIT_KEY = 'async_explicit_options'
EXPLICIT_ATTR = '_yt_dlp_async_explicit'

#: URL schemes --async-queue accepts (Redis is the broker and the result store).
QUEUE_SCHEMES = ('redis://', 'rediss://', 'unix://')


def parse_size(value: str) -> int | None:
    """Parse a size the way yt-dlp does (``512K``, ``10M``, ``1.5G``); None if invalid."""
    try:
        parse_bytes = internals.load('yt_dlp.utils:parse_bytes')
    except internals.InternalMissing:  # pragma: no cover - yt-dlp always has it today
        parse_bytes = None
    if parse_bytes is not None:
        try:
            return parse_bytes(value)
        except Exception:
            return None
    units = {u: 1024 ** i for i, u in enumerate(['', *'KMGTPEZY'])}
    text = value.strip().upper()
    unit = text[-1:] if text[-1:] in units and not text[-1:].isdigit() else ''
    try:
        number = float(text[:len(text) - len(unit)] if unit else text)
    except ValueError:
        return None
    return int(number * units[unit])


def _store(convert: Callable[[str], Any], check: Callable[[Any], bool], expected: str) -> Callable[..., None]:
    def callback(option: optparse.Option, opt_str: str, value: str,
                 parser: optparse.OptionParser) -> None:
        try:
            converted = convert(value)
        except (TypeError, ValueError):
            converted = None
        if converted is None or not check(converted):
            raise optparse.OptionValueError(
                f'option {opt_str}: invalid value {value!r}: expected {expected}')
        setattr(parser.values, option.dest, converted)
        given = getattr(parser.values, EXPLICIT_ATTR, None)
        if not isinstance(given, set):
            given = set()
            setattr(parser.values, EXPLICIT_ATTR, given)
        given.add(option.dest)
    return callback


def _connections(value: str) -> int | str:
    """``auto`` or a whole number (checked by the caller)."""
    return 'auto' if value.strip().lower() == 'auto' else int(value)


def _finite_float(value: str) -> float:
    number = float(value)
    if number != number or number in (float('inf'), float('-inf')):
        raise ValueError(value)
    return number


def add_option_group(parser: optparse.OptionParser) -> optparse.OptionGroup:
    """Add the group to ``parser`` (yt-dlp's ``create_parser()`` result) and return it."""
    group = optparse.OptionGroup(parser, GROUP_TITLE, description=(
        'Downloads over http/https, HLS and DASH go through yt-dlp-async\'s libcurl engine, which '
        'runs on a background thread; other protocols, live streams, --download-sections, '
        'impersonation and an explicit --downloader use yt-dlp\'s own downloaders'))
    group.add_option(
        '--async-downloads',
        action='store_true', dest='async_downloads', default=DEFAULTS['async_downloads'],
        help='Download http/https, HLS and DASH formats with the libcurl engine (default)')
    group.add_option(
        '--no-async-downloads',
        action='store_false', dest='async_downloads',
        help='Use yt-dlp\'s own downloaders instead')
    group.add_option(
        '--concurrent-downloads',
        metavar='N', dest='concurrent_downloads', default=DEFAULTS['concurrent_downloads'],
        type='str', action='callback',
        callback=_store(int, lambda n: n >= 1, 'a whole number of at least 1'),
        help='Number of videos (playlist entries, URLs) downloaded at the same time, and -f bv+ba\'s formats '
             'at once (default is 5 on a terminal; where the output is not a terminal, one at a time unless '
             'this option is given)')
    group.add_option(
        '--async-connections',
        metavar='N', dest='async_connections', default=DEFAULTS['async_connections'],
        type='str', action='callback',
        callback=_store(_connections, lambda n: n == 'auto' or 1 <= n <= 64,
                        'auto, or a whole number from 1 to 64'),
        help='Connections per file when the server honours ranges: auto starts with one and adds '
             'more while each step raises the speed, up to 16, and gives them back when the server '
             'pushes back; a number fixes it, and 1 fetches every file in order over one connection '
             '(default is auto, unless -N is given)')
    group.add_option(
        '--async-host-connections',
        metavar='N', dest='async_host_connections', default=DEFAULTS['async_host_connections'],
        type='str', action='callback',
        callback=_store(int, lambda n: 1 <= n <= 1000, 'a whole number from 1 to 1000'),
        help='Most connections to one host at once, shared by every download of the process; '
             'the engine also backs off a host that answers 429/403/503 (default is %default)')
    group.add_option(
        '--chunk-size',
        metavar='SIZE', dest='async_chunk_size', default=DEFAULTS['async_chunk_size'],
        type='str', action='callback',
        callback=_store(parse_size, lambda n: n >= 16384, 'a size of at least 16K, such as 512K or 10M'),
        help='Smallest piece a file is split into across connections, e.g. 512K or 10M (default is 1M)')
    group.add_option(
        '--async-timeout',
        metavar='SECONDS', dest='async_timeout', default=DEFAULTS['async_timeout'],
        type='str', action='callback',
        callback=_store(_finite_float, lambda n: n > 0, 'a number of seconds greater than 0'),
        help='Seconds to wait for a connection, and for a stalled transfer to move, '
             'before the engine retries it (default: --socket-timeout)')
    group.add_option(
        '--async-retry-delay',
        metavar='SECONDS', dest='async_retry_delay', default=DEFAULTS['async_retry_delay'],
        type='str', action='callback',
        callback=_store(_finite_float, lambda n: n >= 0, 'a number of seconds, 0 or more'),
        help='Base delay of the engine\'s exponential backoff between its own retries (default is 1)')
    group.add_option(
        '--async-max-retries',
        metavar='N', dest='async_max_retries', default=DEFAULTS['async_max_retries'],
        type='str', action='callback',
        callback=_store(int, lambda n: n >= 0, 'a whole number, 0 or more'),
        help='Retries the engine makes inside one attempt before yt-dlp\'s own --retries count one '
             '(default is 0: the engine does not retry and --retries/--retry-sleep apply as usual)')
    group.add_option(
        '--async-queue',
        metavar='URL', dest='async_queue', default=DEFAULTS['async_queue'],
        type='str', action='callback',
        callback=_store(str, lambda url: url.startswith(QUEUE_SCHEMES),
                        'a Redis URL such as redis://HOST:6379/0'),
        help='Extract here, then send one task per entry to the Celery workers of this Redis queue '
             '(celery -A yt_dlp_async.celery worker) and show their progress; '
             'needs pip install "yt-dlp-async[celery]" (default is none: everything is downloaded here)')
    parser.add_option_group(group)
    return group


def has_option_group(parser: optparse.OptionParser) -> bool:
    return any(group.title == GROUP_TITLE for group in getattr(parser, 'option_groups', []))


def params_from_options(opts: object) -> dict[str, Any]:
    """The params the group contributes, read from parsed optparse values."""
    return {key: getattr(opts, dest, DEFAULTS[dest]) for dest, key in PARAM_KEYS.items()}


def explicit_params(opts: object) -> list[str]:
    """The params keys whose options were given (command line or config file), not defaulted."""
    given = getattr(opts, EXPLICIT_ATTR, None) or set()
    return sorted(PARAM_KEYS[dest] for dest in given if dest in PARAM_KEYS)


def given(params: Any, key: str) -> bool:
    """Did the user set ``key`` (an option, a config file line, or a key of the API's params)?"""
    listed = params.get(EXPLICIT_KEY)
    if isinstance(listed, (list, tuple, set, frozenset)):
        return key in listed
    return key in params
