import numpy as np
import pytest

from prepostprocess import bgr_to_channel_order, denormalize, dequantize, normalize, quantize

PIXELS = np.array([0, 1, 3, 127, 128, 129, 255], dtype=np.uint8).reshape(1, -1, 1).repeat(3, axis=2)


def test_modes_known_values():
    x = PIXELS[0, :, 0]
    np.testing.assert_allclose(normalize(PIXELS, "kneron")[0, :, 0], x / 256 - 0.5)
    np.testing.assert_allclose(normalize(PIXELS, "tf")[0, :, 0], x / 127.5 - 1, rtol=0, atol=1e-6)  # PLUS
    np.testing.assert_allclose(normalize(PIXELS, "yolo")[0, :, 0], x / 255, rtol=0, atol=1e-7)       # PLUS
    np.testing.assert_array_equal(normalize(PIXELS, "tf_hw")[0, :, 0], (x.astype(int) - 128) / 128)
    np.testing.assert_array_equal(normalize(PIXELS, "yolo_hw")[0, :, 0], (x.astype(int) >> 1) / 128)
    torch_rgb = normalize(np.full((1, 1, 3), 255, np.uint8), "torch", "rgb")[0, 0]
    np.testing.assert_allclose(torch_rgb, (1 - np.array([0.485, 0.456, 0.406])) / [0.229, 0.224, 0.225], rtol=1e-6)
    torch_bgr = normalize(np.full((1, 1, 3), 255, np.uint8), "torch", "bgr")[0, 0]
    np.testing.assert_allclose(torch_bgr, torch_rgb[::-1], rtol=1e-6)
    assert normalize(PIXELS, "kneron").dtype == np.float32
    with pytest.raises(ValueError, match="normalisation mode"):
        normalize(PIXELS, "caffe")


def test_quantize_known_values_rounding_and_saturation():
    x = PIXELS[0, :, 0].astype(int)
    np.testing.assert_array_equal(quantize(normalize(PIXELS, "kneron"), "kneron")[0, :, 0], x - 128)
    # the hardware forms are the chip's int8 input exactly: x - 128 and x >> 1 at radix 7
    np.testing.assert_array_equal(quantize(normalize(PIXELS, "tf_hw"), "tf_hw")[0, :, 0], x - 128)
    np.testing.assert_array_equal(quantize(normalize(PIXELS, "yolo_hw"), "yolo_hw")[0, :, 0], x >> 1)
    # PLUS float forms at radix 7: x*128/127.5 - 128 and x*128/255, rounded half away, saturated
    np.testing.assert_array_equal(quantize(normalize(PIXELS, "tf"), "tf")[0, :, 0], [-128, -127, -125, -1, 1, 2, 127])
    np.testing.assert_array_equal(quantize(normalize(PIXELS, "yolo"), "yolo")[0, :, 0], [0, 1, 2, 64, 64, 65, 127])
    np.testing.assert_array_equal(quantize(np.array([-0.5, -1.5, 0.5, 2.49, -1000.0, 1000.0]), 0), [-1, -2, 1, 2, -128, 127])
    assert quantize(np.zeros(3), 8).dtype == np.int8
    with pytest.raises(ValueError, match="radix"):
        quantize(np.zeros(3), "torch")


def test_dequantize_and_denormalize_invert():
    q = np.array([-128, -1, 0, 5, 127], np.int8)
    np.testing.assert_allclose(dequantize(q, 8), q / 256.0)
    np.testing.assert_array_equal(quantize(dequantize(q, 7), 7), q)
    for mode in ("kneron", "tf", "yolo", "tf_hw", "torch"):
        back = denormalize(normalize(PIXELS, mode, "bgr"), mode, "bgr")
        np.testing.assert_allclose(back, PIXELS, atol=1e-3)
    np.testing.assert_array_equal(denormalize(normalize(PIXELS, "yolo_hw"), "yolo_hw"), PIXELS // 2 * 2)


def test_plus_names_and_radix_per_mode():
    from prepostprocess.normalize import DEFAULT_RADIX, HARDWARE_INPUT, NORM_MODES, PLUS_NORMALIZE_MODE

    assert NORM_MODES == ("kneron", "tf", "yolo", "tf_hw", "yolo_hw", "torch")
    assert PLUS_NORMALIZE_MODE == {"kneron": "KP_NORMALIZE_KNERON", "tf": "KP_NORMALIZE_TENSOR_FLOW",
                                   "yolo": "KP_NORMALIZE_YOLO", "tf_hw": "KP_NORMALIZE_TENSOR_FLOW",
                                   "yolo_hw": "KP_NORMALIZE_YOLO"}
    assert DEFAULT_RADIX == {"kneron": 8, "tf": 7, "yolo": 7, "tf_hw": 7, "yolo_hw": 7}
    assert HARDWARE_INPUT["kneron"] == HARDWARE_INPUT["tf"] == "x - 128" and HARDWARE_INPUT["yolo"] == "x >> 1"


def test_channel_order_names():
    img_bgr = np.array([[[1, 2, 3]]], np.uint8)
    assert bgr_to_channel_order(img_bgr, "rgb").tolist() == [[[3, 2, 1]]]
    assert bgr_to_channel_order(img_bgr, "bgr").tolist() == [[[1, 2, 3]]]
    with pytest.raises(ValueError, match="channel order"):
        bgr_to_channel_order(img_bgr, "grb")
