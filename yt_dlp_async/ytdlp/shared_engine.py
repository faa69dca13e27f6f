"""One process-wide AsyncDownloadEngine per engine configuration, created lazily.

yt-dlp creates a new FileDownloader for every download, so the engine (its
thread, connection pool and per-host caps) lives here instead, keyed by the
settings that can only be given at construction.  Engines are closed at exit
by the engine binding (engine.py closes every live engine) and forgotten in a
forked child (the engine refuses use after fork()).
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Mapping

_lock = threading.Lock()
_engines: dict[EngineConfig, Any] = {}
_owner_pid = os.getpid()
_api: ModuleType | None = None
_api_error: str | None = None


class EngineUnavailable(RuntimeError):
    """The C extension (or the package around it) cannot be imported."""


def load_api() -> ModuleType:
    """Return the ``yt_dlp_async`` module with the engine API, or raise EngineUnavailable."""
    global _api, _api_error
    if _api is not None:
        return _api
    if _api_error is not None:
        raise EngineUnavailable(_api_error)
    try:
        import yt_dlp_async as api
        for name in ('AsyncDownloadEngine', 'AsyncDownloadError', 'curl_version'):
            getattr(api, name)
    except Exception as exc:  # ImportError, OSError from the loader, AttributeError
        _api_error = f'{type(exc).__name__}: {exc}'
        raise EngineUnavailable(_api_error) from exc
    _api = api
    return api


def unavailable_reason() -> str | None:
    """None when the engine can be used, else why not (one line)."""
    try:
        load_api()
    except EngineUnavailable as exc:
        return f'the engine failed to load ({exc})'
    return None


def curl_version() -> str | None:
    try:
        return str(load_api().curl_version())
    except Exception:
        return None


@dataclass(frozen=True)
class EngineConfig:
    max_connections: int
    max_host_connections: int
    connect_timeout: float
    stall_timeout: float
    max_retries: int
    retry_base_delay: float | None

    def kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            'max_connections': self.max_connections,
            'max_host_connections': self.max_host_connections,
            'connect_timeout': self.connect_timeout,
            'stall_timeout': self.stall_timeout,
            'max_retries': self.max_retries,
        }
        if self.retry_base_delay is not None:
            kwargs['retry_base_delay'] = self.retry_base_delay
        return kwargs


def _number(value: Any, default: float) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return default
    return number if number > 0 else default


def config_from_params(params: Mapping[str, Any]) -> EngineConfig:
    host_cap = int(params.get('async_host_connections') or 16)
    timeout = _number(params.get('async_timeout'), _number(params.get('socket_timeout'), 20.0))
    retries = params.get('async_max_retries')
    delay = params.get('async_retry_delay')
    return EngineConfig(
        max_connections=max(64, host_cap),
        max_host_connections=max(1, host_cap),
        connect_timeout=timeout,
        stall_timeout=timeout,
        max_retries=int(retries) if retries is not None else 0,
        retry_base_delay=float(delay) if delay is not None else None,
    )


def get_engine(params: Mapping[str, Any]) -> Any:
    """The shared engine for these params (created on first use)."""
    global _owner_pid
    api = load_api()
    config = config_from_params(params)
    with _lock:
        if os.getpid() != _owner_pid:  # forked child: the parent's engines are unusable
            _engines.clear()
            _owner_pid = os.getpid()
        engine = _engines.get(config)
        if engine is None:
            engine = api.AsyncDownloadEngine(**config.kwargs())
            _engines[config] = engine
        return engine


def engines() -> list[Any]:
    """The shared engines of this process (for the run summary, summary.py)."""
    with _lock:
        return list(_engines.values()) if os.getpid() == _owner_pid else []

