"""Plain gradient descent under the common contract."""

from __future__ import annotations

from torch import Tensor

from hmr_fit.optim.base import Objective, Optimizer, State, check_positive, single_eval_step


class GD(Optimizer):
    """Gradient descent: x_{k+1} = x_k - lr * g_k. One evaluation per step; memory O(B·n).

    Args:
        lr: step size (> 0).
    """

    name = "gd"
    _hparam_names = ("lr",)

    def __init__(self, lr: float = 0.01):
        check_positive("learning rate", lr)
        self.lr = float(lr)

    def _step(self, state: State, objective: Objective) -> State:
        x_new = state.x - self.lr * state.g
        return single_eval_step(state, objective, x_new, {})
