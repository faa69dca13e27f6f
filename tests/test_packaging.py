"""Issue 16: what pip and PyPI show, one version, the CLI, Python >= 3.11 (case 18).

Read from the installed distribution (``make install``), the way a user has it.
"""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from faultserver import FaultServer, sha256_of

import yt_dlp_async
from yt_dlp_async.ytdlp import patches

ROOT = Path(__file__).resolve().parent.parent
REPO = "https://github.com/yt-dlp-async/yt-dlp-async"


def meta() -> importlib.metadata.PackageMetadata:
    return importlib.metadata.metadata("yt-dlp-async")


def test_requires_python_is_3_11() -> None:
    """Case 18: the baton's stack audit keys on co_qualname (3.11+), the wheel is
    cp311-abi3 and yt-dlp needs 3.11: 3.10 was declared and silently serial."""
    assert meta()["Requires-Python"] == ">=3.11"
    assert "Programming Language :: Python :: 3.10" not in meta().get_all("Classifier")


def test_pip_show_is_complete() -> None:
    m = meta()
    assert m["License-Expression"] == "MIT"
    assert m["Author"] == "yt-dlp-async contributors"
    urls = dict(u.split(", ", 1) for u in m.get_all("Project-URL"))
    assert urls["Homepage"] == REPO
    assert urls["Changelog"] == f"{REPO}/blob/main/CHANGELOG.md"
    assert set(urls) >= {"Homepage", "Documentation", "Source", "Issues", "Changelog"}
    classifiers = m.get_all("Classifier")
    assert "Programming Language :: Python :: 3.11" in classifiers and "Typing :: Typed" in classifiers
    files = [str(f) for f in importlib.metadata.files("yt-dlp-async") or []]
    assert any(f.endswith(".dist-info/licenses/LICENSE") for f in files), files
    assert "yt-dlp-async contributors" in (ROOT / "LICENSE").read_text()


def test_one_version() -> None:
    from yt_dlp_async._version import __version__
    assert yt_dlp_async.__version__ == __version__ == importlib.metadata.version("yt-dlp-async")
    assert patches.plugin_version() == __version__
    for name in ("setup.py", "pyproject.toml"):
        assert __version__ not in (ROOT / name).read_text(), f"{name} writes the version again"


def test_readme_links_work_on_pypi() -> None:
    """PyPI shows README.md without the repository: a relative link is a 404 there."""
    import re
    text = (ROOT / "README.md").read_text()
    links = re.findall(r"\]\(([^)#]+)\)", text)
    assert links
    relative = [link for link in links if not re.match(r"[a-z]+://", link)]
    assert relative == []
    assert "1 -> 2 -> 4 -> 8" not in text.replace("\n", " ")


def test_cli_downloads_with_progress(fault_server: FaultServer, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    urls = [fault_server.url("/data/300000.bin?seed=1"), fault_server.url("/data/2000.mp4?seed=2")]
    proc = subprocess.run([sys.executable, "-m", "yt_dlp_async", "-d", str(tmp_path / "out"), *urls],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr
    from test_engine_api_traps import sha256_file
    assert sha256_file(tmp_path / "out" / "300000.bin") == sha256_of(300000, 1)
    assert sha256_file(tmp_path / "out" / "2000.mp4") == sha256_of(2000, 2)
    assert sorted(os.listdir(tmp_path / "out")) == ["2000.mp4", "300000.bin"]
    lines = proc.stderr.splitlines()
    assert "300000.bin: done, 293.0 KiB in" in proc.stderr, lines
    assert lines[-1].startswith("2 file(s), 294.9 KiB in "), lines
    failed = subprocess.run([sys.executable, "-m", "yt_dlp_async", "-d", str(tmp_path / "bad"),
                             fault_server.url("/data/10?status=404")],
                            capture_output=True, text=True, timeout=60, cwd=tmp_path, env=env)
    assert failed.returncode == 1 and "error: HTTP Error 404" in failed.stderr, failed.stderr
    assert os.listdir(tmp_path / "bad") == []


def test_sdist_ships_license_docs_and_changelog(tmp_path: Path) -> None:
    pytest.importorskip("build", reason="python -m build (pip install build) makes the sdist")
    proc = subprocess.run([sys.executable, "-m", "build", "--sdist", "-o", str(tmp_path), str(ROOT)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    [sdist] = tmp_path.glob("*.tar.gz")
    with tarfile.open(sdist) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    assert {"LICENSE", "CHANGELOG.md", "README.md", "docs/api.md", "yt_dlp_async/_version.py"} <= names


def test_cli_interrupted_then_run_again_resumes(fault_server: FaultServer, tmp_path: Path) -> None:
    import signal
    import time
    size = 6 * 1024 * 1024
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    cmd = [sys.executable, "-m", "yt_dlp_async", "-c", "4", "-d", str(tmp_path),
           fault_server.url(f"/data/{size}.bin?seed=9&rate=1000000")]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, cwd=tmp_path, env=env)
    part = tmp_path / f"{size}.bin.ytdla-part"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (
            os.path.exists(f"{part}.ctl") and part.exists() and part.stat().st_blocks * 512 > 1_000_000):
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "run the same command again to resume" in err
    assert sorted(os.listdir(tmp_path)) == [part.name, part.name + ".ctl"]
    fault_server.wait_idle()
    before = len(fault_server.requests(f"/data/{size}.bin"))
    again = subprocess.run(cmd[:-1] + [fault_server.url(f"/data/{size}.bin?seed=9")],
                           capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env)
    assert again.returncode == 0, again.stderr
    from test_engine_api_traps import sha256_file
    assert sha256_file(tmp_path / f"{size}.bin") == sha256_of(size, 9)
    assert sorted(os.listdir(tmp_path)) == [f"{size}.bin"]
    fault_server.wait_idle()
    second = sum(r.bytes_sent for r in fault_server.requests(f"/data/{size}.bin")[before:])
    assert second < size - 500_000           # the second run did not fetch it all again
