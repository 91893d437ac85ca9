"""SMPL-format body models: the shipped open model (default) or a user's SMPL file, with batched torch LBS."""

from hmr_fit.body.io import read_model_file
from hmr_fit.body.joints import KEYPOINT_NAMES, SMPL_JOINT_NAMES, SMPL_PARENTS
from hmr_fit.body.model import BodyModel, BodyOutput

__all__ = ["BodyModel", "BodyOutput", "read_model_file", "KEYPOINT_NAMES", "SMPL_JOINT_NAMES", "SMPL_PARENTS"]
