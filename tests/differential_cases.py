"""The differential matrix of issue 9: every fault run through yt-dlp alone and through the plugin.

Each row of the matrix is one situation (a fault the server injects, a
SIGKILL at some point followed by a rerun, a disk that fills up).  Both sides
run the same ``python -m yt_dlp`` command line, each in its own empty folder:
native with the interpreter of a venv that holds yt-dlp and no file of the
plugin (tests/differential_venvs.py), the plugin side with this venv's, where
the plugin is on by default.  Options only the plugin knows (``--async-*``)
go to the plugin side alone.

Each run is classified by what a user finds afterwards: the exit status, the
bytes of the final file (or of stdout under ``-o -``), the files left in the
folder, and the output lines.  When either side left more than a right final
file, both sides run their command once more against a healthy server in the
same folder (what a user does next), and that rerun is compared too: resume
state that makes a wrong file then shows as one.  The plugin's outcome must
never be worse than native's (``compare``), and the plugin side must have gone
through the engine unless the row names the reason it hands the download back.

Both sides use their own resource key (``key=<row>-<side>``) on the fault
server, so one side's requests never advance the other's fault counters.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import hashlib
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import time
import urllib.parse
from pathlib import Path
from typing import Any, Callable, Sequence

from faultserver import FaultServer, content, sha256_of
from fragment_streams import FRAGMENT_LINE, Stream, aes_encrypt, hls_aes_stream, hls_stream, info_for
from ytdlp_support import ENGINE_LINE, hermetic_env

KiB = 1 << 10
MiB = 1 << 20
SIZE = 3 * MiB + 12_345
"""Size of the file of the fault rows: three of the plugin's default 1 MiB pieces and a tail."""

NATIVE, PLUGIN = 'native', 'plugin'
SIDES = (NATIVE, PLUGIN)
COMMON = ['--no-cache-dir', '-v', '--retries', '3', '--fragment-retries', '3', '--retry-sleep', '0',
          '--socket-timeout', '3', '--fixup', 'never', '--ffmpeg-location', '/nonexistent/ffmpeg']
FINAL = 'out.bin'
STDOUT = '-'
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
class Rerun:
    """How to run one side's command again against a healthy server, in the folder it left."""

    cmd: list[str]
    folder: Path
    scratch: Path
    good: list[str]


@dataclasses.dataclass
class Outcome:
    """What one yt-dlp run left behind."""

    kind: str
    exit: int | None
    leftovers: list[str]
    engine: bool = False
    """The plugin's engine downloaded (its ``Invoking async downloader`` or fragments line, no hand-back)."""
    note: str = ''
    log: str = ''
    sha: str | None = None
    """SHA-256 of the final file (of stdout under ``-o -``), right or wrong; None when there is none."""
    handback: str | None = None
    """The plugin's ``[async] Using yt-dlp's NAME downloader: WHY`` line, as ``NAME: WHY``."""
    error: bool = False
    """An ``ERROR:`` line was printed."""
    lines: list[str] = dataclasses.field(default_factory=list)
    """The output lines a frontend reads (``output_lines``)."""
    past_end: int = 0
    """Requests whose Range asked for bytes past the end of the resource (fault rows only)."""
    observed: str | None = None
    """What the row's ``Judge`` saw beyond the file (a request header, the output path's node, a saved cookie)."""
    again: Rerun | None = None
    rerun: Outcome | None = None
    """The same command once more against a healthy server, in the folder this run left."""

    def cell(self) -> str:
        text = self.kind if self.exit is None else f'{self.kind} (exit {self.exit})'
        if self.leftovers:
            text += ' [' + ', '.join(self.leftovers) + ']'
        if self.note:
            text += f' {{{self.note}}}'
        if self.observed is not None:
            text += f' <{self.observed}>'
        return text

    def clean(self) -> bool:
        """Nothing a rerun could pick up: a right file alone, or an empty folder after an error."""
        return self.kind in (EXACT, CLEAN_ERROR) and not self.leftovers


def sha256_path(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def folder_files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob('*') if p.is_file() and p.name != 'lost+found')


HANDBACK = re.compile(r"\[async\] Using yt-dlp's (\S+) downloader: (.*)")


def engine_use(log: str) -> tuple[bool, str | None]:
    """(the engine downloaded, the hand-back line's ``NAME: WHY`` or None)."""
    found = HANDBACK.search(log)
    handback = f'{found[1]}: {found[2].strip()}' if found else None
    return (ENGINE_LINE in log or FRAGMENT_LINE in log) and handback is None, handback


PLUGIN_TRACES = re.compile(r'\[async\]|yt_dlp_async|yt_dlp_plugins|Plugins:|Plugin directories: (?!none)')


def plugin_traces(log: str) -> list[str]:
    """Lines of a yt-dlp -v log that show plugin code was loaded (none on the side of yt-dlp alone)."""
    return [line for line in log.splitlines() if PLUGIN_TRACES.search(line)]


PROGRESS = re.compile(r'^\[download\] +(\d+(\.\d+)?%|~? *[\d.]+ ?[KMGT]?i?B at |Unknown)|\bETA\b')
LINE_BREAK = re.compile(r'[\r\n]+|(?:(?<=\d\d:\d\d)|(?<=Unknown)|(?<=\)))\s*(?=\[download\] |ERROR: |WARNING: )')
"""Line ends (``\\r`` too: progress), and a ``[download]`` message glued to the progress line before it
(a progress line ends in a time, ``Unknown``, ``(00:00:00)`` when the size is unknown, or ``(frag N/M)``)."""
TAG_CR = re.compile(r'(ERROR|WARNING):[ \t]*\r')
"""``ERROR: \\r[download] Got error: ...``: yt-dlp's way to print an error over the progress line."""
TAGGED = ('[', 'ERROR:', 'WARNING:')
RETRY = re.compile(r'(Got error: ).*?(\. Retrying|\. Giving up)')
SLOW_AES = re.compile(r'^WARNING: The stream has AES-128 encryption and .* decryption will be performed natively')
"""yt-dlp alone without pycryptodomex; the plugin decrypts in C, so it runs HlsFD with AES seen as present
(a deliberate difference: yt_dlp_async/ytdlp/hls.py)."""


def output_lines(log: str, root: Path | str = '') -> list[str]:
    """The lines of a run a frontend parses, with what legitimately differs between the sides taken out.

    Kept: yt-dlp's tagged lines (``[...]``, ``ERROR:``, ``WARNING:``).
    Dropped: ``[debug]`` lines, the traceback ``-v`` adds to an error (its
    frames name each venv's files), the plugin's own ``[async]`` lines,
    progress lines (sizes, speeds, times), the byte a resume starts from (it
    depends on where a fault or a kill landed), a ``Destination`` line
    repeated (HttpFD announces it again on each retry), and the warning that
    AES-128 will be decrypted slowly in Python (``SLOW_AES``).  Rewritten: the
    matrix's folders and the side's name (in paths and resource keys), and
    the error text of a retry line (urllib's and libcurl's words differ;
    the retry counts stay).  The ``Retrying (k/n)`` lines come last, in their
    order: whether the destination is announced before the first retry or
    after it is not a difference.
    """
    out: list[str] = []
    retries: list[str] = []
    for raw in LINE_BREAK.split(TAG_CR.sub(r'\1: ', log)):
        line = raw.rstrip()
        if not line.startswith(TAGGED) or line.startswith(('[debug]', '[async]')) or PROGRESS.search(line) \
                or line.startswith('[download] Resuming download at byte') or line in out[-3:] and 'Destination' in line \
                or SLOW_AES.search(line):
            continue
        if root:
            line = line.replace(str(root), '<root>')
        line = re.sub(r'\b(native|plugin)\b', '<side>', line)
        line = RETRY.sub(r'\1<error>\2', line)
        (retries if 'Got error: <error>. Retrying' in line else out).append(line)
    return out + retries


def classify(returncode: int | None, folder: Path, good: Sequence[str], log: str = '', note: str = '',
             stdout: bytes | None = None, expected: bytes | None = None, root: Path | str = '') -> Outcome:
    """EXACT, EXACT+LEFTOVERS, CLEAN-ERROR, ERROR+FILE, WRONG or HANG (``returncode`` None).

    ``stdout``: the run wrote to ``-o -`` and these are the bytes; a failed
    run whose bytes are a prefix of ``expected`` is a clean error (a pipe
    cannot take bytes back).
    """
    files = folder_files(folder)
    engine, handback = engine_use(log)
    fields: dict[str, Any] = dict(engine=engine, handback=handback, log=log, lines=output_lines(log, root),
                                  error=any(line.startswith('ERROR:') for line in output_lines(log)))
    if stdout is None:
        final = folder / FINAL
        sha = sha256_path(final) if final.is_file() else None
        size = final.stat().st_size if final.is_file() else 0
        leftovers, where = [f for f in files if f != FINAL], FINAL
    else:
        sha = hashlib.sha256(stdout).hexdigest() if stdout else None
        size, leftovers, where = len(stdout), files, 'stdout'
    fields['sha'] = sha
    if returncode is None:
        return Outcome(HANG, None, files, note=note, **fields)
    right = sha is not None and sha in good
    if sha is not None and not right:
        if stdout is not None and returncode != 0 and expected is not None and expected.startswith(stdout):
            return Outcome(CLEAN_ERROR, returncode, leftovers, note=f'stdout: the first {size} bytes {note}'.strip(),
                           **fields)
        return Outcome(WRONG, returncode, leftovers, note=f'{where}: {size} bytes, wrong SHA-256 {note}'.strip(),
                       **fields)
    if returncode == 0:
        if not right:
            return Outcome(WRONG, 0, leftovers, note=f'exit 0 without {where} {note}'.strip(), **fields)
        return Outcome(LEFTOVERS if leftovers else EXACT, 0, leftovers, note=note, **fields)
    if right:
        return Outcome(ERROR_FILE, returncode, files if stdout is None else leftovers, note=note, **fields)
    return Outcome(CLEAN_ERROR, returncode, leftovers, note=note, **fields)


RESUMABLE = ('.part', '.part-async', '.part-async.ctl', '.ytdl')


def resumable(name: str) -> bool:
    """A file that only exists to resume the download (native's or the plugin's)."""
    return name.endswith(RESUMABLE) or '.part-Frag' in name


def extra_leftovers(plugin: Outcome, native: Outcome) -> list[str]:
    """Files the plugin leaves that native does not (resume state counts as native's resume state;
    what that state is worth, the rerun shows)."""
    native_resumes = any(resumable(n) for n in native.leftovers)
    return [n for n in plugin.leftovers
            if n not in native.leftovers and not (native_resumes and resumable(n))]


def line_diff(native: Sequence[str], plugin: Sequence[str]) -> str:
    """'' when the lines are the same, else the first difference (what native prints, what the plugin does)."""
    if list(native) == list(plugin):
        return ''
    for i, (a, b) in enumerate(zip(native, plugin)):
        if a != b:
            return f'line {i + 1}: native {a!r}, plugin {b!r}'
    if len(native) > len(plugin):
        return f'native prints {len(native) - len(plugin)} more: {native[len(plugin)]!r}'
    return f'the plugin prints {len(plugin) - len(native)} more: {plugin[len(native)]!r}'


def _compare_kinds(native: Outcome, plugin: Outcome) -> tuple[str, str]:
    """The verdict on the final state alone: kind, bytes, exit status, leftovers."""
    if plugin.kind == WRONG:
        if native.kind != WRONG:
            return WORSE, f'plugin: wrong bytes ({plugin.note}), native is {native.cell()}'
        if plugin.sha != native.sha:
            return WORSE, f'both wrong, but not the same bytes (native {native.note}; plugin {plugin.note})'
        if plugin.exit != native.exit:
            return WORSE, f'both write the same wrong bytes; native exits {native.exit}, the plugin {plugin.exit}'
        if plugin.exit == 0:
            return BAD, f'both write the same wrong bytes and exit 0 ({plugin.note})'
    elif native.kind == WRONG:
        return BETTER, ''
    elif native.kind == HANG:
        return (SAME, '') if plugin.kind == HANG else (BETTER, '')
    elif plugin.kind == HANG:
        return WORSE, f'native is {native.cell()}, the plugin hangs'
    elif native.kind != plugin.kind:
        if plugin.kind == EXACT or (plugin.kind == LEFTOVERS and native.kind not in (EXACT, LEFTOVERS)):
            return BETTER, ''
        return WORSE, f'native is {native.cell()}, plugin is {plugin.cell()}'
    if plugin.exit != native.exit:
        return WORSE, f'exit {plugin.exit} where native exits {native.exit}'
    extra = extra_leftovers(plugin, native)
    if extra:
        return WORSE, f'plugin leaves {extra} that native does not'
    return SAME, ''


def compare(native: Outcome, plugin: Outcome, lines: bool = True) -> tuple[str, str]:
    """(verdict, reason): the plugin is WORSE (or BAD: the same wrong bytes, exit 0, on both sides) than native, or not.

    Most severe first: the final state (``_compare_kinds``); what the row's
    ``Judge`` saw beyond the file (the same as native's, or WORSE); the requests (the
    plugin asks for bytes past the resource's end more often than native);
    where both sides ran again against a healthy server, that rerun's final
    state; then, where the outcome is the same (``lines``), the ERROR line and
    every output line of the run and of the rerun.
    """
    verdict, reason = _compare_kinds(native, plugin)
    if verdict in (WORSE, BAD):
        return verdict, reason
    if plugin.observed != native.observed:
        return WORSE, f'the judge saw {plugin.observed!r} where native gives {native.observed!r}'
    if plugin.past_end > native.past_end:
        return WORSE, (f'{plugin.past_end} requests ask for bytes past the end of the resource '
                       f'(native: {native.past_end})')
    reruns = native.rerun is not None and plugin.rerun is not None
    if reruns:
        # BAD is the first run's verdict to give: a rerun over the same wrong file of a failed run
        # ("has already been downloaded", exit 0) is yt-dlp's rule on both sides
        again, why = compare(native.rerun, plugin.rerun, lines=False)  # type: ignore[arg-type]
        if again == WORSE:
            return again, f'rerun against a healthy server: {why}'
    if verdict == SAME and lines:
        if native.error != plugin.error:
            return WORSE, ('native prints an ERROR line and the plugin does not' if native.error
                           else 'the plugin prints an ERROR line and native does not')
        diff = line_diff(native.lines, plugin.lines)
        if diff:
            return WORSE, f'the output differs: {diff}'
        if reruns:
            again, why = compare(native.rerun, plugin.rerun)  # type: ignore[arg-type]
            if again == WORSE:
                return again, f'rerun against a healthy server: {why}'
    return verdict, reason


# ------------------------------------------------------------------- running
@dataclasses.dataclass
class Context:
    """The servers, the folder every run of the matrix lives under, and each side's interpreter."""

    server: FaultServer
    server2: FaultServer
    root: Path
    python: dict[str, str]
    """{side: the python that runs ``-m yt_dlp``}: yt-dlp alone's venv for native."""


def side_dirs(ctx: Context, row: str, side: str) -> tuple[Path, Path]:
    """(empty work folder, scratch folder for the info JSON and HOME) of one side of a row."""
    base = ctx.root / row / side
    work, scratch = base / 'work', base / 'scratch'
    work.mkdir(parents=True, exist_ok=True)
    scratch.mkdir(parents=True, exist_ok=True)
    return work, scratch


def command(ctx: Context, side: str, source: Sequence[str], extra: Sequence[str] = (),
            plugin_extra: Sequence[str] = (), out: str = FINAL) -> list[str]:
    """``python -m yt_dlp`` of the side; ``plugin_extra`` (``--async-*``) on the plugin side only."""
    return [ctx.python[side], '-m', 'yt_dlp', *COMMON, '-o', out, *extra,
            *(plugin_extra if side == PLUGIN else ()), *source]


def run(cmd: Sequence[str], work: Path, scratch: Path, timeout: float = RUN_TIMEOUT
        ) -> tuple[int | None, bytes, str]:
    """Run yt-dlp to the end; (exit status or None on timeout, stdout, stderr)."""
    try:
        proc = subprocess.run(list(cmd), cwd=work, capture_output=True, timeout=timeout,
                              env=hermetic_env(scratch / 'home'))
    except subprocess.TimeoutExpired as exc:
        return None, exc.stdout or b'', (exc.stderr or b'').decode(errors='replace')
    return proc.returncode, proc.stdout, proc.stderr.decode(errors='replace')


def text(stdout: bytes, stderr: str) -> str:
    return stdout.decode(errors='replace') + stderr


def info_json(scratch: Path, url: str, protocol: str = 'http', name: str = 'info.json',
              headers: dict[str, str] | None = None) -> Path:
    """An info dict of one direct format (what an extractor hands the downloader); ``headers``: its http_headers."""
    path = scratch / name
    path.write_text(json.dumps({
        'id': 'diff', 'title': 'differential', 'extractor': 'generic', 'extractor_key': 'Generic',
        'webpage_url': url, 'url': url, 'ext': 'bin', 'format_id': '0', 'protocol': protocol,
        **({'http_headers': headers} if headers else {}),
    }))
    return path


def past_end(ctx: Context, key: str, size: int) -> int:
    """GETs of ``/data/`` for ``key`` whose Range asks for bytes past the resource's end (``size``)."""
    count = 0
    for entry in ctx.server.log + ctx.server2.log:
        if entry.method != 'GET' or not entry.path.startswith('/data/') or entry.query.get('key') != key:
            continue
        found = re.fullmatch(r'bytes=(\d+)-(\d+)', (entry.range or '').strip())
        if found and int(found[2]) >= size:
            count += 1
    return count


class Judge:
    """What a row judges beyond the file and the output lines: ``prepare`` sets up a side's folders before
    its run, ``observe`` describes what it finds after it; the plugin must observe what native does."""

    def prepare(self, ctx: Context, work: Path, scratch: Path) -> None:
        pass

    def observe(self, ctx: Context, key: str, work: Path, scratch: Path) -> str:
        raise NotImplementedError


class SeenHeader(Judge):
    """The values of a request header the servers saw on the side's requests (``key=`` in their query)."""

    def __init__(self, header: str) -> None:
        self.header = header

    def observe(self, ctx: Context, key: str, work: Path, scratch: Path) -> str:
        seen = {str(e.header(self.header)) for e in ctx.server.log + ctx.server2.log if e.query.get('key') == key}
        return f'{self.header}: ' + ' | '.join(sorted(seen))


class SpecialFile(Judge):
    """A FIFO or a character device (1, 3: another /dev/null) at the output path before the run; after it,
    is that node still there (the same kind, inode and device number)?"""

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def prepare(self, ctx: Context, work: Path, scratch: Path) -> None:
        path = work / FINAL
        if self.kind == 'fifo':
            os.mkfifo(path)
        else:
            os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        node = os.lstat(path)
        (scratch / 'node').write_text(f'{stat.S_IFMT(node.st_mode)} {node.st_ino} {node.st_rdev}')

    def observe(self, ctx: Context, key: str, work: Path, scratch: Path) -> str:
        try:
            node = os.lstat(work / FINAL)
        except FileNotFoundError:
            return f'{FINAL} is gone'
        same = f'{stat.S_IFMT(node.st_mode)} {node.st_ino} {node.st_rdev}' == (scratch / 'node').read_text()
        return f'{FINAL} is ' + (f'the {self.kind} made before the run' if same else 'another file')


class SavedCookie(Judge):
    """``--cookies`` (``ARGS``, in the side's scratch folder) holding ``name=value`` for the fault server's
    host; after the run, the values ``name`` has in the cookie file yt-dlp saved."""

    ARGS = ('--cookies', '../scratch/cookies.txt')
    """Relative to the work folder, where yt-dlp runs."""

    def __init__(self, name: str, value: str) -> None:
        self.name, self.value = name, value

    def prepare(self, ctx: Context, work: Path, scratch: Path) -> None:
        (scratch / 'cookies.txt').write_text('# Netscape HTTP Cookie File\n'
                                             f'{ctx.server.host}\tFALSE\t/\tFALSE\t0\t{self.name}\t{self.value}\n')

    def observe(self, ctx: Context, key: str, work: Path, scratch: Path) -> str:
        lines = [line.split('\t') for line in (scratch / 'cookies.txt').read_text().splitlines()]
        return f'{self.name} saved as ' + repr([f[6] for f in lines if len(f) == 7 and f[5] == self.name])


class Case:
    """One or more rows of the matrix that share their runs; ``execute`` runs one side.

    ``handback``: the plugin may hand this row's download back to yt-dlp's
    own downloader with a hand-back line that says this; None (the default):
    the plugin side must go through the engine.  ``judge``: what else the row
    compares (a ``Judge``).
    """

    name: str
    rows: tuple[str, ...]
    what: str
    handback: str | None = None
    judge: Judge | None = None

    def before_run(self, ctx: Context, work: Path, scratch: Path) -> None:
        if self.judge is not None:
            self.judge.prepare(ctx, work, scratch)

    def after_run(self, outcome: Outcome, ctx: Context, key: str, work: Path, scratch: Path) -> Outcome:
        if self.judge is not None:
            outcome.observed = self.judge.observe(ctx, key, work, scratch)
        return outcome

    def execute(self, ctx: Context, side: str) -> list[Outcome]:
        raise NotImplementedError

    def expected_handback(self, row: str) -> str | None:
        return self.handback


class FaultCase(Case):
    """A direct http URL of ``/data/SIZE`` with query parameters (the fault); ``stdout``: ``-o -``.

    ``headers``: the format's http_headers; ``userinfo``: ``user:pass`` put into the URL.
    """

    def __init__(self, name: str, what: str, params: dict[str, Any], *, size: int = SIZE, redirect: int = 0,
                 extra: Sequence[str] = (), changed_ok: bool = False, direct: bool = False,
                 path: str | None = None, part: Callable[[bytes], bytes] | None = None,
                 stdout: bool = False, handback: str | None = None, headers: dict[str, str] | None = None,
                 userinfo: str = '', judge: Judge | None = None) -> None:
        self.name, self.what, self.params, self.size = name, what, params, size
        self.redirect, self.extra, self.changed_ok, self.direct = redirect, tuple(extra), changed_ok, direct
        self.path, self.part, self.stdout, self.handback = path, part, stdout, handback
        self.headers, self.userinfo, self.judge = headers, userinfo, judge
        self.rows = (name,)

    def seed(self) -> int:
        return int(self.params.get('seed', 0))

    def good(self) -> list[str]:
        good = [sha256_of(self.size, self.seed())]
        if self.changed_ok:  # the resource changed (etag_change): the new version whole is right too
            good.append(sha256_of(self.size, self.seed() + 1000))
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

    def healthy_url(self, ctx: Context, side: str) -> str:
        """The same bytes without the fault (a fresh key)."""
        seed = {'seed': self.seed()} if self.seed() else {}
        return ctx.server.data_url(self.size, 'mp4' if self.direct else 'bin', key=f'{self.name}-{side}-rerun', **seed)

    def command(self, ctx: Context, side: str, url: str, scratch: Path, info: str) -> list[str]:
        if self.userinfo:
            url = url.replace('://', f'://{self.userinfo}@', 1)
        # direct: through the generic extractor, as `yt-dlp URL` does
        source = [url] if self.direct else ['--load-info-json', str(info_json(scratch, url, name=info,
                                                                              headers=self.headers))]
        return command(ctx, side, source, self.extra, out=STDOUT if self.stdout else FINAL)

    def execute(self, ctx: Context, side: str) -> list[Outcome]:
        work, scratch = side_dirs(ctx, self.name, side)
        if self.part is not None:  # a NAME.part left by an earlier run
            (work / (FINAL + '.part')).write_bytes(self.part(content(self.size, self.seed())))
        self.before_run(ctx, work, scratch)
        code, out, err = run(self.command(ctx, side, self.url(ctx, side), scratch, 'info.json'), work, scratch)
        if self.stdout:
            outcome = classify(code, work, self.good(), err, stdout=out, expected=content(self.size, self.seed()),
                               root=ctx.root)
        else:
            outcome = classify(code, work, self.good(), text(out, err), root=ctx.root)
            outcome.again = Rerun(self.command(ctx, side, self.healthy_url(ctx, side), scratch, 'rerun.json'),
                                  work, scratch, self.good())
        outcome.past_end = past_end(ctx, f'{self.name}-{side}', self.size)
        return [self.after_run(outcome, ctx, f'{self.name}-{side}', work, scratch)]


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


def segments_of(name: str, count: int = 12, base: int = 60_000) -> list[bytes]:
    return [hashlib.shake_128(f'{name}:{i}'.encode()).digest(base + 997 * i) for i in range(count)]


def hls_info(ctx: Context, scratch: Path, key: str, segments: Sequence[bytes],
             faults: dict[int, dict[str, Any]] | None = None, name: str = 'info.json') -> Path:
    stream = hls_stream(ctx.server, key, segments, faults=faults)
    path = scratch / name
    path.write_text(json.dumps({**stream.info, 'ext': 'bin'}))
    return path


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

    def prepare(self, ctx: Context, side: str, scratch: Path, healthy: bool = False
                ) -> tuple[list[str], str, str | None, int, str]:
        """(command, path prefix, key, bytes to kill at, good SHA-256); ``healthy``: unthrottled, a fresh key."""
        key = f'{self.name}-{side}' + ('-rerun' if healthy else '')
        info_name = 'rerun.json' if healthy else 'info.json'
        if self.flavour == 'hls':
            segments = segments_of(self.name, self.SEGMENTS)
            faults = None if healthy else {i: {'rate': 150_000} for i in range(self.SEGMENTS)}
            info = hls_info(ctx, scratch, key, segments, faults, info_name)
            k = round(self.at * self.SEGMENTS)
            kill_at = sum(len(seg) for seg in segments[:k]) + len(segments[k]) // 2
            cmd = command(ctx, side, ['--load-info-json', str(info)], plugin_extra=['--async-host-connections', '2'])
            return cmd, f'/file/{key}/seg', None, kill_at, hashlib.sha256(b''.join(segments)).hexdigest()
        size = 3 * MiB
        url = ctx.server.data_url(size, 'bin', key=key) if healthy else \
            ctx.server.data_url(size, 'bin', rate=700_000, key=key)
        plugin_extra = ['--async-connections', '1'] if self.flavour == 'plain' else []
        cmd = command(ctx, side, ['--load-info-json', str(info_json(scratch, url, name=info_name))],
                      plugin_extra=plugin_extra)
        return cmd, f'/data/{size}', key, int(self.at * size), sha256_of(size)

    def execute(self, ctx: Context, side: str) -> list[Outcome]:
        work, scratch = side_dirs(ctx, self.name, side)
        cmd, prefix, key, kill_at, good = self.prepare(ctx, side, scratch)
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
        code, out, err = run(cmd, work, scratch)
        outcome = classify(code, work, [good], text(out, err), f'{state}, left {after_kill}', root=ctx.root)
        outcome.again = Rerun(self.prepare(ctx, side, scratch, healthy=True)[0], work, scratch, [good])
        if key is not None:  # http: the killed run's requests and the rerun's
            outcome.past_end = past_end(ctx, key, 3 * MiB)
        return [outcome]


NO_YTDL = object()
"""``HlsCase(ytdl=NO_YTDL)``: no NAME.ytdl beside the NAME.part."""


Playlist = Callable[[FaultServer, str, Sequence[bytes], bool], Stream]
"""``HlsCase(playlist=...)``: (server, name, segments, healthy) -> a stream built its own way."""


def aes_key_of(length: int) -> Playlist:
    """AES-128 segments whose key URI serves ``length`` random bytes (its 16 when healthy).  The file must
    be what yt-dlp's own AES makes of the segments with that key: its pure-Python AES takes 15 bytes (and
    fails on 0: then both sides fail)."""
    def make(server: FaultServer, name: str, segments: Sequence[bytes], healthy: bool) -> Stream:
        # MEDIA-SEQUENCE 0: with AES seen as present, HlsFD warns of a live stream where it is not 0
        stream = hls_aes_stream(server, name, segments, explicit_iv=False, media_sequence=0)
        if healthy:
            return stream
        key = os.urandom(length)
        server.add_file(f'{name}/key0.bin', key)
        if length:
            from yt_dlp.aes import aes_cbc_decrypt_bytes, unpad_pkcs7   # what yt-dlp alone decrypts with
            ivs = [i.to_bytes(16, 'big') for i in range(len(segments))]   # the media sequence numbers
            sent = [aes_encrypt(seg, stream.extra['keys'][0], iv) for seg, iv in zip(segments, ivs)]
            stream.segments = [unpad_pkcs7(aes_cbc_decrypt_bytes(data, key, iv)) for data, iv in zip(sent, ivs)]
        return stream
    return make


def byteranges(server: FaultServer, name: str, segments: Sequence[bytes], healthy: bool) -> Stream:
    """The segments as EXT-X-BYTERANGE pieces of one file (1000 bytes follow them); unless ``healthy``, the
    server ignores their ranges (``norange=1``: a 200 with the whole file to each)."""
    server.add_file(f'{name}/media.bin', b''.join(segments) + bytes(1000))
    lines = ['#EXTM3U', '#EXT-X-VERSION:4', '#EXT-X-TARGETDURATION:2', '#EXT-X-MEDIA-SEQUENCE:0']
    offset = 0
    for segment in segments:
        lines += ['#EXTINF:2.0,', f'#EXT-X-BYTERANGE:{len(segment)}@{offset}',
                  'media.bin' + ('' if healthy else '?norange=1')]
        offset += len(segment)
    lines.append('#EXT-X-ENDLIST')
    url = server.add_file(f'{name}/index.m3u8', ('\n'.join(lines) + '\n').encode(), 'application/vnd.apple.mpegurl')
    return Stream(list(segments), info_for(url, 'm3u8_native'))


class HlsCase(Case):
    """An HLS download of 12 segments: faults on some segments, or started over an earlier run's state.

    ``faults[i]``: query parameters of segment i (``<side>`` in a value
    becomes the side's name).  ``part``: NAME.part holds that many segments
    before the run, with NAME.ytdl holding ``ytdl`` (or absent).  A SIGKILL
    timed to the moment a segment is appended can leave NAME.part ahead of
    NAME.ytdl (or NAME.ytdl empty, killed while it is rewritten); such a kill
    is a race, so these rows build the state directly and come out the same
    on every run.  ``playlist``: the stream built another way (AES-128,
    byte ranges); ``count``: segments; ``extra``: options of both sides.
    """

    def __init__(self, name: str, what: str, faults: dict[int, dict[str, Any]] | None = None,
                 part: int = 0, ytdl: object = NO_YTDL, stdout: bool = False, handback: str | None = None,
                 *, count: int = 12, extra: Sequence[str] = (), playlist: Playlist | None = None,
                 judge: Judge | None = None) -> None:
        self.name, self.what, self.faults, self.part, self.ytdl = name, what, faults or {}, part, ytdl
        self.stdout, self.handback, self.count, self.extra = stdout, handback, count, tuple(extra)
        self.playlist, self.judge = playlist, judge
        self.rows = (name,)

    def stream(self, ctx: Context, scratch: Path, side: str, segments: Sequence[bytes], healthy: bool = False
               ) -> tuple[Path, bytes]:
        """(the info JSON, the bytes the file must be) of the side's stream, or of a healthy one for the rerun."""
        key = f'{self.name}-{side}' + ('-rerun' if healthy else '')
        if self.playlist is not None:
            stream = self.playlist(ctx.server, key, segments, healthy)
        else:
            faults = None if healthy else {
                i: {**{k: v.replace('<side>', side) if isinstance(v, str) else v for k, v in f.items()}, 'key': side}
                for i, f in self.faults.items()}
            stream = hls_stream(ctx.server, key, segments, faults=faults)
        path = scratch / ('rerun.json' if healthy else 'info.json')
        path.write_text(json.dumps({**stream.info, 'ext': 'bin'}))
        return path, stream.expected

    def execute(self, ctx: Context, side: str) -> list[Outcome]:
        work, scratch = side_dirs(ctx, self.name, side)
        segments = segments_of(self.name, self.count)
        info, expected = self.stream(ctx, scratch, side, segments)
        good = [hashlib.sha256(expected).hexdigest()]
        if self.part:
            (work / (FINAL + '.part')).write_bytes(b''.join(segments[:self.part]))
            if isinstance(self.ytdl, str):
                (work / (FINAL + '.ytdl')).write_text(self.ytdl)
        self.before_run(ctx, work, scratch)
        out_name = STDOUT if self.stdout else FINAL
        code, out, err = run(command(ctx, side, ['--load-info-json', str(info)], self.extra, out=out_name),
                             work, scratch)
        if self.stdout:
            outcome = classify(code, work, good, err, stdout=out, expected=expected, root=ctx.root)
            return [self.after_run(outcome, ctx, f'{self.name}-{side}', work, scratch)]
        outcome = classify(code, work, good, text(out, err), root=ctx.root)
        healthy = self.stream(ctx, scratch, side, segments, healthy=True)[0]
        outcome.again = Rerun(command(ctx, side, ['--load-info-json', str(healthy)], self.extra), work, scratch, good)
        return [self.after_run(outcome, ctx, f'{self.name}-{side}', work, scratch)]


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
    """The folder is a 1 MiB tmpfs, the download does not fit; then 16 MiB and the same command again.

    The second run is the first row's rerun; what it leaves is copied out of
    the tmpfs (``after/``) before it is unmounted, for the second row's rerun.
    """

    def __init__(self, name: str, what: str, flavour: str, handback_full: str | None = None) -> None:
        self.name, self.what, self.flavour, self.handback_full = name, what, flavour, handback_full
        self.rows = (name, name + '-then-space')

    def expected_handback(self, row: str) -> str | None:
        """``handback_full``: the hand-back the run that fills the disk may show (where the disk fills decides)."""
        return self.handback_full if row == self.name else None

    def execute(self, ctx: Context, side: str) -> list[Outcome]:
        base = ctx.root / self.name / side
        work, scratch = base / 'work', base / 'scratch'
        scratch.mkdir(parents=True, exist_ok=True)
        key = f'{self.name}-{side}'
        if self.flavour == 'hls':
            segments = segments_of(self.name, base=200_000)
            info = hls_info(ctx, scratch, key, segments)
            good = hashlib.sha256(b''.join(segments)).hexdigest()
        else:
            size = 3 * MiB
            info = info_json(scratch, ctx.server.data_url(size, 'bin', key=key))
            good = sha256_of(size)
        plugin_extra = ['--async-connections', '1'] if self.flavour == 'plain' else []
        cmd = command(ctx, side, ['--load-info-json', str(info)], plugin_extra=plugin_extra)
        mount_tmpfs(work, '1m')
        try:
            code, out, err = run(cmd, work, scratch)
            full = classify(code, work, [good], text(out, err), root=ctx.root)
            remount(work, '16m')
            code, out, err = run(cmd, work, scratch)
            again = classify(code, work, [good], text(out, err), root=ctx.root)
            shutil.copytree(work, base / 'after', dirs_exist_ok=True)
        finally:
            umount(work)
        full.rerun = again
        again.again = Rerun(cmd, base / 'after', scratch, [good])
        return [full, again]


def rerun(outcome: Outcome, root: Path | str = '') -> Outcome:
    """``outcome``'s command once more against a healthy server, in the folder it left."""
    assert outcome.again is not None
    again = outcome.again
    code, out, err = run(again.cmd, again.folder, again.scratch)
    return classify(code, again.folder, again.good, text(out, err), root=root)


def run_matrix(cases: Sequence[Case], ctx: Context, workers: int,
               durations: dict[tuple[str, str], float] | None = None
               ) -> dict[tuple[str, str], Outcome | BaseException]:
    """Both sides of every case on a thread pool, then the reruns; {(row, side): Outcome or the exception}.

    A row is rerun (both sides) when either side left more than a right
    final file (``Outcome.clean``) and neither was rerun already.
    """
    results: dict[tuple[str, str], Outcome | BaseException] = {}

    def timed(case: Case, side: str) -> list[Outcome]:
        start = time.monotonic()
        try:
            return case.execute(ctx, side)
        finally:
            if durations is not None:
                durations[(case.name, side)] = time.monotonic() - start

    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        # the slow rows (kills, disks) first, so they overlap the many quick ones
        jobs = {pool.submit(timed, case, side): (case, side)
                for case in sorted(cases, key=lambda c: isinstance(c, (FaultCase, HlsCase))) for side in SIDES}
        for future in concurrent.futures.as_completed(jobs):
            case, side = jobs[future]
            try:
                outcomes: list[Outcome] | BaseException = future.result()
            except Exception as exc:  # a broken row is reported by its test, not by all of them
                outcomes = exc
            for i, row in enumerate(case.rows):
                results[(row, side)] = outcomes if isinstance(outcomes, BaseException) else outcomes[i]
        reruns: dict[concurrent.futures.Future[Outcome], Outcome] = {}
        for case in cases:
            for row in case.rows:
                pair = [o for o in (results.get((row, side)) for side in SIDES) if isinstance(o, Outcome)]
                if len(pair) == 2 and all(o.again is not None and o.rerun is None for o in pair) \
                        and not all(o.clean() for o in pair):
                    for outcome in pair:
                        reruns[pool.submit(rerun, outcome, ctx.root)] = outcome
        for done in concurrent.futures.as_completed(reruns):
            try:
                reruns[done].rerun = done.result()
            except Exception as exc:
                reruns[done].note += f' (the rerun could not be made: {exc})'
    return results


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
        FaultCase('fail-503x3', 'three 503s: exactly --retries 3', {'fail': 3}),
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
        FaultCase('http-chunk-size', '--http-chunk-size 1M, no fault', {}, extra=['--http-chunk-size', '1M']),
        FaultCase('http-chunk-size-reset', '--http-chunk-size 1M, RST after 256 KiB once', {'reset_after': K},
                  extra=['--http-chunk-size', '1M']),
        FaultCase('limit-rate-reset', '--limit-rate 4M, RST after 256 KiB once', {'reset_after': K},
                  extra=['--limit-rate', '4M']),
    ]


def stdout_cases() -> list[Case]:
    """``-o -``: the bytes on stdout are the file; a failed run may only have written a right prefix."""
    K = 256 * KiB
    return [
        FaultCase('stdout-plain', '-o -, no fault', {}, stdout=True),
        FaultCase('stdout-reset-once', f'-o -, RST after {K} bytes, once', {'reset_after': K}, stdout=True),
        FaultCase('stdout-short-once', '-o -, body 100 KiB short, then close, once', {'short': 100 * KiB},
                  stdout=True),
        FaultCase('stdout-stall-once', f'-o -, stall after {K} bytes, once', {'stall_after': K}, stdout=True),
        FaultCase('stdout-reset-always', f'-o -, RST after {K} bytes on every request',
                  {'reset_after': K, 'times': -1}, stdout=True),
        FaultCase('stdout-status-404', '-o -, always 404', {'status': 404}, stdout=True),
        FaultCase('stdout-etag-change-reset', '-o -, a reset, then new content under a new ETag',
                  {'etag_change': 1, 'reset_after': K}, stdout=True),
        HlsCase('stdout-hls-seg-reset', '-o -, HLS, segments 3 and 7 reset after 20 KiB once',
                {3: {'reset_after': 20 * KiB}, 7: {'reset_after': 20 * KiB}}, stdout=True),
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
        HlsCase('hls-seg-503x3', 'HLS, segment 3 answers 503 three times (= --fragment-retries 3)',
                {3: {'fail': 3}}),
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
            DiskFullCase('disk-full-hls', 'HLS of 2.4 MB into a 1 MiB tmpfs', 'hls',
                         handback_full='the engine could not write the file')]


def issue16_cases() -> list[Case]:
    """Issue 16, cases 7-12: faults where yt-dlp alone once did better than the plugin."""
    auth = 'Authorization:Bearer s3cret'
    rotating = {i: {'cookie_chain': 'tok<side>'} for i in range(40)}   # one chain per server: a name per side
    newer = {i: {'set_cookie_seq': 's', **({'set_cookie': 't=2'} if i == 5 else {})} for i in range(40)}
    return [
        FaultCase('bare206', 'every answer a 206 without Content-Range (to a Range, or the whole)', {'bare206': 1}),
        FaultCase('bare206-norange', 'every answer a 206 without Content-Range, always the whole body',
                  {'bare206': 1, 'norange': 1}),
        FaultCase('bare206-http-chunk-size', '--http-chunk-size 1M, every answer a 206 without Content-Range '
                  '(yt-dlp alone keeps the first 1 MiB as the file)', {'bare206': 1},
                  extra=['--http-chunk-size', '1M']),
        FaultCase('bare206-norange-http-chunk-size', '--http-chunk-size 1M, every answer the whole body as a 206 '
                  'without Content-Range', {'bare206': 1, 'norange': 1}, extra=['--http-chunk-size', '1M']),
        FaultCase('no-part-fifo', '--no-part over a FIFO at the output path, always 503', {'fail': 100},
                  extra=['--no-part'], judge=SpecialFile('fifo'),
                  handback='is a FIFO (named pipe), which yt-dlp opens only once the first byte arrives'),
        *([FaultCase('no-part-chardev', '--no-part over a character device (1, 3) at the output path, always 503',
                     {'fail': 100}, extra=['--no-part'], judge=SpecialFile('chardev'))]
          if os.geteuid() == 0 else []),   # mknod of a device needs root
        FaultCase('redirect-auth-cross-host', "a 302 to another host that needs the format's Authorization header",
                  {'require_header': auth}, redirect=302, headers={'Authorization': 'Bearer s3cret'}),
        FaultCase('url-credentials', 'us%65r:p%40ss@ in the URL: the Authorization the server sees', {},
                  userinfo='us%65r:p%40ss', judge=SeenHeader('Authorization')),
        FaultCase('header-latin1', 'a format header X-Name: café: the bytes the server sees', {},
                  headers={'X-Name': 'café'}, judge=SeenHeader('X-Name')),
        HlsCase('hls-aes-key-empty', 'HLS, AES-128, the key URI serves 0 bytes', playlist=aes_key_of(0),
                handback='the AES-128 key is 0 bytes'),
        HlsCase('hls-aes-key-15', 'HLS, 4 segments, AES-128, the key URI serves 15 bytes (yt-dlp alone decrypts '
                'with them)', count=4, playlist=aes_key_of(15)),
        HlsCase('hls-byterange-norange', 'HLS, 12 EXT-X-BYTERANGE pieces of one file, the server ignores ranges '
                '(yt-dlp alone writes the whole file 12 times, exit 0)', playlist=byteranges),
        HlsCase('hls-cookie-chain', 'HLS, 40 segments: each reply rotates a cookie the next request must carry',
                rotating, count=40),
        HlsCase('hls-cookie-newer', 'HLS, 40 segments each setting a new cookie, segment 5 also t=2 over '
                '--cookies t=1: the saved t', newer, count=40, extra=SavedCookie.ARGS, judge=SavedCookie('t', '1')),
    ]


def all_cases() -> list[Case]:
    return fault_cases() + stdout_cases() + hls_cases() + kill_cases() + disk_cases() + issue16_cases()


def row_descriptions(cases: Sequence[Case]) -> dict[str, str]:
    out: dict[str, str] = {}
    for case in cases:
        out[case.rows[0]] = case.what
        for extra in case.rows[1:]:
            out[extra] = case.what + '; then 16 MiB, rerun'
    return out

