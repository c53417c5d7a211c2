"""JSON-lines training log: one JSON object per line, flushed as written.

Records carry ``mode`` ("train" for iteration logs, "epoch" for epoch summaries, "val" for
validation metrics) plus ``epoch`` (1-based) and ``iter`` (global, 1-based). ``tools/plot_log.py``
reads these files.

A run killed mid-write can leave a torn last line. The logger repairs it when it reopens the file
(``--resume-from``): the partial record is cut before appending. Readers tolerate torn records
(a line that starts a JSON object but does not parse) with a warning, so a log written by an older
run that was resumed without the repair still plots; any other malformed line is an error.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any, Iterator


class JsonLinesLogger:
    """Append records to ``path``; a no-op when ``enabled`` is False (ranks other than 0)."""

    def __init__(self, path: str | os.PathLike, enabled: bool = True) -> None:
        self.path = Path(path)
        self.enabled = enabled
        self._file = None
        if enabled:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.repaired_bytes = repair_torn_tail(self.path)
            self._file = open(self.path, "a", encoding="utf-8")

    def log(self, mode: str, **fields: Any) -> None:
        if not self._file:
            return
        record = {"mode": mode, "time": round(time.time(), 3)}
        for key, value in fields.items():
            record[key] = _finite(value)
        self._file.write(json.dumps(record, allow_nan=False) + "\n")
        self._file.flush()

    def close(self) -> None:
        if self._file:
            self._file.close()
            self._file = None


def _finite(value: Any) -> Any:
    """JSON has no NaN/inf: non-finite floats become their string ("nan", "inf"), nested too."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # keep the fact readable
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def repair_torn_tail(path: str | os.PathLike) -> int:
    """Cut a partial last line (no trailing newline: the writer was killed); returns the bytes removed."""
    path = Path(path)
    if not path.is_file() or path.stat().st_size == 0:
        return 0
    with open(path, "rb+") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        f.seek(max(0, size - 1))
        if f.read(1) == b"\n":
            return 0
        block = min(size, 1 << 20)
        f.seek(size - block)
        tail = f.read(block)
        cut = tail.rfind(b"\n")
        keep = size - block + cut + 1 if cut >= 0 else 0
        f.truncate(keep)
    print(f"note: {path}: removed a torn last record ({size - keep} bytes, the previous run was killed "
          "mid-write)", file=sys.stderr)
    return size - keep


def read_log(path: str | os.PathLike) -> Iterator[dict]:
    """Yield the records of a JSON-lines log, naming the file and line of a malformed record.

    A torn record (a line starting with ``{`` that does not parse) is skipped with a warning; when a
    later record was appended onto it (a resume without repair), that record is recovered.
    """
    torn = []
    with open(path, "r", encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError as exc:
                if not line.startswith("{"):
                    raise ValueError(f"{path}:{lineno}: not a JSON record ({exc.msg}); "
                                     "is this a training log?") from None
                torn.append(lineno)
                glued = line.rfind('{"mode"', 1)
                if glued > 0:
                    try:
                        yield json.loads(line[glued:])
                    except json.JSONDecodeError:
                        pass
    if torn:
        print(f"warning: {path}: skipped {len(torn)} torn record(s) (line {', '.join(map(str, torn[:5]))}): "
              "a run was killed mid-write", file=sys.stderr)
