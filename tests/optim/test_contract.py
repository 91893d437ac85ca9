"""Properties every optimizer must have (style guide §6), parametrized over ``cases.OPTIM_DB``."""

from __future__ import annotations

import re

import pytest
import torch

from cases import groups_for, make, quadratic, run, sub_objective, variant_params
from hmr_fit.optim import minimize

PARAMS = variant_params()


@pytest.mark.parametrize("cls,kw,info", PARAMS)
def test_descends_on_convex_quadratic_in_20_steps(cls, kw, info):
    objective, x0, _ = quadratic(B=4, n=6, cond=10.0)
    res = minimize(objective, x0, make(cls, kw), max_steps=20, tol=0.0, groups=groups_for(kw, 6))
    assert not res.failed.any()
    assert (res.f < res.f_trace[0]).all(), (res.f, res.f_trace[0])


@pytest.mark.parametrize("cls,kw,info", PARAMS)
def test_zero_gradient_leaves_x_unchanged(cls, kw, info):
    x0 = torch.randn(3, 5, dtype=torch.float64)

    def flat(x):
        return torch.full((x.shape[0],), 2.0, dtype=x.dtype), torch.zeros_like(x)

    state = run(make(cls, kw), flat, x0, steps=4, groups=groups_for(kw, 5))
    assert torch.equal(state.x, x0)
    assert not state.failed.any()


@pytest.mark.parametrize("cls,kw,info", PARAMS)
@pytest.mark.parametrize("bad", ["nan_grad", "inf_value"])
def test_nonfinite_problem_is_flagged_and_others_unaffected(cls, kw, info, bad):
    objective, x0, (A, xs) = quadratic(B=4, n=6, seed=1)
    calls = {"n": 0}
    poison = 2

    def poisoned(x):
        f, g = objective(x)
        calls["n"] += 1
        if calls["n"] >= 3:  # problem 2 turns non-finite from the third call on
            f, g = f.clone(), g.clone()
            if bad == "nan_grad":
                g[poison, 1] = float("nan")
            else:
                f[poison] = float("inf")
        return f, g

    groups = groups_for(kw, 6)
    res = minimize(poisoned, x0, make(cls, kw), max_steps=12, tol=0.0, groups=groups)
    keep = [0, 1, 3]
    ref = minimize(sub_objective(A, xs, keep), x0[keep], make(cls, kw), max_steps=12, tol=0.0, groups=groups)
    assert res.failed.tolist() == [False, False, True, False]
    assert torch.isfinite(res.x).all() and torch.isfinite(res.f).all()
    torch.testing.assert_close(res.x[keep], ref.x, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(res.n_evals[keep], ref.n_evals)
    # the failed problem kept its last finite iterate: it was evaluated there without error
    f_last, _ = objective(res.x)
    torch.testing.assert_close(res.f[poison], f_last[poison])


@pytest.mark.parametrize("cls,kw,info", PARAMS)
def test_batch_equals_each_problem_alone_in_any_order(cls, kw, info):
    objective, x0, (A, xs) = quadratic(B=4, n=5, seed=2, cond=30.0)
    groups = groups_for(kw, 5)
    full = minimize(objective, x0, make(cls, kw), max_steps=10, tol=0.0, groups=groups)
    perm = [2, 0, 3, 1]
    permuted = minimize(sub_objective(A, xs, perm), x0[perm], make(cls, kw), max_steps=10, tol=0.0, groups=groups)
    torch.testing.assert_close(permuted.x, full.x[perm], rtol=1e-10, atol=1e-12)
    for b in range(4):
        alone = minimize(sub_objective(A, xs, [b]), x0[[b]], make(cls, kw), max_steps=10, tol=0.0, groups=groups)
        torch.testing.assert_close(alone.x[0], full.x[b], rtol=1e-10, atol=1e-12)
        assert alone.n_evals[0] == full.n_evals[b]


@pytest.mark.parametrize("cls,kw,info", PARAMS)
def test_state_dict_round_trip_continues_identically(cls, kw, info, tmp_path):
    objective, x0, _ = quadratic(B=3, n=5, seed=3)
    groups = groups_for(kw, 5)
    opt = make(cls, kw)
    state = run(opt, objective, x0, steps=3, groups=groups)
    torch.save(opt.state_dict(), tmp_path / "opt.pt")
    other = make(cls, {**kw, **info.other_kwargs})
    other.load_state_dict(torch.load(tmp_path / "opt.pt", weights_only=True))
    assert other.hparams() == opt.hparams()
    a, b = state, state
    with torch.no_grad():
        for _ in range(4):
            a = opt.step(a, objective)
            b = other.step(b, objective)
    assert torch.equal(a.x, b.x)


@pytest.mark.parametrize("cls,kw,info", PARAMS)
def test_bad_hyper_parameters_raise(cls, kw, info):
    for bad, regex in info.bad_kwargs:
        with pytest.raises(ValueError, match=re.escape(regex) if "(" in regex else regex):
            cls(**{**kw, **bad})


@pytest.mark.parametrize("cls,kw,info", PARAMS)
def test_minimize_counts_evaluations_and_records_trajectory(cls, kw, info):
    objective, x0, _ = quadratic(B=3, n=4, seed=4)
    calls = {"n": 0}

    def counted(x):
        calls["n"] += 1
        return objective(x)

    res = minimize(counted, x0, make(cls, kw), max_steps=6, tol=0.0, groups=groups_for(kw, 4))
    assert res.f_trace.shape[1] == 3 and res.evals_trace.shape == res.f_trace.shape
    assert (res.evals_trace[0] == 1).all()
    assert (res.evals_trace.diff(dim=0) >= 0).all()
    assert int(res.n_evals.max()) <= calls["n"]
    if not info.multi_eval:
        assert (res.n_evals == 1 + res.n_steps).all() and calls["n"] == 7
    # trajectory ends at the returned objective
    torch.testing.assert_close(res.f_trace[-1], res.f)


@pytest.mark.parametrize("cls,kw,info", PARAMS)
def test_float32_and_b1(cls, kw, info):
    objective, x0, _ = quadratic(B=1, n=3, seed=5, dtype=torch.float32)
    res = minimize(objective, x0, make(cls, kw), max_steps=5, tol=0.0, groups=groups_for(kw, 3))
    assert res.x.dtype == torch.float32 and res.x.shape == (1, 3)
    assert torch.isfinite(res.f).all()


def test_tolerance_stops_converged_problems():
    from hmr_fit.optim import LBFGS

    objective, x0, _ = quadratic(B=3, n=4, seed=6)
    res = minimize(objective, x0, LBFGS(tolerance_change=0.0), max_steps=200, tol=1e-8)
    assert res.converged.all() and res.done.all()
    assert (res.g.abs().amax(-1) <= 1e-8).all()


def test_nonfinite_start_is_failed_not_converged():
    from hmr_fit.optim import Adam

    objective, x0, _ = quadratic(B=3, n=4, seed=7)

    def bad_start(x):
        f, g = objective(x)
        f = f.clone()
        f[1] = float("nan")
        return f, g

    res = minimize(bad_start, x0, Adam(), max_steps=3, tol=1e-3)
    assert res.failed.tolist() == [False, True, False]
    assert not res.converged[1] and torch.equal(res.x[1], x0[1])
