"""Choose the energy's prior weights on synthetic problems from the *training* motion clips, and report the
held-out (test-clip) accuracy of the choice. Prints a table per setting: PA-MPJPE, MPJPE, 2D error, front/back.

    python scripts/tune_energy.py [--batch 48] [--steps 60] [--optim lbfgs]
"""

from __future__ import annotations

import argparse
import itertools
import time

import torch

from hmr_fit.body import BodyModel
from hmr_fit.fit.energy import FitEnergy, prior_terms
from hmr_fit.fit.fitter import Fitter
from hmr_fit.fit.initialize import standing_pose
from hmr_fit.fit.priors import PosePrior
from hmr_fit.fit.synthetic import make_problems, mpjpe, procrustes_error
from hmr_fit.optim import build_optimizer

BASE = {"reprojection": 1.0, "shape": 5e-4, "depth": 1e-4}


def evaluate(body, prior, weights, problems, steps, optim, init_pose=None):
    init_pose = standing_pose() if init_pose is None else init_pose
    energy = FitEnergy(body, weights, pose_terms=prior_terms(prior))
    fitter = Fitter(body, energy, build_optimizer(optim), stage1_steps=15, steps=steps, init_pose=init_pose)
    t = time.perf_counter()
    r = fitter.fit(problems.keypoints, problems.confidence, problems.camera)
    seconds = time.perf_counter() - t
    with torch.no_grad():
        joints = body(r.betas, r.body_pose, r.global_orient, r.transl, return_vertices=False).joints
    facing_ok = torch.tensor([(f == "back") == bool(b) for f, b in zip(r.facing, problems.back_view)])
    return {"pa_mm": 1000 * procrustes_error(joints, problems.joints).median().item(),
            "mpjpe_mm": 1000 * mpjpe(joints, problems.joints).median().item(),
            "err2d_pct": 100 * r.quality.median().item(), "facing_ok": facing_ok.float().mean().item(),
            "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=48)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--optim", default="lbfgs")
    parser.add_argument("--gmm", type=float, nargs="+", default=[0.0, 1e-3, 3e-3, 1e-2])
    parser.add_argument("--limits", type=float, nargs="+", default=[0.0, 0.01])
    parser.add_argument("--pose-l2", type=float, nargs="+", default=[0.0, 2e-4])
    args = parser.parse_args()
    torch.set_num_threads(1)
    body, prior = BodyModel(), PosePrior()
    train = make_problems(body, args.batch, seed=0, split="train")
    test = make_problems(body, args.batch, seed=1, split="test")
    print("| gmm | limits+bend | pose_l2 | train PA-MPJPE mm | train MPJPE mm | train 2D err % | facing ok | s |")
    print("|---|---|---|---|---|---|---|---|")
    best = None
    for gmm, lim, l2 in itertools.product(args.gmm, args.limits, args.pose_l2):
        weights = dict(BASE, pose_prior=gmm, joint_limits=lim, bend=lim, pose_l2=l2)
        m = evaluate(body, prior, weights, train, args.steps, args.optim)
        print(f"| {gmm:g} | {lim:g} | {l2:g} | {m['pa_mm']:.1f} | {m['mpjpe_mm']:.1f} | {m['err2d_pct']:.2f} | "
              f"{m['facing_ok']:.2f} | {m['seconds']:.1f} |", flush=True)
        if best is None or m["pa_mm"] < best[0]:
            best = (m["pa_mm"], weights)
    m = evaluate(body, prior, best[1], test, args.steps, args.optim)
    print(f"\nchosen on train clips: {best[1]}")
    print(f"held-out clips ({args.batch} problems): PA-MPJPE {m['pa_mm']:.1f} mm, MPJPE {m['mpjpe_mm']:.1f} mm, 2D error "
          f"{m['err2d_pct']:.2f} % of size, facing correct {m['facing_ok']:.0%}")


if __name__ == "__main__":
    main()
