"""Staged, batched fitting of every person of every image at once (SMPLify's staging, any hmr_fit.optim optimizer).

Stage 1: camera translation and global orientation only, at zero pose and mean shape, on the torso and face
keypoints, from two starts per person (facing the camera, turned away); the lower energy wins. This is the
front/back check: it decides which way the body faces before the limbs can settle into a mirrored minimum.
Stage 2: everything (orientation, pose, shape, translation) on all keypoints.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from hmr_fit.body import BodyModel
from hmr_fit.body.joints import KEYPOINT_NAMES
from hmr_fit.errors import InputError
from hmr_fit.fit.camera import Camera, translation_to_params
from hmr_fit.fit.energy import FitData, FitEnergy, person_scale
from hmr_fit.fit.initialize import initial_depth, initial_translation, orientation_hypotheses
from hmr_fit.body.lbs import rodrigues
from hmr_fit.optim import Optimizer, minimize

STAGE1_KEYPOINTS = ("nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
                    "left_hip", "right_hip")


@dataclass
class FitResult:
    """Fitted people, a batch of B.

    Attributes:
        betas: (B, S); body_pose: (B, J-1, 3) axis-angle; global_orient: (B, 3); transl: (B, 3) metres, camera
            frame (OpenCV axes).
        camera: the intrinsics used.
        energy: (B,) final energy; terms: name -> (B,) unweighted final terms.
        fitted_keypoints: (B, K, 2) the body's keypoints projected, pixels.
        reprojection_error: (B,) confidence-weighted mean keypoint error, pixels.
        quality: (B,) reprojection_error / person size (lower is better).
        accepted: (B,) bool; reject_reason: per person, None when accepted.
        facing: (B,) "front" or "back", the stage-1 decision.
        n_steps: (B,) optimizer steps in stage 2; n_evals: (B,) energy+gradient evaluations over both stages.
    """

    betas: torch.Tensor
    body_pose: torch.Tensor
    global_orient: torch.Tensor
    transl: torch.Tensor
    camera: Camera
    energy: torch.Tensor
    terms: dict[str, torch.Tensor]
    fitted_keypoints: torch.Tensor
    reprojection_error: torch.Tensor
    quality: torch.Tensor
    accepted: torch.Tensor
    reject_reason: list[str | None]
    facing: list[str]
    n_steps: torch.Tensor
    n_evals: torch.Tensor
    x: torch.Tensor = field(repr=False)

    def __len__(self) -> int:
        return self.betas.shape[0]


class Fitter:
    """Fits the body model to 2D keypoints.

    Args:
        body: the body model.
        energy: the energy (its weights come from config).
        optimizer: used for stage 2 (and stage 1 unless ``stage1_optimizer`` is given).
        stage1_optimizer: optimizer of the 6-dimensional camera/orientation stage.
        stage1_steps, steps: step budgets; tol: stop a person once max |gradient| <= tol.
        max_quality: accept a fit whose reprojection error is at most this fraction of the person's size.
        min_keypoints: people with fewer keypoints of confidence >= 0.3 are not fitted (rejected).
        init_pose: (J-1, 3) body pose every fit starts from; None: zero (the T-pose).
        fallback_optimizer: refits (from the stage-1 result) the people whose fit misses ``max_quality``;
            None: no second try.
        fallback_steps: step budget of the fallback.
    """

    def __init__(self, body: BodyModel, energy: FitEnergy, optimizer: Optimizer,
                 stage1_optimizer: Optimizer | None = None, stage1_steps: int = 15, steps: int = 30,
                 tol: float = 1e-5, max_quality: float = 0.08, min_keypoints: int = 6,
                 init_pose: torch.Tensor | None = None, fallback_optimizer: Optimizer | None = None,
                 fallback_steps: int = 100):
        if steps < 0 or stage1_steps < 0:
            raise ValueError(f"step budgets must be >= 0, got stage1_steps={stage1_steps}, steps={steps}")
        self.body, self.energy, self.optimizer = body, energy, optimizer
        self.stage1_optimizer = stage1_optimizer or optimizer
        self.stage1_steps, self.steps, self.tol = stage1_steps, steps, tol
        self.max_quality, self.min_keypoints = max_quality, min_keypoints
        self.layout = energy.layout
        self.init_pose = None if init_pose is None else torch.as_tensor(init_pose).reshape(-1)
        self.fallback_optimizer, self.fallback_steps = fallback_optimizer, fallback_steps

    def prepare(self, keypoints: torch.Tensor, confidence: torch.Tensor, camera: Camera) -> FitData:
        dtype, device = self.body.v_template.dtype, self.body.v_template.device
        keypoints = torch.as_tensor(keypoints, dtype=dtype, device=device)
        confidence = torch.as_tensor(confidence, dtype=dtype, device=device)
        if keypoints.dim() != 3 or keypoints.shape[1:] != (len(KEYPOINT_NAMES), 2):
            raise InputError(f"keypoints must be (B, {len(KEYPOINT_NAMES)}, 2), got {tuple(keypoints.shape)}")
        if confidence.shape != keypoints.shape[:2]:
            raise InputError(f"confidence must be {tuple(keypoints.shape[:2])}, got {tuple(confidence.shape)}")
        finite = torch.isfinite(keypoints).all(-1)
        confidence = torch.where(finite, confidence.clamp(0, 1).nan_to_num(0.0), torch.zeros_like(confidence))
        keypoints = torch.where(finite[..., None], keypoints, torch.zeros_like(keypoints))
        camera = camera.to(dtype=dtype, device=device)
        rest = self.body(return_vertices=False).keypoints[0]
        depth = initial_depth(keypoints, confidence, rest, camera)
        return FitData(keypoints, confidence, camera, person_scale(keypoints, confidence), depth.log())

    def initial_state(self, data: FitData) -> torch.Tensor:
        """(2, B, n) starting vectors for the two orientation hypotheses."""
        b = data.keypoints.shape[0]
        dtype, device = data.keypoints.dtype, data.keypoints.device
        rest = self.body(return_vertices=False).keypoints[0]
        starts = []
        for orient in orientation_hypotheses(b, dtype, device):
            transl = initial_translation(data.keypoints, data.confidence, rest, data.camera,
                                         data.init_log_depth.exp(), rodrigues(orient))
            x = torch.zeros(b, self.layout.dim, dtype=dtype, device=device)
            x[:, self.layout.orient] = orient
            if self.init_pose is not None:
                x[:, self.layout.pose] = self.init_pose.to(dtype=dtype, device=device)
            x[:, self.layout.camera] = translation_to_params(transl)
            starts.append(x)
        return torch.stack(starts)

    def fit(self, keypoints: torch.Tensor, confidence: torch.Tensor, camera: Camera,
            x0: torch.Tensor | None = None) -> FitResult:
        """Fit B people.

        Args:
            keypoints: (B, K, 2) pixels; confidence: (B, K); camera: intrinsics per person (``Camera.cat``).
            x0: (B, n) warm start (e.g. the previous video frame); skips stage 1.
        Returns:
            FitResult.
        """
        data = self.prepare(keypoints, confidence, camera)
        b = data.keypoints.shape[0]
        groups = self._groups(self.optimizer, self.layout.groups(data.keypoints.device))
        n_evals = torch.zeros(b, dtype=torch.long, device=data.keypoints.device)
        if x0 is None:
            x, facing, evals1 = self._stage1(data)
            n_evals += evals1
        else:
            x, facing = torch.as_tensor(x0, dtype=data.keypoints.dtype, device=data.keypoints.device), ["warm"] * b
        result = minimize(self.energy.objective(data), x, self.optimizer, max_steps=self.steps, tol=self.tol,
                          groups=groups)
        x_final = torch.where(torch.isfinite(result.x).all(-1, keepdim=True), result.x, x)
        n_steps, n_evals, failed = result.n_steps, n_evals + result.n_evals, result.failed
        if self.fallback_optimizer is not None:
            x_final, n_steps, n_evals, failed = self._fallback(data, x, x_final, n_steps, n_evals, failed)
        return self._summarise(x_final, data, facing, n_steps, n_evals, failed)

    def _fallback(self, data: FitData, start: torch.Tensor, x: torch.Tensor, n_steps: torch.Tensor,
                  n_evals: torch.Tensor, failed: torch.Tensor):
        """Refit, from the same start, the people whose stage-2 fit misses the quality bar (or failed), with the
        fallback optimizer; keep whichever fit explains the keypoints better. A learned optimizer is fast on the
        people it was trained for (whole bodies) and this keeps the rest (people cut off by the frame) safe."""
        quality = self._quality(x, data)
        redo = (failed | ~torch.isfinite(quality) | (quality > self.max_quality)).nonzero().flatten()
        if redo.numel() == 0:
            return x, n_steps, n_evals, failed
        sub = data.index(redo)
        groups = self._groups(self.fallback_optimizer, self.layout.groups(x.device))
        res = minimize(self.energy.objective(sub), start[redo], self.fallback_optimizer,
                       max_steps=self.fallback_steps, tol=self.tol, groups=groups)
        better = torch.isfinite(res.x).all(-1) & (self._quality(res.x, sub) < quality[redo].nan_to_num(float("inf")))
        take = redo[better]
        x, n_steps, n_evals, failed = x.clone(), n_steps.clone(), n_evals.clone(), failed.clone()
        x[take] = res.x[better]
        n_steps[take] = res.n_steps[better]
        n_evals[redo] += res.n_evals
        failed[take] = res.failed[better]
        return x, n_steps, n_evals, failed

    @torch.no_grad()
    def _reprojection(self, x: torch.Tensor, data: FitData) -> tuple[torch.Tensor, torch.Tensor]:
        """The body's keypoints projected (B, K, 2), and their confidence-weighted mean error (B,), pixels."""
        p = self.layout.unpack(x)
        out = self.body(p["betas"], p["body_pose"], p["global_orient"], p["transl"], return_vertices=False)
        projected = data.camera.project(out.keypoints)
        err = (projected - data.keypoints).norm(dim=-1)
        return projected, (data.confidence * err).sum(-1) / data.confidence.sum(-1).clamp(min=1e-6)

    def _quality(self, x: torch.Tensor, data: FitData) -> torch.Tensor:
        """(B,) confidence-weighted mean keypoint error / person size."""
        return self._reprojection(x, data)[1] / data.scale

    def _stage1(self, data: FitData) -> tuple[torch.Tensor, list[str], torch.Tensor]:
        b = data.keypoints.shape[0]
        starts = self.initial_state(data).reshape(2 * b, -1)
        both = data.repeat(2)
        free = torch.cat([torch.arange(self.layout.orient.start, self.layout.orient.stop),
                          torch.arange(self.layout.camera.start, self.layout.camera.stop)]).to(starts.device)
        kp_weights = torch.zeros(len(KEYPOINT_NAMES), dtype=starts.dtype, device=starts.device)
        kp_weights[[KEYPOINT_NAMES.index(n) for n in STAGE1_KEYPOINTS]] = 1.0
        objective = self.energy.objective(both, base=starts, free=free, keypoint_weights=kp_weights)
        groups = self._groups(self.stage1_optimizer, self.layout.groups(starts.device)[free])
        res = minimize(objective, starts[:, free], self.stage1_optimizer, max_steps=self.stage1_steps, tol=self.tol,
                       groups=groups)
        z = torch.where(torch.isfinite(res.x).all(-1, keepdim=True), res.x, starts[:, free])
        f = torch.where(torch.isfinite(res.f), res.f, torch.full_like(res.f, math.inf)).reshape(2, b)
        x = starts.index_copy(1, free, z).reshape(2, b, -1)
        back = f[1] < f[0]
        chosen = torch.where(back[:, None], x[1], x[0])
        evals = res.n_evals.reshape(2, b).sum(0)
        return chosen, ["back" if v else "front" for v in back.tolist()], evals

    @staticmethod
    def _groups(optimizer: Optimizer, groups: torch.Tensor) -> torch.Tensor | None:
        """Variable-group ids for optimizers that use them (L-SR1 trained with a group channel), else None."""
        return groups if getattr(optimizer, "n_groups", 0) > 0 else None

    @torch.no_grad()
    def _summarise(self, x: torch.Tensor, data: FitData, facing: list[str], n_steps: torch.Tensor,
                   n_evals: torch.Tensor, failed: torch.Tensor) -> FitResult:
        p = self.layout.unpack(x)
        terms = self.energy.terms(x, data)
        projected, reproj = self._reprojection(x, data)
        quality = reproj / data.scale
        n_conf = (data.confidence >= 0.3).sum(-1)
        reasons: list[str | None] = []
        for i in range(x.shape[0]):
            if int(n_conf[i]) < self.min_keypoints:
                reasons.append(f"only {int(n_conf[i])} confident keypoints (need {self.min_keypoints})")
            elif bool(failed[i]) or not bool(torch.isfinite(x[i]).all()):
                reasons.append("the optimization produced non-finite values")
            elif float(quality[i]) > self.max_quality:
                reasons.append(f"keypoint error {float(quality[i]):.1%} of the person's size exceeds "
                               f"{self.max_quality:.0%}")
            else:
                reasons.append(None)
        accepted = torch.tensor([r is None for r in reasons], device=x.device)
        return FitResult(
            betas=p["betas"], body_pose=p["body_pose"], global_orient=p["global_orient"], transl=p["transl"],
            camera=data.camera, energy=self.energy.total(terms), terms=terms, fitted_keypoints=projected,
            reprojection_error=reproj, quality=quality, accepted=accepted, reject_reason=reasons, facing=facing,
            n_steps=n_steps, n_evals=n_evals, x=x)
