"""One codec: swap the head for one deconv layer (stride 2) and targets, decoding and the export
metadata all follow the model's stride; a codec of another stride is refused, not silently used."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from helpers_coco import coco_cfg, person, write_coco
from litehrnet.config import merge
from litehrnet.data import HeatmapCodec, build_dataset, codec_for_model
from litehrnet.export import ExportError, export_onnx, metadata_from_config, read_metadata
from litehrnet.keypoints import COCO_BODY_17
from litehrnet.models import build_model_from_config
from litehrnet.training.predict import TestOptions as PredictOptions, predict_loader

INPUT_HW = (96, 64)
ONE_DECONV = {"num_deconv_layers": 1, "num_deconv_filters": [8], "num_deconv_kernels": [4]}


def _cfg(root, head: dict | None = None) -> dict:
    cfg = coco_cfg(root, dataset="coco_custom", workers=0)
    return merge(cfg, {"model": {"input_hw": list(INPUT_HW), "head": head or {}}})


@pytest.fixture(scope="module")
def coco_set(tmp_path_factory):
    root = tmp_path_factory.mktemp("coco")
    write_coco(root, {1: (120, 90)}, [person(1, 1, (20, 15, 45, 80))])
    return root


@pytest.mark.parametrize("head,stride", [(None, 4), (ONE_DECONV, 2)])
def test_targets_follow_the_model_stride(coco_set, head, stride):
    cfg = _cfg(coco_set, head)
    model = build_model_from_config(cfg).eval()
    codec = codec_for_model(cfg, model)
    assert model.heatmap_stride == stride and codec.stride == stride
    assert codec_for_model(cfg).stride == stride  # config-only callers: the model built on the meta device
    with torch.no_grad():
        out_hw = tuple(model(torch.zeros(1, 3, *INPUT_HW)).shape[2:])
    assert out_hw == codec.heatmap_hw == (INPUT_HW[0] // stride, INPUT_HW[1] // stride)

    item = build_dataset(cfg, "val", codec)[0]
    assert tuple(item["target"].shape) == (17, *out_hw)
    # each visible joint's target peaks on its input-pixel position divided by the model's stride
    from prepostprocess import affine_points, topdown_matrix

    rec = build_dataset(cfg, "val").records[0]
    joints_in = affine_points(rec["joints_xy"], topdown_matrix(item["center_xy"], item["scale_wh_px"], INPUT_HW))
    weight = item["target_weight"][:, 0].numpy() > 0
    target = item["target"].numpy()
    peaks = np.stack(np.unravel_index(target.reshape(17, -1).argmax(1), out_hw), axis=1)[:, ::-1]
    assert weight.sum() >= 10
    np.testing.assert_array_equal(peaks[weight], np.floor(joints_in[weight] / stride + 0.5))


class FixedHeatmaps(nn.Module):
    """Returns the codec's maps of fixed input-pixel keypoints for every crop (and its mirror)."""

    def __init__(self, codec: HeatmapCodec, keypoints_xy: np.ndarray) -> None:
        super().__init__()
        self.heatmap_stride = codec.stride
        self.maps = torch.from_numpy(codec.encode(keypoints_xy)[0])

    def forward(self, images_nchw: torch.Tensor) -> torch.Tensor:
        return self.maps.expand(len(images_nchw), -1, -1, -1).clone()


def test_decode_follows_the_stride_and_refuses_another(coco_set):
    cfg = _cfg(coco_set, ONE_DECONV)
    codec = HeatmapCodec.from_config(cfg, 2)
    rng = np.random.default_rng(3)
    kp_in = rng.uniform([6, 6], [INPUT_HW[1] - 6, INPUT_HW[0] - 6], (17, 2))
    model = FixedHeatmaps(codec, kp_in)
    # identity crop: centre of the input, scale = input size -> image pixels == input pixels
    batch = {"img": torch.zeros(2, 3, *INPUT_HW), "center_xy": np.tile([INPUT_HW[1] / 2, INPUT_HW[0] / 2], (2, 1)),
             "scale_wh_px": np.tile([INPUT_HW[1], INPUT_HW[0]], (2, 1)).astype(float), "image_id": np.arange(2)}
    people = predict_loader(model, [batch], COCO_BODY_17.flip_pairs, codec, PredictOptions(flip_test=False))
    err = np.abs(people[0]["keypoints"][:, :2] - kp_in)
    assert err.max() <= 0.25 * 2 + 1e-6  # quarter heatmap pixel at stride 2 = 0.5 input px
    # the same maps read at stride 4 would double every coordinate: the codec refuses them
    with pytest.raises(ValueError, match="do not fit this codec"):
        HeatmapCodec(INPUT_HW, 4).decode(model(batch["img"]).numpy())


def test_metadata_and_runner_follow_the_stride(coco_set, tmp_path):
    from litehrnet.deploy.pose_runner import PoseRunner

    cfg = merge(_cfg(coco_set, ONE_DECONV), {"data": {"norm": "kneron"}})
    meta = metadata_from_config(cfg, build_model_from_config(cfg))
    assert meta["heatmap_stride"] == "2"
    torch.manual_seed(0)
    stride2 = nn.Sequential(nn.Conv2d(3, 17, 3, stride=2, padding=1), nn.ReLU()).eval()  # a stand-in stride-2 net
    path = export_onnx(stride2, tmp_path / "s2.onnx", INPUT_HW, simplify=False, metadata=meta).path
    assert read_metadata(path)["heatmap_stride"] == "2"
    runner = PoseRunner({"onnx_path": str(path), "input_h": INPUT_HW[0], "input_w": INPUT_HW[1], "norm": "kneron",
                         "channel_order": "rgb", "decode": "default", "flip_test": False})
    assert (runner.codec.stride, runner.codec.heatmap_hw) == (2, (48, 32))
    with pytest.raises(ExportError, match="heatmap_stride=4 does not match"):
        export_onnx(stride2, tmp_path / "bad.onnx", INPUT_HW, simplify=False, metadata={**meta, "heatmap_stride": "4"})
    assert not (tmp_path / "bad.onnx").exists()
