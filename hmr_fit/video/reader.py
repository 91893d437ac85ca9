"""Streaming video input: OpenCV ``VideoCapture`` files (mp4, avi, mov, mkv) and image-sequence folders, one frame at
a time, never the whole clip in memory; plus a background decoding thread (:func:`prefetch`) so that fitting does not
wait on decoding.

Errors are ``InputError`` with one line that says what failed, on which file, and what to do next: an empty file, a
file OpenCV cannot open (corrupt, or no codec for it in this OpenCV build), a file with no decodable frame, an
unsupported suffix.
"""

from __future__ import annotations

import os
import queue
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, TypeVar

import numpy as np

from hmr_fit.errors import InputError

__all__ = ["VIDEO_SUFFIXES", "IMAGE_SUFFIXES", "Frame", "VideoReader", "collect_videos", "has_videos", "prefetch"]

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
DEFAULT_SEQUENCE_FPS = 30.0
_CODEC_HINT = ("re-encode it to H.264 mp4 (ffmpeg -i IN -c:v libx264 -pix_fmt yuv420p OUT.mp4) or to MJPEG avi "
               "(ffmpeg -i IN -c:v mjpeg OUT.avi)")


@dataclass
class Frame:
    """One decoded frame.

    Attributes:
        index: 0-based frame number in the video.
        timestamp_ms: presentation time, milliseconds (strictly increasing; from ``index / fps``).
        image: (H, W, 3) uint8 RGB.
    """

    index: int
    timestamp_ms: int
    image: np.ndarray


def _fourcc_text(code: float) -> str:
    c = int(code)
    text = "".join(chr((c >> (8 * i)) & 0xFF) for i in range(4))
    return text if text.isprintable() and text.strip() else "unknown"


class VideoReader:
    """Frames of one video file or image-sequence folder, decoded lazily.

    Opening checks that the input exists, is not empty, has a supported suffix, and that its first frame decodes, so a
    corrupt file fails here (before any work) rather than mid-batch. Iterating yields :class:`Frame` objects; a file
    whose later frames fail to decode ends early (``frames_read`` < ``frame_count``; ``truncated`` is True).

    Args:
        path: a video file (``VIDEO_SUFFIXES``) or a folder of images (``IMAGE_SUFFIXES``, sorted by name).
        fps: frame rate for image sequences, or to override a file's (0 or None: the file's, else 30).
        max_frames: stop after this many frames (None: all).
    Attributes:
        fps, width, height, frame_count (-1 when the container does not say), codec (fourcc text or "images").
    Raises:
        InputError: missing, empty, unsupported, or undecodable input.
    """

    def __init__(self, path: str | os.PathLike, fps: float | None = None, max_frames: int | None = None) -> None:
        self.path = Path(path)
        self.max_frames = max_frames
        self.frames_read = 0
        self.truncated = False
        self._files: list[Path] | None = None
        self._first: np.ndarray | None = None
        p = self.path
        if not p.exists():
            raise InputError(f"cannot read '{p}': no such file or folder; check the path")
        if p.is_dir():
            self._files = sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
            if not self._files:
                raise InputError(f"cannot read '{p}': the folder holds no images ({', '.join(IMAGE_SUFFIXES)}); "
                                 "put the frames of one clip in one folder")
            self._first = self._read_image(self._files[0])
            self.fps = float(fps) if fps else DEFAULT_SEQUENCE_FPS
            self.frame_count = len(self._files)
            self.codec = "images"
        else:
            if p.suffix.lower() not in VIDEO_SUFFIXES:
                raise InputError(f"cannot read '{p}': unsupported video type '{p.suffix}'; use "
                                 f"{', '.join(VIDEO_SUFFIXES)} or a folder of images")
            if p.stat().st_size == 0:
                raise InputError(f"cannot read '{p}': the file is empty (0 bytes); re-copy or re-export it")
            self._open_capture(fps)
        self.height, self.width = self._first.shape[:2]

    # -- opening ------------------------------------------------------------------------------------------------------
    def _open_capture(self, fps: float | None) -> None:
        import cv2

        cap = cv2.VideoCapture(str(self.path))
        if not cap.isOpened():
            cap.release()
            raise InputError(f"cannot read '{self.path}': OpenCV cannot open it (corrupt file, or no codec for it "
                             f"in this OpenCV build); {_CODEC_HINT}")
        self.codec = _fourcc_text(cap.get(cv2.CAP_PROP_FOURCC))
        ok, bgr = cap.read()
        if not ok or bgr is None or bgr.size == 0:
            cap.release()
            raise InputError(f"cannot read '{self.path}': no frame could be decoded (codec '{self.codec}'; the file "
                             f"is corrupt, truncated, or its codec is missing from this OpenCV build); {_CODEC_HINT}")
        self._cap = cap
        self._first = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        native = cap.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if fps else (float(native) if native and 0 < native < 1000 else DEFAULT_SEQUENCE_FPS)
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        self.frame_count = count if count > 0 else -1

    def _read_image(self, f: Path) -> np.ndarray:
        import cv2

        bgr = cv2.imread(str(f), cv2.IMREAD_COLOR)
        if bgr is None:
            raise InputError(f"cannot read frame '{f}': OpenCV cannot decode it; convert it to JPEG or PNG")
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    # -- reading ------------------------------------------------------------------------------------------------------
    def timestamp_ms(self, index: int) -> int:
        return int(round(index * 1000.0 / self.fps))

    def __iter__(self) -> Iterator[Frame]:
        import cv2

        limit = self.max_frames if self.max_frames is not None else float("inf")
        index = 0
        try:
            while index < limit:
                if index == 0:
                    image = self._first
                elif self._files is not None:
                    if index >= len(self._files):
                        break
                    image = self._read_image(self._files[index])
                else:
                    ok, bgr = self._cap.read()
                    if not ok or bgr is None:
                        self.truncated = 0 < self.frame_count and index < self.frame_count
                        break
                    image = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
                if index == 0:
                    self._first = None  # handed out: do not keep it
                self.frames_read = index + 1
                yield Frame(index, self.timestamp_ms(index), image)
                index += 1
        finally:
            self.close()

    def close(self) -> None:
        cap = getattr(self, "_cap", None)
        if cap is not None:
            cap.release()
            self._cap = None

    def __enter__(self) -> "VideoReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


T = TypeVar("T")
_DONE = object()


def prefetch(items: Iterable[T], maxsize: int = 8) -> Iterator[T]:
    """Iterate ``items`` in a background thread, ``maxsize`` items ahead (a bounded queue, so memory stays flat).

    OpenCV releases the GIL while decoding, so decoding overlaps with fitting and rendering in the caller's thread.
    An exception raised by ``items`` is re-raised in the caller at the point it happened. Closing the returned
    generator early (``break``, an exception in the caller) stops the thread.
    """
    q: queue.Queue = queue.Queue(maxsize=max(1, int(maxsize)))
    stop = threading.Event()

    def put(obj) -> bool:
        while not stop.is_set():
            try:
                q.put(obj, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for item in items:
                if not put(item):
                    return
            put(_DONE)
        except BaseException as exc:  # handed to the consumer
            put(exc)
        finally:
            close = getattr(items, "close", None)
            if stop.is_set() and close is not None:
                try:
                    close()
                except Exception:
                    pass

    thread = threading.Thread(target=work, name="hmr-fit-decode", daemon=True)
    thread.start()
    try:
        while True:
            obj = q.get()
            if obj is _DONE:
                return
            if isinstance(obj, BaseException):
                raise obj
            yield obj
    finally:
        stop.set()
        thread.join(timeout=5.0)


def _has_images(folder: Path) -> bool:
    return any(f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES for f in folder.iterdir())


def collect_videos(inputs: Iterable[str | os.PathLike]) -> tuple[list[Path], list[str]]:
    """Expand inputs into videos; returns (videos, problems).

    A file is a video when its suffix is in ``VIDEO_SUFFIXES`` (given explicitly, any file is taken and fails later
    with a clear message if it is not a video). Folders are walked recursively: every video file is one video, and
    every sub-folder that holds images is one image sequence (a given folder's own images are a sequence too when
    it holds no videos but was given explicitly among videos). Sorted, de-duplicated.
    """
    videos: list[Path] = []
    problems: list[str] = []
    for item in inputs:
        path = Path(item)
        if path.is_file():
            videos.append(path)
        elif path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)
            sequences = sorted(d for d in [path, *path.rglob("*")] if d.is_dir() and _has_images(d))
            if found and path in sequences:
                sequences.remove(path)  # a folder of clips with a poster image is not a sequence
            if not found and not sequences:
                problems.append(f"folder '{path}' holds no videos ({', '.join(VIDEO_SUFFIXES)}) and no image "
                                "sequences")
            videos.extend(found + sequences)
        else:
            problems.append(f"cannot read '{path}': no such file or folder; check the path")
    seen: set[Path] = set()
    unique = []
    for v in videos:
        key = v.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(v)
    return unique, problems


def has_videos(inputs: Iterable[str | os.PathLike]) -> bool:
    """True when an input is a video file or a folder with a video file anywhere below it: the CLI then runs the
    video pipeline (:func:`hmr_fit.cli.videos.run_videos`) instead of the image one."""
    for item in inputs:
        path = Path(item)
        if path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES:
            return True
        if path.is_dir() and any(p.suffix.lower() in VIDEO_SUFFIXES for p in path.rglob("*") if p.is_file()):
            return True
    return False
