"""The interpreters of the differential matrix: yt-dlp alone, and the plugin with a planted bug.

*yt-dlp alone* is a venv of its own under ``build/`` that holds yt-dlp and
the packages it can use (its requirements, every extra, and theirs) copied
file by file from this interpreter's site-packages: the same yt-dlp, the same
optional packages, and no file of yt-dlp-async (no ``yt_dlp_async.pth``, no
``yt_dlp_plugins/``).  Copying takes a second and needs no network; a stamp
of the versions copied makes a second session reuse it.

A *mutant* is the plugin built from a copy of this source tree with one
planted bug (``MUTANTS``: a file, a piece of its text and what replaces it),
installed the same way beside the same yt-dlp.  ``pip wheel`` builds it
(about 10 s of compiling each, more on a loaded machine); the built venv is
kept under ``build/mutants/`` and reused while the source is unchanged.
"""

from __future__ import annotations

import hashlib
import importlib.metadata as metadata
import json
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path
from typing import Iterable, NamedTuple

REPO = Path(__file__).resolve().parent.parent
BUILD = REPO / 'build'
SITE = Path(sysconfig.get_paths()['purelib'])
ALONE = BUILD / 'venv-alone'
PLUGIN_TOP = ('yt_dlp_async', 'yt_dlp_async.pth', 'yt_dlp_async_hook.py', 'yt_dlp_plugins')
"""What yt-dlp-async puts into site-packages (its dist-info aside)."""


def _name(requirement: str) -> str:
    return re.split(r'[\s;<>=!~\[(]', requirement, maxsplit=1)[0].strip().lower().replace('_', '-')


def _installed(name: str) -> metadata.Distribution | None:
    try:
        dist = metadata.distribution(name)
    except metadata.PackageNotFoundError:
        return None
    site = SITE.resolve()
    # only what this interpreter's site-packages holds (not the egg-info of a source tree on sys.path)
    if not any(Path(str(dist.locate_file(f))).resolve().is_relative_to(site) for f in dist.files or []):
        return None
    return dist


def ytdlp_closure() -> list[metadata.Distribution]:
    """yt-dlp and every installed package it names (any extra), and theirs: what yt-dlp may import."""
    seen: dict[str, metadata.Distribution] = {}
    todo = ['yt-dlp']
    while todo:
        name = todo.pop()
        if name in seen or name == 'yt-dlp-async':
            continue
        dist = _installed(name)
        if dist is None:
            if name == 'yt-dlp':
                raise RuntimeError(f'yt-dlp is not installed in {SITE}')
            continue
        seen[name] = dist
        todo.extend(_name(r) for r in dist.requires or [])
    return sorted(seen.values(), key=lambda d: d.metadata['Name'].lower())


def _copy_dist(dist: metadata.Distribution, site: Path) -> None:
    for file in dist.files or []:
        src = Path(str(dist.locate_file(file))).resolve()
        if not src.is_relative_to(SITE.resolve()) or '__pycache__' in src.parts or not src.is_file():
            continue   # console scripts (../../bin), byte code
        dest = site / src.relative_to(SITE.resolve())
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dest)


def _new_venv(dest: Path) -> Path:
    """An empty venv (no pip) of this interpreter's CPython; returns its site-packages."""
    shutil.rmtree(dest, ignore_errors=True)
    subprocess.run([sys.executable, '-m', 'venv', '--without-pip', str(dest)], check=True,
                   capture_output=True)
    site = dest / SITE.relative_to(Path(sys.prefix))
    site.mkdir(parents=True, exist_ok=True)
    return site


def _stamp(dists: Iterable[metadata.Distribution], *extra: str) -> str:
    return json.dumps([sys.version] + [f"{d.metadata['Name']}=={d.version}" for d in dists] + list(extra))


def python_of(venv: Path) -> Path:
    return venv / 'bin' / 'python'


def alone_venv() -> Path:
    """build/venv-alone: this interpreter's yt-dlp (and what it may import) without yt-dlp-async."""
    dists = ytdlp_closure()
    stamp = _stamp(dists)
    stamp_file = ALONE / '.differential-stamp'
    if stamp_file.is_file() and stamp_file.read_text() == stamp and python_of(ALONE).exists():
        return python_of(ALONE)
    site = _new_venv(ALONE)
    for dist in dists:
        _copy_dist(dist, site)
    leaked = [name for name in PLUGIN_TOP if (site / name).exists()]
    if leaked:
        raise RuntimeError(f'yt-dlp alone would hold {leaked}')
    stamp_file.write_text(stamp)
    return python_of(ALONE)


# ------------------------------------------------------------- planted bugs
class Mutant(NamedTuple):
    """A bug planted in a copy of the source: ``old`` (must occur exactly once in ``path``) becomes ``new``."""

    path: str
    old: str
    new: str
    what: str


MUTANTS: dict[str, Mutant] = {
    'wrong-byte': Mutant(
        'csrc/transfer.c', '    w0 = w;\n    while (take > 0) {',
        '    w0 = w;\n    if (take > 0)\n        ptr[0] ^= 0x20;\n    while (take > 0) {',
        'the first byte of every write to the file is flipped'),
    'retry-fewer': Mutant(  # fragments' --retries are counted in Python (the engine makes none by default)
        'yt_dlp_async/ytdlp/fragment_pipeline.py', '            if slot.http_retries <= self.http_retries:\n',
        '            if slot.http_retries < self.http_retries:\n',
        'a fragment gives up one retry early'),
    'range-end-long': Mutant(
        'csrc/transfer.c', 'start,\n                     t->o.range_end - 1);',
        'start,\n                     t->o.range_end);',
        "a ranged request asks for one byte past its range's end"),
}


def _source_files() -> list[str]:
    out = subprocess.run(['git', 'ls-files'], cwd=REPO, check=True, capture_output=True, text=True).stdout
    return [line for line in out.splitlines()
            if line.startswith(('csrc/', 'yt_dlp_async/', 'yt_dlp_plugins/'))
            or line in ('setup.py', 'pyproject.toml', 'MANIFEST.in', 'README.md', 'yt_dlp_async.pth',
                        'yt_dlp_async_hook.py')]


def mutant_venv(name: str) -> Path:
    """build/mutants/NAME: the plugin with MUTANTS[name] planted, beside yt-dlp alone's packages."""
    mutant = MUTANTS[name]
    files = _source_files()
    digest = hashlib.sha256(repr(mutant).encode())
    for rel in files:
        if (REPO / rel).is_file():
            digest.update(rel.encode() + b'\0' + (REPO / rel).read_bytes())
    dists = ytdlp_closure()
    stamp = _stamp(dists, digest.hexdigest())
    base = BUILD / 'mutants' / name
    venv = base / 'venv'
    stamp_file = venv / '.differential-stamp'
    if stamp_file.is_file() and stamp_file.read_text() == stamp and python_of(venv).exists():
        return python_of(venv)
    src, wheels = base / 'src', base / 'wheel'
    shutil.rmtree(src, ignore_errors=True)
    shutil.rmtree(wheels, ignore_errors=True)
    for rel in files:
        if (REPO / rel).is_file():
            (src / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, src / rel)
    target = src / mutant.path
    text = target.read_text()
    if text.count(mutant.old) != 1:
        raise RuntimeError(f'mutant {name}: the text to replace occurs {text.count(mutant.old)} times in '
                           f'{mutant.path} (the source changed: update MUTANTS)')
    target.write_text(text.replace(mutant.old, mutant.new))
    subprocess.run([sys.executable, '-m', 'pip', 'wheel', '-q', '--no-deps', '-w', str(wheels), str(src)],
                   check=True, capture_output=True, text=True)
    site = _new_venv(venv)
    for dist in dists:
        _copy_dist(dist, site)
    (wheel,) = wheels.glob('*.whl')
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    stamp_file.write_text(stamp)
    return python_of(venv)
