"""End-to-end ``hmr-fit`` runs on real photos (scikit-image's astronaut) and on keypoint files; bad inputs get
their exit code and a one-line message."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from hmr_fit.cli.main import main
from hmr_fit.fit.synthetic import make_problems, procrustes_error
from hmr_fit.io.export import load_params
from hmr_fit.keypoints import Person
from hmr_fit.keypoints.io import to_openpose_json



@pytest.fixture(scope="module")
def astronaut(tmp_path_factory):
    skimage_data = pytest.importorskip("skimage.data")
    path = tmp_path_factory.mktemp("photos") / "astronaut.png"
    Image.fromarray(skimage_data.astronaut()).save(path)
    return path


@pytest.fixture(scope="module")
def astronaut_run(astronaut, tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    code = main([str(astronaut), "-o", str(out), "export.mesh_format=ply", "export.write_overlay=true"])
    return code, out


def test_astronaut_writes_overlay_mesh_and_parameters(astronaut_run):
    code, out = astronaut_run
    assert code == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == ["astronaut_0.json", "astronaut_0.npz", "astronaut_0.ply", "astronaut_0.png", "astronaut_all.png"]
    overlay = np.asarray(Image.open(out / "astronaut_0.png"))
    assert overlay.shape == (512, 512, 3)
    import trimesh

    mesh = trimesh.load(out / "astronaut_0.ply", process=False)
    assert mesh.vertices.shape == (13718, 3) and (mesh.vertices[:, 2] > 0).all()  # in front of the camera
    params = load_params(out / "astronaut_0.npz")
    assert params.accepted and params.model_name.startswith("hmr-fit open body model")
    with open(out / "astronaut_0.json") as fh:
        assert json.load(fh)["format_version"] >= 1


def test_astronaut_reprojected_keypoints_match_detections(astronaut_run):
    _, out = astronaut_run
    p = load_params(out / "astronaut_0.npz")
    confident = p.keypoints_confidence > 0.5
    assert confident.sum() >= 7  # face and shoulders at least: she is photographed from the waist up
    err = np.linalg.norm(p.keypoints_fitted - p.keypoints_detected, axis=-1)[confident]
    assert np.median(err) < 0.04 * 512 and err.max() < 0.12 * 512
    # the mesh sits where the person is: the overlay changed the pixels around the detected face
    nose = p.keypoints_detected[0].astype(int)
    mesh = trimesh_vertices(out / "astronaut_0.ply")
    u = p.intrinsics[0] * mesh[:, 0] / mesh[:, 2] + p.intrinsics[2]
    v = p.intrinsics[1] * mesh[:, 1] / mesh[:, 2] + p.intrinsics[3]
    assert np.hypot(u - nose[0], v - nose[1]).min() < 15


def trimesh_vertices(path):
    import trimesh

    return np.asarray(trimesh.load(path, process=False).vertices)


def test_keypoint_file_input_fits_synthetic_people(tmp_path, open_model):
    """People from held-out motion clips, projected and written as OpenPose BODY_25 JSON, fitted back."""
    problems = make_problems(open_model, 3, seed=11, split="test", image_size=1000)
    people = [Person(keypoints=problems.keypoints[i].double().numpy(),
                     confidence=problems.confidence[i].double().numpy(), bbox=np.array([0, 0, 1000, 1000.0]),
                     score=1.0) for i in range(3)]
    (tmp_path / "scene.json").write_text(json.dumps(to_openpose_json(people)))
    Image.new("RGB", (1000, 1000), "white").save(tmp_path / "scene.png")
    code = main([str(tmp_path / "scene.png"), "--keypoints", str(tmp_path / "scene.json"), "-o",
                 str(tmp_path / "out"), "export.write_all=false"])
    assert code == 0
    fitted = [load_params(tmp_path / "out" / f"scene_{i}.npz") for i in range(3)]

    def stack(name):
        return torch.tensor(np.stack([getattr(f, name) for f in fitted]), dtype=torch.float32)

    joints = open_model(stack("betas"), stack("body_pose"), stack("global_orient"), stack("transl"),
                        return_vertices=False).joints
    # the fit explains the given keypoints (20 learned steps leave ~2-3 % of the person's size)
    assert all(f.accepted and f.quality < 0.05 for f in fitted), [(f.accepted, f.quality) for f in fitted]
    # 3D: 2D-only evidence leaves depth ambiguity (held-out median PA-MPJPE is ~85 mm, docs/benchmarks.md); this
    # catches gross failures (a flipped or exploded body is 300+ mm off)
    assert procrustes_error(joints, problems.joints).max() < 0.25


def test_image_without_a_person(tmp_path, capsys):
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (256, 256, 3), dtype=np.uint8)).save(tmp_path / "noise.png")
    code = main([str(tmp_path / "noise.png"), "-o", str(tmp_path / "out")])
    assert code == 1
    assert "no person found in" in capsys.readouterr().err


def test_unreadable_image_and_missing_path(tmp_path, capsys):
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    assert main([str(tmp_path / "broken.jpg"), "-o", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert "broken.jpg" in err and "Traceback" not in err
    assert main([str(tmp_path / "missing.jpg"), "-o", str(tmp_path / "out")]) == 1
    assert "no such file" in capsys.readouterr().err


def test_bad_model_file_and_bad_override(tmp_path, astronaut, capsys):
    (tmp_path / "SMPL_NEUTRAL.pkl").write_bytes(b"garbage")
    assert main([str(astronaut), "--model", str(tmp_path / "SMPL_NEUTRAL.pkl"), "-o", str(tmp_path / "o")]) == 3
    assert "SMPL_NEUTRAL.pkl" in capsys.readouterr().err
    assert main([str(astronaut), "optim=nonsense"]) == 2
    assert "bad config override" in capsys.readouterr().err
