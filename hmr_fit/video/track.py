"""Stable per-person track ids across video frames.

MediaPipe's video mode re-sorts people by box area on every frame, so its order is no identity. :class:`Tracker`
matches each frame's people to the live tracks by Hungarian assignment (``scipy.optimize.linear_sum_assignment``,
as SORT does) on a cost that mixes box overlap and keypoint distance, both measured against a constant-velocity
prediction of each track, so two people who cross keep their ids. A track missed for up to ``max_missed`` frames
keeps its id; a person who matches no track starts a new id (ids are never reused).

Cost of pairing track t with person p (lower is better):
    c(t, p) = iou_weight * (1 - IoU(box_t, box_p)) + keypoint_weight * d(t, p)
where d is the confidence-weighted mean distance between predicted and detected keypoints (keypoints confident in
both) divided by the predicted box's diagonal. A pair with c > ``max_cost`` is never matched.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hmr_fit.keypoints import Person

__all__ = ["Tracker", "Track", "box_iou"]


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of boxes.

    Args:
        a: (M, 4) ``(x0, y0, x1, y1)``; b: (N, 4).
    Returns:
        (M, N) IoU in [0, 1] (0 for empty boxes).
    """
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    lo = np.maximum(a[:, None, :2], b[None, :, :2])
    hi = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(hi - lo, 0, None).prod(-1)
    area_a = np.clip(a[:, 2:] - a[:, :2], 0, None).prod(-1)
    area_b = np.clip(b[:, 2:] - b[:, :2], 0, None).prod(-1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


@dataclass
class Track:
    """One person's track state.

    Attributes:
        track_id: stable id (0, 1, 2, ... in order of first appearance).
        keypoints: (K, 2) last seen keypoints, pixels; confidence: (K,); bbox: (4,).
        velocity: (K, 2) pixels per frame (exponentially smoothed), for the constant-velocity prediction.
        last_frame: index of the last frame the person was seen in; hits: frames seen.
    """

    track_id: int
    keypoints: np.ndarray
    confidence: np.ndarray
    bbox: np.ndarray
    last_frame: int
    velocity: np.ndarray = field(default=None)  # type: ignore[assignment]
    hits: int = 1

    def __post_init__(self) -> None:
        if self.velocity is None:
            self.velocity = np.zeros_like(self.keypoints)

    def predict(self, frame: int) -> tuple[np.ndarray, np.ndarray]:
        """(K, 2) keypoints and (4,) box predicted for ``frame`` (constant velocity)."""
        shift = self.velocity * float(frame - self.last_frame)
        mean_shift = shift.mean(0)
        return self.keypoints + shift, self.bbox + np.concatenate([mean_shift, mean_shift])


class Tracker:
    """Assigns stable ids to the people of consecutive frames. One tracker per video.

    Args:
        iou_weight: weight of ``1 - IoU`` in the cost.
        keypoint_weight: weight of the normalised keypoint distance.
        max_cost: pairs costlier than this are not matched (the person gets a new id).
        max_missed: a track unseen for more than this many frames is closed.
        min_confidence: keypoints below this confidence are ignored in the distance.
        velocity_smoothing: in [0, 1); weight of the old velocity in the exponential average.
    """

    def __init__(self, iou_weight: float = 1.0, keypoint_weight: float = 2.0, max_cost: float = 1.6,
                 max_missed: int = 10, min_confidence: float = 0.3, velocity_smoothing: float = 0.5) -> None:
        if iou_weight < 0 or keypoint_weight < 0 or iou_weight + keypoint_weight <= 0:
            raise ValueError(f"Invalid cost weights: iou_weight={iou_weight}, keypoint_weight={keypoint_weight} "
                             "(both >= 0, not both 0)")
        if max_cost <= 0:
            raise ValueError(f"Invalid max_cost: {max_cost} (must be > 0)")
        if int(max_missed) != max_missed or max_missed < 0:
            raise ValueError(f"Invalid max_missed: {max_missed} (must be an int >= 0)")
        if not 0.0 <= velocity_smoothing < 1.0:
            raise ValueError(f"Invalid velocity_smoothing: {velocity_smoothing} (must be in [0, 1))")
        self.iou_weight, self.keypoint_weight, self.max_cost = float(iou_weight), float(keypoint_weight), max_cost
        self.max_missed, self.min_confidence = int(max_missed), float(min_confidence)
        self.velocity_smoothing = float(velocity_smoothing)
        self.tracks: list[Track] = []
        self._next_id = 0

    def cost(self, people: list[Person], frame: int) -> np.ndarray:
        """(T, P) matching cost of the live tracks against ``people`` (see the module docstring)."""
        if not self.tracks or not people:
            return np.zeros((len(self.tracks), len(people)))
        predicted = [t.predict(frame) for t in self.tracks]
        iou = box_iou(np.stack([b for _, b in predicted]), np.stack([p.bbox for p in people]))
        dist = np.zeros_like(iou)
        for i, (track, (kp, box)) in enumerate(zip(self.tracks, predicted)):
            diag = max(float(np.hypot(box[2] - box[0], box[3] - box[1])), 1.0)
            for j, person in enumerate(people):
                # w_k = c_track[k] c_person[k] on keypoints confident in both; d = sum_k w_k |kp - kp'| / sum_k w_k
                w = track.confidence * person.confidence
                w = np.where((track.confidence >= self.min_confidence) & (person.confidence >= self.min_confidence),
                             w, 0.0)
                if w.sum() <= 0:
                    dist[i, j] = 1.0
                    continue
                err = np.linalg.norm(kp - person.keypoints, axis=-1)
                dist[i, j] = float((w * err).sum() / w.sum()) / diag
        return self.iou_weight * (1.0 - iou) + self.keypoint_weight * dist

    def update(self, people: list[Person], frame: int) -> list[int]:
        """Match one frame's people to tracks.

        Args:
            people: this frame's people (any order).
            frame: frame index, increasing from call to call (gaps allowed: a skipped frame counts as missed).
        Returns:
            one track id per person, in the order of ``people``.
        """
        from scipy.optimize import linear_sum_assignment

        self.tracks = [t for t in self.tracks if frame - t.last_frame <= self.max_missed + 1]
        ids = [-1] * len(people)
        cost = self.cost(people, frame)
        if cost.size:
            rows, cols = linear_sum_assignment(np.where(cost <= self.max_cost, cost, 1e6))
            for r, c in zip(rows, cols):
                if cost[r, c] <= self.max_cost:
                    self._advance(self.tracks[r], people[c], frame)
                    ids[c] = self.tracks[r].track_id
        # New ids in left-to-right order of the boxes, so that they do not depend on the detector's order.
        new = sorted((j for j in range(len(people)) if ids[j] < 0),
                     key=lambda j: (float(people[j].bbox[0]), float(people[j].bbox[1])))
        for j in new:
            person = people[j]
            track = Track(self._next_id, np.asarray(person.keypoints, np.float64).copy(),
                          np.asarray(person.confidence, np.float64).copy(), np.asarray(person.bbox, np.float64), frame)
            self._next_id += 1
            self.tracks.append(track)
            ids[j] = track.track_id
        return ids

    def _advance(self, track: Track, person: Person, frame: int) -> None:
        gap = max(frame - track.last_frame, 1)
        kp = np.asarray(person.keypoints, np.float64)
        conf = np.asarray(person.confidence, np.float64)
        both = ((conf >= self.min_confidence) & (track.confidence >= self.min_confidence))[:, None]
        step = np.where(both, (kp - track.keypoints) / gap, track.velocity)
        a = self.velocity_smoothing if track.hits > 1 else 0.0
        track.velocity = a * track.velocity + (1 - a) * step
        track.keypoints, track.confidence, track.bbox = kp.copy(), conf.copy(), np.asarray(person.bbox, np.float64)
        track.last_frame, track.hits = frame, track.hits + 1
