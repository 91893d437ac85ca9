"""Full-perspective pinhole camera (OpenCV axes: x right, y down, z forward) and per-person initialisation.

The fit optimizes the body's translation as ``(tx/tz, ty/tz, log tz)``: the image-plane direction of the body and
its log depth. Residuals then scale the same way for near and far people, which keeps one set of step sizes (and one
learned optimizer) valid across image sizes and distances.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from hmr_fit.errors import InputError

# A 43.27 mm diagonal is the 35 mm film frame's; the default focal length of f = 1.0 x image diagonal equals a
# 43 mm lens on 35 mm film (53 degrees diagonal field of view), between a phone's main camera (26 mm) and a 50 mm
# portrait lens. CLIFF (Li et al. 2022) makes the same choice for photos without EXIF.
FILM_DIAGONAL_MM = 43.27
DEFAULT_FOCAL_35MM = 43.27

# Front-facing orientation in OpenCV camera axes: a rotation of pi about x takes the model's y-up, facing-+z frame
# to y-down and facing the camera (-z); the body's left (+x) appears on the image's right, as in a photo of a
# person facing the camera. The back view turns the body a further pi about its vertical axis.
FRONT_ORIENT = (math.pi, 0.0, 0.0)
BACK_ORIENT = (0.0, 0.0, math.pi)  # = R_x(pi) R_y(pi): facing away, upright


@dataclass
class Camera:
    """Pinhole intrinsics per problem.

    Attributes:
        focal: (B, 2) fx, fy in pixels.
        center: (B, 2) principal point cx, cy in pixels.
        image_size: (B, 2) width, height in pixels.
    """

    focal: torch.Tensor
    center: torch.Tensor
    image_size: torch.Tensor

    @classmethod
    def for_image(cls, width: int, height: int, focal_px: float | None = None, focal_35mm: float | None = None,
                  batch: int = 1, dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu") -> "Camera":
        """Camera of one image: focal length from EXIF (pixels or 35 mm-equivalent) or the documented default,
        principal point at the image centre."""
        if width <= 0 or height <= 0:
            raise InputError(f"image size must be positive, got {width}x{height}")
        f = focal_length_px(width, height, focal_px, focal_35mm)
        focal = torch.full((batch, 2), f, dtype=dtype, device=device)
        center = torch.tensor([[width / 2.0, height / 2.0]], dtype=dtype, device=device).expand(batch, 2)
        size = torch.tensor([[float(width), float(height)]], dtype=dtype, device=device).expand(batch, 2)
        return cls(focal, center.clone(), size.clone())

    @classmethod
    def cat(cls, cameras: list["Camera"]) -> "Camera":
        return cls(torch.cat([c.focal for c in cameras]), torch.cat([c.center for c in cameras]),
                   torch.cat([c.image_size for c in cameras]))

    def index(self, idx) -> "Camera":
        return Camera(self.focal[idx], self.center[idx], self.image_size[idx])

    def to(self, *args, **kwargs) -> "Camera":
        return Camera(self.focal.to(*args, **kwargs), self.center.to(*args, **kwargs),
                      self.image_size.to(*args, **kwargs))

    def project(self, points: torch.Tensor) -> torch.Tensor:
        """(B, K, 3) camera-frame points, metres -> (B, K, 2) pixels. Depths are clamped at 1 mm so that a point
        behind the camera gives a large finite residual rather than inf."""
        z = points[..., 2:3].clamp(min=1e-3)
        return points[..., :2] / z * self.focal[:, None] + self.center[:, None]

    def backproject(self, pixels: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
        """(B, 2) pixels and (B,) depths -> (B, 3) camera-frame points."""
        xy = (pixels - self.center) / self.focal * depth[:, None]
        return torch.cat([xy, depth[:, None]], dim=-1)

    def intrinsics_matrix(self) -> torch.Tensor:
        """(B, 3, 3) K matrices."""
        k = torch.zeros(self.focal.shape[0], 3, 3, dtype=self.focal.dtype, device=self.focal.device)
        k[:, 0, 0], k[:, 1, 1] = self.focal[:, 0], self.focal[:, 1]
        k[:, 0, 2], k[:, 1, 2], k[:, 2, 2] = self.center[:, 0], self.center[:, 1], 1.0
        return k


def focal_length_px(width: int, height: int, focal_px: float | None = None, focal_35mm: float | None = None,
                    default_35mm: float = DEFAULT_FOCAL_35MM) -> float:
    """Focal length in pixels: given directly, from a 35 mm-equivalent focal length (scaled by the image diagonal,
    which is what the 35 mm equivalence is defined on), or the default."""
    if focal_px is not None and focal_px > 0 and math.isfinite(focal_px):
        return float(focal_px)
    f35 = focal_35mm if focal_35mm is not None and focal_35mm > 0 else default_35mm
    return f35 / FILM_DIAGONAL_MM * math.hypot(width, height)


def translation_to_params(transl: torch.Tensor) -> torch.Tensor:
    """(B, 3) translation, metres (tz > 0) -> (B, 3) optimizer parameters (tx/tz, ty/tz, log tz)."""
    tz = transl[:, 2:3]
    return torch.cat([transl[:, :2] / tz, tz.log()], dim=-1)


def params_to_translation(params: torch.Tensor) -> torch.Tensor:
    """Inverse of ``translation_to_params``."""
    tz = params[:, 2:3].exp()
    return torch.cat([params[:, :2] * tz, tz], dim=-1)
