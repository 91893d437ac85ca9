"""Our LBS against smplx.SMPL on the same model files: the open model, and SMPL-shaped random models with
non-zero pose correctives, loaded from .npz and from .pkl files with chumpy objects and a sparse regressor."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from fake_smpl import fake_smpl_arrays, write_chumpy_pickle

from hmr_fit.body import BodyModel, read_model_file

smplx = pytest.importorskip("smplx")


def smplx_model(arrays: dict, num_betas: int) -> "smplx.SMPL":
    from smplx.utils import Struct

    fields = dict(arrays)
    if "posedirs" not in fields:  # smplx always applies correctives; give it zeros where the model has none
        fields["posedirs"] = np.zeros((fields["v_template"].shape[0], 3, 207))
    return smplx.SMPL(model_path="unused", data_struct=Struct(**fields), num_betas=num_betas, dtype=torch.float64)


def random_inputs(batch: int, num_betas: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(batch, num_betas, generator=g, dtype=torch.float64),
            0.5 * torch.randn(batch, 69, generator=g, dtype=torch.float64),
            0.5 * torch.randn(batch, 3, generator=g, dtype=torch.float64),
            torch.randn(batch, 3, generator=g, dtype=torch.float64))


def assert_agree(ours: BodyModel, reference, num_betas: int, seed: int = 0) -> None:
    betas, pose, orient, transl = random_inputs(3, num_betas, seed)
    mine = ours(betas, pose, orient, transl)
    theirs = reference(betas=betas, body_pose=pose, global_orient=orient, transl=transl)
    assert (mine.vertices - theirs.vertices).norm(dim=-1).max() < 1e-5
    assert (mine.joints - theirs.joints[:, :24]).norm(dim=-1).max() < 1e-5


def test_open_model_agrees_with_smplx(open_model_f64):
    arrays = read_model_file(open_model_f64.model_path)
    assert_agree(open_model_f64, smplx_model(arrays, 10), 10)


@pytest.mark.parametrize("suffix", [".npz", ".pkl"])
def test_smpl_shaped_file_with_pose_correctives_agrees_with_smplx(tmp_path, suffix):
    arrays = fake_smpl_arrays(seed=1)
    path = tmp_path / f"SMPL_NEUTRAL{suffix}"
    if suffix == ".npz":
        dense = dict(arrays, J_regressor=arrays["J_regressor"].toarray())
        np.savez(path, **dense)
    else:
        write_chumpy_pickle(path, arrays)
    ours = BodyModel(path, dtype=torch.float64)
    assert ours.posedirs is not None
    reference = smplx_model(dict(arrays, J_regressor=arrays["J_regressor"].toarray()), 10)
    assert_agree(ours, reference, 10, seed=2)


def test_chumpy_pickle_reads_without_chumpy_installed(tmp_path):
    import importlib.util

    assert importlib.util.find_spec("chumpy") is None  # the reader must not rely on it
    arrays = fake_smpl_arrays(seed=3, num_verts=500)
    write_chumpy_pickle(tmp_path / "model.pkl", arrays)
    loaded = read_model_file(tmp_path / "model.pkl")
    np.testing.assert_array_equal(loaded["v_template"], arrays["v_template"])
    np.testing.assert_array_equal(loaded["J_regressor"], arrays["J_regressor"].toarray())
    assert isinstance(loaded["J_regressor"], np.ndarray)


@pytest.mark.parametrize("posedirs", [False, True])
def test_smpl_topology_keypoints_come_from_joints_and_vertex_ids(tmp_path, posedirs):
    arrays = fake_smpl_arrays(seed=4, posedirs=posedirs)
    write_chumpy_pickle(tmp_path / "SMPL_NEUTRAL.pkl", arrays)
    model = BodyModel(tmp_path / "SMPL_NEUTRAL.pkl", dtype=torch.float64)
    out = model(*random_inputs(2, 10, 5))
    torch.testing.assert_close(out.keypoints[:, 5], out.joints[:, 16])  # left_shoulder keypoint = joint
    torch.testing.assert_close(out.keypoints[:, 0], out.vertices[:, 332])  # nose = SMPL vertex 332
    torch.testing.assert_close(out.keypoints[:, 22], out.vertices[:, 6787])  # right heel
