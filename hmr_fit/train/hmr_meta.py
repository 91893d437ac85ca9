"""Meta-training of L-SR1 on the real body-fitting energy (issue 6): truncated unrolls of the CLI's stage 2 (and,
for a share of batches, stage 1) on synthetic people, meta-loss = mean log energy + PGSM secant penalty + optional
3D supervision (root-aligned joint error against the synthetic ground truth). Model selection by held-out-clip
validation (``hmr_tasks.VAL_CLIPS``), never on the benchmark's test clips.

Library code: no printing; progress goes through a callback. Reuses ``unroll.first_order``/``start`` and
``MetaLoss`` from the analytic meta-training (issue 3).
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch import Tensor

from hmr_fit.fit.camera import Camera
from hmr_fit.fit.synthetic import Problems, mpjpe
from hmr_fit.optim import LSR1, minimize
from hmr_fit.train.hmr_tasks import HMRProblem, HMRTasks, TaskConfig, errors_mm
from hmr_fit.train.meta_loss import MetaLoss
from hmr_fit.train.unroll import first_order, start

CHECKPOINT_VERSION = 1


@dataclass
class HMRMetaConfig:
    """Everything a run depends on (saved in checkpoints and next to the weights).

    Attributes:
        seed: weight init, task stream and pool.
        iterations: sampled trajectories (each: horizon/truncation meta-steps).
        batch: people per trajectory (stage-1 batches have 2·batch rows: two starts per person).
        pool: number of precomputed stage-2 training problems (stage 1 by the CLI's L-BFGS is the expensive part).
        horizon, truncation: unroll length and TBPTT segment length.
        lr, weight_decay, clip: AdamW and gradient-norm clipping.
        lam, eps: MetaLoss (PGSM weight, log floor).
        w3d: weight of the 3D term mean_t MPJPE(x_t) / 0.1 m (stage 2 only; 0: self-supervised only).
        init_step_bias: initial bias of G's output, so the untrained η = alpha1·exp(bias) is a stable GD step on
            this stiff energy (camera-depth gradients are ~50x the pose ones).
        init_sign_lr: if > 0, before meta-training fit G's output (regression, ``init_fit_steps`` Adam steps) so that
            the untrained step is η_i·g_i ≈ init_sign_lr·sign(g_i), an Adam-like start on features from Adam
            trajectories (GD with any per-group step is poor on this energy: its curvature varies per coordinate).
        warm_start: path/name of L-SR1 weights to start from (n_groups may differ: group channels start at 0).
        val_every, val_batch, val_steps: validation (held-out clips; mean PA-MPJPE at val_steps picks the best).
        time_limit_s: stop after this much training time.
        tasks: TaskConfig fields; optimizer: LSR1 constructor kwargs.
    """

    seed: int = 0
    iterations: int = 2000
    batch: int = 32
    pool: int = 2048
    horizon: int = 40
    truncation: int = 20
    lr: float = 2e-3
    weight_decay: float = 1e-2
    clip: float = 1.0
    lam: float = 1.0
    eps: float = 1e-6
    w3d: float = 0.5
    init_step_bias: float = -4.6
    init_sign_lr: float = 0.0
    init_fit_steps: int = 300
    warm_start: str | None = None
    val_every: int = 25
    val_batch: int = 64
    val_steps: int = 20
    time_limit_s: float | None = None
    tasks: dict[str, Any] = field(default_factory=dict)
    optimizer: dict[str, Any] = field(default_factory=lambda: {"n_groups": 4})

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "HMRMetaConfig":
        unknown = sorted(set(d) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValueError(f"unknown meta-training config keys: {unknown}")
        return cls(**copy.deepcopy(d))


def index_truth(t: Problems, idx: Tensor) -> Problems:
    return Problems(t.keypoints[idx], t.confidence[idx], Camera(t.camera.focal[idx], t.camera.center[idx],
                    t.camera.image_size[idx]), t.betas[idx], t.body_pose[idx], t.global_orient[idx], t.transl[idx],
                    t.joints[idx], t.back_view[idx])


def cat_truth(ts: list[Problems]) -> Problems:
    c = [torch.cat([getattr(t, k) for t in ts]) for k in
         ("keypoints", "confidence", "betas", "body_pose", "global_orient", "transl", "joints", "back_view")]
    cam = Camera.cat([t.camera for t in ts])
    return Problems(c[0], c[1], cam, *c[2:])


def build_pool(tasks: HMRTasks, size: int, seed: int, chunk: int = 64,
               progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    """``size`` training people with their stage-1 results (x0), in chunks (seeded)."""
    truths, xs = [], []
    for i in range(0, size, chunk):
        t = tasks.sample_truth(min(chunk, size - i), seed * 1_000_003 + i)
        p = tasks.stage2(t)
        truths.append(t), xs.append(p.x0)
        if progress is not None:
            progress(len(xs))
    return {"truth": cat_truth(truths), "x0": torch.cat(xs)}


def run_hmr_segment(opt: LSR1, problem: HMRProblem, state, f0: Tensor, steps: int, loss: MetaLoss, w3d: float):
    """``steps`` steps from ``state`` (detached: TBPTT); returns (state, loss, traj, secant, j3d, f (K, B))."""
    state = state.detach()
    objective = first_order(problem)
    fs, rs, valid, j3d = [], [], [], []
    use3d = w3d > 0 and problem.stage == 2 and problem.joints_fn is not None
    for _ in range(steps):
        k_before = state.k
        state = opt.step(state, objective)
        fs.append(state.f)
        rs.append(state.buffers["secant"])
        valid.append((k_before >= 1) & state.active)
        if use3d:
            j3d.append(mpjpe(problem.joints_fn(state.x), problem.truth.joints))
    f = torch.stack(fs)
    total, traj, sec = loss(f, f0, torch.stack(rs), torch.stack(valid))
    e3d = torch.stack(j3d).mean() / 0.1 if use3d else f.new_zeros(())
    total = total + (w3d * e3d if use3d else 0.0)
    return state, total, traj, sec, e3d, f.detach()


def validate(opt, tasks: HMRTasks, val: HMRProblem, steps: int, eps: float = 1e-6,
             val1: HMRProblem | None = None) -> dict[str, float]:
    """Stage-2 fit of the validation people: mean log(E_T/E_0), mean and median PA-MPJPE and MPJPE (mm) at T."""
    res = minimize(val.objective, val.x0, opt, max_steps=steps, tol=0.0, groups=val.groups)
    f0 = res.f_trace[0]
    x = torch.where(torch.isfinite(res.x).all(-1, keepdim=True), res.x, val.x0)
    m, pa = errors_mm(tasks, x, val.truth)
    out = {"val_logf": torch.log((res.f.nan_to_num(1e6) + eps * f0) / f0).mean().item(),
           "val_pa": pa.mean().item(), "val_pa_median": pa.median().item(), "val_mpjpe": m.mean().item(),
           "val_failed": res.failed.float().mean().item()}
    if val1 is not None:
        r1 = minimize(val1.objective, val1.x0, opt, max_steps=15, tol=0.0, groups=val1.groups)
        out["val_s1_logf"] = torch.log((r1.f.nan_to_num(1e6) + eps * r1.f_trace[0]) / r1.f_trace[0]).mean().item()
    return out


def warm_start_weights(opt: LSR1, weights: str | Path) -> None:
    """Copy a saved L-SR1's weights into ``opt``; extra group input channels start at zero."""
    src = LSR1.load(weights)
    with torch.no_grad():
        for (name, p), (_, q) in zip(opt.nets.named_parameters(), src.nets.named_parameters()):
            if p.shape == q.shape:
                p.copy_(q)
            else:  # first encoder layer: (hidden, 10 + n_groups) <- (hidden, 10 + n_groups_src)
                p.zero_()
                p[:, : q.shape[1]] = q


def fit_sign_steps(opt: LSR1, problem: HMRProblem, lr: float, steps: int, seed: int = 0,
                   adam_steps: int = 20) -> float:
    """Regress G's logit so that η_i = lr / |g_i| (clamped), on L-SR1 features of an Adam(lr) trajectory of
    ``problem`` (empty buffer: h = y). Returns the final mean-squared logit error."""
    from hmr_fit.optim import Adam
    from hmr_fit.optim.lsr1_nets import features

    res = minimize(problem.objective, problem.x0, Adam(lr=lr), max_steps=adam_steps, tol=0.0, record_x=True)
    xs = res.x_trace
    phis, targets = [], []
    groups = problem.groups.expand_as(problem.x0)
    x_prev, g_prev = torch.zeros_like(xs[0]), torch.zeros_like(xs[0])
    for t in range(xs.shape[0]):
        x = xs[t]
        _, g = problem.objective(x)
        s, y = x - x_prev, g - g_prev
        phis.append(features(x, s, y, g, y, groups, opt.n_groups))
        eta = lr / (g.abs() + 1e-3 * g.pow(2).mean(-1, keepdim=True).sqrt() + 1e-12)
        targets.append((torch.log(eta / opt.alpha1) / opt.alpha2).clamp(-opt.logit_clamp, min(opt.logit_clamp, 4.6)))
        x_prev, g_prev = x, g
    phi = torch.cat(phis).reshape(-1, phis[0].shape[-1]).detach()
    target = torch.cat(targets).reshape(-1).detach()
    params = list(opt.nets.encoder.parameters()) + list(opt.nets.step.parameters())
    fit = torch.optim.Adam(params, lr=3e-3)
    gen = torch.Generator().manual_seed(seed)
    err = float("nan")
    for _ in range(steps):
        idx = torch.randint(0, phi.shape[0], (4096,), generator=gen)
        _, logit = opt.nets(phi[idx][None])
        loss = (logit[0] - target[idx]).pow(2).mean()
        fit.zero_grad()
        loss.backward()
        fit.step()
        err = loss.item()
    return err


class HMRMetaTrainer:
    """Learned optimizer + AdamW + task pool + validation + log, resumable."""

    def __init__(self, cfg: HMRMetaConfig, fitter, prior=None, pool: dict[str, Any] | None = None,
                 pool_progress: Callable[[int], None] | None = None):
        self.cfg = cfg
        torch.manual_seed(cfg.seed)
        self.opt = LSR1(**cfg.optimizer, seed=cfg.seed)
        if cfg.warm_start:
            warm_start_weights(self.opt, cfg.warm_start)
        else:
            with torch.no_grad():
                self.opt.nets.step[-1].bias.fill_(cfg.init_step_bias)
        tcfg = TaskConfig.from_dict(cfg.tasks)
        self.train_tasks = HMRTasks(fitter, "train", tcfg, prior=prior)
        self.val_tasks = HMRTasks(fitter, "val", tcfg)
        self.pool = pool if pool is not None else build_pool(self.train_tasks, cfg.pool, cfg.seed,
                                                             progress=pool_progress)
        vt = self.val_tasks.sample_truth(cfg.val_batch, 777_000 + cfg.seed)
        self.val = self.val_tasks.stage2(vt)
        if cfg.init_sign_lr > 0 and not cfg.warm_start:
            idx = torch.arange(min(256, self.pool["x0"].shape[0]))
            fit_sign_steps(self.opt, self.train_tasks.stage2(index_truth(self.pool["truth"], idx), self.pool["x0"][idx]),
                           cfg.init_sign_lr, cfg.init_fit_steps, seed=cfg.seed)
        self.meta_opt = torch.optim.AdamW(self.opt.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.val1 = self.val_tasks.stage1(index_truth(vt, torch.arange(min(32, cfg.val_batch))))
        self.gen = torch.Generator().manual_seed(cfg.seed)
        self.loss = MetaLoss(lam=cfg.lam, eps=cfg.eps)
        self.iteration, self.skipped, self.elapsed_s = 0, 0, 0.0
        self.log: list[dict[str, Any]] = []
        self.best: dict[str, Any] | None = None

    def sample_problem(self) -> HMRProblem:
        cfg = self.cfg
        if float(torch.rand((), generator=self.gen)) < self.train_tasks.cfg.stage1_fraction:
            seed = int(torch.randint(0, 2**31 - 1, (1,), generator=self.gen))
            return self.train_tasks.stage1(self.train_tasks.sample_truth(cfg.batch, seed))
        idx = torch.randint(0, self.pool["x0"].shape[0], (cfg.batch,), generator=self.gen)
        return self.train_tasks.stage2(index_truth(self.pool["truth"], idx), self.pool["x0"][idx])

    def train_trajectory(self) -> dict[str, Any]:
        cfg = self.cfg
        problem = self.sample_problem()
        state = start(self.opt, problem)
        f0 = state.f
        recs = []
        for _ in range(max(1, cfg.horizon // cfg.truncation)):
            state, loss, traj, sec, e3d, _ = run_hmr_segment(self.opt, problem, state, f0, cfg.truncation,
                                                             self.loss, cfg.w3d)
            self.meta_opt.zero_grad(set_to_none=True)
            if torch.isfinite(loss) and loss.requires_grad:
                loss.backward()
                norm = torch.nn.utils.clip_grad_norm_(self.opt.parameters(), cfg.clip)
                if torch.isfinite(norm):
                    self.meta_opt.step()
                else:
                    self.skipped += 1
            else:
                self.skipped += 1
            state = state.detach()
            recs.append((loss.item(), traj.item(), sec.item(), e3d.item()))
        self.iteration += 1
        mean = [sum(r[i] for r in recs) / len(recs) for i in range(4)]
        return {"iteration": self.iteration, "stage": problem.stage, "loss": mean[0], "traj": mean[1],
                "secant": mean[2], "j3d": mean[3], "failed": float(state.failed.float().mean())}

    def validate(self) -> dict[str, float]:
        return validate(self.opt, self.val_tasks, self.val, self.cfg.val_steps, self.cfg.eps, self.val1)

    @staticmethod
    def score(v: dict[str, float]) -> float:
        """Selection: mean held-out PA-MPJPE (mm) at val_steps; a diverging optimizer is never best."""
        return v["val_pa"] + (1e6 if (v["val_failed"] > 0 or not math.isfinite(v["val_logf"])) else 0.0)

    def run(self, checkpoint: str | Path | None = None, progress: Callable[[dict], None] | None = None) -> None:
        cfg = self.cfg
        t_start = time.perf_counter() - self.elapsed_s
        if self.best is None:
            v = self.validate()
            self.best = {"score": self.score(v), "iteration": 0, "weights": self.opt.state_dict(), **v}
            self.log.append({"iteration": 0, "time_s": 0.0, **v})
        while self.iteration < cfg.iterations:
            rec = self.train_trajectory()
            self.elapsed_s = time.perf_counter() - t_start
            rec["time_s"] = self.elapsed_s
            if self.iteration % cfg.val_every == 0 or self.iteration == cfg.iterations:
                v = self.validate()
                rec.update(v)
                if self.score(v) < self.best["score"]:
                    self.best = {"score": self.score(v), "iteration": self.iteration,
                                 "weights": self.opt.state_dict(), **v}
            self.log.append(rec)
            if "val_pa" in rec and checkpoint is not None:
                self.save_checkpoint(checkpoint)
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

    def save_checkpoint(self, path: str | Path) -> None:
        path = Path(path)
        tmp = path.with_suffix(path.suffix + ".tmp")
        torch.save({"version": CHECKPOINT_VERSION, "config": asdict(self.cfg), "iteration": self.iteration,
                    "elapsed_s": self.elapsed_s, "optimizer": self.opt.state_dict(),
                    "meta_optimizer": self.meta_opt.state_dict(), "generator": self.gen.get_state(),
                    "torch_rng": torch.get_rng_state(), "log": self.log, "best": self.best,
                    "skipped": self.skipped, "pool": self.pool}, tmp)
        tmp.replace(path)

    @classmethod
    def resume(cls, path: str | Path, fitter, prior=None) -> "HMRMetaTrainer":
        ck = torch.load(path, map_location="cpu", weights_only=False)
        if ck.get("version") != CHECKPOINT_VERSION:
            raise ValueError(f"unsupported checkpoint version {ck.get('version')!r} in {path}")
        self = cls(HMRMetaConfig.from_dict(ck["config"]), fitter, prior, pool=ck["pool"])
        self.opt.load_state_dict(ck["optimizer"])
        self.meta_opt = torch.optim.AdamW(self.opt.parameters(), lr=self.cfg.lr, weight_decay=self.cfg.weight_decay)
        self.meta_opt.load_state_dict(ck["meta_optimizer"])
        self.gen.set_state(ck["generator"])
        torch.set_rng_state(ck["torch_rng"])
        self.iteration, self.elapsed_s, self.log, self.best = ck["iteration"], ck["elapsed_s"], ck["log"], ck["best"]
        self.skipped = ck.get("skipped", 0)
        return self


def summarize(log: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Validation points with running means of the training terms since the previous one."""
    out, window = [], []
    for rec in log:
        if "loss" in rec:
            window.append(rec)
        if "val_pa" in rec:
            e = {"iteration": rec["iteration"], "time_s": round(rec.get("time_s", 0.0), 1)}
            e.update({k: round(rec[k], 4) for k in rec if k.startswith("val_")})
            if window:
                for k in ("loss", "traj", "secant", "j3d"):
                    e[f"train_{k}"] = round(sum(w[k] for w in window) / len(window), 4)
                window = []
            out.append(e)
    return out


__all__ = ["HMRMetaConfig", "HMRMetaTrainer", "build_pool", "run_hmr_segment", "validate", "summarize",
           "warm_start_weights", "index_truth", "cat_truth"]
