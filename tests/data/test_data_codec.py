import numpy as np
import pytest

from tests.conftest import import_mmpose_module
from litehrnet.data.codec import HeatmapCodec


def load_mmpose_file(relpath: str):
    """One mmpose file without its package __init__ (mmpose.codecs imports optional extras)."""
    import importlib.util
    from pathlib import Path

    structures = import_mmpose_module("mmpose.structures.bbox.transforms")  # skips if absent
    root = Path(structures.__file__).parents[2]
    spec = importlib.util.spec_from_file_location("mmpose_ref_" + Path(relpath).stem, root / relpath)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def random_keypoints(n, k, rng, margin=12.0):
    return rng.uniform([margin, margin], [192 - margin, 256 - margin], size=(n, k, 2))


@pytest.mark.parametrize("method,limit", [("default", 0.25), ("dark", 0.05)])
def test_round_trip_subpixel_keypoints(method, limit):
    rng = np.random.default_rng(10)
    codec = HeatmapCodec((256, 192), 4, sigma=2.0, decode_method=method)
    kp = random_keypoints(16, 17, rng)
    maps = np.stack([codec.encode(kp[i])[0] for i in range(len(kp))])
    decoded, scores = codec.decode(maps)
    err_hm_px = np.linalg.norm((decoded - kp) / codec.stride_xy, axis=-1).mean()
    assert err_hm_px <= limit
    assert scores.min() > 0.7


def test_encode_peak_window_and_weights():
    codec = HeatmapCodec((256, 192), 4, sigma=2.0, subpixel=False)
    kp = np.array([[40.0, 80.0], [100.0, 20.0], [-100.0, 5.0], [191.0, 255.0]])
    maps, weight = codec.encode(kp, visible=[1, 0, 2, 1])
    assert maps.shape == (4, 64, 48) and maps.dtype == np.float32
    np.testing.assert_array_equal(weight[:, 0], [1, 0, 0, 1])  # invisible, outside -> 0
    assert maps[0, 20, 10] == 1.0 and maps[1].max() == 0 and maps[2].max() == 0
    nz_rows = np.nonzero(maps[0].any(axis=1))[0]
    assert nz_rows.tolist() == list(range(14, 27))  # radius 3 * sigma = 6
    assert maps[3, 63, 47] > 0.5  # partly clipped window still counts
    all_weight = HeatmapCodec((256, 192), 4, 2.0, use_visibility=False).encode(kp[:2], [0, 0])[1]
    np.testing.assert_array_equal(all_weight[:, 0], [1, 1])
    with pytest.raises(ValueError, match="sigma"):
        HeatmapCodec((256, 192), 4, sigma=0)


def test_integer_centred_target_matches_mmpose_msra():
    ref = load_mmpose_file("codecs/utils/gaussian_heatmap.py")
    rng = np.random.default_rng(11)
    kp_input = random_keypoints(1, 17, rng)[0]
    vis = (rng.random(17) > 0.2).astype(np.float32)
    ours, weight = HeatmapCodec((256, 192), 4, sigma=2.0, subpixel=False).encode(kp_input, vis)
    expect, expect_w = ref.generate_gaussian_heatmaps((48, 64), kp_input[None] / 4, vis[None], 2.0)
    np.testing.assert_allclose(ours, expect, atol=1e-6)
    np.testing.assert_array_equal(weight[:, 0], expect_w[0])
