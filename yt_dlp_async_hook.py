"""Start-up hook for yt-dlp-async, run by ``yt_dlp_async.pth`` at interpreter start.

It only puts a small finder at the front of ``sys.meta_path``.  When one of
yt-dlp's modules listed in ``PATCHED_MODULES`` is imported later, the finder
lets the normal loader execute it and then hands the fresh module to
``yt_dlp_async.ytdlp.patches.on_module_loaded``.

Rules, because every Python start in this environment pays for this file:
  * import nothing beyond ``sys`` and ``os`` (both already loaded by ``site``);
  * never import yt_dlp, yt_dlp_async or the C extension here;
  * never raise: a failing patch must leave yt-dlp working.

``YTDLP_ASYNC_DISABLE=1`` in the environment turns the hook off.
"""

from __future__ import annotations

import os
import sys

PATCHED_MODULES = frozenset({
    'yt_dlp',
    'yt_dlp.options',
    'yt_dlp.downloader',
    'yt_dlp.YoutubeDL',
})

#: Errors from running the patches, kept for ``yt-dlp -v`` (see patches.py).
ERRORS: list[str] = []


def disabled() -> bool:
    return os.environ.get('YTDLP_ASYNC_DISABLE', '').strip().lower() in ('1', 'true', 'yes', 'on')


def _stub_package(error: BaseException) -> None:
    """Make ``yt_dlp_async.ytdlp`` importable although ``yt_dlp_async`` failed to import.

    ``yt_dlp_async/__init__.py`` imports the C extension; when that fails the
    yt-dlp patches must still load, so that the options parse and every
    download falls back to yt-dlp's own downloader with a [debug] reason.  The
    stub package raises the original ImportError for any engine name.
    """
    import importlib.util
    import types

    spec = importlib.util.find_spec('yt_dlp_async')
    if spec is None or not spec.submodule_search_locations:
        raise error
    stub = types.ModuleType('yt_dlp_async', 'yt-dlp-async (the engine failed to import)')
    stub.__path__ = list(spec.submodule_search_locations)  # type: ignore[attr-defined]
    message = f'{type(error).__name__}: {error}'

    def __getattr__(name: str) -> object:
        if name.startswith('__'):
            raise AttributeError(name)
        raise ImportError(f'yt_dlp_async failed to import ({message})', name='yt_dlp_async')

    stub.__getattr__ = __getattr__  # type: ignore[attr-defined]
    sys.modules['yt_dlp_async'] = stub


def _import_patches() -> object:
    try:
        import yt_dlp_async  # noqa: F401
    except (ImportError, OSError) as exc:
        _stub_package(exc)
    from yt_dlp_async.ytdlp import patches
    return patches


def _run_patches(module: object) -> None:
    try:
        _import_patches().on_module_loaded(module)  # type: ignore[attr-defined]
    except Exception as exc:  # never break yt-dlp
        ERRORS.append(f'{getattr(module, "__name__", module)}: {type(exc).__name__}: {exc}')


class _PatchingLoader:
    """Wraps a module's real loader: executes it, then runs the patches."""

    def __init__(self, loader: object) -> None:
        self._loader = loader

    def create_module(self, spec: object) -> object:
        create = getattr(self._loader, 'create_module', None)
        return create(spec) if create is not None else None

    def exec_module(self, module: object) -> None:
        # Put the real loader back so that reload(), inspect and resources see it.
        try:
            module.__loader__ = self._loader  # type: ignore[attr-defined]
            module.__spec__.loader = self._loader  # type: ignore[attr-defined]
        except AttributeError:
            pass
        self._loader.exec_module(module)  # type: ignore[attr-defined]
        _run_patches(module)

    def __getattr__(self, name: str) -> object:
        return getattr(self._loader, name)


class YtdlpPatchFinder:
    """A meta path finder that only answers for the modules in PATCHED_MODULES."""

    def find_spec(self, fullname: str, path: object = None, target: object = None) -> object:
        if fullname not in PATCHED_MODULES:
            return None
        spec = None
        for finder in sys.meta_path:
            if isinstance(finder, YtdlpPatchFinder):
                continue
            find_spec = getattr(finder, 'find_spec', None)
            if find_spec is None:
                continue
            spec = find_spec(fullname, path, target)
            if spec is not None:
                break
        if spec is None:
            return None
        loader = getattr(spec, 'loader', None)
        if loader is None or not hasattr(loader, 'exec_module') or isinstance(loader, _PatchingLoader):
            return spec
        spec.loader = _PatchingLoader(loader)  # type: ignore[attr-defined]
        return spec


def installed() -> bool:
    return any(isinstance(finder, YtdlpPatchFinder) for finder in sys.meta_path)


def install(force: bool = False) -> bool:
    """Insert the finder (once).  Returns True when it is in place."""
    if disabled() and not force:
        return False
    if not installed():
        sys.meta_path.insert(0, YtdlpPatchFinder())
    return True


install()
