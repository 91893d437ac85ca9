"""Temporal terms for video fitting: smoothness against jitter and one body shape per track.

:class:`TemporalEnergy` wraps a :class:`hmr_fit.fit.energy.FitEnergy` and adds two terms per person b, against a
reference vector r_b (set per batch with :meth:`TemporalEnergy.set_reference`) in the optimizer layout
(orient 3 | body pose 69 | betas 10 | camera 3):

    temporal[b] = sum_i (x[b,i] - r[b,i])^2 over orient, body pose and camera (tx/tz, ty/tz, log tz)
    track_shape[b] = sum_s (betas[b,s] - r_betas[b,s])^2

weighted by ``weights["temporal"]`` and ``weights["track_shape"]`` on top of the base weights; people whose
reference mask is False get neither term. The camera block is scale-free (image-plane direction and log depth), so
one weight serves near and far people.

The runner fits a chunk of frames as one batch (frames x people), so a term that coupled frame t to frame t-1 inside
the batch would make each problem's energy depend on the others' variables while the batched optimizer line-searches
each problem alone. Instead the coupled problem min_x sum_t E_t(x_t) + w |x_t - x_{t-1}|^2 is solved by
block-Jacobi passes with the neighbours frozen: pass 0 pulls each frame towards the track's last fit from the
previous chunk (the warm start), pass k >= 1 pulls x_t towards (x_{t-1} + x_{t+1}) / 2 of pass k-1
(:func:`neighbour_reference`). Each pass is an ordinary batched fit.

Shape is shared per track: the track's reference betas are the quality-weighted mean of its accepted fits so far
(:class:`ShapeAverage`); the final parameters file stores that mean as the track's betas.
"""

from __future__ import annotations

import numpy as np
import torch

from hmr_fit.fit.energy import FitData, FitEnergy

__all__ = ["TemporalEnergy", "ShapeAverage", "neighbour_reference", "temporal_term", "track_shape_term"]


def temporal_term(x: torch.Tensor, reference: torch.Tensor, free: torch.Tensor) -> torch.Tensor:
    """(B,) squared distance to the reference over the ``free`` mask.

    Args:
        x, reference: (B, n) optimizer vectors. free: (n,) bool, the coordinates compared.
    """
    return ((x - reference).square() * free).sum(-1)


def track_shape_term(betas: torch.Tensor, reference_betas: torch.Tensor) -> torch.Tensor:
    """(B,) squared distance of the betas (B, S) to the track's betas (B, S)."""
    return (betas - reference_betas).square().sum(-1)


class TemporalEnergy(FitEnergy):
    """A :class:`FitEnergy` plus the temporal terms; a drop-in ``energy`` for :class:`hmr_fit.fit.fitter.Fitter`.

    Args:
        base: the image energy (its terms and weights are used unchanged).
        temporal: weight of ``temporal`` (0 disables it).
        track_shape: weight of ``track_shape`` (0 disables it).
    """

    def __init__(self, base: FitEnergy, temporal: float = 0.02, track_shape: float = 0.05) -> None:
        if temporal < 0 or track_shape < 0:
            raise ValueError(f"Invalid temporal weights: temporal={temporal}, track_shape={track_shape} (must be >= 0)")
        super().__init__(base.body, dict(base.weights, temporal=float(temporal), track_shape=float(track_shape)),
                         robust_sigma=base.robust_sigma, scale=base.scale, pose_terms=base.pose_terms)
        free = torch.zeros(self.layout.dim, dtype=torch.bool)
        free[self.layout.orient] = True
        free[self.layout.pose] = True
        free[self.layout.camera] = True
        self._free = free
        self.reference: torch.Tensor | None = None
        self.mask: torch.Tensor | None = None

    def set_reference(self, reference: torch.Tensor | None, mask: torch.Tensor | None = None) -> None:
        """Reference vectors for the next fit.

        Args:
            reference: (B, n) in the optimizer layout, in the batch's order; None removes the terms.
            mask: (B,) bool, people that get the terms (default all).
        """
        if reference is None:
            self.reference = self.mask = None
            return
        reference = torch.as_tensor(reference)
        if reference.dim() != 2 or reference.shape[1] != self.layout.dim:
            raise ValueError(f"reference must be (B, {self.layout.dim}), got {tuple(reference.shape)}")
        self.reference = reference
        self.mask = torch.ones(reference.shape[0], dtype=torch.bool) if mask is None else torch.as_tensor(mask)

    def terms(self, x: torch.Tensor, data: FitData, keypoint_weights: torch.Tensor | None = None
              ) -> dict[str, torch.Tensor]:
        """The base terms plus ``temporal`` and ``track_shape``, each (B,)."""
        terms = super().terms(x, data, keypoint_weights)
        if self.reference is None:
            return terms
        if self.reference.shape[0] != x.shape[0]:
            raise ValueError(f"the reference has {self.reference.shape[0]} rows but the batch has {x.shape[0]}; "
                             "call set_reference for every batch (warm starts only: stage 1 doubles the batch)")
        ref = self.reference.to(dtype=x.dtype, device=x.device)
        mask = self.mask.to(device=x.device, dtype=x.dtype)
        if self.weights["temporal"]:
            terms["temporal"] = mask * temporal_term(x, ref, self._free.to(x.device))
        if self.weights["track_shape"]:
            terms["track_shape"] = mask * track_shape_term(x[:, self.layout.betas], ref[:, self.layout.betas])
        return terms


def neighbour_reference(x: torch.Tensor, frames: list[int], anchor: torch.Tensor | None) -> torch.Tensor:
    """Reference of one block-Jacobi smoothing pass for one track.

    Args:
        x: (T, n) the track's fits in this chunk, in frame order.
        frames: (T,) their frame indices (a gap counts as a neighbour all the same).
        anchor: (n,) the track's last fit before the chunk, or None.
    Returns:
        (T, n): (x[t-1] + x[t+1]) / 2; at the chunk's start the anchor stands in for x[t-1]; where only one
        neighbour exists, that neighbour; with none, x[t] itself.
    """
    rows = []
    for t in range(x.shape[0]):
        prev = x[t - 1] if t > 0 else anchor
        nxt = x[t + 1] if t + 1 < x.shape[0] else None
        near = [v for v in (prev, nxt) if v is not None]
        rows.append(torch.stack(near).mean(0) if near else x[t])
    return torch.stack(rows)


class ShapeAverage:
    """Quality-weighted running mean of a track's betas over its accepted fits.

    A fit's weight is ``1 / max(quality, 0.01)`` (quality = reprojection error / person size), so sharp frames count
    more than blurred ones.
    """

    def __init__(self) -> None:
        self._sum: dict[int, np.ndarray] = {}
        self._weight: dict[int, float] = {}

    def add(self, track_id: int, betas: np.ndarray, quality: float, accepted: bool) -> None:
        if not accepted or not np.isfinite(quality) or not np.isfinite(betas).all():
            return
        w = 1.0 / max(float(quality), 0.01)
        self._sum[track_id] = self._sum.get(track_id, 0.0) + w * np.asarray(betas, np.float64)
        self._weight[track_id] = self._weight.get(track_id, 0.0) + w

    def get(self, track_id: int) -> np.ndarray | None:
        """(S,) the mean betas, or None before the first accepted fit."""
        if track_id not in self._sum:
            return None
        return self._sum[track_id] / self._weight[track_id]


def shifted_start(x: torch.Tensor, camera_slice: slice, kp_old: np.ndarray, conf_old: np.ndarray,
                  kp_new: np.ndarray, conf_new: np.ndarray, focal: tuple[float, float],
                  min_confidence: float = 0.3) -> torch.Tensor:
    """A warm start moved with the person: the previous fit with its camera block shifted by the 2D motion of the
    keypoints (a chunk's later frames are warm-started from a fit several frames old).

    With camera parameters (u, v, log z) = (tx/tz, ty/tz, log tz), the root projects to (fx u + cx, fy v + cy) at any
    depth, so a keypoint-centroid shift d moves (u, v) by (d_x / fx, d_y / fy), and a change of the keypoints' spread
    by a factor s (a person walking closer) changes log z by -log s.

    Args:
        x: (n,) the previous fit. camera_slice: where (u, v, log z) live in x.
        kp_old, conf_old: (K, 2), (K,) keypoints the previous fit was fitted to. kp_new, conf_new: this frame's.
        focal: (fx, fy) pixels.
    Returns:
        (n,) the shifted start (x itself when fewer than 3 keypoints are confident in both).
    """
    both = (np.asarray(conf_old) >= min_confidence) & (np.asarray(conf_new) >= min_confidence)
    if both.sum() < 3:
        return x
    a, b = np.asarray(kp_old, np.float64)[both], np.asarray(kp_new, np.float64)[both]
    ca, cb = a.mean(0), b.mean(0)
    spread_a = np.median(np.linalg.norm(a - ca, axis=1))
    spread_b = np.median(np.linalg.norm(b - cb, axis=1))
    out = x.clone()
    cam = out[camera_slice]
    cam[0] += float((cb - ca)[0] / focal[0])
    cam[1] += float((cb - ca)[1] / focal[1])
    if spread_a > 1e-6 and spread_b > 1e-6:
        cam[2] -= float(np.log(spread_b / spread_a))
    out[camera_slice] = cam
    return out
