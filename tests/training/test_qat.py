"""Quantisation-aware fine-tuning: the torch fake quantiser is the int8 scheme, Conv-BN folding, train.py --qat."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

import train as train_script
from litehrnet.kneron.int8 import fake_quant as np_fake_quant
from litehrnet.kneron.int8 import multiplier_for_range, quantize_weight, round_half_away
from litehrnet.models import build_model
from litehrnet.models.checkpoint import load_checkpoint
from litehrnet.training.qat import attach_qat, fake_quant

from training_helpers import write_config


def test_torch_fake_quant_is_the_numpy_rule_with_straight_through_gradients():
    v = torch.tensor([0.5, 1.5, 2.5, -0.5, -2.5, 0.49, 126.5, 500.0, -128.6, 3.3], requires_grad=True)
    out = fake_quant(v, 0)
    np.testing.assert_array_equal(out.detach().numpy(), np_fake_quant(v.detach().numpy(), 0))
    assert out.detach().tolist()[:5] == [1.0, 2.0, 3.0, -1.0, -3.0]
    out.sum().backward()
    assert torch.equal(v.grad, torch.ones_like(v))
    x = torch.randn(2, 3, 4, 5)
    r = torch.tensor([3.0, 5.0, 7.0]).reshape(1, 3, 1, 1)
    np.testing.assert_array_equal(fake_quant(x, r).numpy(), np_fake_quant(x.numpy(), r.numpy().astype(int)))


def test_conv_bn_relu_eval_forward_equals_the_folded_int8_conv():
    torch.manual_seed(0)
    block = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4), nn.ReLU())
    with torch.no_grad():
        block[1].running_var.uniform_(0.5, 2.0)
        block[1].running_mean.uniform_(-0.3, 0.3)
        block[1].weight.uniform_(0.5, 1.5)
        block[1].weight[3] = 0.01  # one channel 100x smaller: its own radix
    keys = set(block.state_dict())
    state = attach_qat(block)
    assert (state.convs, state.folded, state.activations) == (1, 1, 1)
    assert set(block.state_dict()) == keys  # a QAT checkpoint loads into a plain model
    block.eval()
    x = torch.randn(2, 3, 6, 5)
    got = block(x).detach().numpy()
    # reference: fold BN into the conv as the export does, int8 weights per channel, ReLU output int8
    bn = block[1]
    g = (bn.weight / torch.sqrt(bn.running_var + bn.eps)).detach().numpy()
    w_fold = block[0].weight.detach().numpy() * g[:, None, None, None]
    q, r_w = quantize_weight(w_fold)
    assert r_w[3] - r_w[0] >= 5
    b_fold = (bn.bias - bn.running_mean * bn.weight / torch.sqrt(bn.running_var + bn.eps)).detach()
    w_q = torch.from_numpy((q * 2.0 ** -r_w[:, None, None, None]).astype(np.float32))
    y = torch.relu(nn.functional.conv2d(x, w_q, b_fold, padding=1)).numpy()
    # the ReLU output: per channel on Kneron's scale * 2**radix grid, the first eval batch's range
    m = np.array([multiplier_for_range(c.min(), c.max(), pow2=False) for c in y.transpose(1, 0, 2, 3)])
    assert m[3] / m[0] > 10  # the small channel gets a finer grid than a per-tensor radix would give it
    ref = np.clip(round_half_away(y * m[None, :, None, None]), -128, 127) / m[None, :, None, None]
    np.testing.assert_allclose(got, ref, atol=float(1 / m.min()) + 1e-6)
    assert np.mean(np.abs(got - ref) > 1e-6) < 0.02
    # not the float output: the quantiser is really in the forward pass
    block_float = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4), nn.ReLU()).eval()
    block_float.load_state_dict(block.state_dict())
    assert not np.array_equal(block_float(x).detach().numpy(), got)


def test_train_qat_from_a_float_checkpoint_and_refuse_without_one(tmp_path, tiny_synthetic, capsys):
    cfg_path = write_config(tmp_path / "cfg.yaml", tiny_synthetic, train={"epochs": 1})
    assert train_script.main([str(cfg_path), "--work-dir", str(tmp_path / "float"), "--no-validate",
                              "--no-progress"]) == 0
    float_ckpt = tmp_path / "float" / "epoch_1.pth"
    assert float_ckpt.is_file()
    capsys.readouterr()
    assert train_script.main([str(cfg_path), "--work-dir", str(tmp_path / "q"), "--qat", "--no-progress"]) == 2
    assert "--load-from" in capsys.readouterr().err
    assert train_script.main([str(cfg_path), "--work-dir", str(tmp_path / "qat"), "--no-validate", "--no-progress",
                              "--qat", "--load-from", str(float_ckpt)]) == 0
    out = capsys.readouterr().out
    assert "QAT: int8 fake quantisation on" in out and "activations (per channel" in out
    # the QAT checkpoint is a plain state dict: it loads strictly and differs from the float start
    model = build_model("litehrnet_18")
    load_checkpoint(model, tmp_path / "qat" / "epoch_1.pth", strict=True)
    a = torch.load(float_ckpt, weights_only=True)["state_dict"]
    b = torch.load(tmp_path / "qat" / "epoch_1.pth", weights_only=True)["state_dict"]
    assert a.keys() == b.keys()
    assert not torch.equal(a["keypoint_head.final_layer.weight"], b["keypoint_head.final_layer.weight"])


def test_qat_resumes_and_runs_under_ddp(tmp_path, tiny_synthetic, capsys):
    import os
    import subprocess
    import sys

    from training_helpers import REPO

    cfg_path = write_config(tmp_path / "cfg.yaml", tiny_synthetic, train={"epochs": 1})
    float_dir = tmp_path / "float"
    assert train_script.main([str(cfg_path), "--work-dir", str(float_dir), "--no-validate", "--no-progress"]) == 0
    # DDP: two gloo ranks fine-tune with the fake quantisers
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(REPO / "train.py"),
         str(cfg_path), "--work-dir", str(tmp_path / "ddp"), "--no-validate", "--no-progress", "--qat",
         "--load-from", str(float_dir / "epoch_1.pth"), "--cfg-options", "train.epochs=2"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ckpt = torch.load(tmp_path / "ddp" / "epoch_2.pth", weights_only=True)
    assert ckpt["meta"]["world_size"] == 2 and ckpt["meta"]["epoch"] == 2
    # resume the QAT run (single process, from the DDP run's epoch 2) to a third epoch
    assert train_script.main([str(cfg_path), "--work-dir", str(tmp_path / "ddp"), "--no-validate", "--no-progress",
                              "--qat", "--resume-from", str(tmp_path / "ddp" / "epoch_2.pth"),
                              "--cfg-options", "train.epochs=3"]) == 0
    resumed = torch.load(tmp_path / "ddp" / "epoch_3.pth", weights_only=True)
    assert resumed["meta"]["epoch"] == 3 and resumed["meta"]["iter"] > ckpt["meta"]["iter"]
