"""The shipped .task is the one scripts/build_pose_task.py produces (its recorded sha256) and is well formed."""

import hashlib
import zipfile
from pathlib import Path

TASK = Path(__file__).resolve().parents[2] / "data" / "pose_landmarker_full.task"

RECORD = TASK.with_name(TASK.name + ".sha256")
NOTICE = TASK.with_name("NOTICE_pose_landmarker.md")


def test_task_hash_matches_build_record():
    recorded = RECORD.read_text().split()[0]
    assert len(recorded) == 64
    assert hashlib.sha256(TASK.read_bytes()).hexdigest() == recorded
    assert recorded in NOTICE.read_text()  # the licence note names the same file


def test_task_is_a_deterministic_aligned_stored_zip():
    with zipfile.ZipFile(TASK) as z:
        infos = z.infolist()
        assert [i.filename for i in infos] == ["pose_detector.tflite", "pose_landmarks_detector.tflite"]
        for i in infos:
            assert i.date_time == (1980, 1, 1, 0, 0, 0)
            assert i.compress_type == zipfile.ZIP_STORED
            data_offset = i.header_offset + 30 + len(i.filename.encode()) + len(i.extra)
            assert data_offset % 64 == 0
            assert z.read(i)[4:8] == b"TFL3"  # a TFLite flatbuffer


def test_notice_states_licence_and_model_card():
    text = NOTICE.read_text()
    assert "Apache License, Version 2.0" in text
    assert "Model%20Card%20BlazePose%20GHUM%203D.pdf" in text
    assert "0.10.21" in text
