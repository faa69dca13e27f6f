"""``AsyncDashFD``: yt-dlp's DashSegmentsFD (``http_dash_segments``) with the fragments fetched by the engine.

yt-dlp's ``DashSegmentsFD.real_download`` resolves the fragment URLs
(``fragment_base_url``, ``extra_param_to_segment_url``) and prepares the
download; fragment 0 is fatal and the others skippable, as in yt-dlp.  The
``http_dash_segments_generator`` protocol (``--live-from-start``) is never
given to this class.  Resume is exact as for HLS (ExactResume, fragment_resume.py).
"""

from __future__ import annotations

from . import internals
from .fragment_resume import ExactResume
from .fragments import FragmentsViaEngine

DashSegmentsFD = internals.load('yt_dlp.downloader.dash:DashSegmentsFD')


class AsyncDashFD(FragmentsViaEngine, ExactResume, DashSegmentsFD):
    FD_NAME = 'dashsegments'  # yt-dlp's fixups compare this name
