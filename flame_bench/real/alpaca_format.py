"""AlpacaEval's JSON format: a list of {"instruction", "output", "generator"[, "dataset"]} records.

flame-bench reads instructions and reference outputs in it (`--alpaca-eval FILE`) and exports a run's outputs in it
(`flame-bench export RUN`), so a win rate can be cross-checked with AlpacaEval itself
(`alpaca_eval --model_outputs ours.json --reference_outputs reference.json`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from flame_bench.core.errors import FlameError
from flame_bench.core.io import read_json, write_text

REQUIRED = ("instruction", "output")


def read_alpaca_eval(path: Path) -> list[dict[str, Any]]:
    data = read_json(path)
    if not isinstance(data, list):
        raise FlameError(f"{path}: AlpacaEval format is a JSON list of {{instruction, output, generator}} records")
    for i, rec in enumerate(data):
        missing = [k for k in REQUIRED if not isinstance(rec, dict) or not isinstance(rec.get(k), str)]
        if missing:
            raise FlameError(f"{path}: record {i} has no string {missing[0]!r}; every record needs instruction and "
                             "output")
    return data


def write_alpaca_eval(path: Path, records: Iterable[dict[str, Any]], generator: str) -> int:
    out = [{"instruction": r["instruction"], "output": r["output"], "generator": generator,
            **({"dataset": r["dataset"]} if r.get("dataset") else {})} for r in records]
    write_text(path, json.dumps(out, indent=2, ensure_ascii=False) + "\n")
    return len(out)
