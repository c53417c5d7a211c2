"""Input reading (deploy/inputs.py): every odd image becomes 8-bit BGR; every unreadable item gets a reason."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from litehrnet.deploy.inputs import count_inputs, iter_inputs, read_image


def make_odd_inputs(folder, color_jpg_bytes: bytes) -> dict[str, str | None]:
    """Write a folder of odd inputs; returns name -> expected skip reason fragment (None = readable)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    (folder / "color.jpg").write_bytes(color_jpg_bytes)
    cv2.imwrite(str(folder / "gray.png"), rng.integers(0, 256, (40, 30), dtype=np.uint8))
    cv2.imwrite(str(folder / "alpha.png"), rng.integers(0, 256, (40, 30, 4), dtype=np.uint8))
    cv2.imwrite(str(folder / "deep16.png"), np.full((20, 24, 3), 65535, np.uint16))
    cv2.imwrite(str(folder / "tiny.png"), np.full((1, 1, 3), 99, np.uint8))
    cv2.imwrite(str(folder / "huge.jpg"), np.zeros((3000, 4000, 3), np.uint8))
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "truncated.jpg").write_bytes(color_jpg_bytes[: len(color_jpg_bytes) // 3])
    (folder / "notes.jpg").write_text("this is not an image")
    (folder / "subfolder").mkdir()
    (folder / "dangling.jpg").symlink_to(folder / "gone.jpg")
    return {"color.jpg": None, "gray.png": None, "alpha.png": None, "deep16.png": None, "tiny.png": None,
            "huge.jpg": None, "empty.jpg": "empty file", "truncated.jpg": "not a decodable image",
            "notes.jpg": "not a decodable image", "subfolder": "is a folder", "dangling.jpg": "dangling symbolic link"}


@pytest.fixture
def color_jpg_bytes() -> bytes:
    img = np.random.default_rng(1).integers(0, 256, (60, 80, 3), dtype=np.uint8)
    return cv2.imencode(".jpg", img)[1].tobytes()


def test_folder_items_are_images_or_reasons(tmp_path, color_jpg_bytes):
    expected = make_odd_inputs(tmp_path / "in", color_jpg_bytes)
    items = {name.split("/")[-1]: (img, reason) for name, img, reason in iter_inputs(tmp_path / "in")}
    assert set(items) == set(expected) and count_inputs(tmp_path / "in") == len(expected)
    for name, fragment in expected.items():
        img, reason = items[name]
        if fragment is None:
            assert img is not None and img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3, name
            assert reason == ""
        else:
            assert img is None and fragment in reason, (name, reason)
    assert items["deep16.png"][0].max() == 255 and items["tiny.png"][0].shape == (1, 1, 3)
    assert items["huge.jpg"][0].shape == (3000, 4000, 3)
    gray = cv2.imread(str(tmp_path / "in" / "gray.png"), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(items["gray.png"][0][:, :, 1], gray)


def test_list_file_keeps_paths_as_written_and_reports_missing(tmp_path, color_jpg_bytes):
    (tmp_path / "imgs").mkdir()
    (tmp_path / "imgs" / "a.jpg").write_bytes(color_jpg_bytes)
    listing = tmp_path / "list.txt"
    listing.write_text("# comment\nimgs/a.jpg\n\nimgs/missing.jpg\n")
    items = list(iter_inputs(listing))
    assert [p for p, _, _ in items] == ["imgs/a.jpg", "imgs/missing.jpg"]
    assert items[0][1] is not None and items[1][1] is None and items[1][2] == "file not found"


def test_video_frames_are_numbered(tmp_path):
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 5, (64, 48))
    for i in range(3):
        writer.write(np.full((48, 64, 3), 60 * i, np.uint8))
    writer.release()
    items = list(iter_inputs(path))
    assert [p for p, _, _ in items] == [f"{path}#{i:06d}" for i in range(3)]
    assert all(img.shape == (48, 64, 3) for _, img, _ in items)
    (tmp_path / "broken.mp4").write_bytes(b"nope")
    assert [r for _, _, r in iter_inputs(tmp_path / "broken.mp4")] == ["cannot open video"]


def test_read_image_missing_file(tmp_path):
    assert read_image(tmp_path / "x.png") == (None, "file not found")
