"""The shipped open body model: file contents, conventions (SMPL's T-pose, axes, left/right) and the forward pass."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from hmr_fit.assets import data_path
from hmr_fit.body import KEYPOINT_NAMES, SMPL_JOINT_NAMES, SMPL_PARENTS, BodyModel, read_model_file


@pytest.fixture(scope="module")
def arrays():
    return read_model_file(data_path("open_body_model.npz"))


def test_file_has_smpl_layout(arrays):
    assert arrays["v_template"].shape == (13718, 3)
    assert arrays["shapedirs"].shape[:2] == (13718, 3) and arrays["shapedirs"].shape[2] >= 10
    assert arrays["weights"].shape == (13718, 24)
    assert arrays["J_regressor"].shape == (24, 13718)
    assert tuple(arrays["kintree_table"][0][1:]) == SMPL_PARENTS[1:]
    assert tuple(arrays["joint_names"]) == SMPL_JOINT_NAMES
    assert tuple(arrays["keypoint_names"]) == KEYPOINT_NAMES
    assert "posedirs" not in arrays  # no dense zero correctives shipped
    np.testing.assert_allclose(arrays["weights"].sum(1), 1.0, atol=1e-5)
    np.testing.assert_allclose(arrays["J_regressor"].sum(1), 1.0, atol=1e-4)
    np.testing.assert_allclose(arrays["keypoint_vertex_weights"].sum(1), 1.0, atol=1e-5)
    assert data_path("open_body_model.npz").stat().st_size < 20e6


def test_metadata_records_measured_errors(arrays):
    meta = json.loads(str(arrays["metadata"]))
    report = meta["report"]
    assert meta["num_betas"] >= 10
    assert report["heldout_reconstruction_mm"]["10_betas"]["mean"] <= 2.0
    assert report["heldout_reconstruction_mm"]["10_betas"]["shapes"] >= 500
    assert 0 < report["tpose_repose_residual_mm"]["mean"] < 2.0
    assert report["joint_regressor_max_residual_mm"] < 1e-3
    # the held-out shapes' betas have roughly unit spread (PCA scaled to unit variance)
    assert np.allclose(report["heldout_beta_std"][:10], 1.0, atol=0.15)


def test_zero_pose_is_a_t_pose_facing_plus_z(open_model):
    out = open_model()
    j = {n: out.joints[0, i].numpy() for i, n in enumerate(SMPL_JOINT_NAMES)}
    kp = {n: out.keypoints[0, i].numpy() for i, n in enumerate(KEYPOINT_NAMES)}
    for side, sign in (("left", 1), ("right", -1)):
        arm = np.stack([j[f"{side}_shoulder"], j[f"{side}_elbow"], j[f"{side}_wrist"], j[f"{side}_hand"]])
        assert np.ptp(arm[:, 1]) < 0.01 and np.ptp(arm[:, 2]) < 0.01  # arms horizontal, straight out sideways
        assert np.all(sign * np.diff(arm[:, 0]) > 0.05)  # body's left is +x
        leg = np.stack([j[f"{side}_hip"], j[f"{side}_knee"], j[f"{side}_ankle"]])
        assert np.all(np.diff(leg[:, 1]) < -0.3)  # legs point down
        assert abs(leg[2, 0] - leg[1, 0]) < 0.01  # shins vertical
    assert j["head"][1] > j["neck"][1] > j["pelvis"][1] > j["left_knee"][1]  # y up
    assert kp["nose"][2] > kp["left_ear"][2] and kp["left_big_toe"][2] > kp["left_heel"][2]  # faces +z
    height = out.vertices[0, :, 1].max() - out.vertices[0, :, 1].min()
    assert 1.5 < float(height) < 1.9  # metres, an adult


@pytest.mark.parametrize("batch", [1, 3])
def test_forward_shapes_and_translation(open_model, batch):
    torch.manual_seed(batch)
    betas, pose = torch.randn(batch, 10), 0.3 * torch.randn(batch, 23, 3)
    orient, transl = 0.3 * torch.randn(batch, 3), torch.randn(batch, 3)
    out = open_model(betas, pose, orient, transl)
    assert out.vertices.shape == (batch, 13718, 3)
    assert out.joints.shape == (batch, 24, 3) and out.keypoints.shape == (batch, 23, 3)
    moved = open_model(betas, pose, orient, transl + 1.0)
    torch.testing.assert_close(moved.vertices, out.vertices + 1.0)
    flat = open_model(betas, pose.reshape(batch, 69), orient, transl)  # (B, 69) pose accepted too
    torch.testing.assert_close(flat.joints, out.joints)


def test_keypoints_equal_the_regressor_applied_to_the_posed_mesh(open_model, arrays):
    """The keypoints are computed without the mesh (regressor composed with skinning); they must equal the
    stored vertex regressor applied to the skinned vertices."""
    torch.manual_seed(0)
    args = (torch.randn(4, 10), 0.4 * torch.randn(4, 23, 3), torch.randn(4, 3), torch.randn(4, 3))
    full = open_model(*args)
    ids = torch.as_tensor(arrays["keypoint_vertex_ids"].astype(np.int64))
    weights = torch.as_tensor(arrays["keypoint_vertex_weights"])
    direct = (full.vertices[:, ids] * weights[..., None]).sum(2)
    torch.testing.assert_close(full.keypoints, direct, atol=2e-6, rtol=0)
    lean = open_model(*args, return_vertices=False)
    assert lean.vertices is None
    torch.testing.assert_close(lean.keypoints, full.keypoints)
    torch.testing.assert_close(lean.joints, full.joints)


def test_joints_equal_regressor_on_shaped_mesh(open_model):
    """Joints are regressed from the rest mesh of each shape (SMPL's definition), in any pose' rest."""
    betas = 1.5 * torch.randn(3, 10, generator=torch.Generator().manual_seed(3))
    rest = open_model(betas)
    arrays = read_model_file(open_model.model_path)
    reg = torch.as_tensor(arrays["J_regressor"])
    v = open_model.v_template + torch.einsum("bs,vks->bvk", betas, open_model.shapedirs)
    # at zero pose the posed joints are the rest joints
    torch.testing.assert_close(rest.joints, torch.einsum("jv,bvk->bjk", reg, v), atol=1e-5, rtol=0)


def test_rotating_the_root_rotates_the_body_about_the_pelvis(open_model_f64):
    betas = torch.zeros(1, 10, dtype=torch.float64)
    base = open_model_f64(betas)
    angle = torch.tensor([[0.0, np.pi / 2, 0.0]], dtype=torch.float64)  # 90 degrees about +y
    turned = open_model_f64(betas, global_orient=angle)
    pelvis = base.joints[0, 0]
    rot = torch.tensor([[0.0, 0, 1], [0, 1, 0], [-1, 0, 0]], dtype=torch.float64)
    expected = (base.vertices[0] - pelvis) @ rot.T + pelvis
    torch.testing.assert_close(turned.vertices[0], expected, atol=1e-9, rtol=0)


def test_knee_flexion_moves_the_ankle_backwards(open_model):
    pose = torch.zeros(1, 23, 3)
    pose[0, SMPL_JOINT_NAMES.index("left_knee") - 1, 0] = 1.0  # positive x rotation = SMPL's knee bend
    out = open_model(body_pose=pose)
    ankle = SMPL_JOINT_NAMES.index("left_ankle")
    assert out.joints[0, ankle, 2] < open_model().joints[0, ankle, 2] - 0.2


def test_gradients_reach_every_input_float64(open_model_f64):
    torch.manual_seed(0)
    betas = torch.randn(2, 10, dtype=torch.float64, requires_grad=True)
    pose = (0.3 * torch.randn(2, 23, 3, dtype=torch.float64)).requires_grad_()
    orient = (0.3 * torch.randn(2, 3, dtype=torch.float64)).requires_grad_()
    transl = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)

    def keypoints(b, p, o, t):
        return open_model_f64(b, p, o, t, return_vertices=False).keypoints

    assert torch.autograd.gradcheck(keypoints, (betas[:1], pose[:1], orient[:1], transl[:1]), eps=1e-6, atol=1e-5)
    open_model_f64(betas, pose, orient, transl).vertices.square().sum().backward()
    for t in (betas, pose, orient, transl):
        assert t.grad is not None and torch.isfinite(t.grad).all() and t.grad.abs().sum() > 0


def test_rodrigues_matches_scipy_and_is_smooth_at_zero():
    from scipy.spatial.transform import Rotation

    from hmr_fit.body.lbs import rodrigues

    rotvec = torch.randn(50, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1)) * 2
    rotvec[0] = 0.0
    rotvec[1] = 1e-9
    expected = torch.as_tensor(Rotation.from_rotvec(rotvec.numpy()).as_matrix())
    torch.testing.assert_close(rodrigues(rotvec), expected, atol=1e-12, rtol=0)
    zero = torch.zeros(1, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(rodrigues, (zero,))


def test_float64_and_float32_agree(open_model, open_model_f64):
    torch.manual_seed(2)
    args = (torch.randn(2, 10), 0.5 * torch.randn(2, 23, 3), torch.randn(2, 3), torch.randn(2, 3))
    v32 = open_model(*args).vertices
    v64 = open_model_f64(*[a.double() for a in args]).vertices
    assert v64.dtype == torch.float64
    torch.testing.assert_close(v32.double(), v64, atol=2e-5, rtol=0)


def test_betas_beyond_the_model_and_wrong_shapes_are_rejected(open_model):
    from hmr_fit.errors import InputError

    with pytest.raises(InputError, match=r"betas must be \(2, 10\)"):
        open_model(torch.zeros(2, 11))
    with pytest.raises(InputError, match="body_pose"):
        open_model(body_pose=torch.zeros(2, 22, 3))
    more = BodyModel(num_betas=16)
    assert more(torch.zeros(1, 16)).vertices.shape == (1, 13718, 3)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_cpu(open_model):
    args = (torch.randn(2, 10), 0.5 * torch.randn(2, 23, 3), torch.randn(2, 3), torch.randn(2, 3))
    gpu = BodyModel().to("cuda")
    out = gpu(*[a.cuda() for a in args])
    torch.testing.assert_close(out.vertices.cpu(), open_model(*args).vertices, atol=1e-5, rtol=0)


def test_skinning_backward_matches_autograd_and_gradcheck():
    from hmr_fit.body.lbs import skin

    g = torch.Generator().manual_seed(4)
    points = torch.randn(2, 30, 3, dtype=torch.float64, generator=g, requires_grad=True)
    weights = torch.rand(30, 5, dtype=torch.float64, generator=g)
    weights = weights / weights.sum(1, keepdim=True)
    transforms = torch.randn(2, 5, 3, 4, dtype=torch.float64, generator=g, requires_grad=True)
    assert torch.autograd.gradcheck(lambda p, a: skin(p, weights, a), (points, transforms))
    # reference: the plain formula through autograd
    blended = torch.einsum("vj,bjxy->bvxy", weights, transforms)
    ref = (blended[..., :3] @ points.unsqueeze(-1)).squeeze(-1) + blended[..., 3]
    torch.testing.assert_close(skin(points, weights, transforms), ref)
