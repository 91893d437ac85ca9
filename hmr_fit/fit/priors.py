"""Pose priors that need no licence-gated data: a Gaussian mixture fitted on open motion, joint-angle limits and a
knee/elbow bend-direction term.

Legend: B poses, K mixture components, D mixture features, J = 23 body joints (SMPL order without the pelvis).
Poses are SMPL ``body_pose`` in axis-angle, ``(B, 23, 3)``, radians, in the model's conventions (zero pose =
T-pose, y up, the body faces +z, its left is +x). Every term is a pure torch function, differentiable, float32
or float64; :class:`PosePrior` bundles them with weights.

Why (``shared/docs/lsr1-prototype.md``): with only an L2 prior the keypoint energy is under-constrained; the fits
reach energies below the ground truth's with 100+ mm 3D error and fall into left/right flips.

1. **Mixture prior** (:func:`gmm_nll`). The 69 pose numbers are mapped by a fixed invertible linear map ``T``
   (:func:`feature_transform`) to ``z = T x``. The first ``D = 28`` features are what the motion data informs:
   hips, ankles, shoulders (3 each), the knee's x and the elbow's y angle (their bend axes), the sum of the three
   spine rotations and the sum of neck and head. They get a full-covariance Gaussian mixture, fitted by EM on the
   DeepMimic clips retargeted to SMPL (``data/motions_smpl.npz``) plus their left/right mirror images, then made
   exactly mirror-symmetric by adding every component's mirror image. The other 41 features (spine and neck
   splits, the knee's and elbow's off-axis angles, collars, wrists, hands, toes) are not in the data and get
   independent zero-mean Gaussians with hand-set widths. ``-log p(x)`` is then an exact negative log density
   over the 69 numbers (``|det T|`` included), so held-out log-likelihoods are comparable. SMPLify fitted a GMM
   on the 69 numbers of CMU mocap; its model files are not open, so this is a re-implementation of the idea on
   open data, not its weights.
2. **Joint limits** (:func:`joint_limit_penalty`): a squared hinge on each axis-angle component outside
   ``[lo, hi]`` per joint (:data:`JOINT_LIMITS`, left side and midline; the right side is its mirror image).
3. **Bend direction** (:func:`bend_direction_penalty`): knees must not bend the shin forwards and elbows must
   not bend the forearm backwards, measured on the rotated limb direction (SMPLify's "angle prior" idea, on the
   geometry rather than on one axis-angle component).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from hmr_fit.body.joints import SMPL_JOINT_NAMES
from hmr_fit.body.lbs import rodrigues
from hmr_fit.errors import InputError, ModelFileError
from hmr_fit.keypoints.formats import mirror_name

POSE_PRIOR_FILE = "pose_prior.npz"
BODY_JOINTS: tuple[str, ...] = SMPL_JOINT_NAMES[1:]
_J = {name: i for i, name in enumerate(BODY_JOINTS)}

# ---------------------------------------------------------------------------------------------------------------
# Joint limits, radians, on the axis-angle components (x, y, z) of each local rotation, left side and midline.
# Sign conventions in the T-pose (left limb): hip x < 0 swings the thigh forward, z > 0 abducts; knee x > 0 bends;
# ankle x > 0 points the toes down; spine/neck x > 0 bends forward; shoulder z > 0 raises the arm, y < 0 swings it
# forward, x twists it; elbow y < 0 bends; wrist z flexes. Sources: magnitudes from dm-control 1.0.52's
# humanoid_CMU_V2020.xml (Apache-2.0; femur rx -2.79..0.35, tibia 0.01..2.97, foot rx -0.79..0.8, toes -1.57..0.35,
# spine/neck segments rx -0.35..0.79 and +-0.52, clavicle 0..0.35, humerus +-1.57, radius -0.17..2.97, hand
# +-0.79/1.57), mapped to SMPL axes by hand, then widened where the retargeted DeepMimic motion (walk ... backflip)
# goes further (hips, ankles, shoulders), so that >= 99.9 % of its frames lie inside. For large rotations the
# axis-angle components only approximate anatomical angles; the limits are a guard against impossible poses, the
# mixture prior carries the fine structure.
JOINT_LIMITS: dict[str, tuple[tuple[float, float], tuple[float, float], tuple[float, float]]] = {
    "left_hip": ((-2.6, 0.6), (-1.3, 1.3), (-0.7, 1.3)),
    "left_knee": ((-0.25, 2.9), (-0.4, 0.4), (-0.2, 0.2)),
    "left_ankle": ((-1.2, 1.1), (-1.05, 1.05), (-1.0, 1.0)),
    "left_foot": ((-0.9, 0.5), (-0.2, 0.2), (-0.2, 0.2)),
    "spine1": ((-0.4, 0.8), (-0.55, 0.55), (-0.55, 0.55)),
    "spine2": ((-0.4, 0.8), (-0.55, 0.55), (-0.55, 0.55)),
    "spine3": ((-0.4, 0.8), (-0.55, 0.55), (-0.55, 0.55)),
    "neck": ((-0.7, 0.9), (-0.9, 0.9), (-0.6, 0.6)),
    "head": ((-0.5, 0.8), (-0.8, 0.8), (-0.55, 0.55)),
    "left_collar": ((-0.3, 0.3), (-0.4, 0.4), (-0.3, 0.5)),
    "left_shoulder": ((-2.0, 1.6), (-2.3, 1.8), (-1.9, 1.8)),
    "left_elbow": ((-1.2, 1.2), (-2.9, 0.15), (-0.3, 0.3)),
    "left_wrist": ((-1.2, 1.2), (-0.6, 0.6), (-1.2, 1.2)),
    "left_hand": ((-0.4, 0.4), (-0.4, 0.4), (-0.4, 0.4)),
}

# Widths (std, rad) of the features the motion data does not inform (DeepMimic has no collars, wrists, hands or
# toes, one chest and one neck joint, and hinge knees/elbows). Hand-set: about a quarter of the joint range.
_UNINFORMED_STD: dict[str, tuple[float, float, float]] = {
    "spine_split": (0.12, 0.12, 0.12), "neck_split": (0.2, 0.2, 0.2),
    "knee_offaxis": (0.0, 0.12, 0.06), "elbow_offaxis": (0.4, 0.0, 0.1),
    "collar": (0.1, 0.15, 0.15), "wrist": (0.35, 0.2, 0.4), "hand": (0.15, 0.15, 0.15), "foot": (0.2, 0.08, 0.08),
}



def mirror_body_pose(pose: torch.Tensor) -> torch.Tensor:
    """Mirror body poses left <-> right (reflection x -> -x): swap left/right joints, negate the y and z parts.

    Args:
        pose: (B, 23, 3) axis-angle.
    Returns:
        (B, 23, 3) mirrored poses.
    """
    perm = [_J[mirror_name(n)] for n in BODY_JOINTS]
    sign = torch.tensor([1.0, -1.0, -1.0], dtype=pose.dtype, device=pose.device)
    return pose[:, perm] * sign


def limit_arrays() -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper joint limits for all 23 body joints, right side mirrored from the left.

    Returns:
        lo, hi: (23, 3) each, radians, per axis-angle component.
    """
    lo, hi = np.zeros((23, 3)), np.zeros((23, 3))
    for name, ranges in JOINT_LIMITS.items():
        box = np.array(ranges)  # (3, 2)
        lo[_J[name]], hi[_J[name]] = box[:, 0], box[:, 1]
        if name.startswith("left_"):  # mirror: x keeps its range, y and z flip sign
            right = _J[mirror_name(name)]
            lo[right] = [box[0, 0], -box[1, 1], -box[2, 1]]
            hi[right] = [box[0, 1], -box[1, 0], -box[2, 0]]
    return lo, hi


# ---------------------------------------------------------------------------------------------------------------
# 1. Mixture prior


def feature_transform() -> tuple[np.ndarray, np.ndarray, int]:
    """The fixed linear map from the 69 pose numbers to prior features, ``z = T x``.

    Returns:
        T: (69, 69) invertible matrix; rows 0..D-1 are the mixture features, the rest independent Gaussians.
        std: (69 - D,) widths of the independent features, radians.
        D: number of mixture features (28).
    """
    gmm_rows: list[np.ndarray] = []
    gauss_rows: list[np.ndarray] = []
    std: list[float] = []

    def row(*terms: tuple[str, int, float]) -> np.ndarray:
        r = np.zeros(69)
        for joint, axis, coef in terms:
            r[3 * _J[joint] + axis] += coef
        return r

    for axis in range(3):  # spine: the sum goes to the mixture, the split to Gaussians
        gmm_rows.append(row(("spine1", axis, 1.0), ("spine2", axis, 1.0), ("spine3", axis, 1.0)))
    for axis in range(3):
        gmm_rows.append(row(("neck", axis, 1.0), ("head", axis, 1.0)))
    for side in ("left", "right"):
        for joint in ("hip", "ankle", "shoulder"):
            gmm_rows += [row((f"{side}_{joint}", a, 1.0)) for a in range(3)]
        gmm_rows.append(row((f"{side}_knee", 0, 1.0)))
        gmm_rows.append(row((f"{side}_elbow", 1, 1.0)))
    for axis in range(3):
        gauss_rows += [row(("spine1", axis, 1.0), ("spine2", axis, -1.0)),
                       row(("spine2", axis, 1.0), ("spine3", axis, -1.0))]
        std += [_UNINFORMED_STD["spine_split"][axis]] * 2
        gauss_rows.append(row(("neck", axis, 1.0), ("head", axis, -1.0)))
        std.append(_UNINFORMED_STD["neck_split"][axis])
    for side in ("left", "right"):
        for axis in (1, 2):
            gauss_rows.append(row((f"{side}_knee", axis, 1.0)))
            std.append(_UNINFORMED_STD["knee_offaxis"][axis])
        for axis in (0, 2):
            gauss_rows.append(row((f"{side}_elbow", axis, 1.0)))
            std.append(_UNINFORMED_STD["elbow_offaxis"][axis])
        for joint in ("collar", "wrist", "hand", "foot"):
            for axis in range(3):
                gauss_rows.append(row((f"{side}_{joint}", axis, 1.0)))
                std.append(_UNINFORMED_STD[joint][axis])
    t = np.stack(gmm_rows + gauss_rows)
    return t, np.array(std), len(gmm_rows)


def gmm_nll(pose: torch.Tensor, transform: torch.Tensor, means: torch.Tensor, prec_chol: torch.Tensor,
            log_coef: torch.Tensor, gauss_std: torch.Tensor) -> torch.Tensor:
    """Negative log density of body poses under the mixture prior (nats, over the 69 axis-angle numbers).

    ``-log p(x) = -logsumexp_k [log_coef_k - 0.5 |L_k^T (z_g - mu_k)|^2] - sum_r log N(z_r; 0, std_r^2)
    - log|det T|``, with ``z = T x`` split into mixture features ``z_g`` (D) and the rest ``z_r``; ``log_coef_k``
    holds ``log w_k + log det L_k - D/2 log 2 pi``. The constant ``log|det T|`` is left out here and added by
    :meth:`PosePrior.nll`.

    Args:
        pose: (B, 23, 3) axis-angle body pose, radians.
        transform: (69, 69) feature map ``T``.
        means: (K, D) component means.
        prec_chol: (K, D, D) lower Cholesky factors of the component precisions (precision = L L^T).
        log_coef: (K,) per-component log constants (see above).
        gauss_std: (69 - D,) widths of the independent features.
    Returns:
        (B,) negative log density without the ``log|det T|`` constant.
    """
    x = pose.reshape(pose.shape[0], -1)
    d = means.shape[1]
    # z[b,i] = sum_j T[i,j] x[b,j]
    z = x @ transform.T
    zg, zr = z[:, :d], z[:, d:]
    diff = zg[:, None, :] - means[None]  # (B, K, D)
    # y[b,k,e] = sum_d diff[b,k,d] L[k,d,e]  ->  Mahalanobis |y|^2
    y = torch.einsum("bkd,kde->bke", diff, prec_chol)
    log_comp = log_coef[None] - 0.5 * (y * y).sum(-1)  # (B, K)
    log_mix = torch.logsumexp(log_comp, dim=1)
    r = zr / gauss_std
    log_gauss = (-0.5 * r * r - torch.log(gauss_std) - 0.5 * np.log(2 * np.pi)).sum(-1)
    return -(log_mix + log_gauss)


# ---------------------------------------------------------------------------------------------------------------
# 2. Joint limits and 3. bend direction


def joint_limit_penalty(pose: torch.Tensor, lower: torch.Tensor, upper: torch.Tensor) -> torch.Tensor:
    """Squared hinge on every axis-angle component outside its range.

    Args:
        pose: (B, 23, 3) axis-angle body pose, radians.
        lower: (23, 3) lower limits, radians (see :func:`limit_arrays`).
        upper: (23, 3) upper limits.
    Returns:
        (B,) sum over joints and axes of ``relu(lower - r)^2 + relu(r - upper)^2``, rad^2; zero inside.
    """
    below = torch.relu(lower - pose)
    above = torch.relu(pose - upper)
    return (below * below + above * above).sum(dim=(1, 2))


# Rest direction of the child bone in the joint's frame, T-pose: shins point down, forearms along +-x.
_BEND_JOINTS = (("left_knee", (0.0, -1.0, 0.0), -1.0), ("right_knee", (0.0, -1.0, 0.0), -1.0),
                ("left_elbow", (1.0, 0.0, 0.0), 1.0), ("right_elbow", (-1.0, 0.0, 0.0), 1.0))


def bend_direction_penalty(pose: torch.Tensor, tolerance: float = 0.1) -> torch.Tensor:
    """Penalty for knees bent forwards and elbows bent backwards.

    The child bone's direction after the local rotation, ``v = R(r) u`` with ``u`` the rest direction, must not
    point the wrong way along the body's forward axis z: a shin must not swing forwards (``v_z <= 0``), a forearm
    not backwards (``v_z >= 0``). Up to ``tolerance`` (about the sine of the allowed hyper-extension) is free.

    Args:
        pose: (B, 23, 3) axis-angle body pose, radians.
        tolerance: free wrong-way component, unitless (sine of an angle).
    Returns:
        (B,) sum over both knees and elbows of ``relu(wrong_way - tolerance)^2``.
    """
    idx = [_J[name] for name, _, _ in _BEND_JOINTS]
    rest = torch.tensor([u for _, u, _ in _BEND_JOINTS], dtype=pose.dtype, device=pose.device)  # (4, 3)
    good_sign = torch.tensor([s for _, _, s in _BEND_JOINTS], dtype=pose.dtype, device=pose.device)
    rot = rodrigues(pose[:, idx])  # (B, 4, 3, 3)
    # v[b,j,i] = sum_k R[b,j,i,k] u[j,k]; only the z row is needed
    vz = (rot[..., 2, :] * rest).sum(-1)  # (B, 4)
    wrong = torch.relu(-good_sign * vz - tolerance)
    return (wrong * wrong).sum(-1)


# ---------------------------------------------------------------------------------------------------------------
# The bundle


class PosePrior(torch.nn.Module):
    """The shipped pose prior: mixture NLL + joint limits + bend direction, each with a weight.

    ``prior(body_pose)`` returns the weighted sum ``w_gmm * (nll - nll_floor) + w_limits * limits +
    w_bend * bend`` per pose; the terms are also available one by one. ``nll_floor`` is the smallest NLL over the
    component means, so the mixture term is about zero at the most likely pose and positive elsewhere.

    Args:
        path: npz written by ``scripts/build_pose_prior.py``; None loads the shipped ``data/pose_prior.npz``.
        gmm_weight: weight of the mixture NLL (nats).
        limit_weight: weight of the joint-limit hinge (rad^2).
        bend_weight: weight of the bend-direction term.
        dtype: float32 or float64.
    """

    def __init__(self, path: str | Path | None = None, gmm_weight: float = 1.0, limit_weight: float = 10.0,
                 bend_weight: float = 10.0, dtype: torch.dtype = torch.float32):
        super().__init__()
        for name, value in (("gmm_weight", gmm_weight), ("limit_weight", limit_weight),
                            ("bend_weight", bend_weight)):
            if not value >= 0:
                raise InputError(f"PosePrior {name} must be >= 0, got {value}")
        if path is None:
            from hmr_fit.assets import data_path

            path = data_path(POSE_PRIOR_FILE)
        self.path = Path(path)
        try:
            with np.load(self.path, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
        except (OSError, ValueError) as err:
            raise ModelFileError(f"cannot read pose prior '{self.path}': {err}") from err
        missing = {"transform", "means", "covs", "weights", "gauss_std"} - set(arrays)
        if missing:
            raise ModelFileError(f"pose prior '{self.path}' lacks {sorted(missing)}; rebuild it with "
                                 "scripts/build_pose_prior.py")
        self.metadata = json.loads(str(arrays["metadata"])) if "metadata" in arrays else {}
        self.gmm_weight, self.limit_weight, self.bend_weight = gmm_weight, limit_weight, bend_weight

        covs = arrays["covs"].astype(np.float64)
        # Precision P = S^-1 = L L^T, L lower triangular: invert S in float64 (D = 28, well conditioned after the
        # EM's ridge) and take chol(P), so that the Mahalanobis term is |L^T (z - mu)|^2.
        prec = np.linalg.inv(covs)
        prec_chol = np.linalg.cholesky(prec)
        d = covs.shape[1]
        log_det_l = np.log(np.diagonal(prec_chol, axis1=1, axis2=2)).sum(1)
        log_coef = np.log(arrays["weights"]) + log_det_l - 0.5 * d * np.log(2 * np.pi)
        transform = arrays["transform"].astype(np.float64)
        lo, hi = limit_arrays()

        def buf(name: str, value: np.ndarray) -> None:
            self.register_buffer(name, torch.as_tensor(np.asarray(value, np.float64)).to(dtype))

        buf("transform", transform)
        buf("means", arrays["means"])
        buf("prec_chol", prec_chol)
        buf("log_coef", log_coef)
        buf("gauss_std", arrays["gauss_std"])
        buf("cov_chol", np.linalg.cholesky(covs))
        buf("log_weights", np.log(arrays["weights"]))
        buf("inverse_transform", np.linalg.inv(transform))
        buf("lower", lo)
        buf("upper", hi)
        self.log_abs_det_t = float(np.linalg.slogdet(transform)[1])
        with torch.no_grad():
            self.nll_floor = float(self.nll(self.means_as_poses()).min())

    @property
    def num_components(self) -> int:
        return self.means.shape[0]

    def _check(self, pose: torch.Tensor) -> torch.Tensor:
        if pose.dim() == 2 and pose.shape[1] == 69:
            pose = pose.reshape(-1, 23, 3)
        if pose.dim() != 3 or tuple(pose.shape[1:]) != (23, 3):
            raise InputError(f"body_pose must be (B, 23, 3), got {tuple(pose.shape)}")
        return pose

    def nll(self, pose: torch.Tensor) -> torch.Tensor:
        """Exact negative log density of the mixture prior over the 69 numbers.

        Args:
            pose: (B, 23, 3) axis-angle body pose, radians.
        Returns:
            (B,) nats.
        """
        pose = self._check(pose)
        return gmm_nll(pose, self.transform, self.means, self.prec_chol, self.log_coef,
                       self.gauss_std) - self.log_abs_det_t

    def limits(self, pose: torch.Tensor) -> torch.Tensor:
        """Joint-limit hinge, (B, 23, 3) -> (B,) rad^2 (see :func:`joint_limit_penalty`)."""
        return joint_limit_penalty(self._check(pose), self.lower, self.upper)

    def bend(self, pose: torch.Tensor) -> torch.Tensor:
        """Bend-direction penalty, (B, 23, 3) -> (B,) (see :func:`bend_direction_penalty`)."""
        return bend_direction_penalty(self._check(pose))

    def forward(self, pose: torch.Tensor) -> torch.Tensor:
        """Weighted prior energy.

        Args:
            pose: (B, 23, 3) axis-angle body pose, radians.
        Returns:
            (B,) ``gmm_weight (nll - nll_floor) + limit_weight limits + bend_weight bend``.
        """
        pose = self._check(pose)
        energy = self.gmm_weight * (self.nll(pose) - self.nll_floor)
        if self.limit_weight:
            energy = energy + self.limit_weight * self.limits(pose)
        if self.bend_weight:
            energy = energy + self.bend_weight * self.bend(pose)
        return energy

    @torch.no_grad()
    def most_likely_pose(self) -> torch.Tensor:
        """(23, 3) the component mean with the lowest NLL: a natural pose to start a fit from."""
        means = self.means_as_poses()
        return means[self.nll(means).argmin()]

    def means_as_poses(self) -> torch.Tensor:
        """The component means as poses (independent features at zero).

        Returns:
            (K, 23, 3) axis-angle.
        """
        z = torch.cat([self.means, self.means.new_zeros(self.means.shape[0], self.gauss_std.shape[0])], 1)
        return (z @ self.inverse_transform.T).reshape(-1, 23, 3)

    def sample(self, n: int, generator: torch.Generator | None = None, temperature: float = 1.0,
               max_penalty: float | None = None, max_rounds: int = 50) -> torch.Tensor:
        """Draw body poses from the mixture prior.

        The mixture's tails reach past the joint limits now and then (about one draw in ten bends a knee or elbow
        slightly the wrong way); ``max_penalty`` redraws those.

        Args:
            n: number of poses.
            generator: torch generator (CPU) for reproducible draws.
            temperature: scales every standard deviation (1 = the fitted prior, < 1 = closer to the modes).
            max_penalty: if set, redraw poses whose joint-limit + bend-direction penalty exceeds it (0 = all
                strictly inside), i.e. sample the prior truncated to the plausible set.
            max_rounds: redraw rounds at most; poses still outside after that are kept.
        Returns:
            (n, 23, 3) axis-angle body poses, radians, on this module's device and dtype.
        """
        poses = self._draw(n, generator, temperature)
        if max_penalty is None:
            return poses
        for _ in range(max_rounds):
            bad = (self.limits(poses) + self.bend(poses)) > max_penalty
            if not bool(bad.any()):
                break
            poses[bad] = self._draw(int(bad.sum()), generator, temperature)
        return poses

    def _draw(self, n: int, generator: torch.Generator | None, temperature: float) -> torch.Tensor:
        dtype, device = self.means.dtype, self.means.device
        k = torch.multinomial(self.log_weights.exp().cpu().double(), n, replacement=True, generator=generator)
        eps_g = torch.randn(n, self.means.shape[1], generator=generator, dtype=torch.float64)
        eps_r = torch.randn(n, self.gauss_std.shape[0], generator=generator, dtype=torch.float64)
        k, eps_g, eps_r = k.to(device), eps_g.to(device, dtype), eps_r.to(device, dtype)
        # z_g = mu_k + t C_k eps,  C_k C_k^T = Sigma_k
        zg = self.means[k] + temperature * torch.einsum("nde,ne->nd", self.cov_chol[k], eps_g)
        zr = temperature * self.gauss_std * eps_r
        return (torch.cat([zg, zr], 1) @ self.inverse_transform.T).reshape(n, 23, 3)


# ---------------------------------------------------------------------------------------------------------------
# Fitting (numpy EM; used by scripts/build_pose_prior.py)

