"""Reading SMPL-format model files (.npz, and official .pkl files with or without chumpy objects).

A model file is a flat mapping of arrays, SMPL's key names:
    v_template (V, 3), shapedirs (V, 3, S), J_regressor (J, V) dense or scipy-sparse, weights (V, J),
    kintree_table (2, J) with kintree_table[0] the parents, f (F, 3), optional posedirs (V, 3, 9 (J-1)).
Files written by hmr-fit add: joint_names (J,), keypoint_names (K,), keypoint_vertex_ids (K, N),
keypoint_vertex_weights (K, N), keypoint_joint_ids (K,) and a JSON ``metadata`` string.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from hmr_fit.errors import ModelFileError

REQUIRED_KEYS = ("v_template", "shapedirs", "J_regressor", "weights", "kintree_table", "f")


class _ChumpyStandIn:
    """Takes the place of ``chumpy.ch.Ch`` when unpickling official SMPL files (chumpy does not run on
    Python 3.11 / numpy 2). Its pickled state keeps the array under ``x``."""

    def __setstate__(self, state: Any) -> None:
        self.__dict__.update(state if isinstance(state, dict) else {"x": state})

    def __array__(self, dtype=None, copy=None):
        return np.asarray(self.__dict__.get("x"), dtype=dtype)


class _NoChumpyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if module.startswith("chumpy"):
            return _ChumpyStandIn
        return super().find_class(module, name)


def _to_array(value: Any) -> Any:
    if isinstance(value, _ChumpyStandIn):
        return np.asarray(value.__dict__.get("x"))
    if hasattr(value, "toarray") and hasattr(value, "tocsr"):  # scipy.sparse matrix
        return np.asarray(value.toarray())
    return value


def _read_pkl(path: Path) -> dict[str, Any]:
    with open(path, "rb") as fh:
        # latin1: SMPL's files were pickled by Python 2 with numpy arrays inside.
        raw = _NoChumpyUnpickler(fh, encoding="latin1").load()
    if not isinstance(raw, dict):
        raise ModelFileError(f"'{path}' does not hold a dict of model arrays (found {type(raw).__name__})")
    return {k: _to_array(v) for k, v in raw.items()}


def _read_npz(path: Path) -> dict[str, Any]:
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def read_model_file(path: str | Path) -> dict[str, np.ndarray]:
    """Read and validate an SMPL-format model file.

    Args:
        path: a ``.npz`` or ``.pkl`` model file.
    Returns:
        dict of numpy arrays with at least ``REQUIRED_KEYS``; ``J_regressor`` is dense.
    Raises:
        ModelFileError: missing, unreadable, truncated, or with missing keys / inconsistent shapes.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"no body model at '{path}'; pass a SMPL .pkl/.npz file or use the default body=open")
    try:
        if path.suffix == ".npz":
            data = _read_npz(path)
        elif path.suffix == ".pkl":
            data = _read_pkl(path)
        else:
            raise ModelFileError(f"'{path}': unknown model file type '{path.suffix}'; expected .npz or .pkl")
    except ModelFileError:
        raise
    except (OSError, EOFError, ValueError, zipfile.BadZipFile, pickle.UnpicklingError, ModuleNotFoundError,
            AttributeError, KeyError, IndexError, TypeError) as exc:
        raise ModelFileError(f"cannot read body model '{path}' (truncated or not a model file): {exc}") from exc
    data = {k: np.asarray(_to_array(v)) for k, v in data.items()}
    validate_model_arrays(data, path)
    return data


def validate_model_arrays(data: dict[str, np.ndarray], path: str | Path = "<arrays>") -> None:
    """Check keys and shapes of a model's arrays; raise ModelFileError naming the file and the problem."""
    missing = [k for k in REQUIRED_KEYS if k not in data]
    if missing:
        raise ModelFileError(f"body model '{path}' lacks {', '.join(missing)}; is it an SMPL-format model file?")

    def fail(msg: str) -> None:
        raise ModelFileError(f"body model '{path}': {msg}")

    v_template = data["v_template"]
    if v_template.ndim != 2 or v_template.shape[1] != 3:
        fail(f"v_template must be (V, 3), got {v_template.shape}")
    n_verts = v_template.shape[0]
    shapedirs = data["shapedirs"]
    if shapedirs.ndim != 3 or shapedirs.shape[:2] != (n_verts, 3):
        fail(f"shapedirs must be ({n_verts}, 3, S), got {shapedirs.shape}")
    kintree = data["kintree_table"]
    if kintree.ndim != 2 or kintree.shape[0] != 2:
        fail(f"kintree_table must be (2, J), got {kintree.shape}")
    n_joints = kintree.shape[1]
    if data["J_regressor"].shape != (n_joints, n_verts):
        fail(f"J_regressor must be ({n_joints}, {n_verts}), got {data['J_regressor'].shape}")
    if data["weights"].shape != (n_verts, n_joints):
        fail(f"weights must be ({n_verts}, {n_joints}), got {data['weights'].shape}")
    faces = data["f"]
    if faces.ndim != 2 or faces.shape[1] != 3 or (faces.size and (faces.min() < 0 or faces.max() >= n_verts)):
        fail(f"f must be (F, 3) vertex indices below {n_verts}, got shape {faces.shape}")
    if "posedirs" in data:
        pd = data["posedirs"]
        if pd.ndim != 3 or pd.shape[:2] != (n_verts, 3) or pd.shape[2] != 9 * (n_joints - 1):
            fail(f"posedirs must be ({n_verts}, 3, {9 * (n_joints - 1)}), got {pd.shape}")
    parents = parents_from_kintree(kintree)
    if any(not (0 <= p < j) for j, p in enumerate(parents) if j > 0):
        fail("kintree_table parents must precede their children (joint 0 is the root)")
    for key in ("v_template", "shapedirs", "weights", "J_regressor"):
        if not np.all(np.isfinite(data[key])):
            fail(f"{key} holds NaN or inf values")


def parents_from_kintree(kintree: np.ndarray) -> list[int]:
    """Parent index per joint; the root's entry (stored as -1 or 2**32-1) becomes -1."""
    parents = [int(p) for p in np.asarray(kintree[0]).astype(np.int64)]
    parents[0] = -1
    return parents
