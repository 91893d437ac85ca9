"""configs/keypoints/*.yaml: every key is a constructor argument with the same name and default."""

import inspect
from pathlib import Path

import pytest

from hmr_fit.keypoints.detect import PoseDetector
from hmr_fit.keypoints.io import KeypointLoader

omegaconf = pytest.importorskip("omegaconf")
CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "keypoints"


@pytest.mark.parametrize("name, cls", [("mediapipe.yaml", PoseDetector), ("json.yaml", KeypointLoader)])
def test_yaml_keys_match_constructor(name, cls):
    cfg = omegaconf.OmegaConf.to_container(omegaconf.OmegaConf.load(CONFIGS / name))
    target = cfg.pop("_target_")
    assert target == f"{cls.__module__}.{cls.__name__}"
    params = {k: p.default for k, p in inspect.signature(cls.__init__).parameters.items() if k != "self"}
    assert set(cfg) == set(params)
    for key, value in cfg.items():
        assert value == params[key], key


def test_json_yaml_instantiates():
    hydra_utils = pytest.importorskip("hydra.utils")
    loader = hydra_utils.instantiate(omegaconf.OmegaConf.load(CONFIGS / "json.yaml"))
    assert isinstance(loader, KeypointLoader) and loader.format == "auto"
