"""MediaPipe PoseDetector on bundled photos (offline). One detector per module; no timing assertions."""

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")
pytest.importorskip("mediapipe")

from PIL import Image  # noqa: E402

from hmr_fit.errors import InputError, ModelFileError  # noqa: E402
from hmr_fit.keypoints import formats as F  # noqa: E402
from hmr_fit.keypoints.detect import PoseDetector  # noqa: E402

I = {n: i for i, n in enumerate(F.KEYPOINT_NAMES)}
CONF = 0.5


@pytest.fixture(scope="module")
def det(task_path):
    # max_side=512: the 2x-upscaled image below is detected at half size, keypoints mapped back.
    with PoseDetector(num_poses=3, max_side=512) as d:  # the shipped model, found through package data
        assert d.model_path.samefile(task_path)
        yield d


@pytest.fixture(scope="module")
def astro_people(det, astronaut):
    return det.detect(astronaut)


def _agree(a, b, ok, median, most):
    """Keypoints a and b (pixels) agree where ``ok``: median and largest distance below the bounds (px).

    BlazePose is not exactly equivariant: the shoulders of the astronaut's bulky suit move by up to ~18 px
    (~10% of her 190 px shoulder width) between equivalent inputs, face points by 2-6 px. The bounds used
    (median 8, max 24 px) still catch any mapping error: a wrong scale, offset or left/right swap is > 100 px.
    """
    d = np.linalg.norm(a[ok] - b[ok], axis=-1)
    assert ok.sum() >= 6
    assert np.median(d) < median, d
    assert d.max() < most, d


def _y(p, name):
    return p.keypoints[I[name], 1] if p.confidence[I[name]] >= CONF else None


def _check_plausible(p, shape, head_part):
    h, w = shape[:2]
    assert p.keypoints.shape == (23, 2) and p.confidence.shape == (23,)
    assert p.landmarks.shape == (33, 5) and p.world_landmarks.shape == (33, 3)
    assert ((p.confidence >= 0) & (p.confidence <= 1)).all()
    assert (p.confidence[[I["left_small_toe"], I["right_small_toe"]]] == 0).all()
    ok = p.confidence >= CONF
    assert ok.sum() >= 6
    assert ((p.keypoints[ok] >= 0) & (p.keypoints[ok] <= [w, h])).all()
    x0, y0, x1, y1 = p.bbox
    assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h
    # head above shoulders above hips, where visible
    for side in ("left", "right"):
        head, sh, hip = _y(p, f"{side}_{head_part}"), _y(p, f"{side}_shoulder"), _y(p, f"{side}_hip")
        assert head is not None and sh is not None
        assert head < sh
        if hip is not None:
            assert sh < hip


def test_astronaut_one_person_plausible(astro_people, astronaut):
    assert len(astro_people) == 1
    (p,) = astro_people
    assert p.accepted
    _check_plausible(p, astronaut.shape, "eye")
    assert _y(p, "nose") < min(_y(p, "left_shoulder"), _y(p, "right_shoulder"))
    # front-facing: the person's left shoulder/eye/ear appear on the image's right side
    for part in ("shoulder", "eye", "ear"):
        assert p.keypoints[I[f"left_{part}"], 0] > p.keypoints[I[f"right_{part}"], 0]
    # nose near the reference found with legacy mediapipe 0.10.21 (dependencies.md §6: (223, 128))
    np.testing.assert_allclose(p.keypoints[I["nose"]], [223, 128], atol=6)


def test_camera_one_person_plausible(det, camera):
    people = det.detect(camera)
    assert len(people) == 1
    (p,) = people
    assert p.accepted
    # the cameraman bends his head to the viewfinder: his nose is level with a shoulder, his eyes are above
    _check_plausible(p, camera.shape, "eye")
    assert p.keypoints[I["left_shoulder"], 0] > p.keypoints[I["right_shoulder"], 0]
    assert p.keypoints[I["left_hip"], 0] > p.keypoints[I["right_hip"], 0]


def test_no_person_in_synthetic_images(det):
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:360, 0:480]
    gradient = np.stack([xx * 255 // 479, yy * 255 // 359, np.full_like(xx, 128)], -1).astype(np.uint8)
    for img in (np.zeros((360, 480, 3), np.uint8), gradient, rng.integers(0, 256, (360, 480, 3), dtype=np.uint8)):
        assert det.detect(img) == []


def test_two_people_sorted_by_box_area(det, astronaut):
    # MediaPipe suppresses people whose (body-sized) regions overlap, so the two are set 256 px apart.
    # The second copy is mirrored and shrunk to 3/4, so the two boxes differ in size.
    small = cv2.resize(np.ascontiguousarray(astronaut[:, ::-1]), (384, 384), interpolation=cv2.INTER_AREA)
    right = np.full((512, 512, 3), 128, np.uint8)
    right[128:, 64:448] = small
    scene = np.concatenate([astronaut, np.full((512, 256, 3), 128, np.uint8), right], axis=1)  # 512 x 1280
    people = det.detect(scene)  # downscaled to 205 x 512 for detection
    assert len(people) == 2
    assert people[0].box_area > people[1].box_area
    assert people[0].keypoints[I["nose"], 0] < 512 < 768 < people[1].keypoints[I["nose"], 0]
    for p in people:
        assert p.accepted


def test_mirrored_image_gives_mirrored_keypoints(det, astronaut, astro_people):
    (p,) = astro_people
    (m,) = det.detect(np.ascontiguousarray(astronaut[:, ::-1]))
    expected_kp, expected_conf = F.flip_horizontal(p.keypoints, p.confidence, astronaut.shape[1])
    both = (expected_conf >= CONF) & (m.confidence >= CONF)
    _agree(m.keypoints, expected_kp, both, 8, 24)


def test_downscaled_detection_returns_original_pixels(det, astronaut, astro_people):
    (p,) = astro_people
    big = cv2.resize(astronaut, (1024, 1024), interpolation=cv2.INTER_CUBIC)
    (q,) = det.detect(big)  # longer side 1024 > max_side 512: detected at 512, mapped back
    ok = (p.confidence >= CONF) & (q.confidence >= CONF)
    _agree(q.keypoints / 2, p.keypoints, ok, 8, 24)  # compared in the small image's pixels
    det.max_side = None  # the same image at full resolution agrees too
    try:
        (r,) = det.detect(big)
    finally:
        det.max_side = 512
    _agree(r.keypoints / 2, p.keypoints, ok, 8, 24)


def test_detect_file_applies_exif_orientation(det, astronaut, astro_people, tmp_path):
    # store the photo rotated 90 degrees with EXIF orientation 6 ("rotate 90 CW to display")
    stored = Image.fromarray(astronaut).transpose(Image.Transpose.ROTATE_90)
    exif = stored.getexif()
    exif[0x0112] = 6
    path = tmp_path / "rotated.jpg"
    stored.save(path, quality=95, exif=exif)
    people, info = det.detect_file(path)
    assert info.exif_orientation == 6 and info.size == (512, 512)
    (q,) = people
    (p,) = astro_people
    ok = (p.confidence >= CONF) & (q.confidence >= CONF)
    _agree(q.keypoints, p.keypoints, ok, 8, 24)


def test_bad_image_arguments(det):
    with pytest.raises(ValueError, match=r"must be \(H, W, 3\) uint8 RGB.*float64 \(8, 8, 3\)"):
        det.detect(np.zeros((8, 8, 3)))
    with pytest.raises(ValueError, match=r"uint8 \(8, 8\)"):
        det.detect(np.zeros((8, 8), np.uint8))
    with pytest.raises(ValueError, match="only used with running_mode='video'"):
        det.detect(np.zeros((8, 8, 3), np.uint8), timestamp_ms=3)


def test_video_mode_tracks_and_checks_timestamps(task_path, astronaut, astro_people, capfd):
    (p,) = astro_people
    with PoseDetector(model_path=task_path, running_mode="video", num_poses=1) as vd:
        for k, shift in enumerate((0, 4, 8)):
            frame = np.ascontiguousarray(np.roll(astronaut, shift, axis=1))
            (q,) = vd.detect(frame, timestamp_ms=33 * k)
            ok = (p.confidence >= CONF) & (q.confidence >= CONF)
            # video mode smooths landmarks over time, so they lag the 4 px/frame motion a little
            _agree(q.keypoints, p.keypoints + [shift, 0], ok, 8, 24)
        with pytest.raises(InputError, match="timestamps must increase: got 66 ms after 66 ms"):
            vd.detect(astronaut, timestamp_ms=66)
        with pytest.raises(ValueError, match="needs timestamp_ms"):
            vd.detect(astronaut)
    vd.close()  # closing twice is fine
    with pytest.raises(ValueError, match="closed"):
        vd.detect(astronaut, timestamp_ms=1000)
    err = capfd.readouterr().err
    assert "INFO: " not in err and "Sparsity tensors" not in err  # LiteRT chatter is filtered


def test_constructor_errors(tmp_path):
    with pytest.raises(ValueError, match="Invalid num_poses: 0"):
        PoseDetector(num_poses=0)
    with pytest.raises(ValueError, match="Invalid running_mode"):
        PoseDetector(running_mode="live")
    with pytest.raises(ModelFileError, match="no pose model at"):
        PoseDetector(model_path=tmp_path / "missing.task")
    bad = tmp_path / "bad.task"
    bad.write_bytes(b"not a zip")
    with pytest.raises(ModelFileError, match="cannot load pose model"):
        PoseDetector(model_path=bad)
