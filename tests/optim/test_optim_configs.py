"""Every configs/optim/*.yaml instantiates with hydra, and its keys are the constructor's. The config named after
an optimizer (lsr1.yaml) carries the constructor's defaults; a preset (lsr1_hmr.yaml) may differ where it says."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
import yaml

import hmr_fit.optim as optim

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs" / "optim"
YAMLS = sorted(CONFIG_DIR.glob("*.yaml"))


def target_class(path):
    name = yaml.safe_load(path.read_text())["_target_"].rsplit(".", 1)[-1]
    return next(c for c in optim.OPTIMIZERS.values() if c.__name__ == name)


def test_one_config_per_registered_optimizer():
    assert {p.stem for p in YAMLS} >= set(optim.OPTIMIZERS)


@pytest.mark.parametrize("path", YAMLS, ids=lambda p: p.stem)
def test_yaml_instantiates_with_hydra(path):
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    cfg = OmegaConf.load(path)
    opt = instantiate(cfg)
    assert isinstance(opt, target_class(path))
    # the same mapping without hydra
    plain = yaml.safe_load(path.read_text())
    assert isinstance(optim.optimizer_from_config(plain), target_class(path))


@pytest.mark.parametrize("path", YAMLS, ids=lambda p: p.stem)
def test_yaml_keys_are_constructor_arguments_with_their_defaults(path):
    raw = yaml.safe_load(path.read_text())
    target = raw.pop("_target_")
    cls = target_class(path)
    assert target == f"hmr_fit.optim.{cls.__name__}"
    params = inspect.signature(cls.__init__).parameters
    for key, value in raw.items():
        assert key in params, f"{path.name}: '{key}' is not an argument of {cls.__name__}"
        if key == "weights" or path.stem not in optim.OPTIMIZERS:  # shipped file names; presets differ on purpose
            continue
        default = params[key].default
        assert (list(default) if isinstance(default, tuple) else default) == value, (key, value, default)


def test_build_and_load_by_name():
    assert isinstance(optim.build_optimizer("LBFGS", history_size=5), optim.LBFGS)
    assert isinstance(optim.load_optimizer("adam"), optim.Adam)
    with pytest.raises(ValueError, match="unknown optimizer"):
        optim.build_optimizer("newton")
    with pytest.raises(ValueError, match="not an hmr_fit.optim optimizer"):
        optim.optimizer_from_config({"_target_": "torch.optim.SGD"})


@pytest.mark.parametrize("name", ["lsr1_analytic.pt", "lsr1_analytic_nopgsm.pt"])
def test_shipped_weights_load_by_name(name):
    opt = optim.load_optimizer(name)
    assert isinstance(opt, optim.LSR1)
    assert opt.meta.get("licence") == "trained by hmr-fit, Apache-2.0"
    again = optim.LSR1(weights=name)  # constructor defaults = the shipped architecture
    assert again.hparams() == opt.hparams()
