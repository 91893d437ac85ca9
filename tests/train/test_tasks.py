"""Analytic task families: analytic gradients, seeding, minima, condition numbers."""

from __future__ import annotations

import pytest
import torch

from hmr_fit.train.tasks import Mixture, Quadratic, Rastrigin, Rosenbrock, make_family

FAMILIES = [Quadratic(cond=(10.0, 1000.0)), Rosenbrock(a=(1.0, 100.0)), Rastrigin()]


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.name)
@pytest.mark.parametrize("n", [2, 7])
def test_analytic_gradient_matches_autograd(family, n):
    p = family.sample(3, n, torch.Generator().manual_seed(0), dtype=torch.float64)
    x = (p.x0 + 0.1 * torch.randn_like(p.x0)).requires_grad_(True)
    f, g = p.objective(x)
    (g_auto,) = torch.autograd.grad(f.sum(), x)
    torch.testing.assert_close(g, g_auto, rtol=1e-10, atol=1e-10)
    assert f.shape == (3,) and g.shape == (3, n) and p.x0.shape == (3, n)


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.name)
def test_seeded_sampling_is_reproducible(family):
    a = family.sample(4, 5, torch.Generator().manual_seed(3))
    b = family.sample(4, 5, torch.Generator().manual_seed(3))
    c = family.sample(4, 5, torch.Generator().manual_seed(4))
    assert torch.equal(a.x0, b.x0) and not torch.equal(a.x0, c.x0)
    assert torch.equal(a.objective(a.x0)[0], b.objective(b.x0)[0])


def test_quadratic_condition_number_and_minimum():
    p = Quadratic(cond=(100.0, 100.0), scale=(2.0, 2.0)).sample(2, 6, torch.Generator().manual_seed(1),
                                                                  dtype=torch.float64)
    for b in range(2):
        H = torch.autograd.functional.hessian(lambda x: p.objective(x[None].expand(2, -1))[0][b], p.x0[b])
        eig = torch.linalg.eigvalsh(H)
        torch.testing.assert_close(eig.max() / eig.min(), torch.tensor(100.0, dtype=torch.float64))
        torch.testing.assert_close(eig.max(), torch.tensor(2.0, dtype=torch.float64))


def test_known_minima_are_zero():
    gen = torch.Generator().manual_seed(2)
    ros = Rosenbrock().sample(2, 4, gen, dtype=torch.float64)
    f, g = ros.objective(torch.ones(2, 4, dtype=torch.float64))
    assert torch.equal(f, torch.zeros(2, dtype=torch.float64)) and torch.equal(g, torch.zeros_like(g))
    with pytest.raises(ValueError, match="n >= 2"):
        Rosenbrock().sample(2, 1, gen)


def test_mixture_and_registry():
    mix = Mixture([make_family("rosenbrock"), make_family("quadratic")], dims=[1, 3], weights=[1.0, 0.0])
    for s in range(5):
        p = mix.sample(2, None, torch.Generator().manual_seed(s))
        assert p.name == "rosenbrock" and p.x0.shape == (2, 3)  # n = 1 is skipped for Rosenbrock
    with pytest.raises(ValueError, match="unknown task family"):
        make_family("ackley")
