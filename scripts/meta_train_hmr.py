"""Meta-train L-SR1 on the real body-fitting energy (issue 6): unrolled stage-2 fits of synthetic people.

    python scripts/meta_train_hmr.py --config configs/train/hmr.yaml --out runs/hmr_lam1 \
        [--set lam=0 seed=1 w3d=0] [--resume] [--export data/lsr1_hmr.pt]

The energy, weights, init pose and stage 1 are the CLI's (``build_fitter(compose_config([]))``). Writes
<out>/checkpoint.pt (resumable; holds the task pool), <out>/best.pt (best by held-out-clip validation) and
<out>/summary.json; --export copies the best weights and a .json sidecar (config, training summary, licence).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch
import yaml
from hydra.utils import instantiate
from tqdm import tqdm

from hmr_fit.cli.main import build_fitter, compose_config
from hmr_fit.train.hmr_meta import HMRMetaConfig, HMRMetaTrainer, summarize
from hmr_fit.train.hmr_tasks import VAL_CLIPS
from hmr_fit.train.meta_train import config_with_overrides

LICENCE = "trained by hmr-fit on synthetic data from open motion, Apache-2.0"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="configs/train/hmr.yaml")
    ap.add_argument("--out", required=True)
    ap.add_argument("--set", nargs="*", default=[], help="overrides key=value (dotted: optimizer.hidden=64)")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--export", default=None)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--pool-from", default=None, help="reuse the task pool of another run's checkpoint.pt")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    cli = compose_config([])
    body = instantiate(cli.body)
    fitter = build_fitter(cli, body)
    prior = instantiate(cli.prior, dtype=body.v_template.dtype)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ckpt = out / "checkpoint.pt"
    if args.resume and ckpt.exists():
        trainer = HMRMetaTrainer.resume(ckpt, fitter, prior)
        for item in args.set:
            key, val = item.split("=", 1)
            if key not in ("iterations", "time_limit_s", "val_every"):
                raise SystemExit(f"--set {key} cannot change on --resume (only iterations, time_limit_s, val_every)")
            setattr(trainer.cfg, key, yaml.safe_load(val))
    else:
        cfg = HMRMetaConfig.from_dict(config_with_overrides(args.config, args.set))
        pool = None
        if args.pool_from:
            pool = torch.load(args.pool_from, map_location="cpu", weights_only=False)["pool"]
        pbar = tqdm(total=-(-cfg.pool // 64), desc="task pool (stage 1)", mininterval=5, disable=pool is not None)
        trainer = HMRMetaTrainer(cfg, fitter, prior, pool=pool, pool_progress=lambda i: pbar.update(1))
        pbar.close()
    cfg = trainer.cfg

    bar = tqdm(total=cfg.iterations, initial=trainer.iteration, desc=out.name, mininterval=10)
    last = {"val_pa": float("nan")}

    def progress(rec: dict) -> None:
        if "val_pa" in rec:
            last.update(rec)
        bar.update(1)
        bar.set_postfix(loss=f"{rec['loss']:.3f}", j3d=f"{rec['j3d']:.2f}", val_pa=f"{last['val_pa']:.1f}",
                        val_logf=f"{last.get('val_logf', float('nan')):.2f}")

    trainer.run(checkpoint=ckpt, progress=progress)
    bar.close()

    best = trainer.best_optimizer()
    summary = {
        "config": json.loads(json.dumps(trainer.cfg.__dict__)),
        "energy": "configs/energy/default.yaml (CLI default), stage 1 by the CLI default (L-BFGS, 15 steps)",
        "iterations_done": trainer.iteration, "train_time_s": round(trainer.elapsed_s, 1),
        "skipped_meta_steps": trainer.skipped, "best_iteration": trainer.best["iteration"],
        "best_validation": {k: v for k, v in trainer.best.items() if k.startswith("val_")},
        "selection": f"mean PA-MPJPE (mm) after {cfg.val_steps} stage-2 steps, held-out clips {list(VAL_CLIPS)}",
        "num_parameters": best.num_parameters(),
        "machine": f"{platform.machine()} CPU (shared, loaded), torch {torch.__version__}, {args.threads} thread(s)",
        "date": time.strftime("%Y-%m-%d"),
        "licence": LICENCE,
        "log": summarize(trainer.log),
    }
    meta = {k: v for k, v in summary.items() if k != "log"}
    best.save(out / "best.pt", meta=meta)
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    if args.export:
        best.save(args.export, meta=meta)
        Path(args.export).with_suffix(".json").write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
