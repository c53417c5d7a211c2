"""Every script checks its paths before work: one line naming the path and the fix, exit status 2."""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

import pytest

import export2onnx
import inference
import inference_e2e
import train
from litehrnet import cli_checks
from litehrnet.cli_checks import PathCheckError
from tools import eval_e2e, plot_log

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "configs" / "coco" / "litehrnet_18_coco_256x192.yaml"


def _load_script(name: str):
    """A root script by file path (``test.py`` would otherwise meet the standard library's ``test``)."""
    spec = importlib.util.spec_from_file_location(f"_script_{name}", REPO / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


test_script = _load_script("test")


def _one_error_line(capsys) -> str:
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1, err
    assert err[0].startswith("error: ")
    return err[0]


def test_output_file_rules(tmp_path, monkeypatch):
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(PathCheckError, match="is a folder; give a file name"):
        cli_checks.output_file(tmp_path, "output JSON")
    with pytest.raises(PathCheckError, match=r"a_file is a file, not a folder"):
        cli_checks.output_file(tmp_path / "a_file" / "sub" / "out.json", "output JSON")
    with pytest.raises(PathCheckError, match=r"must end in one of \.png"):
        cli_checks.output_file(tmp_path / "out.xyz", "drawing", extensions=cli_checks.IMAGE_EXTENSIONS)
    assert cli_checks.output_file(tmp_path / "new" / "deeper" / "out.json") == tmp_path / "new" / "deeper" / "out.json"
    assert not (tmp_path / "new").exists()  # checking creates nothing
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if Path(p) == tmp_path else real_access(p, mode))
    with pytest.raises(PathCheckError, match=f"folder {tmp_path} is not writable"):
        cli_checks.output_file(tmp_path / "sub" / "out.json")
    with pytest.raises(PathCheckError, match="is not writable"):
        cli_checks.output_dir(tmp_path)


def test_config_data_paths_accept_absolute_validation_elsewhere(tmp_path, small_set, write_config):
    from litehrnet.config import load_config

    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(small_set / "val", elsewhere / "images")
    shutil.copy(small_set / "annotations" / "person_keypoints_val.json", elsewhere / "val.json")
    cfg = load_config(write_config(small_set, val_ann=str(elsewhere / "val.json"),
                                   val_img_dir=str(elsewhere / "images")))
    cli_checks.config_data_paths(cfg)  # absolute val paths next to a relative train set
    cfg["data"]["val_img_dir"] = str(tmp_path / "nowhere")
    with pytest.raises(PathCheckError, match=r"nowhere: val image folder \(data.val_img_dir\) not found; .*absolute"):
        cli_checks.config_data_paths(cfg)
    cfg["data"].update(use_gt_bbox=False, det_file=None, val_img_dir=str(elsewhere / "images"))
    with pytest.raises(PathCheckError, match="data.det_file is not set"):
        cli_checks.config_data_paths(cfg)


def test_train_refuses_missing_validation_files_before_any_iteration(tmp_path, small_set, write_config, capsys):
    cfg = write_config(small_set, val_ann=str(tmp_path / "val_elsewhere.json"))
    work = tmp_path / "work"
    assert train.main([str(cfg), "--work-dir", str(work), "--no-progress"]) == 2
    line = _one_error_line(capsys)
    assert "val_elsewhere.json: val annotation file (data.val_ann) not found" in line
    assert not work.exists()  # nothing started
    (tmp_path / "blocker").write_text("")
    assert train.main([str(cfg), "--work-dir", str(tmp_path / "blocker" / "w"), "--no-validate"]) == 2
    assert "blocker is a file, not a folder" in _one_error_line(capsys)
    rc = train.main([str(cfg), "--work-dir", str(work), "--no-validate", "--resume-from", str(tmp_path / "e.pth")])
    assert rc == 2
    assert "e.pth: checkpoint (--resume-from) not found" in _one_error_line(capsys)


def test_test_script_checks_checkpoint_data_and_output(tmp_path, small_set, write_config, capsys):
    cfg = write_config(small_set)
    assert test_script.main([str(cfg), str(tmp_path / "missing.pth")]) == 2
    assert "missing.pth: checkpoint not found" in _one_error_line(capsys)
    ckpt = tmp_path / "c.pth"
    ckpt.write_bytes(b"x")
    assert test_script.main([str(cfg), str(ckpt), "--out", str(tmp_path)]) == 2
    assert "results file (--out) is a folder" in _one_error_line(capsys)
    assert test_script.main([str(cfg), str(ckpt), "--det-file", str(tmp_path / "dets.json")]) == 2
    assert "dets.json: person detection file (data.det_file) not found" in _one_error_line(capsys)


def test_export_checks_output_before_building_the_model(tmp_path, capsys):
    assert export2onnx.main([str(CONFIG), "none", "-o", str(tmp_path)]) == 2
    assert "output ONNX (-o) is a folder" in _one_error_line(capsys)
    assert export2onnx.main([str(CONFIG), "none", "-o", str(tmp_path / "m.onx")]) == 2
    assert "must end in one of .onnx" in _one_error_line(capsys)


@pytest.mark.parametrize("vis,expected", [("out.xyz", "must end in one of .png"), ("", "is a folder")])
def test_inference_bad_vis_is_one_line_before_the_models_load(tmp_path, capsys, vis, expected):
    # the models do not exist: the drawing path is refused first, before any model is read
    rc = inference.main(["--img-path", str(tmp_path / "a.png"), "--lite_hrnet_params", str(tmp_path / "no.yaml"),
                         "--whole-image", "--vis", str(tmp_path / vis) if vis else str(tmp_path)])
    assert rc == 2
    line = _one_error_line(capsys)
    assert "drawing (--vis)" in line and expected in line


def test_e2e_output_under_a_file_is_refused_before_work(tmp_path, capsys):
    (tmp_path / "in").mkdir()
    (tmp_path / "blocker").write_text("")
    rc = inference_e2e.main(["--img-path", str(tmp_path / "in"), "--whole-image",
                             "--lite_hrnet_params", str(tmp_path / "no.yaml"),
                             "--save-path", str(tmp_path / "blocker" / "out.json")])
    assert rc == 2 and "blocker is a file, not a folder" in _one_error_line(capsys)


def test_tools_check_paths(tmp_path, capsys):
    (tmp_path / "gt.json").write_text("{}")
    assert eval_e2e.main(["--gt", str(tmp_path / "gt.json"), "--pred", str(tmp_path / "pred.json")]) == 2
    assert "pred.json: predictions (--pred) not found; pass the --save-path JSON" in _one_error_line(capsys)
    (tmp_path / "log.jsonl").write_text('{"mode": "train", "iter": 1, "loss": 1.0}\n')
    assert plot_log.main([str(tmp_path / "log.jsonl"), "-o", str(tmp_path / "curves.jpg")]) == 2
    assert "must end in one of .png" in _one_error_line(capsys)


def test_run_main_turns_ctrl_c_into_one_line_and_130(capsys):
    def interrupted() -> int:
        raise KeyboardInterrupt

    assert cli_checks.run_main(interrupted, lambda: "kept a.json", "resume with --resume") == 130
    assert capsys.readouterr().err == "interrupted (Ctrl-C): kept a.json; resume with --resume\n"
