"""Build yt_dlp_async._engine (csrc/*.c) against the system libcurl.

libcurl is found with ``pkg-config libcurl``, else ``curl-config``; set
``YTDLP_ASYNC_CURL_CONFIG`` to point at a specific curl-config.  Without the
headers the build stops with one line naming the package to install.

Environment switches:
  YTDLP_ASYNC_SANITIZE=1  build with AddressSanitizer and UBSan
  YTDLP_ASYNC_DEBUG=1     -O0 -g, asserts on
  YTDLP_ASYNC_WERROR=0    do not turn warnings into errors (default: on)
  YTDLP_ASYNC_PORTABLE=1  only POSIX.1-2008 (-DYTDLP_ASYNC_PORTABLE, no _GNU_SOURCE):
                          a pipe instead of eventfd (docs/portability.md)
  YTDLP_ASYNC_LIMITED_API=0  build against the full C API (default on
                          CPython >= 3.11: the limited API, Py_LIMITED_API 3.11,
                          whose cp311-abi3 wheel serves every CPython >= 3.11;
                          docs/wheel.md has the measurement: no cost)
"""

from __future__ import annotations

import glob
import os
import shlex
import shutil
import subprocess
import sys
import textwrap

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.command.build_py import build_py

MIN_CURL = (7, 68, 0)  # curl_multi_poll + curl_multi_wakeup
# The oldest limited API the binding (csrc/module.c and the files beside it)
# builds against: "y*" (the buffer protocol) joined the limited API in 3.11.
LIMITED_API = ("0x030B0000", "cp311")


def _env_flag(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off"):
        return False
    sys.exit(f"error: {name}={value!r}: expected 1/0, true/false, yes/no or on/off")


def _fail(message: str) -> None:
    """Stop the build with the message alone, not a compiler traceback."""
    sys.stderr.write(" ".join(textwrap.dedent(message).split()) + "\n")
    sys.exit(1)


MISSING_CURL = (
    "error: libcurl's development files were not found (pkg-config libcurl, curl-config): "
    "install libcurl4-openssl-dev (Debian/Ubuntu) or libcurl-devel (Fedora), then retry"
)


def _run(cmd: list[str]) -> str | None:
    try:
        out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.stdout.strip()


def _curl_flags() -> tuple[str, list[str], list[str]]:
    """Return (version, cflags, libs) for libcurl, or exit with a clear message."""
    curl_config = os.environ.get("YTDLP_ASYNC_CURL_CONFIG")
    if not curl_config and shutil.which("pkg-config"):
        version = _run(["pkg-config", "--modversion", "libcurl"])
        if version:
            cflags = _run(["pkg-config", "--cflags", "libcurl"]) or ""
            libs = _run(["pkg-config", "--libs", "libcurl"]) or "-lcurl"
            return version, shlex.split(cflags), shlex.split(libs)
    curl_config = curl_config or shutil.which("curl-config")
    if curl_config:
        version = (_run([curl_config, "--version"]) or "").replace("libcurl", "").strip()
        cflags = _run([curl_config, "--cflags"])
        libs = _run([curl_config, "--libs"])
        if version and cflags is not None and libs is not None:
            return version, shlex.split(cflags), shlex.split(libs)
    _fail(MISSING_CURL)
    raise AssertionError("unreachable")


def _crypto_libs() -> list[str]:
    """libcrypto, for AES-128 (HLS).  libcurl4-openssl-dev pulls in libssl-dev."""
    libs = _run(["pkg-config", "--libs", "libcrypto"]) if shutil.which("pkg-config") else None
    if libs is None:
        if not any(os.path.exists(os.path.join(d, "openssl", "evp.h")) for d in ("/usr/include", "/usr/local/include")):
            _fail("""
                error: OpenSSL's libcrypto development files not found.
                Install them and retry: `apt-get install libssl-dev` on Debian/Ubuntu,
                `dnf install openssl-devel` on Fedora.
            """)
        libs = "-lcrypto"
    return shlex.split(libs)


def _check_headers(cflags: list[str]) -> None:
    incdirs = [f[2:] for f in cflags if f.startswith("-I")] + ["/usr/include", "/usr/local/include"]
    if not any(os.path.exists(os.path.join(d, "curl", "curl.h")) for d in incdirs):
        if not any(glob.glob(os.path.join(d, "*", "curl", "curl.h")) for d in incdirs):
            _fail(MISSING_CURL)


def _version_tuple(text: str) -> tuple[int, ...]:
    parts = []
    for piece in text.split("."):
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


def _limited_api() -> bool:
    """The limited API where it can be had: CPython 3.11 or newer."""
    possible = sys.implementation.name == "cpython" and sys.version_info >= (3, 11)
    return possible and _env_flag("YTDLP_ASYNC_LIMITED_API", True)


def _options() -> dict[str, dict[str, str]]:
    """Tag the wheel cp311-abi3 when the extension uses the limited API."""
    return {"bdist_wheel": {"py_limited_api": LIMITED_API[1]}} if _limited_api() else {}


def _extension() -> Extension:
    version, cflags, libs = _curl_flags()
    _check_headers(cflags)
    if _version_tuple(version) < MIN_CURL:
        _fail(f"""
            error: libcurl {version} is too old; yt-dlp-async needs libcurl >= 7.68.0
            (curl_multi_poll and curl_multi_wakeup).  Upgrade libcurl4-openssl-dev / libcurl-devel.
        """)
    compile_args = ["-std=c11", "-Wall", "-Wextra", "-fvisibility=hidden"]
    if _env_flag("YTDLP_ASYNC_PORTABLE", False):
        compile_args += ["-DYTDLP_ASYNC_PORTABLE", "-D_POSIX_C_SOURCE=200809L"]
    else:
        compile_args.append("-D_GNU_SOURCE")
    link_args: list[str] = []
    if _env_flag("YTDLP_ASYNC_WERROR", True):
        compile_args.append("-Werror")
    if _env_flag("YTDLP_ASYNC_DEBUG", False) or _env_flag("YTDLP_ASYNC_SANITIZE", False):
        compile_args += ["-O0", "-g", "-UNDEBUG"]
    if _env_flag("YTDLP_ASYNC_SANITIZE", False):
        san = ["-fsanitize=address,undefined", "-fno-omit-frame-pointer", "-fno-sanitize-recover=undefined"]
        compile_args += san
        link_args += san
    limited = _limited_api()
    return Extension(
        "yt_dlp_async._engine",
        sources=sorted(glob.glob("csrc/*.c")),
        depends=sorted(glob.glob("csrc/*.h")),
        include_dirs=["csrc"] + [f[2:] for f in cflags if f.startswith("-I")],
        define_macros=[("Py_LIMITED_API", LIMITED_API[0])] if limited else [],
        py_limited_api=limited,
        extra_compile_args=[f for f in cflags if not f.startswith("-I")] + compile_args,
        extra_link_args=libs + _crypto_libs() + link_args + ["-pthread"],
    )


class build_py_with_pth(build_py):
    """Also install yt_dlp_async.pth at the top of site-packages.

    The .pth line imports yt_dlp_async_hook, which only registers an import
    hook (it imports neither yt_dlp nor the extension).
    """

    def run(self) -> None:
        super().run()
        self.copy_file("yt_dlp_async.pth", os.path.join(self.build_lib, "yt_dlp_async.pth"))

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        return super().get_outputs(include_bytecode) + [os.path.join(self.build_lib, "yt_dlp_async.pth")]


class build_ext_by_flags(build_ext):
    """Compile every file again when the flags changed (YTDLP_ASYNC_PORTABLE, _SANITIZE, _DEBUG, _LIMITED_API).

    setuptools only compares file times, and pip builds in the same build/
    directory, so a switch alone would otherwise keep the old objects.
    """

    def run(self) -> None:
        flags = "\n".join([str(m) for e in self.extensions for m in e.define_macros]
                          + [a for e in self.extensions for a in e.extra_compile_args + e.extra_link_args])
        stamp = os.path.join(self.build_temp, "yt_dlp_async-flags.txt")
        try:
            with open(stamp) as f:
                self.force = self.force or f.read() != flags
        except OSError:
            self.force = True
        for ext in self.extensions:  # a build with other flags may have left another ABI's file
            built = os.path.join(self.build_lib, self.get_ext_filename(self.get_ext_fullname(ext.name)))
            stem = os.path.basename(built).split(".")[0]
            for path in glob.glob(os.path.join(os.path.dirname(built), stem + ".*")):
                if path != built and path.endswith((".so", ".pyd")):
                    os.remove(path)
        super().run()
        os.makedirs(self.build_temp, exist_ok=True)
        with open(stamp, "w") as f:
            f.write(flags)


setup(ext_modules=[_extension()], cmdclass={"build_py": build_py_with_pth, "build_ext": build_ext_by_flags},
      options=_options())
