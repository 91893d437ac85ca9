"""Analytic benchmark: L-SR1 (with / without PGSM) vs L-BFGS, classical SR1, Adam and GD.

    python scripts/bench_analytic.py [--starts 32] [--budget 200] [--out runs/bench] [--figures docs/figures]

Quadratic (condition 1..1e3), Rosenbrock (a = 100) and Rastrigin (random shift/scale) at n in {2, 10, 100, 1000},
``--starts`` random problems each (half at n = 1000). Every method runs through ``hmr_fit.optim.minimize`` on the
whole batch, with a budget of ``--budget`` objective+gradient evaluations per problem. Adam's and GD's learning
rates are tuned per family on separate problems (n = 10); L-BFGS, SR1 and L-SR1 are not tuned (one L-SR1 network
for everything). Writes results.json, tables.md, the performance profiles and curves (PNG), and prints the tables.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from hmr_fit.optim import GD, LBFGS, LSR1, SR1, Adam, minimize  # noqa: E402
from hmr_fit.train.meta_train import MetaTrainConfig, evaluate, mean_secant_residual, validation_problems  # noqa: E402
from hmr_fit.train.tasks import Quadratic, Rastrigin, Rosenbrock  # noqa: E402

FAMILIES = {"quadratic": Quadratic(cond=(1.0, 1e3), scale=(1.0, 1.0)), "rosenbrock": Rosenbrock(),
            "rastrigin": Rastrigin()}
DIMS = [2, 10, 100, 1000]
BUDGETS = [10, 20, 30, 50, 100, 200]
LR_GRID = {"Adam": [0.003, 0.01, 0.03, 0.1, 0.3, 1.0], "GD": [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1]}


def best_so_far(res, budget: int) -> torch.Tensor:
    """(budget, B): best objective seen within e evaluations, e = 1..budget (f at x0 counts as evaluation 1)."""
    run_best = torch.cummin(res.f_trace.double(), dim=0).values.T.contiguous()  # (B, T+1)
    evals = res.evals_trace.T.contiguous()  # (B, T+1), non-decreasing
    e = torch.arange(1, budget + 1).expand(evals.shape[0], budget).contiguous()
    idx = torch.searchsorted(evals, e, right=True) - 1  # last recorded point within e evaluations
    out = run_best.gather(1, idx.clamp_min(0))
    return torch.where(idx >= 0, out, torch.full_like(out, float("inf"))).T


def run_method(opt, problem, budget: int):
    t0 = time.perf_counter()
    res = minimize(problem.objective, problem.x0, opt, max_steps=budget, tol=0.0, max_evals=budget)
    return res, time.perf_counter() - t0


def tune_lr(cls, family, budget, seed=999):
    prob = family.sample(16, 10, torch.Generator().manual_seed(seed))
    scores = {}
    for lr in LR_GRID[cls.__name__]:
        res, _ = run_method(cls(lr=lr), prob, budget)
        curve = best_so_far(res, budget)
        f0 = curve[0]
        scores[lr] = torch.log((curve[-1] + 1e-12) / f0).median().item()
    return min(scores, key=scores.get), scores


def profile(costs: dict[str, torch.Tensor], taus: torch.Tensor) -> dict[str, torch.Tensor]:
    """Dolan-Moré: fraction of problems whose cost is within a factor tau of the best method's cost."""
    stack = torch.stack(list(costs.values()))  # (S, P)
    best = stack.min(0).values
    out = {}
    for name, c in costs.items():
        ratio = torch.where(torch.isfinite(best), c / best, torch.full_like(c, float("inf")))
        out[name] = torch.stack([(ratio <= t).float().mean() for t in taus])
    return out


def fk_energy_factory(B: int = 64, seed: int = 0):
    """Stand-in fitting energy with 85 unknowns: 24-joint forward kinematics (3 orient + 69 pose axis-angle),
    10 shape coefficients scaling the bones, 3 translation; pinhole projection; Geman-McClure 2D residuals."""
    g = torch.Generator().manual_seed(seed)
    parents = [-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21]
    offsets = 0.1 * torch.randn(24, 3, generator=g)
    shapedirs = 0.02 * torch.randn(24, 3, 10, generator=g)
    targets = 500 + 100 * torch.randn(B, 24, 2, generator=g)
    conf = torch.rand(B, 24, generator=g)

    def rodrigues(r):  # (..., 3) -> (..., 3, 3)
        angle = r.norm(dim=-1, keepdim=True).clamp_min(1e-8)
        k = r / angle
        K = torch.zeros(r.shape[:-1] + (3, 3), dtype=r.dtype)
        K[..., 0, 1], K[..., 0, 2], K[..., 1, 2] = -k[..., 2], k[..., 1], -k[..., 0]
        K = K - K.transpose(-1, -2)
        s, c = angle.sin()[..., None], angle.cos()[..., None]
        return torch.eye(3, dtype=r.dtype) + s * K + (1 - c) * K @ K

    def energy(x):
        x = x.detach().requires_grad_(True)
        pose, beta, transl = x[:, :72].reshape(-1, 24, 3), x[:, 72:82], x[:, 82:85]
        R = rodrigues(pose)
        bones = offsets + torch.einsum("jck,bk->bjc", shapedirs, beta)
        Rw, Jw = [R[:, 0]], [bones[:, 0]]
        for j in range(1, 24):
            p = parents[j]
            Rw.append(Rw[p] @ R[:, j])
            Jw.append(Jw[p] + torch.einsum("bij,bj->bi", Rw[p], bones[:, j]))
        J = torch.stack(Jw, 1) + transl[:, None] + torch.tensor([0.0, 0.0, 5.0])
        uv = 1000 * J[..., :2] / J[..., 2:].clamp_min(0.1) + 500
        r2 = ((uv - targets) / 100).pow(2).sum(-1)
        f = (conf * r2 / (r2 + 1)).sum(-1) / conf.sum(-1) + 1e-3 * x.pow(2).sum(-1)
        (grad,) = torch.autograd.grad(f.sum(), x)
        return f.detach(), grad

    return energy


def time_per_call(fn, reps: int = 30) -> float:
    fn()
    t0 = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - t0) / reps * 1e3


def overhead_table() -> list[dict]:
    B, n = 64, 85
    energy = fk_energy_factory(B)
    x = 0.1 * torch.randn(B, n)
    rows = [{"what": "energy + gradient (24-joint FK + projection, autograd)", "ms": time_per_call(lambda: energy(x))}]

    def cheap(z):
        return z.pow(2).sum(-1), 2 * z

    for name, opt in [("L-SR1 h16", LSR1(hidden=16)), ("L-SR1 h32 (default)", LSR1(hidden=32)),
                      ("L-SR1 h64", LSR1(hidden=64)), ("Adam", Adam()), ("GD", GD())]:
        with torch.no_grad():
            state = opt.prime(opt.init(x), cheap)
            holder = {"s": state}

            def one():
                holder["s"] = opt.step(holder["s"], cheap)

            ms = time_per_call(one, reps=50)
        rows.append({"what": f"{name} step (optimizer's own work, B=64, n=85)", "ms": ms,
                     "params": opt.num_parameters() if isinstance(opt, LSR1) else 0})
    return rows


def secant_seeds(run_dir: Path) -> list[dict]:
    """Mean secant residual and validation mean log f of every runs/seed<s>_lam<l>/best.pt found."""
    rows = []
    cfg = MetaTrainConfig(seed=123, val_batch=32, val_dims=[2, 10],
                          families={"quadratic": {"weight": 1.0}, "rosenbrock": {"weight": 1.0, "a": [1.0, 100.0]},
                                    "rastrigin": {"weight": 1.0}})
    problems = validation_problems(cfg)
    for path in sorted(run_dir.glob("seed*_lam*/best.pt")):
        opt = LSR1.load(path)
        name = path.parent.name
        rows.append({"run": name, "seed": int(name.split("_")[0][4:]), "lam": float(name.split("lam")[1]),
                     "secant_residual": mean_secant_residual(opt, problems, steps=60),
                     "val_mean_log_f": evaluate(opt, problems, 60)})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--starts", type=int, default=32)
    ap.add_argument("--budget", type=int, default=200)
    ap.add_argument("--out", default="runs/bench")
    ap.add_argument("--figures", default="docs/figures")
    ap.add_argument("--weights", default="lsr1_analytic.pt")
    ap.add_argument("--weights-nopgsm", default="lsr1_analytic_nopgsm.pt")
    ap.add_argument("--extra", nargs="*", default=[], help="more L-SR1 weights as LABEL=FILE")
    ap.add_argument("--runs", default="runs", help="where the seed runs (seed<s>_lam<l>/best.pt) live")
    ap.add_argument("--seeds-only", action="store_true", help="only the PGSM-across-seeds table")
    args = ap.parse_args()
    torch.set_num_threads(1)
    out, figs = Path(args.out), Path(args.figures)
    out.mkdir(parents=True, exist_ok=True)
    if args.seeds_only:
        seeds = secant_seeds(Path(args.runs))
        lines = ["| run | seed | lambda | secant residual | val mean log f |", "|---|---|---|---|---|"]
        lines += [f"| {r['run']} | {r['seed']} | {r['lam']:g} | {r['secant_residual']:.4f} | "
                  f"{r['val_mean_log_f']:.3f} |" for r in seeds]
        print("\n".join(lines))
        (out / "seeds.md").write_text("\n".join(lines) + "\n")
        (out / "seeds.json").write_text(json.dumps(seeds, indent=1))
        return
    figs.mkdir(parents=True, exist_ok=True)
    budget = args.budget
    global BUDGETS
    BUDGETS = [b for b in BUDGETS if b <= budget]

    tuned = {}
    for fam_name, fam in FAMILIES.items():
        for cls in (Adam, GD):
            lr, _ = tune_lr(cls, fam, budget)
            tuned[(cls.__name__, fam_name)] = lr
    print("tuned learning rates:", {f"{k[0]}/{k[1]}": v for k, v in tuned.items()})

    def methods(fam_name):
        learned = {"L-SR1 (PGSM)": LSR1.load(args.weights), "L-SR1 (no PGSM)": LSR1.load(args.weights_nopgsm)}
        for item in args.extra:
            label, path = item.split("=", 1)
            learned[f"L-SR1 ({label})"] = LSR1.load(path)
        return {**learned, "L-BFGS": LBFGS(), "SR1": SR1(), "Adam": Adam(lr=tuned[("Adam", fam_name)]),
                "GD": GD(lr=tuned[("GD", fam_name)])}

    curves: dict[str, dict[str, torch.Tensor]] = {}  # cell -> method -> (budget, B) best-so-far
    walls: dict[str, dict[str, float]] = {}
    failed: dict[str, dict[str, int]] = {}
    for fam_name, fam in FAMILIES.items():
        for n in DIMS:
            B = args.starts if n < 1000 else max(4, args.starts // 2)
            problem = fam.sample(B, n, torch.Generator().manual_seed(1000 * n + len(fam_name)))
            cell = f"{fam_name} n={n}"
            curves[cell], walls[cell], failed[cell] = {}, {}, {}
            for name, opt in methods(fam_name).items():
                res, wall = run_method(opt, problem, budget)
                curves[cell][name] = best_so_far(res, budget)
                walls[cell][name] = wall
                failed[cell][name] = int(res.failed.sum())
            print(f"{cell}: done ({', '.join(f'{k} {v:.2f}s' for k, v in walls[cell].items())})", flush=True)

    names = list(next(iter(curves.values())).keys())
    lines = []
    # 1. median relative objective f/f0 at budgets
    lines.append("### Median f(best within budget) / f(x0)\n")
    hdr = "| problem | method | " + " | ".join(f"@{b}" for b in BUDGETS) + " | wall s | failed |"
    lines += [hdr, "|" + "---|" * (len(BUDGETS) + 4)]
    for cell, per in curves.items():
        for name in names:
            c = per[name]
            rel = c / c[0]
            vals = " | ".join(f"{rel[b - 1].median().item():.2e}" for b in BUDGETS)
            lines.append(f"| {cell} | {name} | {vals} | {walls[cell][name]:.2f} | {failed[cell][name]} |")
    # 2. who wins at small budgets; where L-BFGS overtakes L-SR1 (medians)
    lines.append("\n### L-SR1 against L-BFGS and Adam: median objective, and the budget from which L-BFGS "
                 "stays below L-SR1\n")
    lines += ["| problem | L-SR1 variant | L-SR1 < L-BFGS at @10/@20/@30 | L-SR1 < Adam at @10/@20/@30 | "
              "L-BFGS overtakes at |", "|---|---|---|---|---|"]
    overtake = {}
    for cell, per in curves.items():
        for variant in [m for m in names if m.startswith("L-SR1")]:
            m_l = per[variant].median(1).values
            m_b = per["L-BFGS"].median(1).values
            m_a = per["Adam"].median(1).values
            wins_b = "/".join("yes" if m_l[b - 1] < m_b[b - 1] else "no" for b in (10, 20, 30))
            wins_a = "/".join("yes" if m_l[b - 1] < m_a[b - 1] else "no" for b in (10, 20, 30))
            below = (m_b <= m_l).tolist()
            e_star = None
            for e in range(budget):
                if all(below[e:]):
                    e_star = e + 1
                    break
            overtake[f"{cell} {variant}"] = e_star
            lines.append(f"| {cell} | {variant} | {wins_b} | {wins_a} | "
                         f"{e_star if e_star is not None else 'not within ' + str(budget)} |")
    # 3. evaluations to reach the tolerance f <= f_L + tau (f0 - f_L), f_L = best of all methods within budget
    lines.append("\n### Evaluations to reach f <= f_L + tau (f0 - f_L) (median over problems that reach it; "
                 "fraction reaching it)\n")
    costs = {1e-1: {m: [] for m in names}, 1e-3: {m: [] for m in names}}
    for tau in costs:
        lines += [f"\ntau = {tau:g}\n", "| problem | " + " | ".join(names) + " |", "|" + "---|" * (len(names) + 1)]
        for cell, per in curves.items():
            f0 = per[names[0]][0]
            f_l = torch.stack([per[m][-1] for m in names]).min(0).values
            target = f_l + tau * (f0 - f_l)
            row = []
            for m in names:
                hit = per[m] <= target[None]
                reached = hit.any(0)
                first = torch.where(reached, hit.float().argmax(0).double() + 1, torch.tensor(float("inf")))
                costs[tau][m].append(first)
                med = first[reached].median().item() if reached.any() else float("nan")
                row.append(f"{med:.0f} ({reached.float().mean().item():.2f})")
            lines.append(f"| {cell} | " + " | ".join(row) + " |")
    # 4. performance profiles
    taus = torch.logspace(0, 3, 200, base=2)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, tol in zip(axes, costs):
        prof = profile({m: torch.cat(v) for m, v in costs[tol].items()}, taus)
        for m, p in prof.items():
            ax.step(taus.log2(), p, where="post", label=m)
        ax.set_xlabel("log2(tau): evaluations within a factor tau of the best method")
        ax.set_ylabel("fraction of problems")
        ax.set_title(f"all {sum(v.numel() for v in costs[tol][names[0]])} problems, convergence test tau={tol:g}")
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(figs / "analytic_profiles.png", dpi=120)
    plt.close(fig)
    # 5. median curves
    fig, axes = plt.subplots(3, 4, figsize=(16, 10), sharex=True)
    for i, (cell, per) in enumerate(curves.items()):
        ax = axes.flat[i]
        for m in names:
            rel = (per[m] / per[m][0]).median(1).values
            ax.semilogy(range(1, budget + 1), rel, label=m)
        ax.set_title(cell, fontsize=9)
        ax.grid(alpha=0.3)
    axes.flat[0].legend(fontsize=7)
    for ax in axes[-1]:
        ax.set_xlabel("evaluations")
    for ax in axes[:, 0]:
        ax.set_ylabel("median best f / f0")
    fig.tight_layout()
    fig.savefig(figs / "analytic_curves.png", dpi=100)
    plt.close(fig)
    # 6. per-step overhead vs a fitting-sized energy evaluation
    lines.append("\n### Per-step cost at B = 64, n = 85 (1 thread)\n")
    lines += ["| what | ms | learned parameters |", "|---|---|---|"]
    ov = overhead_table()
    for r in ov:
        lines.append(f"| {r['what']} | {r['ms']:.2f} | {r.get('params', '')} |")
    # 7. PGSM across seeds
    seeds = secant_seeds(Path(args.runs))
    if seeds:
        lines.append("\n### PGSM across seeds: mean relative secant residual and validation mean log(f_60/f_0)\n")
        lines += ["| run | seed | lambda | secant residual | val mean log f |", "|---|---|---|---|---|"]
        for r in seeds:
            lines.append(f"| {r['run']} | {r['seed']} | {r['lam']:g} | {r['secant_residual']:.4f} | "
                         f"{r['val_mean_log_f']:.3f} |")
    text = "\n".join(lines)
    print(text)
    (out / "tables.md").write_text(text + "\n")
    (out / "results.json").write_text(json.dumps({
        "tuned_lr": {f"{k[0]}/{k[1]}": v for k, v in tuned.items()}, "walls": walls, "failed": failed,
        "overtake": overtake, "overhead": ov, "seeds": seeds,
        "median_rel": {cell: {m: (per[m] / per[m][0]).median(1).values.tolist() for m in names}
                       for cell, per in curves.items()},
    }, indent=1))


if __name__ == "__main__":
    main()
