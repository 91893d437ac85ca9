"""Atomic file writes: write a temporary file in the target's directory, flush and fsync it, then ``os.replace``
it over the target. A reader sees the old file or the complete new one, never a partial file; on any failure the
temporary file is removed and the target is left as it was.

Temporary names are ``.<name>.<random>.tmp`` next to the target (same file system, so the rename is atomic).
Files get the usual permissions (0o666 minus the umask), not ``mkstemp``'s 0o600.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
from pathlib import Path
from typing import IO, Any, Iterator, Mapping

import numpy as np

from hmr_fit.errors import InputError

__all__ = ["atomic_open", "write_bytes", "write_text", "write_json", "write_npz", "write_png", "TMP_SUFFIX"]

TMP_SUFFIX = ".tmp"


def _umask() -> int:
    # os.umask can only be read by setting it; do it once and restore at once.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_FILE_MODE = 0o666 & ~_umask()


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb", encoding: str | None = None) -> Iterator[IO[Any]]:
    """Open a temporary file for writing that replaces ``path`` when the ``with`` block ends without an error.

    Args:
        path: target file; its directory must exist.
        mode: "wb" or "w" (text, with ``encoding``, default UTF-8).
        encoding: text encoding for mode "w".
    Yields:
        the open temporary file.
    Raises:
        OSError: the directory is missing or not writable (the target is untouched).
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"mode must be 'wb' or 'w', got {mode!r}")
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TMP_SUFFIX)
    try:
        with os.fdopen(fd, mode, encoding=(encoding or "utf-8") if mode == "w" else None,
                       newline="\n" if mode == "w" else None) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Atomically write ``data`` to ``path``; returns the path."""
    with atomic_open(path, "wb") as f:
        f.write(data)
    return Path(path)


def write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> Path:
    """Atomically write ``text`` (newlines as written) to ``path``; returns the path."""
    with atomic_open(path, "w", encoding=encoding) as f:
        f.write(text)
    return Path(path)


def write_json(path: str | os.PathLike, obj: Any, indent: int | None = 2) -> Path:
    """Atomically write ``obj`` as strict JSON (NaN/inf rejected: convert them to null first), UTF-8, final newline.

    The text is built in memory before the file is opened, so an unserialisable object leaves nothing behind.
    """
    text = json.dumps(obj, indent=indent, allow_nan=False, ensure_ascii=False) + "\n"
    return write_text(path, text)


def write_npz(path: str | os.PathLike, arrays: Mapping[str, np.ndarray], compress: bool = False) -> Path:
    """Atomically write arrays to an ``.npz`` that loads with ``allow_pickle=False`` (object arrays refused).

    Args:
        path: target, normally ending in ``.npz`` (numpy does not add the suffix when given a file object).
        arrays: name -> array (anything ``np.asarray`` takes, not of dtype object).
        compress: use ``np.savez_compressed``.
    """
    arrs = {}
    for k, v in arrays.items():
        a = np.asarray(v)
        if a.dtype == object:
            raise InputError(f"cannot store {k!r} in an npz without pickle: object array")
        arrs[k] = a
    buf = io.BytesIO()
    (np.savez_compressed if compress else np.savez)(buf, **arrs)
    return write_bytes(path, buf.getvalue())


def write_png(path: str | os.PathLike, image: np.ndarray, compression: int = 3) -> Path:
    """Atomically write an RGB(A) or grey uint8 image as PNG.

    Args:
        path: target file.
        image: (H, W, 3) RGB, (H, W, 4) RGBA or (H, W) grey, uint8.
        compression: PNG compression level 0 (none, fastest) to 9 (smallest, slowest).
    """
    import cv2

    image = np.asarray(image)
    if image.dtype != np.uint8 or not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] in (3, 4))):
        raise InputError(f"PNG image must be (H, W), (H, W, 3) or (H, W, 4) uint8, got {image.shape} {image.dtype}")
    if image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR if image.shape[2] == 3 else cv2.COLOR_RGBA2BGRA)
    ok, encoded = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, int(compression)])
    if not ok:
        raise InputError(f"OpenCV could not encode a PNG for '{path}'")
    return write_bytes(path, encoded.tobytes())
