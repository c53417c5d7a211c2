"""Known-answer tests of the int8 scheme: radix, rounding, saturation, SNR, per-channel weights, QDQ graph."""

import math

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from litehrnet.kneron.calibration import ActivationStats, choose_radices, collect_stats, radix_for_stats
from litehrnet.kneron.int8 import (bias_to_int32, fake_quant, quantize_weight, radix_for_range, radix_per_channel,
                                   snr_db)
from litehrnet.kneron.qdq import plan_activations, read_scheme, write_qdq
from prepostprocess import normalize, quantize


def test_radix_for_known_ranges_matches_hand_computation():
    # largest r with hi * 2**r <= 127 and lo * 2**r >= -128
    assert radix_for_range(-1.0, 1.0) == 6          # 127 / 1 = 127 -> 2**6 = 64 (2**7 = 128 > 127)
    assert radix_for_range(-0.5, 127 / 256) == 8    # the kneron input: exactly the firmware's radix 8
    assert radix_for_range(-1.0, 127 / 128) == 7    # the tf input: radix 7
    assert radix_for_range(0.0, 20.0) == 2          # 127 / 20 = 6.35 -> 4
    assert radix_for_range(-300.0, 10.0) == -2      # 128 / 300 = 0.43 -> 2**-2 = 0.25
    assert radix_for_range(0.0, 0.003) == 15        # 127 / 0.003 = 42333 -> 2**15 = 32768
    assert radix_for_range(-1.0, 0.0) == 7          # -128 is representable: -1 * 128 = -128
    with pytest.raises(ValueError, match="not finite"):
        radix_for_range(0.0, math.inf)


def test_input_quantiser_is_the_activation_quantiser():
    pixels = np.arange(256, dtype=np.uint8).reshape(1, -1, 1).repeat(3, 2)
    x = normalize(pixels, "kneron")
    r = radix_for_range(x.min(), x.max())
    assert r == 8
    np.testing.assert_array_equal(quantize(x, r)[0, :, 0], np.arange(256) - 128)
    np.testing.assert_array_equal(fake_quant(x, r), x)  # the chip's input is exact


def test_rounding_half_away_and_saturation():
    v = np.array([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 0.49, 126.5, 127.4, 500.0, -128.4, -128.6, -1e6])
    np.testing.assert_array_equal(quantize(v, 0), [1, 2, 3, -1, -2, -3, 0, 127, 127, 127, -128, -128, -128])
    # same rule with a radix: 0.3 * 8 = 2.4 -> 2; 0.3125 * 8 = 2.5 -> 3
    np.testing.assert_array_equal(quantize(np.array([0.3, 0.3125, -0.3125]), 3), [2, 3, -3])
    # per-channel radix broadcasts
    np.testing.assert_array_equal(quantize(np.array([[1.0], [1.0]]), np.array([[2], [5]])), [[4], [32]])


def test_exactly_representable_values_are_bit_identical():
    rng = np.random.default_rng(0)
    q = rng.integers(-128, 128, size=1000)
    for r in (-2, 0, 5, 9):
        x = (q * 2.0 ** -r).astype(np.float32)
        np.testing.assert_array_equal(quantize(x, r), q)
        np.testing.assert_array_equal(fake_quant(x, r), x)


def test_snr_on_a_known_signal():
    t = np.linspace(0, 1, 10_000, endpoint=False)
    signal = np.sin(2 * np.pi * 5 * t)
    noise = 0.01 * (-1.0) ** np.arange(t.size)          # power 1e-4, signal power 0.5
    assert snr_db(signal, signal + noise) == pytest.approx(10 * math.log10(0.5 / 1e-4), abs=1e-6)
    assert snr_db(signal, signal) == math.inf
    # uniform int8 rounding of a full-scale sine: about 6.02 * 8 + 1.76 dB minus the unused headroom
    r = radix_for_range(-1, 1)                      # 6: full scale 127/64 ~ 1.98, the sine uses half
    assert snr_db(signal, fake_quant(signal, r)) == pytest.approx(6.02 * 7 + 1.76, abs=0.6)


def test_per_channel_beats_per_tensor_when_channels_differ_100x():
    rng = np.random.default_rng(1)
    w = rng.normal(size=(2, 8, 3, 3))
    w[1] *= 0.01
    q_c, r_c = quantize_weight(w, per_channel=True)
    q_t, r_t = quantize_weight(w, per_channel=False)
    assert r_c[1] - r_c[0] >= 6 and r_t[0] == r_t[1] == r_c[0]
    small_c = snr_db(w[1], q_c[1] * 2.0 ** -r_c[1])
    small_t = snr_db(w[1], q_t[1] * 2.0 ** -r_t[1])
    assert small_c > 30 and small_c - small_t > 30  # 100x ~ 40 dB lost per tensor
    np.testing.assert_array_equal(radix_per_channel(w), r_c)


def test_bias_lives_at_the_accumulator_radix():
    q, r = bias_to_int32(np.array([0.5, -0.25, 1000.0]), radix_in=8, radix_w=np.array([6, 7, 7]))
    np.testing.assert_array_equal(r, [14, 15, 15])
    np.testing.assert_array_equal(q, [2**13, -(2**13), 1000 * 2**15])
    assert q.dtype == np.int32


def test_calibration_methods_on_a_known_distribution():
    rng = np.random.default_rng(2)
    x = rng.normal(size=200_000)
    x[:10] = 40.0                                  # rare outliers
    stats = ActivationStats()
    for chunk in np.split(x, 4):
        stats.update(chunk)
    assert stats.count == x.size and stats.hi == 40.0
    assert radix_for_stats(stats, "max") == 1       # 127 / 40 = 3.2 -> 2
    assert radix_for_stats(stats, "percentile", 0.999) == 5   # |x| 99.9% ~ 3.3 -> 127/3.3 = 38 -> 32
    # mse, by hand: r=1 (no clip) 2e5 * 0.5**2/12 = 4167; r=2: 2e5 * 0.25**2/12 + 10 * (40 - 31.75)**2 = 1722;
    # r=3: 260 + 10 * (40 - 15.875)**2 = 6080 -> 2
    assert radix_for_stats(stats, "mse") == 2
    assert stats.squared_error(2) == pytest.approx(1722, rel=0.06)  # log-histogram bins: 4.4% wide
    with pytest.raises(ValueError, match="calibration method"):
        radix_for_stats(stats, "entropy")


def _tiny_model():
    """input -> Conv(+bias) -> Relu -> Conv -> Add(const) -> Sigmoid -> Concat(with relu) = heatmaps."""
    rng = np.random.default_rng(3)
    w1 = rng.normal(size=(4, 3, 3, 3)).astype(np.float32) * 0.3
    w1[3] *= 0.01
    b1 = rng.normal(size=4).astype(np.float32) * 0.1
    w2 = rng.normal(size=(2, 4, 1, 1)).astype(np.float32)
    nodes = [
        helper.make_node("Conv", ["input", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "w2"], ["c2"]),
        helper.make_node("Add", ["c2", "k"], ["a2"]),
        helper.make_node("Sigmoid", ["a2"], ["s2"]),
        helper.make_node("Concat", ["s2", "r1"], ["heatmaps"], axis=1),
    ]
    inits = [numpy_helper.from_array(a, n) for a, n in
             ((w1, "w1"), (b1, "b1"), (w2, "w2"), (np.array(0.3, np.float32), "k"))]
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 8, 6])],
                              [helper.make_tensor_value_info("heatmaps", TensorProto.FLOAT, [1, 6, 8, 6])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])
    model.ir_version = 7
    model.metadata_props.append(onnx.StringStringEntryProto(key="norm", value="kneron"))
    return model, (w1, b1, w2)


def _run(model, x):
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {"input": x})[0]


def test_qdq_graph_matches_a_numpy_int8_reference():
    model, (w1, b1, w2) = _tiny_model()
    plan = plan_activations(model)
    assert plan.fused == ["c1"] and plan.activations == ["r1", "c2", "a2", "s2", "heatmaps"]
    rng = np.random.default_rng(4)
    inputs = [normalize(rng.integers(0, 256, (8, 6, 3)).astype(np.uint8), "kneron").transpose(2, 0, 1)[None]
              for _ in range(4)]
    stats, seen = collect_stats(model, plan.activations, inputs)
    assert seen == 4
    radix = choose_radices(stats, "max", 0.999, fixed={"input": 8})
    qmodel, summary = write_qdq(model, radix, plan, per_channel=True, calibration={"method": "max"})
    assert read_scheme(qmodel)["input_radix"] == 8 and read_scheme(qmodel)["method"] == "max"
    assert read_scheme(model) is None
    assert {p.key: p.value for p in qmodel.metadata_props}["norm"] == "kneron"

    # numpy reference of the same arithmetic
    import torch  # test-only: a reference conv

    def conv(x, w, b=None, pad=0):
        return torch.nn.functional.conv2d(torch.from_numpy(x).double(), torch.from_numpy(w).double(),
                                          None if b is None else torch.from_numpy(b).double(), padding=pad).numpy()

    x = inputs[0]
    q1, r_w1 = quantize_weight(w1)
    assert summary["weights"]["w1"] == r_w1.tolist() and r_w1[3] > r_w1[0]
    qb, r_b = bias_to_int32(b1, 8, r_w1)
    wq1 = q1 * 2.0 ** -r_w1[:, None, None, None]
    r1 = fake_quant(np.maximum(conv(x, wq1, qb * 2.0 ** -r_b, 1), 0), radix["r1"])
    q2, r_w2 = quantize_weight(w2)
    c2 = fake_quant(conv(r1.astype(np.float64), q2 * 2.0 ** -r_w2[:, None, None, None]), radix["c2"])
    a2 = fake_quant(c2 + fake_quant(0.3, radix_for_range(0, 0.3)), radix["a2"])
    s2 = fake_quant(1 / (1 + np.exp(-a2.astype(np.float64))), radix["s2"])
    ref = fake_quant(np.concatenate([s2, r1], 1), radix["heatmaps"])
    got = _run(qmodel, x)
    step = 2.0 ** -radix["heatmaps"]
    # float32 vs float64 arithmetic can move a value across a rounding edge: at most one step, rarely
    assert np.abs(got - ref).max() <= step + 1e-7 and np.mean(got != ref) < 0.01
    # every output is on the int8 grid of its radix
    assert np.all(np.abs(got) * 2 ** radix["heatmaps"] <= 128)
    np.testing.assert_array_equal(got * 2.0 ** radix["heatmaps"], np.round(got * 2.0 ** radix["heatmaps"]))
    # and it is close to float
    assert snr_db(_run(model, x), got) > 25


def test_weight_radix_gives_way_to_a_bias_that_would_saturate_int32():
    from litehrnet.kneron.int8 import radix_w_for_bias

    # channel 0: tiny weights (radix 20) and bias 3.0 at input radix 10: 3 * 2**30 > 2**31 - 1 -> r_w 19
    r = radix_w_for_bias(np.array([20, 20, 5]), np.array([3.0, 1.0, 1000.0]), 10)
    np.testing.assert_array_equal(r, [19, 20, 5])  # floor(log2((2**31 - 1) / 3)) - 10 = 29 - 10 = 19
    q, r_b = bias_to_int32(np.array([3.0]), 10, r[:1])
    assert q[0] == 3 * 2**29 and r_b[0] == 29


def test_report_worst_layer_ignores_layers_that_are_zero_in_float():
    """A layer that is all zero in float has SNR -inf (noise, no signal): it is listed as such, but
    the worst-layer figure is the lowest *defined* SNR, and the JSON stays strict."""
    import json

    from litehrnet.kneron.fidelity import FidelityReport, LayerSnr, format_markdown, snr_from_powers

    layers = [LayerSnr("a", "Conv", 4, 31.5), LayerSnr("dead", "Relu", 24, snr_from_powers(0.0, 1e-6)),
              LayerSnr("b", "Add", 3, 12.25), LayerSnr("same", "Concat", 5, snr_from_powers(1.0, 0.0))]
    report = FidelityReport(num_crops=2, layers=layers, heatmap_snr_db=20.0, displacement_px_median=0.5,
                            displacement_px_p95=1.0, self_ap=0.9)
    assert report.worst_snr_db == 12.25
    assert [layer.name for layer in report.flagged] == ["dead", "b"]
    text = format_markdown(report)
    assert "`dead` (Relu, radix 24): zero in float\n" in text and "`b` (Add, radix 3): 12.2 dB" in text
    out = json.loads(json.dumps(report.to_json(), allow_nan=False))
    assert out["worst_snr_db"] == 12.25
    assert [(l["snr_db"], l["exact"]) for l in out["layers"]] == [(31.5, False), (None, False), (12.25, False), (None, True)]


def test_kneron_scale_grid_known_answers_and_gain_over_power_of_two():
    from litehrnet.kneron.int8 import multiplier_for_range, split_multiplier

    # float = q / m, m = scale * 2**radix with scale in [1, 2): the range fills the int8 grid
    assert multiplier_for_range(0.0, 20.0, pow2=False) == pytest.approx(127 / 20)       # 6.35 = 1.5875 * 2**2
    assert multiplier_for_range(0.0, 20.0, pow2=True) == 4.0
    assert multiplier_for_range(-1.0, 0.5, pow2=False) == pytest.approx(128.0)          # -1 -> -128 exactly
    r, s = split_multiplier(np.array([127 / 20, 128.0, 0.75]))
    np.testing.assert_array_equal(r, [2, 7, -1])
    np.testing.assert_allclose(s, [1.5875, 1.0, 1.5])
    # a uniform signal on [-3, 3]: radix 5 (step 1/32) vs step 3/127: 20 log10(42.33 / 32) = 2.43 dB better
    x = np.linspace(-3, 3, 100_001)
    m = multiplier_for_range(-3.0, 3.0, pow2=False)
    on_grid = np.clip(np.sign(x * m) * np.floor(np.abs(x * m) + 0.5), -128, 127) / m
    gain = snr_db(x, on_grid) - snr_db(x, fake_quant(x, radix_for_range(-3, 3)))
    assert gain == pytest.approx(20 * math.log10(127 / 3 / 32), abs=0.1)
    assert np.abs(x * m).max() <= 127 + 1e-9  # the range's ends are not saturated


def test_per_channel_activations_finer_for_small_channels_never_coarser_than_the_layer():
    from litehrnet.kneron.calibration import channel_radices, multiplier_for_stats

    rng = np.random.default_rng(5)
    x = rng.uniform(-1, 1, size=(8, 4, 20, 20)).astype(np.float32)
    x[:, 1] *= 0.01                       # a channel 100x smaller: its own, finer radix
    x[0, 2, 0, :5] = 50.0  # 5 of 3200 in channel 2 (0.16%), 5 of 12800 in the layer (0.04%): clipped at the layer range
    stats = ActivationStats(per_channel=True)
    stats.update(x)
    layer = radix_for_stats(stats, "percentile", 0.999)
    assert layer == 6                     # 99.9% of |x| <= 1 -> 127 / 1 -> 64
    r = channel_radices(stats, "percentile", 0.999)
    assert r.shape == (1, 4, 1, 1)
    np.testing.assert_array_equal(r.ravel(), [6, 13, 6, 6])   # 127 / 0.01 = 12700 -> 2**13
    assert channel_radices(stats, "max").ravel().tolist() == [6, 13, 1, 6]  # max: the layer is 50 wide -> 1
    # the outlier factor widens every range: x2 is one radix coarser on the power-of-two grid, m / 2 on Kneron's
    assert radix_for_stats(stats, "max") - 1 == round(math.log2(multiplier_for_stats(stats, "max", outlier_factor=2.0)))
    assert multiplier_for_stats(stats, "max", pow2=False, outlier_factor=2.0) == pytest.approx(
        multiplier_for_stats(stats, "max", pow2=False) / 2)
    with pytest.raises(ValueError, match="outlier factor"):
        multiplier_for_stats(stats, "max", outlier_factor=0.5)


def test_per_channel_kneron_grid_qdq_puts_every_channel_on_its_own_grid():
    from litehrnet.kneron.calibration import choose_multipliers
    from litehrnet.kneron.int8 import split_multiplier

    model, _ = _tiny_model()
    plan = plan_activations(model)
    rng = np.random.default_rng(6)
    inputs = [normalize(rng.integers(0, 256, (8, 6, 3)).astype(np.uint8), "kneron").transpose(2, 0, 1)[None]
              for _ in range(4)]
    stats, _ = collect_stats(model, plan.activations, inputs, per_channel=True)
    mult = choose_multipliers(stats, "max", 0.999, {"input": 8}, per_channel=True, pow2=False)
    radix, scale = {}, {}
    for name, m in mult.items():
        r, s = split_multiplier(m)
        radix[name], scale[name] = (int(r), float(s)) if np.ndim(r) == 0 else (r, s)
    qmodel, _ = write_qdq(model, radix, plan, per_channel=True, scale=scale)
    assert read_scheme(qmodel)["scheme"] == "kneron-int8-scaled"
    x = inputs[0]
    got = _run(qmodel, x)
    m = np.asarray(mult["heatmaps"], np.float64)         # 1 x 6 x 1 x 1: sigmoid channels and relu channels differ
    assert m.shape == (1, 6, 1, 1) and len(np.unique(m)) > 1
    q = got.astype(np.float64) * m
    np.testing.assert_allclose(q, np.round(q), atol=1e-3)  # integers on each channel's grid
    assert q.min() >= -128 - 1e-3 and q.max() <= 127 + 1e-3
    # calibration on the same inputs with max: no channel saturates, and it beats the per-tensor power-of-two grid
    stats_t, _ = collect_stats(model, plan.activations, inputs)
    radix_t = choose_radices(stats_t, "max", 0.999, fixed={"input": 8})
    pow2_model, _ = write_qdq(model, radix_t, plan, per_channel=True)
    ref = _run(model, x)
    assert snr_db(ref, got) > snr_db(ref, _run(pow2_model, x)) + 3


def test_outlier_factor_widens_ranges_but_never_a_sigmoid_beyond_0_1():
    import json

    from litehrnet.kneron.qdq import quantize_model

    model, _ = _tiny_model()
    rng = np.random.default_rng(7)
    inputs = [normalize(rng.integers(0, 256, (8, 6, 3)).astype(np.uint8), "kneron").transpose(2, 0, 1)[None]
              for _ in range(4)]

    def multipliers(factor):
        q, _, summary = quantize_model(model, inputs, method="max", input_radix=8, outlier_factor=factor)
        meta = {p.key: p.value for p in q.metadata_props}
        radix, scale = json.loads(meta["int8_radix"]), json.loads(meta["int8_scale"])
        assert summary["outlier_factor"] == factor and json.loads(meta["quantization"])["outlier_factor"] == factor
        return {n: np.asarray(scale[n], np.float64) * 2.0 ** np.asarray(radix[n]) for n in radix}

    m1, m2 = multipliers(1.0), multipliers(2.0)
    np.testing.assert_allclose(m2["c2"], m1["c2"] / 2, rtol=1e-6)      # a conv output: twice the range
    assert m1["input"] == m2["input"] == 256                          # the chip's input is fixed
    # the sigmoid: calibrated below 1, widened 2x, but capped at its own bound [0, 1]: 1.0 stays exact (q = 127)
    assert np.all(m2["s2"] >= 127 - 1e-3) and np.all(m2["s2"] <= m1["s2"] + 1e-6)
    with pytest.raises(ValueError, match="outlier factor"):
        quantize_model(model, inputs, input_radix=8, outlier_factor=0.9)
