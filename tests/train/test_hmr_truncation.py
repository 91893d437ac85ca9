"""Truncated people in the HMR task distribution: the frame edge removes every keypoint below the hips or knees."""

from __future__ import annotations

import numpy as np

from hmr_fit.body.joints import KEYPOINT_NAMES
from hmr_fit.train.hmr_tasks import truncation_mask

BELOW_HIPS = [KEYPOINT_NAMES.index(n) for n in KEYPOINT_NAMES
              if any(part in n for part in ("knee", "ankle", "toe", "heel"))]
BELOW_KNEES = [KEYPOINT_NAMES.index(n) for n in KEYPOINT_NAMES if any(part in n for part in ("ankle", "toe", "heel"))]


def test_truncation_removes_lower_body_keypoints_only():
    mask = truncation_mask(np.random.default_rng(0), 400, 0.5, 0.5)
    assert mask.shape == (400, len(KEYPOINT_NAMES))
    cut = ~mask.astype(bool)
    truncated = cut.any(1)
    assert 0.4 < truncated.mean() < 0.6  # the requested share of people
    upper = [i for i in range(len(KEYPOINT_NAMES)) if i not in BELOW_HIPS]
    assert not cut[:, upper].any()  # face, arms and hips always stay
    for row in cut[truncated]:  # either everything below the hips, or everything below the knees
        lost = set(np.flatnonzero(row))
        assert lost in (set(BELOW_HIPS), set(BELOW_KNEES))
    knees_only = [set(np.flatnonzero(r)) == set(BELOW_KNEES) for r in cut[truncated]]
    assert 0.3 < np.mean(knees_only) < 0.7


def test_no_truncation_keeps_everything():
    assert truncation_mask(np.random.default_rng(1), 50, 0.0, 0.5).all()
