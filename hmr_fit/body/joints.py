"""Names and layouts shared by every SMPL-format model: SMPL's 24 joints and the 23 fitting keypoints."""

from __future__ import annotations

SMPL_JOINT_NAMES: tuple[str, ...] = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2", "left_ankle",
    "right_ankle", "spine3", "left_foot", "right_foot", "neck", "left_collar", "right_collar", "head",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hand",
    "right_hand",
)

SMPL_PARENTS: tuple[int, ...] = (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21)

# The keypoints the fitting energy uses (COCO-17, then the COCO-WholeBody foot points) are defined once, with
# the detector formats.
from hmr_fit.keypoints.formats import KEYPOINT_NAMES  # noqa: E402

# Official SMPL topology (6890 vertices) has no COCO regressor: body keypoints come from posed joints, as in
# SMPLify, and face/feet points from the vertex ids that the SMPL-X project publishes for SMPL-H meshes.
SMPL_KEYPOINT_SOURCES: dict[str, tuple[str, int | str]] = {
    "nose": ("vertex", 332), "left_eye": ("vertex", 2800), "right_eye": ("vertex", 6260),
    "left_ear": ("vertex", 583), "right_ear": ("vertex", 4071),
    "left_shoulder": ("joint", "left_shoulder"), "right_shoulder": ("joint", "right_shoulder"),
    "left_elbow": ("joint", "left_elbow"), "right_elbow": ("joint", "right_elbow"),
    "left_wrist": ("joint", "left_wrist"), "right_wrist": ("joint", "right_wrist"),
    "left_hip": ("joint", "left_hip"), "right_hip": ("joint", "right_hip"),
    "left_knee": ("joint", "left_knee"), "right_knee": ("joint", "right_knee"),
    "left_ankle": ("joint", "left_ankle"), "right_ankle": ("joint", "right_ankle"),
    "left_big_toe": ("vertex", 3216), "left_small_toe": ("vertex", 3226), "left_heel": ("vertex", 3387),
    "right_big_toe": ("vertex", 6617), "right_small_toe": ("vertex", 6624), "right_heel": ("vertex", 6787),
}
