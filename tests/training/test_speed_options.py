"""train.py's speed switches and start-up report: thread choice, --compile wiring, the lines printed
before the first iteration."""

from __future__ import annotations

import pytest
import torch

import train as train_script
from litehrnet.models import build_model
from litehrnet.training.threads import choose_threads

from training_helpers import write_config


@pytest.mark.parametrize(("cores", "load", "env", "expected"), [
    (2, 0.2, {}, 2),                              # idle: one thread per core
    (2, 1.4, {}, 1),                              # one core busy elsewhere
    (2, 7.9, {}, 1),                              # shared machine: never below 1
    (16, 3.0, {}, 13),                            # big machine, some load
    (16, 0.0, {"LOCAL_WORLD_SIZE": "4"}, 4),      # torchrun: cores shared by the local processes
    (16, 14.0, {"LOCAL_WORLD_SIZE": "4"}, 2),
    (2, 7.9, {"OMP_NUM_THREADS": "2"}, 2),        # the user's explicit choice wins
])
def test_thread_rule(cores, load, env, expected):
    choice = choose_threads(environ=env, cores=cores, load=load)
    assert choice.threads == expected
    if "OMP_NUM_THREADS" in env:
        assert choice.reason == "OMP_NUM_THREADS"
    else:  # the printed reason carries the inputs of the rule and how to override it
        assert f"{cores} cores" in choice.reason and f"load {load:.1f}" in choice.reason
        assert "OMP_NUM_THREADS" in choice.reason
    assert choose_threads(3, environ=env, cores=cores, load=load).threads == 3  # --threads wins over all
    with pytest.raises(ValueError):
        choose_threads(0)


def test_start_report_and_threads_restored(tmp_path, tiny_synthetic, capsys):
    before = torch.get_num_threads()
    work = tmp_path / "work"
    rc = train_script.main([str(write_config(tmp_path / "cfg.yaml", tiny_synthetic)), "--work-dir", str(work),
                            "--no-progress", "--threads", "1", "--cfg-options", "train.max_iters=1"])
    out = capsys.readouterr().out
    assert rc == 0
    lines = {line.split(":", 1)[0]: line for line in out.splitlines() if ":" in line}
    assert "cpu" in lines["device"] and "1 torch thread (--threads)" in lines["device"]
    assert "0 data workers" in lines["device"]
    n_params = sum(p.numel() for p in build_model("litehrnet_18").parameters())
    assert f"{n_params / 1e6:.2f} M parameters" in lines["model"] and "64x64" in lines["model"]
    assert "12 people on 12 images" in lines["train set"] and "batch 4" in lines["train set"]
    assert "4 people on 4 images" in lines["val set"]
    assert str(work.resolve()) in lines["output"]
    assert torch.get_num_threads() == before


def test_compile_wraps_the_training_forward_only(tmp_path, tiny_synthetic, capsys, monkeypatch):
    """--compile hands the (DDP-)model to torch.compile; checkpoints keep the plain keys. The real
    compiler takes minutes here, so a recording stand-in is used (bench/train_speed.py runs it)."""
    compiled = []

    def fake_compile(module, **kwargs):
        compiled.append(module)

        def forward(*args):
            forward.calls += 1
            return module(*args)

        forward.calls = 0
        compiled.append(forward)
        return forward

    monkeypatch.setattr(torch, "compile", fake_compile)
    work = tmp_path / "work"
    rc = train_script.main([str(write_config(tmp_path / "cfg.yaml", tiny_synthetic, train={"epochs": 1})),
                            "--work-dir", str(work), "--no-progress", "--no-validate", "--compile"])
    out = capsys.readouterr().out
    assert rc == 0 and "torch.compile" in out
    assert len(compiled) == 2 and isinstance(compiled[0], torch.nn.Module)
    assert compiled[1].calls == 3  # 12 people / batch 4: every training step went through it
    state = torch.load(work / "epoch_1.pth", weights_only=True)["state_dict"]
    assert not any("_orig_mod" in key for key in state) and "keypoint_head.final_layer.weight" in state
