"""The fitting energy: robust confidence-weighted keypoint reprojection plus pose and shape priors.

Optimizer variables per person, x (B, n) with n = 3 + 3 (J-1) + S + 3 (85 for SMPL with 10 betas):
    [global_orient (3) | body_pose (3 (J-1)) | betas (S) | camera translation (tx/tz, ty/tz, log tz)]
Each term is one function; ``FitEnergy`` sums them with the weights of ``configs/energy/*.yaml``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from hmr_fit.body import BodyModel
from hmr_fit.fit.camera import Camera, params_to_translation

GROUP_ORIENT, GROUP_POSE, GROUP_SHAPE, GROUP_CAMERA = 0, 1, 2, 3


@dataclass(frozen=True)
class Layout:
    """Where each block lives in the optimizer vector."""

    num_joints: int = 24
    num_betas: int = 10

    @property
    def orient(self) -> slice:
        return slice(0, 3)

    @property
    def pose(self) -> slice:
        return slice(3, 3 * self.num_joints)

    @property
    def betas(self) -> slice:
        return slice(3 * self.num_joints, 3 * self.num_joints + self.num_betas)

    @property
    def camera(self) -> slice:
        return slice(self.betas.stop, self.betas.stop + 3)

    @property
    def dim(self) -> int:
        return self.camera.stop

    def groups(self, device=None) -> torch.Tensor:
        """(n,) int64 variable-group ids (orient 0, pose 1, shape 2, camera 3) for learned optimizers."""
        g = torch.empty(self.dim, dtype=torch.long, device=device)
        for s, gid in ((self.orient, GROUP_ORIENT), (self.pose, GROUP_POSE), (self.betas, GROUP_SHAPE),
                       (self.camera, GROUP_CAMERA)):
            g[s] = gid
        return g

    def unpack(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        b = x.shape[0]
        return {"global_orient": x[:, self.orient], "body_pose": x[:, self.pose].reshape(b, -1, 3),
                "betas": x[:, self.betas], "transl": params_to_translation(x[:, self.camera])}


@dataclass
class FitData:
    """Per-person observations of a batch.

    Attributes:
        keypoints: (B, K, 2) detected keypoints, pixels.
        confidence: (B, K) in [0, 1]; 0 marks a missing keypoint.
        camera: intrinsics per person.
        scale: (B,) person size in pixels (extent of the confident keypoints); residuals are divided by it.
        init_log_depth: (B,) log of the similar-triangles depth, for the depth prior.
    """

    keypoints: torch.Tensor
    confidence: torch.Tensor
    camera: Camera
    scale: torch.Tensor
    init_log_depth: torch.Tensor

    def index(self, idx) -> "FitData":
        return FitData(self.keypoints[idx], self.confidence[idx], self.camera.index(idx), self.scale[idx],
                       self.init_log_depth[idx])

    def repeat(self, times: int) -> "FitData":
        def rep(t):
            return t.repeat(times, *([1] * (t.dim() - 1)))

        return FitData(rep(self.keypoints), rep(self.confidence),
                       Camera(rep(self.camera.focal), rep(self.camera.center), rep(self.camera.image_size)),
                       rep(self.scale), rep(self.init_log_depth))


def person_scale(keypoints: torch.Tensor, confidence: torch.Tensor, min_confidence: float = 0.3,
                 floor: float = 16.0) -> torch.Tensor:
    """(B,) the larger side of the confident keypoints' bounding box, pixels (at least ``floor``)."""
    mask = confidence >= min_confidence
    big = torch.finfo(keypoints.dtype).max
    hi = torch.where(mask[..., None], keypoints, torch.full_like(keypoints, -big)).amax(1)
    lo = torch.where(mask[..., None], keypoints, torch.full_like(keypoints, big)).amin(1)
    side = (hi - lo).amax(-1)
    return torch.where(mask.any(-1), side, torch.full_like(side, floor)).clamp(min=floor)


def geman_mcclure(sq_residual: torch.Tensor, sigma: float) -> torch.Tensor:
    """Robust penalty rho(r) = r^2 / (r^2 + sigma^2) on squared residuals; bounded by 1, quadratic near 0."""
    return sq_residual / (sq_residual + sigma * sigma)


def reprojection_term(projected: torch.Tensor, data: FitData, sigma: float,
                      keypoint_weights: torch.Tensor | None = None) -> torch.Tensor:
    """Confidence-weighted robust reprojection error, (B,). Residuals in units of person size (data.scale)."""
    sq = ((projected - data.keypoints) / data.scale[:, None, None]).square().sum(-1)
    w = data.confidence if keypoint_weights is None else data.confidence * keypoint_weights
    return (w * geman_mcclure(sq, sigma)).sum(-1) / w.sum(-1).clamp(min=1e-6)


def shape_term(betas: torch.Tensor) -> torch.Tensor:
    """(B,) squared norm of the betas (unit-variance shape space: a Gaussian prior)."""
    return betas.square().sum(-1)


def depth_term(log_depth: torch.Tensor, init_log_depth: torch.Tensor) -> torch.Tensor:
    """(B,) keeps the depth near the similar-triangles estimate where the keypoints leave it ambiguous."""
    return (log_depth - init_log_depth).square()


def pose_l2_term(body_pose: torch.Tensor) -> torch.Tensor:
    """(B,) squared norm of the body pose (axis-angle)."""
    return body_pose.square().flatten(1).sum(-1)


PoseTerms = Callable[[torch.Tensor], "dict[str, torch.Tensor]"]
"""pose (B, J-1, 3) -> named prior terms, each (B,) (e.g. the GMM, joint limits, bend direction)."""


def prior_terms(prior) -> PoseTerms:
    """The terms of a ``hmr_fit.fit.priors.PosePrior``, unweighted, for ``FitEnergy(pose_terms=...)``:
    ``pose_prior`` (mixture NLL above its minimum, nats), ``joint_limits`` (rad^2), ``bend`` (bend direction)."""

    def terms(pose: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"pose_prior": prior.nll(pose) - prior.nll_floor, "joint_limits": prior.limits(pose),
                "bend": prior.bend(pose)}

    return terms


class FitEnergy:
    """Weighted sum of the terms. ``weights`` maps term name -> weight; a missing or zero weight skips the term.

    Terms: ``reprojection``, ``shape``, ``depth``, ``pose_l2``, and whatever ``pose_terms`` returns.

    Args:
        body: the body model.
        weights: term name -> weight (``reprojection`` defaults to 1).
        robust_sigma: Geman-McClure scale, as a fraction of the person's size.
        scale: multiplies the whole energy (it sets the gradient magnitude the optimizers' step sizes assume).
        pose_terms: pose prior terms (``hmr_fit.fit.priors``), or None.
    """

    def __init__(self, body: BodyModel, weights: dict[str, float], robust_sigma: float = 0.2, scale: float = 25.0,
                 pose_terms: PoseTerms | None = None):
        if robust_sigma <= 0 or scale <= 0:
            raise ValueError(f"robust_sigma and scale must be positive, got {robust_sigma}, {scale}")
        unknown = [k for k, v in dict(weights).items() if v < 0]
        if unknown:
            raise ValueError(f"energy weights must be >= 0: {unknown}")
        self.body, self.weights = body, dict(weights)
        self.robust_sigma, self.scale, self.pose_terms = float(robust_sigma), float(scale), pose_terms
        self.layout = Layout(body.num_joints, body.num_betas)

    def terms(self, x: torch.Tensor, data: FitData, keypoint_weights: torch.Tensor | None = None
              ) -> dict[str, torch.Tensor]:
        """Unweighted terms, each (B,)."""
        p = self.layout.unpack(x)
        out = self.body(p["betas"], p["body_pose"], p["global_orient"], p["transl"], return_vertices=False)
        projected = data.camera.project(out.keypoints)
        terms = {"reprojection": reprojection_term(projected, data, self.robust_sigma, keypoint_weights)}
        if self.weights.get("shape", 0.0):
            terms["shape"] = shape_term(p["betas"])
        if self.weights.get("depth", 0.0):
            terms["depth"] = depth_term(x[:, self.layout.camera][:, 2], data.init_log_depth)
        if self.weights.get("pose_l2", 0.0):
            terms["pose_l2"] = pose_l2_term(p["body_pose"])
        if self.pose_terms is not None:
            for name, value in self.pose_terms(p["body_pose"]).items():
                if self.weights.get(name, 0.0):
                    terms[name] = value
        return terms

    def total(self, terms: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.scale * sum(self.weights.get(name, 1.0 if name == "reprojection" else 0.0) * value
                                for name, value in terms.items())

    def __call__(self, x: torch.Tensor, data: FitData, keypoint_weights: torch.Tensor | None = None) -> torch.Tensor:
        """(B,) energy per person."""
        return self.total(self.terms(x, data, keypoint_weights))

    def objective(self, data: FitData, base: torch.Tensor | None = None, free: torch.Tensor | None = None,
                  keypoint_weights: torch.Tensor | None = None):
        """An optimizer objective ``z (B, m) -> (f (B,), g (B, m))``.

        With ``free`` (m,) indices, only those coordinates of ``base`` (B, n) are optimized (staged fitting);
        without, z is the whole vector.
        """

        def objective(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            z = z.detach().requires_grad_(True)
            x = z if free is None else base.index_copy(1, free, z)
            f = self(x, data, keypoint_weights)
            (g,) = torch.autograd.grad(f.sum(), z)
            return f.detach(), g

        return objective
