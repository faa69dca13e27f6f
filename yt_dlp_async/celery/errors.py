"""The errors of the queue path (importable by the submitter and the worker alike)."""

from __future__ import annotations


class QueueUnreachable(Exception):
    """The Redis at the queue URL did not answer."""


class EntryError(Exception):
    """One entry failed on its worker; the message is yt-dlp's error text (without ``ERROR: ``)."""
