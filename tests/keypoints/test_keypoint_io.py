"""Keypoint JSON files: OpenPose BODY_25/COCO-18, COCO dataset (17 + feet, 133), COCO results; errors."""

import json

import numpy as np
import pytest

from hmr_fit.errors import InputError
from hmr_fit.keypoints import KeypointLoader, Person, load_keypoints
from hmr_fit.keypoints import formats as F
from hmr_fit.keypoints.io import to_coco_results, to_openpose_json
from hmr_fit.keypoints.person import keypoint_box


def _people(n, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        kp = rng.uniform(50, 400, (23, 2))
        conf = rng.uniform(0.6, 1.0, 23)
        out.append(Person(kp, conf, keypoint_box(kp, conf), float(conf.mean())))
    return out


def _write(tmp_path, name, data):
    p = tmp_path / name
    p.write_text(json.dumps(data) if not isinstance(data, str) else data)
    return p


def test_openpose_body25_round_trip_and_image_key(tmp_path):
    people = _people(3)
    p = _write(tmp_path, "IMG_0042_keypoints.json", to_openpose_json(people))
    loaded = load_keypoints(p)
    assert list(loaded) == ["IMG_0042"]
    assert len(loaded["IMG_0042"]) == 3
    for a, b in zip(people, loaded["IMG_0042"]):
        np.testing.assert_allclose(b.keypoints, a.keypoints)
        np.testing.assert_allclose(b.confidence, a.confidence)
        assert b.accepted


def test_openpose_missing_points_and_coco18(tmp_path):
    k18 = np.zeros((18, 3))
    k18[:, :2] = np.arange(36).reshape(18, 2) * 10
    k18[:, 2] = 0.9
    k18[F.OPENPOSE18_NAMES.index("left_knee"), 2] = 0.0
    p = _write(tmp_path, "a.json", {"version": 1.3, "people": [{"pose_keypoints_2d": k18.reshape(-1).tolist()}]})
    (person,) = load_keypoints(p)["a"]
    lk = F.KEYPOINT_NAMES.index("left_knee")
    assert person.confidence[lk] == 0 and (person.keypoints[lk] == 0).all()
    assert (person.confidence[17:] == 0).all()
    lw = F.KEYPOINT_NAMES.index("left_wrist")
    np.testing.assert_allclose(person.keypoints[lw], k18[F.OPENPOSE18_NAMES.index("left_wrist"), :2])


def test_openpose_no_people_is_empty(tmp_path):
    assert load_keypoints(_write(tmp_path, "x_keypoints.json", {"people": []})) == {"x": []}


@pytest.mark.parametrize("wholebody", [False, True])
def test_coco_results_round_trip(tmp_path, wholebody):
    people = _people(2, seed=3)
    data = to_coco_results(people[:1], 7, wholebody) + to_coco_results(people[1:], 9, wholebody)
    assert len(data[0]["keypoints"]) == (133 if wholebody else 17) * 3
    loaded = load_keypoints(_write(tmp_path, "res.json", data))
    assert sorted(loaded) == ["7", "9"]
    got = loaded["9"][0]
    n = 23 if wholebody else 17
    np.testing.assert_allclose(got.keypoints[:n], people[1].keypoints[:n])
    np.testing.assert_allclose(got.confidence[:n], people[1].confidence[:n])
    assert (got.confidence[n:] == 0).all()
    assert got.score == pytest.approx(people[1].score)


def test_coco_dataset_wholebody_feet_and_visibility(tmp_path):
    kp = np.zeros((17, 3))
    kp[:, :2] = np.stack([np.linspace(100, 300, 17), np.linspace(50, 450, 17)], 1)
    kp[:, 2] = 2
    kp[3, 2] = 1  # labelled, occluded -> still confident
    kp[4] = 0  # not labelled
    feet = np.zeros((6, 3))
    feet[:, :2] = [[120, 470], [130, 472], [110, 460], [280, 470], [290, 472], [270, 460]]
    feet[:, 2] = 2
    data = {"images": [{"id": 5, "file_name": "dance.jpg", "width": 640, "height": 480}],
            "annotations": [{"id": 1, "image_id": 5, "keypoints": kp.reshape(-1).tolist(),
                             "foot_kpts": feet.reshape(-1).tolist(), "num_keypoints": 16}],
            "categories": [{"id": 1, "name": "person"}]}
    loaded = KeypointLoader(coco_labelled_confidence=0.9).load(_write(tmp_path, "wb.json", data))
    (person,) = loaded["dance.jpg"]
    assert person.confidence[3] == pytest.approx(0.9) and person.confidence[4] == 0
    np.testing.assert_allclose(person.keypoints[17:], feet[:, :2])
    assert (person.confidence[17:] == pytest.approx(0.9))


def test_images_without_annotations_are_listed(tmp_path):
    data = {"images": [{"id": 1, "file_name": "empty.jpg"}], "annotations": []}
    assert load_keypoints(_write(tmp_path, "c.json", data)) == {"empty.jpg": []}


def test_quality_check_is_applied(tmp_path):
    kp = np.zeros((25, 3))
    kp[:3] = [[100, 100, 0.9], [100, 120, 0.9], [90, 120, 0.9]]
    p = _write(tmp_path, "few.json", {"people": [{"pose_keypoints_2d": kp.reshape(-1).tolist()}]})
    (person,) = load_keypoints(p)["few"]
    assert not person.accepted
    assert "keypoints have confidence" in person.reject_reason


@pytest.mark.parametrize("content, message", [
    ("", "the file is empty"),
    ("{\"people\": [", "invalid JSON at line 1"),
    ("{\"foo\": 1}", "unknown layout"),
    ("{\"people\": [{\"face_keypoints_2d\": []}]}", "people\\[0\\] has no 'pose_keypoints_2d'"),
    ("{\"people\": [{\"pose_keypoints_2d\": [1, 2, 3]}]}", "has 3 numbers, expected 75 \\(25 points\\) or 54"),
    ("{\"people\": [{\"pose_keypoints_2d\": " + json.dumps(["a"] * 75) + "}]}", "must hold only numbers"),
    ("{\"people\": [{\"pose_keypoints_2d\": " + json.dumps([1.0] * 74 + [float("nan")]) + "}]}", "NaN or infinite"),
    ("[{\"image_id\": 1}]", "needs 'image_id' and 'keypoints'"),
    ("{\"annotations\": [{\"image_id\": 1, \"keypoints\": [0, 0, 2]}]}", "expected 51 \\(17 points\\) or 399"),
])
def test_malformed_files_raise_input_error_naming_the_file(tmp_path, content, message):
    p = _write(tmp_path, "bad.json", content)
    with pytest.raises(InputError, match=message) as e:
        load_keypoints(p)
    assert "'" + str(p) + "'" in str(e.value)
    assert "\n" not in str(e.value)


def test_missing_file_and_wrong_forced_format(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        load_keypoints(tmp_path / "nope.json")
    p = _write(tmp_path, "list.json", [])
    with pytest.raises(InputError, match="OpenPose file must be a JSON object"):
        load_keypoints(p, format="openpose")
    with pytest.raises(ValueError, match="Invalid format"):
        KeypointLoader(format="yaml")
