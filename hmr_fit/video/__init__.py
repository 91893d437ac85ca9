"""Videos: streaming frames (reader), stable track ids (track), temporal terms (smooth), the resumable per-video
runner (runner), local/Ray engines (engine) and the batch report (report).

Heavy modules (torch, OpenCV, Ray) load on use: ``from hmr_fit.video.runner import VideoRunner``.
"""

from hmr_fit.video.reader import VIDEO_SUFFIXES, VideoReader, collect_videos, has_videos

__all__ = ["VIDEO_SUFFIXES", "VideoReader", "collect_videos", "has_videos"]
