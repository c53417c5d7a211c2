"""Resumable inference_e2e.py: SIGKILL at random points, torn side-file lines, mismatched resumes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

import inference_e2e
from litehrnet.deploy.records import partial_path

REPO_ROOT = Path(__file__).resolve().parents[2]
NUM_IMAGES, BOXES_PER_IMAGE = 24, 40  # ~40 crops per image keep each image in flight for a while


@pytest.fixture
def crowd(tmp_path):
    """A folder of images and a boxes file with many people per image."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "imgs"
    folder.mkdir()
    boxes = {}
    for i in range(NUM_IMAGES):
        cv2.imwrite(str(folder / f"{i:03d}.png"), rng.integers(0, 256, (96, 128, 3), dtype=np.uint8))
        xywh = np.concatenate([rng.uniform(0, 80, (BOXES_PER_IMAGE, 2)), rng.uniform(8, 40, (BOXES_PER_IMAGE, 2))], 1)
        boxes[f"{i:03d}.png"] = np.round(xywh, 2).tolist()
    (tmp_path / "boxes.json").write_text(json.dumps(boxes))
    return folder, tmp_path / "boxes.json"


def _args(yaml_set, folder: Path, boxes: Path, out: Path) -> list[str]:
    paths = yaml_set()
    return ["--img-path", str(folder), "--rsn_affine_params", str(paths["affine"]), "--lite_hrnet_params",
            str(paths["pose"]), "--boxes", str(boxes), "--threads", "1", "--save-path", str(out)]


def _complete_lines(path: Path) -> int:
    """Entries (lines after the header) that end with a newline."""
    if not path.exists():
        return 0
    return max(path.read_bytes().count(b"\n") - 1, 0)


def test_sigkill_at_random_points_then_resume_equals_uninterrupted_run(tmp_path, yaml_set, crowd):
    folder, boxes = crowd
    reference = tmp_path / "reference.json"
    assert inference_e2e.main(_args(yaml_set, folder, boxes, reference)) == 0
    out = tmp_path / "out.json"
    side = partial_path(out)
    rng = np.random.default_rng()
    env = dict(os.environ, OMP_NUM_THREADS="1")
    command = [sys.executable, "inference_e2e.py", *_args(yaml_set, folder, boxes, out)]
    kept = 0
    for attempt in range(2):
        target = int(rng.integers(kept + 1, kept + 7))  # at most 13 of 24: the run is still going when killed
        proc = subprocess.Popen(command + (["--resume"] if attempt else []), cwd=REPO_ROOT, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while _complete_lines(side) < target and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.001)
        proc.send_signal(signal.SIGKILL)
        stderr = proc.communicate()[1]
        assert proc.returncode == -signal.SIGKILL, f"the run ended before the kill (target {target}): {stderr}"
        assert not out.exists()  # the final JSON appears only complete
        now = _complete_lines(side)
        assert now >= target >= kept
        if attempt:
            assert f"resuming: {kept} input(s) already done" in stderr
        kept = now
    final = subprocess.run(command + ["--resume"], cwd=REPO_ROOT, env=env, capture_output=True, text=True)
    assert final.returncode == 0, final.stderr
    assert f"resuming: {kept} input(s) already done" in final.stderr  # only the image in flight is redone
    assert json.loads(out.read_text()) == json.loads(reference.read_text())
    assert not side.exists()


def test_torn_last_line_is_dropped_and_redone(tmp_path, yaml_set, crowd, capsys):
    folder, boxes = crowd
    reference, out = tmp_path / "reference.json", tmp_path / "out.json"
    assert inference_e2e.main(_args(yaml_set, folder, boxes, reference)) == 0
    records = json.loads(reference.read_text())
    side = partial_path(out)
    side.write_text("")  # build a side file as a killed run leaves it: header, 3 records, a torn 4th
    assert inference_e2e.main(_args(yaml_set, folder, boxes, out) + ["--resume"]) == 2  # not a side file of ours
    assert "not a results side file" in capsys.readouterr().err
    side.unlink()
    args = _args(yaml_set, folder, boxes, out)
    header = inference_e2e.run_header(inference_e2e.parse_args(args))
    lines = [json.dumps({"header": header})] + [json.dumps({"record": r}) for r in records[:3]]
    side.write_text("\n".join(lines) + "\n" + json.dumps({"record": records[3]})[:50])
    assert inference_e2e.main(args + ["--resume"]) == 0
    assert "resuming: 3 input(s) already done" in capsys.readouterr().err
    assert json.loads(out.read_text()) == records


def test_resume_refuses_other_settings_and_changed_inputs(tmp_path, yaml_set, crowd, capsys):
    folder, boxes = crowd
    out = tmp_path / "out.json"
    args = _args(yaml_set, folder, boxes, out)
    header = inference_e2e.run_header(inference_e2e.parse_args(args))
    side = partial_path(out)
    stranger = {"img_path": "elsewhere/x.png", "lmk_coco_body_17pts": [], "bbox": []}
    side.write_text(json.dumps({"header": header}) + "\n" + json.dumps({"record": stranger}) + "\n")
    assert inference_e2e.main(args + ["--resume", "--track"]) == 2
    assert "track" in capsys.readouterr().err
    assert inference_e2e.main(args + ["--resume"]) == 2
    assert "inputs changed" in capsys.readouterr().err and side.exists() and not out.exists()
