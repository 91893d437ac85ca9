"""Person rejection with a reason."""

import numpy as np
import pytest

from hmr_fit.keypoints import Person, PersonFilter


def _person(n_confident, box_side):
    kp = np.zeros((23, 2))
    kp[:, 0] = np.linspace(10, 10 + box_side, 23)
    kp[:, 1] = 20
    conf = np.zeros(23)
    conf[:n_confident] = 0.9
    return Person(kp, conf, np.array([10, 20, 10 + box_side, 20 + box_side / 2]), 0.5)


def test_accepts_a_good_person():
    assert PersonFilter().reason(_person(12, 200)) is None


def test_rejects_too_few_confident_keypoints():
    reason = PersonFilter(min_confident_keypoints=6).reason(_person(5, 200))
    assert reason == "only 5 of 23 keypoints have confidence >= 0.5 (need 6)"


def test_rejects_small_box():
    reason = PersonFilter(min_box_size=64).reason(_person(12, 40))
    assert reason == "person box is 40 px on its longer side (need 64 px)"


def test_apply_keeps_everyone_and_sets_reasons():
    people = PersonFilter().apply([_person(12, 200), _person(2, 200)])
    assert [p.accepted for p in people] == [True, False]


@pytest.mark.parametrize("kwargs", [{"min_keypoint_confidence": 1.5}, {"min_confident_keypoints": 24},
                                    {"min_confident_keypoints": 2.5}, {"min_box_size": -1}])
def test_invalid_thresholds(kwargs):
    with pytest.raises(ValueError, match="Invalid"):
        PersonFilter(**kwargs)
