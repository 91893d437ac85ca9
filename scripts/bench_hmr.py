"""Fitting benchmark on held-out motion clips (issue 6): learned vs classical optimizers on the real energy.

    python scripts/bench_hmr.py [--batches 4] [--hmr-weights data/lsr1_hmr.pt] [--out runs/bench_hmr.md]  (then paste it into docs/benchmarks.md)

Problems: ``hmr_fit.fit.synthetic.make_problems(split="test")`` (clips run, punch, dance_b; never used in
training or model selection), B = 64 per batch. Every optimizer gets the same energy (CLI default) and the same
start: the CLI's stage 1 (L-BFGS, 15 steps); then stage 2 (85 variables) for up to 100 steps with tol = 0.
Records median energy (best-so-far not used: the last iterate is what a fitter returns), evaluations, wall time
and 3D errors (MPJPE root-aligned, PA-MPJPE) at 0/5/10/20/50/100 steps; plus the full CLI pipeline with L-SR1
(HMR weights) as the lead would select it, 20 stage-2 steps. Adam's lr is tuned on training-clip problems (mean PA-MPJPE at 20 steps).
Writes docs/figures/hmr_energy.png, hmr_pa_mpjpe.png and a markdown table.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch
from hydra.utils import instantiate

from hmr_fit.cli.main import build_fitter, compose_config
from hmr_fit.fit.synthetic import make_problems
from hmr_fit.optim import LBFGS, LSR1, SR1, Adam, minimize
from hmr_fit.train.hmr_tasks import HMRTasks, errors_mm

STEPS = (0, 5, 10, 20, 50, 100)


def load_lsr1(spec: str) -> LSR1:
    """Shipped/saved weights, or a training checkpoint (its best-so-far weights)."""
    if spec.endswith("checkpoint.pt"):
        ck = torch.load(spec, map_location="cpu", weights_only=False)
        opt = LSR1(**ck["config"]["optimizer"], seed=None)
        opt.load_state_dict(ck["best"]["weights"])
        return opt
    return LSR1.load(spec)


def groups_for(opt, problem):
    """Group ids for optimizers that take them (an L-SR1 without a group channel rejects them)."""
    return None if getattr(opt, "n_groups", 1) == 0 else problem.groups


def run(opt, problem, tasks, steps: int):
    t = time.perf_counter()
    res = minimize(problem.objective, problem.x0, opt, max_steps=steps, tol=0.0, groups=groups_for(opt, problem),
                   record_x=True)
    wall = time.perf_counter() - t
    out = {"f": res.f_trace.nan_to_num(float("inf")), "evals": res.evals_trace.float(), "wall": wall,
           "failed": res.failed.float().mean().item()}
    xs = res.x_trace
    for k in STEPS:
        x = xs[min(k, xs.shape[0] - 1)]
        x = torch.where(torch.isfinite(x).all(-1, keepdim=True), x, problem.x0)
        m, pa = errors_mm(tasks, x, problem.truth)
        out[f"mpjpe@{k}"], out[f"pa@{k}"] = m, pa
    return out


def timed_20(opt, problem) -> float:
    t = time.perf_counter()
    minimize(problem.objective, problem.x0, opt, max_steps=20, tol=0.0, groups=groups_for(opt, problem))
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batches", type=int, default=4)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--hmr-weights", default="data/lsr1_hmr.pt")
    ap.add_argument("--adam-lrs", type=float, nargs="+", default=[0.01, 0.03, 0.1])
    ap.add_argument("--out", default="runs/bench_hmr.md")
    ap.add_argument("--figures", default="docs/figures")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    cli = compose_config([])
    body = instantiate(cli.body)
    fitter = build_fitter(cli, body)
    tasks = HMRTasks(fitter, "test")

    # Adam lr on training-clip problems (make_problems' train split), by mean PA-MPJPE at 20 steps.
    tr = tasks.stage2(make_problems(body, 64, seed=123, split="train"))
    tune = {}
    for lr in args.adam_lrs:
        r = minimize(tr.objective, tr.x0, Adam(lr=lr), max_steps=20, tol=0.0)
        x = torch.where(torch.isfinite(r.x).all(-1, keepdim=True), r.x, tr.x0)
        tune[lr] = errors_mm(tasks, x, tr.truth)[1].mean().item()
    adam_lr = min(tune, key=tune.get)

    methods = {
        "L-SR1 (HMR weights)": lambda: load_lsr1(args.hmr_weights),
        "L-SR1 (analytic weights)": lambda: LSR1(weights="lsr1_analytic.pt"),
        "L-BFGS (CLI default, hist 30)": lambda: LBFGS(),
        f"Adam (lr {adam_lr})": lambda: Adam(lr=adam_lr),
        "SR1 (classical)": lambda: SR1(),
    }
    hmr_cli = compose_config(["optim=lsr1", f"optim.weights={Path(args.hmr_weights).resolve()}",
                              "optim.n_groups=4", "fit.steps=20"]) if not args.hmr_weights.endswith(
        "checkpoint.pt") else None

    results = {m: [] for m in methods}
    times20 = {m: [] for m in methods}
    pipeline = {"pa": [], "mpjpe": [], "wall": []}
    for b in range(args.batches):
        truth = make_problems(body, args.batch, seed=1000 + b, split="test")
        problem = tasks.stage2(truth)
        for name, make in methods.items():
            results[name].append(run(make(), problem, tasks, 100))
            times20[name].append(timed_20(make(), problem))
        if hmr_cli is not None:
            f2 = build_fitter(hmr_cli, body)
            t = time.perf_counter()
            fr = f2.fit(truth.keypoints, truth.confidence, truth.camera)
            pipeline["wall"].append(time.perf_counter() - t)
            m, pa = errors_mm(tasks, fr.x, truth)
            pipeline["pa"].append(pa), pipeline["mpjpe"].append(m)

    def cat(name, key):
        return torch.cat([r[key] for r in results[name]], dim=-1)

    ref_f100 = cat("L-BFGS (CLI default, hist 30)", "f")[100]
    ref_f20 = cat("L-BFGS (CLI default, hist 30)", "f")[20].median().item()
    ref_pa100 = cat("L-BFGS (CLI default, hist 30)", "pa@100").mean().item()
    rows, summary = [], {}
    for name in methods:
        f = cat(name, "f")
        ev = cat(name, "evals")
        best = torch.cummin(f, 0).values
        reach = best <= ref_f100 * 1.01
        first = torch.where(reach.any(0), reach.float().argmax(0), torch.full_like(ref_f100, -1).long())
        ev_reach = torch.where(first >= 0, ev.gather(0, first.clamp(min=0)[None])[0], torch.full_like(ref_f100, float("inf")))
        s = {"E": {k: f[k].median().item() for k in STEPS},
             "evals": {k: ev[k].mean().item() for k in STEPS},
             "pa_mean": {k: cat(name, f"pa@{k}").mean().item() for k in STEPS},
             "pa_median": {k: cat(name, f"pa@{k}").median().item() for k in STEPS},
             "mpjpe_mean": {k: cat(name, f"mpjpe@{k}").mean().item() for k in STEPS},
             "wall20_s_per_batch": float(np.median(times20[name])),
             "wall100_s_per_batch": float(np.median([r["wall"] for r in results[name]])),
             "reach_lbfgs100_frac": reach.any(0).float().mean().item(),
             "evals_to_lbfgs100_median": ev_reach.median().item(),
             "failed_frac": float(np.mean([r["failed"] for r in results[name]]))}
        summary[name] = s
    if pipeline["pa"]:
        summary["CLI pipeline, L-SR1 HMR stage 2, 15+20 steps"] = {
            "pa_mean_20": torch.cat(pipeline["pa"]).mean().item(), "pa_median_20": torch.cat(pipeline["pa"]).median().item(),
            "mpjpe_mean_20": torch.cat(pipeline["mpjpe"]).mean().item(),
            "wall_s_per_batch": float(np.median(pipeline["wall"]))}

    # ---- figures -----------------------------------------------------------------------------------------------
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig_dir = Path(args.figures)
    fig_dir.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(6, 4))
    for name in methods:
        f = cat(name, "f")
        ax.semilogy(range(f.shape[0]), f.median(1).values.numpy(), label=name)
    ax.set_xlabel("stage-2 step"), ax.set_ylabel("median energy"), ax.grid(alpha=0.3), ax.legend(fontsize=7)
    ax.set_title(f"held-out clips, {args.batches * args.batch} problems")
    fig.tight_layout(), fig.savefig(fig_dir / "hmr_energy.png", dpi=110), plt.close(fig)
    fig, ax = plt.subplots(figsize=(6, 4))
    for name in methods:
        ax.plot(STEPS, [summary[name]["pa_mean"][k] for k in STEPS], marker="o", label=name)
    ax.axhline(0.8 * ref_pa100, ls="--", c="gray", lw=0.8, label="target: 0.8 x L-BFGS@100")
    ax.set_xscale("symlog", linthresh=5), ax.set_xlabel("stage-2 step"), ax.set_ylabel("mean PA-MPJPE (mm)")
    ax.grid(alpha=0.3), ax.legend(fontsize=7)
    fig.tight_layout(), fig.savefig(fig_dir / "hmr_pa_mpjpe.png", dpi=110), plt.close(fig)

    # ---- table -------------------------------------------------------------------------------------------------
    n = args.batches * args.batch
    L = [f"# Fitting benchmark: held-out motion clips ({n} problems, B = {args.batch})", "",
         f"`python scripts/bench_hmr.py --batches {args.batches} --hmr-weights {args.hmr_weights}`; "
         f"{platform.machine()} CPU shared with other jobs, torch {torch.__version__}, {args.threads} thread; "
         f"{time.strftime('%Y-%m-%d')}. Same energy (configs/energy/default.yaml), same start (CLI stage 1: L-BFGS, "
         "15 steps, front/back) for every optimizer; stage 2 from there, tol = 0. Energies: median over problems of "
         "the last iterate; PA-MPJPE / MPJPE: mean over problems (mm, 24 joints). "
         f"Adam lr tuned on training-clip problems over {args.adam_lrs} (mean PA@20: "
         + ", ".join(f"{k}: {v:.1f}" for k, v in tune.items()) + ").", "",
         "| optimizer | E@5 | E@10 | E@20 | E@50 | E@100 | PA@0 | PA@5 | PA@10 | PA@20 | PA@50 | PA@100 | MPJPE@20 | "
         "MPJPE@100 | evals@20 | evals@100 | s/batch @20 | s/batch @100 | evals to L-BFGS@100 E (reached) |",
         "|---|" + "---|" * 18]
    for name in methods:
        s = summary[name]
        L.append(f"| {name} | " + " | ".join(f"{s['E'][k]:.3g}" for k in STEPS[1:]) + " | "
                 + " | ".join(f"{s['pa_mean'][k]:.1f}" for k in STEPS) + " | "
                 + f"{s['mpjpe_mean'][20]:.1f} | {s['mpjpe_mean'][100]:.1f} | {s['evals'][20]:.1f} | "
                 f"{s['evals'][100]:.1f} | {s['wall20_s_per_batch']:.2f} | {s['wall100_s_per_batch']:.2f} | "
                 f"{s['evals_to_lbfgs100_median']:.0f} ({s['reach_lbfgs100_frac']:.0%}) |")
    if pipeline["pa"]:
        p = summary["CLI pipeline, L-SR1 HMR stage 2, 15+20 steps"]
        L += ["", f"Full CLI pipeline with `optim=lsr1 optim.weights=lsr1_hmr.pt optim.n_groups=4 fit.steps=20` "
              f"(`Fitter.fit`, stage 1 by `fit.stage1_optim`, L-BFGS by default): mean PA-MPJPE {p['pa_mean_20']:.1f} mm (median {p['pa_median_20']:.1f}), "
              f"MPJPE {p['mpjpe_mean_20']:.1f} mm, {p['wall_s_per_batch']:.2f} s per batch of {args.batch} "
              "(both stages, incl. data preparation)."]
    hm = summary["L-SR1 (HMR weights)"]
    L += ["", "Targets (issue 6):", "",
          f"* PA-MPJPE at 20 steps <= 0.8 x L-BFGS at 100: {hm['pa_mean'][20]:.1f} vs 0.8 x {ref_pa100:.1f} = "
          f"{0.8 * ref_pa100:.1f} mm -> {'met' if hm['pa_mean'][20] <= 0.8 * ref_pa100 else 'missed'}.",
          f"* energy at 20 steps <= 1/2 of L-BFGS at 20: {hm['E'][20]:.3g} vs {ref_f20:.3g} (ratio "
          f"{hm['E'][20] / ref_f20:.2f}) -> {'met' if hm['E'][20] <= 0.5 * ref_f20 else 'missed'}.",
          "", "![energy](figures/hmr_energy.png) ![PA-MPJPE](figures/hmr_pa_mpjpe.png)", ""]
    Path(args.out).write_text("\n".join(L))
    Path(args.out).with_suffix(".json").write_text(json.dumps({"adam_tuning": tune, "summary": summary}, indent=1))
    print("\n".join(L))


if __name__ == "__main__":
    main()
