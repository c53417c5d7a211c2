import numpy as np
import pytest

from prepostprocess import (
    affine_points,
    argmax_keypoints,
    decode_heatmaps,
    decode_topdown,
    flip_back,
    get_affine_matrix,
    keypoints_to_image,
    modulate_heatmaps,
)


def gaussian_maps(mu_nk2: np.ndarray, hw=(64, 48), sigma=2.0) -> np.ndarray:
    ys, xs = np.mgrid[: hw[0], : hw[1]]
    d2 = (xs - mu_nk2[..., 0, None, None]) ** 2 + (ys - mu_nk2[..., 1, None, None]) ** 2
    return np.exp(-d2 / (2 * sigma**2)).astype(np.float32)


def test_default_decode_argmax_and_quarter_shift():
    hm = np.zeros((1, 3, 5, 6), np.float32)
    hm[0, 0, 2, 3] = 1.0
    hm[0, 0, 2, 4] = 0.5  # right neighbour higher -> +0.25 x
    hm[0, 0, 1, 3] = 0.2  # upper neighbour higher -> -0.25 y
    hm[0, 1, 0, 5] = 0.7  # corner: no neighbours on either axis side -> no shift
    hm[0, 2] = -1.0  # all negative: argmax kept, score <= 0
    kp, score = decode_heatmaps(hm)
    np.testing.assert_allclose(kp[0], [[3.25, 1.75], [5, 0], [0, 0]])
    np.testing.assert_allclose(score[0], [1.0, 0.7, -1.0])
    assert kp.dtype == np.float32 and score.shape == (1, 3)


def test_dark_recovers_subpixel_gaussian_centres():
    rng = np.random.default_rng(3)
    mu = rng.uniform([5, 5], [43, 59], size=(8, 17, 2))
    hm = gaussian_maps(mu)
    kp_default, _ = decode_heatmaps(hm, "default")
    kp_dark, scores = decode_heatmaps(hm, "dark", dark_kernel=11)
    err_default = np.linalg.norm(kp_default - mu, axis=-1).mean()
    err_dark = np.linalg.norm(kp_dark - mu, axis=-1).mean()
    assert err_dark < 0.05 < err_default < 0.25
    assert scores.min() > 0.7


def test_modulation_keeps_maximum_and_smooths():
    hm = np.zeros((2, 2, 16, 16), np.float32)
    hm[0, 0, 8, 8] = 3.0
    hm[1, 1, 2, 14] = 0.5
    out = modulate_heatmaps(hm, 11)
    np.testing.assert_allclose(out.reshape(4, -1).max(axis=1), [3.0, 0, 0, 0.5], rtol=1e-6)
    assert out[0, 0, 8, 10] > 0  # mass spread to neighbours
    assert np.unravel_index(out[0, 0].argmax(), (16, 16)) == (8, 8)


def test_flip_back_swaps_pairs_mirrors_and_shifts():
    hm = np.zeros((1, 3, 2, 5), np.float32)
    hm[0, 1, 0, 0] = 1.0  # keypoint 1 at x=0 -> keypoint 2 at x=4 (mirror), shift -> clipped at 4
    hm[0, 0, 1, 2] = 2.0  # centre column 2 -> mirror 2 -> shift 3
    out = flip_back(hm, [(1, 2)], shift=True)
    assert out[0, 2, 0].tolist() == [0, 0, 0, 0, 0]  # x=4 moved right out of the map
    assert out[0, 0, 1].tolist() == [0, 0, 0, 2, 0]
    no_shift = flip_back(hm, [(1, 2)], shift=False)
    assert no_shift[0, 2, 0].tolist() == [0, 0, 0, 0, 1]
    hm2 = np.zeros((1, 1, 1, 4), np.float32)
    hm2[0, 0, 0] = [1, 2, 3, 4]
    assert flip_back(hm2, [], shift=True)[0, 0, 0].tolist() == [4, 4, 3, 2]  # column 0 kept


def test_keypoints_to_image_is_inverse_affine_with_rotation():
    rng = np.random.default_rng(4)
    centers = rng.uniform(100, 300, (3, 2))
    scales = np.stack([rng.uniform(80, 200, 3)] * 2, axis=1) * [1.0, 4 / 3]
    rots = np.array([0.0, 25.0, -60.0])
    kp_hm = rng.uniform(0, 48, (3, 17, 2))
    ours = keypoints_to_image(kp_hm, centers, scales, (64, 48), (256, 192), rots)
    for i in range(3):
        inv = get_affine_matrix(centers[i], scales[i], rots[i], (256, 192), inverse=True)
        np.testing.assert_allclose(ours[i], affine_points(kp_hm[i] * 4, inv), atol=1e-9)
    # no rotation: equals mmpose 0.x transform_preds (centre - scale/2 + x * scale / heatmap_size)
    expect = centers[0] - scales[0] / 2 + kp_hm[0] * scales[0] / [48, 64]
    np.testing.assert_allclose(ours[0], expect, atol=1e-9)


def test_decode_topdown_end_to_end():
    center, scale = np.array([[200.0, 150.0]]), np.array([[96.0, 128.0]])
    target_img = np.array([[[180.0, 120.0], [215.0, 170.0]]])
    inv = get_affine_matrix(center[0], scale[0], 0, (256, 192))
    mu = affine_points(target_img[0], inv)[None] / 4
    kp, scores = decode_topdown(gaussian_maps(mu), center, scale, (256, 192), method="dark")
    np.testing.assert_allclose(kp, target_img, atol=0.1)
    with pytest.raises(ValueError, match="decode method"):
        decode_heatmaps(np.zeros((1, 1, 4, 4)), "soft")


def load_mmpose_refinement():
    """mmpose 1.3.2's ``codecs/utils/refinement.py`` without mmpose.codecs' heavy __init__."""
    import importlib
    import sys
    import types
    from pathlib import Path

    from tests.conftest import import_mmpose_module

    root = Path(import_mmpose_module("mmpose.structures.bbox.transforms").__file__).parents[2]
    for name in ("mmpose.codecs", "mmpose.codecs.utils"):
        if name not in sys.modules:
            stub = types.ModuleType(name)
            stub.__path__ = [str(root.joinpath(*name.split(".")[1:]))]
            sys.modules[name] = stub
    return importlib.import_module("mmpose.codecs.utils.refinement")


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # inside mmpose's reference code
def test_dark_agrees_with_mmpose_on_noisy_maps():
    ref = load_mmpose_refinement()
    rng = np.random.default_rng(5)
    mu = rng.uniform([6, 6], [42, 58], size=(1, 17, 2))
    hm = gaussian_maps(mu) + 0.05 * rng.standard_normal((1, 17, 64, 48)).astype(np.float32)
    ours, _ = decode_heatmaps(hm, "dark", dark_kernel=11)
    start, _ = argmax_keypoints(hm)
    theirs = ref.refine_keypoints_dark(start, hm[0].copy(), 11)
    assert np.linalg.norm(ours - theirs, axis=-1).mean() < 0.03
    err_ours = np.linalg.norm(ours - mu, axis=-1).mean()
    assert err_ours < 1.1 * np.linalg.norm(theirs - mu, axis=-1).mean() and err_ours < 0.08
