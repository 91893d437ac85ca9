"""The image job: read -> detect (or load keypoints) -> fit every person of every image in batches -> render ->
export. Reads top to bottom; each stage lives in its own package."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hmr_fit.errors import HmrFitError, InputError, NoPersonError
from hmr_fit.fit.camera import Camera
from hmr_fit.fit.fitter import Fitter, FitResult
from hmr_fit.io.images import read_image
from hmr_fit.keypoints import Person

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}


@dataclass
class ImageJob:
    """One input image and what happened to it."""

    path: Path
    size: tuple[int, int] = (0, 0)
    focal_px: float | None = None
    people: list[Person] = field(default_factory=list)  # accepted by the keypoint quality check
    rejected: list[Person] = field(default_factory=list)
    fits: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0


def collect_images(inputs: list[str]) -> tuple[list[Path], list[str]]:
    """Expand files and folders (recursively) into image paths; returns (images, problems)."""
    images, problems = [], []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                problems.append(f"folder '{path}' holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
            images.extend(found)
        elif path.is_file():
            images.append(path)
        else:
            problems.append(f"cannot read '{path}': no such file or folder; check the path")
    return images, problems


def detect_people(jobs: list[ImageJob], detector, keypoint_file: dict[str, list[Person]] | None) -> None:
    """Fill each job's people (or its error). One detector instance serves all images."""
    for job in jobs:
        start = time.perf_counter()
        try:
            image, info = read_image(job.path)
            job.size = (image.shape[1], image.shape[0])
            job.focal_px = info.camera.focal_length_px if info.camera is not None else None
            if keypoint_file is not None:
                people = match_keypoints(keypoint_file, job.path)
            else:
                people = detector.detect(image)
            job.people = [p for p in people if p.accepted]
            job.rejected = [p for p in people if not p.accepted]
            if not people:
                raise NoPersonError(f"no person found in '{job.path}'")
        except HmrFitError as exc:
            job.error = str(exc)
        job.seconds += time.perf_counter() - start


def match_keypoints(keypoint_file: dict[str, list[Person]], path: Path) -> list[Person]:
    """People of one image from a keypoint file: by file name, stem, or the only entry."""
    for key in (path.name, path.stem, str(path)):
        if key in keypoint_file:
            return keypoint_file[key]
    by_stem = {Path(str(k)).stem: v for k, v in keypoint_file.items()}
    if path.stem in by_stem:
        return by_stem[path.stem]
    if len(keypoint_file) == 1:
        return next(iter(keypoint_file.values()))
    raise InputError(f"the keypoint file has no entry for '{path.name}' (it has: "
                     f"{', '.join(list(map(str, keypoint_file))[:5])}); name entries after the images")


def fit_people(jobs: list[ImageJob], fitter: Fitter, batch_size: int) -> None:
    """Fit every accepted person of every image, ``batch_size`` people per batch."""
    entries = [(job, i) for job in jobs if job.error is None for i in range(len(job.people))]
    for start in range(0, len(entries), batch_size):
        chunk = entries[start:start + batch_size]
        t0 = time.perf_counter()
        keypoints = np.stack([job.people[i].keypoints for job, i in chunk])
        confidence = np.stack([job.people[i].confidence for job, i in chunk])
        camera = Camera.cat([Camera.for_image(job.size[0], job.size[1], focal_px=job.focal_px) for job, _ in chunk])
        result = fitter.fit(torch.as_tensor(keypoints), torch.as_tensor(confidence), camera)
        per_person = (time.perf_counter() - t0) / len(chunk)
        for k, (job, i) in enumerate(chunk):
            job.fits.append(person_record(result, k, job, i))
            job.seconds += per_person


def person_record(result: FitResult, k: int, job: ImageJob, person_index: int) -> dict[str, Any]:
    """Everything known about one fitted person, as plain numpy/python values (the export format)."""
    person = job.people[person_index]

    def arr(t: torch.Tensor) -> np.ndarray:
        return t[k].detach().cpu().numpy()

    cam = result.camera.index(slice(k, k + 1))
    return {
        "person_index": person_index,
        "betas": arr(result.betas), "body_pose": arr(result.body_pose), "global_orient": arr(result.global_orient),
        "transl": arr(result.transl),
        "camera": {"focal": cam.focal[0].cpu().numpy(), "center": cam.center[0].cpu().numpy(),
                   "image_size": np.array(job.size)},
        "keypoints": np.asarray(person.keypoints), "confidence": np.asarray(person.confidence),
        "bbox": np.asarray(person.bbox), "fitted_keypoints": arr(result.fitted_keypoints),
        "energy": float(result.energy[k]), "terms": {n: float(v[k]) for n, v in result.terms.items()},
        "reprojection_error_px": float(result.reprojection_error[k]), "quality": float(result.quality[k]),
        "accepted": bool(result.accepted[k]), "reject_reason": result.reject_reason[k],
        "facing": result.facing[k], "steps": int(result.n_steps[k]), "evaluations": int(result.n_evals[k]),
    }


def summary_line(job: ImageJob) -> str:
    if job.error is not None:
        return f"{job.path}: failed: {job.error}"
    fitted = sum(f["accepted"] for f in job.fits)
    bad_fits = len(job.fits) - fitted
    found = len(job.people) + len(job.rejected)
    text = (f"{job.path}: {found} {'person' if found == 1 else 'people'} found, {fitted} fitted, "
            f"{len(job.rejected) + bad_fits} rejected, {job.seconds:.2f} s")
    reasons = [p.reject_reason for p in job.rejected] + [f["reject_reason"] for f in job.fits if not f["accepted"]]
    if reasons:
        text += " (" + "; ".join(r for r in reasons if r) + ")"
    return text


def log(message: str) -> None:
    print(message, file=sys.stdout, flush=True)
