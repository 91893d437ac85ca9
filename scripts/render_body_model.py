"""Render a body model to a PNG contact sheet for a human look: zero pose, shapes (+-2 sd on betas 1-3) and a
pose, front and side views, with the 23 keypoints drawn. Headless (EGL).

    python scripts/render_body_model.py --out docs/figures/open_body_model.png [--model SMPL_NEUTRAL.pkl]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("PYOPENGL_PLATFORM", "egl")

import numpy as np  # noqa: E402
import pyrender  # noqa: E402
import torch  # noqa: E402
import trimesh  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

from hmr_fit.body import BodyModel, SMPL_JOINT_NAMES  # noqa: E402

SIZE = 360


def example_bodies(model: BodyModel) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    zero_pose = torch.zeros(23, 3)
    bodies = [("mean shape, zero pose", torch.zeros(model.num_betas), zero_pose)]
    for k in range(3):
        for sign in (-2, 2):
            betas = torch.zeros(model.num_betas)
            betas[k] = sign
            bodies.append((f"beta{k + 1} = {sign:+d}", betas, zero_pose))
    pose = torch.zeros(23, 3)
    named = {n: i - 1 for i, n in enumerate(SMPL_JOINT_NAMES)}
    pose[named["left_hip"]] = torch.tensor([-0.9, 0.0, 0.1])  # thigh forward (flexion)
    pose[named["left_knee"]] = torch.tensor([1.2, 0.0, 0.0])  # knee bends backwards
    pose[named["right_shoulder"]] = torch.tensor([0.0, 0.0, 1.1])  # right arm down
    pose[named["left_elbow"]] = torch.tensor([0.0, -1.3, 0.0])  # forearm forward
    pose[named["spine2"]] = torch.tensor([0.2, 0.3, 0.0])
    pose[named["neck"]] = torch.tensor([0.0, 0.4, 0.0])
    bodies.append(("posed", torch.zeros(model.num_betas), pose))
    return bodies


def render_view(renderer, vertices: np.ndarray, faces: np.ndarray, keypoints: np.ndarray, yaw: float) -> Image.Image:
    rot = trimesh.transformations.rotation_matrix(yaw, [0, 1, 0])[:3, :3]
    centre = (vertices.max(0) + vertices.min(0)) / 2
    v = (vertices - centre) @ rot.T
    k = (keypoints - centre) @ rot.T
    scene = pyrender.Scene(bg_color=[1.0, 1.0, 1.0, 1.0], ambient_light=[0.3, 0.3, 0.3])
    material = pyrender.MetallicRoughnessMaterial(baseColorFactor=[0.65, 0.74, 0.86, 1.0], metallicFactor=0.1,
                                                  roughnessFactor=0.8)
    scene.add(pyrender.Mesh.from_trimesh(trimesh.Trimesh(v, faces, process=False), material=material))
    focal, distance = 700.0, 4.0
    camera_pose = np.eye(4)
    camera_pose[2, 3] = distance
    scene.add(pyrender.IntrinsicsCamera(focal, focal, SIZE / 2, SIZE / 2), pose=camera_pose)
    scene.add(pyrender.DirectionalLight(intensity=3.0), pose=camera_pose)
    color, _ = renderer.render(scene)
    image = Image.fromarray(color[..., :3])
    draw = ImageDraw.Draw(image)
    for x, y, z in k:  # pinhole projection of the keypoints, camera looking down -z
        u, w = SIZE / 2 + focal * x / (distance - z), SIZE / 2 - focal * y / (distance - z)
        draw.ellipse([u - 2, w - 2, u + 2, w + 2], fill=(220, 30, 30))
    return image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="model file; default: the shipped open model")
    parser.add_argument("--out", type=Path, default=Path("docs/figures/open_body_model.png"))
    args = parser.parse_args()
    model = BodyModel(args.model)
    renderer = pyrender.OffscreenRenderer(SIZE, SIZE)
    tiles = []
    for label, betas, pose in example_bodies(model):
        out = model(betas[None], pose[None])
        v, k = out.vertices[0].numpy(), out.keypoints[0].numpy()
        for yaw in (0.0, np.pi / 2):
            tile = render_view(renderer, v, model.faces, k, yaw)
            ImageDraw.Draw(tile).text((6, 6), label + (" (side)" if yaw else ""), fill=(0, 0, 0))
            tiles.append(tile)
    renderer.delete()
    cols = 4
    rows = (len(tiles) + cols - 1) // cols
    sheet = Image.new("RGB", (cols * SIZE, rows * SIZE), "white")
    for i, tile in enumerate(tiles):
        sheet.paste(tile, ((i % cols) * SIZE, (i // cols) * SIZE))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
