"""Issue 9, "never worse than yt-dlp alone": the differential matrix, three tests per row.

Every row (tests/differential_cases.py) runs the same ``python -m yt_dlp``
command twice in this test run, each in its own empty folder: with the
interpreter of a venv that holds yt-dlp and nothing of the plugin (native,
tests/differential_venvs.py) and with this venv's (the plugin).  A row fails
when the plugin's outcome is worse than native's, when the plugin side did
not go through the engine (unless the row names the hand-back it allows), or
when native's log shows plugin code.
The rows are run together on a thread pool (a module fixture runs exactly the
rows pytest selected); each test then judges its own row.  The whole table is
printed at the end of the session and written to build/differential.md.

``DIFFERENTIAL_MUTANTS=1`` (``make differential``) also runs the planted bugs
(differential_venvs.MUTANTS): each must turn at least one row WORSE.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import os
import subprocess
import sys
import urllib.parse
from pathlib import Path
from typing import Any, Iterator, NamedTuple

import pytest

import differential_cases as dc
import differential_venvs as dv
from faultserver import FaultServer, content
from ytdlp_support import hermetic_env, require_engine, require_hook

class Xfail(NamedTuple):
    reason: str
    strict: bool = True


# Rows where the plugin is worse than yt-dlp alone today (measured on this branch).
# The integrator removes an entry once the fix for it is merged; strict=True
# makes a row that starts passing fail until its entry is removed.  strict=False
# only for rows whose failure depends on where a SIGKILL lands (a race).
XFAIL: dict[str, Xfail] = {}

CASES = dc.all_cases()
BY_ROW = {row: case for case in CASES for row in case.rows}
DESCRIPTIONS = dc.row_descriptions(CASES)
WORKERS = int(os.environ.get('DIFFERENTIAL_WORKERS', '6'))
TABLE_PATH = Path(__file__).resolve().parent.parent / 'build' / 'differential.md'


def _param(row: str) -> Any:
    marks = [pytest.mark.xfail(strict=XFAIL[row].strict, reason=XFAIL[row].reason)] if row in XFAIL else []
    return pytest.param(row, id=row, marks=marks)


class _Table:
    """Collects the judged rows and prints them at the end of the session."""

    def __init__(self) -> None:
        self.rows: dict[str, tuple[dc.Outcome, dc.Outcome, str, str]] = {}

    def markdown(self) -> str:
        lines = ['| case | what | native outcome | plugin outcome | verdict |', '|---|---|---|---|---|']
        for row in BY_ROW:
            if row not in self.rows:
                continue
            native, plugin, verdict, reason = self.rows[row]
            mark = ' (xfail)' if row in XFAIL else ''
            shown = verdict + (f': {reason}' if reason else '') + mark
            engine = '' if plugin.engine else f' (handed back: {plugin.handback})' if plugin.handback else ' (no engine)'
            if plugin.rerun is not None and native.rerun is not None:
                engine += f'; rerun: {native.rerun.cell()} / {plugin.rerun.cell()}'
            lines.append(f'| {row} | {DESCRIPTIONS[row]} | {native.cell()} | {plugin.cell()}{engine} | {shown} |')
        return '\n'.join(lines) + '\n'

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.rows:
            return
        text = self.markdown()
        TABLE_PATH.parent.mkdir(parents=True, exist_ok=True)
        TABLE_PATH.write_text('# Differential matrix (issue 9)\n\n' + text)
        terminalreporter.section('differential: native vs plugin')
        terminalreporter.write(text)
        slowest = sorted(DURATIONS.items(), key=lambda kv: -kv[1])[:8]
        terminalreporter.write_line('slowest runs: ' + ', '.join(f'{name}/{side} {secs:.1f}s'
                                                                  for (name, side), secs in slowest))
        terminalreporter.write_line(f'(written to {TABLE_PATH})')


class _MutantTable:
    """Prints what each planted bug did to its rows at the end of the session."""

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not MUTANT_REPORT:
            return
        terminalreporter.section('differential: planted bugs')
        for name, verdicts in MUTANT_REPORT.items():
            terminalreporter.write_line(f'{name} ({dv.MUTANTS[name].what}): ' + '; '.join(
                f'{row} {verdict}' + (f' ({why[:200]})' if verdict in (dc.WORSE, dc.BAD) else '')
                for row, (verdict, why) in verdicts.items()))


@pytest.fixture(scope='module')
def matrix(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[tuple[dict[tuple[str, str], dc.Outcome | BaseException], _Table]]:
    """Run every selected row, both sides, on a thread pool; {(row, side): Outcome or the exception}."""
    require_hook()
    require_engine()
    selected = {getattr(item, 'callspec').params.get('row') for item in request.session.items
                if getattr(item, 'module', None) is request.module and hasattr(item, 'callspec')}
    cases = [case for case in CASES if any(row in selected for row in case.rows)]
    root = tmp_path_factory.mktemp('differential')
    if any(isinstance(case, dc.DiskFullCase) for case in cases):
        reason = dc.can_mount(root / 'probe') if os.geteuid() == 0 else 'mounting a tmpfs needs root'
        if reason:
            cases = [case for case in cases if not isinstance(case, dc.DiskFullCase)]
            request.config.stash[_SKIP_DISK] = reason
    table = _Table()
    request.config.pluginmanager.register(table, 'differential-table')
    with FaultServer('127.0.0.1') as server, FaultServer('127.0.0.2') as server2:
        ctx = dc.Context(server, server2, root, {dc.NATIVE: str(dv.alone_venv()), dc.PLUGIN: sys.executable})
        results = dc.run_matrix(cases, ctx, WORKERS, DURATIONS)
    yield results, table


_SKIP_DISK = pytest.StashKey[str]()
DURATIONS: dict[tuple[str, str], float] = {}


def _pair(row: str, matrix: Any, request: pytest.FixtureRequest) -> tuple[dc.Outcome, dc.Outcome]:
    """(native, plugin) of a row; skips a row that was not run, raises for a run that could not be made."""
    results = matrix[0]
    if (row, dc.NATIVE) not in results:
        pytest.skip(request.config.stash.get(_SKIP_DISK, 'row not run'))
    native, plugin = results[(row, dc.NATIVE)], results[(row, dc.PLUGIN)]
    for side, outcome in ((dc.NATIVE, native), (dc.PLUGIN, plugin)):
        if isinstance(outcome, BaseException):
            raise AssertionError(f'{row}: the {side} run could not be made') from outcome
    assert isinstance(native, dc.Outcome) and isinstance(plugin, dc.Outcome)
    return native, plugin


@pytest.mark.parametrize('row', [_param(row) for row in BY_ROW])
def test_plugin_never_worse(row: str, matrix: Any, request: pytest.FixtureRequest) -> None:
    native, plugin = _pair(row, matrix, request)
    verdict, reason = dc.compare(native, plugin)
    matrix[1].rows[row] = (native, plugin, verdict, reason)
    assert verdict not in (dc.WORSE, dc.BAD), (
        f'{row} ({DESCRIPTIONS[row]}): plugin is {verdict} than native: {reason}\n'
        f'native: {native.cell()}\nplugin: {plugin.cell()}\n--- plugin log (tail)\n{plugin.log[-3000:]}')


@pytest.mark.parametrize('row', list(BY_ROW))
def test_plugin_used_the_engine(row: str, matrix: Any, request: pytest.FixtureRequest) -> None:
    """The plugin side went through the engine, or handed the download back for the reason the row names
    (a silent hand-back would compare yt-dlp with itself).  Not xfailed with the row's verdict."""
    plugin = _pair(row, matrix, request)[1]
    expected = BY_ROW[row].expected_handback(row)
    handed_back_as_expected = expected is not None and plugin.handback is not None and expected in plugin.handback
    assert plugin.engine or handed_back_as_expected, (
        f'{row}: the plugin side did not go through the engine (hand-back: {plugin.handback}; '
        f'the row allows: {expected})\n{plugin.log[-2000:]}')


@pytest.mark.parametrize('row', list(BY_ROW))
def test_native_ran_alone(row: str, matrix: Any, request: pytest.FixtureRequest) -> None:
    """yt-dlp alone really ran alone: no line of the plugin (yt-dlp -v also names every plugin it loaded)."""
    native = _pair(row, matrix, request)[0]
    assert not dc.plugin_traces(native.log), f'{row}: the native side loaded plugin code: {dc.plugin_traces(native.log)}'
    assert native.log and not native.engine


# ------------------------------------------------- the judge and the new faults
def _outcome(kind: str, *leftovers: str, exit: int | None = -1, sha: str | None = None, lines: list[str] | None = None,
             error: bool = False) -> dc.Outcome:
    if exit == -1:
        exit = None if kind == dc.HANG else (0 if kind.startswith('EXACT') else 1)
    return dc.Outcome(kind, exit, list(leftovers), True, sha=sha, lines=lines or [], error=error)


def _rerun(first: dc.Outcome, then: dc.Outcome) -> dc.Outcome:
    first.rerun = then
    return first


def _observed(outcome: dc.Outcome, seen: str) -> dc.Outcome:
    outcome.observed = seen
    return outcome


@pytest.mark.parametrize('native, plugin, verdict', [
    (_outcome(dc.EXACT), _outcome(dc.EXACT), dc.SAME),
    (_outcome(dc.EXACT), _outcome(dc.LEFTOVERS, 'out.bin.part-async.ctl'), dc.WORSE),
    (_outcome(dc.EXACT), _outcome(dc.CLEAN_ERROR), dc.WORSE),
    (_outcome(dc.CLEAN_ERROR), _outcome(dc.EXACT), dc.BETTER),
    (_outcome(dc.CLEAN_ERROR, 'out.bin.part'), _outcome(dc.CLEAN_ERROR, 'out.bin.part-async', 'out.bin.part-async.ctl'),
     dc.SAME),
    (_outcome(dc.CLEAN_ERROR), _outcome(dc.CLEAN_ERROR, 'out.bin.part-async'), dc.WORSE),
    (_outcome(dc.CLEAN_ERROR, 'out.bin.part'), _outcome(dc.CLEAN_ERROR, 'out.bin.part', 'stray.tmp'), dc.WORSE),
    (_outcome(dc.CLEAN_ERROR), _outcome(dc.ERROR_FILE, 'out.bin'), dc.WORSE),
    (_outcome(dc.ERROR_FILE, 'out.bin'), _outcome(dc.CLEAN_ERROR), dc.WORSE),      # native leaves the right file
    (_outcome(dc.CLEAN_ERROR), _outcome(dc.HANG), dc.WORSE),
    (_outcome(dc.HANG), _outcome(dc.CLEAN_ERROR), dc.BETTER),
    (_outcome(dc.WRONG), _outcome(dc.CLEAN_ERROR, 'out.bin.part'), dc.BETTER),
    (_outcome(dc.WRONG, exit=0, sha='a'), _outcome(dc.WRONG, exit=0, sha='a'), dc.BAD),  # yt-dlp loses data; we may not
    (_outcome(dc.EXACT), _outcome(dc.WRONG), dc.WORSE),
    (_outcome(dc.WRONG, sha='a'), _outcome(dc.WRONG, exit=0, sha='a'), dc.WORSE),   # native says so (exit 1), plugin 0
    (_outcome(dc.WRONG, sha='a'), _outcome(dc.WRONG, sha='a'), dc.SAME),   # the same wrong file, and both exit 1
    (_outcome(dc.WRONG, sha='a'), _outcome(dc.WRONG, sha='b'), dc.WORSE),  # two wrong files, not the same bytes
    (_outcome(dc.CLEAN_ERROR, exit=1), _outcome(dc.CLEAN_ERROR, exit=2), dc.WORSE),   # exit statuses are values
    (_outcome(dc.CLEAN_ERROR, error=True), _outcome(dc.CLEAN_ERROR), dc.WORSE),       # native's ERROR line is missing
    (_outcome(dc.EXACT, lines=['[download] Destination: out.bin']), _outcome(dc.EXACT, lines=[]), dc.WORSE),
    # the same leftovers by name, but what a healthy rerun makes of them differs: the plugin's resume state is bad
    (_rerun(_outcome(dc.CLEAN_ERROR, 'out.bin.part'), _outcome(dc.EXACT)),
     _rerun(_outcome(dc.CLEAN_ERROR, 'out.bin.part-async'), _outcome(dc.WRONG, exit=0, sha='b')), dc.WORSE),
    (_rerun(_outcome(dc.CLEAN_ERROR, 'out.bin.part'), _outcome(dc.EXACT)),
     _rerun(_outcome(dc.CLEAN_ERROR, 'out.bin.part-async'), _outcome(dc.EXACT)), dc.SAME),
    # both failed with the same wrong file (exit 1); a rerun calls it downloaded (exit 0) on both sides: yt-dlp's rule
    (_rerun(_outcome(dc.WRONG, sha='a'), _outcome(dc.WRONG, exit=0, sha='a')),
     _rerun(_outcome(dc.WRONG, sha='a'), _outcome(dc.WRONG, exit=0, sha='a')), dc.SAME),
    # the row's judge saw something else than native's: the header's bytes the server got, here
    (_observed(_outcome(dc.EXACT), 'X-Name: café'), _observed(_outcome(dc.EXACT), 'X-Name: cafÃ©'), dc.WORSE),
    (_observed(_outcome(dc.EXACT), 'X-Name: café'), _observed(_outcome(dc.EXACT), 'X-Name: café'), dc.SAME),
], ids=lambda v: v if isinstance(v, str) else v.kind)
def test_compare_rules(native: dc.Outcome, plugin: dc.Outcome, verdict: str) -> None:
    assert dc.compare(native, plugin)[0] == verdict


def test_past_end_is_worse() -> None:
    native, plugin = _outcome(dc.EXACT), _outcome(dc.EXACT)
    plugin.past_end = 1
    assert dc.compare(native, plugin) == (dc.WORSE, '1 requests ask for bytes past the end of the resource (native: 0)')


def test_classify(tmp_path: Path) -> None:
    good = [hashlib.sha256(b'right').hexdigest()]
    assert dc.classify(None, tmp_path, good).kind == dc.HANG
    assert dc.classify(1, tmp_path, good).kind == dc.CLEAN_ERROR
    assert dc.classify(0, tmp_path, good).kind == dc.WRONG          # exit 0 and no file
    (tmp_path / 'out.bin').write_bytes(b'right')
    assert dc.classify(0, tmp_path, good).kind == dc.EXACT
    assert dc.classify(1, tmp_path, good).kind == dc.ERROR_FILE
    (tmp_path / 'out.bin.part').write_bytes(b'x')
    found = dc.classify(0, tmp_path, good)
    assert (found.kind, found.leftovers) == (dc.LEFTOVERS, ['out.bin.part'])
    (tmp_path / 'out.bin').write_bytes(b'wrong')
    found = dc.classify(1, tmp_path, good)
    assert (found.kind, found.sha) == (dc.WRONG, hashlib.sha256(b'wrong').hexdigest())  # whatever the exit


def test_judges(tmp_path: Path) -> None:
    """What the judges of issue 16's rows see, without a run: each can tell a change."""
    ctx = dc.Context(FaultServer(), FaultServer(), tmp_path, {})
    work, scratch = tmp_path / 'work', tmp_path / 'scratch'
    work.mkdir()
    scratch.mkdir()
    fifo = dc.SpecialFile('fifo')
    fifo.prepare(ctx, work, scratch)
    assert fifo.observe(ctx, 'k', work, scratch) == 'out.bin is the fifo made before the run'
    assert dc.classify(1, work, ['x']).kind == dc.CLEAN_ERROR     # a FIFO is no file of the download
    (work / 'out.bin').unlink()
    assert fifo.observe(ctx, 'k', work, scratch) == 'out.bin is gone'
    (work / 'out.bin').write_bytes(b'')
    assert fifo.observe(ctx, 'k', work, scratch) == 'out.bin is another file'
    cookie = dc.SavedCookie('t', '1')
    cookie.prepare(ctx, work, scratch)
    assert cookie.observe(ctx, 'k', work, scratch) == "t saved as ['1']"
    assert (work / dc.SavedCookie.ARGS[1]).resolve() == (scratch / 'cookies.txt').resolve()


def test_classify_stdout(tmp_path: Path) -> None:
    good = [hashlib.sha256(b'right').hexdigest()]
    assert dc.classify(0, tmp_path, good, stdout=b'right', expected=b'right').kind == dc.EXACT
    assert dc.classify(1, tmp_path, good, stdout=b'rig', expected=b'right').kind == dc.CLEAN_ERROR  # a right prefix
    assert dc.classify(1, tmp_path, good, stdout=b'rxg', expected=b'right').kind == dc.WRONG
    assert dc.classify(0, tmp_path, good, stdout=b'', expected=b'right').kind == dc.WRONG


def test_engine_use() -> None:
    assert dc.engine_use('[debug] Invoking async downloader on "http://x"') == (True, None)
    assert dc.engine_use(f'{dc.FRAGMENT_LINE} (12 fragments)') == (True, None)
    log = ('[debug] Invoking async downloader on "http://x"\n'
           "[debug] [async] Using yt-dlp's http downloader: the server ignores ranges\n")
    assert dc.engine_use(log) == (False, 'http: the server ignores ranges')
    assert dc.engine_use('[debug] Invoking http downloader on "http://x"') == (False, None)


def test_output_lines() -> None:
    log = ('[debug] Command-line config: [...]\n[info] diff: Downloading 1 format(s): 0\n'
           '[download] Destination: out.bin\n[download]   0.0% of    3.01MiB at  Unknown B/s ETA Unknown\r'
           '[download]  8.3% of    3.01MiB at   27.60MiB/s ETA 00:00[download] Got error: [Errno 104] Connection '
           'reset by peer. Retrying (1/3)...\n[download] Destination: out.bin\n'
           '[download]  255.00KiB at  133.39MiB/s (00:00:00)[download] Got error: [Errno 104] Connection '
           'reset by peer. Retrying (2/3)...\n'
           '[download] 100% of    3.01MiB in 00:00:01 at 2.9MiB/s\n'
           '[download] Resuming download at byte 1047552\n[async] 1 file, 3.0 MiB in 1.0 s\n'
           'ERROR: unable to open /tmp/x/differential0/reset/plugin/work/out.bin\n'
           'Traceback (most recent call last):\n  File "/venv/yt_dlp/YoutubeDL.py", line 1, in dl\n'
           '    self.report_error(f\'\\r[download] Got error: {e}\'),\n'
           'urllib.error.HTTPError: HTTP Error 404: Not Found\n'
           'ERROR: \r[download] Got error: HTTP Error 503: Service Unavailable. Giving up after 3 retries\n')
    assert dc.output_lines(log, '/tmp/x/differential0') == [
        '[info] diff: Downloading 1 format(s): 0', '[download] Destination: out.bin',
        'ERROR: unable to open <root>/reset/<side>/work/out.bin',
        'ERROR: [download] Got error: <error>. Giving up after 3 retries',
        '[download] Got error: <error>. Retrying (1/3)...', '[download] Got error: <error>. Retrying (2/3)...']


def test_alone_loads_no_plugin(fault_server: FaultServer, tmp_path: Path) -> None:
    """yt-dlp alone: the same yt-dlp, no file of the plugin, and a download imports no module of it."""
    require_hook()
    python = dv.alone_venv()
    version = subprocess.run([str(python), '-m', 'yt_dlp', '--version'], capture_output=True, text=True,
                             check=True).stdout.strip()
    import yt_dlp.version
    assert version == yt_dlp.version.__version__
    site = Path(subprocess.run([str(python), '-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])'],
                               capture_output=True, text=True, check=True).stdout.strip())
    assert site != dv.SITE and not [name for name in dv.PLUGIN_TOP if (site / name).exists()]
    info = dc.info_json(tmp_path, fault_server.data_url(100_000, 'bin', key='alone'))
    # -X importtime names every module imported; the download must import none of the plugin's
    proc = subprocess.run([str(python), '-X', 'importtime', '-m', 'yt_dlp', *dc.COMMON, '-o', 'out.bin',
                           '--load-info-json', str(info)], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120, env=hermetic_env(tmp_path / 'home'))
    assert proc.returncode == 0, proc.stderr[-2000:]
    imported = [line.rsplit('|', 1)[-1].strip() for line in proc.stderr.splitlines() if line.startswith('import time:')]
    assert 'yt_dlp.downloader.http' in imported
    assert not [m for m in imported if m.startswith(('yt_dlp_async', 'yt_dlp_plugins'))]
    assert not dc.plugin_traces(proc.stdout + proc.stderr)
    assert (tmp_path / 'out.bin').read_bytes() == content(100_000)
    # and the same command on the plugin side does load it (the check can fail)
    proc = subprocess.run([sys.executable, '-X', 'importtime', '-m', 'yt_dlp', *dc.COMMON, '-o', 'out2.bin',
                           '--load-info-json', str(info)], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120, env=hermetic_env(tmp_path / 'home'))
    assert 'yt_dlp_async' in proc.stderr and dc.plugin_traces(proc.stdout + proc.stderr)


# ------------------------------------------------------------- planted bugs
MUTANT_ROWS: dict[str, tuple[str, ...]] = {
    # the two rows where both sides end in an error are here: the rerun must show the wrong bytes
    'wrong-byte': ('plain', 'short-always', 'stdout-plain', 'hls-plain'),
    'retry-fewer': ('hls-seg-503x3', 'fail-503x3'),
    'range-end-long': ('http-chunk-size', 'kill-split-middle'),   # (plain fetches the file in one GET here)
}
"""Rows each planted bug (differential_venvs.MUTANTS) is run on: at least one must turn WORSE."""


@pytest.mark.parametrize('name', list(dv.MUTANTS))
def test_planted_bug_applies(name: str) -> None:
    """Each planted bug's text is in today's source exactly once (make test notices a source change that
    would leave make differential's planted bug with nothing to replace)."""
    mutant = dv.MUTANTS[name]
    assert (dv.REPO / mutant.path).read_text().count(mutant.old) == 1, f'{name}: update MUTANTS[{name!r}]'
    assert name in MUTANT_ROWS and all(row in BY_ROW for row in MUTANT_ROWS[name])


@pytest.mark.skipif(os.environ.get('DIFFERENTIAL_MUTANTS') != '1',
                    reason='the planted bugs run in make differential (DIFFERENTIAL_MUTANTS=1)')
@pytest.mark.parametrize('name', list(dv.MUTANTS))
def test_planted_bug_flips_a_row(name: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    require_hook()
    assert set(MUTANT_ROWS) == set(dv.MUTANTS)
    if not request.config.pluginmanager.has_plugin('differential-mutants'):
        request.config.pluginmanager.register(_MutantTable(), 'differential-mutants')
    python = dv.mutant_venv(name)
    cases = [case for case in CASES if any(row in MUTANT_ROWS[name] for row in case.rows)]
    with FaultServer('127.0.0.1') as server, FaultServer('127.0.0.2') as server2:
        ctx = dc.Context(server, server2, tmp_path, {dc.NATIVE: str(dv.alone_venv()), dc.PLUGIN: str(python)})
        results = dc.run_matrix(cases, ctx, WORKERS)
    verdicts = {}
    for row in MUTANT_ROWS[name]:
        native, plugin = results[(row, dc.NATIVE)], results[(row, dc.PLUGIN)]
        if isinstance(native, BaseException) or isinstance(plugin, BaseException):
            verdicts[row] = ('error', repr(native if isinstance(native, BaseException) else plugin))
        else:
            verdicts[row] = dc.compare(native, plugin)
    # the output lines of some rows differ today (XFAIL): a flip counts when the bytes, the requests or the rerun do
    flipped = {row: why for row, (verdict, why) in verdicts.items()
               if verdict in (dc.WORSE, dc.BAD) and 'the output differs' not in why}
    MUTANT_REPORT[name] = verdicts
    assert flipped, f'{dv.MUTANTS[name].what}: no row turned WORSE: {verdicts}'


MUTANT_REPORT: dict[str, dict[str, tuple[str, str]]] = {}


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or '127.0.0.1', parts.port, timeout=10)
    try:
        conn.putrequest('GET', parts.path + '?' + parts.query, skip_accept_encoding=True)
        for name, value in (headers or {}).items():
            conn.putheader(name, value)
        conn.endheaders()
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def test_server_gzip(fault_server: FaultServer) -> None:
    status, headers, body = _get(fault_server.data_url(100_000, gzip='always'),
                                 {'Accept-Encoding': 'identity', 'Range': 'bytes=10-'})
    assert (status, headers['content-encoding']) == (200, 'gzip')   # Range ignored, identity ignored
    assert int(headers['content-length']) == len(body) and 'accept-ranges' not in headers
    assert gzip.decompress(body) == content(100_000)
    _, headers, body = _get(fault_server.data_url(1000, gzip='auto'), {'Accept-Encoding': 'identity'})
    assert 'content-encoding' not in headers and body == content(1000)
    _, headers, body = _get(fault_server.data_url(1000, gzip='auto'))  # no Accept-Encoding: anything goes
    assert headers['content-encoding'] == 'gzip' and gzip.decompress(body) == content(1000)


def test_server_range_shift(fault_server: FaultServer) -> None:
    status, headers, body = _get(fault_server.data_url(100_000, range_shift=1000), {'Range': 'bytes=5000-9999'})
    assert (status, headers['content-range']) == (206, 'bytes 6000-9999/100000')
    assert body == content(100_000)[6000:10000]


def test_server_redirect_loop(fault_server: FaultServer) -> None:
    status, headers, _ = _get(fault_server.url('/redirect?loop=1&key=a'))
    assert (status, headers['location']) == (302, '/redirect?loop=1&key=a')
