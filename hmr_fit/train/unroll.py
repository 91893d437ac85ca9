"""Truncated unrolled optimization: run an optimizer K steps with the iterate chain in the graph."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from hmr_fit.optim.base import Optimizer, State
from hmr_fit.train.meta_loss import MetaLoss
from hmr_fit.train.tasks import Problem


@dataclass
class Segment:
    """One truncation of an unroll.

    Attributes:
        state: State after the segment (still attached to the graph; detach before the next segment).
        loss, traj, secant: scalar meta-loss and its two terms.
        f: (K, B) objectives after each step.
    """

    state: State
    loss: Tensor
    traj: Tensor
    secant: Tensor
    f: Tensor


def first_order(problem: Problem):
    """The objective the optimizer sees: f keeps its graph in x, g is detached (no second derivatives)."""

    def objective(x: Tensor) -> tuple[Tensor, Tensor]:
        f, g = problem.objective(x)
        return f, g.detach()

    return objective


def start(opt: Optimizer, problem: Problem) -> State:
    """init + the evaluation at x0 (no graph)."""
    with torch.no_grad():
        state = opt.init(problem.x0, groups=problem.groups) if problem.groups is not None else opt.init(problem.x0)
        return opt.prime(state, problem.objective)


def run_segment(opt: Optimizer, problem: Problem, state: State, f0: Tensor, steps: int, loss: MetaLoss) -> Segment:
    """``steps`` optimizer steps from ``state`` (detached here: truncated back-propagation through time).

    The iterates x_t stay in the graph within the segment (multi-step meta-gradient, the official toy setting);
    the optimizer's inputs are detached inside it; L-SR1's buffered vectors stay in the graph.
    """
    state = state.detach()
    objective = first_order(problem)
    fs, rs, valid = [], [], []
    for _ in range(steps):
        k_before = state.k
        state = opt.step(state, objective)
        fs.append(state.f)
        if "secant" in state.buffers:
            rs.append(state.buffers["secant"])
            valid.append((k_before >= 1) & state.active)
    f = torch.stack(fs)
    r = torch.stack(rs) if rs else None
    v = torch.stack(valid) if valid else None
    total, traj, sec = loss(f, f0, r, v)
    return Segment(state=state, loss=total, traj=traj, secant=sec, f=f.detach())
