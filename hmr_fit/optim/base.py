"""The optimizer contract shared by L-SR1 and every baseline (style guide §2).

```
state = opt.init(x0)                 # x0 (B, n) -> State; every field has leading dim B
state = opt.step(state, objective)   # objective(x (B, n)) -> f (B,), g (B, n)
opt.state_dict() / opt.load_state_dict(d)
```

Every problem of a batch is independent. A problem that is ``done`` (converged, or its line search could make no
progress) or ``failed`` (the objective returned a non-finite f or g) is frozen: all of its fields stay exactly
unchanged, and the rest of the batch continues as if it were absent. ``step`` never edits a ``State`` in place; it
returns a new one, so meta-training can back-propagate through an unroll.

Evaluation counting: the objective is always called on the whole batch (it may depend on per-problem data that
cannot be sliced), but a call counts as one evaluation only for the problems that needed it (``State.n_evals``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import Tensor

Objective = Callable[[Tensor], "tuple[Tensor, Tensor]"]
"""objective(x: (B, n)) -> (f: (B,), g: (B, n)): per-problem value and gradient."""

FORMAT_VERSION = 1


@dataclass
class State:
    """Run state of a batch of B problems of dimension n.

    Attributes:
        x: (B, n) current iterates.
        f: (B,) objective at ``x``; ``None`` until the first evaluation.
        g: (B, n) gradient at ``x``; ``None`` until the first evaluation.
        k: (B,) int64, accepted steps per problem.
        n_evals: (B,) int64, objective+gradient evaluations spent on each problem.
        done: (B,) bool, frozen because it converged or cannot progress.
        failed: (B,) bool, frozen because the objective returned a non-finite value (the step was rejected).
        buffers: optimizer-specific tensors, each with leading dim B (moments, curvature pairs, rank-one buffer).
    """

    x: Tensor
    f: Tensor | None
    g: Tensor | None
    k: Tensor
    n_evals: Tensor
    done: Tensor
    failed: Tensor
    buffers: dict[str, Tensor] = field(default_factory=dict)

    @property
    def batch_size(self) -> int:
        return self.x.shape[0]

    @property
    def dim(self) -> int:
        return self.x.shape[1]

    @property
    def active(self) -> Tensor:
        """(B,) bool, problems that still move."""
        return ~(self.done | self.failed)

    def replace(self, **changes: Any) -> "State":
        return dataclasses.replace(self, **changes)

    def detach(self) -> "State":
        """A copy cut from any autograd graph (truncated back-propagation)."""

        def d(t):
            return None if t is None else t.detach()

        return State(
            x=d(self.x), f=d(self.f), g=d(self.g), k=self.k, n_evals=self.n_evals, done=self.done,
            failed=self.failed, buffers={key: d(v) for key, v in self.buffers.items()},
        )

    def select(self, index: Tensor | slice | list[int]) -> "State":
        """The sub-batch ``index`` (all fields indexed along dim 0)."""

        def s(t):
            return None if t is None else t[index]

        return State(
            x=s(self.x), f=s(self.f), g=s(self.g), k=s(self.k), n_evals=s(self.n_evals), done=s(self.done),
            failed=s(self.failed), buffers={key: s(v) for key, v in self.buffers.items()},
        )


def where_b(mask: Tensor, new: Tensor, old: Tensor) -> Tensor:
    """Per-problem select: ``mask`` (B,) broadcast over the trailing dims of ``new``/``old`` (B, ...)."""
    return torch.where(mask.reshape(mask.shape + (1,) * (new.dim() - 1)), new, old)


def finite_b(f: Tensor, g: Tensor) -> Tensor:
    """(B,) bool: f (B,) and every entry of g (B, n) are finite."""
    return torch.isfinite(f) & torch.isfinite(g).all(dim=-1)


def check_shape(name: str, t: Tensor, shape: tuple[int, ...]) -> None:
    if tuple(t.shape) != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {tuple(t.shape)}")


class Optimizer:
    """Base class: hyper-parameters live on the object, run state in a ``State``.

    Subclasses implement ``_init_buffers`` and ``_step`` and list their hyper-parameters in ``_hparam_names``.
    ``multi_eval`` is True for methods that may call the objective more than once per step (line searches).
    """

    name: str = "optimizer"
    multi_eval: bool = False
    _hparam_names: tuple[str, ...] = ()

    # ---- contract -------------------------------------------------------------------------------------------
    def init(self, x0: Tensor, groups: Tensor | None = None) -> State:
        """Start a run at ``x0`` (B, n). ``groups`` is used by L-SR1 only and ignored here."""
        if x0.dim() != 2:
            raise ValueError(f"x0 must be (B, n), got shape {tuple(x0.shape)}")
        if not x0.is_floating_point():
            raise ValueError(f"x0 must be a floating-point tensor, got {x0.dtype}")
        B = x0.shape[0]
        dev = x0.device
        return State(
            x=x0, f=None, g=None,
            k=torch.zeros(B, dtype=torch.long, device=dev),
            n_evals=torch.zeros(B, dtype=torch.long, device=dev),
            done=torch.zeros(B, dtype=torch.bool, device=dev),
            failed=torch.zeros(B, dtype=torch.bool, device=dev),
            buffers=self._init_buffers(x0, groups),
        )

    def step(self, state: State, objective: Objective) -> State:
        """One iteration for every active problem; returns a new State."""
        state = self.prime(state, objective)
        return self._step(state, objective)

    def prime(self, state: State, objective: Objective) -> State:
        """Evaluate f and g at the starting point if not done yet (counts one evaluation per problem).

        Problems whose starting point gives a non-finite f or g are flagged ``failed``.
        """
        if state.f is not None:
            return state
        f, g = evaluate(objective, state.x)
        ok = finite_b(f, g)
        failed = state.failed | ~ok
        # Keep non-finite values out of the state (0 * nan would leak into later arithmetic).
        f = torch.where(ok, f, torch.zeros_like(f))
        g = where_b(ok, g, torch.zeros_like(g))
        return state.replace(f=f, g=g, failed=failed, n_evals=state.n_evals + 1)

    # ---- (de)serialisation ----------------------------------------------------------------------------------
    def hparams(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self._hparam_names}

    def state_dict(self) -> dict[str, Any]:
        """Hyper-parameters (+ learned weights for learned optimizers) and the format version."""
        return {"format_version": FORMAT_VERSION, "class": type(self).__name__, "hparams": self.hparams()}

    def load_state_dict(self, d: dict[str, Any]) -> None:
        _check_header(d, type(self).__name__)
        new = type(self)(**d["hparams"])  # validates
        for k in self._hparam_names:
            setattr(self, k, getattr(new, k))

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> "Optimizer":
        """Classical optimizers hold no tensors; learned ones move their weights."""
        return self

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.hparams().items())
        return f"{type(self).__name__}({args})"

    # ---- to implement ---------------------------------------------------------------------------------------
    def _init_buffers(self, x0: Tensor, groups: Tensor | None) -> dict[str, Tensor]:
        return {}

    def _step(self, state: State, objective: Objective) -> State:
        raise NotImplementedError


def _check_header(d: dict[str, Any], cls_name: str) -> None:
    version = d.get("format_version")
    if version != FORMAT_VERSION:
        raise ValueError(f"unsupported optimizer state format version {version!r}; expected {FORMAT_VERSION}")
    if d.get("class") != cls_name:
        raise ValueError(f"state dict is for {d.get('class')!r}, cannot load into {cls_name}")


def evaluate(objective: Objective, x: Tensor) -> tuple[Tensor, Tensor]:
    """Call ``objective`` on the whole batch and check the shapes it returns."""
    f, g = objective(x)
    B, n = x.shape
    check_shape("objective value f", f, (B,))
    check_shape("objective gradient g", g, (B, n))
    return f, g


def single_eval_step(state: State, objective: Objective, x_new: Tensor, buffers_new: dict[str, Tensor]) -> State:
    """Finish a one-evaluation-per-step method: evaluate at ``x_new``, accept or reject per problem.

    Problems that are inactive, or whose proposal / new value / new gradient is non-finite, keep every field
    unchanged; the non-finite ones are flagged ``failed``.
    """
    active = state.active
    proposal_ok = torch.isfinite(x_new).all(dim=-1)
    x_call = where_b(active & proposal_ok, x_new, state.x)
    f_new, g_new = evaluate(objective, x_call)
    ok = proposal_ok & finite_b(f_new, g_new)
    accept = active & ok
    buffers = {k: where_b(accept, buffers_new[k], v) for k, v in state.buffers.items()}
    return state.replace(
        x=where_b(accept, x_call, state.x),
        f=torch.where(accept, f_new, state.f),
        g=where_b(accept, g_new, state.g),
        k=state.k + accept.long(),
        n_evals=state.n_evals + active.long(),
        failed=state.failed | (active & ~ok),
        buffers=buffers,
    )


def check_positive(name: str, value: float, allow_zero: bool = False) -> None:
    ok = value >= 0 if allow_zero else value > 0
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not ok or value != value:
        raise ValueError(f"Invalid {name}: {value}")
