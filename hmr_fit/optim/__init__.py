"""Batched optimizers under one contract (``base.py``): the learned L-SR1 and its classical baselines.

This package imports nothing else from ``hmr_fit`` (as ``torch.optim`` knows no models).

    from hmr_fit.optim import LSR1, minimize
    opt = LSR1(weights="lsr1_analytic.pt")          # shipped weights, resolved in hmr_fit.data
    res = minimize(objective, x0, opt, max_steps=30)
    opt = build_optimizer("lbfgs", history_size=20)  # by name, e.g. from a config
    opt = load_optimizer("path/to/saved_lsr1.pt")    # any file written by LSR1.save
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from hmr_fit.optim.adam import Adam
from hmr_fit.optim.base import Objective, Optimizer, State
from hmr_fit.optim.gd import GD
from hmr_fit.optim.lbfgs import LBFGS
from hmr_fit.optim.lsr1 import LSR1, resolve_weights
from hmr_fit.optim.minimize import MinimizeResult, minimize
from hmr_fit.optim.sr1 import SR1

OPTIMIZERS: dict[str, type[Optimizer]] = {"lsr1": LSR1, "lbfgs": LBFGS, "sr1": SR1, "adam": Adam, "gd": GD}

__all__ = ["LSR1", "LBFGS", "SR1", "Adam", "GD", "minimize", "MinimizeResult", "State", "Optimizer", "Objective",
           "OPTIMIZERS", "build_optimizer", "load_optimizer", "optimizer_from_config"]


def build_optimizer(name: str, **kwargs: Any) -> Optimizer:
    """Construct an optimizer by registry name ("lsr1", "lbfgs", "sr1", "adam", "gd") with constructor kwargs."""
    try:
        cls = OPTIMIZERS[name.lower()]
    except KeyError:
        raise ValueError(f"unknown optimizer '{name}'; choose one of {sorted(OPTIMIZERS)}") from None
    return cls(**kwargs)


def optimizer_from_config(cfg: dict[str, Any]) -> Optimizer:
    """Build from a plain mapping, either hydra-style ``{"_target_": "hmr_fit.optim.LSR1", ...}`` or
    ``{"name": "lsr1", ...}``; the other keys are constructor arguments. Works without hydra installed."""
    cfg = dict(cfg)
    target = cfg.pop("_target_", None)
    name = cfg.pop("name", None)
    if target is not None:
        cls_name = str(target).rsplit(".", 1)[-1]
        matches = [k for k, c in OPTIMIZERS.items() if c.__name__ == cls_name]
        if not str(target).startswith("hmr_fit.optim") or not matches:
            raise ValueError(f"'{target}' is not an hmr_fit.optim optimizer")
        name = matches[0]
    if name is None:
        raise ValueError("optimizer config needs '_target_' or 'name'")
    return build_optimizer(name, **cfg)


def load_optimizer(spec: str | Path, **kwargs: Any) -> Optimizer:
    """An optimizer from a registry name (built with ``kwargs``) or from a saved file (path or shipped name).

    A file is anything written by ``opt.save`` / ``torch.save(opt.state_dict())``: its ``class`` entry selects the
    optimizer and its hyper-parameters (and weights) are restored.
    """
    if isinstance(spec, str) and spec.lower() in OPTIMIZERS:
        return build_optimizer(spec, **kwargs)
    d = torch.load(resolve_weights(spec), map_location="cpu", weights_only=True)
    cls_name = d.get("class")
    matches = [c for c in OPTIMIZERS.values() if c.__name__ == cls_name]
    if not matches:
        raise ValueError(f"'{spec}' does not hold a known optimizer (class {cls_name!r})")
    cls = matches[0]
    opt = cls.load(spec) if cls is LSR1 else cls()
    if cls is not LSR1:
        opt.load_state_dict(d)
    return opt
