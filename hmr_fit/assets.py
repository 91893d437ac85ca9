"""Paths of the files that ship inside the package (``data/`` and ``configs/`` in the repository)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from hmr_fit.errors import ModelFileError


def data_path(name: str) -> Path:
    """Path of a shipped data file, e.g. ``data_path("open_body_model.npz")``.

    Raises:
        ModelFileError: the file is not part of this installation.
    """
    path = Path(str(resources.files("hmr_fit.data").joinpath(name)))
    if not path.is_file():
        raise ModelFileError(f"shipped data file '{name}' is missing from {path.parent}; reinstall hmr-fit")
    return path


def config_dir() -> Path:
    """Directory of the packaged hydra configs."""
    return Path(str(resources.files("hmr_fit.configs")))
