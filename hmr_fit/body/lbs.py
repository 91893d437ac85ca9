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


def chain_levels(parents: list[int] | tuple[int, ...], device=None) -> dict[str, list[torch.Tensor] | torch.Tensor]:
    """Precomputed index tensors to pose the tree level by level (depth 9 for SMPL: 9 batched steps, not 23).

    Joints are reordered so that each depth level is a contiguous block ("order"); per level, "parent_pos"
    indexes each joint's parent within the previous level; "inverse" restores the original joint order.
    """
    depth = [0] * len(parents)
    for j in range(1, len(parents)):
        depth[j] = depth[parents[j]] + 1
    levels = [[j for j in range(len(parents)) if depth[j] == d] for d in range(max(depth) + 1)]
    order = [j for level in levels for j in level]
    long = dict(dtype=torch.long, device=device)
    return {
        "order": torch.tensor(order, **long),
        "inverse": torch.tensor([order.index(j) for j in range(len(parents))], **long),
        "parents": torch.tensor([max(p, 0) for p in parents], **long),
        "sizes": [len(level) for level in levels],
        "parent_pos": [torch.tensor([levels[d - 1].index(parents[j]) for j in levels[d]], **long)
                       for d in range(1, len(levels))],
    }


def rigid_chain(rotmats: torch.Tensor, joints: torch.Tensor, parents: list[int] | tuple[int, ...],
                levels: dict | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Pose the kinematic tree.

    Args:
        rotmats: (B, J, 3, 3) local rotations (root first).
        joints: (B, J, 3) rest joint locations.
        parents: length-J parent indices, parents[0] = -1, each parent before its children.
        levels: ``chain_levels(parents)`` on the same device, precomputed by callers that pose many times.
    Returns:
        posed_joints: (B, J, 3) joint locations after posing.
        skin_transforms: (B, J, 3, 4) [G_j | t_j] mapping a rest point x to G_j x + t_j, i.e. the world
            rotation about the rest joint: G_j (x - J_j) + posed_joint_j.
    """
    levels = chain_levels(parents, joints.device) if levels is None else levels
    # Rest bone offsets J_j - J_parent (the root keeps its location), then everything in level order.
    offsets = joints - joints.index_select(1, levels["parents"])
    offsets = torch.cat([joints[:, :1], offsets[:, 1:]], dim=1).index_select(1, levels["order"])
    local = rotmats.index_select(1, levels["order"])
    sizes = levels["sizes"]
    rots, poss = [local[:, :1]], [offsets[:, :1]]
    start = sizes[0]
    for size, parent_pos in zip(sizes[1:], levels["parent_pos"]):
        block = slice(start, start + size)
        parent_rot = rots[-1].index_select(1, parent_pos)
        # posed_j = posed_p + G_p (J_j - J_p): the rest bone offset rotated by the parent's world rotation;
        # G_j = G_p R_j.
        poss.append(poss[-1].index_select(1, parent_pos)
                    + (parent_rot @ offsets[:, block].unsqueeze(-1)).squeeze(-1))
        rots.append(parent_rot @ local[:, block])
        start += size
    rot = torch.cat(rots, dim=1).index_select(1, levels["inverse"])
    pos = torch.cat(poss, dim=1).index_select(1, levels["inverse"])
    trans = pos - (rot @ joints.unsqueeze(-1)).squeeze(-1)
    return pos, torch.cat([rot, trans.unsqueeze(-1)], dim=-1)


def skin(points: torch.Tensor, weights: torch.Tensor, skin_transforms: torch.Tensor) -> torch.Tensor:
    """Linear blend skinning.

    Args:
        points: (B, V, 3) rest points (shaped, pose-corrected).
        weights: (V, J) skinning weights, rows sum to 1 (treated as constant: no gradient).
        skin_transforms: (B, J, 3, 4) per-joint rigid transforms from ``rigid_chain``.
    Returns:
        (B, V, 3) posed points.
    """
    return _Skin.apply(points, weights, skin_transforms)


class _Skin(torch.autograd.Function):
    """LBS with a hand-written backward: autograd's generic one for the element-wise form below was slower than
    the forward by 4x; this one is two products of the same size as the forward's."""

    @staticmethod
    def forward(ctx, points, weights, skin_transforms):
        b, j = skin_transforms.shape[:2]
        # T[v,b,:] = sum_j weights[v,j] * A[b,j,:] as one (V, J) x (J, B*12) product, then x' = T_rot x + T_trans,
        # vertex-major and written out element-wise (batched 3x3 matmuls over B*V tiny matrices are much slower).
        blended = (weights @ skin_transforms.transpose(0, 1).reshape(j, b * 12)).reshape(-1, b, 3, 4)
        p = points.transpose(0, 1)  # (V, B, 3)
        posed = (blended[..., 3] + blended[..., 0] * p[..., 0:1] + blended[..., 1] * p[..., 1:2]
                 + blended[..., 2] * p[..., 2:3])
        ctx.save_for_backward(points, weights, blended)
        return posed.transpose(0, 1)

    @staticmethod
    def backward(ctx, grad_out):
        points, weights, blended = ctx.saved_tensors
        grad_points = grad_transforms = None
        g = grad_out.transpose(0, 1)  # (V, B, 3)
        if ctx.needs_input_grad[0]:
            # d x'_i / d x_k = T[i, k]
            # grad_x[k] = sum_i T[i, k] g_i, rows of T weighted by the output gradient
            grad_points = (blended[..., 0, :3] * g[..., 0:1] + blended[..., 1, :3] * g[..., 1:2]
                           + blended[..., 2, :3] * g[..., 2:3]).transpose(0, 1)
        if ctx.needs_input_grad[2]:
            # d x'_i / d T[i, k] = (x, 1)_k, then back through T = W A: grad_A = W^T grad_T
            p = points.transpose(0, 1)
            homogeneous = torch.cat([p, torch.ones_like(p[..., :1])], dim=-1)  # (V, B, 4)
            grad_blended = g.unsqueeze(-1) * homogeneous.unsqueeze(-2)  # (V, B, 3, 4)
            v, b = grad_blended.shape[:2]
            j = weights.shape[1]
            grad_transforms = (weights.T @ grad_blended.reshape(v, b * 12)).reshape(j, b, 3, 4).transpose(0, 1)
        return grad_points, None, grad_transforms


def skin_regressed(points: torch.Tensor, weights: torch.Tensor, skin_transforms: torch.Tensor) -> torch.Tensor:
    """Linear regressions of skinned vertices, without skinning the mesh.

    A keypoint regressed from posed vertices, k = sum_v r_v x'_v with x'_v = sum_j w_vj (G_j x_v + t_j), equals
    sum_j (G_j p_j + c_j t_j) with p_j = sum_v r_v w_vj x_v and c_j = sum_v r_v w_vj: exact, and it costs J
    points per keypoint instead of the whole regressor support.

    Args:
        points: (B, K, J, 3) per keypoint and joint, the skinning-weighted regressor applied to the rest mesh (p).
        weights: (K, J) per keypoint and joint, the regressor's total skinning weight (c).
        skin_transforms: (B, J, 3, 4) from ``rigid_chain``.
    Returns:
        (B, K, 3) the regressed posed points.
    """
    rot, trans = skin_transforms[..., :3], skin_transforms[..., 3]
    # out[b,k,x] = sum_j sum_y rot[b,j,x,y] p[b,k,j,y] + sum_j c[k,j] trans[b,j,x]
    return torch.einsum("bjxy,bkjy->bkx", rot, points) + torch.einsum("kj,bjx->bkx", weights, trans)
