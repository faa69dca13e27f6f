"""Shared, generic test fixtures: local fault-injecting HTTP servers and nginx.

Every server here listens on loopback only (127.0.0.1 / 127.0.0.2); tests must
never reach beyond loopback.  Project-specific fixtures belong in other files.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Iterator

import pytest

_TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
if _TESTS_DIR not in sys.path:  # make `import faultserver` work in any import mode
    sys.path.insert(0, _TESTS_DIR)

from faultserver import FaultServer  # noqa: E402
from nginxserver import NginxError, NginxServer, find_nginx, find_openssl  # noqa: E402


@pytest.fixture
def fault_server() -> Iterator[FaultServer]:
    """A started :class:`FaultServer` on 127.0.0.1 (random port), stopped afterwards."""
    with FaultServer("127.0.0.1") as server:
        yield server


@pytest.fixture
def fault_server2() -> Iterator[FaultServer]:
    """A second :class:`FaultServer` on 127.0.0.2 (another host for cross-host tests)."""
    try:
        server = FaultServer("127.0.0.2").start()
    except OSError as exc:  # 127.0.0.2 is loopback on Linux, not everywhere
        pytest.skip(f"cannot bind 127.0.0.2: {exc}")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def nginx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NginxServer]:
    """Session-wide nginx (HTTP/1.1 + HTTPS/HTTP2). Put files into ``nginx.root``."""
    if find_nginx() is None:
        pytest.skip("nginx binary not found")
    if find_openssl() is None:
        pytest.skip("openssl CLI not found (needed for the TLS certificate)")
    base: Path = tmp_path_factory.mktemp("nginx")
    server = NginxServer(base / "root", base / "work")
    try:
        server.start()
    except NginxError as exc:
        pytest.fail(str(exc))
    try:
        yield server
    finally:
        server.stop()
