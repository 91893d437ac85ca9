"""Headless rendering (pyrender on EGL) and mesh/parameter export."""

from hmr_fit.render.overlay import Renderer
from hmr_fit.render.views import PALETTE, SKELETON, compose_panels, draw_keypoints, project

__all__ = ["Renderer", "PALETTE", "SKELETON", "compose_panels", "draw_keypoints", "project"]
