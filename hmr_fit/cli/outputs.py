"""Writing one run's outputs per image: ``<stem>_all.png`` (overlay | side view | keypoints), ``<stem>_overlay.png``,
and per person ``<stem>_<i>.{obj,ply,glb}`` plus ``<stem>_<i>.json`` / ``.npz``. Every file is written atomically,
so an interrupted run never leaves a half-written output."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from hmr_fit.body import BodyModel
from hmr_fit.cli.images import ImageJob, versions
from hmr_fit.errors import HmrFitError
from hmr_fit.io.atomic import write_png
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
    from hmr_fit.io.export import export_mesh, export_params

    export_cfg = OmegaConf.to_container(cfg.export, resolve=True)
    export_cfg.pop("_target_", None)
    mesh_format = export_cfg.get("mesh_format", "obj")
    output.mkdir(parents=True, exist_ok=True)
    taken: set[str] = set()
    renderer = instantiate(cfg.render, faces=body.faces, _convert_="all")  # one renderer (GL context) per run
    try:
        for job in jobs:
            if job.error is not None:
                continue
            stem = output_stem(job, output, taken)
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
            write_png(f"{stem}_all.png", renderer.render_all(image, vertices, intrinsics, detected, confidence,
                                                             fitted, person_ids=ids))
            write_png(f"{stem}_overlay.png", renderer.overlay(image, vertices, intrinsics, ids))
            for record, verts in zip(fits, vertices):
                person_stem = Path(f"{stem}_{record['person_index']}")
                export_mesh(person_stem.with_suffix(f".{mesh_format}"), verts, body.faces, mesh_format)
                export_params(person_stem, dict(record, model=body.name, image=str(job.path), versions=versions()))
    finally:
        renderer.close()


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
