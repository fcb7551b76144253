"""The leaderboard: every model's latest run of every task, as a rich table and `results/leaderboard.{md,json}`.

A pure function of the run records. Writing takes an exclusive lock and re-reads the records inside it, and
each file is replaced atomically, so two evaluations finishing at once never leave a torn or stale board.
"""

from __future__ import annotations

import fcntl
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.table import Table

from flame_bench.io import write_json, write_text
from flame_bench.paths import results_dir
from flame_bench.records import RunRecord, list_runs


def task_position(task: str) -> int:
    """Tasks appear in their compare-column order (unregistered tasks of old records last)."""
    from flame_bench.registry import TASKS

    return TASKS.get(task).position if task in TASKS else 99


def latest_runs(records: Sequence[RunRecord]) -> dict[tuple[str, str], RunRecord]:
    latest: dict[tuple[str, str], RunRecord] = {}
    for r in records:
        key = (r.header["model"]["name"], r.task)
        if key not in latest or r.header["created"] >= latest[key].header["created"]:
            latest[key] = r
    return latest


def leaderboard_rows(records: Sequence[RunRecord]) -> tuple[list[str], list[dict[str, Any]]]:
    """(task columns, one row per model with each task's primary metric and the run it comes from)."""
    latest = latest_runs(records)
    tasks = sorted({t for _, t in latest}, key=lambda t: (task_position(t), t))
    rows = []
    for model in sorted({m for m, _ in latest}):
        row: dict[str, Any] = {"model": model}
        for task in tasks:
            rec = latest.get((model, task))
            if rec is None:
                continue
            key = rec.header["primary_metric"]
            info = next(i for i in rec.header["metric_info"] if i["key"] == key)
            row[task] = {"metric": key, "display": info["display"], "value": rec.metrics.get(key),
                         "percent": info.get("percent", True), "run": rec.run_id,
                         "reference": (rec.header.get("reference") or {}).get("name")}
        rows.append(row)
    return tasks, rows


def _cell(entry: dict[str, Any] | None) -> str:
    if not entry or entry["value"] is None:
        return "-"
    text = f"{100 * entry['value']:.1f}" if entry["percent"] else f"{entry['value']:.2f}"
    # a win rate means nothing without its reference; boards mix comparisons with different references
    return f"{text} (vs {entry['reference']})" if entry.get("reference") else text


def _header(task: str, rows: list[dict[str, Any]]) -> str:
    entry = next((r[task] for r in rows if task in r), None)
    return f"{task} {entry['display']}" if entry else task


def render_table(tasks: list[str], rows: list[dict[str, Any]]) -> Table:
    table = Table(title="flame-bench leaderboard (latest run per model and task)")
    table.add_column("model")
    for t in tasks:
        table.add_column(_header(t, rows), justify="right")
    for row in rows:
        table.add_row(row["model"], *[_cell(row.get(t)) for t in tasks])
    return table


def render_markdown(tasks: list[str], rows: list[dict[str, Any]]) -> str:
    lines = ["| model | " + " | ".join(_header(t, rows) for t in tasks) + " |", "|---" * (len(tasks) + 1) + "|"]
    lines += [f"| {r['model']} | " + " | ".join(_cell(r.get(t)) for t in tasks) + " |" for r in rows]
    return "\n".join(lines) + "\n"


@contextmanager
def _locked(out_dir: Path):
    out_dir.mkdir(parents=True, exist_ok=True)
    with (out_dir / ".leaderboard.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def write_leaderboard(runs_dir: Path | None = None, out_dir: Path | None = None) -> tuple[list[str], list[dict]]:
    out_dir = out_dir or results_dir()
    with _locked(out_dir):
        tasks, rows = leaderboard_rows(list_runs(runs_dir))  # re-read inside the lock: never a stale board
        write_text(out_dir / "leaderboard.md", render_markdown(tasks, rows))
        write_json(out_dir / "leaderboard.json", {"tasks": tasks, "rows": rows})
    return tasks, rows
