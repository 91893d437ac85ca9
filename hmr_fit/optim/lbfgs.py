"""Batched L-BFGS: per-problem curvature history, step length, curvature check and stopping."""

from __future__ import annotations

import torch
from torch import Tensor

from hmr_fit.optim.base import Objective, Optimizer, State, check_positive, where_b
from hmr_fit.optim.linesearch import armijo_backtracking, line_search_state


def two_loop(g: Tensor, S: Tensor, Y: Tensor, valid: Tensor) -> Tensor:
    """H g by the L-BFGS two-loop recursion (Nocedal & Wright Alg. 7.4), batched.

    Args:
        g: (B, n) vectors to multiply.
        S, Y: (B, m, n) curvature pairs, oldest first (slot m-1 is the newest).
        valid: (B, m) bool, which slots hold a pair (always a suffix of the slots).

    Returns:
        (B, n) H g with H_0 = gamma I, gamma = s'y / y'y of the newest pair (1 without pairs).
    """
    m = S.shape[1]
    ys = (S * Y).sum(-1)  # (B, m)
    rho = torch.where(valid, 1.0 / torch.where(valid, ys, torch.ones_like(ys)), torch.zeros_like(ys))
    q = g
    alpha = []
    for i in range(m - 1, -1, -1):
        a = rho[:, i] * (S[:, i] * q).sum(-1)
        q = q - a[:, None] * Y[:, i]
        alpha.append(a)
    alpha.reverse()
    yy = (Y[:, -1] * Y[:, -1]).sum(-1)
    gamma = torch.where(valid[:, -1], ys[:, -1] / torch.where(valid[:, -1], yy, torch.ones_like(yy)),
                        torch.ones_like(yy))
    r = gamma[:, None] * q
    for i in range(m):
        b = rho[:, i] * (Y[:, i] * r).sum(-1)
        r = r + S[:, i] * (alpha[i] - b)[:, None]
    return r


def push_pair(S: Tensor, Y: Tensor, valid: Tensor, s: Tensor, y: Tensor, mask: Tensor):
    """Append (s, y) as the newest pair of the problems in ``mask`` (B,), dropping their oldest pair."""
    S_new = torch.cat([S[:, 1:], s[:, None]], dim=1)
    Y_new = torch.cat([Y[:, 1:], y[:, None]], dim=1)
    v_new = torch.cat([valid[:, 1:], torch.ones_like(valid[:, :1])], dim=1)
    return where_b(mask, S_new, S), where_b(mask, Y_new, Y), where_b(mask, v_new, valid)


class LBFGS(Optimizer):
    """Limited-memory BFGS for a batch of independent problems.

    Each step, per problem: d = -H g by the two-loop recursion over the last ``history_size`` pairs
    (s = x_{k+1} - x_k, y = g_{k+1} - g_k), H_0 = (s'y / y'y) I (Nocedal & Wright eq. 7.20); a backtracking
    Armijo line search from t = lr (first step: t = min(1, 1/|g|_1) · lr, as torch.optim.LBFGS); the pair is kept
    only if s'y > ``curvature_eps`` (torch uses 1e-10). If d is not a descent direction the history is cleared
    and d = -g. A problem is marked done when the line search finds no decrease in ``max_ls`` trials, or when
    |f_{k+1} - f_k| or max|s| falls below ``tolerance_change`` (torch's rules).

    Unlike ``torch.optim.LBFGS`` on a batch (one flattened problem, one step length, one curvature test), every
    problem here has its own step, history and stopping. The line search is Armijo backtracking, not strong
    Wolfe, so iterates differ from torch's; on smooth problems both reach the same minimizer (tested).

    Memory O(B·m·n); time per step O(B·m·n) plus the line-search evaluations.

    Args:
        lr: initial step length of the line search (> 0).
        history_size: number m of curvature pairs (>= 1).
        c1: Armijo constant in (0, 1).
        max_ls: line-search trial points per step (>= 1).
        tolerance_change: stopping threshold on the change of f and of x (>= 0).
        curvature_eps: minimum s'y for a pair to be stored (>= 0).
    """

    name = "lbfgs"
    multi_eval = True
    _hparam_names = ("lr", "history_size", "c1", "max_ls", "tolerance_change", "curvature_eps")

    def __init__(self, lr: float = 1.0, history_size: int = 30, c1: float = 1e-4, max_ls: int = 25,
                 tolerance_change: float = 1e-9, curvature_eps: float = 1e-10):
        check_positive("learning rate", lr)
        if not isinstance(history_size, int) or history_size < 1:
            raise ValueError(f"Invalid history_size: {history_size}")
        if not 0.0 < c1 < 1.0:
            raise ValueError(f"Invalid c1: {c1}")
        if not isinstance(max_ls, int) or max_ls < 1:
            raise ValueError(f"Invalid max_ls: {max_ls}")
        check_positive("tolerance_change", tolerance_change, allow_zero=True)
        check_positive("curvature_eps", curvature_eps, allow_zero=True)
        self.lr, self.history_size, self.c1, self.max_ls = float(lr), history_size, float(c1), max_ls
        self.tolerance_change, self.curvature_eps = float(tolerance_change), float(curvature_eps)

    def _init_buffers(self, x0: Tensor, groups: Tensor | None) -> dict[str, Tensor]:
        B, n = x0.shape
        m = self.history_size
        return {"S": x0.new_zeros(B, m, n), "Y": x0.new_zeros(B, m, n),
                "valid": torch.zeros(B, m, dtype=torch.bool, device=x0.device)}

    def _direction(self, state: State) -> Tensor:
        b = state.buffers
        return -two_loop(state.g, b["S"], b["Y"], b["valid"])

    def _step(self, state: State, objective: Objective) -> State:
        active = state.active
        g = state.g
        S, Y, valid = state.buffers["S"], state.buffers["Y"], state.buffers["valid"]
        d = self._direction(state)
        gtd = (g * d).sum(-1)
        # Not a descent direction (or no history yet): restart from steepest descent.
        restart = ~(gtd < 0) | ~valid.any(-1)
        d = where_b(restart, -g, d)
        valid = where_b(restart, torch.zeros_like(valid), valid)
        gtd = (g * d).sum(-1)
        first = torch.clamp(1.0 / g.abs().sum(-1).clamp_min(torch.finfo(g.dtype).tiny), max=1.0) * self.lr
        t0 = torch.where(restart, first, torch.full_like(first, self.lr))
        can_move = active & (gtd < 0)
        ls = armijo_backtracking(objective, state.x, state.f, g, d, t0, can_move, self.c1, self.max_ls)
        accept = can_move & ls.ok
        s = ls.x - state.x
        y = ls.g - g
        keep_pair = accept & ((s * y).sum(-1) > self.curvature_eps)
        S2, Y2, valid2 = push_pair(S, Y, valid, s, y, keep_pair)
        # Problems that moved keep the (possibly reset) history; frozen ones keep theirs untouched.
        S2 = where_b(active, S2, S)
        Y2 = where_b(active, Y2, Y)
        valid2 = where_b(active, valid2, state.buffers["valid"])
        return line_search_state(state, ls, accept, self.tolerance_change, {"S": S2, "Y": Y2, "valid": valid2})
