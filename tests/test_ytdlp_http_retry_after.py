"""429 (and 503) with ``Retry-After`` (issue 9, item 8).

The README promises that 429 is retried: it is, within yt-dlp's
``--retries``, after the wait the server asks for (at most
http_download.RETRY_AFTER_CAP seconds, with a warning when it asks more).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from faultserver import sha256_of
from ytdlp_support import get_requests, output, require_engine, require_hook, run_ytdlp, sha256_file, write_info_json

SIZE = 3_000_000


@pytest.fixture(autouse=True)
def _installed() -> None:
    require_hook()
    require_engine()


@pytest.mark.parametrize('connections', ['8', '1'], ids=['split', 'in-order'])
def test_429_with_retry_after_is_retried_after_the_wait(tmp_path: Path, fault_server, connections: str) -> None:
    url = fault_server.data_url(SIZE, 'mp4', fail=1, fail_status=429, retry_after=1)
    info = write_info_json(tmp_path / 'i.json', url)
    proc = run_ytdlp(['--async-connections', connections, '--retry-sleep', '0',
                      '--load-info-json', str(info), '-o', 'x.mp4'], tmp_path)
    assert proc.returncode == 0, output(proc)
    assert 'Got error: HTTP Error 429: Too Many Requests. Retrying (1/10)...' in proc.stdout, output(proc)
    # yt-dlp alone prints no sleep line between HTTP retries (issue 16): neither does the plugin
    assert 'Sleeping' not in proc.stdout and 'Retry-After' not in proc.stdout, output(proc)
    assert sha256_file(tmp_path / 'x.mp4') == sha256_of(SIZE)
    requests = get_requests(fault_server, f'/data/{SIZE}.mp4')
    assert requests[0].status == 429 and all(e.status in (200, 206) for e in requests[1:]), \
        [(e.status, e.range) for e in requests]
    assert requests[1].started - requests[0].started >= 1.0


def test_429_gives_up_after_the_retries(tmp_path: Path, fault_server) -> None:
    url = fault_server.data_url(100_000, 'mp4', fail=10, fail_status=429, retry_after=0)
    info = write_info_json(tmp_path / 'i.json', url)
    proc = run_ytdlp(['-R', '2', '--retry-sleep', '0', '--load-info-json', str(info), '-o', 'x.mp4'], tmp_path)
    assert proc.returncode == 1, output(proc)
    assert 'HTTP Error 429: Too Many Requests. Giving up after 2 retries' in proc.stderr, output(proc)
    assert len(get_requests(fault_server, '/data/100000.mp4')) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ['.home', 'i.json']


class _Exc:
    def __init__(self, value: str) -> None:
        self.headers = {'Retry-After': value}


@pytest.mark.parametrize('value, seconds, warned', [
    ('1', 1.0, False), ('2.5', 2.5, False), ('0', 0.0, False), ('soon', 0.0, False),
    ('600', 60.0, True), ('Wed, 21 Oct 2015 07:28:00 GMT', 0.0, False),
])
def test_retry_after_is_capped_with_a_warning(value: str, seconds: float, warned: bool) -> None:
    from yt_dlp_async.ytdlp.http_download import retry_after_seconds
    warnings: list[Any] = []
    assert retry_after_seconds(_Exc(value), warnings.append) == seconds
    assert bool(warnings) == warned
    if warned:
        assert warnings == ['The server asked to wait 600 seconds before a retry (Retry-After); '
                            'waiting 60 seconds, the most yt-dlp-async waits']
