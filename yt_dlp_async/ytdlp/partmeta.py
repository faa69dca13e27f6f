"""The validator (ETag / Last-Modified) of the bytes in a ``NAME.part``.

HttpFD keeps nothing beside a ``.part`` but its bytes, so a resume of a
resource that changed on the server gives a mixed file.  The in-order path
(http_download.py) stores the validator of the response those bytes came
from here, and sends it as ``If-Range`` when it resumes: a changed resource
answers 200 and the file restarts from byte 0.

It lives in the extended attribute ``user.yt-dlp-async.validator`` of the
``.part`` (it goes wherever the file goes, and nothing is left behind), with
the resource size in ``user.yt-dlp-async.size``; on a filesystem without user
xattrs, both in a sidecar ``NAME.part.async-validator`` that is removed with
them.  A ``.part`` without one (left by
yt-dlp alone) resumes as yt-dlp resumes it.  The finished file keeps no
attribute.
"""

from __future__ import annotations

import errno
import os

XATTR = 'user.yt-dlp-async.validator'
#: the resource size, stored with the validator as soon as a response is
#: accepted and before its first byte reaches the ``.part`` (the engine holds
#: the body until then: ``hold_new_validator``)
SIZE_XATTR = 'user.yt-dlp-async.size'
#: a split download's file and control file (segmented_download.py)
SPARSE_SUFFIX = '.part-async'
STATE_SUFFIX = '.ctl'
#: the engine saves the control file as NAME.tmp and renames it (csrc/controlfile.c):
#: the longest name a split download makes
STATE_TEMP_SUFFIX = '.tmp'
SIDECAR_SUFFIX = '.async-validator'
_NO_XATTR = frozenset({errno.ENOTSUP, errno.EOPNOTSUPP, errno.EPERM, errno.ENOSYS})
_MAX_VALIDATOR = 1024


def name_max(directory: str) -> int:
    """The filesystem's longest file name in bytes (255 when it does not say)."""
    try:
        return int(os.pathconf(directory or '.', 'PC_NAME_MAX'))
    except (OSError, ValueError, AttributeError):
        return 255


def name_fits(path: str) -> bool:
    """Whether the last component of ``path`` fits the filesystem's NAME_MAX."""
    directory, base = os.path.split(path)
    return len(os.fsencode(base)) <= name_max(directory)


def _sidecar(path: str) -> str:
    return path + SIDECAR_SUFFIX


def _clean(value: str | bytes | None) -> str | None:
    if isinstance(value, bytes):
        value = value.decode('latin-1')
    if not value or len(value) > _MAX_VALIDATOR or '\n' in value or '\r' in value:
        return None
    return value


def choose(etag: str | None, last_modified: str | None) -> str | None:
    """The validator worth an If-Range: a strong ETag, else Last-Modified."""
    if etag and not etag.startswith('W/'):
        return _clean(etag)
    return _clean(last_modified)


def _get(path: str, name: str) -> str | None:
    """One attribute; raises OSError(ENOTSUP...) when the filesystem has none."""
    try:
        return _clean(os.getxattr(path, name))
    except OSError as exc:
        if exc.errno in _NO_XATTR:
            raise
        return None


def _read_sidecar(path: str) -> list[str | None]:
    try:
        with open(_sidecar(path), encoding='latin-1') as f:
            lines = f.read(2 * _MAX_VALIDATOR + 64).splitlines()
    except OSError:
        return [None, None]
    return [_clean(line.strip()) for line in (lines + ['', ''])[:2]]


def read(path: str) -> str | None:
    """The stored validator of ``path``, or None."""
    try:
        return _get(path, XATTR)
    except (OSError, AttributeError):   # no user xattrs here
        return _read_sidecar(path)[0]


def read_size(path: str) -> int | None:
    """The resource size stored with ``path`` (the response its bytes came from), or None."""
    try:
        value = _get(path, SIZE_XATTR)
    except (OSError, AttributeError):
        value = _read_sidecar(path)[1]
    return int(value) if value and value.isdigit() else None


def _write_sidecar(path: str, validator: str | None, size: int | None) -> None:
    sidecar = _sidecar(path)
    if not name_fits(sidecar):
        return
    try:
        with open(sidecar, 'w', encoding='latin-1', errors='replace') as f:
            f.write(f'{validator or ""}\n{"" if size is None else size}\n')
    except OSError:
        pass


def _set(path: str, name: str, value: str | None) -> None:
    """Set or remove one attribute; raises OSError(ENOTSUP...) when the filesystem has none."""
    try:
        if value is None:
            os.removexattr(path, name)
        else:
            os.setxattr(path, name, value.encode('latin-1', 'replace'))
    except OSError as exc:
        if exc.errno in _NO_XATTR:
            raise


def write(path: str, validator: str | None, size: int | None = None) -> None:
    """Store the validator and resource size of the bytes in ``path`` (None
    removes one); errors are ignored."""
    if validator is None and size is None:
        clear(path)
        return
    try:
        _set(path, XATTR, validator)
        _set(path, SIZE_XATTR, None if size is None else str(size))
    except (OSError, AttributeError):
        _write_sidecar(path, validator, size)


def write_size(path: str, size: int) -> None:
    """Store only the resource size, keeping the stored validator."""
    write(path, read(path), size)


def clear(path: str) -> None:
    """Remove what is stored for ``path`` (attributes and sidecar)."""
    for name in (XATTR, SIZE_XATTR):
        try:
            os.removexattr(path, name)
        except (OSError, AttributeError):
            pass
    try:
        os.remove(_sidecar(path))
    except OSError:
        pass


def remove_split_leftovers(filename: str) -> None:
    """Once ``filename`` is finished some other way (one connection, yt-dlp
    alone), the ``.part-async`` and ``.ctl`` of an earlier split attempt of it,
    and the validator sidecar of an earlier ``.part``, are of no use: remove them."""
    sparse = filename + SPARSE_SUFFIX
    for path in (sparse + STATE_SUFFIX, sparse, _sidecar(filename + '.part')):
        try:
            os.remove(path)
        except OSError:
            pass
