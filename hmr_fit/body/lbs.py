"""Linear blend skinning for SMPL-format models, one pure function per step.

Legend: B bodies, V vertices, J joints, S betas, P pose-corrective inputs (9 (J-1)), K keypoints.
The steps follow the SMPL paper (Loper et al. 2015, eq. 1-4): shape blend, joint regression, pose blend,
rigid kinematic chain, skinning. Written here from the equations (smplx's lbs.py carries a non-open licence).
"""

from __future__ import annotations

import torch


def rodrigues(rotvec: torch.Tensor) -> torch.Tensor:
    """Axis-angle to rotation matrices.

    Args:
        rotvec: (..., 3) axis-angle, radians.
    Returns:
        (..., 3, 3) rotation matrices.
    """
    # The half-angle-free form R = I + sin(t)/t K + (1-cos t)/t^2 K^2 with K = [r]_x is smooth at t = 0 once the
    # two ratios are evaluated with their Taylor series there; a clamp alone would give a wrong gradient at 0.
    theta2 = (rotvec * rotvec).sum(-1, keepdim=True)[..., None]  # (..., 1, 1)
    small = theta2 < 1e-8
    safe_theta2 = torch.where(small, torch.ones_like(theta2), theta2)
    safe_theta = safe_theta2.sqrt()
    a = torch.where(small, 1.0 - theta2 / 6.0, torch.sin(safe_theta) / safe_theta)
    b = torch.where(small, 0.5 - theta2 / 24.0, (1.0 - torch.cos(safe_theta)) / safe_theta2)
    x, y, z = rotvec.unbind(-1)
    zero = torch.zeros_like(x)
    skew = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], dim=-1).reshape(*rotvec.shape[:-1], 3, 3)
    eye = torch.eye(3, dtype=rotvec.dtype, device=rotvec.device).expand_as(skew)
    return eye + a * skew + b * (skew @ skew)


def blend_shapes(betas: torch.Tensor, template: torch.Tensor, shapedirs: torch.Tensor) -> torch.Tensor:
    """Rest vertices (or joints) of a shape.

    Args:
        betas: (B, S) shape coefficients.
        template: (V, 3) mean shape.
        shapedirs: (V, 3, S) shape directions.
    Returns:
        (B, V, 3) shaped rest points.
    """
    # out[b,v,k] = template[v,k] + sum_s betas[b,s] * shapedirs[v,k,s]
    v, k, s = shapedirs.shape
    offsets = (betas @ shapedirs.reshape(v * k, s).T).reshape(-1, v, k)
    return template + offsets


def pose_features(rotmats: torch.Tensor) -> torch.Tensor:
    """SMPL's pose-corrective input: (R_j - I) for the non-root joints, flattened.

    Args:
        rotmats: (B, J, 3, 3) local joint rotations.
    Returns:
        (B, 9 (J-1)) features.
    """
    eye = torch.eye(3, dtype=rotmats.dtype, device=rotmats.device)
    return (rotmats[:, 1:] - eye).flatten(1)


def rigid_chain(rotmats: torch.Tensor, joints: torch.Tensor, parents: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Pose the kinematic tree.

    Args:
        rotmats: (B, J, 3, 3) local rotations (root first).
        joints: (B, J, 3) rest joint locations.
        parents: length-J parent indices, parents[0] = -1, each parent before its children.
    Returns:
        posed_joints: (B, J, 3) joint locations after posing.
        skin_transforms: (B, J, 3, 4) [G_j | t_j] mapping a rest point x to G_j x + t_j, i.e. the world
            rotation about the rest joint: G_j (x - J_j) + posed_joint_j.
    """
    world_rot = [rotmats[:, 0]]
    world_pos = [joints[:, 0]]
    for j in range(1, len(parents)):
        p = parents[j]
        # posed_j = posed_p + G_p (J_j - J_p): the rest bone offset rotated by the parent's world rotation.
        offset = (joints[:, j] - joints[:, p]).unsqueeze(-1)
        world_pos.append(world_pos[p] + (world_rot[p] @ offset).squeeze(-1))
        world_rot.append(world_rot[p] @ rotmats[:, j])
    rot = torch.stack(world_rot, dim=1)
    pos = torch.stack(world_pos, dim=1)
    trans = pos - (rot @ joints.unsqueeze(-1)).squeeze(-1)
    return pos, torch.cat([rot, trans.unsqueeze(-1)], dim=-1)


def skin(points: torch.Tensor, weights: torch.Tensor, skin_transforms: torch.Tensor) -> torch.Tensor:
    """Linear blend skinning.

    Args:
        points: (B, V, 3) rest points (shaped, pose-corrected).
        weights: (V, J) skinning weights, rows sum to 1.
        skin_transforms: (B, J, 3, 4) per-joint rigid transforms from ``rigid_chain``.
    Returns:
        (B, V, 3) posed points.
    """
    b, j = skin_transforms.shape[:2]
    # T[b,v,:] = sum_j weights[v,j] * A[b,j,:] (12 numbers per vertex), then x' = T_rot x + T_trans.
    blended = (weights @ skin_transforms.reshape(b, j, 12)).reshape(b, -1, 3, 4)
    return (blended[..., :3] @ points.unsqueeze(-1)).squeeze(-1) + blended[..., 3]
