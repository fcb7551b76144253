"""Published numbers beside local ones, always in tables of their own and labelled with where they come from.

`--published flame-paper` (compare, leaderboard): the FLAME paper's Tables 2 and 3 (`results/published/
flame_paper.json`, transcribed from the paper: Llama-2 70B, AlpacaEval's `alpaca_eval_gpt4_turbo_fn` judge, win rates
head to head against each table's own baseline, FActScore without length penalty). `--published
alpaca_eval:<annotator>[:N]`: AlpacaEval's leaderboard for that annotator, read from the installed `alpaca-eval`
package (its shipped CSVs; the top N rows by length-controlled win rate, 10 by default), win rates against its
GPT-4-Turbo reference on its 805 instructions.

Neither is comparable with a fact-world number, and a real-path number is comparable only where the same judge,
reference outputs and instructions are used (README, "What the numbers are comparable with").
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from rich.table import Table

from flame_bench.core import shipped
from flame_bench.core.errors import FlameError, unknown_name
from flame_bench.core.io import read_json

FLAME_PAPER = shipped.published_dir() / "flame_paper.json"
FLAME_COLUMNS = (("win_rate", "win rate"), ("bio_fs", "Bio FS"), ("bio_correct", "Bio #corr"),
                 ("bio_erroneous", "Bio #err"), ("alpaca_fact_fs", "Alpaca Fact FS"), ("fava_fs", "FAVA FS"))
ALPACA_COLUMNS = (("length_controlled_winrate", "LC win rate"), ("win_rate", "win rate"),
                  ("standard_error", "SE"), ("avg_length", "avg length"), ("mode", "mode"))


def check_published(spec: str) -> str:
    if spec == "flame-paper":
        return spec
    if spec.startswith("alpaca_eval:"):
        _alpaca_csv(spec.split(":")[1])
        _top(spec)
        return spec
    raise FlameError(f"{unknown_name('published source', spec, ['flame-paper', 'alpaca_eval'])}; use flame-paper or "
                     "alpaca_eval:<annotator>[:N] (e.g. alpaca_eval:weighted_alpaca_eval_gpt4_turbo:10)")


def _top(spec: str) -> int:
    parts = spec.split(":")
    if len(parts) > 2:
        if not parts[2].isdigit() or int(parts[2]) < 1:
            raise FlameError(f"published {spec}: N must be a positive number of rows, got {parts[2]!r}")
        return int(parts[2])
    return 10


def _alpaca_csv(annotator: str) -> Path:
    from flame_bench.real.alpaca_eval_judge import configs_dir

    root = configs_dir().parent / "leaderboards"
    found = sorted(root.glob(f"data_AlpacaEval*/{annotator}_leaderboard.csv"))
    if not found:
        names = sorted({p.name.removesuffix("_leaderboard.csv") for p in root.glob("data_AlpacaEval*/*.csv")})
        raise unknown_name("AlpacaEval leaderboard", annotator, names)
    return found[-1]  # AlpacaEval 2 over 1 where both exist


def published_tables(spec: str) -> list[Table]:
    """The rich tables of one published source."""
    if spec == "flame-paper":
        doc = read_json(FLAME_PAPER)
        tables = []
        for part in doc["tables"].values():
            table = Table(title=f"PUBLISHED, not run here: {part['title']}",
                          caption=f"{doc['source']}. {doc['setting']['base_model']}; win rate: "
                                  f"{doc['setting']['win_rate']}")
            table.add_column("row")
            table.add_column("model")
            for _, label in FLAME_COLUMNS:
                table.add_column(label, justify="right")
            for row in part["rows"]:
                table.add_row(row["row"], row["model"], *[_cell(row.get(k)) for k, _ in FLAME_COLUMNS])
            tables.append(table)
        return tables
    annotator = spec.split(":")[1]
    path = _alpaca_csv(annotator)
    with path.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    rows.sort(key=lambda r: -float(r.get("length_controlled_winrate") or r.get("win_rate") or 0))
    n = _top(spec)
    table = Table(title=f"PUBLISHED, not run here: AlpacaEval leaderboard, annotator {annotator} (top {n} of "
                        f"{len(rows)})",
                  caption=f"alpaca-eval package, {path.parent.name}/{path.name}; win rates in % against AlpacaEval's "
                          "own reference outputs on its 805 instructions")
    table.add_column("model")
    for _, label in ALPACA_COLUMNS:
        table.add_column(label, justify="right")
    for row in rows[:n]:
        table.add_row(row.get("") or row.get("name", "?"), *[_cell(row.get(k)) for k, _ in ALPACA_COLUMNS])
    return [table]


def _cell(v: Any) -> str:
    if v is None or v == "":
        return "-"
    try:
        return f"{float(v):.1f}"
    except (TypeError, ValueError):
        return str(v)
