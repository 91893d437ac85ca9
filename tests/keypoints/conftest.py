"""Fixtures for the keypoint tests: the shipped model file and bundled, licence-clean photos."""

from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
TASK = REPO / "data" / "pose_landmarker_full.task"


@pytest.fixture(scope="session")
def task_path() -> Path:
    return TASK


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    """skimage.data.astronaut(): 512x512 RGB, public domain; a front-facing, waist-up person."""
    skimage_data = pytest.importorskip("skimage.data")
    return np.ascontiguousarray(skimage_data.astronaut())


@pytest.fixture(scope="session")
def camera() -> np.ndarray:
    """skimage.data.camera(): 512x512 grayscale (CC0), a standing cameraman, as RGB."""
    skimage_data = pytest.importorskip("skimage.data")
    return np.ascontiguousarray(np.repeat(skimage_data.camera()[..., None], 3, axis=2))
