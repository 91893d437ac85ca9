"""Meta-training loop for L-SR1 (truncated unrolls, AdamW, gradient clipping, checkpoints, resume).

Library code: no printing; progress is reported through a callback so scripts can drive a progress bar.
"""

from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from hmr_fit.optim import LSR1, minimize
from hmr_fit.train.meta_loss import MetaLoss
from hmr_fit.train.tasks import Mixture, Problem, TaskFamily, make_family
from hmr_fit.train.unroll import run_segment, start

CHECKPOINT_VERSION = 1


@dataclass
class MetaTrainConfig:
    """Everything a run depends on (saved in every checkpoint and next to the weights).

    Attributes:
        seed: seeds the weight initialisation and the task stream.
        iterations: number of sampled trajectories (each gives horizon/truncation meta-steps).
        batch: problems per trajectory.
        dims: problem dimensions drawn per trajectory.
        families: name -> {"weight": w, **constructor kwargs} (``tasks.FAMILIES``).
        horizon: steps per trajectory; truncation: steps per meta-step (TBPTT).
        lr, weight_decay, clip: AdamW and gradient-norm clipping.
        lam, eps: meta-loss (``MetaLoss``).
        val_every, val_batch, val_dims: validation (fixed seeded problems, mean log(f_T/f_0)); best kept.
        time_limit_s: stop early after this wall time (None: no limit).
        optimizer: LSR1 constructor kwargs.
    """

    seed: int = 0
    iterations: int = 300
    batch: int = 32
    dims: list[int] = field(default_factory=lambda: [2, 5, 10])
    families: dict[str, dict[str, Any]] = field(default_factory=lambda: {
        "quadratic": {"weight": 1.0}, "rosenbrock": {"weight": 1.0}, "rastrigin": {"weight": 1.0}})
    horizon: int = 40
    truncation: int = 10
    lr: float = 1e-3
    weight_decay: float = 1e-2
    clip: float = 1.0
    lam: float = 1.0
    eps: float = 1e-6
    val_every: int = 20
    val_batch: int = 32
    val_dims: list[int] = field(default_factory=lambda: [2, 10])
    time_limit_s: float | None = None
    optimizer: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "MetaTrainConfig":
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        unknown = sorted(set(d) - set(known))
        if unknown:
            raise ValueError(f"unknown meta-training config keys: {unknown}")
        return cls(**copy.deepcopy(known))

    def task_distribution(self) -> Mixture:
        fams, weights = [], []
        for name, kw in self.families.items():
            kw = dict(kw)
            weights.append(float(kw.pop("weight", 1.0)))
            fams.append(make_family(name, **{k: tuple(v) if isinstance(v, list) else v for k, v in kw.items()}))
        return Mixture(fams, list(self.dims), weights)


def validation_problems(cfg: MetaTrainConfig) -> list[Problem]:
    gen = torch.Generator().manual_seed(10_000 + cfg.seed)
    mix = cfg.task_distribution()
    out = []
    for fam in mix.families:
        for n in cfg.val_dims:
            if fam.name == "rosenbrock" and n < 2:
                continue
            out.append(fam.sample(cfg.val_batch, n, gen))
    return out


def evaluate(opt, problems: list[Problem], steps: int, eps: float = 1e-6) -> float:
    """Mean over problems of log((f_T + eps f0) / f0) after ``steps`` steps (lower is better)."""
    vals = []
    for p in problems:
        res = minimize(p.objective, p.x0, opt, max_steps=steps, tol=0.0)
        f0, fT = res.f_trace[0], res.f
        vals.append(torch.log((fT + eps * f0) / f0).mean().item())
    return sum(vals) / len(vals)


def mean_secant_residual(opt: LSR1, problems: list[Problem], steps: int) -> float:
    """Mean L-SR1 relative secant residual |s - H y|² / (|s|² + |H y|²) over steps 1..steps-1 and problems."""
    total, count = 0.0, 0
    with torch.no_grad():
        for p in problems:
            state = start(opt, p)
            for _ in range(steps):
                k_before = state.k
                state = opt.step(state, p.objective)
                valid = (k_before >= 1) & state.active
                total += float(state.buffers["secant"][valid].sum())
                count += int(valid.sum())
    return total / max(count, 1)


class MetaTrainer:
    """Owns the learned optimizer, the AdamW meta-optimizer, the task stream and the training log."""

    def __init__(self, cfg: MetaTrainConfig, families: TaskFamily | None = None):
        self.cfg = cfg
        self.opt = LSR1(**cfg.optimizer, seed=cfg.seed)
        self.meta_opt = torch.optim.AdamW(self.opt.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.tasks = families if families is not None else cfg.task_distribution()
        self.gen = torch.Generator().manual_seed(cfg.seed)
        self.loss = MetaLoss(lam=cfg.lam, eps=cfg.eps)
        self.val = validation_problems(cfg)
        self.iteration = 0
        self.skipped = 0
        self.elapsed_s = 0.0
        self.log: list[dict[str, float]] = []
        self.best: dict[str, Any] | None = None  # {"val": float, "iteration": int, "weights": state_dict}

    # ---- one trajectory ---------------------------------------------------------------------------------------
    def train_trajectory(self) -> dict[str, float]:
        cfg = self.cfg
        problem = self.tasks.sample(cfg.batch, None, self.gen) if isinstance(self.tasks, Mixture) else \
            self.tasks.sample(cfg.batch, cfg.dims[0], self.gen)
        state = start(self.opt, problem)
        f0 = state.f
        losses, trajs, secs = [], [], []
        for _ in range(max(1, cfg.horizon // cfg.truncation)):
            seg = run_segment(self.opt, problem, state, f0, cfg.truncation, self.loss)
            self.meta_opt.zero_grad(set_to_none=True)
            if torch.isfinite(seg.loss) and seg.loss.requires_grad:
                seg.loss.backward()
                norm = torch.nn.utils.clip_grad_norm_(self.opt.parameters(), cfg.clip)
                # A diverging problem can give an inf/nan meta-gradient: skip that meta-step.
                if torch.isfinite(norm):
                    self.meta_opt.step()
                else:
                    self.skipped += 1
            state = seg.state.detach()
            losses.append(seg.loss.item()), trajs.append(seg.traj.item()), secs.append(seg.secant.item())
        self.iteration += 1
        return {"iteration": self.iteration, "family": problem.name, "n": problem.x0.shape[1],
                "loss": sum(losses) / len(losses), "traj": sum(trajs) / len(trajs), "secant": sum(secs) / len(secs),
                "failed": float(state.failed.float().mean())}

    def validate(self) -> float:
        return evaluate(self.opt, self.val, self.cfg.horizon, self.cfg.eps)

    # ---- the loop ---------------------------------------------------------------------------------------------
    def run(self, checkpoint: str | Path | None = None, progress: Callable[[dict], None] | None = None) -> None:
        cfg = self.cfg
        t_start = time.perf_counter() - self.elapsed_s
        if self.best is None:
            v = self.validate()
            self.best = {"val": v, "iteration": 0, "weights": self.opt.state_dict()}
            self.log.append({"iteration": 0, "val": v, "time_s": 0.0})
        while self.iteration < cfg.iterations:
            rec = self.train_trajectory()
            self.elapsed_s = time.perf_counter() - t_start
            rec["time_s"] = self.elapsed_s
            if self.iteration % cfg.val_every == 0 or self.iteration == cfg.iterations:
                rec["val"] = self.validate()
                if rec["val"] < self.best["val"]:
                    self.best = {"val": rec["val"], "iteration": self.iteration, "weights": self.opt.state_dict()}
                if checkpoint is not None:
                    self.save_checkpoint(checkpoint)
            self.log.append(rec)
            if progress is not None:
                progress(rec)
            if cfg.time_limit_s is not None and self.elapsed_s > cfg.time_limit_s:
                break
        if checkpoint is not None:
            self.save_checkpoint(checkpoint)

    def best_optimizer(self) -> LSR1:
        opt = LSR1(**self.cfg.optimizer, seed=None)
        opt.load_state_dict(self.best["weights"])
        return opt

    # ---- checkpoints ------------------------------------------------------------------------------------------
    def save_checkpoint(self, path: str | Path) -> None:
        path = Path(path)
        tmp = path.with_suffix(path.suffix + ".tmp")
        torch.save({
            "version": CHECKPOINT_VERSION, "config": asdict(self.cfg), "iteration": self.iteration,
            "elapsed_s": self.elapsed_s, "optimizer": self.opt.state_dict(),
            "meta_optimizer": self.meta_opt.state_dict(), "generator": self.gen.get_state(),
            "torch_rng": torch.get_rng_state(), "log": self.log, "best": self.best, "skipped": self.skipped,
        }, tmp)
        tmp.replace(path)

    @classmethod
    def resume(cls, path: str | Path) -> "MetaTrainer":
        ck = torch.load(path, map_location="cpu", weights_only=False)
        if ck.get("version") != CHECKPOINT_VERSION:
            raise ValueError(f"unsupported checkpoint version {ck.get('version')!r} in {path}")
        self = cls(MetaTrainConfig.from_dict(ck["config"]))
        self.opt.load_state_dict(ck["optimizer"])
        self.meta_opt = torch.optim.AdamW(self.opt.parameters(), lr=self.cfg.lr, weight_decay=self.cfg.weight_decay)
        self.meta_opt.load_state_dict(ck["meta_optimizer"])
        self.gen.set_state(ck["generator"])
        torch.set_rng_state(ck["torch_rng"])
        self.iteration, self.elapsed_s = ck["iteration"], ck["elapsed_s"]
        self.log, self.best = ck["log"], ck["best"]
        self.skipped = ck.get("skipped", 0)
        return self


def summarize_log(log: list[dict[str, Any]], every: int = 1) -> list[dict[str, Any]]:
    """Compact log for the json next to the weights: validation points plus running means of the loss."""
    out = []
    window: list[dict[str, Any]] = []
    for rec in log:
        if "loss" in rec:
            window.append(rec)
        if "val" in rec:
            entry = {"iteration": rec["iteration"], "time_s": round(rec.get("time_s", 0.0), 1),
                     "val_mean_log_f": round(rec["val"], 4)}
            if window:
                for key in ("loss", "traj", "secant"):
                    entry[f"train_{key}"] = round(sum(w[key] for w in window) / len(window), 4)
                window = []
            out.append(entry)
    return out[::every] if every > 1 else out


__all__ = ["MetaTrainConfig", "MetaTrainer", "evaluate", "mean_secant_residual", "validation_problems", "summarize_log"]


def config_with_overrides(path: str | Path, overrides: list[str]) -> dict[str, Any]:
    """A training config (YAML file) with ``key=value`` overrides applied; dotted keys reach nested sections
    (``optimizer.hidden=64``), values are parsed as YAML (``1e-3``, ``null``, ``[1, 2]``)."""
    import yaml

    raw = yaml.safe_load(Path(path).read_text())
    for item in overrides:
        key, value = item.split("=", 1)
        node = raw
        *parents, last = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = yaml.safe_load(value)
    return raw
