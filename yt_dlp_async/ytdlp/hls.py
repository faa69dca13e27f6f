"""``AsyncHlsFD``: yt-dlp's HlsFD (``m3u8_native``) with the fragments fetched by the engine.

yt-dlp's ``HlsFD.real_download`` parses the playlist (EXT-X-KEY, -BYTERANGE,
-MAP, -MEDIA-SEQUENCE, discontinuities, ad segments,
``extra_param_to_segment_url``, ``hls_aes``) and checks what it cannot do
(DRM, SAMPLE-AES: it delegates those to ffmpeg or refuses them, as always);
the fragment loop is FragmentsViaEngine's, the ``.ytdl``/``.part`` bookkeeping
ExactResume's (fragment_resume.py: resume is exact after a crash or a full disk).

One difference is deliberate: without pycryptodomex, yt-dlp hands AES-128
playlists to ffmpeg when it can (its own AES is pure Python).  The engine
decrypts in C, so ``real_download`` runs yt-dlp's code with
``Cryptodome.AES`` seen as present: the function itself is called, only that
one global is bound differently.
"""

from __future__ import annotations

import types
from typing import Any

from . import internals
from .fragment_resume import ExactResume
from .fragments import FragmentsViaEngine

HlsFD = internals.load('yt_dlp.downloader.hls:HlsFD')


class _AesInC:
    """Stands for ``yt_dlp.dependencies.Cryptodome`` in HlsFD.real_download: AES is available."""

    AES = True

    def __getattr__(self, name: str) -> Any:
        Cryptodome = internals.load('yt_dlp.dependencies:Cryptodome')
        return getattr(Cryptodome, name)


def _with_aes_in_c(function: Any) -> Any:
    """``function`` with the global ``Cryptodome`` replaced (None if it does not use that name)."""
    code = getattr(function, '__code__', None)
    module_globals = getattr(function, '__globals__', None)
    if code is None or module_globals is None or 'Cryptodome' not in code.co_names:
        return None
    namespace = dict(module_globals)
    namespace['Cryptodome'] = _AesInC()
    clone = types.FunctionType(code, namespace, function.__name__, function.__defaults__, function.__closure__)
    clone.__kwdefaults__ = function.__kwdefaults__
    return clone


#: ctx key: the resume point, hidden from HlsFD.real_download while it lists the fragments
RESUME_INDEX = '_async_resume_index'


class AsyncHlsFD(FragmentsViaEngine, ExactResume, HlsFD):
    FD_NAME = 'hlsnative'  # yt-dlp's fixups compare this name

    def _prepare_and_start_frag_download(self, ctx: dict[str, Any], info_dict: dict[str, Any]) -> None:
        """Let HlsFD list every fragment, then drop the ones on disk (download_and_append_fragments).

        HlsFD skips the fragments before the resume point before it counts
        them, so the media sequence (the IV of AES-128 without an IV
        attribute) and the offset of an EXT-X-BYTERANGE without ``@`` stop
        advancing: resumed fragments got the wrong IV or byte range.
        """
        super()._prepare_and_start_frag_download(ctx, info_dict)
        if self.params.get('test'):  # HlsFD keeps the first listed fragment only: the next one, as yt-dlp does
            return
        ctx[RESUME_INDEX] = ctx['fragment_index']
        ctx['fragment_index'] = 0

    def download_and_append_fragments(self, ctx: dict[str, Any], fragments: Any, info_dict: dict[str, Any],
                                      **kwargs: Any) -> bool:
        resume = ctx.pop(RESUME_INDEX, None)
        if resume is not None:
            ctx['fragment_index'] = resume
            fragments = [fragment for fragment in fragments if int(fragment['frag_index']) > resume]
        return bool(super().download_and_append_fragments(ctx, fragments, info_dict, **kwargs))

    def real_download(self, filename: str, info_dict: dict[str, Any]) -> bool:
        run = _with_aes_in_c(HlsFD.real_download)
        if run is None:
            return bool(HlsFD.real_download(self, filename, info_dict))
        return bool(run(self, filename, info_dict))
