"""Helpers for the yt-dlp integration tests (tests/test_ytdlp_*.py).

yt-dlp runs the way a user runs it: ``python -m yt_dlp`` in a subprocess of
this interpreter, whose site-packages must hold yt-dlp and yt-dlp-async
(``pip install .``), so that ``yt_dlp_async.pth`` is processed at start-up.
The environment is made hermetic: HOME, XDG config/cache dirs point into the
test's tmp_path, so no user config file or cache takes part.

When the hook is not installed in this interpreter the tests are skipped,
unless YTDLP_ASYNC_REQUIRE_INSTALLED=1 (CI) makes that a failure.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import subprocess
import sys
import urllib.parse
from pathlib import Path
from typing import Any, Iterable, Mapping

import pytest

PYTHON = sys.executable
ENGINE_LINE = 'Invoking async downloader on'
NATIVE_LINE = 'Invoking http downloader on'


@functools.lru_cache(maxsize=None)
def hook_installed() -> bool:
    """True when a fresh interpreter starts with the .pth hook's finder in place."""
    code = ('import sys; print(any(type(f).__name__ == "YtdlpPatchFinder" for f in sys.meta_path), '
            '"yt_dlp" in sys.modules)')
    env = {k: v for k, v in os.environ.items() if k != 'YTDLP_ASYNC_DISABLE'}
    out = subprocess.run([PYTHON, '-c', code], capture_output=True, text=True, env=env, timeout=60)
    return out.stdout.split() == ['True', 'False']


def require_hook() -> None:
    if hook_installed():
        return
    message = (f'yt-dlp-async (its .pth hook) is not installed in {PYTHON}; '
               'run the tests from a venv with `pip install .`')
    if os.environ.get('YTDLP_ASYNC_REQUIRE_INSTALLED') == '1':
        pytest.fail(message)
    pytest.skip(message)


@functools.lru_cache(maxsize=None)
def engine_error() -> str | None:
    try:
        import yt_dlp_async
        yt_dlp_async.curl_version()
    except Exception as exc:
        return f'{type(exc).__name__}: {exc}'
    return None


def require_engine() -> None:
    error = engine_error()
    if error is None:
        return
    if os.environ.get('YTDLP_ASYNC_REQUIRE_INSTALLED') == '1':
        pytest.fail(f'the engine does not import: {error}')
    pytest.skip(f'the engine does not import: {error}')


def hermetic_env(home: Path, extra: Mapping[str, str] | None = None, disable_hook: bool = False) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(('YTDLP_', 'XDG_')) and k.lower() not in ('http_proxy', 'https_proxy', 'all_proxy')}
    home.mkdir(parents=True, exist_ok=True)
    env.update({
        'HOME': str(home),
        'XDG_CONFIG_HOME': str(home / 'config'),
        'XDG_CACHE_HOME': str(home / 'cache'),
        'PYTHONDONTWRITEBYTECODE': '1',
        'NO_COLOR': '1',
    })
    if disable_hook:
        env['YTDLP_ASYNC_DISABLE'] = '1'
    env.update(extra or {})
    return env


def run_ytdlp(args: Iterable[str], cwd: Path, *, timeout: float = 120, env: Mapping[str, str] | None = None,
              disable_hook: bool = False) -> subprocess.CompletedProcess[str]:
    """``python -m yt_dlp ARGS`` in ``cwd``; returns the completed process (text)."""
    return subprocess.run(
        [PYTHON, '-m', 'yt_dlp', '--no-cache-dir', *args], cwd=cwd, capture_output=True, text=True,
        timeout=timeout, env=hermetic_env(cwd / '.home', env, disable_hook))


def run_python(code: str, cwd: Path, *, timeout: float = 120, env: Mapping[str, str] | None = None,
               disable_hook: bool = False) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYTHON, '-c', code], cwd=cwd, capture_output=True, text=True, timeout=timeout,
        env=hermetic_env(cwd / '.home', env, disable_hook))


def sha256_file(path: Path | str) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def write_info_json(path: Path, url: str, **fields: Any) -> Path:
    """An info dict for ``--load-info-json``: one direct http format."""
    info = {
        'id': fields.pop('id', 'testvideo'),
        'title': fields.pop('title', 'test video'),
        'extractor': 'generic',
        'extractor_key': 'Generic',
        'webpage_url': url,
        'url': url,
        'ext': fields.pop('ext', 'mp4'),
        'format_id': '0',
        'protocol': fields.pop('protocol', 'http'),
        **fields,
    }
    path.write_text(json.dumps(info))
    return path


def write_playlist_json(path: Path, urls: list[str]) -> Path:
    entries = [{
        'id': f'entry{i}', 'title': f'entry {i}', 'url': url, 'ext': 'mp4', 'format_id': '0',
        'protocol': 'http', 'extractor': 'generic', 'extractor_key': 'Generic', 'webpage_url': url,
    } for i, url in enumerate(urls)]
    path.write_text(json.dumps({
        '_type': 'playlist', 'id': 'pl', 'title': 'playlist', 'extractor': 'generic',
        'extractor_key': 'Generic', 'webpage_url': 'http://127.0.0.1/pl', 'entries': entries,
    }))
    return path


def output(proc: subprocess.CompletedProcess[str]) -> str:
    return f'exit {proc.returncode}\n--- stdout\n{proc.stdout[-4000:]}\n--- stderr\n{proc.stderr[-6000:]}'


def get_requests(server: Any, path: str) -> list[Any]:
    server.wait_idle(5.0)
    return [e for e in server.requests(path) if e.method == 'GET']


def video_path(i: int, size: int, **params: Any) -> str:
    """A /data resource of the fault server with a distinct size and seed, so that every file is recognisable."""
    query = urllib.parse.urlencode({'seed': i, **params})
    return f'/data/{size}.mp4?{query}'


def page_url(server: Any, videos: Iterable[str], title: str = 'PL') -> str:
    """The fault server's HTML page whose <video> tags yt-dlp's generic extractor turns into a playlist."""
    return server.url('/page?' + urllib.parse.urlencode({'title': title, 'videos': ','.join(videos)}))
