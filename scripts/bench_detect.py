#!/usr/bin/env python3
"""Benchmark offline MediaPipe pose detection (CPU): ms per image at 512 px and 1080 px, 1 and 2 people.

Scenes are built from scikit-image's bundled photos (astronaut, public domain): one person, or two people
set apart (MediaPipe suppresses people whose body regions overlap). Each scene is scaled so its longer side
is 512 or 1080 px. Usage: ``python scripts/bench_detect.py [--repeats 10] [--markdown docs/benchmarks.md]``.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import time

import cv2
import numpy as np
import skimage.data

from hmr_fit.keypoints.detect import PoseDetector


def scene(n_people: int) -> np.ndarray:
    a = skimage.data.astronaut()
    if n_people == 1:
        return a
    gap = np.full((512, 256, 3), 128, np.uint8)
    parts = [a]
    for i in range(1, n_people):
        parts += [gap, a[:, ::-1] if i % 2 else a]
    return np.ascontiguousarray(np.concatenate(parts, axis=1))


def fit_side(img: np.ndarray, side: int) -> np.ndarray:
    h, w = img.shape[:2]
    f = side / max(h, w)
    interp = cv2.INTER_AREA if f < 1 else cv2.INTER_CUBIC
    return cv2.resize(img, (round(w * f), round(h * f)), interpolation=interp)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--model-path", default=None, help="default: the shipped pose_landmarker_full.task")
    ap.add_argument("--markdown", default=None, help="also write the table to this Markdown file")
    ap.add_argument("--note", default="", help="machine description for the Markdown file")
    args = ap.parse_args()

    rows = []

    def bench(det, img, n, max_side):
        found = len(det.detect(img))  # warm-up
        times = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            det.detect(img)
            times.append((time.perf_counter() - t) * 1e3)
        rows.append((f"{img.shape[1]}x{img.shape[0]}", n, found, max_side or "off", statistics.median(times),
                     min(times), max(times)))

    with PoseDetector(model_path=args.model_path, num_poses=4, max_side=None) as det:
        for side in (512, 1080):
            for n in (1, 2):
                bench(det, fit_side(scene(n), side), n, None)
        huge = fit_side(scene(1), 4032)  # a 12-megapixel photo, detected at full size ...
        bench(det, huge, 1, None)
    with PoseDetector(model_path=args.model_path, num_poses=4) as det:  # ... and downscaled (default 1920)
        bench(det, huge, 1, det.max_side)
    head = ("| image (WxH) | people in scene | people found | max_side | median ms | min ms | max ms |\n"
            "|---|---|---|---|---|---|---|")
    lines = [head] + [f"| {r[0]} | {r[1]} | {r[2]} | {r[3]} | {r[4]:.1f} | {r[5]:.1f} | {r[6]:.1f} |" for r in rows]
    table = "\n".join(lines)
    print(table)
    if args.markdown:
        import mediapipe

        md = (f"## Pose detection (scripts/bench_detect.py)\n\n"
              f"MediaPipe {mediapipe.__version__} Tasks PoseLandmarker, `pose_landmarker_full.task`, image mode, "
              f"num_poses=4, CPU, {args.repeats} timed calls after one warm-up per row. "
              f"Date {datetime.date.today().isoformat()}; {platform.machine()}, {os.cpu_count()} CPUs. "
              f"{args.note}\n\n{table}\n")
        with open(args.markdown, "w") as f:
            f.write(md)


if __name__ == "__main__":
    main()
