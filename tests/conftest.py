"""Shared test set-up: headless rendering, one torch thread per test, the shipped body model as fixtures."""

from __future__ import annotations

import os

os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
os.environ.setdefault("GLOG_minloglevel", "2")

import pytest  # noqa: E402
import torch  # noqa: E402




@pytest.fixture(autouse=True)
def _one_thread():
    """One torch thread per test: the tensors are small, and on a shared 2-core machine a second thread made the
    optimizer tests many times slower (measured 18x on a loaded machine). Restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


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
