"""The validator (ETag / Last-Modified) of the bytes in a ``NAME.part``.

HttpFD keeps nothing beside a ``.part`` but its bytes, so a resume of a
resource that changed on the server gives a mixed file.  The in-order path
(http_download.py) stores the validator of the response those bytes came
from here, and sends it as ``If-Range`` when it resumes: a changed resource
answers 200 and the file restarts from byte 0.

It lives in the extended attribute ``user.yt-dlp-async.validator`` of the
``.part`` (it goes wherever the file goes, and nothing is left behind); on a
filesystem without user xattrs, in a sidecar ``NAME.part.async-validator``
that is removed with the validator.  A ``.part`` without one (left by
yt-dlp alone) resumes as yt-dlp resumes it.  The finished file keeps no
attribute.
"""

from __future__ import annotations

import errno
import os

XATTR = 'user.yt-dlp-async.validator'
#: a split download's file and control file (segmented_download.py)
SPARSE_SUFFIX = '.part-async'
STATE_SUFFIX = '.ctl'
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


def read(path: str) -> str | None:
    """The stored validator of ``path``, or None."""
    try:
        return _clean(os.getxattr(path, XATTR))
    except OSError as exc:
        if exc.errno not in _NO_XATTR and exc.errno != errno.ENODATA:
            return None
    except AttributeError:      # no xattr support in this os module
        pass
    try:
        with open(_sidecar(path), encoding='latin-1') as f:
            return _clean(f.read(_MAX_VALIDATOR + 1).strip())
    except OSError:
        return None


def write(path: str, validator: str | None) -> None:
    """Store (or, with None, remove) the validator of ``path``; errors are ignored."""
    if validator is None:
        clear(path)
        return
    try:
        os.setxattr(path, XATTR, validator.encode('latin-1', 'replace'))
        return
    except OSError as exc:
        if exc.errno not in _NO_XATTR:
            return
    except AttributeError:
        pass
    sidecar = _sidecar(path)
    if not name_fits(sidecar):
        return
    try:
        with open(sidecar, 'w', encoding='latin-1', errors='replace') as f:
            f.write(validator)
    except OSError:
        pass


def clear(path: str) -> None:
    """Remove the validator of ``path`` (attribute and sidecar)."""
    try:
        os.removexattr(path, XATTR)
    except (OSError, AttributeError):
        pass
    try:
        os.remove(_sidecar(path))
    except OSError:
        pass


def remove_split_leftovers(filename: str) -> None:
    """Once ``filename`` is finished some other way (one connection, yt-dlp
    alone), the ``.part-async`` and ``.ctl`` of an earlier split attempt of it
    are of no use: remove them."""
    sparse = filename + SPARSE_SUFFIX
    for path in (sparse + STATE_SUFFIX, sparse):
        try:
            os.remove(path)
        except OSError:
            pass
