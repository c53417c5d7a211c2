"""Kneron's operator table (``operators.yaml``): which ONNX op runs on which chip, on what condition.

>>> table = load_table()
>>> table.entry("Resize", "KL720")       # Entry(status='note', note=Note(number=35, ...))
>>> table.source["toolchain"]            # 'v0.33.1'

The data file cites Kneron's document (``docs/toolchain/appendix/operators.md`` of
``kneron/document_center``) and its toolchain version; this module only loads and validates it.
The per-node checks named in the notes are evaluated by :mod:`litehrnet.kneron.checker`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import yaml

TABLE_PATH = Path(__file__).with_name("operators.yaml")
CHIPS = ("KL520", "KL720", "KL530", "KL630", "KL730")


class OperatorTableError(ValueError):
    """Unknown chip name or a malformed table file."""


@dataclass(frozen=True)
class Note:
    """One numbered note of the table: alternatives of named checks (any one must hold)."""

    number: int
    text: str
    any_of: tuple[dict, ...] = ()
    meets: bool = False
    unencoded: str | None = None
    ambiguous: dict = field(default_factory=dict)
    interpreted: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Entry:
    """One cell of the table: ``status`` is ``yes``, ``no``, ``note`` (conditional) or ``absent``."""

    status: str
    note: Note | None = None


@dataclass(frozen=True)
class OperatorTable:
    chips: tuple[str, ...]
    source: dict
    ops: dict
    notes: dict
    graph_constants: frozenset

    def entry(self, op_type: str, chip: str) -> Entry:
        """The table cell of ``op_type`` on ``chip`` (``absent`` when the op is not in the table)."""
        column = self.chips.index(normalize_chip(chip))
        row = self.ops.get(op_type)
        if row is None:
            return Entry("absent")
        cell = str(row[column])
        if cell == "Y":
            return Entry("yes")
        if cell.startswith("N"):
            return Entry("no", self.notes.get(int(cell[1:])) if len(cell) > 1 else None)
        return Entry("note", self.notes[int(cell)])

    def cite(self) -> str:
        s = self.source
        return f"{s['repository']} {s['path']} (toolchain {s['toolchain']})"


def normalize_chip(chip: str) -> str:
    """``KL720`` / ``kl720`` / ``720`` -> ``KL720``; unknown names raise :class:`OperatorTableError`."""
    name = str(chip).strip().upper()
    if not name.startswith("KL"):
        name = "KL" + name
    if name not in CHIPS:
        raise OperatorTableError(f"unknown Kneron chip {chip!r}; choose one of {', '.join(CHIPS)}")
    return name


def _parse_note(number: int, data: dict) -> Note:
    kinds = [k for k in ("any_of", "meets", "unencoded") if k in data]
    if len(kinds) != 1:
        raise OperatorTableError(f"{TABLE_PATH}: note {number} needs exactly one of any_of / meets / unencoded")
    return Note(number=number, text=str(data["text"]), any_of=tuple(dict(a) for a in data.get("any_of", ())),
                meets=bool(data.get("meets", False)), unencoded=data.get("unencoded"),
                ambiguous=dict(data.get("ambiguous", {})), interpreted=dict(data.get("interpreted", {})))


@lru_cache(maxsize=4)
def load_table(path: str | Path = TABLE_PATH) -> OperatorTable:
    """Load and validate the table (every cell Y, N, N<n> or a note number that exists)."""
    with open(path, "r", encoding="utf-8") as f:
        data = yaml.safe_load(f)
    chips = tuple(data["chips"])
    if chips != CHIPS:
        raise OperatorTableError(f"{path}: chips {chips} != {CHIPS}")
    notes = {int(n): _parse_note(int(n), d) for n, d in data["notes"].items()}
    for op, row in data["ops"].items():
        if len(row) != len(chips):
            raise OperatorTableError(f"{path}: op {op} has {len(row)} cells, expected {len(chips)}")
        for cell in map(str, row):
            number = cell[1:] if cell.startswith("N") else cell
            if cell not in ("Y", "N") and (not number.isdigit() or int(number) not in notes):
                raise OperatorTableError(f"{path}: op {op} cell {cell!r} is not Y, N or a known note")
    return OperatorTable(chips=chips, source=dict(data["source"]), ops=dict(data["ops"]), notes=notes,
                         graph_constants=frozenset(data.get("graph_constants", ())))
