"""README.md runs as pasted (issue 11).

Every ```python block is run in a subprocess of the installed package, in an
empty folder, with the README's placeholder host (``https://example.org/``)
mapped to the fault server, which serves each named file (``/file/NAME``).
A block must exit 0 and leave exactly the files listed for it in ``PROMISES``
(checked by SHA-256); a new block without an entry fails here until it gets
one.  The option table is checked against ``yt-dlp --help``.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from ytdlp_support import output, require_engine, require_hook, run_python, run_ytdlp

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / 'README.md'
PLACEHOLDER = 'https://example.org/'

#: the files the README's URLs name, with the bytes the fault server serves for each
SERVED = {name: hashlib.sha256(name.encode()).digest() * (4096 + 997 * i)
          for i, name in enumerate(('video.mp4', 'a.mp4', 'b.mp4'))}

#: a line that identifies the block -> {file it leaves: the served name whose bytes it holds}
PROMISES: dict[str, dict[str, str]] = {
    'with AsyncDownloadEngine(max_connections=32': {'video.mp4': 'video.mp4'},
    'async def main(urls)': {'part-0.bin': 'a.mp4', 'part-1.bin': 'b.mp4'},
    'yt_dlp_async.download([': {'downloads/a.mp4': 'a.mp4', 'downloads/b.mp4': 'b.mp4'},
    'stats = engine.stats()': {'a.mp4': 'a.mp4', 'b.mp4': 'b.mp4'},
}


def python_blocks() -> list[str]:
    return re.findall(r'^```python\n(.*?)^```', README.read_text(), re.S | re.M)


def promise_of(block: str) -> dict[str, str]:
    keys = [key for key in PROMISES if key in block]
    assert len(keys) == 1, f'README block without exactly one PROMISES entry:\n{block}'
    return PROMISES[keys[0]]


def files_in(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob('*')
            if p.is_file() and not p.relative_to(folder).as_posix().startswith('.home/')}


def test_every_block_has_its_promise() -> None:
    blocks = python_blocks()
    assert len(blocks) >= 3
    assert sorted(key for block in blocks for key in PROMISES if key in block) == sorted(PROMISES)
    for block in blocks:
        assert PLACEHOLDER in block, block  # every URL is the placeholder host: nothing reaches the internet


@pytest.mark.parametrize('index', range(len(python_blocks())))
def test_block_runs_as_pasted(index: int, tmp_path: Path, fault_server) -> None:
    require_engine()
    block = python_blocks()[index]
    for name, data in SERVED.items():
        fault_server.add_file(name, data, content_type='video/mp4')
    code = block.replace(PLACEHOLDER, fault_server.url('/file/'))
    proc = run_python(code, tmp_path, timeout=60)
    assert proc.returncode == 0, output(proc)
    if 'stats = engine.stats()' in block:  # it prints files, bytes, seconds, retries, connections, failures
        files, size, _seconds, retries, connections, failures = proc.stdout.split()
        assert (files, size, retries, failures) == ('2', str(len(SERVED['a.mp4']) + len(SERVED['b.mp4'])), '0', '0')
        assert int(connections) >= 1
    promise = promise_of(block)
    assert files_in(tmp_path) == set(promise), output(proc)
    for path, name in promise.items():
        digest = hashlib.sha256((tmp_path / path).read_bytes()).hexdigest()
        assert digest == hashlib.sha256(SERVED[name]).hexdigest(), path


# ------------------------------------------------------------------ the option table
def readme_options() -> dict[str, tuple[str, str]]:
    """``--option`` -> (default, meaning) from the README's table under "With yt-dlp"."""
    rows = {}
    for line in README.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip('|').split('|')]
        if len(cells) != 3 or not cells[0].startswith('`--'):
            continue
        for option in re.findall(r'`(--[a-z-]+)', cells[0]):
            rows[option] = (cells[1], cells[2])
    return rows


def help_sections(text: str) -> dict[str, str]:
    """``--option`` -> its help text (joined lines) in ``yt-dlp --help``."""
    sections: dict[str, str] = {}
    current = None
    for line in text.splitlines():
        m = re.match(r'\s{2,6}(--[a-z-]+)', line)
        if m:
            current = m.group(1)
            sections[current] = line
        elif current and line.startswith(' ' * 20):
            sections[current] += ' ' + line.strip()
        else:
            current = None
    return {k: re.sub(r'\s+', ' ', v) for k, v in sections.items()}


@pytest.fixture(scope='module')
def help_text(tmp_path_factory: pytest.TempPathFactory) -> str:
    require_hook()
    proc = run_ytdlp(['--help'], tmp_path_factory.mktemp('help'))
    assert proc.returncode == 0, output(proc)
    return proc.stdout


def our_group(help_text: str) -> str:
    """The "Async Downloads" group of the help: its title to the next group's title."""
    group = help_text[help_text.index('\n  Async Downloads:') + 1:]
    end = re.search(r'\n\n  \S', group)
    return group[:end.start()] if end else group


def test_help_group_says_what_the_readme_says(help_text: str) -> None:
    description = re.sub(r'\s+', ' ', our_group(help_text).split('\n\n')[0])
    assert 'http/https, HLS and DASH' in description, description
    # the README: "use the engine for http/https, HLS and DASH"
    assert 'http/https, HLS and DASH' in readme_options()['--async-downloads'][1]
    assert 'http/https, HLS and DASH' in help_sections(help_text)['--async-downloads']


def test_option_table_matches_help(help_text: str) -> None:
    table = readme_options()
    sections = help_sections(help_text)
    ours = set(re.findall(r'^ {4}(--[a-z-]+)', our_group(help_text), re.M))
    assert ours == set(table), (sorted(ours), sorted(table))
    for option, (default, _meaning) in table.items():
        if option.startswith('--no-'):
            continue
        shown = sections[option]
        value = re.sub(r'[`()]', '', default).split(' or ')[0].strip()
        if value == 'on':
            assert '(default)' in shown, (option, shown)
        else:
            assert re.search(rf'default(?: is|:) {re.escape(value)}\b', shown), (option, default, shown)
