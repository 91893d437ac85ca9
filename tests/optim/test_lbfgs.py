"""Batched L-BFGS against torch.optim.LBFGS (strong Wolfe) run one problem at a time, and its two-loop recursion
against the explicit BFGS inverse-Hessian recursion (slow reference)."""

from __future__ import annotations

import pytest
import torch

from cases import quadratic, sub_objective
from hmr_fit.optim import LBFGS, minimize
from hmr_fit.optim.lbfgs import two_loop


def rosenbrock(x):
    u, w = x[:, :-1], x[:, 1:]
    r = w - u * u
    f = (100 * r * r + (1 - u) ** 2).sum(-1)
    g = torch.nn.functional.pad(-400 * r * u - 2 * (1 - u), (0, 1)) + torch.nn.functional.pad(200 * r, (1, 0))
    return f, g


def torch_lbfgs_alone(objective, x0_row, history_size, max_iter=200):
    """Reference: torch.optim.LBFGS with strong Wolfe on ONE problem (B = 1)."""
    x = x0_row.clone()[None].requires_grad_(True)
    opt = torch.optim.LBFGS([x], lr=1, max_iter=max_iter, max_eval=4 * max_iter, history_size=history_size,
                            tolerance_grad=1e-11, tolerance_change=1e-14, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        f, g = objective(x.detach())
        x.grad = g.clone()
        return f.sum()

    opt.step(closure)
    return x.detach()[0]


@pytest.mark.parametrize("problem", ["quadratic", "rosenbrock"])
def test_agrees_with_torch_lbfgs_per_problem(problem):
    if problem == "quadratic":
        objective, x0, (A, xs) = quadratic(B=4, n=8, seed=11, cond=100.0)
        x_star = None
    else:
        objective = rosenbrock
        x0 = torch.tensor([[-1.2, 1.0], [0.5, -0.5], [2.0, 2.0], [-0.3, 0.8]], dtype=torch.float64)
        x_star = torch.ones_like(x0)
    res = minimize(objective, x0, LBFGS(history_size=10, tolerance_change=0.0), max_steps=500, tol=1e-10)
    assert res.converged.all(), res.g.abs().amax(-1)
    for b in range(x0.shape[0]):
        sub = sub_objective(A, xs, [b]) if problem == "quadratic" else objective
        ref = torch_lbfgs_alone(sub, x0[b], history_size=10)
        torch.testing.assert_close(res.x[b], ref, rtol=1e-6, atol=1e-6)
        f_ref, _ = sub(ref[None])
        torch.testing.assert_close(res.f[b], f_ref[0], rtol=1e-6, atol=1e-10)
    if x_star is not None:
        torch.testing.assert_close(res.x, x_star, rtol=1e-6, atol=1e-6)


def test_two_loop_equals_explicit_bfgs_recursion():
    g = torch.Generator().manual_seed(0)
    B, m, n = 2, 4, 6
    A = torch.randn(B, n, n, generator=g, dtype=torch.float64)
    A = A @ A.transpose(1, 2) + n * torch.eye(n, dtype=torch.float64)
    S = torch.randn(B, m, n, generator=g, dtype=torch.float64)
    Y = torch.einsum("bij,bmj->bmi", A, S)  # s'y > 0
    valid = torch.ones(B, m, dtype=torch.bool)
    valid[1, :2] = False  # problem 1 has only 2 pairs
    z = torch.randn(B, n, generator=g, dtype=torch.float64)
    out = two_loop(z, S, Y, valid)
    eye = torch.eye(n, dtype=torch.float64)
    for b in range(B):
        idx = [i for i in range(m) if valid[b, i]]
        s_l, y_l = S[b, idx[-1]], Y[b, idx[-1]]
        H = (s_l @ y_l) / (y_l @ y_l) * eye
        for i in idx:  # H+ = (I - ρ s y') H (I - ρ y s') + ρ s s'   (Nocedal & Wright eq. 6.17)
            s, y = S[b, i], Y[b, i]
            rho = 1.0 / (y @ s)
            H = (eye - rho * torch.outer(s, y)) @ H @ (eye - rho * torch.outer(y, s)) + rho * torch.outer(s, s)
        torch.testing.assert_close(out[b], H @ z[b], rtol=1e-10, atol=1e-12)
