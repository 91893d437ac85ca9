"""Export of fitted people: meshes (``.obj`` / ``.ply`` / ``.glb`` via trimesh) and parameters (``.json`` for people,
``.npz`` with the exact arrays), all written atomically.

Meshes are in the camera frame of the photo, OpenCV's convention (x right, y down, z forward, metres), so they
line up with the image: a vertex projects to ``(fx X/Z + cx, fy Y/Z + cy)``. Note that glTF viewers assume y up, so
a ``.glb`` shows the person upside down there unless the viewer's camera is turned.

The parameter files hold one :class:`PersonParams` record plus ``format_version`` and a ``versions`` block.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import math
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from hmr_fit.errors import InputError
from hmr_fit.io.atomic import write_bytes, write_npz, write_png, write_text

__all__ = ["FORMAT_VERSION", "MESH_FORMATS", "PersonParams", "Exporter", "export_mesh", "export_params",
           "load_params", "software_versions"]

FORMAT_VERSION = 1  # bump when a field changes meaning or is removed; load_params refuses newer files
MESH_FORMATS = ("obj", "ply", "glb")

# Array fields of PersonParams with their shapes ("S": betas, "K": keypoints); -1 means any length.
_ARRAY_FIELDS: dict[str, tuple[int, ...]] = {
    "betas": (-1,), "body_pose": (-1, 3), "global_orient": (3,), "transl": (3,), "intrinsics": (4,),
    "image_size": (2,), "keypoints_detected": (-1, 2), "keypoints_confidence": (-1,), "keypoints_fitted": (-1, 2),
}


def _default_keypoint_names() -> tuple[str, ...]:
    from hmr_fit.body.joints import KEYPOINT_NAMES

    return KEYPOINT_NAMES


@dataclasses.dataclass
class PersonParams:
    """Everything fitted for one person in one image; the fitter fills it, :func:`export_params` writes it.

    Attributes:
        model_name: body model name (``BodyModel.name``).
        person_index: index of the person in the image, 0-based (the ``<stem>_<person>`` in file names).
        betas: (S,) shape coefficients.
        body_pose: (J - 1, 3) axis-angle per body joint (23 for SMPL), radians.
        global_orient: (3,) axis-angle of the root in the OpenCV camera frame, radians.
        transl: (3,) model translation in the camera frame, metres.
        intrinsics: (4,) fx, fy, cx, cy of the pinhole camera, pixels.
        image_size: (2,) H, W of the image, pixels.
        keypoints_detected: (K, 2) detected keypoints, pixels.
        keypoints_confidence: (K,) in [0, 1]; 0 marks a missing keypoint.
        keypoints_fitted: (K, 2) the fitted model's keypoints projected into the image, pixels.
        energy: final energy per term (e.g. ``{"reprojection": 12.3, "pose_prior": 0.8}``) and ``"total"``.
        quality: reprojection error normalised by box size (smaller is better).
        accepted: whether the fit passed the quality check.
        keypoint_names: K names (default: the 23 canonical ``hmr_fit.body.KEYPOINT_NAMES``).
        versions: software versions; filled by :func:`export_params`, read back by :func:`load_params`.
    """

    model_name: str
    person_index: int
    betas: np.ndarray
    body_pose: np.ndarray
    global_orient: np.ndarray
    transl: np.ndarray
    intrinsics: np.ndarray
    image_size: np.ndarray
    keypoints_detected: np.ndarray
    keypoints_confidence: np.ndarray
    keypoints_fitted: np.ndarray
    energy: dict[str, float] = dataclasses.field(default_factory=dict)
    quality: float = math.nan
    accepted: bool = False
    keypoint_names: tuple[str, ...] = dataclasses.field(default_factory=_default_keypoint_names)
    versions: dict[str, str] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, shape in _ARRAY_FIELDS.items():
            value = getattr(self, name)
            if hasattr(value, "detach"):  # torch tensor
                value = value.detach().cpu().numpy()
            dtype = np.int64 if name == "image_size" else np.float64
            arr = np.array(value, dtype=dtype)
            if name == "body_pose" and arr.ndim == 1 and arr.size % 3 == 0:
                arr = arr.reshape(-1, 3)
            if arr.ndim != len(shape) or any(s not in (-1, a) for s, a in zip(shape, arr.shape)):
                dims = ["n" if s == -1 else str(s) for s in shape]
                want = "(" + ", ".join(dims) + ("," if len(dims) == 1 else "") + ")"
                raise InputError(f"{name} must be {want}, got {arr.shape}")
            setattr(self, name, arr)
        k = len(self.keypoints_detected)
        if self.keypoints_confidence.shape != (k,) or self.keypoints_fitted.shape != (k, 2):
            raise InputError(f"keypoints disagree: detected {self.keypoints_detected.shape}, confidence "
                             f"{self.keypoints_confidence.shape}, fitted {self.keypoints_fitted.shape}")
        self.keypoint_names = tuple(str(n) for n in self.keypoint_names)
        if len(self.keypoint_names) != k:
            if self.keypoint_names == _default_keypoint_names():
                self.keypoint_names = tuple(f"keypoint_{i}" for i in range(k))
            else:
                raise InputError(f"keypoint_names has {len(self.keypoint_names)} names for {k} keypoints")
        self.model_name = str(self.model_name)
        self.person_index = int(self.person_index)
        self.energy = {str(key): float(v) for key, v in self.energy.items()}
        self.quality = float(self.quality)
        self.accepted = bool(self.accepted)
        self.versions = {str(key): str(v) for key, v in self.versions.items()}


def software_versions() -> dict[str, str]:
    """Versions of hmr-fit, torch and numpy (torch read from its metadata, so it is not imported here)."""
    import hmr_fit

    try:
        torch_version = importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        torch_version = "not installed"
    return {"hmr-fit": hmr_fit.__version__, "torch": torch_version, "numpy": np.__version__}


# --- meshes ---------------------------------------------------------------------------------------------------------
def export_mesh(path: str | os.PathLike, vertices: np.ndarray, faces: np.ndarray, fmt: str | None = None) -> Path:
    """Write one mesh atomically, in the camera frame (see the module docstring).

    Args:
        path: target file; its suffix gives the format when ``fmt`` is None.
        vertices: (V, 3) positions, metres (numpy or torch).
        faces: (F, 3) vertex indices.
        fmt: "obj", "ply" (binary) or "glb"; must match the suffix when both are given.
    Returns:
        the path written.
    """
    import trimesh

    path = Path(path)
    suffix = path.suffix.lower().lstrip(".")
    fmt = (fmt or suffix).lower()
    if fmt not in MESH_FORMATS:
        raise InputError(f"mesh format must be one of {', '.join(MESH_FORMATS)}, got '{fmt or path.name}'")
    if suffix != fmt:
        raise InputError(f"mesh path '{path}' does not end in .{fmt}")
    v = np.asarray(vertices.detach().cpu() if hasattr(vertices, "detach") else vertices, dtype=np.float64)
    f = np.asarray(faces)
    if v.ndim != 2 or v.shape[1] != 3 or not np.isfinite(v).all():
        raise InputError(f"vertices must be finite (V, 3), got {v.shape}")
    if f.ndim != 2 or f.shape[1] != 3 or (f.size and (f.min() < 0 or f.max() >= len(v))):
        raise InputError(f"faces must be (F, 3) indices into {len(v)} vertices, got {f.shape}")
    mesh = trimesh.Trimesh(vertices=v, faces=f.astype(np.int64), process=False, validate=False)
    if fmt == "obj":  # no normals: half the size and time; every viewer recomputes them
        data = trimesh.exchange.obj.export_obj(mesh, include_normals=False, include_color=False,
                                               include_texture=False, digits=6, header="hmr-fit")
    else:
        data = mesh.export(file_type=fmt)
    return write_bytes(path, data.encode("utf-8") if isinstance(data, str) else data)


# --- parameters -----------------------------------------------------------------------------------------------------
def _round(x: float, digits: int) -> float | None:
    """Round to ``digits`` significant digits; NaN/inf become None (JSON has no NaN)."""
    if not math.isfinite(x):
        return None
    return float(f"{x:.{digits}g}")


def _to_json(value: Any, digits: int) -> Any:
    if isinstance(value, np.ndarray):
        return _to_json(value.tolist(), digits)
    if isinstance(value, (list, tuple)):
        return [_to_json(v, digits) for v in value]
    if isinstance(value, dict):
        return {str(k): _to_json(v, digits) for k, v in value.items()}
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return _round(float(value), digits)
    return value


def _format_json(value: Any, indent: str = "") -> str:
    """Strict JSON with one line per scalar list or matrix row, so a record reads like a table."""
    inner = indent + "  "
    if isinstance(value, dict):
        if not value:
            return "{}"
        items = [f"{inner}{json.dumps(k)}: {_format_json(v, inner)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + indent + "}"
    if isinstance(value, list) and any(isinstance(v, (list, dict)) for v in value):
        return "[\n" + ",\n".join(inner + _format_json(v, inner) for v in value) + "\n" + indent + "]"
    return json.dumps(value, allow_nan=False, ensure_ascii=False, separators=(", ", ": "))


def export_params(stem_path: str | os.PathLike, params: PersonParams | Mapping[str, Any],
                  significant_digits: int = 7) -> tuple[Path, Path]:
    """Write ``<stem>.json`` (readable, rounded) and ``<stem>.npz`` (exact arrays), both atomically.

    Args:
        stem_path: path without suffix, e.g. ``out/photo_0``.
        params: a :class:`PersonParams` or a dict of its fields.
        significant_digits: significant digits of floats in the JSON (7 is about float32 precision);
            non-finite floats are written as null.
    Returns:
        (json path, npz path).
    """
    p = params if isinstance(params, PersonParams) else PersonParams(**dict(params))
    p = dataclasses.replace(p, versions=software_versions())
    stem_path = Path(stem_path)
    fields = {f.name: getattr(p, f.name) for f in dataclasses.fields(p)}
    doc = {"format_version": FORMAT_VERSION, **fields}
    doc["units"] = {"betas": "shape coefficients", "body_pose": "axis-angle, radians, (J-1, 3)",
                    "global_orient": "axis-angle, radians, OpenCV camera frame", "transl": "metres, camera frame",
                    "intrinsics": "fx, fy, cx, cy, pixels", "image_size": "H, W, pixels",
                    "keypoints": "pixels (x, y); confidence in [0, 1]"}
    json_path = write_text(stem_path.with_name(stem_path.name + ".json"),
                           _format_json(_to_json(doc, significant_digits)) + "\n")
    arrays: dict[str, Any] = {name: getattr(p, name) for name in _ARRAY_FIELDS}
    arrays.update(format_version=np.int64(FORMAT_VERSION), model_name=np.str_(p.model_name),
                  person_index=np.int64(p.person_index), quality=np.float64(p.quality),
                  accepted=np.bool_(p.accepted), keypoint_names=np.array(p.keypoint_names, dtype=np.str_),
                  versions=np.str_(json.dumps(p.versions)))
    arrays.update({f"energy.{k}": np.float64(v) for k, v in p.energy.items()})
    npz_path = write_npz(stem_path.with_name(stem_path.name + ".npz"), arrays)
    return json_path, npz_path


def load_params(path: str | os.PathLike) -> PersonParams:
    """Read a record written by :func:`export_params`.

    Args:
        path: the ``.npz`` (exact), the ``.json`` (rounded), or the stem (the ``.npz`` if present, else ``.json``).
    Returns:
        the :class:`PersonParams`, with ``versions`` as written.
    Raises:
        InputError: missing or unreadable file, missing fields, or a newer ``format_version``.
    """
    path = Path(path)
    if path.suffix.lower() not in (".npz", ".json"):
        npz, js = path.with_name(path.name + ".npz"), path.with_name(path.name + ".json")
        path = npz if npz.exists() else js
    if not path.exists():
        raise InputError(f"no parameter file at '{path}'")
    try:
        if path.suffix.lower() == ".npz":
            with np.load(path, allow_pickle=False) as z:
                data = {k: z[k] for k in z.files}
            record: dict[str, Any] = {k: data[k] for k in _ARRAY_FIELDS if k in data}
            record.update({k: data[k].item() for k in ("model_name", "person_index", "quality", "accepted")
                           if k in data})
            record["energy"] = {k[len("energy."):]: float(v) for k, v in data.items() if k.startswith("energy.")}
            if "keypoint_names" in data:
                record["keypoint_names"] = tuple(str(n) for n in data["keypoint_names"])
            record["versions"] = json.loads(str(data["versions"])) if "versions" in data else {}
            version = int(data["format_version"]) if "format_version" in data else None
        else:
            doc = json.loads(path.read_text(encoding="utf-8"))
            version = doc.get("format_version")
            names = [f.name for f in dataclasses.fields(PersonParams)]
            record = {k: doc[k] for k in names if k in doc}
            for k in _ARRAY_FIELDS:  # null (a non-finite value on export) -> NaN
                if k in record:
                    record[k] = np.array(_nulls_to_nan(record[k]), dtype=np.float64)
            if record.get("quality") is None and "quality" in record:
                record["quality"] = math.nan
            record["energy"] = {k: math.nan if v is None else v for k, v in record.get("energy", {}).items()}
    except (OSError, ValueError, KeyError) as exc:
        raise InputError(f"cannot read parameters from '{path}': {exc}") from exc
    if version is None or int(version) > FORMAT_VERSION:
        raise InputError(f"'{path}' has format_version {version}; this hmr-fit reads up to {FORMAT_VERSION}, "
                         "upgrade hmr-fit")
    required = [f.name for f in dataclasses.fields(PersonParams)
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    missing = [name for name in required if name not in record]
    if missing:
        raise InputError(f"'{path}' lacks {', '.join(missing)}")
    return PersonParams(**record)


def _nulls_to_nan(value: Any) -> Any:
    if isinstance(value, list):
        return [_nulls_to_nan(v) for v in value]
    return math.nan if value is None else value


# --- the per-run exporter (configs/export/default.yaml) -------------------------------------------------------------
class Exporter:
    """Writes a run's outputs: per person ``<stem>_<i>.<mesh_format>``, ``<stem>_<i>.json`` / ``.npz`` and
    ``<stem>_<i>.png``, and per image ``<stem>_all.png``; each kind can be switched off.

    Args:
        mesh_format: "obj", "ply" or "glb".
        write_mesh: write the per-person mesh.
        write_params: write the per-person ``.json`` + ``.npz``.
        write_overlay: write the per-person overlay PNG.
        write_all: write ``<stem>_all.png`` (overlay | side view | keypoints).
        significant_digits: float precision in the JSON.
    """

    def __init__(self, mesh_format: str = "obj", write_mesh: bool = True, write_params: bool = True,
                 write_overlay: bool = False, write_all: bool = True, significant_digits: int = 7) -> None:
        if mesh_format not in MESH_FORMATS:
            raise InputError(f"mesh_format must be one of {', '.join(MESH_FORMATS)}, got '{mesh_format}'")
        if not 1 <= int(significant_digits) <= 17:
            raise InputError(f"significant_digits must be in 1..17, got {significant_digits}")
        self.mesh_format = mesh_format
        self.write_mesh, self.write_params = bool(write_mesh), bool(write_params)
        self.write_overlay, self.write_all = bool(write_overlay), bool(write_all)
        self.significant_digits = int(significant_digits)

    @staticmethod
    def person_stem(out_dir: str | os.PathLike, stem: str, person_index: int) -> Path:
        """``out_dir/<stem>_<person_index>``, the common stem of one person's files."""
        return Path(out_dir) / f"{stem}_{int(person_index)}"

    def export_person(self, out_dir: str | os.PathLike, stem: str, params: PersonParams, vertices: np.ndarray,
                      faces: np.ndarray, overlay: np.ndarray | None = None) -> list[Path]:
        """Write one person's enabled outputs into ``out_dir`` (created if missing).

        Args:
            out_dir: output folder.
            stem: the image's file stem.
            params: the person's record (``params.person_index`` names the files).
            vertices: (V, 3) camera-frame vertices, metres.
            faces: (F, 3) vertex indices.
            overlay: (H, W, 3) uint8 picture of this person, or None to skip it.
        Returns:
            the paths written.
        """
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        base = self.person_stem(out_dir, stem, params.person_index)
        written: list[Path] = []
        if self.write_mesh:
            written.append(export_mesh(base.with_name(f"{base.name}.{self.mesh_format}"), vertices, faces))
        if self.write_params:
            written.extend(export_params(base, params, self.significant_digits))
        if self.write_overlay and overlay is not None:
            written.append(write_png(base.with_name(base.name + ".png"), overlay))
        return written

    def export_all(self, out_dir: str | os.PathLike, stem: str, picture: np.ndarray) -> list[Path]:
        """Write ``<stem>_all.png`` if enabled; returns the paths written (none or one)."""
        if not self.write_all:
            return []
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        return [write_png(Path(out_dir) / f"{stem}_all.png", picture)]

    def outputs(self, out_dir: str | os.PathLike, stem: str, person_indices: Sequence[int]) -> list[Path]:
        """The paths :meth:`export_person` / :meth:`export_all` would write (e.g. to skip finished images)."""
        paths = []
        for i in person_indices:
            base = self.person_stem(out_dir, stem, i)
            if self.write_mesh:
                paths.append(base.with_name(f"{base.name}.{self.mesh_format}"))
            if self.write_params:
                paths += [base.with_name(base.name + ".json"), base.with_name(base.name + ".npz")]
            if self.write_overlay:
                paths.append(base.with_name(base.name + ".png"))
        if self.write_all:
            paths.append(Path(out_dir) / f"{stem}_all.png")
        return paths
