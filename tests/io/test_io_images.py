"""read_image: documented conversions and one-line InputErrors; resize_for_detection mapping."""

import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from hmr_fit.errors import InputError
from hmr_fit.io import read_image, resize_for_detection, to_original_pixels

cv2 = pytest.importorskip("cv2")


@pytest.fixture
def rgb():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)


def _one_line_error(path, match):
    with pytest.raises(InputError, match=match) as e:
        read_image(path)
    assert "\n" not in str(e.value) and str(path) in str(e.value)


def test_rgb_png_unchanged(tmp_path, rgb):
    Image.fromarray(rgb).save(tmp_path / "a.png")
    img, info = read_image(tmp_path / "a.png")
    assert img.dtype == np.uint8 and img.flags.c_contiguous
    np.testing.assert_array_equal(img, rgb)
    assert info.size == (48, 64) and info.mode == "RGB" and info.conversions == () and info.exif_orientation == 1


def test_grayscale_becomes_rgb(tmp_path, rgb):
    gray = rgb[..., 0]
    Image.fromarray(gray).save(tmp_path / "g.png")
    img, info = read_image(tmp_path / "g.png")
    assert img.shape == (48, 64, 3) and (img == gray[..., None]).all()
    assert info.mode == "L" and "grayscale expanded to RGB" in info.conversions


def test_rgba_composited_over_white(tmp_path, rgb):
    alpha = np.zeros((48, 64), np.uint8)
    alpha[:, 32:] = 255
    Image.fromarray(np.dstack([rgb, alpha])).save(tmp_path / "t.png")
    img, info = read_image(tmp_path / "t.png")
    assert img.shape == (48, 64, 3)
    assert (img[:, :32] == 255).all()  # transparent -> white
    np.testing.assert_array_equal(img[:, 32:], rgb[:, 32:])  # opaque -> unchanged
    assert info.mode == "RGBA" and any("composited over white" in c for c in info.conversions)


def test_16bit_gray_and_color_scaled_not_clipped(tmp_path):
    rng = np.random.default_rng(1)
    g16 = rng.integers(0, 65536, (20, 30), dtype=np.uint16)
    cv2.imwrite(str(tmp_path / "g16.png"), g16)
    img, info = read_image(tmp_path / "g16.png")
    np.testing.assert_array_equal(img[..., 0], np.rint(g16 * (255 / 65535)).astype(np.uint8))
    assert info.mode.startswith("I;16") and any("scaled to 8-bit" in c for c in info.conversions)
    c16 = rng.integers(0, 65536, (20, 30, 3), dtype=np.uint16)  # BGR, as OpenCV writes
    cv2.imwrite(str(tmp_path / "c16.png"), c16)
    img, info = read_image(tmp_path / "c16.png")
    np.testing.assert_array_equal(img, np.rint(c16[..., ::-1] * (255 / 65535)).astype(np.uint8))
    assert "uint16 colour scaled to 8-bit" in info.conversions


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_applied(tmp_path, rgb, orientation):
    im = Image.fromarray(rgb)
    exif = im.getexif()
    exif[0x0112] = orientation
    im.save(tmp_path / "o.png", exif=exif)
    img, info = read_image(tmp_path / "o.png")
    transforms = {1: lambda a: a, 2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
                  5: lambda a: a.transpose(1, 0, 2), 6: lambda a: np.rot90(a, -1),
                  7: lambda a: a[::-1, ::-1].transpose(1, 0, 2), 8: lambda a: np.rot90(a, 1)}
    np.testing.assert_array_equal(img, transforms[orientation](rgb))
    assert info.exif_orientation == orientation and info.stored_size == (48, 64)
    assert info.size == ((64, 48) if orientation >= 5 else (48, 64))


def test_exif_rotated_jpeg_and_focal_length(tmp_path):
    yy, xx = np.mgrid[0:48, 0:64]
    rgb = np.stack([xx * 4, yy * 5, 255 - xx * 4], -1).astype(np.uint8)  # smooth: survives JPEG
    im = Image.fromarray(rgb)
    exif = im.getexif()
    exif[0x0112] = 6
    exif[0x010F] = "ACME"
    sub = exif.get_ifd(0x8769)
    sub[0x920A] = 4.2  # FocalLength, mm
    sub[0xA405] = 26  # FocalLengthIn35mmFilm
    im.save(tmp_path / "r.jpg", quality=95, exif=exif)
    img, info = read_image(tmp_path / "r.jpg")
    assert img.shape == (64, 48, 3) and info.exif_orientation == 6
    assert np.abs(img.astype(int) - np.rot90(rgb, -1)).mean() < 4  # rotated clockwise; JPEG-lossy
    cam = info.camera
    assert cam.focal_length_mm == pytest.approx(4.2) and cam.focal_length_35mm == 26 and cam.make == "ACME"
    assert cam.focal_length_px == pytest.approx(26 * np.hypot(48, 64) / np.hypot(36, 24))


def test_focal_from_mm_and_focal_plane_resolution(tmp_path, rgb):
    im = Image.fromarray(rgb)
    exif = im.getexif()
    sub = exif.get_ifd(0x8769)
    sub[0x920A] = 8.0  # mm
    sub[0xA20E] = 64 / 6.4 * 25.4  # px per inch for a 6.4 mm wide sensor imaged at 64 px
    sub[0xA210] = 2  # inch
    im.save(tmp_path / "f.jpg", exif=exif)
    _, info = read_image(tmp_path / "f.jpg")
    assert info.camera.sensor_width_mm == pytest.approx(6.4)
    assert info.camera.focal_length_px == pytest.approx(8.0 / 6.4 * 64)


def test_no_exif_gives_empty_camera(tmp_path, rgb):
    Image.fromarray(rgb).save(tmp_path / "n.jpg")
    _, info = read_image(tmp_path / "n.jpg")
    assert info.camera.focal_length_px is None and info.camera.focal_length_mm is None


def test_missing_empty_directory(tmp_path):
    _one_line_error(tmp_path / "nope.jpg", "no such file")
    (tmp_path / "empty.jpg").write_bytes(b"")
    _one_line_error(tmp_path / "empty.jpg", r"the file is empty \(0 bytes\)")
    with pytest.raises(InputError, match="is a directory"):
        read_image(tmp_path)


def test_corrupt_and_truncated(tmp_path, rgb):
    (tmp_path / "text.jpg").write_bytes(b"this is not an image")
    _one_line_error(tmp_path / "text.jpg", "neither Pillow nor OpenCV can decode it.*convert it to JPEG or PNG")
    Image.fromarray(rgb).save(tmp_path / "ok.jpg")
    data = (tmp_path / "ok.jpg").read_bytes()
    (tmp_path / "half.jpg").write_bytes(data[: len(data) // 2])
    _one_line_error(tmp_path / "half.jpg", "truncated")
    png = (Image.fromarray(rgb).save(tmp_path / "ok.png"), (tmp_path / "ok.png").read_bytes())[1]
    (tmp_path / "bad.png").write_bytes(png[:60] + b"\0" * 40 + png[100:])
    _one_line_error(tmp_path / "bad.png", "cannot read")


def test_zero_size_image(tmp_path):
    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    ihdr = struct.pack(">IIBBBBB", 0, 10, 8, 2, 0, 0, 0)  # width 0
    (tmp_path / "zero.png").write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""))
    _one_line_error(tmp_path / "zero.png", "cannot read")


def test_pixel_limit(tmp_path, rgb):
    Image.fromarray(rgb).save(tmp_path / "a.png")
    with pytest.raises(InputError, match="64x48 pixels is more than the 2,000 allowed; downscale"):
        read_image(tmp_path / "a.png", max_pixels=2000)
    with pytest.raises(InputError, match="downscale the image first"):  # Pillow's own bomb check (> 2x)
        read_image(tmp_path / "a.png", max_pixels=1000)


def test_resize_for_detection_round_trip():
    img = np.zeros((3000, 4000, 3), np.uint8)
    small, scale = resize_for_detection(img, 1000)
    assert small.shape == (750, 1000, 3) and scale == (4.0, 4.0)
    np.testing.assert_allclose(to_original_pixels([[100.0, 50.0]], scale), [[400.0, 200.0]])
    same, one = resize_for_detection(img, None)
    assert same is img and one == (1.0, 1.0)
    odd, s = resize_for_detection(np.zeros((1001, 333, 3), np.uint8), 500)
    assert max(odd.shape[:2]) == 500
    assert s[0] * odd.shape[1] == pytest.approx(333) and s[1] * odd.shape[0] == pytest.approx(1001)
