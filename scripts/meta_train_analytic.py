"""Meta-train L-SR1 on analytic functions (quadratic, Rosenbrock, Rastrigin).

    python scripts/meta_train_analytic.py --config configs/train/analytic.yaml --out runs/lsr1_pgsm \
        [--set lam=0 seed=1 iterations=500] [--resume] [--export data/lsr1_analytic.pt]

Writes <out>/checkpoint.pt (resumable, with config), <out>/best.pt (best weights by validation) and
<out>/summary.json; with --export also copies the best weights to a shipped file plus its .json sidecar.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch
import yaml
from tqdm import tqdm

from hmr_fit.train.meta_train import MetaTrainConfig, MetaTrainer, config_with_overrides, summarize_log


def parse_value(v: str):
    return yaml.safe_load(v)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="configs/train/analytic.yaml")
    ap.add_argument("--out", required=True, help="run directory")
    ap.add_argument("--set", nargs="*", default=[], help="overrides key=value (dotted keys for optimizer.*)")
    ap.add_argument("--resume", action="store_true", help="continue from <out>/checkpoint.pt")
    ap.add_argument("--export", default=None, help="write the best weights here (+ .json sidecar)")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ckpt = out / "checkpoint.pt"
    if args.resume and ckpt.exists():
        trainer = MetaTrainer.resume(ckpt)
        for item in args.set:  # e.g. extend a finished run: --set iterations=5000
            key, val = item.split("=", 1)
            if key not in ("iterations", "time_limit_s", "val_every"):
                raise SystemExit(f"--set {key} cannot change on --resume (only iterations, time_limit_s, val_every)")
            setattr(trainer.cfg, key, parse_value(val))
    else:
        trainer = MetaTrainer(MetaTrainConfig.from_dict(config_with_overrides(args.config, args.set)))
    cfg = trainer.cfg

    bar = tqdm(total=cfg.iterations, initial=trainer.iteration, desc=out.name, mininterval=5)
    last_val = [float("nan")]

    def progress(rec: dict) -> None:
        if "val" in rec:
            last_val[0] = rec["val"]
        bar.update(1)
        bar.set_postfix(loss=f"{rec['loss']:.3f}", sec=f"{rec['secant']:.3f}", val=f"{last_val[0]:.3f}")

    trainer.run(checkpoint=ckpt, progress=progress)
    bar.close()

    best = trainer.best_optimizer()
    summary = {
        "config": json.loads(json.dumps(trainer.cfg.__dict__)),
        "iterations_done": trainer.iteration, "train_time_s": round(trainer.elapsed_s, 1),
        "skipped_meta_steps": trainer.skipped,
        "best_val_mean_log_f": trainer.best["val"], "best_iteration": trainer.best["iteration"],
        "num_parameters": best.num_parameters(),
        "machine": f"{platform.machine()} CPU, torch {torch.__version__}, {args.threads} thread(s)",
        "date": time.strftime("%Y-%m-%d"),
        "log": summarize_log(trainer.log),
        "licence": "trained by hmr-fit, Apache-2.0",
    }
    best.save(out / "best.pt", meta={k: v for k, v in summary.items() if k != "log"})
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    if args.export:
        best.save(args.export, meta={k: v for k, v in summary.items() if k != "log"})
        Path(args.export).with_suffix(".json").write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
