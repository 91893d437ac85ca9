"""Fit the mixture pose prior on the retargeted open motion clips and write data/pose_prior.npz.

    python scripts/build_pose_prior.py [--seed 0]

Whole clips are held out: VAL_CLIPS choose the number of components and the covariance ridge, TEST_CLIPS are
only scored (their held-out log-likelihood is recorded in the file's metadata). Frames are weighted by their
duration, so every second of motion counts the same whatever the clip's frame rate, and every frame is used twice,
as recorded and mirrored left <-> right. The fitted mixture is then made exactly mirror-symmetric by adding every
component's mirror image at half the weight. Seeded and deterministic.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):  # 2 shared cores: one BLAS thread
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from hmr_fit.fit.motion import load_motions, mirror_pose  # noqa: E402
from hmr_fit.fit.gmm import fit_gmm, log_gaussian  # noqa: E402
from hmr_fit.fit.priors import POSE_PRIOR_FILE, PosePrior, feature_transform, limit_arrays  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
VAL_CLIPS = ("kick", "getup_facedown")
TEST_CLIPS = ("run", "punch", "dance_b")
GRID_K = (1, 2, 4, 8)
GRID_REG = (1e-2, 3e-2, 1e-1)
RESTARTS = 2
EM_ITERS = 100


def frames(clips, names):
    """Body poses (N, 23, 3) and duration weights (N,) of the named clips, each followed by its mirror."""
    poses = [c.body_pose for c in clips if c.name in names]
    weights = [np.full(len(c.body_pose), 1.0 / c.fps) for c in clips if c.name in names]
    x = np.concatenate(poses)
    w = np.concatenate(weights)
    full = np.concatenate([np.zeros((len(x), 1, 3)), x], 1)
    return np.concatenate([x, mirror_pose(full)[:, 1:]]), np.concatenate([w, w])


def symmetrize(mix, means, covs, mirror_g):
    """Add each component's mirror image (features z -> M z) at half the weight."""
    return (np.concatenate([mix, mix]) / 2, np.concatenate([means, means @ mirror_g.T]),
            np.concatenate([covs, mirror_g @ covs @ mirror_g.T]))


def mean_loglik(z, w, mix, means, covs):
    log_p = log_gaussian(z, means, covs) + np.log(mix)[None]
    top = log_p.max(1, keepdims=True)
    return float((w * (top[:, 0] + np.log(np.exp(log_p - top).sum(1)))).sum() / w.sum())


def fit_best(z, w, k, reg, seed, mirror_g):
    best = None
    for restart in range(RESTARTS):
        mix, means, covs = fit_gmm(z, w, k, reg, np.random.default_rng([seed, k, restart]), iters=EM_ITERS)
        model = symmetrize(mix, means, covs, mirror_g)
        ll = mean_loglik(z, w, *model)
        if best is None or ll > best[0]:
            best = (ll, model)
    return best[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "data" / POSE_PRIOR_FILE)
    parser.add_argument("--figure", type=Path, default=None, help="also render prior samples to this PNG")
    args = parser.parse_args()
    torch.set_num_threads(1)
    start = time.perf_counter()

    clips = load_motions(ROOT / "data" / "motions_smpl.npz")
    train_names = tuple(c.name for c in clips if c.name not in VAL_CLIPS + TEST_CLIPS)
    transform, gauss_std, d = feature_transform()
    # The mirror acts on the features as a signed permutation that keeps the mixture block to itself.
    mirror_x = np.zeros((69, 69))
    probe = np.eye(69).reshape(69, 1, 23, 3)
    for i in range(69):
        full = np.concatenate([np.zeros((1, 1, 3)), probe[i]], 1)
        mirror_x[:, i] = mirror_pose(full)[0, 1:].reshape(-1)
    mirror_z = transform @ mirror_x @ np.linalg.inv(transform)
    assert np.abs(mirror_z[:d, d:]).max() < 1e-12 and np.abs(mirror_z[d:, :d]).max() < 1e-12
    mirror_g = mirror_z[:d, :d]

    def features(names):
        x, w = frames(clips, names)
        return (x.reshape(len(x), -1) @ transform.T)[:, :d], w

    z_train, w_train = features(train_names)
    z_val, w_val = features(VAL_CLIPS)
    grid = {}
    for k in GRID_K:
        for reg in GRID_REG:
            model = fit_best(z_train, w_train, k, reg, args.seed, mirror_g)
            grid[f"K={k},reg={reg:g}"] = mean_loglik(z_val, w_val, *model)
            print(f"K={k:2d} reg={reg:g}: validation mean log-lik (mixture features) {grid[f'K={k},reg={reg:g}']:.2f}",
                  flush=True)
    best_key = max(grid, key=grid.get)
    k, reg = int(best_key.split(",")[0][2:]), float(best_key.split("=")[2])
    z_fit, w_fit = features(train_names + VAL_CLIPS)
    mix, means, covs = fit_best(z_fit, w_fit, k, reg, args.seed, mirror_g)
    fit_seconds = time.perf_counter() - start

    metadata = {
        "name": "open pose prior (mixture over SMPL body pose)",
        "data": "data/motions_smpl.npz (DeepMimic clips from pybullet 3.2.7, zlib; data/motions/NOTICE.md), "
                "each frame also mirrored, duration-weighted",
        "train_clips": list(train_names), "validation_clips": list(VAL_CLIPS), "test_clips": list(TEST_CLIPS),
        "grid_validation_loglik": grid, "chosen": {"components_before_mirroring": k, "reg": reg},
        "components": int(len(mix)), "mixture_features": d, "seed": args.seed, "fit_seconds": round(fit_seconds, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, transform=transform, gauss_std=gauss_std, weights=mix, means=means, covs=covs,
                        metadata=np.array(json.dumps(metadata)))

    # Score with the shipped code path (float64): held-out clips against random and impossible poses.
    prior = PosePrior(args.out, dtype=torch.float64)
    gen = torch.Generator().manual_seed(args.seed)
    test = torch.as_tensor(np.concatenate([c.body_pose for c in clips if c.name in TEST_CLIPS]))
    train = torch.as_tensor(np.concatenate([c.body_pose for c in clips if c.name in train_names]))
    lo, hi = (torch.as_tensor(a) for a in limit_arrays())
    uniform = lo + (hi - lo) * torch.rand(1000, 23, 3, generator=gen, dtype=torch.float64)
    normal = 0.5 * torch.randn(1000, 23, 3, generator=gen, dtype=torch.float64)
    samples = prior.sample(1000, gen)
    scores = {"train_frames": train, "test_frames": test, "zero_pose": torch.zeros(1, 23, 3),
              "prior_samples": samples, "uniform_in_joint_limits": uniform, "normal_0.5rad": normal}
    summary = {}
    for name, poses in scores.items():
        nll = prior.nll(poses.double())
        summary[name] = {"median_nll": round(float(nll.median()), 2), "mean_nll": round(float(nll.mean()), 2)}
        print(f"{name:>24s}: median NLL {summary[name]['median_nll']:9.2f}  mean {summary[name]['mean_nll']:9.2f}")
    metadata["nll_nats_69d"] = summary
    metadata["test_mean_loglik_per_frame"] = -summary["test_frames"]["mean_nll"]
    np.savez_compressed(args.out, transform=transform, gauss_std=gauss_std, weights=mix, means=means, covs=covs,
                        metadata=np.array(json.dumps(metadata)))
    print(f"wrote {args.out} ({len(mix)} components, fit in {fit_seconds:.1f} s)")
    if args.figure is not None:
        render_samples(prior, args.figure, args.seed)


def render_samples(prior: PosePrior, path: Path, seed: int) -> None:
    """Contact sheet: component means, raw draws, and draws truncated to the joint limits (max_penalty=0)."""
    import sys

    os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
    sys.path.insert(0, str(Path(__file__).parent))
    import pyrender
    from PIL import Image, ImageDraw

    from build_motion_data import _render  # the same renderer as the motion contact sheet
    from hmr_fit.body import BodyModel

    size = 200
    model = BodyModel()
    gen = torch.Generator().manual_seed(seed)
    rows = [("mean", prior.means_as_poses()[:6]), ("sample", prior.sample(6, gen)),
            ("sample", prior.sample(6, gen)), ("in limits", prior.sample(6, gen, max_penalty=0.0))]
    left = model.v_template[:, 0].numpy() > 0
    renderer = pyrender.OffscreenRenderer(size, size)
    sheet = Image.new("RGB", (6 * size, 2 * len(rows) * size), "white")
    for r, (label, poses) in enumerate(rows):
        out = model(body_pose=poses.float())
        for c in range(len(poses)):
            for v, yaw in enumerate((0.0, np.pi / 2)):
                tile = _render(renderer, out.vertices[c].numpy(), model.faces, left, yaw, size)
                nll = float(prior.nll(poses[c:c + 1]))
                ImageDraw.Draw(tile).text((4, 4), f"{label} {c} nll {nll:.0f}" + (" side" if v else ""),
                                          fill=(0, 0, 0))
                sheet.paste(tile, (c * size, (2 * r + v) * size))
    renderer.delete()
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
