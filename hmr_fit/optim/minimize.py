"""One batched driver for every optimizer: fitting, benchmarks and tests all go through ``minimize``."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from hmr_fit.optim.base import Objective, Optimizer, State


@dataclass
class MinimizeResult:
    """Outcome of ``minimize`` for a batch of B problems.

    Attributes:
        x: (B, n) final iterates.
        f: (B,) objective at ``x``.
        g: (B, n) gradient at ``x``.
        n_steps: (B,) int64, accepted steps.
        n_evals: (B,) int64, objective+gradient evaluations (the one at x0 included).
        converged: (B,) bool, stopped by ``tol`` on max |g|.
        done: (B,) bool, stopped before ``max_steps`` (converged, or the optimizer could make no progress).
        failed: (B,) bool, the objective returned a non-finite value; ``x`` is the last finite iterate.
        f_trace: (T+1, B) objective after each driver step (row 0: at x0); frozen problems repeat their value.
        evals_trace: (T+1, B) int64, cumulative evaluations after each driver step.
        x_trace: (T+1, B, n) iterates, only when ``record_x=True``; otherwise None.
        state: the final optimizer State (to continue the run).
    """

    x: Tensor
    f: Tensor
    g: Tensor
    n_steps: Tensor
    n_evals: Tensor
    converged: Tensor
    done: Tensor
    failed: Tensor
    f_trace: Tensor
    evals_trace: Tensor
    x_trace: Tensor | None
    state: State


def minimize(
    objective: Objective,
    x0: Tensor,
    optimizer: Optimizer,
    max_steps: int = 100,
    tol: float = 1e-6,
    *,
    groups: Tensor | None = None,
    max_evals: int | None = None,
    record_x: bool = False,
    state: State | None = None,
) -> MinimizeResult:
    """Minimize a batch of independent problems.

    Args:
        objective: x (B, n) -> (f (B,), g (B, n)). It is called with autograd enabled (it may use
            ``torch.autograd.grad`` inside) but the optimizer's own arithmetic runs under ``no_grad``.
        x0: (B, n) starting points.
        optimizer: any ``hmr_fit.optim`` optimizer.
        max_steps: iterations (``optimizer.step`` calls); a line-search method may spend several evaluations each.
        tol: a problem stops (``converged``) once max_j |g_j| <= tol.
        groups: (n,) or (B, n) int variable-group ids, passed to ``optimizer.init`` (used by L-SR1).
        max_evals: optional per-problem evaluation budget; a problem stops once it has spent it (a line search
            may overshoot it within its last step).
        record_x: also keep every iterate (memory (T+1)·B·n).
        state: continue from this State instead of calling ``optimizer.init``.

    Returns:
        MinimizeResult.
    """
    if max_steps < 0:
        raise ValueError(f"Invalid max_steps: {max_steps}")
    if tol < 0:
        raise ValueError(f"Invalid tol: {tol}")

    def wrapped(x: Tensor) -> tuple[Tensor, Tensor]:
        with torch.enable_grad():
            f, g = objective(x)
        return f.detach(), g.detach()

    with torch.no_grad():
        if state is None:
            state = optimizer.init(x0, groups=groups) if groups is not None else optimizer.init(x0)
        state = optimizer.prime(state, wrapped)
        converged = _grad_small(state, tol) & ~state.failed
        state = _stop(state, converged, max_evals)
        f_tr, e_tr, x_tr = [state.f.clone()], [state.n_evals.clone()], [state.x.clone()] if record_x else None
        for _ in range(max_steps):
            if not bool(state.active.any()):
                break
            state = optimizer.step(state, wrapped)
            converged = converged | (_grad_small(state, tol) & ~state.failed)
            state = _stop(state, converged, max_evals)
            f_tr.append(state.f.clone())
            e_tr.append(state.n_evals.clone())
            if record_x:
                x_tr.append(state.x.clone())
    return MinimizeResult(
        x=state.x, f=state.f, g=state.g, n_steps=state.k, n_evals=state.n_evals, converged=converged,
        done=state.done, failed=state.failed, f_trace=torch.stack(f_tr), evals_trace=torch.stack(e_tr),
        x_trace=torch.stack(x_tr) if record_x else None, state=state,
    )


def _grad_small(state: State, tol: float) -> Tensor:
    return state.g.abs().amax(dim=-1) <= tol


def _stop(state: State, converged: Tensor, max_evals: int | None) -> State:
    done = state.done | (converged & ~state.failed)
    if max_evals is not None:
        done = done | (state.n_evals >= max_evals)
    return state.replace(done=done)
