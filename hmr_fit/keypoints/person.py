"""One person's 2D keypoints in the canonical 23-keypoint order, as detected or loaded from a file."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Person:
    """2D keypoints of one person in one image.

    Coordinates are pixels of the original image (after EXIF orientation), x right, y down, with (0, 0) at the
    top-left corner of the top-left pixel (MediaPipe's normalised coordinate times the image size).

    Attributes:
        keypoints: (23, 2) float64, pixels, in ``formats.KEYPOINT_NAMES`` order.
        confidence: (23,) float64 in [0, 1]; 0 marks a keypoint that is missing (its position is meaningless).
            For MediaPipe it is visibility x presence.
        bbox: (4,) float64 ``(x0, y0, x1, y1)`` pixels, clipped to the image.
        score: person score in [0, 1] (MediaPipe: mean confidence of the 33 landmarks; files: the file's
            score if it has one, else the mean confidence of the keypoints present).
        landmarks: (33, 5) MediaPipe landmarks ``(x, y, z, visibility, presence)`` with x, y in pixels and z in
            MediaPipe's depth units scaled like x (pixels, relative to the hips); None when not from MediaPipe.
        world_landmarks: (33, 3) MediaPipe world landmarks, metres, origin between the hips; or None.
        reject_reason: why the quality check rejected this person (one line), or None if accepted.
    """

    keypoints: np.ndarray
    confidence: np.ndarray
    bbox: np.ndarray
    score: float
    landmarks: np.ndarray | None = None
    world_landmarks: np.ndarray | None = None
    reject_reason: str | None = None

    @property
    def accepted(self) -> bool:
        return self.reject_reason is None

    @property
    def box_area(self) -> float:
        x0, y0, x1, y1 = self.bbox
        return float(max(x1 - x0, 0.0) * max(y1 - y0, 0.0))


def keypoint_box(keypoints: np.ndarray, confidence: np.ndarray, image_size: tuple[int, int] | None = None,
                 min_confidence: float = 0.0) -> np.ndarray:
    """Bounding box of the keypoints whose confidence exceeds ``min_confidence``.

    Args:
        keypoints: (K, 2) pixels. confidence: (K,).
        image_size: (H, W) to clip the box to, or None.
        min_confidence: keypoints with confidence <= this are ignored; if fewer than two remain, every
            keypoint with confidence > 0 is used; if none, the box is all zeros.
    Returns:
        (4,) ``(x0, y0, x1, y1)``.
    """
    kp = np.asarray(keypoints, dtype=np.float64)
    conf = np.asarray(confidence, dtype=np.float64)
    use = conf > min_confidence
    if use.sum() < 2:
        use = conf > 0
    if not use.any():
        return np.zeros(4)
    pts = kp[use]
    box = np.concatenate([pts.min(axis=0), pts.max(axis=0)])
    if image_size is not None:
        h, w = image_size
        box = np.clip(box, 0.0, [w, h, w, h])
    return box


def sort_people(people: list[Person]) -> list[Person]:
    """Deterministic order: by box area, largest first; ties by the box's left edge, then top edge."""
    return sorted(people, key=lambda p: (-round(p.box_area, 6), float(p.bbox[0]), float(p.bbox[1])))
