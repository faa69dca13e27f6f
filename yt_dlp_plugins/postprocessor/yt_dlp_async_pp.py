"""yt-dlp postprocessor plugin that switches async downloads on where the .pth hook is absent.

    yt-dlp --use-postprocessor AsyncDownloads:when=pre_process URL
    YoutubeDL({'postprocessors': [{'key': 'AsyncDownloads', 'when': 'pre_process'}]})

yt-dlp creates postprocessors in ``YoutubeDL.__init__``, before any download,
so ``__init__`` is where the downloader is activated; ``run`` does nothing.
Options may follow as ``;name=value``: ``concurrent_downloads``, ``chunk_size``,
``async_timeout``, ``async_retry_delay``, ``async_max_retries``.
"""

from __future__ import annotations

from typing import Any

from yt_dlp.postprocessor.common import PostProcessor

_PARAMS = {
    'concurrent_downloads': ('concurrent_downloads', int),
    'chunk_size': ('async_chunk_size', None),
    'async_timeout': ('async_timeout', float),
    'async_retry_delay': ('async_retry_delay', float),
    'async_max_retries': ('async_max_retries', int),
}


class AsyncDownloadsPP(PostProcessor):
    def __init__(self, downloader: Any = None, **kwargs: Any) -> None:
        super().__init__(downloader)
        if downloader is None:
            return
        try:
            from yt_dlp_async.ytdlp import activate
            from yt_dlp_async.ytdlp.options import parse_size
        except Exception as exc:
            downloader.write_debug(f'[async] AsyncDownloads postprocessor: yt_dlp_async failed to import ({exc})')
            return
        for name, value in kwargs.items():
            key, convert = _PARAMS.get(name, (None, None))
            if key is None:
                downloader.report_warning(f'AsyncDownloads postprocessor: unknown option "{name}"')
                continue
            try:
                downloader.params[key] = convert(value) if convert else parse_size(str(value))
                given = downloader.params.get('async_explicit_options')
                if isinstance(given, list) and key not in given:
                    given.append(key)  # an option the user gave (warned about if it cannot take effect)
            except (TypeError, ValueError):
                downloader.report_warning(f'AsyncDownloads postprocessor: invalid {name} "{value}"')
        activate(downloader, 'AsyncDownloads postprocessor')

    def run(self, info: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
        return [], info
