"""Keypoints from other detectors' JSON files (OpenPose, COCO / COCO-WholeBody), in the canonical 23.

Recognised layouts (``format="auto"`` tells them apart by their structure):

* ``openpose``: one file per image as OpenPose writes it, ``{"people": [{"pose_keypoints_2d": [x, y, c, ...]}]}``
  with 25 (BODY_25) or 18 (COCO-18) points. Image key: the file stem without OpenPose's ``_keypoints`` suffix.
  A point with c = 0 is missing.
* ``coco``: a COCO keypoint dataset, ``{"images": [...], "annotations": [{"image_id", "keypoints", ...}]}``,
  17 points, or COCO-WholeBody with ``foot_kpts`` (6 points) next to them, or 133 points in ``keypoints``.
  The third value is COCO's visibility flag v: 0 = not labelled (confidence 0), 1 = labelled but occluded, 2 =
  visible; labelled points get confidence ``coco_labelled_confidence`` (1.0 by default) since a human placed
  them. Image key: ``images[].file_name`` (the stem is used too when matching), else the image id.
* ``coco_results``: COCO results as detectors (ViTPose, RTMPose, mmpose) write them, a list of
  ``{"image_id", "keypoints": [x, y, score, ...], "score"}`` with 17 or 133 points. Image key: the image id.

People keep the file's order. Every malformed file raises ``InputError`` naming the file and the problem.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np

from hmr_fit.errors import InputError
from hmr_fit.keypoints import formats
from hmr_fit.keypoints.person import Person, keypoint_box
from hmr_fit.keypoints.quality import PersonFilter

FORMATS = ("auto", "openpose", "coco", "coco_results")


def _triples(values, n_expected: tuple[int, ...], where: str, path: Path) -> tuple[np.ndarray, np.ndarray, int]:
    """Flat [x, y, c, ...] -> keypoints (K, 2), third values (K,), K; K must be one of n_expected."""
    if not isinstance(values, list):
        raise InputError(f"bad keypoint file '{path}': {where} must be a list of numbers, got {type(values).__name__}")
    if len(values) % 3 or len(values) // 3 not in n_expected:
        sizes = " or ".join(f"{3 * k} ({k} points)" for k in n_expected)
        raise InputError(f"bad keypoint file '{path}': {where} has {len(values)} numbers, expected {sizes}")
    try:
        arr = np.asarray(values, dtype=np.float64).reshape(-1, 3)
    except (TypeError, ValueError) as e:
        raise InputError(f"bad keypoint file '{path}': {where} must hold only numbers ({e})") from e
    if not np.isfinite(arr).all():
        raise InputError(f"bad keypoint file '{path}': {where} contains NaN or infinite values")
    return arr[:, :2], arr[:, 2], len(arr)


def _person(kp: np.ndarray, conf: np.ndarray, score: float | None) -> Person:
    conf = np.clip(conf, 0.0, 1.0)
    kp = np.where(conf[:, None] > 0, kp, 0.0)
    present = conf[conf > 0]
    if score is None or not math.isfinite(score):
        score = float(present.mean()) if present.size else 0.0
    return Person(keypoints=kp, confidence=conf, bbox=keypoint_box(kp, conf), score=float(score))


def detect_format(data, path: Path) -> str:
    """Which layout ``data`` (parsed JSON) is in; raises ``InputError`` if none fits."""
    if isinstance(data, dict) and "people" in data:
        return "openpose"
    if isinstance(data, dict) and "annotations" in data:
        return "coco"
    if isinstance(data, list) and (not data or isinstance(data[0], dict)):
        return "coco_results"
    kind = type(data).__name__
    keys = f" with keys {sorted(data)[:8]}" if isinstance(data, dict) else ""
    raise InputError(f"bad keypoint file '{path}': unknown layout (a JSON {kind}{keys}); expected OpenPose "
                     "('people'), a COCO dataset ('annotations') or a COCO results list ('keypoints')")


def _parse_openpose(data: dict, path: Path) -> dict[str, list[Person]]:
    people_json = data.get("people")
    if not isinstance(people_json, list):
        raise InputError(f"bad keypoint file '{path}': 'people' must be a list")
    stem = path.stem[: -len("_keypoints")] if path.stem.endswith("_keypoints") else path.stem
    people = []
    for i, pj in enumerate(people_json):
        if not isinstance(pj, dict) or "pose_keypoints_2d" not in pj:
            raise InputError(f"bad keypoint file '{path}': people[{i}] has no 'pose_keypoints_2d'")
        kp, c, k = _triples(pj["pose_keypoints_2d"], (25, 18), f"people[{i}].pose_keypoints_2d", path)
        kp, c = (formats.from_body25 if k == 25 else formats.from_openpose18)(kp, c)
        people.append(_person(kp, c, None))
    return {stem: people}


def _parse_coco(data: dict, path: Path, labelled_confidence: float) -> dict[str, list[Person]]:
    images, anns = data.get("images", []), data.get("annotations")
    if not isinstance(anns, list) or not isinstance(images, list):
        raise InputError(f"bad keypoint file '{path}': 'annotations' and 'images' must be lists")
    names = {}
    for im in images:
        if isinstance(im, dict) and "id" in im:
            names[im["id"]] = str(im.get("file_name", im["id"]))
    out: dict[str, list[Person]] = {name: [] for name in names.values()}
    for i, ann in enumerate(anns):
        if not isinstance(ann, dict) or "keypoints" not in ann or "image_id" not in ann:
            raise InputError(f"bad keypoint file '{path}': annotations[{i}] needs 'image_id' and 'keypoints'")
        kp, v, k = _triples(ann["keypoints"], (17, 133), f"annotations[{i}].keypoints", path)
        conf = np.where(v > 0, labelled_confidence, 0.0)
        if k == 133:
            kp, conf = formats.from_coco_wholebody(kp, conf)
        else:
            kp, conf = formats.from_coco17(kp, conf)
            if "foot_kpts" in ann:  # COCO-WholeBody annotation: body and feet in separate fields
                fkp, fv, _ = _triples(ann["foot_kpts"], (6,), f"annotations[{i}].foot_kpts", path)
                kp[17:], conf[17:] = fkp, np.where(fv > 0, labelled_confidence, 0.0)
        key = names.get(ann["image_id"], str(ann["image_id"]))
        out.setdefault(key, []).append(_person(kp, conf, ann.get("score")))
    return out


def _parse_coco_results(data: list, path: Path) -> dict[str, list[Person]]:
    out: dict[str, list[Person]] = {}
    for i, r in enumerate(data):
        if not isinstance(r, dict) or "keypoints" not in r or "image_id" not in r:
            raise InputError(f"bad keypoint file '{path}': item [{i}] needs 'image_id' and 'keypoints'")
        kp, c, k = _triples(r["keypoints"], (17, 133), f"[{i}].keypoints", path)
        kp, c = (formats.from_coco_wholebody if k == 133 else formats.from_coco17)(kp, c)
        score = r.get("score")
        out.setdefault(str(r["image_id"]), []).append(
            _person(kp, c, float(score) if isinstance(score, (int, float)) else None))
    return out


class KeypointLoader:
    """Loads keypoint JSON files into canonical-23 ``Person`` lists and applies the quality check.

    Args:
        format: "auto", "openpose", "coco" or "coco_results" (see the module docstring).
        coco_labelled_confidence: confidence given to labelled points (v = 1 or 2) of COCO dataset files.
        min_keypoint_confidence, min_confident_keypoints, min_box_size: the quality check (``PersonFilter``);
            rejected people are kept with ``reject_reason`` set.
    """

    def __init__(self, format: str = "auto", coco_labelled_confidence: float = 1.0,
                 min_keypoint_confidence: float = 0.5, min_confident_keypoints: int = 6,
                 min_box_size: float = 32.0) -> None:
        if format not in FORMATS:
            raise ValueError(f"Invalid format: {format!r} (must be one of {FORMATS})")
        if not 0.0 < coco_labelled_confidence <= 1.0:
            raise ValueError(f"Invalid coco_labelled_confidence: {coco_labelled_confidence} (must be in (0, 1])")
        self.format = format
        self.coco_labelled_confidence = float(coco_labelled_confidence)
        self.filter = PersonFilter(min_keypoint_confidence, min_confident_keypoints, min_box_size)

    def load(self, path: str | os.PathLike) -> dict[str, list[Person]]:
        """Read ``path``; returns {image key: people in file order}. Raises ``InputError`` if malformed."""
        p = Path(path)
        if not p.is_file():
            raise InputError(f"cannot read keypoint file '{p}': " + ("it is a directory" if p.is_dir() else
                                                                     "no such file; check the path"))
        try:
            text = p.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise InputError(f"cannot read keypoint file '{p}': {e}") from e
        if not text.strip():
            raise InputError(f"bad keypoint file '{p}': the file is empty")
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise InputError(f"bad keypoint file '{p}': invalid JSON at line {e.lineno}, column {e.colno}: "
                             f"{e.msg}") from e
        fmt = detect_format(data, p) if self.format == "auto" else self.format
        if fmt == "openpose":
            if not isinstance(data, dict):
                raise InputError(f"bad keypoint file '{p}': an OpenPose file must be a JSON object")
            result = _parse_openpose(data, p)
        elif fmt == "coco":
            if not isinstance(data, dict):
                raise InputError(f"bad keypoint file '{p}': a COCO dataset file must be a JSON object")
            result = _parse_coco(data, p, self.coco_labelled_confidence)
        else:
            if not isinstance(data, list):
                raise InputError(f"bad keypoint file '{p}': a COCO results file must be a JSON list")
            result = _parse_coco_results(data, p)
        return {key: self.filter.apply(people) for key, people in result.items()}


def load_keypoints(path: str | os.PathLike, format: str = "auto") -> dict[str, list[Person]]:
    """``KeypointLoader(format=format).load(path)`` with the default quality thresholds."""
    return KeypointLoader(format=format).load(path)


def _flat(kp: np.ndarray, conf: np.ndarray) -> list[float]:
    return np.concatenate([kp, conf[:, None]], axis=1).reshape(-1).tolist()


def to_openpose_json(people: list[Person]) -> dict:
    """OpenPose BODY_25 JSON (``pose_keypoints_2d``) of canonical people; neck and mid-hip are derived."""
    out = []
    for p in people:
        kp, c = formats.to_body25(p.keypoints, p.confidence)
        out.append({"person_id": [-1], "pose_keypoints_2d": _flat(kp, c)})
    return {"version": 1.3, "people": out}


def to_coco_results(people: list[Person], image_id: int | str, wholebody: bool = False) -> list[dict]:
    """COCO results entries (17 points, or 133 with ``wholebody``) of canonical people; third value = confidence."""
    out = []
    for p in people:
        kp, c = (formats.to_coco_wholebody if wholebody else formats.to_coco17)(p.keypoints, p.confidence)
        out.append({"image_id": image_id, "category_id": 1, "keypoints": _flat(kp, c), "score": p.score})
    return out
