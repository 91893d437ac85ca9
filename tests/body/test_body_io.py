"""Bad model files give a ModelFileError that names the file and the problem."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from fake_smpl import fake_smpl_arrays

from hmr_fit.assets import data_path
from hmr_fit.body import BodyModel, read_model_file
from hmr_fit.errors import ModelFileError


def dense(arrays: dict) -> dict:
    return dict(arrays, J_regressor=arrays["J_regressor"].toarray())


def test_missing_file(tmp_path):
    with pytest.raises(ModelFileError, match=r"no body model at '.*nope\.pkl'"):
        BodyModel(tmp_path / "nope.pkl")


def test_truncated_npz(tmp_path):
    path = tmp_path / "cut.npz"
    path.write_bytes(data_path("open_body_model.npz").read_bytes()[:100_000])
    with pytest.raises(ModelFileError, match=r"cannot read body model '.*cut\.npz'"):
        read_model_file(path)


def test_truncated_pkl(tmp_path):
    path = tmp_path / "cut.pkl"
    path.write_bytes(pickle.dumps(dense(fake_smpl_arrays(num_verts=300)), protocol=2)[:5000])
    with pytest.raises(ModelFileError, match=r"cut\.pkl"):
        read_model_file(path)


def test_not_a_model(tmp_path):
    (tmp_path / "list.pkl").write_bytes(pickle.dumps([1, 2, 3]))
    with pytest.raises(ModelFileError, match="does not hold a dict"):
        read_model_file(tmp_path / "list.pkl")
    (tmp_path / "model.obj").write_text("v 0 0 0\n")
    with pytest.raises(ModelFileError, match="unknown model file type '.obj'"):
        read_model_file(tmp_path / "model.obj")


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda a: a.pop("weights"), "lacks weights"),
        (lambda a: a.update(shapedirs=a["shapedirs"][:10]), r"shapedirs must be \(300, 3, S\)"),
        (lambda a: a.update(weights=a["weights"][:, :20]), r"weights must be \(300, 24\)"),
        (lambda a: a.update(J_regressor=a["J_regressor"][:, :5]), r"J_regressor must be \(24, 300\)"),
        (lambda a: a.update(posedirs=a["posedirs"][..., :10]), r"posedirs must be \(300, 3, 207\)"),
        (lambda a: a.update(f=a["f"] + 1000), "f must be"),
        (lambda a: a["v_template"].__setitem__((0, 0), np.nan), "v_template holds NaN"),
    ],
)
def test_wrong_keys_or_shapes(tmp_path, change, message):
    arrays = dense(fake_smpl_arrays(num_verts=300))
    change(arrays)
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ModelFileError, match=message) as info:
        read_model_file(tmp_path / "bad.npz")
    assert "bad.npz" in str(info.value)


def test_foreign_topology_without_keypoint_regressor(tmp_path):
    np.savez(tmp_path / "other.npz", **dense(fake_smpl_arrays(num_verts=300)))
    with pytest.raises(ModelFileError, match="no keypoint regressor"):
        BodyModel(tmp_path / "other.npz")


def test_num_betas_out_of_range():
    with pytest.raises(ModelFileError, match="num_betas=40"):
        BodyModel(num_betas=40)
