"""Adam (Kingma & Ba, 2015) under the common contract, with per-problem moments and bias correction."""

from __future__ import annotations

import torch
from torch import Tensor

from hmr_fit.optim.base import Objective, Optimizer, State, check_positive, single_eval_step


class Adam(Optimizer):
    """Adam, batched: every problem has its own moments and its own step counter.

    m_k = b1 m_{k-1} + (1-b1) g_k;  v_k = b2 v_{k-1} + (1-b2) g_k²;
    x_{k+1} = x_k - lr * (m_k / (1-b1^k)) / (sqrt(v_k / (1-b2^k)) + eps)      (Algorithm 1 of the paper)

    One evaluation per step; memory O(B·n).

    Args:
        lr: step size (> 0).
        betas: moment decay rates, each in [0, 1).
        eps: denominator guard (>= 0).
    """

    name = "adam"
    _hparam_names = ("lr", "betas", "eps")

    def __init__(self, lr: float = 0.03, betas: tuple[float, float] | list[float] = (0.9, 0.999), eps: float = 1e-8):
        check_positive("learning rate", lr)
        check_positive("epsilon value", eps, allow_zero=True)
        betas = tuple(float(b) for b in betas)
        if len(betas) != 2:
            raise ValueError(f"Invalid betas: {betas}")
        for i, b in enumerate(betas):
            if not 0.0 <= b < 1.0:
                raise ValueError(f"Invalid beta parameter at index {i}: {b}")
        self.lr, self.betas, self.eps = float(lr), betas, float(eps)

    def hparams(self):
        return {"lr": self.lr, "betas": list(self.betas), "eps": self.eps}

    def _init_buffers(self, x0: Tensor, groups: Tensor | None) -> dict[str, Tensor]:
        return {"m": torch.zeros_like(x0), "v": torch.zeros_like(x0)}

    def _step(self, state: State, objective: Objective) -> State:
        b1, b2 = self.betas
        g = state.g
        m = b1 * state.buffers["m"] + (1 - b1) * g
        v = b2 * state.buffers["v"] + (1 - b2) * g * g
        t = (state.k + 1).to(g.dtype)[:, None]
        m_hat = m / (1 - b1**t)
        v_hat = v / (1 - b2**t)
        x_new = state.x - self.lr * m_hat / (v_hat.sqrt() + self.eps)
        return single_eval_step(state, objective, x_new, {"m": m, "v": v})
