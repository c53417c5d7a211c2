"""JSON-lines training log: one JSON object per line, flushed as written.

Records carry ``mode`` ("train" for iteration logs, "epoch" for epoch summaries, "val" for
validation metrics) plus ``epoch`` (1-based) and ``iter`` (global, 1-based). ``tools/plot_log.py``
reads these files.
"""

from __future__ import annotations

import json
import math
import os
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
            self._file = open(self.path, "a", encoding="utf-8")

    def log(self, mode: str, **fields: Any) -> None:
        if not self._file:
            return
        record = {"mode": mode, "time": round(time.time(), 3)}
        for key, value in fields.items():
            if isinstance(value, float) and not math.isfinite(value):
                value = str(value)  # JSON has no NaN/inf; keep the fact readable
            record[key] = value
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()

    def close(self) -> None:
        if self._file:
            self._file.close()
            self._file = None


def read_log(path: str | os.PathLike) -> Iterator[dict]:
    """Yield the records of a JSON-lines log, naming the file and line of a malformed record."""
    with open(path, "r", encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{lineno}: not a JSON record ({exc.msg}); is this a training log?") from None
