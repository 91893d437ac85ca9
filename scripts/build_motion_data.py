"""Copy DeepMimic's humanoid clips out of pybullet's wheel into data/motions/ and retarget them to SMPL-24.

    python scripts/build_motion_data.py [--wheel pybullet-3.2.7-....whl] [--figure docs/figures/motions_retargeted.png]

Without --wheel, ``pip download --no-deps pybullet==3.2.7`` fetches the wheel into a temporary folder (build time
only; nothing downloads at run time). Only ``pybullet_data/data/motions/humanoid3d_*.txt`` and
``pybullet_data/humanoid/humanoid.urdf`` are read from it. Writes ``data/motions/*`` (byte copies) and
``data/motions_smpl.npz`` (see ``hmr_fit.fit.motion``); deterministic, so a rebuild reproduces the files.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from hmr_fit.fit.motion import MOTIONS_FILE, parse_deepmimic, retarget_to_smpl

PYBULLET = "pybullet==3.2.7"
ROOT = Path(__file__).resolve().parents[1]
CLIP_PREFIX = "pybullet_data/data/motions/humanoid3d_"
URDF = "pybullet_data/humanoid/humanoid.urdf"


def fetch_wheel(folder: Path) -> Path:
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", PYBULLET, "-d", str(folder)], check=True)
    return next(folder.glob("pybullet-*.whl"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--wheel", type=Path, default=None, help="pybullet wheel; default: pip download it")
    parser.add_argument("--figure", type=Path, default=None, help="also render a contact sheet of the retarget")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        wheel = args.wheel or fetch_wheel(Path(tmp))
        wheel_sha = hashlib.sha256(wheel.read_bytes()).hexdigest()
        out_dir = ROOT / "data" / "motions"
        out_dir.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(wheel) as zf:
            members = sorted(n for n in zf.namelist() if n.startswith(CLIP_PREFIX) and n.endswith(".txt"))
            texts = {Path(n).name: zf.read(n) for n in members}
            (out_dir / "humanoid.urdf").write_bytes(zf.read(URDF))
    for fname, raw in texts.items():
        (out_dir / fname).write_bytes(raw)

    names, fps, loops, poses, roots, offsets = [], [], [], [], [], [0]
    for fname, raw in texts.items():
        parsed = parse_deepmimic(raw.decode())
        pose, root = retarget_to_smpl(parsed)
        names.append(fname[len("humanoid3d_"):-len(".txt")])
        fps.append(1.0 / float(np.median(parsed["duration"])))
        loops.append(str(parsed["loop"]))
        poses.append(pose)
        roots.append(root)
        offsets.append(offsets[-1] + len(pose))
        print(f"{names[-1]:>16s}: {len(pose):4d} frames at {fps[-1]:5.1f} fps, loop={loops[-1]}")
    metadata = {
        "source": f"DeepMimic humanoid3d clips from the {PYBULLET} wheel (pybullet_data/data/motions), zlib; "
                  "see data/motions/NOTICE.md",
        "wheel_sha256": wheel_sha,
        "retarget": "hmr_fit.fit.motion.retarget_to_smpl: axes C=[[0,0,-1],[0,1,0],[1,0,0]], arms-down rest -> "
                    "T-pose (shoulder R A^-1, elbow A R A^-1), chest split over spine1-3, neck over neck/head, "
                    "collars/wrists/hands/toes zero",
        "poses": "(T_total, 24, 3) SMPL local axis-angle, joint 0 = root orientation in the y-up model frame",
    }
    np.savez_compressed(
        ROOT / "data" / MOTIONS_FILE, names=np.array(names), fps=np.array(fps), loop=np.array(loops),
        offsets=np.array(offsets, dtype=np.int64), poses=np.concatenate(poses).astype(np.float32),
        root_position=np.concatenate(roots).astype(np.float32), metadata=np.array(json.dumps(metadata)))
    print(f"wrote data/{MOTIONS_FILE}: {offsets[-1]} frames from {len(names)} clips")
    if args.figure is not None:
        render_contact_sheet(args.figure)


def render_contact_sheet(path: Path) -> None:
    """Render several frames of several clips with the open model (front and side view rows)."""
    os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
    import pyrender
    import torch
    import trimesh
    from PIL import Image, ImageDraw

    from hmr_fit.body import BodyModel
    from hmr_fit.fit.motion import load_motions

    torch.set_num_threads(1)
    size = 240
    model = BodyModel()
    clips = {c.name: c for c in load_motions(ROOT / "data" / MOTIONS_FILE)}
    chosen = ["walk", "run", "kick", "punch", "cartwheel", "backflip", "crawl", "dance_a"]
    renderer = pyrender.OffscreenRenderer(size, size)
    left = model.v_template[:, 0].numpy() > 0  # the body's left half at rest (SMPL: left is +x)
    rows = []
    for name in chosen:
        clip = clips[name]
        idx = np.linspace(0, len(clip.poses) - 1, 5).round().astype(int)
        pose = torch.as_tensor(clip.poses[idx], dtype=torch.float32)
        out = model(body_pose=pose[:, 1:], global_orient=pose[:, 0])
        for yaw_label, yaw in (("front", 0.0), ("side", np.pi / 2)):
            row = []
            for k, i in enumerate(idx):
                v = out.vertices[k].numpy()
                # Face the camera: undo the clip's heading (yaw of the root) so every tile is seen from the front.
                heading = _heading(clip.poses[i, 0])
                tile = _render(renderer, v, model.faces, left, -heading + yaw, size)
                ImageDraw.Draw(tile).text((4, 4), f"{name} {i} {yaw_label}", fill=(0, 0, 0))
                row.append(tile)
            rows.append(row)
    renderer.delete()
    sheet = Image.new("RGB", (5 * size, len(rows) * size), "white")
    for r, row in enumerate(rows):
        for c, tile in enumerate(row):
            sheet.paste(tile, (c * size, r * size))
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)
    print(f"wrote {path}")


def _heading(root_rotvec: np.ndarray) -> float:
    from hmr_fit.fit.motion import axis_angle_to_matrix

    forward = axis_angle_to_matrix(root_rotvec) @ np.array([0.0, 0.0, 1.0])
    return float(np.arctan2(forward[0], forward[2]))


def _render(renderer, vertices: np.ndarray, faces: np.ndarray, left: np.ndarray, yaw: float, size: int):
    import pyrender
    import trimesh
    from PIL import Image

    rot = trimesh.transformations.rotation_matrix(yaw, [0, 1, 0])[:3, :3]
    centre = (vertices.max(0) + vertices.min(0)) / 2
    v = (vertices - centre) @ rot.T
    mesh = trimesh.Trimesh(v, faces, process=False)
    # The body's left half is red, the right half blue, so left/right can be checked.
    colours = np.where(left[:, None], [[220, 120, 100, 255]], [[120, 150, 210, 255]]).astype(np.uint8)
    mesh.visual.vertex_colors = colours
    scene = pyrender.Scene(bg_color=[1.0, 1.0, 1.0, 1.0], ambient_light=[0.4, 0.4, 0.4])
    scene.add(pyrender.Mesh.from_trimesh(mesh, smooth=False))
    focal, distance = 330.0, 5.0
    camera_pose = np.eye(4)
    camera_pose[2, 3] = distance
    scene.add(pyrender.IntrinsicsCamera(focal, focal, size / 2, size / 2), pose=camera_pose)
    scene.add(pyrender.DirectionalLight(intensity=2.5), pose=camera_pose)
    color, _ = renderer.render(scene)
    return Image.fromarray(color[..., :3])


if __name__ == "__main__":
    main()
