"""Gaussian-mixture fitting by EM (numpy), used at build time by scripts/build_pose_prior.py."""

from __future__ import annotations

import numpy as np


def fit_gmm(x: np.ndarray, weights: np.ndarray, k: int, reg: float, rng: np.random.Generator,
            iters: int = 200, tol: float = 1e-6) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weighted full-covariance Gaussian mixture by EM (k-means++ start, ridge ``reg I`` on each covariance).

    Args:
        x: (N, D) samples.
        weights: (N,) non-negative sample weights (normalised here).
        k: number of components.
        reg: added to every covariance's diagonal, units of x squared.
        rng: numpy generator (seeds the start).
        iters: EM iterations at most.
        tol: stop when the mean log-likelihood improves by less.
    Returns:
        mix: (K,) mixture weights; means: (K, D); covs: (K, D, D).
    """
    n, d = x.shape
    w = weights / weights.sum()
    # k-means++ start on the weighted samples
    centres = [x[rng.choice(n, p=w)]]
    for _ in range(1, k):
        d2 = np.min(((x[:, None] - np.array(centres)[None]) ** 2).sum(-1), axis=1)
        p = w * d2
        centres.append(x[rng.choice(n, p=p / p.sum())])
    means = np.array(centres)
    resp = np.eye(k)[np.argmin(((x[:, None] - means[None]) ** 2).sum(-1), axis=1)]
    prev = -np.inf
    for _ in range(iters):
        # M step
        nk = (resp * w[:, None]).sum(0) + 1e-12
        mix = nk / nk.sum()
        means = (resp * w[:, None]).T @ x / nk[:, None]
        covs = np.empty((k, d, d))
        for c in range(k):
            diff = x - means[c]
            covs[c] = (diff * (resp[:, c] * w)[:, None]).T @ diff / nk[c] + reg * np.eye(d)
        # E step
        log_p = log_gaussian(x, means, covs) + np.log(mix)[None]
        top = log_p.max(1, keepdims=True)
        log_norm = top[:, 0] + np.log(np.exp(log_p - top).sum(1))
        resp = np.exp(log_p - log_norm[:, None])
        ll = float((w * log_norm).sum())
        if ll - prev < tol:
            break
        prev = ll
    return mix, means, covs


def log_gaussian(x: np.ndarray, means: np.ndarray, covs: np.ndarray) -> np.ndarray:
    """Gaussian log densities.

    Args:
        x: (N, D) samples.
        means: (K, D) means.
        covs: (K, D, D) covariances.
    Returns:
        (N, K) log N(x_n; mu_k, S_k).
    """
    n, d = x.shape
    out = np.empty((n, len(means)))
    for c in range(len(means)):
        chol = np.linalg.cholesky(covs[c])
        sol = np.linalg.solve(chol, (x - means[c]).T)  # (D, N)
        out[:, c] = -0.5 * (sol * sol).sum(0) - np.log(np.diag(chol)).sum() - 0.5 * d * np.log(2 * np.pi)
    return out
