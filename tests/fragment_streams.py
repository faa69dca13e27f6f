"""HLS and DASH streams made by the tests, served by the fault server, and the runs that compare them.

Segments are random bytes (byte-exact checks); ``native`` runs are yt-dlp's own
downloaders (``--no-async-downloads``).  ``--fixup never`` keeps ffmpeg away
from random bytes; ``--ffmpeg-location`` pointing nowhere makes native yt-dlp
decrypt AES-128 itself (without pycryptodomex it would hand the stream to
ffmpeg), so both sides produce the raw concatenation.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from ytdlp_support import run_ytdlp

FRAGMENT_LINE = '[async] Fragments through the engine'
COMMON_ARGS = ['--fixup', 'never', '--ffmpeg-location', '/nonexistent/ffmpeg']


@dataclass
class Stream:
    """Segments (the bytes the output must be) and the playlist/info that describe them."""

    segments: list[bytes]
    info: dict[str, Any]
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def expected(self) -> bytes:
        return b''.join(self.segments)


def random_segments(count: int, base: int = 20_000, step: int = 997) -> list[bytes]:
    return [os.urandom(base + i * step) for i in range(count)]


def info_for(url: str, protocol: str, **fields: Any) -> dict[str, Any]:
    return {
        'id': 'frag', 'title': 'fragments', 'extractor': 'generic', 'extractor_key': 'Generic',
        'webpage_url': url, 'url': url, 'ext': fields.pop('ext', 'mp4'), 'format_id': fields.pop('format_id', 'f'),
        'protocol': protocol, **fields,
    }


def query(params: dict[str, Any] | None) -> str:
    if not params:
        return ''
    return '?' + '&'.join(f'{k}={v}' for k, v in params.items())


def hls_stream(server: Any, name: str, segments: Sequence[bytes], *, faults: dict[int, dict[str, Any]] | None = None,
               media_sequence: int = 0, header: str = '', init: bytes | None = None,
               key_lines: Sequence[str] = (), **info_fields: Any) -> Stream:
    """A VOD playlist of separate segment files (``faults[i]``: query parameters for segment i)."""
    lines = ['#EXTM3U', '#EXT-X-VERSION:3', '#EXT-X-TARGETDURATION:2', f'#EXT-X-MEDIA-SEQUENCE:{media_sequence}']
    if header:
        lines.append(header)
    lines.extend(key_lines)
    if init is not None:
        server.add_file(f'{name}/init.mp4', init)
        lines.append('#EXT-X-MAP:URI="init.mp4"')
    for i, data in enumerate(segments):
        server.add_file(f'{name}/seg{i}.ts', data)
        lines += ['#EXTINF:2.0,', f'seg{i}.ts' + query((faults or {}).get(i))]
    lines.append('#EXT-X-ENDLIST')
    url = server.add_file(f'{name}/index.m3u8', ('\n'.join(lines) + '\n').encode(), 'application/vnd.apple.mpegurl')
    expected = ([init] if init is not None else []) + list(segments)
    return Stream(expected, info_for(url, 'm3u8_native', **info_fields))


def hls_byterange_stream(server: Any, name: str, sizes: Sequence[int], *, init_size: int = 0) -> Stream:
    """One media file; the playlist addresses it with EXT-X-BYTERANGE (explicit and implied offsets)
    and, with ``init_size``, an EXT-X-MAP init section that is a byte range of the same file."""
    blob = os.urandom(init_size + sum(sizes) + 1000)  # trailing bytes nobody asks for
    server.add_file(f'{name}/media.bin', blob)
    lines = ['#EXTM3U', '#EXT-X-VERSION:4', '#EXT-X-TARGETDURATION:2', '#EXT-X-MEDIA-SEQUENCE:0']
    parts = []
    if init_size:
        lines.append(f'#EXT-X-MAP:URI="media.bin",BYTERANGE="{init_size}@0"')
        parts.append(blob[:init_size])
    offset = init_size
    for i, size in enumerate(sizes):
        spec = f'{size}@{offset}' if i % 2 == 0 else f'{size}'  # odd ones continue from the previous range
        lines += ['#EXTINF:2.0,', f'#EXT-X-BYTERANGE:{spec}', 'media.bin']
        parts.append(blob[offset:offset + size])
        offset += size
    lines.append('#EXT-X-ENDLIST')
    url = server.add_file(f'{name}/index.m3u8', ('\n'.join(lines) + '\n').encode(), 'application/vnd.apple.mpegurl')
    return Stream(parts, info_for(url, 'm3u8_native'))


def aes_encrypt(data: bytes, key: bytes, iv: bytes) -> bytes:
    """AES-128-CBC with PKCS#7 padding, by the openssl CLI."""
    out = subprocess.run(['openssl', 'enc', '-aes-128-cbc', '-K', key.hex(), '-iv', iv.hex()],
                         input=data, capture_output=True, check=True)
    return out.stdout


def hls_aes_stream(server: Any, name: str, segments: Sequence[bytes], *, explicit_iv: bool,
                   media_sequence: int = 5, key_rotation: bool = False,
                   faults: dict[int, dict[str, Any]] | None = None) -> Stream:
    """Encrypted segments; without an explicit IV the IV is the media sequence number (yt-dlp's rule)."""
    keys = [os.urandom(16), os.urandom(16)]
    for n, key in enumerate(keys):
        server.add_file(f'{name}/key{n}.bin', key)
    lines = ['#EXTM3U', '#EXT-X-VERSION:3', '#EXT-X-TARGETDURATION:2', f'#EXT-X-MEDIA-SEQUENCE:{media_sequence}']
    iv = os.urandom(16)
    current = -1
    for i, data in enumerate(segments):
        key_index = (i * 2 // len(segments)) if key_rotation else 0
        if key_index != current:
            current = key_index
            attrs = f'METHOD=AES-128,URI="key{key_index}.bin"' + (f',IV=0x{iv.hex()}' if explicit_iv else '')
            lines.append(f'#EXT-X-KEY:{attrs}')
        seg_iv = iv if explicit_iv else (media_sequence + i).to_bytes(16, 'big')
        server.add_file(f'{name}/seg{i}.ts', aes_encrypt(data, keys[key_index], seg_iv))
        lines += ['#EXTINF:2.0,', f'seg{i}.ts' + query((faults or {}).get(i))]
    lines.append('#EXT-X-ENDLIST')
    url = server.add_file(f'{name}/index.m3u8', ('\n'.join(lines) + '\n').encode(), 'application/vnd.apple.mpegurl')
    return Stream(list(segments), info_for(url, 'm3u8_native'), {'keys': keys, 'iv': iv})


def dash_stream(server: Any, name: str, segments: Sequence[bytes], *,
                faults: dict[int, dict[str, Any]] | None = None, **info_fields: Any) -> Stream:
    """A DASH format as yt-dlp's extractors describe it: fragment_base_url + fragment paths."""
    for i, data in enumerate(segments):
        server.add_file(f'{name}/chunk{i}.m4s', data)
    base = server.url(f'/file/{name}/')
    fragments = [{'path': f'chunk{i}.m4s' + query((faults or {}).get(i)), 'duration': 2.0}
                 for i in range(len(segments))]
    info = info_for(server.url(f'/file/{name}/manifest.mpd'), 'http_dash_segments',
                    fragment_base_url=base, fragments=fragments, **info_fields)
    return Stream(list(segments), info)


def write_info(directory: Path, stream: Stream, name: str = 'info.json') -> Path:
    path = directory / name
    path.write_text(json.dumps(stream.info))
    return path


ENGINE = '--async-downloads'
NATIVE = '--no-async-downloads'


def run_one(directory: Path, stream: Stream, switch: str, *args: str, timeout: float = 120
            ) -> subprocess.CompletedProcess[str]:
    """yt-dlp on ``stream`` in ``directory`` (created), output ``out.<ext>``."""
    directory.mkdir(parents=True, exist_ok=True)
    info = write_info(directory, stream)
    return run_ytdlp(['-v', *COMMON_ARGS, switch, '--load-info-json', str(info), '-o', 'out.%(ext)s', *args],
                     directory, timeout=timeout)


def run_both(tmp_path: Path, stream: Stream, *args: str, timeout: float = 120
             ) -> tuple[subprocess.CompletedProcess[str], subprocess.CompletedProcess[str], Path, Path]:
    """The engine's run and native yt-dlp's, each in its own directory; (engine, native, dirs)."""
    engine_dir, native_dir = tmp_path / 'engine', tmp_path / 'native'
    engine = run_one(engine_dir, stream, ENGINE, *args, timeout=timeout)
    native = run_one(native_dir, stream, NATIVE, *args, timeout=timeout)
    return engine, native, engine_dir, native_dir


def files_named(directory: Path, pattern: str) -> list[str]:
    return sorted(p.name for p in directory.glob(pattern))


def read_all(paths: Iterable[Path]) -> bytes:
    return b''.join(p.read_bytes() for p in paths)
