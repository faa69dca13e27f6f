"""The differential matrix of issue 9: every fault run through yt-dlp alone and through the plugin.

Each row of the matrix is one situation (a fault the server injects, a
SIGKILL at some point followed by a rerun, a disk that fills up).  Both sides
run the very same ``yt-dlp`` command of the venv, each in its own empty
folder: native adds ``--no-async-downloads``, the plugin side adds nothing
(the plugin is on by default).  Each run is classified by what a user finds
afterwards (exit status, the bytes of the final file, the files left in the
folder), and the plugin's outcome is compared with native's: the plugin must
never be worse.

Both sides use their own resource key (``key=<row>-<side>``) on the fault
server, so one side's requests never advance the other's fault counters.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path
from typing import Any, Callable, Sequence

from faultserver import FaultServer, content, sha256_of
from fragment_streams import hls_stream
from fragment_streams import FRAGMENT_LINE
from ytdlp_support import ENGINE_LINE, hermetic_env

KiB = 1 << 10
MiB = 1 << 20
SIZE = 3 * MiB + 12_345
"""Size of the file of the fault rows: three of the plugin's default 1 MiB pieces and a tail."""

YTDLP = str(Path(sys.executable).with_name('yt-dlp'))
NATIVE, PLUGIN = 'native', 'plugin'
SIDES = (NATIVE, PLUGIN)
SWITCH = {NATIVE: ['--no-async-downloads'], PLUGIN: []}
COMMON = ['--no-cache-dir', '-v', '--retries', '3', '--fragment-retries', '3', '--retry-sleep', '0',
          '--socket-timeout', '3', '--fixup', 'never', '--ffmpeg-location', '/nonexistent/ffmpeg', '-o', 'out.bin']
FINAL = 'out.bin'
RUN_TIMEOUT = 90.0

EXACT = 'EXACT'
LEFTOVERS = 'EXACT+LEFTOVERS'
CLEAN_ERROR = 'CLEAN-ERROR'
ERROR_FILE = 'ERROR+FILE'
WRONG = 'WRONG'
HANG = 'HANG'

SAME, BETTER, WORSE, BAD = 'same', 'better', 'WORSE', 'BAD'


# ------------------------------------------------------------------ outcomes
@dataclasses.dataclass
class Outcome:
    """What one yt-dlp run left behind."""

    kind: str
    exit: int | None
    leftovers: list[str]
    engine: bool
    """The plugin's engine downloaded (its ``Invoking async downloader`` line is in the log)."""
    note: str = ''
    log: str = ''

    def cell(self) -> str:
        text = self.kind if self.exit is None else f'{self.kind} (exit {self.exit})'
        if self.leftovers:
            text += ' [' + ', '.join(self.leftovers) + ']'
        if self.note:
            text += f' {{{self.note}}}'
        return text


def sha256_path(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def folder_files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob('*') if p.is_file() and p.name != 'lost+found')


def classify(returncode: int | None, folder: Path, good: Sequence[str], log: str = '', note: str = '') -> Outcome:
    """EXACT, EXACT+LEFTOVERS, CLEAN-ERROR, ERROR+FILE, WRONG or HANG (``returncode`` None)."""
    files = folder_files(folder)
    final = folder / FINAL
    engine = ENGINE_LINE in log or FRAGMENT_LINE in log
    leftovers = [f for f in files if f != FINAL]
    if returncode is None:
        return Outcome(HANG, None, files, engine, note, log)
    right = final.is_file() and sha256_path(final) in good
    if final.is_file() and not right:
        size = final.stat().st_size
        return Outcome(WRONG, returncode, leftovers, engine, f'{FINAL}: {size} bytes, wrong SHA-256 '
                       f'{note}'.strip(), log)
    if returncode == 0:
        if not right:
            return Outcome(WRONG, 0, leftovers, engine, f'exit 0 without {FINAL} {note}'.strip(), log)
        return Outcome(LEFTOVERS if leftovers else EXACT, 0, leftovers, engine, note, log)
    if right:
        return Outcome(ERROR_FILE, returncode, files, engine, note, log)
    return Outcome(CLEAN_ERROR, returncode, leftovers, engine, note, log)


RESUMABLE = ('.part', '.part-async', '.part-async.ctl', '.ytdl')


def resumable(name: str) -> bool:
    """A file that only exists to resume the download (native's or the plugin's)."""
    return name.endswith(RESUMABLE) or '.part-Frag' in name


def extra_leftovers(plugin: Outcome, native: Outcome) -> list[str]:
    """Files the plugin leaves that native does not (resume state counts as native's resume state)."""
    native_resumes = any(resumable(n) for n in native.leftovers)
    return [n for n in plugin.leftovers
            if n not in native.leftovers and not (native_resumes and resumable(n))]


def compare(native: Outcome, plugin: Outcome) -> tuple[str, str]:
    """(verdict, reason): the plugin is WORSE (or BAD: wrong bytes on both sides) than native, or not."""
    if plugin.kind == WRONG:
        if native.kind == WRONG and native.exit != 0 and plugin.exit == 0:
            return WORSE, f'both wrong, but native exits {native.exit} and the plugin 0 ({plugin.note})'
        if native.kind == WRONG and native.exit != 0 and plugin.exit != 0:
            return SAME, ''  # both say they failed (yt-dlp skipped an unavailable fragment, with an ERROR)
        return (BAD if native.kind == WRONG else WORSE), f'plugin: wrong bytes ({plugin.note})'
    if native.kind == EXACT:
        if plugin.kind == EXACT:
            return SAME, ''
        return WORSE, f'native is exact, plugin is {plugin.cell()}'
    if native.kind == LEFTOVERS:
        if plugin.kind == EXACT:
            return BETTER, ''
        if plugin.kind == LEFTOVERS:
            extra = extra_leftovers(plugin, native)
            return (WORSE, f'plugin leaves {extra}') if extra else (SAME, '')
        return WORSE, f'native completes, plugin is {plugin.cell()}'
    if native.kind in (CLEAN_ERROR, ERROR_FILE):
        if plugin.kind in (EXACT, LEFTOVERS):
            return BETTER, ''
        if plugin.kind == HANG:
            return WORSE, 'native fails cleanly, plugin hangs'
        extra = extra_leftovers(plugin, native)
        return (WORSE, f'plugin leaves {extra} that native does not') if extra else (SAME, '')
    if native.kind == HANG:
        return (SAME, '') if plugin.kind == HANG else (BETTER, '')
    return BETTER, ''  # native WRONG, plugin not


# ------------------------------------------------------------------- running
@dataclasses.dataclass
class Context:
    """The servers and the folder every run of the matrix lives under."""

    server: FaultServer
    server2: FaultServer
    root: Path


def side_dirs(ctx: Context, row: str, side: str) -> tuple[Path, Path]:
    """(empty work folder, scratch folder for the info JSON and HOME) of one side of a row."""
    base = ctx.root / row / side
    work, scratch = base / 'work', base / 'scratch'
    work.mkdir(parents=True, exist_ok=True)
    scratch.mkdir(parents=True, exist_ok=True)
    return work, scratch


def command(side: str, info: Path, extra: Sequence[str] = ()) -> list[str]:
    return [YTDLP, *COMMON, *SWITCH[side], *extra, '--load-info-json', str(info)]


def run(cmd: Sequence[str], work: Path, scratch: Path, timeout: float = RUN_TIMEOUT) -> tuple[int | None, str]:
    """Run yt-dlp to the end; (exit status or None on timeout, stdout + stderr)."""
    try:
        proc = subprocess.run(list(cmd), cwd=work, capture_output=True, text=True, timeout=timeout,
                              env=hermetic_env(scratch / 'home'))
    except subprocess.TimeoutExpired as exc:
        out = (exc.stdout or b'') + (exc.stderr or b'')
        return None, out.decode(errors='replace') if isinstance(out, bytes) else str(out)
    return proc.returncode, proc.stdout + proc.stderr


def info_json(scratch: Path, url: str, protocol: str = 'http', name: str = 'info.json') -> Path:
    """An info dict of one direct format (what an extractor hands the downloader)."""
    path = scratch / name
    path.write_text(json.dumps({
        'id': 'diff', 'title': 'differential', 'extractor': 'generic', 'extractor_key': 'Generic',
        'webpage_url': url, 'url': url, 'ext': 'bin', 'format_id': '0', 'protocol': protocol,
    }))
    return path


class Case:
    """One or more rows of the matrix that share their runs; ``execute`` runs one side."""

    name: str
    rows: tuple[str, ...]
    what: str

    def execute(self, ctx: Context, side: str) -> list[Outcome]:
        raise NotImplementedError


class FaultCase(Case):
    """A direct http URL of ``/data/SIZE`` with query parameters (the fault)."""

    def __init__(self, name: str, what: str, params: dict[str, Any], *, size: int = SIZE, redirect: int = 0,
                 extra: Sequence[str] = (), changed_ok: bool = False, direct: bool = False,
                 path: str | None = None, part: Callable[[bytes], bytes] | None = None) -> None:
        self.name, self.what, self.params, self.size = name, what, params, size
        self.redirect, self.extra, self.changed_ok, self.direct = redirect, tuple(extra), changed_ok, direct
        self.path, self.part = path, part
        self.rows = (name,)

    def good(self) -> list[str]:
        seed = int(self.params.get('seed', 0))
        good = [sha256_of(self.size, seed)]
        if self.changed_ok:  # the resource changed (etag_change): the new version whole is right too
            good.append(sha256_of(self.size, seed + 1000))
        return good

    def url(self, ctx: Context, side: str) -> str:
        params = {**self.params, 'key': f'{self.name}-{side}'}
        if self.path is not None:
            return ctx.server.url(self.path + '&' + urllib.parse.urlencode(params))
        if not self.redirect:
            return ctx.server.data_url(self.size, 'mp4' if self.direct else 'bin', **params)
        target = ctx.server2.data_url(self.size, 'bin', **params)
        return ctx.server.url(f'/redirect?code={self.redirect}&key={self.name}-{side}&to='
                              + urllib.parse.quote(target, safe=''))

    def execute(self, ctx: Context, side: str) -> list[Outcome]:
        work, scratch = side_dirs(ctx, self.name, side)
        url = self.url(ctx, side)
        if self.part is not None:  # a NAME.part left by an earlier run
            (work / (FINAL + '.part')).write_bytes(self.part(content(self.size, int(self.params.get('seed', 0)))))
        if self.direct:  # through the generic extractor, as `yt-dlp URL` does
            cmd = [YTDLP, *COMMON, *SWITCH[side], *self.extra, url]
        else:
            cmd = command(side, info_json(scratch, url), self.extra)
        code, log = run(cmd, work, scratch)
        return [classify(code, work, self.good(), log)]


# ------------------------------------------------------------ kill -9, rerun
def resume_state(work: Path) -> list[str]:
    """What a rerun resumes from: NAME.part's size and the fragment index in NAME.ytdl."""
    out = []
    part, ytdl = work / (FINAL + '.part'), work / (FINAL + '.ytdl')
    if part.is_file():
        out.append(f'part={part.stat().st_size}')
    if ytdl.is_file():
        try:
            out.append(f"ytdl index={json.loads(ytdl.read_text())['downloader']['current_fragment']['index']}")
        except (ValueError, KeyError, TypeError):
            out.append(f'ytdl unreadable ({ytdl.stat().st_size} bytes)')
    return out


def sent_bytes(server: FaultServer, prefix: str, key: str | None) -> int:
    """Body bytes the server has sent for paths under ``prefix`` (and with ``key=`` in the query)."""
    return sum(e.bytes_sent for e in server.log
               if e.method == 'GET' and e.path.startswith(prefix) and (key is None or e.query.get('key') == key))


class KillCase(Case):
    """Start yt-dlp, SIGKILL it at a point of the transfer, rerun the same command.

    http: once ``at`` of the bytes went out.  HLS: once half of segment
    ``round(at * 12)`` went out: mid-segment, as far from the client's writes
    of NAME.part and NAME.ytdl as a kill can be (a kill at a segment boundary
    races with them; HlsCase builds the states such a kill can leave).
    """

    SEGMENTS = 12

    def __init__(self, name: str, what: str, flavour: str, at: float) -> None:
        self.name, self.what, self.flavour, self.at = name, what, flavour, at
        self.rows = (name,)

    def prepare(self, ctx: Context, side: str, scratch: Path) -> tuple[Path, list[str], str, str | None, int, str]:
        """(info JSON, extra args, path prefix, key, bytes to kill at, good SHA-256)."""
        key = f'{self.name}-{side}'
        if self.flavour == 'hls':
            segments = [hashlib.shake_128(f'{self.name}:{i}'.encode()).digest(60_000 + 997 * i)
                        for i in range(self.SEGMENTS)]
            stream = hls_stream(ctx.server, key, segments, faults={i: {'rate': 150_000} for i in range(12)})
            path = scratch / 'info.json'
            path.write_text(json.dumps({**stream.info, 'ext': 'bin'}))
            k = round(self.at * self.SEGMENTS)
            before = sum(len(seg) for seg in segments[:k])
            kill_at = before + len(segments[k]) // 2
            return (path, ['--async-host-connections', '2'], f'/file/{key}/seg', None, kill_at,
                    hashlib.sha256(stream.expected).hexdigest())
        size = 3 * MiB
        url = ctx.server.data_url(size, 'bin', rate=700_000, key=key)
        extra = ['--async-connections', '1'] if self.flavour == 'plain' else []
        return info_json(scratch, url), extra, f'/data/{size}', key, int(self.at * size), sha256_of(size)

    def execute(self, ctx: Context, side: str) -> list[Outcome]:
        work, scratch = side_dirs(ctx, self.name, side)
        info, extra, prefix, key, kill_at, good = self.prepare(ctx, side, scratch)
        cmd = command(side, info, extra)
        proc = subprocess.Popen(cmd, cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                env=hermetic_env(scratch / 'home'))
        deadline = time.monotonic() + 60
        done = 0
        try:
            while proc.poll() is None and time.monotonic() < deadline:
                done = sent_bytes(ctx.server, prefix, key)
                if done >= kill_at:
                    break
                time.sleep(0.005)
        finally:
            finished_first = proc.poll() is not None
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
        state = 'finished before the kill' if finished_first else f'killed after {done} bytes sent'
        after_kill = folder_files(work) + resume_state(work)
        code, log = run(cmd, work, scratch)
        return [classify(code, work, [good], log, f'{state}, left {after_kill}')]


NO_YTDL = object()
"""``HlsCase(ytdl=NO_YTDL)``: no NAME.ytdl beside the NAME.part."""


class HlsCase(Case):
    """An HLS download of 12 segments: faults on some segments, or started over an earlier run's state.

    ``part``: NAME.part holds that many segments before the run, with
    NAME.ytdl holding ``ytdl`` (or absent).  A SIGKILL timed to the moment a
    segment is appended can leave NAME.part ahead of NAME.ytdl (or NAME.ytdl
    empty, killed while it is rewritten); such a kill is a race, so these
    rows build the state directly and come out the same on every run.
    """

    def __init__(self, name: str, what: str, faults: dict[int, dict[str, Any]] | None = None,
                 part: int = 0, ytdl: object = NO_YTDL) -> None:
        self.name, self.what, self.faults, self.part, self.ytdl = name, what, faults or {}, part, ytdl
        self.rows = (name,)

    def execute(self, ctx: Context, side: str) -> list[Outcome]:
        work, scratch = side_dirs(ctx, self.name, side)
        segments = [hashlib.shake_128(f'{self.name}:{i}'.encode()).digest(60_000 + 997 * i) for i in range(12)]
        faults = {i: {**f, 'key': side} for i, f in self.faults.items()}
        stream = hls_stream(ctx.server, f'{self.name}-{side}', segments, faults=faults)
        info = scratch / 'info.json'
        info.write_text(json.dumps({**stream.info, 'ext': 'bin'}))
        if self.part:
            (work / (FINAL + '.part')).write_bytes(b''.join(segments[:self.part]))
            if isinstance(self.ytdl, str):
                (work / (FINAL + '.ytdl')).write_text(self.ytdl)
        code, log = run(command(side, info), work, scratch)
        return [classify(code, work, [hashlib.sha256(stream.expected).hexdigest()], log)]


# ----------------------------------------------------------------- disk full
def mount_tmpfs(path: Path, size: str) -> None:
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(['mount', '-t', 'tmpfs', '-o', f'size={size}', 'tmpfs', str(path)], check=True,
                   capture_output=True, text=True)


def remount(path: Path, size: str) -> None:
    subprocess.run(['mount', '-o', f'remount,size={size}', str(path)], check=True, capture_output=True, text=True)


def umount(path: Path) -> None:
    subprocess.run(['umount', '-l', str(path)], capture_output=True)


def can_mount(probe: Path) -> str | None:
    """None when a tmpfs can be mounted here, else why not."""
    try:
        mount_tmpfs(probe, '1m')
    except (OSError, subprocess.CalledProcessError) as exc:
        return f'cannot mount a tmpfs: {getattr(exc, "stderr", "") or exc}'
    umount(probe)
    return None


class DiskFullCase(Case):
    """The folder is a 1 MiB tmpfs, the download does not fit; then 16 MiB and the same command again."""

    def __init__(self, name: str, what: str, flavour: str) -> None:
        self.name, self.what, self.flavour = name, what, flavour
        self.rows = (name, name + '-then-space')

    def execute(self, ctx: Context, side: str) -> list[Outcome]:
        base = ctx.root / self.name / side
        work, scratch = base / 'work', base / 'scratch'
        scratch.mkdir(parents=True, exist_ok=True)
        key = f'{self.name}-{side}'
        if self.flavour == 'hls':
            segments = [hashlib.shake_128(f'{self.name}:{i}'.encode()).digest(200_000 + 997 * i) for i in range(12)]
            stream = hls_stream(ctx.server, key, segments)
            info = scratch / 'info.json'
            info.write_text(json.dumps({**stream.info, 'ext': 'bin'}))
            good = hashlib.sha256(stream.expected).hexdigest()
        else:
            size = 3 * MiB
            info = info_json(scratch, ctx.server.data_url(size, 'bin', key=key))
            good = sha256_of(size)
        extra = ['--async-connections', '1'] if self.flavour == 'plain' else []
        cmd = command(side, info, extra)
        mount_tmpfs(work, '1m')
        try:
            code, log = run(cmd, work, scratch)
            full = classify(code, work, [good], log)
            remount(work, '16m')
            code, log = run(cmd, work, scratch)
            again = classify(code, work, [good], log)
        finally:
            umount(work)
        return [full, again]


# ---------------------------------------------------------------- the matrix
def fault_cases() -> list[Case]:
    """Every fault tests/faultserver.py can inject, one direct http download each."""
    K = 256 * KiB
    return [
        FaultCase('plain', 'no fault', {}),
        FaultCase('direct-url', 'no fault, `yt-dlp URL` through the generic extractor', {}, direct=True),
        FaultCase('direct-url-reset', 'generic extractor probe, then a reset', {'skip': 1, 'reset_after': K},
                  direct=True),
        FaultCase('latency', '400 ms before every response', {'latency': 400}),
        FaultCase('throttle', 'every connection at 2 MB/s', {'rate': 2_000_000}),
        FaultCase('max-conns-1', 'a second connection at once gets 429 Retry-After: 1', {'max_conns': 1}),
        FaultCase('status-404', 'always 404', {'status': 404}),
        FaultCase('status-500', 'always 500', {'status': 500}),
        FaultCase('fail-503x2', 'two 503s, then content', {'fail': 2}),
        FaultCase('fail-503x2-retry-after', 'two 503s with Retry-After: 1', {'fail': 2, 'retry_after': 1}),
        FaultCase('fail-429x2-retry-after', 'two 429s with Retry-After: 1',
                  {'fail': 2, 'fail_status': 429, 'retry_after': 1}),
        FaultCase('fail-503x10', 'ten 503s: more than --retries 3', {'fail': 10}),
        FaultCase('fail-403x1', 'one 403, then content', {'fail': 1, 'fail_status': 403}),
        FaultCase('fail-408x1', 'one 408, then content', {'fail': 1, 'fail_status': 408}),
        FaultCase('norange', 'ranges ignored (200, no Accept-Ranges)', {'norange': 1}),
        FaultCase('range200', 'ranges answered 200 with Content-Range', {'range200': 1}),
        FaultCase('drop-ranges-after-1', 'the first range honoured, later ones ignored', {'drop_ranges_after': 1}),
        FaultCase('etag-change-1', 'content, ETag and Last-Modified change after the first GET',
                  {'etag_change': 1}, changed_ok=True),
        FaultCase('no-length', 'no Content-Length, Connection: close', {'no_length': 1}),
        FaultCase('chunked', 'Transfer-Encoding: chunked', {'chunked': 1}),
        FaultCase('reset-once', f'RST after {K} bytes, once', {'reset_after': K}),
        FaultCase('reset-3x', f'RST after {K} bytes, three times', {'reset_after': K, 'times': 3}),
        FaultCase('reset-always', f'RST after {K} bytes on every request', {'reset_after': K, 'times': -1}),
        FaultCase('reset-at-0', 'RST before any body byte, once', {'reset_after': 0}),
        FaultCase('stall-once', f'stall after {K} bytes, once (socket timeout 3 s)', {'stall_after': K}),
        FaultCase('stall-always', 'stall after 768 KiB on every request', {'stall_after': 3 * K, 'times': -1}),
        FaultCase('latency-over-timeout', '4 s before every response, over --socket-timeout 3', {'latency': 4000}),
        FaultCase('short-once', 'body 100 KiB short, then close, once', {'short': 100 * KiB}),
        FaultCase('short-always', 'body 100 KiB short on every request', {'short': 100 * KiB, 'times': -1}),
        FaultCase('norange-reset', 'ranges ignored and a reset: must restart', {'norange': 1, 'reset_after': K}),
        FaultCase('norange-short', 'ranges ignored and a short body', {'norange': 1, 'short': 100 * KiB}),
        FaultCase('range200-reset', '200 with Content-Range and a reset', {'range200': 1, 'reset_after': K}),
        FaultCase('drop-ranges-reset', 'a reset, then ranges ignored', {'drop_ranges_after': 1, 'reset_after': K}),
        FaultCase('etag-change-reset', 'a reset, then new content under a new ETag',
                  {'etag_change': 1, 'reset_after': K}, changed_ok=True),
        FaultCase('chunked-reset', 'chunked and a reset', {'chunked': 1, 'reset_after': K}),
        FaultCase('no-length-reset', 'no Content-Length and a reset', {'no_length': 1, 'reset_after': K}),
        FaultCase('throttle-stall', 'throttled, stall after 512 KiB', {'rate': 2_000_000, 'stall_after': 2 * K}),
        FaultCase('redirect-302-cross-host', '302 to another host', {}, redirect=302),
        FaultCase('redirect-307-cross-host-reset', '307 to another host, then a reset', {'reset_after': K},
                  redirect=307),
        FaultCase('redirect-301-cross-host-503', '301 to another host, then two 503s', {'fail': 2}, redirect=301),
        FaultCase('redirect-loop', 'a redirect to itself, forever', {}, path='/redirect?loop=1'),
        FaultCase('redirect-to-file', 'a redirect to file:///etc/hostname', {},
                  path='/redirect?to=file%3A%2F%2F%2Fetc%2Fhostname'),
        FaultCase('range-shift', 'every 206 starts 1000 bytes after the asked start (honest Content-Range)',
                  {'range_shift': 1000}),
        FaultCase('range-shift-reset', 'a reset, then the resume 206 starts 1000 bytes late',
                  {'range_shift': 1000, 'reset_after': K}),
        FaultCase('gzip-always', 'Content-Encoding: gzip whatever the client asks', {'gzip': 'always'}),
        FaultCase('gzip-auto', 'gzip unless Accept-Encoding rules it out (none: anything goes)', {'gzip': 'auto'}),
        FaultCase('part-prefix', 'a NAME.part with the first 1 MiB already there', {},
                  part=lambda data: data[:MiB]),
        FaultCase('part-complete', 'a NAME.part with the whole file already there', {}, part=lambda data: data),
        FaultCase('part-larger', 'a NAME.part 1000 bytes longer than the file (416 on resume)', {},
                  part=lambda data: data + b'x' * 1000),
        FaultCase('part-junk-no-continue', '--no-continue over a NAME.part of junk', {}, extra=['--no-continue'],
                  part=lambda data: b'j' * MiB),
        FaultCase('no-part-reset', '--no-part, RST after 256 KiB once', {'reset_after': K}, extra=['--no-part']),
        FaultCase('http-chunk-size-reset', '--http-chunk-size 1M, RST after 256 KiB once', {'reset_after': K},
                  extra=['--http-chunk-size', '1M']),
        FaultCase('limit-rate-reset', '--limit-rate 4M, RST after 256 KiB once', {'reset_after': K},
                  extra=['--limit-rate', '4M']),
    ]


def kill_cases() -> list[Case]:
    points = (('early', 0.15), ('middle', 0.5), ('late', 0.85))
    flavours = (('plain', 'http over one connection (--async-connections 1)'),
                ('split', 'http, the plugin splits it (default)'), ('hls', 'HLS, 12 segments'))
    return [KillCase(f'kill-{flavour}-{where}', f'{what}: SIGKILL at {int(at * 100)}% sent, rerun', flavour, at)
            for flavour, what in flavours for where, at in points]


def hls_cases() -> list[Case]:
    K = 20 * KiB
    return [
        HlsCase('hls-plain', 'HLS, 12 segments, no fault'),
        HlsCase('hls-seg-reset', 'HLS, segments 3 and 7 reset after 20 KiB once',
                {3: {'reset_after': K}, 7: {'reset_after': K}}),
        HlsCase('hls-seg-short', 'HLS, segment 3 10 KiB short once', {3: {'short': 10 * KiB}}),
        HlsCase('hls-seg-stall', 'HLS, segment 3 stalls after 20 KiB once (socket timeout 3 s)',
                {3: {'stall_after': K}}),
        HlsCase('hls-seg-503x2', 'HLS, segment 3 answers 503 twice', {3: {'fail': 2}}),
        HlsCase('hls-seg-503x10', 'HLS, segment 3 answers 503 ten times (> --fragment-retries 3)',
                {3: {'fail': 10}}),
        HlsCase('hls-seg-429-retry-after', 'HLS, segment 3 answers 429 Retry-After: 1 once',
                {3: {'fail': 1, 'fail_status': 429, 'retry_after': 1}}),
        HlsCase('hls-seg-etag-change-reset', 'HLS, segment 3 resets, then its ETag changes',
                {3: {'reset_after': K, 'etag_change': 1}}),
        HlsCase('hls-part-ytdl-empty', 'HLS over NAME.part (4 segments) and an empty NAME.ytdl '
                '(SIGKILL while it is rewritten)', part=4, ytdl=''),
        HlsCase('hls-part-no-ytdl', 'HLS over NAME.part (4 segments) and no NAME.ytdl', part=4),
    ]


def disk_cases() -> list[Case]:
    return [DiskFullCase('disk-full-plain', 'http over one connection, 3 MiB into a 1 MiB tmpfs', 'plain'),
            DiskFullCase('disk-full-split', 'http, split by the plugin, 3 MiB into a 1 MiB tmpfs', 'split'),
            DiskFullCase('disk-full-hls', 'HLS of 2.4 MB into a 1 MiB tmpfs', 'hls')]


def all_cases() -> list[Case]:
    return fault_cases() + hls_cases() + kill_cases() + disk_cases()


def row_descriptions(cases: Sequence[Case]) -> dict[str, str]:
    out: dict[str, str] = {}
    for case in cases:
        out[case.rows[0]] = case.what
        for extra in case.rows[1:]:
            out[extra] = case.what + '; then 16 MiB, rerun'
    return out

