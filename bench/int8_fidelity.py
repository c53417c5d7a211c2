"""What int8 costs: float vs Kneron-style int8 AP for Lite-HRNet-18, its NPU variant and its exact NPU rewrite.

    python bench/int8_fidelity.py [--minutes 20] [--qat-minutes 5] [--input-hw 128 96] [--batch 8]
        [--work-dir work_dirs/bench_int8] [--num-calib 80] [--threads 1]

1. Gives ``litehrnet_18`` and ``litehrnet_18_npu`` real skill on ``../shared/data/coco_train2017_mini``
   within ``--minutes`` each (timed first epoch, then the epochs that fit, lr x0.1 at 75% / 90%), as
   ``bench/learn_real.py`` does; both with Kneron's ``kneron`` normalisation (the chip's input; the
   ``torch`` mode has no int8 input path). Checkpoints are cached in ``--work-dir`` (same settings =
   no retraining).
2. Exports each float ONNX (and the exact NPU rewrite of litehrnet_18 with the int8 fix
   ``one_logit=8``, plus the float-exact ``one_logit=20`` for comparison), calibrates on
   ``coco_val2017_dev`` person crops (disjoint from the scored images, checked), and scores float and
   int8 with the same GT-box protocol. int8 settings: ``tools/quantize.py``'s defaults (per-channel
   activations on Kneron's ``scale * 2**radix`` grid, percentile 0.999, ``--outlier-factor auto``)
   with per-channel and per-tensor weights, and Kneron's own defaults taken literally (outlier
   factor 1.0), which show what an untuned run of the toolchain may do
   (:func:`litehrnet.kneron.fidelity.measure_fidelity`, no flip test) on the training images the
   float model learnt: a drop means something only when the float AP is >= 0.5, which is printed.
3. Fine-tunes each float model with ``--qat`` for ``--qat-minutes`` at the learning rate its float
   training ended with (x0.01: a larger one first un-learns, float AP 0.903 -> 0.896 at x0.1) and
   scores its int8 emulation.

Ends with ``RESULT int8_ap_drop_npu_ptq=``, ``int8_ap_drop_npu_qat=``, ``int8_ap_drop_rewrite_ptq=``
(AP points: 0.652 -> 65.2), ``worst_layer_snr_db_npu=``, the float APs, and the NPU variant's drops with
per-tensor weights and with Kneron's defaults. Reports (MD/PNG/JSON) per
model are written to ``--work-dir``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import onnx
import torch

from litehrnet.config import load_config, parse_cli_options
from litehrnet.export.pipeline import ExportJob, run_export
from litehrnet.kneron.calibration import check_disjoint, coco_person_crops, crop_inputs, take
from litehrnet.kneron.fidelity import measure_fidelity, write_report
from litehrnet.kneron.qdq import quantize_model, save_model
from litehrnet.training.trainer import TrainOptions, train

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
CONFIGS = {"litehrnet_18": REPO / "configs/coco/litehrnet_18_coco_256x192.yaml",
           "litehrnet_18_npu": REPO / "configs/coco/litehrnet_18_npu_coco_256x192.yaml"}
TRAIN_ANN = "annotations/person_keypoints_train2017.json"
INPUT_RADIX_KNERON = 8
ONE_LOGIT_INT8 = 8.0
FLOOR_AP = 0.5
QAT_LR_SCALE = 0.01  # the float schedule's last step (x0.1 at 75%, x0.1 again at 90%)


def bench_config(args, variant: str, epochs: int, steps_at: int | None, lr_scale: float = 1.0) -> dict:
    steps = [int(steps_at * 0.75), int(steps_at * 0.9)] if steps_at else [10**6, 10**6]
    options = [
        f"data.root={args.data}", f"data.train_ann={TRAIN_ANN}", "data.train_img_dir=train2017",
        f"data.val_ann={TRAIN_ANN}", "data.val_img_dir=train2017", "data.det_file=null", "data.workers=0",
        "data.norm=kneron", "data.channel_order=rgb",
        "data.aug.rot_prob=0.3", "data.aug.rot_factor=20", "data.aug.scale_factor=0.15", "data.aug.half_body_prob=0.0",
        f"model.input_hw=[{args.input_hw[0]},{args.input_hw[1]}]",
        f"train.epochs={epochs}", f"train.batch_size={args.batch}", f"train.optimizer.lr={args.lr * lr_scale}",
        "train.lr_schedule.warmup_iters=30" if lr_scale == 1.0 else "train.lr_schedule.warmup_iters=0",
        f"train.lr_schedule.steps=[{steps[0]},{steps[1]}]",
        "train.log_interval=50", "train.validate_interval=100000", "train.max_keep_checkpoints=1",
        f"train.seed={args.seed}",
    ]
    return load_config(CONFIGS[variant], parse_cli_options(options))


def train_for(args, variant: str, minutes: float, work: Path, load_from: str | None = None, qat: bool = False) -> Path:
    """Train within ``minutes`` (one timed epoch, then what fits); cached by a settings stamp."""
    stamp = {"variant": variant, "minutes": minutes, "input_hw": list(args.input_hw), "batch": args.batch,
             "lr": args.lr, "seed": args.seed, "load_from": load_from, "qat": qat,
             **({"qat_scheme": "per-channel kneron-grid activations", "qat_lr_scale": QAT_LR_SCALE} if qat else {})}
    stamp_file = work / "bench_stamp.json"
    if stamp_file.is_file() and json.loads(stamp_file.read_text())["stamp"] == stamp:
        ckpt = Path(json.loads(stamp_file.read_text())["checkpoint"])
        if ckpt.is_file():
            print(f"  cached: {ckpt}", flush=True)
            return ckpt
    scale = QAT_LR_SCALE if qat else 1.0
    opts = dict(work_dir=str(work), validate=False, show_progress=False, qat=qat, threads=torch.get_num_threads())
    start = time.perf_counter()
    result = train(bench_config(args, variant, 1, None, scale), TrainOptions(load_from=load_from, **opts))
    per_epoch = time.perf_counter() - start
    epochs = max(2, int(minutes * 60 / max(per_epoch, 1e-3)))
    result = train(bench_config(args, variant, epochs, epochs, scale),
                   TrainOptions(resume_from=str(result.last_checkpoint), **opts))
    print(f"  {variant}{' QAT' if qat else ''}: {result.epochs_done} epochs, {result.iters_done} iterations "
          f"in {(time.perf_counter() - start) / 60:.1f} min", flush=True)
    stamp_file.write_text(json.dumps({"stamp": stamp, "checkpoint": str(result.last_checkpoint)}))
    return Path(result.last_checkpoint)


def export(cfg: dict, ckpt: Path, out: Path, rewrite: bool = False, one_logit: float | None = None) -> onnx.ModelProto:
    job = ExportJob(cfg=cfg, checkpoint=str(ckpt), out_path=out, input_hw=tuple(cfg["model"]["input_hw"]),
                    opset=cfg["export"]["opset"], simplify=cfg["export"]["simplify"], npu_rewrite=rewrite,
                    one_logit=one_logit, verify_coco_dir=SHARED / "coco_val2017_dev")
    run_export(job)
    return onnx.load(str(out))


def ptq(model, calib, evaluation, args, per_channel: bool, name: str, outlier_factor="auto"):
    hw = tuple(args.input_hw)
    qmodel, plan, summary = quantize_model(model, crop_inputs(calib, hw, "kneron", "rgb"), per_channel=per_channel,
                                           input_radix=INPUT_RADIX_KNERON, outlier_factor=outlier_factor)
    save_model(qmodel, Path(args.work_dir) / f"{name}.onnx")
    report = measure_fidelity(model, qmodel, plan, evaluation, hw, "kneron", "rgb", ann_file=Path(args.data) / TRAIN_ANN)
    write_report(report, Path(args.work_dir) / f"{name}_fidelity", f"int8 fidelity: {name}")
    print(f"  {name} (outlier factor {summary['outlier_factor']:g}): AP float {report.ap_float:.4f} "
          f"int8 {report.ap_int8:.4f}, heatmap SNR "
          f"{report.heatmap_snr_db:.1f} dB, worst layer {report.worst_snr_db:.1f} dB "
          f"({len(report.flagged)} < 20 dB), shift median {report.displacement_px_median:.2f} px, "
          f"self-AP {report.self_ap:.3f}", flush=True)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(SHARED / "coco_train2017_mini"))
    parser.add_argument("--calib", default=str(SHARED / "coco_val2017_dev" / "annotations" / "person_keypoints_val2017.json"))
    parser.add_argument("--num-calib", type=int, default=80, help="calibration crops (coco_val2017_dev has 80)")
    parser.add_argument("--minutes", type=float, default=20.0, help="float training budget per model")
    parser.add_argument("--qat-minutes", type=float, default=5.0, help="QAT fine-tuning budget per model")
    parser.add_argument("--input-hw", type=int, nargs=2, default=[128, 96], metavar=("H", "W"))
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--lr", type=float, default=4e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--work-dir", default=str(REPO / "work_dirs" / "bench_int8"))
    args = parser.parse_args(argv)
    ann = Path(args.data) / TRAIN_ANN
    for path, what in ((ann, "--data (coco_train2017_mini)"), (Path(args.calib), "--calib")):
        if not path.is_file():
            print(f"error: {path}: {what} annotations not found; pass the folder/file", file=sys.stderr)
            return 2
    torch.set_num_threads(args.threads)
    work = Path(args.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    hw = tuple(args.input_hw)
    calib = take(coco_person_crops(Path(args.calib), hw), args.num_calib, args.calib)
    evaluation = coco_person_crops(ann, hw)
    check_disjoint(calib, evaluation, args.calib, ann)
    print(f"calibration: {len(calib)} crops of {args.calib}; scored: {len(evaluation)} crops of {ann}", flush=True)

    rows: dict[str, dict] = {}
    start = time.perf_counter()
    for variant in ("litehrnet_18_npu", "litehrnet_18"):
        print(f"{variant}:", flush=True)
        cfg = bench_config(args, variant, 1, None)
        ckpt = train_for(args, variant, args.minutes, work / variant)
        model = export(cfg, ckpt, work / f"{variant}_float.onnx")
        row = rows.setdefault(variant, {})
        row["pc"] = ptq(model, calib, evaluation, args, True, f"{variant}_ptq_per_channel")
        row["pt"] = ptq(model, calib, evaluation, args, False, f"{variant}_ptq_per_tensor")
        row["kd"] = ptq(model, calib, evaluation, args, True, f"{variant}_ptq_kneron_defaults", outlier_factor=1.0)
        qat_ckpt = train_for(args, variant, args.qat_minutes, work / f"{variant}_qat", load_from=str(ckpt), qat=True)
        row["qat"] = ptq(export(cfg, qat_ckpt, work / f"{variant}_qat_float.onnx"), calib, evaluation, args, True,
                         f"{variant}_qat_per_channel")
        if variant == "litehrnet_18":
            for logit in (ONE_LOGIT_INT8, 20.0):
                rw = export(cfg, ckpt, work / f"litehrnet_18_rewrite_l{logit:g}_float.onnx", True, logit)
                rows.setdefault(f"litehrnet_18_rewrite (one_logit {logit:g})", {})["pc"] = ptq(
                    rw, calib, evaluation, args, True, f"litehrnet_18_rewrite_l{logit:g}_ptq_per_channel")

    print(f"\n{'model':36s} {'float AP':>8s} {'PTQ pc':>7s} {'PTQ pt':>7s} {'Kn def':>7s} {'QAT pc':>7s} "
          f"{'shift px':>8s} {'worst dB':>8s}")
    for name, row in rows.items():
        pc = row["pc"]
        cells = [f"{pc.ap_float:8.4f}", f"{pc.ap_int8:7.4f}",
                 f"{row['pt'].ap_int8:7.4f}" if "pt" in row else f"{'-':>7s}",
                 f"{row['kd'].ap_int8:7.4f}" if "kd" in row else f"{'-':>7s}",
                 f"{row['qat'].ap_int8:7.4f}" if "qat" in row else f"{'-':>7s}",
                 f"{pc.displacement_px_median:8.2f}", f"{pc.worst_snr_db:8.1f}"]
        print(f"{name:36s} " + " ".join(cells))
    low = [n for n, r in rows.items() if r["pc"].ap_float < FLOOR_AP]
    if low:
        print(f"NOTE: float AP < {FLOOR_AP} for {', '.join(low)}: train longer (--minutes) before reading the drops")
    print(f"total {(time.perf_counter() - start) / 60:.1f} min")
    npu, rewrite = rows["litehrnet_18_npu"], rows[f"litehrnet_18_rewrite (one_logit {ONE_LOGIT_INT8:g})"]
    print(f"RESULT float_ap_npu={npu['pc'].ap_float:.4f}")
    print(f"RESULT float_ap_litehrnet_18={rows['litehrnet_18']['pc'].ap_float:.4f}")
    print(f"RESULT int8_ap_drop_npu_ptq={100 * (npu['pc'].ap_float - npu['pc'].ap_int8):.2f}")
    print(f"RESULT int8_ap_drop_npu_qat={100 * (npu['pc'].ap_float - npu['qat'].ap_int8):.2f}")
    # the rewrite's reference is the official model's float AP: one_logit=8 changes the float graph a little too
    print(f"RESULT int8_ap_drop_rewrite_ptq={100 * (rows['litehrnet_18']['pc'].ap_float - rewrite['pc'].ap_int8):.2f}")
    print(f"RESULT worst_layer_snr_db_npu={npu['pc'].worst_snr_db:.2f}")
    print(f"RESULT int8_ap_drop_npu_ptq_per_tensor_weights={100 * (npu['pt'].ap_float - npu['pt'].ap_int8):.2f}")
    print(f"RESULT int8_ap_drop_npu_kneron_defaults={100 * (npu['kd'].ap_float - npu['kd'].ap_int8):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
