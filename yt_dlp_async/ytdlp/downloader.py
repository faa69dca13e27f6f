"""``AsyncFileDownloader``: yt-dlp's FileDownloader for http/https, backed by the engine.

A drop-in for HttpFD: same params, progress hooks, files and errors (see
http_download.py for the details).  It is chosen by the wrapped
``yt_dlp.downloader._get_suitable_downloader`` when ``params['async_downloads']``
is set, or by ``--downloader async`` (it is registered in yt-dlp's external
downloader table, so it also has the classmethods that table expects).

Importing this module does not import the engine; when the engine cannot be
used, ``real_download`` hands the download to HttpFD after one [debug] line.
"""

from __future__ import annotations

from typing import Any

from . import boundary, fallback, internals, shared_engine

FileDownloader = internals.load('yt_dlp.downloader.common:FileDownloader')


class AsyncFileDownloader(FileDownloader):  # type: ignore[misc, valid-type]
    FD_NAME = 'async'  # "[debug] Invoking async downloader on ..."
    EXE_NAME = 'async'  # get_external_downloader() reads it from every registered class
    SUPPORTED_PROTOCOLS = ('http', 'https')

    # ------------------------------------------- yt-dlp's external downloader interface
    @classmethod
    def get_basename(cls) -> str:
        return 'async'

    @classmethod
    def available(cls, path: str | None = None) -> bool:
        return True  # the engine is checked per download, so that a fallback is logged

    @classmethod
    def supports(cls, info_dict: dict[str, Any]) -> bool:
        protocol = str(info_dict.get('protocol') or '')
        return protocol in cls.SUPPORTED_PROTOCOLS

    @classmethod
    def can_download(cls, info_dict: dict[str, Any], path: str | None = None) -> bool:
        return cls.supports(info_dict)

    @staticmethod
    def supports_manifest(manifest: str) -> bool:
        return False

    # ------------------------------------------------------------------ download
    def download(self, *args: Any, **kwargs: Any) -> Any:
        """FileDownloader.download, then the [debug] lines kept for after it.

        yt-dlp ends the status line (``[download] 100% of ...``, written
        without a newline) only after ``real_download`` returns: a line written
        before that would be glued onto it.
        """
        self._debug_after: list[str] = []
        try:
            return super().download(*args, **kwargs)
        finally:
            lines, self._debug_after = self._debug_after, []
            for line in lines:
                self.write_debug(line)

    def debug_after_status(self, line: str) -> None:
        """Write ``[debug] line`` once the status line has been ended (see download())."""
        pending = getattr(self, '_debug_after', None)
        if isinstance(pending, list):
            pending.append(line)
        else:
            self.write_debug(line)

    def real_download(self, filename: str, info_dict: dict[str, Any]) -> bool:
        reason = fallback.engine_reason(info_dict, self.params)
        if reason is None and filename != '-':
            reason = fallback.target_reason(self.temp_name(filename))
        if reason is None:
            try:
                engine = shared_engine.get_engine(self.params)
                api = shared_engine.load_api()
            except Exception as exc:
                reason = f'the engine could not start ({type(exc).__name__}: {exc})'
        if reason is not None:
            fallback.hand_back('http', reason, self.ydl)
            return self._native_download(filename, info_dict)
        return boundary.guarded(
            self, 'http', boundary.Snapshot.around(filename, [self.temp_name(filename)]),
            lambda: self._engine_download(engine, api, filename, info_dict),
            lambda: self._native_download(filename, info_dict),
            watch_hooks=filename == '-')

    def _engine_download(self, engine: Any, api: Any, filename: str, info_dict: dict[str, Any]) -> bool:
        from . import segmented_download
        refused = segmented_download.refusal(self, filename, info_dict)
        if refused is None:
            return segmented_download.SegmentedDownload(self, engine, api, filename, info_dict).run()
        from .http_download import HttpDownload
        download = HttpDownload(self, engine, api, filename, info_dict)
        download.not_split = refused      # for the -v line at its end
        return download.run()

    def _native_download(self, filename: str, info_dict: dict[str, Any]) -> bool:
        """Let yt-dlp's HttpFD do this download, with the same progress hooks."""
        native = internals.load('yt_dlp.downloader.http:HttpFD')(self.ydl, self.params)
        native._multiline = self._multiline  # one status line, ended by our download()
        for hook in self._progress_hooks:
            if hook != self.report_progress:
                native.add_progress_hook(hook)
        return native.real_download(filename, info_dict)
