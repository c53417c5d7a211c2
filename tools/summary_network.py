"""Print parameters and FLOPs per stage and in total for a config's model.

    python tools/summary_network.py configs/coco/litehrnet_18_coco_256x192.yaml [--shape 256 192]
    python tools/summary_network.py --variant hrnet_w32 --shape 384 288

FLOPs are multiply-accumulates of conv / deconv / linear layers (the papers' convention, see
``litehrnet/models/complexity.py``); the published figures of the variant are printed alongside.
"""

from __future__ import annotations

import argparse
import sys

from litehrnet import cli_checks
from litehrnet.config import ConfigError, load_config


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config", nargs="?", help="experiment YAML (its model section is used)")
    parser.add_argument("--variant", help="build this variant (17 keypoints) instead of a config's model")
    parser.add_argument("--shape", nargs=2, type=int, metavar=("H", "W"),
                        help="input height and width (default: the config's model.input_hw)")
    args = parser.parse_args(argv)
    if (args.config is None) == (args.variant is None):
        parser.error("give exactly one of CONFIG or --variant")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from litehrnet.models import build_model, build_model_from_config, get_variant  # torch: not for --help
    from litehrnet.models.complexity import count_complexity, format_report

    try:
        if args.config:
            cfg = load_config(args.config)
            model, input_hw = build_model_from_config(cfg), tuple(cfg["model"]["input_hw"])
        else:
            model, input_hw = build_model(args.variant), (256, 192)
    except (ConfigError, KeyError) as exc:
        print(f"error: {exc.args[0] if exc.args else exc}", file=sys.stderr)
        return 2
    if args.shape:
        input_hw = tuple(args.shape)
    if input_hw[0] % 32 or input_hw[1] % 32:
        print(f"error: --shape {input_hw[0]} {input_hw[1]} must be divisible by 32", file=sys.stderr)
        return 2
    report = count_complexity(model, input_hw)
    print(format_report(report))
    published = get_variant(model.variant).get("published", {})
    key = f"{input_hw[0]}x{input_hw[1]}"
    pub_flops = published.get("mflops", {}).get(key)
    pub_params = published.get("params_m")
    if pub_params is not None:
        line = f"published: {pub_params}M params"
        line += f", {pub_flops} MFLOPs at {key} (ours / published = {report.macs / 1e6 / pub_flops:.3f})" \
            if pub_flops else f" (no published FLOPs at {key})"
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(cli_checks.run_main(main, "nothing was written (this tool only prints)", "run the same command again"))
