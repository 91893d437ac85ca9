"""The canonical 23-keypoint set used for fitting, and index maps from/to other detectors' layouts.

Canonical order (``KEYPOINT_NAMES``): COCO-17 person keypoints, then the six COCO-WholeBody foot points in
COCO-WholeBody order -- i.e. exactly the first 23 of COCO-WholeBody's 133 keypoints.

Every converter takes and returns plain arrays with any leading dims:
``keypoints (..., K, 2)`` pixels and ``confidence (..., K)`` in [0, 1]. A keypoint the source format lacks gets
confidence 0 and position (0, 0); a consumer must ignore positions whose confidence is 0.

Sources:
* MediaPipe Pose landmarks (33): https://ai.google.dev/edge/mediapipe/solutions/vision/pose_landmarker
* OpenPose BODY_25 and COCO-18: https://github.com/CMU-Perceptual-Computing-Lab/openpose/blob/master/doc/02_output.md
* COCO-WholeBody (133): https://github.com/jin-s13/COCO-WholeBody
"""

from __future__ import annotations

import numpy as np

COCO17_NAMES: tuple[str, ...] = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
)
FOOT_NAMES: tuple[str, ...] = (
    "left_big_toe", "left_small_toe", "left_heel", "right_big_toe", "right_small_toe", "right_heel",
)
KEYPOINT_NAMES: tuple[str, ...] = COCO17_NAMES + FOOT_NAMES
"""The 23 canonical keypoints, in order."""
NUM_KEYPOINTS = len(KEYPOINT_NAMES)


def mirror_name(name: str) -> str:
    """The name of the other side's counterpart: left_knee <-> right_knee; midline names map to themselves."""
    if name.startswith("left_"):
        return "right_" + name[5:]
    if name.startswith("right_"):
        return "left_" + name[6:]
    return name


FLIP_PERMUTATION: tuple[int, ...] = tuple(KEYPOINT_NAMES.index(mirror_name(n)) for n in KEYPOINT_NAMES)
"""For a horizontally mirrored image: ``mirrored[..., i, :] = keypoints[..., FLIP_PERMUTATION[i], :]``
(then x -> W - x). It is its own inverse."""

# MediaPipe Pose's 33 landmarks, in its order.
MEDIAPIPE33_NAMES: tuple[str, ...] = (
    "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye", "right_eye_outer",
    "left_ear", "right_ear", "mouth_left", "mouth_right",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_pinky", "right_pinky", "left_index", "right_index", "left_thumb", "right_thumb",
    "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
    "left_heel", "right_heel", "left_foot_index", "right_foot_index",
)
# MediaPipe's "foot index" is the tip of the foot (toes); it is the closest MediaPipe point to the big toe.
# MediaPipe has no small-toe landmark: those two canonical points always get confidence 0.
_MEDIAPIPE_ALIASES = {"left_big_toe": "left_foot_index", "right_big_toe": "right_foot_index"}

# OpenPose BODY_25 (pose_keypoints_2d of the default BODY_25 model).
BODY25_NAMES: tuple[str, ...] = (
    "nose", "neck", "right_shoulder", "right_elbow", "right_wrist", "left_shoulder", "left_elbow", "left_wrist",
    "mid_hip", "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee", "left_ankle",
    "right_eye", "left_eye", "right_ear", "left_ear",
    "left_big_toe", "left_small_toe", "left_heel", "right_big_toe", "right_small_toe", "right_heel",
)
# OpenPose COCO-18 (pose_keypoints_2d of the older COCO model): no foot points.
OPENPOSE18_NAMES: tuple[str, ...] = BODY25_NAMES[:8] + BODY25_NAMES[9:19]

NUM_COCO_WHOLEBODY = 133
"""COCO-WholeBody: 17 body + 6 foot (= the canonical 23, same order) + 68 face + 21 left hand + 21 right hand."""


def _index_from(src_names: tuple[str, ...], aliases: dict[str, str] | None = None) -> np.ndarray:
    """(23,) index into the source layout for each canonical keypoint; -1 where the source lacks it."""
    aliases = aliases or {}
    idx = [src_names.index(aliases.get(n, n)) if aliases.get(n, n) in src_names else -1 for n in KEYPOINT_NAMES]
    return np.asarray(idx, dtype=np.int64)


MEDIAPIPE33_TO_CANONICAL = _index_from(MEDIAPIPE33_NAMES, _MEDIAPIPE_ALIASES)
BODY25_TO_CANONICAL = _index_from(BODY25_NAMES)
OPENPOSE18_TO_CANONICAL = _index_from(OPENPOSE18_NAMES)
COCO17_TO_CANONICAL = _index_from(COCO17_NAMES)
COCO_WHOLEBODY_TO_CANONICAL = np.arange(NUM_KEYPOINTS, dtype=np.int64)  # the first 23 of 133


def _check(keypoints: np.ndarray, confidence: np.ndarray, k: int, what: str) -> tuple[np.ndarray, np.ndarray]:
    kp = np.asarray(keypoints, dtype=np.float64)
    conf = np.asarray(confidence, dtype=np.float64)
    if kp.ndim < 2 or kp.shape[-2:] != (k, 2):
        raise ValueError(f"{what} keypoints must be (..., {k}, 2), got {tuple(kp.shape)}")
    if conf.shape != kp.shape[:-1]:
        raise ValueError(f"{what} confidence must be {tuple(kp.shape[:-1])}, got {tuple(conf.shape)}")
    return kp, conf


def _gather(kp: np.ndarray, conf: np.ndarray, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """out[..., i] = src[..., index[i]], or (0, 0) with confidence 0 where index[i] < 0."""
    safe = np.where(index < 0, 0, index)
    out_kp = kp[..., safe, :].copy()
    out_conf = conf[..., safe].copy()
    out_kp[..., index < 0, :] = 0.0
    out_conf[..., index < 0] = 0.0
    return out_kp, out_conf


def _scatter(kp: np.ndarray, conf: np.ndarray, index: np.ndarray, k_out: int) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of _gather: out[..., index[i]] = src[..., i]; source points with no target are dropped."""
    lead = kp.shape[:-2]
    out_kp = np.zeros(lead + (k_out, 2))
    out_conf = np.zeros(lead + (k_out,))
    have = index >= 0
    out_kp[..., index[have], :] = kp[..., have, :]
    out_conf[..., index[have]] = conf[..., have]
    return out_kp, out_conf


def from_mediapipe(keypoints: np.ndarray, confidence: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """MediaPipe Pose 33 landmarks -> canonical 23.

    Args:
        keypoints: (..., 33, 2) landmark positions, pixels.
        confidence: (..., 33) per-landmark confidence (hmr-fit uses visibility x presence).
    Returns:
        keypoints (..., 23, 2), confidence (..., 23). Big toes come from MediaPipe's foot index (toe tip);
        small toes are missing (confidence 0).
    """
    kp, conf = _check(keypoints, confidence, len(MEDIAPIPE33_NAMES), "MediaPipe")
    return _gather(kp, conf, MEDIAPIPE33_TO_CANONICAL)


def from_body25(keypoints: np.ndarray, confidence: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """OpenPose BODY_25 -> canonical 23 (all 23 exist in BODY_25; neck and mid-hip are dropped).

    Args:
        keypoints: (..., 25, 2) pixels. confidence: (..., 25) OpenPose scores in [0, 1] (0 = not detected).
    """
    kp, conf = _check(keypoints, confidence, len(BODY25_NAMES), "BODY_25")
    return _gather(kp, conf, BODY25_TO_CANONICAL)


def to_body25(keypoints: np.ndarray, confidence: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Canonical 23 -> OpenPose BODY_25.

    Neck is the mid-point of the shoulders and mid-hip that of the hips, with the smaller of the two
    confidences (0 if either is missing), as OpenPose's own COCO -> BODY_25 comparison does.
    Returns keypoints (..., 25, 2), confidence (..., 25).
    """
    kp, conf = _check(keypoints, confidence, NUM_KEYPOINTS, "canonical")
    out_kp, out_conf = _scatter(kp, conf, BODY25_TO_CANONICAL, len(BODY25_NAMES))
    for target, (a, b) in (("neck", ("left_shoulder", "right_shoulder")), ("mid_hip", ("left_hip", "right_hip"))):
        i, ia, ib = BODY25_NAMES.index(target), KEYPOINT_NAMES.index(a), KEYPOINT_NAMES.index(b)
        c = np.minimum(conf[..., ia], conf[..., ib])
        out_conf[..., i] = c
        out_kp[..., i, :] = np.where(c[..., None] > 0, 0.5 * (kp[..., ia, :] + kp[..., ib, :]), 0.0)
    return out_kp, out_conf


def from_openpose18(keypoints: np.ndarray, confidence: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """OpenPose COCO-18 -> canonical 23 (no foot points: those get confidence 0).

    Args:
        keypoints: (..., 18, 2) pixels. confidence: (..., 18).
    """
    kp, conf = _check(keypoints, confidence, len(OPENPOSE18_NAMES), "OpenPose COCO-18")
    return _gather(kp, conf, OPENPOSE18_TO_CANONICAL)


def from_coco17(keypoints: np.ndarray, confidence: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """COCO-17 person keypoints -> canonical 23 (foot points get confidence 0)."""
    kp, conf = _check(keypoints, confidence, len(COCO17_NAMES), "COCO")
    return _gather(kp, conf, COCO17_TO_CANONICAL)


def to_coco17(keypoints: np.ndarray, confidence: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Canonical 23 -> COCO-17 (the first 17; the foot points are dropped)."""
    kp, conf = _check(keypoints, confidence, NUM_KEYPOINTS, "canonical")
    return kp[..., :17, :].copy(), conf[..., :17].copy()


def from_coco_wholebody(keypoints: np.ndarray, confidence: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """COCO-WholeBody 133 -> canonical 23 (its first 23; face and hands are dropped)."""
    kp, conf = _check(keypoints, confidence, NUM_COCO_WHOLEBODY, "COCO-WholeBody")
    return _gather(kp, conf, COCO_WHOLEBODY_TO_CANONICAL)


def to_coco_wholebody(keypoints: np.ndarray, confidence: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Canonical 23 -> COCO-WholeBody 133 (face and hand points get confidence 0)."""
    kp, conf = _check(keypoints, confidence, NUM_KEYPOINTS, "canonical")
    return _scatter(kp, conf, COCO_WHOLEBODY_TO_CANONICAL, NUM_COCO_WHOLEBODY)


def flip_horizontal(keypoints: np.ndarray, confidence: np.ndarray, width: float) -> tuple[np.ndarray, np.ndarray]:
    """Canonical keypoints of the horizontally mirrored image (``x -> width - x``, left <-> right swapped).

    Args:
        keypoints: (..., 23, 2) pixels. confidence: (..., 23). width: image width W, pixels.
    """
    kp, conf = _check(keypoints, confidence, NUM_KEYPOINTS, "canonical")
    perm = np.asarray(FLIP_PERMUTATION)
    out_kp, out_conf = kp[..., perm, :].copy(), conf[..., perm].copy()
    out_kp[..., 0] = np.where(out_conf > 0, width - out_kp[..., 0], 0.0)
    return out_kp, out_conf
