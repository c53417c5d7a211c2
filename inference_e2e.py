"""Pose estimation over images, a folder, a list file, a video, a camera or a stream; one record per image.

    python inference_e2e.py --img-path DIR|LIST.txt|VIDEO|0|rtsp://... --yolov5_params Y \
        --rsn_affine_params A --lite_hrnet_params L --save-path out.json [--coco-out coco_results.json]
        [--track] [--det-interval N] [--smooth one-euro] [--vis-out out.mp4|FOLDER] [--resume]

Output: a JSON list of ``{"img_path", "lmk_coco_body_17pts": [[[x, y, score] x 17] per person],
"bbox": [[l, t, w, h, score] per person]}`` (``[]`` when nobody is found), written atomically.
Video, camera and stream frames add ``frame_index`` and ``timestamp_ms``; tracking adds
``track_id`` per person. Unreadable inputs (and the unread frames of a truncated video) are
skipped and listed with their reason (stderr and ``--skipped-out``); an image that fails inside
the chain is listed the same way and makes the exit status 1.

Nothing computed is lost: every record is appended to ``<save-path>.partial.jsonl`` as it is
made (flushed per image); a killed or interrupted run continues with the same command plus
``--resume``; the side file is removed once the final JSON is written. Ctrl-C stops with one line
saying what was kept, exit status 130. See docs/inference.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import deque
from pathlib import Path

from tqdm import tqdm

from litehrnet.cli_checks import EXIT_INTERRUPTED, PathCheckError, output_file
from litehrnet.deploy import ParamsError, RunnerError
from litehrnet.deploy.cli import add_chain_arguments, add_video_arguments, solution_from_args, video_chain_from_args
from litehrnet.deploy.drawing import VisWriter, draw_result
from litehrnet.deploy.inputs import Frame, InputSource, open_source
from litehrnet.deploy.records import ResultLog, ResumeError, coco_results, make_record, partial_path, write_json_atomic


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--img-path", required=True,
                        help="image, folder, .txt list of images, video file, camera index (0) or stream URL")
    add_chain_arguments(parser, Path(__file__).resolve().parent / "utils")
    parser.add_argument("--save-path", type=Path, required=True, help="output JSON (list of records)")
    parser.add_argument("--coco-out", type=Path,
                        help="also write COCO keypoint results (image id from the file name, OKS-NMSed)")
    parser.add_argument("--skipped-out", type=Path, help="write the skipped inputs and reasons as JSON")
    parser.add_argument("--resume", action="store_true",
                        help="continue an interrupted run from <save-path>.partial.jsonl (same command line)")
    add_video_arguments(parser)
    return parser.parse_args(argv)


def check_before_work(args: argparse.Namespace, source: InputSource) -> None:
    """Every path the run will read or write is usable: raises with one line naming the path and the fix."""
    if source.kind in ("image", "folder", "list", "video") and not Path(args.img_path).exists():
        raise PathCheckError(f"{args.img_path}: input not found (give an image, a folder, a .txt list, a video, "
                             "a camera index such as 0, or a stream URL)")
    if args.resume and source.kind in ("camera", "stream"):
        raise PathCheckError(f"{args.img_path}: a live {source.kind} cannot be resumed; run without --resume")
    for path, what in ((args.save_path, "output JSON (--save-path)"), (args.coco_out, "COCO results (--coco-out)"),
                       (args.skipped_out, "skipped list (--skipped-out)")):
        if path is not None:
            output_file(path, what)
    if args.vis_out is not None and args.resume and VisWriter(args.vis_out).is_video:
        raise PathCheckError(f"{args.vis_out}: a video cannot be continued by --resume; draw into a folder of PNGs "
                             "(--vis-out FOLDER) or run without --resume")


def run_header(args: argparse.Namespace) -> dict:
    """What the outputs depend on; a resumed run must match it (recorded in the side file)."""
    keys = ("img_path", "yolov5_params", "rsn_affine_params", "lite_hrnet_params", "boxes", "whole_image",
            "track", "track_metric", "track_max_lost", "det_interval", "smooth")
    return {"format": "litehrnet-e2e-partial/1", **{k: (str(v) if isinstance(v, Path) else v)
                                                    for k, v in vars(args).items() if k in keys}}


def pending_frames(source: InputSource, log: ResultLog):
    """The source's items after those already in the side file (checked to be the same inputs)."""
    for position, frame in enumerate(source):
        if position < len(log.done):
            if frame.img_path != log.done[position]:
                raise ResumeError(f"{log.path}: input {frame.img_path} was not in the interrupted run at this place; "
                                  "the inputs changed, delete the side file to start again")
            continue
        yield frame


def process(args: argparse.Namespace, source: InputSource, chain, log: ResultLog, vis: VisWriter | None) -> int:
    """Run every pending input through the chain, appending each result to the side file; returns failures."""
    failures = 0
    stamps: deque[float] = deque(maxlen=30)
    total = source.count()
    pipelined = not args.sequential
    with tqdm(total=total, initial=min(log.resumed, total or log.resumed), unit="img", file=sys.stderr) as bar:
        for out in chain.run(pending_frames(source, log), pipelined=pipelined):
            frame: Frame = out.frame
            state = chain.state() if chain.tracker is not None else None
            if out.result is None:
                failures += out.error.startswith("processing failed")
                log.add_skipped(frame.img_path, out.error, state)
            else:
                record = make_record(frame.img_path, out.result, frame.frame_index if source.is_video else None,
                                     frame.timestamp_ms, out.track_ids)
                try:
                    log.add_record(record, state)
                except ValueError as exc:  # a non-finite number: strict JSON refuses it, the input is reported
                    failures += 1
                    log.add_skipped(frame.img_path, f"processing failed: output is not finite ({exc})", state)
                    continue
                stamps.append(time.perf_counter())
                if vis is not None:
                    fps = (len(stamps) - 1) / (stamps[-1] - stamps[0]) if len(stamps) > 1 else None
                    vis.write(draw_result(frame.img_bgr, out.result, args.kpt_thr, out.track_ids, fps), frame.img_path)
            bar.update(1)
    return failures


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    source = open_source(args.img_path)
    try:
        check_before_work(args, source)
        solution, boxes = solution_from_args(args)
        chain = video_chain_from_args(args, solution, boxes)
        vis = VisWriter(args.vis_out, fps=25.0) if args.vis_out is not None else None
        log = ResultLog(partial_path(args.save_path), run_header(args), args.resume)
    except (PathCheckError, ParamsError, RunnerError, ResumeError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if log.resumed:
        print(f"resuming: {log.resumed} input(s) already done in {log.path}", file=sys.stderr)
        if log.state is not None:
            chain.load_state(log.state)
    try:
        failures = process(args, source, chain, log, vis)
    except KeyboardInterrupt:
        log.close()
        if vis is not None:
            vis.close()
        print(f"interrupted (Ctrl-C): {len(log.records)} record(s) kept in {log.path}; run the same command with "
              "--resume to continue", file=sys.stderr)
        return EXIT_INTERRUPTED
    except ResumeError as exc:
        log.close()
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if vis is not None:
        vis.close()
    write_json_atomic(log.records, args.save_path)
    if args.coco_out:
        write_json_atomic(coco_results(log.records), args.coco_out)
    if args.skipped_out:
        write_json_atomic(log.skipped, args.skipped_out)
    log.finish()
    for item in log.skipped:
        print(f"skipped {item['img_path']}: {item['reason']}", file=sys.stderr)
    persons = sum(len(r["bbox"]) for r in log.records)
    print(f"wrote {args.save_path}: {len(log.records)} image(s), {persons} person(s), {len(log.skipped)} skipped",
          file=sys.stderr)
    if boxes is not None and not log.resumed:  # keys of the boxes file that matched no input (counts);
        boxes.report_unmatched(len(log.records))  # a resumed run did not look up the earlier images
    return 1 if failures else 0


if __name__ == "__main__":  # Ctrl-C while processing is handled in main(); before that nothing was written
    from litehrnet.cli_checks import run_main

    sys.exit(run_main(main, "nothing was processed yet", "run the same command again"))
