"""Body-fitting tasks for meta-training and benchmarking L-SR1 on the real fitting energy (issue 6).

A task is a batch of synthetic people with ground truth (open retargeted DeepMimic clips, plus poses drawn from the
fitted pose prior and joint-limit-respecting perturbations of clip poses), random perspective cameras (image size,
focal length, distance: people of different sizes in the image), headings incl. back views, pixel noise, dropped
keypoints, a few outliers and (optionally) people cut off by the frame below the hips or knees. The optimizer's problem is the CLI's stage 2 (all 85 variables, same energy, weights
and init pose as ``configs/``) started from the CLI's stage-1 result (L-BFGS, orientation + camera), or, for a
fraction of the batches, the CLI's stage 1 itself (6 variables, two starts per person).

Splits by whole clip: ``train`` = synthetic.SPLITS["train"] minus ``VAL_CLIPS``; ``val`` = ``VAL_CLIPS`` (model
selection while meta-training); ``test`` = synthetic.SPLITS["test"] (benchmark only, never seen in training).
Prior samples and perturbations are used for ``train`` only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from scipy.spatial.transform import Rotation
from torch import Tensor

from hmr_fit.body.joints import KEYPOINT_NAMES
from hmr_fit.fit.camera import FRONT_ORIENT, Camera
from hmr_fit.fit.energy import FitData
from hmr_fit.fit.fitter import STAGE1_KEYPOINTS, Fitter
from hmr_fit.fit.synthetic import SPLITS, Problems, mpjpe, procrustes_error
from hmr_fit.train.tasks import Problem

VAL_CLIPS = ("dance_a", "kick")


def split_clips(split: str) -> tuple[str, ...]:
    if split == "train":
        return tuple(c for c in SPLITS["train"] if c not in VAL_CLIPS)
    if split == "val":
        return VAL_CLIPS
    if split == "test":
        return SPLITS["test"]
    raise ValueError(f"unknown split {split!r} (train, val, test)")


def clip_poses(split: str, upright_only: bool = True) -> np.ndarray:
    """(N, 24, 3) poses (root first) of the split's clips (frames with the trunk within 45° of vertical)."""
    from hmr_fit.fit.motion import load_motions

    names = split_clips(split)
    poses = np.concatenate([c.poses for c in load_motions() if c.name in names])
    if upright_only:
        up = Rotation.from_rotvec(poses[:, 0]).apply([0.0, 1.0, 0.0])
        poses = poses[up[:, 1] > math.cos(math.radians(45))]
    return poses


@dataclass
class TaskConfig:
    """The task distribution (all ranges uniform unless said otherwise).

    Attributes:
        prior_fraction: share of bodies whose pose is drawn from the pose prior (plausible set: max_penalty 0).
        perturb_fraction, perturb_std: share of clip poses perturbed by N(0, std²) rad per coordinate, kept only
            where the perturbed pose respects the joint limits and bend directions (else the clip pose is kept).
        back_fraction: share facing away from the camera; yaw jitter ±1 rad around front/back.
        beta_std: betas ~ N(0, beta_std²).
        image_size: square image side range, pixels; focal: focal length as a multiple of the side.
        depth: distance range, metres; offset: lateral position as a fraction of the depth.
        noise_px: range of the per-problem pixel-noise std, relative to a 1000-px image.
        drop: range of the per-problem probability of a dropped keypoint (confidence 0).
        outlier_prob, outlier_px: per-keypoint probability of a gross outlier and its displacement std (relative to
            a 1000-px image; confidence unchanged).
        stage1_fraction: share of training batches that are the 6-variable stage-1 problem instead of stage 2.
        truncate_fraction: share of people cut off by the bottom frame edge (all splits): every keypoint below the
            hips (knees, ankles, feet: 10 keypoints) or below the knees (ankles, feet: 8) gets confidence 0, as for
            a waist-up photo. 0 (default): no truncation, and the random stream is exactly the untruncated one.
        truncate_knees: share of the truncated people cut below the knees (the rest: below the hips).
    """

    prior_fraction: float = 0.3
    perturb_fraction: float = 0.5
    perturb_std: float = 0.15
    back_fraction: float = 0.3
    beta_std: float = 0.8
    image_size: tuple[int, int] = (512, 1600)
    focal: tuple[float, float] = (0.8, 1.6)
    depth: tuple[float, float] = (2.5, 9.0)
    offset: tuple[float, float] = (-0.15, 0.15)
    noise_px: tuple[float, float] = (0.5, 4.0)
    drop: tuple[float, float] = (0.0, 0.2)
    outlier_prob: float = 0.02
    outlier_px: float = 60.0
    stage1_fraction: float = 0.0
    upright_only: bool = True
    truncate_fraction: float = 0.0
    truncate_knees: float = 0.5

    @classmethod
    def from_dict(cls, d: dict | None) -> "TaskConfig":
        d = dict(d or {})
        unknown = sorted(set(d) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValueError(f"unknown task config keys: {unknown}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


@dataclass
class HMRProblem(Problem):
    """A ``Problem`` with the fitting data and ground truth.

    Attributes (in addition to ``Problem``'s):
        data: FitData of the B people (stage 1: repeated for the two starts, 2B rows).
        truth: the ground truth (``synthetic.Problems``, B people).
        stage: 1 or 2.
        joints_fn: x (B, n) -> (B, J, 3) joints of the full parameter vector (stage 2 only), for 3D supervision.
    """

    data: FitData | None = None
    truth: Problems | None = None
    stage: int = 2
    joints_fn: object = field(default=None, repr=False)


class HMRTasks:
    """Samples body-fitting problems for one split.

    Args:
        fitter: the CLI's fitter (``hmr_fit.cli.main.build_fitter``): its energy, layout, init pose and stage-1
            optimizer define the problems.
        split: "train", "val" or "test".
        config: TaskConfig (val/test use the same cameras and noise, without prior poses or perturbations).
    """

    def __init__(self, fitter: Fitter, split: str = "train", config: TaskConfig | None = None,
                 prior=None):
        self.fitter, self.split = fitter, split
        self.cfg = config or TaskConfig()
        self.body, self.energy, self.layout = fitter.body, fitter.energy, fitter.layout
        self.poses = clip_poses(split, self.cfg.upright_only)
        self.prior = prior
        self.name = f"hmr_{split}"

    # ---- ground truth --------------------------------------------------------------------------------------
    def sample_truth(self, batch: int, seed: int) -> Problems:
        """``batch`` people with ground truth and observations (seeded: same seed, same problems)."""
        cfg, rng = self.cfg, np.random.default_rng(seed)
        dtype = self.body.v_template.dtype

        def t(x):
            return torch.as_tensor(np.asarray(x), dtype=dtype)

        pick = self.poses[rng.integers(0, len(self.poses), batch)].copy()
        body_pose = t(pick[:, 1:])
        if self.split == "train" and self.prior is not None:
            gen = torch.Generator().manual_seed(int(rng.integers(2**31)))
            # perturbations of clip poses, kept where plausible
            pert = rng.random(batch) < cfg.perturb_fraction
            if pert.any():
                cand = body_pose + cfg.perturb_std * torch.randn(body_pose.shape, generator=gen, dtype=dtype)
                with torch.no_grad():
                    ok = (self.prior.limits(cand) + self.prior.bend(cand)) <= (
                        self.prior.limits(body_pose) + self.prior.bend(body_pose) + 1e-6)
                use = torch.as_tensor(pert) & ok
                body_pose = torch.where(use[:, None, None], cand, body_pose)
            from_prior = torch.as_tensor(rng.random(batch) < cfg.prior_fraction)
            if bool(from_prior.any()):
                with torch.no_grad():
                    drawn = self.prior.sample(int(from_prior.sum()), gen, max_penalty=0.0).to(dtype)
                body_pose = body_pose.clone()
                body_pose[from_prior] = drawn
        # heading: keep the clip's root tilt, random yaw, facing the camera or away
        root = Rotation.from_rotvec(pick[:, 0])
        yaw_now = root.as_euler("YXZ")[:, 0]
        back = rng.random(batch) < cfg.back_fraction
        yaw = rng.uniform(-1.0, 1.0, batch) + np.where(back, math.pi, 0.0)
        orient = (Rotation.from_rotvec(FRONT_ORIENT) * Rotation.from_euler("Y", (yaw - yaw_now)[:, None])
                  * root).as_rotvec()
        # camera: image size, focal, distance -> people of different sizes in the image
        side = rng.uniform(*cfg.image_size, batch)
        focal = rng.uniform(*cfg.focal, batch) * side
        depth = rng.uniform(*cfg.depth, batch)
        transl = np.stack([rng.uniform(*cfg.offset, batch) * depth, rng.uniform(*cfg.offset, batch) * depth * 0.7,
                           depth], -1)
        camera = Camera(t(np.stack([focal, focal], -1)), t(np.stack([side / 2, side / 2], -1)),
                        t(np.stack([side, side], -1)))
        betas = t(cfg.beta_std * rng.standard_normal((batch, self.body.num_betas)))
        global_orient, transl_t = t(orient), t(transl)
        with torch.no_grad():
            out = self.body(betas, body_pose, global_orient, transl_t, return_vertices=False)
        kp = camera.project(out.keypoints)
        k = kp.shape[1]
        rel = t(side / 1000.0)[:, None, None]
        noise = t(rng.uniform(*cfg.noise_px, batch))[:, None, None] * rel
        kp = kp + noise * t(rng.standard_normal((batch, k, 2)))
        outl = t(rng.random((batch, k)) < cfg.outlier_prob)[..., None]
        kp = kp + outl * cfg.outlier_px * rel * t(rng.standard_normal((batch, k, 2)))
        drop = rng.uniform(*cfg.drop, batch)[:, None]
        conf = t(rng.uniform(0.6, 1.0, (batch, k)) * (rng.random((batch, k)) >= drop))
        if cfg.truncate_fraction > 0:  # drawn last: the draws above are those of an untruncated config
            conf = conf * t(truncation_mask(rng, batch, cfg.truncate_fraction, cfg.truncate_knees))
        return Problems(kp, conf, camera, betas, body_pose, global_orient, transl_t, out.joints, torch.as_tensor(back))

    # ---- optimizer problems -------------------------------------------------------------------------------
    def stage2(self, truth: Problems, x0: Tensor | None = None) -> HMRProblem:
        """The CLI's stage-2 problem of these people, from the CLI's stage-1 result (or ``x0``)."""
        data = self.fitter.prepare(truth.keypoints, truth.confidence, truth.camera)
        if x0 is None:
            with torch.no_grad():
                x0, _, _ = self.fitter._stage1(data)
        return HMRProblem(name=f"{self.name}_s2", x0=x0.detach(), objective=differentiable_objective(self.energy, data),
                          groups=self.layout.groups(x0.device), data=data, truth=truth, stage=2,
                          joints_fn=self.joints)

    def stage1(self, truth: Problems) -> HMRProblem:
        """The CLI's stage-1 problem (orientation + camera, torso/face keypoints, two starts per person: 2B rows)."""
        f = self.fitter
        data = f.prepare(truth.keypoints, truth.confidence, truth.camera)
        starts = f.initial_state(data).reshape(2 * data.keypoints.shape[0], -1)
        both = data.repeat(2)
        lay = self.layout
        free = torch.cat([torch.arange(lay.orient.start, lay.orient.stop), torch.arange(lay.camera.start, lay.camera.stop)])
        kw = torch.zeros(len(KEYPOINT_NAMES), dtype=starts.dtype)
        kw[[KEYPOINT_NAMES.index(n) for n in STAGE1_KEYPOINTS]] = 1.0
        obj = differentiable_objective(self.energy, both, base=starts, free=free, keypoint_weights=kw)
        return HMRProblem(name=f"{self.name}_s1", x0=starts[:, free].clone(), objective=obj,
                          groups=lay.groups()[free], data=both, truth=truth, stage=1)

    def sample(self, batch: int, n=None, generator: torch.Generator | None = None, **_) -> HMRProblem:
        """A training batch (TaskFamily protocol; ``n`` is ignored, the seed comes from ``generator``)."""
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
        truth = self.sample_truth(batch, seed)
        u = float(torch.rand((), generator=generator))
        return self.stage1(truth) if u < self.cfg.stage1_fraction else self.stage2(truth)

    def joints(self, x: Tensor) -> Tensor:
        """(B, n) -> (B, J, 3) model joints, metres (differentiable)."""
        p = self.layout.unpack(x)
        return self.body(p["betas"], p["body_pose"], p["global_orient"], p["transl"], return_vertices=False).joints


BELOW_HIPS = tuple(i for i, n in enumerate(KEYPOINT_NAMES) if n.split("_", 1)[-1] in
                   ("knee", "ankle", "big_toe", "small_toe", "heel"))
BELOW_KNEES = tuple(i for i in BELOW_HIPS if not KEYPOINT_NAMES[i].endswith("knee"))


def truncation_mask(rng: np.random.Generator, batch: int, fraction: float, knees: float) -> np.ndarray:
    """(batch, K) 0/1 keypoint mask of people cut off by the frame: a ``fraction`` of them lose every keypoint below
    the hips, or (a ``knees`` share of those) below the knees; the others keep all."""
    cut = rng.random(batch) < fraction
    at_knees = rng.random(batch) < knees
    mask = np.ones((batch, len(KEYPOINT_NAMES)))
    mask[np.ix_(cut & ~at_knees, BELOW_HIPS)] = 0.0
    mask[np.ix_(cut & at_knees, BELOW_KNEES)] = 0.0
    return mask


def differentiable_objective(energy, data: FitData, base: Tensor | None = None, free: Tensor | None = None,
                             keypoint_weights: Tensor | None = None):
    """Like ``FitEnergy.objective``, but f keeps its graph in z when z is part of one (meta-training
    back-propagates the meta-loss through the iterates); g is the gradient in z, without a graph."""

    def objective(z: Tensor) -> tuple[Tensor, Tensor]:
        with torch.enable_grad():
            if not z.requires_grad:
                z = z.detach().requires_grad_(True)
            x = z if free is None else base.index_copy(1, free, z)
            f = energy(x, data, keypoint_weights)
            (g,) = torch.autograd.grad(f.sum(), z, retain_graph=True)
        return f, g.detach()

    return objective


def errors_mm(tasks: HMRTasks, x: Tensor, truth: Problems) -> tuple[Tensor, Tensor]:
    """(B,) MPJPE (root-aligned) and PA-MPJPE of the parameter vectors ``x`` against the ground truth, mm."""
    with torch.no_grad():
        j = tasks.joints(x)
        return 1000 * mpjpe(j, truth.joints), 1000 * procrustes_error(j, truth.joints)


__all__ = ["TaskConfig", "truncation_mask", "BELOW_HIPS", "BELOW_KNEES", "HMRTasks", "HMRProblem", "VAL_CLIPS", "split_clips", "clip_poses",
           "differentiable_objective", "errors_mm"]
