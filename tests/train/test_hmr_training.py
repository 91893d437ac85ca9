"""Meta-training on the body-fitting energy (issue 6): the task generator is seeded and split by clip, a short run
lowers the meta-loss, and the shipped HMR weights beat Adam at equal steps on a held-out batch."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml
from hydra.utils import instantiate

from hmr_fit.cli.main import build_fitter, compose_config
from hmr_fit.fit.synthetic import make_problems
from hmr_fit.optim import LSR1, Adam, minimize
from hmr_fit.train.hmr_meta import HMRMetaConfig, HMRMetaTrainer, build_pool, run_hmr_segment
from hmr_fit.train.hmr_tasks import HMRTasks, TaskConfig, errors_mm, split_clips
from hmr_fit.train.unroll import start

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def fitter():
    cfg = compose_config([])
    body = instantiate(cfg.body)
    return build_fitter(cfg, body)


def test_splits_are_disjoint_and_sampling_is_seeded(fitter):
    train, val, test = (set(split_clips(s)) for s in ("train", "val", "test"))
    assert not (train & val) and not (train & test) and not (val & test)
    tasks = HMRTasks(fitter, "train", TaskConfig())
    a, b = tasks.sample_truth(4, 7), tasks.sample_truth(4, 7)
    torch.testing.assert_close(a.keypoints, b.keypoints)
    assert a.keypoints.shape == (4, 23, 2) and a.joints.shape == (4, 24, 3)
    p = tasks.stage1(a)
    assert p.x0.shape == (8, 6) and p.groups.tolist() == [0, 0, 0, 3, 3, 3]


def meta_loss_on(trainer, problem, steps=10):
    """Meta-loss of a fixed problem under the current weights (no update)."""
    state = start(trainer.opt, problem)
    _, loss, *_ = run_hmr_segment(trainer.opt, problem, state, state.f, steps, trainer.loss, trainer.cfg.w3d)
    return loss.item()


def test_short_hmr_meta_training_lowers_the_meta_loss(fitter):
    torch.manual_seed(0)
    cfg = HMRMetaConfig.from_dict(dict(seed=0, iterations=12, batch=8, pool=16, horizon=10, truncation=10,
                                       lr=0.02, val_batch=4, tasks={"stage1_fraction": 0.0},
                                       optimizer={"hidden": 16, "n_groups": 4}))
    tasks = HMRTasks(fitter, "train", TaskConfig.from_dict(cfg.tasks))
    pool = build_pool(tasks, cfg.pool, cfg.seed, chunk=16)
    trainer = HMRMetaTrainer(cfg, fitter, pool=pool)
    fixed = trainer.train_tasks.stage2(trainer.pool["truth"], trainer.pool["x0"])
    before = meta_loss_on(trainer, fixed)
    for _ in range(cfg.iterations):
        trainer.train_trajectory()
    after = meta_loss_on(trainer, fixed)
    assert after < before - 0.02, (before, after)


def test_shipped_hmr_training_config_is_valid():
    raw = yaml.safe_load((ROOT / "configs/train/hmr.yaml").read_text())
    cfg = HMRMetaConfig.from_dict(raw)
    LSR1(**cfg.optimizer)
    TaskConfig.from_dict(cfg.tasks)
    with pytest.raises(ValueError, match="unknown meta-training config keys"):
        HMRMetaConfig.from_dict({**raw, "learning_rate": 1.0})


@pytest.mark.skipif(not (ROOT / "data/lsr1_hmr.pt").is_file(), reason="no shipped HMR weights")
def test_shipped_hmr_weights_beat_adam_at_equal_steps(fitter):
    tasks = HMRTasks(fitter, "test")
    truth = make_problems(fitter.body, 16, seed=4242, split="test")
    p = tasks.stage2(truth)
    opt = LSR1(weights="lsr1_hmr.pt", n_groups=4)
    ours = minimize(p.objective, p.x0, opt, max_steps=20, tol=0.0, groups=p.groups)
    adam = minimize(p.objective, p.x0, Adam(lr=0.03), max_steps=20, tol=0.0)
    assert not bool(ours.failed.any())
    pa_ours = errors_mm(tasks, ours.x, truth)[1].mean()
    pa_adam = errors_mm(tasks, adam.x, truth)[1].mean()
    assert ours.f.median() < adam.f.median() and pa_ours < pa_adam, (ours.f.median(), adam.f.median(), pa_ours, pa_adam)
