"""Export: mesh round trips through trimesh, parameter json/npz round trips, atomic writes, Exporter, config."""

from __future__ import annotations

import inspect
import json
import math
import os
import stat
from pathlib import Path

import numpy as np
import pytest
import torch

from hmr_fit.errors import InputError
from hmr_fit.io import atomic
from hmr_fit.io.export import (FORMAT_VERSION, Exporter, PersonParams, export_mesh, export_params, load_params,
                               software_versions)

trimesh = pytest.importorskip("trimesh")
CONFIG = Path(__file__).resolve().parents[2] / "configs" / "export" / "default.yaml"


def no_temp_files(folder: Path) -> bool:
    return not [p for p in folder.iterdir() if p.name.endswith(atomic.TMP_SUFFIX)]


@pytest.fixture(scope="module")
def person_mesh(open_model):
    out = open_model(torch.zeros(1, open_model.num_betas), torch.zeros(1, 23, 3),
                     torch.tensor([[math.pi, 0.0, 0.0]]), torch.tensor([[0.2, -0.1, 3.5]]))
    return out.vertices[0].numpy().astype(np.float64), open_model.faces


def make_params(index: int = 0, k: int = 23, **changes) -> PersonParams:
    rng = np.random.default_rng(index)
    fields = dict(model_name="open", person_index=index, betas=rng.normal(size=10),
                  body_pose=rng.normal(scale=0.3, size=(23, 3)), global_orient=np.array([math.pi, 0.01, -0.02]),
                  transl=np.array([0.1, -0.2, 3.5]), intrinsics=np.array([612.3, 612.3, 320.0, 240.0]),
                  image_size=np.array([480, 640]), keypoints_detected=rng.uniform(0, 480, (k, 2)),
                  keypoints_confidence=rng.uniform(0, 1, k), keypoints_fitted=rng.uniform(0, 480, (k, 2)),
                  energy={"reprojection": 12.345678901, "pose_prior": 1e-9, "total": 12.3456789},
                  quality=0.0123456789, accepted=True)
    fields.update(changes)
    return PersonParams(**fields)


@pytest.mark.parametrize("fmt", ["obj", "ply", "glb"])
def test_mesh_round_trip(tmp_path, person_mesh, fmt):
    verts, faces = person_mesh
    path = export_mesh(tmp_path / f"person_0.{fmt}", verts, faces)
    assert path == tmp_path / f"person_0.{fmt}" and path.stat().st_size > 0
    mesh = trimesh.load(path, force="mesh", process=False)
    assert mesh.vertices.shape == verts.shape
    np.testing.assert_allclose(mesh.vertices, verts, atol=2e-6)  # obj: 6 decimals; ply, glb: float32
    np.testing.assert_array_equal(mesh.faces, faces)
    assert no_temp_files(tmp_path)


def test_mesh_accepts_torch_and_checks_arguments(tmp_path, person_mesh):
    verts, faces = person_mesh
    export_mesh(tmp_path / "t.ply", torch.from_numpy(verts), faces)
    with pytest.raises(InputError, match="mesh format must be one of obj, ply, glb"):
        export_mesh(tmp_path / "x.stl", verts, faces)
    with pytest.raises(InputError, match=r"does not end in \.glb"):
        export_mesh(tmp_path / "x.obj", verts, faces, fmt="glb")
    with pytest.raises(InputError, match=r"vertices must be finite \(V, 3\)"):
        export_mesh(tmp_path / "x.obj", verts[:, :2], faces)
    with pytest.raises(InputError, match="faces must be"):
        export_mesh(tmp_path / "x.obj", verts[:10], faces)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.ply"]


def test_params_round_trip_npz_exact_json_rounded(tmp_path):
    params = make_params(index=2)
    json_path, npz_path = export_params(tmp_path / "photo_2", params)
    assert (json_path.name, npz_path.name) == ("photo_2.json", "photo_2.npz")
    exact = load_params(npz_path)
    for name in ("betas", "body_pose", "global_orient", "transl", "intrinsics", "keypoints_detected",
                 "keypoints_confidence", "keypoints_fitted"):
        np.testing.assert_array_equal(getattr(exact, name), getattr(params, name), err_msg=name)
    np.testing.assert_array_equal(exact.image_size, [480, 640])
    assert exact.energy == params.energy and exact.quality == params.quality
    assert (exact.model_name, exact.person_index, exact.accepted) == ("open", 2, True)
    assert exact.keypoint_names == params.keypoint_names and len(exact.keypoint_names) == 23
    assert exact.versions == software_versions() and set(exact.versions) == {"hmr-fit", "torch", "numpy"}

    rounded = load_params(json_path)
    np.testing.assert_allclose(rounded.body_pose, params.body_pose, rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(rounded.keypoints_fitted, params.keypoints_fitted, rtol=1e-6)
    assert rounded.energy["pose_prior"] == 1e-9  # significant digits, not decimals: small terms survive
    assert rounded.energy["reprojection"] == 12.34568
    assert load_params(tmp_path / "photo_2").energy == params.energy  # a stem prefers the exact npz


def test_params_json_is_readable(tmp_path):
    json_path, _ = export_params(tmp_path / "p_0", make_params())
    text = json_path.read_text(encoding="utf-8")
    doc = json.loads(text)
    assert doc["format_version"] == FORMAT_VERSION
    assert set(doc["versions"]) == {"hmr-fit", "torch", "numpy"}
    assert doc["intrinsics"] == [612.3, 612.3, 320.0, 240.0] and doc["image_size"] == [480, 640]
    assert doc["quality"] == 0.01234568 and doc["accepted"] is True
    assert '"global_orient": [3.141593, 0.01, -0.02]' in text  # one line per vector / matrix row
    assert len(text.splitlines()) < 120


def test_params_from_dict_torch_and_non_finite_values(tmp_path):
    record = {k: v for k, v in make_params().__dict__.items() if k != "versions"}
    record["betas"] = torch.zeros(10)
    record["body_pose"] = torch.zeros(69)  # flat (69,) becomes (23, 3)
    record["quality"] = float("nan")
    record["energy"] = {"total": float("inf")}
    json_path, npz_path = export_params(tmp_path / "q_0", record)
    doc = json.loads(json_path.read_text())  # strict JSON: NaN/inf written as null
    assert doc["quality"] is None and doc["energy"]["total"] is None
    loaded = load_params(json_path)
    assert math.isnan(loaded.quality) and math.isnan(loaded.energy["total"])
    assert loaded.body_pose.shape == (23, 3)
    assert math.isinf(load_params(npz_path).energy["total"])


def test_params_validation_and_load_errors(tmp_path):
    with pytest.raises(InputError, match=r"transl must be \(3,\), got \(2,\)"):
        make_params(transl=[0.0, 1.0])
    with pytest.raises(InputError, match="keypoints disagree"):
        make_params(keypoints_fitted=np.zeros((22, 2)))
    generic = make_params(k=17)  # another keypoint count gets generic names
    assert generic.keypoint_names[0] == "keypoint_0"
    with pytest.raises(InputError, match="no parameter file"):
        load_params(tmp_path / "missing.json")
    json_path, _ = export_params(tmp_path / "new_0", make_params())
    doc = json.loads(json_path.read_text())
    doc["format_version"] = FORMAT_VERSION + 1
    json_path.write_text(json.dumps(doc))
    with pytest.raises(InputError, match="upgrade hmr-fit"):
        load_params(json_path)
    del doc["betas"]
    doc["format_version"] = FORMAT_VERSION
    json_path.write_text(json.dumps(doc))
    with pytest.raises(InputError, match="lacks betas"):
        load_params(json_path)
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(InputError, match="cannot read parameters"):
        load_params(tmp_path / "bad.json")


def test_atomic_write_failure_mid_write_keeps_old_file(tmp_path):
    target = tmp_path / "out.txt"
    atomic.write_text(target, "old contents\n")
    with pytest.raises(RuntimeError, match="disk full"):
        with atomic.atomic_open(target, "w") as f:
            f.write("new, half written")
            raise RuntimeError("disk full")
    assert target.read_text() == "old contents\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_atomic_write_failure_leaves_no_file(tmp_path, monkeypatch, person_mesh):
    def fail(*args, **kwargs):
        raise OSError("simulated failure at fsync")

    monkeypatch.setattr(atomic.os, "fsync", fail)
    verts, faces = person_mesh
    with pytest.raises(OSError, match="simulated"):
        export_mesh(tmp_path / "m.obj", verts, faces)
    with pytest.raises(OSError, match="simulated"):
        export_params(tmp_path / "p_0", make_params())
    with pytest.raises(OSError, match="simulated"):
        atomic.write_png(tmp_path / "a.png", np.zeros((4, 4, 3), np.uint8))
    assert list(tmp_path.iterdir()) == []


def test_atomic_replace_failure_and_serialisation_failure(tmp_path, monkeypatch):
    target = tmp_path / "x.json"
    atomic.write_json(target, {"a": 1})
    with pytest.raises(ValueError):  # NaN refused before any file is opened
        atomic.write_json(target, {"a": float("nan")})
    with pytest.raises(InputError, match="object array"):
        atomic.write_npz(tmp_path / "o.npz", {"a": np.array([{}, 1], dtype=object)})

    def fail_replace(src, dst):
        raise OSError("simulated rename failure")

    monkeypatch.setattr(atomic.os, "replace", fail_replace)
    with pytest.raises(OSError, match="rename"):
        atomic.write_json(target, {"a": 2})
    assert json.loads(target.read_text()) == {"a": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.json"]


def test_atomic_files_get_normal_permissions_and_png_reads_back(tmp_path):
    import cv2

    image = np.zeros((6, 8, 3), np.uint8)
    image[..., 0] = 200  # red in RGB
    path = atomic.write_png(tmp_path / "r.png", image)
    mode = stat.S_IMODE(os.stat(path).st_mode)
    assert mode == 0o666 & ~atomic._umask() and mode != 0o600
    assert np.array_equal(cv2.imread(str(path))[..., ::-1], image)
    with pytest.raises(InputError, match="PNG image must be"):
        atomic.write_png(tmp_path / "f.png", np.zeros((4, 4, 3), np.float32))
    arrays = {"a": np.arange(5.0), "s": np.str_("text")}
    with np.load(atomic.write_npz(tmp_path / "a.npz", arrays), allow_pickle=False) as z:
        assert np.array_equal(z["a"], arrays["a"]) and z["s"].item() == "text"


def test_exporter_writes_enabled_outputs(tmp_path, person_mesh):
    verts, faces = person_mesh
    exporter = Exporter(mesh_format="glb", write_overlay=True)
    picture = np.zeros((10, 12, 3), np.uint8)
    written = exporter.export_person(tmp_path / "out", "photo", make_params(index=1), verts, faces, picture)
    written += exporter.export_all(tmp_path / "out", "photo", picture)
    names = sorted(p.name for p in written)
    assert names == ["photo_1.glb", "photo_1.json", "photo_1.npz", "photo_1.png", "photo_all.png"]
    assert sorted(written) == sorted(exporter.outputs(tmp_path / "out", "photo", [1]))
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == names

    lean = Exporter(write_mesh=False, write_overlay=False, write_all=False)
    written = lean.export_person(tmp_path / "lean", "im", make_params(), verts, faces, picture)
    assert sorted(p.name for p in written) == ["im_0.json", "im_0.npz"]
    assert lean.export_all(tmp_path / "lean", "im", picture) == []
    with pytest.raises(InputError, match="mesh_format"):
        Exporter(mesh_format="fbx")


def test_config_keys_match_exporter():
    omegaconf = pytest.importorskip("omegaconf")
    cfg = omegaconf.OmegaConf.to_container(omegaconf.OmegaConf.load(CONFIG))
    assert cfg.pop("_target_") == "hmr_fit.io.export.Exporter"
    params = {n: p.default for n, p in inspect.signature(Exporter.__init__).parameters.items() if n != "self"}
    assert cfg == params
    hydra_utils = pytest.importorskip("hydra.utils")
    exporter = hydra_utils.instantiate(omegaconf.OmegaConf.load(CONFIG))
    assert isinstance(exporter, Exporter) and exporter.mesh_format == params["mesh_format"]
