"""hmr_fit.video.smooth: the temporal terms, the block-Jacobi neighbour reference, per-track shape; and
configs/video/default.yaml keys = constructor / function arguments with the same defaults."""

from __future__ import annotations

import inspect

import pytest
import torch
from omegaconf import OmegaConf

from hmr_fit.assets import config_dir
from hmr_fit.fit.camera import Camera
from hmr_fit.fit.energy import FitEnergy
from hmr_fit.video.engine import run_batch
from hmr_fit.video.runner import VideoRunner
from hmr_fit.video.smooth import ShapeAverage, TemporalEnergy, neighbour_reference
from hmr_fit.video.track import Tracker


def test_neighbour_reference():
    x = torch.tensor([[0.0], [2.0], [4.0], [10.0]])
    ref = neighbour_reference(x, [0, 1, 2, 3], anchor=torch.tensor([-2.0]))
    torch.testing.assert_close(ref, torch.tensor([[0.0], [2.0], [6.0], [4.0]]))
    torch.testing.assert_close(neighbour_reference(x[:1], [0], None), x[:1])


def test_shape_average_weights_by_quality():
    avg = ShapeAverage()
    assert avg.get(0) is None
    avg.add(0, torch.zeros(2).numpy(), 0.01, True)
    avg.add(0, torch.ones(2).numpy(), 0.03, True)
    avg.add(0, torch.full((2,), 9.0).numpy(), 0.01, False)  # rejected: ignored
    assert avg.get(0) == pytest.approx([0.25, 0.25])


@pytest.mark.parametrize("b", [1, 3])
def test_temporal_energy_adds_terms_only_with_a_reference(open_model, b):
    base = FitEnergy(open_model, {"reprojection": 1.0, "shape": 0.001})
    energy = TemporalEnergy(base, temporal=0.5, track_shape=0.1)
    n = energy.layout.dim
    from hmr_fit.fit.energy import FitData

    kp = torch.rand(b, 23, 2) * 200
    data = FitData(kp, torch.ones(b, 23), Camera.for_image(320, 240, batch=b), torch.full((b,), 100.0),
                   torch.zeros(b))
    x = torch.randn(b, n) * 0.1
    x[:, energy.layout.camera.start + 2] = 1.0
    assert set(energy.terms(x, data)) == {"reprojection", "shape"}
    energy.set_reference(x + 1.0, mask=torch.arange(b) != 0)
    terms = energy.terms(x, data)
    assert terms["temporal"][0] == 0 and terms["track_shape"][0] == 0
    if b > 1:
        assert terms["temporal"][1] == pytest.approx(75.0) and terms["track_shape"][1] == pytest.approx(10.0)
    f, g = energy.objective(data)(x)
    assert f.shape == (b,) and g.shape == (b, n) and torch.isfinite(g).all()
    with pytest.raises(ValueError, match="reference must be"):
        energy.set_reference(torch.zeros(b, 3))


def _keys_match(section: dict, fn, skip: set[str]):
    params = inspect.signature(fn).parameters
    for key, value in section.items():
        assert key in params, f"{key} is not an argument of {fn.__qualname__}"
        assert params[key].default == value, f"{key}: yaml {value!r} != default {params[key].default!r}"
    missing = {k for k, p in params.items() if p.default is not inspect.Parameter.empty} - set(section) - skip
    assert not missing, f"arguments missing from the yaml: {missing}"


def test_video_yaml_keys_are_arguments_with_the_same_defaults():
    cfg = OmegaConf.to_container(OmegaConf.load(config_dir() / "video" / "default.yaml"))
    assert set(cfg) == {"runner", "tracker", "engine"}
    _keys_match(cfg["runner"], VideoRunner.__init__, {"renderer_factory", "tracker_factory"})
    _keys_match(cfg["tracker"], Tracker.__init__, set())
    _keys_match(cfg["engine"], run_batch, {"on_result"})
