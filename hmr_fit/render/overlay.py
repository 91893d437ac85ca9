"""Headless mesh rendering with pyrender on EGL: meshes over the photo, a side view, keypoints, and the combined
``<stem>_all.png`` picture.

One :class:`Renderer` serves a whole run: it owns one ``pyrender.OffscreenRenderer`` (one EGL context, about
0.3-0.6 s to create on llvmpipe), resized per image, and frees it in :meth:`Renderer.close` (or a ``with`` block).

Camera convention: vertices arrive in OpenCV's camera frame (x right, y down, z forward, metres) with intrinsics
(fx, fy, cx, cy) in pixels, integer pixel coordinates at pixel centres. pyrender's camera is OpenGL's (y up,
looking down -z), so vertices are rotated by pi about x (y and z negated, which keeps the triangle winding) and the
principal point is shifted by half a pixel, because OpenGL's window coordinates put pixel centres at i + 0.5.
A vertex then lands on the pixel ``round(fx X/Z + cx), round(fy Y/Z + cy)``.
"""

from __future__ import annotations

import os

os.environ.setdefault("PYOPENGL_PLATFORM", "egl")  # before pyrender/OpenGL load (see docs/dependencies.md §4)

import threading  # noqa: E402
from typing import TYPE_CHECKING, Sequence  # noqa: E402

import numpy as np  # noqa: E402

from hmr_fit.errors import InputError  # noqa: E402
from hmr_fit.render.views import (  # noqa: E402
    CV_TO_GL, PALETTE, check_image, check_intrinsics, check_vertices, compose_panels, draw_keypoints,
    side_view_vertices, vertex_normals,
)

if TYPE_CHECKING:
    import pyrender

__all__ = ["Renderer", "shade_vertices"]


def _pyrender():
    """pyrender, imported on first use: it pulls in trimesh and scipy (~2 s cold), which a run without rendering
    need not pay. PYOPENGL_PLATFORM is already set above."""
    import pyrender

    return pyrender


# Lighting, computed per vertex on the CPU in the OpenCV camera frame (x right, y down, z forward) and rendered
# with pyrender's FLAT shader: on Mesa's llvmpipe the PBR shader costs ~3x more than the whole flat render, and
# Gouraud shading of a 7k-14k-vertex body looks the same. Three-point set-up: a key light from the camera's upper
# left, a weaker fill from the right and a rim light from above and behind, plus ambient and a soft highlight, so
# limbs in front of the torso and the body's curvature stay readable. Directions point towards the lights.
_LIGHTS: tuple[tuple[tuple[float, float, float], float], ...] = (
    ((-0.45, -0.55, -1.0), 0.72),  # key
    ((0.75, -0.10, -0.60), 0.28),  # fill
    ((0.00, -0.80, 0.60), 0.30),  # rim
)
_AMBIENT = 0.32
_SPECULAR, _SHININESS = 0.18, 24.0

# Live EGL contexts of all Renderers in this process (see _release).
_LIVE_CONTEXTS = 0
_LIVE_LOCK = threading.Lock()


def shade_vertices(vertices: np.ndarray, normals: np.ndarray, color: Sequence[float]) -> np.ndarray:
    """Per-vertex Lambert + Blinn-Phong colour for a camera at the origin.

    Args:
        vertices: (V, 3) OpenCV camera-frame positions, metres.
        normals: (V, 3) unit outward normals in the same frame.
        color: RGB base colour in [0, 1].
    Returns:
        (V, 4) float32 RGBA in [0, 1], alpha 1.
    """
    view = -vertices / np.maximum(np.linalg.norm(vertices, axis=1, keepdims=True), 1e-9)
    diffuse = np.full(len(vertices), _AMBIENT, np.float32)
    for direction, intensity in _LIGHTS:
        d = np.asarray(direction, np.float32) / np.linalg.norm(direction)
        diffuse += intensity * np.clip(normals @ d, 0.0, None)
    key = np.asarray(_LIGHTS[0][0], np.float32) / np.linalg.norm(_LIGHTS[0][0])
    half = view + key
    half /= np.maximum(np.linalg.norm(half, axis=1, keepdims=True), 1e-9)
    spec = _SPECULAR * np.clip((normals * half).sum(1), 0.0, None) ** _SHININESS
    rgb = np.asarray(color, np.float32)[None] * diffuse[:, None] + spec[:, None]
    return np.concatenate([np.clip(rgb, 0.0, 1.0), np.ones((len(vertices), 1), np.float32)], axis=1).astype(np.float32)


class Renderer:
    """Renders fitted bodies: over the photo, from the side, and keypoints; create once per run.

    Args:
        faces: (F, 3) int vertex indices of the body model's triangles (``BodyModel.faces``).
        alpha: opacity of the mesh over the photo, in [0, 1].
        show_side_view: whether :meth:`render_all` includes the side-view panel.
        side_view_angle: degrees of rotation about the vertical axis for the side view.
        min_keypoint_confidence: detected keypoints below this confidence are not drawn.
        znear: near clipping plane, metres.
        zfar: far clipping plane, metres.

    Example::

        with Renderer(model.faces) as renderer:
            for image, verts, k in items:
                picture = renderer.render_all(image, verts, k, detected, confidence, fitted)
    """

    def __init__(self, faces: np.ndarray, alpha: float = 0.8, show_side_view: bool = True,
                 side_view_angle: float = 90.0, min_keypoint_confidence: float = 0.3, znear: float = 0.05,
                 zfar: float = 100.0) -> None:
        faces = np.asarray(faces)
        if faces.ndim != 2 or faces.shape[1] != 3 or faces.size == 0 or not np.issubdtype(faces.dtype, np.integer):
            raise InputError(f"faces must be (F, 3) integers, got {faces.shape} {faces.dtype}")
        if faces.min() < 0:
            raise InputError("faces contain negative vertex indices")
        if not 0.0 <= alpha <= 1.0:
            raise InputError(f"alpha must be in [0, 1], got {alpha}")
        if not 0 < znear < zfar:
            raise InputError(f"need 0 < znear < zfar, got znear={znear}, zfar={zfar}")
        self.faces = faces.astype(np.uint32)
        self.num_vertices = int(faces.max()) + 1
        self.alpha = float(alpha)
        self.show_side_view = bool(show_side_view)
        self.side_view_angle = float(side_view_angle)
        self.min_keypoint_confidence = float(min_keypoint_confidence)
        self.znear, self.zfar = float(znear), float(zfar)
        self._offscreen: "pyrender.OffscreenRenderer | None" = None

    # -- lifecycle -------------------------------------------------------------------------------------------------
    def __enter__(self) -> "Renderer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Free the OpenGL context; safe to call twice. A later render creates a new one."""
        global _LIVE_CONTEXTS
        if self._offscreen is not None:
            offscreen, self._offscreen = self._offscreen, None
            with _LIVE_LOCK:
                _LIVE_CONTEXTS -= 1
                last = _LIVE_CONTEXTS == 0
            _release(offscreen, terminate_display=last)

    def __del__(self) -> None:  # last resort; prefer close() / with
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown may have torn down EGL already
            pass

    def _context(self, height: int, width: int) -> "pyrender.OffscreenRenderer":
        global _LIVE_CONTEXTS
        if self._offscreen is None:
            self._offscreen = _pyrender().OffscreenRenderer(width, height)
            with _LIVE_LOCK:
                _LIVE_CONTEXTS += 1
        else:  # the framebuffer is re-allocated at the next render only when the size changed
            self._offscreen.viewport_width, self._offscreen.viewport_height = width, height
        return self._offscreen

    # -- rendering -------------------------------------------------------------------------------------------------
    def render_rgba(self, vertices_list: Sequence[np.ndarray], intrinsics: Sequence[float], image_size: tuple[int, int],
                    person_ids: Sequence[int] | None = None) -> np.ndarray:
        """Render the people on a transparent background.

        Args:
            vertices_list: per person (V, 3) OpenCV camera-frame vertices, metres.
            intrinsics: (fx, fy, cx, cy), pixels.
            image_size: (H, W) pixels.
            person_ids: per person the palette index (default 0, 1, ...), so a person keeps one colour.
        Returns:
            (H, W, 4) uint8 RGBA; alpha is 255 on the bodies and 0 elsewhere.
        """
        fx, fy, cx, cy = check_intrinsics(intrinsics)
        h, w = int(image_size[0]), int(image_size[1])
        if h <= 0 or w <= 0:
            raise InputError(f"image size must be positive (H, W), got {image_size}")
        verts = check_vertices(vertices_list, self.num_vertices)
        ids = list(range(len(verts))) if person_ids is None else [int(i) for i in person_ids]
        if len(ids) != len(verts):
            raise InputError(f"person_ids has {len(ids)} entries for {len(verts)} people")
        if not verts:
            return np.zeros((h, w, 4), np.uint8)
        pyrender = _pyrender()
        material = pyrender.MetallicRoughnessMaterial(baseColorFactor=(1.0, 1.0, 1.0, 1.0), alphaMode="OPAQUE")
        scene = pyrender.Scene(bg_color=(0.0, 0.0, 0.0, 0.0))
        for v, pid in zip(verts, ids):
            colors = shade_vertices(v, vertex_normals(v, self.faces), PALETTE[pid % len(PALETTE)])
            v_gl = v * CV_TO_GL.astype(np.float32)  # rotation by pi about x: the triangle winding is kept
            scene.add(pyrender.Mesh([pyrender.Primitive(positions=v_gl, color_0=colors, indices=self.faces,
                                                        material=material)]))
        # Half-pixel shift: OpenGL pixel i spans [i, i + 1), OpenCV puts pixel i's centre at i.
        camera = pyrender.IntrinsicsCamera(fx, fy, cx + 0.5, cy + 0.5, znear=self.znear, zfar=self.zfar)
        scene.add(camera, pose=np.eye(4))
        flags = pyrender.RenderFlags.RGBA | pyrender.RenderFlags.FLAT  # lit per vertex above
        color, _ = self._context(h, w).render(scene, flags=flags)
        return np.ascontiguousarray(color)

    def overlay(self, image: np.ndarray, vertices_list: Sequence[np.ndarray], intrinsics: Sequence[float],
                person_ids: Sequence[int] | None = None) -> np.ndarray:
        """Meshes of all people alpha-blended over the photo, with occlusion between people.

        Args:
            image: (H, W, 3) uint8 RGB photo.
            vertices_list: per person (V, 3) OpenCV camera-frame vertices, metres.
            intrinsics: (fx, fy, cx, cy) of the photo, pixels.
            person_ids: per person the palette index (default 0, 1, ...).
        Returns:
            (H, W, 3) uint8; equal to ``image`` when there are no people.
        """
        image = check_image(image)
        if len(vertices_list) == 0:
            return image.copy()
        rgba = self.render_rgba(vertices_list, intrinsics, image.shape[:2], person_ids)
        return _blend(image, rgba, self.alpha)

    def side_view(self, image_size: tuple[int, int], vertices_list: Sequence[np.ndarray],
                  intrinsics: Sequence[float], person_ids: Sequence[int] | None = None) -> np.ndarray:
        """The same people seen from the side on white: rotated together by ``side_view_angle`` about the vertical
        axis through their centroid, moved back if needed so that all fit in the frame.

        Args:
            image_size: (H, W) of the picture, pixels (the photo's size).
            vertices_list: per person (V, 3) OpenCV camera-frame vertices, metres.
            intrinsics: (fx, fy, cx, cy), pixels.
            person_ids: per person the palette index (default 0, 1, ...).
        Returns:
            (H, W, 3) uint8; all white when there are no people.
        """
        h, w = int(image_size[0]), int(image_size[1])
        white = np.full((h, w, 3), 255, np.uint8)
        if len(vertices_list) == 0:
            return white
        verts = check_vertices(vertices_list, self.num_vertices)
        moved = side_view_vertices(verts, intrinsics, (h, w), self.side_view_angle)
        return _blend(white, self.render_rgba(moved, intrinsics, (h, w), person_ids), 1.0)

    def keypoint_overlay(self, image: np.ndarray, detected: np.ndarray | None, confidence: np.ndarray | None,
                         fitted: np.ndarray | None) -> np.ndarray:
        """Detected (green circles) and fitted (magenta crosses) keypoints with skeletons, drawn with OpenCV.

        Args:
            image: (H, W, 3) uint8 RGB.
            detected: (P, K, 2) pixels, or None.
            confidence: (P, K) in [0, 1]; points below ``min_keypoint_confidence`` are skipped. None: all drawn.
            fitted: (P, K, 2) reprojected model keypoints, pixels, or None.
        Returns:
            (H, W, 3) uint8.
        """
        return draw_keypoints(image, detected, confidence, fitted, self.min_keypoint_confidence)

    def render_all(self, image: np.ndarray, vertices_list: Sequence[np.ndarray], intrinsics: Sequence[float],
                   detected: np.ndarray | None = None, confidence: np.ndarray | None = None,
                   fitted: np.ndarray | None = None, person_ids: Sequence[int] | None = None) -> np.ndarray:
        """[overlay | side view (if ``show_side_view``) | keypoints (if given)] side by side, for ``<stem>_all.png``.

        Args: as :meth:`overlay` and :meth:`keypoint_overlay`.
        Returns:
            (H, n W + gaps, 3) uint8.
        """
        image = check_image(image)
        panels = [self.overlay(image, vertices_list, intrinsics, person_ids)]
        if self.show_side_view:
            panels.append(self.side_view(image.shape[:2], vertices_list, intrinsics, person_ids))
        if detected is not None or fitted is not None:
            panels.append(self.keypoint_overlay(image, detected, confidence, fitted))
        return compose_panels(panels)


def _release(offscreen: "pyrender.OffscreenRenderer", terminate_display: bool) -> None:
    """Free an offscreen renderer's GL objects and context.

    pyrender's ``OffscreenRenderer.delete`` ends with ``eglTerminate`` on the EGL display, which is one per device
    and shared by every context in the process: closing one renderer broke every other live one
    (``eglMakeCurrent`` -> EGL_BAD_DISPLAY). So while other renderers live, destroy only this context.
    """
    platform = getattr(offscreen, "_platform", None)
    if terminate_display or type(platform).__name__ != "EGLPlatform":
        offscreen.delete()
        return
    from OpenGL.EGL import EGL_NO_CONTEXT, EGL_NO_SURFACE, eglDestroyContext, eglMakeCurrent

    platform.make_current()
    offscreen._renderer.delete()
    display, context = platform._egl_display, platform._egl_context
    eglMakeCurrent(display, EGL_NO_SURFACE, EGL_NO_SURFACE, EGL_NO_CONTEXT)
    if context is not None:
        eglDestroyContext(display, context)
    platform._egl_context = platform._egl_display = None
    offscreen._renderer = offscreen._platform = None


def _blend(image: np.ndarray, rgba: np.ndarray, alpha: float) -> np.ndarray:
    """out = image (1 - alpha m) + rgb alpha m, with m the rendered coverage in [0, 1]."""
    m = rgba[..., 3:4].astype(np.float32) * (alpha / 255.0)
    out = image.astype(np.float32) * (1.0 - m) + rgba[..., :3].astype(np.float32) * m
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)
