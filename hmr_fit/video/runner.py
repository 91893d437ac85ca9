"""Resumable fitting of videos: decode -> detect (video mode) -> track -> fit chunks of frames x people -> render
-> write, one video at a time, three threads overlapping.

Per video, in its own output folder (every file written atomically; ``summary.json`` last, so its presence means
the video is finished and a rerun skips it):

    params.npz       per track ``track<i>_<field>``: frames (T,), betas (S,) shared by the track, betas_per_frame
                     (T, S), body_pose (T, J-1, 3), global_orient (T, 3), transl (T, 3) metres, camera (T, 4)
                     fx fy cx cy, quality (T,), reprojection_error_px (T,), accepted (T,), warm (T,), steps (T,),
                     keypoints (T, K, 2), confidence (T, K); plus ``track_ids`` (N,), ``image_size`` (2,) H W,
                     ``fps`` ().
    params.json      per track: first/last frame, frames fitted, accepted, quality statistics, shared betas.
    overlay.mp4      the meshes over the video (mp4v), each track in its own colour; optional.
    meshes/          ``f<frame>_t<track>.<fmt>`` per frame and person; optional.
    thumbnail.jpg    one overlay frame, for ``report.html``.
    summary.json     video facts, per-stage timings, warm vs cold step counts, per-frame quality per track,
                     frames without a person.

Threads: a decoding thread (``reader.prefetch``) decodes and detects ``queue_size`` frames ahead (the detector is
used by that thread only); the main thread tracks and fits; a render thread owns the OpenGL context and the ``cv2.VideoWriter``. Memory is bounded by the queues and
one chunk of frames, not by the video's length.

Fitting (see ``smooth.py``): a chunk of ``chunk_frames`` frames is fitted as batches of up to ``batch_size``
people. A track's first frame gets a cold fit (stage 1 orientation search + ``Fitter.steps``); every later frame
is warm-started from the track's last accepted fit and runs ``warm_steps``, pulled towards it by the temporal term
and towards the track's mean shape; ``smooth_passes`` block-Jacobi passes of ``smooth_steps`` then pull each
frame towards its neighbours. A warm fit that is not accepted is refitted cold (``cold_refit``).
"""

from __future__ import annotations

import json
import math
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from hmr_fit.errors import HmrFitError, InputError, NoPersonError
from hmr_fit.fit.camera import Camera
from hmr_fit.fit.fitter import Fitter, FitResult
from hmr_fit.io.atomic import TMP_SUFFIX, write_bytes, write_json, write_npz
from hmr_fit.video.reader import VideoReader, prefetch
from hmr_fit.video.sink import _RenderSink
from hmr_fit.video.smooth import ShapeAverage, TemporalEnergy, neighbour_reference, shifted_start
from hmr_fit.video.track import Tracker

__all__ = ["VideoRunner", "VideoResult", "SUMMARY_FILE", "STAGES"]

SUMMARY_FILE = "summary.json"
SUMMARY_VERSION = 1
STAGES = ("decode", "detect", "fit", "render", "write")


@dataclass
class VideoResult:
    """What happened to one video: ``status`` is "done", "skipped" (finished by an earlier run) or "failed"."""

    video: str
    output: str
    status: str
    error: str | None = None
    frames: int = 0
    tracks: int = 0
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class _Entry:
    """One person in one frame of the current chunk."""

    frame: int
    track: int
    keypoints: np.ndarray
    confidence: np.ndarray
    record: dict[str, Any] | None = None
    x: torch.Tensor | None = None


class _Timer:
    def __init__(self) -> None:
        self.seconds = {s: 0.0 for s in STAGES}
        self.lock = threading.Lock()

    def add(self, stage: str, dt: float) -> None:
        with self.lock:
            self.seconds[stage] += dt


class VideoRunner:
    """Fits the people of videos; one runner serves many videos (sequentially), one video at a time.

    Args:
        body: the body model (``hmr_fit.body.BodyModel``) on the fitting device.
        fitter: the image ``Fitter`` (cold fits: stage 1 + ``steps``); its energy, optimizer and thresholds are
            reused for warm fits.
        detector_factory: returns a new video-mode ``PoseDetector`` (one per video: timestamps restart at 0).
        renderer_factory: returns a new ``Renderer`` (created in the render thread); None disables rendering.
        tracker_factory: returns a new ``Tracker`` (default ``Tracker()``).
        batch_size: most people (frames x people) per fitting batch.
        chunk_frames: frames fitted together; larger chunks give larger batches and longer warm-start gaps.
        warm_steps: optimizer steps of a warm-started fit.
        smooth_passes: block-Jacobi smoothing passes per chunk (0: none).
        smooth_steps: optimizer steps per smoothing pass.
        temporal_weight: weight of the temporal term (0: warm start without smoothness).
        track_shape_weight: weight pulling each frame's betas to the track's mean betas.
        cold_refit: refit a rejected warm fit from scratch.
        overlay_video: write ``overlay.mp4`` (needs a renderer).
        meshes: write per-frame meshes.
        mesh_format: obj | ply | glb.
        fps: frame rate for image sequences, or to override the file's (null: the file's, sequences 30).
        max_frames: process at most this many frames per video (null: all).
        queue_size: decoded frames buffered ahead, and rendered frames buffered behind.
        thumbnail_width: width of ``thumbnail.jpg``, pixels.
        progress: show a tqdm bar per video.
    """

    def __init__(self, body, fitter: Fitter, detector_factory: Callable[[], Any],
                 renderer_factory: Callable[[], Any] | None = None, tracker_factory: Callable[[], Tracker] | None = None,
                 batch_size: int = 64, chunk_frames: int = 16, warm_steps: int = 10, smooth_passes: int = 1,
                 smooth_steps: int = 3, temporal_weight: float = 0.02, track_shape_weight: float = 0.05,
                 cold_refit: bool = True, overlay_video: bool = True, meshes: bool = False, mesh_format: str = "obj",
                 fps: float | None = None, max_frames: int | None = None, queue_size: int = 16,
                 thumbnail_width: int = 320, progress: bool = True) -> None:
        for name, v, lo in (("batch_size", batch_size, 1), ("chunk_frames", chunk_frames, 1),
                            ("warm_steps", warm_steps, 0), ("smooth_passes", smooth_passes, 0),
                            ("smooth_steps", smooth_steps, 0), ("queue_size", queue_size, 1),
                            ("thumbnail_width", thumbnail_width, 16)):
            if int(v) != v or v < lo:
                raise ValueError(f"Invalid {name}: {v} (must be an int >= {lo})")
        if mesh_format not in ("obj", "ply", "glb"):
            raise ValueError(f"Invalid mesh_format: {mesh_format!r} (obj, ply or glb)")
        self.body, self.fitter = body, fitter
        self.detector_factory, self.renderer_factory = detector_factory, renderer_factory
        self.tracker_factory = tracker_factory or Tracker
        self.batch_size, self.chunk_frames = int(batch_size), int(chunk_frames)
        self.smooth_passes, self.smooth_steps = int(smooth_passes), int(smooth_steps)
        self.cold_refit, self.overlay_video, self.meshes = bool(cold_refit), bool(overlay_video), bool(meshes)
        self.mesh_format, self.fps, self.max_frames = mesh_format, fps, max_frames
        self.queue_size, self.thumbnail_width, self.progress = int(queue_size), int(thumbnail_width), bool(progress)
        self.energy = TemporalEnergy(fitter.energy, temporal=temporal_weight, track_shape=track_shape_weight)

        # Warm frames are local refinements from the previous frame's fit. The learned default optimizer is trained
        # on cold starts of whole bodies; where the fitter has a classical fallback (L-BFGS), warm frames use it.
        warm_optimizer = getattr(fitter, "fallback_optimizer", None) or fitter.optimizer

        def warm(steps: int) -> Fitter:
            return Fitter(body, self.energy, warm_optimizer, stage1_optimizer=fitter.stage1_optimizer,
                          stage1_steps=0, steps=steps, tol=fitter.tol, max_quality=fitter.max_quality,
                          min_keypoints=fitter.min_keypoints)

        self.warm_fitter, self.smooth_fitter = warm(int(warm_steps)), warm(int(smooth_steps))

    # -- one video --------------------------------------------------------------------------------------------------
    def process(self, video: str | Path, out_dir: str | Path) -> VideoResult:
        """Fit one video into ``out_dir``; never raises for a bad input (the result says why it failed).

        A folder that already holds ``summary.json`` is skipped. Temporary files of an interrupted earlier run are
        removed first.
        """
        video, out_dir = Path(video), Path(out_dir)
        summary = out_dir / SUMMARY_FILE
        if summary.is_file():
            try:
                old = json.loads(summary.read_text())
                return VideoResult(str(video), str(out_dir), "skipped", frames=int(old.get("frames", 0)),
                                   tracks=len(old.get("tracks", {})), warnings=list(old.get("warnings", [])))
            except (OSError, ValueError):
                pass  # unreadable: redo the video
        start = time.perf_counter()
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
            for stale in out_dir.glob(f".*{TMP_SUFFIX}*"):
                stale.unlink(missing_ok=True)
            info = self._run(video, out_dir)
        except (HmrFitError, OSError, RuntimeError, ValueError) as exc:  # also disk full, a GL failure, ...
            error = str(exc) if isinstance(exc, HmrFitError) else f"{type(exc).__name__}: {exc}"
            try:
                out_dir.rmdir()  # only if empty: nothing was written
            except OSError:
                pass
            return VideoResult(str(video), str(out_dir), "failed", error=error, seconds=time.perf_counter() - start)
        return VideoResult(str(video), str(out_dir), "done", frames=info["frames"], tracks=len(info["tracks"]),
                           seconds=time.perf_counter() - start, warnings=info["warnings"])

    def _run(self, video: Path, out_dir: Path) -> dict[str, Any]:
        timer = _Timer()
        reader = VideoReader(video, fps=self.fps, max_frames=self.max_frames)
        width, height = reader.width, reader.height
        camera = Camera.for_image(width, height)
        intrinsics = (float(camera.focal[0, 0]), float(camera.focal[0, 1]), float(camera.center[0, 0]),
                      float(camera.center[0, 1]))
        tracker = self.tracker_factory()
        shapes = ShapeAverage()
        last_x: dict[int, torch.Tensor] = {}  # per track: the last accepted fit (n,)
        last_obs: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # ... and the keypoints it was fitted to
        records: dict[int, list[dict[str, Any]]] = {}
        no_person: list[int] = []
        stats = {"cold": [], "warm": [], "cold_refits": 0, "frames": 0}
        total = reader.frame_count if self.max_frames is None else min(reader.frame_count, self.max_frames)
        bar = _bar(total if total > 0 else None, video.name, self.progress)

        sink = _RenderSink(self, out_dir, (height, width), reader.fps, intrinsics, timer)
        sink.start()
        detector = self.detector_factory()
        stream = None
        try:
            chunk: list[tuple[Any, list[_Entry]]] = []

            def detected():  # runs in the decoding thread: decode + detect overlap with fitting
                for frame in _timed(reader, timer):
                    t0 = time.perf_counter()
                    found = detector.detect(frame.image, timestamp_ms=frame.timestamp_ms)
                    timer.add("detect", time.perf_counter() - t0)
                    yield frame, [p for p in found if p.accepted]

            stream = prefetch(detected(), self.queue_size)
            for frame, people in stream:
                t0 = time.perf_counter()
                ids = tracker.update(people, frame.index)
                timer.add("detect", time.perf_counter() - t0)
                if not people:
                    no_person.append(frame.index)
                entries = [_Entry(frame.index, tid, np.asarray(p.keypoints), np.asarray(p.confidence))
                           for p, tid in zip(people, ids)]
                chunk.append((frame, entries))
                stats["frames"] += 1
                if len(chunk) >= self.chunk_frames:
                    self._fit_chunk(chunk, camera, last_x, last_obs, shapes, records, stats, timer, sink)
                    bar.update(len(chunk))
                    chunk = []
                sink.check()
            if chunk:
                self._fit_chunk(chunk, camera, last_x, last_obs, shapes, records, stats, timer, sink)
                bar.update(len(chunk))
            sink.finish()
        except BaseException:
            sink.abort()
            raise
        finally:
            if stream is not None:
                stream.close()  # stops and joins the decoding thread before its detector is closed
            bar.close()
            close = getattr(detector, "close", None)
            if close is not None:
                close()

        if stats["frames"] == 0:
            raise InputError(f"cannot read '{video}': no frame could be decoded")
        if not any(r["accepted"] for recs in records.values() for r in recs):
            raise NoPersonError(f"{video.name}: no person found or fitted in any of {stats['frames']} frames; "
                                "people smaller than ~1/5 of the frame are often missed (crop the video)")
        warnings = []
        if no_person:
            shown = ", ".join(map(str, no_person[:5])) + (", ..." if len(no_person) > 5 else "")
            warnings.append(f"{video.name} frame {shown}: no person found, skipped ({len(no_person)} of "
                            f"{stats['frames']} frames skipped)")
        if reader.truncated:
            warnings.append(f"{video.name}: decoding stopped at frame {reader.frames_read} of {reader.frame_count} "
                            "(truncated or damaged file); the frames read were fitted")
        t0 = time.perf_counter()
        info = self._write_results(video, out_dir, reader, records, shapes, no_person, stats, warnings, timer,
                                   sink.thumbnail_written)
        timer.add("write", time.perf_counter() - t0)
        return info

    # -- fitting ----------------------------------------------------------------------------------------------------
    def _fit_chunk(self, chunk, camera: Camera, last_x, last_obs, shapes: ShapeAverage, records, stats, timer, sink) -> None:
        t0 = time.perf_counter()
        entries = [e for _, es in chunk for e in es]
        # 1. Cold fits: the first frame of each track that has no accepted fit yet.
        firsts: dict[int, _Entry] = {}
        for e in entries:
            if e.track not in last_x and e.track not in firsts:
                firsts[e.track] = e
        cold = list(firsts.values())
        self._fit(cold, camera, None)
        for e in cold:
            if e.record["accepted"]:
                last_x[e.track] = e.x
                last_obs[e.track] = (e.keypoints, e.confidence)
        # 2. Warm fits from each track's last accepted fit (tracks whose cold fit failed are fitted cold again).
        rest = [e for e in entries if firsts.get(e.track) is not e]
        warm = [e for e in rest if e.track in last_x]
        cold_again = [e for e in rest if e.track not in last_x]
        anchors = {e.track: last_x[e.track] for e in warm}
        if warm:
            focal = (float(camera.focal[0, 0]), float(camera.focal[0, 1]))
            x0 = torch.stack([shifted_start(anchors[e.track], self.energy.layout.camera, *last_obs[e.track],
                                            e.keypoints, e.confidence, focal) for e in warm])
            self._fit(warm, camera, x0, reference=self._reference(warm, x0, shapes))
        self._fit(cold_again, camera, None)
        # 3. Block-Jacobi smoothing passes over the warm frames (neighbours frozen per pass).
        for _ in range(self.smooth_passes if self.smooth_steps > 0 and self.energy.weights["temporal"] else 0):
            by_track: dict[int, list[_Entry]] = {}
            for e in entries:
                if e.record is not None and e.record["accepted"]:
                    by_track.setdefault(e.track, []).append(e)
            todo, refs = [], []
            for tid, es in by_track.items():
                ref = neighbour_reference(torch.stack([e.x for e in es]), [e.frame for e in es], anchors.get(tid))
                for e, r in zip(es, ref):
                    if e.record["warm"]:
                        todo.append(e)
                        refs.append(r)
            if todo:
                ref = self._reference(todo, torch.stack(refs), shapes)
                self._fit(todo, camera, torch.stack([e.x for e in todo]), reference=ref, add_steps=True)
        # 4. Rejected warm fits: refit from scratch.
        if self.cold_refit:
            redo = [e for e in entries if e.record is not None and e.record["warm"] and not e.record["accepted"]]
            if redo:
                stats["cold_refits"] += len(redo)
                self._fit(redo, camera, None)
        for e in entries:
            stats["warm" if e.record["warm"] else "cold"].append((e.record["steps"], e.record["evaluations"]))
            if e.record["accepted"]:
                last_x[e.track] = e.x
                last_obs[e.track] = (e.keypoints, e.confidence)
                shapes.add(e.track, e.record["betas"], e.record["quality"], True)
            records.setdefault(e.track, []).append(e.record)
        timer.add("fit", time.perf_counter() - t0)
        # 5. Hand the frames to the render thread.
        sink.put_chunk(chunk, self._vertices([e for e in entries if e.record["accepted"]]))

    def _reference(self, entries: list[_Entry], x: torch.Tensor, shapes: ShapeAverage) -> torch.Tensor:
        ref = x.clone()
        for i, e in enumerate(entries):
            mean = shapes.get(e.track)
            if mean is not None:
                ref[i, self.energy.layout.betas] = torch.as_tensor(mean, dtype=ref.dtype)
        return ref

    def _fit(self, entries: list[_Entry], camera: Camera, x0: torch.Tensor | None, reference: torch.Tensor | None = None, add_steps: bool = False) -> None:
        for s in range(0, len(entries), self.batch_size):
            part = entries[s:s + self.batch_size]
            kp = torch.as_tensor(np.stack([e.keypoints for e in part]))
            conf = torch.as_tensor(np.stack([e.confidence for e in part]))
            cams = Camera.cat([camera] * len(part))
            if x0 is None:
                self.energy.set_reference(None)
                result = self.fitter.fit(kp, conf, cams)
            else:
                self.energy.set_reference(reference[s:s + len(part)])
                fitter = self.smooth_fitter if add_steps else self.warm_fitter
                result = fitter.fit(kp, conf, cams, x0=x0[s:s + len(part)])
                self.energy.set_reference(None)
            for k, e in enumerate(part):
                rec = _record(result, k, e, warm=x0 is not None)
                if add_steps and e.record is not None:
                    rec["steps"] += e.record["steps"]
                    rec["evaluations"] += e.record["evaluations"]
                e.record, e.x = rec, result.x[k].detach().clone()

    @torch.no_grad()
    def _vertices(self, entries: list[_Entry]) -> dict[tuple[int, int], np.ndarray]:
        if not entries or (self.renderer_factory is None and not self.meshes):
            return {}
        device, dtype = self.body.v_template.device, self.body.v_template.dtype

        def stack(key: str) -> torch.Tensor:
            return torch.as_tensor(np.stack([e.record[key] for e in entries]), dtype=dtype, device=device)

        out = self.body(stack("betas"), stack("body_pose"), stack("global_orient"), stack("transl"))
        verts = out.vertices.cpu().numpy()
        return {(e.frame, e.track): verts[i] for i, e in enumerate(entries)}

    # -- results ----------------------------------------------------------------------------------------------------
    def _write_results(self, video: Path, out_dir: Path, reader: VideoReader, records, shapes: ShapeAverage,
                       no_person: list[int], stats, warnings: list[str], timer: _Timer, thumbnail: bool
                       ) -> dict[str, Any]:
        arrays: dict[str, np.ndarray] = {"track_ids": np.array(sorted(records), dtype=np.int64),
                                         "image_size": np.array([reader.height, reader.width]),
                                         "fps": np.array(reader.fps)}
        tracks_json: dict[str, Any] = {}
        quality_series: dict[str, list] = {}
        for tid in sorted(records):
            recs = sorted(records[tid], key=lambda r: r["frame"])
            mean_betas = shapes.get(tid)
            per_frame = np.stack([r["betas"] for r in recs])
            stacked = {
                "frames": np.array([r["frame"] for r in recs], dtype=np.int64),
                "betas": mean_betas if mean_betas is not None else per_frame.mean(0),
                "betas_per_frame": per_frame,
                "body_pose": np.stack([r["body_pose"] for r in recs]),
                "global_orient": np.stack([r["global_orient"] for r in recs]),
                "transl": np.stack([r["transl"] for r in recs]),
                "camera": np.stack([r["camera"] for r in recs]),
                "quality": np.array([r["quality"] for r in recs]),
                "reprojection_error_px": np.array([r["reprojection_error_px"] for r in recs]),
                "accepted": np.array([r["accepted"] for r in recs]),
                "warm": np.array([r["warm"] for r in recs]),
                "steps": np.array([r["steps"] for r in recs], dtype=np.int64),
                "keypoints": np.stack([r["keypoints"] for r in recs]),
                "confidence": np.stack([r["confidence"] for r in recs]),
            }
            for k, v in stacked.items():
                arrays[f"track{tid}_{k}"] = v
            acc = stacked["accepted"]
            q = stacked["quality"][acc]
            tracks_json[str(tid)] = {
                "first_frame": int(stacked["frames"][0]), "last_frame": int(stacked["frames"][-1]),
                "frames": len(recs), "accepted": int(acc.sum()),
                "quality_mean": _num(q.mean()) if q.size else None,
                "quality_median": _num(np.median(q)) if q.size else None,
                "quality_max": _num(q.max()) if q.size else None,
                "betas": [_num(b) for b in stacked["betas"]],
            }
            quality_series[str(tid)] = [[int(f), _num(v) if a else None]
                                        for f, v, a in zip(stacked["frames"], stacked["quality"], acc)]
        write_npz(out_dir / "params.npz", arrays)
        write_json(out_dir / "params.json", {"video": str(video), "model": getattr(self.body, "name", ""),
                                             "layout": "see summary.json 'params_format'", "tracks": tracks_json})
        warm, cold = np.array(stats["warm"]).reshape(-1, 2), np.array(stats["cold"]).reshape(-1, 2)
        seconds = dict(timer.seconds)
        frames = stats["frames"]
        summary = {
            "format_version": SUMMARY_VERSION, "video": str(video), "status": "done", "frames": frames,
            "fps": reader.fps, "width": reader.width, "height": reader.height, "codec": reader.codec,
            "tracks": tracks_json, "quality": quality_series,
            "frames_without_person": no_person, "warnings": warnings,
            # steps: optimizer steps after the start (cold: stage 2 only; warm: warm + smoothing passes);
            # evaluations: energy+gradient evaluations of all stages (cold: both stage-1 starts too).
            "steps": {"warm_fits": len(warm), "cold_fits": len(cold), "cold_refits": stats["cold_refits"],
                      "warm_steps_mean": _num(warm[:, 0].mean()) if len(warm) else None,
                      "warm_evaluations_mean": _num(warm[:, 1].mean()) if len(warm) else None,
                      "cold_steps_mean": _num(cold[:, 0].mean()) if len(cold) else None,
                      "cold_evaluations_mean": _num(cold[:, 1].mean()) if len(cold) else None},
            "seconds": {k: round(v, 4) for k, v in seconds.items()},
            "frames_per_second": {k: (round(frames / v, 2) if v > 0 else None) for k, v in seconds.items()},
            "files": sorted(p.name for p in out_dir.iterdir() if not p.name.startswith(".")) + [SUMMARY_FILE],
            "thumbnail": "thumbnail.jpg" if thumbnail else None,
            "params_format": "params.npz: track<i>_<field>, fields frames (T,), betas (S,) shared, betas_per_frame "
                             "(T,S), body_pose (T,J-1,3), global_orient (T,3), transl (T,3) m, camera (T,4) fx fy cx "
                             "cy, quality (T,), reprojection_error_px (T,), accepted (T,), warm (T,), steps (T,), "
                             "keypoints (T,K,2), confidence (T,K)",
        }
        write_json(out_dir / SUMMARY_FILE, summary)
        return summary


def _num(v) -> float | None:
    v = float(v)
    return round(v, 6) if math.isfinite(v) else None


def _record(result: FitResult, k: int, e: _Entry, warm: bool) -> dict[str, Any]:
    def arr(t: torch.Tensor) -> np.ndarray:
        return t[k].detach().cpu().numpy()

    cam = result.camera
    return {
        "frame": e.frame, "track": e.track, "betas": arr(result.betas), "body_pose": arr(result.body_pose),
        "global_orient": arr(result.global_orient), "transl": arr(result.transl),
        "camera": np.concatenate([arr(cam.focal), arr(cam.center)]),
        "keypoints": e.keypoints, "confidence": e.confidence,
        "quality": float(result.quality[k]), "reprojection_error_px": float(result.reprojection_error[k]),
        "accepted": bool(result.accepted[k]), "warm": warm, "steps": int(result.n_steps[k]),
        "evaluations": int(result.n_evals[k]),
    }


def _timed(reader: VideoReader, timer: _Timer):
    it = iter(reader)
    while True:
        t0 = time.perf_counter()
        try:
            frame = next(it)
        except StopIteration:
            return
        timer.add("decode", time.perf_counter() - t0)
        yield frame


def _bar(total: int | None, name: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=name[:24], unit="frame", leave=False, disable=not enabled, dynamic_ncols=True)
