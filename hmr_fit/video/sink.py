"""The rendering/writing thread of a video: overlay frames into ``overlay.mp4``, optional per-frame meshes and the
thumbnail, fed chunk by chunk by ``VideoRunner`` so that fitting never waits on rendering."""

from __future__ import annotations

import os
import queue
import threading
import time
from pathlib import Path

import numpy as np

from hmr_fit.errors import HmrFitError, InputError
from hmr_fit.io.atomic import TMP_SUFFIX, write_bytes


class _RenderSink:
    """The render thread: overlays, ``overlay.mp4``, per-frame meshes and the thumbnail. Owns the GL context."""

    def __init__(self, runner: VideoRunner, out_dir: Path, size: tuple[int, int], fps: float,
                 intrinsics: tuple[float, float, float, float], timer: _Timer) -> None:
        self.runner, self.out_dir, self.size, self.fps, self.intrinsics = runner, out_dir, size, fps, intrinsics
        self.timer = timer
        self.queue: queue.Queue = queue.Queue(maxsize=max(2, runner.queue_size // max(runner.chunk_frames, 1) + 1))
        self.error: BaseException | None = None
        self.thumbnail_written = False
        self._thumb_score = -1.0
        self._thread = threading.Thread(target=self._work, name="hmr-fit-render", daemon=True)
        self._tmp_video = out_dir / f".overlay.mp4{TMP_SUFFIX}.mp4"
        self._abort = False
        self.render = runner.renderer_factory is not None
        self.write_video = self.render and runner.overlay_video

    def start(self) -> None:
        self._thread.start()

    def check(self) -> None:
        if self.error is not None:
            raise self.error

    def put_chunk(self, chunk, vertices: dict) -> None:
        self.check()
        while True:
            try:
                self.queue.put((chunk, vertices), timeout=0.5)
                return
            except queue.Full:
                self.check()
                if not self._thread.is_alive():
                    raise RuntimeError("the render thread stopped")

    def finish(self) -> None:
        self.queue.put(None)
        self._thread.join()
        self.check()
        if self.write_video:
            os.replace(self._tmp_video, self.out_dir / "overlay.mp4")

    def abort(self) -> None:
        try:
            self.queue.put_nowait(None)
        except queue.Full:
            pass
        self._abort = True
        self._thread.join(timeout=30)
        self._tmp_video.unlink(missing_ok=True)

    def _work(self) -> None:
        import cv2

        renderer = writer = None
        try:
            if self.render:
                renderer = self.runner.renderer_factory()
            if self.write_video:
                h, w = self.size
                writer = cv2.VideoWriter(str(self._tmp_video), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, (w, h))
                if not writer.isOpened():
                    raise InputError(f"cannot write '{self.out_dir / 'overlay.mp4'}': OpenCV has no mp4v encoder "
                                     "here; set video.runner.overlay_video=false")
            while True:
                item = self.queue.get()
                if item is None or self._abort:
                    return
                chunk, vertices = item
                for frame, entries in chunk:
                    ok = [e for e in entries if (frame.index, e.track) in vertices]
                    verts = [vertices[(frame.index, e.track)] for e in ok]
                    if renderer is not None:
                        t0 = time.perf_counter()
                        picture = renderer.overlay(frame.image, verts, self.intrinsics, [e.track for e in ok])
                        self.timer.add("render", time.perf_counter() - t0)
                        t0 = time.perf_counter()
                        if writer is not None:
                            writer.write(cv2.cvtColor(picture, cv2.COLOR_RGB2BGR))
                        score = len(ok) - 1e-6 * frame.index  # the earliest frame with the most people
                        if ok and score > self._thumb_score:
                            self._thumb_score = score
                            self._write_thumbnail(picture)
                        self.timer.add("write", time.perf_counter() - t0)
                    if self.runner.meshes and ok:
                        t0 = time.perf_counter()
                        from hmr_fit.io.export import export_mesh

                        mesh_dir = self.out_dir / "meshes"
                        mesh_dir.mkdir(exist_ok=True)
                        for e, v in zip(ok, verts):
                            export_mesh(mesh_dir / f"f{frame.index:06d}_t{e.track}.{self.runner.mesh_format}", v,
                                        self.runner.body.faces)
                        self.timer.add("write", time.perf_counter() - t0)
        except BaseException as exc:  # handed to the main thread
            self.error = exc
            while True:  # unblock a producer waiting on a full queue
                try:
                    self.queue.get_nowait()
                except queue.Empty:
                    break
        finally:
            if writer is not None:
                writer.release()
            if renderer is not None:
                renderer.close()

    def _write_thumbnail(self, picture: np.ndarray) -> None:
        import cv2

        h, w = picture.shape[:2]
        tw = min(self.runner.thumbnail_width, w)
        small = cv2.resize(picture, (tw, max(1, round(h * tw / w))), interpolation=cv2.INTER_AREA)
        ok, buf = cv2.imencode(".jpg", cv2.cvtColor(small, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])
        if ok:
            write_bytes(self.out_dir / "thumbnail.jpg", buf.tobytes())
            self.thumbnail_written = True
