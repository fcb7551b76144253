"""Reports: pure functions of run records (never regenerate, never re-judge)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import Any

from rich.table import Table

from flame_bench.records import RunRecord

FORMATS = ("table", "md", "csv", "json")


def _fmt(value: float | None, info: dict[str, Any]) -> str:
    if value is None:
        return "-"
    return f"{100 * value:.1f}" if info.get("percent", True) else f"{value:.2f}"


def run_rows(records: Sequence[RunRecord]) -> list[dict[str, Any]]:
    """One row per (run, metric) with value, 95% CI and the run's identity."""
    rows = []
    for r in records:
        h = r.header
        for info in h["metric_info"]:
            key = info["key"]
            ci = h.get("confidence_intervals", {}).get(key)
            rows.append({
                "run": r.run_id, "task": r.task, "model": h["model"]["name"], "metric": key,
                "display": info["display"], "value": h["metrics"].get(key), "ci_low": ci[0] if ci else None,
                "ci_high": ci[1] if ci else None, "percent": info.get("percent", True),
                "n": h["counts"].get("items"),
            })
    return rows


def _cell(row: dict[str, Any]) -> str:
    text = _fmt(row["value"], row)
    if row["ci_low"] is not None:
        text += f" [{_fmt(row['ci_low'], row)}, {_fmt(row['ci_high'], row)}]"
    return text


def runs_table(records: Sequence[RunRecord]) -> Table:
    table = Table(title="flame-bench runs", caption="percent metrics x100; [95% CI]")
    for col in ("task", "model", "metric", "value [95% CI]", "n", "run"):
        table.add_column(col, overflow="fold")
    for row in run_rows(records):
        table.add_row(row["task"], row["model"], row["display"], _cell(row), str(row["n"]), row["run"])
    return table


def breakdown_table(record: RunRecord) -> Table | None:
    """Per-group (e.g. per-tier) metrics of one run."""
    h = record.header
    if len(h.get("breakdown") or {}) < 2:  # one group says nothing the runs table does not
        return None
    infos = [i for i in h["metric_info"] if any(i["key"] in g for g in h["breakdown"].values())]
    table = Table(title=f"{record.task} by group: {h['model']['name']}")
    table.add_column("group")
    for i in infos:
        table.add_column(i["display"], justify="right")
    for group, metrics in h["breakdown"].items():
        table.add_row(group, *[_fmt(metrics.get(i["key"]), i) for i in infos])
    return table


def render_text(records: Sequence[RunRecord], fmt: str) -> str:
    rows = run_rows(records)
    if fmt == "json":
        return json.dumps([{k: v for k, v in r.items() if k != "percent"} for r in rows], indent=2)
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=["run", "task", "model", "metric", "value", "ci_low", "ci_high", "n"],
                           extrasaction="ignore", lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
        return buf.getvalue()
    lines = ["| task | model | metric | value [95% CI] | n |", "|---|---|---|---|---|"]
    lines += [f"| {r['task']} | {r['model']} | {r['display']} | {_cell(r)} | {r['n']} |" for r in rows]
    return "\n".join(lines) + "\n"
