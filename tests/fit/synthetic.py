"""Synthetic ground truth for fitting tests: bodies with random (not motion-capture) poses, known shape and camera,
projected to keypoints. ``hmr_fit.fit.synthetic`` makes problems from real motion; this one stresses the fitter
with poses no prior has seen."""

from __future__ import annotations

import math

import torch
from scipy.spatial.transform import Rotation

from hmr_fit.body.lbs import rodrigues
from hmr_fit.fit.camera import FRONT_ORIENT, Camera


def synthetic_people(body, batch: int, seed: int, back: bool = False, pose_sigma: float = 0.2,
                     image_size: int = 1000, noise_px: float = 0.0):
    """Returns (keypoints (B,K,2), confidence (B,K), camera, truth dict) for upright people facing the camera
    (turned away when ``back``) with yaw within +-50 degrees."""
    g = torch.Generator().manual_seed(seed)
    dtype = body.v_template.dtype
    betas = 0.8 * torch.randn(batch, 10, generator=g, dtype=dtype)
    pose = pose_sigma * torch.randn(batch, 23, 3, generator=g, dtype=dtype)
    yaw = (torch.rand(batch, generator=g, dtype=dtype) - 0.5) * 1.75 + (math.pi if back else 0.0)
    rot = rodrigues(torch.tensor(FRONT_ORIENT, dtype=dtype).expand(batch, 3)) @ rodrigues(
        torch.stack([torch.zeros_like(yaw), yaw, torch.zeros_like(yaw)], -1))
    orient = torch.as_tensor(Rotation.from_matrix(rot.double().numpy()).as_rotvec(), dtype=dtype)
    transl = torch.stack([0.3 * torch.randn(batch, generator=g, dtype=dtype),
                          0.2 * torch.randn(batch, generator=g, dtype=dtype),
                          3.0 + 3.0 * torch.rand(batch, generator=g, dtype=dtype)], -1)
    camera = Camera.for_image(image_size, image_size, batch=batch, dtype=dtype)
    out = body(betas, pose, orient, transl, return_vertices=False)
    keypoints = camera.project(out.keypoints) + noise_px * torch.randn(batch, 23, 2, generator=g, dtype=dtype)
    truth = {"betas": betas, "body_pose": pose, "global_orient": orient, "transl": transl, "joints": out.joints}
    return keypoints, torch.ones(batch, 23, dtype=dtype), camera, truth


from hmr_fit.fit.synthetic import procrustes_error  # noqa: E402,F401  (re-exported for the tests)
