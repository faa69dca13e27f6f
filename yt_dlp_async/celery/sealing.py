"""The cluster's key, and tasks sealed with it: signed (HMAC-SHA256) and encrypted (AES-GCM).

Whoever can write to the Redis can queue tasks; a worker runs only those signed
with the key it holds, which is never in Redis:

  * ``YTDLP_ASYNC_SECRET`` (any string) when set, else
  * the key file ``$XDG_CONFIG_HOME/yt-dlp-async/secret`` (``~/.config/...``), made
    on first use (32 random bytes, hex, mode 0600), as Erlang's cookie: copy it to
    every machine that submits or works.

Two keys are derived from it (HKDF-SHA256): one signs, one encrypts.  A task's
argument is an envelope ``{'yt-dlp-async': 1, 'body': JSON, 'sig': hex}``: ``sig``
is the HMAC of ``body``, whose fields are the key's id (a fingerprint, so a
refusal can say which key signed it), the versions (the worker's routing and
refusal need them) and ``sealed``: the job itself (options, argv, entry, archive
name), AES-GCM encrypted.  So passwords, header values and cookies given on the
command line are never in Redis (nor in its AOF, nor in ``celery inspect``) in the
clear, and a writer without the key can neither read a job nor make one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
from pathlib import Path
from typing import Any

FORMAT = 1
ENV = 'YTDLP_ASYNC_SECRET'


class Refused(Exception):
    """A task this worker does not run: unsigned, signed with another key, or not readable."""


def key_file() -> Path:
    base = os.environ.get('XDG_CONFIG_HOME') or os.path.join(os.path.expanduser('~'), '.config')
    return Path(base) / 'yt-dlp-async' / 'secret'


def _make_key_file(path: Path) -> None:
    """Write a new key to ``path`` (0600), unless another process made it first."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temp = path.with_name(f'.secret.{os.getpid()}.{secrets.token_hex(4)}')
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, (secrets.token_hex(32) + '\n').encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(temp, path)  # fails when it exists: the first key made stays
    except FileExistsError:
        pass
    finally:
        os.unlink(temp)


def secret() -> tuple[bytes, str]:
    """(the secret's bytes, where it comes from)."""
    value = os.environ.get(ENV)
    if value:
        return value.encode(), ENV
    path = key_file()
    if not path.exists():
        _make_key_file(path)
    data = path.read_bytes().strip()
    if not data:
        raise Refused(f'the key file {path} is empty')
    return data, str(path)


def _derive(master: bytes, purpose: bytes) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b'yt-dlp-async', info=purpose).derive(master)


class Keys:
    def __init__(self, master: bytes, origin: str) -> None:
        self.origin = origin
        self.sign = _derive(master, b'sign v1')
        self.seal = _derive(master, b'seal v1')
        self.id = hashlib.sha256(_derive(master, b'id v1')).hexdigest()[:12]


def keys() -> Keys:
    return Keys(*secret())


def seal(job: dict[str, Any], k: Keys | None = None) -> dict[str, Any]:
    """The envelope that carries ``job`` to a worker (see the module docstring)."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    k = k or keys()
    nonce = os.urandom(12)
    clear = json.dumps(job, separators=(',', ':')).encode()
    sealed = base64.b64encode(nonce + AESGCM(k.seal).encrypt(nonce, clear, k.id.encode())).decode()
    body = json.dumps({'key': k.id, 'versions': job.get('versions') or {}, 'label': job.get('label'),
                       'sealed': sealed}, separators=(',', ':'), sort_keys=True)
    return {'yt-dlp-async': FORMAT, 'body': body, 'sig': hmac.new(k.sign, body.encode(), hashlib.sha256).hexdigest()}


def header(envelope: Any) -> dict[str, Any]:
    """The envelope's signed fields, unverified (for routing and log lines only)."""
    try:
        return dict(json.loads(envelope['body']))
    except Exception:
        return {}


def unseal(envelope: Any, k: Keys | None = None) -> dict[str, Any]:
    """The job inside ``envelope``; Refused when it is not signed with our key."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    k = k or keys()
    hint = (f'every submitter and worker needs the same key: {ENV}, or the key file {key_file()} '
            f'copied from the submitter\'s machine')
    if not (isinstance(envelope, dict) and isinstance(envelope.get('body'), str)
            and isinstance(envelope.get('sig'), str)):
        raise Refused(f'refused an unsigned task: this worker runs only tasks signed with its key ({hint})')
    expected = hmac.new(k.sign, envelope['body'].encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, envelope['sig']):
        signer = header(envelope).get('key')
        raise Refused(f'refused a task whose signature does not match this worker\'s key '
                      f'(signed with key {signer or "?"}, this worker has key {k.id} from {k.origin}; {hint})')
    try:
        raw = base64.b64decode(header(envelope)['sealed'])
        clear = AESGCM(k.seal).decrypt(raw[:12], raw[12:], k.id.encode())
        job = json.loads(clear)
    except (InvalidTag, KeyError, ValueError, TypeError) as exc:
        raise Refused(f'refused a signed task whose job cannot be read ({type(exc).__name__})') from None
    if not isinstance(job, dict):
        raise Refused('refused a signed task whose job is not an object')
    return job
