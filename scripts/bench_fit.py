"""Benchmark the image job per stage: detection, fitting, rendering, export; 1 and 8 people; CPU.

    python scripts/bench_fit.py [--optims lbfgs adam lsr1] [--repeats 3]

Prints markdown tables: per-stage milliseconds (warm: models and renderer already loaded), fitting time per
person for each optimizer with the reprojection quality it reached (ratios against L-BFGS in the same run),
peak RSS, and the wall time of a cold `hmr-fit image.png` process.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("PYOPENGL_PLATFORM", "egl")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from hydra.utils import instantiate  # noqa: E402
from PIL import Image  # noqa: E402

from hmr_fit.body import BodyModel  # noqa: E402
from hmr_fit.cli.images import ImageJob, detect_people, fit_people  # noqa: E402
from hmr_fit.cli.main import build_fitter, compose_config  # noqa: E402
from hmr_fit.cli.outputs import write_outputs  # noqa: E402
from hmr_fit.keypoints import Person  # noqa: E402


def make_images(folder: Path) -> dict[str, Path]:
    """The astronaut (512x512), two astronauts side by side with a gap (MediaPipe's single-shot detector misses
    people smaller than about a fifth of the image, so more people need a bigger picture), and a blank 2048x1024
    canvas for eight people whose keypoints are copies of the astronaut's detection, shrunk and spread out."""
    from skimage import data

    one = data.astronaut()
    paths = {"1 person": folder / "one.png", "2 people": folder / "two.png", "8 people": folder / "eight.png"}
    Image.fromarray(one).save(paths["1 person"])
    two = np.full((512, 2 * 512 + 96, 3), 255, np.uint8)
    two[:, :512], two[:, 512 + 96:] = one, one
    Image.fromarray(two).save(paths["2 people"])
    Image.fromarray(np.full((1024, 2048, 3), 200, np.uint8)).save(paths["8 people"])
    return paths


def eight_people(person: Person) -> list[Person]:
    """Eight copies of a detected person at half size on the 2048x1024 canvas, in a 4x2 grid."""
    people = []
    for i in range(8):
        r, c = divmod(i, 4)
        offset = np.array([c * 512.0, r * 512.0])
        people.append(dataclasses.replace(person, keypoints=person.keypoints * 0.5 + offset,
                                          bbox=person.bbox * 0.5 + np.tile(offset, 2)))
    return people


def timed(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def fitter_for(body, optim: str):
    """The CLI's fitter with this optimizer: the learned preset with its default 20 steps (and L-BFGS fallback),
    classical optimizers with fit=thorough (100 steps, no fallback)."""
    overrides = [f"optim={optim}"] + ([] if optim.startswith("lsr1_hmr") else ["fit=thorough"])
    return build_fitter(compose_config(overrides), body)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--optims", nargs="+", default=["lsr1_hmr", "lbfgs", "adam", "sr1"])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    cfg = compose_config([])
    body = BodyModel()
    folder = Path(tempfile.mkdtemp(prefix="hmr_fit_bench_"))
    images = make_images(folder)
    print(f"# bench_fit: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, 1 torch thread, "
          f"{time.strftime('%Y-%m-%d')}, load average {os.getloadavg()[0]:.1f}")
    print("\n| image | people fitted | detect ms (8 people: keypoints given) | fit ms (total) | fit ms per person | render+export ms |")
    print("|---|---|---|---|---|---|")
    fitter = fitter_for(body, args.optims[0])
    with instantiate(cfg.keypoints, _convert_="all") as detector:
        astronaut = [ImageJob(images["1 person"])]
        detect_people(astronaut, detector, None)
        for label, path in images.items():
            jobs = [ImageJob(path)]
            if label == "8 people":
                jobs[0].size, jobs[0].people = (2048, 1024), eight_people(astronaut[0].people[0])
                t_detect = float("nan")
            else:
                detect_people(jobs, detector, None)  # warm-up
                t_detect = timed(lambda: detect_people([ImageJob(path)], detector, None), args.repeats)

            def fit_once():
                for job in jobs:
                    job.fits = []
                fit_people(jobs, fitter, 64)

            fit_once()
            t_fit = timed(fit_once, args.repeats)
            out = folder / "out"
            write_outputs(jobs, body, cfg, out)  # warm-up (GL context, shaders)
            t_write = timed(lambda: write_outputs(jobs, body, cfg, out), args.repeats)
            n = max(1, len(jobs[0].fits))
            print(f"| {label} | {len(jobs[0].fits)} | {t_detect * 1e3:.0f} | {t_fit * 1e3:.0f} | "
                  f"{t_fit * 1e3 / n:.0f} | {t_write * 1e3:.0f} |", flush=True)
            if label == "8 people":
                eight = jobs

    print(f"\n| optimizer | fit ms per person (8 in a batch) | ratio vs {args.optims[0]} | median keypoint error, % of size "
          "| evaluations |")
    print("|---|---|---|---|---|")
    base, jobs = None, eight
    for optim in args.optims:
        fitter = fitter_for(body, optim)

        def fit_once():
            jobs[0].fits = []
            fit_people(jobs, fitter, 64)

        fit_once()
        t = timed(fit_once, args.repeats) / max(1, len(jobs[0].fits))
        base = base or t
        quality = np.median([f["quality"] for f in jobs[0].fits]) * 100
        evals = np.mean([f["evaluations"] for f in jobs[0].fits])
        print(f"| {optim} | {t * 1e3:.0f} | {t / base:.2f}x | {quality:.2f} | {evals:.0f} |", flush=True)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak RSS of this process: {peak_mb:.0f} MB")

    exe = Path(sys.executable).with_name("hmr-fit")
    for label in ("1 person", "2 people"):
        path = images[label]
        t = time.perf_counter()
        result = subprocess.run([str(exe), str(path), "-o", str(folder / "cold")], capture_output=True, text=True)
        wall = time.perf_counter() - t
        child_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print(f"cold `hmr-fit` on {label}: {wall:.1f} s wall, exit {result.returncode}, peak RSS {child_mb:.0f} MB")


if __name__ == "__main__":
    main()
