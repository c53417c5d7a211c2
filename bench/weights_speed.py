"""Does the weight init change latency? The same litehrnet_18 ONNX graph with mmpose's random init
vs synthetic trained-like weights (``litehrnet.export.synthetic``), onnxruntime, 1 thread.

    python bench/weights_speed.py [--runs 30] [--shape 256 192]

mmpose's initialisation (conv std 0.001) shrinks activations toward zero layer after layer (the
heatmaps end near 1e-18), which makes ``max|onnxruntime - torch|`` vacuous; issue 11 suspected
denormal floats behind a 28.1 vs 17.8 ms gap between two benchmarks. This measures it: both
graphs are traced from the same architecture and simplified alike (identical op histograms,
checked); their latencies are measured interleaved in the same run. Ends with ``RESULT`` lines.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from collections import Counter

import numpy as np
import onnx
import onnxruntime as ort
import onnxsim
import torch

from litehrnet.export.synthetic import synthetic_trained_weights
from litehrnet.models import build_model


def to_onnx(model: torch.nn.Module, input_hw) -> onnx.ModelProto:
    buffer = io.BytesIO()
    dummy = torch.zeros(1, 3, *input_hw)
    with torch.no_grad():
        torch.onnx.export(model.eval(), (dummy,), buffer, dynamo=False, opset_version=11,
                          input_names=["input"], output_names=["heatmaps"])
    simplified, ok = onnxsim.simplify(onnx.load_from_string(buffer.getvalue()))
    assert ok
    return simplified


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--shape", nargs=2, type=int, default=[256, 192], metavar=("H", "W"))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    input_hw = tuple(args.shape)
    torch.manual_seed(0)
    random_init = build_model("litehrnet_18").eval()
    calib = torch.randn(2, 3, *input_hw, generator=torch.Generator().manual_seed(0))
    synthetic = synthetic_trained_weights(build_model("litehrnet_18"), calib)
    protos = {"random_init": to_onnx(random_init, input_hw), "synthetic": to_onnx(synthetic, input_hw)}
    hist = {k: Counter(n.op_type for n in p.graph.node) for k, p in protos.items()}
    assert hist["random_init"] == hist["synthetic"], "the two graphs differ"
    ort.disable_telemetry_events()
    sessions = {}
    for name, proto in protos.items():
        opts = ort.SessionOptions()
        opts.intra_op_num_threads, opts.inter_op_num_threads = 1, 1
        sessions[name] = ort.InferenceSession(proto.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).uniform(-2, 2, (1, 3, *input_hw)).astype(np.float32)
    out_max = {name: float(np.abs(s.run(None, {"input": x})[0]).max()) for name, s in sessions.items()}
    times: dict[str, list[float]] = {name: [] for name in sessions}
    for _ in range(3):  # warm-up
        for s in sessions.values():
            s.run(None, {"input": x})
    for _ in range(args.runs):
        for name, s in sessions.items():
            start = time.perf_counter()
            s.run(None, {"input": x})
            times[name].append((time.perf_counter() - start) * 1000)
    med = {name: statistics.median(v) for name, v in times.items()}
    print(f"litehrnet_18 {input_hw[0]}x{input_hw[1]}, {sum(hist['synthetic'].values())} nodes each, "
          f"{args.runs} interleaved runs, onnxruntime {ort.__version__}, 1 thread")
    for name in sessions:
        print(f"{name:12s} median {med[name]:7.2f} ms   max|output| {out_max[name]:.3g}")
    print(f"RESULT random_init_ms={med['random_init']:.2f}")
    print(f"RESULT synthetic_ms={med['synthetic']:.2f}")
    print(f"RESULT random_init_slowdown={med['random_init'] / med['synthetic']:.3f}")
    print(f"RESULT random_init_output_max={out_max['random_init']:.3g}")
    print(f"RESULT synthetic_output_max={out_max['synthetic']:.3g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
