"""Video pipeline throughput on CPU (or --device cuda): frames/s end to end and per stage (decode, detect, fit,
render, write) at 640x360 and 1280x720 with 1 and 2 people; warm-started vs cold steps; peak memory vs video length.

Test clips: scikit-image's astronaut (waist-up) pasted at 85% of the frame height, sliding 2 px per frame; with 2
people a second, mirrored copy slides the other way. Each configuration runs in a fresh subprocess (clean peak RSS).

    python scripts/bench_video.py                      # the table of docs/benchmarks.md
    python scripts/bench_video.py --frames 60 --device cuda
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def make_clip(path: Path, width: int, height: int, frames: int, people: int) -> None:
    import cv2
    from skimage import data

    s = int(height * 0.85)
    person = cv2.resize(data.astronaut(), (s, s), interpolation=cv2.INTER_AREA)
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (width, height))
    for t in range(frames):
        img = np.full((height, width, 3), 90, np.uint8)
        xs = [width // 2 - s // 2 + 2 * (t % 40) - 40] if people == 1 else [8 + (t % 20), width - s - 8 - (t % 20)]
        for k, x in enumerate(xs):
            img[height - s:, x:x + s] = person if k == 0 else person[:, ::-1]
        vw.write(cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    vw.release()


def _cpu_seconds() -> float:
    """User + system CPU time of this process, all threads: a load-independent cost measure on a shared machine."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def run_one(width: int, height: int, frames: int, people: int, render: bool, device: str) -> dict:
    import torch

    from hmr_fit.cli.main import compose_config
    from hmr_fit.cli.videos import build_runner, video_config
    from omegaconf import OmegaConf

    torch.set_num_threads(1)
    tmp = Path(tempfile.mkdtemp())
    clip = tmp / "clip.mp4"
    make_clip(clip, width, height, frames, people)
    cfg = compose_config([f"keypoints.num_poses={max(people, 1)}"])
    cfg_dict = OmegaConf.to_container(cfg, resolve=True)
    cfg_dict["video"] = video_config(cfg)
    cfg_dict["video"]["runner"].update(overlay_video=render, progress=False)
    t0 = time.perf_counter()
    runner = build_runner(cfg_dict, None, device)
    setup = time.perf_counter() - t0
    t0, cpu0 = time.perf_counter(), _cpu_seconds()
    result = runner.process(clip, tmp / "out")
    wall, cpu = time.perf_counter() - t0, _cpu_seconds() - cpu0
    if result.status != "done":
        return {"error": result.error}
    s = json.loads((tmp / "out" / "summary.json").read_text())
    fitted = sum(t["frames"] for t in s["tracks"].values())
    return {"width": width, "height": height, "frames": frames, "people": people, "render": render,
            "setup_s": round(setup, 2), "cpu_ms_per_frame": round(1000 * cpu / frames, 1),
            "load_average": round(__import__("os").getloadavg()[0], 2), "wall_s": round(wall, 2), "fps_end_to_end": round(frames / wall, 2),
            "people_per_frame": round(fitted / frames, 2), "accepted": sum(t["accepted"] for t in s["tracks"].values()),
            "stage_s": s["seconds"], "stage_fps": s["frames_per_second"], "steps": s["steps"],
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=30)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--one", help=argparse.SUPPRESS)  # internal: "W,H,frames,people,render"
    ap.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = ap.parse_args()
    if args.one:
        w, h, n, p, r = args.one.split(",")
        print(json.dumps(run_one(int(w), int(h), int(n), int(p), r == "1", args.device)))
        return
    configs = [(640, 360, args.frames, 1, 1), (640, 360, args.frames, 1, 0), (640, 360, args.frames, 2, 1),
               (1280, 720, args.frames, 1, 1), (1280, 720, args.frames, 2, 1),
               (640, 360, args.frames * 4, 1, 0)]  # memory vs length: 4x the frames, same peak RSS expected
    results = []
    for cfg in configs:
        cmd = [sys.executable, __file__, "--one", ",".join(map(str, cfg)), "--device", args.device]
        out = subprocess.run(cmd, capture_output=True, text=True)
        line = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else json.dumps({"error": out.stderr[-500:]})
        res = json.loads(line)
        results.append(res)
        if "error" in res:
            print(cfg, "error:", res["error"], flush=True)
            continue
        st = res["steps"]
        print(f"{res['width']}x{res['height']} people={res['people']} render={res['render']} frames={res['frames']}: "
              f"{res['fps_end_to_end']} frames/s end to end, {res['cpu_ms_per_frame']} CPU ms/frame (load "
              f"{res['load_average']}); per stage frames/s {res['stage_fps']}; warm steps "
              f"{st['warm_steps_mean']} (evals {st['warm_evaluations_mean']}) vs cold {st['cold_steps_mean']} "
              f"(evals {st['cold_evaluations_mean']}); people/frame {res['people_per_frame']}; peak RSS "
              f"{res['peak_rss_mb']} MB", flush=True)
    if args.out:
        args.out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
