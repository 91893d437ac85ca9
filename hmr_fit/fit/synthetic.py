"""Synthetic fitting problems with ground truth, from open motion data: for tests, tuning and benchmarks.

A problem is a body (betas, pose from a retargeted DeepMimic clip, orientation incl. back views) in front of a
perspective camera, projected to the 23 keypoints, with pixel noise and dropped keypoints. Splits are by whole
clip, so held-out poses come from motions never seen when tuning or training.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from hmr_fit.body import BodyModel
from hmr_fit.fit.camera import FRONT_ORIENT, Camera

# Whole clips per split (the pose prior was fitted without run, punch, dance_b: they are its held-out clips too).
SPLITS = {
    "train": ("walk", "jump", "kick", "spinkick", "spin", "dance_a", "cartwheel", "backflip", "roll", "crawl",
              "getup_faceup", "getup_facedown"),
    "test": ("run", "punch", "dance_b"),
}


@dataclass
class Problems:
    """A batch of synthetic problems.

    Attributes:
        keypoints: (B, K, 2) observed keypoints, pixels (noisy); confidence: (B, K), 0 for dropped points.
        camera: intrinsics per problem.
        betas (B, S), body_pose (B, J-1, 3), global_orient (B, 3), transl (B, 3): the ground truth.
        joints: (B, J, 3) ground-truth joints, metres, camera frame.
        back_view: (B,) bool, the body faces away from the camera.
    """

    keypoints: torch.Tensor
    confidence: torch.Tensor
    camera: Camera
    betas: torch.Tensor
    body_pose: torch.Tensor
    global_orient: torch.Tensor
    transl: torch.Tensor
    joints: torch.Tensor
    back_view: torch.Tensor


def clip_poses(split: str, upright_only: bool = True) -> np.ndarray:
    """(N, 24, 3) poses (root first) of a split's clips. ``upright_only`` keeps frames whose trunk is within 45
    degrees of vertical (photos of people standing, walking, dancing; not cartwheels)."""
    from hmr_fit.fit.motion import load_motions

    names = SPLITS[split]
    poses = np.concatenate([c.poses for c in load_motions() if c.name in names])
    if upright_only:
        up = Rotation.from_rotvec(poses[:, 0]).apply([0.0, 1.0, 0.0])
        poses = poses[up[:, 1] > math.cos(math.radians(45))]
    return poses


def make_problems(body: BodyModel, batch: int, seed: int, split: str = "test", image_size: int = 1000,
                  noise_px: float = 2.0, drop: float = 0.1, back_fraction: float = 0.3,
                  upright_only: bool = True) -> Problems:
    """Sample ``batch`` problems: a clip frame's pose, a random heading (a ``back_fraction`` of them facing away),
    betas ~ N(0, 0.8^2), depth 2.5-8 m, the person anywhere in a square image, pixel noise and dropped points."""
    rng = np.random.default_rng(seed)
    dtype = body.v_template.dtype
    poses = clip_poses(split, upright_only)
    pick = poses[rng.integers(0, len(poses), batch)]
    # Heading: keep the clip's root tilt, replace its yaw by a random one, then face the camera (or away).
    root = Rotation.from_rotvec(pick[:, 0])
    yaw_now = root.as_euler("YXZ")[:, 0]
    back = rng.random(batch) < back_fraction
    yaw = rng.uniform(-1.0, 1.0, batch) + np.where(back, math.pi, 0.0)
    heading = Rotation.from_euler("Y", (yaw - yaw_now)[:, None])
    orient = (Rotation.from_rotvec(FRONT_ORIENT) * heading * root).as_rotvec()
    depth = rng.uniform(2.5, 8.0, batch)
    transl = np.stack([rng.uniform(-0.15, 0.15, batch) * depth, rng.uniform(-0.1, 0.1, batch) * depth, depth], -1)

    def t(x):
        return torch.as_tensor(np.asarray(x), dtype=dtype)

    betas = t(0.8 * rng.standard_normal((batch, body.num_betas)))
    body_pose, global_orient, transl_t = t(pick[:, 1:]), t(orient), t(transl)
    camera = Camera.for_image(image_size, image_size, batch=batch, dtype=dtype)
    with torch.no_grad():
        out = body(betas, body_pose, global_orient, transl_t, return_vertices=False)
    keypoints = camera.project(out.keypoints) + t(noise_px * rng.standard_normal((batch, out.keypoints.shape[1], 2)))
    confidence = t(rng.uniform(0.6, 1.0, keypoints.shape[:2]) * (rng.random(keypoints.shape[:2]) >= drop))
    return Problems(keypoints, confidence, camera, betas, body_pose, global_orient, transl_t, out.joints,
                    torch.as_tensor(back))


def procrustes_error(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(B,) PA-MPJPE: mean joint distance after the best similarity transform of pred onto target, metres.

    Args:
        pred, target: (B, J, 3).
    """
    mp, mt = pred.mean(1, keepdim=True), target.mean(1, keepdim=True)
    p, q = pred - mp, target - mt
    u, s, vt = torch.linalg.svd(p.transpose(1, 2) @ q)
    d = torch.det(u @ vt).sign()
    fix = torch.diag_embed(torch.stack([torch.ones_like(d), torch.ones_like(d), d], -1))
    rot = u @ fix @ vt
    scale = (s * torch.diagonal(fix, dim1=1, dim2=2)).sum(-1) / p.square().sum((1, 2))
    aligned = scale[:, None, None] * p @ rot + mt
    return (aligned - target).norm(dim=-1).mean(-1)


def mpjpe(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(B,) mean joint distance after aligning the roots (pelvis), metres."""
    return ((pred - pred[:, :1]) - (target - target[:, :1])).norm(dim=-1).mean(-1)
