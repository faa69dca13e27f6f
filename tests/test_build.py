"""The build: without libcurl's headers one clear line; make's install stamp skips pip when nothing changed."""

from __future__ import annotations

import os
import shutil
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


# ------------------------------------------------------------------ make's install stamp
def _make_n(venv: Path, target: str = "demo") -> str:
    # the demo has a venv of its own (DEMO_VENV), the rest .venv (VENV)
    venv_var = "DEMO_VENV" if target == "demo" else "VENV"
    proc = subprocess.run(["make", "-n", "--no-print-directory", target, f"{venv_var}={venv}"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _stamped_venv(tmp_path: Path, when: float) -> Path:
    venv = tmp_path / "venv"
    venv.mkdir()
    for stamp in (".created", ".installed"):
        (venv / stamp).touch()
        os.utime(venv / stamp, (when, when))
    return venv


def _newest_source() -> float:
    roots = [ROOT / "csrc", ROOT / "yt_dlp_async", ROOT / "yt_dlp_plugins"]
    files = [p for r in roots for p in r.rglob("*") if p.is_file()]
    files += [ROOT / n for n in ("setup.py", "pyproject.toml", "MANIFEST.in", "yt_dlp_async.pth", "yt_dlp_async_hook.py")]
    return max(p.stat().st_mtime for p in files if p.exists())


@pytest.mark.skipif(not (ROOT / "Makefile").exists() or shutil.which("make") is None, reason="needs make and the tree")
def test_second_make_demo_does_not_reinstall(tmp_path: Path) -> None:
    # an install newer than every source: `make demo` goes straight to the demo
    venv = _stamped_venv(tmp_path, _newest_source() + 60)
    plan = _make_n(venv)
    assert "pip" not in plan, plan
    assert "tests/demo.py" in plan


@pytest.mark.skipif(not (ROOT / "Makefile").exists() or shutil.which("make") is None, reason="needs make and the tree")
def test_changed_source_reinstalls(tmp_path: Path) -> None:
    # csrc/engine.c (or any package file) newer than the stamp: pip runs again, then the stamp
    when = (ROOT / "csrc" / "engine.c").stat().st_mtime - 60
    venv = _stamped_venv(tmp_path, when)
    plan = _make_n(venv, "install")
    assert "pip install -q --upgrade '.[test]'" in plan, plan
    assert plan.index("pip install") < plan.index(".installed")
    # the demo installs the package alone: not the test extra (issue 16)
    plan = _make_n(venv)
    assert "pip install -q --upgrade ." in plan and "[test]" not in plan, plan
    assert plan.index("pip install") < plan.index(f"touch {venv}/.installed") < plan.index("tests/demo.py")
