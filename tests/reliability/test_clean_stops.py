"""Ctrl-C: one line (what was kept, how to resume), exit 130; torn log lines tolerated and repaired."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from litehrnet.training.logger import JsonLinesLogger, read_log
from tools import plot_log

REPO = Path(__file__).resolve().parents[2]


def _strict(text: str):
    def refuse(name):
        raise ValueError(f"non-strict JSON constant {name}")

    return json.loads(text, parse_constant=refuse)


def test_ctrl_c_during_training_keeps_the_checkpoint_and_says_how_to_resume(tmp_path, small_set, write_config):
    cfg, work = write_config(small_set, epochs=500), tmp_path / "work"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "train.py", str(cfg), "--work-dir", str(work), "--no-validate",
                             "--no-progress"], cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.monotonic() + 120
    while not (work / "epoch_1.pth").exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("interrupted (Ctrl-C): kept ") and "epoch_" in last and "log.jsonl" in last
    assert f"resume with: python train.py {cfg} --work-dir {work} --resume-from auto" in last
    assert "Traceback" not in err
    for line in (work / "log.jsonl").read_text().splitlines():
        _strict(line)


def test_torn_last_line_is_tolerated_on_read_and_repaired_on_resume(tmp_path, capsys):
    path = tmp_path / "log.jsonl"
    log = JsonLinesLogger(path)
    for it in range(1, 6):
        log.log("train", epoch=1, iter=it, lr=1e-3, loss=1.0 / it, extra={"grad": float("inf")})
    log.close()
    with open(path, "a", encoding="utf-8") as f:
        f.write('{"mode": "train", "epoch": 1, "it')  # killed mid-write
    records = list(read_log(path))
    assert [r["iter"] for r in records] == [1, 2, 3, 4, 5] and records[0]["extra"] == {"grad": "inf"}
    assert "skipped 1 torn record(s) (line 6)" in capsys.readouterr().err
    assert plot_log.main([str(path), "-o", str(tmp_path / "c.png")]) == 0

    resumed = JsonLinesLogger(path)  # what train.py --resume-from does
    assert resumed.repaired_bytes == len('{"mode": "train", "epoch": 1, "it')
    assert "removed a torn last record" in capsys.readouterr().err
    resumed.log("train", epoch=2, iter=6, lr=1e-3, loss=0.1)
    resumed.close()
    lines = path.read_text().splitlines()
    assert [_strict(line)["iter"] for line in lines] == [1, 2, 3, 4, 5, 6]  # every line strict JSON


def test_log_resumed_without_repair_still_reads(tmp_path, capsys):
    path = tmp_path / "log.jsonl"
    path.write_text('{"mode": "train", "iter": 1, "loss": 1.0}\n{"mode": "train", "it'
                    '{"mode": "train", "iter": 2, "loss": 0.5}\n')
    assert [r["iter"] for r in read_log(path)] == [1, 2]  # the glued record is recovered
    assert "torn record" in capsys.readouterr().err
    path.write_text('{"mode": "train", "iter": 1}\nnot json\n')
    try:
        list(read_log(path))
    except ValueError as exc:
        assert "log.jsonl:2: not a JSON record" in str(exc)
    else:
        raise AssertionError("a line that is not a torn record must stay an error")


def test_every_script_turns_ctrl_c_into_exit_130():
    scripts = [*REPO.glob("*.py"), *(REPO / "tools").glob("*.py")]
    missing = [p.name for p in scripts if p.name != "__init__.py"
               and "run_main(" not in p.read_text().split('if __name__ == "__main__":')[-1]]
    assert not missing, f"wrap main() with litehrnet.cli_checks.run_main in: {missing}"

