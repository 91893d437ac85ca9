"""``hmr-fit clip.mp4`` / ``hmr-fit videos/``: the video batch.

Reads top to bottom: config -> collect videos (recursively) -> plan one output folder per video -> engine (local or
Ray) runs ``VideoRunner.process`` on each -> report.html -> list of failures and the exit code (0 all done or
skipped, 1 some failed).

``main.py`` dispatches here when an input is a video or a folder with videos below it
(``hmr_fit.video.reader.has_videos``).
"""

from __future__ import annotations

import functools
import sys
import time
from pathlib import Path
from typing import Any

from hmr_fit.cli.errors import EXIT_OK, EXIT_SOME_FAILED
from hmr_fit.errors import ConfigError, InputError

__all__ = ["run_videos", "build_runner", "plan_jobs", "video_config"]


def video_config(cfg) -> dict[str, Any]:
    """The ``video`` config group as a plain dict: ``cfg.video`` when the primary config includes it, else
    ``configs/video/default.yaml`` (overrides then go through ``+video.runner.x=...`` until config.yaml lists it)."""
    from omegaconf import OmegaConf

    from hmr_fit.assets import config_dir

    if "video" in cfg:
        return OmegaConf.to_container(cfg.video, resolve=True)
    return OmegaConf.to_container(OmegaConf.load(config_dir() / "video" / "default.yaml"), resolve=True)


def plan_jobs(videos: list[Path], inputs: list[str], output: Path) -> list[tuple[str, str]]:
    """One ``(video, output folder)`` per video: the video's path below the input folder it was found in, without
    the suffix (``videos/a/b.mp4`` -> ``output/a/b``); a file given directly -> ``output/<stem>``. Two videos that
    would share a folder (``b.mp4`` and ``b.avi``) get ``b`` and ``b_avi``. Deterministic, so a rerun finds the
    folders of finished videos."""
    roots = [Path(i).resolve() for i in inputs if Path(i).is_dir()]
    jobs, taken = [], set()
    for video in videos:
        resolved = video.resolve()
        root = next((r for r in roots if resolved != r and r in resolved.parents), None)
        rel = resolved.relative_to(root) if root is not None else Path(resolved.name)
        target = rel.with_suffix("") if resolved.is_file() else rel
        if target.as_posix() in taken:
            target = target.with_name(f"{target.name}_{resolved.suffix.lstrip('.') or 'seq'}")
        n = 2
        base = target
        while target.as_posix() in taken:
            target, n = base.with_name(f"{base.name}-{n}"), n + 1
        taken.add(target.as_posix())
        jobs.append((str(video), str(output / target)))
    return jobs


def build_runner(cfg_dict: dict[str, Any], model_path: str | None, device: str):
    """Build the body model, fitter, detector/renderer factories and the VideoRunner from a plain config dict.
    Module level and dict-only, so a Ray worker can run it (``functools.partial(build_runner, ...)``)."""
    import os

    import torch
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from hmr_fit.body import BodyModel
    from hmr_fit.optim import optimizer_from_config
    from hmr_fit.video.runner import VideoRunner
    from hmr_fit.video.track import Tracker

    os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
    cfg = OmegaConf.create(cfg_dict)
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"--device {device} requested but CUDA is not available; use --device cpu")
    if dev.type == "cpu" and int(cfg.cpu_threads) > 0:
        torch.set_num_threads(int(cfg.cpu_threads))
    body_cfg = OmegaConf.to_container(cfg.body, resolve=False)
    body_cfg.pop("_target_", None)
    if model_path:
        body_cfg["model_path"] = model_path
    if body_cfg.get("model_path") == "???":
        raise ConfigError("body=smpl needs a model file: pass --model /path/to/SMPL_NEUTRAL.pkl")
    body = BodyModel(**body_cfg).to(dev)
    try:  # the image CLI's builder (pose prior, init pose, ...) when this version of main.py has it
        from hmr_fit.cli.main import build_fitter
    except ImportError:
        build_fitter = None
    if build_fitter is not None:
        fitter = build_fitter(cfg, body)
    else:
        energy = instantiate(cfg.energy, body=body, _convert_="all")
        optimizer = optimizer_from_config(OmegaConf.to_container(cfg.optim, resolve=True))
        fitter = instantiate(cfg.fit, body=body, energy=energy, optimizer=optimizer)
    video = cfg_dict["video"]
    runner_kw = dict(video["runner"])
    if not str(cfg.keypoints.get("_target_", "")).endswith("PoseDetector"):
        raise ConfigError("videos need the MediaPipe detector (keypoints=mediapipe); keypoint files are for images")
    detector_factory = functools.partial(instantiate, cfg.keypoints, running_mode="video", _convert_="all")
    renderer_factory = functools.partial(instantiate, cfg.render, faces=body.faces, _convert_="all") \
        if runner_kw.get("overlay_video", True) else None
    tracker_factory = functools.partial(Tracker, **video["tracker"])
    return VideoRunner(body, fitter, detector_factory, renderer_factory, tracker_factory, **runner_kw)


def run_videos(cfg, inputs: list[str], args) -> int:
    """Fit every video below ``inputs``; returns the exit code (0: all done or skipped, 1: some failed).

    Args:
        cfg: the composed config (``main.compose_config``).
        inputs: files and folders from the command line.
        args: the parsed CLI arguments (``output``, ``device``, ``model``, ``keypoints``).
    Raises:
        InputError: no video found at all. ConfigError: bad video settings.
    """
    from omegaconf import OmegaConf

    from hmr_fit.video.engine import run_batch
    from hmr_fit.video.reader import collect_videos
    from hmr_fit.video.report import write_report

    started = time.perf_counter()
    if getattr(args, "keypoints", None):
        raise ConfigError("--keypoints is for images; videos are detected with MediaPipe in video mode")
    videos, problems = collect_videos(inputs)
    for problem in problems:
        print(f"hmr-fit: error: {problem}", file=sys.stderr)
    if not videos:
        raise InputError(problems[0] if problems else "no input videos")
    output = Path(getattr(args, "output", None) or cfg.output)
    output.mkdir(parents=True, exist_ok=True)
    device = str(getattr(args, "device", None) or cfg.device)
    cfg_dict = OmegaConf.to_container(cfg, resolve=True)
    cfg_dict["video"] = video_config(cfg)
    engine_kw = dict(cfg_dict["video"].get("engine", {}))
    jobs = plan_jobs(videos, inputs, output)
    factory = functools.partial(build_runner, cfg_dict, getattr(args, "model", None), device)

    results = run_batch(jobs, factory, **engine_kw)

    failed = [r for r in results if r.status == "failed"]
    for r in results:
        for w in r.warnings if r.status == "done" else []:
            print(f"hmr-fit: warning: {w}", file=sys.stderr)
    report = write_report(output, [{"video": r.video, "error": r.error} for r in failed],
                          max_quality=float(cfg.fit.get("max_quality", 0.08)))
    done = sum(r.status == "done" for r in results)
    skipped = sum(r.status == "skipped" for r in results)
    frames = sum(r.frames for r in results if r.status == "done")
    print(f"hmr-fit: {len(results)} video(s): {done} done ({frames} frames), {skipped} skipped (finished before), "
          f"{len(failed)} failed; outputs in {output}, report {report} ({time.perf_counter() - started:.1f} s)",
          flush=True)
    if failed:
        print(f"hmr-fit: {len(failed)} video(s) failed:", file=sys.stderr)
        for r in failed:
            print(f"hmr-fit: error: {r.video}: {r.error}", file=sys.stderr)
    return EXIT_SOME_FAILED if failed or problems else EXIT_OK
