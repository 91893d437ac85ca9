"""Shared optimizer harness (after torch's ``optim_db``): every optimizer with its kwarg variants and flags.

A new optimizer gets the whole property suite of ``test_contract.py`` by adding one ``OptimizerInfo``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from hmr_fit.optim import GD, LBFGS, LSR1, SR1, Adam, Optimizer


@dataclass
class OptimizerInfo:
    """cls + kwarg variants + capability flags + (bad kwargs, error regex) pairs."""

    cls: type[Optimizer]
    variants: list[dict[str, Any]]
    bad_kwargs: list[tuple[dict[str, Any], str]]
    needs_weights: bool = False
    multi_eval: bool = False
    # kwargs of a second instance whose hyper-parameters differ (for the state_dict round trip)
    other_kwargs: dict[str, Any] = field(default_factory=dict)


OPTIM_DB: list[OptimizerInfo] = [
    OptimizerInfo(GD, [{"lr": 0.1}], [({"lr": -0.1}, "Invalid learning rate: -0.1"), ({"lr": 0}, "Invalid learning rate")],
                  other_kwargs={"lr": 0.5}),
    OptimizerInfo(Adam, [{"lr": 0.1}, {"lr": 0.05, "betas": (0.8, 0.99)}],
                  [({"lr": -1.0}, "Invalid learning rate"), ({"betas": (1.0, 0.9)}, "Invalid beta parameter at index 0"),
                   ({"eps": -1.0}, "Invalid epsilon value")],
                  other_kwargs={"lr": 0.3}),
    OptimizerInfo(LBFGS, [{}, {"history_size": 3}],
                  [({"lr": -1.0}, "Invalid learning rate"), ({"history_size": 0}, "Invalid history_size"),
                   ({"c1": 1.5}, "Invalid c1"), ({"max_ls": 0}, "Invalid max_ls")],
                  multi_eval=True, other_kwargs={"history_size": 7, "lr": 0.5}),
    OptimizerInfo(SR1, [{}, {"history_size": 3, "init_scale": 0.5}],
                  [({"history_size": 0}, "Invalid history_size"), ({"init_scale": -2.0}, "Invalid init_scale"),
                   ({"min_denominator": -1.0}, "Invalid min_denominator")],
                  multi_eval=True, other_kwargs={"history_size": 4}),
    OptimizerInfo(LSR1, [{}, {"keep_identity": False, "rescale": True, "memory": 2, "secant_form": "paper"},
                         {"hidden": 8, "depth": 1, "n_groups": 3}, {"step_form": "symmetric"}],
                  [({"hidden": 0}, "Invalid hidden"), ({"memory": 0}, "Invalid memory"),
                   ({"alpha1": -0.1}, "Invalid alpha1"), ({"secant_form": "x"}, "Invalid secant_form"),
                   ({"step_form": "x"}, "Invalid step_form")],
                  needs_weights=True, other_kwargs={"seed": 123, "alpha1": 0.2}),
]


def all_variants() -> list[tuple[str, type[Optimizer], dict[str, Any], OptimizerInfo]]:
    out = []
    for info in OPTIM_DB:
        for i, kw in enumerate(info.variants):
            out.append((f"{info.cls.__name__}-{i}", info.cls, kw, info))
    return out


def variant_params():
    import pytest

    return [pytest.param(cls, kw, info, id=name) for name, cls, kw, info in all_variants()]


def quadratic(B: int = 4, n: int = 6, seed: int = 0, dtype=torch.float64, cond: float = 10.0):
    """B convex quadratics ½ (x - x*)' A (x - x*) with eigenvalues in [1/cond, 1]; returns (objective, x0)."""
    g = torch.Generator().manual_seed(seed)
    Q, _ = torch.linalg.qr(torch.randn(B, n, n, generator=g, dtype=torch.float64))
    lam = cond ** (-torch.rand(B, n, generator=g, dtype=torch.float64))
    A = ((Q * lam[:, None, :]) @ Q.transpose(1, 2)).to(dtype)
    xs = torch.randn(B, n, generator=g, dtype=torch.float64).to(dtype)
    x0 = (xs + 2 * torch.randn(B, n, generator=g, dtype=torch.float64)).to(dtype)

    def objective(x):
        z = x - xs
        gr = torch.einsum("bij,bj->bi", A, z)
        return 0.5 * (z * gr).sum(-1), gr

    return objective, x0, (A, xs)


def sub_objective(A, xs, index):
    """The quadratic objective restricted to the problems ``index``."""
    A, xs = A[index], xs[index]

    def objective(x):
        z = x - xs
        gr = torch.einsum("bij,bj->bi", A, z)
        return 0.5 * (z * gr).sum(-1), gr

    return objective


def run(opt: Optimizer, objective: Callable, x0, steps: int, groups=None):
    state = opt.init(x0, groups=groups) if groups is not None else opt.init(x0)
    with torch.no_grad():
        for _ in range(steps):
            state = opt.step(state, objective)
    return state


def groups_for(kw: dict[str, Any], n: int):
    return torch.arange(n) % kw["n_groups"] if kw.get("n_groups", 0) > 0 else None


def make(cls: type[Optimizer], kw: dict[str, Any]) -> Optimizer:
    """Instantiate; learned optimizers run their networks in float64 so batch comparisons can be exact-ish."""
    opt = cls(**kw)
    return opt.to(dtype=torch.float64) if isinstance(opt, LSR1) else opt
