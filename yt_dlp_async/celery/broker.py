"""A worker that outlives a Redis restart: the kombu fault behind its death, worked around.

The fault (kombu 5.3 to 5.7, ``kombu/transport/redis.py``): when the broker connection
is lost, Celery closes the connection, which detaches its transport
(``Connection._do_close_transport`` sets ``transport.client = None``); closing a channel
of it afterwards gives its unacknowledged messages back (``QoS.restore_unacked_once`` ->
``QoS.restore_unacked``) over a new Redis client built from ``transport.client`` ->
``AttributeError: 'NoneType' object has no attribute 'hostname'`` in
``Channel._connparams``, which Celery reports as ``Unrecoverable error`` and the worker
exits, its running downloads with it.  Reproduced without Celery in
tests/test_celery_faults.py (``test_kombu_restore_after_the_transport_is_gone``).

The work-around: with no transport left, ``restore_unacked`` gives nothing back and says
so.  Nothing is lost by it: the messages stay in Redis's ``unacked`` hash, so Redis hands
them out again after the visibility timeout (with persistence), the submitter's Watchdog
queues them again (without), and the downloads this worker runs meanwhile go on and are
acknowledged on the new connection.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

log = logging.getLogger('yt_dlp_async.celery')
_PATCHED = '_yt_dlp_async_patched'


def _transport_gone(qos: Any) -> bool:
    connection = getattr(getattr(qos, 'channel', None), 'connection', None)
    return connection is None or getattr(connection, 'client', None) is None


def patch_kombu() -> None:
    """Install the work-around (once; a no-op when kombu's Redis transport is not there)."""
    try:
        from kombu.transport import redis as transport
    except ImportError:
        return
    original = transport.QoS.restore_unacked
    if getattr(original, _PATCHED, False):
        return

    @functools.wraps(original)
    def restore_unacked(self: Any, client: Any = None) -> Any:
        if client is None and _transport_gone(self):
            count = len(getattr(self, '_delivered', ()) or ())
            log.warning('the broker connection is gone: %d unacknowledged message(s) stay in Redis, given out '
                        'again after the visibility timeout (running downloads go on)', count)
            return None
        return original(self, client)  # type: ignore[no-untyped-call]

    setattr(restore_unacked, _PATCHED, True)
    setattr(transport.QoS, 'restore_unacked', restore_unacked)
