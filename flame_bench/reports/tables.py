"""A comparison rendered: rich tables for the console and markdown for files (Table 3 layout, the paper's Table 11,
declared breakdowns, the seed summary). Pure views of `reports.comparison`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.table import Table
from rich.text import Text

from flame_bench.core.stats import Delta
from flame_bench.core.task_api import Breakdown
from flame_bench.reports.comparison import (
    SystemResult,
    columns_of,
    fmt,
    fmt_delta,
    training_columns,
    training_rows,
    weak_mark,
    weak_notes,
)
from flame_bench.reports.runs import md_row


def breakdown_table(view: Breakdown, groups: dict[str, dict[str, Any]], names: Sequence[str], over: str = "") -> Table:
    """One declared breakdown (`comparison.breakdowns`, one seed; or `across_seeds`' pooled groups, `over` naming
    the seeds) as a table."""
    table = Table(title=f"{view.title}{over}",
                  caption="paired delta vs the first system [95% bootstrap CI], * = CI excludes 0")
    table.add_column(view.group_label)
    table.add_column(view.count_label, justify="right")
    for name in names:
        table.add_column(name, justify="right")
    for label, row in groups.items():
        cells = []
        for name in names:
            cell = row[name]
            d = cell["delta"]
            cells.append(fmt(cell["value"], view.percent) + (f"\n{fmt_delta(Delta(**d), view.percent)}" if d else ""))
        table.add_row(label, str(next(iter(row.values()))["n"]), *cells)
    return table


def comparison_table(results: list[SystemResult], dl: dict[str, dict[str, Delta | None]]) -> Table:
    cols = columns_of(results)
    table = Table(title=f"flame-bench compare (reference for win rate: {results[0].name})",
                  caption="Table 3 layout; second line: paired delta vs the first system [95% bootstrap CI], "
                          "* = CI excludes 0. Length = mean Alpaca response characters.")
    table.add_column("system")
    for _, col in cols:
        table.add_column(col.label, justify="right")
    for r in results:
        cells = []
        for task, col in cols:
            value = fmt(r.metric(task.name, col.metric), col.percent) + weak_mark(r, task, col)
            d = dl.get(r.name, {}).get(col.label)
            cells.append(value + (f"\n{fmt_delta(d, col.percent)}" if d else ""))
        table.add_row(r.name, *cells)
    if notes := weak_notes(results):
        table.caption = f"{table.caption}\n" + "\n".join(notes)
    return table


def comparison_markdown(results: list[SystemResult], dl: dict[str, dict[str, Delta | None]]) -> str:
    cols = columns_of(results)
    lines = [md_row(["system", *(c.label for _, c in cols)]), "|" + "---|" * (len(cols) + 1)]
    for r in results:
        cells = []
        for task, col in cols:
            d = dl.get(r.name, {}).get(col.label)
            cells.append(fmt(r.metric(task.name, col.metric), col.percent) + weak_mark(r, task, col) + (
                f" ({fmt_delta(d, col.percent)})" if d else ""))
        lines.append(md_row([r.name, *cells]))
    return "\n".join(lines) + "\n" + "".join(f"\n{note}\n" for note in weak_notes(results))


def training_table(results: list[SystemResult]) -> Table:
    table = Table(title="Training data (the paper's Table 11 layout)",
                  caption="SFT^flame answers the fact-based seed instructions with the base model's own samples; "
                          "(n unused) = pairs built but not trained on by that recipe.")
    table.add_column("system")
    for col in training_columns(results):
        table.add_column(col, justify="right")
    for row in training_rows(results):
        table.add_row(*row)
    return table


def training_markdown(results: list[SystemResult]) -> str:
    columns = training_columns(results)
    lines = [md_row(["system", *columns]), "|" + "---|" * (len(columns) + 1)]
    lines += [md_row(row) for row in training_rows(results)]
    return "\n".join(lines) + "\n"


# -- figure and files --------------------------------------------------------------------------------------------
def seeds_table(summary: dict[str, Any], systems: list[str]) -> Table:
    """`across_seeds` as a table: mean ± std over seeds, and the pooled paired delta vs the first system."""
    table = Table(title=f"{summary['source']}, seeds {', '.join(map(str, summary['seeds']))}: mean ± std over "
                        f"seeds; pooled paired delta vs {systems[0]} [95% CI], * = excludes 0")
    table.add_column("system")
    for col in summary["columns"]:
        table.add_column(col["label"], justify="right")
    for name in systems:
        cells = []
        for col in summary["columns"]:
            m = summary["systems"][name][col["label"]]
            scale = 100 if col["percent"] else 1
            cell = "-" if m["mean"] is None else f"{scale * m['mean']:.1f}" + (
                f" ± {scale * m['std']:.1f}" if m["std"] is not None else "")
            d = summary["pooled_deltas"].get(name, {}).get(col["label"])
            if d:
                star = "*" if d["low"] > 0 or d["high"] < 0 else ""
                cell += f"\n{scale * d['value']:+.1f} [{scale * d['low']:+.1f}, {scale * d['high']:+.1f}]{star}"
            cells.append(cell)
        table.add_row(Text(name), *cells)
    return table
