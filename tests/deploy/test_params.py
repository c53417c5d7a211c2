"""Runner YAML schemas: strict keys, clear errors, paths relative to the YAML file."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from deploy_helpers import affine_params, pose_params
from litehrnet.deploy.params import ParamsError, load_params

REPO_ROOT = Path(__file__).resolve().parents[2]


def _write(tmp_path: Path, data) -> Path:
    path = tmp_path / "sub" / "params.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(yaml.safe_dump(data))
    return path


def test_relative_paths_resolve_against_the_yaml_folder(tmp_path):
    params = load_params(_write(tmp_path, pose_params(Path("models/pose.onnx"))), "pose")
    assert params["onnx_path"] == str((tmp_path / "sub" / "models" / "pose.onnx").resolve())
    assert params["dark_kernel"] == 11 and params["shift_heatmap"] is True  # defaults filled in


@pytest.mark.parametrize("kind,data,message", [
    ("pose", dict(pose_params(Path("m.onnx")), flip=True), r"unknown key\(s\) \['flip'\]"),
    ("pose", {k: v for k, v in pose_params(Path("m.onnx")).items() if k != "norm"}, "missing key 'norm'"),
    ("pose", dict(pose_params(Path("m.onnx")), decode="soft"), "key 'decode' = 'soft' is invalid"),
    ("pose", dict(pose_params(Path("m.onnx")), flip_test="yes"), "key 'flip_test'"),
    ("affine", dict(affine_params(), padding=0.5), "key 'padding' = 0.5 is invalid"),
    ("affine", dict(affine_params(), input_w=-3), "key 'input_w'"),
    ("yolov5", {"onnx_path": "d.onnx"}, "missing key 'input_w'"),
    ("yolov5", {"pt_path": "yolov5n.pt"}, "convert the checkpoint with tools/yolov5_to_onnx.py"),
    ("pose", [1, 2], "expected a mapping"),
])
def test_schema_errors_name_file_and_key(tmp_path, kind, data, message):
    path = _write(tmp_path, data)
    with pytest.raises(ParamsError, match=message) as info:
        load_params(path, kind)
    assert str(path) in str(info.value)


def test_missing_and_broken_files(tmp_path):
    with pytest.raises(ParamsError, match="parameter file not found"):
        load_params(tmp_path / "nope.yaml", "pose")
    broken = tmp_path / "broken.yaml"
    broken.write_text("input_w: [1, 2\n")
    with pytest.raises(ParamsError, match="not valid YAML"):
        load_params(broken, "affine")


@pytest.mark.parametrize("name,kind", [
    ("yolov5_init_params.yaml", "yolov5"), ("rsn_affine_init_params.yaml", "affine"), ("lite_hrnet_init_params.yaml", "pose"),
    ("quickstart/rsn_affine_init_params.yaml", "affine"), ("quickstart/lite_hrnet_init_params.yaml", "pose"),
])
def test_shipped_yaml_files_are_valid(name, kind):
    params = load_params(REPO_ROOT / "utils" / name, kind)
    if "onnx_path" in params:  # models made by the documented commands land in work_dirs/
        assert Path(params["onnx_path"]).is_relative_to(REPO_ROOT / "work_dirs")
    if kind == "affine":  # each crop YAML matches its pose YAML
        pose = load_params(REPO_ROOT / "utils" / name.replace("rsn_affine", "lite_hrnet"), "pose")
        assert (params["input_h"], params["input_w"]) == (pose["input_h"], pose["input_w"])
