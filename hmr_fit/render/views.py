"""Pure helpers for the renderer: argument checks, vertex normals, camera-frame conversions, the side-view
placement, the 23-keypoint skeleton drawn with OpenCV, and panel composition. No OpenGL here.

Coordinates are OpenCV's camera frame throughout: x right, y down, z forward, metres; a pixel is
``(fx X/Z + cx, fy Y/Z + cy)`` with integer coordinates at pixel centres.
"""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from hmr_fit.errors import InputError

# Fixed person palette, RGB in [0, 1]: person i is always PALETTE[i % len(PALETTE)] in every picture of a run.
PALETTE: tuple[tuple[float, float, float], ...] = (
    (0.45, 0.65, 0.95),  # blue
    (0.95, 0.55, 0.35),  # orange
    (0.45, 0.82, 0.45),  # green
    (0.90, 0.45, 0.75),  # pink
    (0.95, 0.85, 0.35),  # yellow
    (0.60, 0.50, 0.92),  # violet
    (0.35, 0.82, 0.82),  # teal
    (0.80, 0.35, 0.35),  # red
)

# Skeleton over the canonical 23 keypoints (hmr_fit.body.KEYPOINT_NAMES: COCO-17, then left big toe, left small
# toe, left heel, right big toe, right small toe, right heel), as index pairs.
SKELETON: tuple[tuple[int, int], ...] = (
    (0, 1), (0, 2), (1, 3), (2, 4),  # face
    (5, 6), (5, 11), (6, 12), (11, 12),  # torso
    (5, 7), (7, 9), (6, 8), (8, 10),  # arms
    (11, 13), (13, 15), (12, 14), (14, 16),  # legs
    (15, 19), (15, 17), (17, 18), (16, 22), (16, 20), (20, 21),  # feet: ankle-heel, ankle-big toe, toes
)

DETECTED_COLOR = (40, 220, 60)  # RGB 0-255: detected keypoints, filled circles and solid lines
FITTED_COLOR = (235, 40, 200)  # fitted (reprojected) keypoints, tilted crosses and thin lines
RESIDUAL_COLOR = (255, 230, 40)  # detected -> fitted residual segments

# OpenCV camera frame -> OpenGL camera frame (y up, looking down -z): a rotation by pi about x.
CV_TO_GL = np.array([1.0, -1.0, -1.0])


def check_image(image: np.ndarray, name: str = "image") -> np.ndarray:
    """Return ``image`` if it is (H, W, 3) uint8; raise InputError (expected vs actual) otherwise."""
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3 or 0 in image.shape:
        raise InputError(f"{name} must be (H, W, 3) uint8 RGB, got {image.shape} {image.dtype}")
    return image


def check_intrinsics(intrinsics: Sequence[float]) -> tuple[float, float, float, float]:
    """Return (fx, fy, cx, cy) as floats; raise InputError unless 4 finite values with fx, fy > 0."""
    k = np.asarray(intrinsics, dtype=np.float64).reshape(-1)
    if k.shape != (4,) or not np.isfinite(k).all() or k[0] <= 0 or k[1] <= 0:
        raise InputError(f"intrinsics must be 4 finite numbers (fx, fy, cx, cy) with fx, fy > 0, got {intrinsics!r}")
    return float(k[0]), float(k[1]), float(k[2]), float(k[3])


def check_vertices(vertices_list: Sequence[np.ndarray], num_vertices: int) -> list[np.ndarray]:
    """Return each person's vertices as (V, 3) float32; raise InputError on a wrong shape or non-finite value."""
    out = []
    for i, v in enumerate(vertices_list):
        v = np.asarray(v.detach().cpu() if hasattr(v, "detach") else v, dtype=np.float32)
        if v.shape != (num_vertices, 3):
            raise InputError(f"vertices of person {i} must be ({num_vertices}, 3), got {v.shape}")
        if not np.isfinite(v).all():
            raise InputError(f"vertices of person {i} contain NaN or inf")
        out.append(v)
    return out


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted unit vertex normals.

    Args:
        vertices: (V, 3) positions.
        faces: (F, 3) vertex indices, counter-clockwise seen from outside.
    Returns:
        (V, 3) float32 unit normals (zero-area neighbourhoods get (0, 0, 1)).
    """
    tri = vertices[faces]  # (F, 3, 3)
    # n[f] = (v1 - v0) x (v2 - v0); its length is twice the face area, so summing weights by area.
    face_n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    normals = np.zeros_like(vertices, dtype=np.float64)
    flat = faces.reshape(-1)
    for c in range(3):  # bincount is ~10x faster than np.add.at for the scatter-add
        normals[:, c] = np.bincount(flat, weights=np.repeat(face_n[:, c], 3), minlength=len(vertices))
    length = np.linalg.norm(normals, axis=1, keepdims=True)
    normals = np.where(length > 1e-12, normals / np.maximum(length, 1e-12), np.array([0.0, 0.0, 1.0]))
    return normals.astype(np.float32)


def project(points: np.ndarray, intrinsics: Sequence[float]) -> np.ndarray:
    """Pinhole projection in OpenCV's convention.

    Args:
        points: (..., 3) camera-frame points, z > 0.
        intrinsics: (fx, fy, cx, cy), pixels.
    Returns:
        (..., 2) pixel coordinates (u, v) = (fx X/Z + cx, fy Y/Z + cy).
    """
    fx, fy, cx, cy = check_intrinsics(intrinsics)
    p = np.asarray(points, dtype=np.float64)
    return np.stack([fx * p[..., 0] / p[..., 2] + cx, fy * p[..., 1] / p[..., 2] + cy], axis=-1)


def side_view_vertices(vertices_list: Sequence[np.ndarray], intrinsics: Sequence[float], image_size: tuple[int, int],
                       angle_deg: float = 90.0, margin: float = 0.1) -> list[np.ndarray]:
    """Place the people for a side view: rotate them together about the vertical (camera y) axis through their
    centroid, then centre them on the optical axis, no nearer than before and far enough back to fit the frame.

    Args:
        vertices_list: per person (V, 3) camera-frame vertices, metres.
        intrinsics: (fx, fy, cx, cy) of the camera the side view uses.
        image_size: (H, W) pixels.
        angle_deg: rotation about the vertical axis; +90 shows the people's left side when they face the camera.
        margin: fraction of the image kept free on each side.
    Returns:
        per person (V, 3) vertices in the same camera frame, rotated and moved.
    """
    if not vertices_list:
        return []
    fx, fy, cx, cy = check_intrinsics(intrinsics)
    h, w = image_size
    allv = np.concatenate(vertices_list, axis=0).astype(np.float64)
    centre = (allv.max(0) + allv.min(0)) / 2
    a = np.deg2rad(angle_deg)
    # Rotation about the camera's y axis (pointing down): x' = cos a x + sin a z, z' = -sin a x + cos a z.
    rot = np.array([[np.cos(a), 0.0, np.sin(a)], [0.0, 1.0, 0.0], [-np.sin(a), 0.0, np.cos(a)]])
    rotated = [(np.asarray(v, np.float64) - centre) @ rot.T for v in vertices_list]
    r_all = np.concatenate(rotated, axis=0)
    lo, hi = r_all.min(0), r_all.max(0)
    mid = (lo + hi) / 2
    half = (hi - lo) / 2
    # Nearest face of the box at depth D - half_z must satisfy f * half_x / (D - half_z) <= free half-width.
    free_x = (1 - 2 * margin) * max(min(cx, w - cx), 1.0)
    free_y = (1 - 2 * margin) * max(min(cy, h - cy), 1.0)
    depth = max(centre[2], half[2] + fx * half[0] / free_x, half[2] + fy * half[1] / free_y, half[2] + 0.05)
    shift = np.array([0.0, 0.0, depth]) - mid
    return [(v + shift).astype(np.float32) for v in rotated]


def _finite_point(p: np.ndarray) -> tuple[int, int] | None:
    if not np.isfinite(p).all() or np.abs(p).max() > 1e6:
        return None
    return int(round(float(p[0]) * 16)), int(round(float(p[1]) * 16))  # 4 fractional bits for cv2 `shift`


def draw_keypoints(image: np.ndarray, detected: np.ndarray | None, confidence: np.ndarray | None,
                   fitted: np.ndarray | None, min_confidence: float = 0.3) -> np.ndarray:
    """Draw detected and fitted keypoints with their skeletons on a copy of ``image`` (OpenCV, anti-aliased).

    Detected points are filled green circles with solid skeleton lines; fitted points are magenta tilted crosses
    with thin lines; a yellow segment joins each detected point to its fitted one (the residual). Detected points
    with confidence below ``min_confidence`` (and their lines and residuals) are skipped; so are non-finite points.

    Args:
        image: (H, W, 3) uint8 RGB.
        detected: (P, K, 2) detected keypoints, pixels, or None.
        confidence: (P, K) in [0, 1], or None (all confident).
        fitted: (P, K, 2) reprojected model keypoints, pixels, or None.
        min_confidence: threshold for drawing a detected point.
    Returns:
        (H, W, 3) uint8 image.
    """
    out = check_image(image).copy()
    h, w = out.shape[:2]
    scale = max(1.0, min(h, w) / 400.0)
    thick = max(1, int(round(1.5 * scale)))
    radius = max(3, int(round(4 * scale)))
    sets = []
    for name, arr in (("detected", detected), ("fitted", fitted)):
        if arr is None:
            sets.append(None)
            continue
        arr = np.asarray(arr, dtype=np.float64)
        if arr.ndim == 2:
            arr = arr[None]
        if arr.ndim != 3 or arr.shape[-1] != 2:
            raise InputError(f"{name} keypoints must be (P, K, 2), got {arr.shape}")
        sets.append(arr)
    det, fit = sets
    if det is not None and fit is not None and det.shape != fit.shape:
        raise InputError(f"detected and fitted keypoints must have the same shape, got {det.shape} and {fit.shape}")
    ref = det if det is not None else fit
    if ref is None or ref.shape[0] == 0:
        return out
    num_people, num_kp = ref.shape[:2]
    if det is not None:
        conf = np.ones(det.shape[:2]) if confidence is None else np.asarray(confidence, dtype=np.float64)
        if conf.ndim == 1:
            conf = conf[None]
        if conf.shape != det.shape[:2]:
            raise InputError(f"confidence must be (P, K) = {det.shape[:2]}, got {conf.shape}")
        ok = np.nan_to_num(conf, nan=0.0) >= min_confidence
    else:
        ok = np.zeros((num_people, num_kp), bool)
    edges = [(a, b) for a, b in SKELETON if a < num_kp and b < num_kp]
    aa, sh = cv2.LINE_AA, 4
    for p in range(num_people):
        if fit is not None:
            pts = [_finite_point(q) for q in fit[p]]
            for a, b in edges:
                if pts[a] and pts[b]:
                    cv2.line(out, pts[a], pts[b], FITTED_COLOR, max(1, thick // 2), aa, sh)
        if det is not None:
            pts_d = [_finite_point(q) if ok[p, k] else None for k, q in enumerate(det[p])]
            for a, b in edges:
                if pts_d[a] and pts_d[b]:
                    cv2.line(out, pts_d[a], pts_d[b], DETECTED_COLOR, thick, aa, sh)
            if fit is not None:
                for k in range(num_kp):
                    q = _finite_point(fit[p, k])
                    if pts_d[k] and q:
                        cv2.line(out, pts_d[k], q, RESIDUAL_COLOR, max(1, thick // 2), aa, sh)
            for q in pts_d:
                if q:
                    cv2.circle(out, q, radius * 16, (0, 70, 0), -1, aa, sh)  # dark rim, then the fill
                    cv2.circle(out, q, (radius - 1) * 16, DETECTED_COLOR, -1, aa, sh)
        if fit is not None:
            for q in fit[p]:
                if np.isfinite(q).all() and np.abs(q).max() < 1e6:
                    cv2.drawMarker(out, (int(round(q[0])), int(round(q[1]))), FITTED_COLOR,
                                   cv2.MARKER_TILTED_CROSS, 2 * radius, max(1, thick - 1), aa)
    _legend(out, det is not None, fit is not None, scale)
    return out


def _legend(image: np.ndarray, has_detected: bool, has_fitted: bool, scale: float) -> None:
    """Write a small 'o detected  x fitted' key in the top-left corner (skipped on tiny images)."""
    if image.shape[0] < 120 or image.shape[1] < 200:
        return
    font, fs, th = cv2.FONT_HERSHEY_SIMPLEX, 0.45 * scale, max(1, int(round(scale)))
    x, y = int(8 * scale), int(18 * scale)
    for label, color, show in (("o detected", DETECTED_COLOR, has_detected), ("x fitted", FITTED_COLOR, has_fitted)):
        if not show:
            continue
        cv2.putText(image, label, (x, y), font, fs, (0, 0, 0), th + 2, cv2.LINE_AA)
        cv2.putText(image, label, (x, y), font, fs, color, th, cv2.LINE_AA)
        x += cv2.getTextSize(label, font, fs, th)[0][0] + int(12 * scale)


def compose_panels(panels: Sequence[np.ndarray], gap: int = 4, gap_color: tuple[int, int, int] = (255, 255, 255)
                   ) -> np.ndarray:
    """Place panels side by side (e.g. [overlay | side view | keypoints]) for ``<stem>_all.png``.

    Args:
        panels: (H_i, W_i, 3) uint8 images; any of a different height is resized to the first one's height.
        gap: pixels between panels.
        gap_color: RGB of the gap.
    Returns:
        (H, sum W_i + gap * (n - 1), 3) uint8.
    """
    if not panels:
        raise InputError("compose_panels needs at least one panel")
    h = check_image(panels[0], "panel 0").shape[0]
    row = []
    for i, p in enumerate(panels):
        p = check_image(p, f"panel {i}")
        if p.shape[0] != h:
            p = cv2.resize(p, (max(1, round(p.shape[1] * h / p.shape[0])), h), interpolation=cv2.INTER_AREA)
        if row and gap > 0:
            row.append(np.full((h, gap, 3), gap_color, np.uint8))
        row.append(p)
    return np.concatenate(row, axis=1)
