"""Batched backtracking (Armijo) line search: every problem has its own step length.

Nocedal & Wright, Numerical Optimization (2nd ed.), Algorithm 3.1 with the safeguarded quadratic interpolation
of §3.5: t_new = -g'd t² / (2 (f(t) - f0 - g'd t)), clipped to [0.1 t, 0.5 t].
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from hmr_fit.optim.base import Objective, State, evaluate, finite_b, where_b


@dataclass
class LineSearchResult:
    """Per-problem outcome (all (B,) or (B, n)).

    Attributes:
        x, f, g: accepted point, or the start point where the search did not succeed.
        t: (B,) accepted step length (0 where it did not succeed).
        ok: (B,) Armijo condition met.
        nonfinite: (B,) a trial point gave a non-finite f or g (the search stopped there).
        n_evals: (B,) evaluations spent per problem.
    """

    x: Tensor
    f: Tensor
    g: Tensor
    t: Tensor
    ok: Tensor
    nonfinite: Tensor
    n_evals: Tensor


def armijo_backtracking(
    objective: Objective,
    x: Tensor,
    f: Tensor,
    g: Tensor,
    d: Tensor,
    t0: Tensor,
    active: Tensor,
    c1: float = 1e-4,
    max_evals: int = 25,
) -> LineSearchResult:
    """Find t with f(x + t d) <= f(x) + c1 t g'd, for each active problem.

    Args:
        x: (B, n) start points; f (B,), g (B, n) their values and gradients.
        d: (B, n) descent directions (g'd < 0 where active).
        t0: (B,) initial step lengths.
        active: (B,) problems to search; the others are returned unchanged and spend no evaluations.
        c1: sufficient-decrease constant.
        max_evals: trial points per problem before giving up.
    """
    gtd = (g * d).sum(-1)
    t = t0.clone()
    pending = active.clone()
    ok = torch.zeros_like(active)
    nonfinite = torch.zeros_like(active)
    n_evals = torch.zeros_like(active, dtype=torch.long)
    x_out, f_out, g_out = x, f, g
    t_out = torch.zeros_like(t0)
    for _ in range(max_evals):
        if not bool(pending.any()):
            break
        x_try = where_b(pending, x + t[:, None] * d, x)
        f_try, g_try = evaluate(objective, x_try)
        n_evals = n_evals + pending.long()
        finite = finite_b(f_try, g_try)
        bad = pending & ~finite
        armijo = pending & finite & (f_try <= f + c1 * t * gtd)
        x_out = where_b(armijo, x_try, x_out)
        f_out = torch.where(armijo, f_try, f_out)
        g_out = where_b(armijo, g_try, g_out)
        t_out = torch.where(armijo, t, t_out)
        ok = ok | armijo
        nonfinite = nonfinite | bad
        # 3.5: safeguarded quadratic interpolation for the next trial.
        denom = 2.0 * (f_try - f - gtd * t)
        t_q = torch.where(denom > 0, -gtd * t * t / denom.clamp_min(torch.finfo(t.dtype).tiny), 0.5 * t)
        t_next = torch.minimum(torch.maximum(t_q, 0.1 * t), 0.5 * t)
        pending = pending & ~armijo & ~bad
        t = torch.where(pending, t_next, t)
    return LineSearchResult(x=x_out, f=f_out, g=g_out, t=t_out, ok=ok, nonfinite=nonfinite, n_evals=n_evals)


def line_search_state(state: State, ls: LineSearchResult, accept: Tensor, tolerance_change: float,
                      buffers: dict[str, Tensor]) -> State:
    """The State after a line-search step (L-BFGS, SR1): accepted problems move to the trial point; a problem is
    done once its step was rejected or changed f or x by at most ``tolerance_change``; a non-finite trial fails it.

    Args:
        state: the State the step started from (its ``g`` is the gradient at ``state.x``).
        ls: the line search's result; accept: (B,) bool, problems whose step is taken.
        buffers: the optimizer's updated buffers.
    """
    active = state.active
    small = ((ls.f - state.f).abs() <= tolerance_change) | ((ls.x - state.x).abs().amax(-1) <= tolerance_change)
    done = state.done | (active & ~ls.nonfinite & (~accept | small))
    return state.replace(
        x=where_b(accept, ls.x, state.x), f=torch.where(accept, ls.f, state.f), g=where_b(accept, ls.g, state.g),
        k=state.k + accept.long(), n_evals=state.n_evals + ls.n_evals, done=done,
        failed=state.failed | (active & ls.nonfinite), buffers=buffers,
    )
