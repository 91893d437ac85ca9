"""Offline multi-person 2D pose detection: MediaPipe Tasks ``PoseLandmarker`` on the shipped ``.task`` bundle.

The bundle (``data/pose_landmarker_full.task``, BlazePose GHUM "full") is rebuilt from the mediapipe 0.10.21
wheel by ``scripts/build_pose_task.py``; nothing is downloaded at run time.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from pathlib import Path

import numpy as np

from hmr_fit.assets import data_path
from hmr_fit.errors import InputError, ModelFileError
from hmr_fit.io.images import ImageInfo, read_image, resize_for_detection
from hmr_fit.keypoints.formats import from_mediapipe
from hmr_fit.keypoints.person import Person, keypoint_box, sort_people
from hmr_fit.keypoints.quality import PersonFilter

MODEL_FILE = "pose_landmarker_full.task"
RUNNING_MODES = ("image", "video")

# LiteRT/MediaPipe print these on stderr while loading the models and on the first frame; all are harmless
# (dependencies.md §6; the NORM_RECT one is google-ai-edge/mediapipe#5639, printed by the stock pose and face
# landmarker examples too). Any other line is passed through unchanged.
_BENIGN_STDERR = re.compile(
    r"^(INFO: |I\d{4} )"
    r"|Sparsity tensors may not yet be fully supported"
    r"|Logging before InitGoogle\(\)"
    r"|Input tensor memory is not aligned"
    r"|has an unaligned buffer"
    r"|All log messages before absl::InitializeLog\(\)"
    r"|Using NORM_RECT without IMAGE_DIMENSIONS is only supported for the square ROI"
)


@contextlib.contextmanager
def _filtered_stderr(enabled: bool = True):
    """Capture file descriptor 2 (C++ logging included) and re-emit every line that is not known-benign."""
    if not enabled:
        yield
        return
    try:
        saved = os.dup(2)
    except OSError:  # no usable fd 2 (embedded interpreters): nothing to filter
        yield
        return
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            kept = [ln for ln in tmp.read().decode("utf-8", "replace").splitlines(keepends=True)
                    if ln.strip() and not _BENIGN_STDERR.search(ln)]
            if kept:
                os.write(2, "".join(kept).encode())


class PoseDetector:
    """MediaPipe pose landmarker for up to ``num_poses`` people per image; load once, call many times.

    Not thread-safe: use one detector per thread. Use it as a context manager or call ``close()``.

    Limitations (measured on bundled photos, see tests/keypoints/test_pose_detect.py and docs/benchmarks.md):
    * Multi-person recall is limited. MediaPipe's person detector sees the whole image letterboxed to
      224 x 224 px and suppresses people whose body-sized regions overlap, so people standing side by side
      or small in a wide image are often missed (two photos pasted edge to edge: one person found; 256 px
      apart: both). The BlazePose model card lists multi-person input as out of scope.
    * Video mode smooths landmarks over time (they lag fast motion slightly), and the returned order is
      re-sorted by box area on every frame: it is not a track identity.

    Args:
        model_path: ``.task`` bundle; None uses the shipped ``pose_landmarker_full.task``.
        num_poses: most people returned per image (N >= 1).
        running_mode: "image" (each call independent) or "video" (tracks people from frame to frame; every
            call needs a strictly increasing ``timestamp_ms``).
        min_detection_confidence: MediaPipe's person-detector score threshold.
        min_presence_confidence: MediaPipe's pose-presence threshold on the landmark model.
        min_tracking_confidence: video mode: below this the tracker re-runs the person detector.
        max_side: images whose longer side exceeds this are downscaled (bilinear) for detection;
            keypoints are still returned in original pixels. None or 0 disables. MediaPipe itself runs its
            networks at 224/256 px, so this mostly saves conversion time on huge photos.
        min_keypoint_confidence, min_confident_keypoints, min_box_size: quality check (``PersonFilter``);
            rejected people are returned with ``reject_reason`` set, never silently dropped.
        quiet: filter MediaPipe's known-harmless LiteRT INFO/WARNING lines from stderr (other lines pass).
    Raises:
        ValueError: an argument is out of range.
        ModelFileError: the ``.task`` file is missing or MediaPipe cannot load it.
    """

    def __init__(self, model_path: str | os.PathLike | None = None, num_poses: int = 4,
                 running_mode: str = "image", min_detection_confidence: float = 0.5,
                 min_presence_confidence: float = 0.5, min_tracking_confidence: float = 0.5,
                 max_side: int | None = 1920, min_keypoint_confidence: float = 0.5,
                 min_confident_keypoints: int = 6, min_box_size: float = 32.0, quiet: bool = True) -> None:
        if int(num_poses) != num_poses or num_poses < 1:
            raise ValueError(f"Invalid num_poses: {num_poses} (must be an int >= 1)")
        if running_mode not in RUNNING_MODES:
            raise ValueError(f"Invalid running_mode: {running_mode!r} (must be one of {RUNNING_MODES})")
        for name, v in (("min_detection_confidence", min_detection_confidence),
                        ("min_presence_confidence", min_presence_confidence),
                        ("min_tracking_confidence", min_tracking_confidence)):
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"Invalid {name}: {v} (must be in [0, 1])")
        if max_side is not None and (int(max_side) != max_side or max_side < 0):
            raise ValueError(f"Invalid max_side: {max_side} (must be an int >= 0 or None)")
        self.filter = PersonFilter(min_keypoint_confidence, min_confident_keypoints, min_box_size)
        self.num_poses = int(num_poses)
        self.running_mode = running_mode
        self.max_side = int(max_side) if max_side else None
        self.quiet = quiet
        self.model_path = Path(model_path) if model_path is not None else data_path(MODEL_FILE)
        if not self.model_path.is_file():
            raise ModelFileError(f"no pose model at '{self.model_path}'; pass model_path=<.task file> or reinstall "
                                 "hmr-fit (scripts/build_pose_task.py rebuilds the shipped one)")
        self._last_ts: int | None = None
        self._first_call = True
        self._landmarker = None

        import mediapipe as mp
        from mediapipe.tasks.python import BaseOptions, vision

        self._mp = mp
        mode = vision.RunningMode.VIDEO if running_mode == "video" else vision.RunningMode.IMAGE
        options = vision.PoseLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=str(self.model_path)), running_mode=mode,
            num_poses=self.num_poses, min_pose_detection_confidence=float(min_detection_confidence),
            min_pose_presence_confidence=float(min_presence_confidence),
            min_tracking_confidence=float(min_tracking_confidence), output_segmentation_masks=False)
        try:
            with _filtered_stderr(quiet):
                self._landmarker = vision.PoseLandmarker.create_from_options(options)
        except (RuntimeError, ValueError, OSError) as e:
            raise ModelFileError(f"cannot load pose model '{self.model_path}': {e}; rebuild it with "
                                 "scripts/build_pose_task.py or reinstall hmr-fit") from e

    # -- lifetime -------------------------------------------------------------------------------------------
    def close(self) -> None:
        """Release MediaPipe's graph. Safe to call twice; the detector is unusable afterwards."""
        lm, self._landmarker = self._landmarker, None
        if lm is not None:
            with _filtered_stderr(self.quiet):
                lm.close()

    def __enter__(self) -> PoseDetector:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()

    # -- detection ------------------------------------------------------------------------------------------
    def detect(self, image: np.ndarray, timestamp_ms: int | None = None) -> list[Person]:
        """Detect up to ``num_poses`` people.

        Args:
            image: (H, W, 3) uint8 RGB (``hmr_fit.io.read_image`` gives this).
            timestamp_ms: video mode only, required there: frame time in ms, strictly increasing per call.
        Returns:
            People sorted by box area (largest first), keypoints in ``image`` pixels; each has
            ``reject_reason`` set by the quality check (None = accepted). Empty list when nobody is found.
        Raises:
            ValueError: ``image`` is not (H, W, 3) uint8, or the timestamp argument does not fit the mode.
            InputError: video mode and ``timestamp_ms`` is not larger than the previous one.
        """
        if self._landmarker is None:
            raise ValueError("PoseDetector is closed")
        if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3 \
                or image.shape[0] == 0 or image.shape[1] == 0:
            got = f"{image.dtype} {tuple(image.shape)}" if isinstance(image, np.ndarray) else type(image).__name__
            raise ValueError(f"image must be (H, W, 3) uint8 RGB with H, W > 0, got {got}")
        if self.running_mode == "video":
            if timestamp_ms is None:
                raise ValueError("running_mode='video' needs timestamp_ms for every frame")
            ts = int(timestamp_ms)
            if self._last_ts is not None and ts <= self._last_ts:
                raise InputError(f"video frame timestamps must increase: got {ts} ms after {self._last_ts} ms")
        elif timestamp_ms is not None:
            raise ValueError("timestamp_ms is only used with running_mode='video'")

        h, w = image.shape[:2]
        small, _ = resize_for_detection(image, self.max_side)
        mp_image = self._mp.Image(image_format=self._mp.ImageFormat.SRGB, data=np.ascontiguousarray(small))
        with _filtered_stderr(self.quiet and self._first_call):
            if self.running_mode == "video":
                result = self._landmarker.detect_for_video(mp_image, ts)
                self._last_ts = ts
            else:
                result = self._landmarker.detect(mp_image)
        self._first_call = False

        people = []
        worlds = result.pose_world_landmarks or [None] * len(result.pose_landmarks)
        for landmarks, world in zip(result.pose_landmarks, worlds):
            people.append(self._person(landmarks, world, (h, w)))
        return self.filter.apply(sort_people(people))

    def detect_file(self, path: str | os.PathLike) -> tuple[list[Person], ImageInfo]:
        """Read an image file (``read_image``: EXIF orientation applied, conversions documented) and detect.

        Keypoints are in pixels of the oriented image (``info.size``). Raises ``InputError`` for bad files.
        """
        image, info = read_image(path)
        return self.detect(image), info

    def _person(self, landmarks, world, image_size: tuple[int, int]) -> Person:
        """33 normalised landmarks -> Person in original-image pixels.

        Normalised coordinates times the original size equal the downscaled image's pixels mapped back with
        ``to_original_pixels`` (the scale is W / w per axis), without the round trip.
        """
        h, w = image_size

        def val(v):
            return 0.0 if v is None else float(v)

        raw = np.array([[val(p.x) * w, val(p.y) * h, val(p.z) * w, val(p.visibility), val(p.presence)]
                        for p in landmarks], dtype=np.float64)
        conf33 = np.clip(raw[:, 3], 0, 1) * np.clip(raw[:, 4], 0, 1)
        keypoints, confidence = from_mediapipe(raw[:, :2], conf33)
        bbox = keypoint_box(raw[:, :2], conf33, image_size, self.filter.min_keypoint_confidence)
        world_arr = None
        if world is not None:
            world_arr = np.array([[val(p.x), val(p.y), val(p.z)] for p in world], dtype=np.float64)
        return Person(keypoints=keypoints, confidence=confidence, bbox=bbox, score=float(conf33.mean()),
                      landmarks=raw, world_landmarks=world_arr)
