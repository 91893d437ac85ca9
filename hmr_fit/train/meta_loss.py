"""Meta-loss of an unrolled trajectory: mean log objective + lambda · PGSM secant penalty."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class MetaLoss:
    """L = mean_{t,b} log((f_t + eps·f_0) / f_0)  +  lam · mean_{t,b: k_t >= 1} r_t.

    The trajectory term is scale-free (every problem weighs the same whatever its objective scale; eps bounds it
    below by log(eps) so converged problems stop pulling). r_t is L-SR1's relative secant residual
    |s - B̃ y|² / (|s|² + |B̃ y|²) (``state.buffers["secant"]``); the penalty is the PGSM guidance of the paper
    (project page: ‖p_k − B̃_k q_k‖² added to the trajectory loss), not used at inference.

    Args:
        lam: weight of the secant penalty (0: "L-SR1 w/o secant").
        eps: relative floor of the objective inside the log.
    """

    lam: float = 1.0
    eps: float = 1e-6

    def __post_init__(self):
        if self.lam < 0:
            raise ValueError(f"Invalid lam: {self.lam}")
        if not self.eps > 0:
            raise ValueError(f"Invalid eps: {self.eps}")

    def trajectory(self, f: Tensor, f0: Tensor) -> Tensor:
        """(T, B) objectives along the unroll, (B,) positive f_0 -> scalar."""
        f0 = f0.detach().clamp_min(torch.finfo(f.dtype).tiny)
        return torch.log((f.clamp_min(0) + self.eps * f0) / f0).mean()

    def secant(self, r: Tensor, valid: Tensor) -> Tensor:
        """(T, B) residuals and (T, B) bool validity -> scalar mean over the valid entries (0 if none)."""
        w = valid.to(r.dtype)
        return (r * w).sum() / w.sum().clamp_min(1.0)

    def __call__(self, f: Tensor, f0: Tensor, r: Tensor | None = None, valid: Tensor | None = None):
        """Returns (loss, trajectory term, secant term); the secant term is 0 without residuals."""
        traj = self.trajectory(f, f0)
        sec = self.secant(r, valid) if r is not None else f.new_zeros(())
        return traj + self.lam * sec, traj, sec
