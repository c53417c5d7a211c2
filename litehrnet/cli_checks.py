"""Up-front checks of the paths a command line names, and clean stops on Ctrl-C.

Every script checks its inputs and outputs *before* the first image or iteration, so a typo costs
a second, not a night of work: each problem is one line naming the path, what is wrong and the
fix, and the script exits with status 2 (:data:`EXIT_BAD_INPUT`).

* inputs (:func:`input_file`, :func:`input_dir`): exist and have the right kind;
* outputs (:func:`output_file`, :func:`output_dir`): not a folder (resp. not a file), and either
  writable or creatable: the nearest existing parent is a writable folder;
* config-named data (:func:`config_data_paths`): annotation files, image folders and the detection
  file of a resolved config (``data.root`` joined with each key; absolute keys stay absolute).

:func:`run_main` runs a script's ``main`` and turns Ctrl-C into one line saying what was kept and
how to resume, exit status 130 (:data:`EXIT_INTERRUPTED`, the shell's 128 + SIGINT).

Only the standard library is imported here, so ``--help`` stays fast.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Callable, Iterable, Sequence

EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130
# Extensions OpenCV can write without extra codecs (drawings, plots).
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


class PathCheckError(ValueError):
    """A path given on the command line or in a config cannot be used (message: path, problem, fix)."""


def input_file(path: str | os.PathLike, what: str, fix: str = "") -> Path:
    """``path`` must be an existing file (not a folder)."""
    path = Path(path)
    if path.is_dir():
        raise PathCheckError(f"{path}: {what} is a folder, expected a file{_fix(fix)}")
    if not path.is_file():
        raise PathCheckError(f"{path}: {what} not found{_fix(fix)}")
    if not os.access(path, os.R_OK):
        raise PathCheckError(f"{path}: {what} is not readable; check its permissions")
    return path


def input_dir(path: str | os.PathLike, what: str, fix: str = "") -> Path:
    """``path`` must be an existing folder."""
    path = Path(path)
    if path.is_file():
        raise PathCheckError(f"{path}: {what} is a file, expected a folder{_fix(fix)}")
    if not path.is_dir():
        raise PathCheckError(f"{path}: {what} not found{_fix(fix)}")
    return path


def input_path(path: str | os.PathLike, what: str, fix: str = "") -> Path:
    """``path`` must exist (file or folder)."""
    path = Path(path)
    if not path.exists():
        raise PathCheckError(f"{path}: {what} not found{_fix(fix)}")
    return path


def output_file(path: str | os.PathLike, what: str = "output file",
                extensions: Sequence[str] | None = None) -> Path:
    """``path`` can be written as a file: not a folder, writable if present, else its parent
    exists or can be created (the nearest existing ancestor is a writable folder).

    ``extensions``: accepted suffixes (lower case, with the dot), e.g. :data:`IMAGE_EXTENSIONS`.
    """
    named_as_folder = os.fspath(path).endswith(("/", os.sep))  # "out/" (a Path drops the slash)
    path = Path(path)
    if named_as_folder or path.is_dir():
        raise PathCheckError(f"{path}: {what} is a folder; give a file name, e.g. {path / _example(extensions)}")
    if extensions is not None and path.suffix.lower() not in extensions:
        raise PathCheckError(f"{path}: {what} must end in one of {', '.join(extensions)} "
                             f"(got {path.suffix or 'no extension'})")
    if path.exists():
        if not os.access(path, os.W_OK):
            raise PathCheckError(f"{path}: {what} exists and is not writable; choose another path or fix permissions")
        return path
    _creatable(path.parent if str(path.parent) else Path("."), what, path)
    return path


def output_dir(path: str | os.PathLike, what: str = "output folder") -> Path:
    """``path`` is a writable folder or can be created."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise PathCheckError(f"{path}: {what} is a file; give a folder path")
    if path.is_dir():
        if not os.access(path, os.W_OK | os.X_OK):
            raise PathCheckError(f"{path}: {what} is not writable; choose another folder or fix permissions")
        return path
    _creatable(path, what, path)
    return path


def _creatable(folder: Path, what: str, target: Path) -> None:
    """The nearest existing ancestor of ``folder`` (itself included) must be a writable folder."""
    probe = folder.absolute()
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise PathCheckError(f"{target}: cannot create the {what}: {probe} is a file, not a folder; "
                             "choose another path")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise PathCheckError(f"{target}: cannot create the {what}: folder {probe} is not writable; "
                             "choose another path or fix permissions")


def _fix(fix: str) -> str:
    return f"; {fix}" if fix else ""


def _example(extensions: Sequence[str] | None) -> str:
    return f"out{extensions[0]}" if extensions else "out.json"


def data_path(data: dict, key: str) -> Path:
    """``data.root / data.<key>`` (an absolute ``data.<key>`` is used as is)."""
    return Path(data["root"]) / data[key]


def config_data_paths(cfg: dict, splits: Iterable[str] = ("train", "val"), det_file: bool | None = None) -> None:
    """Check the annotation files and image folders of ``splits`` and, when the val split uses
    detections, the detection file; raises :class:`PathCheckError` on the first problem.

    ``det_file``: check ``data.det_file`` (default: when ``val`` is checked and ``use_gt_bbox`` is false).
    """
    data = cfg["data"]
    root = Path(data["root"])
    relative = [key for split in splits for key in (f"{split}_ann", f"{split}_img_dir")
                if not Path(data[key]).is_absolute()]
    if relative and not root.is_dir():
        raise PathCheckError(f"{root}: dataset root (data.root) not found; set it (--cfg-options data.root=PATH), "
                             f"or create the synthetic set with: python tools/make_synthetic.py --out {root}")
    hint = "set data.root, or give data.{key} as an absolute path (--cfg-options data.{key}=/abs/path)"
    for split in splits:
        input_file(data_path(data, f"{split}_ann"), f"{split} annotation file (data.{split}_ann)",
                   hint.format(key=f"{split}_ann"))
        input_dir(data_path(data, f"{split}_img_dir"), f"{split} image folder (data.{split}_img_dir)",
                  hint.format(key=f"{split}_img_dir"))
    if det_file is None:
        det_file = "val" in splits and not data.get("use_gt_bbox", True) and data.get("dataset") != "mpii"
    if det_file:
        if not data.get("det_file"):
            raise PathCheckError("config: data.use_gt_bbox is false but data.det_file is not set; "
                                 "pass --det-file DETS.json or use GT boxes")
        input_file(data_path(data, "det_file"), "person detection file (data.det_file)",
                   "pass --det-file with a COCO results JSON of person boxes (README: person detections)")


def report(exc: Exception) -> int:
    """Print ``error: <message>`` on stderr; return :data:`EXIT_BAD_INPUT`."""
    print(f"error: {exc}", file=sys.stderr)
    return EXIT_BAD_INPUT


def run_main(main: Callable[[], int], kept: str | Callable[[], str] = "nothing was written",
             resume: str | Callable[[], str] = "") -> int:
    """``main()``; on Ctrl-C print one line (what was kept, how to resume) and return 130.

    ``kept``/``resume`` may be callables evaluated at the interrupt (e.g. to name the newest checkpoint).
    """
    try:
        return main()
    except KeyboardInterrupt:
        kept_text = kept() if callable(kept) else kept
        resume_text = resume() if callable(resume) else resume
        line = f"interrupted (Ctrl-C): {kept_text}"
        if resume_text:
            line += f"; {resume_text}"
        try:
            print(line, file=sys.stderr, flush=True)
        except (KeyboardInterrupt, OSError):  # a second Ctrl-C while printing: still exit cleanly
            pass
        return EXIT_INTERRUPTED
