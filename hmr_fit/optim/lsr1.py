"""L-SR1: learned symmetric-rank-one preconditioning (Lifshitz et al., arXiv 2508.12270), batched."""

from __future__ import annotations

import copy
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from hmr_fit.optim.base import (FORMAT_VERSION, Objective, Optimizer, State, _check_header, check_positive,
                                single_eval_step)
from hmr_fit.optim.lsr1_nets import (N_BASE_FEATURES, LSR1Nets, apply_preconditioner, explicit_preconditioner,
                                     features, v_scale)

ARCH_KEYS = ("hidden", "depth", "n_groups")


def resolve_weights(weights: str | Path) -> Path:
    """A weights file given as a path, or as the name of a file shipped in ``hmr_fit.data`` (``data/``)."""
    p = Path(weights)
    if p.is_file():
        return p
    if len(p.parts) == 1:
        shipped = Path(str(resources.files("hmr_fit.data").joinpath(str(weights))))
        if shipped.is_file():
            return shipped
    raise FileNotFoundError(f"no L-SR1 weights at '{weights}' (neither a file nor a file shipped in hmr_fit.data)")


class LSR1(Optimizer):
    """Learned SR1-style quasi-Newton optimizer with a PSD rank-one buffer.

    Per problem and step k (digest §5; features normalised as the prototype, see below):

    1. s = x_k - x_{k-1}, y = g_k - g_{k-1} (first step: s = x_0, y = g_0, as the official code, P5);
    2. h = B̃_{k-1} y with the buffer before this step's push;
    3. F = E(φ), φ = per-coordinate features of [x, s, h, g, y] (``lsr1_nets.features``);
    4. v_k = P(F) / sqrt(n), pushed into a FIFO buffer of ``memory`` (L) vectors;
    5. d_k = -B̃_k g_k with B̃_k = I + Σ_{i in buffer} v_i v_i'   (project page: B̃_k = I + Σ v vᵀ),
       applied implicitly in O(n·L), so B̃_k is PSD (>= I) and d_k is a descent direction;
    6. η_k = min(alpha1 · exp(alpha2 · clamp(G(F), ±logit_clamp)), max_lr), coordinate-wise;
    7. x_{k+1} = x_k + η_k ⊙ d_k.

    Secant residual (PGSM, used only by meta-training): r_k = |s_k - H y_k|² / (|s_k|² + |H y_k|²), recorded in
    ``state.buffers["secant"]`` for k >= 1 (at k = 0 it does not depend on the weights). The relative form
    keeps it in [0, 2] whatever the problem's scale; the official code uses the raw mean (h - s)².
    ``secant_form="scaled"`` (default) takes H = diag(η_{k-1}) B̃_{k-1}, the inverse-Hessian model the previous
    step actually applied (s_k = -η_{k-1} ⊙ B̃_{k-1} g_{k-1}); ``"paper"`` takes H = B̃_{k-1} (project page).
    With alpha2 = 1 the curvature scale lives in η, and B̃ >= I alone cannot satisfy s = B̃ y on problems
    whose curvature is far from 1 (measured: the paper-form residual stays ~0.97 during training).

    Choices (paper-faithful by default; the official code's behaviours are options):
      * ``keep_identity=True``: B̃ = I + Σ v v' always. ``False`` drops I once L vectors were pushed (code, P1):
        B̃ then has rank <= L and -B̃ g may vanish.
      * ``rescale=False``: no rescaling. ``True`` rescales every B̃ z to |z| (code, P2).
      * Features are RMS-normalised per problem with log-RMS channels and no BatchNorm (the official code feeds
        raw features through BatchNorm, which couples the batch, P6); every problem is independent.
      * v is scaled by 1/sqrt(n), which makes the method invariant to tiling a problem (same weights at any n).
      * alpha2 = 1 with a clamp; the official alpha2 = 1e-3 freezes η at alpha1 (P7).
      * ``step_form="paper"``: -B̃ g is a descent direction, but the step actually taken, η ⊙ (-B̃ g) with
        coordinate-wise η, is not guaranteed to be one (measured: 37 of 320 steps uphill-in-first-order on
        Rastrigin n = 100 with the shipped weights). ``"symmetric"`` takes -D^½ B̃ D^½ g, D = diag(η), which is
        PSD, so g'Δx < 0 whenever g != 0 (an hmr-fit option, not in the paper; needs its own weights).

    Limits: PSD only (cannot use negative curvature); the secant relation is only encouraged in training; no
    convergence guarantee. Memory O(B·L·n); time per step O(B·n·hidden²) for the networks plus O(B·L·n).

    Args:
        hidden: width of the per-coordinate MLPs.
        depth: Linear+GELU layers of the encoder (>= 1).
        memory: buffer size L (>= 1).
        alpha1, alpha2: step-size scale and exponent scale.
        logit_clamp: G's output is clamped to ±logit_clamp before the exponential.
        max_lr: upper clamp on η (official MAX_LR = 10).
        keep_identity, rescale: see above.
        n_groups: number of variable groups (0: no group channel); ``init(x0, groups)`` gives each coordinate's id.
        weights: path of a saved L-SR1, or the name of a file shipped in ``hmr_fit.data``; its architecture
            (hidden, depth, n_groups) must match. None: freshly initialised weights.
        secant_form: "scaled" or "paper", the H of the recorded secant residual (see above).
        step_form: "paper" (x - η ⊙ B̃g) or "symmetric" (x - D^½ B̃ D^½ g, D = diag(η); see above).
        seed: seed of the initialisation (None: torch's global RNG).
    """

    name = "lsr1"
    _hparam_names = ("hidden", "depth", "memory", "alpha1", "alpha2", "logit_clamp", "max_lr", "keep_identity",
                     "rescale", "n_groups", "secant_form", "step_form")

    def __init__(self, hidden: int = 32, depth: int = 2, memory: int = 4, alpha1: float = 0.01,
                 alpha2: float = 1.0, logit_clamp: float = 8.0, max_lr: float = 10.0, keep_identity: bool = True,
                 rescale: bool = False, n_groups: int = 0, secant_form: str = "scaled",
                 step_form: str = "paper", weights: str | Path | None = None,
                 seed: int | None = 0):
        for name, val, lo in (("hidden", hidden, 1), ("depth", depth, 1), ("memory", memory, 1),
                              ("n_groups", n_groups, 0)):
            if not isinstance(val, int) or isinstance(val, bool) or val < lo:
                raise ValueError(f"Invalid {name}: {val}")
        check_positive("alpha1", alpha1)
        check_positive("alpha2", alpha2, allow_zero=True)
        check_positive("logit_clamp", logit_clamp)
        check_positive("max_lr", max_lr)
        self.hidden, self.depth, self.memory, self.n_groups = hidden, depth, memory, n_groups
        self.alpha1, self.alpha2 = float(alpha1), float(alpha2)
        self.logit_clamp, self.max_lr = float(logit_clamp), float(max_lr)
        self.keep_identity, self.rescale = bool(keep_identity), bool(rescale)
        if secant_form not in ("scaled", "paper"):
            raise ValueError(f"Invalid secant_form: {secant_form!r} (expected 'scaled' or 'paper')")
        self.secant_form = secant_form
        if step_form not in ("paper", "symmetric"):
            raise ValueError(f"Invalid step_form: {step_form!r} (expected 'paper' or 'symmetric')")
        self.step_form = step_form
        if seed is None:
            self.nets = LSR1Nets(N_BASE_FEATURES + n_groups, hidden, depth)
        else:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                self.nets = LSR1Nets(N_BASE_FEATURES + n_groups, hidden, depth)
        self.meta: dict[str, Any] = {}
        if weights is not None:
            d = torch.load(resolve_weights(weights), map_location="cpu", weights_only=True)
            _check_header(d, "LSR1")
            mismatch = {k: (d["hparams"][k], getattr(self, k)) for k in ARCH_KEYS if d["hparams"][k] != getattr(self, k)}
            if mismatch:
                raise ValueError(f"weights '{weights}' have a different architecture (file, requested): {mismatch}")
            self.nets.load_state_dict(d["weights"])
            self.meta = dict(d.get("meta", {}))

    # ---- parameters / devices -------------------------------------------------------------------------------
    def parameters(self):
        return self.nets.parameters()

    def to(self, device=None, dtype=None) -> "LSR1":
        self.nets.to(device=device, dtype=dtype)
        return self

    @property
    def device(self) -> torch.device:
        return next(self.nets.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.nets.parameters()).dtype

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.nets.parameters())

    # ---- serialisation --------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        d = super().state_dict()
        d["weights"] = {k: v.detach().cpu().clone() for k, v in self.nets.state_dict().items()}
        d["meta"] = copy.deepcopy(self.meta)
        return d

    def load_state_dict(self, d: dict[str, Any]) -> None:
        """Replace hyper-parameters and weights (the architecture may change)."""
        _check_header(d, "LSR1")
        new = LSR1(**d["hparams"], seed=None)
        new.nets.load_state_dict(d["weights"])
        new.nets.to(device=self.device, dtype=self.dtype)
        self.__dict__.update({k: getattr(new, k) for k in self._hparam_names})
        self.nets = new.nets
        self.meta = dict(d.get("meta", {}))

    def save(self, path: str | Path, meta: dict[str, Any] | None = None) -> None:
        """One file: format version, hyper-parameters, weights and ``meta`` (training config, log, licence)."""
        if meta is not None:
            self.meta = dict(meta)
        torch.save(self.state_dict(), Path(path))

    @classmethod
    def load(cls, path: str | Path, map_location: str | torch.device = "cpu") -> "LSR1":
        d = torch.load(resolve_weights(path), map_location=map_location, weights_only=True)
        _check_header(d, "LSR1")
        opt = cls(**d["hparams"], seed=None)
        opt.nets.load_state_dict(d["weights"])
        opt.meta = dict(d.get("meta", {}))
        return opt

    # ---- run ------------------------------------------------------------------------------------------------
    def _init_buffers(self, x0: Tensor, groups: Tensor | None) -> dict[str, Tensor]:
        B, n = x0.shape
        if x0.device != self.device:
            raise ValueError(f"x0 is on {x0.device} but the L-SR1 weights are on {self.device}; call .to(device)")
        buf = {
            "x_prev": torch.zeros_like(x0), "g_prev": torch.zeros_like(x0),
            "V": x0.new_zeros(B, self.memory, n),
            "count": torch.zeros(B, dtype=torch.long, device=x0.device),
            "secant": x0.new_zeros(B),
            "eta": x0.new_zeros(B, n),
        }
        if self.n_groups > 0:
            if groups is None:
                groups = torch.zeros(n, dtype=torch.long, device=x0.device)
            groups = torch.as_tensor(groups, dtype=torch.long, device=x0.device)
            if groups.dim() == 1:
                groups = groups.expand(B, n)
            if tuple(groups.shape) != (B, n):
                raise ValueError(f"groups must be (n,) or (B, n) = {(B, n)}, got {tuple(groups.shape)}")
            if bool((groups < 0).any()) or bool((groups >= self.n_groups).any()):
                raise ValueError(f"groups ids must lie in [0, {self.n_groups}), got {groups.min()}..{groups.max()}")
            buf["groups"] = groups.clone()
        elif groups is not None:
            raise ValueError("groups given but this L-SR1 has n_groups=0")
        return buf

    def _identity(self, count: Tensor, dtype: torch.dtype) -> Tensor:
        if self.keep_identity:
            return torch.ones(count.shape, dtype=dtype, device=count.device)
        return (count < self.memory).to(dtype)

    def precondition(self, state: State, z: Tensor) -> Tensor:
        """(B, n) B̃_k z with the current buffer (identity only while the buffer is empty)."""
        b = state.buffers
        return apply_preconditioner(b["V"], z, self._identity(b["count"], z.dtype), self.rescale)

    def preconditioner_matrix(self, state: State) -> Tensor:
        """Slow reference: the explicit (B, n, n) B̃_k (without the optional rescale)."""
        b = state.buffers
        return explicit_preconditioner(b["V"], self._identity(b["count"], b["V"].dtype))

    def _step(self, state: State, objective: Objective) -> State:
        buf = state.buffers
        x, g = state.x, state.g
        n = x.shape[1]
        # 1. secant pair of the last step (P5: the first step sees s = x0, y = g0).
        s = x - buf["x_prev"]
        y = g - buf["g_prev"]
        # 2. h = B̃_{k-1} y (buffer before the push).
        h = self.precondition(state, y)
        first = state.k == 0
        # PGSM residual of the previous step's inverse-Hessian model ("scaled": the operator the step used).
        if self.secant_form == "paper":
            hs = h
        elif self.step_form == "symmetric":
            r_prev = buf["eta"].sqrt()
            hs = r_prev * self.precondition(state, r_prev * y)
        else:
            hs = buf["eta"] * h
        res = (s - hs).pow(2).sum(-1) / ((s.pow(2) + hs.pow(2)).sum(-1) + torch.finfo(x.dtype).tiny)
        secant = torch.where(first, torch.zeros_like(res), res)
        # 3. per-coordinate features and networks (in the networks' dtype).
        phi = features(x, s, h, g, y, buf.get("groups"), self.n_groups).to(self.dtype)
        p, logit = self.nets(phi)
        p, logit = p.to(x.dtype), logit.to(x.dtype)
        # 4. push v_k = P(F)/sqrt(n) into the FIFO buffer (oldest slot dropped).
        v = p * v_scale(n)
        V = torch.cat([buf["V"][:, 1:], v[:, None]], dim=1)
        count = buf["count"] + 1
        # 6. coordinate-wise step sizes.
        eta = torch.clamp(self.alpha1 * torch.exp(self.alpha2 * logit.clamp(-self.logit_clamp, self.logit_clamp)),
                          max=self.max_lr)
        identity = self._identity(count, x.dtype)
        if self.step_form == "paper":
            # 5. d_k = -B̃_k g_k;  7. x_{k+1} = x_k + η ⊙ d_k.
            x_new = x - eta * apply_preconditioner(V, g, identity, self.rescale)
        else:
            # symmetric: x_{k+1} = x_k - D^½ B̃_k D^½ g_k with D = diag(η): a PSD operator, so always downhill.
            r = eta.sqrt()
            x_new = x - r * apply_preconditioner(V, r * g, identity, self.rescale)
        new = {"x_prev": x, "g_prev": g, "V": V, "count": count, "secant": secant, "eta": eta}
        if "groups" in buf:
            new["groups"] = buf["groups"]
        return single_eval_step(state, objective, x_new, new)
