import struct
import zlib

import cv2
import numpy as np
import pytest

from prepostprocess import ImageLoadError, exif_orientation, read_image_bgr


def tiff_with_orientation(value: int) -> bytes:
    return b"II*\x00" + struct.pack("<IH", 8, 1) + struct.pack("<HHIHH", 0x0112, 3, 1, value, 0) + b"\x00" * 4


def jpeg_with_orientation(img: np.ndarray, value: int) -> bytes:
    data = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 98])[1].tobytes()
    payload = b"Exif\x00\x00" + tiff_with_orientation(value)
    return data[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + data[2:]


def png_with_orientation(img: np.ndarray, value: int) -> bytes:
    data = cv2.imencode(".png", img)[1].tobytes()
    tiff = tiff_with_orientation(value)
    chunk = struct.pack(">I", len(tiff)) + b"eXIf" + tiff + struct.pack(">I", zlib.crc32(b"eXIf" + tiff))
    return data[:33] + chunk + data[33:]  # after the signature and IHDR


def quadrant_image() -> np.ndarray:
    img = np.zeros((32, 48, 3), np.uint8)
    img[:16, :24] = (255, 0, 0)
    img[:16, 24:] = (0, 255, 0)
    img[16:, :24] = (0, 0, 255)
    img[16:, 24:] = (255, 255, 255)
    return img


@pytest.mark.parametrize(
    "value,expect",
    [
        (1, lambda a: a),
        (3, lambda a: a[::-1, ::-1]),
        (6, lambda a: np.rot90(a, k=-1)),  # 90 degrees clockwise
        (8, lambda a: np.rot90(a, k=1)),
        (5, lambda a: a.transpose(1, 0, 2)),
        (2, lambda a: a[:, ::-1]),
    ],
)
def test_exif_orientation_png_exact_and_jpeg(tmp_path, value, expect):
    img = quadrant_image()
    png = tmp_path / "x.png"
    png.write_bytes(png_with_orientation(img, value))
    np.testing.assert_array_equal(read_image_bgr(png), expect(img))
    jpg = tmp_path / "x.jpg"
    jpg.write_bytes(jpeg_with_orientation(img, value))
    assert exif_orientation(jpg.read_bytes()) == value
    got = read_image_bgr(jpg).astype(int)
    assert got.shape == expect(img).shape and np.abs(got - expect(img)).mean() < 4


def test_gray_alpha_and_16bit(tmp_path):
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    cv2.imwrite(str(tmp_path / "g.png"), gray)
    out = read_image_bgr(tmp_path / "g.png")
    assert out.shape == (3, 4, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out[..., 1], gray)
    bgra = np.dstack([np.full((2, 2, 3), 9, np.uint8), np.array([[0, 255], [128, 1]], np.uint8)])
    cv2.imwrite(str(tmp_path / "a.png"), bgra)
    np.testing.assert_array_equal(read_image_bgr(tmp_path / "a.png"), 9)  # alpha dropped
    deep = np.array([[0, 128, 129, 385], [32767, 32896, 65534, 65535]], np.uint16)
    cv2.imwrite(str(tmp_path / "d.png"), deep)
    assert read_image_bgr(tmp_path / "d.png")[..., 0].tolist() == [[0, 0, 1, 1], [127, 128, 255, 255]]


def test_missing_and_corrupt_files_name_the_file(tmp_path):
    with pytest.raises(ImageLoadError, match="nothere.jpg: image file not found"):
        read_image_bgr(tmp_path / "nothere.jpg")
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8 this is not a jpeg")
    with pytest.raises(ImageLoadError, match="broken.jpg: cannot decode"):
        read_image_bgr(bad)
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(ImageLoadError, match="empty.png"):
        read_image_bgr(tmp_path / "empty.png")
