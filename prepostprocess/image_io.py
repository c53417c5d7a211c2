"""Reading images the same way in training and deployment: always uint8 ``HxWx3`` BGR.

``read_image_bgr`` decodes with OpenCV's ``IMREAD_UNCHANGED`` (which ignores EXIF) and then makes
every case explicit and deterministic:

- EXIF orientation (JPEG APP1 or PNG ``eXIf``, tag 0x0112, values 1-8) is parsed here and applied
  with exact flips/transposes, so the result does not depend on the OpenCV build;
- grayscale -> the value replicated into 3 channels;
- alpha (4 channels) -> dropped, colour channels kept as stored (what ``cv2.imread`` and
  ``PIL.Image.convert("RGB")`` give);
- 16-bit -> 8-bit by ``round(v * 255 / 65535)`` (integer arithmetic); float images -> error.

A missing, empty or undecodable file raises :class:`ImageLoadError` naming the file.
"""

from __future__ import annotations

import os
import struct

import cv2
import numpy as np

_ORIENTATION_TAG = 0x0112


class ImageLoadError(OSError):
    """An image file is missing, unreadable or cannot be decoded."""


def _tiff_orientation(tiff: bytes) -> int:
    if len(tiff) < 8 or tiff[:2] not in (b"II", b"MM"):
        return 1
    endian = "<" if tiff[:2] == b"II" else ">"
    (ifd,) = struct.unpack(endian + "I", tiff[4:8])
    if ifd + 2 > len(tiff):
        return 1
    (count,) = struct.unpack(endian + "H", tiff[ifd : ifd + 2])
    for i in range(count):
        entry = tiff[ifd + 2 + 12 * i : ifd + 14 + 12 * i]
        if len(entry) < 12:
            break
        tag, typ = struct.unpack(endian + "HH", entry[:4])
        if tag == _ORIENTATION_TAG and typ == 3:  # SHORT
            (value,) = struct.unpack(endian + "H", entry[8:10])
            return value if 1 <= value <= 8 else 1
    return 1


def exif_orientation(data: bytes) -> int:
    """EXIF orientation (1-8) of an encoded JPEG or PNG; 1 when absent or unreadable."""
    if data[:2] == b"\xff\xd8":  # JPEG: walk the markers up to start-of-scan
        pos = 2
        while pos + 4 <= len(data) and data[pos] == 0xFF:
            marker = data[pos + 1]
            (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
            if marker == 0xDA:
                break
            if marker == 0xE1 and data[pos + 4 : pos + 10] == b"Exif\x00\x00":
                return _tiff_orientation(data[pos + 10 : pos + 2 + length])
            pos += 2 + length
        return 1
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        pos = 8
        while pos + 8 <= len(data):
            (length,) = struct.unpack(">I", data[pos : pos + 4])
            kind = data[pos + 4 : pos + 8]
            if kind == b"eXIf":
                return _tiff_orientation(data[pos + 8 : pos + 8 + length])
            if kind in (b"IDAT", b"IEND"):
                break
            pos += 12 + length
    return 1


def apply_orientation(img: np.ndarray, orientation: int) -> np.ndarray:
    """Turn a stored image into its displayed orientation (EXIF values 1-8)."""
    ops = {
        1: lambda a: a,
        2: lambda a: cv2.flip(a, 1),
        3: lambda a: cv2.rotate(a, cv2.ROTATE_180),
        4: lambda a: cv2.flip(a, 0),
        5: lambda a: cv2.transpose(a),
        6: lambda a: cv2.rotate(a, cv2.ROTATE_90_CLOCKWISE),
        7: lambda a: cv2.rotate(cv2.transpose(a), cv2.ROTATE_180),
        8: lambda a: cv2.rotate(a, cv2.ROTATE_90_COUNTERCLOCKWISE),
    }
    return ops.get(orientation, ops[1])(img)


def _to_bgr_uint8(img: np.ndarray, path: str) -> np.ndarray:
    if img.dtype == np.uint16:
        img = ((img.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    elif img.dtype != np.uint8:
        raise ImageLoadError(f"{path}: unsupported pixel type {img.dtype}; convert the image to 8 or 16 bit")
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    if img.shape[2] in (1, 2):  # gray, gray + alpha
        return cv2.cvtColor(np.ascontiguousarray(img[..., 0]), cv2.COLOR_GRAY2BGR)
    if img.shape[2] == 4:
        return np.ascontiguousarray(img[..., :3])
    return img


def decode_image_bgr(data: bytes, path: str = "<bytes>") -> np.ndarray:
    """Decode encoded image bytes to uint8 ``HxWx3`` BGR (see module docstring)."""
    buf = np.frombuffer(data, dtype=np.uint8)
    img = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED) if buf.size else None
    if img is None:
        raise ImageLoadError(f"{path}: cannot decode image ({len(data)} bytes; corrupt or not an image)")
    return apply_orientation(_to_bgr_uint8(img, path), exif_orientation(data))


def read_image_bgr(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as uint8 ``HxWx3`` BGR with orientation applied."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise ImageLoadError(f"{path}: image file not found; check the data root / image folder") from None
    except OSError as exc:
        raise ImageLoadError(f"{path}: cannot read image file ({exc.strerror})") from None
    return decode_image_bgr(data, path)
