"""The cluster-wide per-host connection window (placeholder).

``download_lease`` is the one call the worker task makes around a download:
it holds this worker's share of the host's window in Redis while the download
runs and yields the option overrides that keep the download within that share.
This placeholder holds nothing and overrides nothing; the lease work replaces it.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator


@contextmanager
def download_lease(broker_url: str, url: str, ydl_opts: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Hold the host's share of the cluster window around one download; yield option overrides."""
    yield {}
