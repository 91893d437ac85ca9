"""``hmr-fit``: fit 3D body meshes to the people in photos.

Reads top to bottom: config -> body model -> keypoints (detector or file) -> fit all people in batches ->
render -> export -> summary and exit code.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from hmr_fit import __version__
from hmr_fit.cli.errors import EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE, report
from hmr_fit.errors import ConfigError, HmrFitError, InputError

DESCRIPTION = """Recover a 3D body mesh (SMPL format) for every person in images and videos: MediaPipe finds 2D
keypoints (or --keypoints gives them), a body model is fitted to them, and meshes, parameters and overlays are
written. Videos (and folders of videos) are tracked, warm-started and resumable. Runs offline on the shipped open body
model. key=value arguments override the config, e.g. optim=adam fit.steps=100 output=out/."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hmr-fit", description=DESCRIPTION)
    parser.add_argument("inputs", nargs="*", metavar="INPUT",
                        help="images, videos or folders of them; key=value items are config overrides")
    parser.add_argument("--model", help="SMPL-format model file (.pkl/.npz); default: the shipped open model")
    parser.add_argument("--keypoints", help="keypoint JSON (OpenPose BODY_25 or COCO) instead of running MediaPipe")
    parser.add_argument("--device", default=None, help="torch device, e.g. cpu or cuda (default: config 'device')")
    parser.add_argument("-o", "--output", default=None, help="output folder (default: config 'output')")
    parser.add_argument("--show-config", action="store_true", help="print the composed config and exit")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    parser.add_argument("--version", action="version", version=f"hmr-fit {__version__}")
    return parser


def split_inputs(items: list[str]) -> tuple[list[str], list[str]]:
    """Separate config overrides (key=value, not an existing path) from input paths."""
    overrides, inputs = [], []
    for item in items:
        (overrides if "=" in item and not Path(item).exists() else inputs).append(item)
    return overrides, inputs


def compose_config(overrides: list[str]):
    from hydra import compose, initialize_config_module
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    try:
        with initialize_config_module(config_module="hmr_fit.configs", version_base="1.3"):
            return compose(config_name="config", overrides=overrides)
    except (HydraException, OmegaConfBaseException) as exc:
        raise ConfigError(f"bad config override ({' '.join(overrides)}): {str(exc).splitlines()[0]}") from exc


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_intermixed_args(argv)
    os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
    try:
        overrides, inputs = split_inputs(args.inputs)
        cfg = compose_config(overrides)
        if args.show_config:
            from omegaconf import OmegaConf

            print(OmegaConf.to_yaml(cfg))
            return EXIT_OK
        if not inputs:
            build_parser().print_usage(sys.stderr)
            print("hmr-fit: error: give at least one image or folder", file=sys.stderr)
            return EXIT_USAGE
        from hmr_fit.video.reader import has_videos

        if has_videos(inputs):
            from hmr_fit.cli.videos import run_videos

            return run_videos(cfg, inputs, args)
        return run(cfg, inputs, args)
    except HmrFitError as exc:
        return report(exc, debug=args.debug)
    except KeyboardInterrupt:
        print("hmr-fit: interrupted; finished outputs are kept", file=sys.stderr)
        return 130


def run(cfg, inputs: list[str], args) -> int:
    import torch
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from hmr_fit.body import BodyModel
    from hmr_fit.cli.images import ImageJob, collect_images, detect_people, fit_people, log, summary_line
    from hmr_fit.cli.outputs import write_outputs
    started = time.perf_counter()
    images, problems = collect_images(inputs)
    for problem in problems:
        print(f"hmr-fit: error: {problem}", file=sys.stderr)
    if not images:
        raise InputError(problems[0] if problems else "no input images")
    device = torch.device(args.device or cfg.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"--device {device} requested but CUDA is not available; use --device cpu")
    output = Path(args.output or cfg.output)
    if device.type == "cpu" and int(cfg.cpu_threads) > 0:
        torch.set_num_threads(int(cfg.cpu_threads))

    # Body model, energy, optimizers, fitter: built once.
    body_cfg = OmegaConf.to_container(cfg.body, resolve=False)
    body_cfg.pop("_target_", None)
    if args.model:
        body_cfg["model_path"] = args.model
    if body_cfg.get("model_path") == "???":
        raise ConfigError("body=smpl needs a model file: pass --model /path/to/SMPL_NEUTRAL.pkl")
    body = BodyModel(**body_cfg).to(device)
    fitter = build_fitter(cfg, body)

    # Keypoints: from a file, or MediaPipe (loaded once for all images).
    jobs = [ImageJob(path) for path in images]
    if args.keypoints:
        loader_cfg = cfg.keypoints if str(cfg.keypoints.get("_target_", "")).endswith("KeypointLoader") \
            else OmegaConf.load(_config_file("keypoints/json.yaml"))
        detect_people(jobs, None, instantiate(loader_cfg, _convert_="all").load(args.keypoints))
    else:
        with instantiate(cfg.keypoints, _convert_="all") as detector:
            detect_people(jobs, detector, None)

    fit_people(jobs, fitter, int(cfg.batch_size))
    write_outputs(jobs, body, cfg, output)
    for job in jobs:
        log(summary_line(job))
    failed = [job for job in jobs if job.error is not None]
    fitted = sum(f["accepted"] for job in jobs for f in job.fits)
    log(f"hmr-fit: {len(jobs)} image(s), {fitted} people fitted, {len(failed)} failed; outputs in {output} "
        f"({time.perf_counter() - started:.1f} s)")
    if failed or problems:
        if len(jobs) == 1 and failed:
            print(f"hmr-fit: error: {failed[0].error}", file=sys.stderr)
        return EXIT_SOME_FAILED
    return EXIT_OK


def build_fitter(cfg, body):
    """Pose prior -> energy -> optimizer -> fitter, from the config groups, on the body's device and dtype."""
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from hmr_fit.fit.energy import prior_terms
    from hmr_fit.fit.initialize import standing_pose
    from hmr_fit.optim import optimizer_from_config

    prior = instantiate(cfg.prior, dtype=body.v_template.dtype).to(body.v_template.device)
    energy = instantiate(cfg.energy, body=body, pose_terms=prior_terms(prior), _convert_="all")
    optimizer = optimizer_from_config(OmegaConf.to_container(cfg.optim, resolve=True))
    fit_cfg = OmegaConf.to_container(cfg.fit, resolve=True)
    init = fit_cfg.pop("init_pose", "standing")
    starts = {"standing": lambda: standing_pose(body.v_template.dtype), "prior_mean": prior.most_likely_pose,
              "zero": lambda: None}
    if init not in starts:
        raise ConfigError(f"fit.init_pose must be one of {', '.join(starts)}, got '{init}'")
    init_pose = starts[init]()
    stage1 = fit_cfg.pop("stage1_optim", None)
    stage1_optimizer = optimizer_from_config({"name": stage1}) if stage1 else None
    fallback = fit_cfg.pop("fallback_optim", None)
    fallback_optimizer = optimizer_from_config({"name": fallback}) if fallback else None
    return instantiate(fit_cfg, body=body, energy=energy, optimizer=optimizer, init_pose=init_pose,
                       stage1_optimizer=stage1_optimizer, fallback_optimizer=fallback_optimizer)


def _config_file(relative: str) -> Path:
    from hmr_fit.assets import config_dir

    return config_dir() / relative


if __name__ == "__main__":
    sys.exit(main())
