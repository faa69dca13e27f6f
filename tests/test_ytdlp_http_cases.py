"""yt-dlp's own downloader tests, rewritten against AsyncFileDownloader.

* test/test_downloader_http.py: 10 KiB served as /regular, /no-content-length,
  /no-range, /no-range-no-content-length (its server answers ranged requests
  with 200 plus Content-Range), downloaded with params {} and
  {'http_chunk_size': 1000}; the file must be 10240 bytes.
* test/test_downloader_external.py, TestDownderCookieBehavior: a version-1
  cookie with expires=0 for server A reaches A's /headers; after a redirect
  from A to server B (another loopback address) B receives no Cookie.
"""

from __future__ import annotations

import http.cookiejar
import json
import os
from pathlib import Path
from typing import Any

import pytest

from ytdlp_support import get_requests, require_engine, require_hook

TEST_SIZE = 10 * 1024
ENDPOINTS = {
    'regular': {'range200': 1},
    'no-content-length': {'range200': 1, 'no_length': 1},
    'no-range': {'norange': 1},
    'no-range-no-content-length': {'norange': 1, 'no_length': 1},
}


class DebugLog:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def debug(self, msg: str) -> None:
        self.lines.append(msg)

    warning = error = info = debug


@pytest.fixture(autouse=True)
def _installed() -> None:
    require_hook()
    require_engine()


def make_fd(params: dict[str, Any]) -> tuple[Any, DebugLog]:
    import yt_dlp_async.ytdlp
    yt_dlp_async.ytdlp.install(import_ytdlp=True)
    from yt_dlp import YoutubeDL
    from yt_dlp_async.ytdlp.downloader import AsyncFileDownloader
    log = DebugLog()
    ydl = YoutubeDL({'logger': log, 'verbose': True, **params})
    return AsyncFileDownloader(ydl, {**ydl.params, **params}), log


@pytest.mark.parametrize('endpoint', list(ENDPOINTS))
@pytest.mark.parametrize('params', [{}, {'http_chunk_size': 1000}], ids=['regular', 'chunked'])
def test_downloader_http(tmp_path: Path, fault_server, endpoint: str, params: dict[str, Any]) -> None:
    fault_server.add_file('testfile', b'#' * TEST_SIZE, 'video/mp4')
    query = '&'.join(f'{k}={v}' for k, v in ENDPOINTS[endpoint].items())
    url = fault_server.url(f'/file/testfile?{query}')
    fd, log = make_fd(params)
    filename = tmp_path / 'testfile.mp4'
    assert fd.real_download(str(filename), {'url': url})
    assert os.path.getsize(filename) == TEST_SIZE
    assert filename.read_bytes() == b'#' * TEST_SIZE
    assert not [line for line in log.lines if "Using yt-dlp's" in line], log.lines  # no fallback
    requests = get_requests(fault_server, '/file/testfile')
    if params:
        # a chunked download asks for bounded ranges of 95-100 % of 1000 bytes ...
        first, last = map(int, requests[0].range.split('=')[1].split('-'))
        assert first == 0 and 949 <= last <= 999
        if 'norange' in ENDPOINTS[endpoint]:
            # ... and a 200 without Content-Range makes it fetch the whole file once, like HttpFD
            assert len(requests) == 2 and requests[-1].range is None and requests[-1].status == 200
        else:
            # ... and a 200 with a matching Content-Range counts as the range (HttpFD accepts it too)
            assert len(requests) >= 11 and all(r.range for r in requests)
    else:
        assert [r.range for r in requests] == [None]


def test_chunked_download_with_real_ranges(tmp_path: Path, fault_server) -> None:
    """The server of yt-dlp's test never answers 206; with one that does, chunks are 206s."""
    fault_server.add_file('ranged', b'#' * TEST_SIZE, 'video/mp4')
    fd, _ = make_fd({'http_chunk_size': 1000})
    assert fd.real_download(str(tmp_path / 'r.mp4'), {'url': fault_server.url('/file/ranged')})
    assert (tmp_path / 'r.mp4').read_bytes() == b'#' * TEST_SIZE
    requests = get_requests(fault_server, '/file/ranged')
    assert len(requests) >= 11 and {r.status for r in requests} == {206}


def test_cookie_behavior(tmp_path: Path, fault_server, fault_server2) -> None:
    fd, _ = make_fd({})
    fd.ydl.cookiejar.set_cookie(http.cookiejar.Cookie(
        1, 'c', 'test', str(fault_server.port), True, fault_server.host, True, False, '/', False, False,
        0, True, None, None, {}))
    target = tmp_path / 'headers.json'
    assert fd.real_download(str(target), {'url': fault_server.url('/headers')}), 'download (/headers) failed'
    headers = {k.lower(): v for k, v in json.loads(target.read_text())['headers'].items()}
    assert 'c=test' in [c.strip() for c in headers.get('cookie', '').split(';')], 'cookie not sent to A'

    redirect = fault_server.url('/redirect?to=' + fault_server2.url('/headers'))
    assert fd.real_download(str(target), {'url': redirect}), 'download (/redirect) failed'
    headers = {k.lower(): v for k, v in json.loads(target.read_text())['headers'].items()}
    assert headers.get('cookie') is None, 'cookie leaked to B across the redirect'
    assert [r.header('Cookie') for r in get_requests(fault_server2, '/headers')] == [None]
    assert 'c=test' in (get_requests(fault_server, '/redirect')[-1].header('Cookie') or '')
