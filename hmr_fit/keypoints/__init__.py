"""2D keypoints for fitting: the canonical 23-keypoint set, offline MediaPipe detection, other detectors' JSON.

``PoseDetector`` is imported lazily (it loads mediapipe); everything else is plain numpy.
"""

from hmr_fit.keypoints.formats import FLIP_PERMUTATION, KEYPOINT_NAMES, NUM_KEYPOINTS
from hmr_fit.keypoints.io import KeypointLoader, load_keypoints
from hmr_fit.keypoints.person import Person
from hmr_fit.keypoints.quality import PersonFilter

__all__ = ["FLIP_PERMUTATION", "KEYPOINT_NAMES", "NUM_KEYPOINTS", "KeypointLoader", "load_keypoints", "Person",
           "PersonFilter", "PoseDetector"]


def __getattr__(name):
    if name == "PoseDetector":
        from hmr_fit.keypoints.detect import PoseDetector

        return PoseDetector
    raise AttributeError(f"module 'hmr_fit.keypoints' has no attribute {name!r}")
