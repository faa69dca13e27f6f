"""Issue 9, "never worse than yt-dlp alone": the differential matrix, one test per row.

Every row (tests/differential_cases.py) runs the same ``yt-dlp`` command twice
in this test run, with ``--no-async-downloads`` (native) and without (the
plugin), each in its own empty folder.  A row fails when the plugin's outcome
is worse than native's.  The rows are run together on a thread pool (a
module fixture runs exactly the rows pytest selected); each test then judges
its own row.  The whole table is printed at the end of the session and
written to build/differential.md.
"""

from __future__ import annotations

import concurrent.futures
import gzip
import hashlib
import http.client
import os
import urllib.parse
import time
from pathlib import Path
from typing import Any, Iterator, NamedTuple

import pytest

import differential_cases as dc
from faultserver import FaultServer, content
from ytdlp_support import require_engine, require_hook

class Xfail(NamedTuple):
    reason: str
    strict: bool = True


# Rows where the plugin is worse than yt-dlp alone today (measured on this branch).
# The integrator removes an entry once the fix for it is merged; strict=True
# makes a row that starts passing fail until its entry is removed.  strict=False
# only for rows whose failure depends on where a SIGKILL lands (a race).
XFAIL: dict[str, Xfail] = {
}

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
            engine = '' if plugin.engine else ' (no engine)'
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
    results: dict[tuple[str, str], dc.Outcome | BaseException] = {}
    table = _Table()
    request.config.pluginmanager.register(table, 'differential-table')
    with FaultServer('127.0.0.1') as server, FaultServer('127.0.0.2') as server2:
        ctx = dc.Context(server, server2, root)
        with concurrent.futures.ThreadPoolExecutor(WORKERS) as pool:
            # the slow rows (kills, disks) first, so they overlap the many quick ones
            jobs = {pool.submit(_timed, case, ctx, side): (case, side)
                    for case in sorted(cases, key=lambda c: isinstance(c, dc.FaultCase)) for side in dc.SIDES}
            for future in concurrent.futures.as_completed(jobs):
                case, side = jobs[future]
                try:
                    outcomes: list[dc.Outcome] | BaseException = future.result()
                except Exception as exc:  # a broken row is reported by its test, not by all of them
                    outcomes = exc
                for i, row in enumerate(case.rows):
                    results[(row, side)] = outcomes if isinstance(outcomes, BaseException) else outcomes[i]
    yield results, table


_SKIP_DISK = pytest.StashKey[str]()
DURATIONS: dict[tuple[str, str], float] = {}


def _timed(case: dc.Case, ctx: dc.Context, side: str) -> list[dc.Outcome]:
    """``case.execute``, noting how long it took (printed with the table, to keep the matrix short)."""
    start = time.monotonic()
    try:
        return case.execute(ctx, side)
    finally:
        DURATIONS[(case.name, side)] = time.monotonic() - start


@pytest.mark.parametrize('row', [_param(row) for row in BY_ROW])
def test_plugin_never_worse(row: str, matrix: Any, request: pytest.FixtureRequest) -> None:
    results, table = matrix
    if (row, dc.NATIVE) not in results:
        pytest.skip(request.config.stash.get(_SKIP_DISK, 'row not run'))
    native, plugin = results[(row, dc.NATIVE)], results[(row, dc.PLUGIN)]
    for side, outcome in ((dc.NATIVE, native), (dc.PLUGIN, plugin)):
        if isinstance(outcome, BaseException):
            raise AssertionError(f'{row}: the {side} run could not be made') from outcome
    assert isinstance(native, dc.Outcome) and isinstance(plugin, dc.Outcome)
    verdict, reason = dc.compare(native, plugin)
    table.rows[row] = (native, plugin, verdict, reason)
    assert verdict not in (dc.WORSE, dc.BAD), (
        f'{row} ({DESCRIPTIONS[row]}): plugin is {verdict} than native: {reason}\n'
        f'native: {native.cell()}\nplugin: {plugin.cell()}\n--- plugin log (tail)\n{plugin.log[-3000:]}')


# ------------------------------------------------- the judge and the new faults
def _outcome(kind: str, *leftovers: str) -> dc.Outcome:
    return dc.Outcome(kind, None if kind == dc.HANG else (0 if kind.startswith('EXACT') else 1), list(leftovers), True)


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
    (_outcome(dc.CLEAN_ERROR), _outcome(dc.HANG), dc.WORSE),
    (_outcome(dc.HANG), _outcome(dc.CLEAN_ERROR), dc.BETTER),
    (_outcome(dc.WRONG), _outcome(dc.CLEAN_ERROR, 'out.bin.part'), dc.BETTER),
    (dc.Outcome(dc.WRONG, 0, [], True), dc.Outcome(dc.WRONG, 0, [], True), dc.BAD),  # yt-dlp loses data; we may not
    (_outcome(dc.EXACT), _outcome(dc.WRONG), dc.WORSE),
    (_outcome(dc.WRONG), dc.Outcome(dc.WRONG, 0, [], True), dc.WORSE),   # native says so (exit 1), plugin exit 0
    (_outcome(dc.WRONG), _outcome(dc.WRONG), dc.SAME),   # the same wrong file, and both exit 1
], ids=lambda v: v if isinstance(v, str) else v.kind)
def test_compare_rules(native: dc.Outcome, plugin: dc.Outcome, verdict: str) -> None:
    assert dc.compare(native, plugin)[0] == verdict


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
    assert dc.classify(1, tmp_path, good).kind == dc.WRONG          # a wrong final file, whatever the exit


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
