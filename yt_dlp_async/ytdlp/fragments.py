"""HLS and DASH fragments through the engine: the part shared by AsyncHlsFD and AsyncDashFD.

yt-dlp's ``HlsFD.real_download`` / ``DashSegmentsFD.real_download`` still
parse the manifest and prepare the download (``.part``, ``.ytdl`` resume
point, "Total fragments" line); ``FragmentsViaEngine`` replaces only
``download_and_append_fragments``, the loop that fetches and appends the
fragments, with ``FragmentPipeline`` (fragment_pipeline.py).  Whatever the
engine cannot do goes to yt-dlp's own loop after one ``[debug]`` line.

``swap(fd, protocol)`` is what selection.choose() asks: the engine's class for
yt-dlp's HlsFD / DashSegmentsFD, or None.
"""

from __future__ import annotations

import urllib.parse
from typing import Any, Callable, Iterable, Mapping

from . import boundary, fallback, fragment_crypto, internals, shared_engine

ENGINE_SCHEMES = ('http', 'https')
#: the [debug] line (with -v) of a fragmented download that goes through the engine
ENGINE_LINE = '[async] Fragments through the engine'


def engine_reason_for(info_dict: Mapping[str, Any], params: Mapping[str, Any]) -> str | None:
    """fallback.engine_reason for a fragmented format (a DASH format may have no manifest URL)."""
    view = dict(info_dict)
    if not view.get('url'):
        fragments = view.get('fragments')
        first = fragments[0] if isinstance(fragments, list) and fragments else {}
        view['url'] = view.get('fragment_base_url') or (first.get('url') if isinstance(first, dict) else None) or ''
    return fallback.engine_reason(view, params)


def fragments_reason(ctx: Mapping[str, Any], fragments: list[dict[str, Any]]) -> str | None:
    """Why the engine cannot fetch these fragments, or None."""
    if ctx.get('live'):
        return 'live streams are not handled by the engine'
    for fragment in fragments:
        scheme = urllib.parse.urlsplit(str(fragment.get('url') or '')).scheme.lower()
        if scheme not in ENGINE_SCHEMES:
            return f'fragment URL scheme "{scheme}" is not handled by the engine'
        method = fragment_crypto.unsupported_method(fragment)
        if method:
            return f'EXT-X-KEY METHOD={method} is not handled by the engine'
    return None


def same_content(content: bytes, frag_index: int) -> bytes:
    """yt-dlp's default ``pack_func``: a fragment is appended as it is (then the engine writes it in C)."""
    return content


class FragmentsViaEngine:
    """Mixin before yt-dlp's FragmentFD subclass: fragments go to the shared engine."""

    #: set by the multi-format downloader: a callable that says the user interrupted
    _async_interrupted: Callable[[], bool] | None = None

    def download_and_append_fragments(
            self, ctx: dict[str, Any], fragments: Iterable[dict[str, Any]], info_dict: dict[str, Any], *,
            is_fatal: Callable[[int], bool] = (lambda idx: False),
            pack_func: Callable[[bytes, int], bytes] = same_content,
            finish_func: Callable[[], bytes] | None = None, tpe: Any = None,
            interrupt_trigger: Any = (True,)) -> bool:
        fragment_list = list(fragments)
        reason = fragments_reason(ctx, fragment_list)
        engine = api = None
        if reason is None:
            try:
                engine = shared_engine.get_engine(self.params)  # type: ignore[attr-defined]
                api = shared_engine.load_api()
            except Exception as exc:
                reason = f'the engine could not start ({type(exc).__name__}: {exc})'
        if reason is not None:
            fallback.hand_back(self.FD_NAME, reason, self.ydl)  # type: ignore[attr-defined]
            return bool(super().download_and_append_fragments(  # type: ignore[misc]
                ctx, fragment_list, info_dict, is_fatal=is_fatal, pack_func=pack_func,
                finish_func=finish_func, tpe=tpe, interrupt_trigger=interrupt_trigger))

        if not self.params.get('skip_unavailable_fragments', True):  # type: ignore[attr-defined]
            is_fatal = lambda _: True  # noqa: E731 - yt-dlp's own rule

        def interrupted() -> bool:
            outside = self._async_interrupted
            return not interrupt_trigger[0] or bool(outside is not None and outside())

        from .fragment_pipeline import FragmentPipeline
        self.write_debug(f'{ENGINE_LINE} ({len(fragment_list)} to download)')  # type: ignore[attr-defined]
        start_index = ctx.get('fragment_index')

        def engine_run() -> bool:
            return FragmentPipeline(
                self, engine, api, ctx, fragment_list, info_dict, is_fatal=is_fatal, pack_func=pack_func,
                finish_func=finish_func, interrupted=interrupted,
                bodies_in_c=pack_func is same_content and finish_func is None).run()

        def native_run() -> bool:
            ctx['fragment_index'] = start_index
            return bool(super(FragmentsViaEngine, self).download_and_append_fragments(  # type: ignore[misc]
                ctx, fragment_list, info_dict, is_fatal=is_fatal, pack_func=pack_func,
                finish_func=finish_func, tpe=tpe, interrupt_trigger=interrupt_trigger))

        tmpfilename = str(ctx.get('tmpfilename') or '')
        return boundary.guarded(self, self.FD_NAME,  # type: ignore[attr-defined]
                                boundary.Snapshot([tmpfilename]),
                                engine_run, native_run)


def swap(fd: Any, protocol: str) -> Any:
    """The engine's downloader class for yt-dlp's choice ``fd``, or None to keep it."""
    HlsFD = internals.load('yt_dlp.downloader.hls:HlsFD')
    DashSegmentsFD = internals.load('yt_dlp.downloader.dash:DashSegmentsFD')
    if fd is HlsFD:
        from .hls import AsyncHlsFD
        return AsyncHlsFD
    if fd is DashSegmentsFD and protocol == 'http_dash_segments':  # never the generator (--live-from-start)
        from .dash import AsyncDashFD
        return AsyncDashFD
    return None


def is_engine_class(fd: Any) -> bool:
    return isinstance(fd, type) and issubclass(fd, FragmentsViaEngine)
