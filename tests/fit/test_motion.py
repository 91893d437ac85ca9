"""DeepMimic -> SMPL retarget: frame layout, axes, the arms-down rest pose, bend signs, and the shipped clips."""

from __future__ import annotations

import json

import numpy as np
import torch

from hmr_fit.body import SMPL_JOINT_NAMES
from hmr_fit.fit.motion import (
    DEEPMIMIC_FRAME_SIZE, axis_angle_to_matrix, load_motions, matrix_to_axis_angle, mirror_pose, parse_deepmimic,
    retarget_to_smpl,
)

J = {name: i for i, name in enumerate(SMPL_JOINT_NAMES)}


def _frame(**angles):
    """One DeepMimic frame at rest (identity quaternions), with revolute angles set by name."""
    f = np.zeros(DEEPMIMIC_FRAME_SIZE)
    f[0] = 1 / 30
    f[2] = 0.9
    for start in (4, 8, 12, 16, 21, 25, 30, 35, 39):
        f[start] = 1.0
    index = {"right_knee": 20, "right_elbow": 29, "left_knee": 34, "left_elbow": 43}
    for name, value in angles.items():
        f[index[name]] = value
    return f


def _retarget(*frames):
    return retarget_to_smpl(parse_deepmimic(json.dumps({"Loop": "none", "Frames": [list(f) for f in frames]})))


def test_rest_frame_is_arms_down_and_bends_have_smpl_signs():
    poses, root = _retarget(_frame(), _frame(left_knee=-1.0, right_knee=-0.5, left_elbow=1.2, right_elbow=0.7))
    rest, bent = poses
    assert np.allclose(rest[J["left_shoulder"]], [0, 0, -np.pi / 2])  # T-pose arm rotated down
    assert np.allclose(rest[J["right_shoulder"]], [0, 0, np.pi / 2])
    others = [j for j in range(24) if j not in (J["left_shoulder"], J["right_shoulder"])]
    assert np.allclose(rest[others], 0)
    assert np.allclose(bent[J["left_knee"]], [1.0, 0, 0]) and np.allclose(bent[J["right_knee"]], [0.5, 0, 0])
    assert np.allclose(bent[J["left_elbow"]], [0, -1.2, 0]) and np.allclose(bent[J["right_elbow"]], [0, 0.7, 0])
    assert np.allclose(root[0], [0, 0.9, 0])


def test_axes_and_splits():
    f = _frame()
    f[1:4] = [1.0, 0.9, 0.2]  # DeepMimic forward x, up y, right z
    q = np.array([np.cos(0.3), 0, 0, np.sin(0.3)])  # chest: 0.6 rad about DeepMimic z (its right axis)
    f[8:12] = q
    f[12:16] = q
    poses, root = _retarget(f)
    assert np.allclose(root[0], [-0.2, 0.9, 1.0])  # SMPL: forward z, left x
    for joint in ("spine1", "spine2", "spine3"):  # +0.6 about DeepMimic z (right) leans back: SMPL -x, split in 3
        assert np.allclose(poses[0, J[joint]], [-0.2, 0, 0])
    assert np.allclose(poses[0, J["neck"]], [-0.3, 0, 0]) and np.allclose(poses[0, J["head"]], [-0.3, 0, 0])


def test_rotation_helpers_round_trip():
    rng = np.random.default_rng(0)
    r = rng.normal(size=(200, 3))
    r = r / np.linalg.norm(r, axis=1, keepdims=True) * rng.uniform(0, np.pi - 1e-3, size=(200, 1))
    assert np.allclose(matrix_to_axis_angle(axis_angle_to_matrix(r)), r, atol=1e-9)
    pose = rng.normal(size=(4, 24, 3))
    assert np.allclose(mirror_pose(mirror_pose(pose)), pose)


def test_shipped_clips_walk_forward_with_left_on_plus_x(open_model):
    clips = {c.name: c for c in load_motions()}
    assert {"walk", "run", "jump", "kick", "punch", "cartwheel", "backflip"} <= set(clips)
    walk = clips["walk"]
    assert walk.poses.shape == (39, 24, 3) and np.isclose(walk.fps, 30, atol=0.1)
    heading = axis_angle_to_matrix(walk.poses[:, 0]) @ np.array([0.0, 0.0, 1.0])
    travel = walk.root_position[-1] - walk.root_position[0]
    assert heading.mean(0) @ travel / np.linalg.norm(travel) > 0.9  # walks the way it faces
    pose = torch.as_tensor(walk.poses[:1], dtype=torch.float32)
    out = open_model(body_pose=pose[:, 1:], global_orient=pose[:, 0], return_vertices=False)
    joints = out.joints[0].numpy()
    left_dir = np.cross(np.array([0.0, 1.0, 0.0]), heading[0])  # up x forward = left in SMPL
    assert (joints[J["left_hip"]] - joints[J["right_hip"]]) @ left_dir > 0.1
    # arms hang: wrists below shoulders
    for side in ("left", "right"):
        assert joints[J[f"{side}_wrist"], 1] < joints[J[f"{side}_shoulder"], 1] - 0.3
