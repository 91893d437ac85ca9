"""Where the videos of a batch run: in this process (``local``, the default, no Ray needed) or as Ray tasks on a
local or existing Ray cluster (``ray``; optional extra ``pip install hmr-fit[ray]``).

Both engines take the same jobs, ``(video, output folder)`` pairs, and a ``factory``: a picklable callable that
builds a :class:`hmr_fit.video.runner.VideoRunner` (e.g. ``functools.partial`` of a module-level function). The
local engine calls it once; each Ray worker calls it once per process and reuses the runner for its later tasks.
Every video is processed by ``VideoRunner.process``, so both engines write identical files. On a cluster the output
folder must be on a file system all nodes share.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Sequence

from hmr_fit.errors import ConfigError
from hmr_fit.video.runner import VideoResult

__all__ = ["ENGINES", "run_batch"]

ENGINES = ("local", "ray")

Job = tuple[str, str]


def run_batch(jobs: Sequence[Job], factory: Callable[[], Any], engine: str = "local", address: str | None = None,
              gpus_per_task: float | str = "auto", cpus_per_task: float = 1.0, progress: bool = True,
              on_result: Callable[[VideoResult], None] | None = None) -> list[VideoResult]:
    """Process every job; returns one :class:`VideoResult` per job, in job order.

    Args:
        jobs: ``(video path, output folder)`` pairs.
        factory: builds the runner (called in the process that fits).
        engine: "local" or "ray".
        address: Ray only: cluster address (``ray://head:10001``, ``auto``, ``host:6379``); None starts a local
            Ray instance (or joins the one ``RAY_ADDRESS`` names).
        gpus_per_task: Ray only: GPUs reserved per video task; "auto" = 1 when the driver sees CUDA or the cluster
            has GPUs, else 0.
        cpus_per_task: Ray only: CPUs reserved per task.
        progress: show an overall tqdm bar.
        on_result: called with each result as it arrives (in completion order).
    Raises:
        ConfigError: unknown engine, or engine=ray without Ray installed.
    """
    if engine not in ENGINES:
        raise ConfigError(f"unknown video engine '{engine}'; use one of {', '.join(ENGINES)}")
    from tqdm import tqdm

    bar = tqdm(total=len(jobs), desc="videos", unit="video", disable=not progress, dynamic_ncols=True)
    try:
        if engine == "local":
            return _run_local(jobs, factory, bar, on_result)
        return _run_ray(jobs, factory, address, gpus_per_task, cpus_per_task, bar, on_result)
    finally:
        bar.close()


def _run_local(jobs, factory, bar, on_result) -> list[VideoResult]:
    runner = factory() if jobs else None
    results = []
    for video, out_dir in jobs:
        result = runner.process(video, out_dir)
        results.append(result)
        bar.update(1)
        if on_result is not None:
            on_result(result)
    return results


_WORKER_RUNNERS: dict[str, Any] = {}


def _process_in_worker(factory, video: str, out_dir: str) -> dict:
    """Body of a Ray task: build (once per worker process and factory) and run."""
    key = repr(factory)
    runner = _WORKER_RUNNERS.get(key)
    if runner is None:
        runner = _WORKER_RUNNERS[key] = factory()
    return runner.process(video, out_dir).to_dict()


def _run_ray(jobs, factory, address, gpus_per_task, cpus_per_task, bar, on_result) -> list[VideoResult]:
    try:
        import ray
    except ImportError as exc:
        raise ConfigError("video.engine.engine=ray needs Ray: pip install 'hmr-fit[ray]' (ray==2.60.0), or use "
                          "video.engine.engine=local") from exc
    started_here = False
    if not ray.is_initialized():
        kwargs: dict[str, Any] = {"address": address} if address else {}
        if not address and not os.environ.get("RAY_ADDRESS"):
            kwargs.update(include_dashboard=False, num_cpus=max(1, os.cpu_count() or 1))
        # Workers import hmr_fit from the same installation/working tree as the driver.
        kwargs["runtime_env"] = {"env_vars": {"PYOPENGL_PLATFORM": os.environ.get("PYOPENGL_PLATFORM", "egl")}}
        ray.init(log_to_driver=False, **kwargs)
        started_here = True
    try:
        gpus = _gpus(gpus_per_task, ray)
        task = ray.remote(num_cpus=float(cpus_per_task), num_gpus=gpus, max_retries=1)(_process_in_worker)
        factory_ref = ray.put(factory)
        pending = {task.remote(factory_ref, str(v), str(o)): i for i, (v, o) in enumerate(jobs)}
        results: list[VideoResult | None] = [None] * len(jobs)
        waiting = list(pending)
        while waiting:
            done, waiting = ray.wait(waiting, num_returns=1)
            for ref in done:
                i = pending[ref]
                try:
                    result = VideoResult(**ray.get(ref))
                except Exception as exc:  # noqa: BLE001 - a crashed worker fails its video only
                    video, out_dir = jobs[i]
                    result = VideoResult(str(video), str(out_dir), "failed",
                                         error=f"Ray task failed: {str(exc).splitlines()[0] if str(exc) else exc!r}")
                results[i] = result
                bar.update(1)
                if on_result is not None:
                    on_result(result)
        return [r for r in results if r is not None]
    finally:
        if started_here:
            ray.shutdown()


def _gpus(gpus_per_task: float | str, ray) -> float:
    if gpus_per_task != "auto":
        value = float(gpus_per_task)
        if value < 0:
            raise ConfigError(f"video.engine.gpus_per_task must be >= 0 or 'auto', got {gpus_per_task}")
        return value
    if ray.cluster_resources().get("GPU", 0) > 0:
        return 1.0
    return 0.0

