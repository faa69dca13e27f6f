"""File names near the filesystem's NAME_MAX (issue 9, item 4).

yt-dlp alone writes ``NAME.part`` and renames it; a split download would
write ``NAME.part-async`` and ``NAME.part-async.ctl`` (saved through
``NAME.part-async.ctl.tmp``), up to 14 bytes longer.
When those names do not fit, the file is fetched in order under yt-dlp's own
names, so every length gives yt-dlp's outcome: the same files, the same exit.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from faultserver import sha256_of
from ytdlp_support import output, require_engine, require_hook, run_ytdlp, sha256_file

SIZE = 200_000
#: 240-255 (yt-dlp's .part stops fitting at 251) and 236-237, where NAME.part-async.ctl.tmp stops fitting
LENGTHS = range(234, 256)
#: the title's characters: ASCII (1 byte) and multi-byte UTF-8 (2 and 3 bytes)
FILLERS = {'ascii': 'a', 'utf8-2': 'é', 'utf8-3': '日'}


@pytest.fixture(autouse=True)
def _installed() -> None:
    require_hook()
    require_engine()


def title_of(total_bytes: int, filler: str) -> str:
    """A title whose file name ``TITLE.mp4`` is exactly ``total_bytes`` bytes."""
    want = total_bytes - len('.mp4')
    count = want // len(filler.encode())
    return filler * count + 'a' * (want - count * len(filler.encode()))


def playlist(path: Path, url: str, filler: str) -> Path:
    entries = [{
        'id': f'e{n}', 'title': title_of(n, filler), 'url': url, 'ext': 'mp4', 'format_id': '0',
        'protocol': 'http', 'extractor': 'generic', 'extractor_key': 'Generic', 'webpage_url': url,
    } for n in LENGTHS]
    path.write_text(json.dumps({
        '_type': 'playlist', 'id': 'pl', 'title': 'pl', 'extractor': 'generic', 'extractor_key': 'Generic',
        'webpage_url': url, 'entries': entries}))
    return path


def outcome(folder: Path) -> dict[str, str]:
    return {name: sha256_file(folder / name) for name in sorted(os.listdir(folder))
            if name not in ('.home', 'pl.json')}


@pytest.mark.parametrize('filler', list(FILLERS.values()), ids=list(FILLERS))
def test_each_length_has_ytdlp_alones_outcome(tmp_path: Path, fault_server, filler: str) -> None:
    if os.pathconf(tmp_path, 'PC_NAME_MAX') != 255:
        pytest.skip('the lengths are chosen for NAME_MAX 255')
    url = fault_server.data_url(SIZE, 'mp4')
    results = {}
    for mode, extra in (('ours', ['--async-connections', '4']), ('native', ['--no-async-downloads'])):
        folder = tmp_path / mode
        folder.mkdir()
        info = playlist(folder / 'pl.json', url, filler)
        proc = run_ytdlp(['-v', '-i', '--no-clean-info-json', '--concurrent-downloads', '1', *extra, '--load-info-json', str(info),
                          '-o', '%(title)s.%(ext)s'], folder, timeout=300)
        results[mode] = (proc.returncode, outcome(folder),
                         proc.stderr.count('ERROR: unable to open for writing: [Errno 36] File name too long'))
        if mode == 'ours':
            ours_proc = proc
    assert results['ours'] == results['native'], output(ours_proc)
    rc, files, errors = results['ours']
    fitting = [n for n in LENGTHS if n + len('.part') <= 255]
    assert rc == (1 if errors else 0) and errors == len(LENGTHS) - len(fitting), (results, output(ours_proc))
    assert sorted(len(name.encode()) for name in files) == fitting
    assert set(files.values()) == {sha256_of(SIZE)}
    # a name whose control file would not fit says why it was not split, in one line
    too_long = sum(1 for n in LENGTHS if n + len('.part-async.ctl.tmp') > 255)
    assert ours_proc.stderr.count("would be longer than the filesystem allows (255 bytes); written to") == too_long
    assert ours_proc.stderr.count("1 connection, not split: its control file '") == too_long
