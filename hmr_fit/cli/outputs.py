"""Writing one run's outputs per image: ``<stem>_all.png`` (overlay | side view | keypoints), and per person
``<stem>_<i>.png`` (overlay), ``<stem>_<i>.{obj,ply,glb}`` and ``<stem>_<i>.json`` / ``.npz`` (``hmr_fit.io.export``).
Every file is written atomically, so an interrupted run never leaves a half-written output."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from hydra.utils import instantiate

from hmr_fit.body import BodyModel
from hmr_fit.cli.images import ImageJob
from hmr_fit.errors import HmrFitError
from hmr_fit.io.export import PersonParams
from hmr_fit.io.images import read_image


def output_stem(job: ImageJob, output: Path, taken: set[str]) -> Path:
    """``output/<image stem>``, made unique when two inputs share a stem (a/x.jpg and b/x.jpg)."""
    stem, n = job.path.stem, 1
    while stem in taken:
        n += 1
        stem = f"{job.path.stem}-{n}"
    taken.add(stem)
    return output / stem


def write_outputs(jobs: list[ImageJob], body: BodyModel, cfg, output: Path) -> None:
    exporter = instantiate(cfg.export, _convert_="all")
    taken: set[str] = set()
    renderer = instantiate(cfg.render, faces=body.faces, _convert_="all")  # one renderer (GL context) per run
    try:
        for job in jobs:
            if job.error is not None:
                continue
            stem = output_stem(job, output, taken).name
            fits = [f for f in job.fits if f["accepted"]]
            vertices = posed_vertices(body, fits)
            try:
                image, _ = read_image(job.path)
            except HmrFitError as exc:  # the file changed or vanished since detection
                job.error = str(exc)
                continue
            intrinsics = intrinsics_of(fits[0]) if fits else default_intrinsics(job)
            detected = np.stack([f["keypoints"] for f in job.fits]) if job.fits else None
            confidence = np.stack([f["confidence"] for f in job.fits]) if job.fits else None
            fitted = np.stack([f["fitted_keypoints"] for f in job.fits]) if job.fits else None
            ids = [f["person_index"] for f in fits]
            if exporter.write_all:
                exporter.export_all(output, stem, renderer.render_all(image, vertices, intrinsics, detected,
                                                                      confidence, fitted, person_ids=ids))
            for record, verts in zip(fits, vertices):
                overlay = renderer.overlay(image, [verts], intrinsics, [record["person_index"]]) \
                    if exporter.write_overlay else None
                exporter.export_person(output, stem, person_params(record, body.name, job), verts, body.faces,
                                       overlay)
    finally:
        renderer.close()


def person_params(record: dict, model_name: str, job: ImageJob) -> PersonParams:
    return PersonParams(
        model_name=model_name, person_index=record["person_index"], betas=record["betas"],
        body_pose=record["body_pose"], global_orient=record["global_orient"], transl=record["transl"],
        intrinsics=np.array(intrinsics_of(record)), image_size=np.array([job.size[1], job.size[0]]),
        keypoints_detected=record["keypoints"], keypoints_confidence=record["confidence"],
        keypoints_fitted=record["fitted_keypoints"], energy=dict(record["terms"], total=record["energy"]),
        quality=record["quality"], accepted=record["accepted"])


@torch.no_grad()
def posed_vertices(body: BodyModel, fits: list[dict]) -> list[np.ndarray]:
    """(V, 3) camera-frame vertices per fitted person."""
    if not fits:
        return []
    device, dtype = body.v_template.device, body.v_template.dtype

    def stack(key: str) -> torch.Tensor:
        return torch.as_tensor(np.stack([f[key] for f in fits]), dtype=dtype, device=device)

    out = body(stack("betas"), stack("body_pose"), stack("global_orient"), stack("transl"))
    return list(out.vertices.cpu().numpy())


def intrinsics_of(record: dict) -> tuple[float, float, float, float]:
    fx, fy = record["camera"]["focal"]
    cx, cy = record["camera"]["center"]
    return float(fx), float(fy), float(cx), float(cy)


def default_intrinsics(job: ImageJob) -> tuple[float, float, float, float]:
    from hmr_fit.fit.camera import focal_length_px

    w, h = job.size
    f = focal_length_px(w, h, job.focal_px)
    return f, f, w / 2.0, h / 2.0
