"""Meta-training: a short run lowers the meta-loss, PGSM lowers the secant residual, checkpoints resume exactly."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from hmr_fit.optim import LSR1
from hmr_fit.train.meta_loss import MetaLoss
from hmr_fit.train.meta_train import MetaTrainConfig, MetaTrainer, mean_secant_residual, validation_problems

ROOT = Path(__file__).resolve().parents[2]


def tiny_config(**overrides) -> MetaTrainConfig:
    base = dict(seed=0, iterations=30, batch=16, dims=[2, 4], horizon=10, truncation=5, lr=3e-3,
                families={"quadratic": {"weight": 1.0, "cond": [1.0, 100.0]}}, val_every=1000, val_batch=16,
                val_dims=[3], optimizer={"hidden": 16})
    base.update(overrides)
    return MetaTrainConfig.from_dict(base)


def test_short_meta_training_lowers_the_meta_loss():
    torch.manual_seed(0)
    trainer = MetaTrainer(tiny_config())
    before = trainer.validate()
    for _ in range(trainer.cfg.iterations):
        trainer.train_trajectory()
    after = trainer.validate()
    assert after < before - 0.5, (before, after)


def test_pgsm_penalty_lowers_the_secant_residual():
    residual = {}
    for lam in (0.0, 10.0):
        torch.manual_seed(0)
        trainer = MetaTrainer(tiny_config(lam=lam, iterations=40))
        for _ in range(trainer.cfg.iterations):
            trainer.train_trajectory()
        residual[lam] = mean_secant_residual(trainer.opt, trainer.val, steps=10)
    assert residual[10.0] < residual[0.0], residual


def test_checkpoint_resume_continues_identically(tmp_path):
    torch.manual_seed(0)
    straight = MetaTrainer(tiny_config(iterations=4, val_every=2))
    straight.run()
    torch.manual_seed(0)
    first = MetaTrainer(tiny_config(iterations=2, val_every=2))
    first.run(checkpoint=tmp_path / "ck.pt")
    resumed = MetaTrainer.resume(tmp_path / "ck.pt")
    resumed.cfg.iterations = 4
    resumed.run(checkpoint=tmp_path / "ck.pt")
    for a, b in zip(straight.opt.parameters(), resumed.opt.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert resumed.iteration == 4 and len(resumed.log) == len(straight.log)


def test_shipped_training_config_is_valid():
    raw = yaml.safe_load((ROOT / "configs/train/analytic.yaml").read_text())
    cfg = MetaTrainConfig.from_dict(raw)
    LSR1(**cfg.optimizer)
    assert len(validation_problems(MetaTrainConfig.from_dict({**raw, "val_batch": 2}))) > 0
    with pytest.raises(ValueError, match="unknown meta-training config keys"):
        MetaTrainConfig.from_dict({**raw, "learning_rate": 1.0})


def test_meta_loss_terms():
    loss = MetaLoss(lam=2.0, eps=1e-6)
    f = torch.tensor([[1.0, 4.0], [0.5, 2.0]])
    f0 = torch.tensor([2.0, 4.0])
    r = torch.tensor([[0.5, 0.1], [0.3, 0.2]])
    valid = torch.tensor([[False, True], [True, True]])
    total, traj, sec = loss(f, f0, r, valid)
    torch.testing.assert_close(sec, torch.tensor(0.2))
    torch.testing.assert_close(total, traj + 2.0 * sec)
    with pytest.raises(ValueError, match="Invalid lam"):
        MetaLoss(lam=-1.0)
