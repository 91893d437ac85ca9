"""Open motion clips for the pose prior and the synthetic tasks: DeepMimic humanoid clips retargeted to SMPL-24.

The clips are DeepMimic's ``humanoid3d_*.txt`` files as pybullet ships them (``data/motions/``, zlib, see
``data/motions/NOTICE.md``). ``scripts/build_motion_data.py`` parses and retargets them with the functions here
and writes ``data/motions_smpl.npz``; :func:`load_motions` reads that file back.

DeepMimic frame layout (44 numbers; checked against pybullet's ``humanoid_pose_interpolator.py``, whose
``Slerp``/``GetPose`` read the same indices, and against ``humanoid.urdf``, whose joints have the same names)::

    [0]      frame duration, s
    [1:4]    root position (x, y, z), metres, world frame
    [4:8]    root rotation quaternion (w, x, y, z), world frame
    [8:12]   chest      quat (w, x, y, z)      [12:16] neck           quat
    [16:20]  right_hip  quat                   [20]    right_knee     angle about z, rad (<= 0 bends)
    [21:25]  right_ankle quat                  [25:29] right_shoulder quat
    [29]     right_elbow angle about z (>= 0 bends)
    [30:34]  left_hip   quat                   [34]    left_knee      angle
    [35:39]  left_ankle quat                   [39:43] left_shoulder  quat
    [43]     left_elbow angle

The DeepMimic character is y-up and faces +x, its right side is +z (``humanoid.urdf``: right hip at z > 0, foot
boxes offset to +x, knees limited to [-3.14, 0] about z). Local rotations are relative to the parent link in
axes that coincide with the world axes at rest, and its rest pose stands with the arms **down**.

SMPL is y-up, faces +z, and the body's left is +x, so a DeepMimic vector maps by ``v_smpl = C v_dm`` with
``C = [[0, 0, -1], [0, 1, 0], [1, 0, 0]]`` (forward x -> z, right z -> -x), and a rotation by ``C R C^T``.
SMPL's zero pose has the arms horizontal, a rest rotation ``A`` away from DeepMimic's (left: +90 deg about z,
right: -90 deg). With ``A`` for the arm chain, a shoulder becomes ``R_s = R_dm A^-1`` and a joint below it
``A R_dm A^-1``, so the posed arm is the same. Legs, spine and neck have the same rest directions in both.
Joints DeepMimic lacks are filled as follows: the chest rotation is split evenly over spine1/2/3 (a third of
its angle each, same axis, so the composition is exact); the neck rotation is split evenly over neck and head;
collars, wrists, hands and toes (``*_foot``) are zero.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hmr_fit.body.joints import SMPL_JOINT_NAMES
from hmr_fit.keypoints.formats import mirror_name

MOTIONS_FILE = "motions_smpl.npz"

# (name, first index in a frame, kind) in frame order; "quat" = 4 numbers (w, x, y, z), "angle" = 1 number.
DEEPMIMIC_LAYOUT: tuple[tuple[str, int, str], ...] = (
    ("root", 4, "quat"), ("chest", 8, "quat"), ("neck", 12, "quat"),
    ("right_hip", 16, "quat"), ("right_knee", 20, "angle"), ("right_ankle", 21, "quat"),
    ("right_shoulder", 25, "quat"), ("right_elbow", 29, "angle"),
    ("left_hip", 30, "quat"), ("left_knee", 34, "angle"), ("left_ankle", 35, "quat"),
    ("left_shoulder", 39, "quat"), ("left_elbow", 43, "angle"),
)
DEEPMIMIC_FRAME_SIZE = 44

# DeepMimic (forward +x, up +y, right +z) -> SMPL (forward +z, up +y, left +x).
DM_TO_SMPL = np.array([[0.0, 0.0, -1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])

# SMPL joint <- DeepMimic joint; split joints get a fraction of the source rotation's angle.
_SOURCES: dict[str, tuple[str, float]] = {
    "pelvis": ("root", 1.0), "left_hip": ("left_hip", 1.0), "right_hip": ("right_hip", 1.0),
    "spine1": ("chest", 1 / 3), "spine2": ("chest", 1 / 3), "spine3": ("chest", 1 / 3),
    "left_knee": ("left_knee", 1.0), "right_knee": ("right_knee", 1.0),
    "left_ankle": ("left_ankle", 1.0), "right_ankle": ("right_ankle", 1.0),
    "neck": ("neck", 0.5), "head": ("neck", 0.5),
    "left_shoulder": ("left_shoulder", 1.0), "right_shoulder": ("right_shoulder", 1.0),
    "left_elbow": ("left_elbow", 1.0), "right_elbow": ("right_elbow", 1.0),
}


@dataclass
class MotionClip:
    """One retargeted clip.

    Attributes:
        name: clip name, e.g. ``"walk"``.
        fps: frames per second (1 / DeepMimic's frame duration).
        poses: (T, 24, 3) SMPL local axis-angle rotations, radians; joint 0 is the root orientation in the
            model's y-up frame, joints 1..23 are ``body_pose``.
        root_position: (T, 3) DeepMimic root (pelvis) position in SMPL axes, metres.
    """

    name: str
    fps: float
    poses: np.ndarray
    root_position: np.ndarray

    @property
    def body_pose(self) -> np.ndarray:
        """(T, 23, 3) local rotations of the non-root joints."""
        return self.poses[:, 1:]


# ---------------------------------------------------------------------------------------------------------------
# Rotation helpers (numpy, float64)


def quat_to_matrix(q: np.ndarray) -> np.ndarray:
    """Unit quaternions (w, x, y, z) to rotation matrices.

    Args:
        q: (..., 4) quaternions, normalised here.
    Returns:
        (..., 3, 3) rotation matrices.
    """
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    w, x, y, z = np.moveaxis(q, -1, 0)
    return np.stack([
        1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
    ], axis=-1).reshape(*q.shape[:-1], 3, 3)


def axis_angle_to_matrix(r: np.ndarray) -> np.ndarray:
    """Rodrigues' formula.

    Args:
        r: (..., 3) axis-angle, radians.
    Returns:
        (..., 3, 3) rotation matrices.
    """
    theta = np.linalg.norm(r, axis=-1, keepdims=True)
    axis = r / np.maximum(theta, 1e-12)
    x, y, z = np.moveaxis(axis, -1, 0)
    zero = np.zeros_like(x)
    k = np.stack([zero, -z, y, z, zero, -x, -y, x, zero], axis=-1).reshape(*r.shape[:-1], 3, 3)
    s, c = np.sin(theta)[..., None], np.cos(theta)[..., None]
    return np.eye(3) + s * k + (1 - c) * (k @ k)


def matrix_to_axis_angle(m: np.ndarray) -> np.ndarray:
    """Rotation matrices to axis-angle with angle in [0, pi].

    Goes through the quaternion (Shepperd's method: the largest of w, x, y, z is computed from the trace, the
    others from off-diagonal sums) so that angles near pi stay accurate.

    Args:
        m: (..., 3, 3) rotation matrices.
    Returns:
        (..., 3) axis-angle, radians.
    """
    shape = m.shape[:-2]
    m = m.reshape(-1, 3, 3)
    tr = np.trace(m, axis1=1, axis2=2)
    cand = np.stack([tr, m[:, 0, 0], m[:, 1, 1], m[:, 2, 2]], axis=1)
    best = np.argmax(cand, axis=1)
    q = np.zeros((len(m), 4))
    for i in range(len(m)):
        a = m[i]
        if best[i] == 0:
            s = np.sqrt(max(tr[i] + 1.0, 1e-12)) * 2
            q[i] = [0.25 * s, (a[2, 1] - a[1, 2]) / s, (a[0, 2] - a[2, 0]) / s, (a[1, 0] - a[0, 1]) / s]
        elif best[i] == 1:
            s = np.sqrt(max(1.0 + a[0, 0] - a[1, 1] - a[2, 2], 1e-12)) * 2
            q[i] = [(a[2, 1] - a[1, 2]) / s, 0.25 * s, (a[0, 1] + a[1, 0]) / s, (a[0, 2] + a[2, 0]) / s]
        elif best[i] == 2:
            s = np.sqrt(max(1.0 + a[1, 1] - a[0, 0] - a[2, 2], 1e-12)) * 2
            q[i] = [(a[0, 2] - a[2, 0]) / s, (a[0, 1] + a[1, 0]) / s, 0.25 * s, (a[1, 2] + a[2, 1]) / s]
        else:
            s = np.sqrt(max(1.0 + a[2, 2] - a[0, 0] - a[1, 1], 1e-12)) * 2
            q[i] = [(a[1, 0] - a[0, 1]) / s, (a[0, 2] + a[2, 0]) / s, (a[1, 2] + a[2, 1]) / s, 0.25 * s]
    q = q / np.linalg.norm(q, axis=1, keepdims=True)
    q = np.where(q[:, :1] < 0, -q, q)  # w >= 0: angle in [0, pi]
    vec_norm = np.linalg.norm(q[:, 1:], axis=1)
    angle = 2 * np.arctan2(vec_norm, q[:, 0])
    scale = np.where(vec_norm > 1e-12, angle / np.maximum(vec_norm, 1e-12), 2.0)  # small angle: r ~ 2 q_vec
    return (q[:, 1:] * scale[:, None]).reshape(*shape, 3)


# ---------------------------------------------------------------------------------------------------------------
# Parsing and retargeting


def parse_deepmimic(text: str) -> dict[str, np.ndarray]:
    """Parse a DeepMimic motion file (JSON with ``"Loop"`` and ``"Frames"``).

    Args:
        text: the file's contents.
    Returns:
        dict with ``duration`` (T,), ``root_position`` (T, 3), and per DeepMimic joint (see
        ``DEEPMIMIC_LAYOUT``) either a (T, 4) quaternion (w, x, y, z) or a (T,) angle; ``loop`` as a 0-d string.
    Raises:
        ValueError: a frame does not have 44 numbers.
    """
    data = json.loads(text)
    frames = np.asarray(data["Frames"], dtype=np.float64)
    if frames.ndim != 2 or frames.shape[1] != DEEPMIMIC_FRAME_SIZE:
        raise ValueError(f"DeepMimic frames must be (T, {DEEPMIMIC_FRAME_SIZE}), got {frames.shape}")
    out = {"duration": frames[:, 0], "root_position": frames[:, 1:4], "loop": np.asarray(str(data.get("Loop")))}
    for name, start, kind in DEEPMIMIC_LAYOUT:
        out[name] = frames[:, start:start + 4] if kind == "quat" else frames[:, start]
    return out


def _rot_z(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


# SMPL's T-pose arm = A @ DeepMimic's arms-down arm (in SMPL axes): left arm -y -> +x, right arm -y -> -x.
ARM_REST = {"left": _rot_z(np.pi / 2), "right": _rot_z(-np.pi / 2)}


def retarget_to_smpl(parsed: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Retarget parsed DeepMimic frames to SMPL-24 local rotations.

    Args:
        parsed: output of :func:`parse_deepmimic`.
    Returns:
        poses: (T, 24, 3) SMPL axis-angle local rotations (joint 0 = root orientation, y-up model frame).
        root_position: (T, 3) root position in SMPL axes, metres.
    """
    c = DM_TO_SMPL
    rot_dm: dict[str, np.ndarray] = {}
    z_axis = np.array([0.0, 0.0, 1.0])
    for name, _, kind in DEEPMIMIC_LAYOUT:
        if kind == "quat":
            rot_dm[name] = quat_to_matrix(parsed[name])
        else:  # revolute joints turn about the link's z axis (humanoid.urdf: <axis xyz="0 0 1"/>)
            rot_dm[name] = axis_angle_to_matrix(parsed[name][:, None] * z_axis)
    # 1. Change of axes: R_smpl = C R_dm C^T (the rest frames of both characters are aligned with their axes).
    rot = {name: c @ r @ c.T for name, r in rot_dm.items()}
    # 2. Arms: SMPL's rest arm is A times DeepMimic's, so the shoulder takes R A^-1 and the elbow A R A^-1.
    for side in ("left", "right"):
        a = ARM_REST[side]
        rot[f"{side}_shoulder"] = rot[f"{side}_shoulder"] @ a.T
        rot[f"{side}_elbow"] = a @ rot[f"{side}_elbow"] @ a.T
    # 3. SMPL joints from their sources; split joints take a fraction of the angle about the same axis.
    t = len(parsed["duration"])
    poses = np.zeros((t, len(SMPL_JOINT_NAMES), 3))
    for j, joint in enumerate(SMPL_JOINT_NAMES):
        if joint in _SOURCES:
            source, fraction = _SOURCES[joint]
            poses[:, j] = fraction * matrix_to_axis_angle(rot[source])
    return poses, parsed["root_position"] @ c.T


def mirror_pose(pose: np.ndarray) -> np.ndarray:
    """Mirror SMPL poses left <-> right (reflection x -> -x): swap left/right joints, negate the y and z parts.

    Args:
        pose: (..., J, 3) axis-angle with J = 24 (root first) or 23 (body pose).
    Returns:
        (..., J, 3) mirrored poses.
    """
    names = SMPL_JOINT_NAMES if pose.shape[-2] == 24 else SMPL_JOINT_NAMES[1:]
    perm = [names.index(mirror_name(n)) for n in names]
    return pose[..., perm, :] * np.array([1.0, -1.0, -1.0])



# ---------------------------------------------------------------------------------------------------------------
# The shipped file


def load_motions(path: str | Path | None = None) -> list[MotionClip]:
    """Load the retargeted clips (``data/motions_smpl.npz`` by default).

    Args:
        path: npz written by ``scripts/build_motion_data.py``; None: the shipped file.
    Returns:
        clips in file order.
    """
    if path is None:
        from hmr_fit.assets import data_path

        path = data_path(MOTIONS_FILE)
    with np.load(path, allow_pickle=False) as data:
        names = [str(n) for n in data["names"]]
        fps = data["fps"]
        offsets = data["offsets"]
        poses = data["poses"].astype(np.float64)
        root = data["root_position"].astype(np.float64)
    return [MotionClip(name, float(fps[i]), poses[offsets[i]:offsets[i + 1]], root[offsets[i]:offsets[i + 1]])
            for i, name in enumerate(names)]
