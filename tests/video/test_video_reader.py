"""hmr_fit.video.reader: streaming frames from files and image folders; one-line InputErrors for bad inputs."""

from __future__ import annotations

import numpy as np
import pytest

from hmr_fit.errors import InputError
from hmr_fit.video.reader import VideoReader, collect_videos, has_videos, prefetch

cv2 = pytest.importorskip("cv2")


def write_video(path, frames=6, size=(64, 48), fourcc="mp4v", fps=10.0):
    w, h = size
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (w, h))
    for t in range(frames):
        img = np.zeros((h, w, 3), np.uint8)
        img[:, : (t + 1) * 4] = (0, 0, 255)  # BGR red bar that grows
        vw.write(img)
    vw.release()
    return path


def test_reads_every_frame_as_rgb_with_increasing_timestamps(tmp_path):
    reader = VideoReader(write_video(tmp_path / "clip.mp4", frames=6))
    assert (reader.width, reader.height, reader.fps, reader.frame_count) == (64, 48, 10.0, 6)
    frames = list(reader)
    assert [f.index for f in frames] == list(range(6))
    assert [f.timestamp_ms for f in frames] == [0, 100, 200, 300, 400, 500]
    assert frames[0].image.shape == (48, 64, 3) and frames[0].image.dtype == np.uint8
    assert frames[0].image[24, 1, 0] > 200 and frames[0].image[24, 1, 2] < 60  # red in RGB order
    assert reader.frames_read == 6 and not reader.truncated


def test_image_sequence_folder_and_max_frames(tmp_path):
    seq = tmp_path / "seq"
    seq.mkdir()
    for i in range(5):
        cv2.imwrite(str(seq / f"{i:04d}.png"), np.full((20, 30, 3), i * 40, np.uint8))
    reader = VideoReader(seq, fps=25, max_frames=3)
    frames = list(reader)
    assert len(frames) == 3 and frames[2].image[0, 0, 0] == 80 and frames[1].timestamp_ms == 40


@pytest.mark.parametrize("content, suffix, message", [
    (b"", ".mp4", "the file is empty"),
    (b"\x00garbage" * 500, ".mp4", "OpenCV cannot open it"),
    (b"not a video", ".txt", "unsupported video type '.txt'"),
])
def test_bad_files_raise_one_line_input_errors(tmp_path, content, suffix, message):
    path = tmp_path / f"bad{suffix}"
    path.write_bytes(content)
    with pytest.raises(InputError, match=message) as info:
        VideoReader(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_missing_file_and_empty_folder(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        VideoReader(tmp_path / "nope.mp4")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="holds no images"):
        VideoReader(tmp_path / "empty")


def test_truncated_file_fails_on_open_or_reports_truncation(tmp_path):
    good = write_video(tmp_path / "good.avi", frames=8, fourcc="MJPG")
    data = good.read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: len(data) // 2])
    try:
        reader = VideoReader(cut)
    except InputError:
        return  # also acceptable: refused up front
    frames = list(reader)
    assert 0 < len(frames) <= 8


def test_collect_videos_walks_folders_and_finds_sequences(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    write_video(tmp_path / "a" / "x.mp4")
    write_video(tmp_path / "a" / "b" / "y.avi", fourcc="MJPG")
    seq = tmp_path / "a" / "frames"
    seq.mkdir()
    cv2.imwrite(str(seq / "0.png"), np.zeros((8, 8, 3), np.uint8))
    (tmp_path / "a" / "notes.txt").write_text("x")
    videos, problems = collect_videos([tmp_path / "a", tmp_path / "missing"])
    assert [v.relative_to(tmp_path).as_posix() for v in videos] == ["a/b/y.avi", "a/x.mp4", "a/frames"]
    assert len(problems) == 1 and "no such file" in problems[0]
    assert has_videos([tmp_path / "a"]) and not has_videos([seq])


def test_prefetch_streams_in_order_and_reraises():
    assert list(prefetch(iter(range(50)), maxsize=3)) == list(range(50))

    def broken():
        yield 1
        raise InputError("decode failed at frame 1")

    got = []
    with pytest.raises(InputError, match="frame 1"):
        for item in prefetch(broken()):
            got.append(item)
    assert got == [1]
