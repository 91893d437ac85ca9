"""Problem families for meta-training and benchmarks: seeded batches of independent problems.

A family draws a ``Problem``: starting points ``x0`` (B, n) and an objective x (B, n) -> (f (B,), g (B, n)).
``f`` is differentiable in x (meta-training back-propagates through the iterates); ``g`` is the analytic gradient
(detached by the unroll: first-order meta-gradients, as the paper). A later task family (e.g. synthetic body
fitting) only has to implement ``TaskFamily.sample``; ``n`` may then be ignored.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Protocol, Sequence

import torch
from torch import Tensor


@dataclass
class Problem:
    """A batch of B independent problems of dimension n.

    Attributes:
        name: family name, e.g. "quadratic".
        x0: (B, n) starting points.
        objective: x (B, n) -> (f (B,), g (B, n)).
        f_star: (B,) known minimum value (0 for the analytic families), or None.
        groups: (n,) int group ids for optimizers with a group channel, or None.
    """

    name: str
    x0: Tensor
    objective: Callable[[Tensor], tuple[Tensor, Tensor]]
    f_star: Tensor | None = None
    groups: Tensor | None = None


class TaskFamily(Protocol):
    name: str

    def sample(self, batch: int, n: int, generator: torch.Generator, dtype: torch.dtype = torch.float32,
               device: str | torch.device = "cpu") -> Problem: ...


def _uniform(shape, lo, hi, gen, dtype, device) -> Tensor:
    return lo + (hi - lo) * torch.rand(shape, generator=gen, dtype=dtype).to(device)


def _log_uniform(shape, lo, hi, gen, dtype, device) -> Tensor:
    return torch.exp(_uniform(shape, math.log(lo), math.log(hi), gen, dtype, device))


@dataclass
class Quadratic:
    """f(x) = ½ (x - x*)' A (x - x*), A = Q diag(λ) Q' with λ log-spaced in [scale/κ, scale] (κ = condition
    number, log-uniform in ``cond``; the extreme eigenvalues are included so κ is exact), Q Haar-random,
    x* ~ N(0, 1), x0 = x* + U[-r, r]. Memory O(B·n²)."""

    cond: tuple[float, float] = (1.0, 1e3)
    scale: tuple[float, float] = (0.1, 10.0)
    radius: float = 3.0
    name: str = "quadratic"

    def sample(self, batch, n, generator, dtype=torch.float32, device="cpu") -> Problem:
        kappa = _log_uniform((batch, 1), *self.cond, generator, torch.float64, "cpu")
        top = _log_uniform((batch, 1), *self.scale, generator, torch.float64, "cpu")
        u = torch.rand(batch, n, generator=generator, dtype=torch.float64)
        if n >= 2:
            u[:, 0], u[:, 1] = 0.0, 1.0
        lam = top * kappa ** (-u)  # in [top/κ, top]
        Z = torch.randn(batch, n, n, generator=generator, dtype=torch.float64)
        Q, R = torch.linalg.qr(Z)
        Q = Q * torch.sign(torch.diagonal(R, dim1=-2, dim2=-1))[:, None, :]
        A = (Q * lam[:, None, :]) @ Q.transpose(1, 2)
        A = (0.5 * (A + A.transpose(1, 2))).to(dtype=dtype, device=device)
        xs = torch.randn(batch, n, generator=generator, dtype=torch.float64).to(dtype=dtype, device=device)
        x0 = xs + _uniform((batch, n), -self.radius, self.radius, generator, dtype, device)

        def objective(x: Tensor) -> tuple[Tensor, Tensor]:
            z = x - xs
            # g[b,i] = Σ_j A[b,i,j] z[b,j]
            g = torch.einsum("bij,bj->bi", A, z)
            return 0.5 * (z * g).sum(-1), g

        return Problem(self.name, x0, objective, torch.zeros(batch, dtype=dtype, device=device))


@dataclass
class Rosenbrock:
    """f(x) = Σ_{i<n} a (x_{i+1} - x_i²)² + (1 - x_i)² with a log-uniform in ``a`` (100: the standard function),
    x0 ~ U[-r, r]; minimum 0 at x = 1. Needs n >= 2."""

    a: tuple[float, float] = (100.0, 100.0)
    radius: float = 2.0
    name: str = "rosenbrock"

    def sample(self, batch, n, generator, dtype=torch.float32, device="cpu") -> Problem:
        if n < 2:
            raise ValueError(f"Rosenbrock needs n >= 2, got {n}")
        a = _log_uniform((batch, 1), *self.a, generator, dtype, device) if self.a[0] != self.a[1] else \
            torch.full((batch, 1), self.a[0], dtype=dtype, device=device)
        x0 = _uniform((batch, n), -self.radius, self.radius, generator, dtype, device)

        def objective(x: Tensor) -> tuple[Tensor, Tensor]:
            u, w = x[:, :-1], x[:, 1:]
            r = w - u * u
            f = (a * r * r + (1 - u) ** 2).sum(-1)
            g = torch.zeros_like(x)
            g = g + torch.nn.functional.pad(-4 * a * r * u - 2 * (1 - u), (0, 1))
            g = g + torch.nn.functional.pad(2 * a * r, (1, 0))
            return f, g

        return Problem(self.name, x0, objective, torch.zeros(batch, dtype=dtype, device=device))


@dataclass
class Rastrigin:
    """f(x) = Σ_i [z_i² - A cos(2π z_i) + A], z = c (x - x*), with random shift x* ~ U[-s, s] and scale c
    log-uniform in ``scale``; x0 = x* + U[-5.12, 5.12]/c (the usual domain in z). Global minimum 0 at x*,
    many local minima."""

    A: float = 10.0
    shift: float = 1.0
    scale: tuple[float, float] = (0.5, 2.0)
    name: str = "rastrigin"

    def sample(self, batch, n, generator, dtype=torch.float32, device="cpu") -> Problem:
        xs = _uniform((batch, n), -self.shift, self.shift, generator, dtype, device)
        c = _log_uniform((batch, 1), *self.scale, generator, dtype, device)
        x0 = xs + _uniform((batch, n), -5.12, 5.12, generator, dtype, device) / c
        A = self.A

        def objective(x: Tensor) -> tuple[Tensor, Tensor]:
            z = c * (x - xs)
            f = (z * z - A * torch.cos(2 * math.pi * z) + A).sum(-1)
            g = c * (2 * z + 2 * math.pi * A * torch.sin(2 * math.pi * z))
            return f, g

        return Problem(self.name, x0, objective, torch.zeros(batch, dtype=dtype, device=device))


@dataclass
class Mixture:
    """Draw a family (by ``weights``) and a dimension (from ``dims``) per batch; every batch is one family/n."""

    families: Sequence[TaskFamily]
    dims: Sequence[int]
    weights: Sequence[float] | None = None
    name: str = "mixture"

    def sample(self, batch, n=None, generator=None, dtype=torch.float32, device="cpu") -> Problem:
        w = torch.tensor(self.weights if self.weights is not None else [1.0] * len(self.families),
                         dtype=torch.float64)
        fam = self.families[int(torch.multinomial(w, 1, generator=generator))]
        dims = [d for d in self.dims if not (fam.name == "rosenbrock" and d < 2)]
        if n is None:
            n = dims[int(torch.randint(len(dims), (1,), generator=generator))]
        return fam.sample(batch, n, generator, dtype, device)


FAMILIES = {"quadratic": Quadratic, "rosenbrock": Rosenbrock, "rastrigin": Rastrigin}


def make_family(name: str, **kwargs) -> TaskFamily:
    try:
        return FAMILIES[name](**kwargs)
    except KeyError:
        raise ValueError(f"unknown task family '{name}'; choose one of {sorted(FAMILIES)}") from None
