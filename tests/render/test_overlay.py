"""Renderer: OpenCV camera agreement, people colours and occlusion, side view, keypoints, reuse, configs."""

from __future__ import annotations

import inspect
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from hmr_fit.errors import InputError
from hmr_fit.render import PALETTE, Renderer, compose_panels, project
from hmr_fit.render.views import DETECTED_COLOR, FITTED_COLOR, vertex_normals

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "render" / "default.yaml"


def body(model, x: float = 0.0, depth: float = 3.0, y: float = 0.0, arms_down: bool = False):
    """A person standing upright facing an OpenCV camera at (x, y, depth): (vertices (V, 3), keypoints (23, 3))."""
    pose = torch.zeros(1, 23, 3)
    if arms_down:
        pose[0, 15, 2], pose[0, 16, 2] = -1.2, 1.2  # shoulders: out of the T-pose
    out = model(torch.zeros(1, model.num_betas), pose, torch.tensor([[math.pi, 0.0, 0.0]]),
                torch.tensor([[x, y, depth]]))
    return out.vertices[0].numpy(), out.keypoints[0].numpy()


@pytest.fixture(scope="module")
def renderer(open_model):
    with Renderer(open_model.faces) as r:
        yield r


def mask_bbox(mask: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(mask)
    return np.array([xs.min(), ys.min(), xs.max(), ys.max()], dtype=float)


def hue_of(rgb) -> str:
    """Which palette entry (blue 0 / orange 1) a shaded pixel belongs to."""
    r, _, b = (float(c) for c in rgb)
    return "blue" if b > r else "orange"


@pytest.mark.parametrize("size, intrinsics", [((480, 512), (500.0, 520.0, 250.3, 240.7)),
                                              ((300, 220), (260.0, 250.0, 120.0, 140.0))])
def test_silhouette_matches_opencv_projection(renderer, open_model, size, intrinsics):
    verts, _ = body(open_model, x=0.1, y=0.05, depth=3.2, arms_down=True)
    rgba = renderer.render_rgba([verts], intrinsics, size)
    assert rgba.shape == (*size, 4) and rgba.dtype == np.uint8
    uv = project(verts, intrinsics)
    expected = np.array([*uv.min(0), *uv.max(0)])
    assert np.abs(mask_bbox(rgba[..., 3] > 127) - expected).max() <= 1.5
    # Vertices land on covered pixels (all but some on sub-pixel fingers), and better so than with the projection
    # moved by half a pixel either way: no flip, no half-pixel offset.
    def hit_rate(shift):
        px = np.round(uv + shift).astype(int)
        return (rgba[px[:, 1], px[:, 0], 3] > 0).mean()

    assert hit_rate((0.0, 0.0)) > 0.985
    for shift in [(-0.5, 0.0), (0.5, 0.0), (0.0, -0.5), (0.0, 0.5)]:
        assert hit_rate((0.0, 0.0)) > hit_rate(shift)


def test_overlay_blends_over_the_photo(renderer, open_model):
    image = np.full((240, 320, 3), 30, np.uint8)
    verts, _ = body(open_model, depth=4.0)
    k = (300.0, 300.0, 160.0, 120.0)
    out = renderer.overlay(image, [verts], k)
    assert out.shape == image.shape and out.dtype == np.uint8
    changed = np.any(out != image, axis=2)
    uv = project(verts, k)
    assert np.abs(mask_bbox(changed) - np.array([*uv.min(0), *uv.max(0)])).max() <= 1.5
    opaque = Renderer(open_model.faces, alpha=1.0)
    try:  # alpha < 1 keeps some of the photo: the blend lies between photo and opaque render
        solid = opaque.overlay(image, [verts], k)
    finally:
        opaque.close()
    inside = solid[..., 2] > 60
    assert np.all(out[inside].astype(int) <= solid[inside].astype(int) + 1)


def test_two_people_get_palette_colours(renderer, open_model):
    left, _ = body(open_model, x=-0.6, depth=4.0)
    right, kp_right = body(open_model, x=0.6, depth=4.0)
    k = (400.0, 400.0, 256.0, 256.0)
    rgba = renderer.render_rgba([left, right], k, (512, 512))
    _, kp_left = body(open_model, x=-0.6, depth=4.0)
    hip_mid = lambda kp: project((kp[11] + kp[12]) / 2 + np.array([0, -0.15, 0]), k)  # noqa: E731 - belly
    (ul, vl), (ur, vr) = hip_mid(kp_left), hip_mid(kp_right)
    a, b = rgba[int(vl), int(ul)], rgba[int(vr), int(ur)]
    assert a[3] == 255 and b[3] == 255
    assert hue_of(a[:3]) == "blue" and hue_of(b[:3]) == "orange"  # PALETTE[0], PALETTE[1]
    # person_ids pins a person's colour whatever the list order
    swapped = renderer.render_rgba([right, left], k, (512, 512), person_ids=[1, 0])
    assert np.abs(swapped.astype(int) - rgba.astype(int)).max() <= 2
    assert PALETTE[0][2] > PALETTE[0][0] and PALETTE[1][0] > PALETTE[1][2]


@pytest.mark.parametrize("order", [(0, 1), (1, 0)])
def test_nearer_person_occludes_farther(renderer, open_model, order):
    near, kp_near = body(open_model, x=0.0, depth=3.0)
    far, _ = body(open_model, x=0.05, depth=5.0)
    people, ids = [near, far], [0, 1]  # near is blue, far is orange
    rgba = renderer.render_rgba([people[i] for i in order], (450.0, 450.0, 200.0, 200.0), (400, 400),
                                person_ids=[ids[i] for i in order])
    u, v = project((kp_near[11] + kp_near[12]) / 2 + np.array([0, -0.15, 0]), (450.0, 450.0, 200.0, 200.0))
    assert hue_of(rgba[int(v), int(u), :3]) == "blue"
    assert (rgba[..., 3] > 0).any()


def test_zero_people_leaves_image_unchanged(renderer):
    image = np.random.default_rng(0).integers(0, 256, (64, 96, 3), dtype=np.uint8)
    k = (100.0, 100.0, 48.0, 32.0)
    assert np.array_equal(renderer.overlay(image, [], k), image)
    side = renderer.side_view(image.shape[:2], [], k)
    assert side.shape == image.shape and (side == 255).all()
    assert np.array_equal(renderer.keypoint_overlay(image, np.zeros((0, 23, 2)), np.zeros((0, 23)), None), image)
    picture = renderer.render_all(image, [], k)
    assert picture.shape[0] == image.shape[0]


def test_side_view_shows_people_from_the_side(renderer, open_model):
    verts, _ = body(open_model, depth=3.0)  # T-pose: wide from the front, narrow from the side
    k = (500.0, 500.0, 256.0, 256.0)
    front = renderer.render_rgba([verts], k, (512, 512))[..., 3] > 0
    side = renderer.side_view((512, 512), [verts], k)
    assert side.shape == (512, 512, 3)
    person = np.any(side != 255, axis=2)
    assert person.sum() > 2000
    fb, sb = mask_bbox(front), mask_bbox(person)
    assert (sb[2] - sb[0]) < 0.5 * (fb[2] - fb[0])  # arm span gone
    assert abs((sb[3] - sb[1]) - (fb[3] - fb[1])) < 0.1 * (fb[3] - fb[1])  # same height, same depth
    assert (side[0] == 255).all() and (side[:, 0] == 255).all()  # white background


def test_side_view_fits_people_spread_in_depth(renderer, open_model):
    people = [body(open_model, x=0.0, depth=d)[0] for d in (2.5, 8.0)]
    side = renderer.side_view((256, 256), people, (300.0, 300.0, 128.0, 128.0))
    person = np.any(side != 255, axis=2)
    x0, y0, x1, y1 = mask_bbox(person)
    assert x0 > 5 and y0 > 5 and x1 < 250 and y1 < 250  # nobody cut off by the frame


def test_keypoint_overlay_marks_keypoints_and_skips_low_confidence(renderer, open_model):
    verts, kp3d = body(open_model, depth=3.0)
    k = (500.0, 500.0, 256.0, 256.0)
    fitted = project(kp3d, k)[None]
    detected = fitted + np.array([12.0, 0.0])
    confidence = np.ones((1, 23))
    detected[0, 0] = (500.0, 500.0)  # an isolated corner point (the legend sits top left)
    confidence[0, 0] = 0.05
    image = np.zeros((512, 512, 3), np.uint8)
    out = renderer.keypoint_overlay(image, detected, confidence, fitted)
    for u, v in np.concatenate([detected[0, 1:], fitted[0]]).round().astype(int):
        assert out[v - 2:v + 3, u - 2:u + 3].any(), (u, v)
    assert not out[495:506, 495:506].any()  # below min_keypoint_confidence: not drawn
    confidence[0, 0] = 0.9
    assert renderer.keypoint_overlay(image, detected, confidence, fitted)[495:506, 495:506].any()
    # detected and fitted differ in colour
    u, v = detected[0, 9].round().astype(int)
    uf, vf = fitted[0, 9].round().astype(int)
    assert tuple(out[v, u]) == DETECTED_COLOR and tuple(out[vf, uf]) == FITTED_COLOR
    # a single person given as (K, 2) is accepted; NaN points are skipped, not fatal
    fitted_nan = fitted[0].copy()
    fitted_nan[3] = np.nan
    assert renderer.keypoint_overlay(image, None, None, fitted_nan).any()


def test_renderer_is_reused_across_image_sizes(renderer, open_model):
    verts, _ = body(open_model, depth=3.5, arms_down=True)
    renderer.render_rgba([verts], (300.0, 300.0, 160.0, 120.0), (240, 320))
    context = renderer._offscreen
    for h, w in [(480, 640), (200, 150), (240, 320), (512, 512)]:
        k = (0.9 * w, 0.9 * w, w / 2, h / 2)
        rgba = renderer.render_rgba([verts], k, (h, w))
        assert rgba.shape == (h, w, 4)
        uv = project(verts, k)
        assert np.abs(mask_bbox(rgba[..., 3] > 127) - np.array([*uv.min(0), *uv.max(0)])).max() <= 1.5
    assert renderer._offscreen is context


def test_render_all_composes_panels(open_model):
    verts, kp3d = body(open_model, depth=3.0)
    k = (200.0, 200.0, 80.0, 60.0)
    image = np.full((120, 160, 3), 90, np.uint8)
    fitted = project(kp3d, k)[None]
    with Renderer(open_model.faces) as r:
        assert r.render_all(image, [verts], k, fitted, np.ones((1, 23)), fitted).shape == (120, 3 * 160 + 2 * 4, 3)
        assert r.render_all(image, [verts], k).shape == (120, 2 * 160 + 4, 3)
    with Renderer(open_model.faces, show_side_view=False) as r:
        assert r.render_all(image, [verts], k, fitted, None, fitted).shape == (120, 2 * 160 + 4, 3)
    r.close()  # closing twice is fine
    assert compose_panels([image, image[:60, :80]], gap=0).shape == (120, 320, 3)


def test_bad_inputs_raise_input_error(renderer, open_model):
    verts, _ = body(open_model)
    k = (100.0, 100.0, 50.0, 50.0)
    with pytest.raises(InputError, match=r"\(H, W, 3\) uint8"):
        renderer.overlay(np.zeros((10, 10, 3), np.float32), [verts], k)
    with pytest.raises(InputError, match=r"vertices of person 0 must be"):
        renderer.overlay(np.zeros((10, 10, 3), np.uint8), [verts[:10]], k)
    with pytest.raises(InputError, match="intrinsics"):
        renderer.overlay(np.zeros((10, 10, 3), np.uint8), [verts], (100.0, -1.0, 5.0, 5.0))
    with pytest.raises(InputError, match="keypoints must be"):
        renderer.keypoint_overlay(np.zeros((10, 10, 3), np.uint8), np.zeros((1, 23, 3)), None, None)
    with pytest.raises(InputError, match="alpha"):
        Renderer(open_model.faces, alpha=2.0)


def test_vertex_normals_point_outwards(open_model):
    verts, _ = body(open_model, depth=3.0)
    n = vertex_normals(verts, open_model.faces)
    assert np.allclose(np.linalg.norm(n, axis=1), 1.0, atol=1e-5)
    centre = verts.mean(0)
    assert ((verts - centre) * n).sum(1).mean() > 0  # outward on average (consistent winding)


def test_config_keys_match_constructor(open_model):
    omegaconf = pytest.importorskip("omegaconf")
    cfg = omegaconf.OmegaConf.to_container(omegaconf.OmegaConf.load(CONFIG))
    assert cfg.pop("_target_") == "hmr_fit.render.overlay.Renderer"
    params = {n: p.default for n, p in inspect.signature(Renderer.__init__).parameters.items()
              if n not in ("self", "faces")}
    assert cfg == params
    hydra_utils = pytest.importorskip("hydra.utils")
    r = hydra_utils.instantiate(omegaconf.OmegaConf.load(CONFIG), faces=open_model.faces)
    assert isinstance(r, Renderer) and r.alpha == params["alpha"]
    r.close()


def test_closing_one_renderer_keeps_others_working(renderer, open_model):
    verts, _ = body(open_model, depth=3.0)
    k = (200.0, 200.0, 64.0, 64.0)
    renderer.render_rgba([verts], k, (128, 128))
    other = Renderer(open_model.faces)
    assert other.render_rgba([verts], k, (128, 128))[..., 3].any()
    other.close()  # pyrender's own delete() would eglTerminate the display shared with `renderer`
    assert renderer.render_rgba([verts], k, (128, 128))[..., 3].any()
    assert other.render_rgba([verts], k, (128, 128))[..., 3].any()  # a closed renderer reopens on use
    other.close()
