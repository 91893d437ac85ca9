"""Pose priors: the shipped mixture prior scores real held-out motion far above random or impossible poses, is
mirror-symmetric and samples plausible poses; joint limits and the bend-direction term behave as hinges; every
term passes gradcheck in float64."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hmr_fit.assets import data_path
from hmr_fit.body import SMPL_JOINT_NAMES
from hmr_fit.fit.motion import load_motions
from hmr_fit.fit.gmm import fit_gmm
from hmr_fit.fit.priors import (
    POSE_PRIOR_FILE, PosePrior, bend_direction_penalty, feature_transform, gmm_nll, joint_limit_penalty,
    limit_arrays, mirror_body_pose,
)

J = {name: i - 1 for i, name in enumerate(SMPL_JOINT_NAMES)}  # body-pose index of each joint


@pytest.fixture(scope="module")
def prior64():
    return PosePrior(dtype=torch.float64)


@pytest.fixture(scope="module")
def held_out(prior64):
    """Frames of the clips the prior never saw (recorded in its metadata)."""
    names = set(prior64.metadata["test_clips"])
    clips = [c for c in load_motions() if c.name in names]
    assert len(clips) == len(names) >= 2
    return torch.as_tensor(np.concatenate([c.body_pose for c in clips]))


def test_shipped_files_load_through_package_resources(prior64):
    path = data_path(POSE_PRIOR_FILE)
    assert path.is_file() and prior64.path == path
    meta = prior64.metadata
    assert not set(meta["test_clips"]) & set(meta["train_clips"])
    assert not set(meta["validation_clips"]) & set(meta["train_clips"])
    assert prior64.num_components == meta["components"]
    clips = load_motions()
    assert len(clips) == 15 and all(c.poses.shape[1:] == (24, 3) for c in clips)


@pytest.mark.parametrize("batch", [1, 3])
def test_shapes_dtypes_and_energy(batch):
    prior = PosePrior()
    pose = 0.1 * torch.randn(batch, 23, 3, generator=torch.Generator().manual_seed(0))
    for out in (prior(pose), prior.nll(pose), prior.limits(pose), prior.bend(pose)):
        assert out.shape == (batch,) and out.dtype == torch.float32 and torch.isfinite(out).all()
    assert torch.allclose(prior.nll(pose.reshape(batch, 69)), prior.nll(pose))
    with pytest.raises(Exception, match="must be"):
        prior(torch.zeros(batch, 24, 3))
    with pytest.raises(Exception, match="must be >= 0"):
        PosePrior(gmm_weight=-1.0)


def test_float32_matches_float64(prior64, held_out):
    prior32 = PosePrior(dtype=torch.float32)
    a = prior32.nll(held_out[:50].float()).double()
    b = prior64.nll(held_out[:50])
    assert torch.allclose(a, b, rtol=1e-4, atol=1e-2)


def test_gradcheck_float64(prior64):
    gen = torch.Generator().manual_seed(1)
    pose = (0.3 * torch.randn(2, 23, 3, generator=gen, dtype=torch.float64)).requires_grad_()
    p = prior64
    assert torch.autograd.gradcheck(
        lambda x: gmm_nll(x, p.transform, p.means, p.prec_chol, p.log_coef, p.gauss_std), (pose,), fast_mode=True)
    # push some components outside the limits so that the hinge is active
    wide = (1.5 * torch.randn(2, 23, 3, generator=gen, dtype=torch.float64)).requires_grad_()
    assert torch.autograd.gradcheck(lambda x: joint_limit_penalty(x, p.lower, p.upper), (wide,), fast_mode=True)
    assert torch.autograd.gradcheck(bend_direction_penalty, (wide,), fast_mode=True)
    assert torch.autograd.gradcheck(p, (wide,), fast_mode=True)


def test_held_out_motion_scores_far_better_than_random_and_impossible_poses(prior64, held_out):
    gen = torch.Generator().manual_seed(2)
    real = prior64.nll(held_out)
    random = prior64.nll(0.5 * torch.randn(500, 23, 3, generator=gen, dtype=torch.float64))
    lo, hi = (torch.as_tensor(a) for a in limit_arrays())
    uniform = prior64.nll(lo + (hi - lo) * torch.rand(500, 23, 3, generator=gen, dtype=torch.float64))
    assert real.median() < random.median() - 50
    assert real.median() < uniform.median() - 50
    assert (real < random.median()).float().mean() > 0.95

    # the same real frames made impossible: knee bent forwards, arm swung through the torso
    knee = held_out.clone()
    knee[:, J["left_knee"]] = torch.tensor([-1.2, 0.0, 0.0], dtype=torch.float64)
    arm = held_out.clone()
    arm[:, J["left_shoulder"]] = torch.tensor([0.0, 0.0, 2.8], dtype=torch.float64)  # across the chest
    for bad in (knee, arm):
        assert (prior64.nll(bad) > real + 5).float().mean() > 0.95
        assert (prior64(bad) > prior64(held_out) + 5).float().mean() > 0.95
    # the full energy also flags them through the hinge terms
    assert (prior64.bend(knee) > 0).all() and (prior64.limits(knee) > 0).all()
    assert (prior64.limits(arm) > 0).all()


def test_zero_pose_is_plausible_but_not_typical(prior64, held_out):
    """T-pose (arms horizontal) is rare in motion data: worse than typical frames, far better than random."""
    gen = torch.Generator().manual_seed(3)
    zero = prior64.nll(torch.zeros(1, 23, 3, dtype=torch.float64))[0]
    random = prior64.nll(0.5 * torch.randn(500, 23, 3, generator=gen, dtype=torch.float64))
    assert zero < random.median() - 50
    assert prior64.limits(torch.zeros(1, 23, 3))[0] == 0 and prior64.bend(torch.zeros(1, 23, 3))[0] == 0


def test_mirrored_poses_score_alike(prior64, held_out):
    gen = torch.Generator().manual_seed(4)
    poses = torch.cat([held_out[::7], 0.4 * torch.randn(20, 23, 3, generator=gen, dtype=torch.float64)])
    mirrored = mirror_body_pose(poses)
    assert torch.allclose(mirror_body_pose(mirrored), poses)
    assert torch.allclose(prior64.nll(mirrored), prior64.nll(poses), rtol=1e-9, atol=1e-7)
    assert torch.allclose(prior64.limits(mirrored), prior64.limits(poses), atol=1e-12)
    assert torch.allclose(prior64.bend(mirrored), prior64.bend(poses), atol=1e-12)


def test_joint_limits_zero_inside_and_growing_outside(prior64, held_out):
    lo, hi = limit_arrays()
    assert (lo < hi).all() and (lo <= 0).all() and (hi >= 0).all()
    # the midline joints are symmetric about the body's plane
    for name in ("spine1", "spine2", "spine3", "neck", "head"):
        assert np.allclose(lo[J[name], 1:], -hi[J[name], 1:])
    inside = torch.as_tensor(lo + (hi - lo) * np.random.default_rng(5).uniform(size=(50, 23, 3)))
    assert (prior64.limits(inside) == 0).all()
    # nearly every real frame lies inside
    assert (prior64.limits(held_out) == 0).double().mean() > 0.97
    pose = torch.zeros(1, 23, 3, dtype=torch.float64)
    values = []
    for excess in (0.0, 0.1, 0.3, 0.6):
        pose[0, J["left_knee"], 0] = float(lo[J["left_knee"], 0]) - excess  # hyper-extension
        values.append(float(prior64.limits(pose)))
    assert values[0] == 0 and values[1] < values[2] < values[3]
    assert np.isclose(values[2], 0.3 ** 2)


def test_bend_direction_flags_only_the_wrong_way(prior64):
    def single(joint, rotvec):
        pose = torch.zeros(1, 23, 3, dtype=torch.float64)
        pose[0, J[joint]] = torch.tensor(rotvec, dtype=torch.float64)
        return float(bend_direction_penalty(pose))

    assert single("left_knee", [1.5, 0, 0]) == 0 and single("right_knee", [1.5, 0, 0]) == 0
    assert single("left_knee", [-1.0, 0, 0]) > 0.5 and single("right_knee", [-1.0, 0, 0]) > 0.5
    assert single("left_elbow", [0, -1.5, 0]) == 0 and single("right_elbow", [0, 1.5, 0]) == 0
    assert single("left_elbow", [0, 1.0, 0]) > 0.5 and single("right_elbow", [0, -1.0, 0]) > 0.5
    assert single("left_elbow", [1.2, 0, 0]) == 0  # forearm twist is not a bend
    assert single("left_knee", [-0.05, 0, 0]) == 0  # a little hyper-extension is tolerated


def test_samples_are_plausible_and_reproducible(prior64, held_out):
    a = prior64.sample(400, torch.Generator().manual_seed(6))
    b = prior64.sample(400, torch.Generator().manual_seed(6))
    assert a.shape == (400, 23, 3) and torch.equal(a, b)
    real = prior64.nll(held_out)
    drawn = prior64.nll(a)
    random = prior64.nll(0.5 * torch.randn(400, 23, 3, generator=torch.Generator().manual_seed(7),
                                           dtype=torch.float64))
    # samples sit in the typical set (NLL ~ the entropy), above the data's modes but far below random poses
    assert drawn.median() < real.median() + 25 < random.median() - 100
    # a Gaussian mixture has tails past the hard knee/elbow stop: ~13 % of raw draws bend one slightly wrong
    assert (prior64.bend(a) == 0).double().mean() > 0.8
    assert (prior64.limits(a) < 0.05).double().mean() > 0.85
    inside = prior64.sample(200, torch.Generator().manual_seed(6), max_penalty=0.0)
    assert (prior64.bend(inside) == 0).all() and (prior64.limits(inside) == 0).all()
    cold = prior64.sample(400, torch.Generator().manual_seed(6), temperature=0.5)
    assert prior64.nll(cold).median() < drawn.median()


def test_feature_transform_is_invertible():
    t, std, d = feature_transform()
    assert t.shape == (69, 69) and std.shape == (69 - d,) and (std > 0).all()
    assert abs(np.linalg.det(t)) > 1


def test_fit_gmm_recovers_two_clusters():
    rng = np.random.default_rng(8)
    x = np.concatenate([rng.normal([-3, 0], 0.5, size=(300, 2)), rng.normal([3, 1], 0.5, size=(100, 2))])
    mix, means, _ = fit_gmm(x, np.ones(len(x)), 2, 1e-6, np.random.default_rng(0))
    order = np.argsort(means[:, 0])
    assert np.allclose(means[order], [[-3, 0], [3, 1]], atol=0.15)
    assert np.allclose(mix[order], [0.75, 0.25], atol=0.02)
