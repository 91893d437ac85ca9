#!/usr/bin/env python3
"""Rebuild ``data/pose_landmarker_full.task`` (MediaPipe Tasks PoseLandmarker bundle) fully offline-usable.

mediapipe >= 0.10.30 ships no pose models and its Tasks API downloads the ``.task`` from the web. The two
tflite files inside the mediapipe 0.10.21 wheel are the same BlazePose (GHUM 3D) "full" models; this script
(see shared/docs/dependencies.md §6):

1. creates a throwaway venv (default ``/tmp/mp021``) with ``mediapipe==0.10.21`` and the few packages its
   metadata writer needs -- the writer is broken in mediapipe 1.2.3 -- and downloads the wheel with pip
   (the only network access in hmr-fit; the run time never downloads);
2. checks the sha256 of the two source tflites, adds the input-normalisation metadata to each
   (detector input [-1, 1]: mean = std = 127.5; landmark model input [0, 1]: mean 0, std 255);
3. zips them into a deterministic ``.task`` (fixed member order, date 1980-01-01, ZIP_STORED, fixed
   attributes, member data 64-byte aligned), writes its sha256 to ``data/pose_landmarker_full.task.sha256``
   and the licence note ``data/NOTICE_pose_landmarker.md``.

Usage: ``python scripts/build_pose_task.py [--venv /tmp/mp021] [--out-dir data]``. Re-running it reproduces
the same bytes (the test ``tests/keypoints/test_pose_task_file.py`` checks the committed hash).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

MEDIAPIPE_VERSION = "0.10.21"
# Everything the 0.10.21 metadata writer imports, without jax/jaxlib (dependencies.md §6, "minimal" venv).
# Pinned to the versions the committed file was built with, so a rebuild reproduces it byte for byte.
WRITER_DEPS = [
    "numpy==1.26.4",
    "protobuf==4.25.9",
    "flatbuffers==25.12.19",
    "opencv-python-headless==4.11.0.86",
    "matplotlib==3.11.2",
    "absl-py==2.5.1",
    "attrs==26.1.0",
]
# (path inside the wheel, name inside the .task, norm mean, norm std, number of outputs, metadata name)
MODELS = [
    ("mediapipe/modules/pose_detection/pose_detection.tflite", "pose_detector.tflite", 127.5, 127.5, 2,
     "pose_detector"),
    ("mediapipe/modules/pose_landmark/pose_landmark_full.tflite", "pose_landmarks_detector.tflite", 0.0, 255.0, 5,
     "pose_landmarks_detector"),
]
# sha256 of the source tflites in the mediapipe 0.10.21 wheel (dependencies.md §6 gives the same prefixes/suffixes).
SOURCE_SHA256 = {
    "pose_detection.tflite": "9ba9dd3d42efaaba86b4ff0122b06f29c4122e756b329d89dca1e297fd8f866c",
    "pose_landmark_full.tflite": "e9a5c5cb17f736fafd4c2ec1da3b3d331d6edbe8a0d32395855aeb2cdfd64b9f",
}
TASK_NAME = "pose_landmarker_full.task"
ZIP_DATE = (1980, 1, 1, 0, 0, 0)
ZIP_ALIGN = 64

NOTICE = """\
# Notice: `pose_landmarker_full.task`

`data/pose_landmarker_full.task` is a MediaPipe Tasks model bundle for the pose landmarker, rebuilt by
`scripts/build_pose_task.py` from two files of the **mediapipe {mp_version}** Python wheel (PyPI):

| member of the .task | source file in the wheel | source sha256 |
| --- | --- | --- |
{rows}

The only change to each model is added TFLite metadata (model name, image-input normalisation, output
names) written by mediapipe 0.10.21's metadata writer; the network and its weights are not modified. The `.task` is a stored zip with fixed member order
and dates and 64-byte-aligned member data, so rebuilding gives the same bytes; its sha256 is

    {task_sha}  {task_name}

(also in `data/{task_name}.sha256`, which the test suite checks).

## Licence

* MediaPipe (source code and the models it ships, including the two tflite files above) is released by
  Google under the **Apache License, Version 2.0**: https://www.apache.org/licenses/LICENSE-2.0 and
  https://github.com/google-ai-edge/mediapipe/blob/master/LICENSE. hmr-fit is Apache-2.0 as well.
  Copyright Google LLC / The MediaPipe Authors. Modification under §4(b) of the licence: metadata added
  and the files renamed and repackaged as described above.
* The models are BlazePose GHUM 3D ("full" variant) by V. Bazarevsky, I. Grishchenko and E. G. Bazavan
  (Google). Model card: https://storage.googleapis.com/mediapipe-assets/Model%20Card%20BlazePose%20GHUM%203D.pdf
  We could not open the PDF itself from the build environment (no network); public projects that cite it
  consistently report that it lists the **Apache License 2.0**, intended uses in fitness and entertainment,
  and limitations: sensitivity to face size/orientation, low light and occlusion, and **multi-person
  input listed as out of scope** of the original (2021) single-person model, and no use for human
  life-critical decisions. Read the card before relying on the model.
* hmr-fit runs this model per person with MediaPipe Tasks' multi-pose support (`num_poses`); quality of
  crowded scenes is therefore outside what the model card evaluates.

## References

* V. Bazarevsky et al., "BlazePose: On-device Real-time Body Pose tracking", CVPR Workshop on Computer Vision
  for Augmented and Virtual Reality, 2020. arXiv:2006.10204.
* MediaPipe Pose Landmarker guide: https://ai.google.dev/edge/mediapipe/solutions/vision/pose_landmarker
"""


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def run(cmd: list[str]) -> None:
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def ensure_venv(venv: Path) -> Path:
    """Create the throwaway build venv once; return its python."""
    py = venv / "bin" / "python"
    marker = venv / ".hmr_fit_build_ok"
    if not marker.exists():
        if not py.exists():
            run([sys.executable, "-m", "venv", str(venv)])
        run([str(py), "-m", "pip", "install", "-q", "--no-deps", f"mediapipe=={MEDIAPIPE_VERSION}"])
        run([str(py), "-m", "pip", "install", "-q", *WRITER_DEPS])
        marker.write_text(MEDIAPIPE_VERSION + "\n")
    return py


def inner_add_metadata(out_json: Path) -> None:
    """Runs inside the mediapipe 0.10.21 venv: writes {member: hex(bytes)} of the models with metadata."""
    import mediapipe  # noqa: F401  (the 0.10.21 package)
    from mediapipe.tasks.python.metadata.metadata_writers import metadata_writer as mw

    root = Path(mediapipe.__file__).resolve().parent.parent
    result = {}
    for src, member, mean, std, n_out, name in MODELS:
        raw = (root / src).read_bytes()
        writer = mw.MetadataWriter.create(bytearray(raw)).add_general_info(name)
        writer = writer.add_image_input(norm_mean=[mean], norm_std=[std])
        for i in range(n_out):
            writer.add_feature_output(name=f"out{i}")
        result[member] = {"source": src, "source_sha256": sha256(raw), "data": writer.populate()[0].hex()}
    out_json.write_text(json.dumps(result))


def deterministic_zip(members: list[tuple[str, bytes]]) -> bytes:
    """Stored (uncompressed) zip with fixed metadata; each member's data starts on a ZIP_ALIGN-byte boundary.

    MediaPipe maps the members in place; unaligned data makes LiteRT warn "Read-only tensor ... has an
    unaligned buffer" and copy every weight tensor. The padding is an extra field (header id 0xD935, the one
    Android's zipalign uses), which unzip tools ignore.
    """
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        for name, data in members:
            info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
            info.compress_type = zipfile.ZIP_STORED
            info.create_system = 3  # unix
            info.external_attr = 0o100644 << 16
            # local header = 30 bytes + file name + extra field (4-byte field header + padding)
            start = buf.tell() + 30 + len(name.encode()) + 4
            pad = -start % ZIP_ALIGN
            info.extra = (0xD935).to_bytes(2, "little") + pad.to_bytes(2, "little") + bytes(pad)
            z.writestr(info, data)
    return buf.getvalue()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--venv", type=Path, default=Path("/tmp/mp021"), help="throwaway build venv (created once)")
    ap.add_argument("--out-dir", type=Path, default=Path(__file__).resolve().parent.parent / "data")
    ap.add_argument("--inner", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.inner:
        inner_add_metadata(args.inner)
        return 0

    py = ensure_venv(args.venv)
    tmp_json = args.venv / "models_with_metadata.json"
    run([str(py), str(Path(__file__).resolve()), "--inner", str(tmp_json)])
    models = json.loads(tmp_json.read_text())

    rows, members = [], []
    for src, member, *_ in MODELS:
        entry = models[member]
        base = Path(src).name
        if entry["source_sha256"] != SOURCE_SHA256[base]:
            print(f"error: {src} has sha256 {entry['source_sha256']}, expected {SOURCE_SHA256[base]}",
                  file=sys.stderr)
            return 1
        members.append((member, bytes.fromhex(entry["data"])))
        rows.append(f"| `{member}` | `{src}` | `{entry['source_sha256']}` |")

    task = deterministic_zip(members)
    task_sha = sha256(task)
    out = args.out_dir
    out.mkdir(parents=True, exist_ok=True)
    (out / TASK_NAME).write_bytes(task)
    (out / f"{TASK_NAME}.sha256").write_text(f"{task_sha}  {TASK_NAME}\n")
    (out / "NOTICE_pose_landmarker.md").write_text(
        NOTICE.format(mp_version=MEDIAPIPE_VERSION, rows="\n".join(rows), task_sha=task_sha, task_name=TASK_NAME))
    print(f"wrote {out / TASK_NAME} ({len(task):,} bytes) sha256 {task_sha}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
