import cv2
import numpy as np

from prepostprocess import (
    get_affine_matrix,
    normalize,
    preprocess_topdown,
    quantize,
    to_network_input,
    topdown_matrix,
    warp_affine,
    warp_topdown,
)


def random_image(h=120, w=160, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_identity_crop_reproduces_pixels_in_channel_order():
    img = random_image(64, 48)
    # region exactly the image: centre at (w/2, h/2) and scale = size -> pixel-for-pixel copy
    crop = warp_topdown(img, (24.0, 32.0), (48.0, 64.0), (64, 48))
    np.testing.assert_array_equal(crop, img)
    x = preprocess_topdown(img, (24.0, 32.0), (48.0, 64.0), (64, 48), "kneron", "rgb")
    assert x.shape == (3, 64, 48) and x.dtype == np.float32 and x.flags.c_contiguous
    np.testing.assert_array_equal(x[0], img[..., 2] / np.float32(256) - np.float32(0.5))  # R first
    q = quantize(x, "kneron")
    np.testing.assert_array_equal(q[2].astype(int), img[..., 0].astype(int) - 128)


def test_preprocess_is_warp_then_normalise_and_zero_border():
    img = random_image()
    args = ((80.0, 60.0), (90.0, 120.0), (256, 192))
    x = preprocess_topdown(img, *args, norm="torch", channel_order="bgr", rot_deg=20.0)
    expect = normalize(warp_topdown(img, *args, rot_deg=20.0), "torch", "bgr").transpose(2, 0, 1)
    np.testing.assert_array_equal(x, expect)
    far = warp_topdown(img, (1000.0, 1000.0), (90.0, 120.0), (256, 192))
    assert far.max() == 0  # outside the image -> pad value 0


def test_flip_composition_equals_flipping_the_image():
    img = random_image(97, 131, seed=5)
    center, scale = np.array([50.3, 40.7]), np.array([60.0, 80.0])
    flipped = cv2.flip(img, 1)
    ref = warp_affine(flipped, get_affine_matrix(center, scale, 15.0, (64, 48)), (64, 48)).astype(int)
    ours = warp_affine(img, topdown_matrix(center, scale, (64, 48), 15.0, flip_img_w=131), (64, 48)).astype(int)
    assert np.abs(ours - ref).max() <= 1 and np.abs(ours - ref).mean() < 0.05


def test_one_pixel_image_and_odd_sizes():
    img = np.full((1, 1, 3), 77, np.uint8)
    # output pixel (2, 1) samples source (0.5 - 2.5 + 2, 0.5 - 1.5 + 1) = (0, 0) exactly
    x = preprocess_topdown(img, (0.5, 0.5), (5.0, 3.0), (3, 5), "tf_hw", "rgb")
    assert x.shape == (3, 3, 5)
    assert x[:, 1, 2].tolist() == [77 / 128 - 1] * 3
    assert x[:, 0, 0].tolist() == [-1.0] * 3  # zero border
    assert to_network_input(np.zeros((7, 5, 3), np.uint8), "yolo", "rgb").shape == (3, 7, 5)
