"""Shared test set-up: headless rendering, at most two torch threads, the shipped body model as fixtures."""

from __future__ import annotations

import os

os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
os.environ.setdefault("GLOG_minloglevel", "2")

import pytest  # noqa: E402
import torch  # noqa: E402


torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.fixture(scope="session")
def open_model():
    from hmr_fit.body import BodyModel

    return BodyModel()


@pytest.fixture(scope="session")
def open_model_f64():
    from hmr_fit.body import BodyModel

    return BodyModel(dtype=torch.float64)


# Property tests draw the same examples on every run: CI must not fail on a draw that no one can reproduce.
try:
    from hypothesis import settings

    settings.register_profile("hmr_fit", derandomize=True, deadline=None)
    settings.load_profile("hmr_fit")
except ImportError:  # hypothesis is a test extra
    pass
