"""Synthetic SMPL-format model files for tests: random arrays with the official file's keys, shapes and types."""

from __future__ import annotations

import pickle
import sys
import types

import numpy as np
import scipy.sparse

from hmr_fit.body.joints import SMPL_PARENTS


def fake_smpl_arrays(seed: int = 0, num_verts: int = 6890, num_betas: int = 10, posedirs: bool = True) -> dict:
    """Random arrays with the official SMPL file's keys, shapes and types (sparse J_regressor, uint32 kintree)."""
    rng = np.random.default_rng(seed)
    weights = rng.random((num_verts, 24)) ** 4
    weights /= weights.sum(1, keepdims=True)
    j_reg = rng.random((24, num_verts)) * (rng.random((24, num_verts)) < 0.02)
    j_reg /= j_reg.sum(1, keepdims=True)
    parents = np.array(SMPL_PARENTS, dtype=np.int64)
    parents[0] = 2**32 - 1
    arrays = {
        "v_template": rng.normal(0, 0.3, (num_verts, 3)),
        "shapedirs": rng.normal(0, 0.01, (num_verts, 3, num_betas)),
        "J_regressor": scipy.sparse.csc_matrix(j_reg),
        "weights": weights,
        "kintree_table": np.stack([parents, np.arange(24)]).astype(np.uint32),
        "f": rng.integers(0, num_verts, (2 * num_verts - 4, 3)).astype(np.uint32),
    }
    if posedirs:
        arrays["posedirs"] = rng.normal(0, 0.01, (num_verts, 3, 207))
    return arrays


def write_chumpy_pickle(path, arrays: dict, chumpy_keys=("v_template", "shapedirs", "weights", "posedirs")) -> None:
    """Pickle like the official SMPL files: Python-2 protocol, some arrays wrapped in chumpy.ch.Ch objects.

    A throwaway ``chumpy.ch`` module provides the class while pickling, and is removed again, so the reader must
    cope without chumpy installed (as it must on a user's machine)."""
    module = types.ModuleType("chumpy.ch")

    class Ch:
        pass

    Ch.__module__, Ch.__qualname__ = "chumpy.ch", "Ch"
    module.Ch = Ch
    saved = {k: sys.modules.get(k) for k in ("chumpy", "chumpy.ch")}
    sys.modules["chumpy"], sys.modules["chumpy.ch"] = types.ModuleType("chumpy"), module
    try:
        payload = {}
        for key, value in arrays.items():
            if key in chumpy_keys:
                wrapped = Ch()
                wrapped.__dict__.update({"x": np.asarray(value), "_dirty_vars": set()})
                payload[key] = wrapped
            else:
                payload[key] = value
        payload["bs_style"], payload["bs_type"] = "lbs", "lrotmin"
        with open(path, "wb") as fh:
            pickle.dump(payload, fh, protocol=2)
    finally:
        for key, value in saved.items():
            if value is None:
                sys.modules.pop(key, None)
            else:
                sys.modules[key] = value
