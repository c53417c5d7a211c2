import numpy as np
import pytest

from prepostprocess import (
    affine_points,
    bbox_xywh_to_center_scale,
    center_scale_to_bbox_xywh,
    compose_affine,
    get_affine_matrix,
    hflip_matrix,
    invert_affine,
)
from tests.conftest import import_mmpose_module


def test_box_to_center_scale_grows_short_side_then_pads():
    c, s = bbox_xywh_to_center_scale([10, 20, 30, 100], aspect_wh=0.75, padding=1.25)
    np.testing.assert_allclose(c, [25, 70])
    np.testing.assert_allclose(s, [75 * 1.25, 100 * 1.25])  # width grown to 0.75 * 100
    c, s = bbox_xywh_to_center_scale([[0, 0, 90, 60]], aspect_wh=0.75, padding=1.0)
    np.testing.assert_allclose(s, [[90, 120]])  # height grown to 90 / 0.75
    np.testing.assert_allclose(center_scale_to_bbox_xywh(c, s), [[0, -30, 90, 120]])


def test_known_matrices():
    m = get_affine_matrix((100, 50), (96, 128), 0, (256, 192))
    np.testing.assert_allclose(m, [[2, 0, -104], [0, 2, 28]], atol=1e-12)
    m90 = get_affine_matrix((100, 50), (96, 128), 90, (256, 192))
    np.testing.assert_allclose(m90, [[0, 2, -4], [-2, 0, 328]], atol=1e-12)
    # shift moves the source centre by a fraction of the scale
    ms = get_affine_matrix((100, 50), (96, 128), 0, (256, 192), shift_xy=(0.25, -0.5))
    np.testing.assert_allclose(affine_points([124, -14], ms), [96, 128], atol=1e-12)


def test_inverse_and_point_transforms_round_trip():
    rng = np.random.default_rng(0)
    m = get_affine_matrix((320.5, 211.25), (150.0, 200.0), 37.0, (256, 192))
    inv = get_affine_matrix((320.5, 211.25), (150.0, 200.0), 37.0, (256, 192), inverse=True)
    np.testing.assert_allclose(inv, invert_affine(m), atol=1e-12)
    pts = rng.uniform(0, 500, size=(5, 17, 2))
    np.testing.assert_allclose(affine_points(affine_points(pts, m), inv), pts, atol=1e-9)
    np.testing.assert_allclose(compose_affine(m, inv), [[1, 0, 0], [0, 1, 0]], atol=1e-12)
    with pytest.raises(ValueError, match="singular"):
        invert_affine(np.zeros((2, 3)))


def test_hflip_matrix_maps_pixel_centres():
    np.testing.assert_allclose(affine_points([[0, 3], [9, 4]], hflip_matrix(10)), [[9, 3], [0, 4]])


@pytest.mark.parametrize("rot", [0.0, 30.0, -45.0])
def test_matches_mmpose_warp_matrix(rot):
    ref = import_mmpose_module("mmpose.structures.bbox.transforms")
    center, scale = np.array([210.0, 140.0]), np.array([120.0, 160.0])
    expect = ref.get_warp_matrix(center, scale, rot, output_size=(192, 256), shift=(0.1, -0.05))
    ours = get_affine_matrix(center, scale, rot, (256, 192), shift_xy=(0.1, -0.05))
    np.testing.assert_allclose(ours, expect, atol=1e-4)
