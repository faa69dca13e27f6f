"""Self-tests of the test infrastructure: FaultServer and NginxServer.

Clients used: http.client, urllib, raw sockets and the curl CLI.  Everything
stays on loopback.
"""

from __future__ import annotations

import hashlib
import http.client
import http.cookiejar
import json
import os
import shutil
import socket
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Dict, List, Optional, Tuple

import pytest

from faultserver import (
    BLOCK_SIZE,
    FaultServer,
    RangeNotSatisfiable,
    content,
    content_range,
    parse_range,
    sha256_of,
)
from nginxserver import NginxServer

CURL = shutil.which("curl")
needs_curl = pytest.mark.skipif(CURL is None, reason="curl CLI not found")

Response = Tuple[int, Dict[str, str], bytes]


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def get(url: str, headers: Optional[Dict[str, str]] = None, method: str = "GET", timeout: float = 10.0) -> Response:
    """One request on a fresh http.client connection: (status, headers, body)."""
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    try:
        target = u.path + (f"?{u.query}" if u.query else "")
        conn.request(method, target, headers=headers or {})
        resp = conn.getresponse()
        body = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, body
    finally:
        conn.close()


def opener(*handlers: urllib.request.BaseHandler) -> urllib.request.OpenerDirector:
    """urllib opener that never uses proxies from the environment."""
    return urllib.request.build_opener(urllib.request.ProxyHandler({}), *handlers)


def plain_env() -> dict[str, str]:
    """The environment without `make sanitize`'s LD_PRELOAD of ASan, which
    the curl binary (not built with it) must not get."""
    return {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}


def curl(*args: str, timeout: float = 20.0) -> subprocess.CompletedProcess[str]:
    assert CURL is not None
    return subprocess.run(
        [CURL, "--noproxy", "*", "-s", *args], capture_output=True, text=True, timeout=timeout, env=plain_env()
    )


# --------------------------------------------------------------------------
# content
# --------------------------------------------------------------------------


def test_content_is_deterministic_and_blockwise() -> None:
    size = 3 * BLOCK_SIZE + 123
    data = content(size, seed=5)
    assert len(data) == size
    assert data[:BLOCK_SIZE] == hashlib.shake_128(b"5:0").digest(BLOCK_SIZE)
    assert data[2 * BLOCK_SIZE : 3 * BLOCK_SIZE] == hashlib.shake_128(b"5:2").digest(BLOCK_SIZE)
    assert content(size + 1000, seed=5)[:size] == data  # prefix property
    assert content(size, seed=6) != data
    assert content_range(size, 5, 70000, 200000) == data[70000:200000]
    assert content_range(size, 5, size - 10, size + 100) == data[-10:]
    assert sha256_of(size, 5) == sha(data)
    assert sha256_of(0) == sha(b"")


@pytest.mark.parametrize(
    "header,expected",
    [
        ("bytes=0-99", (0, 100)),
        ("bytes=100-", (100, 1000)),
        ("bytes=-10", (990, 1000)),
        ("bytes=-5000", (0, 1000)),
        ("bytes=990-5000", (990, 1000)),
        ("bytes=0-1,5-6", None),
        ("bytes=10-5", None),
        ("items=0-1", None),
    ],
)
def test_parse_range(header: str, expected: Optional[Tuple[int, int]]) -> None:
    assert parse_range(header, 1000) == expected


@pytest.mark.parametrize("header", ["bytes=1000-", "bytes=-0", "bytes=5000-6000"])
def test_parse_range_unsatisfiable(header: str) -> None:
    with pytest.raises(RangeNotSatisfiable):
        parse_range(header, 1000)


# --------------------------------------------------------------------------
# /data basics
# --------------------------------------------------------------------------


def test_full_body_and_headers(fault_server: FaultServer) -> None:
    size = 1_000_003
    status, headers, body = get(fault_server.url(f"/data/{size}.mp4?seed=7"))
    assert status == 200
    assert len(body) == size and sha(body) == sha256_of(size, 7)
    assert headers["content-type"] == "video/mp4"
    assert headers["content-length"] == str(size)
    assert headers["accept-ranges"] == "bytes"
    assert headers["etag"] == f'"7-{size}-0"'
    assert headers["last-modified"] == "Wed, 01 Jan 2020 00:00:00 GMT"

    status, headers, body = get(fault_server.url("/data/100.bin"))
    assert status == 200 and headers["content-type"] == "application/octet-stream"
    assert body == content(100)

    assert fault_server.wait_idle()
    entries = fault_server.requests("/data/1000003.mp4")
    assert len(entries) == 1
    e = entries[0]
    assert (e.method, e.status, e.bytes_sent, e.query) == ("GET", 200, size, {"seed": "7"})
    assert e.finished is not None and e.started <= e.finished
    assert e.range is None and e.outcome == "ok"


def test_head(fault_server: FaultServer) -> None:
    status, headers, body = get(fault_server.url("/data/5000.mp4"), method="HEAD")
    assert status == 200 and body == b""
    assert headers["content-length"] == "5000"
    assert fault_server.requests(method="HEAD")[0].bytes_sent == 0


@pytest.mark.parametrize(
    "rng,start,end",
    [("bytes=0-99", 0, 100), ("bytes=70000-", 70000, 200000), ("bytes=-1234", 200000 - 1234, 200000),
     ("bytes=199990-300000", 199990, 200000), ("bytes=65530-131080", 65530, 131081)],
)
def test_ranges(fault_server: FaultServer, rng: str, start: int, end: int) -> None:
    status, headers, body = get(fault_server.url("/data/200000?seed=3"), {"Range": rng})
    assert status == 206
    assert headers["content-range"] == f"bytes {start}-{end - 1}/200000"
    assert headers["content-length"] == str(end - start)
    assert body == content(200000, 3)[start:end]
    assert fault_server.requests()[0].range == rng


def test_unsatisfiable_range(fault_server: FaultServer) -> None:
    status, headers, body = get(fault_server.url("/data/1000"), {"Range": "bytes=1000-"})
    assert status == 416
    assert headers["content-range"] == "bytes */1000"
    assert body == b""
    status, headers, _ = get(fault_server.url("/data/1000"), {"Range": "bytes=-0"})
    assert status == 416


def test_multi_range_served_full(fault_server: FaultServer) -> None:
    status, headers, body = get(fault_server.url("/data/3000"), {"Range": "bytes=0-9,20-29"})
    assert status == 200 and "content-range" not in headers
    assert body == content(3000)


def test_if_range(fault_server: FaultServer) -> None:
    url = fault_server.url("/data/4000?seed=2")
    _, headers, _ = get(url, method="HEAD")
    etag, lastmod = headers["etag"], headers["last-modified"]

    status, _, body = get(url, {"Range": "bytes=100-", "If-Range": etag})
    assert status == 206 and body == content(4000, 2)[100:]
    status, _, body = get(url, {"Range": "bytes=100-", "If-Range": lastmod})
    assert status == 206 and body == content(4000, 2)[100:]

    status, headers, body = get(url, {"Range": "bytes=100-", "If-Range": '"2-4000-9"'})
    assert status == 200 and "content-range" not in headers and body == content(4000, 2)
    status, _, body = get(url, {"Range": "bytes=100-", "If-Range": "Thu, 02 Jan 2020 00:00:00 GMT"})
    assert status == 200 and body == content(4000, 2)
    status, _, body = get(url, {"Range": "bytes=100-", "If-Range": f"W/{etag}"})
    assert status == 200


# --------------------------------------------------------------------------
# faults
# --------------------------------------------------------------------------


def test_fail_then_success_with_retry_after(fault_server: FaultServer) -> None:
    url = fault_server.url("/data/5000?fail=2&retry_after=3&key=a")
    for _ in range(2):
        status, headers, _ = get(url)
        assert status == 503 and headers["retry-after"] == "3"
    status, headers, body = get(url)
    assert status == 200 and "retry-after" not in headers and sha(body) == sha256_of(5000)
    assert [e.status for e in fault_server.requests("/data/5000")] == [503, 503, 200]
    assert [e.index for e in fault_server.requests("/data/5000")] == [0, 1, 2]

    url429 = fault_server.url("/data/10?fail=1&fail_status=429")
    assert get(url429)[0] == 429
    assert get(url429)[0] == 200


def test_counters_are_per_key_and_reset(fault_server: FaultServer) -> None:
    assert get(fault_server.url("/data/10?fail=1&key=x"))[0] == 503
    assert get(fault_server.url("/data/10?fail=1&key=y"))[0] == 503
    assert get(fault_server.url("/data/10?fail=1&key=x"))[0] == 200
    fault_server.reset()
    assert fault_server.log == []
    assert get(fault_server.url("/data/10?fail=1&key=x"))[0] == 503


def test_skip(fault_server: FaultServer) -> None:
    url = fault_server.url("/data/1000?skip=1&fail=1")
    assert [get(url)[0] for _ in range(3)] == [200, 503, 200]


def test_status(fault_server: FaultServer) -> None:
    for code in (404, 403, 500):
        status, _, body = get(fault_server.url(f"/data/1000?status={code}"))
        assert status == code and body.startswith(str(code).encode())
    assert get(fault_server.url("/data/1000?status=404"))[0] == 404  # always


def test_reset_after(fault_server: FaultServer) -> None:
    url = fault_server.url("/data/300000?reset_after=1000")
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=5)
    conn.request("GET", f"{u.path}?{u.query}")
    resp = conn.getresponse()
    assert resp.status == 200
    assert resp.read(1000) == content(1000)
    with pytest.raises((ConnectionResetError, http.client.IncompleteRead)):
        resp.read()
    conn.close()
    # times=1 by default: the next request is served completely.
    status, _, body = get(url)
    assert status == 200 and sha(body) == sha256_of(300000)
    assert fault_server.wait_idle()
    assert [e.outcome for e in fault_server.requests()] == ["reset", "ok"]
    assert fault_server.requests()[0].bytes_sent == 1000


@needs_curl
def test_reset_after_curl(fault_server: FaultServer) -> None:
    url = fault_server.url("/data/300000?reset_after=5000&times=2")
    for _ in range(2):
        r = curl("-o", "/dev/null", "-w", "%{size_download}", url)
        assert r.returncode == 56, r  # CURLE_RECV_ERROR: connection reset
        assert r.stdout == "5000"
    r = curl("-o", "/dev/null", "-w", "%{size_download}", url)
    assert r.returncode == 0 and r.stdout == "300000"


def test_stall_after_times_out(fault_server: FaultServer) -> None:
    url = fault_server.url("/data/100000?stall_after=2000")
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=0.5)
    conn.request("GET", f"{u.path}?{u.query}")
    resp = conn.getresponse()
    assert resp.read(2000) == content(2000)
    t0 = time.monotonic()
    with pytest.raises(socket.timeout):
        resp.read(1)
    assert time.monotonic() - t0 >= 0.4
    conn.close()
    status, _, body = get(url, timeout=5)  # second request: no stall
    assert status == 200 and sha(body) == sha256_of(100000)


def test_stall_then_resume(fault_server: FaultServer) -> None:
    t0 = time.monotonic()
    status, _, body = get(fault_server.url("/data/50000?stall_after=1000&stall=0.5"))
    elapsed = time.monotonic() - t0
    assert status == 200 and sha(body) == sha256_of(50000)
    assert 0.45 <= elapsed < 5
    assert fault_server.requests()[0].outcome == "stall"


def test_short(fault_server: FaultServer) -> None:
    url = fault_server.url("/data/100000?short=300")
    with pytest.raises(http.client.IncompleteRead) as info:
        get(url)
    assert len(info.value.partial) == 100000 - 300
    assert info.value.partial == content(100000)[:-300]
    status, _, body = get(url)
    assert status == 200 and len(body) == 100000


@needs_curl
def test_short_curl(fault_server: FaultServer) -> None:
    r = curl("-o", "/dev/null", "-w", "%{http_code} %{size_download}", fault_server.url("/data/70000?short=10"))
    assert r.returncode == 18, r  # CURLE_PARTIAL_FILE
    assert r.stdout == "200 69990"


def test_norange(fault_server: FaultServer) -> None:
    status, headers, body = get(fault_server.url("/data/5000?norange=1"), {"Range": "bytes=100-199"})
    assert status == 200 and "accept-ranges" not in headers and "content-range" not in headers
    assert body == content(5000)


def test_range200(fault_server: FaultServer) -> None:
    status, headers, body = get(fault_server.url("/data/5000?range200=1"), {"Range": "bytes=100-199"})
    assert status == 200
    assert headers["content-range"] == "bytes 100-199/5000"
    assert body == content(5000)[100:200]


def test_bare206(fault_server: FaultServer) -> None:
    url = fault_server.url("/data/5000?bare206=1")
    status, headers, body = get(url)
    assert status == 206 and "content-range" not in headers and body == content(5000)
    assert headers["content-length"] == "5000"
    status, headers, body = get(url, {"Range": "bytes=100-199"})
    assert status == 206 and "content-range" not in headers and body == content(5000)[100:200]
    status, headers, body = get(fault_server.url("/data/5000?bare206=1&norange=1"), {"Range": "bytes=100-199"})
    assert status == 206 and "content-range" not in headers and body == content(5000)


def test_set_cookie_seq(fault_server: FaultServer) -> None:
    url = fault_server.url("/data/100?set_cookie_seq=tok")
    values = [get(url)[1]["set-cookie"] for _ in range(3)]
    assert values == ["tok=1; Path=/", "tok=2; Path=/", "tok=3; Path=/"]
    status, headers, _ = get(fault_server.url("/data/100?status=404&set_cookie_seq=tok"))
    assert status == 404 and headers["set-cookie"] == "tok=4; Path=/"
    assert "set-cookie" not in get(fault_server.url("/data/100"))[1]


def test_cookie_chain(fault_server: FaultServer) -> None:
    url = fault_server.url("/data/100?cookie_chain=tok")
    status, headers, body = get(url)
    assert status == 200 and headers["set-cookie"] == "tok=1; Path=/" and body == content(100)
    assert get(url)[0] == 403                                   # no cookie
    assert get(url, {"Cookie": "tok=0"})[0] == 403               # a stale one
    status, headers, _ = get(fault_server.url("/data/7?cookie_chain=tok&key=x"), {"Cookie": "a=b; tok=1"})
    assert status == 200 and headers["set-cookie"] == "tok=2; Path=/"
    assert get(url, {"Cookie": "tok=1"})[0] == 403
    assert [e.outcome for e in fault_server.log] == ["ok", "stale-cookie", "stale-cookie", "ok", "stale-cookie"]


def test_drop_ranges_after(fault_server: FaultServer) -> None:
    url = fault_server.url("/data/5000?drop_ranges_after=2")
    rng = {"Range": "bytes=10-19"}
    assert get(url, rng)[0] == 206
    assert get(url, rng)[2] == content(5000)[10:20]
    status, headers, body = get(url, rng)
    assert status == 200 and "content-range" not in headers and body == content(5000)


def test_etag_change(fault_server: FaultServer) -> None:
    url = fault_server.url("/data/200000?seed=4&etag_change=1")
    s1, h1, b1 = get(url)
    s2, h2, b2 = get(url)
    assert s1 == s2 == 200
    assert h1["etag"] == '"4-200000-0"' and h2["etag"] == '"4-200000-1"'
    assert h1["last-modified"] != h2["last-modified"]
    assert sha(b1) == sha256_of(200000, 4)
    assert sha(b2) == sha256_of(200000, 1004) != sha(b1)
    # A resume with the stale validator gets the full new content.
    s3, h3, b3 = get(url, {"Range": "bytes=1000-", "If-Range": h1["etag"]})
    assert s3 == 200 and sha(b3) == sha256_of(200000, 1004)
    s4, _, b4 = get(url, {"Range": "bytes=1000-", "If-Range": h2["etag"]})
    assert s4 == 206 and b4 == content(200000, 1004)[1000:]


def test_max_conns(fault_server: FaultServer) -> None:
    url = fault_server.url("/data/80000?max_conns=2&rate=100000")
    results: List[Tuple[int, Dict[str, str], bytes]] = []
    lock = threading.Lock()
    barrier = threading.Barrier(6)

    def worker() -> None:
        barrier.wait()
        r = get(url)
        with lock:
            results.append(r)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    statuses = sorted(r[0] for r in results)
    assert statuses == [200, 200, 429, 429, 429, 429]
    for status, headers, body in results:
        if status == 429:
            assert headers["retry-after"] == "1"
        else:
            assert sha(body) == sha256_of(80000)
    assert fault_server.max_concurrent >= 3


def test_latency(fault_server: FaultServer) -> None:
    t0 = time.monotonic()
    status, _, _ = get(fault_server.url("/data/10?latency=300"))
    assert status == 200 and time.monotonic() - t0 >= 0.29


def test_rate(fault_server: FaultServer) -> None:
    t0 = time.monotonic()
    status, _, body = get(fault_server.url("/data/200000?rate=400000"))
    elapsed = time.monotonic() - t0
    assert status == 200 and sha(body) == sha256_of(200000)
    assert 0.35 <= elapsed < 5, elapsed


def test_admit(fault_server: FaultServer) -> None:
    url = fault_server.url("/data/5000?admit=2")
    assert get(url)[0] == 200
    status, _, body = get(url, {"Range": "bytes=100-199"})
    assert status == 206 and body == content(5000)[100:200]
    assert [get(url)[0], get(url, {"Range": "bytes=0-9"})[0]] == [403, 403]
    assert [e.outcome for e in fault_server.requests("/data/5000")][2:] == ["admit", "admit"]


def test_share_rate(fault_server: FaultServer) -> None:
    # two connections of one key share 400 kB/s: 2 x 100 kB take at least
    # 0.5 s together (each alone at its own 400 kB/s would take 0.25 s)
    url = fault_server.url("/data/100000?share_rate=400000")
    results: List[Tuple[int, Dict[str, str], bytes]] = []
    barrier = threading.Barrier(2)

    def worker() -> None:
        barrier.wait()
        results.append(get(url))

    t0 = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    elapsed = time.monotonic() - t0
    assert [r[0] for r in results] == [200, 200]
    assert all(sha(r[2]) == sha256_of(100000) for r in results)
    assert elapsed >= 0.45, elapsed


def test_no_length_and_chunked(fault_server: FaultServer) -> None:
    status, headers, body = get(fault_server.url("/data/150000?no_length=1"))
    assert status == 200 and "content-length" not in headers
    assert headers["connection"] == "close"
    assert sha(body) == sha256_of(150000)

    status, headers, body = get(fault_server.url("/data/150000?chunked=1"))
    assert status == 200 and headers["transfer-encoding"] == "chunked" and "content-length" not in headers
    assert sha(body) == sha256_of(150000)

    status, headers, body = get(fault_server.url("/data/150000?chunked=1"), {"Range": "bytes=-100"})
    assert status == 206 and body == content(150000)[-100:]


def test_keepalive_conn_ids(fault_server: FaultServer) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", fault_server.port, timeout=5)
    for _ in range(3):
        conn.request("GET", "/data/100")
        assert conn.getresponse().read() == content(100)
    port = conn.sock.getsockname()[1]
    conn.close()
    assert fault_server.wait_idle()  # the server may still be finishing request 3
    get(fault_server.url("/data/100"))
    entries = fault_server.requests("/data/100")
    assert len({e.conn_id for e in entries[:3]}) == 1
    assert entries[3].conn_id != entries[0].conn_id
    assert all(e.client_port == port for e in entries[:3])
    assert fault_server.max_concurrent_for("/data/100") == 1


# --------------------------------------------------------------------------
# other routes
# --------------------------------------------------------------------------


def test_redirect_across_hosts(fault_server: FaultServer, fault_server2: FaultServer) -> None:
    target = fault_server2.url("/data/12345.mp4?seed=9")
    assert target.startswith("http://127.0.0.2:")
    url = fault_server.url("/redirect?" + urllib.parse.urlencode({"to": target, "code": "307"}))
    with opener().open(url, timeout=10) as resp:
        body = resp.read()
        assert resp.geturl() == target
    assert sha(body) == sha256_of(12345, 9)
    assert [e.status for e in fault_server.requests("/redirect")] == [307]
    (e2,) = fault_server2.requests("/data/12345.mp4")
    assert e2.status == 200 and e2.header("host") == f"127.0.0.2:{fault_server2.port}"
    assert e2.client_host == "127.0.0.1"  # connected from the default source address
    assert fault_server.requests("/data/12345.mp4") == []


def test_cookies(fault_server: FaultServer) -> None:
    jar = http.cookiejar.CookieJar()
    op = opener(urllib.request.HTTPCookieProcessor(jar))
    protected = fault_server.url("/data/1000?require_cookie=sid=abc")
    with pytest.raises(urllib.error.HTTPError) as info:
        op.open(protected, timeout=5)
    assert info.value.code == 403

    with op.open(fault_server.url("/redirect?to=/headers&set_cookie=sid=abc"), timeout=5) as resp:
        echoed = json.load(resp)["headers"]
    assert {c.name: c.value for c in jar} == {"sid": "abc"}
    assert "sid=abc" in echoed.get("Cookie", "")
    with op.open(protected, timeout=5) as resp:
        assert resp.status == 200 and resp.read() == content(1000)

    status, headers, _ = get(fault_server.url("/data/10?set_cookie=a=b"))
    assert headers["set-cookie"] == "a=b; Path=/"


def test_require_header(fault_server: FaultServer) -> None:
    url = fault_server.url("/data/100?require_header=X-Token:s3cret")
    assert get(url)[0] == 400
    assert get(url, {"X-Token": "wrong"})[0] == 400
    status, _, body = get(url, {"x-token": "s3cret"})
    assert status == 200 and body == content(100)


def test_headers_echo(fault_server: FaultServer) -> None:
    status, headers, body = get(fault_server.url("/headers"), {"X-Custom-Thing": "Hello", "Referer": "http://r/"})
    assert status == 200 and headers["content-type"] == "application/json"
    echoed = json.loads(body)["headers"]
    assert echoed["X-Custom-Thing"] == "Hello" and echoed["Referer"] == "http://r/"
    e = fault_server.requests("/headers")[0]
    assert e.header("x-custom-thing") == "Hello" and e.header("missing") is None


def test_files(fault_server: FaultServer) -> None:
    playlist = b"#EXTM3U\n#EXT-X-ENDLIST\n"
    url = fault_server.add_file("hls/index.m3u8", playlist, content_type="application/vnd.apple.mpegurl")
    assert url == fault_server.url("/file/hls/index.m3u8")
    status, headers, body = get(url)
    assert status == 200 and body == playlist
    assert headers["content-type"] == "application/vnd.apple.mpegurl"
    status, headers, body = get(url, {"Range": "bytes=1-6"})
    assert status == 206 and body == playlist[1:7] and headers["content-range"] == f"bytes 1-6/{len(playlist)}"
    fault_server.add_file("hls/index.m3u8", b"changed")
    _, headers2, body2 = get(url)
    assert body2 == b"changed" and headers2["etag"] != headers["etag"]
    assert get(fault_server.url("/file/nope"))[0] == 404
    assert get(url + "?fail=1")[0] == 503


def test_page_html(fault_server: FaultServer) -> None:
    status, headers, body = get(fault_server.url("/page?title=T%26x&videos=/data/1000.mp4,/data/2000.mp4"))
    assert status == 200 and headers["content-type"].startswith("text/html")
    text = body.decode()
    assert "<title>T&amp;x</title>" in text
    assert '<video src="/data/1000.mp4"' in text and '<video src="/data/2000.mp4"' in text


def test_page_with_ytdlp_generic(fault_server: FaultServer) -> None:
    yt_dlp = pytest.importorskip("yt_dlp")
    url = fault_server.url("/page?title=My%20Page&videos=/data/1000.mp4,/data/2000.mp4")
    with yt_dlp.YoutubeDL({"quiet": True, "no_warnings": True, "proxy": ""}) as ydl:
        info = ydl.extract_info(url, download=False)
    assert info["_type"] == "playlist" and info["title"] == "My Page"
    expected = [fault_server.url("/data/1000.mp4"), fault_server.url("/data/2000.mp4")]
    assert [e["url"] for e in info["entries"]] == expected


def test_not_found_and_bad_param(fault_server: FaultServer) -> None:
    assert get(fault_server.url("/nothing"))[0] == 404
    assert get(fault_server.url("/data/abc"))[0] == 404
    assert get(fault_server.url("/data/10?rate=fast"))[0] == 400
    assert [e.status for e in fault_server.log] == [404, 404, 400]


# --------------------------------------------------------------------------
# scale and shutdown
# --------------------------------------------------------------------------


def test_300_concurrent_connections(fault_server: FaultServer) -> None:
    n = 300
    t0 = time.monotonic()
    socks = []
    try:
        for i in range(n):
            s = socket.create_connection(("127.0.0.1", fault_server.port), timeout=10)
            s.sendall(
                f"GET /data/1000?latency=1000&i={i} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
            )
            socks.append(s)
        for s in socks:
            chunks = []
            while True:
                d = s.recv(65536)
                if not d:
                    break
                chunks.append(d)
            raw = b"".join(chunks)
            head, _, body = raw.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200 ")
            assert body == content(1000)
    finally:
        for s in socks:
            s.close()
    elapsed = time.monotonic() - t0
    assert fault_server.max_concurrent >= n
    assert len(fault_server.requests("/data/1000")) == n
    assert elapsed < 5, elapsed


def test_stop_is_prompt_with_stalled_and_idle_connections() -> None:
    server = FaultServer().start()
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.request("GET", "/data/100000?stall_after=1000")
    resp = conn.getresponse()
    assert resp.read(1000) == content(1000)
    idle = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)  # keep-alive, idle
    idle.request("GET", "/data/10")
    assert idle.getresponse().read() == content(10)
    throttled = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    throttled.sendall(b"GET /data/10000000?rate=1000 HTTP/1.1\r\nHost: x\r\n\r\n")
    time.sleep(0.1)

    t0 = time.monotonic()
    server.stop()
    assert time.monotonic() - t0 < 2.0
    t1 = time.monotonic()
    with pytest.raises((http.client.IncompleteRead, ConnectionError)):
        resp.read()
    assert time.monotonic() - t1 < 2.0  # the stalled client is released, not left hanging
    assert server.active == 0
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", server.port), timeout=1)
    conn.close()
    idle.close()
    throttled.close()


# --------------------------------------------------------------------------
# nginx
# --------------------------------------------------------------------------


@needs_curl
def test_nginx_http_and_http2(nginx: NginxServer) -> None:
    size = (1 << 20) + 7
    nginx.put_file("media/big.bin", content(size, seed=11))
    digest = sha256_of(size, 11)

    r = subprocess.run(
        [CURL or "curl", "--noproxy", "*", "-s", "-o", "-", nginx.http_url("/media/big.bin")],
        capture_output=True, timeout=20, env=plain_env(),
    )
    assert r.returncode == 0 and sha(r.stdout) == digest

    r = subprocess.run(
        [CURL or "curl", "--noproxy", "*", "-s", "--http2", "--cacert", str(nginx.ca_file),
         "-D", "-", "-o", "-", nginx.https_url("/media/big.bin")],
        capture_output=True, timeout=20, env=plain_env(),
    )
    assert r.returncode == 0, r.stderr
    head, _, body = r.stdout.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/2 200")
    assert sha(body) == digest

    r2 = curl("--http2", "--cacert", str(nginx.ca_file), "-r", "100-199", "-o", "/dev/null",
              "-w", "%{http_code} %{size_download} %{http_version}", nginx.https_url("/media/big.bin"))
    assert r2.returncode == 0 and r2.stdout == "206 100 2"

    entries = [e for e in nginx.access_log_entries() if "/media/big.bin" in e["request"]]
    assert any(e["protocol"] == "HTTP/1.1" and e["status"] == "200" and e["bytes"] == str(size) for e in entries)
    assert any(e["protocol"] == "HTTP/2.0" and e["status"] == "200" for e in entries)
    assert any(e["protocol"] == "HTTP/2.0" and e["range"] == "bytes=100-199" and e["status"] == "206"
               for e in entries)


def test_nginx_python_tls_client(nginx: NginxServer) -> None:
    nginx.put_file("small.txt", b"hello over tls\n")
    ctx = ssl.create_default_context(cafile=str(nginx.ca_file))
    for host in ("127.0.0.1", "localhost"):
        url = nginx.https_url("/small.txt").replace("127.0.0.1", host)
        with opener(urllib.request.HTTPSHandler(context=ctx)).open(url, timeout=10) as resp:
            assert resp.read() == b"hello over tls\n"
    with pytest.raises(urllib.error.URLError):
        opener(urllib.request.HTTPSHandler(context=ssl.create_default_context())).open(
            nginx.https_url("/small.txt"), timeout=10
        )
