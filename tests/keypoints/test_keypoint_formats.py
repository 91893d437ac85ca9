"""Canonical 23-keypoint set and converters: names, flip permutation, round trips, shape errors."""

import numpy as np
import pytest

from hmr_fit.keypoints import formats as F


def _random(shape_lead, k, seed=0):
    rng = np.random.default_rng(seed)
    kp = rng.uniform(0, 500, shape_lead + (k, 2))
    conf = rng.uniform(0.05, 1.0, shape_lead + (k,))
    return kp, conf


def test_canonical_names_are_coco17_then_wholebody_feet():
    assert len(F.KEYPOINT_NAMES) == F.NUM_KEYPOINTS == 23
    assert F.KEYPOINT_NAMES[:5] == ("nose", "left_eye", "right_eye", "left_ear", "right_ear")
    assert F.KEYPOINT_NAMES[15:17] == ("left_ankle", "right_ankle")
    assert F.KEYPOINT_NAMES[17:] == ("left_big_toe", "left_small_toe", "left_heel",
                                     "right_big_toe", "right_small_toe", "right_heel")


def test_flip_permutation_swaps_sides_and_is_an_involution():
    perm = np.asarray(F.FLIP_PERMUTATION)
    assert sorted(perm.tolist()) == list(range(23))
    assert (perm[perm] == np.arange(23)).all()
    for i, name in enumerate(F.KEYPOINT_NAMES):
        flipped = F.KEYPOINT_NAMES[perm[i]]
        if name.startswith("left_"):
            assert flipped == "right_" + name[5:]
        elif name.startswith("right_"):
            assert flipped == "left_" + name[6:]
        else:
            assert flipped == name


@pytest.mark.parametrize("lead", [(), (1,), (3,)])
def test_flip_horizontal_twice_is_identity(lead):
    kp, conf = _random(lead, 23)
    k2, c2 = F.flip_horizontal(*F.flip_horizontal(kp, conf, 640), 640)
    np.testing.assert_allclose(k2, kp)
    np.testing.assert_array_equal(c2, conf)


def test_mediapipe_map_uses_matching_names():
    idx = F.MEDIAPIPE33_TO_CANONICAL
    for name, j in zip(F.KEYPOINT_NAMES, idx):
        if name.endswith("small_toe"):
            assert j == -1
        elif name.endswith("big_toe"):
            assert F.MEDIAPIPE33_NAMES[j] == name.replace("big_toe", "foot_index")
        else:
            assert F.MEDIAPIPE33_NAMES[j] == name


@pytest.mark.parametrize("lead", [(), (1,), (3,)])
def test_from_mediapipe_missing_points_get_zero_confidence(lead):
    kp33, conf33 = _random(lead, 33)
    kp, conf = F.from_mediapipe(kp33, conf33)
    assert kp.shape == lead + (23, 2) and conf.shape == lead + (23,)
    small = [F.KEYPOINT_NAMES.index("left_small_toe"), F.KEYPOINT_NAMES.index("right_small_toe")]
    assert (conf[..., small] == 0).all() and (kp[..., small, :] == 0).all()
    nose = F.MEDIAPIPE33_NAMES.index("nose")
    np.testing.assert_array_equal(kp[..., 0, :], kp33[..., nose, :])
    lhip = F.MEDIAPIPE33_NAMES.index("left_hip")
    np.testing.assert_array_equal(conf[..., F.KEYPOINT_NAMES.index("left_hip")], conf33[..., lhip])


@pytest.mark.parametrize("lead", [(), (1,), (3,)])
def test_canonical_body25_canonical_is_identity(lead):
    kp, conf = _random(lead, 23)
    k25, c25 = F.to_body25(kp, conf)
    assert k25.shape == lead + (25, 2)
    k, c = F.from_body25(k25, c25)
    np.testing.assert_allclose(k, kp)
    np.testing.assert_allclose(c, conf)
    neck = F.BODY25_NAMES.index("neck")
    np.testing.assert_allclose(k25[..., neck, :], 0.5 * (kp[..., 5, :] + kp[..., 6, :]))
    np.testing.assert_allclose(c25[..., neck], np.minimum(conf[..., 5], conf[..., 6]))


def test_body25_canonical_body25_keeps_every_mapped_point():
    k25, c25 = _random((2,), 25, seed=1)
    back_k, back_c = F.to_body25(*F.from_body25(k25, c25))
    mapped = [F.BODY25_NAMES.index(n) for n in F.KEYPOINT_NAMES]
    np.testing.assert_allclose(back_k[:, mapped], k25[:, mapped])
    np.testing.assert_allclose(back_c[:, mapped], c25[:, mapped])
    assert F.BODY25_NAMES[F.BODY25_TO_CANONICAL[F.KEYPOINT_NAMES.index("right_heel")]] == "right_heel"


def test_body25_neck_is_missing_when_a_shoulder_is():
    kp, conf = _random((), 23)
    conf[5] = 0.0
    k25, c25 = F.to_body25(kp, conf)
    neck = F.BODY25_NAMES.index("neck")
    assert c25[neck] == 0 and (k25[neck] == 0).all()


@pytest.mark.parametrize("lead", [(), (3,)])
def test_coco17_and_wholebody_round_trips(lead):
    kp, conf = _random(lead, 23)
    k17, c17 = F.to_coco17(kp, conf)
    k, c = F.from_coco17(k17, c17)
    np.testing.assert_allclose(k[..., :17, :], kp[..., :17, :])
    assert (c[..., 17:] == 0).all()
    np.testing.assert_allclose(F.to_coco17(k, c)[0], k17)  # COCO -> canonical -> COCO is exact
    k133, c133 = F.to_coco_wholebody(kp, conf)
    assert k133.shape == lead + (133, 2) and (c133[..., 23:] == 0).all()
    k, c = F.from_coco_wholebody(k133, c133)
    np.testing.assert_allclose(k, kp)
    np.testing.assert_allclose(c, conf)


def test_openpose18_has_no_feet():
    k18, c18 = _random((), 18)
    k, c = F.from_openpose18(k18, c18)
    assert (c[17:] == 0).all()
    np.testing.assert_allclose(k[F.KEYPOINT_NAMES.index("left_wrist")], k18[F.OPENPOSE18_NAMES.index("left_wrist")])


def test_shape_errors_say_expected_and_actual():
    with pytest.raises(ValueError, match=r"must be \(\.\.\., 25, 2\), got \(17, 2\)"):
        F.from_body25(np.zeros((17, 2)), np.zeros(17))
    with pytest.raises(ValueError, match=r"confidence must be \(23,\), got \(22,\)"):
        F.to_coco17(np.zeros((23, 2)), np.zeros(22))
