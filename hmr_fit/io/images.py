"""Reading images for detection and fitting: one RGB uint8 layout, EXIF orientation applied, clear errors.

Documented conversions (each is listed in ``ImageInfo.conversions``):
* EXIF orientation 2-8 is applied, so pixels are as a viewer shows them; keypoints refer to these pixels.
* grayscale (L, I, I;16, F, 1) -> the gray value copied to R, G and B;
* 16-bit (or 32-bit integer / float) -> 8-bit by scaling the type's full range (16-bit: v * 255 / 65535,
  rounded), never by clipping;
* alpha (RGBA, LA, PA, transparent palette) -> composited over white, then dropped;
* palette, CMYK, YCbCr, ... -> RGB through Pillow.
Errors are ``InputError`` with a one-line message that names the file and says what to do.
"""

from __future__ import annotations

import math
import os
import struct
import threading
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from hmr_fit.errors import InputError

# EXIF tags (TIFF/EXIF 2.32)
_ORIENTATION = 0x0112
_MAKE, _MODEL = 0x010F, 0x0110
_EXIF_IFD = 0x8769
_FOCAL_LENGTH = 0x920A
_FOCAL_35MM = 0xA405
_FOCAL_PLANE_XRES = 0xA20E
_FOCAL_PLANE_RES_UNIT = 0xA210
_PIXEL_X_DIMENSION = 0xA002
_MM_PER_UNIT = {2: 25.4, 3: 10.0, 4: 1.0}  # FocalPlaneResolutionUnit: inch, cm, (non-standard) mm
_DIAGONAL_35MM = math.hypot(36.0, 24.0)  # 43.27 mm


@dataclass(frozen=True)
class CameraExif:
    """Camera facts from EXIF, for the fitting camera. Any field may be None when the file lacks it.

    Attributes:
        focal_length_mm: physical focal length (EXIF FocalLength), mm.
        focal_length_35mm: 35 mm-equivalent focal length (EXIF FocalLengthIn35mmFilm), mm.
        sensor_width_mm: sensor width along the stored image's x axis, from FocalPlaneXResolution and
            PixelXDimension (or the stored width), mm.
        focal_length_px: focal length in pixels of the returned (oriented) image: from the 35 mm equivalent
            over the image diagonal (f_px = f35 * diag_px / 43.27 mm), else from focal_length_mm and the
            focal-plane resolution; None when neither is available.
        make, model: camera maker and model strings.
    """

    focal_length_mm: float | None = None
    focal_length_35mm: float | None = None
    sensor_width_mm: float | None = None
    focal_length_px: float | None = None
    make: str | None = None
    model: str | None = None


@dataclass(frozen=True)
class ImageInfo:
    """What ``read_image`` found and did.

    Attributes:
        path: the file read.
        size: (H, W) of the returned image (after orientation).
        stored_size: (H, W) as stored in the file (before orientation).
        mode: Pillow mode of the stored image ("RGB", "L", "I;16", "RGBA", ...).
        format: file format as Pillow names it ("JPEG", "PNG", ...).
        exif_orientation: EXIF orientation 1-8 (1 = none or absent).
        conversions: one short phrase per conversion applied, in order.
        camera: EXIF camera facts.
    """

    path: Path
    size: tuple[int, int]
    stored_size: tuple[int, int]
    mode: str
    format: str | None
    exif_orientation: int = 1
    conversions: tuple[str, ...] = ()
    camera: CameraExif = field(default_factory=CameraExif)


def _rational(v) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    return f if math.isfinite(f) and f > 0 else None


def _text(v) -> str | None:
    if v is None:
        return None
    s = v.decode("latin-1", "replace") if isinstance(v, bytes) else str(v)
    s = s.strip("\x00 ").strip()
    return s or None


def _camera_exif(exif: Image.Exif, stored_wh: tuple[int, int], oriented_wh: tuple[int, int]) -> CameraExif:
    try:
        sub = exif.get_ifd(_EXIF_IFD)
    except Exception:  # a malformed EXIF block must not make a readable image unreadable
        sub = {}

    def tag(t):
        return sub.get(t, exif.get(t))

    f_mm = _rational(tag(_FOCAL_LENGTH))
    f35 = _rational(tag(_FOCAL_35MM))
    sensor_w = None
    xres, unit = _rational(tag(_FOCAL_PLANE_XRES)), tag(_FOCAL_PLANE_RES_UNIT)
    if xres and unit in _MM_PER_UNIT:
        px_w = _rational(tag(_PIXEL_X_DIMENSION)) or float(stored_wh[0])
        sensor_w = px_w / xres * _MM_PER_UNIT[unit]
    f_px = None
    w, h = oriented_wh
    if f35:
        f_px = f35 * math.hypot(w, h) / _DIAGONAL_35MM
    elif f_mm and sensor_w:
        f_px = f_mm / sensor_w * stored_wh[0]
    return CameraExif(f_mm, f35, sensor_w, f_px, _text(tag(_MAKE)), _text(tag(_MODEL)))


def _to_uint8(a: np.ndarray) -> np.ndarray:
    if a.dtype == np.uint8:
        return a
    if a.dtype == np.bool_:
        return a.astype(np.uint8) * 255
    if np.issubdtype(a.dtype, np.floating):
        # Pillow "F" images have no fixed range: [0, 1] data is scaled by 255, larger data by its maximum.
        finite = np.nan_to_num(a.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
        top = 1.0 if finite.max(initial=0.0) <= 1.0 else finite.max()
        return np.clip(np.rint(finite / top * 255.0), 0, 255).astype(np.uint8)
    info = np.iinfo(a.dtype)
    # Pillow's 16-bit PNGs come as mode "I" (int32) holding 0..65535: scale by the 16-bit range then.
    top = 65535 if (info.bits > 16 and a.min(initial=0) >= 0 and a.max(initial=0) <= 65535) else info.max
    return np.clip(np.rint(a.astype(np.float64) * (255.0 / top)), 0, 255).astype(np.uint8)


def _open_error(path: Path, e: BaseException) -> InputError:
    return InputError(f"cannot read '{path}': {e.__class__.__name__}: {e}; check the file or convert it to JPEG or PNG")


MAX_PIXELS = 250_000_000
"""Default pixel limit of ``read_image`` (a 250-megapixel RGB image is 750 MB in memory)."""
_PIL_LIMIT_LOCK = threading.Lock()


def read_image(path: str | os.PathLike, max_pixels: int = MAX_PIXELS) -> tuple[np.ndarray, ImageInfo]:
    """Read an image file as RGB uint8 with EXIF orientation applied (see the module docstring for conversions).

    Args:
        path: image file (anything Pillow reads: JPEG, PNG, TIFF, BMP, WebP, ...; OpenCV is tried as a
            fallback for formats Pillow does not know).
        max_pixels: refuse images with more pixels than this (they are not decoded). Pillow's own
            decompression-bomb limit (89 MP) is lifted to this value while reading, so large photos work;
            use ``resize_for_detection`` to detect on them.
    Returns:
        image: (H, W, 3) uint8 RGB, C-contiguous.
        info: ``ImageInfo``, including EXIF camera facts (focal length) when present.
    Raises:
        InputError: missing, not a file, empty, unreadable, truncated/corrupt, zero-size or too large.
    """
    p = Path(path)
    if not p.exists():
        raise InputError(f"cannot read '{p}': no such file; check the path")
    if p.is_dir():
        raise InputError(f"cannot read '{p}': it is a directory, not an image file")
    try:
        n_bytes = p.stat().st_size
    except OSError as e:
        raise _open_error(p, e) from e
    if n_bytes == 0:
        raise InputError(f"cannot read '{p}': the file is empty (0 bytes); re-export or re-copy the image")

    conversions: list[str] = []
    try:
        with _PIL_LIMIT_LOCK:
            old_limit = Image.MAX_IMAGE_PIXELS
            Image.MAX_IMAGE_PIXELS = max_pixels
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                    im = Image.open(p)  # reads the header only
            finally:
                Image.MAX_IMAGE_PIXELS = old_limit
        with im:
            stored_wh = im.size
            if stored_wh[0] * stored_wh[1] > max_pixels:
                raise InputError(f"cannot read '{p}': {stored_wh[0]}x{stored_wh[1]} pixels is more than the "
                                 f"{max_pixels:,} allowed; downscale the image first")
            color16 = im.mode in ("RGB", "RGBA") and _is_16bit_color(im)  # before load(), which clears im.tile
            im.load()  # decode now, inside the try: truncated or corrupt data fails here
            fmt, mode = im.format, im.mode
            exif = im.getexif()
            orientation = int(exif.get(_ORIENTATION, 1) or 1)
            if orientation not in range(1, 9):
                orientation = 1
            if color16:
                # Pillow keeps only the high byte of 16-bit colour; decode with OpenCV to scale exactly.
                rgb = _decode_16bit_color(p, conversions)
                if orientation != 1:
                    rgb = np.asarray(Image.fromarray(rgb).transpose(_TRANSPOSE[orientation]))
            else:
                oriented = ImageOps.exif_transpose(im) if orientation != 1 else im
                rgb = _pil_to_rgb(oriented, conversions)
            if orientation != 1:
                conversions.insert(0, f"EXIF orientation {orientation} applied")
    except Image.DecompressionBombError as e:
        raise InputError(f"cannot read '{p}': {e}; downscale the image first") from e
    except UnidentifiedImageError as e:
        rgb, fmt, mode, stored_wh, orientation, exif = _read_with_opencv(p, e, conversions)
    except InputError:
        raise
    except (OSError, ValueError, SyntaxError, EOFError, MemoryError, struct.error, ZeroDivisionError) as e:
        # Pillow: "image file is truncated", "broken data stream", bad PNG chunks (SyntaxError), ...
        raise _open_error(p, e) from e

    h, w = rgb.shape[:2]
    if h == 0 or w == 0:
        raise InputError(f"cannot read '{p}': the image has zero size ({w}x{h} pixels)")
    camera = _camera_exif(exif, stored_wh, (w, h)) if exif is not None else CameraExif()
    info = ImageInfo(path=p, size=(h, w), stored_size=(stored_wh[1], stored_wh[0]), mode=mode, format=fmt,
                     exif_orientation=orientation, conversions=tuple(conversions), camera=camera)
    return np.ascontiguousarray(rgb), info


_TRANSPOSE = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
              5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
              8: Image.Transpose.ROTATE_90}  # as ImageOps.exif_transpose


def _is_16bit_color(im: Image.Image) -> bool:
    tile = getattr(im, "tile", None) or []
    args = tile[0].args if tile and hasattr(tile[0], "args") else None
    raw = args if isinstance(args, str) else (args[0] if isinstance(args, tuple) and args else "")
    return isinstance(raw, str) and ";16" in raw


def _decode_16bit_color(p: Path, conversions: list[str]) -> np.ndarray:
    import cv2

    img = cv2.imdecode(np.fromfile(p, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if img is None or img.ndim != 3 or img.shape[2] not in (3, 4):
        raise InputError(f"cannot read '{p}': OpenCV cannot decode its 16-bit colour data; convert it to 8-bit PNG")
    conversions.append(f"{img.dtype} colour scaled to 8-bit")
    img = _to_uint8(img)
    if img.shape[2] == 4:
        a = img[..., 3:4].astype(np.float64) / 255.0
        conversions.append("alpha composited over white, alpha dropped")
        return np.rint(img[..., 2::-1] * a + 255.0 * (1.0 - a)).astype(np.uint8)
    return np.ascontiguousarray(img[..., ::-1])


def _pil_to_rgb(im: Image.Image, conversions: list[str]) -> np.ndarray:
    mode = im.mode
    if mode == "RGB":
        return np.asarray(im, dtype=np.uint8)
    if mode == "P" and "transparency" in im.info:
        im, mode = im.convert("RGBA"), "RGBA"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = np.asarray(im.convert("RGBA"), dtype=np.float64)
        alpha = rgba[..., 3:4] / 255.0
        conversions.append(f"{mode} composited over white, alpha dropped")
        return np.rint(rgba[..., :3] * alpha + 255.0 * (1.0 - alpha)).astype(np.uint8)
    if mode in ("1", "L", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        gray = np.asarray(im)
        if gray.dtype not in (np.uint8, np.bool_):
            conversions.append(f"{mode} ({gray.dtype}) scaled to 8-bit")
        gray = _to_uint8(gray)
        conversions.append("grayscale expanded to RGB")
        return np.repeat(gray[..., None], 3, axis=2)
    conversions.append(f"{mode} converted to RGB")
    return np.asarray(im.convert("RGB"), dtype=np.uint8)


def _read_with_opencv(p: Path, pil_error: Exception, conversions: list[str]):
    """Fallback for formats Pillow cannot identify. No EXIF handling (OpenCV applies orientation itself)."""
    import cv2

    data = np.fromfile(p, dtype=np.uint8)
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if img is None:
        raise InputError(f"cannot read '{p}': neither Pillow nor OpenCV can decode it ({pil_error}); "
                         "convert it to JPEG or PNG") from pil_error
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[..., 0]
    if img.dtype != np.uint8:
        conversions.append(f"{img.dtype} scaled to 8-bit")
        img = _to_uint8(img)
    if img.ndim == 2:
        conversions.append("grayscale expanded to RGB")
        rgb = np.repeat(img[..., None], 3, axis=2)
    elif img.shape[2] == 4:
        bgra = img.astype(np.float64)
        a = bgra[..., 3:4] / 255.0
        conversions.append("BGRA composited over white, alpha dropped")
        rgb = np.rint(bgra[..., 2::-1] * a + 255.0 * (1.0 - a)).astype(np.uint8)
    else:
        rgb = img[..., 2::-1]
    h, w = img.shape[:2]
    mode = "L" if img.ndim == 2 else ("BGRA" if img.shape[2] == 4 else "BGR")
    return rgb, "opencv", mode, (w, h), 1, None


def resize_for_detection(image: np.ndarray, max_side: int | None) -> tuple[np.ndarray, tuple[float, float]]:
    """Downscale an image so that its longer side is at most ``max_side`` (bilinear interpolation).

    Bilinear, not area averaging: OpenCV's INTER_AREA takes ~120 ms for 4032 -> 1920 px on our 2-core machine,
    more than detecting on the full image, while bilinear takes ~15 ms (docs/benchmarks.md). MediaPipe
    resamples its input to 224/256 px bilinearly anyway.

    Args:
        image: (H, W, 3) uint8.
        max_side: largest allowed side, pixels; None or 0 disables (the image is returned unchanged).
    Returns:
        small: (h, w, 3) uint8; ``image`` itself when no resize was needed.
        scale: (sx, sy) = (W / w, H / h); multiply small-image pixel coordinates by it to get original pixels
            (see ``to_original_pixels``).
    """
    h, w = image.shape[:2]
    if not max_side or max(h, w) <= max_side:
        return image, (1.0, 1.0)
    import cv2

    f = max_side / max(h, w)
    nw, nh = max(1, round(w * f)), max(1, round(h * f))
    small = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_LINEAR)
    return small, (w / nw, h / nh)


def to_original_pixels(points: np.ndarray, scale: tuple[float, float]) -> np.ndarray:
    """Map (..., 2) pixel coordinates of a ``resize_for_detection`` image back to the original image.

    Coordinates are continuous (0 = the left/top edge of the image), so the map is a pure scale.
    """
    return np.asarray(points, dtype=np.float64) * np.asarray(scale, dtype=np.float64)
