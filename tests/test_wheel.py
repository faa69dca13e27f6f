"""The installed wheel (``make test-wheel``): it carries everything, and its
extension runs on the libcurl linked into it (wheel/build-curl.sh: http and
https only, OpenSSL, HTTP/2, zlib, brotli, zstd), not on the system's, and
maps no library it does not use.

The wheel tests are skipped unless YTDLP_ASYNC_WHEEL_VENV names the venv the
wheel was installed into (``make test-wheel`` sets it and runs this file with
that venv's python).  The CA test runs everywhere: a wheel's libcurl keeps the
build machine's CA path, so the system store must come from Python's ssl.
"""

from __future__ import annotations

import glob
import json
import os
import platform
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from faultserver import content, sha256_of
from ytdlp_support import ENGINE_LINE, hermetic_env, output, require_engine, require_hook, run_ytdlp, sha256_file

WHEEL_VENV = os.environ.get('YTDLP_ASYNC_WHEEL_VENV', '')
LOCK = Path(__file__).resolve().parent.parent / 'wheel' / 'sources.lock'

needs_wheel = pytest.mark.skipif(not WHEEL_VENV, reason='YTDLP_ASYNC_WHEEL_VENV is not set (make test-wheel sets it)')

#: what a user needs beside the package: the .pth hook, its module, yt-dlp's
#: plugin, the stub and the typing marker
INSTALLED_FILES = ('yt_dlp_async.pth', 'yt_dlp_async_hook.py', 'yt_dlp_plugins/postprocessor/yt_dlp_async_pp.py',
                   'yt_dlp_async/py.typed', 'yt_dlp_async/_engine.pyi')


def site_packages() -> Path:
    import yt_dlp_async
    return Path(yt_dlp_async.__file__).resolve().parent.parent


def libs_dir() -> Path:
    return site_packages() / 'yt_dlp_async.libs'


def mapped_libcurl(maps: str) -> set[str]:
    """The paths of every libcurl a /proc/PID/maps text shows mapped."""
    paths = (line.split(None, 5)[-1] for line in maps.splitlines() if len(line.split(None, 5)) == 6)
    return {p for p in paths if os.path.basename(p).startswith('libcurl')}


def mapped_files(maps: str) -> set[str]:
    paths = (line.split(None, 5)[-1] for line in maps.splitlines() if len(line.split(None, 5)) == 6)
    return {p for p in paths if p.startswith('/')}


def locked_version(name: str) -> str:
    """The upstream version of a source package in wheel/sources.lock ('7.88.1' for curl)."""
    for line in LOCK.read_text().splitlines():
        fields = line.split()
        if fields[:2] == ['src', name]:
            return fields[2].split(':')[-1].rsplit('-', 1)[0]
    raise AssertionError(f'{name} is not in {LOCK}')


#: what a library the engine does not use would be: Debian's libcurl links every
#: one of these, the wheel's libcurl none
UNUSED = ('libcurl', 'libssl', 'libcrypto', 'libnghttp2', 'libbrotli', 'librtmp', 'libgnutls', 'libnettle',
          'libldap', 'liblber', 'libsasl2', 'libgssapi', 'libkrb5', 'libk5crypto', 'libssh', 'libidn2', 'libpsl',
          'libunistring', 'libp11-kit', 'libgmp')


def system_libcurls() -> list[str]:
    found = glob.glob('/usr/lib*/libcurl.so.4') + glob.glob('/usr/lib*/*/libcurl.so.4')
    return sorted({os.path.realpath(p) for p in found})


@needs_wheel
def test_the_package_is_the_wheel_in_its_venv() -> None:
    assert Path(sys.prefix).resolve() == Path(WHEEL_VENV).resolve(), 'run with the wheel venv python'
    assert site_packages().is_relative_to(Path(WHEEL_VENV).resolve()), site_packages()
    record = next(site_packages().glob('yt_dlp_async-*.dist-info/RECORD')).read_text()
    assert 'yt_dlp_async.libs/libzstd-' in record  # installed from the repaired wheel, not built here
    assert 'yt_dlp_async.libs/libcurl' not in record  # libcurl is inside the extension
    missing = [name for name in INSTALLED_FILES if not (site_packages() / name).is_file()]
    assert not missing, missing


@needs_wheel
def test_one_abi3_extension_and_its_tag() -> None:
    from yt_dlp_async import _engine
    assert Path(_engine.__file__).name == '_engine.abi3.so'  # the limited API build
    assert [p.name for p in (site_packages() / 'yt_dlp_async').glob('_engine*.so')] == ['_engine.abi3.so']
    wheel = next(site_packages().glob('yt_dlp_async-*.dist-info/WHEEL')).read_text()
    tags = [line.split(':', 1)[1].strip() for line in wheel.splitlines() if line.startswith('Tag:')]
    assert len(tags) == 1 and tags[0].startswith('cp311-abi3-manylinux_'), tags
    assert tags[0].endswith('_' + platform.machine()), (tags, platform.machine())


@needs_wheel
def test_the_extension_carries_the_libcurl_made_for_it() -> None:
    """curl_version() names libcurl of sources.lock with exactly OpenSSL, zlib,
    brotli, zstd and nghttp2: no IDN, PSL, SSH, RTMP, LDAP or GSS-API."""
    from yt_dlp_async import _engine, engine
    version = engine.curl_version()
    parts = dict(part.split('/', 1) for part in version.split())
    assert set(parts) == {'libcurl', 'OpenSSL', 'zlib', 'brotli', 'zstd', 'nghttp2'}, version
    assert parts['libcurl'] == locked_version('curl'), version
    assert parts['nghttp2'] == locked_version('nghttp2'), version
    features = _engine.curl_features()
    assert features['http2'] and features['ssl'] and features['async_dns'] and features['threadsafe'], features


MAPS_CHILD = '''
import importlib.machinery, importlib.util, json, os, sys
def files():
    with open('/proc/self/maps') as f:
        return {l.split(None, 5)[-1].strip() for l in f if len(l.split(None, 5)) == 6 and l.split(None, 5)[-1].startswith('/')}
import ssl, zlib  # what yt-dlp imports anyway: the system's libssl and libz may be mapped for them
path = os.path.join(importlib.util.find_spec('yt_dlp_async').submodule_search_locations[0], '_engine.abi3.so')
loader = importlib.machinery.ExtensionFileLoader('yt_dlp_async._engine', path)
spec = importlib.util.spec_from_file_location('yt_dlp_async._engine', path, loader=loader)
before = files()
engine = importlib.util.module_from_spec(spec)  # the extension alone, not the package's Python modules
loader.exec_module(engine)
assert engine.curl_version().startswith('libcurl/')
json.dump(sorted(files() - before), sys.stdout)
'''


@needs_wheel
def test_importing_the_engine_maps_only_what_it_uses() -> None:
    """The libraries mapped by importing the extension: itself, the grafted
    libzstd and at most the system's libz (the manylinux policy's); no libcurl,
    OpenSSL or nghttp2 file (they are inside the extension) and none of the
    libraries Debian's libcurl links for protocols the engine never speaks."""
    out = subprocess.run([sys.executable, '-c', MAPS_CHILD], capture_output=True, text=True, check=True).stdout
    new = json.loads(out)
    ours = [p for p in new if Path(p).parent in (libs_dir(), site_packages() / 'yt_dlp_async')]
    assert sorted(Path(p).name.split('-')[0] for p in ours) == ['_engine.abi3.so', 'libzstd'], new
    others = [Path(p).name for p in new if p not in ours]
    assert all(re.fullmatch(r'libz\.so\.1[.0-9]*', name) for name in others), new
    assert not [p for p in new if Path(p).name.startswith(UNUSED)], new


@needs_wheel
def test_a_download_through_the_wheel(tmp_path: Path, fault_server) -> None:
    """yt-dlp downloads through the wheel's engine: the file's SHA-256, the engine's line."""
    size = 1_200_000
    proc = run_ytdlp(['-v', '-o', 'video.%(ext)s', fault_server.data_url(size, 'mp4')], tmp_path)
    assert proc.returncode == 0, output(proc)
    assert ENGINE_LINE in proc.stderr, output(proc)
    assert sha256_file(tmp_path / 'video.mp4') == sha256_of(size)


CHILD = '''
import json, os, runpy, sys
report, sys.argv = sys.argv[1], ['yt_dlp'] + sys.argv[2:]
try:
    runpy.run_module('yt_dlp', run_name='__main__')
finally:
    with open('/proc/self/maps') as f, open(report, 'w') as out:
        json.dump({'maps': f.read(), 'hidden': [os.path.getsize(p) for p in json.loads(os.environ['HIDDEN'])]}, out)
'''


@needs_wheel
def test_a_download_with_the_system_libcurl_hidden(tmp_path: Path, fault_server) -> None:
    """yt-dlp in a private mount namespace where /dev/null covers the system's libcurl."""
    hidden = system_libcurls()
    if not hidden:
        pytest.skip('no system libcurl to hide')
    if shutil.which('unshare') is None or os.geteuid() != 0:
        pytest.skip('hiding the system libcurl needs unshare and root')
    mounts = ' && '.join(f'mount --bind /dev/null {p}' for p in hidden)
    size = 1_500_000
    report = tmp_path / 'report.json'
    env = hermetic_env(tmp_path / 'home', {'HIDDEN': json.dumps(hidden)})
    env.pop('LD_LIBRARY_PATH', None)
    env.pop('LD_PRELOAD', None)
    cmd = ['unshare', '--mount', 'sh', '-c', f'{mounts} && exec "$@"', 'sh', sys.executable, '-c', CHILD,
           str(report), '-v', '-o', 'video.%(ext)s', fault_server.data_url(size, 'mp4')]
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, output(proc)
    assert ENGINE_LINE in proc.stderr, output(proc)
    assert sha256_file(tmp_path / 'video.mp4') == sha256_of(size)
    seen = json.loads(report.read_text())
    assert seen['hidden'] == [0] * len(hidden)  # the bind mounts were in place
    assert not mapped_libcurl(seen['maps'])  # libcurl is the one inside the extension
    assert str(site_packages() / 'yt_dlp_async' / '_engine.abi3.so') in mapped_files(seen['maps'])


def test_the_system_store_is_the_one_python_reads(tmp_path: Path, nginx) -> None:
    """No certifi: yt-dlp alone trusts the file Python's ssl reads (SSL_CERT_FILE or
    OpenSSL's default); the engine must trust the same file, whatever CA path the
    libcurl it runs on was built with (a wheel's is the build machine's)."""
    require_hook()
    require_engine()
    size = 700_000
    nginx.put_file('ca/video.mp4', content(size))
    for name, disable in (('alone', True), ('plugin', False)):
        proc = run_ytdlp(['-v', '--compat-options', 'no-certifi', '-o', f'{name}.mp4',
                          nginx.https_url('/ca/video.mp4')], tmp_path,
                         env={'SSL_CERT_FILE': str(nginx.ca_file)}, disable_hook=disable)
        assert proc.returncode == 0, output(proc)
        assert sha256_file(tmp_path / f'{name}.mp4') == sha256_of(size)
        assert (ENGINE_LINE in proc.stderr) == (not disable), output(proc)


def test_a_ca_directory_python_reads_is_trusted_too(tmp_path: Path, nginx) -> None:
    """No certifi, the CA in a hashed directory (SSL_CERT_DIR) and in no file:
    yt-dlp alone trusts it through Python's ssl, and so must the engine (it
    failed with curl error 60 while its CA path was libcurl's compiled one)."""
    require_hook()
    require_engine()
    size = 650_000
    nginx.put_file('capath/video.mp4', content(size))
    ca_dir = tmp_path / 'ca-dir'
    ca_dir.mkdir()
    subject_hash = subprocess.run(['openssl', 'x509', '-hash', '-noout', '-in', str(nginx.ca_file)],
                                  capture_output=True, text=True, check=True).stdout.strip()
    shutil.copy(nginx.ca_file, ca_dir / f'{subject_hash}.0')
    env = {'SSL_CERT_DIR': str(ca_dir), 'SSL_CERT_FILE': str(tmp_path / 'no-such-bundle.pem')}
    for name, disable in (('alone', True), ('plugin', False)):
        proc = run_ytdlp(['-v', '--compat-options', 'no-certifi', '-o', f'{name}.mp4',
                          nginx.https_url('/capath/video.mp4')], tmp_path, env=env, disable_hook=disable)
        assert proc.returncode == 0, output(proc)
        assert sha256_file(tmp_path / f'{name}.mp4') == sha256_of(size)
        assert (ENGINE_LINE in proc.stderr) == (not disable), output(proc)
