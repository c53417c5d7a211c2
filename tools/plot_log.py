"""Turn a training log (``WORK_DIR/log.jsonl``) into PNG curves: loss, learning rate, validation metric.

    python tools/plot_log.py work_dirs/EXP/log.jsonl [-o curves.png] [--metric AP]

One figure with three panels sharing the iteration axis; the metric panel is left empty (with a
note) when the run never validated.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from litehrnet import cli_checks


def collect_curves(records, metric: str) -> dict[str, tuple[list, list]]:
    """``{"loss": (iters, values), "epoch_loss": ..., "lr": ..., metric: ...}`` from log records."""
    curves: dict[str, tuple[list, list]] = {k: ([], []) for k in ("loss", "epoch_loss", "lr", metric)}

    def add(name: str, x, y) -> None:
        if isinstance(y, (int, float)):
            curves[name][0].append(x)
            curves[name][1].append(y)

    for rec in records:
        mode, it = rec.get("mode"), rec.get("iter")
        if mode == "train":
            add("loss", it, rec.get("loss"))
            add("lr", it, rec.get("lr"))
        elif mode == "epoch":
            add("epoch_loss", it, rec.get("loss"))
        elif mode == "val":
            add(metric, it, rec.get(metric))
    return curves


def plot_curves(curves: dict, metric: str, out_png: str | os.PathLike, title: str = "") -> Path:
    """Draw the three panels and write the PNG atomically."""
    import matplotlib  # imported here: --help stays fast

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(3, 1, figsize=(7, 8), sharex=True)
    ax_loss, ax_lr, ax_metric = axes
    ax_loss.plot(*curves["loss"], lw=1, label="iteration loss")
    ax_loss.plot(*curves["epoch_loss"], "o-", ms=3, label="epoch mean")
    ax_loss.set_ylabel("loss")
    ax_loss.set_yscale("log" if all(v > 0 for v in curves["loss"][1] + curves["epoch_loss"][1]) else "linear")
    ax_loss.legend(loc="upper right")
    ax_lr.plot(*curves["lr"], lw=1)
    ax_lr.set_ylabel("learning rate")
    if curves[metric][0]:
        ax_metric.plot(*curves[metric], "o-", ms=4)
    else:
        ax_metric.text(0.5, 0.5, f"no '{metric}' validation records", ha="center", va="center",
                       transform=ax_metric.transAxes)
    ax_metric.set_ylabel(f"val {metric}")
    ax_metric.set_xlabel("iteration")
    for ax in axes:
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    out_png = Path(out_png)
    tmp = out_png.with_name(f".{out_png.stem}.tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    os.replace(tmp, out_png)
    return out_png


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("log", help="JSON-lines log written by train.py")
    parser.add_argument("-o", "--out", help="output PNG (default: beside the log, <log stem>.png)")
    parser.add_argument("--metric", default="AP", help="validation key to plot (AP, PCKh, ...)")
    args = parser.parse_args(argv)
    log = Path(args.log)
    try:  # paths first: one line, exit 2
        cli_checks.input_file(log, "log file", "train.py writes WORK_DIR/log.jsonl")
        cli_checks.output_file(args.out or log.with_suffix(".png"), "plot (-o)", extensions=(".png",))
    except cli_checks.PathCheckError as exc:
        return cli_checks.report(exc)
    from litehrnet.training.logger import read_log  # the training package imports torch: not for --help

    try:
        curves = collect_curves(list(read_log(log)), args.metric)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if not curves["loss"][0] and not curves["epoch_loss"][0]:
        print(f"error: {log}: no training records (mode 'train' or 'epoch') in this log", file=sys.stderr)
        return 1
    out = plot_curves(curves, args.metric, args.out or log.with_suffix(".png"), title=log.parent.name)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(cli_checks.run_main(main, "nothing was written", "run the same command again"))
