"""The engine's side of issue 16, cases 7, 9 and 12, without yt-dlp.

* a 206 without Content-Range is the whole resource when no range was asked,
  and unusable (RangeError) when one was;
* ``auth_to_other_hosts`` decides whether a redirect to another host keeps
  the Authorization header (the other headers always follow);
* header values go out in ISO-8859-1 when they fit, else UTF-8.

Every test talks to fault servers on loopback and checks the file's bytes
and the request log of each host.
"""

from __future__ import annotations

import urllib.parse
from pathlib import Path
from typing import Iterator

import pytest
from faultserver import FaultServer, content

from yt_dlp_async import AsyncDownloadEngine
from yt_dlp_async.errors import RangeError

SIZE = 300_000


@pytest.fixture
def engine() -> Iterator[AsyncDownloadEngine]:
    with AsyncDownloadEngine(retry_base_delay=0.05, retry_max_delay=0.2, max_retries=1, stall_timeout=5) as e:
        yield e


@pytest.mark.parametrize('query', [{'bare206': 1}, {'bare206': 1, 'norange': 1}], ids=['ranges', 'whole'])
def test_206_without_content_range(engine: AsyncDownloadEngine, fault_server: FaultServer, tmp_path: Path,
                                   query: dict[str, int]) -> None:
    url = fault_server.data_url(SIZE, seed=3, **query)
    result = engine.submit(url, tmp_path / 'whole.bin', connections=1).result(30)
    assert (tmp_path / 'whole.bin').read_bytes() == content(SIZE, 3)
    assert result.http_status == 206 and result.resource_size == SIZE
    with pytest.raises(RangeError):
        engine.submit(url, tmp_path / 'part.bin', range=(1000, 2000)).result(30)


@pytest.mark.parametrize('keep', [True, False])
def test_authorization_across_a_redirect_to_another_host(engine: AsyncDownloadEngine, fault_server: FaultServer,
                                                         fault_server2: FaultServer, tmp_path: Path,
                                                         keep: bool) -> None:
    target = fault_server2.data_url(SIZE, seed=4)
    url = fault_server.url('/redirect?' + urllib.parse.urlencode({'to': target}))
    headers = {'Authorization': 'Bearer s3cret', 'X-Custom': 'kept'}
    engine.submit(url, tmp_path / 'a.bin', headers=headers, auth_to_other_hosts=keep).result(30)
    assert (tmp_path / 'a.bin').read_bytes() == content(SIZE, 4)
    fault_server.wait_idle()
    fault_server2.wait_idle()
    a = fault_server.requests('/redirect')
    b = fault_server2.requests(f'/data/{SIZE}')
    assert [(r.header('Authorization'), r.header('X-Custom')) for r in a] == [('Bearer s3cret', 'kept')]
    assert [(r.header('Authorization'), r.header('X-Custom')) for r in b] == [
        ('Bearer s3cret' if keep else None, 'kept')]


def test_header_values_in_latin1_when_they_fit(engine: AsyncDownloadEngine, fault_server: FaultServer,
                                               tmp_path: Path) -> None:
    headers = [('X-Latin', 'café ±'), ('X-Beyond', 'caf€')]
    engine.submit(fault_server.url('/headers'), tmp_path / 'h.json', headers=headers).result(30)
    fault_server.wait_idle()
    [request] = fault_server.requests('/headers')
    # the server reads header bytes as ISO-8859-1: the UTF-8 of '€' reads as 'â\x82¬'
    assert request.header('X-Latin') == 'café ±'
    assert request.header('X-Beyond') == 'caf€'.encode().decode('latin-1')
