"""HLS AES-128 for the fragment pipeline: keys fetched once per URI through the engine, decryption in C.

The rules are yt-dlp's (``FragmentFD.decrypter``): the key is
``decrypt_info['KEY']`` (an ``hls_aes`` key) or the body of
``hls_aes.uri`` / ``decrypt_info['URI']``; the IV is ``decrypt_info['IV']``
or the media sequence number as a 16-byte big-endian integer; with
``--test`` nothing is decrypted (the fragment may be cut short).
"""

from __future__ import annotations

import struct
from typing import Any, Callable, Mapping

from . import boundary, internals

#: A key body is 16 bytes; anything bigger than this is not a key.
MAX_KEY_BYTES = 64 << 10


def needs_decryption(fragment: Mapping[str, Any]) -> bool:
    info = fragment.get('decrypt_info') or {}
    return info.get('METHOD') == 'AES-128'


def unsupported_method(fragment: Mapping[str, Any]) -> str | None:
    """The EXT-X-KEY method of a fragment the engine cannot decrypt (SAMPLE-AES ...), else None."""
    method = (fragment.get('decrypt_info') or {}).get('METHOD') or 'NONE'
    return None if method in ('NONE', 'AES-128') else method


def fragment_iv(fragment: Mapping[str, Any]) -> bytes:
    info = fragment.get('decrypt_info') or {}
    return info.get('IV') or struct.pack('>8xq', fragment['media_sequence'])


class KeyCache:
    """AES keys by URI: one engine request per URI, started as soon as a fragment needs it.

    ``submit(url)`` returns an engine task (``memory=True``); ``fetch_native(url)``
    is used for key URIs the engine cannot fetch (not http/https, e.g. ``data:``);
    ``replied(task)`` is called once with each key task that got its key (its
    reply's cookies go to yt-dlp's jar, as its own key request through
    ``ydl.urlopen`` would store them).
    """

    def __init__(self, info_dict: Mapping[str, Any], submit: Callable[[str], Any],
                 fetch_native: Callable[[str], bytes], to_ytdlp_error: Callable[[BaseException], BaseException],
                 replied: Callable[[Any], None] = lambda task: None) -> None:
        self._info_dict = info_dict
        self._submit = submit
        self._fetch_native = fetch_native
        self._to_ytdlp_error = to_ytdlp_error
        self._replied = replied
        self._tasks: dict[str, Any] = {}
        self._keys: dict[str, bytes] = {}

    def key_uri(self, fragment: Mapping[str, Any]) -> str | None:
        info = fragment.get('decrypt_info') or {}
        if info.get('KEY'):
            return None
        hls_aes = self._info_dict.get('hls_aes') or {}
        return (hls_aes.get('uri') if isinstance(hls_aes, dict) else None) or info.get('URI')

    def prefetch(self, fragment: Mapping[str, Any]) -> None:
        """Start fetching the fragment's key (if it needs one that is not known yet)."""
        if not needs_decryption(fragment):
            return
        uri = self.key_uri(fragment)
        if uri and uri not in self._keys and uri not in self._tasks and uri.lower().startswith(('http:', 'https:')):
            self._tasks[uri] = self._submit(uri)

    def key_for(self, fragment: Mapping[str, Any]) -> bytes:
        info = fragment['decrypt_info']
        if info.get('KEY'):
            return bytes(info['KEY'])
        uri = self.key_uri(fragment)
        if not uri:
            raise ValueError('an AES-128 fragment has no key URI')
        key = self._keys.get(uri)
        if key is None:
            task = self._tasks.pop(uri, None)
            if task is None and not uri.lower().startswith(('http:', 'https:')):
                key = self._fetch_native(uri)
            else:
                if task is None:
                    task = self._submit(uri)
                try:
                    key = self._take(uri, task)
                except Exception as exc:
                    raise self._to_ytdlp_error(exc) from exc
            self._keys[uri] = key
        info['KEY'] = key  # as yt-dlp's decrypter caches it
        return key

    def _take(self, uri: str, task: Any) -> bytes:
        """The key a finished task fetched (its failure raised), its reply's cookies stored."""
        key: bytes = task.body()
        self._keys[uri] = key
        self._replied(task)
        return key

    def collect(self) -> None:
        """Take the keys that have arrived (failures stay for ``key_for`` to raise)."""
        for uri, task in list(self._tasks.items()):
            if task.done():
                try:
                    self._take(uri, task)
                except Exception:
                    continue
                del self._tasks[uri]

    def in_flight(self) -> Any:
        """A key task still waiting for its reply, or None."""
        return next((task for task in self._tasks.values() if not task.done()), None)

    def cancel(self) -> None:
        for task in self._tasks.values():
            try:
                task.cancel()
            except Exception:
                pass
        self._tasks.clear()


def decrypts_in_c(key: bytes, iv: bytes, size: int) -> bool:
    """True when C decrypts this fragment (else yt-dlp's AES does: ``decrypt``)."""
    return len(key) == 16 and len(iv) == 16 and size % 16 == 0


def decrypt(data: bytes, key: bytes, iv: bytes, api: Any) -> bytes:
    """AES-128-CBC in C (padding dropped as yt-dlp does); yt-dlp's own AES for what C refuses."""
    if decrypts_in_c(key, iv, len(data)):
        return bytes(api.aes128_cbc_decrypt(data, key, iv))
    aes_cbc_decrypt_bytes = internals.load('yt_dlp.aes:aes_cbc_decrypt_bytes')
    unpad_pkcs7 = internals.load('yt_dlp.aes:unpad_pkcs7')
    try:
        return bytes(unpad_pkcs7(aes_cbc_decrypt_bytes(data, key, iv)))
    except Exception as exc:
        if len(key) == 16 and len(iv) == 16:
            raise
        # a key (or IV) of the wrong length is the server's fault, and yt-dlp's AES fails on it too
        raise boundary.ServerFault(
            f'the AES-128 key is {len(key)} bytes and the IV {len(iv)} (16 each expected): yt-dlp\'s AES '
            f'fails on them ({type(exc).__name__}: {exc})') from exc
