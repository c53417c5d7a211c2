import cv2
import numpy as np
import pytest

from prepostprocess import (
    crop,
    crop_box_to_int,
    pad,
    pad_to,
    resize_bilinear,
    resize_bilinear_fixed,
    resize_keep_ratio_pad,
)


def test_crop_rounding_rules():
    assert crop_box_to_int((1.2, 2.7, 5.5, 6.1), (10, 10), "outward") == (1, 2, 6, 7)
    assert crop_box_to_int((1.2, 2.7, 5.5, 6.1), (10, 10), "round") == (1, 3, 6, 6)
    assert crop_box_to_int((-3, -1, 40, 4), (8, 12), "outward") == (0, 0, 12, 4)  # clipped
    img = np.arange(20, dtype=np.uint8).reshape(4, 5)
    np.testing.assert_array_equal(crop(img, (1, 1, 3, 2)), [[6, 7]])
    assert crop(img, (4.2, 3.2, 4.3, 3.3)).shape == (1, 1)  # outward keeps one pixel
    with pytest.raises(ValueError, match="empty"):
        crop(img, (6, 0, 9, 2))
    with pytest.raises(ValueError, match="rounding"):
        crop(img, (0, 0, 1, 1), "nearest")


def test_resize_float_matches_known_values_and_opencv():
    img = np.array([[0, 100]], dtype=np.uint8)
    # 2 -> 4 columns: positions -0.25(clamped 0), 0.25, 0.75, 1.25(clamped 1)
    np.testing.assert_array_equal(resize_bilinear(img, (1, 4)), [[0, 25, 75, 100]])
    rng = np.random.default_rng(1)
    big = rng.integers(0, 256, size=(37, 23, 3), dtype=np.uint8)
    ours = resize_bilinear(big, (61, 50)).astype(int)
    ref = cv2.resize(big, (50, 61), interpolation=cv2.INTER_LINEAR).astype(int)
    assert np.abs(ours - ref).max() <= 1


def test_resize_fixed_point_close_to_float_and_exact_on_constants():
    rng = np.random.default_rng(2)
    img = rng.integers(0, 256, size=(31, 17, 3), dtype=np.uint8)
    fixed = resize_bilinear_fixed(img, (64, 48)).astype(int)
    flt = resize_bilinear(img, (64, 48)).astype(int)
    assert np.abs(fixed - flt).max() <= 2
    assert np.abs(fixed - flt).mean() < 0.5
    const = np.full((7, 5), 201, np.uint8)
    np.testing.assert_array_equal(resize_bilinear_fixed(const, (3, 11)), 201)
    # 1x1 images and frac_bits: weight of a quarter position with 2 fractional bits
    np.testing.assert_array_equal(resize_bilinear_fixed(np.full((1, 1), 9, np.uint8), (2, 3)), 9)
    np.testing.assert_array_equal(resize_bilinear_fixed(np.array([[0, 100]], np.uint8), (1, 4), 2), [[0, 25, 75, 100]])
    with pytest.raises(ValueError, match="uint8"):
        resize_bilinear_fixed(img.astype(np.float32), (4, 4))


def test_pad_one_and_both_sides_with_value():
    img = np.ones((2, 3, 3), np.uint8)
    one = pad_to(img, (5, 4), "one_side", value=7)
    assert one.shape == (5, 4, 3) and one[:2, :3].min() == 1 and one[2:].max() == 7 and one[:, 3].max() == 7
    both = pad_to(img, (5, 4), "both_sides", value=0)
    rows = np.nonzero(both[..., 0].any(axis=1))[0]
    cols = np.nonzero(both[..., 0].any(axis=0))[0]
    assert rows.tolist() == [1, 2] and cols.tolist() == [0, 1, 2]  # odd extra row goes to the bottom
    assert pad(np.zeros((1, 1), np.uint8), 1, 0, 0, 2, value=5).tolist() == [[5, 5, 5], [0, 5, 5]]
    with pytest.raises(ValueError, match="larger"):
        pad_to(img, (1, 3))


def test_resize_keep_ratio_pad_reports_geometry():
    img = np.full((100, 50, 3), 200, np.uint8)
    out, ratio, (top, left) = resize_keep_ratio_pad(img, (64, 64), "both_sides", value=0)
    assert out.shape == (64, 64, 3) and ratio == pytest.approx(0.64)
    assert (top, left) == (0, 16)
    assert out[:, 16:48].min() == 200 and out[:, :16].max() == 0
