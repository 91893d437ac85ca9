"""L-SR1's per-coordinate networks and the pure math of its preconditioner.

Everything acts on the last axis independently per coordinate (shared weights), so a trained optimizer runs at
any dimension n. There is no BatchNorm or dropout (the official code's BatchNorm couples the problems of a batch
and depends on batch size, pitfall P6); inputs are normalised per problem instead (``features``).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

N_BASE_FEATURES = 10
"""[x, s, h, g, y] / RMS (5 channels) + scaled log-RMS of each (5 channels)."""

_LOG_SCALE = 0.25  # log-RMS channels are multiplied by this to keep them O(1) for |log rms| up to ~20.
_TINY = 1e-30
_LOG_MIN = math.exp(-20.0)


def rms(z: Tensor) -> Tensor:
    """(B, n) -> (B, 1) root-mean-square over the coordinates (dimension-invariant, unlike the norm)."""
    return z.pow(2).mean(dim=-1, keepdim=True).sqrt()


def features(x: Tensor, s: Tensor, h: Tensor, g: Tensor, y: Tensor, groups: Tensor | None, n_groups: int) -> Tensor:
    """Per-coordinate inputs of the encoder.

    Args:
        x, s, h, g, y: (B, n) iterate, last step s = x_k - x_{k-1}, h = B_{k-1} y, gradient, y = g_k - g_{k-1}.
        groups: (B, n) int64 group ids in [0, n_groups), or None.
        n_groups: number of group channels (0: none).

    Returns:
        (B, n, 10 + n_groups): each of x, s, h, g, y divided by its per-problem RMS, then 0.25·log(RMS) of each (log clipped to [-20, 20])
        (broadcast over coordinates), then the one-hot group id. All detached.
    """
    chans, logs = [], []
    for z in (x, s, h, g, y):
        z = z.detach()
        r = rms(z)
        chans.append(z / (r + _TINY))
        # log-RMS clipped to [-20, 20] (a zero vector, e.g. s at a frozen step, would give -inf).
        logs.append((_LOG_SCALE * torch.log(r.clamp_min(_LOG_MIN)).clamp_max(20.0)).expand_as(z))
    out = torch.stack(chans + logs, dim=-1)
    if n_groups > 0:
        ids = groups if groups is not None else torch.zeros(x.shape, dtype=torch.long, device=x.device)
        out = torch.cat([out, nn.functional.one_hot(ids, n_groups).to(out.dtype)], dim=-1)
    return out


def apply_preconditioner(V: Tensor, z: Tensor, identity: Tensor, rescale: bool) -> Tensor:
    """B̃ z with B̃ = identity·I + Σ_l v_l v_l', applied in O(B·L·n), never forming an n×n matrix.

    Args:
        V: (B, L, n) rank-one vectors (empty slots are zero).
        z: (B, n).
        identity: (B,) 1.0 where the identity term is present, 0.0 where it is dropped (official code, P1).
        rescale: official code (P2): rescale the result to the norm of z, per problem.

    Returns:
        (B, n).
    """
    # c[b,l] = Σ_i V[b,l,i] z[b,i];   u[b,i] = identity[b] z[b,i] + Σ_l c[b,l] V[b,l,i]
    c = torch.einsum("bli,bi->bl", V, z)
    u = identity[:, None] * z + torch.einsum("bl,bli->bi", c, V)
    if rescale:
        # Guard: an all-zero u (dropped identity, v ⟂ z) stays zero instead of 0/0.
        u = u * (z.norm(dim=-1, keepdim=True) / u.norm(dim=-1, keepdim=True).clamp_min(_TINY))
    return u


def explicit_preconditioner(V: Tensor, identity: Tensor) -> Tensor:
    """Slow reference: the (B, n, n) matrix identity·I + Σ_l v_l v_l' (no rescale)."""
    B, L, n = V.shape
    eye = torch.eye(n, dtype=V.dtype, device=V.device).expand(B, n, n)
    return identity[:, None, None] * eye + torch.einsum("bli,blj->bij", V, V)


def _mlp(sizes: list[int], final_act: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2 or final_act:
            layers.append(nn.GELU())
    return nn.Sequential(*layers)


class LSR1Nets(nn.Module):
    """Encoder E, vector generator P and step-size generator G, all element-wise MLPs.

    E: C_in -> hidden (``depth`` Linear+GELU layers); P, G: hidden -> hidden -> 1.
    The last layers of P and G start small (std 1e-2 · default) so that the untrained optimizer is gradient
    descent with step alpha1 and v ≈ 0, while every weight still receives a meta-gradient (an exactly-zero P
    output would get none: B g is quadratic in v).
    """

    def __init__(self, in_channels: int, hidden: int, depth: int):
        super().__init__()
        self.encoder = _mlp([in_channels] + [hidden] * depth, final_act=True)
        self.vector = _mlp([hidden, hidden, 1], final_act=False)
        self.step = _mlp([hidden, hidden, 1], final_act=False)
        for head in (self.vector, self.step):
            last = head[-1]
            with torch.no_grad():
                last.weight.mul_(1e-2 if head is self.step else 0.3)
                last.bias.zero_()

    def forward(self, phi: Tensor) -> tuple[Tensor, Tensor]:
        """phi (B, n, C_in) -> (p (B, n), step logit (B, n))."""
        F = self.encoder(phi)
        return self.vector(F).squeeze(-1), self.step(F).squeeze(-1)


def v_scale(n: int) -> float:
    """v = P(F) / sqrt(n): keeps |v|² = mean P² independent of n (so B̃ g does not grow with the dimension)."""
    return 1.0 / math.sqrt(n)
