"""hmr_fit.video.track: ids stay with the same person across frames, through a crossing and a missed frame."""

from __future__ import annotations

import numpy as np
import pytest

from hmr_fit.keypoints import Person
from hmr_fit.keypoints.person import keypoint_box
from hmr_fit.video.track import Tracker, box_iou

# A 23-keypoint stick figure, 100 px wide x 200 px tall, around its centre.
_rng = np.random.default_rng(0)
SHAPE = np.stack([_rng.uniform(-50, 50, 23), _rng.uniform(-100, 100, 23)], axis=1)


def person(cx: float, cy: float = 150.0, scale: float = 1.0, jitter: float = 0.0, seed: int = 0) -> Person:
    kp = SHAPE * scale + [cx, cy] + np.random.default_rng(seed).normal(0, jitter, SHAPE.shape)
    conf = np.full(23, 0.9)
    return Person(kp, conf, keypoint_box(kp, conf), 0.9)


def two_person_clip(frames: int = 12, missed: tuple[int, ...] = (6,)):
    """Person A walks right (x 100 -> 540), B walks left (540 -> 100), B a little smaller: they cross mid-clip.
    B is missed by the detector in ``missed`` frames. Detector order is by box area (as MediaPipe's), so the input
    order carries no identity. Returns per frame [(true identity, Person)]."""
    clip = []
    for t in range(frames):
        xa = 100 + 440 * t / (frames - 1)
        xb = 540 - 440 * t / (frames - 1)
        people = [("A", person(xa, 150, 1.0, 2.0, seed=t)), ("B", person(xb, 170, 0.85, 2.0, seed=100 + t))]
        people = [p for p in people if not (p[0] == "B" and t in missed)]
        people.sort(key=lambda p: -p[1].box_area)
        clip.append(people)
    return clip


def test_ids_stay_with_people_through_crossing_and_a_missed_frame():
    tracker = Tracker()
    seen: dict[str, set[int]] = {"A": set(), "B": set()}
    for t, people in enumerate(two_person_clip()):
        ids = tracker.update([p for _, p in people], t)
        assert len(set(ids)) == len(ids)
        for (who, _), tid in zip(people, ids):
            seen[who].add(tid)
    assert seen == {"A": {0}, "B": {1}}


def test_shuffled_input_order_gives_the_same_ids():
    a, b = Tracker(), Tracker()
    for t, people in enumerate(two_person_clip(missed=())):
        ids_a = dict(zip([w for w, _ in people], a.update([p for _, p in people], t)))
        rev = people[::-1]
        ids_b = dict(zip([w for w, _ in rev], b.update([p for _, p in rev], t)))
        assert ids_a == ids_b


def test_new_person_gets_new_id_and_lost_tracks_close():
    tracker = Tracker(max_missed=1)
    assert tracker.update([person(100)], 0) == [0]
    assert tracker.update([person(102), person(500)], 1) == [0, 1]
    assert tracker.update([], 2) == []
    assert tracker.update([], 3) == []
    assert tracker.update([person(104)], 4) == [2]  # unseen for 2 > max_missed frames: a new id, never reused


def test_box_iou_and_bad_arguments():
    iou = box_iou(np.array([[0, 0, 10, 10]]), np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]]))
    np.testing.assert_allclose(iou, [[1.0, 1 / 3, 0.0]])
    with pytest.raises(ValueError, match="max_cost"):
        Tracker(max_cost=0)
