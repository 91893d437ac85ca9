"""Initial translation and orientation per person: depth by similar triangles, facing or turned away."""

from __future__ import annotations

import torch

from hmr_fit.body.joints import KEYPOINT_NAMES
from hmr_fit.fit.camera import BACK_ORIENT, FRONT_ORIENT, Camera

_K = {n: i for i, n in enumerate(KEYPOINT_NAMES)}
# Segments whose 2D length, compared with the body's 3D length, gives the depth. Torso and legs: arms are too
# often foreshortened. Shoulder and hip widths shrink in side views, so they count only as a floor (see below).
SEGMENTS = [(f"{s}_shoulder", f"{s}_hip") for s in ("left", "right")] + \
           [(f"{s}_hip", f"{s}_knee") for s in ("left", "right")] + \
           [(f"{s}_knee", f"{s}_ankle") for s in ("left", "right")] + \
           [("left_shoulder", "right_shoulder"), ("left_hip", "right_hip")]
TORSO = ["left_shoulder", "right_shoulder", "left_hip", "right_hip"]


def segment_lengths(points: torch.Tensor) -> torch.Tensor:
    """(B, K, D) keypoints -> (B, S) lengths of SEGMENTS."""
    a = points[:, [_K[p] for p, _ in SEGMENTS]]
    b = points[:, [_K[q] for _, q in SEGMENTS]]
    return (a - b).norm(dim=-1)


def initial_depth(keypoints: torch.Tensor, confidence: torch.Tensor, rest_keypoints: torch.Tensor,
                  camera: Camera, min_confidence: float = 0.3, fallback_height_fraction: float = 0.5) -> torch.Tensor:
    """Depth per person from similar triangles: z = f * L3D / L2D, over the confident segments.

    Args:
        keypoints: (B, K, 2) detected keypoints, pixels.
        confidence: (B, K) in [0, 1].
        rest_keypoints: (B, K, 3) or (K, 3) the body's keypoints at zero pose, metres.
        camera: intrinsics per person.
        min_confidence: both ends of a segment must reach it.
        fallback_height_fraction: with no usable segment, assume the keypoints' vertical spread is this fraction
            of a 1.7 m body.
    Returns:
        (B,) depths, metres.
    """
    if rest_keypoints.dim() == 2:
        rest_keypoints = rest_keypoints.expand(keypoints.shape[0], -1, -1)
    focal = camera.focal.mean(-1)
    l2 = segment_lengths(keypoints)
    l3 = segment_lengths(rest_keypoints)
    ca = confidence[:, [_K[p] for p, _ in SEGMENTS]]
    cb = confidence[:, [_K[q] for _, q in SEGMENTS]]
    ok = (ca >= min_confidence) & (cb >= min_confidence) & (l2 > 1.0)
    # Foreshortening only shortens 2D segments, which makes each ratio over-estimate depth; the smallest ratio over
    # torso/leg segments is the least foreshortened one. Use the median of the two smallest, for robustness to a
    # single mislocalised keypoint.
    ratio = torch.where(ok, l3 / l2.clamp(min=1e-6), torch.full_like(l2, float("inf")))
    smallest = ratio.sort(dim=-1).values
    two = smallest[:, :2]
    depth_ratio = torch.where(torch.isfinite(two[:, 1]), two.mean(-1), two[:, 0])
    # Fallback: vertical spread of confident points.
    conf_mask = confidence >= min_confidence
    big = torch.finfo(keypoints.dtype).max
    y = keypoints[..., 1]
    spread = (torch.where(conf_mask, y, torch.full_like(y, -big)).amax(-1)
              - torch.where(conf_mask, y, torch.full_like(y, big)).amin(-1))
    fallback = 1.7 * fallback_height_fraction / spread.clamp(min=1.0)
    depth_ratio = torch.where(torch.isfinite(depth_ratio), depth_ratio, fallback)
    return (focal * depth_ratio).clamp(0.3, 500.0)


def initial_translation(keypoints: torch.Tensor, confidence: torch.Tensor, rest_keypoints: torch.Tensor,
                        camera: Camera, depth: torch.Tensor, orient_matrix: torch.Tensor,
                        min_confidence: float = 0.3) -> torch.Tensor:
    """Translation that puts the body's torso centre on the detected torso centre at the given depth.

    Args:
        keypoints: (B, K, 2); confidence: (B, K); rest_keypoints: (B, K, 3) or (K, 3).
        depth: (B,) metres; orient_matrix: (B, 3, 3) the initial global rotation.
    Returns:
        (B, 3) translation, metres.
    """
    if rest_keypoints.dim() == 2:
        rest_keypoints = rest_keypoints.expand(keypoints.shape[0], -1, -1)
    torso = [_K[n] for n in TORSO]
    w = (confidence[:, torso] >= min_confidence).to(keypoints.dtype) * confidence[:, torso]
    # With no confident torso point, use all confident points, then the image centre.
    w_all = (confidence >= min_confidence).to(keypoints.dtype) * confidence
    centre_2d = torch.where(
        (w.sum(-1, keepdim=True) > 0), (keypoints[:, torso] * w[..., None]).sum(1) / w.sum(-1, keepdim=True).clamp(
            min=1e-9),
        torch.where(w_all.sum(-1, keepdim=True) > 0,
                    (keypoints * w_all[..., None]).sum(1) / w_all.sum(-1, keepdim=True).clamp(min=1e-9),
                    camera.center))
    target = camera.backproject(centre_2d, depth)
    body_centre = rest_keypoints[:, torso].mean(1)
    return target - (orient_matrix @ body_centre.unsqueeze(-1)).squeeze(-1)


def orientation_hypotheses(batch: int, dtype: torch.dtype, device) -> torch.Tensor:
    """(2, B, 3) axis-angle: facing the camera, and turned away. The fitter's first stage keeps the better."""
    front = torch.tensor(FRONT_ORIENT, dtype=dtype, device=device).expand(batch, 3)
    back = torch.tensor(BACK_ORIENT, dtype=dtype, device=device).expand(batch, 3)
    return torch.stack([front, back])


def standing_pose(dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(23, 3) a relaxed standing pose: arms lowered 70 degrees from the T-pose, elbows slightly bent, legs
    straight. A fit starts from it: limbs the photo does not show (legs cut off by the frame) stay standing."""
    from hmr_fit.body.joints import SMPL_JOINT_NAMES

    pose = torch.zeros(23, 3, dtype=dtype)
    for side, sign in (("left", -1.0), ("right", 1.0)):
        pose[SMPL_JOINT_NAMES.index(f"{side}_shoulder") - 1, 2] = sign * 1.2
        pose[SMPL_JOINT_NAMES.index(f"{side}_elbow") - 1, 1] = sign * 0.3
    return pose
