"""The build's own error: without libcurl's headers, one clear line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.skipif(not (ROOT / "setup.py").exists(), reason="needs the source tree")
def test_missing_libcurl_names_the_package(tmp_path: Path) -> None:
    env = dict(os.environ, YTDLP_ASYNC_CURL_CONFIG=str(tmp_path / "no-curl-config"))
    proc = subprocess.run(
        [sys.executable, "setup.py", "--name"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 1
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert "libcurl4-openssl-dev (Debian/Ubuntu)" in lines[0] and "libcurl-devel (Fedora)" in lines[0]
    assert "Traceback" not in proc.stderr
