"""Benchmark our LBS against smplx.SMPL on the same model file: forward and forward+backward, CPU (and CUDA).

    python scripts/bench_body.py [--model FILE] [--batches 1 64 1024] [--threads 2] [--device cpu cuda]

Prints a markdown table; ratios are smplx time / our time, measured in the same run with the calls interleaved.
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import torch

from hmr_fit.body import BodyModel, read_model_file


def smplx_from_file(path, num_betas: int, dtype):
    import smplx
    from smplx.utils import Struct

    arrays = read_model_file(path)
    if "posedirs" not in arrays:
        arrays["posedirs"] = np.zeros((arrays["v_template"].shape[0], 3, 207))
    return smplx.SMPL(model_path=str(path), data_struct=Struct(**arrays), num_betas=num_betas, dtype=dtype)


def timed_together(fns, device: str, min_time: float = 2.0, max_reps: int = 40) -> list[float]:
    """Median seconds per call of each function, calls interleaved (a, b, c, a, b, c, ...) so that a shared
    machine's changing load hits all of them alike; one warm-up call each."""
    for fn in fns:
        fn()
    times = [[] for _ in fns]
    start = time.perf_counter()
    while (time.perf_counter() - start < min_time or len(times[0]) < 5) and len(times[0]) < max_reps:
        for fn, record in zip(fns, times):
            t = time.perf_counter()
            fn()
            if device == "cuda":
                torch.cuda.synchronize()
            record.append(time.perf_counter() - t)
    return [float(np.median(t)) for t in times]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 64, 1024])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", nargs="+", default=["cpu"] + (["cuda"] if torch.cuda.is_available() else []))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    ours_cpu = BodyModel(args.model)
    print(f"model: {ours_cpu.name} (V={ours_cpu.num_vertices}), torch {torch.__version__}, "
          f"{platform.processor() or platform.machine()}, {args.threads} threads")
    print("| device | batch | pass | smplx ms | ours ms | ratio | ours joints+keypoints only ms | ratio |")
    print("|---|---|---|---|---|---|---|---|")
    for device in args.device:
        ours = BodyModel(args.model).to(device)
        ref = smplx_from_file(ours.model_path, ours.num_betas, torch.float32).to(device)
        for batch in args.batches:
            g = torch.Generator().manual_seed(0)
            inputs = [torch.randn(batch, ours.num_betas, generator=g), 0.3 * torch.randn(batch, 69, generator=g),
                      0.3 * torch.randn(batch, 3, generator=g), torch.randn(batch, 3, generator=g)]
            inputs = [t.to(device) for t in inputs]

            def run_smplx(backward: bool):
                b, p, o, t = [x.clone().requires_grad_(backward) for x in inputs]
                out = ref(betas=b, body_pose=p, global_orient=o, transl=t)
                if backward:
                    (out.vertices.square().sum() + out.joints[:, :24].square().sum()).backward()

            def run_ours(backward: bool, vertices: bool = True):
                b, p, o, t = [x.clone().requires_grad_(backward) for x in inputs]
                out = ours(b, p, o, t, return_vertices=vertices)
                if backward:
                    loss = out.joints.square().sum() + out.keypoints.square().sum()
                    if vertices:
                        loss = loss + out.vertices.square().sum()
                    loss.backward()

            for backward in (False, True):
                ctx = torch.enable_grad() if backward else torch.no_grad()
                with ctx:
                    t_ref, t_ours, t_kp = timed_together([lambda: run_smplx(backward), lambda: run_ours(backward),
                                                          lambda: run_ours(backward, vertices=False)], device)
                name = "fwd+bwd" if backward else "fwd"
                print(f"| {device} | {batch} | {name} | {t_ref * 1e3:.2f} | {t_ours * 1e3:.2f} | {t_ref / t_ours:.2f}x "
                      f"| {t_kp * 1e3:.2f} | {t_ref / t_kp:.1f}x |", flush=True)


if __name__ == "__main__":
    main()
