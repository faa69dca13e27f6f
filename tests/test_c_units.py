"""The C unit tests of the pure engine units (tests/c/test_*.c), built by the
Makefile's ctest rule with ASan + UBSan and run here, so that they count in
the pytest totals and fail the run when one of their checks fails.

A new unit test is a file tests/c/test_NAME.c plus a ``CTEST_SRC_NAME``
line in the Makefile naming the csrc files it links; it is picked up here
without any change to this file.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
C_TESTS = sorted(p.stem[len('test_'):] for p in (ROOT / 'tests' / 'c').glob('test_*.c'))


def _clean_env() -> dict[str, str]:
    """No sanitizer preload of the Python run leaks into the compiler."""
    env = dict(os.environ)
    env.pop('LD_PRELOAD', None)
    env['ASAN_OPTIONS'] = 'detect_leaks=1'
    return env


@pytest.mark.skipif(shutil.which('make') is None or shutil.which('cc') is None,
                    reason='needs make and a C compiler')
@pytest.mark.parametrize('name', C_TESTS)
def test_c_unit(name: str, tmp_path: pathlib.Path) -> None:
    binary = tmp_path / f'test_{name}'
    build = subprocess.run(
        ['make', '--no-print-directory', '-C', str(ROOT), f'CTEST_DIR={tmp_path}', str(binary)],
        capture_output=True, text=True, env=_clean_env(), timeout=120)
    assert build.returncode == 0, build.stdout + build.stderr
    run = subprocess.run([str(binary)], capture_output=True, text=True, env=_clean_env(), timeout=60)
    report = run.stdout + run.stderr
    assert run.returncode == 0, report
    assert ' 0 failed' in run.stdout, report
    assert 'FAIL' not in run.stdout, report


def test_every_c_test_is_in_the_makefile() -> None:
    """Each tests/c/test_NAME.c names its sources (CTEST_SRC_NAME) and is in
    CTESTS, so that `make ctest` runs it too."""
    makefile = (ROOT / 'Makefile').read_text()
    assert {'adaptive', 'ratelimit'} <= set(C_TESTS)
    listed = next(line for line in makefile.splitlines() if line.startswith('CTESTS :=')).split()[2:]
    assert sorted(listed) == C_TESTS
    for name in C_TESTS:
        assert f'CTEST_SRC_{name} :=' in makefile, name
