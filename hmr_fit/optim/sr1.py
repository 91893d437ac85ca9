"""Limited-memory classical SR1 (inverse form) with the standard skip rule, batched."""

from __future__ import annotations

import torch
from torch import Tensor

from hmr_fit.optim.base import Objective, Optimizer, State, check_positive, where_b
from hmr_fit.optim.lbfgs import push_pair
from hmr_fit.optim.linesearch import armijo_backtracking, line_search_state


def sr1_factors(S: Tensor, Y: Tensor, valid: Tensor, gamma: Tensor, min_denominator: float = 1e-8):
    """Factors of the limited-memory SR1 inverse Hessian H = gamma I + sum_j u_j u_j' / d_j.

    The pairs are applied oldest first, each as the classical inverse SR1 update (Nocedal & Wright eq. 6.25):
    u_j = s_j - H_{j-1} y_j, d_j = u_j' y_j, skipped (Nocedal & Wright eq. 6.26, as ``scipy.optimize.SR1``) when
    |d_j| <= min_denominator · |y_j| · |u_j|. With memory >= the number of updates this equals scipy's
    full-matrix ``SR1(approx_type="inv_hess")`` started from ``gamma I``. Time O(B·m²·n).

    Args:
        S, Y: (B, m, n) pairs, oldest first; valid: (B, m) bool.
        gamma: (B,) initial scale H_0 = gamma I.
        min_denominator: skip-rule constant r.

    Returns:
        U (B, m, n) and inv_d (B, m); inv_d is 0 for skipped or empty slots.
    """
    B, m, n = S.shape
    us, invs = [], []
    for j in range(m):
        s, y = S[:, j], Y[:, j]
        Hy = gamma[:, None] * y
        for i in range(j):
            Hy = Hy + us[i] * (invs[i] * (us[i] * y).sum(-1))[:, None]
        u = s - Hy
        d = (u * y).sum(-1)
        keep = valid[:, j] & (d.abs() > min_denominator * y.norm(dim=-1) * u.norm(dim=-1))
        inv = torch.where(keep, 1.0 / torch.where(keep, d, torch.ones_like(d)), torch.zeros_like(d))
        us.append(torch.where(keep[:, None], u, torch.zeros_like(u)))
        invs.append(inv)
    if m == 0:
        return S, S.new_zeros(B, 0)
    return torch.stack(us, 1), torch.stack(invs, 1)


def sr1_apply(U: Tensor, inv_d: Tensor, gamma: Tensor, z: Tensor) -> Tensor:
    """H z = gamma z + sum_j u_j (u_j'z) / d_j.  U (B, m, n), inv_d (B, m), gamma (B,), z (B, n) -> (B, n)."""
    # c[b,j] = inv_d[b,j] · Σ_i U[b,j,i] z[b,i];  out[b,i] = gamma[b] z[b,i] + Σ_j c[b,j] U[b,j,i]
    c = inv_d * torch.einsum("bjn,bn->bj", U, z)
    return gamma[:, None] * z + torch.einsum("bj,bjn->bn", c, U)


def sr1_auto_scale(s: Tensor, y: Tensor) -> Tensor:
    """scipy's ``init_scale="auto"`` for the inverse form: |s'y| / y'y (1 when degenerate). (B, n) -> (B,)."""
    ys = (s * y).sum(-1).abs()
    yy = (y * y).sum(-1)
    ss = (s * s).sum(-1)
    bad = (ys == 0) | (yy == 0) | (ss == 0)
    return torch.where(bad, torch.ones_like(ys), ys / torch.where(bad, torch.ones_like(yy), yy))


class SR1(Optimizer):
    """Limited-memory symmetric-rank-one quasi-Newton method with a line search, batched.

    H_{k+1} = H_k + (s - H_k y)(s - H_k y)' / ((s - H_k y)' y)   (inverse form, Nocedal & Wright eq. 6.25),
    recomputed each step from the last ``history_size`` pairs starting at H_0 = gamma I, with the skip rule
    |(s - H y)' y| <= r |y| |s - H y| (eq. 6.26). gamma is fixed per problem from its first stored pair as scipy's
    ``init_scale="auto"`` (s'y / y'y), or ``init_scale`` when a number is given.

    SR1 matrices may be indefinite, so d = -H g is used only if it is a descent direction with
    g'd <= -1e-8 |g| |d|; otherwise d = -gamma g. Then a backtracking Armijo line search from t = lr (first step:
    min(1, 1/|g|_1) · lr). Pairs with s = 0 are not stored. Stopping as ``LBFGS``.

    Memory O(B·m·n); time per step O(B·m²·n) plus the line-search evaluations.

    Args:
        lr: initial step length (> 0).
        history_size: number m of pairs (>= 1).
        min_denominator: skip-rule constant r (>= 0; scipy's default 1e-8).
        init_scale: "auto" or a positive number for H_0.
        c1, max_ls, tolerance_change: as ``LBFGS``.
    """

    name = "sr1"
    multi_eval = True
    _hparam_names = ("lr", "history_size", "min_denominator", "init_scale", "c1", "max_ls", "tolerance_change")

    def __init__(self, lr: float = 1.0, history_size: int = 10, min_denominator: float = 1e-8,
                 init_scale: str | float = "auto", c1: float = 1e-4, max_ls: int = 25,
                 tolerance_change: float = 1e-9):
        check_positive("learning rate", lr)
        if not isinstance(history_size, int) or history_size < 1:
            raise ValueError(f"Invalid history_size: {history_size}")
        check_positive("min_denominator", min_denominator, allow_zero=True)
        if init_scale != "auto":
            check_positive("init_scale", init_scale)
        if not 0.0 < c1 < 1.0:
            raise ValueError(f"Invalid c1: {c1}")
        if not isinstance(max_ls, int) or max_ls < 1:
            raise ValueError(f"Invalid max_ls: {max_ls}")
        check_positive("tolerance_change", tolerance_change, allow_zero=True)
        self.lr, self.history_size, self.min_denominator = float(lr), history_size, float(min_denominator)
        self.init_scale = init_scale if init_scale == "auto" else float(init_scale)
        self.c1, self.max_ls, self.tolerance_change = float(c1), max_ls, float(tolerance_change)

    def _init_buffers(self, x0: Tensor, groups: Tensor | None) -> dict[str, Tensor]:
        B, n = x0.shape
        m = self.history_size
        scale = 1.0 if self.init_scale == "auto" else self.init_scale
        return {"S": x0.new_zeros(B, m, n), "Y": x0.new_zeros(B, m, n),
                "valid": torch.zeros(B, m, dtype=torch.bool, device=x0.device),
                "gamma": x0.new_full((B,), scale),
                "scaled": torch.zeros(B, dtype=torch.bool, device=x0.device)}

    def inverse_hessian_apply(self, state: State, z: Tensor) -> Tensor:
        """(B, n) H_k z for the current pairs of each problem."""
        b = state.buffers
        U, inv_d = sr1_factors(b["S"], b["Y"], b["valid"], b["gamma"], self.min_denominator)
        return sr1_apply(U, inv_d, b["gamma"], z)

    def _step(self, state: State, objective: Objective) -> State:
        active = state.active
        g = state.g
        buf = state.buffers
        gamma = buf["gamma"]
        d = -self.inverse_hessian_apply(state, g)
        gtd = (g * d).sum(-1)
        descent = gtd <= -1e-8 * g.norm(dim=-1) * d.norm(dim=-1)
        has_pairs = buf["valid"].any(-1)
        use_d = descent & has_pairs & torch.isfinite(d).all(-1)
        d = where_b(use_d, d, -gamma[:, None] * g)
        gtd = (g * d).sum(-1)
        first = torch.clamp(1.0 / g.abs().sum(-1).clamp_min(torch.finfo(g.dtype).tiny), max=1.0) * self.lr
        t0 = torch.where(has_pairs, torch.full_like(first, self.lr), first)
        can_move = active & (gtd < 0)
        ls = armijo_backtracking(objective, state.x, state.f, g, d, t0, can_move, self.c1, self.max_ls)
        accept = can_move & ls.ok
        s = ls.x - state.x
        y = ls.g - g
        store = accept & (s != 0).any(-1)
        if self.init_scale == "auto":
            set_scale = store & ~buf["scaled"]
            gamma = torch.where(set_scale, sr1_auto_scale(s, y), gamma)
            scaled = buf["scaled"] | set_scale
        else:
            scaled = buf["scaled"]
        S2, Y2, valid2 = push_pair(buf["S"], buf["Y"], buf["valid"], s, y, store)
        buffers = {"S": S2, "Y": Y2, "valid": valid2, "gamma": gamma, "scaled": scaled}
        return line_search_state(state, ls, accept, self.tolerance_change, buffers)
