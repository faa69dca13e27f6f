"""Issue 16, cases 7-12: faults where yt-dlp alone did better than the plugin.

Every test runs the very same ``yt-dlp`` command twice, in its own empty
folder each: with ``--no-async-downloads`` (yt-dlp alone) and without (the
plugin), on its own resource key of the fault server, and compares what each
left: the exit status, the SHA-256 of the file, the files in the folder, and
the requests the server(s) saw.
"""

from __future__ import annotations

import base64
import dataclasses
import os
import re
import stat
import subprocess
import sys
import urllib.parse
from pathlib import Path
from typing import Any, Sequence

import pytest

import fragment_streams
from faultserver import FaultServer, sha256_of
from ytdlp_support import (ENGINE_LINE, get_requests, output, require_engine, require_hook, run_ytdlp, sha256_file,
                           write_info_json)

ALONE, PLUGIN = 'alone', 'plugin'
SIDES = (ALONE, PLUGIN)
COMMON = ['-v', '--retries', '2', '--fragment-retries', '2', '--retry-sleep', '0', '--socket-timeout', '5',
          '--fixup', 'never', '--ffmpeg-location', '/nonexistent/ffmpeg']
SIZE = 3 * 1024 * 1024 + 12_345


@pytest.fixture(autouse=True)
def _installed() -> None:
    require_hook()
    require_engine()


@dataclasses.dataclass
class Run:
    side: str
    proc: subprocess.CompletedProcess[str]
    folder: Path
    output_name: str

    @property
    def exit(self) -> int:
        return self.proc.returncode

    @property
    def log(self) -> str:
        return self.proc.stdout + self.proc.stderr

    def sha(self, name: str | None = None) -> str | None:
        path = self.folder / (name or self.output_name)
        return sha256_file(path) if path.is_file() else None

    def files(self) -> list[str]:
        return sorted(p.name for p in self.folder.iterdir() if p.name != '.home')

    def __str__(self) -> str:
        return f'[{self.side}] files {self.files()}\n{output(self.proc)}'


def run_both(tmp_path: Path, url_for: Any, args: Sequence[str] = (), output_name: str = 'out.bin',
             timeout: float = 120) -> dict[str, Run]:
    """The same command alone and with the plugin; ``url_for(side)`` gives each side its URL."""
    runs = {}
    for side in SIDES:
        folder = tmp_path / side
        folder.mkdir()
        switch = ['--no-async-downloads'] if side == ALONE else []
        proc = run_ytdlp([*switch, *COMMON, '-o', output_name, *args, url_for(side)], folder, timeout=timeout)
        runs[side] = Run(side, proc, folder, output_name)
    plugin = runs[PLUGIN]
    assert ENGINE_LINE in plugin.log or 'Downloading' in plugin.log, plugin
    return runs


# ------------------------------------------------------------------ case 7
@pytest.mark.parametrize('query', [{'bare206': 1, 'norange': 1}, {'bare206': 1}], ids=['whole', 'ranges'])
@pytest.mark.parametrize('args', [[], ['--http-chunk-size', '1M']], ids=['default', 'chunked'])
def test_206_without_content_range_to_a_plain_get(tmp_path: Path, fault_server: FaultServer,
                                                   query: dict[str, int], args: list[str]) -> None:
    """Case 7: a 206 without Content-Range to a GET that asked no Range is the whole
    resource (yt-dlp alone saves it, exit 0); to a ranged request it is unusable."""
    runs = run_both(tmp_path, lambda side: fault_server.data_url(SIZE, 'mp4', key=f'c7-{side}', **query), args)
    plugin = runs[PLUGIN]
    assert plugin.exit == 0, plugin
    assert plugin.sha() == sha256_of(SIZE), plugin
    assert plugin.files() == ['out.bin'], plugin
    assert ENGINE_LINE in plugin.log, plugin
    assert 'Giving up' not in plugin.log and 'unbounded' not in plugin.log, plugin
    alone = runs[ALONE]
    assert alone.exit == 0, alone
    if args and 'norange' not in query:
        # alone takes the 206 to its first chunk's Range as the whole file: 1 MiB, exit 0
        assert alone.sha() != sha256_of(SIZE), alone
    else:
        assert alone.sha() == sha256_of(SIZE), alone
    # the plugin's last request is a plain GET answered 206 with the whole body
    last = [r for r in get_requests(fault_server, '/data/' + f'{SIZE}.mp4') if r.query['key'] == 'c7-plugin'][-1]
    assert last.range is None and last.status == 206 and last.bytes_sent == SIZE


# ------------------------------------------------------------------ case 8
def _make_node(path: Path, kind: str) -> None:
    if kind == 'fifo':
        os.mkfifo(path)
        return
    try:
        os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 3))   # another /dev/null
    except PermissionError:
        pytest.skip('mknod of a character device needs root')


@pytest.mark.parametrize('kind', ['fifo', 'chardev'])
def test_failed_no_part_download_leaves_a_special_file(tmp_path: Path, fault_server: FaultServer, kind: str) -> None:
    """Case 8: a failed --no-part download leaves what was at the output path when it is
    not a regular file (yt-dlp alone never opened it); the plugin unlinked it."""
    before = {}
    for side in SIDES:
        (tmp_path / side).mkdir()
        _make_node(tmp_path / side / 'out.bin', kind)
        before[side] = os.lstat(tmp_path / side / 'out.bin')
    runs: dict[str, Run] = {}
    for side in SIDES:
        switch = ['--no-async-downloads'] if side == ALONE else []
        url = fault_server.data_url(SIZE, 'mp4', fail=100, skip=1, key=f'c8-{kind}-{side}')
        proc = run_ytdlp([*switch, *COMMON, '--no-part', '-o', 'out.bin', url], tmp_path / side, timeout=120)
        runs[side] = Run(side, proc, tmp_path / side, 'out.bin')
    for side in SIDES:
        run = runs[side]
        assert run.exit == 1, run
        after = os.lstat(run.folder / 'out.bin')   # still there ...
        assert stat.S_IFMT(after.st_mode) == stat.S_IFMT(before[side].st_mode), run   # ... the same kind
        assert (after.st_ino, after.st_rdev) == (before[side].st_ino, before[side].st_rdev), run
        assert run.files() == ['out.bin'], run
    assert ENGINE_LINE in runs[PLUGIN].log, runs[PLUGIN]


# ------------------------------------------------------------------ case 9
def _requests_path(tmp_path: Path) -> str | None:
    """A folder with requests and urllib3 (and their dependencies) from the base
    interpreter, for PYTHONPATH: yt-dlp then sends through its Requests handler."""
    code = ('import os, certifi, charset_normalizer, idna, requests, urllib3; '
            'print(*[os.path.dirname(m.__file__) for m in (certifi, charset_normalizer, idna, requests, urllib3)])')
    base = Path(sys.base_prefix) / 'bin' / 'python3'
    try:
        out = subprocess.run([str(base), '-I', '-c', code], capture_output=True, text=True, timeout=60)
    except OSError:
        return None
    if out.returncode != 0:
        return None
    folder = tmp_path / 'requests-path'
    folder.mkdir()
    for package in out.stdout.split():
        (folder / Path(package).name).symlink_to(package)
    return str(folder)


@pytest.mark.parametrize('handler', ['Urllib', 'Requests'])
def test_authorization_across_a_redirect_to_another_host(tmp_path: Path, fault_server: FaultServer,
                                                         fault_server2: FaultServer, handler: str) -> None:
    """Case 9: a format whose http_headers carry Authorization, redirected to another
    host that needs it.  yt-dlp's urllib handler sends it on (and the custom headers;
    each host gets its own cookies from the jar); its requests handler drops it."""
    env: dict[str, str] = {}
    if handler == 'Requests':
        path = _requests_path(tmp_path)
        if path is None:
            pytest.skip('requests is not importable by the base interpreter')
        env['PYTHONPATH'] = path
    else:   # yt-dlp[default] brings requests along, and yt-dlp then prefers it: hide it
        hidden = tmp_path / 'no-requests' / 'requests'
        hidden.mkdir(parents=True)
        (hidden / '__init__.py').write_text("raise ImportError('hidden by the test: yt-dlp uses urllib')\n")
        env['PYTHONPATH'] = str(hidden.parent)
    cookies = tmp_path / 'cookies.txt'
    cookies.write_text('# Netscape HTTP Cookie File\n'
                       f'{fault_server.host}\tFALSE\t/\tFALSE\t0\tsess\tA-only\n'
                       f'{fault_server2.host}\tFALSE\t/\tFALSE\t0\tsess\tB-only\n')
    runs: dict[str, Run] = {}
    for side in SIDES:
        folder = tmp_path / side
        folder.mkdir()
        target = fault_server2.data_url(SIZE, 'mp4', key=f'c9-{side}', require_header='Authorization:Bearer s3cret')
        url = fault_server.url('/redirect?' + urllib.parse.urlencode({'to': target, 'key': f'c9-{side}'}))
        info = write_info_json(folder / 'info.json', url, http_headers={
            'Authorization': 'Bearer s3cret', 'X-Custom': 'kept', 'User-Agent': 'c9-agent'})
        switch = ['--no-async-downloads'] if side == ALONE else []
        proc = run_ytdlp([*switch, *COMMON, '--cookies', str(cookies), '-o', 'out.bin', '--load-info-json', str(info)],
                         folder, env=env)
        runs[side] = Run(side, proc, folder, 'out.bin')
    for side in SIDES:
        run = runs[side]
        a = [r for r in get_requests(fault_server, '/redirect') if r.query['key'] == f'c9-{side}']
        b = [r for r in get_requests(fault_server2, f'/data/{SIZE}.mp4') if r.query['key'] == f'c9-{side}']
        assert a and b, run
        # host A saw the header, the custom headers and its cookie, every time
        assert {(r.header('Authorization'), r.header('X-Custom'), r.header('User-Agent')) for r in a} == {
            ('Bearer s3cret', 'kept', 'c9-agent')}, run
        assert {r.header('Cookie') for r in a} == {'sess=A-only'}, run
        # host B gets its own cookie, never A's; the custom headers always; Authorization per handler
        assert {(r.header('Cookie'), r.header('X-Custom'), r.header('User-Agent')) for r in b} == {
            ('sess=B-only', 'kept', 'c9-agent')}, run
        expected = None if handler == 'Requests' else 'Bearer s3cret'
        assert {r.header('Authorization') for r in b} == {expected}, run
        if handler == 'Urllib':
            assert run.exit == 0 and run.sha() == sha256_of(SIZE), run
        else:
            assert run.exit == 1 and run.sha() is None, run
    for run in runs.values():   # the handler yt-dlp has, as its verbose header names them
        handlers = re.search(r'\[debug\] Request Handlers: (.*)', run.log)
        assert handlers and ('requests' in handlers.group(1)) == (handler == 'Requests'), run
    assert runs[PLUGIN].exit == runs[ALONE].exit
    assert ENGINE_LINE in runs[PLUGIN].log, runs[PLUGIN]


# ------------------------------------------------------------------ case 12
@pytest.mark.parametrize('own', [None, 'Bearer other'], ids=['plain', 'over-format-header'])
def test_url_credentials_are_sent_as_ytdlp_builds_them(tmp_path: Path, fault_server: FaultServer,
                                                       own: str | None) -> None:
    """Case 12: ``user:p%40ss@`` in the URL: YoutubeDL.urlopen builds ``Authorization:
    Basic`` from the userinfo as written (not percent-decoded, as libcurl would) and
    replaces the format's own Authorization with it."""
    expected = 'Basic ' + base64.b64encode(b'us%65r:p%40ss').decode()

    def url_for(side: str) -> str:
        return fault_server.data_url(SIZE, 'mp4', key=f'c12-{side}').replace('://', '://us%65r:p%40ss@', 1)

    runs: dict[str, Run] = {}
    for side in SIDES:
        folder = tmp_path / side
        folder.mkdir()
        info = write_info_json(folder / 'info.json', url_for(side), http_headers={'Authorization': own} if own else {})
        switch = ['--no-async-downloads'] if side == ALONE else []
        proc = run_ytdlp([*switch, *COMMON, '-o', 'out.bin', '--load-info-json', str(info)], folder)
        runs[side] = Run(side, proc, folder, 'out.bin')
    for side in SIDES:
        run = runs[side]
        assert run.exit == 0 and run.sha() == sha256_of(SIZE), run
        seen = [r for r in get_requests(fault_server, f'/data/{SIZE}.mp4') if r.query['key'] == f'c12-{side}']
        assert seen and {r.header('Authorization') for r in seen} == {expected}, run
    assert ENGINE_LINE in runs[PLUGIN].log, runs[PLUGIN]


@pytest.mark.parametrize('value', ['café ñ ±', 'caf€'], ids=['latin1', 'beyond'])
def test_latin1_header_value_is_sent_as_latin1(tmp_path: Path, fault_server: FaultServer, value: str) -> None:
    """Case 12: a header value with latin-1 characters goes out in ISO-8859-1, as
    http.client (both of yt-dlp's handlers) encodes it; it went out as UTF-8.  One
    that ISO-8859-1 cannot encode fails alone: the plugin hands it to yt-dlp."""
    runs: dict[str, Run] = {}
    for side in SIDES:
        folder = tmp_path / side
        folder.mkdir()
        info = write_info_json(folder / 'info.json', fault_server.data_url(SIZE, 'mp4', key=f'c12h-{side}'),
                               http_headers={'X-Name': value})
        switch = ['--no-async-downloads'] if side == ALONE else []
        proc = run_ytdlp([*switch, *COMMON, '-o', 'out.bin', '--load-info-json', str(info)], folder)
        runs[side] = Run(side, proc, folder, 'out.bin')
    if value == 'caf€':
        error = "'latin-1' codec can't encode character '\\u20ac' in position 3"
        for run in runs.values():
            assert run.exit == 1 and run.files() == ['info.json'] and error in run.proc.stderr, run
        assert 'outside ISO-8859-1' in runs[PLUGIN].log, runs[PLUGIN]
        return
    for side in SIDES:
        run = runs[side]
        assert run.exit == 0 and run.sha() == sha256_of(SIZE), run
        seen = [r for r in get_requests(fault_server, f'/data/{SIZE}.mp4') if r.query['key'] == f'c12h-{side}']
        # the server decodes header bytes as ISO-8859-1: UTF-8 bytes would read 'cafÃ©'
        assert seen and {r.header('X-Name') for r in seen} == {'café ñ ±'}, run
    assert ENGINE_LINE in runs[PLUGIN].log, runs[PLUGIN]


# ------------------------------------------------------------------ case 10
@pytest.mark.parametrize('key_len,rotation', [(0, False), (15, False), (0, True)],
                         ids=['empty', 'short', 'empty-after-bytes'])
def test_aes_key_of_the_wrong_length_is_the_servers_fault(tmp_path: Path, fault_server: FaultServer,
                                                          key_len: int, rotation: bool) -> None:
    """Case 10: a key of the wrong length is a server fault.  Before a byte is written
    the download goes to yt-dlp with a [debug] line, never "a bug in yt-dlp-async";
    after (the second key of a rotation), yt-dlp's own exception, as alone."""
    stream = fragment_streams.hls_aes_stream(fault_server, 'c10', fragment_streams.random_segments(4),
                                             explicit_iv=False, key_rotation=rotation)
    fault_server.add_file(f'c10/key{int(rotation)}.bin', os.urandom(key_len))
    plugin, alone, plugin_dir, alone_dir = fragment_streams.run_both(tmp_path, stream)
    logs = {ALONE: alone.stdout + alone.stderr, PLUGIN: plugin.stdout + plugin.stderr}
    assert 'a bug in yt-dlp-async' not in logs[PLUGIN], output(plugin)
    assert plugin.returncode == alone.returncode, output(plugin) + output(alone)
    if alone.returncode == 0:   # yt-dlp's pure-Python AES takes a 15-byte key: the same bytes
        assert key_len == 15, output(alone)
        assert sha256_file(plugin_dir / 'out.mp4') == sha256_file(alone_dir / 'out.mp4')
        assert fragment_streams.FRAGMENT_LINE in logs[PLUGIN], output(plugin)
        return
    # yt-dlp's own exception on both sides: IndexError from its pure-Python AES, ValueError
    # ("Incorrect AES key length") from pycryptodomex, which yt-dlp[default] brings
    assert alone.returncode == 1 and _exception(alone.stderr) in ('IndexError', 'ValueError'), output(alone)
    assert _exception(plugin.stderr) == _exception(alone.stderr), output(plugin)
    assert 'ServerFault' not in plugin.stderr, output(plugin)
    if key_len == 0:
        handed_back = "[debug] [async] Using yt-dlp's hlsnative downloader: the AES-128 key is 0 bytes"
        assert (handed_back in logs[PLUGIN]) == (not rotation), output(plugin)
    assert not (plugin_dir / 'out.mp4').exists() and not (alone_dir / 'out.mp4').exists()


def _exception(stderr: str) -> str | None:
    """The class of the last exception a traceback in ``stderr`` names."""
    found = re.findall(r'^(\w+(?:Error|Exception))(?::|$)', stderr, re.M)
    return found[-1] if found else None


# ------------------------------------------------------------------ case 11
def _byterange_stream_ignoring_ranges(server: FaultServer, count: int = 12) -> tuple[fragment_streams.Stream, bytes]:
    """EXT-X-BYTERANGE fragments of one file, from a server that answers every Range with a 200."""
    sizes = [20_000 + 997 * i for i in range(count)]
    blob = os.urandom(sum(sizes) + 1000)
    server.add_file('c11/media.bin', blob)
    lines = ['#EXTM3U', '#EXT-X-VERSION:4', '#EXT-X-TARGETDURATION:2', '#EXT-X-MEDIA-SEQUENCE:0']
    offset = 0
    for size in sizes:
        lines += ['#EXTINF:2.0,', f'#EXT-X-BYTERANGE:{size}@{offset}', 'media.bin?norange=1']
        offset += size
    lines.append('#EXT-X-ENDLIST')
    url = server.add_file('c11/index.m3u8', ('\n'.join(lines) + '\n').encode(), 'application/vnd.apple.mpegurl')
    return fragment_streams.Stream([], fragment_streams.info_for(url, 'm3u8_native')), blob[:offset]


@pytest.mark.parametrize('args', [[], ['-N', '4']], ids=['default', 'N4'])
def test_byterange_fragments_from_a_server_ignoring_ranges(tmp_path: Path, fault_server: FaultServer,
                                                           args: list[str]) -> None:
    """Case 11: the first fragment (from byte 0) is cut from the 200, the second cannot
    be: the download fails and nothing partial gets the final name (it was renamed with
    the fragments after it skipped).  yt-dlp alone writes the whole file once per
    fragment and exits 0: a wrong file."""
    stream, expected = _byterange_stream_ignoring_ranges(fault_server)
    plugin, alone, plugin_dir, alone_dir = fragment_streams.run_both(tmp_path, stream, *args)
    assert alone.returncode == 0 and (alone_dir / 'out.mp4').stat().st_size == 12 * (len(expected) + 1000)
    assert plugin.returncode == 1, output(plugin)
    assert fragment_streams.FRAGMENT_LINE in plugin.stdout + plugin.stderr, output(plugin)
    assert 'ERROR: fragment 2 not found, unable to continue' in plugin.stderr, output(plugin)
    assert 'server ignored the Range request' in plugin.stderr, output(plugin)
    left = sorted(p.name for p in plugin_dir.iterdir() if p.name != '.home')
    assert 'out.mp4' not in left and 'out.mp4.part' in left, left
    part = (plugin_dir / 'out.mp4.part').read_bytes()
    assert part == expected[:len(part)] and len(part) < len(expected)   # only true bytes, in order


@pytest.mark.parametrize('args', [[], ['-N', '4']], ids=['default', 'N4'])
def test_rotating_cookie_on_every_segment(tmp_path: Path, fault_server: FaultServer, args: list[str]) -> None:
    """Case 12: every segment reply sets a new cookie and the next request must carry it
    (a rotating token).  Asked in parallel, the refused fragments raced for each new
    value, ran out of cookie retries and were skipped: a wrong file, exit 0 (or, with
    latency, several times slower than alone).  Once a refusal was for a cookie an
    earlier reply set, the pipeline asks one fragment at a time, as yt-dlp does."""
    segments = fragment_streams.random_segments(40)
    runs = {}
    for side, switch in ((ALONE, fragment_streams.NATIVE), (PLUGIN, fragment_streams.ENGINE)):
        stream = fragment_streams.hls_stream(fault_server, f'c12c-{side}', segments,
                                             faults={i: {'cookie_chain': f'tok{side}'} for i in range(40)})
        proc = fragment_streams.run_one(tmp_path / side, stream, switch,
                                        *(args if side == PLUGIN else []))  # alone fails with -N (its own race)
        runs[side] = (proc, stream)
    for side, (proc, stream) in runs.items():
        assert proc.returncode == 0, output(proc)
        assert (tmp_path / side / 'out.mp4').read_bytes() == stream.expected, side
        assert 'Skipping fragment' not in proc.stdout, output(proc)
        served = [e.path for e in get_requests(fault_server, None) if e.path.startswith(f'/file/c12c-{side}/seg')
                  and e.status == 200]
        assert sorted(served) == sorted(f'/file/c12c-{side}/seg{i}.ts' for i in range(40)), side
    assert fragment_streams.FRAGMENT_LINE in runs[PLUGIN][0].stdout + runs[PLUGIN][0].stderr


def test_a_reply_never_puts_back_an_older_cookie(tmp_path: Path, fault_server: FaultServer) -> None:
    """Case 12: every segment reply sets a new ``s``; segment 5's also sets ``t=2`` over the
    ``t=1`` of --cookies.  A reply to a request sent before segment 5's reply carried
    ``t=1``: judged against the current cookies, it put ``t=1`` back into the jar, and the
    later segments (and the cookie file yt-dlp saves) had the old value."""
    segments = fragment_streams.random_segments(40)
    lines: dict[str, list[str]] = {}
    for side, switch in ((ALONE, fragment_streams.NATIVE), (PLUGIN, fragment_streams.ENGINE)):
        faults = {i: {'set_cookie_seq': 's', **({'set_cookie': 't=2'} if i == 5 else {})} for i in range(40)}
        stream = fragment_streams.hls_stream(fault_server, f'c12t-{side}', segments, faults=faults)
        (tmp_path / side).mkdir()
        cookies = tmp_path / side / 'cookies.txt'
        cookies.write_text('# Netscape HTTP Cookie File\n'
                           f'{fault_server.host}\tFALSE\t/\tFALSE\t0\tt\t1\n')
        proc = fragment_streams.run_one(tmp_path / side, stream, switch, '--cookies', str(cookies))
        assert proc.returncode == 0 and (tmp_path / side / 'out.mp4').read_bytes() == stream.expected, output(proc)
        lines[side] = [line.split('\t')[-1] for line in cookies.read_text().splitlines()
                       if line.split('\t')[-2:-1] == ['t']]
        last = [e for e in get_requests(fault_server, f'/file/c12t-{side}/seg39.ts')]
        assert last and 't=2' in (last[-1].header('Cookie') or ''), (side, last[-1].header('Cookie'))
    assert lines[ALONE] == lines[PLUGIN] == ['2']


def test_url_credentials_reach_every_hls_fragment(tmp_path: Path, fault_server: FaultServer) -> None:
    """Case 12: an HLS manifest URL with ``user:p%40ss@``: its fragments' URLs keep the
    userinfo, and each fragment request carries the Authorization yt-dlp builds from it
    (a guard: this already held, normalize_url escaped the % that libcurl then decoded)."""
    expected = 'Basic ' + base64.b64encode(b'user:p%40ss').decode()
    segments = fragment_streams.random_segments(6)
    for side, switch in ((ALONE, fragment_streams.NATIVE), (PLUGIN, fragment_streams.ENGINE)):
        stream = fragment_streams.hls_stream(fault_server, f'c12u-{side}', segments)
        url = stream.info['url'].replace('://', '://user:p%40ss@', 1)
        stream.info.update(url=url, webpage_url=url)
        proc = fragment_streams.run_one(tmp_path / side, stream, switch)
        assert proc.returncode == 0 and (tmp_path / side / 'out.mp4').read_bytes() == stream.expected, output(proc)
        seen = [e for e in get_requests(fault_server, None) if e.path.startswith(f'/file/c12u-{side}/seg')]
        assert len(seen) == 6 and {e.header("Authorization") for e in seen} == {expected}, side
        if side == PLUGIN:
            assert fragment_streams.FRAGMENT_LINE in proc.stdout + proc.stderr, output(proc)
