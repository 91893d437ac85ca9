"""Quality check: reject a person, with a one-line reason, rather than fit a body to noise."""

from __future__ import annotations

import dataclasses

import numpy as np

from hmr_fit.keypoints.person import Person


class PersonFilter:
    """Rejects people with too few confident keypoints or too small a box.

    Args:
        min_keypoint_confidence: a keypoint counts as confident when its confidence is >= this.
        min_confident_keypoints: fewest confident keypoints (of the canonical 23) a person needs.
        min_box_size: smallest allowed longer side of the person's box, pixels of the original image.
    """

    def __init__(self, min_keypoint_confidence: float = 0.5, min_confident_keypoints: int = 6,
                 min_box_size: float = 32.0) -> None:
        if not 0.0 <= min_keypoint_confidence <= 1.0:
            raise ValueError(f"Invalid min_keypoint_confidence: {min_keypoint_confidence} (must be in [0, 1])")
        if not 0 <= int(min_confident_keypoints) <= 23 or min_confident_keypoints != int(min_confident_keypoints):
            raise ValueError(f"Invalid min_confident_keypoints: {min_confident_keypoints} (must be an int in [0, 23])")
        if not min_box_size >= 0.0:
            raise ValueError(f"Invalid min_box_size: {min_box_size} (must be >= 0)")
        self.min_keypoint_confidence = float(min_keypoint_confidence)
        self.min_confident_keypoints = int(min_confident_keypoints)
        self.min_box_size = float(min_box_size)

    def reason(self, person: Person) -> str | None:
        """One-line reason to reject ``person``, or None if it passes."""
        n = int(np.count_nonzero(np.asarray(person.confidence) >= self.min_keypoint_confidence))
        if n < self.min_confident_keypoints:
            return (f"only {n} of 23 keypoints have confidence >= {self.min_keypoint_confidence:g} "
                    f"(need {self.min_confident_keypoints})")
        x0, y0, x1, y1 = (float(v) for v in person.bbox)
        side = max(x1 - x0, y1 - y0)
        if side < self.min_box_size:
            return f"person box is {side:.0f} px on its longer side (need {self.min_box_size:g} px)"
        return None

    def apply(self, people: list[Person]) -> list[Person]:
        """The same people, each with ``reject_reason`` set (None when accepted)."""
        return [dataclasses.replace(p, reject_reason=self.reason(p)) for p in people]
